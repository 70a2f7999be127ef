//! `[rate_limits.NAME]` and `[conn_limits.NAME]`: how fast, and how many at
//! once, per key.

use super::*;

#[derive(Debug)]
pub struct Zone {
    pub name: Spanned<String>,
    /// `"<N>r/s"` or `"<N>r/m"`.
    pub rate: Option<Rate>,
    /// `"client_ip"`, `"host"` or `"header:<Name>"`.
    pub key: Option<Spanned<String>>,
    /// Bound on tracked keys; least recently seen evicted first.
    pub max_keys: Option<u64>,
    /// IPv6 clients are keyed by this prefix (one /64 is one client).
    pub ipv6_prefix: Option<Spanned<u64>>,
    /// `"local"` (this process) or a `redis://` / `rediss://` URL whose
    /// buckets every instance sharing it uses.
    pub store: Option<Spanned<String>>,
    /// What a request gets when the store cannot decide in time:
    /// `"allow"`, `"deny"` or `"local"`.
    pub on_store_error: Option<Spanned<String>>,
    /// How long a request waits for the store's decision.
    pub store_timeout: Option<Spanned<Duration>>,
}

/// `[conn_limits.NAME]` (nginx `limit_conn_zone` + `limit_conn`).
#[derive(Debug)]
pub struct ConnLimit {
    pub name: Spanned<String>,
    /// As a rate-limit zone's.
    pub key: Option<Spanned<String>>,
    /// Requests (and open tunnels) in flight per key.
    pub max: Option<Spanned<u64>>,
    pub status: Option<Spanned<u64>>,
}

/// `[rate_limits.NAME]`.
pub(super) fn read_zone(r: &mut Reader<'_>, o: &mut Section<'_>, name: Spanned<String>) -> Zone {
    Zone {
        name,
        rate: match o.get(k::RATE) {
            Some(f) => r.rate(&f),
            None => {
                r.missing(o, k::RATE);
                None
            }
        },
        key: o.get(k::KEY).and_then(|f| r.string(&f)),
        max_keys: o.get(k::MAX_KEYS).and_then(|f| r.uint(&f, u32::MAX as u64)),
        ipv6_prefix: o.get(k::IPV6_PREFIX).and_then(|f| r.uint_at(&f, 128)),
        store: o.get(k::STORE).and_then(|f| r.string(&f)),
        on_store_error: o.get(k::ON_STORE_ERROR).and_then(|f| r.string(&f)),
        store_timeout: o.get(k::STORE_TIMEOUT).and_then(|f| r.duration_at(&f)),
    }
}

/// `[conn_limits.NAME]`.
pub(super) fn read_conn_limit(
    r: &mut Reader<'_>,
    o: &mut Section<'_>,
    name: Spanned<String>,
) -> ConnLimit {
    ConnLimit {
        name,
        key: o.get(k::KEY).and_then(|f| r.string(&f)),
        max: match o.get(k::MAX) {
            Some(f) => r.uint_at(&f, u32::MAX as u64),
            None => {
                r.missing(o, k::MAX);
                None
            }
        },
        status: o.get(k::STATUS).and_then(|f| r.uint_at(&f, 999)),
    }
}
