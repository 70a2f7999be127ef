//! DNS re-resolution: upstream servers written as names (`app:8000`) are
//! looked up again every `resolve_interval`, so that a container restarted
//! at a new address is reached without a reload (nginx resolves once and
//! serves 502 until one).
//!
//! A change compiles the running configuration again with the new
//! addresses (`config::recompile_with_addrs`) and publishes it: the servers
//! of addresses that stay keep their health, in-flight count and metrics
//! (they are carried by address), new ones start fresh, gone ones are
//! forgotten. A failed lookup keeps the last addresses, is logged and
//! counted in `rampart_upstream_resolve_errors_total{upstream}`. A
//! forward-auth service named by host is looked up again the same way,
//! every 30 s (counted under `upstream="auth.NAME"`).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use tokio::time::Instant;

use crate::config::resolve::lookup_all;
use crate::runtime::{LiveConfig, Runtime};

pub struct Resolver {
    pub state: Arc<Runtime>,
}

/// What a round of lookups found for one name.
#[derive(Debug, PartialEq, Eq)]
pub enum Found {
    /// The same addresses as in use (in any order).
    Same,
    /// Different addresses: the name's servers change.
    Changed(Vec<SocketAddr>),
    /// Nothing: the addresses in use are kept.
    Failed,
}

/// Compares a lookup's result with the addresses in use.
pub fn compare(in_use: &[SocketAddr], looked_up: Vec<SocketAddr>) -> Found {
    if looked_up.is_empty() {
        return Found::Failed;
    }
    let a: HashSet<&SocketAddr> = in_use.iter().collect();
    let b: HashSet<&SocketAddr> = looked_up.iter().collect();
    if a == b {
        Found::Same
    } else {
        Found::Changed(looked_up)
    }
}

#[async_trait]
impl BackgroundService for Resolver {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut next_due: HashMap<String, Instant> = HashMap::new();
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            }
            let live = self.state.current();
            let due = due_names(&live, &mut next_due, Instant::now());
            if due.is_empty() {
                continue;
            }
            // getaddrinfo blocks: off the runtime's threads.
            let looked_up = tokio::task::spawn_blocking(move || {
                due.into_iter()
                    .map(|(upstream, name)| {
                        let addrs = lookup_all(&name);
                        (upstream, name, addrs)
                    })
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap_or_default();
            self.apply(&live, looked_up);
        }
    }
}

/// The (upstream, name) pairs whose interval has passed; schedules their
/// next lookup.
fn due_names(
    live: &LiveConfig,
    next_due: &mut HashMap<String, Instant>,
    now: Instant,
) -> Vec<(String, String)> {
    let mut due = Vec::new();
    // Forward-auth services named by host: on the default interval.
    for auth in &live.cfg.auths {
        let crate::auth::Method::Forward(f) = &auth.method else {
            continue;
        };
        let Some(name) = &f.name else { continue };
        let key = format!("auth.{}", auth.name);
        let at = next_due
            .entry(key.clone())
            .or_insert(now + crate::config::defaults::RESOLVE_INTERVAL);
        if *at <= now {
            *at = now + crate::config::defaults::RESOLVE_INTERVAL;
            due.push((key, name.clone()));
        }
    }
    for up in live.cfg.upstreams.iter().filter(|u| !u.names.is_empty()) {
        let at = next_due
            .entry(up.name.clone())
            .or_insert(now + up.resolve_interval);
        if *at <= now {
            *at = now + up.resolve_interval;
            due.extend(up.names.iter().map(|n| (up.name.clone(), n.clone())));
        }
    }
    due
}

