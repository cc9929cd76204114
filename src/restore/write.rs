//! The local side of a restore: where it writes, and how one file is put
//! there so that nothing local is ever lost and nothing outside is ever
//! touched. Every folder below `local_dir` (or below a destination root)
//! is opened a component at a time and never through a link; a file is
//! downloaded to a temporary name made new in its folder, checked (exactly
//! the listed size, the listed sha256), given its folder's mode and owner
//! and its own modification time, and renamed into place only where
//! nothing is, unless the caller keeps what is there aside first
//! ([`Aside`]).

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::digest::Hex;
use crate::fsutil::Dir;
use crate::remote::Remote;

use crate::media::ASIDE_PREFIX;

/// A folder a restore writes in, open, and what its files get there: the
/// folder's own read and write bits (a file is no more readable than the
/// folder it is in) and, when root restores, the folder's owner.
pub struct Target {
    pub dir: Dir,
    pub mode: u32,
    pub owner: Option<(u32, u32)>,
}

impl Target {
    pub fn of(dir: Dir) -> Result<Target, String> {
        let m = dir.meta().map_err(|e| format!("{}: {e}", dir.path().display()))?;
        let owner = (crate::fsutil::sys::euid() == 0).then_some((m.uid, m.gid));
        Ok(Target { mode: m.perm() & 0o666, owner, dir })
    }
}

/// The folder a restore writes into, open: `to` (relative to local_dir
/// when relative), or `default` below local_dir. Inside local_dir every
/// folder is opened below local_dir a component at a time and never
/// through a link (a share user may have swapped one in), and missing ones
/// are made like their parent (`create`). Outside it, links in `to` are
/// followed only when ysync is not root. Also its path, for messages.
pub fn folder(cfg: &Config, to: Option<&Path>, default: &str, create: bool) -> Result<(Option<Dir>, PathBuf), String> {
    let inside = |rel: &str| -> Result<(Option<Dir>, PathBuf), String> {
        let root = Dir::open(&cfg.local_dir).map_err(|e| format!("local_dir {}: {e}", cfg.local_dir.display()))?;
        Ok((open_below(&root, rel, create)?, cfg.local_dir.join(rel)))
    };
    let Some(to) = to else { return inside(default) };
    let within = if to.is_absolute() { to.strip_prefix(&cfg.local_dir).ok() } else { Some(to) };
    if let Some(within) = within {
        let rel = within.to_str().ok_or("--to: the path is not UTF-8")?.trim_matches('/');
        if rel.split('/').any(|c| c == "." || c == "..") {
            return Err(format!("--to {}: give a path without . or ..", to.display()));
        }
        return inside(rel);
    }
    if crate::fsutil::sys::euid() == 0 {
        // Not through a link: someone else's link would choose where root writes.
        let plain: PathBuf = to.components().collect();
        let mut real = plain.clone();
        while !real.exists() && real.pop() {}
        if let Ok(resolved) = std::fs::canonicalize(&real)
            && resolved != real
        {
            return Err(format!(
                "--to {}: {} leads through a symbolic link, which ysync does not follow when root restores; give the real path ({})",
                to.display(),
                real.display(),
                resolved.display()
            ));
        }
        let top = Dir::open(Path::new("/")).map_err(|e| format!("/: {e}"))?;
        let rel = plain.strip_prefix("/").unwrap_or(&plain).to_str().ok_or("--to: the path is not UTF-8")?.to_string();
        return Ok((open_below(&top, &rel, create)?, plain));
    }
    if create {
        std::fs::create_dir_all(to).map_err(|e| format!("cannot create {}: {e}", to.display()))?;
    }
    match Dir::open(to) {
        Ok(d) => Ok((Some(d), to.to_path_buf())),
        Err(e) if e.kind() == io::ErrorKind::NotFound && !create => Ok((None, to.to_path_buf())),
        Err(e) => Err(format!("{}: {e}", to.display())),
    }
}

