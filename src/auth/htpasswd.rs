//! htpasswd files: `user:hash` lines, as Apache's `htpasswd` (and the
//! generators deployment guides use) write them. Read once at load; a line
//! rampart cannot verify is a config error, never a user who can silently
//! never log in.

use std::collections::HashMap;

use super::apr1::Apr1;

/// The users of one htpasswd file.
#[derive(Debug, Default)]
pub struct Users {
    by_name: HashMap<String, PasswordHash>,
}

/// A stored hash in one of the formats rampart verifies.
#[derive(Debug)]
enum PasswordHash {
    /// `$2y$`, `$2b$`, `$2a$` (`htpasswd -B`).
    Bcrypt(String),
    /// `$5$` (SHA-256-crypt).
    Sha256Crypt(String),
    /// `$6$` (SHA-512-crypt).
    Sha512Crypt(String),
    /// `$apr1$` (`htpasswd -m`, long the default).
    Apr1(Apr1),
}

/// Why a line of an htpasswd file was refused, by its 1-based number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct LineError {
    pub line: usize,
    pub reason: String,
}

/// Reads an htpasswd file's text. Blank lines and `#` comments are skipped.
pub fn parse(text: &str) -> Result<Users, LineError> {
    let mut users = Users::default();
    let mut first_line: HashMap<String, usize> = HashMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let entry = raw.trim_end();
        if entry.trim_start().is_empty() || entry.trim_start().starts_with('#') {
            continue;
        }
        let err = |reason: String| LineError { line, reason };
        let Some((user, hash)) = entry.split_once(':') else {
            return Err(err("expected `user:hash`".into()));
        };
        if user.is_empty() {
            return Err(err("empty user name".into()));
        }
        let hash = read_hash(hash).map_err(err)?;
        if let Some(first) = first_line.insert(user.to_string(), line) {
            return Err(err(format!("user \"{user}\" is already on line {first}")));
        }
        users.by_name.insert(user.to_string(), hash);
    }
    Ok(users)
}

fn read_hash(hash: &str) -> Result<PasswordHash, String> {
    let refuse = |what: &str| {
        Err(format!(
            "{what}: rampart verifies bcrypt ($2y$, `htpasswd -B`), SHA-crypt ($5$, $6$) and apr1 ($apr1$, `htpasswd -m`)"
        ))
    };
    if hash.starts_with("$2y$") || hash.starts_with("$2b$") || hash.starts_with("$2a$") {
        return match hash.parse::<bcrypt::HashParts>() {
            Ok(_) => Ok(PasswordHash::Bcrypt(hash.to_string())),
            Err(e) => Err(format!("malformed bcrypt hash ({e})")),
        };
    }
    if hash.starts_with("$apr1$") {
        return Apr1::parse(hash)
            .map(PasswordHash::Apr1)
            .ok_or_else(|| "malformed apr1 hash".to_string());
    }
    for (prefix, checksum_len, make) in [
        (
            "$5$",
            43,
            PasswordHash::Sha256Crypt as fn(String) -> PasswordHash,
        ),
        ("$6$", 86, PasswordHash::Sha512Crypt),
    ] {
        if let Some(rest) = hash.strip_prefix(prefix) {
            return match sha_crypt_well_formed(rest, checksum_len) {
                true => Ok(make(hash.to_string())),
                false => Err(format!("malformed SHA-crypt hash ({prefix})")),
            };
        }
    }
    if hash.starts_with("{SHA}") {
        return refuse("unsalted {SHA} hash (`htpasswd -s`)");
    }
    if hash.starts_with('$') {
        return refuse("unsupported hash format");
    }
    refuse("plain-text or DES-crypt password")
}

/// `[rounds=N$]salt$checksum` after `$5$` / `$6$`.
fn sha_crypt_well_formed(rest: &str, checksum_len: usize) -> bool {
    let parts: Vec<&str> = rest.split('$').collect();
    let (rounds, salt, checksum) = match parts.as_slice() {
        [salt, checksum] => (None, *salt, *checksum),
        [rounds, salt, checksum] => (Some(*rounds), *salt, *checksum),
        _ => return false,
    };
    let rounds_ok = rounds.is_none_or(|r| {
        r.strip_prefix("rounds=")
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|n| n <= 999_999_999)
    });
    let alphabet = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/')
    };
    rounds_ok
        && salt.len() <= 16
        && !salt.contains(':')
        && checksum.len() == checksum_len
        && alphabet(checksum)
}

