//! A deadline for the whole request head (`client_header_timeout`).
//!
//! pingora times each `read()` of a request head separately, so a client
//! trickling one byte just inside every timeout holds a connection forever
//! (slowloris; pingora #447). rampart wraps every accepted stream: the clock
//! starts at the first byte of a request head and the read fails with
//! `TimedOut` when the blank line that ends the head has not arrived by the
//! deadline. A head that arrives in one read (the normal case) never arms a
//! timer. After the head, the body and the response are not limited here;
//! the next request's start on a keep-alive connection (pingora's loop calls
//! [`Peek::next_request`]) re-arms the watch, so body bytes read after a
//! response began are never taken for a head.
//!
//! The same watch bounds the head's size: past [`MAX_HEAD`] bytes or
//! [`MAX_FIELDS`] header lines the client gets `431 Request Header Fields
//! Too Large` (pingora alone would buffer up to 1 MiB and 256 fields and
//! answer 400). Empty lines before the request line are part of the head:
//! they start the clock and count toward the size.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, Ssl, Stream, UniqueID,
    UniqueIDType,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// The largest request head accepted (nginx's default
/// `large_client_header_buffers 4 8k` allows 32 KiB).
pub const MAX_HEAD: usize = 64 * 1024;

/// Writes rampart's answer to a head refused here (431). The stream does
/// not know the configuration; the answer carries the headers of the server
/// the connection's address belongs to ([`crate::headers::early_error`]).
pub trait TooLarge: Send + Sync + std::fmt::Debug {
    /// The whole response, head and body, for a connection to `local`.
    fn answer(&self, local: Option<std::net::SocketAddr>, tls: bool) -> Vec<u8>;
}

#[derive(Debug)]
enum Phase {
    /// Waiting for the first byte of a request.
    Idle,
    /// Inside a head (blank lines before the request line included).
    Head { started: Instant, scan: HeadScan },
    /// An HTTP/2 connection before its preface: `left` of its 24 bytes
    /// still to come, by the deadline counted from the connection's start.
    Preface { started: Instant, left: u8 },
    /// Head complete; body and response are not our business.
    Rest,
    /// An upgraded (101) or HTTP/2 connection: no more HTTP/1 heads.
    Tunnel,
}

/// A stream that fails reads once a request head is overdue.
#[derive(Debug)]
pub struct HeadDeadline {
    inner: Stream,
    timeout: Duration,
    /// The answer to a head refused here (`None`: close without one).
    too_large: Option<Arc<dyn TooLarge>>,
    /// A pipelined head already over the limits: refused at its next read.
    refused: bool,
    phase: Phase,
    timer: Option<Pin<Box<Sleep>>>,
    /// Bytes read by [`Peek::try_peek`] and not yet handed to a reader
    /// (empty: the peer closed).
    ahead: Option<Vec<u8>>,
}

/// How much a peek reads ahead: a typical request head, so that the read
/// that follows it does not need another system call.
const PEEK_READ: usize = 2048;

impl HeadDeadline {
    pub fn new(inner: Stream, timeout: Duration, too_large: Arc<dyn TooLarge>) -> Self {
        HeadDeadline {
            inner,
            timeout,
            too_large: Some(too_large),
            refused: false,
            phase: Phase::Idle,
            timer: None,
            ahead: None,
        }
    }

    /// An HTTP/2 connection (ALPN h2): its 24-byte preface must arrive
    /// within `timeout` of now; after it, h2 limits its own frames.
    pub fn h2_preface(inner: Stream, timeout: Duration) -> Self {
        HeadDeadline {
            inner,
            timeout,
            too_large: None,
            refused: false,
            phase: Phase::Preface {
                started: Instant::now(),
                left: 24,
            },
            timer: None,
            ahead: None,
        }
    }

    /// A plain pass-through (no deadline, no size limit): gives a boxed
    /// stream the concrete type the TLS handshake needs, before the
    /// decrypted stream gets its own watch.
    pub fn passthrough(inner: Stream) -> Self {
        HeadDeadline {
            inner,
            timeout: Duration::ZERO,
            too_large: None,
            refused: false,
            phase: Phase::Rest,
            timer: None,
            ahead: None,
        }
    }

