//! CORS: which origins a policy admits, preflight answers, and the headers
//! of actual responses. Pure functions over a compiled [`CorsPolicy`].

use http::header::{self, HeaderName, HeaderValue};
use pingora::http::ResponseHeader;

use crate::config::snapshot::{CorsPolicy, OriginPattern};
use crate::headers;

/// Whether `origin` (as sent by the browser) is admitted by the policy.
pub fn origin_allowed(p: &CorsPolicy, origin: &str) -> bool {
    if p.any_origin {
        return true;
    }
    let origin = origin.trim();
    p.origins.iter().any(|o| match o {
        OriginPattern::Exact(e) => e.eq_ignore_ascii_case(origin),
        OriginPattern::Wildcard {
            scheme_and_prefix,
            suffix,
        } => {
            let lower = origin.to_ascii_lowercase();
            lower
                .strip_prefix(scheme_and_prefix.as_str())
                .and_then(|rest| rest.strip_suffix(suffix.as_str()))
                // `*.` is exactly one label.
                .is_some_and(|label| !label.is_empty() && !label.contains(['.', '/', ':']))
        }
    })
}

/// Whether `origin` is the request's own site: its `Host`, default ports
/// ignored. The scheme is not compared: behind a load balancer that
/// terminates TLS, a page served over https reaches rampart over plain HTTP
/// (`tls` only says which default port a bare `Host` implies). A site's own
/// page needs no CORS permission, and a WebSocket from it must not be taken
/// for a foreign one.
pub fn same_origin(origin: &[u8], tls: bool, host: Option<&str>) -> bool {
    let (Ok(origin), Some(host)) = (std::str::from_utf8(origin), host) else {
        return false;
    };
    let lower = origin.to_ascii_lowercase();
    let Some((authority, port)) = lower
        .strip_prefix("https://")
        .map(|a| (a, ":443"))
        .or_else(|| lower.strip_prefix("http://").map(|a| (a, ":80")))
    else {
        return false;
    };
    let origin_site = authority.strip_suffix(port).unwrap_or(authority);
    let host = host.trim().to_ascii_lowercase();
    let default_port = if tls { ":443" } else { ":80" };
    let host_site = host.strip_suffix(default_port).unwrap_or(&host);
    !origin_site.is_empty() && !origin_site.contains('/') && origin_site == host_site
}

/// Whether the answer varies by `Origin` (everything but a plain `"*"`).
pub fn varies(p: &CorsPolicy) -> bool {
    !p.any_origin || p.allow_credentials
}

/// The outcome of a preflight request.
#[derive(Debug, PartialEq, Eq)]
pub enum Preflight {
    /// 204 with these headers.
    Allowed(Vec<(HeaderName, HeaderValue)>),
    /// 403: origin, method or a requested header not admitted.
    Forbidden,
}

/// Answers a preflight (`OPTIONS` with `Origin` and
/// `Access-Control-Request-Method`).
pub fn preflight(
    p: &CorsPolicy,
    origin: &HeaderValue,
    method: &str,
    requested_headers: Option<&str>,
) -> Preflight {
    let Ok(origin_str) = origin.to_str() else {
        return Preflight::Forbidden;
    };
    if !origin_allowed(p, origin_str) {
        return Preflight::Forbidden;
    }
    let method = method.trim();
    let simple = matches!(method, "GET" | "HEAD" | "POST");
    if !simple && !p.allow_methods.iter().any(|m| m == method) {
        return Preflight::Forbidden;
    }
    for h in requested_headers.unwrap_or("").split(',') {
        let h = h.trim();
        if !h.is_empty() && !p.allow_headers.iter().any(|a| a.eq_ignore_ascii_case(h)) {
            return Preflight::Forbidden;
        }
    }
    let mut out = vec![(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        allow_origin_value(p, origin),
    )];
    if p.allow_credentials {
        out.push((
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        ));
    }
    out.push((
        header::ACCESS_CONTROL_ALLOW_METHODS,
        p.values.methods.clone(),
    ));
    if let Some(h) = &p.values.headers {
        out.push((header::ACCESS_CONTROL_ALLOW_HEADERS, h.clone()));
    }
    out.push((header::ACCESS_CONTROL_MAX_AGE, p.values.max_age.clone()));
    Preflight::Allowed(out)
}

fn allow_origin_value(p: &CorsPolicy, origin: &HeaderValue) -> HeaderValue {
    if p.any_origin && !p.allow_credentials {
        HeaderValue::from_static("*")
    } else {
        origin.clone()
    }
}

