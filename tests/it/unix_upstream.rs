//! Upstreams on Unix sockets (`addr = "unix:/run/app.sock"`): proxied,
//! kept alive, health-checked and labelled like TCP servers.

use std::time::Duration;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unix_socket_upstream_is_proxied_and_health_checked() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("app.sock");
    let origin = UnixOrigin::start(sock.clone()).await;
    let addr = format!("unix:{}", sock.display());
    let g = Gateway::start(
        &Config::new()
            .table(&format!(
                "[upstreams.app]\nservers = [{{ addr = \"{addr}\" }}]\n\
                 health_check = {{ path = \"/health\", interval = \"100ms\" }}"
            ))
            .route("prefix = \"/api/\"\nupstream = \"app\"\nrewrite_prefix = \"/\"")
            .build(),
    );
    let c = client();
    for i in 0..3 {
        let r = c
            .get(g.url(&format!("/api/items?n={i}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().await.unwrap(), format!("unix /items?n={i}"));
    }
    assert!(origin.hits() >= 3, "the requests reached the socket");
    let label = format!("addr=\"{addr}\"");
    let m = g
        .metrics_when(|m| {
            m.lines().any(|l| {
                l.starts_with("rampart_upstream_server_up")
                    && l.contains(&label)
                    && l.ends_with(" 1")
            })
        })
        .await;
    assert!(
        m.lines()
            .any(|l| l.starts_with("rampart_upstream_server_up")
                && l.contains(&label)
                && l.ends_with(" 1")),
        "{m}"
    );
    // The socket goes away: health checks mark the server down; requests 502.
    drop(origin);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let m = g.metrics().await;
        if m.lines().any(|l| {
            l.starts_with("rampart_upstream_server_up") && l.contains(&label) && l.ends_with(" 0")
        }) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never marked down: {m}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(c.get(g.url("/api/x")).send().await.unwrap().status(), 502);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_servers_are_checked_when_the_file_is_read() {
    for (servers, extra, want) in [
        (
            "[{ addr = \"unix:run/app.sock\" }]",
            "",
            "expected unix:/absolute/path",
        ),
        (
            "[{ addr = \"unix:/run/app.sock\" }]",
            "tls = true",
            "tls over a Unix socket",
        ),
    ] {
        let err = check_refuses(
            &Config::new()
                .table(&format!("[upstreams.app]\nservers = {servers}\n{extra}"))
                .proxy("/", "app")
                .build(),
        );
        assert!(err.contains(want), "{servers}: {err}");
    }
}