/// `rel` below `top` ([`make_beneath`]), or with `create` false only what
/// is there (`None`: a folder on the way is missing).
pub fn open_below(top: &Dir, rel: &str, create: bool) -> Result<Option<Dir>, String> {
    if create {
        return make_beneath(top, rel, None).map(Some);
    }
    match top.beneath(rel) {
        Ok(d) => Ok(Some(d)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(link_message(top, rel, &e)),
    }
}

fn link_message(top: &Dir, rel: &str, e: &io::Error) -> String {
    if crate::fsutil::sys::is_link_error(e) {
        format!("{} leads through a symbolic link; a restore never writes through one", top.join(rel).display())
    } else {
        format!("{}: {e}", top.join(rel).display())
    }
}

/// The folder `rel` below `top`, a component at a time, never through a
/// link; a missing one is made with its parent's mode and, when root makes
/// it, its parent's owner. Something else in the way (a file, a link) is
/// an error, or with an `aside` is kept there first.
pub fn make_beneath(top: &Dir, rel: &str, mut aside: Option<&mut Aside>) -> Result<Dir, String> {
    let mut here = top.beneath("").map_err(|e| format!("{}: {e}", top.path().display()))?;
    let mut below = String::new();
    for part in rel.split('/').filter(|p| !p.is_empty()) {
        let mut attempt = here.sub(part);
        if let (Err(e), Some(keeper)) = (&attempt, aside.as_deref_mut())
            && e.kind() != io::ErrorKind::NotFound
            && here.stat(part).is_ok_and(|m| m.kind() != crate::fsutil::Kind::Dir)
        {
            keeper.keep(&here, &below, part)?;
            attempt = here.sub(part);
        }
        let next = match attempt {
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
                format!("{} is a symbolic link, where a folder must go; a restore never writes through one", here.join(part).display())
            } else if e.kind() == io::ErrorKind::NotADirectory {
                format!("{} is a file, where a folder must go", here.join(part).display())
            } else {
                format!("{}: {e}", here.join(part).display())
            }
        })?;
        below = if below.is_empty() { part.to_string() } else { format!("{below}/{part}") };
    }
    Ok(here)
}

/// Where a restore with `--force` keeps what it replaces:
/// `.ysync-replaced-<UTC time>/<path>` at the top of the destination,
/// made when first needed. The walk never mirrors it, so the next cycle
/// neither uploads it nor takes its files for deleted ones.
pub struct Aside {
    top: Dir,
    name: String,
    /// What was kept aside.
    pub kept: u64,
}

impl Aside {
    pub fn new(top: &Dir) -> io::Result<Aside> {
        let stamp = crate::units::utc(crate::units::now_secs()).replace([':', '-'], "");
        Ok(Aside { top: top.beneath("")?, name: format!("{}{ASIDE_PREFIX}{stamp}", crate::media::TEMP_PREFIX), kept: 0 })
    }

    /// Its path, for messages.
    pub fn path(&self) -> PathBuf {
        self.top.join(&self.name)
    }

    /// Moves `name` of `from` (which is `parent` below the top) aside,
    /// keeping its path. A rename: nothing is copied or lost.
    pub fn keep(&mut self, from: &Dir, parent: &str, name: &str) -> Result<(), String> {
        let rel = if parent.is_empty() { self.name.clone() } else { format!("{}/{parent}", self.name) };
        let into = make_beneath(&self.top, &rel, None)?;
        from.move_into(name, &into, name)
            .map_err(|e| format!("keeping {} aside in {}: {e}", from.join(name).display(), into.path().display()))?;
        self.kept += 1;
        Ok(())
    }
}

/// Why a download was not put in place.
#[derive(Debug, PartialEq, Eq)]
pub enum Fetch {
    /// Something appeared at the name meanwhile (and nothing keeps it aside).
    Exists,
    /// The Disk refused the token.
    Rejected(String),
    Failed(String),
}

/// What a download must turn out to be.
#[derive(Clone, Copy, Debug)]
pub struct Want {
    pub size: u64,
    pub sha256: Hex<32>,
    /// Its modification time, set before it is put in place.
    pub mtime_ns: Option<i64>,
}

