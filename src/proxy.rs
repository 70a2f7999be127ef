//! The one `ProxyHttp` implementation. Each hook is a phase of a request's
//! life and only orchestrates: the module that owns a concern does the work.
//!
//! Phases, in order (see pingora's `proxy_trait.rs`):
//! `request_filter` (pick server and route, answer locally or go on) →
//! `upstream_peer` (pick an upstream server; again on each retry) →
//! `upstream_request_filter` (forwarding headers) → `request_body_filter`
//! (body limit) → `upstream_response_filter` / `response_filter` (headers
//! back) → `logging` (metrics, access log). Failures go through
//! `fail_to_connect` (retry?) and `fail_to_proxy` (which status?). An
//! upgraded connection (101) leaves the request through `detach_tunnel`
//! and is relayed by [`crate::tunnel`], which accounts for it when it
//! closes.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::protocols::http::ServerSession as HttpSession;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::upstreams::peer::HttpPeer;
use pingora::ErrorType;

use crate::access_log;
use crate::client_ip;
use crate::compression;
use crate::config::snapshot::{Action, CorsChoice, Listener, Piece, Route, Server, Static};
use crate::headers;
use crate::request_path;
use crate::respond;
use crate::routing;
use crate::sanitize;
use crate::state::{Live, RequestGuard, State};
use crate::upstream::{peer, InFlight, Outcome};

pub struct Gateway {
    state: Arc<State>,
}

impl Gateway {
    pub fn new(state: Arc<State>) -> Self {
        Gateway { state }
    }
}

/// Per-request context. Dropping it releases the in-flight slots, on
/// every path.
pub struct Ctx {
    start: Instant,
    live: Option<Arc<Live>>,
    server: usize,
    route: Option<usize>,
    request_id: headers::RequestId,
    client_ip: Option<IpAddr>,
    tls: bool,
    /// Upstream of the route, when it proxies.
    upstream: Option<usize>,
    /// Servers of the pool already tried (bit set) and attempt count.
    tried: u64,
    attempts: usize,
    /// Index in the pool of the current attempt's server.
    current: Option<usize>,
    in_flight: Option<InFlight>,
    upstream_status: Option<u16>,
    /// Status for the final answer if every server fails (502 or 504).
    last_failure: Option<u16>,
    /// Set while a 5xx answer is being turned into a retry.
    retry_5xx: Option<u16>,
    body_limit: Option<u64>,
    body_seen: u64,
    /// Status of a response rampart wrote itself (for logs and metrics).
    local_status: Option<u16>,
    websocket: bool,
    /// The connection was upgraded and handed to a relay task, which
    /// accounts for it when it closes.
    detached: bool,
    /// Index of the listener the connection arrived on.
    listener: Option<usize>,
    /// The client's `Accept-Encoding`, when rampart narrowed it for the
    /// compression module (restored for the upstream).
    accept_encoding: Option<HeaderValue>,
    /// CORS policy in effect (route's, or server's for a 404).
    cors: Option<usize>,
    /// The request's `Origin`, when that policy admits it.
    cors_origin: Option<HeaderValue>,
    /// This request is a CORS preflight answered by rampart.
    preflight: bool,
    /// The answer to a request refused before routing (a malformed `Host`
    /// or target: 400; a transfer coding rampart does not decode: 501).
    refused: Option<u16>,
    _request: Option<RequestGuard>,
}

impl Ctx {
    /// A context that holds no slot.
    fn blank() -> Ctx {
        Ctx {
            start: Instant::now(),
            live: None,
            server: 0,
            route: None,
            request_id: headers::RequestId::default(),
            client_ip: None,
            tls: false,
            upstream: None,
            tried: 0,
            attempts: 0,
            current: None,
            in_flight: None,
            upstream_status: None,
            last_failure: None,
            retry_5xx: None,
            body_limit: None,
            body_seen: 0,
            local_status: None,
            websocket: false,
            detached: false,
            listener: None,
            accept_encoding: None,
            cors: None,
            cors_origin: None,
            preflight: false,
            refused: None,
            _request: None,
        }
    }

    fn live(&self) -> Option<&Live> {
        self.live.as_deref()
    }
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
fn limit_drain(session: &mut Session, ctx: &Ctx) {
    let req = session.req_header();
    // A client waiting for `100 Continue` sends no body: draining would
    // take its next request for the body.
    if req.headers.contains_key(header::TRANSFER_ENCODING)
        || req.headers.contains_key(header::EXPECT)
    {
        return;
    }
    let small = req
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|n| n > 0 && n <= DRAIN_LIMIT);
    if small {
        let total = ctx
            .live()
            .and_then(|l| l.cfg.servers.get(ctx.server))
            .map_or(std::time::Duration::from_secs(60), |s| {
                s.client_body_timeout
            });
        session.set_close_on_response_before_downstream_finish(false);
        session.set_total_drain_timeout(Some(total));
    }
}

fn is_timeout(e: &Error) -> bool {
    matches!(
        e.etype(),
        ErrorType::ConnectTimedout
            | ErrorType::ReadTimedout
            | ErrorType::WriteTimedout
            | ErrorType::TLSHandshakeTimedout
    )
}

/// Where the request's host (port included, if any) comes from: its `Host`
/// header when that is visible ASCII, else the h2 `:authority`. One choice
/// for routing, rate-limit keys, logs and the forwarded headers.
enum Host<'a> {
    Header(&'a HeaderValue, &'a str),
    Authority(&'a str),
}

