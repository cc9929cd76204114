use super::moves::strip_common_tail;
use super::*;
use crate::remote::RemoteFile;
use crate::scan::Stat;
use crate::state::{Pending, seal_of, unchanged};

/// The content every synced test file had.
const OLD: [u8; 32] = [1; 32];

// Test data stays visible: a file is (path, size, mtime, ctime, inode).
fn file(path: &str, size: u64, mtime: i64, ctime: i64, ino: u64) -> Entry {
    Entry { path: path.into(), kind: Kind::File, stat: Stat { size, mtime_ns: mtime, ctime_ns: ctime, ino }, dev: 0 }
}

fn scan_of(entries: Vec<Entry>) -> Scan {
    let mut entries = entries;
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    Scan { entries, ..Scan::default() }
}

fn rec_of(e: &Entry) -> FileRec {
    FileRec::sent(e.stat, Hex(OLD))
}

/// The state after a perfect sync of `entries`.
fn synced(entries: &[Entry]) -> State {
    let mut s = State::new("/r");
    s.dirs.insert(String::new());
    for e in entries {
        match e.kind {
            Kind::Dir => drop(s.dirs.insert(e.path.clone())),
            Kind::File => drop(s.files.insert(e.path.clone(), rec_of(e))),
        }
    }
    s
}

fn opts() -> Options {
    Options { delete: DeleteMode::Trash, exclude: Vec::new(), max_delete: MaxDelete::Percent(50), min_age_ns: 0, now_ns: 0 }
}

fn run(scan: &Scan, state: &State) -> Vec<String> {
    plan(scan, state, None, &opts()).unwrap().actions.iter().map(|a| a.to_string()).collect()
}

#[test]
fn first_run_creates_root_folders_parents_first_then_uploads() {
    let s = scan_of(vec![
        Entry::dir("a"),
        Entry::dir("a/b"),
        Entry::dir("a/b/c"),
        Entry::dir("empty"),
        file("a/b/c/deep.txt", 3, 1, 1, 10),
        file("top.txt", 0, 1, 1, 11),
    ]);
    assert_eq!(
        run(&s, &State::new("/r")),
        ["mkdir (remote_dir)", "mkdir a", "mkdir a/b", "mkdir a/b/c", "mkdir empty", "upload a/b/c/deep.txt (3 B)", "upload top.txt (0 B)"]
    );
}

#[test]
fn idle_when_nothing_changed() {
    let entries = vec![Entry::dir("a"), file("a/x", 5, 1, 1, 7), file("a b", 1, 1, 1, 8), Entry::dir("a/y")];
    let (s, st) = (scan_of(entries.clone()), synced(&entries));
    assert!(idle_fast(&s, &st));
    assert!(run(&s, &st).is_empty());
    assert_ne!(Some(seal_of(&s, "/elsewhere")), st.seal(), "a state for another remote_dir");
}

#[test]
fn the_fast_path_notices_every_kind_of_change() {
    let entries = vec![Entry::dir("a"), file("a/x", 5, 1, 1, 7), file("b", 1, 1, 1, 8)];
    let st = synced(&entries);
    let changed: Vec<Vec<Entry>> = vec![
        vec![Entry::dir("a"), file("a/x", 5, 1, 2, 7), file("b", 1, 1, 1, 8)], // ctime
        vec![Entry::dir("a"), file("a/x", 5, 1, 1, 7)],                        // file gone
        vec![file("a/x", 5, 1, 1, 7), file("b", 1, 1, 1, 8)],                  // folder gone
        vec![Entry::dir("a"), file("a/x", 5, 1, 1, 7), file("b", 1, 1, 1, 8), file("c", 1, 1, 1, 9)], // new file
        vec![Entry::dir("a"), Entry::dir("a/new"), file("a/x", 5, 1, 1, 7), file("b", 1, 1, 1, 8)], // new folder
        vec![Entry::dir("a"), file("a/x", 6, 1, 1, 7), file("b", 1, 1, 1, 8)], // size
        vec![Entry::dir("a"), file("a/x", 5, 2, 1, 7), file("b", 1, 1, 1, 8)], // mtime
        vec![Entry::dir("a"), file("a/x", 5, 1, 1, 9), file("b", 1, 1, 1, 8)], // inode
        vec![Entry::dir("a"), file("a/y", 5, 1, 1, 7), file("b", 1, 1, 1, 8)], // renamed
        vec![Entry::dir("a"), Entry::dir("a/x"), file("b", 1, 1, 1, 8)],       // file became a folder
    ];
    assert!(idle_fast(&scan_of(entries.clone()), &st));
    for c in changed {
        assert!(!idle_fast(&scan_of(c.clone()), &st), "{c:?}");
    }
    let mut pending = st.clone();
    pending.pending.insert("b".into(), Pending::new(1, None, None, 0));
    assert!(!idle_fast(&scan_of(entries.clone()), &pending));
    // Something excluded or unreadable that the state does not track
    // changes nothing: the fast path holds (any such path once turned
    // it off, so every idle cycle read the whole state).
    let mut kept = scan_of(entries);
    kept.unreadable.push("a/unreadable".into());
    kept.excluded.push("a/junk.tmp".into());
    assert!(idle_fast(&kept, &st));
    // One that hides a tracked file is not idle, and the plan keeps it.
    let mut hiding = scan_of(vec![Entry::dir("a"), file("b", 1, 1, 1, 8)]);
    hiding.unreadable.push("a/x".into());
    assert!(!idle_fast(&hiding, &st));
    assert!(run(&hiding, &st).is_empty());
}

/// Both fast paths give one answer: `unchanged` (the state in memory)
/// and the seal (`once`, before loading the state).
fn idle_fast(s: &Scan, st: &State) -> bool {
    let by_seal = st.seal() == Some(seal_of(s, &st.remote_dir));
    assert_eq!(unchanged(s, st), by_seal, "{s:?}");
    by_seal
}

#[test]
fn a_folder_of_unknown_fate_is_created_again_or_deleted() {
    // Killed after asking for `a` and `b`: both may exist on the Disk.
    let mut st = synced(&[]);
    st.apply(&Change::Mkdir { path: "a".into() });
    st.apply(&Change::Mkdir { path: "b".into() });
    let s = scan_of(vec![Entry::dir("a")]);
    assert_eq!(run(&s, &st), ["mkdir a", "delete folder b (0 files)"]);
    assert!(!idle_fast(&s, &st));
    st.apply(&Change::Dir { path: "a".into() });
    st.apply(&Change::Forget { path: "b".into() });
    assert!(idle_fast(&s, &st), "settled");
}

