//! The token file's format: the token on the first line, then the
//! renewal's `key = value` lines (`ysync login` writes them). The rules of
//! renewal are in `token.rs`.

use std::path::Path;

/// The contents of a token file.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenFile {
    pub token: String,
    pub refresh_token: Option<String>,
    pub expires: Option<u64>,
    pub lifetime: Option<u64>,
    pub asked: Option<u64>,
}

impl std::fmt::Debug for TokenFile {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.debug_struct("TokenFile").field("expires", &self.expires).field("lifetime", &self.lifetime).finish_non_exhaustive()
    }
}

impl TokenFile {
    pub fn plain(token: &str) -> TokenFile {
        TokenFile { token: token.to_string(), refresh_token: None, expires: None, lifetime: None, asked: None }
    }

    /// Parses a token file; the error names the line and what to do.
    pub fn parse(text: &str) -> Result<TokenFile, String> {
        let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
        let token = lines.next().map(|(_, l)| l.trim()).unwrap_or_default();
        if token.is_empty() {
            return Err("the token is empty; run `ysync login`, or put the token there".into());
        }
        if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("the token (the first line) contains white space; put the token there alone".into());
        }
        let mut t = TokenFile::plain(token);
        for (n, line) in lines {
            let at = |m: &str| format!("line {}: {m}; the first line is the token, `ysync login` writes the others", n + 1);
            let (k, v) = line.split_once('=').map(|(k, v)| (k.trim(), v.trim())).ok_or_else(|| at("not `key = value`"))?;
            let secs = || v.parse::<u64>().map_err(|_| at(&format!("{k}: `{v}` is not a number of seconds")));
            match k {
                "refresh_token" if !v.is_empty() && !v.contains(char::is_whitespace) => t.refresh_token = Some(v.to_string()),
                "expires" => t.expires = Some(secs()?),
                "lifetime" => t.lifetime = Some(secs()?),
                "asked" => t.asked = Some(secs()?),
                "refresh_token" => return Err(at("refresh_token is empty or contains white space")),
                _ => return Err(at(&format!("unknown key `{k}`"))),
            }
        }
        Ok(t)
    }

    pub fn read(path: &Path) -> Result<TokenFile, String> {
        std::fs::read_to_string(path).map_err(|e| e.to_string()).and_then(|s| TokenFile::parse(&s))
    }

    pub fn render(&self) -> String {
        let mut s = format!("{}\n", self.token);
        if let Some(r) = &self.refresh_token {
            s += &format!("refresh_token = {r}\n");
        }
        for (k, v) in [("expires", self.expires), ("lifetime", self.lifetime), ("asked", self.asked)] {
            if let Some(v) = v {
                s += &format!("{k} = {v}\n");
            }
        }
        s
    }
}
