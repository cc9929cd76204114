//! Issue 27: the files' dates on the Disk, and getting everything back
//! (`ysync restore --all`, a folder, `--as-of`), with the disaster-recovery
//! loop closed (a restore, then a sync that sends nothing).

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::support::{Fixture, set_mtime, stderr, stdout};

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

/// `ysync restore ARGS`.
fn restore(fx: &Fixture, args: &[&str]) -> std::process::Output {
    let mut all = vec!["restore"];
    all.extend_from_slice(args);
    fx.ysync_within(&all, 120)
}

fn tree_of(root: &Path) -> std::collections::BTreeMap<String, Option<Vec<u8>>> {
    crate::support::local_tree(root)
}

/// What a user keeps: files in folders, an empty folder, names that URLs
/// and shells get wrong, dates from long ago.
fn photos(fx: &Fixture) {
    fx.write("2019/summer/beach.jpg", crate::support::bytes(70_000, 1));
    fx.write("2019/summer/c++ & a+b.txt", "plus signs stay plus signs");
    fx.write("docs/report.docx", "the report");
    fx.write("docs/деньги.txt", "unicode");
    fx.write(".hidden", "dot file");
    fx.mkdir("empty/also empty");
    set_mtime(&fx.path("2019/summer/beach.jpg"), UNIX_EPOCH + Duration::from_secs(1_561_000_000));
    set_mtime(&fx.path("docs/report.docx"), UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789));
}

/// A fixture whose folder holds [`photos`], synced.
fn synced_photos() -> Fixture {
    let fx = Fixture::new("");
    photos(&fx);
    fx.sync();
    fx
}

