//! Everything that lives longer than one request: the configuration in
//! effect (swapped whole on reload, read by every request through an
//! `ArcSwap`), the state a reload carries over ([`Carried`]), and the count
//! of requests in flight that shutdown waits for.

mod carried;
mod reload;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::config::snapshot::{AuthId, ConnLimitId, ServerId, UpstreamId, ZoneId};
use crate::config::Snapshot;
use crate::metrics::{RouteMetrics, ServerMetrics};
use crate::routing::RouteId;
use crate::upstream::Pool;

pub use carried::{certificate_expiry, sni_maps, Carried, CertStores};
pub use reload::{restart_needed, ReloadReport};

/// One configuration with its runtime views (pools, zones), published as
/// a unit so a request never sees pools of one config and routes of
/// another.
#[derive(Debug)]
pub struct LiveConfig {
    pub cfg: Snapshot,
    /// Indexed like `cfg.upstreams`.
    pub pools: Vec<Pool>,
    /// Indexed like `cfg.zones`.
    pub zones: Vec<LiveZone>,
    /// Indexed like `cfg.conn_limits`.
    pub conn_limits: Vec<LiveConnLimit>,
    /// Indexed like `cfg.auths`: verified credentials, auth-service connections.
    pub auths: Vec<Arc<crate::auth::LiveAuth>>,
    /// The directory listings of each `try_files` root, by root.
    pub file_indexes: std::collections::HashMap<std::path::PathBuf, crate::file_index::FileIndex>,
    /// Indexed like `cfg.servers`: request metrics by route.
    pub metrics: Vec<ServerMetrics>,
    /// ACME challenge answers (carried; the same for every configuration).
    pub acme: Arc<crate::acme::State>,
}

/// A rate-limit zone's buckets (carried over reloads) and its rejection
/// counter.
#[derive(Debug)]
pub struct LiveZone {
    /// This process's buckets: the zone's own, or a shared zone's when
    /// its store fails and `on_store_error = "local"`.
    pub buckets: Arc<crate::ratelimit::Zone>,
    pub rejected: prometheus::IntCounter,
    /// `store = "redis://..."`.
    pub shared: Option<SharedZone>,
}

/// A zone whose buckets are in Redis.
#[derive(Debug)]
pub struct SharedZone {
    pub store: Arc<crate::ratelimit::shared::Store>,
    pub on_error: crate::config::snapshot::OnStoreError,
    pub timeout: std::time::Duration,
    /// `rampart:rl:<zone>:<signature>:`: the zone's keys start with it. The
    /// signature (a hash of rate, key and prefix) changes with them, so a
    /// reload that changes the rate starts afresh, as a local zone does,
    /// and one that keeps them keeps the keys.
    pub key_prefix: String,
    pub errors: prometheus::IntCounter,
    pub duration: prometheus::Histogram,
}

impl SharedZone {
    pub fn new(
        store: Arc<crate::ratelimit::shared::Store>,
        s: &crate::config::snapshot::SharedStore,
        zone: &str,
        signature: &str,
    ) -> SharedZone {
        let sig = crate::short_hash::sha256_hex(signature.as_bytes(), 6);
        SharedZone {
            store,
            on_error: s.on_error,
            timeout: s.timeout,
            key_prefix: format!("rampart:rl:{zone}:{sig}:"),
            errors: crate::metrics::RATE_LIMIT_STORE_ERRORS.with_label_values(&[zone]),
            duration: crate::metrics::RATE_LIMIT_STORE_DURATION.with_label_values(&[zone]),
        }
    }
}

/// A concurrency limit's counters (carried over reloads) and its
/// rejection counter.
#[derive(Debug)]
pub struct LiveConnLimit {
    pub counters: Arc<crate::conn_limit::Counters>,
    pub limited: prometheus::IntCounter,
}

