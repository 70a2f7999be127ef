//! Real loopback origins: the HTTP/1.1 (and TLS, h2) test origin and what it saw.

use super::*;

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

pub struct OpenGuard(pub Arc<AtomicUsize>);
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
