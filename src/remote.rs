//! What the executor needs from a remote, and the one error type for it.
//!
//! Paths are absolute Disk paths without a scheme: `/Backups/a+b.txt`.

use std::fmt;
use std::io::{self, Read};

use crate::digest::Hex;

/// A file as the Disk describes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RemoteFile {
    pub size: u64,
    /// `None` while the Disk has not finished hashing a fresh upload (R1).
    pub sha256: Option<Hex<32>>,
    pub md5: Option<Hex<16>>,
    pub dates: Dates,
}

/// What the Disk keeps of a resource's times. The Disk's own `modified`
/// is the time of the last upload or change of its metadata (a PATCH bumps
/// it: yadisk's recorded `test_patch`), never the local file's time: that
/// is kept in the custom property `rclone_modified` (RFC 3339, the key
/// rclone's Yandex backend reads and writes, so both tools see one date),
/// and when ysync uploaded it in `ysync_uploaded` (Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Dates {
    /// `rclone_modified`: the local file's modification time.
    pub mtime_ns: Option<i64>,
    /// `ysync_uploaded`: when ysync sent this content (0: not said).
    pub uploaded: u64,
    /// `ysync_replaced`: when ysync kept this content as an old version in
    /// `backup_dir` (0: not said; a version's name may say it instead).
    pub replaced: u64,
    /// The Disk's `modified` of a file, `created` of a folder (0: not said).
    pub changed: u64,
}

impl RemoteFile {
    /// A fresh upload the Disk is still finalising shows no hashes yet (R1).
    pub fn unhashed(&self) -> bool {
        self.sha256.is_none() && self.md5.is_none()
    }
}

/// One entry of a remote folder listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub name: String,
    pub dir: bool,
    /// For a file: its size and hashes (`None` while still hashing).
    pub file: RemoteFile,
}

/// A remote tree: relative path → entry.
pub type Tree = std::collections::BTreeMap<String, Item>;

/// Folders deeper than this below a listed root are not listed: the
/// Disk's paths end at 32 760 characters, and no local tree ysync can
/// walk is that deep (Linux paths end at 4 096 bytes).
pub const MAX_DEPTH: usize = 1024;

/// What ysync needs of the account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskInfo {
    /// The account's login, when the Disk says.
    pub login: String,
    pub total: u64,
    pub used: u64,
    pub free: u64,
    pub max_file_size: u64,
}

/// A single-use upload link and the server operation that tracks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub href: String,
    /// The operation's id, when the Disk gave one.
    pub operation: Option<String>,
}

/// A server-side operation's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpStatus {
    InProgress,
    Success,
    /// Failed, expired or unknown to the Disk.
    Failed,
}

/// Where an upload stands when `put` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placed {
    /// Stored (HTTP 201).
    Now,
    /// Accepted (HTTP 202) and the operation ended, but the file's metadata
    /// may still lag: confirm it with `stat` before trusting it.
    Later,
}

pub trait Remote {
    /// Creates one folder; an existing folder is success.
    fn mkdir(&mut self, path: &str) -> Result<(), Error>;

    /// Asks for a link to upload to `path`. With `overwrite` a file there is
    /// replaced; without, a file there is `AlreadyExists`.
    fn upload_link(&mut self, path: &str, overwrite: bool) -> Result<Link, Error>;

    /// Sends exactly `size` bytes from `body` to a link. Not retried inside:
    /// a link is single-use and `body` is spent.
    fn put(&mut self, link: &Link, body: &mut dyn Read, size: u64) -> Result<Placed, Error>;

    /// The state of a server operation (an upload's, for instance).
    fn operation(&mut self, id: &str) -> Result<OpStatus, Error>;

    /// Deletes a file or a whole folder tree; a missing path is success.
    /// With `md5`, a file is deleted only if its content still has that md5.
    fn delete(&mut self, path: &str, permanently: bool, md5: Option<Hex<16>>) -> Result<(), Error>;

