//! ysync: mirror one local folder to Yandex Disk, one way.
//! This file only parses arguments and wires the modules together.

mod config;
mod cycle;
mod digest;
mod exec;
mod exit;
mod fsutil;
mod glob;
mod guard;
mod hook;
mod inspect;
mod logging;
mod login;
mod media;
mod plan;
mod print;
mod progress;
mod remote;
mod restore;
mod retry;
mod scan;
mod state;
#[cfg(test)]
mod testkit;
mod token;
mod units;
mod yandex;

use exit::Exit;
use std::path::PathBuf;
use std::thread::sleep;

use cycle::Outcome;

const USAGE: &str = "\
ysync — mirror a local folder one way to Yandex Disk

usage: ysync [-c FILE] [-n] [-v|-q] [COMMAND]

commands:
  run      (default) sync now, then again every `interval` seconds
  once     one sync cycle, then exit (for cron and scripts)
  status   what the state file knows: files and bytes synced, the last
           change and its result, items that failed then (no network);
           --json for scripts
  verify   list the remote folder and compare it with the local folder and
           the state (paths, sizes, sha256); print each difference; exit 0
           only when they agree
  check    validate the config and the account: effective settings (token
           masked), free space, per-file limit, remote_dir reachable, state
           location writable; exit 0 only when everything is ready
  login    get a token by the device flow: shows a code to enter at
           ya.ru/device from any phone or computer, then writes token_file
           (mode 0600); --print writes the token to stdout instead
  versions list the old versions of a file kept in backup_dir
  restore  get files back: --all (the whole mirror) or a FOLDER, as it
           stands or --as-of DATE, into local_dir or --to DIR; or one kept
           version of a FILE [--date D] (ysync help restore)
  help     help on one command: ysync help COMMAND (or COMMAND --help)

options:
  -c, --config FILE   config file (default: $YSYNC_CONFIG, else /etc/ysync.conf)
  -n, --dry-run       print the planned actions; change nothing
      --bwlimit RATE  cap uploads at RATE bytes/s (500K, 2M; 0 = none), overriding the config
      --print         (login) print the token instead of writing token_file
      --json          (status) one JSON object, for scripts and monitoring
      --allow-mass-change  let the first cycle upload over more than
                      max_change of the synced files (you changed them)
  -v, --verbose       more logging (-vv for trace); RUST_LOG overrides
  -q, --quiet         warnings and errors only
  -h, --help          this text
  -V, --version       version

exit status: 0 mirrored, 1 some items failed (retried next cycle),
2 usage or configuration error, 3 token rejected, 4 safety stop,
5 another instance holds the lock";

struct Args {
    config: Option<PathBuf>,
    dry_run: bool,
    verbosity: i32,
    bwlimit: Option<u64>,
    print: bool,
    json: bool,
    allow_mass_change: bool,
    /// `versions PATH`, `restore PATH [--date D] [--to LOCAL] [--force]`.
    path: Option<String>,
    date: Option<String>,
    to: Option<PathBuf>,
    force: bool,
    /// `restore --all`, `restore --as-of DATE`.
    all: bool,
    as_of: Option<String>,
    help: bool,
    command: String,
    /// `help COMMAND`.
    topic: Option<String>,
}

