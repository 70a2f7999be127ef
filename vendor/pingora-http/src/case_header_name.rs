// Copyright 2026 Cloudflare, Inc.
//
// Licensed under the Apache License, Version 2.0 (the "License");
// you may not use this file except in compliance with the License.
// You may obtain a copy of the License at
//
// http://www.apache.org/licenses/LICENSE-2.0
//
// Unless required by applicable law or agreed to in writing, software
// distributed under the License is distributed on an "AS IS" BASIS,
// WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
// See the License for the specific language governing permissions and
// limitations under the License.

use crate::*;
use bytes::Bytes;
use http::header;

#[derive(Debug, Clone)]
pub struct CaseHeaderName(Bytes);

impl CaseHeaderName {
    pub fn new(name: String) -> Self {
        CaseHeaderName(name.into())
    }

    /// rampart patch: a spelling known at compile time, without a copy.
    pub const fn from_static(name: &'static str) -> Self {
        CaseHeaderName(Bytes::from_static(name.as_bytes()))
    }
}

impl CaseHeaderName {
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }

    pub fn from_slice(buf: &[u8]) -> Self {
        CaseHeaderName(Bytes::copy_from_slice(buf))
    }
}

/// A trait that converts into case-sensitive header names.
pub trait IntoCaseHeaderName {
    fn into_case_header_name(self) -> CaseHeaderName;

    /// rampart patch: the map key together with the wire spelling.
    ///
    /// The default parses the key out of the spelling, which for a name
    /// outside the standard set also allocates. Names that already hold a
    /// parsed key ([`HeaderName`], [`WireHeaderName`]) skip that: inserting
    /// a header is on every proxied request's path.
    fn into_header_names(self) -> Result<(HeaderName, CaseHeaderName)>
    where
        Self: Sized,
    {
        let case = self.into_case_header_name();
        let name = HeaderName::from_bytes(case.as_slice())
            .or_err(InvalidHTTPHeader, "invalid header name")?;
        Ok((name, case))
    }
}

/// rampart patch: a header name parsed once, with the spelling it is
/// written in on HTTP/1 (`X-Request-Id` rather than `x-request-id`).
///
/// Inserting one is a reference-count increment at most: no parsing, no
/// copy. Build it once (a `static` for names known at compile time, at
/// config load for configured ones) and insert it by reference.
#[derive(Debug, Clone)]
pub struct WireHeaderName {
    name: HeaderName,
    case: CaseHeaderName,
}

impl WireHeaderName {
    /// `name` must be `spelling` in lowercase (`HeaderName::from_static`
    /// already refuses anything but a valid lowercase name at compile time).
    pub const fn from_static(spelling: &'static str, name: HeaderName) -> Self {
        WireHeaderName {
            name,
            case: CaseHeaderName::from_static(spelling),
        }
    }

    /// A name known only at run time, such as one from a config file.
    pub fn new(spelling: &str) -> Result<Self> {
        let name = HeaderName::from_bytes(spelling.as_bytes())
            .or_err(InvalidHTTPHeader, "invalid header name")?;
        Ok(WireHeaderName {
            name,
            case: CaseHeaderName::from_slice(spelling.as_bytes()),
        })
    }

    /// The map key (lowercase).
    pub fn name(&self) -> &HeaderName {
        &self.name
    }

    /// The spelling written on HTTP/1.
    pub fn spelling(&self) -> &[u8] {
        self.case.as_slice()
    }

    /// [`Self::spelling`] as text (both constructors take text).
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.case.as_slice()).unwrap_or_default()
    }
}

impl IntoCaseHeaderName for &WireHeaderName {
    fn into_case_header_name(self) -> CaseHeaderName {
        self.case.clone()
    }

    fn into_header_names(self) -> Result<(HeaderName, CaseHeaderName)> {
        Ok((self.name.clone(), self.case.clone()))
    }
}

