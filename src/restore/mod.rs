//! `ysync restore --all` and `ysync restore FOLDER`: the mirror, or the
//! tree as it was at a time (`--as-of`), brought back into a local folder.
//!
//! The remote side is walked a folder at a time (one listing of the mirror
//! and, for `--as-of`, one of the same folder in each dated folder of
//! `backup_dir` from that day on), so memory is what the largest folder
//! needs. Each name gets the content current at the time asked: uploaded
//! at or before it (`ysync_uploaded`, else the Disk's `modified`), and
//! replaced or deleted after it (the mirror's copy never was; a kept
//! version was replaced at the time its name carries, the day's first one
//! at the latest when the next was, else by the end of its day). A name
//! with no such content did not exist then and is not created.
//!
//! The local side is [`write`]: nothing is written through a link, a file
//! already there with the listed size and sha256 is left alone (so a rerun
//! after a kill downloads only what is missing), and a different one is
//! replaced only with `--force`, kept aside first.
//!
//! What it does not know: renames. A file renamed after the time asked
//! comes back under its current name, since the Disk keeps no trace of the
//! old one.

pub mod history;
pub mod write;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::config::Config;
use crate::digest::{Hex, sha256_of};
use crate::exit::Exit;
use crate::fsutil::{Dir, Kind};
use crate::logging::one_line;
use crate::progress::Progress;
use crate::remote::{self, Error, Item, Remote};
use crate::state::State;
use crate::units::human_bytes;
use write::{Aside, Fetch, Target, Want};

/// Tries of one file's download before it is reported as not restored.
pub const FETCH_TRIES: u32 = 3;

/// The longest name a local file system takes (bytes; `NAME_MAX`).
const NAME_MAX: usize = 255;

/// What a tree restore was asked.
pub struct Ask<'a> {
    /// The folder, relative to local_dir; `""` for `--all`.
    pub folder: &'a str,
    pub to: Option<&'a Path>,
    /// `--as-of`, Unix seconds.
    pub as_of: Option<u64>,
    pub dry_run: bool,
    pub force: bool,
}

/// The last second of a day named `YYYY-MM-DD` (UTC), in Unix seconds.
fn end_of_day(day: &str) -> Option<i64> {
    crate::units::parse_rfc3339(&format!("{day}T23:59:59Z")).map(|ns| ns.div_euclid(1_000_000_000))
}

/// `--as-of`: `YYYY-MM-DD` is the end of that day (UTC); otherwise an RFC
/// 3339 time. Unix seconds.
pub fn parse_as_of(s: &str) -> Result<u64, String> {
    let secs = if crate::exec::is_day(s) { end_of_day(s) } else { crate::units::parse_rfc3339(s).map(|ns| ns.div_euclid(1_000_000_000)) };
    match secs {
        Some(t) if t >= 0 => Ok(t as u64),
        _ => Err(format!("--as-of {s}: give a day (2026-12-07, its end in UTC) or an RFC 3339 time (2026-12-07T15:04:05Z)")),
    }
}

/// Where a listing of one folder comes from.
#[derive(Clone, Debug)]
struct Source {
    path: String,
    /// `None`: the mirror. A kept version: the latest time its content can
    /// have been replaced (the end of its day, or the time a name carries).
    replaced: Option<u64>,
}

/// One content a name had: where it is and when it was current.
#[derive(Debug)]
struct Candidate {
    source: String,
    item: Item,
    replaced: Option<u64>,
}

impl Candidate {
    /// When it was uploaded: `ysync_uploaded`, else the Disk's `modified`.
    fn uploaded(&self) -> u64 {
        let d = &self.item.file.dates;
        match d.uploaded {
            // Marking a version replaced bumped its `modified`: only known
            // to be older than that.
            0 if d.replaced != 0 => 0,
            0 => d.changed,
            u => u,
        }
    }

