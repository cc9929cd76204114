//! `ysync login`: the device flow end to end against the emulator's OAuth
//! endpoints, with a scripted user on the other side.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::Duration;

use crate::emulator::oauth::Script;
use crate::emulator::{FakeDisk, Options};
use crate::support::{Fixture, is_root, stderr, stdout};

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

    // The token on the first line, then what renewing it takes.
    let saved = fs::read_to_string(&token_file).unwrap();
    assert_eq!(saved.lines().next(), Some(fx.emu.token().as_str()), "{saved}");
    assert!(saved.contains("\nrefresh_token = ref"), "{saved}");
    assert!(saved.contains(&format!("\nlifetime = {}\n", 365 * 86_400)), "{saved}");
    assert!(text.contains("ysync renews it before it expires"), "{text}");
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
    let life = Script { pending_polls: 0, token_life: Duration::from_secs(4), ..Script::default() };
    let (fx, token_file) = setup(life, "token_file = TOKEN_FILE");
    let dir = token_file.parent().unwrap();
    fs::create_dir(dir).unwrap();
    std::os::unix::fs::chown(dir, Some(65534), Some(65534)).unwrap();
    let out = fx.ysync(&["login"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let meta = fs::metadata(&token_file).unwrap();
    assert_eq!((meta.uid(), meta.gid(), meta.mode() & 0o777), (65534, 65534, 0o600));
    assert!(stderr(&out).contains("owned by uid 65534 like its folder"), "{}", stderr(&out));

    // Renewed by root, it keeps its owner.
    let first = first_line(&token_file);
    sleep(Duration::from_millis(3000));
    fx.sync();
    let meta = fs::metadata(&token_file).unwrap();
    assert_ne!(first_line(&token_file), first, "renewed");
    assert_eq!((meta.uid(), meta.gid(), meta.mode() & 0o777), (65534, 65534, 0o600));
}

// ------------------------------------------------------------ the token's life

fn first_line(p: &Path) -> String {
    fs::read_to_string(p).unwrap().lines().next().unwrap_or_default().to_string()
}

/// A token lives a year, and then the backups stopped. Here one lives 6 s:
/// with less than half of it left, ysync renews it with the refresh token
/// that `login` kept, and writes the file back, mode 0600. Once the first
/// token has expired, ysync still works. On 5fa1979 it exited 3 then.
#[test]
fn the_token_is_renewed_before_it_expires_and_the_backups_go_on() {
    let life = Script { pending_polls: 0, token_life: Duration::from_secs(6), ..Script::default() };
    let (fx, token_file) = setup(life, "token_file = TOKEN_FILE");
    let out = fx.ysync(&["login"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let first = first_line(&token_file);
    fx.write("a.txt", "a");
    fx.sync();
    assert_eq!(fx.emu.oauth_record().refreshes, 0, "not renewed while more than half is left");

    // Its owner made it read-only: it stays so.
    fs::set_permissions(&token_file, fs::Permissions::from_mode(0o400)).unwrap();
    sleep(Duration::from_millis(4000));
    fx.write("b.txt", "b");
    let out = fx.sync();
    assert!(stderr(&out).contains(&format!("renewed the token in {}", token_file.display())), "{}", stderr(&out));
    let second = first_line(&token_file);
    assert_ne!(second, first, "a new token");
    assert_eq!(fs::metadata(&token_file).unwrap().permissions().mode() & 0o777, 0o400, "the mode it had");
    let left: Vec<_> = fs::read_dir(token_file.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, ["token"], "no temporary file is left");
    assert_eq!(fx.emu.oauth_record().renewed, 1);

    // The first token is dead by now; the backups go on.
    sleep(Duration::from_millis(2500));
    fx.write("c.txt", "c");
    let out = fx.ysync(&["once"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    fx.assert_mirror();
    let out = fx.ysync(&["check"]);
    assert!(stdout(&out).contains("ok token life"), "{}", stdout(&out));
    assert!(stdout(&fx.ysync(&["status"])).contains("token        expires in"));

    // A plain one-line token file still works; nobody can say when it ends.
    fs::write(&token_file, format!("{}\n", first_line(&token_file))).unwrap();
    fx.write("d.txt", "d");
    fx.sync();
    fx.assert_mirror();
    assert!(stdout(&fx.ysync(&["check"])).contains("ok token life   expiry unknown (a plain token file"));
}

/// Without the app's credentials the token cannot be renewed: ysync says
/// so with the time left, `check` flags it, and after the expiry the 401
/// comes with the date and the login hint (exit 3).
#[test]
fn a_token_that_cannot_be_renewed_is_announced_and_its_end_names_the_way_out() {
    let life = Script { pending_polls: 0, token_life: Duration::from_secs(4), ..Script::default() };
    let (fx, token_file) = setup(life, "token_file = TOKEN_FILE");
    assert_eq!(fx.ysync(&["login"]).status.code(), Some(0));
    let conf = fs::read_to_string(&fx.conf).unwrap().replace("client_id = test-client\nclient_secret = test-secret\n", "");
    fs::write(&fx.conf, conf).unwrap();
    sleep(Duration::from_millis(3000));
    let out = fx.sync();
    let log = stderr(&out);
    assert!(log.contains(&format!("the token in {} expires in less than a minute", token_file.display())), "{log}");
    assert!(log.contains("cannot renew it: client_id and client_secret are not in the config"), "{log}");
    let out = fx.ysync(&["check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("!! token life"), "{}", stdout(&out));
    assert!(stdout(&out).contains("not renewed automatically: client_id and client_secret are not in the config"), "{}", stdout(&out));

    sleep(Duration::from_millis(1500));
    fx.write("late.txt", "x");
    let out = fx.ysync(&["once"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("expired 0 days ago"), "{}", stderr(&out));
    assert!(stderr(&out).contains("run `ysync login` for a new one"), "{}", stderr(&out));
    assert!(fx.emu.oauth_record().expired_uses > 0);
}

/// Yandex may give the same token back while it has plenty of time left.
/// ysync then does not ask again at every run: it notes when it asked.
#[test]
fn a_renewal_that_gives_the_same_token_back_is_not_asked_again_at_once() {
    let (fx, token_file) =
        setup(Script { pending_polls: 0, token_life: Duration::from_secs(1000), ..Script::default() }, "token_file = TOKEN_FILE");
    assert_eq!(fx.ysync(&["login"]).status.code(), Some(0));
    // As if most of its life had passed; the emulator knows better.
    let text = fs::read_to_string(&token_file).unwrap();
    let expires: u64 = text.lines().find_map(|l| l.strip_prefix("expires = ")).unwrap().parse().unwrap();
    fs::write(&token_file, text.replace(&format!("expires = {expires}"), &format!("expires = {}", expires - 900))).unwrap();
    for _ in 0..3 {
        fx.sync();
    }
    assert_eq!(fx.emu.oauth_record().refreshes, 1, "{:?}", fx.emu.oauth_record());
    let text = fs::read_to_string(&token_file).unwrap();
    assert!(text.contains("\nasked = "), "{text}");
    assert_eq!(first_line(&token_file), fx.emu.token());
}

/// A running daemon renews between cycles and carries on past the first
/// token's end.
#[test]
fn a_running_daemon_renews_its_token_between_cycles() {
    let life = Script { pending_polls: 0, token_life: Duration::from_secs(4), ..Script::default() };
    let (fx, token_file) = setup(life, "token_file = TOKEN_FILE\ninterval = 1");
    assert_eq!(fx.ysync(&["login"]).status.code(), Some(0));
    let mut daemon = fx.command(&["run"]).stderr(std::process::Stdio::piped()).spawn().unwrap();
    sleep(Duration::from_secs(6));
    fx.write("after.txt", "written after the first token died");
    let mut mirrored = false;
    for _ in 0..50 {
        if fx.emu.file("/Backup/after.txt").is_some() {
            mirrored = true;
            break;
        }
        sleep(Duration::from_millis(100));
    }
    let alive = daemon.try_wait().unwrap().is_none();
    daemon.kill().unwrap();
    let out = daemon.wait_with_output().unwrap();
    assert!(alive, "the daemon kept running");
    assert!(mirrored, "a file written after the first token's end reached the Disk: {}", stderr(&out));
    assert!(fx.emu.oauth_record().renewed >= 1);
    assert_ne!(first_line(&token_file), fx.emu.token());
}
