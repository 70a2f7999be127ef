//! The ACME storage directory: the account credentials and each server's
//! certificate and key, written so that a crash never leaves half a file
//! (write to a temporary file, then rename) and readable by the owner only.
//!
//! ```text
//! storage/            0700
//!   lock              held while a process orders (several may share storage)
//!   accounts/<directory hash>.json
//!   certs/<first host>-<hosts hash>/cert.pem, key.pem
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A short stable name for `s`.
fn hash8(s: &str) -> String {
    crate::short_hash::sha256_hex(s.as_bytes(), 4)
}

#[derive(Debug, Clone)]
pub struct Storage {
    root: PathBuf,
}

impl Storage {
    /// The directory, created with mode 0700 (and set to it if it exists
    /// with more: it holds private keys).
    pub fn open(root: &Path) -> std::io::Result<Storage> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)?;
        let mode = fs::metadata(root)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            fs::set_permissions(root, fs::Permissions::from_mode(0o700))?;
        }
        Ok(Storage {
            root: root.to_path_buf(),
        })
    }

    fn account_path(&self, directory: &str) -> PathBuf {
        self.root
            .join("accounts")
            .join(format!("{}.json", hash8(directory)))
    }

    /// The certificate directory of a server with these hosts (a changed
    /// host list is a new certificate).
    fn cert_dir(&self, hosts: &[String]) -> PathBuf {
        let mut sorted = hosts.to_vec();
        sorted.sort();
        let first = sorted.first().map(String::as_str).unwrap_or("none");
        self.root
            .join("certs")
            .join(format!("{first}-{}", hash8(&sorted.join(","))))
    }

    pub fn read_account(&self, directory: &str) -> Option<String> {
        fs::read_to_string(self.account_path(directory)).ok()
    }

    pub fn write_account(&self, directory: &str, json: &str) -> std::io::Result<()> {
        write_atomic(&self.account_path(directory), json.as_bytes())
    }

    pub fn forget_account(&self, directory: &str) -> std::io::Result<()> {
        match fs::remove_file(self.account_path(directory)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// The stored certificate chain and key (PEM) for `hosts`.
    pub fn read_cert(&self, hosts: &[String]) -> Option<(Vec<u8>, Vec<u8>)> {
        let dir = self.cert_dir(hosts);
        Some((
            fs::read(dir.join("cert.pem")).ok()?,
            fs::read(dir.join("key.pem")).ok()?,
        ))
    }

    /// Stores a chain and key: the key first, so that a reader never finds
    /// a new certificate next to an old key for longer than a rename.
    pub fn write_cert(&self, hosts: &[String], chain: &[u8], key: &[u8]) -> std::io::Result<()> {
        let dir = self.cert_dir(hosts);
        write_atomic(&dir.join("key.pem"), key)?;
        write_atomic(&dir.join("cert.pem"), chain)
    }

    /// Takes the storage's lock, waiting up to `wait` for another process
    /// to release it. Released when the returned guard is dropped.
    pub fn lock(&self, wait: Duration) -> std::io::Result<Option<Lock>> {
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(self.root.join("lock"))?;
        let deadline = Instant::now() + wait;
        loop {
            match rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => return Ok(Some(Lock(f))),
                Err(rustix::io::Errno::WOULDBLOCK) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(rustix::io::Errno::WOULDBLOCK) => return Ok(None),
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// The storage lock; unlocked when dropped (closing the file releases it).
#[derive(Debug)]
pub struct Lock(#[allow(dead_code)] File);

/// Writes `bytes` to `path` (mode 0600) through a temporary file in the
/// same directory, synced, then renamed over it.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::other("no parent directory"))?;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, path)?;
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_private_and_replaced_whole() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("acme");
        let s = Storage::open(&root).unwrap();
        assert_eq!(
            fs::metadata(&root).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let hosts = vec!["b.test".to_string(), "a.test".to_string()];
        assert!(s.read_cert(&hosts).is_none());
        s.write_cert(&hosts, b"chain 1", b"key 1").unwrap();
        s.write_cert(&hosts, b"chain 2", b"key 2").unwrap();
        assert_eq!(
            s.read_cert(&hosts).unwrap(),
            (b"chain 2".to_vec(), b"key 2".to_vec())
        );
        // Another order of the same hosts is the same certificate; other
        // hosts are another.
        let same = vec!["a.test".to_string(), "b.test".to_string()];
        assert_eq!(s.cert_dir(&hosts), s.cert_dir(&same));
        assert_eq!(s.read_cert(&same).unwrap().0, b"chain 2".to_vec());
        assert!(s.read_cert(&["c.test".to_string()]).is_none());
        let dir = s.cert_dir(&hosts);
        for f in ["cert.pem", "key.pem"] {
            let mode = fs::metadata(dir.join(f)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{f}");
        }
        // No temporary file left behind.
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 2);
        s.write_account("https://ca/dir", "{}").unwrap();
        assert_eq!(s.read_account("https://ca/dir").as_deref(), Some("{}"));
        assert!(s.read_account("https://other/dir").is_none());
    }

    #[test]
    fn the_lock_is_exclusive_between_holders() {
        let tmp = tempfile::tempdir().unwrap();
        let s = Storage::open(tmp.path()).unwrap();
        let held = s.lock(Duration::ZERO).unwrap();
        assert!(held.is_some());
        // flock locks belong to the open file: a second open is refused.
        assert!(s.lock(Duration::from_millis(150)).unwrap().is_none());
        drop(held);
        assert!(s.lock(Duration::ZERO).unwrap().is_some());
    }

    #[test]
    fn a_storage_directory_open_to_others_is_closed() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("acme");
        fs::create_dir(&root).unwrap();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
        Storage::open(&root).unwrap();
        assert_eq!(
            fs::metadata(&root).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }
}
