//! `make install` into a temporary DESTDIR, `make uninstall`, and the
//! service files checked by the tools that will run them.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

fn make(dest: &Path, target: &str) -> std::process::Output {
    Command::new("make")
        .args(["-s", target])
        .arg(format!("DESTDIR={}", dest.display()))
        .arg(format!("BIN={}", env!("CARGO_BIN_EXE_ysync")))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).permissions().mode() & 0o777
}

#[test]
fn install_lays_out_the_files_and_never_overwrites_the_config() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let out = make(d, "install-files");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(mode(&d.join("usr/local/bin/ysync")), 0o755);
    assert_eq!(mode(&d.join("etc/ysync.conf")), 0o600, "it will hold the token");
    assert_eq!(mode(&d.join("usr/local/share/ysync/openrc/ysync")), 0o755);
    for f in [
        "usr/local/share/man/man1/ysync.1",
        "usr/local/share/ysync/ysync.conf.example",
        "usr/local/share/ysync/README.md",
        "usr/local/share/ysync/GUIDE.md",
        "usr/local/share/ysync/systemd/ysync.service",
        "usr/local/share/ysync/systemd/ysync-once.service",
        "usr/local/share/ysync/systemd/ysync-once.timer",
        "usr/local/share/ysync/systemd/ysync@.service",
        "usr/local/share/ysync/cron/ysync.cron",
        "usr/local/share/ysync/openwrt/ysync",
        "usr/local/share/ysync/entware/S99ysync",
    ] {
        let script = ["openrc", "openwrt", "entware"].iter().any(|s| f.contains(s));
        assert_eq!(mode(&d.join(f)), if script { 0o755 } else { 0o644 }, "{f}");
    }
    // PREFIX=/usr: the service files name /usr/bin/ysync.
    let t2 = tempfile::tempdir().unwrap();
    let out = Command::new("make")
        .args(["-s", "install-files", "PREFIX=/usr"])
        .arg(format!("DESTDIR={}", t2.path().display()))
        .arg(format!("BIN={}", env!("CARGO_BIN_EXE_ysync")))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for f in ["systemd/ysync.service", "systemd/ysync@.service", "openrc/ysync", "cron/ysync.cron"] {
        let text = fs::read_to_string(t2.path().join("usr/share/ysync").join(f)).unwrap();
        assert!(text.contains("/usr/bin/ysync") && !text.contains("/usr/local/bin/ysync"), "{f}");
    }
    let v = Command::new(d.join("usr/local/bin/ysync")).arg("-V").output().unwrap();
    assert!(String::from_utf8_lossy(&v.stdout).starts_with("ysync "));

    // A second install keeps the user's config.
    fs::write(d.join("etc/ysync.conf"), "token = mine\n").unwrap();
    assert!(make(d, "install-files").status.success());
    assert_eq!(fs::read_to_string(d.join("etc/ysync.conf")).unwrap(), "token = mine\n");

    assert!(make(d, "uninstall").status.success());
    assert!(!d.join("usr/local/bin/ysync").exists() && !d.join("usr/local/share/ysync").exists());
    assert!(!d.join("usr/local/share/man/man1/ysync.1").exists());
    assert!(d.join("etc/ysync.conf").exists(), "uninstall leaves the config (and its token) alone");
}

/// A check whose tool is missing is skipped on a developer's machine, and
/// fails on CI (`YSYNC_CI`, set by .ci/run, which installs the tools).
pub fn missing(tool: &str) {
    assert!(std::env::var_os("YSYNC_CI").is_none(), "{tool} is missing on CI: .ci/run should have installed it");
    println!("{tool} is not installed; that check is skipped");
}

