//! Tests only: the Disk in memory ([`MemDisk`]), with the faults of the
//! emulator (a 5xx, a 429, a reset before the work or after it) and crash
//! points (a panic carrying [`Crash`] at the Nth step, before or after the
//! work, as `kill -9` would land there). The executor's tests and the
//! whole-cycle model tests run against it.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use sha2::{Digest, Sha256};

use crate::digest::Hex;
use crate::plan::props::Rng;
use crate::remote::{Dates, DiskInfo, Error, Item, Link, OpStatus, Placed, Remote, RemoteFile};

/// What a crash point panics with: the process died here.
#[derive(Debug)]
pub struct Crash(pub String);

/// The Disk in memory: files (path → bytes), folders, operations, and a
/// log of every call, in the order made.
/// A test's action before each call ([`MemDisk::before_call`]).
pub type OnCall = Box<dyn FnMut(&str)>;

#[derive(Default)]
pub struct MemDisk {
    pub files: BTreeMap<String, Vec<u8>>,
    pub dirs: BTreeSet<String>,
    pub ops: BTreeMap<String, OpStatus>,
    pub calls: Vec<String>,
    /// The next upload lands whole, but its answer is lost (a timeout).
    pub lose_answer: bool,
    /// The next call of this kind (`"move"`, `"delete"`…) does its work,
    /// but its answer is lost (a reset).
    pub lose_answer_to: Option<&'static str>,
    links: u32,
    /// Bytes received by uploads, whole or not.
    pub received: u64,
    /// Faults: in `percent` of the steps, and a crash at step `crash_at`
    /// (each call has two steps: before its work and after it).
    pub faults: Option<(Rng, u64)>,
    pub crash_at: Option<u64>,
    steps: u64,
    /// Faults injected so far.
    pub injected: u64,
    /// The live Disk's lag (R1 in real-disk-evidence.md): a fresh upload
    /// answers 202, and is missing or unhashed for a few looks after it.
    pub lag: Option<Rng>,
    /// Fresh uploads still finalising: path → looks left.
    finalising: BTreeMap<String, u64>,
    /// Files shown without hashes for this many more looks: R1 says a fresh
    /// upload is unhashed "for a while", without a bound, so here longer
    /// than ysync waits.
    pub slow_hash: BTreeMap<String, u64>,
    /// What `disk_info` says (default: a terabyte free, no per-file limit).
    pub info: Option<DiskInfo>,
    /// Scripted faults: the next call of each kind (`"stat"`, `"put"`…)
    /// fails with this error before its work, in order.
    pub fail_next: Vec<(&'static str, Error)>,
    /// Paths deleted to the trash (not permanently).
    pub trashed: Vec<String>,
    /// Looks at an operation that still answer `in-progress`.
    pub in_progress: u64,
    /// The next upload answers 202 and stays hidden for this many looks.
    pub lag_next: Option<u64>,
    /// The files' dates (`set_date`): moved with a move, dropped by an
    /// upload over the file (the harsher reading: a new content is a new
    /// resource), as the emulator does.
    pub dates: BTreeMap<String, Dates>,
    /// Called with each call's name before the Disk works on it: a test
    /// changes the local folder there (after the scan, between actions).
    pub before_call: Option<OnCall>,
}

pub fn sha(b: &[u8]) -> Hex<32> {
    Hex(Sha256::digest(b).into())
}

/// Any stable 16 bytes do for the md5: ysync only hands back what a stat said.
pub fn md5_of(b: &[u8]) -> Hex<16> {
    let mut out = [0u8; 16];
    out.copy_from_slice(&Sha256::digest(b)[16..]);
    Hex(out)
}

pub fn file_of(b: &[u8]) -> RemoteFile {
    RemoteFile { size: b.len() as u64, sha256: Some(sha(b)), md5: Some(md5_of(b)), ..RemoteFile::default() }
}

impl MemDisk {
    /// A Disk with just the folder `root` on it.
    pub fn with_folder(root: &str) -> MemDisk {
        MemDisk { dirs: [root.to_string()].into(), ..MemDisk::default() }
    }