#[test]
fn new_file_in_known_folder() {
    let before = vec![Entry::dir("a")];
    let s = scan_of(vec![Entry::dir("a"), file("a/new.txt", 4, 1, 1, 8)]);
    assert_eq!(run(&s, &synced(&before)), ["upload a/new.txt (4 B)"]);
}

#[test]
fn new_empty_folder_is_created() {
    let s = scan_of(vec![Entry::dir("a"), Entry::dir("a/empty")]);
    assert_eq!(run(&s, &synced(&[Entry::dir("a")])), ["mkdir a/empty"]);
}

#[test]
fn size_change_uploads_without_hashing_first() {
    let old = file("f", 5, 1, 1, 7);
    let s = scan_of(vec![file("f", 6, 2, 2, 7)]);
    assert_eq!(run(&s, &synced(&[old])), ["upload f (6 B)"]);
}

#[test]
fn same_size_with_other_metadata_is_checked_by_hash() {
    // A touch (mtime), a same-size edit with mtime put back (ctime), and
    // a replacement by rename (inode) are all caught.
    let old = vec![file("touched", 5, 1, 1, 7), file("mtime-restored", 5, 1, 1, 8), file("replaced", 5, 1, 1, 9)];
    let s = scan_of(vec![file("touched", 5, 2, 2, 7), file("mtime-restored", 5, 1, 3, 8), file("replaced", 5, 1, 1, 99)]);
    let p = plan(&s, &synced(&old), None, &opts()).unwrap();
    assert_eq!(p.actions.len(), 3);
    for a in &p.actions {
        assert!(matches!(a, Action::Check { old_sha256, .. } if *old_sha256 == Hex(OLD)), "{a:?}");
    }
}

#[test]
fn deleted_file_is_deleted() {
    let old = vec![file("a.txt", 1, 1, 1, 1), file("b.txt", 1, 1, 1, 2), file("c.txt", 1, 1, 1, 3)];
    let s = scan_of(vec![file("a.txt", 1, 1, 1, 1), file("c.txt", 1, 1, 1, 3)]);
    assert_eq!(run(&s, &synced(&old)), ["delete b.txt"]);
}

#[test]
fn deleted_folder_is_one_request_for_the_whole_tree() {
    let mut old = vec![Entry::dir("keep"), file("keep/k", 1, 1, 1, 1), Entry::dir("gone"), Entry::dir("gone/sub")];
    for i in 0..5 {
        old.push(file(&format!("gone/sub/f{i}"), 1, 1, 1, 10 + i));
    }
    let s = scan_of(vec![Entry::dir("keep"), file("keep/k", 1, 1, 1, 1)]);
    let mut o = opts();
    o.max_delete = MaxDelete::Percent(100);
    let p = plan(&s, &synced(&old), None, &o).unwrap();
    assert_eq!(p.actions, [Action::Delete { path: "gone".into(), kind: Kind::Dir, files: 5 }]);
}

#[test]
fn deletes_come_after_uploads() {
    let old = vec![file("old.txt", 1, 1, 1, 1), file("stay", 1, 1, 1, 3)];
    let s = scan_of(vec![file("new.txt", 1, 1, 1, 2), file("stay", 1, 1, 1, 3)]);
    assert_eq!(run(&s, &synced(&old)), ["upload new.txt (1 B)", "delete old.txt"]);
}

#[test]
fn file_becoming_a_folder_is_deleted_first() {
    let old = vec![file("x", 1, 1, 1, 1), file("y", 1, 1, 1, 2)];
    let s = scan_of(vec![Entry::dir("x"), file("x/inner", 1, 1, 1, 5), file("y", 1, 1, 1, 2)]);
    assert_eq!(run(&s, &synced(&old)), ["delete x", "mkdir x", "upload x/inner (1 B)"]);
}

/// Found by the cycle model (seed 1796248253015778720): the file `a` moved
/// into a new folder `b`, and the file `b` into a new folder `a`. As moves,
/// each waited for a folder that the other's move had to clear first, and
/// every cycle failed at the first mkdir. A file that leaves a path that a
/// new folder takes, for a new folder, is sent again.
#[test]
fn files_swapped_with_folders_are_sent_again_not_moved_in_a_circle() {
    let old = vec![file("a", 1, 1, 1, 1), file("b", 1, 1, 1, 2)];
    let s = scan_of(vec![Entry::dir("a"), Entry::dir("b"), file("a/b", 1, 1, 1, 2), file("b/a", 1, 1, 1, 1)]);
    assert_eq!(run(&s, &synced(&old)), ["delete a", "delete b", "mkdir a", "mkdir b", "upload a/b (1 B)", "upload b/a (1 B)"]);
    // Into a folder that is there already, a file still moves.
    let old = vec![file("a", 1, 1, 1, 1), Entry::dir("c")];
    let s = scan_of(vec![Entry::dir("a"), Entry::dir("c"), file("c/a", 1, 1, 1, 1)]);
    assert_eq!(run(&s, &synced(&old)), ["move a -> c/a", "mkdir a"]);
}

#[test]
fn folder_becoming_a_file_is_deleted_first() {
    let old = vec![Entry::dir("x"), file("x/inner", 1, 1, 1, 1), file("y", 1, 1, 1, 2)];
    let s = scan_of(vec![file("x", 1, 1, 1, 5), file("y", 1, 1, 1, 2)]);
    assert_eq!(run(&s, &synced(&old)), ["delete folder x (1 files)", "upload x (1 B)"]);
}

#[test]
fn keep_mode_forgets_instead_of_deleting_and_ignores_max_delete() {
    let old = vec![Entry::dir("d"), file("d/a", 1, 1, 1, 1), file("b", 1, 1, 1, 2)];
    let mut o = opts();
    o.delete = DeleteMode::Keep;
    o.max_delete = MaxDelete::Count(0);
    let s = scan_of(vec![file("c", 1, 1, 1, 3)]);
    let p = plan(&s, &synced(&old), None, &o).unwrap();
    let shown: Vec<String> = p.actions.iter().map(|a| a.to_string()).collect();
    assert_eq!(
        shown,
        ["upload c (1 B)", "forget b (delete = keep: the remote copy stays)", "forget d (delete = keep: the remote copy stays)"]
    );
}

#[test]
fn empty_source_is_a_safety_stop() {
    let old = vec![file("a", 1, 1, 1, 1)];
    assert_eq!(plan(&scan_of(vec![]), &synced(&old), None, &opts()), Err(Stop::EmptySource { tracked: 1 }));
    // An empty folder on a fresh state is fine: it just creates remote_dir.
    assert_eq!(run(&scan_of(vec![]), &State::new("/r")), ["mkdir (remote_dir)"]);
}