impl Users {
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// Whether `password` is `user`'s. Slow on purpose (bcrypt costs
    /// milliseconds): never call it on a request's worker thread. An
    /// unknown user costs as much as a known one (a hash of the file is
    /// checked and the answer thrown away), so that timing does not tell
    /// which user names exist.
    pub fn verify(&self, user: &str, password: &[u8]) -> bool {
        match self.by_name.get(user) {
            Some(hash) => hash.verify(password),
            None => {
                if let Some(any) = self.by_name.values().next() {
                    let _ = any.verify(password);
                }
                false
            }
        }
    }
}

impl PasswordHash {
    fn verify(&self, password: &[u8]) -> bool {
        match self {
            PasswordHash::Bcrypt(h) => bcrypt::verify(password, h).unwrap_or(false),
            PasswordHash::Apr1(h) => h.verify(password),
            PasswordHash::Sha256Crypt(h) => {
                std::str::from_utf8(password).is_ok_and(|p| sha_crypt::sha256_check(p, h).is_ok())
            }
            PasswordHash::Sha512Crypt(h) => {
                std::str::from_utf8(password).is_ok_and(|p| sha_crypt::sha512_check(p, h).is_ok())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The OpenBSD bcrypt test vector, and SHA-crypt hashes written by
    /// `openssl passwd -5` / `-6`.
    const BCRYPT_U: &str = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";
    const SHA256_SECRET: &str = "$5$saltsalt$0IyaXrmV7.sGNS6tirgqHLqX/G.FBvgkYA.lpPdS5sA";
    const SHA512_PW: &str = "$6$rounds=1000$abc$yxe0KSjmoHd8rpohJgwvF5lnIQ/9t.klcz24a1cca3nWm.PLUmhXgcGgKWCoRFHRHYxXj4SVEtjCnCAwaFY0V0";

    #[test]
    fn every_supported_format_verifies() {
        let bcrypt_2y = bcrypt::hash_with_result("hunter2", 4)
            .unwrap()
            .format_for_version(bcrypt::Version::TwoY);
        let text = format!(
            "# admins\n\nann:{BCRYPT_U}\nbob:{SHA256_SECRET}\ncat:{SHA512_PW}\r\ndan:$apr1$saltsalt$LrttParrLPdxvgutaSXWJ0\neve:{bcrypt_2y}\n"
        );
        let users = parse(&text).unwrap();
        assert_eq!(users.len(), 5);
        for (user, password) in [
            ("ann", "U*U"),
            ("bob", "secret"),
            ("cat", "pw"),
            ("dan", "secret"),
            ("eve", "hunter2"),
        ] {
            assert!(users.verify(user, password.as_bytes()), "{user}");
            assert!(
                !users.verify(user, b"wrong"),
                "{user} with a wrong password"
            );
        }
        assert!(!users.verify("nobody", b"secret"));
        assert!(!users.verify("bob", &[0xff, 0xfe]));
    }

    #[test]
    fn a_line_rampart_cannot_verify_is_an_error_at_its_number() {
        for (text, line, says) in [
            ("ann\n", 1, "expected `user:hash`"),
            ("# c\n:$apr1$saltsalt$LrttParrLPdxvgutaSXWJ0\n", 2, "empty user name"),
            ("ann:plain\n", 1, "plain-text"),
            ("\n\nann:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n", 3, "{SHA}"),
            ("ann:$2y$05$short\n", 1, "malformed bcrypt"),
            ("ann:$5$salt$tooshort\n", 1, "malformed SHA-crypt"),
            ("ann:$apr1$salt$x\n", 1, "malformed apr1"),
            ("ann:$1$saltsalt$abc\n", 1, "unsupported"),
            (
                "ann:$apr1$saltsalt$LrttParrLPdxvgutaSXWJ0\nann:$apr1$saltsalt$LrttParrLPdxvgutaSXWJ0\n",
                2,
                "already on line 1",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.reason.contains(says), "{text:?}: {e}");
        }
    }
}
