//! `[cors.NAME]`: the CORS policies servers and routes refer to.

use std::collections::HashMap;

use http::HeaderName;

use super::parse::parse_origin;
use super::Compiler;
use crate::config::defaults;
use crate::config::file;
use crate::config::reader::Spanned;
use crate::config::snapshot::{CorsId, CorsPolicy, CorsValues};

/// The policies, and their indexes by name.
pub(super) fn compile_cors(
    cx: &mut Compiler<'_, '_>,
    defs: &[file::Cors],
) -> (Vec<CorsPolicy>, HashMap<String, CorsId>) {
    let mut cors = Vec::new();
    let mut cors_idx = HashMap::new();
    for c in defs {
        cors_idx.insert(c.name.v.clone(), CorsId(cors.len()));
        cors.push(compile_policy(cx, c));
    }
    (cors, cors_idx)
}

/// One policy.
/// `allow_origins`: the patterns, and whether `"*"` is among them.
fn compile_origins(
    cx: &mut Compiler<'_, '_>,
    c: &file::Cors,
) -> (Vec<crate::config::snapshot::OriginPattern>, bool) {
    let mut origins = Vec::new();
    let mut any = false;
    for o in &c.allow_origins {
        if o.v == "*" {
            any = true;
            continue;
        }
        match parse_origin(&o.v) {
            Ok(p) => origins.push(p),
            Err(e) => cx.err(&o.span, e),
        }
    }
    if c.allow_origins.is_empty() {
        if let Some(s) = &c.allow_origins_span {
            cx.err(
                &s.span,
                format!(
                    "cors.{}.allow_origins is empty: no origin would be allowed",
                    c.name.v
                ),
            );
        }
    }
    (origins, any)
}

fn compile_policy(cx: &mut Compiler<'_, '_>, c: &file::Cors) -> CorsPolicy {
    let (origins, any) = compile_origins(cx, c);
    let credentials = c.allow_credentials.as_ref().map(|b| b.v).unwrap_or(false);
    if any && credentials {
        let span = c
            .allow_credentials
            .as_ref()
            .map(|b| b.span.clone())
            .unwrap_or_else(|| c.name.span.clone());
        cx.err(
            &span,
            format!(
                "cors.{}: allow_origins \"*\" cannot be combined with allow_credentials = true (browsers refuse it; list the origins instead)",
                c.name.v
            ),
        );
    }
    let methods: Vec<String> = match &c.allow_methods {
        Some(m) => m.iter().map(|s| s.v.to_ascii_uppercase()).collect(),
        None => defaults::CORS_METHODS
            .iter()
            .map(|s| s.to_string())
            .collect(),
    };
    let lower = |l: &Option<Vec<Spanned<String>>>| -> Vec<String> {
        l.as_ref()
            .map(|v| v.iter().map(|s| s.v.to_ascii_lowercase()).collect())
            .unwrap_or_default()
    };
    let original = |l: &Option<Vec<Spanned<String>>>| -> Vec<String> {
        l.as_ref()
            .map(|v| v.iter().map(|s| s.v.clone()).collect())
            .unwrap_or_default()
    };
    for list in [&c.allow_headers, &c.expose_headers].into_iter().flatten() {
        for h in list {
            if HeaderName::from_bytes(h.v.as_bytes()).is_err() {
                cx.err(&h.span, format!("invalid header name \"{}\"", h.v));
            }
        }
    }
    let max_age = c.max_age.unwrap_or(defaults::CORS_MAX_AGE);
    let values = CorsValues::new(
        &methods,
        &original(&c.allow_headers),
        &original(&c.expose_headers),
        max_age,
    );
    CorsPolicy {
        values,
        name: c.name.v.clone(),
        any_origin: any,
        origins,
        allow_methods: methods,
        allow_headers: lower(&c.allow_headers),
        expose_headers: original(&c.expose_headers),
        allow_credentials: credentials,
        max_age,
    }
}
