//! The path a request is routed on and the path its upstream receives:
//! one resource for both (path confusion: a `deny` route, a rate limit or a
//! CORS policy chosen for one path while the upstream serves another).
//!
//! Segments are split on raw `/` only. A segment that decodes to `.` or `..`
//! (`%2e`, `.%2E`, ...) is resolved and empty segments merge, in both paths;
//! every other segment is forwarded exactly as received (its
//! percent-encoding kept) and matched percent-decoded. `%2F` and `%5C`
//! would make rampart and the upstream disagree about where segments end,
//! so they are refused unless the server allows them, in which case they
//! stay encoded in both paths: literal characters inside a segment. A raw
//! `\` (a separator to some servers), `%00` and control characters are
//! always refused.

use std::borrow::Cow;

/// Why a request path was refused (400).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("path does not start with /")]
    NotAbsolute,
    #[error("path escapes the root")]
    EscapesRoot,
    #[error("path contains an invalid percent-encoding, a NUL or control byte, or a backslash")]
    BadEncoding,
    #[error("path contains an encoded slash or backslash")]
    EncodedSlash,
    #[error("path contains a dot segment with a parameter (`..;`)")]
    DotSegmentParameter,
}

/// A request path, normalized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestPath<'a> {
    /// Percent-decoded (but `%2F`/`%5C` when allowed): what routes match.
    pub matched: Cow<'a, str>,
    /// As received but for resolved `.`/`..` and merged `/`: what the
    /// upstream receives.
    pub forward: Cow<'a, str>,
}

/// Whether `path` is already in normal form with nothing encoded: the
/// common case, answered without allocating.
fn plain(path: &str) -> bool {
    let b = path.as_bytes();
    !b.iter()
        .any(|&c| c == b'%' || c == b'\\' || c <= b' ' || c == 0x7f)
        && !path.contains("//")
        && !path.contains("/.")
}

/// Normalizes a request path (the target's path, without query).
pub fn normalize(path: &str, allow_encoded_slashes: bool) -> Result<RequestPath<'_>, PathError> {
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    if plain(path) {
        return Ok(RequestPath {
            matched: Cow::Borrowed(path),
            forward: Cow::Borrowed(path),
        });
    }
    // (raw segment, matched segment)
    let mut kept: Vec<(&str, String)> = Vec::new();
    let raw_segments: Vec<&str> = path[1..].split('/').collect();
    let mut trailing = false;
    for (i, raw) in raw_segments.iter().enumerate() {
        let last = i + 1 == raw_segments.len();
        let matched = decode_segment(raw, allow_encoded_slashes)?;
        match matched.as_str() {
            "" | "." => trailing = last,
            ".." => {
                if kept.pop().is_none() {
                    return Err(PathError::EscapesRoot);
                }
                trailing = last;
            }
            _ => {
                kept.push((raw, matched));
                trailing = false;
            }
        }
    }
    let mut forward = String::with_capacity(path.len());
    let mut matched = String::with_capacity(path.len());
    for (raw, m) in &kept {
        forward.push('/');
        forward.push_str(raw);
        matched.push('/');
        matched.push_str(m);
    }
    if kept.is_empty() || trailing {
        forward.push('/');
        matched.push('/');
    }
    let forward = if forward == path {
        Cow::Borrowed(path)
    } else {
        Cow::Owned(forward)
    };
    Ok(RequestPath {
        matched: Cow::Owned(matched),
        forward,
    })
}

