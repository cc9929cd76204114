//! The order of the actions that change which paths exist on the Disk:
//! deletions that clear the way for something new, new folders, and moves.
//! By path, parents first, is right almost always; renames combined with a
//! file becoming a folder (or the reverse) need more: a rename out of a
//! folder that goes must happen before it goes, a folder that replaces a
//! renamed file after the rename, a deletion inside a moved folder after the
//! move. Each action waits until what it needs is done; when nothing can go
//! (a cycle: a file renamed to the path of its own folder), the first one
//! does, and a later cycle repairs what failed.

use super::Action;
use crate::scan::{Kind, is_under};
use std::collections::BTreeSet;

/// Beyond this many actions the plain path order is kept: the waits cost
/// a pass over the rest per action.
const ARRANGE_MAX: usize = 5_000;

pub(super) fn at_or_under(p: &str, d: &str) -> bool {
    p == d || is_under(p, d)
}

pub(super) fn parent(p: &str) -> &str {
    p.rfind('/').map_or("", |i| &p[..i])
}

/// Orders `todo` (deletions first, then creates and moves, each by path)
/// so that each action comes after what it needs. `synced`: the folders
/// of the state before any move, there already.
pub(super) fn arrange(todo: Vec<Action>, synced: &BTreeSet<String>) -> Vec<Action> {
    let moves = todo.iter().filter(|a| matches!(a, Action::Move { .. })).count();
    if moves == 0 || todo.len() > ARRANGE_MAX {
        return todo;
    }
    let mut left = todo;
    let mut done: Vec<Action> = Vec::with_capacity(left.len());
    while !left.is_empty() {
        let i = (0..left.len()).find(|&i| ready(&left[i], &left, &done, synced)).unwrap_or(0);
        done.push(left.remove(i));
    }
    done
}

/// Is the folder `p` on the Disk once `done` has been done?
fn folder_there(p: &str, done: &[Action], synced: &BTreeSet<String>) -> bool {
    let made = done.iter().any(|a| match a {
        Action::Mkdir(d) | Action::AdoptDir(d) => d == p,
        // A folder move brings its folders, not whatever is under its new
        // path: a file it brings is no folder to make things in.
        Action::Move { from, to, kind: Kind::Dir, .. } => {
            p == to || (is_under(p, to) && synced.contains(&format!("{from}{}", &p[to.len()..])))
        }
        _ => false,
    });
    let gone = done.iter().any(|a| match a {
        Action::Delete { path, .. } => at_or_under(p, path),
        Action::Move { from, kind: Kind::Dir, .. } => at_or_under(p, from),
        _ => false,
    });
    p.is_empty() || made || (synced.contains(p) && !gone)
}

