//! `exclude` patterns: `*` (any run within one name), `?` (one character),
//! `**` (anything, across folders), a trailing `/` to match folders only.
//!
//! A pattern without a `/` matches a name at any depth (`*.tmp` excludes
//! `a/b/c.tmp`); a pattern with one matches the whole relative path
//! (`cache/**`, `photos/*.raw`).

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    pattern: Vec<char>,
    dirs_only: bool,
    anchored: bool,
}

impl Glob {
    pub fn new(text: &str) -> Result<Glob, String> {
        let dirs_only = text.ends_with('/');
        let body = text.trim_end_matches('/').trim_start_matches("./");
        if body.is_empty() {
            return Err(format!("`{text}` is an empty pattern"));
        }
        let body = body.strip_prefix('/').unwrap_or(body);
        Ok(Glob { anchored: body.contains('/'), pattern: body.chars().collect(), dirs_only })
    }

    /// Does the pattern match `path` (relative, `/`-separated)?
    pub fn matches(&self, path: &str, is_dir: bool) -> bool {
        if self.dirs_only && !is_dir {
            return false;
        }
        let subject = if self.anchored { path } else { path.rsplit('/').next().unwrap_or(path) };
        let s: Vec<char> = subject.chars().collect();
        match_at(&self.pattern, &s)
    }
}

fn match_at(p: &[char], s: &[char]) -> bool {
    match p.first() {
        None => s.is_empty(),
        Some('*') if p.get(1) == Some(&'*') => {
            let rest = p[2..].strip_prefix(&['/']).unwrap_or(&p[2..]);
            // `**/` may also match nothing at all.
            (0..=s.len()).any(|i| match_at(rest, &s[i..]) || match_at(&p[2..], &s[i..]))
        }
        Some('*') => (0..=s.len()).take_while(|&i| i == 0 || s[i - 1] != '/').any(|i| match_at(&p[1..], &s[i..])),
        Some('?') => s.first().is_some_and(|&c| c != '/') && match_at(&p[1..], &s[1..]),
        Some(&c) => s.first() == Some(&c) && match_at(&p[1..], &s[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::Glob;

    fn m(p: &str, path: &str) -> bool {
        Glob::new(p).unwrap().matches(path, false)
    }

    #[test]
    fn names_at_any_depth() {
        assert!(m("*.tmp", "a.tmp"));
        assert!(m("*.tmp", "x/y/a.tmp"));
        assert!(!m("*.tmp", "a.tmp.txt"));
        assert!(m("?.txt", "d/a.txt"));
        assert!(!m("?.txt", "ab.txt"));
        assert!(m(".DS_Store", "deep/.DS_Store"));
    }

    #[test]
    fn anchored_paths() {
        assert!(m("cache/**", "cache/a/b/c"));
        assert!(!m("cache/**", "x/cache/a"));
        assert!(m("photos/*.raw", "photos/a.raw"));
        assert!(!m("photos/*.raw", "photos/sub/a.raw"));
        assert!(m("**/build", "a/b/build"));
        assert!(m("**/build", "build"));
        assert!(m("a/**/z", "a/z"));
        assert!(m("a/**/z", "a/b/c/z"));
    }

    #[test]
    fn folders_only() {
        let g = Glob::new("tmp/").unwrap();
        assert!(g.matches("x/tmp", true));
        assert!(!g.matches("x/tmp", false));
        assert!(Glob::new("/").is_err());
    }
}
