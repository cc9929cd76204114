//! The upload protocol. Streams the file once, hashing as it goes; a
//! failed upload is tried again with a new link (links are single-use), but
//! first the Disk is asked whether the file landed anyway.
//!
//! Right after getting a link, before the first byte, the journal gets
//! `Pending {size, operation, at}`; just before the body's last bytes go
//! out, the same record gets the body's sha256, its mark: only from then on
//! can the Disk store the file. Throttled types go up under a temporary
//! name, then move into place.

use std::io::{self, Read};

use crate::progress::Progress;
use std::time::{Duration, Instant};

use super::{Done, Executor, record, settle_limit};
use sha2::Digest;

use crate::digest::{Digests, Hashing, Hex};
use crate::media;
use crate::remote::{self, Error, OpStatus, Placed};
use crate::retry::{Backoff, Poll};
use crate::scan::{self, Entry};
use crate::state::{Change, Mark, Pending, Store};
use crate::units::{self, human_bytes, now_secs};

/// Files at least this large are checked against the account's per-file
/// limit and free space before they are sent: larger than the socket
/// buffers, so a refusal before the body would be a broken pipe.
const ROOM_CHECK_MIN: u64 = 4 << 20;

/// Files at least this large make the note "every byte may now go out"
/// durable before their last bytes: for them a crash right after the body
/// can leave the Disk finalising for a while. For smaller files the note
/// survives a kill, and a power cut that loses it only sends the file again.
const DURABLE_MARK_MIN: u64 = 1 << 20;

/// Uploads longer than this report their progress, and again this often.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

