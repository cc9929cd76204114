//! `ysync versions PATH` and `ysync restore PATH`: the old versions that
//! `backup_dir` keeps ([`crate::exec`]'s `versions.rs` writes them), and
//! one of them brought back. `restore` is the only command that writes
//! into `local_dir`, and only the one file asked for: to a new name by
//! default, never over an existing file without `--force`, streamed to a
//! temporary file, its sha256 checked, then renamed into place.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::digest::Hex;
use crate::exit::Exit;
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
fn relative(cfg: &Config, path: &str) -> Result<String, String> {
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
        eprintln!("ysync: no backup_dir in the config, so no versions are kept; set backup_dir = disk:/… (see the README)");
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
    for v in &found {
        let what = if v.dir { "folder".to_string() } else { human_bytes(v.size) };
        let sha = v.sha256.map(|h| h.to_string()[..12].to_string()).unwrap_or_else(|| "-".into());
        let parent = rel.rsplit_once('/').map_or(String::new(), |(p, _)| format!("{p}/"));
        println!("{}  {what:>10}  sha256 {sha}  disk:{backup}/{}/{parent}{}", v.day, v.day, v.name);
    }
    Exit::Ok
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
    let dest = destination(cfg, &rel, &v.day, r.to);
    if dest.exists() && !r.force {
        eprintln!("ysync: {} exists; not overwritten (add --force, or choose another --to)", dest.display());
        return Exit::Usage;
    }
    let parent = remote::join(&remote::join(backup, &v.day), rel.rsplit_once('/').map_or("", |(p, _)| p));
    let source = remote::join(&parent, &v.name);
    match fetch(disk, &source, &dest, v.sha256) {
        Ok(size) => {
            println!("restored {rel} from {} ({}) to {}", v.day, human_bytes(size), dest.display());
            Exit::Ok
        }
        Err(e) => {
            eprintln!("ysync: restoring disk:{source} to {}: {e}; nothing was written", dest.display());
            Exit::Failed
        }
    }
}

/// `--to` (relative to local_dir when relative), or beside the file with
/// the day in its name: `a/report (restored 2026-12-07).docx`.
fn destination(cfg: &Config, rel: &str, day: &str, to: Option<&Path>) -> PathBuf {
    if let Some(to) = to {
        return if to.is_absolute() { to.to_path_buf() } else { cfg.local_dir.join(to) };
    }
    let (parent, name) = rel.rsplit_once('/').map_or(("", rel), |(p, n)| (p, n));
    let (stem, ext) = crate::exec::stem_ext(name);
    let named = format!("{stem} (restored {day}){ext}");
    cfg.local_dir.join(parent).join(named)
}

/// Downloads `source` to a temporary file beside `dest`, checks its
/// sha256, and renames it into place; the temporary file goes on failure.
fn fetch(disk: &mut dyn Remote, source: &str, dest: &Path, sha256: Option<Hex<32>>) -> Result<u64, String> {
    let dir = dest.parent().ok_or("no folder to write in")?;
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let temp = dir.join(format!(".ysync-restore-{}.part", std::process::id()));
    let file =
        OpenOptions::new().write(true).create_new(true).open(&temp).map_err(|e| format!("cannot write in {}: {e}", dir.display()))?;
    let mut out = HashingWriter { file, sha: Sha256::new() };
    let result = disk.download(source, &mut out).map_err(|e| e.to_string()).and_then(|n| {
        let got = Hex(out.sha.clone().finalize().into());
        match sha256 {
            Some(want) if want != got => Err(format!("the download's sha256 {got} is not the version's {want}")),
            _ => out.file.sync_all().map(|_| n).map_err(|e| e.to_string()),
        }
    });
    match result.and_then(|n| fs::rename(&temp, dest).map(|_| n).map_err(|e| e.to_string())) {
        Ok(n) => Ok(n),
        Err(e) => {
            let _ = fs::remove_file(&temp);
            Err(e)
        }
    }
}

struct HashingWriter {
    file: File,
    sha: Sha256,
}

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.sha.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

fn failed(e: Error) -> Exit {
    eprintln!("ysync: {e}");
    match e {
        Error::Unauthorized | Error::Forbidden(_) => Exit::Rejected,
        _ => Exit::Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{MemDisk, sha};

    #[test]
    fn a_download_whose_sha256_differs_leaves_nothing_behind() {
        let t = tempfile::tempdir().unwrap();
        let mut disk = MemDisk::default();
        disk.files.insert("/V/2026-12-07/a.txt".into(), b"evil".to_vec());
        let dest = t.path().join("a (restored 2026-12-07).txt");
        let err = fetch(&mut disk, "/V/2026-12-07/a.txt", &dest, Some(sha(b"good"))).unwrap_err();
        assert!(err.contains("is not the version's"), "{err}");
        assert_eq!(fs::read_dir(t.path()).unwrap().count(), 0, "neither the file nor its temporary");
        assert_eq!(fetch(&mut disk, "/V/2026-12-07/a.txt", &dest, Some(sha(b"evil"))).unwrap(), 4);
        assert_eq!(fs::read(&dest).unwrap(), b"evil");
    }
}
