//! The access log: one JSON line per request, whatever `log.format` is
//! (that applies to the diagnostic log).
//!
//! Lines go through a bounded channel to a writer thread. Writing never
//! blocks request handling: when the writer falls [`QUEUE`] lines behind (a
//! full disk, a stalled stdout pipe), new lines are dropped and counted in
//! `rampart_access_log_dropped_total`. SIGUSR1 makes the writer reopen the
//! file (after logrotate moved it), as nginx's `-s reopen`.

use std::io::{BufWriter, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use serde::Serialize;

use crate::config::snapshot::AccessLog as Target;
use crate::metrics::ACCESS_LOG_DROPPED;

/// Lines that may wait for the writer.
pub const QUEUE: usize = 4096;

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

enum Msg {
    Line(Vec<u8>),
    /// Look at the reopen flag (the line channel may be full).
    Wake,
}

struct Sink {
    target: Target,
    lines: SyncSender<Msg>,
    reopen: Arc<AtomicBool>,
}

/// The process's access log: the writer in use (none when `off`), kept by
/// reloads that keep `log.access_log`. Lives in [`crate::runtime::Carried`].
#[derive(Default)]
pub struct AccessLog {
    sink: ArcSwapOption<Sink>,
    /// One receiver per writer thread: it says when the thread has written
    /// everything and ended.
    done: Mutex<Vec<Receiver<()>>>,
}

impl std::fmt::Debug for AccessLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let target = self.sink.load().as_ref().map(|s| s.target.clone());
        f.debug_struct("AccessLog")
            .field("target", &target)
            .finish()
    }
}

fn open(target: &Target) -> std::io::Result<Option<Box<dyn Write + Send>>> {
    Ok(match target {
        Target::Off => None,
        Target::Stdout => Some(Box::new(std::io::stdout())),
        Target::File(p) => Some(Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)?,
        )),
    })
}

impl AccessLog {
    /// Points the access log at `target` (at start and on reload). Keeps the
    /// current writer when the target is unchanged; a replaced writer writes
    /// what it has queued, then ends.
    pub fn configure(&self, target: &Target) -> std::io::Result<()> {
        if let Some(cur) = self.sink.load().as_ref() {
            if &cur.target == target {
                return Ok(());
            }
        }
        let Some(out) = open(target)? else {
            self.sink.store(None);
            return Ok(());
        };
        let (lines, rx) = mpsc::sync_channel(QUEUE);
        let (done_tx, done_rx) = mpsc::channel();
        let reopen = Arc::new(AtomicBool::new(false));
        let writer = Writer {
            target: target.clone(),
            out: BufWriter::with_capacity(64 * 1024, out),
            reopen: reopen.clone(),
        };
        std::thread::Builder::new()
            .name("access log".into())
            .spawn(move || {
                writer.run(rx);
                let _ = done_tx.send(());
            })?;
        if let Ok(mut d) = self.done.lock() {
            d.push(done_rx);
        }
        self.sink.store(Some(Arc::new(Sink {
            target: target.clone(),
            lines,
            reopen,
        })));
        Ok(())
    }

    pub fn enabled(&self) -> bool {
        self.sink.load().is_some()
    }

    pub fn write(&self, e: &Entry<'_>) {
        let guard = self.sink.load();
        let Some(sink) = guard.as_ref() else { return };
        let mut line = Vec::with_capacity(384);
        if serde_json::to_writer(&mut line, e).is_ok() {
            line.push(b'\n');
            if let Err(TrySendError::Full(_)) = sink.lines.try_send(Msg::Line(line)) {
                ACCESS_LOG_DROPPED.inc();
            }
        }
    }

    /// SIGUSR1: the file is opened again by name (logrotate moved the old one).
    pub fn reopen(&self) {
        if let Some(sink) = self.sink.load().as_ref() {
            sink.reopen.store(true, Ordering::Release);
            // A full queue wakes the writer anyway.
            let _ = sink.lines.try_send(Msg::Wake);
        }
    }

    /// Writes every queued line (before the process exits), waiting at most
    /// two seconds for a writer that cannot write (a stalled pipe).
    pub fn flush(&self) {
        self.sink.store(None);
        let done = self
            .done
            .lock()
            .map(|mut d| std::mem::take(&mut *d))
            .unwrap_or_default();
        for rx in done {
            if let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(Duration::from_secs(2)) {
                break;
            }
        }
    }
}

struct Writer {
    target: Target,
    out: BufWriter<Box<dyn Write + Send>>,
    reopen: Arc<AtomicBool>,
}

impl Writer {
    /// Writes lines until every sender is gone; flushes whenever the queue
    /// is empty, so a line is never held back behind a quiet period.
    fn run(mut self, rx: Receiver<Msg>) {
        loop {
            let msg = match rx.try_recv() {
                Ok(m) => m,
                Err(TryRecvError::Empty) => {
                    let _ = self.out.flush();
                    match rx.recv() {
                        Ok(m) => m,
                        Err(_) => break,
                    }
                }
                Err(TryRecvError::Disconnected) => break,
            };
            if self.reopen.swap(false, Ordering::AcqRel) {
                self.reopen_file();
            }
            if let Msg::Line(l) = msg {
                let _ = self.out.write_all(&l);
            }
        }
        let _ = self.out.flush();
    }

    fn reopen_file(&mut self) {
        let _ = self.out.flush();
        match open(&self.target) {
            Ok(Some(out)) => {
                self.out = BufWriter::with_capacity(64 * 1024, out);
                tracing::info!("access log reopened");
            }
            Ok(None) => {}
            Err(e) => tracing::error!("cannot reopen the access log: {e}; writing to the old file"),
        }
    }
}