    /// Current at `t`? (Always, without a time: the mirror's copy.)
    fn current_at(&self, t: Option<u64>) -> bool {
        match t {
            None => self.replaced.is_none(),
            Some(t) => self.replaced.is_none_or(|r| r > t) && self.uploaded() <= t,
        }
    }
}

/// The content of a file name at `t`: the newest current one.
fn pick(cands: &[Candidate], t: Option<u64>) -> Option<&Candidate> {
    cands.iter().filter(|c| !c.item.dir && c.current_at(t)).max_by_key(|c| (c.uploaded(), c.replaced.is_none()))
}

/// The folder's listings from every source, by name (a kept version's
/// name read back to the file's own), and the sources of each subfolder.
fn gather(disk: &mut dyn Remote, sources: &[Source]) -> Result<(bool, BTreeMap<String, Vec<Candidate>>), Error> {
    let mut found = false;
    let mut by_name: BTreeMap<String, Vec<Candidate>> = BTreeMap::new();
    for src in sources {
        let Some(items) = disk.list(&src.path)? else { continue };
        found = true;
        let names: BTreeSet<&str> = items.iter().map(|i| i.name.as_str()).collect();
        // A later version of a day carries its time; the day's first one
        // (the plain name) was replaced before the earliest of those.
        let mut first_replaced: BTreeMap<String, u64> = BTreeMap::new();
        let day_start = src.replaced.map(|r| r - r % 86_400);
        let named: Vec<(String, Option<u64>)> = items
            .iter()
            .map(|i| match (day_start, crate::exec::unsuffixed(&i.name)) {
                (Some(start), Some((plain, into_day))) if names.contains(plain.as_str()) => {
                    let at = start + into_day;
                    let e = first_replaced.entry(plain.clone()).or_insert(at);
                    *e = (*e).min(at);
                    (plain, Some(at))
                }
                _ => (i.name.clone(), None),
            })
            .collect();
        for (item, (name, at)) in items.into_iter().zip(named) {
            // Exact when ysync marked it or its name says; else bounded.
            let marked = Some(item.file.dates.replaced).filter(|r| *r != 0);
            let replaced = src.replaced.map(|bound| {
                let own = marked.or(at).or_else(|| first_replaced.get(&name).copied()).unwrap_or(bound);
                own.min(bound)
            });
            let source = remote::join(&src.path, &item.name);
            by_name.entry(name).or_default().push(Candidate { source, item, replaced });
        }
    }
    Ok((found, by_name))
}

/// Why a name from the Disk cannot be a local name, if it cannot.
fn bad_name(name: &str) -> Option<&'static str> {
    if name.is_empty() || name == "." || name == ".." {
        Some("an empty, `.` or `..` name")
    } else if name.contains('/') || name.contains('\0') {
        Some("a name holding `/` or NUL")
    } else if name.chars().any(char::is_control) {
        Some("a name holding a control character")
    } else if name.len() > NAME_MAX {
        Some("a name longer than the local file system allows (255 bytes)")
    } else {
        None
    }
}

/// Where each file's time came from, counted for the summary.
#[derive(Default)]
struct DateSources {
    kept: u64,
    state: u64,
    disk: u64,
}

/// The state's records, read only when a file on the Disk has no date of
/// its own (uploaded before ysync kept dates there).
struct Records<'c> {
    cfg: &'c Config,
    state: Option<Option<State>>,
}

impl Records<'_> {
    fn mtime(&mut self, rel: &str, sha256: Hex<32>) -> Option<i64> {
        let cfg = self.cfg;
        let state =
            self.state.get_or_insert_with(|| crate::state::peek(&cfg.state_file).ok().flatten().filter(|s| s.remote_dir == cfg.remote_dir));
        // A record of content whose date is not on the Disk yet has none.
        state.as_ref()?.files.get(rel).filter(|r| r.sha256 == sha256 && r.stat.mtime_ns != crate::state::UNDATED).map(|r| r.stat.mtime_ns)
    }
}

