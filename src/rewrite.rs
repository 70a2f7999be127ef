//! A route's rewrite of the path its upstream receives (nginx's
//! `proxy_pass http://backend/;` under `location /api/`, and `rewrite ...
//! break;`): `rewrite_prefix` replaces the matched prefix of a prefix route,
//! `rewrite` fills a template with a regex route's captures. Both apply to
//! the normalized path (`request_path`), so the upstream never sees a path
//! that routes elsewhere than the one rampart routed on; the query string is
//! kept as received.

use regex::Regex;

/// One piece of a `rewrite` template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Literal(String),
    /// `$0`..`$9`: a capture group of the route's regex.
    Group(usize),
}

/// A route's rewrite, compiled.
#[derive(Debug, Clone)]
pub enum Rewrite {
    /// `rewrite_prefix`: the route's prefix (as matched) becomes `to`.
    Prefix { prefix: String, to: String },
    /// `rewrite`: the path becomes the template, filled from `regex`.
    Regex { regex: Regex, template: Vec<Piece> },
}

/// Why a `rewrite` template is refused (a config error at its position).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("must start with /")]
    NotAbsolute,
    #[error("`${0}` names a group the route's regex does not have (it has {1})")]
    NoSuchGroup(usize, usize),
}

/// Parses a `rewrite` template against the regex whose captures fill it.
pub fn parse_template(text: &str, regex: &Regex) -> Result<Vec<Piece>, TemplateError> {
    if !text.starts_with('/') {
        return Err(TemplateError::NotAbsolute);
    }
    let groups = regex.captures_len() - 1;
    let mut out = Vec::new();
    let mut literal = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let digit = chars.peek().and_then(|d| d.to_digit(10));
        match (c, digit) {
            ('$', Some(n)) => {
                chars.next();
                let n = n as usize;
                if n > groups {
                    return Err(TemplateError::NoSuchGroup(n, groups));
                }
                if !literal.is_empty() {
                    out.push(Piece::Literal(std::mem::take(&mut literal)));
                }
                out.push(Piece::Group(n));
            }
            _ => literal.push(c),
        }
    }
    if !literal.is_empty() {
        out.push(Piece::Literal(literal));
    }
    Ok(out)
}

impl Rewrite {
    /// The path the upstream receives, from the path routed on (`matched`,
    /// percent-decoded) and the path as it would be forwarded (`forward`,
    /// encoding kept). `None` when the route's matcher does not match
    /// `matched` (it always does for the route that was selected).
    pub fn apply(&self, matched: &str, forward: &str) -> Option<String> {
        match self {
            Rewrite::Prefix { prefix, to } => {
                let rest = matched.strip_prefix(prefix.as_str())?;
                let cut = forward_offset(forward, matched.len() - rest.len())?;
                Some(format!("{to}{}", &forward[cut..]))
            }
            Rewrite::Regex { regex, template } => {
                let caps = regex.captures(matched)?;
                let mut out = String::with_capacity(matched.len() + 16);
                for p in template {
                    match p {
                        Piece::Literal(s) => out.push_str(s),
                        Piece::Group(n) => {
                            encode_into(&mut out, caps.get(*n).map_or("", |m| m.as_str()))
                        }
                    }
                }
                Some(out)
            }
        }
    }
}

/// The byte offset in `forward` that corresponds to `matched_len` bytes of
/// the matched path. The two differ only where `forward` has a `%XX` that
/// matching decoded to one byte; `%2F` and `%5C` stay encoded in both.
fn forward_offset(forward: &str, matched_len: usize) -> Option<usize> {
    let b = forward.as_bytes();
    let (mut f, mut m) = (0, 0);
    while m < matched_len {
        if b.get(f) == Some(&b'%') {
            let hex = std::str::from_utf8(b.get(f + 1..f + 3)?).ok()?;
            let d = u8::from_str_radix(hex, 16).ok()?;
            f += 3;
            m += if d == b'/' || d == b'\\' { 3 } else { 1 };
        } else {
            f += 1;
            m += 1;
        }
    }
    (m == matched_len && f <= forward.len()).then_some(f)
}

