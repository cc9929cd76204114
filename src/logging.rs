//! Plain log lines on stderr: `2026-11-25T03:53:44Z INFO message`.
//! Under systemd (`JOURNAL_STREAM` set) the timestamp is left out because
//! journald adds its own. `RUST_LOG` overrides the -v/-q level, with one
//! exception: ureq's trace records are always dropped, because they hex-dump
//! the raw request bytes, Authorization header (the token) included.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use log::{Level, LevelFilter, Log, Metadata, Record};

/// env_logger, minus the records that could carry the token.
struct Guarded(env_logger::Logger);

impl Log for Guarded {
    fn enabled(&self, m: &Metadata) -> bool {
        !(m.level() == Level::Trace && m.target().starts_with("ureq")) && self.0.enabled(m)
    }

    fn log(&self, r: &Record) {
        if self.enabled(r.metadata()) {
            // A record goes above the live progress line, which is then
            // drawn again by its next tick.
            if LIVE.swap(false, Ordering::Relaxed) {
                let _ = write!(std::io::stderr(), "\r\x1b[K");
            }
            self.0.log(r)
        }
    }

    fn flush(&self) {
        self.0.flush()
    }
}

/// A live progress line is on the terminal, without its newline.
static LIVE: AtomicBool = AtomicBool::new(false);

pub fn live_line_shown() {
    LIVE.store(true, Ordering::Relaxed);
}

pub fn live_line_gone() {
    LIVE.store(false, Ordering::Relaxed);
}

pub fn init(verbosity: i32) {
    let level = match verbosity {
        i32::MIN..=-1 => LevelFilter::Warn,
        0 => LevelFilter::Info,
        1 => LevelFilter::Debug,
        _ => LevelFilter::Trace,
    };
    let stamp = std::env::var_os("JOURNAL_STREAM").is_none();
    let mut b = env_logger::Builder::new();
    // Other crates (ureq, rustls) stay at warn unless RUST_LOG says otherwise.
    b.filter_level(LevelFilter::Warn).filter_module("ysync", level);
    if let Ok(spec) = std::env::var("RUST_LOG") {
        b.parse_filters(&spec);
    }
    b.format(move |buf, r| {
        if stamp {
            write!(buf, "{} ", utc_now())?;
        }
        // One record, one line, whatever a name holds.
        writeln!(buf, "{} {}", r.level(), one_line(&r.args().to_string()))
    });
    let logger = b.build();
    let max = logger.filter();
    if log::set_boxed_logger(Box::new(Guarded(logger))).is_ok() {
        log::set_max_level(max);
    }
}

/// `text` with control characters written as escapes (`\n`, `\t`,
/// `\u{7}`), so that no file name, and nothing a server sends, can break a
/// line, forge one or send the terminal an escape sequence. The Unicode
/// controls of text direction are escaped too: they would make a line read
/// backwards.
pub fn one_line(text: &str) -> std::borrow::Cow<'_, str> {
    let hidden =
        |c: char| c.is_control() || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{61c}');
    if !text.chars().any(hidden) {
        return text.into();
    }
    text.chars()
        .map(|c| match c {
            '\n' => "\\n".to_string(),
            '\r' => "\\r".to_string(),
            '\t' => "\\t".to_string(),
            c if hidden(c) => format!("\\u{{{:x}}}", u32::from(c)),
            c => c.to_string(),
        })
        .collect::<String>()
        .into()
}

/// RFC 3339 UTC time of now, without pulling in a date crate.
fn utc_now() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    crate::units::utc(secs)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_log_record_is_one_line_whatever_a_name_holds() {
        assert_eq!(super::one_line("plain Фото+1.jpg"), "plain Фото+1.jpg");
        assert_eq!(super::one_line("a\nINFO forged\tb\r\u{7}"), "a\\nINFO forged\\tb\\r\\u{7}");
        assert_eq!(super::one_line("\u{1b}]0;owned\u{7}\u{1b}[2J"), "\\u{1b}]0;owned\\u{7}\\u{1b}[2J");
        assert_eq!(super::one_line("invoice\u{202e}fdp.exe"), "invoice\\u{202e}fdp.exe", "no line reads backwards");
    }
}
