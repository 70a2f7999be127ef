//! A differential property test of the HTTP/1 request path: generated
//! request sequences (mixed framing headers, odd whitespace, bare LF line
//! ends, obs-fold, leading blank lines, chunk extensions, pipelining,
//! requests hidden in bodies) go through rampart to a recording upstream.
//! Whatever the client sends, the upstream receives only requests the
//! client sent, in order, each with the same method, the documented
//! normalized path and the same body, and none after a request that must
//! close the connection.
//!
//! `PROPTEST_CASES` sets the number of cases (default 2000); a failure
//! prints the bytes sent and the minimal failing input.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use proptest::prelude::*;

/// What the upstream received of one request.
#[derive(Debug, Clone)]
struct Received {
    case: u64,
    index: usize,
    method: String,
    target: String,
    body: Vec<u8>,
}

type Log = Arc<Mutex<Vec<Received>>>;

/// A raw upstream: parses each request it gets (Content-Length or chunked
/// bodies), records it, answers `200 ok`, keeps the connection.
fn recording_origin() -> (SocketAddr, Log) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let log: Log = Arc::default();
    let l = log.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            let l = l.clone();
            std::thread::spawn(move || serve(conn, &l));
        }
    });
    (addr, log)
}

fn serve(mut conn: TcpStream, log: &Log) {
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let Some(head_end) = read_until(&mut conn, &mut buf, |b| {
            b.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
        }) else {
            return;
        };
        let head = buf[..head_end].to_vec();
        buf.drain(..head_end);
        let mut headers = [httparse::EMPTY_HEADER; 128];
        let mut req = httparse::Request::new(&mut headers);
        if !matches!(req.parse(&head), Ok(httparse::Status::Complete(_))) {
            return;
        }
        let header = |name: &str| {
            req.headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| String::from_utf8_lossy(h.value).trim().to_string())
        };
        let body = if header("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
        {
            match read_chunked(&mut conn, &mut buf) {
                Some(b) => b,
                None => return,
            }
        } else {
            let n: usize = header("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if read_until(&mut conn, &mut buf, |b| (b.len() >= n).then_some(n)).is_none() {
                return;
            }
            buf.drain(..n).collect()
        };
        let (case, index) = header("x-case")
            .and_then(|c| {
                let (a, b) = c.split_once('-')?;
                Some((a.parse().ok()?, b.parse().ok()?))
            })
            .unwrap_or((u64::MAX, usize::MAX));
        log.lock().unwrap().push(Received {
            case,
            index,
            method: req.method.unwrap_or("").to_string(),
            target: req.path.unwrap_or("").to_string(),
            body,
        });
        if conn
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            .is_err()
        {
            return;
        }
    }
}

