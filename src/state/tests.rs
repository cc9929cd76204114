use std::fs::{self, OpenOptions};
use std::io::Write;

use super::snapshot::fast_line;
use super::*;
use crate::fsutil::suffixed;
use crate::scan::Stat;

fn rec(n: u64) -> FileRec {
    FileRec { stat: Stat { size: n, mtime_ns: 1, ctime_ns: 2, ino: 3 }, sha256: Hex([0xab; 32]), md5: Hex([0xcd; 16]) }
}

#[test]
fn the_seal_is_read_back_without_loading_and_any_later_change_breaks_it() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("s.json");
    let mut s = State::new("/r");
    assert_eq!(s.seal(), None, "a fresh state must list the Disk first");
    s.dirs.insert(String::new());
    s.files.insert("a".into(), rec(1));
    let sealed = s.seal().unwrap();

    let mut store = Store::open(&p).unwrap();
    assert_eq!(store.read_seal(), None, "nothing saved yet");
    store.write_seal(sealed, 0).unwrap();
    assert_eq!(store.read_seal(), None, "a journal without its snapshot");
    store.save(&s).unwrap();
    assert_eq!(store.read_seal(), Some(sealed), "from the snapshot");
    store.append(&[Change::Put { path: "b".into(), rec: rec(2) }], false).unwrap();
    assert_eq!(store.read_seal(), None, "a change after the seal");
    s.files.insert("b".into(), rec(2));
    s.reconciled = 77;
    store.write_seal(s.seal().unwrap(), 77).unwrap();
    assert_eq!(store.read_seal(), s.seal(), "from the journal");
    assert_eq!(store.sealed_reconciled(), 77, "with the time of the last reconcile");
    assert_ne!(s.seal(), Some(sealed));
    assert_eq!(store.read("/r").unwrap(), s);
    assert_eq!(store.seal(), s.seal(), "load knows the seal too");

    // A torn line after the seal: it no longer describes the files.
    OpenOptions::new().append(true).open(suffixed(&p, ".journal")).unwrap().write_all(b"{\"put\":{\"pa").unwrap();
    assert_eq!(store.read_seal(), None);
    // Neither does anything while an upload is unsettled.
    let mut unsettled = s.clone();
    unsettled.pending.insert("c".into(), Pending::new(1, None, None, 0));
    assert_eq!(unsettled.seal(), None);
    // The state's seal depends on every compared field.
    let mut other = s.clone();
    other.files.get_mut("a").unwrap().stat.ino += 1;
    assert_ne!(other.seal(), s.seal());
}

#[test]
fn round_trip_and_atomic_save() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("sub/s.json");
    let mut store = Store::open(&p).unwrap();
    let mut s = store.read("/r").unwrap();
    assert_eq!(s, State::new("/r"));
    s.dirs.insert(String::new());
    s.files.insert("a+b.txt".into(), rec(5));
    store.save(&s).unwrap();
    assert_eq!(store.read("/r").unwrap(), s);
    assert!(!t.path().join("sub/s.json.tmp").exists());
}

#[test]
fn other_remote_dir_starts_fresh() {
    let t = tempfile::tempdir().unwrap();
    let mut store = Store::open(&t.path().join("s.json")).unwrap();
    let mut s = State::new("/a");
    s.files.insert("x".into(), rec(1));
    store.save(&s).unwrap();
    assert_eq!(store.read("/b").unwrap(), State::new("/b"));
}

#[test]
fn damaged_state_is_kept_aside_and_replaced_by_an_empty_one() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("s.json");
    let torn = b"{\"version\":1,\"remote_dir\":\"/r\",\"dirs\":[],\"fil";
    fs::write(&p, torn).unwrap();
    let mut store = Store::open(&p).unwrap();
    assert_eq!(store.read("/r").unwrap(), State::new("/r"));
    let aside: Vec<_> = fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("s.json.damaged-"))
        .collect();
    assert_eq!(aside.len(), 1);
    assert_eq!(fs::read(t.path().join(&aside[0])).unwrap(), torn);
}

