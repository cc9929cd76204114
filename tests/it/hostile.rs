//! Issue 26: the security review's findings, each as its attack. ysync
//! runs as root (as on a NAS), and the folders it is pointed at belong to
//! `nobody`, who plants links, swaps files and races the downloads; the
//! victims are root's files. Each test failed on the commit the review
//! audited (08952b3).

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::emulator::oauth::Script;
use crate::emulator::{FakeDisk, Options};
use crate::support::{Fixture, bytes, is_root, stderr, stdout};

const NOBODY: u32 = 65534;

/// Runs `script` with `sh` as `nobody` (the share user, the service user).
fn as_nobody(script: &str) {
    let status = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c", script])
        .status()
        .expect("setpriv (util-linux) runs the attacker");
    assert!(status.success(), "as nobody: {script}");
}

/// A folder of nobody's, mode 0700.
fn nobodys(path: &Path) {
    fs::create_dir_all(path).unwrap();
    std::os::unix::fs::chown(path, Some(NOBODY), Some(NOBODY)).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o700)).unwrap();
}

/// A root-only file (0600) with `text`.
fn root_secret(path: &Path, text: &[u8]) {
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
}

/// The fixture's config with `token_file` and the emulator's OAuth app
/// instead of a token.
fn with_token_file(fx: &Fixture, token: &Path) {
    let text = format!(
        "token_file = {}\nclient_id = test-client\nclient_secret = test-secret\noauth_url = {}\napi_url = {}\n\
         local_dir = {}\nremote_dir = /Backup\nstate_file = {}\n",
        token.display(),
        fx.emu.oauth_url(),
        fx.emu.api_url(),
        fx.local.display(),
        fx.state.display()
    );
    fs::write(&fx.conf, text).unwrap();
}

/// The attacks need root (ysync as root, nobody as the attacker): skipped
/// without it, except on CI, where a skip would hide them.
fn skip_unless_root() -> bool {
    if !is_root() {
        assert!(std::env::var_os("YSYNC_CI").is_none(), "CI must run the attacks as root");
        eprintln!("skipped: the attacks need root (ysync as root, nobody as the attacker)");
    }
    !is_root()
}

