//! A proxied request on its way to the upstream and back: which server
//! (again on each retry), what the upstream's copy of the request carries,
//! the body limit, and the upstream's response head.

use std::net::IpAddr;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::*;
use pingora::proxy::Session;
use pingora::upstreams::peer::HttpPeer;
use pingora::ErrorType;

use super::ctx::RequestCtx;
use super::retry;
use crate::client_ip;
use crate::headers;
use crate::sanitize;
use crate::upstream::{peer, InFlight, Outcome};

/// The server for the next attempt.
pub fn next_peer(session: &Session, ctx: &mut RequestCtx) -> Result<Box<HttpPeer>> {
    // A retry releases the previous attempt's slot first.
    ctx.attempts.in_flight = None;
    let live = ctx.live.clone();
    let Some(u) = ctx.attempts.upstream else {
        return Error::e_explain(ErrorType::InternalError, "no upstream for this route");
    };
    let (up, pool) = (&live.cfg.upstreams[u], &live.pools[u]);
    let Some(i) = pool.pick(up, &ctx.attempts.tried) else {
        // Every server was tried (or none resolves): report the last failure.
        let code = ctx.attempts.last_failure.unwrap_or(502);
        return Error::e_explain(
            ErrorType::HTTPStatus(code),
            "no upstream server left to try",
        );
    };
    // Connections beyond `keepalive` concurrent ones are closed after use,
    // so at most `keepalive` idle connections per pool remain. An upgraded
    // connection is never reusable for HTTP afterwards.
    let keep_idle = pool.in_flight() < up.keepalive as i64 && !session.is_upgrade_req();
    let a = &mut ctx.attempts;
    a.tried.insert(i);
    a.count += 1;
    a.current = Some(i);
    a.in_flight = Some(InFlight::acquire(&pool.backends[i]));
    let Some(socket) = &pool.sockets[i] else {
        return Error::e_explain(ErrorType::InternalError, "unresolved server picked");
    };
    let (_, route) = ctx.server_route(&live);
    let timeouts = route.and_then(|r| r.timeouts).unwrap_or(up.timeouts);
    peer::build(up, &up.servers[i], socket, &timeouts, keep_idle).map(Box::new)
}

/// The upstream's copy of the request head: what must not reach it
/// removed, the forwarding headers and the route's request headers set.
pub fn request_head(session: &Session, req: &mut RequestHeader, ctx: &RequestCtx) -> Result<()> {
    let live = &ctx.live;
    let (server, route) = ctx.server_route(live);
    let peer_ip = session
        .client_addr()
        .and_then(|a| a.as_inet())
        .map(|a| a.ip());
    let trusted = &live.cfg.global.trusted_proxies;
    let peer_trusted =
        !trusted.is_empty() && peer_ip.is_some_and(|ip| client_ip::is_trusted(ip, trusted));
    sanitize::upstream_headers(req, peer_trusted, server.underscores_in_headers);
    let f = headers::Forwarded {
        client_ip: ctx
            .client
            .ip
            .or(peer_ip)
            .unwrap_or(IpAddr::from([0, 0, 0, 0])),
        peer_ip,
        tls: ctx.client.tls,
        host: ctx
            .head
            .host
            .clone()
            .or_else(|| host_for_hostless(session, ctx)),
        request_id: &ctx.client.request_id,
    };
    // The client's own Accept-Encoding, not the one narrowed for the
    // compression module.
    if let Some(ae) = &ctx.accept_encoding {
        req.insert_header(header::ACCEPT_ENCODING, ae.clone())?;
    }
    headers::upstream_request(
        req,
        &f,
        route.map(|r| r.request_headers.as_slice()).unwrap_or(&[]),
    );
    Ok(())
}

/// The `Host` for the upstream of a request that has none (HTTP/1.0): the
/// server's first name, else the address the client connected to.
fn host_for_hostless(session: &Session, ctx: &RequestCtx) -> Option<HeaderValue> {
    if let Some(h) = &ctx.server().host_for_hostless {
        return Some(h.clone());
    }
    let local = session.server_addr()?.as_inet()?;
    HeaderValue::from_str(&local.to_string()).ok()
}

/// Counts request body bytes against the server's `max_body_size`.
pub fn request_body(
    session: &Session,
    body: &mut Option<Bytes>,
    eos: bool,
    ctx: &mut RequestCtx,
) -> Result<()> {
    let Some(b) = body.as_ref() else {
        return Ok(());
    };
    ctx.body.seen += b.len() as u64;
    // After a 101 these are tunnel bytes (WebSocket frames), not a body.
    if ctx.body.limit.is_some_and(|l| ctx.body.seen > l) && !session.was_upgraded() {
        return Error::e_explain(
            ErrorType::HTTPStatus(413),
            "request body over max_body_size",
        );
    }
    // pingora #935: an empty final chunk from an h2 client would be
    // written upstream as a second chunked terminator.
    if eos && b.is_empty() {
        *body = None;
    }
    Ok(())
}

/// The upstream's response head: a 502/503/504 may become a retry on
/// another server; anything else is the answer, hop-by-hop headers off.
pub fn response_head(
    session: &mut Session,
    resp: &mut ResponseHeader,
    ctx: &mut RequestCtx,
) -> Result<()> {
    let status = resp.status.as_u16();
    record_attempt(ctx, Outcome::Ok);
    let safe = retry::safe_to_resend(
        session.req_header().method.is_idempotent(),
        ctx.body.seen,
        false,
    );
    if retry::retry_status(
        status,
        safe,
        ctx.attempts.count,
        tries(ctx),
        has_untried(ctx),
    ) {
        ctx.attempts.retry_5xx = Some(status);
        ctx.attempts.last_failure = Some(status);
        let mut e = Error::explain(
            ErrorType::HTTPStatus(status),
            "upstream answered 5xx; trying the next server",
        );
        e.set_retry(true);
        return Err(e);
    }
    ctx.attempts.upstream_status = Some(status);
    // An event stream is relayed as it comes, never read ahead
    // (`admission::buffering`).
    if session.response_read_ahead() > 0 && headers::is_event_stream(&resp.headers) {
        session.set_response_read_ahead(0);
    }
    headers::strip_response_hop_by_hop(resp);
    Ok(())
}

/// Counts the current attempt's outcome on its server (passive health).
pub fn record_attempt(ctx: &RequestCtx, outcome: Outcome) {
    if let (Some(f), Some(u)) = (&ctx.attempts.in_flight, ctx.attempts.upstream) {
        f.backend().record(outcome, &ctx.live.cfg.upstreams[u]);
    }
}

/// The upstream's `tries` (1 for a request without one).
pub fn tries(ctx: &RequestCtx) -> usize {
    ctx.attempts
        .upstream
        .map_or(1, |u| ctx.live.cfg.upstreams[u].tries)
}

fn has_untried(ctx: &RequestCtx) -> bool {
    let Some(u) = ctx.attempts.upstream else {
        return false;
    };
    let pool = &ctx.live.pools[u];
    (0..pool.sockets.len()).any(|i| !ctx.attempts.tried.contains(i) && pool.sockets[i].is_some())
}