/// Appends a capture (decoded text) to a path, percent-encoding what a path
/// segment may not hold as is (RFC 3986 `pchar`, and `/`): a capture can
/// never add a query, a fragment or an escape of its own.
fn encode_into(out: &mut String, text: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in text.as_bytes() {
        let safe = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b':'
                    | b'@'
                    | b'/'
            );
        if safe {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 0xf)] as char);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(prefix: &str, to: &str) -> Rewrite {
        Rewrite::Prefix {
            prefix: prefix.into(),
            to: to.into(),
        }
    }

    fn regex(re: &str, template: &str) -> Rewrite {
        let regex = Regex::new(re).unwrap();
        let template = parse_template(template, &regex).unwrap();
        Rewrite::Regex { regex, template }
    }

    #[test]
    fn a_prefix_is_replaced() {
        let r = prefix("/api/", "/");
        assert_eq!(r.apply("/api/users", "/api/users").unwrap(), "/users");
        assert_eq!(r.apply("/api/", "/api/").unwrap(), "/");
        let r = prefix("/api/", "/v1/");
        assert_eq!(r.apply("/api/a/b", "/api/a/b").unwrap(), "/v1/a/b");
        // nginx too: `location /api` with `proxy_pass http://b/;`.
        assert_eq!(
            prefix("/api", "/").apply("/api/x", "/api/x").unwrap(),
            "//x"
        );
        assert!(r.apply("/other", "/other").is_none());
    }

    #[test]
    fn the_rest_keeps_its_encoding_wherever_the_prefix_was_encoded() {
        let r = prefix("/api/", "/v1/");
        // `/%61pi/` matched as `/api/`: the cut is after the encoded prefix.
        assert_eq!(r.apply("/api/a b", "/%61pi/a%20b").unwrap(), "/v1/a%20b");
        // A kept `%2F` (allow_encoded_slashes) is three bytes in both forms.
        let r = prefix("/a%2Fb/", "/");
        assert_eq!(r.apply("/a%2Fb/c", "/a%2Fb/c").unwrap(), "/c");
        let r = prefix("/a%2Fb/", "/");
        assert_eq!(r.apply("/a%2Fb/c", "/%61%2Fb/c").unwrap(), "/c");
    }

    #[test]
    fn a_template_is_filled_from_the_captures() {
        let r = regex("^/u/([0-9]+)$", "/users/$1");
        assert_eq!(r.apply("/u/42", "/u/42").unwrap(), "/users/42");
        let r = regex("^/(a)/(b)$", "/$2/$1/$0");
        assert_eq!(r.apply("/a/b", "/a/b").unwrap(), "/b/a//a/b");
        let r = regex("^/f/(.*)$", "/files/$1");
        // A capture cannot add a query, a fragment or an escape.
        assert_eq!(
            r.apply("/f/a b?c#d%e", "/f/a%20b%3Fc%23d%25e").unwrap(),
            "/files/a%20b%3Fc%23d%25e"
        );
        assert_eq!(r.apply("/f/x/y", "/f/x/y").unwrap(), "/files/x/y");
    }

    #[test]
    fn templates_are_checked_against_the_regex() {
        let re = Regex::new("^/u/([0-9]+)$").unwrap();
        assert_eq!(
            parse_template("users/$1", &re),
            Err(TemplateError::NotAbsolute)
        );
        assert_eq!(
            parse_template("/users/$2", &re),
            Err(TemplateError::NoSuchGroup(2, 1))
        );
        assert_eq!(
            parse_template("/a$1b$", &re).unwrap(),
            vec![
                Piece::Literal("/a".into()),
                Piece::Group(1),
                Piece::Literal("b$".into())
            ]
        );
    }

    proptest::proptest! {
        /// Whatever the request path, a prefix rewrite keeps the rest of
        /// the forwarded path byte for byte.
        #[test]
        fn the_rest_of_the_path_is_forwarded_as_is(
            segs in proptest::collection::vec("[a-z%0-9 ]{0,6}", 0..5),
        ) {
            let raw: String = segs.iter().map(|s| format!("/{}", s.replace(' ', "%20"))).collect();
            let path = format!("/api{raw}");
            if let Ok(p) = crate::request_path::normalize(&path, false) {
                let r = prefix("/api/", "/v1/");
                if let Some(out) = r.apply(&p.matched, &p.forward) {
                    let rest = p.forward.strip_prefix("/api/").unwrap();
                    proptest::prop_assert_eq!(out, format!("/v1/{rest}"));
                }
            }
        }
    }
}
