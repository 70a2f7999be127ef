//! A parser for nginx's configuration syntax.
//!
//! It follows nginx's own tokenizer (`ngx_conf_read_token`) rather than a
//! grammar of our own: a directive is words up to `;` or `{`, a word is
//! unquoted, `"double"` or `'single'` quoted, `#` starts a comment only where a
//! word could start, and `${var}` braces belong to the word. `include` is
//! expanded here, with globs relative to the including file, so the translator
//! sees one tree in which every directive still knows its file and line.

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where a directive came from, for error messages and `# not imported` notes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pos {
    pub file: Arc<str>,
    pub line: u32,
    pub col: u32,
}

impl std::fmt::Display for Pos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

/// One directive: `name arg...;` or `name arg... { children }`.
#[derive(Debug, Clone)]
pub struct Directive {
    pub name: String,
    pub args: Vec<String>,
    /// `Some` for block directives, even when the block is empty.
    pub block: Option<Vec<Directive>>,
    pub pos: Pos,
}

impl Directive {
    /// The directive as it would appear in the file, for notes (`gzip_comp_level 6`).
    pub fn text(&self) -> String {
        let mut s = self.name.clone();
        for a in &self.args {
            s.push(' ');
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == ';' || c == '#') {
                s.push('"');
                s.push_str(&a.replace('"', "\\\""));
                s.push('"');
            } else {
                s.push_str(a);
            }
        }
        s
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{pos}: error: {message}")]
pub struct ParseError {
    pub pos: Pos,
    pub message: String,
}

/// Files included more deeply than this are a loop, not a configuration.
const MAX_INCLUDE_DEPTH: usize = 16;

/// Reads and parses `path`, expanding `include`s.
pub fn parse_file(path: &Path) -> Result<Vec<Directive>, ParseError> {
    let shown: Arc<str> = Arc::from(path.display().to_string());
    let bytes = std::fs::read(path).map_err(|e| ParseError {
        pos: Pos {
            file: shown.clone(),
            line: 1,
            col: 1,
        },
        message: format!("cannot read {}: {e}", path.display()),
    })?;
    // nginx takes any bytes; names and values that matter here are ASCII.
    let text = String::from_utf8_lossy(&bytes);
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let tree = parse_str(&text, shown)?;
    expand_includes(
        tree,
        &Dirs {
            prefix: &base,
            file: &base,
        },
        0,
    )
}

/// Where relative includes are looked up: nginx resolves them against the
/// directory of the main file (its conf prefix); the directory of the
/// including file is tried second, for trees copied without their layout.
struct Dirs<'a> {
    prefix: &'a Path,
    file: &'a Path,
}

/// Parses one file's text without touching the file system.
pub fn parse_str(text: &str, file: Arc<str>) -> Result<Vec<Directive>, ParseError> {
    let mut lexer = Lexer {
        chars: text.chars().collect(),
        i: 0,
        line: 1,
        col: 1,
        file,
    };
    let (list, end) = parse_block(&mut lexer, 0)?;
    match end {
        End::Eof => Ok(list),
        End::Close(pos) => Err(ParseError {
            pos,
            message: "unexpected \"}\"".into(),
        }),
    }
}

enum End {
    Eof,
    Close(Pos),
}

fn parse_block(lx: &mut Lexer, depth: usize) -> Result<(Vec<Directive>, End), ParseError> {
    if depth > 64 {
        return Err(lx.error("blocks nested more than 64 deep".into()));
    }
    let mut out = Vec::new();
    let mut words: Vec<(String, Pos)> = Vec::new();
    loop {
        match lx.next_token()? {
            Token::Word(w, pos) => words.push((w, pos)),
            Token::Semicolon(pos) => {
                let d = directive(std::mem::take(&mut words), None, pos)?;
                out.push(d);
            }
            Token::Open(pos) => {
                let (children, end) = parse_block(lx, depth + 1)?;
                if let End::Eof = end {
                    return Err(ParseError {
                        pos: words.first().map(|w| w.1.clone()).unwrap_or(pos),
                        message: "unexpected end of file: this block is not closed with \"}\""
                            .into(),
                    });
                }
                out.push(directive(std::mem::take(&mut words), Some(children), pos)?);
            }
            Token::Close(pos) => {
                if let Some((w, p)) = words.first() {
                    return Err(ParseError {
                        pos: p.clone(),
                        message: format!("directive \"{w}\" is not terminated by \";\""),
                    });
                }
                return Ok((out, End::Close(pos)));
            }
            Token::Eof(pos) => {
                if let Some((w, p)) = words.first() {
                    let _ = pos;
                    return Err(ParseError {
                        pos: p.clone(),
                        message: format!(
                            "unexpected end of file: directive \"{w}\" is not terminated by \";\""
                        ),
                    });
                }
                return Ok((out, End::Eof));
            }
        }
    }
}

