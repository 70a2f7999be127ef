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

    /// rampart patch: the map key, and the spelling only where it differs
    /// from the [canonical](canonical_spelling) one, which a head writes
    /// without storing it.
    ///
    /// The default parses the key out of the spelling. Names that already
    /// hold a parsed key ([`HeaderName`], [`WireHeaderName`]) or come
    /// straight from a parsed head ([`ParsedHeaderName`]) skip that:
    /// inserting a header is on every proxied request's path.
    fn into_key_and_spelling(self) -> Result<(HeaderName, Option<CaseHeaderName>)>
    where
        Self: Sized,
    {
        let case = self.into_case_header_name();
        let name = HeaderName::from_bytes(case.as_slice())
            .or_err(InvalidHTTPHeader, "invalid header name")?;
        let case = (!is_canonical(case.as_slice())).then_some(case);
        Ok((name, case))
    }
}

/// rampart patch: names whose usual spelling is not plain Title-Case, found
/// by length (a lookup on every header written): lowercase key, spelling.
const fn spelling_exceptions(len: usize) -> &'static [(&'static str, &'static str)] {
    match len {
        2 => &[("te", "TE")],
        3 => &[("dnt", "DNT")],
        4 => &[("etag", "ETag")],
        9 => &[("x-real-ip", "X-Real-IP")],
        11 => &[("content-md5", "Content-MD5")],
        15 => &[("x-ua-compatible", "X-UA-Compatible")],
        16 => &[
            ("www-authenticate", "WWW-Authenticate"),
            ("x-xss-protection", "X-XSS-Protection"),
        ],
        17 => &[("sec-websocket-key", "Sec-WebSocket-Key")],
        20 => &[("sec-websocket-accept", "Sec-WebSocket-Accept")],
        21 => &[("sec-websocket-version", "Sec-WebSocket-Version")],
        22 => &[
            ("x-dns-prefetch-control", "X-DNS-Prefetch-Control"),
            ("sec-websocket-protocol", "Sec-WebSocket-Protocol"),
        ],
        24 => &[("sec-websocket-extensions", "Sec-WebSocket-Extensions")],
        _ => &[],
    }
}

/// The exception's spelling for a name given in any case.
const fn exception_for(name: &[u8]) -> Option<&'static str> {
    let candidates = spelling_exceptions(name.len());
    let mut e = 0;
    while e < candidates.len() {
        if eq_ignore_case(candidates[e].0.as_bytes(), name) {
            return Some(candidates[e].1);
        }
        e += 1;
    }
    None
}

/// rampart patch: the spelling of a name on HTTP/1 when nothing else was
/// asked for: the [exceptions](spelling_exceptions), else Title-Case
/// (`x-forwarded-for` -> `X-Forwarded-For`). Most clients, servers and
/// configs spell names this way, so a head keeps no spelling map (a second
/// hash map, updated, cloned and dropped with every header) until a name
/// spelled otherwise arrives; from then on every spelling is kept.
pub fn canonical_spelling(key: &str, mut put: impl FnMut(&[u8])) {
    let name = key.as_bytes();
    if name.len() <= SPELLED_MAX {
        return SPELLED.with(|cache| {
            let mut cache = cache.borrow_mut();
            let slot = &mut cache[spelled_slot(name)];
            let len = name.len();
            if slot.ptr != name.as_ptr() as usize
                || slot.len as usize != len
                || slot.name[..len] != *name
            {
                let mut filled = 0;
                spell(key, |part| {
                    slot.spelling[filled..filled + part.len()].copy_from_slice(part);
                    filled += part.len();
                });
                slot.ptr = name.as_ptr() as usize;
                slot.len = len as u8;
                slot.name[..len].copy_from_slice(name);
            }
            put(&slot.spelling[..len])
        });
    }
    spell(key, put)
}

/// rampart patch: names up to this long have their spellings cached.
const SPELLED_MAX: usize = 24;

/// rampart patch: a name's spelling as last computed on this thread, by the
/// name's address: most names written are the same few constants (standard
/// names and a proxy's own `X-Forwarded-*`), spelled once instead of at
/// every write. An entry also holds the name it is for, and is used only
/// when the name matches it byte for byte.
#[derive(Clone, Copy)]
struct Spelled {
    ptr: usize,
    len: u8,
    name: [u8; SPELLED_MAX],
    spelling: [u8; SPELLED_MAX],
}

