//! The core mirror, run as a user would: the real binary against the emulator.

use std::fs;
use std::time::{Duration, SystemTime};

use crate::emulator::{FakeDisk, Fault, FaultKind, Options};
use crate::support::{Fixture, bytes, set_mtime, stderr, stdout};

const LINK: &str = "GET /v1/disk/resources/upload";
const PUT: &str = "PUT upload";
const DELETE: &str = "DELETE /v1/disk/resources";
const POLL: &str = "GET /v1/disk/operations";
const META: &str = "GET /v1/disk/resources";
const PATCH: &str = "PATCH /v1/disk/resources";

#[test]
fn nested_tree_mirrors_byte_for_byte() {
    let fx = Fixture::new("");
    fx.write("a/b/c/d/deep.txt", "four levels down");
    fx.write("a/b/sibling.bin", bytes(1000, 1));
    fx.write("empty-file", "");
    fx.write("big/video.raw", bytes(5 << 20, 2));
    fx.mkdir("empty/folder/inside");
    fx.write("top.txt", "top");

    fx.sync();

    fx.assert_mirror();
    assert!(fx.emu.exists("/Backup/empty/folder/inside"));
    assert_eq!(fx.emu.count(PUT), 5, "one PUT per file");
    assert_eq!(fx.emu.uploaded_bytes(), (16 + 1000 + 3 + (5 << 20)) as u64);
}

#[test]
fn awkward_names_survive_into_a_new_awkward_remote_dir() {
    // A remote_dir with spaces, `+` and Cyrillic that does not exist yet.
    let fx = Fixture::with(FakeDisk::start(), "/Мои бэкапы/a+b 2024", "");
    let long = format!("{}.txt", "x".repeat(250)); // 254 bytes
    let names = [
        "a+b.txt",
        "100% done.txt",
        "#tag.md",
        "what?.txt",
        "x&y=z;w.txt",
        "time 10:30.txt",
        "quote\"s and 'single'.txt",
        "Привет мир.txt",
        "日本語ファイル.txt",
        "emoji 🎉.txt",
        "-leading-dash.txt",
        ".hidden",
        "trailing space ",
        // (tabs and newlines are control characters: skipped, see tests/it/stuck.rs)
        "back\\slash.txt",
        long.as_str(),
    ];
    for (i, n) in names.iter().enumerate() {
        fx.write(n, format!("content {i}"));
        let dir = if n.len() > 200 { "long".to_string() } else { format!("dir {n}") };
        fx.write(&format!("{dir}/inner+{i}.txt"), format!("inner {i}"));
    }

    fx.sync();

    fx.assert_mirror();
    assert_eq!(fx.emu.file("/Мои бэкапы/a+b 2024/a+b.txt").as_deref(), Some(&b"content 0"[..]));
    assert!(!fx.emu.exists("/Мои бэкапы/a b 2024"), "`+` was decoded as a space");
}

#[test]
fn second_idle_cycle_makes_no_request_and_keeps_the_state_file() {
    let fx = Fixture::new("");
    fx.write("a/one.txt", "1");
    fx.write("two.txt", "2");
    fx.sync();
    // The snapshot and its journal, as bytes and as inodes with mtimes.
    let files = [fx.state.clone(), fx.state.with_extension("json.journal")];
    let look = || {
        files
            .iter()
            .map(|f| fs::metadata(f).ok().map(|m| (m.modified().unwrap(), std::os::unix::fs::MetadataExt::ino(&m), fs::read(f).unwrap())))
            .collect::<Vec<_>>()
    };
    let before = look();
    assert!(before[0].is_some(), "the first run leaves a snapshot");
    fx.emu.reset_counts();

    fx.sync();

    assert_eq!(fx.emu.total_requests(), 0, "{:?}", fx.emu.counts());
    assert!(look() == before, "the idle cycle wrote to the state");
}

