//! The contract's promises, each shown against the emulator with the fault
//! that would break it: network trouble, safety stops, hostile input, secrets.

use std::fs;
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::emulator::{FakeDisk, Fault, FaultKind, Options};
use crate::support::{Fixture, bytes, is_root, stderr};

const LINK: &str = "GET /v1/disk/resources/upload";
const PUT: &str = "PUT upload";
const MKDIR: &str = "PUT /v1/disk/resources";
const META: &str = "GET /v1/disk/resources";

fn fixture_with(opts: Options, extra: &str) -> Fixture {
    Fixture::with(FakeDisk::with(opts), "/Backup", extra)
}

fn fault(endpoint: &str, kind: FaultKind, times: u32) -> Fault {
    Fault::new(endpoint, kind, times)
}

// ---------------------------------------------------------------- network

#[test]
fn server_errors_resets_and_429_are_retried() {
    let fx = Fixture::new("");
    fx.write("d/a.txt", "a");
    fx.write("b.txt", "b");
    fx.emu.inject(fault(MKDIR, FaultKind::Status(503, "ServiceUnavailable"), 2));
    fx.emu.inject(fault(LINK, FaultKind::Status(500, "InternalServerError"), 1));
    fx.emu.inject(fault(LINK, FaultKind::Reset, 1));
    fx.emu.inject(fault(LINK, FaultKind::Status(502, "BadGateway"), 1));
    fx.sync();
    fx.assert_mirror();
    assert_eq!(fx.emu.faults_injected(), 5);
}

#[test]
fn retry_after_is_honoured() {
    let fx = fixture_with(Options { retry_after: Some(1), ..Options::default() }, "");
    fx.write("a.txt", "a");
    fx.emu.inject(fault(LINK, FaultKind::Status(429, "TooManyRequestsError"), 1));
    let start = Instant::now();
    fx.sync();
    assert!(start.elapsed() >= Duration::from_secs(1), "the emulator said Retry-After: 1");
    fx.assert_mirror();
}

/// The Disk publishes no quota and no source shows it sending `Retry-After`
/// (R6). Here it allows 10 API calls a second and, once they are used up,
/// refuses every call for 6 s with a bare 429: longer than the 3.75 s that
/// five tries back off. On 5fa1979 files failed ("429 … gave up") and the
/// cycle exited 1; now one pacer slows every call, and a 429 is waited out.
#[test]
fn bare_429s_slow_every_call_down_and_fail_nothing() {
    let limit = Options { rate_limit: 10, rate_penalty: Duration::from_secs(6), ..Options::default() };
    let fx = fixture_with(limit, "");
    for i in 0..20 {
        fx.write(&format!("f{i:02}.txt"), format!("file {i}"));
    }
    let out = fx.ysync_within(&["once"], 120);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    fx.assert_mirror();
    let calls = fx.emu.total_requests() - fx.emu.count(PUT);
    assert!(fx.emu.rate_limited() > 0, "the limit was hit");
    // Each penalty costs a handful of refused calls, not one per file.
    assert!(fx.emu.rate_limited() * 4 <= calls, "{} of {calls} calls refused", fx.emu.rate_limited());
}

#[test]
fn a_slow_answer_times_out_and_is_retried() {
    let fx = Fixture::new("timeout = 1");
    fx.write("a.txt", "a");
    fx.emu.inject(fault(LINK, FaultKind::Delay(Duration::from_millis(2500)), 1));
    fx.sync();
    fx.assert_mirror();
    assert_eq!(fx.emu.count(LINK), 2);
}

#[test]
fn reset_mid_upload_is_retried_with_a_new_link() {
    let fx = Fixture::new("");
    fx.write("big.bin", bytes(3 << 20, 1));
    fx.emu.inject(fault(PUT, FaultKind::Reset, 1));
    fx.sync();
    fx.assert_mirror();
    assert_eq!((fx.emu.count(LINK), fx.emu.count(PUT)), (2, 2), "a used link is never reused");
}