#[test]
fn too_many_deletions_is_a_safety_stop() {
    let old: Vec<Entry> = (0..40).map(|i| file(&format!("f{i:02}"), 1, 1, 1, i)).collect();
    let left: Vec<Entry> = old[..15].to_vec();
    let err = plan(&scan_of(left.clone()), &synced(&old), None, &opts()).unwrap_err();
    assert_eq!(err, Stop::TooManyDeletes { count: 25, tracked: 40, limit: MaxDelete::Percent(50) });
    let mut o = opts();
    o.max_delete = MaxDelete::Count(25);
    assert_eq!(plan(&scan_of(left), &synced(&old), None, &o).unwrap().actions.len(), 25);
}

#[test]
fn small_deletions_never_trip_the_percentage() {
    let old = vec![file("a", 1, 1, 1, 1), file("b", 1, 1, 1, 2), file("c", 1, 1, 1, 3)];
    assert_eq!(run(&scan_of(vec![file("c", 1, 1, 1, 3)]), &synced(&old)), ["delete a", "delete b"]);
}

#[test]
fn kept_paths_are_never_deleted() {
    // An unreadable folder and an excluded file keep their remote copies.
    let old = vec![Entry::dir("locked"), file("locked/secret", 1, 1, 1, 1), file("x.tmp", 1, 1, 1, 2), file("ok", 1, 1, 1, 3)];
    let mut s = scan_of(vec![file("ok", 1, 1, 1, 3)]);
    s.unreadable = vec!["locked".into()];
    s.excluded = vec!["x.tmp".into()];
    assert!(run(&s, &synced(&old)).is_empty());
}

#[test]
fn an_unmounted_sub_folder_is_kept_not_mirrored_as_deleted() {
    let old = vec![Entry::dir("photos"), file("photos/1.jpg", 1, 1, 1, 1), Entry::dir("photos/2024"), file("a", 1, 1, 1, 3)];
    let mut st = synced(&old);
    st.mounts.insert("photos".into());
    let mounted = Scan { mounts: vec!["photos".into()], ..scan_of(old.clone()) };
    let p = plan(&mounted, &st, None, &opts()).unwrap();
    assert!(p.actions.is_empty() && p.unmounted.is_empty() && p.mounts.is_none(), "{p:?}");
    // Mounted, with a change elsewhere (so the whole plan is made, not the
    // idle shortcut): synced, no stop.
    let busy = Scan { mounts: vec!["photos".into()], ..scan_of([old.clone(), vec![file("c", 1, 1, 1, 7)]].concat()) };
    let p = plan(&busy, &st, None, &opts()).unwrap();
    assert!(p.unmounted.is_empty() && p.actions.len() == 1, "{p:?}");
    let new_file = file("b", 1, 1, 1, 4);
    let cases = [
        ("missing", vec![file("a", 1, 1, 1, 3), new_file.clone()], vec![]),
        ("an empty folder on the parent's filesystem", vec![Entry::dir("photos"), file("a", 1, 1, 1, 3), new_file.clone()], vec![]),
        ("mounted but empty", vec![Entry::dir("photos"), file("a", 1, 1, 1, 3), new_file.clone()], vec!["photos".to_string()]),
        (
            "shadow files under the mount point",
            vec![Entry::dir("photos"), file("photos/other.jpg", 5, 1, 1, 9), file("a", 1, 1, 1, 3), new_file.clone()],
            vec![],
        ),
    ];
    for (what, entries, mounts) in cases {
        let s = Scan { mounts, ..scan_of(entries) };
        let p = plan(&s, &st, None, &opts()).unwrap();
        assert_eq!(p.unmounted, ["photos"], "{what}");
        let actions: Vec<String> = p.actions.iter().map(|a| a.to_string()).collect();
        assert_eq!(actions, ["upload b (1 B)"], "{what}: the rest syncs, nothing under photos is touched");
        assert_eq!(p.mounts, None, "{what}: still remembered");
    }
    // A new mount point is remembered; an excluded one is forgotten.
    let s = Scan { mounts: vec!["photos".into(), "usb".into()], ..scan_of([old.clone(), vec![Entry::dir("usb")]].concat()) };
    assert_eq!(plan(&s, &st, None, &opts()).unwrap().mounts, Some(["photos".to_string(), "usb".to_string()].into()));
    let mut s = scan_of(vec![file("a", 1, 1, 1, 3)]);
    s.excluded = vec!["photos".into()];
    let p = plan(&s, &st, None, &opts()).unwrap();
    assert!(p.unmounted.is_empty() && p.actions.is_empty());
    assert_eq!(p.mounts, Some(BTreeSet::new()));
}

#[test]
fn a_reconcile_forgets_what_the_disk_lost_or_holds_otherwise() {
    let entries = vec![
        Entry::dir("d"),
        file("d/a", 1, 1, 1, 1),
        Entry::dir("gone"),
        file("gone/x", 1, 1, 1, 2),
        file("b", 2, 1, 1, 3),
        file("c", 3, 1, 1, 4),
        file("e", 4, 1, 1, 5),
    ];
    let st = synced(&entries);
    let item = |dir: bool, size: u64, sha256: Option<Hex<32>>| Item {
        name: String::new(),
        dir,
        file: RemoteFile { size, sha256, ..RemoteFile::default() },
    };
    let old = Some(Hex(OLD));
    let tree: Tree = [
        ("d".to_string(), item(true, 0, None)),
        ("d/a".to_string(), item(false, 1, old)),
        ("b".to_string(), item(false, 2, Some(Hex([0xff; 32])))), // edited on the Disk
        ("c".to_string(), item(false, 9, old)),                   // another size
        ("e".to_string(), item(false, 4, None)),                  // not hashed yet: the same
        ("theirs".to_string(), item(false, 1, None)),             // not ysync's: not its business
    ]
    .into();
    let all = ["", "d", "gone"].map(String::from);
    let there: BTreeSet<String> = ["", "d"].map(String::from).into();
    assert_eq!(reconcile(&st, &all, &tree, &there, 77).lost, ["gone", "b", "c"], "the folder once, not its files");
    let lost = reconcile(&st, &all, &Tree::new(), &BTreeSet::new(), 77).lost;
    assert_eq!(lost, ["d", "gone", "b", "c", "e"], "no remote_dir: every folder and top file");
}

