//! Crashes at every step, not at random moments: one reference cycle (new,
//! changed, touched, renamed and deleted files and folders, throttled types,
//! a file large enough to be journalled durably) is killed at each of its
//! requests, before and after the Disk did the work, and at each point
//! where it makes a state file durable, as `kill -9` and as a power cut.
//! After each crash the next `once` must exit 0 with an exact mirror, no
//! leftover, and no byte re-sent beyond the one file that was in flight.

use std::fs;
use std::process::Command;
use std::time::Duration;

use crate::emulator::{FakeDisk, Options};
use crate::support::{Fixture, assert_state_matches_remote, bytes, output_within, stderr};

/// The largest file the reference cycle sends.
const LARGEST: u64 = 1_200_000;

/// A synced tree, then the edits that the reference cycle mirrors.
fn prepared() -> Fixture {
    prepared_with("")
}

/// The same, with more config lines.
fn prepared_with(extra: &str) -> Fixture {
    // Links live 30 minutes, as on the real Disk: nothing here may rely on
    // an unused link's operation ending early. No finalisation lag: its
    // retries would make the count of requests depend on timing, and every
    // request is a crash point here (tests/it/promises.rs covers the lag).
    let fx = Fixture::with(
        FakeDisk::with(Options { op_delay: Duration::from_millis(20), lag_ms_per_mib: 0, ..Options::default() }),
        "/Backup",
        &format!("max_delete = 100%\n{extra}"),
    );
    fx.write("anchor.txt", "never deleted");
    fx.write("a.txt", "touched only");
    fx.write("d/b.txt", "changes size");
    fx.write("d/same.bin", bytes(70_000, 1));
    fx.write("old/x.txt", "x");
    fx.write("old/y.txt", "y");
    fx.write("album/1.jpg", bytes(90_000, 2));
    fx.write("album/2.jpg", bytes(90_000, 3));
    fx.write("rename-me.bin", bytes(100_000, 4));
    fx.write("big.bin", bytes(LARGEST as usize, 5));
    fx.sync();

    fx.write("new.txt", "new");
    fx.write("d/b.txt", "changes size: longer now");
    fx.write("d/same.bin", bytes(70_000, 6)); // same size, other content
    fx.write("big.bin", bytes(LARGEST as usize, 7));
    fx.write("clip.mp4", bytes(150_000, 8)); // throttled: temporary name, then a move
    let a = fx.path("a.txt");
    crate::support::set_mtime(&a, std::time::SystemTime::now() + Duration::from_secs(60));
    fs::rename(fx.path("rename-me.bin"), fx.path("renamed.bin")).unwrap();
    fs::rename(fx.path("album"), fx.path("Album 2024")).unwrap();
    fs::remove_dir_all(fx.path("old")).unwrap();
    fx.mkdir("empty/inner");
    fx
}

/// What the reference cycle costs when nothing goes wrong.
fn reference() -> (u64, u64) {
    reference_with("")
}

fn reference_with(extra: &str) -> (u64, u64) {
    let fx = prepared_with(extra);
    fx.emu.reset_counts();
    fx.sync();
    fx.assert_mirror();
    (fx.emu.total_requests(), fx.emu.uploaded_bytes())
}

/// The next `once` after a crash: exit 0, an exact mirror, a state that
/// says what the Disk holds, and an idle cycle after it.
fn converges(fx: &Fixture, what: &str, reference_bytes: u64) {
    let out = fx.ysync_within(&["once"], 60);
    assert_eq!(out.status.code(), Some(0), "{what}: the next once\n{}", stderr(&out));
    fx.assert_mirror();
    assert_state_matches_remote(fx);
    let sent = fx.emu.uploaded_bytes();
    assert!(sent <= reference_bytes + LARGEST, "{what}: {sent} bytes sent in all, {reference_bytes} without the crash");
    fx.emu.reset_counts();
    let out = fx.ysync_within(&["once"], 60);
    assert_eq!((out.status.code(), fx.emu.total_requests()), (Some(0), 0), "{what}: then idle\n{}", stderr(&out));
}

fn kill_at_every_request(after: bool) {
    kill_at_every_request_with(after, "", |_, _| {});
}

fn kill_at_every_request_with(after: bool, extra: &str, check: impl Fn(&Fixture, &str)) {
    let (requests, reference_bytes) = reference_with(extra);
    assert!(requests >= 15, "the reference cycle makes {requests} requests");
    for request in 1..=requests {
        let what = format!("killed at request {request} of {requests}, {} the work", if after { "after" } else { "before" });
        let fx = prepared_with(extra);
        fx.emu.reset_counts();
        fx.once_killed_at(request, after);
        converges(&fx, &what, reference_bytes);
        check(&fx, &what);
    }
    println!("{} kill points converged", requests);
}