/// The tally, and the lines of what could not be restored.
#[derive(Default)]
struct Tally {
    restored: u64,
    bytes: u64,
    same: u64,
    folders: u64,
    not_restored: Vec<String>,
    rejected: Option<String>,
}

/// One folder to do: its path relative to local_dir, below the
/// destination, its sources, and whether it existed then (made even when
/// empty).
struct Todo {
    /// Folders above it (at most `remote::MAX_DEPTH`: a server that nests
    /// without end cannot keep a restore going for ever).
    depth: usize,
    rel: String,
    below: String,
    sources: Vec<Source>,
    wanted: bool,
}

/// `ysync restore --all | FOLDER [--to DIR] [--as-of DATE] [-n] [--force]`.
/// Exit: 0 everything asked for is there, 1 something could not be
/// restored (listed), 2 a bad command line or destination, 3 token rejected.
pub fn tree(cfg: &Config, disk: &mut dyn Remote, ask: &Ask) -> Exit {
    let root = remote::join(&cfg.remote_dir, ask.folder);
    let mut sources = vec![Source { path: root.clone(), replaced: None }];
    if let (Some(t), Some(backup)) = (ask.as_of, &cfg.backup_dir) {
        match days_from(disk, backup, t) {
            Ok(days) => sources.extend(days),
            Err(e) => return listing_failed(&format!("disk:{backup}"), e),
        }
    }
    let (top, shown) = match write::folder(cfg, ask.to, ask.folder, !ask.dry_run) {
        Ok(found) => found,
        Err(e) => {
            eprintln!("ysync: {e}");
            return Exit::Usage;
        }
    };
    let mut aside = match (&top, ask.force && !ask.dry_run) {
        (Some(top), true) => match Aside::new(top) {
            Ok(a) => Some(a),
            Err(e) => {
                eprintln!("ysync: {}: {e}", shown.display());
                return Exit::Failed;
            }
        },
        _ => None,
    };
    let mut run = Run {
        ask,
        top: top.as_ref(),
        aside: aside.as_mut(),
        progress: Progress::on_terminal(cfg.progress),
        records: Records { cfg, state: None },
        dates: DateSources::default(),
        tally: Tally::default(),
    };
    let mut stack = vec![Todo { depth: 0, rel: ask.folder.to_string(), below: String::new(), sources, wanted: true }];
    let mut any = false;
    while let Some(todo) = stack.pop() {
        if todo.depth > remote::MAX_DEPTH {
            run.tally.not_restored.push(format!(
                "{}/: nested deeper than {} folders; not restored",
                one_line(&todo.rel),
                remote::MAX_DEPTH
            ));
            continue;
        }
        match run.folder(disk, &todo) {
            Ok((found, subfolders)) => {
                any |= found;
                stack.extend(subfolders.into_iter().rev());
            }
            Err(e) if e.is_rejection() => {
                run.tally.rejected.get_or_insert(e.to_string());
                break;
            }
            Err(e) => run.tally.not_restored.push(format!("{}/: listing it failed: {e}", shown_rel(&todo.rel))),
        }
    }
    run.progress.end();
    let Run { tally, dates, .. } = run;
    if let Some(why) = &tally.rejected {
        eprintln!("ysync: {why}");
        return Exit::Rejected;
    }
    if !any {
        let when = ask.as_of.map(|t| format!(" at {}", crate::units::utc(t))).unwrap_or_default();
        println!("nothing to restore: disk:{} was not on the Disk{when}", one_line(&root));
        return Exit::Failed;
    }
    summary(&tally, &dates, &shown, ask, aside.as_ref());
    if tally.not_restored.is_empty() { Exit::Ok } else { Exit::Failed }
}

