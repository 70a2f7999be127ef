//! Answers of a `static` route: the file (see [`crate::static_files`] for
//! how a path becomes one, safely), with validators, conditional requests
//! and byte ranges.

use http::header::{self, HeaderName, HeaderValue};
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::proxy::Session;
use pingora::ErrorType;

use super::answer;
use super::ctx::RequestCtx;
use crate::config::snapshot::{Action, Static};
use crate::static_files::{self as sf, FileInfo, Target};

/// Files are streamed in chunks of this size: constant memory whatever the
/// file size.
const CHUNK: u64 = 64 * 1024;

/// The request's conditional and range headers, copied out of the head.
struct Conditions {
    range: Option<String>,
    if_none_match: Option<String>,
    if_modified_since: Option<String>,
    /// `?query` or empty, for a slash redirect.
    query: String,
}

impl Conditions {
    fn of(req: &pingora::http::RequestHeader) -> Self {
        let text = |n: header::HeaderName| req.headers.get(n).and_then(|v| v.to_str().ok());
        Conditions {
            range: text(header::RANGE).map(str::to_string),
            if_none_match: text(header::IF_NONE_MATCH).map(str::to_string),
            if_modified_since: text(header::IF_MODIFIED_SINCE).map(str::to_string),
            query: req.uri.query().map(|q| format!("?{q}")).unwrap_or_default(),
        }
    }
}

/// What a request for a file of `st` leads to: the file (a precompressed
/// sibling the client takes, unless it asks for a range), a slash
/// redirect, or nothing. `path` is the normalized request path.
pub async fn find(session: &Session, st: &Static, path: &str) -> Target {
    let req = session.req_header();
    let accept_encoding = req.headers.get(header::ACCEPT_ENCODING);
    let accept = sf::accepted_encodings(accept_encoding.and_then(|v| v.to_str().ok()));
    let ranged = req.headers.contains_key(header::RANGE);
    sf::resolve(st, path, &accept, ranged).await
}

/// A `static` route's answer.
pub async fn serve(session: &mut Session, ctx: &mut RequestCtx) -> Result<()> {
    let live = ctx.live.clone();
    let (_, route) = ctx.server_route(&live);
    let Some(Action::Static(st)) = route.map(|r| &r.action) else {
        return answer::status_with(session, ctx, 404, &[]).await;
    };
    let path = ctx.static_path.take().unwrap_or_default();
    answer::drain_small_body(session, ctx);
    let req = session.req_header();
    if req.method != http::Method::GET && req.method != http::Method::HEAD {
        let allow = [(header::ALLOW, HeaderValue::from_static("GET, HEAD"))];
        return answer::status_with(session, ctx, 405, &allow).await;
    }
    let target = find(session, st, &path).await;
    send(session, ctx, st, target).await
}

/// The answer of an upstream route's `try_files` for a file it found.
pub async fn serve_found(
    session: &mut Session,
    ctx: &mut RequestCtx,
    target: Target,
) -> Result<()> {
    let live = ctx.live.clone();
    let (_, route) = ctx.server_route(&live);
    let Some(st) = route.and_then(|r| r.try_files.as_ref()) else {
        return answer::status_with(session, ctx, 404, &[]).await;
    };
    answer::drain_small_body(session, ctx);
    send(session, ctx, st, target).await
}

/// Writes what a request for a file of `st` led to.
async fn send(
    session: &mut Session,
    ctx: &mut RequestCtx,
    st: &Static,
    target: Target,
) -> Result<()> {
    let cond = Conditions::of(session.req_header());
    let f = match target {
        Target::NotFound => return answer::status_with(session, ctx, 404, &[]).await,
        Target::AddSlash => {
            // The path as received (still percent-encoded), not as matched.
            let received = session.req_header().uri.path();
            let loc = HeaderValue::from_str(&format!("{received}/{}", cond.query))
                .unwrap_or(HeaderValue::from_static("/"));
            return answer::status_with(session, ctx, 301, &[(header::LOCATION, loc)]).await;
        }
        Target::File(f) => f,
    };
    send_file(session, ctx, st, f, &cond).await
}

