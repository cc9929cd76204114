//! The file system, as the rest of ysync needs it: an open folder that
//! never follows a link ([`Dir`], over the few system calls of [`sys`]),
//! files replaced atomically in one (borg's `SaveFile`, restic's `Save`),
//! who may write in the folders ysync keeps its own files in, and the crash
//! points the kill tests stop at.

mod dir;
pub mod sys;

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

pub use dir::{Dir, Kind, meta_of};
pub use sys::Meta;

/// Writes `name` in `dir` atomically: a temporary file (`name.tmp`, a
/// leftover of a crash removed first) created new, filled by `fill`, given
/// exactly `mode`, made durable, renamed over `name`, and the folder made
/// durable. The temporary file starts at `mode` less the umask, so a secret
/// never sits in a file others can read, even for a moment, and ends at
/// `mode` itself (a token file keeps the mode it had).
pub fn write_atomically(dir: &Dir, name: &str, mode: u32, fill: impl FnOnce(&mut io::BufWriter<File>) -> io::Result<()>) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let tmp = format!("{name}.tmp");
    match dir.remove(&tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    {
        let file = dir.create(&tmp, mode & 0o777)?;
        let mut w = io::BufWriter::with_capacity(64 << 10, file);
        fill(&mut w)?;
        let file = w.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.set_permissions(std::fs::Permissions::from_mode(mode & 0o777))?;
        crash_point(&dir.join(&tmp));
        file.sync_all()?;
    }
    dir.rename(&tmp, name)?;
    dir.sync()
}

/// Whether this process may create files in `dir`, asked without creating
/// one (`access`): a probe file would be a name others could plant a link at.
pub fn may_write_in(dir: &Path) -> io::Result<()> {
    sys::may_write(dir)
}

/// Why a folder ysync writes its own files in (the state's, the token's)
/// or a config file it takes commands from is not safe for this process,
/// if it is not: when a user other than this process's own and root can
/// write it, that user could plant names (links, hard links, files of
/// their own) where ysync writes, or change what it runs. A process of root
/// may write `for_owner` in a folder of one other user who alone can write
/// it (a token file handed to the service user); nothing else.
pub fn untrusted(meta: &Meta, path: &Path, for_owner: bool) -> Option<String> {
    let what = if meta.kind() == Kind::Dir { "folder" } else { "file" };
    let me = sys::euid();
    let mode = meta.perm();
    if mode & 0o022 != 0 {
        let who = if mode & 0o002 != 0 { "every user" } else { "its group" };
        return Some(format!(
            "{what} {} can be written by {who} (mode {mode:04o}), who could redirect what ysync writes; run: chmod go-w {}",
            path.display(),
            path.display()
        ));
    }
    if meta.uid == me || meta.uid == 0 || (me == 0 && for_owner) {
        return None;
    }
    let owner = user_name(meta.uid).map_or(format!("uid {}", meta.uid), |n| format!("{n} (uid {})", meta.uid));
    Some(if me == 0 {
        format!(
            "{what} {} belongs to {owner}, and ysync runs as root: that user could make root write or run what they choose. \
             Run ysync as that user (runuser -u {} -- ysync …, or the service), or give it to root: chown root {}",
            path.display(),
            user_name(meta.uid).unwrap_or_else(|| meta.uid.to_string()),
            path.display()
        )
    } else {
        format!(
            "{what} {} belongs to {owner}, and ysync runs as uid {me}; run ysync as its owner, or choose a place of your own",
            path.display()
        )
    })
}

/// The name of the user `uid`, from `/etc/passwd`.
pub fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        (f.nth(1)?.parse::<u32>().ok()? == uid).then(|| name.to_string())
    })
}

/// Tests only, in debug builds: `YSYNC_TEST_CRASH_AT_SYNC=N` ends the
/// process at the Nth point where a state file is about to be made durable,
/// as `kill -9` would there (what was written stays in the page cache).
/// `YSYNC_TEST_POWER_CUT_AT_SYNC=N` also loses half of what was written to
/// that file since it was last made durable, as a power cut can, tearing a
/// line. Release builds have neither.
#[cfg(debug_assertions)]
pub fn crash_point(file: &Path) {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEEN: AtomicU64 = AtomicU64::new(0);
    static DURABLE: Mutex<Vec<(PathBuf, u64)>> = Mutex::new(Vec::new());
    let n = SEEN.fetch_add(1, Ordering::SeqCst) + 1;
    let at = |var: &str| std::env::var(var).ok().and_then(|v| v.parse::<u64>().ok()) == Some(n);
    let len = std::fs::metadata(file).map_or(0, |m| m.len());
    let mut durable = DURABLE.lock().unwrap_or_else(|e| e.into_inner());
    let before = durable.iter().find(|(p, _)| p == file).map_or(0, |(_, l)| *l).min(len);
    if at("YSYNC_TEST_POWER_CUT_AT_SYNC") {
        let _ = std::fs::OpenOptions::new().write(true).open(file).and_then(|f| f.set_len(before + (len - before) / 2));
        eprintln!("test: power cut at state sync point {n} ({})", file.display());
        std::process::abort();
    }
    if at("YSYNC_TEST_CRASH_AT_SYNC") {
        eprintln!("test: crash at state sync point {n} ({})", file.display());
        std::process::abort();
    }
    durable.retain(|(p, _)| p != file);
    durable.push((file.to_path_buf(), len));
}

#[cfg(not(debug_assertions))]
pub fn crash_point(_: &Path) {}

pub fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}
