//! The planner: scan + state → ordered actions. Pure: no I/O, no clock
//! (the caller passes `now`), so every rule is a unit test away.
//!
//! Order: kind changes (a file that became a folder or back) are deleted
//! first, then `remote_dir`, new folders (parents first), uploads, and the
//! remaining deletions last, so a failed upload never leaves the remote with
//! less than it had.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use crate::config::{DeleteMode, MaxDelete};
use crate::glob::Glob;
use crate::remote::{Item, Tree};
use crate::scan::{Entry, Kind, Scan, is_under};
use crate::state::{Change, FileRec, Fingerprint, Hex, State};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Create `remote_dir` itself, with its parents.
    MkdirRoot,
    Mkdir(String),
    /// Upload a file that is new or whose size changed.
    Upload(Entry),
    /// Same size, other metadata: hash it, upload only if the sha256 differs
    /// from `old_sha256`, else just refresh the state.
    Check {
        entry: Entry,
        old_sha256: String,
    },
    /// Delete a file, or a whole folder with one request.
    Delete {
        path: String,
        kind: Kind,
        files: u64,
    },
    /// `delete = keep`: drop from the state, leave the remote copy.
    Forget {
        path: String,
        kind: Kind,
    },
    /// A rename found by inode: one server-side move, then `after` records
    /// the moved entries under their new paths.
    Move {
        from: String,
        to: String,
        kind: Kind,
        after: Vec<Change>,
    },
    /// A new file as large as some vanished ones (another inode: a copy, or
    /// a move across filesystems): hash it; if it has the sha256 of one of
    /// `candidates` (path, sha256), move that one here, else upload.
    MoveOrUpload {
        entry: Entry,
        candidates: Vec<(String, String)>,
    },
    /// The folder is already on the Disk: just track it.
    AdoptDir(String),
    /// A file of this size is already on the Disk (a first run, or a lost
    /// state): hash the local one; same sha256 → track it, else upload.
    Adopt {
        entry: Entry,
        remote: Item,
    },
}

impl Action {
    pub fn path(&self) -> &str {
        match self {
            Action::MkdirRoot => "",
            Action::Mkdir(p) | Action::AdoptDir(p) => p,
            Action::Adopt { entry, .. } => &entry.path,
            Action::Upload(e) | Action::Check { entry: e, .. } | Action::MoveOrUpload { entry: e, .. } => &e.path,
            Action::Delete { path, .. } | Action::Forget { path, .. } => path,
            Action::Move { to, .. } => to,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Action::MkdirRoot => write!(f, "mkdir (remote_dir)"),
            Action::Mkdir(p) => write!(f, "mkdir {p}"),
            Action::Upload(e) => write!(f, "upload {} ({})", e.path, human_bytes(e.size)),
            Action::Check { entry, .. } => write!(f, "upload-if-changed {} ({})", entry.path, human_bytes(entry.size)),
            Action::Delete { path, kind: Kind::Dir, files } => write!(f, "delete folder {path} ({files} files)"),
            Action::Delete { path, .. } => write!(f, "delete {path}"),
            Action::Forget { path, .. } => write!(f, "forget {path} (delete = keep: the remote copy stays)"),
            Action::Move { from, to, kind: Kind::Dir, after } => {
                let files = after.iter().filter(|c| matches!(c, Change::Put { .. })).count();
                write!(f, "move folder {from} -> {to} ({files} files)")
            }
            Action::Move { from, to, .. } => write!(f, "move {from} -> {to}"),
            Action::MoveOrUpload { entry, .. } => write!(f, "move-or-upload {} ({})", entry.path, human_bytes(entry.size)),
            Action::AdoptDir(p) if p.is_empty() => write!(f, "adopt folder (remote_dir)"),
            Action::AdoptDir(p) => write!(f, "adopt folder {p}"),
            Action::Adopt { entry, .. } => write!(f, "adopt-or-upload {} ({})", entry.path, human_bytes(entry.size)),
        }
    }
}

pub struct Options {
    pub delete: DeleteMode,
    /// Tracked paths matching these are kept even when gone locally:
    /// excluding something never deletes its earlier remote copy.
    pub exclude: Vec<Glob>,
    pub max_delete: MaxDelete,
    /// Files modified less than this many nanoseconds before `now_ns` wait.
    pub min_age_ns: i64,
    pub now_ns: i64,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub actions: Vec<Action>,
    /// Files left for a later cycle because they are younger than `min_age`.
    pub deferred: Vec<String>,
    /// Tracked mount points that are not mounted now (the folder is
    /// missing, on its parent's filesystem again, or empty): nothing at or
    /// under them is touched, and the cycle ends as a safety stop.
    pub unmounted: Vec<String>,
    /// The mount points to remember from now on, when they changed.
    pub mounts: Option<BTreeSet<String>>,
}