/// The dated folders of `backup_dir` whose versions may have been current
/// at `t`: that day's and every later one.
fn days_from(disk: &mut dyn Remote, backup: &str, t: u64) -> Result<Vec<Source>, Error> {
    let first = crate::exec::day(t);
    let mut days: Vec<String> = disk
        .list(backup)?
        .unwrap_or_default()
        .into_iter()
        .filter(|i| i.dir && crate::exec::is_day(&i.name) && i.name >= first)
        .map(|i| i.name)
        .collect();
    days.sort();
    Ok(days
        .into_iter()
        .filter_map(|d| Some(Source { replaced: Some(end_of_day(&d)?.max(0) as u64), path: remote::join(backup, &d) }))
        .collect())
}

fn shown_rel(rel: &str) -> &str {
    if rel.is_empty() { "." } else { rel }
}

fn listing_failed(what: &str, e: Error) -> Exit {
    eprintln!("ysync: listing {what} failed: {e}");
    if e.is_rejection() { Exit::Rejected } else { Exit::Failed }
}

struct Run<'r> {
    ask: &'r Ask<'r>,
    top: Option<&'r Dir>,
    aside: Option<&'r mut Aside>,
    progress: Progress,
    records: Records<'r>,
    dates: DateSources,
    tally: Tally,
}

/// What is at a file's name locally.
enum Here {
    Nothing,
    Same,
    Other(&'static str),
}

impl Run<'_> {
    /// One folder: its listings, the content each name had, the local
    /// folder, then each file; returns whether any source had it, and its
    /// subfolders to do.
    fn folder(&mut self, disk: &mut dyn Remote, todo: &Todo) -> Result<(bool, Vec<Todo>), Error> {
        let t = self.ask.as_of;
        let (found, by_name) = gather(disk, &todo.sources)?;
        let mut files = Vec::new();
        let mut subfolders = Vec::new();
        // An upload's temporary beside its file (a crash left it): not a file of the tree.
        let temps: BTreeSet<String> = by_name.keys().map(|n| crate::media::temp_name(&join(&todo.rel, n))).collect();
        for (name, cands) in &by_name {
            let rel = join(&todo.rel, name);
            if crate::scan::is_own_temporary(name) || temps.contains(&rel) {
                continue;
            }
            if let Some(why) = bad_name(name) {
                log::warn!("skipped {}: the Disk lists {why}, which cannot be written here", one_line(&rel));
                self.tally.not_restored.push(format!("{}: {why} on the Disk", one_line(&rel)));
                continue;
            }
            if let Some(c) = pick(cands, t) {
                files.push((name.clone(), c));
                continue;
            }
            let dirs: Vec<&Candidate> = cands.iter().filter(|c| c.item.dir).collect();
            if dirs.is_empty() {
                continue;
            }
            let wanted = match t {
                None => dirs.iter().any(|c| c.replaced.is_none()),
                Some(t) => dirs.iter().any(|c| c.replaced.is_none_or(|r| r > t) && c.item.file.dates.changed <= t),
            };
            let sources = dirs.iter().map(|c| Source { path: c.source.clone(), replaced: c.replaced }).collect();
            subfolders.push(Todo { depth: todo.depth + 1, rel, below: join(&todo.below, name), sources, wanted });
        }
        if !found {
            return Ok((false, Vec::new()));
        }
        let bytes = files.iter().map(|(_, c)| c.item.file.size).sum();
        self.progress.planned(files.len() as u64, bytes, 0);
        // A folder that did not exist then and gets no file needs nothing here.
        let local = if files.is_empty() && !todo.wanted { Ok(None) } else { self.make(todo) };
        let local = match local {
            Ok(local) => local,
            Err(e) => {
                self.tally.not_restored.push(format!("{}/: {e}", shown_rel(&todo.rel)));
                files.iter().for_each(|_| self.progress.finished(0));
                return Ok((true, subfolders));
            }
        };
        if local.is_some() && files.is_empty() && todo.wanted && !self.ask.dry_run {
            self.tally.folders += 1;
        }
        let target = match local.map(Target::of).transpose() {
            Ok(t) => t,
            Err(e) => {
                self.tally.not_restored.push(format!("{}/: {e}", shown_rel(&todo.rel)));
                return Ok((true, subfolders));
            }
        };
        for (name, c) in files {
            self.file(disk, todo, target.as_ref(), &name, c)?;
        }
        Ok((true, subfolders))
    }

