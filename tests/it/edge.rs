//! Edge hardening, tried as an attacker would, on raw sockets: malformed
//! heads, path confusion, host confusion, spoofed forwarding headers —
//! what the client gets back and what the upstream received.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use crate::common::*;

fn config(origin: SocketAddr, server_extra: &str, global: &str) -> String {
    Config::new()
        .global(global)
        .upstream("app", origin, "")
        .server(server_extra)
        .route("prefix = \"/admin/\"\nrespond = { status = 403, body = \"denied\\n\" }")
        .proxy("/", "app")
        .build()
}

/// One raw exchange on a fresh connection, read until the server closes it.
async fn send(port: u16, request: impl Into<Vec<u8>>) -> String {
    let request = request.into();
    tokio::task::spawn_blocking(move || exchange_until_close(port, &request).0)
        .await
        .unwrap()
}

fn status(resp: &str) -> &str {
    resp.get(9..12).unwrap_or(resp)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_request_lines_are_400_and_never_forwarded() {
    let origin = Origin::start("o").await;
    let g = Gateway::start(&config(origin.addr, "", ""));
    for line in [
        &b"GET /a b HTTP/1.1"[..],
        b"GET /a\x01b HTTP/1.1",
        b"GET /a\tb HTTP/1.1",
        b"GET /a\x7fb HTTP/1.1",
        b"GET /a\rb HTTP/1.1",
        b"GET /a\x00 HTTP/1.1",
    ] {
        let mut req = line.to_vec();
        req.extend_from_slice(b"\r\nHost: x\r\n\r\n");
        let resp = send(g.port, req).await;
        assert_eq!(status(&resp), "400", "{}: {resp}", line.escape_ascii());
        assert!(resp.contains("\r\nX-Request-Id: "), "{resp}");
    }
    // Pipelined behind a good request, in the same read: refused as well.
    let resp = send(
        g.port,
        "GET /fine HTTP/1.1\r\nHost: x\r\n\r\nGET /a b HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.contains("HTTP/1.1 400"), "{resp}");
    assert_eq!(origin.last().uri, "/fine");
    // Leading blank lines are allowed (RFC 9112 §2.2) and the request served.
    let resp = send(
        g.port,
        "\r\n\r\nGET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status(&resp), "200", "{resp}");
    assert_eq!(origin.hits(), 2);
    assert_eq!(origin.last().uri, "/ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_than_100_header_fields_is_431() {
    let origin = Origin::start("o").await;
    let g = Gateway::start(&config(origin.addr, "", ""));
    let head = |n: usize| {
        let mut h = String::from("GET /f HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
        for i in 0..n - 2 {
            h.push_str(&format!("X-F{i}: v\r\n"));
        }
        h + "\r\n"
    };
    // (The test origin, hyper, takes at most 100 fields itself, and rampart
    // adds five: the exact boundary is head_deadline's unit test.)
    assert_eq!(status(&send(g.port, head(95)).await), "200");
    let resp = send(g.port, head(101)).await;
    assert_eq!(status(&resp), "431", "{resp}");
    assert_eq!(status(&send(g.port, head(300)).await), "431");
    assert_eq!(origin.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_codings_other_than_chunked_are_501_and_close() {
    let origin = Origin::start("o").await;
    let g = Gateway::start(&config(origin.addr, "", ""));
    let resp = send(
        g.port,
        "POST /u HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    assert_eq!(status(&resp), "501", "{resp}");
    assert_eq!(
        resp.matches("HTTP/1.1").count(),
        1,
        "nothing after it is read: {resp}"
    );
    // A lone coding other than chunked (pingora refuses it before any hook).
    let resp = send(
        g.port,
        "POST /u HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\nX-Request-Id: te-1\r\n\r\nxyz",
    )
    .await;
    assert_eq!(status(&resp), "501", "{resp}");
    assert!(resp.contains("\r\nX-Request-Id: te-1\r\n"), "{resp}");
    // Two Transfer-Encoding lines are one list.
    let resp = send(
        g.port,
        "POST /u HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    )
    .await;
    assert_eq!(status(&resp), "501", "{resp}");
    // Plain chunked is proxied.
    let resp = send(
        g.port,
        "POST /u HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    )
    .await;
    assert_eq!(status(&resp), "200", "{resp}");
    assert_eq!(origin.hits(), 1);
    assert_eq!(origin.last().body_len, 5);
}

/// The route is chosen on the path the upstream receives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upstream_gets_the_path_that_was_routed_on() {
    let origin = Origin::start("o").await;
    let g = Gateway::start(&config(origin.addr, "", ""));
    let get = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    for (path, want, upstream_path) in [
        ("/admin/%2e%2e/public", "200", Some("/public")),
        ("/admin/.%2E/public?q=1", "200", Some("/public?q=1")),
        ("/a%20b/./c//d", "200", Some("/a%20b/c/d")),
        ("/x/../%61dmin/secret", "403", None),
        ("//admin/x", "403", None),
        ("/static/..//admin/x", "403", None),
        ("/admin/x/..%2F..%2Fpublic", "400", None),
        ("/admin%2Fx", "400", None),
        ("/admin\\x", "400", None),
        ("/a%00b", "400", None),
        ("/../etc/passwd", "400", None),
    ] {
        let before = origin.hits();
        let resp = send(g.port, get(path)).await;
        assert_eq!(status(&resp), want, "{path}: {resp}");
        match upstream_path {
            Some(p) => assert_eq!(origin.last().uri, p, "{path}"),
            None => assert_eq!(origin.hits(), before, "{path} reached the upstream"),
        }
    }
    drop(g);
    // Allowed encoded slashes: characters of a segment, forwarded as received.
    let g = Gateway::start(&config(origin.addr, "allow_encoded_slashes = true", ""));
    let resp = send(g.port, get("/files/a%2Fb/../c%2Fd")).await;
    assert_eq!(status(&resp), "200", "{resp}");
    assert_eq!(origin.last().uri, "/files/c%2Fd");
    let resp = send(g.port, get("/admin/x/..%2F..%2Fpublic")).await;
    assert_eq!(status(&resp), "403", "still under /admin/: {resp}");
}

/// An absolute-form target names the host: server selection and the
/// upstream's `Host` follow it, and the upstream gets origin-form.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absolute_form_target_names_the_host() {
    let origin = Origin::start("o").await;
    let toml = format!(
        "{}\n[[servers]]\nname = \"b\"\nlisten = [\"127.0.0.1:{{PORT}}\"]\nhosts = [\"b.example\"]\n[[servers.routes]]\nprefix = \"/\"\nupstream = \"app\"\n",
        config(origin.addr, "hosts = [\"a.example\"]", "")
    );
    let g = Gateway::start(&toml);
    let resp = send(
        g.port,
        "GET http://b.example/admin/x?y=1 HTTP/1.1\r\nHost: b.example\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status(&resp), "200", "server b (no /admin/ route): {resp}");
    let last = origin.last();
    assert_eq!(last.uri, "/admin/x?y=1");
    assert_eq!(last.header("host"), Some("b.example"));
    assert_eq!(last.header("x-forwarded-host"), Some("b.example"));
    // Whatever Host says (RFC 9112 §3.2.2): the target's host decides.
    let resp = send(
        g.port,
        "GET http://b.example/admin/y HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(
        status(&resp),
        "200",
        "server b, not a's /admin/ deny: {resp}"
    );
    assert_eq!(origin.last().uri, "/admin/y");
    assert_eq!(origin.last().header("host"), Some("b.example"));
    // HTTP/1.0 needs no Host: the target's is used.
    let resp = send(g.port, "GET http://B.example/z HTTP/1.0\r\n\r\n").await;
    assert_eq!(status(&resp), "200", "{resp}");
    assert_eq!(origin.last().uri, "/z");
    assert_eq!(origin.last().header("host"), Some("B.example"));
    // Another scheme is not served.
    let resp = send(
        g.port,
        "GET ftp://b.example/z HTTP/1.1\r\nHost: b.example\r\n\r\n",
    )
    .await;
    assert_eq!(status(&resp), "400", "{resp}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_headers_from_untrusted_peers_are_removed() {
    let origin = Origin::start("o").await;
    let spoofed = "GET /h HTTP/1.1\r\nHost: x\r\nForwarded: for=6.6.6.6;proto=https\r\nX-Forwarded-Port: 443\r\nX-Forwarded-Prefix: /admin\r\nX-Original-URL: /admin/x\r\nX-Rewrite-URL: /admin/x\r\nX-Forwarded-Host: evil.example\r\nX-Forwarded-Proto: https\r\nX-Real-IP: 6.6.6.6\r\nX_Forwarded_For: 6.6.6.6\r\nX-Api_Key: k\r\nConnection: close\r\n\r\n";
    let g = Gateway::start(&config(origin.addr, "", ""));
    assert_eq!(status(&send(g.port, spoofed).await), "200");
    let last = origin.last();
    for gone in [
        "forwarded",
        "x-forwarded-port",
        "x-forwarded-prefix",
        "x-original-url",
        "x-rewrite-url",
        "x_forwarded_for",
        "x-api_key",
    ] {
        assert_eq!(last.header(gone), None, "{gone} reached the upstream");
    }
    assert_eq!(last.header("x-forwarded-host"), Some("x"));
    assert_eq!(last.header("x-forwarded-proto"), Some("http"));
    assert_eq!(last.header("x-real-ip"), Some("127.0.0.1"));
    drop(g);
    // From a trusted proxy they pass; `underscores_in_headers` keeps `_` names.
    let g = Gateway::start(&config(
        origin.addr,
        "underscores_in_headers = true",
        "trusted_proxies = [\"127.0.0.1\"]",
    ));
    assert_eq!(status(&send(g.port, spoofed).await), "200");
    let last = origin.last();
    for kept in [
        "forwarded",
        "x-forwarded-port",
        "x-original-url",
        "x_forwarded_for",
        "x-api_key",
    ] {
        assert!(last.header(kept).is_some(), "{kept} dropped: {last:?}");
    }
}

/// A raw origin whose response names a header in `Connection`.
async fn hop_origin() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        for _ in 0..10 {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: X-Hop, close\r\nX-Hop: secret\r\nX-End: kept\r\n\r\nok")
                .await;
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_the_upstream_names_in_connection_do_not_reach_the_client() {
    let origin = hop_origin().await;
    let g = Gateway::start(&config(origin, "", ""));
    let resp = send(
        g.port,
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status(&resp), "200", "{resp}");
    let lower = resp.to_ascii_lowercase();
    assert!(!lower.contains("x-hop"), "{resp}");
    assert!(lower.contains("x-end: kept"), "{resp}");
    assert!(resp.ends_with("\r\n\r\nok"), "{resp}");
}

/// Bytes the client sent after a refused head are not read as a request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_read_after_a_refused_head() {
    let origin = Origin::start("o").await;
    let g = Gateway::start(&config(origin.addr, "", ""));
    let port = g.port;
    let got = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    })
    .await
    .unwrap();
    assert_eq!(got.matches("HTTP/1.1 ").count(), 1, "{got}");
    assert_eq!(origin.hits(), 0);
}

/// rampart's own answers do not read a large request body to keep the
/// connection: they answer and close. A small one is drained and the
/// connection kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_answers_close_instead_of_draining_a_large_body() {
    let origin = Origin::start("o").await;
    let g = Gateway::start(&config(origin.addr, "max_body_size = \"0\"", ""));
    let port = g.port;
    let (big, took) = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        // 1 GB announced, 1 KB sent: draining would wait for the rest.
        s.write_all(b"POST /admin/x HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n")
            .unwrap();
        s.write_all(&[b'a'; 1024]).unwrap();
        let start = std::time::Instant::now();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        (String::from_utf8_lossy(&out).into_owned(), start.elapsed())
    })
    .await
    .unwrap();
    assert!(big.starts_with("HTTP/1.1 403"), "{big}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    let small = send(
        g.port,
        "POST /admin/x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /admin/y HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(small.matches("HTTP/1.1 403").count(), 2, "{small}");
    assert_eq!(origin.hits(), 0);
}

/// `Connection` lines are one list (RFC 9110 §7.6.1): `close` in any of
/// them closes the connection, and nothing pipelined after it is read.
/// (Found by the differential test: pingora reads only the first line.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_in_any_connection_line_closes() {
    let origin = Origin::start("o").await;
    let g = Gateway::start(&config(origin.addr, "", ""));
    for first in [
        "HTTP/1.0\r\nConnection: keep-alive",
        "HTTP/1.1\r\nConnection: te",
    ] {
        let before = origin.hits();
        let resp = send(
            g.port,
            format!("GET /one {first}\r\nConnection: close\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\n\r\n"),
        )
        .await;
        assert_eq!(resp.matches(" 200 OK").count(), 1, "{resp}");
        assert_eq!(origin.hits(), before + 1);
        assert_eq!(origin.last().uri, "/one");
    }
}

/// The head checks start at each request's first byte: a body read after
/// the response began (here drained after rampart's own answer) is never
/// taken for a head, a pipelined head split across reads is checked as one
/// (and served when well-formed), and a malformed one is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heads_are_watched_from_each_request_start() {
    let origin = Origin::start("o").await;
    let g = Gateway::start(&config(origin.addr, "", ""));
    let port = g.port;
    let exchange = move |parts: Vec<Vec<u8>>| {
        tokio::task::spawn_blocking(move || {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            for p in parts {
                s.write_all(&p).unwrap();
                std::thread::sleep(Duration::from_millis(150));
            }
            let mut out = Vec::new();
            let _ = s.read_to_end(&mut out);
            String::from_utf8_lossy(&out).into_owned()
        })
    };
    // A body arriving after the 403 went out: binary, no line ends.
    let body: &[u8] = b"{\"a\": 1}\x01\x02 bin\tx";
    let got = exchange(vec![
        format!(
            "POST /admin/x HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes(),
        body.to_vec(),
        b"GET /admin/y HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
    ])
    .await
    .unwrap();
    assert_eq!(got.matches("HTTP/1.1 403").count(), 2, "{got}");
    assert!(!got.contains(" 400 "), "{got}");
    // A pipelined head split across reads: served.
    let got = exchange(vec![
        b"GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHo".to_vec(),
        b"st: x\r\nConnection: close\r\n\r\n".to_vec(),
    ])
    .await
    .unwrap();
    assert_eq!(got.matches("HTTP/1.1 200").count(), 2, "{got}");
    assert_eq!(origin.last().uri, "/two");
    // ... and refused when its request line is malformed.
    let before = origin.hits();
    let got = exchange(vec![
        b"GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /t wo HTTP/1.1\r\nHo".to_vec(),
        b"st: x\r\n\r\n".to_vec(),
    ])
    .await
    .unwrap();
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    assert!(got.contains("HTTP/1.1 400"), "{got}");
    assert_eq!(origin.hits(), before + 1);
}
