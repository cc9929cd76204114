//! The executor's protocols against an in-memory Disk: what each one sends,
//! what it leaves in the state, and what it must never do. Local files and
//! the state live in a real temporary folder (walkdir's way).

use std::path::Path;

use super::*;
use crate::scan::Stat;
use crate::state::{Mark, Pending};
use crate::testkit::{MemDisk, sha};

/// A local folder, its state and an in-memory Disk with `/r` on it.
struct World {
    dir: tempfile::TempDir,
    cfg: Config,
    store: Store,
    disk: MemDisk,
}

impl World {
    fn new() -> World {
        World::with("/r", "")
    }

    /// With another `remote_dir`, and more config lines.
    fn with(remote_dir: &str, more: &str) -> World {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("local")).unwrap();
        let text = format!(
            "token = t\nlocal_dir = {0}/local\nremote_dir = {remote_dir}\nstate_file = {0}/state.json\n{more}",
            dir.path().display()
        );
        let cfg = crate::config::parse(Path::new("/etc/y.conf"), &text, &|_| None).unwrap();
        let mut store = Store::open(&cfg.state_file).unwrap();
        store.load(remote_dir).unwrap();
        store.commit(vec![Change::Dir { path: String::new() }]).unwrap();
        let disk = MemDisk::with_folder(remote_dir);
        // Waits take no time; what they ask is still counted.
        crate::retry::clock::warp();
        World { dir, cfg, store, disk }
    }

    /// An earlier attempt at `path`: link with operation `op0`, and, with
    /// `sent`, its body's mark (every byte may have gone out).
    fn attempt(&mut self, path: &str, size: u64, sent: Option<&[u8]>) {
        let p = Pending { mark: sent.map(|b| Mark::Sha256(sha(b))), ..Pending::new(size, Some("op0".into()), None, now_secs()) };
        self.store.commit(vec![Change::Pending { path: path.into(), pending: p }]).unwrap();
    }

    fn delete(&mut self, path: &str, kind: Kind) -> Result<Done, Error> {
        self.run(&Action::Delete { path: path.into(), kind, files: 1 })
    }

    /// Writes a local file; its entry as the scan would see it.
    fn file(&self, path: &str, bytes: &[u8]) -> Entry {
        let p = self.dir.path().join("local").join(path);
        std::fs::write(&p, bytes).unwrap();
        scan::file_entry(path.into(), &(&std::fs::symlink_metadata(&p).unwrap()).into())
    }

    fn run(&mut self, a: &Action) -> Result<Done, Error> {
        Executor::new(&self.cfg, &mut self.disk, &mut self.store).run(a)
    }

    /// `a.txt` renamed to `b.txt` here, and the move's answer lost: done
    /// on the Disk, in doubt in the state.
    fn move_in_doubt() -> World {
        let mut w = World::new();
        let e = w.file("b.txt", b"hello");
        w.put("a.txt", &e, b"hello");
        w.disk.files.insert("/r/a.txt".into(), b"hello".to_vec());
        w.disk.lose_answer_to = Some("move");
        assert!(w.run(&file_move("a.txt", "b.txt", &e, b"hello")).is_err());
        w
    }

    fn finish_move(&mut self) -> Result<(), Error> {
        Executor::new(&self.cfg, &mut self.disk, &mut self.store).finish_move()
    }

    fn put(&mut self, path: &str, e: &Entry, bytes: &[u8]) {
        self.store.commit(vec![Change::Put { path: path.into(), rec: FileRec::sent(e.stat, sha(bytes)) }]).unwrap();
    }
}

#[test]
fn an_upload_is_announced_before_its_body_and_recorded_after() {
    let mut w = World::new();
    let e = w.file("a.txt", b"hello");
    assert_eq!(w.run(&Action::Upload(e.clone())).unwrap(), Done::Uploaded { bytes: 5 });
    assert_eq!(w.disk.calls, ["link /r/a.txt", "put /r/a.txt", "date /r/a.txt"]);
    assert_eq!(w.disk.files["/r/a.txt"], b"hello");
    // The file's time and the upload's, kept with it (issue 27).
    let dates = w.disk.dates["/r/a.txt"];
    assert_eq!(dates.mtime_ns, Some(e.stat.mtime_ns));
    assert!(dates.uploaded.abs_diff(now_secs()) < 60, "{dates:?}");
    let st = w.store.state();
    assert_eq!(st.files["a.txt"], FileRec::sent(e.stat, sha(b"hello")));
    assert!(st.pending.is_empty(), "settled by the record");
    // The journal holds the intent, its mark, then the record, in that order.
    let journal = std::fs::read_to_string(w.dir.path().join("state.json.journal")).unwrap();
    let pending: Vec<&str> = journal.lines().filter(|l| l.starts_with("{\"pending\"")).collect();
    assert_eq!(pending.len(), 2, "the intent without a mark, then with it: {journal}");
    assert!(!pending[0].contains("\"md5\"") && pending[1].contains(&sha(b"hello").to_string()), "{journal}");
}

#[test]
fn an_upload_whose_answer_was_lost_is_not_sent_again_when_it_landed() {
    let mut w = World::new();
    let e = w.file("big.bin", &[7; 1000]);
    w.disk.lose_answer = true;
    assert_eq!(w.run(&Action::Upload(e)).unwrap(), Done::Uploaded { bytes: 1000 });
    assert_eq!(w.disk.called("put"), 1, "{:?}", w.disk.calls);
    assert_eq!(w.disk.called("operation op1"), 1, "its operation says it landed");
}

