//! A temp folder, a config pointing at a fresh emulator, and a way to run
//! the real `ysync` binary against it.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::emulator::FakeDisk;

pub struct Fixture {
    pub emu: FakeDisk,
    pub tmp: tempfile::TempDir,
    pub local: PathBuf,
    pub conf: PathBuf,
    pub state: PathBuf,
    pub remote_dir: String,
    as_nobody: bool,
}

impl Fixture {
    /// Mirrors `<tmp>/local` to `/Backup` with the config lines in `extra`.
    pub fn new(extra: &str) -> Fixture {
        Fixture::with(FakeDisk::start(), "/Backup", extra)
    }

    pub fn with(emu: FakeDisk, remote_dir: &str, extra: &str) -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let local = tmp.path().join("local");
        fs::create_dir(&local).unwrap();
        let conf = tmp.path().join("ysync.conf");
        let state = tmp.path().join("state/ysync.json");
        let text = format!(
            "token = {}\nlocal_dir = {}\nremote_dir = disk:{remote_dir}\napi_url = {}\nstate_file = {}\n{}{extra}\n",
            emu.token(),
            local.display(),
            emu.api_url(),
            state.display(),
            if extra.contains("timeout") { "" } else { "timeout = 10\n" }
        );
        fs::write(&conf, text).unwrap();
        fs::set_permissions(&conf, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        Fixture { emu, tmp, local, conf, state, remote_dir: remote_dir.into(), as_nobody: false }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.local.join(rel)
    }

    pub fn write(&self, rel: &str, data: impl AsRef<[u8]>) {
        let p = self.path(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, data).unwrap();
    }

    pub fn mkdir(&self, rel: &str) {
        fs::create_dir_all(self.path(rel)).unwrap();
    }

    /// The binary under test: this build's, or `YSYNC_TEST_BIN` (run through
    /// `YSYNC_TEST_RUNNER`, e.g. qemu-aarch64-static, when that is set).
    pub fn command(&self, args: &[&str]) -> Command {
        let bin = std::env::var("YSYNC_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_ysync").to_string());
        let mut prefix: Vec<String> = std::env::var("YSYNC_TEST_RUNNER").map(|r| vec![r]).unwrap_or_default();
        if self.as_nobody {
            prefix.splice(0..0, ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"].map(String::from));
        }
        prefix.push(bin);
        let mut c = Command::new(&prefix[0]);
        c.args(&prefix[1..]);
        c.arg("-c").arg(&self.conf).args(args);
        for v in ["YSYNC_TOKEN", "YSYNC_API_URL", "YSYNC_OAUTH_URL", "YSYNC_CONFIG", "RUST_LOG", "JOURNAL_STREAM"] {
            c.env_remove(v);
        }
        c.env("HOME", self.tmp.path());
        c
    }

