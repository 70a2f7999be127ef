//! Cost of choosing an upstream server per request, for pools of 2 and 64
//! servers: `cargo run --release --example select_cost`.

use std::path::Path;
use std::time::Instant;

use rampart::upstream::{InFlight, Pool, Registry, Tried};

fn main() {
    for balance in ["least_conn", "round_robin"] {
        for n in [2usize, 64] {
            let servers: Vec<String> = (0..n)
                .map(|i| format!("{{ addr = \"127.0.0.1:{}\" }}", 20000 + i))
                .collect();
            let toml = format!(
                "[upstreams.p]\nservers = [{}]\nbalance = \"{balance}\"\n[[servers]]\nlisten = [\"127.0.0.1:1\"]\n[[servers.routes]]\nprefix = \"/\"\nupstream = \"p\"\n",
                servers.join(", ")
            );
            let (cfg, _) = rampart::config::load_str(Path::new("bench.toml"), &toml, |_| None)
                .expect("valid config");
            let up = &cfg.upstreams[0];
            let pool = Pool::new(up, &Registry::default());
            let iters = 1_000_000u32;
            let t = Instant::now();
            let mut held = Vec::with_capacity(8);
            for k in 0..iters {
                let i = pool.pick(up, &Tried::default()).expect("a server");
                // Keep a few requests in flight so least_conn has work to do.
                held.push(InFlight::acquire(&pool.backends[i]));
                if held.len() == 8 || k % 3 == 0 {
                    held.clear();
                }
            }
            let ns = t.elapsed().as_nanos() as f64 / f64::from(iters);
            println!(
                "{balance:<12} {n:>3} servers: {ns:>7.1} ns per pick (incl. in-flight accounting)"
            );
        }
    }
}