/// Issue 27: a reconcile dates what the Disk holds as recorded but without
/// the file's time (uploaded before ysync kept it), and nothing else.
#[test]
fn a_reconcile_dates_the_files_the_disk_holds_undated() {
    let mut st = synced(&[file("a", 1, 10, 1, 1), file("b", 1, 20, 1, 2), file("c", 1, 30, 1, 3), file("d", 2, 40, 1, 4)]);
    st.files.get_mut("c").unwrap().stat.mtime_ns = crate::exec::UNDATED; // a cycle dates it
    let sha = st.files["a"].sha256;
    let at = |mtime_ns| Item {
        name: String::new(),
        dir: false,
        file: RemoteFile {
            size: 1,
            sha256: Some(sha),
            dates: crate::remote::Dates { mtime_ns, ..Default::default() },
            ..RemoteFile::default()
        },
    };
    let tree: Tree = [("a".to_string(), at(None)), ("b".to_string(), at(Some(20))), ("c".to_string(), at(None))].into();
    let r = reconcile(&st, &[String::new()], &tree, &[String::new()].into(), 77);
    assert_eq!(r.undated, [("a".to_string(), 10)], "b is dated, c's date is a cycle's job, d is lost: {r:?}");
    assert_eq!(r.lost, ["d"]);
}

#[test]
fn excluded_paths_are_kept_even_when_gone_locally() {
    let old = vec![Entry::dir("cache"), file("cache/t.jpg", 1, 1, 1, 1), file("a.tmp", 1, 1, 1, 2), file("k", 1, 1, 1, 3)];
    let mut o = opts();
    o.exclude = vec![Glob::new("*.tmp").unwrap(), Glob::new("cache/").unwrap()];
    assert!(plan(&scan_of(vec![file("k", 1, 1, 1, 3)]), &synced(&old), None, &o).unwrap().actions.is_empty());
}

#[test]
fn min_age_defers_young_files() {
    let s = scan_of(vec![file("old", 1, 100, 100, 1), file("young", 1, 950, 950, 2)]);
    let mut o = opts();
    o.min_age_ns = 100;
    o.now_ns = 1000;
    let p = plan(&s, &synced(&[Entry::dir("x")]), None, &o).unwrap();
    assert_eq!(p.actions, [Action::Upload(file("old", 1, 100, 100, 1)), Action::Delete { path: "x".into(), kind: Kind::Dir, files: 0 }]);
    assert_eq!(p.deferred, ["young"]);
}

#[test]
fn similar_prefixes_do_not_confuse_folders() {
    // `ab` is not under `a`; removing folder `a` leaves `ab/x` alone.
    let old = vec![Entry::dir("a"), file("a/x", 1, 1, 1, 1), Entry::dir("ab"), file("ab/x", 1, 1, 1, 2), file("a.txt", 1, 1, 1, 3)];
    let s = scan_of(vec![Entry::dir("ab"), file("ab/x", 1, 1, 1, 2), file("a.txt", 1, 1, 1, 3)]);
    assert_eq!(run(&s, &synced(&old)), ["delete folder a (1 files)"]);
}

#[test]
fn an_upload_of_unknown_fate_is_sent_again_or_deleted() {
    let synced_a = file("a", 1, 1, 1, 1);
    let mut state = synced(std::slice::from_ref(&synced_a));
    // Killed mid-upload: `a` (unchanged since its record) and `b` (new,
    // deleted locally since).
    state.pending.insert("a".into(), Pending::new(1, None, None, 0));
    state.pending.insert("b".into(), Pending::new(7, None, None, 0));
    assert_eq!(run(&scan_of(vec![synced_a]), &state), ["upload a (1 B)", "delete b"]);
}

#[test]
fn a_renamed_file_is_moved_not_uploaded() {
    // `mv a.mp4 b.mp4`: same inode, size and mtime; rename updates ctime.
    let old = vec![file("a.mp4", 5 << 20, 10, 10, 42), file("other", 1, 1, 1, 7)];
    let s = scan_of(vec![file("b.mp4", 5 << 20, 10, 11, 42), file("other", 1, 1, 1, 7)]);
    let p = plan(&s, &synced(&old), None, &opts()).unwrap();
    assert_eq!(p.actions.len(), 1, "{:?}", p.actions);
    let Action::Move { from, to, kind: Kind::File, after } = &p.actions[0] else { panic!("{:?}", p.actions) };
    assert_eq!((from.as_str(), to.as_str()), ("a.mp4", "b.mp4"));
    // The new name is recorded with its new metadata: the next scan is idle.
    let mut next = synced(&old);
    after.iter().for_each(|c| next.apply(c));
    assert!(plan(&s, &next, None, &opts()).unwrap().actions.is_empty());
}

#[test]
fn a_renamed_folder_is_one_move_and_changes_inside_still_happen() {
    let mut old = vec![Entry::dir("2024"), Entry::dir("2024/sub"), file("2024/keep.txt", 3, 1, 1, 99)];
    for i in 0..20 {
        old.push(file(&format!("2024/sub/p{i:02}.jpg"), 100, 1, 1, i));
    }
    let mut now = vec![Entry::dir("2024"), file("2024/keep.txt", 3, 1, 1, 99), Entry::dir("Лето 2024"), Entry::dir("Лето 2024/new")];
    for i in 0..19 {
        now.push(file(&format!("Лето 2024/p{i:02}.jpg"), 100, 1, 1, i)); // sub → Лето 2024
    }
    now.push(file("Лето 2024/p19.jpg", 101, 5, 5, 19)); // edited after the move
    now.push(file("Лето 2024/added.jpg", 7, 1, 1, 500));
    let shown: Vec<String> = plan(&scan_of(now), &synced(&old), None, &opts()).unwrap().actions.iter().map(|a| a.to_string()).collect();
    assert_eq!(
        shown,
        [
            "move folder 2024/sub -> Лето 2024 (20 files)",
            "mkdir Лето 2024/new",
            "upload Лето 2024/added.jpg (7 B)",
            "upload Лето 2024/p19.jpg (101 B)"
        ]
    );
}

#[test]
fn files_moved_out_of_a_moved_folder_move_from_its_new_place() {
    let old = vec![Entry::dir("a"), file("a/x", 1, 1, 1, 1), file("a/y", 1, 1, 1, 2), file("a/z", 1, 1, 1, 3)];
    let now = vec![Entry::dir("b"), file("b/x", 1, 1, 1, 1), file("b/y", 1, 1, 1, 2), file("z", 1, 1, 2, 3)];
    let shown: Vec<String> = plan(&scan_of(now), &synced(&old), None, &opts()).unwrap().actions.iter().map(|a| a.to_string()).collect();
    assert_eq!(shown, ["move folder a -> b (3 files)", "move b/z -> z"]);
}

