//! `ysync check`: is everything ready, and if not, what to fix.

use crate::emulator::{FakeDisk, Options};
use crate::support::{Fixture, stdout};

#[test]
fn a_ready_setup_is_reported_with_the_token_masked() {
    let fx = Fixture::with(
        FakeDisk::with(Options { total_space: 10 << 30, max_file_size: 1 << 30, ..Options::default() }),
        "/Backups/new one",
        "",
    );
    fx.emu.put_file("/Backups/other.txt", b"x");
    let out = fx.ysync(&["check"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("ok account      emulator: 1 B used of 10.0 GiB"), "{text}");
    assert!(text.contains("files up to 1.0 GiB"), "{text}");
    assert!(text.contains("disk:/Backups/new one will be created (disk:/Backups exists)"), "{text}");
    assert!(text.contains("token        *** ("), "{text}");
    assert!(!text.contains("***oken") && !text.contains("t-token"), "not even the token's tail: {text}");
    assert!(!text.contains(&fx.emu.token()), "{text}");
    assert!(text.contains("(plain http, not encrypted: for a test on this machine only)"), "the emulator's http is named: {text}");
    assert!(text.trim_end().ends_with("ready"), "{text}");
    assert_eq!(fx.emu.count("PUT /v1/disk/resources"), 0, "check creates nothing");
}

#[test]
fn each_problem_is_named() {
    let fx = Fixture::new("");
    std::fs::remove_dir(&fx.local).unwrap();
    let out = fx.ysync(&["check"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains(&format!("!! local_dir    {}: No such file or directory", fx.local.display())), "{text}");
    assert!(text.contains("1 problems to fix"), "{text}");
}

#[test]
fn a_rejected_token_exits_3() {
    let fx = Fixture::with(FakeDisk::with(Options { token: "other".into(), ..Options::default() }), "/Backup", "");
    let conf = std::fs::read_to_string(&fx.conf).unwrap().replace("token = other", "token = wrong-token");
    std::fs::write(&fx.conf, conf).unwrap();
    let out = fx.ysync(&["check"]);
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
    assert!(stdout(&out).contains("the token was rejected"), "{}", stdout(&out));
}
