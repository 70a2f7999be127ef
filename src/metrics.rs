//! Prometheus metrics. Handles for the hot path are created once per route
//! when a snapshot is compiled, so counting a request is an atomic add, not
//! a label hash and a lock.

use std::collections::{HashMap, HashSet};
use std::sync::{LazyLock, OnceLock};

use prometheus::core::{Collector, MetricVec, MetricVecBuilder};
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// rampart's own registry (not the process-global default one, so tests
/// and the admin endpoint see exactly our metrics).
pub static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::new);

fn counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("static metric definition");
    REGISTRY
        .register(Box::new(c.clone()))
        .expect("metric registered once");
    c
}

fn histogram_vec(name: &str, help: &str, buckets: Vec<f64>, labels: &[&str]) -> HistogramVec {
    let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels)
        .expect("static metric definition");
    REGISTRY
        .register(Box::new(h.clone()))
        .expect("metric registered once");
    h
}

fn gauge_vec(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("static metric definition");
    REGISTRY
        .register(Box::new(g.clone()))
        .expect("metric registered once");
    g
}

pub static REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "rampart_requests_total",
        "Requests answered, by server, route and status.",
        &["server", "route", "status"],
    )
});

pub static DURATION: LazyLock<HistogramVec> = LazyLock::new(|| {
    histogram_vec(
        "rampart_request_duration_seconds",
        "Time from request head to the end of the response.",
        vec![
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            60.0,
        ],
        &["server", "route"],
    )
});

pub static UPSTREAM_REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "rampart_upstream_requests_total",
        "Attempts to upstream servers, by outcome: ok, connect_error, timeout, error.",
        &["upstream", "addr", "outcome"],
    )
});

pub static UPSTREAM_IN_FLIGHT: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    gauge_vec(
        "rampart_upstream_in_flight",
        "Requests (and upgraded connections) in flight to each upstream server.",
        &["upstream", "addr"],
    )
});

pub static UPSTREAM_UP: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    gauge_vec(
        "rampart_upstream_server_up",
        "1 while an upstream server is considered up (passive and active health), else 0.",
        &["upstream", "addr"],
    )
});

pub static UPSTREAM_RESOLVE_ERRORS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "rampart_upstream_resolve_errors_total",
        "Failed lookups of upstream server names (the last addresses are kept).",
        &["upstream"],
    )
});

pub static ACCESS_LOG_DROPPED: LazyLock<IntCounter> = LazyLock::new(|| {
    let c = IntCounter::new(
        "rampart_access_log_dropped_total",
        "Access-log lines dropped because the writer fell 4096 lines behind.",
    )
    .expect("static metric definition");
    REGISTRY
        .register(Box::new(c.clone()))
        .expect("metric registered once");
    c
});

pub static RATE_LIMITED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "rampart_rate_limited_total",
        "Requests rejected by a rate-limit zone.",
        &["zone"],
    )
});

pub static RATE_LIMIT_STORE_ERRORS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "rampart_rate_limit_store_errors_total",
        "Requests a Redis-backed zone could not decide in store_timeout (unreachable, slow, failed); on_store_error decided them.",
        &["zone"],
    )
});

pub static RATE_LIMIT_STORE_DURATION: LazyLock<HistogramVec> = LazyLock::new(|| {
    histogram_vec(
        "rampart_rate_limit_store_duration_seconds",
        "Time a Redis-backed zone's decision took (answered ones; see the errors counter for the rest).",
        vec![
            0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
        ],
        &["zone"],
    )
});

pub static ACME_ORDERS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "rampart_acme_orders_total",
        "ACME orders (certificates requested), by server and result: ok or error.",
        &["server", "result"],
    )
});

pub static CERTIFICATE_EXPIRY: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    gauge_vec(
        "rampart_tls_certificate_expiry_timestamp_seconds",
        "When the certificate each TLS server presents expires (Unix time), ACME or files.",
        &["server"],
    )
});

pub static CONN_LIMITED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "rampart_conn_limited_total",
        "Requests rejected by a concurrency limit (conn_limits).",
        &["limit"],
    )
});

pub static AUTH_DENIED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "rampart_auth_denied_total",
        "Requests refused by access control or authentication, by reason: ip (allow/deny), credentials (htpasswd), forward (the auth service refused), forward_error (it failed to answer).",
        &["server", "route", "reason"],
    )
});

pub static TLS_HANDSHAKE_ERRORS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "rampart_tls_handshake_errors_total",
        "Failed TLS handshakes by reason (incompatible, alert, timeout, eof, ...).",
        &["reason"],
    )
});

pub static CONFIG_RELOADS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "rampart_config_reloads_total",
        "Configuration reloads by result (ok, error).",
        &["result"],
    )
});