/// Why a cycle deletes nothing and stops. Never lose data on a guess.
#[derive(Debug, PartialEq, Eq)]
pub enum Stop {
    /// `local_dir` is empty although the state tracks files (unmounted disk?).
    EmptySource {
        tracked: u64,
    },
    TooManyDeletes {
        count: u64,
        tracked: u64,
        limit: MaxDelete,
    },
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Stop::EmptySource { tracked } => {
                write!(f, "local_dir is empty but {tracked} files were synced from it (is the disk unmounted?); nothing was deleted")
            }
            Stop::TooManyDeletes { count, tracked, limit } => write!(
                f,
                "this cycle would delete {count} of {tracked} synced files, more than max_delete = {limit}; nothing was deleted. \
                 If that is intended, raise max_delete in the config for one run"
            ),
        }
    }
}

/// Below this size a new file is uploaded rather than hashed in the hope of
/// moving a vanished copy: the upload costs about as much.
pub const MOVE_MIN_SIZE: u64 = 64 * 1024;

/// A percentage limit never stops a cycle that deletes fewer files than this,
/// so removing 2 of 3 files is not a safety stop.
pub const PERCENT_FLOOR: u64 = 10;

#[cfg(test)]
pub fn plan(scan: &Scan, state: &State, opts: &Options) -> Result<Plan, Stop> {
    plan_with_remote(scan, state, None, opts)
}