#[test]
fn a_copy_with_another_inode_may_be_moved_after_hashing() {
    let old = vec![file("old.bin", 100_000, 1, 1, 1), file("x", 9, 1, 1, 2)];
    let s = scan_of(vec![file("new.bin", 100_000, 3, 3, 77), file("x", 9, 1, 1, 2)]);
    let p = plan(&s, &synced(&old), None, &opts()).unwrap();
    assert_eq!(
        p.actions,
        [
            Action::MoveOrUpload { entry: file("new.bin", 100_000, 3, 3, 77), candidates: vec![("old.bin".into(), Hex(OLD))] },
            Action::Delete { path: "old.bin".into(), kind: Kind::File, files: 1 }
        ]
    );
}

#[test]
fn a_small_copy_is_uploaded_without_hashing_first() {
    // Below MOVE_MIN_SIZE (64 KiB) sending costs about what hashing would.
    let old = vec![file("old.bin", 60_000, 1, 1, 1), file("x", 9, 1, 1, 2)];
    let s = scan_of(vec![file("new.bin", 60_000, 3, 3, 77), file("x", 9, 1, 1, 2)]);
    assert_eq!(run(&s, &synced(&old)), ["upload new.bin (58.6 KiB)", "delete old.bin"]);
}

#[test]
fn a_safety_stop_says_what_it_would_have_done_and_what_to_do() {
    let empty = Stop::EmptySource { tracked: 7 }.to_string();
    assert!(empty.contains("7 files") && empty.contains("unmounted") && empty.contains("nothing was deleted"), "{empty}");
    let many = Stop::TooManyDeletes { count: 9, tracked: 10, limit: MaxDelete::Percent(50) }.to_string();
    assert!(many.contains("delete 9 of 10") && many.contains("max_delete = 50%") && many.contains("raise max_delete"), "{many}");
}

#[test]
fn a_half_emptied_folder_is_not_taken_for_a_move() {
    // Only 1 of 3 files went to the new folder: move that file, delete the rest.
    let old = vec![Entry::dir("a"), file("a/x", 1, 1, 1, 1), file("a/y", 2, 1, 1, 2), file("a/z", 3, 1, 1, 3)];
    let now = vec![Entry::dir("b"), file("b/x", 1, 1, 1, 1)];
    let mut o = opts();
    o.max_delete = MaxDelete::Percent(100);
    let shown: Vec<String> = plan(&scan_of(now), &synced(&old), None, &o).unwrap().actions.iter().map(|a| a.to_string()).collect();
    assert_eq!(shown, ["mkdir b", "move a/x -> b/x", "delete folder a (2 files)"]);
}

#[test]
fn a_fresh_state_adopts_what_is_already_on_the_disk() {
    let item = |dir: bool, size: u64| Item {
        name: String::new(),
        dir,
        file: RemoteFile { size, sha256: Some(Hex([5; 32])), ..RemoteFile::default() },
    };
    let remote: Tree = [
        ("a".to_string(), item(true, 0)),
        ("a/same.jpg".to_string(), item(false, 5)),
        ("a/resized.jpg".to_string(), item(false, 9)),
        ("remote-only.txt".to_string(), item(false, 1)),
    ]
    .into();
    let s = scan_of(vec![Entry::dir("a"), file("a/same.jpg", 5, 1, 1, 1), file("a/resized.jpg", 10, 1, 1, 2), Entry::dir("b")]);
    let p = plan(&s, &State::new("/r"), Some(&remote), &opts()).unwrap();
    let shown: Vec<String> = p.actions.iter().map(|a| a.to_string()).collect();
    assert_eq!(
        shown,
        ["adopt folder (remote_dir)", "adopt folder a", "mkdir b", "upload a/resized.jpg (10 B)", "adopt-or-upload a/same.jpg (5 B)"]
    );
}

#[test]
fn common_tails() {
    assert_eq!(strip_common_tail("a/b/c/x", "z/c/x"), ("a/b", "z"));
    assert_eq!(strip_common_tail("a/x", "b/x"), ("a", "b"));
    assert_eq!(strip_common_tail("f1", "f2"), ("f1", "f2"));
    assert_eq!(strip_common_tail("d/f", "f"), ("d/f", "f"));
}

/// The rules after a hash, as the contract's table has them: a touched
/// file is recorded, a changed one uploaded, a copy of a vanished file
/// moved, a file the Disk holds otherwise uploaded.
#[test]
fn what_a_hashed_file_needs() {
    let (old, new) = (Hex(OLD), Hex([2; 32]));
    let e = file("a.bin", 100_000, 5, 6, 7);
    let st = synced(&[file("gone.bin", 100_000, 1, 1, 3)]);
    let recorded = |date| Some(Resolution::Record { rec: FileRec::sent(e.stat, old), date });

    // Touched: nothing is sent, the Disk gets the new time (the record had another).
    let touched = Action::Check { entry: e.clone(), old_sha256: old };
    assert_eq!(touched.resolve(old, &st), recorded(true), "touched: nothing is sent, the date is");
    assert_eq!(touched.resolve(new, &st), Some(Resolution::Upload), "changed: sent");
    let same_time = synced(&[file("a.bin", 100_000, 5, 1, 7)]);
    assert_eq!(touched.resolve(old, &same_time), recorded(false), "only the ctime changed: the Disk's date stands");

    let on_disk = |sha256, mtime_ns| Action::Adopt { entry: e.clone(), sha256, mtime_ns };
    assert_eq!(on_disk(Some(old), None).resolve(old, &st), recorded(true), "adopted: the Disk holds it, without its date");
    assert_eq!(on_disk(Some(old), Some(5)).resolve(old, &st), recorded(false), "adopted with its date: no request");
    assert_eq!(on_disk(Some(old), Some(4)).resolve(old, &st), recorded(true), "adopted with another date: set");
    assert_eq!(on_disk(Some(new), None).resolve(old, &st), Some(Resolution::Upload), "other content there: sent over it");
    assert_eq!(on_disk(None, None).resolve(old, &st), Some(Resolution::Upload), "not hashed there yet: sent");

    let copy = Action::MoveOrUpload { entry: e.clone(), candidates: vec![("gone.bin".into(), old)] };
    let moved = Resolution::MoveFrom {
        from: "gone.bin".into(),
        after: vec![Change::Forget { path: "gone.bin".into() }, Change::Put { path: "a.bin".into(), rec: FileRec::sent(e.stat, old) }],
    };
    assert_eq!(copy.resolve(old, &st), Some(moved), "a copy of a vanished file: moved");
    assert_eq!(copy.resolve(new, &st), Some(Resolution::Upload), "other content: sent");
    let mut taken = st.clone();
    taken.apply(&Change::Forget { path: "gone.bin".into() });
    assert_eq!(copy.resolve(old, &taken), Some(Resolution::Upload), "moved away by an earlier action: sent");

    assert_eq!(Action::Upload(e.clone()).resolve(old, &st), None, "an upload does not hash first");
}

