//! Leaky-bucket rate limiting with nginx `limit_req` semantics, request for
//! request. Knows nothing of HTTP: callers turn a request into a [`Key`].
//!
//! The arithmetic is nginx's (`ngx_http_limit_req_lookup`), in integer
//! milli-requests with millisecond time: per key, `excess` and the time of
//! the last accepted request; a request computes
//! `excess = max(0, excess - rate * elapsed / 1000 + 1000)` and is rejected
//! when `excess > burst * 1000`; otherwise the new excess is stored. An
//! accepted request is delayed by `(excess - delay * 1000) / rate` unless
//! `nodelay` (nginx `delay=` / `nodelay`).
//!
//! State is sharded (one mutex per shard, never held across an await) and
//! bounded by `max_keys`: a new key in a full shard evicts the least
//! recently seen of a few sampled keys (approximate LRU, O(1)).

pub mod shared;

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What a zone counts by. IP keys are stored as 16 bytes; host and header
/// keys as a 64-bit keyed hash — no `String` per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Key {
    Ip(u128),
    Hashed(u64),
}

impl Key {
    pub fn ip(ip: IpAddr) -> Key {
        Self::ip_prefix(ip, 128)
    }

    /// An IPv6 client's key is its first `v6_prefix` bits (IPv4 and
    /// IPv4-mapped addresses are whole addresses).
    pub fn ip_prefix(ip: IpAddr, v6_prefix: u8) -> Key {
        Key::Ip(Self::ip_bits(ip, v6_prefix))
    }

    /// The bits of an [`Key::Ip`]: IPv4 as IPv4-mapped IPv6.
    pub fn ip_bits(ip: IpAddr, v6_prefix: u8) -> u128 {
        match ip {
            IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
            IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => u128::from(v6),
            IpAddr::V6(v6) => {
                let keep = u32::from(v6_prefix.clamp(1, 128));
                u128::from(v6) & (u128::MAX << (128 - keep))
            }
        }
    }

    /// Case-insensitive bytes (hosts, header values) as a keyed hash.
    pub fn bytes(b: &[u8], hasher: &std::collections::hash_map::RandomState) -> Key {
        let mut h = hasher.build_hasher();
        for c in b {
            h.write_u8(c.to_ascii_lowercase());
        }
        Key::Hashed(h.finish())
    }
}

/// Per-key state: nginx's `excess` (milli-requests) and `last` (ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    pub excess: u64,
    pub last: u64,
}

/// A route's limit on one zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Milli-requests per second (`5r/m` = 83).
    pub rate: u64,
    /// `burst * 1000`.
    pub burst: u64,
    /// Excess (milli) served without delay: `delay * 1000`; `u64::MAX` for `nodelay`.
    pub delay: u64,
}

impl Limit {
    /// An accepted request's wait at this excess (0 up to `delay`).
    pub fn delay_ms(&self, excess: u64) -> u64 {
        if excess <= self.delay {
            0
        } else {
            (excess - self.delay).saturating_mul(1000) / self.rate.max(1)
        }
    }

    /// After a refusal at this excess: time until a request is accepted
    /// again (`excess - 1000` drained to `burst - 1000` or below).
    pub fn retry_after_ms(&self, excess: u64) -> u64 {
        let over = excess.saturating_sub(self.burst);
        over.saturating_mul(1000).div_ceil(self.rate.max(1))
    }
}

/// The verdict for one request on one zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Serve after this many milliseconds (0: at once); the new bucket.
    Accept { delay_ms: u64, bucket: Bucket },
    /// Refuse; a request would be accepted again after this many ms.
    Reject { retry_after_ms: u64 },
}

