//! The JSON state file: what ysync uploaded, so the next cycle knows what
//! changed. Saved atomically (temp file, fsync, rename, fsync of the folder),
//! so a crash leaves either the old or the new state, never a torn one.
//! A lock file next to it keeps a second instance away.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const VERSION: u32 = 1;

/// What was uploaded for one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRec {
    pub size: u64,
    pub mtime: i64,
    pub ctime: i64,
    pub ino: u64,
    pub sha256: String,
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
    pub files: BTreeMap<String, FileRec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<LastCycle>,
}

impl State {
    pub fn new(remote_dir: &str) -> State {
        State { version: VERSION, remote_dir: remote_dir.into(), dirs: BTreeSet::new(), files: BTreeMap::new(), last: None }
    }

    /// Forgets `path` and, if it was a folder, everything below it.
    pub fn forget(&mut self, path: &str) {
        self.files.remove(path);
        self.dirs.remove(path);
        let below = format!("{path}/");
        self.files.retain(|p, _| !p.starts_with(&below));
        self.dirs.retain(|p| !p.starts_with(&below));
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
            Error::Corrupt(p, e) => write!(
                f,
                "state file {} is damaged ({e}); nothing was deleted. Move it away to start afresh (files already on the Disk are replaced, not duplicated)",
                p.display()
            ),
            Error::Locked(p) => {
                write!(f, "another ysync is already running with the state file {} (lock {}.lock); stop it first", p.display(), p.display())
            }
        }
    }
}

/// The state file on disk plus its lock.
pub struct Store {
    path: PathBuf,
    _lock: File,
}

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
        Ok(Store { path: path.to_path_buf(), _lock: lock })
    }

    /// The saved state, or a fresh one when there is none (or it describes
    /// another `remote_dir`).
    pub fn load(&self, remote_dir: &str) -> Result<State, Error> {
        let bytes = match fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(State::new(remote_dir)),
            Err(e) => return Err(Error::Io(self.path.clone(), e)),
        };
        let state: State = serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt(self.path.clone(), e.to_string()))?;
        if state.version != VERSION {
            return Err(Error::Corrupt(self.path.clone(), format!("version {} is not {VERSION}", state.version)));
        }
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

    pub fn save(&self, state: &State) -> Result<(), Error> {
        let bytes = serde_json::to_vec(state).expect("state serialises");
        write_atomically(&self.path, &bytes).map_err(|e| Error::Io(self.path.clone(), e))
    }
}

fn lock_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".lock");
    PathBuf::from(s)
}

/// Temp file, fsync, rename over the target, fsync the folder.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    File::open(dir)?.sync_all()
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
        FileRec { size: n, mtime: 1, ctime: 2, ino: 3, sha256: "ab".repeat(32) }
    }

    #[test]
    fn round_trip_and_atomic_save() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("sub/s.json");
        let store = Store::open(&p).unwrap();
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
        let store = Store::open(&t.path().join("s.json")).unwrap();
        let mut s = State::new("/a");
        s.files.insert("x".into(), rec(1));
        store.save(&s).unwrap();
        assert_eq!(store.load("/b").unwrap(), State::new("/b"));
    }

    #[test]
    fn corrupt_state_is_an_error_not_an_empty_state() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("s.json");
        fs::write(&p, b"{\"version\":1,\"remote_dir\":\"/r\",\"dirs\":[],\"fil").unwrap();
        let store = Store::open(&p).unwrap();
        let e = store.load("/r").unwrap_err().to_string();
        assert!(e.contains("is damaged"), "{e}");
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

    #[test]
    fn forget_removes_subtree_only() {
        let mut s = State::new("/r");
        for p in ["a", "a/b", "ab"] {
            s.dirs.insert(p.into());
        }
        for p in ["a/x", "a/b/y", "ab/z", "a.txt"] {
            s.files.insert(p.into(), rec(1));
        }
        s.forget("a");
        assert_eq!(s.dirs.iter().collect::<Vec<_>>(), ["ab"]);
        assert_eq!(s.files.keys().collect::<Vec<_>>(), ["a.txt", "ab/z"]);
    }
}
