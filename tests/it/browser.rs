//! CORS in a real browser: headless Chromium (Debian `chromium` +
//! `chromium-driver`, installed by `.ci/run`) driven over WebDriver.
//! Set RAMPART_SKIP_BROWSER=1 to skip on a machine without Chromium.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::{json, Value};

struct Driver {
    child: Child,
    base: String,
    session: Option<String>,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(s) = &self.session {
            let _ = blocking_delete(&format!("{}/session/{s}", self.base));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Ends the WebDriver session from `Drop` (no async runtime there).
fn blocking_delete(url: &str) -> std::io::Result<()> {
    use std::io::{Read, Write};
    let u = url.strip_prefix("http://").unwrap_or(url);
    let (host, path) = u.split_once('/').unwrap_or((u, ""));
    let mut s = std::net::TcpStream::connect(host)?;
    s.write_all(format!("DELETE /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes())?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut buf = [0u8; 512];
    let _ = s.read(&mut buf);
    Ok(())
}

impl Driver {
    async fn start() -> Option<Driver> {
        if std::env::var_os("RAMPART_SKIP_BROWSER").is_some() {
            eprintln!("RAMPART_SKIP_BROWSER set: skipping the browser test");
            return None;
        }
        let driver = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("chromedriver not found: install chromium and chromium-driver (.ci/run does), or set RAMPART_SKIP_BROWSER=1");
        let port = free_port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let base = format!("http://127.0.0.1:{port}");
        let profile = tempfile::tempdir().unwrap();
        let mut d = Driver {
            child,
            base,
            session: None,
            _profile: profile,
        };
        let c = client();
        let deadline = Instant::now() + Duration::from_secs(15);
        while c.get(format!("{}/status", d.base)).send().await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                         "--disable-background-networking", "--disable-component-update", "--disable-sync",
                         "--disable-quic", format!("--user-data-dir={}", d._profile.path().display())]
            }
        }}});
        let r: Value = c
            .post(format!("{}/session", d.base))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {r}"))
            .to_string();
        d.session = Some(id);
        Some(d)
    }

    async fn cmd(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let url = format!(
            "{}/session/{}{path}",
            self.base,
            self.session.as_ref().unwrap()
        );
        client()
            .request(method, url)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Opens `url` and waits for `window.results.done`.
    async fn results(&self, url: &str) -> Value {
        self.cmd(reqwest::Method::POST, "/url", json!({ "url": url }))
            .await;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let v = self
                .cmd(
                    reqwest::Method::POST,
                    "/execute/sync",
                    json!({"script": "return window.results || null", "args": []}),
                )
                .await;
            if v["value"]["done"] == true {
                return v["value"].clone();
            }
            assert!(Instant::now() < deadline, "page did not finish: {v}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

const PAGE: &str = r#"<!doctype html><html><body><script>
window.results = {};
const api = "http://127.0.0.1:API_PORT";
(async () => {
  try {
    const r = await fetch(api + "/api/data", { credentials: "include" });
    results.simple = r.status + " " + (await r.text());
  } catch (e) { results.simple = "blocked"; }
  try {
    const r = await fetch(api + "/api/data", {
      method: "PUT", credentials: "include",
      headers: { "Content-Type": "application/json", "Authorization": "Bearer t" },
      body: "{}" });
    results.put = r.status + " " + (await r.text());
  } catch (e) { results.put = "blocked"; }
  results.done = true;
})();
</script></body></html>"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_enforces_what_rampart_answers() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let origin = Origin::start("api").await;
    let site = tempfile::tempdir().unwrap();
    let (site_port, other_port) = (free_port(), free_port());
    let root = site.path().display();
    let static_server = |name: &str, port: u16| {
        format!(
            "name = \"{name}\"\nlisten = [\"127.0.0.1:{port}\"]\n\
             [[servers.routes]]\nprefix = \"/\"\nstatic = {{ root = \"{root}\" }}"
        )
    };
    let toml = Config::new()
        .log("access_log = \"stdout\"")
        .table(&format!(
            "[cors.web]\nallow_origins = [\"http://127.0.0.1:{site_port}\"]\n\
             allow_methods = [\"GET\", \"PUT\"]\nallow_headers = [\"Content-Type\", \"Authorization\"]\n\
             allow_credentials = true"
        ))
        .upstream("api", origin.addr, "")
        .server("cors = \"web\"")
        .proxy("/api/", "api")
        .other_server(&static_server("site", site_port))
        .other_server(&static_server("other-site", other_port))
        .build();
    let g = Gateway::start(&toml);
    g.wait_port(site_port);
    g.wait_port(other_port);
    // The page calls the API server, whose port is known now.
    std::fs::write(
        site.path().join("index.html"),
        PAGE.replace("API_PORT", &g.port.to_string()),
    )
    .unwrap();

    // The allowed origin: both calls succeed, the PUT after a preflight.
    let r = driver
        .results(&format!("http://127.0.0.1:{site_port}/"))
        .await;
    assert_eq!(r["simple"], "200 origin api", "{r}");
    assert_eq!(r["put"], "200 origin api", "{r}");
    let log = g.access_log(4);
    let preflight = log
        .iter()
        .find(|e| e["method"] == "OPTIONS")
        .expect("a preflight reached rampart");
    assert_eq!(preflight["status"], 204);
    let seen = origin.seen.lock().unwrap().clone();
    assert!(
        seen.iter().all(|s| s.method != "OPTIONS"),
        "preflights are not proxied"
    );
    assert_eq!(seen.iter().filter(|s| s.method == "PUT").count(), 1);
    assert!(seen
        .iter()
        .any(|s| s.header("authorization") == Some("Bearer t")));

    // Another origin: the browser blocks both; the PUT never leaves the browser
    // because rampart refuses its preflight.
    let before = origin.hits();
    let r = driver
        .results(&format!("http://127.0.0.1:{other_port}/"))
        .await;
    assert_eq!(r["simple"], "blocked", "{r}");
    assert_eq!(r["put"], "blocked", "{r}");
    assert_eq!(
        origin.hits(),
        before + 1,
        "only the simple GET reached the upstream"
    );
    let log = g.access_log(7);
    assert!(
        log.iter()
            .any(|e| e["method"] == "OPTIONS" && e["status"] == 403),
        "{log:?}"
    );
}
