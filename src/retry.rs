//! Retries with exponential backoff and jitter, for transient remote errors
//! (timeouts, resets, 429, 5xx, a busy path), and one `Pacer` that slows
//! every API call after a 429. Bounded: after `TRIES` (for a 429: after
//! `PACE_LIMIT`) the error goes back to the caller, which marks the item
//! failed for this cycle.

use std::cell::Cell;
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::remote::Error;

/// Tries per request, the first included.
pub const TRIES: u32 = 5;
const BASE: Duration = Duration::from_millis(250);
const CAP: Duration = Duration::from_secs(30);
/// The longest `Retry-After` ysync agrees to wait inside one cycle.
const RETRY_AFTER_CAP: Duration = Duration::from_secs(120);
/// How long one request keeps trying through 429s (they do not use up
/// `TRIES`: a rate limit is a reason to slow down, not to give up).
pub const PACE_LIMIT: Duration = Duration::from_secs(120);

/// The one bounded wait between looks at something that takes time (an
/// operation, a fresh upload the Disk does not show yet): pauses of `first`
/// doubling to `cap`, until `limit` has passed. Every poll loop uses it.
/// Time as the waits of `Backoff` and `Poll` see it. Tests that run the
/// whole cycle against an in-memory Disk warp it ([`clock::warp`]): a sleep
/// then only moves the clock on, so a seed runs in milliseconds and the
/// same way every time. Release builds have the plain clock only.
pub mod clock {
    use std::time::{Duration, Instant};

    #[cfg(test)]
    thread_local! {
        static WARPED: std::cell::Cell<Option<Duration>> = const { std::cell::Cell::new(None) };
    }

    pub fn now() -> Instant {
        #[cfg(test)]
        if let Some(ahead) = WARPED.with(|w| w.get()) {
            return Instant::now() + ahead;
        }
        Instant::now()
    }

    pub fn sleep(d: Duration) {
        #[cfg(test)]
        if let Some(ahead) = WARPED.with(|w| w.get()) {
            return WARPED.with(|w| w.set(Some(ahead + d)));
        }
        std::thread::sleep(d);
    }

    /// From now on, in this thread, sleeps take no time.
    #[cfg(test)]
    pub fn warp() {
        WARPED.with(|w| w.set(Some(w.get().unwrap_or_default())));
    }
}

pub struct Poll {
    deadline: Instant,
    pause: Duration,
    cap: Duration,
}

impl Poll {
    /// 250 ms doubling to 2 s: the executor's looks at the Disk.
    pub fn new(limit: Duration) -> Poll {
        Poll::with(Duration::from_millis(250), Duration::from_secs(2), limit)
    }

    pub fn with(first: Duration, cap: Duration, limit: Duration) -> Poll {
        Poll { deadline: clock::now() + limit, pause: first, cap }
    }

    /// Sleeps before the next look; `false`, without sleeping, once the
    /// deadline has passed.
    pub fn again(&mut self) -> bool {
        if clock::now() >= self.deadline {
            return false;
        }
        clock::sleep(self.pause);
        self.pause = (self.pause * 2).min(self.cap);
        true
    }
}

pub struct Backoff {
    tries: u32,
    /// 429s seen, for their own exponential wait.
    slowed: u32,
    /// The waits given for 429s so far.
    slowed_for: Duration,
    rng: u64,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff::new()
    }
}

impl Backoff {
    pub fn new() -> Backoff {
        let seed = SystemTime::now().duration_since(UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64) ^ u64::from(std::process::id());
        Backoff { tries: 1, slowed: 0, slowed_for: Duration::ZERO, rng: seed | 1 }
    }

