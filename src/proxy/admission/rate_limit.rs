//! The route's rate limits (nginx `limit_req`): a request within a zone's
//! burst is held so that requests leave at the zone's rate (unless
//! `nodelay`); one beyond it is refused with the zone's status and a
//! `Retry-After`. With several zones each must accept, and a request
//! refused by one is counted in none.
//!
//! A zone with `store = "redis://..."` is decided in Redis (see
//! `ratelimit::shared`); only requests of routes with such a zone wait for
//! anything. When the store cannot decide within `store_timeout`, the
//! zone's `on_store_error` does: accept, refuse, or this instance's own
//! bucket.

use std::time::{Duration, Instant};

use http::header::{self, HeaderValue};
use pingora::proxy::Session;

use super::{Answer, Verdict, Waiting};
use crate::config::snapshot::{OnStoreError, RateLimit, ZoneKey};
use crate::proxy::ctx::RequestCtx;
use crate::ratelimit::shared::{Check, Shared};
use crate::ratelimit::{Key, Verdict as Bucket};
use crate::routing;
use crate::runtime::LiveConfig;

/// `Ok(delay)` to serve after `delay`; `Err((status, retry_after_seconds))`
/// to refuse.
type Decision = Result<Duration, (u16, u64)>;

pub fn check<'a>(
    session: &'a mut Session,
    ctx: &'a mut RequestCtx,
    live: &'a LiveConfig,
) -> Option<Waiting<'a>> {
    let route = ctx.route(live)?;
    let limits = &route.rate_limits;
    if limits.is_empty() {
        return None;
    }
    if !limits.iter().any(|rl| live.zones[rl.zone].shared.is_some()) {
        return match decide_local(session, ctx, live, limits) {
            Ok(wait) if wait.is_zero() => None,
            decision => Some(Box::pin(std::future::ready(verdict(decision)))),
        };
    }
    let keyed: Vec<Keyed<'a>> = limits
        .iter()
        .filter_map(|rl| {
            let material = key_material(session, ctx, live, rl)?;
            let shared = live.zones[rl.zone]
                .shared
                .as_ref()
                .map(|z| material.redis_key(&z.key_prefix));
            Some(Keyed {
                rl,
                key: material.local(live, rl),
                shared,
            })
        })
        .collect();
    if keyed.is_empty() {
        return None;
    }
    Some(Box::pin(async move {
        verdict(decide_shared(live, keyed).await)
    }))
}

fn verdict(decision: Decision) -> Verdict {
    match decision {
        Ok(wait) if wait.is_zero() => Verdict::Continue,
        Ok(wait) => Verdict::Delay(wait),
        Err((status, retry_after)) => Verdict::Answer(Answer::with_header(
            status,
            header::RETRY_AFTER,
            HeaderValue::from(retry_after),
        )),
    }
}

/// A refusal by `rl`'s zone, counted there.
fn refuse(live: &LiveConfig, rl: &RateLimit, retry_after_ms: u64) -> Decision {
    live.zones[rl.zone].rejected.inc();
    Err((rl.status, retry_after_ms.div_ceil(1000).max(1)))
}

/// Every zone of the route in this process.
fn decide_local(
    session: &Session,
    ctx: &RequestCtx,
    live: &LiveConfig,
    limits: &[RateLimit],
) -> Decision {
    // The common case, one zone: decide and store in one step.
    if let [rl] = limits {
        let Some(m) = key_material(session, ctx, live, rl) else {
            return Ok(Duration::ZERO);
        };
        let zone = &live.zones[rl.zone].buckets;
        let at = zone.now_ms(Instant::now());
        return match zone.check(m.local(live, rl), at, &rl.limit) {
            Bucket::Accept { delay_ms, .. } => Ok(Duration::from_millis(delay_ms)),
            Bucket::Reject { retry_after_ms } => refuse(live, rl, retry_after_ms),
        };
    }
    let keyed: Vec<(&RateLimit, Key)> = limits
        .iter()
        .filter_map(|rl| Some((rl, key_material(session, ctx, live, rl)?.local(live, rl))))
        .collect();
    decide_in_process(live, &keyed)
}

/// Several zones in this process: refused by any, counted in none (nginx).
fn decide_in_process(live: &LiveConfig, keyed: &[(&RateLimit, Key)]) -> Decision {
    let now = Instant::now();
    let at = |rl: &RateLimit| live.zones[rl.zone].buckets.now_ms(now);
    for (rl, key) in keyed {
        if let Bucket::Reject { retry_after_ms } =
            live.zones[rl.zone].buckets.peek(key, at(rl), &rl.limit)
        {
            return refuse(live, rl, retry_after_ms);
        }
    }
    let mut wait = 0;
    for (rl, key) in keyed {
        match live.zones[rl.zone].buckets.check(*key, at(rl), &rl.limit) {
            Bucket::Accept { delay_ms, .. } => wait = wait.max(delay_ms),
            Bucket::Reject { retry_after_ms } => return refuse(live, rl, retry_after_ms),
        }
    }
    Ok(Duration::from_millis(wait))
}

/// A zone of the route with the request's key in it.
struct Keyed<'a> {
    rl: &'a RateLimit,
    /// This process's bucket key (for `on_store_error = "local"`).
    key: Key,
    /// The Redis key.
    shared: Option<String>,
}

