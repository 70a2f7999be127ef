//! An HTTP/1.1 origin on a Unix socket, as gunicorn or uvicorn serve
//! behind nginx: answers `unix <path-and-query>`, counting requests.

use super::*;

pub struct UnixOrigin {
    pub path: PathBuf,
    pub hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
    /// Open connections, closed when the origin is dropped (a restarted
    /// app server keeps none).
    conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Drop for UnixOrigin {
    fn drop(&mut self) {
        self.task.abort();
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

impl UnixOrigin {
    pub async fn start(path: PathBuf) -> UnixOrigin {
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let h = hits.clone();
        let conns = Arc::new(Mutex::new(Vec::new()));
        let cs = conns.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let h = h.clone();
                let conn = tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        h.fetch_add(1, Ordering::SeqCst);
                        let target = req.uri().path_and_query().map(|p| p.to_string());
                        async move {
                            let body = format!("unix {}", target.unwrap_or_default());
                            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
                cs.lock().unwrap().push(conn.abort_handle());
            }
        });
        UnixOrigin {
            path,
            hits,
            task,
            conns,
        }
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}
