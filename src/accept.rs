//! What happens to a connection before HTTP: the TLS handshake (for TLS
//! listeners) and the whole-head deadline.
//!
//! rampart performs the handshake itself instead of leaving it to pingora's
//! listener, for three reasons: each listener gets its own rustls
//! `ServerConfig` (its `protocols`, ALPN, a 20,000-session cache and
//! stateless tickets — pingora 0.9 fixes versions at 1.2+1.3 and has no
//! API for any of it); failed handshakes can be counted by reason
//! (`rampart_tls_handshake_errors_total`); and the handshake shares the
//! `client_header_timeout` deadline instead of pingora's fixed 60 s.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::listeners::tls::Acceptor;
use pingora::protocols::tls::server::handshake_with_callback;
use pingora::protocols::Stream;
use pingora::server::ShutdownWatch;

use crate::config::defaults::CLIENT_HEADER_TIMEOUT as DEFAULT_HEADER_TIMEOUT;
use crate::head_deadline::{HeadDeadline, TooLarge};
use crate::metrics::TLS_HANDSHAKE_ERRORS;
use crate::runtime::Runtime;
use crate::tls::HandshakeInfo;

/// A TLS listener's handshake settings.
pub struct TlsListener {
    pub acceptor: Acceptor,
}

/// The application behind every listener: TLS where configured, then the
/// head deadline, then pingora's HTTP handling.
pub struct BeforeHttp<A> {
    pub inner: Arc<A>,
    /// The configuration (per-address head deadline) and the answers
    /// rampart gives before a request is parsed.
    pub answers: Arc<EarlyAnswers>,
    /// By listen address.
    pub tls: HashMap<SocketAddr, TlsListener>,
}

impl<A> BeforeHttp<A> {
    fn tls_for(&self, local: Option<SocketAddr>) -> Option<&TlsListener> {
        if self.tls.is_empty() {
            return None;
        }
        let local = local?;
        self.tls.get(&local).or_else(|| {
            self.tls
                .iter()
                .find(|(a, _)| a.ip().is_unspecified() && a.port() == local.port())
                .map(|(_, t)| t)
        })
    }
}

/// rampart's answers before a request is parsed, with the configured
/// headers of the connection's address (see [`crate::headers::early_error`]).
#[derive(Debug)]
pub struct EarlyAnswers(pub Arc<Runtime>);

impl TooLarge for EarlyAnswers {
    fn answer(&self, local: Option<SocketAddr>, tls: bool) -> Vec<u8> {
        let live = self.0.current();
        let id = crate::headers::RequestId::generate();
        let server = live.cfg.default_server(local);
        let header = live.cfg.global.server_header;
        let mut out = b"HTTP/1.1 431 Request Header Fields Too Large\r\n".to_vec();
        if let Some((head, body)) = crate::headers::early_error(431, server, &id, tls, header) {
            head.header_to_h1_wire(&mut out);
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(&body);
        }
        out
    }
}

/// A short label for why a handshake failed.
fn reason(e: &pingora::Error) -> &'static str {
    if matches!(e.etype(), pingora::ErrorType::TLSHandshakeTimedout) {
        return "timeout";
    }
    let mut cause: Option<&(dyn std::error::Error + 'static)> = e.cause.as_deref().map(|c| c as _);
    while let Some(c) = cause {
        if let Some(r) = c.downcast_ref::<rustls::Error>() {
            return rustls_reason(r);
        }
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            if let Some(r) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                return rustls_reason(r);
            }
            return match io.kind() {
                std::io::ErrorKind::UnexpectedEof => "eof",
                std::io::ErrorKind::ConnectionReset => "reset",
                std::io::ErrorKind::TimedOut => "timeout",
                _ => "io",
            };
        }
        cause = c.source();
    }
    // pingora flattens the rustls error into its context text.
    let text = e.to_string();
    const BY_TEXT: [(&str, &str); 8] = [
        ("peer is incompatible", "incompatible"),
        ("received fatal alert", "alert"),
        ("received corrupt message", "invalid_message"),
        ("received unexpected message", "invalid_message"),
        ("peer misbehaved", "misbehaved"),
        ("invalid peer certificate", "certificate"),
        ("unexpected eof", "eof"),
        ("connection reset", "reset"),
    ];
    BY_TEXT
        .iter()
        .find(|(needle, _)| text.to_ascii_lowercase().contains(needle))
        .map(|(_, r)| *r)
        .unwrap_or("other")
}

