//! TLS clients trusting the test CA, and what a handshake showed.

use super::*;

/// A rustls client config trusting the test CA, limited to `versions`.
pub fn tls_client(
    versions: &[&'static rustls::SupportedProtocolVersion],
    alpn: &[&[u8]],
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut std::fs::read(fixture("ca.pem")).unwrap().as_slice()) {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(cfg)
}

/// What a TLS exchange showed.
#[derive(Debug)]
pub struct TlsSeen {
    pub version: Option<rustls::ProtocolVersion>,
    pub subject_cn: String,
    pub alpn: Option<Vec<u8>>,
    pub resumed: bool,
    pub response: String,
}

pub type TlsConn = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// Opens a TLS connection with `sni`.
pub async fn tls_connect(
    port: u16,
    sni: &str,
    cfg: Arc<rustls::ClientConfig>,
) -> std::io::Result<TlsConn> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let name = rustls::pki_types::ServerName::try_from(sni.to_string())
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    tokio_rustls::TlsConnector::from(cfg)
        .connect(name, tcp)
        .await
}

/// One HTTP/1.1 request on an open TLS connection; returns the response head + body read so far.
pub async fn tls_request(conn: &mut TlsConn, host: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    conn.write_all(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(300), conn.read(&mut buf)).await
        else {
            break;
        };
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&out);
        if let Some(end) = text.find("\r\n\r\n") {
            let len = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            if out.len() >= end + 4 + len {
                break;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn describe(conn: &TlsConn, response: String) -> TlsSeen {
    let (_, c) = conn.get_ref();
    let subject_cn = c
        .peer_certificates()
        .and_then(|certs| certs.first())
        .and_then(|der| {
            let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
            let cn = cert
                .subject()
                .iter_common_name()
                .next()?
                .as_str()
                .ok()?
                .to_string();
            Some(cn)
        })
        .unwrap_or_default();
    TlsSeen {
        version: c.protocol_version(),
        subject_cn,
        alpn: c.alpn_protocol().map(|a| a.to_vec()),
        resumed: c.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
        response,
    }
}

/// Connect, GET, describe.
pub async fn tls_get(
    port: u16,
    sni: &str,
    host: &str,
    path: &str,
    cfg: Arc<rustls::ClientConfig>,
) -> std::io::Result<TlsSeen> {
    let mut conn = tls_connect(port, sni, cfg).await?;
    let resp = tls_request(&mut conn, host, path).await;
    Ok(describe(&conn, resp))
}
