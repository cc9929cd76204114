//! The config file (`key = value` lines) and the environment overrides.
//!
//! Every error names the file, the line and the key, so a user can fix it
//! without reading the source. Validation happens here, once; the rest of
//! ysync trusts a `Config`.

use std::fmt;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use crate::glob::Glob;

pub const DEFAULT_CONFIG: &str = "/etc/ysync.conf";
pub const DEFAULT_API_URL: &str = "https://cloud-api.yandex.net/v1/disk";
pub const DEFAULT_OAUTH_URL: &str = "https://oauth.yandex.ru";

/// What to do on the Disk when a file or folder disappears locally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteMode {
    Trash,
    Permanent,
    Keep,
}

/// The `max_delete` safety limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxDelete {
    Count(u64),
    Percent(u64),
}

impl MaxDelete {
    /// The number of deletions allowed when `tracked` files are known.
    pub fn limit(self, tracked: u64) -> u64 {
        match self {
            MaxDelete::Count(n) => n,
            MaxDelete::Percent(p) => tracked * p / 100,
        }
    }
}

impl fmt::Display for MaxDelete {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            MaxDelete::Count(n) => write!(f, "{n}"),
            MaxDelete::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// The OAuth token. Its `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    pub fn new(secret: String) -> Token {
        Token(secret)
    }

    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let n = self.0.chars().count();
        if n > 8 {
            let tail: String = self.0.chars().skip(n - 4).collect();
            write!(f, "\"***{tail}\"")
        } else {
            write!(f, "\"***\"")
        }
    }
}

/// The app registered at Yandex OAuth: for `ysync login`, and for
/// renewing the token before it expires.
#[derive(Debug, Clone)]
pub struct App {
    pub client_id: String,
    pub client_secret: Token,
    /// Base of Yandex OAuth, without a trailing slash.
    pub oauth_url: String,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub token: Token,
    /// Where the token came from, when from a file (`token.rs` renews it).
    pub token_file: Option<PathBuf>,
    /// `client_id` and `client_secret`, when both are set.
    pub app: Option<App>,
    pub local_dir: PathBuf,
    /// Normalised remote folder: `/` or `/a/b` (no `disk:` prefix, no trailing slash).
    pub remote_dir: String,
    pub interval: Duration,
    pub state_file: PathBuf,
    pub delete: DeleteMode,
    pub exclude: Vec<Glob>,
    pub throttle_workaround: bool,
    /// Extensions throttled besides `media::THROTTLED` (lower case, no dot).
    pub throttled_ext: Vec<String>,
    pub max_delete: MaxDelete,
    pub min_age: Duration,
    /// Upload cap in bytes per second; 0 means none.
    pub bwlimit: u64,
    /// Base of the REST API without a trailing slash.
    pub api_url: String,
    pub timeout: Duration,
    /// Folders on another filesystem than `local_dir` are skipped (kept).
    pub one_file_system: bool,
    /// How often a full listing is compared with the state; zero: never.
    pub reconcile: Duration,
}

/// A configuration error: where it is and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// `file:line` or `file` or an environment variable's name.
    pub place: String,
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.place, self.message)
        } else {
            write!(f, "{}: {}: {}", self.place, self.key, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Where a value came from, for error messages.
#[derive(Clone)]
struct Origin {
    place: String,
    key: String,
}

impl Origin {
    fn err(&self, message: impl Into<String>) -> ConfigError {
        ConfigError { place: self.place.clone(), key: self.key.clone(), message: message.into() }
    }
}

const KEYS: &[&str] = &[
    "token",
    "token_file",
    "local_dir",
    "remote_dir",
    "interval",
    "state_file",
    "delete",
    "exclude",
    "throttle_workaround",
    "throttled_ext",
    "max_delete",
    "min_age",
    "bwlimit",
    "api_url",
    "timeout",
    "one_file_system",
    "reconcile",
    "client_id",
    "client_secret",
    "oauth_url",
];
const LIST_KEYS: &[&str] = &["exclude", "throttled_ext"];

/// The config file to use when `-c` is not given.
pub fn default_path(env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    match env("YSYNC_CONFIG") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(DEFAULT_CONFIG),
    }
}

fn read_config(path: &Path) -> Result<String, ConfigError> {
    fs::read_to_string(path).map_err(|e| ConfigError {
        place: path.display().to_string(),
        key: String::new(),
        message: format!("cannot read the config file: {e} (pass another one with -c FILE, or copy ysync.conf.example)"),
    })
}

/// Reads and validates `path`; `env` looks up environment variables.
pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
    let text = read_config(path)?;
    let config = parse(path, &text, env)?;
    warn_if_token_readable(path, &text);
    Ok(config)
}

