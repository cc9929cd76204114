//! The JSON state: what ysync uploaded, so the next cycle knows what changed.
//!
//! Two files: a snapshot (`state.json`, written atomically: temp file, fsync,
//! rename, fsync of the folder) and a journal (`state.json.journal`, one JSON
//! change per line, appended and fsynced after each completed action).
//! Loading replays the journal over the snapshot; saving a snapshot empties
//! the journal. Replaying is idempotent, so a crash between the two is
//! harmless, and a torn last journal line (a kill mid-write) is ignored.
//! An upload is announced in the journal (`Pending`) *before* it starts, so
//! a crash at any moment leaves a trace of every object that may exist on the
//! Disk. A lock file next to the state keeps a second instance away.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const VERSION: u32 = 2;

/// What was uploaded for one file. Stored as a JSON array
/// `[size, mtime_ns, ctime_ns, inode, "sha256", "md5"]`: a state file holds
/// one per tracked file, and the array is a third smaller and faster to read
/// than an object with named fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "RecArray", into = "RecArray")]
pub struct FileRec {
    pub size: u64,
    pub mtime: i64,
    pub ctime: i64,
    pub ino: u64,
    pub sha256: Hex<32>,
    /// The md5 ysync uploaded, for the Disk's conditional delete (`md5=`).
    /// All zeros when unknown: ysync hashes an upload with sha256 only
    /// (md5 too would cost a third more CPU per byte), so it asks the Disk
    /// for the md5 when a deletion needs it.
    pub md5: Hex<16>,
}

#[derive(Serialize, Deserialize)]
struct RecArray(u64, i64, i64, u64, Hex<32>, Hex<16>);

/// A digest kept as bytes (a state holds two per file: strings would double
/// its memory) and written as lowercase hex; all zeros is written as "".
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Hex<const N: usize>(pub [u8; N]);

impl<const N: usize> Hex<N> {
    pub const UNKNOWN: Hex<N> = Hex([0; N]);

    /// From `N * 2` hex digits; `""` is unknown.
    pub fn parse(s: &str) -> Option<Hex<N>> {
        if s.is_empty() {
            return Some(Hex::UNKNOWN);
        }
        if s.len() != N * 2 {
            return None;
        }
        // A table, not a function: the size-optimised build would not inline
        // one, and a state file holds 200 000 of these.
        const NIBBLE: [u8; 256] = {
            let mut t = [0xff; 256];
            let mut i = 0;
            while i < 10 {
                t[b'0' as usize + i] = i as u8;
                i += 1;
            }
            let mut i = 0;
            while i < 6 {
                t[b'a' as usize + i] = 10 + i as u8;
                t[b'A' as usize + i] = 10 + i as u8;
                i += 1;
            }
            t
        };
        let b = s.as_bytes();
        let mut out = [0u8; N];
        let mut bad = 0;
        for (i, o) in out.iter_mut().enumerate() {
            let (hi, lo) = (NIBBLE[usize::from(b[2 * i])], NIBBLE[usize::from(b[2 * i + 1])]);
            bad |= hi | lo;
            *o = hi << 4 | lo;
        }
        (bad & 0xf0 == 0).then_some(Hex(out))
    }

    pub fn is_unknown(&self) -> bool {
        *self == Hex::UNKNOWN
    }
}

impl<const N: usize> std::fmt::Display for Hex<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        if self.is_unknown() {
            return Ok(());
        }
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut buf = [0u8; 128];
        for (i, b) in self.0.iter().enumerate() {
            buf[2 * i] = DIGITS[usize::from(b >> 4)];
            buf[2 * i + 1] = DIGITS[usize::from(b & 15)];
        }
        f.write_str(std::str::from_utf8(&buf[..2 * N]).expect("ascii"))
    }
}

impl<const N: usize> std::fmt::Debug for Hex<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "\"{self}\"")
    }
}

impl<const N: usize> Serialize for Hex<N> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de, const N: usize> Deserialize<'de> for Hex<N> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Hex<N>, D::Error> {
        struct V<const N: usize>;
        impl<const N: usize> serde::de::Visitor<'_> for V<N> {
            type Value = Hex<N>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                write!(f, "{} hex digits", N * 2)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Hex<N>, E> {
                Hex::parse(v).ok_or_else(|| E::invalid_value(serde::de::Unexpected::Str(v), &self))
            }
        }
        d.deserialize_str(V)
    }
}

/// Reads a map saved in key order in one pass: collect, then build the tree
/// in bulk, instead of 100 000 searches and inserts.
fn sorted_map<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<String, FileRec>, D::Error> {
    struct Pairs;
    impl<'de> serde::de::Visitor<'de> for Pairs {
        type Value = Vec<(String, FileRec)>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a map of paths to file records")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut v = Vec::with_capacity(map.size_hint().unwrap_or(0));
            while let Some(pair) = map.next_entry()? {
                v.push(pair);
            }
            Ok(v)
        }
    }
    Ok(d.deserialize_map(Pairs)?.into_iter().collect())
}

impl From<RecArray> for FileRec {
    fn from(RecArray(size, mtime, ctime, ino, sha256, md5): RecArray) -> FileRec {
        FileRec { size, mtime, ctime, ino, sha256, md5 }
    }
}

impl FileRec {
    /// Is a file with these hashes (as the Disk reports them) the recorded
    /// content? By sha256, or by the md5 that records of older versions hold.
    pub fn is(&self, sha256: &str, md5: &str) -> bool {
        sha256 == self.sha256.to_string() || (!self.md5.is_unknown() && md5 == self.md5.to_string())
    }
}

impl From<FileRec> for RecArray {
    fn from(r: FileRec) -> RecArray {
        RecArray(r.size, r.mtime, r.ctime, r.ino, r.sha256, r.md5)
    }
}

