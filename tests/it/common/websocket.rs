//! A WebSocket echo origin.

use super::*;

/// A WebSocket echo origin (text and binary), counting open connections;
/// dropping it kills every connection.
pub struct WsOrigin {
    pub addr: SocketAddr,
    pub open: Arc<AtomicUsize>,
    pub accepted: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
    conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Drop for WsOrigin {
    fn drop(&mut self) {
        self.task.abort();
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }
}

impl WsOrigin {
    pub async fn start() -> WsOrigin {
        use futures_util::{SinkExt, StreamExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let open = Arc::new(AtomicUsize::new(0));
        let accepted = Arc::new(AtomicUsize::new(0));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let (op, acc, cs) = (open.clone(), accepted.clone(), conns.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let guard = OpenGuard(op.clone());
                op.fetch_add(1, Ordering::SeqCst);
                acc.fetch_add(1, Ordering::SeqCst);
                let conn = tokio::spawn(async move {
                    let _guard = guard;
                    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                        return;
                    };
                    while let Some(Ok(msg)) = ws.next().await {
                        if msg.is_close() {
                            let _ = ws.close(None).await;
                            break;
                        }
                        if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                            break;
                        }
                    }
                });
                cs.lock().unwrap().push(conn.abort_handle());
            }
        });
        WsOrigin {
            addr,
            open,
            accepted,
            task,
            conns,
        }
    }

    pub fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }
}
