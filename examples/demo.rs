//! `make demo`: mirrors a sample folder into the bundled emulator with the
//! real ysync binary, changes it, mirrors again, and shows the fake Disk.
//!
//!     cargo run --example demo -- target/release/ysync

// An example uses a part of the emulator; the tests use all of it.
#[allow(dead_code)]
#[path = "../tests/emulator/mod.rs"]
mod emulator;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let ysync = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "target/release/ysync".into()));
    let ysync = fs::canonicalize(&ysync).unwrap_or_else(|_| panic!("{} not found; run `make build` first", ysync.display()));
    let work = std::env::current_dir().unwrap().join("target/demo");
    let _ = fs::remove_dir_all(&work);
    let local = work.join("Photos");
    let disk = emulator::FakeDisk::start();

    write(&local, "2024/summer/beach+sunset.jpg", "fake jpeg bytes");
    write(&local, "2024/summer/notes: day 1.txt", "a colon, a space and a plus survive");
    write(&local, "2024/Зима/ёлка.jpg", "Cyrillic names too");
    write(&local, "100% done.txt", "percent signs too");
    fs::create_dir_all(local.join("empty album")).unwrap();
    let conf = work.join("ysync.conf");
    fs::write(
        &conf,
        format!(
            "token = {}\nlocal_dir = {}\nremote_dir = disk:/Backups/Photos\napi_url = {}\nstate_file = {}\n",
            disk.token(),
            local.display(),
            disk.api_url(),
            work.join("state.json").display()
        ),
    )
    .unwrap();
    // The config holds the token: keep it private, as ysync asks.
    fs::set_permissions(&conf, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();

    step(&ysync, &conf, &disk, "1. first sync of a fresh folder");
    write(&local, "2024/summer/beach+sunset.jpg", "edited jpeg bytes, longer than before");
    write(&local, "new.txt", "a new file");
    fs::remove_dir_all(local.join("2024/Зима")).unwrap();
    step(&ysync, &conf, &disk, "2. one file edited, one added, one folder deleted");
    step(&ysync, &conf, &disk, "3. nothing changed: an idle cycle");
    println!("Config and state are in {}; the sample folder is {}.", work.display(), local.display());
}

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

fn step(ysync: &Path, conf: &Path, disk: &emulator::FakeDisk, title: &str) {
    println!("=== {title}\n$ ysync -c {} once", conf.display());
    disk.reset_counts();
    let status = Command::new(ysync).arg("-c").arg(conf).arg("once").env_remove("RUST_LOG").status().unwrap();
    println!("exit status {}; HTTP requests: {} {:?}", status.code().unwrap_or(-1), disk.total_requests(), disk.counts());
    println!("fake Disk now:\n{}", disk.dump());
    assert!(status.success(), "ysync failed");
}