/// Downloads `source` to a temporary file in the target folder (made new,
/// never through a link), checks that exactly the listed size arrived and
/// that its sha256 is the listed one, gives it the target's mode and owner
/// and its time, and renames it to `name` only if nothing is there: what
/// is there is kept `aside` first when one is given (at `parent`, its path
/// below the aside's top), else left alone (`Exists`). The temporary file
/// goes on failure. `sent` hears of every byte. The bytes written.
pub fn fetch(
    disk: &mut dyn Remote,
    source: &str,
    target: &Target,
    name: &str,
    want: Want,
    mut aside: Option<(&mut Aside, &str)>,
    sent: &mut dyn FnMut(u64),
) -> Result<u64, Fetch> {
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
    let mut out = HashingWriter { file, sha: Sha256::new(), written: 0, limit: want.size, sent };
    let mut rejected = false;
    let result = disk.download(source, &mut out).map_err(|e| {
        rejected = e.is_rejection();
        e.to_string()
    });
    let result = result.and_then(|n| {
        let got = Hex(out.sha.clone().finalize().into());
        if n != want.size {
            return Err(format!("{n} bytes arrived, the Disk lists {}", want.size));
        }
        if got != want.sha256 {
            return Err(format!("the download's sha256 {got} is not the listed {}", want.sha256));
        }
        let f = &out.file;
        if let Some((uid, gid)) = target.owner {
            std::os::unix::fs::fchown(f, Some(uid), Some(gid)).map_err(|e| e.to_string())?;
        }
        f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(target.mode)).map_err(|e| e.to_string())?;
        if let Some(ns) = want.mtime_ns {
            f.set_modified(time_of(ns)).map_err(|e| e.to_string())?;
        }
        crate::fsutil::crash_point(&dir.join(&temp));
        f.sync_all().map(|_| n).map_err(|e| e.to_string())
    });
    let placed = result.map_err(|e| if rejected { Fetch::Rejected(e) } else { failed(e) }).and_then(|n| {
        loop {
            match dir.rename_new(&temp, name) {
                Ok(()) => break dir.sync().map(|()| n).map_err(|e| failed(e.to_string())),
                Err(e) if crate::fsutil::sys::is_exists(&e) => match aside.as_mut() {
                    Some((keeper, parent)) => keeper.keep(dir, parent, name).map_err(failed)?,
                    None => break Err(Fetch::Exists),
                },
                Err(e) => break Err(failed(e.to_string())),
            }
        }
    });
    if placed.is_err() {
        let _ = dir.remove(&temp);
    }
    placed
}

/// `ns` since the epoch as a `SystemTime` (before 1970 too).
pub fn time_of(ns: i64) -> std::time::SystemTime {
    let epoch = std::time::UNIX_EPOCH;
    let d = std::time::Duration::from_nanos(ns.unsigned_abs());
    if ns >= 0 { epoch + d } else { epoch - d }
}

/// Removes the temporary files that a restore killed before it ended left
/// in `dir` (`.ysync-restore-<pid>-<n>.part` of a process that is gone,
/// or of this one: a fetch removes its own before it returns, and none is
/// under way while a folder is prepared), so that a second run finishes
/// the job with nothing left behind.
pub fn clear_stale(dir: &Dir) {
    let prefix = format!("{}restore-", crate::media::TEMP_PREFIX);
    for (name, _) in dir.names().unwrap_or_default() {
        let Ok(name) = String::from_utf8(name) else { continue };
        let pid = name.strip_prefix(&prefix).and_then(|r| r.split('-').next()).and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid.filter(|p| *p == std::process::id() || !crate::fsutil::sys::alive(*p))
            && name.ends_with(".part")
        {
            log::info!("removed {}, left by a restore (pid {pid}) that did not end", dir.join(&name).display());
            let _ = dir.remove(&name);
        }
    }
}

/// The download's sink: hashes what it writes, and refuses more than the
/// listed size (a server that does not stop cannot fill the disk).
struct HashingWriter<'s> {
    file: File,
    sha: Sha256,
    written: u64,
    limit: u64,
    sent: &'s mut dyn FnMut(u64),
}

