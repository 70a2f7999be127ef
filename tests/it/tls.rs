//! TLS termination with a real rustls client and the test CA.

use std::time::{Duration, Instant};

use crate::common::*;
use rustls::version::{TLS12, TLS13};

/// Two TLS servers on one port (localhost, *.example.test) and a plain
/// redirect server; `{PORT}` is the TLS port, `{PLAIN}` the plain one.
fn tls_config(origin: std::net::SocketAddr, cert_dir: &str, extra_tls: &str) -> String {
    let tls = |name: &str| {
        format!("[servers.tls]\ncert = \"{cert_dir}/{name}.pem\"\nkey = \"{cert_dir}/{name}-key.pem\"\n{extra_tls}")
    };
    Config::new()
        .log("access_log = \"stdout\"")
        .upstream("app", origin, "")
        .server(&format!("hosts = [\"localhost\"]\n{}", tls("leaf")))
        .proxy("/", "app")
        .other_server(&format!(
            "name = \"example\"\nlisten = [\"127.0.0.1:{{PORT}}\"]\nhosts = [\"example.test\", \"*.example.test\"]\n{}\n\
             [[servers.routes]]\nprefix = \"/\"\nrespond = {{ body = \"example server\\n\" }}",
            tls("example")
        ))
        .other_server("name = \"redirect\"\nlisten = [\"127.0.0.1:{PLAIN}\"]\nhttps_redirect = true")
        .build()
}

fn start(origin: std::net::SocketAddr, extra_tls: &str) -> (Gateway, u16) {
    let plain = free_port();
    let toml = tls_config(origin, fixture("").trim_end_matches('/'), extra_tls)
        .replace("{PLAIN}", &plain.to_string());
    (Gateway::start(&toml), plain)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls12_and_tls13_handshakes_and_proxying() {
    let origin = Origin::start("o").await;
    let (g, _) = start(origin.addr, "");
    for (v, want) in [
        (&TLS12, rustls::ProtocolVersion::TLSv1_2),
        (&TLS13, rustls::ProtocolVersion::TLSv1_3),
    ] {
        let seen = tls_get(
            g.port,
            "localhost",
            "localhost",
            "/p",
            tls_client(&[v], &[b"http/1.1"]),
        )
        .await
        .unwrap();
        assert_eq!(seen.version, Some(want));
        assert!(
            seen.response.starts_with("HTTP/1.1 200"),
            "{}",
            seen.response
        );
        assert!(
            seen.response
                .to_ascii_lowercase()
                .contains("strict-transport-security: max-age=31536000; includesubdomains"),
            "HSTS on TLS: {}",
            seen.response
        );
    }
    let last = origin.last();
    assert_eq!(last.header("x-forwarded-proto"), Some("https"));
    assert_eq!(last.header("host"), Some("localhost"));
    let log = g.access_log(2);
    let e = log.last().unwrap();
    assert_eq!(e["tls"], "TLSv1.3");
    assert_eq!(e["protocol"], "HTTP/1.1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_1_1_is_refused_and_protocols_restrict_versions() {
    let origin = Origin::start("o").await;
    let (g, _) = start(origin.addr, "");
    // curl with OpenSSL can still speak TLS 1.1; rampart must refuse it.
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "--tlsv1.1",
            "--tls-max",
            "1.1",
            "--cacert",
            &fixture("ca.pem"),
        ])
        .arg(format!("https://localhost:{}/", g.port))
        .output()
        .unwrap();
    assert!(!out.status.success(), "TLS 1.1 handshake must fail");
    // A client that does not trust the certificate aborts with an alert.
    let untrusting = {
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        std::sync::Arc::new(cfg)
    };
    assert!(tls_connect(g.port, "localhost", untrusting).await.is_err());
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let m = g.metrics().await;
        if m.contains("rampart_tls_handshake_errors_total{reason=\"incompatible\"} 1")
            && m.contains("rampart_tls_handshake_errors_total{reason=\"alert\"} 1")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "handshake errors by reason:\n{m}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(g);
    let (g, _) = start(origin.addr, "protocols = [\"TLSv1.3\"]");
    assert!(
        tls_get(
            g.port,
            "localhost",
            "localhost",
            "/",
            tls_client(&[&TLS12], &[])
        )
        .await
        .is_err(),
        "TLS 1.2 refused"
    );
    let ok = tls_get(
        g.port,
        "localhost",
        "localhost",
        "/",
        tls_client(&[&TLS13], &[]),
    )
    .await
    .unwrap();
    assert_eq!(ok.version, Some(rustls::ProtocolVersion::TLSv1_3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sni_picks_the_certificate_and_host_the_server() {
    let origin = Origin::start("o").await;
    let (g, _) = start(origin.addr, "");
    let cfg = tls_client(&[&TLS13], &[]);
    let a = tls_get(g.port, "localhost", "localhost", "/", cfg.clone())
        .await
        .unwrap();
    assert_eq!(a.subject_cn, "localhost");
    assert!(a.response.contains("origin o"), "{}", a.response);
    let b = tls_get(
        g.port,
        "api.example.test",
        "api.example.test",
        "/",
        cfg.clone(),
    )
    .await
    .unwrap();
    assert_eq!(b.subject_cn, "example.test");
    assert!(b.response.contains("example server"), "{}", b.response);
    // SNI localhost but Host of the other server (another certificate): 421.
    let m = tls_get(g.port, "localhost", "example.test", "/", cfg.clone())
        .await
        .unwrap();
    assert!(m.response.starts_with("HTTP/1.1 421"), "{}", m.response);
    // Session resumption: the second handshake with the same client resumes.
    let _ = tls_get(g.port, "localhost", "localhost", "/", cfg.clone())
        .await
        .unwrap();
    let again = tls_get(g.port, "localhost", "localhost", "/", cfg.clone())
        .await
        .unwrap();
    assert!(again.resumed, "session resumption");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_by_alpn_proxied_to_an_http1_origin_including_a_post_body() {
    let origin = Origin::start("o").await;
    let (g, _) = start(origin.addr, "");
    let seen = tls_get(
        g.port,
        "localhost",
        "localhost",
        "/",
        tls_client(&[&TLS13], &[b"h2", b"http/1.1"]),
    )
    .await
    .unwrap();
    assert_eq!(seen.alpn.as_deref(), Some(&b"h2"[..]));
    let c = h2_client();
    let url = format!("https://localhost:{}/h2", g.port);
    let r = c.get(&url).send().await.unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), 200);
    assert_eq!(
        origin.last().header("host"),
        Some(format!("localhost:{}", g.port).as_str())
    );
    // pingora #935: an h2 POST body must reach the h1 origin as exactly one request.
    let before = origin.hits();
    let body = reqwest::Body::from(vec![b'z'; 300]);
    let r = c
        .post(format!("https://localhost:{}/upload", g.port))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        origin.hits(),
        before + 1,
        "exactly one request reached the origin"
    );
    assert_eq!(origin.last().body_len, 300);
    // The pooled upstream connection is still in sync.
    assert_eq!(c.get(&url).send().await.unwrap().status(), 200);
    assert_eq!(origin.hits(), before + 2);
    let log = g.access_log(3);
    assert!(log.iter().any(|e| e["protocol"] == "HTTP/2"));
}

/// nginx's `return 301 https://$host$request_uri`: no port, whatever port
/// the TLS listener binds (behind `-p 443:8443` the client's is 443).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_redirect_names_no_port_and_keeps_the_query() {
    let origin = Origin::start("o").await;
    let (g, plain) = start(origin.addr, "");
    g.wait_port(plain);
    let r = client()
        .get(format!("http://127.0.0.1:{plain}/a/b?x=1&y=2"))
        .header("host", "localhost:8080")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 301);
    assert_eq!(r.headers()["location"], "https://localhost/a/b?x=1&y=2");
    assert!(
        r.headers().get("strict-transport-security").is_none(),
        "no HSTS on plain HTTP"
    );
}

