//! Active health checks: a background task that probes every server of
//! each pool with a `health_check` (`GET path`, 2xx/3xx = healthy) every
//! `interval` and feeds the result to the server's [`super::health::Health`].
//! Pools are re-read from the current snapshot on every tick, so a reload
//! that adds or changes checks takes effect without a restart. Plain pools
//! are probed with a small HTTP/1.1 client; TLS pools with pingora's
//! `HttpHealthCheck`, which connects like the proxy does (SNI, CA,
//! verification).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use pingora::http::{RequestHeader, ResponseHeader};
use pingora::lb::health_check::{HealthCheck as _, HttpHealthCheck};
use pingora::lb::Backend;

use super::peer;
use crate::config::snapshot::{HealthCheck, PeerAddr, Timeouts, Upstream, UpstreamServer};
use crate::runtime::Runtime;

pub struct Prober {
    pub state: Arc<Runtime>,
}

/// A TLS probe: `GET path` over TLS set up as for proxied requests.
fn tls_check(
    up: &Upstream,
    server: &UpstreamServer,
    addr: &PeerAddr,
    hc: &HealthCheck,
) -> Option<HttpHealthCheck> {
    let timeouts = Timeouts {
        connect: hc.timeout,
        read: hc.timeout,
        write: hc.timeout,
    };
    let mut check = HttpHealthCheck::new(&server.host, true);
    check.peer_template = peer::build(up, server, addr, &timeouts, false).ok()?;
    let mut req = RequestHeader::build("GET", hc.path.as_bytes(), None).ok()?;
    req.insert_header(http::header::HOST, server.host.as_str())
        .ok()?;
    req.insert_header(http::header::USER_AGENT, "rampart-health-check")
        .ok()?;
    check.req = req;
    check.validator = Some(Box::new(|resp: &ResponseHeader| {
        if (200..400).contains(&resp.status.as_u16()) {
            Ok(())
        } else {
            pingora::Error::e_explain(
                pingora::ErrorType::HTTPStatus(resp.status.as_u16()),
                "health check status",
            )
        }
    }));
    Some(check)
}

/// A connection to a server, TCP or Unix socket.
trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Stream for T {}

async fn connect(addr: &PeerAddr) -> Option<Box<dyn Stream>> {
    Some(match addr {
        PeerAddr::Tcp(a) => Box::new(tokio::net::TcpStream::connect(a).await.ok()?),
        PeerAddr::Unix(p) => Box::new(tokio::net::UnixStream::connect(p).await.ok()?),
    })
}

/// One plain probe: connect, send `GET path`, read the status line.
pub async fn probe(addr: &PeerAddr, host: &str, hc: &HealthCheck) -> bool {
    let attempt = async {
        let mut s = connect(addr).await?;
        let req = format!(
            "GET {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: rampart-health-check\r\nConnection: close\r\n\r\n",
            hc.path
        );
        s.write_all(req.as_bytes()).await.ok()?;
        let mut buf = [0u8; 64];
        let mut n = 0;
        while n < 12 {
            let r = s.read(&mut buf[n..]).await.ok()?;
            if r == 0 {
                break;
            }
            n += r;
        }
        let line = std::str::from_utf8(&buf[..n]).ok()?;
        let status: u16 = line.strip_prefix("HTTP/1.")?.get(2..5)?.parse().ok()?;
        Some((200..400).contains(&status))
    };
    matches!(
        tokio::time::timeout(hc.timeout, attempt).await,
        Ok(Some(true))
    )
}

#[async_trait]
impl BackgroundService for Prober {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut next_due: HashMap<String, Instant> = HashMap::new();
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
            let live = self.state.current();
            let now = Instant::now();
            for (up, pool) in live.cfg.upstreams.iter().zip(&live.pools) {
                let Some(hc) = &up.health_check else { continue };
                let due = next_due.entry(up.name.clone()).or_insert(now);
                if *due > now {
                    continue;
                }
                *due = now + hc.interval;
                for (i, server) in up.servers.iter().enumerate() {
                    let Some(addr) = pool.sockets[i].clone() else {
                        continue;
                    };
                    let backend = pool.backends[i].clone();
                    let hc = hc.clone();
                    let host = server.host.clone();
                    let tls = if up.tls.is_some() {
                        tls_check(up, server, &addr, &hc)
                    } else {
                        None
                    };
                    tokio::spawn(async move {
                        let ok = match tls {
                            // TLS upstreams are TCP (config check).
                            Some(check) => match &addr {
                                PeerAddr::Tcp(a) => match Backend::new(&a.to_string()) {
                                    Ok(b) => tokio::time::timeout(hc.timeout * 2, check.check(&b))
                                        .await
                                        .is_ok_and(|r| r.is_ok()),
                                    Err(_) => false,
                                },
                                PeerAddr::Unix(_) => false,
                            },
                            None => probe(&addr, &host, &hc).await,
                        };
                        backend.probed(ok, hc.healthy_threshold, hc.unhealthy_threshold);
                    });
                }
            }
        }
    }
}
