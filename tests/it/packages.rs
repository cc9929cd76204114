//! The init scripts of the boxes we cannot boot here, run for real against
//! stand-ins of what calls them (`tests/init/`): OpenWrt's rc.common with
//! procd, Entware's rc.func, OpenRC's openrc-run. Each stand-in records
//! what the script asked for and, where the real one would start ysync,
//! starts it, so the test sees the folder mirrored.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::Fixture;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn bin() -> String {
    std::env::var("YSYNC_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_ysync").to_string())
}

/// A fixture whose config names no state_file: the init script's
/// STATE_DIRECTORY decides where the state goes.
fn fixture_without_state_file() -> Fixture {
    let fx = Fixture::new("");
    let text: String =
        fs::read_to_string(&fx.conf).unwrap().lines().filter(|l| !l.starts_with("state_file")).map(|l| format!("{l}\n")).collect();
    fs::write(&fx.conf, text).unwrap();
    fx.write("photos/a.jpg", "a picture");
    fx.write("b.txt", "b");
    fx
}

/// Waits (at most 60 s) until the Disk mirrors the folder, then kills `pid`.
fn mirrored_then_kill(fx: &Fixture, pid_file: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while fx.emu.tree(&fx.remote_dir) != crate::support::local_tree(&fx.local) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let pid = fs::read_to_string(pid_file).unwrap();
    Command::new("kill").arg(pid.trim()).status().unwrap();
    fx.assert_mirror();
}

fn state_files_in(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().path()).filter(|p| p.to_string_lossy().ends_with(".state.json")).collect())
        .unwrap_or_default()
}

