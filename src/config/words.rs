//! A hook's command line, as the config reads it: words split like a
//! shell would (quotes only), and the program found now.

use std::path::Path;

/// Splits a hook's command line into words: white space separates them,
/// and `'…'` or `"…"` keep white space inside one. No other shell syntax:
/// no variables, globs, pipes or redirections.
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.get_or_insert_default().push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                word.get_or_insert_default();
            }
            (None, c) if c.is_whitespace() => words.extend(word.take()),
            (None, c) => word.get_or_insert_default().push(c),
        }
    }
    if let Some(q) = quote {
        return Err(format!("a {q} is not closed"));
    }
    words.extend(word);
    Ok(words)
}

/// The program a hook names: a path with a `/` as it is (it must be
/// absolute), a bare name looked up on `PATH` now. Must be an executable file.
pub fn find_program(name: &str, path_var: Option<&str>) -> Result<std::path::PathBuf, String> {
    use std::os::unix::fs::PermissionsExt;
    let runnable = |p: &Path| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    if name.contains('/') {
        let p = Path::new(name);
        if !p.is_absolute() {
            return Err(format!("`{name}` is not an absolute path; give the program's full path"));
        }
        return if runnable(p) { Ok(p.to_path_buf()) } else { Err(format!("{name} is not an executable file")) };
    }
    let dirs = path_var.unwrap_or("/usr/local/bin:/usr/bin:/bin");
    dirs.split(':')
        .filter(|d| d.starts_with('/'))
        .map(|d| Path::new(d).join(name))
        .find(|p| runnable(p))
        .ok_or_else(|| format!("`{name}` is not found on PATH ({dirs}); give the program's full path"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        split_words(s).unwrap()
    }

    #[test]
    fn a_hook_line_is_split_like_a_shell_would_without_running_one() {
        assert_eq!(words("curl -fsS -m 10 https://hc-ping.com/x"), ["curl", "-fsS", "-m", "10", "https://hc-ping.com/x"]);
        assert_eq!(words("/opt/my\\ hook 'a b' \"c  d\" e'f g'h"), ["/opt/my\\", "hook", "a b", "c  d", "ef gh"]);
        assert_eq!(words("x '' $HOME; rm *"), ["x", "", "$HOME;", "rm", "*"]);
        assert_eq!(split_words("x 'open").unwrap_err(), "a ' is not closed");
    }

    #[test]
    fn a_hook_program_must_be_there_and_runnable() {
        assert_eq!(find_program("sh", Some("/nonexistent:/bin:/usr/bin")).unwrap(), Path::new("/bin/sh"));
        assert!(find_program("no-such-hook-xyz", Some("/bin")).unwrap_err().contains("not found on PATH (/bin)"));
        assert!(find_program("bin/sh", None).unwrap_err().contains("not an absolute path"));
        assert!(find_program("/proc/version", None).unwrap_err().contains("not an executable file"));
    }
}