#[test]
fn an_earlier_attempt_that_landed_is_adopted_without_a_byte_sent() {
    let mut w = World::new();
    let e = w.file("a.txt", b"hello");
    // A crash after the last bytes: the mark was journalled, the record not.
    w.disk.files.insert("/r/a.txt".into(), b"hello".to_vec());
    w.disk.ops.insert("op0".into(), OpStatus::Success);
    w.attempt("a.txt", 5, Some(b"hello"));
    assert_eq!(w.run(&Action::Upload(e)).unwrap(), Done::Adopted);
    assert_eq!(w.disk.called("put") + w.disk.called("link"), 0, "{:?}", w.disk.calls);
    assert!(w.store.state().pending.is_empty() && w.store.state().files.contains_key("a.txt"));
}

#[test]
fn an_attempt_cut_short_is_not_waited_for() {
    let mut w = World::new();
    let e = w.file("a.txt", b"hello");
    // Its link was issued, its body never finished: no mark. The Disk says
    // the link's operation is in progress, as it does from the start.
    w.disk.ops.insert("op0".into(), OpStatus::InProgress);
    w.attempt("a.txt", 5, None);
    assert_eq!(w.run(&Action::Upload(e)).unwrap(), Done::Uploaded { bytes: 5 });
    assert_eq!(w.disk.called("operation op0"), 0, "never waited for: {:?}", w.disk.calls);
}

#[test]
fn a_move_is_journalled_first_and_its_changes_applied_once_done() {
    let mut w = World::new();
    let e = w.file("new.txt", b"x");
    w.put("old.txt", &e, b"x");
    w.disk.files.insert("/r/old.txt".into(), b"x".to_vec());
    let after =
        vec![Change::Forget { path: "old.txt".into() }, Change::Put { path: "new.txt".into(), rec: FileRec::sent(e.stat, sha(b"x")) }];
    let mv = Action::Move { from: "old.txt".into(), to: "new.txt".into(), kind: Kind::File, after };
    assert_eq!(w.run(&mv).unwrap(), Done::Moved);
    assert_eq!(w.disk.calls, ["move /r/old.txt /r/new.txt"]);
    let st = w.store.state();
    assert!(st.moving.is_none() && st.files.contains_key("new.txt") && !st.files.contains_key("old.txt"));
    // A move whose answer was lost: the next try finds it done.
    w.store.commit(vec![Change::Moving(Some(Moving { from: "old.txt".into(), to: "new.txt".into(), dir: false, after: vec![] }))]).unwrap();
    let mut x = Executor::new(&w.cfg, &mut w.disk, &mut w.store);
    x.finish_move().unwrap();
    assert!(w.store.state().moving.is_none());
}

#[test]
fn a_folder_moved_onto_someone_elses_folder_is_merged_into_it() {
    let mut w = World::new();
    w.disk.dirs.extend(["/r/a".to_string(), "/r/b".to_string()]);
    w.disk.files.insert("/r/a/mine.txt".into(), b"m".to_vec());
    w.disk.files.insert("/r/b/theirs.txt".into(), b"t".to_vec());
    let mv = Action::Move { from: "a".into(), to: "b".into(), kind: Kind::Dir, after: vec![] };
    assert_eq!(w.run(&mv).unwrap(), Done::Moved);
    assert_eq!(w.disk.files.keys().collect::<Vec<_>>(), ["/r/b/mine.txt", "/r/b/theirs.txt"], "theirs stays");
    assert!(!w.disk.dirs.contains("/r/a"));
}

#[test]
fn a_file_is_deleted_only_while_it_holds_what_ysync_sent() {
    let mut w = World::new();
    let e = w.file("a.txt", b"mine");
    w.put("a.txt", &e, b"mine");
    let del = Action::Delete { path: "a.txt".into(), kind: Kind::File, files: 1 };
    // Someone edited it on the web: left alone, and forgotten.
    w.disk.files.insert("/r/a.txt".into(), b"theirs".to_vec());
    assert_eq!(w.run(&del).unwrap(), Done::LeftAlone);
    assert_eq!(w.disk.files["/r/a.txt"], b"theirs");
    assert_eq!(w.disk.called("delete"), 0);
    assert!(!w.store.state().files.contains_key("a.txt"));
    // ysync's own content: one look, one delete, guarded by the md5 it saw.
    w.put("a.txt", &e, b"mine");
    w.disk.files.insert("/r/a.txt".into(), b"mine".to_vec());
    w.disk.calls.clear();
    assert_eq!(w.run(&del).unwrap(), Done::Deleted);
    assert_eq!(w.disk.calls, ["stat /r/a.txt", "delete /r/a.txt"]);
    assert!(w.disk.files.is_empty());
}

#[test]
fn a_folder_with_foreign_content_loses_only_ysyncs_files() {
    let mut w = World::new();
    let e = w.file("mine.txt", b"m");
    w.disk.dirs.insert("/r/d".into());
    w.disk.files.insert("/r/d/mine.txt".into(), b"m".to_vec());
    w.disk.files.insert("/r/d/phone.jpg".into(), b"p".to_vec());
    w.store.commit(vec![Change::Dir { path: "d".into() }]).unwrap();
    w.put("d/mine.txt", &e, b"m");
    let del = Action::Delete { path: "d".into(), kind: Kind::Dir, files: 1 };
    assert_eq!(w.run(&del).unwrap(), Done::Deleted);
    assert_eq!(w.disk.files.keys().collect::<Vec<_>>(), ["/r/d/phone.jpg"]);
    assert!(w.disk.dirs.contains("/r/d"), "the folder stays with what is not ysync's");
}