impl Executor<'_> {
    /// A file the state calls new is not expected on the Disk, so it is
    /// sent without `overwrite`: that costs nothing, and a refusal says
    /// the state is older than the Disk (a restored backup of the state
    /// folder, saves lost in a power cut). Then ysync looks first.
    pub(super) fn upload(&mut self, e: &Entry, remote_path: &str) -> Result<Done, Error> {
        let fresh = !self.store.state().tracks(&e.path, false);
        self.upload_as(e, remote_path, fresh)
    }

    pub(super) fn upload_as(&mut self, e: &Entry, remote_path: &str, fresh: bool) -> Result<Done, Error> {
        let started = Instant::now();
        let succeeded = self.settle_pending(&e.path)?;
        // An earlier attempt may have landed whole, its answer lost to a
        // crash: when the Disk holds exactly this file, nothing is sent again
        // (waiting, if its operation succeeded, until the Disk shows it).
        let landed_before = self.store.state().pending.get(&e.path).is_some_and(Pending::may_have_landed);
        let wait = if succeeded { settle_limit(e.size()) } else { Duration::ZERO };
        if landed_before && let Some(done) = self.adopt_if_there(e, remote_path, wait)? {
            return Ok(done);
        }
        self.check_room(e.size())?;
        let temp =
            (self.cfg.throttle_workaround && media::is_throttled(&e.path, &self.cfg.throttled_ext)).then(|| media::temp_name(&e.path));
        let target = temp.as_ref().map_or_else(|| remote_path.to_string(), |t| remote::join(&self.cfg.remote_dir, t));
        let sent = match self.send(e, &target, temp.as_deref(), temp.is_some() || !fresh, !fresh) {
            Ok(Some(d)) => d,
            Ok(None) => return Ok(Done::Vanished),
            // Sent without overwrite and refused: look first.
            Err(Error::AlreadyExists) if fresh && temp.is_none() => {
                return match self.adopt_if_there(e, remote_path, Duration::ZERO)? {
                    Some(done) => Ok(done),
                    None => self.upload_as(e, remote_path, false),
                };
            }
            Err(err) => {
                self.drop_temp(temp.is_some(), &target);
                return Err(err);
            }
        };
        let mut left = false;
        if temp.is_some() {
            match self.move_into_place(&target, remote_path, fresh, e.size(), &sent) {
                Ok(removed) => left = !removed,
                Err(err) => {
                    self.drop_temp(true, &target);
                    return Err(err);
                }
            }
        }
        let done = self.uploaded(e, &sent, started);
        if left {
            // The file is in place, but its temporary copy could not be
            // removed: an attempt of unknown fate with this content remembers
            // it, so the next cycle removes it, finds the file there and
            // sends nothing.
            let pending = Pending { mark: Some(Mark::Sha256(sent.sha256)), ..Pending::new(e.size(), None, temp, now_secs()) };
            self.commit(Change::Pending { path: e.path.clone(), pending });
        }
        Ok(done)
    }

    /// Does the Disk hold exactly this file at `remote_path` (an older state,
    /// or an upload whose answer a crash lost)? Then it is recorded without
    /// sending a byte. `None`: other content, or none; the caller uploads.
    /// Within `wait` a file the Disk does not show yet is asked again.
    fn adopt_if_there(&mut self, e: &Entry, remote_path: &str, wait: Duration) -> Result<Option<Done>, Error> {
        let Some(file) = self.open(e)? else { return Ok(Some(Done::Vanished)) };
        let d = crate::digest::hash_file(&file).map_err(Error::Local)?;
        let Some(there) = self.shown(remote_path, e.size(), &d, wait)? else { return Ok(None) };
        let mut rec = record(e, &d);
        if there.dates.mtime_ns != Some(e.stat.mtime_ns) && !self.date(&e.path, remote_path, e.stat.mtime_ns, None) {
            rec.stat.mtime_ns = super::UNDATED;
        }
        log::info!("adopted {} (already on the Disk, same sha256)", e.path);
        self.commit(Change::Put { path: e.path.clone(), rec });
        Ok(Some(Done::Adopted))
    }

    /// Sends the file to `target` until the Disk holds exactly its bytes:
    /// a new link per try, and after a failure a look whether it landed.
    /// Without `overwrite` a file already at `target` is not replaced:
    /// `AlreadyExists` comes back before any byte is sent.
    ///
    /// With `keep_old` (and `backup_dir`), the copy at the file's path is
    /// moved into `backup_dir` once, after the upload's intent is journalled:
    /// a crash right after the move leaves an upload of unknown fate, which
    /// the next cycle sends again, never a record of a copy that is gone.
    fn send(&mut self, e: &Entry, target: &str, temp: Option<&str>, overwrite: bool, keep_old: bool) -> Result<Option<Digests>, Error> {
        let mut backoff = Backoff::new();
        let mut keep_old = keep_old && self.cfg.backup_dir.is_some();
        loop {
            let Some(file) = self.open(e)? else { return Ok(None) };
            let link = self.remote.upload_link(target, overwrite)?;
            // Announced before the first byte, so a crash leaves a trace.
            let (size, now, temp) = (e.size(), now_secs(), temp.map(str::to_string));
            let pending = match self.store.state().pending.get(&e.path) {
                Some(before) => Pending { size, temp, ..before.next_attempt(link.operation.clone(), now) },
                None => Pending::new(size, link.operation.clone(), temp, now),
            };
            self.intent(Change::Pending { path: e.path.clone(), pending: pending.clone() })?;
            if std::mem::take(&mut keep_old) {
                self.keep_version(&e.path, &remote::join(&self.cfg.remote_dir, &e.path))?;
            }
            let body = Body { hashing: Hashing::new(file.take(size)), size, mark: Some((&mut *self.store, &e.path, pending)) };
            let mut body = Meter::new(body, &e.path, size, self.cfg.bwlimit).counted_in(&mut self.progress);
            let result = self.remote.put(&link, &mut body, size);
            let mut hashing = body.inner.hashing;
            if let Some(local) = hashing.local_error.take() {
                return Err(Error::Local(local));
            }
            let sent_all = hashing.count == size;
            let digests = hashing.digests();
            let err = match result {
                Ok(Placed::Now) => return Ok(Some(digests)),
                Ok(Placed::Later) if self.shows(target, size, &digests, settle_limit(size))? => return Ok(Some(digests)),
                Ok(Placed::Later) => Error::OperationFailed("the Disk does not show the uploaded content".into()),
                Err(err) => err,
            };
            // Every byte went out, and then the answer failed (a timeout while
            // the Disk finalised a big file, a reset): the upload's operation
            // says whether it landed, before anything is sent again.
            if sent_all && err.is_transient() && self.landed(link.operation.as_deref(), target, size, &digests)? {
                log::info!("{}: {err}, but the file landed; not sent again", e.path);
                return Ok(Some(digests));
            }
            let mark = Some(Mark::Sha256(digests.sha256));
            if sent_all && let Some(p) = self.store.state().pending.get(&e.path).filter(|p| p.mark != mark) {
                // It may still land later: remember what it would be.
                let pending = Pending { mark, ..p.clone() };
                self.commit(Change::Pending { path: e.path.clone(), pending });
            }
            if !backoff.wait(&e.path, &err) {
                return Err(err);
            }
        }
    }

    /// Best effort: a temporary left behind now is removed by the next run,
    /// which finds its name in the pending upload. Whether it is gone.
    fn drop_temp(&mut self, is_temp: bool, target: &str) -> bool {
        match is_temp.then(|| self.remote.delete(target, true, None)) {
            Some(Err(e)) => {
                log::debug!("removing the temporary {target}: {e}");
                false
            }
            _ => true,
        }
    }

    fn uploaded(&mut self, e: &Entry, d: &Digests, started: Instant) -> Done {
        if let Some(Some(room)) = &mut self.room {
            room.free = room.free.saturating_sub(e.size());
        }
        log::info!("uploaded {} ({}, {}s)", e.path, human_bytes(e.size()), units::secs(started.elapsed()));
        // The sent file carries its date (after a temporary name's move,
        // on the file's own path).
        let remote_path = remote::join(&self.cfg.remote_dir, &e.path);
        let mut rec = record(e, d);
        if !self.date(&e.path, &remote_path, e.stat.mtime_ns, Some((now_secs(), e.size()))) {
            rec.stat.mtime_ns = super::UNDATED;
        }
        // The scan's stat goes with the bytes sent: if the file changed
        // meanwhile, the next cycle sees other metadata and checks it again.
        let now = std::fs::symlink_metadata(self.cfg.local_dir.join(&e.path)).ok();
        if now.map(|m| scan::file_entry(e.path.clone(), &(&m).into())).as_ref() != Some(e) {
            log::info!("{} changed while it was uploaded; it is checked again next cycle", e.path);
        }
        self.commit(Change::Put { path: e.path.clone(), rec });
        Done::Uploaded { bytes: e.size() }
    }

    /// After an upload whose every byte went out but whose answer failed:
    /// did it land? Its operation says (waited for a bounded time: the Disk
    /// finalises big files before it answers, about 2 minutes per GiB); when
    /// it succeeded, or there is none, what the Disk shows decides.
    fn landed(&mut self, op: Option<&str>, path: &str, size: u64, d: &Digests) -> Result<bool, Error> {
        if let Some(op) = op {
            let mut poll = Poll::new(settle_limit(size));
            loop {
                match self.remote.operation(op)? {
                    OpStatus::Failed => return Ok(false),
                    OpStatus::Success => return self.shows(path, size, d, settle_limit(0)),
                    OpStatus::InProgress if poll.again() => {}
                    OpStatus::InProgress => break,
                }
            }
        }
        self.shows(path, size, d, Duration::ZERO)
    }

    /// Moves a fresh upload from its temporary name onto `remote_path`.
    /// Right after an upload the Disk may not show it yet (it finalises
    /// asynchronously: 404s and 500s for a while, R1 in
    /// real-disk-evidence.md), so a 404 is asked again for a bounded time,
    /// unless the move turns out to have happened (its answer lost).
    /// `Ok(false)`: the file is in place, but the temporary is still there.
    fn move_into_place(&mut self, temp: &str, remote_path: &str, fresh: bool, size: u64, d: &Digests) -> Result<bool, Error> {
        let mut poll = Poll::new(settle_limit(size));
        let mut overwrite = !fresh;
        loop {
            match self.remote.move_to(temp, remote_path, overwrite) {
                // Someone's file, or ours from an older state: the same
                // bytes stay, other content is replaced like any upload.
                Err(Error::AlreadyExists) if self.shows(remote_path, size, d, Duration::ZERO)? => return Ok(self.drop_temp(true, temp)),
                Err(Error::AlreadyExists) if !overwrite => overwrite = true,
                // The answer was lost but the move happened.
                Err(Error::NotFound) if self.shows(remote_path, size, d, Duration::ZERO)? => return Ok(true),
                Err(Error::NotFound) if poll.again() => {
                    log::debug!("{temp} is not shown yet (the Disk is finalising it); moving it again");
                }
                other => return other.map(|()| true),
            }
        }
    }

    /// A large file over the account's per-file limit or its free space is
    /// refused before its body is read, and the refusal then reaches ysync
    /// as a broken pipe (R4 in real-disk-evidence.md), which looks like a
    /// network error and would be sent again and again. So before the first
    /// large upload of a cycle ysync asks the Disk (one request) and does
    /// not send what cannot fit. Small files need no question: a refusal
    /// reaches ysync as the status it is.
    fn check_room(&mut self, size: u64) -> Result<(), Error> {
        if size < ROOM_CHECK_MIN {
            return Ok(());
        }
        if self.room.is_none() {
            self.room = Some(match self.remote.disk_info() {
                Ok(d) => Some(d),
                Err(e) if e.is_rejection() => return Err(e),
                Err(e) => {
                    log::debug!("asking for the free space failed ({e}); uploading without knowing it");
                    None
                }
            });
        }
        match self.room.as_ref().and_then(Option::as_ref) {
            Some(d) if d.max_file_size > 0 && size > d.max_file_size => Err(Error::TooLarge),
            Some(d) if size > d.free => Err(Error::NoRoom(d.free)),
            _ => Ok(()),
        }
    }
}

