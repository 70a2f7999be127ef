//! Throughput and ratio of gzip, brotli and zstd levels on a 64 KiB JSON
//! body (the json-gzip bench payload), to choose rampart's levels:
//! `cargo run --release --example compression_levels`.

use std::io::Write;
use std::time::Instant;

fn payload() -> Vec<u8> {
    let mut s = String::from("[");
    let mut i = 0u64;
    while s.len() < 65_536 {
        // Repetitive keys, varied values, like an API listing.
        let r = i.wrapping_mul(2_654_435_761) % 100_000;
        s.push_str(&format!(
            "{{\"id\": {i}, \"name\": \"user{i}\", \"email\": \"user{i}@example.com\", \"score\": 0.{r:05}, \"tags\": [\"a\", \"b\"]}}, "
        ));
        i += 1;
    }
    s.truncate(65_536);
    s.into_bytes()
}

fn measure(name: &str, level: u32, data: &[u8], f: impl Fn(&[u8]) -> Vec<u8>) {
    let rounds = 200;
    let mut out = 0;
    let t = Instant::now();
    for _ in 0..rounds {
        out = f(data).len();
    }
    let secs = t.elapsed().as_secs_f64();
    let mbps = (data.len() * rounds) as f64 / secs / 1e6;
    println!(
        "{name:<7} level {level:>2}: {mbps:>7.1} MB/s, ratio {:.2}",
        data.len() as f64 / out as f64
    );
}

fn main() {
    let data = payload();
    for level in [1, 3, 5, 6, 9] {
        measure("gzip", level, &data, |d| {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
            let _ = e.write_all(d);
            e.finish().unwrap_or_default()
        });
    }
    for level in [1, 4, 6, 9] {
        measure("brotli", level, &data, |d| {
            let mut out = Vec::new();
            {
                let mut w = brotli::CompressorWriter::new(&mut out, 4096, level, 19);
                let _ = w.write_all(d);
            }
            out
        });
    }
    for level in [1, 3, 6, 9] {
        measure("zstd", level, &data, |d| {
            zstd::bulk::compress(d, level as i32).unwrap_or_default()
        });
    }
}
