// rampart patch: the pool of idle upstream (L4/TLS) connections.
//
// pingora-pool keeps every idle connection in an `Arc<Mutex<_>>` watched by a
// task of its own (spawned at every release, woken at every reuse, through a
// oneshot channel, an LRU with a lock and a `Notify`), and the request that
// reuses a connection waits for that task to let go of it: two wake-ups and a
// task switch per proxied request, on top of five allocations. Here an idle
// connection is just a value in a map, and one sweeper task per pool, ticking
// only while the pool holds something, drops the connections that the peer
// closed (or wrote to) and those past their idle timeout. A connection the
// peer closes between two sweeps is still caught at reuse, by the same
// non-blocking read the caller already makes.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The keys are already hashes (`Peer::reuse_hash`): used as they are instead
/// of hashing them again with SipHash at every reuse and release.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u64(&mut self, key: u64) {
        self.0 = key;
    }

    // Not reached for `u64` keys; kept correct for any other.
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

type ByKey<S> = HashMap<u64, Vec<Idle<S>>, BuildHasherDefault<KeyHasher>>;

/// How often the sweeper looks at the idle connections.
pub(crate) const SWEEP_EVERY: Duration = Duration::from_millis(500);

struct Idle<S> {
    stream: S,
    since: Instant,
    deadline: Option<Instant>,
}

struct Inner<S> {
    /// Per reuse key, oldest first: reuse takes the newest (warm buffers,
    /// and the one least likely to have been closed by the peer).
    by_key: ByKey<S>,
    len: usize,
    sweeping: bool,
}

/// What [`IdlePool::put`] did besides keeping the connection.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Put {
    /// How long the connection evicted to make room (the least recently
    /// released) had been idle.
    pub evicted_after: Option<Duration>,
    /// No sweeper is running: the caller starts one.
    pub start_sweeper: bool,
}

pub(crate) struct IdlePool<S> {
    size: usize,
    inner: Mutex<Inner<S>>,
}

