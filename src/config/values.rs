//! The values of the config file: each parser names what it expects, and
//! where the value came from, when it is refused.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use super::file::{Origin, strip_comment};
use super::{ConfigError, MaxDelete, Token};

pub fn token_value(o: &Origin, v: &str) -> Result<Token, ConfigError> {
    if v.is_empty() {
        return Err(o.err("the token is empty; see GUIDE.md, \"Getting a token\", on how to get one"));
    }
    if v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(o.err("the token contains white space; paste it again without spaces"));
    }
    Ok(Token(v.to_string()))
}

pub fn read_token_file(o: &Origin, v: &str) -> Result<Token, ConfigError> {
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
    let file = super::token_file::TokenFile::parse(&text).map_err(|e| Origin { place: v.to_string(), key: String::new() }.err(e))?;
    Ok(Token(file.token))
}

pub fn warn_if_token_readable(path: &Path, text: &str, meta: &crate::fsutil::Meta) {
    let holds_token = text.lines().any(|l| {
        let l = strip_comment(l).trim_start();
        (l.starts_with("token") && !l.starts_with("token_file")) || l.starts_with("client_secret")
    });
    if holds_token && meta.perm() & 0o077 != 0 {
        log::warn!(
            "{} holds a secret (token or client_secret) and can be read by other users; run: chmod 600 {}",
            path.display(),
            path.display()
        );
    }
}

pub fn absolute_path(o: &Origin, v: &str) -> Result<PathBuf, ConfigError> {
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

pub fn same_dir_after_resolving(state_file: &Path, local_dir: &Path) -> bool {
    let (Some(parent), Ok(local)) = (state_file.parent(), fs::canonicalize(local_dir)) else {
        return false;
    };
    fs::canonicalize(parent).map(|p| p.starts_with(local)).unwrap_or(false)
}

/// `disk:/a/b/`, `/a/b` and `a/b` all become `/a/b`; the root is `/`.
pub fn normalize_remote_dir(o: &Origin, v: &str) -> Result<String, ConfigError> {
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

/// The longest any time setting may be: ten years. Past it a time would
/// no longer add to a clock (a panic, not an error), and no wait of
/// ysync's is meant to be longer.
pub const MAX_SECONDS: u64 = 10 * 365 * 86_400;

pub fn number(o: &Origin, v: &str, min: u64) -> Result<u64, ConfigError> {
    match v.parse::<u64>() {
        Ok(n) if n > MAX_SECONDS => Err(o.err(format!("`{v}` is more than ten years ({MAX_SECONDS} seconds); give a shorter time"))),
        Ok(n) if n >= min => Ok(n),
        Ok(_) => Err(o.err(format!("must be at least {min}"))),
        Err(_) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
            Err(o.err(format!("`{v}` is more than ten years ({MAX_SECONDS} seconds); give a shorter time")))
        }
        Err(_) => Err(o.err(format!("`{v}` is not a whole number of seconds"))),
    }
}

/// `7d`, `12h`, `30m`, `90s` or plain seconds; `0` is off.
pub fn period(o: &Origin, v: &str) -> Result<Duration, ConfigError> {
    let (digits, unit) = v.split_at(v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len()));
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => 0,
    };
    let long = || o.err(format!("`{v}` is more than ten years; give a shorter period, such as 30d"));
    match digits.parse::<u64>() {
        Ok(n) if scale > 0 && n.saturating_mul(scale) > MAX_SECONDS => Err(long()),
        Ok(n) if scale > 0 => Ok(Duration::from_secs(n * scale)),
        Err(_) if scale > 0 && !digits.is_empty() => Err(long()),
        _ => Err(o.err(format!("`{v}` is not a period such as 7d, 12h, 30m or 0 (off)"))),
    }
}

pub fn boolean(o: &Origin, v: &str) -> Result<bool, ConfigError> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "true" | "on" | "1" => Ok(true),
        "no" | "false" | "off" | "0" => Ok(false),
        _ => Err(o.err(format!("`{v}` is not yes or no"))),
    }
}

pub fn parse_max_delete(o: &Origin, v: &str) -> Result<MaxDelete, ConfigError> {
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

/// Whole seconds, at least `min`.
pub fn seconds(min: u64) -> impl Fn(&Origin, &str) -> Result<Duration, ConfigError> {
    move |o, v| number(o, v, min).map(Duration::from_secs)
}

pub fn parse_bytes(o: &Origin, v: &str) -> Result<u64, ConfigError> {
    crate::units::parse_size(v).ok_or_else(|| o.err(format!("`{v}` is not a byte rate such as 500K, 2M or 0")))
}

/// An `https://` URL; plain `http://` only to this machine (the
/// emulator, a local test): the token, the refresh token and the client
/// secret go to these URLs.
pub fn parse_api_url(o: &Origin, v: &str) -> Result<String, ConfigError> {
    let Some(rest) = v.strip_prefix("https://").or_else(|| v.strip_prefix("http://")) else {
        return Err(o.err(format!("`{v}` must start with https://")));
    };
    let v = v.trim_end_matches('/');
    if rest.is_empty() || rest.starts_with(['/', ':', '?', '#']) {
        return Err(o.err(format!("`{v}` names no host; for example https://cloud-api.yandex.net/v1/disk")));
    }
    if v.starts_with("http://") && !is_loopback_url(v) {
        return Err(o.err(format!(
            "`{v}` is plain http: the token (and client_secret) would cross the network unencrypted. Use https://; \
             plain http is taken only for this machine (127.0.0.1, [::1], localhost), as for the emulator"
        )));
    }
    Ok(v.to_string())
}

/// Does `url` point at this machine (`127.0.0.0/8`, `[::1]`, `localhost`)?
pub fn is_loopback_url(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else { return false };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.split(':').next().unwrap_or(""),
    };
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
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
