//! The mass-change guard (`max_change`): a cycle that would upload new
//! content over more synced files than the limit stops before it uploads
//! anything, and says what it saw. Ransomware rewrites every file it can
//! reach; a mirror must not carry that over the good copies.
//!
//! Counted: uploads over a synced file (its size changed), and files of the
//! same size whose sha256 differs (hashed only when the sure ones alone do
//! not decide). Not counted: new files, renames and moves, deletions
//! (those are `max_delete`'s).

use std::io::Read;
use std::path::Path;

use crate::config::MaxDelete;
use crate::digest::Hex;
use crate::fsutil::Dir;
use crate::plan::Action;
use crate::scan::{self, Entry};
use crate::state::State;

/// A percentage never stops fewer files than this.
pub const CHANGE_FLOOR: u64 = 20;
/// Files whose first bytes are sampled for the report, and how many bytes.
const SAMPLES: usize = 5;
const SAMPLE_BYTES: usize = 1024;
/// Bits per byte above which a sample looks random (a KiB of random bytes
/// measures about 7.8; text about 4–5).
const RANDOM_BITS_X10: u32 = 75;

/// Same-size files kept to hash, at most: a change planned in parts (over
/// `PART_ENTRIES` files) is not held whole here either. Past it, the
/// others count only when the first ones do not decide.
const MAYBE_MAX: usize = 20_000;

/// What a plan would overwrite: counted, with the first few paths for the
/// report, so a million rewritten files cost no more memory
/// than a hundred.
#[derive(Default)]
pub struct Changes {
    /// Synced files to be uploaded with another size (or found changed).
    sure: u64,
    /// The first of them, in the plan's order, at most `SAMPLES`.
    first: Vec<Entry>,
    /// Synced files of the same size, maybe changed: entry, sha256 synced.
    maybe: Vec<(Entry, Hex<32>)>,
    /// Same-size files past `MAYBE_MAX`, not kept.
    unheld: u64,
}

impl Changes {
    /// Adds what `actions` would overwrite of what `state` tracks.
    pub fn add(&mut self, actions: &[Action], state: &State) {
        for a in actions {
            match a {
                Action::Upload(e) if state.files.contains_key(&e.path) => self.changed(e),
                Action::Check { .. } if self.maybe.len() >= MAYBE_MAX => self.unheld += 1,
                Action::Check { entry, old_sha256 } => self.maybe.push((entry.clone(), *old_sha256)),
                _ => {}
            }
        }
    }

    fn changed(&mut self, e: &Entry) {
        self.sure += 1;
        if self.first.len() < SAMPLES {
            self.first.push(e.clone());
        }
    }

    /// `Some(why)` when the changes are over `limit` of `tracked` files:
    /// the message of the safety stop. Same-size files are hashed only
    /// while the count is still undecided. Files are opened as the
    /// executor opens them ([`scan::open`]): only the regular file the scan
    /// saw, never a FIFO or a link swapped in since, so nothing here waits.
    pub fn stop(mut self, limit: MaxDelete, tracked: u64, local_dir: &Path) -> Option<String> {
        let allowed = limit.limit(tracked);
        let over = |n: u64| n > allowed && !(matches!(limit, MaxDelete::Percent(_)) && n < CHANGE_FLOOR);
        if !over(self.sure + self.maybe.len() as u64 + self.unheld) {
            return None;
        }
        let root = Dir::open(local_dir).ok();
        let open = |e: &Entry| match root.as_ref().map(|r| scan::open(r, e)) {
            Some(Ok(scan::Opened::File(f))) => Some(f),
            _ => None,
        };
        for (e, old) in std::mem::take(&mut self.maybe) {
            if over(self.sure) {
                break;
            }
            let differs = open(&e).and_then(|f| crate::digest::sha256_of(&f).ok()).is_some_and(|now| now != old);
            if differs {
                self.changed(&e);
            }
        }
        let n = self.sure;
        if !over(n) {
            return None;
        }
        let examples: Vec<&str> = self.first.iter().take(3).map(|e| e.path.as_str()).collect();
        let sampled: Vec<u32> = self.first.iter().filter_map(|e| entropy_x10(open(e)?)).collect();
        let random = sampled.iter().filter(|b| **b >= RANDOM_BITS_X10).count();
        Some(format!(
            "this cycle would upload new content over {n} of {tracked} synced files, more than max_change = {limit}; nothing was \
             uploaded (e.g. {}). {random} of {} sampled look random in their first KiB, as encrypted (or compressed) files do. \
             If you changed them, run once with --allow-mass-change; if not, stop what is writing, then put the good copies back \
             with `ysync restore --all --to LOCAL_DIR --force` (what it replaces is kept aside)",
            examples.join(", "),
            sampled.len(),
        ))
    }
}

/// Shannon entropy of the first KiB of `f`, in tenths of a bit per byte.
fn entropy_x10(mut f: std::fs::File) -> Option<u32> {
    let mut buf = [0u8; SAMPLE_BYTES];
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    (n > 0).then(|| bits_x10(&buf[..n]))
}

