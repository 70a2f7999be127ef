//! The admin listener: `GET /metrics` (Prometheus text) and `GET /healthz`.
//! Kept off the proxy listeners so metrics are never exposed publicly by
//! accident.

use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::{HttpServer, ServeHttp};
use pingora::protocols::http::ServerSession;
use pingora::services::listening::Service;

use crate::state::State;

pub struct Admin {
    state: Arc<State>,
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

pub fn service(addr: SocketAddr, state: Arc<State>) -> Service<HttpServer<Admin>> {
    let mut svc = Service::new(
        "rampart admin".to_string(),
        HttpServer::new_app(Admin { state }),
    );
    svc.add_tcp(&addr.to_string());
    svc
}