/// `plan`, knowing what is already on the Disk (a listing of `remote_dir`,
/// taken when the state is fresh): what is there already is adopted rather
/// than uploaded again; what only the Disk has is left alone.
pub fn plan_with_remote(scan: &Scan, state: &State, remote: Option<&Tree>, opts: &Options) -> Result<Plan, Stop> {
    if remote.is_none() && unchanged(scan, state) {
        return Ok(Plan::default());
    }
    let seen: HashMap<&str, &Entry> = scan.entries.iter().map(|e| (e.path.as_str(), e)).collect();
    let excluded = |p: &str| {
        let dir = state.dirs.contains(p);
        opts.exclude.iter().any(|g| g.matches(p, dir)) || ancestors(p).any(|a| opts.exclude.iter().any(|g| g.matches(a, true)))
    };
    let unreadable_or_excluded = |p: &str| scan.keeps(p) || (!opts.exclude.is_empty() && excluded(p));
    // An unmounted disk under local_dir is not "everything in it deleted".
    let unmounted: Vec<String> = state.mounts.iter().filter(|m| !unreadable_or_excluded(m) && !mounted(scan, state, m)).cloned().collect();
    let kept = |p: &str| unreadable_or_excluded(p) || unmounted.iter().any(|m| p == m || is_under(p, m));
    let exists_as = |p: &str, kind: Kind| seen.get(p).is_some_and(|e| e.kind == kind);
    let mounts: BTreeSet<String> = scan.mounts.iter().filter(|m| !kept(m)).chain(&unmounted).cloned().collect();

    let tracked = state.files.len() as u64;
    if scan.entries.is_empty() && scan.kept.is_empty() && (tracked > 0 || state.dirs.iter().any(|d| !d.is_empty())) {
        return Err(Stop::EmptySource { tracked });
    }

    // Renames first: the rest of the plan is the ordinary diff against the
    // state as it will be once the moves are done.
    // With `delete = keep` a move would take a copy away from its old path:
    // that is a deletion too, so there are none.
    let (moves, moved) = if opts.delete == DeleteMode::Keep { (Vec::new(), None) } else { find_moves(scan, state, &seen, &kept) };
    let state = moved.as_ref().unwrap_or(state);

    // Deletions: topmost vanished folders, then files outside them.
    let gone_dirs: Vec<&str> =
        state.dirs.iter().map(String::as_str).filter(|d| !d.is_empty() && !exists_as(d, Kind::Dir) && !kept(d)).collect();
    let is_gone_dir = |d: &str| gone_dirs.binary_search(&d).is_ok();
    let under_gone_dir = |p: &str| ancestors(p).any(is_gone_dir);
    let mut deletes = Vec::new();
    for d in gone_dirs.iter().filter(|d| !under_gone_dir(d)) {
        deletes.push((d.to_string(), Kind::Dir, files_under(state, d)));
    }
    // Folders of unknown fate, asked for but never confirmed: gone locally
    // means they go on the Disk too (a 404 is fine).
    for d in state.mkdirs.iter().filter(|d| !exists_as(d, Kind::Dir) && !kept(d) && !under_gone_dir(d)) {
        deletes.push((d.clone(), Kind::Dir, 0));
    }
    // Uploads of unknown fate (pending) are deleted too if the file is gone.
    let unconfirmed = state.pending.keys().filter(|p| !state.files.contains_key(*p));
    for p in state.files.keys().chain(unconfirmed) {
        if !exists_as(p, Kind::File) && !kept(p) && !under_gone_dir(p) {
            deletes.push((p.clone(), Kind::File, 1));
        }
    }
    deletes.sort();

    let keep = opts.delete == DeleteMode::Keep;
    let count: u64 = deletes.iter().map(|d| d.2).sum();
    let limit = opts.max_delete.limit(tracked);
    let floor_ok = matches!(opts.max_delete, MaxDelete::Percent(_)) && count < PERCENT_FLOOR;
    if !keep && count > limit && !floor_ok {
        return Err(Stop::TooManyDeletes { count, tracked, limit: opts.max_delete });
    }

    let mut p = Plan { mounts: (mounts != state.mounts).then_some(mounts), ..Plan::default() };
    let mut late = Vec::new();
    for (path, kind, files) in deletes {
        let action = if keep { Action::Forget { path, kind } } else { Action::Delete { path, kind, files } };
        // Something new now stands at (or under) this path: clear it first.
        let blocks_new = seen.contains_key(action.path()) || has_entry_under(scan, action.path());
        if blocks_new { p.actions.push(action) } else { late.push(action) }
    }
    let remote_dir = |path: &str| remote.is_some_and(|t| t.get(path).is_some_and(|i| i.dir));
    if !state.dirs.contains("") {
        p.actions.push(if remote.is_some() { Action::AdoptDir(String::new()) } else { Action::MkdirRoot });
    }
    // New folders and folder moves create paths: parents first, together.
    let (dir_moves, file_moves): (Vec<Action>, Vec<Action>) =
        moves.into_iter().partition(|m| matches!(m, Action::Move { kind: Kind::Dir, .. }));
    let mut creates: Vec<Action> = scan
        .entries
        .iter()
        .filter(|e| e.kind == Kind::Dir && !state.dirs.contains(&e.path) && !kept(&e.path))
        .map(|e| if remote_dir(&e.path) { Action::AdoptDir(e.path.clone()) } else { Action::Mkdir(e.path.clone()) })
        .collect();
    creates.extend(dir_moves);
    creates.sort_by(|a, b| a.path().cmp(b.path()));
    p.actions.extend(creates);
    p.actions.extend(file_moves);
    let vanished: Vec<(&String, &FileRec)> = if opts.delete == DeleteMode::Keep {
        Vec::new()
    } else {
        state.files.iter().filter(|(k, _)| !exists_as(k, Kind::File) && !kept(k) && !state.pending.contains_key(*k)).collect()
    };
    for e in scan.entries.iter().filter(|e| e.kind == Kind::File && !kept(&e.path)) {
        let old = state.files.get(&e.path);
        // A pending upload may have left other content there: send it again.
        let pending = state.pending.contains_key(&e.path);
        if !pending && old.is_some_and(|r| (r.size, r.mtime, r.ctime, r.ino) == (e.size, e.mtime_ns, e.ctime_ns, e.inode)) {
            continue;
        }
        if opts.min_age_ns > 0 && opts.now_ns - e.mtime_ns < opts.min_age_ns {
            p.deferred.push(e.path.clone());
            continue;
        }
        let same_size: Vec<(String, String)> = vanished
            .iter()
            .filter(|(_, r)| old.is_none() && e.size >= MOVE_MIN_SIZE && r.size == e.size)
            .map(|(k, r)| (k.to_string(), r.sha256.to_string()))
            .collect();
        let on_disk = remote.and_then(|t| t.get(&e.path)).filter(|i| !i.dir && i.size == e.size && old.is_none() && !pending);
        p.actions.push(match old {
            _ if on_disk.is_some() => Action::Adopt { entry: e.clone(), remote: on_disk.cloned().expect("checked") },
            Some(r) if r.size == e.size && !pending => Action::Check { entry: e.clone(), old_sha256: r.sha256.to_string() },
            _ if !same_size.is_empty() => Action::MoveOrUpload { entry: e.clone(), candidates: same_size },
            _ => Action::Upload(e.clone()),
        });
    }
    p.actions.extend(late);
    p.unmounted = unmounted;
    Ok(p)
}

