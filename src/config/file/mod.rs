//! The file format: plain structs mirroring the TOML, each value with its
//! span, read by [`read`]. Nothing here is used on the request path; the
//! compiled form lives in [`super::snapshot`].
//!
//! Every key's meaning is documented once, on its field here, and in the
//! same words in `conf/rampart.toml`.

use std::time::Duration;

use toml_edit::ImDocument;

use super::keys::{self as k, Key};
use super::reader::{Reader, Section, Spanned};
use super::values::Rate;

mod auth;
mod limits;
mod routes;
mod servers;

use auth::read_auth;
pub use auth::Auth;
use limits::{read_conn_limit, read_zone};
pub use limits::{ConnLimit, Zone};
use routes::read_route;
use servers::read_server;

#[derive(Debug, Default)]
pub struct File {
    pub global: Global,
    pub log: Log,
    pub admin: Option<Spanned<String>>,
    pub acme: Option<Acme>,
    pub rate_limits: Vec<Zone>,
    pub conn_limits: Vec<ConnLimit>,
    pub auth: Vec<Auth>,
    pub cors: Vec<Cors>,
    pub upstreams: Vec<Upstream>,
    pub servers: Vec<Server>,
}

#[derive(Debug, Default)]
pub struct Global {
    /// Worker threads; default: number of CPU cores.
    pub threads: Option<u64>,
    /// Drain time on shutdown.
    pub grace_period: Option<Duration>,
    /// `false`: no `Server` header at all, neither ours nor the upstream's.
    pub server_header: Option<bool>,
    /// Peers whose `X-Forwarded-For` is believed (CIDRs or addresses).
    pub trusted_proxies: Vec<Spanned<String>>,
    pub pid_file: Option<Spanned<String>>,
    /// Socket through which a new process takes over the listeners (SIGUSR2).
    pub upgrade_sock: Option<Spanned<String>>,
}

#[derive(Debug, Default)]
pub struct Log {
    /// A `tracing` filter such as `"info,rampart=debug"`.
    pub level: Option<Spanned<String>>,
    /// `"json"` or `"text"` for the diagnostic log.
    pub format: Option<Spanned<String>>,
    /// `"stdout"`, `"off"` or a file path.
    pub access_log: Option<Spanned<String>>,
}

/// A reference by name to a table defined elsewhere (a route's `cors`, a
/// server's or route's `conn_limit` and `auth`), or `false`, which switches
/// an inherited one off.
#[derive(Debug)]
pub enum Reference {
    Named(Spanned<String>),
    Off,
}

#[derive(Debug)]
pub struct Cors {
    pub name: Spanned<String>,
    pub allow_origins: Vec<Spanned<String>>,
    pub allow_origins_span: Option<Spanned<()>>,
    pub allow_methods: Option<Vec<Spanned<String>>>,
    pub allow_headers: Option<Vec<Spanned<String>>>,
    pub expose_headers: Option<Vec<Spanned<String>>>,
    pub allow_credentials: Option<Spanned<bool>>,
    pub max_age: Option<Duration>,
}

#[derive(Debug)]
pub struct UpstreamServer {
    /// `host:port`.
    pub addr: Spanned<String>,
    pub weight: Option<Spanned<u64>>,
    /// Used only while every non-backup server is down.
    pub backup: bool,
}

#[derive(Debug)]
pub struct HealthCheck {
    pub path: Option<Spanned<String>>,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub healthy_threshold: Option<u64>,
    pub unhealthy_threshold: Option<u64>,
}

#[derive(Debug)]
pub struct Upstream {
    pub name: Spanned<String>,
    pub servers: Vec<UpstreamServer>,
    pub servers_span: Spanned<bool>,
    /// `"least_conn"` (default) or `"round_robin"`.
    pub balance: Option<Spanned<String>>,
    pub max_fails: Option<u64>,
    pub fail_timeout: Option<Duration>,
    /// Idle upstream connections kept open for reuse.
    pub keepalive: Option<u64>,
    pub connect_timeout: Option<Duration>,
    pub read_timeout: Option<Duration>,
    pub write_timeout: Option<Duration>,
    /// Attempts across servers.
    pub tries: Option<Spanned<u64>>,
    /// How often names among `servers` are looked up again.
    pub resolve_interval: Option<Spanned<Duration>>,
    pub tls: bool,
    pub tls_verify: Option<Spanned<bool>>,
    pub tls_ca: Option<Spanned<String>>,
    pub tls_server_name: Option<Spanned<String>>,
    pub health_check: Option<HealthCheck>,
}

