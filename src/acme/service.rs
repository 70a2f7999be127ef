//! When to order: a background service that looks at every ACME server of
//! the configuration in use each second. A server without a certificate
//! takes the stored one if it covers its hosts (a restart contacts no CA);
//! one with none, or one due for renewal (`renew_before` its expiry), is
//! ordered, under the storage lock. A failed order is retried with backoff
//! while the current certificate stays in use.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use rustls::sign::CertifiedKey;

use super::order;
use super::storage::Storage;
use crate::config::snapshot::{AcmeSettings, Certificate};
use crate::runtime::Runtime;

const TICK: Duration = Duration::from_secs(1);
/// After a failed order (Let's Encrypt allows 5 failed validations per
/// name and hour): doubled each time up to the maximum.
const BACKOFF_MIN: Duration = Duration::from_secs(300);
const BACKOFF_MAX: Duration = Duration::from_secs(6 * 3600);
/// Another process holds the storage lock (it is ordering): look again.
const LOCKED_RETRY: Duration = Duration::from_secs(5);
/// A whole order, from account to certificate.
const ORDER_LIMIT: Duration = Duration::from_secs(300);

pub struct Renewer {
    pub state: Arc<Runtime>,
}

/// A server's schedule.
struct Plan {
    hosts: Vec<String>,
    /// No order before this.
    not_before: Instant,
    backoff: Duration,
}

