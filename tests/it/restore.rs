//! Issue 27: the files' dates on the Disk, and getting everything back
//! (`ysync restore --all`, a folder, `--as-of`), with the disaster-recovery
//! loop closed (a restore, then a sync that sends nothing).

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::support::{Fixture, set_mtime, stderr};

const PATCH: &str = "PATCH /v1/disk/resources";

/// The local file's modification time in nanoseconds.
fn mtime_ns(p: &Path) -> i64 {
    let t = fs::metadata(p).unwrap().modified().unwrap();
    t.duration_since(UNIX_EPOCH).map_or_else(|e| -(e.duration().as_nanos() as i64), |d| d.as_nanos() as i64)
}

/// What the Disk keeps as the file's time (`rclone_modified`), in ns.
fn kept(fx: &Fixture, rel: &str) -> Option<i64> {
    let props = fx.emu.props(&fx.remote(rel))?;
    let text = props.get("rclone_modified")?.as_str()?.to_string();
    Some(rfc3339_ns(&text))
}

/// `2026-12-07T15:04:05.123456789Z` → ns (this test's own reading).
fn rfc3339_ns(t: &str) -> i64 {
    let out = std::process::Command::new("date").args(["-u", "-d", t, "+%s%N"]).output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().parse().unwrap()
}

#[test]
fn every_upload_carries_its_date_and_a_move_keeps_it_for_free() {
    let fx = Fixture::new("throttled_ext = bin");
    fx.write("a.txt", "a");
    fx.write("dir/b.bin", "b (throttled: a temporary name first)");
    set_mtime(&fx.path("a.txt"), UNIX_EPOCH + Duration::from_secs(1_000_000_000));
    fx.sync();
    assert_eq!(kept(&fx, "a.txt"), Some(1_000_000_000_000_000_000), "{:?}", fx.emu.props(&fx.remote("a.txt")));
    assert_eq!(kept(&fx, "dir/b.bin"), Some(mtime_ns(&fx.path("dir/b.bin"))));
    let uploaded = fx.emu.props(&fx.remote("a.txt")).unwrap()["ysync_uploaded"].as_str().unwrap().parse::<u64>().unwrap();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    assert!(uploaded.abs_diff(now) < 600, "when it was sent: {uploaded}");

    // A rename and a folder rename: moves, no PATCH; the dates go along.
    fx.emu.reset_counts();
    fs::rename(fx.path("a.txt"), fx.path("renamed.txt")).unwrap();
    fs::rename(fx.path("dir"), fx.path("moved")).unwrap();
    fx.sync();
    assert_eq!(fx.emu.count(PATCH), 0, "{:?}", fx.emu.counts());
    assert_eq!(kept(&fx, "renamed.txt"), Some(1_000_000_000_000_000_000));
    assert_eq!(kept(&fx, "moved/b.bin"), Some(mtime_ns(&fx.path("moved/b.bin"))));

    // Touched: nothing is sent, the date is (one request).
    fx.emu.reset_counts();
    set_mtime(&fx.path("renamed.txt"), UNIX_EPOCH + Duration::from_secs(1_500_000_000));
    fx.sync();
    assert_eq!((fx.emu.count(PATCH), fx.emu.uploaded_bytes()), (1, 0), "{:?}", fx.emu.counts());
    assert_eq!(kept(&fx, "renamed.txt"), Some(1_500_000_000_000_000_000));
    // Idle: nothing.
    fx.emu.reset_counts();
    fx.sync();
    assert_eq!(fx.emu.total_requests(), 0);
}

/// Files uploaded before ysync kept dates (or dated otherwise since) get
/// theirs at the next reconcile; what carries it already costs nothing.
#[test]
fn a_reconcile_dates_what_was_uploaded_before_dates_were_kept() {
    let fx = Fixture::new("reconcile = 1s");
    fx.write("old.txt", "uploaded by an older ysync");
    fx.write("new.txt", "dated");
    fx.sync();
    // As an older ysync left it: no property.
    fx.emu.set_props(&fx.remote("old.txt"), serde_json::Map::new());
    assert_eq!(kept(&fx, "old.txt"), None);
    std::thread::sleep(Duration::from_millis(1100));
    fx.emu.reset_counts();
    let out = fx.sync();
    assert_eq!(fx.emu.count(PATCH), 1, "only the undated one: {:?}\n{}", fx.emu.counts(), stderr(&out));
    assert_eq!(kept(&fx, "old.txt"), Some(mtime_ns(&fx.path("old.txt"))));
}

/// A first run over a Disk that holds the files already (a lost state)
/// adopts them and sets a date only where it is missing or other.
#[test]
fn adoption_dates_only_what_is_not_dated_as_here() {
    let fx = Fixture::new("");
    fx.write("a.txt", "aaa");
    fx.write("b.txt", "bbb");
    fx.sync();
    fs::remove_dir_all(fx.state.parent().unwrap()).unwrap();
    set_mtime(&fx.path("b.txt"), UNIX_EPOCH + Duration::from_secs(1_234_567_890));
    fx.emu.reset_counts();
    fx.sync();
    assert_eq!((fx.emu.uploaded_bytes(), fx.emu.count(PATCH)), (0, 1), "{:?}", fx.emu.counts());
    assert_eq!(kept(&fx, "b.txt"), Some(1_234_567_890_000_000_000));
}