    /// The local folder made (with `--force` what is in the way is kept
    /// aside), or in a dry run opened when it is there.
    fn make(&mut self, todo: &Todo) -> Result<Option<Dir>, String> {
        let Some(top) = self.top else { return Ok(None) };
        if self.ask.dry_run {
            return match write::open_below(top, &todo.below, false) {
                Ok(d) => Ok(d),
                Err(e) if self.ask.force => {
                    println!("would keep aside what is in the way of {}/ ({e})", one_line(&todo.rel));
                    Ok(None)
                }
                Err(e) => Err(format!("{e}; not replaced (add --force to keep it aside and restore here)")),
            };
        }
        let dir = write::make_beneath(top, &todo.below, self.aside.as_deref_mut())
            .map_err(|e| if self.ask.force { e } else { format!("{e}; not replaced (add --force to keep it aside and restore here)") })?;
        write::clear_stale(&dir);
        Ok(Some(dir))
    }

    fn file(&mut self, disk: &mut dyn Remote, todo: &Todo, target: Option<&Target>, name: &str, c: &Candidate) -> Result<(), Error> {
        let rel = join(&todo.rel, name);
        let shown = one_line(&rel);
        let size = c.item.file.size;
        let Some(sha256) = c.item.file.sha256 else {
            self.tally.not_restored.push(format!(
                "{shown}: the Disk shows no sha256 for it yet (a fresh upload is hashed within minutes), so what would arrive could not be checked; run the restore again later"
            ));
            self.progress.finished(0);
            return Ok(());
        };
        let here = match target {
            None => Here::Nothing,
            Some(t) => match what_is_here(&t.dir, name, size, sha256) {
                Ok(h) => h,
                Err(e) => {
                    self.tally.not_restored.push(format!("{shown}: {e}"));
                    self.progress.finished(0);
                    return Ok(());
                }
            },
        };
        let replacing = match here {
            Here::Same => {
                self.tally.same += 1;
                self.progress.finished(0);
                return Ok(());
            }
            Here::Other(what) if !self.ask.force => {
                self.tally
                    .not_restored
                    .push(format!("{shown}: a different {what} is there; not replaced (add --force to keep it aside and restore)"));
                self.progress.finished(0);
                return Ok(());
            }
            Here::Other(_) => true,
            Here::Nothing => false,
        };
        if self.ask.dry_run {
            let from = if c.replaced.is_some() { format!(" from disk:{}", one_line(&c.source)) } else { String::new() };
            let aside = if replacing { ", keeping what is there aside" } else { "" };
            println!("would restore {shown} ({}){from}{aside}", human_bytes(size));
            self.tally.restored += 1;
            self.tally.bytes += size;
            self.progress.finished(0);
            return Ok(());
        }
        let Some(target) = target else { return Ok(()) };
        let mtime_ns = self.mtime(&rel, c, sha256);
        let want = Want { size, sha256, mtime_ns: Some(mtime_ns) };
        let mut last = String::new();
        for _ in 0..FETCH_TRIES {
            let aside = self.aside.as_deref_mut().map(|a| (a, todo.below.as_str()));
            let progress = &mut self.progress;
            match write::fetch(disk, &c.source, target, name, want, aside, &mut |n| progress.sent(n)) {
                Ok(n) => {
                    if !self.progress.is_live() {
                        log::info!("restored {shown} ({})", human_bytes(n));
                    }
                    self.tally.restored += 1;
                    self.tally.bytes += n;
                    self.progress.finished(n);
                    return Ok(());
                }
                Err(Fetch::Exists) => {
                    last = "something appeared at its name while it was downloaded; not replaced (add --force)".into();
                    break;
                }
                Err(Fetch::Rejected(e)) => {
                    self.tally.rejected = Some(e);
                    return Err(Error::Unauthorized);
                }
                Err(Fetch::Failed(e)) => {
                    log::warn!("restoring {shown} failed: {e}");
                    last = e;
                }
            }
        }
        self.tally.not_restored.push(format!("{shown}: {last}"));
        self.progress.finished(0);
        Ok(())
    }

