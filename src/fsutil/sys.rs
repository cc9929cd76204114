//! The few system calls std does not offer, declared by hand: glibc and
//! musl both have them, so no crate is needed (README, "Dependencies").
//! Opening, creating and renaming relative to an open folder without
//! following symbolic links (the `*at` family), reading a folder from its
//! descriptor, `statx`, and three process controls. Every `unsafe` block
//! of ysync's own is in this file.
//!
//! The flag values are the kernel's, which differ between architectures;
//! those ysync is built for (x86_64, aarch64, 32-bit ARM) are spelled out,
//! and an architecture without a known `statx` or `renameat2` number uses
//! the fallbacks below, never a guess.

use std::ffi::{CStr, CString, c_char, c_int, c_long, c_uint, c_void};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

unsafe extern "C" {
    fn openat(dirfd: c_int, path: *const c_char, flags: c_int, ...) -> c_int;
    fn renameat(olddirfd: c_int, old: *const c_char, newdirfd: c_int, new: *const c_char) -> c_int;
    fn linkat(olddirfd: c_int, old: *const c_char, newdirfd: c_int, new: *const c_char, flags: c_int) -> c_int;
    fn unlinkat(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int;
    fn mkdirat(dirfd: c_int, path: *const c_char, mode: c_uint) -> c_int;
    fn fdopendir(fd: c_int) -> *mut c_void;
    // glibc's 64-bit reader; musl's `readdir` is 64-bit already.
    #[cfg_attr(target_env = "gnu", link_name = "readdir64")]
    fn readdir(dir: *mut c_void) -> *const Dirent;
    fn closedir(dir: *mut c_void) -> c_int;
    fn access(path: *const c_char, mode: c_int) -> c_int;
    fn geteuid() -> c_uint;
    fn kill(pid: c_int, sig: c_int) -> c_int;
    fn prctl(option: c_int, ...) -> c_int;
    fn syscall(number: c_long, ...) -> c_long;
    fn __errno_location() -> *mut c_int;
}

// open(2) flags. mips has its own values for most of them.
#[cfg(any(target_arch = "mips", target_arch = "mips64"))]
mod flags {
    pub const O_CREAT: i32 = 0x100;
    pub const O_EXCL: i32 = 0x400;
    pub const O_APPEND: i32 = 0x8;
    pub const O_NONBLOCK: i32 = 0x80;
}
#[cfg(not(any(target_arch = "mips", target_arch = "mips64")))]
mod flags {
    pub const O_CREAT: i32 = 0o100;
    pub const O_EXCL: i32 = 0o200;
    pub const O_APPEND: i32 = 0o2000;
    pub const O_NONBLOCK: i32 = 0o4000;
}
// arm, aarch64 and powerpc move these two (asm/fcntl.h).
#[cfg(any(target_arch = "arm", target_arch = "aarch64", target_arch = "powerpc", target_arch = "powerpc64"))]
mod dirflags {
    pub const O_DIRECTORY: i32 = 0o40000;
    pub const O_NOFOLLOW: i32 = 0o100000;
}
#[cfg(not(any(target_arch = "arm", target_arch = "aarch64", target_arch = "powerpc", target_arch = "powerpc64")))]
mod dirflags {
    pub const O_DIRECTORY: i32 = 0o200000;
    pub const O_NOFOLLOW: i32 = 0o400000;
}
pub use dirflags::{O_DIRECTORY, O_NOFOLLOW};
pub use flags::O_NONBLOCK;
use flags::{O_APPEND, O_CREAT, O_EXCL};
const O_RDONLY: i32 = 0;
const O_WRONLY: i32 = 1;
const O_RDWR: i32 = 2;
const O_CLOEXEC: i32 = 0o2000000;
const O_PATH: i32 = 0o10000000;

const AT_FDCWD: c_int = -100;
const AT_SYMLINK_NOFOLLOW: c_int = 0x100;
const AT_EMPTY_PATH: c_int = 0x1000;
const W_OK: c_int = 2;
const X_OK: c_int = 1;
const PR_SET_DUMPABLE: c_int = 4;
const RENAME_NOREPLACE: c_uint = 1;
pub const SIGTERM: c_int = 15;
pub const SIGKILL: c_int = 9;

#[cfg(any(target_arch = "mips", target_arch = "mips64"))]
const ELOOP: i32 = 90;
#[cfg(not(any(target_arch = "mips", target_arch = "mips64")))]
const ELOOP: i32 = 40;
#[cfg(any(target_arch = "mips", target_arch = "mips64"))]
const ENOSYS: i32 = 89;
#[cfg(not(any(target_arch = "mips", target_arch = "mips64")))]
const ENOSYS: i32 = 38;
const EINVAL: i32 = 22;
const EPERM: i32 = 1;
const EEXIST: i32 = 17;

/// `statx` (Linux 4.11) and `renameat2` (3.15) by number; `None` where the
/// number is not known here, and then the fallbacks are used.
#[cfg(target_arch = "x86_64")]
const SYS: Option<(c_long, c_long)> = Some((332, 316));
#[cfg(any(target_arch = "aarch64", target_arch = "riscv64", target_arch = "loongarch64"))]
const SYS: Option<(c_long, c_long)> = Some((291, 276));
#[cfg(target_arch = "arm")]
const SYS: Option<(c_long, c_long)> = Some((397, 382));
#[cfg(target_arch = "x86")]
const SYS: Option<(c_long, c_long)> = Some((383, 353));
#[cfg(not(any(
    target_arch = "x86_64",
    target_arch = "aarch64",
    target_arch = "riscv64",
    target_arch = "loongarch64",
    target_arch = "arm",
    target_arch = "x86"
)))]
const SYS: Option<(c_long, c_long)> = None;