    /// Feeds bytes just read through the head's checks; `Err(431)` when
    /// the head must be refused: past [`MAX_HEAD`] bytes or [`MAX_FIELDS`]
    /// header lines. (A malformed request line is pingora's parser's to
    /// refuse: `strict_request_line`, see `server.rs`.)
    fn observe(&mut self, bytes: &[u8]) -> Result<(), u16> {
        if bytes.is_empty() {
            return Ok(());
        }
        let mut scan = match self.phase {
            Phase::Rest | Phase::Tunnel => return Ok(()),
            Phase::Preface { started, left } => {
                let left = left.saturating_sub(bytes.len().min(24) as u8);
                self.phase = match left {
                    0 => Phase::Tunnel,
                    _ => Phase::Preface { started, left },
                };
                if left == 0 {
                    self.timer = None;
                }
                return Ok(());
            }
            Phase::Idle if bytes.starts_with(b"PRI * HTTP/2") => {
                self.phase = Phase::Tunnel;
                return Ok(());
            }
            Phase::Idle => HeadScan::default(),
            Phase::Head { scan, .. } => scan,
        };
        let seen = head_end(scan.matched, bytes);
        let end = seen.end;
        scan.blank_lines += seen.leading_blank;
        scan.newlines += seen.newlines;
        scan.size += end.map_or(bytes.len(), |i| i + 1);
        // Request line and final blank line besides the fields (and any
        // blank lines before the request line).
        if scan.size > MAX_HEAD || scan.newlines > scan.blank_lines + MAX_FIELDS + 2 {
            return Err(431);
        }
        if end.is_some() {
            self.phase = Phase::Rest;
            self.timer = None;
            return Ok(());
        }
        scan.matched = seen.state;
        match &mut self.phase {
            Phase::Head { scan: s, .. } => *s = scan,
            _ => {
                self.phase = Phase::Head {
                    started: Instant::now(),
                    scan,
                }
            }
        }
        Ok(())
    }
}

/// The largest number of header fields accepted in a request head
/// (pingora alone allows 256, then answers 400).
pub const MAX_FIELDS: usize = 100;

/// What the checks have seen of a head so far.
#[derive(Debug, Clone, Copy)]
struct HeadScan {
    /// The end matcher's state ([`at`]).
    matched: u8,
    /// Bytes so far.
    size: usize,
    /// Line ends so far.
    newlines: usize,
    /// Line ends of the blank lines before the request line.
    blank_lines: usize,
}

impl Default for HeadScan {
    fn default() -> Self {
        HeadScan {
            matched: at::BEFORE,
            size: 0,
            newlines: 0,
            blank_lines: 0,
        }
    }
}

/// Where the head-end matcher is, between reads. A head ends with an empty
/// line; lines end with LF, optionally preceded by CR (RFC 9112 §2.2, as
/// pingora's parser reads them), and empty lines before the request line
/// are skipped — but they are part of the head for its deadline and size.
mod at {
    /// Only CR/LF so far: no request line yet.
    pub const BEFORE: u8 = 0;
    /// Inside a line.
    pub const LINE: u8 = 1;
    /// Just after a line's LF.
    pub const LF: u8 = 2;
    /// After a line's LF and a CR.
    pub const LF_CR: u8 = 3;
    /// The empty line that ends the head is complete.
    pub const END: u8 = 4;
}

/// One byte of the matcher.
fn step(state: u8, b: u8) -> u8 {
    match (state, b) {
        (at::BEFORE, b'\r' | b'\n') => at::BEFORE,
        (at::LF | at::LF_CR, b'\n') => at::END,
        (at::LF, b'\r') => at::LF_CR,
        (_, b'\n') => at::LF,
        _ => at::LINE,
    }
}

/// What one read holds of a head: where the head ends in it (the index of
/// its last byte), else the matcher state the read ends in; and the line
/// ends up to that point, those of blank lines before the request line
/// apart.
#[derive(Debug, PartialEq, Eq)]
struct Scanned {
    end: Option<usize>,
    state: u8,
    newlines: usize,
    leading_blank: usize,
}

