//! A server with `https_redirect` answers every request with a redirect to
//! the same host and target over HTTPS (nginx's `return 301
//! https://$host$request_uri`).

use http::header::{self, HeaderValue};
use pingora::proxy::Session;

use super::{Answer, Verdict};
use crate::proxy::ctx::RequestCtx;
use crate::routing;
use crate::runtime::LiveConfig;

pub fn check(session: &mut Session, ctx: &mut RequestCtx, live: &LiveConfig) -> Verdict {
    let Some(redirect) = live.cfg.servers[ctx.place.server].https_redirect else {
        return Verdict::Continue;
    };
    let host = ctx.head.host().map(routing::strip_port).unwrap_or("");
    let mut to = format!("https://{host}");
    if let Some(p) = redirect.port {
        to.push_str(&format!(":{p}"));
    }
    let target = session.req_header().uri.path_and_query();
    to.push_str(target.map(|p| p.as_str()).unwrap_or("/"));
    let location = HeaderValue::from_str(&to).unwrap_or(HeaderValue::from_static("/"));
    Verdict::Answer(Answer::with_header(
        redirect.status,
        header::LOCATION,
        location,
    ))
}
