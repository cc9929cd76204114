//! One sync cycle: scan → plan → execute → save state.
//!
//! Every completed action is journalled (fsynced) before the next starts, and
//! every upload is announced before its first byte, so a crash at any moment
//! only repeats work: uploads overwrite, deleting a missing path succeeds, and
//! an upload of unknown fate is resolved by the next plan.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::config::{Config, DeleteMode};
use crate::logging;
use crate::media;
use crate::plan::{self, Action, human_bytes};
use crate::remote::{self, DiskInfo, Error, OpStatus, Placed, Remote};
use crate::retry::Backoff;
use crate::scan::{self, Entry, Kind};
use crate::state::{self, Change, FileRec, LastCycle, Moving, Pending, State, Store};

/// How a cycle ended; maps onto the exit codes of the contract.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Everything planned was done (or nothing was needed).
    Clean,
    /// Some items failed; they are retried next cycle.
    Failed(usize),
    /// Nothing was deleted because something looked wrong.
    SafetyStop(String),
    /// The Disk rejected the token; retrying is pointless.
    TokenRejected(String),
    /// The state could not be saved.
    StateError(String),
    /// The state could not be read; retrying is pointless.
    StateUnusable(String),
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            Outcome::Clean => write!(f, "ok"),
            Outcome::Failed(n) => write!(f, "{n} items failed (retried next cycle)"),
            Outcome::SafetyStop(m) => write!(f, "safety stop: {m}"),
            Outcome::TokenRejected(_) => write!(f, "the token was rejected"),
            Outcome::StateError(m) => write!(f, "the state could not be saved: {m}"),
            Outcome::StateUnusable(m) => write!(f, "{m}"),
        }
    }
}

impl Outcome {
    pub fn exit_code(&self) -> i32 {
        match self {
            Outcome::Clean => 0,
            Outcome::Failed(_) => 1,
            Outcome::StateError(_) => 1,
            Outcome::StateUnusable(_) => 2,
            Outcome::TokenRejected(_) => 3,
            Outcome::SafetyStop(_) => 4,
        }
    }
}

#[derive(Default)]
struct Tally {
    uploaded: u64,
    bytes: u64,
    unchanged: u64,
    folders: u64,
    deleted: u64,
    moved: u64,
    adopted: u64,
    failed: BTreeMap<String, String>,
    /// The Disk answered 507: no more uploads in this cycle.
    disk_full: bool,
}

/// A reader that hashes and counts what passes through it, and remembers
/// whether a failure came from the local file rather than the network.
/// sha256 identifies content. It is the only hash ysync computes over a
/// file: the md5 that the Disk's conditional delete takes comes from the
/// Disk when a deletion needs it (an md5 pass too would cost more CPU per
/// uploaded byte than all the rest: BENCHMARKS.md, "Upload CPU").
struct Hashing<R> {
    inner: R,
    sha256: Sha256,
    count: u64,
    local_error: Option<io::Error>,
}

impl<R: Read> Hashing<R> {
    fn new(inner: R) -> Hashing<R> {
        Hashing { inner, sha256: Sha256::new(), count: 0, local_error: None }
    }

    fn digests(self) -> Digests {
        Digests { sha256: state::hex(&self.sha256.finalize()) }
    }
}

struct Digests {
    sha256: String,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.sha256.update(&buf[..n]);
                self.count += n as u64;
                Ok(n)
            }
            Err(e) => {
                let copy = io::Error::new(e.kind(), e.to_string());
                self.local_error = Some(e);
                Err(copy)
            }
        }
    }
}

/// The body of one upload: the file's first `size` bytes, hashed on the
/// way. A file that ends early (it shrank since the scan: `copytruncate`, a
/// vacuumed database) fails the read at once instead of answering 0 for
/// ever, so the request ends short and the Disk keeps nothing of it. Just
/// before the last bytes are handed out, the upload's sha256 is journalled:
/// from then on every byte may reach the Disk (see [`Pending::may_land`]).
struct Body<'j, R> {
    hashing: Hashing<R>,
    size: u64,
    /// The journal and the pending record to complete with the mark.
    journal: Option<(&'j mut Store, String, Pending)>,
    /// The record written before the last bytes, for the state in memory.
    marked: Option<Change>,
    journal_error: Option<state::Error>,
}

/// Files at least this large make the note "every byte may now go out"
/// durable before their last bytes: for them a crash right after the body
/// can leave the Disk finalising for a while. For smaller files the note
/// survives a kill, and a power cut that loses it only sends the file again.
const DURABLE_MARK_MIN: u64 = 1 << 20;