/// An upload that started but was not confirmed: the Disk may or may not
/// hold this content at this path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub size: u64,
    /// The content about to land, noted just before the body's last bytes
    /// go out: its sha256 (64 hex digits), or its md5 (32) in states from
    /// before ysync hashed uploads with sha256 only. Empty until then.
    #[serde(rename = "md5", default, skip_serializing_if = "String::is_empty")]
    pub mark: String,
    /// The Disk's operation for the upload: until it ends, the file may
    /// still land (a killed client's last bytes can arrive after its death).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub op: String,
    /// The temporary name it went to (throttled types), relative.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub temp: String,
    /// When the link was issued (seconds since the Unix epoch; 0 in records
    /// written before ysync noted it). A link lives 30 minutes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub at: u64,
    /// The marks of earlier attempts at this path that may have landed: the
    /// Disk holds one of them, or this attempt's, or what was there before.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier: Vec<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Pending {
    /// A link not used within this time dies (the Disk's docs: 30
    /// minutes), so an upload announced longer ago cannot still land;
    /// five minutes more for clocks and slow answers.
    pub const LINK_LIFE: u64 = 35 * 60;

    /// Is a file with these hashes (as the Disk reports them) the content
    /// of one of these attempts?
    pub fn is_ours(&self, sha256: &str, md5: &str) -> bool {
        let same = |m: &String| match m.len() {
            64 => !sha256.is_empty() && m == sha256,
            32 => !md5.is_empty() && m == md5,
            _ => false,
        };
        same(&self.mark) || self.earlier.iter().any(same)
    }

    /// The record of a new attempt at the same path: what this one may have
    /// left on the Disk is remembered (a few at most).
    pub fn next_attempt(&self, op: String, at: u64) -> Pending {
        let mut earlier = self.earlier.clone();
        if !self.mark.is_empty() && !earlier.contains(&self.mark) {
            earlier.push(self.mark.clone());
        }
        let drop = earlier.len().saturating_sub(4);
        earlier.drain(..drop);
        Pending { mark: String::new(), op, at, earlier, ..self.clone() }
    }

    /// May every byte of this upload have reached the Disk? The mark is
    /// journalled just before the last bytes of the body go out, so without
    /// one the body was cut short and the Disk cannot store it. (Records
    /// from before that rule have `at == 0` and are given the benefit of
    /// the doubt.)
    pub fn may_land(&self, now: u64) -> bool {
        if self.at == 0 {
            return true;
        }
        !self.mark.is_empty() && now.saturating_sub(self.at) < Pending::LINK_LIFE
    }
}

/// A server-side move that was started: until it is known to be done, the
/// next cycle completes it first (re-issuing it is harmless).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Moving {
    pub from: String,
    pub to: String,
    pub dir: bool,
    /// What the state becomes once the move is done.
    pub after: Vec<Change>,
}

/// One journal line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// A file is on the Disk with this content.
    Put {
        path: String,
        rec: FileRec,
    },
    Dir {
        path: String,
    },
    /// A folder is about to be created: until `Dir` confirms it, it may or
    /// may not exist on the Disk.
    Mkdir {
        path: String,
    },
    /// A path (and everything below it) is gone or no longer ysync's.
    Forget {
        path: String,
    },
    Pending {
        path: String,
        pending: Pending,
    },
    /// A move starts (`Some`) or is settled (`None`).
    Moving(Option<Moving>),
    /// How the last cycle ended.
    Last(LastCycle),
    /// The tracked folders that are (or were, and are protected) mount points.
    Mounts(BTreeSet<String>),
    /// A full listing was compared with the state at this time.
    Reconciled(u64),
    /// What an older version's probe found of the Disk's `md5=` guard; read
    /// from old journals and ignored (deletions no longer rest on the guard).
    #[serde(rename = "md5_guard")]
    Md5Guard(bool),
    /// The state up to here has this seal (see [`State::seal`]).
    Seal(Hex<16>),
}

/// The last cycle, for `ysync status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastCycle {
    /// Seconds since the Unix epoch when it ended.
    pub ended: u64,
    pub result: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub failed: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    /// The target this state describes; a different one starts afresh.
    pub remote_dir: String,
    /// Tracked folders, relative to `local_dir`; `""` is `remote_dir` itself.
    pub dirs: BTreeSet<String>,
    #[serde(default, deserialize_with = "sorted_map")]
    pub files: BTreeMap<String, FileRec>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pending: BTreeMap<String, Pending>,
    /// Folders whose creation was asked for but not confirmed.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub mkdirs: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moving: Option<Moving>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<LastCycle>,
    /// Tracked folders that were mount points (another device than their
    /// parent): one that is no longer mounted is not mirrored as deleted.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub mounts: BTreeSet<String>,
    /// When a full listing was last compared with the state (seconds since
    /// the Unix epoch; 0: never).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reconciled: u64,
}

impl State {
    pub fn new(remote_dir: &str) -> State {
        State {
            version: VERSION,
            remote_dir: remote_dir.into(),
            dirs: BTreeSet::new(),
            files: BTreeMap::new(),
            pending: BTreeMap::new(),
            mkdirs: BTreeSet::new(),
            moving: None,
            last: None,
            mounts: BTreeSet::new(),
            reconciled: 0,
        }
    }

    pub fn apply(&mut self, change: &Change) {
        match change {
            Change::Put { path, rec } => {
                self.pending.remove(path);
                self.files.insert(path.clone(), rec.clone());
            }
            Change::Dir { path } => {
                self.mkdirs.remove(path);
                self.dirs.insert(path.clone());
            }
            Change::Mkdir { path } => {
                self.mkdirs.insert(path.clone());
            }
            Change::Forget { path } => self.forget(path),
            Change::Pending { path, pending } => {
                self.pending.insert(path.clone(), pending.clone());
            }
            Change::Moving(m) => self.moving = m.clone(),
            Change::Last(l) => self.last = Some(l.clone()),
            Change::Mounts(m) => self.mounts = m.clone(),
            Change::Reconciled(t) => self.reconciled = *t,
            Change::Md5Guard(_) => {}
            Change::Seal(_) => {}
        }
    }

