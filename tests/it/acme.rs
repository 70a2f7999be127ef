//! Automatic certificates against a real ACME server (pebble) on loopback:
//! issuance by HTTP-01 and by TLS-ALPN-01, a restart that reuses the stored
//! certificate with the CA gone, renewal of a certificate that is due, a
//! failed order that keeps the current certificate, and no stand-in
//! certificate before the first one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;

const NAME: &str = "acme.test";

/// `[acme]` for `pebble`, with `storage` and extra keys.
fn acme_table(directory: &str, storage: &std::path::Path, more: &str) -> String {
    format!(
        "[acme]\ndirectory = \"{directory}\"\nstorage = \"{}\"\nca = \"{}\"\nemail = \"ops@example.com\"\n{more}",
        storage.display(),
        fixture("ca.pem")
    )
}

/// A plain-HTTP server on `{PORT}` that redirects everything to HTTPS (the
/// HTTP-01 answer comes first), and the ACME server on `tls_port`.
fn http01_config(acme: &str, tls_port: u16) -> String {
    format!(
        r#"[global]
grace_period = "1s"
[log]
level = "info"
access_log = "off"
[admin]
listen = "127.0.0.1:{{ADMIN}}"
{acme}
[[servers]]
name = "plain"
listen = ["127.0.0.1:{{PORT}}"]
https_redirect = true
[[servers.routes]]
prefix = "/"
respond = {{ body = "plain" }}

[[servers]]
name = "secure"
listen = ["127.0.0.1:{tls_port}"]
hosts = ["{NAME}"]
[servers.tls]
acme = true
[[servers.routes]]
prefix = "/"
respond = {{ body = "secure" }}
"#
    )
}

/// Only the ACME server, on `{PORT}` (TLS-ALPN-01 needs nothing else).
fn tls_only_config(acme: &str) -> String {
    format!(
        r#"[global]
grace_period = "1s"
[log]
level = "info"
access_log = "off"
[admin]
listen = "127.0.0.1:{{ADMIN}}"
{acme}
[[servers]]
name = "secure"
listen = ["127.0.0.1:{{PORT}}"]
hosts = ["{NAME}"]
[servers.tls]
acme = true
[[servers.routes]]
prefix = "/"
respond = {{ body = "secure" }}
"#
    )
}

