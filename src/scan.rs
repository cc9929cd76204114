//! Walks `local_dir` with `std::fs`, one folder at a time: into a sorted
//! list of entries ([`scan`]), or into a print per folder, handing each
//! folder's files to the caller and keeping none ([`walk`]); [`list`] reads
//! a few folders' files again.
//!
//! Edge cases, all deliberate:
//! - Symlinks are never followed (a link to a folder outside the tree, a
//!   dangling link or a loop is skipped with one warning).
//! - Only regular files and folders are kept. FIFOs, sockets and devices are
//!   skipped by their type, without being opened, so a FIFO cannot hang a scan.
//! - Names that are not UTF-8, hold control characters (tab, newline and
//!   carriage return included) or are longer than the Disk allows (255
//!   characters) are skipped. Their remote copies, if an older ysync made
//!   any, are kept (such a path is in `unreadable`).
//! - A folder or file that cannot be read is reported in `unreadable`: the
//!   plan keeps everything tracked under it instead of deleting it remotely.
//! - Excluded paths are reported in `excluded` and kept the same way:
//!   excluding something never deletes it. They are not a reason to look
//!   closer at an idle cycle (the seal covers what the state tracks).
//! - A folder met a second time (a bind mount, perhaps of its own ancestor,
//!   which would otherwise nest until paths grow too long) is skipped with a
//!   warning and kept.
//! - Folders are opened a component at a time below `local_dir`'s own
//!   descriptor, never through a link: a folder swapped for a link while
//!   the walk runs is skipped, not followed. Names are `stat`ed relative to
//!   their open folder.
//! - ysync's own temporary names (a restore's partial file) are left out.
//! - No file is opened or hashed here; [`open`] is how the executor, the
//!   guard and `verify` open what the scan saw.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use std::collections::HashSet;

pub use crate::config::Exclude;
use crate::fsutil::{Dir, Kind as FsKind, Meta};
use crate::print::{PrintBuilder, Prints};
pub use crate::print::{Stat, is_under};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    File,
    Dir,
}

/// What the scan saw at one path (folders have an all-zero `stat`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative to `local_dir`, `/`-separated, never empty.
    pub path: String,
    pub kind: Kind,
    pub stat: Stat,
    /// The file's device: with `stat.ino`, what [`open`] must find again
    /// before a byte is read. Not part of the state.
    pub dev: u64,
}

impl Entry {
    pub fn dir(path: &str) -> Entry {
        Entry { path: path.into(), kind: Kind::Dir, stat: Stat::default(), dev: 0 }
    }

    pub fn size(&self) -> u64 {
        self.stat.size
    }
}

/// Something the scan did not take, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub path: PathBuf,
    pub reason: String,
}

#[derive(Debug, Default, Clone)]
pub struct Scan {
    /// Sorted by `path`, so parents come before their children.
    pub entries: Vec<Entry>,
    pub skipped: Vec<Skipped>,
    /// Relative paths that could not be read (or named, or entered), sorted:
    /// nothing at or below them is deleted remotely or uploaded.
    pub unreadable: Vec<String>,
    /// Relative paths the `exclude` patterns (or `one_file_system`) left
    /// out, sorted: kept on the Disk like unreadable ones.
    pub excluded: Vec<String>,
    /// Folders on another filesystem than their parent (mount points),
    /// sorted. The plan remembers them, to notice one being unmounted.
    pub mounts: Vec<String>,
    /// Files the scan saw but left out of `entries`: those of folders whose
    /// print matched the state's, or of another part of a large change.
    pub unlisted: u64,
    /// The folders whose files `entries` holds (sorted); `None`: all.
    pub listed: Option<Vec<String>>,
}

impl Scan {
    /// Is `path` at or below something the scan could not read or excluded?
    /// Such paths keep their state and their remote copies. A lookup per
    /// ancestor in the sorted lists, not a walk of them.
    pub fn keeps(&self, path: &str) -> bool {
        let listed = |p: &str| {
            let has = |v: &[String]| v.binary_search_by(|k| k.as_str().cmp(p)).is_ok();
            has(&self.unreadable) || has(&self.excluded)
        };
        // `""`: local_dir itself could not be read again after the walk.
        listed(path) || listed("") || path.match_indices('/').any(|(i, _)| listed(&path[..i]))
    }