    /// A digest of what a scan is compared with: each file's path, size,
    /// mtime, ctime and inode, each folder, and `remote_dir`. A scan with the
    /// same digest ([`crate::plan::seal_of`]) needs no action, so `once` can
    /// stop before loading the state. `None` while an upload or a move is
    /// unsettled or the state is fresh: those cycles must look closer.
    pub fn seal(&self) -> Option<Hex<16>> {
        if !self.pending.is_empty() || !self.mkdirs.is_empty() || self.moving.is_some() || !self.dirs.contains("") {
            return None;
        }
        let mut f = Fingerprint::default();
        for (p, r) in &self.files {
            f.file(p, r.size, r.mtime, r.ctime, r.ino);
        }
        self.dirs.iter().filter(|d| !d.is_empty()).for_each(|d| f.dir(d));
        Some(f.finish(&self.remote_dir))
    }

    /// Forgets `path` and, if it was a folder, everything below it.
    fn forget(&mut self, path: &str) {
        let gone = |p: &String| p == path || crate::scan::is_under(p, path);
        self.files.retain(|p, _| !gone(p));
        self.dirs.retain(|p| !gone(p));
        self.pending.retain(|p, _| !gone(p));
        self.mkdirs.retain(|p| !gone(p));
    }
}

/// Builds a seal: files and folders are hashed as two sequences, each in
/// path order, so a scan (where they interleave) and a state (where they
/// are kept apart) give the same digest. sha256 because it is already here
/// and fast (SHA-NI, ARMv8 crypto); 128 bits make an accidental match
/// between two different trees practically impossible.
#[derive(Default)]
pub struct Fingerprint {
    files: Sha256,
    dirs: Sha256,
}

impl Fingerprint {
    pub fn file(&mut self, path: &str, size: u64, mtime: i64, ctime: i64, ino: u64) {
        let mut fixed = [0u8; 40];
        for (i, v) in [path.len() as u64, size, mtime as u64, ctime as u64, ino].iter().enumerate() {
            fixed[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
        }
        self.files.update(fixed);
        self.files.update(path);
    }

    pub fn dir(&mut self, path: &str) {
        self.dirs.update((path.len() as u64).to_le_bytes());
        self.dirs.update(path);
    }

    pub fn finish(self, remote_dir: &str) -> Hex<16> {
        let mut all = Sha256::new();
        all.update(VERSION.to_le_bytes());
        all.update(self.files.finalize());
        all.update(self.dirs.finalize());
        all.update(remote_dir);
        let mut out = [0u8; 16];
        out.copy_from_slice(&all.finalize()[..16]);
        Hex(out)
    }
}

#[derive(Debug)]
pub enum Error {
    Io(PathBuf, io::Error),
    Corrupt(PathBuf, String),
    /// Another process holds the lock.
    Locked(PathBuf),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            Error::Io(p, e) => write!(f, "state file {}: {e}", p.display()),
            Error::Corrupt(p, e) => write!(f, "state file {} cannot be used ({e}); nothing was changed", p.display()),
            Error::Locked(p) => {
                write!(f, "another ysync is already running with the state file {} (lock {}.lock); stop it first", p.display(), p.display())
            }
        }
    }
}

/// The state files on disk plus the lock.
pub struct Store {
    path: PathBuf,
    journal_path: PathBuf,
    journal: Option<File>,
    /// Lines in the journal; a long journal is folded into a snapshot.
    journal_lines: usize,
    /// The seal the files on disk end with, as far as this process knows.
    seal: Option<Hex<16>>,
    /// The reconcile time found next to that seal by `read_seal`.
    sealed_reconciled: u64,
    _lock: File,
}

/// Journal lines after which the executor saves a snapshot mid-cycle.
pub const JOURNAL_LIMIT: usize = 10_000;

/// The longest journal line is a seal, `{"seal":"<32 hex digits>"}`.
const SEAL_LINE_MAX: u64 = 64;