#[test]
fn a_touched_file_is_recorded_and_a_copy_is_moved_not_sent() {
    let mut w = World::new();
    let e = w.file("a.txt", b"same");
    w.disk.files.insert("/r/a.txt".into(), b"same".to_vec());
    let touched = Action::Check { entry: e.clone(), old_sha256: sha(b"same") };
    assert_eq!(w.run(&touched).unwrap(), Done::Unchanged);
    assert_eq!(w.disk.calls, ["date /r/a.txt"], "nothing sent; the Disk keeps the new time");
    assert_eq!(w.disk.dates["/r/a.txt"].mtime_ns, Some(e.stat.mtime_ns));
    w.disk.calls.clear();
    assert_eq!(w.run(&touched).unwrap(), Done::Unchanged);
    assert!(w.disk.calls.is_empty(), "the same time again: not a request {:?}", w.disk.calls);
    let copy = w.file("copy.txt", b"same");
    w.disk.files.insert("/r/gone.txt".into(), b"same".to_vec());
    w.put("gone.txt", &Entry { stat: Stat { ino: 1, ..copy.stat }, ..copy.clone() }, b"same");
    let a = Action::MoveOrUpload { entry: copy, candidates: vec![("gone.txt".into(), sha(b"same"))] };
    assert_eq!(w.run(&a).unwrap(), Done::Moved);
    assert_eq!(w.disk.calls, ["move /r/gone.txt /r/copy.txt"]);
}

fn file_move(from: &str, to: &str, e: &Entry, bytes: &[u8]) -> Action {
    let rec = FileRec::sent(e.stat, sha(bytes));
    Action::Move {
        from: from.into(),
        to: to.into(),
        kind: Kind::File,
        after: vec![Change::Forget { path: from.into() }, Change::Put { path: to.into(), rec }],
    }
}

#[test]
fn a_move_whose_answer_was_lost_stays_in_doubt_until_finished() {
    let mut w = World::move_in_doubt();
    // The Disk did it; ysync cannot know. Forgetting the intent here would
    // leave b.txt on the Disk unknown to the state if b.txt is deleted
    // locally before the next try (it would only delete a.txt, gone).
    assert!(w.store.state().moving.is_some(), "the move stays in doubt");
    assert!(w.store.state().files.contains_key("a.txt"));
    w.finish_move().unwrap();
    let st = w.store.state();
    assert!(st.moving.is_none() && st.files.contains_key("b.txt") && !st.files.contains_key("a.txt"), "{st:?}");
    assert_eq!(w.disk.files.keys().collect::<Vec<_>>(), ["/r/b.txt"]);
}

/// Found by the soak (seed 1796228687609911497): finishing a move in
/// doubt, the look at its destination failed for now (a 429), and the move
/// was forgotten although the Disk had done it: its file stayed there,
/// unknown to the state. A failed look leaves it in doubt.
#[test]
fn a_move_whose_check_fails_for_now_stays_in_doubt() {
    let mut w = World::move_in_doubt();
    w.disk.lose_answer_to = None;
    w.disk.fail_next = vec![("stat", Error::TooManyRequests(None))];
    assert!(w.finish_move().is_err());
    assert!(w.store.state().moving.is_some(), "still in doubt");
    // The try refused outright (seed 1796229606640112768): the first may
    // still have done it.
    w.disk.fail_next = vec![("move", Error::TooManyRequests(None))];
    assert!(w.finish_move().is_err());
    assert!(w.store.state().moving.is_some(), "still in doubt after a refused try");
    w.finish_move().unwrap();
    let st = w.store.state();
    assert!(st.moving.is_none() && st.files.contains_key("b.txt") && !st.files.contains_key("a.txt"), "{st:?}");
}

/// Found by the soak (seed 1796229180282263035): killed right after a
/// file's deletion went out, the state still recorded it as on the Disk;
/// the same file back here was then taken for synced, and the Disk lacked
/// it for good. The deletion is noted first, as an upload of unknown fate.
#[test]
fn a_file_deletion_is_noted_before_its_request() {
    let mut w = World::new();
    let e = w.file("a.txt", b"hello");
    w.put("a.txt", &e, b"hello");
    w.disk.files.insert("/r/a.txt".into(), b"hello".to_vec());
    w.disk.lose_answer_to = Some("delete");
    assert!(w.delete("a.txt", Kind::File).is_err());
    assert!(w.disk.files.is_empty(), "the Disk did it");
    let scan = crate::scan::Scan { entries: vec![e.clone()], ..Default::default() };
    let opts = crate::plan::Options {
        delete: crate::config::DeleteMode::Trash,
        exclude: vec![],
        max_delete: crate::config::MaxDelete::Percent(100),
        min_age_ns: 0,
        now_ns: 0,
    };
    let plan = crate::plan::plan(&scan, w.store.state(), None, &opts).unwrap();
    assert_eq!(plan.actions, [Action::Upload(e)], "back here: sent again");
}

#[test]
fn a_move_in_doubt_is_finished_before_the_next_move() {
    let mut w = World::new();
    let (b, d) = (w.file("b.txt", b"hello"), w.file("d.txt", b"other"));
    w.put("a.txt", &b, b"hello");
    w.put("c.txt", &d, b"other");
    w.disk.files.insert("/r/a.txt".into(), b"hello".to_vec());
    w.disk.files.insert("/r/c.txt".into(), b"other".to_vec());
    w.disk.lose_answer_to = Some("move");
    assert!(w.run(&file_move("a.txt", "b.txt", &b, b"hello")).is_err());
    assert_eq!(w.run(&file_move("c.txt", "d.txt", &d, b"other")).unwrap(), Done::Moved);
    let st = w.store.state();
    assert_eq!(st.files.keys().collect::<Vec<_>>(), ["b.txt", "d.txt"]);
    assert!(st.moving.is_none());
}