#[test]
fn a_deletion_that_a_move_made_moot_is_skipped() {
    let st = synced(&[file("gone.bin", 100_000, 1, 1, 3)]);
    let del = Action::Delete { path: "gone.bin".into(), kind: Kind::File, files: 1 };
    assert!(!del.is_moot(&st));
    let mut moved = st.clone();
    moved.apply(&Change::Forget { path: "gone.bin".into() });
    assert!(del.is_moot(&moved));
}

#[test]
fn the_actions_that_may_send_a_file() {
    let e = file("a", 1, 1, 1, 1);
    let sends = |a: &Action| a.uploads().is_some();
    assert!(sends(&Action::Upload(e.clone())) && sends(&Action::Check { entry: e.clone(), old_sha256: Hex(OLD) }));
    assert!(sends(&Action::MoveOrUpload { entry: e.clone(), candidates: vec![] }));
    assert!(!sends(&Action::Mkdir("d".into())) && !sends(&Action::Delete { path: "a".into(), kind: Kind::File, files: 1 }));
}

// Found by the planner's property test (props.rs); each once failed.

#[test]
fn an_excluded_file_in_a_folder_deleted_here_stays_on_the_disk() {
    // `Фото/d.tmp` was synced before `exclude = *.tmp`; then `Фото` went.
    let st = synced(&[Entry::dir("Фото"), file("Фото/d.tmp", 7, 1, 1, 5), file("Фото/x", 7, 1, 1, 6)]);
    let o = Options { exclude: vec![Glob::new("*.tmp").unwrap()], ..opts() };
    let shown: Vec<String> =
        plan(&scan_of(vec![file("other", 1, 1, 1, 9)]), &st, None, &o).unwrap().actions.iter().map(|a| a.to_string()).collect();
    assert_eq!(shown, ["upload other (1 B)", "delete Фото/x"], "the folder is not deleted whole");
}

#[test]
fn a_file_that_became_a_folder_inside_a_renamed_folder_goes_after_the_move() {
    // `a+b` renamed to `two words`; inside it, the folder `#1/a+b` became a file.
    let old = [Entry::dir("a+b"), Entry::dir("a+b/#1"), Entry::dir("a+b/#1/a+b"), file("a+b/é", 70_000, 1, 1, 2)];
    let now = vec![
        Entry::dir("two words"),
        Entry::dir("two words/#1"),
        file("two words/#1/a+b", 0, 5, 5, 11),
        file("two words/é", 70_000, 1, 1, 2),
    ];
    let shown: Vec<String> = plan(&scan_of(now), &synced(&old), None, &opts()).unwrap().actions.iter().map(|a| a.to_string()).collect();
    assert_eq!(
        shown,
        ["move folder a+b -> two words (1 files)", "delete folder two words/#1/a+b (0 files)", "upload two words/#1/a+b (0 B)"]
    );
}

#[test]
fn a_file_renamed_out_of_the_way_of_a_new_folder_moves_first() {
    // `mv a c.jpg/two words` (into a new folder), then `mkdir a`.
    let now = vec![Entry::dir("a"), Entry::dir("c.jpg"), file("c.jpg/two words", 70_000, 1, 2, 2)];
    let shown: Vec<String> =
        plan(&scan_of(now), &synced(&[file("a", 70_000, 1, 1, 2)]), None, &opts()).unwrap().actions.iter().map(|a| a.to_string()).collect();
    assert_eq!(shown, ["mkdir c.jpg", "move a -> c.jpg/two words", "mkdir a"]);
}

#[test]
fn a_file_moved_into_a_folder_of_its_own_name_is_sent_again() {
    // `notes` became `notes/notes.txt`, and back: neither can be one move.
    let into = vec![Entry::dir("notes"), file("notes/notes.txt", 70_000, 1, 2, 2)];
    let shown: Vec<String> = plan(&scan_of(into), &synced(&[file("notes", 70_000, 1, 1, 2)]), None, &opts())
        .unwrap()
        .actions
        .iter()
        .map(|a| a.to_string())
        .collect();
    assert_eq!(shown, ["delete notes", "mkdir notes", "move-or-upload notes/notes.txt (68.4 KiB)"], "uploaded: its source is gone by then");
    let old = [Entry::dir("notes"), file("notes/notes.txt", 70_000, 1, 1, 2)];
    let shown: Vec<String> = plan(&scan_of(vec![file("notes", 70_000, 1, 2, 2)]), &synced(&old), None, &opts())
        .unwrap()
        .actions
        .iter()
        .map(|a| a.to_string())
        .collect();
    assert_eq!(shown, ["delete folder notes (1 files)", "move-or-upload notes (68.4 KiB)"]);
}

#[test]
fn an_empty_folder_is_a_stop_only_when_something_was_synced_from_it() {
    let mut root_only = synced(&[]);
    root_only.pending.insert("gone".into(), Pending::new(1, None, None, 0));
    assert_eq!(run(&scan_of(vec![]), &root_only), ["delete gone"], "nothing synced: nothing to guard");
    let folders = synced(&[Entry::dir("d")]);
    assert_eq!(plan(&scan_of(vec![]), &folders, None, &opts()), Err(Stop::EmptySource { tracked: 0 }), "folders were synced from it");
}

#[test]
fn ten_deletions_count_against_a_percentage() {
    // PERCENT_FLOOR = 10: fewer never stop a percentage limit; ten do.
    let old: Vec<Entry> = (0..15).map(|i| file(&format!("f{i:02}"), 1, 1, 1, i)).collect();
    let stop = |left: usize| plan(&scan_of(old[..left].to_vec()), &synced(&old), None, &opts()).err();
    assert_eq!(stop(6), None, "9 of 15");
    assert_eq!(stop(5), Some(Stop::TooManyDeletes { count: 10, tracked: 15, limit: MaxDelete::Percent(50) }), "10 of 15");
}

#[test]
fn a_file_that_became_a_folder_in_a_renamed_folder_is_deleted_before_the_folder_is_made() {
    let old = [Entry::dir("a"), file("a/x", 1, 1, 1, 3), file("a/keep", 70_000, 1, 1, 4)];
    let now = vec![Entry::dir("b"), Entry::dir("b/x"), file("b/keep", 70_000, 1, 1, 4)];
    assert_eq!(run(&scan_of(now), &synced(&old)), ["move folder a -> b (2 files)", "delete b/x", "mkdir b/x"]);
}

