//! Names both places of a table or key defined twice.
//!
//! The TOML parser reports only the second definition ("invalid table
//! header, duplicate key `u` in table `upstreams`"), which leaves the reader
//! searching a long file for the first. This scans the lines before the
//! error for the first definition of the same dotted path: a `[table]`
//! header, an `[[array]]` header, or a `key = value` line (dotted keys
//! included) inside a table.

use toml_edit::Key;

/// The dotted path a line defines, given the table it is in; `None` for
/// blank lines, comments, values spanning lines and anything unparsable.
fn defined_path(line: &str, table: &[String]) -> Option<Line> {
    let t = line.trim();
    if let Some(rest) = t.strip_prefix("[[") {
        let inner = rest.split("]]").next()?;
        return Some(Line::Header(keys(inner)?));
    }
    if let Some(rest) = t.strip_prefix('[') {
        let inner = rest.split(']').next()?;
        return Some(Line::Header(keys(inner)?));
    }
    if t.is_empty() || t.starts_with('#') {
        return None;
    }
    let (k, _) = t.split_once('=')?;
    let mut path = table.to_vec();
    path.extend(keys(k)?);
    Some(Line::Key(path))
}

enum Line {
    Header(Vec<String>),
    Key(Vec<String>),
}

fn keys(s: &str) -> Option<Vec<String>> {
    let parsed = Key::parse(s.trim()).ok()?;
    Some(parsed.iter().map(|k| k.get().to_string()).collect())
}

/// For a duplicate-key error at byte `at` of `src`: a message naming the
/// path and the line (1-based) that first defined it.
pub fn explain(src: &str, at: usize) -> Option<String> {
    let line_no = src[..at.min(src.len())].matches('\n').count();
    let lines: Vec<&str> = src.lines().collect();
    let mut table: Vec<String> = Vec::new();
    let mut first_defs: Vec<(Vec<String>, usize)> = Vec::new();
    for (i, line) in lines.iter().enumerate().take(line_no) {
        match defined_path(line, &table) {
            Some(Line::Header(p)) => {
                first_defs.push((p.clone(), i));
                table = p;
            }
            Some(Line::Key(p)) => first_defs.push((p, i)),
            None => {}
        }
    }
    let target = match defined_path(lines.get(line_no)?, &table)? {
        Line::Header(p) | Line::Key(p) => p,
    };
    let (_, first) = first_defs.iter().find(|(p, _)| *p == target)?;
    let shown = target.join(".");
    let what = if lines[line_no].trim_start().starts_with('[') {
        "table"
    } else {
        "key"
    };
    Some(format!(
        "{what} `{shown}` is defined twice: first on line {}, again on line {}",
        first + 1,
        line_no + 1
    ))
}

#[cfg(test)]
mod tests {
    use super::explain;

    fn at_line(src: &str, line: usize) -> usize {
        src.lines().take(line - 1).map(|l| l.len() + 1).sum()
    }

    #[test]
    fn a_table_twice_names_both_lines() {
        let src = "[upstreams.u]\nservers = []\n\n[upstreams.u]\nx = 1\n";
        assert_eq!(
            explain(src, at_line(src, 4)).unwrap(),
            "table `upstreams.u` is defined twice: first on line 1, again on line 4"
        );
    }

    #[test]
    fn spacing_and_quotes_do_not_hide_the_first() {
        let src = "[ upstreams . \"u\" ]  # pool\nservers = []\n[upstreams.u]\n";
        assert_eq!(
            explain(src, at_line(src, 3)).unwrap(),
            "table `upstreams.u` is defined twice: first on line 1, again on line 3"
        );
    }

    #[test]
    fn a_table_first_defined_by_an_inline_key() {
        let src = "[upstreams]\nu = { servers = [] }\n[upstreams.u]\n";
        assert_eq!(
            explain(src, at_line(src, 3)).unwrap(),
            "table `upstreams.u` is defined twice: first on line 2, again on line 3"
        );
    }

    #[test]
    fn a_key_twice_in_one_table() {
        let src = "[global]\nthreads = 2\ngrace_period = \"1s\"\nthreads = 4\n";
        assert_eq!(
            explain(src, at_line(src, 4)).unwrap(),
            "key `global.threads` is defined twice: first on line 2, again on line 4"
        );
    }

    #[test]
    fn an_array_of_tables_then_a_table() {
        let src = "[[servers]]\nname = \"a\"\n[servers]\n";
        assert_eq!(
            explain(src, at_line(src, 3)).unwrap(),
            "table `servers` is defined twice: first on line 1, again on line 3"
        );
    }

    #[test]
    fn no_guess_when_nothing_matches() {
        assert_eq!(explain("[a]\nx = 1\n", 4), None);
    }
}
