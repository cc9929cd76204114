//! The config file (`key = value` lines) and the environment overrides.
//!
//! Every error names the file, the line and the key, so a user can fix it
//! without reading the source. Validation happens here, once; the rest of
//! ysync trusts a `Config`.

mod file;
#[cfg(test)]
mod tests;
pub mod token_file;
mod values;
pub mod words;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::glob::Glob;
use file::{Origin, Settings, read_config};
use values::*;
pub use values::{default_state_file, is_loopback_url};

pub const DEFAULT_CONFIG: &str = "/etc/ysync.conf";
pub const DEFAULT_API_URL: &str = "https://cloud-api.yandex.net/v1/disk";
pub const DEFAULT_OAUTH_URL: &str = "https://oauth.yandex.ru";
/// Seconds for a connection, a read or a write (`timeout`).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

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

/// The OAuth token (or the client secret). Its `Debug` never shows any of
/// it, not even a tail: only how long it is.
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
        write!(f, "*** ({} characters)", self.0.chars().count())
    }
}

/// A hook's command line: the program (found on PATH when the config was
/// read) and its arguments. Its `Debug` shows the program only: arguments
/// carry health-check UUIDs and bot tokens.
#[derive(Clone, PartialEq, Eq)]
pub struct Command(pub Vec<String>);

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self.0.split_first() {
            Some((program, [])) => write!(f, "{program}"),
            Some((program, args)) => write!(f, "{program} (and {} arguments, not shown)", args.len()),
            None => write!(f, "(none)"),
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

/// What the walk leaves out: paths matching `globs` (`exclude`), and
/// folders holding a file named one of `markers` (`exclude_if_present`).
#[derive(Clone, Copy)]
pub struct Exclude<'a> {
    pub globs: &'a [Glob],
    pub markers: &'a [String],
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
    /// Commands run after a cycle that ended with status 0, or with any
    /// other: the program (found on PATH when the config was read) and
    /// its arguments.
    pub on_success: Option<Command>,
    pub on_failure: Option<Command>,
    /// How long a hook may run before it is killed.
    pub hook_timeout: Duration,
    /// How often a long cycle says how far it is; zero: never.
    pub progress: Duration,
    /// Where replaced and deleted files are kept (`/a/b`, outside
    /// `remote_dir`), in a folder per day; `None`: not kept.
    pub backup_dir: Option<String>,
    /// How long the dated folders of `backup_dir` are kept; zero: for ever.
    pub backup_keep: Duration,
    /// A cycle that would upload new content over more tracked files than
    /// this stops first (`--allow-mass-change` lets one cycle through).
    pub max_change: MaxDelete,
    pub allow_mass_change: bool,
    /// A folder holding a file of one of these names is skipped whole.
    pub exclude_if_present: Vec<String>,
    /// Why the config file itself should not be obeyed by a process that
    /// writes where it says or runs its hooks: someone other than this
    /// process's user and root can change it ([`crate::fsutil::untrusted`]).
    /// `main` refuses such a file for `run`, `once`, `restore` and `login`.
    pub untrusted: Option<String>,
}

impl Config {
    /// What the walk leaves out.
    pub fn excludes(&self) -> Exclude<'_> {
        Exclude { globs: &self.exclude, markers: &self.exclude_if_present }
    }
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

/// The config file to use when `-c` is not given.
pub fn default_path(env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    match env("YSYNC_CONFIG") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(DEFAULT_CONFIG),
    }
}

/// Reads and validates `path`; `env` looks up environment variables.
pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
    let (text, meta) = read_config(path)?;
    let mut config = parse(path, &text, env)?;
    warn_if_token_readable(path, &text, &meta);
    config.untrusted = crate::fsutil::untrusted(&meta, path, false);
    Ok(config)
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
    /// Why the config file should not be obeyed by a process that writes
    /// where it says ([`Config::untrusted`]).
    pub untrusted: Option<String>,
}

