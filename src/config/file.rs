//! The config file as lines: comments, quotes, known keys, keys given
//! twice, and the environment's overrides. Every value keeps where it came
//! from ([`Origin`]), so an error can name the file, the line and the key.

use std::fs;
use std::path::Path;

use super::ConfigError;

/// Where a value came from, for error messages.
#[derive(Clone)]
pub struct Origin {
    pub place: String,
    pub key: String,
}

impl Origin {
    pub fn err(&self, message: impl Into<String>) -> ConfigError {
        ConfigError { place: self.place.clone(), key: self.key.clone(), message: message.into() }
    }
}

pub const KEYS: &[&str] = &[
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
    "on_success",
    "on_failure",
    "hook_timeout",
    "progress",
    "backup_dir",
    "backup_keep",
    "max_change",
    "exclude_if_present",
    "client_id",
    "client_secret",
    "oauth_url",
];

/// The config file's text, and what the file read is (its owner and mode,
/// from the open file: what was checked is what was read).
pub fn read_config(path: &Path) -> Result<(String, crate::fsutil::Meta), ConfigError> {
    use std::io::Read;
    let cannot = |e: std::io::Error| ConfigError {
        place: path.display().to_string(),
        key: String::new(),
        message: format!("cannot read the config file: {e} (pass another one with -c FILE, or copy ysync.conf.example)"),
    };
    let mut file = fs::File::open(path).map_err(cannot)?;
    let meta = crate::fsutil::meta_of(&file).map_err(cannot)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(cannot)?;
    // A byte-order mark (Windows editors) is not part of the first key.
    let bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(&bytes);
    let text = String::from_utf8(bytes.to_vec()).map_err(|e| {
        let line = bytes[..e.utf8_error().valid_up_to()].iter().filter(|&&b| b == b'\n').count() + 1;
        ConfigError {
            place: format!("{}:{line}", path.display()),
            key: String::new(),
            message: "this line is not UTF-8 text; save the file as UTF-8".into(),
        }
    })?;
    Ok((text, meta))
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
            return Err(ConfigError { place: format!("{file}:{number}"), key: String::new(), message: not_a_setting(line) });
        };
        let key = key.trim().to_string();
        // A hook's command line keeps its quotes: they group its words.
        let value = if key.starts_with("on_") { value.trim() } else { unquote(value.trim()) }.to_string();
        lines.push(Line { number, key, value });
    }
    Ok(lines)
}

/// What is wrong with a line without `=`, never echoing it: such a line
/// is often a secret (a token pasted on a line of its own, `token: …`).
fn not_a_setting(line: &str) -> String {
    let word = |w: &str| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    match line.split_once([':', ' ', '\t']) {
        Some((k, _)) if word(k.trim()) && KEYS.contains(&k.trim()) => {
            format!("expected `key = value`; write `{} = …` (with `=`)", k.trim())
        }
        _ => format!(
            "expected `key = value`, found a line of {} characters without `=` (not shown: it may hold a secret). \
             A value belongs on the line of its key, after `=`",
            line.chars().count()
        ),
    }
}

/// `#` starts a comment at the start of a line or after white space, so
/// values such as `#tag.md` or `a#b` keep their `#`.
pub fn strip_comment(line: &str) -> &str {
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

/// The file's lines checked and gathered, with the environment's overrides.
pub struct Settings {
    pub file: String,
    /// key -> (origin, value) for keys given once.
    single: Vec<(Origin, String)>,
    pub excludes: Vec<(Origin, String)>,
    pub throttled_ext: Vec<String>,
    /// `exclude_if_present`: marker file names.
    pub exclude_if_present: Vec<String>,
}

impl Settings {
    pub fn read(path: &Path, text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Settings, ConfigError> {
        let file = path.display().to_string();
        let lines = split_lines(&file, text)?;

        // key -> (origin, value); list keys keep every value.
        let mut single: Vec<(Origin, String)> = Vec::new();
        let mut excludes: Vec<(Origin, String)> = Vec::new();
        let mut throttled_ext: Vec<String> = Vec::new();
        let mut exclude_if_present: Vec<String> = Vec::new();
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
            // The list keys: each line adds one value.
            if l.key == "exclude" {
                excludes.push((origin, l.value.clone()));
                continue;
            }
            if l.key == "exclude_if_present" {
                if l.value.is_empty() || l.value.contains('/') || l.value == "." || l.value == ".." {
                    return Err(origin.err(format!("`{}` is not a file name such as .nosync", l.value)));
                }
                exclude_if_present.push(l.value.clone());
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
        Ok(Settings { file, single, excludes, throttled_ext, exclude_if_present })
    }

    pub fn get(&self, key: &str) -> Option<(Origin, String)> {
        self.single.iter().find(|(o, _)| o.key == key).cloned()
    }

    /// The value of `key` read by `parse`, or `default` when it is not set.
    pub fn value<T>(&self, key: &str, default: T, parse: impl Fn(&Origin, &str) -> Result<T, ConfigError>) -> Result<T, ConfigError> {
        match self.get(key) {
            Some((o, v)) => parse(&o, &v),
            None => Ok(default),
        }
    }

    pub fn missing(&self, key: &str, hint: &str) -> ConfigError {
        ConfigError { place: self.file.clone(), key: key.into(), message: format!("required but not set; {hint}") }
    }
}
