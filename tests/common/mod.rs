//! Test harness: real loopback origins and the real `rampart` binary.
#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::Write;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// A free loopback port. Handed out from a per-process sequence below the
/// ephemeral range, so two tests running at once never get the same port
/// (with bind-and-release, a port freed by one test could be handed to
/// another before the first test's rampart binds it).
pub fn free_port() -> u16 {
    use std::sync::atomic::AtomicU32;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let base = (std::process::id() * 37) % 15_000;
    for _ in 0..5_000 {
        let port = 10_000 + (base + NEXT.fetch_add(1, Ordering::Relaxed)) % 20_000;
        if StdListener::bind(("127.0.0.1", port as u16)).is_ok() {
            return port as u16;
        }
    }
    panic!("no free port")
}

/// What an origin saw of one request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub uri: String,
    pub headers: Vec<(String, String)>,
    pub body_len: usize,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// A real HTTP/1.1 origin on loopback. Paths:
/// `/slow/<ms>` answers after a delay; `/status/<code>` answers that status;
/// `/headers` answers with upstream headers (Server, Keep-Alive, X-Frame-Options);
/// anything else answers 200 "origin <name>".
pub struct Origin {
    pub addr: SocketAddr,
    pub hits: Arc<AtomicUsize>,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    /// Connections accepted so far / open now.
    pub accepted: Arc<AtomicUsize>,
    pub open: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
    /// Connection tasks, aborted with the origin so that dropping it is a
    /// real "kill": pooled connections to it die too.
    conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

/// How an origin behaves beyond the path conventions.
#[derive(Clone, Default)]
pub struct Behaviour {
    /// Delay before every answer.
    pub delay: Duration,
    /// Status of every answer (default 200), `/health` excepted.
    pub status: Option<u16>,
    /// Status of `/health` (default 200).
    pub health: Option<u16>,
    /// Serve HTTPS with the test leaf certificate (localhost, 127.0.0.1).
    pub tls: bool,
}

pub fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn tls_acceptor() -> tokio_rustls::TlsAcceptor {
    let certs =
        rustls_pemfile::certs(&mut std::fs::read(fixture("leaf-chain.pem")).unwrap().as_slice())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
    let key = rustls_pemfile::private_key(
        &mut std::fs::read(fixture("leaf-key.pem")).unwrap().as_slice(),
    )
    .unwrap()
    .unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(cfg))
}

struct OpenGuard(Arc<AtomicUsize>);
impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.task.abort();
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }
}

impl Origin {
    pub async fn start(name: &'static str) -> Origin {
        Self::start_on(name, "127.0.0.1:0").await
    }

    pub async fn start_on(name: &'static str, addr: &str) -> Origin {
        Self::start_with(name, addr, Behaviour::default()).await
    }

    pub async fn start_with(name: &'static str, addr: &str, b: Behaviour) -> Origin {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let accepted = Arc::new(AtomicUsize::new(0));
        let open = Arc::new(AtomicUsize::new(0));
        let (h, s, acc, op) = (hits.clone(), seen.clone(), accepted.clone(), open.clone());
        let conns = Arc::new(Mutex::new(Vec::new()));
        let cs = conns.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                acc.fetch_add(1, Ordering::SeqCst);
                op.fetch_add(1, Ordering::SeqCst);
                let guard = OpenGuard(op.clone());
                let (h, s, b) = (h.clone(), s.clone(), b.clone());
                let acceptor = b.tls.then(tls_acceptor);
                let conn = tokio::spawn(async move {
                    let _guard = guard;
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let (h, s, b) = (h.clone(), s.clone(), b.clone());
                        async move { Ok::<_, Infallible>(handle(name, req, h, s, &b).await) }
                    });
                    let http = hyper::server::conn::http1::Builder::new();
                    match acceptor {
                        Some(a) => {
                            if let Ok(tls) = a.accept(stream).await {
                                let _ = http
                                    .serve_connection(TokioIo::new(tls), svc)
                                    .with_upgrades()
                                    .await;
                            }
                        }
                        None => {
                            let _ = http
                                .serve_connection(TokioIo::new(stream), svc)
                                .with_upgrades()
                                .await;
                        }
                    }
                });
                cs.lock().unwrap().push(conn.abort_handle());
            }
        });
        Origin {
            addr,
            hits,
            seen,
            accepted,
            open,
            task,
            conns,
        }
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    pub fn last(&self) -> Seen {
        self.seen
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("origin saw no request")
    }
}

