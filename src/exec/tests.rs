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
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("local")).unwrap();
        let text = format!("token = t\nlocal_dir = {0}/local\nremote_dir = /r\nstate_file = {0}/state.json\n", dir.path().display());
        let cfg = crate::config::parse(Path::new("/etc/y.conf"), &text, &|_| None).unwrap();
        let mut store = Store::open(&cfg.state_file).unwrap();
        store.load("/r").unwrap();
        store.commit(vec![Change::Dir { path: String::new() }]).unwrap();
        let disk = MemDisk::with_folder("/r");
        World { dir, cfg, store, disk }
    }

    /// Writes a local file; its entry as the scan would see it.
    fn file(&self, path: &str, bytes: &[u8]) -> Entry {
        let p = self.dir.path().join("local").join(path);
        std::fs::write(&p, bytes).unwrap();
        scan::file_entry(path.into(), &std::fs::metadata(&p).unwrap())
    }

    fn run(&mut self, a: &Action) -> Result<Done, Error> {
        Executor::new(&self.cfg, &mut self.disk, &mut self.store).run(a)
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
    assert_eq!(w.disk.calls, ["link /r/a.txt", "put /r/a.txt"]);
    assert_eq!(w.disk.files["/r/a.txt"], b"hello");
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
    let p = Pending { mark: Some(Mark::Sha256(sha(b"hello"))), ..Pending::new(5, Some("op0".into()), None, now_secs()) };
    w.store.commit(vec![Change::Pending { path: "a.txt".into(), pending: p }]).unwrap();
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
    let p = Pending::new(5, Some("op0".into()), None, now_secs());
    w.store.commit(vec![Change::Pending { path: "a.txt".into(), pending: p }]).unwrap();
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
    let touched = Action::Check { entry: e.clone(), old_sha256: sha(b"same") };
    assert_eq!(w.run(&touched).unwrap(), Done::Unchanged);
    assert!(w.disk.calls.is_empty());
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
    let mut w = World::new();
    let e = w.file("b.txt", b"hello");
    w.put("a.txt", &e, b"hello");
    w.disk.files.insert("/r/a.txt".into(), b"hello".to_vec());
    w.disk.lose_answer_to = Some("move");
    assert!(w.run(&file_move("a.txt", "b.txt", &e, b"hello")).is_err());
    // The Disk did it; ysync cannot know. Forgetting the intent here would
    // leave b.txt on the Disk unknown to the state if b.txt is deleted
    // locally before the next try (it would only delete a.txt, gone).
    assert!(w.store.state().moving.is_some(), "the move stays in doubt");
    assert!(w.store.state().files.contains_key("a.txt"));
    Executor::new(&w.cfg, &mut w.disk, &mut w.store).finish_move().unwrap();
    let st = w.store.state();
    assert!(st.moving.is_none() && st.files.contains_key("b.txt") && !st.files.contains_key("a.txt"), "{st:?}");
    assert_eq!(w.disk.files.keys().collect::<Vec<_>>(), ["/r/b.txt"]);
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
    let p = Pending { mark: Some(Mark::Sha256(sha(b"hello"))), ..Pending::new(5, Some("op0".into()), None, now_secs()) };
    w.store.commit(vec![Change::Pending { path: "a.txt".into(), pending: p }]).unwrap();
    crate::retry::clock::warp();
    w.run(&Action::Delete { path: "a.txt".into(), kind: Kind::File, files: 1 }).unwrap();
    assert!(w.disk.files.is_empty(), "{:?}", w.disk.calls);
    assert!(w.store.state().pending.is_empty());
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
    let p = Pending { mark: Some(Mark::Sha256(sha(b"hello"))), ..Pending::new(5, Some("op0".into()), None, now_secs()) };
    w.store.commit(vec![Change::Pending { path: "a.txt".into(), pending: p }]).unwrap();
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
