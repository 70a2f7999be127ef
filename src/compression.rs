//! Response compression (`[servers.compression]`): gzip, and brotli or zstd
//! when the client prefers them. (pingora 0.9.1's brotli encoder ended
//! responses with a flush instead of finishing the stream; the vendored
//! pingora-core fixes it, see vendor/README.md.)
//!
//! pingora's compression module does the encoding (streamed, chunk by
//! chunk). rampart steers it, because on its own it takes the first
//! encoding named in `Accept-Encoding` whatever the q-values, and knows
//! nothing of `types` / `min_length`:
//! - [`negotiate`] (before the module reads the request) picks the encoding
//!   by q-value and narrows `Accept-Encoding` to it — the client's header is
//!   restored for the upstream;
//! - [`decide`] (before each response head, proxied or rampart's own) turns
//!   the module off for responses that must stay as they are.

use http::header::{self, HeaderValue};
use pingora::http::ResponseHeader;
use pingora::modules::http::compression::{ResponseCompression, ResponseCompressionBuilder};
use pingora::modules::http::HttpModules;
use pingora::protocols::http::compression::Algorithm;
use pingora::proxy::Session;

use crate::config::snapshot::Compression;
use crate::headers;

/// Levels chosen by measurement on a 64 KiB JSON body (`cargo run --release
/// --example compression_levels`, bench/README.md): gzip 3 has the ratio of
/// 5-9 at 1.8x the speed of 5; brotli 4 beats 6 on both; zstd 3.
const GZIP_LEVEL: u32 = 3;
const BROTLI_LEVEL: u32 = 4;
const ZSTD_LEVEL: u32 = 3;

pub fn install(modules: &mut HttpModules) {
    modules.add_module(ResponseCompressionBuilder::enable(GZIP_LEVEL));
}

/// The encoding to use for an `Accept-Encoding` value: highest q wins,
/// ties go to br, then zstd, then gzip; `q=0` refuses; `*` stands for any
/// encoding not named.
pub fn choose(accept_encoding: &str) -> Option<&'static str> {
    let mut q = [None::<f32>; 3]; // br, zstd, gzip
    let mut star = None::<f32>;
    for part in accept_encoding.split(',') {
        let mut it = part.split(';');
        let name = it.next().unwrap_or("").trim().to_ascii_lowercase();
        let weight = it
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|v| v.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        match name.as_str() {
            "br" => q[0] = Some(weight),
            "zstd" => q[1] = Some(weight),
            "gzip" | "x-gzip" => q[2] = Some(weight),
            "*" => star = Some(weight),
            _ => {}
        }
    }
    let names = ["br", "zstd", "gzip"];
    let mut best: Option<(&'static str, f32)> = None;
    for (i, name) in names.iter().enumerate() {
        let w = q[i].or(star).unwrap_or(0.0);
        if w > 0.0 && best.is_none_or(|(_, b)| w > b) {
            best = Some((name, w));
        }
    }
    best.map(|(n, _)| n)
}

fn module(session: &mut Session) -> Option<&mut ResponseCompression> {
    session
        .downstream_modules_ctx
        .get_mut::<ResponseCompression>()
}

/// Chooses the encoding for this request, before the module sees it.
/// `saved` receives the client's header when it was narrowed.
pub fn negotiate(session: &mut Session, enabled: bool, saved: &mut Option<HeaderValue>) {
    let ae = session
        .req_header()
        .headers
        .get(header::ACCEPT_ENCODING)
        .cloned();
    let choice = if enabled {
        ae.as_ref().and_then(|v| v.to_str().ok()).and_then(choose)
    } else {
        None
    };
    let Some(m) = module(session) else { return };
    let Some(choice) = choice else {
        m.adjust_level(0);
        return;
    };
    m.adjust_algorithm_level(Algorithm::Gzip, GZIP_LEVEL);
    m.adjust_algorithm_level(Algorithm::Brotli, BROTLI_LEVEL);
    m.adjust_algorithm_level(Algorithm::Zstd, ZSTD_LEVEL);
    let _ = session
        .req_header_mut()
        .insert_header(header::ACCEPT_ENCODING, choice);
    *saved = ae;
}

