//! What happens to a request before it is proxied: an ordered list of
//! phases, each a function in a file of its own that looks at the request
//! and either lets it go on, answers it, or holds it for a while. A new
//! request-time policy (access control, auth, a connection limit) is one
//! more phase in [`PHASES`].
//!
//! The order is nginx's, where nginx has one (an ACME HTTP-01 challenge
//! answer comes before all of them): the host checks, then the
//! server-wide redirect, then the route (and the 404 when there is none),
//! the CORS preflight (nginx answers it in its rewrite phase, before
//! its access phase), the WebSocket origin check, `allow`/`deny`,
//! authentication, the concurrency limit, rate limits, the body limit, the
//! route's action, and for a proxied request the buffering of its body.

mod access;
mod acme_challenge;
mod action;
mod auth;
mod body_limit;
mod buffering;
mod conn_limit;
mod connection;
mod host;
mod https_redirect;
mod preflight;
mod rate_limit;
mod route;
mod try_files;
mod websocket_origin;

use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use pingora::proxy::Session;

use super::ctx::RequestCtx;
use crate::runtime::LiveConfig;

pub use host::classify;

/// What a phase decided.
pub enum Verdict {
    /// On to the next phase (after the last: to the upstream).
    Continue,
    /// Hold the request, then go on (a rate limit's delay).
    Delay(Duration),
    /// rampart answers the request itself; no further phase runs.
    Answer(Answer),
}

/// One of rampart's own answers.
pub enum Answer {
    /// A status with the short error body (text, or JSON when the client
    /// prefers it) and extra headers (`Location`, `Retry-After`, ...).
    Status {
        status: u16,
        headers: Vec<(HeaderName, HeaderValue)>,
    },
    /// A status with a body of its own (`respond` routes, preflights).
    Body {
        status: u16,
        content_type: HeaderValue,
        body: Bytes,
        headers: Vec<(HeaderName, HeaderValue)>,
    },
    /// A file of the route's `static` directory (`ctx.static_path`).
    Static,
    /// A file an upstream route's `try_files` found (boxed: rare, and the
    /// answer is moved around).
    Found(Box<crate::static_files::Target>),
}

impl Answer {
    pub fn status(status: u16) -> Self {
        Answer::Status {
            status,
            headers: Vec::new(),
        }
    }

    pub fn with_header(status: u16, name: HeaderName, value: HeaderValue) -> Self {
        Answer::Status {
            status,
            headers: vec![(name, value)],
        }
    }
}

/// A phase: it may read and adjust the request (timeouts, keep-alive, the
/// forwarded target) and fill in the context.
#[derive(Clone, Copy)]
enum Phase {
    /// Decides at once (most phases).
    Now(fn(&mut Session, &mut RequestCtx, &LiveConfig) -> Verdict),
    /// May have to wait for something (authentication): `None` when there
    /// is nothing to wait for on this request, so that only requests that
    /// wait pay for a boxed future.
    Waits(for<'a> fn(&'a mut Session, &'a mut RequestCtx, &'a LiveConfig) -> Option<Waiting<'a>>),
}

/// A phase's decision still to come.
type Waiting<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Verdict> + Send + 'a>>;

use Phase::{Now, Waits};

/// The phases, in the order they run.
const PHASES: [(&str, Phase); 17] = [
    ("listener", Now(host::listener)),
    ("acme_challenge", Now(acme_challenge::answer)),
    ("refused", Now(host::refused)),
    ("misdirected", Now(host::misdirected)),
    ("connection", Now(connection::settle)),
    ("https_redirect", Now(https_redirect::check)),
    ("route", Now(route::select)),
    ("preflight", Now(preflight::check)),
    ("websocket_origin", Now(websocket_origin::check)),
    ("access", Now(access::check)),
    ("auth", Waits(auth::check)),
    ("conn_limit", Now(conn_limit::check)),
    ("rate_limit", Waits(rate_limit::check)),
    ("body_limit", Now(body_limit::check)),
    ("try_files", Waits(try_files::check)),
    ("action", Now(action::dispatch)),
    ("buffering", Waits(buffering::check)),
];

/// Runs the phases: `None` when the request goes upstream, else the
/// answer rampart gives.
pub async fn admit(session: &mut Session, ctx: &mut RequestCtx) -> Option<Answer> {
    let live = ctx.live.clone();
    for (_name, phase) in PHASES {
        let verdict = match phase {
            Now(decide) => decide(session, ctx, &live),
            Waits(start) => match start(session, ctx, &live) {
                Some(waiting) => waiting.await,
                None => Verdict::Continue,
            },
        };
        match verdict {
            Verdict::Continue => {}
            Verdict::Delay(wait) => tokio::time::sleep(wait).await,
            Verdict::Answer(answer) => return Some(answer),
        }
    }
    None
}
