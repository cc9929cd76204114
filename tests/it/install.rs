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
        "usr/local/share/ysync/systemd/ysync.service",
        "usr/local/share/ysync/systemd/ysync-once.service",
        "usr/local/share/ysync/systemd/ysync-once.timer",
        "usr/local/share/ysync/cron/ysync.cron",
    ] {
        assert_eq!(mode(&d.join(f)), if f.contains("openrc") { 0o755 } else { 0o644 }, "{f}");
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
fn missing(tool: &str) {
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
    for name in ["ysync.service", "ysync-once.service", "ysync-once.timer"] {
        let text = fs::read_to_string(root.join("contrib/systemd").join(name)).unwrap();
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
    let readme = fs::read_to_string(root.join("README.md")).unwrap();
    let cli = readme.split("## Command line").nth(1).unwrap().split("### Exit status").next().unwrap();
    let help = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_ysync")).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let usage = help(&["--help"]);
    let commands = ["run", "once", "status", "verify", "check", "login", "help"];
    for c in commands {
        assert!(usage.contains(&format!("\n  {c} ")), "{c} in --help");
        assert!(cli.contains(&format!("\n  {c} ")), "{c} in the README's command line");
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
        assert!(readme.lines().any(row), "{k} in the README's configuration table");
        let tag = |l: &str| (l.starts_with(".B ") || l.starts_with(".BR ")) && l.split_whitespace().any(|w| w == k);
        assert!(man.lines().any(tag), "{k} in the man page");
    }
    for option in ["--config", "--dry-run", "--bwlimit", "--print", "--verbose", "--quiet", "--help", "--version"] {
        let roff = option.replace('-', "\\-");
        assert!(usage.contains(option), "{option} in --help");
        assert!(cli.contains(option), "{option} in the README");
        assert!(man.contains(&roff), "{option} in the man page");
    }
}
