//! The `rampart` process under test: started on a config, signalled, its logs and metrics read.

use super::*;

/// A running `rampart run` process with its config file and stdout (the
/// access log) captured.
pub struct Gateway {
    pub child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub admin: u16,
    pub config: PathBuf,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        // RAMPART_TEST_KEEP_LOGS=1 keeps each gateway's stderr for debugging.
        if std::env::var_os("RAMPART_TEST_KEEP_LOGS").is_some() {
            let _ = std::fs::copy(&self.stderr, format!("/tmp/rampart-test-{}.log", self.port));
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_rampart")
}

impl Gateway {
    /// Starts rampart with `toml`, where `{PORT}` and `{ADMIN}` are
    /// replaced by free ports. Waits until the main port accepts.
    pub fn start(toml: &str) -> Gateway {
        Self::start_with_stdout(toml, None)
    }

    /// As [`Self::start`], with stdout going to `stdout` (e.g. a pipe
    /// nobody reads) instead of a file.
    pub fn start_with_stdout(toml: &str, stdout_to: Option<Stdio>) -> Gateway {
        Self::launch(toml, stdout_to, |config| {
            let mut c = Command::new(bin());
            c.args(["run", "-c"]).arg(config);
            c
        })
    }

    /// As [`Self::start`], in a mount namespace of its own where `hosts`
    /// is `/etc/hosts`: what names resolve to is the test's to change
    /// (rewrite the file in place). Needs root, as CI has.
    pub fn start_with_hosts(toml: &str, hosts: &std::path::Path) -> Gateway {
        let ok = Command::new("unshare")
            .args(["-m", "true"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "`unshare -m` failed: this test needs root (the README's test command runs as root)"
        );
        Self::launch(toml, None, |config| {
            let mut c = Command::new("unshare");
            c.args([
                "-m",
                "sh",
                "-c",
                "mount --bind \"$0\" /etc/hosts && exec \"$@\"",
            ])
            .arg(hosts)
            .args([bin(), "run", "-c"])
            .arg(config);
            c
        })
    }

    /// As [`Self::start`], with `{PORT}` a port the test chose (another
    /// program, such as an ACME server, had to know it first).
    pub fn start_on(toml: &str, port: u16) -> Gateway {
        Self::launch_on(Some(port), toml, None, |config| {
            let mut c = Command::new(bin());
            c.args(["run", "-c"]).arg(config);
            c
        })
    }

    /// As [`Self::start`], with more environment variables.
    pub fn start_with_env(toml: &str, env: &[(&str, &str)]) -> Gateway {
        Self::launch(toml, None, |config| {
            let mut c = Command::new(bin());
            c.args(["run", "-c"]).arg(config).envs(env.iter().copied());
            c
        })
    }

    /// Writes the config and starts the command `command(config)` makes.
    fn launch(
        toml: &str,
        stdout_to: Option<Stdio>,
        command: impl FnOnce(&std::path::Path) -> Command,
    ) -> Gateway {
        Self::launch_on(None, toml, stdout_to, command)
    }

    fn launch_on(
        port: Option<u16>,
        toml: &str,
        stdout_to: Option<Stdio>,
        command: impl FnOnce(&std::path::Path) -> Command,
    ) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        let port = port.unwrap_or_else(free_port);
        let admin = free_port();
        let config = dir.path().join("rampart.toml");
        let text = toml
            .replace("{PORT}", &port.to_string())
            .replace("{ADMIN}", &admin.to_string());
        std::fs::File::create(&config)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let stdout = dir.path().join("stdout.log");
        let stderr = dir.path().join("stderr.log");
        let child = command(&config)
            .stdout(
                stdout_to.unwrap_or_else(|| Stdio::from(std::fs::File::create(&stdout).unwrap())),
            )
            .stderr(Stdio::from(std::fs::File::create(&stderr).unwrap()))
            .spawn()
            .expect("spawn rampart");
        let g = Gateway {
            child: Some(child),
            dir,
            port,
            admin,
            config,
            stdout,
            stderr,
        };
        g.wait_port(port);
        // The admin listener is a service of its own: it may come up a
        // moment after the main port (tests then read /metrics at once).
        if toml.contains("{ADMIN}") {
            g.wait_port(admin);
        }
        g
    }

    pub fn wait_port(&self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!(
            "rampart did not listen on {port}; stderr:\n{}",
            self.stderr_text()
        );
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// The child's stdout, when it was started with a pipe.
    pub fn take_stdout(&mut self) -> Option<std::process::ChildStdout> {
        self.child.as_mut()?.stdout.take()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args(["-s", sig, &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// The process log once it contains `needle` (a line is written just
    /// after what it reports happened); its last state after 5 s.
    pub async fn stderr_when_contains(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let log = self.stderr_text();
            if log.contains(needle) || Instant::now() > deadline {
                return log;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Access-log lines (JSON), waiting up to 3 s for at least `n`.
    pub fn access_log(&self, n: usize) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let lines: Vec<serde_json::Value> = std::fs::read_to_string(&self.stdout)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect();
            if lines.len() >= n || Instant::now() > deadline {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Rewrites the config file (placeholders filled with this gateway's
    /// ports), sends SIGHUP and waits until `path` answers `want`.
    pub async fn reload_to(&self, toml: &str, path: &str, want: &str) {
        let filled = toml
            .replace("{PORT}", &self.port.to_string())
            .replace("{ADMIN}", &self.admin.to_string());
        std::fs::write(&self.config, filled).unwrap();
        self.signal("HUP");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let body = self.text(path).await;
            if body == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "reload not applied: {path} still answers {body:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The body `path` answers with.
    pub async fn text(&self, path: &str) -> String {
        client()
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The metrics once `ready` holds for them (they are recorded when a
    /// request's logging phase ends, just after its response went out);
    /// the last scrape after 3 s otherwise.
    pub async fn metrics_when(&self, ready: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let m = self.metrics().await;
            if ready(&m) || Instant::now() > deadline {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn metrics(&self) -> String {
        client()
            .get(format!("http://127.0.0.1:{}/metrics", self.admin))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Waits for the process to exit (bounded) and returns its status code.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        let child = self.child.as_mut().unwrap();
        while Instant::now() < deadline {
            if let Some(st) = child.try_wait().unwrap() {
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}