pub static CONFIG_LAST_RELOAD_SUCCESS: LazyLock<IntGauge> = LazyLock::new(|| {
    let g = IntGauge::new(
        "rampart_config_last_reload_success_timestamp_seconds",
        "Unix time of the last successful configuration load.",
    )
    .expect("static metric definition");
    REGISTRY
        .register(Box::new(g.clone()))
        .expect("metric registered once");
    g
});

pub static CONFIG_INFO: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    gauge_vec(
        "rampart_config_info",
        "1 for the configuration in use, labelled with its hash.",
        &["hash"],
    )
});

pub static WEBSOCKETS: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    gauge_vec(
        "rampart_websocket_connections",
        "Upgraded (WebSocket) connections currently open.",
        &["server", "route"],
    )
});

/// The series of one server: its routes' (indexed like its route table)
/// and those of its requests no route matched.
#[derive(Debug)]
pub struct ServerMetrics {
    pub unrouted: RouteMetrics,
    pub routes: Vec<RouteMetrics>,
}

impl ServerMetrics {
    /// Every server's series, indexed like `cfg.servers`. Made when a
    /// configuration goes live (not when it is compiled: `rampart check`
    /// registers nothing).
    pub fn for_config(cfg: &crate::config::Snapshot) -> Vec<ServerMetrics> {
        cfg.servers
            .iter()
            .map(|s| ServerMetrics {
                unrouted: RouteMetrics::new(&s.name, ""),
                routes: s
                    .routes
                    .routes()
                    .iter()
                    .map(|r| RouteMetrics::new(&s.name, &r.name))
                    .collect(),
            })
            .collect()
    }
}

/// Per-route handles: the series are looked up once, when a configuration
/// goes live, not per request.
#[derive(Debug)]
pub struct RouteMetrics {
    server: String,
    route: String,
    duration: Histogram,
    websockets: IntGauge,
    /// Indexed by status - 100; filled on first use of each status.
    by_status: Box<[OnceLock<IntCounter>]>,
    /// Indexed by [`DenyReason`]; filled on first use.
    denied: [OnceLock<IntCounter>; 4],
}

/// Why access control or authentication refused a request: the `reason`
/// label of `rampart_auth_denied_total`.
#[derive(Debug, Clone, Copy)]
pub enum DenyReason {
    /// `allow` / `deny`.
    Ip,
    /// htpasswd credentials missing or wrong.
    Credentials,
    /// The auth service refused (401/403).
    Forward,
    /// The auth service failed to answer (any other status, timeout, no
    /// connection).
    ForwardError,
}

impl DenyReason {
    fn label(self) -> &'static str {
        match self {
            DenyReason::Ip => "ip",
            DenyReason::Credentials => "credentials",
            DenyReason::Forward => "forward",
            DenyReason::ForwardError => "forward_error",
        }
    }
}

impl RouteMetrics {
    pub fn new(server: &str, route: &str) -> Self {
        RouteMetrics {
            server: server.to_string(),
            route: route.to_string(),
            duration: DURATION.with_label_values(&[server, route]),
            websockets: WEBSOCKETS.with_label_values(&[server, route]),
            by_status: (100..600).map(|_| OnceLock::new()).collect(),
            denied: Default::default(),
        }
    }

    pub fn observe(&self, status: u16, seconds: f64) {
        self.duration.observe(seconds);
        let i = usize::from(status.clamp(100, 599) - 100);
        self.by_status[i]
            .get_or_init(|| {
                REQUESTS.with_label_values(&[
                    self.server.as_str(),
                    self.route.as_str(),
                    status.to_string().as_str(),
                ])
            })
            .inc();
    }

    /// A request refused by `allow`/`deny` or `auth` (a password flood or
    /// a scanner is all refusals: the series is looked up once).
    pub fn auth_denied(&self, reason: DenyReason) {
        self.denied[reason as usize]
            .get_or_init(|| {
                AUTH_DENIED.with_label_values(&[
                    self.server.as_str(),
                    self.route.as_str(),
                    reason.label(),
                ])
            })
            .inc();
    }

    pub fn websockets(&self) -> &IntGauge {
        &self.websockets
    }
}

/// The Prometheus text exposition of every rampart metric.
pub fn render() -> Vec<u8> {
    let mut buf = Vec::with_capacity(16 * 1024);
    // Listed from the start, not from the first dropped line.
    LazyLock::force(&ACCESS_LOG_DROPPED);
    let families = REGISTRY.gather();
    // Encoding into a Vec cannot fail for well-formed families.
    let _ = TextEncoder::new().encode(&families, &mut buf);
    buf
}

/// Marks `hash` as the configuration in use.
pub fn set_config(hash: &str) {
    CONFIG_INFO.reset();
    CONFIG_INFO.with_label_values(&[hash]).set(1);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    CONFIG_LAST_RELOAD_SUCCESS.set(now);
}