impl Plan {
    /// The server's schedule; a new one when its hosts changed.
    fn of<'p>(
        plans: &'p mut HashMap<String, Plan>,
        server: &str,
        hosts: &[String],
    ) -> &'p mut Plan {
        let fresh = || Plan {
            hosts: hosts.to_vec(),
            not_before: Instant::now(),
            backoff: BACKOFF_MIN,
        };
        let plan = plans.entry(server.to_string()).or_insert_with(fresh);
        if plan.hosts != hosts {
            *plan = fresh();
        }
        plan
    }

    /// After an order: counted and logged; the next one not before
    /// `BACKOFF_MIN` after a success, after the (doubling) backoff after a
    /// failure.
    fn settle(
        &mut self,
        server: &str,
        result: Result<(), String>,
        had_one: bool,
        started: Instant,
    ) {
        let label = if result.is_ok() { "ok" } else { "error" };
        crate::metrics::ACME_ORDERS
            .with_label_values(&[server, label])
            .inc();
        match result {
            Ok(()) => {
                self.backoff = BACKOFF_MIN;
                self.not_before = Instant::now() + BACKOFF_MIN;
                let took_ms = started.elapsed().as_millis() as u64;
                tracing::info!(server, took_ms, "ACME certificate obtained and in use");
            }
            Err(e) => {
                self.not_before = Instant::now() + self.backoff;
                let meanwhile = match had_one {
                    true => "the current certificate stays in use",
                    false => "handshakes for its names fail until one is obtained",
                };
                tracing::error!(
                    server,
                    retry_in_s = self.backoff.as_secs(),
                    "ACME order failed: {e}; {meanwhile}"
                );
                self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

#[async_trait]
impl BackgroundService for Renewer {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut plans: HashMap<String, Plan> = HashMap::new();
        loop {
            let live = self.state.current();
            if let Some(settings) = &live.cfg.acme {
                let servers =
                    live.cfg
                        .servers
                        .iter()
                        .filter_map(|s| match &s.tls.as_ref()?.certificate {
                            Certificate::Acme { hosts } => {
                                Some((s.name.as_str(), hosts.as_slice()))
                            }
                            Certificate::Files { .. } => None,
                        });
                for (server, hosts) in servers {
                    tokio::select! {
                        _ = shutdown.changed() => return,
                        _ = self.look_after(settings, server, hosts, &mut plans) => {}
                    }
                }
            }
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(TICK) => {}
            }
        }
    }
}

impl Renewer {
    async fn look_after(
        &self,
        settings: &AcmeSettings,
        server: &str,
        hosts: &[String],
        plans: &mut HashMap<String, Plan>,
    ) {
        let plan = Plan::of(plans, server, hosts);
        // The usual look: a certificate in use and not due; no I/O.
        let current = self.state.carried.acme.certificate(server);
        if fit(current.as_deref(), hosts, settings.renew_before) {
            return;
        }
        let storage = match Storage::open(&settings.storage) {
            Ok(s) => s,
            Err(e) => {
                if Instant::now() >= plan.not_before {
                    tracing::error!(server, storage = %settings.storage.display(), "ACME storage: {e}");
                    plan.not_before = Instant::now() + plan.backoff;
                }
                return;
            }
        };
        // A restart, or another process sharing the storage renewed.
        if !fit(current.as_deref(), hosts, Duration::ZERO) {
            if let Some(stored) = stored(&storage, hosts, Duration::ZERO) {
                tracing::info!(server, "using the stored ACME certificate");
                self.install(server, stored);
            }
        }
        let current = self.state.carried.acme.certificate(server);
        if fit(current.as_deref(), hosts, settings.renew_before) || Instant::now() < plan.not_before
        {
            return;
        }
        // Due (or none): order, unless another process is ordering now.
        let _lock = match storage.lock(Duration::ZERO) {
            Ok(Some(l)) => l,
            Ok(None) => {
                tracing::info!(
                    server,
                    "another process holds the ACME storage lock; waiting"
                );
                plan.not_before = Instant::now() + LOCKED_RETRY;
                return;
            }
            Err(e) => {
                tracing::error!(server, "ACME storage lock: {e}");
                plan.not_before = Instant::now() + plan.backoff;
                return;
            }
        };
        // What that other process may have stored meanwhile.
        if let Some(stored) = stored(&storage, hosts, settings.renew_before) {
            tracing::info!(server, "using the ACME certificate another process stored");
            self.install(server, stored);
            return;
        }
        let started = Instant::now();
        let result = self
            .order(settings, server, hosts, &storage, current.is_some())
            .await;
        plan.settle(server, result, current.is_some(), started);
    }

    /// One order, bounded in time, its certificate stored and in use.
    async fn order(
        &self,
        settings: &AcmeSettings,
        server: &str,
        hosts: &[String],
        storage: &Storage,
        renewal: bool,
    ) -> Result<(), String> {
        let why = if renewal {
            "renewal due"
        } else {
            "no certificate yet"
        };
        tracing::info!(server, hosts = ?hosts, directory = %settings.directory, "ordering an ACME certificate ({why})");
        let acme = &self.state.carried.acme;
        let outcome = tokio::time::timeout(
            ORDER_LIMIT,
            order::obtain(settings, server, hosts, storage, acme),
        )
        .await;
        match outcome {
            Ok(Ok(issued)) => self.keep(storage, server, hosts, settings.renew_before, issued),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no certificate within {}s", ORDER_LIMIT.as_secs())),
        }
    }

    /// Stores what the order returned and puts it in use.
    fn keep(
        &self,
        storage: &Storage,
        server: &str,
        hosts: &[String],
        renew_before: Duration,
        issued: order::Issued,
    ) -> Result<(), String> {
        let key =
            crate::tls::certified_key_from_pem(issued.chain.as_bytes(), issued.key.as_bytes())?;
        // A certificate that would be due at once (a name missing, dates
        // unreadable) would be ordered again every second.
        if !fit(Some(&key), hosts, renew_before) {
            return Err(
                "the CA issued a certificate that does not cover the hosts or is already due"
                    .into(),
            );
        }
        storage
            .write_cert(hosts, issued.chain.as_bytes(), issued.key.as_bytes())
            .map_err(|e| format!("storing the certificate: {e}"))?;
        self.install(server, key);
        Ok(())
    }

    /// Puts `key` in use for `server`'s names on every TLS listener.
    fn install(&self, server: &str, key: Arc<CertifiedKey>) {
        self.state.carried.acme.install(server, key);
        self.state.refresh_certs();
    }
}

/// The stored certificate for `hosts`, if it reads and [`fit`]s.
fn stored(
    storage: &Storage,
    hosts: &[String],
    renew_before: Duration,
) -> Option<Arc<CertifiedKey>> {
    let (chain, key) = storage.read_cert(hosts)?;
    match crate::tls::certified_key_from_pem(&chain, &key) {
        Ok(k) => fit(Some(&k), hosts, renew_before).then_some(k),
        Err(e) => {
            tracing::warn!(hosts = ?hosts, "stored ACME certificate unusable: {e}");
            None
        }
    }
}

/// Whether `key` names every host and is not due: more than `renew_before`
/// of validity left, or a third of its lifetime when that is less (a CA
/// issuing certificates shorter than `renew_before` would otherwise be
/// asked for a new one every second).
fn fit(key: Option<&CertifiedKey>, hosts: &[String], renew_before: Duration) -> bool {
    let Some(leaf) = key.and_then(crate::tls::leaf_facts) else {
        return false;
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let lifetime = (leaf.not_after - leaf.not_before).max(0);
    let margin = (renew_before.as_secs() as i64).min(lifetime / 3);
    hosts.iter().all(|h| leaf.names.contains(h)) && leaf.not_after - margin > now
}