/// A folder entry as `readdir` gives it: the same layout in glibc's
/// `dirent64` and in musl's `dirent`, on every architecture.
#[repr(C)]
struct Dirent {
    d_ino: u64,
    d_off: i64,
    d_reclen: u16,
    d_type: u8,
    d_name: [c_char; 256],
}

/// The kernel's `struct statx`: one layout on every architecture.
#[repr(C)]
#[derive(Default)]
struct Statx {
    mask: u32,
    blksize: u32,
    attributes: u64,
    nlink: u32,
    uid: u32,
    gid: u32,
    mode: u16,
    _spare0: u16,
    ino: u64,
    size: u64,
    blocks: u64,
    attributes_mask: u64,
    atime: StatxTime,
    btime: StatxTime,
    ctime: StatxTime,
    mtime: StatxTime,
    rdev_major: u32,
    rdev_minor: u32,
    dev_major: u32,
    dev_minor: u32,
    _spare: [u64; 14],
}

#[repr(C)]
#[derive(Default)]
struct StatxTime {
    sec: i64,
    nsec: u32,
    _reserved: i32,
}

const STATX_BASIC_STATS: c_uint = 0x7ff;
const _: () = assert!(std::mem::size_of::<Statx>() == 256 && std::mem::offset_of!(Statx, mtime) == 112);
const _: () = assert!(std::mem::offset_of!(Dirent, d_name) == 19);

/// What a `stat` of one name says, whichever call made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// The `S_IFMT` bits and the permission bits.
    pub mode: u32,
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub nlink: u64,
    pub uid: u32,
    pub gid: u32,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
}

fn cstr(name: &[u8]) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a name holds a NUL byte"))
}

fn check(ret: c_int) -> io::Result<c_int> {
    if ret < 0 { Err(io::Error::last_os_error()) } else { Ok(ret) }
}

/// Is this the error of a symbolic link met where none is followed?
pub fn is_link_error(e: &io::Error) -> bool {
    e.raw_os_error() == Some(ELOOP)
}

