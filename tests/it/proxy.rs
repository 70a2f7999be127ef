//! The gateway end to end: the real binary, real loopback origins, real clients.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::common::*;

fn base(origin: SocketAddr, global: &str, routes: &str) -> String {
    Config::new()
        .global(&format!("grace_period = \"5s\"\n{global}"))
        .log("access_log = \"stdout\"")
        .upstream("app", origin, "read_timeout = \"5s\"")
        .server("max_body_size = \"1k\"\n[servers.response_headers]\n\"X-Server-Wide\" = \"yes\"")
        .routes(routes)
        .build()
}

const PROXY_ALL: &str = r#"
[[servers.routes]]
prefix = "/"
upstream = "app"
"#;

/// `/here` answered by rampart itself, everything else proxied.
const HERE_AND_PROXY: &str = r#"
[[servers.routes]]
exact = "/here"
respond = { body = "from rampart" }
[[servers.routes]]
prefix = "/"
upstream = "app"
"#;

/// A raw HTTP/1.1 exchange, for requests reqwest would normalise.
fn raw(port: u16, request: &str) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if String::from_utf8_lossy(&out).contains("\r\n\r\n")
                    && request.contains("Connection: close")
                {
                    continue;
                }
                if out.windows(4).any(|w| w == b"\r\n\r\n")
                    && !request.contains("Connection: close")
                {
                    break;
                }
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_precedence_exact_then_regex_in_file_order_then_longest_prefix() {
    let origin = Origin::start("o").await;
    let routes = r#"
[[servers.routes]]
prefix = "/"
respond = { body = "prefix /" }
[[servers.routes]]
prefix = "/api/"
respond = { body = "prefix /api/" }
[[servers.routes]]
prefix = "/api/optimize"
respond = { body = "prefix /api/optimize" }
[[servers.routes]]
regex = "^/api/(auth|login)"
respond = { body = "regex auth" }
[[servers.routes]]
regex = "^/api/a"
respond = { body = "regex a" }
[[servers.routes]]
exact = "/api/auth"
respond = { body = "exact auth" }
"#;
    let g = Gateway::start(&base(origin.addr, "", routes));
    let c = client();
    for (path, want) in [
        ("/api/auth", "exact auth"),
        ("/api/authx", "regex auth"),
        ("/api/abc", "regex a"),
        ("/api/optimize/run", "prefix /api/optimize"),
        ("/api/x", "prefix /api/"),
        ("/x", "prefix /"),
        ("/x/../api/auth", "exact auth"),
        ("/%61pi/auth", "exact auth"),
    ] {
        let r = c.get(g.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.text().await.unwrap(), want, "{path}");
    }
    // Dot segments are resolved before matching; escaping the root is a 400.
    let resp = raw(
        g.port,
        "GET /a/../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
    let resp = raw(g.port, "GET /api/%2e%2e/auth HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert_eq!(origin.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmatched_path_is_404_with_all_headers_and_json_when_preferred() {
    let origin = Origin::start("o").await;
    let routes = "[[servers.routes]]\nprefix = \"/api/\"\nupstream = \"app\"\n";
    let g = Gateway::start(&base(origin.addr, "", routes));
    let r = client().get(g.url("/nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let h = header_map(&r);
    assert_security_headers(&h);
    assert_eq!(h["x-server-wide"], "yes");
    assert_eq!(h["content-type"], "text/plain; charset=utf-8");
    assert_eq!(r.text().await.unwrap(), "404 Not Found\n");
    let r = client()
        .get(g.url("/nope"))
        .header("accept", "application/json")
        .header("x-request-id", "abc123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["x-request-id"], "abc123");
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        v,
        serde_json::json!({"status": 404, "error": "Not Found", "request_id": "abc123"})
    );
    assert_eq!(origin.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn respond_and_redirect_actions() {
    let origin = Origin::start("o").await;
    let routes = r#"
[[servers.routes]]
exact = "/teapot"
respond = { status = 418, body = "short and stout", content_type = "text/x-tea" }
[[servers.routes]]
prefix = "/old/"
redirect = { to = "https://{host}/new{uri}", status = 301 }
[[servers.routes]]
prefix = "/parts/"
redirect = { to = "/p?path={path}&q={query}", status = 307 }
"#;
    let g = Gateway::start(&base(origin.addr, "", routes));
    let c = client();
    let r = c.get(g.url("/teapot")).send().await.unwrap();
    assert_eq!(r.status(), 418);
    assert_eq!(r.headers()["content-type"], "text/x-tea");
    assert_security_headers(&header_map(&r));
    assert_eq!(r.text().await.unwrap(), "short and stout");

    let r = c
        .get(g.url("/old/a/b?x=1&y=2"))
        .header("host", "example.com:8080")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 301);
    assert_eq!(
        r.headers()["location"],
        "https://example.com/new/old/a/b?x=1&y=2"
    );
    assert_security_headers(&header_map(&r));

    let r = c.get(g.url("/parts/z?k=v")).send().await.unwrap();
    assert_eq!(r.status(), 307);
    assert_eq!(r.headers()["location"], "/p?path=/parts/z&q=k=v");
    // HEAD gets the head only.
    let r = c.head(g.url("/teapot")).send().await.unwrap();
    assert_eq!(r.status(), 418);
    assert_eq!(r.headers()["content-length"], "15");
    assert_eq!(origin.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_redirect_server_keeps_path_and_query() {
    let origin = Origin::start("o").await;
    let toml = format!(
        "{}\n[[servers]]\nname = \"redirect\"\nlisten = [\"127.0.0.1:{{PORT2}}\"]\nhttps_redirect = true\n",
        base(origin.addr, "", PROXY_ALL)
    );
    let port2 = free_port();
    let g = Gateway::start(&toml.replace("{PORT2}", &port2.to_string()));
    let r = client()
        .get(format!("http://127.0.0.1:{port2}/login?next=/home"))
        .header("host", "shop.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 301);
    assert_eq!(
        r.headers()["location"],
        "https://shop.example.com/login?next=/home"
    );
    assert_security_headers(&header_map(&r));
    drop(g);
    assert_eq!(origin.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_headers_to_the_upstream() {
    let origin = Origin::start("o").await;
    let routes = "[[servers.routes]]\nprefix = \"/\"\nupstream = \"app\"\nrequest_headers = { \"X-Env\" = \"test\" }\n";
    let g = Gateway::start(&base(origin.addr, "", routes));
    // A raw request so hop-by-hop headers are sent exactly as written.
    let resp = raw(
        g.port,
        "GET /p?q=1 HTTP/1.1\r\nHost: api.example.com\r\nX-Forwarded-For: 9.9.9.9\r\nConnection: keep-alive, X-Secret\r\nX-Secret: s\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\nX-Custom: kept\r\n\r\n",
    );
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let seen = origin.last();
    assert_eq!(seen.uri, "/p?q=1");
    assert_eq!(
        seen.header("host"),
        Some("api.example.com"),
        "Host preserved"
    );
    assert_eq!(seen.header("x-real-ip"), Some("127.0.0.1"));
    assert_eq!(
        seen.header("x-forwarded-for"),
        Some("9.9.9.9, 127.0.0.1"),
        "appended"
    );
    assert_eq!(seen.header("x-forwarded-proto"), Some("http"));
    assert_eq!(seen.header("x-forwarded-host"), Some("api.example.com"));
    assert_eq!(seen.header("x-env"), Some("test"));
    assert_eq!(seen.header("x-custom"), Some("kept"));
    for hop in ["x-secret", "keep-alive", "proxy-connection", "te"] {
        assert_eq!(
            seen.header(hop),
            None,
            "{hop} must not be forwarded: {seen:#?}"
        );
    }
    let id = seen
        .header("x-request-id")
        .expect("request id sent upstream")
        .to_string();
    assert_eq!(id.len(), 32);
    assert!(
        resp.to_ascii_lowercase()
            .contains(&format!("x-request-id: {id}")),
        "same id returned: {resp}"
    );

    // A client's request id is kept and returned.
    let r = client()
        .get(g.url("/x"))
        .header("x-request-id", "client-id-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "client-id-1");
    assert_eq!(origin.last().header("x-request-id"), Some("client-id-1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_ip_behind_trusted_proxies() {
    let origin = Origin::start("o").await;
    // Trusted: the right-most untrusted XFF entry is the client.
    let g = Gateway::start(&base(
        origin.addr,
        "trusted_proxies = [\"127.0.0.1/32\", \"10.0.0.0/8\"]",
        PROXY_ALL,
    ));
    client()
        .get(g.url("/a"))
        .header("x-forwarded-for", "6.6.6.6, 2.2.2.2, 10.1.2.3")
        .send()
        .await
        .unwrap();
    let seen = origin.last();
    assert_eq!(seen.header("x-real-ip"), Some("2.2.2.2"));
    assert_eq!(
        seen.header("x-forwarded-for"),
        Some("6.6.6.6, 2.2.2.2, 10.1.2.3, 127.0.0.1")
    );
    let log = g.access_log(1);
    assert_eq!(log.last().unwrap()["client_ip"], "2.2.2.2");
    drop(g);

    // Not trusted: the TCP peer is the client, whatever XFF says.
    let g = Gateway::start(&base(origin.addr, "", PROXY_ALL));
    client()
        .get(g.url("/a"))
        .header("x-forwarded-for", "6.6.6.6")
        .send()
        .await
        .unwrap();
    assert_eq!(origin.last().header("x-real-ip"), Some("127.0.0.1"));
    assert_eq!(g.access_log(1).last().unwrap()["client_ip"], "127.0.0.1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_headers_security_defaults_and_server_header() {
    let origin = Origin::start("o").await;
    let routes = "[[servers.routes]]\nprefix = \"/\"\nupstream = \"app\"\nresponse_headers = { \"Cache-Control\" = \"no-store\" }\n";
    let g = Gateway::start(&base(origin.addr, "", routes));
    let r = client().get(g.url("/headers")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let h = header_map(&r);
    assert_eq!(
        h["x-frame-options"], "SAMEORIGIN",
        "defaults only where the upstream sent nothing"
    );
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(
        h["cache-control"], "no-store",
        "response_headers replace the upstream's"
    );
    assert_eq!(r.headers().get_all("cache-control").iter().count(), 1);
    assert_eq!(h["x-server-wide"], "yes");
    assert!(
        !h.contains_key("server"),
        "upstream Server header removed: {h:#?}"
    );
    // On the wire, configured names keep the config's spelling and rampart's
    // own are spelled as nginx deployments spell them.
    let wire = raw(g.port, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n");
    for line in [
        "\r\nX-Server-Wide: yes\r\n",
        "\r\nX-Content-Type-Options: nosniff\r\n",
        "\r\nReferrer-Policy: strict-origin-when-cross-origin\r\n",
        "\r\nX-Request-Id: ",
    ] {
        assert!(wire.contains(line), "{line:?} in {wire}");
    }
    drop(g);

    // server_header = true: rampart names itself; security_headers = false: none added.
    let toml = base(origin.addr, "server_header = true", PROXY_ALL)
        .replace("max_body_size", "security_headers = false\nmax_body_size");
    let g = Gateway::start(&toml);
    let r = client().get(g.url("/x")).send().await.unwrap();
    let h = header_map(&r);
    assert_eq!(h["server"], "rampart");
    assert!(!h.contains_key("x-frame-options"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_over_max_body_size_is_413_by_length_and_chunked() {
    let origin = Origin::start("o").await;
    let g = Gateway::start(&base(origin.addr, "", PROXY_ALL));
    let c = client();
    let r = c
        .post(g.url("/upload"))
        .body(vec![b'x'; 2048])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_security_headers(&header_map(&r));
    assert_eq!(r.headers()["x-server-wide"], "yes");
    assert_eq!(origin.hits(), 0, "rejected before contacting the upstream");

    // Within the limit: passes.
    let r = c
        .post(g.url("/upload"))
        .body(vec![b'x'; 1000])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(origin.last().body_len, 1000);

    // Chunked (no Content-Length) over the limit.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..8).map(|_| Ok(vec![b'y'; 512])).collect();
    let body = reqwest::Body::wrap_stream(futures_stream(chunks));
    let r = c.post(g.url("/upload")).body(body).send().await;
    match r {
        Ok(r) => {
            assert_eq!(r.status(), 413);
            assert_security_headers(&header_map(&r));
        }
        Err(e) => panic!("expected a 413 response, got {e}"),
    }
    let seen = origin.seen.lock().unwrap().clone();
    assert!(
        seen.iter().all(|s| s.body_len <= 1024),
        "no oversized body reached the origin"
    );
}

fn futures_stream(
    items: Vec<Result<Vec<u8>, std::io::Error>>,
) -> impl futures_core::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    struct It(std::vec::IntoIter<Result<Vec<u8>, std::io::Error>>);
    impl futures_core::Stream for It {
        type Item = Result<Vec<u8>, std::io::Error>;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            std::task::Poll::Ready(self.0.next())
        }
    }
    It(items.into_iter())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_upstream_is_502_and_slow_upstream_is_504() {
    let origin = Origin::start("o").await;
    let dead = free_port();
    let toml = format!(
        "{}\n[upstreams.dead]\nservers = [{{ addr = \"127.0.0.1:{dead}\" }}]\n[upstreams.slow]\nservers = [{{ addr = \"{}\" }}]\nread_timeout = \"300ms\"\n",
        base(origin.addr, "", "[[servers.routes]]\nprefix = \"/dead/\"\nupstream = \"dead\"\n[[servers.routes]]\nprefix = \"/slow/\"\nupstream = \"slow\"\n"),
        origin.addr
    );
    let g = Gateway::start(&toml);
    let c = client();
    let r = c.get(g.url("/dead/x")).send().await.unwrap();
    assert_eq!(r.status(), 502);
    let h = header_map(&r);
    assert_security_headers(&h);
    assert_eq!(h["x-server-wide"], "yes");
    assert_eq!(r.text().await.unwrap(), "502 Bad Gateway\n");

    let t = Instant::now();
    let r = c.get(g.url("/slow/3000")).send().await.unwrap();
    assert_eq!(r.status(), 504);
    assert!(
        t.elapsed() < Duration::from_millis(2500),
        "timed out at read_timeout, took {:?}",
        t.elapsed()
    );
    assert_security_headers(&header_map(&r));

    let m = g.metrics_when(|m| m.contains("status=\"504\"} 1")).await;
    assert!(m.contains(&format!("rampart_upstream_requests_total{{addr=\"127.0.0.1:{dead}\",outcome=\"connect_error\",upstream=\"dead\"}} 1")), "one server, one try: {m}");
    assert!(
        m.contains("outcome=\"timeout\",upstream=\"slow\"} 1"),
        "{m}"
    );
    assert!(
        m.contains(
            "rampart_requests_total{route=\"prefix:/dead/\",server=\"main\",status=\"502\"} 1"
        ),
        "{m}"
    );
    assert!(
        m.contains(
            "rampart_requests_total{route=\"prefix:/slow/\",server=\"main\",status=\"504\"} 1"
        ),
        "{m}"
    );
    // In-flight counts return to zero after failures.
    for line in m
        .lines()
        .filter(|l| l.starts_with("rampart_upstream_in_flight{"))
    {
        assert!(line.ends_with(" 0"), "{line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_spreads_over_the_pool() {
    let a = Origin::start("a").await;
    let b = Origin::start("b").await;
    let toml = base(a.addr, "", PROXY_ALL).replace(
        &format!("servers = [{{ addr = \"{}\" }}]", a.addr),
        &format!(
            "servers = [{{ addr = \"{}\" }}, {{ addr = \"{}\" }}]",
            a.addr, b.addr
        ),
    );
    let g = Gateway::start(&toml);
    let c = client();
    for _ in 0..10 {
        assert_eq!(c.get(g.url("/")).send().await.unwrap().status(), 200);
    }
    // Least-conn with round-robin ties: serial requests alternate, unless a
    // request's slot is still held (released just after its response went
    // out) when the next one picks, which a loaded machine can make happen.
    let (a, b) = (a.hits(), b.hits());
    assert_eq!(a + b, 10);
    assert!(a >= 3 && b >= 3, "both servers take their share: {a}/{b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_log_has_every_field_with_its_type() {
    let origin = Origin::start("o").await;
    let g = Gateway::start(&base(origin.addr, "", PROXY_ALL));
    let r = client()
        .get(g.url("/logged?a=b"))
        .header("user-agent", "ua/1")
        .header("referer", "https://ref.example/")
        .header("x-request-id", "log-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    let log = g.access_log(1);
    let e = log
        .iter()
        .find(|e| e["request_id"] == "log-1")
        .expect("line for the request");
    assert!(e["time"].as_str().unwrap().ends_with('Z'));
    assert!(
        humantime::parse_rfc3339(e["time"].as_str().unwrap()).is_ok(),
        "RFC 3339: {e}"
    );
    assert_eq!(e["client_ip"], "127.0.0.1");
    assert_eq!(e["method"], "GET");
    assert_eq!(e["host"], format!("127.0.0.1:{}", g.port));
    assert_eq!(e["path"], "/logged");
    assert_eq!(e["query"], "a=b");
    assert_eq!(e["status"], 200);
    assert_eq!(e["bytes_sent"], body.len() as u64);
    assert!(e["duration_ms"].is_number());
    assert_eq!(e["route"], "prefix:/");
    assert_eq!(e["upstream"], "app");
    assert_eq!(e["upstream_addr"], origin.addr.to_string());
    assert_eq!(e["upstream_status"], 200);
    assert_eq!(e["user_agent"], "ua/1");
    assert_eq!(e["referer"], "https://ref.example/");
    // A local answer: nulls where there is no value.
    client()
        .get(g.url("/x"))
        .header("x-request-id", "log-2")
        .header("host", "h")
        .send()
        .await
        .unwrap();
    let log = g.access_log(2);
    let e = log
        .iter()
        .find(|e| e["request_id"] == "log-2")
        .expect("second line");
    assert_eq!(e["query"], serde_json::Value::Null);
    assert_eq!(e["referer"], serde_json::Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_healthz_on_the_admin_listener() {
    let origin = Origin::start("o").await;
    let g = Gateway::start(&base(origin.addr, "", PROXY_ALL));
    client().get(g.url("/m")).send().await.unwrap();
    let h = client()
        .get(format!("http://127.0.0.1:{}/healthz", g.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(h.status(), 200);
    let m = g.metrics_when(|m| m.contains("status=\"200\"} 1")).await;
    for name in [
        "rampart_requests_total{route=\"prefix:/\",server=\"main\",status=\"200\"} 1",
        "rampart_request_duration_seconds_bucket{route=\"prefix:/\",server=\"main\"",
        "rampart_request_duration_seconds_count{route=\"prefix:/\",server=\"main\"} 1",
        "rampart_upstream_requests_total{addr=",
        "rampart_upstream_in_flight{addr=",
        "rampart_config_info{hash=",
        "rampart_config_last_reload_success_timestamp_seconds",
    ] {
        assert!(m.contains(name), "{name} missing in:\n{m}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_request_in_flight_finish_then_exits_zero() {
    let origin = Origin::start("o").await;
    let mut g = Gateway::start(&base(origin.addr, "", PROXY_ALL));
    let url = g.url("/slow/1500");
    let inflight =
        tokio::spawn(async move { client().get(url).send().await.map(|r| r.status().as_u16()) });
    tokio::time::sleep(Duration::from_millis(400)).await;
    let t = Instant::now();
    g.signal("TERM");
    let status = inflight
        .await
        .unwrap()
        .expect("in-flight request completed");
    assert_eq!(status, 200);
    let code = g.wait_exit(Duration::from_secs(6));
    assert_eq!(
        code,
        Some(0),
        "exit 0 after the drain; stderr:\n{}",
        g.stderr_text()
    );
    assert!(
        t.elapsed() < Duration::from_secs(4),
        "exits once drained, not after the whole grace period: {:?}",
        t.elapsed()
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", g.port)).is_err(),
        "no longer accepting"
    );
}

/// A keep-alive connection idle between requests is closed as soon as the
/// drain starts, while a request in flight on another connection goes on
/// (grace period 5 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_idle_keepalive_connections_at_once() {
    let origin = Origin::start("o").await;
    let mut g = Gateway::start(&base(origin.addr, "", PROXY_ALL));
    let port = g.port;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // Two requests, so the connection has waited for a next one before.
    for path in ["/a", "/b"] {
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while responses(&String::from_utf8_lossy(&got))
            .first()
            .is_none_or(|(_, body)| body != "origin o")
        {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "closed before answering {path}");
            got.extend_from_slice(&buf[..n]);
        }
        assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"));
    }
    let url = g.url("/slow/2000");
    let inflight =
        tokio::spawn(async move { client().get(url).send().await.map(|r| r.status().as_u16()) });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t = Instant::now();
    g.signal("TERM");
    let rest = tokio::task::spawn_blocking(move || read_to_close(&mut s))
        .await
        .unwrap();
    let closed_after = t.elapsed();
    assert_eq!(rest, "", "nothing more on the idle connection");
    assert!(
        closed_after < Duration::from_secs(1),
        "idle connection closed at the drain's start, not with the request in flight: {closed_after:?}"
    );
    assert_eq!(inflight.await.unwrap().expect("in-flight request"), 200);
    assert_eq!(g.wait_exit(Duration::from_secs(6)), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_valid_config_and_keeps_old_on_error() {
    let origin = Origin::start("o").await;
    let v1 = base(
        origin.addr,
        "",
        "[[servers.routes]]\nexact = \"/v\"\nrespond = { body = \"one\" }\n",
    );
    let g = Gateway::start(&v1);
    let c = client();
    assert_eq!(
        c.get(g.url("/v"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "one"
    );
    let fill = |s: &str| {
        s.replace("{PORT}", &g.port.to_string())
            .replace("{ADMIN}", &g.admin.to_string())
    };
    // Valid: a changed route and a new one.
    let v2 = fill(&base(origin.addr, "", "[[servers.routes]]\nexact = \"/v\"\nrespond = { body = \"two\" }\n[[servers.routes]]\nprefix = \"/new/\"\nupstream = \"app\"\n"));
    g.reload_to(&v2, "/v", "two").await;
    assert_eq!(c.get(g.url("/new/x")).send().await.unwrap().status(), 200);
    // Invalid: old configuration keeps serving, the error is counted.
    std::fs::write(
        &g.config,
        "[[servers]]\nlisten = [\"127.0.0.1:1\"]\nbogus = 1\n",
    )
    .unwrap();
    g.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let m = g.metrics().await;
        if m.contains("rampart_config_reloads_total{result=\"error\"} 1") {
            assert!(
                m.contains("rampart_config_reloads_total{result=\"ok\"} 1"),
                "{m}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "error reload not counted:\n{m}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        c.get(g.url("/v"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "two"
    );
    let log = g.stderr_when_contains("unknown key `bogus`").await;
    assert!(log.contains("unknown key `bogus`"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_header_timeout_bounds_the_whole_head_against_slowloris() {
    let origin = Origin::start("o").await;
    let toml = base(origin.addr, "", PROXY_ALL).replace(
        "max_body_size",
        "client_header_timeout = \"1s\"\nmax_body_size",
    );
    let g = Gateway::start(&toml);
    let port = g.port;
    let outcome = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        let head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
        let t = Instant::now();
        // One byte every 150 ms: each read is quick, the head never completes in time.
        for b in head.iter() {
            if s.write_all(&[*b]).is_err() {
                return (true, t.elapsed());
            }
            let mut buf = [0u8; 64];
            match s.read(&mut buf) {
                Ok(0) => return (true, t.elapsed()),
                Ok(_) => return (false, t.elapsed()),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (true, t.elapsed()),
                Err(_) => {}
            }
            std::thread::sleep(Duration::from_millis(50));
            if t.elapsed() > Duration::from_secs(8) {
                break;
            }
        }
        (false, t.elapsed())
    })
    .await
    .unwrap();
    assert!(outcome.0, "a trickled head must be cut off");
    assert!(
        outcome.1 < Duration::from_millis(3000),
        "cut near the 1 s deadline, took {:?}",
        outcome.1
    );
    assert_eq!(origin.hits(), 0);

    // Idle time before a request does not count, and keepalive re-arms the clock.
    let resp = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut out = Vec::new();
        for _ in 0..2 {
            std::thread::sleep(Duration::from_millis(1300));
            s.write_all(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap_or(0);
            out.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        out
    })
    .await
    .unwrap();
    assert!(
        resp.iter().all(|r| r.starts_with("HTTP/1.1 200")),
        "{resp:?}"
    );
    assert_eq!(origin.hits(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_request_head_is_431() {
    let origin = Origin::start("o").await;
    let g = Gateway::start(&base(origin.addr, "", PROXY_ALL));
    let port = g.port;
    // Blank lines before the request line are part of the head: they do
    // not hide an oversized head from the limit.
    for blank in ["", "\r\n\r\n"] {
        let big = "a".repeat(70 * 1024);
        let resp = tokio::task::spawn_blocking(move || {
            raw(
                port,
                &format!("{blank}GET / HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n"),
            )
        })
        .await
        .unwrap();
        assert!(
            resp.starts_with("HTTP/1.1 431"),
            "{}",
            &resp[..resp.len().min(200)]
        );
        assert!(resp.contains("X-Content-Type-Options: nosniff"));
        assert!(resp.contains("\r\nX-Server-Wide: yes\r\n"), "{resp}");
        assert!(resp.contains("\r\nX-Request-Id: "), "{resp}");
    }
    // A large but acceptable head passes.
    let ok = "b".repeat(30 * 1024);
    let r = client()
        .get(g.url("/"))
        .header("x-ok", ok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(origin.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive_timeout_closes_idle_client_connections() {
    let origin = Origin::start("o").await;
    let toml = base(origin.addr, "", PROXY_ALL)
        .replace("max_body_size", "keepalive_timeout = \"1s\"\nmax_body_size");
    let g = Gateway::start(&toml);
    let port = g.port;
    let (first, closed_after) = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 4096];
        let n = s.read(&mut buf).unwrap();
        let first = String::from_utf8_lossy(&buf[..n]).into_owned();
        let t = Instant::now();
        // The next read returns 0 when rampart closes the idle connection.
        let n = s.read(&mut buf).unwrap_or(0);
        assert_eq!(n, 0);
        (first, t.elapsed())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\nrampart stderr:\n{}", g.stderr_text()));
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    assert!(
        closed_after >= Duration::from_millis(800) && closed_after < Duration::from_secs(4),
        "closed after {closed_after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_request_body_is_408() {
    let origin = Origin::start("o").await;
    let toml = base(origin.addr, "", PROXY_ALL).replace(
        "max_body_size",
        "client_body_timeout = \"500ms\"\nmax_body_size",
    );
    let g = Gateway::start(&toml);
    let port = g.port;
    let resp = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly-part")
            .unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&out).into_owned()
    })
    .await
    .unwrap();
    assert!(resp.starts_with("HTTP/1.1 408"), "{resp}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_log_to_a_file_and_off() {
    let origin = Origin::start("o").await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    let toml = base(origin.addr, "", PROXY_ALL).replace(
        "access_log = \"stdout\"",
        &format!("access_log = \"{}\"", path.display()),
    );
    let g = Gateway::start(&toml);
    client()
        .get(g.url("/f"))
        .header("x-request-id", "to-file")
        .send()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if text.contains("\"request_id\":\"to-file\"") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no line in {}: {text}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        g.access_log(1).is_empty(),
        "nothing on stdout when logging to a file"
    );
    drop(g);
    let toml =
        base(origin.addr, "", PROXY_ALL).replace("access_log = \"stdout\"", "access_log = \"off\"");
    let g = Gateway::start(&toml);
    client().get(g.url("/f")).send().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(std::fs::read_to_string(&g.stdout)
        .unwrap_or_default()
        .trim()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_log_can_be_switched_off_per_route_and_per_server() {
    let origin = Origin::start("o").await;
    let routes = r#"
[[servers.routes]]
exact = "/ping"
upstream = "app"
access_log = false

[[servers.routes]]
prefix = "/"
upstream = "app"
"#;
    let g = Gateway::start(&base(origin.addr, "", routes));
    for (path, id) in [("/ping", "quiet"), ("/api", "loud")] {
        let r = client()
            .get(g.url(path))
            .header("x-request-id", id)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let log = g.access_log(1);
    // Lines are written in order: the one for /api came after /ping's.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log2 = g.access_log(log.len() + 1);
    let ids: Vec<&str> = log2
        .iter()
        .filter_map(|l| l["request_id"].as_str())
        .collect();
    assert_eq!(ids, ["loud"], "{log2:?}");
    assert_eq!(origin.hits(), 2, "both requests were served");
    drop(g);

    // Server-wide off; a route may switch it back on.
    let toml = base(origin.addr, "", routes)
        .replace("max_body_size = \"1k\"", "max_body_size = \"1k\"\naccess_log = false")
        .replace(
            "prefix = \"/\"\nupstream = \"app\"",
            "prefix = \"/\"\nupstream = \"app\"\n\n[[servers.routes]]\nprefix = \"/audit/\"\nupstream = \"app\"\naccess_log = true",
        );
    let g = Gateway::start(&toml);
    for (path, id) in [("/api", "a"), ("/nope", "b"), ("/audit/x", "c")] {
        client()
            .get(g.url(path))
            .header("x-request-id", id)
            .send()
            .await
            .unwrap();
    }
    g.access_log(1);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = g.access_log(2);
    let ids: Vec<&str> = log
        .iter()
        .filter_map(|l| l["request_id"].as_str())
        .collect();
    assert_eq!(ids, ["c"], "{log:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_heads_and_connect_get_rampart_answers_not_pingoras() {
    let origin = Origin::start("o").await;
    let g = Gateway::start(&base(origin.addr, "", PROXY_ALL));
    for (request, status) in [
        (
            "GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n",
            "400 Bad Request",
        ),
        ("GET / HTTP/1.1\r\nHo st: x\r\n\r\n", "400 Bad Request"),
        ("\x16\x03\x01\x00\x05hello\r\n\r\n", "400 Bad Request"),
        (
            "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nX-Request-Id: tunnel-1\r\n\r\n",
            "405 Method Not Allowed",
        ),
    ] {
        let resp = raw(g.port, request);
        // The server's own headers and a request id, as on every answer.
        assert!(resp.contains("\r\nX-Server-Wide: yes\r\n"), "{resp}");
        let id = resp
            .lines()
            .find_map(|l| l.strip_prefix("X-Request-Id: "))
            .unwrap_or_else(|| panic!("no request id: {resp}"));
        if request.starts_with("CONNECT") {
            assert_eq!(id, "tunnel-1");
        } else {
            assert_eq!(id.len(), 32, "{resp}");
        }
        let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
        assert!(
            head.starts_with(&format!("HTTP/1.1 {status}")),
            "{request:?}: {resp}"
        );
        let lower = head.to_ascii_lowercase();
        assert!(!lower.contains("\r\nserver:"), "no Server header: {resp}");
        assert!(
            lower.contains("\r\nx-content-type-options: nosniff"),
            "{resp}"
        );
        assert!(lower.contains("\r\nx-frame-options: deny"), "{resp}");
        assert!(lower.contains("\r\nconnection: close"), "{resp}");
        assert_eq!(body, format!("{status}\n"), "{request:?}");
    }
    assert_eq!(origin.hits(), 0);
}

/// `Expect: 100-continue` (curl sends it for bodies over 1 MiB): the body
/// that follows the origin's `100 Continue` is a body, not a next request
/// head — it reaches the origin whole, whatever its size, and the
/// connection carries the next request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_sent_after_100_continue_is_not_taken_for_a_head() {
    use std::io::{Read, Write};
    let origin = Origin::start("o").await;
    let g = Gateway::start(
        &base(origin.addr, "", PROXY_ALL)
            .replace("max_body_size = \"1k\"", "max_body_size = \"1M\""),
    );
    let port = g.port;
    let n = 200_000;
    let (first, second) = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(
            s,
            "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: {n}\r\nExpect: 100-continue\r\n\r\n"
        )
        .unwrap();
        let mut buf = [0u8; 4096];
        // The interim answer, whole (it may come in more than one read).
        let mut interim = Vec::new();
        while !interim.windows(4).any(|w| w == b"\r\n\r\n") {
            let k = s.read(&mut buf).unwrap();
            assert!(k > 0, "closed before 100 Continue");
            interim.extend_from_slice(&buf[..k]);
        }
        let interim = String::from_utf8_lossy(&interim).to_string();
        assert!(interim.starts_with("HTTP/1.1 100"), "{interim}");
        assert!(interim.ends_with("\r\n\r\n"), "more than the interim answer: {interim}");
        s.write_all(&vec![b'a'; n]).unwrap();
        let mut read_response = |s: &mut std::net::TcpStream| {
            let mut got = Vec::new();
            while !got.ends_with(b"origin o") {
                let k = s.read(&mut buf).unwrap();
                assert!(k > 0, "closed: {}", String::from_utf8_lossy(&got));
                got.extend_from_slice(&buf[..k]);
            }
            String::from_utf8_lossy(&got).to_string()
        };
        let first = read_response(&mut s);
        s.write_all(b"GET /again HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        (first, read_response(&mut s))
    })
    .await
    .unwrap();
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    // (Not "431" alone: the response's X-Request-Id may contain it.)
    assert!(!first.contains("HTTP/1.1 431"), "{first}");
    assert!(second.starts_with("HTTP/1.1 200"), "{second}");
    let seen = origin.seen.lock().unwrap();
    let upload = seen.iter().find(|r| r.uri == "/upload").unwrap();
    assert_eq!(upload.body_len, n);
}

/// A client that hangs up while its upstream is still thinking ends the
/// upstream request (the upstream sees its connection closed, nothing is
/// reused), and the gateway goes on serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_hangs_up_ends_its_upstream_request() {
    // A raw upstream: it reads one request head, never answers, and reports
    // how long its connection stayed open after the head.
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = upstream.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<&'static str>();
    std::thread::spawn(move || {
        let Ok((mut s, _)) = upstream.accept() else {
            return;
        };
        if !read_request_head(&mut s, Duration::from_secs(4)) {
            return;
        }
        let _ = tx.send("head");
        let mut buf = [0u8; 16];
        let _ = tx.send(match s.read(&mut buf) {
            Ok(0) => "closed",
            Ok(_) => "more bytes",
            Err(_) => "still open after 4 s",
        });
    });
    let g = Gateway::start(&base(addr, "", PROXY_ALL));

    let mut client = std::net::TcpStream::connect(("127.0.0.1", g.port)).unwrap();
    client
        .write_all(b"GET /thinking HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok("head"));
    let hung_up = Instant::now();
    drop(client);
    assert_eq!(rx.recv_timeout(Duration::from_secs(6)), Ok("closed"));
    assert!(
        hung_up.elapsed() < Duration::from_secs(2),
        "the upstream connection was closed {:?} after the client hung up",
        hung_up.elapsed()
    );

    // The gateway is unharmed: the next request gets an answer (502: the
    // raw upstream is gone).
    let r = client_get_status(&g.url("/after")).await;
    assert_eq!(r, 502);
}

async fn client_get_status(url: &str) -> u16 {
    client().get(url).send().await.unwrap().status().as_u16()
}

/// Reads one message head (bounded by a read timeout), as raw text.
fn raw_head(s: &mut std::net::TcpStream) -> String {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// Header names go out spelled as they came in, both ways, whether they
/// are all canonical (no spelling map is kept) or not; the names rampart
/// adds have their usual spelling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_names_keep_their_spelling_both_ways() {
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = upstream.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for response in [
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nETag: \"e\"\r\nX-Backend: a\r\nConnection: close\r\n\r\nok",
            "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-lower-resp: a\r\nX-Mixed-CASE: b\r\nConnection: close\r\n\r\nok",
        ] {
            let Ok((mut s, _)) = upstream.accept() else {
                return;
            };
            let _ = tx.send(raw_head(&mut s));
            let _ = s.write_all(response.as_bytes());
        }
    });
    let g = Gateway::start(&base(addr, "", PROXY_ALL));
    let exchange = |request: &str| {
        let mut c = std::net::TcpStream::connect(("127.0.0.1", g.port)).unwrap();
        c.write_all(request.as_bytes()).unwrap();
        let seen = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        (seen, raw_head(&mut c))
    };

    let (seen, answer) =
        exchange("GET /a HTTP/1.1\r\nHost: x\r\nUser-Agent: t\r\nAccept: */*\r\n\r\n");
    assert_lines(
        &seen,
        &[
            "\r\nHost: x\r\n",
            "\r\nUser-Agent: t\r\n",
            "\r\nAccept: */*\r\n",
            "\r\nX-Real-IP: 127.0.0.1\r\n",
            "\r\nX-Forwarded-For: 127.0.0.1\r\n",
            "\r\nX-Forwarded-Proto: http\r\n",
            "\r\nX-Request-Id: ",
        ],
    );
    assert_lines(
        &answer,
        &[
            "\r\nETag: \"e\"\r\n",
            "\r\nX-Backend: a\r\n",
            "\r\nX-Request-Id: ",
        ],
    );

    let (seen, answer) = exchange(
        "GET /b HTTP/1.1\r\nhost: x\r\nuser-agent: t\r\nX-MiXed: 1\r\nAccept: */*\r\n\r\n",
    );
    assert_lines(
        &seen,
        &[
            "\r\nhost: x\r\n",
            "\r\nuser-agent: t\r\n",
            "\r\nX-MiXed: 1\r\n",
            "\r\nAccept: */*\r\n",
            "\r\nX-Real-IP: 127.0.0.1\r\n",
            "\r\nX-Request-Id: ",
        ],
    );
    assert_lines(
        &answer,
        &[
            "\r\nx-lower-resp: a\r\n",
            "\r\nX-Mixed-CASE: b\r\n",
            "\r\nX-Request-Id: ",
        ],
    );
}

/// Every one of `lines` occurs in the raw `head`.
fn assert_lines(head: &str, lines: &[&str]) {
    for line in lines {
        assert!(head.contains(line), "{line:?} not in {head:?}");
    }
}

/// Reads from `s` until the peer closes it (or 5 s pass).
/// The status lines and bodies of consecutive `Content-Length` responses.
fn responses(mut raw: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    while let Some(end) = raw.find("\r\n\r\n") {
        let head = &raw[..end];
        let len: usize = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length").then_some(value)
            })
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let body_end = (end + 4 + len).min(raw.len());
        let status = head.lines().next().unwrap_or_default().to_string();
        out.push((status, raw[end + 4..body_end].to_string()));
        raw = &raw[body_end..];
    }
    out
}

/// HTTP/1.1 pipelining (RFC 9112 §9.3.2), as nginx serves it: requests
/// sent before the previous response arrived are answered in order on the
/// same connection, proxied or answered by rampart itself, whether they
/// came in the same packet or while the previous one was being proxied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_are_all_answered_in_order() {
    let origin = Origin::start("o").await;
    let g = Gateway::start(&base(origin.addr, "", HERE_AND_PROXY));
    let port = g.port;
    let get = |path: &str, last: bool| {
        let close = if last { "Connection: close\r\n" } else { "" };
        format!("GET {path} HTTP/1.1\r\nHost: x\r\n{close}\r\n")
    };

    // Four requests in one write.
    let batch = [
        get("/a", false),
        get("/here", false),
        get("/b", false),
        get("/c", true),
    ]
    .concat();
    let all = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(batch.as_bytes()).unwrap();
        read_to_close(&mut s)
    })
    .await
    .unwrap();
    let got = responses(&all);
    let bodies: Vec<&str> = got.iter().map(|(_, b)| b.as_str()).collect();
    assert_eq!(
        bodies,
        ["origin o", "from rampart", "origin o", "origin o"],
        "{all}"
    );
    assert!(got.iter().all(|(st, _)| st == "HTTP/1.1 200 OK"), "{all}");
    let uris: Vec<String> = origin
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.uri.clone())
        .collect();
    assert_eq!(uris, ["/a", "/b", "/c"]);

    // The next request arrives while the first is still at the upstream.
    let all = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(get("/slow/300", false).as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        s.write_all(get("/d", true).as_bytes()).unwrap();
        read_to_close(&mut s)
    })
    .await
    .unwrap();
    let got = responses(&all);
    assert_eq!(got.len(), 2, "{all}");
    assert!(
        got.iter()
            .all(|(st, b)| st == "HTTP/1.1 200 OK" && b == "origin o"),
        "{all}"
    );
    let uris: Vec<String> = origin
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.uri.clone())
        .collect();
    assert_eq!(uris[3..], ["/slow/300", "/d"]);
}

/// RFC 9112 §6.3: a request framed by both `Transfer-Encoding` and
/// `Content-Length` is answered and the connection closed. Bytes after its
/// chunked end (here a whole second request the front proxy, going by
/// `Content-Length`, took for body) are never read as a request: the
/// upstream sees only the first request and the client one response.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_with_both_framings_closes_and_smuggles_nothing() {
    let origin = Origin::start("o").await;
    let g = Gateway::start(&base(origin.addr, "", PROXY_ALL));
    let port = g.port;
    let smuggled = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
    let request = format!(
        "POST /first HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\
         Content-Length: {}\r\n\r\n0\r\n\r\n{smuggled}",
        5 + smuggled.len()
    );
    let (got, took) =
        tokio::task::spawn_blocking(move || exchange_until_close(port, request.as_bytes()))
            .await
            .unwrap();
    assert!(took < Duration::from_secs(3), "connection left open: {got}");
    let answers = responses(&got);
    assert_eq!(answers.len(), 1, "{got}");
    assert_eq!(answers[0].0, "HTTP/1.1 200 OK", "{got}");
    assert!(got.contains("Connection: close\r\n"), "{got}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seen = origin.seen.lock().unwrap();
    let uris: Vec<&str> = seen.iter().map(|s| s.uri.as_str()).collect();
    assert_eq!(uris, ["/first"]);
    // The upstream got one framing only, and an empty body.
    assert!(seen[0].header("content-length").is_none() || seen[0].body_len == 0);
    assert_eq!(seen[0].body_len, 0);
}

/// RFC 9112 §9.3: an HTTP/1.0 connection persists only when the client
/// asked for it. Without `Connection: keep-alive` the answer says `close`
/// and the connection closes at once, for proxied answers and rampart's
/// own; with it, the connection carries a second request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http10_connections_close_unless_the_client_asks_for_keep_alive() {
    let origin = Origin::start("o").await;
    let g = Gateway::start(&base(origin.addr, "", HERE_AND_PROXY));
    let port = g.port;
    for path in ["/proxied", "/here"] {
        let request = format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n");
        let (got, took) =
            tokio::task::spawn_blocking(move || exchange_until_close(port, request.as_bytes()))
                .await
                .unwrap();
        assert!(took < Duration::from_secs(3), "{path}: left open: {got}");
        assert!(
            got.starts_with("HTTP/1.1 200") || got.starts_with("HTTP/1.0 200"),
            "{got}"
        );
        assert!(
            !got.to_ascii_lowercase().contains("connection: keep-alive"),
            "{got}"
        );
    }
    // Asked for: kept, and a second request is answered on it.
    let both = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(b"GET /proxied HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        s.write_all(b"GET /here HTTP/1.0\r\nHost: x\r\n\r\n")
            .unwrap();
        read_to_close(&mut s)
    })
    .await
    .unwrap();
    let answers = responses(&both);
    let bodies: Vec<&str> = answers.iter().map(|(_, b)| b.as_str()).collect();
    assert_eq!(bodies, ["origin o", "from rampart"], "{both}");
}

/// HTTP/1.0 may omit `Host`; the upstream still gets one: the server's
/// first name (nginx: the first `server_name`), or, for a server without
/// names, the address the client connected to. HTTP/1.1 without `Host`
/// is a 400 (RFC 9112 §3.2) that never reaches the upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_without_host_gets_the_servers_name_upstream() {
    let origin = Origin::start("o").await;
    let named = base(origin.addr, "", PROXY_ALL).replace(
        "name = \"main\"\n",
        "name = \"main\"\nhosts = [\"*.example.com\", \"app.example.com\"]\n",
    );
    let g = Gateway::start(&named);
    let port = g.port;
    let send = |req: &'static str| {
        tokio::task::spawn_blocking(move || exchange_until_close(port, req.as_bytes()))
    };
    let (got, _) = send("GET /a HTTP/1.0\r\n\r\n").await.unwrap();
    assert!(got.contains(" 200 "), "{got}");
    assert_eq!(origin.last().header("host"), Some("app.example.com"));
    drop(g);

    let g = Gateway::start(&base(origin.addr, "", PROXY_ALL));
    let port = g.port;
    let (got, _) =
        tokio::task::spawn_blocking(move || exchange_until_close(port, b"GET /b HTTP/1.0\r\n\r\n"))
            .await
            .unwrap();
    assert!(got.contains(" 200 "), "{got}");
    let last = origin.last();
    assert_eq!(last.uri, "/b");
    assert_eq!(
        last.header("host"),
        Some(format!("127.0.0.1:{port}").as_str())
    );

    let before = origin.hits();
    let (got, _) = tokio::task::spawn_blocking(move || {
        exchange_until_close(port, b"GET /c HTTP/1.1\r\nConnection: close\r\n\r\n")
    })
    .await
    .unwrap();
    assert!(got.starts_with("HTTP/1.1 400"), "{got}");
    // Two Host lines: which one would the upstream believe?
    let (got, _) = tokio::task::spawn_blocking(move || {
        exchange_until_close(port, b"GET /d HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n")
    })
    .await
    .unwrap();
    assert!(got.starts_with("HTTP/1.1 400"), "{got}");
    assert_eq!(origin.hits(), before);
}

/// A head is timed from its first byte, blank lines before the request
/// line included: leading `\r\n\r\n` and one header line at a time do
/// not keep a connection past `client_header_timeout` — the server's own,
/// not the longest of all servers'.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_head_after_blank_lines_is_cut_off_at_the_deadline() {
    let origin = Origin::start("o").await;
    let other = format!(
        "[[servers]]\nname = \"lenient\"\nlisten = [\"127.0.0.1:{}\"]\nclient_header_timeout = \"60s\"\n",
        free_port()
    );
    let g = Gateway::start(&format!(
        "{}\n{other}",
        base(origin.addr, "", PROXY_ALL)
            .replace("max_body_size = \"1k\"", "client_header_timeout = \"1s\"")
    ));
    let port = g.port;
    let took = tokio::task::spawn_blocking(move || {
        trickle_head(port, b"\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n", 150)
    })
    .await
    .unwrap();
    assert!(
        took < Duration::from_secs(4),
        "the connection outlived client_header_timeout: {took:?}"
    );
    assert_eq!(origin.hits(), 0);
}

/// The admin listener has a whole-head deadline too (5 s): trickling a
/// head one line at a time does not hold it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_head_on_the_admin_listener_is_cut_off() {
    let origin = Origin::start("o").await;
    let g = Gateway::start(&base(origin.addr, "", PROXY_ALL));
    let admin = g.admin;
    let took = tokio::task::spawn_blocking(move || {
        trickle_head(admin, b"GET /metrics HTTP/1.1\r\nHost: x\r\n", 200)
    })
    .await
    .unwrap();
    assert!(
        took > Duration::from_secs(4) && took < Duration::from_secs(9),
        "{took:?}"
    );
    // And it still serves.
    let m = g.metrics().await;
    assert!(m.contains("rampart_access_log_dropped_total"), "{m}");
}

/// Sends `start`, then one header line every `every_ms` (at most 60), until
/// the server closes the connection or answers; how long that took.
fn trickle_head(port: u16, start: &[u8], every_ms: u64) -> Duration {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let began = Instant::now();
    s.write_all(start).unwrap();
    let mut buf = [0u8; 512];
    for i in 0..60 {
        std::thread::sleep(Duration::from_millis(every_ms));
        if s.write_all(format!("X-{i}: y\r\n").as_bytes()).is_err() {
            break;
        }
        match s.read(&mut buf) {
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            // Closed, or answered (408): cut off.
            _ => break,
        }
    }
    began.elapsed()
}