#[derive(Debug)]
pub struct Tls {
    pub span: Spanned<()>,
    pub cert: Option<Spanned<String>>,
    pub key: Option<Spanned<String>>,
    pub protocols: Option<Vec<Spanned<String>>>,
    /// `true`: the certificate for `hosts` comes from `[acme]` (instead
    /// of `cert` / `key`).
    pub acme: Option<Spanned<bool>>,
}

/// `[acme]`: where certificates for `tls.acme = true` servers come from.
#[derive(Debug)]
pub struct Acme {
    pub span: Spanned<()>,
    /// Contact address given to the CA (expiry and revocation notices).
    pub email: Option<Spanned<String>>,
    /// The ACME directory URL; default Let's Encrypt's production one.
    pub directory: Option<Spanned<String>>,
    /// Account key and certificates; created with mode 0700.
    pub storage: Option<Spanned<String>>,
    /// A PEM CA that the ACME server's own certificate chains to (a
    /// private ACME server, tests).
    pub ca: Option<Spanned<String>>,
    /// Renewal starts this long before the certificate expires.
    pub renew_before: Option<Spanned<Duration>>,
    /// `"http-01"` or `"tls-alpn-01"`.
    pub challenge: Option<Spanned<String>>,
}

#[derive(Debug)]
pub struct Compression {
    pub min_length: Option<u64>,
    pub types: Option<Vec<Spanned<String>>>,
}

#[derive(Debug)]
pub struct Server {
    pub span: Spanned<()>,
    pub name: Option<Spanned<String>>,
    pub listen: Vec<Spanned<String>>,
    /// Host / SNI names; absent: any.
    pub hosts: Option<Vec<Spanned<String>>>,
    /// `true` or `{ port, status }`: every request is sent to https.
    pub https_redirect: Option<HttpsRedirect>,
    pub http2: Option<Spanned<bool>>,
    pub max_body_size: Option<u64>,
    /// Bytes buffered per request and direction for `buffering = true`.
    pub buffer_size: Option<Spanned<u64>>,
    pub client_header_timeout: Option<Duration>,
    pub client_body_timeout: Option<Duration>,
    /// `%2F` / `%5C` in paths kept (encoded) instead of answered 400.
    pub allow_encoded_slashes: Option<bool>,
    /// Request headers with `_` in the name kept instead of dropped.
    pub underscores_in_headers: Option<bool>,
    pub keepalive_timeout: Option<Duration>,
    pub security_headers: Option<bool>,
    /// `false`: no access-log lines for this server's requests (nginx `access_log off`).
    pub access_log: Option<bool>,
    pub cors: Option<Spanned<String>>,
    /// Client addresses admitted / refused: the default of the routes.
    pub access: AccessLists,
    /// The routes' default concurrency limit.
    pub conn_limit: Option<Reference>,
    /// The routes' default authentication.
    pub auth: Option<Reference>,
    /// Status or class (`"5xx"`) → a file whose contents replace the body
    /// of rampart's own error answers.
    pub error_pages: Vec<(Spanned<String>, Spanned<String>)>,
    pub tls: Option<Tls>,
    pub response_headers: Vec<(Spanned<String>, Spanned<String>)>,
    pub compression: Option<Compression>,
    pub routes: Vec<Route>,
}

/// `allow` / `deny`: lists of addresses and CIDRs; absent keys inherit.
#[derive(Debug, Default)]
pub struct AccessLists {
    pub allow: Option<Vec<Spanned<String>>>,
    pub deny: Option<Vec<Spanned<String>>>,
}

/// `allow` and `deny` of a server or route table.
fn read_access(r: &mut Reader<'_>, o: &mut Section<'_>) -> AccessLists {
    AccessLists {
        allow: o.get(k::ALLOW).and_then(|f| r.strings(&f)),
        deny: o.get(k::DENY).and_then(|f| r.strings(&f)),
    }
}

#[derive(Debug)]
pub enum Matcher {
    Exact(Spanned<String>),
    Prefix(Spanned<String>),
    Regex(Spanned<String>),
}

#[derive(Debug)]
pub struct RateLimitRef {
    pub zone: Option<Spanned<String>>,
    pub burst: Option<u64>,
    pub nodelay: Option<bool>,
    pub delay: Option<u64>,
    pub status: Option<Spanned<u64>>,
    pub span: Spanned<()>,
}

#[derive(Debug)]
pub struct Static {
    pub root: Option<Spanned<String>>,
    pub expires: Option<Duration>,
    pub immutable: Option<bool>,
    /// The file a directory serves; `false` (empty here): none, for
    /// `try_files` whose nginx original tried `$uri` only.
    pub index: Option<Spanned<String>>,
    /// Serve files and directories whose name starts with `.` (`.env`,
    /// `.git/`); `.well-known` is always served.
    pub dotfiles: Option<bool>,
    /// A file under `root` served for paths with no file.
    pub fallback: Option<Spanned<String>>,
}

