//! The planner: scan + state → ordered actions. Pure: no I/O, no clock
//! (the caller passes `now`), so every rule is a unit test away.
//!
//! Order: kind changes (a file that became a folder or back) are deleted
//! first, then `remote_dir`, new folders (parents first), uploads, and the
//! remaining deletions last, so a failed upload never leaves the remote with
//! less than it had.

mod moves;
mod order;
#[cfg(test)]
pub mod props;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;

use crate::config::{DeleteMode, MaxDelete};
use crate::digest::Hex;
use crate::glob::Glob;
#[cfg(test)]
use crate::remote::Item;
use crate::remote::Tree;
use crate::scan::{Entry, Kind, Scan, is_under};
use crate::state::{self, Change, FileRec, State};
use crate::units::human_bytes;

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
        old_sha256: Hex<32>,
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
        candidates: Vec<(String, Hex<32>)>,
    },
    /// The folder is already on the Disk: just track it.
    AdoptDir(String),
    /// A file of this size is already on the Disk (a first run, or a lost
    /// state): hash the local one; same sha256 → track it, else upload.
    /// `sha256`: what the Disk says the file there holds (`None` while it
    /// is still hashing it). Only that is kept of the listing: a first run
    /// of 100 000 files plans 100 000 of these.
    Adopt {
        entry: Entry,
        sha256: Option<Hex<32>>,
        /// The modification time the Disk keeps with it, if any.
        mtime_ns: Option<i64>,
    },
}

/// What a file that an action hashed turns out to need: the rules after a
/// hash, decided here like every other rule.
#[derive(Debug, PartialEq, Eq)]
pub enum Resolution {
    /// The Disk holds this content already: record it, send nothing; with
    /// `date`, the Disk does not keep the file's time yet (adopted without
    /// one, or touched since): one request sets it.
    Record { rec: FileRec, date: bool },
    /// Send it.
    Upload,
    /// A vanished tracked file had this content: move it here, and the
    /// state becomes `after`.
    MoveFrom { from: String, after: Vec<Change> },
}

impl Action {
    /// The file this action may send, if it may send one (the one list of
    /// uploading actions: the Disk-full and size-limit rules use it).
    pub fn uploads(&self) -> Option<&Entry> {
        match self {
            Action::Upload(e) | Action::Check { entry: e, .. } | Action::MoveOrUpload { entry: e, .. } | Action::Adopt { entry: e, .. } => {
                Some(e)
            }
            _ => None,
        }
    }

    /// What a file with this sha256 needs, for an action that hashes first
    /// (`None` for the others). `state` is the state now: an earlier action
    /// of the cycle may have moved a candidate away already.
    pub fn resolve(&self, sha256: Hex<32>, state: &State) -> Option<Resolution> {
        let record = |e: &Entry, date| Resolution::Record { rec: FileRec::sent(e.stat, sha256), date };
        Some(match self {
            // Touched: the date the Disk keeps is the record's.
            Action::Check { entry, old_sha256 } if *old_sha256 == sha256 => {
                record(entry, state.files.get(&entry.path).is_none_or(|r| r.stat.mtime_ns != entry.stat.mtime_ns))
            }
            Action::Adopt { entry, sha256: there, mtime_ns } if *there == Some(sha256) => {
                record(entry, *mtime_ns != Some(entry.stat.mtime_ns))
            }
            Action::MoveOrUpload { entry, candidates } => {
                match candidates.iter().find(|(p, sha)| *sha == sha256 && state.files.contains_key(p)) {
                    Some((from, _)) => Resolution::MoveFrom {
                        from: from.clone(),
                        after: vec![
                            Change::Forget { path: from.clone() },
                            Change::Put { path: entry.path.clone(), rec: FileRec::sent(entry.stat, sha256) },
                        ],
                    },
                    None => Resolution::Upload,
                }
            }
            Action::Check { .. } | Action::Adopt { .. } => Resolution::Upload,
            _ => return None,
        })
    }

    /// Has an earlier action of this cycle made this one moot? A deletion
    /// of a path that a move took away.
    pub fn is_moot(&self, state: &State) -> bool {
        matches!(self, Action::Delete { path, kind, .. } if !state.tracks(path, *kind == Kind::Dir))
    }

