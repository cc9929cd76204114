//! Easy to watch (issue 16): `status --json`, the `on_success` and
//! `on_failure` hooks, and the progress of a long cycle.

use std::fs;
use std::time::{Duration, Instant};

use crate::emulator::{FakeDisk, Options};
use crate::support::{Fixture, stderr, stdout};

fn status_json(fx: &Fixture) -> serde_json::Value {
    let out = fx.ysync(&["status", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("status --json is not JSON ({e}): {}", stdout(&out)))
}

/// The lines `KEY=value` that a hook printed with `env` (its stdout is
/// ysync's), as a map of the YSYNC_ ones.
fn hook_env(out: &str) -> std::collections::BTreeMap<String, String> {
    out.lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| k.starts_with("YSYNC_"))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn status_json_tells_a_script_what_status_tells_a_person() {
    let big = Options { max_file_size: 1000, ..Options::default() };
    let fx = Fixture::with(FakeDisk::with(big), "/Backup", "");
    let before = status_json(&fx);
    assert_eq!(before["synced"], serde_json::Value::Null, "{before}");
    assert_eq!(before["last_cycle"], serde_json::Value::Null);
    assert_eq!(before["remote_dir"], "disk:/Backup");

    fx.write("a.txt", "alpha");
    fx.write("d/b.txt", "beta!");
    fx.write("big.bin", vec![7u8; 2000]);
    assert_eq!(fx.ysync(&["once"]).status.code(), Some(1), "big.bin is over the account's per-file limit");
    let s = status_json(&fx);
    assert_eq!(s["format"], 1);
    assert_eq!(s["synced"]["files"], 2, "{s}");
    assert_eq!(s["synced"]["bytes"], 10);
    assert_eq!(s["synced"]["folders"], 1);
    let last = &s["last_cycle"];
    assert_eq!(last["outcome"], "failed", "{s}");
    assert_eq!(last["exit"], 1);
    assert_eq!(last["uploaded"], 2);
    assert_eq!(last["bytes"], 10);
    assert_eq!(last["failed"], 1);
    assert!(last["started"].as_u64().unwrap() <= last["ended"].as_u64().unwrap());
    assert_eq!(s["failed"][0]["path"], "big.bin");
    assert!(s["failed"][0]["error"].as_str().unwrap().contains("larger than the account allows"), "{s}");
    assert_eq!(s["token"], serde_json::Value::Null, "an inline token has no known expiry");
    assert!(s["reconciled"].as_u64().is_some(), "a first run lists the Disk: {s}");

    // Once the file is gone, the next cycle with a change says all is well.
    fs::remove_file(fx.path("big.bin")).unwrap();
    fx.write("c.txt", "c");
    assert_eq!(fx.ysync(&["once"]).status.code(), Some(0));
    let s = status_json(&fx);
    assert_eq!((s["last_cycle"]["outcome"].as_str(), s["last_cycle"]["exit"].as_u64()), (Some("ok"), Some(0)), "{s}");
    assert_eq!(s["failed"], serde_json::json!([]));
    assert_eq!(fx.ysync(&["once", "--json"]).status.code(), Some(2), "--json belongs to status");
}

#[test]
fn a_token_file_s_expiry_is_in_status_json() {
    let fx = Fixture::new("");
    let text = fs::read_to_string(&fx.conf).unwrap();
    let token_file = fx.tmp.path().join("token");
    let expires = 4_102_444_800u64; // 2100-01-01
    fs::write(&token_file, format!("{}\nexpires = {expires}\n", fx.emu.token())).unwrap();
    fs::set_permissions(&token_file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let text: String = text.lines().filter(|l| !l.starts_with("token =")).map(|l| format!("{l}\n")).collect();
    fs::write(&fx.conf, format!("{text}token_file = {}\n", token_file.display())).unwrap();
    let s = status_json(&fx);
    assert_eq!(s["token"]["expires"], expires, "{s}");
    assert!(s["token"]["days_left"].as_u64().unwrap() > 365, "{s}");
    assert_eq!(s["token"]["renewed_automatically"], false, "no client_id: it cannot be renewed");
}

#[test]
fn on_success_gets_the_outcome_in_its_environment_and_not_the_lock_or_the_token() {
    let fx = Fixture::new("");
    let lock = format!("{}.lock", fx.state.display());
    // flock -n fails at once (status 1, nothing printed) if the lock is held.
    fx.configure(&format!("on_success = flock -n {lock} env\non_failure = /bin/false"));
    fx.write("a.txt", "alpha");
    fx.write("b.txt", "beta");
    let out = fx.command(&["once"]).env("YSYNC_TOKEN", fx.emu.token()).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    fx.assert_mirror();
    let env = hook_env(&stdout(&out));
    assert_eq!(env.get("YSYNC_OUTCOME").map(String::as_str), Some("ok"), "the hook ran, without the lock: {}", stdout(&out));
    assert_eq!(env["YSYNC_EXIT"], "0");
    assert_eq!(env["YSYNC_UPLOADED"], "2");
    assert_eq!(env["YSYNC_BYTES"], "9");
    assert_eq!(env["YSYNC_FAILED"], "0");
    assert_eq!(env["YSYNC_REMOTE_DIR"], "disk:/Backup");
    assert_eq!(env["YSYNC_LOCAL_DIR"], fx.local.display().to_string());
    assert!(!env.contains_key("YSYNC_TOKEN"), "the token is not handed to the hook");
    assert!(!stdout(&out).contains(&fx.emu.token()), "nor any other way");

    // An idle cycle is a success too: a health check hears from every one.
    let out = fx.ysync(&["once"]);
    assert_eq!(hook_env(&stdout(&out)).get("YSYNC_UPLOADED").map(String::as_str), Some("0"));
}

#[test]
fn on_failure_hears_of_a_rejected_token() {
    let fx = Fixture::new("on_failure = env\non_success = /bin/false");
    fx.write("a.txt", "alpha");
    let out = fx.command(&["once"]).env("YSYNC_TOKEN", "not-the-token").output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let env = hook_env(&stdout(&out));
    assert_eq!(env.get("YSYNC_OUTCOME").map(String::as_str), Some("token-rejected"), "{}", stdout(&out));
    assert_eq!(env["YSYNC_EXIT"], "3");
    assert!(env["YSYNC_MESSAGE"].contains("rejected"), "{env:?}");
}

#[test]
fn a_hook_that_hangs_is_killed_after_hook_timeout_and_changes_no_exit_status() {
    let fx = Fixture::new("on_success = sleep 600\nhook_timeout = 1");
    fx.write("a.txt", "alpha");
    let started = Instant::now();
    let out = fx.ysync_within(&["once"], 120);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(started.elapsed() < Duration::from_secs(60), "the hook was not waited for to its end");
    assert!(stderr(&out).contains("ran longer than hook_timeout (1s) and was killed"), "{}", stderr(&out));
    fx.assert_mirror();
}

#[test]
fn a_hook_that_is_not_there_is_a_config_error_naming_the_line() {
    let fx = Fixture::new("on_failure = no-such-notifier --now");
    let out = fx.ysync(&["once"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("ysync.conf:") && err.contains("on_failure: `no-such-notifier` is not found on PATH"), "{err}");
    let fx = Fixture::new("on_success = /bin/echo 'unclosed");
    assert!(stderr(&fx.ysync(&["once"])).contains("on_success: a ' is not closed"));
}

#[test]
fn run_calls_the_hook_after_every_cycle() {
    let fx = Fixture::new("interval = 1");
    let log = fx.tmp.path().join("hook.log");
    fx.configure(&format!("on_success = /bin/sh -c 'echo \"$YSYNC_OUTCOME $YSYNC_UPLOADED\" >> {}'", log.display()));
    fx.write("a.txt", "alpha");
    let mut child = fx.command(&["run"]).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let lines = loop {
        let lines = fs::read_to_string(&log).unwrap_or_default();
        if lines.lines().count() >= 3 || Instant::now() > deadline {
            break lines;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    let lines: Vec<&str> = lines.lines().collect();
    assert!(lines.len() >= 3, "three cycles, three calls: {lines:?}");
    assert_eq!(&lines[..3], ["ok 1", "ok 0", "ok 0"]);
}

#[test]
fn a_long_cycle_says_how_far_it_is() {
    // 3 MiB at 1 MiB/s: about three seconds, a progress line every second.
    // Four items: the three files and the folder Backup.
    let fx = Fixture::new("progress = 1\nbwlimit = 1M");
    for i in 0..3 {
        fx.write(&format!("v{i}.bin"), crate::support::bytes(1 << 20, i));
    }
    let out = fx.ysync(&["once"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("progress: ")).collect();
    assert!(lines.len() >= 2, "a line a second and one at the end: {err}");
    assert!(lines[0].contains(" of 4 items, ") && lines[0].contains(" of 3.0 MiB (") && lines[0].contains("/s, "), "{err}");
    let last = lines.last().unwrap();
    assert!(last.contains("progress: 4 of 4 items, 3.0 MiB of 3.0 MiB (100%), ") && last.ends_with("/s, done"), "{err}");

    // progress = 0: none.
    let fx = Fixture::new("progress = 0\nbwlimit = 1M");
    fx.write("v.bin", crate::support::bytes(3 << 20, 9));
    assert!(!stderr(&fx.ysync(&["once"])).contains("progress: "));
}

#[test]
fn on_a_terminal_the_progress_is_one_line_drawn_again_in_place() {
    let fx = Fixture::new("progress = 1\nbwlimit = 1M");
    fx.write("v.bin", crate::support::bytes(3 << 20, 5));
    // `script` (util-linux) gives ysync a terminal and keeps what it showed.
    let cmd = fx.command(&["once"]);
    let line: Vec<String> = std::iter::once(cmd.get_program()).chain(cmd.get_args()).map(|a| a.to_string_lossy().into_owned()).collect();
    let typescript = fx.tmp.path().join("typescript");
    let out = std::process::Command::new("script")
        .args(["-q", "-e", "-c", &line.join(" ")])
        .arg(&typescript)
        .env_remove("JOURNAL_STREAM")
        .env("HOME", fx.tmp.path())
        .output()
        .expect("script (util-linux) runs ysync on a terminal");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let shown = fs::read_to_string(&typescript).unwrap();
    let drawn = shown.matches("\rprogress: ").count();
    assert!(drawn >= 2, "drawn again in place, at the start of the line: {shown:?}");
    assert!(!shown.contains("INFO progress: "), "not a stream of log records: {shown:?}");
    assert!(shown.contains("INFO uploaded v.bin (3.0 MiB"), "the per-file line stays: {shown:?}");
    assert!(shown.contains("2 of 2 items, 3.0 MiB of 3.0 MiB (100%)"), "{shown:?}");
}
