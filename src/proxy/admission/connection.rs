//! The server's connection settings for this request, and who the client
//! is. Always lets the request go on.

use pingora::proxy::Session;

use super::Verdict;
use crate::client_ip;
use crate::headers;
use crate::proxy::ctx::RequestCtx;
use crate::runtime::LiveConfig;

pub fn settle(session: &mut Session, ctx: &mut RequestCtx, live: &LiveConfig) -> Verdict {
    let server = &live.cfg.servers[ctx.place.server];
    // The server sets how long an idle connection is kept, not whether: a
    // close the request asks for (HTTP/1.0 without `Connection:
    // keep-alive`, `close` in any `Connection` line) or pingora decided (a
    // request framed by both `Transfer-Encoding` and `Content-Length`, RFC
    // 9112 §6.3) stands, so no further request is read from the connection.
    if ctx.head.connection_close {
        session.set_keepalive(None);
    } else if session.get_keepalive().is_some() {
        session.set_keepalive(Some(server.keepalive_timeout.as_secs()));
    }
    session.set_read_timeout(Some(server.client_body_timeout));
    let peer = session
        .client_addr()
        .and_then(|a| a.as_inet())
        .map(|a| a.ip());
    ctx.client.ip = peer.map(|ip| {
        client_ip::resolve(
            ip,
            || {
                session
                    .req_header()
                    .headers
                    .get_all(headers::X_FORWARDED_FOR.name())
                    .iter()
                    .map(|v| v.as_bytes())
            },
            &live.cfg.global.trusted_proxies,
        )
    });
    ctx.body.limit = server.max_body_size;
    Verdict::Continue
}