#[test]
fn an_upload_that_landed_but_is_not_shown_yet_is_deleted_when_its_file_is_gone_here() {
    let mut w = World::new();
    // A crash while ysync waited for the Disk to show a fresh upload (R1);
    // the file was then deleted here. The Disk says the upload succeeded:
    // a look that finds nothing is its lag, not the file gone.
    w.disk.files.insert("/r/a.txt".into(), b"hello".to_vec());
    w.disk.hide("/r/a.txt", 2);
    w.disk.ops.insert("op0".into(), OpStatus::Success);
    w.attempt("a.txt", 5, Some(b"hello"));
    crate::retry::clock::warp();
    w.run(&Action::Delete { path: "a.txt".into(), kind: Kind::File, files: 1 }).unwrap();
    assert!(w.disk.files.is_empty(), "{:?}", w.disk.calls);
    assert!(w.store.state().pending.is_empty());
}

/// Found by the soak (seed 1796227903265515132): an upload whose answer a
/// crash lost, its file renamed here meanwhile, and the Disk slow to hash
/// it: after the wait it was taken for someone else's, forgotten, and left
/// on the Disk for good. Now it is asked again next cycle.
#[test]
fn an_upload_still_unhashed_after_the_wait_is_not_taken_for_someone_elses() {
    let mut w = World::new();
    w.disk.files.insert("/r/a.txt".into(), b"hello".to_vec());
    w.disk.slow_hash.insert("/r/a.txt".into(), 1_000);
    w.attempt("a.txt", 5, Some(b"hello"));
    let err = w.delete("a.txt", Kind::File).unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(w.disk.files.contains_key("/r/a.txt") && w.store.state().pending.contains_key("a.txt"), "kept, and remembered");
    w.disk.slow_hash.clear();
    assert_eq!(w.delete("a.txt", Kind::File).unwrap(), Done::Deleted);
    assert!(w.disk.files.is_empty() && w.store.state().pending.is_empty());
}

#[test]
fn a_changed_file_sent_again_and_not_hashed_yet_is_deleted_when_gone_here() {
    let mut w = World::new();
    // Synced as "hi"; "hello" was sent over it and ysync died before the
    // Disk showed its hash; then the file was deleted here. Unhashed and as
    // large as the new upload: still finalising, not someone else's file.
    let e = w.file("a.txt", b"hi");
    w.put("a.txt", &e, b"hi");
    w.disk.files.insert("/r/a.txt".into(), b"hello".to_vec());
    w.disk.hide("/r/a.txt", 0);
    w.disk.ops.insert("op0".into(), OpStatus::Success);
    w.attempt("a.txt", 5, Some(b"hello"));
    crate::retry::clock::warp();
    w.run(&Action::Delete { path: "a.txt".into(), kind: Kind::File, files: 1 }).unwrap();
    assert!(w.disk.files.is_empty(), "{:?}", w.disk.calls);
}

#[test]
fn a_folder_deletion_whose_answer_was_lost_leaves_the_folder_of_unknown_fate() {
    let mut w = World::new();
    w.store.commit(vec![Change::Dir { path: "a".into() }]).unwrap();
    w.disk.dirs.insert("/r/a".into());
    w.disk.lose_answer_to = Some("delete");
    assert!(w.run(&Action::Delete { path: "a".into(), kind: Kind::Dir, files: 0 }).is_err());
    // Gone on the Disk, still recorded: if `a` is made here again before
    // the next cycle, the plan must make it there too, not take it as synced.
    assert!(!w.disk.dirs.contains("/r/a"));
    assert!(w.store.state().dirs.contains("a") && w.store.state().mkdirs.contains("a"));
    // Answered, it is forgotten, the note with it.
    w.disk.dirs.insert("/r/b".into());
    w.store.commit(vec![Change::Dir { path: "b".into() }]).unwrap();
    assert_eq!(w.run(&Action::Delete { path: "b".into(), kind: Kind::Dir, files: 0 }).unwrap(), Done::Deleted);
    assert!(!w.store.state().mkdirs.contains("b") && !w.store.state().dirs.contains("b"));
}

#[test]
fn settle_limit_is_five_seconds_and_two_minutes_per_gib() {
    assert_eq!(settle_limit(0), Duration::from_secs(5));
    assert_eq!(settle_limit(1 << 29), Duration::from_secs(65));
    assert_eq!(settle_limit(1 << 30), Duration::from_secs(125));
}

fn info(free: u64, max_file_size: u64) -> Option<crate::remote::DiskInfo> {
    Some(crate::remote::DiskInfo { login: String::new(), total: 1 << 40, used: 0, free, max_file_size })
}

#[test]
fn a_large_file_over_the_free_space_or_the_file_limit_is_not_sent() {
    const MIN: u64 = 4 << 20; // upload::ROOM_CHECK_MIN
    let mut w = World::new();
    let small = w.file("small.bin", &[1; 1000]);
    w.disk.info = info(0, 1);
    assert!(w.run(&Action::Upload(small)).is_ok(), "small files are sent without asking");
    assert_eq!(w.disk.called("disk"), 0);
    let e = w.file("big.bin", &vec![1; MIN as usize]);
    let cases = [(MIN - 1, 0, "no room"), (MIN, 0, "sent"), (1 << 40, MIN - 1, "too large"), (1 << 40, MIN, "sent")];
    for (free, max, expected) in cases {
        (w.disk.info, w.disk.calls) = (info(free, max), Vec::new());
        let got = match w.run(&Action::Upload(e.clone())) {
            Ok(_) => "sent",
            Err(Error::NoRoom(_)) => "no room",
            Err(Error::TooLarge) => "too large",
            Err(e) => panic!("{e}"),
        };
        assert_eq!(got, expected, "free {free}, limit {max}: {:?}", w.disk.calls);
        assert_eq!(w.disk.called("disk"), 1);
        assert_eq!(w.disk.called("link"), usize::from(got == "sent"), "nothing sent that cannot fit");
    }
}