/// One `key = value` line of the file.
struct Line {
    number: usize,
    key: String,
    value: String,
}

fn split_lines(file: &str, text: &str) -> Result<Vec<Line>, ConfigError> {
    let mut lines = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let number = i + 1;
        let line = strip_comment(raw).trim();
        if line.is_empty() {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(ConfigError {
                place: format!("{file}:{number}"),
                key: String::new(),
                message: format!("expected `key = value`, found `{line}`"),
            });
        };
        let key = key.trim().to_string();
        let value = unquote(value.trim()).to_string();
        lines.push(Line { number, key, value });
    }
    Ok(lines)
}

/// `#` starts a comment at the start of a line or after white space, so
/// values such as `#tag.md` or `a#b` keep their `#`.
fn strip_comment(line: &str) -> &str {
    let mut prev_space = true;
    for (i, c) in line.char_indices() {
        if c == '#' && prev_space {
            return &line[..i];
        }
        prev_space = c.is_whitespace();
    }
    line
}

fn unquote(v: &str) -> &str {
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return &v[1..v.len() - 1];
        }
    }
    v
}

/// What `ysync login` needs: the registered app, and where the token goes.
/// Nothing else in the file has to be set yet.
#[derive(Debug, Clone)]
pub struct Login {
    pub app: App,
    /// Where the token is written; `None` when the file has none.
    pub token_file: Option<PathBuf>,
    /// The line of an inline `token = …`, which login cannot rewrite.
    pub inline_token: Option<String>,
    pub api_url: String,
    pub timeout: Duration,
}

