//! `ysync versions PATH` and `ysync restore PATH`: the old versions that
//! `backup_dir` keeps ([`crate::exec`]'s `versions.rs` writes them), and
//! one of them brought back. `restore` is the only command that writes
//! into `local_dir`, and only the one file asked for: to a new name by
//! default, never over an existing file without `--force`, streamed to a
//! temporary file, its sha256 checked, then renamed into place.

use std::path::{Path, PathBuf};

use super::write::{self, Aside, Fetch, Target, Want, fetch};
use crate::config::Config;
use crate::digest::Hex;
use crate::exit::Exit;
use crate::logging;
use crate::remote::{self, Error, Remote};
use crate::units::human_bytes;

/// One kept version of a file.
#[derive(Debug)]
pub struct Version {
    /// Its dated folder, `YYYY-MM-DD`.
    pub day: String,
    /// Its name there: the file's, or with the time it was replaced.
    pub name: String,
    pub size: u64,
    pub sha256: Option<Hex<32>>,
    pub dir: bool,
}

/// What `restore` was asked.
pub struct Restore<'a> {
    pub path: &'a str,
    pub date: Option<&'a str>,
    pub to: Option<&'a Path>,
    pub force: bool,
}

/// `PATH` relative to `local_dir`: given relative, or absolute inside it.
pub fn relative(cfg: &Config, path: &str) -> Result<String, String> {
    let p = Path::new(path);
    let rel = if p.is_absolute() {
        p.strip_prefix(&cfg.local_dir).map_err(|_| format!("{path} is not inside local_dir {}", cfg.local_dir.display()))?
    } else {
        p
    };
    let rel = rel.to_str().ok_or("the path is not UTF-8")?.trim_matches('/').trim_start_matches("./").to_string();
    if rel.is_empty() || rel.split('/').any(|c| c == ".." || c == ".") {
        return Err(format!("`{path}`: give a file's path inside local_dir, without . or .."));
    }
    Ok(rel)
}

/// The versions of `rel`, oldest first: one listing of `backup_dir`, and
/// one of the file's folder in each dated folder.
pub fn find(cfg: &Config, disk: &mut dyn Remote, rel: &str) -> Result<Vec<Version>, Error> {
    let Some(backup) = &cfg.backup_dir else { return Ok(Vec::new()) };
    let mut days: Vec<String> =
        disk.list(backup)?.unwrap_or_default().into_iter().filter(|i| i.dir && crate::exec::is_day(&i.name)).map(|i| i.name).collect();
    days.sort();
    let (parent, name) = rel.rsplit_once('/').map_or(("", rel), |(p, n)| (p, n));
    let (stem, ext) = crate::exec::stem_ext(name);
    let mut out = Vec::new();
    for day in days {
        let folder = remote::join(&remote::join(backup, &day), parent);
        let mut here: Vec<Version> = disk
            .list(&folder)?
            .unwrap_or_default()
            .into_iter()
            .filter(|i| i.name == name || (i.name.starts_with(&format!("{stem} (")) && i.name.ends_with(&format!("){ext}"))))
            .map(|i| Version { day: day.clone(), name: i.name, size: i.file.size, sha256: i.file.sha256, dir: i.dir })
            .collect();
        // The plain name is the day's first; the others carry their time.
        here.sort_by(|a, b| (a.name != name, &a.name).cmp(&(b.name != name, &b.name)));
        out.extend(here);
    }
    Ok(out)
}

/// `ysync versions PATH`. Exit: 0 with versions listed, 1 none, 2 no
/// backup_dir or a bad path, 3 token rejected.
pub fn versions(cfg: &Config, disk: &mut dyn Remote, path: &str) -> Exit {
    let Some(backup) = &cfg.backup_dir else {
        eprintln!(
            "ysync: no backup_dir in the config, so no versions are kept; set backup_dir = disk:/… (see GUIDE.md, \"Versions and ransomware\")"
        );
        return Exit::Usage;
    };
    let rel = match relative(cfg, path) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ysync: {e}");
            return Exit::Usage;
        }
    };
    let found = match find(cfg, disk, &rel) {
        Ok(v) => v,
        Err(e) => return failed(e),
    };
    if found.is_empty() {
        println!("no versions of {rel} in disk:{backup}");
        return Exit::Failed;
    }
    for line in lines(backup, &rel, &found) {
        println!("{line}");
    }
    Exit::Ok
}