/// Scans `bytes` given the matcher `state` the previous read ended in.
/// Inside lines, line ends are found with `memchr` rather than byte by
/// byte (a browser's head is half a kilobyte), and counted on the way: one
/// pass finds the end and the line count.
fn head_end(state: u8, bytes: &[u8]) -> Scanned {
    let mut out = Scanned {
        end: None,
        state,
        newlines: 0,
        leading_blank: 0,
    };
    let mut i = 0;
    while i < bytes.len() && out.state != at::LINE {
        if bytes[i] == b'\n' {
            out.newlines += 1;
            if out.state == at::BEFORE {
                out.leading_blank += 1;
            }
        }
        out.state = step(out.state, bytes[i]);
        if out.state == at::END {
            out.end = Some(i);
            return out;
        }
        i += 1;
    }
    if i == bytes.len() {
        return out;
    }
    let rest = &bytes[i..];
    for j in memchr::memchr_iter(b'\n', rest) {
        out.newlines += 1;
        let end = match (rest.get(j + 1), rest.get(j + 2)) {
            (Some(b'\n'), _) => i + j + 1,
            (Some(b'\r'), Some(b'\n')) => i + j + 2,
            _ => continue,
        };
        out.newlines += 1;
        out.end = Some(end);
        out.state = at::END;
        return out;
    }
    out.state = match rest {
        [.., b'\n'] => at::LF,
        [.., b'\n', b'\r'] => at::LF_CR,
        _ => at::LINE,
    };
    out
}

impl HeadDeadline {
    /// The first write after a head starts its response: the watch rests
    /// until the next request begins ([`Peek::next_request`]), so that body
    /// bytes read after the response began (a body drained after rampart's
    /// own answer, or still forwarded after an upstream answered early) are
    /// never taken for a head. An upgrade (101) ends the watch.
    fn on_response(&mut self, written: &[u8]) {
        // From `Head` too: a response means pingora's parser took the head
        // as complete, whatever this watch made of it.
        if !matches!(self.phase, Phase::Rest | Phase::Head { .. }) || self.timeout.is_zero() {
            return;
        }
        let status = written
            .strip_prefix(b"HTTP/1.1 ")
            .or_else(|| written.strip_prefix(b"HTTP/1.0 "))
            .and_then(|rest| rest.get(..3));
        self.timer = None;
        self.phase = match status {
            Some(b"101") => Phase::Tunnel,
            _ => Phase::Rest,
        };
    }
}

impl AsyncRead for HeadDeadline {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let polled = match this.ahead.take() {
            Some(mut ahead) => {
                let n = ahead.len().min(buf.remaining());
                buf.put_slice(&ahead[..n]);
                if n < ahead.len() {
                    ahead.drain(..n);
                    this.ahead = Some(ahead);
                }
                Poll::Ready(Ok(()))
            }
            None => Pin::new(&mut this.inner).poll_read(cx, buf),
        };
        match polled {
            Poll::Ready(Ok(())) => {
                let refused = std::mem::take(&mut this.refused);
                if refused || this.observe(&buf.filled()[before..]).is_err() {
                    if let Some(answers) = &this.too_large {
                        let local = this
                            .inner
                            .get_socket_digest()
                            .and_then(|d| d.local_addr().and_then(|a| a.as_inet()).copied());
                        let tls = this.inner.get_ssl_digest().is_some();
                        let answer = answers.answer(local, tls);
                        // Best effort: the socket buffer takes this small answer at once.
                        let _ = Pin::new(&mut this.inner).poll_write(cx, &answer);
                        let _ = Pin::new(&mut this.inner).poll_flush(cx);
                    }
                    return Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "request head larger than 64 KiB or with more than 100 fields",
                    )));
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                let started = match this.phase {
                    Phase::Head { started, .. } | Phase::Preface { started, .. } => started,
                    _ => return Poll::Pending,
                };
                if this.timeout.is_zero() {
                    return Poll::Pending;
                }
                let deadline = started + this.timeout;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "request head not complete within client_header_timeout",
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

use std::future::Future;

impl AsyncWrite for HeadDeadline {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.on_response(buf);
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        if let Some(first) = bufs.iter().find(|b| !b.is_empty()) {
            self.on_response(first);
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[async_trait]
impl Shutdown for HeadDeadline {
    async fn shutdown(&mut self) {
        self.inner.shutdown().await
    }
}

impl UniqueID for HeadDeadline {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for HeadDeadline {
    fn get_ssl(&self) -> Option<&pingora::protocols::tls::TlsRef> {
        self.inner.get_ssl()
    }
    fn get_ssl_digest(&self) -> Option<Arc<pingora::protocols::tls::SslDigest>> {
        self.inner.get_ssl_digest()
    }
    fn selected_alpn_proto(&self) -> Option<pingora::protocols::ALPN> {
        self.inner.selected_alpn_proto()
    }
}

impl GetTimingDigest for HeadDeadline {
    fn get_timing_digest(&self) -> Vec<Option<pingora::protocols::TimingDigest>> {
        self.inner.get_timing_digest()
    }
    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_read_pending_time()
    }
    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_write_pending_time()
    }
}

impl GetProxyDigest for HeadDeadline {
    fn get_proxy_digest(&self) -> Option<Arc<pingora::protocols::raw_connect::ProxyDigest>> {
        self.inner.get_proxy_digest()
    }
    fn set_proxy_digest(&mut self, digest: pingora::protocols::raw_connect::ProxyDigest) {
        self.inner.set_proxy_digest(digest)
    }
}

impl GetSocketDigest for HeadDeadline {
    fn get_socket_digest(&self) -> Option<Arc<pingora::protocols::SocketDigest>> {
        self.inner.get_socket_digest()
    }
    fn set_socket_digest(&mut self, d: pingora::protocols::SocketDigest) {
        self.inner.set_socket_digest(d)
    }
}

/// Waits for the peer's next bytes (any stream, TLS included) without a
/// buffer held while waiting: pingora's keepalive loop (patched) waits here
/// between requests instead of inside a whole request future.
#[async_trait]
impl Peek for HeadDeadline {
    /// A new request begins (pingora's keep-alive loop, patched): watch its
    /// head from here. `already_read`: its first bytes, read with the
    /// previous request (pipelining), checked as if read now. (When they
    /// hold the whole head, pingora parses it without reading here: a
    /// malformed request line in it is refused by pingora's own parser,
    /// with `strict_request_line`, see `server.rs`.)
    fn next_request(&mut self, already_read: &[u8]) {
        if matches!(self.phase, Phase::Tunnel) || self.timeout.is_zero() {
            return;
        }
        self.phase = Phase::Idle;
        self.timer = None;
        self.refused = self.observe(already_read).is_err();
    }