impl Store {
    /// Takes the lock (without waiting) and creates the state folder if needed.
    pub fn open(path: &Path) -> Result<Store, Error> {
        let io_err = |e| Error::Io(path.to_path_buf(), e);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(io_err)?;
        }
        let lock_path = lock_path(path);
        let lock = OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path).map_err(io_err)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(Error::Locked(path.to_path_buf())),
            Err(fs::TryLockError::Error(e)) => return Err(io_err(e)),
        }
        // A snapshot that a crash interrupted before its rename: never used.
        let tmp = suffixed(path, ".tmp");
        match fs::remove_file(&tmp) {
            Ok(()) => log::info!("removed {}, an unfinished state save left by a crash", tmp.display()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::Io(tmp, e)),
        }
        let journal_path = suffixed(path, ".journal");
        Ok(Store { path: path.to_path_buf(), journal_path, journal: None, journal_lines: 0, seal: None, sealed_reconciled: 0, _lock: lock })
    }

    /// The saved state, or a fresh one when there is none (or it describes
    /// another `remote_dir`). A damaged state file is moved aside for
    /// inspection and ysync starts afresh: with an empty state nothing is
    /// deleted, and uploads overwrite, so the remote gains no duplicates.
    pub fn load(&mut self, remote_dir: &str) -> Result<State, Error> {
        let started = std::time::Instant::now();
        let (mut state, head_seal) = self.load_snapshot(remote_dir)?;
        let (lines, seal) = match replay(&mut state, &self.journal_path) {
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
        log::debug!(
            "state loaded: {} files, {} journal lines, {} ms",
            state.files.len(),
            self.journal_lines,
            crate::logging::ms(started.elapsed())
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
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((State::new(remote_dir), None)),
            Err(e) => return Err(Error::Io(self.path.clone(), e)),
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
        if !self.path.exists() {
            return None;
        }
        match File::open(&self.journal_path) {
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
        io::BufReader::new(File::open(&self.path).ok()?).read_line(&mut head).ok()?;
        let head = serde_json::from_str::<Head>(&head).ok().filter(|h| h.version == VERSION)?;
        Some((head.seal?, head.reconciled))
    }

    /// Makes the journal durable, then appends `seal` to it, after the time
    /// of the last reconcile (so that an idle cycle knows both at once).
    pub fn write_seal(&mut self, seal: Hex<16>, reconciled: u64) -> Result<(), Error> {
        let started = std::time::Instant::now();
        self.sync()?;
        let mut lines = vec![Change::Seal(seal)];
        if reconciled != 0 {
            lines.insert(0, Change::Reconciled(reconciled));
        }
        self.record(&lines)?;
        self.seal = Some(seal);
        log::debug!("state sealed: {} journal lines, {} ms", self.journal_lines, crate::logging::ms(started.elapsed()));
        Ok(())
    }

    /// Makes everything journalled so far durable.
    pub fn sync(&mut self) -> Result<(), Error> {
        match &self.journal {
            Some(f) => {
                crash_point(&self.journal_path);
                f.sync_data().map_err(|e| Error::Io(self.journal_path.clone(), e))
            }
            None => Ok(()),
        }
    }

    /// What the files on disk end with (see [`Store::read_seal`]).
    pub fn seal(&self) -> Option<Hex<16>> {
        self.seal
    }

    /// Whether the journal has grown enough to be folded into a snapshot:
    /// a quarter of the tracked files, so rewriting the whole state costs
    /// little per change, and the journal replays quickly. The first
    /// snapshot is written at once: a lone journal would puzzle a reader.
    pub fn compaction_due(&self, files: usize) -> bool {
        self.journal_lines >= JOURNAL_LIMIT.min(256 + files / 4) || !self.path.exists()
    }

    /// Appends changes to the journal. Intents (an upload or a move about to
    /// start) are made durable before the request goes out; the rest need not
    /// be: losing them to a power cut only repeats harmless work, and the
    /// next fsync or snapshot covers them.
    pub fn record(&mut self, changes: &[Change]) -> Result<(), Error> {
        let durable = changes.iter().any(|c| matches!(c, Change::Pending { .. } | Change::Mkdir { .. } | Change::Moving(Some(_))));
        self.append(changes, durable)
    }

    /// Appends changes without making them durable (the next [`Store::sync`]
    /// does): for notes whose loss in a power cut only repeats harmless work.
    pub fn note(&mut self, changes: &[Change]) -> Result<(), Error> {
        self.append(changes, false)
    }

    fn append(&mut self, changes: &[Change], durable: bool) -> Result<(), Error> {
        if self.journal.is_none() {
            self.journal = Some(self.open_journal().map_err(|e| Error::Io(self.journal_path.clone(), e))?);
        }
        let mut lines = Vec::new();
        for c in changes {
            serde_json::to_writer(&mut lines, c).expect("changes serialise");
            lines.push(b'\n');
        }
        let f = self.journal.as_mut().expect("opened above");
        let result = f.write_all(&lines).and_then(|()| {
            if durable {
                crash_point(&self.journal_path);
                f.sync_data()
            } else {
                Ok(())
            }
        });
        result.map_err(|e| Error::Io(self.journal_path.clone(), e))?;
        self.journal_lines += changes.len();
        self.seal = None;
        Ok(())
    }

    /// Opens the journal for appending. A last line without its newline was
    /// torn by a crash or a power cut: it is cut off first, so that the next
    /// record starts on a line of its own instead of gluing itself onto it.
    fn open_journal(&self) -> io::Result<File> {
        use io::{Read, Seek};
        let mut f = OpenOptions::new().create(true).read(true).append(true).open(&self.journal_path)?;
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

    pub fn journal_lines(&self) -> usize {
        self.journal_lines
    }

    /// Moves the snapshot (if any) and the journal aside; returns their new names.
    fn set_aside_all(&self) -> io::Result<Vec<String>> {
        let mut kept = Vec::new();
        if self.path.exists() {
            kept.push(self.set_aside()?.display().to_string());
        }
        let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let aside = suffixed(&self.journal_path, &format!(".damaged-{secs}"));
        fs::rename(&self.journal_path, &aside)?;
        kept.push(aside.display().to_string());
        Ok(kept)
    }

    fn set_aside(&self) -> io::Result<PathBuf> {
        let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let aside = suffixed(&self.path, &format!(".damaged-{secs}"));
        fs::rename(&self.path, &aside)?;
        Ok(aside)
    }

    /// Writes a snapshot of `state` and empties the journal it includes.
    pub fn save(&mut self, state: &State) -> Result<(), Error> {
        let started = std::time::Instant::now();
        write_atomically(&self.path, 0o666, |w| write_snapshot(w, state)).map_err(|e| Error::Io(self.path.clone(), e))?;
        let bytes = fs::metadata(&self.path).map_or(0, |m| m.len());
        log::debug!("state saved: {} files, {} bytes, {} ms", state.files.len(), bytes, crate::logging::ms(started.elapsed()));
        self.journal = None;
        self.journal_lines = 0;
        self.seal = state.seal();
        match fs::remove_file(&self.journal_path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::Io(self.journal_path.clone(), e)),
            _ => Ok(()),
        }
    }
}

/// Tests only, in debug builds: `YSYNC_TEST_CRASH_AT_SYNC=N` ends the
/// process at the Nth point where a state file is about to be made durable,
/// as `kill -9` would there (what was written stays in the page cache).
/// `YSYNC_TEST_POWER_CUT_AT_SYNC=N` also loses half of what was written to
/// that file since it was last made durable, as a power cut can, tearing a
/// line. Release builds have neither.
#[cfg(debug_assertions)]
fn crash_point(file: &Path) {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEEN: AtomicU64 = AtomicU64::new(0);
    static DURABLE: Mutex<Vec<(PathBuf, u64)>> = Mutex::new(Vec::new());
    let n = SEEN.fetch_add(1, Ordering::SeqCst) + 1;
    let at = |var: &str| std::env::var(var).ok().and_then(|v| v.parse::<u64>().ok()) == Some(n);
    let len = fs::metadata(file).map_or(0, |m| m.len());
    let mut durable = DURABLE.lock().unwrap_or_else(|e| e.into_inner());
    let before = durable.iter().find(|(p, _)| p == file).map_or(0, |(_, l)| *l).min(len);
    if at("YSYNC_TEST_POWER_CUT_AT_SYNC") {
        let _ = OpenOptions::new().write(true).open(file).and_then(|f| f.set_len(before + (len - before) / 2));
        eprintln!("test: power cut at state sync point {n} ({})", file.display());
        std::process::abort();
    }
    if at("YSYNC_TEST_CRASH_AT_SYNC") {
        eprintln!("test: crash at state sync point {n} ({})", file.display());
        std::process::abort();
    }
    durable.retain(|(p, _)| p != file);
    durable.push((file.to_path_buf(), len));
}

#[cfg(not(debug_assertions))]
fn crash_point(_: &Path) {}

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn lock_path(path: &Path) -> PathBuf {
    suffixed(path, ".lock")
}

/// Applies the journal at `path` (if any) to `state`; returns its lines
/// and the seal it ends with.
fn replay(state: &mut State, path: &Path) -> Result<(usize, Option<Hex<16>>), Error> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((0, None)),
        Err(e) => return Err(Error::Io(path.to_path_buf(), e)),
    };
    let lines: Vec<&str> = text.lines().collect();
    let mut seal = None;
    for (i, line) in lines.iter().enumerate() {
        seal = None;
        match serde_json::from_str::<Change>(line) {
            Ok(Change::Seal(s)) => seal = Some(s),
            Ok(c) => state.apply(&c),
            // Killed while appending: the action it describes is either
            // repeated (pending uploads) or harmless to repeat.
            Err(_) if i + 1 == lines.len() => log::debug!("ignoring a torn last journal line"),
            Err(e) => return Err(Error::Corrupt(path.to_path_buf(), format!("line {}: {e}", i + 1))),
        }
    }
    Ok((lines.len(), seal))
}