impl<'j, R: Read> Body<'j, R> {
    fn new(inner: R, size: u64, journal: (&'j mut Store, String, Pending)) -> Body<'j, R> {
        Body { hashing: Hashing::new(inner), size, journal: Some(journal), marked: None, journal_error: None }
    }

    /// Journals the sha256 that the whole body will have.
    fn mark(&mut self) -> io::Result<()> {
        let Some((store, path, pending)) = self.journal.take() else { return Ok(()) };
        let mark = state::hex(&self.hashing.sha256.clone().finalize());
        let change = Change::Pending { path, pending: Pending { mark, ..pending } };
        let written =
            store.note(std::slice::from_ref(&change)).and_then(|()| if self.size >= DURABLE_MARK_MIN { store.sync() } else { Ok(()) });
        match written {
            Ok(()) => {
                self.marked = Some(change);
                Ok(())
            }
            Err(e) => {
                let io = io::Error::other(e.to_string());
                self.journal_error = Some(e);
                Err(io)
            }
        }
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

/// Caps the upload rate (`bwlimit`) and logs progress of long uploads.
struct Meter<R> {
    inner: R,
    path: String,
    size: u64,
    done: u64,
    limit: u64,
    start: Instant,
    next_report: Instant,
}

/// Uploads longer than this report their progress, and again this often.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

impl<R: Read> Meter<R> {
    fn new(inner: R, path: &str, size: u64, limit: u64) -> Meter<R> {
        let start = Instant::now();
        Meter { inner, path: path.to_string(), size, done: 0, limit, start, next_report: start + PROGRESS_EVERY }
    }

    fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Read> Read for Meter<R> {
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
        let now = Instant::now();
        if now >= self.next_report && self.size > 0 {
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

pub struct Syncer<'a> {
    cfg: &'a Config,
    remote: &'a mut dyn Remote,
    store: &'a mut Store,
    /// Loaded when a cycle needs it, and let go again once the files on
    /// disk end with its seal: an idle `run` then holds no state in memory.
    state: State,
    loaded: bool,
    /// Skipped paths already warned about in this process, so `run` does not
    /// repeat the same warning every interval.
    warned: HashSet<PathBuf>,
    /// Files the Disk refused as too large (413), with the size refused, so
    /// `run` does not send them again every cycle while they stay that size.
    too_large: HashMap<String, u64>,
    /// The state changed since the last snapshot.
    dirty: bool,
    /// Writing the journal failed: stop acting, nothing could be recorded.
    journal_error: Option<String>,
    /// An action found the Disk without something the state records.
    suspect: bool,
    /// The account's free space and per-file limit, asked once per cycle
    /// before the first large upload (`None`: not asked yet; `Some(None)`:
    /// the question failed, so uploads are not held back by it).
    room: Option<Option<DiskInfo>>,
}

impl<'a> Syncer<'a> {
    /// A renewed token, for the next requests.
    pub fn set_token(&mut self, token: &str) {
        self.remote.set_token(token);
    }

    pub fn new(cfg: &'a Config, remote: &'a mut dyn Remote, store: &'a mut Store) -> Syncer<'a> {
        Syncer {
            cfg,
            remote,
            store,
            state: State::new(&cfg.remote_dir),
            loaded: false,
            warned: HashSet::new(),
            too_large: HashMap::new(),
            dirty: false,
            journal_error: None,
            suspect: false,
            room: None,
        }
    }

    pub fn cycle(&mut self, dry_run: bool) -> Outcome {
        let start = Instant::now();
        self.room = None;
        let local = self.cfg.local_dir.display();
        let scan = match scan::scan(&self.cfg.local_dir, &self.cfg.exclude, self.cfg.one_file_system) {
            Ok(s) => s,
            Err(e) => return Outcome::SafetyStop(format!("local_dir {local} {e}; nothing was deleted")),
        };
        log::debug!("scanned {} entries in {} ms", scan.entries.len(), logging::ms(start.elapsed()));
        for s in &scan.skipped {
            if self.warned.insert(s.path.clone()) {
                log::warn!("skipped {}: {}", s.path.display(), s.reason);
            }
        }
        if !self.loaded {
            // The saved seal says what the state tracks: when the scan has
            // the same, nothing changed and the state need not be read.
            let compared = Instant::now();
            let saved = self.store.read_seal();
            let same = saved == Some(plan::seal_of(&scan, &self.cfg.remote_dir)) && !self.reconcile_due(self.store.sealed_reconciled());
            log::debug!(
                "state seal read and compared in {} ms: {}",
                logging::ms(compared.elapsed()),
                if same { "same" } else { "differs" }
            );
            if same {
                log::debug!("cycle done: nothing changed ({}s)", logging::secs(start.elapsed()));
                if dry_run {
                    println!("0 actions planned (dry run: nothing was changed)");
                }
                return Outcome::Clean;
            }
            match self.store.load(&self.cfg.remote_dir) {
                Ok(s) => (self.state, self.loaded) = (s, true),
                Err(e) => return Outcome::StateUnusable(e.to_string()),
            }
        }
        // The plan must know where an interrupted move left things.
        if !dry_run && let Err(e) = self.finish_move() {
            log::warn!("finishing an interrupted move failed: {e}; trying next cycle");
            return Outcome::Failed(1);
        }
        let opts = plan::Options {
            delete: self.cfg.delete,
            exclude: self.cfg.exclude.clone(),
            max_delete: self.cfg.max_delete,
            min_age_ns: self.cfg.min_age.as_nanos() as i64,
            now_ns: now_ns(),
        };
        let mut tally = Tally::default();
        let mut outcome;
        // A fresh state (first run, or the state file was lost) lists the
        // Disk to adopt what is there; so does a reconcile, when one is due
        // or when the Disk turns out to have lost what the state records
        // (then at once, in a second pass of this cycle).
        let mut listing = !self.state.dirs.contains("") || (!dry_run && self.reconcile_due(self.state.reconciled));
        let mut actions = 0;
        let (deferred, unmounted) = loop {
            self.suspect = false;
            // Either ends the cycle, but what an earlier pass did is sealed.
            let remote = if listing {
                match self.list_remote(dry_run) {
                    Ok(t) => t,
                    Err(e) => {
                        outcome = Some(Outcome::TokenRejected(e.to_string()));
                        break (Vec::new(), None);
                    }
                }
            } else {
                None
            };
            let plan = match plan::plan_with_remote(&scan, &self.state, remote.as_ref(), &opts) {
                Ok(p) => p,
                Err(stop) => {
                    outcome = Some(Outcome::SafetyStop(format!("safety stop in {local}: {stop}")));
                    break (Vec::new(), None);
                }
            };
            log::debug!("planned {} actions at {} ms", plan.actions.len(), logging::ms(start.elapsed()));
            let unmounted = (!plan.unmounted.is_empty()).then(|| {
                let which = plan.unmounted.join(", ");
                format!(
                    "safety stop in {local}: {which} was a mount point and is not mounted now (its folder is missing, empty, or on the \
                     parent's filesystem); nothing under it was deleted or uploaded, the rest was synced. Mount it again; to stop \
                     mirroring it, add `exclude = {}/` (its remote copies stay)",
                    plan.unmounted[0]
                )
            });
            for p in &plan.deferred {
                log::debug!("{p} changed less than min_age ago; later");
            }
            if dry_run {
                for a in &plan.actions {
                    println!("{a}");
                }
                if let Some(m) = &unmounted {
                    println!("{m}");
                }
                println!("{} actions planned (dry run: nothing was changed)", plan.actions.len());
                return Outcome::Clean;
            }
            if let Some(mounts) = plan.mounts.clone() {
                self.change(Change::Mounts(mounts));
            }
            actions += plan.actions.len();
            outcome = self.run_actions(&plan.actions, &mut tally);
            if self.suspect && !listing && outcome.is_none() {
                log::warn!("the Disk has lost something the state records; listing {} to repair it", self.cfg.remote_dir);
                listing = true;
                tally.failed.clear();
                continue;
            }
            break (plan.deferred, unmounted);
        };
        let outcome = outcome.unwrap_or(match unmounted {
            Some(m) => Outcome::SafetyStop(m),
            None if tally.failed.is_empty() => Outcome::Clean,
            None => Outcome::Failed(tally.failed.len()),
        });
        let failed = tally.failed.len();
        if self.dirty || failed > 0 || self.state.last.as_ref().is_some_and(|l| !l.failed.is_empty()) {
            self.change(Change::Last(LastCycle {
                ended: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
                result: outcome.to_string(),
                failed: std::mem::take(&mut tally.failed),
            }));
        }
        let saved = self.end_cycle();
        if actions > 0 || !deferred.is_empty() {
            log::info!(
                "cycle done: {} uploaded ({}), {} moved, {} adopted, {} unchanged, {} folders created, {} deleted, {} failed, {} deferred, {}s",
                tally.uploaded,
                human_bytes(tally.bytes),
                tally.moved,
                tally.adopted,
                tally.unchanged,
                tally.folders,
                tally.deleted,
                failed,
                deferred.len(),
                logging::secs(start.elapsed())
            );
        } else {
            log::debug!("cycle done: nothing to do ({}s)", logging::secs(start.elapsed()));
        }
        match saved {
            Err(e) if matches!(outcome, Outcome::Clean | Outcome::Failed(_)) => Outcome::StateError(e.to_string()),
            _ => outcome,
        }
    }

    /// Carries out the plan's actions in order under the one error policy:
    /// what ends the cycle (`Some`: a rejected token, a journal that cannot
    /// be written), what ends uploads only (a full Disk), what skips one file
    /// (over the size limit) and what fails one item until the next cycle.
    fn run_actions(&mut self, actions: &[Action], tally: &mut Tally) -> Option<Outcome> {
        for action in actions {
            if let Some(why) = self.skip_reason(action, tally) {
                tally.failed.insert(action.path().to_string(), why);
                continue;
            }
            let result = self.execute(action, tally);
            if let Some(e) = &self.journal_error {
                return Some(Outcome::StateError(e.clone()));
            }
            if self.store.journal_lines() >= state::JOURNAL_LIMIT
                && let Err(e) = self.store.save(&self.state)
            {
                return Some(Outcome::StateError(e.to_string()));
            }
            match result {
                Ok(()) => {}
                Err(e @ (Error::Unauthorized | Error::Forbidden(_))) => return Some(Outcome::TokenRejected(e.to_string())),
                Err(Error::InsufficientStorage) => {
                    tally.disk_full = true;
                    let free = self.disk_info().map(|d| human_bytes(d.free)).unwrap_or_else(|_| "unknown".into());
                    log::error!(
                        "the Disk is full ({free} free; {} needs {}): no more uploads in this cycle, deletions go on. \
                         Free some space or empty the Disk's trash",
                        action.path(),
                        action_size(action)
                    );
                    tally.failed.insert(action.path().to_string(), "the Disk is full".into());
                }
                Err(Error::TooLarge) => {
                    let limit = self.disk_info().map(|d| human_bytes(d.max_file_size)).unwrap_or_else(|_| "unknown".into());
                    let msg = format!("larger than the account allows per file ({limit}); skipped");
                    log::error!("{} ({}) is {msg}", action.path(), action_size(action));
                    if let Action::Upload(e) | Action::Check { entry: e, .. } = action {
                        self.too_large.insert(e.path.clone(), e.size);
                    }
                    tally.failed.insert(action.path().to_string(), msg);
                }
                Err(e) => {
                    // A folder the state records is not on the Disk: the
                    // Disk was emptied or edited behind ysync's back.
                    if matches!(e, Error::ParentMissing) || matches!((&e, action), (Error::NotFound, Action::Move { .. })) {
                        self.suspect = true;
                    }
                    log::warn!("failed: {action}: {e}");
                    tally.failed.insert(action.path().to_string(), e.to_string());
                }
            }
        }
        None
    }

    /// Is a full comparison of the Disk with the state due (`reconcile`)?
    fn reconcile_due(&self, last: u64) -> bool {
        let every = self.cfg.reconcile.as_secs();
        every > 0 && now_secs().saturating_sub(last) >= every
    }

    /// Lists `remote_dir`. With a state that tracks anything, this is a
    /// reconcile: whatever the state records that the Disk does not hold
    /// with the recorded size and sha256 is forgotten, so that the plan
    /// uploads or creates it again (never deletes: foreign files stay
    /// untouched). `Err` only for a rejected token; a listing that fails
    /// otherwise is a warning, and the cycle goes on without it.
    fn list_remote(&mut self, dry_run: bool) -> Result<Option<remote::Tree>, Error> {
        let started = Instant::now();
        let tree = match self.remote.tree(&self.cfg.remote_dir) {
            Ok(t) => t,
            Err(e @ (Error::Unauthorized | Error::Forbidden(_))) => return Err(e),
            Err(e) => {
                log::warn!("listing {} failed ({e}); trying again next cycle", self.cfg.remote_dir);
                return Ok(None);
            }
        };
        if dry_run {
            return Ok(tree);
        }
        let lost = plan::lost_on_disk(&self.state, tree.as_ref());
        let files = self.state.files.len();
        if !lost.is_empty() {
            log::warn!(
                "{} of {files} synced files and folders are not on the Disk as ysync left them (deleted or changed there); \
                 they are uploaded or created again, e.g. {}",
                lost.len(),
                lost.iter().take(3).map(|c| c.to_string()).collect::<Vec<_>>().join(", ")
            );
        } else if self.state.dirs.contains("") {
            log::info!("reconciled: the Disk holds the {files} synced files as recorded ({}s)", logging::secs(started.elapsed()));
        }
        // Forgotten as synced, but remembered as ysync's: each lost file
        // becomes an upload of unknown fate with the hash it had. So a file
        // the Disk only did not show yet (a fresh upload, R1) is still
        // recognised and deleted if it goes locally, and one someone edited
        // there is still left alone (its md5 is another).
        let now = now_secs();
        let mut changes = Vec::new();
        for path in lost {
            // The file itself, or a folder's files: one range of the sorted map.
            let prefix = format!("{path}/");
            let below = self.state.files.range(prefix.clone()..).take_while(|(p, _)| p.starts_with(&prefix));
            let owned: Vec<(String, FileRec)> =
                self.state.files.get_key_value(&path).into_iter().chain(below).map(|(p, r)| (p.clone(), r.clone())).collect();
            changes.push(Change::Forget { path });
            for (p, r) in owned {
                let pending = Pending {
                    size: r.size,
                    mark: r.sha256.to_string(),
                    op: String::new(),
                    temp: String::new(),
                    at: now,
                    earlier: Vec::new(),
                };
                changes.push(Change::Pending { path: p, pending });
            }
        }
        if tree.is_none() && self.state.dirs.contains("") {
            changes.push(Change::Forget { path: String::new() }); // remote_dir itself
        }
        changes.push(Change::Reconciled(now));
        self.changes(changes);
        Ok(tree)
    }

    fn execute(&mut self, action: &Action, tally: &mut Tally) -> Result<(), Error> {
        let remote_path = remote::join(&self.cfg.remote_dir, action.path());
        match action {
            Action::MkdirRoot => {
                if self.cfg.remote_dir != "/" {
                    self.remote.mkdir_all(&remote_path)?;
                    log::info!("created remote folder {}", self.cfg.remote_dir);
                }
                self.change(Change::Dir { path: String::new() });
            }
            Action::AdoptDir(p) => {
                log::debug!("folder {p} is on the Disk already");
                self.change(Change::Dir { path: p.clone() });
            }
            Action::Adopt { entry, remote } => {
                let Some(file) = self.open(entry)? else { return Ok(()) };
                let d = hash_file(&file).map_err(Error::Local)?;
                if d.sha256 != remote.sha256 {
                    return self.upload_as(entry, &remote_path, tally, false);
                }
                log::info!("adopted {} (already on the Disk, same sha256)", entry.path);
                tally.adopted += 1;
                self.change(Change::Put { path: entry.path.clone(), rec: record(entry, d) });
            }
            Action::Mkdir(p) => {
                // Announced first: a kill after the request could otherwise
                // leave a folder on the Disk that no state knows about.
                self.change(Change::Mkdir { path: p.clone() });
                self.remote.mkdir(&remote_path)?;
                log::info!("created folder {p}");
                tally.folders += 1;
                self.change(Change::Dir { path: p.clone() });
            }
            Action::Upload(e) => self.upload(e, &remote_path, tally)?,
            Action::Check { entry, old_sha256 } => {
                let Some(file) = self.open(entry)? else { return Ok(()) };
                let d = hash_file(&file).map_err(Error::Local)?;
                if &d.sha256 == old_sha256 {
                    log::info!("unchanged {} (metadata only)", entry.path);
                    tally.unchanged += 1;
                    self.change(Change::Put { path: entry.path.clone(), rec: record(entry, d) });
                } else {
                    self.upload(entry, &remote_path, tally)?;
                }
            }
            Action::Delete { path, kind, .. } if !self.tracked(path, *kind) => {
                log::debug!("{path} moved away earlier in this cycle; nothing to delete");
            }
            Action::Delete { path, kind, files } => {
                let to = if self.cfg.delete == DeleteMode::Permanent { "permanently" } else { "to the trash" };
                let result = match kind {
                    Kind::Dir => self.delete_folder(path, &remote_path),
                    Kind::File => self.delete_file(path, &remote_path),
                };
                match result {
                    Ok(()) => {
                        match kind {
                            Kind::Dir => log::info!("deleted folder {path} ({files} files) {to}"),
                            Kind::File => log::info!("deleted {path} {to}"),
                        }
                        tally.deleted += 1;
                    }
                    // Someone else put other content there: it is theirs now.
                    Err(Error::Md5Differs) => log::warn!(
                        "not deleted: {path} on the Disk is no longer the file ysync uploaded (changed by someone else); left alone"
                    ),
                    Err(e) => return Err(e),
                }
                self.change(Change::Forget { path: path.clone() });
            }
            Action::Forget { path, .. } => {
                log::info!("forgot {path} (delete = keep: the remote copy stays)");
                self.change(Change::Forget { path: path.clone() });
            }
            Action::Move { from, to, kind, after } => {
                let m = Moving { from: from.clone(), to: to.clone(), dir: *kind == Kind::Dir, after: after.clone() };
                self.move_(m)?;
                log::info!("{action}");
                tally.moved += 1;
            }
            Action::MoveOrUpload { entry, candidates } => {
                let Some(file) = self.open(entry)? else { return Ok(()) };
                let d = hash_file(&file).map_err(Error::Local)?;
                let found = candidates.iter().find(|(p, sha)| *sha == d.sha256 && self.state.files.contains_key(p)).map(|(p, _)| p.clone());
                let Some(from) = found else { return self.upload(entry, &remote_path, tally) };
                let after = vec![Change::Forget { path: from.clone() }, Change::Put { path: entry.path.clone(), rec: record(entry, d) }];
                let m = Moving { from: from.clone(), to: entry.path.clone(), dir: false, after };
                if let Err(e) = self.move_(m) {
                    log::debug!("moving {from} to {} failed ({e}); uploading instead", entry.path);
                    return self.upload(entry, &remote_path, tally);
                }
                log::info!("move {from} -> {} (same content)", entry.path);
                tally.moved += 1;
            }
        }
        Ok(())
    }

    /// A server-side move, announced in the journal first so that a crash
    /// mid-way is completed by the next cycle (see `finish_move`).
    fn move_(&mut self, m: Moving) -> Result<(), Error> {
        self.change(Change::Moving(Some(m.clone())));
        let (src, dst) = (remote::join(&self.cfg.remote_dir, &m.from), remote::join(&self.cfg.remote_dir, &m.to));
        // Files: like an upload, replace what is there. Folders: never
        // clobber a folder someone else has at the destination.
        // A source the Disk does not show may be a fresh upload it is still
        // finalising (R1): asked again for a few seconds before it counts.
        let mut poll = Poll::new(settle_limit(0));
        let result = loop {
            match self.remote.move_to(&src, &dst, !m.dir) {
                // Done already (by an earlier, interrupted run).
                Err(Error::NotFound) if self.remote.exists(&dst)? => break Ok(()),
                Err(Error::NotFound) if poll.again() => {}
                // Someone else's folder is there: move into it, piece by piece.
                Err(Error::AlreadyExists) if m.dir => {
                    log::info!("disk:{dst} exists already; moving the contents of {} into it", m.from);
                    break self.merge_into(&src, &dst);
                }
                other => break other,
            }
        };
        let mut settle = vec![Change::Moving(None)];
        match result {
            Ok(()) => {
                settle.splice(0..0, m.after);
                self.changes(settle);
                Ok(())
            }
            Err(e) => {
                self.changes(settle);
                Err(e)
            }
        }
    }

    /// A folder move onto a folder that is already there (someone made it
    /// on the web, or another client did): each entry of `src` is moved
    /// into `dst`, a sub-folder that exists there too the same way, and
    /// `src`, emptied, is deleted. A file of `src` replaces a file at its new
    /// path, as an upload there would (the local folder is the master);
    /// everything else in `dst` stays as it was. One listing per folder
    /// merged, one move per entry.
    fn merge_into(&mut self, src: &str, dst: &str) -> Result<(), Error> {
        let Some(items) = self.remote.list(src)? else { return Err(Error::NotFound) };
        for item in items {
            let (from, to) = (remote::join(src, &item.name), remote::join(dst, &item.name));
            match self.remote.move_to(&from, &to, !item.dir) {
                Err(Error::AlreadyExists) if item.dir => self.merge_into(&from, &to)?,
                other => other?,
            }
        }
        match self.remote.list(src)? {
            Some(left) if left.is_empty() => self.remote.delete(src, true, None),
            _ => Ok(()),
        }
    }

    /// A move that a crash interrupted is finished before anything else: it
    /// may have happened on the server, and the plan must know where things are.
    fn finish_move(&mut self) -> Result<(), Error> {
        let Some(m) = self.state.moving.clone() else { return Ok(()) };
        log::info!("finishing the interrupted move {} -> {}", m.from, m.to);
        match self.move_(m) {
            // Neither side has it, or both do: the state stays as it was.
            Err(Error::NotFound | Error::AlreadyExists) => Ok(()),
            other => other,
        }
    }

    /// Does the state still track `path` (a move may have taken it away)?
    fn tracked(&self, path: &str, kind: Kind) -> bool {
        match kind {
            Kind::Dir => self.state.dirs.contains(path) || self.state.mkdirs.contains(path),
            Kind::File => self.state.files.contains_key(path) || self.state.pending.contains_key(path),
        }
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
        self.settle_pending(path)?;
        let permanently = self.cfg.delete == DeleteMode::Permanent;
        let pending = self.state.pending.get(path).cloned();
        let recorded = self.state.files.get(path).cloned();
        let Some(size) = recorded.as_ref().map(|r| r.size).or(pending.as_ref().map(|p| p.size)) else {
            return Err(Error::Md5Differs);
        };
        // A fresh upload the Disk is still finalising shows no hashes yet (R1).
        let unhashed = |f: &remote::RemoteFile| f.sha256.is_empty() && f.md5.is_empty() && f.size == size;
        let Some(f) = self.look(remote_path, settle_limit(size), |f| f.is_none_or(|f| !unhashed(f)))? else {
            return Ok(()); // gone already, or the unconfirmed upload never landed
        };
        let by_record = recorded.is_some_and(|r| r.is(&f.sha256, &f.md5));
        // Records from before ysync noted a mark ahead of the last bytes
        // (`at == 0`) may lack it: the size is the best guard.
        let by_pending = pending.is_some_and(|p| p.is_ours(&f.sha256, &f.md5) || (p.at == 0 && p.mark.is_empty() && f.size == p.size));
        if !(by_record || by_pending) {
            return Err(Error::Md5Differs);
        }
        self.remote.delete(remote_path, permanently, (!f.md5.is_empty()).then_some(f.md5.as_str()))
    }

    /// Deletes a folder that is gone locally. With one request only when its
    /// listing holds nothing but ysync's (tracked folders, and files with the
    /// size and md5 or sha256 that ysync uploaded): someone's phone upload or
    /// a file edited on the web must not go with it. Otherwise ysync's files
    /// go one by one, and its sub-folders with nobody else's content under
    /// them with one request each; the rest stays, with one warning.
    fn delete_folder(&mut self, path: &str, remote_path: &str) -> Result<(), Error> {
        let permanently = self.cfg.delete == DeleteMode::Permanent;
        let Some(tree) = self.remote.tree(remote_path)? else { return Ok(()) }; // gone already
        let full = |rel: &str| format!("{path}/{rel}");
        let ours = |rel: &str, item: &remote::Item| {
            let p = full(rel);
            let name = rel.rsplit('/').next().unwrap_or(rel);
            if name.starts_with(".ysync-") {
                return true; // a temporary name (or an older version's md5 probe)
            }
            if item.dir {
                return self.state.dirs.contains(&p) || self.state.mkdirs.contains(&p);
            }
            let recorded = self.state.files.get(&p).is_some_and(|r| {
                let unhashed = item.md5.is_empty() && item.sha256.is_empty();
                item.size == r.size && (unhashed || r.is(&item.sha256, &item.md5))
            });
            recorded || self.state.pending.get(&p).is_some_and(|pending| pending.is_ours(&item.sha256, &item.md5))
        };
        let foreign: Vec<&String> = tree.iter().filter(|(rel, item)| !ours(rel, item)).map(|(rel, _)| rel).collect();
        if foreign.is_empty() {
            return self.remote.delete(remote_path, permanently, None);
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
            let md5 = (!item.dir && !item.md5.is_empty()).then_some(item.md5.as_str());
            match self.remote.delete(&target, permanently, md5) {
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
    /// ([`Pending::may_land`]): one cut short, or whose link died unused,
    /// is not waited for, whatever its operation says (the Disk reports a
    /// link's operation `in-progress` from the moment it is issued).
    ///
    /// `true` when the earlier upload's operation succeeded: the file is on
    /// the Disk, though it may not show it for a while yet.
    fn settle_pending(&mut self, path: &str) -> Result<bool, Error> {
        let Some(p) = self.state.pending.get(path).cloned() else { return Ok(false) };
        let mut succeeded = false;
        if !p.op.is_empty() && p.may_land(now_secs()) {
            let limit = settle_limit(p.size);
            let mut poll = Poll::new(limit);
            loop {
                match self.remote.operation(&p.op)? {
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
        if !p.temp.is_empty() {
            self.remote.delete(&remote::join(&self.cfg.remote_dir, &p.temp), true, None)?;
        }
        // Settled for this process: nothing to wait for or remove again.
        if let Some(p) = self.state.pending.get_mut(path) {
            (p.op, p.temp) = (String::new(), String::new());
        }
        Ok(succeeded)
    }

    /// Applies a change to the state and journals it.
    fn change(&mut self, c: Change) {
        self.changes(vec![c]);
    }

    /// Applies changes to the state and journals them with one fsync.
    fn changes(&mut self, cs: Vec<Change>) {
        if let Err(e) = self.store.record(&cs) {
            log::error!("{e}; stopping this cycle");
            self.journal_error.get_or_insert(e.to_string());
        }
        cs.iter().for_each(|c| self.state.apply(c));
        self.dirty = true;
    }

    /// Streams the file once, hashing as it goes; records what was sent.
    /// A failed upload is tried again with a new link (links are single-use),
    /// but first the Disk is asked whether the file landed anyway.
    fn upload(&mut self, e: &Entry, remote_path: &str, tally: &mut Tally) -> Result<(), Error> {
        // A file the state calls new is not expected on the Disk, so it is
        // sent without `overwrite`: that costs nothing, and a refusal says
        // the state is older than the Disk (a restored backup of the state
        // folder, saves lost in a power cut). Then ysync looks first.
        let fresh = !self.state.files.contains_key(&e.path) && !self.state.pending.contains_key(&e.path);
        self.upload_as(e, remote_path, tally, fresh)
    }

    fn upload_as(&mut self, e: &Entry, remote_path: &str, tally: &mut Tally, fresh: bool) -> Result<(), Error> {
        let started = Instant::now();
        let succeeded = self.settle_pending(&e.path)?;
        // An earlier attempt may have landed whole, its answer lost to a
        // crash: when the Disk holds exactly this file, nothing is sent again
        // (waiting, if its operation succeeded, until the Disk shows it).
        let landed_before = self.state.pending.get(&e.path).is_some_and(|p| !p.mark.is_empty() || !p.earlier.is_empty());
        let wait = if succeeded { settle_limit(e.size) } else { Duration::ZERO };
        if landed_before && self.adopt_if_there(e, remote_path, tally, wait)? {
            return Ok(());
        }
        self.check_room(e.size)?;
        // Throttled types go up under a neutral name, then move into place.
        let temp =
            (self.cfg.throttle_workaround && media::is_throttled(&e.path, &self.cfg.throttled_ext)).then(|| media::temp_name(&e.path));
        let target = temp.as_ref().map_or_else(|| remote_path.to_string(), |t| remote::join(&self.cfg.remote_dir, t));
        let sent = match self.send(e, &target, temp.as_deref().unwrap_or_default(), temp.is_some() || !fresh) {
            Ok(Some(d)) => d,
            Ok(None) => return Ok(()), // vanished or unreadable since the scan
            // Sent without overwrite and refused: look first.
            Err(Error::AlreadyExists) if fresh && temp.is_none() => {
                return match self.adopt_if_there(e, remote_path, tally, Duration::ZERO)? {
                    true => Ok(()),
                    false => self.upload_as(e, remote_path, tally, false),
                };
            }
            Err(err) => {
                self.drop_temp(temp.is_some(), &target);
                return Err(err);
            }
        };
        if temp.is_some()
            && let Err(err) = self.move_into_place(&target, remote_path, fresh, e.size, &sent.sha256)
        {
            self.drop_temp(true, &target);
            return Err(err);
        }
        self.uploaded(e, sent, started, tally)
    }

    /// Moves a fresh upload from its temporary name onto `remote_path`.
    /// Right after an upload the Disk may not show it yet (it finalises
    /// asynchronously: 404s and 500s for a while, R1 in
    /// real-disk-evidence.md), so a 404 is asked again for a bounded time,
    /// unless the move turns out to have happened (its answer lost).
    fn move_into_place(&mut self, temp: &str, remote_path: &str, fresh: bool, size: u64, sha256: &str) -> Result<(), Error> {
        let mut poll = Poll::new(settle_limit(size));
        let mut overwrite = !fresh;
        loop {
            match self.remote.move_to(temp, remote_path, overwrite) {
                // Someone's file, or ours from an older state: the same
                // bytes stay, other content is replaced like any upload.
                Err(Error::AlreadyExists) if self.shows(remote_path, size, sha256, Duration::ZERO)? => {
                    self.drop_temp(true, temp);
                    return Ok(());
                }
                Err(Error::AlreadyExists) if !overwrite => overwrite = true,
                // The answer was lost but the move happened.
                Err(Error::NotFound) if self.shows(remote_path, size, sha256, Duration::ZERO)? => return Ok(()),
                Err(Error::NotFound) if poll.again() => {
                    log::debug!("{temp} is not shown yet (the Disk is finalising it); moving it again");
                }
                other => return other,
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
                Err(e @ (Error::Unauthorized | Error::Forbidden(_))) => return Err(e),
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

    /// The account as last asked in this cycle, or asked now.
    fn disk_info(&mut self) -> Result<DiskInfo, Error> {
        match self.room.clone().flatten() {
            Some(d) => Ok(d),
            None => self.remote.disk_info(),
        }
    }

    /// Does the Disk hold exactly this file at `remote_path` (an older state,
    /// or an upload whose answer a crash lost)? Then it is recorded without
    /// sending a byte. `false`: other content, or none; the caller uploads.
    /// Within `wait` a file the Disk does not show yet is asked again.
    fn adopt_if_there(&mut self, e: &Entry, remote_path: &str, tally: &mut Tally, wait: Duration) -> Result<bool, Error> {
        let Some(file) = self.open(e)? else { return Ok(true) }; // gone since the scan: nothing to send
        let d = hash_file(&file).map_err(Error::Local)?;
        if !self.shows(remote_path, e.size, &d.sha256, wait)? {
            return Ok(false);
        }
        log::info!("adopted {} (already on the Disk, same sha256)", e.path);
        tally.adopted += 1;
        self.change(Change::Put { path: e.path.clone(), rec: record(e, d) });
        Ok(true)
    }

    /// Sends the file to `target` until the Disk holds exactly its bytes:
    /// a new link per try, and after a failure a look whether it landed.
    /// Without `overwrite` a file already at `target` is not replaced:
    /// `AlreadyExists` comes back before any byte is sent.
    fn send(&mut self, e: &Entry, target: &str, temp: &str, overwrite: bool) -> Result<Option<Digests>, Error> {
        let mut backoff = Backoff::new();
        loop {
            let Some(file) = self.open(e)? else { return Ok(None) };
            let link = self.remote.upload_link(target, overwrite)?;
            // Announced before the first byte, so a crash leaves a trace.
            let pending = match self.state.pending.get(&e.path) {
                Some(before) => Pending { size: e.size, temp: temp.to_string(), ..before.next_attempt(link.operation.clone(), now_secs()) },
                None => Pending {
                    size: e.size,
                    mark: String::new(),
                    op: link.operation.clone(),
                    temp: temp.to_string(),
                    at: now_secs(),
                    earlier: Vec::new(),
                },
            };
            self.change(Change::Pending { path: e.path.clone(), pending: pending.clone() });
            if self.journal_error.is_some() {
                return Err(Error::Local(io::Error::other("the state journal cannot be written")));
            }
            let journal = (&mut *self.store, e.path.clone(), pending);
            let mut body = Meter::new(Body::new(file.take(e.size), e.size, journal), &e.path, e.size, self.cfg.bwlimit);
            let result = self.remote.put(&link, &mut body, e.size);
            let Body { hashing: mut body, marked, journal_error, .. } = body.into_inner();
            if let Some(err) = journal_error {
                log::error!("{err}; stopping this cycle");
                self.journal_error.get_or_insert(err.to_string());
            }
            if let Some(c) = marked {
                self.state.apply(&c);
            }
            if let Some(local) = body.local_error.take() {
                return Err(Error::Local(local));
            }
            let sent_all = body.count == e.size;
            let digests = body.digests();
            let wait = settle_limit(e.size);
            let err = match result {
                Ok(Placed::Now) => return Ok(Some(digests)),
                Ok(Placed::Later) if self.shows(target, e.size, &digests.sha256, wait)? => return Ok(Some(digests)),
                Ok(Placed::Later) => Error::OperationFailed("the Disk does not show the uploaded content".into()),
                Err(err) => err,
            };
            // Every byte went out, and then the answer failed (a timeout while
            // the Disk finalised a big file, a reset): the upload's operation
            // says whether it landed, before anything is sent again.
            if sent_all && err.is_transient() && self.landed(&link.operation, target, e.size, &digests.sha256)? {
                log::info!("{}: {err}, but the file landed; not sent again", e.path);
                return Ok(Some(digests));
            }
            if sent_all && let Some(p) = self.state.pending.get(&e.path).filter(|p| p.mark != digests.sha256) {
                // It may still land later: remember what it would be.
                let pending = Pending { mark: digests.sha256.clone(), ..p.clone() };
                self.change(Change::Pending { path: e.path.clone(), pending });
            }
            if !backoff.wait(&e.path, &err) {
                return Err(err);
            }
        }
    }

    /// Best effort: a temporary left behind now is removed by the next run,
    /// which finds its name in the pending upload.
    fn drop_temp(&mut self, is_temp: bool, target: &str) {
        if is_temp && let Err(e) = self.remote.delete(target, true, None) {
            log::debug!("removing the temporary {target}: {e}");
        }
    }

    fn uploaded(&mut self, e: &Entry, d: Digests, started: Instant, tally: &mut Tally) -> Result<(), Error> {
        if let Some(Some(room)) = &mut self.room {
            room.free = room.free.saturating_sub(e.size);
        }
        log::info!("uploaded {} ({}, {}s)", e.path, human_bytes(e.size), logging::secs(started.elapsed()));
        tally.uploaded += 1;
        tally.bytes += e.size;
        // The scan's stat goes with the bytes sent: if the file changed
        // meanwhile, the next cycle sees other metadata and checks it again.
        if self.stat_now(e).as_ref() != Some(e) {
            log::info!("{} changed while it was uploaded; it is checked again next cycle", e.path);
        }
        self.change(Change::Put { path: e.path.clone(), rec: record(e, d) });
        Ok(())
    }

    /// After an upload whose every byte went out but whose answer failed:
    /// did it land? Its operation says (waited for a bounded time: the Disk
    /// finalises big files before it answers, about 2 minutes per GiB); when
    /// it succeeded, or there is none, what the Disk shows decides.
    fn landed(&mut self, op: &str, path: &str, size: u64, sha256: &str) -> Result<bool, Error> {
        if !op.is_empty() {
            let mut poll = Poll::new(settle_limit(size));
            loop {
                match self.remote.operation(op)? {
                    OpStatus::Failed => return Ok(false),
                    OpStatus::Success => return self.shows(path, size, sha256, settle_limit(0)),
                    OpStatus::InProgress if poll.again() => {}
                    OpStatus::InProgress => break,
                }
            }
        }
        self.shows(path, size, sha256, Duration::ZERO)
    }

    /// Does the Disk hold exactly these bytes at `path`? A fresh upload may
    /// be missing, unhashed or answered with a 5xx for a while (R1): within
    /// `wait` that is asked again; then what it shows decides.
    fn shows(&mut self, path: &str, size: u64, sha256: &str, wait: Duration) -> Result<bool, Error> {
        match self.look(path, wait, |f| f.is_some_and(|f| !f.sha256.is_empty())) {
            Ok(f) => Ok(f.is_some_and(|f| f.size == size && f.sha256 == sha256)),
            Err(e) if e.is_transient() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The file at `path` as the Disk describes it, asked again (transient
    /// errors too) until `settled` says the answer is final or `wait` has
    /// passed; then the last answer, which may be that transient error.
    fn look(
        &mut self,
        path: &str,
        wait: Duration,
        settled: impl Fn(Option<&remote::RemoteFile>) -> bool,
    ) -> Result<Option<remote::RemoteFile>, Error> {
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

    /// Opens without blocking (in case the path became a FIFO since the scan)
    /// and makes sure it is still a regular file. `None`: it vanished since
    /// the scan (or cannot be read), which is not an error of this cycle.
    fn open(&self, e: &Entry) -> Result<Option<File>, Error> {
        const O_NONBLOCK: i32 = if cfg!(any(target_arch = "mips", target_arch = "mips64")) { 0x80 } else { 0o4000 };
        let path = self.cfg.local_dir.join(&e.path);
        let f = match OpenOptions::new().read(true).custom_flags(O_NONBLOCK).open(&path) {
            Ok(f) => f,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                log::info!("{} vanished before it could be uploaded", e.path);
                return Ok(None);
            }
            // Like an unreadable folder: a warning, the remote copy and the
            // state stay as they are until the permissions are fixed.
            Err(err) if err.kind() == io::ErrorKind::PermissionDenied => {
                log::warn!("skipped {}: cannot be read: {err}", path.display());
                return Ok(None);
            }
            Err(err) => return Err(Error::Local(err)),
        };
        if !f.metadata().map_err(Error::Local)?.is_file() {
            return Err(Error::Local(io::Error::other("is no longer a regular file")));
        }
        Ok(Some(f))
    }

    /// Why `action` is not even tried in this cycle, if it is not.
    fn skip_reason(&self, action: &Action, tally: &Tally) -> Option<String> {
        if let Some(dir) = failed_ancestor(&tally.failed, action.path()) {
            return Some(format!("its folder {dir} could not be created"));
        }
        let (Action::Upload(e) | Action::Check { entry: e, .. } | Action::MoveOrUpload { entry: e, .. } | Action::Adopt { entry: e, .. }) =
            action
        else {
            return None;
        };
        if tally.disk_full {
            return Some("the Disk is full".into());
        }
        if self.too_large.get(&e.path) == Some(&e.size) {
            return Some("larger than the account allows per file; skipped".into());
        }
        None
    }

    fn stat_now(&self, e: &Entry) -> Option<Entry> {
        let m = std::fs::symlink_metadata(self.cfg.local_dir.join(&e.path)).ok()?;
        Some(scan::file_entry(e.path.clone(), &m))
    }

    /// Ends a cycle on disk. The journal already holds every change: it is
    /// made durable and sealed, and folded into a new snapshot only once it
    /// has grown (rewriting 100 000 records for one change would cost more
    /// than the rest of an idle cycle). A sealed state is let go: the next
    /// cycle reads it again only if the scan does not match the seal.
    fn end_cycle(&mut self) -> Result<(), state::Error> {
        let seal = self.state.seal();
        match seal {
            _ if self.dirty && self.store.compaction_due(self.state.files.len()) => self.store.save(&self.state)?,
            Some(new) if seal != self.store.seal() => self.store.write_seal(new, self.state.reconciled)?,
            _ if self.dirty => self.store.sync()?,
            _ => {}
        }
        self.dirty = false;
        if seal.is_some() && seal == self.store.seal() {
            (self.state, self.loaded) = (State::new(&self.cfg.remote_dir), false);
        }
        Ok(())
    }
}

/// One bounded wait between looks at the Disk: pauses of 250 ms doubling
/// to 2 s, until `limit` has passed. Every poll loop of the executor uses it.
struct Poll {
    deadline: Instant,
    pause: Duration,
}

impl Poll {
    fn new(limit: Duration) -> Poll {
        Poll { deadline: Instant::now() + limit, pause: Duration::from_millis(250) }
    }

    /// Sleeps before the next look; `false`, without sleeping, once the
    /// deadline has passed.
    fn again(&mut self) -> bool {
        if Instant::now() >= self.deadline {
            return false;
        }
        std::thread::sleep(self.pause);
        self.pause = (self.pause * 2).min(Duration::from_secs(2));
        true
    }
}

/// Files at least this large are checked against the account's per-file
/// limit and free space before they are sent: larger than the socket
/// buffers, so a refusal before the body would be a broken pipe.
const ROOM_CHECK_MIN: u64 = 4 << 20;

/// How long to wait for an earlier upload of unknown fate, whose every
/// byte may have gone out, to end: the Disk finalises a body before it
/// answers, about 2 minutes per GiB (rclone's docs, `backend/yandex`), and
/// small files within a second.
fn settle_limit(size: u64) -> Duration {
    Duration::from_secs(5 + (size.saturating_mul(120) >> 30))
}

fn record(e: &Entry, d: Digests) -> FileRec {
    let hex = "digests are hex";
    FileRec {
        size: e.size,
        mtime: e.mtime_ns,
        ctime: e.ctime_ns,
        ino: e.inode,
        sha256: state::Hex::parse(&d.sha256).expect(hex),
        md5: state::Hex::UNKNOWN,
    }
}

/// The sha256 of a whole file, as lowercase hex.
pub fn sha256_of(f: &File) -> io::Result<String> {
    hash_file(f).map(|d| d.sha256)
}

fn hash_file(f: &File) -> io::Result<Digests> {
    let mut h = Hashing::new(f);
    io::copy(&mut h, &mut io::sink())?;
    Ok(h.digests())
}

fn action_size(a: &Action) -> String {
    match a {
        Action::Upload(e) | Action::Check { entry: e, .. } | Action::MoveOrUpload { entry: e, .. } => human_bytes(e.size),
        _ => "?".into(),
    }
}

/// The failed folder that `path` lies in, if any.
fn failed_ancestor<'m>(failed: &'m BTreeMap<String, String>, path: &str) -> Option<&'m str> {
    // `""` is remote_dir itself: nothing can go in when it could not be made.
    failed.keys().find(|d| path.len() > d.len() && (d.is_empty() || scan::is_under(path, d))).map(String::as_str)
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn now_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64)
}
