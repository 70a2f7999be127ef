//! Where the upgrade socket lives, and the check that nobody else can put
//! one there.
//!
//! On SIGUSR2 rampart hands its listening sockets to whatever process
//! listens on `global.upgrade_sock`. A path another local user can create
//! first (a fixed name in a shared `/tmp`) would hand that user every
//! listening socket. So the socket lives in a directory only rampart's user
//! can write: systemd's `$RUNTIME_DIRECTORY`, the user's `$XDG_RUNTIME_DIR`,
//! or else a `rampart-<uid>` directory of the temporary directory, created
//! 0700 (not the pid file's directory: often a shared `/tmp`). At start, a directory that others
//! could write to (or that another user owns) is refused.

use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

/// The default directory for the upgrade socket (see the module doc).
pub fn default_dir(env: impl Fn(&str) -> Option<String>) -> PathBuf {
    let set = |k: &str| env(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    set("RUNTIME_DIRECTORY")
        .or_else(|| set("XDG_RUNTIME_DIR").map(|d| d.join("rampart")))
        .unwrap_or_else(|| {
            std::env::temp_dir().join(format!("rampart-{}", rustix::process::geteuid().as_raw()))
        })
}

/// Why the socket's directory is refused.
#[derive(Debug, thiserror::Error)]
pub enum UnsafeDir {
    #[error("cannot create {0}: {1}")]
    Create(PathBuf, std::io::Error),
    #[error("cannot inspect {0}: {1}")]
    Inspect(PathBuf, std::io::Error),
    #[error("{0} is owned by uid {1}, not by rampart's user (uid {2}): another user could take over the listening sockets on upgrade")]
    Owner(PathBuf, u32, u32),
    #[error("{0} can be written by other users (mode {1:o}): one of them could take over the listening sockets on upgrade; use chmod go-w, or another upgrade_sock")]
    Writable(PathBuf, u32),
}

/// Makes sure the directory of `sock` exists (created 0700 when missing),
/// belongs to this user (or root) and is writable by nobody else.
pub fn ensure_private_parent(sock: &Path) -> Result<(), UnsafeDir> {
    let dir = sock
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| UnsafeDir::Create(dir.to_path_buf(), e))?;
    }
    // Not following a symlink for the last step: the directory itself.
    let meta =
        std::fs::symlink_metadata(dir).map_err(|e| UnsafeDir::Inspect(dir.to_path_buf(), e))?;
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me && meta.uid() != 0 {
        return Err(UnsafeDir::Owner(dir.to_path_buf(), meta.uid(), me));
    }
    // Others (or the group) may not write, unless the sticky bit keeps them
    // from replacing what is not theirs (but then they may still create the
    // name first: refused as well).
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 || !meta.is_dir() {
        return Err(UnsafeDir::Writable(dir.to_path_buf(), mode));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn default_dir_prefers_systemd_then_xdg_then_a_private_temp_dir() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            default_dir(env(&[
                ("RUNTIME_DIRECTORY", "/run/rampart"),
                ("XDG_RUNTIME_DIR", "/run/user/1")
            ])),
            Path::new("/run/rampart")
        );
        assert_eq!(
            default_dir(env(&[("XDG_RUNTIME_DIR", "/run/user/1")])),
            Path::new("/run/user/1/rampart")
        );
        let tmp = default_dir(env(&[]));
        assert!(tmp.starts_with(std::env::temp_dir()));
        assert!(tmp
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("rampart-"));
    }

    #[test]
    fn only_a_private_directory_is_accepted() {
        let base = tempfile::tempdir().unwrap();
        let fresh = base.path().join("new/sub");
        ensure_private_parent(&fresh.join("u.sock")).unwrap();
        let mode = std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "created private");
        let shared = base.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let err = ensure_private_parent(&shared.join("u.sock")).unwrap_err();
        assert!(
            err.to_string().contains("can be written by other users"),
            "{err}"
        );
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
        ensure_private_parent(&shared.join("u.sock")).unwrap();
    }
}