const SPELLED_SLOTS: usize = 32;

thread_local! {
    static SPELLED: std::cell::RefCell<[Spelled; SPELLED_SLOTS]> = const {
        std::cell::RefCell::new(
            [Spelled { ptr: 0, len: 0, name: [0; SPELLED_MAX], spelling: [0; SPELLED_MAX] };
                SPELLED_SLOTS],
        )
    };
}

#[inline]
fn spelled_slot(name: &[u8]) -> usize {
    let x = (name.as_ptr() as usize as u64) ^ (name.len() as u64) << 59;
    (x.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 59) as usize % SPELLED_SLOTS
}

/// [`canonical_spelling`] computed.
fn spell(key: &str, mut put: impl FnMut(&[u8])) {
    if let Some(spelling) = exception_for(key.as_bytes()) {
        return put(spelling.as_bytes());
    }
    // whole words stored, the piece's length written
    let mut buf = [0u8; 64 + 8];
    let mut after_dash = true;
    for piece in key.as_bytes().chunks(64) {
        for at in (0..piece.len()).step_by(8) {
            let title = title_word(word_at(piece, at), &mut after_dash);
            buf[at..at + 8].copy_from_slice(&title.to_le_bytes());
        }
        put(&buf[..piece.len()]);
    }
}

/// Whether `spelling` is the [canonical](canonical_spelling) spelling of
/// its name (`const`: [`WireHeaderName::from_static`] decides at compile time).
pub const fn is_canonical(spelling: &[u8]) -> bool {
    if let Some(exception) = exception_for(spelling) {
        return bytes_eq(exception.as_bytes(), spelling);
    }
    let mut after_dash = true;
    let mut at = 0;
    while at < spelling.len() {
        let w = word_at(spelling, at);
        if title_word(lower_word(w), &mut after_dash) != w {
            return false;
        }
        at += 8;
    }
    true
}

// Eight name bytes at a time (names are ASCII tokens; a short last word is
// padded with zero bytes, which no step changes).
const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;
const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;

/// The eight bytes of `bytes` from `at`, zero-padded past its end.
#[inline(always)]
const fn word_at(bytes: &[u8], at: usize) -> u64 {
    if at + 8 <= bytes.len() {
        let b = bytes;
        return u64::from_le_bytes([
            b[at],
            b[at + 1],
            b[at + 2],
            b[at + 3],
            b[at + 4],
            b[at + 5],
            b[at + 6],
            b[at + 7],
        ]);
    }
    // rampart patch: a short last word in two overlapping loads, not a byte
    // at a time (the overlap ORs equal bytes into the same places).
    let b = bytes;
    let end = b.len();
    match end.saturating_sub(at) {
        0 => 0,
        1 => b[at] as u64,
        n @ 2..=3 => {
            let lo = u16::from_le_bytes([b[at], b[at + 1]]) as u64;
            let hi = u16::from_le_bytes([b[end - 2], b[end - 1]]) as u64;
            lo | hi << (8 * (n - 2))
        }
        n => {
            let lo = u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as u64;
            let hi = u32::from_le_bytes([b[end - 4], b[end - 3], b[end - 2], b[end - 1]]) as u64;
            lo | hi << (8 * (n - 4))
        }
    }
}

/// 0x80 in each byte of `x` that is zero.
const fn zero_bytes(x: u64) -> u64 {
    !(((x & LOW7).wrapping_add(LOW7)) | x | LOW7)
}

/// 0x80 in each (ASCII) byte of `x` within `lo..=hi`.
const fn in_range(x: u64, lo: u8, hi: u8) -> u64 {
    let at_least_lo = x.wrapping_add(ONES * (0x80 - lo as u64));
    let above_hi = x.wrapping_add(ONES * (0x7f - hi as u64));
    at_least_lo & !above_hi & HIGH
}

const fn lower_word(w: u64) -> u64 {
    w + (in_range(w, b'A', b'Z') >> 2)
}

