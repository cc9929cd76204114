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
    let (y, m, d, rem) = civil(secs as i64);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// RFC 3339 in UTC with nanoseconds, `2026-12-07T15:04:05.123456789Z`, as
/// a file's time is kept on the Disk (rclone's `rclone_modified` reads it).
pub fn utc_ns(ns: i64) -> String {
    let (secs, frac) = (ns.div_euclid(1_000_000_000), ns.rem_euclid(1_000_000_000));
    let (y, m, d, rem) = civil(secs);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:09}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// An RFC 3339 time (`2026-12-07T15:04:05Z`, with a fraction and an offset
/// such as `+03:00` or not) as nanoseconds since the epoch.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes().all(|c| c.is_ascii_digit()).then(|| t.parse().ok())?
    };
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d, h, mi, sec) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut nanos = 0i64;
    if let Some(f) = rest.strip_prefix('.') {
        let digits = f.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let kept = &f[..digits.min(9)];
        nanos = kept.parse::<i64>().ok()? * 10i64.pow(9 - kept.len() as u32);
        rest = &f[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && matches!(rest.as_bytes()[0], b'+' | b'-') && rest.as_bytes()[3] == b':' => {
            let o = num(s.len() - 5..s.len() - 3)? * 3600 + num(s.len() - 2..s.len())? * 60;
            if rest.starts_with('-') { -o } else { o }
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset;
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// Days since 1970-01-01 of a date (Howard Hinnant's days_from_civil).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Year, month, day and the seconds into that day of `secs` since the epoch.
fn civil(secs: i64) -> (i64, i64, i64, i64) {
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, rem)
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

    #[test]
    fn file_times_round_trip_through_rfc3339() {
        for ns in [0, 1_795_578_824_123_456_789, -1_000_000_001, 951_782_400_000_000_000, 4_102_444_799_999_999_999] {
            assert_eq!(parse_rfc3339(&utc_ns(ns)), Some(ns), "{}", utc_ns(ns));
        }
        assert_eq!(utc_ns(-1), "1969-12-31T23:59:59.999999999Z");
        // What rclone writes (RFC3339Nano, trailing zeros cut, any offset).
        assert_eq!(parse_rfc3339("2026-11-25T06:53:44.5+03:00"), Some(1_795_578_824_500_000_000));
        assert_eq!(parse_rfc3339("2026-11-25T03:53:44Z"), Some(1_795_578_824_000_000_000));
        assert_eq!(parse_rfc3339("2026-11-25T03:53:44.1234567891Z"), Some(1_795_578_824_123_456_789), "past ns: cut");
        for bad in [
            "",
            "2026-11-25",
            "2026-13-25T03:53:44Z",
            "2026-11-25T03:53:44",
            "2026-11-25T03:53:44.Z",
            "yesterday",
            "2026-11-25T03:53:44+0300",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
