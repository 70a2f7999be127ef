//! CORS policies end to end.

use std::net::SocketAddr;

use crate::common::*;

fn config(origin: SocketAddr, dead: u16) -> String {
    Config::new()
        .table("[rate_limits.tight]\nrate = \"1r/m\"")
        .table(
            r#"[cors.app]
allow_origins = ["https://app.example.com", "https://*.example.org"]
allow_methods = ["GET", "POST", "PUT", "DELETE"]
allow_headers = ["Authorization", "Content-Type"]
expose_headers = ["X-Total"]
allow_credentials = true
max_age = "20d""#,
        )
        .table("[cors.open]\nallow_origins = [\"*\"]")
        .upstream("app", origin, "")
        .table(&format!(
            "[upstreams.dead]\nservers = [{{ addr = \"127.0.0.1:{dead}\" }}]"
        ))
        .server("cors = \"app\"\nmax_body_size = \"1k\"")
        .proxy("/api/", "app")
        .route("prefix = \"/limited/\"\nupstream = \"app\"\nrate_limit = { zone = \"tight\" }")
        .proxy("/dead/", "dead")
        .route("prefix = \"/public/\"\nupstream = \"app\"\ncors = \"open\"")
        .route("prefix = \"/internal/\"\nupstream = \"app\"\ncors = false")
        .build()
}

const APP: &str = "https://app.example.com";

fn h(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflights_are_answered_by_rampart() {
    let origin = Origin::start("o").await;
    let g = Gateway::start(&config(origin.addr, free_port()));
    let c = client();
    let pre = |o: &'static str, m: &'static str, hdrs: Option<&'static str>| {
        let mut rq = c
            .request(reqwest::Method::OPTIONS, g.url("/api/items"))
            .header("origin", o)
            .header("access-control-request-method", m);
        if let Some(x) = hdrs {
            rq = rq.header("access-control-request-headers", x);
        }
        rq.send()
    };
    let r = pre(APP, "PUT", Some("content-type, authorization"))
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(h(&r, "access-control-allow-origin").as_deref(), Some(APP));
    assert_eq!(
        h(&r, "access-control-allow-credentials").as_deref(),
        Some("true")
    );
    assert_eq!(
        h(&r, "access-control-allow-methods").as_deref(),
        Some("GET, POST, PUT, DELETE")
    );
    assert_eq!(
        h(&r, "access-control-allow-headers").as_deref(),
        Some("Authorization, Content-Type")
    );
    assert_eq!(h(&r, "access-control-max-age").as_deref(), Some("1728000"));
    assert_eq!(h(&r, "vary").as_deref(), Some("Origin"));
    assert_security_headers(&header_map(&r));
    // Wildcard: one label.
    assert_eq!(
        pre("https://shop.example.org", "GET", None)
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        pre("https://a.shop.example.org", "GET", None)
            .await
            .unwrap()
            .status(),
        403
    );
    // Not admitted: origin, method, header.
    assert_eq!(
        pre("https://evil.test", "GET", None)
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(pre(APP, "PATCH", None).await.unwrap().status(), 403);
    assert_eq!(
        pre(APP, "GET", Some("x-secret")).await.unwrap().status(),
        403
    );
    assert_eq!(origin.hits(), 0, "preflights never reach the upstream");
    // A plain OPTIONS (no preflight headers) is proxied.
    let r = c
        .request(reqwest::Method::OPTIONS, g.url("/api/items"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(origin.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actual_responses_carry_cors_headers_for_admitted_origins_only() {
    let origin = Origin::start("o").await;
    let g = Gateway::start(&config(origin.addr, free_port()));
    let c = client();
    let r = c
        .get(g.url("/api/upstream-cors"))
        .header("origin", APP)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let acao: Vec<_> = r
        .headers()
        .get_all("access-control-allow-origin")
        .iter()
        .collect();
    assert_eq!(
        acao,
        vec![APP],
        "the upstream's own header is replaced, not duplicated"
    );
    assert_eq!(
        h(&r, "access-control-allow-credentials").as_deref(),
        Some("true")
    );
    assert_eq!(
        h(&r, "access-control-expose-headers").as_deref(),
        Some("X-Total")
    );
    let vary: Vec<String> = r
        .headers()
        .get_all("vary")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert!(
        vary.iter().any(|v| v.contains("Origin"))
            && vary.iter().any(|v| v.contains("Accept-Encoding")),
        "{vary:?}"
    );

    let r = c
        .get(g.url("/api/x"))
        .header("origin", "https://evil.test")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "proxied");
    assert!(h(&r, "access-control-allow-origin").is_none());
    assert_eq!(h(&r, "vary").as_deref(), Some("Origin"));

    // "*" without credentials: `*`, no Vary.
    let r = c
        .get(g.url("/public/x"))
        .header("origin", "https://anyone.test")
        .send()
        .await
        .unwrap();
    assert_eq!(h(&r, "access-control-allow-origin").as_deref(), Some("*"));
    assert!(h(&r, "access-control-allow-credentials").is_none());
    assert!(h(&r, "vary").is_none());

    // cors = false: none at all.
    let r = c
        .get(g.url("/internal/x"))
        .header("origin", APP)
        .send()
        .await
        .unwrap();
    assert!(h(&r, "access-control-allow-origin").is_none());
    assert!(h(&r, "vary").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rampart_errors_are_readable_by_the_browser() {
    let origin = Origin::start("o").await;
    let g = Gateway::start(&config(origin.addr, free_port()));
    let c = client();
    let check = |r: &reqwest::Response, status: u16| {
        assert_eq!(r.status(), status);
        assert_eq!(
            h(r, "access-control-allow-origin").as_deref(),
            Some(APP),
            "{status}"
        );
        assert_eq!(
            h(r, "access-control-allow-credentials").as_deref(),
            Some("true"),
            "{status}"
        );
        assert_security_headers(&header_map(r));
    };
    check(
        &c.get(g.url("/nowhere"))
            .header("origin", APP)
            .send()
            .await
            .unwrap(),
        404,
    );
    check(
        &c.get(g.url("/dead/x"))
            .header("origin", APP)
            .send()
            .await
            .unwrap(),
        502,
    );
    check(
        &c.post(g.url("/api/x"))
            .header("origin", APP)
            .body(vec![0u8; 4096])
            .send()
            .await
            .unwrap(),
        413,
    );
    c.get(g.url("/limited/x"))
        .header("origin", APP)
        .send()
        .await
        .unwrap();
    let r = c
        .get(g.url("/limited/x"))
        .header("origin", APP)
        .send()
        .await
        .unwrap();
    check(&r, 429);
    assert!(r.headers().get("retry-after").is_some());
}
