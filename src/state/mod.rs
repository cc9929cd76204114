//! The state: what ysync put on the Disk, so the next cycle knows what
//! changed. This file is the model, and the one way it changes
//! ([`State::apply`] of a [`Change`], the journal's line). Where it lives on
//! disk is `store`, its file format `snapshot`, and the idle question `seal`.

mod seal;
mod snapshot;
mod store;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

pub use crate::digest::Hex;
use crate::scan::Stat;
pub use seal::{FilesPrint, PrintBuilder, Prints, in_folders, split, unchanged};
#[cfg(test)]
pub use seal::{prints_of, seal_of};
pub use store::{Error, Store, peek};

/// The modification time of a record whose date the Disk does not keep
/// yet: no file has it, so the next scan sees the file changed, hashes it,
/// finds the content recorded and sets the date (`Executor::date`).
pub const UNDATED: i64 = i64::MIN;

/// The version of the state files; another one is refused, not rewritten.
pub const VERSION: u32 = 2;

/// What was uploaded for one file. Stored as a JSON array
/// `[size, mtime_ns, ctime_ns, inode, "sha256", "md5"]`: a state file holds
/// one per tracked file, and the array is a third smaller and faster to read
/// than an object with named fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "RecArray", into = "RecArray")]
pub struct FileRec {
    /// The scan's stat when the content below was sent or checked.
    pub stat: Stat,
    pub sha256: Hex<32>,
    /// The md5 an older ysync uploaded. [`Hex::UNKNOWN`] (written `""`) in
    /// every record made now: ysync hashes an upload with sha256 only (md5
    /// too would cost a third more CPU per byte), and a deletion takes the
    /// md5 from the Disk. Not an `Option`: a state holds one per file, and
    /// the tag would make every record 8 bytes larger.
    pub md5: Hex<16>,
}

#[derive(Serialize, Deserialize)]
struct RecArray(u64, i64, i64, u64, Hex<32>, Hex<16>);

impl From<RecArray> for FileRec {
    fn from(RecArray(size, mtime_ns, ctime_ns, ino, sha256, md5): RecArray) -> FileRec {
        FileRec { stat: Stat { size, mtime_ns, ctime_ns, ino }, sha256, md5 }
    }
}

impl From<FileRec> for RecArray {
    fn from(r: FileRec) -> RecArray {
        RecArray(r.stat.size, r.stat.mtime_ns, r.stat.ctime_ns, r.stat.ino, r.sha256, r.md5)
    }
}

impl FileRec {
    /// The record of content ysync sent (or found on the Disk) for a file
    /// with this stat.
    pub fn sent(stat: Stat, sha256: Hex<32>) -> FileRec {
        FileRec { stat, sha256, md5: Hex::UNKNOWN }
    }

    /// Is a file with these hashes (as the Disk reports them) the recorded
    /// content? By sha256, or by the md5 that records of older versions hold.
    pub fn is(&self, sha256: Option<Hex<32>>, md5: Option<Hex<16>>) -> bool {
        sha256 == Some(self.sha256) || (!self.md5.is_unknown() && md5 == Some(self.md5))
    }
}

/// The content an upload was about to land: its sha256, or, in states from
/// before ysync hashed uploads with sha256 only, its md5. Written as hex,
/// told apart by length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Sha256(Hex<32>),
    Md5(Hex<16>),
}

impl Mark {
    /// Is a file with these hashes (as the Disk reports them) this content?
    pub fn matches(&self, sha256: Option<Hex<32>>, md5: Option<Hex<16>>) -> bool {
        match self {
            Mark::Sha256(h) => sha256 == Some(*h),
            Mark::Md5(h) => md5 == Some(*h),
        }
    }
}

