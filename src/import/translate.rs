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
use super::toml_out::{inline, key, list, q, Table};
use super::units::{duration_ms, fmt_duration, fmt_size, size};
use super::Options;
use crate::config::compile::valid_host_pattern;
use crate::headers::SECURITY;

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
    buffering: Option<bool>,
    access_log_off: Option<bool>,
    /// `root` or, with `alias`, the directory of an `alias` (nginx inherits
    /// them as one setting).
    root: Option<String>,
    alias: bool,
    index: Option<String>,
    expires: Option<u64>,
    /// Access rules rampart cannot express (`deny`, `auth_basic`,
    /// `internal`): the status the route answers instead, and why.
    denied: Option<(u16, String)>,
    /// The value of `proxy_set_header Host`, if any.
    host_header: Option<String>,
}

/// What a location's own directives chose.
#[derive(Default)]
struct Loc<'d> {
    proxy: Option<&'d Directive>,
    ret: Option<&'d Directive>,
    own_alias: bool,
    preflight: Option<Vec<Header>>,
    unsupported: Option<&'d Directive>,
}

/// What locations need of their server (and parent location).
struct LocCx {
    /// The settings in effect at server level.
    server: Level,
    /// The server's CORS policy.
    cors: Option<String>,
    /// The prefix of the enclosing location, for nested ones.
    parent_prefix: Option<String>,
}

impl Level {
    /// The level a child block starts from.
    fn child(&self) -> Level {
        Level {
            add_headers_here: false,
            set_headers_here: false,
            limit_req_here: false,
            ..self.clone()
        }
    }
}

