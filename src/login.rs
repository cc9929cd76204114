//! `ysync login`: a token for a box without a browser, by the OAuth device
//! flow of Yandex ID.
//!
//! 1. `POST {oauth_url}/device/code` with the app's `client_id` and this
//!    box's `device_id` / `device_name` gives a `device_code` for ysync and a
//!    `user_code` for the user, with a `verification_url`, the polling
//!    `interval` and the codes' lifetime `expires_in` (300 s in the recorded
//!    exchange; ysync uses whatever Yandex says).
//! 2. The user opens the URL on any phone or computer and types the code.
//! 3. ysync polls `POST {oauth_url}/token` (`grant_type=device_code`) every
//!    `interval` seconds. `authorization_pending` means not yet; `slow_down`
//!    asks for 5 s more between polls, for good (RFC 8628); then comes the
//!    token, or a denial, or the codes expire.
//! 4. The token goes to `token_file` (mode 0600, written atomically, owned
//!    like its folder when root runs this for a service user) with the
//!    refresh token and the expiry that came with it, so that a running
//!    ysync renews it (`token.rs`); or only the token to stdout with
//!    `--print`. Then `GET /v1/disk` checks that it works.
//!
//! Messages for the user go to stderr, so that `--print` leaves only the
//! token on stdout.

use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::config::{App, Login};
use crate::exit::Exit;
use crate::remote::Remote;
use crate::token::{self, Issued};
use crate::units::human_bytes;
use crate::yandex::{self, Yandex};

/// The slowest a server may ask ysync to poll; a sane bound on a bad answer.
const MAX_INTERVAL: u64 = 60;

