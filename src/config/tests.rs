use super::file::KEYS;
use super::*;

fn no_env(_: &str) -> Option<String> {
    None
}

fn parse_ok(text: &str) -> Config {
    parse(Path::new("/etc/y.conf"), text, &no_env).unwrap()
}

fn parse_err(text: &str) -> String {
    parse(Path::new("/etc/y.conf"), text, &no_env).unwrap_err().to_string()
}

const BASE: &str = "token = abc123\nlocal_dir = /srv/photos\nremote_dir = disk:/Backups/photos\n";

#[test]
fn defaults() {
    let c = parse_ok(BASE);
    assert_eq!(c.token.secret(), "abc123");
    assert_eq!(c.local_dir, PathBuf::from("/srv/photos"));
    assert_eq!(c.remote_dir, "/Backups/photos");
    assert_eq!(c.interval, Duration::from_secs(60));
    assert_eq!(c.timeout, Duration::from_secs(30));
    assert_eq!(c.delete, DeleteMode::Trash);
    assert_eq!(c.max_delete, MaxDelete::Percent(50));
    assert!(c.throttle_workaround);
    assert_eq!(c.bwlimit, 0);
    assert_eq!(c.api_url, DEFAULT_API_URL);
    assert!(!c.one_file_system);
    assert_eq!(c.reconcile, Duration::from_secs(7 * 86400));
}

#[test]
fn every_key_with_comments_and_repeats() {
    let c = parse_ok(
        "# a comment\n\n token = \"abc123\"  # trailing comment\nlocal_dir = /srv/photos/\nremote_dir = /Фото 2024/a+b/\n\
         interval = 300\nstate_file = /var/lib/ysync/p.json\ndelete = permanent\nexclude = *.tmp\nexclude = \"#tag/**\"\n\
         throttle_workaround = no\nthrottled_ext = .MP3\nthrottled_ext = flac\nmax_delete = 200\nmin_age = 5\nbwlimit = 2M\napi_url = http://127.0.0.1:1/v1/disk/\ntimeout = 10\n\
         one_file_system = yes\nreconcile = 12h\n",
    );
    assert!(c.one_file_system);
    assert_eq!(c.reconcile, Duration::from_secs(12 * 3600));
    assert_eq!(c.token.secret(), "abc123");
    assert_eq!(c.local_dir, PathBuf::from("/srv/photos"));
    assert_eq!(c.remote_dir, "/Фото 2024/a+b");
    assert_eq!(c.interval, Duration::from_secs(300));
    assert_eq!(c.state_file, PathBuf::from("/var/lib/ysync/p.json"));
    assert_eq!(c.delete, DeleteMode::Permanent);
    assert_eq!(c.exclude.len(), 2);
    assert!(c.exclude[1].matches("#tag/x/y", false));
    assert!(!c.throttle_workaround);
    assert_eq!(c.throttled_ext, ["mp3", "flac"]);
    assert_eq!(c.max_delete, MaxDelete::Count(200));
    assert_eq!(c.min_age, Duration::from_secs(5));
    assert_eq!(c.bwlimit, 2 << 20);
    assert_eq!(c.api_url, "http://127.0.0.1:1/v1/disk");
    assert_eq!(c.timeout, Duration::from_secs(10));
}

#[test]
fn reconcile_periods() {
    for (given, secs) in [("0", 0), ("90", 90), ("90s", 90), ("30m", 1800), ("12h", 43200), ("7d", 604_800)] {
        assert_eq!(parse_ok(&format!("{BASE}reconcile = {given}\n")).reconcile, Duration::from_secs(secs), "{given}");
    }
    for bad in ["7 days", "1w", "d", "-1d"] {
        let e = parse_err(&format!("{BASE}reconcile = {bad}\n"));
        assert!(e.starts_with("/etc/y.conf:4: reconcile: ") && e.contains("7d, 12h, 30m or 0"), "{bad}: {e}");
    }
}

