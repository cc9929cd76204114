//! One sync cycle: scan → (seal) → plan → execute → state.
//!
//! The cycle owns the order of things, the skip rules and the one error
//! policy ([`policy`], after rclone's `processError`); the plan decides what
//! to do, the executor does one action at a time, and the store decides
//! what reaches the state files and when. Every upload is announced before
//! its first byte and every other intent before its request, so a crash at
//! any moment only repeats work: uploads overwrite, deleting a missing path
//! succeeds, and an upload of unknown fate is resolved by the next plan.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::time::Instant;

use crate::config::Config;
use crate::exec::{Done, Executor};
use crate::exit::Exit;
use crate::guard;
use crate::plan::{self, Action};
use crate::remote::{self, Error, Remote};
use crate::scan::{self, Kind, Scan, Walk};
use crate::state::{self, Change, LastCycle, Store};
use crate::units::{self, human_bytes, now_ns, now_secs};

/// How a cycle ended; maps onto the exit codes of the contract.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Everything planned was done (or nothing was needed).
    Clean,
    /// Some items failed; they are retried next cycle.
    Failed(usize),
    /// Nothing was deleted because something looked wrong.
    SafetyStop(String),
    /// The Disk rejected the token; retrying is pointless.
    TokenRejected(String),
    /// The state could not be saved.
    StateError(String),
    /// The state could not be read; retrying is pointless.
    StateUnusable(String),
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            Outcome::Clean => write!(f, "ok"),
            Outcome::Failed(n) => write!(f, "{n} items failed (retried next cycle)"),
            Outcome::SafetyStop(m) => write!(f, "safety stop: {m}"),
            Outcome::TokenRejected(_) => write!(f, "the token was rejected"),
            Outcome::StateError(m) => write!(f, "the state could not be saved: {m}"),
            Outcome::StateUnusable(m) => write!(f, "{m}"),
        }
    }
}

impl Outcome {
    /// One word for scripts (`status --json`, the hooks' `YSYNC_OUTCOME`).
    pub fn word(&self) -> &'static str {
        match self {
            Outcome::Clean => "ok",
            Outcome::Failed(_) => "failed",
            Outcome::SafetyStop(_) => "safety-stop",
            Outcome::TokenRejected(_) => "token-rejected",
            Outcome::StateError(_) | Outcome::StateUnusable(_) => "state-error",
        }
    }

    pub fn exit(&self) -> Exit {
        match self {
            Outcome::Clean => Exit::Ok,
            Outcome::Failed(_) | Outcome::StateError(_) => Exit::Failed,
            Outcome::StateUnusable(_) => Exit::Usage,
            Outcome::TokenRejected(_) => Exit::Rejected,
            Outcome::SafetyStop(_) => Exit::SafetyStop,
        }
    }
}

/// What one error means for the rest of the cycle.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing more can work in this cycle (the token was rejected).
    StopCycle,
    /// The Disk is full: no more uploads in this cycle; deletions go on.
    StopUploads,
    /// The file is over the account's per-file limit: not sent again while
    /// it keeps that size.
    TooLarge,
    /// The Disk lacks something the state records (emptied or edited behind
    /// ysync's back): the item failed, and the cycle lists the Disk.
    Relist,
    /// The item failed; the next cycle tries again.
    ItemFailed,
}

/// The error policy, in order of precedence: a rejected token ends the
/// cycle; a full Disk ends its uploads; a file too large is remembered; a
/// missing folder or move source means the state must be compared with the
/// Disk; anything else fails just the one item. (A state that cannot be
/// written ends the cycle before any of these: see `run_actions`.)
pub fn policy(err: &Error, action: &Action) -> Verdict {
    match err {
        e if e.is_rejection() => Verdict::StopCycle,
        Error::InsufficientStorage => Verdict::StopUploads,
        Error::TooLarge => Verdict::TooLarge,
        Error::ParentMissing => Verdict::Relist,
        Error::NotFound if matches!(action, Action::Move { .. }) => Verdict::Relist,
        _ => Verdict::ItemFailed,
    }
}

#[derive(Default)]
struct Tally {
    uploaded: u64,
    bytes: u64,
    unchanged: u64,
    folders: u64,
    deleted: u64,
    moved: u64,
    adopted: u64,
    /// What failed, and why. Nothing goes into a folder that failed.
    failed: BTreeMap<String, String>,
    /// Paths a failed move or deletion was to clear.
    stuck: BTreeSet<String>,
    /// The Disk answered 507: no more uploads in this cycle.
    disk_full: bool,
    /// An action found the Disk without something the state records.
    suspect: bool,
    /// Old versions kept in `backup_dir`.
    versioned: u64,
}

