//! A reload: a new configuration applied to the running process, and a
//! report of what it changed and what only a restart applies.

use crate::config::Snapshot;

use super::Runtime;

/// What a reload did.
#[derive(Debug, Default)]
pub struct ReloadReport {
    /// The configuration's hash before and after.
    pub hash_before: String,
    pub hash: String,
    /// Settings that changed but take effect only after a restart.
    pub restart_needed: Vec<&'static str>,
    /// The new `log.level`, when it changed (applied).
    pub log_level: Option<String>,
    /// The access log could not be reopened: the previous one is kept.
    pub access_log_error: Option<String>,
}

impl ReloadReport {
    /// The report in the process log.
    pub fn log(&self) {
        for what in &self.restart_needed {
            tracing::warn!("{what} changed: it takes effect after a restart (`run --upgrade` + SIGUSR2); everything else is applied now");
        }
        if let Some(level) = &self.log_level {
            tracing::info!(level = %level, "log.level applied");
        }
        if let Some(e) = &self.access_log_error {
            tracing::error!("cannot open access log: {e}; keeping the previous one");
        }
    }
}

impl Runtime {
    /// Applies a new configuration in process: log level, access log,
    /// certificates, then the configuration itself (with what it carries
    /// over). Listen addresses are the caller's (`crate::listeners`).
    pub fn reload(&self, cfg: Snapshot) -> ReloadReport {
        let old = self.current();
        let mut report = ReloadReport {
            hash_before: old.cfg.hash.clone(),
            hash: cfg.hash.clone(),
            restart_needed: restart_needed(&old.cfg, &cfg),
            ..ReloadReport::default()
        };
        if old.cfg.log.level != cfg.log.level {
            crate::logging::set_level(&cfg.log.level);
            report.log_level = Some(cfg.log.level.clone());
        }
        if let Err(e) = self.carried.access_log.configure(&cfg.log.access_log) {
            report.access_log_error = Some(e.to_string());
        }
        self.publish(cfg);
        report
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

    #[test]
    fn a_reload_reports_what_changed_and_publishes_the_new_config() {
        let runtime = crate::runtime::Runtime::new(load("[global]\nthreads = 2"));
        let report = runtime.reload(load("[global]\nthreads = 3\n[log]\nlevel = \"debug\""));
        assert_eq!(report.restart_needed, ["global.threads"]);
        assert_eq!(report.log_level.as_deref(), Some("debug"));
        assert!(report.access_log_error.is_none());
        assert_ne!(report.hash, report.hash_before);
        assert_eq!(runtime.current().cfg.hash, report.hash);
        assert_eq!(runtime.current().cfg.global.threads, 3);
    }
}