/// Title-Case of eight lowercase bytes: a letter first or after a `-` is
/// raised. `after_dash` carries "the byte before was a dash (or none)"
/// from word to word.
const fn title_word(lower: u64, after_dash: &mut bool) -> u64 {
    let dashes = zero_bytes(lower ^ (ONES * b'-' as u64));
    let raise = (dashes << 8) | if *after_dash { 0x80 } else { 0 };
    *after_dash = dashes >> 63 != 0;
    lower - ((raise & in_range(lower, b'a', b'z')) >> 2)
}

const fn eq_ignore_case(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i].to_ascii_lowercase() != b[i].to_ascii_lowercase() {
            return false;
        }
        i += 1;
    }
    true
}

const fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The [canonical](canonical_spelling) spelling of `key` as a stored
/// spelling, for a head that has started keeping them.
pub(crate) fn canonical_case(key: &HeaderName) -> CaseHeaderName {
    if let Some(spelling) = exception_for(key.as_str().as_bytes()) {
        return CaseHeaderName::from_static(spelling);
    }
    let mut out = Vec::with_capacity(key.as_str().len());
    canonical_spelling(key.as_str(), |part| out.extend_from_slice(part));
    CaseHeaderName(out.into())
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
    canonical: bool,
}

impl WireHeaderName {
    /// `name` must be `spelling` in lowercase (`HeaderName::from_static`
    /// already refuses anything but a valid lowercase name at compile time).
    pub const fn from_static(spelling: &'static str, name: HeaderName) -> Self {
        WireHeaderName {
            name,
            case: CaseHeaderName::from_static(spelling),
            canonical: is_canonical(spelling.as_bytes()),
        }
    }