/// The table form names the port and the status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_redirect_table_names_port_and_status() {
    let origin = Origin::start("o").await;
    let plain = free_port();
    let toml = tls_config(origin.addr, fixture("").trim_end_matches('/'), "")
        .replace("{PLAIN}", &plain.to_string())
        .replace(
            "https_redirect = true",
            "https_redirect = { port = 8443, status = 308 }",
        );
    let g = Gateway::start(&toml);
    g.wait_port(plain);
    let r = client()
        .post(format!("http://127.0.0.1:{plain}/form?x=1"))
        .header("host", "localhost")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 308);
    assert_eq!(r.headers()["location"], "https://localhost:8443/form?x=1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_reload_serves_new_handshakes_and_keeps_open_connections() {
    let origin = Origin::start("o").await;
    let dir = tempfile::tempdir().unwrap();
    for f in ["leaf.pem", "leaf-key.pem", "example.pem", "example-key.pem"] {
        std::fs::copy(fixture(f), dir.path().join(f)).unwrap();
    }
    let plain = free_port();
    let toml = tls_config(origin.addr, dir.path().to_str().unwrap(), "")
        .replace("{PLAIN}", &plain.to_string());
    let g = Gateway::start(&toml);
    let cfg = tls_client(&[&TLS13], &[]);
    let mut open = tls_connect(g.port, "localhost", cfg.clone()).await.unwrap();
    let first = tls_request(&mut open, "localhost", "/1").await;
    assert!(first.starts_with("HTTP/1.1 200"));
    assert_eq!(describe(&open, String::new()).subject_cn, "localhost");
    // certbot renews: new files, then kill -HUP.
    std::fs::copy(fixture("leaf-b.pem"), dir.path().join("leaf.pem")).unwrap();
    std::fs::copy(fixture("leaf-b-key.pem"), dir.path().join("leaf-key.pem")).unwrap();
    g.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let fresh = tls_get(
            g.port,
            "localhost",
            "localhost",
            "/2",
            tls_client(&[&TLS13], &[]),
        )
        .await
        .unwrap();
        if fresh.subject_cn == "localhost b" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "new certificate not served: {}",
            fresh.subject_cn
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The connection opened before the reload still works.
    let second = tls_request(&mut open, "localhost", "/3").await;
    assert!(second.starts_with("HTTP/1.1 200"), "{second}");
}