#[test]
fn the_fast_line_reader_agrees_with_serde_or_declines() {
    let mut unknown_md5 = rec(5);
    unknown_md5.md5 = Hex::UNKNOWN;
    unknown_md5.stat.mtime_ns = -1_000_000_000; // before 1970
    let cases = [("plain/path.jpg", rec(1)), ("Фото 2024/ёлка+1 #a.jpg", rec(2)), ("old", unknown_md5)];
    for (path, r) in cases {
        let line = serde_json::to_string(&(path, &r)).unwrap();
        assert_eq!(fast_line(line.as_bytes()), Some((path.to_string(), r)), "{line}");
    }
    for path in ["quote\"d", "back\\slash", "tab\there"] {
        let line = serde_json::to_string(&(path, rec(3))).unwrap();
        assert_eq!(fast_line(line.as_bytes()), None, "{line}");
        assert_eq!(serde_json::from_str::<(String, FileRec)>(&line).unwrap(), (path.to_string(), rec(3)));
    }
    for odd in [
        r#"["a",[1,2,3,4,"ab","cd"]]"#,                     // short digests: serde refuses them
        r#"["a",[1,2,3,99999999999999999999999,"","cd"]]"#, // too large
        r#"["a", [1,2,3,4,"","cd"]]"#,                      // other spacing
        r#"["a",[1,2,3,4,"","cd"]] "#,                      // trailing bytes
    ] {
        assert_eq!(fast_line(odd.as_bytes()), None, "{odd}");
    }
}

#[test]
fn a_snapshot_cut_at_a_line_boundary_is_damaged_not_short() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("s.json");
    let mut store = Store::open(&p).unwrap();
    let mut s = State::new("/r");
    s.files.insert("a".into(), rec(1));
    s.files.insert("b".into(), rec(2));
    store.save(&s).unwrap();
    assert_eq!(store.read("/r").unwrap(), s);
    let text = fs::read_to_string(&p).unwrap();
    let cut: Vec<&str> = text.lines().take(2).collect();
    fs::write(&p, cut.join("\n") + "\n").unwrap();
    // Kept aside as damaged; a fresh state deletes nothing.
    assert_eq!(store.read("/r").unwrap(), State::new("/r"));
    assert!(!p.exists());
}

#[test]
fn a_newer_version_is_refused_not_overwritten() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("s.json");
    fs::write(&p, br#"{"version":3,"remote_dir":"/r","dirs":[],"files":{}}"#).unwrap();
    let e = Store::open(&p).unwrap().read("/r").unwrap_err().to_string();
    assert!(e.contains("version 3"), "{e}");
    assert!(p.exists());
}

#[test]
fn second_store_is_refused_while_first_lives() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("s.json");
    let first = Store::open(&p).unwrap();
    let e = Store::open(&p).err().unwrap();
    assert!(matches!(e, Error::Locked(_)));
    assert!(e.to_string().contains("s.json"));
    drop(first);
    Store::open(&p).unwrap();
}

fn put(path: &str) -> Change {
    Change::Put { path: path.into(), rec: rec(1) }
}

#[test]
fn the_journal_is_replayed_over_the_snapshot() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("s.json");
    let mut store = Store::open(&p).unwrap();
    let mut s = State::new("/r");
    s.files.insert("old".into(), rec(1));
    store.save(&s).unwrap();
    let changes = [
        put("new"),
        Change::Dir { path: "d".into() },
        Change::Pending { path: "d/big".into(), pending: Pending::new(9, None, None, 0) },
        Change::Forget { path: "old".into() },
    ];
    for c in &changes {
        store.append(std::slice::from_ref(c), c.is_intent()).unwrap();
        s.apply(c);
    }
    drop(store);
    let mut store = Store::open(&p).unwrap();
    assert_eq!(store.read("/r").unwrap(), s);
    assert_eq!(store.journal_lines(), 4);
    // A snapshot folds the journal in and removes it.
    store.save(&s).unwrap();
    assert!(!t.path().join("s.json.journal").exists());
    assert_eq!(store.read("/r").unwrap(), s);
}

