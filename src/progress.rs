//! How far a long cycle is: every `progress` seconds (30 by default) one
//! line with the items and bytes done of the planned total, the rate and
//! the time left; and on a terminal one live line, redrawn every second,
//! instead. The per-file lines (`uploaded …`) stay as they are.
//!
//! The total is what the plan holds. A change planned in parts knows its
//! later parts only by their files on disk: until they are planned, the
//! total is an estimate, marked `≈`.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::units::human_bytes;

/// How often the live line on a terminal is redrawn.
const LIVE_EVERY: Duration = Duration::from_secs(1);

pub struct Progress {
    /// Between two lines; zero: none.
    every: Duration,
    /// One line redrawn in place (stderr is a terminal).
    live: bool,
    /// When the first action was planned in this cycle.
    start: Option<Instant>,
    next: Instant,
    /// Planned: actions, and bytes to upload.
    items: u64,
    bytes: u64,
    /// Files of the parts not planned yet (an estimate of their actions).
    rest: u64,
    done_items: u64,
    done_bytes: u64,
    /// Bytes sent of the upload under way.
    sending: u64,
    /// A line was shown in this cycle (so the end gets one too).
    said: bool,
}

impl Progress {
    pub fn new(every: Duration, live: bool) -> Progress {
        let now = Instant::now();
        Progress { every, live, start: None, next: now, items: 0, bytes: 0, rest: 0, done_items: 0, done_bytes: 0, sending: 0, said: false }
    }

    /// Lines on a terminal are live when stderr is one, the log is at info
    /// level or more, and systemd's journal is not the reader.
    pub fn on_terminal(every: Duration) -> Progress {
        use std::io::IsTerminal;
        let live = std::io::stderr().is_terminal() && std::env::var_os("JOURNAL_STREAM").is_none() && log::log_enabled!(log::Level::Info);
        Progress::new(every, live)
    }

    /// A new cycle: nothing planned, nothing done.
    pub fn reset(&mut self) {
        *self = Progress::new(self.every, self.live);
    }

    /// A part's plan: `items` actions uploading `bytes`; `rest` files in
    /// the parts still to plan.
    pub fn planned(&mut self, items: u64, bytes: u64, rest: u64) {
        if items > 0 && self.start.is_none() {
            let now = Instant::now();
            self.start = Some(now);
            self.next = now + if self.live { LIVE_EVERY } else { self.every };
        }
        self.items += items;
        self.bytes += bytes;
        self.rest = rest;
    }

    /// `n` more bytes of the upload under way went out.
    pub fn sent(&mut self, n: u64) {
        self.sending += n;
        self.tick();
    }

    /// One action is over (done, failed or skipped), having sent `bytes`.
    pub fn finished(&mut self, bytes: u64) {
        self.done_items += 1;
        self.done_bytes += bytes;
        self.sending = 0;
        self.tick();
    }

    /// Is the live line taking the place of the per-upload lines?
    pub fn is_live(&self) -> bool {
        self.live && !self.every.is_zero()
    }

    fn tick(&mut self) {
        let now = Instant::now();
        if self.every.is_zero() || self.start.is_none() || now < self.next {
            return;
        }
        self.next = now + if self.live { LIVE_EVERY } else { self.every };
        self.show();
    }

    fn show(&mut self) {
        self.said = true;
        let line = self.line(self.start.map_or(Duration::ZERO, |s| s.elapsed()));
        if self.live {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r{line}\x1b[K");
            let _ = err.flush();
            crate::logging::live_line_shown();
        } else {
            log::info!("{line}");
        }
    }

    /// The cycle's last line, when it said any before.
    pub fn end(&mut self) {
        if self.said {
            self.show();
            if self.live {
                eprintln!();
                crate::logging::live_line_gone();
            }
        }
        self.said = false;
    }

    /// `progress: 1 200 of 200 000 items, 4.1 GiB of 812 GiB (0%), 3.2 MiB/s, 2d 19h left`.
    fn line(&self, elapsed: Duration) -> String {
        let (items, bytes) = self.totals();
        let approx = if self.rest > 0 { "≈" } else { "" };
        let done = self.done_bytes + self.sending;
        let secs = elapsed.as_millis().max(1);
        let rate = (u128::from(done) * 1000 / secs) as u64;
        let left = if bytes > 0 && rate > 0 {
            Some(bytes.saturating_sub(done) / rate)
        } else if self.done_items > 0 {
            Some((u128::from(items.saturating_sub(self.done_items)) * secs / u128::from(self.done_items) / 1000) as u64)
        } else {
            None
        };
        let mut line = format!("progress: {} of {approx}{} items", self.done_items, items);
        if bytes > 0 {
            line +=
                &format!(", {} of {approx}{} ({}%), {}/s", human_bytes(done), human_bytes(bytes), done * 100 / bytes, human_bytes(rate));
        }
        match left {
            _ if self.done_items >= items && self.rest == 0 => line += ", done",
            Some(s) => line += &format!(", {approx}{} left", duration(s)),
            None => {}
        }
        line
    }

    /// The total actions and bytes: those planned, and an estimate of the
    /// parts to come (their files, at the bytes per item planned so far).
    fn totals(&self) -> (u64, u64) {
        let per_item = self.bytes.checked_div(self.items).unwrap_or(0);
        (self.items + self.rest, self.bytes + self.rest * per_item)
    }
}

/// `45s`, `12m 30s`, `3h 05m`, `2d 19h`.
fn duration(s: u64) -> String {
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86400, s % 86400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_says_done_of_total_the_rate_and_the_time_left() {
        let mut p = Progress::new(Duration::from_secs(30), false);
        p.planned(4, 400 << 20, 0);
        p.finished(100 << 20);
        p.sent(50 << 20);
        assert_eq!(p.line(Duration::from_secs(10)), "progress: 1 of 4 items, 150.0 MiB of 400.0 MiB (37%), 15.0 MiB/s, 16s left");
        p.finished(50 << 20);
        p.finished(250 << 20);
        p.finished(0);
        assert_eq!(p.line(Duration::from_secs(40)), "progress: 4 of 4 items, 400.0 MiB of 400.0 MiB (100%), 10.0 MiB/s, done");
    }

    #[test]
    fn parts_not_planned_yet_are_estimated_from_their_files() {
        let mut p = Progress::new(Duration::from_secs(30), false);
        p.planned(10, 10 << 20, 90);
        p.finished(1 << 20);
        assert_eq!(p.line(Duration::from_secs(1)), "progress: 1 of ≈100 items, 1.0 MiB of ≈100.0 MiB (1%), 1.0 MiB/s, ≈1m 39s left");
        // Moves and deletions only: no bytes, the time left from the items.
        let mut p = Progress::new(Duration::from_secs(30), false);
        p.planned(200, 0, 0);
        (0..50).for_each(|_| p.finished(0));
        assert_eq!(p.line(Duration::from_secs(5)), "progress: 50 of 200 items, 15s left");
        assert_eq!(duration(3 * 3600 + 5 * 60), "3h 05m");
        assert_eq!(duration(2 * 86400 + 19 * 3600 + 59), "2d 19h");
    }
}
