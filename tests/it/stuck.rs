//! Never stuck, never a hang: a NAS owner's bad day, one scenario per test.
//! Every run of ysync here has a deadline; going past it fails the test.

use std::fs;
use std::thread::sleep;
use std::time::Duration;

use crate::support::{Fixture, bytes, stderr};

const PUT: &str = "PUT upload";

/// `copytruncate`, a vacuumed database, a file rewritten in place: the file
/// shrinks while it is being uploaded. The upload must end at once (the
/// body is short, so the Disk keeps nothing), and the next cycle sends it.
#[test]
fn a_file_that_shrinks_during_its_upload_ends_that_upload_at_once() {
    // bwlimit makes ysync itself read slowly, so the file shrinks before
    // its end is read (socket buffers would otherwise hide it).
    let fx = Fixture::new("throttle_workaround = no\ntimeout = 5\nbwlimit = 256K");
    fx.write("app.log", bytes(1 << 20, 1)); // 4 s at this rate
    let child = std::thread::spawn({
        let cmd = fx.command(&["once"]);
        move || crate::support::output_within(cmd, Duration::from_secs(30))
    });
    sleep(Duration::from_secs(1));
    let f = fs::OpenOptions::new().write(true).open(fx.path("app.log")).unwrap();
    f.set_len(300_000).unwrap();
    let out = child.join().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("app.log"), "{}", stderr(&out));
    assert!(stderr(&out).contains("shrank"), "{}", stderr(&out));
    assert_eq!(fx.emu.file("/Backup/app.log"), None, "a short body is never kept as the file");
    fx.emu.reset_counts();
    let out = fx.ysync_within(&["once"], 30);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(fx.emu.count(PUT), 1);
    fx.assert_mirror();
}