fn host_of(session: &Session) -> Option<Host<'_>> {
    let req = session.req_header();
    let header = req.headers.get(header::HOST);
    match header.and_then(|h| Some(Host::Header(h, h.to_str().ok()?))) {
        Some(host) => Some(host),
        None => req.uri.authority().map(|a| Host::Authority(a.as_str())),
    }
}

fn request_host(session: &Session) -> Option<&str> {
    host_of(session).map(|h| match h {
        Host::Header(_, s) | Host::Authority(s) => s,
    })
}

/// [`request_host`] as a header value: `Host` is shared, not copied.
fn request_host_value(session: &Session) -> Option<HeaderValue> {
    match host_of(session)? {
        Host::Header(h, _) => Some(h.clone()),
        Host::Authority(a) => HeaderValue::from_str(a).ok(),
    }
}

/// RFC 9112 §3.2: an HTTP/1.1 request needs exactly one `Host`, of
/// visible ASCII; HTTP/1.0 may have none (but not two).
fn host_is_well_formed(session: &Session) -> bool {
    let req = session.req_header();
    let mut hosts = req.headers.get_all(header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        (_, Some(_)) => false,
        (Some(h), None) => h.to_str().is_ok(),
        (None, None) => req.version != http::Version::HTTP_11,
    }
}

/// The `Host` for the upstream of a request that has none (HTTP/1.0):
/// the server's first name, else the address the client connected to.
fn host_for_hostless(session: &Session, live: &Live, ctx: &Ctx) -> Option<HeaderValue> {
    let server = live.cfg.servers.get(ctx.server)?;
    if let Some(h) = &server.host_for_hostless {
        return Some(h.clone());
    }
    let local = session.server_addr()?.as_inet()?;
    HeaderValue::from_str(&local.to_string()).ok()
}

/// Over TLS, a Host naming a server whose certificate the SNI did not
/// select: the client would be talking to a server it never verified
/// (421, RFC 9110 §15.5.20). Servers sharing one certificate file may be
/// reached through each other's names, as with a multi-name certificate.
fn misdirected(session: &Session, live: &Live, listener: &Listener, by_host: usize) -> bool {
    let Some(Some(sni)) = session
        .digest()
        .and_then(|d| d.ssl_digest.as_ref())
        .and_then(|t| t.extension.get::<crate::tls::Sni>())
        .map(|s| s.0.as_deref())
    else {
        // No SNI (e.g. an IP address): nothing was promised; Host decides.
        return false;
    };
    let by_sni = listener.hosts.select(sni);
    if by_sni == by_host {
        return false;
    }
    let cert = |i: usize| live.cfg.servers[i].tls.as_ref().map(|t| &t.cert_path);
    cert(by_sni) != cert(by_host)
}

/// The route's rate limits (nginx `limit_req`): `Ok(delay)` to serve after
/// `delay`, `Err((status, retry_after_seconds))` to refuse. With several
/// zones each must accept, and a request refused by one is counted in none.
fn rate_limit(
    session: &Session,
    ctx: &Ctx,
    live: &Live,
    route: &Route,
) -> Result<std::time::Duration, (u16, u64)> {
    use crate::config::snapshot::{RateLimit, ZoneKey};
    use crate::ratelimit::{Key, Verdict};
    let now = Instant::now();
    // The key a request has in a zone (None: the zone does not apply).
    let key_of = |rl: &RateLimit| -> Option<(Key, u64)> {
        let (state, _) = &live.zones[rl.zone];
        let key = match &live.cfg.zones[rl.zone].key {
            ZoneKey::ClientIp => ctx
                .client_ip
                .map(|ip| Key::ip_prefix(ip, live.cfg.zones[rl.zone].ipv6_prefix)),
            // Requests without a host share one key (the empty host): not
            // naming a host is no way around the limit.
            ZoneKey::Host => Some(Key::bytes(
                routing::strip_port(request_host(session).unwrap_or("")).as_bytes(),
                &state.hasher,
            )),
            // Requests without the header are not limited by this zone.
            ZoneKey::Header(name) => session
                .req_header()
                .headers
                .get(name)
                .map(|v| Key::bytes(v.as_bytes(), &state.hasher)),
        }?;
        Some((key, state.now_ms(now)))
    };
    let reject = |rl: &RateLimit, retry_after_ms: u64| {
        live.zones[rl.zone].1.inc();
        Err((rl.status, retry_after_ms.div_ceil(1000).max(1)))
    };
    let verdict = |v: Verdict, rl: &RateLimit| match v {
        Verdict::Accept { delay_ms, .. } => Ok(delay_ms),
        Verdict::Reject { retry_after_ms } => reject(rl, retry_after_ms),
    };
    // The common case, one zone: decide and store in one step.
    if let [rl] = route.rate_limits.as_slice() {
        let Some((key, at)) = key_of(rl) else {
            return Ok(std::time::Duration::ZERO);
        };
        return verdict(live.zones[rl.zone].0.check(key, at, &rl.limit), rl)
            .map(std::time::Duration::from_millis);
    }
    let checks: Vec<(&RateLimit, Key, u64)> = route
        .rate_limits
        .iter()
        .filter_map(|rl| key_of(rl).map(|(k, at)| (rl, k, at)))
        .collect();
    // Refused by any zone: counted in none (nginx).
    for (rl, key, at) in &checks {
        verdict(live.zones[rl.zone].0.peek(key, *at, &rl.limit), rl)?;
    }
    let mut wait = 0;
    for (rl, key, at) in checks {
        wait = wait.max(verdict(
            live.zones[rl.zone].0.check(key, at, &rl.limit),
            rl,
        )?);
    }
    Ok(std::time::Duration::from_millis(wait))
}

