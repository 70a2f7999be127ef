//! `Authorization: Basic` credentials (RFC 7617).

use base64::Engine;

/// A user name and password as the client sent them.
#[derive(Debug, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: Vec<u8>,
}

/// The credentials of an `Authorization` header value, `None` when it is
/// not well-formed Basic (another scheme, bad base64, no `:`).
pub fn parse(value: &[u8]) -> Option<Credentials> {
    let value = std::str::from_utf8(value).ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token.trim_start())
        .ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    let user = String::from_utf8(decoded[..colon].to_vec()).ok()?;
    Some(Credentials {
        user,
        password: decoded[colon + 1..].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_basic_credentials() {
        // "ann:pa:ss" — a password may hold a colon, a user may not.
        let c = parse(b"Basic YW5uOnBhOnNz").unwrap();
        assert_eq!(c.user, "ann");
        assert_eq!(c.password, b"pa:ss");
        assert_eq!(parse(b"basic   YW5uOnBhOnNz").unwrap().user, "ann");
        assert_eq!(parse(b"Basic Ong=").unwrap().user, "");
    }

    #[test]
    fn anything_else_is_no_credentials() {
        for bad in [
            &b"Bearer abc"[..],
            b"Basic",
            b"Basic !!!",
            b"Basic YW5u",
            b"BasicYW5uOnBhOnNz",
            b"Basic \xff",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
