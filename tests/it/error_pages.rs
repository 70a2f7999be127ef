//! `error_pages`: the server's bodies for rampart's own errors; upstream
//! errors untouched.

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rampart_errors_get_the_servers_pages_upstream_errors_do_not() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("404.html"), "<h1>not here</h1>").unwrap();
    std::fs::write(dir.path().join("4xx.html"), "<h1>bad request</h1>").unwrap();
    std::fs::write(dir.path().join("50x.html"), "<h1>down</h1>").unwrap();
    let origin = Origin::start("app").await;
    let dead = free_port();
    let d = dir.path().display();
    let g = Gateway::start(
        &Config::new()
            .upstream("app", origin.addr, "")
            .table(&format!("[upstreams.dead]\nservers = [{{ addr = \"127.0.0.1:{dead}\" }}]"))
            .server(&format!(
                "error_pages = {{ 404 = \"{d}/404.html\", \"4xx\" = \"{d}/4xx.html\", \"5xx\" = \"{d}/50x.html\" }}"
            ))
            .route("prefix = \"/app/\"\nupstream = \"app\"\nrewrite_prefix = \"/\"")
            .proxy("/dead/", "dead")
            .build(),
    );
    let c = client();
    let r = c.get(g.url("/nowhere")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    assert_security_headers(&header_map(&r));
    assert_eq!(r.text().await.unwrap(), "<h1>not here</h1>");
    let r = c.get(g.url("/dead/x")).send().await.unwrap();
    assert_eq!(r.status(), 502);
    assert_eq!(r.text().await.unwrap(), "<h1>down</h1>");
    // The upstream's own 500 is its answer, not rampart's.
    let r = c.get(g.url("/app/status/500")).send().await.unwrap();
    assert_eq!(r.status(), 500);
    assert_ne!(r.text().await.unwrap(), "<h1>down</h1>");
    // A request refused before routing (HTTP/1.1 without Host): the class page.
    let port = g.port;
    let (got, _) = tokio::task::spawn_blocking(move || {
        exchange_until_close(port, b"GET /app/x HTTP/1.1\r\n\r\n")
    })
    .await
    .unwrap();
    assert!(got.starts_with("HTTP/1.1 400"), "{got}");
    assert!(got.ends_with("<h1>bad request</h1>"), "{got}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_checked_and_read_when_the_file_is_loaded() {
    let origin: std::net::SocketAddr = "127.0.0.1:9".parse().unwrap();
    for (pages, want) in [
        (
            "{ 404 = \"/nonexistent/404.html\" }",
            "cannot read /nonexistent/404.html",
        ),
        ("{ 200 = \"/etc/hostname\" }", "error_pages key \"200\""),
        ("{ \"3xx\" = \"/etc/hostname\" }", "error_pages key \"3xx\""),
    ] {
        let err = check_refuses(
            &Config::new()
                .upstream("app", origin, "")
                .server(&format!("error_pages = {pages}"))
                .proxy("/", "app")
                .build(),
        );
        assert!(err.contains(want), "{pages}: {err}");
    }
}
