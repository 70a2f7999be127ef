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

use crate::config;
use crate::metrics::CONFIG_RELOADS;
use crate::runtime::Runtime;

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
    pub runtime: Arc<Runtime>,
    pub path: PathBuf,
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
                let report = self.runtime.reload(cfg);
                report.log();
                // After the swap: a connection to a new address finds it.
                self.listeners.apply(&self.runtime.current().cfg);
                CONFIG_RELOADS.with_label_values(&["ok"]).inc();
                tracing::info!(
                    hash = %report.hash,
                    previous = %report.hash_before,
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
        let runtime = self.runtime.clone();
        let grace = runtime.current().cfg.global.grace_period;
        let pid_file = self.pid_file.clone();
        tracing::info!(grace = ?grace, in_flight = runtime.requests_in_flight(), "shutting down: draining in-flight requests");
        std::thread::spawn(move || {
            std::thread::sleep(not_before);
            let deadline = Instant::now() + grace;
            // Let the listeners close before judging "idle".
            std::thread::sleep(Duration::from_millis(50));
            while runtime.requests_in_flight() > 0 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let left = runtime.requests_in_flight();
            if left > 0 {
                tracing::warn!(
                    in_flight = left,
                    "grace period over with requests still in flight"
                );
            } else {
                tracing::info!("drained; exiting");
            }
            exit(0, pid_file.as_deref(), &runtime);
        });
    }
}

/// Flushes logs, removes the pid file, exits.
pub fn exit(code: i32, pid_file: Option<&Path>, runtime: &Runtime) -> ! {
    if let Some(p) = pid_file {
        let _ = std::fs::remove_file(p);
    }
    runtime.carried.access_log.flush();
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
                    self.runtime.carried.access_log.reopen();
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
