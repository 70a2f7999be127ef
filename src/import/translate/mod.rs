//! nginx directives → rampart tables.
//!
//! nginx inherits most settings from `http` into `server` into `location`,
//! except that a level with any `add_header` (or `limit_req`, or
//! `proxy_set_header`) replaces the inherited list instead of adding to it.
//! [`Level`] models exactly that; each `location` becomes one route with the
//! settings in effect there. Directives are applied before the blocks of the
//! same level are entered, because nginx merges a level's settings whatever
//! their position relative to its child blocks.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::parse::{Directive, Pos};
use super::servers::{self, ServerOut};
use super::toml_out::{inline, inline_map, key, list, q, Table};
use super::units::{duration_ms, fmt_duration, fmt_size, size};
use super::Options;
use crate::config::compile::valid_host_pattern;
use crate::config::keys::{self as k, Key};
use crate::headers::SECURITY;

mod auth;
mod cors;
mod headers;
mod http;
mod listen;
mod location;
mod reasons;
mod route;
mod server;
mod try_files;
mod upstreams;

use auth::*;
use headers::*;
use http::*;
use listen::*;
use location::*;
use reasons::reason;
use route::RouteAction;
use try_files::{is_named, named_locations, try_files_targets};

/// nginx holds about 16,000 `$binary_remote_addr` states per megabyte of zone.
const KEYS_PER_MB: u64 = 16_000;

/// Where a CORS origin list must be written by hand.
pub const ORIGIN_PLACEHOLDER: &str = "https://app.example.com";

#[derive(Debug, Clone, PartialEq)]
struct Header {
    name: String,
    value: String,
    pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
struct LimitReq {
    zone: String,
    burst: u64,
    nodelay: bool,
    delay: Option<u64>,
}

/// The settings in effect at one level of the nginx tree.
#[derive(Debug, Clone, Default)]
struct Level {
    add_headers: Vec<Header>,
    add_headers_here: bool,
    /// The level that wrote `add_headers`: 0 http, 1 server, 2 location.
    add_headers_depth: u8,
    set_headers: Vec<(String, String)>,
    set_headers_here: bool,
    limit_req: Vec<LimitReq>,
    limit_req_here: bool,
    limit_req_status: Option<u64>,
    /// `limit_conn zone N` lines in effect (a level with any replaces the
    /// inherited ones), and `limit_conn_status`.
    limit_conn: Vec<(String, u64)>,
    limit_conn_here: bool,
    limit_conn_status: Option<u64>,
    gzip: Option<bool>,
    gzip_types: Option<Vec<String>>,
    gzip_min_length: Option<u64>,
    max_body: Option<u64>,
    client_header_timeout: Option<u64>,
    client_body_timeout: Option<u64>,
    keepalive_timeout: Option<u64>,
    cert: Option<String>,
    key: Option<String>,
    protocols: Option<Vec<String>>,
    connect_timeout: Option<u64>,
    read_timeout: Option<u64>,
    send_timeout: Option<u64>,
    /// `proxy_buffering`, `proxy_request_buffering` (`None`: nginx's `on`).
    buffering: Option<bool>,
    request_buffering: Option<bool>,
    access_log_off: Option<bool>,
    /// `root` or, with `alias`, the directory of an `alias` (nginx inherits
    /// them as one setting).
    root: Option<String>,
    alias: bool,
    index: Option<String>,
    expires: Option<u64>,
    /// Access rules rampart cannot express (an access list's order,
    /// `internal`): the status the route answers instead, and why.
    denied: Option<(u16, String)>,
    /// `allow` / `deny` rules in effect, in order: (allow?, address). A
    /// level with any replaces the inherited ones.
    access: Vec<(bool, String)>,
    access_here: bool,
    /// The value of `proxy_set_header Host`, if any.
    host_header: Option<String>,
    /// `auth_basic` realm (`None`: off), `auth_basic_user_file`.
    auth_basic: Option<String>,
    auth_basic_user_file: Option<String>,
    /// `auth_request` URI (`None`: off), and the answer headers
    /// `auth_request_set` copies.
    auth_request: Option<String>,
    auth_request_set: Vec<String>,
}

/// What a location's own directives chose.
#[derive(Default)]
struct Loc<'d> {
    proxy: Option<&'d Directive>,
    ret: Option<&'d Directive>,
    own_alias: bool,
    preflight: Option<Vec<Header>>,
    unsupported: Option<&'d Directive>,
    /// `try_files ... /file`: the static route's fallback (relative to its
    /// root).
    fallback: Option<String>,
    /// `try_files $uri ... @name`: the named location with the app, and
    /// the `try_files` line.
    app: Option<(String, &'d Directive)>,
}

/// What locations need of their server (and parent location).
struct LocCx {
    /// The settings in effect at server level.
    server: Level,
    /// The server's CORS policy.
    cors: Option<String>,
    /// The prefix of the enclosing location, for nested ones.
    parent_prefix: Option<String>,
    /// The server's proxying locations (where `auth_request` goes).
    proxy_locations: Vec<ProxyLocation>,
    /// The server's named locations (`location @app`), by name.
    named: BTreeMap<String, Directive>,
}

impl Level {
    /// The level a child block starts from.
    fn child(&self) -> Level {
        Level {
            add_headers_here: false,
            set_headers_here: false,
            limit_req_here: false,
            limit_conn_here: false,
            access_here: false,
            ..self.clone()
        }
    }

