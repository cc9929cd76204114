//! The executor: carries out one planned action at a time against the
//! `Remote`, journals what it did through the store, and returns what that
//! was ([`Done`]). It decides nothing: what a hashed file needs comes from
//! [`Action::resolve`], the order and the error policy from the cycle.
//!
//! The protocols live here, one object each: an upload with its pending
//! intent (`upload.rs`), a move with its intent (`moves.rs`), and below a
//! new folder and a deletion that only ever removes what ysync put there.

mod moves;
#[cfg(test)]
mod tests;
mod upload;
mod versions;

pub use versions::{day, is_day, stem_ext, unsuffixed};

use std::fs::File;
use std::io;
use std::time::Duration;

use crate::config::{Config, DeleteMode};
use crate::digest::{Digests, hash_file};
use crate::plan::{Action, Resolution};
use crate::progress::Progress;
use crate::remote::{self, DiskInfo, Error, OpStatus, Remote, RemoteFile};
use crate::retry::Poll;
use crate::scan::{self, Entry, Kind};
pub use crate::state::UNDATED;
use crate::state::{Change, FileRec, Mark, Moving, Pending, Store};
use crate::units::now_secs;

/// What an action did, for the cycle's counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    /// A folder was created.
    Created,
    /// A folder is tracked without a request (`remote_dir`, or one the Disk has).
    Tracked,
    /// The Disk held the file already: recorded, nothing sent.
    Adopted,
    Uploaded {
        bytes: u64,
    },
    /// Same content, other metadata: recorded, nothing sent.
    Unchanged,
    Moved,
    Deleted,
    /// Not deleted: the Disk holds someone else's content there.
    LeftAlone,
    /// `delete = keep`: dropped from the state, the remote copy stays.
    Forgot,
    /// Gone (or unreadable) since the scan: nothing to do this cycle.
    Vanished,
}

pub struct Executor<'a> {
    cfg: &'a Config,
    remote: &'a mut dyn Remote,
    store: &'a mut Store,
    /// The account's free space and per-file limit, asked once per cycle
    /// before the first large upload (`None`: not asked yet; `Some(None)`:
    /// the question failed, so uploads are not held back by it).
    room: Option<Option<DiskInfo>>,
    /// How far the cycle is (told of each byte sent, by uploads).
    pub progress: Progress,
    /// Old versions kept in `backup_dir` in this cycle.
    pub versioned: u64,
    /// `local_dir`, opened once a cycle: what the scan saw is opened
    /// below it ([`scan::open`]).
    root: Option<crate::fsutil::Dir>,
}