/// `ysync COMMAND --help`: what the command does, what it reads and
/// changes, and how it exits. Kept in step with the man page and README.
fn command_help(command: &str) -> Option<&'static str> {
    Some(match command {
        "run" => {
            "\
usage: ysync [-c FILE] [-n] [--bwlimit RATE] [-v|-q] run

Syncs local_dir to remote_dir now, then again every `interval` seconds,
until stopped (SIGTERM or Ctrl-C; an interrupted upload is finished or
redone next time). Use it under systemd, OpenRC or supervise-daemon.
Exits only when continuing is pointless: 2 (the state cannot be used),
3 (the token was rejected), 5 (another instance holds the lock)."
        }
        "once" => {
            "\
usage: ysync [-c FILE] [-n] [--bwlimit RATE] [-v|-q] once

One sync cycle, then exit; for cron and scripts. With -n it prints the
planned actions and changes nothing. An idle cycle reads no more than the
folder's metadata: no request, no write.
exit: 0 mirrored, 1 some items failed (retried next cycle), 2 usage or
configuration error, 3 token rejected, 4 safety stop, 5 locked."
        }
        "status" => {
            "\
usage: ysync [-c FILE] status [--json]

What the state file knows, without the network: files and bytes synced,
when the last cycle with changes ended and how (its start, counts and
bytes), the items that failed then, the mount points it watches, when the
Disk was last compared with the state (`reconcile`), and when the token of
token_file expires and whether ysync renews it. Safe while `run` is going.
With --json, the same as one JSON object (keys in the man page, STATUS AS
JSON). Idle cycles write nothing, so they are not in it; on_success hears
of every cycle."
        }
        "verify" => {
            "\
usage: ysync [-c FILE] verify

Lists remote_dir and compares it with local_dir and the state: paths,
sizes and sha256 (every local file is read). Prints each difference.
exit: 0 when they agree, 1 when they differ (or the listing failed),
2 the state cannot be read, 3 token rejected, 4 local_dir is missing."
        }
        "check" => {
            "\
usage: ysync [-c FILE] check

Checks the setup without changing anything: the effective settings (token
masked), the token's expiry (a problem when it is near and ysync cannot
renew it), local_dir, the account (login, used / total / free space, the
per-file limit), whether remote_dir exists or can be created, and whether
the state location is writable.
exit: 0 when everything is ready, 1 with each problem named, 2 config
error, 3 token rejected."
        }
        "login" => {
            "\
usage: ysync [-c FILE] login [--print]

Gets an OAuth token for a box without a browser (the device flow of
Yandex ID). Needs client_id and client_secret of an app you registered at
https://oauth.yandex.ru/client/new with the permissions cloud_api:disk.read,
cloud_api:disk.write and cloud_api:disk.info (GUIDE.md, \"Getting a token\").
ysync shows a short code; open the link it prints on any phone or
computer, sign in, enter the code and allow access. The token is written
to token_file, readable by its owner only (when root runs this, the file
goes to the owner of its folder, e.g. the service user). --print writes it
to stdout instead. Then the Disk is asked once whether it accepts it.
exit: 0 done, 1 the code expired or access was denied (run it again),
2 config error (client_id, client_secret, token_file), 3 the Disk refuses
the token (missing permissions)."
        }
        "versions" => {
            "\
usage: ysync [-c FILE] versions PATH

Lists the old versions of PATH (inside local_dir) kept in backup_dir: day,
size, sha256, place on the Disk, oldest first. Later ones of a day carry
the time they were replaced.
exit: 0 listed, 1 none, 2 no backup_dir or a bad PATH, 3 token rejected."
        }
        "restore" => {
            "\
usage: ysync [-c FILE] [-n] restore --all | FOLDER [--to DIR] [--as-of DATE] [--force]
       ysync [-c FILE] restore FILE [--date YYYY-MM-DD] [--to LOCAL] [--force]

--all brings back the whole mirror, FOLDER (inside local_dir) one folder of
it, into local_dir (the same place) or into DIR. --as-of DATE brings back
the tree as it was then, from the mirror and backup_dir's kept versions:
DATE is YYYY-MM-DD (the end of that day, UTC) or an RFC 3339 time. -n
prints what it would write and writes nothing.
Each file is downloaded to a temporary file beside it, its size and sha256
checked, its time set (the one kept on the Disk, else the state's, else
the upload's), then renamed into place; empty folders are made. A file
already there with the same content is left alone, so running it again
(after a kill, say) only fetches what is missing. A different file, a
link or a folder in the way is not replaced unless --force, which keeps
it in DIR/.ysync-replaced-TIME/ (never synced). Nothing is written
through a link. Renames are not recorded: a renamed file comes back
under its current name.
With a FILE (not a folder on the Disk), brings back its newest kept
version (of that day with --date) beside it as `NAME (restored DAY).EXT`,
or to LOCAL.
exit: 0 everything asked for is there, 1 something could not be
restored (listed), 2 a bad command line, destination or file in the way
(one-file form), 3 token rejected."
        }
        _ => return None,
    })
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut a = Args {
        config: None,
        dry_run: false,
        verbosity: 0,
        bwlimit: None,
        print: false,
        json: false,
        allow_mass_change: false,
        path: None,
        date: None,
        to: None,
        force: false,
        all: false,
        as_of: None,
        help: false,
        command: String::new(),
        topic: None,
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "-c" | "--config" => a.config = Some(it.next().ok_or("-c needs a FILE")?.into()),
            s if s.starts_with("--config=") => a.config = Some(s["--config=".len()..].into()),
            "-n" | "--dry-run" => a.dry_run = true,
            "--bwlimit" => {
                let v = it.next().ok_or("--bwlimit needs a RATE such as 500K or 2M")?;
                a.bwlimit = Some(units::parse_size(&v).ok_or(format!("--bwlimit: `{v}` is not a rate such as 500K, 2M or 0"))?);
            }
            "-q" | "--quiet" => a.verbosity -= 1,
            "-v" | "--verbose" => a.verbosity += 1,
            "-vv" => a.verbosity += 2,
            "--print" => a.print = true,
            "--json" => a.json = true,
            "--allow-mass-change" => a.allow_mass_change = true,
            "--date" => a.date = Some(it.next().ok_or("--date needs a day, YYYY-MM-DD")?),
            "--to" => a.to = Some(it.next().ok_or("--to needs a LOCAL path")?.into()),
            "--force" => a.force = true,
            "--all" => a.all = true,
            "--as-of" => a.as_of = Some(it.next().ok_or("--as-of needs a DATE: YYYY-MM-DD or an RFC 3339 time")?),
            "-h" | "--help" => a.help = true,
            "-V" | "--version" => {
                println!("ysync {}", env!("CARGO_PKG_VERSION"));
                Exit::Ok.now()
            }
            s if s.starts_with('-') => return Err(format!("unknown option `{s}`")),
            s if a.command.is_empty() => a.command = s.to_string(),
            s if a.command == "help" && a.topic.is_none() => a.topic = Some(s.to_string()),
            s if matches!(a.command.as_str(), "versions" | "restore") && a.path.is_none() => a.path = Some(s.to_string()),
            s => return Err(format!("unexpected argument `{s}` after the command `{}`", a.command)),
        }
    }
    if a.command == "help" {
        (a.help, a.command) = (true, a.topic.take().unwrap_or_default());
    }
    if a.print && a.command != "login" {
        return Err("--print belongs to `login`".into());
    }
    if a.json && a.command != "status" {
        return Err("--json belongs to `status`".into());
    }
    if (a.date.is_some() || a.to.is_some() || a.force || a.all || a.as_of.is_some()) && a.command != "restore" {
        return Err("--date, --to, --force, --all and --as-of belong to `restore`".into());
    }
    if a.all && a.path.is_some() {
        return Err("`restore --all` brings back the whole mirror; give either --all or a PATH".into());
    }
    if a.date.is_some() && (a.all || a.as_of.is_some()) {
        return Err("--date picks a kept version of one file; for a tree as it was then, give --as-of DATE".into());
    }
    if a.command == "versions" && a.path.is_none() && !a.help {
        return Err("`versions` needs a PATH: a file's path inside local_dir".into());
    }
    if a.command == "restore" && a.path.is_none() && !a.all && !a.help {
        return Err("`restore` needs a PATH inside local_dir (a file or a folder), or --all".into());
    }
    if a.command.is_empty() && !a.help {
        a.command = "run".into();
    }
    Ok(a)
}