#[test]
fn the_man_page_renders_without_warnings() {
    let Ok(out) =
        Command::new("man").args(["--warnings", "-l"]).arg(concat!(env!("CARGO_MANIFEST_DIR"), "/ysync.1")).env("MANPAGER", "cat").output()
    else {
        missing("man");
        return;
    };
    assert!(String::from_utf8_lossy(&out.stdout).contains("mirror a local folder one way to Yandex Disk"));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

#[test]
fn service_files_pass_their_validators() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sh = Command::new("sh").arg("-n").arg(root.join("contrib/openrc/ysync")).status().unwrap();
    assert!(sh.success(), "the OpenRC script does not parse");
    if Command::new("systemd-analyze").arg("--version").output().is_err() {
        missing("systemd-analyze");
        return;
    }
    // Point ExecStart at this build; the man page is not installed here.
    let t = tempfile::tempdir().unwrap();
    let mut units = Vec::new();
    // The template, as one of its instances.
    for (name, file) in [
        ("ysync.service", "ysync.service"),
        ("ysync-once.service", "ysync-once.service"),
        ("ysync-once.timer", "ysync-once.timer"),
        ("ysync@photos.service", "ysync@.service"),
    ] {
        let text = fs::read_to_string(root.join("contrib/systemd").join(file)).unwrap();
        let text = text.replace("/usr/local/bin/ysync", env!("CARGO_BIN_EXE_ysync")).replace("Documentation=man:ysync(1)\n", "");
        fs::write(t.path().join(name), text).unwrap();
        units.push(t.path().join(name));
    }
    let out = Command::new("systemd-analyze").arg("verify").args(&units).output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    let problems: Vec<&str> = said.lines().filter(|l| !l.contains("not found") && !l.trim().is_empty()).collect();
    assert!(problems.is_empty(), "systemd-analyze verify:\n{said}");
}

/// `ysync --help`, each command's `--help`, the man page and the README
/// name the same commands and options.
#[test]
fn help_man_page_and_readme_agree() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let man = fs::read_to_string(root.join("ysync.1")).unwrap();
    let readme = fs::read_to_string(root.join("GUIDE.md")).unwrap();
    let cli = readme.split("## Command line").nth(1).unwrap().split("### Exit status").next().unwrap();
    let help = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_ysync")).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let usage = help(&["--help"]);
    let commands = ["run", "once", "status", "verify", "check", "login", "versions", "restore", "help"];
    for c in commands {
        assert!(usage.contains(&format!("\n  {c} ")), "{c} in --help");
        assert!(cli.contains(&format!("\n  {c} ")), "{c} in the guide's command line");
        assert!(man.contains(&format!(".B {c}")), "{c} in the man page");
        if c != "help" {
            let own = help(&[c, "--help"]);
            assert!(own.starts_with("usage: ysync ") && own.contains(c), "{c} --help: {own}");
            assert_eq!(own, help(&["help", c]));
        }
    }
    // Every key of the example config is in the README's table and the man page.
    let example = fs::read_to_string(root.join("ysync.conf.example")).unwrap();
    let keys: Vec<&str> = example
        .lines()
        .filter_map(|l| l.trim_start_matches("# ").split_once(" = ").map(|(k, _)| k))
        .filter(|k| !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .collect();
    assert!(keys.len() > 15 && keys.contains(&"reconcile"), "{keys:?}");
    for k in keys {
        let row = |l: &str| l.starts_with("| `") && l.split(" | ").next().is_some_and(|cell| cell.contains(&format!("`{k}`")));
        assert!(readme.lines().any(row), "{k} in the guide's configuration table");
        let tag = |l: &str| (l.starts_with(".B ") || l.starts_with(".BR ")) && l.split_whitespace().any(|w| w == k);
        assert!(man.lines().any(tag), "{k} in the man page");
    }
    for option in [
        "--config",
        "--dry-run",
        "--bwlimit",
        "--print",
        "--json",
        "--allow-mass-change",
        "--all",
        "--as-of",
        "--verbose",
        "--quiet",
        "--help",
        "--version",
    ] {
        let roff = option.replace('-', "\\-");
        assert!(usage.contains(option), "{option} in --help");
        assert!(cli.contains(option), "{option} in the guide");
        assert!(man.contains(&roff), "{option} in the man page");
    }
}

