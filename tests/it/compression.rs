//! Response compression end to end.

use std::io::Read;

use crate::common::*;

fn config(origin: std::net::SocketAddr, body: &str) -> String {
    Config::new()
        .upstream("app", origin, "")
        .server("[servers.compression]\nmin_length = 100\ntypes = [\"text/plain\", \"application/json\"]")
        .route(&format!("exact = \"/local\"\nrespond = {{ body = \"{body}\" }}"))
        .route("exact = \"/tiny\"\nrespond = { body = \"short\" }")
        .proxy("/", "app")
        .build()
}

fn unbrotli(b: &[u8]) -> String {
    let mut s = String::new();
    brotli::Decompressor::new(b, 4096)
        .read_to_string(&mut s)
        .unwrap();
    s
}

fn gunzip(b: &[u8]) -> String {
    let mut s = String::new();
    flate2::read::GzDecoder::new(b)
        .read_to_string(&mut s)
        .unwrap();
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_answers_follow_accept_encoding_q_values() {
    let origin = Origin::start("o").await;
    let body = "lorem ipsum dolor sit amet ".repeat(20);
    let g = Gateway::start(&config(origin.addr, &body));
    // reqwest without gzip/brotli features leaves bodies as sent.
    let c = client();
    let get = |ae: &'static str| c.get(g.url("/local")).header("accept-encoding", ae).send();
    let r = get("gzip").await.unwrap();
    assert_eq!(r.headers()["content-encoding"], "gzip");
    assert_eq!(r.headers()["vary"], "Accept-Encoding");
    assert_eq!(gunzip(&r.bytes().await.unwrap()), body);
    let r = get("gzip;q=0.5, zstd;q=1").await.unwrap();
    assert_eq!(r.headers()["content-encoding"], "zstd");
    let r = get("zstd;q=0, gzip").await.unwrap();
    assert_eq!(r.headers()["content-encoding"], "gzip", "q=0 refuses zstd");
    // Brotli, a complete stream (pingora 0.9.1 left it unfinished; vendored fix).
    let r = get("gzip;q=0.5, br").await.unwrap();
    assert_eq!(r.headers()["content-encoding"], "br");
    assert_eq!(unbrotli(&r.bytes().await.unwrap()), body);
    let r = get("gzip;q=0").await.unwrap();
    assert!(r.headers().get("content-encoding").is_none());
    assert_eq!(r.text().await.unwrap(), body);
    // Below min_length: as is.
    let r = c
        .get(g.url("/tiny"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("content-encoding").is_none());
    assert_eq!(r.text().await.unwrap(), "short");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxied_responses_and_what_stays_uncompressed() {
    let origin = Origin::start("o").await;
    let g = Gateway::start(&config(origin.addr, "x"));
    let c = client();
    let get = |p: &'static str| c.get(g.url(p)).header("accept-encoding", "gzip, br").send();
    let r = get("/json-big").await.unwrap();
    assert_eq!(r.headers()["content-encoding"], "br");
    assert!(r.headers().get("content-length").is_none());
    let text = unbrotli(&r.bytes().await.unwrap());
    assert!(text.starts_with("{\"items\": \"abcabc") && text.len() > 2000);
    assert_eq!(
        origin.last().header("accept-encoding"),
        Some("gzip, br"),
        "the upstream sees the client's header"
    );
    for p in ["/json-no-transform", "/json-encoded", "/x"] {
        let r = get(p).await.unwrap();
        let ce = r
            .headers()
            .get("content-encoding")
            .map(|v| v.to_str().unwrap().to_string());
        assert_ne!(
            ce.as_deref(),
            Some("gzip"),
            "{p} must stay as the upstream sent it"
        );
    }
    // Without Accept-Encoding: identity, but the answer still varies.
    let r = c.get(g.url("/json-big")).send().await.unwrap();
    assert!(r.headers().get("content-encoding").is_none());
    assert_eq!(r.headers()["vary"], "Accept-Encoding");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_and_static_files() {
    let dir = tempfile::tempdir().unwrap();
    let text = "static text file ".repeat(50);
    std::fs::write(dir.path().join("notes.txt"), &text).unwrap();
    let toml = Config::new()
        .server("[servers.compression]\nmin_length = 100\ntypes = [\"text/plain\"]")
        .route(&format!(
            "prefix = \"/files/\"\nstatic = {{ root = \"{}\" }}",
            dir.path().display()
        ))
        .build();
    let g = Gateway::start(&toml);
    let c = client();
    // A whole static file is compressed like any response...
    let r = c
        .get(g.url("/files/notes.txt"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-encoding"], "gzip");
    assert_eq!(gunzip(&r.bytes().await.unwrap()), text);
    // ...but a byte range is sent as is.
    let r = c
        .get(g.url("/files/notes.txt"))
        .header("accept-encoding", "gzip")
        .header("range", "bytes=0-5")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert!(r.headers().get("content-encoding").is_none());
    assert_eq!(r.text().await.unwrap(), "static");
}
