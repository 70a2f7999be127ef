//! The relay for upgraded connections (WebSocket, or any protocol a 101
//! switches to), once pingora has handed one over
//! (`ProxyHttp::detach_tunnel`, a vendored patch).
//!
//! Why not pingora's own relay: it keeps the whole HTTP request alive for
//! the life of the tunnel — the request's future (about 10 KiB), two task
//! channels, four header maps — and a chat connection lives for hours. This
//! relay holds the two streams, a timer and a few counters. It reads into a
//! buffer on the stack of each poll and writes straight from it; only bytes
//! the receiving side cannot take at once are copied to the heap, until it
//! can. An idle tunnel therefore holds no buffer at all.
//!
//! Semantics follow nginx (`ngx_http_upstream_process_upgraded`) and
//! pingora's relay: bytes already read past the two heads go first; an end
//! of stream on one side, once the bytes before it are delivered, is passed
//! on as a shutdown of the other side and ends the tunnel; an error on either
//! side ends it; so do `idle` without a byte in either direction. Ending the
//! tunnel closes both connections.

use std::future::Future;
use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Bytes one read may take. It lives on the stack only while a poll runs.
const READ: usize = 16 * 1024;

/// The first and smallest read size. Reads grow towards [`READ`] while they
/// fill the buffer (bulk transfer) and shrink back after small ones: a TLS
/// stream zero-fills the part of the buffer it is offered on every read.
const MIN_READ: usize = 4 * 1024;

/// Reads one direction may do in one poll before it lets others run.
const BUDGET: usize = 32;

/// How a tunnel ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// A side ended its stream.
    Closed,
    /// A read or write failed (a reset, a broken pipe, a TLS error).
    Error,
    /// Nothing moved in either direction for the idle timeout.
    Idle,
}

/// What went through a tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Bytes written to the upstream (everything the client sent).
    pub to_upstream: u64,
    /// Bytes written to the client (everything the upstream sent).
    pub to_client: u64,
    pub end: End,
}

/// One direction: bytes from one stream to the other.
struct Half {
    /// Read but not yet taken by the receiving side.
    pending: Bytes,
    written: u64,
    /// The receiving side has unflushed bytes.
    unflushed: bool,
    /// The sending side ended its stream.
    eof: bool,
    /// The end was passed on (or this direction failed): nothing more to do.
    done: bool,
    /// The next read's size, [`MIN_READ`] to [`READ`].
    read_size: usize,
}

impl Half {
    fn new(pending: Bytes) -> Self {
        Half {
            pending,
            written: 0,
            unflushed: false,
            eof: false,
            done: false,
            read_size: MIN_READ,
        }
    }

