//! Every default of the configuration file, in one place. The compiler
//! reads these constants; [`documented`] spells them as the README's (and
//! the contract's) "Defaults" table does, and a test holds the tables
//! against it, so that the code, the README and the contract cannot drift
//! apart unnoticed.

use std::time::Duration;

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub const GRACE_PERIOD: Duration = secs(30);
pub const SERVER_HEADER: bool = false;
pub const LOG_LEVEL: &str = "info";
pub const LOG_FORMAT: &str = "text";
pub const ACCESS_LOG: &str = "stdout";

pub const ZONE_KEY: &str = "client_ip";
pub const ZONE_MAX_KEYS: u64 = 100_000;
pub const ZONE_IPV6_PREFIX: u8 = 64;
pub const ZONE_STORE: &str = "local";
pub const ZONE_ON_STORE_ERROR: &str = "allow";
pub const ZONE_STORE_TIMEOUT: Duration = Duration::from_millis(50);
pub const RATE_LIMIT_BURST: u64 = 0;
pub const RATE_LIMIT_NODELAY: bool = false;
pub const RATE_LIMIT_STATUS: u16 = 429;

pub const BALANCE: &str = "least_conn";
pub const MAX_FAILS: u64 = 1;
pub const FAIL_TIMEOUT: Duration = secs(10);
pub const KEEPALIVE: u64 = 32;
/// Connect, read and write timeouts to an upstream (nginx's 60 s each).
pub const UPSTREAM_TIMEOUT: Duration = secs(60);
pub const TRIES: u64 = 3;
pub const RESOLVE_INTERVAL: Duration = secs(30);
pub const TLS_VERIFY: bool = true;
pub const HEALTH_PATH: &str = "/";
pub const HEALTH_INTERVAL: Duration = secs(5);
pub const HEALTH_TIMEOUT: Duration = secs(2);
pub const HEALTHY_THRESHOLD: u64 = 2;
pub const UNHEALTHY_THRESHOLD: u64 = 3;

/// `max_body_size` (nginx's `client_max_body_size 1m`).
pub const MAX_BODY_SIZE: u64 = 1 << 20;
pub const BUFFERING: bool = true;
pub const BUFFER_SIZE: u64 = 1 << 20;
pub const CLIENT_HEADER_TIMEOUT: Duration = secs(60);
pub const CLIENT_BODY_TIMEOUT: Duration = secs(60);
pub const KEEPALIVE_TIMEOUT: Duration = secs(75);
pub const SECURITY_HEADERS: bool = true;
pub const ACCESS_LOG_ON: bool = true;
pub const ALLOW_ENCODED_SLASHES: bool = false;
pub const UNDERSCORES_IN_HEADERS: bool = false;
pub const HTTPS_REDIRECT_STATUS: u16 = 301;
pub const COMPRESSION_MIN_LENGTH: u64 = 1024;
pub const COMPRESSION_TYPES: [&str; 7] = [
    "text/html",
    "text/plain",
    "text/css",
    "application/json",
    "application/javascript",
    "text/xml",
    "application/xml",
];

pub const REDIRECT_STATUS: u16 = 302;
pub const RESPOND_STATUS: u16 = 200;
pub const RESPOND_CONTENT_TYPE: &str = "text/plain; charset=utf-8";
pub const STATIC_INDEX: &str = "index.html";
pub const STATIC_DOTFILES: bool = false;

pub const CONN_LIMIT_STATUS: u16 = 503;

pub const AUTH_FORWARD_CREDENTIALS: bool = false;
pub const AUTH_TIMEOUT: Duration = secs(5);

pub const ACME_DIRECTORY: &str = "https://acme-v02.api.letsencrypt.org/directory";
pub const ACME_RENEW_BEFORE: Duration = secs(30 * 86_400);
pub const ACME_CHALLENGE: &str = "http-01";

pub const CORS_METHODS: [&str; 3] = ["GET", "HEAD", "POST"];
pub const CORS_MAX_AGE: Duration = secs(3600);

