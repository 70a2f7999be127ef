//! What rampart knows about one request while pingora drives it through the
//! hooks: set up in `new_ctx`, filled in by the admission phases, read by the
//! upstream hooks and the final accounting. Dropping it releases the
//! request's slots (in flight on an upstream server, in flight for the
//! shutdown drain) on every path.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use http::header::HeaderValue;

use super::head::HeadFacts;
use super::retry::Attempts;
use crate::config::snapshot::{CorsId, ListenerId, Route, Server, ServerId};
use crate::headers::RequestId;
use crate::routing::RouteId;
use crate::runtime::{LiveConfig, RequestGuard};

pub struct RequestCtx {
    pub start: Instant,
    /// The configuration this request is served by, from start to end,
    /// whatever reloads happen meanwhile.
    pub live: Arc<LiveConfig>,
    pub place: Place,
    pub client: Client,
    /// What one pass over the request's header lines found.
    pub head: HeadFacts,
    pub cors: CorsState,
    /// The upstream attempts of a proxied request.
    pub attempts: Attempts,
    pub body: BodyCount,
    pub ending: Ending,
    /// The client's `Accept-Encoding`, when rampart narrowed it for the
    /// compression module (restored for the upstream).
    pub accept_encoding: Option<HeaderValue>,
    /// The routed (normalized) path, kept only for a `static` route, which
    /// maps it to a file.
    pub static_path: Option<String>,
    /// The target as the client sent it, when the upstream gets another
    /// path (normalized or rewritten): the access log shows the client's.
    /// Boxed: rare, and the context is moved with every request.
    pub client_target: Option<Box<http::Uri>>,
    /// The request's place in its route's concurrency limit, given back
    /// when the context is dropped.
    pub conn_slot: Option<crate::conn_limit::Slot>,
    _in_flight: Option<RequestGuard>,
}

/// Where the request was routed to, in `live.cfg`.
#[derive(Debug, Clone, Copy)]
pub struct Place {
    /// The listener the connection arrived on; `None` for an address a
    /// reload removed.
    pub listener: Option<ListenerId>,
    pub server: ServerId,
    pub route: Option<RouteId>,
}

impl Default for Place {
    fn default() -> Self {
        Place {
            listener: None,
            server: ServerId(0),
            route: None,
        }
    }
}

/// Who asked.
#[derive(Debug, Default)]
pub struct Client {
    /// The client's address: the peer's, or the one a trusted proxy named.
    pub ip: Option<IpAddr>,
    pub tls: bool,
    pub request_id: RequestId,
}

/// The CORS policy in effect and what it made of the request's `Origin`.
#[derive(Debug, Default)]
pub struct CorsState {
    /// The route's policy, or the server's for a 404.
    pub policy: Option<CorsId>,
    /// The request's `Origin`, when that policy admits it.
    pub origin: Option<HeaderValue>,
    /// This request is a preflight rampart answers.
    pub preflight: bool,
}

/// The request body seen so far, against the server's limit.
#[derive(Debug, Default, Clone, Copy)]
pub struct BodyCount {
    pub limit: Option<u64>,
    pub seen: u64,
}

/// How the request ended, for logs and metrics.
#[derive(Debug, Default, Clone, Copy)]
pub struct Ending {
    /// Status of a response rampart wrote itself.
    pub local_status: Option<u16>,
    /// The response was a 101 (counted once in the WebSocket gauge).
    pub websocket: bool,
    /// The connection was upgraded and handed to a relay task, which
    /// accounts for it when it closes.
    pub detached: bool,
}

impl RequestCtx {
    /// A new request's context, counted in flight until dropped.
    pub fn new(live: Arc<LiveConfig>, in_flight: RequestGuard) -> Self {
        RequestCtx {
            _in_flight: Some(in_flight),
            ..Self::blank(live)
        }
    }

    /// What is left in pingora's hands when a tunnel took the request's
    /// context away: nothing to count, nothing to log.
    pub fn detached(live: Arc<LiveConfig>) -> Self {
        let mut ctx = Self::blank(live);
        ctx.ending.detached = true;
        ctx
    }

    fn blank(live: Arc<LiveConfig>) -> Self {
        RequestCtx {
            start: Instant::now(),
            live,
            place: Place::default(),
            client: Client::default(),
            head: HeadFacts::default(),
            cors: CorsState::default(),
            attempts: Attempts::default(),
            body: BodyCount::default(),
            ending: Ending::default(),
            accept_encoding: None,
            static_path: None,
            client_target: None,
            conn_slot: None,
            _in_flight: None,
        }
    }

    /// The server the request was routed to and its route, if any.
    pub fn server_route<'a>(&self, live: &'a LiveConfig) -> (&'a Server, Option<&'a Route>) {
        let server = &live.cfg.servers[self.place.server];
        (server, self.place.route.map(|r| server.routes.get(r)))
    }

    /// The request's route, if it has one (phases that apply to routes).
    pub fn route<'a>(&self, live: &'a LiveConfig) -> Option<&'a Route> {
        self.server_route(live).1
    }

    /// The same, borrowed from the request's own configuration.
    pub fn server(&self) -> &Server {
        &self.live.cfg.servers[self.place.server]
    }

    /// Drops what shares the request head's buffer (cookies and all), for
    /// a context that outlives the request (a tunnel's).
    pub fn unshare(&mut self) {
        self.cors.origin = None;
        self.accept_encoding = None;
        self.client_target = None;
        self.head = HeadFacts::default();
        self.client.request_id = self.client.request_id.unshared();
    }
}
