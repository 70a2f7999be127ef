//! The access log: one JSON line per request, whatever `log.format` is
//! (that applies to the diagnostic log). Lines go through a channel to a
//! writer thread, so a slow disk never stalls a worker.

use std::io::Write;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwapOption;
use serde::Serialize;
use tracing_appender::non_blocking::{NonBlocking, NonBlockingBuilder, WorkerGuard};

use crate::config::snapshot::AccessLog;

/// One access-log record; field names are the contract's.
#[derive(Debug, Serialize)]
pub struct Entry<'a> {
    pub time: String,
    pub client_ip: Option<String>,
    pub method: &'a str,
    pub host: Option<&'a str>,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub status: u16,
    pub bytes_sent: u64,
    /// Request body bytes (for a WebSocket: everything the client sent).
    pub bytes_received: u64,
    pub duration_ms: f64,
    pub route: Option<&'a str>,
    pub upstream: Option<&'a str>,
    pub upstream_addr: Option<&'a str>,
    pub upstream_status: Option<u16>,
    pub request_id: &'a str,
    pub user_agent: Option<&'a str>,
    pub referer: Option<&'a str>,
    /// Negotiated TLS version (`TLSv1.3`), `null` on plain HTTP.
    pub tls: Option<&'a str>,
    /// `HTTP/1.1` or `HTTP/2` (as negotiated by ALPN over TLS).
    pub protocol: &'a str,
}

struct Sink {
    target: AccessLog,
    writer: NonBlocking,
}

static SINK: ArcSwapOption<Sink> = ArcSwapOption::const_empty();
/// Guards of the writer threads; dropping one flushes its lines.
static GUARDS: Mutex<Vec<WorkerGuard>> = Mutex::new(Vec::new());

/// Points the access log at `target` (at start and on reload). Keeps the
/// current writer when the target is unchanged.
pub fn configure(target: &AccessLog) -> std::io::Result<()> {
    if let Some(cur) = SINK.load().as_ref() {
        if &cur.target == target {
            return Ok(());
        }
    }
    let w: Box<dyn Write + Send> = match target {
        AccessLog::Off => {
            SINK.store(None);
            return Ok(());
        }
        AccessLog::Stdout => Box::new(std::io::stdout()),
        AccessLog::File(p) => Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)?,
        ),
    };
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(64 * 1024)
        .finish(w);
    if let Ok(mut g) = GUARDS.lock() {
        g.push(guard);
    }
    SINK.store(Some(Arc::new(Sink {
        target: target.clone(),
        writer,
    })));
    Ok(())
}

pub fn enabled() -> bool {
    SINK.load().is_some()
}

pub fn write(e: &Entry<'_>) {
    let guard = SINK.load();
    let Some(sink) = guard.as_ref() else { return };
    let mut line = Vec::with_capacity(384);
    if serde_json::to_writer(&mut line, e).is_ok() {
        line.push(b'\n');
        let mut w = sink.writer.clone();
        let _ = w.write_all(&line);
    }
}

/// Flushes every pending line (before the process exits).
pub fn flush() {
    SINK.store(None);
    if let Ok(mut g) = GUARDS.lock() {
        g.clear();
    }
}
