//! Choosing a server for an attempt. Pure: takes the pool's shape and the
//! servers already tried, knows nothing of HTTP or TOML.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::config::snapshot::UpstreamServer;

/// Round-robin over the non-backup servers, skipping servers this request
/// already tried while others remain; backups only once every primary was
/// tried.
#[derive(Debug, Default)]
pub struct RoundRobin {
    next: AtomicUsize,
}

impl RoundRobin {
    /// `tried` is a bit set of server indices (pools have at most 64 servers
    /// per attempt history; larger pools simply wrap).
    pub fn pick(&self, servers: &[UpstreamServer], tried: u64) -> Option<usize> {
        let untried = |i: usize| tried & (1u64 << (i % 64)) == 0;
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for backup in [false, true] {
            let group: Vec<usize> = (0..servers.len())
                .filter(|&i| servers[i].backup == backup)
                .collect();
            if group.is_empty() {
                continue;
            }
            let off = start % group.len();
            if let Some(i) = (0..group.len())
                .map(|k| group[(off + k) % group.len()])
                .find(|&i| untried(i))
            {
                return Some(i);
            }
        }
        // Everything was tried: go round again among primaries.
        let primaries: Vec<usize> = (0..servers.len()).filter(|&i| !servers[i].backup).collect();
        (!primaries.is_empty()).then(|| primaries[start % primaries.len()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(backup: bool) -> UpstreamServer {
        UpstreamServer {
            addr: "x:1".into(),
            socket: None,
            host: "x".into(),
            weight: 1,
            backup,
        }
    }

    #[test]
    fn rotates_over_primaries() {
        let rr = RoundRobin::default();
        let s = vec![server(false), server(false), server(true)];
        let picks: Vec<_> = (0..4).map(|_| rr.pick(&s, 0).unwrap()).collect();
        assert_eq!(picks, vec![0, 1, 0, 1]);
    }

    #[test]
    fn skips_tried_then_backup() {
        let rr = RoundRobin::default();
        let s = vec![server(false), server(false), server(true)];
        assert_eq!(rr.pick(&s, 0b001), Some(1));
        assert_eq!(rr.pick(&s, 0b011), Some(2));
        assert!(rr.pick(&s, 0b111).is_some_and(|i| i < 2));
        assert_eq!(rr.pick(&[], 0), None);
    }
}