/// A restored backup of the state folder (or saves lost in a power cut):
/// the state is older than the Disk. Files it calls new but that the Disk
/// holds with the same sha256 are adopted, not sent again.
#[test]
fn an_older_state_adopts_what_the_disk_already_holds_instead_of_sending_it_again() {
    let fx = Fixture::new("");
    fx.write("a.txt", "a");
    fx.sync();
    let backup = fx.tmp.path().join("state-backup");
    copy_dir(fx.state.parent().unwrap(), &backup);
    fx.write("photos/1.jpg", bytes(200_000, 2));
    fx.write("photos/2.jpg", bytes(220_000, 3));
    fx.write("notes.txt", "written after the backup");
    fx.sync();
    fs::remove_dir_all(fx.state.parent().unwrap()).unwrap();
    copy_dir(&backup, fx.state.parent().unwrap());
    fx.write("notes.txt", "and changed since, same path"); // other content: replaced
    fx.emu.reset_counts();
    let out = fx.ysync_within(&["once"], 30);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let sent = fx.emu.uploaded_bytes();
    assert_eq!(sent, "and changed since, same path".len() as u64, "only the changed file is sent\n{}", stderr(&out));
    assert!(stderr(&out).contains("adopted photos/1.jpg"), "{}", stderr(&out));
    fx.assert_mirror();
    fx.emu.reset_counts();
    fx.sync();
    assert_eq!(fx.emu.total_requests(), 0, "and the state knows them now");
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if !e.file_name().to_str().unwrap().ends_with(".lock") {
            fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// Tabs, newlines and carriage returns in names: skipped with a warning
/// like every other control character (the README's rule), and no name
/// can break a log line, the state file or the journal.
#[test]
fn names_with_a_tab_a_newline_or_a_carriage_return_are_skipped_and_never_break_a_line() {
    let fx = Fixture::new("");
    fx.write("ok.txt", "ok");
    for name in ["tab\there.txt", "new\nline.txt", "cr\rname.txt", "dir\nname/inside.txt"] {
        fx.write(name, "x");
    }
    let out = fx.ysync_within(&["-v", "once"], 30);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(fx.emu.tree("/Backup").keys().collect::<Vec<_>>(), ["ok.txt"]);
    let log = stderr(&out);
    for line in log.lines() {
        assert!(line.len() > 20 && line.as_bytes()[..4].iter().all(u8::is_ascii_digit), "a broken log line: {line:?}\n{log}");
    }
    for shown in ["tab\\there.txt", "new\\nline.txt", "cr\\rname.txt", "dir\\nname"] {
        assert_eq!(log.matches(&format!("{shown}: name holds a control character")).count(), 1, "{shown}\n{log}");
    }
    fx.state_json(); // parses
    assert!(fx.state_is_sealed());
}

/// A power cut tore the journal's last line. The next cycles cut it off
/// before appending; they never glue a record onto it and stop for good.
#[test]
fn a_torn_journal_tail_never_stops_ysync() {
    let fx = Fixture::new("");
    fx.write("a.txt", "a");
    fx.sync();
    fx.write("b.txt", "b");
    fx.sync();
    let journal = fx.state.with_extension("json.journal");
    let mut text = fs::read(&journal).unwrap();
    text.extend_from_slice(b"{\"pending\":{\"path\":\"c.t");
    fs::write(&journal, text).unwrap();
    for (i, name) in ["c.txt", "d.txt", "e.txt"].iter().enumerate() {
        fx.write(name, name);
        let out = fx.ysync_within(&["once"], 30);
        assert_eq!(out.status.code(), Some(0), "cycle {i} after the tear\n{}", stderr(&out));
    }
    fx.assert_mirror();
    let left: Vec<String> =
        fs::read_dir(fx.state.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert!(!left.iter().any(|n| n.contains("damaged")), "nothing was damaged: {left:?}");
}

/// Damage in the middle of the journal (a disk error, an editor): kept
/// aside, and the state is rebuilt by adoption; no upload, no exit 2.
#[test]
fn a_journal_damaged_in_the_middle_is_kept_aside_and_the_state_rebuilt_by_adoption() {
    let fx = Fixture::new("");
    fx.write("a.txt", "a");
    fx.sync();
    fx.write("b.bin", bytes(100_000, 9));
    fx.sync();
    let journal = fx.state.with_extension("json.journal");
    let text = fs::read_to_string(&journal).unwrap();
    fs::write(&journal, format!("{{\"put\":garbage\n{text}")).unwrap();
    fx.write("c.txt", "c"); // so that the state is read at all
    fx.emu.reset_counts();
    let out = fx.ysync_within(&["once"], 30);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("is damaged"), "{}", stderr(&out));
    assert_eq!(fx.emu.uploaded_bytes(), 1, "the others adopted, not sent again");
    fx.assert_mirror();
}

/// A kill between getting an upload link and sending the body: the link
/// stays unused and its operation `in-progress` (as on the real Disk, for up
/// to 30 minutes). The next cycle must upload the file, not wait on it.
#[test]
fn an_upload_link_left_unused_by_a_kill_does_not_block_the_file() {
    // No finalisation pause: the time measured below is the wait, if any.
    let quick = crate::emulator::Options { finalize_ms_per_mib: 0, ..Default::default() };
    let fx = Fixture::with(crate::emulator::FakeDisk::with(quick), "/Backup", "");
    fx.write("anchor.txt", "a");
    fx.sync();
    // Larger than the socket buffers can hold, so the body cannot have gone
    // out whole when the Disk, at the PUT's first line, sees its sender die.
    fx.write("report.pdf", bytes(24 << 20, 4));
    // Requests of that cycle: the upload link, then the PUT.
    fx.once_killed_at(2, false);
    let started = std::time::Instant::now();
    let out = fx.ysync_within(&["once"], 60);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(started.elapsed() < Duration::from_secs(4), "it waited {:?} on a dead link", started.elapsed());
    fx.assert_mirror();
}

/// Runs `ysync ARGS` in a mount namespace of its own where `sub` (under
/// local_dir) is a fresh tmpfs holding `files`; `None` when this is not
/// root or `unshare` is missing (the caller then skips, saying so).
fn once_with_a_mount(fx: &Fixture, sub: &str, files: &[(&str, &str)], args: &[&str]) -> Option<std::process::Output> {
    let dir = fx.path(sub);
    fs::create_dir_all(&dir).unwrap();
    let mut script = format!("mount -t tmpfs ysync-test '{}' || exit 99\n", dir.display());
    for (name, text) in files {
        let p = dir.join(name);
        script.push_str(&format!("mkdir -p '{}' && printf %s '{text}' > '{}'\n", p.parent().unwrap().display(), p.display()));
    }
    in_a_mount_namespace(fx, &script, args)
}

/// Runs the shell `setup` (exit 99 on failure), then `ysync ARGS`, in a
/// mount namespace of their own; `None` when this is not root or `unshare`
/// is missing.
fn in_a_mount_namespace(fx: &Fixture, setup: &str, args: &[&str]) -> Option<std::process::Output> {
    if !crate::support::is_root() || std::process::Command::new("unshare").arg("--help").output().is_err() {
        // CI runs as root with util-linux installed: there, a skip would hide a gap.
        assert!(std::env::var_os("CI").is_none(), "CI must run the mount tests: root and unshare(1) are needed");
        return None;
    }
    let mut script = setup.to_string();
    let cmd = fx.command(args);
    let prog = cmd.get_program().to_str().unwrap().to_string();
    let quoted: Vec<String> = cmd.get_args().map(|a| format!("'{}'", a.to_str().unwrap())).collect();
    script.push_str(&format!("exec '{prog}' {}\n", quoted.join(" ")));
    let mut sh = std::process::Command::new("unshare");
    sh.args(["-m", "--propagation", "private", "sh", "-c", &script]);
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => drop(sh.env(k, v)),
            None => drop(sh.env_remove(k)),
        }
    }
    let out = crate::support::output_within(sh, Duration::from_secs(30));
    assert_ne!(out.status.code(), Some(99), "mount failed: {}", stderr(&out));
    Some(out)
}