#[test]
fn a_torn_last_journal_line_is_cut_before_the_next_record() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("s.json");
    let j = t.path().join("s.json.journal");
    let good = serde_json::to_string(&put("a")).unwrap();
    fs::write(&j, format!("{good}\n{{\"put\":{{\"pa")).unwrap();
    let mut store = Store::open(&p).unwrap();
    assert_eq!(store.read("/r").unwrap().files.keys().collect::<Vec<_>>(), ["a"]);
    store.append(&[put("b")], false).unwrap();
    let text = fs::read_to_string(&j).unwrap();
    assert_eq!(text, format!("{good}\n{}\n", serde_json::to_string(&put("b")).unwrap()), "the torn tail is gone");
    drop(store);
    assert_eq!(Store::open(&p).unwrap().read("/r").unwrap().files.keys().collect::<Vec<_>>(), ["a", "b"]);
}

#[test]
fn a_journal_damaged_in_the_middle_is_kept_aside_and_the_state_starts_afresh() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("s.json");
    let j = t.path().join("s.json.journal");
    let mut store = Store::open(&p).unwrap();
    let mut s = State::new("/r");
    s.files.insert("old".into(), rec(1));
    store.save(&s).unwrap();
    let good = serde_json::to_string(&put("a")).unwrap();
    fs::write(&j, format!("{{\"put\":{{\"pa\n{good}\n")).unwrap();
    assert_eq!(store.read("/r").unwrap(), State::new("/r"), "never a permanent stop");
    assert!(!p.exists() && !j.exists());
    let mut aside: Vec<String> = fs::read_dir(t.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    aside.sort();
    assert_eq!(aside.len(), 3, "{aside:?}"); // the lock, and both files kept for inspection
    assert!(aside[0].starts_with("s.json.damaged-") && aside[1].starts_with("s.json.journal.damaged-"), "{aside:?}");
    store.append(&[put("b")], false).unwrap();
    assert_eq!(store.read("/r").unwrap().files.keys().collect::<Vec<_>>(), ["b"], "and it works afresh");
}

#[test]
fn a_snapshot_left_half_written_by_a_crash_is_removed_at_the_next_start() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("s.json");
    fs::write(t.path().join("s.json.tmp"), b"{\"version\":2,\"remo").unwrap();
    Store::open(&p).unwrap();
    assert!(!t.path().join("s.json.tmp").exists());
}

#[test]
fn replaying_a_journal_already_in_the_snapshot_changes_nothing() {
    // A crash between writing the snapshot and removing the journal.
    let changes = [put("d/x"), Change::Forget { path: "d".into() }, Change::Dir { path: "d".into() }, put("d/y"), put("e")];
    let mut once = State::new("/r");
    once.files.insert("d/z".into(), rec(2));
    changes.iter().for_each(|c| once.apply(c));
    let mut twice = once.clone();
    changes.iter().for_each(|c| twice.apply(c));
    assert_eq!(once, twice);
    assert_eq!(once.files.keys().collect::<Vec<_>>(), ["d/y", "e"]);
}

#[test]
fn digests_round_trip_as_hex() {
    let h = Hex::<4>::parse("00ff10ab").unwrap();
    assert_eq!((h.0, h.to_string()), ([0, 0xff, 0x10, 0xab], "00ff10ab".to_string()));
    assert!(Hex::<4>::parse("").unwrap().is_unknown());
    assert_eq!(Hex::<4>::UNKNOWN.to_string(), "");
    assert!(Hex::<4>::parse("00ff10").is_none() && Hex::<4>::parse("00ff10zz").is_none());
    let json = serde_json::to_string(&rec(7)).unwrap();
    assert_eq!(json, format!("[7,1,2,3,\"{}\",\"{}\"]", "ab".repeat(32), "cd".repeat(16)));
    assert_eq!(serde_json::from_str::<FileRec>(&json).unwrap(), rec(7));
}