#[test]
fn an_upload_that_landed_although_the_answer_was_lost_is_not_sent_again() {
    let fx = Fixture::new("");
    fx.write("anchor.txt", "first sync, so that only the upload below is counted");
    fx.sync();
    fx.emu.reset_counts();
    fx.write("big.bin", bytes(2 << 20, 2));
    fx.emu.inject(fault(PUT, FaultKind::ResetAfter, 1));
    fx.sync();
    fx.assert_mirror();
    assert_eq!(fx.emu.count(PUT), 1, "{:?}", fx.emu.counts());
    // The upload's operation said it succeeded (asked until it did: it stays
    // in progress while the Disk finalises the file); the Disk then showed it.
    assert!((1..=4).contains(&fx.emu.count("GET /v1/disk/operations")), "{:?}", fx.emu.counts());
    assert!(fx.emu.count(META) >= 1, "the remote was checked instead");
    fx.emu.reset_counts();
    fx.sync();
    assert_eq!(fx.emu.total_requests(), 0, "and it is recorded as synced");
}

#[test]
fn an_upload_answered_202_is_recorded_only_once_the_disk_shows_it() {
    let fx = fixture_with(Options { op_delay: Duration::from_millis(300), ..Options::default() }, "");
    fx.write("anchor.txt", "first sync, so that only the upload below is counted");
    fx.sync();
    fx.emu.reset_counts();
    fx.write("a.bin", bytes(5000, 3));
    fx.emu.inject(fault(PUT, FaultKind::Accepted, 1));
    // The file's metadata lags the operation: two 404s first.
    fx.emu.inject(fault(META, FaultKind::Status(404, "DiskNotFoundError"), 2));
    fx.sync();
    fx.assert_mirror();
    assert_eq!(fx.emu.count(META), 3, "{:?}", fx.emu.counts());
    assert_eq!(fx.emu.count(PUT), 1);
}