/// `local_dir/photos` is a disk of its own. Unmounted (the mount point is
/// left empty), missing, or mounted empty: nothing under it is deleted on
/// the Disk, the rest of the tree still syncs, and the exit status says so.
#[test]
fn an_unmounted_sub_folder_is_never_mirrored_as_deleted() {
    let fx = Fixture::new("max_delete = 100%");
    fx.write("notes.txt", "n");
    let photos = [("1.jpg", "one"), ("2024/2.jpg", "two")];
    let Some(out) = once_with_a_mount(&fx, "photos", &photos, &["once"]) else {
        println!("skipped: needs root and unshare(1) for a mount namespace");
        return;
    };
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(fx.emu.file("/Backup/photos/2024/2.jpg").as_deref(), Some(&b"two"[..]));

    // Outside the namespace the mount point is an empty folder.
    fx.write("new.txt", "the rest of the tree keeps syncing");
    let out = fx.ysync_within(&["once"], 30);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("photos was a mount point and is not mounted now"), "{}", stderr(&out));
    assert_eq!(fx.emu.file("/Backup/photos/1.jpg").as_deref(), Some(&b"one"[..]), "nothing deleted");
    assert_eq!(fx.emu.file("/Backup/new.txt").as_deref(), Some(&b"the rest of the tree keeps syncing"[..]));
    assert_eq!(fx.emu.trash().len(), 0);

    // Mounted again, but empty (a fresh filesystem): still nothing deleted.
    let out = once_with_a_mount(&fx, "photos", &[], &["once"]).unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    // The folder gone altogether: the same.
    fs::remove_dir(fx.path("photos")).unwrap();
    let out = fx.ysync_within(&["once"], 30);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert_eq!(fx.emu.tree("/Backup/photos").len(), 3, "{:?}", fx.emu.tree("/Backup/photos"));

    // Back with its files: an ordinary cycle again, changes go through.
    let out = once_with_a_mount(&fx, "photos", &[("1.jpg", "one"), ("2024/2.jpg", "two, edited")], &["once"]).unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(fx.emu.file("/Backup/photos/2024/2.jpg").as_deref(), Some(&b"two, edited"[..]));
}

