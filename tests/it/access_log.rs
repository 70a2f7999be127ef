//! The access log's contract beyond its fields: it never stalls request
//! handling (lines are dropped and counted instead), and SIGUSR1 reopens
//! the file, as logrotate expects of nginx.

use std::time::{Duration, Instant};

use crate::common::*;

fn config(access_log: &str) -> String {
    Config::new()
        .log(&format!("access_log = \"{access_log}\""))
        .route("prefix = \"/\"\nrespond = { body = \"ok\" }")
        .build()
}

fn paths_in(file: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| v["path"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Waits up to 3 s for `file` to hold `n` lines.
fn wait_lines(file: &std::path::Path, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let p = paths_in(file);
        if p.len() >= n || Instant::now() > deadline {
            return p;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigusr1_reopens_the_access_log_after_logrotate_moved_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let rotated = dir.path().join("access.log.1");
    let mut g = Gateway::start(&config(log.to_str().unwrap()));
    let c = client();
    assert_eq!(c.get(g.url("/before")).send().await.unwrap().status(), 200);
    assert_eq!(wait_lines(&log, 1), ["/before"]);
    std::fs::rename(&log, &rotated).unwrap();
    g.signal("USR1");
    // The reopen happens in the writer, before its next line.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(c.get(g.url("/after")).send().await.unwrap().status(), 200);
    assert_eq!(
        wait_lines(&log, 1),
        ["/after"],
        "a new file by the old name"
    );
    assert_eq!(
        paths_in(&rotated),
        ["/before"],
        "the moved file keeps its lines"
    );
    assert_eq!(
        g.wait_exit(Duration::from_millis(200)),
        None,
        "still running"
    );
}

/// stdout is a pipe nobody reads: the writer stalls, requests do not; the
/// lines that do not fit in the queue are counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_access_log_drops_and_counts_lines_instead_of_stalling() {
    let mut g = Gateway::start_with_stdout(&config("stdout"), Some(std::process::Stdio::piped()));
    let _unread = g.take_stdout();
    let c = client();
    let url = g.url("/x");
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (c, url) = (c.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let mut ok = 0;
            for _ in 0..750 {
                let r = tokio::time::timeout(Duration::from_secs(5), c.get(&url).send()).await;
                if matches!(r, Ok(Ok(ref r)) if r.status() == 200) {
                    ok += 1;
                }
            }
            ok
        }));
    }
    let mut served = 0;
    for t in tasks {
        served += t.await.unwrap();
    }
    assert_eq!(served, 6000, "every request served");
    assert!(started.elapsed() < Duration::from_secs(60));
    let m = g.metrics_when(|m| dropped(m) > 0).await;
    let n = dropped(&m);
    assert!(n > 0 && n < 6000, "dropped {n}:\n{m}");
}

fn dropped(metrics: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("rampart_access_log_dropped_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}