#[derive(Debug)]
pub enum Action {
    Upstream(Spanned<String>),
    Static(Static, Spanned<()>),
    Respond {
        status: Option<Spanned<u64>>,
        body: Option<Spanned<String>>,
        content_type: Option<Spanned<String>>,
    },
    Redirect {
        to: Option<Spanned<String>>,
        status: Option<Spanned<u64>>,
    },
}

#[derive(Debug)]
pub struct Route {
    pub span: Spanned<()>,
    pub name: Option<Spanned<String>>,
    pub matcher: Option<Matcher>,
    pub action: Option<Action>,
    pub rate_limit: Vec<RateLimitRef>,
    /// A CORS policy, or `false` to opt out of the server's.
    pub cors: Option<Reference>,
    pub connect_timeout: Option<Duration>,
    pub read_timeout: Option<Duration>,
    pub write_timeout: Option<Duration>,
    /// `true` (the default): a request body up to the server's
    /// `buffer_size` is read before the upstream is contacted, and the
    /// response is read up to `buffer_size` ahead of the client. `false`:
    /// both stream.
    pub buffering: Option<Spanned<bool>>,
    /// `false`: no access-log lines for this route (health checks, metrics scrapes).
    pub access_log: Option<bool>,
    /// Prefix routes: what the matched prefix becomes upstream.
    pub rewrite_prefix: Option<Spanned<String>>,
    /// Regex routes: the upstream path, `$0`..`$9` from the match.
    pub rewrite: Option<Spanned<String>>,
    /// Client addresses admitted / refused (replace the server's).
    pub access: AccessLists,
    pub conn_limit: Option<Reference>,
    pub auth: Option<Reference>,
    /// Upstream routes: files under this root answer GET/HEAD first.
    pub try_files: Option<(Static, Spanned<()>)>,
    pub request_headers: Vec<(Spanned<String>, Spanned<String>)>,
    pub response_headers: Vec<(Spanned<String>, Spanned<String>)>,
}

#[derive(Debug, Default)]
pub struct HttpsRedirect {
    /// Port in the `Location`; absent: none (the client's default, 443).
    pub port: Option<Spanned<u64>>,
    /// 301 unless set.
    pub status: Option<Spanned<u64>>,
}

/// `https_redirect = true | false | { port = 8443, status = 308 }`.
fn https_redirect(r: &mut Reader<'_>, f: &super::reader::Field<'_>) -> Option<HttpsRedirect> {
    if !f.item.is_table_like() {
        if !f.item.is_bool() {
            let msg = format!(
                "`{}` must be true, false or {{ port = ..., status = ... }}",
                f.path
            );
            r.diag.error(&f.span, msg);
        }
        return f.item.as_bool()?.then(HttpsRedirect::default);
    }
    let mut t = r.table(f)?;
    let out = HttpsRedirect {
        port: t.get(k::PORT).and_then(|f| r.uint_at(&f, 65535)),
        status: t.get(k::STATUS).and_then(|f| r.uint_at(&f, 999)),
    };
    t.finish(r);
    Some(out)
}

/// Parses `src` and reads every section, recording every problem in `r`.
/// Returns `None` only when the TOML itself does not parse.
pub fn read(src: &str, r: &mut Reader<'_>) -> Option<File> {
    let doc = match ImDocument::parse(src) {
        Ok(d) => d,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            let msg = e.message().trim().to_string();
            let msg = match msg.contains("duplicate key") {
                true => super::duplicate::explain(src, span.start).unwrap_or(msg),
                false => msg,
            };
            r.diag.error(&span, format!("invalid TOML: {msg}"));
            return None;
        }
    };
    let mut top = Section::new(doc.as_table(), 0..0, String::new());
    let mut file = File::default();

    if let Some(f) = top.get(k::GLOBAL) {
        if let Some(mut o) = r.table(&f) {
            file.global = read_global(r, &mut o);
            o.finish(r);
        }
    }
    if let Some(f) = top.get(k::LOG) {
        if let Some(mut o) = r.table(&f) {
            file.log = read_log(r, &mut o);
            o.finish(r);
        }
    }
    if let Some(f) = top.get(k::ADMIN) {
        if let Some(mut o) = r.table(&f) {
            file.admin = read_admin(r, &mut o);
            o.finish(r);
        }
    }
    if let Some(f) = top.get(k::ACME) {
        if let Some(mut o) = r.table(&f) {
            file.acme = Some(read_acme(r, &mut o));
            o.finish(r);
        }
    }
    for (name, mut o) in named_tables(r, &mut top, k::RATE_LIMITS) {
        file.rate_limits.push(read_zone(r, &mut o, name));
        o.finish(r);
    }
    for (name, mut o) in named_tables(r, &mut top, k::CONN_LIMITS) {
        file.conn_limits.push(read_conn_limit(r, &mut o, name));
        o.finish(r);
    }
    for (name, mut o) in named_tables(r, &mut top, k::AUTH) {
        file.auth.push(read_auth(r, &mut o, name));
        o.finish(r);
    }
    for (name, mut o) in named_tables(r, &mut top, k::CORS) {
        file.cors.push(read_cors(r, &mut o, name));
        o.finish(r);
    }
    for (name, mut o) in named_tables(r, &mut top, k::UPSTREAMS) {
        let up = read_upstream(r, &mut o, name);
        file.upstreams.push(up);
        o.finish(r);
    }
    if let Some(f) = top.get(k::SERVERS) {
        for mut o in r.tables(&f) {
            let s = read_server(r, &mut o);
            file.servers.push(s);
            o.finish(r);
        }
    }
    top.finish(r);
    Some(file)
}

