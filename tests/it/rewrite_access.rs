//! Rewrites (`rewrite_prefix`, `rewrite`) and access lists (`allow`,
//! `deny`): what the upstream receives, what the client gets, what the
//! access log says.

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upstream_sees_the_rewritten_path_and_the_log_the_clients() {
    let origin = Origin::start("app").await;
    let g = Gateway::start(
        &Config::new()
            .log("access_log = \"stdout\"")
            .upstream("app", origin.addr, "")
            .route("prefix = \"/api/\"\nupstream = \"app\"\nrewrite_prefix = \"/\"")
            .route("prefix = \"/v/\"\nupstream = \"app\"\nrewrite_prefix = \"/v1/\"")
            .route("regex = \"^/u/([0-9]+)$\"\nupstream = \"app\"\nrewrite = \"/users/$1\"")
            .route("regex = \"^/f/(.*)$\"\nupstream = \"app\"\nrewrite = \"/files/$1\"")
            .proxy("/", "app")
            .build(),
    );
    let c = client();
    let upstream_got = |path: &'static str| {
        let (c, url) = (c.clone(), g.url(path));
        let origin = &origin;
        async move {
            let r = c.get(url).send().await.unwrap();
            assert_eq!(r.status(), 200, "{path}");
            origin.last().uri
        }
    };
    assert_eq!(upstream_got("/api/users?x=1").await, "/users?x=1");
    assert_eq!(upstream_got("/api/").await, "/");
    assert_eq!(upstream_got("/v/a%20b/c").await, "/v1/a%20b/c");
    // Normalized first, then rewritten: `..` cannot climb out of the prefix.
    assert_eq!(upstream_got("/api/a/../b").await, "/b");
    assert_eq!(upstream_got("/u/42").await, "/users/42");
    assert_eq!(upstream_got("/u/42?full=1").await, "/users/42?full=1");
    // A capture is re-encoded: it cannot add a query or an escape.
    assert_eq!(upstream_got("/f/a%3Fb%25c").await, "/files/a%3Fb%25c");
    // Other routes are untouched.
    assert_eq!(upstream_got("/other/x").await, "/other/x");
    let log = g.access_log(9);
    let paths: Vec<&str> = log.iter().filter_map(|l| l["path"].as_str()).collect();
    assert!(paths.contains(&"/api/users"), "{paths:?}");
    assert!(paths.contains(&"/u/42"), "{paths:?}");
    assert!(!paths.contains(&"/users"), "{paths:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewrites_are_checked_when_the_file_is_read() {
    let bad = [
        (
            "prefix = \"/a/\"\nupstream = \"app\"\nrewrite = \"/b\"",
            "rewrite applies only to regex routes",
        ),
        (
            "regex = \"^/a/(x)$\"\nupstream = \"app\"\nrewrite = \"/b/$2\"",
            "`$2` names a group",
        ),
        (
            "exact = \"/a\"\nupstream = \"app\"\nrewrite_prefix = \"/\"",
            "rewrite_prefix applies only to prefix routes",
        ),
        (
            "prefix = \"/a/\"\nrespond = { body = \"x\" }\nrewrite_prefix = \"/\"",
            "rewrite_prefix applies only",
        ),
        (
            "prefix = \"/a/\"\nupstream = \"app\"\nrewrite_prefix = \"b/\"",
            "must start with /",
        ),
        (
            "prefix = \"/a/\"\nupstream = \"app\"\nallow = [\"all\"]",
            "\"0.0.0.0/0\"",
        ),
        (
            "prefix = \"/a/\"\nupstream = \"app\"\ndeny = [\"10.0.0.0/40\"]",
            "deny \"10.0.0.0/40\"",
        ),
    ];
    let origin: std::net::SocketAddr = "127.0.0.1:9".parse().unwrap();
    for (route, want) in bad {
        let err = check_refuses(
            &Config::new()
                .upstream("app", origin, "")
                .route(route)
                .build(),
        );
        assert!(err.contains(want), "{route}: {err}");
        assert!(err.contains("c.toml:"), "the position is given: {err}");
    }
}

/// From loopback the client is 127.0.0.1; behind a trusted proxy it is
/// whatever the proxy says, which lets the test try other addresses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_and_deny_refuse_with_403_before_the_upstream_sees_anything() {
    let origin = Origin::start("app").await;
    let g = Gateway::start(
        &Config::new()
            .global("trusted_proxies = [\"127.0.0.1\"]")
            .upstream("app", origin.addr, "")
            .server("deny = [\"10.9.0.0/16\"]")
            .route("prefix = \"/admin/\"\nupstream = \"app\"\nallow = [\"10.0.0.0/8\", \"192.168.1.7\"]\ndeny = [\"10.0.13.0/24\"]")
            .route("prefix = \"/open/\"\nupstream = \"app\"\ndeny = []")
            .proxy("/", "app")
            .build(),
    );
    let c = client();
    let status = |path: &'static str, from: &'static str| {
        let req = c.get(g.url(path)).header("x-forwarded-for", from);
        async move { req.send().await.unwrap().status().as_u16() }
    };
    let before = origin.hits();
    // The route's own lists: deny checked before allow.
    assert_eq!(status("/admin/x", "10.1.2.3").await, 200);
    assert_eq!(status("/admin/x", "192.168.1.7").await, 200);
    assert_eq!(status("/admin/x", "10.0.13.9").await, 403);
    assert_eq!(status("/admin/x", "192.168.1.8").await, 403);
    assert_eq!(status("/admin/x", "2001:db8::1").await, 403);
    // Its own `deny` replaced the server's: 10.9.x is in its allow list.
    assert_eq!(status("/admin/x", "10.9.1.1").await, 200);
    // The server's list on a route without its own.
    assert_eq!(status("/x", "10.9.1.1").await, 403);
    assert_eq!(status("/x", "10.8.1.1").await, 200);
    // `deny = []` switches the inherited list off.
    assert_eq!(status("/open/x", "10.9.1.1").await, 200);
    assert_eq!(
        origin.hits() - before,
        5,
        "refused requests never reach the upstream"
    );
    let r = c
        .get(g.url("/x"))
        .header("x-forwarded-for", "10.9.1.1")
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_security_headers(&header_map(&r));
}