impl Tally {
    fn count(&mut self, done: Done) {
        match done {
            Done::Created => self.folders += 1,
            Done::Adopted => self.adopted += 1,
            Done::Uploaded { bytes } => {
                self.uploaded += 1;
                self.bytes += bytes;
            }
            Done::Unchanged => self.unchanged += 1,
            Done::Moved => self.moved += 1,
            Done::Deleted => self.deleted += 1,
            Done::Tracked | Done::LeftAlone | Done::Forgot | Done::Vanished => {}
        }
    }

    fn fail(&mut self, action: &Action, why: String) {
        // What the action was to clear away stays where it is: nothing new
        // goes there in this cycle.
        match action {
            Action::Move { from, .. } => drop(self.stuck.insert(from.clone())),
            Action::Delete { path, .. } => drop(self.stuck.insert(path.clone())),
            _ => {}
        }
        self.failed.insert(action.path().to_string(), why);
    }

    /// The path at or above `path` that a failed move or deletion left in
    /// place, if any.
    fn stuck_at(&self, path: &str) -> Option<&str> {
        let up = path.match_indices('/').map(|(i, _)| &path[..i]).chain(std::iter::once(path));
        up.into_iter().find_map(|d| self.stuck.get(d)).map(String::as_str)
    }

    /// The failed folder that `path` lies in, if any: a lookup per
    /// ancestor, not a walk of every failure (once the Disk is full, every
    /// later upload fails).
    fn failed_ancestor(&self, path: &str) -> Option<&str> {
        // `""` is remote_dir itself: nothing can go in when it could not be made.
        let up = std::iter::once("").chain(path.match_indices('/').map(|(i, _)| &path[..i]));
        up.filter(|d| d.len() < path.len()).find_map(|d| self.failed.get_key_value(d)).map(|(k, _)| k.as_str())
    }
}

pub struct Cycle<'a> {
    cfg: &'a Config,
    exec: Executor<'a>,
    /// Skipped paths already warned about in this process, so `run` does not
    /// repeat the same warning every interval.
    warned: HashSet<PathBuf>,
    /// Files the Disk refused as too large (413), with the size refused, so
    /// `run` does not send them again every cycle while they stay that size.
    too_large: HashMap<String, u64>,
    /// [`PART_ENTRIES`]; smaller in tests, so that small trees come in parts.
    part_entries: u64,
    /// The last cycle of this process, idle or not, for the hooks.
    last: LastCycle,
    /// `--allow-mass-change`: for the first cycle only.
    allow_mass_change: bool,
}

impl<'a> Cycle<'a> {
    pub fn new(cfg: &'a Config, remote: &'a mut dyn Remote, store: &'a mut Store) -> Cycle<'a> {
        Cycle {
            cfg,
            exec: Executor::new(cfg, remote, store),
            warned: HashSet::new(),
            too_large: HashMap::new(),
            part_entries: PART_ENTRIES,
            last: LastCycle::default(),
            allow_mass_change: cfg.allow_mass_change,
        }
    }

    /// Plans changes of more than `n` files and records in parts.
    #[cfg(test)]
    pub fn in_parts_of(mut self, n: u64) -> Cycle<'a> {
        self.part_entries = n;
        self
    }

    /// A renewed token, for the next requests.
    pub fn set_token(&mut self, token: &str) {
        self.exec.remote().set_token(token);
    }

    /// One cycle; what it did is then [`Cycle::last`].
    pub fn run(&mut self, dry_run: bool) -> Outcome {
        let started = now_secs();
        let mut tally = Tally::default();
        let outcome = self.cycle(dry_run, started, &mut tally);
        self.last = last_cycle(&outcome, started, &tally);
        self.allow_mass_change = false;
        outcome
    }

    /// How the last [`Cycle::run`] went.
    pub fn last(&self) -> &LastCycle {
        &self.last
    }

