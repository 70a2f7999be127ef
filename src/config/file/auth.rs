//! `[auth.NAME]`: who may use the routes that name it — users of an
//! htpasswd file, or whoever an auth service admits.

use super::*;

#[derive(Debug)]
pub struct Auth {
    pub name: Spanned<String>,
    /// An htpasswd file (bcrypt, SHA-crypt or apr1 lines).
    pub htpasswd: Option<Spanned<String>>,
    /// The `realm` of the `WWW-Authenticate` challenge (htpasswd only).
    pub realm: Option<Spanned<String>>,
    /// The URL of an auth service asked about each request.
    pub forward: Option<Spanned<String>>,
    /// Headers of the auth service's 2xx answer set on the request.
    pub copy_headers: Vec<Spanned<String>>,
    /// How long the auth service may take to answer.
    pub timeout: Option<Spanned<Duration>>,
    /// `true`: the client's `Authorization` header reaches the upstream.
    pub forward_credentials: Option<bool>,
}

/// `[auth.NAME]`.
pub(super) fn read_auth(r: &mut Reader<'_>, o: &mut Section<'_>, name: Spanned<String>) -> Auth {
    Auth {
        name,
        htpasswd: o.get(k::HTPASSWD).and_then(|f| r.string(&f)),
        realm: o.get(k::REALM).and_then(|f| r.string(&f)),
        forward: o.get(k::FORWARD).and_then(|f| r.string(&f)),
        copy_headers: o
            .get(k::COPY_HEADERS)
            .and_then(|f| r.strings(&f))
            .unwrap_or_default(),
        timeout: o.get(k::TIMEOUT).and_then(|f| r.duration_at(&f)),
        forward_credentials: o.get(k::FORWARD_CREDENTIALS).and_then(|f| r.bool(&f)),
    }
}