    /// What a cycle's scan holds when only the `changed` folders (sorted)
    /// differ from the state: every folder, and the files of those; the
    /// rest are counted in `unlisted`. (A cycle builds the same from a
    /// [`walk`] and a [`list`]; this is its model, for tests.)
    #[cfg(test)]
    pub fn part(&self, changed: &[String]) -> Scan {
        let in_changed = |p: &str| crate::print::in_folders(changed, p);
        let (entries, rest): (Vec<Entry>, Vec<Entry>) =
            self.entries.iter().cloned().partition(|e| e.kind == Kind::Dir || in_changed(&e.path));
        Scan { entries, unlisted: self.unlisted + rest.len() as u64, listed: Some(changed.to_vec()), ..self.clone() }
    }

    /// Does the scan hold the file `path` with this stat?
    pub fn shows(&self, path: &str, stat: &Stat) -> bool {
        self.get(path).is_some_and(|e| e.kind == Kind::File && e.stat == *stat)
    }

    /// The entry at `path`, if the scan holds one (a binary search: no
    /// index beside 100 000 entries).
    pub fn get(&self, path: &str) -> Option<&Entry> {
        self.entries.binary_search_by(|e| e.path.as_str().cmp(path)).ok().map(|i| &self.entries[i])
    }

    /// Are the files of folder `dir` in `entries`?
    pub fn lists(&self, dir: &str) -> bool {
        self.listed.as_ref().is_none_or(|l| l.binary_search_by(|d| d.as_str().cmp(dir)).is_ok())
    }

    /// Is anything at or below `dir` unreadable or excluded?
    pub fn keeps_under(&self, dir: &str) -> bool {
        self.unreadable.iter().chain(&self.excluded).any(|k| is_under(k, dir))
    }
}

/// Why `local_dir` itself could not be scanned. Never a reason to delete.
#[derive(Debug)]
pub enum RootError {
    Missing,
    NotADir,
    Unreadable(io::Error),
}

impl std::fmt::Display for RootError {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            RootError::Missing => write!(f, "does not exist (unmounted?)"),
            RootError::NotADir => write!(f, "is not a folder"),
            RootError::Unreadable(e) => write!(f, "cannot be read: {e}"),
        }
    }
}

/// Longest name the Disk accepts, in characters.
const MAX_NAME_CHARS: usize = 255;

/// What a walk keeps of the tree: every folder, one print per folder, and
/// the counts. Each folder's files are handed to the caller as they are
/// read and then dropped, so a walk of a million files holds one folder at
/// a time (and the list of folders).
#[derive(Debug, Default)]
pub struct Walk {
    /// Every folder entered, sorted (not `""`).
    pub dirs: Vec<String>,
    /// Each folder's print (`""` included), to compare with the state's.
    pub prints: Prints,
    /// The files seen.
    pub files: u64,
    /// The files seen in each folder that has any.
    pub counts: std::collections::BTreeMap<String, u64>,
    pub skipped: Vec<Skipped>,
    pub unreadable: Vec<String>,
    pub excluded: Vec<String>,
    pub mounts: Vec<String>,
}

/// With `one_file_system`, folders on another filesystem than `root` are
/// not entered: they are kept, like excluded ones.
pub fn scan(root: &Path, exclude: &Exclude, one_file_system: bool) -> Result<Scan, RootError> {
    let mut entries = Vec::new();
    let w = walk(root, exclude, one_file_system, &mut |files| entries.extend(files))?;
    entries.extend(w.dirs.iter().map(|d| Entry::dir(d)));
    entries.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    Ok(Scan { entries, skipped: w.skipped, unreadable: w.unreadable, excluded: w.excluded, mounts: w.mounts, unlisted: 0, listed: None })
}