    /// `path` is a fresh upload the Disk is still finalising: missing for
    /// the next `looks` looks, then unhashed for one.
    pub fn hide(&mut self, path: &str, looks: u64) {
        self.finalising.insert(path.into(), looks + 1);
    }

    pub fn called(&self, what: &str) -> usize {
        self.calls.iter().filter(|c| c.starts_with(what)).count()
    }

    /// A step of a call: maybe the crash, maybe a fault instead of the work.
    /// The steps taken so far (two a call): `crash_at` counts in them.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    fn before(&mut self, call: String) -> Result<(), Error> {
        if let Some(f) = self.before_call.as_mut() {
            f(&call);
        }
        if let Some(i) = self.fail_next.iter().position(|(kind, _)| call.starts_with(kind)) {
            self.calls.push(call);
            return Err(self.fail_next.remove(i).1);
        }
        self.calls.push(call);
        self.step("before")?;
        Ok(())
    }

    /// The step after the work: maybe the crash, maybe a reset that loses
    /// the answer although the work was done.
    fn after<T>(&mut self, r: Result<T, Error>) -> Result<T, Error> {
        let v = r?;
        if let Some(kind) = self.lose_answer_to
            && self.calls.last().is_some_and(|c| c.starts_with(kind))
        {
            self.lose_answer_to = None;
            return Err(Error::Network(format!("connection reset after the {kind}")));
        }
        self.step("after")?;
        Ok(v)
    }

    fn step(&mut self, when: &str) -> Result<(), Error> {
        self.steps += 1;
        if self.crash_at == Some(self.steps) {
            let last = self.calls.last().cloned().unwrap_or_default();
            std::panic::panic_any(Crash(format!("{when} {last}")));
        }
        let Some((rng, percent)) = &mut self.faults else { return Ok(()) };
        if !rng.chance(*percent) {
            return Ok(());
        }
        self.injected += 1;
        Err(match (when, rng.below(3)) {
            ("after", _) => Error::Network("connection reset after the work".into()),
            (_, 0) => Error::Server(503),
            (_, 1) => Error::TooManyRequests(None),
            _ => Error::Network("connection reset".into()),
        })
    }

    fn has_folder(&self, path: &str) -> bool {
        self.dirs.contains(path)
    }

    /// Is `path` a fresh upload the Disk does not show yet? Each look
    /// brings it closer to shown.
    fn hidden(&mut self, path: &str) -> bool {
        match self.finalising.get_mut(path) {
            Some(0) | None => false,
            Some(n) => {
                *n -= 1;
                true
            }
        }
    }
}

