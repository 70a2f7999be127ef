//! Headers rampart adds: towards the upstream (who the client is) and
//! towards the client (security headers, configured headers, request id).
//!
//! Hop-by-hop request headers (`Connection` and what it nominates,
//! `Keep-Alive`, `TE`, `Trailer`, `Proxy-Connection`, `Upgrade` other than a
//! WebSocket handshake) are stripped by pingora's standard upstream request
//! policy before [`upstream_request`] runs; the integration tests hold it to
//! that.

use std::net::IpAddr;

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use pingora::http::{RequestHeader, ResponseHeader, WireHeaderName};

use crate::config::snapshot::{Header, Route, Server};

// Names rampart sets on every request and response, parsed at compile time
// and spelled as nginx deployments spell them: inserting one neither parses
// the name nor allocates.
pub static X_REQUEST_ID: WireHeaderName =
    WireHeaderName::from_static("X-Request-Id", HeaderName::from_static("x-request-id"));
static X_REAL_IP: WireHeaderName =
    WireHeaderName::from_static("X-Real-IP", HeaderName::from_static("x-real-ip"));
pub static X_FORWARDED_FOR: WireHeaderName = WireHeaderName::from_static(
    "X-Forwarded-For",
    HeaderName::from_static("x-forwarded-for"),
);
pub(crate) static X_FORWARDED_PROTO: WireHeaderName = WireHeaderName::from_static(
    "X-Forwarded-Proto",
    HeaderName::from_static("x-forwarded-proto"),
);
pub(crate) static X_FORWARDED_HOST: WireHeaderName = WireHeaderName::from_static(
    "X-Forwarded-Host",
    HeaderName::from_static("x-forwarded-host"),
);
/// Forward authentication's description of the request (`auth::forward`).
pub(crate) static X_FORWARDED_METHOD: WireHeaderName = WireHeaderName::from_static(
    "X-Forwarded-Method",
    HeaderName::from_static("x-forwarded-method"),
);
pub(crate) static X_FORWARDED_URI: WireHeaderName = WireHeaderName::from_static(
    "X-Forwarded-Uri",
    HeaderName::from_static("x-forwarded-uri"),
);
static SERVER_VALUE: HeaderValue = HeaderValue::from_static("rampart");

/// What `security_headers = true` sends: (name, value, TLS servers only).
pub static SECURITY: [(WireHeaderName, HeaderValue, bool); 5] = [
    security(
        "Strict-Transport-Security",
        "strict-transport-security",
        "max-age=31536000; includeSubDomains",
        true,
    ),
    security("X-Frame-Options", "x-frame-options", "DENY", false),
    security(
        "X-Content-Type-Options",
        "x-content-type-options",
        "nosniff",
        false,
    ),
    security(
        "Referrer-Policy",
        "referrer-policy",
        "strict-origin-when-cross-origin",
        false,
    ),
    security("X-XSS-Protection", "x-xss-protection", "0", false),
];

/// One row of [`SECURITY`], built at compile time (`key` is `spelling` in
/// lowercase).
const fn security(
    spelling: &'static str,
    key: &'static str,
    value: &'static str,
    tls_only: bool,
) -> (WireHeaderName, HeaderValue, bool) {
    (
        WireHeaderName::from_static(spelling, HeaderName::from_static(key)),
        HeaderValue::from_static(value),
        tls_only,
    )
}

/// Who the request is from, as the upstream should learn it.
pub struct Forwarded<'a> {
    pub client_ip: IpAddr,
    pub peer_ip: Option<IpAddr>,
    pub tls: bool,
    /// The request's `Host` (or its URI authority for HTTP/2).
    pub host: Option<HeaderValue>,
    pub request_id: &'a RequestId,
}

