//! A typed walk over the `toml_edit` document that keeps every position.
//!
//! serde's derive stops at the first problem and loses spans of values that
//! fail later checks; walking the span-preserving document by hand lets us
//! report *all* problems — unknown keys, wrong types, bad values — each at
//! the exact key or value that caused it.

use std::time::Duration;

use toml_edit::{Item, TableLike, Value};

use super::diag::{Collector, Span};
use super::values::{self, Rate};

/// A value together with where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    pub v: T,
    pub span: Span,
}

impl<T> Spanned<T> {
    pub fn new(v: T, span: Span) -> Self {
        Spanned { v, span }
    }
}

/// Looks up an environment variable for `${VAR}` interpolation.
pub type EnvLookup<'s> = Box<dyn Fn(&str) -> Option<String> + 's>;

/// The reading context: source diagnostics and environment lookup.
pub struct Reader<'s> {
    pub diag: Collector<'s>,
    env: EnvLookup<'s>,
}

/// A TOML table being read: records which keys were asked for, so the
/// rest can be reported as unknown.
pub struct Section<'d> {
    tbl: &'d dyn TableLike,
    pub span: Span,
    pub path: String,
    known: Vec<&'static str>,
}

/// One present key of a table.
pub struct Field<'d> {
    pub item: &'d Item,
    pub key_span: Span,
    pub span: Span,
    pub path: String,
}

fn item_span(item: &Item) -> Option<Span> {
    match item {
        Item::Value(v) => v.span(),
        Item::Table(t) => t.span(),
        Item::ArrayOfTables(a) => a.span(),
        Item::None => None,
    }
}

fn type_name(item: &Item) -> &'static str {
    match item {
        Item::None => "nothing",
        Item::Table(_) => "a table",
        Item::ArrayOfTables(_) => "an array of tables",
        Item::Value(v) => match v {
            Value::String(_) => "a string",
            Value::Integer(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Boolean(_) => "a boolean",
            Value::Datetime(_) => "a datetime",
            Value::Array(_) => "an array",
            Value::InlineTable(_) => "a table",
        },
    }
}

impl<'d> Section<'d> {
    pub fn new(tbl: &'d dyn TableLike, span: Span, path: String) -> Self {
        Section {
            tbl,
            span,
            path,
            known: Vec::new(),
        }
    }

    fn child_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{}", self.path, key)
        }
    }

    /// The field `key`, if present; marks `key` as known either way.
    pub fn get(&mut self, key: crate::config::keys::Key) -> Option<Field<'d>> {
        let key = key.name();
        self.known.push(key);
        let (k, item) = self.tbl.get_key_value(key)?;
        let key_span = k.span().unwrap_or_else(|| self.span.clone());
        let span = item_span(item).unwrap_or_else(|| key_span.clone());
        Some(Field {
            item,
            key_span,
            span,
            path: self.child_path(key),
        })
    }

    /// The underlying table, for sections whose keys are user-chosen names.
    pub fn tbl_ref(&self) -> &'d dyn TableLike {
        self.tbl
    }

    pub fn has(&self, key: &str) -> bool {
        self.tbl.contains_key(key)
    }

    /// Reports every key that no `get` asked for, with a suggestion when a
    /// known key is one or two edits away.
    pub fn finish(self, r: &mut Reader<'_>) {
        for (key, _) in self.tbl.iter() {
            if self.known.contains(&key) {
                continue;
            }
            let span = self
                .tbl
                .get_key_value(key)
                .and_then(|(k, _)| k.span())
                .unwrap_or_else(|| self.span.clone());
            let where_ = if self.path.is_empty() {
                "at the top level".to_string()
            } else {
                format!("in `{}`", self.path)
            };
            let hint = self
                .known
                .iter()
                .filter(|k| edit_distance(k, key) <= 2)
                .min_by_key(|k| edit_distance(k, key))
                .map(|k| format!(" (did you mean `{k}`?)"))
                .unwrap_or_default();
            r.diag
                .error(&span, format!("unknown key `{key}` {where_}{hint}"));
        }
    }
}