    fn cycle(&mut self, dry_run: bool, started: u64, tally: &mut Tally) -> Outcome {
        let start = Instant::now();
        self.exec.new_cycle();
        self.exec.progress.reset();
        let local = self.cfg.local_dir.display();
        let walk = match scan::walk(&self.cfg.local_dir, &self.cfg.excludes(), self.cfg.one_file_system, &mut |_| {}) {
            Ok(w) => w,
            Err(e) => return Outcome::SafetyStop(format!("local_dir {local} {e}; nothing was deleted")),
        };
        log::debug!("walked {} files in {} folders in {} ms", walk.files, walk.dirs.len() + 1, units::ms(start.elapsed()));
        self.warn_skipped(&walk.skipped);
        if self.is_idle(&walk) {
            log::debug!("cycle done: nothing changed ({}s)", units::secs(start.elapsed()));
            if dry_run {
                println!("0 actions planned (dry run: nothing was changed)");
            }
            return Outcome::Clean;
        }
        // Only the folders whose prints differ are loaded, and listed again.
        let changed = match self.exec.store().load_partial(&self.cfg.remote_dir, &walk.prints, self.part_entries / 2) {
            Ok(c) => c,
            Err(e) => return Outcome::StateUnusable(e.to_string()),
        };
        // The plan must know where an interrupted move left things.
        if !dry_run && let Err(e) = self.exec.finish_move() {
            log::warn!("finishing an interrupted move failed: {e}; trying next cycle");
            return Outcome::Failed(1);
        }
        let (outcome, deferred, actions) = self.plan_and_act(&walk, changed, dry_run, tally, start);
        if dry_run {
            return Outcome::Clean;
        }
        // Not in a cycle that stopped: while something looks wrong (a
        // share being encrypted, a token refused), old versions stay.
        if matches!(outcome, Outcome::Clean | Outcome::Failed(_)) {
            self.exec.expire_versions();
        }
        tally.versioned = self.exec.versioned;
        let failed = tally.failed.len();
        let store = self.exec.store();
        let last_failed = store.state().last.as_ref().is_some_and(|l| !l.failed.is_empty());
        // A safety stop is news once (status and monitoring must see it),
        // not at every cycle while it lasts.
        let new_stop =
            matches!(outcome, Outcome::SafetyStop(_)) && store.state().last.as_ref().is_none_or(|l| l.result != outcome.to_string());
        if store.is_dirty() || failed > 0 || last_failed || new_stop {
            let _ = store.commit(vec![Change::Last(last_cycle(&outcome, started, tally))]);
        }
        let saved = store.end_cycle();
        self.exec.progress.end();
        summary(tally, failed, actions, deferred, start);
        match saved {
            Err(e) if matches!(outcome, Outcome::Clean | Outcome::Failed(_)) => Outcome::StateError(e.to_string()),
            _ => outcome,
        }
    }

    fn warn_skipped(&mut self, skipped: &[scan::Skipped]) {
        for s in skipped {
            if self.warned.insert(s.path.clone()) {
                log::warn!("skipped {}: {}", s.path.display(), s.reason);
            }
        }
    }

    /// What the plan sees of the folder: every folder the walk entered,
    /// and the files of these (read again).
    fn scan_of(&mut self, walk: &Walk, changed: &[String]) -> Scan {
        let walked = |d: &String| d.is_empty() || walk.dirs.binary_search(d).is_ok();
        let folders: Vec<String> = changed.iter().filter(|d| walked(d)).cloned().collect();
        let cfg = self.cfg;
        let mut scan = scan::list(&cfg.local_dir, &folders, &walk.dirs, &cfg.excludes(), cfg.one_file_system);
        self.warn_skipped(&scan.skipped);
        scan.unlisted = walk.files.saturating_sub(scan.entries.len() as u64);
        scan.entries.reserve_exact(walk.dirs.len());
        scan.entries.extend(walk.dirs.iter().map(|d| scan::Entry::dir(d)));
        scan.entries.sort_unstable_by(|a, b| a.path.cmp(&b.path));
        scan.entries.shrink_to_fit();
        for (mine, walked) in [(&mut scan.unreadable, &walk.unreadable), (&mut scan.excluded, &walk.excluded)] {
            mine.extend(walked.iter().cloned());
            mine.sort_unstable();
            mine.dedup();
        }
        scan.mounts = walk.mounts.clone();
        scan
    }

    /// The idle question, before the state is read: the saved seal says
    /// what the state tracks, and when the walk has the same (and no
    /// reconcile is due), nothing changed.
    fn is_idle(&mut self, walk: &Walk) -> bool {
        let store = self.exec.store();
        if store.is_loaded() {
            return false; // then the plan's own merge pass answers it
        }
        let compared = Instant::now();
        let same = store.read_seal() == Some(walk.prints.seal(&self.cfg.remote_dir));
        let idle = same && !reconcile_due(self.cfg, store.sealed_reconciled());
        log::debug!("state seal read and compared in {} ms: {}", units::ms(compared.elapsed()), if idle { "same" } else { "differs" });
        idle
    }

