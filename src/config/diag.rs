//! Diagnostics: every problem found in a config file, with its position.
//!
//! Validation never stops at the first problem: an operator fixing a file
//! wants the whole list at once, as `FILE:LINE:COL: error: MESSAGE` lines
//! that editors and CI logs turn into links.

use std::fmt;
use std::ops::Range;

/// A byte range into the config source.
pub type Span = Range<usize>;

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub col: usize,
    pub message: String,
}

/// Every problem of one file, ready to print.
#[derive(Debug, Clone, thiserror::Error)]
pub struct Diagnostics {
    pub file: String,
    pub items: Vec<Diagnostic>,
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.items.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(
                f,
                "{}:{}:{}: error: {}",
                self.file, d.line, d.col, d.message
            )?;
        }
        Ok(())
    }
}

/// Collects diagnostics while a file is read, mapping byte offsets to
/// line/column once per problem (never on the success path).
pub struct Collector<'s> {
    src: &'s str,
    items: Vec<Diagnostic>,
}

impl<'s> Collector<'s> {
    pub fn new(src: &'s str) -> Self {
        Collector {
            src,
            items: Vec::new(),
        }
    }

    pub fn error(&mut self, span: &Span, message: impl Into<String>) {
        let (line, col) = line_col(self.src, span.start);
        self.items.push(Diagnostic {
            line,
            col,
            message: message.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn into_diagnostics(mut self, file: &str) -> Diagnostics {
        self.items.sort_by_key(|d| (d.line, d.col));
        self.items.dedup();
        Diagnostics {
            file: file.to_string(),
            items: self.items,
        }
    }
}

/// 1-based line and character column of a byte offset.
pub fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(src.len());
    let before = src.get(..offset).unwrap_or(src);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one_in_characters() {
        let src = "a = 1\nbé = 2\n";
        assert_eq!(line_col(src, 0), (1, 1));
        assert_eq!(line_col(src, 6), (2, 1));
        // 'é' is two bytes but one column
        assert_eq!(line_col(src, 9), (2, 3));
    }

    #[test]
    fn display_prints_one_line_per_problem_sorted() {
        let src = "x\ny\n";
        let mut c = Collector::new(src);
        c.error(&(2..3), "second");
        c.error(&(0..1), "first");
        let d = c.into_diagnostics("f.toml");
        assert_eq!(
            d.to_string(),
            "f.toml:1:1: error: first\nf.toml:2:1: error: second"
        );
    }
}
