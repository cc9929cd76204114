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
//! Disk. Only this file opens state files (`peek` reads them for `status`).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::snapshot::{open_snapshot, read_snapshot, write_head, write_line, write_snapshot};
use super::{Change, FileRec, FilesPrint, Hex, Pending, PrintBuilder, Prints, State, VERSION, in_folders, split};
use crate::fsutil::{Dir, crash_point, suffixed, write_atomically};

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

/// A partial state in memory: `files` holds every record of the `loaded`
/// folders, and those journalled since the snapshot; all other records are
/// in the snapshot, as they were, unless a `Forget` since then covers them
/// (`masked`). The snapshot is read again, a line at a time, when the seal
/// or a new snapshot needs every record.
#[derive(Debug, Default)]
struct Partial {
    /// Folders whose own files are all in memory, sorted.
    loaded: BTreeSet<String>,
    /// Paths forgotten since the snapshot was written: nothing of the
    /// snapshot at or below them counts.
    masked: BTreeSet<String>,
    /// All tracked files when they were last counted (a load, a save).
    tracked: u64,
    /// The records of each folder when they were last counted (a load).
    counts: BTreeMap<String, u64>,
    /// The half of each folder's print that its records made when they
    /// were last read whole (a load, a save), for the folders that had any;
    /// `None` until then.
    kept: Option<BTreeMap<String, FilesPrint>>,
    /// Folders whose records changed since then: a seal reads them from
    /// memory, and needs every one of them loaded.
    touched: BTreeSet<String>,
}

impl Partial {
    fn masks(&self, p: &str) -> bool {
        !self.masked.is_empty() && (self.masked.contains(p) || p.match_indices('/').any(|(i, _)| self.masked.contains(&p[..i])))
    }

    /// Notes the folders whose records `change` changes.
    fn touch(&mut self, change: &Change) {
        match change {
            Change::Put { path, .. } => drop(self.touched.insert(split(path).0.to_string())),
            // A file, or a folder with everything below it.
            Change::Forget { path } => {
                self.touched.insert(split(path).0.to_string());
                let below = self
                    .kept
                    .iter()
                    .flat_map(|k| k.range::<str, _>((std::ops::Bound::Included(path.as_str()), std::ops::Bound::Unbounded)));
                let below = below.map(|(f, _)| f).take_while(|f| at_or_under(f, path));
                self.touched.extend(below.cloned().collect::<Vec<_>>());
            }
            _ => {}
        }
    }

    /// The prints of the state from the kept ones and memory, without
    /// reading the snapshot: `None` unless every folder touched since is
    /// loaded.
    fn prints_from_memory(&self, state: &State) -> Option<Prints> {
        let kept = self.kept.as_ref()?;
        if !self.touched.iter().all(|f| self.loaded.contains(f)) {
            return None;
        }
        let mut b = PrintBuilder::default();
        b.folder("");
        state.shown_dirs().for_each(|d| b.dir(d));
        kept.iter().filter(|(f, _)| !self.touched.contains(*f)).for_each(|(f, h)| b.files_print(f, *h));
        let touched = |p: &str| self.touched.contains(split(p).0) && !state.hides(p);
        state.files.iter().filter(|(p, _)| touched(p)).for_each(|(p, r)| b.file(p, &r.stat));
        Some(b.finish())
    }
}

/// Journal lines after which a snapshot is written, even mid-cycle: a
/// quarter of the tracked files plus 256, at most this many.
const JOURNAL_LIMIT: usize = 10_000;

/// A commit's journal lines go out in pieces of about this many bytes
/// ([`Store::write`]); a commit smaller than this is one write.
pub const JOURNAL_CHUNK: usize = 256 << 10;