/// Drops the series of `vec` whose labels `keep` rejects.
fn prune<T: MetricVecBuilder>(vec: &MetricVec<T>, keep: impl Fn(&HashMap<&str, &str>) -> bool) {
    for family in vec.collect() {
        for m in family.get_metric() {
            let labels: HashMap<&str, &str> = m
                .get_label()
                .iter()
                .map(|l| (l.name(), l.value()))
                .collect();
            if !keep(&labels) {
                let _ = vec.remove(&labels);
            }
        }
    }
}

fn label<'a>(l: &HashMap<&str, &'a str>, name: &str) -> &'a str {
    l.get(name).copied().unwrap_or_default()
}

/// After a reload: drops the series of upstream servers, servers, routes
/// and zones the new configuration no longer has, so that a removed
/// server does not report `up = 1` forever.
pub fn prune_removed(cfg: &crate::config::Snapshot) {
    let backends: HashSet<(&str, &str)> = cfg
        .upstreams
        .iter()
        .flat_map(|u| u.servers.iter().map(|s| (u.name.as_str(), s.addr.as_str())))
        .collect();
    let routes: HashSet<(&str, &str)> = cfg
        .servers
        .iter()
        .flat_map(|s| {
            let named = s.routes.routes().iter().map(|r| r.name.as_str());
            std::iter::once("")
                .chain(named)
                .map(|r| (s.name.as_str(), r))
        })
        .collect();
    let zones: HashSet<&str> = cfg.zones.iter().map(|z| z.name.as_str()).collect();
    let backend =
        |l: &HashMap<&str, &str>| backends.contains(&(label(l, "upstream"), label(l, "addr")));
    let route = |l: &HashMap<&str, &str>| routes.contains(&(label(l, "server"), label(l, "route")));
    prune(&UPSTREAM_UP, backend);
    prune(&UPSTREAM_IN_FLIGHT, backend);
    prune(&UPSTREAM_REQUESTS, backend);
    // Upstreams, and forward-auth services as `auth.NAME`.
    let looked_up: HashSet<String> = cfg
        .upstreams
        .iter()
        .map(|u| u.name.clone())
        .chain(cfg.auths.iter().map(|a| format!("auth.{}", a.name)))
        .collect();
    prune(&UPSTREAM_RESOLVE_ERRORS, |l| {
        looked_up.contains(label(l, "upstream"))
    });
    prune(&REQUESTS, route);
    prune(&DURATION, route);
    prune(&WEBSOCKETS, route);
    prune(&AUTH_DENIED, route);
    prune(&RATE_LIMITED, |l| zones.contains(label(l, "zone")));
    let tls_servers: HashSet<&str> = cfg
        .servers
        .iter()
        .filter(|s| s.tls.is_some())
        .map(|s| s.name.as_str())
        .collect();
    prune(&CERTIFICATE_EXPIRY, |l| {
        tls_servers.contains(label(l, "server"))
    });
    let acme_servers: HashSet<&str> = cfg
        .servers
        .iter()
        .filter(|s| {
            s.tls.as_ref().is_some_and(|t| {
                matches!(
                    t.certificate,
                    crate::config::snapshot::Certificate::Acme { .. }
                )
            })
        })
        .map(|s| s.name.as_str())
        .collect();
    prune(&ACME_ORDERS, |l| acme_servers.contains(label(l, "server")));
    let shared: HashSet<&str> = cfg
        .zones
        .iter()
        .filter(|z| z.shared.is_some())
        .map(|z| z.name.as_str())
        .collect();
    prune(&RATE_LIMIT_STORE_ERRORS, |l| {
        shared.contains(label(l, "zone"))
    });
    prune(&RATE_LIMIT_STORE_DURATION, |l| {
        shared.contains(label(l, "zone"))
    });
    let limits: HashSet<&str> = cfg.conn_limits.iter().map(|c| c.name.as_str()).collect();
    prune(&CONN_LIMITED, |l| limits.contains(label(l, "limit")));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mentions(name: &str) -> bool {
        String::from_utf8(render()).unwrap().contains(name)
    }

    #[test]
    fn compiling_registers_no_series_going_live_does() {
        let text = "[[servers]]\nname = \"metrics-probe-server\"\nlisten = [\"127.0.0.1:1\"]\n\
                    [[servers.routes]]\nname = \"metrics-probe-route\"\nprefix = \"/\"\nrespond = { body = \"x\" }\n";
        let (cfg, _) =
            crate::config::load_str(std::path::Path::new("t.toml"), text, |_| None).unwrap();
        assert!(
            !mentions("metrics-probe-route"),
            "`rampart check` would register series"
        );
        let _live = ServerMetrics::for_config(&cfg);
        assert!(mentions("metrics-probe-route"));
    }
}