async fn handle(
    name: &'static str,
    req: Request<Incoming>,
    hits: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Seen>>>,
    b: &Behaviour,
) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    if parts.uri.path() == "/health" {
        let mut r = Response::new(Full::new(Bytes::from_static(b"health")));
        *r.status_mut() = hyper::StatusCode::from_u16(b.health.unwrap_or(200)).unwrap();
        return r;
    }
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    hits.fetch_add(1, Ordering::SeqCst);
    seen.lock().unwrap().push(Seen {
        method: parts.method.to_string(),
        uri: parts.uri.to_string(),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body_len: body.len(),
    });
    if !b.delay.is_zero() {
        tokio::time::sleep(b.delay).await;
    }
    let path = parts.uri.path().to_string();
    if let Some(ms) = path.strip_prefix("/slow/") {
        let ms: u64 = ms.parse().unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let mut resp = Response::new(Full::new(Bytes::from(format!("origin {name}"))));
    if let Some(st) = b.status {
        *resp.status_mut() = hyper::StatusCode::from_u16(st).unwrap();
    }
    if let Some(code) = path.strip_prefix("/status/") {
        *resp.status_mut() = hyper::StatusCode::from_u16(code.parse().unwrap_or(500)).unwrap();
    }
    if path.ends_with("/json-big")
        || path.ends_with("/json-no-transform")
        || path.ends_with("/json-encoded")
    {
        *resp.body_mut() = Full::new(Bytes::from(format!(
            "{{\"items\": \"{}\"}}",
            "abc".repeat(700)
        )));
        let h = resp.headers_mut();
        h.insert("content-type", "application/json".parse().unwrap());
        if path.ends_with("/json-no-transform") {
            h.insert("cache-control", "no-transform".parse().unwrap());
        }
        if path.ends_with("/json-encoded") {
            h.insert("content-encoding", "br".parse().unwrap());
        }
    }
    if path.ends_with("/upstream-cors") {
        let h = resp.headers_mut();
        h.insert("access-control-allow-origin", "*".parse().unwrap());
        h.insert("vary", "Accept-Encoding".parse().unwrap());
    }
    if path == "/headers" {
        let h = resp.headers_mut();
        h.insert("server", "gunicorn".parse().unwrap());
        h.insert("x-frame-options", "SAMEORIGIN".parse().unwrap());
        h.insert("cache-control", "private".parse().unwrap());
    }
    resp
}

/// A running `rampart run` process with its config file and stdout (the
/// access log) captured.
pub struct Gateway {
    pub child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub admin: u16,
    pub config: PathBuf,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        // RAMPART_TEST_KEEP_LOGS=1 keeps each gateway's stderr for debugging.
        if std::env::var_os("RAMPART_TEST_KEEP_LOGS").is_some() {
            let _ = std::fs::copy(&self.stderr, format!("/tmp/rampart-test-{}.log", self.port));
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_rampart")
}

impl Gateway {
    /// Starts rampart with `toml`, where `{PORT}` and `{ADMIN}` are
    /// replaced by free ports. Waits until the main port accepts.
    pub fn start(toml: &str) -> Gateway {
        Self::start_with_stdout(toml, None)
    }

    /// As [`Self::start`], with stdout going to `stdout` (e.g. a pipe
    /// nobody reads) instead of a file.
    pub fn start_with_stdout(toml: &str, stdout_to: Option<Stdio>) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let admin = free_port();
        let config = dir.path().join("rampart.toml");
        let text = toml
            .replace("{PORT}", &port.to_string())
            .replace("{ADMIN}", &admin.to_string());
        std::fs::File::create(&config)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let stdout = dir.path().join("stdout.log");
        let stderr = dir.path().join("stderr.log");
        let child = Command::new(bin())
            .args(["run", "-c"])
            .arg(&config)
            .stdout(
                stdout_to.unwrap_or_else(|| Stdio::from(std::fs::File::create(&stdout).unwrap())),
            )
            .stderr(Stdio::from(std::fs::File::create(&stderr).unwrap()))
            .spawn()
            .expect("spawn rampart");
        let g = Gateway {
            child: Some(child),
            dir,
            port,
            admin,
            config,
            stdout,
            stderr,
        };
        g.wait_port(port);
        g
    }