/// The parts of a request its access-log line is made of: borrowed from
/// the session, or owned when the line is written after the session has
/// gone (a detached tunnel).
struct LineFacts<'a> {
    method: Cow<'a, str>,
    host: Option<Cow<'a, str>>,
    path: Cow<'a, str>,
    query: Option<Cow<'a, str>>,
    user_agent: Option<Cow<'a, str>>,
    referer: Option<Cow<'a, str>>,
    tls: Option<&'static str>,
    protocol: &'static str,
}

impl<'a> LineFacts<'a> {
    fn of(session: &'a Session) -> Self {
        let req = session.req_header();
        let hdr = |n: header::HeaderName| {
            req.headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(Cow::Borrowed)
        };
        LineFacts {
            method: Cow::Borrowed(req.method.as_str()),
            host: request_host(session).map(Cow::Borrowed),
            path: Cow::Borrowed(req.uri.path()),
            query: req.uri.query().map(Cow::Borrowed),
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

    fn into_owned(self) -> LineFacts<'static> {
        let own = |c: Cow<'_, str>| Cow::Owned(c.into_owned());
        LineFacts {
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
fn line_wanted(live: &Live, ctx: &Ctx) -> bool {
    let server = &live.cfg.servers[ctx.server];
    let wanted = match ctx.route {
        Some(r) => server.routes.get(r).access_log,
        None => server.access_log,
    };
    wanted && access_log::enabled()
}

/// A finished request (or closed tunnel): its metrics, and its access-log
/// line when `facts` are given (see [`line_wanted`]).
/// `bytes` is (sent to the client, received from it).
fn account(live: &Live, ctx: &Ctx, status: u16, bytes: (u64, u64), facts: Option<&LineFacts<'_>>) {
    let elapsed = ctx.start.elapsed();
    let server = &live.cfg.servers[ctx.server];
    let route = ctx.route.map(|r| server.routes.get(r));
    let metrics = route.map(|r| &r.metrics).unwrap_or(&server.unrouted);
    metrics.observe(status, elapsed.as_secs_f64());
    if ctx.websocket {
        metrics.websockets().dec();
    }
    let Some(facts) = facts else { return };
    let up = ctx.upstream.map(|u| &live.cfg.upstreams[u]);
    let upstream_addr = match (up, ctx.current) {
        (Some(u), Some(i)) => u.servers.get(i).map(|s| s.addr.as_str()),
        _ => None,
    };
    let entry = access_log::Entry {
        time: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
        client_ip: ctx.client_ip.map(|ip| ip.to_string()),
        method: &facts.method,
        host: facts.host.as_deref(),
        path: &facts.path,
        query: facts.query.as_deref(),
        status,
        bytes_sent: bytes.0,
        bytes_received: bytes.1,
        duration_ms: (elapsed.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
        route: route.map(|r| r.name.as_str()),
        upstream: up.map(|u| u.name.as_str()),
        upstream_addr,
        upstream_status: ctx.upstream_status,
        request_id: ctx.request_id.as_str(),
        user_agent: facts.user_agent.as_deref(),
        referer: facts.referer.as_deref(),
        tls: facts.tls,
        protocol: facts.protocol,
    };
    access_log::write(&entry);
}

/// pingora reports rustls versions as `TLSv1_3`; logs say `TLSv1.3`.
fn tls_version_name(v: &str) -> &'static str {
    match v {
        "TLSv1_3" | "TLSv1.3" => "TLSv1.3",
        "TLSv1_2" | "TLSv1.2" => "TLSv1.2",
        _ => "other",
    }
}

fn render_redirect(to: &[Piece], host: &str, path: &str, query: Option<&str>) -> String {
    let mut out = String::with_capacity(64);
    for p in to {
        match p {
            Piece::Lit(s) => out.push_str(s),
            Piece::Host => out.push_str(host),
            Piece::Path => out.push_str(path),
            Piece::Query => out.push_str(query.unwrap_or("")),
            Piece::Uri => {
                out.push_str(path);
                if let Some(q) = query {
                    out.push('?');
                    out.push_str(q);
                }
            }
        }
    }
    out
}

impl Gateway {
    /// Writes one of rampart's own responses with every configured header.
    async fn answer(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        status: u16,
        content_type: &HeaderValue,
        body: Bytes,
        extra: &[(header::HeaderName, HeaderValue)],
    ) -> Result<()> {
        limit_drain(session, ctx);
        let mut resp = respond::head(status, content_type, body.len())?;
        for (n, v) in extra {
            resp.insert_header(n.clone(), v.clone())?;
        }
        self.finish_head(session, ctx, &mut resp);
        ctx.local_status = Some(status);
        respond::write(session, resp, body).await
    }

    /// Writes an error answer (text or JSON as the client prefers).
    async fn answer_error(&self, session: &mut Session, ctx: &mut Ctx, status: u16) -> Result<()> {
        self.answer_status(session, ctx, status, &[]).await
    }

    /// A short status answer (text, or JSON when preferred) with extra
    /// headers (`Location`, `Retry-After`, `Allow`, `Content-Range`).
    async fn answer_status(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        status: u16,
        extra: &[(header::HeaderName, HeaderValue)],
    ) -> Result<()> {
        let json = respond::prefers_json(session.req_header().headers.get(header::ACCEPT));
        let (body, ct) = respond::error_body(status, ctx.request_id.as_str(), json);
        self.answer(
            session,
            ctx,
            status,
            &HeaderValue::from_static(ct),
            body,
            extra,
        )
        .await
    }

    /// Everything a response head gets before it goes out: configured,
    /// security and CORS headers, and the compression decision.
    fn finish_head(&self, session: &mut Session, ctx: &Ctx, resp: &mut ResponseHeader) {
        self.decorate(resp, ctx);
        let comp = ctx
            .live()
            .and_then(|l| l.cfg.servers.get(ctx.server))
            .and_then(|s| s.compression.as_ref());
        compression::gate(session, comp, resp);
    }

    /// Response headers of the server/route the request belongs to.
    fn decorate(&self, resp: &mut ResponseHeader, ctx: &Ctx) {
        let Some(live) = ctx.live() else { return };
        let Some(server) = live.cfg.servers.get(ctx.server) else {
            return;
        };
        let route = ctx.route.map(|r| server.routes.get(r));
        headers::client_response(
            resp,
            server,
            route,
            &ctx.request_id,
            ctx.tls,
            live.cfg.global.server_header,
        );
        if let Some(p) = ctx.cors.and_then(|i| live.cfg.cors.get(i)) {
            if ctx.preflight {
                if crate::cors::varies(p) {
                    let _ = resp.append_header(header::VARY, "Origin");
                }
            } else {
                crate::cors::apply(p, ctx.cors_origin.as_ref(), resp);
            }
        }
    }

    /// Serves a file of a `static` route (see `static_files`).
    async fn serve_static(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        st: &Static,
        path: &str,
    ) -> Result<()> {
        use crate::static_files::{self as sf, Target};
        limit_drain(session, ctx);
        let req = session.req_header();
        if req.method != http::Method::GET && req.method != http::Method::HEAD {
            let allow = [(header::ALLOW, HeaderValue::from_static("GET, HEAD"))];
            return self.answer_status(session, ctx, 405, &allow).await;
        }
        let text = |n: header::HeaderName| req.headers.get(n).and_then(|v| v.to_str().ok());
        let range = text(header::RANGE).map(str::to_string);
        let accept = sf::accepted_encodings(text(header::ACCEPT_ENCODING));
        let (inm, ims) = (
            text(header::IF_NONE_MATCH).map(str::to_string),
            text(header::IF_MODIFIED_SINCE).map(str::to_string),
        );
        let query = req.uri.query().map(|q| format!("?{q}")).unwrap_or_default();
        let f = match sf::resolve(st, path, &accept, range.is_some()).await {
            Target::NotFound => return self.answer_error(session, ctx, 404).await,
            Target::AddSlash => {
                // The path as received (still percent-encoded), not as matched.
                let received = session.req_header().uri.path().to_string();
                let loc = HeaderValue::from_str(&format!("{received}/{query}"))
                    .unwrap_or(HeaderValue::from_static("/"));
                return self
                    .answer_status(session, ctx, 301, &[(header::LOCATION, loc)])
                    .await;
            }
            Target::File(f) => f,
        };
        let etag = f.etag();
        let mut validators = vec![(
            header::ETAG,
            HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"0\"")),
        )];
        if let Some(m) = f.modified {
            if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(m)) {
                validators.push((header::LAST_MODIFIED, v));
            }
        }
        if let Some(cc) = &st.cache_control {
            validators.push((header::CACHE_CONTROL, cc.clone()));
        }
        if let Some(e) = st.expires {
            if let Ok(v) =
                HeaderValue::from_str(&httpdate::fmt_http_date(std::time::SystemTime::now() + e))
            {
                validators.push((header::EXPIRES, v));
            }
        }
        validators.push((header::VARY, HeaderValue::from_static("Accept-Encoding")));
        if sf::not_modified(inm.as_deref(), ims.as_deref(), &etag, f.modified) {
            let mut resp = ResponseHeader::build(304, Some(8))?;
            for (n, v) in validators {
                resp.insert_header(n, v)?;
            }
            self.finish_head(session, ctx, &mut resp);
            ctx.local_status = Some(304);
            return session.write_response_header(Box::new(resp), true).await;
        }
        let (status, start, len) = match sf::parse_range(range.as_deref(), f.len) {
            Ok(None) => (200, 0, f.len),
            Ok(Some((a, b))) => (206, a, b - a + 1),
            Err(()) => {
                let cr = HeaderValue::from_str(&format!("bytes */{}", f.len))
                    .unwrap_or(HeaderValue::from_static("bytes */0"));
                return self
                    .answer_status(session, ctx, 416, &[(header::CONTENT_RANGE, cr)])
                    .await;
            }
        };
        let mut file = tokio::fs::File::from_std(f.file);
        let mut resp = ResponseHeader::build(status, Some(12))?;
        resp.insert_header(header::CONTENT_TYPE, f.content_type.clone())?;
        resp.insert_header(header::CONTENT_LENGTH, len)?;
        resp.insert_header(header::ACCEPT_RANGES, "bytes")?;
        for (n, v) in validators {
            resp.insert_header(n, v)?;
        }
        if let Some(enc) = f.encoding {
            resp.insert_header(header::CONTENT_ENCODING, enc)?;
        }
        if status == 206 {
            resp.insert_header(
                header::CONTENT_RANGE,
                format!("bytes {}-{}/{}", start, start + len - 1, f.len),
            )?;
        }
        self.finish_head(session, ctx, &mut resp);
        ctx.local_status = Some(status);
        let head_only = session.req_header().method == http::Method::HEAD || len == 0;
        session
            .write_response_header(Box::new(resp), head_only)
            .await?;
        if head_only {
            return Ok(());
        }
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        if start > 0 {
            file.seek(std::io::SeekFrom::Start(start))
                .await
                .map_err(|e| Error::because(ErrorType::FileReadError, "seek", e))?;
        }
        // Streamed in 64 KiB chunks: constant memory whatever the file size.
        let mut left = len;
        while left > 0 {
            let mut buf = bytes::BytesMut::zeroed(left.min(64 * 1024) as usize);
            let n = file
                .read(&mut buf)
                .await
                .map_err(|e| Error::because(ErrorType::FileReadError, "read", e))?;
            if n == 0 {
                return Error::e_explain(ErrorType::FileReadError, "file shrank while being sent");
            }
            buf.truncate(n);
            left -= n as u64;
            session
                .write_response_body(Some(buf.freeze()), left == 0)
                .await?;
        }
        Ok(())
    }

    /// Counts the current attempt's outcome on its server.
    fn record_attempt(&self, ctx: &Ctx, outcome: Outcome) {
        let (Some(f), Some(live), Some(u)) = (&ctx.in_flight, ctx.live(), ctx.upstream) else {
            return;
        };
        f.backend().record(outcome, &live.cfg.upstreams[u]);
    }

    fn tries(&self, ctx: &Ctx) -> usize {
        match (ctx.live(), ctx.upstream) {
            (Some(l), Some(u)) => l.cfg.upstreams[u].tries,
            _ => 1,
        }
    }

    fn has_untried(&self, ctx: &Ctx) -> bool {
        match (ctx.live(), ctx.upstream) {
            (Some(l), Some(u)) => (0..l.cfg.upstreams[u].servers.len())
                .any(|i| ctx.tried & (1u64 << (i % 64)) == 0 && l.pools[u].sockets[i].is_some()),
            _ => false,
        }
    }

    fn server_route<'a>(live: &'a Live, ctx: &Ctx) -> (&'a Server, Option<&'a Route>) {
        let server = &live.cfg.servers[ctx.server];
        (server, ctx.route.map(|r| server.routes.get(r)))
    }
}

