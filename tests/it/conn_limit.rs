//! `conn_limits` (nginx `limit_conn`): requests in flight per key, an open
//! WebSocket tunnel counting until it closes.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_over_the_limit_get_503_until_one_ends() {
    let origin = Origin::start("app").await;
    let g = Gateway::start(
        &Config::new()
            .global("trusted_proxies = [\"127.0.0.1\"]")
            .table("[conn_limits.per_ip]\nmax = 2")
            .upstream("app", origin.addr, "")
            .server("conn_limit = \"per_ip\"")
            .route("prefix = \"/free/\"\nupstream = \"app\"\nconn_limit = false")
            .proxy("/", "app")
            .build(),
    );
    let c = client();
    let slow = |from: &'static str| {
        let req = c.get(g.url("/slow/1500")).header("x-forwarded-for", from);
        tokio::spawn(async move { req.send().await.unwrap().status().as_u16() })
    };
    let (a, b) = (slow("10.0.0.1"), slow("10.0.0.1"));
    // Both are in flight (the origin holds them 1.5 s).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while origin.hits() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the slow requests never arrived"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let get = |path: &'static str, from: &'static str| {
        let req = c.get(g.url(path)).header("x-forwarded-for", from);
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(
        get("/x", "10.0.0.1").await,
        503,
        "a third from the same client"
    );
    assert_eq!(get("/x", "10.0.0.2").await, 200, "another client");
    assert_eq!(get("/free/x", "10.0.0.1").await, 200, "conn_limit = false");
    assert_eq!((a.await.unwrap(), b.await.unwrap()), (200, 200));
    assert_eq!(
        get("/x", "10.0.0.1").await,
        200,
        "the slots were given back"
    );
    let m = g
        .metrics_when(|m| m.contains("rampart_conn_limited_total{limit=\"per_ip\"} 1"))
        .await;
    assert!(
        m.contains("rampart_conn_limited_total{limit=\"per_ip\"} 1"),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_tunnel_holds_its_slot_until_it_closes() {
    let ws = WsOrigin::start().await;
    let g = Gateway::start(
        &Config::new()
            .table("[conn_limits.one]\nmax = 1\nstatus = 429")
            .upstream("chat", ws.addr, "")
            .route("prefix = \"/ws/\"\nupstream = \"chat\"\nconn_limit = \"one\"")
            .build(),
    );
    let url = format!("ws://127.0.0.1:{}/ws/a", g.port);
    let (mut first, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    first.send(Message::text("hi")).await.unwrap();
    assert_eq!(first.next().await.unwrap().unwrap(), Message::text("hi"));
    // A second tunnel from the same client: over the limit.
    match tokio_tungstenite::connect_async(&url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 429),
        other => panic!("a second tunnel was not refused: {other:?}"),
    }
    first.close(None).await.unwrap();
    drop(first);
    // Closed: the slot comes back (the relay notices the close first).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        match tokio_tungstenite::connect_async(&url).await {
            Ok(_) => break,
            Err(e) => assert!(std::time::Instant::now() < deadline, "never freed: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_are_checked_when_the_file_is_read() {
    let origin: std::net::SocketAddr = "127.0.0.1:9".parse().unwrap();
    for (extra, route, want) in [
        (
            "[conn_limits.a]\nmax = 0",
            "prefix = \"/\"\nupstream = \"app\"",
            "max must be at least 1",
        ),
        (
            "[conn_limits.a]\nkey = \"client_ip\"",
            "prefix = \"/\"\nupstream = \"app\"",
            "`max`",
        ),
        (
            "[conn_limits.a]\nmax = 1",
            "prefix = \"/\"\nupstream = \"app\"\nconn_limit = \"b\"",
            "undefined conn_limit \"b\"",
        ),
        (
            "[conn_limits.a]\nmax = 1\nstatus = 200",
            "prefix = \"/\"\nupstream = \"app\"",
            "status 200",
        ),
    ] {
        let err = check_refuses(
            &Config::new()
                .table(extra)
                .upstream("app", origin, "")
                .route(route)
                .build(),
        );
        assert!(err.contains(want), "{extra}: {err}");
    }
}