/// That error (`ELOOP`).
pub fn link_error() -> io::Error {
    io::Error::from_raw_os_error(ELOOP)
}

/// The flags of an open relative to a folder.
#[derive(Clone, Copy)]
pub enum Open {
    /// A folder, to read and to open names in.
    Dir,
    /// A file to read, without blocking (a FIFO swapped in opens and is
    /// then refused by its type).
    Read,
    /// A new file, exclusively: an existing name (a planted link too) fails.
    CreateNew(u32),
    /// Created if missing, appended to (the journal).
    Append(u32),
    /// Created if missing, not truncated (the lock).
    Keep(u32),
    /// The name itself, to `stat` it (`O_PATH`; a link is not followed).
    Path,
}

/// `openat(dir, name)`, never following a link in `name` (one component).
pub fn open_at(dir: RawFd, name: &[u8], how: Open) -> io::Result<OwnedFd> {
    let name = cstr(name)?;
    let base = O_CLOEXEC | O_NOFOLLOW;
    let (flags, mode) = match how {
        Open::Dir => (O_RDONLY | O_DIRECTORY, 0),
        Open::Read => (O_RDONLY | O_NONBLOCK, 0),
        Open::CreateNew(m) => (O_WRONLY | O_CREAT | O_EXCL, m),
        Open::Append(m) => (O_RDWR | O_CREAT | O_APPEND, m),
        Open::Keep(m) => (O_RDWR | O_CREAT, m),
        Open::Path => (O_PATH, 0),
    };
    // SAFETY: `name` is a valid C string; the mode is read only with O_CREAT.
    let fd = check(unsafe { openat(dir, name.as_ptr(), base | flags, mode as c_uint) })?;
    // SAFETY: a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `renameat` from the folder `dir` to the folder `to_dir`; with `replace`
/// false the target must not exist (`renameat2(RENAME_NOREPLACE)`, else a
/// hard link and an unlink, which fail on an existing name just the same).
pub fn rename_at(dir: RawFd, from: &[u8], to_dir: RawFd, to: &[u8], replace: bool) -> io::Result<()> {
    let (from, to) = (cstr(from)?, cstr(to)?);
    if replace {
        // SAFETY: valid C strings.
        return check(unsafe { renameat(dir, from.as_ptr(), to_dir, to.as_ptr()) }).map(drop);
    }
    if let Some((_, renameat2)) = SYS {
        // SAFETY: valid C strings; the kernel's renameat2 arguments.
        let r = unsafe { syscall(renameat2, dir as c_long, from.as_ptr(), to_dir as c_long, to.as_ptr(), RENAME_NOREPLACE as c_long) };
        if r == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        // Not there (an old kernel, a seccomp filter), or not on this
        // file system: the link below does the same.
        if !matches!(e.raw_os_error(), Some(ENOSYS | EINVAL | EPERM)) {
            return Err(e);
        }
    }
    // SAFETY: valid C strings.
    check(unsafe { linkat(dir, from.as_ptr(), to_dir, to.as_ptr(), 0) })?;
    // SAFETY: as above.
    check(unsafe { unlinkat(dir, from.as_ptr(), 0) }).map(drop)
}

pub fn unlink_at(dir: RawFd, name: &[u8]) -> io::Result<()> {
    let name = cstr(name)?;
    // SAFETY: a valid C string.
    check(unsafe { unlinkat(dir, name.as_ptr(), 0) }).map(drop)
}

pub fn mkdir_at(dir: RawFd, name: &[u8], mode: u32) -> io::Result<()> {
    let name = cstr(name)?;
    // SAFETY: a valid C string.
    check(unsafe { mkdirat(dir, name.as_ptr(), mode as c_uint) }).map(drop)
}

/// `statx` is used while the kernel has it; after one `ENOSYS` (Linux
/// before 4.11, some seccomp filters) an `O_PATH` open and std's `fstat`.
static NO_STATX: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `lstat` of `name` in `dir` (`name` empty: `dir` itself).
pub fn stat_at(dir: RawFd, name: &[u8]) -> io::Result<Meta> {
    use std::sync::atomic::Ordering;
    if let Some((statx, _)) = SYS.filter(|_| !NO_STATX.load(Ordering::Relaxed)) {
        let c = cstr(name)?;
        let flags = AT_SYMLINK_NOFOLLOW | if name.is_empty() { AT_EMPTY_PATH } else { 0 };
        let mut sx = Statx::default();
        // SAFETY: a valid C string and a buffer of the kernel's size.
        let r = unsafe { syscall(statx, dir as c_long, c.as_ptr(), flags as c_long, STATX_BASIC_STATS as c_long, &mut sx as *mut Statx) };
        if r == 0 {
            return Ok(Meta {
                mode: u32::from(sx.mode),
                // glibc's and musl's makedev, as std reports `dev`.
                dev: (u64::from(sx.dev_major & 0xffff_f000) << 32)
                    | (u64::from(sx.dev_major & 0xfff) << 8)
                    | (u64::from(sx.dev_minor & 0xffff_ff00) << 12)
                    | u64::from(sx.dev_minor & 0xff),
                ino: sx.ino,
                size: sx.size,
                nlink: u64::from(sx.nlink),
                uid: sx.uid,
                gid: sx.gid,
                mtime_ns: sx.mtime.sec * 1_000_000_000 + i64::from(sx.mtime.nsec),
                ctime_ns: sx.ctime.sec * 1_000_000_000 + i64::from(sx.ctime.nsec),
            });
        }
        let e = io::Error::last_os_error();
        if !matches!(e.raw_os_error(), Some(ENOSYS | EPERM)) {
            return Err(e);
        }
        NO_STATX.store(true, Ordering::Relaxed);
    }
    let owned;
    let fd = if name.is_empty() {
        dir
    } else {
        owned = open_at(dir, name, Open::Path)?;
        owned.as_raw_fd()
    };
    // SAFETY: borrowed for the `fstat` only; ManuallyDrop keeps it open.
    let file = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(fd) });
    Ok(Meta::from(&file.metadata()?))
}

