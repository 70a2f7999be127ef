//! `[acme]`: checked without contacting the directory.

use super::Compiler;
use crate::config::defaults;
use crate::config::file;
use crate::config::snapshot::{AcmeChallenge, AcmeSettings};

pub(super) fn compile_acme(cx: &mut Compiler<'_, '_>, a: &file::Acme) -> Option<AcmeSettings> {
    let directory = match &a.directory {
        Some(d) if !d.v.starts_with("https://") || d.v.parse::<http::Uri>().is_err() => {
            cx.err(
                &d.span,
                format!(
                    "acme.directory \"{}\": expected an https:// URL (RFC 8555 requires HTTPS)",
                    d.v
                ),
            );
            None
        }
        Some(d) => Some(d.v.clone()),
        None => Some(defaults::ACME_DIRECTORY.to_string()),
    };
    let challenge = match a.challenge.as_ref().map(|c| (c.v.as_str(), c)) {
        None | Some(("http-01", _)) => AcmeChallenge::Http01,
        Some(("tls-alpn-01", _)) => AcmeChallenge::TlsAlpn01,
        Some((other, c)) => {
            cx.err(
                &c.span,
                format!("acme.challenge \"{other}\": expected \"http-01\" or \"tls-alpn-01\""),
            );
            AcmeChallenge::Http01
        }
    };
    let renew_before = match &a.renew_before {
        Some(r) if r.v.is_zero() => {
            cx.err(&r.span, "acme.renew_before must be more than 0");
            defaults::ACME_RENEW_BEFORE
        }
        Some(r) => r.v,
        None => defaults::ACME_RENEW_BEFORE,
    };
    if let Some(e) = &a.email {
        if !e.v.contains('@') || e.v.contains(char::is_whitespace) {
            cx.err(
                &e.span,
                format!("acme.email \"{}\": expected an e-mail address", e.v),
            );
        }
    }
    let ca = a.ca.as_ref().and_then(|c| {
        let p = cx.path(&c.v);
        match cx.world.ca(&p) {
            Ok(_) => Some(p),
            Err(e) => {
                cx.err(&c.span, e);
                None
            }
        }
    });
    let Some(storage) = &a.storage else {
        cx.err(
            &a.span.span,
            "missing required key `storage` in `acme`: the directory for the account key and certificates",
        );
        return None;
    };
    Some(AcmeSettings {
        email: a.email.as_ref().map(|e| e.v.clone()),
        directory: directory?,
        storage: cx.path(&storage.v),
        ca,
        renew_before,
        challenge,
    })
}
