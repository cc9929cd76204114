//! The snapshot's file format: JSON Lines, written and read line by line,
//! so a 100 000-file state never sits in memory as one big buffer. Only
//! the store calls these; the round-trip tests are in `tests.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};

use serde::{Deserialize, Serialize};

use super::{FileRec, Hex, LastCycle, Moving, Pending, State, is_zero};
use crate::scan::Stat;

/// The snapshot is JSON Lines: the state without its files on the first
/// line (with their count), then one `["path", [size, mtime, ctime, inode,
/// "sha256", "md5"]]` per line, in path order. Written and read line by
/// line, a 100 000-file state never sits in memory as one big buffer.
pub fn write_snapshot(w: &mut dyn Write, state: &State) -> io::Result<()> {
    write_head(w, state, state.files.len(), state.seal())?;
    for (path, rec) in &state.files {
        write_line(w, path, rec)?;
    }
    Ok(())
}

/// The first line: `state` without its files, with their count and seal.
pub fn write_head(w: &mut dyn Write, state: &State, file_count: usize, seal: Option<Hex<16>>) -> io::Result<()> {
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
        #[serde(skip_serializing_if = "BTreeSet::is_empty")]
        excluded: &'a BTreeSet<String>,
        #[serde(skip_serializing_if = "is_zero")]
        reconciled: &'a u64,
        #[serde(skip_serializing_if = "is_zero")]
        versions_expired: &'a u64,
        #[serde(skip_serializing_if = "is_zero")]
        versions_kept: &'a u64,
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
        excluded: &state.excluded,
        reconciled: &state.reconciled,
        versions_expired: &state.versions_expired,
        versions_kept: &state.versions_kept,
        file_count,
        seal,
    };
    serde_json::to_writer(&mut *w, &head)?;
    w.write_all(b"\n")
}

/// One file's line.
pub fn write_line(w: &mut dyn Write, path: &str, rec: &FileRec) -> io::Result<()> {
    serde_json::to_writer(&mut *w, &(path, rec))?;
    w.write_all(b"\n")
}

pub fn read_snapshot(r: impl io::BufRead) -> Result<(State, Option<Hex<16>>), String> {
    let (mut state, seal, mut lines) = open_snapshot(r)?;
    // The count is the file's word, and a damaged file may say anything
    // (2^64): a hint for the first allocation, never more. A count the
    // lines do not bear out is an error of `Lines`, so the file is set aside.
    let mut files = Vec::with_capacity(lines.count.min(1 << 16));
    for pair in &mut lines {
        files.push(pair?);
    }
    state.files = files.into_iter().collect();
    Ok((state, seal))
}

/// Reads the first line of a snapshot: the state without its files, its
/// seal, and the file lines still to read, one at a time.
pub fn open_snapshot<R: io::BufRead>(mut r: R) -> Result<(State, Option<Hex<16>>, Lines<R>), String> {
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line).map_err(|e| e.to_string())?;
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
    let state: State = serde_json::from_str(&head).map_err(|e| e.to_string())?;
    Ok((state, seal, Lines { r, line, count, read: 0 }))
}

fn utf8(b: &[u8]) -> Result<String, String> {
    std::str::from_utf8(b).map(str::to_owned).map_err(|e| e.to_string())
}

/// A snapshot's file records, in path order, one line at a time; a file
/// with fewer lines than its first line promises ends with an error.
pub struct Lines<R> {
    r: R,
    line: Vec<u8>,
    /// What the first line promises.
    pub count: usize,
    read: usize,
}

impl<R: io::BufRead> Iterator for Lines<R> {
    type Item = Result<(String, FileRec), String>;

    fn next(&mut self) -> Option<Self::Item> {
        self.line.clear();
        match self.r.read_until(b'\n', &mut self.line) {
            Err(e) => return Some(Err(e.to_string())),
            Ok(0) if self.read == self.count => return None,
            Ok(0) => {
                let (read, count) = (self.read, self.count);
                self.read = self.count; // said once
                return Some(Err(format!("{read} files where the first line promises {count}: the file is truncated")));
            }
            Ok(_) => {}
        }
        self.read += 1;
        let text = self.line.strip_suffix(b"\n").unwrap_or(&self.line);
        Some(match fast_line(text) {
            Some(p) => Ok(p),
            None => utf8(text).and_then(|t| serde_json::from_str(&t).map_err(|e| format!("line {}: {e}", self.read + 1))),
        })
    }
}

/// The usual snapshot line, `["path",[size,mtime,ctime,ino,"sha256","md5"]]`,
/// read by hand, byte by byte: four times faster than serde_json, and
/// loading the state is most of the state's cost in a cycle that changed
/// something. Anything else (an escaped path, other spacing) returns `None`
/// and goes to serde_json.
pub fn fast_line(line: &[u8]) -> Option<(String, FileRec)> {
    let mut c = Bytes(line);
    c.eat(b"[\"")?;
    let end = c.0.iter().position(|&b| b == b'"' || b == b'\\').filter(|&i| c.0[i] == b'"')?;
    let path = std::str::from_utf8(&c.0[..end]).ok()?.to_owned();
    c.0 = &c.0[end..];
    c.eat(b"\",[")?;
    let size = c.uint(b',')?;
    let mtime_ns = c.int(b',')?;
    let ctime_ns = c.int(b',')?;
    let ino = c.uint(b',')?;
    c.eat(b"\"")?;
    let sha256 = c.hex::<32>()?;
    c.eat(b"\",\"")?;
    let md5 = if c.0.starts_with(b"\"") { Hex::UNKNOWN } else { c.hex::<16>()? };
    c.eat(b"\"]]")?;
    c.0.is_empty().then_some((path, FileRec { stat: Stat { size, mtime_ns, ctime_ns, ino }, sha256, md5 }))
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

/// Reads a map saved in key order in one pass: collect, then build the tree
/// in bulk, instead of 100 000 searches and inserts.
pub fn sorted_map<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<String, FileRec>, D::Error> {
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