/// `one_file_system = yes`: a mount inside local_dir is not entered at all.
#[test]
fn one_file_system_skips_mounts_inside_local_dir() {
    let fx = Fixture::new("one_file_system = yes");
    fx.write("notes.txt", "n");
    let Some(out) = once_with_a_mount(&fx, "usb", &[("big.iso", "not mine to upload")], &["once"]) else {
        println!("skipped: needs root and unshare(1) for a mount namespace");
        return;
    };
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(fx.emu.tree("/Backup").keys().collect::<Vec<_>>(), ["notes.txt"]);
}

/// Someone deletes remote_dir in the Disk's web interface. The next change
/// finds its folder missing (409): ysync lists the Disk at once, creates
/// again what is missing and uploads again what is not there.
#[test]
fn a_deleted_remote_dir_is_rebuilt_by_the_next_cycle_that_notices() {
    let fx = Fixture::new("");
    fx.write("a.txt", "a");
    fx.write("d/b.txt", "b");
    fx.mkdir("empty");
    fx.sync();
    fx.emu.remove("/Backup");
    fx.write("d/b.txt", "b, changed");
    let out = fx.ysync_within(&["once"], 30);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("not on the Disk as ysync left them"), "{}", stderr(&out));
    fx.assert_mirror();
    fx.emu.reset_counts();
    let out = fx.ysync_within(&["once"], 30);
    assert_eq!((out.status.code(), fx.emu.total_requests()), (Some(0), 0), "then idle\n{}", stderr(&out));
}

/// Nothing changes locally, but the Disk was emptied or edited behind
/// ysync's back: the periodic reconcile (`reconcile`) repairs it, and
/// leaves files that are not ysync's alone.
#[test]
fn the_periodic_reconcile_repairs_a_disk_edited_behind_ysyncs_back() {
    let fx = Fixture::new("reconcile = 2");
    fx.write("a.txt", "a");
    fx.write("d/b.txt", "b");
    fx.write("d/c.txt", "c");
    fx.sync();
    fx.emu.remove("/Backup/d/b.txt");
    fx.emu.put_file("/Backup/d/c.txt", b"edited in the web interface");
    fx.emu.put_file("/Backup/theirs.txt", b"someone else's");
    fx.emu.reset_counts();
    fx.sync();
    assert_eq!(fx.emu.total_requests(), 0, "not due yet: an idle cycle asks nothing");
    sleep(Duration::from_millis(2100));
    let out = fx.ysync_within(&["once"], 30);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(fx.emu.file("/Backup/d/b.txt").as_deref(), Some(&b"b"[..]));
    assert_eq!(fx.emu.file("/Backup/d/c.txt").as_deref(), Some(&b"c"[..]));
    assert_eq!(fx.emu.file("/Backup/theirs.txt").as_deref(), Some(&b"someone else's"[..]), "foreign files untouched");
    assert_eq!(fx.emu.count(PUT), 2, "only what was missing or different is sent");
    // A reconcile that finds everything in order costs its listings only.
    sleep(Duration::from_millis(2100));
    fx.emu.reset_counts();
    fx.sync();
    assert_eq!(fx.emu.total_requests(), fx.emu.count("GET /v1/disk/resources"), "{:?}", fx.emu.counts());
    assert_eq!(fx.emu.count("GET /v1/disk/resources"), 2, "one listing per folder");
}

/// `reconcile = 0`: never listed, whatever happens on the Disk.
#[test]
fn reconcile_0_never_lists() {
    let fx = Fixture::new("reconcile = 0");
    fx.write("a.txt", "a");
    fx.sync();
    fx.emu.remove("/Backup/a.txt");
    fx.emu.reset_counts();
    fx.sync();
    assert_eq!(fx.emu.total_requests(), 0);
}