#[test]
fn a_reconcile_remembers_what_it_forgets_as_ysyncs() {
    let st = synced(&[Entry::dir("d"), file("d/a", 1, 1, 1, 1), file("b", 2, 1, 1, 2)]);
    let pending = |size| Pending { mark: Some(crate::state::Mark::Sha256(Hex(OLD))), ..Pending::new(size, None, None, 77) };
    let all = ["", "d"].map(String::from);
    let root: BTreeSet<String> = [String::new()].into();
    let Reconcile { lost, changes, .. } = reconcile(&st, &all, &Tree::new(), &root, 77);
    assert_eq!(lost, ["d", "b"]);
    assert_eq!(
        changes,
        [
            Change::Mkdir { path: "d".into() },
            Change::Forget { path: "b".into() },
            Change::Pending { path: "b".into(), pending: pending(2) },
            Change::Forget { path: "d/a".into() },
            Change::Pending { path: "d/a".into(), pending: pending(1) },
        ]
    );
    // A part compares its own folders' records only, and the folders in them.
    let Reconcile { lost, changes, .. } = reconcile(&st, &all[1..], &Tree::new(), &root, 77);
    assert_eq!((lost, changes.len()), (vec![], 2), "d/a: its folder is said lost by the part of its parent");
    // No remote_dir at all: it is forgotten too, so it is made again.
    let changes = reconcile(&st, &all, &Tree::new(), &BTreeSet::new(), 77).changes;
    assert_eq!(changes[0], Change::Forget { path: String::new() });
}

#[test]
fn min_age_defers_only_what_changed_less_than_that_ago() {
    let o = Options { min_age_ns: 10, now_ns: 100, ..opts() };
    let p = plan(&scan_of(vec![file("old", 1, 90, 90, 1), file("new", 1, 91, 91, 2)]), &synced(&[]), None, &o).unwrap();
    assert_eq!((p.actions.len(), p.deferred), (1, vec!["new".to_string()]));
}

// What the mutation run found unguarded in the rename detection: each of
// these plans would still converge the wrong way, by moving what should
// stay or sending what could move.

#[test]
fn a_hard_link_to_a_file_still_here_is_sent_not_moved() {
    let old = [file("a", 70_000, 1, 1, 5)];
    let s = scan_of(vec![file("a", 70_000, 1, 1, 5), file("b", 70_000, 1, 1, 5)]);
    assert_eq!(run(&s, &synced(&old)), ["upload b (68.4 KiB)"]);
}

#[test]
fn an_excluded_file_renamed_away_is_not_moved_off_its_kept_copy() {
    let old = [file("x.tmp", 70_000, 1, 1, 5)];
    let o = Options { exclude: vec![Glob::new("*.tmp").unwrap()], ..opts() };
    let shown: Vec<String> =
        plan(&scan_of(vec![file("y", 70_000, 1, 2, 5)]), &synced(&old), None, &o).unwrap().actions.iter().map(|a| a.to_string()).collect();
    assert_eq!(shown, ["upload y (68.4 KiB)"], "x.tmp stays on the Disk");
}

#[test]
fn a_file_renamed_over_a_synced_one_is_not_a_move() {
    // `mv a b` where b was synced: b is checked, a deleted.
    let old = [file("a", 70_000, 1, 1, 5), file("b", 70_000, 1, 1, 6)];
    assert_eq!(run(&scan_of(vec![file("b", 70_000, 1, 2, 5)]), &synced(&old)), ["upload-if-changed b (68.4 KiB)", "delete a"]);
}

#[test]
fn a_folder_with_an_upload_of_unknown_fate_is_not_moved_whole() {
    let old = [Entry::dir("a"), file("a/x", 1, 1, 1, 1), file("a/y", 2, 1, 1, 2)];
    let mut st = synced(&old);
    st.pending.insert("a/z".into(), Pending::new(3, None, None, 0));
    let now = vec![Entry::dir("b"), file("b/x", 1, 1, 2, 1), file("b/y", 2, 1, 2, 2)];
    let mut o = opts();
    o.max_delete = MaxDelete::Percent(100);
    let shown: Vec<String> = plan(&scan_of(now), &st, None, &o).unwrap().actions.iter().map(|a| a.to_string()).collect();
    assert_eq!(shown, ["mkdir b", "move a/x -> b/x", "move a/y -> b/y", "delete folder a (0 files)"]);
}

#[test]
fn a_folder_split_in_two_is_one_folder_move_and_file_moves() {
    let old = [Entry::dir("a"), file("a/1", 1, 1, 1, 1), file("a/2", 2, 1, 1, 2), file("a/3", 3, 1, 1, 3), file("a/4", 4, 1, 1, 4)];
    let now = vec![
        Entry::dir("x"),
        file("x/1", 1, 1, 1, 1),
        file("x/2", 2, 1, 1, 2),
        Entry::dir("y"),
        file("y/3", 3, 1, 2, 3),
        file("y/4", 4, 1, 2, 4),
    ];
    let shown = run(&scan_of(now), &synced(&old));
    assert_eq!(shown, ["move folder a -> x (4 files)", "mkdir y", "move x/3 -> y/3", "move x/4 -> y/4"]);
}

#[test]
fn an_empty_mount_point_with_nothing_synced_under_it_is_mounted() {
    let mut st = synced(&[Entry::dir("usb"), file("a", 1, 1, 1, 3)]);
    st.mounts.insert("usb".into());
    let s = Scan { mounts: vec!["usb".into()], ..scan_of(vec![Entry::dir("usb"), file("a", 1, 1, 1, 3), file("b", 1, 1, 1, 4)]) };
    let p = plan(&s, &st, None, &opts()).unwrap();
    assert!(p.unmounted.is_empty(), "{p:?}");
}

#[test]
fn files_moved_out_of_a_folder_that_stays_are_file_moves() {
    let old = [Entry::dir("a"), file("a/1", 1, 1, 1, 1), file("a/2", 2, 1, 1, 2), file("a/3", 3, 1, 1, 3)];
    let now = vec![Entry::dir("a"), file("a/3", 3, 1, 1, 3), Entry::dir("b"), file("b/1", 1, 1, 2, 1), file("b/2", 2, 1, 2, 2)];
    assert_eq!(run(&scan_of(now), &synced(&old)), ["mkdir b", "move a/1 -> b/1", "move a/2 -> b/2"]);
}

#[test]
fn two_folders_merged_into_a_new_one_are_one_folder_move_and_file_moves() {
    let old = [Entry::dir("a"), file("a/1", 1, 1, 1, 1), Entry::dir("b"), file("b/2", 2, 1, 1, 2)];
    let now = vec![Entry::dir("x"), file("x/1", 1, 1, 1, 1), file("x/2", 2, 1, 2, 2)];
    let mut o = opts();
    o.max_delete = MaxDelete::Percent(100);
    let shown: Vec<String> = plan(&scan_of(now), &synced(&old), None, &o).unwrap().actions.iter().map(|a| a.to_string()).collect();
    assert_eq!(shown, ["move folder a -> x (1 files)", "move b/2 -> x/2", "delete folder b (0 files)"]);
}