#[derive(Deserialize)]
struct DeviceCode {
    device_code: String,
    user_code: String,
    #[serde(default)]
    verification_url: String,
    #[serde(default)]
    interval: Option<u64>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// Why a login ended without a token; each says what to do.
#[derive(Debug, PartialEq, Eq)]
enum Failure {
    /// The config must change (client_id / client_secret, token_file).
    Config(String),
    /// Try again (the code expired, access was denied, the network failed).
    Again(String),
}

/// Runs the whole flow; returns the exit status.
pub fn login(app: &Login, config_path: &Path, print: bool) -> Exit {
    if !print && let Some(place) = &app.inline_token {
        eprintln!(
            "ysync: {place}: token is set in the config itself, and login does not rewrite config files. \
             Replace that line by `token_file = /var/lib/ysync/token` and run `ysync login` again, \
             or run `ysync login --print` and paste the token there"
        );
        return Exit::Usage;
    }
    let Some(target) = app.token_file.as_deref().filter(|_| !print) else {
        if print {
            return match obtain(app) {
                Ok(issued) => {
                    println!("{}", issued.access_token);
                    verify(app, &issued.access_token)
                }
                Err(f) => report(f),
            };
        }
        eprintln!(
            "ysync: {}: token_file: required by login; add e.g. `token_file = /var/lib/ysync/token` \
             (login writes the token there, readable by its owner only), or use `ysync login --print`",
            config_path.display()
        );
        return Exit::Usage;
    };
    // Fail before the user types a code, not after.
    if let Err(e) = writable_folder(target) {
        eprintln!("ysync: token_file {}: {e}", target.display());
        return Exit::Usage;
    }
    let issued = match obtain(app) {
        Ok(t) => t,
        Err(f) => return report(f),
    };
    let file = issued.file(crate::units::now_secs());
    match token::write(target, &file, Some(0o600)) {
        Ok(note) => eprintln!(
            "The token is saved in {}{note}.{}",
            target.display(),
            if file.refresh_token.is_some() && file.expires.is_some() { " ysync renews it before it expires." } else { "" }
        ),
        Err(e) => {
            // The user went through the browser step: do not lose the token.
            eprintln!("ysync: writing {} failed: {e}. Here is what goes there; put it there by hand:\n{}", target.display(), file.render());
            return Exit::Failed;
        }
    }
    verify(app, &issued.access_token)
}

fn report(f: Failure) -> Exit {
    match f {
        Failure::Config(m) => {
            eprintln!("ysync: {m}");
            Exit::Usage
        }
        Failure::Again(m) => {
            eprintln!("ysync: {m}");
            Exit::Failed
        }
    }
}

/// Asks for the codes, shows them, and polls until there is an answer.
fn obtain(login: &Login) -> Result<Issued, Failure> {
    let app = &login.app;
    let agent = yandex::agent(login.timeout);
    let (device_id, device_name) = device();
    let form = [("client_id", app.client_id.as_str()), ("device_id", device_id.as_str()), ("device_name", device_name.as_str())];
    let url = format!("{}/device/code", app.oauth_url);
    let (status, body) = post(&agent, &url, &form)?;
    if status != 200 {
        return Err(refusal(app, &url, status, &body));
    }
    let code: DeviceCode = serde_json::from_str(&body)
        .map_err(|e| Failure::Again(format!("{url} answered something unexpected ({e}): {}", excerpt(&body))))?;
    // What the server sent goes to the terminal escaped: no sequence of it
    // can clear the screen or forge a line.
    let link =
        if code.verification_url.is_empty() { "https://ya.ru/device".into() } else { crate::logging::one_line(&code.verification_url) };
    // Yandex says 300 s; whatever it says, the wait ends within an hour.
    let lifetime = Duration::from_secs(code.expires_in.unwrap_or(600).clamp(1, 3600));
    eprintln!(
        "To let ysync use your Yandex Disk, open\n\n    {link}\n\non any phone or computer, sign in, and enter the code\n\n    {}\n\n\
         The code is valid for {} minutes. Waiting for your answer (Ctrl-C to give up)...",
        crate::logging::one_line(&code.user_code),
        lifetime.as_secs().div_ceil(60)
    );

    let mut interval = code.interval.unwrap_or(5).clamp(1, MAX_INTERVAL);
    let deadline = Instant::now() + lifetime;
    let url = format!("{}/token", app.oauth_url);
    loop {
        sleep(Duration::from_secs(interval));
        let form = [
            ("grant_type", "device_code"),
            ("code", code.device_code.as_str()),
            ("client_id", app.client_id.as_str()),
            ("client_secret", app.client_secret.secret()),
        ];
        let answer = match post(&agent, &url, &form) {
            Ok((_, body)) => serde_json::from_str::<Issued>(&body).ok().ok_or(body),
            // A network blip while the user types: keep waiting.
            Err(Failure::Again(e)) if Instant::now() < deadline => {
                log::warn!("{e}; still waiting");
                continue;
            }
            Err(f) => return Err(f),
        };
        match answer {
            Ok(a) if !a.access_token.is_empty() => {
                if let Some(secs) = a.expires_in {
                    eprintln!("Access granted. The token is valid for {} days.", secs / 86_400);
                }
                return Ok(a);
            }
            Ok(a) if a.error == "authorization_pending" && Instant::now() < deadline => {}
            Ok(a) if a.error == "slow_down" && Instant::now() < deadline => {
                interval = (interval + 5).min(MAX_INTERVAL);
                log::debug!("the server asked to poll less often: every {interval}s now");
            }
            // Yandex answers an expired (or unknown) code with `invalid_grant`,
            // a malformed one with `bad_verification_code` (yadisk's docs; R5
            // in real-disk-evidence.md); RFC 8628 says `expired_token`.
            Ok(a)
                if matches!(
                    a.error.as_str(),
                    "authorization_pending" | "slow_down" | "expired_token" | "invalid_grant" | "bad_verification_code"
                ) =>
            {
                return Err(Failure::Again(format!(
                    "the code {} expired before it was entered; run `ysync login` again (you have {} minutes each time)",
                    crate::logging::one_line(&code.user_code),
                    lifetime.as_secs().div_ceil(60)
                )));
            }
            Ok(a) if a.error == "access_denied" => {
                return Err(Failure::Again("access was denied on the Yandex page; run `ysync login` again and choose to allow it".into()));
            }
            Ok(a) if a.error == "invalid_client" => {
                return Err(Failure::Config(format!(
                    "Yandex OAuth refused client_id {} with its client_secret ({}); copy both again from https://oauth.yandex.ru/ \
                     (the app's ClientID and Client secret)",
                    app.client_id,
                    describe(&a.error, &a.error_description)
                )));
            }
            Ok(a) => return Err(Failure::Again(format!("Yandex OAuth refused the code: {}", describe(&a.error, &a.error_description)))),
            Err(body) => return Err(Failure::Again(format!("{url} answered something unexpected: {}", excerpt(&body)))),
        }
    }
}

fn post(agent: &ureq::Agent, url: &str, form: &[(&str, &str)]) -> Result<(u16, String), Failure> {
    let mut resp = agent.post(url).send_form(form.iter().copied()).map_err(|e| Failure::Again(format!("{url}: {e}")))?;
    let status = resp.status().as_u16();
    let body = resp.body_mut().read_to_string().map_err(|e| Failure::Again(format!("{url}: {e}")))?;
    Ok((status, body))
}

/// A refused code request, explained.
fn refusal(app: &App, url: &str, status: u16, body: &str) -> Failure {
    let a: Issued = serde_json::from_str(body).unwrap_or(Issued {
        access_token: String::new(),
        refresh_token: None,
        expires_in: None,
        error: format!("HTTP {status}"),
        error_description: excerpt(body),
    });
    let why = describe(&a.error, &a.error_description);
    if a.error == "invalid_client" || status == 401 {
        Failure::Config(format!(
            "Yandex OAuth does not know client_id {} ({why}); copy the ClientID of your app from https://oauth.yandex.ru/ \
             and check that the app has the Disk permissions (GUIDE.md, \"Getting a token\")",
            app.client_id
        ))
    } else if status == 404 {
        Failure::Config(format!("{url} does not exist (HTTP 404); is oauth_url right? The default is https://oauth.yandex.ru"))
    } else {
        Failure::Again(format!("asking {url} for a code failed: {why}"))
    }
}

/// The server's error, escaped for the terminal.
fn describe(error: &str, description: &str) -> String {
    let text = match (error.is_empty(), description.is_empty()) {
        (_, true) => error.to_string(),
        (true, false) => description.to_string(),
        (false, false) => format!("{error}: {description}"),
    };
    crate::logging::one_line(&text).into_owned()
}

fn excerpt(body: &str) -> String {
    crate::logging::one_line(&body.chars().take(200).collect::<String>()).into_owned()
}

/// A stable id for this box (Yandex lists tokens per device, and a new id
/// on every login would pile up "unknown devices"), and a readable name.
fn device() -> (String, String) {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    let machine = std::fs::read_to_string("/etc/machine-id").unwrap_or_else(|_| host.clone());
    // 6 to 50 printable ASCII characters.
    let id = format!("ysync-{}", crate::digest::short_hash(machine.trim().as_bytes()));
    let name: String = format!("ysync on {}", if host.is_empty() { "this device" } else { &host }).chars().take(100).collect();
    (id, name)
}

/// The folder for `target` exists or can be made (0700), and can be
/// written safely ([`token::writable_folder`]).
fn writable_folder(target: &Path) -> Result<(), String> {
    let dir = target.parent().unwrap_or(Path::new("/"));
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    token::writable_folder(target)
}

/// Uses the new token once, so that a token without the Disk permissions
/// is found now and not at the first sync.
fn verify(app: &Login, token: &str) -> Exit {
    match Yandex::new(&app.api_url, token, app.timeout).disk_info() {
        Ok(d) => {
            eprintln!(
                "The Disk accepts it: logged in as {}, {} free of {}. Next: `ysync check`, then `ysync once`.",
                if d.login.is_empty() { "(no login shown)".into() } else { crate::logging::one_line(&d.login) },
                human_bytes(d.free),
                human_bytes(d.total)
            );
            Exit::Ok
        }
        Err(e) if e.is_rejection() => {
            eprintln!(
                "ysync: the token was issued, but the Disk refuses it ({e}). The app needs the permissions \
                 cloud_api:disk.read, cloud_api:disk.write and cloud_api:disk.info; add them at https://oauth.yandex.ru/, \
                 then run `ysync login` again"
            );
            Exit::Rejected
        }
        Err(e) => {
            eprintln!("ysync: the token is saved, but checking it on the Disk failed ({e}); `ysync check` will tell more");
            Exit::Failed
        }
    }
}