/// What `versions` prints, a line per version. Names come from the Disk
/// (or whatever answers as it): escaped, so none can forge a line or send
/// the terminal an escape sequence.
fn lines(backup: &str, rel: &str, found: &[Version]) -> Vec<String> {
    let parent = rel.rsplit_once('/').map_or(String::new(), |(p, _)| format!("{p}/"));
    let line = |v: &Version| {
        let what = if v.dir { "folder".to_string() } else { human_bytes(v.size) };
        let sha = v.sha256.map(|h| h.to_string()[..12].to_string()).unwrap_or_else(|| "-".into());
        let place = format!("disk:{backup}/{}/{parent}{}", v.day, v.name);
        format!("{}  {what:>10}  sha256 {sha}  {}", logging::one_line(&v.day), logging::one_line(&place))
    };
    found.iter().map(line).collect()
}

/// `ysync restore PATH [--date D] [--to LOCAL] [--force]`. Exit: 0
/// restored, 1 no such version or the download failed (nothing written),
/// 2 a bad path or a file in the way, 3 token rejected.
pub fn restore(cfg: &Config, disk: &mut dyn Remote, r: &Restore) -> Exit {
    let Some(backup) = &cfg.backup_dir else {
        eprintln!("ysync: no backup_dir in the config, so no versions are kept");
        return Exit::Usage;
    };
    let rel = match relative(cfg, r.path) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("ysync: {e}");
            return Exit::Usage;
        }
    };
    if let Some(d) = r.date.filter(|d| !crate::exec::is_day(d)) {
        eprintln!("ysync: --date {d}: give a day as YYYY-MM-DD (ysync versions {rel} lists them)");
        return Exit::Usage;
    }
    let found = match find(cfg, disk, &rel) {
        Ok(v) => v,
        Err(e) => return failed(e),
    };
    let Some(v) = found.iter().rev().find(|v| r.date.is_none_or(|d| v.day == d)) else {
        println!("no version of {rel}{} in disk:{backup}", r.date.map(|d| format!(" from {d}")).unwrap_or_default());
        return Exit::Failed;
    };
    if v.dir {
        eprintln!("ysync: {rel} was kept as a folder on {}; restore its files one by one (ysync versions {rel}/NAME)", v.day);
        return Exit::Usage;
    }
    let Some(sha256) = v.sha256 else {
        eprintln!(
            "ysync: the Disk shows no sha256 for the version of {rel} from {}, so what would arrive could not be checked; \
             nothing was written. The Disk hashes a fresh file within minutes: try again later",
            v.day
        );
        return Exit::Failed;
    };
    let (target, name, shown) = match destination(cfg, &rel, &v.day, r.to) {
        Ok(found) => found,
        Err(e) => {
            eprintln!("ysync: {e}");
            return Exit::Usage;
        }
    };
    match target.dir.has(&name) {
        Ok(true) if !r.force => {
            eprintln!("ysync: {} exists; not overwritten (add --force, or choose another --to)", shown.display());
            return Exit::Usage;
        }
        Err(e) => {
            eprintln!("ysync: {}: {e}", shown.display());
            return Exit::Usage;
        }
        _ => {}
    }
    let parent = remote::join(&remote::join(backup, &v.day), rel.rsplit_once('/').map_or("", |(p, _)| p));
    let source = remote::join(&parent, &v.name);
    // With --force what is there is kept aside, never lost.
    let mut aside = match r.force.then(|| Aside::new(&target.dir)).transpose() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("ysync: {}: {e}", shown.display());
            return Exit::Failed;
        }
    };
    let want = Want { size: v.size, sha256, mtime_ns: None };
    match fetch(disk, &source, &target, &name, want, aside.as_mut().map(|a| (a, "")), &mut |_| {}) {
        Ok(size) => {
            println!("restored {rel} from {} ({}) to {}", v.day, human_bytes(size), logging::one_line(&shown.display().to_string()));
            if let Some(a) = aside.filter(|a| a.kept > 0) {
                println!("kept what was there in {}", logging::one_line(&a.path().display().to_string()));
            }
            Exit::Ok
        }
        Err(Fetch::Exists) => {
            eprintln!(
                "ysync: {} appeared while it was being restored; not overwritten (add --force, or choose another --to)",
                shown.display()
            );
            Exit::Usage
        }
        Err(Fetch::Rejected(e)) => {
            eprintln!("ysync: {e}");
            Exit::Rejected
        }
        Err(Fetch::Failed(e)) => {
            eprintln!("ysync: restoring disk:{source} to {}: {e}; nothing was written", shown.display());
            Exit::Failed
        }
    }
}