impl<S> IdlePool<S> {
    /// A pool of at most `size` idle connections over all keys.
    pub(crate) fn new(size: usize) -> Self {
        IdlePool {
            size,
            inner: Mutex::new(Inner {
                by_key: ByKey::default(),
                len: 0,
                sweeping: false,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<S>> {
        // A panic while holding the lock leaves plain data behind: go on.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The most recently released idle connection under `key`.
    pub(crate) fn take(&self, key: u64) -> Option<S> {
        let mut inner = self.lock();
        // An emptied list stays (the sweeper drops it): the connection taken
        // is usually put back within the same request, and the list would
        // otherwise be freed and allocated again every time.
        let idle = inner.by_key.get_mut(&key)?.pop()?;
        inner.len -= 1;
        Some(idle.stream)
    }

    /// Keeps `stream` under `key` until it is taken, its peer closes it,
    /// `idle_timeout` passes, or the pool needs its room (the least recently
    /// released connection goes first).
    pub(crate) fn put(&self, key: u64, stream: S, idle_timeout: Option<Duration>) -> Put {
        if self.size == 0 {
            return Put::default();
        }
        let now = Instant::now();
        let mut inner = self.lock();
        let mut evicted = None;
        if inner.len >= self.size {
            evicted = inner.evict_oldest();
        }
        inner.by_key.entry(key).or_default().push(Idle {
            stream,
            since: now,
            deadline: idle_timeout.map(|t| now + t),
        });
        inner.len += 1;
        let start_sweeper = !inner.sweeping;
        inner.sweeping = true;
        drop(inner);
        Put {
            // dropped (closed) outside the lock
            evicted_after: evicted.map(|e| now.saturating_duration_since(e.since)),
            start_sweeper,
        }
    }

    /// Drops the connections past their idle timeout and those `usable`
    /// rejects. Returns `false` once the pool is empty: the sweeper stops,
    /// and the next [`Self::put`] asks for a new one.
    pub(crate) fn sweep(&self, mut usable: impl FnMut(&mut S) -> bool) -> bool {
        let now = Instant::now();
        let mut gone = Vec::new();
        let mut inner = self.lock();
        let mut len = 0;
        inner.by_key.retain(|_, list| {
            let mut i = 0;
            while i < list.len() {
                let idle = &mut list[i];
                if idle.deadline.is_some_and(|d| d <= now) || !usable(&mut idle.stream) {
                    gone.push(list.remove(i));
                } else {
                    i += 1;
                }
            }
            len += list.len();
            !list.is_empty()
        });
        inner.len = len;
        let go_on = len > 0;
        inner.sweeping = go_on;
        drop(inner);
        drop(gone); // closed outside the lock
        go_on
    }

    /// The sweeper ended without emptying the pool (its runtime went away).
    pub(crate) fn sweeper_gone(&self) {
        self.lock().sweeping = false;
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len
    }
}

impl<S> Inner<S> {
    fn evict_oldest(&mut self) -> Option<Idle<S>> {
        // The oldest of each key is its first; keys are few (one per
        // upstream server and connection options), connections many.
        let key = self
            .by_key
            .iter()
            .filter_map(|(k, list)| list.first().map(|i| (i.since, *k)))
            .min()?
            .1;
        let list = self.by_key.get_mut(&key)?;
        let idle = list.remove(0);
        if list.is_empty() {
            self.by_key.remove(&key);
        }
        self.len -= 1;
        Some(idle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_first_per_key() {
        let pool = IdlePool::new(8);
        assert!(pool.put(1, "a", None).start_sweeper);
        assert!(!pool.put(1, "b", None).start_sweeper);
        pool.put(2, "c", None);
        assert_eq!(pool.take(1), Some("b"));
        assert_eq!(pool.take(1), Some("a"));
        assert_eq!(pool.take(1), None);
        assert_eq!(pool.take(2), Some("c"));
        assert_eq!(pool.len(), 0);
        // the emptied lists stay until the sweeper, which then stops
        assert_eq!(pool.lock().by_key.len(), 2);
        assert!(!pool.sweep(|_| true));
        assert!(pool.lock().by_key.is_empty());
        assert!(pool.put(1, "d", None).start_sweeper);
        assert_eq!(pool.take(1), Some("d"));
    }

    #[test]
    fn a_full_pool_evicts_the_least_recently_released() {
        let pool = IdlePool::new(2);
        pool.put(1, "old", None);
        std::thread::sleep(Duration::from_millis(2));
        pool.put(2, "mid", None);
        let put = pool.put(1, "new", None);
        assert!(put
            .evicted_after
            .is_some_and(|d| d >= Duration::from_millis(2)));
        assert_eq!(pool.len(), 2);
        assert_eq!(pool.take(1), Some("new"));
        assert_eq!(pool.take(1), None, "the oldest was evicted");
        assert_eq!(pool.take(2), Some("mid"));
    }

    #[test]
    fn a_zero_sized_pool_keeps_nothing() {
        let pool = IdlePool::new(0);
        assert_eq!(pool.put(1, "a", None), Put::default());
        assert_eq!(pool.take(1), None);
    }

    #[test]
    fn the_sweep_drops_the_unusable_and_the_timed_out_then_stops() {
        let pool = IdlePool::new(8);
        pool.put(1, "closed-by-peer", None);
        pool.put(1, "fine", None);
        pool.put(2, "short", Some(Duration::ZERO));
        pool.put(2, "long", Some(Duration::from_secs(60)));
        assert!(pool.sweep(|s| *s != "closed-by-peer"));
        assert_eq!(pool.len(), 2);
        assert_eq!(pool.take(2), Some("long"));
        assert_eq!(pool.take(2), None);
        // Empty after this sweep: the sweeper stops, the next put restarts it.
        assert!(!pool.sweep(|s| *s != "fine"));
        assert!(pool.put(3, "x", None).start_sweeper);
    }
}