    pub fn ysync(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// `ysync once`, which must exit 0.
    pub fn sync(&self) -> Output {
        let out = self.ysync(&["once"]);
        assert_eq!(out.status.code(), Some(0), "ysync once failed:\n{}", stderr(&out));
        out
    }

    /// The remote folder equals the local one, byte for byte.
    pub fn assert_mirror(&self) {
        let remote = self.emu.tree(&self.remote_dir);
        let local = local_tree(&self.local);
        if remote != local {
            let names = |t: &BTreeMap<String, Option<Vec<u8>>>| t.keys().cloned().collect::<Vec<_>>();
            panic!(
                "remote differs from local\nonly remote: {:?}\nonly local: {:?}\ndiffering content: {:?}",
                names(&remote).into_iter().filter(|k| !local.contains_key(k)).collect::<Vec<_>>(),
                names(&local).into_iter().filter(|k| !remote.contains_key(k)).collect::<Vec<_>>(),
                local.iter().filter(|(k, v)| remote.get(*k).is_some_and(|r| r != *v)).map(|(k, _)| k).collect::<Vec<_>>(),
            );
        }
        assert_eq!(self.emu.token_leaks(), 0, "the token was sent to an upload link");
    }

    /// Appends lines to the config file.
    pub fn configure(&self, lines: &str) {
        let text = fs::read_to_string(&self.conf).unwrap();
        fs::write(&self.conf, format!("{text}{lines}\n")).unwrap();
    }

    /// The state's first line (everything but the file records), with the
    /// journal applied.
    pub fn state_json(&self) -> serde_json::Value {
        self.state_now().0
    }

    /// The state's file records: path → [size, mtime, ctime, inode, sha256, md5].
    pub fn state_files(&self) -> BTreeMap<String, serde_json::Value> {
        self.state_now().1
    }

    /// The snapshot with the journal replayed, by this test's own reading
    /// of the format (README, "State"), not by ysync's code.
    fn state_now(&self) -> (serde_json::Value, BTreeMap<String, serde_json::Value>) {
        use serde_json::{Value, json};
        let text = fs::read_to_string(&self.state).unwrap_or_default();
        let mut lines = text.lines();
        let mut head: Value = lines.next().map_or(json!({"dirs": [], "pending": {}}), |l| serde_json::from_str(l).unwrap());
        let mut files: BTreeMap<String, Value> = lines.map(|l| serde_json::from_str::<(String, Value)>(l).unwrap()).collect();
        let mut dirs: Vec<String> = serde_json::from_value(head["dirs"].take()).unwrap();
        let mut pending: BTreeMap<String, Value> = serde_json::from_value(head["pending"].take()).unwrap_or_default();
        let mut mkdirs: Vec<String> = serde_json::from_value(head["mkdirs"].take()).unwrap_or_default();
        let journal = fs::read_to_string(self.state.with_extension("json.journal")).unwrap_or_default();
        let gone = |p: &str, path: &str| p == path || p.starts_with(&format!("{path}/"));
        for line in journal.lines() {
            let Ok(Value::Object(change)) = serde_json::from_str::<Value>(line) else { continue }; // a torn last line
            let (kind, v) = change.into_iter().next().unwrap();
            let path = v["path"].as_str().unwrap_or_default().to_string();
            match kind.as_str() {
                "put" => {
                    pending.remove(&path);
                    files.insert(path, v["rec"].clone());
                }
                "dir" => {
                    mkdirs.retain(|p| *p != path);
                    dirs.push(path);
                }
                "mkdir" => mkdirs.push(path),
                "forget" => {
                    files.retain(|p, _| !gone(p, &path));
                    dirs.retain(|p| !gone(p, &path));
                    pending.retain(|p, _| !gone(p, &path));
                    mkdirs.retain(|p| !gone(p, &path));
                }
                "pending" => drop(pending.insert(path, v["pending"].clone())),
                "moving" | "last" | "mounts" | "reconciled" | "md5_guard" => head[kind] = v,
                "seal" => {}
                other => panic!("unknown journal line {other}: {line}"),
            }
        }
        head["dirs"] = json!(dirs);
        head["pending"] = json!(pending);
        head["mkdirs"] = json!(mkdirs);
        (head, files)
    }

    /// Whether the saved state ends with a seal, so that the next idle
    /// `once` does not read the whole state.
    pub fn state_is_sealed(&self) -> bool {
        let journal = fs::read_to_string(self.state.with_extension("json.journal")).unwrap_or_default();
        match journal.lines().last() {
            Some(last) => last.starts_with("{\"seal\":"),
            None => self.state_json_head().get("seal").is_some(),
        }
    }

    fn state_json_head(&self) -> serde_json::Value {
        let text = fs::read_to_string(&self.state).unwrap();
        serde_json::from_str(text.lines().next().unwrap()).unwrap()
    }

    /// Hands the whole fixture to `nobody` so that permission bits bite
    /// even when the tests run as root; `command` then runs ysync as nobody.
    pub fn become_nobody(&mut self) {
        if !is_root() {
            return;
        }
        let status = Command::new("chown").args(["-R", "65534:65534"]).arg(self.tmp.path()).status().unwrap();
        assert!(status.success());
        fs::set_permissions(self.tmp.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        self.as_nobody = true;
    }

    pub fn remote(&self, rel: &str) -> String {
        format!("{}/{rel}", self.remote_dir.trim_end_matches('/'))
    }
}

/// Sets a file's modification time (to put it back, or to age it).
pub fn set_mtime(path: &Path, t: std::time::SystemTime) {
    fs::File::options().write(true).open(path).unwrap().set_times(fs::FileTimes::new().set_modified(t)).unwrap();
}

pub fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Files and folders under `root` (relative paths; folders map to `None`).
pub fn local_tree(root: &Path) -> BTreeMap<String, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let rel = e.path().strip_prefix(root).unwrap().to_str().unwrap().to_string();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                out.insert(rel, None);
                stack.push(e.path());
            } else if ft.is_file() {
                out.insert(rel, Some(fs::read(e.path()).unwrap()));
            }
        }
    }
    out
}

/// Deterministic, incompressible-looking bytes.
pub fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A small seeded generator; tests print the seed so a failure can be replayed.
pub struct Rng(pub u64);

impl Rng {
    /// From `YSYNC_TEST_SEED`, else from the clock.
    pub fn from_env() -> Rng {
        let seed = std::env::var("YSYNC_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 % 1_000_000_007
        });
        println!("seed {seed} (replay with YSYNC_TEST_SEED={seed})");
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() { None } else { Some(&items[self.below(items.len() as u64) as usize]) }
    }
}