/// The defaults the tables list, spelled as they spell them: key (with the
/// table's `route` / `server` prefix where it has one) and value.
pub fn documented() -> Vec<(&'static str, String)> {
    let s = |v: &str| format!("\"{v}\"");
    vec![
        ("global.grace_period", duration(GRACE_PERIOD)),
        ("global.server_header", SERVER_HEADER.to_string()),
        ("global.trusted_proxies", "[]".into()),
        ("log.level", s(LOG_LEVEL)),
        ("log.format", s(LOG_FORMAT)),
        ("log.access_log", s(ACCESS_LOG)),
        ("rate_limits.*.key", s(ZONE_KEY)),
        ("rate_limits.*.max_keys", ZONE_MAX_KEYS.to_string()),
        ("rate_limits.*.ipv6_prefix", ZONE_IPV6_PREFIX.to_string()),
        ("rate_limits.*.store", s(ZONE_STORE)),
        ("rate_limits.*.on_store_error", s(ZONE_ON_STORE_ERROR)),
        ("rate_limits.*.store_timeout", duration(ZONE_STORE_TIMEOUT)),
        ("route rate_limit.burst", RATE_LIMIT_BURST.to_string()),
        ("route rate_limit.nodelay", RATE_LIMIT_NODELAY.to_string()),
        ("route rate_limit.status", RATE_LIMIT_STATUS.to_string()),
        ("upstreams.*.balance", s(BALANCE)),
        ("upstreams.*.max_fails", MAX_FAILS.to_string()),
        ("upstreams.*.fail_timeout", duration(FAIL_TIMEOUT)),
        ("upstreams.*.keepalive", KEEPALIVE.to_string()),
        ("upstreams.*.connect_timeout", duration(UPSTREAM_TIMEOUT)),
        ("upstreams.*.read_timeout", duration(UPSTREAM_TIMEOUT)),
        ("upstreams.*.write_timeout", duration(UPSTREAM_TIMEOUT)),
        ("upstreams.*.tries", TRIES.to_string()),
        ("upstreams.*.resolve_interval", duration(RESOLVE_INTERVAL)),
        ("server max_body_size", size(MAX_BODY_SIZE)),
        ("route buffering", BUFFERING.to_string()),
        ("server buffer_size", size(BUFFER_SIZE)),
        (
            "server client_header_timeout",
            duration(CLIENT_HEADER_TIMEOUT),
        ),
        ("server client_body_timeout", duration(CLIENT_BODY_TIMEOUT)),
        ("server keepalive_timeout", duration(KEEPALIVE_TIMEOUT)),
        ("server security_headers", SECURITY_HEADERS.to_string()),
        (
            "server allow_encoded_slashes",
            ALLOW_ENCODED_SLASHES.to_string(),
        ),
        (
            "server underscores_in_headers",
            UNDERSCORES_IN_HEADERS.to_string(),
        ),
        ("static.dotfiles", STATIC_DOTFILES.to_string()),
        ("cors.*.max_age", duration(CORS_MAX_AGE)),
        ("conn_limits.*.status", CONN_LIMIT_STATUS.to_string()),
        (
            "auth.*.forward_credentials",
            AUTH_FORWARD_CREDENTIALS.to_string(),
        ),
        ("auth.*.timeout", duration(AUTH_TIMEOUT)),
        ("acme.renew_before", duration(ACME_RENEW_BEFORE)),
        ("acme.challenge", s(ACME_CHALLENGE)),
    ]
}

/// A duration in the file's notation, in its largest whole unit: `"75s"`,
/// `"1h"`.
fn duration(d: Duration) -> String {
    let (ms, s) = (d.as_millis(), d.as_secs());
    let text = match () {
        _ if d.subsec_millis() != 0 => format!("{ms}ms"),
        _ if s != 0 && s % 86_400 == 0 => format!("{}d", s / 86_400),
        _ if s != 0 && s % 3600 == 0 => format!("{}h", s / 3600),
        _ if s != 0 && s % 60 == 0 && s >= 3600 => format!("{}m", s / 60),
        _ => format!("{s}s"),
    };
    format!("\"{text}\"")
}

/// A size in the file's notation: `"1M"`.
fn size(n: u64) -> String {
    let text = match () {
        _ if n != 0 && n.is_multiple_of(1 << 20) => format!("{}M", n >> 20),
        _ if n != 0 && n.is_multiple_of(1 << 10) => format!("{}K", n >> 10),
        _ => n.to_string(),
    };
    format!("\"{text}\"")
}

#[cfg(test)]
mod tests;
