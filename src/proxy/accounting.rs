//! A finished request (or closed tunnel) in the metrics and the access
//! log.

use std::borrow::Cow;

use http::header;
use pingora::proxy::Session;

use super::ctx::RequestCtx;
use crate::access_log::{self, AccessLog};
use crate::runtime::LiveConfig;

/// The parts of a request its access-log line is made of: borrowed from
/// the session, or owned when the line is written after the session has
/// gone (a detached tunnel).
pub struct LogFields<'a> {
    method: Cow<'a, str>,
    host: Option<Cow<'a, str>>,
    path: Cow<'a, str>,
    query: Option<Cow<'a, str>>,
    user_agent: Option<Cow<'a, str>>,
    referer: Option<Cow<'a, str>>,
    tls: Option<&'static str>,
    protocol: &'static str,
}

impl<'a> LogFields<'a> {
    pub fn of(session: &'a Session, ctx: &'a RequestCtx) -> Self {
        let req = session.req_header();
        // The client's path, not the one forwarded.
        let target = ctx.client_target.as_deref().unwrap_or(&req.uri);
        let hdr = |n: header::HeaderName| {
            req.headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(Cow::Borrowed)
        };
        LogFields {
            method: Cow::Borrowed(req.method.as_str()),
            host: ctx.head.host().map(Cow::Borrowed),
            path: Cow::Borrowed(target.path()),
            query: target.query().map(Cow::Borrowed),
            user_agent: hdr(header::USER_AGENT),
            referer: hdr(header::REFERER),
            tls: session
                .digest()
                .and_then(|d| d.ssl_digest.as_ref())
                .map(|t| tls_version_name(&t.version)),
            protocol: match req.version {
                http::Version::HTTP_2 => "HTTP/2",
                http::Version::HTTP_10 => "HTTP/1.0",
                _ => "HTTP/1.1",
            },
        }
    }

    pub fn into_owned(self) -> LogFields<'static> {
        let own = |c: Cow<'_, str>| Cow::Owned(c.into_owned());
        LogFields {
            method: own(self.method),
            host: self.host.map(own),
            path: own(self.path),
            query: self.query.map(own),
            user_agent: self.user_agent.map(own),
            referer: self.referer.map(own),
            tls: self.tls,
            protocol: self.protocol,
        }
    }
}

/// Whether the request gets an access-log line (its route's or server's
/// `access_log`, and a log configured).
pub fn line_wanted(ctx: &RequestCtx, log: &AccessLog) -> bool {
    let (server, route) = ctx.server_route(&ctx.live);
    route.map_or(server.access_log, |r| r.access_log) && log.enabled()
}

/// The request's metrics, and its access-log line when `fields` are given
/// (see [`line_wanted`]). `bytes` is (sent to the client, received from it).
pub fn record(
    ctx: &RequestCtx,
    status: u16,
    bytes: (u64, u64),
    fields: Option<(&LogFields<'_>, &AccessLog)>,
) {
    let live: &LiveConfig = &ctx.live;
    let elapsed = ctx.start.elapsed();
    let (_, route) = ctx.server_route(live);
    let metrics = live.metrics(ctx.place.server, ctx.place.route);
    metrics.observe(status, elapsed.as_secs_f64());
    if ctx.ending.websocket {
        metrics.websockets().dec();
    }
    let Some((fields, log)) = fields else { return };
    let up = ctx.attempts.upstream.map(|u| &live.cfg.upstreams[u]);
    let upstream_addr = match (up, ctx.attempts.current) {
        (Some(u), Some(i)) => u.servers.get(i).map(|s| s.addr.as_str()),
        _ => None,
    };
    let entry = access_log::Entry {
        time: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
        client_ip: ctx.client.ip.map(|ip| ip.to_string()),
        method: &fields.method,
        host: fields.host.as_deref(),
        path: &fields.path,
        query: fields.query.as_deref(),
        status,
        bytes_sent: bytes.0,
        bytes_received: bytes.1,
        duration_ms: (elapsed.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
        route: route.map(|r| r.name.as_str()),
        upstream: up.map(|u| u.name.as_str()),
        upstream_addr,
        upstream_status: ctx.attempts.upstream_status,
        request_id: ctx.client.request_id.as_str(),
        user_agent: fields.user_agent.as_deref(),
        referer: fields.referer.as_deref(),
        tls: fields.tls,
        protocol: fields.protocol,
    };
    log.write(&entry);
}

/// pingora reports rustls versions as `TLSv1_3`; logs say `TLSv1.3`.
fn tls_version_name(v: &str) -> &'static str {
    match v {
        "TLSv1_3" | "TLSv1.3" => "TLSv1.3",
        "TLSv1_2" | "TLSv1.2" => "TLSv1.2",
        _ => "other",
    }
}