/// Reads the settings `ysync login` needs from `path`.
pub fn load_login(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Login, ConfigError> {
    let text = read_config(path)?;
    let login = parse_login(path, &text, env)?;
    warn_if_token_readable(path, &text);
    Ok(login)
}

const REGISTER: &str = "register an app at https://oauth.yandex.ru/client/new (see the README, \"Getting a token\")";

pub fn parse_login(path: &Path, text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Login, ConfigError> {
    let s = Settings::read(path, text, env)?;
    let app = parse_app(&s)?.ok_or_else(|| s.missing("client_id", &format!("{REGISTER} and copy its ClientID here")))?;
    let api_url = match s.get("api_url") {
        None => DEFAULT_API_URL.to_string(),
        Some((o, v)) => parse_api_url(&o, &v)?,
    };
    let token_file = match s.get("token_file") {
        Some((o, v)) => Some(absolute_path(&o, &v)?),
        None => None,
    };
    let inline_token = s.get("token").map(|(o, _)| o.place);
    let timeout = match s.get("timeout") {
        Some((o, v)) => Duration::from_secs(number(&o, &v, 1)?),
        None => Duration::from_secs(30),
    };
    Ok(Login { app, token_file, inline_token, api_url, timeout })
}

/// `client_id`, `client_secret` and `oauth_url`; `None` when neither of
/// the first two is set, an error when only one is.
fn parse_app(s: &Settings) -> Result<Option<App>, ConfigError> {
    let (id, secret) = match (s.get("client_id"), s.get("client_secret")) {
        (None, None) => return Ok(None),
        (Some(_), None) => {
            return Err(s.missing("client_secret", &format!("{REGISTER} and copy its Client secret here (it goes with client_id)")));
        }
        (None, Some(_)) => {
            return Err(s.missing("client_id", &format!("{REGISTER} and copy its ClientID here (it goes with client_secret)")));
        }
        (Some(id), Some(secret)) => (id, secret),
    };
    let (io, client_id) = id;
    if client_id.is_empty() || client_id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(io.err("is empty or contains white space; copy the ClientID of your app again"));
    }
    let (so, secret) = secret;
    let client_secret = token_value(&so, &secret).map_err(|_| so.err("is empty or contains white space; copy the Client secret again"))?;
    let oauth_url = match s.get("oauth_url") {
        None => DEFAULT_OAUTH_URL.to_string(),
        Some((o, v)) => parse_api_url(&o, &v)?,
    };
    Ok(Some(App { client_id, client_secret, oauth_url }))
}

/// The file's lines checked and gathered, with the environment's overrides.
struct Settings {
    file: String,
    /// key -> (origin, value) for keys given once.
    single: Vec<(Origin, String)>,
    excludes: Vec<(Origin, String)>,
    throttled_ext: Vec<String>,
}

impl Settings {
    fn read(path: &Path, text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Settings, ConfigError> {
        let file = path.display().to_string();
        let lines = split_lines(&file, text)?;

        // key -> (origin, value); list keys keep every value.
        let mut single: Vec<(Origin, String)> = Vec::new();
        let mut excludes: Vec<(Origin, String)> = Vec::new();
        let mut throttled_ext: Vec<String> = Vec::new();
        for l in &lines {
            let origin = Origin { place: format!("{file}:{}", l.number), key: l.key.clone() };
            if !KEYS.contains(&l.key.as_str()) {
                return Err(origin.err(format!("unknown key (known keys: {})", KEYS.join(", "))));
            }
            if l.key == "throttled_ext" {
                let ext = l.value.trim_start_matches('.').to_ascii_lowercase();
                if ext.is_empty() || ext.contains(['/', '.', ' ']) {
                    return Err(origin.err(format!("`{}` is not a file extension such as mp3", l.value)));
                }
                throttled_ext.push(ext);
                continue;
            }
            if LIST_KEYS.contains(&l.key.as_str()) {
                excludes.push((origin, l.value.clone()));
                continue;
            }
            if let Some((first, _)) = single.iter().find(|(o, _)| o.key == l.key) {
                return Err(origin.err(format!("given twice (first at {}); keep one", first.place)));
            }
            single.push((origin, l.value.clone()));
        }
        for (var, key) in [("YSYNC_TOKEN", "token"), ("YSYNC_API_URL", "api_url"), ("YSYNC_OAUTH_URL", "oauth_url")] {
            if let Some(v) = env(var).filter(|v| !v.is_empty()) {
                single.retain(|(o, _)| o.key != key);
                single.push((Origin { place: format!("environment variable {var}"), key: key.into() }, v));
            }
        }
        Ok(Settings { file, single, excludes, throttled_ext })
    }

    fn get(&self, key: &str) -> Option<(Origin, String)> {
        self.single.iter().find(|(o, _)| o.key == key).cloned()
    }

    fn missing(&self, key: &str, hint: &str) -> ConfigError {
        ConfigError { place: self.file.clone(), key: key.into(), message: format!("required but not set; {hint}") }
    }
}

/// Parses config text; separate from `load` so tests need no files.
pub fn parse(path: &Path, text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
    let settings = Settings::read(path, text, env)?;
    let get = |key: &str| settings.get(key);
    let missing = |key: &str, hint: &str| settings.missing(key, hint);
    let file = settings.file.clone();

    let (token, token_file) = match (get("token"), get("token_file")) {
        (Some((o, _)), Some((o2, _))) if !o.place.starts_with("environment") => {
            return Err(o2.err(format!("both `token` ({}) and `token_file` are set; keep one", o.place)));
        }
        (Some((o, v)), _) => (token_value(&o, v.trim())?, None),
        (None, Some((o, v))) => (read_token_file(&o, &v)?, Some(PathBuf::from(v))),
        (None, None) => {
            return Err(missing("token", "set `token = …`, `token_file = /path`, or the environment variable YSYNC_TOKEN"));
        }
    };

    let (lo, lv) = get("local_dir").ok_or_else(|| missing("local_dir", "set it to the absolute path of the folder to mirror"))?;
    let local_dir = absolute_path(&lo, &lv)?;

    let (ro, rv) = get("remote_dir").ok_or_else(|| missing("remote_dir", "set it to the target folder, e.g. `disk:/Backups/photos`"))?;
    let remote_dir = normalize_remote_dir(&ro, &rv)?;

    let interval = match get("interval") {
        Some((o, v)) => Duration::from_secs(number(&o, &v, 1)?),
        None => Duration::from_secs(60),
    };
    let timeout = match get("timeout") {
        Some((o, v)) => Duration::from_secs(number(&o, &v, 1)?),
        None => Duration::from_secs(30),
    };
    let min_age = match get("min_age") {
        Some((o, v)) => Duration::from_secs(number(&o, &v, 0)?),
        None => Duration::ZERO,
    };
    let delete = match get("delete") {
        None => DeleteMode::Trash,
        Some((o, v)) => match v.to_ascii_lowercase().as_str() {
            "trash" => DeleteMode::Trash,
            "permanent" => DeleteMode::Permanent,
            "keep" => DeleteMode::Keep,
            _ => return Err(o.err(format!("`{v}` is not one of trash, permanent, keep"))),
        },
    };
    let throttle_workaround = match get("throttle_workaround") {
        None => true,
        Some((o, v)) => boolean(&o, &v)?,
    };
    let one_file_system = match get("one_file_system") {
        None => false,
        Some((o, v)) => boolean(&o, &v)?,
    };
    let reconcile = match get("reconcile") {
        None => Duration::from_secs(7 * 86400),
        Some((o, v)) => period(&o, &v)?,
    };
    let max_delete = match get("max_delete") {
        None => MaxDelete::Percent(50),
        Some((o, v)) => parse_max_delete(&o, &v)?,
    };
    let bwlimit = match get("bwlimit") {
        None => 0,
        Some((o, v)) => parse_bytes(&o, &v)?,
    };
    let api_url = match get("api_url") {
        None => DEFAULT_API_URL.to_string(),
        Some((o, v)) => parse_api_url(&o, &v)?,
    };
    let state_file = match get("state_file") {
        Some((o, v)) => absolute_path(&o, &v)?,
        None => default_state_file(path, env),
    };
    if state_file.starts_with(&local_dir) || same_dir_after_resolving(&state_file, &local_dir) {
        let place = get("state_file").map(|(o, _)| o).unwrap_or(Origin { place: file.clone(), key: "state_file".into() });
        return Err(place.err(format!(
            "{} is inside local_dir {}; it would be mirrored too. Put it elsewhere, e.g. /var/lib/ysync/",
            state_file.display(),
            local_dir.display()
        )));
    }
    let mut exclude = Vec::new();
    for (o, v) in &settings.excludes {
        exclude.push(Glob::new(v).map_err(|e| o.err(e))?);
    }

    let app = parse_app(&settings)?;

    Ok(Config {
        token,
        token_file,
        app,
        local_dir,
        remote_dir,
        interval,
        state_file,
        delete,
        exclude,
        throttle_workaround,
        throttled_ext: settings.throttled_ext.clone(),
        max_delete,
        min_age,
        bwlimit,
        api_url,
        timeout,
        one_file_system,
        reconcile,
    })
}

fn token_value(o: &Origin, v: &str) -> Result<Token, ConfigError> {
    if v.is_empty() {
        return Err(o.err("the token is empty; see the README on how to get one"));
    }
    if v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(o.err("the token contains white space; paste it again without spaces"));
    }
    Ok(Token(v.to_string()))
}

fn read_token_file(o: &Origin, v: &str) -> Result<Token, ConfigError> {
    let p = Path::new(v);
    if !p.is_absolute() {
        return Err(o.err(format!("`{v}` is not an absolute path")));
    }
    let text = fs::read_to_string(p).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => o.err(format!("{v} does not exist yet; run `ysync login` to create it, or put the token there")),
        _ => o.err(format!("cannot read {v}: {e}")),
    })?;
    if let Ok(meta) = fs::metadata(p)
        && meta.permissions().mode() & 0o077 != 0
    {
        log::warn!("{v} holds the token and can be read by other users; run: chmod 600 {v}");
    }
    let file = crate::token::TokenFile::parse(&text).map_err(|e| Origin { place: v.to_string(), key: String::new() }.err(e))?;
    Ok(Token(file.token))
}

