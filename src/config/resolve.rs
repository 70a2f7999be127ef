//! What compiling needs from outside the file, gathered in one stage before
//! it: upstream names resolved (once, at load, as nginx does), certificate,
//! key and CA files read, static roots looked at, the default upgrade
//! socket's directory. `compile/` is then a function of the file and a
//! [`Resolved`]: it does no I/O, and reports every problem found here at
//! the position of the value that named it.

use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pingora::protocols::tls::CaType;
use rustls::sign::CertifiedKey;

use super::file::{self, File};
use crate::tls::TlsError;

/// A certificate and key pair: loaded (with seconds left before the
/// certificate expires, if known), or why not.
pub type LoadedCert = Result<(Arc<CertifiedKey>, Option<i64>), CertFault>;

/// Why a certificate pair did not load, and whether the key file is at
/// fault (else the certificate file): the error is shown at its value.
#[derive(Debug, Clone)]
pub struct CertFault {
    pub in_key: bool,
    pub message: String,
}

/// Cheap to clone (certificates and files are shared): a running
/// configuration keeps the world it was compiled against, and a DNS refresh
/// compiles the same file again against it with new addresses.
#[derive(Debug, Default, Clone)]
pub struct Resolved {
    /// `host:port` as written → its addresses (empty: did not resolve).
    addrs: HashMap<String, Vec<SocketAddr>>,
    certs: HashMap<(PathBuf, PathBuf), LoadedCert>,
    cas: HashMap<PathBuf, Result<Arc<CaType>, String>>,
    /// Static roots: the canonical path of each that is a directory now.
    dirs: HashMap<PathBuf, Option<PathBuf>>,
    /// Error pages' and htpasswd files' contents, or why they could not be read.
    files: HashMap<PathBuf, Result<bytes::Bytes, String>>,
    /// The configuration directory, canonical when it can be.
    pub config_dir: PathBuf,
    /// Where sockets go by default (`crate::runtime_dir`).
    pub runtime_dir: PathBuf,
}