    /// The file's time: kept on the Disk, else the state's record of the
    /// same content, else the Disk's `modified` (its upload).
    fn mtime(&mut self, rel: &str, c: &Candidate, sha256: Hex<32>) -> i64 {
        if let Some(ns) = c.item.file.dates.mtime_ns {
            self.dates.kept += 1;
            return ns;
        }
        if let Some(ns) = self.records.mtime(rel, sha256) {
            self.dates.state += 1;
            return ns;
        }
        self.dates.disk += 1;
        c.item.file.dates.changed as i64 * 1_000_000_000
    }
}

/// What is at `name`: nothing, the same content (size, then sha256), or
/// something else (named). A link is never followed.
fn what_is_here(dir: &Dir, name: &str, size: u64, sha256: Hex<32>) -> Result<Here, String> {
    let m = match dir.stat(name) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Here::Nothing),
        Err(e) => return Err(e.to_string()),
    };
    Ok(match m.kind() {
        Kind::File if m.size != size => Here::Other("file"),
        Kind::File => {
            let f = dir.read(name).map_err(|e| e.to_string())?;
            let opened = crate::fsutil::meta_of(&f).map_err(|e| e.to_string())?;
            if !opened.is_file() || opened.ino != m.ino {
                Here::Other("file")
            } else if sha256_of(&f).map_err(|e| e.to_string())? == sha256 {
                Here::Same
            } else {
                Here::Other("file")
            }
        }
        Kind::Dir => Here::Other("folder"),
        Kind::Link => Here::Other("symbolic link"),
        _ => Here::Other("special file"),
    })
}

fn join(a: &str, b: &str) -> String {
    if a.is_empty() { b.to_string() } else { format!("{a}/{b}") }
}

fn summary(t: &Tally, d: &DateSources, shown: &Path, ask: &Ask, aside: Option<&Aside>) {
    let to = shown.display().to_string();
    let to = one_line(&to);
    let when = ask.as_of.map(|s| format!(" as of {}", crate::units::utc(s))).unwrap_or_default();
    if ask.dry_run {
        println!(
            "dry run: would restore {} files ({}) to {to}{when}; {} already there; nothing was written",
            t.restored,
            human_bytes(t.bytes),
            t.same
        );
    } else {
        println!(
            "restored {} files ({} downloaded) to {to}{when}; {} already there; {} empty folders made",
            t.restored,
            human_bytes(t.bytes),
            t.same,
            t.folders
        );
        if t.restored > 0 {
            println!(
                "file times: {} kept on the Disk, {} from the state's records, {} the Disk's upload time (no time was kept)",
                d.kept, d.state, d.disk
            );
        }
    }
    if let Some(a) = aside.filter(|a| a.kept > 0) {
        println!("kept {} replaced items aside in {} (not synced)", a.kept, one_line(&a.path().display().to_string()));
    }
    if !t.not_restored.is_empty() {
        println!("not restored ({}):", t.not_restored.len());
        for line in &t.not_restored {
            println!("  {line}");
        }
    }
}

/// `ysync restore …` as given on the command line.
pub struct Command<'a> {
    pub path: Option<&'a str>,
    pub all: bool,
    pub as_of: Option<&'a str>,
    pub date: Option<&'a str>,
    pub to: Option<&'a Path>,
    pub force: bool,
    pub dry_run: bool,
}