/// Where the one-file restore writes, and the name there: `--to` (relative
/// to local_dir when relative), or beside the file with the day in its
/// name: `a/report (restored 2026-12-07).docx` ([`write::folder`]: no link
/// followed below local_dir, nor above it for root).
fn destination(cfg: &Config, rel: &str, day: &str, to: Option<&Path>) -> Result<(Target, String, PathBuf), String> {
    let (folder, name) = match to {
        Some(to) => {
            let name = to.file_name().and_then(|n| n.to_str()).ok_or("--to: give a file's path with a UTF-8 name")?;
            (Some(to.parent().unwrap_or(Path::new(""))), name.to_string())
        }
        None => {
            let (_, file) = rel.rsplit_once('/').unwrap_or(("", rel));
            let (stem, ext) = crate::exec::stem_ext(file);
            (None, format!("{stem} (restored {day}){ext}"))
        }
    };
    let default = rel.rsplit_once('/').map_or("", |(p, _)| p);
    let (dir, shown) = write::folder(cfg, folder, default, true)?;
    let dir = dir.ok_or("the destination folder could not be made")?;
    Ok((Target::of(dir)?, name.clone(), shown.join(name)))
}

fn failed(e: Error) -> Exit {
    eprintln!("ysync: {e}");
    if e.is_rejection() { Exit::Rejected } else { Exit::Failed }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::MemDisk;

    #[test]
    fn names_from_the_disk_are_printed_escaped() {
        // Finding 22: a hostile server's names reached the terminal raw.
        let v = |name: &str| Version { day: "2026-12-01".into(), name: name.into(), size: 5, sha256: None, dir: false };
        let found = [v("report (\n2026-12-09  fake line).txt"), v("report (\u{1b}]0;owned\u{7}\u{1b}[2J).txt")];
        let out = lines("/V", "docs/report.txt", &found);
        assert_eq!(out.len(), 2);
        for line in &out {
            assert!(!line.contains('\n') && !line.contains('\u{1b}') && !line.contains('\u{7}'), "{line:?}");
        }
        assert!(out[0].ends_with("disk:/V/2026-12-01/docs/report (\\n2026-12-09  fake line).txt"), "{}", out[0]);
    }

    #[test]
    fn a_version_the_disk_shows_no_sha256_for_is_not_restored() {
        // Finding 18: without a sha256 the download was taken unchecked.
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("local")).unwrap();
        let text =
            format!("token = t\nlocal_dir = {0}/local\nremote_dir = /r\nstate_file = {0}/s.json\nbackup_dir = /V\n", t.path().display());
        let cfg = crate::config::parse(Path::new("/etc/y.conf"), &text, &|_| None).unwrap();
        let mut disk = MemDisk::with_folder("/V");
        disk.dirs.insert("/V/2026-12-07".into());
        disk.files.insert("/V/2026-12-07/a.txt".into(), b"what arrives".to_vec());
        disk.slow_hash.insert("/V/2026-12-07/a.txt".into(), u64::MAX);
        let r = Restore { path: "a.txt", date: None, to: Some(Path::new("back.txt")), force: false };
        assert_eq!(restore(&cfg, &mut disk, &r), Exit::Failed);
        assert!(!t.path().join("local/back.txt").exists(), "nothing written");
        assert_eq!(disk.called("download"), 0, "not even downloaded");
        disk.slow_hash.clear();
        assert_eq!(restore(&cfg, &mut disk, &r), Exit::Ok);
        assert_eq!(std::fs::read(t.path().join("local/back.txt")).unwrap(), b"what arrives");
    }
}