/// Sets the forwarding headers and the route's `request_headers`.
///
/// Runs on every proxied request: values are built without text formatting
/// and shared (a `HeaderValue` clone is a reference count) where they repeat.
pub fn upstream_request(req: &mut RequestHeader, f: &Forwarded<'_>, extra: &[Header]) {
    let client = ip_value(f.client_ip);
    // nginx $proxy_add_x_forwarded_for: what came in, then the TCP peer.
    let peer = match f.peer_ip {
        Some(p) if p != f.client_ip => ip_value(p),
        _ => client.clone(),
    };
    let xff = if req.headers.contains_key(X_FORWARDED_FOR.name()) {
        let mut xff = String::new();
        for v in req.headers.get_all(X_FORWARDED_FOR.name()) {
            match v.to_str().map(str::trim) {
                Ok(s) if !s.is_empty() => {
                    xff.push_str(s);
                    xff.push_str(", ");
                }
                _ => {}
            }
        }
        xff.push_str(peer.to_str().unwrap_or_default());
        HeaderValue::from_str(&xff).unwrap_or(peer)
    } else {
        peer
    };
    // The upstream copy is a clone with no spare room: make room once for
    // everything added below, instead of growing the maps on the way.
    req.reserve(5 + extra.len());
    let _ = req.insert_header(&X_REAL_IP, client);
    let _ = req.insert_header(&X_FORWARDED_FOR, xff);
    let proto = if f.tls { "https" } else { "http" };
    let _ = req.insert_header(&X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    if let Some(host) = &f.host {
        if !req.headers.contains_key(header::HOST) {
            let _ = req.insert_header(header::HOST, host.clone());
        }
        let _ = req.insert_header(&X_FORWARDED_HOST, host.clone());
    }
    let _ = req.insert_header(&X_REQUEST_ID, f.request_id.header());
    for (n, v) in extra {
        let _ = req.insert_header(n, v.clone());
    }
}

/// An IP address as a header value, without `fmt` for IPv4 (the common
/// case, twice per proxied request).
pub(crate) fn ip_value(ip: IpAddr) -> HeaderValue {
    let IpAddr::V4(v4) = ip else {
        return HeaderValue::from_str(&ip.to_string()).unwrap_or(HeaderValue::from_static(""));
    };
    let mut buf = [0u8; 15];
    let mut n = 0;
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            buf[n] = b'.';
            n += 1;
        }
        if octet >= 100 {
            buf[n] = b'0' + octet / 100;
            n += 1;
        }
        if octet >= 10 {
            buf[n] = b'0' + octet / 10 % 10;
            n += 1;
        }
        buf[n] = b'0' + octet % 10;
        n += 1;
    }
    shared_value(Bytes::from_owner(IpText { buf, len: n }))
}

/// An IPv4 address's text, kept inline by its [`Bytes`] owner.
struct IpText {
    buf: [u8; 15],
    len: usize,
}

impl AsRef<[u8]> for IpText {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len.min(self.buf.len())]
    }
}

/// A header value over `bytes` made by [`Bytes::from_owner`]: one
/// allocation, and clones (the upstream request's and the response's copy)
/// only count references. A value copied from a slice is promoted to a
/// shared one by its first clone, a second allocation.
fn shared_value(bytes: Bytes) -> HeaderValue {
    HeaderValue::from_maybe_shared(bytes).unwrap_or(HeaderValue::from_static(""))
}

/// Applies server and route response headers, security defaults, the
/// request id and the `Server` policy — to every response, rampart's own
/// errors included.
pub fn client_response(
    resp: &mut ResponseHeader,
    server: &Server,
    route: Option<&Route>,
    request_id: &RequestId,
    tls: bool,
    server_header: bool,
) {
    // A parsed upstream head has no spare room: make it once for all of these.
    let route_headers = route.map_or(&[][..], |r| r.response_headers.as_slice());
    resp.reserve(2 + SECURITY.len() + server.response_headers.len() + route_headers.len());
    if server_header {
        let _ = resp.insert_header(header::SERVER, SERVER_VALUE.clone());
    } else {
        resp.remove_header(&header::SERVER);
    }
    if server.security_headers {
        for (name, v, tls_only) in &SECURITY {
            if *tls_only && !tls {
                continue;
            }
            if resp.headers.contains_key(name.name()) {
                continue;
            }
            let _ = resp.insert_header(name, v.clone());
        }
    }
    for (n, v) in server.response_headers.iter().chain(route_headers) {
        let _ = resp.insert_header(n, v.clone());
    }
    let _ = resp.insert_header(&X_REQUEST_ID, request_id.header());
}

