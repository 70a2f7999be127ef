//! The one `ProxyHttp` implementation. Each hook is a step of a request's
//! life in pingora and only delegates; the modules here do the work.
//!
//! The life of a request (see pingora's `proxy_trait.rs` for the hooks):
//! - `new_ctx`: a [`RequestCtx`] holding the current configuration;
//! - `early_request_filter`: [`admission::classify`] (the head's facts,
//!   the listener and server; before the compression module runs);
//! - `request_filter`: [`admission::admit`] runs the admission phases;
//!   a phase may answer ([`answer`], [`static_answer`]);
//! - `upstream_peer`, `upstream_request_filter`, `request_body_filter`,
//!   `upstream_response_filter`: [`forward`]; failures go through
//!   [`failure`], which asks [`retry`] whether to try another server;
//! - `response_filter`: [`answer::finish_head`] (headers, compression);
//! - `logging`: [`accounting`] (metrics, access log). An upgraded
//!   connection (101) leaves through `detach_tunnel` and is relayed by
//!   [`crate::tunnel`], which accounts for it when it closes.

mod accounting;
mod admission;
mod answer;
mod ctx;
mod failure;
mod forward;
mod head;
mod retry;
mod static_answer;

use std::sync::Arc;

use bytes::Bytes;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::*;
use pingora::protocols::http::ServerSession as HttpSession;
use pingora::proxy::{DetachedTunnel, FailToProxy, ProxyHttp, Session};
use pingora::upstreams::peer::HttpPeer;

use crate::compression;
use crate::runtime::Runtime;
pub use ctx::RequestCtx;

/// rampart's proxy: the request hooks over the shared [`State`].
pub struct Proxy {
    state: Arc<Runtime>,
}

impl Proxy {
    pub fn new(state: Arc<Runtime>) -> Self {
        Proxy { state }
    }
}

impl ProxyHttp for Proxy {
    type CTX = RequestCtx;

    /// pingora's compression module, steered per request by
    /// [`compression`] (which algorithm, and whether at all).
    fn init_downstream_modules(&self, modules: &mut pingora::modules::http::HttpModules) {
        compression::install(modules);
    }

    fn early_error_response(
        &self,
        status: u16,
        session: &HttpSession,
    ) -> Option<(ResponseHeader, Bytes)> {
        answer::early_error(&self.state, status, session)
    }

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx::new(self.state.current(), self.state.request_started())
    }

    async fn early_request_filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        admission::classify(session, ctx);
        Ok(())
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        match admission::admit(session, ctx).await {
            None => Ok(false),
            Some(a) => answer::write(session, ctx, a).await.map(|()| true),
        }
    }

    async fn upstream_peer(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        forward::next_peer(session, ctx)
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut RequestCtx,
        e: Box<Error>,
    ) -> Box<Error> {
        failure::connect_failed(ctx, e)
    }

    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut RequestCtx,
        client_reused: bool,
    ) -> Box<Error> {
        let e = e.more_context(format!("Peer: {peer}"));
        failure::proxy_failed(session, ctx, e, client_reused)
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        req: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        forward::request_head(session, req, ctx)
    }

    async fn request_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<Bytes>,
        eos: bool,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        forward::request_body(session, body, eos, ctx)
    }

    async fn upstream_response_filter(
        &self,
        session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        forward::response_head(session, resp, ctx)
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        answer::finish_head(session, ctx, resp);
        // Once per request: a retried 101 (the first write failed) is the same tunnel.
        if resp.status.as_u16() == 101 && !ctx.ending.websocket {
            let metrics = ctx.live.metrics(ctx.place.server, ctx.place.route);
            metrics.websockets().inc();
            ctx.ending.websocket = true;
        }
        Ok(())
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let code = failure::status_for(e, ctx);
        if code > 0 && session.response_written().is_none() {
            session.set_keepalive(None);
            if let Err(err) = answer::status_with(session, ctx, code, &[]).await {
                tracing::debug!("cannot send error response: {err}");
            }
        }
        ctx.ending.local_status = Some(code);
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    fn suppress_error_log(&self, _session: &Session, _ctx: &RequestCtx, e: &Error) -> bool {
        failure::is_routine(e)
    }

    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut RequestCtx) {
        // A detached tunnel accounts for itself when it closes.
        if ctx.ending.detached {
            return;
        }
        let status = session
            .response_written()
            .map(|r| r.status.as_u16())
            .or(ctx.ending.local_status)
            .unwrap_or(0);
        let log = &self.state.carried.access_log;
        let fields =
            accounting::line_wanted(ctx, log).then(|| accounting::LogFields::of(session, ctx));
        let bytes = (
            session.body_bytes_sent() as u64,
            session.body_bytes_read() as u64,
        );
        accounting::record(ctx, status, bytes, fields.as_ref().map(|f| (f, log)));
    }

    fn detaches_tunnels(&self) -> bool {
        true
    }

    /// Relays an upgraded connection in a task of its own, holding only
    /// what the relay and the final accounting need (see `tunnel`).
    fn detach_tunnel(&self, session: &mut Session, ctx: &mut RequestCtx, t: DetachedTunnel) {
        let status = session
            .response_written()
            .map(|r| r.status.as_u16())
            .unwrap_or(101);
        let runtime = self.state.clone();
        let fields = accounting::line_wanted(ctx, &runtime.carried.access_log)
            .then(|| accounting::LogFields::of(session, ctx).into_owned());
        // The whole context goes with the tunnel: its slots (in-flight count
        // for the balancer, the drain count for shutdown) stay taken while
        // the tunnel lives, and it has what the final accounting needs.
        let left = RequestCtx::detached(ctx.live.clone());
        let mut closing = std::mem::replace(ctx, left);
        closing.unshare();
        tokio::spawn(async move {
            let DetachedTunnel {
                mut downstream,
                downstream_pending,
                mut upstream,
                upstream_pending,
                read_timeout,
            } = t;
            let stats = crate::tunnel::relay(
                &mut downstream,
                downstream_pending,
                &mut upstream,
                upstream_pending,
                read_timeout,
            )
            .await;
            drop((downstream, upstream));
            let bytes = (stats.to_client, stats.to_upstream);
            let log = &runtime.carried.access_log;
            accounting::record(&closing, status, bytes, fields.as_ref().map(|f| (f, log)));
        });
    }
}