/// nginx's decision for a request at `now` (ms) given the key's bucket.
pub fn decide(prev: Option<Bucket>, now: u64, limit: &Limit) -> Verdict {
    let rate = limit.rate.max(1);
    let (excess, ms) = match prev {
        None => (0i64, 0i64),
        Some(b) => {
            let ms = now as i64 - b.last as i64;
            // nginx: a clock far in the past counts as 1 ms, a little as 0.
            let ms = if ms < -60_000 { 1 } else { ms.max(0) };
            let excess = b.excess as i64 - (rate as i64).saturating_mul(ms) / 1000 + 1000;
            (excess.max(0), ms)
        }
    };
    // (A new key starts at excess 0, as nginx's new node does.)
    if excess as u64 > limit.burst {
        return Verdict::Reject {
            retry_after_ms: limit.retry_after_ms(excess as u64),
        };
    }
    let last = match prev {
        Some(b) if ms == 0 => b.last,
        _ => now,
    };
    Verdict::Accept {
        delay_ms: limit.delay_ms(excess as u64),
        bucket: Bucket {
            excess: excess as u64,
            last,
        },
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    bucket: Bucket,
    /// Last time the key was seen (accepted or not), for eviction.
    seen: u64,
}

struct Shard {
    map: Mutex<HashMap<Key, Entry>>,
}

/// One zone's buckets. Lives outside the config snapshot so a reload that
/// keeps the zone's `rate` and `key` keeps its state.
pub struct Zone {
    shards: Box<[Shard]>,
    /// Keys per shard before eviction (`max_keys` may change on reload).
    per_shard: AtomicUsize,
    epoch: Instant,
    pub hasher: std::collections::hash_map::RandomState,
}

impl std::fmt::Debug for Zone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Zone")
            .field("keys", &self.len())
            .field("per_shard", &self.per_shard.load(Ordering::Relaxed))
            .finish()
    }
}

/// Keys sampled when a full shard must make room.
const EVICTION_SAMPLE: usize = 8;

impl Zone {
    pub fn new(max_keys: usize) -> Self {
        let shards = (max_keys / 1024).clamp(1, 64).next_power_of_two();
        Zone {
            shards: (0..shards)
                .map(|_| Shard {
                    map: Mutex::new(HashMap::new()),
                })
                .collect(),
            per_shard: AtomicUsize::new(max_keys.div_ceil(shards).max(1)),
            epoch: Instant::now(),
            hasher: Default::default(),
        }
    }

    /// A reload changed `max_keys`: the buckets stay; a smaller limit
    /// evicts the least recently seen keys now.
    pub fn set_max_keys(&self, max_keys: usize) {
        let per_shard = max_keys.div_ceil(self.shards.len()).max(1);
        self.per_shard.store(per_shard, Ordering::Relaxed);
        for s in self.shards.iter() {
            let mut map = s.map.lock().unwrap_or_else(|p| p.into_inner());
            while map.len() > per_shard {
                evict_one(&mut map);
            }
        }
    }

    /// Milliseconds since the zone was created (the zone's clock).
    pub fn now_ms(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.epoch).as_millis() as u64
    }

    fn shard(&self, key: &Key) -> &Shard {
        let h = self.hasher.hash_one(key);
        &self.shards[(h as usize) & (self.shards.len() - 1)]
    }

    /// Decides without storing (first phase of a multi-zone check).
    pub fn peek(&self, key: &Key, now: u64, limit: &Limit) -> Verdict {
        let shard = self.shard(key);
        let map = shard.map.lock().unwrap_or_else(|p| p.into_inner());
        decide(map.get(key).map(|e| e.bucket), now, limit)
    }

    /// Decides and, when accepted, stores the new bucket — atomically per key.
    pub fn check(&self, key: Key, now: u64, limit: &Limit) -> Verdict {
        let shard = self.shard(&key);
        let mut map = shard.map.lock().unwrap_or_else(|p| p.into_inner());
        let prev = map.get(&key).map(|e| e.bucket);
        let v = decide(prev, now, limit);
        match v {
            Verdict::Accept { bucket, .. } => {
                if prev.is_none() && map.len() >= self.per_shard.load(Ordering::Relaxed) {
                    evict_one(&mut map);
                }
                map.insert(key, Entry { bucket, seen: now });
            }
            Verdict::Reject { .. } => {
                if let Some(e) = map.get_mut(&key) {
                    e.seen = now;
                }
            }
        }
        v
    }

    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.map.lock().map(|m| m.len()).unwrap_or(0))
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops keys whose bucket has drained so far that the key's next
    /// request is decided as a new key's would be, so dropping them loses
    /// nothing; run from a background sweep.
    pub fn sweep(&self, now: u64, rate: u64) {
        for s in self.shards.iter() {
            let mut map = s.map.lock().unwrap_or_else(|p| p.into_inner());
            map.retain(|_, e| !drained(&e.bucket, now, rate));
        }
    }
}

