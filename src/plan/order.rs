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
use crate::state::State;

/// Beyond this many actions the plain path order is kept: the waits cost
/// a pass over the rest per action.
const ARRANGE_MAX: usize = 5_000;

fn at_or_under(p: &str, d: &str) -> bool {
    p == d || is_under(p, d)
}

fn parent(p: &str) -> &str {
    p.rfind('/').map_or("", |i| &p[..i])
}

/// Orders `todo` (deletions first, then creates and moves, each by path)
/// so that each action comes after what it needs. `synced` is the state
/// before any move: the folders there already.
pub(super) fn arrange(todo: Vec<Action>, synced: &State) -> Vec<Action> {
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
fn folder_there(p: &str, done: &[Action], synced: &State) -> bool {
    let made = done.iter().any(|a| match a {
        Action::Mkdir(d) | Action::AdoptDir(d) => d == p,
        Action::Move { to, kind: Kind::Dir, .. } => at_or_under(p, to),
        _ => false,
    });
    let gone = done.iter().any(|a| match a {
        Action::Delete { path, .. } => at_or_under(p, path),
        Action::Move { from, kind: Kind::Dir, .. } => at_or_under(p, from),
        _ => false,
    });
    p.is_empty() || made || (synced.dirs.contains(p) && !gone)
}

fn ready(a: &Action, left: &[Action], done: &[Action], synced: &State) -> bool {
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