/// What the translation produced, for the caller to print.
pub struct Translation {
    pub tables: Vec<Table>,
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
                _ => {}
            }
        }
    }

    fn zone(&mut self, d: &Directive) {
        let mut name = None;
        let mut mb = None;
        let mut rate = None;
        for a in d.args.iter().skip(1) {
            if let Some(z) = a.strip_prefix("zone=") {
                let (n, s) = z.split_once(':').unwrap_or((z, ""));
                name = Some(n.to_string());
                mb = size(s).map(|b| b.div_ceil(1 << 20));
            } else if let Some(r) = a.strip_prefix("rate=") {
                rate = Some(r.to_string());
            }
        }
        let key_var = d.args.first().map(String::as_str).unwrap_or("");
        let rampart_key = match key_var {
            "$binary_remote_addr" | "$remote_addr" => Some("client_ip".to_string()),
            "$host" | "$server_name" | "$http_host" => Some("host".to_string()),
            v => v
                .strip_prefix("$http_")
                .filter(|h| h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
                .map(|h| format!("header:{}", header_case(&h.replace('_', "-")))),
        };
        let valid_rate = rate.as_deref().is_some_and(|r| {
            r.strip_suffix("r/s")
                .or_else(|| r.strip_suffix("r/m"))
                .is_some_and(|n| n.parse::<u64>().is_ok_and(|n| n > 0))
        });
        if name.as_ref().is_some_and(|n| self.zone_names.contains(n)) {
            self.skip_top(
                d,
                "a zone of this name is already defined (nginx refuses this too)",
            );
            return;
        }
        let (Some(name), Some(rate_key), true) = (name, rampart_key, valid_rate) else {
            self.skip_top(d, "rampart keys zones by client_ip, host or header:<Name>, with an integer r/s or r/m rate");
            return;
        };
        let mut t = Table::new(format!("[rate_limits.{}]", key(&name)));
        t.lead.push(format!("limit_req_zone ({})", self.at(&d.pos)));
        t.set("rate", q(rate.as_deref().unwrap_or_default()));
        t.set_c("key", q(&rate_key), format!("nginx: {key_var}"));
        if let Some(mb) = mb {
            t.set_c(
                "max_keys",
                (mb.max(1) * KEYS_PER_MB).to_string(),
                format!("about what a {mb} MB nginx zone holds"),
            );
        }
        self.zone_names.insert(name);
        self.zones.push(t);
        self.counts.zones += 1;
    }

    fn upstream(&mut self, d: &Directive, children: &[Directive]) {
        let Some(name) = d.args.first().cloned() else {
            return;
        };
        if self.upstreams.iter().any(|u| u.name == name) {
            self.skip_top(
                d,
                "an upstream of this name is already defined (nginx refuses this too)",
            );
            return;
        }
        let mut t = Table::new(format!("[upstreams.{}]", key(&name)));
        t.lead
            .push(format!("upstream {name} ({})", self.at(&d.pos)));
        let mut notes = Vec::new();
        let mut servers = Vec::new();
        let mut fails: Vec<(u64, u64)> = Vec::new();
        let mut balance = None;
        let mut keepalive = None;
        for c in children {
            match c.name.as_str() {
                "server" => {
                    let Some(addr) = c.args.first() else { continue };
                    if addr.starts_with("unix:") {
                        self.skip(
                            c,
                            &mut notes,
                            Some("rampart connects to upstreams over TCP only"),
                        );
                        continue;
                    }
                    let mut pairs = vec![("addr", q(&with_port(addr, 80)))];
                    let (mut mf, mut ft) = (1, 10_000);
                    let mut down = false;
                    let mut backup = false;
                    for p in &c.args[1..] {
                        if let Some(w) = p.strip_prefix("weight=") {
                            match w.parse::<u64>() {
                                Ok(1) => {}
                                Ok(w @ 2..=1000) => pairs.push(("weight", w.to_string())),
                                _ => {
                                    notes.push(format!("not imported: server {addr} weight={w} — rampart takes weights 1 to 1000"));
                                    self.skipped.push(("server weight".into(), c.pos.clone()));
                                }
                            }
                        } else if let Some(v) = p.strip_prefix("max_fails=") {
                            mf = v.parse::<u64>().unwrap_or(1).min(1000);
                        } else if let Some(v) = p.strip_prefix("fail_timeout=") {
                            ft = duration_ms(v).unwrap_or(10_000);
                        } else if p == "backup" {
                            backup = true;
                        } else if p == "down" {
                            down = true;
                        } else {
                            notes.push(format!(
                                "not imported: server {addr} {p} ({}) — no rampart equivalent",
                                self.at(&c.pos)
                            ));
                            self.skipped.push((format!("server {p}"), c.pos.clone()));
                        }
                    }
                    if down {
                        notes.push(format!(
                            "not imported: server {addr} down ({}) — a server marked down is left out; add it back when it is in service",
                            self.at(&c.pos)
                        ));
                        self.skipped.push(("server down".into(), c.pos.clone()));
                        continue;
                    }
                    fails.push((mf, ft));
                    servers.push((pairs, backup));
                }
                "least_conn" => balance = Some("least_conn"),
                "keepalive" => {
                    keepalive = c
                        .args
                        .first()
                        .and_then(|k| k.parse::<u64>().ok())
                        .map(|k| k.min(65536))
                }
                "ip_hash" | "hash" | "random" | "sticky" => self.skip(
                    c,
                    &mut notes,
                    Some("no session affinity: rampart balances with least_conn"),
                ),
                "keepalive_timeout" | "keepalive_requests" | "keepalive_time" => self.skip(
                    c,
                    &mut notes,
                    Some("idle upstream connections are reused until the upstream closes them"),
                ),
                _ => self.skip(c, &mut notes, None),
            }
        }
        if servers.is_empty() {
            self.warn(
                &d.pos,
                format!("upstream {name}: no server rampart can use; the locations that proxy to it are not imported"),
            );
            notes.insert(
                0,
                format!(
                    "not imported: upstream {name} ({}) — no server rampart can use",
                    self.at(&d.pos)
                ),
            );
            self.top_notes.append(&mut notes);
            self.dead_upstreams.insert(name);
            return;
        }
        // rampart needs a server that is not a backup.
        let all_backup = servers.iter().all(|(_, b)| *b);
        if all_backup {
            notes.push("every server was a backup: rampart needs a primary, so they are all primaries here".into());
        }
        let servers: Vec<String> = servers
            .into_iter()
            .map(|(mut pairs, backup)| {
                if backup && !all_backup {
                    pairs.push(("backup", "true".into()));
                }
                inline(&pairs)
            })
            .collect();
        let one_line = servers.iter().map(|s| s.len() + 2).sum::<usize>() < 60;
        let value = if one_line {
            format!("[{}]", servers.join(", "))
        } else {
            let mut v = String::from("[\n");
            for s in &servers {
                v.push_str("  ");
                v.push_str(s);
                v.push_str(",\n");
            }
            v.push(']');
            v
        };
        t.set("servers", value);
        match balance {
            Some(b) => t.set_c("balance", q(b), "least_conn"),
            None if balance.is_none() && servers.len() > 1 => {
                t.set_c("balance", q("round_robin"), "nginx's default")
            }
            None => {}
        }
        let (mf, ft) = fails.first().copied().unwrap_or((1, 10_000));
        if fails.iter().any(|f| *f != (mf, ft)) {
            notes.push(
                "the servers had different max_fails/fail_timeout; rampart has one pair per upstream: the first server's"
                    .into(),
            );
        }
        if mf != 1 {
            t.set("max_fails", mf.to_string());
        }
        if ft != 10_000 {
            t.set("fail_timeout", q(&fmt_duration(ft)));
        }
        match keepalive {
            Some(k) => t.set_c("keepalive", k.to_string(), "idle connections kept for reuse"),
            None => t.set_c(
                "keepalive",
                "32".into(),
                "nginx had no keepalive here (a new connection per request); rampart reuses connections",
            ),
        }
        t.notes = notes;
        self.upstreams.push(Upstream {
            name,
            table: t,
            tls: false,
        });
        self.counts.upstreams += 1;
    }

    /// The upstream a `proxy_pass` URL names (made up when it is an
    /// address), and the host name nginx would have sent as `Host` for a
    /// direct one. `same_uri` is the location's prefix: a URI equal to it
    /// changes nothing.
    fn proxy_target(
        &mut self,
        url: &str,
        same_uri: Option<&str>,
    ) -> Result<(String, Option<String>), &'static str> {
        const REWRITE: &str = "a proxy_pass URI replaces the matched location prefix; rampart forwards the path unchanged";
        if url.contains('$') {
            return Err("a proxy_pass with variables is decided per request; rampart needs a fixed upstream");
        }
        let (tls, rest) = if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else {
            return Err("only http:// and https:// upstreams can be proxied to");
        };
        if rest.starts_with("unix:") {
            return Err("rampart connects to upstreams over TCP only");
        }
        let (hostport, uri) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if !uri.is_empty() && Some(uri) != same_uri {
            return Err(REWRITE);
        }
        if self.dead_upstreams.contains(hostport) {
            return Err("its upstream has no server rampart can reach over TCP");
        }
        if let Some(i) = self.upstreams.iter().position(|u| u.name == hostport) {
            if tls {
                self.upstreams[i].tls = true;
            }
            return Ok((hostport.to_string(), None));
        }
        let addr = with_port(hostport, if tls { 443 } else { 80 });
        let host = hostport
            .rsplit_once(':')
            .filter(|(h, p)| !h.ends_with(']') || p.is_empty())
            .map_or(hostport, |(h, _)| h);
        let is_name = host.parse::<std::net::IpAddr>().is_err() && !host.starts_with('[');
        let default_port =
            !hostport.contains(':') || hostport.ends_with(if tls { ":443" } else { ":80" });
        let host_header = is_name.then(|| {
            if default_port {
                host.to_string()
            } else {
                hostport.to_string()
            }
        });
        let scheme_key = format!("{}{addr}", if tls { "https://" } else { "http://" });
        if let Some(&i) = self.direct.get(&scheme_key) {
            return Ok((self.upstreams[i].name.clone(), host_header));
        }
        let mut name: String = addr
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        name = name.trim_matches('_').to_string();
        while self.upstreams.iter().any(|u| u.name == name) {
            name.push('_');
        }
        let mut t = Table::new(format!("[upstreams.{}]", key(&name)));
        t.lead
            .push(format!("proxy_pass {url}: an upstream of one server"));
        t.set("servers", format!("[{}]", inline(&[("addr", q(&addr))])));
        self.direct.insert(scheme_key, self.upstreams.len());
        self.upstreams.push(Upstream {
            name: name.clone(),
            table: t,
            tls,
        });
        self.counts.upstreams += 1;
        Ok((name, host_header))
    }

    // ---- main and http ---------------------------------------------------

    fn main_level(&mut self, directives: &[Directive], level: &mut Level) {
        let mut notes = Vec::new();
        let mut real_ip_from = Vec::new();
        let mut real_ip_header = None;
        for d in directives.iter().filter(|d| d.block.is_none()) {
            match d.name.as_str() {
                "limit_req_zone" => {}
                "worker_processes" => match d.args.first().map(String::as_str) {
                    Some("auto") | None => {
                        self.global
                            .set_c("threads", "0".into(), "placeholder replaced below")
                    }
                    Some(n) => match n.parse::<u64>() {
                        Ok(n) => self.global.set_c(
                            "threads",
                            n.to_string(),
                            format!("worker_processes {n}"),
                        ),
                        Err(_) => self.skip(d, &mut notes, None),
                    },
                },
                "server_tokens" => self.server_tokens(d),
                "set_real_ip_from" => real_ip_from.extend(d.args.iter().cloned()),
                "real_ip_header" => real_ip_header = d.args.first().cloned(),
                "real_ip_recursive" => {}
                "access_log" if d.args.first().is_some_and(|a| a != "off") => {
                    let path = d.args.first().cloned().unwrap_or_default();
                    self.log.set_c(
                        "access_log",
                        q("stdout"),
                        format!("nginx: {path} (set a path here to keep a file; rampart writes one JSON line per request)"),
                    );
                }
                "access_log" => self.log.set_c("access_log", q("off"), "access_log off"),
                "error_log" => {
                    let level_word = d.args.get(1).cloned();
                    self.skip(
                        d,
                        &mut notes,
                        Some(match level_word.as_deref() {
                            Some("warn" | "error" | "crit" | "alert" | "emerg") =>
                                "diagnostics go to stderr; [log] level = \"warn\" would also hide the startup lines",
                            _ => "diagnostics go to stderr ([log] level and format)",
                        }),
                    );
                }
                _ => {
                    if !self.apply_common(d, level, &mut notes, 0) {
                        self.skip(d, &mut notes, None);
                    }
                }
            }
        }
        // `threads = 0` stood for "auto": rampart's default is one per core.
        if let Some(i) = self
            .global
            .entries
            .iter()
            .position(|e| e.key == "threads" && e.value == "0")
        {
            self.global.entries.remove(i);
            notes.push(
                "worker_processes auto: rampart's default is one worker thread per core".into(),
            );
        }
        if !real_ip_from.is_empty() {
            let header_ok = real_ip_header
                .as_deref()
                .is_none_or(|h| h.eq_ignore_ascii_case("X-Forwarded-For"));
            if header_ok {
                self.global.set_c(
                    "trusted_proxies",
                    list(&real_ip_from),
                    "set_real_ip_from; the client IP is the right-most untrusted X-Forwarded-For entry",
                );
            } else {
                notes.push(format!(
                    "not imported: real_ip_header {} — rampart takes the client IP from X-Forwarded-For only",
                    real_ip_header.unwrap_or_default()
                ));
                if let Some(d) = directives.iter().find(|d| d.name == "real_ip_header") {
                    self.skipped.push(("real_ip_header".into(), d.pos.clone()));
                }
            }
        }
        self.top_notes.append(&mut notes);
        for d in directives.iter().filter(|d| d.block.is_some()) {
            let children = d.block.as_deref().unwrap_or_default();
            match d.name.as_str() {
                "http" => {
                    let mut http = level.child();
                    self.main_level(children, &mut http);
                    *level = http;
                }
                "upstream" => {}
                "server" => self.server(d, children, level),
                "events" => {
                    let inner: Vec<String> = children.iter().map(|c| c.text()).collect();
                    self.skip_top(
                        d,
                        &format!(
                            "{}: rampart has no per-worker connection cap; raise LimitNOFILE instead",
                            inner.join("; ")
                        ),
                    );
                }
                _ => self.skip_top(d, reason(&d.name).unwrap_or("no rampart equivalent")),
            }
        }
    }

    fn server_tokens(&mut self, d: &Directive) {
        if d.args.first().is_some_and(|a| a == "off")
            && !self.global.entries.iter().any(|e| e.key == "server_header")
        {
            self.global.set_c(
                "server_header",
                "false".into(),
                "server_tokens off: no Server header at all",
            );
        }
    }

    /// Directives valid at the http, server and location levels. Returns
    /// false for ones it does not know.
    fn apply_common(
        &mut self,
        d: &Directive,
        lv: &mut Level,
        notes: &mut Vec<String>,
        depth: u8,
    ) -> bool {
        let a0 = d.args.first().map(String::as_str).unwrap_or("");
        let dur = |s: &str| duration_ms(s);
        match d.name.as_str() {
            "add_header" => {
                if !lv.add_headers_here {
                    lv.add_headers.clear();
                    lv.add_headers_here = true;
                    lv.add_headers_depth = depth;
                }
                if let (Some(name), Some(value)) = (d.args.first(), d.args.get(1)) {
                    lv.add_headers.push(Header {
                        name: name.clone(),
                        value: value.clone(),
                        pos: d.pos.clone(),
                    });
                }
            }
            "proxy_set_header" => {
                let (Some(name), Some(value)) = (d.args.first(), d.args.get(1)) else {
                    return false;
                };
                // Any proxy_set_header at a level replaces the inherited list.
                if !lv.set_headers_here {
                    lv.set_headers.clear();
                    lv.host_header = None;
                    lv.set_headers_here = true;
                }
                if name.eq_ignore_ascii_case("host") {
                    lv.host_header = Some(value.clone());
                }
                if !is_standard_proxy_header(name, value) {
                    if value.contains('$') {
                        self.skip(
                            d,
                            notes,
                            Some("header values with variables are not supported"),
                        );
                    } else {
                        lv.set_headers.push((name.clone(), value.clone()));
                    }
                }
            }
            "proxy_http_version" | "gzip_vary" | "real_ip_recursive" => {}
            "proxy_cache_bypass" | "proxy_no_cache" if a0 == "$http_upgrade" => {}
            "proxy_redirect" if a0 == "off" || a0 == "default" => {}
            "limit_req" => {
                if !lv.limit_req_here {
                    lv.limit_req.clear();
                    lv.limit_req_here = true;
                }
                let mut l = LimitReq {
                    zone: String::new(),
                    burst: 0,
                    nodelay: false,
                    delay: None,
                };
                for a in &d.args {
                    if let Some(z) = a.strip_prefix("zone=") {
                        l.zone = z.to_string();
                    } else if let Some(b) = a.strip_prefix("burst=") {
                        l.burst = b.parse().unwrap_or(0);
                    } else if a == "nodelay" {
                        l.nodelay = true;
                    } else if let Some(v) = a.strip_prefix("delay=") {
                        l.delay = v.parse().ok();
                    }
                }
                if self.zone_names.contains(&l.zone) {
                    lv.limit_req.push(l);
                } else {
                    self.skip(d, notes, Some("its zone was not imported"));
                }
            }
            "limit_req_status" => lv.limit_req_status = a0.parse().ok(),
            "gzip" => lv.gzip = Some(a0 == "on"),
            "gzip_types" => {
                if d.args.iter().any(|a| a == "*") {
                    notes.push("gzip_types * (every type): not imported; rampart compresses the listed types only".into());
                }
                lv.gzip_types = Some(d.args.clone());
            }
            "gzip_min_length" => lv.gzip_min_length = size(a0),
            "client_max_body_size" => lv.max_body = size(a0),
            "client_header_timeout" => lv.client_header_timeout = dur(a0),
            "client_body_timeout" => lv.client_body_timeout = dur(a0),
            "keepalive_timeout" => {
                lv.keepalive_timeout = dur(a0);
                if let Some(second) = d.args.get(1) {
                    notes.push(format!(
                        "not imported: keepalive_timeout's second value ({second}, for a Keep-Alive response header)"
                    ));
                    self.skipped
                        .push(("keepalive_timeout".into(), d.pos.clone()));
                }
            }
            "ssl_certificate" => lv.cert = Some(a0.to_string()),
            "ssl_certificate_key" => lv.key = Some(a0.to_string()),
            "ssl_protocols" => lv.protocols = Some(d.args.clone()),
            "proxy_connect_timeout" => lv.connect_timeout = dur(a0),
            "proxy_read_timeout" => lv.read_timeout = dur(a0),
            "proxy_send_timeout" => lv.send_timeout = dur(a0),
            "proxy_buffering" => lv.buffering = Some(a0 != "off"),
            "access_log" => {
                lv.access_log_off = Some(a0 == "off");
                if a0 != "off" {
                    notes.push(format!(
                        "access_log {a0} ({}): rampart has one access log for the process ([log] access_log), one JSON line per request",
                        self.at(&d.pos)
                    ));
                }
            }
            "root" => {
                lv.root = Some(a0.to_string());
                lv.alias = false;
            }
            "deny" | "allow" if d.args.len() == 1 => {
                let everyone = a0 == "all";
                match (d.name.as_str(), everyone) {
                    ("allow", true) => {}
                    ("deny", true) => lv.denied = Some((403, "deny all".into())),
                    _ => {
                        lv.denied =
                            Some((403, "an access list by client address (allow/deny)".into()))
                    }
                }
                if !(d.name == "allow" && everyone) {
                    self.skipped.push((d.name.clone(), d.pos.clone()));
                }
            }
            "auth_basic" | "auth_request" => {
                if a0 == "off" {
                    lv.denied = None;
                } else {
                    lv.denied = Some((403, format!("{} (authentication)", d.name)));
                    self.skipped.push((d.name.clone(), d.pos.clone()));
                }
            }
            "auth_basic_user_file" | "satisfy" => {}
            "include" => {
                let missing = !a0.ends_with("mime.types");
                let why = if missing {
                    "the file is not on this machine (or the pattern matched nothing): copy it next to the imported file and import again"
                } else {
                    "rampart has a built-in MIME type table"
                };
                if missing {
                    self.warn(
                        &d.pos,
                        format!("include {a0}: not found; its directives are not imported"),
                    );
                }
                self.skip(d, notes, Some(why));
            }
            "index" => lv.index = Some(a0.to_string()),
            "expires" => match a0 {
                "max" => lv.expires = Some(3650 * 86_400_000),
                "off" | "epoch" => lv.expires = None,
                v => match dur(v) {
                    Some(ms) => lv.expires = Some(ms),
                    None => self.skip(d, notes, Some("only a fixed time is supported")),
                },
            },
            "server_tokens" => self.server_tokens(d),
            _ => return false,
        }
        true
    }

    // ---- servers -----------------------------------------------------------

    fn server(&mut self, d: &Directive, children: &[Directive], parent: &Level) {
        let mut lv = parent.child();
        let mut notes = Vec::new();
        let mut listens = Vec::new();
        let mut had_listen = false;
        let mut names: Vec<String> = Vec::new();
        let mut server_return: Option<&Directive> = None;
        let mut http2 = false;
        let mut ssl_on = false;
        for c in children.iter().filter(|c| c.block.is_none()) {
            match c.name.as_str() {
                "listen" => {
                    had_listen = true;
                    match parse_listen(&c.args) {
                        Ok(l) => {
                            http2 |= l.http2;
                            listens.push(l);
                        }
                        Err(why) => self.skip(c, &mut notes, Some(why)),
                    }
                }
                "server_name" => {
                    for n in &c.args {
                        let n = n.to_ascii_lowercase();
                        if n == "_" || n.is_empty() {
                            continue;
                        }
                        let base = n.strip_prefix('.');
                        let candidate = base.unwrap_or(&n);
                        if !valid_host_pattern(candidate) {
                            notes.push(format!(
                                "not imported: server_name {n} ({}) — regex, trailing-wildcard and other patterns are not supported",
                                self.at(&c.pos)
                            ));
                            self.skipped.push(("server_name".into(), c.pos.clone()));
                        } else if let Some(base) = base {
                            names.push(base.to_string());
                            names.push(format!("*.{base}"));
                            notes.push(format!(
                                "server_name {n}: \"*.{base}\" matches one label only, nginx's \".{base}\" any depth"
                            ));
                        } else {
                            names.push(n.clone());
                        }
                    }
                }
                "http2" => http2 = c.args.first().is_some_and(|a| a == "on"),
                "ssl" => ssl_on = c.args.first().is_some_and(|a| a == "on"),
                "return" => server_return = Some(c),
                _ => {
                    if !self.apply_common(c, &mut lv, &mut notes, 1) {
                        self.skip(c, &mut notes, None);
                    }
                }
            }
        }
        if listens.is_empty() {
            if had_listen {
                const WHY: &str = "none of its listen addresses can be served by rampart";
                self.skip_top(d, WHY);
                self.warn(&d.pos, format!("server not imported: {WHY}"));
                return;
            }
            listens.push(Listen {
                addr: "0.0.0.0:80".into(),
                ssl: false,
                http2: false,
                default: false,
            });
            notes.push("no listen directive: nginx's default *:80".into());
        }
        // In nginx `ssl` belongs to the address: one server saying it makes
        // the address TLS for every server on it.
        for l in &mut listens {
            if ssl_on || self.ssl_addrs.contains(&l.addr) {
                l.ssl = true;
            }
        }
        let mut seen = BTreeSet::new();
        names.retain(|n| seen.insert(n.clone()));

        let mut parts = ServerParts {
            head: Table::new("[[servers]]"),
            tls: None,
            response_headers: None,
            compression: None,
            routes: Vec::new(),
        };
        let what = match names.first() {
            Some(n) => format!("server {n}"),
            None => "server".into(),
        };
        parts
            .head
            .lead
            .push(format!("---- {what} ({}) ----", self.at(&d.pos)));

        // certbot's `if ($host = example.com) { return 301 https://$host$request_uri; }`
        // (followed by `return 404;`) is an HTTPS redirect for those names.
        let certbot: Vec<&Directive> = children
            .iter()
            .filter(|c| c.name == "if" && is_certbot_redirect(c))
            .collect();
        let certbot_404 = !certbot.is_empty()
            && server_return.is_some_and(|r| r.args.first().is_some_and(|a| a == "404"));

        // A server-level `return` answers before any location is looked at.
        let mut https_redirect = false;
        if let Some(r) = server_return.filter(|_| !certbot_404) {
            if is_https_redirect(&r.args) {
                https_redirect = true;
            } else {
                match self.return_action(r) {
                    Ok((key_name, value, note)) => {
                        notes.extend(note);
                        let mut t = Table::new("[[servers.routes]]");
                        t.lead
                            .push(format!("return {} ({})", r.args.join(" "), self.at(&r.pos)));
                        t.set("prefix", q("/"));
                        t.set(key_name, value);
                        parts.routes.push(t);
                        self.counts.routes += 1;
                    }
                    Err(why) => self.skip(r, &mut notes, Some(why)),
                }
            }
        }
        if !certbot.is_empty() && (server_return.is_none() || certbot_404) {
            https_redirect = true;
            notes.push(format!(
                "certbot's `if ($host = ...) {{ return 301 https://$host$request_uri; }}` ({}): https_redirect for this server's names",
                self.at(&certbot[0].pos)
            ));
        }

        let server_cors = self.server_settings(&mut parts, &lv, &listens, &mut notes);
        if https_redirect {
            parts.head.set_c(
                "https_redirect",
                "true".into(),
                "return 301 https://...$request_uri: 301 to https://<host><uri>",
            );
            if server_return.is_some_and(|r| r.args.iter().any(|a| a.contains("$server_name"))) {
                notes.push(
                    "$server_name in the redirect: nginx sent every client to the first server_name; https_redirect keeps the Host the client asked for"
                        .into(),
                );
            }
        }
        if let Some(name) = &server_cors {
            parts
                .head
                .set_c("cors", q(name), "Access-Control-* add_header lines");
        }
        if server_return.is_none() && !https_redirect {
            let cx = LocCx {
                server: lv.clone(),
                cors: server_cors.clone(),
                parent_prefix: None,
            };
            for c in children.iter().filter(|c| c.block.is_some()) {
                match c.name.as_str() {
                    "location" => self.location(c, &lv, &mut parts.routes, &mut notes, &cx),
                    "if" if certbot.iter().any(|x| std::ptr::eq(*x, c)) => {}
                    _ => self.skip(c, &mut notes, None),
                }
            }
            // nginx serves the server's root for paths no location takes.
            let has_catch_all = parts.routes.iter().any(|t| {
                t.entries
                    .iter()
                    .any(|e| e.key == "prefix" && e.value == q("/"))
            });
            if let (Some(root), false) = (lv.root.clone(), has_catch_all) {
                let mut t = Table::new("[[servers.routes]]");
                t.lead
                    .push("root of the server (paths no location takes)".into());
                t.set("prefix", q("/"));
                t.set("static", self.static_value(&root, &lv, None));
                parts.routes.push(t);
                self.counts.routes += 1;
            }
        } else if children.iter().any(|c| c.name == "location") {
            notes.push("the server-level return answers every request: its locations were never reached and are not imported".into());
        }
        if !http2 && listens.iter().any(|l| l.ssl) {
            notes.push("nginx did not offer HTTP/2 here; rampart offers it on TLS servers by default (http2 = false to match)".into());
        }
        parts.head.notes = notes;
        let protocols = lv.protocols.as_ref().map(|p| kept_protocols(p));
        self.emit_server(parts, listens, names, https_redirect, http2, protocols);
    }

    /// Server-level keys; returns the name of the server's CORS policy.
    fn server_settings(
        &mut self,
        parts: &mut ServerParts,
        lv: &Level,
        listens: &[Listen],
        notes: &mut Vec<String>,
    ) -> Option<String> {
        let h = &mut parts.head;
        if let Some(b) = lv.max_body {
            h.set_c("max_body_size", q(&fmt_size(b)), "client_max_body_size");
        }
        if let Some(t) = lv.client_header_timeout {
            h.set("client_header_timeout", q(&fmt_duration(t)));
        }
        if let Some(t) = lv.client_body_timeout {
            h.set("client_body_timeout", q(&fmt_duration(t)));
        }
        if let Some(t) = lv.keepalive_timeout {
            h.set("keepalive_timeout", q(&fmt_duration(t)));
        }
        if lv.access_log_off == Some(true) {
            h.set_c("access_log", "false".into(), "access_log off");
        }
        let tls = listens.iter().any(|l| l.ssl);
        let (security, extra, cors) = self.classify_headers(&lv.add_headers, tls, notes);
        match security {
            Some(c) => h.set_c("security_headers", "true".into(), c),
            None => h.set_c(
                "security_headers",
                "true".into(),
                "nginx sent none of these; rampart's safe defaults (false to match nginx)",
            ),
        }
        if !extra.is_empty() {
            let mut t = Table::new("[servers.response_headers]");
            for (n, v) in extra {
                t.set_c(&q(&n), q(&v), "add_header ... always");
            }
            parts.response_headers = Some(t);
        }
        if lv.gzip == Some(true) {
            parts.compression = Some(compression_table(lv));
        }
        if tls {
            parts.tls = Some(self.tls_table(lv, notes));
        } else if lv.cert.is_some() || lv.protocols.is_some() {
            notes.push(
                "TLS settings inherited from http are not used: this server has no ssl listener"
                    .into(),
            );
        }
        let cors = cors.map(|c| self.cors_policy(&c, None, notes));
        if !lv.set_headers.is_empty() {
            notes.push(
                "proxy_set_header lines at server level are carried onto each proxied route".into(),
            );
        }
        cors
    }

    fn tls_table(&mut self, lv: &Level, notes: &mut Vec<String>) -> Table {
        let mut t = Table::new("[servers.tls]");
        let (cert, key_path) = match (&lv.cert, &lv.key) {
            (Some(c), Some(k)) => (c.clone(), k.clone()),
            (c, k) => {
                notes.push(
                    "the nginx server has no certificate here: the paths below are placeholders"
                        .into(),
                );
                (
                    c.clone()
                        .unwrap_or_else(|| "/etc/rampart/tls/fullchain.pem".into()),
                    k.clone()
                        .unwrap_or_else(|| "/etc/rampart/tls/privkey.pem".into()),
                )
            }
        };
        let relocate = |p: &str| match &self.opts.cert_dir {
            Some(dir) => {
                let base = Path::new(p)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                (dir.join(base).display().to_string(), format!("nginx: {p}"))
            }
            None => (p.to_string(), String::new()),
        };
        let (c, cc) = relocate(&cert);
        let (k, kc) = relocate(&key_path);
        t.set_c("cert", q(&c), cc);
        t.set_c("key", q(&k), kc);
        if let Some(p) = &lv.protocols {
            let dropped: Vec<&str> = p
                .iter()
                .filter(|p| *p != "TLSv1.2" && *p != "TLSv1.3")
                .map(String::as_str)
                .collect();
            if !dropped.is_empty() {
                notes.push(format!(
                    "ssl_protocols {}: not offered by rampart (insecure)",
                    dropped.join(" ")
                ));
            }
        }
        t
    }

    /// Sorts `add_header` lines into what `security_headers = true` covers,
    /// extra response headers, and CORS headers.
    #[allow(clippy::type_complexity)]
    fn classify_headers(
        &mut self,
        headers: &[Header],
        tls: bool,
        notes: &mut Vec<String>,
    ) -> (Option<String>, Vec<(String, String)>, Option<Vec<Header>>) {
        let mut covered = Vec::new();
        let mut extra = Vec::new();
        let mut cors = Vec::new();
        for h in headers {
            let lower = h.name.to_ascii_lowercase();
            if lower.starts_with("access-control-") {
                cors.push(h.clone());
                continue;
            }
            if h.value.contains('$') {
                notes.push(format!(
                    "not imported: add_header {} {} ({}) — header values with variables are not supported",
                    h.name,
                    h.value,
                    self.at(&h.pos)
                ));
                self.skipped.push(("add_header".into(), h.pos.clone()));
                continue;
            }
            match SECURITY.iter().find(|(n, _, _)| n.name().as_str() == lower) {
                Some((_, v, _)) if v.as_bytes().eq_ignore_ascii_case(h.value.as_bytes()) => {
                    covered.push(h.name.clone())
                }
                Some(_) if lower == "x-xss-protection" => {
                    covered.push(h.name.clone());
                    notes.push(format!(
                        "X-XSS-Protection \"{}\" becomes \"0\": the XSS auditor is gone from browsers and its blocking mode could be abused (OWASP recommends 0); set it under response_headers to keep the old value",
                        h.value
                    ));
                }
                Some(_) if lower == "strict-transport-security" && !tls => {
                    notes.push("Strict-Transport-Security on a plain-HTTP server is ignored by browsers; not imported".into());
                }
                _ => match extra
                    .iter_mut()
                    .find(|(n, _): &&mut (String, String)| n.eq_ignore_ascii_case(&h.name))
                {
                    // nginx sends one header line per add_header; one line
                    // with both values means the same for list headers.
                    Some((_, v)) => {
                        v.push_str(", ");
                        v.push_str(&h.value);
                    }
                    None => extra.push((h.name.clone(), h.value.clone())),
                },
            }
        }
        let missing: Vec<String> = SECURITY
            .iter()
            .filter(|(_, _, tls_only)| tls || !tls_only)
            .filter(|(n, _, _)| {
                !headers
                    .iter()
                    .any(|h| h.name.eq_ignore_ascii_case(n.as_str()))
            })
            .map(|(n, _, _)| n.as_str().to_string())
            .collect();
        let covered = (!covered.is_empty()).then(|| {
            let mut c = format!("covers add_header {}", covered.join(", "));
            if !missing.is_empty() {
                c.push_str(&format!(
                    "; also sends {} (nginx did not)",
                    missing.join(", ")
                ));
            }
            c
        });
        (covered, extra, (!cors.is_empty()).then_some(cors))
    }

    /// Turns `Access-Control-*` headers into a `[cors.*]` policy and returns
    /// its name; equal policies are shared.
    fn cors_policy(
        &mut self,
        headers: &[Header],
        preflight: Option<&[Header]>,
        notes: &mut Vec<String>,
    ) -> String {
        let all: Vec<&Header> = headers
            .iter()
            .chain(preflight.unwrap_or_default())
            .collect();
        let get = |n: &str| {
            all.iter()
                .find(|h| h.name.eq_ignore_ascii_case(n))
                .map(|h| (*h).clone())
        };
        let split = |v: &str| -> Vec<String> {
            v.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        };
        let credentials = get("Access-Control-Allow-Credentials")
            .is_some_and(|h| h.value.eq_ignore_ascii_case("true"));
        let mut t = Table::new(String::new());
        match get("Access-Control-Allow-Origin") {
            Some(h) if h.value == "*" && !credentials => {
                t.set("allow_origins", list(&["*".into()]))
            }
            Some(h) if !h.value.contains('$') && h.value != "*" => {
                t.set("allow_origins", list(&split(&h.value)))
            }
            Some(h) => {
                let what = if h.value == "*" {
                    "\"*\" with credentials (browsers refuse it; rampart's check rejects it)"
                        .to_string()
                } else {
                    format!("{} (any site, reflected back)", h.value)
                };
                let msg = format!(
                    "Access-Control-Allow-Origin {what}{}: replaced by the placeholder origin \"{ORIGIN_PLACEHOLDER}\"; list the real front-end origins in allow_origins",
                    if credentials { " with Allow-Credentials true lets every website make credentialed requests" } else { "" }
                );
                self.warn(&h.pos, msg.clone());
                t.set_c(
                    "allow_origins",
                    list(&[ORIGIN_PLACEHOLDER.into()]),
                    "PLACEHOLDER: the real front-end origin(s)",
                );
                notes.push(format!("INSECURE in nginx: {msg}"));
            }
            None => {
                t.set_c(
                    "allow_origins",
                    list(&[ORIGIN_PLACEHOLDER.into()]),
                    "PLACEHOLDER: nginx sent no Access-Control-Allow-Origin",
                );
            }
        }
        if let Some(h) = get("Access-Control-Allow-Methods") {
            t.set("allow_methods", list(&split(&h.value)));
        }
        if let Some(h) = get("Access-Control-Allow-Headers") {
            t.set("allow_headers", list(&split(&h.value)));
        }
        if let Some(h) = get("Access-Control-Expose-Headers") {
            t.set("expose_headers", list(&split(&h.value)));
        }
        if credentials {
            t.set("allow_credentials", "true".into());
        }
        if let Some(h) = get("Access-Control-Max-Age") {
            if let Some(ms) = h
                .value
                .parse::<u64>()
                .ok()
                .and_then(|s| s.checked_mul(1000))
            {
                let secs = ms / 1000;
                t.set_c(
                    "max_age",
                    q(&fmt_duration(ms)),
                    format!("Access-Control-Max-Age {secs}"),
                );
            }
        }
        if preflight.is_none() {
            notes.push("CORS preflights are answered by rampart (204, or 403 for an origin not allowed); nginx passed OPTIONS to the upstream".into());
        }
        if let Some(c) = self.cors.iter().find(|c| c.table.entries == t.entries) {
            return c.name.clone();
        }
        let name = if self.cors.is_empty() {
            "app".to_string()
        } else {
            format!("app{}", self.cors.len() + 1)
        };
        t.header = format!("[cors.{name}]");
        t.lead.push(format!(
            "CORS policy from add_header Access-Control-* ({})",
            all.first().map(|h| self.at(&h.pos)).unwrap_or_default()
        ));
        self.cors.push(Cors {
            name: name.clone(),
            table: t,
        });
        self.counts.cors += 1;
        name
    }

    // ---- locations ---------------------------------------------------------

    /// One `location` (and the ones nested in it): a route each.
    fn location(
        &mut self,
        d: &Directive,
        parent: &Level,
        routes: &mut Vec<Table>,
        server_notes: &mut Vec<String>,
        cx: &LocCx,
    ) {
        let children = d.block.as_deref().unwrap_or_default();
        let mut notes = Vec::new();
        let mut lv = parent.child();
        let mut loc = Loc::default();
        for c in children {
            match (c.name.as_str(), &c.block) {
                ("proxy_pass", None) => loc.proxy = Some(c),
                ("return", None) => loc.ret = Some(c),
                ("alias", None) => {
                    lv.root = c.args.first().cloned();
                    lv.alias = true;
                    loc.own_alias = true;
                }
                ("internal", None) => {
                    lv.denied = Some((404, "internal (reached only by nginx's own redirects)".into()));
                    self.skipped.push((c.name.clone(), c.pos.clone()));
                }
                (
                    "fastcgi_pass" | "uwsgi_pass" | "scgi_pass" | "grpc_pass" | "memcached_pass",
                    None,
                ) => loc.unsupported = Some(c),
                ("if", Some(body)) if is_options_check(&c.args) => match preflight_headers(body) {
                    Some(h) => loc.preflight = Some(h),
                    None => self.skip(c, &mut notes, Some("only the CORS preflight idiom (add_header + return 204) is recognised inside if")),
                },
                ("location", Some(_)) => {}
                ("try_files", None) => self.skip(c, &mut notes, Some("rampart serves the file or 404; for a single-page app add an exact route for the fallback")),
                (_, None) => {
                    if !self.apply_common(c, &mut lv, &mut notes, 2) {
                        self.skip(c, &mut notes, None);
                    }
                }
                (_, Some(_)) => self.skip(c, &mut notes, None),
            }
        }
        let matcher = location_matcher(&d.args).map(|(kind, pattern, note)| {
            if let Some(n) = note {
                notes.push(n.into());
            }
            match (&cx.parent_prefix, kind) {
                (Some(p), "regex") => {
                    let (flags, body) = match pattern.strip_prefix("(?i)") {
                        Some(rest) => ("(?i)", rest.to_string()),
                        None => ("", pattern.clone()),
                    };
                    if body.starts_with('^') {
                        notes.push(format!("nested in location {p}: nginx tried this regex only under {p}"));
                        (kind, pattern)
                    } else {
                        notes.push(format!("nested in location {p}: the regex is anchored to {p}, the only paths nginx tried it on"));
                        (kind, format!("{flags}^{}.*(?:{body})", regex::escape(p)))
                    }
                }
                _ => (kind, pattern),
            }
        });
        let this_prefix = match &matcher {
            Ok(("prefix", p)) => Some(p.clone()),
            _ => cx.parent_prefix.clone(),
        };
        match matcher {
            Ok(m) => {
                if let Some(t) = self.route(d, m, &lv, parent, loc, notes, server_notes, cx) {
                    routes.push(t);
                    self.counts.routes += 1;
                }
            }
            Err(why) => self.skip(d, server_notes, Some(why)),
        }
        let nested = LocCx {
            server: cx.server.clone(),
            cors: cx.cors.clone(),
            parent_prefix: this_prefix,
        };
        for c in children
            .iter()
            .filter(|c| c.name == "location" && c.block.is_some())
        {
            self.location(c, &lv, routes, server_notes, &nested);
        }
    }

    /// The route of one location, or `None` (noted) when it cannot be one.
    #[allow(clippy::too_many_arguments)]
    fn route(
        &mut self,
        d: &Directive,
        (kind, pattern): (&'static str, String),
        lv: &Level,
        parent: &Level,
        loc: Loc<'_>,
        mut notes: Vec<String>,
        server_notes: &mut Vec<String>,
        cx: &LocCx,
    ) -> Option<Table> {
        let what = format!("location {}", d.args.join(" "));
        if kind == "regex" {
            if let Err(e) = regex::Regex::new(&pattern) {
                let msg =
                    format!("{what}: the regex is not supported by rampart's regex engine: {e}");
                self.warn(&d.pos, msg.lines().next().unwrap_or_default().to_string());
                self.skip(
                    d,
                    server_notes,
                    Some(
                        "regex with features rampart's engine lacks (look-around, back-references)",
                    ),
                );
                return None;
            }
        }
        if let Some(u) = loc.unsupported {
            let why = "rampart proxies HTTP only: no FastCGI, uwsgi, SCGI, gRPC or memcached";
            self.warn(&u.pos, format!("{}: {why}; {what} not imported", u.name));
            self.skip(d, server_notes, Some(why));
            return None;
        }
        let mut t = Table::new("[[servers.routes]]");
        t.lead.push(format!("{what} ({})", self.at(&d.pos)));
        t.set(kind, q(&pattern));

        // The action. Access rules rampart cannot express fail closed.
        let mut is_static = false;
        let mut direct_host = None;
        let mut upstream_name = None;
        if let Some((status, why)) = &lv.denied {
            t.set_c(
                "respond",
                inline(&[("status", status.to_string())]),
                format!("nginx: {why}"),
            );
            self.warn(
                &d.pos,
                format!("{what}: {why} has no rampart equivalent; the route answers {status} to everyone (put the check in the application, or remove this route)"),
            );
        } else if let Some(r) = loc.ret {
            match self.return_action(r) {
                Ok((k, v, note)) => {
                    t.set(k, v);
                    notes.extend(note);
                }
                Err(why) => {
                    self.skip(r, server_notes, Some(why));
                    return None;
                }
            }
            if loc.proxy.is_some() {
                notes.push(
                    "return answers before proxy_pass: the proxy_pass of this location is not used"
                        .into(),
                );
            }
        } else if let Some(p) = loc.proxy {
            let url = p.args.first().cloned().unwrap_or_default();
            let same_uri = (kind == "prefix").then_some(pattern.as_str());
            match self.proxy_target(&url, same_uri) {
                Ok((name, host)) => {
                    t.set("upstream", q(&name));
                    upstream_name = Some(name);
                    direct_host = host;
                }
                Err(why) => {
                    self.warn(
                        &p.pos,
                        format!("proxy_pass {url}: {why}; {what} not imported"),
                    );
                    self.skip(d, server_notes, Some(why));
                    return None;
                }
            };
        } else if let Some(root) = lv.root.clone() {
            let root = if lv.alias {
                if !loc.own_alias {
                    self.skip(
                        d,
                        server_notes,
                        Some("a nested location under an alias: not supported"),
                    );
                    return None;
                }
                match kind {
                    "prefix" => root,
                    // `location = /robots.txt { alias /srv/robots.txt; }`
                    "exact" => match alias_dir_for_exact(&root, &pattern) {
                        Some(dir) => dir,
                        None => {
                            self.skip(
                                d,
                                server_notes,
                                Some("alias to a file of another name: not supported"),
                            );
                            return None;
                        }
                    },
                    _ => {
                        self.skip(
                            d,
                            server_notes,
                            Some("alias in a regex location uses captures; not supported"),
                        );
                        return None;
                    }
                }
            } else {
                join_root(&root, kind, &pattern)
            };
            let immutable =
                lv.expires.is_some() && lv.add_headers.iter().any(is_immutable_cache_control);
            t.set("static", self.static_value(&root, lv, Some(immutable)));
            is_static = true;
        } else {
            server_notes.push(format!(
                "not imported: {what} ({}) — no proxy_pass, return, root or alias",
                self.at(&d.pos)
            ));
            self.skipped.push(("location".into(), d.pos.clone()));
            return None;
        }
        let proxied = upstream_name.is_some();

        // Route-level settings in effect here.
        if !lv.limit_req.is_empty() {
            let status = lv.limit_req_status;
            let tables: Vec<String> = lv
                .limit_req
                .iter()
                .map(|l| {
                    let mut p = vec![("zone", q(&l.zone))];
                    if l.burst > 0 {
                        p.push(("burst", l.burst.to_string()));
                    }
                    if l.nodelay {
                        p.push(("nodelay", "true".into()));
                    }
                    if let Some(dl) = l.delay {
                        p.push(("delay", dl.to_string()));
                    }
                    if let Some(s) = status.filter(|s| *s != 429) {
                        p.push(("status", s.to_string()));
                    }
                    inline(&p)
                })
                .collect();
            let value = if tables.len() == 1 {
                tables[0].clone()
            } else {
                format!("[{}]", tables.join(", "))
            };
            t.set_c("rate_limit", value, "limit_req");
            if status.is_none() && !self.limit_503_noted {
                self.limit_503_noted = true;
                self.header.push("limit_req without limit_req_status: nginx refused with 503 (its default); rampart refuses with 429 and Retry-After. Add status = 503 to a rate_limit to keep 503.".into());
            }
        }
        if proxied {
            if let Some(v) = lv.connect_timeout {
                t.set_c(
                    "connect_timeout",
                    q(&fmt_duration(v)),
                    "proxy_connect_timeout",
                );
            }
            if let Some(v) = lv.read_timeout {
                let c = if v >= 3_600_000 {
                    "proxy_read_timeout; also the idle timeout of WebSockets"
                } else {
                    "proxy_read_timeout"
                };
                t.set_c("read_timeout", q(&fmt_duration(v)), c);
            }
            if let Some(v) = lv.send_timeout {
                t.set_c("write_timeout", q(&fmt_duration(v)), "proxy_send_timeout");
            }
            if lv.buffering == Some(false) {
                t.set_c(
                    "buffering",
                    "false".into(),
                    "proxy_buffering off: streamed as it arrives",
                );
            }
            let mut set = lv.set_headers.clone();
            // nginx sends `Host: $proxy_host` unless told otherwise.
            let host_default = matches!(lv.host_header.as_deref(), None | Some("$proxy_host"));
            match (&direct_host, host_default) {
                (Some(h), true) => set.insert(0, ("Host".into(), h.clone())),
                (None, true) => notes.push(format!(
                    "nginx sent `Host: {}` (no proxy_set_header Host); rampart sends the client's Host",
                    upstream_name.as_deref().unwrap_or_default()
                )),
                _ => {}
            }
            if !set.is_empty() {
                let pairs: Vec<(String, String)> = set.iter().map(|(n, v)| (q(n), q(v))).collect();
                let refs: Vec<(&str, String)> =
                    pairs.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
                t.set_c("request_headers", inline(&refs), "proxy_set_header");
            }
        }
        if lv.access_log_off == Some(true) && cx.server.access_log_off != Some(true) {
            t.set_c("access_log", "false".into(), "access_log off");
        }

        // Response headers: a location with its own add_header lines (or a
        // parent location's) replaced the server's in nginx.
        let mut route_headers: Vec<(String, String)> = Vec::new();
        let location_headers = lv.add_headers_depth == 2;
        if location_headers || loc.preflight.is_some() {
            let own: Vec<Header> = lv.add_headers.clone();
            let (_, extra, cors) = self.classify_headers(&own, true, &mut notes);
            let server_has: Vec<(String, String)> = cx
                .server
                .add_headers
                .iter()
                .map(|h| (h.name.to_ascii_lowercase(), h.value.clone()))
                .collect();
            for (n, v) in extra {
                if server_has.contains(&(n.to_ascii_lowercase(), v.clone())) {
                    continue;
                }
                // `Cache-Control: public, immutable` next to `expires` is
                // what `immutable = true` sends.
                if is_static
                    && lv.expires.is_some()
                    && n.eq_ignore_ascii_case("cache-control")
                    && v.contains("immutable")
                {
                    continue;
                }
                route_headers.push((q(&n), q(&v)));
            }
            if location_headers && !cx.server.add_headers.is_empty() {
                let lost: Vec<&str> = cx
                    .server
                    .add_headers
                    .iter()
                    .filter(|p| !own.iter().any(|o| o.name.eq_ignore_ascii_case(&p.name)))
                    .map(|p| p.name.as_str())
                    .collect();
                if !lost.is_empty() {
                    notes.push(format!(
                        "nginx sent only this location's add_header lines here (its own add_header replaced the inherited {}); rampart keeps the server's headers on this route too",
                        lost.join(", ")
                    ));
                }
            }
            let server_cors = cx.cors.as_deref();
            match (cors, loc.preflight.as_deref()) {
                (Some(c), pf) => {
                    let name = self.cors_policy(&c, pf, &mut notes);
                    if server_cors != Some(name.as_str()) {
                        t.set("cors", q(&name));
                    }
                }
                (None, Some(pf))
                    if pf
                        .iter()
                        .any(|h| h.name.to_ascii_lowercase().starts_with("access-control-")) =>
                {
                    let name = self.cors_policy(pf, Some(pf), &mut notes);
                    t.set("cors", q(&name));
                }
                (None, _) if server_cors.is_some() && location_headers => {
                    t.set_c("cors", "false".into(), "this location's own add_header lines dropped the server's CORS headers in nginx");
                }
                _ => {}
            }
            if let Some(pf) = &loc.preflight {
                let in_if = pf
                    .iter()
                    .any(|h| h.name.eq_ignore_ascii_case("access-control-allow-origin"));
                let outside = own
                    .iter()
                    .any(|h| h.name.eq_ignore_ascii_case("access-control-allow-origin"));
                if location_headers && !in_if && outside {
                    notes.push("nginx's `if ($request_method = OPTIONS)` block had its own add_header lines, so its 204 carried no Access-Control-Allow-Origin and browsers failed the preflight; rampart answers preflights with the full policy".into());
                }
            }
        }
        if let (Some(ms), false) = (lv.expires, is_static) {
            let cc = q("Cache-Control");
            if !route_headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(&cc))
            {
                route_headers.push((cc, q(&format!("max-age={}", ms / 1000))));
            }
        }
        if !route_headers.is_empty() {
            let refs: Vec<(&str, String)> = route_headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.clone()))
                .collect();
            t.set_c("response_headers", inline(&refs), "add_header / expires");
        }
        if lv.max_body != cx.server.max_body {
            let limit = lv.max_body.map(fmt_size).unwrap_or_else(|| "1M".into());
            self.warn(
                &d.pos,
                format!("{what}: client_max_body_size {limit} here is not imported: rampart sets the limit per server (the server's applies)"),
            );
            self.skipped
                .push(("client_max_body_size".into(), d.pos.clone()));
            notes.push(format!(
                "not imported: client_max_body_size {limit} — rampart sets it per server (the server's value applies)"
            ));
        }
        if lv.gzip != parent.gzip || lv.gzip_types != parent.gzip_types {
            notes.push(
                "gzip settings differ in this location: rampart sets compression per server".into(),
            );
        }
        t.notes = notes;
        Some(t)
    }

    fn static_value(&mut self, root: &str, lv: &Level, immutable: Option<bool>) -> String {
        let root_value = match &self.opts.static_root {
            Some(dir) => dir.display().to_string(),
            None => root.trim_end_matches('/').to_string(),
        };
        let mut p = vec![(
            "root",
            q(if root_value.is_empty() {
                "/"
            } else {
                &root_value
            }),
        )];
        if let Some(ms) = lv.expires {
            p.push(("expires", q(&fmt_duration(ms))));
        }
        if immutable == Some(true) {
            p.push(("immutable", "true".into()));
        }
        if let Some(i) = &lv.index {
            if i != "index.html" {
                p.push(("index", q(i)));
            }
        }
        inline(&p)
    }

    /// `return CODE [TEXT|URL]` as a `respond` or `redirect` value.
    /// `return CODE [TEXT|URL]` as a `respond` or `redirect` value, with a
    /// note when the translation differs.
    fn return_action(
        &mut self,
        r: &Directive,
    ) -> Result<(&'static str, String, Option<String>), &'static str> {
        let (code, rest) = match r.args.as_slice() {
            [url]
                if url.starts_with("http://")
                    || url.starts_with("https://")
                    || url.starts_with('$') =>
            {
                ("302", Some(url.as_str()))
            }
            [code] => (code.as_str(), None),
            [code, rest] => (code.as_str(), Some(rest.as_str())),
            _ => return Err("return takes a code and an optional text or URL"),
        };
        let status: u16 = code.parse().map_err(|_| "return needs a numeric status")?;
        if matches!(status, 301 | 302 | 303 | 307 | 308) {
            let to = rest.ok_or("a redirect needs a URL")?;
            let to = translate_vars(to)
                .ok_or("the redirect uses nginx variables rampart cannot fill in")?;
            return Ok((
                "redirect",
                inline(&[("to", q(&to)), ("status", status.to_string())]),
                None,
            ));
        }
        if status == 444 {
            return Ok((
                "respond",
                inline(&[("status", "403".into())]),
                Some(
                    "return 444 (close without an answer) is not HTTP: rampart answers 403".into(),
                ),
            ));
        }
        if !(100..=999).contains(&status) {
            return Err("the status is outside 100-999");
        }
        let mut p = vec![("status", status.to_string())];
        if let Some(body) = rest {
            if body.contains('$') {
                return Err("the response text uses nginx variables");
            }
            p.push(("body", q(body)));
        }
        Ok(("respond", inline(&p), None))
    }

    fn emit_server(
        &mut self,
        parts: ServerParts,
        listens: Vec<Listen>,
        names: Vec<String>,
        https_redirect: bool,
        http2: bool,
        protocols: Option<Vec<String>>,
    ) {
        // One rampart server is either TLS or plain: nginx servers with both
        // kinds of listen become two.
        let plain: Vec<&Listen> = listens.iter().filter(|l| !l.ssl).collect();
        let tls: Vec<&Listen> = listens.iter().filter(|l| l.ssl).collect();
        let groups: Vec<(Vec<&Listen>, bool)> = [(plain, false), (tls, true)]
            .into_iter()
            .filter(|(l, _)| !l.is_empty())
            .collect();
        let split = groups.len() > 1;
        for (group, is_tls) in groups {
            let mut p = parts.clone();
            let base = names.first().cloned().unwrap_or_else(|| "default".into());
            let mut name = if https_redirect {
                format!("{base}-redirect")
            } else if split && !is_tls {
                format!("{base}-http")
            } else {
                base
            };
            let stem = name.clone();
            let mut n = 2;
            while self.server_names.contains(&name) {
                name = format!("{stem}-{n}");
                n += 1;
            }
            self.server_names.insert(name.clone());
            if split {
                p.head.notes.push(format!(
                    "the nginx server listened on both plain and TLS ports; this is its {} half",
                    if is_tls { "TLS" } else { "plain-HTTP" }
                ));
            }
            let mut rest = Vec::new();
            rest.extend(p.response_headers);
            rest.extend(p.compression);
            rest.extend(p.routes);
            self.servers.push(ServerOut {
                default: group.iter().any(|l| l.default),
                name,
                listens: group.iter().map(|l| l.addr.clone()).collect(),
                hosts: names.clone(),
                tls: is_tls,
                http2,
                protocols: if is_tls { protocols.clone() } else { None },
                head: p.head,
                tls_table: if is_tls { p.tls } else { None },
                rest,
            });
            self.counts.servers += 1;
        }
    }

    /// A file without `server` blocks (a snippet nginx includes into one)
    /// still needs a server in rampart: one on nginx's default `*:80`
    /// carries the http-level settings.
    fn server_for_snippet(&mut self, lv: &Level) {
        let mut notes = vec!["the nginx file has no server block (it is a snippet included into one): this server carries its http-level settings; add routes".to_string()];
        if lv.cert.is_some() || lv.protocols.is_some() {
            notes.push("its TLS settings need a TLS server: add a [servers.tls] table with cert and key (listen on 443)".into());
            if let Some(p) = &lv.protocols {
                notes.push(format!(
                    "ssl_protocols {}: rampart offers TLSv1.2 and TLSv1.3 by default",
                    p.join(" ")
                ));
            }
        }
        let mut parts = ServerParts {
            head: Table::new("[[servers]]"),
            tls: None,
            response_headers: None,
            compression: None,
            routes: Vec::new(),
        };
        parts
            .head
            .lead
            .push("---- server (not in the nginx file) ----".into());
        let listens = vec![Listen {
            addr: "0.0.0.0:80".into(),
            ssl: false,
            http2: false,
            default: true,
        }];
        let mut lv = lv.clone();
        lv.cert = None;
        lv.protocols = None;
        let _ = self.server_settings(&mut parts, &lv, &listens, &mut notes);
        parts.head.notes = notes;
        self.emit_server(parts, listens, Vec::new(), false, false, None);
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
                .set_c("access_log", q("stdout"), "one JSON line per request");
        }
        tables.push(self.log);
        let mut admin = Table::new("[admin]");
        admin.set_c(
            "listen",
            q(&format!("127.0.0.1:{}", servers::admin_port(&self.servers))),
            "GET /metrics (Prometheus) and /healthz; keep it private",
        );
        tables.push(admin);
        tables.extend(self.zones);
        tables.extend(self.cors.into_iter().map(|c| c.table));
        for mut u in self.upstreams {
            if u.tls {
                u.table.set_c("tls", "true".into(), "proxy_pass https://");
            }
            tables.push(u.table);
        }
        tables.extend(servers::arrange(self.servers));
        Translation {
            tables,
            skipped: self.skipped,
            warnings: self.warnings,
            counts: self.counts,
        }
    }
}