impl From<&std::fs::Metadata> for Meta {
    fn from(m: &std::fs::Metadata) -> Meta {
        use std::os::unix::fs::MetadataExt;
        Meta {
            mode: m.mode(),
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            nlink: m.nlink(),
            uid: m.uid(),
            gid: m.gid(),
            mtime_ns: m.mtime() * 1_000_000_000 + m.mtime_nsec(),
            ctime_ns: m.ctime() * 1_000_000_000 + m.ctime_nsec(),
        }
    }
}

/// The names in the folder `fd` (not `.` and `..`), in the order the file
/// system gives them, each with its `d_type` (0 when the file system does
/// not say). Reads through a descriptor of its own (`.` opened again, so
/// from the start, however often the folder is read).
pub fn read_names(fd: RawFd) -> io::Result<Vec<(Vec<u8>, u8)>> {
    let raw = std::os::fd::IntoRawFd::into_raw_fd(open_at(fd, b".", Open::Dir)?);
    // SAFETY: `raw` is ours; on success the DIR owns it and closedir closes it.
    let dir = unsafe { fdopendir(raw) };
    if dir.is_null() {
        let e = io::Error::last_os_error();
        // SAFETY: fdopendir failed, so `raw` is still ours to close.
        drop(unsafe { OwnedFd::from_raw_fd(raw) });
        return Err(e);
    }
    // A fresh folder is read from its start.
    let mut names = Vec::new();
    let result = loop {
        // SAFETY: errno is this thread's; readdir returns NULL at the end
        // (errno untouched) or on an error (errno set).
        unsafe { *__errno_location() = 0 };
        // SAFETY: `dir` is a valid DIR until closedir below.
        let d = unsafe { readdir(dir) };
        if d.is_null() {
            // SAFETY: as above.
            let errno = unsafe { *__errno_location() };
            break if errno == 0 { Ok(()) } else { Err(io::Error::from_raw_os_error(errno)) };
        }
        // SAFETY: readdir's entry is valid until the next call; d_name is NUL-terminated.
        let name = unsafe { CStr::from_ptr((*d).d_name.as_ptr()) }.to_bytes();
        if name != b"." && name != b".." {
            // SAFETY: as above.
            names.push((name.to_vec(), unsafe { (*d).d_type }));
        }
    };
    // SAFETY: `dir` came from fdopendir and is closed once.
    unsafe { closedir(dir) };
    result.map(|()| names)
}