impl Resolver {
    fn apply(&self, live: &Arc<LiveConfig>, looked_up: Vec<(String, String, Vec<SocketAddr>)>) {
        let world = &live.cfg.inputs.world;
        let mut fresh: HashMap<String, Vec<SocketAddr>> = HashMap::new();
        for (upstream, name, addrs) in looked_up {
            match compare(world.addrs(&name), addrs) {
                Found::Same => {}
                Found::Failed => {
                    crate::metrics::UPSTREAM_RESOLVE_ERRORS
                        .with_label_values(&[upstream.as_str()])
                        .inc();
                    tracing::warn!(
                        upstream = %upstream,
                        name = %name,
                        "upstream name does not resolve; keeping its last addresses"
                    );
                }
                Found::Changed(addrs) => {
                    let list: Vec<String> = addrs.iter().map(SocketAddr::to_string).collect();
                    tracing::info!(
                        upstream = %upstream,
                        name = %name,
                        addrs = %list.join(", "),
                        "upstream name resolves to new addresses"
                    );
                    fresh.insert(name, addrs);
                }
            }
        }
        if fresh.is_empty() {
            return;
        }
        match crate::config::recompile_with_addrs(&live.cfg, &fresh) {
            Ok((cfg, _)) => {
                if !self.state.replace_if_current(live, cfg) {
                    tracing::debug!("a reload came first; its own lookups stand");
                }
            }
            Err(e) => {
                tracing::error!("the configuration with the new addresses does not compile: {e}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_lookup_changes_servers_only_when_the_set_of_addresses_changes() {
        let in_use = [a("10.0.0.1:80"), a("10.0.0.2:80")];
        assert_eq!(
            compare(&in_use, vec![a("10.0.0.2:80"), a("10.0.0.1:80")]),
            Found::Same
        );
        assert_eq!(
            compare(&in_use, vec![a("10.0.0.3:80")]),
            Found::Changed(vec![a("10.0.0.3:80")])
        );
        assert_eq!(
            compare(&in_use, vec![]),
            Found::Failed,
            "keeps the last addresses"
        );
        assert_eq!(
            compare(&[], vec![a("10.0.0.1:80")]),
            Found::Changed(vec![a("10.0.0.1:80")])
        );
    }

    fn live(text: &str) -> Arc<LiveConfig> {
        let (cfg, _) =
            crate::config::load_str(std::path::Path::new("t.toml"), text, |_| None).unwrap();
        Runtime::new(cfg).current()
    }

    #[test]
    fn names_are_due_every_resolve_interval_and_addresses_never() {
        let live = live(
            "[upstreams.a]\nservers = [{ addr = \"localhost:1\" }, { addr = \"127.0.0.1:2\" }]\nresolve_interval = \"2s\"\n\
             [upstreams.b]\nservers = [{ addr = \"127.0.0.1:3\" }]\n\
             [[servers]]\nlisten = [\"127.0.0.1:1\"]\n[[servers.routes]]\nprefix = \"/\"\nupstream = \"a\"\n\
             [[servers.routes]]\nprefix = \"/b\"\nupstream = \"b\"\n",
        );
        let mut next = HashMap::new();
        let t0 = Instant::now();
        assert!(due_names(&live, &mut next, t0).is_empty(), "not at start");
        assert!(due_names(&live, &mut next, t0 + Duration::from_secs(1)).is_empty());
        assert_eq!(
            due_names(&live, &mut next, t0 + Duration::from_secs(2)),
            [("a".to_string(), "localhost:1".to_string())]
        );
        assert!(due_names(&live, &mut next, t0 + Duration::from_secs(3)).is_empty());
        assert_eq!(
            due_names(&live, &mut next, t0 + Duration::from_secs(4)).len(),
            1
        );
    }

    #[test]
    fn a_forward_auth_service_named_by_host_is_looked_up_again_too() {
        let live = live(
            "[auth.sso]\nforward = \"http://localhost:1/check\"\n[auth.ip]\nforward = \"http://127.0.0.1:1/check\"\n\
             [[servers]]\nlisten = [\"127.0.0.1:1\"]\n[[servers.routes]]\nprefix = \"/\"\nrespond = { body = \"x\" }\nauth = \"sso\"\n",
        );
        let mut next = HashMap::new();
        let t0 = Instant::now();
        assert!(due_names(&live, &mut next, t0).is_empty());
        let due = due_names(
            &live,
            &mut next,
            t0 + crate::config::defaults::RESOLVE_INTERVAL,
        );
        assert_eq!(due, [("auth.sso".to_string(), "localhost:1".to_string())]);
    }

    #[test]
    fn servers_of_addresses_that_stay_keep_their_state() {
        let text = "[upstreams.app]\nservers = [{ addr = \"app.invalid:80\", weight = 3 }]\n\
                    [[servers]]\nlisten = [\"127.0.0.1:1\"]\n[[servers.routes]]\nprefix = \"/\"\nupstream = \"app\"\n";
        let (cfg, _) =
            crate::config::load_str(std::path::Path::new("t.toml"), text, |_| None).unwrap();
        let runtime = Runtime::new(cfg);
        let refresh = |addrs: &[&str]| {
            let live = runtime.current();
            let fresh = HashMap::from([(
                "app.invalid:80".to_string(),
                addrs.iter().map(|x| a(x)).collect(),
            )]);
            let (cfg, _) = crate::config::recompile_with_addrs(&live.cfg, &fresh).unwrap();
            assert!(runtime.replace_if_current(&live, cfg));
            runtime.current()
        };
        let first = refresh(&["10.0.0.1:80", "10.0.0.2:80"]);
        let up = &first.cfg.upstreams[0];
        let labels: Vec<&str> = up.servers.iter().map(|s| s.addr.as_str()).collect();
        assert_eq!(labels, ["10.0.0.1:80", "10.0.0.2:80"]);
        assert!(up
            .servers
            .iter()
            .all(|s| s.weight == 3 && s.host == "app.invalid"));
        let kept = first.pools[0].backends[1].clone();
        let _slot = crate::upstream::InFlight::acquire(&kept);

        let second = refresh(&["10.0.0.2:80", "10.0.0.3:80"]);
        let b = &second.pools[0].backends;
        assert!(Arc::ptr_eq(&b[0], &kept), "10.0.0.2 kept its backend");
        assert_eq!(b[0].in_flight(), 1, "and its in-flight count");
        assert_eq!(b[1].in_flight(), 0);

        // A refresh computed from a configuration since replaced is dropped.
        let stale = first;
        let (cfg, _) = crate::config::recompile_with_addrs(&stale.cfg, &HashMap::new()).unwrap();
        assert!(!runtime.replace_if_current(&stale, cfg));
        assert_eq!(
            runtime.current().cfg.upstreams[0].servers[1].addr,
            "10.0.0.3:80"
        );
    }
}