#[test]
fn the_free_space_is_asked_once_a_cycle_and_what_was_sent_is_counted() {
    const MIN: usize = 4 << 20;
    let mut w = World::new();
    let (a, b) = (w.file("a.bin", &vec![1; MIN]), w.file("b.bin", &vec![2; MIN]));
    w.disk.info = info(MIN as u64 * 3 / 2, 0);
    let mut x = Executor::new(&w.cfg, &mut w.disk, &mut w.store);
    assert!(x.run(&Action::Upload(a)).is_ok());
    assert!(matches!(x.run(&Action::Upload(b.clone())), Err(Error::NoRoom(_))), "the first took the room");
    x.new_cycle();
    assert!(x.run(&Action::Upload(b)).is_ok(), "a new cycle asks again");
    assert_eq!(w.disk.called("disk"), 2);
}

#[test]
fn a_file_gone_since_the_scan_is_vanished_and_one_that_cannot_be_opened_is_an_error() {
    let mut w = World::new();
    let e = w.file("gone.txt", b"x");
    std::fs::remove_file(w.dir.path().join("local/gone.txt")).unwrap();
    assert_eq!(w.run(&Action::Upload(e.clone())).unwrap(), Done::Vanished);
    // Its folder is a file now: not "vanished", an error of this file.
    w.file("gone.txt", b"x");
    let under = Entry { path: "gone.txt/b".into(), ..e };
    assert!(matches!(w.run(&Action::Upload(under)), Err(Error::Local(_))));
    assert!(w.disk.calls.is_empty(), "{:?}", w.disk.calls);
}

#[test]
fn deletions_go_to_the_trash_unless_told_permanently() {
    for (more, trashed) in [("", true), ("delete = permanent\n", false)] {
        let mut w = World::with("/r", more);
        let e = w.file("a.txt", b"hello");
        w.put("a.txt", &e, b"hello");
        w.disk.files.insert("/r/a.txt".into(), b"hello".to_vec());
        w.store.commit(vec![Change::Dir { path: "d".into() }]).unwrap();
        w.disk.dirs.insert("/r/d".into());
        assert_eq!(w.delete("a.txt", Kind::File).unwrap(), Done::Deleted);
        assert_eq!(w.delete("d", Kind::Dir).unwrap(), Done::Deleted);
        assert!(w.disk.files.is_empty() && !w.disk.dirs.contains("/r/d"));
        assert_eq!(w.disk.trashed.len(), if trashed { 2 } else { 0 }, "{more}");
    }
}

#[test]
fn remote_dir_slash_is_never_created() {
    let mut w = World::with("/", "");
    assert_eq!(w.run(&Action::MkdirRoot).unwrap(), Done::Tracked);
    assert!(w.disk.calls.is_empty(), "{:?}", w.disk.calls);
}

#[test]
fn an_upload_of_an_older_version_without_a_mark_is_deleted_by_its_size_only() {
    // States written before ysync noted marks and link times (`at == 0`).
    for (on_disk, at, deleted) in [(&b"hello"[..], 0, true), (&b"hello!"[..], 0, false), (&b"hello"[..], now_secs(), false)] {
        let mut w = World::new();
        w.disk.files.insert("/r/a.txt".into(), on_disk.to_vec());
        let p = Pending { at, ..Pending::new(5, None, None, 0) };
        w.store.commit(vec![Change::Pending { path: "a.txt".into(), pending: p }]).unwrap();
        let done = w.delete("a.txt", Kind::File).unwrap();
        assert_eq!(done == Done::Deleted, deleted, "{on_disk:?} at {at}: {done:?}");
        assert_eq!(w.disk.files.is_empty(), deleted);
    }
}

#[test]
fn an_earlier_upload_that_failed_is_not_waited_for() {
    let mut w = World::new();
    w.disk.ops.insert("op0".into(), OpStatus::Failed);
    w.attempt("a.txt", 5, Some(b"hello"));
    w.delete("a.txt", Kind::File).unwrap();
    assert_eq!(w.disk.calls, ["operation op0", "stat /r/a.txt"], "one look: nothing landed");
}

#[test]
fn an_earlier_upload_still_in_progress_is_waited_for() {
    let mut w = World::new();
    w.disk.files.insert("/r/a.txt".into(), b"hello".to_vec());
    w.disk.ops.insert("op0".into(), OpStatus::Success);
    w.disk.in_progress = 2;
    w.attempt("a.txt", 5, Some(b"hello"));
    assert_eq!(w.delete("a.txt", Kind::File).unwrap(), Done::Deleted);
    assert_eq!(w.disk.called("operation op0"), 3, "{:?}", w.disk.calls);
    assert!(w.disk.files.is_empty());
}

#[test]
fn a_look_asks_again_after_a_transient_error_and_not_after_others() {
    let mut w = World::new();
    let e = w.file("a.txt", b"hello");
    w.put("a.txt", &e, b"hello");
    w.disk.files.insert("/r/a.txt".into(), b"hello".to_vec());
    w.disk.fail_next = vec![("stat", Error::Server(503))];
    assert_eq!(w.delete("a.txt", Kind::File).unwrap(), Done::Deleted);
    assert_eq!(w.disk.calls, ["stat /r/a.txt", "stat /r/a.txt", "delete /r/a.txt"]);
    w.put("a.txt", &e, b"hello");
    w.disk.files.insert("/r/a.txt".into(), b"hello".to_vec());
    w.disk.calls.clear();
    w.disk.fail_next = vec![("stat", Error::Unauthorized)];
    assert!(matches!(w.delete("a.txt", Kind::File), Err(Error::Unauthorized)));
    assert_eq!(w.disk.calls, ["stat /r/a.txt"]);
}

