//! `[upstreams.NAME]`: the pools routes proxy to.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;

use super::Compiler;
use crate::config::defaults;
use crate::config::file;
use crate::config::resolve::is_name;
use crate::config::snapshot::{
    Balance, HealthCheck, PeerAddr, Timeouts, Upstream, UpstreamId, UpstreamServer, UpstreamTls,
};

/// The pools, and their indexes by name.
pub(super) fn compile_upstreams(
    cx: &mut Compiler<'_, '_>,
    defs: &[file::Upstream],
) -> (Vec<Upstream>, HashMap<String, UpstreamId>) {
    let mut upstreams = Vec::new();
    let mut upstream_idx = HashMap::new();
    for u in defs {
        if let Some(up) = compile_upstream(cx, u) {
            upstream_idx.insert(u.name.v.clone(), UpstreamId(upstreams.len()));
            upstreams.push(up);
        }
    }
    (upstreams, upstream_idx)
}

fn compile_upstream(cx: &mut Compiler<'_, '_>, u: &file::Upstream) -> Option<Upstream> {
    let servers = upstream_servers(cx, u);
    if u.servers_span.v && u.servers.is_empty() {
        cx.err(
            &u.servers_span.span,
            format!("upstreams.{} has no servers", u.name.v),
        );
    }
    if !servers.is_empty() && servers.iter().all(|s| s.backup) {
        cx.err(
            &u.servers_span.span,
            format!(
                "upstreams.{}: every server is a backup; at least one must not be",
                u.name.v
            ),
        );
    }
    let balance = match u.balance.as_ref() {
        None => Balance::LeastConn, // defaults::BALANCE
        Some(b) => match b.v.as_str() {
            "least_conn" => Balance::LeastConn,
            "round_robin" => Balance::RoundRobin,
            other => {
                cx.err(
                    &b.span,
                    format!("balance \"{other}\": expected \"least_conn\" or \"round_robin\""),
                );
                Balance::LeastConn
            }
        },
    };
    let tries = match &u.tries {
        Some(t) if t.v == 0 => {
            cx.err(&t.span, "tries must be at least 1");
            1
        }
        Some(t) => t.v as usize,
        None => defaults::TRIES as usize,
    };
    let resolve_interval = u
        .resolve_interval
        .as_ref()
        .map_or(defaults::RESOLVE_INTERVAL, |d| d.v);
    if let Some(d) = u.resolve_interval.as_ref().filter(|d| d.v.is_zero()) {
        cx.err(
            &d.span,
            format!(
                "upstreams.{}.resolve_interval must be more than 0",
                u.name.v
            ),
        );
    }
    let mut names: Vec<String> = u
        .servers
        .iter()
        .map(|s| s.addr.v.clone())
        .filter(|a| is_name(a))
        .collect();
    names.dedup();
    Some(Upstream {
        name: u.name.v.clone(),
        servers,
        names,
        resolve_interval,
        balance,
        max_fails: u.max_fails.unwrap_or(defaults::MAX_FAILS) as u32,
        fail_timeout: u.fail_timeout.unwrap_or(defaults::FAIL_TIMEOUT),
        keepalive: u.keepalive.unwrap_or(defaults::KEEPALIVE) as usize,
        timeouts: Timeouts {
            connect: u.connect_timeout.unwrap_or(defaults::UPSTREAM_TIMEOUT),
            read: u.read_timeout.unwrap_or(defaults::UPSTREAM_TIMEOUT),
            write: u.write_timeout.unwrap_or(defaults::UPSTREAM_TIMEOUT),
        },
        tries,
        tls: upstream_tls(cx, u),
        health_check: health_check(cx, u),
    })
}