fn main() {
    let args = parse_args(std::env::args().skip(1)).unwrap_or_else(|e| {
        eprintln!("ysync: {e}\n\n{USAGE}");
        Exit::Usage.now()
    });
    if args.help {
        match command_help(&args.command) {
            Some(text) => println!("{text}"),
            None if args.command.is_empty() => println!("{USAGE}"),
            None => {
                eprintln!("ysync: unknown command `{}`\n\n{USAGE}", args.command);
                Exit::Usage.now()
            }
        }
        Exit::Ok.now()
    }
    // The token is in this process's memory: no core dump holds it, and no
    // other process of this user (a hook) may read it with ptrace.
    fsutil::sys::not_dumpable();
    logging::init(args.verbosity);
    match args.command.as_str() {
        "run" | "once" | "status" | "verify" | "check" | "login" | "versions" | "restore" => {}
        other => {
            eprintln!("ysync: unknown command `{other}`\n\n{USAGE}");
            Exit::Usage.now()
        }
    }

    let env = |k: &str| std::env::var(k).ok();
    let path = args.config.unwrap_or_else(|| config::default_path(&env));
    if args.command == "login" {
        // Before anything else is set up: only the app and token_file matter.
        let app = config::load_login(&path, &env).unwrap_or_else(|e| {
            log::error!("{e}");
            Exit::Usage.now()
        });
        if let Some(why) = &app.untrusted {
            log::error!("{why}; ysync writes where this file says only when nobody else can change it");
            Exit::Usage.now()
        }
        login::login(&app, &path, args.print).now()
    }
    let mut cfg = config::load(&path, &env).unwrap_or_else(|e| {
        log::error!("{e}");
        Exit::Usage.now()
    });
    if let Some(rate) = args.bwlimit {
        cfg.bwlimit = rate;
    }
    cfg.allow_mass_change = args.allow_mass_change;
    log::debug!("config: {cfg:?}");
    // A config someone else can change would choose what this process
    // writes and runs (its hooks): refused for every command that does.
    if let Some(why) = cfg.untrusted.as_ref().filter(|_| matches!(args.command.as_str(), "run" | "once" | "restore")) {
        log::error!("{why}; ysync writes where this file says and runs its hooks only when nobody else can change it");
        Exit::Usage.now()
    }

    match args.command.as_str() {
        "status" => inspect::status(&cfg, args.json).now(),
        "verify" => inspect::verify(&cfg, &mut yandex::Yandex::new(&cfg.api_url, cfg.token.secret(), cfg.timeout)).now(),
        "check" => inspect::check(&cfg, &path, &mut yandex::Yandex::new(&cfg.api_url, cfg.token.secret(), cfg.timeout)).now(),
        "versions" | "restore" => {
            let mut disk = yandex::Yandex::new(&cfg.api_url, cfg.token.secret(), cfg.timeout);
            let p = args.path.as_deref().unwrap_or_default();
            match args.command.as_str() {
                "versions" => restore::history::versions(&cfg, &mut disk, p).now(),
                _ => {
                    let c = restore::Command {
                        path: args.path.as_deref(),
                        all: args.all,
                        as_of: args.as_of.as_deref(),
                        date: args.date.as_deref(),
                        to: args.to.as_deref(),
                        force: args.force,
                        dry_run: args.dry_run,
                    };
                    restore::command(&cfg, &mut disk, &c).now()
                }
            }
        }
        _ => {}
    }

    let mut store = state::Store::open(&cfg.state_file).unwrap_or_else(|e| {
        log::error!("{e}");
        if matches!(e, state::Error::Locked(_)) { Exit::Locked.now() } else { Exit::Usage.now() }
    });
    let (outcome, last) = sync(&cfg, &mut store, args.dry_run || args.command == "once", args.dry_run, &path);
    // `once` lets the lock go before its hook runs: the hook may run ysync.
    drop(store);
    if !args.dry_run {
        hook::after_cycle(&cfg, &path, &last);
    }
    outcome.exit().now()
}