/// Reads the settings `ysync login` needs from `path`.
pub fn load_login(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Login, ConfigError> {
    let (text, meta) = read_config(path)?;
    let mut login = parse_login(path, &text, env)?;
    warn_if_token_readable(path, &text, &meta);
    login.untrusted = crate::fsutil::untrusted(&meta, path, false);
    Ok(login)
}

const REGISTER: &str = "register an app at https://oauth.yandex.ru/client/new (see GUIDE.md, \"Getting a token\")";

pub fn parse_login(path: &Path, text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Login, ConfigError> {
    let s = Settings::read(path, text, env)?;
    let app = parse_app(&s)?.ok_or_else(|| s.missing("client_id", &format!("{REGISTER} and copy its ClientID here")))?;
    let api_url = s.value("api_url", DEFAULT_API_URL.to_string(), parse_api_url)?;
    let token_file = s.value("token_file", None, |o, v| absolute_path(o, v).map(Some))?;
    let inline_token = s.get("token").map(|(o, _)| o.place);
    let timeout = s.value("timeout", DEFAULT_TIMEOUT, seconds(1))?;
    Ok(Login { app, token_file, inline_token, api_url, timeout, untrusted: None })
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
    let oauth_url = s.value("oauth_url", DEFAULT_OAUTH_URL.to_string(), parse_api_url)?;
    Ok(Some(App { client_id, client_secret, oauth_url }))
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

    let s = &settings;
    let interval = s.value("interval", Duration::from_secs(60), seconds(1))?;
    let timeout = s.value("timeout", DEFAULT_TIMEOUT, seconds(1))?;
    let min_age = s.value("min_age", Duration::ZERO, seconds(0))?;
    let delete = s.value("delete", DeleteMode::Trash, |o, v| match v.to_ascii_lowercase().as_str() {
        "trash" => Ok(DeleteMode::Trash),
        "permanent" => Ok(DeleteMode::Permanent),
        "keep" => Ok(DeleteMode::Keep),
        _ => Err(o.err(format!("`{v}` is not one of trash, permanent, keep"))),
    })?;
    let throttle_workaround = s.value("throttle_workaround", true, boolean)?;
    let one_file_system = s.value("one_file_system", false, boolean)?;
    let reconcile = s.value("reconcile", Duration::from_secs(7 * 86400), period)?;
    let max_delete = s.value("max_delete", MaxDelete::Percent(50), parse_max_delete)?;
    let bwlimit = s.value("bwlimit", 0, parse_bytes)?;
    let api_url = s.value("api_url", DEFAULT_API_URL.to_string(), parse_api_url)?;
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
    let path_var = env("PATH");
    let hook = |o: &Origin, v: &str| -> Result<Option<Command>, ConfigError> {
        let mut words = words::split_words(v).map_err(|e| o.err(format!("{e}; put '…' or \"…\" around a word with spaces")))?;
        if words.is_empty() {
            return Ok(None);
        }
        let program = words::find_program(&words[0], path_var.as_deref()).map_err(|e| o.err(e))?;
        words[0] = program.display().to_string();
        Ok(Some(Command(words)))
    };
    let on_success = s.value("on_success", None, hook)?;
    let on_failure = s.value("on_failure", None, hook)?;
    let hook_timeout = s.value("hook_timeout", Duration::from_secs(60), seconds(1))?;
    let progress = s.value("progress", Duration::from_secs(30), period)?;
    let backup_dir = s.value("backup_dir", None, |o, v| {
        let b = normalize_remote_dir(o, v)?;
        let under = |a: &str, b: &str| a == b || b == "/" || crate::print::is_under(a, b);
        if under(&b, &remote_dir) || under(&remote_dir, &b) {
            return Err(o.err(format!(
                "disk:{b} overlaps remote_dir disk:{remote_dir}; the versions must be kept outside the mirror (e.g. disk:/Versions/…), \
                 or the next cycle would see them as the Disk's own files"
            )));
        }
        Ok(Some(b))
    })?;
    let backup_keep = s.value("backup_keep", Duration::from_secs(30 * 86400), period)?;
    let max_change = s.value("max_change", MaxDelete::Percent(50), parse_max_delete)?;

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
        on_success,
        on_failure,
        hook_timeout,
        progress,
        backup_dir,
        backup_keep,
        max_change,
        allow_mass_change: false,
        untrusted: None,
        exclude_if_present: settings.exclude_if_present.clone(),
    })
}
