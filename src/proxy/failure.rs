//! What a failure means: which upstream outcome it counts as, whether the
//! request is tried again ([`super::retry`] decides), and which status the
//! client gets.

use pingora::prelude::*;
use pingora::proxy::Session;
use pingora::{ErrorSource, ErrorType};

use super::ctx::RequestCtx;
use super::forward::{record_attempt, tries};
use super::retry::{self, Decision, Failure};
use crate::upstream::Outcome;

fn is_timeout(e: &Error) -> bool {
    matches!(
        e.etype(),
        ErrorType::ConnectTimedout
            | ErrorType::ReadTimedout
            | ErrorType::WriteTimedout
            | ErrorType::TLSHandshakeTimedout
    )
}

/// Connecting to the attempt's server failed.
pub fn connect_failed(ctx: &mut RequestCtx, mut e: Box<Error>) -> Box<Error> {
    let timeout = is_timeout(&e);
    record_attempt(
        ctx,
        if timeout {
            Outcome::Timeout
        } else {
            Outcome::ConnectError
        },
    );
    let failure = Failure::Connect { timeout };
    ctx.attempts.last_failure = failure.status();
    // pingora decided connect errors already; rampart only adds retries.
    if retry::after_failure(failure, false, ctx.attempts.count, tries(ctx)) == Decision::Next {
        e.set_retry(true);
    }
    e
}

/// The attempt failed after its connection was made.
pub fn proxy_failed(
    session: &Session,
    ctx: &mut RequestCtx,
    mut e: Box<Error>,
    client_reused: bool,
) -> Box<Error> {
    if ctx.attempts.retry_5xx.take().is_some() {
        // Our own decision in `forward::response_head`.
        e.set_retry(true);
        return e;
    }
    let failure = match (e.esource(), ctx.attempts.upstream_status) {
        (ErrorSource::Upstream, None) => Failure::BeforeHead {
            timeout: is_timeout(&e),
        },
        _ => Failure::Other,
    };
    if let Failure::BeforeHead { timeout } = failure {
        record_attempt(
            ctx,
            if timeout {
                Outcome::Timeout
            } else {
                Outcome::Error
            },
        );
        ctx.attempts.last_failure = failure.status();
    }
    let safe = retry::safe_to_resend(
        session.req_header().method.is_idempotent(),
        ctx.body.seen,
        session.as_ref().retry_buffer_truncated(),
    );
    match retry::after_failure(failure, safe, ctx.attempts.count, tries(ctx)) {
        Decision::Next => e.set_retry(true),
        Decision::IfReused => e.retry.decide_reuse(client_reused),
        Decision::GiveUp => e.set_retry(false),
    }
    e
}

/// The status for a request that failed (0: none, the client is gone).
pub fn status_for(e: &Error, ctx: &RequestCtx) -> u16 {
    match e.etype() {
        ErrorType::HTTPStatus(c) => *c,
        _ if is_timeout(e) && e.esource() != &ErrorSource::Downstream => 504,
        ErrorType::ReadTimedout => 408,
        _ => match e.esource() {
            ErrorSource::Upstream => 502,
            ErrorSource::Downstream => match e.etype() {
                ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => 0,
                _ => 400,
            },
            _ if ctx.attempts.upstream.is_some() && ctx.attempts.count > 0 => 502,
            _ => 500,
        },
    }
}

/// Statuses rampart chose (413, ...) and clients that hang up are part of
/// normal traffic, not gateway errors (nginx logs them at info).
pub fn is_routine(e: &Error) -> bool {
    let client_gone = e.esource() == &ErrorSource::Downstream
        && matches!(
            e.etype(),
            ErrorType::ConnectionClosed | ErrorType::ReadError | ErrorType::WriteError
        );
    if client_gone {
        tracing::debug!("client went away: {e}");
    }
    client_gone || matches!(e.etype(), ErrorType::HTTPStatus(_))
}