impl ProxyHttp for Gateway {
    type CTX = Ctx;

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
        let live = self.state.current();
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

    fn new_ctx(&self) -> Ctx {
        Ctx {
            _request: Some(self.state.request_started()),
            ..Ctx::blank()
        }
    }

    /// Runs before pingora's downstream modules: picks the server (its
    /// compression settings steer the compression module).
    async fn early_request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<()> {
        // HTTP/1.1 pipelining, as nginx serves it: requests that arrive
        // before the previous response was written are answered in order.
        // pingora's default drops them and closes the connection. The
        // setting is carried to the connection's later requests.
        if let HttpSession::H1(h1) = session.downstream_session.as_mut() {
            h1.set_pipelining_enabled(true);
        }
        let live = self.state.current();
        ctx.request_id = headers::RequestId::from_request(
            session
                .req_header()
                .headers
                .get(headers::X_REQUEST_ID.name()),
        );
        ctx.tls = session.digest().is_some_and(|d| d.ssl_digest.is_some());
        let req = session.req_header();
        ctx.refused =
            if !host_is_well_formed(session) || !sanitize::target_form_supported(req.raw_path()) {
                Some(400)
            } else if !sanitize::transfer_coding_supported(&req.headers) {
                Some(501)
            } else {
                None
            };
        if matches!(
            session.req_header().version,
            http::Version::HTTP_10 | http::Version::HTTP_11
        ) {
            sanitize::absolute_form_to_host(session.req_header_mut());
        }
        let local = session.server_addr().and_then(|a| a.as_inet()).copied();
        ctx.listener = live.cfg.listener_index(local);
        if let Some(l) = ctx.listener.map(|i| &live.cfg.listeners[i]) {
            let host = request_host(session).map(routing::strip_port).unwrap_or("");
            ctx.server = l.hosts.select(host);
        }
        let compression = live
            .cfg
            .servers
            .get(ctx.server)
            .and_then(|s| s.compression.as_ref())
            .is_some();
        ctx.live = Some(live);
        compression::negotiate(session, compression, &mut ctx.accept_encoding);
        Ok(())
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        let live = match &ctx.live {
            Some(l) => l.clone(),
            None => self.state.current(),
        };
        let Some(listener) = ctx.listener.map(|i| &live.cfg.listeners[i]) else {
            // A connection to an address a reload removed: this address no
            // longer serves anything; a client retries a 421 on a new
            // connection (RFC 9110 §15.5.20). This one is drained.
            session.set_keepalive(None);
            ctx.live = Some(live);
            return self.answer_error(session, ctx, 421).await.map(|_| true);
        };
        if let Some(status) = ctx.refused {
            // Malformed: nothing more is read from this connection.
            session.set_keepalive(None);
            ctx.live = Some(live);
            return self.answer_error(session, ctx, status).await.map(|_| true);
        }
        if ctx.tls && misdirected(session, &live, listener, ctx.server) {
            self.answer_error(session, ctx, 421).await?;
            return Ok(true);
        }
        let server = &live.cfg.servers[ctx.server];

        // The server sets how long an idle connection is kept, not whether:
        // a close the request asks for (HTTP/1.0 without `Connection:
        // keep-alive`, `Connection: close`) or pingora decided (a request
        // framed by both `Transfer-Encoding` and `Content-Length`, RFC 9112
        // §6.3) stands, so no further request is read from the connection.
        // `close` in any `Connection` line closes (RFC 9110 §7.6.1: the lines
        // are one list); pingora reads only the first.
        let close = session
            .req_header()
            .headers
            .get_all(header::CONNECTION)
            .iter()
            .any(|v| v.to_str().is_ok_and(|v| headers::has_token(v, "close")));
        if close {
            session.set_keepalive(None);
        } else if session.get_keepalive().is_some() {
            session.set_keepalive(Some(server.keepalive_timeout.as_secs()));
        }
        session.set_read_timeout(Some(server.client_body_timeout));

        let peer_ip = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());
        ctx.client_ip = peer_ip.map(|ip| {
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
        ctx.body_limit = server.max_body_size;
        ctx.live = Some(live.clone());

        if let Some(redirect) = server.https_redirect {
            let req = session.req_header();
            let host = request_host(session).map(routing::strip_port).unwrap_or("");
            let mut to = format!("https://{host}");
            if let Some(p) = redirect.port {
                to.push_str(&format!(":{p}"));
            }
            to.push_str(req.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"));
            let loc = HeaderValue::from_str(&to).unwrap_or(HeaderValue::from_static("/"));
            self.answer_status(session, ctx, redirect.status, &[(header::LOCATION, loc)])
                .await?;
            return Ok(true);
        }

        // A `Uri` clone shares its bytes: the path outlives the session borrow
        // without being copied.
        let uri = session.req_header().uri.clone();
        let path = match request_path::normalize(uri.path(), server.allow_encoded_slashes) {
            Ok(p) => p,
            Err(_) => {
                self.answer_error(session, ctx, 400).await?;
                return Ok(true);
            }
        };
        // The upstream gets the path routed on (`.`/`..` resolved, `//` merged).
        if let Cow::Owned(forward) = &path.forward {
            let target = match uri.query() {
                Some(q) => format!("{forward}?{q}"),
                None => forward.clone(),
            };
            match http::Uri::try_from(target) {
                Ok(u) => session.req_header_mut().set_uri(u),
                Err(_) => {
                    self.answer_error(session, ctx, 400).await?;
                    return Ok(true);
                }
            }
        }
        let path = path.matched;
        ctx.route = server.routes.select(&path);
        // The route's CORS policy, or the server's for a 404.
        ctx.cors = match ctx.route.map(|r| server.routes.get(r).cors) {
            Some(CorsChoice::Policy(i)) => Some(i),
            Some(CorsChoice::None) => None,
            None => server.cors,
        };
        let origin = session.req_header().headers.get(header::ORIGIN).cloned();
        if let (Some(p), Some(o)) = (ctx.cors.map(|i| &live.cfg.cors[i]), &origin) {
            if o.to_str().is_ok_and(|o| crate::cors::origin_allowed(p, o)) {
                ctx.cors_origin = Some(o.clone());
            }
        }
        let Some(route_idx) = ctx.route else {
            self.answer_error(session, ctx, 404).await?;
            return Ok(true);
        };
        let route = server.routes.get(route_idx);

        // CORS preflight: answered here, never proxied (before rate limits,
        // as nginx answers them in its rewrite phase).
        let req = session.req_header();
        let preflight = match (req.method == http::Method::OPTIONS, &origin) {
            // Only then is the header looked up: this runs on every request.
            (true, Some(_)) => req
                .headers
                .get(header::ACCESS_CONTROL_REQUEST_METHOD)
                .and_then(|m| m.to_str().ok()),
            _ => None,
        };
        if let (Some(p), Some(o), Some(m)) =
            (ctx.cors.map(|i| &live.cfg.cors[i]), &origin, preflight)
        {
            let requested = req
                .headers
                .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
                .and_then(|h| h.to_str().ok());
            ctx.preflight = true;
            match crate::cors::preflight(p, o, m, requested) {
                crate::cors::Preflight::Allowed(headers) => {
                    self.answer(
                        session,
                        ctx,
                        204,
                        &HeaderValue::from_static("text/plain"),
                        Bytes::new(),
                        &headers,
                    )
                    .await?;
                }
                crate::cors::Preflight::Forbidden => self.answer_error(session, ctx, 403).await?,
            }
            return Ok(true);
        }

        // Browsers do not apply CORS to WebSockets: a page from any site can
        // open one with the user's cookies (cross-site WebSocket hijacking).
        // Where a CORS policy names the origins, an upgrade from a browser
        // origin it does not list, other than the site's own, is refused;
        // clients that send no Origin are not browsers and pass.
        if ctx.cors.is_some()
            && ctx.cors_origin.is_none()
            && session.is_upgrade_req()
            && origin.as_ref().is_some_and(|o| {
                !crate::cors::same_origin(o.as_bytes(), ctx.tls, request_host(session))
            })
        {
            self.answer_error(session, ctx, 403).await?;
            return Ok(true);
        }

        if !route.rate_limits.is_empty() {
            match rate_limit(session, ctx, &live, route) {
                Ok(wait) if wait.is_zero() => {}
                // nginx delays excess requests so that they leave at `rate`.
                Ok(wait) => tokio::time::sleep(wait).await,
                Err((status, retry_after)) => {
                    let retry = [(header::RETRY_AFTER, HeaderValue::from(retry_after))];
                    self.answer_status(session, ctx, status, &retry).await?;
                    return Ok(true);
                }
            }
        }

        if let (Some(limit), Some(len)) = (
            server.max_body_size,
            session
                .req_header()
                .headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok()),
        ) {
            if len > limit {
                // The body stays unread: close rather than drain it.
                session.set_keepalive(None);
                self.answer_error(session, ctx, 413).await?;
                return Ok(true);
            }
        }

        match &route.action {
            Action::Upstream(u) => {
                ctx.upstream = Some(*u);
                if let Some(t) = &route.timeouts {
                    // Upgraded connections (WebSocket) idle out on the route's read timeout.
                    if session.is_upgrade_req() {
                        session.set_read_timeout(Some(t.read));
                    }
                }
                Ok(false)
            }
            Action::Respond {
                status,
                body,
                content_type,
            } => {
                let (status, body, ct) = (*status, body.clone(), content_type.clone());
                self.answer(session, ctx, status, &ct, body, &[]).await?;
                Ok(true)
            }
            Action::Redirect { to, status } => {
                let req = session.req_header();
                let host = request_host(session).map(routing::strip_port).unwrap_or("");
                let target = render_redirect(to, host, req.uri.path(), req.uri.query());
                let loc = HeaderValue::from_str(&target).unwrap_or(HeaderValue::from_static("/"));
                let status = *status;
                self.answer_status(session, ctx, status, &[(header::LOCATION, loc)])
                    .await?;
                Ok(true)
            }
            Action::Static(st) => {
                self.serve_static(session, ctx, st, &path).await?;
                Ok(true)
            }
        }
    }

    async fn upstream_peer(&self, session: &mut Session, ctx: &mut Ctx) -> Result<Box<HttpPeer>> {
        // A retry releases the previous attempt's slot first.
        ctx.in_flight = None;
        let (Some(live), Some(u)) = (ctx.live.clone(), ctx.upstream) else {
            return Error::e_explain(ErrorType::InternalError, "no upstream for this route");
        };
        let up = &live.cfg.upstreams[u];
        let pool = &live.pools[u];
        let Some(i) = pool.pick(up, ctx.tried) else {
            // Every server was tried (or none resolves): report the last failure.
            let code = ctx.last_failure.unwrap_or(502);
            return Error::e_explain(
                ErrorType::HTTPStatus(code),
                "no upstream server left to try",
            );
        };
        // Connections beyond `keepalive` concurrent ones are closed after
        // use, so at most `keepalive` idle connections per pool remain.
        // An upgraded connection is never reusable for HTTP afterwards.
        let keep_idle = pool.in_flight() < up.keepalive as i64 && !session.is_upgrade_req();
        ctx.tried |= 1u64 << (i % 64);
        ctx.attempts += 1;
        ctx.current = Some(i);
        ctx.in_flight = Some(InFlight::acquire(&pool.backends[i]));
        let Some(socket) = pool.sockets[i] else {
            return Error::e_explain(ErrorType::InternalError, "unresolved server picked");
        };
        let (_, route) = Self::server_route(&live, ctx);
        let timeouts = route.and_then(|r| r.timeouts).unwrap_or(up.timeouts);
        Ok(Box::new(peer::build(
            up,
            &up.servers[i],
            socket,
            &timeouts,
            keep_idle,
        )))
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut Ctx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        let timeout = is_timeout(&e);
        self.record_attempt(
            ctx,
            if timeout {
                Outcome::Timeout
            } else {
                Outcome::ConnectError
            },
        );
        ctx.last_failure = Some(if timeout { 504 } else { 502 });
        // Nothing was sent: any method may go to the next server.
        if ctx.attempts < self.tries(ctx) {
            e.set_retry(true);
        }
        e
    }

    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut Ctx,
        client_reused: bool,
    ) -> Box<Error> {
        let mut e = e.more_context(format!("Peer: {peer}"));
        if ctx.retry_5xx.take().is_some() {
            // Our own decision in upstream_response_filter.
            e.set_retry(true);
            return e;
        }
        let from_upstream = e.esource() == &pingora::ErrorSource::Upstream;
        let before_head = ctx.upstream_status.is_none();
        if from_upstream && before_head {
            let timeout = is_timeout(&e);
            self.record_attempt(
                ctx,
                if timeout {
                    Outcome::Timeout
                } else {
                    Outcome::Error
                },
            );
            ctx.last_failure = Some(if timeout { 504 } else { 502 });
        }
        // Retry only what is safe to send twice: an idempotent request whose
        // body (if any) was not sent, failing before the response head.
        let safe = session.req_header().method.is_idempotent()
            && ctx.body_seen == 0
            && !session.as_ref().retry_buffer_truncated();
        if from_upstream && before_head && safe && ctx.attempts < self.tries(ctx) {
            e.set_retry(true);
        } else if safe {
            // A stale pooled connection: pingora's own rule (retry once on
            // a fresh connection).
            e.retry.decide_reuse(client_reused);
        } else {
            e.set_retry(false);
        }
        e
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        req: &mut pingora::http::RequestHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        let Some(live) = ctx.live.clone() else {
            return Ok(());
        };
        let (server, route) = Self::server_route(&live, ctx);
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
                .client_ip
                .or(peer_ip)
                .unwrap_or(IpAddr::from([0, 0, 0, 0])),
            peer_ip,
            tls: ctx.tls,
            host: request_host_value(session).or_else(|| host_for_hostless(session, &live, ctx)),
            request_id: &ctx.request_id,
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

    async fn request_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<Bytes>,
        eos: bool,
        ctx: &mut Ctx,
    ) -> Result<()> {
        if let Some(b) = body.as_ref() {
            ctx.body_seen += b.len() as u64;
            // After a 101 these are tunnel bytes (WebSocket frames), not a body.
            if ctx.body_limit.is_some_and(|l| ctx.body_seen > l) && !session.was_upgraded() {
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
        }
        Ok(())
    }

    async fn upstream_response_filter(
        &self,
        session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        let status = resp.status.as_u16();
        self.record_attempt(ctx, Outcome::Ok);
        // 502/503/504 from one server: another may do better, if resending
        // is safe and there is another server to ask.
        if matches!(status, 502..=504)
            && session.req_header().method.is_idempotent()
            && ctx.body_seen == 0
            && ctx.attempts < self.tries(ctx)
            && self.has_untried(ctx)
        {
            ctx.retry_5xx = Some(status);
            ctx.last_failure = Some(status);
            let mut e = Error::explain(
                ErrorType::HTTPStatus(status),
                "upstream answered 5xx; trying the next server",
            );
            e.set_retry(true);
            return Err(e);
        }
        ctx.upstream_status = Some(status);
        headers::strip_response_hop_by_hop(resp);
        Ok(())
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        self.finish_head(session, ctx, resp);
        // Once per request: a retried 101 (the first write failed) is the same tunnel.
        if resp.status.as_u16() == 101 && !ctx.websocket {
            if let Some(live) = ctx.live() {
                let (server, route) = Self::server_route(live, ctx);
                route
                    .map(|r| &r.metrics)
                    .unwrap_or(&server.unrouted)
                    .websockets()
                    .inc();
                ctx.websocket = true;
            }
        }
        Ok(())
    }

    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, ctx: &mut Ctx) -> FailToProxy {
        let code = match e.etype() {
            ErrorType::HTTPStatus(c) => *c,
            _ if is_timeout(e) && e.esource() != &pingora::ErrorSource::Downstream => 504,
            ErrorType::ReadTimedout => 408,
            _ => match e.esource() {
                pingora::ErrorSource::Upstream => 502,
                pingora::ErrorSource::Downstream => match e.etype() {
                    ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => 0,
                    _ => 400,
                },
                _ if ctx.upstream.is_some() && ctx.attempts > 0 => 502,
                _ => 500,
            },
        };
        if code > 0 && session.response_written().is_none() {
            session.set_keepalive(None);
            if ctx.live.is_none() {
                ctx.live = Some(self.state.current());
            }
            if let Err(err) = self.answer_error(session, ctx, code).await {
                tracing::debug!("cannot send error response: {err}");
            }
        }
        ctx.local_status = Some(code);
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    fn suppress_error_log(&self, _session: &Session, _ctx: &Ctx, e: &Error) -> bool {
        // Statuses rampart chose (413, ...) and clients that hang up are
        // part of normal traffic, not gateway errors (nginx logs them at info).
        let client_gone = e.esource() == &pingora::ErrorSource::Downstream
            && matches!(
                e.etype(),
                ErrorType::ConnectionClosed | ErrorType::ReadError | ErrorType::WriteError
            );
        if client_gone {
            tracing::debug!("client went away: {e}");
        }
        client_gone || matches!(e.etype(), ErrorType::HTTPStatus(_))
    }

    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut Ctx) {
        // A detached tunnel accounts for itself when it closes.
        if ctx.detached {
            return;
        }
        let Some(live) = ctx.live.clone() else { return };
        let status = session
            .response_written()
            .map(|r| r.status.as_u16())
            .or(ctx.local_status)
            .unwrap_or(0);
        let facts = line_wanted(&live, ctx).then(|| LineFacts::of(session));
        let bytes = (
            session.body_bytes_sent() as u64,
            session.body_bytes_read() as u64,
        );
        account(&live, ctx, status, bytes, facts.as_ref());
    }