    /// Moves (renames) a file or a whole folder on the server.
    fn move_to(&mut self, from: &str, to: &str, overwrite: bool) -> Result<(), Error>;

    /// Streams the file at `path` into `to`; the bytes written. Only
    /// `ysync restore` downloads.
    fn download(&mut self, path: &str, _to: &mut dyn std::io::Write) -> Result<u64, Error> {
        Err(Error::Protocol(format!("downloading {path} is not supported by this Disk")))
    }

    /// The file at `path`, or `None` when there is none (or a folder is there).
    fn stat(&mut self, path: &str) -> Result<Option<RemoteFile>, Error>;

    /// Is there anything (file or folder) at `path`?
    fn exists(&mut self, path: &str) -> Result<bool, Error>;

    /// The entries of the folder at `path` (all pages); `None` when there is
    /// no folder there.
    fn list(&mut self, path: &str) -> Result<Option<Vec<Item>>, Error>;

    /// The whole tree below `root`, one listing per folder; `None` when
    /// `root` is not a folder on the Disk. At most `MAX_DEPTH` folders deep:
    /// deeper is a server that does not end, not a tree.
    fn tree(&mut self, root: &str) -> Result<Option<Tree>, Error> {
        let Some(top) = self.list(root)? else { return Ok(None) };
        let mut tree = Tree::new();
        let mut todo = vec![(String::new(), top)];
        while let Some((prefix, items)) = todo.pop() {
            if prefix.matches('/').count() >= MAX_DEPTH {
                return Err(Error::Protocol(format!("the tree below disk:{root} is deeper than {MAX_DEPTH} folders")));
            }
            for item in items {
                let rel = if prefix.is_empty() { item.name.clone() } else { format!("{prefix}/{}", item.name) };
                if item.dir
                    && let Some(inner) = self.list(&join(root, &rel))?
                {
                    todo.push((rel.clone(), inner));
                }
                tree.insert(rel, item);
            }
        }
        Ok(Some(tree))
    }

    /// Free space and the per-file size limit.
    fn disk_info(&mut self) -> Result<DiskInfo, Error>;

    /// Uses another token from now on (renewed between cycles, `token.rs`).
    fn set_token(&mut self, _token: &str) {}

    /// Keeps the local file's modification time (and, when given, when
    /// ysync uploaded it) on the Disk with the file at `path`
    /// (`PATCH /resources`, custom properties; other keys stay).
    fn set_date(&mut self, path: &str, _mtime_ns: i64, _uploaded: Option<u64>) -> Result<(), Error> {
        Err(Error::Protocol(format!("dating {path} is not supported by this Disk")))
    }

    /// Marks a kept version with the time it was replaced
    /// (`ysync_replaced`), which `restore --as-of` reads.
    fn mark_replaced(&mut self, path: &str, _at: u64) -> Result<(), Error> {
        Err(Error::Protocol(format!("marking {path} is not supported by this Disk")))
    }

    /// `mkdir -p`: tries the folder, then creates the missing ancestors.
    fn mkdir_all(&mut self, path: &str) -> Result<(), Error> {
        match self.mkdir(path) {
            Err(Error::ParentMissing) => {
                for (i, _) in path.match_indices('/').skip(1) {
                    self.mkdir(&path[..i])?;
                }
                self.mkdir(path)
            }
            other => other,
        }
    }
}

/// Joins `remote_dir` (`/` or `/a/b`) and a relative path.
pub fn join(remote_dir: &str, rel: &str) -> String {
    match (remote_dir, rel) {
        (d, "") => d.to_string(),
        ("/", r) => format!("/{r}"),
        (d, r) => format!("{d}/{r}"),
    }
}

