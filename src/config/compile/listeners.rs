//! The listen addresses: which servers share one, what they must agree
//! on (TLS or not, ALPN, TLS versions), hosts claimed twice, addresses
//! that overlap or collide with the admin listener.

use std::net::SocketAddr;

use super::Compiler;
use crate::config::defaults;
use crate::config::diag::Span;
use crate::config::file;
use crate::config::snapshot::{Listener, Server, TlsVersion};
use crate::routing::HostTable;

/// Servers sharing one listen address while checking: (address, TLS?,
/// http2?, span of its first mention, [(server index, host patterns)]).
pub(super) struct AddrGroup {
    addr: SocketAddr,
    /// `Some(protocols)` for a TLS address.
    protocols: Option<Vec<TlsVersion>>,
    http2: bool,
    /// Where the address is first mentioned.
    span: Span,
    /// (server index, host patterns) in file order.
    servers: Vec<(usize, Option<Vec<String>>)>,
}

/// Enters a compiled server (index `idx`) under each of its addresses,
/// reporting what it disagrees on with the servers already there.
pub(super) fn add_server(
    cx: &mut Compiler<'_, '_>,
    by_addr: &mut Vec<AddrGroup>,
    s: &file::Server,
    server: &Server,
    idx: usize,
) {
    let hosts = s.hosts.as_ref().map(|h| {
        h.iter()
            .map(|x| x.v.to_ascii_lowercase())
            .collect::<Vec<_>>()
    });
    for (li, addr) in server.listen.iter().enumerate() {
        let span = s
            .listen
            .get(li)
            .map(|l| l.span.clone())
            .unwrap_or_else(|| s.span.span.clone());
        let protocols = server.tls.as_ref().map(|t| t.protocols.clone());
        match by_addr.iter_mut().find(|e| e.addr == *addr) {
            Some(entry) => {
                if entry.protocols.is_some() != protocols.is_some() {
                    let (tls_one, plain_one) = if entry.protocols.is_some() {
                        ("an earlier", "this")
                    } else {
                        ("this", "an earlier")
                    };
                    cx.err(
                        &span,
                        format!(
                            "listen address {addr} is used by a TLS server ({tls_one} one) and a plain-HTTP server ({plain_one} one): one address is either TLS or plain"
                        ),
                    );
                } else if entry.protocols.is_some() && entry.http2 != server.http2 {
                    cx.err(
                        &span,
                        format!("servers sharing {addr} must agree on `http2` (ALPN is chosen per address)"),
                    );
                } else if entry.protocols != protocols {
                    cx.err(
                        &span,
                        format!("servers sharing {addr} must agree on `tls.protocols` (versions are chosen before SNI)"),
                    );
                }
                if let Some(new) = &hosts {
                    for h in new {
                        let clash = entry
                            .servers
                            .iter()
                            .any(|(_, hs)| hs.as_ref().is_some_and(|hs| hs.contains(h)));
                        if clash {
                            let hspan = s
                                .hosts
                                .as_ref()
                                .and_then(|v| v.iter().find(|x| x.v.eq_ignore_ascii_case(h)))
                                .map(|x| x.span.clone())
                                .unwrap_or_else(|| span.clone());
                            cx.err(
                                &hspan,
                                format!(
                                    "host \"{h}\" is already claimed by another server on {addr}"
                                ),
                            );
                        }
                    }
                }
                entry.servers.push((idx, hosts.clone()));
            }
            None => by_addr.push(AddrGroup {
                addr: *addr,
                protocols,
                http2: server.http2,
                span,
                servers: vec![(idx, hosts.clone())],
            }),
        }
    }
}

/// Checks the addresses against each other and the admin listener, and
/// builds the listeners.
pub(super) fn compile_listeners(
    cx: &mut Compiler<'_, '_>,
    by_addr: Vec<AddrGroup>,
    admin: Option<SocketAddr>,
    servers: &[Server],
) -> Vec<Listener> {
    // Two addresses that overlap (0.0.0.0:80 and 127.0.0.1:80) cannot both be bound.
    for (i, a) in by_addr.iter().enumerate() {
        for b in by_addr.iter().take(i) {
            if a.addr.port() == b.addr.port()
                && a.addr != b.addr
                && (a.addr.ip().is_unspecified() || b.addr.ip().is_unspecified())
                && a.addr.is_ipv4() == b.addr.is_ipv4()
            {
                cx.err(
                    &a.span,
                    format!("listen address {} overlaps {}: use one of them for every server on that port", a.addr, b.addr),
                );
            }
        }
    }
    if let Some(a) = admin {
        if let Some(entry) = by_addr.iter().find(|e| {
            e.addr.port() == a.port()
                && (e.addr.ip() == a.ip()
                    || e.addr.ip().is_unspecified()
                    || a.ip().is_unspecified())
        }) {
            cx.err(
                &entry.span,
                format!(
                    "listen address {} collides with the admin listener {a}",
                    entry.addr
                ),
            );
        }
    }
    by_addr
        .into_iter()
        .map(|g| Listener {
            addr: g.addr,
            tls: g.protocols.is_some(),
            protocols: g.protocols.unwrap_or_default(),
            http2: g.http2,
            hosts: HostTable::new(&g.servers),
            client_header_timeout: g
                .servers
                .iter()
                .filter_map(|(i, _)| servers.get(*i))
                .map(|s: &Server| s.client_header_timeout)
                .max()
                .unwrap_or(defaults::CLIENT_HEADER_TIMEOUT),
        })
        .collect()
}