    /// This level, answering `status` to everyone for `why` (fail closed).
    fn refusing(&self, status: u16, why: &str) -> Level {
        Level {
            denied: Some((status, why.to_string())),
            ..self.clone()
        }
    }

    /// This level without its `add_header NAME` lines.
    fn without_header(&self, name: &str) -> Level {
        Level {
            add_headers: self
                .add_headers
                .iter()
                .filter(|h| !h.name.eq_ignore_ascii_case(name))
                .cloned()
                .collect(),
            ..self.clone()
        }
    }

    /// What the route answers everyone instead of proxying, when nginx
    /// checked something rampart cannot (`internal`, an
    /// access list in an order rampart cannot keep).
    fn refused(&self) -> Option<(u16, String)> {
        self.denied.clone().or_else(|| {
            access_lists(&self.access)
                .err()
                .map(|why| (403, format!("allow/deny ({why})")))
        })
    }
}

/// What the translation produced, for the caller to print.
pub struct Translation {
    pub tables: Vec<Table>,
    /// Locations that answer differently in rampart (`FILE:LINE: why`).
    pub changed: Vec<String>,
    pub skipped: Vec<(String, Pos)>,
    pub warnings: Vec<String>,
    pub counts: Counts,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub servers: usize,
    pub routes: usize,
    pub upstreams: usize,
    pub zones: usize,
    pub cors: usize,
}

struct Upstream {
    name: String,
    table: Table,
    tls: bool,
    /// Some server is written as a name (looked up again every
    /// `resolve_interval`).
    has_names: bool,
}

struct Cors {
    name: String,
    /// The policy's entries; two locations with equal entries share a policy.
    table: Table,
}

#[derive(Clone)]
struct ServerParts {
    head: Table,
    tls: Option<Table>,
    response_headers: Option<Table>,
    compression: Option<Table>,
    routes: Vec<Table>,
}

impl ServerParts {
    fn new() -> Self {
        ServerParts {
            head: Table::new("[[servers]]"),
            tls: None,
            response_headers: None,
            compression: None,
            routes: Vec::new(),
        }
    }
}

struct Listen {
    addr: String,
    ssl: bool,
    http2: bool,
    default: bool,
}

pub struct Translator<'a> {
    opts: &'a Options,
    source: String,
    /// Explanations at the top of the file.
    header: Vec<String>,
    /// `not imported` lines of the main and http levels.
    top_notes: Vec<String>,
    global: Table,
    log: Table,
    zones: Vec<Table>,
    zone_names: BTreeSet<String>,
    /// `limit_conn_zone`s: name → rampart key.
    conn_zones: BTreeMap<String, String>,
    /// `[conn_limits.*]` made for (zone, max, status), by name.
    conn_limits: BTreeMap<(String, u64, Option<u64>), String>,
    conn_tables: Vec<Table>,
    /// `[auth.*]` made for an htpasswd file or an auth service, by what
    /// they check.
    auths: BTreeMap<String, String>,
    auth_tables: Vec<Table>,
    upstreams: Vec<Upstream>,
    /// Upstreams made up for `proxy_pass http://host:port`, by URL.
    direct: BTreeMap<String, usize>,
    cors: Vec<Cors>,
    servers: Vec<ServerOut>,
    /// Upstreams with no server rampart can use (all `unix:` or `down`).
    dead_upstreams: BTreeSet<String>,
    /// Addresses some server marks `ssl`: TLS for every server on them.
    ssl_addrs: BTreeSet<String>,
    server_names: BTreeSet<String>,
    skipped: Vec<(String, Pos)>,
    warnings: Vec<String>,
    counts: Counts,
    limit_503_noted: bool,
    /// `resolver ... valid=T`: how often names are looked up again.
    resolver_valid: Option<u64>,
    /// Locations (and servers) that answer differently in rampart, as
    /// `FILE:LINE: what and why`: `import-nginx` exits 2 over them unless
    /// `--allow-partial`.
    changed: Vec<String>,
}

