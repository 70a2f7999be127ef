//! Every configuration error, with its message and position.

use std::path::Path;

use super::{load_str, Diagnostics};

mod acme_and_stores;
mod tls_and_files;

const BASE: &str = r#"
[upstreams.app]
servers = [{ addr = "127.0.0.1:8000" }]

[[servers]]
listen = ["127.0.0.1:8080"]
[[servers.routes]]
prefix = "/"
upstream = "app"
"#;

fn env(k: &str) -> Option<String> {
    match k {
        "PORT" => Some("9000".into()),
        _ => None,
    }
}

fn errors(src: &str) -> Vec<String> {
    match load_str(Path::new("t.toml"), src, env) {
        Ok(_) => Vec::new(),
        Err(Diagnostics { items, .. }) => items
            .into_iter()
            .map(|d| format!("{}:{}: {}", d.line, d.col, d.message))
            .collect(),
    }
}

/// Exactly one error, at `line:col`, containing `msg`.
#[track_caller]
fn one(src: &str, pos: &str, msg: &str) {
    let e = errors(src);
    assert_eq!(e.len(), 1, "expected one error, got {e:#?}");
    assert!(e[0].starts_with(&format!("{pos}: ")), "position: {}", e[0]);
    assert!(e[0].contains(msg), "message: {}", e[0]);
}

#[test]
fn base_is_valid() {
    assert_eq!(errors(BASE), Vec::<String>::new());
}

#[test]
fn file_format_is_file_line_col_error() {
    let err = load_str(
        Path::new("conf/x.toml"),
        &format!("[global]\nthreads = \"two\"\n{BASE}"),
        env,
    )
    .unwrap_err();
    assert!(
        err.to_string().starts_with(
            "conf/x.toml:2:11: error: `global.threads` must be an integer, found a string"
        ),
        "{err}"
    );
}

#[test]
fn toml_syntax() {
    one("[global\n", "1:8", "invalid TOML");
}

#[test]
fn a_duplicate_table_names_both_lines() {
    one(
        &format!("{BASE}\n[upstreams.app]\nservers = []\n"),
        "11:1",
        "table `upstreams.app` is defined twice: first on line 2, again on line 11",
    );
}

#[test]
fn unknown_keys_everywhere_all_reported() {
    let src = format!("{BASE}\n[global]\ntreads = 2\n[[servers.routes]]\nprefix = \"/x\"\nupstream = \"app\"\nrate_limit = {{ zone = \"z\", brust = 1 }}\n[rate_limits.z]\nrate = \"1r/s\"\n");
    let e = errors(&src);
    assert_eq!(e.len(), 2, "{e:#?}");
    assert!(
        e.iter()
            .any(|m| m
                .starts_with("12:1: unknown key `treads` in `global` (did you mean `threads`?)")),
        "{e:#?}"
    );
    assert!(
        e.iter().any(|m| m.contains(
            "unknown key `brust` in `servers[0].routes[1].rate_limit` (did you mean `burst`?)"
        )),
        "{e:#?}"
    );
    one(
        &format!("bogus = 1\n{BASE}"),
        "1:1",
        "unknown key `bogus` at the top level",
    );
}

#[test]
fn wrong_types() {
    one(
        &format!("[global]\nserver_header = \"no\"\n{BASE}"),
        "2:17",
        "`global.server_header` must be true or false, found a string",
    );
    one(
        &format!("[global]\ntrusted_proxies = 5\n{BASE}"),
        "2:19",
        "must be a list of strings",
    );
}

#[test]
fn bad_durations_sizes_rates() {
    one(&format!("[global]\ngrace_period = \"10x\"\n{BASE}"), "2:16", "`global.grace_period`: duration \"10x\": expected a number followed by ms, s, m, h, d, w or y");
    one(
        &BASE.replace("listen = [", "max_body_size = \"ten\"\nlisten = ["),
        "6:17",
        "size \"ten\"",
    );
    one(
        &format!("[rate_limits.a]\nrate = \"10/s\"\n{BASE}"),
        "2:8",
        "rate \"10/s\": expected \"<N>r/s\" or \"<N>r/m\"",
    );
    one(
        &format!("[rate_limits.a]\nkey = \"client_ip\"\n{BASE}"),
        "1:14",
        "missing required key `rate` in `rate_limits.a`",
    );
}

#[test]
fn env_interpolation() {
    let src = BASE.replace("127.0.0.1:8080", "127.0.0.1:${PORT}");
    let (cfg, _) = load_str(Path::new("t.toml"), &src, env).unwrap();
    assert_eq!(cfg.listeners[0].addr.port(), 9000);
    let src = BASE.replace("127.0.0.1:8080", "127.0.0.1:${NOPE:-9001}");
    let (cfg, _) = load_str(Path::new("t.toml"), &src, env).unwrap();
    assert_eq!(cfg.listeners[0].addr.port(), 9001);
    one(
        &BASE.replace("127.0.0.1:8080", "${NOPE}"),
        "6:11",
        "environment variable `NOPE` is not set",
    );
}

