//! Upstream servers written as names: every address of the name is a
//! server, and the name is looked up again every `resolve_interval`, so an
//! app restarted at a new address is reached without a reload. The
//! gateway runs with an `/etc/hosts` of the test's own (a mount namespace).

use std::time::{Duration, Instant};

use crate::common::*;

/// The origin names of the answers to `n` requests.
async fn answered_by(g: &Gateway, n: usize) -> Vec<String> {
    let c = client();
    let mut out = Vec::new();
    for _ in 0..n {
        let r = c.get(g.url("/")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        out.push(r.text().await.unwrap());
    }
    out
}

/// Waits (bounded) until every answer comes from `want`.
async fn until_only(g: &Gateway, want: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let got = answered_by(g, 6).await;
        if got
            .iter()
            .all(|o| want.iter().any(|w| o == &format!("origin {w}")))
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "still answered by {got:?}, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_that_moves_is_followed_without_a_reload() {
    let port = free_port();
    let a = Origin::start_on("a", &format!("127.0.0.1:{port}")).await;
    let b = Origin::start_on("b", &format!("127.0.0.2:{port}")).await;
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts");
    // Rewritten in place: the bind mount follows the file, not its name.
    let set_hosts =
        |lines: &str| std::fs::write(&hosts, format!("127.0.0.1 localhost\n{lines}")).unwrap();
    set_hosts("127.0.0.1 app.test\n");
    let g = Gateway::start_with_hosts(
        &Config::new()
            .table(&format!(
                "[upstreams.app]\nservers = [{{ addr = \"app.test:{port}\" }}]\nresolve_interval = \"1s\""
            ))
            .proxy("/", "app")
            .build(),
        &hosts,
    );
    assert_eq!(answered_by(&g, 3).await, ["origin a"; 3]);

    // The app moves: within a few intervals, traffic follows.
    set_hosts("127.0.0.2 app.test\n");
    until_only(&g, &["b"]).await;
    let m = g.metrics().await;
    let b_up =
        format!("rampart_upstream_server_up{{addr=\"127.0.0.2:{port}\",upstream=\"app\"}} 1");
    assert!(m.contains(&b_up), "{m}");
    assert!(
        !m.contains(&format!("addr=\"127.0.0.1:{port}\"")),
        "the old address is forgotten: {m}"
    );

    // Two addresses: two servers.
    set_hosts("127.0.0.1 app.test\n127.0.0.2 app.test\n");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let got = answered_by(&g, 8).await;
        if got.contains(&"origin a".to_string()) && got.contains(&"origin b".to_string()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not spread over both addresses: {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The name disappears: the last addresses are kept, the failure counted.
    set_hosts("");
    let m = g
        .metrics_when(|m| m.contains("rampart_upstream_resolve_errors_total{upstream=\"app\"}"))
        .await;
    assert!(
        m.contains("rampart_upstream_resolve_errors_total{upstream=\"app\"}"),
        "{m}"
    );
    assert!(m.contains(&b_up), "{m}");
    let got = answered_by(&g, 4).await;
    assert!(
        got.iter().all(|o| o == "origin a" || o == "origin b"),
        "{got:?}"
    );
    let log = g
        .stderr_when_contains("upstream name does not resolve")
        .await;
    assert!(log.contains("upstream name does not resolve"), "{log}");
    drop((a, b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolve_interval_is_checked() {
    let err = check_refuses(
        "[upstreams.app]\nservers = [{ addr = \"127.0.0.1:1\" }]\nresolve_interval = \"0s\"\n\
         [[servers]]\nlisten = [\"127.0.0.1:{PORT}\"]\n[[servers.routes]]\nprefix = \"/\"\nupstream = \"app\"\n",
    );
    assert!(
        err.contains("upstreams.app.resolve_interval must be more than 0"),
        "{err}"
    );
}