fn rustls_reason(e: &rustls::Error) -> &'static str {
    match e {
        rustls::Error::PeerIncompatible(_) => "incompatible",
        rustls::Error::AlertReceived(_) => "alert",
        rustls::Error::InvalidMessage(_)
        | rustls::Error::InappropriateHandshakeMessage { .. }
        | rustls::Error::InappropriateMessage { .. } => "invalid_message",
        rustls::Error::PeerMisbehaved(_) => "misbehaved",
        rustls::Error::NoCertificatesPresented | rustls::Error::InvalidCertificate(_) => {
            "certificate"
        }
        _ => "other",
    }
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for BeforeHttp<A> {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let local = stream
            .get_socket_digest()
            .and_then(|d| d.local_addr().and_then(|a| a.as_inet()).copied());
        let live = self.answers.0.current();
        let listener = live.cfg.listener_for(local);
        if local.is_some() && listener.is_none() {
            // An address a reload removed (pingora keeps the socket bound).
            return None;
        }
        let deadline = listener.map_or(DEFAULT_HEADER_TIMEOUT, |l| l.client_header_timeout);
        drop(live);
        let stream: Stream = match self.tls_for(local) {
            None => stream,
            Some(t) => {
                let raw = HeadDeadline::passthrough(stream);
                // Boxed: the handshake's state would otherwise size the
                // future of every connection for its whole life.
                let hs = Box::pin(handshake_with_callback(&t.acceptor, raw, &HandshakeInfo));
                let done = match tokio::time::timeout(deadline, hs).await {
                    Ok(r) => r,
                    Err(_) => pingora::Error::e_explain(
                        pingora::ErrorType::TLSHandshakeTimedout,
                        "TLS handshake",
                    ),
                };
                match done {
                    Ok(tls) => Box::new(tls),
                    Err(e) => {
                        let why = reason(&e);
                        TLS_HANDSHAKE_ERRORS.with_label_values(&[why]).inc();
                        tracing::debug!(reason = why, "TLS handshake failed: {e}");
                        return None;
                    }
                }
            }
        };
        // HTTP/2 has no HTTP/1 heads to watch (h2 limits its own headers),
        // but its preface is due within the same deadline.
        let wrapped: Stream = if matches!(
            stream.selected_alpn_proto(),
            Some(pingora::protocols::ALPN::H2)
        ) {
            Box::new(HeadDeadline::h2_preface(stream, deadline))
        } else {
            Box::new(HeadDeadline::new(stream, deadline, self.answers.clone()))
        };
        self.inner.process_new(wrapped, shutdown).await
    }

    async fn cleanup(&self) {
        self.inner.cleanup().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pingora::ErrorType::{TLSHandshakeFailure, TLSHandshakeTimedout};

    #[test]
    fn handshake_failure_reasons() {
        let r = |msg: &str| {
            reason(&pingora::Error::explain(
                TLSHandshakeFailure,
                msg.to_string(),
            ))
        };
        assert_eq!(
            r("tls connect error: peer is incompatible: SignatureAlgorithmsExtensionRequired"),
            "incompatible"
        );
        assert_eq!(
            r("tls connect error: received fatal alert: UnknownCA"),
            "alert"
        );
        assert_eq!(
            r("tls connect error: received corrupt message of type InvalidContentType"),
            "invalid_message"
        );
        assert_eq!(r("something else"), "other");
        assert_eq!(
            reason(&pingora::Error::explain(TLSHandshakeTimedout, "x")),
            "timeout"
        );
    }
}
