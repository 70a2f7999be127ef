//! Request → server → route selection, and path normalisation.
//!
//! Selection follows nginx (without `^~`): an `exact` route equal to the
//! path wins; otherwise the first `regex` route in file order; otherwise the
//! longest `prefix`. Paths are matched after percent-decoding and
//! `.`/`..` resolution, so `/api/../admin` cannot dodge a route's limits.

use std::borrow::Cow;
use std::collections::HashMap;

use regex::Regex;

use crate::config::snapshot::{Route, ServerId};

/// How a route matches, kept for its default name and the summary.
#[derive(Debug, Clone)]
pub enum Matcher {
    Exact(String),
    Prefix(String),
    Regex(Regex),
}

impl Matcher {
    /// `exact:/healthz`, `prefix:/api/`, `regex:^/api/...` (the spec's default route names).
    pub fn default_name(&self) -> String {
        match self {
            Matcher::Exact(p) => format!("exact:{p}"),
            Matcher::Prefix(p) => format!("prefix:{p}"),
            Matcher::Regex(r) => format!("regex:{}", r.as_str()),
        }
    }
}

/// A route of one server: an index into its [`RouteTable`] (and into the
/// server's per-route metrics), never into another server's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RouteId(pub usize);

/// The routes of one server, indexed for selection.
#[derive(Debug)]
pub struct RouteTable<R = Route> {
    routes: Vec<R>,
    exact: Vec<(String, usize)>,
    regex: Vec<(Regex, usize)>,
    /// Longest first; equal lengths keep file order.
    prefix: Vec<(String, usize)>,
}

impl<R> RouteTable<R> {
    pub fn new(entries: Vec<(Matcher, R)>) -> Self {
        let mut t = RouteTable {
            routes: Vec::with_capacity(entries.len()),
            exact: Vec::new(),
            regex: Vec::new(),
            prefix: Vec::new(),
        };
        for (i, (m, r)) in entries.into_iter().enumerate() {
            match m {
                Matcher::Exact(p) => t.exact.push((p, i)),
                Matcher::Regex(re) => t.regex.push((re, i)),
                Matcher::Prefix(p) => t.prefix.push((p, i)),
            }
            t.routes.push(r);
        }
        t.prefix.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        t
    }

    /// The route for a normalised path, if any.
    pub fn select(&self, path: &str) -> Option<RouteId> {
        if let Some((_, i)) = self.exact.iter().find(|(p, _)| p == path) {
            return Some(RouteId(*i));
        }
        if let Some((_, i)) = self.regex.iter().find(|(re, _)| re.is_match(path)) {
            return Some(RouteId(*i));
        }
        self.prefix
            .iter()
            .find(|(p, _)| path.starts_with(p.as_str()))
            .map(|(_, i)| RouteId(*i))
    }

    pub fn get(&self, id: RouteId) -> &R {
        &self.routes[id.0]
    }

    pub fn routes(&self) -> &[R] {
        &self.routes
    }

    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

/// Servers sharing one listen address, indexed by Host.
#[derive(Debug, Default)]
pub struct HostTable {
    exact: HashMap<String, usize>,
    /// `(".example.org", server)` for `*.example.org`.
    wildcard: Vec<(String, usize)>,
    /// The first server of the address without `hosts` (matches any).
    any: Option<usize>,
    /// The first server of the address.
    default: usize,
}

impl HostTable {
    /// `servers`: (server index, its host patterns or `None` for any), in file order.
    pub fn new(servers: &[(usize, Option<Vec<String>>)]) -> Self {
        let mut t = HostTable {
            default: servers.first().map(|s| s.0).unwrap_or(0),
            ..Default::default()
        };
        for (idx, hosts) in servers {
            match hosts {
                None => {
                    t.any.get_or_insert(*idx);
                }
                Some(hosts) => {
                    for h in hosts {
                        let h = h.to_ascii_lowercase();
                        if let Some(suffix) = h.strip_prefix('*') {
                            t.wildcard.push((suffix.to_string(), *idx));
                        } else {
                            t.exact.entry(h).or_insert(*idx);
                        }
                    }
                }
            }
        }
        t
    }

