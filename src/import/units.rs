//! nginx's time and size units, and their rampart spelling.

/// nginx time: `30s`, `1h30m`, `86400` (seconds), `500ms`, `1M` (30 days),
/// `1y` (365 days). Returns milliseconds.
pub fn duration_ms(s: &str) -> Option<u64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(n) = s.parse::<u64>() {
        return n.checked_mul(1000);
    }
    let mut total: u64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        rest = rest.trim_start();
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (unit_ms, len) = if rest.starts_with("ms") {
            (1, 2)
        } else {
            let unit = match rest.chars().next() {
                Some('s') | None => 1000,
                Some('m') => 60_000,
                Some('h') => 3_600_000,
                Some('d') => 86_400_000,
                Some('w') => 7 * 86_400_000,
                Some('M') => 30 * 86_400_000,
                Some('y') => 365 * 86_400_000,
                Some(_) => return None,
            };
            (unit, usize::from(!rest.is_empty()))
        };
        rest = &rest[len..];
        total = total.checked_add(n.checked_mul(unit_ms)?)?;
    }
    Some(total)
}

/// Seconds below an hour (`60s`, `300s`, as nginx users write timeouts),
/// otherwise the largest unit that divides `ms` exactly: `1d`, `20d`, `2h`.
pub fn fmt_duration(ms: u64) -> String {
    if ms.is_multiple_of(1000) && ms < 3_600_000 {
        return format!("{}s", ms / 1000);
    }
    const UNITS: [(u64, &str); 5] = [
        (365 * 86_400_000, "y"),
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1000, "s"),
    ];
    if ms == 0 {
        return "0s".into();
    }
    for (unit, name) in UNITS {
        if ms.is_multiple_of(unit) {
            return format!("{}{name}", ms / unit);
        }
    }
    format!("{ms}ms")
}

/// nginx size: `10m`, `10M`, `128k`, `1g`, `4096` (bytes).
pub fn size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last()? {
        (i, 'k' | 'K') => (&s[..i], 1024),
        (i, 'm' | 'M') => (&s[..i], 1024 * 1024),
        (i, 'g' | 'G') => (&s[..i], 1024 * 1024 * 1024),
        _ => (s, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

/// `10M`, `128k`, `0`: powers of 1024 as rampart reads them.
pub fn fmt_size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "G"), (1 << 20, "M"), (1 << 10, "k")];
    if bytes == 0 {
        return "0".into();
    }
    for (unit, name) in UNITS {
        if bytes.is_multiple_of(unit) {
            return format!("{}{name}", bytes / unit);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nginx_durations() {
        assert_eq!(duration_ms("86400"), Some(86_400_000));
        assert_eq!(duration_ms("30s"), Some(30_000));
        assert_eq!(duration_ms("1h30m"), Some(5_400_000));
        assert_eq!(duration_ms("1h 30m"), Some(5_400_000));
        assert_eq!(duration_ms("500ms"), Some(500));
        assert_eq!(duration_ms("1y"), Some(365 * 86_400_000));
        assert_eq!(duration_ms("30d"), Some(30 * 86_400_000));
        assert_eq!(duration_ms("1M"), Some(30 * 86_400_000));
        assert_eq!(duration_ms("abc"), None);
        assert_eq!(duration_ms("5x"), None);
        assert_eq!(duration_ms(""), None);
        assert_eq!(duration_ms("99999999999999999999"), None);
    }

    #[test]
    fn rampart_durations() {
        assert_eq!(fmt_duration(86_400_000), "1d");
        assert_eq!(fmt_duration(1_728_000_000), "20d");
        assert_eq!(fmt_duration(300_000), "300s");
        assert_eq!(fmt_duration(60_000), "60s");
        assert_eq!(fmt_duration(7_200_000), "2h");
        assert_eq!(fmt_duration(5_400_000), "90m");
        assert_eq!(fmt_duration(90_000), "90s");
        assert_eq!(fmt_duration(365 * 86_400_000), "1y");
        assert_eq!(fmt_duration(250), "250ms");
        assert_eq!(fmt_duration(0), "0s");
    }

    #[test]
    fn sizes() {
        assert_eq!(size("10M"), Some(10 << 20));
        assert_eq!(size("10m"), Some(10 << 20));
        assert_eq!(size("128k"), Some(128 << 10));
        assert_eq!(size("1g"), Some(1 << 30));
        assert_eq!(size("4096"), Some(4096));
        assert_eq!(size("x"), None);
        assert_eq!(size(""), None);
        assert_eq!(fmt_size(10 << 20), "10M");
        assert_eq!(fmt_size(1500), "1500");
        assert_eq!(fmt_size(0), "0");
    }
}
