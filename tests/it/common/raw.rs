//! Raw sockets: exact bytes in and out, for input a client library would not send.

use super::*;

/// Reads one request head from a raw test upstream (within `within`);
/// `false` when the connection ends or times out first.
#[allow(dead_code)] // not every test binary has a raw upstream
pub fn read_request_head(s: &mut std::net::TcpStream, within: Duration) -> bool {
    use std::io::Read;
    if s.set_read_timeout(Some(within)).is_err() {
        return false;
    }
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return false,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    true
}

/// Reads until the server closes the connection (or 5 s pass).
pub fn read_to_close(s: &mut std::net::TcpStream) -> String {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut out = Vec::new();
    let _ = std::io::Read::read_to_end(s, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Sends `request` on a fresh connection and reads until the server closes
/// it; returns what was read and how long the close took (a server that
/// keeps the connection open is cut off by the 5 s read timeout).
pub fn exchange_until_close(port: u16, request: &[u8]) -> (String, Duration) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(request).unwrap();
    let start = Instant::now();
    let got = read_to_close(&mut s);
    (got, start.elapsed())
}