    /// The address's first server: the one for a request whose host is
    /// unknown or unlisted.
    pub fn default_server(&self) -> ServerId {
        ServerId(self.default)
    }

    /// The server for a request's host (already without port, any case).
    pub fn select(&self, host: &str) -> ServerId {
        ServerId(self.select_index(host))
    }

    fn select_index(&self, host: &str) -> usize {
        let lower: Cow<str> = if host.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(host.to_ascii_lowercase())
        } else {
            Cow::Borrowed(host)
        };
        let host = lower.trim_end_matches('.');
        if let Some(i) = self.exact.get(host) {
            return *i;
        }
        for (suffix, i) in &self.wildcard {
            if let Some(label) = host.strip_suffix(suffix.as_str()) {
                if !label.is_empty() && !label.contains('.') {
                    return *i;
                }
            }
        }
        self.any.unwrap_or(self.default)
    }
}

/// The host part of a `Host` header or URI authority: port and IPv6
/// brackets removed.
pub fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(entries: &[(&str, &str)]) -> RouteTable<String> {
        RouteTable::new(
            entries
                .iter()
                .map(|(kind, p)| {
                    let m = match *kind {
                        "exact" => Matcher::Exact(p.to_string()),
                        "prefix" => Matcher::Prefix(p.to_string()),
                        _ => Matcher::Regex(Regex::new(p).unwrap()),
                    };
                    (m.clone(), m.default_name())
                })
                .collect(),
        )
    }

    #[test]
    fn route_precedence() {
        let t = table(&[
            ("prefix", "/"),
            ("prefix", "/api/"),
            ("prefix", "/api/optimize"),
            ("regex", "^/api/(auth|login)"),
            ("regex", "^/api/a"),
            ("exact", "/api/auth"),
        ]);
        let name = |p: &str| t.select(p).map(|i| t.get(i).clone());
        assert_eq!(name("/api/auth").as_deref(), Some("exact:/api/auth"));
        assert_eq!(
            name("/api/authx").as_deref(),
            Some("regex:^/api/(auth|login)")
        );
        assert_eq!(
            name("/api/abc").as_deref(),
            Some("regex:^/api/a"),
            "first regex in file order"
        );
        assert_eq!(
            name("/api/optimize/1").as_deref(),
            Some("prefix:/api/optimize")
        );
        assert_eq!(name("/api/x").as_deref(), Some("prefix:/api/"));
        assert_eq!(name("/x").as_deref(), Some("prefix:/"));
        let t = table(&[("prefix", "/api/")]);
        assert_eq!(t.select("/other"), None);
        assert_eq!(t.select("/api"), None);
    }

    #[test]
    fn hosts() {
        let t = HostTable::new(&[
            (0, Some(vec!["example.com".into()])),
            (
                1,
                Some(vec!["*.example.org".into(), "www.example.com".into()]),
            ),
            (2, None),
            (3, None),
        ]);
        assert_eq!(t.select("example.com").0, 0);
        assert_eq!(t.select("EXAMPLE.com.").0, 0);
        assert_eq!(t.select("www.example.com").0, 1);
        assert_eq!(t.select("a.example.org").0, 1);
        assert_eq!(t.select("x.a.example.org").0, 2, "wildcard is one label");
        assert_eq!(t.select("example.org").0, 2);
        assert_eq!(t.select("other").0, 2);
        let t = HostTable::new(&[(5, Some(vec!["a".into()])), (6, Some(vec!["b".into()]))]);
        assert_eq!(
            t.select("zzz").0,
            5,
            "first server of the address is the default"
        );
    }

    #[test]
    fn ports() {
        assert_eq!(strip_port("example.com:8080"), "example.com");
        assert_eq!(strip_port("example.com"), "example.com");
        assert_eq!(strip_port("[::1]:80"), "::1");
        assert_eq!(strip_port("[::1]"), "::1");
    }
}