impl IntoCaseHeaderName for CaseHeaderName {
    fn into_case_header_name(self) -> CaseHeaderName {
        self
    }
}

impl IntoCaseHeaderName for String {
    fn into_case_header_name(self) -> CaseHeaderName {
        CaseHeaderName(self.into())
    }
}

impl IntoCaseHeaderName for &'static str {
    fn into_case_header_name(self) -> CaseHeaderName {
        CaseHeaderName(self.into())
    }
}

impl IntoCaseHeaderName for HeaderName {
    fn into_case_header_name(self) -> CaseHeaderName {
        CaseHeaderName(titled_header_name(&self))
    }

    fn into_header_names(self) -> Result<(HeaderName, CaseHeaderName)> {
        let case = CaseHeaderName(titled_header_name(&self));
        Ok((self, case))
    }
}

impl IntoCaseHeaderName for &HeaderName {
    fn into_case_header_name(self) -> CaseHeaderName {
        CaseHeaderName(titled_header_name(self))
    }

    fn into_header_names(self) -> Result<(HeaderName, CaseHeaderName)> {
        Ok((self.clone(), CaseHeaderName(titled_header_name(self))))
    }
}

impl IntoCaseHeaderName for Bytes {
    fn into_case_header_name(self) -> CaseHeaderName {
        CaseHeaderName(self)
    }
}

fn titled_header_name(header_name: &HeaderName) -> Bytes {
    titled_header_name_str(header_name).map_or_else(
        || Bytes::copy_from_slice(header_name.as_str().as_bytes()),
        |s| Bytes::from_static(s.as_bytes()),
    )
}

pub(crate) fn titled_header_name_str(header_name: &HeaderName) -> Option<&'static str> {
    Some(match *header_name {
        header::ACCEPT_RANGES => "Accept-Ranges",
        header::AGE => "Age",
        header::CACHE_CONTROL => "Cache-Control",
        header::CONNECTION => "Connection",
        header::CONTENT_TYPE => "Content-Type",
        header::CONTENT_ENCODING => "Content-Encoding",
        header::CONTENT_LENGTH => "Content-Length",
        header::DATE => "Date",
        header::TRANSFER_ENCODING => "Transfer-Encoding",
        header::HOST => "Host",
        header::SERVER => "Server",
        header::SET_COOKIE => "Set-Cookie",
        // TODO: add more const header here to map to their titled case
        // TODO: automatically upper case the first letter?
        _ => {
            return None;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_case_header_name() {
        assert_eq!("FoO".into_case_header_name().as_slice(), b"FoO");
        assert_eq!("FoO".to_string().into_case_header_name().as_slice(), b"FoO");
        assert_eq!(header::SERVER.into_case_header_name().as_slice(), b"Server");
    }

    #[test]
    fn test_header_names_without_reparsing() {
        static REQUEST_ID: WireHeaderName =
            WireHeaderName::from_static("X-Request-Id", HeaderName::from_static("x-request-id"));
        let (name, case) = (&REQUEST_ID).into_header_names().unwrap();
        assert_eq!(name, "x-request-id");
        assert_eq!(case.as_slice(), b"X-Request-Id");

        let configured = WireHeaderName::new("X-Served-By").unwrap();
        assert_eq!(configured.name(), "x-served-by");
        assert_eq!(configured.spelling(), b"X-Served-By");
        assert_eq!(configured.as_str(), "X-Served-By");
        assert_eq!(REQUEST_ID.as_str(), "X-Request-Id");
        assert!(WireHeaderName::new("bad name").is_err());

        let (name, case) = header::SERVER.into_header_names().unwrap();
        assert_eq!((name.as_str(), case.as_slice()), ("server", &b"Server"[..]));
        let (name, case) = "FoO".into_header_names().unwrap();
        assert_eq!((name.as_str(), case.as_slice()), ("foo", &b"FoO"[..]));
        assert!("bad name".into_header_names().is_err());
    }
}