/// Cycles until one must end the process (each followed by its hook), or
/// just one with `once`; returns how the last ended. `run` holds the lock
/// throughout, but its hooks never hold it (the lock file is close-on-exec).
fn sync(cfg: &config::Config, store: &mut state::Store, once: bool, dry_run: bool, path: &std::path::Path) -> (Outcome, state::LastCycle) {
    let mut disk = yandex::Yandex::new(&cfg.api_url, cfg.token.secret(), cfg.timeout);
    let mut syncer = cycle::Cycle::new(cfg, &mut disk, store);
    let mut keeper = token::Keeper::new(cfg);
    loop {
        // A dry run changes nothing, the token file included.
        if !dry_run && let Some(token) = keeper.before_cycle() {
            syncer.set_token(token.secret());
        }
        let outcome = syncer.run(dry_run);
        let ends = match &outcome {
            Outcome::Clean | Outcome::Failed(_) => once,
            Outcome::SafetyStop(m) | Outcome::StateError(m) => {
                log::error!("{m}");
                once
            }
            Outcome::TokenRejected(m) | Outcome::StateUnusable(m) => {
                log::error!("{m}");
                if let Outcome::TokenRejected(_) = outcome
                    && let Some(expired) = keeper.expired()
                {
                    log::error!("{expired}; run `ysync login` for a new one");
                }
                true
            }
        };
        if ends {
            return (outcome, syncer.last().clone());
        }
        hook::after_cycle(cfg, path, syncer.last());
        sleep(cfg.interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Args, String> {
        parse_args(s.split_whitespace().map(String::from))
    }

    #[test]
    fn arguments() {
        let a = parse("").unwrap();
        assert_eq!(a.command, "run");
        let a = parse("-c /x.conf -n -v -v once").unwrap();
        assert_eq!((a.config.unwrap(), a.dry_run, a.verbosity, a.command.as_str()), (PathBuf::from("/x.conf"), true, 2, "once"));
        let a = parse("once -q --config=/y").unwrap();
        assert_eq!((a.verbosity, a.config.unwrap()), (-1, PathBuf::from("/y")));
        assert_eq!(parse("--frobnicate").err().unwrap(), "unknown option `--frobnicate`");
        assert!(parse("once run").is_err());
        assert!(parse("-c").is_err());
        assert_eq!(parse("--bwlimit 2M once").unwrap().bwlimit, Some(2 << 20));
        assert!(parse("--bwlimit fast").is_err());
        let a = parse("login --print").unwrap();
        assert!(a.print && !a.help && a.command == "login");
        assert_eq!(parse("once --print").err().unwrap(), "--print belongs to `login`");
        assert_eq!(parse("once --json").err().unwrap(), "--json belongs to `status`");
        assert!(parse("status --json").unwrap().json);
        for line in ["help once", "once --help", "-h once"] {
            let a = parse(line).unwrap();
            assert!(a.help && a.command == "once", "{line}");
        }
        let a = parse("help").unwrap();
        assert!(a.help && a.command.is_empty());
        for c in ["run", "once", "status", "verify", "check", "login", "versions", "restore"] {
            assert!(USAGE.contains(&format!("\n  {c} ")), "{c} is in the usage");
            assert!(command_help(c).unwrap().starts_with("usage: ysync "), "{c} has its own help");
        }
        // Every status `verify` can end with (inspect.rs) is in its help.
        let verify = command_help("verify").unwrap();
        for code in ["0 when", "1 when", "2 the state", "3 token", "4 local_dir"] {
            assert!(verify.contains(code), "verify's help names exit {code}");
        }
    }
}
