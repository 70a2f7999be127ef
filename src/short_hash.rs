//! Short stable names from content: the first bytes of a SHA-256, in hex.
//! The configuration's identity, the default upgrade socket, the storage
//! folders of ACME certificates and the signatures and keys of shared
//! rate-limit zones are all named this way.

use sha2::{Digest, Sha256};

/// The first `bytes` bytes (at most 32) of `data`'s SHA-256, in hex.
pub fn sha256_hex(data: &[u8], bytes: usize) -> String {
    hex::encode(&Sha256::digest(data)[..bytes.min(32)])
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_prefix_of_the_digest_in_hex() {
        // SHA-256("abc") = ba7816bf 8f01cfea ...
        assert_eq!(super::sha256_hex(b"abc", 4), "ba7816bf");
        assert_eq!(super::sha256_hex(b"abc", 6), "ba7816bf8f01");
        assert_eq!(super::sha256_hex(b"abc", 99).len(), 64);
    }
}
