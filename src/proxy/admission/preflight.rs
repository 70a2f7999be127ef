//! A CORS preflight (`OPTIONS` with `Origin` and
//! `Access-Control-Request-Method`) is answered here, never proxied:
//! 204 with the policy's headers, or 403.

use bytes::Bytes;
use http::header::{self, HeaderValue};
use pingora::proxy::Session;

use super::{Answer, Verdict};
use crate::cors::{self, Preflight};
use crate::proxy::ctx::RequestCtx;
use crate::runtime::LiveConfig;

pub fn check(session: &mut Session, ctx: &mut RequestCtx, live: &LiveConfig) -> Verdict {
    let req = session.req_header();
    // The cheap tests first: this runs on every request.
    if req.method != http::Method::OPTIONS {
        return Verdict::Continue;
    }
    let (Some(policy), Some(origin)) = (ctx.cors.policy, req.headers.get(header::ORIGIN)) else {
        return Verdict::Continue;
    };
    let Some(method) = req
        .headers
        .get(header::ACCESS_CONTROL_REQUEST_METHOD)
        .and_then(|m| m.to_str().ok())
    else {
        return Verdict::Continue;
    };
    let requested = req
        .headers
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .and_then(|h| h.to_str().ok());
    ctx.cors.preflight = true;
    Verdict::Answer(
        match cors::preflight(&live.cfg.cors[policy], origin, method, requested) {
            Preflight::Allowed(headers) => Answer::Body {
                status: 204,
                content_type: HeaderValue::from_static("text/plain"),
                body: Bytes::new(),
                headers,
            },
            Preflight::Forbidden => Answer::status(403),
        },
    )
}