#[test]
fn a_fresh_upload_not_shown_yet_is_moved_once_the_disk_shows_it() {
    let mut w = World::new();
    let e = w.file("b.txt", b"hello");
    w.put("a.txt", &e, b"hello");
    w.disk.files.insert("/r/a.txt".into(), b"hello".to_vec());
    w.disk.hide("/r/a.txt", 2);
    assert_eq!(w.run(&file_move("a.txt", "b.txt", &e, b"hello")).unwrap(), Done::Moved);
    assert_eq!(w.disk.files.keys().collect::<Vec<_>>(), ["/r/b.txt"]);
    // A source that is not there at all: given up within the bound.
    let mut w = World::new();
    let e = w.file("d.txt", b"x");
    w.put("c.txt", &e, b"x");
    assert!(matches!(w.run(&file_move("c.txt", "d.txt", &e, b"x")), Err(Error::NotFound)));
    assert!(w.store.state().files.contains_key("c.txt"));
}

#[test]
fn a_move_is_not_taken_for_done_by_a_destination_of_the_same_size_and_other_content() {
    let mut w = World::new();
    let e = w.file("b.txt", b"hello");
    w.put("a.txt", &e, b"hello");
    w.disk.files.insert("/r/b.txt".into(), b"HELLO".to_vec()); // someone's, same size
    assert!(w.run(&file_move("a.txt", "b.txt", &e, b"hello")).is_err());
    assert!(w.store.state().files.contains_key("a.txt") && !w.store.state().files.contains_key("b.txt"));
}

#[test]
fn a_folder_moved_onto_a_foreign_one_is_merged_into_it_and_its_files_replace_theirs() {
    let mut w = World::new();
    for d in ["/r/a", "/r/a/s", "/r/b", "/r/b/s"] {
        w.disk.dirs.insert(d.into());
    }
    for (p, b) in [("/r/a/f", "ours"), ("/r/a/s/x", "x"), ("/r/b/f", "theirs"), ("/r/b/s/y", "y")] {
        w.disk.files.insert(p.into(), b.as_bytes().to_vec());
    }
    w.store.commit(vec![Change::Dir { path: "a".into() }, Change::Dir { path: "a/s".into() }]).unwrap();
    let m = Action::Move { from: "a".into(), to: "b".into(), kind: Kind::Dir, after: vec![Change::Forget { path: "a".into() }] };
    assert_eq!(w.run(&m).unwrap(), Done::Moved);
    let files: Vec<(&str, &[u8])> = w.disk.files.iter().map(|(p, b)| (p.as_str(), b.as_slice())).collect();
    assert_eq!(files, [("/r/b/f", &b"ours"[..]), ("/r/b/s/x", b"x"), ("/r/b/s/y", b"y")]);
    assert!(!w.disk.dirs.contains("/r/a"));
}

#[test]
fn each_upload_asks_what_it_needs_and_no_more() {
    let mut w = World::new();
    // A changed file: sent over its copy at once.
    let e = w.file("a.txt", b"new!");
    w.put("a.txt", &e, b"old");
    w.disk.files.insert("/r/a.txt".into(), b"old".to_vec());
    w.run(&Action::Upload(e)).unwrap();
    assert_eq!(w.disk.calls, ["link /r/a.txt", "put /r/a.txt", "date /r/a.txt"]);
    // A new file where the Disk holds other content (an older state): the
    // refusal, a look, then sent over it.
    w.disk.calls.clear();
    let e = w.file("b.txt", b"mine");
    w.disk.files.insert("/r/b.txt".into(), b"MINE".to_vec()); // same size
    assert_eq!(w.run(&Action::Upload(e)).unwrap(), Done::Uploaded { bytes: 4 });
    assert_eq!(w.disk.calls, ["link /r/b.txt", "stat /r/b.txt", "link /r/b.txt", "put /r/b.txt", "date /r/b.txt"]);
    assert_eq!(w.disk.files["/r/b.txt"], b"mine");
    // Adoption that finds other content: sent over it at once.
    w.disk.calls.clear();
    let e = w.file("c.txt", b"mine");
    w.disk.files.insert("/r/c.txt".into(), b"othr".to_vec());
    let adopt = Action::Adopt { entry: e, sha256: crate::testkit::file_of(b"othr").sha256, mtime_ns: None };
    assert_eq!(w.run(&adopt).unwrap(), Done::Uploaded { bytes: 4 });
    assert_eq!(w.disk.calls, ["link /r/c.txt", "put /r/c.txt", "date /r/c.txt"]);
    // A 503 on the body: sent again with a new link.
    w.disk.calls.clear();
    let e = w.file("d.txt", b"data");
    w.disk.fail_next = vec![("put", Error::Server(503))];
    assert_eq!(w.run(&Action::Upload(e)).unwrap(), Done::Uploaded { bytes: 4 });
    assert_eq!(w.disk.calls, ["link /r/d.txt", "put /r/d.txt", "link /r/d.txt", "put /r/d.txt", "date /r/d.txt"]);
}