/// Walks `root` one folder at a time (depth first), handing each folder's
/// files (sorted by name) to `files` and keeping only what [`Walk`] holds.
/// A folder's sub-folders wait as paths, not as open handles: a folder
/// with 10 000 sub-folders does not need 10 000 descriptors; the open ones
/// are those from `root` down to the folder being read.
pub fn walk(root: &Path, exclude: &Exclude, one_file_system: bool, files: &mut dyn FnMut(Vec<Entry>)) -> Result<Walk, RootError> {
    let top = open_root(root)?;
    let (root_dev, root_ino) = top.meta().map(|m| (m.dev, m.ino)).map_err(RootError::Unreadable)?;
    // Read the root before anything else: an unreadable root is a root error,
    // not an empty tree.
    top.names().map_err(RootError::Unreadable)?;
    let mut r = Reader::new(root, top, exclude, one_file_system);
    r.folders.insert((root_dev, root_ino));
    let mut prints = PrintBuilder::default();
    prints.folder("");
    let mut pending = vec![(String::new(), root_dev)];
    while let Some((prefix, dev)) = pending.pop() {
        let Some(Folder { files: found, dirs }) = r.read(&prefix, dev, false) else { continue };
        for e in &found {
            prints.file(&e.path, &e.stat);
        }
        r.out.files += found.len() as u64;
        if !found.is_empty() {
            r.out.counts.insert(prefix.clone(), found.len() as u64);
        }
        files(found);
        // In name order: a print is of the names in order.
        for (d, _) in &dirs {
            prints.dir(d);
            r.out.dirs.push(d.clone());
        }
        pending.extend(dirs.into_iter().rev());
    }
    let mut out = r.out;
    out.prints = prints.finish();
    out.dirs.sort_unstable();
    out.unreadable.sort_unstable();
    out.excluded.sort_unstable();
    out.mounts.sort_unstable();
    Ok(out)
}

/// `local_dir` itself, opened by its path (a link there is the admin's).
pub fn open_root(root: &Path) -> Result<Dir, RootError> {
    match Dir::open(root) {
        Ok(d) => Ok(d),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(RootError::Missing),
        Err(e) if e.kind() == io::ErrorKind::NotADirectory => Err(RootError::NotADir),
        Err(e) => Err(RootError::Unreadable(e)),
    }
}

/// The files of these folders (sorted by path), read again after a walk
/// found their prints changed, with what among them could not be read or
/// was excluded. Their sub-folders are the walk's (`dirs`, sorted): a name
/// that is a folder there is not taken as a file. A folder that cannot be
/// read now is `unreadable`: everything in it is kept this cycle.
pub fn list(root: &Path, folders: &[String], dirs: &[String], exclude: &Exclude, one_file_system: bool) -> Scan {
    let unreadable = |e: RootError| {
        let skipped = vec![Skipped { path: root.to_path_buf(), reason: format!("folder cannot be read: {e}") }];
        Scan { skipped, unreadable: vec![String::new()], listed: Some(folders.to_vec()), ..Scan::default() }
    };
    let top = match open_root(root) {
        Ok(d) => d,
        Err(e) => return unreadable(e),
    };
    let mut r = Reader::new(root, top, exclude, one_file_system);
    let mut entries = Vec::new();
    for f in folders {
        if let Some(mut found) = r.read(f, 0, true) {
            found.files.retain(|e| dirs.binary_search(&e.path).is_err());
            // Not copied: one folder may hold 100 000 files.
            match entries.is_empty() {
                true => entries = found.files,
                false => entries.append(&mut found.files),
            }
        }
    }
    entries.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    let Walk { skipped, unreadable, excluded, .. } = r.out;
    Scan { entries, skipped, unreadable, excluded, mounts: Vec::new(), unlisted: 0, listed: Some(folders.to_vec()) }
}

/// What [`open`] found where the scan saw a file.
#[derive(Debug)]
pub enum Opened {
    /// The regular file the scan saw, open to read.
    File(File),
    /// Nothing there any more (or a folder on the way is gone).
    Gone,
    /// Something else is there now: why, for the log.
    Changed(&'static str),
}

/// Opens the file `e` that the scan saw below `root` (`local_dir`, open):
/// its folders a component at a time and the file itself without following
/// a link, without blocking, and only when what opened is still the regular
/// file the scan saw, with its device and inode. A link, a FIFO, a device
/// or another file put there since is never read: it is looked at again by
/// the next scan. Other errors (permissions) are the caller's.
pub fn open(root: &Dir, e: &Entry) -> io::Result<Opened> {
    use crate::fsutil::sys::is_link_error;
    let (folder, name) = e.path.rsplit_once('/').unwrap_or(("", &e.path));
    let found = root.beneath(folder).and_then(|d| d.read(name));
    let file = match found {
        Ok(f) => f,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Opened::Gone),
        Err(err) if is_link_error(&err) => return Ok(Opened::Changed("is a symbolic link now (links are not followed)")),
        Err(err) => return Err(err),
    };
    let now = crate::fsutil::meta_of(&file)?;
    Ok(match now.kind() {
        FsKind::File if (now.dev, now.ino) == (e.dev, e.stat.ino) => Opened::File(file),
        FsKind::File => Opened::Changed("is another file now (replaced since the scan)"),
        FsKind::Dir => Opened::Changed("is a folder now"),
        _ => Opened::Changed("is no longer a regular file"),
    })
}