    /// Does this action pair or count across folders (a deletion counts
    /// toward `max_delete`, a move pairs two paths)? A plan with none can
    /// be made a part of its folders at a time.
    pub fn crosses_folders(&self) -> bool {
        matches!(self, Action::Delete { .. } | Action::Forget { .. } | Action::Move { .. } | Action::MoveOrUpload { .. })
    }

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
            Action::Upload(e) => write!(f, "upload {} ({})", e.path, human_bytes(e.size())),
            Action::Check { entry, .. } => write!(f, "upload-if-changed {} ({})", entry.path, human_bytes(entry.size())),
            Action::Delete { path, kind: Kind::Dir, files } => write!(f, "delete folder {path} ({files} files)"),
            Action::Delete { path, .. } => write!(f, "delete {path}"),
            Action::Forget { path, .. } => write!(f, "forget {path} (delete = keep: the remote copy stays)"),
            Action::Move { from, to, kind: Kind::Dir, after } => {
                let files: u64 = after
                    .iter()
                    .map(|c| match c {
                        Change::Put { .. } => 1,
                        Change::Rekey { files, .. } => *files,
                        _ => 0,
                    })
                    .sum();
                write!(f, "move folder {from} -> {to} ({files} files)")
            }
            Action::Move { from, to, .. } => write!(f, "move {from} -> {to}"),
            Action::MoveOrUpload { entry, .. } => write!(f, "move-or-upload {} ({})", entry.path, human_bytes(entry.size())),
            Action::AdoptDir(p) if p.is_empty() => write!(f, "adopt folder (remote_dir)"),
            Action::AdoptDir(p) => write!(f, "adopt folder {p}"),
            Action::Adopt { entry, .. } => write!(f, "adopt-or-upload {} ({})", entry.path, human_bytes(entry.size())),
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
    /// The excluded paths to record from now on ([`State::excluded`]),
    /// when they changed.
    pub excluded: Option<BTreeSet<String>>,
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

/// The plan of one cycle. With `remote`, a listing of `remote_dir` (taken
/// when the state is fresh, or to reconcile), what is there already is
/// adopted rather than uploaded again; what only the Disk has is left alone.
#[cfg(test)]
pub fn plan(scan: &Scan, state: &State, remote: Option<&Tree>, opts: &Options) -> Result<Plan, Stop> {
    plan_from(scan, Cow::Borrowed(state), remote, opts)
}

/// The plan of a state made for it (a view), which it may change: the
/// records of a moved folder are moved in it, not copied (a folder of
/// 100 000 files would otherwise stand in memory once more).
pub fn plan_owned(scan: &Scan, state: State, remote: Option<&Tree>, opts: &Options) -> Result<Plan, Stop> {
    plan_from(scan, Cow::Owned(state), remote, opts)
}

fn plan_from(scan: &Scan, mut state: Cow<'_, State>, remote: Option<&Tree>, opts: &Options) -> Result<Plan, Stop> {
    if remote.is_none() && state::unchanged(scan, &state) {
        return Ok(Plan::default());
    }
    // The folders as synced, before any move: what is excluded, and where
    // an action may find its folder (`order::arrange`).
    let synced_dirs = state.dirs.clone();
    let excluded = |p: &str| {
        let dir = synced_dirs.contains(p);
        opts.exclude.iter().any(|g| g.matches(p, dir)) || ancestors(p).any(|a| opts.exclude.iter().any(|g| g.matches(a, true)))
    };
    let unreadable_or_excluded = |p: &str| scan.keeps(p) || (!opts.exclude.is_empty() && excluded(p));
    // An unmounted disk under local_dir is not "everything in it deleted".
    let unmounted: Vec<String> = state.mounts.iter().filter(|m| !unreadable_or_excluded(m) && !mounted(scan, &state, m)).cloned().collect();
    let kept = |p: &str| unreadable_or_excluded(p) || unmounted.iter().any(|m| p == m || is_under(p, m));
    let exists_as = |p: &str, kind: Kind| scan.get(p).is_some_and(|e| e.kind == kind);
    let mounts: BTreeSet<String> = scan.mounts.iter().filter(|m| !kept(m)).chain(&unmounted).cloned().collect();

    let tracked = state.tracked();
    if scan.entries.is_empty()
        && scan.unlisted == 0
        && scan.unreadable.is_empty()
        && scan.excluded.is_empty()
        && (tracked > 0 || state.dirs.iter().any(|d| !d.is_empty()))
    {
        return Err(Stop::EmptySource { tracked });
    }

    // Renames first: the rest of the plan is the ordinary diff against the
    // state as it will be once the moves are done.
    // With `delete = keep` a move would take a copy away from its old path:
    // that is a deletion too, so there are none.
    let moves = if opts.delete == DeleteMode::Keep { Vec::new() } else { moves::find_moves(scan, &mut state, &kept) };
    let state: &State = &state;

    // Deletions: topmost vanished folders, then files outside them.
    // A folder holding something kept (an excluded file synced before the
    // exclusion) is not deleted whole: what is not kept goes one by one.
    let holds_kept = |d: &str| {
        let prefix = format!("{d}/");
        state.files_at(d).any(|(p, _)| kept(p))
            || state.dirs.range(prefix.clone()..).take_while(|p| p.starts_with(&prefix)).any(|p| kept(p))
    };
    let gone_dirs: Vec<&str> =
        state.dirs.iter().map(String::as_str).filter(|d| !d.is_empty() && !exists_as(d, Kind::Dir) && !kept(d) && !holds_kept(d)).collect();
    let is_gone_dir = |d: &str| gone_dirs.binary_search(&d).is_ok();
    let under_gone_dir = |p: &str| ancestors(p).any(is_gone_dir);
    let mut deletes = Vec::new();
    for d in gone_dirs.iter().filter(|d| !under_gone_dir(d)) {
        deletes.push((d.to_string(), Kind::Dir, files_under(state, d)));
    }
    // Folders of unknown fate, asked for but never confirmed: gone locally
    // means they go on the Disk too (a 404 is fine).
    for d in state.mkdirs.iter().filter(|d| !exists_as(d, Kind::Dir) && !kept(d) && !is_gone_dir(d) && !under_gone_dir(d)) {
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

    // What the walk excludes and the state tracks is recorded as excluded.
    let tracks = |p: &String| state.excluded.contains(p) || state.files.contains_key(p) || state.dirs.contains(p);
    let excluded: BTreeSet<String> = scan.excluded.iter().filter(|p| tracks(p)).cloned().collect();
    let mut p = Plan {
        mounts: (mounts != state.mounts).then_some(mounts),
        excluded: (excluded != state.excluded).then_some(excluded),
        ..Plan::default()
    };
    let (dir_moves, file_moves): (Vec<Action>, Vec<Action>) =
        moves.into_iter().partition(|m| matches!(m, Action::Move { kind: Kind::Dir, .. }));
    // Something new now stands at (or under) these paths: they are cleared
    // first, unless a folder move brings them (their paths are the moved
    // ones): then right after that move.
    let blocks_new = |path: &str| scan.get(path).is_some() || has_entry_under(scan, path);
    let moved_in = |path: &str| dir_moves.iter().any(|m| is_under(path, m.path()));
    let (mut early, mut after_moves, mut late) = (Vec::new(), Vec::new(), Vec::new());
    for (path, kind, files) in deletes {
        let action = if keep { Action::Forget { path, kind } } else { Action::Delete { path, kind, files } };
        match (blocks_new(action.path()), moved_in(action.path())) {
            (true, false) => early.push(action),
            (true, true) => after_moves.push(action),
            (false, _) => late.push(action),
        }
    }
    let remote_dir = |path: &str| remote.is_some_and(|t| t.get(path).is_some_and(|i| i.dir));
    if !state.dirs.contains("") {
        p.actions.push(if remote.is_some() { Action::AdoptDir(String::new()) } else { Action::MkdirRoot });
    }
    // New folders and folder moves create paths: parents first, together
    // (with the deletions inside moved folders). Then renamed files, and
    // each waits for what it needs (`order.rs`).
    let mut creates: Vec<Action> = scan
        .entries
        .iter()
        // A synced folder whose deletion was interrupted is of unknown fate
        // too: here again, it is made again (a mkdir of a folder that is
        // there costs one request and changes nothing).
        // In a part of a larger plan, a folder is made by the part that
        // lists its parent (whose listing of the Disk says if it is there).
        .filter(|e| e.kind == Kind::Dir && (!state.dirs.contains(&e.path) || state.mkdirs.contains(&e.path)) && !kept(&e.path))
        .filter(|e| scan.lists(order::parent(&e.path)))
        .map(|e| if remote_dir(&e.path) { Action::AdoptDir(e.path.clone()) } else { Action::Mkdir(e.path.clone()) })
        .collect();
    creates.extend(dir_moves);
    creates.extend(after_moves);
    creates.sort_by(|a, b| a.path().cmp(b.path()));
    let paths: Vec<Action> = early.into_iter().chain(creates).chain(file_moves).collect();
    p.actions.extend(order::arrange(paths, &synced_dirs));
    let vanished: Vec<(&String, &FileRec)> = if opts.delete == DeleteMode::Keep {
        Vec::new()
    } else {
        state.files.iter().filter(|(k, _)| !exists_as(k, Kind::File) && !kept(k) && !state.pending.contains_key(*k)).collect()
    };
    for e in scan.entries.iter().filter(|e| e.kind == Kind::File && !kept(&e.path)) {
        let old = state.files.get(&e.path);
        // A pending upload may have left other content there: send it again.
        let pending = state.pending.contains_key(&e.path);
        if !pending && old.is_some_and(|r| r.stat == e.stat) {
            continue;
        }
        if opts.min_age_ns > 0 && opts.now_ns - e.stat.mtime_ns < opts.min_age_ns {
            p.deferred.push(e.path.clone());
            continue;
        }
        let same_size: Vec<(String, Hex<32>)> = vanished
            .iter()
            .filter(|(_, r)| old.is_none() && e.size() >= MOVE_MIN_SIZE && r.stat.size == e.size())
            .map(|(k, r)| (k.to_string(), r.sha256))
            .collect();
        let on_disk = remote.and_then(|t| t.get(&e.path)).filter(|i| !i.dir && i.file.size == e.size() && old.is_none() && !pending);
        p.actions.push(match old {
            _ if let Some(there) = on_disk => {
                Action::Adopt { entry: e.clone(), sha256: there.file.sha256, mtime_ns: there.file.dates.mtime_ns }
            }
            Some(r) if r.stat.size == e.size() && !pending => Action::Check { entry: e.clone(), old_sha256: r.sha256 },
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
    let empty = !has_entry_under(scan, m) && !scan.keeps_under(m);
    scan.mounts.binary_search_by(|x| x.as_str().cmp(m)).is_ok() && !(empty && files_under(state, m) > 0)
}

/// What a reconcile found: what the Disk lost (to say so), the changes
/// that make the state say it, and the files the Disk holds as recorded
/// but without their date (or with another): path and time to set.
#[derive(Debug, PartialEq, Eq)]
pub struct Reconcile {
    pub lost: Vec<String>,
    pub changes: Vec<Change>,
    pub undated: Vec<(String, i64)>,
}

/// A reconcile of some folders (`folders`, sorted: a part of the tree)
/// with the Disk's listing of them: `tree` holds the items of each folder
/// listed, `there` every folder the Disk was seen to hold (`""`:
/// remote_dir itself). What the state records there that the Disk lacks
/// or holds otherwise (another size, another sha256; one not computed yet
/// counts as the same) is forgotten as synced but remembered as ysync's:
/// each such file becomes an upload of unknown fate with the hash it had.
/// So a file the Disk only did not show yet (a fresh upload, R1) is still
/// recognised and deleted if it goes locally, and one someone edited there
/// is still left alone (its content is another). A tracked folder the Disk
/// lacks becomes a folder of unknown fate, made again (or, gone locally,
/// deleted: a 404). A reconcile only ever uploads and creates; it never
/// deletes. Returns what was lost, and the changes.
pub fn reconcile(state: &State, folders: &[String], tree: &Tree, there: &BTreeSet<String>, now: u64) -> Reconcile {
    let mut lost = Vec::new();
    let mut changes = Vec::new();
    let mut undated = Vec::new();
    let in_part = |p: &str| state::in_folders(folders, p);
    let lose = |p: &str, r: &FileRec, changes: &mut Vec<Change>| {
        let pending = state::Pending { mark: Some(state::Mark::Sha256(r.sha256)), ..state::Pending::new(r.stat.size, None, None, now) };
        changes.push(Change::Forget { path: p.to_string() });
        changes.push(Change::Pending { path: p.to_string(), pending });
    };
    // A folder is looked for in its parent's listing, so in the part that
    // has its parent: before that part makes any folder.
    if folders.first().is_some_and(|f| f.is_empty()) && !there.contains("") && state.dirs.contains("") {
        changes.push(Change::Forget { path: String::new() }); // remote_dir itself: made again
    }
    for d in state.dirs.iter().filter(|d| !d.is_empty() && in_part(d) && !there.contains(*d)) {
        lost.push(d.clone());
        if !state.mkdirs.contains(d) {
            changes.push(Change::Mkdir { path: d.clone() });
        }
    }
    for (p, r) in state.files.iter().filter(|(p, _)| in_part(p)) {
        let same = tree.get(p).filter(|i| !i.dir && i.file.size == r.stat.size && i.file.sha256.is_none_or(|h| h == r.sha256));
        if let Some(i) = same {
            // Uploaded before ysync kept dates, or its date lost since.
            if i.file.dates.mtime_ns != Some(r.stat.mtime_ns) && r.stat.mtime_ns != crate::state::UNDATED {
                undated.push((p.clone(), r.stat.mtime_ns));
            }
        } else {
            let folder = order::parent(p);
            if folder.is_empty() || there.contains(folder) {
                lost.push(p.clone()); // else its folder was said to be lost
            }
            lose(p, r, &mut changes);
        }
    }
    Reconcile { lost, changes, undated }
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