/// `p` as written in the file, relative to the file's directory.
pub fn absolute(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

impl Resolved {
    /// Looks up everything `f` names outside itself. `base` is the file's
    /// directory.
    pub fn gather(f: &File, base: &Path) -> Resolved {
        let mut out = Resolved {
            config_dir: std::fs::canonicalize(base).unwrap_or_else(|_| base.to_path_buf()),
            runtime_dir: crate::runtime_dir::default_dir(|k| std::env::var(k).ok()),
            ..Resolved::default()
        };
        for u in &f.upstreams {
            for s in u.servers.iter().filter(|s| !s.addr.v.starts_with("unix:")) {
                out.addrs
                    .entry(s.addr.v.clone())
                    .or_insert_with(|| lookup_all(&s.addr.v));
            }
            if let Some(ca) = &u.tls_ca {
                let p = absolute(base, &ca.v);
                let loaded = crate::tls::load_ca_bundle(&p).map_err(|e| e.to_string());
                out.cas.insert(p, loaded);
            }
        }
        if let Some(ca) = f.acme.as_ref().and_then(|a| a.ca.as_ref()) {
            let p = absolute(base, &ca.v);
            let loaded = crate::tls::load_ca_bundle(&p).map_err(|e| e.to_string());
            out.cas.insert(p, loaded);
        }
        for a in &f.auth {
            if let Some(file) = &a.htpasswd {
                out.read_file(absolute(base, &file.v));
            }
            let service = a
                .forward
                .as_ref()
                .and_then(|u| crate::auth::forward::ServiceUrl::parse(&u.v).ok());
            if let Some(service) = service {
                let key = service.host_port();
                out.addrs.entry(key).or_insert_with_key(|k| lookup_all(k));
            }
        }
        for s in &f.servers {
            if let Some((cert, key)) = s
                .tls
                .as_ref()
                .and_then(|t| Some((t.cert.as_ref()?, t.key.as_ref()?)))
            {
                let pair = (absolute(base, &cert.v), absolute(base, &key.v));
                out.certs
                    .entry(pair)
                    .or_insert_with_key(|(cert, key)| load_cert(cert, key));
            }
            for (_, page) in &s.error_pages {
                out.read_file(absolute(base, &page.v));
            }
            for ro in &s.routes {
                let served = match &ro.action {
                    Some(file::Action::Static(st, _)) => Some(st),
                    _ => ro.try_files.as_ref().map(|(st, _)| st),
                };
                if let Some(st) = served {
                    if let Some(root) = &st.root {
                        let p = absolute(base, &root.v);
                        let dir = p
                            .is_dir()
                            .then(|| std::fs::canonicalize(&p).unwrap_or(p.clone()));
                        out.dirs.insert(p, dir);
                    }
                }
            }
        }
        out
    }

    /// Reads a file the config names (an error page, an htpasswd file).
    fn read_file(&mut self, p: PathBuf) {
        let read = std::fs::read(&p)
            .map(bytes::Bytes::from)
            .map_err(|e| format!("cannot read {}: {e}", p.display()));
        self.files.insert(p, read);
    }

    /// A world in which `name` resolves to `addrs` (compile's tests: no DNS).
    #[cfg(test)]
    pub fn with_addr(mut self, name: &str, addrs: &[SocketAddr]) -> Self {
        self.addrs.insert(name.to_string(), addrs.to_vec());
        self
    }

    /// This world with some names resolving anew (a DNS refresh).
    pub fn with_addrs(&self, fresh: &HashMap<String, Vec<SocketAddr>>) -> Resolved {
        let mut out = self.clone();
        for (name, addrs) in fresh {
            out.addrs.insert(name.clone(), addrs.clone());
        }
        out
    }

    /// Every address of `host:port` as written (one for an IP address,
    /// each a name resolves to); empty when it does not resolve now.
    pub fn addrs(&self, written: &str) -> &[SocketAddr] {
        self.addrs.get(written).map_or(&[], Vec::as_slice)
    }

    /// The first of [`Self::addrs`].
    pub fn addr(&self, written: &str) -> Option<SocketAddr> {
        self.addrs(written).first().copied()
    }

    pub fn cert(&self, cert: &Path, key: &Path) -> LoadedCert {
        self.certs
            .get(&(cert.to_path_buf(), key.to_path_buf()))
            .cloned()
            .unwrap_or_else(|| {
                Err(CertFault {
                    in_key: false,
                    message: "not loaded".into(),
                })
            })
    }

    pub fn ca(&self, path: &Path) -> Result<Arc<CaType>, String> {
        self.cas
            .get(path)
            .cloned()
            .unwrap_or_else(|| Err("not loaded".into()))
    }

    /// A file's contents (an error page, an htpasswd file), read at load.
    pub fn file(&self, path: &Path) -> Result<bytes::Bytes, String> {
        self.files
            .get(path)
            .cloned()
            .unwrap_or_else(|| Err("not read".into()))
    }

    /// A static root's canonical path, if it is a directory now.
    pub fn dir(&self, path: &Path) -> Option<&Path> {
        self.dirs.get(path).and_then(|d| d.as_deref())
    }
}

/// An IP address as written, else every address of the name through the
/// system resolver (`/etc/hosts`, `resolv.conf`), in its order, without
/// repeats; empty when the lookup fails. Blocks: never call it on a
/// request's thread.
pub fn lookup_all(written: &str) -> Vec<SocketAddr> {
    if let Ok(a) = written.parse::<SocketAddr>() {
        return vec![a];
    }
    let mut out: Vec<SocketAddr> = Vec::new();
    for a in written.to_socket_addrs().into_iter().flatten() {
        if !out.contains(&a) {
            out.push(a);
        }
    }
    out
}

/// Whether `host:port` names a host rather than an IP address.
pub fn is_name(written: &str) -> bool {
    !written.starts_with("unix:") && written.parse::<SocketAddr>().is_err()
}

fn load_cert(cert: &Path, key: &Path) -> LoadedCert {
    match crate::tls::load_certified_key(cert, key) {
        Ok(k) => {
            let left = crate::tls::seconds_to_expiry(&k);
            Ok((k, left))
        }
        Err(e) => Err(CertFault {
            in_key: matches!(e, TlsError::ReadKey { .. } | TlsError::NoKey(_)),
            message: e.to_string(),
        }),
    }
}