/// The versions of an `ssl_protocols` line rampart offers, in its order;
/// both when nginx listed only retired ones.
fn kept_protocols(p: &[String]) -> Vec<String> {
    let kept: Vec<String> = ["TLSv1.2", "TLSv1.3"]
        .into_iter()
        .filter(|v| p.iter().any(|x| x == v))
        .map(String::from)
        .collect();
    if kept.is_empty() {
        vec!["TLSv1.2".into(), "TLSv1.3".into()]
    } else {
        kept
    }
}

/// `if ($host = example.com) { return 301 https://$host$request_uri; }`
fn is_certbot_redirect(d: &Directive) -> bool {
    let cond =
        matches!(if_condition(&d.args).as_slice(), [var, eq, _] if var == "$host" && eq == "=");
    let body = d.block.as_deref().unwrap_or_default();
    cond && matches!(body, [r] if r.name == "return" && is_https_redirect(&r.args))
}

fn compression_table(lv: &Level) -> Table {
    let mut t = Table::new("[servers.compression]");
    t.lead
        .push("gzip on (rampart also offers brotli and zstd to clients that prefer them)".into());
    t.set_c(
        "min_length",
        lv.gzip_min_length.unwrap_or(20).to_string(),
        "gzip_min_length",
    );
    let mut types = vec!["text/html".to_string()];
    for ty in lv.gzip_types.iter().flatten() {
        if ty != "*" && !types.contains(ty) {
            types.push(ty.clone());
        }
    }
    t.set_c(
        "types",
        list(&types),
        "gzip_types (nginx always adds text/html)",
    );
    t
}