#[test]
fn undefined_references() {
    one(
        &BASE.replace("upstream = \"app\"", "upstream = \"ap\""),
        "9:12",
        "undefined upstream \"ap\" (define it as [upstreams.ap])",
    );
    one(
        &format!("{BASE}rate_limit = {{ zone = \"nope\" }}\n"),
        "10:23",
        "undefined rate-limit zone \"nope\"",
    );
    one(
        &format!("{BASE}cors = \"nope\"\n"),
        "10:8",
        "undefined CORS policy \"nope\"",
    );
    one(
        &BASE.replace("listen = [", "cors = \"web\"\nlisten = ["),
        "6:8",
        "undefined CORS policy \"web\"",
    );
}

#[test]
fn duplicates() {
    let src = format!("{BASE}\n[[servers]]\nlisten = [\"127.0.0.1:8081\"]\n[[servers]]\nname = \"127.0.0.1:8081\"\nlisten = [\"127.0.0.1:8082\"]\n");
    one(&src, "14:8", "duplicate server name \"127.0.0.1:8081\"");
    one(
        &format!("{BASE}[[servers.routes]]\nprefix = \"/\"\nupstream = \"app\"\n"),
        "11:10",
        "duplicate prefix route \"/\"",
    );
    one(&format!("{BASE}name = \"r\"\n[[servers.routes]]\nname = \"r\"\nexact = \"/x\"\nrespond = {{}}\n"), "12:8", "duplicate route name \"r\"");
    one(
        &BASE.replace(
            "servers = [{ addr = \"127.0.0.1:8000\" }]",
            "servers = [{ addr = \"127.0.0.1:8000\" }, { addr = \"127.0.0.1:8000\" }]",
        ),
        "3:50",
        "listed twice",
    );
    // TOML itself refuses a second [upstreams.app]
    one(
        &format!("{BASE}\n[upstreams.app]\nservers = []\n"),
        "11:1",
        "invalid TOML",
    );
}

#[test]
fn matchers_and_actions() {
    one(
        &format!("{BASE}exact = \"/x\"\n"),
        "7:1",
        "has 2 matchers (exact, prefix)",
    );
    one(
        &BASE.replace("prefix = \"/\"\n", ""),
        "7:1",
        "has no matcher",
    );
    one(
        &format!("{BASE}respond = {{ status = 200 }}\n"),
        "7:1",
        "has 2 actions (upstream, respond)",
    );
    one(
        &BASE.replace("upstream = \"app\"\n", ""),
        "7:1",
        "has no action",
    );
    one(
        &BASE.replace("prefix = \"/\"", "regex = \"^/(a\""),
        "8:9",
        "invalid regex \"^/(a\"",
    );
    one(
        &BASE.replace("prefix = \"/\"", "prefix = \"api\""),
        "8:10",
        "must start with /",
    );
    one(
        &format!(
            "{BASE}[[servers.routes]]\nprefix = \"/r\"\nredirect = {{ to = \"/{{nope}}\" }}\n"
        ),
        "12:19",
        "unknown placeholder `{nope}`",
    );
    one(&format!("{BASE}[[servers.routes]]\nprefix = \"/r\"\nredirect = {{ to = \"/\", status = 200 }}\n"), "12:33", "redirect status 200");
    one(&format!("{BASE}[[servers.routes]]\nprefix = \"/r\"\nrespond = {{ status = 200 }}\nread_timeout = \"1s\"\n"), "10:1", "apply only to upstream routes");
}

#[test]
fn listeners() {
    let tls_and_plain = format!(
        "{BASE}\n[[servers]]\nlisten = [\"127.0.0.1:8080\"]\n[servers.tls]\ncert = \"{c}\"\nkey = \"{k}\"\n",
        c = fixture("cert.pem"),
        k = fixture("key.pem")
    );
    one(
        &tls_and_plain,
        "12:11",
        "used by a TLS server (this one) and a plain-HTTP server (an earlier one)",
    );
    one(
        &BASE.replace("127.0.0.1:8080", "localhost"),
        "6:11",
        "listen address \"localhost\"",
    );
    one(
        &format!("{BASE}\n[[servers]]\nlisten = [\"0.0.0.0:8080\"]\n"),
        "12:11",
        "overlaps 127.0.0.1:8080",
    );
    one(
        &BASE.replace("listen = [", "hosts = [\"a..b\"]\nlisten = ["),
        "6:10",
        "host \"a..b\"",
    );
    // An empty list is reported even after an earlier error (it was not).
    let e = errors(&format!(
        "{}\n[[servers]]\nlisten = []\n",
        BASE.replace("127.0.0.1:8000", "nowhere")
    ));
    assert_eq!(e.len(), 2, "{e:#?}");
    assert!(e[1].contains("server has an empty `listen` list"), "{e:#?}");
    // A missing one is reported once, as missing.
    let e = errors(&format!("{BASE}\n[[servers]]\nhosts = [\"b.com\"]\n"));
    assert_eq!(e.len(), 1, "{e:#?}");
    assert!(e[0].contains("listen"), "{e:#?}");
    one(&format!("{BASE}\n[[servers]]\nlisten = [\"127.0.0.1:8080\"]\nhosts = [\"a.com\"]\n[[servers]]\nlisten = [\"127.0.0.1:8080\"]\nhosts = [\"A.com\"]\n"), "16:10", "host \"a.com\" is already claimed");
}

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}
