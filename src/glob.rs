//! `exclude` patterns: `*` (any run within one name), `?` (one character),
//! `**` as a whole component (any number of folders; `a/**` is what is
//! inside `a`), a trailing `/` to match folders only.
//!
//! A pattern without a `/` matches a name at any depth (`*.tmp` excludes
//! `a/b/c.tmp`); a pattern with one matches the whole relative path
//! (`cache/**`, `photos/*.raw`).

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    /// The pattern's components: one for a pattern without `/`.
    parts: Vec<Part>,
    dirs_only: bool,
    anchored: bool,
}

/// One component of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    /// `**`: any number of folders (a trailing one: at least one name).
    Any,
    /// A name pattern: `*` any run of characters, `?` one, the rest itself.
    Name(Vec<char>),
}

impl Glob {
    pub fn new(text: &str) -> Result<Glob, String> {
        let dirs_only = text.ends_with('/');
        let body = text.trim_end_matches('/').trim_start_matches("./");
        if body.is_empty() {
            return Err(format!("`{text}` is an empty pattern"));
        }
        let body = body.strip_prefix('/').unwrap_or(body);
        let mut parts: Vec<Part> = body
            .split('/')
            .filter(|p| !p.is_empty())
            .map(|p| if p == "**" { Part::Any } else { Part::Name(p.chars().collect()) })
            .collect();
        // `a/**` is what is inside `a`, not `a` itself (gitignore's rule).
        if parts.len() > 1 && parts.last() == Some(&Part::Any) {
            parts.push(Part::Name(vec!['*']));
        }
        Ok(Glob { anchored: body.contains('/'), parts, dirs_only })
    }

    /// Does the pattern match `path` (relative, `/`-separated)? In time
    /// linear in the path for each star of the pattern, never exponential:
    /// a hostile name costs what any other does.
    pub fn matches(&self, path: &str, is_dir: bool) -> bool {
        if self.dirs_only && !is_dir {
            return false;
        }
        if !self.anchored {
            let name = path.rsplit('/').next().unwrap_or(path);
            return match self.parts.first() {
                Some(Part::Name(p)) => name_matches(p, name),
                _ => true, // `**` alone
            };
        }
        let names: Vec<&str> = path.split('/').collect();
        // The classic wildcard match, over components: `**` is the star,
        // a name pattern one element; on a mismatch, back to the last `**`.
        let (mut pi, mut si) = (0, 0);
        let mut back: Option<(usize, usize)> = None;
        while si < names.len() {
            match self.parts.get(pi) {
                Some(Part::Any) => {
                    back = Some((pi + 1, si));
                    pi += 1;
                    continue;
                }
                Some(Part::Name(p)) if name_matches(p, names[si]) => {
                    pi += 1;
                    si += 1;
                    continue;
                }
                _ => {}
            }
            match back {
                Some((bp, bs)) => {
                    back = Some((bp, bs + 1));
                    (pi, si) = (bp, bs + 1);
                }
                None => return false,
            }
        }
        self.parts[pi..].iter().all(|p| *p == Part::Any)
    }
}

/// Does the name pattern `p` match `name` (one component)? `*` matches any
/// run, `?` one character; after a mismatch only the last `*` takes one
/// character more (linear backtracking, Krauss's algorithm).
fn name_matches(p: &[char], name: &str) -> bool {
    let next = |at: usize| name[at..].chars().next();
    let (mut pi, mut si) = (0, 0);
    let mut back: Option<(usize, usize)> = None;
    while let Some(c) = next(si) {
        #[cfg(test)]
        STEPS.with(|s| s.set(s.get() + 1));
        match p.get(pi) {
            Some('*') => {
                back = Some((pi + 1, si));
                pi += 1;
                continue;
            }
            Some(&x) if x == '?' || x == c => {
                pi += 1;
                si += c.len_utf8();
                continue;
            }
            _ => {}
        }
        match back {
            Some((bp, bs)) => {
                let skipped = bs + next(bs).map_or(1, char::len_utf8);
                back = Some((bp, skipped));
                (pi, si) = (bp, skipped);
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
thread_local! {
    /// Tests only: the steps `name_matches` took in this thread.
    static STEPS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

#[cfg(test)]
mod tests {
    use super::{Glob, STEPS};

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
    fn many_stars_against_a_long_name_take_no_time() {
        // The review's finding 19: seconds, then minutes, with backtracking.
        let name = "a".repeat(251);
        STEPS.with(|s| s.set(0));
        for p in ["*a*a*b", "*a*a*a*b", "*a*a*a*a*b", "*a*a*a*a*a*a*a*a*b", "**/*a*a*a*a*a*b/**"] {
            assert!(!m(p, &name), "{p}");
            assert!(!m(p, &format!("x/{name}/y")), "{p}");
        }
        assert!(m("*a*a*a*a*a", &name));
        assert!(m("*.*.*.bak", &format!("{}.bak", ".".repeat(250))));
        // Linear: each star retries at most every character once. The
        // recursive matcher made billions of steps here.
        let steps = STEPS.with(|s| s.get());
        assert!(steps < 200_000, "{steps} steps");
    }

    #[test]
    fn unicode_and_question_marks() {
        assert!(m("?ото.jpg", "Фото.jpg"));
        assert!(m("Ф*.jpg", "Фото.jpg"));
        assert!(!m("Ф?.jpg", "Фото.jpg"));
        assert!(m("*~", "ёлка~"));
    }

    #[test]
    fn folders_only() {
        let g = Glob::new("tmp/").unwrap();
        assert!(g.matches("x/tmp", true));
        assert!(!g.matches("x/tmp", false));
        assert!(Glob::new("/").is_err());
    }
}