#[test]
fn remote_dir_forms() {
    for (given, want) in [("disk:/", "/"), ("/", "/"), ("disk:/a//b/", "/a/b"), ("a/b", "/a/b"), ("/t 10:30", "/t 10:30")] {
        let c = parse_ok(&format!("token=t\nlocal_dir=/x\nremote_dir={given}\n"));
        assert_eq!(c.remote_dir, want, "{given}");
    }
    assert!(parse_err("token=t\nlocal_dir=/x\nremote_dir=app:/x\n").contains("only `disk:/…`"));
    assert!(parse_err("token=t\nlocal_dir=/x\nremote_dir=/a/../b\n").contains("contains `..`"));
}

#[test]
fn errors_name_file_line_and_key() {
    assert_eq!(
        parse_err(&format!("{BASE}colour = red\n")),
        "/etc/y.conf:4: colour: unknown key (known keys: token, token_file, local_dir, remote_dir, interval, state_file, delete, exclude, throttle_workaround, throttled_ext, max_delete, min_age, bwlimit, api_url, timeout, one_file_system, reconcile, on_success, on_failure, hook_timeout, progress, backup_dir, backup_keep, max_change, exclude_if_present, client_id, client_secret, oauth_url)"
    );
    assert_eq!(parse_err(&format!("{BASE}interval = 5m\n")), "/etc/y.conf:4: interval: `5m` is not a whole number of seconds");
    assert_eq!(parse_err(&format!("{BASE}interval = 0\n")), "/etc/y.conf:4: interval: must be at least 1");
    assert_eq!(parse_err(&format!("{BASE}delete = maybe\n")), "/etc/y.conf:4: delete: `maybe` is not one of trash, permanent, keep");
    assert!(parse_err(&format!("{BASE}max_delete = lots\n")).starts_with("/etc/y.conf:4: max_delete: "));
    assert!(parse_err(&format!("{BASE}bwlimit = fast\n")).starts_with("/etc/y.conf:4: bwlimit: "));
    assert!(parse_err(&format!("{BASE}api_url = ftp://x\n")).starts_with("/etc/y.conf:4: api_url: "));
    assert!(parse_err(&format!("{BASE}throttle_workaround = perhaps\n")).starts_with("/etc/y.conf:4: throttle_workaround: "));
    assert!(
        parse_err(&format!("{BASE}no equals sign\n")).starts_with("/etc/y.conf:4: expected `key = value`, found a line of 14 characters")
    );
    assert!(
        parse_err(&format!("{BASE}interval = 5\ninterval = 6\n"))
            .starts_with("/etc/y.conf:5: interval: given twice (first at /etc/y.conf:4)")
    );
}

#[test]
fn required_keys() {
    assert!(parse_err("local_dir=/x\nremote_dir=/y\n").starts_with("/etc/y.conf: token: required but not set"));
    assert!(parse_err("token=t\nremote_dir=/y\n").starts_with("/etc/y.conf: local_dir: required"));
    assert!(parse_err("token=t\nlocal_dir=/x\n").starts_with("/etc/y.conf: remote_dir: required"));
    assert_eq!(
        parse_err("token=t\nlocal_dir=srv/x\nremote_dir=/y\n"),
        "/etc/y.conf:2: local_dir: `srv/x` is not an absolute path; write it starting with /"
    );
    assert!(parse_err("token=t\ntoken_file=/tmp/x\nlocal_dir=/x\nremote_dir=/y\n").starts_with("/etc/y.conf:2: token_file: both"));
    assert_eq!(
        parse_err("token_file=/nonexistent/token\nlocal_dir=/x\nremote_dir=/y\n"),
        "/etc/y.conf:1: token_file: /nonexistent/token does not exist yet; run `ysync login` to create it, or put the token there"
    );
}

#[test]
fn state_file_inside_local_dir_is_refused() {
    let e = parse_err(&format!("{BASE}state_file = /srv/photos/.ysync.json\n"));
    assert!(e.starts_with("/etc/y.conf:4: state_file: /srv/photos/.ysync.json is inside local_dir /srv/photos"), "{e}");
    // A sibling with a common prefix is fine.
    parse_ok(&format!("{BASE}state_file = /srv/photos-state.json\n"));
}

