//! Zones whose buckets live in Redis (`store = "redis://..."`), so that
//! every rampart instance using the same Redis enforces one bucket per key.
//!
//! A decision is one round trip: `limit_req.lua`, loaded once and called by
//! its SHA, does [`super::decide`]'s arithmetic for every shared zone of the
//! route at once with Redis's clock, and stores the buckets only when all of
//! them accept ("refused by one zone, counted in none", as nginx). Keys
//! expire once their bucket has drained.
//!
//! One multiplexed connection per URL carries every instance's requests
//! (pipelined; no connection per request). A supervisor task owns the
//! connection: it connects, loads the script, pings while idle, and after a
//! failure reconnects with backoff. A request never waits for that: while
//! there is no connection it gets [`StoreError::Unavailable`] at once, and
//! a decision slower than the zone's `store_timeout` is abandoned (the
//! caller then applies `on_store_error`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, ConnectionAddr, IntoConnectionInfo, Script};

/// The leaky bucket over several zones, all or nothing.
static LIMIT_REQ: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("limit_req.lua")));

/// Time allowed to connect (TCP, TLS, AUTH, SELECT) and load the script.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How often an idle healthy connection is pinged; a request's error
/// triggers a ping at once.
const PING_EVERY: Duration = Duration::from_secs(1);
const PING_TIMEOUT: Duration = Duration::from_secs(1);
/// Reconnection backoff: doubled after each failure, up to the maximum.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// Requests queued on the connection before callers wait (the default, 50,
/// is small for a gateway's request rate).
const PIPELINE: usize = 4096;

/// Checks a `store` URL without connecting; returns `host:port/db` for
/// logs (the URL itself may hold a password).
pub fn check_url(url: &str) -> Result<String, String> {
    if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
        return Err(format!(
            "\"{}\": expected \"local\" or a redis:// or rediss:// URL",
            redact(url)
        ));
    }
    let info = url
        .into_connection_info()
        .map_err(|e| format!("invalid Redis URL \"{}\": {e}", redact(url)))?;
    let db = info.redis_settings().db();
    match info.addr() {
        ConnectionAddr::Tcp(host, port) => Ok(format!("{host}:{port}/{db}")),
        ConnectionAddr::TcpTls { insecure: true, .. } => {
            Err("rediss:// with #insecure (no certificate check) is not supported".into())
        }
        ConnectionAddr::TcpTls { host, port, .. } => Ok(format!("{host}:{port}/{db} (TLS)")),
        _ => Err("expected a redis:// or rediss:// URL".into()),
    }
}

/// The URL with any credentials replaced, for error messages: everything
/// before the last `@` after the scheme.
fn redact(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(s) => (&url[..s + 3], &url[s + 3..]),
        None => ("", url),
    };
    match rest.rfind('@') {
        Some(at) => format!("{scheme}***@{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// Why a store could not decide.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No connection right now (never connected yet, or reconnecting).
    #[error("not connected")]
    Unavailable,
    /// No answer within `store_timeout`.
    #[error("no answer in time")]
    Timeout,
    #[error("{0}")]
    Redis(#[from] redis::RedisError),
    /// An answer the script cannot give (another program's key of the
    /// same name, a changed script).
    #[error("unexpected reply")]
    BadReply,
}

/// The script's verdict over a route's shared zones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shared {
    /// Every zone accepted; each zone's new excess (milli), in order.
    Accept(Vec<u64>),
    /// Zone `zone` (index in the request) refused with this excess; no
    /// bucket was changed.
    Reject { zone: usize, excess: u64 },
}

/// One bucket to decide on: its Redis key, the zone's rate (milli-requests
/// per second) and `burst * 1000`.
pub struct Check<'a> {
    pub key: &'a str,
    pub rate: u64,
    pub burst: u64,
}

/// A Redis server's connection and its supervisor.
pub struct Store {
    /// `None`: the URL did not make a client (the configuration checks
    /// it, so never in practice): the store stays unavailable and
    /// `on_store_error` decides, rather than the zone quietly turning local.
    client: Option<Client>,
    /// `host:port/db`, for logs.
    label: String,
    conn: ArcSwapOption<MultiplexedConnection>,
    /// Set once the supervisor task runs (it starts on first use: it needs
    /// the runtime the requests run on).
    started: AtomicBool,
    /// A request saw an error: the supervisor pings now.
    trouble: tokio::sync::Notify,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("label", &self.label)
            .field("connected", &self.conn.load().is_some())
            .finish()
    }
}

