//! HTTP/2 connections are held to the same limits as HTTP/1.1: the
//! preface within `client_header_timeout`, an idle connection closed after
//! `keepalive_timeout`, a request body that stops arriving cut off after
//! `client_body_timeout`. Driven by a raw h2 client over TLS.

use std::time::{Duration, Instant};

use crate::common::*;
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn config(origin: std::net::SocketAddr) -> String {
    let dir = fixture("");
    let dir = dir.trim_end_matches('/');
    Config::new()
        .upstream("app", origin, "")
        .server(&format!(
            "hosts = [\"localhost\"]\nclient_header_timeout = \"1s\"\nclient_body_timeout = \"1s\"\n\
             keepalive_timeout = \"1s\"\nmax_body_size = \"10M\"\n\
             [servers.tls]\ncert = \"{dir}/leaf.pem\"\nkey = \"{dir}/leaf-key.pem\""
        ))
        .proxy("/", "app")
        .build()
}

async fn h2_tls(port: u16) -> TlsConn {
    let conn = tls_connect(
        port,
        "localhost",
        tls_client(&[&rustls::version::TLS13], &[b"h2"]),
    )
    .await
    .unwrap();
    assert_eq!(conn.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    conn
}

/// How long until the peer closes `conn` (at most `within`).
async fn closed_after(conn: &mut TlsConn, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout_at((start + within).into(), conn.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(start.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_without_its_preface_is_closed() {
    let origin = Origin::start("o").await;
    let g = Gateway::start(&config(origin.addr));
    let mut silent = h2_tls(g.port).await;
    let took = closed_after(&mut silent, Duration::from_secs(5)).await;
    assert!(took.is_some_and(|t| t < Duration::from_secs(3)), "{took:?}");
    // Half a preface is no better.
    let mut half = h2_tls(g.port).await;
    half.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    let took = closed_after(&mut half, Duration::from_secs(5)).await;
    assert!(took.is_some_and(|t| t < Duration::from_secs(3)), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_is_closed_after_keepalive_timeout() {
    let origin = Origin::start("o").await;
    let g = Gateway::start(&config(origin.addr));
    for requests in [0, 1] {
        let tls = h2_tls(g.port).await;
        let (client, connection) = h2::client::handshake(tls).await.unwrap();
        let conn = tokio::spawn(connection);
        let start = Instant::now();
        if requests == 1 {
            let mut client = client.clone().ready().await.unwrap();
            let req = http::Request::get("https://localhost/x").body(()).unwrap();
            let (resp, _) = client.send_request(req, true).unwrap();
            assert_eq!(resp.await.unwrap().status(), 200);
        }
        let ended = tokio::time::timeout(Duration::from_secs(5), conn).await;
        assert!(
            ended.is_ok(),
            "still open after 5 s ({requests} request(s))"
        );
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(900),
            "closed too early: {took:?}"
        );
        drop(client);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_h2_request_body_is_cut_off() {
    let origin = Origin::start("o").await;
    let g = Gateway::start(&config(origin.addr));
    let tls = h2_tls(g.port).await;
    let (client, connection) = h2::client::handshake(tls).await.unwrap();
    tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    let req = http::Request::post("https://localhost/upload")
        .body(())
        .unwrap();
    let (resp, mut body) = client.send_request(req, false).unwrap();
    body.send_data(Bytes::from_static(b"first part"), false)
        .unwrap();
    let start = Instant::now();
    // Nothing more: the gap outlasts client_body_timeout.
    let answer = tokio::time::timeout(Duration::from_secs(5), resp).await;
    let took = start.elapsed();
    match answer {
        Ok(Ok(r)) => assert_eq!(r.status(), 408, "{r:?}"),
        Ok(Err(e)) => assert!(e.is_reset() || e.is_io(), "{e:?}"),
        Err(_) => panic!("the stream was still open after 5 s"),
    }
    assert!(took < Duration::from_secs(4), "{took:?}");
    drop(body);
}