impl<'a> Executor<'a> {
    pub fn new(cfg: &'a Config, remote: &'a mut dyn Remote, store: &'a mut Store) -> Executor<'a> {
        Executor { cfg, remote, store, room: None, progress: Progress::on_terminal(cfg.progress), versioned: 0, root: None }
    }

    pub fn store(&mut self) -> &mut Store {
        self.store
    }

    pub fn remote(&mut self) -> &mut dyn Remote {
        self.remote
    }

    /// A new cycle: what was known of the account may have changed.
    pub fn new_cycle(&mut self) {
        self.room = None;
        self.versioned = 0;
        // Remounted since, maybe.
        self.root = None;
    }

    /// Carries out one action.
    pub fn run(&mut self, action: &Action) -> Result<Done, Error> {
        let remote_path = remote::join(&self.cfg.remote_dir, action.path());
        match action {
            Action::MkdirRoot => {
                if self.cfg.remote_dir != "/" {
                    self.remote.mkdir_all(&remote_path)?;
                    log::info!("created remote folder {}", self.cfg.remote_dir);
                }
                self.commit(Change::Dir { path: String::new() });
                Ok(Done::Tracked)
            }
            Action::AdoptDir(p) => {
                log::debug!("folder {p} is on the Disk already");
                self.commit(Change::Dir { path: p.clone() });
                Ok(Done::Tracked)
            }
            Action::Mkdir(p) => {
                // Announced first: a kill after the request could otherwise
                // leave a folder on the Disk that no state knows about.
                self.intent(Change::Mkdir { path: p.clone() })?;
                self.remote.mkdir(&remote_path)?;
                log::info!("created folder {p}");
                self.commit(Change::Dir { path: p.clone() });
                Ok(Done::Created)
            }
            Action::Upload(e) => self.upload(e, &remote_path),
            Action::Check { entry: e, .. } | Action::Adopt { entry: e, .. } | Action::MoveOrUpload { entry: e, .. } => {
                let Some(file) = self.open(e)? else { return Ok(Done::Vanished) };
                let d = hash_file(&file).map_err(Error::Local)?;
                let resolution = action.resolve(d.sha256, self.store.state()).expect("these actions hash first");
                self.carry_out(action, e, &remote_path, resolution)
            }
            Action::Delete { path, kind, files } => {
                let to = match &self.cfg.backup_dir {
                    Some(b) => format!("(kept in disk:{b}/{})", versions::day(now_secs())),
                    None if self.cfg.delete == DeleteMode::Permanent => "permanently".into(),
                    None => "to the trash".into(),
                };
                let result = match kind {
                    Kind::Dir => self.delete_folder_noted(path, &remote_path),
                    Kind::File => self.delete_file(path, &remote_path),
                };
                let done = match result {
                    Ok(()) => {
                        match kind {
                            Kind::Dir => log::info!("deleted folder {path} ({files} files) {to}"),
                            Kind::File => log::info!("deleted {path} {to}"),
                        }
                        Done::Deleted
                    }
                    // Someone else put other content there: it is theirs now.
                    Err(Error::Md5Differs) => {
                        log::warn!(
                            "not deleted: {path} on the Disk is no longer the file ysync uploaded (changed by someone else); left alone"
                        );
                        Done::LeftAlone
                    }
                    Err(e) => return Err(e),
                };
                self.commit(Change::Forget { path: path.clone() });
                Ok(done)
            }
            Action::Forget { path, .. } => {
                log::info!("forgot {path} (delete = keep: the remote copy stays)");
                self.commit(Change::Forget { path: path.clone() });
                Ok(Done::Forgot)
            }
            Action::Move { from, to, kind, after } => {
                self.move_to(Moving { from: from.clone(), to: to.clone(), dir: *kind == Kind::Dir, after: after.clone() })?;
                log::info!("{action}");
                Ok(Done::Moved)
            }
        }
    }

    /// Does what the plan says a hashed file needs.
    fn carry_out(&mut self, action: &Action, e: &Entry, remote_path: &str, r: Resolution) -> Result<Done, Error> {
        match r {
            Resolution::Record { mut rec, date } => {
                if date && !self.date(&e.path, remote_path, e.stat.mtime_ns, None) {
                    rec.stat.mtime_ns = UNDATED;
                }
                let done = match action {
                    Action::Check { .. } => {
                        log::info!("unchanged {} (metadata only)", e.path);
                        Done::Unchanged
                    }
                    _ => {
                        log::info!("adopted {} (already on the Disk, same sha256)", e.path);
                        Done::Adopted
                    }
                };
                self.commit(Change::Put { path: e.path.clone(), rec });
                Ok(done)
            }
            // The Disk holds other content there: replaced, like any upload.
            Resolution::Upload if matches!(action, Action::Adopt { .. }) => self.upload_as(e, remote_path, false),
            Resolution::Upload => self.upload(e, remote_path),
            Resolution::MoveFrom { from, after } => {
                let m = Moving { from: from.clone(), to: e.path.clone(), dir: false, after };
                if let Err(err) = self.move_to(m) {
                    log::debug!("moving {from} to {} failed ({err}); uploading instead", e.path);
                    return self.upload(e, remote_path);
                }
                log::info!("move {from} -> {} (same content)", e.path);
                Ok(Done::Moved)
            }
        }
    }

    /// A reconcile's date for a file recorded as on the Disk (one request;
    /// a failure waits for the next reconcile).
    pub fn date_recorded(&mut self, rel: &str, mtime_ns: i64) {
        let remote_path = remote::join(&self.cfg.remote_dir, rel);
        self.date(rel, &remote_path, mtime_ns, None);
    }

    /// Keeps the file's modification time on the Disk with it (one
    /// request), and, for content ysync just sent, when it sent it: what a
    /// restore (and rclone) reads back. A failure is not the action's (the
    /// file is where it should be): `false`, and the caller records the
    /// file as [`UNDATED`], so that the next cycle looks at it again (a
    /// hash, no upload) and dates it then.
    ///
    /// Content just sent (`uploaded`: when, and its size) may not be shown
    /// yet (R1 in real-disk-evidence.md: metadata calls answer 404 for a
    /// while after the upload's 201), so a 404 then is asked again for the
    /// time a file of its size takes to settle.
    pub(super) fn date(&mut self, rel: &str, remote_path: &str, mtime_ns: i64, uploaded: Option<(u64, u64)>) -> bool {
        let mut poll = Poll::new(uploaded.map_or(Duration::ZERO, |(_, size)| settle_limit(size)));
        loop {
            match self.remote.set_date(remote_path, mtime_ns, uploaded.map(|(at, _)| at)) {
                Ok(()) => return true,
                Err(Error::NotFound) if poll.again() => log::debug!("{rel} is not shown yet (the Disk is finalising it); dating it again"),
                Err(e) => {
                    log::debug!("keeping the date of {rel} on the Disk failed ({e}); the next cycle tries again");
                    return false;
                }
            }
        }
    }

    /// Journals a change (and applies it). A failed write is remembered by
    /// the store, and the cycle stops after this action.
    fn commit(&mut self, c: Change) {
        let _ = self.store.commit(vec![c]);
    }

    /// Journals an intent, durably, before its request goes out; when that
    /// fails, the request does not go out.
    fn intent(&mut self, c: Change) -> Result<(), Error> {
        self.store.commit(vec![c]).map_err(|e| Error::Local(io::Error::other(e.to_string())))
    }

    /// Deletes a file only if it holds what ysync put there: the content of
    /// the recorded upload, or of an upload whose answer never came (pending).
    ///
    /// The file is looked at first (one `stat`) and deleted only if its
    /// sha256 is the recorded one (or, for records of older versions, its
    /// md5), with `md5=` of what the Disk just said, so that a change in
    /// between is refused too where the Disk honours that guard. The promise
    /// does not rest on the guard: it is documented only in Russian and
    /// nobody has recorded the Disk refusing a wrong md5 (R2 in
    /// real-disk-evidence.md). ysync computes no md5 of its own.
    fn delete_file(&mut self, path: &str, remote_path: &str) -> Result<(), Error> {
        // An earlier upload the Disk says succeeded is there, even while a
        // look does not show it yet (R1): missing is then not final.
        let landed = self.settle_pending(path)?;
        let pending = self.store.state().pending.get(path).cloned();
        let recorded = self.store.state().files.get(path).cloned();
        let sizes = [recorded.as_ref().map(|r| r.stat.size), pending.as_ref().map(|p| p.size)];
        let Some(size) = sizes.iter().flatten().max().copied() else { return Err(Error::Md5Differs) };
        // Not hashed yet, and as large as what ysync sent (either time): a
        // fresh upload the Disk is still finalising, worth waiting for.
        let unhashed = |f: &RemoteFile| f.unhashed() && sizes.contains(&Some(f.size));
        let settled = |f: Option<&RemoteFile>| f.map_or(!landed, |f| !unhashed(f));
        let Some(f) = self.look(remote_path, settle_limit(size), settled)? else {
            return Ok(()); // gone already, or the unconfirmed upload never landed
        };
        let by_record = recorded.as_ref().is_some_and(|r| r.is(f.sha256, f.md5));
        // Records from before ysync noted a mark ahead of the last bytes
        // (`at == 0`) may lack it: the size is the best guard.
        let by_pending =
            pending.as_ref().is_some_and(|p| p.is_ours(f.sha256, f.md5) || (p.at == 0 && p.mark.is_none() && f.size == p.size));
        if !(by_record || by_pending) && unhashed(&f) {
            // As large as what ysync sent and still not hashed after the
            // wait: most likely ysync's own upload, which the Disk is slow
            // to finalise (R1). Not taken for someone else's: asked again
            // next cycle.
            return Err(Error::Timeout(format!(
                "disk:{remote_path} has no hash yet (the Disk is still finalising it); deleting it is tried again next cycle"
            )));
        }
        if !(by_record || by_pending) {
            return Err(Error::Md5Differs);
        }
        // From the request on, the Disk may or may not hold the file: noted
        // first as an upload of unknown fate with its content, so that if
        // the same file is back here after a crash it is sent again, not
        // taken for synced (an upload in doubt is noted already).
        if let (Some(r), None) = (&recorded, &pending) {
            let noted = Pending { mark: Some(Mark::Sha256(r.sha256)), ..Pending::new(r.stat.size, None, None, now_secs()) };
            self.intent(Change::Pending { path: path.to_string(), pending: noted })?;
        }
        self.discard(path, remote_path, f.md5)
    }

    /// A folder's deletion makes its fate unknown until it is answered (a
    /// crash or a lost answer may have deleted it): noted first as a folder
    /// asked for (`Change::Mkdir`), it is made again if it is here again,
    /// deleted again if not. Its records stay until the deletion is known.
    fn delete_folder_noted(&mut self, path: &str, remote_path: &str) -> Result<(), Error> {
        let noted = !self.store.state().mkdirs.contains(path);
        if noted {
            self.intent(Change::Mkdir { path: path.into() })?;
        }
        let result = self.delete_folder(path, remote_path);
        if let Err(e) = &result
            && noted
            && !e.may_have_been_done()
        {
            self.commit(Change::Dir { path: path.into() });
        }
        result
    }

    /// Deletes a folder that is gone locally. With one request only when its
    /// listing holds nothing but ysync's (tracked folders, and files with the
    /// size and md5 or sha256 that ysync uploaded): someone's phone upload or
    /// a file edited on the web must not go with it. Otherwise ysync's files
    /// go one by one, and its sub-folders with nobody else's content under
    /// them with one request each; the rest stays, with one warning.
    fn delete_folder(&mut self, path: &str, remote_path: &str) -> Result<(), Error> {
        let Some(tree) = self.remote.tree(remote_path)? else { return Ok(()) }; // gone already
        let state = self.store.state();
        let temps = state.temp_names(path);
        let full = |rel: &str| format!("{path}/{rel}");
        let ours = |rel: &str, item: &remote::Item| {
            let p = full(rel);
            if !item.dir && temps.contains(&p) {
                return true; // the temporary name of an upload of ysync's
            }
            if item.dir {
                return state.tracks(&p, true);
            }
            let f = &item.file;
            let recorded = state.files.get(&p).is_some_and(|r| f.size == r.stat.size && (f.unhashed() || r.is(f.sha256, f.md5)));
            recorded || state.pending.get(&p).is_some_and(|pending| pending.is_ours(f.sha256, f.md5))
        };
        let foreign: Vec<&String> = tree.iter().filter(|(rel, item)| !ours(rel, item)).map(|(rel, _)| rel).collect();
        if foreign.is_empty() {
            return self.discard(path, remote_path, None);
        }
        let has_foreign = |dir: &str| foreign.iter().any(|f| scan::is_under(f, dir));
        let is_foreign = |rel: &str| foreign.iter().any(|f| *f == rel || scan::is_under(rel, f));
        // Topmost folders of ysync's own with nothing foreign under them go
        // whole; ysync's files elsewhere go one by one.
        let mut gone: Vec<&String> = Vec::new();
        for (rel, item) in &tree {
            let inside_gone = gone.iter().any(|g| scan::is_under(rel, g));
            if inside_gone || is_foreign(rel) || (item.dir && has_foreign(rel)) {
                continue;
            }
            let target = remote::join(remote_path, rel);
            let md5 = if item.dir { None } else { item.file.md5 };
            match self.discard(&full(rel), &target, md5) {
                Ok(()) | Err(Error::Md5Differs) => {}
                Err(e) => return Err(e),
            }
            if item.dir {
                gone.push(rel);
            }
        }
        log::warn!(
            "folder {path} on the Disk holds {} things ysync did not put there (e.g. {}); ysync deleted its own files and left those",
            foreign.len(),
            foreign.iter().take(3).map(|f| full(f)).collect::<Vec<_>>().join(", ")
        );
        Ok(())
    }

    /// An earlier upload of `path` whose outcome is unknown (a crash, a lost
    /// answer) may still land. Waits a bounded time for its operation to end
    /// so that nothing acts on the path while it could still change.
    /// Its temporary name, if it had one, is removed.
    ///
    /// Only an upload whose every byte may have gone out can land
    /// ([`crate::state::Pending::may_land`]): one cut short, or whose link
    /// died unused, is not waited for, whatever its operation says (the Disk
    /// reports a link's operation `in-progress` from the moment it is issued).
    ///
    /// `true` when the earlier upload's operation succeeded and it went to
    /// `path` itself (not a temporary name, removed here): the file is on
    /// the Disk, though it may not show it for a while yet.
    fn settle_pending(&mut self, path: &str) -> Result<bool, Error> {
        let Some(p) = self.store.state().pending.get(path).cloned() else { return Ok(false) };
        let mut succeeded = false;
        if let Some(op) = p.op.as_deref().filter(|_| p.may_land(now_secs())) {
            let limit = settle_limit(p.size);
            let mut poll = Poll::new(limit);
            loop {
                match self.remote.operation(op)? {
                    OpStatus::InProgress if poll.again() => {}
                    OpStatus::InProgress => {
                        // Its sender is dead (this process holds the lock), and
                        // the Disk had time to finish a whole body: it never
                        // got one. What there is at the path now decides.
                        log::info!(
                            "{path}: an earlier upload's operation is still in progress after {}s; the Disk never got its whole body",
                            limit.as_secs()
                        );
                        break;
                    }
                    status => {
                        succeeded = status == OpStatus::Success;
                        break;
                    }
                }
            }
        }
        if let Some(temp) = &p.temp {
            self.remote.delete(&remote::join(&self.cfg.remote_dir, temp), true, None)?;
        }
        // Settled for this process: nothing to wait for or remove again.
        self.store.forget_attempt(path);
        Ok(succeeded && p.temp.is_none())
    }

    /// Does the Disk hold exactly these bytes at `path`? A fresh upload may
    /// be missing, unhashed or answered with a 5xx for a while (R1): within
    /// `wait` that is asked again; then what it shows decides.
    fn shows(&mut self, path: &str, size: u64, d: &Digests, wait: Duration) -> Result<bool, Error> {
        self.shown(path, size, d, wait).map(|f| f.is_some())
    }

    /// [`Executor::shows`], and what the Disk said of the file when it does.
    fn shown(&mut self, path: &str, size: u64, d: &Digests, wait: Duration) -> Result<Option<RemoteFile>, Error> {
        match self.look(path, wait, |f| f.is_some_and(|f| f.sha256.is_some())) {
            Ok(f) => Ok(f.filter(|f| f.size == size && f.sha256 == Some(d.sha256))),
            Err(e) if e.is_transient() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The file at `path` as the Disk describes it, asked again (transient
    /// errors too) until `settled` says the answer is final or `wait` has
    /// passed; then the last answer, which may be that transient error.
    fn look(&mut self, path: &str, wait: Duration, settled: impl Fn(Option<&RemoteFile>) -> bool) -> Result<Option<RemoteFile>, Error> {
        let mut poll = Poll::new(wait);
        loop {
            let last = match self.remote.stat(path) {
                Ok(f) if settled(f.as_ref()) => return Ok(f),
                Err(e) if !e.is_transient() => return Err(e),
                last => last,
            };
            if !poll.again() {
                return last;
            }
        }
    }

    /// Opens the file the scan saw, only if it still is that regular file
    /// ([`scan::open`]: no link followed anywhere below `local_dir`, the
    /// same device and inode, without blocking). `None`: it vanished or
    /// changed since the scan, or cannot be read, which is not an error of
    /// this cycle: the next scan looks again.
    fn open(&mut self, e: &Entry) -> Result<Option<File>, Error> {
        if self.root.is_none() {
            self.root = Some(crate::fsutil::Dir::open(&self.cfg.local_dir).map_err(Error::Local)?);
        }
        let root = self.root.as_ref().expect("opened above");
        match scan::open(root, e) {
            Ok(scan::Opened::File(f)) => Ok(Some(f)),
            Ok(scan::Opened::Gone) => {
                log::info!("{} vanished before it could be uploaded", e.path);
                Ok(None)
            }
            Ok(scan::Opened::Changed(why)) => {
                log::info!("{} {why}; not read, looked at again next cycle", e.path);
                Ok(None)
            }
            // Like an unreadable folder: a warning, the remote copy and the
            // state stay as they are until the permissions are fixed.
            Err(err) if err.kind() == io::ErrorKind::PermissionDenied => {
                log::warn!("skipped {}: cannot be read: {err}", self.cfg.local_dir.join(&e.path).display());
                Ok(None)
            }
            Err(err) => Err(Error::Local(err)),
        }
    }

    /// The account as last asked in this cycle, or asked now.
    pub fn disk_info(&mut self) -> Result<DiskInfo, Error> {
        match self.room.clone().flatten() {
            Some(d) => Ok(d),
            None => self.remote.disk_info(),
        }
    }
}

/// How long to wait for an earlier upload of unknown fate, whose every
/// byte may have gone out, to end: the Disk finalises a body before it
/// answers, about 2 minutes per GiB (rclone's docs, `backend/yandex`), and
/// small files within a second.
fn settle_limit(size: u64) -> Duration {
    Duration::from_secs(5 + (size.saturating_mul(120) >> 30))
}

/// The record of what was sent (or found) for `e`.
fn record(e: &Entry, d: &Digests) -> FileRec {
    FileRec::sent(e.stat, d.sha256)
}