/// Is the tracked mount point `m` mounted now? Not when its folder is gone,
/// is on its parent's filesystem, or is empty while files under it are
/// tracked (an empty mount point, or a fresh filesystem mounted there).
fn mounted(scan: &Scan, state: &State, m: &str) -> bool {
    let empty = !has_entry_under(scan, m) && !scan.kept.iter().any(|k| is_under(k, m));
    scan.mounts.binary_search_by(|x| x.as_str().cmp(m)).is_ok() && !(empty && files_under(state, m) > 0)
}

/// The seal of a state that tracks exactly this scan (see [`State::seal`]):
/// equal to the saved seal exactly when [`unchanged`] would hold, so `once`
/// can skip loading the state.
///
/// Paths the scan keeps (excluded, unreadable) need no care here: when the
/// state tracks something under one, the scan lacks it and the digests
/// differ; when it tracks nothing there, there is nothing to do.
pub fn seal_of(scan: &Scan, remote_dir: &str) -> Hex<16> {
    let mut f = Fingerprint::default();
    for e in &scan.entries {
        match e.kind {
            Kind::File => f.file(&e.path, e.size, e.mtime_ns, e.ctime_ns, e.inode),
            Kind::Dir => f.dir(&e.path),
        }
    }
    f.finish(remote_dir)
}

/// The idle cycle's fast path: one merge pass over the scan and the state
/// (both sorted by path) that says whether anything at all changed. Any
/// difference, or anything unsettled, falls through to the full plan.
fn unchanged(scan: &Scan, state: &State) -> bool {
    if !state.pending.is_empty() || !state.mkdirs.is_empty() || state.moving.is_some() || !state.dirs.contains("") {
        return false;
    }
    let mut files = state.files.iter();
    let mut dirs = state.dirs.iter().filter(|d| !d.is_empty());
    for e in &scan.entries {
        let same = match e.kind {
            Kind::File => files
                .next()
                .is_some_and(|(p, r)| *p == e.path && (r.size, r.mtime, r.ctime, r.ino) == (e.size, e.mtime_ns, e.ctime_ns, e.inode)),
            Kind::Dir => dirs.next().is_some_and(|d| *d == e.path),
        };
        if !same {
            return false;
        }
    }
    files.next().is_none() && dirs.next().is_none()
}