    fn detaches_tunnels(&self) -> bool {
        true
    }

    /// Relays an upgraded connection in a task of its own, holding only
    /// what the relay and the final accounting need (see `tunnel`).
    fn detach_tunnel(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        t: pingora::proxy::DetachedTunnel,
    ) {
        let status = session
            .response_written()
            .map(|r| r.status.as_u16())
            .unwrap_or(101);
        let facts = ctx
            .live()
            .is_some_and(|live| line_wanted(live, ctx))
            .then(|| LineFacts::of(session).into_owned());
        // The whole context goes with the tunnel: its slots (in-flight count
        // for the balancer, the drain count for shutdown) stay taken while
        // the tunnel lives, and it has what the final accounting needs.
        let mut closing = std::mem::replace(
            ctx,
            Ctx {
                detached: true,
                ..Ctx::blank()
            },
        );
        // Header values share the request head's buffer (cookies and all):
        // the tunnel keeps none of them.
        closing.cors_origin = None;
        closing.accept_encoding = None;
        closing.request_id = closing.request_id.unshared();
        tokio::spawn(async move {
            let pingora::proxy::DetachedTunnel {
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
            if let Some(live) = closing.live.clone() {
                account(
                    &live,
                    &closing,
                    status,
                    (stats.to_client, stats.to_upstream),
                    facts.as_ref(),
                );
            }
        });
    }
}
