//! The three commands that look without syncing: `ysync status` (what the
//! state knows, no network), `ysync verify` (the Disk against the local
//! folder and the state) and `ysync check` (is everything ready). None of
//! them writes anything (whether the state's folder is writable is asked,
//! not tried), and all work while `ysync run` holds the lock. Text from
//! the Disk is printed escaped (`logging::one_line`).

use std::collections::BTreeSet;

use crate::config::Config;
use crate::exit::Exit;
use crate::remote::Remote;
use crate::scan::{self, Kind};
use crate::state::{self, State};
use crate::units::human_bytes;

/// Prints what the state file knows, as text or (`json`) as one JSON
/// object ([`status_json`]). Exit status: 0, or 2 when it cannot be read.
pub fn status(cfg: &Config, json: bool) -> Exit {
    let state = match state::peek(&cfg.state_file) {
        Ok(s) if json => {
            println!("{}", status_json(cfg, s.as_ref()));
            return Exit::Ok;
        }
        Ok(Some(s)) => s,
        Ok(None) => {
            println!("no state yet at {}: ysync has not synced with this config", cfg.state_file.display());
            return Exit::Ok;
        }
        Err(e) => {
            eprintln!("ysync: {e}");
            return Exit::Usage;
        }
    };
    let bytes: u64 = state.files.values().map(|r| r.stat.size).sum();
    println!("state file   {}", cfg.state_file.display());
    println!("folders      {} -> disk:{}", cfg.local_dir.display(), state.remote_dir);
    println!(
        "synced       {} files, {}, in {} folders",
        state.files.len(),
        human_bytes(bytes),
        state.dirs.iter().filter(|d| !d.is_empty()).count()
    );
    if !state.pending.is_empty() || state.moving.is_some() {
        println!(
            "unsettled    {} uploads/moves of unknown outcome (settled by the next cycle)",
            state.pending.len() + usize::from(state.moving.is_some())
        );
    }
    if !state.mounts.is_empty() {
        let m: Vec<&str> = state.mounts.iter().map(String::as_str).collect();
        println!("mounts       {} (never mirrored as deleted while unmounted)", m.join(", "));
    }
    if let Some((_, life)) = crate::token::Keeper::new(cfg).summary() {
        println!("token        {life}");
    }
    if let Some(b) = &cfg.backup_dir {
        let keep = keep_text(cfg);
        let expiry = match state.versions_expired {
            0 => "not expired yet".to_string(),
            t => format!("last expired {}, {} days kept", crate::units::utc(t), state.versions_kept),
        };
        println!("versions     in disk:{b}, kept {keep}; {expiry}");
    }
    match (state.reconciled, cfg.reconcile.as_secs()) {
        (_, 0) => println!("reconciled   off (reconcile = 0)"),
        (0, every) => println!("reconciled   not yet (every {})", period(every)),
        (t, every) => println!("reconciled   {} (every {})", crate::units::utc(t), period(every)),
    }
    match &state.last {
        None => println!("last change  none recorded"),
        Some(l) => {
            println!("last change  {}: {}", crate::units::utc(l.ended), l.result);
            if !l.outcome.is_empty() {
                println!(
                    "             {}s: {} uploaded ({}), {} moved, {} deleted, {} old versions kept",
                    l.ended.saturating_sub(l.started),
                    l.uploaded,
                    human_bytes(l.bytes),
                    l.moved,
                    l.deleted,
                    l.versioned
                );
            }
            if !l.failed.is_empty() {
                println!("failed then:");
                for (path, why) in &l.failed {
                    println!("  {}: {why}", crate::logging::one_line(path));
                }
            }
        }
    }
    Exit::Ok
}

