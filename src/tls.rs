//! Certificates and keys: loaded and checked at config load, so that a bad
//! file is a config error naming the file — never a panic inside pingora's
//! `TlsSettings::build` (pingora #927).

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum TlsError {
    #[error("cannot read certificate file {path}: {err}")]
    ReadCert { path: String, err: std::io::Error },
    #[error("cannot read key file {path}: {err}")]
    ReadKey { path: String, err: std::io::Error },
    #[error("certificate file {0} contains no PEM certificate")]
    NoCert(String),
    #[error("key file {0} contains no PEM private key (PKCS#8, PKCS#1 or SEC1)")]
    NoKey(String),
    #[error("invalid PEM in {path}: {err}")]
    Pem { path: String, err: std::io::Error },
    #[error("key {key} does not fit certificate {cert}: {err}")]
    Mismatch {
        cert: String,
        key: String,
        err: rustls::Error,
    },
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let shown = path.display().to_string();
    let data = std::fs::read(path).map_err(|err| TlsError::ReadCert {
        path: shown.clone(),
        err,
    })?;
    let certs = rustls_pemfile::certs(&mut data.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| TlsError::Pem {
            path: shown.clone(),
            err,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCert(shown));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let shown = path.display().to_string();
    let data = std::fs::read(path).map_err(|err| TlsError::ReadKey {
        path: shown.clone(),
        err,
    })?;
    rustls_pemfile::private_key(&mut data.as_slice())
        .map_err(|err| TlsError::Pem {
            path: shown.clone(),
            err,
        })?
        .ok_or(TlsError::NoKey(shown))
}

/// A PEM chain and key (as an ACME order returns them) checked to belong
/// together.
pub fn certified_key_from_pem(chain: &[u8], key: &[u8]) -> Result<Arc<CertifiedKey>, String> {
    let certs = rustls_pemfile::certs(&mut &chain[..])
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("certificate PEM: {e}"))?;
    if certs.is_empty() {
        return Err("no certificate in the PEM".into());
    }
    let key = rustls_pemfile::private_key(&mut &key[..])
        .map_err(|e| format!("key PEM: {e}"))?
        .ok_or("no private key in the PEM")?;
    CertifiedKey::from_der(certs, key, &provider())
        .map(Arc::new)
        .map_err(|e| format!("key does not fit the certificate: {e}"))
}

/// The leaf certificate of `key`: its validity (Unix seconds) and the DNS
/// names it is for.
pub struct LeafFacts {
    pub not_before: i64,
    pub not_after: i64,
    pub names: Vec<String>,
}

pub fn leaf_facts(key: &CertifiedKey) -> Option<LeafFacts> {
    let leaf = key.cert.first()?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
    let names = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    x509_parser::extensions::GeneralName::DNSName(d) => {
                        Some(d.to_ascii_lowercase())
                    }
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    Some(LeafFacts {
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        names,
    })
}

/// The ring provider, as pingora-rustls installs it.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()))
}

/// Reads a PEM chain and key and checks that they belong together.
pub fn load_certified_key(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain = read_certs(cert)?;
    let key_der = read_key(key)?;
    CertifiedKey::from_der(chain, key_der, &provider())
        .map(Arc::new)
        .map_err(|err| TlsError::Mismatch {
            cert: cert.display().to_string(),
            key: key.display().to_string(),
            err,
        })
}

/// Per-listener certificate choice by SNI, swappable as a whole so a
/// reload (certbot's `kill -HUP`) changes certificates for new handshakes
/// while existing connections keep theirs.
#[derive(Debug, Default)]
pub struct CertStore {
    by_sni: arc_swap::ArcSwap<SniMap>,
    /// ACME TLS-ALPN-01 certificates, answered to `acme-tls/1` hellos only.
    acme: Arc<crate::acme::AlpnChallenges>,
}

/// The certificate for each name an address serves. A name whose
/// certificate is not there yet (ACME, before the first one is issued)
/// maps to `None`: its handshakes fail rather than get another server's
/// certificate.
#[derive(Debug, Default)]
pub struct SniMap {
    exact: std::collections::HashMap<String, Option<Arc<CertifiedKey>>>,
    /// (".example.org", key) for `*.example.org`.
    wildcard: Vec<(String, Arc<CertifiedKey>)>,
    default: Option<Arc<CertifiedKey>>,
}

impl SniMap {
    /// `servers`: each server's host patterns (`None` = any) and key, in
    /// file order; the first with a key is the address's default.
    pub fn new<'a>(
        servers: impl IntoIterator<Item = (Option<&'a [String]>, Option<Arc<CertifiedKey>>)>,
    ) -> Self {
        let mut m = SniMap::default();
        for (hosts, key) in servers {
            let Some(key) = key else {
                for h in hosts.unwrap_or(&[]) {
                    m.exact.entry(h.to_ascii_lowercase()).or_insert(None);
                }
                continue;
            };
            m.default.get_or_insert_with(|| key.clone());
            for h in hosts.unwrap_or(&[]) {
                let h = h.to_ascii_lowercase();
                match h.strip_prefix('*') {
                    Some(suffix) => m.wildcard.push((suffix.to_string(), key.clone())),
                    None => {
                        m.exact.entry(h).or_insert_with(|| Some(key.clone()));
                    }
                }
            }
        }
        m
    }

