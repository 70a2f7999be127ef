//! `[conn_limits.NAME]`: the concurrency limits servers and routes refer to.

use std::collections::HashMap;

use super::zones::zone_key;
use super::Compiler;
use crate::config::defaults;
use crate::config::file;
use crate::config::snapshot::{ConnLimit, ConnLimitId};

/// The limits, and their indexes by name.
pub(super) fn compile_conn_limits(
    cx: &mut Compiler<'_, '_>,
    defs: &[file::ConnLimit],
) -> (Vec<ConnLimit>, HashMap<String, ConnLimitId>) {
    let mut out = Vec::new();
    let mut idx = HashMap::new();
    for c in defs {
        let key = zone_key(cx, c.key.as_ref());
        let max = c.max.as_ref().map(|m| m.v);
        if let Some(m) = c.max.as_ref().filter(|m| m.v == 0) {
            cx.err(
                &m.span,
                format!("conn_limits.{}.max must be at least 1", c.name.v),
            );
        }
        let status = super::routes::error_status(
            cx,
            c.status.as_ref(),
            "conn_limit",
            defaults::CONN_LIMIT_STATUS,
        );
        if let (Some(key), Some(max)) = (key, max) {
            idx.insert(c.name.v.clone(), ConnLimitId(out.len()));
            out.push(ConnLimit {
                name: c.name.v.clone(),
                key,
                max,
                status,
            });
        }
    }
    (out, idx)
}