/// Every way a remote call can fail. API errors are typed by the `error`
/// name the Disk sends; unknown names fall back to their HTTP status.
#[derive(Debug)]
pub enum Error {
    /// 401: the token is wrong, expired or revoked.
    Unauthorized,
    /// 403 with the Disk's error name: the account cannot use the API.
    Forbidden(String),
    /// 404 `DiskNotFoundError`.
    NotFound,
    /// 409 `DiskPathDoesntExistsError`: the parent folder is missing.
    ParentMissing,
    /// 409 `DiskPathPointsToExistentDirectoryError`.
    IsFolder,
    /// 409 `DiskResourceAlreadyExistsError`.
    AlreadyExists,
    /// 409 `MD5DifferError`: the remote file is not the one expected.
    Md5Differs,
    /// 423: busy (`DiskResourceLockedError`) or the upload traffic limit.
    Locked(String),
    /// 429: slow down; `Retry-After` seconds when the server said so.
    TooManyRequests(Option<u64>),
    /// 413: the file is larger than the account allows.
    TooLarge,
    /// 507: the Disk is full.
    InsufficientStorage,
    /// Asked before sending: this file is larger than the free space (given).
    NoRoom(u64),
    /// 5xx.
    Server(u16),
    /// Any other status, with the Disk's error name and description.
    Http {
        status: u16,
        name: String,
        description: String,
    },
    /// A server-side operation (HTTP 202) ended `failed`.
    OperationFailed(String),
    /// Connection refused, reset, DNS, TLS…
    Network(String),
    Timeout(String),
    /// Reading the local file failed while uploading it.
    Local(io::Error),
    /// The server answered something ysync cannot understand.
    Protocol(String),
}

impl Error {
    /// The Disk refused the token (401) or the account (403): nothing
    /// else will work until the user acts, so the command ends with exit 3.
    pub fn is_rejection(&self) -> bool {
        matches!(self, Error::Unauthorized | Error::Forbidden(_))
    }

    /// The request may have done its work although it failed: its answer
    /// was lost (a reset, a timeout) or the server failed after it began.
    pub fn may_have_been_done(&self) -> bool {
        matches!(self, Error::Server(_) | Error::Network(_) | Error::Timeout(_))
    }

    /// Worth trying again in this cycle (after a pause)? A busy path is;
    /// the upload traffic limit (also 423) is not. A failed server operation
    /// is: the docs say to repeat the request.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Locked(name) => name == "DiskResourceLockedError" || name == "Locked",
            Error::TooManyRequests(_) | Error::Server(_) | Error::Network(_) | Error::Timeout(_) | Error::OperationFailed(_) => true,
            _ => false,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Error::Unauthorized => write!(
                f,
                "the token was rejected (401 UnauthorizedError): it is wrong, expired or revoked; get a new one (see GUIDE.md, \"Getting a token\") and put it in `token`/`token_file`"
            ),
            Error::Forbidden(name) => write!(
                f,
                "the Disk refused access (403 {name}); check that the token has the Disk read/write permissions and that the account can use the API"
            ),
            Error::NotFound => write!(f, "not found on the Disk (404 DiskNotFoundError)"),
            Error::ParentMissing => write!(f, "the parent folder does not exist on the Disk (409 DiskPathDoesntExistsError)"),
            Error::IsFolder => write!(f, "a folder stands at that path on the Disk (409 DiskPathPointsToExistentDirectoryError)"),
            Error::AlreadyExists => write!(f, "something already exists at that path on the Disk (409 DiskResourceAlreadyExistsError)"),
            Error::Md5Differs => write!(f, "the remote file is not the one ysync uploaded (409 MD5DifferError)"),
            Error::Locked(name) => write!(f, "the Disk refused for now (423 {name})"),
            Error::TooManyRequests(_) => write!(f, "the Disk asks to slow down (429 Too Many Requests)"),
            Error::TooLarge => write!(f, "the file is larger than the account allows (413)"),
            Error::InsufficientStorage => write!(f, "the Disk is full (507); free some space or empty the Disk's trash"),
            Error::NoRoom(free) => write!(
                f,
                "larger than the Disk's free space ({} free), so not sent; free some space or empty the Disk's trash",
                crate::units::human_bytes(*free)
            ),
            Error::Server(s) => write!(f, "the Disk had an internal error (HTTP {s})"),
            Error::Http { status, name, description } => write!(f, "HTTP {status} {name}: {description}"),
            Error::OperationFailed(what) => write!(f, "the Disk reported that the operation failed ({what})"),
            Error::Network(e) => write!(f, "network error: {e}"),
            Error::Timeout(e) => write!(f, "timed out: {e}"),
            Error::Local(e) => write!(f, "reading the local file failed: {e}"),
            Error::Protocol(e) => write!(f, "unexpected answer from the Disk: {e}"),
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    /// ureq's `ensure_error_size`: every `Result` of a remote call carries
    /// one, so it must stay small.
    #[test]
    fn an_error_stays_small() {
        let size = std::mem::size_of::<Error>();
        assert!(size <= 56, "remote::Error grew to {size} bytes");
    }