fn parse_listen(args: &[String]) -> Result<Listen, &'static str> {
    let Some(addr) = args.first() else {
        return Err("listen without an address");
    };
    if addr.starts_with("unix:") {
        return Err("rampart listens on TCP only");
    }
    let mut l = Listen {
        addr: String::new(),
        ssl: false,
        http2: false,
        default: false,
    };
    for p in &args[1..] {
        match p.as_str() {
            "ssl" => l.ssl = true,
            "http2" => l.http2 = true,
            "default_server" | "default" => l.default = true,
            "quic" | "http3" => return Err("no HTTP/3 in rampart"),
            "proxy_protocol" => return Err("no PROXY protocol in rampart"),
            _ => {}
        }
    }
    l.addr = if addr.bytes().all(|b| b.is_ascii_digit()) {
        format!("0.0.0.0:{addr}")
    } else if let Some(port) = addr.strip_prefix("*:") {
        format!("0.0.0.0:{port}")
    } else if let Some(port) = addr.strip_prefix("localhost:") {
        format!("127.0.0.1:{port}")
    } else if addr.starts_with('[') {
        if addr.contains("]:") {
            addr.clone()
        } else {
            format!("{addr}:80")
        }
    } else if addr.contains(':') {
        addr.clone()
    } else {
        format!("{addr}:80")
    };
    Ok(l)
}

