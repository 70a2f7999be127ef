//! Concurrency limits (nginx `limit_conn`): requests in flight per key,
//! an open WebSocket tunnel counting until it closes. A request holds a
//! [`Slot`] in its context; dropping the context (the request's end, or
//! its tunnel's) gives the slot back.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;

use crate::ratelimit::Key;

/// One limit's counts. Keys with nothing in flight are removed, so the map
/// holds only the clients with requests open right now.
#[derive(Debug, Default)]
pub struct Counters {
    in_flight: DashMap<Key, u64>,
    /// For host and header keys (a keyed hash, as rate-limit zones use).
    pub hasher: RandomState,
}

/// One request's place in a limit.
#[derive(Debug)]
pub struct Slot {
    counters: Arc<Counters>,
    key: Key,
}

impl Counters {
    /// A slot for `key` if fewer than `max` are taken.
    pub fn try_acquire(self: &Arc<Self>, key: Key, max: u64) -> Option<Slot> {
        let mut n = self.in_flight.entry(key).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        drop(n);
        Some(Slot {
            counters: self.clone(),
            key,
        })
    }

    /// Requests of `key` in flight (tests, metrics).
    pub fn count(&self, key: &Key) -> u64 {
        self.in_flight.get(key).map_or(0, |n| *n)
    }

    /// Keys with anything in flight.
    pub fn keys(&self) -> usize {
        self.in_flight.len()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Entry::Occupied(mut e) = self.counters.in_flight.entry(self.key) {
            *e.get_mut() -= 1;
            if *e.get() == 0 {
                e.remove();
            }
        }
    }
}

/// The counters of every limit, by name; kept by reloads that keep a
/// limit's key (its `max` may change: it applies to new requests).
#[derive(Debug, Default)]
pub struct Limits {
    by_name: Mutex<HashMap<String, (String, Arc<Counters>)>>,
}

impl Limits {
    pub fn get(&self, name: &str, signature: &str) -> Arc<Counters> {
        let mut m = self.by_name.lock().unwrap_or_else(|p| p.into_inner());
        match m.get(name) {
            Some((sig, c)) if sig == signature => c.clone(),
            _ => {
                let c = Arc::new(Counters::default());
                m.insert(name.to_string(), (signature.to_string(), c.clone()));
                c
            }
        }
    }

    /// Forgets the limits a reload removed (requests still holding their
    /// slots keep the counters alive until they end).
    pub fn retain(&self, names: &[&str]) {
        let mut m = self.by_name.lock().unwrap_or_else(|p| p.into_inner());
        m.retain(|name, _| names.contains(&name.as_str()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_max_slots_per_key_and_a_dropped_slot_frees_its_place() {
        let c = Arc::new(Counters::default());
        let (a, b) = (
            Key::ip("10.0.0.1".parse().unwrap()),
            Key::ip("10.0.0.2".parse().unwrap()),
        );
        let s1 = c.try_acquire(a, 2).unwrap();
        let s2 = c.try_acquire(a, 2).unwrap();
        assert!(c.try_acquire(a, 2).is_none());
        let other = c.try_acquire(b, 2).unwrap();
        assert_eq!((c.count(&a), c.count(&b)), (2, 1));
        drop(s1);
        let s3 = c.try_acquire(a, 2).unwrap();
        drop((s2, s3, other));
        assert_eq!(c.keys(), 0, "idle keys are forgotten");
    }

    #[test]
    fn counters_survive_a_reload_that_keeps_the_key() {
        let l = Limits::default();
        let a = l.get("per_ip", "ClientIp");
        assert!(Arc::ptr_eq(&a, &l.get("per_ip", "ClientIp")));
        assert!(!Arc::ptr_eq(&a, &l.get("per_ip", "Host")));
        l.retain(&[]);
        assert!(!Arc::ptr_eq(&a, &l.get("per_ip", "ClientIp")));
    }
}
