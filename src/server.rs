//! Assembles the pingora server from a snapshot: one proxy service holding
//! every listener (threads are per service in pingora, so one service keeps
//! `global.threads` meaning what it says) and the admin service.

use std::collections::HashMap;
use std::sync::Arc;

use pingora::listeners::ListenerConfig;
use pingora::prelude::*;
use pingora::protocols::l4::stream::L4BufferSettings;
use pingora::server::configuration::ServerConf;

use crate::accept::{BeforeHttp, TlsListener};
use crate::config::snapshot::Listener;
use crate::config::Snapshot;
use crate::proxy::Proxy;
use crate::runtime::{sni_maps, Carried, Runtime};
use crate::tls::CertStore;
use pingora::services::listening::Service;

/// The application behind every listener: the front stage (TLS, head
/// deadline) before pingora's HTTP proxy.
pub type ProxyApp = BeforeHttp<pingora::proxy::HttpProxy<Proxy>>;

pub fn conf(cfg: &Snapshot) -> ServerConf {
    let keepalive: usize = cfg.upstreams.iter().map(|u| u.keepalive).sum();
    ServerConf {
        threads: cfg.global.threads,
        // One current-thread runtime per worker thread (nginx-style): with
        // work stealing, tokio's multi-thread scheduler adds stealing
        // checks and poll-time clock reads to every wake-up (bench/README.md
        // has the measurement).
        work_stealing: false,
        // rampart drives the drain itself (lifecycle.rs) and exits as soon
        // as in-flight requests are done; pingora's own wait is the backstop.
        grace_period_seconds: Some(cfg.global.grace_period.as_secs() + 1),
        graceful_shutdown_timeout_seconds: Some(1),
        upstream_keepalive_pool_size: keepalive.max(1),
        pid_file: std::env::temp_dir()
            .join(format!("rampart-{}.pid", std::process::id()))
            .display()
            .to_string(),
        upgrade_sock: cfg.global.upgrade_sock.display().to_string(),
        ..ServerConf::default()
    }
}

/// The pingora server with rampart's services added.
/// `upgrade`: take the listening sockets over from a running process
/// (which hands them over on SIGUSR2) instead of binding them.
pub fn build(
    state: Arc<Runtime>,
    upgrade: bool,
) -> anyhow::Result<(Server, crate::listeners::Control<ProxyApp>)> {
    let live = state.current();
    let cfg = &live.cfg;
    let opt = Opt {
        upgrade,
        ..Opt::default()
    };
    let mut server = Server::new_with_opt_and_conf(Some(opt), conf(cfg));
    server.bootstrap();

    // TLS listeners are plain TCP to pingora: rampart's front stage does
    // the handshake (accept.rs), then applies the whole-head deadline.
    let mut tls = HashMap::new();
    for l in cfg.listeners.iter().filter(|l| l.tls) {
        tls.insert(l.addr, tls_listener(cfg, l, &state.carried)?);
    }
    let mut http = pingora::proxy::http_proxy(&server.configuration, Proxy::new(state.clone()));
    http.server_options = Some(server_options(cfg));
    let http = Arc::new(http);
    let answers = Arc::new(crate::accept::EarlyAnswers(state.clone()));
    let app = BeforeHttp {
        inner: http.clone(),
        answers: answers.clone(),
        tls,
    };
    let mut proxy = Service::new("rampart".to_string(), app);
    for l in &cfg.listeners {
        proxy.add_listener(ListenerConfig::tcp(l.addr.to_string()).l4_buffer(l4_buffers()));
    }
    server.add_service(proxy);

    // Addresses a reload adds: the same front stage, with its own TLS settings.
    let reload_state = state.clone();
    let make_app: crate::listeners::MakeApp<ProxyApp> = Box::new(move |cfg, addr| {
        let mut tls = HashMap::new();
        if let Some(l) = cfg.listeners.iter().find(|l| l.addr == addr && l.tls) {
            tls.insert(addr, tls_listener(cfg, l, &reload_state.carried)?);
        }
        Ok(Arc::new(BeforeHttp {
            inner: http.clone(),
            answers: answers.clone(),
            tls,
        }))
    });
    let (control, acceptors) = crate::listeners::new(cfg, make_app);
    server.add_service(acceptors);

    server.add_service(pingora::services::background::background_service(
        "health checks",
        crate::upstream::probe::Prober {
            state: state.clone(),
        },
    ));
    server.add_service(pingora::services::background::background_service(
        "upstream name lookups",
        crate::upstream::resolver::Resolver {
            state: state.clone(),
        },
    ));
    server.add_service(pingora::services::background::background_service(
        "acme",
        crate::acme::service::Renewer {
            state: state.clone(),
        },
    ));
    server.add_service(pingora::services::background::background_service(
        "rate-limit housekeeping",
        crate::sweeper::Sweeper {
            state: state.clone(),
        },
    ));
    if let Some(admin) = cfg.admin {
        server.add_service(crate::admin::service(admin, state.clone()));
    }
    Ok((server, control))
}

/// pingora's per-connection options: an HTTP/2 connection with no open
/// stream (before its first one too) is closed after `keepalive_timeout`,
/// as an idle HTTP/1 connection is (pingora takes one value for every
/// listener, fixed at start: the longest of the HTTP/2 servers'); a request
/// line pingora's parser refuses is a 400, never percent-encoded and
/// forwarded (a pipelined one included, which the head watch cannot see:
/// pingora parses it from its own buffer).
fn server_options(cfg: &Snapshot) -> pingora::apps::HttpServerOptions {
    let mut o = pingora::apps::HttpServerOptions::default();
    o.strict_request_line = true;
    o.h2_idle_timeout = cfg
        .servers
        .iter()
        .filter(|s| s.http2)
        .map(|s| s.keepalive_timeout)
        .max();
    o
}

/// A TLS address's handshake settings, its certificate store entered in
/// `stores` (refreshed on reload).
fn tls_listener(cfg: &Snapshot, l: &Listener, carried: &Carried) -> anyhow::Result<TlsListener> {
    let store = Arc::new(CertStore::new(carried.acme.alpn.clone()));
    store.store(
        sni_maps(cfg, &carried.acme)
            .remove(&l.addr)
            .unwrap_or_default(),
    );
    let acceptor = crate::tls::acceptor(&l.protocols, l.http2, store.clone())
        .map_err(|e| anyhow::anyhow!("TLS settings for {}: {e}", l.addr))?;
    carried
        .certs
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(l.addr, store);
    Ok(TlsListener { acceptor })
}

/// Per-connection socket buffers. pingora's default 64 KiB read buffer is
/// allocated zeroed for every accepted connection and stays resident while
/// it idles in keepalive. The h1 parser reads heads into its own 4 KiB
/// buffer and bodies in 64 KiB chunks, so reading unbuffered saves a copy
/// instead of adding syscalls (bench/README.md has the memory and CPU
/// numbers).
fn l4_buffers() -> L4BufferSettings {
    L4BufferSettings {
        read: Some(0),
        write: None,
    }
}
