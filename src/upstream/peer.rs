//! Turning a chosen upstream server into a pingora [`HttpPeer`].

use std::time::Duration;

use pingora::upstreams::peer::HttpPeer;

use crate::config::snapshot::{PeerAddr, Timeouts, Upstream, UpstreamServer};

/// How long an idle upstream connection may wait in the pool (nginx's
/// upstream `keepalive_timeout` default).
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// `keep_idle = false`: close the connection after this request instead of
/// returning it to the idle pool (how the per-pool `keepalive` cap is kept:
/// pingora's pool itself is process-wide).
pub fn build(
    up: &Upstream,
    server: &UpstreamServer,
    socket: &PeerAddr,
    timeouts: &Timeouts,
    keep_idle: bool,
) -> pingora::Result<HttpPeer> {
    let (tls, sni) = match &up.tls {
        Some(t) => (
            true,
            t.server_name.clone().unwrap_or_else(|| server.host.clone()),
        ),
        None => (false, String::new()),
    };
    let mut peer = match socket {
        PeerAddr::Tcp(addr) => HttpPeer::new(*addr, tls, sni),
        PeerAddr::Unix(path) => HttpPeer::new_uds(&path.to_string_lossy(), false, sni)?,
    };
    let o = &mut peer.options;
    o.connection_timeout = Some(timeouts.connect);
    o.read_timeout = Some(timeouts.read);
    o.write_timeout = Some(timeouts.write);
    o.idle_timeout = Some(if keep_idle {
        IDLE_TIMEOUT
    } else {
        Duration::ZERO
    });
    if let Some(t) = &up.tls {
        o.verify_cert = t.verify;
        o.verify_hostname = t.verify;
        o.ca = t.ca.clone();
    }
    Ok(peer)
}