/// rampart's answer to a request refused before it could be routed: a
/// head that is not HTTP (400), CONNECT (405), a head too large (431).
/// `server` is the default server of the address the connection came to
/// (the `Host` could not be read or was not looked at): its configured and
/// security headers go out as on every other answer, with the request id.
pub fn early_error(
    status: u16,
    server: Option<&Server>,
    request_id: &RequestId,
    tls: bool,
    server_header: bool,
) -> Option<(ResponseHeader, bytes::Bytes)> {
    let page = server.and_then(|s| s.error_pages.body(status));
    let (body, content_type) = match page {
        Some(page) => (page.clone(), crate::respond::HTML),
        None => crate::respond::error_body(status, request_id.as_str(), false),
    };
    let mut resp = ResponseHeader::build(status, Some(8)).ok()?;
    resp.insert_header(header::CONTENT_TYPE, content_type)
        .ok()?;
    resp.insert_header(header::CONTENT_LENGTH, body.len())
        .ok()?;
    resp.insert_header(header::CONNECTION, "close").ok()?;
    match server {
        Some(s) => client_response(&mut resp, s, None, request_id, tls, server_header),
        None => {
            if server_header {
                resp.insert_header(header::SERVER, SERVER_VALUE.clone())
                    .ok()?;
            }
            for (name, v, tls_only) in &SECURITY {
                if !tls_only || tls {
                    resp.insert_header(name, v.clone()).ok()?;
                }
            }
            resp.insert_header(&X_REQUEST_ID, request_id.header())
                .ok()?;
        }
    }
    Some((resp, body))
}

/// Whether the comma-separated header list `value` has `token` (ASCII
/// case-insensitive), e.g. `no-transform` in `Cache-Control`.
pub fn has_token(value: &str, token: &str) -> bool {
    list_tokens(value.as_bytes()).any(|t| t.eq_ignore_ascii_case(token.as_bytes()))
}

/// The non-empty elements of a comma-separated header value (RFC 9110
/// §5.6.1), whitespace trimmed. Bytes, not `str`: a byte split costs less
/// than a `char` pattern, and this runs on every response's `Connection`.
pub fn list_tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
}

/// Appends `Vary: name` unless the response already varies on it (or on
/// everything, `*`).
pub fn add_vary(resp: &mut ResponseHeader, name: &'static str) {
    let listed = resp.headers.get_all(header::VARY).iter().any(|v| {
        v.to_str()
            .is_ok_and(|s| has_token(s, name) || has_token(s, "*"))
    });
    if !listed {
        let _ = resp.append_header(header::VARY, name);
    }
}