impl Write for HashingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.written + buf.len() as u64 > self.limit {
            return Err(io::Error::other(format!("more than the listed {} bytes arrived", self.limit)));
        }
        let n = self.file.write(buf)?;
        self.sha.update(&buf[..n]);
        self.written += n as u64;
        (self.sent)(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{MemDisk, sha};

    #[test]
    fn a_download_whose_sha256_or_size_differs_leaves_nothing_behind() {
        let t = tempfile::tempdir().unwrap();
        let mut disk = MemDisk::default();
        disk.files.insert("/V/2026-12-07/a.txt".into(), b"evil".to_vec());
        let target = Target::of(Dir::open(t.path()).unwrap()).unwrap();
        let name = "a (restored 2026-12-07).txt";
        let want = |size, sha256| Want { size, sha256, mtime_ns: Some(1_700_000_000_123_456_789) };
        let fetched = |disk: &mut MemDisk, want| fetch(disk, "/V/2026-12-07/a.txt", &target, name, want, None, &mut |_| {});
        let err = fetched(&mut disk, want(4, sha(b"good"))).unwrap_err();
        assert!(matches!(&err, Fetch::Failed(e) if e.contains("is not the listed")), "{err:?}");
        // More than the listing says never lands, nor fewer.
        let err = fetched(&mut disk, want(3, sha(b"evi"))).unwrap_err();
        assert!(matches!(&err, Fetch::Failed(e) if e.contains("more than the listed 3 bytes")), "{err:?}");
        let err = fetched(&mut disk, want(5, sha(b"evil"))).unwrap_err();
        assert!(matches!(&err, Fetch::Failed(e) if e.contains("4 bytes arrived, the Disk lists 5")), "{err:?}");
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 0, "neither the file nor its temporary");
        assert_eq!(fetched(&mut disk, want(4, sha(b"evil"))).unwrap(), 4);
        assert_eq!(std::fs::read(t.path().join(name)).unwrap(), b"evil");
        let m = std::fs::metadata(t.path().join(name)).unwrap();
        assert_eq!(m.modified().unwrap(), time_of(1_700_000_000_123_456_789), "its time set");
        // A second time, without an aside: not over the first.
        assert_eq!(fetched(&mut disk, want(4, sha(b"evil"))).unwrap_err(), Fetch::Exists);
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 1, "no temporary left");
    }

    #[test]
    fn what_is_in_the_way_is_kept_aside_with_its_path() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("a")).unwrap();
        std::fs::write(t.path().join("a/b"), "a file where a folder must go").unwrap();
        std::fs::write(t.path().join("a/x.txt"), "mine").unwrap();
        let top = Dir::open(t.path()).unwrap();
        assert!(make_beneath(&top, "a/b", None).unwrap_err().contains("is a file, where a folder must go"));
        let mut aside = Aside::new(&top).unwrap();
        let b = make_beneath(&top, "a/b", Some(&mut aside)).unwrap();
        assert!(b.meta().unwrap().kind() == crate::fsutil::Kind::Dir);
        let kept = aside.path().join("a/b");
        assert_eq!(std::fs::read_to_string(&kept).unwrap(), "a file where a folder must go");
        let mut disk = MemDisk::default();
        disk.files.insert("/r/a/x.txt".into(), b"theirs".to_vec());
        let target = Target::of(top.beneath("a").unwrap()).unwrap();
        let want = Want { size: 6, sha256: sha(b"theirs"), mtime_ns: None };
        fetch(&mut disk, "/r/a/x.txt", &target, "x.txt", want, Some((&mut aside, "a")), &mut |_| {}).unwrap();
        assert_eq!(std::fs::read_to_string(t.path().join("a/x.txt")).unwrap(), "theirs");
        assert_eq!(std::fs::read_to_string(aside.path().join("a/x.txt")).unwrap(), "mine", "nothing local lost");
        assert_eq!(aside.kept, 2);
        assert!(crate::scan::is_own_temporary(aside.path().file_name().unwrap().to_str().unwrap()), "never mirrored");
    }
}
