//! One pass over a request's header lines, for what the admission phases
//! and the upstream hooks ask about: a hashed lookup per header costs more
//! on every request than comparing each line's name once.

use http::header::{self, HeaderValue};
use pingora::http::RequestHeader;

use crate::headers;
use crate::sanitize;

/// What the header lines of a request say, as far as rampart cares.
#[derive(Debug, Default)]
pub struct HeadFacts {
    /// The request's host (port included, if any): its `Host` when that is
    /// visible ASCII, else the h2 `:authority`. One choice for routing,
    /// rate-limit keys, logs and the upstream's `Host`.
    pub host: Option<HeaderValue>,
    /// `Host` lines (counted up to 2), and whether the first is visible
    /// ASCII.
    host_lines: u8,
    host_ascii: bool,
    /// `Transfer-Encoding` lines (counted up to 2) and whether the first
    /// names exactly `chunked`.
    te_lines: u8,
    te_chunked: bool,
    /// `close` in any `Connection` line (RFC 9110 §7.6.1: the lines are one
    /// list; pingora reads only the first).
    pub connection_close: bool,
    /// The first `Content-Length`, if a number (pingora refused any other).
    pub content_length: Option<u64>,
    pub expect: bool,
}

impl HeadFacts {
    /// The facts, and the client's `X-Request-Id` (kept apart: the context
    /// holds it as a [`headers::RequestId`]).
    pub fn scan(req: &RequestHeader) -> (Self, Option<HeaderValue>) {
        let mut f = HeadFacts::default();
        let mut request_id = None;
        let request_id_name = headers::X_REQUEST_ID.name();
        for (name, value) in req.headers.iter() {
            if *name == header::HOST {
                f.host_lines = f.host_lines.saturating_add(1).min(2);
                if f.host_lines == 1 {
                    f.host_ascii = value.to_str().is_ok();
                    f.host = Some(value.clone());
                }
            } else if *name == header::TRANSFER_ENCODING {
                f.te_lines = f.te_lines.saturating_add(1).min(2);
                f.te_chunked = f.te_lines == 1 && sanitize::coding_is_chunked(value.as_bytes());
            } else if *name == header::CONNECTION {
                f.connection_close |= headers::list_tokens(value.as_bytes())
                    .any(|t| t.eq_ignore_ascii_case(b"close"));
            } else if *name == header::CONTENT_LENGTH {
                if f.content_length.is_none() {
                    f.content_length = std::str::from_utf8(value.as_bytes())
                        .ok()
                        .and_then(|v| v.trim().parse().ok());
                }
            } else if *name == header::EXPECT {
                f.expect = true;
            } else if name == request_id_name {
                request_id.get_or_insert_with(|| value.clone());
            }
        }
        if !f.host_ascii {
            f.host = req
                .uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok());
        }
        (f, request_id)
    }

    /// The host as text, port included.
    pub fn host(&self) -> Option<&str> {
        self.host.as_ref().and_then(|h| h.to_str().ok())
    }

    /// RFC 9112 §3.2: an HTTP/1.1 request needs exactly one `Host`, of
    /// visible ASCII; HTTP/1.0 may have none (but not two).
    pub fn host_is_well_formed(&self, version: http::Version) -> bool {
        match self.host_lines {
            0 => version != http::Version::HTTP_11,
            1 => self.host_ascii,
            _ => false,
        }
    }

    /// rampart decodes no transfer coding but `chunked`, so a request framed
    /// by anything else (`gzip, chunked` included: the upstream would get a
    /// body still gzip-coded, told it is not) is a 501, as nginx answers.
    pub fn transfer_coding_supported(&self) -> bool {
        match self.te_lines {
            0 => true,
            1 => self.te_chunked,
            _ => false,
        }
    }

    /// Whether the body is framed by `Transfer-Encoding` (of unknown length).
    pub fn has_transfer_encoding(&self) -> bool {
        self.te_lines > 0
    }

    /// After an absolute-form target set `Host` (see
    /// [`sanitize::absolute_form_to_host`]).
    pub fn host_changed(&mut self, req: &RequestHeader) {
        self.host = req.headers.get(header::HOST).cloned();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(lines: &[(&str, &str)], version: http::Version) -> (HeadFacts, RequestHeader) {
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        req.set_version(version);
        for (n, v) in lines {
            req.append_header(n.to_string(), *v).unwrap();
        }
        (HeadFacts::scan(&req).0, req)
    }

    #[test]
    fn host_lines_decide_well_formedness() {
        let v11 = http::Version::HTTP_11;
        let (f, r) = facts(&[("Host", "a.example")], v11);
        assert!(f.host_is_well_formed(r.version));
        assert_eq!(f.host(), Some("a.example"));
        let (f, r) = facts(&[("Host", "a"), ("Host", "b")], v11);
        assert!(!f.host_is_well_formed(r.version));
        assert_eq!(f.host(), Some("a"));
        let (f, r) = facts(&[], v11);
        assert!(!f.host_is_well_formed(r.version));
        let (f, r) = facts(&[], http::Version::HTTP_10);
        assert!(f.host_is_well_formed(r.version));
        assert_eq!(f.host(), None);
    }

    #[test]
    fn transfer_codings_other_than_chunked_are_unsupported() {
        let v = http::Version::HTTP_11;
        assert!(facts(&[], v).0.transfer_coding_supported());
        assert!(facts(&[("Transfer-Encoding", "chunked")], v)
            .0
            .transfer_coding_supported());
        assert!(facts(&[("Transfer-Encoding", " Chunked ")], v)
            .0
            .transfer_coding_supported());
        for bad in ["gzip, chunked", "gzip", "chunked, chunked", "identity", ""] {
            assert!(
                !facts(&[("Transfer-Encoding", bad)], v)
                    .0
                    .transfer_coding_supported(),
                "{bad}"
            );
        }
        let two = [
            ("Transfer-Encoding", "chunked"),
            ("Transfer-Encoding", "chunked"),
        ];
        assert!(!facts(&two, v).0.transfer_coding_supported());
    }

    #[test]
    fn close_in_any_connection_line_counts() {
        let v = http::Version::HTTP_11;
        assert!(!facts(&[("Connection", "keep-alive")], v).0.connection_close);
        let two = [
            ("Connection", "keep-alive"),
            ("Connection", "Upgrade, Close"),
        ];
        assert!(facts(&two, v).0.connection_close);
    }

    #[test]
    fn first_values_are_kept() {
        let v = http::Version::HTTP_11;
        let lines = [
            ("Content-Length", " 12 "),
            ("Content-Length", "13"),
            ("X-Request-Id", "abc"),
            ("X-Request-Id", "def"),
            ("Expect", "100-continue"),
        ];
        let (f, req) = facts(&lines, v);
        assert_eq!(f.content_length, Some(12));
        assert!(f.expect);
        assert_eq!(HeadFacts::scan(&req).1.unwrap(), "abc");
    }
}