fn directive(
    words: Vec<(String, Pos)>,
    block: Option<Vec<Directive>>,
    at: Pos,
) -> Result<Directive, ParseError> {
    let mut it = words.into_iter();
    let Some((name, pos)) = it.next() else {
        let what = if block.is_some() { "\"{\"" } else { "\";\"" };
        return Err(ParseError {
            pos: at,
            message: format!("unexpected {what}: no directive before it"),
        });
    };
    Ok(Directive {
        name,
        args: it.map(|(w, _)| w).collect(),
        block,
        pos,
    })
}

enum Token {
    Word(String, Pos),
    Semicolon(Pos),
    Open(Pos),
    Close(Pos),
    Eof(Pos),
}

struct Lexer {
    chars: Vec<char>,
    i: usize,
    line: u32,
    col: u32,
    file: Arc<str>,
}

impl Lexer {
    fn pos(&self) -> Pos {
        Pos {
            file: self.file.clone(),
            line: self.line,
            col: self.col,
        }
    }

    fn error(&self, message: String) -> ParseError {
        ParseError {
            pos: self.pos(),
            message,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.i).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.i += 1;
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn next_token(&mut self) -> Result<Token, ParseError> {
        // Whitespace and comments between words.
        loop {
            match self.peek() {
                Some(c) if c.is_whitespace() => {
                    self.bump();
                }
                Some('#') => {
                    while let Some(c) = self.peek() {
                        if c == '\n' {
                            break;
                        }
                        self.bump();
                    }
                }
                _ => break,
            }
        }
        let pos = self.pos();
        let Some(c) = self.peek() else {
            return Ok(Token::Eof(pos));
        };
        match c {
            ';' => {
                self.bump();
                Ok(Token::Semicolon(pos))
            }
            '{' => {
                self.bump();
                Ok(Token::Open(pos))
            }
            '}' => {
                self.bump();
                Ok(Token::Close(pos))
            }
            '"' | '\'' => {
                self.bump();
                let word = self.quoted(c, &pos)?;
                // nginx requires a separator after a closing quote, and
                // accepts `)` as one (`if ($request_method = 'OPTIONS')`).
                match self.peek() {
                    None | Some(';' | '{' | '}' | ')') => {}
                    Some(c) if c.is_whitespace() => {}
                    Some(c) => {
                        return Err(
                            self.error(format!("unexpected \"{c}\" right after a quoted string"))
                        )
                    }
                }
                Ok(Token::Word(word, pos))
            }
            _ => Ok(Token::Word(self.bare()?, pos)),
        }
    }

    fn quoted(&mut self, quote: char, start: &Pos) -> Result<String, ParseError> {
        let mut s = String::new();
        loop {
            match self.bump() {
                None => {
                    return Err(ParseError {
                        pos: start.clone(),
                        message: format!("unexpected end of file: the string opened here with {quote} is never closed"),
                    })
                }
                Some('\\') => match self.bump() {
                    Some(c) if c == quote || c == '\\' => s.push(c),
                    Some('n') => s.push('\n'),
                    Some('t') => s.push('\t'),
                    Some('r') => s.push('\r'),
                    // nginx keeps the backslash of unknown escapes (regexes need it).
                    Some(c) => {
                        s.push('\\');
                        s.push(c);
                    }
                    None => s.push('\\'),
                },
                Some(c) if c == quote => return Ok(s),
                Some(c) => s.push(c),
            }
        }
    }

    fn bare(&mut self) -> Result<String, ParseError> {
        let mut s = String::new();
        while let Some(c) = self.peek() {
            match c {
                c if c.is_whitespace() => break,
                // As in nginx, `}` ends a word only where a word could start.
                ';' => break,
                '{' if s.ends_with('$') => {
                    // `${name}`: the braces belong to the variable.
                    let start = self.pos();
                    while let Some(c) = self.bump() {
                        s.push(c);
                        if c == '}' {
                            break;
                        }
                    }
                    if !s.ends_with('}') {
                        return Err(ParseError {
                            pos: start,
                            message: "unexpected end of file inside \"${...}\"".into(),
                        });
                    }
                }
                '{' => break,
                '\\' => {
                    self.bump();
                    match self.bump() {
                        Some(c) => {
                            s.push('\\');
                            s.push(c);
                        }
                        None => s.push('\\'),
                    }
                }
                c => {
                    s.push(c);
                    self.bump();
                }
            }
        }
        Ok(s)
    }
}

fn expand_includes(
    list: Vec<Directive>,
    dirs: &Dirs<'_>,
    depth: usize,
) -> Result<Vec<Directive>, ParseError> {
    let mut out = Vec::with_capacity(list.len());
    for mut d in list {
        if d.name == "include" && d.block.is_none() {
            match include(&d, dirs, depth)? {
                Some(children) => out.extend(children),
                // Left in the tree; the translator says why it was not read.
                None => out.push(d),
            }
            continue;
        }
        if let Some(children) = d.block.take() {
            d.block = Some(expand_includes(children, dirs, depth)?);
        }
        out.push(d);
    }
    Ok(out)
}

/// The directives of the files an `include` names, in nginx's order (sorted
/// glob matches). `None` leaves the `include` in the tree for the translator
/// to explain: `mime.types` (rampart has its own table, and reading the
/// machine's copy would make the output depend on the machine), globs that
/// match nothing (nginx accepts those too), and files that are not here
/// (nginx would refuse to start; an import from another machine goes on and
/// says what it could not read).
fn include(
    d: &Directive,
    dirs: &Dirs<'_>,
    depth: usize,
) -> Result<Option<Vec<Directive>>, ParseError> {
    let err = |message: String| ParseError {
        pos: d.pos.clone(),
        message,
    };
    let [pattern] = d.args.as_slice() else {
        return Err(err("\"include\" takes exactly one file or pattern".into()));
    };
    if pattern.ends_with("mime.types") {
        return Ok(None);
    }
    if depth >= MAX_INCLUDE_DEPTH {
        return Err(err(format!(
            "includes nested more than {MAX_INCLUDE_DEPTH} deep (does a file include itself?)"
        )));
    }
    let is_glob = pattern.contains(['*', '?', '[']);
    let candidates: Vec<PathBuf> = if Path::new(pattern).is_absolute() {
        vec![PathBuf::from(pattern)]
    } else {
        vec![dirs.prefix.join(pattern), dirs.file.join(pattern)]
    };
    let mut files: Vec<PathBuf> = Vec::new();
    for full in candidates {
        if is_glob {
            let text = full.to_string_lossy();
            let paths = glob::glob(&text).map_err(|e| err(format!("bad include pattern: {e}")))?;
            files = paths
                .filter_map(Result::ok)
                .filter(|p| p.is_file())
                .collect();
        } else if full.is_file() {
            files = vec![full];
        }
        if !files.is_empty() {
            break;
        }
    }
    files.sort();
    if files.is_empty() {
        return Ok(None);
    }
    let mut out = Vec::new();
    for f in files {
        let shown: Arc<str> = Arc::from(f.display().to_string());
        let bytes = std::fs::read(&f)
            .map_err(|e| err(format!("include: cannot read {}: {e}", f.display())))?;
        let tree = parse_str(&String::from_utf8_lossy(&bytes), shown)?;
        let dir = f.parent().map(Path::to_path_buf).unwrap_or_default();
        let inner = Dirs {
            prefix: dirs.prefix,
            file: &dir,
        };
        out.extend(expand_includes(tree, &inner, depth + 1)?);
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests;
