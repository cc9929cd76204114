//! Renames, found without reading a byte: pairs of a vanished tracked file
//! and a new one with its inode, size and mtime, promoted to one folder
//! move when at least half of a vanished folder's files reappear under one
//! new folder.

use std::borrow::Cow;
use std::collections::HashMap;

use super::{Action, files_under};
use crate::scan::{Entry, Kind, Scan, Stat, is_under};
use crate::state::{Change, FileRec, State};

/// Renames, found without reading a byte: a new file with the inode, size
/// and mtime of a vanished tracked one is that file under a new name. When
/// at least half of a vanished folder's files reappear under one new folder
/// (same relative paths), the folder itself moved: one request for all.
/// Returns the moves, and leaves `state` as it will be after them (changed
/// in place when it is owned: a moved folder's records are not copied).
pub(super) fn find_moves(scan: &Scan, state: &mut Cow<'_, State>, kept: &dyn Fn(&str) -> bool) -> Vec<Action> {
    let (dir_moves, pairs) = {
        let state: &State = state;
        let Some((dir_moves, pairs)) = pair(scan, state, kept) else { return Vec::new() };
        // The files that go with their folder need nothing more: only the
        // others are kept, with their old paths owned (few, but for a
        // folder that moved by halves).
        let pairs: Vec<(String, &Entry)> = pairs
            .into_iter()
            .filter(|(from, e)| {
                let (d, n) = strip_common_tail(from, &e.path);
                !dir_moves
                    .iter()
                    .any(|(d2, n2)| is_under(from, d2) && (d == d2 && n == n2 || is_under(d, d2) && n == format!("{n2}{}", &d[d2.len()..])))
            })
            .map(|(from, e)| (from.to_string(), e))
            .collect();
        (dir_moves, pairs)
    };
    let after = state.to_mut();
    let mut actions = Vec::new();
    for (d, n) in &dir_moves {
        // Renaming a folder leaves its files' metadata as it was, ctime
        // too: the records move as they are, and a file whose ctime changed
        // (moved in by hand, or edited with its mtime put back) is checked
        // by its hash, never taken as unchanged.
        let rekey = Change::Rekey { from: d.clone(), to: n.clone(), files: files_under(after, d) };
        after.apply(&rekey);
        actions.push(Action::Move { from: d.clone(), to: n.clone(), kind: Kind::Dir, after: vec![rekey] });
    }
    for (from, e) in pairs {
        // Its remote path after any folder move it was inside of.
        let from_now =
            dir_moves.iter().find(|(d2, _)| is_under(&from, d2)).map_or(from.clone(), |(d2, n2)| format!("{n2}{}", &from[d2.len()..]));
        // Brought by its folder's move to where a folder of its own name now
        // holds it (or the reverse): it cannot move there; sent again.
        if is_under(&e.path, &from_now) || is_under(&from_now, &e.path) {
            continue;
        }
        let Some(old) = after.files.remove(&from_now) else { continue };
        let rec = FileRec { stat: Stat { ctime_ns: e.stat.ctime_ns, ..old.stat }, ..old };
        after.files.insert(e.path.clone(), rec.clone());
        let after_changes = vec![Change::Forget { path: from_now.clone() }, Change::Put { path: e.path.clone(), rec }];
        actions.push(Action::Move { from: from_now, to: e.path.clone(), kind: Kind::File, after: after_changes });
    }
    actions
}

/// The pairs of a vanished tracked file and a new file with its inode,
/// size and mtime, and the folder moves they vote for; `None` when there
/// are no pairs.
#[allow(clippy::type_complexity)]
fn pair<'s, 't>(
    scan: &'s Scan,
    state: &'t State,
    kept: &dyn Fn(&str) -> bool,
) -> Option<(Vec<(String, String)>, Vec<(&'t str, &'s Entry)>)> {
    let exists_as = |p: &str, kind: Kind| scan.get(p).is_some_and(|e| e.kind == kind);
    let mut by_inode: HashMap<(u64, u64, i64), Option<&str>> = HashMap::new();
    for (p, r) in &state.files {
        if !exists_as(p, Kind::File) && !kept(p) && !state.pending.contains_key(p) {
            // Two vanished files with one key (hard links): ambiguous, skip.
            by_inode.entry((r.stat.ino, r.stat.size, r.stat.mtime_ns)).and_modify(|v| *v = None).or_insert(Some(p.as_str()));
        }
    }
    if by_inode.is_empty() {
        return None;
    }
    let mut pairs: Vec<(&'t str, &'s Entry)> = Vec::new();
    for e in scan.entries.iter().filter(|e| e.kind == Kind::File && !state.files.contains_key(&e.path) && !kept(&e.path)) {
        // A file moved into a folder that took its own name, or out of its
        // folder onto the folder's name, cannot be moved on the Disk: the
        // folder and the file would each have to go first. It is sent again.
        // So is one whose old path is a new folder while it goes into a
        // folder to be made where a tracked file is: two files swapped with
        // two folders (`a` into new `b/`, `b` into new `a/`) would each
        // wait for the other's folder.
        if let Some(slot) = by_inode.get_mut(&(e.stat.ino, e.stat.size, e.stat.mtime_ns))
            && let Some(from) = slot.take()
            && !is_under(&e.path, from)
            && !is_under(from, &e.path)
            && !(exists_as(from, Kind::Dir) && e.path.match_indices('/').any(|(i, _)| state.files.contains_key(&e.path[..i])))
        {
            pairs.push((from, e));
        }
    }
    drop(by_inode);
    if pairs.is_empty() {
        return None;
    }

    // Folder moves: vote by the folders that the common tail leaves.
    let mut votes: HashMap<(String, String), u64> = HashMap::new();
    for (from, e) in &pairs {
        let (d, n) = strip_common_tail(from, &e.path);
        let movable = state.dirs.contains(d) && !exists_as(d, Kind::Dir) && !kept(d) && exists_as(n, Kind::Dir) && !state.dirs.contains(n);
        let no_pending = !state.pending.keys().any(|p| is_under(p, d));
        if !d.is_empty() && !n.is_empty() && movable && no_pending {
            *votes.entry((d.to_string(), n.to_string())).or_default() += 1;
        }
    }
    let mut ranked: Vec<((String, String), u64)> = votes.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut dir_moves: Vec<(String, String)> = Vec::new();
    for ((d, n), v) in ranked {
        let taken = dir_moves
            .iter()
            .any(|(d2, n2)| d2 == &d || n2 == &n || is_under(&d, d2) || is_under(d2, &d) || is_under(&n, n2) || is_under(n2, &n));
        if !taken && v * 2 >= files_under(state, &d) {
            dir_moves.push((d, n));
        }
    }
    Some((dir_moves, pairs))
}

/// `a/b/c/x`, `z/c/x` → (`a/b`, `z`): what is left of each once the common
/// trailing components are removed.
pub(super) fn strip_common_tail<'a>(a: &'a str, b: &'a str) -> (&'a str, &'a str) {
    let (mut i, mut j) = (a.len(), b.len());
    loop {
        let ca = a[..i].rfind('/');
        let cb = b[..j].rfind('/');
        let (Some(ca), Some(cb)) = (ca, cb) else { return (&a[..i], &b[..j]) };
        if a[ca..i] != b[cb..j] {
            return (&a[..i], &b[..j]);
        }
        (i, j) = (ca, cb);
    }
}