/// A commit's journal lines not written yet, and how the writes went.
struct Lines {
    text: Vec<u8>,
    n: usize,
    written: Result<(), Error>,
}

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

    /// Loads the whole saved state into memory, unless it is there
    /// already: every record (a partial state is completed). A cycle loads
    /// in part ([`Store::load_partial`]); this is for tests.
    #[cfg(test)]
    pub fn load(&mut self, remote_dir: &str) -> Result<(), Error> {
        if self.state.is_none() {
            self.state = Some(self.read(remote_dir)?);
        }
        if let Some(partial) = self.partial.take() {
            let state = self.state.as_ref().expect("loaded above");
            let mut rest = Vec::new();
            self.each_record(state, &partial, &mut |p, r, in_memory| {
                if !in_memory {
                    rest.push((p.to_string(), r.clone()));
                }
                Ok(())
            })?;
            self.state.as_mut().expect("loaded above").files.extend(rest);
        }
        Ok(())
    }

    /// Reads what a cycle needs to know of the saved state when the walk
    /// found these prints: which folders differ (their prints, or because
    /// they hold an unsettled upload, folder or move), returned sorted, and
    /// how many records each folder has. In the same read it loads the
    /// records of the folders that differ, as long as they number at most
    /// `ahead` ([`Store::load_folders`] reads the rest). `None` when the
    /// state in memory is whole. Reads the snapshot once, a line at a time.
    pub fn load_partial(&mut self, remote_dir: &str, prints: &Prints, ahead: u64) -> Result<Option<Vec<String>>, Error> {
        if self.state.is_none() {
            let (state, partial) = self.read_partial(remote_dir)?;
            (self.state, self.partial) = (Some(state), partial);
        }
        let Some(mut partial) = self.partial.take() else { return Ok(None) };
        let started = std::time::Instant::now();
        let state = self.state.as_ref().expect("loaded above");
        let unsettled: BTreeSet<String> = state.unsettled_folders().into_iter().collect();
        let mut mine = PrintBuilder::default();
        mine.folder("");
        // Folders first, so that a folder's print is whole once the read
        // has passed its records.
        state.shown_dirs().for_each(|d| mine.dir(d));
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        let mut last = String::from("\0");
        let mut run = 0;
        let mut ahead = Ahead { open: Vec::new(), held: 0, limit: ahead, found: Vec::new(), over: BTreeSet::new(), most: 0 };
        let differs = |f: &str, mine: &PrintBuilder| unsettled.contains(f) || prints.0.get(f) != mine.print_of(f).as_ref();
        let read = self.each_record(state, &partial, &mut |p, r, in_memory| {
            if !state.hides(p) {
                mine.file(p, &r.stat);
            }
            let folder = split(p).0;
            if folder != last {
                if run > 0 {
                    *counts.entry(std::mem::take(&mut last)).or_default() += run;
                }
                (last, run) = (folder.to_string(), 0);
            }
            run += 1;
            while let Some((f, _)) = ahead.open.last().filter(|(f, _)| !at_or_under(folder, f)) {
                let keep = differs(f, &mine);
                ahead.close(keep);
            }
            if !in_memory && !partial.loaded.contains(folder) {
                ahead.hold(folder, p, r);
            }
            Ok(())
        });
        if run > 0 {
            *counts.entry(last).or_default() += run;
        }
        let tracked = match read {
            Ok(n) => n,
            // A snapshot damaged past its first line: read whole, it is set
            // aside and the state starts afresh, as at any load.
            Err(Error::Corrupt(..)) if !self.dirty => {
                self.state = Some(self.read(remote_dir)?);
                return Ok(None);
            }
            Err(e) => {
                self.partial = Some(partial);
                return Err(e);
            }
        };
        while let Some((f, _)) = ahead.open.last() {
            let keep = differs(f, &mine);
            ahead.close(keep);
        }
        let (theirs, kept) = mine.finish_kept();
        let mut dirty = prints.differing(&theirs);
        dirty.extend(unsettled);
        dirty.sort_unstable();
        dirty.dedup();
        let preloaded = ahead.found.len();
        #[cfg(test)]
        self.reads.set((self.reads.get().0, ahead.most));
        let state = self.state.as_mut().expect("loaded above");
        state.files.extend(ahead.found);
        partial.loaded.extend(dirty.iter().filter(|d| !ahead.over.contains(*d)).cloned());
        (partial.tracked, partial.counts, partial.kept) = (tracked, counts, Some(kept));
        partial.touched.clear();
        log::debug!(
            "state read: {tracked} files, {} folders differ, {preloaded} records loaded, {} ms",
            dirty.len(),
            crate::units::ms(started.elapsed())
        );
        self.partial = Some(partial);
        Ok(Some(dirty))
    }

    /// Loads every record of these folders (those not in memory yet), with
    /// one more read of the snapshot. Nothing to do for a whole state.
    pub fn load_folders(&mut self, folders: &[String]) -> Result<(), Error> {
        let Some(mut partial) = self.partial.take() else { return Ok(()) };
        // Not skipped when the counts say a folder has no record: they are
        // of the load, and a move finished since may have brought some.
        let new: BTreeSet<&str> = folders.iter().map(String::as_str).filter(|d| !partial.loaded.contains(*d)).collect();
        if new.is_empty() {
            self.partial = Some(partial);
            return Ok(());
        }
        let started = std::time::Instant::now();
        let state = self.state.as_ref().expect("loaded");
        // A map, not a list: appended to the few records in memory, it
        // does not stand beside them twice (a folder of 100 000 files).
        let mut found = BTreeMap::new();
        let read = self.each_record(state, &partial, &mut |p, r, in_memory| {
            if !in_memory && new.contains(split(p).0) {
                found.insert(p.to_string(), r.clone());
            }
            Ok(())
        });
        let loaded = found.len();
        if read.is_ok() {
            let files = &mut self.state.as_mut().expect("loaded").files;
            if files.is_empty() {
                found = super::full_nodes(found); // append would keep its nodes
            }
            files.append(&mut found);
            partial.loaded.extend(new.into_iter().map(String::from));
        }
        self.partial = Some(partial);
        log::debug!("state loaded: {loaded} records of {} folders, {} ms", folders.len(), crate::units::ms(started.elapsed()));
        read.map(|_| ())
    }

    /// Lets these folders' records go from memory (a partial state only),
    /// once the journal is folded into the snapshot: between the parts of
    /// a cycle that plans a large change a part at a time.
    pub fn unload(&mut self, folders: &[String]) -> Result<(), Error> {
        if self.partial.is_none() {
            return Ok(());
        }
        let state = self.state.take().expect("loaded");
        let saved = if self.journal_lines > 0 { self.save(&state) } else { Ok(()) };
        self.state = Some(state);
        saved?;
        let partial = self.partial.as_mut().expect("checked above");
        self.state.as_mut().expect("loaded").files.retain(|p, _| !in_folders(folders, p));
        partial.loaded.retain(|d| folders.binary_search(d).is_err());
        Ok(())
    }

    /// Makes a whole state in memory partial: written to the snapshot, its
    /// records let go (after a reconcile, before a large change is planned
    /// a part at a time).
    pub fn go_partial(&mut self) -> Result<(), Error> {
        if self.partial.is_some() {
            return Ok(());
        }
        let state = self.state.take().expect("loaded");
        let saved = self.save(&state);
        self.state = Some(state);
        saved?;
        let state = self.state.as_mut().expect("loaded");
        let mut b = PrintBuilder::default();
        state.files.iter().filter(|(p, _)| !state.hides(p)).for_each(|(p, r)| b.file(p, &r.stat));
        let kept = Some(b.finish_kept().1);
        let partial = Partial { tracked: state.files.len() as u64, counts: count_by_folder(state), kept, ..Partial::default() };
        state.files.clear();
        self.partial = Some(partial);
        Ok(())
    }

    /// The records of each folder (that has any), as last counted.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        match &self.partial {
            Some(p) => p.counts.clone(),
            None => count_by_folder(self.state()),
        }
    }

    /// Every folder the state knows: the tracked ones, and those its
    /// records are in.
    pub fn folders(&self) -> BTreeSet<String> {
        let s = self.state();
        let mut out: BTreeSet<String> = s.dirs.clone();
        out.insert(String::new());
        match &self.partial {
            Some(p) => out.extend(p.counts.keys().cloned()),
            None => out.extend(s.files.keys().map(|p| split(p).0.to_string())),
        }
        out
    }

    /// What the planner sees of the state when only the `changed` folders
    /// differ from the scan: their records (loaded with
    /// [`Store::load_folders`]), and everything else the state holds,
    /// which is small.
    /// Beside `scan` (the part of the scan it is planned with), without the
    /// records the scan shows as they are ([`State::part_beside`]).
    pub fn view(&self, changed: &[String], beside: Option<&crate::scan::Scan>) -> State {
        let mut view = match beside {
            Some(scan) => self.state().part_beside(changed, scan),
            None => self.state().part(changed),
        };
        if let Some(p) = &self.partial {
            debug_assert!(changed.iter().all(|d| p.loaded.contains(d)), "a view of folders not loaded");
            view.elsewhere = p.tracked.saturating_sub(view.files.len() as u64);
        }
        view
    }

    /// The state's head and its journal, without the snapshot's records:
    /// a partial state that has loaded no folder yet. A damaged or foreign
    /// snapshot is handled as [`Store::read`] handles it.
    fn read_partial(&mut self, remote_dir: &str) -> Result<(State, Option<Partial>), Error> {
        let head = match self.dir.read(&self.name) {
            Ok(f) => match open_snapshot(io::BufReader::new(f)) {
                Ok((s, seal, _)) if s.version == VERSION => Some((s, seal)),
                _ => None,
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => Some((State::new(remote_dir), None)),
            Err(e) => return Err(Error::Io(self.path.clone(), not_a_link(e))),
        };
        // Anything odd: the whole reader says what and does what is right.
        let Some((mut state, head_seal)) = head else { return self.read(remote_dir).map(|s| (s, None)) };
        if state.remote_dir != remote_dir {
            return self.read(remote_dir).map(|s| (s, None));
        }
        let mut partial = Partial::default();
        match replay(&mut state, &self.dir, &self.journal_name, &mut partial.masked) {
            Ok((lines, seal)) => {
                self.journal_lines = lines;
                self.seal = if lines == 0 { head_seal } else { seal };
                Ok((state, Some(partial)))
            }
            Err(Error::Corrupt(..)) => self.read(remote_dir).map(|s| (s, None)),
            Err(e) => Err(e),
        }
    }

    /// Calls `f` with every record of a partial state, in path order: the
    /// snapshot's (unless masked, or in memory too) merged with memory's,
    /// and whether it is memory's. Returns how many there were.
    fn each_record(
        &self,
        state: &State,
        partial: &Partial,
        f: &mut dyn FnMut(&str, &FileRec, bool) -> io::Result<()>,
    ) -> Result<u64, Error> {
        let corrupt = |e: String| Error::Corrupt(self.path.clone(), e);
        let io_err = |e: io::Error| Error::Io(self.path.clone(), e);
        let mut memory = state.files.iter().peekable();
        let mut n = 0;
        #[cfg(test)]
        self.reads.set((self.reads.get().0 + 1, self.reads.get().1));
        match self.dir.read(&self.name) {
            Ok(file) => {
                let (_, _, lines) = open_snapshot(io::BufReader::with_capacity(64 << 10, file)).map_err(corrupt)?;
                let mut last: Option<String> = None;
                for line in lines {
                    let (path, rec) = line.map_err(corrupt)?;
                    // Merged with memory, the lines must come in path order
                    // (as every version wrote them); read whole otherwise.
                    if let Some(l) = last.as_deref().filter(|l| path.as_str() <= *l) {
                        return Err(corrupt(format!("`{path}` after `{l}`: the records are not in path order")));
                    }
                    last = Some(path.clone());
                    while let Some((p, r)) = memory.next_if(|(p, _)| p.as_str() <= path.as_str()) {
                        f(p, r, true).map_err(io_err)?;
                        n += 1;
                    }
                    if !state.files.contains_key(&path) && !partial.masks(&path) {
                        f(&path, &rec, false).map_err(io_err)?;
                        n += 1;
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(not_a_link(e))),
        }
        for (p, r) in memory {
            f(p, r, true).map_err(io_err)?;
            n += 1;
        }
        Ok(n)
    }

    /// The seal of the state in memory (a partial one read with the snapshot).
    pub(super) fn seal_now(&self, state: &State) -> Result<Option<Hex<16>>, Error> {
        let Some(partial) = &self.partial else { return Ok(state.seal()) };
        if !state.is_settled() {
            return Ok(None);
        }
        let prints = match partial.prints_from_memory(state) {
            Some(p) => {
                #[cfg(test)]
                {
                    let reads = self.reads.get(); // a check, not a read of the cycle
                    assert_eq!(p, self.prints_now(state, partial)?.1, "the prints from memory are those of a read");
                    self.reads.set(reads);
                }
                p
            }
            None => self.prints_now(state, partial)?.1,
        };
        Ok(Some(prints.seal(&state.remote_dir)))
    }

    /// Every record counted, and the prints of the whole state.
    fn prints_now(&self, state: &State, partial: &Partial) -> Result<(u64, Prints), Error> {
        self.prints_kept(state, partial).map(|(n, prints, _)| (n, prints))
    }

    /// [`Store::prints_now`], and the half of each print the records make.
    fn prints_kept(&self, state: &State, partial: &Partial) -> Result<(u64, Prints, BTreeMap<String, FilesPrint>), Error> {
        let mut b = PrintBuilder::default();
        b.folder("");
        let n = self.each_record(state, partial, &mut |p, r, _| {
            if !state.hides(p) {
                b.file(p, &r.stat);
            }
            Ok(())
        })?;
        state.shown_dirs().for_each(|d| b.dir(d));
        let (prints, kept) = b.finish_kept();
        Ok((n, prints, kept))
    }

    /// Files tracked, as last counted.
    fn tracked(&self, state: &State) -> u64 {
        self.partial.as_ref().map_or(state.files.len() as u64, |p| p.tracked)
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

    /// Whether the journal has grown enough to be folded into a snapshot:
    /// a quarter of the tracked files, so rewriting the whole state costs
    /// little per change, and the journal replays quickly. The first
    /// snapshot is written at once: a lone journal would puzzle a reader.
    fn compaction_due(&self, files: usize) -> bool {
        self.journal_lines >= JOURNAL_LIMIT.min(256 + files / 4) || !self.dir.has(&self.name).unwrap_or(false)
    }

    /// Journals changes and applies them to the state in memory. Intents
    /// (an upload, a folder or a move about to start: [`Change::is_intent`])
    /// are made durable before this returns, so before their request goes
    /// out; the rest need not be: losing them to a power cut only repeats
    /// harmless work, and the next fsync or snapshot covers them.
    ///
    /// A failed write is remembered ([`Store::failure`]): the cycle stops,
    /// since nothing more could be recorded. Memory takes the changes
    /// anyway: they describe what the Disk now holds.
    pub fn commit(&mut self, changes: Vec<Change>) -> Result<(), Error> {
        let durable = changes.iter().any(Change::is_intent);
        self.write(changes, durable)
    }

    /// Journals the mark of an upload whose last bytes are about to go out.
    /// Made durable only with `durable` (large files, which the Disk may
    /// still be finalising after a crash); a kill keeps it either way.
    pub fn commit_mark(&mut self, path: &str, pending: Pending, durable: bool) -> Result<(), Error> {
        self.write(vec![Change::Pending { path: path.to_string(), pending }], durable)
    }

    /// A folder's move (`Change::Rekey`) is written as what it stands for,
    /// a line per record ([`State::take_rekeyed`]), after loading them all.
    /// The lines go out in pieces of [`JOURNAL_CHUNK`] bytes, so that the
    /// move of a folder of 100 000 files is never held as text; a smaller
    /// commit is one write, as it always was. A kill between two pieces
    /// leaves whole lines, in an order that is safe to cut after any of them.
    fn write(&mut self, changes: Vec<Change>, durable: bool) -> Result<(), Error> {
        let mut w = Lines { text: Vec::new(), n: 0, written: Ok(()) };
        for c in changes {
            let Change::Rekey { from, to, .. } = &c else {
                self.record(c, &mut w);
                continue;
            };
            if let Err(e) = self.load_subtree(from) {
                w.written = w.written.and(Err(e));
            }
            for moved in self.state.as_mut().expect("changes are made to a loaded state").take_rekeyed(from, to) {
                self.record(moved, &mut w);
            }
        }
        let Lines { text, n, mut written } = w;
        if written.is_ok() && (n > 0 || durable) {
            written = self.append_lines(&text, n, durable);
        }
        if let Err(e) = &written {
            log::error!("{e}; stopping this cycle");
            self.failed.get_or_insert(e.to_string());
        }
        self.dirty = true;
        written
    }

    /// One change: journalled (a full piece goes out), applied to memory.
    fn record(&mut self, c: Change, w: &mut Lines) {
        serde_json::to_writer(&mut w.text, &c).expect("changes serialise");
        w.text.push(b'\n');
        w.n += 1;
        if w.text.len() >= JOURNAL_CHUNK && w.written.is_ok() {
            w.written = self.append_lines(&w.text, w.n, false);
            w.text.clear();
            w.n = 0;
        }
        self.state.as_mut().expect("changes are made to a loaded state").apply(&c);
        if let Some(partial) = &mut self.partial {
            if let Change::Forget { path } = &c {
                partial.masked.insert(path.clone());
            }
            partial.touch(&c);
            // The cached prints left out what was excluded then.
            if matches!(c, Change::Excluded(_)) {
                partial.kept = None;
            }
        }
    }

    /// Every record at or below the folder `from` in memory (a partial
    /// state loads its folder and the folders the state has below it).
    fn load_subtree(&mut self, from: &str) -> Result<(), Error> {
        let state = self.state.as_ref().expect("loaded");
        let folders: Vec<String> =
            state.dirs.iter().filter(|d| crate::scan::is_under(d, from)).cloned().chain([from.to_string()]).collect();
        self.load_folders(&folders)
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

    pub(super) fn append(&mut self, changes: &[Change], durable: bool) -> Result<(), Error> {
        let mut lines = Vec::new();
        for c in changes {
            serde_json::to_writer(&mut lines, c).expect("changes serialise");
            lines.push(b'\n');
        }
        self.append_lines(&lines, changes.len(), durable)
    }

    /// Appends `n` whole lines to the journal, made durable with `durable`.
    fn append_lines(&mut self, lines: &[u8], n: usize, durable: bool) -> Result<(), Error> {
        if self.journal.is_none() {
            self.journal = Some(self.open_journal().map_err(|e| Error::Io(self.journal_path.clone(), e))?);
        }
        let f = self.journal.as_mut().expect("opened above");
        let result = f.write_all(lines).and_then(|()| {
            if durable {
                crash_point(&self.journal_path);
                f.sync_data()
            } else {
                Ok(())
            }
        });
        result.map_err(|e| Error::Io(self.journal_path.clone(), e))?;
        self.journal_lines += n;
        self.seal = None;
        Ok(())
    }

    /// Opens the journal for appending. A last line without its newline was
    /// torn by a crash or a power cut: it is cut off first, so that the next
    /// record starts on a line of its own instead of gluing itself onto it.
    fn open_journal(&self) -> io::Result<File> {
        use io::{Read, Seek};
        let mut f = self.dir.append(&self.journal_name, 0o600).map_err(not_a_link)?;
        let len = f.metadata()?.len();
        if len == 0 {
            return Ok(f);
        }
        let mut last = [0u8];
        f.seek(io::SeekFrom::Start(len - 1))?;
        f.read_exact(&mut last)?;
        if last[0] != b'\n' {
            let mut text = Vec::new();
            f.seek(io::SeekFrom::Start(0))?;
            f.read_to_end(&mut text)?;
            let keep = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            log::warn!(
                "state journal {}: cut off a torn last line ({} bytes), left by a crash or a power cut",
                self.journal_path.display(),
                text.len() - keep
            );
            f.set_len(keep as u64)?;
            f.sync_data()?;
        }
        Ok(f)
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

type Records = Vec<(String, FileRec)>;

/// The records [`Store::load_partial`] holds while it reads: those of the
/// folders it has not passed yet (a folder's print is whole only then), and
/// of the folders passed that differ. Past `limit` a folder is not held
/// (`over`), and loaded later if it differs.
struct Ahead {
    /// The folders not passed yet, innermost last, with their records
    /// (`None` past the limit).
    open: Vec<(String, Option<Records>)>,
    held: u64,
    limit: u64,
    found: Records,
    over: BTreeSet<String>,
    /// The most `held` was.
    most: u64,
}

impl Ahead {
    fn hold(&mut self, folder: &str, path: &str, rec: &FileRec) {
        if self.open.last().is_none_or(|(f, _)| f != folder) {
            self.open.push((folder.to_string(), Some(Vec::new())));
        }
        let (f, slot) = self.open.last_mut().expect("pushed above");
        match slot {
            Some(held) if self.held < self.limit => {
                held.push((path.to_string(), rec.clone()));
                self.held += 1;
                self.most = self.most.max(self.held);
            }
            Some(held) => {
                self.held -= held.len() as u64;
                *slot = None;
                self.over.insert(f.clone());
            }
            None => {}
        }
    }

    /// The read has passed the last folder held: its records are kept when
    /// it differs.
    fn close(&mut self, keep: bool) {
        let Some((_, held)) = self.open.pop() else { return };
        match held {
            Some(mut held) if keep => self.found.append(&mut held),
            Some(held) => self.held -= held.len() as u64,
            None => {}
        }
    }
}

/// Is `path` the folder `dir` or inside it? (`""` holds everything.)
fn at_or_under(path: &str, dir: &str) -> bool {
    dir.is_empty() || path == dir || crate::scan::is_under(path, dir)
}

/// The records of each folder of a whole state.
fn count_by_folder(state: &State) -> BTreeMap<String, u64> {
    let mut out: BTreeMap<String, u64> = BTreeMap::new();
    for p in state.files.keys() {
        *out.entry(split(p).0.to_string()).or_default() += 1;
    }
    out
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

/// Applies the journal `name` in `dir` (if any) to `state`; returns its
/// lines and the seal it ends with. Paths it forgets are added to `masked`.
/// The last line may have been torn by a crash or a power cut anywhere,
/// also inside a character: a last line that does not read as a change is
/// ignored (and cut off before the next append); any other is damage.
fn replay(state: &mut State, dir: &Dir, name: &str, masked: &mut BTreeSet<String>) -> Result<(usize, Option<Hex<16>>), Error> {
    use io::Read;
    let path = dir.join(name);
    let mut bytes = Vec::new();
    match dir.read(name).and_then(|mut f| f.read_to_end(&mut bytes)) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((0, None)),
        Err(e) => return Err(Error::Io(path, not_a_link(e))),
    }
    let mut lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    let mut seal = None;
    for (i, line) in lines.iter().enumerate() {
        seal = None;
        let change = std::str::from_utf8(line)
            .map_err(|e| e.to_string())
            .and_then(|text| serde_json::from_str::<Change>(text).map_err(|e| e.to_string()));
        match change {
            Ok(Change::Seal(s)) => seal = Some(s),
            Ok(c) => {
                if let Change::Forget { path } = &c {
                    masked.insert(path.clone());
                }
                state.apply(&c)
            }
            // Killed while appending: the action it describes is either
            // repeated (pending uploads) or harmless to repeat.
            Err(_) if i + 1 == lines.len() => log::debug!("ignoring a torn last journal line"),
            Err(e) => return Err(Error::Corrupt(path, format!("line {}: {e}", i + 1))),
        }
    }
    Ok((lines.len(), seal))
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