#[test]
fn restore_all_brings_back_the_tree_with_its_dates_and_a_second_run_downloads_nothing() {
    let fx = synced_photos();
    let back = fx.tmp.path().join("back");
    let out = restore(&fx, &["--all", "--to", back.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(tree_of(&back), tree_of(&fx.local), "{}", stdout(&out));
    assert!(back.join("empty/also empty").is_dir(), "empty folders too");
    for rel in ["2019/summer/beach.jpg", "docs/report.docx", "docs/деньги.txt", "2019/summer/c++ & a+b.txt"] {
        assert_eq!(mtime_ns(&back.join(rel)), mtime_ns(&fx.path(rel)), "{rel}: its own time");
    }
    assert!(stdout(&out).contains("restored 5 files"), "{}", stdout(&out));
    assert!(stdout(&out).contains("5 kept on the Disk"), "{}", stdout(&out));
    // Again: everything is there, nothing is downloaded, nothing left over.
    fx.emu.reset_counts();
    let out = restore(&fx, &["--all", "--to", back.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(fx.emu.count("GET /v1/disk/resources/download"), 0, "{:?}", fx.emu.counts());
    assert!(stdout(&out).contains("restored 0 files") && stdout(&out).contains("5 already there"), "{}", stdout(&out));
    assert_eq!(tree_of(&back), tree_of(&fx.local));
}

#[test]
fn a_dry_run_says_what_it_would_write_and_writes_nothing() {
    let fx = synced_photos();
    let back = fx.tmp.path().join("back");
    let out = fx.ysync_within(&["-n", "restore", "--all", "--to", back.to_str().unwrap()], 60);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!back.exists(), "not even the folder");
    assert!(stdout(&out).contains("would restore docs/report.docx (10 B)"), "{}", stdout(&out));
    assert!(stdout(&out).contains("would restore 5 files"), "{}", stdout(&out));
    assert_eq!(fx.emu.count("GET /v1/disk/resources/download"), 0);
}

#[test]
fn restore_folder_brings_back_one_folder_to_its_place() {
    let fx = synced_photos();
    let before = tree_of(&fx.path("2019"));
    fs::remove_dir_all(fx.path("2019")).unwrap();
    let out = restore(&fx, &["2019"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(tree_of(&fx.path("2019")), before);
    assert!(!fx.path("docs/.ysync-replaced").exists());
    // What was not asked for is not touched: docs was never listed.
    assert!(fx.emu.counts().keys().all(|k| !k.contains("docs")), "{:?}", fx.emu.counts());
}

/// The disk died: a new, empty local_dir and no state. The restore brings
/// everything back, and the sync after it sends nothing and deletes
/// nothing; the cycle after that is idle.
#[test]
fn the_disaster_loop_closes_with_nothing_sent() {
    let n: usize = std::env::var("YSYNC_DISASTER_FILES").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let fx = Fixture::new("");
    for i in 0..n {
        fx.write(&format!("d{:02}/f{i:05}.txt", i % 50), format!("file {i}"));
    }
    photos(&fx);
    fx.sync();
    let original = tree_of(&fx.local);
    fs::remove_dir_all(&fx.local).unwrap();
    fs::remove_dir_all(fx.state.parent().unwrap()).unwrap();
    fs::create_dir(&fx.local).unwrap();
    let out = restore(&fx, &["--all"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(tree_of(&fx.local), original);
    fx.emu.reset_counts();
    let trash = fx.emu.trash().len();
    let out = fx.sync();
    assert_eq!(fx.emu.uploaded_bytes(), 0, "nothing sent: {:?}\n{}", fx.emu.counts(), stderr(&out));
    assert_eq!(fx.emu.count("DELETE /v1/disk/resources"), 0);
    assert_eq!(fx.emu.count(PATCH), 0, "the dates were right: {:?}", fx.emu.counts());
    assert_eq!(fx.emu.trash().len(), trash);
    fx.assert_mirror();
    assert_eq!(fx.state_files().len(), n + 5, "every file synced");
    fx.emu.reset_counts();
    fx.sync();
    assert_eq!(fx.emu.total_requests(), 0, "idle: {:?}", fx.emu.counts());
    assert!(fx.state_is_sealed(), "the idle cycle reads only the seal");
}

/// The name of the folder a `--force` restore kept things in, below `dir`.
fn aside_in(dir: &Path) -> std::path::PathBuf {
    let found: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(".ysync-replaced-"))
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found[0].clone()
}

#[test]
fn a_different_file_is_replaced_only_with_force_and_then_kept_aside() {
    let fx = synced_photos();
    let back = fx.tmp.path().join("back");
    fs::create_dir_all(back.join("docs/report.docx")).unwrap();
    fs::write(back.join("docs/report.docx/inside"), "a folder where a file must go").unwrap();
    fs::write(back.join("docs/деньги.txt"), "my own edit").unwrap();
    fs::write(back.join("2019"), "a file where a folder must go").unwrap();
    let to = back.to_str().unwrap();
    let out = restore(&fx, &["--all", "--to", to]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("docs/деньги.txt: a different file is there; not replaced (add --force"), "{text}");
    assert!(text.contains("docs/report.docx: a different folder is there"), "{text}");
    assert!(text.contains("2019 is a file, where a folder must go"), "{text}");
    assert_eq!(fs::read_to_string(back.join("docs/деньги.txt")).unwrap(), "my own edit", "untouched");
    assert_eq!(fs::read_to_string(back.join("2019")).unwrap(), "a file where a folder must go");
    assert!(back.join(".hidden").is_file(), "the rest was restored");

    let out = restore(&fx, &["--all", "--to", to, "--force"]);
    assert_eq!(out.status.code(), Some(0), "{}\n{}", stdout(&out), stderr(&out));
    let aside = aside_in(&back);
    let kept = tree_of(&aside);
    assert_eq!(kept.get("docs/деньги.txt"), Some(&Some(b"my own edit".to_vec())), "{kept:?}");
    assert_eq!(kept.get("docs/report.docx/inside"), Some(&Some(b"a folder where a file must go".to_vec())));
    assert_eq!(kept.get("2019"), Some(&Some(b"a file where a folder must go".to_vec())));
    assert!(stdout(&out).contains(&format!("kept 3 replaced items aside in {}", aside.display())), "{}", stdout(&out));
    fs::remove_dir_all(&aside).unwrap();
    assert_eq!(tree_of(&back), tree_of(&fx.local));
}

/// Ransomware rewrote most files; the guard stopped the cycle before any
/// upload. One command puts the good copies back (skipping what was not
/// touched), keeps what it replaces aside, and the next cycle is clean
/// and never uploads that place.
#[test]
fn after_a_ransomware_stop_one_command_brings_the_good_copies_back() {
    let fx = Fixture::new("");
    for i in 0..40 {
        fx.write(&format!("photos/p{i:02}.jpg"), crate::support::bytes(3000 + i, i as u64));
    }
    fx.sync();
    let good = tree_of(&fx.local);
    for i in 0..30 {
        let p = fx.path(&format!("photos/p{i:02}.jpg"));
        let mut data = fs::read(&p).unwrap();
        data.iter_mut().for_each(|b| *b ^= 0x5a);
        fs::write(&p, data).unwrap();
    }
    fx.emu.reset_counts();
    let out = fx.ysync(&["once"]);
    assert_eq!(out.status.code(), Some(4), "the guard stops it: {}", stderr(&out));
    assert_eq!(fx.emu.uploaded_bytes(), 0);

    fx.emu.reset_counts();
    let out = restore(&fx, &["--all", "--to", fx.local.to_str().unwrap(), "--force"]);
    assert_eq!(out.status.code(), Some(0), "{}\n{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("restored 30 files") && stdout(&out).contains("10 already there"), "{}", stdout(&out));
    assert_eq!(fx.emu.count("GET /v1/disk/resources/download"), 30, "only what was encrypted: {:?}", fx.emu.counts());
    let aside = aside_in(&fx.local);
    assert_eq!(tree_of(&aside.join("photos")).len(), 30, "the encrypted copies are kept, not lost");
    let mut now = tree_of(&fx.local);
    now.retain(|k, _| !k.starts_with(".ysync-replaced-"));
    assert_eq!(now, good);

    fx.emu.reset_counts();
    let out = fx.sync();
    assert_eq!(fx.emu.uploaded_bytes(), 0, "{}", stderr(&out));
    assert!(fx.emu.tree(&fx.remote_dir).keys().all(|k| !k.contains("replaced")), "the kept-aside place is never uploaded");
    assert_eq!(fx.emu.tree(&fx.remote_dir), good);
}

/// A listing that names `..`, `/`, NUL, control characters or a name too
/// long: each reported and skipped, nothing written outside DIR, and the
/// good files restored.
#[test]
fn a_hostile_listing_is_reported_and_nothing_lands_outside() {
    let fx = Fixture::new("");
    fx.write("ok.txt", "fine");
    fx.write("sub/ok2.txt", "fine too");
    fx.sync();
    let file = |name: &str| {
        serde_json::json!({"type": "file", "name": name, "path": format!("disk:/Backup/{name}"), "size": 4,
            "sha256": "f".repeat(64), "md5": "0".repeat(32), "modified": "2026-12-01T00:00:00+00:00", "created": "2026-12-01T00:00:00+00:00"})
    };
    let dir = |name: &str| {
        serde_json::json!({"type": "dir", "name": name, "path": format!("disk:/Backup/{name}"),
            "modified": "2026-12-01T00:00:00+00:00", "created": "2026-12-01T00:00:00+00:00"})
    };
    let long = "x".repeat(256);
    fx.emu.inject_items(
        "/Backup",
        vec![file(".."), file("."), file(""), file("../../escaped.txt"), file("a\u{0}b"), file("line\nbreak"), file(&long), dir("..")],
    );
    let back = fx.tmp.path().join("deep/back");
    let out = restore(&fx, &["--all", "--to", back.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("not restored (7)"), "`..` is one name: {text}");
    assert!(text.contains("an empty, `.` or `..` name on the Disk"), "{text}");
    assert!(text.contains("a name holding `/` or NUL"), "{text}");
    assert!(text.contains("line\\nbreak: a name holding a control character"), "escaped: {text}");
    assert!(text.contains("longer than the local file system allows"), "{text}");
    assert_eq!(tree_of(&back).keys().collect::<Vec<_>>(), ["ok.txt", "sub", "sub/ok2.txt"]);
    let outside: Vec<_> = fs::read_dir(fx.tmp.path().join("deep")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(outside, ["back"]);
    assert!(!fx.tmp.path().join("escaped.txt").exists());
}

/// A download cut short, one too long, and one whose bytes differ: each
/// leaves nothing behind and is tried again (three times at most).
#[test]
fn a_bad_download_is_tried_again_and_leaves_nothing() {
    use crate::emulator::{Fault, FaultKind};
    let fx = Fixture::new("");
    fx.write("a.bin", crate::support::bytes(200_000, 3));
    fx.write("b.bin", crate::support::bytes(1000, 4));
    fx.sync();
    let back = fx.tmp.path().join("back");
    fx.emu.inject(Fault::new("GET download", FaultKind::Reset, 1));
    fx.emu.inject(Fault::new("GET download", FaultKind::Corrupt, 1));
    let out = restore(&fx, &["--all", "--to", back.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}\n{}", stdout(&out), stderr(&out));
    assert_eq!(tree_of(&back), tree_of(&fx.local));
    assert!(fs::read_dir(&back).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().starts_with(".ysync")));
    // Always failing: reported, exit 1, nothing left.
    fs::remove_dir_all(&back).unwrap();
    fx.emu.inject(Fault::new("GET download", FaultKind::Corrupt, 100));
    let out = restore(&fx, &["--all", "--to", back.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stdout(&out).contains("not restored (2)"), "{}", stdout(&out));
    assert_eq!(fs::read_dir(&back).unwrap().count(), 0, "neither the files nor a temporary");
}

/// `2026-11-02T12:00:00Z` → Unix seconds.
fn secs(t: &str) -> u64 {
    (rfc3339_ns(t) / 1_000_000_000) as u64
}

/// A file on the emulated Disk as ysync leaves it: its bytes, its time,
/// when it was sent and (a kept version) when it was replaced.
fn put(fx: &Fixture, path: &str, data: &str, uploaded: &str, replaced: Option<&str>) {
    fx.emu.put_file(path, data.as_bytes());
    let mut props = serde_json::Map::new();
    props.insert("rclone_modified".into(), uploaded.replace('Z', ".000000000Z").into());
    props.insert("ysync_uploaded".into(), secs(uploaded).to_string().into());
    if let Some(r) = replaced {
        props.insert("ysync_replaced".into(), secs(r).to_string().into());
    }
    fx.emu.set_props(path, props);
}

/// The tree restored as of `t` into a fresh folder.
fn as_of(fx: &Fixture, t: &str) -> std::collections::BTreeMap<String, Option<Vec<u8>>> {
    let back = fx.tmp.path().join(format!("as-of-{}", t.replace(':', "")));
    let out = restore(fx, &["--all", "--to", back.to_str().unwrap(), "--as-of", t]);
    assert_eq!(out.status.code(), Some(0), "{t}: {}\n{}", stdout(&out), stderr(&out));
    let mut tree = tree_of(&back);
    tree.retain(|_, v| v.is_some());
    tree
}

fn files(list: &[(&str, &str)]) -> std::collections::BTreeMap<String, Option<Vec<u8>>> {
    list.iter().map(|(k, v)| (k.to_string(), Some(v.as_bytes().to_vec()))).collect()
}

/// A month of history, laid out as ysync keeps it: the mirror, and dated
/// folders holding what was replaced or deleted each day (the day's first
/// version under its own name, marked with when it was replaced; later
/// ones with the time in the name; a deleted folder whole).
#[test]
fn as_of_brings_back_the_tree_as_it_was_then() {
    let fx = Fixture::new("backup_dir = disk:/Versions");
    let (m, v) = ("/Backup", "/Versions");
    put(&fx, &format!("{m}/old.txt"), "old", "2026-10-30T08:00:00Z", None);
    // a.txt: v1 on 11-01, v2 at 11-02 12:00, v3 at 15:00.
    put(&fx, &format!("{v}/2026-11-02/a.txt"), "a v1", "2026-11-01T10:00:00Z", Some("2026-11-02T12:00:00Z"));
    put(&fx, &format!("{v}/2026-11-02/a (15-00-00).txt"), "a v2", "2026-11-02T12:00:00Z", None);
    put(&fx, &format!("{m}/a.txt"), "a v3", "2026-11-02T15:00:00Z", None);
    // b.txt: deleted on 11-03 at 09:30.
    put(&fx, &format!("{v}/2026-11-03/b.txt"), "b", "2026-11-01T10:00:00Z", Some("2026-11-03T09:30:00Z"));
    // new.txt: created on 11-03.
    put(&fx, &format!("{m}/new.txt"), "new", "2026-11-03T09:00:00Z", None);
    // gone/: a folder deleted on 11-04 (kept whole, marked on the folder).
    put(&fx, &format!("{v}/2026-11-04/gone/x.txt"), "x", "2026-11-01T10:00:00Z", None);
    put(&fx, &format!("{v}/2026-11-04/gone/deep/y.txt"), "y", "2026-11-01T10:00:00Z", None);
    let mut mark = serde_json::Map::new();
    mark.insert("ysync_replaced".into(), secs("2026-11-04T20:00:00Z").to_string().into());
    fx.emu.set_props(&format!("{v}/2026-11-04/gone"), mark);
    // renamed: ren-old.txt became ren-new.txt on 11-03 (the Disk keeps no
    // trace of the old name: it comes back under the new one).
    put(&fx, &format!("{m}/ren-new.txt"), "ren", "2026-11-01T10:00:00Z", None);

    assert_eq!(as_of(&fx, "2026-10-31"), files(&[("old.txt", "old")]));
    let first =
        [("old.txt", "old"), ("a.txt", "a v1"), ("b.txt", "b"), ("gone/x.txt", "x"), ("gone/deep/y.txt", "y"), ("ren-new.txt", "ren")];
    assert_eq!(as_of(&fx, "2026-11-01"), files(&first));
    assert_eq!(as_of(&fx, "2026-11-02T11:59:59Z"), files(&first));
    let at_one =
        [("old.txt", "old"), ("a.txt", "a v2"), ("b.txt", "b"), ("gone/x.txt", "x"), ("gone/deep/y.txt", "y"), ("ren-new.txt", "ren")];
    assert_eq!(as_of(&fx, "2026-11-02T13:00:00+00:00"), files(&at_one));
    assert_eq!(as_of(&fx, "2026-11-02T15:59:59+01:00"), files(&at_one), "an offset is honoured: 14:59:59 UTC");
    let day2 =
        [("old.txt", "old"), ("a.txt", "a v3"), ("b.txt", "b"), ("gone/x.txt", "x"), ("gone/deep/y.txt", "y"), ("ren-new.txt", "ren")];
    assert_eq!(as_of(&fx, "2026-11-02"), files(&day2));
    assert_eq!(as_of(&fx, "2026-11-03T09:15:00Z"), {
        let mut t = files(&day2);
        t.insert("new.txt".into(), Some(b"new".to_vec()));
        t
    });
    let after =
        [("old.txt", "old"), ("a.txt", "a v3"), ("new.txt", "new"), ("gone/x.txt", "x"), ("gone/deep/y.txt", "y"), ("ren-new.txt", "ren")];
    assert_eq!(as_of(&fx, "2026-11-03T09:30:00Z"), files(&after), "b was deleted at 09:30");
    assert_eq!(as_of(&fx, "2026-11-04T19:59:59Z"), files(&after));
    let now = [("old.txt", "old"), ("a.txt", "a v3"), ("new.txt", "new"), ("ren-new.txt", "ren")];
    assert_eq!(as_of(&fx, "2026-11-04"), files(&now));
    assert_eq!(as_of(&fx, "2026-12-31"), files(&now));
    // Its file times are the files' own.
    let back = fx.tmp.path().join("as-of-2026-11-01");
    assert_eq!(mtime_ns(&back.join("a.txt")), rfc3339_ns("2026-11-01T10:00:00Z"));
}

/// The same through real cycles: a file changed twice, one deleted, one
/// created, one renamed, seconds apart; each moment comes back as it was.
#[test]
fn as_of_after_real_cycles_of_changes_renames_and_deletions() {
    let fx = Fixture::new("backup_dir = disk:/Versions");
    let now = || {
        crate::support::stdout(&std::process::Command::new("date").args(["-u", "+%Y-%m-%dT%H:%M:%SZ"]).output().unwrap()).trim().to_string()
    };
    let tick = || std::thread::sleep(Duration::from_millis(1100));
    fx.write("a.txt", "a1");
    fx.write("b.txt", "b");
    fx.write("ren.txt", "ren");
    fx.sync();
    tick();
    let t1 = now();
    tick();
    fx.write("a.txt", "a2");
    fs::remove_file(fx.path("b.txt")).unwrap();
    fx.sync();
    tick();
    let t2 = now();
    tick();
    fx.write("a.txt", "a3");
    fx.write("c.txt", "c");
    fs::rename(fx.path("ren.txt"), fx.path("renamed.txt")).unwrap();
    fx.sync();
    tick();
    let t3 = now();
    assert_eq!(as_of(&fx, &t1), files(&[("a.txt", "a1"), ("b.txt", "b"), ("renamed.txt", "ren")]), "renames are not kept: the new name");
    assert_eq!(as_of(&fx, &t2), files(&[("a.txt", "a2"), ("renamed.txt", "ren")]));
    assert_eq!(as_of(&fx, &t3), files(&[("a.txt", "a3"), ("c.txt", "c"), ("renamed.txt", "ren")]));
}

/// Nothing of ysync's own left in `dir` (no temporary, no aside).
fn assert_clean(dir: &Path) {
    for (rel, _) in tree_of(dir) {
        assert!(!rel.split('/').any(|c| c.starts_with(".ysync-")), "left behind: {rel}");
    }
}

/// A restore killed at each of its requests (before and after the Disk
/// answered), and at each file it puts in place, then run again: the
/// second run finishes the job, downloads only what is missing, and
/// leaves nothing behind.
#[test]
fn a_restore_killed_at_any_request_or_write_is_finished_by_the_next_run() {
    let fx = synced_photos();
    let back = fx.tmp.path().join("back");
    let to = back.to_str().unwrap().to_string();
    fx.emu.reset_counts();
    assert_eq!(restore(&fx, &["--all", "--to", &to]).status.code(), Some(0));
    let requests = fx.emu.total_requests();
    assert!(requests >= 15, "{:?}", fx.emu.counts());
    let rerun = |what: &str| {
        let out = restore(&fx, &["--all", "--to", &to]);
        assert_eq!(out.status.code(), Some(0), "after a kill {what}: {}\n{}", stdout(&out), stderr(&out));
        assert_eq!(tree_of(&back), tree_of(&fx.local), "after a kill {what}");
        assert_clean(&back);
    };
    for request in 1..=requests {
        for after in [false, true] {
            fs::remove_dir_all(&back).unwrap();
            let victim = fx.emu.kill_at(crate::emulator::KillAt { request, after });
            let null = std::process::Stdio::null;
            let mut child = fx.command(&["restore", "--all", "--to", &to]).stdout(null()).stderr(null()).spawn().unwrap();
            victim.store(child.id(), std::sync::atomic::Ordering::SeqCst);
            assert_eq!(child.wait().unwrap().code(), None, "killed at request {request}");
            rerun(&format!("at request {request} (after: {after})"));
        }
    }
    for point in 1..=5 {
        fs::remove_dir_all(&back).unwrap();
        let out = fx.command(&["restore", "--all", "--to", &to]).env("YSYNC_TEST_CRASH_AT_SYNC", point.to_string()).output().unwrap();
        assert_eq!(out.status.code(), None, "crashed at write {point}: {}", stderr(&out));
        fx.emu.reset_counts();
        rerun(&format!("at write {point}"));
        assert!(fx.emu.count("GET download") <= 5 - point + 1, "only what was missing: {:?}", fx.emu.counts());
    }
}

/// The harsher reading of the evidence (properties lost on a move): a
/// renamed file's date is then missing on the Disk, never wrong; a restore
/// takes it from the state's record of the same content, and the next
/// reconcile puts it back.
#[test]
fn with_properties_lost_on_a_move_the_state_and_then_a_reconcile_keep_the_date() {
    use crate::emulator::{FakeDisk, Options};
    let fx = Fixture::with(FakeDisk::with(Options { props_lost_on_move: true, ..Options::default() }), "/Backup", "");
    fx.write("a.txt", "dated long ago");
    set_mtime(&fx.path("a.txt"), UNIX_EPOCH + Duration::from_secs(1_000_000_000));
    fx.sync();
    fs::rename(fx.path("a.txt"), fx.path("b.txt")).unwrap();
    fx.sync();
    assert_eq!(kept(&fx, "b.txt"), None, "lost with the move");
    let back = fx.tmp.path().join("back");
    let out = restore(&fx, &["--all", "--to", back.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("0 kept on the Disk, 1 from the state's records"), "{}", stdout(&out));
    assert_eq!(mtime_ns(&back.join("b.txt")), 1_000_000_000_000_000_000);
    fx.configure("reconcile = 1s");
    std::thread::sleep(Duration::from_millis(1100));
    fx.sync();
    assert_eq!(kept(&fx, "b.txt"), Some(1_000_000_000_000_000_000), "dated again by the reconcile");
}
