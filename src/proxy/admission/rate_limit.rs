//! The route's rate limits (nginx `limit_req`): a request within a zone's
//! burst is held so that requests leave at the zone's rate (unless
//! `nodelay`); one beyond it is refused with the zone's status and a
//! `Retry-After`. With several zones each must accept, and a request
//! refused by one is counted in none.

use std::time::{Duration, Instant};

use http::header::{self, HeaderValue};
use pingora::proxy::Session;

use super::{Answer, Verdict};
use crate::config::snapshot::{RateLimit, ZoneKey};
use crate::proxy::ctx::RequestCtx;
use crate::ratelimit::{Key, Verdict as Bucket};
use crate::routing;
use crate::runtime::LiveConfig;

pub fn check(session: &mut Session, ctx: &mut RequestCtx, live: &LiveConfig) -> Verdict {
    let (_, Some(route)) = ctx.server_route(live) else {
        return Verdict::Continue;
    };
    if route.rate_limits.is_empty() {
        return Verdict::Continue;
    }
    match decide(session, ctx, live, &route.rate_limits) {
        Ok(wait) if wait.is_zero() => Verdict::Continue,
        Ok(wait) => Verdict::Delay(wait),
        Err((status, retry_after)) => Verdict::Answer(Answer::with_header(
            status,
            header::RETRY_AFTER,
            HeaderValue::from(retry_after),
        )),
    }
}

/// `Ok(delay)` to serve after `delay`, `Err((status, retry_after_seconds))`
/// to refuse.
fn decide(
    session: &Session,
    ctx: &RequestCtx,
    live: &LiveConfig,
    limits: &[RateLimit],
) -> Result<Duration, (u16, u64)> {
    let now = Instant::now();
    let key_of = |rl: &RateLimit| {
        key(session, ctx, live, rl).map(|k| (k, live.zones[rl.zone].buckets.now_ms(now)))
    };
    let reject = |rl: &RateLimit, retry_after_ms: u64| {
        live.zones[rl.zone].rejected.inc();
        Err((rl.status, retry_after_ms.div_ceil(1000).max(1)))
    };
    let verdict = |v: Bucket, rl: &RateLimit| match v {
        Bucket::Accept { delay_ms, .. } => Ok(delay_ms),
        Bucket::Reject { retry_after_ms } => reject(rl, retry_after_ms),
    };
    // The common case, one zone: decide and store in one step.
    if let [rl] = limits {
        let Some((key, at)) = key_of(rl) else {
            return Ok(Duration::ZERO);
        };
        return verdict(live.zones[rl.zone].buckets.check(key, at, &rl.limit), rl)
            .map(Duration::from_millis);
    }
    let checks: Vec<(&RateLimit, Key, u64)> = limits
        .iter()
        .filter_map(|rl| key_of(rl).map(|(k, at)| (rl, k, at)))
        .collect();
    // Refused by any zone: counted in none (nginx).
    for (rl, key, at) in &checks {
        verdict(live.zones[rl.zone].buckets.peek(key, *at, &rl.limit), rl)?;
    }
    let mut wait = 0;
    for (rl, key, at) in checks {
        wait = wait.max(verdict(
            live.zones[rl.zone].buckets.check(key, at, &rl.limit),
            rl,
        )?);
    }
    Ok(Duration::from_millis(wait))
}

/// The key a request has in a zone (`None`: the zone does not apply).
fn key(session: &Session, ctx: &RequestCtx, live: &LiveConfig, rl: &RateLimit) -> Option<Key> {
    let zone = &live.cfg.zones[rl.zone];
    let hasher = &live.zones[rl.zone].buckets.hasher;
    request_key(session, ctx, &zone.key, zone.ipv6_prefix, hasher)
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
    match key {
        ZoneKey::ClientIp => ctx.client.ip.map(|ip| Key::ip_prefix(ip, ipv6_prefix)),
        // Requests without a host share one key (the empty host): not
        // naming a host is no way around the limit.
        ZoneKey::Host => Some(Key::bytes(
            routing::strip_port(ctx.head.host().unwrap_or("")).as_bytes(),
            hasher,
        )),
        // Requests without the header are not limited by this zone.
        ZoneKey::Header(name) => session
            .req_header()
            .headers
            .get(name)
            .map(|v| Key::bytes(v.as_bytes(), hasher)),
    }
}