    /// Moves bytes until a side would block. `Ready(Ok)` once the end of
    /// the stream has been passed on; `moved` is set when bytes moved.
    fn poll<R, W>(
        &mut self,
        cx: &mut Context<'_>,
        from: &mut R,
        to: &mut W,
        moved: &mut bool,
    ) -> Poll<io::Result<()>>
    where
        R: AsyncRead + Unpin + ?Sized,
        W: AsyncWrite + Unpin + ?Sized,
    {
        for _ in 0..BUDGET {
            while !self.pending.is_empty() {
                let n = ready!(Pin::new(&mut *to).poll_write(cx, &self.pending))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                self.pending.advance(n);
                self.written += n as u64;
                self.unflushed = true;
                *moved = true;
            }
            // An emptied `Bytes` still owns its allocation.
            self.pending = Bytes::new();
            if self.unflushed {
                ready!(Pin::new(&mut *to).poll_flush(cx))?;
                self.unflushed = false;
            }
            if self.eof {
                // The other side may be gone already; the end is passed on
                // as well as it can be.
                let _ = ready!(Pin::new(&mut *to).poll_shutdown(cx));
                self.done = true;
                return Poll::Ready(Ok(()));
            }
            let mut stack = [MaybeUninit::<u8>::uninit(); READ];
            let mut buf = ReadBuf::uninit(&mut stack[..self.read_size]);
            ready!(Pin::new(&mut *from).poll_read(cx, &mut buf))?;
            let got = buf.filled();
            if got.is_empty() {
                self.eof = true;
                continue;
            }
            self.read_size = if got.len() == self.read_size {
                (self.read_size * 2).min(READ)
            } else if got.len() <= self.read_size / 4 {
                (self.read_size / 2).max(MIN_READ)
            } else {
                self.read_size
            };
            *moved = true;
            let mut off = 0;
            while off < got.len() {
                match Pin::new(&mut *to).poll_write(cx, &got[off..]) {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                    Poll::Ready(Ok(n)) => {
                        off += n;
                        self.written += n as u64;
                        self.unflushed = true;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => {
                        self.pending = Bytes::copy_from_slice(&got[off..]);
                        break;
                    }
                }
            }
        }
        // Out of budget with bytes still coming: let other tasks run.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Relays between `client` and `upstream` until one side ends its stream or
/// fails, or nothing moves for `idle`. `client_pending` goes to the
/// upstream first, `upstream_pending` to the client.
pub async fn relay<C, U>(
    client: &mut C,
    client_pending: Bytes,
    upstream: &mut U,
    upstream_pending: Bytes,
    idle: Option<Duration>,
) -> Stats
where
    C: AsyncRead + AsyncWrite + Unpin + ?Sized,
    U: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    let mut up = Half::new(client_pending);
    let mut down = Half::new(upstream_pending);
    let mut timer: Option<Pin<Box<Sleep>>> =
        idle.map(|d| Box::pin(tokio::time::sleep_until(Instant::now() + d)));
    let mut last = Instant::now();
    let end = std::future::poll_fn(|cx| {
        let mut moved = false;
        if !up.done {
            if let Poll::Ready(Err(_)) = up.poll(cx, client, upstream, &mut moved) {
                return Poll::Ready(End::Error);
            }
        }
        if !down.done {
            if let Poll::Ready(Err(_)) = down.poll(cx, upstream, client, &mut moved) {
                return Poll::Ready(End::Error);
            }
        }
        if up.done || down.done {
            return Poll::Ready(End::Closed);
        }
        let (Some(timer), Some(idle)) = (timer.as_mut(), idle) else {
            return Poll::Pending;
        };
        if moved {
            last = Instant::now();
        }
        // The timer is moved only when it fires, not on every byte.
        while timer.as_mut().poll(cx).is_ready() {
            let due = last + idle;
            if due <= Instant::now() {
                return Poll::Ready(End::Idle);
            }
            timer.as_mut().reset(due);
        }
        Poll::Pending
    })
    .await;
    Stats {
        to_upstream: up.written,
        to_client: down.written,
        end,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt, DuplexStream};

    /// A relay between two in-memory pipes; returns the far ends
    /// (client, upstream) and the relay's task.
    fn start(
        client_pending: &'static [u8],
        upstream_pending: &'static [u8],
        idle: Option<Duration>,
        capacity: usize,
    ) -> (DuplexStream, DuplexStream, tokio::task::JoinHandle<Stats>) {
        let (client_far, mut client_near) = duplex(capacity);
        let (upstream_far, mut upstream_near) = duplex(capacity);
        let task = tokio::spawn(async move {
            relay(
                &mut client_near,
                Bytes::from_static(client_pending),
                &mut upstream_near,
                Bytes::from_static(upstream_pending),
                idle,
            )
            .await
        });
        (client_far, upstream_far, task)
    }

    /// `f`'s output, failing the test after 10 s.
    async fn within<F: std::future::Future>(f: F) -> F::Output {
        tokio::time::timeout(Duration::from_secs(10), f)
            .await
            .expect("in time")
    }

    async fn read_n(s: &mut DuplexStream, n: usize) -> Vec<u8> {
        let mut v = vec![0; n];
        within(s.read_exact(&mut v)).await.expect("read");
        v
    }

    #[tokio::test]
    async fn pending_bytes_go_first_then_both_directions_flow() {
        let (mut c, mut u, task) = start(b"early-client ", b"early-upstream ", None, 64 * 1024);
        c.write_all(b"hello").await.unwrap();
        assert_eq!(read_n(&mut u, 18).await, b"early-client hello");
        u.write_all(b"world").await.unwrap();
        assert_eq!(read_n(&mut c, 20).await, b"early-upstream world");
        drop(c);
        drop(u);
        let stats = task.await.unwrap();
        assert_eq!(stats.to_upstream, 18);
        assert_eq!(stats.to_client, 20);
    }

    #[tokio::test]
    async fn an_end_of_stream_ends_the_tunnel_after_the_bytes_before_it() {
        for client_ends in [true, false] {
            let (mut c, mut u, task) = start(b"", b"", None, 1024);
            let (ender, other) = if client_ends {
                (&mut c, &mut u)
            } else {
                (&mut u, &mut c)
            };
            ender.write_all(b"bye").await.unwrap();
            ender.shutdown().await.unwrap();
            // The other side gets the last bytes, then the end.
            let mut rest = Vec::new();
            within(other.read_to_end(&mut rest)).await.unwrap();
            assert_eq!(rest, b"bye");
            let stats = within(task).await.unwrap();
            assert_eq!(stats.end, End::Closed);
            let expected = if client_ends { (3, 0) } else { (0, 3) };
            assert_eq!((stats.to_upstream, stats.to_client), expected);
            // The side that ended sees the whole tunnel closed.
            let mut rest = Vec::new();
            assert_eq!(ender.read_to_end(&mut rest).await.unwrap(), 0);
        }
    }

    #[tokio::test]
    async fn a_large_transfer_through_a_small_pipe_arrives_whole() {
        // The pipes take 1 KiB at a time: the relay must keep what the
        // receiver cannot take yet and resume.
        let (mut c, mut u, task) = start(b"", b"", None, 1024);
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let sent = data.clone();
        let writer = tokio::spawn(async move {
            c.write_all(&sent).await.unwrap();
            c.shutdown().await.unwrap();
            c
        });
        let mut got = Vec::new();
        within(u.read_to_end(&mut got)).await.unwrap();
        assert_eq!(got.len(), data.len());
        assert!(got == data);
        drop(writer.await.unwrap());
        drop(u);
        let stats = task.await.unwrap();
        assert_eq!(stats.to_upstream, 1_000_000);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_timeout_closes_and_activity_resets_it() {
        let (mut c, mut u, task) = start(b"", b"", Some(Duration::from_secs(10)), 1024);
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_secs(7)).await;
            c.write_all(b"x").await.unwrap();
            assert_eq!(read_n(&mut u, 1).await, b"x");
        }
        // 21 s in, alive thanks to the traffic; now silence.
        tokio::time::sleep(Duration::from_secs(11)).await;
        let stats = task.await.unwrap();
        assert_eq!(stats.end, End::Idle);
        assert_eq!(stats.to_upstream, 3);
        // Both far ends see the close.
        let mut rest = Vec::new();
        assert_eq!(c.read_to_end(&mut rest).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_failing_side_closes_both() {
        struct Broken;
        impl AsyncRead for Broken {
            fn poll_read(
                self: Pin<&mut Self>,
                _: &mut Context<'_>,
                _: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()))
            }
        }
        impl AsyncWrite for Broken {
            fn poll_write(
                self: Pin<&mut Self>,
                _: &mut Context<'_>,
                _: &[u8],
            ) -> Poll<io::Result<usize>> {
                Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()))
            }
            fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }
            fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }
        }
        let (mut far, mut near) = duplex(1024);
        let stats = tokio::time::timeout(
            Duration::from_secs(5),
            relay(&mut near, Bytes::new(), &mut Broken, Bytes::new(), None),
        )
        .await
        .unwrap();
        assert_eq!(stats.end, End::Error);
        drop(near);
        let mut rest = Vec::new();
        assert_eq!(far.read_to_end(&mut rest).await.unwrap(), 0);
    }
}
