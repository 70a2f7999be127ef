//! Reloads under load, across long requests and tunnels; the process
//! lifecycle (pid file, upgrade with socket hand-over).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

fn config(origin: std::net::SocketAddr, body: &str, extra_global: &str) -> String {
    Config::new()
        .global(&format!("grace_period = \"5s\"\n{extra_global}"))
        .log("level = \"info\"")
        .upstream("app", origin, "")
        .route(&format!(
            "exact = \"/version\"\nrespond = {{ body = \"{body}\" }}"
        ))
        .proxy("/", "app")
        .build()
}

fn rewrite(g: &Gateway, text: &str) {
    let filled = text
        .replace("{PORT}", &g.port.to_string())
        .replace("{ADMIN}", &g.admin.to_string());
    std::fs::write(&g.config, filled).unwrap();
}

async fn version(g: &Gateway) -> String {
    g.text("/version").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_request_and_a_tunnel_survive_a_reload() {
    let origin = Origin::start("o").await;
    let ws_origin = WsOrigin::start().await;
    let toml = config(origin.addr, "v1", "")
        + &format!(
            "\n[upstreams.chat]\nservers = [{{ addr = \"{}\" }}]\n",
            ws_origin.addr
        );
    let toml = toml.replace("[[servers.routes]]\nprefix = \"/\"", "[[servers.routes]]\nprefix = \"/ws/\"\nupstream = \"chat\"\n\n[[servers.routes]]\nprefix = \"/\"");
    let g = Gateway::start(&toml);
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{}/ws/x", g.port))
        .await
        .unwrap();
    ws.send(Message::text("before")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("before"));
    let url = g.url("/slow/2000");
    let long =
        tokio::spawn(async move { client().get(url).send().await.map(|r| r.status().as_u16()) });
    tokio::time::sleep(Duration::from_millis(300)).await;
    g.reload_to(&toml.replace("\"v1\"", "\"v2\""), "/version", "v2")
        .await;
    assert_eq!(
        long.await.unwrap().unwrap(),
        200,
        "the request in flight completes"
    );
    ws.send(Message::text("after")).await.unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::text("after"),
        "the tunnel survives"
    );
    let log = g.stderr_when_contains("configuration reloaded").await;
    assert!(log.contains("configuration reloaded"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_request_lost_with_a_reload_every_100ms() {
    let origin = Origin::start("o").await;
    let toml = config(origin.addr, "v0", "");
    let g = Gateway::start(&toml);
    let ok = Arc::new(AtomicUsize::new(0));
    let bad = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut workers = Vec::new();
    for w in 0..16 {
        let (url, ok, bad) = (g.url("/load"), ok.clone(), bad.clone());
        workers.push(tokio::spawn(async move {
            // One keepalive connection per worker.
            let c = reqwest::Client::builder()
                .no_proxy()
                .pool_max_idle_per_host(1)
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap();
            for i in 0..1250 {
                match c.get(&url).send().await {
                    Ok(r) if r.status() == 200 => {
                        let _ = r.bytes().await;
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(r) => bad
                        .lock()
                        .unwrap()
                        .push(format!("worker {w} #{i}: {}", r.status())),
                    Err(e) => bad.lock().unwrap().push(format!("worker {w} #{i}: {e}")),
                }
            }
        }));
    }
    let mut reloads = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while !workers.iter().all(|w| w.is_finished()) {
        assert!(Instant::now() < deadline, "load test did not finish");
        reloads += 1;
        rewrite(&g, &toml.replace("\"v0\"", &format!("\"v{reloads}\"")));
        g.signal("HUP");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for w in workers {
        w.await.unwrap();
    }
    let bad = bad.lock().unwrap().clone();
    assert!(
        bad.is_empty(),
        "{} failed: {:?}",
        bad.len(),
        &bad[..bad.len().min(5)]
    );
    assert_eq!(ok.load(Ordering::Relaxed), 20_000);
    assert!(reloads >= 5, "reloads happened during the load: {reloads}");
    let applied = g.stderr_text().matches("configuration reloaded").count();
    assert!(applied >= 5, "{applied} reloads applied");
    eprintln!("20000 requests over 16 connections, {reloads} reloads signalled, {applied} applied");
}

use std::sync::Mutex;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pid_file_is_written_at_start_and_removed_at_exit() {
    let origin = Origin::start("o").await;
    let dir = tempfile::tempdir().unwrap();
    let pid_path = dir.path().join("rampart.pid");
    let mut g = Gateway::start(&config(
        origin.addr,
        "v1",
        &format!("pid_file = \"{}\"", pid_path.display()),
    ));
    let pid = std::fs::read_to_string(&pid_path).expect("pid file written");
    assert_eq!(pid.trim(), g.pid().to_string());
    g.signal("TERM");
    assert_eq!(g.wait_exit(Duration::from_secs(8)), Some(0));
    assert!(!pid_path.exists(), "pid file removed at exit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_hands_the_sockets_to_a_new_process_without_refusing_a_connection() {
    let origin = Origin::start("o").await;
    let dir = tempfile::tempdir().unwrap();
    let toml = upgradable_config(origin.addr, dir.path());
    let mut old = Gateway::start(&toml);
    assert_eq!(version(&old).await, "old");
    // The new process: same addresses, new content, waiting for the sockets.
    let (mut new, new_err) = start_upgrade(&old, &toml.replace("\"old\"", "\"new\""));
    // Clients keep going through the switch.
    let url = old.url("/version");
    let failures = Arc::new(AtomicUsize::new(0));
    let seen_new = Arc::new(AtomicUsize::new(0));
    let (f, s) = (failures.clone(), seen_new.clone());
    let load = tokio::spawn(async move {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline && s.load(Ordering::Relaxed) < 20 {
            // A new connection each time: any refused accept would show.
            let c = reqwest::Client::builder()
                .no_proxy()
                .pool_max_idle_per_host(0)
                .build()
                .unwrap();
            match c.get(&url).send().await {
                Ok(r) if r.status() == 200 => {
                    if r.text().await.unwrap_or_default() == "new" {
                        s.fetch_add(1, Ordering::Relaxed);
                    }
                }
                _ => {
                    f.fetch_add(1, Ordering::Relaxed);
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    old.signal("USR2");
    load.await.unwrap();
    assert_eq!(
        failures.load(Ordering::Relaxed),
        0,
        "no request failed during the hand-over"
    );
    assert!(
        seen_new.load(Ordering::Relaxed) >= 20,
        "the new process serves; its log:\n{}",
        std::fs::read_to_string(&new_err).unwrap_or_default()
    );
    assert_eq!(
        old.wait_exit(Duration::from_secs(15)),
        Some(0),
        "the old process drains and exits 0"
    );
    let _ = new.kill();
    let _ = new.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_health_survives_a_reload() {
    let good = Origin::start("good").await;
    let dead = free_port();
    let toml = config(good.addr, "v1", "").replace(
        &format!("servers = [{{ addr = \"{}\" }}]", good.addr),
        &format!(
            "servers = [{{ addr = \"{}\" }}, {{ addr = \"127.0.0.1:{dead}\" }}]\nmax_fails = 1\nfail_timeout = \"30s\"",
            good.addr
        ),
    );
    let g = Gateway::start(&toml);
    let c = client();
    for _ in 0..4 {
        assert_eq!(c.get(g.url("/x")).send().await.unwrap().status(), 200);
    }
    let down =
        format!("rampart_upstream_server_up{{addr=\"127.0.0.1:{dead}\",upstream=\"app\"}} 0");
    let errors = format!("rampart_upstream_requests_total{{addr=\"127.0.0.1:{dead}\",outcome=\"connect_error\",upstream=\"app\"}} 1");
    let m = g.metrics().await;
    assert!(m.contains(&down) && m.contains(&errors), "{m}");
    // A reload that keeps the pool: the server stays down, not retried.
    g.reload_to(&toml.replace("\"v1\"", "\"v2\""), "/version", "v2")
        .await;
    for _ in 0..6 {
        assert_eq!(c.get(g.url("/x")).send().await.unwrap().status(), 200);
    }
    let m = g.metrics().await;
    assert!(
        m.contains(&down) && m.contains(&errors),
        "health carried over, no new attempt:\n{m}"
    );
    // A reload that removes the server (and the /version route): its
    // series go, instead of reporting forever.
    assert!(m.contains("route=\"exact:/version\""), "{m}");
    let without = config(good.addr, "v3", "").replace(
        "[[servers.routes]]\nexact = \"/version\"\nrespond = { body = \"v3\" }\n",
        "[[servers.routes]]\nexact = \"/v\"\nrespond = { body = \"v3\" }\n",
    );
    assert_ne!(without, config(good.addr, "v3", ""));
    g.reload_to(&without, "/v", "v3").await;
    let m = g.metrics().await;
    let dead_addr = format!("addr=\"127.0.0.1:{dead}\"");
    assert!(
        !m.contains(&dead_addr),
        "removed server still reported:\n{m}"
    );
    assert!(
        !m.contains("route=\"exact:/version\""),
        "removed route still reported:\n{m}"
    );
    let good_up = format!(
        "rampart_upstream_server_up{{addr=\"{}\",upstream=\"app\"}} 1",
        good.addr
    );
    assert!(
        m.contains(&good_up),
        "the kept server keeps its series:\n{m}"
    );
}

/// `log.level` follows a reload; what a reload cannot change is named in
/// a warning instead of being ignored silently.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_applies_the_log_level_and_names_what_needs_a_restart() {
    let origin = Origin::start("o").await;
    let quiet = config(origin.addr, "v1", "").replace("level = \"info\"", "level = \"warn\"");
    let g = Gateway::start(&quiet);
    let loud = config(origin.addr, "v2", "threads = 3");
    g.reload_to(&loud, "/version", "v2").await;
    let deadline = Instant::now() + Duration::from_secs(3);
    while !g.stderr_text().contains("configuration reloaded") && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let log = g.stderr_text();
    assert!(
        log.contains("configuration reloaded"),
        "info lines after the reload:\n{log}"
    );
    assert!(
        log.contains("global.threads changed: it takes effect after a restart"),
        "{log}"
    );
    // And back: info lines stop.
    g.reload_to(&quiet.replace("\"v1\"", "\"v3\""), "/version", "v3")
        .await;
    g.reload_to(&quiet.replace("\"v1\"", "\"v4\""), "/version", "v4")
        .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let reloaded = g.stderr_text().matches("configuration reloaded").count();
    assert_eq!(reloaded, 1, "{}", g.stderr_text());
}

/// A raw GET on a fresh connection; what came back before the close (or
/// `None` when the connection was refused).
fn get_on(port: u16, path: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    std::io::Write::write_all(
        &mut s,
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .ok()?;
    Some(read_to_close(&mut s))
}

/// Waits until `port` answers `path` with a body ending in `want`.
async fn wait_body(port: u16, path: &'static str, want: &'static str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let got = tokio::task::spawn_blocking(move || get_on(port, path))
            .await
            .unwrap();
        if got.as_deref().is_some_and(|g| g.ends_with(want)) {
            return;
        }
        assert!(Instant::now() < deadline, "{port}{path}: {got:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `listen` follows SIGHUP: a new address opens with the reload, a removed
/// one stops serving (closed, if the reload had opened it; connections to
/// an address bound at start are closed at once), an open keep-alive
/// connection to a removed address gets `421` and is closed, and an
/// address put back serves again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_addresses_follow_a_reload() {
    let origin = Origin::start("o").await;
    let toml = config(origin.addr, "v1", "");
    let g = Gateway::start(&toml);
    let (port, second) = (g.port, free_port());
    let both = toml.replace("\"v1\"", "\"v2\"").replace(
        "listen = [\"127.0.0.1:{PORT}\"]",
        &format!("listen = [\"127.0.0.1:{{PORT}}\", \"127.0.0.1:{second}\"]"),
    );
    g.reload_to(&both, "/version", "v2").await;
    wait_body(second, "/version", "v2").await;
    // Proxied through the added address, too.
    let got = tokio::task::spawn_blocking(move || get_on(second, "/p"))
        .await
        .unwrap();
    assert!(got.is_some_and(|g| g.starts_with("HTTP/1.1 200")));

    // A keep-alive connection to the start address, open across the reload.
    let mut kept = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    std::io::Write::write_all(&mut kept, b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut buf = [0u8; 4096];
    kept.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let n = std::io::Read::read(&mut kept, &mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).ends_with("v2"));

    // Only the second address.
    let only_second = both.replace("\"v2\"", "\"v3\"").replace(
        &format!("\"127.0.0.1:{{PORT}}\", \"127.0.0.1:{second}\""),
        &format!("\"127.0.0.1:{second}\""),
    );
    rewrite(&g, &only_second);
    g.signal("HUP");
    wait_body(second, "/version", "v3").await;
    // New connections to the start address get nothing.
    let got = tokio::task::spawn_blocking(move || get_on(port, "/version"))
        .await
        .unwrap();
    assert!(got.as_deref().is_none_or(str::is_empty), "{got:?}");
    // The open one: its next request is misdirected and the connection closes.
    std::io::Write::write_all(&mut kept, b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let rest = read_to_close(&mut kept);
    assert!(rest.starts_with("HTTP/1.1 421"), "{rest}");
    assert!(
        rest.to_ascii_lowercase().contains("connection: close"),
        "{rest}"
    );

    // Back to the start address alone: it serves again, the added one is closed.
    // (Polled with fresh connections: until the reload lands, connections
    // to the start address are closed at once.)
    rewrite(&g, &toml.replace("\"v1\"", "\"v4\""));
    g.signal("HUP");
    wait_body(port, "/version", "v4").await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(("127.0.0.1", second)).is_ok() {
        assert!(Instant::now() < deadline, "{second} still accepts");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let closed = format!("no longer listening on 127.0.0.1:{second}");
    let log = g.stderr_when_contains(&closed).await;
    assert!(
        log.contains(&format!(
            "listening on http://127.0.0.1:{second} (added by the reload)"
        )),
        "{log}"
    );
    assert!(log.contains(&closed), "{log}");
}

/// An address a reload opened is handed over on upgrade like the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_added_by_a_reload_is_handed_over_on_upgrade() {
    let origin = Origin::start("o").await;
    let dir = tempfile::tempdir().unwrap();
    let toml = upgradable_config(origin.addr, dir.path());
    let mut old = Gateway::start(&toml);
    let second = free_port();
    let both = toml.replace(
        "listen = [\"127.0.0.1:{PORT}\"]",
        &format!("listen = [\"127.0.0.1:{{PORT}}\", \"127.0.0.1:{second}\"]"),
    );
    old.reload_to(&both.replace("\"old\"", "\"old2\""), "/version", "old2")
        .await;
    wait_body(second, "/version", "old2").await;
    let (mut new, new_err) = start_upgrade(&old, &both.replace("\"old\"", "\"new\""));
    tokio::time::sleep(Duration::from_millis(500)).await;
    old.signal("USR2");
    wait_body(second, "/version", "new").await;
    wait_body(old.port, "/version", "new").await;
    assert_eq!(old.wait_exit(Duration::from_secs(15)), Some(0));
    let log = std::fs::read_to_string(&new_err).unwrap_or_default();
    assert!(!log.contains("cannot listen"), "{log}");
    let _ = new.kill();
    let _ = new.wait();
}

/// The upgrade socket receives every listening socket: rampart refuses to
/// start with it in a directory other users can write to, and by default
/// puts it in one only its user can.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upgrade_socket_is_never_in_a_directory_others_can_write() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let cfg = dir.path().join("r.toml");
    let port = free_port();
    std::fs::write(
        &cfg,
        format!(
            "[global]\nupgrade_sock = \"{}/u.sock\"\n[[servers]]\nlisten = [\"127.0.0.1:{port}\"]\n[[servers.routes]]\nprefix = \"/\"\nrespond = {{ body = \"x\" }}\n",
            shared.display()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(bin())
        .args(["run", "-c"])
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("can be written by other users"), "{err}");

    // The default: a private directory (here $RUNTIME_DIRECTORY, as systemd sets it).
    let runtime = dir.path().join("runtime");
    std::fs::write(
        &cfg,
        format!("[[servers]]\nlisten = [\"127.0.0.1:{port}\"]\n[[servers.routes]]\nprefix = \"/\"\nrespond = {{ body = \"x\" }}\n"),
    )
    .unwrap();
    let mut child = std::process::Command::new(bin())
        .args(["run", "--upgrade", "-c"])
        .arg(&cfg)
        .env("RUNTIME_DIRECTORY", &runtime)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Waiting for the sockets: it says where.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !runtime.exists() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains(&format!("{}/upgrade-", runtime.display())),
        "{log}"
    );
    let mode = std::fs::metadata(&runtime).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
}

/// Starts a new process with `toml` (the running one's ports filled in)
/// that waits for the running process's sockets; returns it and its log.
fn start_upgrade(old: &Gateway, toml: &str) -> (std::process::Child, std::path::PathBuf) {
    let new_cfg = old.dir.path().join("new.toml");
    std::fs::write(
        &new_cfg,
        toml.replace("{PORT}", &old.port.to_string())
            .replace("{ADMIN}", &free_port().to_string()),
    )
    .unwrap();
    let new_err = old.dir.path().join("new.err");
    let new = std::process::Command::new(bin())
        .args(["run", "--upgrade", "-c"])
        .arg(&new_cfg)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&new_err).unwrap())
        .spawn()
        .unwrap();
    (new, new_err)
}

/// `config` with its upgrade socket in `dir`.
fn upgradable_config(origin: std::net::SocketAddr, dir: &std::path::Path) -> String {
    let sock = dir.join("upgrade.sock");
    config(
        origin,
        "old",
        &format!("upgrade_sock = \"{}\"", sock.display()),
    )
}
