//! Validation and compilation of a read [`File`] into a [`Snapshot`].
//!
//! Every cross-reference (upstream, zone, CORS policy), every uniqueness
//! rule and every file the config names is checked here, once, with the
//! position of the offending value. The output holds indices instead of
//! names, compiled regexes and parsed header values.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use ipnet::IpNet;
use pingora::http::WireHeaderName;
use regex::Regex;

use super::diag::Span;
use super::file::{self, File};
use super::reader::{Reader, Sp};
use super::snapshot::*;
use crate::metrics::RouteMetrics;
use crate::routing::{HostTable, Matcher, RouteTable};

/// `client_header_timeout` when unset (nginx's default).
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(60);

/// Inputs besides the file itself.
pub struct Source<'a> {
    pub path: &'a Path,
    pub text: &'a str,
}

/// Problems that do not stop the config from loading (printed by `check`,
/// logged by `run`).
pub type Warnings = Vec<String>;

struct Cx<'r, 's> {
    r: &'r mut Reader<'s>,
    base: PathBuf,
    warnings: Warnings,
}

impl Cx<'_, '_> {
    fn err(&mut self, span: &Span, msg: impl Into<String>) {
        self.r.diag.error(span, msg);
    }

    fn path(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base.join(p)
        }
    }

    fn header(&mut self, name: &Sp<String>, value: &Sp<String>) -> Option<Header> {
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

    fn headers(&mut self, list: &[(Sp<String>, Sp<String>)]) -> Vec<Header> {
        list.iter().filter_map(|(n, v)| self.header(n, v)).collect()
    }
}

/// Parses a `listen` value: `IP:PORT`, `[IPv6]:PORT`, `*:PORT` or `PORT`.
pub fn parse_listen(s: &str) -> Option<SocketAddr> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Some(a);
    }
    let port = s.strip_prefix("*:").unwrap_or(s);
    port.parse::<u16>()
        .ok()
        .map(|p| SocketAddr::from(([0, 0, 0, 0], p)))
}

/// A name `hosts` accepts: a DNS name, or `*.` and one.
pub(crate) fn valid_host_pattern(h: &str) -> bool {
    let h = h.strip_prefix("*.").unwrap_or(h);
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Parses a redirect template's `{host}`, `{uri}`, `{path}`, `{query}`.
pub fn parse_template(s: &str) -> Result<Vec<Piece>, String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find('{') {
        if i > 0 {
            out.push(Piece::Lit(rest[..i].to_string()));
        }
        let after = &rest[i + 1..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unclosed `{{` in redirect target \"{s}\""))?;
        out.push(match &after[..end] {
            "host" => Piece::Host,
            "uri" => Piece::Uri,
            "path" => Piece::Path,
            "query" => Piece::Query,
            other => {
                return Err(format!(
                    "unknown placeholder `{{{other}}}` in redirect target: use {{host}}, {{uri}}, {{path}} or {{query}}"
                ))
            }
        });
        rest = &after[end + 1..];
    }
    if !rest.is_empty() {
        out.push(Piece::Lit(rest.to_string()));
    }
    Ok(out)
}

fn parse_origin(s: &str) -> Result<OriginPattern, String> {
    let (scheme, host) = s
        .split_once("://")
        .ok_or_else(|| format!("origin \"{s}\" must look like https://host[:port]"))?;
    if scheme.is_empty() || host.is_empty() || host.contains('/') {
        return Err(format!(
            "origin \"{s}\" must look like https://host[:port] (no path)"
        ));
    }
    match host.strip_prefix("*.") {
        Some(suffix) => {
            if suffix.contains('*') {
                return Err(format!(
                    "origin \"{s}\": only one leading `*.` label is allowed"
                ));
            }
            Ok(OriginPattern::Wildcard {
                scheme_and_prefix: format!("{}://", scheme.to_ascii_lowercase()),
                suffix: format!(".{}", suffix.to_ascii_lowercase()),
            })
        }
        None if host.contains('*') => Err(format!(
            "origin \"{s}\": a wildcard must be a whole leading label, as in https://*.example.com"
        )),
        None => Ok(OriginPattern::Exact(s.to_ascii_lowercase())),
    }
}

