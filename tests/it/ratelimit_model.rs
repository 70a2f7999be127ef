//! The rate limiter against a plain transcription of nginx's
//! `ngx_http_limit_req_lookup` / `ngx_http_limit_req_account`, for random
//! request time sequences.

use std::collections::HashMap;

use proptest::prelude::*;
use rampart::ratelimit::{Key, Limit, Verdict, Zone};

/// nginx, line by line (ngx_http_limit_req_module.c), one zone.
#[derive(Clone)]
pub struct Model {
    rate: i64,                      // ctx->rate: milli-requests per second
    burst: i64,                     // limit->burst: burst * 1000
    delay: i64,                     // limit->delay: delay * 1000, or "infinite" for nodelay
    nodes: HashMap<u8, (i64, i64)>, // key -> (excess, last)
}

#[derive(Debug, PartialEq)]
pub enum Out {
    Ok(i64),
    Busy,
}

impl Model {
    pub fn new(rate: i64, burst: i64, delay: i64) -> Model {
        Model {
            rate,
            burst,
            delay,
            nodes: HashMap::new(),
        }
    }

    pub fn request(&mut self, key: u8, now: i64) -> Out {
        let excess;
        match self.nodes.get(&key).copied() {
            None => {
                // new node: excess = 0, last = now; accepted.
                self.nodes.insert(key, (0, now));
                excess = 0;
            }
            Some((lr_excess, lr_last)) => {
                let mut ms = now - lr_last;
                if ms < -60000 {
                    ms = 1;
                } else if ms < 0 {
                    ms = 0;
                }
                let mut e = lr_excess - self.rate * ms / 1000 + 1000;
                if e < 0 {
                    e = 0;
                }
                if e > self.burst {
                    return Out::Busy;
                }
                let last = if ms != 0 { now } else { lr_last };
                self.nodes.insert(key, (e, last));
                excess = e;
            }
        }
        // ngx_http_limit_req_account: the delay of an accepted request.
        if excess <= self.delay {
            Out::Ok(0)
        } else {
            Out::Ok((excess - self.delay) * 1000 / self.rate)
        }
    }
}

fn run(rate: i64, burst: i64, delay_mode: u8, events: &[(u8, u32)]) {
    let delay = match delay_mode {
        0 => i64::MAX / 1000, // nodelay
        1 => 0,               // default: delay everything beyond the first
        d => i64::from(d - 1).min(burst / 1000) * 1000,
    };
    let mut model = Model::new(rate, burst, delay);
    let zone = Zone::new(1000);
    let limit = Limit {
        rate: rate as u64,
        burst: burst as u64,
        delay: if delay_mode == 0 {
            u64::MAX
        } else {
            delay as u64
        },
    };
    let mut now = 1_000_000i64;
    for (i, (key, dt)) in events.iter().enumerate() {
        // Mostly forward in time; sometimes a step back (clock skew).
        now += i64::from(*dt) - if dt % 17 == 0 { 300 } else { 0 };
        let want = model.request(*key, now);
        let got = match zone.check(Key::Hashed(u64::from(*key)), now as u64, &limit) {
            Verdict::Accept { delay_ms, .. } => Out::Ok(delay_ms as i64),
            Verdict::Reject { .. } => Out::Busy,
        };
        assert_eq!(
            got, want,
            "event {i} (key {key}, t={now}) rate={rate} burst={burst} delay_mode={delay_mode}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn matches_nginx(
        per_second in any::<bool>(),
        n in 1u32..50,
        burst in 0i64..30,
        delay_mode in 0u8..6,
        events in prop::collection::vec((0u8..3, 0u32..400), 1..300),
    ) {
        let rate = if per_second { i64::from(n) * 1000 } else { i64::from(n) * 1000 / 60 }.max(1);
        run(rate, burst * 1000, delay_mode, &events);
    }
}

#[test]
fn the_documented_example() {
    // rate 10r/s, burst 20, nodelay: 100 simultaneous -> 21 served.
    let zone = Zone::new(100);
    let limit = Limit {
        rate: 10_000,
        burst: 20_000,
        delay: u64::MAX,
    };
    let served = (0..100)
        .filter(|_| {
            matches!(
                zone.check(Key::Hashed(1), 5, &limit),
                Verdict::Accept { .. }
            )
        })
        .count();
    assert_eq!(served, 21);
}
