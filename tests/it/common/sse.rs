//! A Server-Sent-Events origin.

use super::*;

/// A Server-Sent-Events origin: `n` events, one every `every`.
pub async fn sse_origin(n: usize, every: Duration) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    use http_body_util::StreamBody;
    use hyper::body::Frame;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let svc = service_fn(move |_req: Request<Incoming>| async move {
                    let events = futures_util::stream::unfold(0usize, move |i| async move {
                        if i >= n {
                            return None;
                        }
                        if i > 0 {
                            tokio::time::sleep(every).await;
                        }
                        let frame = Frame::data(Bytes::from(format!("data: event {i}\n\n")));
                        Some((Ok::<_, Infallible>(frame), i + 1))
                    });
                    let mut resp = Response::new(StreamBody::new(events));
                    resp.headers_mut()
                        .insert("content-type", "text/event-stream".parse().unwrap());
                    resp.headers_mut()
                        .insert("cache-control", "no-cache".parse().unwrap());
                    Ok::<_, Infallible>(resp)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, task)
}