#[test]
fn changes_are_detected_by_content_not_by_timestamps() {
    let fx = Fixture::new("");
    fx.write("grow.txt", "short");
    fx.write("same-size.txt", "AAAA");
    fx.write("touched.txt", "unchanged content");
    fx.sync();
    let old_mtime = fs::metadata(fx.path("same-size.txt")).unwrap().modified().unwrap();
    std::thread::sleep(Duration::from_millis(20));
    fx.emu.reset_counts();

    // A changed size; a same-size edit whose mtime is put back; a touch.
    fx.write("grow.txt", "much longer now");
    fx.write("same-size.txt", "BBBB");
    set_mtime(&fx.path("same-size.txt"), old_mtime);
    set_mtime(&fx.path("touched.txt"), SystemTime::now() + Duration::from_secs(5));
    fx.sync();

    fx.assert_mirror();
    assert_eq!((fx.emu.count(LINK), fx.emu.count(PUT)), (2, 2), "only the two edited files go up: {:?}", fx.emu.counts());

    // The touch refreshed the state: the next cycle is idle.
    fx.emu.reset_counts();
    fx.sync();
    assert_eq!(fx.emu.total_requests(), 0, "{:?}", fx.emu.counts());
}

#[test]
fn deleted_file_goes_to_the_trash() {
    let fx = Fixture::new("");
    fx.write("keep.txt", "k");
    fx.write("gone.txt", "g");
    fx.write("also.txt", "a");
    fx.sync();
    fx.emu.reset_counts();

    fs::remove_file(fx.path("gone.txt")).unwrap();
    fx.sync();

    fx.assert_mirror();
    // A look (is it still what ysync uploaded?), then the delete.
    let look_then_delete = [(DELETE.to_string(), 1), (META.to_string(), 1)];
    assert_eq!(fx.emu.counts().into_iter().collect::<Vec<_>>(), look_then_delete);
    fx.emu.reset_counts();
    fs::remove_file(fx.path("also.txt")).unwrap();
    fx.sync();
    assert_eq!(fx.emu.counts().into_iter().collect::<Vec<_>>(), look_then_delete);
    let trash = fx.emu.trash();
    assert_eq!(trash.iter().map(|t| t.origin_path.as_str()).collect::<Vec<_>>(), ["disk:/Backup/gone.txt", "disk:/Backup/also.txt"]);
}

#[test]
fn deleted_folder_is_one_request_for_the_whole_tree() {
    let fx = Fixture::new("");
    for i in 0..50 {
        fx.write(&format!("album/sub{}/photo{i}.jpg", i % 3), format!("photo {i}"));
    }
    fx.write("keep.txt", "k");
    fx.write("also/keep.txt", "k");
    fx.write("also/keep2.txt", "k");
    fx.sync();
    fx.emu.reset_counts();

    fs::remove_dir_all(fx.path("album")).unwrap();
    // 50 of 53 files: above the default 50%, so allow it for this run.
    let out = fx.ysync(&["once"]);
    assert_eq!(out.status.code(), Some(4), "a mass deletion is a safety stop first:\n{}", stderr(&out));
    assert!(stderr(&out).contains("would delete 50 of 53"), "{}", stderr(&out));
    assert_eq!(fx.emu.count(DELETE), 0);
    fs::write(&fx.conf, fs::read_to_string(&fx.conf).unwrap() + "max_delete = 100%\n").unwrap();
    fx.sync();

    fx.assert_mirror();
    assert_eq!(fx.emu.count(DELETE), 1, "{:?}", fx.emu.counts());
    assert!(fx.emu.count(POLL) >= 1, "the 202 operation was waited for");
    let trash = fx.emu.trash();
    assert_eq!(trash.len(), 1);
    assert_eq!(trash[0].nodes.values().filter(|n| matches!(n, crate::emulator::Node::File(_))).count(), 50);
}

#[test]
fn delete_permanent_skips_the_trash() {
    let fx = Fixture::new("delete = permanent");
    fx.write("a/x.txt", "x");
    fx.write("b.txt", "b");
    fx.write("c.txt", "c");
    fx.sync();
    fs::remove_dir_all(fx.path("a")).unwrap();
    fs::remove_file(fx.path("b.txt")).unwrap();
    fx.sync();
    fx.assert_mirror();
    assert!(fx.emu.trash().is_empty());
}

