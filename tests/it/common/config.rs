//! Test configurations. [`Config`] starts from what every test needs — a
//! short grace period, quiet logs, the admin listener on `{ADMIN}`, one
//! server named "main" on `{PORT}` — so that a test states only the keys it
//! is about. [`Gateway::start`] fills in the two ports.

use std::fmt::Write as _;
use std::net::SocketAddr;

#[derive(Debug, Clone, Default)]
pub struct Config {
    global: String,
    log: String,
    tables: String,
    server: String,
    routes: String,
    others: String,
}

impl Config {
    pub fn new() -> Self {
        Config::default()
    }

    /// Keys of `[global]` (`grace_period` is 1 s unless given).
    pub fn global(mut self, lines: &str) -> Self {
        writeln!(self.global, "{lines}").unwrap();
        self
    }

    /// Keys of `[log]` (`level` is "warn" and the access log off unless
    /// given).
    pub fn log(mut self, lines: &str) -> Self {
        writeln!(self.log, "{lines}").unwrap();
        self
    }

    /// `[upstreams.NAME]` with one server, `origin`, and more keys.
    pub fn upstream(mut self, name: &str, origin: SocketAddr, lines: &str) -> Self {
        writeln!(
            self.tables,
            "[upstreams.{name}]\nservers = [{{ addr = \"{origin}\" }}]\n{lines}\n"
        )
        .unwrap();
        self
    }

    /// Any other top-level table (`[rate_limits.z]`, `[cors.web]`, ...).
    pub fn table(mut self, toml: &str) -> Self {
        writeln!(self.tables, "{toml}\n").unwrap();
        self
    }

    /// Keys (and sub-tables, such as `[servers.tls]`) of the server.
    pub fn server(mut self, lines: &str) -> Self {
        writeln!(self.server, "{lines}").unwrap();
        self
    }

    /// One `[[servers.routes]]` entry, after the ones before it.
    pub fn route(mut self, lines: &str) -> Self {
        writeln!(self.routes, "[[servers.routes]]\n{lines}\n").unwrap();
        self
    }

    /// Routes written out whole (`[[servers.routes]]` tables), after the
    /// ones before them.
    pub fn routes(mut self, toml: &str) -> Self {
        writeln!(self.routes, "{toml}").unwrap();
        self
    }

    /// Another `[[servers]]` entry, written out whole (its listen address,
    /// sub-tables and routes), after the main server.
    pub fn other_server(mut self, toml: &str) -> Self {
        writeln!(self.others, "[[servers]]\n{toml}\n").unwrap();
        self
    }

    /// A route sending `prefix` to `upstream`.
    pub fn proxy(self, prefix: &str, upstream: &str) -> Self {
        self.route(&format!("prefix = \"{prefix}\"\nupstream = \"{upstream}\""))
    }

    /// The file's text, with `{PORT}` and `{ADMIN}` left to fill in.
    pub fn build(&self) -> String {
        let default = |lines: &str, key: &str, line: &str| match lines.contains(key) {
            true => String::new(),
            false => format!("{line}\n"),
        };
        format!(
            "[global]\n{}{}\n[log]\n{}{}{}\n[admin]\nlisten = \"127.0.0.1:{{ADMIN}}\"\n\n{}\
             [[servers]]\nname = \"main\"\nlisten = [\"127.0.0.1:{{PORT}}\"]\n{}\n{}{}",
            default(&self.global, "grace_period", "grace_period = \"1s\""),
            self.global,
            default(&self.log, "level", "level = \"warn\""),
            default(&self.log, "access_log", "access_log = \"off\""),
            self.log,
            self.tables,
            self.server,
            self.routes,
            self.others,
        )
    }
}

/// Runs `rampart check` on `toml` (ports filled with dummies) and returns
/// its stderr, asserting that it refused the file (exit 1).
pub fn check_refuses(toml: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(&file, toml.replace("{PORT}", "1").replace("{ADMIN}", "2")).unwrap();
    let out = std::process::Command::new(super::bin())
        .args(["check", "-c"])
        .arg(&file)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "check accepted it:\n{toml}\n{err}"
    );
    err
}

#[test]
fn a_built_config_is_one_rampart_accepts() {
    let origin: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let toml = Config::new()
        .global("server_header = true")
        .log("level = \"info\"")
        .upstream("app", origin, "read_timeout = \"5s\"")
        .table("[rate_limits.z]\nrate = \"1r/s\"")
        .server("max_body_size = \"1k\"\n[servers.response_headers]\n\"X-A\" = \"1\"")
        .route("exact = \"/here\"\nrespond = { body = \"x\" }")
        .proxy("/", "app")
        .build()
        .replace("{PORT}", "18999")
        .replace("{ADMIN}", "18998");
    let (cfg, _) = rampart::config::load_str(std::path::Path::new("t.toml"), &toml, |_| None)
        .unwrap_or_else(|e| panic!("{e}\n{toml}"));
    assert_eq!(cfg.global.grace_period, std::time::Duration::from_secs(1));
    assert_eq!(cfg.log.level, "info");
    assert_eq!(cfg.servers[0].routes.len(), 2);
    assert_eq!(cfg.zones.len(), 1);
    assert!(cfg.servers[0].response_headers.len() == 1);
}