/// A route whose zones are in one Redis (the configuration allows no mix
/// of stores, or of local and shared zones, on a route): one round trip
/// decides them all, or, when the store cannot, each zone's
/// `on_store_error`.
async fn decide_shared(live: &LiveConfig, group: Vec<Keyed<'_>>) -> Decision {
    match decide_in_store(live, &group).await {
        StoreDecision::Decided(decided) => decided.map(Duration::from_millis),
        StoreDecision::Failed => {
            let shared = |k: &Keyed<'_>| live.zones[k.rl.zone].shared.as_ref();
            // Every zone counts the error, whatever the others decide.
            for z in group.iter().filter_map(shared) {
                z.errors.inc();
            }
            let deny = group
                .iter()
                .find(|k| shared(k).is_some_and(|z| z.on_error == OnStoreError::Deny));
            if let Some(k) = deny {
                return refuse(live, k.rl, 1000);
            }
            let local: Vec<(&RateLimit, Key)> = group
                .iter()
                .filter(|k| shared(k).is_none_or(|z| z.on_error == OnStoreError::Local))
                .map(|k| (k.rl, k.key))
                .collect();
            decide_in_process(live, &local)
        }
    }
}

enum StoreDecision {
    /// The store answered: the wait in ms, or the refusal.
    Decided(Result<u64, (u16, u64)>),
    /// No answer in time: `on_store_error` decides.
    Failed,
}

/// The zones in one call, within the shortest of their timeouts.
async fn decide_in_store(live: &LiveConfig, group: &[Keyed<'_>]) -> StoreDecision {
    let zones: Vec<_> = group
        .iter()
        .filter_map(|k| live.zones[k.rl.zone].shared.as_ref())
        .collect();
    let (Some(first), true) = (zones.first(), zones.len() == group.len()) else {
        return StoreDecision::Failed;
    };
    let timeout = zones
        .iter()
        .map(|z| z.timeout)
        .min()
        .unwrap_or(first.timeout);
    let checks: Vec<Check<'_>> = group
        .iter()
        .map(|k| Check {
            key: k.shared.as_deref().unwrap_or_default(),
            rate: k.rl.limit.rate,
            burst: k.rl.limit.burst,
        })
        .collect();
    let started = Instant::now();
    let answer = first.store.decide(&checks, timeout).await;
    let took = started.elapsed().as_secs_f64();
    match answer {
        Ok(Shared::Accept(excess)) => {
            let mut wait = 0;
            for ((k, z), e) in group.iter().zip(&zones).zip(excess) {
                z.duration.observe(took);
                wait = wait.max(k.rl.limit.delay_ms(e));
            }
            StoreDecision::Decided(Ok(wait))
        }
        Ok(Shared::Reject { zone, excess }) => {
            zones.iter().for_each(|z| z.duration.observe(took));
            let rl = group[zone].rl;
            StoreDecision::Decided(refuse(live, rl, rl.limit.retry_after_ms(excess)).map(|_| 0))
        }
        Err(e) => {
            tracing::debug!("rate-limit store: {e}");
            StoreDecision::Failed
        }
    }
}

/// What a request is keyed by in a zone, before it becomes a bucket key.
enum Material<'r> {
    Ip(u128),
    /// Compared without case (hosts, header values).
    Bytes(&'r [u8]),
}

impl Material<'_> {
    /// This process's key (hashed with the zone's own hasher).
    fn local(&self, live: &LiveConfig, rl: &RateLimit) -> Key {
        match self {
            Material::Ip(ip) => Key::Ip(*ip),
            Material::Bytes(b) => Key::bytes(b, &live.zones[rl.zone].buckets.hasher),
        }
    }

    /// The same key for every instance: an address in hex, or the SHA-256
    /// of the lowercased bytes (no API key or host in clear in Redis).
    fn redis_key(&self, prefix: &str) -> String {
        use std::fmt::Write;
        let mut key = String::with_capacity(prefix.len() + 32);
        key.push_str(prefix);
        match self {
            Material::Ip(ip) => {
                let _ = write!(key, "{ip:032x}");
            }
            Material::Bytes(b) => {
                let lower = b.to_ascii_lowercase();
                key.push_str(&crate::short_hash::sha256_hex(&lower, 16));
            }
        }
        key
    }
}

/// The key material a request has in a zone (`None`: the zone does not
/// apply).
fn key_material<'r>(
    session: &'r Session,
    ctx: &'r RequestCtx,
    live: &LiveConfig,
    rl: &RateLimit,
) -> Option<Material<'r>> {
    let zone = &live.cfg.zones[rl.zone];
    material(session, ctx, &zone.key, zone.ipv6_prefix)
}

fn material<'r>(
    session: &'r Session,
    ctx: &'r RequestCtx,
    key: &ZoneKey,
    ipv6_prefix: u8,
) -> Option<Material<'r>> {
    match key {
        ZoneKey::ClientIp => ctx
            .client
            .ip
            .map(|ip| Material::Ip(Key::ip_bits(ip, ipv6_prefix))),
        // Requests without a host share one key (the empty host): not
        // naming a host is no way around the limit.
        ZoneKey::Host => Some(Material::Bytes(
            routing::strip_port(ctx.head.host().unwrap_or("")).as_bytes(),
        )),
        // Requests without the header are not limited by this zone.
        ZoneKey::Header(name) => session
            .req_header()
            .headers
            .get(name)
            .map(|v| Material::Bytes(v.as_bytes())),
    }
}

/// The key a request has for a zone or a concurrency limit: its client
/// address (IPv6 by its first `ipv6_prefix` bits), its host, or a
/// header's value (`None` without the header: not limited).
pub(super) fn request_key(
    session: &Session,
    ctx: &RequestCtx,
    key: &ZoneKey,
    ipv6_prefix: u8,
    hasher: &std::collections::hash_map::RandomState,
) -> Option<Key> {
    Some(match material(session, ctx, key, ipv6_prefix)? {
        Material::Ip(ip) => Key::Ip(ip),
        Material::Bytes(b) => Key::bytes(b, hasher),
    })
}