#[test]
fn a_persistently_failing_file_fails_alone_and_goes_next_cycle() {
    let fx = Fixture::new("");
    fx.write("bad.txt", "b");
    fx.write("good.txt", "g");
    let mut f = fault(PUT, FaultKind::Status(500, "InternalServerError"), 5);
    f.path_contains = "bad.txt".into();
    fx.emu.inject(f);
    let out = fx.ysync(&["once"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("failed: upload bad.txt"), "{}", stderr(&out));
    assert_eq!(fx.emu.file("/Backup/good.txt").as_deref(), Some(&b"g"[..]));
    assert_eq!(fx.emu.count(PUT), 6, "5 tries for bad.txt, 1 for good.txt");
    assert_eq!(fx.state_json()["last"]["failed"]["bad.txt"], "the Disk had an internal error (HTTP 500)");
    fx.sync();
    fx.assert_mirror();
}

#[test]
fn a_busy_path_423_is_retried_but_the_traffic_limit_waits_for_the_next_cycle() {
    let fx = Fixture::new("");
    fx.write("a.txt", "a");
    fx.emu.inject(fault(LINK, FaultKind::Status(423, "DiskResourceLockedError"), 2));
    fx.sync();
    fx.assert_mirror();

    fx.write("b.txt", "b");
    fx.emu.inject(fault(LINK, FaultKind::Status(423, "DiskUploadTrafficLimitExceeded"), 1));
    let out = fx.ysync(&["once"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("DiskUploadTrafficLimitExceeded"), "{}", stderr(&out));
    fx.sync();
    fx.assert_mirror();
}

#[test]
fn a_full_disk_stops_uploads_with_one_message_and_deletions_go_on() {
    let fx = fixture_with(Options { total_space: 10_000, ..Options::default() }, "");
    fx.write("old.txt", "old");
    fx.write("keep.txt", "keep");
    fx.sync();
    fs::remove_file(fx.path("old.txt")).unwrap();
    fx.write("huge1.bin", bytes(20_000, 4));
    fx.write("huge2.bin", bytes(20_000, 5));
    fx.emu.reset_counts();
    let out = fx.ysync(&["once"]);
    let log = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert_eq!(log.matches("the Disk is full").count(), 1, "{log}");
    assert!(log.contains("huge1.bin needs 19.5 KiB"), "{log}");
    // huge1.bin's, refused; nothing after it.
    assert_eq!(fx.emu.count(PUT), 1, "no upload after the first 507");
    assert!(!fx.emu.exists("/Backup/old.txt"), "the deletion still happened");
}

#[test]
fn a_file_over_the_size_limit_is_skipped_naming_the_limit() {
    let fx = fixture_with(Options { max_file_size: 1000, ..Options::default() }, "");
    fx.write("too-big.bin", bytes(2000, 6));
    fx.write("fine.txt", "fine");
    let out = fx.ysync(&["once"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("too-big.bin (2.0 KiB) is larger than the account allows per file (1000 B)"), "{}", stderr(&out));
    assert!(fx.emu.exists("/Backup/fine.txt"));
}

#[test]
fn a_token_rejected_mid_cycle_stops_at_once_without_retrying() {
    let fx = Fixture::new("");
    fx.write("a.txt", "a");
    fx.write("b.txt", "b");
    fx.emu.inject(fault(LINK, FaultKind::Status(401, "UnauthorizedError"), 1));
    let out = fx.ysync(&["once"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("get a new one"), "{}", stderr(&out));
    assert_eq!(fx.emu.count(LINK), 1);
    fx.emu.inject(fault(LINK, FaultKind::Status(403, "DiskUnsupportedUserAccountTypeError"), 1));
    let out = fx.ysync(&["once"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("403 DiskUnsupportedUserAccountTypeError"), "{}", stderr(&out));
}

#[test]
fn a_remote_file_changed_by_someone_else_is_not_deleted() {
    let fx = Fixture::new("");
    fx.write("shared.txt", "mine");
    fx.write("other.txt", "o");
    fx.write("third.txt", "t");
    fx.sync();
    fx.emu.put_file("/Backup/shared.txt", b"someone else's newer version");
    fs::remove_file(fx.path("shared.txt")).unwrap();
    let out = fx.sync();
    assert!(stderr(&out).contains("not deleted: shared.txt"), "{}", stderr(&out));
    assert_eq!(fx.emu.file("/Backup/shared.txt").as_deref(), Some(&b"someone else's newer version"[..]));
    fx.emu.reset_counts();
    fx.sync();
    assert_eq!(fx.emu.total_requests(), 0, "it is not tracked any more");
}

// ---------------------------------------------------------------- safety stops

#[test]
fn the_next_cycle_proceeds_once_local_dir_is_back() {
    let fx = Fixture::new("");
    fx.write("a.txt", "a");
    fx.sync();
    let aside = fx.tmp.path().join("unmounted");
    fs::rename(&fx.local, &aside).unwrap();
    fs::write(&fx.local, "a file where the folder was").unwrap();
    let out = fx.ysync(&["once"]);
    assert_eq!(out.status.code(), Some(4));
    assert!(stderr(&out).contains("is not a folder"), "{}", stderr(&out));
    fs::remove_file(&fx.local).unwrap();
    fs::rename(&aside, &fx.local).unwrap();
    fx.write("b.txt", "b");
    fx.sync();
    fx.assert_mirror();
}

#[test]
fn unreadable_folders_and_files_keep_their_remote_copies() {
    let mut fx = Fixture::new("");
    fx.become_nobody();
    fx.write("secret/inside.txt", "s");
    fx.write("locked.txt", "l");
    fx.write("open.txt", "o");
    fx.sync();
    let mode = |p: &str, m: u32| fs::set_permissions(fx.path(p), std::os::unix::fs::PermissionsExt::from_mode(m)).unwrap();
    mode("secret", 0o000);
    mode("locked.txt", 0o000);
    fx.write("open.txt", "changed");
    let out = fx.sync();
    let log = stderr(&out);
    mode("secret", 0o755);
    assert!(log.contains("secret: folder cannot be read"), "{log}");
    assert!(log.contains("locked.txt: cannot be read"), "{log}");
    assert_eq!(fx.emu.file("/Backup/secret/inside.txt").as_deref(), Some(&b"s"[..]));
    assert_eq!(fx.emu.file("/Backup/locked.txt").as_deref(), Some(&b"l"[..]));
    assert_eq!(fx.emu.file("/Backup/open.txt").as_deref(), Some(&b"changed"[..]));
}

#[test]
fn a_file_that_vanishes_before_its_upload_is_simply_gone() {
    let fx = Fixture::new("");
    fx.write("a.txt", "a");
    fx.write("b.txt", "b");
    let mut f = fault(LINK, FaultKind::Delay(Duration::from_millis(800)), 1);
    f.path_contains = "a.txt".into();
    fx.emu.inject(f);
    let child = fx.command(&["once"]).stderr(std::process::Stdio::piped()).spawn().unwrap();
    sleep(Duration::from_millis(300));
    fs::remove_file(fx.path("b.txt")).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("b.txt vanished"), "{}", stderr(&out));
    fx.assert_mirror();
}

#[test]
fn a_file_changed_during_its_upload_goes_again_next_cycle() {
    let fx = fixture_with(Options { upload_rate: 1 << 20, ..Options::default() }, "");
    fx.write("growing.bin", bytes(2 << 20, 7));
    let child = fx.command(&["once"]).stderr(std::process::Stdio::piped()).spawn().unwrap();
    sleep(Duration::from_millis(600));
    fx.write("growing.bin", bytes(2 << 20, 8)); // same size, new content
    let out = child.wait_with_output().unwrap();
    assert!(stderr(&out).contains("changed while it was uploaded"), "{}", stderr(&out));
    fx.emu.reset_counts();
    fx.sync();
    assert_eq!(fx.emu.count(PUT), 1, "sent again");
    fx.assert_mirror();
}

// ---------------------------------------------------------------- hostile input

#[test]
fn hostile_entries_are_skipped_with_one_warning_each_and_never_hang() {
    use std::os::unix::ffi::OsStrExt;
    let fx = Fixture::new("interval = 1");
    fx.write("ok/file.txt", "ok");
    let outside = fx.tmp.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("x"), "x").unwrap();
    let link = |target: &std::path::Path, name: &str| std::os::unix::fs::symlink(target, fx.path(name)).unwrap();
    link(&fx.path("ok/file.txt"), "link-to-file");
    link(&outside, "link-to-outside-folder");
    link(std::path::Path::new("/nonexistent/target"), "dangling");
    link(&fx.path("ok"), "ok/loop");
    assert!(Command::new("mkfifo").arg(fx.path("fifo")).status().unwrap().success());
    let _socket = std::os::unix::net::UnixListener::bind(fx.path("socket")).unwrap();
    if is_root() {
        assert!(Command::new("mknod").arg(fx.path("device")).args(["c", "1", "3"]).status().unwrap().success());
    }
    fs::write(fx.local.join(std::ffi::OsStr::from_bytes(b"latin1-\xe9t\xe9.txt")), "x").unwrap();
    fx.write("bell\u{7}.txt", "x");

    // `run` for several cycles: each is warned about once, not every cycle.
    let child = fx.command(&["run"]).stderr(std::process::Stdio::piped()).spawn().unwrap();
    sleep(Duration::from_millis(2600));
    Command::new("kill").arg(child.id().to_string()).status().unwrap();
    let out = child.wait_with_output().unwrap();
    let log = stderr(&out);
    let mut names = vec!["link-to-file", "link-to-outside-folder", "dangling", "ok/loop", "fifo", "socket", "latin1-", "bell"];
    if is_root() {
        names.push("device");
    }
    for n in names {
        assert_eq!(log.matches(&format!("skipped {}/{n}", fx.local.display())).count(), 1, "{n}:\n{log}");
    }
    assert_eq!(fx.emu.tree("/Backup").keys().collect::<Vec<_>>(), ["ok", "ok/file.txt"]);
}

#[test]
fn a_damaged_state_file_is_kept_aside_and_never_leads_to_deletions() {
    let fx = Fixture::new("");
    fx.write("a.txt", "a");
    fx.write("gone.txt", "g");
    fx.sync();
    fs::remove_file(fx.path("gone.txt")).unwrap();
    fs::write(&fx.state, b"{\"version\":1,\"remote_dir\":\"/Backup\",\"files\":{\"a.t").unwrap();
    let out = fx.sync();
    assert!(stderr(&out).contains("is damaged"), "{}", stderr(&out));
    assert!(fx.emu.exists("/Backup/gone.txt"), "nothing deleted on a guess");
    assert_eq!(fx.emu.trash().len(), 0);
    let aside = fs::read_dir(fx.state.parent().unwrap())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_str().unwrap().contains(".damaged-"))
        .count();
    assert_eq!(aside, 1);
    fx.emu.reset_counts();
    fx.sync();
    assert_eq!(fx.emu.total_requests(), 0, "the fresh state works");
}

// ---------------------------------------------------------------- secrets and signals

#[test]
fn a_config_holding_the_token_readable_by_others_gets_a_warning() {
    let fx = Fixture::new("");
    fx.write("a.txt", "a");
    assert!(!stderr(&fx.sync()).contains("can be read by other users"));
    fs::set_permissions(&fx.conf, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let log = stderr(&fx.sync());
    assert!(
        log.contains(&format!(
            "{} holds a secret (token or client_secret) and can be read by other users; run: chmod 600",
            fx.conf.display()
        )),
        "{log}"
    );
}

#[test]
fn sigterm_stops_run_promptly_even_mid_upload() {
    let fx = fixture_with(Options { upload_rate: 256 << 10, ..Options::default() }, "");
    fx.write("a.txt", "a");
    fx.write("slow.bin", bytes(1 << 20, 9)); // 4 s at this rate
    let mut child = fx.command(&["run"]).spawn().unwrap();
    sleep(Duration::from_millis(700));
    let start = Instant::now();
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let status = child.wait().unwrap();
    assert!(start.elapsed() < Duration::from_secs(3), "took {:?}", start.elapsed());
    assert!(!status.success());
    // Whatever was saved is valid, and a clean run converges.
    if fx.state.exists() {
        fx.state_json();
    }
    fx.sync();
    fx.assert_mirror();
}

/// Killed after a new folder's creation reached the Disk, before ysync
/// heard back; then the folder is removed locally. It must not stay on the
/// Disk, unknown to every state.
#[test]
fn a_folder_created_just_before_a_kill_is_not_left_behind() {
    let fx = Fixture::new("");
    fx.write("keep.txt", "k");
    fx.sync();
    fx.mkdir("ghost");
    let mut slow = Fault::new("PUT /v1/disk/resources", FaultKind::Delay(Duration::from_millis(800)), 1);
    slow.path_contains = "ghost".into();
    fx.emu.inject(slow);
    fx.emu.reset_counts();
    let mut child = fx.command(&["once"]).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
    let until = |what: &dyn Fn() -> bool| {
        let start = Instant::now();
        while !what() {
            assert!(start.elapsed() < Duration::from_secs(10), "timed out");
            sleep(Duration::from_millis(10));
        }
    };
    until(&|| fx.emu.count("PUT /v1/disk/resources") >= 1);
    child.kill().unwrap(); // SIGKILL while the Disk is still working on it
    child.wait().unwrap();
    until(&|| fx.emu.exists("/Backup/ghost"));
    fs::remove_dir(fx.path("ghost")).unwrap();

    fx.sync();

    fx.assert_mirror();
}

/// The Disk answers 202 and then no longer knows the operation (404
/// `DiskOperationNotFoundError`, its recorded answer for an unknown id).
/// That is a failed operation, repeated; never a folder taken for deleted.
#[test]
fn an_operation_the_disk_forgot_is_repeated_not_taken_for_done() {
    let fx = Fixture::new("");
    fx.write("keep.txt", "k");
    fx.write("old/a.txt", "a");
    fx.write("old/b.txt", "b");
    fx.sync();
    fs::remove_dir_all(fx.path("old")).unwrap();
    fx.emu.inject(fault("DELETE /v1/disk/resources", FaultKind::Vanish, 1));
    fx.sync();
    fx.assert_mirror();
    assert_eq!(fx.emu.count("DELETE /v1/disk/resources"), 2, "repeated once");
}

/// Operation links name `cloud-api.yandex.net` (sometimes over http://)
/// whatever host ysync asked; only the id is taken, and polled at api_url.
#[test]
fn operation_links_on_the_real_host_are_polled_at_api_url() {
    let fx = Fixture::new("");
    fx.write("d/a.txt", "a");
    fx.write("e/b.txt", "b");
    fx.sync();
    fs::rename(fx.path("d"), fx.path("d2")).unwrap(); // a 202 (a folder with files)
    fs::remove_dir_all(fx.path("e")).unwrap(); // another 202
    fx.emu.reset_counts();
    fx.sync();
    fx.assert_mirror();
    assert!(fx.emu.count("GET /v1/disk/operations") >= 2, "{:?}", fx.emu.counts());
}

/// A file over the per-file limit, or over the free space, is refused
/// before its body is read, and a large body then meets a broken pipe, not
/// the status (R4). ysync asks the account first and sends nothing that
/// cannot fit; before, it sent 24 MB five times and called it a network error.
#[test]
fn a_large_file_that_cannot_fit_is_not_sent_at_all() {
    let fx = fixture_with(Options { max_file_size: 16 << 20, total_space: 40 << 20, ..Options::default() }, "");
    fx.write("small.txt", "fits");
    fx.write("video.bin", bytes(24 << 20, 7));
    fx.write("other.bin", bytes(5 << 20, 8));
    let out = fx.ysync_within(&["once"], 60);
    let log = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(log.contains("video.bin (24.0 MiB) is larger than the account allows per file (16.0 MiB)"), "{log}");
    assert_eq!(fx.emu.file("/Backup/other.bin").map(|b| b.len()), Some(5 << 20), "the rest still goes");
    let sent = fx.emu.uploaded_bytes();
    assert_eq!(sent, 4 + (5 << 20), "nothing of video.bin was sent\n{log}");

    // Now a limit it fits under, but not the free space: only that file fails.
    let fx = fixture_with(Options { total_space: 20 << 20, ..Options::default() }, "");
    fx.write("video.bin", bytes(24 << 20, 7));
    fx.write("small.txt", "fits");
    let out = fx.ysync_within(&["once"], 60);
    let log = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(log.contains("larger than the Disk's free space (20.0 MiB free), so not sent"), "{log}");
    assert_eq!(fx.emu.count(PUT), 1, "small.txt only\n{log}");
    assert!(fx.emu.exists("/Backup/small.txt"));
}

/// After the last byte the uploader finalises the file before it answers,
/// longer for bigger files (B1: about 2 minutes per GiB). The answer gets a
/// budget that grows with the size; past it, the upload's operation decides
/// before anything is sent again. On 5fa1979 this 10 MiB file went five times.
#[test]
fn a_big_upload_whose_answer_comes_late_is_sent_once() {
    // 2 s after the body: within the budget (timeout + 4 min/GiB).
    let fx = fixture_with(Options { finalize_ms_per_mib: 200, ..Options::default() }, "timeout = 1\nthrottle_workaround = no");
    fx.write("disk.img", bytes(10 << 20, 9));
    let out = fx.ysync_within(&["once"], 60);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(fx.emu.count(PUT), 1, "{}", stderr(&out));
    fx.assert_mirror();

    // 6 s: past it. The answer times out; the operation ends when the file
    // is stored, and says so.
    let fx = fixture_with(Options { finalize_ms_per_mib: 600, ..Options::default() }, "timeout = 1\nthrottle_workaround = no");
    fx.write("disk.img", bytes(10 << 20, 9));
    let out = fx.ysync_within(&["once"], 60);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("but the file landed; not sent again"), "{}", stderr(&out));
    assert_eq!(fx.emu.count(PUT), 1, "{}", stderr(&out));
    fx.assert_mirror();
}

/// Right after an upload the Disk may not show the file for a while (R1):
/// the move of a throttled type from its temporary name meets a 404. It is
/// asked again; the file is never uploaded twice because of the lag.
#[test]
fn a_move_right_after_an_upload_waits_out_the_finalisation_lag() {
    let fx = fixture_with(Options { lag_ms_per_mib: 400, ..Options::default() }, "");
    fx.write("holiday.mp4", bytes(8 << 20, 10)); // shown 3.2 s after its upload
    let out = fx.ysync_within(&["once"], 60);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(fx.emu.count(PUT), 1, "{}", stderr(&out));
    fx.assert_mirror();
}

/// The live Disk may ignore `md5=` on DELETE (R2: documented in Russian
/// only, never recorded refusing). Deletions do not rest on it: each file
/// is looked at first, and one someone else changed is never deleted, in
/// both modes.
#[test]
fn only_ysyncs_files_are_deleted_even_when_the_disk_ignores_md5() {
    for ignore_md5 in [false, true] {
        let fx = fixture_with(Options { ignore_md5, ..Options::default() }, "");
        fx.write("shared.txt", "mine");
        fx.write("mine.txt", "m");
        fx.write("third.txt", "t");
        fx.sync();
        fx.emu.put_file("/Backup/shared.txt", b"someone else's newer version");
        fs::remove_file(fx.path("shared.txt")).unwrap();
        fs::remove_file(fx.path("mine.txt")).unwrap();
        let out = fx.sync();
        let log = stderr(&out);
        assert!(log.contains("not deleted: shared.txt"), "ignore_md5 = {ignore_md5}: {log}");
        assert_eq!(fx.emu.file("/Backup/shared.txt").as_deref(), Some(&b"someone else's newer version"[..]), "ignore_md5 = {ignore_md5}");
        assert!(!fx.emu.exists("/Backup/mine.txt"), "ignore_md5 = {ignore_md5}: ysync's own file is deleted");
        assert!(!fx.emu.exists("/Backup/.ysync-md5-probe.txt"), "no probe");
    }
}

/// A folder deleted locally that holds, on the Disk, something ysync did
/// not put there (a phone upload, a file edited on the web) is not deleted
/// whole: ysync's files go, and sub-folders of its own with nothing foreign
/// in them; the foreign content stays. On 5fa1979 it went with the folder.
#[test]
fn a_deleted_folder_takes_only_ysyncs_files_with_it() {
    let fx = Fixture::new("max_delete = 100%");
    fx.write("keep.txt", "k");
    fx.write("album/a.jpg", "a");
    fx.write("album/b.jpg", "b");
    fx.write("album/2024/c.jpg", "c");
    fx.write("album/edited.txt", "mine");
    fx.sync();
    fx.emu.put_file("/Backup/album/from-phone.jpg", b"someone's photo");
    fx.emu.put_file("/Backup/album/edited.txt", b"edited on the web");
    fs::remove_dir_all(fx.path("album")).unwrap();
    let out = fx.ysync_within(&["once"], 30);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("folder album on the Disk holds 2 things ysync did not put there"), "{}", stderr(&out));
    let left: Vec<String> = fx.emu.tree("/Backup/album").into_keys().collect();
    assert_eq!(left, ["edited.txt", "from-phone.jpg"]);

    // All of it ysync's: one listing and one delete, as before.
    fx.write("trip/x.jpg", "x");
    fx.sync();
    fs::remove_dir_all(fx.path("trip")).unwrap();
    fx.emu.reset_counts();
    fx.sync();
    assert!(!fx.emu.exists("/Backup/trip"));
    assert_eq!((fx.emu.count("GET /v1/disk/resources"), fx.emu.count("DELETE /v1/disk/resources")), (1, 1), "{:?}", fx.emu.counts());
}

/// Under a steady limit (20 API calls a second, no penalty) the pacer keeps
/// ysync near the limit instead of running into it again after each wait:
/// 4 of 69 calls refused, where each request backing off on its own alone
/// (the pacer's waits switched off) met 8 to 10 refusals of 73 to 75.
#[test]
fn under_a_steady_rate_limit_few_calls_are_refused() {
    let fx = fixture_with(Options { rate_limit: 20, ..Options::default() }, "");
    for i in 0..60 {
        fx.write(&format!("d{}/f{i:02}.txt", i % 3), format!("file {i}"));
    }
    let out = fx.ysync_within(&["once"], 120);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    fx.assert_mirror();
    let calls = fx.emu.total_requests() - fx.emu.count(PUT);
    assert!(fx.emu.rate_limited() * 10 <= calls, "{} of {calls} API calls refused", fx.emu.rate_limited());
}