    pub fn resolve(&self, sni: Option<&str>) -> Option<Arc<CertifiedKey>> {
        if let Some(name) = sni.map(|s| s.to_ascii_lowercase()) {
            if let Some(k) = self.exact.get(&name) {
                return k.clone();
            }
            for (suffix, k) in &self.wildcard {
                if let Some(label) = name.strip_suffix(suffix.as_str()) {
                    if !label.is_empty() && !label.contains('.') {
                        return Some(k.clone());
                    }
                }
            }
        }
        self.default.clone()
    }
}

impl CertStore {
    pub fn new(acme: Arc<crate::acme::AlpnChallenges>) -> Self {
        CertStore {
            by_sni: Default::default(),
            acme,
        }
    }

    pub fn store(&self, map: SniMap) {
        self.by_sni.store(Arc::new(map));
    }
}

impl rustls::server::ResolvesServerCert for CertStore {
    fn resolve(&self, hello: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // RFC 8737: a validator offers `acme-tls/1` alone, and gets only the
        // challenge certificate. A client offering it next to h2 or
        // http/1.1 is an ordinary client (rustls would pick h2 or http/1.1
        // for it) and gets the real certificate.
        let only_acme = hello.alpn().is_some_and(|mut p| {
            p.next() == Some(crate::acme::ALPN_ACME_TLS) && p.next().is_none()
        });
        if only_acme {
            return self.acme.get(hello.server_name()?);
        }
        self.by_sni.load().resolve(hello.server_name())
    }
}

/// A CA bundle for verifying upstream servers (`upstreams.*.tls_ca`),
/// checked to parse here because pingora's certificate wrapper panics on
/// bad DER.
pub fn load_ca_bundle(path: &Path) -> Result<Arc<pingora::protocols::tls::CaType>, TlsError> {
    let certs = read_certs(path)?;
    let mut out = Vec::with_capacity(certs.len());
    for c in certs {
        let der = c.as_ref().to_vec();
        if x509_parser::parse_x509_certificate(&der).is_err() {
            return Err(TlsError::Pem {
                path: path.display().to_string(),
                err: std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "not a valid X.509 certificate",
                ),
            });
        }
        out.push(pingora::utils::tls::WrappedX509::new(
            der,
            pingora::utils::tls::parse_x509,
        ));
    }
    Ok(Arc::from(out.into_boxed_slice()))
}

/// The SNI name a TLS connection asked for, attached to the connection by
/// the handshake callback and read per request (for the 421 check).
#[derive(Debug, Clone)]
pub struct Sni(pub Option<String>);

/// Records the SNI name of each completed handshake.
pub struct HandshakeInfo;

#[async_trait::async_trait]
impl pingora::listeners::TlsAccept for HandshakeInfo {
    async fn handshake_complete_callback(
        &self,
        tls: &pingora::protocols::tls::TlsRef,
    ) -> Option<Arc<dyn std::any::Any + Send + Sync>> {
        Some(Arc::new(Sni(tls
            .server_name()
            .map(|s| s.to_ascii_lowercase()))))
    }
}

/// How many TLS sessions each listener remembers for resumption (nginx's
/// `ssl_session_cache shared:SSL:10m` holds about 40,000).
const SESSION_CACHE: usize = 20_000;

/// The handshake settings of one TLS listener: its versions (TLS 1.0/1.1
/// are never offered), ALPN, the SNI certificate store, a session cache and
/// stateless session tickets (rotating keys, from rustls' ring provider).
pub fn acceptor(
    versions: &[crate::config::snapshot::TlsVersion],
    http2: bool,
    store: Arc<CertStore>,
) -> Result<pingora::listeners::tls::Acceptor, rustls::Error> {
    use crate::config::snapshot::TlsVersion;
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = versions
        .iter()
        .map(|v| match v {
            TlsVersion::V1_2 => &rustls::version::TLS12,
            TlsVersion::V1_3 => &rustls::version::TLS13,
        })
        .collect();
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&versions)?
        .with_no_client_auth()
        .with_cert_resolver(store);
    cfg.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    // Offered last: chosen only by an ACME validator, which offers nothing
    // else (and then only sees a challenge certificate).
    cfg.alpn_protocols.push(crate::acme::ALPN_ACME_TLS.to_vec());
    cfg.session_storage = rustls::server::ServerSessionMemoryCache::new(SESSION_CACHE);
    cfg.ticketer = rustls::crypto::ring::Ticketer::new()?;
    Ok(pingora::listeners::tls::Acceptor::from_server_config(
        Arc::new(cfg),
    ))
}

/// Seconds until the leaf certificate of `key` expires (negative: expired).
pub fn seconds_to_expiry(key: &CertifiedKey) -> Option<i64> {
    let leaf = key.cert.first()?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
    let not_after = cert.validity().not_after.timestamp();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs() as i64;
    Some(not_after - now)
}
