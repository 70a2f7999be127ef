//! The diagnostic log (stderr): its format is fixed at start, its level
//! (`log.level`, an `EnvFilter` directive) follows reloads.

use std::sync::OnceLock;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Registry};

use crate::config::snapshot::LogFormat;

static LEVEL: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

/// `log.level` as a filter. rustls warns once per handshake about clients
/// that send an IP address as SNI: client-triggered log spam, silenced
/// unless asked for.
fn filter(level: &str) -> EnvFilter {
    let mut directives = level.to_string();
    if !directives.contains("rustls") {
        directives.push_str(",rustls=error");
    }
    EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("info"))
}

/// Installs the global subscriber (once per process).
pub fn init(level: &str, format: LogFormat) {
    let (layer, handle) = reload::Layer::new(filter(level));
    let registry = tracing_subscriber::registry().with(layer);
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Json => registry.with(fmt.json()).try_init(),
        LogFormat::Text => registry.with(fmt).try_init(),
    };
    if installed.is_ok() {
        let _ = LEVEL.set(handle);
    }
}

/// Applies a reloaded `log.level`.
pub fn set_level(level: &str) {
    if let Some(h) = LEVEL.get() {
        if let Err(e) = h.reload(filter(level)) {
            tracing::warn!("cannot change log.level: {e}");
        }
    }
}
