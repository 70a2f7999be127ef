use super::*;

#[test]
fn list_tokens_match_in_any_case() {
    assert!(has_token("private, No-Transform", "no-transform"));
    assert!(has_token("NO-TRANSFORM", "no-transform"));
    assert!(has_token("Origin, Accept-Encoding", "accept-encoding"));
    assert!(!has_token("no-transfor", "no-transform"));
    assert!(!has_token("", "no-transform"));
    assert!(!has_token("Origin", "accept-encoding"));
    assert!(!has_token("x-no-transform-y", "no-transform"));
}

#[test]
fn vary_is_added_once_and_not_under_a_star() {
    let vary = |existing: &[&str]| {
        let mut resp = ResponseHeader::build(200, None).unwrap();
        for v in existing {
            resp.append_header(header::VARY, *v).unwrap();
        }
        add_vary(&mut resp, "Accept-Encoding");
        let all: Vec<String> = resp
            .headers
            .get_all(header::VARY)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        all
    };
    assert_eq!(vary(&[]), ["Accept-Encoding"]);
    assert_eq!(vary(&["Origin"]), ["Origin", "Accept-Encoding"]);
    assert_eq!(
        vary(&["origin, accept-encoding"]),
        ["origin, accept-encoding"]
    );
    assert_eq!(vary(&["*"]), ["*"]);
}

