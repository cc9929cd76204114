//! `backup_dir`: the copy on the Disk that a cycle would overwrite or
//! delete is moved, on the server, into `backup_dir/<YYYY-MM-DD>/<path>`
//! (UTC) instead: no byte is sent, and a changed file costs one request
//! more than without versions, a deletion none. Dated folders older than
//! `backup_keep` are deleted, at most once a day.

use std::time::Duration;

use super::Executor;
use crate::config::DeleteMode;
use crate::remote::{self, Error};
use crate::state::Change;
use crate::units::{now_secs, utc};

/// How often expiry runs at most.
pub const EXPIRY_EVERY: Duration = Duration::from_secs(86_400);

/// The dated folder of `secs` (UTC): `2026-12-07`.
pub fn day(secs: u64) -> String {
    utc(secs)[..10].to_string()
}

/// `name.ext` → `name (HH-MM-SS).ext`, `n` > 1 adding `-n`: a free name
/// beside a version kept earlier the same day.
fn suffixed(rel: &str, secs: u64, n: u32) -> String {
    let (dir, name) = rel.rsplit_once('/').map_or(("", rel), |(d, n)| (d, n));
    let (stem, ext) = stem_ext(name);
    let time = utc(secs)[11..19].replace(':', "-");
    let tag = if n > 1 { format!("{time}-{n}") } else { time };
    let named = format!("{stem} ({tag}){ext}");
    if dir.is_empty() { named } else { format!("{dir}/{named}") }
}

/// The inverse of [`suffixed`] for one name: `name (HH-MM-SS[-n]).ext` →
/// (`name.ext`, the seconds into the day it was replaced). `None` for a
/// name without such a tag (the day's first version, or any other name).
pub fn unsuffixed(name: &str) -> Option<(String, u64)> {
    let (stem, ext) = stem_ext(name);
    let open = stem.rfind(" (")?;
    let tag = stem[open + 2..].strip_suffix(')')?;
    let (hms, n) = match tag.len() {
        8 => (tag, None),
        l if l > 9 && tag.as_bytes()[8] == b'-' => (tag.get(..8)?, Some(tag.get(9..)?)),
        _ => return None,
    };
    let b = hms.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| hms.get(r).filter(|d| d.bytes().all(|c| c.is_ascii_digit())).and_then(|d| d.parse::<u64>().ok());
    if b[2] != b'-' || b[5] != b'-' || n.is_some_and(|n| n.is_empty() || !n.bytes().all(|c| c.is_ascii_digit())) {
        return None;
    }
    let (h, m, s) = (digits(0..2)?, digits(3..5)?, digits(6..8)?);
    (h < 24 && m < 60 && s < 61 && open > 0).then(|| (format!("{}{ext}", &stem[..open]), h * 3600 + m * 60 + s))
}