#[test]
fn an_edit_with_its_mtime_put_back_inside_a_renamed_folder_is_still_checked_after_the_move() {
    // Renaming a folder leaves its files' ctime alone, so the move carries
    // the new ctime over only for files that are as they were; a same-size
    // edit with its mtime put back (only the ctime tells) must still be
    // checked once the move is recorded, say after a crash right after it.
    let old = [Entry::dir("a"), file("a/1", 1, 1, 1, 1), file("a/2", 2, 1, 1, 2)];
    let now = scan_of(vec![Entry::dir("b"), file("b/1", 1, 1, 1, 1), file("b/2", 2, 1, 9, 2)]);
    assert_eq!(run(&now, &synced(&old)), ["move folder a -> b (2 files)", "upload-if-changed b/2 (2 B)"]);
    let p = plan(&now, &synced(&old), None, &opts()).unwrap();
    let Some(Action::Move { after, .. }) = p.actions.first() else { panic!("{p:?}") };
    let mut moved = synced(&old);
    after.iter().for_each(|c| moved.apply(c));
    assert_eq!(run(&now, &moved), ["upload-if-changed b/2 (2 B)"]);
}

#[test]
fn a_folder_moved_out_of_a_moved_folder_is_file_moves_after_the_outer_move() {
    // `a` became `x`, and `a/b` became `y`: one folder move; the files of
    // `b` follow it from `x/b` one by one (a second folder move would look
    // for `a/b`, which the first took away).
    let old = [
        Entry::dir("a"),
        file("a/1", 1, 1, 1, 1),
        file("a/2", 2, 1, 1, 2),
        Entry::dir("a/b"),
        file("a/b/3", 3, 1, 1, 3),
        file("a/b/4", 4, 1, 1, 4),
    ];
    let now = vec![
        Entry::dir("x"),
        file("x/1", 1, 1, 1, 1),
        file("x/2", 2, 1, 1, 2),
        Entry::dir("y"),
        file("y/3", 3, 1, 1, 3),
        file("y/4", 4, 1, 1, 4),
    ];
    let mut o = opts();
    o.max_delete = MaxDelete::Percent(100);
    let shown: Vec<String> = plan(&scan_of(now), &synced(&old), None, &o).unwrap().actions.iter().map(|a| a.to_string()).collect();
    assert_eq!(shown, ["move folder a -> x (4 files)", "mkdir y", "move x/b/3 -> y/3", "move x/b/4 -> y/4", "delete folder x/b (0 files)"]);
}

#[test]
fn a_folder_moved_into_a_folder_another_move_makes_is_file_moves() {
    // `a` became `x`, and `b` became `x/y`: the second folder move would
    // need the first one done before it; the planner keeps to one folder
    // move per tree and sends the files of `b` one by one.
    let old = [
        Entry::dir("a"),
        file("a/1", 1, 1, 1, 1),
        file("a/2", 2, 1, 1, 2),
        Entry::dir("b"),
        file("b/3", 3, 1, 1, 3),
        file("b/4", 4, 1, 1, 4),
    ];
    let now = vec![
        Entry::dir("x"),
        file("x/1", 1, 1, 1, 1),
        file("x/2", 2, 1, 1, 2),
        Entry::dir("x/y"),
        file("x/y/3", 3, 1, 1, 3),
        file("x/y/4", 4, 1, 1, 4),
    ];
    let mut o = opts();
    o.max_delete = MaxDelete::Percent(100);
    let shown: Vec<String> = plan(&scan_of(now), &synced(&old), None, &o).unwrap().actions.iter().map(|a| a.to_string()).collect();
    assert_eq!(shown, ["move folder a -> x (2 files)", "mkdir x/y", "move b/3 -> x/y/3", "move b/4 -> x/y/4", "delete folder b (0 files)"]);
}

#[test]
fn a_synced_folder_whose_deletion_was_interrupted_is_made_again_if_here_again() {
    let mut st = synced(&[Entry::dir("a"), Entry::dir("b"), file("b/x", 1, 1, 1, 1)]);
    st.apply(&Change::Mkdir { path: "a".into() });
    st.apply(&Change::Mkdir { path: "b".into() });
    let mut o = opts();
    o.max_delete = MaxDelete::Percent(100);
    let shown: Vec<String> = plan(&scan_of(vec![Entry::dir("a")]), &st, None, &o).unwrap().actions.iter().map(|a| a.to_string()).collect();
    assert_eq!(shown, ["mkdir a", "delete folder b (1 files)"], "made again, deleted once");
}

/// Found by the cycle model (seed 1796228379049472262): a folder asked for
/// but not confirmed, inside a folder then renamed here, stayed at its old
/// path in the state; the move took it along on the Disk, its deletion was
/// skipped as moved away, and a file could never go up at its new path.
#[test]
fn a_folder_of_unknown_fate_moves_with_its_folder() {
    let mut st = synced(&[Entry::dir("o"), file("o/a", 5, 1, 1, 7)]);
    st.apply(&Change::Mkdir { path: "o/m".into() });
    let now = vec![Entry::dir("n"), file("n/a", 5, 1, 1, 7), file("n/m", 3, 1, 1, 9)];
    assert_eq!(run(&scan_of(now), &st), ["move folder o -> n (1 files)", "delete folder n/m (0 files)", "upload n/m (3 B)"]);
}

/// A cycle plans without the files the scan and the state show alike, but
/// never without one of unknown fate: a deletion noted before its request
/// (the Disk may lack it) with the file back here unchanged is sent again.
#[test]
fn the_files_left_out_of_a_plan_are_only_those_settled_alike() {
    let entries = vec![file("a", 5, 1, 1, 7), file("b", 5, 1, 1, 8)];
    let mut st = synced(&entries);
    st.pending.insert("a".into(), Pending { mark: Some(crate::state::Mark::Sha256(Hex(OLD))), ..Pending::new(5, None, None, 1) });
    let mut s = scan_of(entries);
    let lean = st.part_beside(&[String::new()], &s);
    crate::cycle::drop_same(&mut s, &st);
    assert_eq!(s.entries.iter().map(|e| e.path.as_str()).collect::<Vec<_>>(), ["a"]);
    assert_eq!((lean.files.keys().map(String::as_str).collect::<Vec<_>>(), lean.elsewhere, s.unlisted), (vec!["a"], 1, 1));
    assert_eq!(run(&s, &lean), ["upload a (5 B)"]);
}
