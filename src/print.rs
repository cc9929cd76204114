//! Folder prints, and the relative paths they are keyed by: what the walk
//! and the state are compared by (`state/seal.rs` says how). A leaf: the
//! scan builds prints from its walk, the state from its records.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::digest::Hex;

/// What decides whether a file needs a look: the scan reads it, the state
/// records it, and the two are compared as a whole (never field by field).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stat {
    pub size: u64,
    /// Nanoseconds since the Unix epoch (negative before 1970).
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub ino: u64,
}

/// One folder's print, built from its files and sub-folders in name order
/// (the two lists may be fed in any interleaving).
#[derive(Default, Clone)]
pub struct FolderPrint {
    files: Sha256,
    dirs: Sha256,
    /// The half its files make, when known already ([`PrintBuilder::files_print`]).
    kept: Option<FilesPrint>,
    has_files: bool,
}

/// The half of a folder's print that its own files make. A partial state
/// keeps one per folder, so that its seal needs only the records of the
/// folders that changed since.
pub type FilesPrint = [u8; 32];

impl FolderPrint {
    pub fn file(&mut self, name: &str, s: &Stat) {
        let mut fixed = [0u8; 40];
        for (i, v) in [name.len() as u64, s.size, s.mtime_ns as u64, s.ctime_ns as u64, s.ino].iter().enumerate() {
            fixed[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
        }
        self.files.update(fixed);
        self.files.update(name);
        self.has_files = true;
    }

    pub fn dir(&mut self, name: &str) {
        self.dirs.update((name.len() as u64).to_le_bytes());
        self.dirs.update(name);
    }

    fn files_half(&self) -> FilesPrint {
        self.kept.unwrap_or_else(|| self.files.clone().finalize().into())
    }

    fn print(&self) -> Hex<16> {
        let mut all = Sha256::new();
        all.update(self.files_half());
        all.update(self.dirs.clone().finalize());
        let mut out = [0u8; 16];
        out.copy_from_slice(&all.finalize()[..16]);
        Hex(out)
    }

    pub fn finish(self) -> Hex<16> {
        self.print()
    }
}

/// The prints of every folder of a tree (`""` is `local_dir` itself).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Prints(pub BTreeMap<String, Hex<16>>);

impl Prints {
    /// The folders whose prints differ, or that only one side has, sorted.
    pub fn differing(&self, other: &Prints) -> Vec<String> {
        let mut out: Vec<String> = self.0.iter().filter(|(p, h)| other.0.get(*p) != Some(h)).map(|(p, _)| p.clone()).collect();
        out.extend(other.0.keys().filter(|p| !self.0.contains_key(*p)).cloned());
        out.sort_unstable();
        out
    }
}

/// Builds [`Prints`] from files given in path order (so each folder's own
/// files come in name order) and folders in any order. Holds one
/// [`FolderPrint`] per folder: memory grows with the folders, not the files.
#[derive(Default)]
pub struct PrintBuilder(BTreeMap<String, FolderPrint>);

impl PrintBuilder {
    pub fn file(&mut self, path: &str, s: &Stat) {
        let (parent, name) = split(path);
        self.slot(parent).file(name, s);
    }

    /// A folder (not `""`): its parent lists it, and it has a print even
    /// when empty.
    pub fn dir(&mut self, path: &str) {
        let (parent, name) = split(path);
        self.slot(parent).dir(name);
        self.slot(path);
    }

    /// A folder that has a print (the root; any folder through [`Self::dir`]).
    pub fn folder(&mut self, folder: &str) {
        self.slot(folder);
    }

    /// A folder's files, as the half of its print they made before
    /// ([`PrintBuilder::finish_kept`]), in place of the files themselves.
    pub fn files_print(&mut self, folder: &str, files: FilesPrint) {
        let slot = self.slot(folder);
        (slot.kept, slot.has_files) = (Some(files), true);
    }

    /// The print of a folder as fed so far, if it has one.
    pub fn print_of(&self, folder: &str) -> Option<Hex<16>> {
        self.0.get(folder).map(FolderPrint::print)
    }

    fn slot(&mut self, folder: &str) -> &mut FolderPrint {
        if !self.0.contains_key(folder) {
            self.0.insert(folder.to_string(), FolderPrint::default());
        }
        self.0.get_mut(folder).expect("inserted above")
    }

    pub fn finish(self) -> Prints {
        Prints(self.0.into_iter().map(|(p, f)| (p, f.finish())).collect())
    }

    /// The prints, and the half of each that its files make, for the
    /// folders that have files.
    pub fn finish_kept(self) -> (Prints, BTreeMap<String, FilesPrint>) {
        let kept = self.0.iter().filter(|(_, f)| f.has_files).map(|(p, f)| (p.clone(), f.files_half())).collect();
        (self.finish(), kept)
    }
}

/// Is the file `path` directly in one of `folders` (sorted)?
pub fn in_folders(folders: &[String], path: &str) -> bool {
    let parent = split(path).0;
    folders.binary_search_by(|d| d.as_str().cmp(parent)).is_ok()
}

/// `a/b/c` → (`a/b`, `c`); `c` → (`""`, `c`).
pub fn split(path: &str) -> (&str, &str) {
    path.rfind('/').map_or(("", path), |i| (&path[..i], &path[i + 1..]))
}

/// Is the relative path `p` strictly below the folder `dir`? (`ab` is not
/// below `a`.)
pub fn is_under(p: &str, dir: &str) -> bool {
    p.len() > dir.len() && p.starts_with(dir) && p.as_bytes()[dir.len()] == b'/'
}

/// Is `path`, or a folder above it, in `set`? A lookup per ancestor.
pub fn at_or_below_any(set: &std::collections::BTreeSet<String>, path: &str) -> bool {
    !set.is_empty() && (set.contains(path) || path.match_indices('/').any(|(i, _)| set.contains(&path[..i])))
}