/// One raw segment, percent-decoded for matching.
fn decode_segment(raw: &str, allow_encoded_slashes: bool) -> Result<String, PathError> {
    let b = raw.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'%' {
            let hex = |x: u8| (x as char).to_digit(16);
            let (Some(h), Some(l)) = (
                b.get(i + 1).and_then(|&x| hex(x)),
                b.get(i + 2).and_then(|&x| hex(x)),
            ) else {
                return Err(PathError::BadEncoding);
            };
            let d = (h * 16 + l) as u8;
            if d == b'/' || d == b'\\' {
                if !allow_encoded_slashes {
                    return Err(PathError::EncodedSlash);
                }
                // Kept encoded: a character of this segment, not a separator.
                out.extend_from_slice(&b[i..i + 3]);
            } else {
                out.push(d);
            }
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    if out.iter().any(|&c| c < b' ' || c == 0x7f || c == b'\\') {
        return Err(PathError::BadEncoding);
    }
    // `..;x` / `.;x`: a dot segment with a path parameter, which servlet
    // containers (Tomcat, Jetty) resolve as `..` / `.` while rampart would
    // take it for a name.
    let name = out.split(|&c| c == b';').next().unwrap_or_default();
    if out.contains(&b';') && (name == b"." || name == b"..") {
        return Err(PathError::DotSegmentParameter);
    }
    String::from_utf8(out).map_err(|_| PathError::BadEncoding)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both(path: &str) -> (String, String) {
        let p = normalize(path, false).unwrap();
        (p.matched.into_owned(), p.forward.into_owned())
    }

    #[test]
    fn plain_paths_are_borrowed() {
        let p = normalize("/api/x", false).unwrap();
        assert!(matches!(p.matched, Cow::Borrowed("/api/x")));
        assert!(matches!(p.forward, Cow::Borrowed("/api/x")));
        assert!(matches!(
            normalize("/", false).unwrap().forward,
            Cow::Borrowed("/")
        ));
    }

    #[test]
    fn dot_segments_resolve_in_both_paths_and_other_encoding_is_kept() {
        assert_eq!(both("/a/./b"), ("/a/b".into(), "/a/b".into()));
        assert_eq!(both("/a/../b"), ("/b".into(), "/b".into()));
        assert_eq!(both("/a//b/"), ("/a/b/".into(), "/a/b/".into()));
        assert_eq!(both("/a/b/.."), ("/a/".into(), "/a/".into()));
        assert_eq!(both("/%61pi/"), ("/api/".into(), "/%61pi/".into()));
        assert_eq!(
            both("/admin/%2e%2e/public"),
            ("/public".into(), "/public".into())
        );
        assert_eq!(
            both("/admin/.%2E/public"),
            ("/public".into(), "/public".into())
        );
        assert_eq!(both("//admin/x"), ("/admin/x".into(), "/admin/x".into()));
        assert_eq!(both("/a%20b/c"), ("/a b/c".into(), "/a%20b/c".into()));
        assert_eq!(both("/caf%C3%A9"), ("/café".into(), "/caf%C3%A9".into()));
        assert_eq!(both("/."), ("/".into(), "/".into()));
    }

    #[test]
    fn refused_paths() {
        for (p, e) in [
            ("x", PathError::NotAbsolute),
            ("/..", PathError::EscapesRoot),
            ("/a/../../b", PathError::EscapesRoot),
            ("/%2e%2e/x", PathError::EscapesRoot),
            ("/a%00b", PathError::BadEncoding),
            ("/a%01b", PathError::BadEncoding),
            ("/a%7fb", PathError::BadEncoding),
            ("/%ff", PathError::BadEncoding),
            ("/%zz", PathError::BadEncoding),
            ("/a%2", PathError::BadEncoding),
            ("/admin\\x", PathError::BadEncoding),
            ("/a%5cb", PathError::EncodedSlash),
            ("/admin/x/..%2F..%2Fpublic", PathError::EncodedSlash),
            ("/public/..;/admin", PathError::DotSegmentParameter),
            ("/public/.%2e;x=1/admin", PathError::DotSegmentParameter),
            ("/a/.;/b", PathError::DotSegmentParameter),
        ] {
            assert_eq!(normalize(p, false), Err(e), "{p}");
        }
    }

    #[test]
    fn allowed_encoded_slashes_are_characters_of_a_segment() {
        let p = normalize("/admin/x/..%2F..%2Fpublic", true).unwrap();
        assert_eq!(p.matched, "/admin/x/..%2F..%2Fpublic");
        assert_eq!(p.forward, "/admin/x/..%2F..%2Fpublic");
        let p = normalize("/files/a%2Fb/../c", true).unwrap();
        assert_eq!(p.matched, "/files/c");
        assert_eq!(p.forward, "/files/c");
        assert_eq!(normalize("/a%00", true), Err(PathError::BadEncoding));
        assert_eq!(normalize("/a\\b", true), Err(PathError::BadEncoding));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]
        /// Whatever the path: the forwarded path decodes to the matched
        /// one, has no dot or empty segment left, and is its own normal form.
        #[test]
        fn forward_and_matched_name_one_resource(
            segs in proptest::collection::vec(
                proptest::sample::select(vec![
                    "a", "b", ".", "..", "", "%2e", "%2E%2e", ".%2e", "%61", "%20", "x%2Fy", "%5c", "%25", "%",
                    "\\", "c%C3%A9",
                ]),
                0..8,
            ),
            allow in proptest::bool::ANY,
        ) {
            let path = format!("/{}", segs.join("/"));
            if let Ok(p) = normalize(&path, allow) {
                let again = normalize(&p.forward, allow).unwrap();
                proptest::prop_assert_eq!(&again.forward, &p.forward);
                proptest::prop_assert_eq!(&again.matched, &p.matched);
                for seg in p.forward[1..].split('/').collect::<Vec<_>>().iter().rev().skip(1) {
                    let d = decode_segment(seg, allow).unwrap();
                    proptest::prop_assert!(!d.is_empty() && d != "." && d != "..", "{} in {}", seg, p.forward);
                }
                let decoded: Vec<String> = p.forward[1..]
                    .split('/')
                    .map(|s| decode_segment(s, allow).unwrap())
                    .collect();
                proptest::prop_assert_eq!(format!("/{}", decoded.join("/")), p.matched.to_string());
            }
        }
    }
}
