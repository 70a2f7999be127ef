//! Which paths of a `try_files` root name a file, answered without a
//! system call on a request's thread for almost every request.
//!
//! A `try_files` route proxies whatever has no file, so most of its
//! requests (API calls) look for a file that is not there. Instead of a
//! `stat` per request, the index keeps the listings of the directories it
//! has looked into, each for [`FRESH`], read on tokio's blocking pool. A
//! path is walked segment by segment from the root: the first segment that
//! is not a directory ends the walk, so any number of distinct missing
//! paths costs a few hash lookups once the listings on their way are known
//! (`/api/users/1`, `/api/users/2`, ... all stop at the root's listing,
//! which has no `api`).
//!
//! The index only decides whether to try the disk: a file it reports is
//! then opened as a static route opens it (`static_files`, never out of
//! the root), and a file that has gone meanwhile is proxied.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;

/// How long a directory listing is trusted: a file added or removed is
/// seen within this long.
pub const FRESH: Duration = Duration::from_secs(2);

/// Listings kept at most per root; past it they are all dropped (and read
/// again as requests need them).
const MAX_DIRS: usize = 10_000;

/// What a directory entry is, as its listing says (symlinks not followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
    /// A symlink: where it leads is left to the open that follows.
    Link,
    Other,
}

/// A directory's entries; `None`: not a readable directory.
type Listing = Option<Arc<HashMap<Box<OsStr>, Kind>>>;

/// What a request path names under the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// Worth opening: a file, a directory holding `index`, or a symlink.
    Candidate,
    /// Nothing to serve: the request goes to the upstream.
    Absent,
}

#[derive(Debug)]
pub struct FileIndex {
    root: PathBuf,
    /// By directory relative to the root (`""`: the root, `"docs/img"`).
    listings: DashMap<Box<str>, (Instant, Listing)>,
}

impl FileIndex {
    pub fn new(root: &Path) -> Self {
        FileIndex {
            root: root.to_path_buf(),
            listings: DashMap::new(),
        }
    }

    /// Whether `rel` (a normalized request path without its leading `/`,
    /// no dotfile segments) may name something to serve: a file, or a
    /// directory holding `index`.
    pub async fn find(&self, rel: &str, index: &str) -> Found {
        // The directory walked so far is `rel[..dir_end]`: no copy of the
        // path per request.
        let rel = rel.trim_matches('/');
        let mut dir_end = 0;
        while dir_end < rel.len() {
            let start = rel.len() - rel[dir_end..].trim_start_matches('/').len();
            let end = rel[start..].find('/').map_or(rel.len(), |i| start + i);
            let (seg, last) = (&rel[start..end], end == rel.len());
            let Some(entries) = self.listing(&rel[..dir_end]).await else {
                return Found::Absent;
            };
            match entries.get(OsStr::new(seg)) {
                Some(Kind::Dir) => dir_end = end,
                Some(Kind::File | Kind::Link) if last => return Found::Candidate,
                Some(Kind::Link) => return Found::Candidate,
                _ => return Found::Absent,
            }
        }
        let dir = &rel[..dir_end];
        // A directory (the root included): served when it holds `index`
        // (none with `index = false`).
        if index.is_empty() {
            return Found::Absent;
        }
        match self.listing(dir).await {
            Some(entries) => match entries.get(OsStr::new(index)) {
                Some(Kind::File | Kind::Link) => Found::Candidate,
                _ => Found::Absent,
            },
            None => Found::Absent,
        }
    }

    /// The listing of `dir` (relative to the root): from memory while
    /// fresh, else read off the request's thread.
    async fn listing(&self, dir: &str) -> Listing {
        if let Some(entry) = self.listings.get(dir) {
            if entry.0.elapsed() < FRESH {
                return entry.1.clone();
            }
        }
        let path = self.root.join(dir);
        let listing = tokio::task::spawn_blocking(move || read_listing(&path))
            .await
            .unwrap_or(None);
        if self.listings.len() >= MAX_DIRS {
            self.listings.clear();
        }
        self.listings
            .insert(dir.into(), (Instant::now(), listing.clone()));
        listing
    }
}

fn read_listing(path: &Path) -> Listing {
    let entries = std::fs::read_dir(path).ok()?;
    let mut out = HashMap::new();
    for e in entries.flatten() {
        let kind = match e.file_type() {
            Ok(t) if t.is_file() => Kind::File,
            Ok(t) if t.is_dir() => Kind::Dir,
            Ok(t) if t.is_symlink() => Kind::Link,
            _ => Kind::Other,
        };
        out.insert(e.file_name().into_boxed_os_str(), kind);
    }
    Some(Arc::new(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        std::fs::create_dir_all(p.join("assets/js")).unwrap();
        std::fs::create_dir_all(p.join("docs")).unwrap();
        std::fs::create_dir_all(p.join("empty")).unwrap();
        std::fs::write(p.join("assets/js/app.js"), "x").unwrap();
        std::fs::write(p.join("docs/index.html"), "x").unwrap();
        std::fs::write(p.join("robots.txt"), "x").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", p.join("link")).unwrap();
        d
    }

    #[tokio::test]
    async fn files_and_directories_with_an_index_are_candidates() {
        let d = tree();
        let ix = FileIndex::new(d.path());
        for (rel, want) in [
            ("robots.txt", Found::Candidate),
            ("assets/js/app.js", Found::Candidate),
            ("docs", Found::Candidate),
            ("docs/", Found::Candidate),
            ("link", Found::Candidate),
            ("", Found::Absent),
            ("empty/", Found::Absent),
            ("assets/js/missing.js", Found::Absent),
            ("api/users/1", Found::Absent),
            ("robots.txt/x", Found::Absent),
            ("assets", Found::Absent),
        ] {
            assert_eq!(ix.find(rel, "index.html").await, want, "{rel:?}");
        }
    }

    #[tokio::test]
    async fn distinct_missing_paths_read_no_new_listing() {
        let d = tree();
        let ix = FileIndex::new(d.path());
        assert_eq!(ix.find("api/users/1", "index.html").await, Found::Absent);
        let known = ix.listings.len();
        for i in 0..100 {
            let rel = format!("api/users/{i}/posts");
            assert_eq!(ix.find(&rel, "index.html").await, Found::Absent);
        }
        assert_eq!(ix.listings.len(), known, "stopped at the root's listing");
    }

    #[tokio::test]
    async fn a_new_file_is_seen_once_the_listing_is_stale() {
        let d = tree();
        let ix = FileIndex::new(d.path());
        assert_eq!(ix.find("new.txt", "index.html").await, Found::Absent);
        std::fs::write(d.path().join("new.txt"), "x").unwrap();
        assert_eq!(
            ix.find("new.txt", "index.html").await,
            Found::Absent,
            "fresh listing"
        );
        for mut e in ix.listings.iter_mut() {
            e.value_mut().0 -= FRESH;
        }
        assert_eq!(ix.find("new.txt", "index.html").await, Found::Candidate);
    }
}