fn read_log(r: &mut Reader<'_>, o: &mut Section<'_>) -> Log {
    Log {
        level: o.get(k::LEVEL).and_then(|f| r.string(&f)),
        format: o.get(k::FORMAT).and_then(|f| r.string(&f)),
        access_log: o.get(k::ACCESS_LOG).and_then(|f| r.string(&f)),
    }
}

/// `[acme]`.
fn read_acme(r: &mut Reader<'_>, o: &mut Section<'_>) -> Acme {
    Acme {
        span: Spanned::new((), o.span.clone()),
        email: o.get(k::EMAIL).and_then(|f| r.string(&f)),
        directory: o.get(k::DIRECTORY).and_then(|f| r.string(&f)),
        storage: o.get(k::STORAGE).and_then(|f| r.string(&f)),
        ca: o.get(k::CA).and_then(|f| r.string(&f)),
        renew_before: o.get(k::RENEW_BEFORE).and_then(|f| r.duration_at(&f)),
        challenge: o.get(k::CHALLENGE).and_then(|f| r.string(&f)),
    }
}

/// `[admin] listen`.
fn read_admin(r: &mut Reader<'_>, o: &mut Section<'_>) -> Option<Spanned<String>> {
    match o.get(k::LISTEN) {
        Some(f) => r.string(&f),
        None => {
            r.missing(o, k::LISTEN);
            None
        }
    }
}

/// `key = "name"` or `key = false`; `what` names the table kind in the
/// error for any other value.
fn read_reference(
    r: &mut Reader<'_>,
    o: &mut Section<'_>,
    key: Key,
    what: &str,
) -> Option<Reference> {
    let f = o.get(key)?;
    if f.item.is_bool() {
        return match f.item.as_bool() {
            Some(false) => Some(Reference::Off),
            _ => {
                r.diag.error(
                    &f.span,
                    format!("`{}` must be a {what} name or false", f.path),
                );
                None
            }
        };
    }
    r.string(&f).map(Reference::Named)
}

/// `[cors.NAME]`.
fn read_cors(r: &mut Reader<'_>, o: &mut Section<'_>, name: Spanned<String>) -> Cors {
    let origins = o.get(k::ALLOW_ORIGINS);
    let allow_origins_span = origins.as_ref().map(|f| Spanned::new((), f.span.clone()));
    let allow_origins = match origins {
        Some(f) => r.strings(&f).unwrap_or_default(),
        None => {
            r.missing(o, k::ALLOW_ORIGINS);
            Vec::new()
        }
    };
    Cors {
        name,
        allow_origins,
        allow_origins_span,
        allow_methods: o.get(k::ALLOW_METHODS).and_then(|f| r.strings(&f)),
        allow_headers: o.get(k::ALLOW_HEADERS).and_then(|f| r.strings(&f)),
        expose_headers: o.get(k::EXPOSE_HEADERS).and_then(|f| r.strings(&f)),
        allow_credentials: o.get(k::ALLOW_CREDENTIALS).and_then(|f| r.bool_at(&f)),
        max_age: o.get(k::MAX_AGE).and_then(|f| r.duration(&f)),
    }
}

