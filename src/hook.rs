//! `on_success` and `on_failure`: a command run after a cycle, so that a
//! user can ping a health check or send a message.
//!
//! The command runs without a shell (its words were split by the config),
//! with stdin closed and stdout and stderr those of ysync, and with the
//! cycle's outcome in `YSYNC_*` environment variables ([`environment`]).
//! It never holds ysync's lock: the lock file is opened close-on-exec, and
//! `once` lets the lock go before the hook runs. It may take at most
//! `hook_timeout`; then it is killed. Whatever the hook does, ysync's own
//! outcome and exit status stay the same.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::config::Config;
use crate::state::LastCycle;

/// How often a running hook is asked whether it has ended.
const HOOK_POLL: Duration = Duration::from_millis(20);
/// After `hook_timeout`, how long the hook's processes have to end after
/// SIGTERM before SIGKILL.
const HOOK_GRACE: Duration = Duration::from_secs(2);

/// Runs the hook that fits `cycle` (`on_success` for exit status 0,
/// `on_failure` for any other), if the config has one, and waits for it
/// at most `hook_timeout`.
pub fn after_cycle(cfg: &Config, config_path: &Path, cycle: &LastCycle) {
    let (name, argv) = match cycle.exit {
        0 => ("on_success", &cfg.on_success),
        _ => ("on_failure", &cfg.on_failure),
    };
    let Some(argv) = argv.as_ref().map(|c| c.0.as_slice()) else { return };
    let env = environment(cfg, config_path, cycle);
    let what = match run(argv, &env, cfg.hook_timeout) {
        Ok(Ended::Exited(0)) => return log::debug!("{name} ({}) ran", argv[0]),
        Ok(Ended::Exited(code)) => format!("exited with status {code}"),
        Ok(Ended::Signalled) => "was killed by a signal".into(),
        Ok(Ended::TimedOut) => format!("ran longer than hook_timeout ({}s) and was killed", cfg.hook_timeout.as_secs()),
        Err(e) => format!("could not be started: {e}"),
    };
    log::warn!("{name} ({}) {what}", argv[0]);
}

/// What the hook is told, besides ysync's own environment (less the token).
pub fn environment(cfg: &Config, config_path: &Path, c: &LastCycle) -> Vec<(&'static str, String)> {
    vec![
        ("YSYNC_OUTCOME", c.outcome.clone()),
        ("YSYNC_EXIT", c.exit.to_string()),
        ("YSYNC_MESSAGE", c.result.clone()),
        ("YSYNC_STARTED", c.started.to_string()),
        ("YSYNC_ENDED", c.ended.to_string()),
        ("YSYNC_UPLOADED", c.uploaded.to_string()),
        ("YSYNC_BYTES", c.bytes.to_string()),
        ("YSYNC_MOVED", c.moved.to_string()),
        ("YSYNC_DELETED", c.deleted.to_string()),
        ("YSYNC_VERSIONED", c.versioned.to_string()),
        ("YSYNC_FAILED", c.failed.len().to_string()),
        ("YSYNC_LOCAL_DIR", cfg.local_dir.display().to_string()),
        ("YSYNC_REMOTE_DIR", format!("disk:{}", cfg.remote_dir)),
        ("YSYNC_CONFIG", config_path.display().to_string()),
    ]
}

#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    Exited(i32),
    Signalled,
    TimedOut,
}

/// Runs `argv` with `env` added (and `YSYNC_TOKEN` removed), waiting at
/// most `limit`. The hook is the leader of a process group of its own, so
/// that what it started (a shell's `curl`, a `sleep`) goes with it: a hook
/// still running at `limit` gets SIGTERM for the whole group, and SIGKILL
/// after `HOOK_GRACE`. Nothing it left behind holds ysync's output.
pub fn run(argv: &[String], env: &[(&str, String)], limit: Duration) -> std::io::Result<Ended> {
    // The variables go into this process's own environment, which the
    // child inherits: ysync is single-threaded, so nothing reads the
    // environment meanwhile, and std's per-command environment map (a few
    // KB of code on a router) is not needed.
    for (k, v) in env {
        // SAFETY: no other thread exists to read the environment.
        unsafe { std::env::set_var(k, v) };
    }
    // SAFETY: as above. The token never reaches a hook.
    unsafe { std::env::remove_var("YSYNC_TOKEN") };
    use crate::fsutil::sys::{SIGKILL, SIGTERM, kill_group};
    use std::os::unix::process::CommandExt;
    let mut child = Command::new(&argv[0]).args(&argv[1..]).stdin(Stdio::null()).process_group(0).spawn()?;
    let group = child.id();
    let mut poll = crate::retry::Poll::with(HOOK_POLL, HOOK_POLL, limit);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status.code().map_or(Ended::Signalled, Ended::Exited));
        }
        if !poll.again() {
            break;
        }
    }
    let _ = kill_group(group, SIGTERM);
    let mut grace = crate::retry::Poll::with(HOOK_POLL, HOOK_POLL, HOOK_GRACE);
    while child.try_wait()?.is_none() && grace.again() {}
    // Whatever of the group is left, the hook itself included.
    let _ = kill_group(group, SIGKILL);
    let _ = child.wait();
    Ok(Ended::TimedOut)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hook_that_runs_too_long_is_killed_at_its_deadline() {
        let argv = |s: &str| crate::config::words::split_words(s).unwrap();
        let started = std::time::Instant::now();
        assert_eq!(run(&argv("/bin/sleep 30"), &[], Duration::from_millis(200)).unwrap(), Ended::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(10), "killed at the deadline, not waited for");
        // A shell's children go with it (they would hold ysync's output).
        let t = tempfile::tempdir().unwrap();
        let pid_file = t.path().join("pid");
        let line = format!("/bin/sh -c 'sleep 30 & echo $! > {}; wait'", pid_file.display());
        assert_eq!(run(&argv(&line), &[], Duration::from_millis(300)).unwrap(), Ended::TimedOut);
        let pid = std::fs::read_to_string(&pid_file).unwrap().trim().to_string();
        let gone = crate::retry::Poll::with(HOOK_POLL, HOOK_POLL, Duration::from_secs(5));
        let mut gone = gone;
        while std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z ")) && gone.again() {}
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(state.is_empty() || state.contains(") Z "), "the hook's child {pid} still runs: {state}");
        assert_eq!(run(&argv("/bin/sh -c 'exit 7'"), &[], Duration::from_secs(20)).unwrap(), Ended::Exited(7));
        let env = [("YSYNC_OUTCOME", "ok".to_string())];
        let check = "/bin/sh -c 'test \"$YSYNC_OUTCOME\" = ok && test -z \"$YSYNC_TOKEN\"'";
        // SAFETY: tests that read YSYNC_TOKEN do not run in this binary's unit tests.
        unsafe { std::env::set_var("YSYNC_TOKEN", "secret") };
        assert_eq!(run(&argv(check), &env, Duration::from_secs(20)).unwrap(), Ended::Exited(0));
    }
}
