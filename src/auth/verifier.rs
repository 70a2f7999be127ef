//! Checking Basic credentials against an htpasswd file without blocking a
//! worker thread: bcrypt costs milliseconds by design, so verification
//! runs on tokio's blocking pool, a few at a time, and credentials that
//! verified are remembered briefly so a browser's every request does not
//! pay for it again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use super::basic;
use super::htpasswd::Users;

/// How long verified credentials are trusted without verifying again. A
/// user removed from the file is locked out by a reload (which starts a
/// new verifier) or after this long.
const REMEMBER: Duration = Duration::from_secs(60);

/// At most this many remembered credentials per `[auth.*]` table.
const MAX_REMEMBERED: usize = 4096;

#[derive(Debug)]
pub struct Verifier {
    /// SHA-256 of an `Authorization` value that verified, and when.
    verified: DashMap<[u8; 32], Instant>,
    /// Verifications running at once: a flood of wrong passwords queues
    /// here instead of taking every blocking thread.
    running: Semaphore,
}

impl Default for Verifier {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Verifier {
            verified: DashMap::new(),
            running: Semaphore::new(cores.max(2)),
        }
    }
}

impl Verifier {
    /// Whether the `Authorization` header value `authorization` holds
    /// credentials of one of `users`.
    pub async fn check(&self, users: &Arc<Users>, authorization: &[u8]) -> bool {
        let key: [u8; 32] = Sha256::digest(authorization).into();
        if self
            .verified
            .get(&key)
            .is_some_and(|at| at.elapsed() < REMEMBER)
        {
            return true;
        }
        let Some(credentials) = basic::parse(authorization) else {
            return false;
        };
        let Ok(_permit) = self.running.acquire().await else {
            return false;
        };
        let users = users.clone();
        let ok = tokio::task::spawn_blocking(move || {
            users.verify(&credentials.user, &credentials.password)
        })
        .await
        .unwrap_or(false);
        if ok {
            self.remember(key);
        }
        ok
    }

    fn remember(&self, key: [u8; 32]) {
        if self.verified.len() >= MAX_REMEMBERED {
            self.verified.retain(|_, at| at.elapsed() < REMEMBER);
            if self.verified.len() >= MAX_REMEMBERED {
                self.verified.clear();
            }
        }
        self.verified.insert(key, Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> Arc<Users> {
        // ann / secret
        Arc::new(
            super::super::htpasswd::parse("ann:$apr1$saltsalt$LrttParrLPdxvgutaSXWJ0\n").unwrap(),
        )
    }

    #[tokio::test]
    async fn right_credentials_pass_and_are_remembered() {
        let v = Verifier::default();
        let header = b"Basic YW5uOnNlY3JldA=="; // ann:secret
        assert!(v.check(&users(), header).await);
        assert_eq!(v.verified.len(), 1);
        // Remembered: passes even against a file that no longer has ann.
        assert!(v.check(&Arc::new(Users::default()), header).await);
    }

    #[tokio::test]
    async fn wrong_or_malformed_credentials_fail_and_are_not_remembered() {
        let v = Verifier::default();
        for header in [&b"Basic YW5uOndyb25n"[..], b"Basic bob", b"Bearer x", b""] {
            assert!(!v.check(&users(), header).await, "{header:?}");
        }
        assert!(v.verified.is_empty());
    }

    #[test]
    fn the_memory_is_bounded() {
        let v = Verifier::default();
        for i in 0..(MAX_REMEMBERED + 10) {
            let key: [u8; 32] = Sha256::digest(i.to_le_bytes()).into();
            v.remember(key);
        }
        assert!(v.verified.len() <= MAX_REMEMBERED);
    }
}