/// ARCHITECTURE.md stays true of the code: every file it names exists, and
/// every constant it quotes (`` `NAME = value` ``) is defined with that value.
#[test]
fn the_architecture_names_files_and_constants_that_exist() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let mut sources = String::new();
    let mut todo = vec![root.join("src")];
    while let Some(dir) = todo.pop() {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                sources += &fs::read_to_string(&p).unwrap();
            }
        }
    }
    let quoted: Vec<&str> = doc.split('`').skip(1).step_by(2).collect();
    let mut constants = 0;
    for q in &quoted {
        if let Some((name, value)) = q.split_once(" = ").filter(|(n, _)| n.chars().all(|c| c.is_ascii_uppercase() || c == '_')) {
            let defined = sources.lines().any(|l| l.contains(&format!("const {name}: ")) && l.trim_end().ends_with(&format!("= {value};")));
            assert!(defined, "ARCHITECTURE.md says `{q}`; src/ defines no such constant");
            constants += 1;
        }
        let file = q.trim_end_matches(['/', ',']);
        if (file.ends_with(".rs") || q.ends_with('/')) && !file.contains([' ', ':']) {
            let here = ["src", "src/state", "src/exec", "src/plan", "src/config", "src/fsutil", "src/restore", "tests/it", "tests", ""]
                .iter()
                .any(|d| root.join(d).join(file).exists());
            assert!(here, "ARCHITECTURE.md names {q}, which is not there");
        }
    }
    assert!(constants >= 6, "the bounds are quoted with their values");
}

/// The rooms of src/ (a top-level file or folder) and whom each imports
/// (`crate::NAME`, outside comments and tests).
fn imports() -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    let mut graph = std::collections::BTreeMap::<String, std::collections::BTreeSet<String>>::new();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut todo = vec![src.clone()];
    while let Some(dir) = todo.pop() {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_str().unwrap().to_string();
            if p.is_dir() {
                todo.push(p);
                continue;
            }
            let rel = p.strip_prefix(&src).unwrap();
            let room = rel.iter().next().unwrap().to_str().unwrap().trim_end_matches(".rs").to_string();
            if ["tests.rs", "testkit.rs", "props.rs", "swaps.rs", "main.rs"].contains(&name.as_str()) {
                continue;
            }
            let text = fs::read_to_string(&p).unwrap();
            let code = text.replace("#[cfg(test)]\npub mod tests", "#[cfg(test)]\nmod tests");
            let code = code.split("#[cfg(test)]\nmod tests").next().unwrap();
            let mine = graph.entry(room.clone()).or_default();
            for line in code.lines().map(|l| l.split("//").next().unwrap()) {
                for (i, _) in line.match_indices("crate::") {
                    let used: String = line[i + 7..].chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
                    if used != room {
                        mine.insert(used);
                    }
                }
            }
        }
    }
    graph
}

/// The import graph has no circle, and the leaves (config among them)
/// import nothing but leaves: as ARCHITECTURE.md states it.
#[test]
fn the_house_has_no_circle_and_its_leaves_stand_on_leaves() {
    let graph = imports();
    let leaves = ["config", "digest", "exit", "fsutil", "glob", "print", "units"];
    for leaf in leaves {
        let up: Vec<&String> = graph[leaf].iter().filter(|u| !leaves.contains(&u.as_str())).collect();
        assert!(up.is_empty(), "{leaf} is meant as a leaf and imports {up:?}");
    }
    // Kahn: rooms with no import left are taken away until none remain.
    let mut left = graph.clone();
    while let Some(room) = left.iter().find(|(_, i)| i.iter().all(|u| !left.contains_key(u))).map(|(r, _)| r.clone()) {
        left.remove(&room);
    }
    assert!(left.is_empty(), "a circle of imports among {:?}", left.keys().collect::<Vec<_>>());
}

/// Finding 23 of the security review: the README's Telegram example sent
/// `YSYNC_MESSAGE`, which quotes file names, with `-d`, unencoded: a name
/// with `&chat_id=…` added form fields. Every hook example that sends the
/// message encodes it; and the proxy variables ureq honours are documented.
#[test]
fn the_readmes_hook_examples_encode_what_they_send() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = fs::read_to_string(root.join("GUIDE.md")).unwrap();
    let sends: Vec<&str> = readme.lines().filter(|l| l.contains("$YSYNC_MESSAGE") && l.contains("curl")).collect();
    assert!(!sends.is_empty(), "the Telegram example is there");
    for l in sends {
        assert!(!l.contains("-d text=") && l.contains("--data-urlencode \"text="), "{l}");
    }
    let man = fs::read_to_string(root.join("ysync.1")).unwrap();
    for var in ["HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"] {
        assert!(readme.contains(var) && man.contains(var), "{var} is documented");
    }
}
