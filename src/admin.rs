//! The admin listener (`[admin] listen`, absent by default): `GET /metrics`
//! (Prometheus text), `GET /healthz` (`ok`) and `GET /config` (the hash of
//! the configuration in use and the number of requests in flight, for
//! deployment checks). Kept off the proxy listeners so that none of it is
//! exposed publicly by accident; a non-loopback `admin.listen` is warned
//! about at load. Its request heads get the same whole-head deadline as the
//! proxy's, [`HEAD_TIMEOUT`], so that a slow client cannot hold it.

use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::{HttpServer, ServeHttp};
use pingora::protocols::http::ServerSession;
use pingora::services::listening::Service;

use crate::head_deadline::HeadDeadline;
use crate::runtime::Runtime;

/// The whole-head deadline on the admin listener.
pub const HEAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

pub struct Admin {
    state: Arc<Runtime>,
}

#[async_trait]
impl ServeHttp for Admin {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let path = session.req_header().uri.path();
        let (status, ct, body) = match path {
            "/metrics" => (200, "text/plain; version=0.0.4", crate::metrics::render()),
            "/healthz" => (200, "text/plain", b"ok\n".to_vec()),
            "/config" => (
                200,
                "text/plain",
                format!(
                    "hash {}\nrequests_in_flight {}\n",
                    self.state.current().cfg.hash,
                    self.state.requests_in_flight()
                )
                .into_bytes(),
            ),
            _ => (404, "text/plain", b"not found\n".to_vec()),
        };
        Response::builder()
            .status(status)
            .header("content-type", ct)
            .header("content-length", body.len())
            .body(body)
            .unwrap_or_else(|_| Response::new(Vec::new()))
    }
}

/// The admin application behind the head deadline.
pub struct AdminApp {
    inner: Arc<HttpServer<Admin>>,
    answers: Arc<crate::accept::EarlyAnswers>,
}

#[async_trait]
impl pingora::apps::ServerApp for AdminApp {
    async fn process_new(
        self: &Arc<Self>,
        stream: pingora::protocols::Stream,
        shutdown: &pingora::server::ShutdownWatch,
    ) -> Option<pingora::protocols::Stream> {
        let watched = HeadDeadline::new(stream, HEAD_TIMEOUT, self.answers.clone());
        self.inner.process_new(Box::new(watched), shutdown).await
    }
}

pub fn service(addr: SocketAddr, state: Arc<Runtime>) -> Service<AdminApp> {
    let app = AdminApp {
        inner: Arc::new(HttpServer::new_app(Admin {
            state: state.clone(),
        })),
        answers: Arc::new(crate::accept::EarlyAnswers(state)),
    };
    let mut svc = Service::new("rampart admin".to_string(), app);
    svc.add_tcp(&addr.to_string());
    svc
}
