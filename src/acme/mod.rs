//! Automatic certificates (ACME, RFC 8555) for servers with `tls.acme =
//! true`: the account is created once and kept in `storage`, each server
//! gets one certificate for all its `hosts`, renewed `renew_before` its
//! expiry, in the background.
//!
//! - [`State`] (carried over reloads) holds the certificates in use, by
//!   server name, and the answers to challenges in progress: HTTP-01
//!   key authorizations (answered by the `acme_challenge` admission phase
//!   on plain-HTTP listeners, before anything else) and TLS-ALPN-01
//!   certificates (returned by the TLS certificate resolver for ALPN
//!   `acme-tls/1`).
//! - [`storage`]: the directory (0700), files written atomically (0600),
//!   and a lock file so that several processes sharing it order once.
//! - [`order`]: one order, step by step, on `instant-acme`.
//! - [`service`]: the background service deciding when to order, with
//!   backoff after a failure (the current certificate stays in use).

pub mod order;
pub mod service;
pub mod storage;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use rustls::sign::CertifiedKey;

/// The ALPN protocol of TLS-ALPN-01 (RFC 8737).
pub const ALPN_ACME_TLS: &[u8] = b"acme-tls/1";

/// The path prefix of HTTP-01 (RFC 8555 section 8.3).
pub const HTTP01_PREFIX: &str = "/.well-known/acme-challenge/";

/// Certificates obtained, and challenges being answered.
#[derive(Debug, Default)]
pub struct State {
    /// The certificate in use for each ACME server, by server name.
    issued: ArcSwap<HashMap<String, Arc<CertifiedKey>>>,
    /// HTTP-01: token → key authorization.
    http01: Mutex<HashMap<String, String>>,
    /// TLS-ALPN-01: name → its challenge certificate.
    pub alpn: Arc<AlpnChallenges>,
}

/// TLS-ALPN-01 certificates by DNS name, read by the TLS resolver.
#[derive(Debug, Default)]
pub struct AlpnChallenges(Mutex<HashMap<String, Arc<CertifiedKey>>>);

impl AlpnChallenges {
    pub fn get(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&name.to_ascii_lowercase()).cloned()
    }

    fn set(&self, name: &str, key: Option<Arc<CertifiedKey>>) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match key {
            Some(k) => map.insert(name.to_ascii_lowercase(), k),
            None => map.remove(&name.to_ascii_lowercase()),
        };
    }
}

impl State {
    /// The certificate in use for server `name`, if one was obtained.
    pub fn certificate(&self, server: &str) -> Option<Arc<CertifiedKey>> {
        self.issued.load().get(server).cloned()
    }

    /// Puts a certificate in use for server `name` (the caller refreshes
    /// the listeners' certificate stores).
    pub fn install(&self, server: &str, key: Arc<CertifiedKey>) {
        self.issued.rcu(|m| {
            let mut m = HashMap::clone(m);
            m.insert(server.to_string(), key.clone());
            m
        });
    }

    /// Forgets the certificates of servers no longer using ACME.
    pub fn retain(&self, servers: &[&str]) {
        self.issued.rcu(|m| {
            let mut m = HashMap::clone(m);
            m.retain(|k, _| servers.contains(&k.as_str()));
            m
        });
    }

    /// The key authorization an HTTP-01 request for `token` gets.
    pub fn http01(&self, token: &str) -> Option<String> {
        let map = self.http01.lock().unwrap_or_else(|p| p.into_inner());
        map.get(token).cloned()
    }

    fn set_http01(&self, token: &str, key_authorization: Option<String>) {
        let mut map = self.http01.lock().unwrap_or_else(|p| p.into_inner());
        match key_authorization {
            Some(k) => map.insert(token.to_string(), k),
            None => map.remove(token),
        };
    }
}