/// The state as saved at `path`, read without the lock and without changing
/// anything (for `status` and `verify`, also while `run` is going).
pub fn peek(path: &Path) -> Result<Option<State>, Error> {
    let journal = suffixed(path, ".journal");
    let mut state: State = match File::open(path) {
        Ok(f) => read_snapshot(io::BufReader::new(f)).map_err(|e| Error::Corrupt(path.to_path_buf(), e))?.0,
        Err(e) if e.kind() == io::ErrorKind::NotFound && !journal.exists() => return Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => State::new(""),
        Err(e) => return Err(Error::Io(path.to_path_buf(), e)),
    };
    replay(&mut state, &journal)?;
    Ok(Some(state))
}

/// The snapshot is JSON Lines: the state without its files on the first
/// line (with their count), then one `["path", [size, mtime, ctime, inode,
/// "sha256", "md5"]]` per line, in path order. Written and read line by
/// line, a 100 000-file state never sits in memory as one big buffer.
fn write_snapshot(w: &mut dyn Write, state: &State) -> io::Result<()> {
    #[derive(Serialize)]
    struct Head<'a> {
        version: u32,
        remote_dir: &'a str,
        dirs: &'a BTreeSet<String>,
        pending: &'a BTreeMap<String, Pending>,
        #[serde(skip_serializing_if = "BTreeSet::is_empty")]
        mkdirs: &'a BTreeSet<String>,
        moving: &'a Option<Moving>,
        last: &'a Option<LastCycle>,
        #[serde(skip_serializing_if = "BTreeSet::is_empty")]
        mounts: &'a BTreeSet<String>,
        #[serde(skip_serializing_if = "is_zero")]
        reconciled: &'a u64,
        file_count: usize,
        #[serde(skip_serializing_if = "Option::is_none")]
        seal: Option<Hex<16>>,
    }
    let head = Head {
        version: state.version,
        remote_dir: &state.remote_dir,
        dirs: &state.dirs,
        pending: &state.pending,
        mkdirs: &state.mkdirs,
        moving: &state.moving,
        last: &state.last,
        mounts: &state.mounts,
        reconciled: &state.reconciled,
        file_count: state.files.len(),
        seal: state.seal(),
    };
    serde_json::to_writer(&mut *w, &head)?;
    w.write_all(b"\n")?;
    for pair in &state.files {
        serde_json::to_writer(&mut *w, &pair)?;
        w.write_all(b"\n")?;
    }
    Ok(())
}

fn read_snapshot(mut r: impl io::BufRead) -> Result<(State, Option<Hex<16>>), String> {
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line).map_err(|e| e.to_string())?;
    let utf8 = |b: &[u8]| std::str::from_utf8(b).map(str::to_owned).map_err(|e| e.to_string());
    // The first line is the state without its files, plus two fields of its
    // own; read twice rather than through serde_json::Value, which would
    // add a second JSON model to the binary.
    #[derive(Deserialize)]
    struct Extra {
        #[serde(default)]
        file_count: usize,
        #[serde(default)]
        seal: Option<Hex<16>>,
    }
    let head = utf8(&line)?;
    let Extra { file_count: count, seal } = serde_json::from_str(&head).map_err(|e| e.to_string())?;
    let seal = seal.filter(|h| !h.is_unknown());
    let mut state: State = serde_json::from_str(&head).map_err(|e| e.to_string())?;
    let mut files = Vec::with_capacity(count);
    loop {
        line.clear();
        if r.read_until(b'\n', &mut line).map_err(|e| e.to_string())? == 0 {
            break;
        }
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        let pair = match fast_line(text) {
            Some(p) => p,
            None => serde_json::from_str(&utf8(text)?).map_err(|e| format!("line {}: {e}", files.len() + 2))?,
        };
        files.push(pair);
    }
    if files.len() != count {
        return Err(format!("{} files where the first line promises {count}: the file is truncated", files.len()));
    }
    state.files = files.into_iter().collect();
    Ok((state, seal))
}