/// The body of one upload: the file's first `size` bytes, hashed on the
/// way. A file that ends early (it shrank since the scan: `copytruncate`, a
/// vacuumed database) fails the read at once instead of answering 0 for
/// ever, so the request ends short and the Disk keeps nothing of it. Just
/// before the last bytes are handed out, the upload's sha256 is journalled
/// (`mark`): from then on every byte may reach the Disk.
struct Body<'j, R> {
    hashing: Hashing<R>,
    size: u64,
    /// Where to note the mark, until it is noted.
    mark: Option<(&'j mut Store, &'j str, Pending)>,
}

impl<R: Read> Body<'_, R> {
    /// Journals the sha256 that the whole body will have. A failed write
    /// ends the body (the store remembers it, and the cycle stops).
    fn mark(&mut self) -> io::Result<()> {
        let Some((store, path, pending)) = self.mark.take() else { return Ok(()) };
        let mark = Mark::Sha256(Hex(self.hashing.sha256.clone().finalize().into()));
        let durable = self.size >= DURABLE_MARK_MIN;
        store.commit_mark(path, Pending { mark: Some(mark), ..pending }, durable).map_err(|e| io::Error::other(e.to_string()))
    }
}

impl<R: Read> Read for Body<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.hashing.count == self.size {
            self.mark()?; // an empty file: its one "last byte" is the end
            return Ok(0);
        }
        let n = self.hashing.read(buf)?;
        if n == 0 {
            let e = io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "the file shrank while it was uploaded ({} read of the {} it had); nothing of it is kept on the Disk, it is sent again next cycle",
                    human_bytes(self.hashing.count),
                    human_bytes(self.size)
                ),
            );
            let copy = io::Error::new(e.kind(), e.to_string());
            self.hashing.local_error = Some(e);
            return Err(copy);
        }
        if self.hashing.count == self.size {
            self.mark()?;
        }
        Ok(n)
    }
}

