//! `allow` / `deny`: a client address the route's access list refuses
//! gets 403 ([`crate::access_list`]), before authentication, connection
//! and rate limits.

use pingora::proxy::Session;

use super::{Answer, Verdict};
use crate::proxy::ctx::RequestCtx;
use crate::runtime::LiveConfig;

pub fn check(_session: &mut Session, ctx: &mut RequestCtx, live: &LiveConfig) -> Verdict {
    let Some(route) = ctx.route(live) else {
        return Verdict::Continue;
    };
    if route.access.is_open() {
        return Verdict::Continue;
    }
    // No address (a Unix socket peer): nothing to admit by.
    if ctx.client.ip.is_some_and(|ip| route.access.admits(ip)) {
        return Verdict::Continue;
    }
    live.metrics(ctx.place.server, ctx.place.route)
        .auth_denied(crate::metrics::DenyReason::Ip);
    Verdict::Answer(Answer::status(403))
}
