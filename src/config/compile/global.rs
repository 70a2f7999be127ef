//! `[global]`, `[log]` and `[admin]`.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use ipnet::IpNet;

use super::{parse_listen, Compiler};
use crate::config::defaults;
use crate::config::file;
use crate::config::reader::Spanned;
use crate::config::snapshot::{AccessLog, Global, Log, LogFormat};

pub(super) fn compile_global(cx: &mut Compiler<'_, '_>, g: &file::Global) -> Global {
    let pid_file = g.pid_file.as_ref().map(|p| cx.path(&p.v));
    let mut trusted = Vec::new();
    for p in &g.trusted_proxies {
        let parsed =
            p.v.parse::<IpNet>()
                .or_else(|_| p.v.parse::<IpAddr>().map(IpNet::from));
        match parsed {
            Ok(n) => trusted.push(n),
            Err(_) => cx.err(
                &p.span,
                format!(
                    "trusted proxy \"{}\": expected an address or CIDR such as \"10.0.0.0/8\"",
                    p.v
                ),
            ),
        }
    }
    let threads = match g.threads {
        Some(0) => {
            cx.warnings
                .push("global.threads = 0: using the number of CPU cores".into());
            None
        }
        t => t,
    };
    Global {
        threads: threads.map(|t| t as usize).unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        }),
        grace_period: g.grace_period.unwrap_or(defaults::GRACE_PERIOD),
        server_header: g.server_header.unwrap_or(defaults::SERVER_HEADER),
        trusted_proxies: trusted,
        pid_file,
        upgrade_sock: match &g.upgrade_sock {
            Some(p) => cx.path(&p.v),
            None => default_upgrade_sock(&cx.world.config_dir, &cx.world.runtime_dir),
        },
    }
}

/// One socket per configuration directory, so the old and the new process
/// of an upgrade agree without configuration, in a directory only
/// rampart's user can write (`crate::runtime_dir`).
fn default_upgrade_sock(config_dir: &Path, runtime_dir: &Path) -> PathBuf {
    let tag = crate::short_hash::sha256_hex(config_dir.display().to_string().as_bytes(), 6);
    runtime_dir.join(format!("upgrade-{tag}.sock"))
}

pub(super) fn compile_log(cx: &mut Compiler<'_, '_>, l: &file::Log) -> Log {
    let level = match &l.level {
        Some(s) => {
            if let Err(e) = tracing_subscriber::EnvFilter::try_new(&s.v) {
                cx.err(&s.span, format!("log level \"{}\": {e}", s.v));
            }
            s.v.clone()
        }
        None => defaults::LOG_LEVEL.to_string(),
    };
    let format = match l.format.as_ref().map(|s| (s.v.as_str(), &s.span)) {
        None | Some(("text", _)) => LogFormat::Text,
        Some(("json", _)) => LogFormat::Json,
        Some((other, span)) => {
            cx.err(
                span,
                format!("log format \"{other}\": expected \"json\" or \"text\""),
            );
            LogFormat::Text
        }
    };
    let access_log = match l.access_log.as_ref().map(|s| s.v.as_str()) {
        None | Some("stdout") => AccessLog::Stdout,
        Some("off") => AccessLog::Off,
        Some(p) => AccessLog::File(cx.path(p)),
    };
    Log {
        level,
        format,
        access_log,
    }
}

/// The admin listener's address (`/metrics`, `/healthz`, `/config`).
pub(super) fn compile_admin(
    cx: &mut Compiler<'_, '_>,
    admin: Option<&Spanned<String>>,
) -> Option<SocketAddr> {
    let a = admin?;
    let parsed = parse_listen(&a.v);
    if parsed.is_none() {
        cx.err(
            &a.span,
            format!("admin listen address \"{}\": expected IP:PORT", a.v),
        );
    }
    if parsed.is_some_and(|p| !p.ip().is_loopback()) {
        cx.warnings.push(format!(
            "admin.listen {}: /metrics and /config are served to anyone who can reach this address (a loopback address keeps them local)",
            a.v
        ));
    }
    parsed
}
