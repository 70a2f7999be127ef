//! The small value syntaxes of the file: listen addresses, host
//! patterns, redirect templates, CORS origins.

use std::net::SocketAddr;

use crate::config::snapshot::{OriginPattern, Piece};

/// Parses a `listen` value: `IP:PORT`, `[IPv6]:PORT`, `*:PORT` or `PORT`.
pub fn parse_listen(s: &str) -> Option<SocketAddr> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Some(a);
    }
    let port = s.strip_prefix("*:").unwrap_or(s);
    port.parse::<u16>()
        .ok()
        .map(|p| SocketAddr::from(([0, 0, 0, 0], p)))
}

/// A name `hosts` accepts: a DNS name, or `*.` and one.
pub fn valid_host_pattern(h: &str) -> bool {
    let h = h.strip_prefix("*.").unwrap_or(h);
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Parses a redirect template's `{host}`, `{uri}`, `{path}`, `{query}`.
pub fn parse_template(s: &str) -> Result<Vec<Piece>, String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find('{') {
        if i > 0 {
            out.push(Piece::Lit(rest[..i].to_string()));
        }
        let after = &rest[i + 1..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unclosed `{{` in redirect target \"{s}\""))?;
        out.push(match &after[..end] {
            "host" => Piece::Host,
            "uri" => Piece::Uri,
            "path" => Piece::Path,
            "query" => Piece::Query,
            other => {
                return Err(format!(
                    "unknown placeholder `{{{other}}}` in redirect target: use {{host}}, {{uri}}, {{path}} or {{query}}"
                ))
            }
        });
        rest = &after[end + 1..];
    }
    if !rest.is_empty() {
        out.push(Piece::Lit(rest.to_string()));
    }
    Ok(out)
}

/// A CORS origin: `https://host[:port]`, or `https://*.suffix`.
pub(super) fn parse_origin(s: &str) -> Result<OriginPattern, String> {
    let (scheme, host) = s
        .split_once("://")
        .ok_or_else(|| format!("origin \"{s}\" must look like https://host[:port]"))?;
    if scheme.is_empty() || host.is_empty() || host.contains('/') {
        return Err(format!(
            "origin \"{s}\" must look like https://host[:port] (no path)"
        ));
    }
    match host.strip_prefix("*.") {
        Some(suffix) => {
            if suffix.contains('*') {
                return Err(format!(
                    "origin \"{s}\": only one leading `*.` label is allowed"
                ));
            }
            Ok(OriginPattern::Wildcard {
                scheme_and_prefix: format!("{}://", scheme.to_ascii_lowercase()),
                suffix: format!(".{}", suffix.to_ascii_lowercase()),
            })
        }
        None if host.contains('*') => Err(format!(
            "origin \"{s}\": a wildcard must be a whole leading label, as in https://*.example.com"
        )),
        None => Ok(OriginPattern::Exact(s.to_ascii_lowercase())),
    }
}
