//! `error_pages` (nginx `error_page`): bodies for rampart's own error
//! answers, by status or by class (`"4xx"`, `"5xx"`), read when the
//! configuration loads. A status key beats its class key; the status and
//! headers of the answer stay; upstream errors pass through untouched.

use std::collections::HashMap;

use bytes::Bytes;

/// Which statuses a key covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PageKey {
    Status(u16),
    /// `4` for `"4xx"`, `5` for `"5xx"`.
    Class(u8),
}

impl PageKey {
    /// `"404"`, `"4xx"` or `"5xx"`: error statuses only.
    pub fn parse(s: &str) -> Result<PageKey, String> {
        match s {
            "4xx" => Ok(PageKey::Class(4)),
            "5xx" => Ok(PageKey::Class(5)),
            _ => match s.parse::<u16>() {
                Ok(n @ 400..=599) => Ok(PageKey::Status(n)),
                _ => Err(format!(
                    "error_pages key \"{s}\": expected a status 400-599, \"4xx\" or \"5xx\""
                )),
            },
        }
    }
}

/// A server's pages.
#[derive(Debug, Clone, Default)]
pub struct ErrorPages {
    pages: HashMap<PageKey, Bytes>,
}

impl ErrorPages {
    pub fn new(pages: HashMap<PageKey, Bytes>) -> Self {
        ErrorPages { pages }
    }

    /// The page for `status`, if the server has one.
    pub fn body(&self, status: u16) -> Option<&Bytes> {
        if self.pages.is_empty() {
            return None;
        }
        self.pages
            .get(&PageKey::Status(status))
            .or_else(|| self.pages.get(&PageKey::Class((status / 100) as u8)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_beats_its_class() {
        let p = ErrorPages::new(HashMap::from([
            (PageKey::Status(404), Bytes::from_static(b"nf")),
            (PageKey::Class(4), Bytes::from_static(b"4xx")),
            (PageKey::Class(5), Bytes::from_static(b"5xx")),
        ]));
        assert_eq!(p.body(404).unwrap(), "nf");
        assert_eq!(p.body(403).unwrap(), "4xx");
        assert_eq!(p.body(502).unwrap(), "5xx");
        assert!(p.body(301).is_none());
        assert!(ErrorPages::default().body(404).is_none());
    }

    #[test]
    fn keys_are_error_statuses_or_classes() {
        assert_eq!(PageKey::parse("404"), Ok(PageKey::Status(404)));
        assert_eq!(PageKey::parse("5xx"), Ok(PageKey::Class(5)));
        assert!(PageKey::parse("200").is_err());
        assert!(PageKey::parse("3xx").is_err());
        assert!(PageKey::parse("abc").is_err());
    }
}
