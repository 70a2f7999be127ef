//! The compiled configuration: immutable, validated, with every name
//! resolved to an index and every regex compiled. If a value of these types
//! exists it is usable as is — the request path never re-checks, parses or
//! looks anything up by name. Never (de)serialized: the file format lives in
//! [`super::file`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use ipnet::IpNet;
use pingora::http::WireHeaderName;
use rustls::sign::CertifiedKey;

use super::values::Rate;
use crate::routing::{HostTable, RouteTable};

/// What a snapshot was compiled from.
#[derive(Debug)]
pub struct Inputs {
    pub text: String,
    pub world: super::resolve::Resolved,
}

/// One whole configuration, swapped atomically on reload.
#[derive(Debug)]
pub struct Snapshot {
    /// The file this came from, as given on the command line.
    pub source: PathBuf,
    /// SHA-256 of the file's bytes (hex, first 16 chars), for `rampart_config_info`.
    pub hash: String,
    /// The file's text and what it named outside itself, as compiled: a
    /// DNS refresh compiles them again with new addresses.
    pub inputs: Arc<Inputs>,
    pub global: Global,
    pub log: Log,
    pub admin: Option<SocketAddr>,
    pub acme: Option<AcmeSettings>,
    pub zones: Vec<Zone>,
    pub conn_limits: Vec<ConnLimit>,
    pub auths: Vec<crate::auth::Auth>,
    pub cors: Vec<CorsPolicy>,
    pub upstreams: Vec<Upstream>,
    pub servers: Vec<Server>,
    pub listeners: Vec<Listener>,
}

/// A concurrency limit (nginx `limit_conn`): at most `max` requests (and
/// open tunnels) in flight per key.
#[derive(Debug)]
pub struct ConnLimit {
    pub name: String,
    pub key: ZoneKey,
    pub max: u64,
    pub status: u16,
}

#[derive(Debug)]
pub struct Global {
    pub threads: usize,
    pub grace_period: Duration,
    pub server_header: bool,
    pub trusted_proxies: Vec<IpNet>,
    pub pid_file: Option<PathBuf>,
    /// Where a new process (`rampart run --upgrade`) receives the listening
    /// sockets on SIGUSR2.
    pub upgrade_sock: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLog {
    Off,
    Stdout,
    File(PathBuf),
}

#[derive(Debug)]
pub struct Log {
    pub level: String,
    pub format: LogFormat,
    pub access_log: AccessLog,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZoneKey {
    ClientIp,
    Host,
    Header(HeaderName),
}

#[derive(Debug)]
pub struct Zone {
    pub name: String,
    pub rate: Rate,
    pub key: ZoneKey,
    pub max_keys: usize,
    /// Leading bits of an IPv6 client address that make its key: a host
    /// given a /64 has 2^64 addresses, and keyed per address it would have
    /// unlimited requests and could evict everyone else's buckets.
    pub ipv6_prefix: u8,
    /// Buckets in Redis, shared by every instance using it; `None`: in this
    /// process.
    pub shared: Option<SharedStore>,
}

/// A zone's `store = "redis://..."` with its failure handling.
#[derive(Clone, PartialEq, Eq)]
pub struct SharedStore {
    /// The URL as written (it may hold a password: never logged; see
    /// [`SharedStore::label`]).
    pub url: String,
    /// `host:port/db`, for logs.
    pub label: String,
    pub on_error: OnStoreError,
    pub timeout: Duration,
}

/// Without the URL, which may hold a password.
impl std::fmt::Debug for SharedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedStore")
            .field("store", &self.label)
            .field("on_error", &self.on_error)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// `on_store_error`: what a request gets when the store cannot decide in
/// time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnStoreError {
    /// Served as if the zone accepted it (fail open).
    Allow,
    /// Refused with the route's rate-limit status.
    Deny,
    /// Decided by this instance's own bucket for the key, same rate.
    Local,
}

/// An allowed origin: exact (`https://app.example.com`) or one wildcard
/// label (`https://*.example.com`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginPattern {
    Exact(String),
    Wildcard {
        scheme_and_prefix: String,
        suffix: String,
    },
}