#[test]
fn bwlimit_holds_the_upload_to_its_rate() {
    // 32 KiB at 64 KiB/s: half a second at least (a slow machine only
    // makes it longer). Real time: the pacing sleeps in the thread.
    let body: &[u8] = &[0; 32 << 10];
    let started = std::time::Instant::now();
    let mut out = Vec::new();
    std::io::copy(&mut super::upload::Meter::new(body, "a", 32 << 10, 64 << 10), &mut out).unwrap();
    assert_eq!(out.len(), 32 << 10);
    assert!(started.elapsed() >= Duration::from_millis(490), "{:?}", started.elapsed());
}

#[test]
fn a_look_that_fails_for_now_is_no_reason_to_stop_an_upload_but_a_final_error_is() {
    let mut w = World::new();
    let e = w.file("b.txt", b"mine");
    w.disk.files.insert("/r/b.txt".into(), b"MINE".to_vec());
    w.disk.fail_next = vec![("stat", Error::Server(503))];
    assert_eq!(w.run(&Action::Upload(e.clone())).unwrap(), Done::Uploaded { bytes: 4 });
    w.store.commit(vec![Change::Forget { path: "b.txt".into() }]).unwrap();
    w.disk.files.insert("/r/b.txt".into(), b"MINE".to_vec());
    w.disk.fail_next = vec![("stat", Error::Unauthorized)];
    assert!(matches!(w.run(&Action::Upload(e)), Err(Error::Unauthorized)));
}

#[test]
fn a_folder_deleted_here_keeps_on_the_disk_what_someone_else_changed_or_put_there() {
    let mut w = World::new();
    for d in ["/r/d", "/r/d/s"] {
        w.disk.dirs.insert(d.into());
    }
    let (x, y) = (w.file("x", b"hello"), w.file("y", b"hello"));
    w.store.commit(vec![Change::Dir { path: "d".into() }, Change::Dir { path: "d/s".into() }]).unwrap();
    w.put("d/x", &x, b"hello");
    w.put("d/s/y", &y, b"hello");
    w.disk.files.insert("/r/d/x".into(), b"HELLO".to_vec()); // edited on the web, same size
    w.disk.files.insert("/r/d/s/y".into(), b"hello".to_vec());
    w.disk.files.insert("/r/d/theirs".into(), b"theirs".to_vec());
    assert_eq!(w.delete("d", Kind::Dir).unwrap(), Done::Deleted);
    assert_eq!(w.disk.files.keys().collect::<Vec<_>>(), ["/r/d/theirs", "/r/d/x"]);
    assert!(!w.disk.dirs.contains("/r/d/s"), "ysync's own sub-folder goes whole");
    assert_eq!(w.disk.called("delete"), 1, "{:?}", w.disk.calls);
}

#[test]
fn an_earlier_upload_whose_operation_never_ends_is_waited_for_a_bounded_time() {
    let mut w = World::new();
    w.disk.ops.insert("op0".into(), OpStatus::InProgress);
    w.attempt("a.txt", 5, Some(b"hello"));
    w.delete("a.txt", Kind::File).unwrap();
    assert!(w.disk.called("operation op0") > 1, "{:?}", w.disk.calls);
}

#[test]
fn a_throttled_type_goes_up_under_a_temporary_name_and_is_moved_into_place() {
    let mut w = World::new();
    let e = w.file("v.mp4", b"video");
    w.run(&Action::Upload(e)).unwrap();
    let temp = format!("/r/{}", crate::media::temp_name("v.mp4"));
    assert_eq!(w.disk.calls, [format!("link {temp}"), format!("put {temp}"), format!("move {temp} /r/v.mp4"), "date /r/v.mp4".into()]);
    assert_eq!(w.disk.files.keys().collect::<Vec<_>>(), ["/r/v.mp4"]);
    // Not shown yet right after its upload (R1): moved once it is.
    let e = w.file("w.mp4", b"video2");
    w.disk.lag_next = Some(2);
    w.run(&Action::Upload(e)).unwrap();
    assert_eq!(w.disk.files.keys().collect::<Vec<_>>(), ["/r/v.mp4", "/r/w.mp4"]);
}

/// Found by the soak (seed 1796227410780446408): the file was in place
/// already, and removing the temporary copy failed; it stayed on the Disk
/// for good. Now the next cycle removes it and sends nothing.
#[test]
fn a_temporary_that_cannot_be_removed_is_removed_next_time_and_nothing_sent_again() {
    let mut w = World::new();
    let e = w.file("v.mp4", b"video");
    w.disk.files.insert("/r/v.mp4".into(), b"video".to_vec());
    w.disk.fail_next = vec![("move", Error::AlreadyExists), ("delete", Error::Server(503))];
    assert_eq!(w.run(&Action::Upload(e.clone())).unwrap(), Done::Uploaded { bytes: 5 });
    let temp = format!("/r/{}", crate::media::temp_name("v.mp4"));
    assert!(w.disk.files.contains_key(&temp), "left, for now");
    assert!(w.store.state().pending.contains_key("v.mp4"), "and remembered");
    let received = w.disk.received;
    assert_eq!(w.run(&Action::Upload(e)).unwrap(), Done::Adopted);
    assert_eq!(w.disk.files.keys().collect::<Vec<_>>(), ["/r/v.mp4"], "{:?}", w.disk.calls);
    assert_eq!(w.disk.received, received, "not sent again");
    assert!(w.store.state().pending.is_empty());
}

