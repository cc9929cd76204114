//! The partial state: which records are in memory, the folders loaded,
//! the prints kept per folder, and the reads of the snapshot a line at a
//! time that load folders, count records and seal a partial state.

use super::*;

/// A partial state in memory: `files` holds every record of the `loaded`
/// folders, and those journalled since the snapshot; all other records are
/// in the snapshot, as they were, unless a `Forget` since then covers them
/// (`masked`). The snapshot is read again, a line at a time, when the seal
/// or a new snapshot needs every record.
#[derive(Debug, Default)]
pub(super) struct Partial {
    /// Folders whose own files are all in memory, sorted.
    pub(super) loaded: BTreeSet<String>,
    /// Paths forgotten since the snapshot was written: nothing of the
    /// snapshot at or below them counts.
    pub(super) masked: BTreeSet<String>,
    /// All tracked files when they were last counted (a load, a save).
    pub(super) tracked: u64,
    /// The records of each folder when they were last counted (a load).
    pub(super) counts: BTreeMap<String, u64>,
    /// The half of each folder's print that its records made when they
    /// were last read whole (a load, a save), for the folders that had any;
    /// `None` until then.
    pub(super) kept: Option<BTreeMap<String, FilesPrint>>,
    /// Folders whose records changed since then: a seal reads them from
    /// memory, and needs every one of them loaded.
    pub(super) touched: BTreeSet<String>,
}

impl Partial {
    pub(super) fn masks(&self, p: &str) -> bool {
        crate::print::at_or_below_any(&self.masked, p)
    }

    /// Notes the folders whose records `change` changes.
    pub(super) fn touch(&mut self, change: &Change) {
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
    pub(super) fn prints_from_memory(&self, state: &State) -> Option<Prints> {
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

pub(super) type Records = Vec<(String, FileRec)>;

/// The records [`Store::load_partial`] holds while it reads: those of the
/// folders it has not passed yet (a folder's print is whole only then), and
/// of the folders passed that differ. Past `limit` a folder is not held
/// (`over`), and loaded later if it differs.
pub(super) struct Ahead {
    /// The folders not passed yet, innermost last, with their records
    /// (`None` past the limit).
    pub(super) open: Vec<(String, Option<Records>)>,
    pub(super) held: u64,
    pub(super) limit: u64,
    pub(super) found: Records,
    pub(super) over: BTreeSet<String>,
    /// The most `held` was.
    pub(super) most: u64,
}

impl Ahead {
    pub(super) fn hold(&mut self, folder: &str, path: &str, rec: &FileRec) {
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
    pub(super) fn close(&mut self, keep: bool) {
        let Some((_, held)) = self.open.pop() else { return };
        match held {
            Some(mut held) if keep => self.found.append(&mut held),
            Some(held) => self.held -= held.len() as u64,
            None => {}
        }
    }
}

/// Is `path` the folder `dir` or inside it? (`""` holds everything.)
pub(super) fn at_or_under(path: &str, dir: &str) -> bool {
    dir.is_empty() || path == dir || crate::scan::is_under(path, dir)
}

/// The records of each folder of a whole state.
pub(super) fn count_by_folder(state: &State) -> BTreeMap<String, u64> {
    let mut out: BTreeMap<String, u64> = BTreeMap::new();
    for p in state.files.keys() {
        *out.entry(split(p).0.to_string()).or_default() += 1;
    }
    out
}

impl Store {
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
                found = crate::state::full_nodes(found); // append would keep its nodes
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
    pub(super) fn read_partial(&mut self, remote_dir: &str) -> Result<(State, Option<Partial>), Error> {
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
    pub(super) fn each_record(
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
    pub(in crate::state) fn seal_now(&self, state: &State) -> Result<Option<Hex<16>>, Error> {
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
    pub(super) fn prints_now(&self, state: &State, partial: &Partial) -> Result<(u64, Prints), Error> {
        self.prints_kept(state, partial).map(|(n, prints, _)| (n, prints))
    }

    /// [`Store::prints_now`], and the half of each print the records make.
    pub(super) fn prints_kept(&self, state: &State, partial: &Partial) -> Result<(u64, Prints, BTreeMap<String, FilesPrint>), Error> {
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
    pub(super) fn tracked(&self, state: &State) -> u64 {
        self.partial.as_ref().map_or(state.files.len() as u64, |p| p.tracked)
    }
}
