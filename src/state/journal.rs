//! The journal: every change goes through [`Store::commit`], one line
//! each, applied to memory as it is written; intents are made durable
//! before their request. A folder's move goes out a piece at a time.

use super::*;

/// A commit's journal lines go out in pieces of about this many bytes
/// ([`Store::write`]); a commit smaller than this is one write.
pub const JOURNAL_CHUNK: usize = 256 << 10;

/// A commit's journal lines not written yet, and how the writes went.
pub(super) struct Lines {
    pub(super) text: Vec<u8>,
    pub(super) n: usize,
    pub(super) written: Result<(), Error>,
}

/// Applies the journal `name` in `dir` (if any) to `state`; returns its
/// lines and the seal it ends with. Paths it forgets are added to `masked`.
/// The last line may have been torn by a crash or a power cut anywhere,
/// also inside a character: a last line that does not read as a change is
/// ignored (and cut off before the next append); any other is damage.
pub(super) fn replay(state: &mut State, dir: &Dir, name: &str, masked: &mut BTreeSet<String>) -> Result<(usize, Option<Hex<16>>), Error> {
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

impl Store {
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
    pub(super) fn write(&mut self, changes: Vec<Change>, durable: bool) -> Result<(), Error> {
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
    pub(super) fn record(&mut self, c: Change, w: &mut Lines) {
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
    pub(super) fn load_subtree(&mut self, from: &str) -> Result<(), Error> {
        let state = self.state.as_ref().expect("loaded");
        let folders: Vec<String> =
            state.dirs.iter().filter(|d| crate::scan::is_under(d, from)).cloned().chain([from.to_string()]).collect();
        self.load_folders(&folders)
    }

    pub(in crate::state) fn append(&mut self, changes: &[Change], durable: bool) -> Result<(), Error> {
        let mut lines = Vec::new();
        for c in changes {
            serde_json::to_writer(&mut lines, c).expect("changes serialise");
            lines.push(b'\n');
        }
        self.append_lines(&lines, changes.len(), durable)
    }

    /// Appends `n` whole lines to the journal, made durable with `durable`.
    pub(super) fn append_lines(&mut self, lines: &[u8], n: usize, durable: bool) -> Result<(), Error> {
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
    pub(super) fn open_journal(&self) -> io::Result<File> {
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
}