impl Store {
    fn new(url: &str, label: &str) -> Store {
        // rediss:// builds its rustls config from the process's provider;
        // pingora installs ring when it builds a TLS listener or connector,
        // which a configuration need not have.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = Client::open(url)
            .inspect_err(|e| tracing::error!(store = %label, "rate-limit store: {e}"))
            .ok();
        Store {
            client,
            label: label.to_string(),
            conn: ArcSwapOption::const_empty(),
            started: AtomicBool::new(false),
            trouble: tokio::sync::Notify::new(),
        }
    }

    pub fn connected(&self) -> bool {
        self.conn.load().is_some()
    }

    /// Decides on `checks` in one round trip, within `timeout`.
    pub async fn decide(
        self: &Arc<Self>,
        checks: &[Check<'_>],
        timeout: Duration,
    ) -> Result<Shared, StoreError> {
        self.start();
        let Some(conn) = self.conn.load_full() else {
            return Err(StoreError::Unavailable);
        };
        let mut conn = MultiplexedConnection::clone(&conn);
        let mut call = LIMIT_REQ.prepare_invoke();
        for c in checks {
            call.key(c.key).arg(c.rate).arg(c.burst);
        }
        let reply =
            match tokio::time::timeout(timeout, call.invoke_async::<Vec<i64>>(&mut conn)).await {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => return Err(self.failed(e.into())),
                Err(_) => return Err(self.failed(StoreError::Timeout)),
            };
        parse_reply(&reply, checks.len()).ok_or_else(|| self.failed(StoreError::BadReply))
    }

    fn failed(&self, e: StoreError) -> StoreError {
        self.trouble.notify_one();
        e
    }

    /// Starts the supervisor on the current runtime, once.
    fn start(self: &Arc<Self>) {
        if !self.started.swap(true, Ordering::AcqRel) {
            tokio::spawn(supervise(Arc::downgrade(self)));
        }
    }
}

/// `{0, e1..eN}` or `{i, e}` (see `limit_req.lua`).
fn parse_reply(reply: &[i64], n: usize) -> Option<Shared> {
    match reply {
        [0, excess @ ..] if excess.len() == n && excess.iter().all(|e| *e >= 0) => {
            Some(Shared::Accept(excess.iter().map(|e| *e as u64).collect()))
        }
        [i, e] if *i >= 1 && (*i as usize) <= n && *e >= 0 => Some(Shared::Reject {
            zone: *i as usize - 1,
            excess: *e as u64,
        }),
        _ => None,
    }
}

/// Keeps a store connected until the store is dropped (its zones left the
/// configuration): connects and loads the script, then pings every
/// [`PING_EVERY`] or at once when a request saw an error; a failed ping
/// drops the connection (requests then get `Unavailable` at once) and
/// reconnection starts, with backoff.
async fn supervise(store: Weak<Store>) {
    let mut backoff = BACKOFF_MIN;
    let mut reported_down = false;
    loop {
        let Some(s) = store.upgrade() else { return };
        let Some(conn) = s.conn.load_full() else {
            let Some(client) = &s.client else {
                return;
            };
            match connect(client).await {
                Ok(conn) => {
                    tracing::info!(store = %s.label, "rate-limit store connected");
                    s.conn.store(Some(Arc::new(conn)));
                    backoff = BACKOFF_MIN;
                    reported_down = false;
                }
                Err(e) => {
                    if !reported_down {
                        tracing::warn!(store = %s.label, "rate-limit store unreachable: {e}; retrying in the background");
                        reported_down = true;
                    }
                    drop(s);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
            continue;
        };
        tokio::select! {
            _ = s.trouble.notified() => {}
            _ = tokio::time::sleep(PING_EVERY) => {}
        }
        let mut c = MultiplexedConnection::clone(&conn);
        let ping = redis::cmd("PING");
        match tokio::time::timeout(PING_TIMEOUT, ping.query_async::<String>(&mut c)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => s.lost(&conn, &e.to_string()),
            Err(_) => s.lost(&conn, "no answer to PING"),
        }
    }
}

impl Store {
    /// Drops `conn` (unless already replaced): requests stop waiting on it.
    fn lost(&self, conn: &Arc<MultiplexedConnection>, why: &str) {
        let cur = self.conn.load();
        if cur.as_ref().is_some_and(|c| Arc::ptr_eq(c, conn)) {
            self.conn.store(None);
            tracing::warn!(store = %self.label, "rate-limit store connection lost: {why}; reconnecting in the background");
        }
    }
}

/// A new connection with the script loaded.
async fn connect(client: &Client) -> Result<MultiplexedConnection, StoreError> {
    let cfg = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(CONNECT_TIMEOUT))
        .set_pipeline_buffer_size(PIPELINE);
    let work = async {
        let mut conn = client
            .get_multiplexed_async_connection_with_config(&cfg)
            .await?;
        LIMIT_REQ.load_async(&mut conn).await?;
        Ok::<_, redis::RedisError>(conn)
    };
    match tokio::time::timeout(CONNECT_TIMEOUT * 2, work).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(StoreError::Timeout),
    }
}

/// The Redis stores of the configuration, by URL: carried over reloads
/// (a reload that keeps a URL keeps its connection) and dropped with the
/// last zone that names them.
#[derive(Default)]
pub struct Stores {
    by_url: Mutex<HashMap<String, Arc<Store>>>,
}

/// By label: the URLs may hold passwords.
impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let map = self.by_url.lock().unwrap_or_else(|p| p.into_inner());
        f.debug_list().entries(map.values()).finish()
    }
}