#[test]
fn a_temporary_upload_meets_what_is_at_its_real_name() {
    // A new file (the state says) where the Disk holds the same bytes: the
    // temporary copy goes, the file is there. Other bytes: replaced.
    for (there, calls) in [(&b"video"[..], 6), (&b"VIDEO"[..], 6)] {
        let mut w = World::new();
        let e = w.file("v.mp4", b"video");
        w.disk.files.insert("/r/v.mp4".into(), there.to_vec());
        // Refused without overwrite first (the state is older than the Disk).
        w.disk.fail_next = vec![("move", Error::AlreadyExists)];
        w.run(&Action::Upload(e)).unwrap();
        assert_eq!(w.disk.files.keys().collect::<Vec<_>>(), ["/r/v.mp4"], "{:?}", w.disk.calls);
        assert_eq!(w.disk.files["/r/v.mp4"], b"video");
        assert_eq!(w.disk.calls.len(), calls, "{:?}", w.disk.calls);
    }
}

#[test]
fn a_temporary_upload_that_fails_for_good_is_removed() {
    let mut w = World::new();
    let e = w.file("v.mp4", b"video");
    w.disk.fail_next = vec![("move", Error::Forbidden("DiskForbidden".into()))];
    assert!(w.run(&Action::Upload(e.clone())).is_err());
    assert!(w.disk.files.is_empty(), "{:?}", w.disk.calls);
    // And the body's own failure.
    w.disk.fail_next = vec![("put", Error::Forbidden("DiskForbidden".into()))];
    assert!(w.run(&Action::Upload(e)).is_err());
    assert!(w.disk.files.is_empty(), "{:?}", w.disk.calls);
}

#[test]
fn an_upload_whose_answer_was_lost_waits_for_its_operation_then_for_the_disk_to_show_it() {
    let mut w = World::new();
    let e = w.file("a.bin", &[7; 100]);
    (w.disk.lose_answer, w.disk.in_progress, w.disk.lag_next) = (true, 2, Some(2));
    assert_eq!(w.run(&Action::Upload(e.clone())).unwrap(), Done::Uploaded { bytes: 100 });
    assert_eq!(w.disk.called("put"), 1, "landed: not sent again: {:?}", w.disk.calls);
    // An operation that never ends, and nothing shown: sent again, in time.
    let mut w = World::new();
    let e = w.file("a.bin", &[7; 100]);
    w.disk.lose_answer = true;
    w.disk.in_progress = u64::MAX;
    w.disk.hide("/r/a.bin", 1000);
    assert_eq!(w.run(&Action::Upload(e)).unwrap(), Done::Uploaded { bytes: 100 });
    assert!(w.disk.called("operation") > 1, "{:?}", w.disk.calls);
    assert_eq!(w.disk.called("put"), 2);
}

#[test]
fn an_upload_answered_202_is_confirmed_by_looks_alone() {
    let mut w = World::new();
    let e = w.file("a.txt", b"hello");
    w.disk.lag_next = Some(2);
    w.run(&Action::Upload(e)).unwrap();
    assert_eq!(w.disk.called("operation"), 0, "{:?}", w.disk.calls);
    assert_eq!(w.disk.called("put"), 1);
}

#[test]
fn a_new_attempt_notes_the_size_it_sends() {
    let mut w = World::new();
    let e = w.file("a.txt", b"longer now");
    w.attempt("a.txt", 5, None);
    w.disk.fail_next = vec![("put", Error::Forbidden("DiskForbidden".into()))];
    assert!(w.run(&Action::Upload(e)).is_err());
    assert_eq!(w.store.state().pending["a.txt"].size, 10);
}

#[test]
fn a_temporary_upload_the_disk_cannot_move_yet_is_moved_again_and_one_blocked_by_a_folder_fails() {
    let mut w = World::new();
    let e = w.file("v.mp4", b"video");
    // Shown, yet not movable for a moment (R1: 404s right after an upload).
    w.disk.fail_next = vec![("move", Error::NotFound)];
    w.run(&Action::Upload(e.clone())).unwrap();
    assert_eq!(w.disk.files.keys().collect::<Vec<_>>(), ["/r/v.mp4"], "{:?}", w.disk.calls);
    assert_eq!(w.disk.called("move"), 2);
    // A folder someone made at its name: the move is refused whatever
    // ysync asks; the upload fails, and its temporary copy goes.
    let mut w = World::new();
    let e = w.file("v.mp4", b"video");
    w.disk.dirs.insert("/r/v.mp4".into());
    assert!(matches!(w.run(&Action::Upload(e)), Err(Error::AlreadyExists)));
    assert!(w.disk.files.is_empty(), "{:?}", w.disk.calls);
}

#[test]
fn a_folder_at_an_empty_files_place_is_not_that_file() {
    // The source is gone and the destination is there: done only if it
    // holds what the move brings. A folder where an empty file should be
    // (a listing gives folders no size and no hash) is not it.
    let mut w = World::new();
    let e = w.file("e", b"");
    w.store.commit(vec![Change::Dir { path: "a".into() }]).unwrap();
    w.put("a/e", &e, b"");
    for d in ["/r/b", "/r/b/e"] {
        w.disk.dirs.insert(d.into());
    }
    let after = vec![
        Change::Forget { path: "a".into() },
        Change::Dir { path: "b".into() },
        Change::Put { path: "b/e".into(), rec: FileRec::sent(e.stat, sha(b"")) },
    ];
    assert!(w.run(&Action::Move { from: "a".into(), to: "b".into(), kind: Kind::Dir, after }).is_err());
    assert!(w.store.state().files.contains_key("a/e"), "the state stays as it was");
}

#[test]
fn a_temporary_upload_that_never_becomes_movable_fails_within_the_bound() {
    let mut w = World::new();
    let e = w.file("v.mp4", b"video");
    w.disk.fail_next = (0..1000).map(|_| ("move", Error::NotFound)).collect();
    assert!(matches!(w.run(&Action::Upload(e)), Err(Error::NotFound)));
    assert!(w.disk.called("move") < 100, "{}", w.disk.called("move"));
}
