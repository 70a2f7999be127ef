//! Scalar value syntaxes of the config file: durations, sizes, rates and
//! `${VAR}` interpolation. Pure functions, so every message is unit-tested.

use std::time::Duration;

use thiserror::Error;

/// Why a scalar could not be parsed; the message names the value and the
/// accepted syntax, so the operator does not need the docs to fix it.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ValueError {
    #[error(
        "duration \"{0}\": expected a number followed by ms, s, m, h, d, w or y (e.g. \"30s\")"
    )]
    Duration(String),
    #[error("size \"{0}\": expected a number optionally followed by k, M or G (e.g. \"10M\")")]
    Size(String),
    #[error("rate \"{0}\": expected \"<N>r/s\" or \"<N>r/m\"")]
    Rate(String),
    #[error("rate \"{0}\": must be at least 1 request")]
    ZeroRate(String),
    #[error("environment variable `{0}` is not set (write ${{{0}:-default}} to give a default)")]
    UnsetVar(String),
    #[error("unterminated `${{` in \"{0}\"")]
    UnterminatedVar(String),
    #[error("invalid variable name `{0}` in `${{...}}`")]
    BadVarName(String),
}

/// Parses `"250ms"`, `"30s"`, `"5m"`, `"2h"`, `"1d"`, `"1w"`, `"1y"` or a bare
/// number of seconds. Written by hand rather than with `humantime` because
/// the contract fixes a year at 365 days and `m` at minutes, nginx-style.
pub fn parse_duration(s: &str) -> Result<Duration, ValueError> {
    let err = || ValueError::Duration(s.to_string());
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() {
        return Err(err());
    }
    let n: u64 = num.parse().map_err(|_| err())?;
    let ms_per_unit: u64 = match unit.trim() {
        "" | "s" => 1000,
        "ms" => 1,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        "y" => 365 * 86_400_000,
        _ => return Err(err()),
    };
    n.checked_mul(ms_per_unit)
        .map(Duration::from_millis)
        .ok_or_else(err)
}

/// Parses `"512"`, `"64k"`, `"10M"`, `"1G"` (powers of 1024, any case, as
/// nginx) and `"64KiB"`, `"10MiB"`, `"1GiB"`.
pub fn parse_size(s: &str) -> Result<u64, ValueError> {
    let err = || ValueError::Size(s.to_string());
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() {
        return Err(err());
    }
    let n: u64 = num.parse().map_err(|_| err())?;
    let mult: u64 = match unit {
        "" | "b" | "B" => 1,
        "k" | "K" | "KiB" | "kb" | "KB" => 1 << 10,
        "m" | "M" | "MiB" | "mb" | "MB" => 1 << 20,
        "g" | "G" | "GiB" | "gb" | "GB" => 1 << 30,
        _ => return Err(err()),
    };
    n.checked_mul(mult).ok_or_else(err)
}

/// A request rate, as nginx `limit_req_zone rate=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rate {
    pub requests: u32,
    pub per_minute: bool,
}

impl Rate {
    /// Milli-requests per second, nginx's internal unit (5r/m → 83).
    pub fn milli_per_sec(&self) -> u64 {
        let per_sec_milli = u64::from(self.requests) * 1000;
        if self.per_minute {
            per_sec_milli / 60
        } else {
            per_sec_milli
        }
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unit = if self.per_minute { "m" } else { "s" };
        write!(f, "{}r/{}", self.requests, unit)
    }
}

pub fn parse_rate(s: &str) -> Result<Rate, ValueError> {
    let err = || ValueError::Rate(s.to_string());
    let t = s.trim();
    let (num, per_minute) = if let Some(n) = t.strip_suffix("r/s") {
        (n, false)
    } else if let Some(n) = t.strip_suffix("r/m") {
        (n, true)
    } else {
        return Err(err());
    };
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err());
    }
    let requests: u32 = num.parse().map_err(|_| err())?;
    if requests == 0 {
        return Err(ValueError::ZeroRate(s.to_string()));
    }
    Ok(Rate {
        requests,
        per_minute,
    })
}

/// Replaces `${NAME}` and `${NAME:-default}` using `lookup`.
pub fn interpolate(s: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, ValueError> {
    if !s.contains("${") {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| ValueError::UnterminatedVar(s.to_string()))?;
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        let valid = !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && !name.as_bytes()[0].is_ascii_digit();
        if !valid {
            return Err(ValueError::BadVarName(name.to_string()));
        }
        match (lookup(name), default) {
            (Some(v), _) => out.push_str(&v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => return Err(ValueError::UnsetVar(name.to_string())),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86400)));
        assert_eq!(parse_duration("1w"), Ok(Duration::from_secs(7 * 86400)));
        assert_eq!(parse_duration("1y"), Ok(Duration::from_secs(365 * 86400)));
        for bad in ["", "s", "10x", "-1s", "1.5s", "99999999999999999999y"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_duration("10x").unwrap_err().to_string(),
            "duration \"10x\": expected a number followed by ms, s, m, h, d, w or y (e.g. \"30s\")"
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("64k"), Ok(64 * 1024));
        assert_eq!(parse_size("10M"), Ok(10 << 20));
        assert_eq!(parse_size("10m"), Ok(10 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("2MiB"), Ok(2 << 20));
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(
            parse_size("ten").unwrap_err().to_string(),
            "size \"ten\": expected a number optionally followed by k, M or G (e.g. \"10M\")"
        );
        assert!(parse_size("1T").is_err());
    }

    #[test]
    fn rates() {
        let r = parse_rate("5r/m").unwrap();
        assert_eq!(r.milli_per_sec(), 83);
        assert_eq!(r.to_string(), "5r/m");
        assert_eq!(parse_rate("10r/s").unwrap().milli_per_sec(), 10_000);
        assert_eq!(
            parse_rate("10/s").unwrap_err().to_string(),
            "rate \"10/s\": expected \"<N>r/s\" or \"<N>r/m\""
        );
        assert_eq!(
            parse_rate("0r/s").unwrap_err().to_string(),
            "rate \"0r/s\": must be at least 1 request"
        );
        assert!(parse_rate("r/s").is_err());
        assert!(parse_rate("1r/h").is_err());
    }

    #[test]
    fn interpolation() {
        let env = |k: &str| (k == "HOME_DIR").then(|| "/srv".to_string());
        assert_eq!(interpolate("${HOME_DIR}/x", &env), Ok("/srv/x".into()));
        assert_eq!(interpolate("a${NOPE:-b}c", &env), Ok("abc".into()));
        assert_eq!(interpolate("${NOPE:-}", &env), Ok("".into()));
        assert_eq!(interpolate("plain $x", &env), Ok("plain $x".into()));
        assert_eq!(
            interpolate("${NOPE}", &env).unwrap_err().to_string(),
            "environment variable `NOPE` is not set (write ${NOPE:-default} to give a default)"
        );
        assert_eq!(
            interpolate("${OPEN", &env).unwrap_err().to_string(),
            "unterminated `${` in \"${OPEN\""
        );
        assert!(interpolate("${1X}", &env).is_err());
    }
}
