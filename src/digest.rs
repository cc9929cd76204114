//! Digests: the `Hex` type they are kept in, and the one reader that
//! computes them while bytes stream past.

use std::fs::File;
use std::io::{self, Read};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A digest kept as bytes (a state holds two per file: strings would double
/// its memory) and written as lowercase hex; all zeros is written as "".
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Hex<const N: usize>(pub [u8; N]);

impl<const N: usize> Hex<N> {
    pub const UNKNOWN: Hex<N> = Hex([0; N]);

    /// From `N * 2` hex digits; `""` is unknown.
    pub fn parse(s: &str) -> Option<Hex<N>> {
        if s.is_empty() {
            return Some(Hex::UNKNOWN);
        }
        if s.len() != N * 2 {
            return None;
        }
        // A table, not a function: the size-optimised build would not inline
        // one, and a state file holds 200 000 of these.
        const NIBBLE: [u8; 256] = {
            let mut t = [0xff; 256];
            let mut i = 0;
            while i < 10 {
                t[b'0' as usize + i] = i as u8;
                i += 1;
            }
            let mut i = 0;
            while i < 6 {
                t[b'a' as usize + i] = 10 + i as u8;
                t[b'A' as usize + i] = 10 + i as u8;
                i += 1;
            }
            t
        };
        let b = s.as_bytes();
        let mut out = [0u8; N];
        let mut bad = 0;
        for (i, o) in out.iter_mut().enumerate() {
            let (hi, lo) = (NIBBLE[usize::from(b[2 * i])], NIBBLE[usize::from(b[2 * i + 1])]);
            bad |= hi | lo;
            *o = hi << 4 | lo;
        }
        (bad & 0xf0 == 0).then_some(Hex(out))
    }

    /// From `N * 2` hex digits, as the Disk reports a digest: `None` when
    /// there is none yet (`""`: it is still hashing a fresh upload) or it
    /// is not one.
    pub fn known(s: &str) -> Option<Hex<N>> {
        Hex::parse(s).filter(|h| !h.is_unknown())
    }

    pub fn is_unknown(&self) -> bool {
        *self == Hex::UNKNOWN
    }
}

impl<const N: usize> std::fmt::Display for Hex<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        if self.is_unknown() {
            return Ok(());
        }
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut buf = [0u8; 128];
        for (i, b) in self.0.iter().enumerate() {
            buf[2 * i] = DIGITS[usize::from(b >> 4)];
            buf[2 * i + 1] = DIGITS[usize::from(b & 15)];
        }
        f.write_str(std::str::from_utf8(&buf[..2 * N]).expect("ascii"))
    }
}

impl<const N: usize> std::fmt::Debug for Hex<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "\"{self}\"")
    }
}

impl<const N: usize> Serialize for Hex<N> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de, const N: usize> Deserialize<'de> for Hex<N> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Hex<N>, D::Error> {
        struct V<const N: usize>;
        impl<const N: usize> serde::de::Visitor<'_> for V<N> {
            type Value = Hex<N>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                write!(f, "{} hex digits", N * 2)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Hex<N>, E> {
                Hex::parse(v).ok_or_else(|| E::invalid_value(serde::de::Unexpected::Str(v), &self))
            }
        }
        d.deserialize_str(V)
    }
}

/// A reader that hashes and counts what passes through it, and remembers
/// whether a failure came from the local file rather than the network.
/// sha256 identifies content. It is the only hash ysync computes over a
/// file: the md5 that the Disk's conditional delete takes comes from the
/// Disk when a deletion needs it (an md5 pass too would cost more CPU per
/// uploaded byte than all the rest: BENCHMARKS.md, "Upload CPU").
pub struct Hashing<R> {
    inner: R,
    pub sha256: Sha256,
    pub count: u64,
    pub local_error: Option<io::Error>,
}

impl<R: Read> Hashing<R> {
    pub fn new(inner: R) -> Hashing<R> {
        Hashing { inner, sha256: Sha256::new(), count: 0, local_error: None }
    }

    pub fn digests(self) -> Digests {
        Digests { sha256: Hex(self.sha256.finalize().into()) }
    }
}

/// What ysync computes of a file's content.
pub struct Digests {
    pub sha256: Hex<32>,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.sha256.update(&buf[..n]);
                self.count += n as u64;
                Ok(n)
            }
            Err(e) => {
                let copy = io::Error::new(e.kind(), e.to_string());
                self.local_error = Some(e);
                Err(copy)
            }
        }
    }
}

/// The sha256 of a whole file, as lowercase hex.
pub fn sha256_of(f: &File) -> io::Result<Hex<32>> {
    hash_file(f).map(|d| d.sha256)
}

pub fn hash_file(f: &File) -> io::Result<Digests> {
    let mut h = Hashing::new(f);
    io::copy(&mut h, &mut io::sink())?;
    Ok(h.digests())
}

/// First 8 hex digits of the sha256 of `bytes`: a short, stable tag for a
/// name (the state file of a config, a temporary upload name, a device id).
pub fn short_hash(bytes: &[u8]) -> String {
    let mut tag = [0u8; 4];
    tag.copy_from_slice(&Sha256::digest(bytes)[..4]);
    Hex(tag).to_string()
}