/// (`exact` | `prefix` | `regex`, pattern, note)
fn location_matcher(
    args: &[String],
) -> Result<(&'static str, String, Option<&'static str>), &'static str> {
    let (modifier, path) = match args {
        [m, p] => (m.as_str(), p.clone()),
        [one] => {
            if let Some(p) = one.strip_prefix("^~") {
                ("^~", p.to_string())
            } else if let Some(p) = one.strip_prefix("~*") {
                ("~*", p.to_string())
            } else if let Some(p) = one.strip_prefix('~') {
                ("~", p.to_string())
            } else if let Some(p) = one.strip_prefix('=') {
                ("=", p.to_string())
            } else {
                ("", one.clone())
            }
        }
        _ => return Err("location needs a path"),
    };
    match modifier {
        "=" => Ok(("exact", path, None)),
        "~" => Ok(("regex", path, None)),
        "~*" => Ok(("regex", format!("(?i){path}"), None)),
        "^~" => Ok(("prefix", path, Some("^~ (no regex check after this prefix) has no rampart equivalent: regex routes are still tried first; check that none of them matches paths under this prefix"))),
        "" if path.starts_with('@') => Err("named locations are reached only from error_page/try_files; not supported"),
        "" => Ok(("prefix", path, None)),
        _ => Err("unknown location modifier"),
    }
}