/// `status --json`: what `status` prints, for scripts. The keys are
/// documented in the man page (STATUS AS JSON); new ones may be added, none
/// is renamed or removed without `format` going up. Times are Unix seconds;
/// `null` where nothing is known (no state yet, a token without a file).
pub fn status_json(cfg: &Config, state: Option<&State>) -> String {
    let now = crate::units::now_secs();
    let token = crate::token::Keeper::new(cfg).expiry().map(|(expires, renewed)| TokenJson {
        expires,
        days_left: expires.map(|e| (e as i64 - now as i64).div_euclid(86_400)),
        renewed_automatically: renewed,
    });
    let last = state.and_then(|s| s.last.as_ref());
    let status = StatusJson {
        format: 1,
        state_file: cfg.state_file.display().to_string(),
        local_dir: cfg.local_dir.display().to_string(),
        remote_dir: format!("disk:{}", cfg.remote_dir),
        synced: state.map(|s| SyncedJson {
            files: s.files.len() as u64,
            bytes: s.files.values().map(|r| r.stat.size).sum(),
            folders: s.dirs.iter().filter(|d| !d.is_empty()).count() as u64,
        }),
        unsettled: state.map_or(0, |s| s.pending.len() as u64 + u64::from(s.moving.is_some())),
        mounts: state.map(|s| s.mounts.iter().map(String::as_str).collect()).unwrap_or_default(),
        reconciled: state.map(|s| s.reconciled).filter(|t| *t > 0),
        reconcile_every: cfg.reconcile.as_secs(),
        last_cycle: last.map(|l| LastJson {
            started: Some(l.started).filter(|t| *t > 0),
            ended: l.ended,
            outcome: Some(l.outcome.as_str()).filter(|o| !o.is_empty()),
            exit: Some(l.exit).filter(|_| !l.outcome.is_empty()),
            result: &l.result,
            uploaded: l.uploaded,
            bytes: l.bytes,
            moved: l.moved,
            deleted: l.deleted,
            versioned: l.versioned,
            failed: l.failed.len() as u64,
        }),
        failed: last.map(|l| l.failed.iter().map(|(path, error)| FailedJson { path, error }).collect()).unwrap_or_default(),
        token,
        versions: cfg.backup_dir.as_ref().map(|b| VersionsJson {
            backup_dir: format!("disk:{b}"),
            keep_days: cfg.backup_keep.as_secs() / 86_400,
            last_expiry: state.map(|s| s.versions_expired).filter(|t| *t > 0),
            kept_days: state.map(|s| s.versions_kept).filter(|_| state.is_some_and(|s| s.versions_expired > 0)),
        }),
    };
    serde_json::to_string(&status).unwrap_or_default()
}

#[derive(serde::Serialize)]
struct StatusJson<'a> {
    format: u32,
    state_file: String,
    local_dir: String,
    remote_dir: String,
    synced: Option<SyncedJson>,
    unsettled: u64,
    mounts: Vec<&'a str>,
    reconciled: Option<u64>,
    reconcile_every: u64,
    last_cycle: Option<LastJson<'a>>,
    failed: Vec<FailedJson<'a>>,
    token: Option<TokenJson>,
    versions: Option<VersionsJson>,
}

#[derive(serde::Serialize)]
struct VersionsJson {
    backup_dir: String,
    /// 0: kept for ever.
    keep_days: u64,
    last_expiry: Option<u64>,
    /// Dated folders left by the last expiry.
    kept_days: Option<u64>,
}

#[derive(serde::Serialize)]
struct SyncedJson {
    files: u64,
    bytes: u64,
    folders: u64,
}

#[derive(serde::Serialize)]
struct LastJson<'a> {
    started: Option<u64>,
    ended: u64,
    outcome: Option<&'a str>,
    exit: Option<u8>,
    result: &'a str,
    uploaded: u64,
    bytes: u64,
    moved: u64,
    deleted: u64,
    versioned: u64,
    failed: u64,
}

#[derive(serde::Serialize)]
struct FailedJson<'a> {
    path: &'a str,
    error: &'a str,
}

#[derive(serde::Serialize)]
struct TokenJson {
    expires: Option<u64>,
    days_left: Option<i64>,
    renewed_automatically: bool,
}

/// `for 30d`, `for ever`.
fn keep_text(cfg: &Config) -> String {
    match cfg.backup_keep.as_secs() {
        0 => "for ever".into(),
        k => format!("for {}", period(k)),
    }
}

