//! Never stuck, never a hang: a NAS owner's bad day, one scenario per test.
//! Every run of ysync here has a deadline; going past it fails the test.

mod emulator;
mod support;

use std::fs;
use std::thread::sleep;
use std::time::Duration;

use support::{Fixture, bytes, stderr};

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
        move || support::output_within(cmd, Duration::from_secs(30))
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
    let fx = Fixture::new("");
    fx.write("anchor.txt", "a");
    fx.sync();
    fx.write("report.pdf", bytes(300_000, 4));
    // Requests of that cycle: the upload link, then the PUT.
    let victim = fx.emu.kill_at(emulator::KillAt { request: 2, after: false });
    let mut child = fx.command(&["once"]).spawn().unwrap();
    victim.store(child.id(), std::sync::atomic::Ordering::SeqCst);
    assert_eq!(child.wait().unwrap().code(), None, "killed");
    let started = std::time::Instant::now();
    let out = fx.ysync_within(&["once"], 60);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(started.elapsed() < Duration::from_secs(4), "it waited {:?} on a dead link", started.elapsed());
    fx.assert_mirror();
}