/// Validates and compiles. On any error, every problem is in `r.diag` and
/// the result is `None`.
pub fn compile(src: &Source<'_>, f: File, r: &mut Reader<'_>) -> Option<(Snapshot, Warnings)> {
    let base = src
        .path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let mut cx = Cx {
        r,
        base,
        warnings: Vec::new(),
    };

    let global = compile_global(&mut cx, &f.global);
    let log = compile_log(&mut cx, &f.log);
    let admin = f.admin.as_ref().and_then(|a| {
        let parsed = parse_listen(&a.v);
        if parsed.is_none() {
            cx.err(
                &a.span,
                format!("admin listen address \"{}\": expected IP:PORT", a.v),
            );
        }
        if parsed.is_some_and(|p| !p.ip().is_loopback()) {
            cx.warnings.push(format!(
                "admin.listen {}: /metrics and /config are served to anyone who can reach this address (a loopback address keeps them local)",
                a.v
            ));
        }
        parsed
    });

    // ---- rate-limit zones ----
    let mut zones = Vec::new();
    let mut zone_idx = HashMap::new();
    for z in &f.rate_limits {
        let key = match z.key.as_ref() {
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
        };
        let max_keys = z.max_keys.unwrap_or(100_000);
        if max_keys == 0 {
            cx.err(
                &z.name.span,
                format!("rate_limits.{}.max_keys must be at least 1", z.name.v),
            );
        }
        let ipv6_prefix = match &z.ipv6_prefix {
            Some(p) if p.v == 0 => {
                cx.err(&p.span, "ipv6_prefix must be 1-128");
                64
            }
            Some(p) => p.v as u8,
            None => 64,
        };
        if let (Some(rate), Some(key)) = (z.rate, key) {
            zone_idx.insert(z.name.v.clone(), zones.len());
            zones.push(Zone {
                name: z.name.v.clone(),
                rate,
                key,
                max_keys: max_keys as usize,
                ipv6_prefix,
            });
        }
    }

    // ---- CORS policies ----
    let mut cors = Vec::new();
    let mut cors_idx = HashMap::new();
    for c in &f.cors {
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
            None => ["GET", "HEAD", "POST"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
        };
        let lower = |l: &Option<Vec<Sp<String>>>| -> Vec<String> {
            l.as_ref()
                .map(|v| v.iter().map(|s| s.v.to_ascii_lowercase()).collect())
                .unwrap_or_default()
        };
        let original = |l: &Option<Vec<Sp<String>>>| -> Vec<String> {
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
        let max_age = c.max_age.unwrap_or(Duration::from_secs(3600));
        let values = CorsValues::new(
            &methods,
            &original(&c.allow_headers),
            &original(&c.expose_headers),
            max_age,
        );
        cors_idx.insert(c.name.v.clone(), cors.len());
        cors.push(CorsPolicy {
            values,
            name: c.name.v.clone(),
            any_origin: any,
            origins,
            allow_methods: methods,
            allow_headers: lower(&c.allow_headers),
            expose_headers: c
                .expose_headers
                .as_ref()
                .map(|v| v.iter().map(|s| s.v.clone()).collect())
                .unwrap_or_default(),
            allow_credentials: credentials,
            max_age,
        });
    }

    // ---- upstreams ----
    let mut upstreams = Vec::new();
    let mut upstream_idx = HashMap::new();
    for u in &f.upstreams {
        if let Some(up) = compile_upstream(&mut cx, u) {
            upstream_idx.insert(u.name.v.clone(), upstreams.len());
            upstreams.push(up);
        }
    }

    // ---- servers ----
    let refs = Refs {
        zones: &zone_idx,
        zone_defs: &zones,
        cors: &cors_idx,
        upstreams: &upstream_idx,
        upstream_defs: &upstreams,
    };
    let mut servers = Vec::new();
    let mut server_names: HashMap<String, Span> = HashMap::new();
    // per listen address: (tls?, http2?, span of first, [(server idx, hosts)])
    let mut by_addr: Vec<AddrGroup> = Vec::new();
    for (si, s) in f.servers.iter().enumerate() {
        let Some(server) = compile_server(&mut cx, s, si, &refs) else {
            continue;
        };
        let mut server = server;
        match &s.name {
            Some(n) => {
                if server_names
                    .insert(server.name.clone(), n.span.clone())
                    .is_some()
                {
                    cx.err(
                        &n.span,
                        format!("duplicate server name \"{}\"", server.name),
                    );
                }
            }
            // A derived name must still be unique: it labels metrics.
            None => {
                if server_names.contains_key(&server.name) {
                    server.name = format!("{}#{si}", server.name);
                }
                server_names.insert(server.name.clone(), s.span.span.clone());
            }
        }
        let idx = servers.len();
        let hosts = s.hosts.as_ref().map(|h| {
            h.iter()
                .map(|x| x.v.to_ascii_lowercase())
                .collect::<Vec<_>>()
        });
        for (li, addr) in server.listen.iter().enumerate() {
            let span = s
                .listen
                .get(li)
                .map(|l| l.span.clone())
                .unwrap_or_else(|| s.span.span.clone());
            let protocols = server.tls.as_ref().map(|t| t.protocols.clone());
            match by_addr.iter_mut().find(|e| e.addr == *addr) {
                Some(entry) => {
                    if entry.protocols.is_some() != protocols.is_some() {
                        let (tls_one, plain_one) = if entry.protocols.is_some() {
                            ("an earlier", "this")
                        } else {
                            ("this", "an earlier")
                        };
                        cx.err(
                            &span,
                            format!(
                                "listen address {addr} is used by a TLS server ({tls_one} one) and a plain-HTTP server ({plain_one} one): one address is either TLS or plain"
                            ),
                        );
                    } else if entry.protocols.is_some() && entry.http2 != server.http2 {
                        cx.err(
                            &span,
                            format!("servers sharing {addr} must agree on `http2` (ALPN is chosen per address)"),
                        );
                    } else if entry.protocols != protocols {
                        cx.err(
                            &span,
                            format!("servers sharing {addr} must agree on `tls.protocols` (versions are chosen before SNI)"),
                        );
                    }
                    if let Some(new) = &hosts {
                        for h in new {
                            let clash = entry
                                .servers
                                .iter()
                                .any(|(_, hs)| hs.as_ref().is_some_and(|hs| hs.contains(h)));
                            if clash {
                                let hspan = s
                                    .hosts
                                    .as_ref()
                                    .and_then(|v| v.iter().find(|x| x.v.eq_ignore_ascii_case(h)))
                                    .map(|x| x.span.clone())
                                    .unwrap_or_else(|| span.clone());
                                cx.err(&hspan, format!("host \"{h}\" is already claimed by another server on {addr}"));
                            }
                        }
                    }
                    entry.servers.push((idx, hosts.clone()));
                }
                None => by_addr.push(AddrGroup {
                    addr: *addr,
                    protocols,
                    http2: server.http2,
                    span,
                    servers: vec![(idx, hosts.clone())],
                }),
            }
        }
        servers.push(server);
    }
    if f.servers.is_empty() {
        cx.err(
            &(0..0),
            "no [[servers]] defined: rampart would not listen anywhere",
        );
    }
    // Two addresses that overlap (0.0.0.0:80 and 127.0.0.1:80) cannot both be bound.
    for (i, a) in by_addr.iter().enumerate() {
        for b in by_addr.iter().take(i) {
            if a.addr.port() == b.addr.port()
                && a.addr != b.addr
                && (a.addr.ip().is_unspecified() || b.addr.ip().is_unspecified())
                && a.addr.is_ipv4() == b.addr.is_ipv4()
            {
                cx.err(
                    &a.span,
                    format!("listen address {} overlaps {}: use one of them for every server on that port", a.addr, b.addr),
                );
            }
        }
    }
    if let Some(a) = admin {
        if let Some(entry) = by_addr.iter().find(|e| {
            e.addr.port() == a.port()
                && (e.addr.ip() == a.ip()
                    || e.addr.ip().is_unspecified()
                    || a.ip().is_unspecified())
        }) {
            cx.err(
                &entry.span,
                format!(
                    "listen address {} collides with the admin listener {a}",
                    entry.addr
                ),
            );
        }
    }
    let listeners = by_addr
        .into_iter()
        .map(|g| Listener {
            addr: g.addr,
            tls: g.protocols.is_some(),
            protocols: g.protocols.unwrap_or_default(),
            http2: g.http2,
            hosts: HostTable::new(&g.servers),
            client_header_timeout: g
                .servers
                .iter()
                .filter_map(|(i, _)| servers.get(*i))
                .map(|s: &Server| s.client_header_timeout)
                .max()
                .unwrap_or(DEFAULT_HEADER_TIMEOUT),
        })
        .collect();

    if !cx.r.diag.is_empty() {
        return None;
    }
    let hash = {
        use sha2::Digest;
        let d = sha2::Sha256::digest(src.text.as_bytes());
        d.iter().take(8).map(|b| format!("{b:02x}")).collect()
    };
    Some((
        Snapshot {
            source: src.path.to_path_buf(),
            hash,
            global,
            log,
            admin,
            zones,
            cors,
            upstreams,
            servers,
            listeners,
        },
        cx.warnings,
    ))
}

/// Servers sharing one listen address while checking: (address, TLS?,
/// http2?, span of its first mention, [(server index, host patterns)]).
struct AddrGroup {
    addr: SocketAddr,
    /// `Some(protocols)` for a TLS address.
    protocols: Option<Vec<TlsVersion>>,
    http2: bool,
    /// Where the address is first mentioned.
    span: Span,
    /// (server index, host patterns) in file order.
    servers: Vec<(usize, Option<Vec<String>>)>,
}

struct Refs<'a> {
    zones: &'a HashMap<String, usize>,
    zone_defs: &'a [Zone],
    cors: &'a HashMap<String, usize>,
    upstreams: &'a HashMap<String, usize>,
    upstream_defs: &'a [Upstream],
}