    /// Plans and acts, and plans once more with a listing when an action
    /// found the Disk without something the state records. Returns the
    /// outcome, the deferred files and the number of actions planned.
    fn plan_and_act(
        &mut self,
        walk: &Walk,
        changed: Option<Vec<String>>,
        dry_run: bool,
        tally: &mut Tally,
        start: Instant,
    ) -> (Outcome, usize, usize) {
        let local = self.cfg.local_dir.display();
        let opts = plan::Options {
            delete: self.cfg.delete,
            exclude: self.cfg.exclude.clone(),
            max_delete: self.cfg.max_delete,
            min_age_ns: self.cfg.min_age.as_nanos() as i64,
            now_ns: now_ns(),
        };
        // A fresh state (first run, or the state file was lost) lists the
        // Disk to adopt what is there; so does a reconcile, when one is due
        // or when the Disk turns out to have lost what the state records
        // (then at once, in a second pass of this cycle).
        let state = self.exec.store().state();
        let mut listing = !state.dirs.contains("") || (!dry_run && reconcile_due(self.cfg, state.reconciled));
        let mut actions = 0;
        loop {
            tally.suspect = false;
            // A listing is read a part at a time, beside that part's plan:
            // each remote folder once, compared with the part's records (a
            // reconcile) and adopted from. Where it stands: is remote_dir
            // there (with its own listing), which folders were seen there.
            let mut listed = Listing { root: Root::Unknown, first: None, there: BTreeSet::new(), lost: Vec::new(), failed: false };
            if listing {
                listed.root = match self.find_root(&mut listed.first) {
                    Ok(r) => r,
                    Err(e) => return (Outcome::TokenRejected(e.to_string()), 0, actions),
                };
                if listed.root == Root::There {
                    listed.there.insert(String::new());
                }
            }
            // With nothing synced (a first run, a lost state) nothing can
            // be deleted or moved: the parts need no dry plan, and each is
            // listed beside its plan, to adopt from. Otherwise the listing
            // is a reconcile of every folder, a part at a time, before the
            // plan of what changed (here, or by the reconcile).
            let fresh = listing && self.exec.store().state().is_empty();
            if listing && !fresh && listed.root != Root::Unknown {
                if let Err(e) = self.reconcile_all(&mut listed, dry_run) {
                    return (e, 0, actions);
                }
                if !dry_run {
                    self.reconciled(&listed, start);
                }
            }
            let folders: Vec<String> = match (&changed, fresh) {
                (Some(c), false) => {
                    let mut c: BTreeSet<String> = c.iter().cloned().collect();
                    c.extend(self.exec.store().state().unsettled_folders());
                    c.into_iter().collect()
                }
                _ => {
                    let mut all = self.exec.store().folders();
                    all.extend(walk.dirs.iter().cloned());
                    all.into_iter().collect()
                }
            };
            let tracked: u64 = self.exec.store().counts().values().sum();
            let mut changes = guard::Changes::default();
            let parts = match self.parts(walk, folders, &opts, (dry_run, fresh), &mut changes) {
                Ok(p) => p,
                Err(e) => return (Outcome::StateError(e.to_string()), 0, actions),
            };
            let many = parts.len() > 1;
            // Parts planned apart: their dry plans have told what they overwrite.
            if many
                && !dry_run
                && let Some(stop) = self.mass_change(changes, tracked)
            {
                return (stop, 0, actions);
            }
            let (mut deferred, mut unmounted) = (0, Vec::new());
            // What the parts after this one hold, for the progress's estimate.
            let files_in = |p: &Vec<String>| p.iter().map(|f| walk.counts.get(f).copied().unwrap_or(0)).sum::<u64>();
            let mut rest: u64 = parts.iter().map(files_in).sum();
            for part in &parts {
                rest -= files_in(part);
                let store = self.exec.store();
                if let Err(e) = store.load_folders(part) {
                    return (Outcome::StateUnusable(e.to_string()), deferred, actions);
                }
                let tree = match fresh && listed.root != Root::Unknown {
                    true => match self.reconcile_part(part, &mut listed, dry_run) {
                        Ok(t) => t,
                        Err(e) => return (Outcome::TokenRejected(e.to_string()), deferred, actions),
                    },
                    false => None,
                };
                let mut scan = self.scan_of(walk, part);
                let view = self.exec.store().view(part, Some(&scan));
                drop_same(&mut scan, self.exec.store().state());
                let planned = plan::plan_owned(&scan, view, tree.as_ref(), &opts);
                drop(tree);
                drop(scan);
                let plan = match planned {
                    Ok(p) => p,
                    Err(stop) => return (Outcome::SafetyStop(format!("safety stop in {local}: {stop}")), deferred, actions),
                };
                log::debug!("planned {} actions ({} folders) at {} ms", plan.actions.len(), part.len(), units::ms(start.elapsed()));
                for p in &plan.deferred {
                    log::debug!("{p} changed less than min_age ago; later");
                }
                deferred += plan.deferred.len();
                unmounted.extend(plan.unmounted.iter().cloned());
                actions += plan.actions.len();
                if dry_run {
                    plan.actions.iter().for_each(|a| println!("{a}"));
                    continue;
                }
                let bytes = plan.actions.iter().filter_map(|a| a.uploads()).map(scan::Entry::size).sum();
                self.exec.progress.planned(plan.actions.len() as u64, bytes, rest);
                if !many {
                    let mut changes = guard::Changes::default();
                    changes.add(&plan.actions, self.exec.store().state());
                    if let Some(stop) = self.mass_change(changes, tracked) {
                        return (stop, deferred, actions);
                    }
                }
                let facts = [plan.mounts.clone().map(Change::Mounts), plan.excluded.clone().map(Change::Excluded)];
                let facts: Vec<Change> = facts.into_iter().flatten().collect();
                if !facts.is_empty() {
                    let _ = self.exec.store().commit(facts);
                }
                if let Some(stop) = self.run_actions(&plan.actions, tally) {
                    return (stop, deferred, actions);
                }
                if many && let Err(e) = self.exec.store().unload(part) {
                    return (Outcome::StateError(e.to_string()), deferred, actions);
                }
            }
            if fresh && !dry_run {
                self.reconciled(&listed, start);
            }
            unmounted.sort_unstable();
            unmounted.dedup();
            let unmounted = unmounted_stop(&unmounted, &local.to_string());
            if dry_run {
                if let Some(m) = &unmounted {
                    println!("{m}");
                }
                println!("{actions} actions planned (dry run: nothing was changed)");
                return (Outcome::Clean, 0, 0);
            }
            if tally.suspect && !listing {
                log::warn!("the Disk has lost something the state records; listing {} to repair it", self.cfg.remote_dir);
                listing = true;
                tally.failed.clear();
                tally.stuck.clear();
                continue;
            }
            let outcome = match unmounted {
                Some(m) => Outcome::SafetyStop(m),
                None if tally.failed.is_empty() => Outcome::Clean,
                None => Outcome::Failed(tally.failed.len()),
            };
            return (outcome, deferred, actions);
        }
    }