impl Serialize for Mark {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Mark::Sha256(h) => h.serialize(s),
            Mark::Md5(h) => h.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Mark {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Mark, D::Error> {
        let s = String::deserialize(d)?;
        let mark = match s.len() {
            64 => Hex::known(&s).map(Mark::Sha256),
            32 => Hex::known(&s).map(Mark::Md5),
            _ => None,
        };
        mark.ok_or_else(|| serde::de::Error::custom(format!("`{s}` is neither a sha256 nor an md5")))
    }
}

/// An upload that started but was not confirmed: the Disk may or may not
/// hold this content at this path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub size: u64,
    /// The content about to land, noted just before the body's last bytes
    /// go out. `None` until then (the key is `md5` for older states).
    #[serde(rename = "md5", default, skip_serializing_if = "Option::is_none", deserialize_with = "nonempty")]
    pub mark: Option<Mark>,
    /// The Disk's operation for the upload: until it ends, the file may
    /// still land (a killed client's last bytes can arrive after its death).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "nonempty")]
    pub op: Option<String>,
    /// The temporary name it went to (throttled types), relative.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "nonempty")]
    pub temp: Option<String>,
    /// When the link was issued (seconds since the Unix epoch; 0 in records
    /// written before ysync noted it). A link lives 30 minutes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub at: u64,
    /// The marks of earlier attempts at this path that may have landed: the
    /// Disk holds one of them, or this attempt's, or what was there before.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier: Vec<Mark>,
}

/// `""` (which no version writes, but a hand-edited state may hold) is absent.
fn nonempty<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    use serde::de::IntoDeserializer;
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => T::deserialize(s.into_deserializer()).map(Some),
    }
}

