//! Upstream pools: which server of a pool gets the next attempt, and the
//! per-server state that outlives a config snapshot.
//!
//! [`Backend`]s live in a [`Registry`] keyed by pool name and address, so a
//! reload that still lists a server keeps its in-flight count, health and
//! metrics. A [`Pool`] is the per-snapshot view: the pool's backends in file
//! order plus its balancing state. Selection ([`Pool::pick`]) filters by
//! health and by what this request already tried, then hands the
//! candidates to the pure balancers in [`balance`].

pub mod balance;
pub mod health;
pub mod peer;
pub mod probe;
pub mod resolver;
mod tried;

pub use tried::Tried;

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use dashmap::DashMap;
use prometheus::{IntCounter, IntGauge};

use crate::config::snapshot::{Balance, PeerAddr, Upstream};
use crate::metrics::{UPSTREAM_IN_FLIGHT, UPSTREAM_REQUESTS, UPSTREAM_UP};
use health::{Health, Transition};

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
    pub pool: String,
    pub addr: String,
    in_flight: AtomicI64,
    health: Mutex<Health>,
    /// False while the health state is pristine (no recent failure, active
    /// checks passing): selection then skips the lock.
    suspect: AtomicBool,
    in_flight_gauge: IntGauge,
    up_gauge: IntGauge,
    ok: IntCounter,
    connect_error: IntCounter,
    timeout: IntCounter,
    error: IntCounter,
}

impl Backend {
    fn new(pool: &str, addr: &str) -> Self {
        let c = |o: &str| UPSTREAM_REQUESTS.with_label_values(&[pool, addr, o]);
        let up_gauge = UPSTREAM_UP.with_label_values(&[pool, addr]);
        up_gauge.set(1);
        Backend {
            pool: pool.to_string(),
            addr: addr.to_string(),
            in_flight: AtomicI64::new(0),
            health: Mutex::new(Health::default()),
            suspect: AtomicBool::new(false),
            in_flight_gauge: UPSTREAM_IN_FLIGHT.with_label_values(&[pool, addr]),
            up_gauge,
            ok: c("ok"),
            connect_error: c("connect_error"),
            timeout: c("timeout"),
            error: c("error"),
        }
    }

    pub fn in_flight(&self) -> i64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    fn with_health<T>(&self, f: impl FnOnce(&mut Health) -> T) -> T {
        // A poisoned lock only means another thread panicked mid-update;
        // the state is still a valid Health.
        let mut h = self.health.lock().unwrap_or_else(|p| p.into_inner());
        let out = f(&mut h);
        self.suspect.store(!h.is_pristine(), Ordering::Release);
        out
    }

    fn apply(&self, t: Transition, why: &str) {
        match t {
            Transition::Down => {
                self.up_gauge.set(0);
                tracing::warn!(upstream = %self.pool, addr = %self.addr, "upstream server marked down ({why})");
            }
            Transition::Up => {
                self.up_gauge.set(1);
                tracing::info!(upstream = %self.pool, addr = %self.addr, "upstream server is up again ({why})");
            }
            Transition::None => {}
        }
    }

    /// Counts an attempt's outcome in metrics and passive health.
    pub fn record(&self, outcome: Outcome, up: &Upstream) {
        match outcome {
            Outcome::Ok => {
                self.ok.inc();
                let t = self.with_health(|h| h.on_success());
                self.apply(t, "it answered");
            }
            other => {
                let (counter, why) = match other {
                    Outcome::ConnectError => (&self.connect_error, "connect errors"),
                    Outcome::Timeout => (&self.timeout, "timeouts"),
                    _ => (&self.error, "broken responses"),
                };
                counter.inc();
                let t = self.with_health(|h| h.on_failure(Instant::now(), up.max_fails));
                self.apply(t, why);
            }
        }
    }

    /// Feeds an active probe result.
    pub fn probed(&self, ok: bool, healthy: u32, unhealthy: u32) {
        let t = self.with_health(|h| h.on_probe(ok, healthy, unhealthy));
        self.apply(
            t,
            if ok {
                "health check passed"
            } else {
                "health check failed"
            },
        );
    }

    /// The clock is read only for a suspect server: a healthy pool costs
    /// no clock read per request.
    fn available(&self, up: &Upstream) -> bool {
        if !self.suspect.load(Ordering::Acquire) {
            return true;
        }
        self.with_health(|h| h.available(Instant::now(), up.max_fails, up.fail_timeout))
    }
}

/// Holds one in-flight slot of a backend; released on drop, so every exit
/// path of a request (error, abort, cancelled task, closed tunnel) gives it
/// back.
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
    /// Forgets the servers `cfg` no longer lists (their health and
    /// counters start afresh if they come back).
    pub fn retain(&self, cfg: &crate::config::Snapshot) {
        self.backends.retain(|(pool, addr), _| {
            cfg.upstreams
                .iter()
                .any(|u| u.name == *pool && u.servers.iter().any(|s| s.addr == *addr))
        });
    }

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
    pub sockets: Vec<Option<PeerAddr>>,
    cursor: AtomicUsize,
    wrr: Mutex<Vec<i64>>,
}

