//! A generated test of the review's symlink race (finding 3): between the
//! scan and the uploads, and while the walk runs, files and folders of
//! `local_dir` are swapped for symbolic links to a secret outside it, for
//! FIFOs and devices, and for other files. Whatever the seed, nothing from
//! outside `local_dir` reaches the Disk (no byte of content, no name), and
//! every cycle ends: a FIFO or a device is never opened to be read.
//! `YSYNC_TEST_SEED=S cargo test --bin ysync cycle::swaps` replays one seed,
//! `YSYNC_PROPS_CASES=N` runs more.

use std::cell::RefCell;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use super::*;
use crate::plan::props::{Rng, cases};
use crate::retry::clock;
use crate::testkit::MemDisk;

/// Every local file's bytes start so; the secrets' never do.
const LOCAL: &[u8] = b"LOCAL:";
const SECRET: &[u8] = b"root-only secret";

/// Everything below `root`, folders before what is in them.
fn paths(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(list) = fs::read_dir(&d) else { continue };
        let mut here: Vec<PathBuf> = list.filter_map(|e| e.ok().map(|e| e.path())).collect();
        here.sort();
        for p in here {
            if fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) {
                todo.push(p.clone());
            }
            out.push(p);
        }
    }
    out
}

/// One swap, as a share user would make it: the path taken away and put
/// back as something else.
fn swap(rng: &mut Rng, root: &Path, outside: &Path) {
    let all = paths(root);
    let Some(victim) = rng.pick(&all).cloned() else { return };
    let is_dir = fs::symlink_metadata(&victim).is_ok_and(|m| m.is_dir());
    let aside = victim.with_extension("aside");
    if fs::rename(&victim, &aside).is_err() {
        return;
    }
    let made = match rng.below(6) {
        // A link to the secret file, or to the folder of secrets.
        0 | 1 => symlink(if is_dir { outside.join("dir") } else { outside.join("secret.txt") }, &victim),
        2 => symlink(outside.join("dir/secret-name.txt"), &victim),
        3 => crate::fsutil::sys::make_fifo(&victim),
        // A device (as root), or a link to one.
        4 if crate::fsutil::sys::euid() == 0 => crate::fsutil::sys::make_zero_device(&victim),
        4 => symlink("/dev/zero", &victim),
        // Another regular file of the tree moved over it (its own bytes).
        _ => fs::rename(&aside, &victim),
    };
    if made.is_err() {
        let _ = fs::rename(&aside, &victim);
    }
}

fn write_local(p: &Path, n: u64) {
    let mut bytes = LOCAL.to_vec();
    bytes.extend(std::iter::repeat_n(b'x', n as usize % 3000));
    fs::write(p, bytes).unwrap();
}

/// One seed: `Err` says what leaked.
fn one_seed(seed: u64) -> Result<(), String> {
    clock::warp();
    let mut rng = Rng::new(seed);
    let base = tempfile::tempdir().unwrap();
    let (root, outside) = (base.path().join("local"), base.path().join("outside"));
    fs::create_dir_all(outside.join("dir")).unwrap();
    // As large as the local files may be, so that a size check alone would
    // not tell them apart.
    fs::write(outside.join("secret.txt"), SECRET.repeat(200)).unwrap();
    fs::write(outside.join("dir/secret-name.txt"), SECRET.repeat(3)).unwrap();
    for i in 0..2 + rng.below(14) {
        let dir = match rng.below(3) {
            0 => root.clone(),
            1 => root.join(format!("d{}", rng.below(3))),
            _ => root.join(format!("d{}/e{}", rng.below(3), rng.below(2))),
        };
        fs::create_dir_all(&dir).unwrap();
        write_local(&dir.join(format!("f{i}.txt")), rng.next());
    }
    let text = format!(
        "token = t\nlocal_dir = {}\nremote_dir = /r\nstate_file = {}/state.json\nmax_delete = 100%\n",
        root.display(),
        base.path().display()
    );
    let cfg = crate::config::parse(Path::new("/etc/y.conf"), &text, &|_| None).unwrap();
    let mut disk = MemDisk::with_folder("/r");
    let mut store = Store::open(&cfg.state_file).unwrap();
    // Half the seeds sync first, so that the swaps meet files to hash
    // (metadata changes), to move and to replace, not only new ones.
    if rng.chance(50) {
        Cycle::new(&cfg, &mut disk, &mut store).run(false);
        for p in paths(&root).iter().filter(|p| p.is_file()) {
            match rng.below(3) {
                0 => write_local(p, rng.next()),
                1 => fs::File::options().write(true).open(p).unwrap().set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap(),
                _ => {}
            }
        }
    }
    // Swaps while the walk reads folders, and before calls to the Disk.
    let swaps = Rc::new(RefCell::new(Rng::new(rng.next())));
    let (walk_every, call_every) = (1 + rng.below(4), 1 + rng.below(6));
    {
        let (swaps, root, outside) = (swaps.clone(), root.clone(), outside.clone());
        let mut reads = 0;
        crate::scan::tests::on_read(move |_, _| {
            reads += 1;
            if reads % walk_every == 0 {
                swap(&mut swaps.borrow_mut(), &root, &outside);
            }
        });
    }
    {
        let (swaps, root, outside) = (swaps.clone(), root.clone(), outside.clone());
        let mut calls = 0;
        disk.before_call = Some(Box::new(move |_| {
            calls += 1;
            if calls % call_every == 0 {
                swap(&mut swaps.borrow_mut(), &root, &outside);
            }
        }));
    }
    for _ in 0..3 {
        Cycle::new(&cfg, &mut disk, &mut store).run(false);
    }
    crate::scan::tests::no_hook();
    for (path, bytes) in &disk.files {
        if path.contains("secret") {
            return Err(format!("a name from outside local_dir reached the Disk: {path}"));
        }
        if !bytes.starts_with(LOCAL) {
            return Err(format!(
                "{path} on the Disk holds bytes that are not a local file's: {:?}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(40)])
            ));
        }
    }
    if let Some(d) = disk.dirs.iter().find(|d| d.contains("secret")) {
        return Err(format!("a folder from outside local_dir reached the Disk: {d}"));
    }
    Ok(())
}

#[test]
fn files_and_folders_swapped_under_a_cycle_never_bring_in_what_is_outside() {
    let (n, first) = cases(300);
    for seed in first..first.wrapping_add(n) {
        // Each seed in a thread of its own, with a deadline: a hang (a FIFO
        // opened to be read) fails the test instead of holding it.
        let (done, wait) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = done.send(std::panic::catch_unwind(|| one_seed(seed)));
        });
        match wait.recv_timeout(Duration::from_secs(60)) {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(why))) => panic!("seed {seed}: {why}\nreplay: YSYNC_TEST_SEED={seed} cargo test --bin ysync cycle::swaps"),
            Ok(Err(_)) => panic!("seed {seed} panicked\nreplay: YSYNC_TEST_SEED={seed} cargo test --bin ysync cycle::swaps"),
            Err(_) => {
                panic!("seed {seed}: still running after 60 s (a hang)\nreplay: YSYNC_TEST_SEED={seed} cargo test --bin ysync cycle::swaps")
            }
        }
    }
    println!("property swaps: {n} seeds, seed {first}");
}