/// The usual snapshot line, `["path",[size,mtime,ctime,ino,"sha256","md5"]]`,
/// read by hand, byte by byte: four times faster than serde_json, and
/// loading the state is most of the state's cost in a cycle that changed
/// something. Anything else (an escaped path, other spacing) returns `None`
/// and goes to serde_json.
fn fast_line(line: &[u8]) -> Option<(String, FileRec)> {
    let mut c = Bytes(line);
    c.eat(b"[\"")?;
    let end = c.0.iter().position(|&b| b == b'"' || b == b'\\').filter(|&i| c.0[i] == b'"')?;
    let path = std::str::from_utf8(&c.0[..end]).ok()?.to_owned();
    c.0 = &c.0[end..];
    c.eat(b"\",[")?;
    let size = c.uint(b',')?;
    let mtime = c.int(b',')?;
    let ctime = c.int(b',')?;
    let ino = c.uint(b',')?;
    c.eat(b"\"")?;
    let sha256 = c.hex::<32>()?;
    c.eat(b"\",\"")?;
    let md5 = if c.0.starts_with(b"\"") { Hex::UNKNOWN } else { c.hex::<16>()? };
    c.eat(b"\"]]")?;
    c.0.is_empty().then_some((path, FileRec { size, mtime, ctime, ino, sha256, md5 }))
}

/// A cursor over one snapshot line.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn eat(&mut self, s: &[u8]) -> Option<()> {
        self.0 = self.0.strip_prefix(s)?;
        Some(())
    }

    /// Decimal digits up to `end`, which is consumed. Up to 19 digits,
    /// so that nothing can overflow; longer numbers go to serde_json.
    fn uint(&mut self, end: u8) -> Option<u64> {
        let mut n: u64 = 0;
        let mut i = 0;
        while let Some(d) = self.0.get(i).map(|b| b.wrapping_sub(b'0')).filter(|d| *d <= 9) {
            if i == 19 {
                return None;
            }
            n = n * 10 + u64::from(d);
            i += 1;
        }
        if i == 0 || self.0.get(i) != Some(&end) {
            return None;
        }
        self.0 = &self.0[i + 1..];
        Some(n)
    }

    /// Times can be before 1970.
    fn int(&mut self, end: u8) -> Option<i64> {
        if self.eat(b"-").is_some() {
            return self.uint(end).and_then(|n| 0i64.checked_sub_unsigned(n));
        }
        self.uint(end).and_then(|n| i64::try_from(n).ok())
    }

    fn hex<const N: usize>(&mut self) -> Option<Hex<N>> {
        let digits = self.0.get(..2 * N)?;
        self.0 = &self.0[2 * N..];
        Hex::parse(std::str::from_utf8(digits).ok()?).filter(|h| !h.is_unknown())
    }
}

/// Temp file (written by `fill`), fsync, rename over the target, fsync the
/// folder. The temp file is made afresh with `mode` (less the umask), so a
/// secret never sits in a file that others can read, even for a moment.
pub fn write_atomically(path: &Path, mode: u32, fill: impl FnOnce(&mut io::BufWriter<File>) -> io::Result<()>) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = suffixed(path, ".tmp");
    match fs::remove_file(&tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    {
        let file = OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp)?;
        let mut w = io::BufWriter::with_capacity(64 << 10, file);
        fill(&mut w)?;
        let file = w.into_inner().map_err(io::IntoInnerError::into_error)?;
        crash_point(&tmp);
        file.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    File::open(dir)?.sync_all()
}

/// Whether a file can be created in `dir`: tries one and removes it.
pub fn can_write_in(dir: &Path) -> io::Result<()> {
    let probe = dir.join(format!(".ysync-probe-{}", std::process::id()));
    File::create(&probe)?;
    fs::remove_file(&probe)
}