impl Executor<'_> {
    /// Deletes `remote_path` (the copy of `rel`) as `delete` says, or with
    /// `backup_dir` keeps it there instead.
    pub(super) fn discard(&mut self, rel: &str, remote_path: &str, md5: Option<crate::digest::Hex<16>>) -> Result<(), Error> {
        if self.cfg.backup_dir.is_some() {
            return self.keep_version(rel, remote_path).map(drop);
        }
        self.remote.delete(remote_path, self.cfg.delete == DeleteMode::Permanent, md5)
    }

    /// Moves the copy of `rel` at `remote_path` into today's folder of
    /// `backup_dir`, making that folder's parents when the Disk says they
    /// are missing, and taking a time-suffixed name when the name is taken.
    /// `false` when nothing was there (moved by an attempt a crash cut short).
    pub(super) fn keep_version(&mut self, rel: &str, remote_path: &str) -> Result<bool, Error> {
        let Some(backup) = self.cfg.backup_dir.clone() else { return Ok(false) };
        let now = now_secs();
        let dated = remote::join(&backup, &day(now));
        let mut to = remote::join(&dated, rel);
        let mut made_parents = false;
        // Bounded: one try to make the parents, then names with suffixes.
        for n in 1..=VERSION_TRIES {
            match self.remote.move_to(remote_path, &to, false) {
                Ok(()) => {
                    log::info!("kept the old version of {rel} as disk:{to}");
                    self.versioned += 1;
                    // The day's first version has no time in its name: it
                    // is kept on it (one request), for `restore --as-of`.
                    // Without it a restore knows only the day.
                    if n == 1
                        && let Err(e) = self.remote.mark_replaced(&to, now)
                    {
                        log::debug!("marking disk:{to} with the time it was replaced failed ({e}); a restore knows its day");
                    }
                    return Ok(true);
                }
                Err(Error::NotFound) => return Ok(false),
                Err(Error::ParentMissing) if !made_parents => {
                    made_parents = true;
                    let parent = to.rsplit_once('/').map_or(dated.clone(), |(p, _)| p.to_string());
                    self.remote.mkdir_all(&parent)?;
                }
                Err(Error::AlreadyExists) => to = remote::join(&dated, &suffixed(rel, now, n)),
                Err(e) => return Err(e),
            }
        }
        Err(Error::Protocol(format!("no free name for the old version of {rel} in disk:{dated} after {VERSION_TRIES} tries")))
    }

    /// Deletes the dated folders of `backup_dir` older than `backup_keep`
    /// (as `delete` says; `keep` counts as `trash`), at most once a day
    /// (`EXPIRY_EVERY`). A failure is a warning: versions are kept longer.
    pub fn expire_versions(&mut self) {
        let (Some(backup), keep) = (self.cfg.backup_dir.clone(), self.cfg.backup_keep) else { return };
        let now = now_secs();
        let last = self.store.state().versions_expired;
        if keep.is_zero() || now.saturating_sub(last) < EXPIRY_EVERY.as_secs() {
            return;
        }
        let items = match self.remote.list(&backup) {
            Ok(items) => items.unwrap_or_default(),
            Err(e) => {
                log::warn!("listing disk:{backup} to expire old versions failed: {e}; trying again next cycle");
                return;
            }
        };
        let oldest_kept = day(now.saturating_sub(keep.as_secs()));
        let permanently = self.cfg.delete == DeleteMode::Permanent;
        let mut kept = 0;
        for item in items.iter().filter(|i| i.dir && is_day(&i.name)) {
            if item.name >= oldest_kept {
                kept += 1;
                continue;
            }
            match self.remote.delete(&remote::join(&backup, &item.name), permanently, None) {
                Ok(()) | Err(Error::NotFound) => log::info!("expired the versions of {} (older than backup_keep)", item.name),
                Err(e) => {
                    log::warn!("deleting disk:{backup}/{} failed: {e}; trying again next cycle", item.name);
                    return;
                }
            }
        }
        let _ = self.store.commit(vec![Change::Expired { at: now, kept }]);
    }
}

/// Tries of a version's move: making the parents once, then a few names.
const VERSION_TRIES: u32 = 5;

/// `report.docx` → (`report`, `.docx`); `.bashrc` and `notes` have no
/// extension.
pub fn stem_ext(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name, ""),
    }
}

/// `YYYY-MM-DD`.
pub fn is_day(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() == 10 && b[4] == b'-' && b[7] == b'-' && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_suffixed_name_reads_back_as_the_name_and_its_time() {
        let at = 1_765_000_000 + 13 * 3600 + 5 * 60 + 9; // some day, 13:05:09
        let into_day = at % 86_400;
        for (rel, n) in [("report.docx", 1), ("a/report.docx", 3), ("notes", 1), (".bashrc", 2), ("x (1).tar.gz", 1)] {
            let name = suffixed(rel, at, n);
            let name = name.rsplit('/').next().unwrap();
            let plain = rel.rsplit('/').next().unwrap();
            assert_eq!(unsuffixed(name), Some((plain.to_string(), into_day)), "{name}");
        }
        for other in
            ["report.docx", "report (1).docx", "report (13-05).docx", "report (25-00-00).docx", " (13-05-09).txt", "r (13-05-09-).txt"]
        {
            assert_eq!(unsuffixed(other), None, "{other}");
        }
    }

    #[test]
    fn a_taken_name_gets_the_time() {
        let t = 1_796_620_000; // 2026-12-07 05:06:40 UTC
        assert_eq!(day(t), "2026-12-07");
        assert_eq!(suffixed("a/report.docx", t, 1), "a/report (05-06-40).docx");
        assert_eq!(suffixed("notes", t, 2), "notes (05-06-40-2)");
        assert_eq!(suffixed(".bashrc", t, 1), ".bashrc (05-06-40)");
        assert!(is_day("2026-12-07") && !is_day("2026-12-7") && !is_day("photos"));
    }
}
