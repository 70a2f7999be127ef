//! Decision cost of the rate limiter: one hot key, and 1,000,000 distinct
//! keys against a zone of `max_keys` = 100,000 (eviction on every new key),
//! single- and two-threaded. `cargo bench --bench ratelimit`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use rampart::ratelimit::{Key, Limit, Zone};

const LIMIT: Limit = Limit {
    rate: 10_000,
    burst: 20_000,
    delay: u64::MAX,
};

fn one_key(c: &mut Criterion) {
    let zone = Zone::new(100_000);
    let mut now = 0u64;
    c.bench_function("check: 1 key", |b| {
        b.iter(|| {
            now += 1;
            zone.check(Key::Hashed(42), now, &LIMIT)
        })
    });
}

fn many_keys(c: &mut Criterion) {
    let zone = Zone::new(100_000);
    let mut i = 0u64;
    c.bench_function("check: 1M distinct keys, max_keys 100k", |b| {
        b.iter(|| {
            i = (i + 1) % 1_000_000;
            zone.check(
                Key::ip(std::net::IpAddr::from((i as u32).to_be_bytes())),
                i,
                &LIMIT,
            )
        })
    });
}

fn two_threads(c: &mut Criterion) {
    for (name, distinct) in [
        ("2 threads: 1 key", false),
        ("2 threads: 1M distinct keys", true),
    ] {
        c.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let zone = Arc::new(Zone::new(100_000));
                let start = Instant::now();
                let hs: Vec<_> = (0..2u64)
                    .map(|t| {
                        let zone = zone.clone();
                        std::thread::spawn(move || {
                            for k in 0..iters {
                                let key = if distinct {
                                    Key::Hashed((k * 2 + t) % 1_000_000)
                                } else {
                                    Key::Hashed(1)
                                };
                                zone.check(key, k, &LIMIT);
                            }
                        })
                    })
                    .collect();
                for h in hs {
                    let _ = h.join();
                }
                // Time per decision: two threads made 2 * iters decisions.
                start.elapsed() / 2
            })
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500));
    targets = one_key, many_keys, two_threads
}
criterion_main!(benches);