fn ready(a: &Action, left: &[Action], done: &[Action], synced: &BTreeSet<String>) -> bool {
    let others = || left.iter().filter(move |b| !std::ptr::eq(*b, a));
    // A path something still to be done deletes, or still has to leave.
    let cleared_later = |p: &str| {
        others().any(|b| match b {
            Action::Delete { path, .. } => at_or_under(p, path),
            Action::Move { from, kind: Kind::File, .. } => from == p,
            _ => false,
        })
    };
    // A path that a folder move still to be done brings.
    let brought_later = |p: &str| others().any(|b| matches!(b, Action::Move { to, kind: Kind::Dir, .. } if is_under(p, to)));
    match a {
        // Not before what still has to move out of it (unless it moves to
        // the very path being cleared: then nothing can wait for the other).
        Action::Delete { path, .. } => {
            let source_inside =
                others().any(|b| matches!(b, Action::Move { from, to, .. } if is_under(from, path) && !at_or_under(to, path)));
            !source_inside && !brought_later(path)
        }
        Action::Mkdir(p) | Action::AdoptDir(p) => folder_there(parent(p), done, synced) && !cleared_later(p),
        Action::Move { from, to, .. } => folder_there(parent(to), done, synced) && !cleared_later(to) && !brought_later(from),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mkdir(p: &str) -> Action {
        Action::Mkdir(p.into())
    }
    fn delete(p: &str) -> Action {
        Action::Delete { path: p.into(), kind: Kind::Dir, files: 0 }
    }
    fn delete_file(p: &str) -> Action {
        Action::Delete { path: p.into(), kind: Kind::File, files: 1 }
    }
    fn mv(from: &str, to: &str, kind: Kind) -> Action {
        Action::Move { from: from.into(), to: to.into(), kind, after: vec![] }
    }
    fn synced(dirs: &[&str]) -> BTreeSet<String> {
        std::iter::once("").chain(dirs.iter().copied()).map(String::from).collect()
    }
    fn shown(v: Vec<Action>) -> Vec<String> {
        v.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn without_moves_the_path_order_stays() {
        let todo = vec![delete("d"), mkdir("b"), mkdir("a")];
        assert_eq!(arrange(todo.clone(), &synced(&["d"])), todo);
    }

    #[test]
    fn a_rename_out_of_a_folder_that_goes_comes_first() {
        let todo = vec![delete("d"), mv("d/f", "g", Kind::File)];
        assert_eq!(shown(arrange(todo, &synced(&["d"]))), ["move d/f -> g", "delete folder d (0 files)"]);
    }

    #[test]
    fn a_folder_taking_a_renamed_files_path_waits_for_the_rename_which_waits_for_its_folder() {
        let todo = vec![mkdir("a"), mkdir("c"), mv("a", "c/f", Kind::File)];
        assert_eq!(shown(arrange(todo, &synced(&[]))), ["mkdir c", "move a -> c/f", "mkdir a"]);
    }

    #[test]
    fn a_deletion_inside_a_moved_folder_waits_for_the_move() {
        let todo = vec![delete("n/x"), mv("o", "n", Kind::Dir), mkdir("n/x")];
        assert_eq!(shown(arrange(todo, &synced(&["o"]))), ["move folder o -> n (0 files)", "delete folder n/x (0 files)", "mkdir n/x"]);
    }

    #[test]
    fn a_rename_into_a_moved_folder_waits_for_the_folder_and_from_it_too() {
        // `o` -> `n`; then `n/f` (moved with it) -> `m/f`, and `k` -> `n/k`.
        let todo = vec![mv("n/f", "m/f", Kind::File), mv("k", "n/k", Kind::File), mv("o", "n", Kind::Dir)];
        let got = shown(arrange(todo, &synced(&["o", "m"])));
        assert_eq!(got, ["move folder o -> n (0 files)", "move n/f -> m/f", "move k -> n/k"]);
        let todo = vec![mv("n/f", "m/f", Kind::File), mv("o", "n", Kind::Dir), mkdir("m")];
        assert_eq!(shown(arrange(todo, &synced(&["o"]))), ["move folder o -> n (0 files)", "mkdir m", "move n/f -> m/f"]);
    }

    #[test]
    fn a_folder_deleted_or_moved_away_is_no_place_to_go() {
        let gone = [delete("d")];
        assert!(!folder_there("d", &gone, &synced(&["d"])) && !folder_there("d/e", &gone, &synced(&["d", "d/e"])));
        let moved = [mv("d", "n", Kind::Dir)];
        assert!(!folder_there("d", &moved, &synced(&["d"])) && folder_there("n/e", &moved, &synced(&["d", "d/e"])));
        assert!(folder_there("", &[], &synced(&[])) && folder_there("s", &[], &synced(&["s"])) && !folder_there("t", &[], &synced(&["s"])));
        assert!(folder_there("m", &[mkdir("m")], &synced(&[])) && folder_there("m", &[Action::AdoptDir("m".into())], &synced(&[])));
    }

    #[test]
    fn a_file_a_folder_move_brings_is_no_folder_until_it_is_replaced_by_one() {
        // `a` -> `a+b` brings the file `a+b/a+b`, which is a folder here now
        // (found by the planner properties, seed 1796228379111087636).
        let todo = vec![delete_file("a+b/a+b"), mkdir("a+b/a+b"), mkdir("a+b/a+b/x"), mv("a", "a+b", Kind::Dir)];
        let got = shown(arrange(todo, &synced(&["a"])));
        assert_eq!(got, ["move folder a -> a+b (0 files)", "delete a+b/a+b", "mkdir a+b/a+b", "mkdir a+b/a+b/x"]);
        assert!(folder_there("n/d", &[mv("o", "n", Kind::Dir)], &synced(&["o", "o/d"])), "a folder it brings is one");
    }

    #[test]
    fn when_nothing_can_go_first_the_first_goes() {
        // A file renamed to its own folder's path: neither can wait.
        let todo = vec![delete("d"), mv("d/f", "d", Kind::File)];
        assert_eq!(shown(arrange(todo, &synced(&["d"]))), ["delete folder d (0 files)", "move d/f -> d"]);
    }

    #[test]
    fn paths_compare_by_component() {
        assert!(at_or_under("a", "a") && at_or_under("a/b", "a") && !at_or_under("ab", "a") && !at_or_under("a", "a/b"));
        assert_eq!((parent("a/b/c"), parent("a")), ("a/b", ""));
    }
}