    async fn try_peek(&mut self, buf: &mut [u8]) -> std::io::Result<bool> {
        std::future::poll_fn(|cx| {
            if self.ahead.is_some() {
                return Poll::Ready(Ok(()));
            }
            let mut tmp = [0u8; PEEK_READ];
            let mut rb = ReadBuf::new(&mut tmp);
            match Pin::new(&mut self.inner).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) => {
                    self.ahead = Some(rb.filled().to_vec());
                    Poll::Ready(Ok(()))
                }
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            }
        })
        .await?;
        let ahead = self.ahead.as_deref().unwrap_or_default();
        let n = ahead.len().min(buf.len());
        buf[..n].copy_from_slice(&ahead[..n]);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The head-end search written as the plain byte-by-byte state
    /// machine, lines counted one by one.
    fn head_end_bytewise(state: u8, bytes: &[u8]) -> Scanned {
        let mut out = Scanned {
            end: None,
            state,
            newlines: 0,
            leading_blank: 0,
        };
        for (i, &b) in bytes.iter().enumerate() {
            if b == b'\n' {
                out.newlines += 1;
                out.leading_blank += usize::from(out.state == at::BEFORE);
            }
            out.state = step(out.state, b);
            if out.state == at::END {
                out.end = Some(i);
                break;
            }
        }
        out
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]
        /// Heads made of CR/LF-heavy pieces, cut anywhere: the same end, the
        /// same carried state and the same line counts as the state
        /// machine, read after read.
        #[test]
        fn head_end_agrees_with_the_state_machine(
            pieces in proptest::collection::vec(
                proptest::sample::select(vec!["\r", "\n", "\r\n", "a:", "\r\n\r", "\n\r", "b"]),
                0..30,
            ),
            cuts in proptest::collection::vec(0usize..80, 0..6),
        ) {
            let bytes = pieces.concat().into_bytes();
            let mut cuts: Vec<usize> = cuts.into_iter().filter(|&c| c <= bytes.len()).collect();
            cuts.push(0);
            cuts.push(bytes.len());
            cuts.sort_unstable();
            let (mut fast, mut slow) = (at::BEFORE, at::BEFORE);
            for w in cuts.windows(2) {
                let piece = &bytes[w[0]..w[1]];
                let (a, b) = (head_end(fast, piece), head_end_bytewise(slow, piece));
                proptest::prop_assert_eq!(&a, &b);
                if a.end.is_some() {
                    break;
                }
                (fast, slow) = (a.state, b.state);
            }
        }

