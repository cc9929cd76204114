//! `ysync versions PATH` and `ysync restore PATH`: the old versions that
//! `backup_dir` keeps ([`crate::exec`]'s `versions.rs` writes them), and
//! one of them brought back. `restore` is the only command that writes
//! into `local_dir`, and only the one file asked for: to a new name by
//! default, never over an existing file without `--force`, streamed to a
//! temporary file, its sha256 checked, then renamed into place.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::digest::Hex;
use crate::exit::Exit;
use crate::fsutil::Dir;
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
    match fetch(disk, &source, &target, &name, (v.size, sha256), r.force) {
        Ok(size) => {
            println!("restored {rel} from {} ({}) to {}", v.day, human_bytes(size), logging::one_line(&shown.display().to_string()));
            Exit::Ok
        }
        Err(Fetch::Exists) => {
            eprintln!(
                "ysync: {} appeared while it was being restored; not overwritten (add --force, or choose another --to)",
                shown.display()
            );
            Exit::Usage
        }
        Err(Fetch::Failed(e)) => {
            eprintln!("ysync: restoring disk:{source} to {}: {e}; nothing was written", shown.display());
            Exit::Failed
        }
    }
}

/// A folder a restore writes in, open, and what its files get there: the
/// folder's own read and write bits (a file is no more readable than the
/// folder it is in) and, when root restores, the folder's owner.
pub struct Target {
    pub dir: Dir,
    pub mode: u32,
    pub owner: Option<(u32, u32)>,
}

impl Target {
    fn of(dir: Dir) -> Result<Target, String> {
        let m = dir.meta().map_err(|e| format!("{}: {e}", dir.path().display()))?;
        let owner = (crate::fsutil::sys::euid() == 0).then_some((m.uid, m.gid));
        Ok(Target { mode: m.perm() & 0o666, owner, dir })
    }
}

/// Where a restore writes, and the name there: `--to` (relative to
/// local_dir when relative), or beside the file with the day in its name:
/// `a/report (restored 2026-12-07).docx`. Inside local_dir every folder
/// is opened below local_dir a component at a time and never through a
/// link (a share user may have swapped one in), and missing ones are made
/// like their parent. Outside it, links in `--to` are followed only when
/// ysync is not root.
fn destination(cfg: &Config, rel: &str, day: &str, to: Option<&Path>) -> Result<(Target, String, PathBuf), String> {
    let inside = |rel: &str| -> Result<(Target, String, PathBuf), String> {
        let (parent, name) = rel.rsplit_once('/').unwrap_or(("", rel));
        let root = Dir::open(&cfg.local_dir).map_err(|e| format!("local_dir {}: {e}", cfg.local_dir.display()))?;
        let dir = make_beneath(&root, parent)?;
        Ok((Target::of(dir)?, name.to_string(), cfg.local_dir.join(rel)))
    };
    let Some(to) = to else {
        let (parent, name) = rel.rsplit_once('/').map_or(("", rel), |(p, n)| (p, n));
        let (stem, ext) = crate::exec::stem_ext(name);
        let named = format!("{stem} (restored {day}){ext}");
        return inside(&if parent.is_empty() { named } else { format!("{parent}/{named}") });
    };
    let within = if to.is_absolute() { to.strip_prefix(&cfg.local_dir).ok() } else { Some(to) };
    if let Some(within) = within {
        let rel = within.to_str().ok_or("--to: the path is not UTF-8")?.trim_matches('/');
        if rel.is_empty() || rel.split('/').any(|c| c == "." || c == "..") {
            return Err(format!("--to {}: give a file's path, without . or ..", to.display()));
        }
        return inside(rel);
    }
    let name = to.file_name().and_then(|n| n.to_str()).ok_or("--to: give a file's path with a UTF-8 name")?.to_string();
    let parent = to.parent().unwrap_or(Path::new("/"));
    let dir = if crate::fsutil::sys::euid() == 0 {
        // Not through a link: someone else's link would choose where root writes.
        let plain: PathBuf = parent.components().collect();
        if fs::canonicalize(parent).is_ok_and(|real| real != plain) {
            return Err(format!(
                "--to {}: its folder {} leads through a symbolic link, which ysync does not follow when root restores; give the real path ({})",
                to.display(),
                parent.display(),
                fs::canonicalize(parent).map(|p| p.display().to_string()).unwrap_or_default()
            ));
        }
        let top = Dir::open(Path::new("/")).map_err(|e| format!("/: {e}"))?;
        make_beneath(&top, plain.strip_prefix("/").unwrap_or(&plain).to_str().ok_or("--to: the path is not UTF-8")?)?
    } else {
        fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        Dir::open(parent).map_err(|e| format!("{}: {e}", parent.display()))?
    };
    Ok((Target::of(dir)?, name, to.to_path_buf()))
}

/// The folder `rel` below `top`, a component at a time, never through a
/// link; a missing one is made with its parent's mode and, when root makes
/// it, its parent's owner.
pub fn make_beneath(top: &Dir, rel: &str) -> Result<Dir, String> {
    let mut here = top.beneath("").map_err(|e| format!("{}: {e}", top.path().display()))?;
    for part in rel.split('/').filter(|p| !p.is_empty()) {
        let next = match here.sub(part) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let parent = here.meta().map_err(|e| format!("{}: {e}", here.path().display()))?;
                here.mkdir(part, 0o700).map_err(|e| format!("cannot create {}: {e}", here.join(part).display()))?;
                let made = here.sub(part).map_err(|e| format!("{}: {e}", here.join(part).display()))?;
                let owner = (crate::fsutil::sys::euid() == 0).then_some((parent.uid, parent.gid));
                made.set_owner_mode(owner, parent.perm() & 0o777).map_err(|e| format!("{}: {e}", made.path().display()))?;
                Ok(made)
            }
            other => other,
        };
        here = next.map_err(|e| {
            if crate::fsutil::sys::is_link_error(&e) {
                format!("{} is a symbolic link; a restore never writes through one", here.join(part).display())
            } else {
                format!("{}: {e}", here.join(part).display())
            }
        })?;
    }
    Ok(here)
}