#[test]
fn only_an_upload_whose_every_byte_may_have_gone_out_can_still_land() {
    let now = 10_000;
    let (a, b, c) = (Hex([0xaa; 32]), Hex([0xbb; 16]), Hex([0xcc; 32]));
    let p = |mark: Option<Mark>, at: u64| Pending { mark, ..Pending::new(1, Some("op".into()), None, at) };
    assert!(!p(None, now - 5).may_land(now), "cut short: the mark is noted before the last bytes");
    assert!(p(Some(Mark::Sha256(a)), now - 5).may_land(now), "the whole body may have reached the Disk");
    assert!(!p(Some(Mark::Sha256(a)), now - Pending::LINK_LIFE).may_land(now), "older than a link lives");
    assert!(p(None, 0).may_land(now), "a record from before the rule: the benefit of the doubt");
    // A second attempt remembers what the first may have left.
    let second = p(Some(Mark::Sha256(a)), now - 5).next_attempt(Some("op2".into()), now);
    assert_eq!((second.mark, second.op.as_deref(), second.earlier.clone()), (None, Some("op2"), vec![Mark::Sha256(a)]));
    assert!(second.is_ours(Some(a), None) && !second.is_ours(Some(c), None) && !second.is_ours(None, None));
    // A mark from an older state is an md5, and matches the Disk's md5.
    let old = p(Some(Mark::Md5(b)), now - 5);
    assert!(old.is_ours(None, Some(b)) && !old.is_ours(Some(a), None));
    let mut many = second;
    let marks: Vec<Mark> = (1..=5u8).map(|i| Mark::Sha256(Hex([i; 32]))).collect();
    for m in &marks {
        many.mark = Some(*m);
        many = many.next_attempt(None, now);
    }
    assert_eq!(many.earlier, marks[1..], "a few at most");
}