fn compile_global(cx: &mut Cx<'_, '_>, g: &file::Global) -> Global {
    let pid_file = g.pid_file.as_ref().map(|p| cx.path(&p.v));
    let mut trusted = Vec::new();
    for p in &g.trusted_proxies {
        let parsed =
            p.v.parse::<IpNet>()
                .or_else(|_| p.v.parse::<IpAddr>().map(IpNet::from));
        match parsed {
            Ok(n) => trusted.push(n),
            Err(_) => cx.err(
                &p.span,
                format!(
                    "trusted proxy \"{}\": expected an address or CIDR such as \"10.0.0.0/8\"",
                    p.v
                ),
            ),
        }
    }
    let threads = match g.threads {
        Some(0) => {
            cx.warnings
                .push("global.threads = 0: using the number of CPU cores".into());
            None
        }
        t => t,
    };
    Global {
        threads: threads.map(|t| t as usize).unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        }),
        grace_period: g.grace_period.unwrap_or(Duration::from_secs(30)),
        server_header: g.server_header.unwrap_or(false),
        trusted_proxies: trusted,
        pid_file,
        upgrade_sock: match &g.upgrade_sock {
            Some(p) => cx.path(&p.v),
            None => default_upgrade_sock(&cx.base),
        },
    }
}

/// One socket per configuration directory, so the old and the new process
/// of an upgrade agree without configuration, in a directory only
/// rampart's user can write (`crate::runtime_dir`).
fn default_upgrade_sock(base: &Path) -> PathBuf {
    use sha2::Digest;
    let dir = std::fs::canonicalize(base).unwrap_or_else(|_| base.to_path_buf());
    let d = sha2::Sha256::digest(dir.display().to_string().as_bytes());
    let tag: String = d.iter().take(6).map(|b| format!("{b:02x}")).collect();
    crate::runtime_dir::default_dir(|k| std::env::var(k).ok()).join(format!("upgrade-{tag}.sock"))
}