/// Renames, found without reading a byte: a new file with the inode, size
/// and mtime of a vanished tracked one is that file under a new name. When
/// at least half of a vanished folder's files reappear under one new folder
/// (same relative paths), the folder itself moved: one request for all.
/// Returns the moves and the state as it will be after them.
fn find_moves(scan: &Scan, state: &State, seen: &HashMap<&str, &Entry>, kept: &dyn Fn(&str) -> bool) -> (Vec<Action>, Option<State>) {
    let exists_as = |p: &str, kind: Kind| seen.get(p).is_some_and(|e| e.kind == kind);
    let mut by_inode: HashMap<(u64, u64, i64), Option<&str>> = HashMap::new();
    for (p, r) in &state.files {
        if !exists_as(p, Kind::File) && !kept(p) && !state.pending.contains_key(p) {
            // Two vanished files with one key (hard links): ambiguous, skip.
            by_inode.entry((r.ino, r.size, r.mtime)).and_modify(|v| *v = None).or_insert(Some(p.as_str()));
        }
    }
    if by_inode.is_empty() {
        return (Vec::new(), None);
    }
    let mut pairs: Vec<(&str, &Entry)> = Vec::new();
    for e in scan.entries.iter().filter(|e| e.kind == Kind::File && !state.files.contains_key(&e.path) && !kept(&e.path)) {
        if let Some(slot) = by_inode.get_mut(&(e.inode, e.size, e.mtime_ns))
            && let Some(from) = slot.take()
        {
            pairs.push((from, e));
        }
    }
    if pairs.is_empty() {
        return (Vec::new(), None);
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

    let mut after = state.clone();
    let mut actions = Vec::new();
    for (d, n) in &dir_moves {
        rekey(&mut after, d, n);
        let mut changes = vec![Change::Forget { path: d.clone() }];
        changes.extend(after.dirs.iter().filter(|k| *k == n || is_under(k, n)).map(|k| Change::Dir { path: k.clone() }));
        for (k, rec) in after.files.iter_mut().filter(|(k, _)| is_under(k, n)) {
            // Renaming a folder leaves its files' metadata as it was; trust it.
            if let Some(e) = seen.get(k.as_str()).filter(|e| (e.inode, e.size, e.mtime_ns) == (rec.ino, rec.size, rec.mtime)) {
                *rec = FileRec { ctime: e.ctime_ns, ..rec.clone() };
            }
            changes.push(Change::Put { path: k.clone(), rec: rec.clone() });
        }
        actions.push(Action::Move { from: d.clone(), to: n.clone(), kind: Kind::Dir, after: changes });
    }
    for (from, e) in pairs {
        let (d, n) = strip_common_tail(from, &e.path);
        if dir_moves
            .iter()
            .any(|(d2, n2)| is_under(from, d2) && (d == d2 && n == n2 || is_under(d, d2) && n == format!("{n2}{}", &d[d2.len()..])))
        {
            continue; // moved with its folder
        }
        // Its remote path after any folder move it was inside of.
        let from_now =
            dir_moves.iter().find(|(d2, _)| is_under(from, d2)).map_or(from.to_string(), |(d2, n2)| format!("{n2}{}", &from[d2.len()..]));
        let Some(old) = after.files.remove(&from_now) else { continue };
        let rec = FileRec { ctime: e.ctime_ns, ..old };
        after.files.insert(e.path.clone(), rec.clone());
        let after_changes = vec![Change::Forget { path: from_now.clone() }, Change::Put { path: e.path.clone(), rec }];
        actions.push(Action::Move { from: from_now, to: e.path.clone(), kind: Kind::File, after: after_changes });
    }
    (actions, Some(after))
}

/// A reconcile: what the state records that `tree` (the Disk's listing of remote_dir)
/// lacks or holds otherwise: topmost missing folders (their contents go with
/// them), then files missing or with another size or sha256 (a sha256 the
/// Disk has not computed yet counts as the same). Everything when there
/// is no remote_dir at all.
pub fn lost_on_disk(state: &State, tree: Option<&Tree>) -> Vec<String> {
    let mut lost: Vec<String> = Vec::new();
    let under_lost = |lost: &[String], p: &str| lost.iter().any(|d| is_under(p, d));
    for d in state.dirs.iter().filter(|d| !d.is_empty()) {
        let there = tree.is_some_and(|t| t.get(d).is_some_and(|i| i.dir));
        if !there && !under_lost(&lost, d) {
            lost.push(d.clone());
        }
    }
    let dirs = lost.len();
    for (p, r) in &state.files {
        let same = tree
            .and_then(|t| t.get(p))
            .is_some_and(|i| !i.dir && i.size == r.size && (i.sha256.is_empty() || i.sha256 == r.sha256.to_string()));
        if !same && !under_lost(&lost[..dirs], p) {
            lost.push(p.clone());
        }
    }
    lost
}

/// `a/b/c/x`, `z/c/x` → (`a/b`, `z`): what is left of each once the common
/// trailing components are removed.
fn strip_common_tail<'a>(a: &'a str, b: &'a str) -> (&'a str, &'a str) {
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

/// Moves every entry at or below `from` to the same place below `to`.
fn rekey(s: &mut State, from: &str, to: &str) {
    let re = |k: &str| format!("{to}{}", &k[from.len()..]);
    let inside = |k: &str| k == from || is_under(k, from);
    let files: Vec<(String, FileRec)> = s.files.iter().filter(|(k, _)| inside(k)).map(|(k, r)| (k.clone(), r.clone())).collect();
    for (k, r) in files {
        s.files.remove(&k);
        s.files.insert(re(&k), r);
    }
    let dirs: Vec<String> = s.dirs.iter().filter(|k| inside(k)).cloned().collect();
    for k in dirs {
        s.dirs.remove(&k);
        s.dirs.insert(re(&k));
    }
}

/// `a/b/c` → `a/b`, `a`.
fn ancestors(p: &str) -> impl Iterator<Item = &str> {
    p.match_indices('/').map(move |(i, _)| &p[..i]).collect::<Vec<_>>().into_iter().rev()
}

fn files_under(state: &State, dir: &str) -> u64 {
    let prefix = format!("{dir}/");
    state.files.range(prefix.clone()..).take_while(|(k, _)| k.starts_with(&prefix)).count() as u64
}

fn has_entry_under(scan: &Scan, dir: &str) -> bool {
    let prefix = format!("{dir}/");
    let i = scan.entries.partition_point(|e| e.path.as_str() < prefix.as_str());
    scan.entries.get(i).is_some_and(|e| e.path.starts_with(&prefix))
}

/// `1.5 MiB`: one decimal, rounded. Integer arithmetic, as in all of
/// ysync's output: formatting floats would add std's float printer (about
/// 20 KB) to a binary meant for routers.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut u = 0;
    while u < UNITS.len() - 1 && n >> (10 * (u + 1)) > 0 {
        u += 1;
    }
    if u == 0 {
        return format!("{n} B");
    }
    let shift = 10 * u;
    let tenths = (u128::from(n) * 10 + (1 << (shift - 1))) >> shift; // rounded
    format!("{}.{} {}", tenths / 10, tenths % 10, UNITS[u])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{FileRec, Hex};

    /// The content every synced test file had.
    const OLD: [u8; 32] = [1; 32];

    // Test data stays visible: a file is (path, size, mtime, ctime, inode).
    fn file(path: &str, size: u64, mtime: i64, ctime: i64, ino: u64) -> Entry {
        Entry { path: path.into(), kind: Kind::File, size, mtime_ns: mtime, ctime_ns: ctime, inode: ino }
    }

    fn scan_of(entries: Vec<Entry>) -> Scan {
        let mut entries = entries;
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        Scan { entries, ..Scan::default() }
    }

    fn rec_of(e: &Entry) -> FileRec {
        FileRec { size: e.size, mtime: e.mtime_ns, ctime: e.ctime_ns, ino: e.inode, sha256: Hex(OLD), md5: Hex::UNKNOWN }
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
        plan(scan, state, &opts()).unwrap().actions.iter().map(|a| a.to_string()).collect()
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
            [
                "mkdir (remote_dir)",
                "mkdir a",
                "mkdir a/b",
                "mkdir a/b/c",
                "mkdir empty",
                "upload a/b/c/deep.txt (3 B)",
                "upload top.txt (0 B)"
            ]
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
        pending.pending.insert(
            "b".into(),
            crate::state::Pending { size: 1, mark: String::new(), op: String::new(), temp: String::new(), at: 0, earlier: Vec::new() },
        );
        assert!(!idle_fast(&scan_of(entries.clone()), &pending));
        // Something excluded or unreadable that the state does not track
        // changes nothing: the fast path holds (any such path once turned
        // it off, so every idle cycle read the whole state).
        let mut kept = scan_of(entries);
        kept.kept.push("a/unreadable".into());
        assert!(idle_fast(&kept, &st));
        // One that hides a tracked file is not idle, and the plan keeps it.
        let mut hiding = scan_of(vec![Entry::dir("a"), file("b", 1, 1, 1, 8)]);
        hiding.kept.push("a/x".into());
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
        let p = plan(&s, &synced(&old), &opts()).unwrap();
        assert_eq!(p.actions.len(), 3);
        for a in &p.actions {
            assert!(matches!(a, Action::Check { old_sha256, .. } if *old_sha256 == Hex(OLD).to_string()), "{a:?}");
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
        let p = plan(&s, &synced(&old), &o).unwrap();
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
        let p = plan(&s, &synced(&old), &o).unwrap();
        let shown: Vec<String> = p.actions.iter().map(|a| a.to_string()).collect();
        assert_eq!(
            shown,
            ["upload c (1 B)", "forget b (delete = keep: the remote copy stays)", "forget d (delete = keep: the remote copy stays)"]
        );
    }

    #[test]
    fn empty_source_is_a_safety_stop() {
        let old = vec![file("a", 1, 1, 1, 1)];
        assert_eq!(plan(&scan_of(vec![]), &synced(&old), &opts()), Err(Stop::EmptySource { tracked: 1 }));
        // An empty folder on a fresh state is fine: it just creates remote_dir.
        assert_eq!(run(&scan_of(vec![]), &State::new("/r")), ["mkdir (remote_dir)"]);
    }

    #[test]
    fn too_many_deletions_is_a_safety_stop() {
        let old: Vec<Entry> = (0..40).map(|i| file(&format!("f{i:02}"), 1, 1, 1, i)).collect();
        let left: Vec<Entry> = old[..15].to_vec();
        let err = plan(&scan_of(left.clone()), &synced(&old), &opts()).unwrap_err();
        assert_eq!(err, Stop::TooManyDeletes { count: 25, tracked: 40, limit: MaxDelete::Percent(50) });
        let mut o = opts();
        o.max_delete = MaxDelete::Count(25);
        assert_eq!(plan(&scan_of(left), &synced(&old), &o).unwrap().actions.len(), 25);
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
        s.kept = vec!["locked".into(), "x.tmp".into()];
        assert!(run(&s, &synced(&old)).is_empty());
    }

    #[test]
    fn an_unmounted_sub_folder_is_kept_not_mirrored_as_deleted() {
        let old = vec![Entry::dir("photos"), file("photos/1.jpg", 1, 1, 1, 1), Entry::dir("photos/2024"), file("a", 1, 1, 1, 3)];
        let mut st = synced(&old);
        st.mounts.insert("photos".into());
        let mounted = Scan { mounts: vec!["photos".into()], ..scan_of(old.clone()) };
        let p = plan(&mounted, &st, &opts()).unwrap();
        assert!(p.actions.is_empty() && p.unmounted.is_empty() && p.mounts.is_none(), "{p:?}");
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
            let p = plan(&s, &st, &opts()).unwrap();
            assert_eq!(p.unmounted, ["photos"], "{what}");
            let actions: Vec<String> = p.actions.iter().map(|a| a.to_string()).collect();
            assert_eq!(actions, ["upload b (1 B)"], "{what}: the rest syncs, nothing under photos is touched");
            assert_eq!(p.mounts, None, "{what}: still remembered");
        }
        // A new mount point is remembered; an excluded one is forgotten.
        let s = Scan { mounts: vec!["photos".into(), "usb".into()], ..scan_of([old.clone(), vec![Entry::dir("usb")]].concat()) };
        assert_eq!(plan(&s, &st, &opts()).unwrap().mounts, Some(["photos".to_string(), "usb".to_string()].into()));
        let mut s = scan_of(vec![file("a", 1, 1, 1, 3)]);
        s.kept = vec!["photos".into()];
        let p = plan(&s, &st, &opts()).unwrap();
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
        let item = |dir: bool, size: u64, sha256: &str| Item { name: String::new(), dir, size, sha256: sha256.into(), md5: String::new() };
        let old = Hex(OLD).to_string();
        let tree: Tree = [
            ("d".to_string(), item(true, 0, "")),
            ("d/a".to_string(), item(false, 1, &old)),
            ("b".to_string(), item(false, 2, "ff")),    // edited on the Disk
            ("c".to_string(), item(false, 9, &old)),    // another size
            ("e".to_string(), item(false, 4, "")),      // not hashed yet: the same
            ("theirs".to_string(), item(false, 1, "")), // not ysync's: not its business
        ]
        .into();
        assert_eq!(lost_on_disk(&st, Some(&tree)), ["gone", "b", "c"], "the folder once, not its files");
        assert_eq!(lost_on_disk(&st, None).len(), 5, "no remote_dir: every top folder and file");
    }

    #[test]
    fn excluded_paths_are_kept_even_when_gone_locally() {
        let old = vec![Entry::dir("cache"), file("cache/t.jpg", 1, 1, 1, 1), file("a.tmp", 1, 1, 1, 2), file("k", 1, 1, 1, 3)];
        let mut o = opts();
        o.exclude = vec![Glob::new("*.tmp").unwrap(), Glob::new("cache/").unwrap()];
        assert!(plan(&scan_of(vec![file("k", 1, 1, 1, 3)]), &synced(&old), &o).unwrap().actions.is_empty());
    }

    #[test]
    fn min_age_defers_young_files() {
        let s = scan_of(vec![file("old", 1, 100, 100, 1), file("young", 1, 950, 950, 2)]);
        let mut o = opts();
        o.min_age_ns = 100;
        o.now_ns = 1000;
        let p = plan(&s, &synced(&[Entry::dir("x")]), &o).unwrap();
        assert_eq!(
            p.actions,
            [Action::Upload(file("old", 1, 100, 100, 1)), Action::Delete { path: "x".into(), kind: Kind::Dir, files: 0 }]
        );
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
        use crate::state::Pending;
        let synced_a = file("a", 1, 1, 1, 1);
        let mut state = synced(std::slice::from_ref(&synced_a));
        // Killed mid-upload: `a` (unchanged since its record) and `b` (new,
        // deleted locally since).
        state.pending.insert(
            "a".into(),
            Pending { size: 1, mark: String::new(), op: String::new(), temp: String::new(), at: 0, earlier: Vec::new() },
        );
        state.pending.insert(
            "b".into(),
            Pending { size: 7, mark: String::new(), op: String::new(), temp: String::new(), at: 0, earlier: Vec::new() },
        );
        assert_eq!(run(&scan_of(vec![synced_a]), &state), ["upload a (1 B)", "delete b"]);
    }

    #[test]
    fn a_renamed_file_is_moved_not_uploaded() {
        // `mv a.mp4 b.mp4`: same inode, size and mtime; rename updates ctime.
        let old = vec![file("a.mp4", 5 << 20, 10, 10, 42), file("other", 1, 1, 1, 7)];
        let s = scan_of(vec![file("b.mp4", 5 << 20, 10, 11, 42), file("other", 1, 1, 1, 7)]);
        let p = plan(&s, &synced(&old), &opts()).unwrap();
        assert_eq!(p.actions.len(), 1, "{:?}", p.actions);
        let Action::Move { from, to, kind: Kind::File, after } = &p.actions[0] else { panic!("{:?}", p.actions) };
        assert_eq!((from.as_str(), to.as_str()), ("a.mp4", "b.mp4"));
        // The new name is recorded with its new metadata: the next scan is idle.
        let mut next = synced(&old);
        after.iter().for_each(|c| next.apply(c));
        assert!(plan(&s, &next, &opts()).unwrap().actions.is_empty());
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
        let shown: Vec<String> = plan(&scan_of(now), &synced(&old), &opts()).unwrap().actions.iter().map(|a| a.to_string()).collect();
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
        let shown: Vec<String> = plan(&scan_of(now), &synced(&old), &opts()).unwrap().actions.iter().map(|a| a.to_string()).collect();
        assert_eq!(shown, ["move folder a -> b (3 files)", "move b/z -> z"]);
    }

    #[test]
    fn a_copy_with_another_inode_may_be_moved_after_hashing() {
        let old = vec![file("old.bin", 100_000, 1, 1, 1), file("x", 9, 1, 1, 2)];
        let s = scan_of(vec![file("new.bin", 100_000, 3, 3, 77), file("x", 9, 1, 1, 2)]);
        let p = plan(&s, &synced(&old), &opts()).unwrap();
        assert_eq!(
            p.actions,
            [
                Action::MoveOrUpload {
                    entry: file("new.bin", 100_000, 3, 3, 77),
                    candidates: vec![("old.bin".into(), Hex(OLD).to_string())]
                },
                Action::Delete { path: "old.bin".into(), kind: Kind::File, files: 1 }
            ]
        );
    }

    #[test]
    fn a_half_emptied_folder_is_not_taken_for_a_move() {
        // Only 1 of 3 files went to the new folder: move that file, delete the rest.
        let old = vec![Entry::dir("a"), file("a/x", 1, 1, 1, 1), file("a/y", 2, 1, 1, 2), file("a/z", 3, 1, 1, 3)];
        let now = vec![Entry::dir("b"), file("b/x", 1, 1, 1, 1)];
        let mut o = opts();
        o.max_delete = MaxDelete::Percent(100);
        let shown: Vec<String> = plan(&scan_of(now), &synced(&old), &o).unwrap().actions.iter().map(|a| a.to_string()).collect();
        assert_eq!(shown, ["mkdir b", "move a/x -> b/x", "delete folder a (2 files)"]);
    }

    #[test]
    fn a_fresh_state_adopts_what_is_already_on_the_disk() {
        let item = |dir: bool, size: u64| Item { name: String::new(), dir, size, sha256: "s".into(), md5: "m".into() };
        let remote: Tree = [
            ("a".to_string(), item(true, 0)),
            ("a/same.jpg".to_string(), item(false, 5)),
            ("a/resized.jpg".to_string(), item(false, 9)),
            ("remote-only.txt".to_string(), item(false, 1)),
        ]
        .into();
        let s = scan_of(vec![Entry::dir("a"), file("a/same.jpg", 5, 1, 1, 1), file("a/resized.jpg", 10, 1, 1, 2), Entry::dir("b")]);
        let p = plan_with_remote(&s, &State::new("/r"), Some(&remote), &opts()).unwrap();
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

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 << 20), "5.0 MiB");
        assert_eq!(human_bytes(2000), "2.0 KiB", "rounded, not cut");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(u64::MAX), "16777216.0 TiB");
    }
}