    /// The `folders` to plan, in parts of at most [`PART_ENTRIES`] files
    /// and records (a larger folder alone), so that a large change (a first
    /// run of a million files) is never held whole. Only when the parts
    /// are independent: a plan that deletes, forgets or moves anything
    /// pairs and counts across folders (renames, `max_delete`), so a dry
    /// plan of each part must do none of that, or the folders are planned
    /// together. A dry run plans them together too (it writes nothing,
    /// and parts fold the journal). With `fresh`, nothing is synced, so
    /// nothing can be deleted or moved: no dry plan is needed.
    fn parts(
        &mut self,
        walk: &Walk,
        folders: Vec<String>,
        opts: &plan::Options,
        (dry_run, fresh): (bool, bool),
        changes: &mut guard::Changes,
    ) -> Result<Vec<Vec<String>>, state::Error> {
        let counts = self.exec.store().counts();
        let size = |f: &str| walk.counts.get(f).copied().unwrap_or(0) + counts.get(f).copied().unwrap_or(0);
        let total: u64 = folders.iter().map(|f| size(f)).sum();
        if total <= self.part_entries || dry_run {
            return Ok(vec![folders]);
        }
        let parts = in_parts(&folders, |f| size(f), self.part_entries);
        // One folder larger than a part: it is the part, and nothing is
        // gained by a dry plan and letting it go.
        if parts.len() == 1 {
            return Ok(parts);
        }
        let store = self.exec.store();
        store.go_partial()?;
        if fresh {
            log::debug!("{} files in {} folders, nothing synced: planned in {} parts", total, folders.len(), parts.len());
            return Ok(parts);
        }
        for part in &parts {
            self.exec.store().load_folders(part)?;
            let mut scan = self.scan_of(walk, part);
            let view = self.exec.store().view(part, Some(&scan));
            drop_same(&mut scan, self.exec.store().state());
            // Without the Disk's listing: that turns uploads into adoptions
            // only, and a new file like a vanished one into an adoption
            // rather than a move, so what crosses here is a superset.
            let planned = plan::plan_owned(&scan, view, None, opts);
            let independent = planned.as_ref().is_ok_and(|p| !p.actions.iter().any(Action::crosses_folders));
            if let Ok(p) = &planned {
                changes.add(&p.actions, self.exec.store().state());
            }
            drop(scan);
            self.exec.store().unload(part)?;
            if !independent {
                log::debug!("{} files and records in {} folders, planned together: something is deleted or moved", total, folders.len());
                return Ok(vec![folders]);
            }
        }
        log::debug!("{} files and records in {} folders, planned in {} parts", total, folders.len(), parts.len());
        Ok(parts)
    }