/// Whether a request at `now` or later on a key with bucket `b` meets an
/// excess of 0, as a new key's first request does. Not merely `excess`
/// drained: every request adds 1000 (one request) to what is left, so a key
/// whose last request left an excess of 0 is still limited until a whole
/// request's worth (1/rate) has passed: `6r/m`, burst 0, accepts again only
/// 10 s after the last accepted request.
fn drained(b: &Bucket, now: u64, rate: u64) -> bool {
    let ms = now.saturating_sub(b.last);
    rate.max(1).saturating_mul(ms) / 1000 >= b.excess + 1000
}

/// Removes the least recently seen of a few entries.
fn evict_one(map: &mut HashMap<Key, Entry>) {
    let victim = map
        .iter()
        .take(EVICTION_SAMPLE)
        .min_by_key(|(_, e)| e.seen)
        .map(|(k, _)| *k);
    if let Some(k) = victim {
        map.remove(&k);
    }
}

/// Zones by name, kept across reloads while `rate` and `key` are unchanged.
#[derive(Debug, Default)]
pub struct Zones {
    by_name: Mutex<HashMap<String, (String, Arc<Zone>)>>,
}

impl Zones {
    /// The state for a zone with this signature (`rate` and `key`), reused
    /// when unchanged since the previous configuration.
    pub fn get(&self, name: &str, signature: &str, max_keys: usize) -> Arc<Zone> {
        let mut m = self.by_name.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((sig, z)) = m.get(name) {
            if sig == signature {
                z.set_max_keys(max_keys);
                return z.clone();
            }
        }
        let z = Arc::new(Zone::new(max_keys));
        m.insert(name.to_string(), (signature.to_string(), z.clone()));
        z
    }