#[derive(Debug)]
pub struct CorsPolicy {
    pub name: String,
    pub any_origin: bool,
    pub origins: Vec<OriginPattern>,
    pub allow_methods: Vec<String>,
    pub allow_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub allow_credentials: bool,
    pub max_age: Duration,
    /// The response header values, joined once at load.
    pub values: CorsValues,
}

/// Precomputed CORS header values.
#[derive(Debug, Clone)]
pub struct CorsValues {
    pub methods: HeaderValue,
    pub headers: Option<HeaderValue>,
    pub expose: Option<HeaderValue>,
    pub max_age: HeaderValue,
}

impl CorsValues {
    pub fn new(
        methods: &[String],
        headers: &[String],
        expose: &[String],
        max_age: Duration,
    ) -> Self {
        let join = |l: &[String]| -> Option<HeaderValue> {
            (!l.is_empty())
                .then(|| HeaderValue::from_str(&l.join(", ")).ok())
                .flatten()
        };
        CorsValues {
            methods: join(methods).unwrap_or(HeaderValue::from_static("GET, HEAD, POST")),
            headers: join(headers),
            expose: join(expose),
            max_age: HeaderValue::from(max_age.as_secs()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Balance {
    LeastConn,
    RoundRobin,
}

/// Where an upstream server is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerAddr {
    Tcp(SocketAddr),
    /// `unix:/run/app/gunicorn.sock`: the usual gunicorn/uvicorn deployment.
    Unix(std::path::PathBuf),
}

#[derive(Debug, Clone)]
pub struct UpstreamServer {
    /// The metrics label and what identifies the server across reloads:
    /// as written for an IP address or socket (`127.0.0.1:8000`,
    /// `unix:/run/app.sock`), the address for a name's server
    /// (`10.0.0.5:8000`); as written for a name that does not resolve.
    pub addr: String,
    /// Resolved at load; `None` if the name did not resolve (every attempt
    /// is then a connect error, logged at load).
    pub socket: Option<PeerAddr>,
    /// Host part, for TLS SNI.
    pub host: String,
    pub weight: u32,
    pub backup: bool,
}

#[derive(Debug, Clone)]
pub struct UpstreamTls {
    pub verify: bool,
    /// Trust anchors instead of the system roots.
    pub ca: Option<Arc<pingora::protocols::tls::CaType>>,
    pub server_name: Option<String>,
}

#[derive(Debug, Clone)]
pub struct HealthCheck {
    pub path: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
}

#[derive(Debug)]
pub struct Upstream {
    pub name: String,
    /// One per address: a name's entry is as many servers as it has
    /// addresses.
    pub servers: Vec<UpstreamServer>,
    /// The entries written as names (`app:8000`), looked up again every
    /// `resolve_interval`.
    pub names: Vec<String>,
    pub resolve_interval: Duration,
    pub balance: Balance,
    pub max_fails: u32,
    pub fail_timeout: Duration,
    pub keepalive: usize,
    pub timeouts: Timeouts,
    pub tries: usize,
    pub tls: Option<UpstreamTls>,
    pub health_check: Option<HealthCheck>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    pub read: Duration,
    pub write: Duration,
}

/// A listen address and the servers that share it (the first is the default).
#[derive(Debug)]
pub struct Listener {
    pub addr: SocketAddr,
    pub tls: bool,
    /// TLS versions offered (TLS listeners).
    pub protocols: Vec<TlsVersion>,
    pub http2: bool,
    pub hosts: HostTable,
    /// The whole-head deadline: the longest `client_header_timeout` of the
    /// servers on this address (which one serves the request is not known
    /// before its `Host` has been read).
    pub client_header_timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    V1_2,
    V1_3,
}

#[derive(Debug)]
pub struct ServerTls {
    pub protocols: Vec<TlsVersion>,
    pub certificate: Certificate,
}

/// Where a TLS server's certificate comes from.
#[derive(Debug)]
pub enum Certificate {
    /// `cert` / `key`, loaded with the configuration.
    Files {
        cert_path: PathBuf,
        key_path: PathBuf,
        key: Arc<CertifiedKey>,
    },
    /// `acme = true`: obtained and renewed for the server's `hosts` (the
    /// current one lives in `crate::acme`, outside the snapshot).
    Acme { hosts: Vec<String> },
}

impl Certificate {
    /// The same value for two servers that present the same certificate
    /// (a request may then move between them: no 421).
    pub fn identity(&self, server: ServerId) -> (Option<&std::path::Path>, Option<ServerId>) {
        match self {
            Certificate::Files { cert_path, .. } => (Some(cert_path), None),
            Certificate::Acme { .. } => (None, Some(server)),
        }
    }
}

/// `[acme]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeSettings {
    pub email: Option<String>,
    pub directory: String,
    pub storage: PathBuf,
    /// The PEM CA the ACME server's certificate chains to (instead of the
    /// system's roots).
    pub ca: Option<PathBuf>,
    pub renew_before: Duration,
    pub challenge: AcmeChallenge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcmeChallenge {
    /// `/.well-known/acme-challenge/<token>` on the plain-HTTP listeners.
    Http01,
    /// A certificate for ALPN `acme-tls/1` on the TLS listener.
    TlsAlpn01,
}

#[derive(Debug)]
pub struct Compression {
    pub min_length: u64,
    pub types: Vec<String>,
}

/// A header to set, already validated as a legal name and value. The name
/// keeps the config's spelling for HTTP/1 and is parsed once, here: setting
/// it on a request neither parses nor copies.
pub type Header = (WireHeaderName, HeaderValue);

/// Where and how `https_redirect` sends a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpsRedirect {
    /// Written into the `Location` when set (never 443).
    pub port: Option<u16>,
    pub status: u16,
}

#[derive(Debug)]
pub struct Server {
    pub name: String,
    /// Bodies for rampart's own error answers.
    pub error_pages: crate::error_pages::ErrorPages,
    pub listen: Vec<SocketAddr>,
    /// Host / SNI patterns as written (lowercase); `None` = any.
    pub hosts: Option<Vec<String>>,
    /// The `Host` sent upstream for a request that names none (HTTP/1.0):
    /// the first of `hosts` that is a name, not a pattern (nginx's first
    /// `server_name`). `None`: the address the client connected to.
    pub host_for_hostless: Option<HeaderValue>,
    /// Every request answered with a redirect to https.
    pub https_redirect: Option<HttpsRedirect>,
    pub http2: bool,
    /// `None` = unlimited.
    pub max_body_size: Option<u64>,
    /// Per request and direction, for routes with `buffering`.
    pub buffer_size: usize,
    pub client_header_timeout: Duration,
    pub client_body_timeout: Duration,
    /// `%2F` / `%5C` in a path kept encoded (else 400); see `request_path`.
    pub allow_encoded_slashes: bool,
    /// Request headers named with `_` forwarded (else dropped).
    pub underscores_in_headers: bool,
    pub keepalive_timeout: Duration,
    pub security_headers: bool,
    /// Whether requests no route matched are written to the access log
    /// (and the default of the server's routes).
    pub access_log: bool,
    pub cors: Option<CorsId>,
    pub tls: Option<ServerTls>,
    pub response_headers: Vec<Header>,
    pub compression: Option<Compression>,
    pub routes: RouteTable,
}

#[derive(Debug, Clone)]
pub struct RateLimit {
    pub zone: ZoneId,
    /// Rate, burst and delay in the limiter's units.
    pub limit: crate::ratelimit::Limit,
    pub status: u16,
}

#[derive(Debug, Clone)]
pub struct Static {
    /// Canonical (symlinks resolved) when it existed at load.
    pub root: PathBuf,
    pub expires: Option<Duration>,
    pub immutable: bool,
    /// Empty: directories are never served (`try_files` with `index = false`).
    pub index: String,
    /// `Cache-Control` from `expires` / `immutable`.
    pub cache_control: Option<HeaderValue>,
    /// Bytes of the request path to strip (the matched prefix).
    pub strip: usize,
    /// Names starting with `.` are served (else 404, `.well-known` aside).
    pub dotfiles: bool,
    /// The file (relative to `root`) a path with no file serves: a
    /// single-page app's router (nginx `try_files $uri /index.html`).
    pub fallback: Option<String>,
}

/// One piece of a redirect target template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Lit(String),
    Host,
    Uri,
    Path,
    Query,
}

#[derive(Debug)]
pub enum Action {
    Upstream(UpstreamId),
    Static(Static),
    Respond {
        status: u16,
        body: Bytes,
        content_type: HeaderValue,
    },
    Redirect {
        to: Vec<Piece>,
        status: u16,
    },
}

/// A route's CORS policy after inheritance from its server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CorsChoice {
    None,
    Policy(CorsId),
}

