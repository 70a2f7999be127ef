//! Listen addresses that a reload adds or removes.
//!
//! pingora binds the addresses of the configuration rampart starts with,
//! and has no way to add or drop one while running. An address a reload
//! adds is bound here (by the reload itself, so that an error such as
//! "address in use" is logged with the reload) and served by an accept loop
//! of rampart's own that hands each connection to the same [`BeforeHttp`] as
//! pingora's listeners; the socket is entered in pingora's table of
//! listening sockets, so that an upgrade (SIGUSR2) hands it to the new
//! process like the others. An address a reload removes stops accepting:
//! one bound here is closed; one pingora bound at start stays bound until
//! the next restart, and the front stage closes connections to it at once.
//! Open connections of a removed address finish their request; a further
//! request on them is answered `421` (which clients retry on a new
//! connection) and the connection closed.
//!
//! [`BeforeHttp`]: crate::accept::BeforeHttp

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, IntoRawFd};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::protocols::l4::listener::Listener as L4Listener;
use pingora::protocols::Stream;
use pingora::server::{ListenFds, ShutdownWatch};
use pingora::services::Service;
use tokio::sync::{mpsc, oneshot};

use crate::config::Snapshot;

/// Builds the application (TLS settings included) for an address a
/// reload adds.
pub type MakeApp<A> = Box<dyn Fn(&Snapshot, SocketAddr) -> anyhow::Result<Arc<A>> + Send + Sync>;

enum Command<A> {
    Open(SocketAddr, std::net::TcpListener, Arc<A>),
    Close(SocketAddr),
}

/// The reload's side: which addresses are served, and by whom.
pub struct Control<A> {
    /// Bound by pingora at start (they stay bound until the process ends).
    startup: HashSet<SocketAddr>,
    /// Bound by a reload and still open.
    added: Mutex<HashSet<SocketAddr>>,
    make_app: MakeApp<A>,
    commands: mpsc::UnboundedSender<Command<A>>,
}

/// The pingora service that runs the accept loops of added addresses.
pub struct Acceptors<A> {
    commands: Option<mpsc::UnboundedReceiver<Command<A>>>,
}

/// The control and the service for a process that started with `cfg`.
pub fn new<A>(cfg: &Snapshot, make_app: MakeApp<A>) -> (Control<A>, Acceptors<A>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let control = Control {
        startup: cfg.listeners.iter().map(|l| l.addr).collect(),
        added: Mutex::new(HashSet::new()),
        make_app,
        commands: tx,
    };
    (control, Acceptors { commands: Some(rx) })
}

impl<A> Control<A> {
    /// Opens the addresses `cfg` lists that are not served yet, closes the
    /// added ones it no longer lists, and says which pingora-bound ones it
    /// dropped. Returns the addresses it could not open.
    pub fn apply(&self, cfg: &Snapshot) -> Vec<SocketAddr> {
        let wanted: HashSet<SocketAddr> = cfg.listeners.iter().map(|l| l.addr).collect();
        let mut added = self.added.lock().unwrap_or_else(|p| p.into_inner());
        let mut failed = Vec::new();
        for l in &cfg.listeners {
            let addr = l.addr;
            if self.startup.contains(&addr) || added.contains(&addr) {
                continue;
            }
            let opened = std::net::TcpListener::bind(addr)
                .and_then(|s| s.set_nonblocking(true).map(|_| s))
                .map_err(anyhow::Error::from)
                .and_then(|s| Ok((s, (self.make_app)(cfg, addr)?)));
            match opened {
                Ok((socket, app)) => {
                    if self.commands.send(Command::Open(addr, socket, app)).is_ok() {
                        added.insert(addr);
                        let scheme = if l.tls { "https" } else { "http" };
                        tracing::info!(addr = %addr, tls = l.tls, "listening on {scheme}://{addr} (added by the reload)");
                    }
                }
                Err(e) => {
                    tracing::error!(addr = %addr, "cannot listen on {addr}: {e}");
                    failed.push(addr);
                }
            }
        }
        added.retain(|addr| {
            if wanted.contains(addr) {
                return true;
            }
            let _ = self.commands.send(Command::Close(*addr));
            tracing::info!(addr = %addr, "no longer listening on {addr}: open connections finish");
            false
        });
        for addr in self.startup.difference(&wanted) {
            tracing::warn!(addr = %addr, "{addr} was removed: new connections to it are closed at once; the socket itself stays bound until a restart");
        }
        failed
    }
}

