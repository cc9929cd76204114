//! Quantities as people read and write them: bytes, durations, dates.
//! Integer arithmetic only: formatting floats would add std's float printer
//! (about 20 KB) to a binary meant for routers.

/// `1.5 MiB`: one decimal, rounded. Integer arithmetic, as in all of
/// ysync's output: formatting floats would add std's float printer (about
/// 20 KB) to a binary meant for routers.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut u = 0;
    while u < UNITS.len() - 1 && n >> (10 * (u + 1)) > 0 {
        u += 1;
    }
    if u == 0 {
        return format!("{n} B");
    }
    let shift = 10 * u;
    let tenths = (u128::from(n) * 10 + (1 << (shift - 1))) >> shift; // rounded
    format!("{}.{} {}", tenths / 10, tenths % 10, UNITS[u])
}

/// `500K`, `2M`, `1G` (powers of 1024) or a plain number of bytes.
pub fn parse_size(v: &str) -> Option<u64> {
    let v = v.trim();
    let (digits, mult) = match v.char_indices().last()? {
        (i, 'k' | 'K') => (&v[..i], 1u64 << 10),
        (i, 'm' | 'M') => (&v[..i], 1 << 20),
        (i, 'g' | 'G') => (&v[..i], 1 << 30),
        _ => (v, 1),
    };
    digits.trim().parse::<u64>().ok()?.checked_mul(mult)
}

/// `12.3` (milliseconds) without formatting a float (see `human_bytes`).
pub fn ms(d: std::time::Duration) -> String {
    let us = d.as_micros();
    format!("{}.{}", us / 1000, us % 1000 / 100)
}

/// `1.2` (seconds), likewise.
pub fn secs(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    format!("{}.{}", ms / 1000, ms % 1000 / 100)
}

pub fn utc(secs: u64) -> String {
    let (days, rem) = (secs / 86400, secs % 86400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Seconds since the Unix epoch (0 for a clock before it).
pub fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Nanoseconds since the Unix epoch, as file times are compared.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("500K"), Some(500 * 1024));
        assert_eq!(parse_size("2m"), Some(2 << 20));
        assert_eq!(parse_size("123"), Some(123));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size(""), None);
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 << 20), "5.0 MiB");
        assert_eq!(human_bytes(2000), "2.0 KiB", "rounded, not cut");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(u64::MAX), "16777216.0 TiB");
    }

    #[test]
    fn utc_dates() {
        assert_eq!(super::utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(super::utc(1_795_578_824), "2026-11-25T03:53:44Z");
    }
}