    /// A name known only at run time, such as one from a config file.
    pub fn new(spelling: &str) -> Result<Self> {
        let name = HeaderName::from_bytes(spelling.as_bytes())
            .or_err(InvalidHTTPHeader, "invalid header name")?;
        Ok(WireHeaderName {
            name,
            case: CaseHeaderName::from_slice(spelling.as_bytes()),
            canonical: is_canonical(spelling.as_bytes()),
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

    fn into_key_and_spelling(self) -> Result<(HeaderName, Option<CaseHeaderName>)> {
        let case = (!self.canonical).then(|| self.case.clone());
        Ok((self.name.clone(), case))
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
        canonical_case(&self)
    }

    fn into_key_and_spelling(self) -> Result<(HeaderName, Option<CaseHeaderName>)> {
        Ok((self, None))
    }
}

impl IntoCaseHeaderName for &HeaderName {
    fn into_case_header_name(self) -> CaseHeaderName {
        canonical_case(self)
    }

    fn into_key_and_spelling(self) -> Result<(HeaderName, Option<CaseHeaderName>)> {
        Ok((self.clone(), None))
    }
}

impl IntoCaseHeaderName for Bytes {
    fn into_case_header_name(self) -> CaseHeaderName {
        CaseHeaderName(self)
    }

    fn into_key_and_spelling(self) -> Result<(HeaderName, Option<CaseHeaderName>)> {
        let name =
            HeaderName::from_bytes(&self).or_err(InvalidHTTPHeader, "invalid header name")?;
        let case = (!is_canonical(&self)).then_some(CaseHeaderName(self));
        Ok((name, case))
    }
}

/// rampart patch: a name as parsed from a head held in `buf`: the map key
/// is taken from the slice, and `buf` is referenced for the spelling only
/// when it is not canonical (no reference count traffic otherwise).
pub struct ParsedHeaderName<'a> {
    /// The whole head as read.
    pub buf: &'a Bytes,
    /// The name, a slice of `buf`.
    pub name: &'a [u8],
}

impl IntoCaseHeaderName for ParsedHeaderName<'_> {
    fn into_case_header_name(self) -> CaseHeaderName {
        CaseHeaderName(self.buf.slice_ref(self.name))
    }

    fn into_key_and_spelling(self) -> Result<(HeaderName, Option<CaseHeaderName>)> {
        if let Some(key) = common_canonical(self.name) {
            return Ok((key, None));
        }
        let key =
            HeaderName::from_bytes(self.name).or_err(InvalidHTTPHeader, "invalid header name")?;
        let case = (!is_canonical(self.name)).then(|| self.into_case_header_name());
        Ok((key, case))
    }
}

/// rampart patch: the names most heads carry, in their canonical spelling,
/// recognised by one comparison instead of a parse and a spelling check.
fn common_canonical(name: &[u8]) -> Option<HeaderName> {
    Some(match name {
        b"Host" => header::HOST,
        b"Date" => header::DATE,
        b"Vary" => header::VARY,
        b"ETag" => header::ETAG,
        b"Accept" => header::ACCEPT,
        b"Server" => header::SERVER,
        b"Cookie" => header::COOKIE,
        b"Origin" => header::ORIGIN,
        b"Referer" => header::REFERER,
        b"Expires" => header::EXPIRES,
        b"Upgrade" => header::UPGRADE,
        b"Location" => header::LOCATION,
        b"Connection" => header::CONNECTION,
        b"User-Agent" => header::USER_AGENT,
        b"Set-Cookie" => header::SET_COOKIE,
        b"Content-Type" => header::CONTENT_TYPE,
        b"Authorization" => header::AUTHORIZATION,
        b"Cache-Control" => header::CACHE_CONTROL,
        b"Accept-Ranges" => header::ACCEPT_RANGES,
        b"Last-Modified" => header::LAST_MODIFIED,
        b"Content-Length" => header::CONTENT_LENGTH,
        b"Accept-Encoding" => header::ACCEPT_ENCODING,
        b"Accept-Language" => header::ACCEPT_LANGUAGE,
        b"X-Forwarded-For" => header::HeaderName::from_static("x-forwarded-for"),
        b"Content-Encoding" => header::CONTENT_ENCODING,
        b"Transfer-Encoding" => header::TRANSFER_ENCODING,
        _ => return None,
    })
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
        let (name, case) = (&REQUEST_ID).into_key_and_spelling().unwrap();
        assert_eq!(name, "x-request-id");
        assert!(case.is_none(), "canonical: no spelling to keep");
        static REAL_IP: WireHeaderName =
            WireHeaderName::from_static("X-Real-Ip", HeaderName::from_static("x-real-ip"));
        let (name, case) = (&REAL_IP).into_key_and_spelling().unwrap();
        assert_eq!(name, "x-real-ip");
        assert_eq!(case.unwrap().as_slice(), b"X-Real-Ip");

        let configured = WireHeaderName::new("X-Served-By").unwrap();
        assert_eq!(configured.name(), "x-served-by");
        assert_eq!(configured.spelling(), b"X-Served-By");
        assert_eq!(configured.as_str(), "X-Served-By");
        assert_eq!(REQUEST_ID.as_str(), "X-Request-Id");
        assert!(WireHeaderName::new("bad name").is_err());

        let (name, case) = header::SERVER.into_key_and_spelling().unwrap();
        assert_eq!(name.as_str(), "server");
        assert!(case.is_none());
        let (name, case) = "FoO".into_key_and_spelling().unwrap();
        assert_eq!(name.as_str(), "foo");
        assert_eq!(case.unwrap().as_slice(), b"FoO");
        assert!("bad name".into_key_and_spelling().is_err());
    }

