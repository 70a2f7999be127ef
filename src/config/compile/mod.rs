//! Validation and compilation of a read [`File`] into a [`Snapshot`].
//!
//! Every cross-reference (upstream, zone, CORS policy), every uniqueness
//! rule and every file the config names is checked here, once, with the
//! position of the offending value. The output holds indices instead of
//! names, compiled regexes and parsed header values. One module per part
//! of the file, in the order they are compiled: what a later part refers
//! to is compiled first.

mod acme;
mod auth;
mod conn_limits;
mod cors;
mod files;
mod global;
mod listeners;
mod parse;
mod routes;
mod servers;
mod upstreams;
mod zones;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use http::HeaderValue;
use pingora::http::WireHeaderName;

use super::diag::Span;
use super::file::{self, File};
use super::reader::{Reader, Spanned};
use super::resolve::{absolute, Resolved};
use super::snapshot::*;

pub use parse::{parse_listen, parse_template, valid_host_pattern};

/// Inputs besides the file itself.
pub struct Source<'a> {
    pub path: &'a Path,
    pub text: &'a str,
}

impl Source<'_> {
    /// The directory relative paths in the file start from.
    pub fn dir(&self) -> PathBuf {
        self.path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."))
    }
}

/// Problems that do not stop the config from loading (printed by `check`,
/// logged by `run`).
pub type Warnings = Vec<String>;

struct Compiler<'r, 's> {
    r: &'r mut Reader<'s>,
    base: PathBuf,
    /// What the file names outside itself, looked up before compiling.
    world: &'r Resolved,
    warnings: Warnings,
    /// Whether the file has an `[acme]` table (servers may then use it).
    acme_configured: bool,
}

impl Compiler<'_, '_> {
    fn err(&mut self, span: &Span, msg: impl Into<String>) {
        self.r.diag.error(span, msg);
    }

    fn path(&self, p: &str) -> PathBuf {
        absolute(&self.base, p)
    }

    fn header(&mut self, name: &Spanned<String>, value: &Spanned<String>) -> Option<Header> {
        let n = match WireHeaderName::new(&name.v) {
            Ok(n) => n,
            Err(_) => {
                self.err(&name.span, format!("invalid header name \"{}\"", name.v));
                return None;
            }
        };
        match HeaderValue::from_str(&value.v) {
            Ok(v) => Some((n, v)),
            Err(_) => {
                self.err(
                    &value.span,
                    format!(
                        "invalid value for header \"{}\": control characters are not allowed",
                        name.v
                    ),
                );
                None
            }
        }
    }

    fn headers(&mut self, list: &[(Spanned<String>, Spanned<String>)]) -> Vec<Header> {
        list.iter().filter_map(|(n, v)| self.header(n, v)).collect()
    }
}

/// What servers and routes refer to by name: the compiled zones, CORS
/// policies and upstreams, and their indexes by name.
struct Definitions<'a> {
    zones: &'a HashMap<String, ZoneId>,
    zone_defs: &'a [Zone],
    cors: &'a HashMap<String, CorsId>,
    conn_limits: &'a HashMap<String, ConnLimitId>,
    auths: &'a HashMap<String, AuthId>,
    upstreams: &'a HashMap<String, UpstreamId>,
    upstream_defs: &'a [Upstream],
}

/// A reference to a table defined elsewhere: the table named, none for
/// `false`, the inherited one when absent. `what` and `section` name the
/// kind in the error for an undefined name.
fn reference<Id: Copy>(
    cx: &mut Compiler<'_, '_>,
    r: Option<&file::Reference>,
    inherited: Option<Id>,
    defined: &HashMap<String, Id>,
    what: &str,
    section: &str,
) -> Option<Id> {
    match r {
        None => inherited,
        Some(file::Reference::Off) => None,
        Some(file::Reference::Named(name)) => match defined.get(&name.v) {
            Some(id) => Some(*id),
            None => {
                cx.err(
                    &name.span,
                    format!(
                        "undefined {what} \"{}\" (define it as [{section}.{}])",
                        name.v, name.v
                    ),
                );
                None
            }
        },
    }
}

/// Validates and compiles. On any error, every problem is in `r.diag` and
/// the result is `None`.
pub fn compile(
    src: &Source<'_>,
    f: File,
    world: &Resolved,
    r: &mut Reader<'_>,
) -> Option<(Snapshot, Warnings)> {
    let mut cx = Compiler {
        r,
        base: src.dir(),
        world,
        warnings: Vec::new(),
        acme_configured: f.acme.is_some(),
    };
    let global = global::compile_global(&mut cx, &f.global);
    let log = global::compile_log(&mut cx, &f.log);
    let admin = global::compile_admin(&mut cx, f.admin.as_ref());
    let acme = f.acme.as_ref().and_then(|a| acme::compile_acme(&mut cx, a));
    let (zones, zone_idx) = zones::compile_zones(&mut cx, &f.rate_limits);
    let (conn_limits, conn_limit_idx) = conn_limits::compile_conn_limits(&mut cx, &f.conn_limits);
    let (auths, auth_idx) = auth::compile_auths(&mut cx, &f.auth);
    let (cors, cors_idx) = cors::compile_cors(&mut cx, &f.cors);
    let (upstreams, upstream_idx) = upstreams::compile_upstreams(&mut cx, &f.upstreams);
    let refs = Definitions {
        zones: &zone_idx,
        zone_defs: &zones,
        cors: &cors_idx,
        conn_limits: &conn_limit_idx,
        auths: &auth_idx,
        upstreams: &upstream_idx,
        upstream_defs: &upstreams,
    };
    let (servers, addresses) = servers::compile_servers(&mut cx, &f.servers, &refs);
    let listeners = listeners::compile_listeners(&mut cx, addresses, admin, &servers);
    if !cx.r.diag.is_empty() {
        return None;
    }
    Some((
        Snapshot {
            source: src.path.to_path_buf(),
            hash: hash(src.text),
            inputs: std::sync::Arc::new(Inputs {
                text: src.text.to_string(),
                world: world.clone(),
            }),
            global,
            log,
            admin,
            acme,
            zones,
            conn_limits,
            auths,
            cors,
            upstreams,
            servers,
            listeners,
        },
        cx.warnings,
    ))
}

/// The config's identity in `/config` and `rampart_config_info`: the first
/// 8 bytes of the file's SHA-256, in hex.
fn hash(text: &str) -> String {
    crate::short_hash::sha256_hex(text.as_bytes(), 8)
}
