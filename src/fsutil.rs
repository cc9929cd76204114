//! The file system, as the rest of ysync needs it: files replaced
//! atomically (borg's `SaveFile`, restic's `Save`), a test of whether a
//! folder is writable, and the crash points the kill tests stop at.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// Temp file (written by `fill`), fsync, rename over the target, fsync the
/// folder. The temp file is made afresh with `mode` (less the umask), so a
/// secret never sits in a file that others can read, even for a moment.
pub fn write_atomically(path: &Path, mode: u32, fill: impl FnOnce(&mut io::BufWriter<File>) -> io::Result<()>) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = suffixed(path, ".tmp");
    match fs::remove_file(&tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    {
        let file = OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp)?;
        let mut w = io::BufWriter::with_capacity(64 << 10, file);
        fill(&mut w)?;
        let file = w.into_inner().map_err(io::IntoInnerError::into_error)?;
        crash_point(&tmp);
        file.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    File::open(dir)?.sync_all()
}

/// Whether a file can be created in `dir`: tries one and removes it.
pub fn can_write_in(dir: &Path) -> io::Result<()> {
    let probe = dir.join(format!("{}probe-{}", crate::media::TEMP_PREFIX, std::process::id()));
    File::create(&probe)?;
    fs::remove_file(&probe)
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
    let len = fs::metadata(file).map_or(0, |m| m.len());
    let mut durable = DURABLE.lock().unwrap_or_else(|e| e.into_inner());
    let before = durable.iter().find(|(p, _)| p == file).map_or(0, |(_, l)| *l).min(len);
    if at("YSYNC_TEST_POWER_CUT_AT_SYNC") {
        let _ = OpenOptions::new().write(true).open(file).and_then(|f| f.set_len(before + (len - before) / 2));
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
