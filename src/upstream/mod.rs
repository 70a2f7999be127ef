//! Upstream pools: which server of a pool gets the next attempt, and the
//! per-server state that outlives a config snapshot.
//!
//! [`Backend`]s are kept in a registry keyed by pool name and address, so a
//! reload that still lists a server keeps its in-flight count and metrics.
//! A [`Pool`] is the per-snapshot view: the pool's backends in file order
//! plus its balancing cursor.

pub mod balance;
pub mod peer;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use dashmap::DashMap;
use prometheus::{IntCounter, IntGauge};

use crate::config::snapshot::{Upstream, UpstreamServer};
use crate::metrics::{UPSTREAM_IN_FLIGHT, UPSTREAM_REQUESTS};

/// What happened to one attempt, as `rampart_upstream_requests_total{outcome}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    ConnectError,
    Timeout,
    Error,
}

/// One upstream server's long-lived state.
#[derive(Debug)]
pub struct Backend {
    pub addr: String,
    in_flight: AtomicI64,
    in_flight_gauge: IntGauge,
    ok: IntCounter,
    connect_error: IntCounter,
    timeout: IntCounter,
    error: IntCounter,
}

impl Backend {
    fn new(pool: &str, addr: &str) -> Self {
        let c = |o: &str| UPSTREAM_REQUESTS.with_label_values(&[pool, addr, o]);
        Backend {
            addr: addr.to_string(),
            in_flight: AtomicI64::new(0),
            in_flight_gauge: UPSTREAM_IN_FLIGHT.with_label_values(&[pool, addr]),
            ok: c("ok"),
            connect_error: c("connect_error"),
            timeout: c("timeout"),
            error: c("error"),
        }
    }

    pub fn in_flight(&self) -> i64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    pub fn record(&self, outcome: Outcome) {
        match outcome {
            Outcome::Ok => self.ok.inc(),
            Outcome::ConnectError => self.connect_error.inc(),
            Outcome::Timeout => self.timeout.inc(),
            Outcome::Error => self.error.inc(),
        }
    }
}

/// Holds one in-flight slot of a backend; released on drop, so every exit
/// path of a request (error, abort, cancelled task) gives it back.
#[derive(Debug)]
pub struct InFlight(Arc<Backend>);

impl InFlight {
    pub fn acquire(b: &Arc<Backend>) -> Self {
        b.in_flight.fetch_add(1, Ordering::Relaxed);
        b.in_flight_gauge.inc();
        InFlight(b.clone())
    }

    pub fn backend(&self) -> &Arc<Backend> {
        &self.0
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.in_flight_gauge.dec();
    }
}

/// Registry of backends that survives reloads.
#[derive(Debug, Default)]
pub struct Registry {
    backends: DashMap<(String, String), Arc<Backend>>,
}

impl Registry {
    pub fn backend(&self, pool: &str, addr: &str) -> Arc<Backend> {
        self.backends
            .entry((pool.to_string(), addr.to_string()))
            .or_insert_with(|| Arc::new(Backend::new(pool, addr)))
            .clone()
    }
}

/// A pool as seen by one snapshot.
#[derive(Debug)]
pub struct Pool {
    pub backends: Vec<Arc<Backend>>,
    pub sockets: Vec<Option<SocketAddr>>,
    pub balancer: balance::RoundRobin,
}

impl Pool {
    pub fn new(up: &Upstream, reg: &Registry) -> Self {
        Pool {
            backends: up
                .servers
                .iter()
                .map(|s| reg.backend(&up.name, &s.addr))
                .collect(),
            sockets: up
                .servers
                .iter()
                .map(|s: &UpstreamServer| s.socket)
                .collect(),
            balancer: balance::RoundRobin::default(),
        }
    }
}
