//! Browsers do not apply CORS to WebSockets: a page from any site can open
//! one with the user's cookies (cross-site WebSocket hijacking). Where a
//! CORS policy names the origins, an upgrade from a browser origin it does
//! not list, other than the site's own, is refused (403); clients that
//! send no `Origin` are not browsers and pass.

use http::header;
use pingora::proxy::Session;

use super::{Answer, Verdict};
use crate::cors;
use crate::proxy::ctx::RequestCtx;
use crate::runtime::LiveConfig;

pub fn check(session: &mut Session, ctx: &mut RequestCtx, _live: &LiveConfig) -> Verdict {
    let foreign = ctx.cors.policy.is_some()
        && ctx.cors.origin.is_none()
        && session.is_upgrade_req()
        && session
            .req_header()
            .headers
            .get(header::ORIGIN)
            .is_some_and(|o| !cors::same_origin(o.as_bytes(), ctx.client.tls, ctx.head.host()));
    match foreign {
        true => Verdict::Answer(Answer::status(403)),
        false => Verdict::Continue,
    }
}
