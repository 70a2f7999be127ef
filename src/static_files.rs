//! Static files (route `static = { root, expires, immutable, index, dotfiles }`).
//!
//! The request path arrives already percent-decoded with `.`/`..`
//! resolved (routing refuses paths that escape `/`); the matched prefix is
//! stripped and the rest opened under `root` with `openat2(RESOLVE_BENEATH)`:
//! the kernel refuses any step out of the root while it resolves the path,
//! symlinks included, so a symlink leading outside is a 404 like a missing
//! file, and one swapped in between a check and the open cannot lead out
//! either (there is no separate check). Absolute symlinks (which the kernel
//! refuses there) are followed, and the descriptor's real path is checked
//! against the root. What is sent is the file that was
//! opened: its size and type come from the open descriptor. Names starting
//! with `.` (`.env`, `.git/`) are a 404 unless `dotfiles = true`;
//! `.well-known` (RFC 8615) is always served. Files are streamed in chunks
//! (constant memory), with validators (`ETag`, `Last-Modified`, 304), single
//! byte ranges (206/416) and precompressed `.br`/`.gz` siblings.

use std::fs::{File, Metadata};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::SystemTime;

use http::header::HeaderValue;
use rustix::fs::{Mode, OFlags, ResolveFlags};

use crate::config::snapshot::Static;

/// Where a request for a static route leads.
#[derive(Debug)]
pub enum Target {
    File(FileInfo),
    /// A directory asked for without its trailing slash.
    AddSlash,
    NotFound,
}

/// Nothing there (no such file, no index in the directory): the route's
/// `fallback` answers, if it has one. A path that is refused (a dotfile, a
/// way out of root) is a [`Target::NotFound`] instead, never this.
struct Absent;

#[derive(Debug)]
pub struct FileInfo {
    /// Open, read from the start.
    pub file: File,
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

/// A name starting with `.` anywhere in the path, `.well-known` aside.
pub fn hidden(rel: &str) -> bool {
    rel.split('/')
        .any(|seg| seg.starts_with('.') && seg != ".well-known")
}

const OPEN: OFlags = OFlags::RDONLY
    .union(OFlags::CLOEXEC)
    .union(OFlags::NOCTTY)
    .union(OFlags::NONBLOCK);

/// Opens `rel` under the directory `root` (at `root_path`) without ever
/// leaving it. Non-blocking, so that a FIFO in the root cannot hold the
/// thread.
fn open_beneath(root: &File, root_path: &Path, rel: &str) -> std::io::Result<(File, Metadata)> {
    let rel = if rel.is_empty() { "." } else { rel };
    let fd = match rustix::fs::openat2(
        root,
        rel,
        OPEN,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
    ) {
        Ok(fd) => fd,
        // An absolute symlink (refused by RESOLVE_BENEATH even when it points
        // inside the root), Linux before 5.6, or a seccomp filter that
        // predates openat2: open by path, then check where the descriptor
        // actually leads (the file opened, not a path looked at before).
        Err(rustix::io::Errno::XDEV | rustix::io::Errno::NOSYS | rustix::io::Errno::PERM) => {
            let fd = rustix::fs::open(root_path.join(rel), OPEN, Mode::empty())?;
            let real = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))?;
            if !real.starts_with(root_path) {
                // Refused, not missing: no fallback for a way out of root.
                return Err(std::io::ErrorKind::PermissionDenied.into());
            }
            fd
        }
        Err(e) => return Err(e.into()),
    };
    let file = File::from(fd);
    let meta = file.metadata()?;
    Ok((file, meta))
}

/// Resolves `path` (normalised request path) for a static route.
/// `accept`: encodings the client accepts, best first (`br`, `gzip`).
pub async fn resolve(st: &Static, path: &str, accept: &[&'static str], ranged: bool) -> Target {
    let rel = path.get(st.strip..).unwrap_or("").trim_start_matches('/');
    if !st.dotfiles && hidden(rel) {
        return Target::NotFound;
    }
    let (root, rel, index) = (st.root.clone(), rel.to_string(), st.index.clone());
    let wants_dir = path.ends_with('/');
    let accept = accept.to_vec();
    let fallback = st.fallback.clone();
    tokio::task::spawn_blocking(move || {
        match resolve_blocking(&root, &rel, &index, wants_dir, &accept, ranged) {
            Ok(t) => t,
            // A single-page app's router answers paths with no file.
            Err(Absent) => match fallback
                .map(|f| resolve_blocking(&root, &f, &index, false, &accept, ranged))
            {
                Some(Ok(Target::File(file))) => Target::File(file),
                _ => Target::NotFound,
            },
        }
    })
    .await
    .unwrap_or(Target::NotFound)
}

/// An open that failed: nothing there (a fallback may answer), or refused.
fn missing_or_refused(e: &std::io::Error) -> Result<Target, Absent> {
    match e.kind() {
        std::io::ErrorKind::NotFound => Err(Absent),
        _ => Ok(Target::NotFound),
    }
}

fn resolve_blocking(
    root: &Path,
    rel: &str,
    index: &str,
    wants_dir: bool,
    accept: &[&'static str],
    ranged: bool,
) -> Result<Target, Absent> {
    let root_path = root;
    let Ok(root) = File::open(root_path) else {
        return Ok(Target::NotFound);
    };
    let open = |rel: &str| open_beneath(&root, root_path, rel);
    let (mut file, mut meta) = match open(rel) {
        Ok(opened) => opened,
        Err(e) => return missing_or_refused(&e),
    };
    let mut name = rel.trim_end_matches('/').to_string();
    if meta.is_dir() {
        if !wants_dir {
            return Ok(Target::AddSlash);
        }
        name = if name.is_empty() {
            index.to_string()
        } else {
            format!("{name}/{index}")
        };
        (file, meta) = match open(&name) {
            Ok(opened) => opened,
            Err(e) => return missing_or_refused(&e),
        };
    }
    if !meta.is_file() {
        return Ok(Target::NotFound);
    }
    let content_type = mime_guess::from_path(&name)
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
            if let Ok((f, m)) = open(&format!("{name}.{ext}")) {
                if m.is_file() {
                    return Ok(Target::File(FileInfo {
                        file: f,
                        len: m.len(),
                        modified: m.modified().ok(),
                        content_type,
                        encoding: Some(enc),
                    }));
                }
            }
        }
    }
    Ok(Target::File(FileInfo {
        len: meta.len(),
        modified: meta.modified().ok(),
        file,
        content_type,
        encoding: None,
    }))
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