/// The same map with its nodes full. A map built an entry at a time has
/// them about two-thirds full (a folder of 100 000 records: 22 MB, not 13),
/// and one collected at once first stands as a list beside a sort's room;
/// `append` onto a map of one entry rebuilds it from both in order, letting
/// each old node go as it is read.
pub fn full_nodes<K: Ord, V>(mut m: BTreeMap<K, V>) -> BTreeMap<K, V> {
    let mut out = BTreeMap::new();
    if let Some((k, v)) = m.pop_first() {
        out.insert(k, v);
        out.append(&mut m);
    }
    out
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Pending {
    /// A link not used within this time dies (the Disk's docs: 30
    /// minutes), so an upload announced longer ago cannot still land;
    /// five minutes more for clocks and slow answers.
    pub const LINK_LIFE: u64 = 35 * 60;

    /// An upload about to start, its link just issued.
    pub fn new(size: u64, op: Option<String>, temp: Option<String>, at: u64) -> Pending {
        Pending { size, mark: None, op, temp, at, earlier: Vec::new() }
    }

    /// Is a file with these hashes (as the Disk reports them) the content
    /// of one of these attempts?
    pub fn is_ours(&self, sha256: Option<Hex<32>>, md5: Option<Hex<16>>) -> bool {
        self.mark.iter().chain(&self.earlier).any(|m| m.matches(sha256, md5))
    }

    /// The record of a new attempt at the same path: what this one may have
    /// left on the Disk is remembered (a few at most).
    pub fn next_attempt(&self, op: Option<String>, at: u64) -> Pending {
        let mut earlier = self.earlier.clone();
        if let Some(m) = self.mark
            && !earlier.contains(&m)
        {
            earlier.push(m);
        }
        let drop = earlier.len().saturating_sub(4);
        earlier.drain(..drop);
        Pending { mark: None, op, at, earlier, ..self.clone() }
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
        self.mark.is_some() && now.saturating_sub(self.at) < Pending::LINK_LIFE
    }

    /// May an earlier attempt have left this file on the Disk whole?
    pub fn may_have_landed(&self) -> bool {
        self.mark.is_some() || !self.earlier.is_empty()
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
    /// A folder moved: every record at or below `from` (files, folders,
    /// folders of unknown fate) now stands at the same place below `to`.
    /// Only inside a move's `after`, so that the move of a folder of
    /// 100 000 files is not 100 000 records held thrice; the journal gets
    /// what it stands for ([`State::take_rekeyed`]), never this line.
    /// `files`: the records it moves, as the plan counted them (for the log).
    Rekey {
        from: String,
        to: String,
        #[serde(default)]
        files: u64,
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
    /// The paths the walk excluded at or below which something is tracked
    /// ([`State::excluded`]).
    Excluded(BTreeSet<String>),
    /// A full listing was compared with the state at this time.
    Reconciled(u64),
    /// Old versions in `backup_dir` were expired at this time, leaving
    /// `kept` dated folders.
    Expired {
        at: u64,
        kept: u64,
    },
    /// What an older version's probe found of the Disk's `md5=` guard; read
    /// from old journals and ignored (deletions no longer rest on the guard).
    #[serde(rename = "md5_guard")]
    Md5Guard(bool),
    /// The state up to here has this seal (see [`State::seal`]).
    Seal(Hex<16>),
}

impl Change {
    /// Is this an intent, to be durable before its request goes out?
    pub fn is_intent(&self) -> bool {
        matches!(self, Change::Pending { .. } | Change::Mkdir { .. } | Change::Moving(Some(_)))
    }
}

/// The last cycle, for `ysync status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastCycle {
    /// Seconds since the Unix epoch when it ended.
    pub ended: u64,
    /// How it ended, in words (`Outcome`'s text).
    pub result: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub failed: BTreeMap<String, String>,
    /// When it started (0 in states written before ysync 0.2).
    #[serde(default)]
    pub started: u64,
    /// How it ended, in one word: `ok`, `failed`, `safety-stop`,
    /// `token-rejected`, `state-error` (empty before 0.2).
    #[serde(default)]
    pub outcome: String,
    /// The exit status it stands for.
    #[serde(default)]
    pub exit: u8,
    /// Files uploaded, and their bytes; moves; deletions.
    #[serde(default)]
    pub uploaded: u64,
    #[serde(default)]
    pub bytes: u64,
    #[serde(default)]
    pub moved: u64,
    #[serde(default)]
    pub deleted: u64,
    /// Old versions kept in `backup_dir`.
    #[serde(default)]
    pub versioned: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    /// The target this state describes; a different one starts afresh.
    pub remote_dir: String,
    /// Tracked folders, relative to `local_dir`; `""` is `remote_dir` itself.
    pub dirs: BTreeSet<String>,
    #[serde(default, deserialize_with = "snapshot::sorted_map")]
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
    /// Paths the walk excludes at or below which the state tracks something
    /// (synced before the exclusion): recorded as excluded, as Syncthing
    /// records an ignored file. Their records stay (nothing is deleted on
    /// the Disk) and are left out of the state's prints, as the walk leaves
    /// them out of its own ([`State::hides`]), so they never turn the idle
    /// fast path off. The plan keeps this set up to date.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub excluded: BTreeSet<String>,
    /// When a full listing was last compared with the state (seconds since
    /// the Unix epoch; 0: never).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reconciled: u64,
    /// When the versions in `backup_dir` were last expired (0: never), and
    /// how many dated folders were kept then.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub versions_expired: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub versions_kept: u64,
    /// In a partial view of the state ([`Store::view`]): the tracked files
    /// that are not in `files`, because the scan agrees with them. 0 when
    /// `files` holds them all.
    #[serde(skip)]
    pub elsewhere: u64,
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
            excluded: BTreeSet::new(),
            reconciled: 0,
            versions_expired: 0,
            versions_kept: 0,
            elsewhere: 0,
        }
    }

    /// The one way the state changes; replaying a change twice is harmless.
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
            Change::Rekey { from, to, .. } => {
                // The files' records are put back at once, in a map of full
                // nodes, as `Put`s would put them one by one.
                let mut files = BTreeMap::new();
                for c in self.take_rekeyed(from, to) {
                    match c {
                        Change::Put { path, rec } => {
                            self.pending.remove(&path);
                            files.insert(path, rec);
                        }
                        c => self.apply(&c),
                    }
                }
                let mut files = full_nodes(files);
                self.files.append(&mut files);
            }
            Change::Pending { path, pending } => {
                self.pending.insert(path.clone(), pending.clone());
            }
            Change::Moving(m) => self.moving = m.clone(),
            Change::Last(l) => self.last = Some(l.clone()),
            Change::Mounts(m) => self.mounts = m.clone(),
            Change::Excluded(e) => self.excluded = e.clone(),
            Change::Reconciled(t) => self.reconciled = *t,
            Change::Expired { at, kept } => (self.versions_expired, self.versions_kept) = (*at, *kept),
            Change::Md5Guard(_) | Change::Seal(_) => {}
        }
    }

    /// Is nothing of unknown fate on the Disk (no upload, new folder or move
    /// unconfirmed), and has `remote_dir` been seen? Only then can a scan be
    /// compared with the state alone: the one rule of both idle fast paths.
    pub fn is_settled(&self) -> bool {
        self.pending.is_empty() && self.mkdirs.is_empty() && self.moving.is_none() && self.dirs.contains("")
    }

    /// Does this state track nothing: no file, no upload, folder or move in
    /// flight, no folder but `remote_dir`? (A first run, a lost state.)
    pub fn is_empty(&self) -> bool {
        self.tracked() == 0
            && self.pending.is_empty()
            && self.mkdirs.is_empty()
            && self.moving.is_none()
            && self.dirs.iter().all(|d| d.is_empty())
    }

    /// The number of files the state tracks, in `files` or elsewhere.
    pub fn tracked(&self) -> u64 {
        self.files.len() as u64 + self.elsewhere
    }

    /// The folders of what is unsettled: an upload's, a folder's being made
    /// (and its parent's), a move's from and to (and their parents'; for a
    /// folder, the folders below too). Whatever the prints say, the plan
    /// must see their records.
    pub fn unsettled_folders(&self) -> Vec<String> {
        let mut out: Vec<String> = self.pending.keys().map(|p| split(p).0.to_string()).collect();
        for m in &self.mkdirs {
            out.extend([m.clone(), split(m).0.to_string()]);
        }
        if let Some(m) = &self.moving {
            for end in [&m.from, &m.to] {
                out.extend([end.clone(), split(end).0.to_string()]);
                if m.dir {
                    out.extend(self.dirs.iter().filter(|d| crate::scan::is_under(d, end)).cloned());
                }
            }
        }
        out
    }

    /// The part of this state a plan needs when only the `changed` folders
    /// (sorted) differ from the scan: their records and unsettled uploads,
    /// and everything else but records, which is small. The other records
    /// are counted in `elsewhere`.
    pub fn part(&self, changed: &[String]) -> State {
        self.part_where(changed, |_, _| true)
    }

    /// [`State::part`] beside the part of the scan it is planned with:
    /// without the records that the scan shows as they are (same stat,
    /// nothing unsettled), which no plan acts on; [`crate::scan::Scan::drop_same`]
    /// drops their entries. Counted in `elsewhere`.
    pub fn part_beside(&self, changed: &[String], scan: &crate::scan::Scan) -> State {
        self.part_where(changed, |p, r| !scan.shows(p, &r.stat) || self.pending.contains_key(p))
    }

    /// The part with the records of `changed` that `keep` keeps (only
    /// those are copied: a folder of 100 000 files has one changed).
    fn part_where(&self, changed: &[String], keep: impl Fn(&str, &FileRec) -> bool) -> State {
        let in_changed = |p: &str| in_folders(changed, p);
        let mut files = BTreeMap::new();
        for (p, r) in self.files.iter().filter(|(p, r)| in_changed(p) && keep(p, r)) {
            files.insert(p.clone(), r.clone());
        }
        let files = full_nodes(files);
        let elsewhere = self.tracked() - files.len() as u64;
        State {
            version: self.version,
            remote_dir: self.remote_dir.clone(),
            dirs: self.dirs.clone(),
            files,
            pending: self.pending.iter().filter(|(p, _)| in_changed(p)).map(|(p, u)| (p.clone(), u.clone())).collect(),
            mkdirs: self.mkdirs.clone(),
            moving: self.moving.clone(),
            last: self.last.clone(),
            mounts: self.mounts.clone(),
            excluded: self.excluded.clone(),
            reconciled: self.reconciled,
            versions_expired: self.versions_expired,
            versions_kept: self.versions_kept,
            elsewhere,
        }
    }

    /// Does the state still track `path` as a file or a folder (a move may
    /// have taken it away earlier in the cycle)?
    pub fn tracks(&self, path: &str, dir: bool) -> bool {
        match dir {
            true => self.dirs.contains(path) || self.mkdirs.contains(path),
            false => self.files.contains_key(path) || self.pending.contains_key(path),
        }
    }

    /// The records at and below `path` (a file's, or a folder's files).
    pub fn files_at(&self, path: &str) -> impl Iterator<Item = (&String, &FileRec)> {
        let prefix = format!("{path}/");
        let below: Vec<(&String, &FileRec)> = self.files.range(prefix.clone()..).take_while(|(p, _)| p.starts_with(&prefix)).collect();
        self.files.get_key_value(path).into_iter().chain(below)
    }

    /// ysync's own temporary upload names at or below the folder `dir`
    /// (`""`: all): that of every file tracked or pending there
    /// ([`crate::media::temp_name`]), and those pending uploads recorded. A
    /// remote name is ysync's temporary only if it is one of these; any
    /// other `.ysync-…` name is someone else's file.
    pub fn temp_names(&self, dir: &str) -> BTreeSet<String> {
        let tracked: Box<dyn Iterator<Item = &String>> =
            if dir.is_empty() { Box::new(self.files.keys()) } else { Box::new(self.files_at(dir).map(|(p, _)| p)) };
        let pending: Vec<(&String, &Pending)> =
            self.pending.iter().filter(|(p, _)| dir.is_empty() || crate::scan::is_under(p, dir)).collect();
        let recorded = pending.iter().filter_map(|(_, u)| u.temp.clone());
        tracked.chain(pending.iter().map(|(p, _)| *p)).map(|p| crate::media::temp_name(p)).chain(recorded).collect()
    }

    /// Takes out every record at or below `from` and gives back the
    /// changes that put it below `to` (`Change::Rekey`), in the order a
    /// journal can be cut after any of them: the folders, the folders of
    /// unknown fate (strictly below), the files, then `Forget` of `from`.
    /// Cut short, the move is still in doubt and its records still stand
    /// under `from`, so finishing it again finds them. The records are
    /// moved, not copied.
    pub fn take_rekeyed(&mut self, from: &str, to: &str) -> impl Iterator<Item = Change> + use<> {
        // At or below `from`: `from` itself, then `from/…`, which sort
        // before `from0` ('0' follows '/'); siblings such as `from b` sort
        // in between.
        let at_or_under = |k: &String| k == from || crate::scan::is_under(k, from);
        let mut files = self.files.split_off(&format!("{from}/"));
        self.files.append(&mut files.split_off(&format!("{from}0")));
        if let Some(rec) = self.files.remove(from) {
            files.insert(from.to_string(), rec);
        }
        let range = || from.to_string()..format!("{from}0");
        let dirs: Vec<String> = self.dirs.extract_if(range(), at_or_under).collect();
        let mkdirs: Vec<String> = self.mkdirs.extract_if(range(), |k| crate::scan::is_under(k, from)).collect();
        self.mkdirs.remove(from);
        let (cut, to) = (from.len(), to.to_string());
        let re = move |k: String| format!("{to}{}", &k[cut..]);
        let (re2, re3) = (re.clone(), re.clone());
        dirs.into_iter()
            .map(move |k| Change::Dir { path: re(k) })
            .chain(mkdirs.into_iter().map(move |k| Change::Mkdir { path: re2(k) }))
            .chain(files.into_iter().map(move |(k, rec)| Change::Put { path: re3(k), rec }))
            .chain(std::iter::once(Change::Forget { path: from.to_string() }))
    }

    /// Forgets `path` and, if it was a folder, everything below it.
    fn forget(&mut self, path: &str) {
        let gone = |p: &String| p == path || crate::scan::is_under(p, path);
        self.files.retain(|p, _| !gone(p));
        self.dirs.retain(|p| !gone(p));
        self.pending.retain(|p, _| !gone(p));
        self.mkdirs.retain(|p| !gone(p));
        self.excluded.retain(|p| !gone(p));
    }

    /// Is `path` at or below a path recorded as excluded ([`State::excluded`])?
    /// Such records are left out of the state's prints.
    pub fn hides(&self, path: &str) -> bool {
        crate::print::at_or_below_any(&self.excluded, path)
    }
}
