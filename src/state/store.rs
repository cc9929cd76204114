//! Where the state lives: a snapshot (`state.json`, replaced atomically)
//! and a journal (`state.json.journal`, one [`Change`] per line, appended),
//! and a lock file that keeps a second instance away.
//!
//! Loading replays the journal over the snapshot; writing a snapshot
//! empties the journal. Replaying is idempotent, so a crash between the two
//! is harmless; a torn last journal line (a kill mid-write) is ignored, and
//! cut off before the next append. Damage anywhere else is moved aside and
//! the state starts afresh (adoption): damage never becomes a stop. An
//! intent is durable before its request goes out ([`Store::commit`]), so a
//! crash at any moment leaves a trace of every object that may be on the
//! Disk. Only this module opens state files (`peek` reads them for
//! `status`); the journal is written in `journal.rs`, and the partial
//! state, read from the snapshot a line at a time, is in `partial.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::snapshot::{open_snapshot, read_snapshot, write_head, write_line, write_snapshot};
use super::{Change, FileRec, FilesPrint, Hex, Pending, PrintBuilder, Prints, State, VERSION, in_folders, split};
use crate::fsutil::{Dir, crash_point, suffixed, write_atomically};

#[path = "journal.rs"]
mod journal;
#[path = "partial.rs"]
mod partial;

#[cfg(test)]
pub use journal::JOURNAL_CHUNK;
use journal::replay;
use partial::Partial;

#[derive(Debug)]
pub enum Error {
    Io(PathBuf, io::Error),
    Corrupt(PathBuf, String),
    /// Another process holds the lock.
    Locked(PathBuf),
    /// The state's folder is not safe to write in (others can write it).
    Unsafe(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            Error::Io(p, e) => write!(f, "state file {}: {e}", p.display()),
            Error::Corrupt(p, e) => write!(f, "state file {} cannot be used ({e}); nothing was changed", p.display()),
            Error::Locked(p) => {
                write!(f, "another ysync is already running with the state file {} (lock {}.lock); stop it first", p.display(), p.display())
            }
            Error::Unsafe(why) => write!(f, "the state is not kept there: {why}"),
        }
    }
}

/// The state files on disk, the lock, and the state in memory: every byte
/// written to a state file, and every decision about when, is made here.
pub struct Store {
    /// The state's folder, opened once: every state file is opened, made,
    /// renamed and removed relative to it, never through a link.
    dir: Dir,
    /// The snapshot's and the journal's names in it.
    name: String,
    journal_name: String,
    /// Their paths, for messages (and the crash points of the tests).
    path: PathBuf,
    journal_path: PathBuf,
    journal: Option<File>,
    /// Lines in the journal; a long journal is folded into a snapshot.
    journal_lines: usize,
    /// The seal the files on disk end with, as far as this process knows.
    seal: Option<Hex<16>>,
    /// The reconcile time found next to that seal by `read_seal`.
    sealed_reconciled: u64,
    /// Loaded when a cycle needs it, and let go again once the files on
    /// disk end with its seal: an idle `run` then holds no state in memory.
    state: Option<State>,
    /// The state changed since the files were last made durable.
    dirty: bool,
    /// A journal write failed: nothing more can be recorded in this cycle.
    failed: Option<String>,
    /// Set while the state in memory is partial ([`Store::load_partial`]).
    partial: Option<Partial>,
    /// Reads of the snapshot a line at a time, and the most records
    /// [`Store::load_partial`] held while reading (for tests).
    #[cfg(test)]
    reads: std::cell::Cell<(u32, u64)>,
    _lock: File,
}

/// Journal lines after which a snapshot is written, even mid-cycle: a
/// quarter of the tracked files plus 256, at most this many.
const JOURNAL_LIMIT: usize = 10_000;

/// The longest journal line is a seal, `{"seal":"<32 hex digits>"}`.
const SEAL_LINE_MAX: u64 = 64;