impl<'a> Translator<'a> {
    pub fn new(opts: &'a Options, source: &Path) -> Translator<'a> {
        let source = source.display().to_string();
        Translator {
            opts,
            header: Vec::new(),
            top_notes: Vec::new(),
            global: Table::new("[global]"),
            log: Table::new("[log]"),
            zones: Vec::new(),
            zone_names: BTreeSet::new(),
            conn_zones: BTreeMap::new(),
            conn_limits: BTreeMap::new(),
            conn_tables: Vec::new(),
            auths: BTreeMap::new(),
            auth_tables: Vec::new(),
            upstreams: Vec::new(),
            direct: BTreeMap::new(),
            cors: Vec::new(),
            servers: Vec::new(),
            ssl_addrs: BTreeSet::new(),
            dead_upstreams: BTreeSet::new(),
            server_names: BTreeSet::new(),
            skipped: Vec::new(),
            warnings: Vec::new(),
            counts: Counts::default(),
            limit_503_noted: false,
            resolver_valid: None,
            changed: Vec::new(),
            source,
        }
    }

    pub fn translate(mut self, tree: &[Directive]) -> Translation {
        // Upstreams and zones first: servers may name them before they appear.
        self.collect_definitions(tree);
        let mut level = Level::default();
        self.main_level(tree, &mut level);
        if self.servers.is_empty() {
            self.server_for_snippet(&level);
        }
        self.finish()
    }

    fn skip(&mut self, d: &Directive, notes: &mut Vec<String>, why: Option<&str>) {
        let why = why
            .or_else(|| reason(&d.name))
            .unwrap_or("no rampart equivalent");
        // A location left out answers differently (a named one is only
        // reached through error_page or try_files, which say so).
        let named = d.args.first().is_some_and(|a| a.starts_with('@'));
        if d.name == "location" && !named {
            self.changed(
                &d.pos,
                format!("location {}: not imported ({why})", d.args.join(" ")),
            );
        }
        notes.push(format!(
            "not imported: {} ({}) — {why}",
            short(&d.text()),
            self.at(&d.pos)
        ));
        self.skipped.push((d.name.clone(), d.pos.clone()));
    }

    /// `skip` for a directive of the main or http level: its note goes to
    /// the top of the file.
    fn skip_top(&mut self, d: &Directive, why: &str) {
        let mut notes = Vec::new();
        self.skip(d, &mut notes, Some(why));
        self.top_notes.append(&mut notes);
    }

    /// Records a location whose behaviour the translation does not keep.
    fn changed(&mut self, pos: &Pos, what: String) {
        self.changed
            .push(format!("{}:{}: {what}", pos.file, pos.line));
    }

    fn warn(&mut self, pos: &Pos, msg: String) {
        self.warnings.push(format!("{pos}: warning: {msg}"));
    }

    /// `file:line`, with the file only when it is not the imported one.
    fn at(&self, pos: &Pos) -> String {
        if *pos.file == *self.source {
            format!("line {}", pos.line)
        } else {
            let name = Path::new(&*pos.file)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| pos.file.to_string());
            format!("{name}:{}", pos.line)
        }
    }

    // ---- definitions -------------------------------------------------
    fn collect_definitions(&mut self, list: &[Directive]) {
        for d in list {
            match (d.name.as_str(), &d.block) {
                ("http", Some(children)) => self.collect_definitions(children),
                ("server", Some(children)) => {
                    for l in children.iter().filter(|c| c.name == "listen") {
                        if let Ok(l) = parse_listen(&l.args) {
                            if l.ssl {
                                self.ssl_addrs.insert(l.addr);
                            }
                        }
                    }
                }
                ("upstream", Some(children)) => self.upstream(d, children),
                ("limit_req_zone", None) => self.zone(d),
                ("limit_conn_zone", None) => self.conn_zone(d),
                ("resolver", None) => {
                    self.resolver_valid = d
                        .args
                        .iter()
                        .find_map(|a| a.strip_prefix("valid="))
                        .and_then(duration_ms);
                }
                _ => {}
            }
        }
    }

