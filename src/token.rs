//! The token's life: what `token_file` holds, and renewing the token before
//! it expires (a Yandex token lives a year; then the backups would stop).
//!
//! `token_file` is either one line, the token (any tool can write that), or
//! what `ysync login` writes: the token on the first line, then
//!
//! ```text
//! refresh_token = <the refresh token that came with it>
//! expires = <when the token expires, Unix seconds>
//! lifetime = <the token's life as issued, seconds>
//! asked = <the last renewal that gave no new token, Unix seconds>
//! ```
//!
//! Before each cycle the file is read again (so a `ysync login` meanwhile
//! is taken up by a running daemon). When less than 30 days or half the
//! token's life are left, `POST {oauth_url}/token` with
//! `grant_type=refresh_token` (and the app's `client_id` and
//! `client_secret`) gives a new token and a new refresh token, which
//! replace the file atomically with its mode and owner. Yandex may give the
//! same token back while it has "plenty of time" left (Yandex ID's docs,
//! "Update a token"): then ysync asks again a day later (`asked`).
//! When it cannot renew, it says so once a day with the days left, and
//! `check` and `status` say it too.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::config::{App, Token};
use crate::fsutil::Dir;
use crate::units::now_secs;

/// Renew when less than this is left (or less than half the life).
const RENEW_BEFORE: u64 = 30 * 86_400;
/// After a renewal that gave no new token, or was refused: ask again then
/// (or after a hundredth of the life, for short-lived tokens).
const ASK_AGAIN: u64 = 86_400;
/// How often the "cannot renew" warning is repeated by a running daemon.
const WARN_EVERY: Duration = Duration::from_secs(86_400);
/// After a renewal that did not reach Yandex OAuth (network, a 5xx page), a
/// running daemon asks again after this long, not at every cycle.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(3600);

pub use crate::config::token_file::TokenFile;

impl TokenFile {
    /// Seconds left at `now`; `None` when the file does not say.
    fn left(&self, now: u64) -> Option<i64> {
        self.expires.map(|e| e as i64 - now as i64)
    }

    /// Is it time to renew?
    fn due(&self, now: u64) -> bool {
        let Some(left) = self.left(now) else { return false };
        let half = self.lifetime.map_or(RENEW_BEFORE, |l| l / 2);
        left < RENEW_BEFORE.min(half) as i64
    }

    /// May a renewal be asked for now (not too soon after the last one)?
    fn may_ask(&self, now: u64) -> bool {
        let gap = self.lifetime.map_or(ASK_AGAIN, |l| (l / 100).clamp(1, ASK_AGAIN));
        self.asked.is_none_or(|a| now >= a.saturating_add(gap) || a > now)
    }
}

/// "expires in 12 days (2027-12-01)", "expired 2 days ago (…)".
pub fn describe_expiry(expires: u64, now: u64) -> String {
    let date = &crate::units::utc(expires)[..10];
    let n = |count: i64, unit: &str| format!("{count} {unit}{}", if count == 1 { "" } else { "s" });
    match expires as i64 - now as i64 {
        l if l <= 0 => format!("expired {} ago ({date})", n(-l / 86_400, "day")),
        l if l < 60 => format!("expires in less than a minute ({date})"),
        l if l < 3600 => format!("expires in {} ({date})", n(l / 60, "minute")),
        l if l < 86_400 => format!("expires in {} ({date})", n(l / 3600, "hour")),
        l => format!("expires in {} ({date})", n(l / 86_400, "day")),
    }
}

/// A token that came from the OAuth server.
#[derive(Deserialize)]
pub struct Issued {
    #[serde(default)]
    pub access_token: String,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub expires_in: Option<u64>,
    #[serde(default)]
    pub error: String,
    #[serde(default)]
    pub error_description: String,
}

impl Issued {
    /// The token file for it, issued at `now`.
    pub fn file(&self, now: u64) -> TokenFile {
        TokenFile {
            token: self.access_token.clone(),
            refresh_token: self.refresh_token.clone().filter(|r| !r.is_empty() && !r.contains(char::is_whitespace)),
            expires: self.expires_in.map(|s| now + s),
            lifetime: self.expires_in,
            asked: None,
        }
    }
}

