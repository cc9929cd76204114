//! Never stuck, never a hang: a NAS owner's bad day, one scenario per test.
//! Every run of ysync here has a deadline; going past it fails the test.

mod emulator;
mod support;

use std::fs;
use std::thread::sleep;
use std::time::Duration;

use emulator::{FakeDisk, Options};
use support::{Fixture, bytes, stderr};

const PUT: &str = "PUT upload";

fn fixture_with(opts: Options, extra: &str) -> Fixture {
    Fixture::with(FakeDisk::with(opts), "/Backup", extra)
}

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
