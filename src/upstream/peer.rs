//! Turning a chosen upstream server into a pingora [`HttpPeer`].

use std::net::SocketAddr;
use std::time::Duration;

use pingora::upstreams::peer::HttpPeer;

use crate::config::snapshot::{Timeouts, Upstream, UpstreamServer};

/// How long an idle upstream connection may wait in the pool (nginx's
/// upstream `keepalive_timeout` default).
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

pub fn build(
    up: &Upstream,
    server: &UpstreamServer,
    socket: SocketAddr,
    timeouts: &Timeouts,
) -> HttpPeer {
    let (tls, sni) = match &up.tls {
        Some(t) => (
            true,
            t.server_name.clone().unwrap_or_else(|| server.host.clone()),
        ),
        None => (false, String::new()),
    };
    let mut peer = HttpPeer::new(socket, tls, sni);
    let o = &mut peer.options;
    o.connection_timeout = Some(timeouts.connect);
    o.read_timeout = Some(timeouts.read);
    o.write_timeout = Some(timeouts.write);
    // keepalive = 0 disables reuse for this pool; otherwise idle
    // connections live in pingora's pool, sized from the keepalive sum.
    o.idle_timeout = Some(if up.keepalive == 0 {
        Duration::ZERO
    } else {
        IDLE_TIMEOUT
    });
    if let Some(t) = &up.tls {
        o.verify_cert = t.verify;
        o.verify_hostname = t.verify;
    }
    peer
}
