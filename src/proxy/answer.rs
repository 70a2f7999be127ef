//! Writing rampart's own answers: every configured, security and CORS
//! header, the compression decision, and what happens to a request body
//! nobody reads.

use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::protocols::http::ServerSession as HttpSession;
use pingora::proxy::Session;

use super::admission::Answer;
use super::ctx::RequestCtx;
use super::static_answer;
use crate::compression;
use crate::headers;
use crate::respond;
use crate::runtime::Runtime;
use crate::sanitize;

/// Writes an answer the admission phases decided on.
pub async fn write(session: &mut Session, ctx: &mut RequestCtx, answer: Answer) -> Result<()> {
    match answer {
        Answer::Status { status, headers } => status_with(session, ctx, status, &headers).await,
        Answer::Body {
            status,
            content_type,
            body,
            headers,
        } => with_body(session, ctx, status, &content_type, body, &headers).await,
        Answer::Static => static_answer::serve(session, ctx).await,
        Answer::Found(target) => static_answer::serve_found(session, ctx, *target).await,
    }
}

/// A short status answer (text, or JSON when the client prefers it) with
/// extra headers (`Location`, `Retry-After`, `Allow`, `Content-Range`).
pub async fn status_with(
    session: &mut Session,
    ctx: &mut RequestCtx,
    status: u16,
    extra: &[(HeaderName, HeaderValue)],
) -> Result<()> {
    let (body, ct) = match ctx.server().error_pages.body(status) {
        // The server's own page for this error (`error_pages`).
        Some(page) => (page.clone(), respond::HTML),
        None => {
            let json = respond::prefers_json(session.req_header().headers.get(header::ACCEPT));
            respond::error_body(status, ctx.client.request_id.as_str(), json)
        }
    };
    let ct = HeaderValue::from_static(ct);
    with_body(session, ctx, status, &ct, body, extra).await
}

/// An answer with a body of its own.
pub async fn with_body(
    session: &mut Session,
    ctx: &mut RequestCtx,
    status: u16,
    content_type: &HeaderValue,
    body: Bytes,
    extra: &[(HeaderName, HeaderValue)],
) -> Result<()> {
    drain_small_body(session, ctx);
    let mut resp = respond::head(status, content_type, body.len())?;
    // Appended: an auth service's refusal may set several cookies.
    for (n, v) in extra {
        resp.append_header(n.clone(), v.clone())?;
    }
    finish_head(session, ctx, &mut resp);
    ctx.ending.local_status = Some(status);
    respond::write(session, resp, body).await
}

/// Everything a response head gets before it goes out, proxied or not:
/// configured, security and CORS headers, and the compression decision.
pub fn finish_head(session: &mut Session, ctx: &RequestCtx, resp: &mut ResponseHeader) {
    let live = &ctx.live;
    let (server, route) = ctx.server_route(live);
    headers::client_response(
        resp,
        server,
        route,
        &ctx.client.request_id,
        ctx.client.tls,
        live.cfg.global.server_header,
    );
    if let Some(p) = ctx.cors.policy.map(|i| &live.cfg.cors[i]) {
        if !ctx.cors.preflight {
            crate::cors::apply(p, ctx.cors.origin.as_ref(), resp);
        } else if crate::cors::varies(p) {
            let _ = resp.append_header(header::VARY, "Origin");
        }
    }
    compression::decide(session, server.compression.as_ref(), resp);
}

/// Request body bytes rampart reads and discards after answering a request
/// itself, to keep its connection (nginx discards too).
const DRAIN_LIMIT: u64 = 64 * 1024;

/// rampart answers without reading the request body (404, 403, 429, a
/// `respond` route, a file). pingora then closes the connection rather than
/// read the body. A body announced by `Content-Length` as at most
/// [`DRAIN_LIMIT`] is read and discarded instead (within
/// `client_body_timeout` in all), so that the client keeps its connection;
/// a larger one, or one of unknown length (chunked), still closes it.
pub fn drain_small_body(session: &mut Session, ctx: &RequestCtx) {
    // A client waiting for `100 Continue` sends no body: draining would
    // take its next request for the body.
    let head = &ctx.head;
    if head.expect || head.has_transfer_encoding() {
        return;
    }
    if head
        .content_length
        .is_some_and(|n| n > 0 && n <= DRAIN_LIMIT)
    {
        let total: Duration = ctx.server().client_body_timeout;
        session.set_close_on_response_before_downstream_finish(false);
        session.set_total_drain_timeout(Some(total));
    }
}

/// The answer to a request pingora refused before rampart saw it (a head
/// it could not parse, or one it rejected): the headers of the address's
/// first server and the client's request id if there was one.
pub fn early_error(
    state: &Runtime,
    status: u16,
    session: &HttpSession,
) -> Option<(ResponseHeader, Bytes)> {
    let live = state.current();
    let local = session.server_addr().and_then(|a| a.as_inet()).copied();
    let tls = session.digest().is_some_and(|d| d.ssl_digest.is_some());
    // What of the head was parsed, if anything: a 400 may have none (a
    // head pingora could not parse) or a whole one (one it refused).
    let header = |name: &http::HeaderName| match session {
        HttpSession::H1(h1) => h1.get_header(name),
        _ => None,
    };
    let id = headers::RequestId::from_request(header(headers::X_REQUEST_ID.name()));
    // pingora refuses a final transfer coding other than chunked with a
    // 400; rampart decodes no coding but chunked, and says so (501).
    let status = match header(&header::TRANSFER_ENCODING) {
        Some(te) if status == 400 && !sanitize::coding_is_chunked(te.as_bytes()) => 501,
        _ => status,
    };
    headers::early_error(
        status,
        live.cfg.default_server(local),
        &id,
        tls,
        live.cfg.global.server_header,
    )
}
