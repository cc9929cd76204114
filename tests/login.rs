//! `ysync login`: the device flow end to end against the emulator's OAuth
//! endpoints, with a scripted user on the other side.

mod emulator;
mod support;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;

use emulator::oauth::Script;
use emulator::{FakeDisk, Options};
use support::{Fixture, is_root, stderr, stdout};

/// A fixture whose config has no token yet: only the app and token_file.
fn setup(script: Script, token_line: &str) -> (Fixture, PathBuf) {
    let fx = Fixture::with(FakeDisk::with(Options { oauth: script, ..Options::default() }), "/Backup", "");
    let token_file = fx.tmp.path().join("secret/token");
    let conf = format!(
        "local_dir = {}\nremote_dir = /Backup\napi_url = {}\noauth_url = {}\nstate_file = {}\n\
         client_id = test-client\nclient_secret = test-secret\n{token_line}\n",
        fx.local.display(),
        fx.emu.api_url(),
        fx.emu.oauth_url(),
        fx.state.display(),
    )
    .replace("TOKEN_FILE", &token_file.display().to_string());
    fs::write(&fx.conf, conf).unwrap();
    (fx, token_file)
}

#[test]
fn the_user_enters_the_code_and_the_token_lands_in_token_file_for_its_owner_only() {
    let (fx, token_file) = setup(Script { pending_polls: 2, ..Script::default() }, "token_file = TOKEN_FILE");
    let out = fx.ysync(&["login"]);
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("https://ya.ru/device"), "the verification URL is shown: {text}");
    assert!(text.contains("enter the code"), "{text}");
    assert!(text.contains("logged in as emulator"), "the new token was tried on the Disk: {text}");
    assert_eq!(stdout(&out), "", "nothing on stdout without --print");

    assert_eq!(fs::read_to_string(&token_file).unwrap(), format!("{}\n", fx.emu.token()));
    assert_eq!(fs::metadata(&token_file).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(fs::metadata(token_file.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
    let left: Vec<_> = fs::read_dir(token_file.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, ["token"], "no temporary file is left");

    let seen = fx.emu.oauth_record();
    assert_eq!((seen.codes_issued, seen.polls, seen.early_polls), (1, 3, 0), "{seen:?}");
    let id = &seen.device_ids[0];
    assert!(id.starts_with("ysync-") && (6..=50).contains(&id.len()), "{id}");
    assert!(seen.device_names[0].starts_with("ysync on "), "{seen:?}");

    // The token works for what it is for.
    fx.write("photo.jpg", "pixels");
    fx.sync();
    fx.assert_mirror();
}

#[test]
fn slow_down_makes_ysync_poll_five_seconds_less_often() {
    let (fx, token_file) =
        setup(Script { pending_polls: 0, slow_down_at: vec![1], expires_in: 15, ..Script::default() }, "token_file = TOKEN_FILE");
    let out = fx.ysync(&["login"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let seen = fx.emu.oauth_record();
    assert_eq!((seen.polls, seen.early_polls), (2, 0), "the poll after slow_down waited 1 + 5 s: {seen:?}");
    assert!(token_file.exists());
}

#[test]
fn denial_and_expiry_say_what_happened_and_write_nothing() {
    let (fx, token_file) = setup(Script { pending_polls: 1, deny: true, ..Script::default() }, "token_file = TOKEN_FILE");
    let out = fx.ysync(&["login"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("access was denied on the Yandex page; run `ysync login` again"), "{}", stderr(&out));
    assert!(!token_file.exists());

    let (fx, token_file) = setup(Script { pending_polls: 1000, expires_in: 2, ..Script::default() }, "token_file = TOKEN_FILE");
    let out = fx.ysync(&["login"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("expired before it was entered; run `ysync login` again"), "{}", stderr(&out));
    assert!(!token_file.exists());
    assert!(fx.emu.oauth_record().polls <= 3, "no polling after the code expired: {:?}", fx.emu.oauth_record());

    // An OAuth server that speaks RFC 8628's name for it says the same.
    let (fx, _) = setup(Script { pending_polls: 1000, expires_in: 2, rfc_names: true, ..Script::default() }, "token_file = TOKEN_FILE");
    let out = fx.ysync(&["login"]);
    assert!(stderr(&out).contains("expired before it was entered; run `ysync login` again"), "{}", stderr(&out));
}

#[test]
fn config_problems_are_named_and_stop_before_the_user_is_asked() {
    // No client_id.
    let (fx, _) = setup(Script::default(), "token_file = TOKEN_FILE");
    let conf = fs::read_to_string(&fx.conf).unwrap().replace("client_id = test-client\n", "");
    fs::write(&fx.conf, conf).unwrap();
    let out = fx.ysync(&["login"]);
    assert_eq!(out.status.code(), Some(2));
    let text = stderr(&out);
    assert!(text.contains(&format!("{}: client_id: required but not set", fx.conf.display())), "{text}");
    assert!(text.contains("https://oauth.yandex.ru/client/new"), "{text}");

    // Nowhere to write the token.
    let (fx, _) = setup(Script::default(), "");
    let out = fx.ysync(&["login"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("token_file: required by login"), "{}", stderr(&out));

    // A token in the config file itself, which login does not rewrite.
    let (fx, _) = setup(Script::default(), "token = old-token");
    let out = fx.ysync(&["login"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains(":8: token is set in the config itself"), "{}", stderr(&out));
    assert_eq!(fx.emu.oauth_record().codes_issued, 0, "the user was not sent to the browser for nothing");

    // A wrong secret shows at the first poll.
    let (fx, token_file) = setup(Script { client_secret: "other".into(), ..Script::default() }, "token_file = TOKEN_FILE");
    let out = fx.ysync(&["login"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("refused client_id test-client with its client_secret"), "{}", stderr(&out));
    assert!(!token_file.exists());
}

#[test]
fn print_puts_only_the_token_on_stdout_and_writes_no_file() {
    let (fx, token_file) = setup(Script::default(), "token = old-token");
    let out = fx.ysync(&["login", "--print"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("{}\n", fx.emu.token()));
    assert!(!token_file.exists());
}

#[test]
fn as_root_the_token_file_belongs_to_the_owner_of_its_folder() {
    if !is_root() {
        eprintln!("skipped: needs root to give a file away");
        return;
    }
    let (fx, token_file) = setup(Script { pending_polls: 0, ..Script::default() }, "token_file = TOKEN_FILE");
    let dir = token_file.parent().unwrap();
    fs::create_dir(dir).unwrap();
    std::os::unix::fs::chown(dir, Some(65534), Some(65534)).unwrap();
    let out = fx.ysync(&["login"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let meta = fs::metadata(&token_file).unwrap();
    assert_eq!((meta.uid(), meta.gid(), meta.mode() & 0o777), (65534, 65534, 0o600));
    assert!(stderr(&out).contains("owned by uid 65534 like its folder"), "{}", stderr(&out));
}
