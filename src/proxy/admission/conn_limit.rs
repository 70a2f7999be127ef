//! `conn_limit` (nginx `limit_conn`): a request over its key's `max`
//! requests in flight gets the limit's status (503); an admitted one holds
//! a slot until it ends (a WebSocket tunnel: until it closes).

use pingora::proxy::Session;

use super::rate_limit::request_key;
use super::{Answer, Verdict};
use crate::proxy::ctx::RequestCtx;
use crate::runtime::LiveConfig;

/// IPv6 clients are counted per /64, as rate-limit zones count them by
/// default: one host's addresses are one client.
const IPV6_PREFIX: u8 = 64;

pub fn check(session: &mut Session, ctx: &mut RequestCtx, live: &LiveConfig) -> Verdict {
    let Some(id) = ctx.server_route(live).1.and_then(|r| r.conn_limit) else {
        return Verdict::Continue;
    };
    let (limit, counts) = (&live.cfg.conn_limits[id], &live.conn_limits[id]);
    let Some(key) = request_key(
        session,
        ctx,
        &limit.key,
        IPV6_PREFIX,
        &counts.counters.hasher,
    ) else {
        return Verdict::Continue;
    };
    match counts.counters.try_acquire(key, limit.max) {
        Some(slot) => {
            ctx.conn_slot = Some(slot);
            Verdict::Continue
        }
        None => {
            counts.limited.inc();
            Verdict::Answer(Answer::status(limit.status))
        }
    }
}