#[derive(Debug)]
pub struct Route {
    pub name: String,
    pub action: Action,
    pub rate_limits: Vec<RateLimit>,
    pub cors: CorsChoice,
    /// Upstream timeouts with route overrides applied (for upstream actions).
    pub timeouts: Option<Timeouts>,
    /// Whether requests of this route are written to the access log.
    pub access_log: bool,
    /// Client addresses refused (403): the route's `allow`/`deny`, else
    /// the server's.
    pub access: crate::access_list::AccessList,
    /// What the path becomes upstream (`rewrite_prefix` / `rewrite`).
    pub rewrite: Option<crate::rewrite::Rewrite>,
    /// The route's concurrency limit, else the server's.
    pub conn_limit: Option<ConnLimitId>,
    /// Who may use the route: its `auth`, else the server's.
    pub auth: Option<AuthId>,
    /// Upstream routes: files under this root answer GET and HEAD first
    /// (`try_files`), everything else is proxied.
    pub try_files: Option<Static>,
    /// Request bodies read before the upstream is contacted, responses
    /// read ahead of the client, each up to the server's `buffer_size`.
    pub buffering: bool,
    pub request_headers: Vec<Header>,
    pub response_headers: Vec<Header>,
}

impl Snapshot {
    /// The listener a connection arrived on, by id.
    pub fn listener_index(&self, local: Option<SocketAddr>) -> Option<ListenerId> {
        let l = self.listener_for(local)?;
        self.listeners
            .iter()
            .position(|x| std::ptr::eq(x, l))
            .map(ListenerId)
    }