/// The pool's servers, each address checked and resolved: every address a
/// name resolves to is a server of the entry's weight (labelled with its
/// address; the name stays the TLS server name). Names are looked up again
/// every `resolve_interval` (`crate::upstream::resolver`).
fn upstream_servers(cx: &mut Compiler<'_, '_>, u: &file::Upstream) -> Vec<UpstreamServer> {
    let mut servers = Vec::new();
    let mut seen = HashSet::new();
    for s in &u.servers {
        if !seen.insert(s.addr.v.clone()) {
            cx.err(
                &s.addr.span,
                format!(
                    "upstream server \"{}\" is listed twice in upstreams.{}",
                    s.addr.v, u.name.v
                ),
            );
            continue;
        }
        if let Some(path) = s.addr.v.strip_prefix("unix:") {
            if let Some(server) = unix_server(cx, u, s, path) {
                servers.push(server);
            }
            continue;
        }
        let Some((host, port)) = s.addr.v.rsplit_once(':') else {
            cx.err(
                &s.addr.span,
                format!("upstream server \"{}\": expected host:port", s.addr.v),
            );
            continue;
        };
        if port.parse::<u16>().is_err() || host.is_empty() {
            cx.err(
                &s.addr.span,
                format!(
                    "upstream server \"{}\": expected host:port with a numeric port",
                    s.addr.v
                ),
            );
            continue;
        }
        let weight = weight(cx, s);
        let server = |addr: String, socket: Option<SocketAddr>| UpstreamServer {
            addr,
            socket: socket.map(PeerAddr::Tcp),
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            weight,
            backup: s.backup,
        };
        let addrs = cx.world.addrs(&s.addr.v);
        if addrs.is_empty() {
            cx.warnings.push(format!(
                "upstreams.{}: server \"{}\" does not resolve now; requests to it fail with 502 until it does",
                u.name.v, s.addr.v
            ));
            servers.push(server(s.addr.v.clone(), None));
        } else if !is_name(&s.addr.v) {
            servers.push(server(s.addr.v.clone(), Some(addrs[0])));
        } else {
            for a in addrs {
                // Two names of one address: one server.
                if !servers.iter().any(|x| x.socket == Some(PeerAddr::Tcp(*a))) {
                    servers.push(server(a.to_string(), Some(*a)));
                }
            }
        }
    }
    servers
}

/// A server's `weight` (1 unless given).
fn weight(cx: &mut Compiler<'_, '_>, s: &file::UpstreamServer) -> u32 {
    match &s.weight {
        Some(w) if w.v == 0 => {
            cx.err(&w.span, "weight must be at least 1");
            1
        }
        Some(w) => w.v as u32,
        None => 1,
    }
}

/// A `unix:/path` server: an absolute socket path, no TLS (nothing to
/// verify on a local socket).
fn unix_server(
    cx: &mut Compiler<'_, '_>,
    u: &file::Upstream,
    s: &file::UpstreamServer,
    path: &str,
) -> Option<UpstreamServer> {
    if !path.starts_with('/') {
        cx.err(
            &s.addr.span,
            format!(
                "upstream server \"{}\": expected unix:/absolute/path",
                s.addr.v
            ),
        );
        return None;
    }
    if u.tls {
        cx.err(
            &s.addr.span,
            format!(
                "upstreams.{}: tls over a Unix socket is not supported",
                u.name.v
            ),
        );
        return None;
    }
    Some(UpstreamServer {
        addr: s.addr.v.clone(),
        socket: Some(PeerAddr::Unix(path.into())),
        host: "localhost".into(),
        weight: weight(cx, s),
        backup: s.backup,
    })
}

/// `tls = true` and its keys (an error without it).
fn upstream_tls(cx: &mut Compiler<'_, '_>, u: &file::Upstream) -> Option<UpstreamTls> {
    if u.tls {
        let ca = u.tls_ca.as_ref().and_then(|c| {
            let p = cx.path(&c.v);
            match cx.world.ca(&p) {
                Ok(ca) => Some(ca),
                Err(e) => {
                    cx.err(&c.span, format!("tls_ca: {e}"));
                    None
                }
            }
        });
        Some(UpstreamTls {
            verify: u.tls_verify.as_ref().map_or(defaults::TLS_VERIFY, |v| v.v),
            ca,
            server_name: u.tls_server_name.as_ref().map(|s| s.v.clone()),
        })
    } else {
        for (key, present) in [
            ("tls_ca", u.tls_ca.is_some()),
            ("tls_server_name", u.tls_server_name.is_some()),
            ("tls_verify", u.tls_verify.is_some()),
        ] {
            if present {
                cx.err(
                    &u.name.span,
                    format!("upstreams.{}.{key} is set but tls is not true", u.name.v),
                );
            }
        }
        None
    }
}

/// Active health checks, if configured.
fn health_check(cx: &mut Compiler<'_, '_>, u: &file::Upstream) -> Option<HealthCheck> {
    u.health_check.as_ref().map(|h| {
        let path = match &h.path {
            Some(p) if !p.v.starts_with('/') => {
                cx.err(
                    &p.span,
                    format!("health check path \"{}\" must start with /", p.v),
                );
                p.v.clone()
            }
            Some(p) => p.v.clone(),
            None => defaults::HEALTH_PATH.to_string(),
        };
        HealthCheck {
            path,
            interval: h.interval.unwrap_or(defaults::HEALTH_INTERVAL),
            timeout: h.timeout.unwrap_or(defaults::HEALTH_TIMEOUT),
            healthy_threshold: h
                .healthy_threshold
                .unwrap_or(defaults::HEALTHY_THRESHOLD)
                .max(1) as u32,
            unhealthy_threshold: h
                .unhealthy_threshold
                .unwrap_or(defaults::UNHEALTHY_THRESHOLD)
                .max(1) as u32,
        }
    })
}