#[test]
fn pending_records_of_every_version_load() {
    // As this version writes them, as older ones did (an md5 mark, no
    // `at`), and with the empty strings no version writes.
    let sha = "ab".repeat(32);
    let new = format!(r#"{{"size":3,"md5":"{sha}","op":"x1","at":5,"earlier":["{}"]}}"#, "cd".repeat(16));
    let p: Pending = serde_json::from_str(&new).unwrap();
    assert_eq!(p.mark, Some(Mark::Sha256(Hex([0xab; 32]))));
    assert_eq!(p.earlier, [Mark::Md5(Hex([0xcd; 16]))]);
    assert_eq!(serde_json::to_string(&p).unwrap(), new, "written back byte for byte");
    let old: Pending = serde_json::from_str(r#"{"size":3,"md5":"","op":"","temp":""}"#).unwrap();
    assert_eq!(old, Pending::new(3, None, None, 0));
    assert_eq!(serde_json::to_string(&old).unwrap(), r#"{"size":3}"#);
    assert!(serde_json::from_str::<Pending>(r#"{"size":3,"md5":"abc"}"#).is_err(), "a mark is a digest");
}

#[test]
fn put_settles_a_pending_upload() {
    let mut s = State::new("/r");
    s.apply(&Change::Pending { path: "a".into(), pending: Pending::new(1, None, None, 0) });
    s.apply(&put("a"));
    assert!(s.pending.is_empty());
}

#[test]
fn forget_removes_subtree_only() {
    let mut s = State::new("/r");
    for p in ["a", "a/b", "ab"] {
        s.dirs.insert(p.into());
    }
    for p in ["a/x", "a/b/y", "ab/z", "a.txt"] {
        s.files.insert(p.into(), rec(1));
    }
    s.apply(&Change::Forget { path: "a".into() });
    assert_eq!(s.dirs.iter().collect::<Vec<_>>(), ["ab"]);
    assert_eq!(s.files.keys().collect::<Vec<_>>(), ["a.txt", "ab/z"]);
}

/// A partial state is the saved one: what it loads, counts, seals and
/// writes back is what the whole state would give, with the journal's
/// changes (a forgotten folder, a changed record) over the snapshot.
#[test]
fn a_partial_state_is_the_whole_one_read_a_folder_at_a_time() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("s.json");
    let mut s = State::new("/r");
    s.dirs.extend(["", "a", "b", "c", "c/x"].map(String::from));
    for f in ["a/1", "a/2", "b/1", "c/x/1", "top"] {
        s.files.insert(f.into(), rec(1));
    }
    Store::open(&p).unwrap().save(&s).unwrap();
    let changes = [put("b/2"), Change::Forget { path: "c".into() }, Change::Put { path: "a/1".into(), rec: rec(7) }, put("c2")];
    {
        let mut store = Store::open(&p).unwrap();
        store.append(&changes, false).unwrap();
    }
    changes.iter().for_each(|c| s.apply(c));

    let mut store = Store::open(&p).unwrap();
    let mut walked = s.prints();
    walked.0.insert("b".into(), Hex([9; 16])); // the walk saw `b` otherwise
    let changed = store.load_partial("/r", &walked, 0).unwrap().expect("a partial state");
    assert_eq!(changed, ["b"]);
    assert!(!store.state().files.contains_key("b/1"), "nothing loaded ahead");
    store.load_folders(&changed).unwrap();
    let view = store.view(&changed, None);
    assert_eq!(view.files.keys().collect::<Vec<_>>(), ["b/1", "b/2"], "the changed folder's records, the snapshot's and the journal's");
    assert_eq!((view.elsewhere, view.tracked()), (4, 6), "the rest counted, not loaded");
    assert!(!store.state().files.contains_key("top"), "an unchanged folder is not loaded");
    assert_eq!(store.seal_now(store.state()).unwrap(), s.seal(), "sealed as the whole");

    // Written back a record at a time, it is the whole state.
    let partial = store.state().clone();
    store.save(&partial).unwrap();
    drop(store);
    let mut whole = Store::open(&p).unwrap();
    assert_eq!(whole.read("/r").unwrap(), s);
    assert_eq!(whole.seal(), s.seal(), "with its seal");

    // Completed in memory, it is the whole state too.
    let mut store = whole;
    store.load_partial("/r", &walked, 1).unwrap();
    store.load("/r").unwrap();
    assert_eq!(store.state(), &s);
}

/// The streaming property, without timing: on a 100 000-file tree in
/// folders of 100, a cycle that finds one file changed, one renamed and a
/// folder deleted holds the records of those folders only, and the walk
/// hands over one folder's files at a time.
#[test]
fn memory_grows_with_the_changed_folders_not_the_tree() {
    use crate::scan::{scan, walk};
    const FOLDERS: usize = 1_000;
    const PER_FOLDER: usize = 100;
    let base = if std::path::Path::new("/dev/shm").is_dir() { tempfile::tempdir_in("/dev/shm") } else { tempfile::tempdir() }.unwrap();
    let root = base.path().join("tree");
    for d in 0..FOLDERS {
        let dir = root.join(format!("d{:02}/{d:04}", d % 10));
        fs::create_dir_all(&dir).unwrap();
        for f in 0..PER_FOLDER {
            fs::write(dir.join(format!("f{f:03}")), b"x").unwrap();
        }
    }
    let mut s = State::new("/r");
    s.dirs.insert(String::new());
    for e in scan(&root, &crate::scan::Exclude::NOTHING, false).unwrap().entries {
        match e.kind {
            crate::scan::Kind::Dir => s.dirs.insert(e.path),
            crate::scan::Kind::File => s.files.insert(e.path, FileRec::sent(e.stat, Hex([1; 32]))).is_none(),
        };
    }
    assert_eq!(s.files.len(), FOLDERS * PER_FOLDER);
    let p = base.path().join("state.json");
    Store::open(&p).unwrap().save(&s).unwrap();

    fs::write(root.join("d01/0001/f000"), b"changed").unwrap();
    fs::rename(root.join("d02/0002/f000"), root.join("d02/0002/renamed")).unwrap();
    fs::remove_dir_all(root.join("d03/0003")).unwrap();
    let mut largest = 0;
    let w = walk(&root, &crate::scan::Exclude::NOTHING, false, &mut |files| largest = largest.max(files.len())).unwrap();
    assert_eq!(largest, PER_FOLDER, "one folder at a time");
    let mut store = Store::open(&p).unwrap();
    let changed = store.load_partial("/r", &w.prints, 10_000).unwrap().expect("partial");
    assert_eq!(changed, ["d01/0001", "d02/0002", "d03", "d03/0003"]);
    store.load_folders(&changed).unwrap();
    assert_eq!(store.reads(), 1, "the changed folders are loaded in the read that finds them");
    let loaded = store.state().files.len();
    assert!(loaded <= 3 * PER_FOLDER, "{loaded} records in memory for 3 changed folders of {PER_FOLDER}");
    // The changed folders' records, and those of the folder being read.
    assert!(store.held_most() <= 4 * PER_FOLDER as u64, "{} records held while reading", store.held_most());
    assert_eq!(store.view(&changed, None).tracked(), (FOLDERS * PER_FOLDER) as u64);
    // One change made: sealed from memory, without a read.
    store.commit(vec![Change::Forget { path: "d03/0003".into() }]).unwrap();
    store.end_cycle().unwrap();
    assert_eq!(store.reads(), 1, "sealed from the prints of the read and the changed folders");
}

/// A snapshot whose lines are out of path order (no version writes one)
/// cannot be merged a line at a time: it is read whole, and written back
/// in order.
#[test]
fn a_snapshot_out_of_order_is_read_whole() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("s.json");
    let mut s = State::new("/r");
    s.dirs.insert(String::new());
    s.files.insert("a".into(), rec(1));
    s.files.insert("b".into(), rec(2));
    Store::open(&p).unwrap().save(&s).unwrap();
    let text = fs::read_to_string(&p).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    fs::write(&p, format!("{}\n{}\n{}\n", lines[0], lines[2], lines[1])).unwrap();
    let mut store = Store::open(&p).unwrap();
    assert_eq!(store.load_partial("/r", &s.prints(), 10).unwrap(), None, "whole");
    assert_eq!(store.state(), &s);
}

/// Found by the cycle model (seed 1796230978706706697): a folder the load
/// counted empty, given records since (a move finished), let go and loaded
/// again, was taken for empty from the count, and its records were lost
/// to the plan (a file gone here stayed on the Disk one cycle more).
#[test]
fn a_folder_loaded_again_is_read_not_counted() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("s.json");
    let mut s = State::new("/r");
    s.dirs.extend(["", "a", "b"].map(String::from));
    s.files.insert("a/1".into(), rec(1));
    Store::open(&p).unwrap().save(&s).unwrap();
    let mut store = Store::open(&p).unwrap();
    let mut walked = s.prints();
    walked.0.insert("b".into(), Hex([9; 16]));
    let changed = store.load_partial("/r", &walked, 0).unwrap().unwrap();
    assert_eq!(changed, ["b"]);
    store.commit(vec![Change::Forget { path: "a/1".into() }, put("b/1")]).unwrap();
    let b = ["b".to_string()];
    store.load_folders(&b).unwrap();
    store.unload(&b).unwrap();
    assert!(store.state().files.is_empty(), "let go");
    store.load_folders(&b).unwrap();
    assert_eq!(store.view(&b, None).files.keys().collect::<Vec<_>>(), ["b/1"]);
}

/// A folder's move is one `Rekey` however many files it holds: the move's
/// intent and its plan hold no record, and the journal gets the records
/// under their new paths (in pieces, the folders, files, then the
/// `Forget`), which replay to the state that memory has.
#[test]
fn a_folder_move_is_journalled_as_its_records_but_held_as_one_change() {
    use super::store::JOURNAL_CHUNK;
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("s.json");
    let mut s = State::new("/r");
    s.dirs.extend(["", "a", "a/sub", "b"].map(String::from));
    s.mkdirs.extend(["a", "a/sub/new"].map(String::from));
    s.pending.insert("a/sub/up".into(), Pending::new(1, None, None, 0));
    for i in 0..5_000 {
        s.files.insert(format!("a/sub/file {i:05}"), rec(i));
    }
    s.files.extend([("a0".into(), rec(1)), ("a/x".into(), rec(2)), ("b/y".into(), rec(3))]);
    Store::open(&p).unwrap().save(&s).unwrap();

    let rekey = Change::Rekey { from: "a".into(), to: "n/m".into(), files: 5_001 };
    let intent = Change::Moving(Some(Moving { from: "a".into(), to: "n/m".into(), dir: true, after: vec![rekey.clone()] }));
    assert!(serde_json::to_string(&intent).unwrap().len() < 200, "the intent holds no record");

    // What `Rekey` stands for, in the order a cut journal keeps safe.
    let mut expanded = s.clone();
    let changes: Vec<Change> = expanded.take_rekeyed("a", "n/m").collect();
    let kind = |c: &Change| match c {
        Change::Dir { .. } => "dir",
        Change::Mkdir { .. } => "mkdir",
        Change::Put { .. } => "put",
        Change::Forget { .. } => "forget",
        _ => "other",
    };
    let kinds: Vec<&str> = changes.iter().map(kind).collect();
    assert_eq!(kinds[..3], ["dir", "dir", "mkdir"], "n/m, n/m/sub; n/m/sub/new (n/m itself is confirmed)");
    assert!(kinds[3..kinds.len() - 1].iter().all(|k| *k == "put") && kinds.last() == Some(&"forget"));
    changes.iter().for_each(|c| expanded.apply(c));
    let mut moved = s.clone();
    moved.apply(&rekey);
    assert_eq!(moved, expanded, "applied whole, as line by line");
    assert!(moved.files.contains_key("n/m/sub/file 04999") && moved.files.contains_key("a0") && !moved.files.contains_key("a/x"));
    assert_eq!((moved.dirs.contains("n/m"), moved.mkdirs.contains("n/m/sub/new"), moved.pending.is_empty()), (true, true, true));

    // A partial store that has loaded nothing: the move loads what it moves.
    let mut store = Store::open(&p).unwrap();
    let mut walked = s.prints();
    walked.0.insert("b".into(), Hex([9; 16]));
    store.load_partial("/r", &walked, 0).unwrap().expect("a partial state");
    store.commit(vec![rekey]).unwrap();
    let journal = fs::read_to_string(t.path().join("s.json.journal")).unwrap();
    assert!(journal.len() > 2 * JOURNAL_CHUNK, "written in pieces: {} bytes", journal.len());
    assert_eq!(journal.lines().count(), 5_001 + 4, "a line per record, folder and the forget");
    assert!(!journal.contains("rekey"), "never a line of its own");
    store.load("/r").unwrap();
    assert_eq!(store.state(), &moved);
    drop(store);
    assert_eq!(Store::open(&p).unwrap().read("/r").unwrap(), moved, "replayed from the journal");
}

#[test]
fn a_journal_torn_inside_a_character_is_cut_not_a_stop() {
    // A power cut inside the two bytes of a Cyrillic letter (the review's
    // finding 7): the torn tail is not UTF-8 at all.
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("s.json");
    let j = t.path().join("s.json.journal");
    let good = serde_json::to_string(&put("a")).unwrap();
    let torn = serde_json::to_string(&put("Фото/лето.jpg")).unwrap();
    let cut = torn.find('Ф').unwrap() + 1; // half of `Ф`
    let mut bytes = format!("{good}\n").into_bytes();
    bytes.extend_from_slice(&torn.as_bytes()[..cut]);
    fs::write(&j, &bytes).unwrap();
    assert!(peek(&p).unwrap().unwrap().files.contains_key("a"), "status reads it");
    let mut store = Store::open(&p).unwrap();
    assert_eq!(store.read("/r").unwrap().files.keys().collect::<Vec<_>>(), ["a"]);
    store.append(&[put("b")], false).unwrap();
    assert_eq!(fs::read_to_string(&j).unwrap(), format!("{good}\n{}\n", serde_json::to_string(&put("b")).unwrap()));
    // Not UTF-8 in the middle: damage, set aside, never a stop.
    let mut bad = b"{\"put\":{\"path\":\"\xd0\"}}\n".to_vec();
    bad.extend_from_slice(format!("{good}\n").as_bytes());
    drop(store);
    fs::write(&j, &bad).unwrap();
    let mut store = Store::open(&p).unwrap();
    assert_eq!(store.read("/r").unwrap(), State::new("/r"));
    assert!(!j.exists(), "kept aside");
}

#[test]
fn a_head_promising_more_files_than_memory_is_damage_not_an_abort() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("s.json");
    let mut store = Store::open(&p).unwrap();
    let mut s = State::new("/r");
    s.files.insert("a".into(), rec(1));
    store.save(&s).unwrap();
    let text = fs::read_to_string(&p).unwrap().replace("\"file_count\":1", &format!("\"file_count\":{}", u64::MAX));
    assert!(text.contains(&u64::MAX.to_string()));
    fs::write(&p, text).unwrap();
    assert!(peek(&p).is_err(), "status says it is damaged");
    assert_eq!(store.read("/r").unwrap(), State::new("/r"), "set aside, started afresh");
    assert!(!p.exists());
}

#[test]
fn state_files_are_private_and_never_followed_as_links() {
    use std::os::unix::fs::{PermissionsExt, symlink};
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("new/state/s.json");
    let mut store = Store::open(&p).unwrap();
    let mut s = State::new("/r");
    s.files.insert("a".into(), rec(1));
    store.save(&s).unwrap();
    store.append(&[put("b")], true).unwrap();
    let mode = |p: &std::path::Path| fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(p.parent().unwrap()), 0o700, "the folder ysync made");
    for name in ["s.json", "s.json.journal", "s.json.lock"] {
        assert_eq!(mode(&p.with_file_name(name)), 0o600, "{name}");
    }
    drop(store);

    // A link planted at the journal, the lock or the snapshot: refused,
    // and what it points at is not touched.
    let victim = t.path().join("victim");
    fs::write(&victim, b"root:x:0:0\n").unwrap();
    for name in ["s.json.journal", "s.json.lock", "s.json"] {
        let at = p.with_file_name(name);
        let _ = fs::remove_file(&at);
        symlink(&victim, &at).unwrap();
        let opened = Store::open(&p).and_then(|mut st| {
            st.read("/r")?;
            st.append(&[put("c")], true)
        });
        assert!(opened.is_err(), "{name}: a link is not followed");
        assert!(opened.unwrap_err().to_string().contains("symbolic link"), "{name}: said so");
        assert_eq!(fs::read(&victim).unwrap(), b"root:x:0:0\n", "{name}: the link's target is untouched");
        fs::remove_file(&at).unwrap();
    }
}

#[test]
fn a_state_folder_others_can_write_is_refused_with_the_fix() {
    use std::os::unix::fs::PermissionsExt;
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("shared");
    fs::create_dir(&dir).unwrap();
    for (mode, who) in [(0o777, "every user"), (0o770, "its group"), (0o1777, "every user")] {
        fs::set_permissions(&dir, fs::Permissions::from_mode(mode)).unwrap();
        let e = Store::open(&dir.join("s.json")).err().expect("refused").to_string();
        assert!(e.contains(who) && e.contains(&format!("chmod go-w {}", dir.display())), "{mode:o}: {e}");
        assert!(!dir.join("s.json.lock").exists(), "nothing made there");
    }
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    Store::open(&dir.join("s.json")).unwrap();
}