/// With `backup_dir`, every old content the reference cycle replaces or
/// deletes is kept under /Versions, whichever request the kill hit.
fn versions_kept(fx: &Fixture, what: &str) {
    let kept: Vec<Vec<u8>> = fx.emu.tree("/Versions").into_values().flatten().collect();
    for (name, old) in [
        ("d/b.txt", b"changes size".to_vec()),
        ("d/same.bin", bytes(70_000, 1)),
        ("big.bin", bytes(LARGEST as usize, 5)),
        ("old/x.txt", b"x".to_vec()),
        ("old/y.txt", b"y".to_vec()),
    ] {
        assert!(kept.contains(&old), "{what}: the old {name} is not kept");
    }
}

#[test]
fn a_kill_at_any_request_with_versions_kept_converges_and_keeps_every_old_version() {
    for after in [false, true] {
        kill_at_every_request_with(after, "backup_dir = disk:/Versions", versions_kept);
    }
}

#[test]
fn a_kill_at_any_request_before_the_disk_works_on_it_converges() {
    kill_at_every_request(false);
}

#[test]
fn a_kill_at_any_request_after_the_disk_did_the_work_converges() {
    kill_at_every_request(true);
}

/// `YSYNC_TEST_CRASH_AT_SYNC` / `YSYNC_TEST_POWER_CUT_AT_SYNC` (debug
/// builds only) end ysync at its Nth state sync point.
fn crash_at_every_sync_point(var: &str) {
    let (_, reference_bytes) = reference();
    let mut points = 0;
    for n in 1.. {
        assert!(n < 500, "the reference cycle never ends");
        let what = format!("{var}={n}");
        let fx = prepared();
        fx.emu.reset_counts();
        let mut cmd: Command = fx.command(&["once"]);
        cmd.env(var, n.to_string());
        let out = output_within(cmd, Duration::from_secs(60));
        if out.status.code() == Some(0) {
            break; // past the last sync point
        }
        assert!(stderr(&out).contains("at state sync point"), "{what}\n{}", stderr(&out));
        points += 1;
        converges(&fx, &what, reference_bytes);
    }
    assert!(points > 5, "only {points} sync points");
    println!("{points} sync points converged");
}

#[test]
fn a_crash_at_any_state_sync_point_converges() {
    crash_at_every_sync_point("YSYNC_TEST_CRASH_AT_SYNC");
}

#[test]
fn a_power_cut_at_any_state_sync_point_converges() {
    crash_at_every_sync_point("YSYNC_TEST_POWER_CUT_AT_SYNC");
}

/// A folder renamed onto someone else's folder is merged entry by entry
/// (tests/it/smart.rs); killed at any of those requests, the journalled move
/// finishes the merge in the next run: everything of ysync's at the new
/// name, the foreign files kept, the old folder gone, nothing sent again.
#[test]
fn a_merge_into_a_foreign_folder_killed_at_any_request_converges() {
    let merging = || {
        let fx = Fixture::with(
            FakeDisk::with(Options { op_delay: Duration::from_millis(20), lag_ms_per_mib: 0, ..Options::default() }),
            "/Backup",
            "max_delete = 100%",
        );
        fx.write("keep.txt", "k");
        for i in 0..3 {
            fx.write(&format!("album/{i}.jpg"), bytes(5_000, i));
        }
        fx.write("album/2024/deep.jpg", "deep");
        fx.sync();
        fx.emu.put_file("/Backup/trip/theirs.jpg", b"someone's");
        fx.emu.put_file("/Backup/trip/2024/theirs-too.jpg", b"theirs");
        fs::rename(fx.path("album"), fx.path("trip")).unwrap();
        fx.emu.reset_counts();
        fx
    };
    let fx = merging();
    fx.sync();
    let requests = fx.emu.total_requests();
    assert!(requests >= 8, "the merge makes {requests} requests");
    let expected: Vec<String> = fx.emu.tree("/Backup/trip").into_keys().collect();
    for after in [false, true] {
        for request in 1..=requests {
            let what = format!("killed at request {request} of {requests}, {} the work", if after { "after" } else { "before" });
            let fx = merging();
            fx.once_killed_at(request, after);
            let out = fx.ysync_within(&["once"], 60);
            assert_eq!(out.status.code(), Some(0), "{what}\n{}", stderr(&out));
            assert_eq!(fx.emu.tree("/Backup/trip").into_keys().collect::<Vec<_>>(), expected, "{what}");
            assert!(!fx.emu.exists("/Backup/album"), "{what}: the old folder is gone");
            assert_eq!(fx.emu.uploaded_bytes(), 0, "{what}: nothing sent again");
            assert_state_matches_remote(&fx);
            fx.emu.reset_counts();
            let out = fx.ysync_within(&["once"], 60);
            assert_eq!((out.status.code(), fx.emu.total_requests()), (Some(0), 0), "{what}: then idle\n{}", stderr(&out));
        }
    }
}
