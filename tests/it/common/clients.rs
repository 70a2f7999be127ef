//! HTTP clients and assertions on what a client sees.

use super::*;

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// An HTTP/2-only (prior knowledge, over TLS) client trusting the test CA.
pub fn h2_client() -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(fixture("ca.pem")).unwrap()).unwrap();
    reqwest::Client::builder()
        .no_proxy()
        .use_rustls_tls()
        .add_root_certificate(ca)
        .http2_prior_knowledge()
        .build()
        .unwrap()
}

/// Headers as a lowercase map (last value wins) for assertions.
pub fn header_map(r: &reqwest::Response) -> HashMap<String, String> {
    r.headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect()
}

pub const SECURITY: [(&str, &str); 4] = [
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "strict-origin-when-cross-origin"),
    ("x-xss-protection", "0"),
];

#[track_caller]
pub fn assert_security_headers(h: &HashMap<String, String>) {
    for (n, v) in SECURITY {
        assert_eq!(h.get(n).map(String::as_str), Some(v), "{n} in {h:#?}");
    }
    assert!(
        !h.contains_key("strict-transport-security"),
        "no HSTS on plain HTTP"
    );
    assert!(
        !h.contains_key("server"),
        "no Server header by default: {h:#?}"
    );
    assert!(h.contains_key("x-request-id"));
}
