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
mod tests;
