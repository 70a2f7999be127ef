//! Writing the translated configuration as commented TOML.
//!
//! The output is written by hand rather than through `toml_edit` because its
//! value is in the comments: each table says which nginx lines it came from,
//! and each directive that could not be carried over sits, as a
//! `# not imported:` line, in the table it belonged to.

use std::fmt::Write as _;

use crate::config::keys::Key;

/// `key = value  # comment`
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: EntryKey,
    /// Already TOML: `"30s"`, `true`, `[...]`, `{ ... }`.
    pub value: String,
    pub comment: Option<String>,
}

/// An entry's key: one the configuration reader reads (`config::keys`),
/// or, in a table that is a map (`[servers.response_headers]`), the user's
/// own (already quoted when it has to be).
#[derive(Debug, Clone, PartialEq)]
pub enum EntryKey {
    Schema(Key),
    Map(String),
}

impl EntryKey {
    fn as_str(&self) -> &str {
        match self {
            EntryKey::Schema(k) => k.name(),
            EntryKey::Map(s) => s,
        }
    }
}

impl PartialEq<Key> for EntryKey {
    fn eq(&self, other: &Key) -> bool {
        *self == EntryKey::Schema(*other)
    }
}

/// One `[table]` or `[[array]]` with the comments around it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    /// Comment lines above the header (without `# `).
    pub lead: Vec<String>,
    /// `[upstreams.backend]`, `[[servers]]`; empty for the top of the file.
    pub header: String,
    pub entries: Vec<Entry>,
    /// Comment lines after the entries (`not imported: ...`).
    pub notes: Vec<String>,
}

impl Table {
    pub fn new(header: impl Into<String>) -> Table {
        Table {
            header: header.into(),
            ..Table::default()
        }
    }

    /// Sets `key`, replacing an earlier value (a key twice is invalid TOML;
    /// in nginx the later directive wins).
    pub fn set(&mut self, key: Key, value: String) {
        self.set_c(key, value, "");
    }

    /// `set` with a trailing comment (none when `comment` is empty).
    pub fn set_c(&mut self, key: Key, value: String, comment: impl Into<String>) {
        self.put(EntryKey::Schema(key), value, comment.into());
    }

    /// An entry of a map table (`[servers.response_headers]`): `name` is
    /// the user's key, quoted when it has to be.
    pub fn set_map_c(&mut self, name: String, value: String, comment: impl Into<String>) {
        self.put(EntryKey::Map(name), value, comment.into());
    }

    fn put(&mut self, key: EntryKey, value: String, c: String) {
        let entry = Entry {
            key,
            value,
            comment: (!c.is_empty()).then_some(c),
        };
        match self.entries.iter_mut().find(|e| e.key == entry.key) {
            Some(e) => *e = entry,
            None => self.entries.push(entry),
        }
    }
}

/// A TOML basic string.
pub fn q(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A key, quoted only when it has to be.
pub fn key(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        s.to_string()
    } else {
        q(s)
    }
}

/// `["a", "b"]`, wrapped when long.
pub fn list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| q(s)).collect();
    let one = format!("[{}]", quoted.join(", "));
    if one.len() <= 76 {
        return one;
    }
    let mut out = String::from("[\n");
    for item in quoted {
        let _ = writeln!(out, "  {item},");
    }
    out.push(']');
    out
}

/// `{ a = 1, b = "x" }` of keys the configuration reader reads.
/// A key given twice keeps its last value.
pub fn inline(pairs: &[(Key, String)]) -> String {
    let named: Vec<(&str, String)> = pairs.iter().map(|(k, v)| (k.name(), v.clone())).collect();
    inline_map(&named)
}

/// `{ "X-Header" = "v", ... }`: an inline table whose keys are the user's
/// (header names, statuses), written as given (already quoted).
/// A key given twice keeps its last value.
pub fn inline_map(pairs: &[(&str, String)]) -> String {
    let body: Vec<String> = pairs
        .iter()
        .enumerate()
        .filter(|(i, (k, _))| !pairs[i + 1..].iter().any(|(later, _)| later == k))
        .map(|(_, (k, v))| format!("{k} = {v}"))
        .collect();
    format!("{{ {} }}", body.join(", "))
}

/// Comment text with control characters (which TOML forbids in comments)
/// spelled out: they can come from the nginx file.
fn clean(s: &str) -> std::borrow::Cow<'_, str> {
    if s.chars().any(|c| c.is_control() && c != '\t') {
        s.chars()
            .map(|c| {
                if c.is_control() && c != '\t' {
                    c.escape_unicode().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect::<String>()
            .into()
    } else {
        s.into()
    }
}

fn comment_lines(out: &mut String, lines: &[String]) {
    for l in lines {
        for part in l.split('\n') {
            if part.is_empty() {
                out.push_str("#\n");
            } else {
                let _ = writeln!(out, "# {}", clean(part));
            }
        }
    }
}

/// Renders the tables in order, a blank line between them.
pub fn render(tables: &[Table]) -> String {
    let mut out = String::new();
    for (i, t) in tables.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        comment_lines(&mut out, &t.lead);
        if !t.header.is_empty() {
            out.push_str(&t.header);
            out.push('\n');
        }
        let width = t
            .entries
            .iter()
            .filter(|e| e.comment.is_some() && !e.value.contains('\n'))
            .map(|e| e.key.as_str().len() + 3 + e.value.len())
            .filter(|w| *w <= 50)
            .max()
            .unwrap_or(0);
        for e in &t.entries {
            let line = format!("{} = {}", e.key.as_str(), e.value);
            match &e.comment {
                Some(c) if !line.contains('\n') => {
                    let _ = writeln!(out, "{line:<width$}  # {}", clean(c));
                }
                Some(c) => {
                    comment_lines(&mut out, std::slice::from_ref(c));
                    let _ = writeln!(out, "{line}");
                }
                None => {
                    let _ = writeln!(out, "{line}");
                }
            }
        }
        comment_lines(&mut out, &t.notes);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::keys as k;

    #[test]
    fn strings_and_keys_are_valid_toml() {
        assert_eq!(q("a \"b\" \\ c\n"), r#""a \"b\" \\ c\n""#);
        assert_eq!(key("api_limit"), "api_limit");
        assert_eq!(key("my zone"), "\"my zone\"");
        let mut t = Table::new("[x]");
        t.set(k::NAME, q("v\"1"));
        t.set_c(k::HOSTS, list(&["a".into(), "b".into()]), "two");
        t.set(
            k::RATE_LIMIT,
            inline(&[(k::ZONE, q("z")), (k::BURST, "5".into())]),
        );
        t.set_map_c(key("X-Header"), q("v"), "");
        t.notes.push("not imported: foo".into());
        let text = render(&[t]);
        let doc: toml_edit::DocumentMut = text.parse().expect(&text);
        assert_eq!(doc["x"]["name"].as_str(), Some("v\"1"));
        assert_eq!(doc["x"]["rate_limit"]["burst"].as_integer(), Some(5));
        assert_eq!(doc["x"]["X-Header"].as_str(), Some("v"));
        assert!(text.contains("# not imported: foo\n"));
    }
}