/// The uploader stops reading in the middle of a body (a hung peer, a
/// dead NAT mapping): the write times out after `timeout`, the upload is
/// tried again with a new link, and the cycle ends. Before, it waited for
/// ever: only connecting and reading had a timeout.
#[test]
fn an_uploader_that_stops_reading_mid_body_is_a_timeout_not_a_hang() {
    let fx = Fixture::new("timeout = 2");
    fx.write("anchor.txt", "a");
    fx.sync();
    fx.write("big.bin", bytes(40 << 20, 5)); // far more than the socket buffers hold
    fx.emu.reset_counts();
    fx.emu.inject(crate::emulator::Fault::new(PUT, crate::emulator::FaultKind::Stall(Duration::from_secs(120)), 1));
    let started = std::time::Instant::now();
    let out = fx.ysync_within(&["once"], 40);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(started.elapsed() < Duration::from_secs(30), "took {:?}", started.elapsed());
    assert_eq!(fx.emu.count(PUT), 2, "tried again with a new link");
    fx.assert_mirror();
}

/// `timeout` bounds each read and write, never a whole upload: a file that
/// takes many times `timeout` to send goes through in one piece.
#[test]
fn an_upload_longer_than_timeout_is_not_cut() {
    let fx = Fixture::new("timeout = 1\nbwlimit = 1M\nthrottle_workaround = no");
    fx.write("video.bin", bytes(4 << 20, 6)); // 4 s at this rate
    fx.emu.reset_counts();
    let out = fx.ysync_within(&["once"], 40);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(fx.emu.count(PUT), 1, "one try\n{}", stderr(&out));
    fx.assert_mirror();
}

/// Killed right after an upload landed (its answer lost), then killed again
/// during the next attempt at that file, which has another size now; then
/// the file is deleted locally. The first attempt's copy is ysync's and must
/// go too: the record of the second attempt remembers the first's md5.
#[test]
fn a_crash_during_a_second_attempt_does_not_leave_the_first_behind() {
    let fx = Fixture::new("");
    fx.write("anchor.txt", "a");
    fx.sync();
    let killed = |request, after| fx.once_killed_at(request, after);
    fx.write("draft.doc", bytes(50_000, 1));
    killed(2, true); // the upload link, then the PUT: stored, never answered
    assert!(fx.emu.file("/Backup/draft.doc").is_some());
    fx.write("draft.doc", bytes(60_000, 2));
    killed(3, false); // the first attempt's operation, a new link, the PUT
    fs::remove_file(fx.path("draft.doc")).unwrap();
    let out = fx.ysync_within(&["once"], 30);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    fx.assert_mirror();
}

/// A bind mount of local_dir inside itself (`mount --bind /srv /srv/a/loop`,
/// a NAS admin's slip) must not nest the tree until paths grow too long:
/// the folder met again is skipped with a warning.
#[test]
fn a_bind_mount_loop_is_entered_once() {
    let fx = Fixture::new("");
    fx.write("a/photo.jpg", "p");
    fx.write("notes.txt", "n");
    fx.mkdir("a/loop");
    let local = fx.local.display();
    let setup = format!("mount --bind '{local}' '{local}/a/loop' || exit 99\n");
    let Some(out) = in_a_mount_namespace(&fx, &setup, &["once"]) else {
        println!("skipped: needs root and unshare(1) for a mount namespace");
        return;
    };
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("a/loop: the same folder as one seen before (a bind mount)"), "{}", stderr(&out));
    let remote: Vec<String> = fx.emu.tree("/Backup").into_keys().collect();
    assert_eq!(remote, ["a", "a/photo.jpg", "notes.txt"]);
}

/// A big upload landed, but ysync was killed before the Disk's answer came
/// ("failed at the end although the file landed"). The next cycle finds the
/// Disk holding exactly that file and records it: not a byte is sent again.
#[test]
fn an_upload_that_landed_just_before_a_kill_is_not_sent_again() {
    let fx = Fixture::new("");
    fx.write("anchor.txt", "a");
    fx.sync();
    fx.write("backup.img", bytes(3 << 20, 7));
    fx.once_killed_at(2, true); // the upload link, then the PUT: stored, never answered
    fx.emu.reset_counts();
    let out = fx.ysync_within(&["once"], 30);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(fx.emu.uploaded_bytes(), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("adopted backup.img"), "{}", stderr(&out));
    fx.assert_mirror();
    fx.emu.reset_counts();
    fx.sync();
    assert_eq!(fx.emu.total_requests(), 0);
}