#[test]
fn request_ids() {
    let a = RequestId::from_request(None);
    let b = RequestId::from_request(None);
    assert_eq!(a.as_str().len(), 32);
    assert!(a.as_str().bytes().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(a.as_str(), b.as_str());
    // Same process prefix, consecutive counters.
    assert_eq!(a.as_str()[..16], b.as_str()[..16]);
    let (na, nb) = (
        u64::from_str_radix(&a.as_str()[16..], 16).unwrap(),
        u64::from_str_radix(&b.as_str()[16..], 16).unwrap(),
    );
    assert!(nb > na);
    let v = HeaderValue::from_static("abc-123");
    assert_eq!(RequestId::from_request(Some(&v)).as_str(), "abc-123");
    assert_eq!(RequestId::from_request(Some(&v)).header(), v);
    let bad = HeaderValue::from_static("has space");
    assert_eq!(RequestId::from_request(Some(&bad)).as_str().len(), 32);
    let long = HeaderValue::from_str(&"a".repeat(201)).unwrap();
    assert_eq!(RequestId::from_request(Some(&long)).as_str().len(), 32);
}

#[test]
fn ip_values_match_display() {
    for ip in [
        "0.0.0.0",
        "1.2.3.4",
        "10.20.30.40",
        "100.200.255.9",
        "255.255.255.255",
        "127.0.0.1",
        "::1",
        "2001:db8::8a2e:370:7334",
        "::ffff:192.0.2.1",
    ] {
        let ip: IpAddr = ip.parse().unwrap();
        assert_eq!(ip_value(ip).to_str().unwrap(), ip.to_string());
    }
}

fn forwarded_headers(incoming_xff: &[&str], client: &str, peer: &str) -> RequestHeader {
    let mut req = RequestHeader::build("GET", b"/", None).unwrap();
    for v in incoming_xff {
        req.append_header("X-Forwarded-For", *v).unwrap();
    }
    let id = RequestId::from_request(Some(&HeaderValue::from_static("id-1")));
    let f = Forwarded {
        client_ip: client.parse().unwrap(),
        peer_ip: Some(peer.parse().unwrap()),
        tls: true,
        host: Some(HeaderValue::from_static("example.com:8443")),
        request_id: &id,
    };
    upstream_request(&mut req, &f, &[]);
    req
}

#[test]
fn forwarding_headers() {
    let get = |r: &RequestHeader, n: &str| {
        let all: Vec<_> = r
            .headers
            .get_all(n)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        all.join("|")
    };
    let r = forwarded_headers(&[], "10.0.0.1", "10.0.0.1");
    assert_eq!(get(&r, "x-real-ip"), "10.0.0.1");
    assert_eq!(get(&r, "x-forwarded-for"), "10.0.0.1");
    assert_eq!(get(&r, "x-forwarded-proto"), "https");
    assert_eq!(get(&r, "host"), "example.com:8443");
    assert_eq!(get(&r, "x-forwarded-host"), "example.com:8443");
    assert_eq!(get(&r, "x-request-id"), "id-1");
    // Behind a trusted proxy: the client from its header, the peer appended.
    let r = forwarded_headers(
        &["203.0.113.7", " 198.51.100.2 ", ""],
        "203.0.113.7",
        "10.0.0.2",
    );
    assert_eq!(get(&r, "x-real-ip"), "203.0.113.7");
    assert_eq!(
        get(&r, "x-forwarded-for"),
        "203.0.113.7, 198.51.100.2, 10.0.0.2"
    );
}

fn wire(write: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut buf = Vec::new();
    write(&mut buf);
    String::from_utf8(buf).unwrap()
}

#[test]
fn added_headers_are_spelled_as_nginx_spells_them() {
    let r = forwarded_headers(&[], "10.0.0.1", "10.0.0.1");
    let w = wire(|b| r.header_to_h1_wire(b));
    for line in [
        "X-Real-IP: 10.0.0.1\r\n",
        "X-Forwarded-For: 10.0.0.1\r\n",
        "X-Forwarded-Proto: https\r\n",
        "X-Forwarded-Host: example.com:8443\r\n",
        "X-Request-Id: id-1\r\n",
    ] {
        assert!(w.contains(line), "{line:?} in {w:?}");
    }
    // Each name's key is its spelling in lowercase (both are written
    // out by hand).
    let statics = [
        &X_REQUEST_ID,
        &X_REAL_IP,
        &X_FORWARDED_FOR,
        &X_FORWARDED_PROTO,
        &X_FORWARDED_HOST,
    ];
    for n in statics
        .into_iter()
        .chain(SECURITY.iter().map(|(n, _, _)| n))
    {
        assert_eq!(n.name().as_str(), n.as_str().to_ascii_lowercase());
    }
    // Every security default is there, spelled as in the table, and
    // only the TLS-only one is left out of an early error without TLS.
    let id = RequestId::generate();
    let (resp, _) = early_error(400, None, &id, false, true).unwrap();
    let w = wire(|b| resp.header_to_h1_wire(b));
    for (name, value, tls_only) in &SECURITY {
        let (name, value) = (name.as_str(), value.to_str().unwrap());
        assert_eq!(
            w.contains(&format!("{name}: {value}\r\n")),
            !tls_only,
            "{name} in {w:?}"
        );
    }
    assert!(w.contains("Server: rampart\r\n"), "{w:?}");
    assert!(
        w.contains(&format!("X-Request-Id: {}\r\n", id.as_str())),
        "{w:?}"
    );
}

#[test]
fn response_hop_by_hop_headers_are_stripped() {
    let mut resp = ResponseHeader::build(200, None).unwrap();
    resp.append_header("Keep-Alive", "timeout=5").unwrap();
    resp.append_header("TE", "trailers").unwrap();
    resp.append_header("Content-Type", "text/plain").unwrap();
    strip_response_hop_by_hop(&mut resp);
    assert!(resp.headers.get("keep-alive").is_none());
    assert!(resp.headers.get("te").is_none());
    assert_eq!(resp.headers.get("content-type").unwrap(), "text/plain");
    let mut plain = ResponseHeader::build(200, None).unwrap();
    plain.append_header("Content-Type", "text/plain").unwrap();
    strip_response_hop_by_hop(&mut plain);
    assert_eq!(plain.headers.len(), 1);
    // What the response's Connection names goes too, framing excepted.
    let mut named = ResponseHeader::build(200, None).unwrap();
    named.append_header("Connection", "X-Hop, close").unwrap();
    named
        .append_header("Connection", "Content-Length, x-other")
        .unwrap();
    named.append_header("X-Hop", "secret").unwrap();
    named.append_header("X-Other", "1").unwrap();
    named.append_header("Content-Length", "4").unwrap();
    named.append_header("X-Kept", "1").unwrap();
    strip_response_hop_by_hop(&mut named);
    assert!(named.headers.get("x-hop").is_none());
    assert!(named.headers.get("x-other").is_none());
    assert_eq!(named.headers["content-length"], "4");
    assert_eq!(named.headers["x-kept"], "1");
}

#[test]
fn event_streams_are_recognised_in_any_case_with_parameters() {
    let is = |ct: &str| {
        let mut h = http::HeaderMap::new();
        h.insert(http::header::CONTENT_TYPE, ct.parse().unwrap());
        is_event_stream(&h)
    };
    for yes in [
        "text/event-stream",
        "Text/Event-Stream",
        "text/event-stream; charset=utf-8",
        "text/event-stream ;charset=utf-8",
        " text/event-stream ",
    ] {
        assert!(is(yes), "{yes}");
    }
    for no in [
        "text/event-streams",
        "text/event-stream-x",
        "text/event",
        "text/plain",
        "application/json; x=text/event-stream",
        "",
    ] {
        assert!(!is(no), "{no}");
    }
    assert!(!is_event_stream(&http::HeaderMap::new()));
}