/// The headers every answer about the file carries, 304 included.
fn validators(st: &Static, f: &FileInfo, etag: &str) -> Vec<(HeaderName, HeaderValue)> {
    let mut out = vec![(
        header::ETAG,
        HeaderValue::from_str(etag).unwrap_or(HeaderValue::from_static("\"0\"")),
    )];
    if let Some(m) = f.modified {
        if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(m)) {
            out.push((header::LAST_MODIFIED, v));
        }
    }
    if let Some(cc) = &st.cache_control {
        out.push((header::CACHE_CONTROL, cc.clone()));
    }
    if let Some(e) = st.expires {
        let at = std::time::SystemTime::now() + e;
        if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(at)) {
            out.push((header::EXPIRES, v));
        }
    }
    out.push((header::VARY, HeaderValue::from_static("Accept-Encoding")));
    out
}

async fn send_file(
    session: &mut Session,
    ctx: &mut RequestCtx,
    st: &Static,
    f: FileInfo,
    cond: &Conditions,
) -> Result<()> {
    let etag = f.etag();
    let validators = validators(st, &f, &etag);
    let (inm, ims) = (
        cond.if_none_match.as_deref(),
        cond.if_modified_since.as_deref(),
    );
    if sf::not_modified(inm, ims, &etag, f.modified) {
        let mut resp = ResponseHeader::build(304, Some(8))?;
        for (n, v) in validators {
            resp.insert_header(n, v)?;
        }
        answer::finish_head(session, ctx, &mut resp);
        ctx.ending.local_status = Some(304);
        return session.write_response_header(Box::new(resp), true).await;
    }
    let (status, start, len) = match sf::parse_range(cond.range.as_deref(), f.len) {
        Ok(None) => (200, 0, f.len),
        Ok(Some((a, b))) => (206, a, b - a + 1),
        Err(()) => {
            let cr = HeaderValue::from_str(&format!("bytes */{}", f.len))
                .unwrap_or(HeaderValue::from_static("bytes */0"));
            return answer::status_with(session, ctx, 416, &[(header::CONTENT_RANGE, cr)]).await;
        }
    };
    let mut resp = ResponseHeader::build(status, Some(12))?;
    resp.insert_header(header::CONTENT_TYPE, f.content_type.clone())?;
    resp.insert_header(header::CONTENT_LENGTH, len)?;
    resp.insert_header(header::ACCEPT_RANGES, "bytes")?;
    for (n, v) in validators {
        resp.insert_header(n, v)?;
    }
    if let Some(enc) = f.encoding {
        resp.insert_header(header::CONTENT_ENCODING, enc)?;
    }
    if status == 206 {
        let range = format!("bytes {}-{}/{}", start, start + len - 1, f.len);
        resp.insert_header(header::CONTENT_RANGE, range)?;
    }
    answer::finish_head(session, ctx, &mut resp);
    ctx.ending.local_status = Some(status);
    let head_only = session.req_header().method == http::Method::HEAD || len == 0;
    session
        .write_response_header(Box::new(resp), head_only)
        .await?;
    if head_only {
        return Ok(());
    }
    stream(session, tokio::fs::File::from_std(f.file), start, len).await
}

/// Sends `len` bytes of `file` from `start`.
async fn stream(
    session: &mut Session,
    mut file: tokio::fs::File,
    start: u64,
    len: u64,
) -> Result<()> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    if start > 0 {
        file.seek(std::io::SeekFrom::Start(start))
            .await
            .map_err(|e| Error::because(ErrorType::FileReadError, "seek", e))?;
    }
    let mut left = len;
    while left > 0 {
        let mut buf = bytes::BytesMut::zeroed(left.min(CHUNK) as usize);
        let n = file
            .read(&mut buf)
            .await
            .map_err(|e| Error::because(ErrorType::FileReadError, "read", e))?;
        if n == 0 {
            return Error::e_explain(ErrorType::FileReadError, "file shrank while being sent");
        }
        buf.truncate(n);
        left -= n as u64;
        session
            .write_response_body(Some(buf.freeze()), left == 0)
            .await?;
    }
    Ok(())
}
