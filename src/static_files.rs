//! Static files (route `static = { root, expires, immutable, index }`).
//!
//! The request path arrives already percent-decoded with `.`/`..`
//! resolved (routing refuses paths that escape `/`); the matched prefix is
//! stripped and the rest joined to `root`. The joined path is then
//! canonicalised and must still lie under the canonical root, so a symlink
//! that leads outside is a 404 like a missing file. Files are streamed in
//! chunks (constant memory), with validators (`ETag`, `Last-Modified`, 304),
//! single byte ranges (206/416) and precompressed `.br`/`.gz` siblings.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use http::header::HeaderValue;

use crate::config::snapshot::Static;

/// Where a request for a static route leads.
#[derive(Debug)]
pub enum Target {
    File(FileInfo),
    /// A directory asked for without its trailing slash.
    AddSlash,
    NotFound,
}

#[derive(Debug)]
pub struct FileInfo {
    pub path: PathBuf,
    pub len: u64,
    pub modified: Option<SystemTime>,
    pub content_type: HeaderValue,
    /// `Some("br")` / `Some("gzip")` when a precompressed sibling is served.
    pub encoding: Option<&'static str>,
}

impl FileInfo {
    /// nginx-style `"<mtime hex>-<len hex>"` (of the file as sent).
    pub fn etag(&self) -> String {
        let secs = self
            .modified
            .and_then(|m| m.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map(|d| d.as_secs())
            .unwrap_or(0);
        match self.encoding {
            None => format!("\"{secs:x}-{:x}\"", self.len),
            Some(e) => format!("\"{secs:x}-{:x}-{e}\"", self.len),
        }
    }
}

fn inside(root: &Path, p: &Path) -> bool {
    p.starts_with(root)
}

/// Resolves `path` (normalised request path) for a static route.
/// `accept`: encodings the client accepts, best first (`br`, `gzip`).
pub async fn resolve(st: &Static, path: &str, accept: &[&'static str], ranged: bool) -> Target {
    let rel = path.get(st.strip..).unwrap_or("").trim_start_matches('/');
    let joined = st.root.join(rel);
    let Ok(real) = tokio::fs::canonicalize(&joined).await else {
        return Target::NotFound;
    };
    if !inside(&st.root, &real) {
        return Target::NotFound;
    }
    let Ok(meta) = tokio::fs::metadata(&real).await else {
        return Target::NotFound;
    };
    let file = if meta.is_dir() {
        if !path.ends_with('/') {
            return Target::AddSlash;
        }
        let index = real.join(&st.index);
        match tokio::fs::canonicalize(&index).await {
            Ok(i) if inside(&st.root, &i) => i,
            _ => return Target::NotFound,
        }
    } else {
        real
    };
    let Ok(meta) = tokio::fs::metadata(&file).await else {
        return Target::NotFound;
    };
    if !meta.is_file() {
        return Target::NotFound;
    }
    let content_type = mime_guess::from_path(&file)
        .first_raw()
        .map(|m| {
            if m.starts_with("text/") || m == "application/javascript" || m == "application/json" {
                HeaderValue::from_str(&format!("{m}; charset=utf-8"))
                    .unwrap_or(HeaderValue::from_static("text/plain"))
            } else {
                HeaderValue::from_static(m)
            }
        })
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    // A precompressed sibling, when the client takes it (not for ranges).
    if !ranged {
        for enc in accept {
            let ext = if *enc == "br" { "br" } else { "gz" };
            let mut name = file.clone().into_os_string();
            name.push(format!(".{ext}"));
            let sibling = PathBuf::from(name);
            if let (Ok(real), Ok(m)) = (
                tokio::fs::canonicalize(&sibling).await,
                tokio::fs::metadata(&sibling).await,
            ) {
                if inside(&st.root, &real) && m.is_file() {
                    return Target::File(FileInfo {
                        path: real,
                        len: m.len(),
                        modified: m.modified().ok(),
                        content_type,
                        encoding: Some(enc),
                    });
                }
            }
        }
    }
    Target::File(FileInfo {
        path: file,
        len: meta.len(),
        modified: meta.modified().ok(),
        content_type,
        encoding: None,
    })
}

/// The encodings of precompressed files the client accepts, best first.
pub fn accepted_encodings(accept_encoding: Option<&str>) -> Vec<&'static str> {
    let Some(ae) = accept_encoding else {
        return Vec::new();
    };
    let mut out: Vec<(&'static str, f32)> = Vec::new();
    for part in ae.split(',') {
        let mut it = part.split(';');
        let name = it.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = it
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let enc = match name.as_str() {
            "br" => "br",
            "gzip" => "gzip",
            _ => continue,
        };
        if q > 0.0 {
            out.push((enc, q));
        }
    }
    // Prefer br on equal q.
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then((a.0 != "br").cmp(&(b.0 != "br"))));
    out.into_iter().map(|(e, _)| e).collect()
}

/// A single byte range of a `len`-byte file: `Ok(None)` = whole file,
/// `Err(())` = not satisfiable (416). Multiple ranges get the whole file.
#[allow(clippy::result_unit_err)]
pub fn parse_range(range: Option<&str>, len: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = range.and_then(|r| r.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or(())?;
    let (a, b) = (a.trim(), b.trim());
    let (start, end) = if a.is_empty() {
        // Suffix: the last b bytes.
        let n: u64 = b.parse().map_err(|_| ())?;
        if n == 0 {
            return Err(());
        }
        (len.saturating_sub(n), len.saturating_sub(1))
    } else {
        let start: u64 = a.parse().map_err(|_| ())?;
        let end = if b.is_empty() {
            len.saturating_sub(1)
        } else {
            b.parse::<u64>().map_err(|_| ())?.min(len.saturating_sub(1))
        };
        (start, end)
    };
    if len == 0 || start >= len || start > end {
        return Err(());
    }
    Ok(Some((start, end)))
}

/// Whether a conditional request can be answered 304.
pub fn not_modified(
    if_none_match: Option<&str>,
    if_modified_since: Option<&str>,
    etag: &str,
    modified: Option<SystemTime>,
) -> bool {
    if let Some(inm) = if_none_match {
        return inm.split(',').any(|t| {
            let t = t.trim();
            t == "*" || t == etag || t.strip_prefix("W/") == Some(etag)
        });
    }
    match (
        if_modified_since.and_then(|s| httpdate::parse_http_date(s).ok()),
        modified,
    ) {
        (Some(since), Some(m)) => {
            let m_secs = m
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let s_secs = since
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            m_secs <= s_secs
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 100), Ok(None));
        assert_eq!(parse_range(Some("bytes=0-9"), 100), Ok(Some((0, 9))));
        assert_eq!(parse_range(Some("bytes=90-"), 100), Ok(Some((90, 99))));
        assert_eq!(parse_range(Some("bytes=-10"), 100), Ok(Some((90, 99))));
        assert_eq!(parse_range(Some("bytes=95-200"), 100), Ok(Some((95, 99))));
        assert_eq!(parse_range(Some("bytes=100-"), 100), Err(()));
        assert_eq!(parse_range(Some("bytes=5-2"), 100), Err(()));
        assert_eq!(parse_range(Some("bytes=x-"), 100), Err(()));
        assert_eq!(parse_range(Some("bytes=0-1,5-6"), 100), Ok(None));
    }

    #[test]
    fn encodings() {
        assert_eq!(
            accepted_encodings(Some("gzip, deflate, br")),
            vec!["br", "gzip"]
        );
        assert_eq!(
            accepted_encodings(Some("gzip;q=1, br;q=0.5")),
            vec!["gzip", "br"]
        );
        assert_eq!(accepted_encodings(Some("br;q=0, gzip")), vec!["gzip"]);
        assert!(accepted_encodings(None).is_empty());
    }

    #[test]
    fn conditionals() {
        let m = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        assert!(not_modified(Some("\"a\", \"b\""), None, "\"b\"", Some(m)));
        assert!(
            !not_modified(
                Some("\"a\""),
                Some("Sun, 06 Nov 2094 08:49:37 GMT"),
                "\"b\"",
                Some(m)
            ),
            "ETag wins"
        );
        assert!(not_modified(
            None,
            Some(&httpdate::fmt_http_date(m)),
            "\"b\"",
            Some(m)
        ));
        assert!(!not_modified(
            None,
            Some("Sun, 06 Nov 1994 08:49:37 GMT"),
            "\"b\"",
            Some(m)
        ));
    }
}