    #[test]
    fn a_tree_deeper_than_any_path_is_refused_not_walked() {
        // Finding 21: a server that nests folders without end.
        let mut disk = crate::testkit::MemDisk::with_folder("/r");
        let mut p = String::from("/r");
        for _ in 0..MAX_DEPTH + 2 {
            p.push_str("/a");
            disk.dirs.insert(p.clone());
        }
        let e = disk.tree("/r").unwrap_err();
        assert!(e.to_string().contains("deeper than 1024 folders"), "{e}");
        let mut shallow = crate::testkit::MemDisk::with_folder("/r");
        shallow.dirs.insert("/r/a".into());
        assert_eq!(shallow.tree("/r").unwrap().unwrap().len(), 1);
    }

    #[test]
    fn join_paths() {
        assert_eq!(join("/", "a/b"), "/a/b");
        assert_eq!(join("/r d", "a"), "/r d/a");
        assert_eq!(join("/r", ""), "/r");
        assert_eq!(join("/", ""), "/");
    }

    /// Records mkdir calls; parents exist only once created.
    struct Dirs(Vec<String>, Vec<String>);

    impl Remote for Dirs {
        fn mkdir(&mut self, path: &str) -> Result<(), Error> {
            self.1.push(path.to_string());
            let parent = &path[..path.rfind('/').unwrap()];
            if !parent.is_empty() && !self.0.iter().any(|d| d == parent) {
                return Err(Error::ParentMissing);
            }
            self.0.push(path.to_string());
            Ok(())
        }
        fn upload_link(&mut self, _: &str, _: bool) -> Result<Link, Error> {
            unreachable!()
        }
        fn put(&mut self, _: &Link, _: &mut dyn Read, _: u64) -> Result<Placed, Error> {
            unreachable!()
        }
        fn operation(&mut self, _: &str) -> Result<OpStatus, Error> {
            unreachable!()
        }
        fn delete(&mut self, _: &str, _: bool, _: Option<Hex<16>>) -> Result<(), Error> {
            unreachable!()
        }
        fn stat(&mut self, _: &str) -> Result<Option<RemoteFile>, Error> {
            unreachable!()
        }
        fn move_to(&mut self, _: &str, _: &str, _: bool) -> Result<(), Error> {
            unreachable!()
        }
        fn exists(&mut self, _: &str) -> Result<bool, Error> {
            unreachable!()
        }
        fn list(&mut self, _: &str) -> Result<Option<Vec<Item>>, Error> {
            unreachable!()
        }
        fn disk_info(&mut self) -> Result<DiskInfo, Error> {
            unreachable!()
        }
    }

    #[test]
    fn mkdir_all_tries_the_leaf_first_then_creates_ancestors() {
        let mut r = Dirs(vec!["/a".into()], vec![]);
        r.mkdir_all("/a/b").unwrap();
        assert_eq!(r.1, ["/a/b"]);
        let mut r = Dirs(vec![], vec![]);
        r.mkdir_all("/x/y/z").unwrap();
        assert_eq!(r.1, ["/x/y/z", "/x", "/x/y", "/x/y/z"]);
    }
}