    /// The mass-change guard ([`guard`]): a safety stop when `changes`
    /// overwrite more than `max_change` of the `tracked` files, unless
    /// `--allow-mass-change` lets this cycle through.
    fn mass_change(&mut self, changes: guard::Changes, tracked: u64) -> Option<Outcome> {
        if self.allow_mass_change {
            return None;
        }
        let why = changes.stop(self.cfg.max_change, tracked, &self.cfg.local_dir)?;
        Some(Outcome::SafetyStop(format!("safety stop in {}: {why}", self.cfg.local_dir.display())))
    }

    /// Carries out the plan's actions in order under the error policy;
    /// `Some` when the cycle must end (a rejected token, a journal that
    /// cannot be written).
    fn run_actions(&mut self, actions: &[Action], tally: &mut Tally) -> Option<Outcome> {
        for action in actions {
            let stop = self.run_action(action, tally);
            // Done, failed or skipped: the progress counts it, and its bytes.
            self.exec.progress.finished(action.uploads().map_or(0, scan::Entry::size));
            if stop.is_some() {
                return stop;
            }
        }
        None
    }

    /// One action under the error policy; `Some` when the cycle must end.
    fn run_action(&mut self, action: &Action, tally: &mut Tally) -> Option<Outcome> {
        if action.is_moot(self.exec.store().state()) {
            log::debug!("{} moved away earlier in this cycle; nothing to delete", action.path());
            return None;
        }
        if let Some(why) = self.skip_reason(action, tally) {
            tally.fail(action, why);
            return None;
        }
        let result = self.exec.run(action);
        let store = self.exec.store();
        if let Some(e) = store.failure() {
            return Some(Outcome::StateError(e.to_string()));
        }
        if let Err(e) = store.checkpoint() {
            return Some(Outcome::StateError(e.to_string()));
        }
        let err = match result {
            Ok(done) => {
                tally.count(done);
                return None;
            }
            Err(e) => e,
        };
        let size = action.uploads().map_or("?".into(), |e| human_bytes(e.size()));
        let verdict = policy(&err, action);
        match verdict {
            Verdict::StopCycle => return Some(Outcome::TokenRejected(err.to_string())),
            Verdict::StopUploads => {
                tally.disk_full = true;
                let free = self.exec.disk_info().map(|d| human_bytes(d.free)).unwrap_or_else(|_| "unknown".into());
                log::error!(
                    "the Disk is full ({free} free; {} needs {size}): no more uploads in this cycle, deletions go on. \
                     Free some space or empty the Disk's trash",
                    action.path()
                );
                tally.fail(action, "the Disk is full".into());
            }
            Verdict::TooLarge => {
                let limit = self.exec.disk_info().map(|d| human_bytes(d.max_file_size)).unwrap_or_else(|_| "unknown".into());
                let msg = format!("larger than the account allows per file ({limit}); skipped");
                log::error!("{} ({size}) is {msg}", action.path());
                if let Some(e) = action.uploads() {
                    self.too_large.insert(e.path.clone(), e.size());
                }
                tally.fail(action, msg);
            }
            Verdict::Relist | Verdict::ItemFailed => {
                tally.suspect |= verdict == Verdict::Relist;
                log::warn!("failed: {action}: {err}");
                tally.fail(action, err.to_string());
            }
        }
        None
    }

    /// Why `action` is not even tried in this cycle, if it is not.
    fn skip_reason(&self, action: &Action, tally: &Tally) -> Option<String> {
        if let Some(dir) = tally.failed_ancestor(action.path()) {
            return Some(format!("its folder {dir} could not be created"));
        }
        // A path whose kind changed, or one a rename was to free.
        if let Some(p) = tally.stuck_at(action.path()) {
            return Some(format!("what was at {p} could not be moved or deleted first"));
        }
        let e = action.uploads()?;
        if tally.disk_full {
            return Some("the Disk is full".into());
        }
        if self.too_large.get(&e.path) == Some(&e.size()) {
            return Some("larger than the account allows per file; skipped".into());
        }
        None
    }

    /// Is `remote_dir` on the Disk? Its listing is kept for the first
    /// part. `Err` only for a rejected token; a listing that fails
    /// otherwise is a warning, and nothing is listed in this cycle.
    fn find_root(&mut self, first: &mut Option<Vec<remote::Item>>) -> Result<Root, Error> {
        match self.exec.remote().list(&self.cfg.remote_dir) {
            Ok(Some(items)) => {
                *first = Some(items);
                Ok(Root::There)
            }
            Ok(None) => Ok(Root::Missing),
            Err(e) if e.is_rejection() => Err(e),
            Err(e) => {
                log::warn!("listing {} failed ({e}); trying again next cycle", self.cfg.remote_dir);
                Ok(Root::Unknown)
            }
        }
    }

