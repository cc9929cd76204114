//! The idle question: did anything change since the state was sealed?
//!
//! A *seal* is a 128-bit digest of what the state tracks, in the form a scan
//! is compared with (each file's path and [`Stat`], each folder,
//! `remote_dir`). The store writes it at the end of a settled cycle; the
//! next cycle compares it with [`seal_of`] its scan and reads nothing else
//! when they are equal. With the state loaded, [`unchanged`] answers the
//! same question in one merge pass. Both refuse an unsettled state
//! ([`State::is_settled`]), and a unit test holds them to one answer.
//!
//! Paths the scan excluded or could not read need no care here: when the
//! state tracks something under one, the scan lacks it and the digests
//! differ; when it tracks nothing there, there is nothing to do.

use sha2::{Digest, Sha256};

use super::{State, VERSION};
use crate::digest::Hex;
use crate::scan::{Kind, Scan, Stat};

impl State {
    /// The seal of this state; `None` while it is not settled: those cycles
    /// must look closer.
    pub fn seal(&self) -> Option<Hex<16>> {
        if !self.is_settled() {
            return None;
        }
        let mut f = Fingerprint::default();
        for (p, r) in &self.files {
            f.file(p, &r.stat);
        }
        self.dirs.iter().filter(|d| !d.is_empty()).for_each(|d| f.dir(d));
        Some(f.finish(&self.remote_dir))
    }
}

/// The seal of a state that tracks exactly this scan: equal to the saved
/// seal exactly when [`unchanged`] would hold, so a cycle can skip loading
/// the state.
pub fn seal_of(scan: &Scan, remote_dir: &str) -> Hex<16> {
    let mut f = Fingerprint::default();
    for e in &scan.entries {
        match e.kind {
            Kind::File => f.file(&e.path, &e.stat),
            Kind::Dir => f.dir(&e.path),
        }
    }
    f.finish(remote_dir)
}

/// One merge pass over the scan and the state (both sorted by path): does
/// the state track exactly what the scan saw, and is it settled?
pub fn unchanged(scan: &Scan, state: &State) -> bool {
    if !state.is_settled() {
        return false;
    }
    let mut files = state.files.iter();
    let mut dirs = state.dirs.iter().filter(|d| !d.is_empty());
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

/// Builds a seal: files and folders are hashed as two sequences, each in
/// path order, so a scan (where they interleave) and a state (where they
/// are kept apart) give the same digest. sha256 because it is already here
/// and fast (SHA-NI, ARMv8 crypto); 128 bits make an accidental match
/// between two different trees practically impossible.
#[derive(Default)]
struct Fingerprint {
    files: Sha256,
    dirs: Sha256,
}

impl Fingerprint {
    fn file(&mut self, path: &str, s: &Stat) {
        let mut fixed = [0u8; 40];
        for (i, v) in [path.len() as u64, s.size, s.mtime_ns as u64, s.ctime_ns as u64, s.ino].iter().enumerate() {
            fixed[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
        }
        self.files.update(fixed);
        self.files.update(path);
    }

    fn dir(&mut self, path: &str) {
        self.dirs.update((path.len() as u64).to_le_bytes());
        self.dirs.update(path);
    }

    fn finish(self, remote_dir: &str) -> Hex<16> {
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
