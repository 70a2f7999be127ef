//! Every key name of the configuration file, written once. The reader
//! (`config::file`) asks for keys by these constants and the nginx importer
//! (`import::translate`) writes them, so the two cannot spell a key
//! differently: a key the importer writes is one the reader reads, or the
//! importer does not compile. (Where in the file a key belongs is the
//! reader's to check: the importer's tests read every output back.)

/// A key of some table of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key(&'static str);

impl Key {
    pub const fn name(self) -> &'static str {
        self.0
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

pub const ACCESS_LOG: Key = Key("access_log");
pub const ACME: Key = Key("acme");
pub const ADDR: Key = Key("addr");
pub const ADMIN: Key = Key("admin");
pub const ALLOW: Key = Key("allow");
pub const ALLOW_CREDENTIALS: Key = Key("allow_credentials");
pub const ALLOW_ENCODED_SLASHES: Key = Key("allow_encoded_slashes");
pub const ALLOW_HEADERS: Key = Key("allow_headers");
pub const ALLOW_METHODS: Key = Key("allow_methods");
pub const ALLOW_ORIGINS: Key = Key("allow_origins");
pub const AUTH: Key = Key("auth");
pub const BACKUP: Key = Key("backup");
pub const BALANCE: Key = Key("balance");
pub const BODY: Key = Key("body");
pub const BUFFER_SIZE: Key = Key("buffer_size");
pub const BUFFERING: Key = Key("buffering");
pub const BURST: Key = Key("burst");
pub const CA: Key = Key("ca");
pub const CERT: Key = Key("cert");
pub const CHALLENGE: Key = Key("challenge");
pub const CLIENT_BODY_TIMEOUT: Key = Key("client_body_timeout");
pub const CLIENT_HEADER_TIMEOUT: Key = Key("client_header_timeout");
pub const COMPRESSION: Key = Key("compression");
pub const CONN_LIMIT: Key = Key("conn_limit");
pub const CONN_LIMITS: Key = Key("conn_limits");
pub const CONNECT_TIMEOUT: Key = Key("connect_timeout");
pub const CONTENT_TYPE: Key = Key("content_type");
pub const COPY_HEADERS: Key = Key("copy_headers");
pub const CORS: Key = Key("cors");
pub const DELAY: Key = Key("delay");
pub const DENY: Key = Key("deny");
pub const DIRECTORY: Key = Key("directory");
pub const DOTFILES: Key = Key("dotfiles");
pub const EMAIL: Key = Key("email");
pub const ERROR_PAGES: Key = Key("error_pages");
pub const EXACT: Key = Key("exact");
pub const EXPIRES: Key = Key("expires");
pub const EXPOSE_HEADERS: Key = Key("expose_headers");
pub const FAIL_TIMEOUT: Key = Key("fail_timeout");
pub const FALLBACK: Key = Key("fallback");
pub const FORMAT: Key = Key("format");
pub const FORWARD: Key = Key("forward");
pub const FORWARD_CREDENTIALS: Key = Key("forward_credentials");
pub const GLOBAL: Key = Key("global");
pub const GRACE_PERIOD: Key = Key("grace_period");
pub const HEALTH_CHECK: Key = Key("health_check");
pub const HEALTHY_THRESHOLD: Key = Key("healthy_threshold");
pub const HOSTS: Key = Key("hosts");
pub const HTPASSWD: Key = Key("htpasswd");
pub const HTTP2: Key = Key("http2");
pub const HTTPS_REDIRECT: Key = Key("https_redirect");
pub const IMMUTABLE: Key = Key("immutable");
pub const INDEX: Key = Key("index");
pub const INTERVAL: Key = Key("interval");
pub const IPV6_PREFIX: Key = Key("ipv6_prefix");
pub const KEEPALIVE: Key = Key("keepalive");
pub const KEEPALIVE_TIMEOUT: Key = Key("keepalive_timeout");
pub const KEY: Key = Key("key");
pub const LEVEL: Key = Key("level");
pub const LISTEN: Key = Key("listen");
pub const LOG: Key = Key("log");
pub const MAX: Key = Key("max");
pub const MAX_AGE: Key = Key("max_age");
pub const MAX_BODY_SIZE: Key = Key("max_body_size");
pub const MAX_FAILS: Key = Key("max_fails");
pub const MAX_KEYS: Key = Key("max_keys");
pub const MIN_LENGTH: Key = Key("min_length");
pub const NAME: Key = Key("name");
pub const NODELAY: Key = Key("nodelay");
pub const ON_STORE_ERROR: Key = Key("on_store_error");
pub const PATH: Key = Key("path");
pub const PID_FILE: Key = Key("pid_file");
pub const PORT: Key = Key("port");
pub const PREFIX: Key = Key("prefix");
pub const PROTOCOLS: Key = Key("protocols");
pub const RATE: Key = Key("rate");
pub const RATE_LIMIT: Key = Key("rate_limit");
pub const RATE_LIMITS: Key = Key("rate_limits");
pub const READ_TIMEOUT: Key = Key("read_timeout");
pub const REALM: Key = Key("realm");
pub const REDIRECT: Key = Key("redirect");
pub const REGEX: Key = Key("regex");
pub const RENEW_BEFORE: Key = Key("renew_before");
pub const REQUEST_HEADERS: Key = Key("request_headers");
pub const RESOLVE_INTERVAL: Key = Key("resolve_interval");
pub const RESPOND: Key = Key("respond");
pub const RESPONSE_HEADERS: Key = Key("response_headers");
pub const REWRITE: Key = Key("rewrite");
pub const REWRITE_PREFIX: Key = Key("rewrite_prefix");
pub const ROOT: Key = Key("root");
pub const ROUTES: Key = Key("routes");
pub const SECURITY_HEADERS: Key = Key("security_headers");
pub const SERVER_HEADER: Key = Key("server_header");
pub const SERVERS: Key = Key("servers");
pub const STATIC: Key = Key("static");
pub const STATUS: Key = Key("status");
pub const STORAGE: Key = Key("storage");
pub const STORE: Key = Key("store");
pub const STORE_TIMEOUT: Key = Key("store_timeout");
pub const THREADS: Key = Key("threads");
pub const TIMEOUT: Key = Key("timeout");
pub const TLS: Key = Key("tls");
pub const TLS_CA: Key = Key("tls_ca");
pub const TLS_SERVER_NAME: Key = Key("tls_server_name");
pub const TLS_VERIFY: Key = Key("tls_verify");
pub const TO: Key = Key("to");
pub const TRIES: Key = Key("tries");
pub const TRUSTED_PROXIES: Key = Key("trusted_proxies");
pub const TRY_FILES: Key = Key("try_files");
pub const TYPES: Key = Key("types");
pub const UNDERSCORES_IN_HEADERS: Key = Key("underscores_in_headers");
pub const UNHEALTHY_THRESHOLD: Key = Key("unhealthy_threshold");
pub const UPGRADE_SOCK: Key = Key("upgrade_sock");
pub const UPSTREAM: Key = Key("upstream");
pub const UPSTREAMS: Key = Key("upstreams");
pub const WEIGHT: Key = Key("weight");
pub const WRITE_TIMEOUT: Key = Key("write_timeout");
pub const ZONE: Key = Key("zone");
