//! UTC calendar arithmetic for buckets, month windows and RFC 3339 timestamps.
//!
//! Hand-written (Howard Hinnant's days-from-civil algorithm, ~80 lines) rather than pulling `chrono` or
//! `time` into the gateway: the ledger only needs UTC buckets, the first of the month, and reading and
//! writing RFC 3339 with an offset, all of which are exact integer arithmetic.

pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 86_400_000;

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

pub fn hour_start(ms: i64) -> i64 {
    ms.div_euclid(HOUR_MS) * HOUR_MS
}

pub fn day_start(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS) * DAY_MS
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Start (ms) of the UTC calendar month containing `ms`.
pub fn month_start(ms: i64) -> i64 {
    let (y, m, _) = civil_from_days(ms.div_euclid(DAY_MS));
    days_from_civil(y, m, 1) * DAY_MS
}

/// `2025-01-31T12:00:00.000Z`
pub fn format_rfc3339(ms: i64) -> String {
    let (y, mo, d) = civil_from_days(ms.div_euclid(DAY_MS));
    let rem = ms.rem_euclid(DAY_MS);
    let (h, mi, s, milli) = (
        rem / HOUR_MS,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000,
    );
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
}

/// Parses RFC 3339 (`2025-01-31T12:00:00Z`, `…T12:00:00.123+02:00`; `t`/`z`/space accepted as
/// RFC 3339 allows) into unix milliseconds. Fractions beyond milliseconds are truncated.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.trim().as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(r)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || d < 1 || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let days_in_month = days_from_civil(
        if mo == 12 { y + 1 } else { y },
        if mo == 12 { 1 } else { mo as u32 + 1 },
        1,
    ) - days_from_civil(y, mo as u32, 1);
    if d > days_in_month {
        return None;
    }
    let mut i = 19;
    let mut millis = 0i64;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
        let digits = &b[start..i.min(start + 3)];
        let mut v = 0i64;
        for (k, c) in digits.iter().enumerate() {
            v += i64::from(c - b'0') * [100, 10, 1][k];
        }
        millis = v;
    }
    let offset_ms = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let o = (oh * 60 + om) * 60_000;
            if *sign == b'+' { o } else { -o }
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo as u32, d as u32) * 86_400 + h * 3600 + mi * 60 + sec.min(59);
    Some(secs * 1000 + millis - offset_ms)
}

/// `7d`, `24h`, `30m` → milliseconds.
pub fn parse_span(s: &str) -> Option<i64> {
    let s = s.trim();
    let (n, unit) = s.split_at(s.len().checked_sub(1)?);
    let n: i64 = n.parse().ok().filter(|n| *n >= 0)?;
    let unit_ms = match unit {
        "d" => DAY_MS,
        "h" => HOUR_MS,
        "m" => 60_000,
        _ => return None,
    };
    n.checked_mul(unit_ms)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_and_honours_offsets() {
        let t = parse_rfc3339("2024-02-29T23:59:59.5Z").unwrap();
        assert_eq!(format_rfc3339(t), "2024-02-29T23:59:59.500Z");
        assert_eq!(parse_rfc3339("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00-00:30"), Some(1_800_000));
        for bad in [
            "bogus",
            "2024-02-30T00:00:00Z",
            "2024-01-01",
            "2024-01-01T00:00:00",
            "2024-13-01T00:00:00Z",
            "2024-01-01T00:00:00+0100",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn month_and_bucket_starts_are_utc() {
        let t = parse_rfc3339("2025-03-15T13:45:00Z").unwrap();
        assert_eq!(format_rfc3339(month_start(t)), "2025-03-01T00:00:00.000Z");
        assert_eq!(format_rfc3339(day_start(t)), "2025-03-15T00:00:00.000Z");
        assert_eq!(format_rfc3339(hour_start(t)), "2025-03-15T13:00:00.000Z");
        assert_eq!(parse_span("7d"), Some(7 * DAY_MS));
        assert_eq!(parse_span("24h"), Some(24 * HOUR_MS));
        assert_eq!(parse_span("x"), None);
    }
}