fn warn_if_token_readable(path: &Path, text: &str) {
    let holds_token = text.lines().any(|l| {
        let l = strip_comment(l).trim_start();
        (l.starts_with("token") && !l.starts_with("token_file")) || l.starts_with("client_secret")
    });
    if let Ok(meta) = fs::metadata(path)
        && holds_token
        && meta.permissions().mode() & 0o077 != 0
    {
        log::warn!(
            "{} holds a secret (token or client_secret) and can be read by other users; run: chmod 600 {}",
            path.display(),
            path.display()
        );
    }
}

fn absolute_path(o: &Origin, v: &str) -> Result<PathBuf, ConfigError> {
    let p = PathBuf::from(v);
    if v.is_empty() {
        return Err(o.err("is empty; give an absolute path"));
    }
    if !p.is_absolute() {
        return Err(o.err(format!("`{v}` is not an absolute path; write it starting with /")));
    }
    // Drop `.`, trailing slashes; refuse `..` so prefix checks stay honest.
    let mut clean = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::Normal(n) => clean.push(n),
            Component::ParentDir => return Err(o.err(format!("`{v}` contains `..`; write the path without it"))),
            _ => {}
        }
    }
    Ok(clean)
}

fn same_dir_after_resolving(state_file: &Path, local_dir: &Path) -> bool {
    let (Some(parent), Ok(local)) = (state_file.parent(), fs::canonicalize(local_dir)) else {
        return false;
    };
    fs::canonicalize(parent).map(|p| p.starts_with(local)).unwrap_or(false)
}