impl Remote for MemDisk {
    fn mkdir(&mut self, path: &str) -> Result<(), Error> {
        self.before(format!("mkdir {path}"))?;
        let parent = path.rfind('/').map_or("", |i| &path[..i]);
        let r = if !parent.is_empty() && !self.has_folder(parent) {
            Err(Error::ParentMissing)
        } else if self.files.contains_key(path) {
            Err(Error::AlreadyExists)
        } else {
            self.dirs.insert(path.into());
            Ok(())
        };
        self.after(r)
    }
    fn upload_link(&mut self, path: &str, overwrite: bool) -> Result<Link, Error> {
        self.before(format!("link {path}"))?;
        let parent = path.rfind('/').map_or("", |i| &path[..i]);
        if !self.has_folder(parent) {
            return Err(Error::ParentMissing);
        }
        if self.has_folder(path) {
            return Err(Error::IsFolder);
        }
        if !overwrite && self.files.contains_key(path) {
            return Err(Error::AlreadyExists);
        }
        self.links += 1;
        let op = format!("op{}", self.links);
        self.ops.insert(op.clone(), OpStatus::InProgress);
        self.after(Ok(Link { href: path.into(), operation: Some(op) }))
    }
    fn put(&mut self, link: &Link, body: &mut dyn Read, size: u64) -> Result<Placed, Error> {
        self.before(format!("put {}", link.href))?;
        let mut bytes = Vec::new();
        let read = body.read_to_end(&mut bytes);
        self.received += bytes.len() as u64;
        read.map_err(Error::Local)?;
        if bytes.len() as u64 != size {
            return Err(Error::Network("the body ended short".into()));
        }
        self.files.insert(link.href.clone(), bytes);
        self.dates.remove(&link.href);
        self.ops.insert(link.operation.clone().expect("MemDisk gives every link an operation"), OpStatus::Success);
        if std::mem::take(&mut self.lose_answer) {
            // Lost while the Disk finalised it, maybe.
            if let Some(looks) = self.lag_next.take() {
                self.finalising.insert(link.href.clone(), looks);
            }
            return Err(Error::Timeout("the answer was lost".into()));
        }
        let looks = self.lag_next.take().or_else(|| self.lag.as_mut().and_then(|rng| rng.chance(50).then(|| 1 + rng.below(3))));
        let placed = match looks {
            Some(looks) => {
                self.finalising.insert(link.href.clone(), looks);
                Placed::Later
            }
            None => {
                self.finalising.remove(&link.href); // stored and shown
                Placed::Now
            }
        };
        self.after(Ok(placed))
    }
    fn operation(&mut self, id: &str) -> Result<OpStatus, Error> {
        self.before(format!("operation {id}"))?;
        let s = match self.in_progress.checked_sub(1) {
            Some(left) => {
                self.in_progress = left;
                OpStatus::InProgress
            }
            None => self.ops.get(id).copied().unwrap_or(OpStatus::Failed),
        };
        self.after(Ok(s))
    }
    fn delete(&mut self, path: &str, permanently: bool, md5: Option<Hex<16>>) -> Result<(), Error> {
        self.before(format!("delete {path}"))?;
        if let (Some(m), Some(b)) = (md5, self.files.get(path))
            && md5_of(b) != m
        {
            return Err(Error::Md5Differs);
        }
        if !permanently && (self.files.contains_key(path) || self.dirs.contains(path)) {
            self.trashed.push(path.into());
        }
        let inside = |p: &String| p == path || p.starts_with(&format!("{path}/"));
        self.files.retain(|p, _| !inside(p));
        self.dirs.retain(|p| !inside(p));
        self.dates.retain(|p, _| !inside(p));
        self.after(Ok(()))
    }
    fn download(&mut self, path: &str, to: &mut dyn std::io::Write) -> Result<u64, Error> {
        self.before(format!("download {path}"))?;
        let bytes = self.files.get(path).cloned().ok_or(Error::NotFound)?;
        to.write_all(&bytes).map_err(Error::Local)?;
        Ok(bytes.len() as u64)
    }