impl<'s> Reader<'s> {
    pub fn new(src: &'s str, env: impl Fn(&str) -> Option<String> + 's) -> Self {
        Reader {
            diag: Collector::new(src),
            env: Box::new(env),
        }
    }

    fn wrong_type(&mut self, f: &Field<'_>, expected: &str) {
        let msg = format!(
            "`{}` must be {expected}, found {}",
            f.path,
            type_name(f.item)
        );
        self.diag.error(&f.span, msg);
    }

    /// A table (`[x]` or inline `{ ... }`).
    pub fn table<'d>(&mut self, f: &Field<'d>) -> Option<Section<'d>> {
        match f.item {
            Item::Table(t) => Some(Section::new(t, f.span.clone(), f.path.clone())),
            Item::Value(Value::InlineTable(t)) => {
                Some(Section::new(t, f.span.clone(), f.path.clone()))
            }
            _ => {
                self.wrong_type(f, "a table");
                None
            }
        }
    }

    /// `[[x]]` entries, or an inline array of tables.
    pub fn tables<'d>(&mut self, f: &Field<'d>) -> Vec<Section<'d>> {
        match f.item {
            Item::ArrayOfTables(a) => a
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let span = t.span().unwrap_or_else(|| f.span.clone());
                    Section::new(t, span, format!("{}[{i}]", f.path))
                })
                .collect(),
            Item::Value(Value::Array(a)) => {
                let mut out = Vec::new();
                for (i, v) in a.iter().enumerate() {
                    let span = v.span().unwrap_or_else(|| f.span.clone());
                    match v {
                        Value::InlineTable(t) => {
                            out.push(Section::new(t, span, format!("{}[{i}]", f.path)))
                        }
                        _ => self
                            .diag
                            .error(&span, format!("`{}[{i}]` must be a table", f.path)),
                    }
                }
                out
            }
            _ => {
                self.wrong_type(f, "an array of tables");
                Vec::new()
            }
        }
    }

    /// A string with `${VAR}` interpolation applied.
    pub fn string(&mut self, f: &Field<'_>) -> Option<Spanned<String>> {
        match f.item.as_str() {
            Some(s) => self.interp(s, &f.span),
            None => {
                self.wrong_type(f, "a string");
                None
            }
        }
    }

    fn interp(&mut self, s: &str, span: &Span) -> Option<Spanned<String>> {
        match values::interpolate(s, &*self.env) {
            Ok(v) => Some(Spanned::new(v, span.clone())),
            Err(e) => {
                self.diag.error(span, e.to_string());
                None
            }
        }
    }

    pub fn bool(&mut self, f: &Field<'_>) -> Option<bool> {
        match f.item.as_bool() {
            Some(b) => Some(b),
            None => {
                self.wrong_type(f, "true or false");
                None
            }
        }
    }

    /// A boolean with its position, for keys whose value can be an error.
    pub fn bool_at(&mut self, f: &Field<'_>) -> Option<Spanned<bool>> {
        self.bool(f).map(|b| Spanned::new(b, f.span.clone()))
    }

    /// [`Self::uint`] with the value's position, for compile-stage errors.
    pub fn uint_at(&mut self, f: &Field<'_>, max: u64) -> Option<Spanned<u64>> {
        self.uint(f, max).map(|v| Spanned::new(v, f.span.clone()))
    }

    /// [`Self::duration`] with the value's position.
    pub fn duration_at(&mut self, f: &Field<'_>) -> Option<Spanned<Duration>> {
        self.duration(f).map(|d| Spanned::new(d, f.span.clone()))
    }

    /// [`Self::size`] with the value's position.
    pub fn size_at(&mut self, f: &Field<'_>) -> Option<Spanned<u64>> {
        self.size(f).map(|v| Spanned::new(v, f.span.clone()))
    }

    /// A non-negative integer within `max`.
    pub fn uint(&mut self, f: &Field<'_>, max: u64) -> Option<u64> {
        match f.item.as_integer() {
            Some(i) if i >= 0 && (i as u64) <= max => Some(i as u64),
            Some(i) => {
                self.diag.error(
                    &f.span,
                    format!("`{}` must be between 0 and {max}, found {i}", f.path),
                );
                None
            }
            None => {
                self.wrong_type(f, "an integer");
                None
            }
        }
    }

    /// A list of strings (a single string is accepted as a list of one).
    pub fn strings(&mut self, f: &Field<'_>) -> Option<Vec<Spanned<String>>> {
        if f.item.as_str().is_some() {
            return self.string(f).map(|s| vec![s]);
        }
        let Some(arr) = f.item.as_array() else {
            self.wrong_type(f, "a list of strings");
            return None;
        };
        let mut out = Vec::with_capacity(arr.len());
        for (i, v) in arr.iter().enumerate() {
            let span = v.span().unwrap_or_else(|| f.span.clone());
            match v.as_str() {
                Some(s) => {
                    if let Some(s) = self.interp(s, &span) {
                        out.push(s)
                    }
                }
                None => self
                    .diag
                    .error(&span, format!("`{}[{i}]` must be a string", f.path)),
            }
        }
        Some(out)
    }

    /// A duration string, or a bare integer of seconds.
    pub fn duration(&mut self, f: &Field<'_>) -> Option<Duration> {
        if let Some(i) = f.item.as_integer() {
            if i >= 0 {
                return Some(Duration::from_secs(i as u64));
            }
        }
        let s = if f.item.is_integer() {
            f.item.as_integer().map(|i| i.to_string())
        } else {
            Some(self.string(f)?.v)
        };
        let s = s?;
        match values::parse_duration(&s) {
            Ok(d) => Some(d),
            Err(e) => {
                self.diag.error(&f.span, format!("`{}`: {e}", f.path));
                None
            }
        }
    }

    /// A size string, or a bare integer of bytes.
    pub fn size(&mut self, f: &Field<'_>) -> Option<u64> {
        if let Some(i) = f.item.as_integer() {
            if i >= 0 {
                return Some(i as u64);
            }
        }
        let s = if f.item.is_integer() {
            f.item.as_integer().map(|i| i.to_string())
        } else {
            Some(self.string(f)?.v)
        };
        match values::parse_size(&s?) {
            Ok(n) => Some(n),
            Err(e) => {
                self.diag.error(&f.span, format!("`{}`: {e}", f.path));
                None
            }
        }
    }

    pub fn rate(&mut self, f: &Field<'_>) -> Option<Rate> {
        let s = self.string(f)?;
        match values::parse_rate(&s.v) {
            Ok(r) => Some(r),
            Err(e) => {
                self.diag.error(&f.span, format!("`{}`: {e}", f.path));
                None
            }
        }
    }

    /// A table of string → string (header maps).
    pub fn string_map(&mut self, f: &Field<'_>) -> Vec<(Spanned<String>, Spanned<String>)> {
        let Some(obj) = self.table(f) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, item) in obj.tbl.iter() {
            let key_span = obj
                .tbl
                .get_key_value(k)
                .and_then(|(k, _)| k.span())
                .unwrap_or_else(|| f.span.clone());
            let span = item_span(item).unwrap_or_else(|| key_span.clone());
            let field = Field {
                item,
                key_span: key_span.clone(),
                span,
                path: format!("{}.\"{k}\"", f.path),
            };
            if let Some(v) = self.string(&field) {
                out.push((Spanned::new(k.to_string(), key_span), v));
            }
        }
        out
    }

    /// Reports a required key that is missing from `obj`.
    pub fn missing(&mut self, obj: &Section<'_>, key: crate::config::keys::Key) {
        let at = if obj.path.is_empty() {
            String::new()
        } else {
            format!(" in `{}`", obj.path)
        };
        self.diag
            .error(&obj.span, format!("missing required key `{key}`{at}"));
    }
}

/// Levenshtein distance for "did you mean" hints on short key names.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::edit_distance;

    #[test]
    fn distance() {
        assert_eq!(edit_distance("burst", "brust"), 2);
        assert_eq!(edit_distance("nodelay", "nodelay"), 0);
        assert_eq!(edit_distance("rate", "rates"), 1);
    }
}
