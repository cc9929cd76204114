//! An open folder ([`Dir`]) and what ysync does in one. Every file ysync
//! creates, appends to, reads back, renames or removes is named relative to
//! a folder it opened once, one name at a time, and no name is followed as
//! a symbolic link (`O_NOFOLLOW`): a link planted where ysync writes or
//! reads makes the call fail, it never redirects it. A folder below one
//! already open is opened a component at a time the same way
//! ([`Dir::beneath`]), so nothing in it can lead outside.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::sys::{self, Meta, Open};

/// The kind of a name, from the `S_IFMT` bits of its [`Meta`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Link,
    Fifo,
    Socket,
    Device,
    Other,
}

impl Meta {
    pub fn kind(&self) -> Kind {
        match self.mode & 0o170000 {
            0o100000 => Kind::File,
            0o040000 => Kind::Dir,
            0o120000 => Kind::Link,
            0o010000 => Kind::Fifo,
            0o140000 => Kind::Socket,
            0o020000 | 0o060000 => Kind::Device,
            _ => Kind::Other,
        }
    }

    pub fn is_file(&self) -> bool {
        self.kind() == Kind::File
    }

    /// The permission bits.
    pub fn perm(&self) -> u32 {
        self.mode & 0o7777
    }
}

/// An open folder, and its path for messages.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

impl Dir {
    /// Opens a folder by its path. Links in the path are followed: a
    /// configured path (`local_dir`, the state's folder) is the admin's
    /// choice. What ysync does inside is relative to this descriptor.
    pub fn open(path: &Path) -> io::Result<Dir> {
        Ok(Dir { fd: sys::open_dir_path(path)?, path: path.to_path_buf() })
    }

    /// The folder `name` in this one; a link there is refused (with the
    /// error [`sys::is_link_error`] knows, as for a file: Linux says "not
    /// a directory" for a link opened as a folder without following it).
    pub fn sub(&self, name: &str) -> io::Result<Dir> {
        match self.open_fd(name, Open::Dir) {
            Ok(fd) => Ok(Dir { fd, path: self.join(name) }),
            Err(e) if e.kind() == io::ErrorKind::NotADirectory && self.stat(name).is_ok_and(|m| m.kind() == Kind::Link) => {
                Err(sys::link_error())
            }
            Err(e) => Err(e),
        }
    }