impl Stores {
    /// The store for `url` (validated by the configuration).
    pub fn get(&self, url: &str, label: &str) -> Arc<Store> {
        let mut map = self.by_url.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(url.to_string())
            .or_insert_with(|| Arc::new(Store::new(url, label)))
            .clone()
    }

    /// Starts the supervisor of every store not yet started, on the
    /// current runtime.
    pub fn connect_all(&self) {
        let map = self.by_url.lock().unwrap_or_else(|p| p.into_inner());
        for s in map.values() {
            s.start();
        }
    }

    /// Forgets the stores of URLs no zone names any more.
    pub fn retain(&self, urls: &[&str]) {
        let mut map = self.by_url.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|url, _| urls.contains(&url.as_str()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_without_connecting() {
        assert_eq!(
            check_url("redis://127.0.0.1:6379/0").unwrap(),
            "127.0.0.1:6379/0"
        );
        assert_eq!(
            check_url("redis://cache.internal").unwrap(),
            "cache.internal:6379/0"
        );
        assert_eq!(
            check_url("rediss://:secret@cache.internal:6380/2").unwrap(),
            "cache.internal:6380/2 (TLS)"
        );
        for bad in [
            "http://127.0.0.1:6379",
            "redis://",
            "redis://127.0.0.1:99999",
            "redis://127.0.0.1:6379/notanumber",
            "rediss://cache.internal#insecure",
            "unix:///tmp/redis.sock",
            "127.0.0.1:6379",
        ] {
            assert!(check_url(bad).is_err(), "{bad} accepted");
        }
        for leaky in ["http://user:hunter2@cache:6379", "cache:hunter2@host:6379"] {
            let e = check_url(leaky).unwrap_err();
            assert!(!e.contains("hunter2"), "{e}");
        }
    }

    #[test]
    fn replies_are_checked() {
        assert_eq!(
            parse_reply(&[0, 1000, 0], 2),
            Some(Shared::Accept(vec![1000, 0]))
        );
        assert_eq!(
            parse_reply(&[2, 21000], 2),
            Some(Shared::Reject {
                zone: 1,
                excess: 21000
            })
        );
        assert_eq!(parse_reply(&[0, 1000], 2), None);
        assert_eq!(parse_reply(&[3, 1000], 2), None);
        assert_eq!(parse_reply(&[0, -1], 1), None);
        assert_eq!(parse_reply(&[], 1), None);
    }
}