fn metric(m: &str, prefix: &str) -> Option<f64> {
    m.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Waits (up to 60 s) until the server has `n` orders with `result`.
async fn orders(g: &Gateway, result: &str, n: f64) {
    let want = format!("rampart_acme_orders_total{{result=\"{result}\",server=\"secure\"}}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let m = g.metrics().await;
        if metric(&m, &want) == Some(n) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no {result} order: {m}\n{}",
            g.stderr_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// GET https://acme.test/ on `port`, trusting only `root` (PEM).
async fn https_get(port: u16, root: &str) -> Result<String, String> {
    https_get_name(port, root, NAME).await
}

/// [`https_get`] for another of the server's names.
async fn https_get_name(port: u16, root: &str, name: &str) -> Result<String, String> {
    let c = reqwest::Client::builder()
        .no_proxy()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(root.as_bytes()).unwrap())
        .resolve(name, ([127, 0, 0, 1], port).into())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let r = c
        .get(format!("https://{name}:{port}/"))
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    r.text().await.map_err(|e| e.to_string())
}

/// The leaf certificate the listener presents for `NAME` (DER), whoever
/// signed it; `None` when the handshake fails.
async fn presented_leaf(port: u16) -> Option<Vec<u8>> {
    #[derive(Debug)]
    struct AnyCert(Arc<rustls::crypto::CryptoProvider>);
    impl rustls::client::danger::ServerCertVerifier for AnyCert {
        fn verify_server_cert(
            &self,
            _: &rustls::pki_types::CertificateDer<'_>,
            _: &[rustls::pki_types::CertificateDer<'_>],
            _: &rustls::pki_types::ServerName<'_>,
            _: &[u8],
            _: rustls::pki_types::UnixTime,
        ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            m: &[u8],
            c: &rustls::pki_types::CertificateDer<'_>,
            d: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                m,
                c,
                d,
                &self.0.signature_verification_algorithms,
            )
        }
        fn verify_tls13_signature(
            &self,
            m: &[u8],
            c: &rustls::pki_types::CertificateDer<'_>,
            d: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                m,
                c,
                d,
                &self.0.signature_verification_algorithms,
            )
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let name = rustls::pki_types::ServerName::try_from(NAME).unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
        .ok()?;
    let leaf = tls.get_ref().1.peer_certificates()?.first()?.to_vec();
    Some(leaf)
}

/// A certificate for `NAME` that is due: issued 29 days ago, valid for 2
/// more (self-signed; the renewal logic looks at names and dates only).
fn due_certificate() -> (String, String, Vec<u8>) {
    certificate(-29, 2)
}

/// A self-signed certificate for `NAME`, valid from `from` to `to` days
/// from today: chain PEM, key PEM, leaf DER.
fn certificate(from: i64, to: i64) -> (String, String, Vec<u8>) {
    let day = |offset: i64| {
        let out = std::process::Command::new("date")
            .args(["-u", "-d", &format!("{offset} days"), "+%Y %m %d"])
            .output()
            .unwrap();
        let s = String::from_utf8(out.stdout).unwrap();
        let v: Vec<i32> = s.split_whitespace().map(|x| x.parse().unwrap()).collect();
        rcgen::date_time_ymd(v[0], v[1] as u8, v[2] as u8)
    };
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec![NAME.to_string()]).unwrap();
    params.not_before = day(from);
    params.not_after = day(to);
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem(), cert.der().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http01_issues_a_certificate_and_a_restart_reuses_it_without_the_ca() {
    let (plain, tls) = (free_port(), free_port());
    let mut pebble = Pebble::start(plain, tls);
    let storage = tempfile::tempdir().unwrap();
    let store = storage.path().join("acme");
    // Two names: one order, one certificate for both.
    let toml = http01_config(&acme_table(&pebble.directory(), &store, ""), tls).replace(
        &format!("hosts = [\"{NAME}\"]"),
        &format!("hosts = [\"{NAME}\", \"www.{NAME}\"]"),
    );
    let started = Instant::now();
    let g = Gateway::start_on(&toml, plain);
    orders(&g, "ok", 1.0).await;
    let took = started.elapsed();
    let root = pebble.issuing_root().await;
    assert_eq!(https_get(tls, &root).await.as_deref(), Ok("secure"));
    let www = format!("www.{NAME}");
    assert_eq!(
        https_get_name(tls, &root, &www).await.as_deref(),
        Ok("secure")
    );
    eprintln!("first certificate after {took:?}");
    // The challenge path answers only tokens of an order in progress.
    let r = client()
        .get(g.url("/.well-known/acme-challenge/unknown"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 301);
    let m = g.metrics().await;
    let expiry = metric(
        &m,
        "rampart_tls_certificate_expiry_timestamp_seconds{server=\"secure\"}",
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as f64;
    assert!(expiry.is_some_and(|e| e > now + 86_400.0), "{expiry:?}");
    // Private storage: the directory 0700, the files 0600.
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&store), 0o700);
    let mut files = 0;
    for dir in ["accounts", "certs"] {
        for entry in walk(&store.join(dir)) {
            assert_eq!(mode(&entry), 0o600, "{}", entry.display());
            files += 1;
        }
    }
    assert_eq!(files, 3, "account, certificate, key");
    let log = g.stderr_text();
    for step in [
        "ACME account created",
        "ACME order created",
        "ACME challenge answered",
        "ACME certificate obtained",
    ] {
        assert!(log.contains(step), "{step}: {log}");
    }

    // A restart with the CA gone: the stored certificate, no order.
    drop(g);
    pebble.stop();
    let g = Gateway::start_on(&toml, free_port());
    let deadline = Instant::now() + Duration::from_secs(10);
    while https_get(tls, &root).await.as_deref() != Ok("secure") {
        assert!(Instant::now() < deadline, "{}", g.stderr_text());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let m = g.metrics().await;
    assert!(!m.contains("rampart_acme_orders_total"), "{m}");
    assert!(g
        .stderr_text()
        .contains("using the stored ACME certificate"));
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_alpn01_validates_on_the_tls_listener_alone() {
    let tls = free_port();
    // Nothing listens on pebble's HTTP-01 port: only TLS-ALPN-01 can pass.
    let pebble = Pebble::start(free_port(), tls);
    let storage = tempfile::tempdir().unwrap();
    let acme = acme_table(
        &pebble.directory(),
        storage.path(),
        "challenge = \"tls-alpn-01\"",
    );
    let g = Gateway::start_on(&tls_only_config(&acme), tls);
    orders(&g, "ok", 1.0).await;
    let root = pebble.issuing_root().await;
    assert_eq!(https_get(tls, &root).await.as_deref(), Ok("secure"));
    assert!(g.stderr_text().contains("TlsAlpn01"), "{}", g.stderr_text());
    assert!(
        pebble.log().contains("set VALID by completed challenge"),
        "{}",
        pebble.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_due_certificate_is_renewed_and_a_failed_renewal_keeps_it() {
    let (plain, tls) = (free_port(), free_port());
    let storage = tempfile::tempdir().unwrap();
    let (chain, key, due_der) = due_certificate();
    rampart::acme::storage::Storage::open(storage.path())
        .unwrap()
        .write_cert(&[NAME.to_string()], chain.as_bytes(), key.as_bytes())
        .unwrap();

    // pebble cannot reach the HTTP-01 answer (its port is not rampart's):
    // the renewal fails, the due certificate stays in use.
    let pebble = Pebble::start(free_port(), tls);
    let toml = http01_config(&acme_table(&pebble.directory(), storage.path(), ""), tls);
    let g = Gateway::start_on(&toml, plain);
    orders(&g, "error", 1.0).await;
    assert_eq!(presented_leaf(tls).await, Some(due_der.clone()));
    // Backoff: no second order in the next seconds (the service looks
    // every second).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let m = g.metrics().await;
    let errors = metric(
        &m,
        "rampart_acme_orders_total{result=\"error\",server=\"secure\"}",
    );
    assert_eq!(errors, Some(1.0), "{m}");
    let log = g.stderr_text();
    assert!(log.contains("ACME order failed"), "{log}");
    assert!(
        log.contains("the current certificate stays in use"),
        "{log}"
    );
    drop(g);
    drop(pebble);

    // With the challenge reachable, the due certificate is replaced.
    let pebble = Pebble::start(plain, tls);
    let toml = http01_config(&acme_table(&pebble.directory(), storage.path(), ""), tls);
    let g = Gateway::start_on(&toml, plain);
    orders(&g, "ok", 1.0).await;
    let root = pebble.issuing_root().await;
    assert_eq!(https_get(tls, &root).await.as_deref(), Ok("secure"));
    let renewed = presented_leaf(tls).await;
    assert!(matches!(&renewed, Some(l) if *l != due_der), "{renewed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn before_the_first_certificate_handshakes_for_the_name_fail() {
    let storage = tempfile::tempdir().unwrap();
    // A directory nobody answers: the order fails at once, and is counted.
    let closed = format!("https://127.0.0.1:{}/dir", free_port());
    let g = Gateway::start(&tls_only_config(&acme_table(&closed, storage.path(), "")));
    orders(&g, "error", 1.0).await;
    assert_eq!(
        presented_leaf(g.port).await,
        None,
        "no stand-in certificate"
    );
    let log = g.stderr_text();
    assert!(log.contains("ACME order failed"), "{log}");
    assert!(log.contains("handshakes for its names fail"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_sharing_storage_order_once() {
    let (plain, tls_a, tls_b) = (free_port(), free_port(), free_port());
    let pebble = Pebble::start(plain, tls_a);
    let storage = tempfile::tempdir().unwrap();
    let acme = acme_table(&pebble.directory(), storage.path(), "");
    let a = Gateway::start_on(&http01_config(&acme, tls_a), plain);
    let log = a.stderr_when_contains("ordering an ACME certificate").await;
    assert!(log.contains("ordering an ACME certificate"), "{log}");
    // The second process starts while the first is ordering or after it:
    // either way it takes what the first stored (the lock itself is the
    // next test's).
    let b = Gateway::start(&http01_config(&acme, tls_b));
    orders(&a, "ok", 1.0).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let leaf_a = presented_leaf(tls_a).await;
    assert!(leaf_a.is_some());
    while presented_leaf(tls_b).await != leaf_a {
        assert!(Instant::now() < deadline, "{}", b.stderr_text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let m = b.metrics().await;
    assert!(
        !m.contains("rampart_acme_orders_total"),
        "the second process ordered: {m}"
    );
    let root = pebble.issuing_root().await;
    assert_eq!(https_get(tls_b, &root).await.as_deref(), Ok("secure"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_holding_the_storage_lock_is_waited_for() {
    let tls = free_port();
    let pebble = Pebble::start(free_port(), tls);
    let storage = tempfile::tempdir().unwrap();
    let store = rampart::acme::storage::Storage::open(storage.path()).unwrap();
    // This test is the "other process": it holds the lock, and stores a
    // certificate while rampart waits.
    let lock = store
        .lock(Duration::ZERO)
        .unwrap()
        .expect("the lock is free");
    let acme = acme_table(
        &pebble.directory(),
        storage.path(),
        "challenge = \"tls-alpn-01\"",
    );
    let g = Gateway::start_on(&tls_only_config(&acme), tls);
    let waiting = "another process holds the ACME storage lock; waiting";
    let log = g.stderr_when_contains(waiting).await;
    assert!(log.contains(waiting), "{log}");
    let (chain, key, der) = certificate(-1, 60);
    store
        .write_cert(&[NAME.to_string()], chain.as_bytes(), key.as_bytes())
        .unwrap();
    drop(lock);
    let deadline = Instant::now() + Duration::from_secs(15);
    while presented_leaf(tls).await.as_ref() != Some(&der) {
        assert!(Instant::now() < deadline, "{}", g.stderr_text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Taken from the storage on its next look (with or without the lock).
    let log = g.stderr_text();
    assert!(
        log.contains("using the stored ACME certificate")
            || log.contains("using the ACME certificate another process stored"),
        "{log}"
    );
    let m = g.metrics().await;
    assert!(!m.contains("rampart_acme_orders_total"), "it ordered: {m}");
}