/// `[section.NAME]` tables, each with its name and span.
fn named_tables<'d>(
    r: &mut Reader<'_>,
    top: &mut Section<'d>,
    section: Key,
) -> Vec<(Spanned<String>, Section<'d>)> {
    let Some(f) = top.get(section) else {
        return Vec::new();
    };
    let Some(o) = r.table(&f) else {
        return Vec::new();
    };
    let tbl = o.tbl_ref();
    let mut out = Vec::new();
    for (name, item) in tbl.iter() {
        let key_span = tbl
            .get_key_value(name)
            .and_then(|(k, _)| k.span())
            .unwrap_or_else(|| f.span.clone());
        let field = super::reader::Field {
            item,
            key_span: key_span.clone(),
            span: key_span.clone(),
            path: format!("{section}.{name}"),
        };
        if let Some(child) = r.table(&field) {
            out.push((Spanned::new(name.to_string(), key_span), child));
        }
    }
    out
}

fn read_global(r: &mut Reader<'_>, o: &mut Section<'_>) -> Global {
    Global {
        threads: o.get(k::THREADS).and_then(|f| r.uint(&f, 1024)),
        grace_period: o.get(k::GRACE_PERIOD).and_then(|f| r.duration(&f)),
        server_header: o.get(k::SERVER_HEADER).and_then(|f| r.bool(&f)),
        trusted_proxies: o
            .get(k::TRUSTED_PROXIES)
            .and_then(|f| r.strings(&f))
            .unwrap_or_default(),
        pid_file: o.get(k::PID_FILE).and_then(|f| r.string(&f)),
        upgrade_sock: o.get(k::UPGRADE_SOCK).and_then(|f| r.string(&f)),
    }
}

fn read_upstream(r: &mut Reader<'_>, o: &mut Section<'_>, name: Spanned<String>) -> Upstream {
    let mut servers = Vec::new();
    let servers_span = match o.get(k::SERVERS) {
        Some(f) => {
            for mut s in r.tables(&f) {
                let addr = match s.get(k::ADDR) {
                    Some(f) => r.string(&f),
                    None => {
                        r.missing(&s, k::ADDR);
                        None
                    }
                };
                let weight = s.get(k::WEIGHT).and_then(|f| r.uint_at(&f, 1000));
                let backup = s.get(k::BACKUP).and_then(|f| r.bool(&f)).unwrap_or(false);
                if let Some(addr) = addr {
                    servers.push(UpstreamServer {
                        addr,
                        weight,
                        backup,
                    });
                }
                s.finish(r);
            }
            Spanned::new(true, f.span.clone())
        }
        None => {
            r.missing(o, k::SERVERS);
            Spanned::new(false, o.span.clone())
        }
    };
    let health_check = o
        .get(k::HEALTH_CHECK)
        .and_then(|f| r.table(&f))
        .map(|mut h| {
            let hc = HealthCheck {
                path: h.get(k::PATH).and_then(|f| r.string(&f)),
                interval: h.get(k::INTERVAL).and_then(|f| r.duration(&f)),
                timeout: h.get(k::TIMEOUT).and_then(|f| r.duration(&f)),
                healthy_threshold: h.get(k::HEALTHY_THRESHOLD).and_then(|f| r.uint(&f, 100)),
                unhealthy_threshold: h.get(k::UNHEALTHY_THRESHOLD).and_then(|f| r.uint(&f, 100)),
            };
            h.finish(r);
            hc
        });
    Upstream {
        name,
        servers,
        servers_span,
        balance: o.get(k::BALANCE).and_then(|f| r.string(&f)),
        max_fails: o.get(k::MAX_FAILS).and_then(|f| r.uint(&f, 1000)),
        fail_timeout: o.get(k::FAIL_TIMEOUT).and_then(|f| r.duration(&f)),
        keepalive: o.get(k::KEEPALIVE).and_then(|f| r.uint(&f, 65536)),
        connect_timeout: o.get(k::CONNECT_TIMEOUT).and_then(|f| r.duration(&f)),
        read_timeout: o.get(k::READ_TIMEOUT).and_then(|f| r.duration(&f)),
        write_timeout: o.get(k::WRITE_TIMEOUT).and_then(|f| r.duration(&f)),
        tries: o.get(k::TRIES).and_then(|f| r.uint_at(&f, 100)),
        resolve_interval: o.get(k::RESOLVE_INTERVAL).and_then(|f| r.duration_at(&f)),
        tls: o.get(k::TLS).and_then(|f| r.bool(&f)).unwrap_or(false),
        tls_verify: o.get(k::TLS_VERIFY).and_then(|f| r.bool_at(&f)),
        tls_ca: o.get(k::TLS_CA).and_then(|f| r.string(&f)),
        tls_server_name: o.get(k::TLS_SERVER_NAME).and_then(|f| r.string(&f)),
        health_check,
    }
}