fn compile_log(cx: &mut Cx<'_, '_>, l: &file::Log) -> Log {
    let level = match &l.level {
        Some(s) => {
            if let Err(e) = tracing_subscriber::EnvFilter::try_new(&s.v) {
                cx.err(&s.span, format!("log level \"{}\": {e}", s.v));
            }
            s.v.clone()
        }
        None => "info".to_string(),
    };
    let format = match l.format.as_ref().map(|s| (s.v.as_str(), &s.span)) {
        None | Some(("text", _)) => LogFormat::Text,
        Some(("json", _)) => LogFormat::Json,
        Some((other, span)) => {
            cx.err(
                span,
                format!("log format \"{other}\": expected \"json\" or \"text\""),
            );
            LogFormat::Text
        }
    };
    let access_log = match l.access_log.as_ref().map(|s| s.v.as_str()) {
        None | Some("stdout") => AccessLog::Stdout,
        Some("off") => AccessLog::Off,
        Some(p) => AccessLog::File(cx.path(p)),
    };
    Log {
        level,
        format,
        access_log,
    }
}

fn compile_upstream(cx: &mut Cx<'_, '_>, u: &file::Upstream) -> Option<Upstream> {
    let mut servers = Vec::new();
    let mut seen = HashSet::new();
    for s in &u.servers {
        let Some((host, port)) = s.addr.v.rsplit_once(':') else {
            cx.err(
                &s.addr.span,
                format!("upstream server \"{}\": expected host:port", s.addr.v),
            );
            continue;
        };
        if port.parse::<u16>().is_err() || host.is_empty() {
            cx.err(
                &s.addr.span,
                format!(
                    "upstream server \"{}\": expected host:port with a numeric port",
                    s.addr.v
                ),
            );
            continue;
        }
        if !seen.insert(s.addr.v.clone()) {
            cx.err(
                &s.addr.span,
                format!(
                    "upstream server \"{}\" is listed twice in upstreams.{}",
                    s.addr.v, u.name.v
                ),
            );
            continue;
        }
        let socket = match s.addr.v.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            // Names are resolved once, at load (as nginx does).
            Err(_) => match s.addr.v.to_socket_addrs().map(|mut it| it.next()) {
                Ok(Some(a)) => Some(a),
                _ => {
                    cx.warnings.push(format!(
                        "upstreams.{}: server \"{}\" does not resolve now; requests to it fail with 502 until a reload resolves it",
                        u.name.v, s.addr.v
                    ));
                    None
                }
            },
        };
        let weight = match &s.weight {
            Some(w) if w.v == 0 => {
                cx.err(&w.span, "weight must be at least 1");
                1
            }
            Some(w) => w.v as u32,
            None => 1,
        };
        servers.push(UpstreamServer {
            addr: s.addr.v.clone(),
            socket,
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            weight,
            backup: s.backup,
        });
    }
    if u.servers_span.v && u.servers.is_empty() {
        cx.err(
            &u.servers_span.span,
            format!("upstreams.{} has no servers", u.name.v),
        );
    }
    if !servers.is_empty() && servers.iter().all(|s| s.backup) {
        cx.err(
            &u.servers_span.span,
            format!(
                "upstreams.{}: every server is a backup; at least one must not be",
                u.name.v
            ),
        );
    }
    let balance = match u.balance.as_ref() {
        None => Balance::LeastConn,
        Some(b) => match b.v.as_str() {
            "least_conn" => Balance::LeastConn,
            "round_robin" => Balance::RoundRobin,
            other => {
                cx.err(
                    &b.span,
                    format!("balance \"{other}\": expected \"least_conn\" or \"round_robin\""),
                );
                Balance::LeastConn
            }
        },
    };
    let tries = match &u.tries {
        Some(t) if t.v == 0 => {
            cx.err(&t.span, "tries must be at least 1");
            1
        }
        Some(t) => t.v as usize,
        None => 3,
    };
    let tls = if u.tls {
        let ca = u.tls_ca.as_ref().and_then(|c| {
            let p = cx.path(&c.v);
            match crate::tls::load_ca_bundle(&p) {
                Ok(ca) => Some(ca),
                Err(e) => {
                    cx.err(&c.span, format!("tls_ca: {e}"));
                    None
                }
            }
        });
        Some(UpstreamTls {
            verify: u.tls_verify.as_ref().is_none_or(|v| v.v),
            ca,
            server_name: u.tls_server_name.as_ref().map(|s| s.v.clone()),
        })
    } else {
        for (key, present) in [
            ("tls_ca", u.tls_ca.is_some()),
            ("tls_server_name", u.tls_server_name.is_some()),
            ("tls_verify", u.tls_verify.is_some()),
        ] {
            if present {
                cx.err(
                    &u.name.span,
                    format!("upstreams.{}.{key} is set but tls is not true", u.name.v),
                );
            }
        }
        None
    };
    let health_check = u.health_check.as_ref().map(|h| {
        let path = match &h.path {
            Some(p) if !p.v.starts_with('/') => {
                cx.err(
                    &p.span,
                    format!("health check path \"{}\" must start with /", p.v),
                );
                p.v.clone()
            }
            Some(p) => p.v.clone(),
            None => "/".to_string(),
        };
        HealthCheck {
            path,
            interval: h.interval.unwrap_or(Duration::from_secs(5)),
            timeout: h.timeout.unwrap_or(Duration::from_secs(2)),
            healthy_threshold: h.healthy_threshold.unwrap_or(2).max(1) as u32,
            unhealthy_threshold: h.unhealthy_threshold.unwrap_or(3).max(1) as u32,
        }
    });
    let d60 = Duration::from_secs(60);
    Some(Upstream {
        name: u.name.v.clone(),
        servers,
        balance,
        max_fails: u.max_fails.unwrap_or(1) as u32,
        fail_timeout: u.fail_timeout.unwrap_or(Duration::from_secs(10)),
        keepalive: u.keepalive.unwrap_or(32) as usize,
        timeouts: Timeouts {
            connect: u.connect_timeout.unwrap_or(d60),
            read: u.read_timeout.unwrap_or(d60),
            write: u.write_timeout.unwrap_or(d60),
        },
        tries,
        tls,
        health_check,
    })
}

