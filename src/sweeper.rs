//! Periodic rate-limit housekeeping off the request path: drops buckets
//! that have fully drained (they are equivalent to unseen keys), so zones
//! rarely need to evict live keys, and starts the connection of each Redis
//! store as soon as the configuration names it (at start and after a
//! reload), so that the first requests find it connected.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

use crate::runtime::Runtime;

const EVERY: Duration = Duration::from_secs(5);
/// How soon a store a reload added starts connecting.
const STORES_EVERY: Duration = Duration::from_millis(250);

pub struct Sweeper {
    pub state: Arc<Runtime>,
}

#[async_trait]
impl BackgroundService for Sweeper {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut next_sweep = Instant::now() + EVERY;
        loop {
            self.state.carried.shared_stores.connect_all();
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(STORES_EVERY) => {}
            }
            if Instant::now() < next_sweep {
                continue;
            }
            next_sweep = Instant::now() + EVERY;
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