#[test]
fn delete_keep_leaves_remote_copies_and_forgets_them() {
    let fx = Fixture::new("delete = keep");
    fx.write("a/x.txt", "x");
    fx.write("b.txt", "b");
    fx.write("stays.txt", "s");
    fx.sync();
    fs::remove_dir_all(fx.path("a")).unwrap();
    fs::remove_file(fx.path("b.txt")).unwrap();
    fx.emu.reset_counts();
    fx.sync();
    assert_eq!(fx.emu.total_requests(), 0);
    assert_eq!(fx.emu.file("/Backup/a/x.txt").as_deref(), Some(&b"x"[..]));
    assert_eq!(fx.emu.file("/Backup/b.txt").as_deref(), Some(&b"b"[..]));
    assert_eq!(fx.state_files().keys().collect::<Vec<_>>(), ["stays.txt"]);
    // Recreating it uploads it again over the kept copy.
    fx.write("b.txt", "b2");
    fx.sync();
    assert_eq!(fx.emu.file("/Backup/b.txt").as_deref(), Some(&b"b2"[..]));
}

#[test]
fn request_counts_per_operation() {
    let fx = Fixture::new("");
    fx.write("dir/first.txt", "1");
    for i in 0..50 {
        fx.write(&format!("fifty/f{i}"), "x");
    }
    for i in 0..60 {
        fx.write(&format!("bulk/f{i}"), "x");
    }
    fx.sync();
    let mut measured = Vec::new();
    let mut step = |what: &str, change: &dyn Fn()| {
        fx.emu.reset_counts();
        change();
        fx.sync();
        fx.assert_mirror();
        measured.push((what.to_string(), fx.emu.counts()));
    };
    step("new file", &|| fx.write("dir/new.txt", "new"));
    step("changed file", &|| fx.write("dir/new.txt", "changed!"));
    step("deleted file", &|| fs::remove_file(fx.path("dir/new.txt")).unwrap());
    step("deleted folder of 50 files", &|| fs::remove_dir_all(fx.path("fifty")).unwrap());
    step("idle cycle", &|| {});
    step("another deleted file", &|| fs::remove_file(fx.path("dir/first.txt")).unwrap());
    for (what, counts) in &measured {
        println!("{what}: {} requests {counts:?}", counts.values().sum::<u64>());
    }
    let get = |i: usize, k: &str| measured[i].1.get(k).copied().unwrap_or(0);
    let total = |i: usize| measured[i].1.values().sum::<u64>();
    // Issue 27: the date goes with the file, one PATCH more per upload.
    assert_eq!((get(0, LINK), get(0, PUT), get(0, PATCH), total(0)), (1, 1, 1, 3));
    assert_eq!((get(1, LINK), get(1, PUT), get(1, PATCH), total(1)), (1, 1, 1, 3));
    assert_eq!((get(2, META), get(2, DELETE), total(2)), (1, 1, 2), "a look, then the delete");
    // A folder: one listing (is it all ysync's?), one delete, its polls.
    assert_eq!(get(3, DELETE), 1);
    assert_eq!(total(3), 2 + get(3, POLL));
    assert_eq!(total(4), 0);
    assert_eq!((get(5, DELETE), total(5)), (1, 2));
}

#[test]
fn upload_answered_202_is_waited_for() {
    let emu = FakeDisk::with(Options { op_delay: Duration::from_millis(400), ..Options::default() });
    emu.inject(Fault::new(PUT, FaultKind::Accepted, 1));
    let fx = Fixture::with(emu, "/Backup", "");
    fx.write("slow.bin", bytes(1000, 3));
    fx.sync();
    fx.assert_mirror();
    assert!(fx.emu.count(POLL) >= 1, "{:?}", fx.emu.counts());
}

#[test]
fn existing_remote_folders_are_fine() {
    let emu = FakeDisk::start();
    emu.put_file("/Backup/a/other.txt", b"not ours");
    let fx = Fixture::with(emu, "/Backup", "");
    fx.write("a/mine.txt", "mine");
    fx.sync();
    assert_eq!(fx.emu.file("/Backup/a/mine.txt").as_deref(), Some(&b"mine"[..]));
    assert_eq!(fx.emu.file("/Backup/a/other.txt").as_deref(), Some(&b"not ours"[..]), "foreign files stay");
}