    /// How long to wait before trying again, or `None` to give up.
    pub fn next(&mut self, err: &Error) -> Option<Duration> {
        if !err.is_transient() {
            return None;
        }
        let n = if let Error::TooManyRequests(_) = err {
            self.slowed += 1;
            self.slowed
        } else {
            if self.tries >= TRIES {
                return None;
            }
            self.tries += 1;
            self.tries - 1
        };
        let exp = BASE.saturating_mul(1 << (n - 1).min(16)).min(CAP);
        // Jitter in [0.5, 1.5) so that many boxes do not retry in step.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let jittered = exp.mul_f64(0.5 + (self.rng % 1000) as f64 / 1000.0);
        match err {
            Error::TooManyRequests(after) => {
                let wait = jittered.max(Duration::from_secs(after.unwrap_or(0)).min(RETRY_AFTER_CAP));
                self.slowed_for += wait;
                (self.slowed_for <= PACE_LIMIT).then_some(wait)
            }
            _ => Some(jittered),
        }
    }

    /// Sleeps before the next try; `false` when the caller should give up.
    pub fn wait(&mut self, what: &str, err: &Error) -> bool {
        match self.next(err) {
            Some(d) => {
                log::debug!("{what}: {err}; trying again in {}s", crate::units::secs(d));
                clock::sleep(d);
                true
            }
            None => false,
        }
    }
}

/// Runs `f` until it succeeds, fails for good, or runs out of tries; each
/// try goes through the pacer.
pub fn retry<T>(pacer: &Pacer, what: &str, mut f: impl FnMut() -> Result<T, Error>) -> Result<T, Error> {
    let mut b = Backoff::new();
    loop {
        pacer.wait();
        let result = f();
        pacer.note(result.as_ref().err());
        match result {
            Err(e) if b.wait(what, &e) => {}
            other => return other,
        }
    }
}

/// The smallest gap a 429 sets, the largest it grows to, and the gap below
/// which calls go at full speed again.
const PACE_MIN: Duration = Duration::from_millis(100);
const PACE_MAX: Duration = Duration::from_secs(30);
const PACE_FLOOR: Duration = Duration::from_millis(10);

/// One slow-down shared by every API call of a process (R6 in
/// real-disk-evidence.md: the Disk publishes no quota and may send 429
/// without `Retry-After`). Calls go at full speed until a 429; from then on
/// each call starts at least `gap` after the previous one. A 429 doubles
/// the gap (from `PACE_MIN` up to `PACE_MAX`; a `Retry-After` holds every
/// call back that long), a success takes a quarter off it, and below
/// `PACE_FLOOR` it is gone. rclone's pacer for this backend does the same
/// (lib/pacer `Default`: attack ×2, decay constant 2, i.e. ×3/4, 10 ms …
/// 2 s), except that it never goes below 10 ms.
#[derive(Default)]
pub struct Pacer {
    gap: Cell<Duration>,
    /// When the next call may start.
    next: Cell<Option<Instant>>,
}

impl Pacer {
    /// Sleeps until the next call may start.
    pub fn wait(&self) {
        if let Some(at) = self.next.get() {
            let now = Instant::now();
            if at > now {
                sleep(at - now);
            }
        }
        self.next.set((!self.gap.get().is_zero()).then(|| Instant::now() + self.gap.get()));
    }

    /// Takes a call's outcome into account: `Some(err)` for a failure.
    pub fn note(&self, err: Option<&Error>) {
        let gap = match err {
            Some(Error::TooManyRequests(after)) => {
                let gap = (self.gap.get() * 2).clamp(PACE_MIN, PACE_MAX);
                if let Some(secs) = after {
                    let hold = Instant::now() + Duration::from_secs(*secs).min(RETRY_AFTER_CAP);
                    self.next.set(Some(self.next.get().map_or(hold, |t| t.max(hold))));
                }
                if self.gap.get().is_zero() {
                    log::info!("the Disk asks to slow down (429): API calls are spaced out until it stops");
                } else if gap > self.gap.get() {
                    log::debug!("429 again: one API call every {}s", crate::units::secs(gap));
                }
                gap
            }
            Some(_) => return,
            None if self.gap.get() * 3 / 4 < PACE_FLOOR => Duration::ZERO,
            None => self.gap.get() * 3 / 4,
        };
        if gap.is_zero() && !self.gap.get().is_zero() {
            log::info!("API calls back to full speed");
        }
        self.gap.set(gap);
    }