        /// Whole heads as httparse (pingora's parser) reads them: where it
        /// says complete, the watch says the head ended at the same byte.
        #[test]
        fn head_end_is_where_httparse_ends_the_head(
            blank in proptest::sample::select(vec!["", "\r\n", "\n", "\r\n\r\n", "\n\n\r\n"]),
            eol in proptest::collection::vec(proptest::sample::select(vec!["\r\n", "\n"]), 4),
            extra in proptest::collection::vec(proptest::sample::select(vec!["X-A: 1", "B:2", "C:"]), 0..4),
        ) {
            let mut head = format!("{blank}GET /x HTTP/1.1{}Host: a{}", eol[0], eol[1]);
            for (k, h) in extra.iter().enumerate() {
                head.push_str(h);
                head.push_str(eol[(k + 2) % 4]);
            }
            head.push_str(eol[3]);
            let full = format!("{head}GET /next HTTP/1.1\r\n\r\n");
            let mut headers = [httparse::EMPTY_HEADER; 16];
            let parsed = httparse::Request::new(&mut headers).parse(full.as_bytes());
            let Ok(httparse::Status::Complete(n)) = parsed else {
                return Err(proptest::test_runner::TestCaseError::fail(format!("{parsed:?}")));
            };
            proptest::prop_assert_eq!(n, head.len());
            proptest::prop_assert_eq!(head_end(at::BEFORE, full.as_bytes()).end, Some(n - 1));
        }
    }

