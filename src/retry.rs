//! Retries with exponential backoff and jitter, for transient remote errors
//! (timeouts, resets, 429, 5xx, a busy path). Bounded: after `TRIES` the
//! error goes back to the caller, which marks the item failed for this cycle.

use std::thread::sleep;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::remote::Error;

/// Tries per request, the first included.
pub const TRIES: u32 = 5;
const BASE: Duration = Duration::from_millis(250);
const CAP: Duration = Duration::from_secs(30);
/// The longest `Retry-After` ysync agrees to wait inside one cycle.
const RETRY_AFTER_CAP: Duration = Duration::from_secs(120);

pub struct Backoff {
    tries: u32,
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
        Backoff { tries: 1, rng: seed | 1 }
    }

    /// How long to wait before trying again, or `None` to give up.
    pub fn next(&mut self, err: &Error) -> Option<Duration> {
        if !err.is_transient() || self.tries >= TRIES {
            return None;
        }
        let exp = BASE.saturating_mul(1 << (self.tries - 1)).min(CAP);
        self.tries += 1;
        // Jitter in [0.5, 1.5) so that many boxes do not retry in step.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let jittered = exp.mul_f64(0.5 + (self.rng % 1000) as f64 / 1000.0);
        Some(match err {
            Error::TooManyRequests(Some(secs)) => jittered.max(Duration::from_secs(*secs).min(RETRY_AFTER_CAP)),
            _ => jittered,
        })
    }

    /// Sleeps before the next try; `false` when the caller should give up.
    pub fn wait(&mut self, what: &str, err: &Error) -> bool {
        match self.next(err) {
            Some(d) => {
                log::debug!("{what}: {err}; trying again in {}s", crate::logging::secs(d));
                sleep(d);
                true
            }
            None => false,
        }
    }
}

/// Runs `f` until it succeeds, fails for good, or runs out of tries.
pub fn retry<T>(what: &str, mut f: impl FnMut() -> Result<T, Error>) -> Result<T, Error> {
    let mut b = Backoff::new();
    loop {
        match f() {
            Err(e) if b.wait(what, &e) => {}
            other => return other,
        }
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
        let r = retry("t", || {
            n += 1;
            if n < 2 { Err(Error::Network("reset".into())) } else { Ok(n) }
        });
        assert_eq!(r.unwrap(), 2);
    }
}
