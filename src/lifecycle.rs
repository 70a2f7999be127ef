//! Signals and the process lifecycle.
//!
//! pingora handles only SIGQUIT/SIGTERM/SIGINT, and on SIGTERM sleeps its
//! whole grace period even when idle (pingora #719). rampart installs its
//! own watcher: SIGHUP reloads (and never kills the process — its default
//! action would), listen addresses included; SIGUSR1 reopens the access log
//! (logrotate's `postrotate`, as for nginx); SIGTERM, SIGINT and SIGQUIT stop accepting, then a drain
//! thread exits 0 as soon as no request is in flight, or when
//! `grace_period` runs out.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pingora::server::{ShutdownSignal, ShutdownSignalWatch};
use tokio::signal::unix::{signal, SignalKind};

use crate::config::{self, Snapshot};
use crate::metrics::CONFIG_RELOADS;
use crate::server::{sni_maps, CertStores};
use crate::state::State;

/// Ignores SIGHUP until the reload handler is installed, closing the
/// window in which a `kill -HUP` would terminate a starting process.
/// SIGUSR1 (logrotate's reopen) is absorbed the same way: a file opened
/// moments ago needs no reopening.
pub fn guard_sighup_early() -> Option<Arc<AtomicBool>> {
    let usr1 = Arc::new(AtomicBool::new(false));
    let _ = signal_hook::flag::register(signal_hook::consts::SIGUSR1, usr1);
    let flag = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, flag.clone()).ok()?;
    Some(flag)
}

/// pingora's `CLOSE_TIMEOUT` after sending the sockets, plus a margin.
const UPGRADE_HANDOVER: Duration = Duration::from_secs(6);

pub struct Signals {
    pub state: Arc<State>,
    pub path: PathBuf,
    pub stores: CertStores,
    /// Opens and closes the listen addresses a reload adds or removes.
    pub listeners: crate::listeners::Control<crate::server::ProxyApp>,
    pub pid_file: Option<PathBuf>,
    /// Set when a SIGHUP arrived before the watcher ran.
    pub early_hup: Option<Arc<AtomicBool>>,
}

impl Signals {
    /// Re-reads the file; swaps it in when valid, keeps the old one when not.
    pub fn reload(&self) {
        let started = Instant::now();
        match config::load(&self.path) {
            Ok((cfg, warnings)) => {
                for w in &warnings {
                    tracing::warn!("{w}");
                }
                let old = self.state.current();
                for what in restart_needed(&old.cfg, &cfg) {
                    tracing::warn!("{what} changed: it takes effect after a restart (`run --upgrade` + SIGUSR2); everything else is applied now");
                }
                if old.cfg.log.level != cfg.log.level {
                    crate::logging::set_level(&cfg.log.level);
                    tracing::info!(level = %cfg.log.level, "log.level applied");
                }
                let mut maps = sni_maps(&cfg);
                for (addr, store) in self.stores.lock().unwrap_or_else(|p| p.into_inner()).iter() {
                    if let Some(m) = maps.remove(addr) {
                        store.store(m);
                    }
                }
                if let Err(e) = crate::access_log::configure(&cfg.log.access_log) {
                    tracing::error!("cannot open access log: {e}; keeping the previous one");
                }
                let hash = cfg.hash.clone();
                self.state.swap(cfg);
                // After the swap: a connection to a new address finds it.
                self.listeners.apply(&self.state.current().cfg);
                CONFIG_RELOADS.with_label_values(&["ok"]).inc();
                tracing::info!(
                    hash = %hash,
                    ms = started.elapsed().as_secs_f64() * 1000.0,
                    "configuration reloaded"
                );
            }
            Err(diags) => {
                CONFIG_RELOADS.with_label_values(&["error"]).inc();
                for line in diags.to_string().lines() {
                    tracing::error!("{line}");
                }
                tracing::error!("reload failed: keeping the previous configuration");
            }
        }
    }

    /// Exits once in-flight requests are done (or `grace_period` is over),
    /// not before `not_before` has passed.
    fn start_drain(&self, not_before: Duration) {
        let state = self.state.clone();
        let grace = state.current().cfg.global.grace_period;
        let pid_file = self.pid_file.clone();
        tracing::info!(grace = ?grace, in_flight = state.requests_in_flight(), "shutting down: draining in-flight requests");
        std::thread::spawn(move || {
            std::thread::sleep(not_before);
            let deadline = Instant::now() + grace;
            // Let the listeners close before judging "idle".
            std::thread::sleep(Duration::from_millis(50));
            while state.requests_in_flight() > 0 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let left = state.requests_in_flight();
            if left > 0 {
                tracing::warn!(
                    in_flight = left,
                    "grace period over with requests still in flight"
                );
            } else {
                tracing::info!("drained; exiting");
            }
            exit(0, pid_file.as_deref());
        });
    }
}

