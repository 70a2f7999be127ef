//! `[rate_limits.NAME]`: the zones routes refer to.

use std::collections::HashMap;

use http::HeaderName;

use super::Compiler;
use crate::config::defaults;
use crate::config::file;
use crate::config::reader::Spanned;
use crate::config::snapshot::{OnStoreError, SharedStore, Zone, ZoneId, ZoneKey};

/// The zones, and their indexes by name.
pub(super) fn compile_zones(
    cx: &mut Compiler<'_, '_>,
    defs: &[file::Zone],
) -> (Vec<Zone>, HashMap<String, ZoneId>) {
    let mut zones = Vec::new();
    let mut zone_idx = HashMap::new();
    for z in defs {
        let key = zone_key(cx, z.key.as_ref());
        let max_keys = z.max_keys.unwrap_or(defaults::ZONE_MAX_KEYS);
        if max_keys == 0 {
            cx.err(
                &z.name.span,
                format!("rate_limits.{}.max_keys must be at least 1", z.name.v),
            );
        }
        let ipv6_prefix = match &z.ipv6_prefix {
            Some(p) if p.v == 0 => {
                cx.err(&p.span, "ipv6_prefix must be 1-128");
                defaults::ZONE_IPV6_PREFIX
            }
            Some(p) => p.v as u8,
            None => defaults::ZONE_IPV6_PREFIX,
        };
        let shared = shared_store(cx, z);
        if let (Some(rate), Some(key)) = (z.rate, key) {
            zone_idx.insert(z.name.v.clone(), ZoneId(zones.len()));
            zones.push(Zone {
                name: z.name.v.clone(),
                rate,
                key,
                max_keys: max_keys as usize,
                ipv6_prefix,
                shared,
            });
        }
    }
    (zones, zone_idx)
}

/// The longest `store_timeout`: the connection's own limit for any answer
/// (`ratelimit::shared`), beyond which a healthy store is judged down.
const MAX_STORE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// `store`, `on_store_error` and `store_timeout`: checked without
/// connecting (a URL that does not parse is an error; an unreachable
/// server is `on_store_error`'s business at run time).
fn shared_store(cx: &mut Compiler<'_, '_>, z: &file::Zone) -> Option<SharedStore> {
    let name = &z.name.v;
    let on_error = match z.on_store_error.as_ref().map(|s| (s.v.as_str(), s)) {
        None | Some(("allow", _)) => OnStoreError::Allow,
        Some(("deny", _)) => OnStoreError::Deny,
        Some(("local", _)) => OnStoreError::Local,
        Some((other, s)) => {
            cx.err(
                &s.span,
                format!("rate_limits.{name}.on_store_error \"{other}\": expected \"allow\", \"deny\" or \"local\""),
            );
            OnStoreError::Allow
        }
    };
    let timeout = match &z.store_timeout {
        Some(t) if t.v.is_zero() || t.v > MAX_STORE_TIMEOUT => {
            cx.err(
                &t.span,
                format!("rate_limits.{name}.store_timeout must be more than 0 and at most 1s (a rate-limit decision should not hold a request longer; on_store_error decides after it)"),
            );
            defaults::ZONE_STORE_TIMEOUT
        }
        Some(t) => t.v,
        None => defaults::ZONE_STORE_TIMEOUT,
    };
    let store = match &z.store {
        None => return None,
        Some(s) if s.v == defaults::ZONE_STORE => {
            if z.on_store_error.is_some() || z.store_timeout.is_some() {
                cx.warnings.push(format!(
                    "rate_limits.{name}: on_store_error and store_timeout apply to a Redis store only; this zone is local"
                ));
            }
            return None;
        }
        Some(s) => s,
    };
    match crate::ratelimit::shared::check_url(&store.v) {
        Ok(label) => Some(SharedStore {
            url: store.v.clone(),
            label,
            on_error,
            timeout,
        }),
        Err(why) => {
            cx.err(&store.span, format!("rate_limits.{name}.store: {why}"));
            None
        }
    }
}

/// A zone's or concurrency limit's `key`: `client_ip` (the default),
/// `host`, or `header:<Name>`.
pub(super) fn zone_key(
    cx: &mut Compiler<'_, '_>,
    key: Option<&Spanned<String>>,
) -> Option<ZoneKey> {
    match key {
        None => Some(ZoneKey::ClientIp),
        Some(k) => match k.v.as_str() {
            "client_ip" => Some(ZoneKey::ClientIp),
            "host" => Some(ZoneKey::Host),
            other => match other.strip_prefix("header:") {
                Some(h) => match HeaderName::from_bytes(h.trim().as_bytes()) {
                    Ok(n) => Some(ZoneKey::Header(n)),
                    Err(_) => {
                        cx.err(&k.span, format!("invalid header name in key \"{other}\""));
                        None
                    }
                },
                None => {
                    cx.err(
                            &k.span,
                            format!("key \"{other}\": expected \"client_ip\", \"host\" or \"header:<Name>\""),
                        );
                    None
                }
            },
        },
    }
}