fn compile_server(
    cx: &mut Cx<'_, '_>,
    s: &file::Server,
    si: usize,
    refs: &Refs<'_>,
) -> Option<Server> {
    let mut listen = Vec::new();
    for l in &s.listen {
        match parse_listen(&l.v) {
            Some(a) if !listen.contains(&a) => listen.push(a),
            Some(a) => cx.err(&l.span, format!("listen address {a} is listed twice")),
            None => cx.err(
                &l.span,
                format!(
                    "listen address \"{}\": expected IP:PORT, [IPv6]:PORT or PORT",
                    l.v
                ),
            ),
        }
    }
    // A missing or empty `listen` was reported while reading the file.
    if let Some(hosts) = &s.hosts {
        for h in hosts {
            if !valid_host_pattern(&h.v) {
                cx.err(
                    &h.span,
                    format!(
                        "host \"{}\": expected a host name or \"*.\" followed by a domain",
                        h.v
                    ),
                );
            }
        }
    }
    let name = s
        .name
        .as_ref()
        .map(|n| n.v.clone())
        .or_else(|| {
            s.hosts
                .as_ref()
                .and_then(|h| h.first())
                .map(|h| h.v.clone())
        })
        .or_else(|| s.listen.first().map(|l| l.v.clone()))
        .unwrap_or_else(|| format!("server{si}"));

    let tls = s.tls.as_ref().and_then(|t| {
        let mut protocols = Vec::new();
        match &t.protocols {
            None => protocols = vec![TlsVersion::V1_2, TlsVersion::V1_3],
            Some(list) => {
                for p in list {
                    match p.v.as_str() {
                        "TLSv1.2" => protocols.push(TlsVersion::V1_2),
                        "TLSv1.3" => protocols.push(TlsVersion::V1_3),
                        "TLSv1" | "TLSv1.0" | "TLSv1.1" | "SSLv3" => cx.err(
                            &p.span,
                            format!("protocol {} is insecure and not supported: use \"TLSv1.2\" and/or \"TLSv1.3\"", p.v),
                        ),
                        other => cx.err(&p.span, format!("protocol \"{other}\": expected \"TLSv1.2\" or \"TLSv1.3\"")),
                    }
                }
                if list.is_empty() {
                    cx.err(&t.span.span, "tls.protocols is empty");
                }
            }
        }
        let (cert, key) = (t.cert.as_ref()?, t.key.as_ref()?);
        let (cert_path, key_path) = (cx.path(&cert.v), cx.path(&key.v));
        match crate::tls::load_certified_key(&cert_path, &key_path) {
            Ok(k) => {
                if let Some(left) = crate::tls::seconds_to_expiry(&k) {
                    let days = left / 86_400;
                    if left < 0 {
                        cx.warnings.push(format!("certificate {} has EXPIRED ({} days ago)", cert_path.display(), -days));
                    } else if days < 14 {
                        cx.warnings.push(format!("certificate {} expires in {days} day(s): renew it", cert_path.display()));
                    }
                }
                Some(ServerTls {
                cert_path,
                key_path,
                protocols,
                key: k,
            })
            },
            Err(e) => {
                let span = match e {
                    crate::tls::TlsError::ReadKey { .. } | crate::tls::TlsError::NoKey(_) => &key.span,
                    _ => &cert.span,
                };
                cx.err(span, e.to_string());
                None
            }
        }
    });
    let http2 = match (&s.http2, &s.tls) {
        (Some(h), None) if h.v => {
            cx.err(
                &h.span,
                "http2 = true needs [servers.tls]: h2 is offered by TLS ALPN, plain-HTTP servers speak HTTP/1.x",
            );
            false
        }
        (Some(h), _) => h.v,
        (None, t) => t.is_some(),
    };
    let cors = s.cors.as_ref().and_then(|c| match refs.cors.get(&c.v) {
        Some(i) => Some(*i),
        None => {
            cx.err(
                &c.span,
                format!(
                    "undefined CORS policy \"{}\" (define it as [cors.{}])",
                    c.v, c.v
                ),
            );
            None
        }
    });
    let compression = s.compression.as_ref().map(|c| Compression {
        min_length: c.min_length.unwrap_or(1024),
        types: c
            .types
            .as_ref()
            .map(|t| t.iter().map(|s| s.v.to_ascii_lowercase()).collect())
            .unwrap_or_else(|| {
                [
                    "text/html",
                    "text/plain",
                    "text/css",
                    "application/json",
                    "application/javascript",
                    "text/xml",
                    "application/xml",
                ]
                .iter()
                .map(|s| s.to_string())
                .collect()
            }),
    });
    let response_headers = cx.headers(&s.response_headers);

    // ---- routes ----
    let mut entries = Vec::new();
    let mut names: HashMap<String, Span> = HashMap::new();
    let mut plain_paths: HashSet<(bool, String)> = HashSet::new();
    for ro in &s.routes {
        let Some(matcher) = compile_matcher(cx, ro, &mut plain_paths) else {
            continue;
        };
        let rname = ro
            .name
            .as_ref()
            .map(|n| n.v.clone())
            .unwrap_or_else(|| matcher.default_name());
        let nspan = ro
            .name
            .as_ref()
            .map(|n| n.span.clone())
            .unwrap_or_else(|| ro.span.span.clone());
        // Default names repeat only when matchers do, which is reported above.
        if names.insert(rname.clone(), nspan.clone()).is_some() && ro.name.is_some() {
            cx.err(
                &nspan,
                format!("duplicate route name \"{rname}\" in server \"{name}\""),
            );
        }
        if let Some(route) = compile_route(cx, ro, &rname, &name, (cors, s.access_log), refs) {
            entries.push((matcher, route));
        }
    }
    Some(Server {
        unrouted: RouteMetrics::new(&name, ""),
        name,
        listen,
        hosts: s
            .hosts
            .as_ref()
            .map(|h| h.iter().map(|x| x.v.to_ascii_lowercase()).collect()),
        host_for_hostless: s
            .hosts
            .iter()
            .flatten()
            .find(|h| !h.v.contains('*'))
            .and_then(|h| HeaderValue::from_str(&h.v.to_ascii_lowercase()).ok()),
        https_redirect: s.https_redirect.as_ref().map(|r| HttpsRedirect {
            port: r.port.as_ref().and_then(|p| match p.v {
                0 => {
                    cx.err(&p.span, "https_redirect port must be 1-65535");
                    None
                }
                443 => None,
                n => Some(n as u16),
            }),
            status: redirect_status(cx, r.status.as_ref(), 301),
        }),
        http2,
        max_body_size: match s.max_body_size {
            Some(0) => None,
            Some(n) => Some(n),
            None => Some(1 << 20),
        },
        client_header_timeout: s.client_header_timeout.unwrap_or(DEFAULT_HEADER_TIMEOUT),
        client_body_timeout: s.client_body_timeout.unwrap_or(Duration::from_secs(60)),
        allow_encoded_slashes: s.allow_encoded_slashes.unwrap_or(false),
        underscores_in_headers: s.underscores_in_headers.unwrap_or(false),
        keepalive_timeout: s.keepalive_timeout.unwrap_or(Duration::from_secs(75)),
        security_headers: s.security_headers.unwrap_or(true),
        access_log: s.access_log.unwrap_or(true),
        cors,
        tls,
        response_headers,
        compression,
        routes: RouteTable::new(entries),
    })
}