    /// Forgets the zones a reload removed.
    pub fn retain(&self, names: &[&str]) {
        let mut m = self.by_name.lock().unwrap_or_else(|p| p.into_inner());
        m.retain(|name, _| names.contains(&name.as_str()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(rate_per_s: u64, burst: u64, nodelay: bool) -> Limit {
        Limit {
            rate: rate_per_s * 1000,
            burst: burst * 1000,
            delay: if nodelay { u64::MAX } else { 0 },
        }
    }

    #[test]
    fn burst_then_reject_then_drain() {
        let z = Zone::new(100);
        let l = limit(10, 20, true);
        let k = Key::ip("10.0.0.1".parse().unwrap());
        let accepted = (0..100)
            .filter(|_| matches!(z.check(k, 0, &l), Verdict::Accept { .. }))
            .count();
        assert_eq!(accepted, 21, "burst 20 + the first");
        match z.check(k, 0, &l) {
            Verdict::Reject { retry_after_ms } => assert_eq!(retry_after_ms, 100),
            v => panic!("{v:?}"),
        }
        // After 1 s, 10 more.
        let more = (0..100)
            .filter(|_| matches!(z.check(k, 1000, &l), Verdict::Accept { .. }))
            .count();
        assert_eq!(more, 10);
    }

    #[test]
    fn delays_spread_requests_at_the_rate() {
        let l = limit(10, 5, false);
        let z = Zone::new(10);
        let k = Key::Hashed(1);
        let delays: Vec<u64> = (0..6)
            .map(|_| match z.check(k, 0, &l) {
                Verdict::Accept { delay_ms, .. } => delay_ms,
                v => panic!("{v:?}"),
            })
            .collect();
        assert_eq!(delays, vec![0, 100, 200, 300, 400, 500]);
        // delay = 2: the first two excess requests pass at once.
        let l = Limit {
            delay: 2000,
            ..limit(10, 5, false)
        };
        let z = Zone::new(10);
        let delays: Vec<u64> = (0..6)
            .map(|_| match z.check(k, 0, &l) {
                Verdict::Accept { delay_ms, .. } => delay_ms,
                v => panic!("{v:?}"),
            })
            .collect();
        assert_eq!(delays, vec![0, 0, 0, 100, 200, 300]);
    }

    #[test]
    fn per_minute_rates() {
        // 5r/m, burst 0: one request per 12 s.
        let l = Limit {
            rate: 5 * 1000 / 60,
            burst: 0,
            delay: 0,
        };
        let z = Zone::new(10);
        let k = Key::Hashed(7);
        assert!(matches!(z.check(k, 0, &l), Verdict::Accept { .. }));
        assert!(matches!(z.check(k, 11_000, &l), Verdict::Reject { .. }));
        assert!(matches!(z.check(k, 12_100, &l), Verdict::Accept { .. }));
    }

    #[test]
    fn bounded_by_max_keys() {
        let z = Zone::new(1000);
        let l = limit(1, 0, true);
        for i in 0..100_000u64 {
            z.check(Key::Hashed(i), i, &l);
        }
        assert!(z.len() <= 1000, "{}", z.len());
        // Recently seen keys survive eviction better than old ones.
        assert!(z.peek(&Key::Hashed(99_999), 99_999, &l) != decide(None, 99_999, &l));
    }

    /// A reload that keeps `rate` and `key` keeps the buckets but applies a
    /// new `max_keys` (a smaller one evicts now); a removed zone is forgotten.
    #[test]
    fn reloads_keep_buckets_apply_max_keys_and_forget_removed_zones() {
        let zones = Zones::default();
        let l = limit(1, 0, true);
        let z = zones.get("api", "1r/s client_ip", 4000);
        for i in 0..3000u64 {
            z.check(Key::Hashed(i), 0, &l);
        }
        assert_eq!(z.len(), 3000);
        let again = zones.get("api", "1r/s client_ip", 1000);
        assert!(Arc::ptr_eq(&z, &again), "same rate and key: same buckets");
        assert!(z.len() <= 1000, "the smaller max_keys applies: {}", z.len());
        for i in 3000..10_000u64 {
            z.check(Key::Hashed(i), 1, &l);
        }
        assert!(z.len() <= 1000, "and stays applied: {}", z.len());
        let other = zones.get("api", "2r/s client_ip", 1000);
        assert!(!Arc::ptr_eq(&z, &other), "a new rate starts afresh");
        zones.retain(&["auth"]);
        let fresh = zones.get("api", "2r/s client_ip", 1000);
        assert!(!Arc::ptr_eq(&other, &fresh), "a removed zone was forgotten");
    }

    #[test]
    fn ipv6_keys_keep_their_prefix_and_ipv4_its_address() {
        let k = |ip: &str, p| Key::ip_prefix(ip.parse().unwrap(), p);
        assert_eq!(
            k("2001:db8:0:1::1", 64),
            k("2001:db8:0:1:ffff:ffff:ffff:ffff", 64)
        );
        assert_ne!(k("2001:db8:0:1::1", 64), k("2001:db8:0:2::1", 64));
        assert_ne!(k("2001:db8:0:1::1", 128), k("2001:db8:0:1::2", 128));
        assert_eq!(k("2001:db8::1", 32), k("2001:db8:ffff::1", 32));
        assert_ne!(k("10.0.0.1", 64), k("10.0.0.2", 64), "IPv4 is never masked");
        assert_ne!(k("::ffff:10.0.0.1", 64), k("::ffff:10.0.0.2", 64));
        assert_eq!(k("10.0.0.1", 64), k("::ffff:10.0.0.1", 64));
        assert_eq!(
            k("2001:db8::1", 128),
            Key::ip("2001:db8::1".parse().unwrap())
        );
    }

    #[test]
    fn sweep_drops_only_drained_buckets() {
        let z = Zone::new(100);
        let l = limit(1, 10, true);
        for _ in 0..5 {
            z.check(Key::Hashed(1), 0, &l);
        }
        z.check(Key::Hashed(2), 0, &l);
        z.sweep(500, l.rate);
        assert_eq!(z.len(), 2, "key 2 (excess 0) still owes half a request");
        z.sweep(1000, l.rate);
        assert_eq!(z.len(), 1, "key 2 drained, key 1 (excess 4000) kept");
        z.sweep(5000, l.rate);
        assert_eq!(z.len(), 0);
    }

    /// The contract's "strictly one request per 1/rate" with burst 0, across
    /// sweeps: `6r/m` rejects a request 5 s after an accepted one (a sweep
    /// in between must not forget the key) and accepts one 10 s after.
    #[test]
    fn burst_zero_per_minute_survives_sweeps() {
        for nodelay in [false, true] {
            let l = Limit {
                rate: SIX_PER_MINUTE,
                burst: 0,
                delay: if nodelay { u64::MAX } else { 0 },
            };
            let z = Zone::new(10);
            let k = Key::Hashed(9);
            assert!(matches!(z.check(k, 0, &l), Verdict::Accept { .. }));
            z.sweep(1_000, l.rate);
            z.sweep(4_000, l.rate);
            assert!(
                matches!(z.check(k, 5_000, &l), Verdict::Reject { .. }),
                "nodelay {nodelay}"
            );
            z.sweep(9_000, l.rate);
            assert!(matches!(z.check(k, 9_900, &l), Verdict::Reject { .. }));
            assert!(matches!(z.check(k, 10_000, &l), Verdict::Accept { .. }));
        }
    }

    /// `6r/m` in milli-requests per second.
    const SIX_PER_MINUTE: u64 = 6 * 1000 / 60;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]
        /// Sweeping never changes a decision: a bucket the sweep drops
        /// decides every later request as a new key does. (Times and
        /// excesses of the order of one request at the rate: that is where
        /// "drained" is decided.)
        #[test]
        fn a_swept_bucket_decides_as_a_new_key(
            rate in 1u64..5_000,
            excess in 0u64..5_000,
            last in 0u64..100_000,
            swept_after in 0u64..5_000,
            then in 0u64..5_000,
            burst in 0u64..20,
            delay in 0u64..20,
        ) {
            let b = Bucket { excess, last };
            let now = last + swept_after;
            if drained(&b, now, rate) {
                let l = Limit { rate, burst: burst * 1000, delay: delay * 1000 };
                let later = now + then;
                proptest::prop_assert_eq!(decide(Some(b), later, &l), decide(None, later, &l));
            }
        }
    }

    #[test]
    fn two_threads_on_one_key_lose_no_update() {
        let z = Arc::new(Zone::new(100));
        let l = limit(1, 999, true);
        let k = Key::Hashed(3);
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let z = z.clone();
                std::thread::spawn(move || {
                    (0..500)
                        .filter(|_| matches!(z.check(k, 0, &l), Verdict::Accept { .. }))
                        .count()
                })
            })
            .collect();
        let total: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(total, 1000, "burst 999 + 1, exactly, at the same instant");
        assert!(matches!(z.check(k, 0, &l), Verdict::Reject { .. }));
    }

    #[test]
    fn zones_survive_when_rate_and_key_are_unchanged() {
        let zs = Zones::default();
        let a = zs.get("api", "10r/s client_ip", 100);
        let b = zs.get("api", "10r/s client_ip", 100);
        assert!(Arc::ptr_eq(&a, &b));
        let c = zs.get("api", "20r/s client_ip", 100);
        assert!(!Arc::ptr_eq(&a, &c));
    }
}

#[cfg(test)]
mod size {
    /// Memory per tracked key: the map entry plus hashbrown's control byte,
    /// at its lowest and highest load (7/8 full right before it grows).
    #[test]
    fn bytes_per_key() {
        let entry = std::mem::size_of::<(super::Key, super::Entry)>();
        assert!(entry <= 64, "{entry}");
        let (dense, sparse) = ((entry + 1) * 8 / 7, (entry + 1) * 16 / 7);
        eprintln!(
            "rate-limit state per key: {entry} B entry, {dense}-{sparse} B with table overhead"
        );
    }
}