/// Whether this process may create and remove names in the folder `path`
/// (`access(W_OK | X_OK)`: nothing is created to find out).
pub fn may_write(path: &std::path::Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = cstr(path.as_os_str().as_bytes())?;
    // SAFETY: a valid C string. ysync is never set-uid, so the real and
    // the effective ids are the same and `access` asks for the right one.
    check(unsafe { access(c.as_ptr(), W_OK | X_OK) }).map(drop)
}

/// The effective user id.
pub fn euid() -> u32 {
    // SAFETY: always succeeds.
    unsafe { geteuid() }
}

/// Is the process `pid` alive (`kill(pid, 0)`; one of another user counts)?
pub fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 sends nothing, it only checks.
    let r = unsafe { kill(pid as c_int, 0) };
    r == 0 || io::Error::last_os_error().raw_os_error() == Some(EPERM)
}

/// Sends `sig` to the process group `pgid`.
pub fn kill_group(pgid: u32, sig: c_int) -> io::Result<()> {
    // SAFETY: a plain system call; a negative pid names a group.
    check(unsafe { kill(-(pgid as c_int), sig) }).map(drop)
}

/// No core dump, and no `ptrace` by other processes of the same user
/// (hooks among them): the token is in this process's memory.
pub fn not_dumpable() {
    // SAFETY: a plain system call with an integer argument.
    unsafe { prctl(PR_SET_DUMPABLE, 0 as c_long) };
}

/// The `EEXIST` of a create-new that met a name.
pub fn is_exists(e: &io::Error) -> bool {
    e.raw_os_error() == Some(EEXIST) || e.kind() == io::ErrorKind::AlreadyExists
}

/// Opens a folder by its path (links followed: a configured path is the
/// admin's choice), close-on-exec.
pub fn open_dir_path(path: &std::path::Path) -> io::Result<OwnedFd> {
    use std::os::unix::ffi::OsStrExt;
    let c = cstr(path.as_os_str().as_bytes())?;
    // SAFETY: a valid C string.
    let fd = check(unsafe { openat(AT_FDCWD, c.as_ptr(), O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0 as c_uint) })?;
    // SAFETY: a fresh descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
unsafe extern "C" {
    fn mkfifo(path: *const c_char, mode: c_uint) -> c_int;
    fn mknod(path: *const c_char, mode: c_uint, dev: u64) -> c_int;
}

/// Tests only: a FIFO at `path`, made without running `mkfifo` (a child
/// process forked while another test reopens its state would hold that
/// state's lock for an instant).
#[cfg(test)]
pub fn make_fifo(path: &std::path::Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = cstr(path.as_os_str().as_bytes())?;
    // SAFETY: a valid C string.
    check(unsafe { mkfifo(c.as_ptr(), 0o644) }).map(drop)
}

/// Tests only (as root): the character device `/dev/zero` (1, 5) at `path`.
#[cfg(test)]
pub fn make_zero_device(path: &std::path::Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = cstr(path.as_os_str().as_bytes())?;
    // SAFETY: a valid C string; S_IFCHR | 0644, makedev(1, 5).
    check(unsafe { mknod(c.as_ptr(), 0o020644, (1 << 8) | 5) }).map(drop)
}