    fn move_to(&mut self, from: &str, to: &str, overwrite: bool) -> Result<(), Error> {
        self.before(format!("move {from} {to}"))?;
        let parent = to.rfind('/').map_or("", |i| &to[..i]);
        if !self.has_folder(parent) {
            return Err(Error::ParentMissing);
        }
        if self.dirs.contains(to) || (!overwrite && self.files.contains_key(to)) {
            return Err(Error::AlreadyExists);
        }
        if self.hidden(from) {
            return Err(Error::NotFound); // not shown yet: not movable either
        }
        // What lands at `to` replaces whatever was there (`overwrite=true`,
        // yandex-disk-api.md), a fresh upload still finalising too: the moved
        // file is shown at once. R1's lag is a fresh upload's, not a move's.
        self.finalising.retain(|p, _| p != to && !p.starts_with(&format!("{to}/")));
        if let Some(b) = self.files.remove(from) {
            self.finalising.remove(from);
            self.files.insert(to.into(), b);
            match self.dates.remove(from) {
                Some(d) => drop(self.dates.insert(to.into(), d)),
                None => drop(self.dates.remove(to)),
            }
            return self.after(Ok(()));
        }
        if !self.dirs.remove(from) {
            return Err(Error::NotFound);
        }
        let below = |p: &String| p.starts_with(&format!("{from}/"));
        let re = |p: &String| format!("{to}{}", &p[from.len()..]);
        let dirs: Vec<String> = self.dirs.iter().filter(|p| below(p)).cloned().collect();
        for d in dirs {
            self.dirs.remove(&d);
            self.dirs.insert(re(&d));
        }
        self.dirs.insert(to.into());
        let files: Vec<String> = self.files.keys().filter(|p| below(p)).cloned().collect();
        for p in files {
            let b = self.files.remove(&p).expect("listed");
            if let Some(d) = self.dates.remove(&p) {
                self.dates.insert(re(&p), d);
            }
            self.files.insert(re(&p), b);
        }
        self.after(Ok(()))
    }
    fn stat(&mut self, path: &str) -> Result<Option<RemoteFile>, Error> {
        self.before(format!("stat {path}"))?;
        let hidden = self.hidden(path);
        let slow = self.slow_hash.get_mut(path).filter(|n| **n > 0).map(|n| *n -= 1).is_some();
        let f = match self.files.get(path) {
            Some(b) if slow => Some(RemoteFile { size: b.len() as u64, ..RemoteFile::default() }),
            // Missing at first, then shown without its hashes.
            Some(_) if hidden && self.finalising.get(path).is_some_and(|n| *n > 0) => None,
            Some(b) if hidden => Some(RemoteFile { size: b.len() as u64, ..RemoteFile::default() }),
            Some(b) => Some(RemoteFile { dates: self.dates.get(path).copied().unwrap_or_default(), ..file_of(b) }),
            None => None,
        };
        self.after(Ok(f))
    }
    fn exists(&mut self, path: &str) -> Result<bool, Error> {
        self.before(format!("exists {path}"))?;
        let there = self.files.contains_key(path) || self.dirs.contains(path);
        self.after(Ok(there))
    }
    fn list(&mut self, path: &str) -> Result<Option<Vec<Item>>, Error> {
        self.before(format!("list {path}"))?;
        if !self.dirs.contains(path) {
            return self.after(Ok(None));
        }
        let prefix = format!("{path}/");
        let child = |p: &String| p.strip_prefix(&prefix).filter(|rest| !rest.contains('/')).map(str::to_string);
        let none = RemoteFile::default();
        let mut items: Vec<Item> = self.dirs.iter().filter_map(child).map(|name| Item { name, dir: true, file: none.clone() }).collect();
        for (p, b) in &self.files {
            if let Some(name) = child(p) {
                // Not hashed yet (`slow_hash`): listed without hashes too.
                let file = if self.slow_hash.get(p).is_some_and(|n| *n > 0) {
                    RemoteFile { size: b.len() as u64, ..RemoteFile::default() }
                } else {
                    RemoteFile { dates: self.dates.get(p).copied().unwrap_or_default(), ..file_of(b) }
                };
                items.push(Item { name, dir: false, file });
            }
        }
        self.after(Ok(Some(items)))
    }
    fn set_date(&mut self, path: &str, mtime_ns: i64, uploaded: Option<u64>) -> Result<(), Error> {
        self.before(format!("date {path}"))?;
        if !self.files.contains_key(path) {
            return Err(Error::NotFound);
        }
        let d = self.dates.entry(path.to_string()).or_default();
        d.mtime_ns = Some(mtime_ns);
        if let Some(u) = uploaded {
            d.uploaded = u;
        }
        self.after(Ok(()))
    }
    fn disk_info(&mut self) -> Result<DiskInfo, Error> {
        self.before("disk".into())?;
        let info = self.info.clone().unwrap_or(DiskInfo { login: String::new(), total: 1 << 40, used: 0, free: 1 << 40, max_file_size: 0 });
        self.after(Ok(info))
    }
}