impl Store {
    /// Takes the lock (without waiting) and creates the state folder if
    /// needed (mode 0700; the files are 0600). A folder that a user other
    /// than this process's and root can write is refused
    /// ([`crate::fsutil::untrusted`]): such a user could plant a link or a
    /// file of their own where ysync writes.
    pub fn open(path: &Path) -> Result<Store, Error> {
        let io_err = |e| Error::Io(path.to_path_buf(), e);
        let (dir, name) = state_dir(path, true).map_err(io_err)?;
        let meta = dir.meta().map_err(io_err)?;
        if let Some(why) = crate::fsutil::untrusted(&meta, dir.path(), false) {
            return Err(Error::Unsafe(why));
        }
        let lock_name = format!("{name}.lock");
        let lock = dir.keep(&lock_name, 0o600).map_err(|e| Error::Io(lock_path(path), not_a_link(e)))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(Error::Locked(path.to_path_buf())),
            Err(fs::TryLockError::Error(e)) => return Err(io_err(e)),
        }
        // A snapshot that a crash interrupted before its rename: never used.
        let tmp = format!("{name}.tmp");
        match dir.remove(&tmp) {
            Ok(()) => log::info!("removed {}, an unfinished state save left by a crash", dir.join(&tmp).display()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::Io(dir.join(&tmp), e)),
        }
        let journal_path = suffixed(path, ".journal");
        Ok(Store {
            journal_name: format!("{name}.journal"),
            dir,
            name,
            path: path.to_path_buf(),
            journal_path,
            journal: None,
            journal_lines: 0,
            seal: None,
            sealed_reconciled: 0,
            state: None,
            dirty: false,
            failed: None,
            partial: None,
            #[cfg(test)]
            reads: Default::default(),
            _lock: lock,
        })
    }

    /// The state in memory. The cycle loads it before anything acts.
    pub fn state(&self) -> &State {
        self.state.as_ref().expect("the cycle loads the state before it plans or acts")
    }

    pub fn is_loaded(&self) -> bool {
        self.state.is_some()
    }

    /// The saved state, or a fresh one when there is none (or it describes
    /// another `remote_dir`). A damaged state file is moved aside for
    /// inspection and ysync starts afresh: with an empty state nothing is
    /// deleted, and uploads overwrite, so the remote gains no duplicates.
    pub(super) fn read(&mut self, remote_dir: &str) -> Result<State, Error> {
        let started = std::time::Instant::now();
        let (mut state, head_seal) = self.load_snapshot(remote_dir)?;
        let (lines, seal) = match replay(&mut state, &self.dir, &self.journal_name, &mut BTreeSet::new()) {
            Ok(found) => found,
            // Never a reason to stop for good: both files are kept for
            // inspection and the state is rebuilt by adoption.
            Err(Error::Corrupt(_, why)) => {
                self.journal = None;
                let kept = self
                    .set_aside_all()
                    .map_err(|io| Error::Corrupt(self.journal_path.clone(), format!("{why}; moving it aside failed: {io}")))?;
                log::error!(
                    "state journal {} is damaged ({why}); kept as {} for inspection. Starting afresh: nothing is deleted, files on the Disk with the same sha256 are adopted, the rest uploaded again",
                    self.journal_path.display(),
                    kept.join(", ")
                );
                state = State::new(remote_dir);
                (0, None)
            }
            Err(e) => return Err(e),
        };
        self.journal_lines = lines;
        self.seal = if lines == 0 { head_seal } else { seal };
        self.partial = None;
        log::debug!(
            "state loaded: {} files, {} journal lines, {} ms",
            state.files.len(),
            self.journal_lines,
            crate::units::ms(started.elapsed())
        );
        if state.remote_dir != remote_dir {
            log::warn!(
                "remote_dir changed from {} to {}: starting with a fresh state; nothing is deleted from the old folder",
                state.remote_dir,
                remote_dir
            );
            return Ok(State::new(remote_dir));
        }
        Ok(state)
    }

    fn load_snapshot(&self, remote_dir: &str) -> Result<(State, Option<Hex<16>>), Error> {
        let file = match self.dir.read(&self.name) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((State::new(remote_dir), None)),
            Err(e) => return Err(Error::Io(self.path.clone(), not_a_link(e))),
        };
        match read_snapshot(io::BufReader::with_capacity(64 << 10, file)) {
            Ok((s, seal)) if s.version == VERSION => Ok((s, seal)),
            Ok((s, _)) => Err(Error::Corrupt(
                self.path.clone(),
                format!(
                    "it has version {}, this ysync reads version {VERSION}; use the ysync that wrote it, or move the file aside (files on the Disk are then adopted, not uploaded again)",
                    s.version
                ),
            )),
            Err(e) => {
                let aside =
                    self.set_aside().map_err(|io| Error::Corrupt(self.path.clone(), format!("{e}; moving it aside failed: {io}")))?;
                log::error!(
                    "state file {} is damaged ({e}); kept as {} for inspection. Starting afresh: nothing is deleted, files are uploaded again over their remote copies",
                    self.path.display(),
                    aside.display()
                );
                Ok((State::new(remote_dir), None))
            }
        }
    }

    /// The seal the saved state ends with, read without loading it: the
    /// journal's last line, or the snapshot's first when there is no
    /// journal. `None` when there is none or anything is unreadable (the
    /// caller then loads the state, which reports the problem). The time of
    /// the last reconcile, kept next to the seal, is then in
    /// [`Store::sealed_reconciled`].
    pub fn read_seal(&mut self) -> Option<Hex<16>> {
        let found = self.find_seal();
        self.seal = found.map(|f| f.0);
        self.sealed_reconciled = found.map_or(0, |f| f.1);
        self.seal
    }

    /// When the state that [`Store::read_seal`] found was last reconciled.
    pub fn sealed_reconciled(&self) -> u64 {
        self.sealed_reconciled
    }

    fn find_seal(&self) -> Option<(Hex<16>, u64)> {
        use io::{BufRead, Read, Seek};
        // A journal describes changes to a snapshot; without one (removed by
        // hand?) the seal describes something that is no longer there.
        if !self.dir.has(&self.name).ok()? {
            return None;
        }
        match self.dir.read(&self.journal_name) {
            Ok(mut f) => {
                let len = f.metadata().ok()?.len();
                if len > 0 {
                    f.seek(io::SeekFrom::Start(len.saturating_sub(2 * SEAL_LINE_MAX))).ok()?;
                    let mut tail = Vec::new();
                    f.read_to_end(&mut tail).ok()?;
                    let mut lines = tail.strip_suffix(b"\n")?.rsplit(|&b| b == b'\n');
                    // from_str, not from_slice: one copy of the parser in the binary.
                    let parse = |l: Option<&[u8]>| std::str::from_utf8(l?).ok().and_then(|t| serde_json::from_str::<Change>(t).ok());
                    let Some(Change::Seal(seal)) = parse(lines.next()) else { return None };
                    let reconciled = match parse(lines.next()) {
                        Some(Change::Reconciled(t)) => t,
                        _ => 0,
                    };
                    return Some((seal, reconciled));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(_) => return None,
        }
        #[derive(Deserialize)]
        struct Head {
            version: u32,
            seal: Option<Hex<16>>,
            #[serde(default)]
            reconciled: u64,
        }
        let mut head = String::new();
        io::BufReader::new(self.dir.read(&self.name).ok()?).read_line(&mut head).ok()?;
        let head = serde_json::from_str::<Head>(&head).ok().filter(|h| h.version == VERSION)?;
        Some((head.seal?, head.reconciled))
    }

    /// Makes the journal durable, then appends `seal` to it, after the time
    /// of the last reconcile (so that an idle cycle knows both at once).
    pub(super) fn write_seal(&mut self, seal: Hex<16>, reconciled: u64) -> Result<(), Error> {
        let started = std::time::Instant::now();
        self.sync()?;
        let mut lines = vec![Change::Seal(seal)];
        if reconciled != 0 {
            lines.insert(0, Change::Reconciled(reconciled));
        }
        self.append(&lines, false)?;
        self.seal = Some(seal);
        log::debug!("state sealed: {} journal lines, {} ms", self.journal_lines, crate::units::ms(started.elapsed()));
        Ok(())
    }

    /// Makes everything journalled so far durable.
    fn sync(&mut self) -> Result<(), Error> {
        match &self.journal {
            Some(f) => {
                crash_point(&self.journal_path);
                f.sync_data().map_err(|e| Error::Io(self.journal_path.clone(), e))
            }
            None => Ok(()),
        }
    }

    /// What the files on disk end with (see [`Store::read_seal`]).
    #[cfg(test)]
    pub(super) fn seal(&self) -> Option<Hex<16>> {
        self.seal
    }

    /// The folding rule, the one place it is stated. The journal is folded
    /// into a new snapshot (and emptied):
    /// - at a checkpoint or the end of a cycle, when it holds a quarter of
    ///   the tracked files plus 256 lines, at most [`JOURNAL_LIMIT`]
    ///   (rewriting the state then costs little per change, and the journal
    ///   replays quickly), or when no snapshot exists yet (a lone journal
    ///   would puzzle a reader): this function;
    /// - when a partial state lets a part's records go ([`Store::unload`],
    ///   if the journal holds anything) or a whole one becomes partial
    ///   ([`Store::go_partial`]): records leave memory only once the
    ///   snapshot holds them.
    ///
    /// Nothing else writes a snapshot, and an idle cycle writes nothing.
    fn compaction_due(&self, files: usize) -> bool {
        self.journal_lines >= JOURNAL_LIMIT.min(256 + files / 4) || !self.dir.has(&self.name).unwrap_or(false)
    }

    /// Did the state change since the files were last made durable?
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// In memory only: an earlier upload of `path` is settled for this
    /// process (its operation waited for, its temporary removed), so nothing
    /// is waited for or removed again. The journal keeps the record for a
    /// crash.
    pub fn forget_attempt(&mut self, path: &str) {
        if let Some(p) = self.state.as_mut().and_then(|s| s.pending.get_mut(path)) {
            (p.op, p.temp) = (None, None);
        }
    }

    /// Why the journal could not be written in this cycle, if it could not.
    pub fn failure(&self) -> Option<&str> {
        self.failed.as_deref()
    }

    /// Between two actions: a journal that has grown long (a first run of
    /// 100 000 files) is folded into a snapshot now, not at the end.
    pub fn checkpoint(&mut self) -> Result<(), Error> {
        if self.journal_lines < JOURNAL_LIMIT {
            return Ok(());
        }
        let state = self.state.take().expect("loaded");
        let saved = self.save(&state);
        self.state = Some(state);
        saved
    }

    /// Ends a cycle on disk. The journal already holds every change: it is
    /// made durable and sealed, and folded into a new snapshot only once it
    /// has grown (rewriting 100 000 records for one change would cost more
    /// than the rest of an idle cycle). A sealed state is let go: the next
    /// cycle reads it again only if the scan does not match the seal.
    pub fn end_cycle(&mut self) -> Result<(), Error> {
        self.failed = None;
        let Some(state) = self.state.take() else { return Ok(()) };
        let started = std::time::Instant::now();
        let seal = self.seal_now(&state);
        log::debug!("state seal computed in {} ms", crate::units::ms(started.elapsed()));
        let seal = match seal {
            Ok(s) => s,
            Err(e) => {
                self.state = Some(state);
                return Err(e);
            }
        };
        let written = match seal {
            _ if self.dirty && self.compaction_due(self.tracked(&state) as usize) => self.save(&state),
            Some(new) if seal != self.seal => self.write_seal(new, state.reconciled),
            _ if self.dirty => self.sync(),
            _ => Ok(()),
        };
        if written.is_ok() {
            self.dirty = false;
        }
        if seal.is_none() || seal != self.seal || written.is_err() {
            self.state = Some(state);
        } else {
            self.partial = None;
        }
        written
    }

    #[cfg(test)]
    pub(super) fn reads(&self) -> u32 {
        self.reads.get().0
    }

    #[cfg(test)]
    pub(super) fn held_most(&self) -> u64 {
        self.reads.get().1
    }

    #[cfg(test)]
    pub(super) fn journal_lines(&self) -> usize {
        self.journal_lines
    }

    /// Moves the snapshot (if any) and the journal aside; returns their new names.
    fn set_aside_all(&self) -> io::Result<Vec<String>> {
        let mut kept = Vec::new();
        if self.dir.has(&self.name)? {
            kept.push(self.set_aside()?.display().to_string());
        }
        let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let aside = format!("{}.damaged-{secs}", self.journal_name);
        self.dir.rename(&self.journal_name, &aside)?;
        kept.push(self.dir.join(&aside).display().to_string());
        Ok(kept)
    }

    fn set_aside(&self) -> io::Result<PathBuf> {
        let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let aside = format!("{}.damaged-{secs}", self.name);
        self.dir.rename(&self.name, &aside)?;
        Ok(self.dir.join(&aside))
    }

    /// Writes a snapshot of `state` and empties the journal it includes.
    /// A partial state is written a record at a time, merged with the
    /// snapshot it replaces: a first pass counts the records and seals
    /// them, the second writes them.
    pub(super) fn save(&mut self, state: &State) -> Result<(), Error> {
        let started = std::time::Instant::now();
        let io_err = |e| Error::Io(self.path.clone(), e);
        let mut refreshed = None;
        let (count, seal) = match &self.partial {
            None => {
                write_atomically(&self.dir, &self.name, 0o600, |w| write_snapshot(w, state)).map_err(io_err)?;
                (state.files.len() as u64, state.seal())
            }
            Some(partial) => {
                let (count, prints, kept) = self.prints_kept(state, partial)?;
                let seal = state.is_settled().then(|| prints.seal(&state.remote_dir));
                drop(prints);
                refreshed = Some(kept);
                let mut failed = None;
                write_atomically(&self.dir, &self.name, 0o600, |w| {
                    write_head(w, state, count as usize, seal)?;
                    match self.each_record(state, partial, &mut |p, r, _| write_line(w, p, r)) {
                        Ok(_) => Ok(()),
                        Err(e) => {
                            let text = e.to_string();
                            failed = Some(e);
                            Err(io::Error::other(text))
                        }
                    }
                })
                .map_err(|e| failed.take().unwrap_or(Error::Io(self.path.clone(), e)))?;
                (count, seal)
            }
        };
        let bytes = self.dir.stat(&self.name).map_or(0, |m| m.size);
        log::debug!("state saved: {count} files, {bytes} bytes, {} ms", crate::units::ms(started.elapsed()));
        self.journal = None;
        self.journal_lines = 0;
        self.seal = seal;
        if let Some(p) = &mut self.partial {
            p.masked.clear();
            p.tracked = count;
            (p.kept, p.touched) = (refreshed, BTreeSet::new());
        }
        match self.dir.remove(&self.journal_name) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::Io(self.journal_path.clone(), e)),
            _ => Ok(()),
        }
    }
}