/// Caps the upload rate (`bwlimit`) and logs progress of long uploads
/// (unless the cycle's live line shows it).
pub(super) struct Meter<'p, R> {
    inner: R,
    /// The cycle's progress, told of every byte.
    progress: Option<&'p mut Progress>,
    path: String,
    size: u64,
    done: u64,
    limit: u64,
    start: Instant,
    next_report: Instant,
}

impl<'p, R: Read> Meter<'p, R> {
    pub(super) fn new(inner: R, path: &str, size: u64, limit: u64) -> Meter<'p, R> {
        let start = Instant::now();
        Meter { inner, progress: None, path: path.to_string(), size, done: 0, limit, start, next_report: start + PROGRESS_EVERY }
    }

    pub(super) fn counted_in(self, progress: &'p mut Progress) -> Meter<'p, R> {
        Meter { progress: Some(progress), ..self }
    }
}

impl<R: Read> Read for Meter<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Small reads keep the pacing smooth under a bandwidth cap.
        let want = if self.limit > 0 { buf.len().min((self.limit as usize / 8).max(4096)) } else { buf.len() };
        let n = self.inner.read(&mut buf[..want])?;
        self.done += n as u64;
        if self.limit > 0 {
            let due = Duration::from_nanos((u128::from(self.done) * 1_000_000_000 / u128::from(self.limit)) as u64);
            if let Some(wait) = due.checked_sub(self.start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        if let Some(p) = self.progress.as_deref_mut() {
            p.sent(n as u64);
        }
        let now = Instant::now();
        let live = self.progress.as_deref().is_some_and(Progress::is_live);
        if now >= self.next_report && self.size > 0 && !live {
            let rate = u128::from(self.done) * 1000 / self.start.elapsed().as_millis().max(1);
            let eta = u128::from(self.size - self.done.min(self.size)) / rate.max(1);
            log::info!(
                "uploading {}: {}% ({} of {}), {}/s, {}s left",
                self.path,
                self.done * 100 / self.size,
                human_bytes(self.done),
                human_bytes(self.size),
                human_bytes(rate as u64),
                eta
            );
            self.next_report = now + PROGRESS_EVERY;
        }
        Ok(n)
    }
}