/// One added address's accept loop and how to stop it.
struct Running {
    stop: oneshot::Sender<()>,
    done: tokio::task::JoinHandle<Option<tokio::net::TcpListener>>,
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> Service for Acceptors<A> {
    async fn start_service(
        &mut self,
        fds: Option<ListenFds>,
        mut shutdown: ShutdownWatch,
        _listeners_per_fd: usize,
    ) {
        let Some(mut commands) = self.commands.take() else {
            return;
        };
        let mut running: HashMap<SocketAddr, Running> = HashMap::new();
        loop {
            tokio::select! {
                cmd = commands.recv() => match cmd {
                    Some(Command::Open(addr, socket, app)) => {
                        let socket = match tokio::net::TcpListener::from_std(socket) {
                            Ok(s) => s,
                            Err(e) => {
                                tracing::error!(addr = %addr, "cannot listen on {addr}: {e}");
                                continue;
                            }
                        };
                        // pingora's table: an upgrade hands this socket over too.
                        if let Some(fds) = &fds {
                            fds.lock().add(addr.to_string(), socket.as_raw_fd());
                        }
                        let (stop, stopped) = oneshot::channel();
                        let done = tokio::spawn(accept_loop(socket, app, shutdown.clone(), stopped));
                        running.insert(addr, Running { stop, done });
                    }
                    Some(Command::Close(addr)) => {
                        let Some(r) = running.remove(&addr) else { continue };
                        let _ = r.stop.send(());
                        let socket = r.done.await.ok().flatten();
                        match (&fds, socket) {
                            // The table closes it (and forgets it), so that an
                            // upgrade never hands over a closed descriptor.
                            (Some(fds), Some(s)) => {
                                let _released = s.into_std().map(IntoRawFd::into_raw_fd);
                                let mut fds = fds.lock();
                                let keep: HashSet<String> = fds
                                    .serialize()
                                    .0
                                    .into_iter()
                                    .filter(|a| *a != addr.to_string())
                                    .collect();
                                fds.close_unclaimed(&keep);
                            }
                            (None, s) => drop(s),
                            (Some(_), None) => {}
                        }
                    }
                    None => break,
                },
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        break;
                    }
                }
            }
        }
        // The accept loops watch the same shutdown signal and end with it.
        for (_, r) in running {
            let _ = r.stop.send(());
        }
    }

    fn name(&self) -> &str {
        "reload listeners"
    }

    /// Every socket this service serves was bound by a reload of this
    /// process: none is expected from an upgrade (a new process's
    /// configuration binds them through pingora).
    fn listen_addresses(&self) -> Option<Vec<String>> {
        Some(Vec::new())
    }
}

/// Accepts until stopped or shut down; gives the socket back.
async fn accept_loop<A: ServerApp + Send + Sync + 'static>(
    socket: tokio::net::TcpListener,
    app: Arc<A>,
    mut shutdown: ShutdownWatch,
    mut stop: oneshot::Receiver<()>,
) -> Option<tokio::net::TcpListener> {
    let listener = L4Listener::from(socket);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(mut stream) => {
                    let _ = stream.set_nodelay();
                    let (app, shutdown) = (app.clone(), shutdown.clone());
                    // As pingora does: each connection on a random worker thread.
                    pingora_runtime::current_handle().spawn(async move {
                        serve(Box::new(stream), app, shutdown).await;
                    });
                }
                Err(e) => {
                    tracing::warn!("accept: {e}");
                    // Out of descriptors: give other connections time to end.
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
            _ = &mut stop => break,
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    break;
                }
            }
        }
    }
    match listener {
        L4Listener::Tcp(s) => Some(s),
        _ => None,
    }
}

/// One connection, kept as long as the application hands it back.
async fn serve<A: ServerApp + Send + Sync + 'static>(
    stream: Stream,
    app: Arc<A>,
    shutdown: ShutdownWatch,
) {
    let mut next = app.process_new(stream, &shutdown).await;
    while let Some(stream) = next {
        next = app.process_new(stream, &shutdown).await;
    }
}