/// First 8 hex digits of the sha256 of `bytes`.
pub fn short_hash(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes)[..4])
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(n: u64) -> FileRec {
        FileRec { size: n, mtime: 1, ctime: 2, ino: 3, sha256: Hex([0xab; 32]), md5: Hex([0xcd; 16]) }
    }

    #[test]
    fn the_seal_is_read_back_without_loading_and_any_later_change_breaks_it() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("s.json");
        let mut s = State::new("/r");
        assert_eq!(s.seal(), None, "a fresh state must list the Disk first");
        s.dirs.insert(String::new());
        s.files.insert("a".into(), rec(1));
        let sealed = s.seal().unwrap();

        let mut store = Store::open(&p).unwrap();
        assert_eq!(store.read_seal(), None, "nothing saved yet");
        store.write_seal(sealed, 0).unwrap();
        assert_eq!(store.read_seal(), None, "a journal without its snapshot");
        store.save(&s).unwrap();
        assert_eq!(store.read_seal(), Some(sealed), "from the snapshot");
        store.record(&[Change::Put { path: "b".into(), rec: rec(2) }]).unwrap();
        assert_eq!(store.read_seal(), None, "a change after the seal");
        s.files.insert("b".into(), rec(2));
        s.reconciled = 77;
        store.write_seal(s.seal().unwrap(), 77).unwrap();
        assert_eq!(store.read_seal(), s.seal(), "from the journal");
        assert_eq!(store.sealed_reconciled(), 77, "with the time of the last reconcile");
        assert_ne!(s.seal(), Some(sealed));
        assert_eq!(store.load("/r").unwrap(), s);
        assert_eq!(store.seal(), s.seal(), "load knows the seal too");

        // A torn line after the seal: it no longer describes the files.
        OpenOptions::new().append(true).open(suffixed(&p, ".journal")).unwrap().write_all(b"{\"put\":{\"pa").unwrap();
        assert_eq!(store.read_seal(), None);
        // Neither does anything while an upload is unsettled.
        let mut unsettled = s.clone();
        unsettled.pending.insert(
            "c".into(),
            Pending { size: 1, mark: String::new(), op: String::new(), temp: String::new(), at: 0, earlier: Vec::new() },
        );
        assert_eq!(unsettled.seal(), None);
        // The state's seal depends on every compared field.
        let mut other = s.clone();
        other.files.get_mut("a").unwrap().ino += 1;
        assert_ne!(other.seal(), s.seal());
    }

    #[test]
    fn round_trip_and_atomic_save() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("sub/s.json");
        let mut store = Store::open(&p).unwrap();
        let mut s = store.load("/r").unwrap();
        assert_eq!(s, State::new("/r"));
        s.dirs.insert(String::new());
        s.files.insert("a+b.txt".into(), rec(5));
        store.save(&s).unwrap();
        assert_eq!(store.load("/r").unwrap(), s);
        assert!(!t.path().join("sub/s.json.tmp").exists());
    }

    #[test]
    fn other_remote_dir_starts_fresh() {
        let t = tempfile::tempdir().unwrap();
        let mut store = Store::open(&t.path().join("s.json")).unwrap();
        let mut s = State::new("/a");
        s.files.insert("x".into(), rec(1));
        store.save(&s).unwrap();
        assert_eq!(store.load("/b").unwrap(), State::new("/b"));
    }

    #[test]
    fn damaged_state_is_kept_aside_and_replaced_by_an_empty_one() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("s.json");
        let torn = b"{\"version\":1,\"remote_dir\":\"/r\",\"dirs\":[],\"fil";
        fs::write(&p, torn).unwrap();
        let mut store = Store::open(&p).unwrap();
        assert_eq!(store.load("/r").unwrap(), State::new("/r"));
        let aside: Vec<_> = fs::read_dir(t.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with("s.json.damaged-"))
            .collect();
        assert_eq!(aside.len(), 1);
        assert_eq!(fs::read(t.path().join(&aside[0])).unwrap(), torn);
    }

    #[test]
    fn the_fast_line_reader_agrees_with_serde_or_declines() {
        let mut unknown_md5 = rec(5);
        unknown_md5.md5 = Hex::UNKNOWN;
        unknown_md5.mtime = -1_000_000_000; // before 1970
        let cases = [("plain/path.jpg", rec(1)), ("Фото 2024/ёлка+1 #a.jpg", rec(2)), ("old", unknown_md5)];
        for (path, r) in cases {
            let line = serde_json::to_string(&(path, &r)).unwrap();
            assert_eq!(fast_line(line.as_bytes()), Some((path.to_string(), r)), "{line}");
        }
        for path in ["quote\"d", "back\\slash", "tab\there"] {
            let line = serde_json::to_string(&(path, rec(3))).unwrap();
            assert_eq!(fast_line(line.as_bytes()), None, "{line}");
            assert_eq!(serde_json::from_str::<(String, FileRec)>(&line).unwrap(), (path.to_string(), rec(3)));
        }
        for odd in [
            r#"["a",[1,2,3,4,"ab","cd"]]"#,                     // short digests: serde refuses them
            r#"["a",[1,2,3,99999999999999999999999,"","cd"]]"#, // too large
            r#"["a", [1,2,3,4,"","cd"]]"#,                      // other spacing
            r#"["a",[1,2,3,4,"","cd"]] "#,                      // trailing bytes
        ] {
            assert_eq!(fast_line(odd.as_bytes()), None, "{odd}");
        }
    }

    #[test]
    fn a_snapshot_cut_at_a_line_boundary_is_damaged_not_short() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("s.json");
        let mut store = Store::open(&p).unwrap();
        let mut s = State::new("/r");
        s.files.insert("a".into(), rec(1));
        s.files.insert("b".into(), rec(2));
        store.save(&s).unwrap();
        assert_eq!(store.load("/r").unwrap(), s);
        let text = fs::read_to_string(&p).unwrap();
        let cut: Vec<&str> = text.lines().take(2).collect();
        fs::write(&p, cut.join("\n") + "\n").unwrap();
        // Kept aside as damaged; a fresh state deletes nothing.
        assert_eq!(store.load("/r").unwrap(), State::new("/r"));
        assert!(!p.exists());
    }

    #[test]
    fn a_newer_version_is_refused_not_overwritten() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("s.json");
        fs::write(&p, br#"{"version":3,"remote_dir":"/r","dirs":[],"files":{}}"#).unwrap();
        let e = Store::open(&p).unwrap().load("/r").unwrap_err().to_string();
        assert!(e.contains("version 3"), "{e}");
        assert!(p.exists());
    }

    #[test]
    fn second_store_is_refused_while_first_lives() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("s.json");
        let first = Store::open(&p).unwrap();
        let e = Store::open(&p).err().unwrap();
        assert!(matches!(e, Error::Locked(_)));
        assert!(e.to_string().contains("s.json"));
        drop(first);
        Store::open(&p).unwrap();
    }

    fn put(path: &str) -> Change {
        Change::Put { path: path.into(), rec: rec(1) }
    }

    #[test]
    fn the_journal_is_replayed_over_the_snapshot() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("s.json");
        let mut store = Store::open(&p).unwrap();
        let mut s = State::new("/r");
        s.files.insert("old".into(), rec(1));
        store.save(&s).unwrap();
        let changes = [
            put("new"),
            Change::Dir { path: "d".into() },
            Change::Pending {
                path: "d/big".into(),
                pending: Pending { size: 9, mark: String::new(), op: String::new(), temp: String::new(), at: 0, earlier: Vec::new() },
            },
            Change::Forget { path: "old".into() },
        ];
        for c in &changes {
            store.record(std::slice::from_ref(c)).unwrap();
            s.apply(c);
        }
        drop(store);
        let mut store = Store::open(&p).unwrap();
        assert_eq!(store.load("/r").unwrap(), s);
        assert_eq!(store.journal_lines(), 4);
        // A snapshot folds the journal in and removes it.
        store.save(&s).unwrap();
        assert!(!t.path().join("s.json.journal").exists());
        assert_eq!(store.load("/r").unwrap(), s);
    }

    #[test]
    fn a_torn_last_journal_line_is_cut_before_the_next_record() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("s.json");
        let j = t.path().join("s.json.journal");
        let good = serde_json::to_string(&put("a")).unwrap();
        fs::write(&j, format!("{good}\n{{\"put\":{{\"pa")).unwrap();
        let mut store = Store::open(&p).unwrap();
        assert_eq!(store.load("/r").unwrap().files.keys().collect::<Vec<_>>(), ["a"]);
        store.record(&[put("b")]).unwrap();
        let text = fs::read_to_string(&j).unwrap();
        assert_eq!(text, format!("{good}\n{}\n", serde_json::to_string(&put("b")).unwrap()), "the torn tail is gone");
        drop(store);
        assert_eq!(Store::open(&p).unwrap().load("/r").unwrap().files.keys().collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn a_journal_damaged_in_the_middle_is_kept_aside_and_the_state_starts_afresh() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("s.json");
        let j = t.path().join("s.json.journal");
        let mut store = Store::open(&p).unwrap();
        let mut s = State::new("/r");
        s.files.insert("old".into(), rec(1));
        store.save(&s).unwrap();
        let good = serde_json::to_string(&put("a")).unwrap();
        fs::write(&j, format!("{{\"put\":{{\"pa\n{good}\n")).unwrap();
        assert_eq!(store.load("/r").unwrap(), State::new("/r"), "never a permanent stop");
        assert!(!p.exists() && !j.exists());
        let mut aside: Vec<String> = fs::read_dir(t.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        aside.sort();
        assert_eq!(aside.len(), 3, "{aside:?}"); // the lock, and both files kept for inspection
        assert!(aside[0].starts_with("s.json.damaged-") && aside[1].starts_with("s.json.journal.damaged-"), "{aside:?}");
        store.record(&[put("b")]).unwrap();
        assert_eq!(store.load("/r").unwrap().files.keys().collect::<Vec<_>>(), ["b"], "and it works afresh");
    }

    #[test]
    fn a_snapshot_left_half_written_by_a_crash_is_removed_at_the_next_start() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("s.json");
        fs::write(t.path().join("s.json.tmp"), b"{\"version\":2,\"remo").unwrap();
        Store::open(&p).unwrap();
        assert!(!t.path().join("s.json.tmp").exists());
    }

    #[test]
    fn replaying_a_journal_already_in_the_snapshot_changes_nothing() {
        // A crash between writing the snapshot and removing the journal.
        let changes = [put("d/x"), Change::Forget { path: "d".into() }, Change::Dir { path: "d".into() }, put("d/y"), put("e")];
        let mut once = State::new("/r");
        once.files.insert("d/z".into(), rec(2));
        changes.iter().for_each(|c| once.apply(c));
        let mut twice = once.clone();
        changes.iter().for_each(|c| twice.apply(c));
        assert_eq!(once, twice);
        assert_eq!(once.files.keys().collect::<Vec<_>>(), ["d/y", "e"]);
    }

    #[test]
    fn digests_round_trip_as_hex() {
        let h = Hex::<4>::parse("00ff10ab").unwrap();
        assert_eq!((h.0, h.to_string()), ([0, 0xff, 0x10, 0xab], "00ff10ab".to_string()));
        assert!(Hex::<4>::parse("").unwrap().is_unknown());
        assert_eq!(Hex::<4>::UNKNOWN.to_string(), "");
        assert!(Hex::<4>::parse("00ff10").is_none() && Hex::<4>::parse("00ff10zz").is_none());
        let json = serde_json::to_string(&rec(7)).unwrap();
        assert_eq!(json, format!("[7,1,2,3,\"{}\",\"{}\"]", "ab".repeat(32), "cd".repeat(16)));
        assert_eq!(serde_json::from_str::<FileRec>(&json).unwrap(), rec(7));
    }

    #[test]
    fn only_an_upload_whose_every_byte_may_have_gone_out_can_still_land() {
        let now = 10_000;
        let p = |mark: &str, at: u64| Pending { size: 1, mark: mark.into(), op: "op".into(), temp: String::new(), at, earlier: Vec::new() };
        assert!(!p("", now - 5).may_land(now), "cut short: the mark is noted before the last bytes");
        assert!(p("abc", now - 5).may_land(now), "the whole body may have reached the Disk");
        assert!(!p("abc", now - Pending::LINK_LIFE).may_land(now), "older than a link lives");
        assert!(p("", 0).may_land(now), "a record from before the rule: the benefit of the doubt");
        // A second attempt remembers what the first may have left.
        let (sha_a, md5_b) = ("a".repeat(64), "b".repeat(32));
        let second = p(&sha_a, now - 5).next_attempt("op2".into(), now);
        assert_eq!((second.mark.as_str(), second.op.as_str(), second.earlier.clone()), ("", "op2", vec![sha_a.clone()]));
        assert!(second.is_ours(&sha_a, "") && !second.is_ours(&"c".repeat(64), "") && !second.is_ours("", ""));
        // A mark from an older state is an md5, and matches the Disk's md5.
        let old = p(&md5_b, now - 5);
        assert!(old.is_ours("", &md5_b) && !old.is_ours(&md5_b, ""));
        let mut many = second;
        for m in ["b", "c", "d", "e", "f"] {
            many.mark = m.into();
            many = many.next_attempt("op".into(), now);
        }
        assert_eq!(many.earlier, ["c", "d", "e", "f"], "a few at most");
    }

    #[test]
    fn put_settles_a_pending_upload() {
        let mut s = State::new("/r");
        s.apply(&Change::Pending {
            path: "a".into(),
            pending: Pending { size: 1, mark: String::new(), op: String::new(), temp: String::new(), at: 0, earlier: Vec::new() },
        });
        s.apply(&put("a"));
        assert!(s.pending.is_empty());
    }

    #[test]
    fn forget_removes_subtree_only() {
        let mut s = State::new("/r");
        for p in ["a", "a/b", "ab"] {
            s.dirs.insert(p.into());
        }
        for p in ["a/x", "a/b/y", "ab/z", "a.txt"] {
            s.files.insert(p.into(), rec(1));
        }
        s.apply(&Change::Forget { path: "a".into() });
        assert_eq!(s.dirs.iter().collect::<Vec<_>>(), ["ab"]);
        assert_eq!(s.files.keys().collect::<Vec<_>>(), ["a.txt", "ab/z"]);
    }
}
