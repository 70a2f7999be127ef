//! Upstream pools end to end: balancing, health, retries, keepalive cap.

use std::time::{Duration, Instant};

use crate::common::*;

fn pool_config(servers: &str, pool_extra: &str) -> String {
    Config::new()
        .table(&format!(
            "[upstreams.app]\nservers = [{servers}]\n{pool_extra}"
        ))
        .proxy("/", "app")
        .build()
}

fn server(addr: impl std::fmt::Display, extra: &str) -> String {
    format!("{{ addr = \"{addr}\"{extra} }}")
}

async fn wait_for(mut f: impl FnMut() -> bool, within: Duration, what: &str) {
    let deadline = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn gauge_values(metrics: &str, name: &str) -> Vec<(String, f64)> {
    metrics
        .lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| {
            l.rsplit_once(' ')
                .map(|(k, v)| (k.to_string(), v.parse().unwrap_or(f64::NAN)))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_weights_one_to_two() {
    let a = Origin::start("a").await;
    let b = Origin::start("b").await;
    let g = Gateway::start(&pool_config(
        &format!("{}, {}", server(a.addr, ""), server(b.addr, ", weight = 2")),
        "balance = \"round_robin\"",
    ));
    let c = client();
    for _ in 0..300 {
        assert_eq!(c.get(g.url("/")).send().await.unwrap().status(), 200);
    }
    assert!((95..=105).contains(&a.hits()), "a: {}", a.hits());
    assert!((195..=205).contains(&b.hits()), "b: {}", b.hits());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_conn_sends_fewer_requests_to_a_slow_server() {
    let fast = Origin::start("fast").await;
    let slow = Origin::start_with(
        "slow",
        "127.0.0.1:0",
        Behaviour {
            delay: Duration::from_millis(200),
            ..Default::default()
        },
    )
    .await;
    let g = Gateway::start(&pool_config(
        &format!("{}, {}", server(fast.addr, ""), server(slow.addr, "")),
        "",
    ));
    let c = client();
    let mut tasks = Vec::new();
    for i in 0..200 {
        let (c, url) = (c.clone(), g.url("/"));
        tasks.push(tokio::spawn(async move {
            // Spread arrivals a little so in-flight counts matter.
            tokio::time::sleep(Duration::from_millis(i % 50 * 5)).await;
            c.get(url).send().await.map(|r| r.status().as_u16())
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), 200);
    }
    assert_eq!(fast.hits() + slow.hits(), 200);
    assert!(
        slow.hits() * 3 < fast.hits(),
        "slow got {} vs fast {}",
        slow.hits(),
        fast.hits()
    );
    let m = g
        .metrics_when(|m| {
            gauge_values(m, "rampart_upstream_in_flight{")
                .iter()
                .all(|(_, v)| *v == 0.0)
        })
        .await;
    for (k, v) in gauge_values(&m, "rampart_upstream_in_flight{") {
        assert_eq!(v, 0.0, "{k}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_returns_to_zero_after_aborts_and_timeouts() {
    let slow = Origin::start_with(
        "slow",
        "127.0.0.1:0",
        Behaviour {
            delay: Duration::from_millis(1500),
            ..Default::default()
        },
    )
    .await;
    let g = Gateway::start(&pool_config(
        &server(slow.addr, ""),
        "read_timeout = \"400ms\"",
    ));
    // Upstream timeouts.
    for _ in 0..3 {
        assert_eq!(client().get(g.url("/")).send().await.unwrap().status(), 504);
    }
    // Client aborts: the client gives up before the upstream answers.
    let impatient = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    for _ in 0..5 {
        assert!(impatient.get(g.url("/")).send().await.is_err());
    }
    let mut last = String::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let m = g.metrics().await;
        let vals = gauge_values(&m, "rampart_upstream_in_flight{");
        if !vals.is_empty() && vals.iter().all(|(_, v)| *v == 0.0) {
            break;
        }
        last = m;
        assert!(
            Instant::now() < deadline,
            "in-flight did not return to 0:\n{last}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = last;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_server_is_retried_around_marked_down_and_returns() {
    let a = Origin::start("a").await;
    let b = Origin::start("b").await;
    let b_addr = b.addr;
    let g = Gateway::start(&pool_config(
        &format!("{}, {}", server(a.addr, ""), server(b.addr, "")),
        "max_fails = 1\nfail_timeout = \"2s\"",
    ));
    let c = client();
    for _ in 0..4 {
        assert_eq!(c.get(g.url("/")).send().await.unwrap().status(), 200);
    }
    assert_eq!((a.hits(), b.hits()), (2, 2));
    drop(b); // kill b
    tokio::time::sleep(Duration::from_millis(100)).await;
    for _ in 0..20 {
        let r = c.get(g.url("/")).send().await.unwrap();
        assert_eq!(r.status(), 200, "every GET succeeds while b is dead");
    }
    let m = g.metrics().await;
    let key = format!("rampart_upstream_requests_total{{addr=\"{b_addr}\",outcome=\"connect_error\",upstream=\"app\"}} 1");
    assert!(
        m.contains(&key),
        "b tried once, then skipped for fail_timeout:\n{m}"
    );
    assert!(
        m.contains(&format!(
            "rampart_upstream_server_up{{addr=\"{b_addr}\",upstream=\"app\"}} 0"
        )),
        "{m}"
    );
    // b comes back on the same address; after fail_timeout it gets traffic again.
    let b2 = Origin::start_on("b2", &b_addr.to_string()).await;
    tokio::time::sleep(Duration::from_millis(2200)).await;
    for _ in 0..10 {
        assert_eq!(c.get(g.url("/")).send().await.unwrap().status(), 200);
    }
    assert!(b2.hits() >= 4, "b gets traffic again: {}", b2.hits());
    let m = g.metrics().await;
    assert!(
        m.contains(&format!(
            "rampart_upstream_server_up{{addr=\"{b_addr}\",upstream=\"app\"}} 1"
        )),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_down_is_a_quick_502_and_backup_takes_over() {
    let dead1 = free_port();
    let dead2 = free_port();
    let g = Gateway::start(&pool_config(
        &format!(
            "{}, {}",
            server(format!("127.0.0.1:{dead1}"), ""),
            server(format!("127.0.0.1:{dead2}"), "")
        ),
        "",
    ));
    let t = Instant::now();
    assert_eq!(client().get(g.url("/")).send().await.unwrap().status(), 502);
    assert!(t.elapsed() < Duration::from_secs(2));
    // Both down now; the pool still tries them rather than failing without a connect.
    assert_eq!(client().get(g.url("/")).send().await.unwrap().status(), 502);
    let m = g.metrics().await;
    let tries: f64 = gauge_values(&m, "rampart_upstream_requests_total{")
        .iter()
        .map(|(_, v)| v)
        .sum();
    assert_eq!(tries, 4.0, "two requests x two servers: {m}");
    drop(g);

    let backup = Origin::start("backup").await;
    let primary = Origin::start("primary").await;
    let p_addr = primary.addr;
    let g = Gateway::start(&pool_config(
        &format!(
            "{}, {}",
            server(primary.addr, ""),
            server(backup.addr, ", backup = true")
        ),
        "",
    ));
    for _ in 0..5 {
        assert_eq!(client().get(g.url("/")).send().await.unwrap().status(), 200);
    }
    assert_eq!(
        (primary.hits(), backup.hits()),
        (5, 0),
        "backup idle while the primary is up"
    );
    drop(primary);
    for _ in 0..5 {
        assert_eq!(client().get(g.url("/")).send().await.unwrap().status(), 200);
    }
    assert_eq!(backup.hits(), 5);
    let _ = p_addr;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_checks_take_a_sick_server_out_before_clients_see_it() {
    let good = Origin::start("good").await;
    let sick = Origin::start_with(
        "sick",
        "127.0.0.1:0",
        Behaviour {
            status: Some(500),
            health: Some(503),
            ..Default::default()
        },
    )
    .await;
    let g = Gateway::start(&pool_config(
        &format!("{}, {}", server(good.addr, ""), server(sick.addr, "")),
        "[upstreams.app.health_check]\npath = \"/health\"\ninterval = \"100ms\"\ntimeout = \"500ms\"\nunhealthy_threshold = 1\nhealthy_threshold = 1",
    ));
    let admin = g.admin;
    let sick_addr = sick.addr;
    wait_for(
        || {
            let body = std::process::Command::new("curl")
                .args(["-s", &format!("http://127.0.0.1:{admin}/metrics")])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            body.contains(&format!(
                "rampart_upstream_server_up{{addr=\"{sick_addr}\",upstream=\"app\"}} 0"
            ))
        },
        Duration::from_secs(5),
        "the sick server to be marked down",
    )
    .await;
    let c = client();
    for _ in 0..20 {
        assert_eq!(c.get(g.url("/")).send().await.unwrap().status(), 200);
    }
    assert_eq!(sick.hits(), 0, "no client request reached the sick server");
    assert_eq!(good.hits(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_is_not_retried_after_its_body_was_sent_but_get_is() {
    let broken = Dropper::start().await;
    let good = Origin::start("good").await;
    let g = Gateway::start(&pool_config(
        &format!("{}, {}", server(broken.addr, ""), server(good.addr, "")),
        "max_fails = 0\nbalance = \"round_robin\"",
    ));
    let c = client();
    let mut post_502 = 0;
    for _ in 0..4 {
        let r = c
            .post(g.url("/submit"))
            .body("payload=1")
            .send()
            .await
            .unwrap();
        if r.status() == 502 {
            post_502 += 1;
        } else {
            assert_eq!(r.status(), 200);
        }
    }
    assert_eq!(
        post_502, 2,
        "the POSTs that hit the broken server fail, they are not replayed"
    );
    let seen = good.seen.lock().unwrap().clone();
    assert_eq!(
        seen.iter().filter(|s| s.method == "POST").count(),
        2,
        "no POST replayed to the good server"
    );
    // A GET that hits the broken server is retried on the good one.
    for _ in 0..4 {
        assert_eq!(c.get(g.url("/read")).send().await.unwrap().status(), 200);
    }
    assert!(broken.accepted() >= 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_requests_move_on_after_a_503() {
    let failing = Origin::start_with(
        "failing",
        "127.0.0.1:0",
        Behaviour {
            status: Some(503),
            ..Default::default()
        },
    )
    .await;
    let good = Origin::start("good").await;
    let g = Gateway::start(&pool_config(
        &format!("{}, {}", server(failing.addr, ""), server(good.addr, "")),
        "balance = \"round_robin\"",
    ));
    let c = client();
    for _ in 0..6 {
        assert_eq!(c.get(g.url("/")).send().await.unwrap().status(), 200);
    }
    assert_eq!(good.hits(), 6);
    assert_eq!(
        failing.hits(),
        3,
        "every other request tried the failing server first"
    );
    // A POST gets the 503 as is.
    let statuses: Vec<u16> = {
        let mut v = Vec::new();
        for _ in 0..2 {
            v.push(
                c.post(g.url("/"))
                    .body("x")
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16(),
            );
        }
        v
    };
    assert!(statuses.contains(&503), "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_keepalive_idle_connections_per_pool() {
    let origin = Origin::start_with(
        "o",
        "127.0.0.1:0",
        Behaviour {
            delay: Duration::from_millis(100),
            ..Default::default()
        },
    )
    .await;
    let g = Gateway::start(&pool_config(&server(origin.addr, ""), "keepalive = 2"));
    let c = client();
    for _round in 0..2 {
        let mut tasks = Vec::new();
        for _ in 0..12 {
            let (c, url) = (c.clone(), g.url("/"));
            tasks.push(tokio::spawn(async move {
                c.get(url).send().await.map(|r| r.status().as_u16())
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap(), 200);
        }
        let open = origin.open.clone();
        wait_for(
            || open.load(std::sync::atomic::Ordering::SeqCst) <= 2,
            Duration::from_secs(3),
            "idle connections to shrink to keepalive",
        )
        .await;
    }
    // Reuse still happens: sequential requests do not open new connections.
    let before = origin.accepted.load(std::sync::atomic::Ordering::SeqCst);
    for _ in 0..10 {
        c.get(g.url("/")).send().await.unwrap();
    }
    let after = origin.accepted.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        after - before <= 1,
        "sequential requests reuse idle connections ({before} -> {after})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_upstreams_verify_against_the_configured_ca() {
    let origin = Origin::start_with(
        "secure",
        "127.0.0.1:0",
        Behaviour {
            tls: true,
            ..Default::default()
        },
    )
    .await;
    let addr = origin.addr;
    let with = |extra: &str| pool_config(&server(addr, ""), &format!("tls = true\n{extra}"));
    // Trusted through tls_ca; SNI / verification name from tls_server_name.
    let g = Gateway::start(&with(&format!(
        "tls_ca = \"{}\"\ntls_server_name = \"localhost\"",
        fixture("ca.pem")
    )));
    let r = client().get(g.url("/x")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "origin secure");
    drop(g);
    // The name must match the certificate.
    let g = Gateway::start(&with(&format!(
        "tls_ca = \"{}\"\ntls_server_name = \"wrong.example\"",
        fixture("ca.pem")
    )));
    assert_eq!(
        client().get(g.url("/x")).send().await.unwrap().status(),
        502
    );
    drop(g);
    // The system roots do not know the test CA...
    let g = Gateway::start(&with("tls_server_name = \"localhost\""));
    assert_eq!(
        client().get(g.url("/x")).send().await.unwrap().status(),
        502
    );
    drop(g);
    // ...unless verification is off.
    let g = Gateway::start(&with("tls_verify = false"));
    assert_eq!(
        client().get(g.url("/x")).send().await.unwrap().status(),
        200
    );
    assert_eq!(origin.hits(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_checks_probe_tls_servers_over_tls() {
    let good = Origin::start_with(
        "good",
        "127.0.0.1:0",
        Behaviour {
            tls: true,
            ..Default::default()
        },
    )
    .await;
    let sick = Origin::start_with(
        "sick",
        "127.0.0.1:0",
        Behaviour {
            tls: true,
            status: Some(500),
            health: Some(503),
            ..Default::default()
        },
    )
    .await;
    let g = Gateway::start(&pool_config(
        &format!("{}, {}", server(good.addr, ""), server(sick.addr, "")),
        &format!(
            "tls = true\ntls_ca = \"{}\"\ntls_server_name = \"localhost\"\n[upstreams.app.health_check]\npath = \"/health\"\ninterval = \"100ms\"\ntimeout = \"1s\"\nunhealthy_threshold = 1\nhealthy_threshold = 1",
            fixture("ca.pem")
        ),
    ));
    let sick_down = format!(
        "rampart_upstream_server_up{{addr=\"{}\",upstream=\"app\"}} 0",
        sick.addr
    );
    let good_up = format!(
        "rampart_upstream_server_up{{addr=\"{}\",upstream=\"app\"}} 1",
        good.addr
    );
    let m = g.metrics_when(|m| m.contains(&sick_down)).await;
    assert!(m.contains(&sick_down) && m.contains(&good_up), "{m}");
    for _ in 0..10 {
        assert_eq!(client().get(g.url("/")).send().await.unwrap().status(), 200);
    }
    assert_eq!(sick.hits(), 0);
}

/// Sockets of this machine (IPv4 and IPv6) whose remote end is `port`, in
/// TCP state `state` (`/proc/net/tcp` codes: `08` is CLOSE_WAIT).
fn sockets_to(port: u16, state: &str) -> usize {
    let want = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|t| {
            t.lines()
                .skip(1)
                .map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
                .collect::<Vec<_>>()
        })
        .filter(|cols| cols.len() > 3 && cols[2].ends_with(&want) && cols[3] == state)
        .count()
}

/// An idle pooled connection that the upstream closes is dropped by the
/// gateway soon after (no socket left in CLOSE_WAIT until some later
/// request happens to pick it), and the next request gets a fresh one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_the_upstream_closes_are_dropped() {
    use std::io::Write;
    // A raw upstream: answers each request with keep-alive, then closes the
    // connection 200 ms later, as a server with a short keepalive_timeout.
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = upstream.local_addr().unwrap().port();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    std::thread::spawn(move || {
        for conn in upstream.incoming().take(8) {
            let Ok(mut s) = conn else { return };
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            std::thread::spawn(move || {
                if !read_request_head(&mut s, Duration::from_secs(5)) {
                    return;
                }
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
                std::thread::sleep(Duration::from_millis(200));
            });
        }
    });
    let g = Gateway::start(&pool_config(&server(format!("127.0.0.1:{port}"), ""), ""));
    let c = client();
    let r = c.get(g.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "ok");

    // The upstream has closed its end after 200 ms; the gateway's end must
    // not stay half-closed.
    tokio::time::sleep(Duration::from_millis(300)).await;
    wait_for(
        || sockets_to(port, "08") == 0,
        Duration::from_secs(3),
        "the gateway to close the connection the upstream closed (CLOSE_WAIT)",
    )
    .await;
    let r = c.get(g.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
}
