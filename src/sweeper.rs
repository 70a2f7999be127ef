//! Periodic housekeeping off the request path: drops rate-limit buckets
//! that have fully drained (they are equivalent to unseen keys), so zones
//! rarely need to evict live keys.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

use crate::runtime::Runtime;

const EVERY: Duration = Duration::from_secs(5);

pub struct Sweeper {
    pub state: Arc<Runtime>,
}

#[async_trait]
impl BackgroundService for Sweeper {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(EVERY) => {}
            }
            let live = self.state.current();
            let now = Instant::now();
            for (zone, live_zone) in live.cfg.zones.iter().zip(&live.zones) {
                let state = live_zone.buckets.clone();
                let rate = zone.rate.milli_per_sec();
                // Sweeping locks each shard briefly; keep it off the async workers.
                let _ =
                    tokio::task::spawn_blocking(move || state.sweep(state.now_ms(now), rate)).await;
            }
        }
    }
}
