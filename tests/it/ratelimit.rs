//! Rate limiting end to end (nginx `limit_req` semantics).

use std::time::{Duration, Instant};

use crate::common::*;

fn config(zone: &str, rate_limit: &str) -> String {
    Config::new()
        .table(&format!("[rate_limits.z]\n{zone}"))
        .route(&format!(
            "prefix = \"/\"\nrespond = {{ body = \"ok\" }}\nrate_limit = {rate_limit}"
        ))
        .route("prefix = \"/free/\"\nrespond = { body = \"free\" }")
        .build()
}

async fn burst(c: &reqwest::Client, url: &str, n: usize) -> Vec<reqwest::Response> {
    let mut tasks = Vec::new();
    for _ in 0..n {
        let (c, url) = (c.clone(), url.to_string());
        tasks.push(tokio::spawn(
            async move { c.get(url).send().await.unwrap() },
        ));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_of_100_serves_exactly_21_then_refills_at_the_rate() {
    let g = Gateway::start(&config(
        "rate = \"10r/s\"",
        "{ zone = \"z\", burst = 20, nodelay = true }",
    ));
    let c = client();
    let rs = burst(&c, &g.url("/x"), 100).await;
    let ok = rs.iter().filter(|r| r.status() == 200).count();
    let limited: Vec<_> = rs.iter().filter(|r| r.status() == 429).collect();
    assert_eq!((ok, limited.len()), (21, 79));
    for r in &limited {
        assert_eq!(r.headers()["retry-after"], "1");
        assert_security_headers(&header_map(r));
    }
    // Another client IP has its own bucket.
    let other = reqwest::Client::builder()
        .no_proxy()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    assert_eq!(other.get(g.url("/x")).send().await.unwrap().status(), 200);
    // Routes without the zone are not limited.
    assert_eq!(c.get(g.url("/free/x")).send().await.unwrap().status(), 200);
    // One second later, about 10 more.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let rs = burst(&c, &g.url("/x"), 30).await;
    let ok = rs.iter().filter(|r| r.status() == 200).count();
    assert!((9..=12).contains(&ok), "{ok} after 1 s");
    let m = g.metrics().await;
    let limited: f64 = m
        .lines()
        .find(|l| l.starts_with("rampart_rate_limited_total{zone=\"z\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert_eq!(limited as usize, 79 + 30 - ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_nodelay_requests_leave_at_the_rate() {
    let g = Gateway::start(&config("rate = \"10r/s\"", "{ zone = \"z\", burst = 5 }"));
    let c = client();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let (c, url) = (c.clone(), g.url("/x"));
        tasks.push(tokio::spawn(async move {
            let r = c.get(url).send().await.unwrap();
            (r.status().as_u16(), start.elapsed())
        }));
    }
    let mut done = Vec::new();
    for t in tasks {
        done.push(t.await.unwrap());
    }
    assert!(done.iter().all(|(s, _)| *s == 200), "{done:?}");
    let mut times: Vec<Duration> = done.iter().map(|d| d.1).collect();
    times.sort();
    let spread = times[4] - times[0];
    assert!(
        spread >= Duration::from_millis(350) && spread < Duration::from_millis(1000),
        "spread {spread:?} ({times:?})"
    );
    for w in times.windows(2) {
        let gap = w[1] - w[0];
        assert!(
            gap >= Duration::from_millis(50) && gap < Duration::from_millis(300),
            "gaps ~100 ms: {times:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_minute_zones_and_custom_status() {
    let g = Gateway::start(&config(
        "rate = \"60r/m\"",
        "{ zone = \"z\", status = 503 }",
    ));
    let c = client();
    assert_eq!(c.get(g.url("/x")).send().await.unwrap().status(), 200);
    let r = c.get(g.url("/x")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    tokio::time::sleep(Duration::from_millis(1050)).await;
    assert_eq!(
        c.get(g.url("/x")).send().await.unwrap().status(),
        200,
        "one per second"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_keys_limit_per_value_and_skip_requests_without_it() {
    let g = Gateway::start(&config(
        "rate = \"1r/m\"\nkey = \"header:X-Api-Key\"",
        "{ zone = \"z\" }",
    ));
    let c = client();
    let get = |k: Option<&'static str>| {
        let mut rq = c.get(g.url("/x"));
        if let Some(k) = k {
            rq = rq.header("x-api-key", k);
        }
        rq.send()
    };
    assert_eq!(get(Some("alpha")).await.unwrap().status(), 200);
    assert_eq!(get(Some("alpha")).await.unwrap().status(), 429);
    assert_eq!(
        get(Some("ALPHA")).await.unwrap().status(),
        429,
        "values compare case-insensitively"
    );
    assert_eq!(get(Some("beta")).await.unwrap().status(), 200);
    for _ in 0..5 {
        assert_eq!(
            get(None).await.unwrap().status(),
            200,
            "no header: not limited"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_zones_must_all_accept() {
    let toml = config(
        "rate = \"1r/m\"",
        "[{ zone = \"z\", burst = 5, nodelay = true }, { zone = \"y\", nodelay = true }]",
    )
    .replace(
        "[[servers]]",
        "[rate_limits.y]\nrate = \"1r/m\"\nkey = \"host\"\n\n[[servers]]",
    );
    let g = Gateway::start(&toml);
    let c = client();
    // y (per host, no burst) admits one; z (burst 5) is not charged for y's rejections.
    assert_eq!(c.get(g.url("/x")).send().await.unwrap().status(), 200);
    for _ in 0..3 {
        assert_eq!(c.get(g.url("/x")).send().await.unwrap().status(), 429);
    }
    // Another host: y admits it; z has had only one request so far (rejections not counted).
    for _ in 0..5 {
        let r = c
            .get(g.url("/x"))
            .header("host", format!("h{}", rand_suffix()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let r = c
        .get(g.url("/x"))
        .header("host", "fresh-host")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429, "z is full now (1 + 5 burst)");
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buckets_survive_a_reload_that_keeps_the_zone() {
    let v1 = config("rate = \"1r/m\"", "{ zone = \"z\" }");
    let g = Gateway::start(&v1);
    let c = client();
    assert_eq!(c.get(g.url("/x")).send().await.unwrap().status(), 200);
    assert_eq!(c.get(g.url("/x")).send().await.unwrap().status(), 429);
    // Same zone, another route changed: the bucket is kept.
    g.reload_to(
        &v1.replace("body = \"free\"", "body = \"free2\""),
        "/free/",
        "free2",
    )
    .await;
    assert_eq!(
        c.get(g.url("/x")).send().await.unwrap().status(),
        429,
        "state kept"
    );
    // The rate changes: a fresh bucket.
    let v2 = config("rate = \"2r/m\"", "{ zone = \"z\" }")
        .replace("body = \"free\"", "body = \"free3\"");
    g.reload_to(&v2, "/free/", "free3").await;
    assert_eq!(
        c.get(g.url("/x")).send().await.unwrap().status(),
        200,
        "state reset"
    );
}

/// IPv6 clients are keyed per /64 (`ipv6_prefix`): a host with a /64 does
/// not get a bucket per address. Clients behind a trusted proxy, so that
/// several IPv6 addresses can be tried from loopback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_clients_share_a_bucket_per_prefix() {
    let toml = config(
        "rate = \"1r/m\"",
        "{ zone = \"z\", burst = 0, nodelay = true }",
    )
    .replace(
        "[global]\n",
        "[global]\ntrusted_proxies = [\"127.0.0.1\"]\n",
    );
    let g = Gateway::start(&toml);
    let c = client();
    let from = |ip: &'static str| c.get(g.url("/x")).header("x-forwarded-for", ip).send();
    assert_eq!(from("2001:db8:0:1::1").await.unwrap().status(), 200);
    assert_eq!(
        from("2001:db8:0:1::2").await.unwrap().status(),
        429,
        "same /64"
    );
    assert_eq!(
        from("2001:db8:0:1:ffff::9").await.unwrap().status(),
        429,
        "same /64"
    );
    assert_eq!(
        from("2001:db8:0:2::1").await.unwrap().status(),
        200,
        "another /64"
    );
    assert_eq!(from("10.0.0.1").await.unwrap().status(), 200);
    assert_eq!(
        from("10.0.0.2").await.unwrap().status(),
        200,
        "IPv4: per address"
    );
    drop(g);
    let per_address = toml.replace("rate = \"1r/m\"", "rate = \"1r/m\"\nipv6_prefix = 128");
    let g = Gateway::start(&per_address);
    let from = |ip: &'static str| c.get(g.url("/x")).header("x-forwarded-for", ip).send();
    assert_eq!(from("2001:db8:0:1::1").await.unwrap().status(), 200);
    assert_eq!(from("2001:db8:0:1::2").await.unwrap().status(), 200);
}

/// A `host` zone limits requests that name no host too (HTTP/1.0): they
/// share one bucket instead of escaping the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_zone_limits_requests_without_a_host() {
    let g = Gateway::start(&config(
        "rate = \"1r/m\"\nkey = \"host\"",
        "{ zone = \"z\", burst = 0, nodelay = true }",
    ));
    let port = g.port;
    let statuses = tokio::task::spawn_blocking(move || {
        (0..2)
            .map(|_| exchange_until_close(port, b"GET /x HTTP/1.0\r\n\r\n").0)
            .map(|r| r.get(9..12).unwrap_or_default().to_string())
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    assert_eq!(statuses, ["200", "429"]);
}
