//! The exit statuses of the contract, in one place. `main` turns them into
//! the process status; `inspect`, `login` and a cycle's `Outcome` return them.

/// How a command ended, as the process exit status says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The remote mirrors the folder (or the command did what it was for).
    Ok = 0,
    /// Some items failed, or the Disk and the folder differ; the next cycle
    /// tries again.
    Failed = 1,
    /// A usage or configuration error, or a state that cannot be read.
    Usage = 2,
    /// The Disk or Yandex ID rejected the token.
    Rejected = 3,
    /// Something looked wrong (an empty or missing folder, too many
    /// deletions, a mount point not mounted): nothing was deleted.
    SafetyStop = 4,
    /// Another ysync holds the state file's lock.
    Locked = 5,
}

impl Exit {
    /// Ends the process with this status.
    pub fn now(self) -> ! {
        std::process::exit(self as i32)
    }
}