#[test]
fn dry_run_changes_nothing() {
    let fx = Fixture::new("");
    fx.write("a/x.txt", "x");
    let out = fx.ysync(&["-n", "once"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let plan = stdout(&out);
    assert!(plan.contains("mkdir a\nupload a/x.txt (1 B)\n"), "{plan}");
    // Only a read: the listing that lets a first run adopt existing files.
    assert_eq!(fx.emu.counts().into_iter().collect::<Vec<_>>(), [("GET /v1/disk/resources".to_string(), 1)]);
    assert!(!fx.state.exists());
}

#[test]
fn rejected_token_exits_3_with_a_clear_message() {
    let fx = Fixture::with(FakeDisk::with(Options { token: "the-real-one".into(), ..Options::default() }), "/Backup", "");
    let conf = fs::read_to_string(&fx.conf).unwrap().replace("token = the-real-one", "token = stale-token-1234");
    fs::write(&fx.conf, conf).unwrap();
    fx.write("x.txt", "x");
    let out = fx.ysync(&["once"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("token was rejected"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("stale-token-1234"), "the token was logged");
    // `run` stops too instead of looping.
    let out = fx.ysync(&["run"]);
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn token_is_never_logged_even_at_trace() {
    let fx = Fixture::new("");
    fx.write("x.txt", "x");
    fx.write("a/b/deeper/with a long name to move the token around in the dumps.txt", "y");
    let out = fx.command(&["-vv", "once"]).env("RUST_LOG", "trace").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let log = stderr(&out);
    assert!(log.contains("uploaded x.txt"), "{log}");
    let token = fx.emu.token();
    assert!(!log.contains(&token), "token in the log:\n{log}");
    // Nor in a hex dump of the wire (where it could span lines).
    let hex: String = token.bytes().take(4).map(|b| format!("{b:02x}")).collect();
    assert!(!log.replace(' ', "").contains(&hex), "token bytes in a hex dump:\n{log}");
}

#[test]
fn missing_local_dir_is_a_safety_stop() {
    let fx = Fixture::new("");
    fx.write("x.txt", "x");
    fx.sync();
    fs::remove_dir_all(&fx.local).unwrap();
    let out = fx.ysync(&["once"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
    assert!(fx.emu.exists("/Backup/x.txt"));
    // Emptied (an unmounted mount point) is a safety stop as well.
    fs::create_dir(&fx.local).unwrap();
    assert_eq!(fx.ysync(&["once"]).status.code(), Some(4));
    assert!(fx.emu.exists("/Backup/x.txt"));
}

#[test]
fn second_instance_is_refused_with_exit_5() {
    let fx = Fixture::new("interval = 3600");
    fx.write("x.txt", "x");
    let mut first = fx.command(&["run"]).spawn().unwrap();
    // Wait for the first cycle to finish so the lock is certainly held.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !fx.state.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = fx.ysync(&["once"]);
    first.kill().unwrap();
    first.wait().unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(stderr(&out).contains(fx.state.to_str().unwrap()), "{}", stderr(&out));
}

#[test]
fn config_errors_exit_2_and_name_file_line_and_key() {
    let fx = Fixture::new("colour = blue");
    let out = fx.ysync(&["once"]);
    assert_eq!(out.status.code(), Some(2));
    let conf = fx.conf.display().to_string();
    assert!(stderr(&out).contains(&format!("{conf}:7: colour: unknown key")), "{}", stderr(&out));

    let fx = Fixture::new("interval = soon");
    let out = fx.ysync(&["once"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains(":7: interval: `soon` is not a whole number"), "{}", stderr(&out));

    let out = fx.command(&["once"]).arg("--bogus").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ysync")).args(["-c", "/nonexistent.conf", "once"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("/nonexistent.conf: cannot read the config file"), "{}", stderr(&out));
}

#[test]
fn skipped_entries_are_warned_about_and_the_rest_syncs() {
    let fx = Fixture::new("");
    fx.write("ok.txt", "ok");
    std::os::unix::fs::symlink("/etc/passwd", fx.path("link")).unwrap();
    assert!(std::process::Command::new("mkfifo").arg(fx.path("fifo")).status().unwrap().success());
    let out = fx.sync();
    let log = stderr(&out);
    assert!(log.contains("fifo: named pipe (FIFO)"), "{log}");
    assert!(log.contains("link: symbolic link"), "{log}");
    assert_eq!(fx.emu.tree("/Backup").keys().collect::<Vec<_>>(), ["ok.txt"]);
}