/// Writes a token file atomically, through a temporary file that never
/// has wider permissions: with `mode`, or with exactly the mode the file
/// had (0600 for a new one). When root writes, the file keeps the owner it
/// had, or gets the owner of its folder (`/var/lib/ysync`, owned by the
/// service user), or the service could not read it. Everything happens
/// relative to the folder, opened once, and nothing there is followed as
/// a link; a folder others can write is refused ([`writable_folder`]).
/// Returns a note on the owner.
pub fn write(target: &Path, t: &TokenFile, mode: Option<u32>) -> std::io::Result<String> {
    use std::io::{Error, ErrorKind};
    let bad = || Error::new(ErrorKind::InvalidInput, "token_file needs a folder and a UTF-8 name");
    let dir = Dir::open(target.parent().ok_or_else(bad)?)?;
    let name = target.file_name().and_then(|n| n.to_str()).ok_or_else(bad)?;
    if let Some(why) = crate::fsutil::untrusted(&dir.meta()?, dir.path(), true) {
        return Err(Error::other(why));
    }
    let before = match dir.stat(name) {
        Ok(m) if m.kind() == crate::fsutil::Kind::Link => {
            return Err(Error::other(format!(
                "{} is a symbolic link; ysync writes a token only into a regular file (point token_file at the file itself)",
                target.display()
            )));
        }
        Ok(m) => Some(m),
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let folder = dir.meta()?;
    let owner = before.as_ref().map_or((folder.uid, folder.gid), |m| (m.uid, m.gid));
    let mode = mode.unwrap_or(before.as_ref().map_or(0o600, |m| m.perm() & 0o777));
    let mut note = String::new();
    crate::fsutil::write_atomically(&dir, name, mode, |f| {
        use std::io::Write;
        f.write_all(t.render().as_bytes())?;
        let file = f.get_ref();
        let me = file.metadata()?;
        if (me.uid(), me.gid()) != owner && me.uid() == 0 {
            std::os::unix::fs::fchown(file, Some(owner.0), Some(owner.1))?;
            note = format!(", owned by uid {}{}", owner.0, if before.is_none() { " like its folder" } else { " as before" });
        }
        Ok(())
    })?;
    Ok(note)
}

/// Keeps the token of a running ysync fresh; one per process.
pub struct Keeper {
    file: Option<PathBuf>,
    app: Option<App>,
    timeout: Duration,
    /// The token in use.
    token: Token,
    warned: Option<Instant>,
    /// When a renewal last failed to get any answer.
    failed: Option<Instant>,
}

impl Keeper {
    pub fn new(cfg: &crate::config::Config) -> Keeper {
        Keeper {
            file: cfg.token_file.clone(),
            app: cfg.app.clone(),
            timeout: cfg.timeout,
            token: cfg.token.clone(),
            warned: None,
            failed: None,
        }
    }

    /// Before a cycle: reads the token file again and renews the token when
    /// it is due. Returns the token to use from now on when it changed.
    pub fn before_cycle(&mut self) -> Option<Token> {
        let path = self.file.clone()?;
        let mut t = match TokenFile::read(&path) {
            Ok(t) => t,
            Err(e) => {
                log::warn!("token_file {}: {e}; going on with the token read before", path.display());
                return None;
            }
        };
        let now = now_secs();
        if t.due(now) {
            match self.cannot_renew(&path, &t) {
                Some(why) => self.warn(&path, &t, now, &why),
                None if t.may_ask(now) && self.failed.is_none_or(|f| f.elapsed() >= RETRY_AFTER_FAILURE) => {
                    match self.renew(&path, &mut t, now) {
                        Ok(()) => self.failed = None,
                        Err(why) => self.warn(&path, &t, now, &why),
                    }
                }
                None => {}
            }
        }
        (t.token != self.token.secret()).then(|| {
            log::info!("token_file {}: using the token it holds now", path.display());
            self.token = Token::new(t.token.clone());
            self.token.clone()
        })
    }

    /// Why the token cannot be renewed, or `None` when it can be tried.
    fn cannot_renew(&self, path: &Path, t: &TokenFile) -> Option<String> {
        if t.refresh_token.is_none() {
            return Some("the file holds no refresh token (it was not written by `ysync login`)".into());
        }
        if self.app.is_none() {
            return Some("client_id and client_secret are not in the config".into());
        }
        if let Err(why) = writable_folder(path) {
            return Some(why);
        }
        let me = crate::fsutil::sys::euid();
        match std::fs::symlink_metadata(path) {
            Ok(m) if me != 0 && me != m.uid() => Some(format!("it belongs to uid {}, and ysync runs as uid {me}", m.uid())),
            _ => None,
        }
    }

    /// Asks for a new token and writes it. `Err`: why it did not work.
    fn renew(&mut self, path: &Path, t: &mut TokenFile, now: u64) -> Result<(), String> {
        let app = self.app.as_ref().expect("checked by cannot_renew");
        let refresh = t.refresh_token.clone().expect("checked by cannot_renew");
        let url = format!("{}/token", app.oauth_url);
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
            ("client_id", app.client_id.as_str()),
            ("client_secret", app.client_secret.secret()),
        ];
        let agent = crate::yandex::agent(self.timeout);
        let answer = agent.post(&url).send_form(form).map_err(|e| format!("{url}: {e}")).and_then(|mut r| {
            let b = r.body_mut().read_to_string().map_err(|e| format!("{url}: {e}"))?;
            serde_json::from_str::<Issued>(&b).map_err(|e| format!("{url} answered something unexpected ({e})"))
        });
        let issued = answer.inspect_err(|_| self.failed = Some(Instant::now()))?;
        if issued.access_token.is_empty() {
            // Refused (a revoked refresh token: `invalid_grant`): not before tomorrow.
            t.asked = Some(now);
            let _ = write(path, t, None);
            let why =
                if issued.error_description.is_empty() { issued.error } else { format!("{}: {}", issued.error, issued.error_description) };
            return Err(format!("Yandex OAuth refused to renew it ({why})"));
        }
        let mut fresh = issued.file(now);
        if fresh.refresh_token.is_none() {
            fresh.refresh_token = Some(refresh);
        }
        if fresh.token == t.token {
            // "The main token may not change when you update it" while
            // plenty of time is left: keep what the file says, ask tomorrow.
            log::info!("Yandex kept the token as it is ({}); asking again later", describe_expiry(t.expires.unwrap_or(now), now));
            fresh.expires = fresh.expires.or(t.expires).min(t.expires.or(fresh.expires));
            fresh.lifetime = t.lifetime.or(fresh.lifetime);
            fresh.asked = Some(now);
        }
        write(path, &fresh, None)
            .map_err(|e| format!("the new token could not be written to {} ({e}); run `ysync login`", path.display()))?;
        if fresh.token != t.token {
            log::info!("renewed the token in {} ({})", path.display(), describe_expiry(fresh.expires.unwrap_or(now), now));
        }
        *t = fresh;
        Ok(())
    }

    fn warn(&mut self, path: &Path, t: &TokenFile, now: u64, why: &str) {
        if self.warned.is_some_and(|w| w.elapsed() < WARN_EVERY) {
            return;
        }
        self.warned = Some(Instant::now());
        log::warn!(
            "the token in {} {} and ysync cannot renew it: {why}. Run `ysync login` before then, or the backups stop",
            path.display(),
            describe_expiry(t.expires.unwrap_or(now), now)
        );
    }

    /// For `check` and `status`: when the token expires, and whether ysync
    /// renews it; `false` when it needs the user (due or expired, and not
    /// renewable). `None` for a token without a file.
    pub fn summary(&self) -> Option<(bool, String)> {
        let path = self.file.as_ref()?;
        let t = TokenFile::read(path).ok()?;
        let now = now_secs();
        Some(match t.expires {
            None => (true, "expiry unknown (a plain token file; `ysync login` writes one that ysync renews)".into()),
            Some(e) => match self.cannot_renew(path, &t) {
                None => {
                    (true, format!("{}; renewed automatically in its last {} days", describe_expiry(e, now), renew_window(&t) / 86_400))
                }
                Some(why) => {
                    (!t.due(now), format!("{}; not renewed automatically: {why}; run `ysync login` before then", describe_expiry(e, now)))
                }
            },
        })
    }

    /// For `status --json`: when the token expires (when known) and
    /// whether ysync renews it. `None` for a token without a file.
    pub fn expiry(&self) -> Option<(Option<u64>, bool)> {
        let path = self.file.as_ref()?;
        let t = TokenFile::read(path).ok()?;
        Some((t.expires, t.expires.is_some() && self.cannot_renew(path, &t).is_none()))
    }

    /// Has the token's recorded life ended (for the "token rejected" hint)?
    pub fn expired(&self) -> Option<String> {
        let path = self.file.as_ref()?;
        let t = TokenFile::read(path).ok()?;
        let now = now_secs();
        let expires = t.expires.filter(|e| *e <= now)?;
        Some(format!("the token in {} {}", path.display(), describe_expiry(expires, now)))
    }
}

