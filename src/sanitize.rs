//! What of a client's request rampart refuses, and what it does not pass
//! on: the checks an edge makes before routing and before forwarding.
//! The path is `request_path`'s; the head's size and line count are
//! `head_deadline`'s (refused before the head is parsed); the request line's
//! form is pingora's parser's (`strict_request_line`, `server.rs`).

use http::header::{self, HeaderName};
use http::uri::{PathAndQuery, Uri};
use pingora::http::RequestHeader;

/// One `Transfer-Encoding` value naming exactly `chunked`.
pub fn coding_is_chunked(value: &[u8]) -> bool {
    let mut codings = crate::headers::list_tokens(value);
    matches!((codings.next(), codings.next()), (Some(c), None) if c.eq_ignore_ascii_case(b"chunked"))
}

/// The scheme and authority of an absolute-form target (`http://a.example:8080/x`),
/// `None` for any other form.
fn absolute_form_authority(raw: &[u8]) -> Option<&[u8]> {
    // Origin-form, nearly every request: no scan of the path for a colon.
    if raw.first() == Some(&b'/') {
        return None;
    }
    let colon = raw.iter().position(|&b| b == b':')?;
    let (scheme, rest) = raw.split_at(colon);
    let rest = rest.strip_prefix(b"://")?;
    if !scheme.eq_ignore_ascii_case(b"http") && !scheme.eq_ignore_ascii_case(b"https") {
        return None;
    }
    let end = rest
        .iter()
        .position(|&b| matches!(b, b'/' | b'?' | b'#'))
        .unwrap_or(rest.len());
    Some(&rest[..end])
}

/// A target rampart serves: origin-form (`/x`), `*` (OPTIONS), or
/// absolute-form with an `http`/`https` scheme. Any other (another scheme,
/// an authority-form target outside CONNECT) is a 400.
pub fn target_form_supported(raw: &[u8]) -> bool {
    raw.first() == Some(&b'/') || raw == b"*" || absolute_form_authority(raw).is_some()
}

/// An absolute-form target (`GET http://a.example/x HTTP/1.1`) names the
/// host (RFC 9112 §3.2.2): `Host` is set from it, and the target becomes
/// origin-form, so that server selection, the 421 check, rate-limit keys,
/// logs and the upstream all see one host, and the upstream gets the form
/// an origin server expects. (pingora keeps the authority out of the
/// parsed URI and would forward the whole URL.) Returns whether anything
/// changed.
pub fn absolute_form_to_host(req: &mut RequestHeader) -> bool {
    let Some(host) = absolute_form_authority(req.raw_path())
        .and_then(|a| http::HeaderValue::from_bytes(a).ok())
        .filter(|h| !h.is_empty())
    else {
        return false;
    };
    let origin_form = req
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    let _ = req.insert_header(header::HOST, host);
    req.set_uri(Uri::from(origin_form));
    true
}

/// Forwarding headers only a trusted proxy may set. rampart writes
/// `X-Forwarded-Host`, `-Proto` and `X-Real-IP` itself; the others would
/// tell the upstream a client-chosen scheme, port, prefix or path.
const ONLY_FROM_PROXIES: [&str; 8] = [
    "forwarded",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-forwarded-proto",
    "x-forwarded-prefix",
    "x-real-ip",
    "x-original-url",
    "x-rewrite-url",
];

/// Removes from the upstream's copy of the request what must not reach it:
/// forwarding headers a client that is not a trusted proxy wrote, and
/// (unless the server keeps them) header names with `_`, which WSGI/ASGI
/// servers read as the `-` name they could pose as. One pass over the names;
/// nothing is allocated unless something goes.
pub fn upstream_headers(req: &mut RequestHeader, peer_trusted: bool, keep_underscores: bool) {
    let drop = |n: &HeaderName| {
        let s = n.as_str();
        (!keep_underscores && s.as_bytes().contains(&b'_'))
            || (!peer_trusted
                && matches!(s.as_bytes().first(), Some(b'x' | b'f'))
                && ONLY_FROM_PROXIES.contains(&s))
    };
    if !req.headers.keys().any(drop) {
        return;
    }
    let gone: Vec<HeaderName> = req.headers.keys().filter(|n| drop(n)).cloned().collect();
    for n in gone {
        req.remove_header(&n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_form_names_the_host() {
        let mut req = RequestHeader::build("GET", b"http://b.example:8080/x?q=1", None).unwrap();
        req.insert_header("host", "a.example").unwrap();
        assert!(absolute_form_to_host(&mut req));
        assert_eq!(req.headers["host"], "b.example:8080");
        assert_eq!(req.uri.to_string(), "/x?q=1");
        assert_eq!(req.raw_path(), b"/x?q=1", "origin-form on the wire");
        let mut req = RequestHeader::build("GET", b"/x", None).unwrap();
        assert!(!absolute_form_to_host(&mut req));
        assert!(target_form_supported(b"/x"));
        assert!(target_form_supported(b"*"));
        assert!(target_form_supported(b"HTTPS://a/"));
        assert!(!target_form_supported(b"ftp://a/"));
        assert!(!target_form_supported(b"a.example:443"));
    }

    #[test]
    fn untrusted_forwarding_headers_and_underscores_are_removed() {
        let build = || {
            let mut req = RequestHeader::build("GET", b"/", None).unwrap();
            for (n, v) in [
                ("Forwarded", "for=1.2.3.4;proto=https"),
                ("X-Forwarded-Port", "443"),
                ("X-Forwarded-Prefix", "/admin"),
                ("X-Original-URL", "/admin"),
                ("X-Rewrite-URL", "/admin"),
                ("X_Forwarded_For", "1.2.3.4"),
                ("X-Custom", "kept"),
                ("Accept", "*/*"),
            ] {
                req.append_header(n, v).unwrap();
            }
            req
        };
        let names = |r: &RequestHeader| {
            let mut n: Vec<String> = r.headers.keys().map(|k| k.to_string()).collect();
            n.sort();
            n
        };
        let mut req = build();
        upstream_headers(&mut req, false, false);
        assert_eq!(names(&req), ["accept", "x-custom"]);
        let mut req = build();
        upstream_headers(&mut req, true, false);
        assert_eq!(names(&req).len(), 7, "a trusted proxy's are kept");
        let mut req = build();
        upstream_headers(&mut req, false, true);
        assert!(names(&req).contains(&"x_forwarded_for".to_string()));
    }
}
