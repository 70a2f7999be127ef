//! Headers rampart adds: towards the upstream (who the client is) and
//! towards the client (security headers, configured headers, request id).
//!
//! Hop-by-hop request headers (`Connection` and what it nominates,
//! `Keep-Alive`, `TE`, `Trailer`, `Proxy-Connection`, `Upgrade` other than a
//! WebSocket handshake) are stripped by pingora's standard upstream request
//! policy before [`upstream_request`] runs; the integration tests hold it to
//! that.

use std::net::IpAddr;

use http::header::{self, HeaderName, HeaderValue};
use pingora::http::{RequestHeader, ResponseHeader};

use crate::config::snapshot::{Header, Route, Server};

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// What `security_headers = true` sends: (name, value, TLS servers only).
pub const SECURITY: [(&str, &str, bool); 5] = [
    (
        "Strict-Transport-Security",
        "max-age=31536000; includeSubDomains",
        true,
    ),
    ("X-Frame-Options", "DENY", false),
    ("X-Content-Type-Options", "nosniff", false),
    ("Referrer-Policy", "strict-origin-when-cross-origin", false),
    ("X-XSS-Protection", "0", false),
];

/// Who the request is from, as the upstream should learn it.
pub struct Forwarded<'a> {
    pub client_ip: IpAddr,
    pub peer_ip: Option<IpAddr>,
    pub tls: bool,
    pub host: Option<&'a str>,
    pub request_id: &'a str,
}

fn value(s: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(s).ok()
}

/// Sets the forwarding headers and the route's `request_headers`.
pub fn upstream_request(req: &mut RequestHeader, f: &Forwarded<'_>, extra: &[Header]) {
    let client = f.client_ip.to_string();
    let _ = req.insert_header(X_REAL_IP.clone(), client.as_str());

    // nginx $proxy_add_x_forwarded_for: what came in, then the TCP peer.
    let peer = f.peer_ip.map(|p| p.to_string()).unwrap_or(client);
    let mut xff = String::new();
    for v in req.headers.get_all(&X_FORWARDED_FOR) {
        if let Ok(s) = v.to_str() {
            if !xff.is_empty() {
                xff.push_str(", ");
            }
            xff.push_str(s.trim());
        }
    }
    if !xff.is_empty() {
        xff.push_str(", ");
    }
    xff.push_str(&peer);
    let _ = req.insert_header(X_FORWARDED_FOR.clone(), xff.as_str());
    let proto = if f.tls { "https" } else { "http" };
    let _ = req.insert_header(X_FORWARDED_PROTO.clone(), proto);
    if let Some(host) = f.host.and_then(value) {
        if req.headers.get(header::HOST).is_none() {
            let _ = req.insert_header(header::HOST, host.clone());
        }
        let _ = req.insert_header(X_FORWARDED_HOST.clone(), host);
    }
    if let Some(id) = value(f.request_id) {
        let _ = req.insert_header(X_REQUEST_ID.clone(), id);
    }
    for (n, v) in extra {
        let _ = req.insert_header(n.clone(), v.clone());
    }
}

/// Applies server and route response headers, security defaults, the
/// request id and the `Server` policy — to every response, rampart's own
/// errors included.
pub fn client_response(
    resp: &mut ResponseHeader,
    server: &Server,
    route: Option<&Route>,
    request_id: &str,
    tls: bool,
    server_header: bool,
) {
    if server_header {
        let _ = resp.insert_header(header::SERVER, "rampart");
    } else {
        resp.remove_header(&header::SERVER);
    }
    if server.security_headers {
        for (name, v, tls_only) in SECURITY {
            if tls_only && !tls {
                continue;
            }
            if resp.headers.contains_key(name) {
                continue;
            }
            let _ = resp.insert_header(name, v);
        }
    }
    for (n, v) in &server.response_headers {
        let _ = resp.insert_header(n.clone(), v.clone());
    }
    if let Some(r) = route {
        for (n, v) in &r.response_headers {
            let _ = resp.insert_header(n.clone(), v.clone());
        }
    }
    if let Some(id) = value(request_id) {
        let _ = resp.insert_header(X_REQUEST_ID.clone(), id);
    }
}

/// rampart's answer to a request refused before its head could be read as
/// HTTP (400) or before routing (405 for CONNECT): no server or route is
/// known yet, so it carries the security defaults (no HSTS: the transport is
/// not known either) and the global `Server` policy.
pub fn early_error(status: u16, server_header: bool) -> Option<(ResponseHeader, bytes::Bytes)> {
    let (body, content_type) = crate::respond::error_body(status, "", false);
    let mut resp = ResponseHeader::build(status, Some(8)).ok()?;
    resp.insert_header(header::CONTENT_TYPE, content_type)
        .ok()?;
    resp.insert_header(header::CONTENT_LENGTH, body.len())
        .ok()?;
    resp.insert_header(header::CONNECTION, "close").ok()?;
    if server_header {
        resp.insert_header(header::SERVER, "rampart").ok()?;
    }
    for (name, v, tls_only) in SECURITY {
        if !tls_only {
            resp.insert_header(name, v).ok()?;
        }
    }
    Some((resp, body))
}

/// Removes hop-by-hop headers an upstream response may carry.
pub fn strip_response_hop_by_hop(resp: &mut ResponseHeader) {
    for h in ["keep-alive", "proxy-connection", "trailer", "te"] {
        resp.remove_header(h);
    }
}

/// A request id from the client if it is sane (1–200 visible ASCII chars),
/// else a new one.
pub fn request_id(incoming: Option<&HeaderValue>) -> String {
    if let Some(v) = incoming {
        let b = v.as_bytes();
        if !b.is_empty() && b.len() <= 200 && b.iter().all(|c| c.is_ascii_graphic()) {
            if let Ok(s) = v.to_str() {
                return s.to_string();
            }
        }
    }
    new_request_id()
}

/// 32 hex digits: a per-process random prefix and a counter — unique,
/// cheap, and not guessable across restarts.
fn new_request_id() -> String {
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
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{:016x}{:016x}", *PREFIX, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids() {
        let a = request_id(None);
        let b = request_id(None);
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        let v = HeaderValue::from_static("abc-123");
        assert_eq!(request_id(Some(&v)), "abc-123");
        let bad = HeaderValue::from_static("has space");
        assert_eq!(request_id(Some(&bad)).len(), 32);
    }
}