/// A redirect's status: one of the redirecting 3xx, `default` when unset.
fn redirect_status(cx: &mut Cx<'_, '_>, status: Option<&Sp<u64>>, default: u16) -> u16 {
    match status {
        Some(s) if ![301, 302, 303, 307, 308].contains(&s.v) => {
            cx.err(
                &s.span,
                format!(
                    "redirect status {}: expected 301, 302, 303, 307 or 308",
                    s.v
                ),
            );
            default
        }
        Some(s) => s.v as u16,
        None => default,
    }
}

fn compile_matcher(
    cx: &mut Cx<'_, '_>,
    ro: &file::Route,
    seen: &mut HashSet<(bool, String)>,
) -> Option<Matcher> {
    match ro.matcher.as_ref()? {
        file::Matcher::Exact(p) | file::Matcher::Prefix(p) => {
            let exact = matches!(ro.matcher, Some(file::Matcher::Exact(_)));
            if !p.v.starts_with('/') {
                cx.err(&p.span, format!("route path \"{}\" must start with /", p.v));
                return None;
            }
            if !seen.insert((exact, p.v.clone())) {
                let kind = if exact { "exact" } else { "prefix" };
                cx.err(&p.span, format!("duplicate {kind} route \"{}\" in this server: the second could never match", p.v));
            }
            Some(if exact {
                Matcher::Exact(p.v.clone())
            } else {
                Matcher::Prefix(p.v.clone())
            })
        }
        file::Matcher::Regex(p) => match Regex::new(&p.v) {
            Ok(re) => Some(Matcher::Regex(re)),
            Err(e) => {
                let msg = e
                    .to_string()
                    .lines()
                    .last()
                    .unwrap_or("")
                    .trim()
                    .to_string();
                cx.err(&p.span, format!("invalid regex \"{}\": {msg}", p.v));
                None
            }
        },
    }
}