    fn phase_after(chunks: &[&[u8]]) -> &'static str {
        let (a, _b) = tokio::io::duplex(64);
        let mut h = HeadDeadline::new(
            Box::new(DuplexIo(a)),
            Duration::from_secs(1),
            Arc::new(No431),
        );
        for c in chunks {
            let _ = h.observe(c);
        }
        match h.phase {
            Phase::Idle => "idle",
            Phase::Head { .. } => "head",
            Phase::Rest => "rest",
            Phase::Tunnel => "tunnel",
            Phase::Preface { .. } => "preface",
        }
    }

    #[derive(Debug)]
    struct No431;
    impl TooLarge for No431 {
        fn answer(&self, _: Option<std::net::SocketAddr>, _: bool) -> Vec<u8> {
            Vec::new()
        }
    }

    #[derive(Debug)]
    struct DuplexIo(tokio::io::DuplexStream);
    impl AsyncRead for DuplexIo {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.0).poll_read(cx, buf)
        }
    }
    impl AsyncWrite for DuplexIo {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            b: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            Pin::new(&mut self.0).poll_write(cx, b)
        }
        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.0).poll_flush(cx)
        }
        fn poll_shutdown(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.0).poll_shutdown(cx)
        }
    }
    #[async_trait]
    impl Shutdown for DuplexIo {
        async fn shutdown(&mut self) {}
    }
    impl UniqueID for DuplexIo {
        fn id(&self) -> UniqueIDType {
            0
        }
    }
    impl Ssl for DuplexIo {}
    impl GetTimingDigest for DuplexIo {
        fn get_timing_digest(&self) -> Vec<Option<pingora::protocols::TimingDigest>> {
            vec![]
        }
    }
    impl GetProxyDigest for DuplexIo {
        fn get_proxy_digest(&self) -> Option<Arc<pingora::protocols::raw_connect::ProxyDigest>> {
            None
        }
    }
    impl GetSocketDigest for DuplexIo {
        fn get_socket_digest(&self) -> Option<Arc<pingora::protocols::SocketDigest>> {
            None
        }
    }
    impl Peek for DuplexIo {}

    #[test]
    fn interim_responses_leave_the_body_to_come_alone() {
        let (a, _b) = tokio::io::duplex(64);
        let mut h = HeadDeadline::new(
            Box::new(DuplexIo(a)),
            Duration::from_secs(1),
            Arc::new(No431),
        );
        let _ = h.observe(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n");
        assert!(matches!(h.phase, Phase::Rest));
        h.on_response(b"HTTP/1.1 100 Continue\r\n\r\n");
        h.on_response(b"HTTP/1.1 103 Early Hints\r\n\r\n");
        // The body after a 100 is not a head, however large.
        assert!(h.observe(&[b'a'; 100 * 1024]).is_ok());
        assert!(matches!(h.phase, Phase::Rest));
        h.on_response(b"HTTP/1.1 200 OK\r\n\r\n");
        // A body still read after the response (drained, or forwarded to an
        // upstream that answered early) is not a head either.
        assert!(h.observe(b"{\"a\": 1}\n\x00\x01 binary").is_ok());
        assert!(matches!(h.phase, Phase::Rest));
        h.next_request(&[]);
        assert!(matches!(h.phase, Phase::Idle));
        let _ = h.observe(b"GET / HTTP/1.1\r\n\r\n");
        h.on_response(b"HTTP/1.1 101 Switching Protocols\r\n\r\n");
        assert!(matches!(h.phase, Phase::Tunnel));
    }

    #[test]
    fn finds_the_end_of_the_head_across_reads() {
        assert_eq!(phase_after(&[]), "idle");
        assert_eq!(phase_after(&[b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"]), "rest");
        assert_eq!(phase_after(&[b"GET / HTTP/1.1\r\nHost: a\r\n"]), "head");
        assert_eq!(
            phase_after(&[b"GET / HTTP/1.1\r\nHost: a\r", b"\n\r", b"\n"]),
            "rest"
        );
        assert_eq!(phase_after(&[b"GET / HTTP/1.1\r\n\r\r\n\r\n"]), "rest");
        // Bare LF line ends, as pingora's parser accepts them.
        assert_eq!(phase_after(&[b"GET / HTTP/1.1\nHost: a\n\n"]), "rest");
        assert_eq!(
            phase_after(&[b"GET / HTTP/1.1\nHost: a\n", b"\r", b"\n"]),
            "rest"
        );
        // Blank lines before the request line start the clock but do not end the head.
        assert_eq!(phase_after(&[b"\r\n\r\n"]), "head");
        assert_eq!(
            phase_after(&[b"\r\n\r\n\n\n", b"GET / HTTP/1.1\r\n"]),
            "head"
        );
        assert_eq!(phase_after(&[b"\r\n\r\nGET / HTTP/1.1\r\n\r\n"]), "rest");
        assert_eq!(phase_after(&[b"G", b"E", b"T"]), "head");
        assert_eq!(
            phase_after(&[b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"]),
            "tunnel"
        );
    }

    #[test]
    fn an_h2_preface_ends_the_watch_once_whole() {
        let (a, _b) = tokio::io::duplex(64);
        let mut h = HeadDeadline::h2_preface(Box::new(DuplexIo(a)), Duration::from_secs(1));
        assert!(h.observe(b"PRI * HTTP/2.0\r\n").is_ok());
        assert!(matches!(h.phase, Phase::Preface { left: 8, .. }));
        assert!(h.observe(b"\r\nSM\r\n\r\n\x00\x00").is_ok());
        assert!(matches!(h.phase, Phase::Tunnel));
    }

    #[tokio::test(start_paused = true)]
    async fn an_h2_preface_not_complete_by_the_deadline_fails_the_read() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (a, mut b) = tokio::io::duplex(64);
        let mut h = HeadDeadline::h2_preface(Box::new(DuplexIo(a)), Duration::from_secs(1));
        b.write_all(b"PRI * HTTP/2.0").await.unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(h.read(&mut buf).await.unwrap(), 14);
        let err = h.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    }

    #[test]
    fn an_upgrade_ends_the_watch() {
        let (a, _b) = tokio::io::duplex(64);
        let mut h = HeadDeadline::new(
            Box::new(DuplexIo(a)),
            Duration::from_secs(1),
            Arc::new(No431),
        );
        assert!(h
            .observe(b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n")
            .is_ok());
        h.on_response(b"HTTP/1.1 101 Switching Protocols\r\n");
        assert!(matches!(h.phase, Phase::Tunnel));
        assert!(
            h.observe(&vec![0u8; MAX_HEAD * 2]).is_ok(),
            "frames are never taken for a head"
        );
        let (a, _b) = tokio::io::duplex(64);
        let mut h = HeadDeadline::new(
            Box::new(DuplexIo(a)),
            Duration::from_secs(1),
            Arc::new(No431),
        );
        assert!(h.observe(b"GET / HTTP/1.1\r\n\r\n").is_ok());
        h.on_response(b"HTTP/1.1 200 OK\r\n");
        assert!(
            matches!(h.phase, Phase::Rest),
            "until the next request begins"
        );
        h.next_request(b"GET /pipelined HTTP/1.1\r\nHo");
        assert!(
            matches!(h.phase, Phase::Head { .. }),
            "keepalive: the next head is watched, pipelined bytes included"
        );
        let mut oversized = b"GET /pipelined HTTP/1.1\r\n".to_vec();
        for i in 0..MAX_FIELDS + 2 {
            oversized.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        h.next_request(&oversized);
        assert!(
            h.refused,
            "a pipelined head over the limits is refused at its next read"
        );
    }

    #[tokio::test]
    async fn a_peek_waits_for_bytes_and_hands_them_to_the_next_read() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (a, mut b) = tokio::io::duplex(4096);
        let mut h = HeadDeadline::new(
            Box::new(DuplexIo(a)),
            Duration::from_secs(1),
            Arc::new(No431),
        );
        let writer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            b.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
                .await
                .unwrap();
            b
        });
        let mut first = [0u8; 1];
        assert!(h.try_peek(&mut first).await.unwrap());
        assert_eq!(&first, b"G");
        assert!(
            matches!(h.phase, Phase::Idle),
            "peeked bytes are not read yet"
        );
        const HEAD: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        let mut head = vec![0u8; 64];
        let mut got = 0;
        // Reads smaller than what was peeked get it in pieces, in order.
        for _ in 0..10 {
            if got == HEAD.len() {
                break;
            }
            let n = h.read(&mut head[got..got + 10]).await.unwrap();
            assert!(n > 0);
            got += n;
        }
        assert_eq!(&head[..got], HEAD);
        assert!(
            matches!(h.phase, Phase::Rest),
            "the watch saw the whole head"
        );
        let b = writer.await.unwrap();
        drop(b);
        assert!(
            h.try_peek(&mut first).await.unwrap(),
            "a closed peer ends the wait"
        );
        assert_eq!(
            h.read(&mut head).await.unwrap(),
            0,
            "and reads as end of stream"
        );
    }

    #[test]
    fn heads_over_the_limit_are_refused() {
        let fresh = || {
            let (a, _b) = tokio::io::duplex(64);
            HeadDeadline::new(
                Box::new(DuplexIo(a)),
                Duration::from_secs(1),
                Arc::new(No431),
            )
        };
        let line = b"GET / HTTP/1.1\r\n";
        let mut head = line.to_vec();
        head.resize(MAX_HEAD - 4, b'a');
        head.extend_from_slice(b"\r\n\r\n");
        assert_eq!(
            fresh().observe(&head),
            Ok(()),
            "exactly MAX_HEAD is accepted"
        );
        let mut h = fresh();
        let mut head = line.to_vec();
        head.resize(MAX_HEAD, b'a');
        assert_eq!(h.observe(&head), Ok(()));
        assert_eq!(
            h.observe(b"a"),
            Err(431),
            "one byte more without an end is refused"
        );
        let mut h = fresh();
        assert_eq!(h.observe(&b"\r\n".repeat(MAX_HEAD / 2)), Ok(()));
        assert_eq!(
            h.observe(b"\r\n"),
            Err(431),
            "blank lines count toward the limit"
        );
        // 100 fields pass, 101 do not, in one read or line by line.
        let fields = |n: usize| {
            let mut h = line.to_vec();
            for i in 0..n {
                h.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
            }
            h.extend_from_slice(b"\r\n");
            h
        };
        assert_eq!(fresh().observe(&fields(MAX_FIELDS)), Ok(()));
        assert_eq!(fresh().observe(&fields(MAX_FIELDS + 1)), Err(431));
        let mut h = fresh();
        let whole = fields(MAX_FIELDS + 1);
        let verdicts: Vec<_> = whole.chunks(7).map(|c| h.observe(c)).collect();
        assert!(verdicts.contains(&Err(431)));
        let mut blank_first = b"\r\n\r\n".to_vec();
        blank_first.extend_from_slice(&fields(MAX_FIELDS));
        assert_eq!(fresh().observe(&blank_first), Ok(()));
    }

    /// The request line's form is pingora's parser's to judge
    /// (`strict_request_line`); the watch only times and sizes the head.
    #[test]
    fn request_lines_are_not_the_watchs_business() {
        let (a, _b) = tokio::io::duplex(64);
        let mut h = HeadDeadline::new(
            Box::new(DuplexIo(a)),
            Duration::from_secs(1),
            Arc::new(No431),
        );
        assert_eq!(h.observe(b"GET /a b\x01 HTTP/1.1\r\n\r\n"), Ok(()));
        assert!(matches!(h.phase, Phase::Rest));
    }
}
