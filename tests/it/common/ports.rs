//! A free loopback port per test.

use super::*;

/// A free loopback port. Handed out from a per-process sequence below the
/// ephemeral range, so two tests running at once never get the same port
/// (with bind-and-release, a port freed by one test could be handed to
/// another before the first test's rampart binds it).
pub fn free_port() -> u16 {
    use std::sync::atomic::AtomicU32;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let base = (std::process::id() * 37) % 15_000;
    for _ in 0..5_000 {
        let port = 10_000 + (base + NEXT.fetch_add(1, Ordering::Relaxed)) % 20_000;
        if StdListener::bind(("127.0.0.1", port as u16)).is_ok() {
            return port as u16;
        }
    }
    panic!("no free port")
}
