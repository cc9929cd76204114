//! The idle question: did anything change since the state was sealed?
//!
//! A *seal* is a 128-bit digest of what the state tracks, in the form a scan
//! is compared with. It is built from one *print* per folder: the digest of
//! the folder's own files (name and [`Stat`], in name order) and of its
//! sub-folders' names. A scan and a state with equal prints for a folder
//! agree on that folder; the seal is the digest of all prints (in path
//! order) and `remote_dir`. The store writes it at the end of a settled
//! cycle; the next cycle compares it with the seal of its walk and reads
//! nothing else when they are equal. When they differ, the prints say which
//! folders to look at: only those are listed again and loaded from the
//! state ([`Prints::differing`]). With the whole state loaded, [`unchanged`]
//! answers the same question in one merge pass. Both refuse an unsettled
//! state ([`State::is_settled`]), and a unit test holds them to one answer.
//!
//! Paths the state records as excluded ([`State::hides`]) are left out of
//! its prints, as the walk leaves them out of its own: a file synced and
//! then excluded keeps its record and the idle fast path. Paths the scan
//! could not read need no care: when the state tracks something under one,
//! the prints of its folder differ and the cycle looks (and warns) again.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::{State, VERSION};
use crate::digest::Hex;
use crate::scan::{Kind, Scan, Stat};

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
    /// The seal of the tree these prints describe.
    pub fn seal(&self, remote_dir: &str) -> Hex<16> {
        let mut all = Sha256::new();
        all.update(VERSION.to_le_bytes());
        for (path, print) in &self.0 {
            all.update((path.len() as u64).to_le_bytes());
            all.update(path);
            all.update(print.0);
        }
        all.update(remote_dir);
        let mut out = [0u8; 16];
        out.copy_from_slice(&all.finalize()[..16]);
        Hex(out)
    }

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

impl State {
    /// The prints of what this state tracks (all of it: the state must be
    /// whole). The root has one whenever the state tracks anything.
    pub fn prints(&self) -> Prints {
        let mut b = PrintBuilder::default();
        b.slot("");
        for (p, r) in self.files.iter().filter(|(p, _)| !self.hides(p)) {
            b.file(p, &r.stat);
        }
        self.shown_dirs().for_each(|d| b.dir(d));
        b.finish()
    }

    /// The tracked folders a walk shows (not `""`, none it excludes).
    pub fn shown_dirs(&self) -> impl Iterator<Item = &String> {
        self.dirs.iter().filter(|d| !d.is_empty() && !self.hides(d))
    }

    /// The seal of this state; `None` while it is not settled: those cycles
    /// must look closer.
    pub fn seal(&self) -> Option<Hex<16>> {
        self.is_settled().then(|| self.prints().seal(&self.remote_dir))
    }
}

/// The prints of the folders a scan saw (the root always). A cycle has
/// them from its walk; this is for tests.
#[cfg(test)]
pub fn prints_of(scan: &Scan) -> Prints {
    let mut b = PrintBuilder::default();
    b.slot("");
    for e in &scan.entries {
        match e.kind {
            Kind::File => b.file(&e.path, &e.stat),
            Kind::Dir => b.dir(&e.path),
        }
    }
    b.finish()
}

/// The seal of a state that tracks exactly this scan: equal to the saved
/// seal exactly when [`unchanged`] would hold, so a cycle can skip loading
/// the state.
#[cfg(test)]
pub fn seal_of(scan: &Scan, remote_dir: &str) -> Hex<16> {
    prints_of(scan).seal(remote_dir)
}

/// One merge pass over the scan and the state (both sorted by path): does
/// the state track exactly what the scan saw, and is it settled?
pub fn unchanged(scan: &Scan, state: &State) -> bool {
    if !state.is_settled() {
        return false;
    }
    let mut files = state.files.iter().filter(|(p, _)| !state.hides(p));
    let mut dirs = state.shown_dirs();
    for e in &scan.entries {
        let same = match e.kind {
            Kind::File => files.next().is_some_and(|(p, r)| *p == e.path && r.stat == e.stat),
            Kind::Dir => dirs.next().is_some_and(|d| *d == e.path),
        };
        if !same {
            return false;
        }
    }
    files.next().is_none() && dirs.next().is_none()
}