    fn finish(mut self) -> Translation {
        let mut tables = Vec::new();
        let mut top = Table::new(String::new());
        top.lead.push(format!(
            "rampart configuration imported from {} by `rampart import-nginx`.",
            self.source
        ));
        top.lead.push("Check it with `rampart check -c FILE`. Lines marked \"not imported\" had no rampart equivalent.".into());
        top.lead.push("rampart also sends Host, X-Real-IP, X-Forwarded-For/-Proto/-Host and X-Request-Id upstream,".into());
        top.lead.push(
            "passes WebSocket upgrades on every proxied route and reuses upstream connections: the"
                .into(),
        );
        top.lead.push(
            "proxy_set_header / proxy_http_version lines that did this in nginx are not needed."
                .into(),
        );
        for h in std::mem::take(&mut self.header) {
            top.lead.push(String::new());
            top.lead.push(h);
        }
        if !self.top_notes.is_empty() {
            top.lead.push(String::new());
            top.lead.append(&mut self.top_notes);
        }
        tables.push(top);
        if !self.global.entries.is_empty() {
            tables.push(self.global);
        }
        if self.log.entries.is_empty() {
            self.log
                .set_c(k::ACCESS_LOG, q("stdout"), "one JSON line per request");
        }
        tables.push(self.log);
        let mut admin = Table::new("[admin]");
        admin.set_c(
            k::LISTEN,
            q(&format!("127.0.0.1:{}", servers::admin_port(&self.servers))),
            "GET /metrics (Prometheus) and /healthz; keep it private",
        );
        tables.push(admin);
        tables.extend(self.zones);
        tables.extend(self.conn_tables);
        tables.extend(self.auth_tables);
        tables.extend(self.cors.into_iter().map(|c| c.table));
        for mut u in self.upstreams {
            if u.tls {
                u.table.set_c(k::TLS, "true".into(), "proxy_pass https://");
            }
            if let (true, Some(valid)) = (u.has_names, self.resolver_valid) {
                u.table.set_c(
                    k::RESOLVE_INTERVAL,
                    q(&fmt_duration(valid)),
                    "resolver valid=: names are looked up again this often",
                );
            }
            tables.push(u.table);
        }
        tables.extend(servers::arrange(self.servers));
        Translation {
            tables,
            changed: self.changed,
            skipped: self.skipped,
            warnings: self.warnings,
            counts: self.counts,
        }
    }
}

fn short(s: &str) -> String {
    if s.chars().count() > 70 {
        let cut: String = s.chars().take(67).collect();
        format!("{cut}...")
    } else {
        s.to_string()
    }
}

/// nginx's `allow`/`deny` rules (first match wins; anyone unmatched is
/// admitted) as rampart's lists (`deny` checked first, then a non-empty
/// `allow`). Expressible when the rules are denials, then admissions, then
/// at most a final `all`; anything else keeps nginx's order-dependent
/// meaning only by luck.
fn access_lists(rules: &[(bool, String)]) -> Result<(Vec<String>, Vec<String>), &'static str> {
    let (mut allow, mut deny) = (Vec::new(), Vec::new());
    let mut it = rules.iter().peekable();
    while let Some((false, a)) = it.next_if(|(allow, a)| !allow && a != "all") {
        deny.push(a.clone());
    }
    while let Some((true, a)) = it.next_if(|(allow, a)| *allow && a != "all") {
        allow.push(a.clone());
    }
    match it.next() {
        // Unmatched clients were admitted: an allow list restricts nothing.
        None => allow.clear(),
        Some((true, _)) => allow.clear(),
        Some((false, a)) if a == "all" && allow.is_empty() => {
            deny = vec!["0.0.0.0/0".into(), "::/0".into()];
        }
        Some((false, a)) if a == "all" => {}
        Some(_) => return Err("a deny after an allow: rampart checks deny first"),
    }
    // Rules after an `all` never match in nginx.
    if allow
        .iter()
        .chain(&deny)
        .any(|a| crate::access_list::parse_entry(a).is_err())
    {
        return Err("an address rampart does not take (unix:, a name)");
    }
    Ok((allow, deny))
}

#[cfg(test)]
mod tests;
