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

use sha2::{Digest, Sha256};

use super::{State, VERSION};
use crate::digest::Hex;
pub use crate::print::{FilesPrint, PrintBuilder, Prints, in_folders, split};
use crate::scan::{Kind, Scan};

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
}

impl State {
    /// The prints of what this state tracks (all of it: the state must be
    /// whole). The root has one whenever the state tracks anything.
    pub fn prints(&self) -> Prints {
        let mut b = PrintBuilder::default();
        b.folder("");
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
    b.folder("");
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
