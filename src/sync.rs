//! One sync cycle: scan → plan → execute → save state.
//!
//! The state is updated in memory after every completed action and written
//! at most once a second (and at the end of the cycle). A crash in between
//! only repeats work: uploads use overwrite and deletions of missing paths
//! succeed, so the remote never ends up with duplicates.

use std::collections::{BTreeMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::config::{Config, DeleteMode};
use crate::plan::{self, Action, human_bytes};
use crate::remote::{self, Error, Remote};
use crate::scan::{self, Entry, Kind};
use crate::state::{self, FileRec, LastCycle, State, Store};

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
}

impl Outcome {
    pub fn exit_code(&self) -> i32 {
        match self {
            Outcome::Clean => 0,
            Outcome::Failed(_) => 1,
            Outcome::StateError(_) => 1,
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
    failed: BTreeMap<String, String>,
}

/// A reader that hashes and counts what passes through it, and remembers
/// whether a failure came from the local file rather than the network.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
    local_error: Option<io::Error>,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.hasher.update(&buf[..n]);
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

pub struct Syncer<'a> {
    cfg: &'a Config,
    remote: &'a mut dyn Remote,
    store: &'a Store,
    state: State,
    /// Skipped paths already warned about in this process, so `run` does not
    /// repeat the same warning every interval.
    warned: HashSet<PathBuf>,
    dirty: bool,
    last_save: Instant,
}

impl<'a> Syncer<'a> {
    pub fn new(cfg: &'a Config, remote: &'a mut dyn Remote, store: &'a Store, state: State) -> Syncer<'a> {
        Syncer { cfg, remote, store, state, warned: HashSet::new(), dirty: false, last_save: Instant::now() }
    }

    pub fn cycle(&mut self, dry_run: bool) -> Outcome {
        let start = Instant::now();
        let local = self.cfg.local_dir.display();
        let scan = match scan::scan(&self.cfg.local_dir, &self.cfg.exclude) {
            Ok(s) => s,
            Err(e) => return Outcome::SafetyStop(format!("local_dir {local} {e}; nothing was deleted")),
        };
        for s in &scan.skipped {
            if self.warned.insert(s.path.clone()) {
                log::warn!("skipped {}: {}", s.path.display(), s.reason);
            }
        }
        let opts = plan::Options {
            delete: self.cfg.delete,
            max_delete: self.cfg.max_delete,
            min_age_ns: self.cfg.min_age.as_nanos() as i64,
            now_ns: now_ns(),
        };
        let plan = match plan::plan(&scan, &self.state, &opts) {
            Ok(p) => p,
            Err(stop) => return Outcome::SafetyStop(format!("safety stop in {local}: {stop}")),
        };
        for p in &plan.deferred {
            log::debug!("{p} changed less than min_age ago; later");
        }
        if dry_run {
            for a in &plan.actions {
                println!("{a}");
            }
            println!("{} actions planned (dry run: nothing was changed)", plan.actions.len());
            return Outcome::Clean;
        }

        let mut tally = Tally::default();
        let mut outcome = None;
        for action in &plan.actions {
            if let Some(dir) = failed_ancestor(&tally.failed, action.path()) {
                tally.failed.insert(action.path().to_string(), format!("its folder {dir} could not be created"));
                continue;
            }
            match self.execute(action, &mut tally) {
                Ok(()) => self.save_soon(),
                Err(e @ (Error::Unauthorized | Error::Forbidden(_))) => {
                    outcome = Some(Outcome::TokenRejected(e.to_string()));
                    break;
                }
                Err(e) => {
                    log::warn!("failed: {action}: {e}");
                    tally.failed.insert(action.path().to_string(), e.to_string());
                }
            }
        }
        let outcome = outcome.unwrap_or(if tally.failed.is_empty() { Outcome::Clean } else { Outcome::Failed(tally.failed.len()) });
        if self.dirty || !tally.failed.is_empty() || self.state.last.as_ref().is_some_and(|l| !l.failed.is_empty()) {
            self.state.last = Some(LastCycle {
                ended: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
                result: format!("{outcome:?}"),
                failed: std::mem::take(&mut tally.failed),
            });
            self.dirty = true;
        }
        let saved = self.save();
        if !plan.actions.is_empty() || !plan.deferred.is_empty() {
            log::info!(
                "cycle done: {} uploaded ({}), {} unchanged, {} folders created, {} deleted, {} failed, {} deferred, {:.1}s",
                tally.uploaded,
                human_bytes(tally.bytes),
                tally.unchanged,
                tally.folders,
                tally.deleted,
                self.state.last.as_ref().map_or(0, |l| l.failed.len()),
                plan.deferred.len(),
                start.elapsed().as_secs_f64()
            );
        } else {
            log::debug!("cycle done: nothing to do ({:.3}s)", start.elapsed().as_secs_f64());
        }
        match saved {
            Err(e) if outcome == Outcome::Clean => Outcome::StateError(e.to_string()),
            _ => outcome,
        }
    }

    fn execute(&mut self, action: &Action, tally: &mut Tally) -> Result<(), Error> {
        let remote_path = remote::join(&self.cfg.remote_dir, action.path());
        match action {
            Action::MkdirRoot => {
                if self.cfg.remote_dir != "/" {
                    self.remote.mkdir_all(&remote_path)?;
                    log::info!("created remote folder {}", self.cfg.remote_dir);
                }
                self.state.dirs.insert(String::new());
            }
            Action::Mkdir(p) => {
                self.remote.mkdir(&remote_path)?;
                log::info!("created folder {p}");
                tally.folders += 1;
                self.state.dirs.insert(p.clone());
            }
            Action::Upload(e) => self.upload(e, &remote_path, tally)?,
            Action::Check { entry, old_sha256 } => {
                let sha = hash_file(&self.open(entry)?).map_err(Error::Local)?;
                if &sha == old_sha256 {
                    log::info!("unchanged {} (metadata only)", entry.path);
                    tally.unchanged += 1;
                    self.state.files.insert(entry.path.clone(), record(entry, sha));
                } else {
                    self.upload(entry, &remote_path, tally)?;
                }
            }
            Action::Delete { path, kind, files } => {
                self.remote.delete(&remote_path, self.cfg.delete == DeleteMode::Permanent)?;
                let to = if self.cfg.delete == DeleteMode::Permanent { "permanently" } else { "to the trash" };
                match kind {
                    Kind::Dir => log::info!("deleted folder {path} ({files} files) {to}"),
                    Kind::File => log::info!("deleted {path} {to}"),
                }
                tally.deleted += 1;
                self.state.forget(path);
            }
            Action::Forget { path, .. } => {
                log::info!("forgot {path} (delete = keep: the remote copy stays)");
                self.state.forget(path);
            }
        }
        self.dirty = true;
        Ok(())
    }

    /// Streams the file once, hashing as it goes; records what was sent.
    fn upload(&mut self, e: &Entry, remote_path: &str, tally: &mut Tally) -> Result<(), Error> {
        let started = Instant::now();
        let file = self.open(e)?;
        let mut body = Hashing { inner: file.take(e.size), hasher: Sha256::new(), count: 0, local_error: None };
        if let Err(err) = self.remote.upload(remote_path, &mut body, e.size) {
            return Err(body.local_error.map(Error::Local).unwrap_or(err));
        }
        let sha = state::hex(&body.hasher.finalize());
        let secs = started.elapsed().as_secs_f64();
        log::info!("uploaded {} ({}, {:.1}s)", e.path, human_bytes(e.size), secs);
        tally.uploaded += 1;
        tally.bytes += e.size;
        // The scan's stat goes with the bytes sent: if the file changed
        // meanwhile, the next cycle sees other metadata and checks it again.
        if self.stat_now(e).as_ref() != Some(e) {
            log::info!("{} changed while it was uploaded; it is checked again next cycle", e.path);
        }
        self.state.files.insert(e.path.clone(), record(e, sha));
        Ok(())
    }

    /// Opens without blocking (in case the path became a FIFO since the scan)
    /// and makes sure it is still a regular file.
    fn open(&self, e: &Entry) -> Result<File, Error> {
        const O_NONBLOCK: i32 = if cfg!(any(target_arch = "mips", target_arch = "mips64")) { 0x80 } else { 0o4000 };
        let path = self.cfg.local_dir.join(&e.path);
        let f = OpenOptions::new().read(true).custom_flags(O_NONBLOCK).open(&path).map_err(Error::Local)?;
        if !f.metadata().map_err(Error::Local)?.is_file() {
            return Err(Error::Local(io::Error::other("is no longer a regular file")));
        }
        Ok(f)
    }

    fn stat_now(&self, e: &Entry) -> Option<Entry> {
        let m = std::fs::symlink_metadata(self.cfg.local_dir.join(&e.path)).ok()?;
        Some(scan::file_entry(e.path.clone(), &m))
    }

    fn save_soon(&mut self) {
        if self.dirty
            && self.last_save.elapsed() >= Duration::from_secs(1)
            && let Err(e) = self.save()
        {
            log::error!("{e}");
        }
    }

    fn save(&mut self) -> Result<(), state::Error> {
        if !self.dirty {
            return Ok(());
        }
        self.store.save(&self.state)?;
        self.dirty = false;
        self.last_save = Instant::now();
        Ok(())
    }
}

fn record(e: &Entry, sha256: String) -> FileRec {
    FileRec { size: e.size, mtime: e.mtime_ns, ctime: e.ctime_ns, ino: e.inode, sha256 }
}

fn hash_file(mut f: &File) -> io::Result<String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(state::hex(&h.finalize()));
        }
        h.update(&buf[..n]);
    }
}

/// The failed folder that `path` lies in, if any.
fn failed_ancestor<'m>(failed: &'m BTreeMap<String, String>, path: &str) -> Option<&'m str> {
    // `""` is remote_dir itself: nothing can go in when it could not be made.
    failed
        .keys()
        .find(|d| path.len() > d.len() && (d.is_empty() || path.starts_with(d.as_str()) && path.as_bytes()[d.len()] == b'/'))
        .map(String::as_str)
}

fn now_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64)
}