    #[cfg(test)]
    fn gap(&self) -> Duration {
        self.gap.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_errors_back_off_exponentially_and_stop() {
        let mut b = Backoff::new();
        let e = Error::Server(503);
        let waits: Vec<Duration> = std::iter::from_fn(|| b.next(&e)).collect();
        assert_eq!(waits.len(), TRIES as usize - 1);
        for (i, w) in waits.iter().enumerate() {
            let exp = BASE * (1 << i);
            assert!(*w >= exp / 2 && *w < exp * 3 / 2, "try {i}: {w:?}");
        }
    }

    #[test]
    fn retry_after_is_honoured_and_capped() {
        assert!(Backoff::new().next(&Error::TooManyRequests(Some(7))).unwrap() >= Duration::from_secs(7));
        assert_eq!(Backoff::new().next(&Error::TooManyRequests(Some(100_000))).unwrap(), RETRY_AFTER_CAP);
    }

    #[test]
    fn a_bare_429_keeps_trying_until_the_pace_limit() {
        let mut b = Backoff::new();
        let e = Error::TooManyRequests(None);
        let waits: Vec<Duration> = std::iter::from_fn(|| b.next(&e)).collect();
        assert!(waits.len() > TRIES as usize, "429s do not use up the tries: {waits:?}");
        assert!(waits.iter().sum::<Duration>() <= PACE_LIMIT);
        assert!(waits.iter().sum::<Duration>() >= PACE_LIMIT / 2, "{waits:?}");
        assert!(waits.iter().all(|w| *w <= CAP * 3 / 2));
        // Other errors still stop after TRIES, whatever 429s came first.
        let mut b = Backoff::new();
        b.next(&e);
        assert_eq!(std::iter::from_fn(|| b.next(&Error::Server(500))).count(), TRIES as usize - 1);
    }

    #[test]
    fn the_pacer_slows_every_call_after_a_429_and_recovers_on_success() {
        let p = Pacer::default();
        p.note(None);
        assert_eq!(p.gap(), Duration::ZERO, "full speed until a 429");
        let too_many = Error::TooManyRequests(None);
        p.note(Some(&too_many));
        assert_eq!(p.gap(), PACE_MIN);
        p.note(Some(&too_many));
        p.note(Some(&too_many));
        assert_eq!(p.gap(), PACE_MIN * 4);
        p.note(Some(&Error::Server(500)));
        assert_eq!(p.gap(), PACE_MIN * 4, "only a 429 or a success moves it");
        for _ in 0..20 {
            p.note(Some(&too_many));
        }
        assert_eq!(p.gap(), PACE_MAX);
        // Calls are spaced by the gap.
        let p = Pacer::default();
        p.note(Some(&too_many));
        let t = Instant::now();
        p.wait();
        p.wait();
        assert!(t.elapsed() >= PACE_MIN);
        p.note(None);
        assert_eq!(p.gap(), PACE_MIN * 3 / 4, "a success takes a quarter off");
        for _ in 0..8 {
            p.note(None);
        }
        assert_eq!(p.gap(), Duration::ZERO, "below the floor: full speed again");
        // A Retry-After holds every call back that long.
        let p = Pacer::default();
        p.note(Some(&Error::TooManyRequests(Some(1))));
        let t = Instant::now();
        p.wait();
        assert!(t.elapsed() >= Duration::from_millis(900));
    }

    #[test]
    fn permanent_errors_are_not_retried() {
        for e in [Error::Unauthorized, Error::InsufficientStorage, Error::TooLarge, Error::Locked("DiskUploadTrafficLimitExceeded".into())]
        {
            assert_eq!(Backoff::new().next(&e), None, "{e}");
        }
        assert!(Backoff::new().next(&Error::Locked("DiskResourceLockedError".into())).is_some());
    }

    #[test]
    fn retry_returns_the_first_success() {
        let mut n = 0;
        let r = retry(&Pacer::default(), "t", || {
            n += 1;
            if n < 2 { Err(Error::Network("reset".into())) } else { Ok(n) }
        });
        assert_eq!(r.unwrap(), 2);
    }
}
