//! Rate-limit zones shared by several rampart instances through a real
//! `redis-server` (`store = "redis://..."`): one bucket per key whichever
//! instance a request reaches, and `on_store_error` when Redis is gone.

use std::time::{Duration, Instant};

use crate::common::*;

/// A gateway whose routes `/a`, `/b`, ... are limited by zones given as
/// (name, zone keys, route `rate_limit` value).
fn config(zones: &[(&str, &str, &str)]) -> String {
    let mut c = Config::new().log("level = \"info\"");
    for (name, keys, rl) in zones {
        c = c
            .table(&format!("[rate_limits.{name}]\n{keys}"))
            .route(&format!(
                "prefix = \"/{name}\"\nrespond = {{ body = \"ok\" }}\nrate_limit = {rl}"
            ));
    }
    c.route("prefix = \"/\"\nrespond = { body = \"free\" }")
        .build()
}

/// Starts a gateway and waits until its Redis connection is up.
async fn gateway(toml: &str) -> Gateway {
    let g = Gateway::start(toml);
    connected(&g, 1).await;
    g
}

/// Waits until the log says "connected" `n` times.
async fn connected(g: &Gateway, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while g
        .stderr_text()
        .matches("rate-limit store connected")
        .count()
        < n
    {
        assert!(
            Instant::now() < deadline,
            "no Redis connection: {}",
            g.stderr_text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `n` simultaneous GETs, alternating between the gateways; each answer's
/// status and how long it took.
async fn spread(gs: &[&Gateway], path: &str, n: usize) -> Vec<(u16, Duration)> {
    let c = client();
    let start = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (c, url) = (c.clone(), gs[i % gs.len()].url(path));
            tokio::spawn(async move {
                let r = c.get(url).send().await.unwrap();
                (r.status().as_u16(), start.elapsed())
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

fn count(rs: &[(u16, Duration)], status: u16) -> usize {
    rs.iter().filter(|(s, _)| *s == status).count()
}

fn metric(m: &str, prefix: &str) -> f64 {
    m.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_one_bucket() {
    let redis = RedisServer::start();
    let store = format!("rate = \"10r/s\"\nstore = \"{}\"", redis.url());
    let toml = config(&[("z", &store, "{ zone = \"z\", burst = 20, nodelay = true }")]);
    let (g1, g2) = (gateway(&toml).await, gateway(&toml).await);
    let c = client();
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let (c, url) = (c.clone(), [&g1, &g2][i % 2].url("/z"));
            tokio::spawn(async move { c.get(url).send().await.unwrap() })
        })
        .collect();
    let mut rs = Vec::new();
    for t in tasks {
        rs.push(t.await.unwrap());
    }
    let served = rs.iter().filter(|r| r.status() == 200).count();
    let refused: Vec<_> = rs.iter().filter(|r| r.status() == 429).collect();
    assert_eq!((served, refused.len()), (21, 79));
    for r in refused {
        assert_eq!(r.headers()["retry-after"], "1");
    }
    // One script, loaded once, called by its SHA.
    let stats = redis_info(&redis, "commandstats");
    let calls = |cmd: &str| {
        stats
            .lines()
            .find_map(|l| l.strip_prefix(&format!("cmdstat_{cmd}:calls=")))
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    assert!(calls("evalsha") >= 100, "{stats}");
    assert_eq!(calls("eval"), 0, "{stats}");
    let limited = metric(
        &g1.metrics().await,
        "rampart_rate_limited_total{zone=\"z\"}",
    ) + metric(
        &g2.metrics().await,
        "rampart_rate_limited_total{zone=\"z\"}",
    );
    assert_eq!(limited as usize, 79);
    // One key, named by zone, expiring once drained.
    assert_eq!(redis.command(&["DBSIZE"]).as_deref(), Some(":1"));
    let ttl = redis.command(&[
        "EVAL",
        "return redis.call('PTTL', redis.call('KEYS', 'rampart:rl:z:*')[1])",
        "0",
    ]);
    let ttl: i64 = ttl
        .as_deref()
        .and_then(|t| t.strip_prefix(':'))
        .and_then(|t| t.parse().ok())
        .unwrap_or(-1);
    assert!((1..=4_000).contains(&ttl), "ttl {ttl} ms");
    // Another client address has its own bucket, on either instance.
    let other = reqwest::Client::builder()
        .no_proxy()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    assert_eq!(other.get(g2.url("/z")).send().await.unwrap().status(), 200);
    assert_eq!(count(&spread(&[&g1, &g2], "/", 10).await, 200), 10);
    // Decisions are timed.
    let m = g1.metrics().await;
    assert!(
        metric(
            &m,
            "rampart_rate_limit_store_duration_seconds_count{zone=\"z\"}"
        ) >= 1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delays_follow_the_single_instance_model_across_instances() {
    let redis = RedisServer::start();
    let store = format!("rate = \"10r/s\"\nstore = \"{}\"", redis.url());
    let toml = config(&[
        ("held", &store, "{ zone = \"held\", burst = 5 }"),
        ("some", &store, "{ zone = \"some\", burst = 5, delay = 2 }"),
    ]);
    let (g1, g2) = (gateway(&toml).await, gateway(&toml).await);
    // burst 5 without nodelay: 6 served, 100 ms apart (the zone's rate),
    // whichever instance each reached; 4 refused at once.
    let rs = spread(&[&g1, &g2], "/held", 10).await;
    assert_eq!((count(&rs, 200), count(&rs, 429)), (6, 4));
    let mut served: Vec<Duration> = rs.iter().filter(|r| r.0 == 200).map(|r| r.1).collect();
    served.sort();
    assert!(served[0] < Duration::from_millis(90), "{served:?}");
    assert!(served[5] >= Duration::from_millis(450), "{served:?}");
    assert!(served[5] < Duration::from_millis(1500), "{served:?}");
    // delay = 2: the first 3 at once, the next 3 held.
    let rs = spread(&[&g1, &g2], "/some", 10).await;
    assert_eq!((count(&rs, 200), count(&rs, 429)), (6, 4));
    let fast = rs
        .iter()
        .filter(|r| r.0 == 200 && r.1 < Duration::from_millis(80))
        .count();
    assert_eq!(fast, 3, "{rs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_redis_is_gone_on_store_error_decides_and_sharing_resumes_when_it_is_back() {
    let mut redis = RedisServer::start();
    let zone = |mode: &str| {
        format!(
            "rate = \"1r/m\"\nstore = \"{}\"\non_store_error = \"{mode}\"\nstore_timeout = \"200ms\"",
            redis.url()
        )
    };
    let (allow, deny, local) = (zone("allow"), zone("deny"), zone("local"));
    let toml = config(&[
        (
            "allow",
            &allow,
            "{ zone = \"allow\", burst = 2, nodelay = true }",
        ),
        (
            "deny",
            &deny,
            "{ zone = \"deny\", burst = 2, nodelay = true, status = 503 }",
        ),
        (
            "local",
            &local,
            "{ zone = \"local\", burst = 2, nodelay = true }",
        ),
    ]);
    let (g1, g2) = (gateway(&toml).await, gateway(&toml).await);
    let rs = spread(&[&g1, &g2], "/allow", 6).await;
    assert_eq!(count(&rs, 200), 3, "shared while Redis is up");

    redis.stop();
    // Requests sent one after another: none waits longer than
    // store_timeout (plus a generous margin), none gets a 5xx it should not.
    let c = client();
    let mut slowest = Duration::ZERO;
    let statuses = |path: &'static str, n: usize| {
        let (c, url) = (c.clone(), g1.url(path));
        async move {
            let mut out = Vec::new();
            for _ in 0..n {
                let t = Instant::now();
                out.push((
                    c.get(&url).send().await.unwrap().status().as_u16(),
                    t.elapsed(),
                ));
            }
            out
        }
    };
    let allowed = statuses("/allow", 10).await;
    let denied = statuses("/deny", 5).await;
    let local_rs = statuses("/local", 6).await;
    for (_, took) in allowed.iter().chain(&denied).chain(&local_rs) {
        slowest = slowest.max(*took);
    }
    assert!(slowest < Duration::from_millis(700), "slowest {slowest:?}");
    assert_eq!(count(&allowed, 200), 10, "allow: fail open {allowed:?}");
    assert_eq!(
        count(&denied, 503),
        5,
        "deny: the route's status {denied:?}"
    );
    // local: this instance's own bucket, burst 2: 3 served.
    assert_eq!(
        (count(&local_rs, 200), count(&local_rs, 429)),
        (3, 3),
        "{local_rs:?}"
    );
    let m = g1.metrics().await;
    for (zone, n) in [("allow", 10.0), ("deny", 5.0), ("local", 6.0)] {
        let errors = metric(
            &m,
            &format!("rampart_rate_limit_store_errors_total{{zone=\"{zone}\"}}"),
        );
        assert_eq!(errors, n, "{zone}");
    }
    assert_eq!(metric(&m, "rampart_rate_limited_total{zone=\"deny\"}"), 5.0);

    // Back: both instances reconnect by themselves and share again.
    redis.start_again();
    connected(&g1, 2).await;
    connected(&g2, 2).await;
    let rs = spread(&[&g1, &g2], "/deny", 6).await;
    assert_eq!((count(&rs, 200), count(&rs, 503)), (3, 3), "{rs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_keeps_the_zone_keeps_its_keys() {
    let redis = RedisServer::start();
    let zone = |rate: &str| format!("rate = \"{rate}\"\nstore = \"{}\"", redis.url());
    let rl = "{ zone = \"z\", burst = 1, nodelay = true }";
    let first = config(&[("z", &zone("1r/m"), rl)]);
    let g = gateway(&first).await;
    let rs = spread(&[&g], "/z", 3).await;
    assert_eq!(count(&rs, 200), 2);
    // Another route changes; the zone does not: still limited.
    let second = Config::new()
        .log("level = \"info\"")
        .table(&format!("[rate_limits.z]\n{}", zone("1r/m")))
        .route(&format!(
            "prefix = \"/z\"\nrespond = {{ body = \"ok\" }}\nrate_limit = {rl}"
        ))
        .route("prefix = \"/\"\nrespond = { body = \"second\" }")
        .build();
    g.reload_to(&second, "/", "second").await;
    assert_eq!(count(&spread(&[&g], "/z", 1).await, 429), 1);
    assert_eq!(redis.command(&["DBSIZE"]).as_deref(), Some(":1"));
    // A new rate is a new bucket, as for a local zone.
    let third = second
        .replace("1r/m", "2r/m")
        .replace("body = \"second\"", "body = \"third\"");
    g.reload_to(&third, "/", "third").await;
    assert_eq!(count(&spread(&[&g], "/z", 1).await, 200), 1);
}

/// The Lua script against the nginx transcription the local limiter is
/// tested with (`ratelimit_model`), over one to three zones of a route,
/// with random rates, bursts, delays and times (given to the script, which
/// otherwise reads Redis's clock).
#[test]
fn the_script_decides_as_nginx_over_several_zones() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config as RunnerConfig, TestRunner};
    use rampart::ratelimit::Limit;

    use crate::ratelimit_model::{Model, Out};

    let redis = RedisServer::start();
    let conn = std::cell::RefCell::new(Resp::connect(redis.port));
    let script = include_str!("../../src/ratelimit/limit_req.lua");
    let case = std::cell::Cell::new(0u32);
    let zone = (1u32..50, any::<bool>(), 0i64..20, 0u8..5);
    let strategy = (
        prop::collection::vec(zone, 1..4),
        prop::collection::vec((0u8..3, 0u32..400), 1..150),
    );
    TestRunner::new(RunnerConfig::with_cases(150))
        .run(&strategy, |(zones, events)| {
            case.set(case.get() + 1);
            let case = case.get();
            let limits: Vec<Limit> = zones
                .iter()
                .map(|&(n, per_second, burst, delay_mode)| {
                    let rate = if per_second { n * 1000 } else { n * 1000 / 60 }.max(1);
                    Limit {
                        rate: u64::from(rate),
                        burst: burst as u64 * 1000,
                        delay: match delay_mode {
                            0 => u64::MAX,
                            d => u64::from(d - 1).min(burst as u64) * 1000,
                        },
                    }
                })
                .collect();
            let mut models: Vec<Model> = limits
                .iter()
                .map(|l| {
                    Model::new(
                        l.rate as i64,
                        l.burst as i64,
                        l.delay.min(i64::MAX as u64 / 1000) as i64,
                    )
                })
                .collect();
            let mut now = 1_000_000i64;
            for (i, (key, dt)) in events.iter().enumerate() {
                now += i64::from(*dt) - if dt % 17 == 0 { 300 } else { 0 };
                // nginx over several zones: refused by one, counted in none.
                let trial: Vec<Out> = models
                    .iter()
                    .map(|m| m.clone().request(*key, now))
                    .collect();
                let want = match trial.iter().position(|o| *o == Out::Busy) {
                    Some(z) => Err(z),
                    None => Ok(models
                        .iter_mut()
                        .map(|m| match m.request(*key, now) {
                            Out::Ok(d) => d,
                            Out::Busy => -1,
                        })
                        .max()
                        .unwrap_or(0)),
                };
                let mut args = vec![
                    "EVAL".to_string(),
                    script.to_string(),
                    limits.len().to_string(),
                ];
                for z in 0..limits.len() {
                    args.push(format!("case{case}:zone{z}:key{key}"));
                }
                for l in &limits {
                    args.push(l.rate.to_string());
                    args.push(l.burst.to_string());
                }
                args.push(now.to_string());
                let reply = conn.borrow_mut().integers(&args);
                let got = match reply.as_slice() {
                    [0, excess @ ..] => Ok(excess
                        .iter()
                        .zip(&limits)
                        .map(|(e, l)| l.delay_ms(*e as u64) as i64)
                        .max()
                        .unwrap_or(0)),
                    [z, _] => Err(*z as usize - 1),
                    other => panic!("reply {other:?}"),
                };
                prop_assert_eq!(
                    got,
                    want,
                    "event {} (key {}, t={}) {:?}",
                    i,
                    key,
                    now,
                    limits
                );
            }
            Ok(())
        })
        .unwrap();
}

/// A plain RESP connection for the script test.
struct Resp(std::io::BufReader<std::net::TcpStream>);

impl Resp {
    fn connect(port: u16) -> Resp {
        let s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        Resp(std::io::BufReader::new(s))
    }

    /// Sends a command whose answer is an array of integers.
    fn integers(&mut self, args: &[String]) -> Vec<i64> {
        use std::io::{BufRead, Write};
        let mut req = format!("*{}\r\n", args.len());
        for a in args {
            req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        self.0.get_mut().write_all(req.as_bytes()).unwrap();
        let mut line = String::new();
        self.0.read_line(&mut line).unwrap();
        let n: usize = match line.trim_end().strip_prefix('*') {
            Some(n) => n.parse().unwrap(),
            None => panic!("reply {line:?}"),
        };
        (0..n)
            .map(|_| {
                line.clear();
                self.0.read_line(&mut line).unwrap();
                line.trim_end().trim_start_matches(':').parse().unwrap()
            })
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_mid_load_fails_no_request() {
    let mut redis = RedisServer::start();
    let store = format!("rate = \"100000r/s\"\nstore = \"{}\"", redis.url());
    let toml = config(&[(
        "z",
        &store,
        "{ zone = \"z\", burst = 100000, nodelay = true }",
    )]);
    let g = gateway(&toml).await;
    // Four clients send requests back to back while Redis dies and comes
    // back; every request is answered 200 (on_store_error = "allow").
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (c, url, stop) = (client(), g.url("/z"), stop.clone());
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                for _ in 0..20_000 {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    statuses.push(c.get(&url).send().await.map(|r| r.status().as_u16()));
                }
                statuses
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    redis.stop();
    tokio::time::sleep(Duration::from_millis(500)).await;
    redis.start_again();
    connected(&g, 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for w in workers {
        for s in w.await.unwrap() {
            assert_eq!(s.ok(), Some(200));
            total += 1;
        }
    }
    let m = g.metrics().await;
    let errors = metric(&m, "rampart_rate_limit_store_errors_total{zone=\"z\"}");
    assert!(
        errors >= 1.0 && (errors as usize) < total,
        "{errors} of {total}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_uses_tls_and_checks_the_certificate() {
    let redis = RedisServer::start_tls();
    let store = format!(
        "rate = \"1r/m\"\nstore = \"{}\"\non_store_error = \"deny\"",
        redis.url()
    );
    let toml = config(&[("z", &store, "{ zone = \"z\", burst = 1, nodelay = true }")]);
    // Trusting the test CA (the system store, here pointed at it): shared
    // limiting over TLS.
    let g = Gateway::start_with_env(&toml, &[("SSL_CERT_FILE", &fixture("ca.pem"))]);
    connected(&g, 1).await;
    let rs = spread(&[&g], "/z", 3).await;
    assert_eq!((count(&rs, 200), count(&rs, 429)), (2, 1), "{rs:?}");
    // Not trusting it: no connection, so on_store_error = "deny" refuses.
    let untrusting = Gateway::start(&toml);
    let log = untrusting
        .stderr_when_contains("rate-limit store unreachable")
        .await;
    assert!(log.contains("rate-limit store unreachable"), "{log}");
    assert!(!log.contains("rate-limit store connected"), "{log}");
    assert_eq!(count(&spread(&[&untrusting], "/z", 1).await, 429), 1);
}

/// `INFO section` of the server, whole (a bulk string).
fn redis_info(redis: &RedisServer, section: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", redis.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let cmd = format!("*2\r\n$4\r\nINFO\r\n${}\r\n{section}\r\n", section.len());
    s.write_all(cmd.as_bytes()).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        if out.ends_with(b"\r\n\r\n") {
            break;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_redis_costs_each_request_at_most_store_timeout() {
    let redis = RedisServer::start();
    let zone = |mode: &str| {
        format!(
            "rate = \"1r/m\"\nstore = \"{}\"\non_store_error = \"{mode}\"\nstore_timeout = \"150ms\"",
            redis.url()
        )
    };
    let (allow, deny) = (zone("allow"), zone("deny"));
    let toml = config(&[
        (
            "allow",
            &allow,
            "{ zone = \"allow\", burst = 5, nodelay = true }",
        ),
        (
            "deny",
            &deny,
            "{ zone = \"deny\", burst = 5, nodelay = true }",
        ),
    ]);
    let g = gateway(&toml).await;
    assert_eq!(count(&spread(&[&g], "/allow", 1).await, 200), 1);
    // Connections stay open but nothing answers: only the timeout decides.
    redis.pause();
    let c = client();
    let mut took = Vec::new();
    for path in ["/allow", "/deny", "/allow", "/deny"] {
        let t = Instant::now();
        let status = c.get(g.url(path)).send().await.unwrap().status().as_u16();
        took.push((path, status, t.elapsed()));
    }
    redis.resume();
    for (path, status, t) in &took {
        let want = if *path == "/allow" { 200 } else { 429 };
        assert_eq!(*status, want, "{took:?}");
        assert!(*t < Duration::from_millis(150 + 350), "{took:?}");
    }
    // At least the first decision of each zone waited the timeout out.
    assert!(took[0].2 >= Duration::from_millis(140), "{took:?}");
    let m = g.metrics().await;
    for zone in ["allow", "deny"] {
        let errors = metric(
            &m,
            &format!("rampart_rate_limit_store_errors_total{{zone=\"{zone}\"}}"),
        );
        assert_eq!(errors, 2.0, "{zone}: {m}");
    }
}