/// Why a download was not put in place.
#[derive(Debug, PartialEq, Eq)]
pub enum Fetch {
    /// Something appeared at the name meanwhile (without `force`).
    Exists,
    Failed(String),
}

/// Downloads `source` to a temporary file in the target folder (made new,
/// never through a link), checks that exactly the listed size arrived and
/// that its sha256 is the listed one, gives it the target's mode and owner,
/// and renames it to `name`: without `force` only if nothing is there, so
/// a file that appeared meanwhile is never replaced. The temporary file
/// goes on failure. The bytes written.
pub fn fetch(disk: &mut dyn Remote, source: &str, target: &Target, name: &str, want: (u64, Hex<32>), force: bool) -> Result<u64, Fetch> {
    let failed = |e: String| Fetch::Failed(e);
    let dir = &target.dir;
    let (temp, file) = (0..100)
        .find_map(|n| {
            let temp = format!("{}restore-{}-{n}.part", crate::media::TEMP_PREFIX, std::process::id());
            match dir.create(&temp, 0o600) {
                Err(e) if crate::fsutil::sys::is_exists(&e) => None,
                other => Some(other.map(|f| (temp, f))),
            }
        })
        .unwrap_or_else(|| Err(io::Error::other("no free temporary name")))
        .map_err(|e| failed(format!("cannot write in {}: {e}", dir.path().display())))?;
    let (size, sha256) = want;
    let mut out = HashingWriter { file, sha: Sha256::new(), written: 0, limit: size };
    let result = disk.download(source, &mut out).map_err(|e| e.to_string()).and_then(|n| {
        let got = Hex(out.sha.clone().finalize().into());
        if n != size {
            return Err(format!("{n} bytes arrived, the version has {size}"));
        }
        if got != sha256 {
            return Err(format!("the download's sha256 {got} is not the version's {sha256}"));
        }
        let f = &out.file;
        if let Some((uid, gid)) = target.owner {
            std::os::unix::fs::fchown(f, Some(uid), Some(gid)).map_err(|e| e.to_string())?;
        }
        f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(target.mode)).map_err(|e| e.to_string())?;
        f.sync_all().map(|_| n).map_err(|e| e.to_string())
    });
    let placed = result.map_err(failed).and_then(|n| {
        let renamed = if force { dir.rename(&temp, name) } else { dir.rename_new(&temp, name) };
        match renamed {
            Ok(()) => dir.sync().map(|()| n).map_err(|e| failed(e.to_string())),
            Err(e) if crate::fsutil::sys::is_exists(&e) => Err(Fetch::Exists),
            Err(e) => Err(failed(e.to_string())),
        }
    });
    if placed.is_err() {
        let _ = dir.remove(&temp);
    }
    placed
}

/// The download's sink: hashes what it writes, and refuses more than the
/// version's size (a server that does not stop cannot fill the disk).
struct HashingWriter {
    file: File,
    sha: Sha256,
    written: u64,
    limit: u64,
}

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.written + buf.len() as u64 > self.limit {
            return Err(io::Error::other(format!("more than the version's {} bytes arrived", self.limit)));
        }
        let n = self.file.write(buf)?;
        self.sha.update(&buf[..n]);
        self.written += n as u64;
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

    #[test]
    fn a_download_whose_sha256_or_size_differs_leaves_nothing_behind() {
        let t = tempfile::tempdir().unwrap();
        let mut disk = MemDisk::default();
        disk.files.insert("/V/2026-12-07/a.txt".into(), b"evil".to_vec());
        let target = Target::of(Dir::open(t.path()).unwrap()).unwrap();
        let name = "a (restored 2026-12-07).txt";
        let fetched = |disk: &mut MemDisk, want| fetch(disk, "/V/2026-12-07/a.txt", &target, name, want, false);
        let err = fetched(&mut disk, (4, sha(b"good"))).unwrap_err();
        assert!(matches!(&err, Fetch::Failed(e) if e.contains("is not the version's")), "{err:?}");
        // More than the listing says never lands, nor fewer.
        let err = fetched(&mut disk, (3, sha(b"evi"))).unwrap_err();
        assert!(matches!(&err, Fetch::Failed(e) if e.contains("more than the version's 3 bytes")), "{err:?}");
        let err = fetched(&mut disk, (5, sha(b"evil"))).unwrap_err();
        assert!(matches!(&err, Fetch::Failed(e) if e.contains("4 bytes arrived, the version has 5")), "{err:?}");
        assert_eq!(fs::read_dir(t.path()).unwrap().count(), 0, "neither the file nor its temporary");
        assert_eq!(fetched(&mut disk, (4, sha(b"evil"))).unwrap(), 4);
        assert_eq!(fs::read(t.path().join(name)).unwrap(), b"evil");
        // A second time, without force: not over the first.
        assert_eq!(fetched(&mut disk, (4, sha(b"evil"))).unwrap_err(), Fetch::Exists);
        assert_eq!(fs::read_dir(t.path()).unwrap().count(), 1, "no temporary left");
    }
}
