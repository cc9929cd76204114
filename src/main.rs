//! ysync: mirror one local folder to Yandex Disk, one way.
//! This file only parses arguments and wires the modules together.

mod config;
mod glob;
mod inspect;
mod logging;
mod media;
mod plan;
mod remote;
mod retry;
mod scan;
mod state;
mod sync;
mod yandex;

use std::path::PathBuf;
use std::process::exit;
use std::thread::sleep;

use sync::Outcome;

const USAGE: &str = "\
ysync — mirror a local folder one way to Yandex Disk

usage: ysync [-c FILE] [-n] [-v|-q] [COMMAND]

commands:
  run      (default) sync now, then again every `interval` seconds
  once     one sync cycle, then exit (for cron and scripts)
  status   what the state file knows: files and bytes synced, the last
           change and its result, items that failed then (no network)
  verify   list the remote folder and compare it with the local folder and
           the state (paths, sizes, sha256); print each difference; exit 0
           only when they agree
  check    validate the config and the account: effective settings (token
           masked), free space, per-file limit, remote_dir reachable, state
           location writable; exit 0 only when everything is ready
  login    reserved; not available in this version yet

options:
  -c, --config FILE   config file (default: $YSYNC_CONFIG, else /etc/ysync.conf)
  -n, --dry-run       print the planned actions; change nothing
      --bwlimit RATE  cap uploads at RATE bytes/s (500K, 2M; 0 = none), overriding the config
  -v, --verbose       more logging (-vv for trace); RUST_LOG overrides
  -q, --quiet         warnings and errors only
  -h, --help          this text
  -V, --version       version

exit status: 0 mirrored, 1 some items failed (retried next cycle),
2 usage or configuration error, 3 token rejected, 4 safety stop,
5 another instance holds the lock";

/// Exit codes of the contract.
const EXIT_USAGE: i32 = 2;
const EXIT_LOCKED: i32 = 5;

struct Args {
    config: Option<PathBuf>,
    dry_run: bool,
    verbosity: i32,
    bwlimit: Option<u64>,
    command: String,
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut a = Args { config: None, dry_run: false, verbosity: 0, bwlimit: None, command: String::new() };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "-c" | "--config" => a.config = Some(it.next().ok_or("-c needs a FILE")?.into()),
            s if s.starts_with("--config=") => a.config = Some(s["--config=".len()..].into()),
            "-n" | "--dry-run" => a.dry_run = true,
            "--bwlimit" => {
                let v = it.next().ok_or("--bwlimit needs a RATE such as 500K or 2M")?;
                a.bwlimit = Some(config::parse_size(&v).ok_or(format!("--bwlimit: `{v}` is not a rate such as 500K, 2M or 0"))?);
            }
            "-q" | "--quiet" => a.verbosity -= 1,
            "-v" | "--verbose" => a.verbosity += 1,
            "-vv" => a.verbosity += 2,
            "-h" | "--help" => {
                println!("{USAGE}");
                exit(0)
            }
            "-V" | "--version" => {
                println!("ysync {}", env!("CARGO_PKG_VERSION"));
                exit(0)
            }
            s if s.starts_with('-') => return Err(format!("unknown option `{s}`")),
            s if a.command.is_empty() => a.command = s.to_string(),
            s => return Err(format!("unexpected argument `{s}` after the command `{}`", a.command)),
        }
    }
    if a.command.is_empty() {
        a.command = "run".into();
    }
    Ok(a)
}

fn main() {
    let args = parse_args(std::env::args().skip(1)).unwrap_or_else(|e| {
        eprintln!("ysync: {e}\n\n{USAGE}");
        exit(EXIT_USAGE)
    });
    logging::init(args.verbosity);
    match args.command.as_str() {
        "run" | "once" | "status" | "verify" | "check" => {}
        "login" => {
            eprintln!("ysync: `{}` is not available in this version yet; use `once` or `run`", args.command);
            exit(EXIT_USAGE)
        }
        other => {
            eprintln!("ysync: unknown command `{other}`\n\n{USAGE}");
            exit(EXIT_USAGE)
        }
    }

    let env = |k: &str| std::env::var(k).ok();
    let path = args.config.unwrap_or_else(|| config::default_path(&env));
    let mut cfg = config::load(&path, &env).unwrap_or_else(|e| {
        log::error!("{e}");
        exit(EXIT_USAGE)
    });
    if let Some(rate) = args.bwlimit {
        cfg.bwlimit = rate;
    }
    log::debug!("config: {cfg:?}");

    match args.command.as_str() {
        "status" => exit(inspect::status(&cfg)),
        "verify" => exit(inspect::verify(&cfg, &mut yandex::Yandex::new(&cfg.api_url, cfg.token.secret(), cfg.timeout))),
        "check" => exit(inspect::check(&cfg, &path, &mut yandex::Yandex::new(&cfg.api_url, cfg.token.secret(), cfg.timeout))),
        _ => {}
    }

    let mut store = state::Store::open(&cfg.state_file).unwrap_or_else(|e| {
        log::error!("{e}");
        exit(if matches!(e, state::Error::Locked(_)) { EXIT_LOCKED } else { EXIT_USAGE })
    });
    let mut disk = yandex::Yandex::new(&cfg.api_url, cfg.token.secret(), cfg.timeout);
    let mut syncer = sync::Syncer::new(&cfg, &mut disk, &mut store);

    let once = args.command == "once" || args.dry_run;
    loop {
        let outcome = syncer.cycle(args.dry_run);
        match &outcome {
            Outcome::Clean | Outcome::Failed(_) => {}
            Outcome::SafetyStop(m) | Outcome::StateError(m) => log::error!("{m}"),
            Outcome::TokenRejected(m) | Outcome::StateUnusable(m) => {
                log::error!("{m}");
                exit(outcome.exit_code())
            }
        }
        if once {
            exit(outcome.exit_code())
        }
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
    }
}
