//! rampart's own responses: errors (plain text, or JSON when the client
//! prefers it), `respond` routes and redirects. Written with
//! `write_response_header` rather than pingora's `respond_error`, which
//! would force `Connection: close` and `Server: Pingora`.

use bytes::Bytes;
use http::header::{self, HeaderValue};
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::proxy::Session;

/// The reason phrase for a status ("Too Many Requests").
pub fn reason(status: u16) -> &'static str {
    http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error")
}

/// Whether `Accept` ranks `application/json` above plain text.
pub fn prefers_json(accept: Option<&HeaderValue>) -> bool {
    let Some(accept) = accept.and_then(|a| a.to_str().ok()) else {
        return false;
    };
    let (mut json, mut text) = (0.0f32, 0.0f32);
    for part in accept.split(',') {
        let mut it = part.split(';');
        let media = it.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = it
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        match media.as_str() {
            "application/json" => json = json.max(q),
            "application/*" => json = json.max(q * 0.99),
            "text/plain" | "text/*" | "text/html" => text = text.max(q),
            "*/*" => text = text.max(q * 0.98),
            _ => {}
        }
    }
    json > 0.0 && json > text
}

/// The content type of an `error_pages` body.
pub const HTML: &str = "text/html; charset=utf-8";
pub const TEXT: &str = "text/plain; charset=utf-8";

/// Body and content type of an error answer.
pub fn error_body(status: u16, request_id: &str, json: bool) -> (Bytes, &'static str) {
    let reason = reason(status);
    if json {
        let v = serde_json::json!({"status": status, "error": reason, "request_id": request_id});
        (Bytes::from(v.to_string()), "application/json")
    } else {
        (Bytes::from(format!("{status} {reason}\n")), TEXT)
    }
}

/// A response head with a body of known length.
pub fn head(status: u16, content_type: &HeaderValue, len: usize) -> Result<ResponseHeader> {
    let mut resp = ResponseHeader::build(status, Some(8))?;
    if len > 0 || status >= 200 && status != 204 && status != 304 {
        resp.insert_header(header::CONTENT_TYPE, content_type.clone())?;
        resp.insert_header(header::CONTENT_LENGTH, len)?;
    }
    Ok(resp)
}

/// Writes a complete local response. The body is skipped for HEAD.
pub async fn write(session: &mut Session, resp: ResponseHeader, body: Bytes) -> Result<()> {
    let head_only = session.req_header().method == http::Method::HEAD || body.is_empty();
    session
        .write_response_header(Box::new(resp), head_only)
        .await?;
    if !head_only {
        session.write_response_body(Some(body), true).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_preference() {
        let h = |s: &'static str| HeaderValue::from_static(s);
        assert!(prefers_json(Some(&h("application/json"))));
        assert!(prefers_json(Some(&h("application/json, text/plain;q=0.5"))));
        assert!(!prefers_json(Some(&h(
            "text/plain, application/json;q=0.5"
        ))));
        assert!(!prefers_json(Some(&h("*/*"))));
        assert!(!prefers_json(Some(&h(
            "text/html,application/xhtml+xml,*/*;q=0.8"
        ))));
        assert!(prefers_json(Some(&h("application/json, */*;q=0.1"))));
        assert!(!prefers_json(None));
    }

    #[test]
    fn bodies() {
        let (b, ct) = error_body(429, "id1", false);
        assert_eq!(&b[..], b"429 Too Many Requests\n");
        assert_eq!(ct, "text/plain; charset=utf-8");
        let (b, ct) = error_body(404, "id1", true);
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["status"], 404);
        assert_eq!(v["error"], "Not Found");
        assert_eq!(v["request_id"], "id1");
        assert_eq!(ct, "application/json");
    }
}