/// Reads into `buf` until `done` finds what it needs (bounded by 1 MiB).
fn read_until(
    conn: &mut TcpStream,
    buf: &mut Vec<u8>,
    done: impl Fn(&[u8]) -> Option<usize>,
) -> Option<usize> {
    let mut chunk = [0u8; 8192];
    for _ in 0..1000 {
        if let Some(n) = done(buf) {
            return Some(n);
        }
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    None
}

fn read_chunked(conn: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    for _ in 0..1000 {
        let line_end = read_until(conn, buf, |b| {
            b.windows(2).position(|w| w == b"\r\n").map(|i| i + 2)
        })?;
        let line = String::from_utf8_lossy(&buf[..line_end - 2]).to_string();
        buf.drain(..line_end);
        let size = usize::from_str_radix(line.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            // Trailers, then the blank line.
            loop {
                let end = read_until(conn, buf, |b| {
                    b.windows(2).position(|w| w == b"\r\n").map(|i| i + 2)
                })?;
                let empty = end == 2;
                buf.drain(..end);
                if empty {
                    return Some(body);
                }
            }
        }
        read_until(conn, buf, |b| (b.len() >= size + 2).then_some(size + 2))?;
        body.extend_from_slice(&buf[..size]);
        buf.drain(..size + 2);
    }
    None
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Framing {
    None,
    Length,
    Chunked {
        extension: bool,
    },
    /// Transfer-Encoding: chunked and a Content-Length (RFC 9112 §6.3: close after).
    Both,
    /// `Transfer-Encoding: gzip, chunked` (501).
    CodedChunked,
    /// Two different Content-Length values (400).
    ConflictingLength,
    /// The same Content-Length twice (accepted as one).
    RepeatedLength,
}

#[derive(Debug, Clone)]
struct Req {
    method: &'static str,
    path: &'static str,
    http10: bool,
    keep_alive: bool,
    close: bool,
    framing: Framing,
    body: Vec<u8>,
    /// `Host:   x  ` rather than `Host: x`.
    spaces: bool,
    bare_lf: bool,
    obs_fold: bool,
    blank_lines: bool,
    /// The body carries a request line and an `X-Case` that was never sent.
    smuggle_in_body: bool,
}

fn req() -> impl Strategy<Value = Req> {
    (
        (
            prop::sample::select(vec!["GET", "POST", "PUT", "DELETE"]),
            prop::sample::select(vec![
                "/a",
                "/a/./b",
                "/a/%2e%2e/b",
                "/x//y/",
                "/p%20q",
                "/d/../ok?x=1",
                "/q?a=%2F",
                "/%7Euser/x",
                "/a/b/..",
            ]),
            any::<bool>(),
            any::<bool>(),
            prop::bool::weighted(0.15),
        ),
        (
            prop::sample::select(vec![
                Framing::None,
                Framing::Length,
                Framing::Length,
                Framing::Chunked { extension: false },
                Framing::Chunked { extension: true },
                Framing::Both,
                Framing::CodedChunked,
                Framing::ConflictingLength,
                Framing::RepeatedLength,
            ]),
            prop::collection::vec(any::<u8>(), 0..40),
        ),
        (
            prop::bool::weighted(0.2),
            prop::bool::weighted(0.15),
            prop::bool::weighted(0.08),
            prop::bool::weighted(0.1),
            prop::bool::weighted(0.2),
        ),
    )
        .prop_map(
            |(
                (method, path, http10, keep_alive, close),
                (framing, body),
                (spaces, bare_lf, obs_fold, blank_lines, smuggle_in_body),
            )| Req {
                method,
                path,
                // HTTP/1.0 has no Transfer-Encoding (pingora refuses it: 400).
                http10: http10
                    && !matches!(
                        framing,
                        Framing::Chunked { .. } | Framing::Both | Framing::CodedChunked
                    ),
                keep_alive,
                close,
                framing,
                body,
                spaces,
                bare_lf,
                obs_fold,
                blank_lines,
                smuggle_in_body,
            },
        )
}

impl Req {
    fn body(&self, case: u64) -> Vec<u8> {
        let mut b = self.body.clone();
        if self.smuggle_in_body {
            b.extend_from_slice(
                format!("GET /smuggled HTTP/1.1\r\nHost: x\r\nX-Case: {case}-99\r\n\r\n")
                    .as_bytes(),
            );
        }
        b
    }

    fn wire(&self, case: u64, index: usize) -> Vec<u8> {
        let eol = if self.bare_lf { "\n" } else { "\r\n" };
        let body = self.body(case);
        let mut h = String::new();
        if self.blank_lines {
            h.push_str(eol);
        }
        let version = if self.http10 { "HTTP/1.0" } else { "HTTP/1.1" };
        h.push_str(&format!("{} {} {version}{eol}", self.method, self.path));
        let host = if self.spaces {
            "Host:   x  "
        } else {
            "Host: x"
        };
        h.push_str(host);
        h.push_str(eol);
        h.push_str(&format!("X-Case: {case}-{index}{eol}"));
        if self.obs_fold {
            h.push_str(&format!("X-Folded: a{eol} b{eol}"));
        }
        if self.http10 && self.keep_alive {
            h.push_str(&format!("Connection: keep-alive{eol}"));
        }
        if self.close {
            h.push_str(&format!("Connection: close{eol}"));
        }
        let chunked = |ext: bool| {
            let mut out = Vec::new();
            for piece in body.chunks(7) {
                let ext = if ext { ";name=\"v\"" } else { "" };
                out.extend_from_slice(format!("{:x}{ext}\r\n", piece.len()).as_bytes());
                out.extend_from_slice(piece);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
            out
        };
        let mut payload = Vec::new();
        match self.framing {
            Framing::None => {}
            Framing::Length => {
                h.push_str(&format!("Content-Length: {}{eol}", body.len()));
                payload = body;
            }
            Framing::Chunked { extension } => {
                h.push_str(&format!("Transfer-Encoding: chunked{eol}"));
                payload = chunked(extension);
            }
            Framing::Both => {
                h.push_str(&format!(
                    "Transfer-Encoding: chunked{eol}Content-Length: {}{eol}",
                    body.len()
                ));
                payload = chunked(false);
            }
            Framing::CodedChunked => {
                h.push_str(&format!("Transfer-Encoding: gzip, chunked{eol}"));
                payload = chunked(false);
            }
            Framing::ConflictingLength => {
                h.push_str(&format!(
                    "Content-Length: {}{eol}Content-Length: {}{eol}",
                    body.len(),
                    body.len() + 1
                ));
                payload = body;
            }
            Framing::RepeatedLength => {
                h.push_str(&format!(
                    "Content-Length: {0}{eol}Content-Length: {0}{eol}",
                    body.len()
                ));
                payload = body;
            }
        }
        h.push_str(eol);
        let mut out = h.into_bytes();
        out.extend_from_slice(&payload);
        out
    }

    /// After this request the connection must be closed: nothing after it
    /// may reach the upstream.
    fn must_close(&self) -> bool {
        self.close
            || (self.http10 && !self.keep_alive)
            || self.obs_fold
            || !matches!(
                self.framing,
                Framing::None | Framing::Length | Framing::Chunked { .. } | Framing::RepeatedLength
            )
    }

    /// The request never reaches the upstream (refused by rampart).
    fn refused(&self) -> bool {
        self.obs_fold
            || matches!(
                self.framing,
                Framing::CodedChunked | Framing::ConflictingLength
            )
    }
}

struct Harness {
    g: Gateway,
    log: Log,
    next_case: AtomicU64,
}

fn harness() -> Harness {
    let (origin, log) = recording_origin();
    let toml = Config::new()
        .log("level = \"error\"")
        .upstream("app", origin, "read_timeout = \"5s\"")
        .server("keepalive_timeout = \"2s\"\nclient_header_timeout = \"2s\"")
        .proxy("/", "app")
        .build();
    Harness {
        g: Gateway::start(&toml),
        log,
        next_case: AtomicU64::new(0),
    }
}

/// Sends the requests on one connection (pipelined, with a final
/// `Connection: close` request if the connection is still open) and checks
/// what the upstream received.
fn check(h: &Harness, reqs: &[Req]) -> Result<(), TestCaseError> {
    let case = h.next_case.fetch_add(1, Ordering::Relaxed);
    let mut wire = Vec::new();
    for (i, r) in reqs.iter().enumerate() {
        wire.extend_from_slice(&r.wire(case, i));
    }
    let end = reqs.len();
    wire.extend_from_slice(
        format!(
            "GET /end HTTP/1.1\r\nHost: x\r\nX-Case: {case}-{end}\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    );
    let mut s = TcpStream::connect(("127.0.0.1", h.g.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
    let _ = s.write_all(&wire);
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let got: Vec<Received> = h
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.case == case)
        .cloned()
        .collect();
    let shown = || String::from_utf8_lossy(&wire).escape_debug().to_string();
    let mut last: Option<usize> = None;
    for r in &got {
        prop_assert!(
            r.index <= end,
            "the upstream got a request the client never sent ({r:?}) from: {}",
            shown()
        );
        prop_assert!(
            last.is_none_or(|l| r.index > l),
            "out of order or twice: {r:?} after {last:?}; sent: {}",
            shown()
        );
        if let Some(closer) = reqs[..r.index].iter().position(Req::must_close) {
            prop_assert!(
                false,
                "request {} reached the upstream after request {closer} had to close the connection; sent: {}",
                r.index,
                shown()
            );
        }
        if r.index < end {
            let sent = &reqs[r.index];
            prop_assert!(
                !sent.refused(),
                "a refused request was forwarded: {r:?}; sent: {}",
                shown()
            );
            prop_assert_eq!(&r.method, sent.method);
            let (path, query) = match sent.path.split_once('?') {
                Some((p, q)) => (p, Some(q)),
                None => (sent.path, None),
            };
            let normal = rampart::request_path::normalize(path, false).unwrap();
            let want = match query {
                Some(q) => format!("{}?{q}", normal.forward),
                None => normal.forward.to_string(),
            };
            prop_assert_eq!(&r.target, &want, "sent: {}", shown());
            let body = match sent.framing {
                Framing::None => Vec::new(),
                _ => sent.body(case),
            };
            prop_assert_eq!(&r.body, &body, "sent: {}", shown());
        }
        last = Some(r.index);
    }
    // Liveness: the first request, when well-formed, is answered.
    if let Some(first) = reqs.first() {
        if !first.refused() {
            prop_assert!(
                got.first().is_some_and(|r| r.index == 0),
                "a well-formed first request did not reach the upstream; got {got:?}; sent: {}; answer: {}",
                shown(),
                String::from_utf8_lossy(&answer)
            );
        }
    }
    Ok(())
}

#[test]
fn the_upstream_receives_only_requests_the_client_sent() {
    let h = harness();
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(2000);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let result = runner.run(&prop::collection::vec(req(), 1..4), |reqs| check(&h, &reqs));
    if let Err(e) = result {
        panic!("{e}");
    }
    // Not vacuous: most cases reached the upstream, refused ones did not.
    let log = h.log.lock().unwrap();
    let reached: std::collections::HashSet<u64> = log.iter().map(|r| r.case).collect();
    let ran = h.next_case.load(Ordering::Relaxed);
    assert!(
        reached.len() as u64 * 2 > ran && reached.len() as u64 != ran,
        "{} of {ran} cases reached the upstream",
        reached.len()
    );
    eprintln!(
        "{ran} cases, {} reached the upstream, {} requests received",
        reached.len(),
        log.len()
    );
}