/// Pools up to this size choose a server without allocating.
const SMALL_POOL: usize = 16;

impl Pool {
    pub fn new(up: &Upstream, reg: &Registry) -> Self {
        Pool {
            backends: up
                .servers
                .iter()
                .map(|s| reg.backend(&up.name, &s.addr))
                .collect(),
            sockets: up.servers.iter().map(|s| s.socket.clone()).collect(),
            cursor: AtomicUsize::new(0),
            wrr: Mutex::new(vec![0; up.servers.len()]),
        }
    }

    /// In-flight requests over the whole pool.
    pub fn in_flight(&self) -> i64 {
        self.backends.iter().map(|b| b.in_flight()).sum()
    }

    /// The server for the next attempt: among healthy servers not yet
    /// tried by this request, primaries first, then
    /// backups; when none is healthy, any untried primary (nginx keeps
    /// trying a pool whose servers are all down rather than failing fast).
    /// `None` once every server has been tried.
    pub fn pick(&self, up: &Upstream, tried: &Tried) -> Option<usize> {
        let untried = |i: usize| !tried.contains(i) && self.sockets[i].is_some();
        let n = up.servers.len();
        let healthy = |i: usize, backup: bool| {
            up.servers[i].backup == backup && untried(i) && self.backends[i].available(up)
        };
        let fallback = |i: usize| !up.servers[i].backup && untried(i);
        // The candidates, in order: healthy primaries, else healthy
        // backups, else any untried primary. Collected on the stack for
        // the usual pool size: this runs on every proxied request.
        let mut small = [0usize; SMALL_POOL];
        let mut large: Vec<usize>;
        let mut candidates: &[usize] = &[];
        for wanted in [
            &(|i| healthy(i, false)) as &dyn Fn(usize) -> bool,
            &|i| healthy(i, true),
            &fallback,
        ] {
            candidates = if n <= SMALL_POOL {
                let mut len = 0;
                for i in (0..n).filter(|&i| wanted(i)) {
                    small[len] = i;
                    len += 1;
                }
                &small[..len]
            } else {
                large = (0..n).filter(|&i| wanted(i)).collect();
                &large
            };
            if !candidates.is_empty() {
                break;
            }
        }
        let weight = |i: usize| up.servers[i].weight;
        let chosen = match up.balance {
            Balance::LeastConn => {
                let start = self.cursor.fetch_add(1, Ordering::Relaxed);
                balance::least_conn(candidates, weight, |i| self.backends[i].in_flight(), start)
            }
            Balance::RoundRobin => {
                let mut cur = self.wrr.lock().unwrap_or_else(|p| p.into_inner());
                balance::smooth_wrr(candidates, weight, &mut cur)
            }
        }?;
        let b = &self.backends[chosen];
        if b.suspect.load(Ordering::Acquire) {
            b.with_health(|h| h.on_select(Instant::now(), up.fail_timeout));
        }
        Some(chosen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pool of `primaries` servers and `backups` backup servers.
    fn pool(primaries: usize, backups: usize) -> (Upstream, Pool) {
        let servers: Vec<String> = (0..primaries + backups)
            .map(|i| {
                let backup = i >= primaries;
                format!(
                    "{{ addr = \"127.0.0.1:{}\", backup = {backup} }}",
                    20000 + i
                )
            })
            .collect();
        let toml = format!(
            "[upstreams.p]\nservers = [{}]\n[[servers]]\nlisten = [\"127.0.0.1:1\"]\n[[servers.routes]]\nprefix = \"/\"\nupstream = \"p\"\n",
            servers.join(", ")
        );
        let (mut cfg, _) =
            crate::config::load_str(std::path::Path::new("t.toml"), &toml, |_| None).unwrap();
        let up = cfg.upstreams.remove(0);
        let pool = Pool::new(&up, &Registry::default());
        (up, pool)
    }

    /// Picks until none is left, as retries do.
    fn pick_all(up: &Upstream, pool: &Pool) -> Vec<usize> {
        let mut tried = Tried::default();
        let mut order = Vec::new();
        while let Some(i) = pool.pick(up, &tried) {
            assert!(!tried.contains(i), "server {i} picked twice");
            tried.insert(i);
            order.push(i);
            assert!(order.len() <= up.servers.len(), "more picks than servers");
        }
        order
    }

    #[test]
    fn backups_come_after_every_primary_was_tried() {
        let (up, pool) = pool(2, 1);
        let order = pick_all(&up, &pool);
        assert_eq!(order.len(), 3);
        assert_eq!(order[2], 2, "the backup last: {order:?}");
    }

    #[test]
    fn every_server_of_a_large_pool_is_tried_once() {
        // Past the stack-collected size, and past 64 (the old bit set).
        for n in [SMALL_POOL, SMALL_POOL + 1, 70, 130] {
            let (up, pool) = pool(n, 0);
            let mut order = pick_all(&up, &pool);
            order.sort_unstable();
            assert_eq!(order, (0..n).collect::<Vec<_>>(), "pool of {n}");
        }
    }
}