    pub fn wait_port(&self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!(
            "rampart did not listen on {port}; stderr:\n{}",
            self.stderr_text()
        );
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// The child's stdout, when it was started with a pipe.
    pub fn take_stdout(&mut self) -> Option<std::process::ChildStdout> {
        self.child.as_mut()?.stdout.take()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args(["-s", sig, &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Access-log lines (JSON), waiting up to 3 s for at least `n`.
    pub fn access_log(&self, n: usize) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let lines: Vec<serde_json::Value> = std::fs::read_to_string(&self.stdout)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect();
            if lines.len() >= n || Instant::now() > deadline {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Rewrites the config file (placeholders filled with this gateway's
    /// ports), sends SIGHUP and waits until `path` answers `want`.
    pub async fn reload_to(&self, toml: &str, path: &str, want: &str) {
        let filled = toml
            .replace("{PORT}", &self.port.to_string())
            .replace("{ADMIN}", &self.admin.to_string());
        std::fs::write(&self.config, filled).unwrap();
        self.signal("HUP");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let body = client()
                .get(self.url(path))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            if body == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "reload not applied: {path} still answers {body:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The metrics once `ready` holds for them (they are recorded when a
    /// request's logging phase ends, just after its response went out);
    /// the last scrape after 3 s otherwise.
    pub async fn metrics_when(&self, ready: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let m = self.metrics().await;
            if ready(&m) || Instant::now() > deadline {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn metrics(&self) -> String {
        client()
            .get(format!("http://127.0.0.1:{}/metrics", self.admin))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Waits for the process to exit (bounded) and returns its status code.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        let child = self.child.as_mut().unwrap();
        while Instant::now() < deadline {
            if let Some(st) = child.try_wait().unwrap() {
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

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

/// A backend that reads a request (head and `Content-Length` body) and
/// closes the connection without answering: a "broken response".
pub struct Dropper {
    pub addr: SocketAddr,
    pub accepted: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Dropper {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Dropper {
    pub async fn start() -> Dropper {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let acc = accepted.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    return;
                };
                acc.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let deadline = Instant::now() + Duration::from_secs(2);
                    while Instant::now() < deadline {
                        let Ok(Ok(n)) =
                            tokio::time::timeout(Duration::from_millis(200), s.read(&mut chunk))
                                .await
                        else {
                            break;
                        };
                        if n == 0 {
                            break;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        let text = String::from_utf8_lossy(&buf).to_ascii_lowercase();
                        if let Some(end) = text.find("\r\n\r\n") {
                            let len = text
                                .lines()
                                .find_map(|l| {
                                    l.strip_prefix("content-length:")
                                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                                })
                                .unwrap_or(0);
                            if buf.len() >= end + 4 + len {
                                break;
                            }
                        }
                    }
                    drop(s);
                });
            }
        });
        Dropper {
            addr,
            accepted,
            task,
        }
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// A rustls client config trusting the test CA, limited to `versions`.
pub fn tls_client(
    versions: &[&'static rustls::SupportedProtocolVersion],
    alpn: &[&[u8]],
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut std::fs::read(fixture("ca.pem")).unwrap().as_slice()) {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(cfg)
}

/// What a TLS exchange showed.
#[derive(Debug)]
pub struct TlsSeen {
    pub version: Option<rustls::ProtocolVersion>,
    pub subject_cn: String,
    pub alpn: Option<Vec<u8>>,
    pub resumed: bool,
    pub response: String,
}

pub type TlsConn = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// Opens a TLS connection with `sni`.
pub async fn tls_connect(
    port: u16,
    sni: &str,
    cfg: Arc<rustls::ClientConfig>,
) -> std::io::Result<TlsConn> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let name = rustls::pki_types::ServerName::try_from(sni.to_string())
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    tokio_rustls::TlsConnector::from(cfg)
        .connect(name, tcp)
        .await
}

/// One HTTP/1.1 request on an open TLS connection; returns the response head + body read so far.
pub async fn tls_request(conn: &mut TlsConn, host: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    conn.write_all(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(300), conn.read(&mut buf)).await
        else {
            break;
        };
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&out);
        if let Some(end) = text.find("\r\n\r\n") {
            let len = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            if out.len() >= end + 4 + len {
                break;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn describe(conn: &TlsConn, response: String) -> TlsSeen {
    let (_, c) = conn.get_ref();
    let subject_cn = c
        .peer_certificates()
        .and_then(|certs| certs.first())
        .and_then(|der| {
            let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
            let cn = cert
                .subject()
                .iter_common_name()
                .next()?
                .as_str()
                .ok()?
                .to_string();
            Some(cn)
        })
        .unwrap_or_default();
    TlsSeen {
        version: c.protocol_version(),
        subject_cn,
        alpn: c.alpn_protocol().map(|a| a.to_vec()),
        resumed: c.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
        response,
    }
}

/// Connect, GET, describe.
pub async fn tls_get(
    port: u16,
    sni: &str,
    host: &str,
    path: &str,
    cfg: Arc<rustls::ClientConfig>,
) -> std::io::Result<TlsSeen> {
    let mut conn = tls_connect(port, sni, cfg).await?;
    let resp = tls_request(&mut conn, host, path).await;
    Ok(describe(&conn, resp))
}

/// A WebSocket echo origin (text and binary), counting open connections;
/// dropping it kills every connection.
pub struct WsOrigin {
    pub addr: SocketAddr,
    pub open: Arc<AtomicUsize>,
    pub accepted: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
    conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Drop for WsOrigin {
    fn drop(&mut self) {
        self.task.abort();
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }
}

impl WsOrigin {
    pub async fn start() -> WsOrigin {
        use futures_util::{SinkExt, StreamExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let open = Arc::new(AtomicUsize::new(0));
        let accepted = Arc::new(AtomicUsize::new(0));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let (op, acc, cs) = (open.clone(), accepted.clone(), conns.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let guard = OpenGuard(op.clone());
                op.fetch_add(1, Ordering::SeqCst);
                acc.fetch_add(1, Ordering::SeqCst);
                let conn = tokio::spawn(async move {
                    let _guard = guard;
                    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                        return;
                    };
                    while let Some(Ok(msg)) = ws.next().await {
                        if msg.is_close() {
                            let _ = ws.close(None).await;
                            break;
                        }
                        if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                            break;
                        }
                    }
                });
                cs.lock().unwrap().push(conn.abort_handle());
            }
        });
        WsOrigin {
            addr,
            open,
            accepted,
            task,
            conns,
        }
    }

    pub fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }
}

/// A Server-Sent-Events origin: `n` events, one every `every`.
pub async fn sse_origin(n: usize, every: Duration) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    use http_body_util::StreamBody;
    use hyper::body::Frame;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let svc = service_fn(move |_req: Request<Incoming>| async move {
                    let events = futures_util::stream::unfold(0usize, move |i| async move {
                        if i >= n {
                            return None;
                        }
                        if i > 0 {
                            tokio::time::sleep(every).await;
                        }
                        let frame = Frame::data(Bytes::from(format!("data: event {i}\n\n")));
                        Some((Ok::<_, Infallible>(frame), i + 1))
                    });
                    let mut resp = Response::new(StreamBody::new(events));
                    resp.headers_mut()
                        .insert("content-type", "text/event-stream".parse().unwrap());
                    resp.headers_mut()
                        .insert("cache-control", "no-cache".parse().unwrap());
                    Ok::<_, Infallible>(resp)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, task)
}

/// Reads one request head from a raw test upstream (within `within`);
/// `false` when the connection ends or times out first.
#[allow(dead_code)] // not every test binary has a raw upstream
pub fn read_request_head(s: &mut std::net::TcpStream, within: Duration) -> bool {
    use std::io::Read;
    if s.set_read_timeout(Some(within)).is_err() {
        return false;
    }
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return false,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    true
}

/// Reads until the server closes the connection (or 5 s pass).
pub fn read_to_close(s: &mut std::net::TcpStream) -> String {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut out = Vec::new();
    let _ = std::io::Read::read_to_end(s, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Sends `request` on a fresh connection and reads until the server closes
/// it; returns what was read and how long the close took (a server that
/// keeps the connection open is cut off by the 5 s read timeout).
pub fn exchange_until_close(port: u16, request: &[u8]) -> (String, Duration) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(request).unwrap();
    let start = Instant::now();
    let got = read_to_close(&mut s);
    (got, start.elapsed())
}
