//! The state a reload carries over, each part keyed by name and pruned
//! when the configuration stops naming it: upstream servers' health and
//! in-flight counts (by pool and address), rate-limit buckets (by zone),
//! the certificate stores of the TLS addresses (by address; refreshed), and
//! the access-log writer.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use crate::config::snapshot::Certificate;
use crate::config::Snapshot;
use crate::ratelimit::Zones;
use crate::tls::{CertStore, SniMap};
use crate::upstream::{Pool, Registry};

use super::{LiveConfig, LiveConnLimit, LiveZone, SharedZone};

/// Certificate stores of the TLS listeners, by address: a handshake reads
/// its address's store, a reload refreshes every store (and a TLS address
/// a reload adds enters one).
pub type CertStores = Arc<Mutex<HashMap<SocketAddr, Arc<CertStore>>>>;

#[derive(Debug, Default)]
pub struct Carried {
    /// Upstream server state by pool name + address.
    pub backends: Registry,
    /// Rate-limit buckets by zone name; kept by reloads that keep a zone's
    /// `rate`, `key` and `ipv6_prefix`.
    pub zones: Zones,
    /// Connections to the Redis servers of shared zones, by URL.
    pub shared_stores: crate::ratelimit::shared::Stores,
    /// Concurrency-limit counts by limit name; kept by reloads that keep a
    /// limit's `key` (requests in flight stay counted).
    pub conn_limits: crate::conn_limit::Limits,
    pub certs: CertStores,
    /// The access-log writer; a reload that keeps `log.access_log` keeps it.
    pub access_log: crate::access_log::AccessLog,
    /// Verified credentials and auth-service connections, by auth name.
    pub auths: crate::auth::AuthStates,
    /// ACME certificates and challenge answers.
    pub acme: Arc<crate::acme::State>,
}

impl Carried {
    /// A configuration's runtime views, on the carried state.
    pub fn rebuild(&self, cfg: Snapshot) -> LiveConfig {
        let pools = cfg
            .upstreams
            .iter()
            .map(|u| Pool::new(u, &self.backends))
            .collect();
        let zones = cfg
            .zones
            .iter()
            .map(|z| {
                let signature = format!("{} {:?} /{}", z.rate, z.key, z.ipv6_prefix);
                let shared = z.shared.as_ref().map(|s| {
                    let store = self.shared_stores.get(&s.url, &s.label);
                    SharedZone::new(store, s, &z.name, &signature)
                });
                LiveZone {
                    buckets: self.zones.get(&z.name, &signature, z.max_keys),
                    rejected: crate::metrics::RATE_LIMITED.with_label_values(&[z.name.as_str()]),
                    shared,
                }
            })
            .collect();
        let conn_limits = cfg
            .conn_limits
            .iter()
            .map(|c| LiveConnLimit {
                counters: self.conn_limits.get(&c.name, &format!("{:?}", c.key)),
                limited: crate::metrics::CONN_LIMITED.with_label_values(&[c.name.as_str()]),
            })
            .collect();
        let auths = cfg.auths.iter().map(|a| self.auths.get(a)).collect();
        let file_indexes = cfg
            .servers
            .iter()
            .flat_map(|s| s.routes.routes())
            .filter_map(|r| r.try_files.as_ref())
            .map(|st| (st.root.clone(), crate::file_index::FileIndex::new(&st.root)))
            .collect();
        let metrics = crate::metrics::ServerMetrics::for_config(&cfg);
        LiveConfig {
            acme: self.acme.clone(),
            cfg,
            pools,
            zones,
            conn_limits,
            auths,
            file_indexes,
            metrics,
        }
    }

    /// Forgets what `cfg` no longer names (the caller then refreshes the
    /// certificates: `Runtime::refresh_certs`).
    pub fn prune(&self, cfg: &Snapshot) {
        self.backends.retain(cfg);
        let zones: Vec<&str> = cfg.zones.iter().map(|z| z.name.as_str()).collect();
        self.zones.retain(&zones);
        let urls: Vec<&str> = cfg
            .zones
            .iter()
            .filter_map(|z| z.shared.as_ref().map(|s| s.url.as_str()))
            .collect();
        self.shared_stores.retain(&urls);
        let limits: Vec<&str> = cfg.conn_limits.iter().map(|c| c.name.as_str()).collect();
        self.conn_limits.retain(&limits);
        let auths: Vec<&str> = cfg.auths.iter().map(|a| a.name.as_str()).collect();
        self.auths.retain(&auths);
        crate::metrics::prune_removed(cfg);
        let acme_servers: Vec<&str> = cfg
            .servers
            .iter()
            .filter(|s| {
                s.tls
                    .as_ref()
                    .is_some_and(|t| matches!(t.certificate, Certificate::Acme { .. }))
            })
            .map(|s| s.name.as_str())
            .collect();
        self.acme.retain(&acme_servers);
    }
}

/// Each TLS listener's SNI map, from a snapshot and the ACME certificates
/// obtained so far.
pub fn sni_maps(cfg: &Snapshot, acme: &crate::acme::State) -> HashMap<SocketAddr, SniMap> {
    let mut out = HashMap::new();
    for l in cfg.listeners.iter().filter(|l| l.tls) {
        let servers = cfg.servers.iter().filter(|s| s.listen.contains(&l.addr));
        let map =
            SniMap::new(servers.filter_map(|s| Some((s.hosts.as_deref(), server_key(s, acme)?))));
        out.insert(l.addr, map);
    }
    out
}

/// A TLS server's certificate now: `Some(None)` for an ACME server whose
/// first certificate is still to come; `None` for a plain-HTTP server.
fn server_key(
    s: &crate::config::snapshot::Server,
    acme: &crate::acme::State,
) -> Option<Option<Arc<rustls::sign::CertifiedKey>>> {
    Some(match &s.tls.as_ref()?.certificate {
        Certificate::Files { key, .. } => Some(key.clone()),
        Certificate::Acme { .. } => acme.certificate(&s.name),
    })
}

/// `rampart_tls_certificate_expiry_timestamp_seconds` of every TLS server
/// with a certificate.
pub fn certificate_expiry(cfg: &Snapshot, acme: &crate::acme::State) {
    for s in &cfg.servers {
        let leaf = server_key(s, acme)
            .flatten()
            .and_then(|k| crate::tls::leaf_facts(&k));
        if let Some(leaf) = leaf {
            crate::metrics::CERTIFICATE_EXPIRY
                .with_label_values(&[s.name.as_str()])
                .set(leaf.not_after);
        }
    }
}