#[test]
fn check_reports_a_mismatched_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[servers]]\nlisten = [\"127.0.0.1:8443\"]\n[servers.tls]\ncert = \"{}\"\nkey = \"{}\"\n[[servers.routes]]\nprefix = \"/\"\nrespond = {{}}\n",
            fixture("leaf.pem"),
            fixture("example-key.pem")
        ),
    )
    .unwrap();
    let out = std::process::Command::new(bin())
        .args(["check", "-c"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml:4:8: error: key") && err.contains("does not fit certificate"),
        "{err}"
    );
}

/// RFC 9112 §9.3 over TLS: HTTP/1.0 without `Connection: keep-alive` is
/// answered and the connection closed (`openssl s_time -www` reads to close).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http10_over_tls_closes_after_the_answer() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let origin = Origin::start("o").await;
    let (g, _) = start(origin.addr, "");
    for path in ["/proxied", "/"] {
        let cfg = tls_client(&[&TLS13], &[b"http/1.1"]);
        let (sni, host) = match path {
            "/" => ("example.test", "example.test"),
            _ => ("localhost", "localhost"),
        };
        let mut conn = tls_connect(g.port, sni, cfg).await.unwrap();
        conn.write_all(format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let start = Instant::now();
        let mut got = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut got)).await;
        let text = String::from_utf8_lossy(&got);
        assert!(
            read.is_ok() && start.elapsed() < Duration::from_secs(3),
            "{path} left open: {text}"
        );
        assert!(text.contains(" 200 "), "{text}");
        assert!(!text.to_ascii_lowercase().contains("keep-alive"), "{text}");
    }
}

/// A TLS address added by a reload: handshakes with the configured
/// certificates (SNI picks), and serves both servers of the address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_address_added_by_a_reload_serves_with_its_certificates() {
    let origin = Origin::start("o").await;
    let plain = free_port();
    let toml = tls_config(origin.addr, fixture("").trim_end_matches('/'), "")
        .replace("{PLAIN}", &plain.to_string());
    let g = Gateway::start(&toml);
    let added = free_port();
    let more = toml
        .replace(
            "listen = [\"127.0.0.1:{PORT}\"]",
            &format!("listen = [\"127.0.0.1:{{PORT}}\", \"127.0.0.1:{added}\"]"),
        )
        .replace("example server\\n", "example server, reloaded\\n");
    let filled = more
        .replace("{PORT}", &g.port.to_string())
        .replace("{ADMIN}", &g.admin.to_string());
    std::fs::write(&g.config, filled).unwrap();
    g.signal("HUP");
    g.wait_port(added);
    let cfg = tls_client(&[&TLS13], &[b"http/1.1"]);
    let seen = tls_get(added, "example.test", "example.test", "/", cfg.clone())
        .await
        .unwrap();
    assert!(
        seen.response.ends_with("example server, reloaded\n"),
        "{}",
        seen.response
    );
    let seen = tls_get(added, "localhost", "localhost", "/p", cfg)
        .await
        .unwrap();
    assert!(
        seen.response.starts_with("HTTP/1.1 200"),
        "{}",
        seen.response
    );
    assert_eq!(origin.last().header("x-forwarded-proto"), Some("https"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tls_server_reports_when_its_certificate_expires() {
    let origin = Origin::start("o").await;
    let (g, _) = start(origin.addr, "");
    let m = g.metrics().await;
    let expiry = |server: &str| {
        let prefix =
            format!("rampart_tls_certificate_expiry_timestamp_seconds{{server=\"{server}\"}} ");
        m.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.parse::<i64>().ok())
    };
    // The certificates' notAfter, as openssl reads them.
    let not_after = |file: &str| {
        let out = std::process::Command::new("openssl")
            .args([
                "x509",
                "-noout",
                "-enddate",
                "-dateopt",
                "iso_8601",
                "-in",
                &fixture(file),
            ])
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let date = text.trim().trim_start_matches("notAfter=");
        let out = std::process::Command::new("date")
            .args(["-u", "-d", date, "+%s"])
            .output()
            .unwrap();
        let secs = String::from_utf8(out.stdout).unwrap();
        secs.trim()
            .parse::<i64>()
            .unwrap_or_else(|_| panic!("{file}: notAfter {date:?}"))
    };
    assert_eq!(expiry("main"), Some(not_after("leaf.pem")), "{m}");
    assert_eq!(expiry("example"), Some(not_after("example.pem")), "{m}");
    // Plain-HTTP servers have none.
    assert_eq!(expiry("redirect"), None);
}