/// Finding 1: `status --json`, `check` and `login` run by root once wrote
/// a probe file `.ysync-probe-<pid>` into the token's folder, following a
/// link planted there: any root file truncated. Now nothing is created to
/// find out whether a folder is writable, and the token file is written
/// relative to its folder, never through a link.
#[test]
fn root_follows_no_link_planted_in_the_service_users_token_folder() {
    if skip_unless_root() {
        return;
    }
    let fx = Fixture::with(FakeDisk::with(Options { oauth: Script::default(), ..Options::default() }), "/Backup", "");
    let svc = fx.tmp.path().join("svc");
    nobodys(&svc);
    let token = svc.join("token");
    let expires = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 10 * 86_400;
    fs::write(&token, format!("{}\nrefresh_token = r\nexpires = {expires}\nlifetime = 31536000\n", fx.emu.token())).unwrap();
    std::os::unix::fs::chown(&token, Some(NOBODY), Some(NOBODY)).unwrap();
    fs::set_permissions(&token, fs::Permissions::from_mode(0o600)).unwrap();
    with_token_file(&fx, &token);
    let victim = fx.tmp.path().join("victim");
    root_secret(&victim, b"ROOT SECRET CONTENT");
    // The next pids, each with a link at the old probe's name.
    let spray = format!(
        "python3 -c 'import os\nlast=int(open(\"/proc/sys/kernel/ns_last_pid\").read())\nfor p in range(last+1, last+3000): os.symlink(\"{}\", \"{}/.ysync-probe-%d\" % p)'",
        victim.display(),
        svc.display()
    );
    as_nobody(&spray);
    for args in [&["status", "--json"][..], &["status"], &["check"]] {
        let out = fx.ysync(args);
        assert!(out.status.code().is_some(), "{args:?}: {}", stderr(&out));
        assert_eq!(fs::read(&victim).unwrap(), b"ROOT SECRET CONTENT", "`ysync {args:?}` wrote through a planted link");
    }
    let out = fx.ysync(&["login"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(fs::read(&victim).unwrap(), b"ROOT SECRET CONTENT", "login wrote through a planted link");
    let meta = fs::symlink_metadata(&token).unwrap();
    assert!(meta.is_file(), "the token file is a file");
    assert_eq!((meta.uid(), meta.mode() & 0o777), (NOBODY, 0o600), "for the service user, readable by it alone");
    // A link at the token file's own name is not written through either.
    fs::remove_file(&token).unwrap();
    as_nobody(&format!("ln -s {} {}", victim.display(), token.display()));
    let out = fx.ysync(&["login"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("is a symbolic link"), "{}", stderr(&out));
    assert_eq!(fs::read(&victim).unwrap(), b"ROOT SECRET CONTENT");
}

/// Finding 2: root running a cycle whose state folder another user can
/// write appended the journal (and created the lock) through that user's
/// links: a journal line holding `$(id>PWNED)` landed in a file a login
/// shell sources. Now root refuses such a folder and says how to fix it.
#[test]
fn root_refuses_a_state_folder_another_user_can_write() {
    if skip_unless_root() {
        return;
    }
    let fx = Fixture::new("");
    let svc = fx.tmp.path().join("svc5");
    nobodys(&svc);
    let profile = fx.tmp.path().join("bt/profile.d");
    fs::create_dir_all(&profile).unwrap();
    let text = fs::read_to_string(&fx.conf).unwrap().replace(&fx.state.display().to_string(), &format!("{}/s.json", svc.display()));
    fs::write(&fx.conf, text).unwrap();
    fx.write("$(id>PWNED)", "x");
    as_nobody(&format!(
        "ln -s {p}/zz-evil.sh {s}/s.json.journal; ln -s {p}/created {s}/s.json.lock",
        p = profile.display(),
        s = svc.display()
    ));
    let out = fx.ysync(&["once"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let text = stderr(&out);
    assert!(text.contains("belongs to nobody (uid 65534)") && text.contains("runuser -u nobody"), "{text}");
    assert_eq!(fs::read_dir(&profile).unwrap().count(), 0, "nothing created or appended through the links");
    assert_eq!(fx.emu.total_requests(), 0, "no cycle ran");
    // `check` names it too.
    let out = fx.ysync(&["check"]);
    assert!(stdout(&out).contains("!! state_file") && stdout(&out).contains("belongs to nobody"), "{}", stdout(&out));

    // A folder of root's that its group may write: refused as well.
    let shared = fx.tmp.path().join("shared");
    fs::create_dir(&shared).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o770)).unwrap();
    let text = fs::read_to_string(&fx.conf).unwrap().replace(&svc.display().to_string(), &shared.display().to_string());
    fs::write(&fx.conf, text).unwrap();
    let out = fx.ysync(&["once"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains(&format!("chmod go-w {}", shared.display())), "{}", stderr(&out));

    // Root's own folder: the cycle runs, and the state is root's alone.
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o700)).unwrap();
    fx.sync();
    for name in ["s.json", "s.json.lock"] {
        assert_eq!(fs::metadata(shared.join(name)).unwrap().mode() & 0o777, 0o600, "{name}");
    }
}

/// The same for the config file itself: as root, ysync runs hooks and
/// writes where a config says only when nobody else can change it.
#[test]
fn root_takes_commands_only_from_a_config_nobody_else_can_change() {
    if skip_unless_root() {
        return;
    }
    let fx = Fixture::new("");
    fx.write("a.txt", "a");
    std::os::unix::fs::chown(&fx.conf, Some(NOBODY), Some(NOBODY)).unwrap();
    for args in [&["once"][..], &["restore", "a.txt"]] {
        let out = fx.ysync(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("belongs to nobody (uid 65534)"), "{}", stderr(&out));
    }
    assert_eq!(fx.emu.total_requests(), 0);
    // Reading is harmless: status and check still work.
    assert_eq!(fx.ysync(&["status"]).status.code(), Some(0));
    std::os::unix::fs::chown(&fx.conf, Some(0), Some(0)).unwrap();
    fs::set_permissions(&fx.conf, fs::Permissions::from_mode(0o620)).unwrap();
    let out = fx.ysync(&["once"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("can be written by its group"), "{}", stderr(&out));
    fs::set_permissions(&fx.conf, fs::Permissions::from_mode(0o600)).unwrap();
    fx.sync();
}

/// Finding 3: a file, and a folder, swapped for a link after the scan were
/// uploaded from outside local_dir (a root-only secret reached the Disk).
/// Swapped here at the first upload's link request, when the scan is done;
/// now every file is opened below local_dir without following a link and
/// only if it is still the file the scan saw.
#[test]
fn a_file_or_folder_swapped_for_a_link_after_the_scan_is_never_uploaded() {
    if skip_unless_root() {
        return;
    }
    let fx = Fixture::new("");
    let secret = b"root-only: s3cr3t-passphrase-123".to_vec();
    let rootsecret = fx.tmp.path().join("rootsecret");
    root_secret(&rootsecret, &secret);
    let rootdir = fx.tmp.path().join("rootdir");
    fs::create_dir(&rootdir).unwrap();
    root_secret(&rootdir.join("id_rsa"), b"-----BEGIN OPENSSH PRIVATE KEY-----");
    fx.write("a-first.txt", "first");
    fx.write("m/pipe.txt", "soon a pipe");
    fx.write("y/id_rsa", "mine, not root's: 35 bytes long...");
    fx.write("z/secret.txt", vec![b'.'; secret.len()]);
    Command::new("chown").args(["-R", "65534:65534"]).arg(&fx.local).status().unwrap();
    let (local, rs, rd) = (fx.local.clone(), rootsecret.clone(), rootdir.clone());
    fx.emu.before("GET /v1/disk/resources/upload", "a-first.txt", move || {
        as_nobody(&format!(
            "cd {} && rm z/secret.txt && ln -s {} z/secret.txt && mv y y.old && ln -s {} y && rm m/pipe.txt && mkfifo m/pipe.txt",
            local.display(),
            rs.display(),
            rd.display()
        ));
    });
    let out = fx.ysync_within(&["once"], 60);
    assert!(out.status.code().is_some(), "{}", stderr(&out));
    for _ in 0..2 {
        let out = fx.ysync_within(&["once"], 60);
        assert!(out.status.code().is_some(), "{}", stderr(&out));
    }
    for (path, content) in fx.emu.tree("/") {
        let content = content.unwrap_or_default();
        assert!(content != secret && !content.starts_with(b"-----BEGIN"), "{path}: a root-only file reached the Disk");
    }
    for trashed in fx.emu.trash() {
        assert!(!trashed.path.contains("secret") || fx.emu.file(&trashed.path).is_none_or(|c| c != secret), "{trashed:?}");
    }
}

/// Findings 4 and 5: `restore` wrote through a folder swapped for a link
/// (a root-owned 0644 file in a login shell's profile.d), replaced a file
/// that appeared while it downloaded, and a dangling link, without
/// `--force`. It also created the file 0644, owned by root.
#[test]
fn restore_writes_through_no_link_and_over_nothing_that_appears() {
    if skip_unless_root() {
        return;
    }
    let fx = Fixture::new("backup_dir = disk:/Versions");
    let profile = fx.tmp.path().join("profile.d");
    fs::create_dir(&profile).unwrap();
    fx.write("docs/evil.sh", "echo owned\n");
    fx.write("docs2/report.txt", "the good report");
    fx.write("docs3/report.txt", "another report");
    fx.sync();
    fs::remove_file(fx.path("docs/evil.sh")).unwrap();
    fx.write("docs2/report.txt", "edited since");
    fx.write("docs3/report.txt", "edited too");
    fx.sync();
    Command::new("chown").args(["-R", "65534:65534"]).arg(&fx.local).status().unwrap();
    fs::set_permissions(fx.path("docs2"), fs::Permissions::from_mode(0o750)).unwrap();

    // A folder swapped for a link: refused, nothing written there.
    as_nobody(&format!("cd {} && rmdir docs && ln -s {} docs", fx.local.display(), profile.display()));
    let out = fx.ysync(&["restore", "docs/evil.sh"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("is a symbolic link, where a folder must go; a restore never writes through one"), "{}", stderr(&out));
    assert_eq!(fs::read_dir(&profile).unwrap().count(), 0);
    let out = fx.ysync(&["restore", "docs2/report.txt", "--to", "docs/x.sh", "--force"]);
    assert_eq!(out.status.code(), Some(2), "--to through the link: {}", stderr(&out));
    assert_eq!(fs::read_dir(&profile).unwrap().count(), 0);

    // A dangling link is something: not replaced without --force.
    as_nobody(&format!("ln -s {}/nonexistent {}", fx.tmp.path().display(), fx.path("docs2/dangling.txt").display()));
    let out = fx.ysync(&["restore", "docs2/report.txt", "--to", "docs2/dangling.txt"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(fs::symlink_metadata(fx.path("docs2/dangling.txt")).unwrap().file_type().is_symlink());

    // A file that appears while the version downloads is not replaced.
    let race = fx.path("docs3/race.txt");
    let at = race.clone();
    fx.emu.before("GET /v1/disk/resources/download", "report.txt", move || {
        fs::write(&at, "the user's new work, written during the restore").unwrap();
    });
    let out = fx.ysync(&["restore", "docs3/report.txt", "--to", "docs3/race.txt"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("appeared while it was being restored"), "{}", stderr(&out));
    assert_eq!(fs::read_to_string(&race).unwrap(), "the user's new work, written during the restore");
    assert!(fs::read_dir(fx.path("docs3")).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().contains(".part")));

    // Restored into nobody's folder: nobody's file, no more readable than
    // its folder (0750 -> 0640).
    let out = fx.ysync(&["restore", "docs2/report.txt", "--to", "docs2/back.txt"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let meta = fs::metadata(fx.path("docs2/back.txt")).unwrap();
    assert_eq!((meta.uid(), meta.gid(), meta.mode() & 0o777), (NOBODY, NOBODY, 0o640));
    assert_eq!(fs::read_to_string(fx.path("docs2/back.txt")).unwrap(), "the good report");

    // Outside local_dir, root does not follow a link in --to.
    let elsewhere = fx.tmp.path().join("elsewhere");
    nobodys(&elsewhere);
    as_nobody(&format!("ln -s {} {}/link", profile.display(), elsewhere.display()));
    let to = elsewhere.join("link/report.txt");
    let out = fx.ysync(&["restore", "docs2/report.txt", "--to", to.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("leads through a symbolic link"), "{}", stderr(&out));
    assert_eq!(fs::read_dir(&profile).unwrap().count(), 0);
}

/// Finding 26: a download redirect with a relative `Location` failed
/// ("missing scheme").
#[test]
fn a_download_redirected_to_a_path_is_followed() {
    let emu = FakeDisk::with(Options { download_redirect: true, ..Options::default() });
    let fx = Fixture::with(emu, "/Backup", "backup_dir = disk:/Versions");
    fx.write("a.txt", "the first one");
    fx.sync();
    fx.emu.wait_shown();
    fx.write("a.txt", "the second");
    fx.sync();
    let out = fx.ysync(&["restore", "a.txt", "--to", "back.txt"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(fs::read_to_string(fx.path("back.txt")).unwrap(), "the first one");
}

/// Finding 6: a version whose download took longer than 10 × `timeout`
/// could never be restored. Here one takes about 11 s at 64 KiB/s with
/// `timeout = 1`; only a stall (no byte for `timeout`) ends a download.
#[test]
fn a_slow_download_is_restored_however_long_it_takes() {
    let emu = FakeDisk::with(Options { download_rate: 64 << 10, ..Options::default() });
    let fx = Fixture::with(emu, "/Backup", "backup_dir = disk:/Versions\ntimeout = 1");
    let big = bytes(720 << 10, 7);
    fx.write("big.bin", &big);
    fx.sync();
    fx.emu.wait_shown();
    fx.write("big.bin", "replaced");
    fx.sync();
    let started = std::time::Instant::now();
    let out = fx.ysync_within(&["restore", "big.bin", "--to", "back.bin"], 120);
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
    assert!(started.elapsed() > Duration::from_secs(10), "the line was slow, as meant");
    assert_eq!(fs::read(fx.path("back.bin")).unwrap(), big);
}

/// Finding 15: a renewal under `umask 077` turned a 0640 token file into
/// 0600, locking out the service group that reads it.
#[test]
fn a_renewal_keeps_the_token_files_mode_whatever_the_umask() {
    // Renewal is due with less than half of the 6 s left: 4.1 s later, at
    // whatever fraction of a second the login ended.
    let script = Script { pending_polls: 0, token_life: Duration::from_secs(6), ..Script::default() };
    let fx = Fixture::with(FakeDisk::with(Options { oauth: script, ..Options::default() }), "/Backup", "");
    let token = fx.tmp.path().join("secret/token");
    with_token_file(&fx, &token);
    assert_eq!(fx.ysync(&["login"]).status.code(), Some(0));
    fs::set_permissions(&token, fs::Permissions::from_mode(0o640)).unwrap();
    let before = fs::read_to_string(&token).unwrap();
    std::thread::sleep(Duration::from_millis(4100));
    let cmd = fx.command(&["once"]);
    let mut sh = Command::new("sh");
    sh.arg("-c").arg("umask 077; exec \"$@\"").arg("sh").arg(cmd.get_program()).args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => sh.env(k, v),
            None => sh.env_remove(k),
        };
    }
    let out = sh.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_ne!(fs::read_to_string(&token).unwrap(), before, "renewed: {}", stderr(&out));
    assert_eq!(fs::metadata(&token).unwrap().mode() & 0o777, 0o640, "the mode it had");
}

/// Finding 16: deleting a folder also deleted a foreign remote file whose
/// name merely starts with `.ysync-` (for good with `delete = permanent`).
#[test]
fn a_folders_deletion_leaves_someone_elses_ysync_named_file() {
    let fx = Fixture::new("delete = permanent");
    fx.write("anchor.txt", "stays");
    fx.write("F/a.txt", "mine");
    fx.sync();
    fx.emu.put_file("/Backup/F/.ysync-my-diary.txt", b"dear diary");
    let out = fx.ysync(&["verify"]);
    assert!(stdout(&out).contains("not ysync's (left alone): F/.ysync-my-diary.txt"), "{}", stdout(&out));
    fs::remove_dir_all(fx.path("F")).unwrap();
    let out = fx.sync();
    assert_eq!(fx.emu.file("/Backup/F/.ysync-my-diary.txt").as_deref(), Some(&b"dear diary"[..]), "{}", stderr(&out));
    assert!(!fx.emu.exists("/Backup/F/a.txt"), "ysync's own file went");
    assert!(stderr(&out).contains("F/.ysync-my-diary.txt"), "the warning names it: {}", stderr(&out));
}

/// Finding 17: a cycle that ran while `restore` downloaded uploaded the
/// partial `.ysync-restore-….part` file (and the next one trashed it).
#[test]
fn a_restores_partial_file_is_never_mirrored() {
    let fx = Fixture::new("");
    fx.write("docs/a.txt", "a");
    fx.write("docs/.ysync-restore-691-0.part", "half a download");
    fx.write(".ysync-probe-4242", "");
    let out = fx.sync();
    assert!(!fx.emu.exists("/Backup/docs/.ysync-restore-691-0.part"), "{}", stderr(&out));
    assert!(!fx.emu.exists("/Backup/.ysync-probe-4242"));
    assert!(fx.emu.exists("/Backup/docs/a.txt"));
    // An idle cycle next: the left-out names do not make it look again.
    fx.emu.reset_counts();
    fx.sync();
    assert_eq!(fx.emu.total_requests(), 0);
}

/// Finding 20: huge time settings panicked (exit 134) instead of a
/// line-numbered config error.
#[test]
fn huge_settings_are_a_config_error_not_a_crash() {
    for line in ["timeout = 18446744073709551615", "hook_timeout = 18446744073709551615", "progress = 18446744073709551615d"] {
        let fx = Fixture::new(line);
        fx.write("a.txt", "a");
        let out = fx.ysync(&["once"]);
        assert_eq!(out.status.code(), Some(2), "{line}: {}", stderr(&out));
        assert!(stderr(&out).contains("ten years"), "{line}: {}", stderr(&out));
    }
}

/// Finding 11 at the binary: a token pasted on a bad line is not echoed.
#[test]
fn a_config_error_never_echoes_a_pasted_secret() {
    let fx = Fixture::new("");
    let text = fs::read_to_string(&fx.conf).unwrap().replacen("token = ", "token: y0_AgAAAAB-SECRET-", 1);
    fs::write(&fx.conf, text).unwrap();
    for args in [&["check"][..], &["once"], &["status"]] {
        let out = fx.ysync(args);
        assert_eq!(out.status.code(), Some(2));
        assert!(!stderr(&out).contains("SECRET"), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("ysync.conf:1: "), "{}", stderr(&out));
    }
}

/// Finding 24: ysync makes itself non-dumpable, so no core file (and no
/// ptrace by another process of its user, such as a hook) holds the token.
/// The kernel shows it: a non-dumpable process's `/proc` files belong to
/// root, whoever it runs as.
#[test]
fn the_process_holding_the_token_cannot_be_dumped() {
    if skip_unless_root() {
        return;
    }
    let mut fx = Fixture::new("interval = 3600");
    fx.write("a.txt", "a");
    fx.become_nobody();
    let null = std::process::Stdio::null;
    let mut child = fx.command(&["run"]).stdout(null()).stderr(null()).spawn().unwrap();
    let lock = fx.state.with_extension("json.lock");
    let mut waited = 0;
    while !lock.exists() && waited < 1000 {
        std::thread::sleep(Duration::from_millis(10));
        waited += 1;
    }
    let owner = fs::metadata(format!("/proc/{}/environ", child.id())).map(|m| m.uid());
    let _ = child.kill();
    let _ = child.wait();
    assert!(lock.exists(), "ysync started");
    assert_eq!(owner.unwrap(), 0, "running as nobody, yet its /proc files are root's: not dumpable");
}

/// Issue 27, item 6, as the attack: root restores the whole tree into a
/// folder nobody owns, where nobody planted links: one where a folder must
/// go (to a root-only folder), one where a file must go (to a root file
/// that does not exist yet, and one that does). Nothing is written through
/// them; with --force they are kept aside, never followed.
#[test]
fn a_tree_restore_writes_through_no_planted_link() {
    if skip_unless_root() {
        return;
    }
    let fx = Fixture::new("");
    fx.write("etc/cron.d/job", "* * * * * root echo owned\n");
    fx.write("notes.txt", "notes");
    fx.write("passwd", "not root's passwd");
    fx.sync();
    let rootdir = fx.tmp.path().join("rootdir");
    fs::create_dir(&rootdir).unwrap();
    fs::set_permissions(&rootdir, fs::Permissions::from_mode(0o700)).unwrap();
    let victim = fx.tmp.path().join("victim");
    root_secret(&victim, b"root's file");
    let back = fx.tmp.path().join("back");
    nobodys(&back);
    as_nobody(&format!(
        "cd {} && ln -s {} etc && ln -s {}/new notes.txt && ln -s {} passwd",
        back.display(),
        rootdir.display(),
        rootdir.display(),
        victim.display()
    ));
    let out = fx.ysync(&["restore", "--all", "--to", back.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stdout(&out).contains("etc is a symbolic link, where a folder must go"), "{}", stdout(&out));
    assert!(stdout(&out).contains("notes.txt: a different symbolic link is there"), "{}", stdout(&out));
    assert_eq!(fs::read_dir(&rootdir).unwrap().count(), 0, "nothing in root's folder");
    assert_eq!(fs::read(&victim).unwrap(), b"root's file");

    let out = fx.ysync(&["restore", "--all", "--to", back.to_str().unwrap(), "--force"]);
    assert_eq!(out.status.code(), Some(0), "{}\n{}", stdout(&out), stderr(&out));
    assert_eq!(fs::read_dir(&rootdir).unwrap().count(), 0, "nothing in root's folder");
    assert_eq!(fs::read(&victim).unwrap(), b"root's file");
    assert_eq!(fs::read_to_string(back.join("etc/cron.d/job")).unwrap(), "* * * * * root echo owned\n");
    assert_eq!(fs::read_to_string(back.join("passwd")).unwrap(), "not root's passwd");
    let meta = fs::metadata(back.join("etc/cron.d/job")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (NOBODY, NOBODY), "nobody's folder, nobody's files");
    let aside = fs::read_dir(&back).unwrap().map(|e| e.unwrap().path()).find(|p| p.to_string_lossy().contains(".ysync-replaced-")).unwrap();
    for link in ["etc", "notes.txt", "passwd"] {
        assert!(fs::symlink_metadata(aside.join(link)).unwrap().file_type().is_symlink(), "{link} kept aside as the link it was");
    }
}