crate::config::snapshot::indexed_by!(ConnLimitId: LiveConnLimit);
crate::config::snapshot::indexed_by!(AuthId: Arc<crate::auth::LiveAuth>);
crate::config::snapshot::indexed_by!(ServerId: ServerMetrics);
crate::config::snapshot::indexed_by!(UpstreamId: Pool);
crate::config::snapshot::indexed_by!(ZoneId: LiveZone);

impl LiveConfig {
    /// The series a request of `server` counts in: its route's, or the
    /// server's unrouted ones.
    pub fn metrics(&self, server: ServerId, route: Option<RouteId>) -> &RouteMetrics {
        let m = &self.metrics[server];
        route.map_or(&m.unrouted, |r| &m.routes[r.0])
    }
}

/// Process-wide state shared by the proxy, the admin endpoint, the
/// background services and the signal handler.
#[derive(Debug)]
pub struct Runtime {
    live: ArcSwap<LiveConfig>,
    /// What outlives a configuration, by name.
    pub carried: Carried,
    /// Requests currently being handled (for the shutdown drain).
    requests: AtomicUsize,
}

impl Runtime {
    pub fn new(cfg: Snapshot) -> Arc<Self> {
        let carried = Carried::default();
        let live = carried.rebuild(cfg);
        certificate_expiry(&live.cfg, &carried.acme);
        crate::metrics::set_config(&live.cfg.hash);
        Arc::new(Runtime {
            live: ArcSwap::from_pointee(live),
            carried,
            requests: AtomicUsize::new(0),
        })
    }

    /// The configuration for a new request.
    pub fn current(&self) -> Arc<LiveConfig> {
        self.live.load_full()
    }

    /// Publishes a new configuration; requests already running keep theirs.
    /// What it no longer names is forgotten, metric series included.
    fn publish(&self, cfg: Snapshot) {
        let live = Arc::new(self.carried.rebuild(cfg));
        self.live.store(live.clone());
        self.carried.prune(&live.cfg);
        self.refresh_certs();
        crate::metrics::set_config(&live.cfg.hash);
    }

    /// Gives every TLS listener the certificates of the configuration in
    /// use and of ACME now. Reads the configuration under the stores' lock,
    /// so that of a reload and a certificate obtained at the same moment,
    /// the later refresh sees both.
    pub fn refresh_certs(&self) {
        let stores = self.carried.certs.lock().unwrap_or_else(|p| p.into_inner());
        let live = self.live.load();
        certificate_expiry(&live.cfg, &self.carried.acme);
        let mut maps = sni_maps(&live.cfg, &self.carried.acme);
        // A store of an address the reload removed stays: a listener bound
        // at start stays open (closing new connections) and keeps its store.
        for (addr, store) in stores.iter() {
            if let Some(m) = maps.remove(addr) {
                store.store(m);
            }
        }
    }

    /// Publishes `cfg` only if `expected` is still the configuration in
    /// use: a DNS refresh computed from a configuration a reload has since
    /// replaced must not undo the reload. Returns whether it did.
    pub fn replace_if_current(&self, expected: &Arc<LiveConfig>, cfg: Snapshot) -> bool {
        let live = Arc::new(self.carried.rebuild(cfg));
        let previous = self.live.compare_and_swap(expected, live.clone());
        let replaced = Arc::ptr_eq(&previous, expected);
        // After a lost race the backends made for `live` are dropped by
        // the next prune.
        if replaced {
            self.carried.prune(&live.cfg);
            self.refresh_certs();
        }
        replaced
    }

    pub fn requests_in_flight(&self) -> usize {
        self.requests.load(Ordering::Acquire)
    }

    pub fn request_started(self: &Arc<Self>) -> RequestGuard {
        self.requests.fetch_add(1, Ordering::AcqRel);
        RequestGuard(self.clone())
    }
}

/// Counts a request as in flight until dropped.
#[derive(Debug)]
pub struct RequestGuard(Arc<Runtime>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.requests.fetch_sub(1, Ordering::AcqRel);
    }
}
