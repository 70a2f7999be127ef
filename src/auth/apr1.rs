//! Apache's `$apr1$` password hash (MD5-crypt with its own magic string),
//! the default of `htpasswd -m` and of most htpasswd generators.
//!
//! No maintained crate verifies it on its own (the htpasswd crates pull in
//! unmaintained cryptography), so the algorithm is written here on
//! RustCrypto's `md-5`. It is obsolete and only verified, never produced.

use md5::{Digest, Md5};

const MAGIC: &[u8] = b"$apr1$";
const ITOA64: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// The order the digest's bytes are encoded in, three at a time.
const GROUPS: [(usize, usize, usize); 5] =
    [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)];

/// A parsed `$apr1$salt$checksum`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Apr1 {
    salt: String,
    checksum: String,
}

impl Apr1 {
    /// `None` unless `hash` is `$apr1$` + a salt of 1-8 characters + `$` +
    /// a 22-character checksum.
    pub fn parse(hash: &str) -> Option<Apr1> {
        let rest = hash.strip_prefix("$apr1$")?;
        let (salt, checksum) = rest.split_once('$')?;
        let alphabet = |s: &str| s.bytes().all(|b| ITOA64.contains(&b));
        let ok = (1..=8).contains(&salt.len())
            && alphabet(salt)
            && checksum.len() == 22
            && alphabet(checksum);
        ok.then(|| Apr1 {
            salt: salt.to_string(),
            checksum: checksum.to_string(),
        })
    }

    pub fn verify(&self, password: &[u8]) -> bool {
        let computed = checksum(password, self.salt.as_bytes());
        // Compared without an early exit.
        computed.len() == self.checksum.len()
            && computed
                .bytes()
                .zip(self.checksum.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

/// The 22-character checksum of `password` with `salt`.
fn checksum(password: &[u8], salt: &[u8]) -> String {
    let mut alternate = Md5::new();
    alternate.update(password);
    alternate.update(salt);
    alternate.update(password);
    let alternate = alternate.finalize();

    let mut ctx = Md5::new();
    ctx.update(password);
    ctx.update(MAGIC);
    ctx.update(salt);
    for chunk in password.chunks(16) {
        ctx.update(&alternate[..chunk.len()]);
    }
    let mut i = password.len();
    while i > 0 {
        if i & 1 == 1 {
            ctx.update([0u8]);
        } else {
            ctx.update(&password[..1]);
        }
        i >>= 1;
    }
    let mut digest = ctx.finalize();

    for round in 0..1000 {
        let mut c = Md5::new();
        if round & 1 == 1 {
            c.update(password);
        } else {
            c.update(digest);
        }
        if round % 3 != 0 {
            c.update(salt);
        }
        if round % 7 != 0 {
            c.update(password);
        }
        if round & 1 == 1 {
            c.update(digest);
        } else {
            c.update(password);
        }
        digest = c.finalize();
    }

    let mut out = String::with_capacity(22);
    let mut push = |mut v: u32, n: usize| {
        for _ in 0..n {
            out.push(ITOA64[(v & 0x3f) as usize] as char);
            v >>= 6;
        }
    };
    for (a, b, c) in GROUPS {
        push(
            (u32::from(digest[a]) << 16) | (u32::from(digest[b]) << 8) | u32::from(digest[c]),
            4,
        );
    }
    push(u32::from(digest[11]), 2);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hashes written by `openssl passwd -apr1` and Apache's `htpasswd -m`.
    const KNOWN: [(&str, &str); 4] = [
        ("$apr1$saltsalt$LrttParrLPdxvgutaSXWJ0", "secret"),
        ("$apr1$lZL6V/ci$eIMz/iKDkbtys/uU7LEK00", "password"),
        ("$apr1$mYJd83wW$IO.6aK3G0d4mHxcImhPX50", "foo"),
        ("$apr1$x$tMwYqBfQwi3FYAr0aJc8M/", ""),
    ];

    #[test]
    fn verifies_what_htpasswd_wrote() {
        for (hash, password) in KNOWN {
            let h = Apr1::parse(hash).unwrap_or_else(|| panic!("{hash} parses"));
            assert!(h.verify(password.as_bytes()), "{hash} / {password:?}");
            assert!(!h.verify(b"wrong"), "{hash} accepts a wrong password");
        }
    }

    #[test]
    fn a_long_password_is_hashed_whole() {
        // 40 bytes: the alternate digest is mixed in three times.
        let h = Apr1::parse("$apr1$abcdefgh$xe0/u8PPbW7KZ5ZfwUvgj0").unwrap();
        assert!(h.verify(b"0123456789012345678901234567890123456789"));
        assert!(!h.verify(b"012345678901234567890123456789012345678"));
    }

    #[test]
    fn malformed_hashes_are_refused() {
        for bad in [
            "$apr1$",
            "$apr1$salt",
            "$apr1$123456789$LrttParrLPdxvgutaSXWJ0",
            "$apr1$salt$short",
            "$apr1$sa!t$LrttParrLPdxvgutaSXWJ0",
            "$1$saltsalt$LrttParrLPdxvgutaSXWJ0",
        ] {
            assert_eq!(Apr1::parse(bad), None, "{bad}");
        }
    }
}