/// Removes hop-by-hop headers an upstream response may carry: the fixed
/// ones and those its `Connection` header names (RFC 9110 §7.6.1), but
/// never the framing ones (`Content-Length`, `Transfer-Encoding`, which the
/// response's length depends on) or `Upgrade` (a 101 needs it); at most 10
/// names, as pingora caps a request's.
pub fn strip_response_hop_by_hop(resp: &mut ResponseHeader) {
    const HOP: [&str; 4] = ["keep-alive", "proxy-connection", "trailer", "te"];
    const NEVER: [&str; 4] = [
        "content-length",
        "transfer-encoding",
        "upgrade",
        "connection",
    ];
    let named: Vec<HeaderName> = resp
        .headers
        .get_all(header::CONNECTION)
        .iter()
        // The usual values name no header: nothing to split or allocate.
        .filter(|v| {
            let v = v.as_bytes();
            !v.eq_ignore_ascii_case(b"keep-alive") && !v.eq_ignore_ascii_case(b"close")
        })
        .flat_map(|v| list_tokens(v.as_bytes()))
        .filter(|t| !t.eq_ignore_ascii_case(b"close") && !t.eq_ignore_ascii_case(b"keep-alive"))
        .filter_map(|t| HeaderName::from_bytes(t).ok())
        .filter(|n| !NEVER.contains(&n.as_str()))
        .take(10)
        .collect();
    for n in &named {
        resp.remove_header(n);
    }
    // One pass over the names present; a hashed lookup per name would cost
    // more on every response than the rare removal.
    if !resp.headers.keys().any(|n| HOP.contains(&n.as_str())) {
        return;
    }
    for h in HOP {
        resp.remove_header(h);
    }
}

/// A request's id: 1–200 visible ASCII bytes, so it is valid both as a
/// header value and as text. Cloning shares the bytes, so it is set on the
/// upstream request and the response without copying.
#[derive(Clone, Debug)]
pub struct RequestId(HeaderValue);

impl Default for RequestId {
    fn default() -> Self {
        RequestId(HeaderValue::from_static(""))
    }
}

impl RequestId {
    /// The client's id if it is sane, else a new one.
    pub fn from_request(incoming: Option<&HeaderValue>) -> Self {
        match incoming {
            Some(v) if Self::acceptable(v.as_bytes()) => RequestId(v.clone()),
            _ => Self::generate(),
        }
    }

    fn acceptable(b: &[u8]) -> bool {
        !b.is_empty() && b.len() <= 200 && b.iter().all(|c| c.is_ascii_graphic())
    }

    /// 32 hex digits: a per-process random prefix and a counter — unique,
    /// cheap, and not guessable across restarts.
    pub fn generate() -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        use std::sync::LazyLock;
        static PREFIX: LazyLock<u64> = LazyLock::new(|| {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0),
            );
            h.write_u32(std::process::id());
            h.finish()
        });
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut buf = [0u8; 32];
        for (i, word) in [*PREFIX, n].into_iter().enumerate() {
            for j in 0..16 {
                buf[i * 16 + j] = HEX[(word >> (60 - 4 * j)) as usize & 0xf];
            }
        }
        RequestId(shared_value(Bytes::from_owner(buf)))
    }

    pub fn as_str(&self) -> &str {
        // Visible ASCII by construction.
        self.0.to_str().unwrap_or_default()
    }

    /// The same id in a buffer of its own (a client's id shares the
    /// request head's buffer).
    pub fn unshared(&self) -> RequestId {
        RequestId(
            HeaderValue::from_bytes(self.0.as_bytes()).unwrap_or(HeaderValue::from_static("")),
        )
    }

    pub fn header(&self) -> HeaderValue {
        self.0.clone()
    }
}

/// Whether a response is an event stream (`text/event-stream`, any case,
/// parameters aside): its events must reach the client as they are sent,
/// neither compressed nor read ahead.
pub fn is_event_stream(headers: &http::HeaderMap) -> bool {
    const EVENT_STREAM: &[u8] = b"text/event-stream";
    let Some(v) = headers.get(http::header::CONTENT_TYPE) else {
        return false;
    };
    // On the bytes: this runs for every response.
    let v = v.as_bytes().trim_ascii();
    let (Some(base), rest) = (v.get(..EVENT_STREAM.len()), v.get(EVENT_STREAM.len()..)) else {
        return false;
    };
    base.eq_ignore_ascii_case(EVENT_STREAM)
        && rest.is_some_and(|r| r.trim_ascii_start().first().is_none_or(|c| *c == b';'))
}

#[cfg(test)]
mod tests;
