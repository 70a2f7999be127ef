//! `buffering` (nginx `proxy_buffering` + `proxy_request_buffering`): a
//! slow client must not hold an upstream worker. For an upstream route with
//! `buffering = true`:
//! - a request body announced by `Content-Length` and no larger than the
//!   server's `buffer_size` is read whole before the upstream is contacted
//!   (into pingora's retry buffer, from which the body is sent, and resent
//!   on a retry). Other bodies stream: chunked ones (their size is not
//!   known before they end), larger ones, and those of a client waiting for
//!   `100 Continue`;
//! - the response is read from the upstream up to `buffer_size` ahead of
//!   the client (and written to the client as it arrives: nothing is held
//!   back). An event stream is not read ahead (`forward::response_head`).
//!
//! So each request holds at most one `buffer_size` per direction.

use pingora::proxy::Session;
use pingora::ErrorType;

use super::{Answer, Verdict, Waiting};
use crate::config::snapshot::Action;
use crate::proxy::ctx::RequestCtx;
use crate::runtime::LiveConfig;

/// Nothing to wait for unless a request body is to be read first.
pub fn check<'a>(
    session: &'a mut Session,
    ctx: &'a mut RequestCtx,
    live: &'a LiveConfig,
) -> Option<Waiting<'a>> {
    let (server, Some(route)) = ctx.server_route(live) else {
        return None;
    };
    if !route.buffering || !matches!(route.action, Action::Upstream(_)) {
        return None;
    }
    let limit = server.buffer_size;
    session.set_response_read_ahead(limit);
    let head = &ctx.head;
    let length = head
        .content_length
        .filter(|&n| n > 0 && n <= limit as u64)?;
    if head.expect || head.has_transfer_encoding() || session.is_upgrade_req() {
        return None;
    }
    Some(Box::pin(read_body(session, length as usize)))
}

/// Reads the whole body into the retry buffer; a client that stalls (the
/// per-read `client_body_timeout`) gets 408, one that breaks off 400.
async fn read_body(session: &mut Session, length: usize) -> Verdict {
    session
        .downstream_session
        .enable_retry_buffering_up_to(length);
    loop {
        match session.read_request_body().await {
            Ok(Some(_)) => {}
            Ok(None) => return Verdict::Continue,
            Err(e) => {
                let status = match e.etype() {
                    ErrorType::ReadTimedout => 408,
                    _ => 400,
                };
                tracing::debug!("request body not read whole: {e}");
                session.set_keepalive(None);
                return Verdict::Answer(Answer::status(status));
            }
        }
    }
}