/// Sets the CORS headers of an actual response: the upstream's own
/// `Access-Control-*` headers are replaced, `Vary: Origin` added.
/// `origin`: the request's `Origin`, when the policy admits it.
pub fn apply(p: &CorsPolicy, origin: Option<&HeaderValue>, resp: &mut ResponseHeader) {
    for h in [
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        header::ACCESS_CONTROL_ALLOW_METHODS,
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        header::ACCESS_CONTROL_MAX_AGE,
    ] {
        resp.remove_header(&h);
    }
    if let Some(origin) = origin {
        let _ = resp.insert_header(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            allow_origin_value(p, origin),
        );
        if p.allow_credentials {
            let _ = resp.insert_header(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, "true");
        }
        if let Some(e) = &p.values.expose {
            let _ = resp.insert_header(header::ACCESS_CONTROL_EXPOSE_HEADERS, e.clone());
        }
    }
    if varies(p) {
        headers::add_vary(resp, "Origin");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::snapshot::CorsValues;
    use std::time::Duration;

    fn policy(origins: &[&str], credentials: bool) -> CorsPolicy {
        let any = origins.contains(&"*");
        let pats = origins
            .iter()
            .filter(|o| **o != "*")
            .map(|o| match o.split_once("://*") {
                Some((scheme, suffix)) => OriginPattern::Wildcard {
                    scheme_and_prefix: format!("{scheme}://"),
                    suffix: suffix.to_string(),
                },
                None => OriginPattern::Exact(o.to_string()),
            })
            .collect();
        CorsPolicy {
            name: "t".into(),
            any_origin: any,
            origins: pats,
            allow_methods: vec!["GET".into(), "PUT".into(), "DELETE".into()],
            allow_headers: vec!["authorization".into(), "content-type".into()],
            expose_headers: vec![],
            allow_credentials: credentials,
            max_age: Duration::from_secs(600),
            values: CorsValues::new(
                &["GET".into(), "PUT".into(), "DELETE".into()],
                &["Authorization".into(), "Content-Type".into()],
                &[],
                Duration::from_secs(600),
            ),
        }
    }

    #[test]
    fn origins() {
        let p = policy(&["https://app.example.com", "https://*.example.org"], true);
        assert!(origin_allowed(&p, "https://app.example.com"));
        assert!(origin_allowed(&p, "HTTPS://APP.example.com"));
        assert!(!origin_allowed(&p, "http://app.example.com"));
        assert!(!origin_allowed(&p, "https://app.example.com.evil.net"));
        assert!(origin_allowed(&p, "https://a.example.org"));
        assert!(
            !origin_allowed(&p, "https://x.a.example.org"),
            "one label only"
        );
        assert!(!origin_allowed(&p, "https://example.org"));
        assert!(!origin_allowed(&p, "https://evil-example.org"));
        assert!(origin_allowed(
            &policy(&["*"], false),
            "https://anything.test"
        ));
    }

    #[test]
    fn preflights() {
        let p = policy(&["https://app.example.com"], true);
        let o = HeaderValue::from_static("https://app.example.com");
        match preflight(&p, &o, "PUT", Some("Content-Type, authorization")) {
            Preflight::Allowed(h) => {
                let get = |n: HeaderName| {
                    h.iter()
                        .find(|(k, _)| *k == n)
                        .map(|(_, v)| v.to_str().unwrap().to_string())
                };
                assert_eq!(
                    get(header::ACCESS_CONTROL_ALLOW_ORIGIN).as_deref(),
                    Some("https://app.example.com")
                );
                assert_eq!(
                    get(header::ACCESS_CONTROL_ALLOW_CREDENTIALS).as_deref(),
                    Some("true")
                );
                assert_eq!(
                    get(header::ACCESS_CONTROL_ALLOW_METHODS).as_deref(),
                    Some("GET, PUT, DELETE")
                );
                assert_eq!(
                    get(header::ACCESS_CONTROL_ALLOW_HEADERS).as_deref(),
                    Some("Authorization, Content-Type")
                );
                assert_eq!(get(header::ACCESS_CONTROL_MAX_AGE).as_deref(), Some("600"));
            }
            f => panic!("{f:?}"),
        }
        assert_eq!(preflight(&p, &o, "PATCH", None), Preflight::Forbidden);
        assert_eq!(
            preflight(&p, &o, "PUT", Some("X-Secret")),
            Preflight::Forbidden
        );
        let evil = HeaderValue::from_static("https://evil.test");
        assert_eq!(preflight(&p, &evil, "GET", None), Preflight::Forbidden);
    }

    #[test]
    fn star_without_credentials_does_not_vary() {
        let p = policy(&["*"], false);
        assert!(!varies(&p));
        let mut resp = ResponseHeader::build(200, None).unwrap();
        resp.insert_header("access-control-allow-origin", "https://upstream-said.test")
            .unwrap();
        apply(
            &p,
            Some(&HeaderValue::from_static("https://x.test")),
            &mut resp,
        );
        assert_eq!(
            resp.headers
                .get_all("access-control-allow-origin")
                .iter()
                .count(),
            1
        );
        assert_eq!(resp.headers["access-control-allow-origin"], "*");
        assert!(resp.headers.get("vary").is_none());
    }

    #[test]
    fn same_origin_is_the_host_with_default_ports_ignored() {
        let yes = [
            ("https://chat.example.com", true, "chat.example.com"),
            ("https://chat.example.com", true, "chat.example.com:443"),
            ("https://chat.example.com:443", true, "chat.example.com"),
            ("HTTPS://Chat.Example.com", true, "chat.example.com"),
            ("http://127.0.0.1:8080", false, "127.0.0.1:8080"),
            ("http://localhost", false, "localhost:80"),
            // TLS ended in front of rampart: the page is https, rampart sees http.
            ("https://chat.example.com", false, "chat.example.com"),
        ];
        for (o, tls, host) in yes {
            assert!(
                same_origin(o.as_bytes(), tls, Some(host)),
                "{o} {tls} {host}"
            );
        }
        let no = [
            ("https://evil.example", true, "chat.example.com"),
            ("https://chat.example.com:8443", true, "chat.example.com"),
            ("http://chat.example.com:8080", false, "chat.example.com"),
            (
                "https://chat.example.com.evil.example",
                true,
                "chat.example.com",
            ),
            (
                "https://chat.example.com/path",
                true,
                "chat.example.com/path",
            ),
            ("null", true, "chat.example.com"),
            ("https://", true, ""),
        ];
        for (o, tls, host) in no {
            assert!(
                !same_origin(o.as_bytes(), tls, Some(host)),
                "{o} {tls} {host}"
            );
        }
        assert!(!same_origin(b"https://chat.example.com", true, None));
        assert!(!same_origin(b"https://\xff", true, Some("x")));
    }
}
