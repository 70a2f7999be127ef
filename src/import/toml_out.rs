//! Writing the translated configuration as commented TOML.
//!
//! The output is written by hand rather than through `toml_edit` because its
//! value is in the comments: each table says which nginx lines it came from,
//! and each directive that could not be carried over sits, as a
//! `# not imported:` line, in the table it belonged to.

use std::fmt::Write as _;

/// `key = value  # comment`
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    /// Already TOML: `"30s"`, `true`, `[...]`, `{ ... }`.
    pub value: String,
    pub comment: Option<String>,
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
    pub fn set(&mut self, key: &str, value: String) {
        self.set_c(key, value, "");
    }

    /// `set` with a trailing comment (none when `comment` is empty).
    pub fn set_c(&mut self, key: &str, value: String, comment: impl Into<String>) {
        let c: String = comment.into();
        let entry = Entry {
            key: key.to_string(),
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

/// `{ a = 1, b = "x" }`
/// A key given twice keeps its last value.
pub fn inline(pairs: &[(&str, String)]) -> String {
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
            .map(|e| e.key.len() + 3 + e.value.len())
            .filter(|w| *w <= 50)
            .max()
            .unwrap_or(0);
        for e in &t.entries {
            let line = format!("{} = {}", e.key, e.value);
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

    #[test]
    fn strings_and_keys_are_valid_toml() {
        assert_eq!(q("a \"b\" \\ c\n"), r#""a \"b\" \\ c\n""#);
        assert_eq!(key("api_limit"), "api_limit");
        assert_eq!(key("my zone"), "\"my zone\"");
        let mut t = Table::new("[x]");
        t.set("s", q("v\"1"));
        t.set_c("l", list(&["a".into(), "b".into()]), "two");
        t.set("i", inline(&[("zone", q("z")), ("burst", "5".into())]));
        t.notes.push("not imported: foo".into());
        let text = render(&[t]);
        let doc: toml_edit::DocumentMut = text.parse().expect(&text);
        assert_eq!(doc["x"]["s"].as_str(), Some("v\"1"));
        assert_eq!(doc["x"]["i"]["burst"].as_integer(), Some(5));
        assert!(text.contains("# not imported: foo\n"));
    }
}