    /// The server that answers a connection to `local` before a request on
    /// it could be read: its address's first server.
    pub fn default_server(&self, local: Option<SocketAddr>) -> Option<&Server> {
        let l = self.listener_for(local)?;
        self.servers.get(l.hosts.default_server().0)
    }

    /// The listener a connection arrived on, by its local address.
    /// `0.0.0.0:P` / `[::]:P` listeners match any local IP on port P.
    pub fn listener_for(&self, local: Option<SocketAddr>) -> Option<&Listener> {
        let local = local?;
        self.listeners.iter().find(|l| l.addr == local).or_else(|| {
            self.listeners
                .iter()
                .find(|l| l.addr.ip().is_unspecified() && l.addr.port() == local.port())
        })
    }
}

/// Typed indexes into a snapshot's tables (and the live configuration's
/// tables kept parallel to them): an [`UpstreamId`] indexes
/// `Snapshot::upstreams` and never a zone, whatever both are made of.
macro_rules! table_id {
    ($(#[$doc:meta])* $id:ident: $($table:ty),+) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $id(pub usize);

        $crate::config::snapshot::indexed_by!($id: $($table),+);
    };
}

/// `Vec<T>` and `[T]` indexed by a typed id.
macro_rules! indexed_by {
    ($id:ty: $($table:ty),+) => {
        $(impl std::ops::Index<$id> for [$table] {
            type Output = $table;
            fn index(&self, id: $id) -> &$table {
                &self[id.0]
            }
        }

        impl std::ops::Index<$id> for Vec<$table> {
            type Output = $table;
            fn index(&self, id: $id) -> &$table {
                &self[id.0]
            }
        })+
    };
}
pub(crate) use indexed_by;

table_id!(
    /// A server: `Snapshot::servers`, `LiveConfig::metrics`.
    ServerId: Server
);
table_id!(
    /// A listen address: `Snapshot::listeners`.
    ListenerId: Listener
);
table_id!(
    /// An upstream: `Snapshot::upstreams`, `LiveConfig::pools`.
    UpstreamId: Upstream
);
table_id!(
    /// A rate-limit zone: `Snapshot::zones`, `LiveConfig::zones`.
    ZoneId: Zone
);
table_id!(
    /// A CORS policy: `Snapshot::cors`.
    CorsId: CorsPolicy
);
table_id!(
    /// An `[auth.*]` table: `Snapshot::auths`, `LiveConfig::auths`.
    AuthId: crate::auth::Auth
);
table_id!(
    /// A concurrency limit: `Snapshot::conn_limits`, `LiveConfig::conn_limits`.
    ConnLimitId: ConnLimit
);
