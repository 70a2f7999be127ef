//! ACME HTTP-01 (RFC 8555 section 8.3): `GET
//! /.well-known/acme-challenge/<token>` on a plain-HTTP listener, for a
//! token of an order in progress, gets the key authorization — before the
//! host checks, routing and `https_redirect`, so that a server that
//! redirects everything to HTTPS can still be validated.

use bytes::Bytes;
use http::header::HeaderValue;
use http::Method;
use pingora::proxy::Session;

use super::{Answer, Verdict};
use crate::proxy::ctx::RequestCtx;
use crate::runtime::LiveConfig;

pub fn answer(session: &mut Session, ctx: &mut RequestCtx, live: &LiveConfig) -> Verdict {
    if ctx.client.tls {
        return Verdict::Continue;
    }
    let req = session.req_header();
    let Some(token) = req.uri.path().strip_prefix(crate::acme::HTTP01_PREFIX) else {
        return Verdict::Continue;
    };
    if !matches!(req.method, Method::GET | Method::HEAD) {
        return Verdict::Continue;
    }
    match live.acme.http01(token) {
        Some(key_authorization) => Verdict::Answer(Answer::Body {
            status: 200,
            content_type: HeaderValue::from_static("application/octet-stream"),
            body: Bytes::from(key_authorization),
            headers: Vec::new(),
        }),
        None => Verdict::Continue,
    }
}