#[test]
fn environment_overrides_the_file() {
    let env = |k: &str| match k {
        "YSYNC_TOKEN" => Some("fromenv".to_string()),
        "YSYNC_API_URL" => Some("http://127.0.0.1:9/v1/disk".to_string()),
        _ => None,
    };
    let c = parse(Path::new("/etc/y.conf"), BASE, &env).unwrap();
    assert_eq!(c.token.secret(), "fromenv");
    assert_eq!(c.api_url, "http://127.0.0.1:9/v1/disk");
    // The environment token also satisfies a file without one.
    parse(Path::new("/etc/y.conf"), "local_dir=/x\nremote_dir=/y\n", &env).unwrap();
}

#[test]
fn the_app_for_renewing_the_token_is_both_keys_or_none() {
    let base = "token_file = /nonexistent\nlocal_dir=/x\nremote_dir=/y\n";
    assert!(parse_ok("token=t\nlocal_dir=/x\nremote_dir=/y\n").app.is_none());
    let c = parse_ok("token=t\nlocal_dir=/x\nremote_dir=/y\nclient_id = a\nclient_secret = s\n");
    assert_eq!(c.app.map(|a| a.client_id), Some("a".into()));
    assert!(parse_err("token=t\nlocal_dir=/x\nremote_dir=/y\nclient_id = a\n").starts_with("/etc/y.conf: client_secret: required"));
    assert!(parse_err(base).contains("does not exist yet; run `ysync login`"));
}

#[test]
fn token_never_shown_by_debug() {
    let c = parse_ok("token = AQAAAAAsecretTOKENvalue\nlocal_dir=/x\nremote_dir=/y\n");
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("secretTOKEN") && !dbg.contains("alue"), "not even a tail: {dbg}");
    assert!(dbg.contains("*** (23 characters)"), "{dbg}");
}

#[test]
fn a_secret_on_a_bad_line_is_never_echoed() {
    // The review's finding 11: a colon for `=`, a token on a line of its own.
    for text in [format!("token: y0_AgAAAAB-SECRET\n{BASE}"), format!("{BASE}client_secret =\ny0_AgAAAAB-SECRET\n")] {
        let e = parse_err(&text);
        assert!(!e.contains("SECRET") && !e.contains("y0_"), "{e}");
        assert!(e.contains(":1: ") || e.contains(":5: "), "the line is named: {e}");
    }
    assert!(parse_err(&format!("token: y0_AgAAAAB-SECRET\n{BASE}")).contains("write `token = …`"));
}

#[test]
fn hooks_show_their_program_only_and_secrets_no_tail() {
    // Finding 12: health-check UUIDs and bot tokens are credentials.
    let c = parse_ok(&format!(
        "{BASE}client_id = app\nclient_secret = SECRETvalue123\non_success = /bin/sh -c 'curl https://hc-ping.com/5b1f-uuid'\n"
    ));
    let dbg = format!("{c:?}");
    assert!(dbg.contains("/bin/sh (and 2 arguments, not shown)"), "{dbg}");
    for secret in ["hc-ping", "5b1f", "SECRET", "e123", "abc123", "c123"] {
        assert!(!dbg.contains(secret), "{secret} in {dbg}");
    }
}

#[test]
fn plain_http_only_to_this_machine() {
    // Finding 13: the token, refresh token and client secret would travel in clear.
    for url in ["http://cloud-api.yandex.net/v1/disk", "http://10.0.0.2:8765/v1/disk", "http://127.0.0.1.evil.example/v1"] {
        let e = parse_err(&format!("{BASE}api_url = {url}\n"));
        assert!(e.contains("plain http") && e.contains("Use https://"), "{url}: {e}");
    }
    for url in
        ["http://127.0.0.1:8765/v1/disk", "http://localhost:1/v1/disk", "http://[::1]:9/v1/disk", "https://cloud-api.yandex.com/v1/disk"]
    {
        assert_eq!(parse_ok(&format!("{BASE}api_url = {url}\n")).api_url, url);
    }
    let e = parse_err(&format!("{BASE}client_id = a\nclient_secret = s\noauth_url = http://oauth.yandex.ru\n"));
    assert!(e.contains("oauth_url") && e.contains("plain http"), "{e}");
    assert!(parse_err(&format!("{BASE}api_url = https://\n")).contains("names no host"));
}