/// The directory to serve an exact location's `alias` file from, when the
/// file has the requested name (rampart serves the path under the root).
fn alias_dir_for_exact(alias: &str, path: &str) -> Option<String> {
    let (dir, file) = alias.rsplit_once('/')?;
    let wanted = path.rsplit('/').next()?;
    if file != wanted || file.is_empty() {
        return None;
    }
    let prefix = &path[..path.len() - wanted.len()];
    let dir = dir.strip_suffix(prefix.trim_end_matches('/'))?;
    Some(if dir.is_empty() {
        "/".to_string()
    } else {
        dir.to_string()
    })
}

fn is_immutable_cache_control(h: &Header) -> bool {
    h.name.eq_ignore_ascii_case("cache-control")
        && h.value.to_ascii_lowercase().contains("immutable")
}

/// `root` in a location serves `root + path`; rampart strips a prefix route's
/// prefix (nginx `alias`), so the prefix moves into the root.
fn join_root(root: &str, kind: &str, pattern: &str) -> String {
    if kind == "prefix" {
        format!(
            "{}/{}",
            root.trim_end_matches('/'),
            pattern.trim_start_matches('/')
        )
    } else {
        root.to_string()
    }
}

fn is_https_redirect(args: &[String]) -> bool {
    matches!(args, [code, url] if code == "301"
        && (url == "https://$host$request_uri" || url == "https://$server_name$request_uri" || url == "https://$http_host$request_uri"))
}

/// nginx variables in a redirect target → rampart placeholders; `None`
/// when one has no placeholder.
fn translate_vars(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, len) = match after.strip_prefix('{') {
            Some(braced) => {
                let end = braced.find('}')?;
                (&braced[..end], end + 2)
            }
            None => {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                (&after[..end], end)
            }
        };
        out.push_str(match name {
            "request_uri" => "{uri}",
            "uri" | "document_uri" => "{path}",
            "args" | "query_string" => "{query}",
            "host" | "http_host" | "server_name" => "{host}",
            _ => return None,
        });
        rest = &after[len..];
    }
    out.push_str(rest);
    Some(out)
}

/// The words of an `if` condition without its parentheses and quotes:
/// `($request_method = 'OPTIONS')` → `$request_method`, `=`, `OPTIONS`.
fn if_condition(args: &[String]) -> Vec<String> {
    args.join(" ")
        .replace(['(', ')', '\'', '"'], " ")
        .split_whitespace()
        .map(String::from)
        .collect()
}

fn is_options_check(args: &[String]) -> bool {
    if_condition(args) == ["$request_method", "=", "OPTIONS"]
}

/// The headers of an `if ($request_method = OPTIONS) { add_header ...; return 204; }`.
fn preflight_headers(body: &[Directive]) -> Option<Vec<Header>> {
    let mut out = Vec::new();
    let mut returned = false;
    for d in body {
        match d.name.as_str() {
            "add_header" => {
                if let (Some(n), Some(v)) = (d.args.first(), d.args.get(1)) {
                    let lower = n.to_ascii_lowercase();
                    if lower != "content-type" && lower != "content-length" {
                        out.push(Header {
                            name: n.clone(),
                            value: v.clone(),
                            pos: d.pos.clone(),
                        });
                    }
                }
            }
            "return" if d.args.first().is_some_and(|c| c == "204" || c == "200") => returned = true,
            _ => return None,
        }
    }
    returned.then_some(out)
}

fn is_standard_proxy_header(name: &str, value: &str) -> bool {
    let n = name.to_ascii_lowercase();
    match n.as_str() {
        "host" => matches!(
            value,
            "$host" | "$http_host" | "$proxy_host" | "$server_name"
        ),
        "x-real-ip" => value == "$remote_addr",
        "x-forwarded-for" => matches!(value, "$proxy_add_x_forwarded_for" | "$remote_addr"),
        "x-forwarded-proto" => value == "$scheme",
        "x-forwarded-host" => matches!(value, "$host" | "$http_host" | "$server_name"),
        "upgrade" => value == "$http_upgrade",
        "connection" => matches!(value, "upgrade" | "Upgrade" | "$connection_upgrade" | ""),
        "x-request-id" => value == "$request_id",
        _ => false,
    }
}