/// Which restore: the tree (`--all`, `--as-of`, or a PATH that is a folder
/// of the mirror), else one kept version of one file (`history::restore`).
pub fn command(cfg: &Config, disk: &mut dyn Remote, c: &Command) -> Exit {
    let as_of = match c.as_of.map(parse_as_of).transpose() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("ysync: {e}");
            return Exit::Usage;
        }
    };
    let folder = match c.path {
        None => String::new(),
        Some(p) => match history::relative(cfg, p) {
            Ok(rel) => rel,
            Err(e) => {
                eprintln!("ysync: {e}");
                return Exit::Usage;
            }
        },
    };
    let is_tree = c.all || as_of.is_some() || {
        let mirrored = remote::join(&cfg.remote_dir, &folder);
        match disk.stat(&mirrored).and_then(|file| if file.is_some() { Ok(false) } else { disk.exists(&mirrored) }) {
            Ok(folder) => folder,
            Err(e) => return listing_failed(&format!("disk:{mirrored}"), e),
        }
    };
    if !is_tree {
        let r = history::Restore { path: c.path.unwrap_or_default(), date: c.date, to: c.to, force: c.force };
        return history::restore(cfg, disk, &r);
    }
    tree(cfg, disk, &Ask { folder: &folder, to: c.to, as_of, dry_run: c.dry_run, force: c.force })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::MemDisk;

    fn config(t: &Path) -> Config {
        std::fs::create_dir_all(t.join("local")).unwrap();
        let text = format!("token = t\nlocal_dir = {0}/local\nremote_dir = /r\nstate_file = {0}/s.json\n", t.display());
        crate::config::parse(Path::new("/etc/y.conf"), &text, &|_| None).unwrap()
    }

    #[test]
    fn a_server_that_nests_folders_without_end_is_cut_off() {
        // Like the listing of a tree (remote::MAX_DEPTH): every level is a
        // request, and a hostile server can answer with one more for ever.
        let t = tempfile::tempdir().unwrap();
        let cfg = config(t.path());
        let mut disk = MemDisk::with_folder("/r");
        let mut p = "/r".to_string();
        for _ in 0..remote::MAX_DEPTH + 5 {
            p += "/d";
            disk.dirs.insert(p.clone());
        }
        disk.files.insert("/r/d/ok.txt".into(), b"fine".to_vec());
        let ask = Ask { folder: "", to: None, as_of: None, dry_run: false, force: false };
        assert_eq!(tree(&cfg, &mut disk, &ask), Exit::Failed);
        assert!(disk.called("list") <= remote::MAX_DEPTH + 2, "{} listings", disk.called("list"));
        assert_eq!(std::fs::read(t.path().join("local/d/ok.txt")).unwrap(), b"fine");
    }

    #[test]
    fn as_of_reads_a_day_as_its_end_and_a_time_with_its_offset() {
        assert_eq!(parse_as_of("2026-12-07"), Ok(1_796_687_999));
        assert_eq!(parse_as_of("2026-12-07T03:00:00+03:00"), Ok(1_796_601_600));
        for bad in ["2026-12", "yesterday", "2026-13-01", "1969-01-01", ""] {
            assert!(parse_as_of(bad).unwrap_err().contains("--as-of"), "{bad}");
        }
    }

    #[test]
    fn the_newest_content_current_at_a_time_is_picked() {
        let cand = |uploaded, replaced| Candidate {
            source: String::new(),
            item: Item {
                name: "a".into(),
                dir: false,
                file: remote::RemoteFile { dates: remote::Dates { uploaded, ..Default::default() }, ..Default::default() },
            },
            replaced,
        };
        let cands = [cand(10, Some(20)), cand(20, Some(30)), cand(30, None)];
        let at = |t| pick(&cands, Some(t)).map(|c| c.item.file.dates.uploaded);
        assert_eq!(
            (at(5), at(10), at(19), at(20), at(29), at(30), at(99)),
            (None, Some(10), Some(10), Some(20), Some(20), Some(30), Some(30))
        );
        assert_eq!(pick(&cands, None).map(|c| c.item.file.dates.uploaded), Some(30), "no time: the mirror's");
        let deleted = [cand(10, Some(20))];
        assert!(pick(&deleted, Some(25)).is_none() && pick(&deleted, None).is_none(), "deleted since");
    }
}