/// `disk:/a/b/`, `/a/b` and `a/b` all become `/a/b`; the root is `/`.
fn normalize_remote_dir(o: &Origin, v: &str) -> Result<String, ConfigError> {
    let rest = v.strip_prefix("disk:").unwrap_or(v);
    if let Some((scheme, _)) = rest.split_once(':')
        && !scheme.contains('/')
    {
        return Err(o.err(format!("`{v}`: only `disk:/…` or `/…` folders are supported")));
    }
    let mut parts = Vec::new();
    for part in rest.split('/') {
        match part {
            "" => {}
            "." | ".." => return Err(o.err(format!("`{v}` contains `{part}`; write the folder without it"))),
            p if p.chars().any(|c| c.is_control()) => return Err(o.err("contains a control character")),
            p if p.chars().count() > 255 => return Err(o.err("a folder name is longer than 255 characters")),
            p => parts.push(p),
        }
    }
    Ok(format!("/{}", parts.join("/")))
}

fn number(o: &Origin, v: &str, min: u64) -> Result<u64, ConfigError> {
    match v.parse::<u64>() {
        Ok(n) if n >= min => Ok(n),
        Ok(_) => Err(o.err(format!("must be at least {min}"))),
        Err(_) => Err(o.err(format!("`{v}` is not a whole number of seconds"))),
    }
}

/// `7d`, `12h`, `30m`, `90s` or plain seconds; `0` is off.
fn period(o: &Origin, v: &str) -> Result<Duration, ConfigError> {
    let (digits, unit) = v.split_at(v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len()));
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => 0,
    };
    match digits.parse::<u64>() {
        Ok(n) if scale > 0 => Ok(Duration::from_secs(n.saturating_mul(scale))),
        _ => Err(o.err(format!("`{v}` is not a period such as 7d, 12h, 30m or 0 (off)"))),
    }
}

fn boolean(o: &Origin, v: &str) -> Result<bool, ConfigError> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "true" | "on" | "1" => Ok(true),
        "no" | "false" | "off" | "0" => Ok(false),
        _ => Err(o.err(format!("`{v}` is not yes or no"))),
    }
}

fn parse_max_delete(o: &Origin, v: &str) -> Result<MaxDelete, ConfigError> {
    let bad = || o.err(format!("`{v}` is neither a count (e.g. 100) nor a percentage (e.g. 50%)"));
    if let Some(p) = v.strip_suffix('%') {
        let p: u64 = p.trim().parse().map_err(|_| bad())?;
        if p > 100 {
            return Err(o.err("a percentage above 100% makes no sense; use 100% to allow any deletion"));
        }
        Ok(MaxDelete::Percent(p))
    } else {
        Ok(MaxDelete::Count(v.parse().map_err(|_| bad())?))
    }
}

