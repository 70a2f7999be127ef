use super::*;

fn parse(s: &str) -> Result<Vec<Directive>, ParseError> {
    parse_str(s, Arc::from("t.conf"))
}

fn err(s: &str) -> String {
    match parse(s) {
        Ok(t) => panic!("parsed: {t:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn directives_blocks_quotes_and_comments() {
    let t = parse(
        "# top\nhttp {\n  add_header X-A \"1; mode=block\" always; # c\n  location ~ ^/a/(b|c)$ { return 200 'it''s'; }\n}\n",
    );
    // 'it''s' is two words glued: nginx rejects that, and so do we.
    assert!(t.is_err());
    let t = parse(
        "# top\nhttp {\n  add_header X-A \"1; mode=block\" always; # c\n  location ~ ^/a/(b|c)$ { return 200 'it\\'s'; }\n}\n",
    )
    .unwrap();
    assert_eq!(t.len(), 1);
    let http = &t[0];
    assert_eq!(http.name, "http");
    assert_eq!((http.pos.line, http.pos.col), (2, 1));
    let body = http.block.as_ref().unwrap();
    assert_eq!(body[0].args, ["X-A", "1; mode=block", "always"]);
    assert_eq!((body[0].pos.line, body[0].pos.col), (3, 3));
    assert_eq!(body[1].args, ["~", "^/a/(b|c)$"]);
    let loc = body[1].block.as_ref().unwrap();
    assert_eq!(loc[0].args, ["200", "it's"]);
}

#[test]
fn a_paren_may_follow_a_quote_as_in_nginx() {
    let t = parse("if ($request_method = 'OPTIONS') { return 204; }").unwrap();
    assert_eq!(t[0].args, ["($request_method", "=", "OPTIONS", ")"]);
}

#[test]
fn variables_with_braces_stay_in_the_word() {
    let t = parse("return 301 https://${host}$request_uri;").unwrap();
    assert_eq!(t[0].args, ["301", "https://${host}$request_uri"]);
}

#[test]
fn hash_inside_a_word_is_not_a_comment() {
    let t = parse("add_header X a#b;").unwrap();
    assert_eq!(t[0].args, ["X", "a#b"]);
}

#[test]
fn errors_carry_positions() {
    assert_eq!(
        err("http {\n  gzip on\n}\n"),
        "t.conf:2:3: error: directive \"gzip\" is not terminated by \";\""
    );
    assert_eq!(
        err("server {\n  listen 80;\n"),
        "t.conf:1:1: error: unexpected end of file: this block is not closed with \"}\""
    );
    assert_eq!(err("gzip on;\n}\n"), "t.conf:2:1: error: unexpected \"}\"");
    assert_eq!(
        err("add_header X \"abc;\n"),
        "t.conf:1:14: error: unexpected end of file: the string opened here with \" is never closed"
    );
    assert_eq!(
        err("  ;"),
        "t.conf:1:3: error: unexpected \";\": no directive before it"
    );
    assert_eq!(
        err("gzip on"),
        "t.conf:1:1: error: unexpected end of file: directive \"gzip\" is not terminated by \";\""
    );
    assert_eq!(
        err("add_header X \"a\"b;"),
        "t.conf:1:17: error: unexpected \"b\" right after a quoted string"
    );
}

#[test]
fn includes_are_expanded_in_sorted_order_relative_to_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("conf.d")).unwrap();
    std::fs::write(d.join("conf.d/b.conf"), "gzip on;\n").unwrap();
    std::fs::write(d.join("conf.d/a.conf"), "server { listen 81; }\n").unwrap();
    std::fs::write(
        d.join("nginx.conf"),
        "http {\n include mime.types;\n include conf.d/*.conf;\n include none/*.conf;\n}\n",
    )
    .unwrap();
    let t = parse_file(&d.join("nginx.conf")).unwrap();
    let body = t[0].block.as_ref().unwrap();
    let names: Vec<&str> = body.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["include", "server", "gzip", "include"]);
    assert!(body[1].pos.file.ends_with("conf.d/a.conf"));
    assert_eq!(body[2].pos.line, 1);
}

#[test]
fn include_loops_are_errors_and_missing_files_stay_for_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("self.conf"), "include self.conf;\n").unwrap();
    let e = parse_file(&d.join("self.conf")).unwrap_err();
    assert!(e.message.contains("nested more than 16 deep"), "{e}");
    assert_eq!((e.pos.line, e.pos.col), (1, 1));
    std::fs::write(d.join("m.conf"), "\n  include nope.conf;\n").unwrap();
    let t = parse_file(&d.join("m.conf")).unwrap();
    assert_eq!(t[0].name, "include");
    assert_eq!((t[0].pos.line, t[0].pos.col), (2, 3));
}

#[test]
fn nested_includes_resolve_against_the_main_files_directory_first() {
    // Debian: sites-enabled/default says `include snippets/x.conf;`,
    // meaning /etc/nginx/snippets/x.conf.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for sub in ["sites-enabled", "snippets"] {
        std::fs::create_dir(d.join(sub)).unwrap();
    }
    std::fs::write(d.join("nginx.conf"), "http { include sites-enabled/*; }\n").unwrap();
    std::fs::write(
        d.join("sites-enabled/default"),
        "server { include snippets/x.conf; }\n",
    )
    .unwrap();
    std::fs::write(d.join("snippets/x.conf"), "listen 8443 ssl;\n").unwrap();
    let t = parse_file(&d.join("nginx.conf")).unwrap();
    let server = &t[0].block.as_ref().unwrap()[0];
    assert_eq!(server.block.as_ref().unwrap()[0].args, ["8443", "ssl"]);
}

#[test]
fn a_closing_brace_inside_a_word_belongs_to_it_as_in_nginx() {
    let t = parse("add_header X a}b;").unwrap();
    assert_eq!(t[0].args, ["X", "a}b"]);
}

#[test]
fn files_that_are_not_utf8_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("latin1.conf");
    std::fs::write(&f, b"# caf\xe9\ngzip on;\n").unwrap();
    let t = parse_file(&f).unwrap();
    assert_eq!(t[0].name, "gzip");
}
