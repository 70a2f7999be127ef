//! `[auth.NAME]`: each table's htpasswd users or auth service.

use std::collections::HashMap;
use std::sync::Arc;

use http::HeaderName;

use super::Compiler;
use crate::auth::{self, forward::ServiceUrl, Auth, Forward, Method};
use crate::config::defaults;
use crate::config::file;
use crate::config::reader::Spanned;
use crate::config::snapshot::AuthId;

/// The tables, and their indexes by name.
pub(super) fn compile_auths(
    cx: &mut Compiler<'_, '_>,
    defs: &[file::Auth],
) -> (Vec<Auth>, HashMap<String, AuthId>) {
    let mut out = Vec::new();
    let mut idx = HashMap::new();
    for a in defs {
        let method = match (&a.htpasswd, &a.forward) {
            (Some(file), None) => htpasswd(cx, a, file),
            (None, Some(url)) => forward(cx, a, url),
            _ => {
                cx.err(
                    &a.name.span,
                    format!(
                        "auth.{} needs exactly one of htpasswd (a file of users) or forward (the URL of an auth service)",
                        a.name.v
                    ),
                );
                None
            }
        };
        if let Some(method) = method {
            idx.insert(a.name.v.clone(), AuthId(out.len()));
            out.push(Auth {
                name: a.name.v.clone(),
                method,
                forward_credentials: a
                    .forward_credentials
                    .unwrap_or(defaults::AUTH_FORWARD_CREDENTIALS),
            });
        }
    }
    (out, idx)
}

fn htpasswd(cx: &mut Compiler<'_, '_>, a: &file::Auth, file: &Spanned<String>) -> Option<Method> {
    let name = &a.name.v;
    for (key, span) in [
        ("copy_headers", a.copy_headers.first().map(|h| &h.span)),
        ("timeout", a.timeout.as_ref().map(|t| &t.span)),
    ] {
        if let Some(span) = span {
            cx.err(
                span,
                format!("auth.{name}.{key} applies to forward auth only"),
            );
        }
    }
    let path = cx.path(&file.v);
    let text = match cx.world.file(&path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => {
            cx.err(&file.span, e);
            return None;
        }
    };
    let users = match auth::htpasswd::parse(&text) {
        Ok(users) => users,
        Err(e) => {
            cx.err(
                &file.span,
                format!("{}:{}: {}", path.display(), e.line, e.reason),
            );
            return None;
        }
    };
    if users.is_empty() {
        cx.warnings.push(format!(
            "auth.{name}: {} lists no users: every request to its routes gets 401",
            path.display()
        ));
    }
    let realm = a.realm.as_ref().map_or(name.as_str(), |r| r.v.as_str());
    let Some(challenge) = auth::challenge(realm) else {
        let span = a.realm.as_ref().map_or(&a.name.span, |r| &r.span);
        cx.err(
            span,
            format!("auth.{name}.realm: control characters are not allowed"),
        );
        return None;
    };
    Some(Method::Htpasswd {
        users: Arc::new(users),
        challenge,
        fingerprint: crate::short_hash::sha256_hex(text.as_bytes(), 16),
    })
}

fn forward(cx: &mut Compiler<'_, '_>, a: &file::Auth, url: &Spanned<String>) -> Option<Method> {
    let name = &a.name.v;
    if let Some(realm) = &a.realm {
        cx.err(
            &realm.span,
            format!("auth.{name}.realm applies to htpasswd auth only"),
        );
    }
    let service = match ServiceUrl::parse(&url.v) {
        Ok(s) => s,
        Err(e) => {
            cx.err(&url.span, format!("auth.{name}.forward \"{}\" {e}", url.v));
            return None;
        }
    };
    let mut copy_headers = Vec::new();
    for h in &a.copy_headers {
        match HeaderName::from_bytes(h.v.as_bytes()) {
            Ok(n) => copy_headers.push(n),
            Err(_) => cx.err(&h.span, format!("invalid header name \"{}\"", h.v)),
        }
    }
    let timeout = a.timeout.as_ref().map_or(defaults::AUTH_TIMEOUT, |t| t.v);
    if let Some(t) = a.timeout.as_ref().filter(|t| t.v.is_zero()) {
        cx.err(&t.span, format!("auth.{name}.timeout must be more than 0"));
    }
    let addr = cx.world.addr(&service.host_port());
    if addr.is_none() {
        cx.warnings.push(format!(
            "auth.{name}: \"{}\" does not resolve now; requests to its routes get 500 until it does",
            service.host_port()
        ));
    }
    let host = http::HeaderValue::from_str(&service.authority).ok()?;
    let tls_name = service.tls.then(|| {
        service
            .host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string()
    });
    let looked_up =
        crate::config::resolve::is_name(&service.host_port()).then(|| service.host_port());
    Some(Method::Forward(Forward {
        peer: Forward::peer_of(addr, tls_name),
        name: looked_up,
        host,
        path: service.path,
        copy_headers,
        timeout,
    }))
}