fn parse_bytes(o: &Origin, v: &str) -> Result<u64, ConfigError> {
    crate::units::parse_size(v).ok_or_else(|| o.err(format!("`{v}` is not a byte rate such as 500K, 2M or 0")))
}

fn parse_api_url(o: &Origin, v: &str) -> Result<String, ConfigError> {
    let v = v.trim_end_matches('/');
    if !(v.starts_with("https://") || v.starts_with("http://")) {
        return Err(o.err(format!("`{v}` must start with https://")));
    }
    Ok(v.to_string())
}

/// `$STATE_DIRECTORY` (systemd), else `$XDG_STATE_HOME/ysync`, else
/// `~/.local/state/ysync`, else `/var/lib/ysync`; the file name comes from the
/// config file so that two configs never share a state.
pub fn default_state_file(config: &Path, env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    let dir = if let Some(d) = env("STATE_DIRECTORY").filter(|d| d.starts_with('/')) {
        // systemd may pass several, separated by colons.
        PathBuf::from(d.split(':').next().unwrap_or(&d))
    } else if let Some(d) = env("XDG_STATE_HOME").filter(|d| d.starts_with('/')) {
        Path::new(&d).join("ysync")
    } else if let Some(h) = env("HOME").filter(|h| h.starts_with('/') && h != "/") {
        Path::new(&h).join(".local/state/ysync")
    } else {
        PathBuf::from("/var/lib/ysync")
    };
    let stem = config.file_stem().and_then(|s| s.to_str()).unwrap_or("ysync");
    let full = fs::canonicalize(config).unwrap_or_else(|_| config.to_path_buf());
    let tag = crate::digest::short_hash(full.to_string_lossy().as_bytes());
    dir.join(format!("{stem}-{tag}.state.json"))
}

#[cfg(test)]
mod tests {
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
            "/etc/y.conf:4: colour: unknown key (known keys: token, token_file, local_dir, remote_dir, interval, state_file, delete, exclude, throttle_workaround, throttled_ext, max_delete, min_age, bwlimit, api_url, timeout, one_file_system, reconcile, client_id, client_secret, oauth_url)"
        );
        assert_eq!(parse_err(&format!("{BASE}interval = 5m\n")), "/etc/y.conf:4: interval: `5m` is not a whole number of seconds");
        assert_eq!(parse_err(&format!("{BASE}interval = 0\n")), "/etc/y.conf:4: interval: must be at least 1");
        assert_eq!(parse_err(&format!("{BASE}delete = maybe\n")), "/etc/y.conf:4: delete: `maybe` is not one of trash, permanent, keep");
        assert!(parse_err(&format!("{BASE}max_delete = lots\n")).starts_with("/etc/y.conf:4: max_delete: "));
        assert!(parse_err(&format!("{BASE}bwlimit = fast\n")).starts_with("/etc/y.conf:4: bwlimit: "));
        assert!(parse_err(&format!("{BASE}api_url = ftp://x\n")).starts_with("/etc/y.conf:4: api_url: "));
        assert!(parse_err(&format!("{BASE}throttle_workaround = perhaps\n")).starts_with("/etc/y.conf:4: throttle_workaround: "));
        assert_eq!(parse_err(&format!("{BASE}no equals sign\n")), "/etc/y.conf:4: expected `key = value`, found `no equals sign`");
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
        assert!(!dbg.contains("secretTOKEN"), "{dbg}");
        assert!(dbg.contains("***alue"));
    }

    #[test]
    fn login_needs_only_the_app_and_masks_its_secret() {
        let env = |k: &str| (k == "YSYNC_OAUTH_URL").then(|| "http://127.0.0.1:9/".to_string());
        let l = parse_login(Path::new("/etc/y.conf"), "client_id = abc\nclient_secret = SECRETvalue123\ntoken_file = /var/lib/t\n", &env)
            .unwrap();
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
        let text = include_str!("../ysync.conf.example");
        let c = parse_ok(text);
        assert_eq!(c.remote_dir, "/Backups/photos");
        for key in KEYS {
            assert!(
                text.lines().any(|l| l.trim_start_matches("# ").starts_with(&format!("{key} = "))),
                "{key} is not in ysync.conf.example"
            );
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
}
