//! `buffering` (nginx `proxy_buffering` / `proxy_request_buffering`): a
//! slow client does not hold the upstream. Measured where it matters, at the
//! upstream: when it finished sending a large response, when it saw the
//! head of a slowly uploaded request.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;

/// What the upstream saw, with times.
#[derive(Default)]
struct Upstream {
    /// When the last byte of the response body was handed to the connection.
    response_sent: Option<Instant>,
    /// When a request head arrived, and the length of its body.
    heads: Vec<(Instant, usize)>,
}

/// A body of `left` bytes in 64 KiB frames that notes when it is all out.
struct Big {
    left: usize,
    seen: Arc<Mutex<Upstream>>,
}

impl Body for Big {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let n = self.left.min(64 * 1024);
        self.left -= n;
        if self.left == 0 {
            self.seen.lock().unwrap().response_sent = Some(Instant::now());
        }
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![b'x'; n])))))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left as u64)
    }
}

/// An upstream answering `GET /big/<n>` with n bytes, and anything else
/// (after reading its body) with the body's length.
async fn upstream() -> (std::net::SocketAddr, Arc<Mutex<Upstream>>) {
    // A small send buffer (inherited by accepted connections, and no
    // autotuning): on loopback the kernel would otherwise take megabytes
    // off the upstream's hands whatever the proxy does.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_send_buffer_size(64 * 1024).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(64).unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Upstream::default()));
    let s = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let s = s.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<Incoming>| {
                    let s = s.clone();
                    async move {
                        let at = Instant::now();
                        let path = req.uri().path().to_string();
                        let body = req
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        s.lock().unwrap().heads.push((at, body.len()));
                        let left = path
                            .strip_prefix("/big/")
                            .and_then(|n| n.parse().ok())
                            .unwrap_or(0);
                        let body = match left {
                            0 => http_body_util::Full::new(Bytes::from(body.len().to_string()))
                                .map_err(|e| match e {})
                                .boxed(),
                            n => Big {
                                left: n,
                                seen: s.clone(),
                            }
                            .boxed(),
                        };
                        Ok::<_, Infallible>(Response::new(body))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, seen)
}

const SIZE: usize = 16 << 20;

/// Downloads `path` reading at most 64 KiB every 5 ms through a small receive
/// window; returns the bytes of body read and when the request was sent.
async fn slow_download(port: u16, path: &str) -> (usize, Instant) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(64 * 1024).unwrap();
    let mut s = socket.connect(([127, 0, 0, 1], port).into()).await.unwrap();
    let start = Instant::now();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n = s.read(&mut buf).await.unwrap();
        if n == 0 || Instant::now() > deadline {
            break;
        }
        total += n;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (total, start)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_download_does_not_hold_the_upstream() {
    let (addr, seen) = upstream().await;
    let g = Gateway::start(
        &Config::new()
            .upstream("app", addr, "")
            .server("buffer_size = \"32M\"")
            .route("prefix = \"/stream/\"\nupstream = \"app\"\nbuffering = false\nrewrite_prefix = \"/\"")
            .proxy("/", "app")
            .build(),
    );
    let mut took = Vec::new();
    for path in [format!("/big/{SIZE}"), format!("/stream/big/{SIZE}")] {
        seen.lock().unwrap().response_sent = None;
        let (read, start) = slow_download(g.port, &path).await;
        let client = start.elapsed();
        assert!(read > SIZE, "{path}: read {read}");
        let upstream = seen.lock().unwrap().response_sent.expect("sent") - start;
        eprintln!("{path}: upstream done after {upstream:?}, client after {client:?}");
        took.push((upstream, client));
    }
    let (buffered, streamed) = (took[0], took[1]);
    // The kernel's socket buffers take a few MiB off the upstream's hands
    // either way: the response is four times as large.
    assert!(
        buffered.0 < buffered.1 / 4,
        "buffering: the upstream finished at {:?}, the client at {:?}",
        buffered.0,
        buffered.1
    );
    assert!(
        streamed.0 > streamed.1 / 2,
        "buffering = false: the upstream finished at {:?}, the client at {:?}",
        streamed.0,
        streamed.1
    );
}

/// Uploads `len` bytes to `path` in 16 pieces 50 ms apart; returns when
/// the last piece started to be sent and the answer's body.
async fn slow_upload(port: u16, path: &str, len: usize) -> (Instant, String) {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(
        format!(
            "POST {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: {len}\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let piece = vec![b'u'; len / 16];
    let mut sent = Instant::now();
    for _ in 0..16 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        // Before the write: the body cannot be whole earlier than this.
        sent = Instant::now();
        s.write_all(&piece).await.unwrap();
    }
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut answer))
        .await
        .expect("answered")
        .unwrap();
    let text = String::from_utf8_lossy(&answer).into_owned();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let body = text
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    (sent, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_upload_reaches_the_upstream_whole() {
    let (addr, seen) = upstream().await;
    let g = Gateway::start(
        &Config::new()
            .upstream("app", addr, "")
            .server("buffer_size = \"128K\"")
            .route("prefix = \"/stream/\"\nupstream = \"app\"\nbuffering = false")
            .proxy("/", "app")
            .build(),
    );
    for (path, len, buffered) in [
        ("/upload", 96 * 1024, true),
        ("/upload", 256 * 1024, false), // over buffer_size: streamed
        ("/stream/upload", 96 * 1024, false),
    ] {
        let before = seen.lock().unwrap().heads.len();
        let (sent, body) = slow_upload(g.port, path, len).await;
        assert_eq!(
            body,
            len.to_string(),
            "{path}: the upstream got the whole body"
        );
        let heads = seen.lock().unwrap().heads.clone();
        assert_eq!(heads.len(), before + 1, "{path}: one request upstream");
        let head_at = heads[before].0;
        if buffered {
            assert!(
                head_at >= sent,
                "{path} ({len}): the upstream saw the head before the body was in"
            );
        } else {
            assert!(
                head_at + Duration::from_millis(400) < sent,
                "{path} ({len}): the upstream saw the head only {:?} before the body's end",
                sent.saturating_duration_since(head_at)
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stalls_mid_body_gets_408_and_the_upstream_nothing() {
    let (addr, seen) = upstream().await;
    let g = Gateway::start(
        &Config::new()
            .upstream("app", addr, "")
            .server("client_body_timeout = \"1s\"")
            .proxy("/", "app")
            .build(),
    );
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", g.port))
        .await
        .unwrap();
    s.write_all(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\nonly this")
        .await
        .unwrap();
    let start = Instant::now();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut answer))
        .await
        .expect("answered")
        .unwrap();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    // Had the head gone upstream, the upstream's read of the body would
    // have failed by now, and recorded it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        seen.lock().unwrap().heads.is_empty(),
        "the upstream was contacted"
    );
}