/// H = log2(n) − Σ c·log2(c) / n over the byte counts c, in integers (no
/// floating point in the binary: it costs size on a router).
fn bits_x10(data: &[u8]) -> u32 {
    let mut counts = [0u64; 256];
    data.iter().for_each(|b| counts[*b as usize] += 1);
    let n = data.len() as u64;
    let sum: u64 = counts.iter().filter(|c| **c > 0).map(|c| c * log2_fixed(*c)).sum();
    let bits = log2_fixed(n) - sum / n; // in 1/2^16 bits
    ((bits * 10) >> 16) as u32
}

/// log2(x) for x ≥ 1, in 1/2^16 units: the integer part from the highest
/// bit, the fraction bit by bit by squaring.
fn log2_fixed(x: u64) -> u64 {
    let int = 63 - u64::from(x.leading_zeros());
    // x / 2^int in 1.32 fixed point.
    let mut m = (u128::from(x) << 32 >> int) as u64;
    let mut frac = 0;
    for bit in (0..16).rev() {
        m = ((u128::from(m) * u128::from(m)) >> 32) as u64;
        if m >= 2 << 32 {
            m >>= 1;
            frac |= 1 << bit;
        }
    }
    (int << 16) | frac
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_bytes_measure_high_and_text_low() {
        let mut x: u64 = 7;
        let random: Vec<u8> = (0..1024)
            .map(|_| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (x >> 56) as u8
            })
            .collect();
        assert!(bits_x10(&random) >= RANDOM_BITS_X10, "{}", bits_x10(&random));
        let text = "The quarterly report: revenue grew, costs fell, and the team shipped on time. ".repeat(14);
        assert!(bits_x10(&text.as_bytes()[..1024]) < 50, "{}", bits_x10(text.as_bytes()));
    }

    #[test]
    fn log2_in_integers() {
        assert_eq!(log2_fixed(1), 0);
        assert_eq!(log2_fixed(1024), 10 << 16);
        let l3 = log2_fixed(3) as f64 / 65536.0;
        assert!((l3 - 3f64.log2()).abs() < 0.001, "{l3}");
        assert_eq!(bits_x10(&[7u8; 100]), 0, "one symbol: no entropy");
        assert_eq!(bits_x10(&(0..=255u8).collect::<Vec<_>>()), 80, "all symbols once: 8 bits");
    }

    #[test]
    fn the_floor_and_the_limit() {
        let t = tempfile::tempdir().unwrap();
        let changes = |n: usize| {
            let mut c = Changes::default();
            (0..n).for_each(|i| c.changed(&Entry { path: format!("f{i:03}"), ..Entry::dir("") }));
            c
        };
        let c = changes(100);
        assert_eq!(
            (c.sure, c.first.iter().map(|e| e.path.as_str()).collect::<Vec<_>>()),
            (100, vec!["f000", "f001", "f002", "f003", "f004"])
        );
        // 19 of 20 is 95%, but under the floor of 20 files.
        assert!(changes(19).stop(MaxDelete::Percent(50), 20, t.path()).is_none());
        assert!(changes(20).stop(MaxDelete::Percent(50), 30, t.path()).unwrap().contains("over 20 of 30 synced files"));
        assert!(changes(5).stop(MaxDelete::Count(4), 100, t.path()).is_some(), "a count has no floor");
        assert!(changes(100).stop(MaxDelete::Percent(100), 100, t.path()).is_none(), "100% is off");
    }

    #[test]
    fn a_file_swapped_for_a_fifo_while_the_guard_hashes_never_hangs_it() {
        // The review's finding 9: a blocking open of a FIFO with no writer
        // held the cycle (and its lock) for ever.
        let t = tempfile::tempdir().unwrap();
        let mut c = Changes::default();
        for i in 0..30 {
            let p = t.path().join(format!("f{i:02}.bin"));
            std::fs::write(&p, [i as u8; 64]).unwrap();
            let m = crate::fsutil::Meta::from(&std::fs::symlink_metadata(&p).unwrap());
            c.maybe.push((scan::file_entry(format!("f{i:02}.bin"), &m), Hex([0; 32])));
        }
        c.changed(&c.maybe[0].0.clone());
        for i in [0, 1, 20] {
            let p = t.path().join(format!("f{i:02}.bin"));
            std::fs::remove_file(&p).unwrap();
            crate::fsutil::sys::make_fifo(&p).unwrap();
        }
        let root = t.path().to_path_buf();
        let (done, wait) = std::sync::mpsc::channel();
        std::thread::spawn(move || drop(done.send(c.stop(MaxDelete::Percent(50), 30, &root))));
        let why = wait.recv_timeout(std::time::Duration::from_secs(30)).expect("the guard ended (no FIFO was opened to be read)");
        let why = why.expect("a stop");
        assert!(why.contains("over 20 of 30 synced files"), "{why}");
    }
}