    /// Lists the part's folders on the Disk and reconciles the part's
    /// records with them ([`plan::reconcile`]): what the Disk lost or holds
    /// otherwise is uploaded or made again. Returns the listing, for a
    /// fresh state's part to adopt from (`None` when remote_dir is missing). Once
    /// a listing fails, nothing more is reconciled in this cycle (a folder
    /// not listed is not a folder lost) and nothing more adopted.
    fn reconcile_part(&mut self, part: &[String], l: &mut Listing, dry_run: bool) -> Result<Option<remote::Tree>, Error> {
        if l.root == Root::Missing || l.failed {
            if !dry_run && !l.failed {
                let store = self.exec.store();
                let r = plan::reconcile(&store.view(part, None), part, &remote::Tree::new(), &l.there, now_secs());
                let _ = store.commit(r.changes);
                l.lost.extend(r.lost);
            }
            return Ok(None);
        }
        let tree = self.list_part(part, l)?;
        if !dry_run && !l.failed {
            let store = self.exec.store();
            let r = plan::reconcile(&store.view(part, None), part, &tree, &l.there, now_secs());
            let _ = store.commit(r.changes);
            l.lost.extend(r.lost);
            if !r.undated.is_empty() {
                log::info!("keeping the dates of {} files on the Disk (uploaded before ysync kept them)", r.undated.len());
            }
            for (path, mtime_ns) in r.undated {
                self.exec.date_recorded(&path, mtime_ns);
            }
        }
        Ok((!l.failed).then_some(tree))
    }

    /// A reconcile of every folder the state knows, in parts of at most
    /// [`PART_ENTRIES`] records, each loaded, listed, compared and let go.
    fn reconcile_all(&mut self, l: &mut Listing, dry_run: bool) -> Result<(), Outcome> {
        let state_err = |e: state::Error| Outcome::StateError(e.to_string());
        let store = self.exec.store();
        let counts = store.counts();
        let folders: Vec<String> = store.folders().into_iter().collect();
        let parts = in_parts(&folders, |f| counts.get(f).copied().unwrap_or(0), self.part_entries);
        let many = parts.len() > 1;
        if many {
            self.exec.store().go_partial().map_err(state_err)?;
        }
        for part in &parts {
            self.exec.store().load_folders(part).map_err(|e| Outcome::StateUnusable(e.to_string()))?;
            self.reconcile_part(part, l, dry_run).map_err(|e| Outcome::TokenRejected(e.to_string()))?;
            if many {
                self.exec.store().unload(part).map_err(state_err)?;
            }
        }
        Ok(())
    }

    /// After the last part: the reconcile is noted, and said.
    fn reconciled(&mut self, l: &Listing, start: Instant) {
        if l.failed || l.root == Root::Unknown {
            return;
        }
        let store = self.exec.store();
        let files = store.state().tracked();
        let had = store.state().dirs.contains("") || !l.lost.is_empty();
        let _ = store.commit(vec![Change::Reconciled(now_secs())]);
        if !l.lost.is_empty() {
            log::warn!(
                "{} of {files} synced files and folders are not on the Disk as ysync left them (deleted or changed there); \
                 they are uploaded or created again, e.g. {}",
                l.lost.len(),
                l.lost.iter().take(3).map(|c| c.to_string()).collect::<Vec<_>>().join(", ")
            );
        } else if had && files > 0 {
            log::info!("reconciled: the Disk holds the {files} synced files as recorded ({}s)", units::secs(start.elapsed()));
        }
    }

    /// The Disk's listing of these folders: those it has (`remote_dir`,
    /// and folders an earlier listing showed, `l.there`), so each remote
    /// folder is listed once in a cycle, as by a whole listing. `Err` only
    /// for a rejected token; another failure sets `l.failed`.
    ///
    /// The items keep no name (their key, the relative path, says it), and
    /// the tree is built from them at once, its nodes full (measured lower
    /// here than [`state::full_nodes`]): in one folder of 100 000 files this
    /// halves what the listing holds (BENCHMARKS.md).
    fn list_part(&mut self, folders: &[String], l: &mut Listing) -> Result<remote::Tree, Error> {
        let mut found: Vec<(String, remote::Item)> = Vec::new();
        let tree = |found: Vec<(String, remote::Item)>| found.into_iter().collect::<remote::Tree>();
        for f in folders {
            if !l.there.contains(f) {
                continue;
            }
            let listed = match f.is_empty() && l.first.is_some() {
                true => Ok(l.first.take()),
                false => self.exec.remote().list(&remote::join(&self.cfg.remote_dir, f)),
            };
            let items = match listed {
                Ok(items) => items.unwrap_or_default(),
                Err(e) if e.is_rejection() => return Err(e),
                Err(e) => {
                    log::warn!("listing {} failed ({e}); trying again next cycle", remote::join(&self.cfg.remote_dir, f));
                    l.failed = true;
                    return Ok(tree(found));
                }
            };
            found.reserve_exact(items.len());
            for mut item in items {
                let name = std::mem::take(&mut item.name);
                let rel = if f.is_empty() { name } else { format!("{f}/{name}") };
                if item.dir {
                    l.there.insert(rel.clone());
                }
                found.push((rel, item));
            }
        }
        Ok(tree(found))
    }
}