/// One folder's readable content: files sorted by name, sub-folders
/// sorted, each with its device.
struct Folder {
    files: Vec<Entry>,
    dirs: Vec<(String, u64)>,
}

impl Exclude<'_> {
    #[cfg(test)]
    pub const NOTHING: Exclude<'static> = Exclude { globs: &[], markers: &[] };
}

struct Reader<'a> {
    root: &'a Path,
    exclude: &'a Exclude<'a>,
    one_file_system: bool,
    /// Folders entered, by device and inode: one met again is a bind mount.
    folders: HashSet<(u64, u64)>,
    /// The open folders from `root` (first, as `""`) down to the last one
    /// read: each folder is opened in its parent without following a link,
    /// and a depth-first walk mostly reads a child or a sibling next.
    chain: Vec<(String, Dir)>,
    out: Walk,
}

impl<'a> Reader<'a> {
    fn new(root: &'a Path, top: Dir, exclude: &'a Exclude<'a>, one_file_system: bool) -> Reader<'a> {
        Reader { root, exclude, one_file_system, folders: HashSet::new(), chain: vec![(String::new(), top)], out: Walk::default() }
    }

    /// The folder `prefix`, open: from the deepest open folder above it,
    /// a component at a time, none of them a link.
    fn enter(chain: &mut Vec<(String, Dir)>, prefix: &str) -> io::Result<()> {
        while chain.len() > 1 && chain.last().is_some_and(|(p, _)| p != prefix && !is_under(prefix, p)) {
            chain.pop();
        }
        loop {
            let (at, dir) = chain.last().expect("the root stays");
            if at == prefix {
                return Ok(());
            }
            let rest = if at.is_empty() { prefix } else { &prefix[at.len() + 1..] };
            let name = rest.split('/').next().unwrap_or(rest);
            let sub = dir.sub(name)?;
            let path = if at.is_empty() { name.to_string() } else { format!("{at}/{name}") };
            chain.push((path, sub));
        }
    }

    /// Reads the folder `prefix` (relative; `dev` its device). With
    /// `files_only`, sub-folders are passed over (a second look at a
    /// folder the walk entered). `None` when it cannot be listed.
    fn read(&mut self, prefix: &str, dev: u64, files_only: bool) -> Option<Folder> {
        #[cfg(test)]
        tests::before_read(self.root, prefix);
        let here = if prefix.is_empty() { self.root.to_path_buf() } else { self.root.join(prefix) };
        let listing = Reader::enter(&mut self.chain, prefix).and_then(|()| self.chain.last().expect("entered").1.names());
        let listing = match listing {
            Ok(l) => l,
            Err(e) => {
                self.skip(here, folder_error(&e));
                self.out.unreadable.push(prefix.to_string());
                return None;
            }
        };
        let dir = &self.chain.last().expect("entered").1;
        let mut out = Folder { files: Vec::new(), dirs: Vec::new() };
        for (name, kind) in listing {
            let name = match String::from_utf8(name) {
                Ok(n) => n,
                Err(raw) => {
                    use std::os::unix::ffi::OsStrExt;
                    let path = here.join(std::ffi::OsStr::from_bytes(raw.as_bytes()));
                    self.out.skipped.push(Skipped { path, reason: "name is not valid UTF-8".into() });
                    continue;
                }
            };
            let bad = bad_name(&name);
            let rel = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
            let path = || here.join(&name);
            if let Some(why) = bad {
                self.out.skipped.push(Skipped { path: path(), reason: why });
                self.out.unreadable.push(rel);
                continue;
            }
            // The kind from the folder listing, or from one `stat`.
            let mut meta = None;
            let kind = match kind {
                Some(k) => k,
                None => match dir.stat(&name) {
                    Ok(m) => {
                        meta = Some(m);
                        m.kind()
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue, // vanished
                    Err(e) => {
                        self.out.skipped.push(Skipped { path: path(), reason: format!("cannot read its type: {e}") });
                        self.out.unreadable.push(rel);
                        continue;
                    }
                },
            };
            let is_dir = kind == FsKind::Dir;
            if files_only && is_dir {
                continue;
            }
            if is_own_temporary(&name) {
                log::debug!("{rel} is a temporary file of ysync's own; not mirrored");
                self.out.excluded.push(rel);
                continue;
            }
            if self.exclude.globs.iter().any(|g| g.matches(&rel, is_dir)) {
                log::debug!("excluded {rel}");
                self.out.excluded.push(rel);
                continue;
            }
            if is_dir {
                // One stat per folder: a mount point's device differs,
                // and a folder seen before is a bind mount (maybe of its
                // own ancestor: a loop that would nest without end).
                let (sub_dev, ino) = meta.or_else(|| dir.stat(&name).ok()).map_or((dev, 0), |m| (m.dev, m.ino));
                if sub_dev != dev && self.one_file_system {
                    log::debug!("{rel} is on another filesystem; not entered (one_file_system = yes)");
                    self.out.excluded.push(rel);
                    continue;
                }
                // Opened now, not through a link, and closed again: only a
                // folder that can be read is an entry (its parent's print
                // lists it).
                let sub = match dir.sub(&name) {
                    Ok(sub) => sub,
                    Err(e) => {
                        self.out.skipped.push(Skipped { path: path(), reason: folder_error(&e) });
                        self.out.unreadable.push(rel);
                        continue;
                    }
                };
                // A marker file (`exclude_if_present`): one look per name.
                if let Some(m) = self.exclude.markers.iter().find(|m| sub.has(m).unwrap_or(false)) {
                    log::debug!("{rel} holds {m}; not entered (exclude_if_present)");
                    self.out.excluded.push(rel);
                    continue;
                }
                if ino != 0 && !self.folders.insert((sub_dev, ino)) {
                    let why = "the same folder as one seen before (a bind mount); not entered again".into();
                    self.out.skipped.push(Skipped { path: path(), reason: why });
                    self.out.unreadable.push(rel);
                    continue;
                }
                if sub_dev != dev {
                    self.out.mounts.push(rel.clone());
                }
                out.dirs.push((rel, sub_dev));
            } else if kind == FsKind::File {
                // One stat relative to the open folder (no link followed),
                // like find: no walk of the whole path per file.
                match meta.map_or_else(|| dir.stat(&name), Ok) {
                    Ok(m) if m.is_file() => out.files.push(file_entry(rel, &m)),
                    Ok(_) => self.out.skipped.push(Skipped { path: path(), reason: "changed type during the scan".into() }),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {} // vanished: gone next cycle
                    Err(e) => {
                        self.out.skipped.push(Skipped { path: path(), reason: format!("cannot be read: {e}") });
                        self.out.unreadable.push(rel);
                    }
                }
            } else {
                self.out.skipped.push(Skipped { path: path(), reason: special_kind(kind).into() });
            }
        }
        out.files.sort_unstable_by(|a, b| a.path.cmp(&b.path));
        out.dirs.sort_unstable();
        Some(out)
    }

    fn skip(&mut self, path: PathBuf, reason: String) {
        self.out.skipped.push(Skipped { path, reason });
    }
}

/// Why a folder could not be entered: a link put there since the walk saw
/// a folder (never followed), or an error.
fn folder_error(e: &io::Error) -> String {
    if crate::fsutil::sys::is_link_error(e) {
        "a symbolic link now (links are not followed)".into()
    } else {
        format!("folder cannot be read: {e}")
    }
}

/// ysync's own files in `local_dir`: a restore's partial download
/// (`.ysync-restore-*`), what a restore with `--force` kept aside
/// (`.ysync-replaced-*`) and an older version's write probe
/// (`.ysync-probe-*`). Never mirrored, and kept like excluded names.
pub fn is_own_temporary(name: &str) -> bool {
    name.strip_prefix(crate::media::TEMP_PREFIX)
        .is_some_and(|rest| rest.starts_with("restore-") || rest.starts_with("probe-") || rest.starts_with(crate::media::ASIDE_PREFIX))
}

pub fn file_entry(path: String, m: &Meta) -> Entry {
    let stat = Stat { size: m.size, mtime_ns: m.mtime_ns, ctime_ns: m.ctime_ns, ino: m.ino };
    Entry { path, kind: Kind::File, stat, dev: m.dev }
}

fn bad_name(name: &str) -> Option<String> {
    // Tab, newline and carriage return too: the Disk's handling of them is
    // not documented, and they would break every line-based tool and log.
    if name.chars().any(char::is_control) {
        return Some("name holds a control character, which the Disk rejects".into());
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Some(format!("name is longer than {MAX_NAME_CHARS} characters, which the Disk rejects"));
    }
    None
}

fn special_kind(kind: FsKind) -> &'static str {
    match kind {
        FsKind::Link => "symbolic link (links are not followed)",
        FsKind::Fifo => "named pipe (FIFO)",
        FsKind::Socket => "socket",
        FsKind::Device => "device file",
        _ => "not a regular file or folder",
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::glob::Glob;
    use std::cell::RefCell;
    use std::fs;
    use std::os::unix::fs::symlink;

    type Hook = Box<dyn FnMut(&Path, &str)>;

    thread_local! {
        /// Tests only: called with `local_dir` and a folder's path just
        /// before the walk opens that folder (to swap it for a link).
        static BEFORE_READ: RefCell<Option<Hook>> = const { RefCell::new(None) };
    }

    /// Calls `f` before each folder the walks of this thread read, until
    /// [`no_hook`].
    pub fn on_read(f: impl FnMut(&Path, &str) + 'static) {
        BEFORE_READ.with(|h| *h.borrow_mut() = Some(Box::new(f)));
    }

    pub fn no_hook() {
        BEFORE_READ.with(|h| *h.borrow_mut() = None);
    }

    pub(super) fn before_read(root: &Path, prefix: &str) {
        let hook = BEFORE_READ.with(|h| h.borrow_mut().take());
        if let Some(mut f) = hook {
            f(root, prefix);
            BEFORE_READ.with(|h| {
                let mut slot = h.borrow_mut();
                if slot.is_none() {
                    *slot = Some(f); // not replaced by the hook itself
                }
            });
        }
    }

    fn tree(files: &[&str]) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        for f in files {
            let p = t.path().join(f);
            if f.ends_with('/') {
                fs::create_dir_all(&p).unwrap();
            } else {
                fs::create_dir_all(p.parent().unwrap()).unwrap();
                fs::write(&p, f.as_bytes()).unwrap();
            }
        }
        t
    }

    fn paths(s: &Scan) -> Vec<&str> {
        s.entries.iter().map(|e| e.path.as_str()).collect()
    }

    #[test]
    fn sorted_with_parents_first_and_stat_recorded() {
        let t = tree(&["b.txt", "a/x/y.txt", "a b.txt", "empty/"]);
        let s = scan(t.path(), &Exclude::NOTHING, false).unwrap();
        assert_eq!(paths(&s), ["a", "a b.txt", "a/x", "a/x/y.txt", "b.txt", "empty"]);
        let f = s.entries.iter().find(|e| e.path == "b.txt").unwrap();
        assert_eq!(f.stat.size, 5);
        assert!(f.stat.mtime_ns > 0 && f.stat.ctime_ns > 0 && f.stat.ino > 0);
        assert!(s.skipped.is_empty());
    }

    #[test]
    fn a_walk_prints_each_folder_as_the_scan_of_the_same_tree() {
        // Several sub-folders and names that sort differently by byte and
        // by component (`a b` < `a/x` < `a0`).
        let t = tree(&["a/x/1", "a/y/2", "a/z/", "a b", "a0/3", "b.txt", "c/"]);
        let mut handed = Vec::new();
        let w =
            walk(t.path(), &Exclude::NOTHING, false, &mut |files| handed.push(files.iter().map(|e| e.path.clone()).collect::<Vec<_>>()))
                .unwrap();
        let s = scan(t.path(), &Exclude::NOTHING, false).unwrap();
        assert_eq!(w.prints, crate::state::prints_of(&s));
        assert_eq!(w.dirs, ["a", "a/x", "a/y", "a/z", "a0", "c"]);
        assert_eq!(w.files, 5);
        assert!(handed.contains(&vec!["a b".to_string(), "b.txt".to_string()]), "a folder's files together, in name order: {handed:?}");
        // Read again, a folder's files are the walk's.
        let again = list(t.path(), &["a/x".into(), String::new()], &w.dirs, &Exclude::NOTHING, false);
        assert_eq!(paths(&again), ["a b", "a/x/1", "b.txt"]);
    }

    #[test]
    fn special_files_are_skipped_without_opening() {
        let t = tree(&["ok.txt", "d/"]);
        symlink("/etc", t.path().join("to-etc")).unwrap();
        symlink("missing", t.path().join("dangling")).unwrap();
        symlink(".", t.path().join("d/loop")).unwrap();
        let fifo = t.path().join("pipe");
        crate::fsutil::sys::make_fifo(&fifo).unwrap();
        let _sock = std::os::unix::net::UnixListener::bind(t.path().join("sock")).unwrap();
        let s = scan(t.path(), &Exclude::NOTHING, false).unwrap();
        assert_eq!(paths(&s), ["d", "ok.txt"]);
        let mut reasons: Vec<_> = s.skipped.iter().map(|k| (k.path.file_name().unwrap().to_str().unwrap(), k.reason.as_str())).collect();
        reasons.sort();
        assert_eq!(reasons.len(), 5, "{reasons:?}");
        assert!(reasons.contains(&("pipe", "named pipe (FIFO)")));
        assert!(reasons.contains(&("sock", "socket")));
        assert!(reasons.contains(&("loop", "symbolic link (links are not followed)")));
    }

    #[test]
    fn non_utf8_and_control_names_are_skipped() {
        use std::os::unix::ffi::OsStrExt;
        let t = tree(&["ok.txt"]);
        fs::write(t.path().join(std::ffi::OsStr::from_bytes(b"bad\xff.txt")), b"x").unwrap();
        fs::write(t.path().join("bell\u{7}.txt"), b"x").unwrap();
        let s = scan(t.path(), &Exclude::NOTHING, false).unwrap();
        assert_eq!(paths(&s), ["ok.txt"]);
        assert_eq!(s.skipped.len(), 2);
    }

    #[test]
    fn names_the_disk_rejects() {
        // Linux allows 255 bytes, the Disk 255 characters: only control
        // characters can reach this check from a real folder, but keep both.
        assert_eq!(bad_name(&"я".repeat(127)), None);
        assert_eq!(bad_name(&"x".repeat(255)), None);
        assert!(bad_name(&"x".repeat(256)).unwrap().contains("longer than 255"));
        assert!(bad_name("a\u{1}b").unwrap().contains("control character"));
        assert!(bad_name("tab\there").is_some() && bad_name("new\nline").is_some() && bad_name("cr\r").is_some());
    }

    #[test]
    fn excluded_and_unreadable_are_kept() {
        let t = tree(&["a.tmp", "cache/x", "keep.txt"]);
        let g = vec![Glob::new("*.tmp").unwrap(), Glob::new("cache/").unwrap()];
        let s = scan(t.path(), &Exclude { globs: &g, markers: &[] }, false).unwrap();
        assert_eq!(paths(&s), ["keep.txt"]);
        assert_eq!(s.excluded, ["a.tmp", "cache"]);
    }

    #[test]
    fn a_folder_holding_a_marker_is_left_out_whole() {
        let t = tree(&["a/.nosync", "a/big.iso", "a/sub/x", "b/.nosync/inside", "c/y", ".nosync"]);
        let markers = [".nosync".to_string()];
        let s = scan(t.path(), &Exclude { globs: &[], markers: &markers }, false).unwrap();
        // b's marker is a folder: still a marker. local_dir's own is a file like any.
        assert_eq!(paths(&s), [".nosync", "c", "c/y"]);
        assert_eq!(s.excluded, ["a", "b"]);
    }

    #[test]
    fn root_problems() {
        let t = tree(&["f"]);
        assert!(matches!(scan(&t.path().join("nope"), &Exclude::NOTHING, false), Err(RootError::Missing)));
        assert!(matches!(scan(&t.path().join("f"), &Exclude::NOTHING, false), Err(RootError::NotADir)));
    }
}
