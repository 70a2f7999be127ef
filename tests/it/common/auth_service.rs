//! A forward-auth service on loopback (what oauth2-proxy is to nginx's
//! `auth_request`), deciding by the `session` cookie:
//! - `ann`: 200 with `X-Auth-Request-User: ann` and `X-Auth-Request-Email`;
//! - `bob`: 200 with `X-Auth-Request-User: bob` only;
//! - `banned`: 403 with a body;
//! - `slow`: 200 after 3 s;
//! - `moved`: 302 (neither admits nor refuses);
//! - none: 401 with `WWW-Authenticate`, two cookies and a login page.

use super::*;

pub struct AuthService {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for AuthService {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl AuthService {
    pub async fn start() -> AuthService {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let s = s.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let s = s.clone();
                        async move { Ok::<_, Infallible>(decide(req, s).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        AuthService { addr, seen, task }
    }

    pub fn last(&self) -> Seen {
        self.seen
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("no auth request")
    }

    pub fn asked(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

async fn decide(req: Request<Incoming>, seen: Arc<Mutex<Vec<Seen>>>) -> Response<Full<Bytes>> {
    let (parts, _) = req.into_parts();
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(n, v)| {
            (
                n.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let session = headers
        .iter()
        .filter(|(n, _)| n == "cookie")
        .flat_map(|(_, v)| {
            v.split(';')
                .map(|c| c.trim().to_string())
                .collect::<Vec<_>>()
        })
        .find_map(|c| c.strip_prefix("session=").map(str::to_string));
    seen.lock().unwrap().push(Seen {
        method: parts.method.to_string(),
        uri: parts.uri.to_string(),
        headers,
        body_len: 0,
    });
    let answer = |status: u16, body: &'static str, headers: &[(&str, &str)]| {
        let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
        *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
        for (n, v) in headers {
            r.headers_mut().append(
                hyper::header::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        r
    };
    match session.as_deref() {
        Some("ann") => answer(
            200,
            "",
            &[
                ("x-auth-request-user", "ann"),
                ("x-auth-request-email", "ann@example.com"),
            ],
        ),
        Some("bob") => answer(202, "", &[("x-auth-request-user", "bob")]),
        Some("banned") => answer(403, "banned", &[("content-type", "text/plain")]),
        Some("slow") => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            answer(200, "", &[])
        }
        Some("moved") => answer(302, "", &[("location", "/elsewhere")]),
        Some("broken") => answer(500, "auth service error", &[]),
        _ => answer(
            401,
            "<a href=\"/login\">login first</a>",
            &[
                ("content-type", "text/html"),
                ("www-authenticate", "Bearer realm=\"sso\""),
                ("set-cookie", "csrf=1; Path=/"),
                ("set-cookie", "next=/app; Path=/"),
            ],
        ),
    }
}