fn with_port(hostport: &str, default: u16) -> String {
    let has_port = if hostport.starts_with('[') {
        hostport.contains("]:")
    } else {
        hostport.contains(':')
    };
    if has_port {
        hostport.to_string()
    } else {
        format!("{hostport}:{default}")
    }
}

fn header_case(s: &str) -> String {
    s.split('-')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

fn short(s: &str) -> String {
    if s.chars().count() > 70 {
        let cut: String = s.chars().take(67).collect();
        format!("{cut}...")
    } else {
        s.to_string()
    }
}

/// Why a directive has no rampart equivalent.
fn reason(name: &str) -> Option<&'static str> {
    Some(match name {
        "ssl_ciphers" | "ssl_prefer_server_ciphers" | "ssl_ecdh_curve" | "ssl_dhparam" | "ssl_conf_command" => {
            "rustls offers only modern AEAD cipher suites and chooses among them itself"
        }
        "ssl_session_cache" | "ssl_session_timeout" | "ssl_session_tickets" | "ssl_session_ticket_key" => {
            "rampart keeps a session cache and rotates ticket keys itself"
        }
        "ssl_stapling" | "ssl_stapling_verify" | "ssl_trusted_certificate" | "resolver_timeout" => {
            "no OCSP stapling (Let's Encrypt ended its OCSP service in 2025; browsers do not rely on it)"
        }
        "resolver" => "upstream names are resolved when the configuration is loaded (and on reload)",
        "worker_connections" | "worker_rlimit_nofile" | "use" | "multi_accept" | "accept_mutex" | "worker_cpu_affinity" | "worker_priority" => {
            "rampart has no per-worker connection cap; raise the open-file limit (LimitNOFILE) instead"
        }
        "user" => "run rampart as an unprivileged user (systemd User=, Docker USER)",
        "pid" => "set global.pid_file if something needs a pid file",
        "log_format" => "the access log is one JSON line per request with fixed fields",
        "error_log" => "diagnostics go to stderr ([log] level and format)",
        "sendfile" | "tcp_nopush" | "tcp_nodelay" | "aio" | "directio" | "output_buffers" | "postpone_output" => {
            "socket and file I/O tuning is rampart's own"
        }
        "default_type" | "types" | "types_hash_max_size" | "types_hash_bucket_size" | "include" => {
            "rampart has a built-in MIME type table"
        }
        "server_names_hash_bucket_size" | "server_names_hash_max_size" | "variables_hash_max_size" | "map_hash_bucket_size" => {
            "no hash tables to size"
        }
        "client_body_buffer_size" | "client_header_buffer_size" | "large_client_header_buffers" | "proxy_buffers"
        | "proxy_buffer_size" | "proxy_busy_buffers_size" | "proxy_temp_file_write_size" | "proxy_max_temp_file_size"
        | "proxy_temp_path" | "client_body_temp_path" => {
            "buffers are not tunable: rampart streams bodies and accepts request heads up to 64 KiB"
        }
        "keepalive_requests" | "keepalive_time" => "no per-connection request cap",
        "send_timeout" => "the response write timeout is not configurable per server",
        "gzip_comp_level" => "rampart picks the level per algorithm (gzip 3, brotli 4, zstd 3: measured best ratio for the CPU)",
        "gzip_proxied" | "gzip_http_version" | "gzip_buffers" | "gzip_disable" | "gzip_static" => {
            "rampart compresses every eligible response and serves precompressed .gz/.br siblings of static files by itself"
        }
        "if" | "set" | "map" | "rewrite" | "geo" | "split_clients" | "break" => {
            "no scripting: express the condition as routes"
        }
        "limit_conn" | "limit_conn_zone" | "limit_conn_status" | "limit_rate" | "limit_rate_after" => {
            "no connection or bandwidth limits"
        }
        "limit_req_log_level" | "limit_req_dry_run" => "rejections are counted in rampart_rate_limited_total",
        "auth_basic" | "auth_basic_user_file" | "auth_request" | "satisfy" | "allow" | "deny" => {
            "no authentication or access lists in the gateway"
        }
        n if n.starts_with("proxy_cache") || n.starts_with("fastcgi_") || n.starts_with("uwsgi_") => {
            "no response cache and no FastCGI/uwsgi: rampart proxies HTTP"
        }
        "proxy_next_upstream" | "proxy_next_upstream_tries" | "proxy_next_upstream_timeout" => {
            "set upstreams.<name>.tries; retries follow rampart's rules (connect errors always, idempotent requests otherwise)"
        }
        "proxy_intercept_errors" | "error_page" => "rampart answers its own errors (text, or JSON when the client asks for it)",
        "charset" | "source_charset" | "charset_types" => "no charset conversion",
        "autoindex" => "no directory listings",
        "http2_max_concurrent_streams" | "http2_push" | "http2_push_preload" => "HTTP/2 settings are rampart's own",
        "ssi" | "sub_filter" | "sub_filter_once" | "sub_filter_types" => "no response rewriting",
        "proxy_hide_header" | "proxy_pass_header" | "proxy_ignore_headers" => "upstream headers pass through as they are",
        "proxy_ssl_verify" | "proxy_ssl_trusted_certificate" | "proxy_ssl_name" | "proxy_ssl_server_name" => {
            "set tls_verify / tls_ca / tls_server_name on the upstream"
        }
        "limit_except" => "no per-method access rules",
        "stream" | "mail" => "rampart proxies HTTP only",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_forms() {
        let l = |s: &str| parse_listen(&s.split(' ').map(String::from).collect::<Vec<_>>());
        assert_eq!(l("80").unwrap().addr, "0.0.0.0:80");
        assert_eq!(l("*:8080").unwrap().addr, "0.0.0.0:8080");
        assert_eq!(l("[::]:443 ssl").unwrap().addr, "[::]:443");
        assert!(l("[::]:443 ssl").unwrap().ssl);
        assert_eq!(l("127.0.0.1").unwrap().addr, "127.0.0.1:80");
        let x = l("443 ssl http2 default_server").unwrap();
        assert!(x.ssl && x.http2 && x.default);
        assert!(l("unix:/run/x.sock").is_err());
        assert!(l("443 quic").is_err());
    }

    #[test]
    fn location_modifiers() {
        let m = |s: &str| location_matcher(&s.split(' ').map(String::from).collect::<Vec<_>>());
        assert_eq!(m("= /x").unwrap().0, "exact");
        assert_eq!(m("=/x").unwrap().1, "/x");
        assert_eq!(m("~ ^/a").unwrap(), ("regex", "^/a".into(), None));
        assert_eq!(m("~* \\.png$").unwrap().1, "(?i)\\.png$");
        assert!(m("^~ /img/").unwrap().2.is_some());
        assert_eq!(m("/api/").unwrap().0, "prefix");
        assert!(m("@fallback").is_err());
    }

    #[test]
    fn redirect_variables() {
        assert_eq!(
            translate_vars("https://$host$request_uri").as_deref(),
            Some("https://{host}{uri}")
        );
        assert_eq!(
            translate_vars("https://${host}/new$uri?$args").as_deref(),
            Some("https://{host}/new{path}?{query}")
        );
        assert_eq!(translate_vars("https://$cookie_x/"), None);
        assert_eq!(translate_vars("https://$hostname/"), None);
        assert_eq!(translate_vars("https://${host"), None);
        assert!(is_https_redirect(&[
            "301".into(),
            "https://$server_name$request_uri".into()
        ]));
        assert!(!is_https_redirect(&[
            "302".into(),
            "https://$host$request_uri".into()
        ]));
    }

    #[test]
    fn options_idiom() {
        let args: Vec<String> = ["($request_method", "=", "OPTIONS", ")"]
            .map(String::from)
            .to_vec();
        assert!(is_options_check(&args));
        let args: Vec<String> = ["($request_method", "=", "POST)"]
            .map(String::from)
            .to_vec();
        assert!(!is_options_check(&args));
    }

    /// Imports `conf` (as `t.conf`) and parses the output as TOML.
    fn imp(conf: &str) -> (String, toml_edit::DocumentMut, Vec<String>) {
        let tree = super::super::parse::parse_str(conf, std::sync::Arc::from("t.conf")).unwrap();
        let opts = Options::default();
        let t = Translator::new(&opts, Path::new("t.conf")).translate(&tree);
        let text = super::super::toml_out::render(&t.tables);
        let doc = text.parse().unwrap_or_else(|e| panic!("{e}\n{text}"));
        (text, doc, t.warnings)
    }

    /// Whether a warning was given at `line` of `t.conf` mentioning `what`.
    fn warned(warnings: &[String], line: u32, what: &str) -> bool {
        let at = format!("t.conf:{line}:");
        warnings
            .iter()
            .any(|w| w.starts_with(&at) && w.contains(what))
    }

    fn routes(doc: &toml_edit::DocumentMut, server: usize) -> Vec<&toml_edit::Table> {
        doc["servers"][server]["routes"]
            .as_array_of_tables()
            .map(|a| a.iter().collect())
            .unwrap_or_default()
    }

    #[test]
    fn default_server_comes_first_and_mixed_listens_split() {
        let (_, doc, _) = imp("server { listen 80; server_name a.test; return 200 a; }\n\
             server { listen 80 default_server; listen 443 ssl; server_name b.test; \
                      ssl_certificate /c/b.pem; ssl_certificate_key /c/b.key; \
                      location / { proxy_pass http://127.0.0.1:9000; } }\n");
        let names: Vec<&str> = doc["servers"]
            .as_array_of_tables()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["b.test-http", "a.test", "b.test"]);
        assert!(doc["servers"][0].get("tls").is_none());
        assert_eq!(doc["servers"][2]["tls"]["cert"].as_str(), Some("/c/b.pem"));
        assert_eq!(
            routes(&doc, 0)[0]["upstream"].as_str(),
            Some("127_0_0_1_9000")
        );
        assert_eq!(
            routes(&doc, 2)[0]["upstream"].as_str(),
            Some("127_0_0_1_9000")
        );
        assert_eq!(routes(&doc, 1)[0]["respond"]["body"].as_str(), Some("a"));
    }

    #[test]
    fn inheritance_follows_nginx() {
        let (text, doc, _) = imp(
            "limit_req_zone $binary_remote_addr zone=z:1m rate=2r/s;\n\
             server { listen 80;\n\
               limit_req zone=z burst=3;\n\
               proxy_read_timeout 90s;\n\
               add_header X-Custom one always;\n\
               location /a/ { proxy_pass http://127.0.0.1:1; }\n\
               location /b/ { limit_req zone=z delay=2 burst=9; limit_req_status 503; add_header X-B two; proxy_pass http://127.0.0.1:1; }\n\
               location /health { access_log off; proxy_pass http://127.0.0.1:1; expires 1h; }\n\
             }\n",
        );
        let r = routes(&doc, 0);
        assert_eq!(r[0]["rate_limit"]["burst"].as_integer(), Some(3));
        assert!(r[0]["rate_limit"].get("nodelay").is_none());
        assert_eq!(r[0]["read_timeout"].as_str(), Some("90s"));
        assert_eq!(r[1]["rate_limit"]["delay"].as_integer(), Some(2));
        assert_eq!(r[1]["rate_limit"]["status"].as_integer(), Some(503));
        assert_eq!(r[1]["response_headers"]["X-B"].as_str(), Some("two"));
        assert_eq!(
            doc["servers"][0]["response_headers"]["X-Custom"].as_str(),
            Some("one")
        );
        assert!(text.contains("replaced the inherited X-Custom"), "{text}");
        assert_eq!(r[2]["access_log"].as_bool(), Some(false));
        assert_eq!(
            r[2]["response_headers"]["Cache-Control"].as_str(),
            Some("max-age=3600")
        );
        assert!(text.contains("nginx refused with 503"), "{text}");
        // Both upstream addresses are one made-up upstream.
        assert_eq!(doc["upstreams"].as_table().unwrap().len(), 1);
    }

    #[test]
    fn what_rampart_cannot_do_is_noted_where_it_was() {
        let (text, doc, warnings) = imp("server { listen 80;\n\
               location ^~ /img/ { root /srv; }\n\
               location /app/ { proxy_pass http://127.0.0.1:1/v2/; }\n\
               location ~ (?<=x)y { return 204; }\n\
               location @named { return 404; }\n\
               if ($host = x) { return 404; }\n\
             }\n");
        let r = routes(&doc, 0);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0]["static"]["root"].as_str(), Some("/srv/img"));
        assert!(text.contains("^~ (no regex check"), "{text}");
        assert!(text.contains("# not imported: location /app/ "), "{text}");
        assert!(warned(&warnings, 3, "URI replaces"), "{warnings:?}");
        assert!(warned(&warnings, 4, "regex"), "{warnings:?}");
        assert!(text.contains("named locations"), "{text}");
        assert!(
            text.contains("# not imported: if ($host = x) (line 6) — no scripting"),
            "{text}"
        );
    }

    #[test]
    fn upstream_options() {
        let (text, doc, _) = imp(
            "upstream u { ip_hash; server a.internal weight=3 max_fails=2 fail_timeout=5s; server b.internal:81 down; server c.internal:82 backup max_fails=2 fail_timeout=5s; }\n\
             server { listen 80; location / { proxy_pass https://u; } real_ip_header X-Forwarded-For; set_real_ip_from 10.0.0.0/8; }\n",
        );
        let u = &doc["upstreams"]["u"];
        let servers = u["servers"].as_array().unwrap();
        assert_eq!(servers.len(), 2);
        let first = servers.get(0).unwrap().as_inline_table().unwrap();
        assert_eq!(first.get("addr").unwrap().as_str(), Some("a.internal:80"));
        assert_eq!(first.get("weight").unwrap().as_integer(), Some(3));
        assert_eq!(u["max_fails"].as_integer(), Some(2));
        assert_eq!(u["fail_timeout"].as_str(), Some("5s"));
        assert_eq!(u["tls"].as_bool(), Some(true));
        assert!(text.contains("not imported: ip_hash"), "{text}");
        assert!(text.contains("server b.internal:81 down"), "{text}");
        // set_real_ip_from inside a server block is not the http level.
        assert!(doc.get("global").is_none() || doc["global"].get("trusted_proxies").is_none());
    }

    #[test]
    fn repeated_directives_never_repeat_a_toml_key() {
        let (text, doc, _) = imp(
            "worker_processes 2; worker_processes 4;\n\
             http { access_log /a.log; access_log /b.log;\n\
             limit_req_zone $binary_remote_addr zone=z:1m rate=1r/s;\n\
             limit_req_zone $binary_remote_addr zone=z:2m rate=2r/s;\n\
             upstream u { server 127.0.0.1:1; }\n\
             upstream u { server 127.0.0.1:2; }\n\
             server { listen 80; add_header Link a; add_header Link b;\n\
               location / { add_header X-A 1; add_header X-A 2; expires 1m; proxy_pass http://u; } } }\n",
        );
        assert_eq!(doc["global"]["threads"].as_integer(), Some(4));
        assert_eq!(doc["rate_limits"]["z"]["rate"].as_str(), Some("1r/s"));
        assert!(
            text.contains("a zone of this name is already defined"),
            "{text}"
        );
        assert!(
            text.contains("an upstream of this name is already defined"),
            "{text}"
        );
        assert_eq!(
            doc["servers"][0]["response_headers"]["Link"].as_str(),
            Some("a, b")
        );
        let r = routes(&doc, 0);
        assert_eq!(r[0]["response_headers"]["X-A"].as_str(), Some("1, 2"));
        assert_eq!(
            r[0]["response_headers"]["Cache-Control"].as_str(),
            Some("max-age=60")
        );
    }

    #[test]
    fn access_rules_fail_closed_and_other_protocols_are_left_out() {
        let (text, doc, warnings) = imp("server { listen 80; root /var/www;\n\
               location ~ \\.php$ { fastcgi_pass unix:/run/php.sock; }\n\
               location ~ /\\.git { deny all; }\n\
               location /admin/ { auth_basic \"x\"; proxy_pass http://127.0.0.1:1; }\n\
               location /private/ { internal; }\n\
               location /metrics { allow 10.0.0.0/8; deny all; proxy_pass http://127.0.0.1:1; }\n\
               location /api/ { proxy_pass http://127.0.0.1:1; }\n\
             }\n");
        let r = routes(&doc, 0);
        let kinds: Vec<(String, Option<i64>)> = r
            .iter()
            .map(|t| {
                let m = ["exact", "prefix", "regex"]
                    .iter()
                    .find_map(|k| t.get(k).and_then(|v| v.as_str()))
                    .unwrap_or_default()
                    .to_string();
                (m, t.get("respond").and_then(|v| v["status"].as_integer()))
            })
            .collect();
        assert_eq!(
            kinds,
            [
                ("/\\.git".to_string(), Some(403)),
                ("/admin/".to_string(), Some(403)),
                ("/private/".to_string(), Some(404)),
                ("/metrics".to_string(), Some(403)),
                ("/api/".to_string(), None),
                ("/".to_string(), None),
            ],
            "{text}"
        );
        // The server root still serves what no location takes, but never
        // the PHP sources.
        assert_eq!(r[5]["static"]["root"].as_str(), Some("/var/www"));
        assert!(
            text.contains("# not imported: location ~ \\.php$ (line 2)"),
            "{text}"
        );
        assert!(
            warnings.iter().any(|w| w.contains("fastcgi_pass")),
            "{warnings:?}"
        );
        assert!(warned(&warnings, 4, "auth_basic"), "{warnings:?}");
    }

    #[test]
    fn nested_locations_inherit_from_their_parent() {
        let (text, doc, _) = imp("server { listen 80; add_header X-S s;\n\
               location /a/ { add_header X-A a; proxy_set_header X-Up up;\n\
                 location ~ \\.json$ { proxy_pass http://127.0.0.1:1; }\n\
               }\n\
               location /b/ { location /b/c/ { proxy_pass http://127.0.0.1:1; } }\n\
             }\n");
        let r = routes(&doc, 0);
        assert_eq!(r.len(), 2, "{text}");
        assert_eq!(r[0]["regex"].as_str(), Some("^/a/.*(?:\\.json$)"));
        assert_eq!(r[0]["response_headers"]["X-A"].as_str(), Some("a"));
        assert_eq!(r[0]["request_headers"]["X-Up"].as_str(), Some("up"));
        assert_eq!(r[1]["prefix"].as_str(), Some("/b/c/"));
        assert!(text.contains("not imported: location /b/ "), "{text}");
    }

    #[test]
    fn proxy_headers_follow_nginx() {
        let (text, doc, _) = imp("upstream u { server 127.0.0.1:1; }\n\
             server { listen 80; proxy_set_header X-Env prod;\n\
               location /a/ { proxy_set_header Host $host; proxy_pass http://u; }\n\
               location /b/ { proxy_pass http://u; }\n\
               location /ext/ { proxy_pass https://api.example.net; }\n\
               location / { proxy_pass http://u/; }\n\
             }\n");
        let r = routes(&doc, 0);
        // Any proxy_set_header in /a/ replaced the server's list.
        assert!(r[0].get("request_headers").is_none(), "{text}");
        assert_eq!(r[1]["request_headers"]["X-Env"].as_str(), Some("prod"));
        assert!(text.contains("nginx sent `Host: u`"), "{text}");
        assert_eq!(
            r[2]["request_headers"]["Host"].as_str(),
            Some("api.example.net")
        );
        assert_eq!(
            r[3]["upstream"].as_str(),
            Some("u"),
            "a URI equal to the prefix is no rewrite"
        );
    }

    #[test]
    fn servers_names_and_addresses() {
        let (text, doc, warnings) = imp(
            "server { listen 443 ssl; server_name a.test; ssl_certificate /c/a.pem; ssl_certificate_key /c/a.key; ssl_protocols TLSv1.3 TLSv1.2; location / { return 204; } }\n\
             server { listen 443; server_name b.test; ssl_certificate /c/b.pem; ssl_certificate_key /c/b.key; location / { return 444; } }\n\
             server { listen 9090; server_name localhost; location = /robots.txt { alias /srv/www/robots.txt; } }\n\
             server { listen 9090; location / { return 200; } }\n\
             server { listen 80; server_name c.test;\n\
               if ($host = c.test) { return 301 https://$host$request_uri; }\n\
               return 404; }\n\
             server { listen 8080 proxy_protocol; location / { return 200; } }\n",
        );
        let servers = doc["servers"].as_array_of_tables().unwrap();
        let names: Vec<&str> = servers
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "a.test",
                "b.test",
                "localhost",
                "default",
                "c.test-redirect"
            ],
            "{text}"
        );
        // `ssl` belongs to the address in nginx.
        assert_eq!(doc["servers"][1]["tls"]["cert"].as_str(), Some("/c/b.pem"));
        assert!(
            doc["servers"][0]["tls"].get("protocols").is_none(),
            "servers of :443 disagreed"
        );
        assert_eq!(
            routes(&doc, 1)[0]["respond"]["status"].as_integer(),
            Some(403)
        );
        assert_eq!(doc["servers"][2]["hosts"].as_array().unwrap().len(), 1);
        assert_eq!(
            routes(&doc, 2)[0]["static"]["root"].as_str(),
            Some("/srv/www")
        );
        assert_eq!(
            doc["servers"][3]["hosts"].as_array().map(|a| a.len()),
            Some(0)
        );
        assert_eq!(doc["servers"][4]["https_redirect"].as_bool(), Some(true));
        assert_eq!(doc["admin"]["listen"].as_str(), Some("127.0.0.1:9091"));
        assert!(warned(&warnings, 8, ""), "{warnings:?}");
    }

    #[test]
    fn static_cache_control_is_kept_unless_immutable_covers_it() {
        let (_, doc, _) = imp(
            "server { listen 80;\n\
               location /a/ { root /srv; add_header Cache-Control no-store; }\n\
               location /b/ { root /srv; expires 1d; add_header Cache-Control \"public, immutable\"; }\n\
             }\n",
        );
        let r = routes(&doc, 0);
        assert_eq!(
            r[0]["response_headers"]["Cache-Control"].as_str(),
            Some("no-store")
        );
        assert_eq!(r[0]["static"]["root"].as_str(), Some("/srv/a"));
        assert!(r[1].get("response_headers").is_none());
        assert_eq!(r[1]["static"]["immutable"].as_bool(), Some(true));
    }

    #[test]
    fn standard_proxy_headers_are_recognised() {
        assert!(is_standard_proxy_header("Host", "$host"));
        assert!(is_standard_proxy_header(
            "X-Forwarded-For",
            "$proxy_add_x_forwarded_for"
        ));
        assert!(is_standard_proxy_header("Connection", "upgrade"));
        assert!(!is_standard_proxy_header("Host", "backend.internal"));
        assert!(!is_standard_proxy_header("X-Env", "prod"));
    }
}