/// Whether the folder of the token file `path` can be written, and safely
/// (nothing is created to find out): `Err` says why not.
pub fn writable_folder(path: &Path) -> Result<(), String> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    let meta = Dir::open(dir).and_then(|d| d.meta()).map_err(|e| format!("its folder {} cannot be opened ({e})", dir.display()))?;
    if let Some(why) = crate::fsutil::untrusted(&meta, dir, true) {
        return Err(why);
    }
    crate::fsutil::may_write_in(dir).map_err(|e| format!("its folder {} cannot be written ({e})", dir.display()))
}

fn renew_window(t: &TokenFile) -> u64 {
    RENEW_BEFORE.min(t.lifetime.map_or(RENEW_BEFORE, |l| l / 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_one_line_file_is_a_token() {
        let t = TokenFile::parse("AQAAAAtoken\n").unwrap();
        assert_eq!((t.token.as_str(), t.refresh_token.as_deref(), t.expires), ("AQAAAAtoken", None, None));
        assert_eq!(t.render(), "AQAAAAtoken\n");
        assert!(!t.due(u64::MAX / 2), "a plain token is never renewed");
    }

    #[test]
    fn the_file_login_writes_round_trips() {
        let t = TokenFile::parse("tok\nrefresh_token = 1:abc\nexpires = 2000\nlifetime = 1000\n").unwrap();
        assert_eq!(t.refresh_token.as_deref(), Some("1:abc"));
        assert_eq!((t.expires, t.lifetime, t.asked), (Some(2000), Some(1000), None));
        assert_eq!(TokenFile::parse(&t.render()).unwrap(), t);
    }

    #[test]
    fn bad_lines_are_named() {
        assert!(TokenFile::parse("").unwrap_err().contains("empty"));
        assert!(TokenFile::parse("a b\n").unwrap_err().contains("white space"));
        assert_eq!(
            TokenFile::parse("tok\nexpires = soon\n").unwrap_err(),
            "line 2: expires: `soon` is not a number of seconds; the first line is the token, `ysync login` writes the others"
        );
        assert!(TokenFile::parse("tok\ncolour = red\n").unwrap_err().starts_with("line 2: unknown key `colour`"));
        assert!(TokenFile::parse("tok\njunk\n").unwrap_err().starts_with("line 2: not `key = value`"));
    }

    #[test]
    fn renewal_is_due_within_30_days_or_half_the_life() {
        let year = 365 * 86_400;
        let t = TokenFile { expires: Some(year), lifetime: Some(year), ..TokenFile::plain("t") };
        assert!(!t.due(0));
        assert!(!t.due(year - 31 * 86_400));
        assert!(t.due(year - 29 * 86_400));
        assert!(t.due(year + 5), "expired: still worth a try");
        let short = TokenFile { expires: Some(100), lifetime: Some(100), ..TokenFile::plain("t") };
        assert!(!short.due(40));
        assert!(short.due(51));
        // An unknown life: 30 days.
        let t = TokenFile { expires: Some(year), ..TokenFile::plain("t") };
        assert!(t.due(year - 29 * 86_400) && !t.due(year - 31 * 86_400));
    }

    #[test]
    fn after_a_renewal_without_a_new_token_ask_again_a_day_later() {
        let year = 365 * 86_400;
        let t = TokenFile { expires: Some(year), lifetime: Some(year), asked: Some(1000), ..TokenFile::plain("t") };
        assert!(!t.may_ask(1000 + 3600));
        assert!(t.may_ask(1000 + 86_400));
        assert!(t.may_ask(10), "a clock set back does not block renewal");
        let short = TokenFile { lifetime: Some(100), asked: Some(1000), ..TokenFile::plain("t") };
        assert!(short.may_ask(1001));
    }

    #[test]
    fn expiry_reads_as_days_and_a_date() {
        assert_eq!(describe_expiry(86_400 * 40, 0), "expires in 40 days (1970-02-10)");
        assert_eq!(describe_expiry(7200, 0), "expires in 2 hours (1970-01-01)");
        assert_eq!(describe_expiry(61, 0), "expires in 1 minute (1970-01-01)");
        assert_eq!(describe_expiry(5, 0), "expires in less than a minute (1970-01-01)");
        assert_eq!(describe_expiry(0, 86_400 * 3), "expired 3 days ago (1970-01-01)");
    }
}