#[test]
fn openwrt_procd_script_runs_ysync_supervised_with_its_state_off_the_ram_disk() {
    let fx = fixture_without_state_file();
    let t = fx.tmp.path();
    let (record, log, state_dir) = (t.join("procd"), t.join("logread"), t.join("overlay/ysync"));
    let run = |conf: &Path| {
        Command::new("sh")
            .arg(root().join("tests/init/rc.common"))
            .arg(root().join("contrib/openwrt/ysync"))
            .arg("start")
            .env("PROCD_RECORD", &record)
            .env("PROCD_LOG", &log)
            .env("YSYNC_TEST_PROG", bin())
            .env("YSYNC_TEST_CONF", conf)
            .env("YSYNC_TEST_STATE_DIR", &state_dir)
            .output()
            .unwrap()
    };
    let out = run(&fx.conf);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    mirrored_then_kill(&fx, &record.with_extension("pid"));
    let asked = fs::read_to_string(&record).unwrap();
    let conf = fx.conf.display();
    for line in [
        format!("set_param command {} -c {conf} run", bin()),
        format!("set_param env STATE_DIRECTORY={}", state_dir.display()),
        "set_param respawn 3600 30 5".into(),
        "set_param stdout 1".into(),
        "set_param stderr 1".into(),
        format!("set_param file {conf}"),
    ] {
        assert!(asked.lines().any(|l| l == line), "procd was not asked `{line}`:\n{asked}");
    }
    assert_eq!(state_files_in(&state_dir).len(), 1, "the state is in STATE_DIR");
    assert!(fs::read_to_string(&log).unwrap().contains("uploaded photos/a.jpg"), "the log went to procd (logread)");

    // No config: a message, and procd is not asked to start anything.
    fs::remove_file(&record).unwrap();
    let out = run(&t.join("missing.conf"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.conf is missing: copy ysync.conf.example there"));
    assert!(!record.exists());
}

#[test]
fn entware_script_starts_ysync_through_rc_func_with_paths_under_opt() {
    let fx = fixture_without_state_file();
    let t = fx.tmp.path();
    // /opt of the box, here: the script and rc.func in opt/etc/init.d, the
    // binary in opt/bin, the config in opt/etc.
    let opt = t.join("opt");
    for d in ["etc/init.d", "bin"] {
        fs::create_dir_all(opt.join(d)).unwrap();
    }
    let script = fs::read_to_string(root().join("contrib/entware/S99ysync")).unwrap().replace("/opt", &opt.display().to_string());
    fs::write(opt.join("etc/init.d/S99ysync"), script).unwrap();
    fs::copy(root().join("tests/init/rc.func"), opt.join("etc/init.d/rc.func")).unwrap();
    fs::copy(&fx.conf, opt.join("etc/ysync.conf")).unwrap();
    fs::set_permissions(opt.join("etc/ysync.conf"), std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink(bin(), opt.join("bin/ysync")).unwrap();
    let record = t.join("rcfunc");
    let out = Command::new("sh").arg(opt.join("etc/init.d/S99ysync")).arg("start").env("RCFUNC_RECORD", &record).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    mirrored_then_kill(&fx, &record.with_extension("pid"));
    let vars = fs::read_to_string(&record).unwrap();
    let opt = opt.display();
    for line in
        ["ENABLED=yes", "PROCS=ysync", &format!("ARGS=-c {opt}/etc/ysync.conf run"), &format!("STATE_DIRECTORY={opt}/var/lib/ysync")]
    {
        assert!(vars.lines().any(|l| l == line), "rc.func did not get `{line}`:\n{vars}");
    }
    assert_eq!(state_files_in(Path::new(&format!("{opt}/var/lib/ysync"))).len(), 1, "the state is under /opt, not in RAM");
}

#[test]
fn openrc_instances_by_symlink_each_take_their_own_config() {
    let t = tempfile::tempdir().unwrap();
    let run = |svc: &str, config: Option<&str>| {
        let link = t.path().join(svc);
        if !link.exists() {
            std::os::unix::fs::symlink(root().join("contrib/openrc/ysync"), &link).unwrap();
        }
        let mut c = Command::new("sh");
        c.arg(root().join("tests/init/openrc-run")).arg(&link).env("RC_SVCNAME", svc).env_remove("YSYNC_CONFIG");
        if let Some(conf) = config {
            c.env("YSYNC_CONFIG", conf);
        }
        String::from_utf8(c.output().unwrap().stdout).unwrap()
    };
    let conf = t.path().join("some.conf");
    fs::write(&conf, "").unwrap();
    let plain = run("ysync", Some(conf.to_str().unwrap()));
    assert!(plain.contains(&format!("command=/usr/local/bin/ysync -c {} run", conf.display())), "{plain}");
    assert!(plain.contains("supervisor=supervise-daemon") && plain.contains("respawn=30 5 1800"), "{plain}");
    assert!(plain.contains("checkpath --directory --owner ysync --mode 0700 /var/lib/ysync"), "{plain}");
    // ysync.photos reads /etc/ysync/photos.conf; missing here, so it says so and does not start.
    let photos = run("ysync.photos", None);
    assert!(photos.contains("eerror /etc/ysync/photos.conf is missing") && photos.contains("start_pre failed"), "{photos}");
    // With the config there (conf.d may name another), it runs that one.
    let docs = run("ysync.documents", Some(conf.to_str().unwrap()));
    assert!(docs.contains("name=ysync (documents)") && docs.contains(&format!("-c {} run", conf.display())), "{docs}");
}

#[test]
fn a_systemd_instance_and_the_cron_example_keep_two_folders_apart() {
    // Two configs in one folder, as /etc/ysync/ holds them: each gets its own
    // state file and lock in the one STATE_DIRECTORY, and both run at once.
    let a = fixture_without_state_file();
    let b = fixture_without_state_file();
    b.write("only-in-b.txt", "b");
    let states = tempfile::tempdir().unwrap();
    let etc = tempfile::tempdir().unwrap();
    for (name, fx) in [("photos", &a), ("documents", &b)] {
        fs::copy(&fx.conf, etc.path().join(format!("{name}.conf"))).unwrap();
    }
    let start = |name: &str| {
        Command::new(bin())
            .arg("-c")
            .arg(etc.path().join(format!("{name}.conf")))
            .arg("once")
            .env("STATE_DIRECTORY", states.path())
            .env_remove("YSYNC_TOKEN")
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let (mut p, mut d) = (start("photos"), start("documents"));
    assert!(p.wait().unwrap().success() && d.wait().unwrap().success(), "neither waited for the other's lock");
    a.assert_mirror();
    b.assert_mirror();
    let mut names: Vec<String> =
        state_files_in(states.path()).iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names[0].starts_with("documents-") && names[1].starts_with("photos-"), "{names:?}");
    // The template and the cron example use exactly this layout.
    let unit = fs::read_to_string(root().join("contrib/systemd/ysync@.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/ysync -c /etc/ysync/%i.conf run") && unit.contains("StateDirectory=ysync"));
    let cron = fs::read_to_string(root().join("contrib/cron/ysync.cron")).unwrap();
    assert!(cron.contains("-c /etc/ysync/photos.conf -q once") && cron.contains("-c /etc/ysync/documents.conf -q once"));
}

/// The .deb into a temporary root (dpkg --root, its scripts run without a
/// chroot with DPKG_ROOT set): install, upgrade with an edited config, purge.
#[test]
fn the_deb_installs_upgrades_without_touching_the_config_and_purges() {
    if Command::new("dpkg-deb").arg("--version").output().is_err() {
        crate::install::missing("dpkg-deb");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let debs = t.path().join("debs");
    let deb = |version: &str| {
        let out = Command::new("sh").arg(root().join("build/deb.sh")).args([&bin(), "amd64", version]).arg(&debs).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let (v1, v2) = (deb("0.1.0"), deb("0.1.1"));
    let r = t.path().join("root");
    for d in ["var/lib/dpkg/info", "var/lib/dpkg/updates", "etc"] {
        fs::create_dir_all(r.join(d)).unwrap();
    }
    for (f, text) in [
        ("var/lib/dpkg/status", ""),
        ("var/lib/dpkg/available", ""),
        ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
        ("etc/group", "root:x:0:\n"),
        ("etc/shadow", "root:*:19000:0:99999:7:::\n"),
        ("etc/gshadow", "root:*::\n"),
    ] {
        fs::write(r.join(f), text).unwrap();
    }
    // The root has no package database of its own: passwd is "missing".
    let dpkg = |args: &[&str]| {
        let out = Command::new("dpkg")
            .arg(format!("--root={}", r.display()))
            .args(["--force-script-chrootless", "--force-depends"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "dpkg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    use std::os::unix::fs::MetadataExt;
    let said = dpkg(&["-i", &v1]);
    assert!(said.contains("set token (runuser -u ysync -- ysync login), local_dir and remote_dir in /etc/ysync.conf"), "{said}");
    let passwd = fs::read_to_string(r.join("etc/passwd")).unwrap();
    let user = passwd.lines().find(|l| l.starts_with("ysync:")).expect("the ysync system user was created");
    assert!(user.ends_with(":/var/lib/ysync:/usr/sbin/nologin"), "{user}");
    let uid: u32 = user.split(':').nth(2).unwrap().parse().unwrap();
    assert!(uid < 1000, "a system user: {user}");
    let conf = r.join("etc/ysync.conf");
    let m = fs::metadata(&conf).unwrap();
    assert_eq!((m.mode() & 0o777, m.uid()), (0o600, uid), "the config, for the token, readable by ysync alone");
    let state = fs::metadata(r.join("var/lib/ysync")).unwrap();
    assert_eq!((state.mode() & 0o777, state.uid()), (0o700, uid));
    for f in
        ["usr/bin/ysync", "usr/share/man/man1/ysync.1.gz", "usr/lib/systemd/system/ysync.service", "usr/lib/systemd/system/ysync@.service"]
    {
        assert!(r.join(f).exists(), "{f}");
    }
    let unit = fs::read_to_string(r.join("usr/lib/systemd/system/ysync@.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/bin/ysync -c /etc/ysync/%i.conf run"), "{unit}");
    let v = Command::new(r.join("usr/bin/ysync")).arg("-V").output().unwrap();
    assert!(String::from_utf8_lossy(&v.stdout).starts_with("ysync "));

    // The user's settings survive an upgrade, owner and mode included.
    fs::write(&conf, "token = mine\n").unwrap();
    fs::write(r.join("var/lib/ysync/photos-1.state.json"), "{}").unwrap();
    dpkg(&["-i", &v2]);
    assert_eq!(fs::read_to_string(&conf).unwrap(), "token = mine\n", "an upgrade never overwrites /etc/ysync.conf");
    assert_eq!(fs::metadata(&conf).unwrap().uid(), uid);
    assert!(r.join("var/lib/ysync/photos-1.state.json").exists(), "nor the state");
    let status = fs::read_to_string(r.join("var/lib/dpkg/status")).unwrap();
    assert!(status.contains("Version: 0.1.1"), "{status}");

    // Purge: the program, the config and the state go; the user stays.
    dpkg(&["--purge", "ysync"]);
    for gone in ["usr/bin/ysync", "etc/ysync.conf", "var/lib/ysync", "usr/lib/systemd/system/ysync.service"] {
        assert!(!r.join(gone).exists(), "{gone} is left after purge");
    }
    assert!(fs::read_to_string(r.join("etc/passwd")).unwrap().contains("ysync:"));
}

/// The container image (contrib/container/Dockerfile), built and run by
/// podman as a user would run it: the folder mounted read-only, the state in
/// a volume, the config as a secret file. `make test-image` builds the
/// static binary and runs this with YSYNC_TEST_IMAGE=1 (make test does when
/// podman is installed; CI installs it).
#[test]
fn the_container_image_is_small_and_mirrors_a_read_only_folder() {
    if std::env::var_os("YSYNC_TEST_IMAGE").is_none() {
        println!("skipped: make test-image runs it (it needs podman and the static binary)");
        return;
    }
    let podman = |args: &[&str]| {
        let out = Command::new("podman").args(args).output().expect("podman runs");
        assert!(out.status.success(), "podman {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let tag = "localhost/ysync:it";
    podman(&["build", "-q", "-f", "contrib/container/Dockerfile", "-t", tag, root().to_str().unwrap()]);
    let size: u64 = podman(&["image", "inspect", "--format", "{{.Size}}", tag]).parse().unwrap();
    assert!(size <= 3_000_000, "the image is {size} bytes, over 3 MB");
    let user = podman(&["image", "inspect", "--format", "{{.Config.User}}", tag]);
    assert_eq!(user, "10001:10001", "not root");

    let fx = fixture_without_state_file();
    let conf = fx.tmp.path().join("secret.conf");
    let text = fs::read_to_string(&fx.conf).unwrap().replace(&format!("local_dir = {}", fx.local.display()), "local_dir = /data");
    fs::write(&conf, text).unwrap();
    Command::new("chown").arg("10001").arg(&conf).status().unwrap();
    let volume = format!("ysync-it-{}", std::process::id());
    // This machine's sandbox lets no process raise a limit, so the limits
    // are lowered rather than set (crun and runc both set them); runc copes
    // with its cgroups.
    let run = |args: &[&str]| {
        let mut all =
            vec!["--runtime", "runc", "run", "--rm", "--network", "host", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"];
        let data = format!("{}:/data:ro", fx.local.display());
        let secret = format!("{}:/run/secrets/ysync.conf:ro", conf.display());
        let state = format!("{volume}:/state");
        all.extend(["-v", &data, "-v", &secret, "-v", &state, tag]);
        all.extend(args);
        Command::new("podman").args(&all).output().unwrap()
    };
    let out = run(&["once"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    fx.assert_mirror();
    fx.write("photos/new.jpg", "new");
    let out = run(&["once"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    fx.assert_mirror();
    let status = run(&["status", "--json"]);
    let s: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(s["synced"]["files"], 3, "the state outlived the container, in its volume: {s}");
    assert!(s["state_file"].as_str().unwrap().starts_with("/state/"), "{s}");
    let _ = Command::new("podman").args(["volume", "rm", "-f", &volume]).output();
}
