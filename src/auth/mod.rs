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
    },
    Forward(Forward),
}

/// The `WWW-Authenticate` challenge for `realm` (a quoted-string, RFC 9110).
pub fn challenge(realm: &str) -> Option<HeaderValue> {
    let escaped = realm.replace('\\', "\\\\").replace('"', "\\\"");
    HeaderValue::from_str(&format!("Basic realm=\"{escaped}\"")).ok()
}

/// What an `[auth.*]` table needs while a configuration is live: the
/// credentials verified lately, and the pooled connections to its auth
/// service. Made afresh with each configuration (a changed htpasswd file
/// must not keep admitting a removed password).
pub struct LiveAuth {
    pub verifier: Verifier,
    /// For `forward` tables.
    pub connector: Option<Connector>,
}

impl LiveAuth {
    pub fn new(auth: &Auth) -> Self {
        LiveAuth {
            verifier: Verifier::default(),
            connector: matches!(auth.method, Method::Forward(_)).then(|| Connector::new(None)),
        }
    }
}

impl std::fmt::Debug for LiveAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveAuth")
            .field("verifier", &self.verifier)
            .field("connector", &self.connector.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_realm_is_a_quoted_string() {
        let c = super::challenge(r#"ops "east" \ west"#).unwrap();
        assert_eq!(c.to_str().unwrap(), r#"Basic realm="ops \"east\" \\ west""#);
        assert!(super::challenge("line\nbreak").is_none());
    }
}
