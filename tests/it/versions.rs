//! Issue 17: old versions kept on the Disk (`backup_dir`, `backup_keep`,
//! `ysync versions`, `ysync restore`), the mass-change guard
//! (`max_change`), and `exclude_if_present`. Requests and bytes are counted
//! through the emulator.

use std::fs;

use crate::support::{Fixture, bytes, stderr, stdout};

const MOVE: &str = "POST /v1/disk/resources/move";
const DELETE: &str = "DELETE /v1/disk/resources";

/// Today's dated folder, as ysync names it (UTC).
fn today() -> String {
    let out = std::process::Command::new("date").args(["-u", "+%Y-%m-%d"]).output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn versioned(extra: &str) -> Fixture {
    Fixture::new(&format!("backup_dir = disk:/Versions\n{extra}"))
}

#[test]
fn a_changed_and_a_deleted_file_leave_their_old_version_without_a_byte_sent_for_it() {
    let fx = versioned("");
    fx.write("docs/report.txt", "the good report");
    fx.write("notes.txt", "old notes");
    fx.write("keep.txt", "unchanged");
    fx.sync();
    fx.emu.reset_counts();

    fx.write("docs/report.txt", "ENCRYPTED!! or just edited");
    fs::remove_file(fx.path("notes.txt")).unwrap();
    let out = fx.sync();
    fx.assert_mirror();
    let day = today();
    assert_eq!(fx.emu.file(&format!("/Versions/{day}/docs/report.txt")).as_deref(), Some(&b"the good report"[..]), "{}", stderr(&out));
    assert_eq!(fx.emu.file(&format!("/Versions/{day}/notes.txt")).as_deref(), Some(&b"old notes"[..]));
    assert_eq!(fx.emu.uploaded_bytes(), "ENCRYPTED!! or just edited".len() as u64, "only the new content went up");
    // The day's first version finds no dated folder (one move refused),
    // makes docs (refused too: no parent), /Versions, the day and docs,
    // and moves again.
    assert_eq!((fx.emu.count(MOVE), fx.emu.count("PUT /v1/disk/resources")), (3, 4), "{:?}", fx.emu.counts());
    assert_eq!(fx.emu.count(DELETE), 0, "nothing deleted: {:?}", fx.emu.counts());
    assert!(fx.emu.trash().is_empty());

    // From then on a changed file costs two requests more than without
    // versions: the move, and (for the day's first version, whose name
    // carries no time) the time it was replaced, for `restore --as-of`.
    fx.emu.reset_counts();
    fx.write("keep.txt", "changed after all");
    fx.sync();
    let counts = fx.emu.counts();
    assert_eq!(fx.emu.count(MOVE), 1, "{counts:?}");
    assert_eq!(fx.emu.total_requests(), 5, "the move, its mark, the upload link, the upload, its date: {counts:?}");
    let mark = fx.emu.props(&format!("/Versions/{day}/keep.txt")).unwrap();
    assert!(mark.contains_key("ysync_replaced") && mark.contains_key("rclone_modified"), "{mark:?}");

    // The same file changed again the same day: the name is taken, so the
    // older version keeps it and this one gets the time.
    fx.emu.reset_counts();
    fx.write("docs/report.txt", "third version, longer than the others");
    fx.sync();
    let kept = fx.emu.tree(&format!("/Versions/{day}/docs"));
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!(kept.keys().any(|k| k.starts_with("report (") && k.ends_with(").txt")), "{kept:?}");
    assert_eq!(fx.emu.count(MOVE), 2, "the taken name, then the free one: {:?}", fx.emu.counts());
    assert_eq!(fx.emu.count("PUT /v1/disk/resources"), 0, "the dated folder was there already");
}

#[test]
fn a_deleted_folder_is_one_move_into_the_dated_folder() {
    let fx = versioned("max_delete = 100%");
    for i in 0..20 {
        fx.write(&format!("album/p{i}.jpg"), bytes(100, i));
    }
    fx.write("other.txt", "x");
    fx.sync();
    // The dated folder exists from an earlier version the same day.
    fx.write("other.txt", "y, changed");
    fx.sync();
    fx.emu.reset_counts();
    fs::remove_dir_all(fx.path("album")).unwrap();
    fx.sync();
    fx.assert_mirror();
    let kept = fx.emu.tree(&format!("/Versions/{}/album", today()));
    assert_eq!(kept.len(), 20, "{kept:?}");
    assert_eq!(fx.emu.count(MOVE), 1, "{:?}", fx.emu.counts());
    assert_eq!((fx.emu.count(DELETE), fx.emu.uploaded_bytes()), (0, 0));
}

#[test]
fn backup_dir_inside_remote_dir_is_refused() {
    let fx = Fixture::new("backup_dir = disk:/Backup/old");
    let out = fx.ysync(&["once"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("backup_dir: disk:/Backup/old overlaps remote_dir disk:/Backup"), "{}", stderr(&out));
    let fx = Fixture::new("backup_dir = /");
    assert!(stderr(&fx.ysync(&["once"])).contains("overlaps remote_dir"));
}

#[test]
fn a_folder_holding_a_marker_is_not_mirrored_and_its_remote_copy_stays() {
    let fx = Fixture::new("exclude_if_present = .nosync");
    fx.write("vm/disk.img", "huge");
    fx.write("photos/a.jpg", "a");
    fx.sync();
    assert!(fx.emu.exists("/Backup/vm/disk.img"));
    fx.write("vm/.nosync", "");
    fx.write("vm/disk.img", "changed, but not mirrored any more");
    fx.write("cache/.nosync", "");
    fx.write("cache/tmp.bin", "never uploaded");
    let out = fx.sync();
    assert_eq!(fx.emu.file("/Backup/vm/disk.img").as_deref(), Some(&b"huge"[..]), "kept as it was: {}", stdout(&out));
    assert!(!fx.emu.exists("/Backup/cache"), "never uploaded");
    assert!(fx.emu.exists("/Backup/photos/a.jpg"));
}

#[test]
fn expiry_deletes_only_dated_folders_past_backup_keep_and_at_most_once_a_day() {
    let fx = versioned("backup_keep = 30d");
    let day = today();
    fx.emu.put_file("/Versions/2020-01-01/old.txt", b"old");
    fx.emu.put_file(&format!("/Versions/{day}/recent.txt"), b"recent");
    fx.emu.put_file("/Versions/my notes/n.txt", b"not a dated folder");
    fx.write("a.txt", "a");
    fx.sync();
    assert!(!fx.emu.exists("/Versions/2020-01-01"), "past backup_keep");
    assert!(fx.emu.trash().iter().any(|t| t.origin_path.contains("2020-01-01")), "to the trash, as delete = trash says");
    assert!(fx.emu.exists(&format!("/Versions/{day}/recent.txt")) && fx.emu.exists("/Versions/my notes/n.txt"));
    // Once a day: another old folder waits for tomorrow, and an idle cycle
    // makes no request at all.
    fx.emu.put_file("/Versions/2020-01-02/old.txt", b"old");
    fx.emu.reset_counts();
    fx.sync();
    assert_eq!(fx.emu.total_requests(), 0);
    fx.write("c.txt", "c");
    fx.sync();
    assert!(fx.emu.exists("/Versions/2020-01-02"));
    let s: serde_json::Value = serde_json::from_str(&stdout(&fx.ysync(&["status", "--json"]))).unwrap();
    assert_eq!(s["versions"]["kept_days"], 1, "today's; `my notes` is no day: {s}");
    assert_eq!(s["versions"]["backup_dir"], "disk:/Versions");
    assert_eq!(s["versions"]["keep_days"], 30);
    assert!(s["versions"]["last_expiry"].as_u64().is_some(), "{s}");
}

/// 100 synced text files; 60 of them rewritten with random bytes (as
/// ransomware does) stop the cycle before any upload, again and again,
/// until --allow-mass-change; 60 of them renamed pass.
#[test]
fn a_mass_rewrite_stops_before_any_upload_and_a_mass_rename_passes() {
    let fx = versioned("");
    for i in 0..100 {
        fx.write(&format!("docs/f{i:03}.txt"), format!("report number {i}, plain text that compresses well. ").repeat(20));
    }
    fx.sync();
    fx.emu.reset_counts();
    for i in 0..60 {
        fx.write(&format!("docs/f{i:03}.txt"), bytes(1100 + i, i as u64)); // another size: sure to differ
    }
    for _ in 0..2 {
        let out = fx.ysync(&["once"]);
        assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("would upload new content over 60 of 100 synced files, more than max_change = 50%"), "{err}");
        assert!(err.contains("e.g. docs/f000.txt, docs/f001.txt, docs/f002.txt") && err.contains("5 of 5 sampled look random"), "{err}");
        assert_eq!((fx.emu.uploaded_bytes(), fx.emu.total_requests()), (0, 0), "no request at all: {:?}", fx.emu.counts());
    }
    let s: serde_json::Value = serde_json::from_str(&stdout(&fx.ysync(&["status", "--json"]))).unwrap();
    assert_eq!(s["last_cycle"]["outcome"], "safety-stop", "{s}");

    // The user did it: one run lets it through, and the old ones are kept.
    let out = fx.ysync(&["--allow-mass-change", "once"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    fx.assert_mirror();
    assert_eq!(fx.emu.tree(&format!("/Versions/{}/docs", today())).len(), 60);

    // 60 renamed: moves, not uploads over synced files.
    for i in 0..60 {
        fs::rename(fx.path(&format!("docs/f{i:03}.txt")), fx.path(&format!("docs/renamed-{i:03}.txt"))).unwrap();
    }
    fx.emu.reset_counts();
    let out = fx.ysync(&["once"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    fx.assert_mirror();
    assert_eq!(fx.emu.uploaded_bytes(), 0);
}

#[test]
fn same_size_rewrites_are_hashed_and_counted_too() {
    let fx = Fixture::new("max_change = 10");
    for i in 0..30 {
        fx.write(&format!("f{i}.bin"), vec![b'a'; 2000]);
    }
    fx.sync();
    // 12 rewritten in place with as many bytes; 8 only touched.
    for i in 0..12 {
        fx.write(&format!("f{i}.bin"), bytes(2000, i));
    }
    for i in 12..20 {
        fx.write(&format!("f{i}.bin"), vec![b'a'; 2000]);
        crate::support::set_mtime(
            &fx.path(&format!("f{i}.bin")),
            std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000),
        );
    }
    fx.emu.reset_counts();
    let out = fx.ysync(&["once"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("over 11 of 30 synced files, more than max_change = 10"), "hashed until decided: {}", stderr(&out));
    assert_eq!(fx.emu.uploaded_bytes(), 0);
}

#[test]
fn versions_lists_and_restore_brings_back_the_right_bytes_without_overwriting() {
    let fx = versioned("");
    let day = today();
    fx.write("docs/report.txt", "version one");
    fx.sync();
    fx.write("docs/report.txt", "version two, longer");
    fx.sync();
    fx.write("docs/report.txt", "version three, the current one");
    fx.sync();

    let out = fx.ysync(&["versions", "docs/report.txt"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let listed = stdout(&out);
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 2, "{listed}");
    assert!(lines[0].starts_with(&day) && lines[0].ends_with(&format!("disk:/Versions/{day}/docs/report.txt")), "{listed}");
    assert!(lines[0].contains("11 B") && lines[1].contains("19 B") && lines[1].contains("report ("), "{listed}");
    let abs = fx.path("docs/report.txt");
    assert_eq!(stdout(&fx.ysync(&["versions", abs.to_str().unwrap()])), listed, "an absolute path inside local_dir too");

    // The newest kept version, to a new name beside the file; nothing
    // uploaded or changed on the Disk by it.
    fx.emu.reset_counts();
    let out = fx.ysync(&["restore", "docs/report.txt"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let restored = fx.path(&format!("docs/report (restored {day}).txt"));
    assert_eq!(fs::read_to_string(&restored).unwrap(), "version two, longer");
    assert_eq!(fs::read_to_string(fx.path("docs/report.txt")).unwrap(), "version three, the current one");
    assert_eq!((fx.emu.uploaded_bytes(), fx.emu.count(MOVE), fx.emu.count(DELETE)), (0, 0, 0));

    // Never over a file without --force.
    let out = fx.ysync(&["restore", "docs/report.txt"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("exists; not overwritten (add --force"), "{}", stderr(&out));
    let out = fx.ysync(&["restore", "docs/report.txt", "--to", "docs/report.txt"]);
    assert_eq!(out.status.code(), Some(2), "the current file is not replaced either");
    assert_eq!(fs::read_to_string(fx.path("docs/report.txt")).unwrap(), "version three, the current one");
    let out = fx.ysync(&["restore", "docs/report.txt", "--date", &day, "--to", "docs/report.txt", "--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(fs::read_to_string(fx.path("docs/report.txt")).unwrap(), "version two, longer");
    assert!(
        fs::read_dir(fx.path("docs")).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().contains(".part")),
        "no temporary left"
    );

    // Nothing kept: said, and exit 1.
    let out = fx.ysync(&["versions", "docs/other.txt"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(fx.ysync(&["restore", "docs/report.txt", "--date", "2001-01-01"]).status.code(), Some(1));
    assert_eq!(fx.ysync(&["restore", "../etc/passwd"]).status.code(), Some(2));
    let plain = Fixture::new("");
    let out = plain.ysync(&["versions", "a.txt"]);
    assert!(out.status.code() == Some(2) && stderr(&out).contains("no backup_dir in the config"), "{}", stderr(&out));
}

#[test]
fn check_shows_backup_dir_and_status_the_versions() {
    let fx = versioned("backup_keep = 0");
    let out = fx.ysync(&["check"]);
    assert!(
        stdout(&out).contains("ok backup_dir   disk:/Versions will be created with the first old version; kept for ever"),
        "{}",
        stdout(&out)
    );
    fx.write("a.txt", "1");
    fx.sync();
    fx.write("a.txt", "22");
    fx.sync();
    assert!(stdout(&fx.ysync(&["check"])).contains("ok backup_dir   disk:/Versions exists"));
    let status = stdout(&fx.ysync(&["status"]));
    assert!(status.contains("versions     in disk:/Versions, kept for ever"), "{status}");
    assert!(status.contains("1 old versions kept"), "{status}");
}

/// Killed at each request of a versioned change (the old copy moved away,
/// the new one not sent yet), then the file put back as it was synced: the
/// next cycle still finds the Disk without it and sends it again.
#[test]
fn a_kill_between_keeping_the_old_version_and_sending_the_new_one_never_leaves_a_gap() {
    let requests = {
        let fx = versioned("");
        fx.write("a.txt", "one");
        fx.sync();
        fx.write("a.txt", "two, longer");
        fx.emu.reset_counts();
        fx.sync();
        fx.emu.total_requests()
    };
    for request in 1..=requests {
        let fx = versioned("");
        fx.write("a.txt", "one");
        fx.sync();
        fx.write("a.txt", "two, longer");
        fx.emu.reset_counts();
        fx.once_killed_at(request, true);
        fx.write("a.txt", "one"); // put back as synced
        let out = fx.ysync_within(&["once"], 60);
        assert_eq!(out.status.code(), Some(0), "killed after request {request}: {}", stderr(&out));
        fx.assert_mirror();
    }
}

/// A cycle stopped by the guard expires nothing: while the share is being
/// encrypted, no old version goes, however old.
#[test]
fn a_stopped_cycle_expires_no_old_version() {
    let fx = Fixture::new("");
    for i in 0..40 {
        fx.write(&format!("f{i:02}.txt"), format!("plain text number {i} ").repeat(30));
    }
    fx.sync();
    fx.configure("backup_dir = disk:/Versions\nbackup_keep = 1d");
    fx.emu.put_file("/Versions/2020-01-01/f00.txt", b"a good old copy");
    for i in 0..30 {
        fx.write(&format!("f{i:02}.txt"), bytes(700 + i, i as u64));
    }
    fx.emu.reset_counts();
    let out = fx.ysync(&["once"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(fx.emu.exists("/Versions/2020-01-01/f00.txt"), "expired during a stop");
    assert_eq!(fx.emu.total_requests(), 0, "{:?}", fx.emu.counts());
}