#[test]
fn huge_times_are_errors_with_the_line_not_a_panic() {
    // Finding 20: u64::MAX seconds overflowed a clock later (exit 134).
    for key in ["timeout", "hook_timeout", "interval", "min_age"] {
        let e = parse_err(&format!("{BASE}{key} = 18446744073709551615\n"));
        assert!(e.starts_with(&format!("/etc/y.conf:4: {key}: ")) && e.contains("ten years"), "{e}");
        let e = parse_err(&format!("{BASE}{key} = 99999999999999999999999\n"));
        assert!(e.contains("ten years"), "{e}");
    }
    for key in ["progress", "reconcile", "backup_keep"] {
        let e = parse_err(&format!("{BASE}{key} = 18446744073709551615d\n"));
        assert!(e.starts_with(&format!("/etc/y.conf:4: {key}: ")) && e.contains("ten years"), "{e}");
    }
    assert_eq!(parse_ok(&format!("{BASE}timeout = 315360000\n")).timeout, Duration::from_secs(315_360_000));
}

#[test]
fn login_needs_only_the_app_and_masks_its_secret() {
    let env = |k: &str| (k == "YSYNC_OAUTH_URL").then(|| "http://127.0.0.1:9/".to_string());
    let l =
        parse_login(Path::new("/etc/y.conf"), "client_id = abc\nclient_secret = SECRETvalue123\ntoken_file = /var/lib/t\n", &env).unwrap();
    assert_eq!((l.app.client_id.as_str(), l.app.oauth_url.as_str()), ("abc", "http://127.0.0.1:9"));
    assert_eq!((l.token_file, l.inline_token), (Some(PathBuf::from("/var/lib/t")), None));
    assert!(!format!("{:?}", l.app.client_secret).contains("SECRET"));
    let l = parse_login(Path::new("/etc/y.conf"), "client_id = abc\nclient_secret = s\n\ntoken = t\n", &no_env).unwrap();
    assert_eq!((l.app.oauth_url.as_str(), l.inline_token.as_deref()), (DEFAULT_OAUTH_URL, Some("/etc/y.conf:4")));
    let err = |text: &str| parse_login(Path::new("/etc/y.conf"), text, &no_env).unwrap_err().to_string();
    assert!(err("client_secret = s\n").starts_with("/etc/y.conf: client_id: required but not set; register an app"));
    assert!(err("client_id = abc\n").starts_with("/etc/y.conf: client_secret: required"));
    assert!(err("client_id = a b\nclient_secret = s\n").starts_with("/etc/y.conf:1: client_id: is empty or contains white space"));
    assert!(err("client_id = a\nclient_secret = s\noauth_url = ftp://x\n").starts_with("/etc/y.conf:3: oauth_url: "));
    assert!(err("client_id = a\nclient_secret = s\ntoken_file = rel\n").starts_with("/etc/y.conf:3: token_file: "));
    assert!(err("client_id = a\nclient_secret = s\nfoo = 1\n").starts_with("/etc/y.conf:3: foo: unknown key"));
}

#[test]
fn the_example_config_is_valid_and_documents_every_key() {
    let text = include_str!("../../ysync.conf.example");
    let c = parse_ok(text);
    assert_eq!(c.remote_dir, "/Backups/photos");
    for key in KEYS {
        assert!(text.lines().any(|l| l.trim_start_matches("# ").starts_with(&format!("{key} = "))), "{key} is not in ysync.conf.example");
    }
}

#[test]
fn default_state_file_is_per_config() {
    let env = |k: &str| (k == "HOME").then(|| "/home/u".to_string());
    let a = default_state_file(Path::new("/etc/a.conf"), &env);
    let b = default_state_file(Path::new("/opt/a.conf"), &env);
    assert!(a.to_str().unwrap().starts_with("/home/u/.local/state/ysync/a-"), "{a:?}");
    assert_ne!(a, b);
    let sd = |k: &str| (k == "STATE_DIRECTORY").then(|| "/var/lib/ysync".to_string());
    assert!(default_state_file(Path::new("/etc/a.conf"), &sd).starts_with("/var/lib/ysync"));
}