/// The settings a reload cannot apply in-process, by name, that differ
/// between `old` and `new`.
pub fn restart_needed(old: &Snapshot, new: &Snapshot) -> Vec<&'static str> {
    // An address in both whose TLS settings differ: its handshake settings
    // were fixed when it was bound. (Addresses themselves are opened and
    // closed by the reload: crate::listeners.)
    let tls_changed = old.listeners.iter().any(|a| {
        new.listeners.iter().any(|b| {
            a.addr == b.addr && (a.tls, a.http2, &a.protocols) != (b.tls, b.http2, &b.protocols)
        })
    });
    let (a, b) = (&old.global, &new.global);
    [
        (
            "the TLS, protocols or http2 setting of a listen address",
            tls_changed,
        ),
        ("global.threads", a.threads != b.threads),
        ("global.pid_file", a.pid_file != b.pid_file),
        ("global.upgrade_sock", a.upgrade_sock != b.upgrade_sock),
        ("log.format", old.log.format != new.log.format),
        ("admin.listen", old.admin != new.admin),
    ]
    .into_iter()
    .filter_map(|(name, changed)| changed.then_some(name))
    .collect()
}

/// Flushes logs, removes the pid file, exits.
pub fn exit(code: i32, pid_file: Option<&Path>) -> ! {
    if let Some(p) = pid_file {
        let _ = std::fs::remove_file(p);
    }
    crate::access_log::flush();
    std::process::exit(code)
}

#[async_trait]
impl ShutdownSignalWatch for Signals {
    async fn recv(&self) -> ShutdownSignal {
        let (mut hup, mut term, mut int, mut quit, mut usr1, mut usr2) = match (
            signal(SignalKind::hangup()),
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::quit()),
            signal(SignalKind::user_defined1()),
            signal(SignalKind::user_defined2()),
        ) {
            (Ok(a), Ok(b), Ok(c), Ok(d), Ok(e), Ok(f)) => (a, b, c, d, e, f),
            _ => {
                tracing::error!("cannot install signal handlers; stopping");
                return ShutdownSignal::FastShutdown;
            }
        };
        if self
            .early_hup
            .as_ref()
            .is_some_and(|f| f.swap(false, Ordering::AcqRel))
        {
            self.reload();
        }
        loop {
            tokio::select! {
                _ = hup.recv() => {
                    tracing::info!("SIGHUP: reloading {}", self.path.display());
                    self.reload();
                }
                _ = term.recv() => { tracing::info!("SIGTERM"); break; }
                _ = int.recv() => { tracing::info!("SIGINT"); break; }
                _ = quit.recv() => { tracing::info!("SIGQUIT"); break; }
                _ = usr1.recv() => {
                    tracing::info!("SIGUSR1: reopening the access log");
                    crate::access_log::reopen();
                }
                _ = usr2.recv() => {
                    tracing::info!("SIGUSR2: handing the listening sockets to the new process");
                    // pingora sends the sockets, waits 5 s for the new
                    // process to take them, then stops accepting.
                    self.start_drain(UPGRADE_HANDOVER);
                    return ShutdownSignal::GracefulUpgrade;
                }
            }
        }
        self.start_drain(Duration::ZERO);
        ShutdownSignal::GracefulTerminate
    }
}

#[cfg(test)]
mod tests {
    use super::restart_needed;
    use crate::config::{load_str, Snapshot};
    use std::path::Path;

    fn load(extra: &str) -> Snapshot {
        let text = format!(
            "{extra}\n[[servers]]\nlisten = [\"127.0.0.1:8080\"]\n[[servers.routes]]\nprefix = \"/\"\nrespond = {{ body = \"x\" }}\n"
        );
        load_str(Path::new("t.toml"), &text, |_| None).unwrap().0
    }

    #[test]
    fn reload_names_every_setting_that_needs_a_restart() {
        let base = load("[global]\nthreads = 2\n[log]\nlevel = \"info\"");
        assert!(restart_needed(&base, &base).is_empty());
        let level = load("[global]\nthreads = 2\n[log]\nlevel = \"debug\"");
        assert!(
            restart_needed(&base, &level).is_empty(),
            "log.level is applied"
        );
        let all = load(
            "[global]\nthreads = 3\npid_file = \"/tmp/x.pid\"\nupgrade_sock = \"/tmp/u.sock\"\n[log]\nformat = \"json\"\n[admin]\nlisten = \"127.0.0.1:9999\"",
        );
        assert_eq!(
            restart_needed(&base, &all),
            [
                "global.threads",
                "global.pid_file",
                "global.upgrade_sock",
                "log.format",
                "admin.listen"
            ]
        );
    }
}
