//! Authentication (`[auth.*]`): who may use a route. Two kinds, as nginx
//! users know them:
//! - `htpasswd`: HTTP Basic credentials checked against a file of users
//!   (nginx `auth_basic_user_file`), verified off the worker threads;
//! - `forward`: an auth service decides about each request (nginx
//!   `auth_request`, the oauth2-proxy pattern).
//!
//! The admission phase that applies them is `proxy::admission::auth`.

mod apr1;
pub mod basic;
pub mod forward;
pub mod htpasswd;
mod verifier;

use std::sync::Arc;

use http::HeaderValue;
use pingora::connectors::http::v1::Connector;

pub use forward::Forward;
pub use htpasswd::Users;
pub use verifier::Verifier;

/// A compiled `[auth.NAME]`.
#[derive(Debug)]
pub struct Auth {
    pub name: String,
    pub method: Method,
    /// Whether the client's `Authorization` header goes on to the upstream.
    pub forward_credentials: bool,
}

#[derive(Debug)]
pub enum Method {
    Htpasswd {
        users: Arc<Users>,
        /// The whole `WWW-Authenticate` value: `Basic realm="..."`.
        challenge: HeaderValue,
        /// The file's content hash: credentials verified against it stay
        /// valid while it is unchanged (a DNS refresh or a reload of
        /// another part of the file keeps them).
        fingerprint: String,
    },
    Forward(Forward),
}

/// The `WWW-Authenticate` challenge for `realm` (a quoted-string, RFC 9110).
pub fn challenge(realm: &str) -> Option<HeaderValue> {
    let escaped = realm.replace('\\', "\\\\").replace('"', "\\\"");
    HeaderValue::from_str(&format!("Basic realm=\"{escaped}\"")).ok()
}

/// What an `[auth.*]` table needs at run time: the credentials verified
/// lately (htpasswd), or the pooled connections to its auth service.
pub enum LiveAuth {
    Htpasswd {
        verifier: Verifier,
        /// The file it verified against ([`Method::Htpasswd`]).
        fingerprint: String,
    },
    Forward(Connector),
}

impl LiveAuth {
    fn new(auth: &Auth) -> Self {
        match &auth.method {
            Method::Htpasswd { fingerprint, .. } => LiveAuth::Htpasswd {
                verifier: Verifier::default(),
                fingerprint: fingerprint.clone(),
            },
            Method::Forward(_) => LiveAuth::Forward(Connector::new(None)),
        }
    }

    /// Whether this state still serves `auth`: the same htpasswd file (a
    /// changed one must not keep admitting a removed password), or a
    /// forward table (its connector pools by peer).
    fn serves(&self, auth: &Auth) -> bool {
        match (self, &auth.method) {
            (
                LiveAuth::Htpasswd { fingerprint: a, .. },
                Method::Htpasswd { fingerprint: b, .. },
            ) => a == b,
            (LiveAuth::Forward(_), Method::Forward(_)) => true,
            _ => false,
        }
    }
}

impl std::fmt::Debug for LiveAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LiveAuth::Htpasswd { verifier, .. } => {
                f.debug_tuple("Htpasswd").field(verifier).finish()
            }
            LiveAuth::Forward(_) => f.write_str("Forward"),
        }
    }
}

/// The run-time states of the `[auth.*]` tables, by name: carried over
/// reloads and DNS refreshes while [`LiveAuth::serves`] holds, forgotten
/// with their table.
#[derive(Debug, Default)]
pub struct AuthStates {
    by_name: std::sync::Mutex<std::collections::HashMap<String, Arc<LiveAuth>>>,
}

impl AuthStates {
    pub fn get(&self, auth: &Auth) -> Arc<LiveAuth> {
        let mut map = self.by_name.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(&auth.name) {
            Some(s) if s.serves(auth) => s.clone(),
            _ => {
                let s = Arc::new(LiveAuth::new(auth));
                map.insert(auth.name.clone(), s.clone());
                s
            }
        }
    }

    pub fn retain(&self, names: &[&str]) {
        let mut map = self.by_name.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|name, _| names.contains(&name.as_str()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn htpasswd(name: &str, file: &str) -> Auth {
        Auth {
            name: name.into(),
            method: Method::Htpasswd {
                users: Arc::new(htpasswd::parse("").unwrap()),
                challenge: HeaderValue::from_static("Basic"),
                fingerprint: file.into(),
            },
            forward_credentials: false,
        }
    }

    #[test]
    fn verified_credentials_last_while_the_file_is_unchanged() {
        let states = AuthStates::default();
        let first = states.get(&htpasswd("admins", "v1"));
        // A recompile (DNS refresh, reload) with the same file: the same state.
        assert!(Arc::ptr_eq(&first, &states.get(&htpasswd("admins", "v1"))));
        // A changed file starts afresh.
        let changed = states.get(&htpasswd("admins", "v2"));
        assert!(!Arc::ptr_eq(&first, &changed));
        // A table the configuration no longer has is forgotten.
        states.retain(&[]);
        assert!(!Arc::ptr_eq(
            &changed,
            &states.get(&htpasswd("admins", "v2"))
        ));
    }

    #[test]
    fn the_realm_is_a_quoted_string() {
        let c = super::challenge(r#"ops "east" \ west"#).unwrap();
        assert_eq!(c.to_str().unwrap(), r#"Basic realm="ops \"east\" \\ west""#);
        assert!(super::challenge("line\nbreak").is_none());
    }
}