/// `7d`, `12h`, `30m` or seconds, as the config writes it.
fn period(secs: u64) -> String {
    match secs {
        0 => "off".into(),
        s if s % 86400 == 0 => format!("{}d", s / 86400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// Checks that everything is ready: the settings (token masked), local_dir,
/// the account (space, per-file limit), remote_dir, the state location.
/// Exit status: 0 ready, 1 something to fix (each named), 3 token rejected.
pub fn check(cfg: &Config, config_path: &std::path::Path, disk: &mut dyn Remote) -> Exit {
    let mut problems = 0;
    let mut row = |name: &str, ok: bool, text: String| {
        problems += usize::from(!ok);
        println!("{}{name:<13}{text}", if ok { "ok " } else { "!! " });
    };
    println!("   config       {}", config_path.display());
    println!("   token        {:?}", cfg.token);
    let keeper = crate::token::Keeper::new(cfg);
    if let Some((ok, life)) = keeper.summary() {
        row("token life", ok, life);
    }
    if let Some(why) = &cfg.untrusted {
        row("config", false, format!("{why}; `run`, `once` and `restore` refuse it"));
    }
    // Plain http is taken only for this machine (config/values.rs): said
    // all the same, since nothing of it may be the real Disk.
    let plain = |url: &str| if url.starts_with("http://") { " (plain http, not encrypted: for a test on this machine only)" } else { "" };
    println!("   api_url      {}{}", cfg.api_url, plain(&cfg.api_url));
    if let Some(app) = &cfg.app {
        println!("   oauth_url    {}{}", app.oauth_url, plain(&app.oauth_url));
    }
    println!(
        "   settings     interval {}s, delete = {:?}, max_delete = {}, min_age {}s, bwlimit {}, throttle_workaround {}, {} exclude patterns, \
         one_file_system {}, reconcile {}",
        cfg.interval.as_secs(),
        cfg.delete,
        cfg.max_delete,
        cfg.min_age.as_secs(),
        if cfg.bwlimit == 0 { "none".to_string() } else { format!("{}/s", human_bytes(cfg.bwlimit)) },
        if cfg.throttle_workaround { "yes" } else { "no" },
        cfg.exclude.len(),
        if cfg.one_file_system { "yes" } else { "no" },
        period(cfg.reconcile.as_secs())
    );
    match std::fs::read_dir(&cfg.local_dir) {
        Ok(_) => row("local_dir", true, cfg.local_dir.display().to_string()),
        Err(e) => row("local_dir", false, format!("{}: {e}; create it or fix local_dir", cfg.local_dir.display())),
    }
    match disk.disk_info() {
        Ok(d) => row(
            "account",
            true,
            format!(
                "{}: {} used of {}, {} free; files up to {}",
                if d.login.is_empty() { "(no login shown)".into() } else { crate::logging::one_line(&d.login) },
                human_bytes(d.used),
                human_bytes(d.total),
                human_bytes(d.free),
                human_bytes(d.max_file_size)
            ),
        ),
        Err(e) if e.is_rejection() => {
            row("account", false, e.to_string());
            if let Some(expired) = keeper.expired() {
                println!("   {expired}; run `ysync login` for a new one");
            }
            return Exit::Rejected;
        }
        Err(e) => row("account", false, format!("{e} (is api_url right, is the network up?)")),
    }
    let mut existing = cfg.remote_dir.as_str();
    loop {
        match disk.exists(existing) {
            Ok(true) if existing == cfg.remote_dir => break row("remote_dir", true, format!("disk:{} exists", cfg.remote_dir)),
            Ok(true) => break row("remote_dir", true, format!("disk:{} will be created (disk:{existing} exists)", cfg.remote_dir)),
            Ok(false) if existing != "/" => existing = existing.rsplit_once('/').map_or("/", |(p, _)| if p.is_empty() { "/" } else { p }),
            Ok(false) => break row("remote_dir", false, "the Disk's root is missing?".into()),
            Err(e) => break row("remote_dir", false, e.to_string()),
        }
    }
    if let Some(b) = &cfg.backup_dir {
        match disk.exists(b) {
            Ok(true) => row("backup_dir", true, format!("disk:{b} exists; versions kept {}", keep_text(cfg))),
            Ok(false) => row("backup_dir", true, format!("disk:{b} will be created with the first old version; kept {}", keep_text(cfg))),
            Err(e) => row("backup_dir", false, format!("disk:{b}: {e}")),
        }
    }
    let mut dir = cfg.state_file.parent().map(std::path::Path::to_path_buf).unwrap_or_default();
    while !dir.exists() && dir.pop() {}
    let unsafe_dir = crate::fsutil::Dir::open(&dir).ok().and_then(|d| crate::fsutil::untrusted(&d.meta().ok()?, &dir, false));
    match crate::fsutil::may_write_in(&dir) {
        Ok(()) if unsafe_dir.is_none() => row("state_file", true, format!("{} (writable)", cfg.state_file.display())),
        Ok(()) => row("state_file", false, format!("{}: {}", cfg.state_file.display(), unsafe_dir.unwrap_or_default())),
        Err(e) => row(
            "state_file",
            false,
            format!("{}: cannot write in {}: {e}; set state_file to a writable place", cfg.state_file.display(), dir.display()),
        ),
    }
    if problems == 0 {
        println!("ready");
        Exit::Ok
    } else {
        println!("{problems} problems to fix");
        Exit::Failed
    }
}

/// Compares the Disk with the local folder and the state; prints each
/// difference. Exit status: 0 when they agree, 1 when they do not, 3 for a
/// rejected token, 4 when local_dir is missing.
pub fn verify(cfg: &Config, disk: &mut dyn Remote) -> Exit {
    let scan = match scan::scan(&cfg.local_dir, &cfg.excludes(), cfg.one_file_system) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ysync: local_dir {} {e}", cfg.local_dir.display());
            return Exit::SafetyStop;
        }
    };
    let state = match state::peek(&cfg.state_file) {
        Ok(s) => s.unwrap_or_else(|| State::new(&cfg.remote_dir)),
        Err(e) => {
            eprintln!("ysync: {e}");
            return Exit::Usage;
        }
    };
    let tree = match disk.tree(&cfg.remote_dir) {
        Ok(Some(t)) => t,
        Ok(None) => {
            println!("missing: the folder disk:{} is not on the Disk", cfg.remote_dir);
            return Exit::Failed;
        }
        Err(e) if e.is_rejection() => {
            eprintln!("ysync: {e}");
            return Exit::Rejected;
        }
        Err(e) => {
            eprintln!("ysync: listing disk:{} failed: {e}", cfg.remote_dir);
            return Exit::Failed;
        }
    };
    let root = crate::fsutil::Dir::open(&cfg.local_dir).ok();
    let mut differences = 0;
    let mut say = |line: String| {
        differences += 1;
        println!("{line}");
    };
    let mut local = BTreeSet::new();
    for e in &scan.entries {
        local.insert(e.path.as_str());
        let r = tree.get(&e.path);
        match (e.kind, r) {
            (Kind::Dir, Some(r)) if r.dir => {}
            (Kind::Dir, _) => say(format!("missing folder on the Disk: {}", e.path)),
            (Kind::File, None) => say(format!("missing on the Disk: {}", e.path)),
            (Kind::File, Some(r)) if r.dir => say(format!("a folder on the Disk, a file here: {}", e.path)),
            (Kind::File, Some(r)) => {
                // Hash only what the state cannot vouch for.
                let rec = state.files.get(&e.path).filter(|r| r.stat == e.stat);
                let sha = match rec {
                    Some(rec) => rec.sha256,
                    None => match root.as_ref().map(|r| scan::open(r, e)) {
                        Some(Ok(scan::Opened::File(f))) => match crate::digest::sha256_of(&f) {
                            Ok(s) => s,
                            Err(err) => {
                                say(format!("cannot read {}: {err}", e.path));
                                continue;
                            }
                        },
                        Some(Ok(scan::Opened::Gone)) => continue, // gone since the scan
                        Some(Ok(scan::Opened::Changed(why))) => {
                            say(format!("cannot read {}: it {why}", e.path));
                            continue;
                        }
                        Some(Err(err)) => {
                            say(format!("cannot read {}: {err}", e.path));
                            continue;
                        }
                        None => {
                            say(format!("cannot read {}: local_dir cannot be opened", e.path));
                            continue;
                        }
                    },
                };
                if r.file.size != e.size() || r.file.sha256 != Some(sha) {
                    let theirs = r.file.sha256.map(|h| h.to_string()).unwrap_or_default();
                    say(format!(
                        "differs: {} (here {} sha256 {:.12}, on the Disk {} sha256 {:.12})",
                        e.path,
                        e.size(),
                        sha.to_string(),
                        r.file.size,
                        theirs
                    ));
                } else if state.files.get(&e.path).is_none_or(|rec| rec.sha256 != sha) {
                    say(format!("not in the state (next cycle records it): {}", e.path));
                }
            }
        }
    }
    let mut foreign = 0;
    let temps = state.temp_names("");
    for (path, item) in &tree {
        if local.contains(path.as_str()) || scan.keeps(path) || temps.contains(path) {
            continue;
        }
        let ours = if item.dir { state.dirs.contains(path) } else { state.files.contains_key(path) };
        // Names from the Disk are printed escaped (a hostile server's too).
        let shown = crate::logging::one_line(path);
        if ours {
            say(format!("deleted here, still on the Disk: {shown}"));
        } else if !tree_parent_is_foreign(path, &state, &local) {
            foreign += 1;
            println!("not ysync's (left alone): {shown}");
        }
    }
    let files = scan.entries.iter().filter(|e| e.kind == Kind::File).count();
    if differences == 0 {
        println!("in agreement: {files} files, {} folders{}", scan.entries.len() - files, foreign_note(foreign));
        Exit::Ok
    } else {
        println!("{differences} differences{}", foreign_note(foreign));
        Exit::Failed
    }
}

/// Below a folder that is itself not ysync's, one line for the folder is enough.
fn tree_parent_is_foreign(path: &str, state: &State, local: &BTreeSet<&str>) -> bool {
    path.rsplit_once('/').is_some_and(|(parent, _)| !state.dirs.contains(parent) && !local.contains(parent))
}

fn foreign_note(n: usize) -> String {
    if n == 0 { String::new() } else { format!("; {n} entries on the Disk are not ysync's and were left alone") }
}