fn lock_path(path: &Path) -> PathBuf {
    suffixed(path, ".lock")
}

/// The folder of the state file `path`, open, and the file's name in it;
/// with `create`, the folder is made first if missing (0700, and so are
/// missing folders above it).
fn state_dir(path: &Path, create: bool) -> io::Result<(Dir, String)> {
    use std::os::unix::fs::DirBuilderExt;
    let bad = || io::Error::new(io::ErrorKind::InvalidInput, "a state file needs a folder and a UTF-8 name");
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).ok_or_else(bad)?;
    let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(bad)?.to_string();
    if create {
        fs::DirBuilder::new().recursive(true).mode(0o700).create(parent)?;
    }
    Ok((Dir::open(parent)?, name))
}

/// A state file found to be a symbolic link is named as one.
fn not_a_link(e: io::Error) -> io::Error {
    if crate::fsutil::sys::is_link_error(&e) {
        io::Error::other("it is a symbolic link, and ysync never follows one in its state folder; remove it")
    } else {
        e
    }
}

/// The state as saved at `path`, read without the lock and without changing
/// anything (for `status` and `verify`, also while `run` is going). No
/// state file is followed as a link.
pub fn peek(path: &Path) -> Result<Option<State>, Error> {
    let io_err = |e| Error::Io(path.to_path_buf(), e);
    let (dir, name) = match state_dir(path, false) {
        Ok(found) => found,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(e)),
    };
    let journal = format!("{name}.journal");
    let mut state: State = match dir.read(&name) {
        Ok(f) => read_snapshot(io::BufReader::new(f)).map_err(|e| Error::Corrupt(path.to_path_buf(), e))?.0,
        Err(e) if e.kind() == io::ErrorKind::NotFound && !dir.has(&journal).map_err(io_err)? => return Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => State::new(""),
        Err(e) => return Err(io_err(not_a_link(e))),
    };
    replay(&mut state, &dir, &journal, &mut BTreeSet::new())?;
    Ok(Some(state))
}