fn compile_route(
    cx: &mut Cx<'_, '_>,
    ro: &file::Route,
    rname: &str,
    server_name: &str,
    (server_cors, server_access_log): (Option<usize>, Option<bool>),
    refs: &Refs<'_>,
) -> Option<Route> {
    let action = match ro.action.as_ref()? {
        file::Action::Upstream(u) => match refs.upstreams.get(&u.v) {
            Some(i) => Action::Upstream(*i),
            None => {
                cx.err(
                    &u.span,
                    format!(
                        "undefined upstream \"{}\" (define it as [upstreams.{}])",
                        u.v, u.v
                    ),
                );
                return None;
            }
        },
        file::Action::Static(s, span) => {
            let root = cx.path(&s.root.as_ref()?.v);
            if !root.is_dir() {
                cx.warnings.push(format!(
                    "static root {} is not a directory now; its route answers 404 until it exists",
                    root.display()
                ));
            }
            let index = s
                .index
                .as_ref()
                .map(|i| i.v.clone())
                .unwrap_or_else(|| "index.html".into());
            if index.contains('/') {
                cx.err(&span.span, "static.index must be a file name, not a path");
            }
            let cache_control = s.expires.map(|e| {
                let mut v = format!("public, max-age={}", e.as_secs());
                if s.immutable.unwrap_or(false) {
                    v.push_str(", immutable");
                }
                HeaderValue::from_str(&v).unwrap_or(HeaderValue::from_static("public"))
            });
            // A prefix route serves the rest of the path (nginx `alias`);
            // exact and regex routes serve the whole path under root.
            let strip = match &ro.matcher {
                Some(file::Matcher::Prefix(p)) => p.v.len(),
                _ => 0,
            };
            let root = std::fs::canonicalize(&root).unwrap_or(root);
            Action::Static(Static {
                root,
                expires: s.expires,
                immutable: s.immutable.unwrap_or(false),
                index,
                cache_control,
                strip,
                dotfiles: s.dotfiles.unwrap_or(false),
            })
        }
        file::Action::Respond {
            status,
            body,
            content_type,
        } => {
            let st = status.as_ref().map(|s| (s.v, s.span.clone()));
            let code = match st {
                Some((v, span)) if !(100..=599).contains(&v) => {
                    cx.err(&span, format!("respond status {v}: expected 100-599"));
                    200
                }
                Some((v, _)) => v as u16,
                None => 200,
            };
            let ct = match content_type {
                Some(c) => match HeaderValue::from_str(&c.v) {
                    Ok(v) => v,
                    Err(_) => {
                        cx.err(&c.span, "invalid content_type");
                        HeaderValue::from_static("text/plain")
                    }
                },
                None => HeaderValue::from_static("text/plain; charset=utf-8"),
            };
            Action::Respond {
                status: code,
                body: Bytes::from(body.as_ref().map(|b| b.v.clone()).unwrap_or_default()),
                content_type: ct,
            }
        }
        file::Action::Redirect { to, status } => {
            let to = to.as_ref()?;
            let code = redirect_status(cx, status.as_ref(), 302);
            match parse_template(&to.v) {
                Ok(pieces) => Action::Redirect {
                    to: pieces,
                    status: code,
                },
                Err(e) => {
                    cx.err(&to.span, e);
                    return None;
                }
            }
        }
    };
    let is_upstream = matches!(action, Action::Upstream(_));
    let mut rate_limits = Vec::new();
    for rl in &ro.rate_limit {
        let Some(zone) = rl.zone.as_ref() else {
            continue;
        };
        let Some(zi) = refs.zones.get(&zone.v) else {
            cx.err(
                &zone.span,
                format!(
                    "undefined rate-limit zone \"{}\" (define it as [rate_limits.{}])",
                    zone.v, zone.v
                ),
            );
            continue;
        };
        let burst = rl.burst.unwrap_or(0) as u32;
        let delay = rl.delay.unwrap_or(0) as u32;
        if rl.delay.is_some() && rl.nodelay == Some(true) {
            cx.err(
                &rl.span.span,
                "rate_limit: `delay` and `nodelay = true` contradict each other; use one",
            );
        }
        let status = match &rl.status {
            Some(s) if !(400..=599).contains(&s.v) => {
                cx.err(
                    &s.span,
                    format!("rate_limit status {}: expected 400-599", s.v),
                );
                429
            }
            Some(s) => s.v as u16,
            None => 429,
        };
        let nodelay = rl.nodelay.unwrap_or(false);
        rate_limits.push(RateLimit {
            zone: *zi,
            limit: crate::ratelimit::Limit {
                rate: refs.zone_defs[*zi].rate.milli_per_sec(),
                burst: u64::from(burst) * 1000,
                delay: if nodelay {
                    u64::MAX
                } else {
                    u64::from(delay) * 1000
                },
            },
            status,
        });
    }
    let cors = match &ro.cors {
        None => server_cors
            .map(CorsChoice::Policy)
            .unwrap_or(CorsChoice::None),
        Some(file::CorsRef::Off) => CorsChoice::None,
        Some(file::CorsRef::Policy(p)) => match refs.cors.get(&p.v) {
            Some(i) => CorsChoice::Policy(*i),
            None => {
                cx.err(
                    &p.span,
                    format!(
                        "undefined CORS policy \"{}\" (define it as [cors.{}])",
                        p.v, p.v
                    ),
                );
                CorsChoice::None
            }
        },
    };
    let overrides = [ro.connect_timeout, ro.read_timeout, ro.write_timeout];
    let timeouts = match action {
        Action::Upstream(i) => refs.upstream_defs.get(i).map(|u| Timeouts {
            connect: ro.connect_timeout.unwrap_or(u.timeouts.connect),
            read: ro.read_timeout.unwrap_or(u.timeouts.read),
            write: ro.write_timeout.unwrap_or(u.timeouts.write),
        }),
        _ => None,
    };
    if !is_upstream && overrides.iter().any(Option::is_some) {
        cx.err(
            &ro.span.span,
            format!("route \"{rname}\": connect/read/write_timeout apply only to upstream routes"),
        );
    }
    if let Some(b) = ro.buffering.as_ref().filter(|b| b.v) {
        cx.err(
            &b.span,
            format!("route \"{rname}\": buffering = true is not built yet; rampart streams both directions, as buffering = false"),
        );
    }
    if !is_upstream && !ro.request_headers.is_empty() {
        cx.err(
            &ro.span.span,
            format!("route \"{rname}\": request_headers apply only to upstream routes"),
        );
    }
    Some(Route {
        name: rname.to_string(),
        action,
        rate_limits,
        cors,
        timeouts,
        access_log: ro.access_log.or(server_access_log).unwrap_or(true),
        request_headers: cx.headers(&ro.request_headers),
        response_headers: cx.headers(&ro.response_headers),
        metrics: RouteMetrics::new(server_name, rname),
    })
}