/// A cycle's listing of the Disk, read a part at a time.
struct Listing {
    root: Root,
    /// remote_dir's own listing, until the first part takes it.
    first: Option<Vec<remote::Item>>,
    /// The folders seen on the Disk (`""`: remote_dir).
    there: BTreeSet<String>,
    /// What the reconcile found lost, to say at the end.
    lost: Vec<String>,
    /// A listing failed: nothing more is reconciled or adopted.
    failed: bool,
}

/// Whether `remote_dir` is on the Disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Root {
    There,
    Missing,
    /// Not listed (yet), or the listing failed.
    Unknown,
}

/// A change larger than this many files and records (those of the scan
/// and of the state in the changed folders) is planned in parts, when the
/// parts are independent ([`Cycle::parts`]).
pub const PART_ENTRIES: u64 = 20_000;

/// `folders` (sorted) in runs of at most `max` entries by `size` (a larger
/// folder alone): the parts of a large change.
fn in_parts(folders: &[String], size: impl Fn(&str) -> u64, max: u64) -> Vec<Vec<String>> {
    let mut parts: Vec<Vec<String>> = vec![Vec::new()];
    let mut here = 0;
    for f in folders {
        let n = size(f);
        if here + n > max && here > 0 {
            parts.push(Vec::new());
            here = 0;
        }
        here += n;
        parts.last_mut().expect("one at least").push(f.clone());
    }
    parts
}

/// Drops from `scan` the files the state records as they are (same stat, no
/// unsettled upload): no plan acts on them. Counted in `unlisted`.
pub fn drop_same(scan: &mut Scan, state: &state::State) {
    let before = scan.entries.len();
    scan.entries.retain(|e| {
        e.kind == Kind::Dir || state.pending.contains_key(&e.path) || state.files.get(&e.path).is_none_or(|r| r.stat != e.stat)
    });
    scan.unlisted += (before - scan.entries.len()) as u64;
}

/// Is a full comparison of the Disk with the state due (`reconcile`)?
fn reconcile_due(cfg: &Config, last: u64) -> bool {
    let every = cfg.reconcile.as_secs();
    every > 0 && now_secs().saturating_sub(last) >= every
}

fn unmounted_stop(unmounted: &[String], local: &str) -> Option<String> {
    let first = unmounted.first()?;
    Some(format!(
        "safety stop in {local}: {} was a mount point and is not mounted now (its folder is missing, empty, or on the \
         parent's filesystem); nothing under it was deleted or uploaded, the rest was synced. Mount it again; to stop \
         mirroring it, add `exclude = {first}/` (its remote copies stay)",
        unmounted.join(", ")
    ))
}

/// What `status` and the hooks learn of a cycle.
fn last_cycle(outcome: &Outcome, started: u64, t: &Tally) -> LastCycle {
    LastCycle {
        started,
        ended: now_secs(),
        result: outcome.to_string(),
        outcome: outcome.word().into(),
        exit: outcome.exit() as u8,
        failed: t.failed.clone(),
        uploaded: t.uploaded,
        bytes: t.bytes,
        moved: t.moved,
        deleted: t.deleted,
        versioned: t.versioned,
    }
}

fn summary(t: &Tally, failed: usize, actions: usize, deferred: usize, start: Instant) {
    if actions == 0 && deferred == 0 {
        log::debug!("cycle done: nothing to do ({}s)", units::secs(start.elapsed()));
        return;
    }
    log::info!(
        "cycle done: {} uploaded ({}), {} moved, {} adopted, {} unchanged, {} folders created, {} deleted, {} failed, {} deferred, {}s",
        t.uploaded,
        human_bytes(t.bytes),
        t.moved,
        t.adopted,
        t.unchanged,
        t.folders,
        t.deleted,
        failed,
        deferred,
        units::secs(start.elapsed())
    );
}

#[cfg(test)]
#[path = "cycle/swaps.rs"]
mod swaps;
#[cfg(test)]
#[path = "cycle/tests.rs"]
mod tests;