/// One random edit of the local tree: new, changed, renamed or deleted files
/// and folders. `anchor.txt` always stays, so the folder is never empty.
pub fn mutate(fx: &Fixture, rng: &mut Rng, step: usize) {
    let tree = local_tree(&fx.local);
    let files: Vec<&String> = tree.iter().filter(|(k, v)| v.is_some() && *k != "anchor.txt").map(|(k, _)| k).collect();
    let dirs: Vec<&String> = tree.iter().filter(|(_, v)| v.is_none()).map(|(k, _)| k).collect();
    let size = |rng: &mut Rng| if rng.below(8) == 0 { 700_000 + rng.below(900_000) as usize } else { rng.below(40_000) as usize };
    let in_some_dir = |rng: &mut Rng, name: String| match rng.pick(&dirs) {
        Some(d) if rng.below(3) > 0 => format!("{d}/{name}"),
        _ => name,
    };
    match rng.below(8) {
        0 | 1 => {
            let n = size(rng);
            let name = format!("new {step}+{}.bin", rng.below(100));
            let p = in_some_dir(rng, name);
            fx.write(&p, bytes(n, rng.next()));
        }
        2 => {
            if let Some(f) = rng.pick(&files) {
                let len = tree[*f].as_ref().unwrap().len();
                let n = if rng.below(2) == 0 { len } else { size(rng) };
                fx.write(f, bytes(n, rng.next()));
            }
        }
        3 => {
            if let Some(f) = rng.pick(&files) {
                let to = in_some_dir(rng, format!("renamed {step}.bin"));
                let _ = fs::rename(fx.path(f), fx.path(&to));
            }
        }
        4 => {
            if let Some(f) = rng.pick(&files) {
                fs::remove_file(fx.path(f)).unwrap();
            }
        }
        5 => {
            if let Some(d) = rng.pick(&dirs) {
                fs::remove_dir_all(fx.path(d)).unwrap();
            }
        }
        6 => {
            if let Some(d) = rng.pick(&dirs)
                && !d.contains('/')
            {
                let _ = fs::rename(fx.path(d), fx.path(&format!("moved dir {step}")));
            }
        }
        _ => fx.mkdir(&in_some_dir(rng, format!("dir {step}"))),
    }
}

/// The state (snapshot, after a clean run) describes exactly what is remote.
pub fn assert_state_matches_remote(fx: &Fixture) {
    use sha2::Digest;
    assert!(
        fx.state_is_sealed(),
        "a clean run ends with a seal: {}\n{}",
        fx.state_json(),
        std::fs::read_to_string(fx.state.with_extension("json.journal"))
            .unwrap_or_default()
            .lines()
            .rev()
            .take(5)
            .collect::<Vec<_>>()
            .join("\n")
    );
    let state = fx.state_json();
    assert_eq!(state["pending"], serde_json::json!({}), "unresolved uploads");
    assert_eq!(state["mkdirs"], serde_json::json!([]), "unconfirmed folders");
    assert_eq!(state["moving"], serde_json::Value::Null, "an unfinished move");
    for (path, rec) in fx.state_files() {
        let remote = fx.emu.file(&fx.remote(&path)).unwrap_or_else(|| panic!("{path} is in the state but not on the Disk"));
        let sha: String = sha2::Sha256::digest(&remote).iter().map(|b| format!("{b:02x}")).collect();
        // A record is [size, mtime, ctime, inode, sha256, md5].
        assert_eq!(rec[4].as_str().unwrap(), sha, "{path}: the state records other content than the Disk has");
    }
}

/// Runs `cmd` to its end, but never longer than `limit`: a run that takes
/// longer is killed and the test fails, naming what it printed (no hangs).
pub fn output_within(mut cmd: Command, limit: std::time::Duration) -> Output {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let readers = (
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = out.read_to_end(&mut v);
            v
        }),
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = err.read_to_end(&mut v);
            v
        }),
    );
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let (stdout, stderr) = (readers.0.join().unwrap(), readers.1.join().unwrap());
    match status {
        Some(status) => Output { status, stdout, stderr },
        None => panic!("still running after {limit:?}: a hang\n{}", String::from_utf8_lossy(&stderr)),
    }
}

impl Fixture {
    /// `ysync once`, killed (SIGKILL) by the emulator at its `request`-th
    /// request from now, before or `after` the Disk did the work.
    pub fn once_killed_at(&self, request: u64, after: bool) {
        let victim = self.emu.kill_at(crate::emulator::KillAt { request, after });
        let null = std::process::Stdio::null;
        let mut child = self.command(&["once"]).stdout(null()).stderr(null()).spawn().unwrap();
        victim.store(child.id(), std::sync::atomic::Ordering::SeqCst);
        let status = child.wait().unwrap();
        assert_eq!(status.code(), None, "ysync was not killed at request {request} ({status})");
    }

    /// `ysync ARGS`, failing the test if it runs longer than `secs`.
    pub fn ysync_within(&self, args: &[&str], secs: u64) -> Output {
        output_within(self.command(args), std::time::Duration::from_secs(secs))
    }
}