/// Whether a response may be compressed under `c` (the client's choice
/// aside).
pub fn eligible(c: &Compression, resp: &ResponseHeader) -> bool {
    let status = resp.status.as_u16();
    if matches!(status, 101 | 204 | 206 | 304) || status < 200 {
        return false;
    }
    let h = &resp.headers;
    if h.get(header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes() != b"identity")
    {
        return false;
    }
    if h.get(header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| headers::has_token(v, "no-transform"))
    {
        return false;
    }
    let Some(ct) = h.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let base = ct.split(';').next().unwrap_or("").trim();
    // Events must reach the client as they are sent, never held in a compressor.
    if headers::is_event_stream(h) || !c.types.iter().any(|t| t.eq_ignore_ascii_case(base)) {
        return false;
    }
    match h
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        Some(len) => len >= c.min_length,
        None => true,
    }
}

/// Before a response head goes out: switch compression off unless the
/// response is eligible; mark eligible ones `Vary: Accept-Encoding`.
pub fn decide(session: &mut Session, c: Option<&Compression>, resp: &mut ResponseHeader) {
    let ok = c.is_some_and(|c| eligible(c, resp));
    if ok {
        headers::add_vary(resp, "Accept-Encoding");
    }
    if let Some(m) = module(session) {
        if !ok && m.is_header_phase() {
            m.adjust_level(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q_values_are_honoured() {
        assert_eq!(choose("gzip"), Some("gzip"));
        assert_eq!(choose("gzip, deflate, br"), Some("br"));
        assert_eq!(choose("gzip;q=1.0, br;q=0.5"), Some("gzip"));
        assert_eq!(choose("br;q=0, gzip"), Some("gzip"));
        assert_eq!(choose("gzip;q=0.5, zstd;q=1"), Some("zstd"));
        assert_eq!(choose("zstd;q=0, gzip"), Some("gzip"));
        assert_eq!(choose("gzip;q=0"), None);
        assert_eq!(choose("identity"), None);
        assert_eq!(choose("*"), Some("br"));
        assert_eq!(choose("*;q=0.5, br;q=0"), Some("zstd"));
        assert_eq!(choose("zstd, gzip"), Some("zstd"));
        assert_eq!(choose(""), None);
    }

    #[test]
    fn eligibility() {
        let c = Compression {
            min_length: 100,
            types: vec!["text/plain".into(), "application/json".into()],
        };
        let resp = |status: u16, hs: &[(&str, &str)]| {
            let mut r = ResponseHeader::build(status, None).unwrap();
            for (n, v) in hs {
                r.append_header(n.to_string(), *v).unwrap();
            }
            r
        };
        assert!(eligible(
            &c,
            &resp(
                200,
                &[
                    ("content-type", "text/plain; charset=utf-8"),
                    ("content-length", "500")
                ]
            )
        ));
        assert!(
            eligible(&c, &resp(200, &[("content-type", "application/json")])),
            "unknown length"
        );
        assert!(
            !eligible(
                &c,
                &resp(
                    200,
                    &[("content-type", "text/plain"), ("content-length", "99")]
                )
            ),
            "min_length"
        );
        assert!(
            !eligible(
                &c,
                &resp(
                    200,
                    &[("content-type", "image/png"), ("content-length", "500")]
                )
            ),
            "type"
        );
        assert!(
            !eligible(
                &c,
                &resp(
                    206,
                    &[("content-type", "text/plain"), ("content-length", "500")]
                )
            ),
            "range"
        );
        assert!(
            !eligible(
                &c,
                &resp(
                    200,
                    &[("content-type", "text/plain"), ("content-encoding", "gzip")]
                )
            ),
            "encoded"
        );
        assert!(!eligible(
            &c,
            &resp(
                200,
                &[
                    ("content-type", "text/plain"),
                    ("cache-control", "public, no-transform")
                ]
            )
        ));
        let sse = Compression {
            min_length: 0,
            types: vec!["text/event-stream".into()],
        };
        assert!(!eligible(
            &sse,
            &resp(200, &[("content-type", "text/event-stream")])
        ));
    }
}