    /// The folder `rel` (`/`-separated, relative; `""` is this one again)
    /// below this one, a component at a time, none of them a link.
    pub fn beneath(&self, rel: &str) -> io::Result<Dir> {
        let mut here = Dir { fd: sys::open_at(self.fd.as_raw_fd(), b".", Open::Dir)?, path: self.path.clone() };
        for part in rel.split('/').filter(|p| !p.is_empty()) {
            if part == "." || part == ".." {
                return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("`{rel}` holds . or ..")));
            }
            here = here.sub(part)?;
        }
        Ok(here)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of `name` in this folder, for messages.
    pub fn join(&self, name: &str) -> PathBuf {
        if name.is_empty() { self.path.clone() } else { self.path.join(name) }
    }

    fn open_fd(&self, name: &str, how: Open) -> io::Result<OwnedFd> {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("`{name}` is not one name")));
        }
        sys::open_at(self.fd.as_raw_fd(), name.as_bytes(), how)
    }

    /// This folder's own metadata.
    pub fn meta(&self) -> io::Result<Meta> {
        sys::stat_at(self.fd.as_raw_fd(), b"")
    }

    /// What `name` is here, a link not followed (`lstat`).
    pub fn stat(&self, name: &str) -> io::Result<Meta> {
        sys::stat_at(self.fd.as_raw_fd(), name.as_bytes())
    }

    /// Whether there is anything at `name` (a dangling link too).
    pub fn has(&self, name: &str) -> io::Result<bool> {
        match self.stat(name) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The names in this folder (not `.` and `..`), unsorted, each with
    /// its kind when the file system says it without a `stat`.
    pub fn names(&self) -> io::Result<Vec<(Vec<u8>, Option<Kind>)>> {
        let names = sys::read_names(self.fd.as_raw_fd())?;
        // The DT_* values of dirent.h.
        let kind = |t: u8| match t {
            8 => Some(Kind::File),
            4 => Some(Kind::Dir),
            10 => Some(Kind::Link),
            1 => Some(Kind::Fifo),
            12 => Some(Kind::Socket),
            2 | 6 => Some(Kind::Device),
            _ => None,
        };
        Ok(names.into_iter().map(|(n, t)| (n, kind(t))).collect())
    }

    /// Opens `name` to read, without blocking and without following a link.
    /// The caller checks what it opened ([`meta_of`]).
    pub fn read(&self, name: &str) -> io::Result<File> {
        self.open_fd(name, Open::Read).map(File::from)
    }

    /// Creates `name`, which must not exist, with `mode` (less the umask).
    pub fn create(&self, name: &str, mode: u32) -> io::Result<File> {
        self.open_fd(name, Open::CreateNew(mode)).map(File::from)
    }

    /// Opens `name` to append to it, creating it with `mode` if missing.
    pub fn append(&self, name: &str, mode: u32) -> io::Result<File> {
        self.open_fd(name, Open::Append(mode)).map(File::from)
    }

    /// Opens `name` to read and write, creating it with `mode` if missing;
    /// its content stays (a lock file).
    pub fn keep(&self, name: &str, mode: u32) -> io::Result<File> {
        self.open_fd(name, Open::Keep(mode)).map(File::from)
    }

    /// Renames `from` to `to` in this folder, replacing what is at `to`
    /// (a link there is replaced, not followed).
    pub fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        sys::rename_at(self.fd.as_raw_fd(), from.as_bytes(), self.fd.as_raw_fd(), to.as_bytes(), true)
    }

    /// Moves `from` of this folder to `to` in the folder `into` (the same
    /// file system), only if nothing is at `to` there.
    pub fn move_into(&self, from: &str, into: &Dir, to: &str) -> io::Result<()> {
        sys::rename_at(self.fd.as_raw_fd(), from.as_bytes(), into.fd.as_raw_fd(), to.as_bytes(), false)
    }

    /// Renames `from` to `to` only if nothing is at `to` (a dangling link
    /// counts as something): `AlreadyExists` otherwise.
    pub fn rename_new(&self, from: &str, to: &str) -> io::Result<()> {
        sys::rename_at(self.fd.as_raw_fd(), from.as_bytes(), self.fd.as_raw_fd(), to.as_bytes(), false)
    }

    /// Removes the name `name` (a link itself, never what it points at).
    pub fn remove(&self, name: &str) -> io::Result<()> {
        sys::unlink_at(self.fd.as_raw_fd(), name.as_bytes())
    }

    /// Creates the folder `name` with `mode` (less the umask).
    pub fn mkdir(&self, name: &str, mode: u32) -> io::Result<()> {
        sys::mkdir_at(self.fd.as_raw_fd(), name.as_bytes(), mode)
    }

    /// Makes this folder's names durable (after a rename in it).
    pub fn sync(&self) -> io::Result<()> {
        File::from(self.fd.try_clone()?).sync_all()
    }

    /// Hands the folder to `uid:gid` and gives it `mode` exactly.
    pub fn set_owner_mode(&self, owner: Option<(u32, u32)>, mode: u32) -> io::Result<()> {
        let f = File::from(self.fd.try_clone()?);
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::fchown(&f, Some(uid), Some(gid))?;
        }
        f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))
    }
}

/// What an open file is (its own `fstat`, as the scan would `stat` it).
pub fn meta_of(f: &File) -> io::Result<Meta> {
    sys::stat_at(f.as_raw_fd(), b"")
}
