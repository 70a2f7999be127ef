//! Everything that lives longer than one request: the current
//! configuration (swapped whole on reload) and the long-lived state keyed
//! by name that a reload carries over.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::config::Snapshot;
use crate::upstream::{Pool, Registry};

/// One configuration with its per-snapshot runtime views, published as a
/// unit so a request never sees pools of one config and routes of another.
#[derive(Debug)]
pub struct Live {
    pub cfg: Snapshot,
    /// Indexed like `cfg.upstreams`.
    pub pools: Vec<Pool>,
    /// Indexed like `cfg.zones`: bucket state and the rejection counter.
    pub zones: Vec<(Arc<crate::ratelimit::Zone>, prometheus::IntCounter)>,
}

/// Process-wide state shared by the proxy, the admin endpoint and the
/// signal handler.
#[derive(Debug)]
pub struct State {
    live: ArcSwap<Live>,
    /// Upstream server state by pool name + address; survives reloads.
    pub backends: Registry,
    /// Rate-limit buckets by zone name; survive reloads that keep a zone's
    /// `rate` and `key`.
    pub zones: crate::ratelimit::Zones,
    /// Requests currently being handled (for the shutdown drain).
    requests: AtomicUsize,
}

impl State {
    pub fn new(cfg: Snapshot) -> Arc<Self> {
        let backends = Registry::default();
        let zones = crate::ratelimit::Zones::default();
        let live = Self::make_live(cfg, &backends, &zones);
        crate::metrics::set_config(&live.cfg.hash);
        Arc::new(State {
            live: ArcSwap::from_pointee(live),
            backends,
            zones,
            requests: AtomicUsize::new(0),
        })
    }

    fn make_live(cfg: Snapshot, backends: &Registry, zones: &crate::ratelimit::Zones) -> Live {
        let pools = cfg
            .upstreams
            .iter()
            .map(|u| Pool::new(u, backends))
            .collect();
        let zones = cfg
            .zones
            .iter()
            .map(|z| {
                let signature = format!("{} {:?} /{}", z.rate, z.key, z.ipv6_prefix);
                let counter = crate::metrics::RATE_LIMITED.with_label_values(&[z.name.as_str()]);
                (zones.get(&z.name, &signature, z.max_keys), counter)
            })
            .collect();
        Live { cfg, pools, zones }
    }

    /// The configuration for a new request.
    pub fn current(&self) -> Arc<Live> {
        self.live.load_full()
    }

    /// Publishes a new configuration; requests already running keep theirs.
    pub fn swap(&self, cfg: Snapshot) {
        let live = Self::make_live(cfg, &self.backends, &self.zones);
        // What the new configuration no longer names is forgotten, its
        // metric series included.
        self.backends.retain(&live.cfg);
        let zones: Vec<&str> = live.cfg.zones.iter().map(|z| z.name.as_str()).collect();
        self.zones.retain(&zones);
        crate::metrics::prune_removed(&live.cfg);
        crate::metrics::set_config(&live.cfg.hash);
        self.live.store(Arc::new(live));
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
pub struct RequestGuard(Arc<State>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.requests.fetch_sub(1, Ordering::AcqRel);
    }
}