    /// The spelling rule written the slow, obvious way.
    fn naive_canonical(key: &str) -> String {
        for len in 0..=64 {
            for (k, spelling) in spelling_exceptions(len) {
                if k.eq_ignore_ascii_case(key) {
                    return spelling.to_string();
                }
            }
        }
        let mut out = String::new();
        let mut upper = true;
        for c in key.chars() {
            out.push(if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            });
            upper = c == '-';
        }
        out
    }

    fn canonical(key: &str) -> String {
        let mut out = Vec::new();
        canonical_spelling(key, |part| out.extend_from_slice(part));
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn common_names_are_canonical_and_parse_to_their_keys() {
        for spelling in [
            "Host",
            "Date",
            "Vary",
            "ETag",
            "Accept",
            "Server",
            "Cookie",
            "Origin",
            "Referer",
            "Expires",
            "Upgrade",
            "Location",
            "Connection",
            "User-Agent",
            "Set-Cookie",
            "Content-Type",
            "Authorization",
            "Cache-Control",
            "Accept-Ranges",
            "Last-Modified",
            "Content-Length",
            "Accept-Encoding",
            "Accept-Language",
            "X-Forwarded-For",
            "Content-Encoding",
            "Transfer-Encoding",
        ] {
            let key = common_canonical(spelling.as_bytes()).expect(spelling);
            assert_eq!(key, HeaderName::from_bytes(spelling.as_bytes()).unwrap());
            assert!(is_canonical(spelling.as_bytes()), "{spelling}");
        }
        assert!(common_canonical(b"host").is_none());
        assert!(common_canonical(b"X-Custom").is_none());
    }

    /// rampart patch: cached spellings are the computed ones, for names at
    /// the same address with new contents too.
    #[test]
    fn cached_spellings_follow_the_name() {
        let mut buf = *b"x-forwarded-for\0\0\0\0\0\0\0\0\0";
        for round in 0..3 {
            for len in 0..buf.len() {
                let key = std::str::from_utf8(&buf[..len]).unwrap();
                assert_eq!(
                    canonical(key),
                    naive_canonical(key),
                    "{key:?} round {round}"
                );
            }
            // same address, other name
            buf[..12].copy_from_slice(b"content-type");
        }
        for (key, spelling) in [("etag", "ETag"), ("x-real-ip", "X-Real-IP"), ("te", "TE")] {
            for _ in 0..2 {
                assert_eq!(canonical(key), spelling);
            }
        }
        let long = "x-a-name-longer-than-the-cache-holds";
        assert_eq!(canonical(long), naive_canonical(long));
    }

    /// rampart patch: the two-load tail of `word_at`.
    #[test]
    fn word_at_reads_short_tails_as_zero_padded_words() {
        let bytes: Vec<u8> = (1..=40).collect();
        for len in 0..=bytes.len() {
            for at in (0..len).step_by(8) {
                let mut naive = 0u64;
                for (i, &b) in bytes[at..len.min(at + 8)].iter().enumerate() {
                    naive |= (b as u64) << (8 * i);
                }
                assert_eq!(word_at(&bytes[..len], at), naive, "len {len} at {at}");
            }
        }
    }

    #[test]
    fn canonical_spellings() {
        for (key, spelling) in [
            ("host", "Host"),
            ("x-forwarded-for", "X-Forwarded-For"),
            ("te", "TE"),
            ("etag", "ETag"),
            ("x-real-ip", "X-Real-IP"),
            ("x-request-id", "X-Request-Id"),
            ("x-xss-protection", "X-XSS-Protection"),
            ("sec-websocket-key", "Sec-WebSocket-Key"),
            ("abcdefg-hij", "Abcdefg-Hij"), // dash ends the first word
            ("abcdefgh-ij", "Abcdefgh-Ij"), // dash starts the second
            ("x-1a--b", "X-1a--B"),
            ("", ""),
        ] {
            assert_eq!(canonical(key), spelling, "{key}");
            assert!(is_canonical(spelling.as_bytes()), "{spelling}");
        }
        let long = "a-".repeat(70);
        assert_eq!(canonical(&long), naive_canonical(&long));
        assert!(!is_canonical(b"x-request-ID"));
        assert!(!is_canonical(b"Etag"));
        assert!(!is_canonical(b"host"));
        assert!(!is_canonical(b"HOST"));
        assert!(!is_canonical(b"X-forwarded-For"));
    }

    #[test]
    fn word_at_a_time_matches_the_naive_rule() {
        // Every name of up to 6 bytes over a small alphabet, and longer
        // pseudo-random ones (all lengths around the 8-byte words).
        let alphabet = b"aZ-1e";
        let mut names: Vec<Vec<u8>> = vec![vec![]];
        let mut frontier = names.clone();
        for _ in 0..6 {
            frontier = frontier
                .iter()
                .flat_map(|n| alphabet.iter().map(move |&c| [n.as_slice(), &[c]].concat()))
                .collect();
            names.extend(frontier.iter().cloned());
        }
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for len in 7..90 {
            for _ in 0..40 {
                let name = (0..len)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        b"abcXYZ-09-"[(seed % 10) as usize]
                    })
                    .collect();
                names.push(name);
            }
        }
        names.push(b"TE".to_vec());
        names.push(b"te".to_vec());
        names.push(b"Sec-Websocket-Key".to_vec());
        for name in names {
            let text = std::str::from_utf8(&name).unwrap();
            let expected = naive_canonical(text);
            assert_eq!(is_canonical(&name), expected == text, "{text}");
            let lower = text.to_ascii_lowercase();
            assert_eq!(canonical(&lower), expected, "{text}");
        }
    }
}
