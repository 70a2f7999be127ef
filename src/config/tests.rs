//! Every configuration error, with its message and position.

use std::path::Path;

use super::{load_str, Diagnostics};

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

#[test]
fn tls_files() {
    let tls = |c: &str, k: &str| {
        format!("{BASE}\n[[servers]]\nlisten = [\"127.0.0.1:8443\"]\n[servers.tls]\ncert = \"{c}\"\nkey = \"{k}\"\n")
    };
    assert_eq!(
        errors(&tls(&fixture("cert.pem"), &fixture("key.pem"))),
        Vec::<String>::new()
    );
    one(
        &tls("/nonexistent/c.pem", &fixture("key.pem")),
        "14:8",
        "cannot read certificate file /nonexistent/c.pem",
    );
    one(
        &tls(&fixture("cert.pem"), "/nonexistent/k.pem"),
        "15:7",
        "cannot read key file /nonexistent/k.pem",
    );
    one(
        &tls(&fixture("key.pem"), &fixture("key.pem")),
        "14:8",
        "contains no PEM certificate",
    );
    one(
        &tls(&fixture("cert.pem"), &fixture("cert.pem")),
        "15:7",
        "contains no PEM private key",
    );
    one(
        &tls(&fixture("cert.pem"), &fixture("other-key.pem")),
        "14:8",
        "does not fit certificate",
    );
    let old = format!(
        "{}protocols = [\"TLSv1.1\", \"TLSv1.3\"]\n",
        tls(&fixture("cert.pem"), &fixture("key.pem"))
    );
    one(&old, "16:14", "protocol TLSv1.1 is insecure");
}

#[test]
fn cors_rules() {
    let src = format!("[cors.web]\nallow_origins = [\"*\"]\nallow_credentials = true\n{BASE}");
    one(
        &src,
        "3:21",
        "allow_origins \"*\" cannot be combined with allow_credentials = true",
    );
    one(
        &format!("[cors.web]\nallow_origins = [\"https://a.*.com\"]\n{BASE}"),
        "2:18",
        "a wildcard must be a whole leading label",
    );
    one(
        &format!("[cors.web]\nallow_origins = [\"app.example.com\"]\n{BASE}"),
        "2:18",
        "must look like https://host",
    );
}

#[test]
fn upstream_rules() {
    one(
        &BASE.replace("127.0.0.1:8000", "127.0.0.1"),
        "3:21",
        "expected host:port",
    );
    one(
        &BASE.replace(
            "{ addr = \"127.0.0.1:8000\" }",
            "{ addr = \"127.0.0.1:8000\", weight = 0 }",
        ),
        "3:48",
        "weight must be at least 1",
    );
    one(
        &BASE.replace(
            "{ addr = \"127.0.0.1:8000\" }",
            "{ addr = \"127.0.0.1:8000\", backup = true }",
        ),
        "3:11",
        "every server is a backup",
    );
    one(
        &format!("[upstreams.b]\nservers = []\n{BASE}"),
        "2:11",
        "upstreams.b has no servers",
    );
    one(
        &format!(
            "[upstreams.b]\nservers = [{{ addr = \"127.0.0.1:1\" }}]\nbalance = \"random\"\n{BASE}"
        ),
        "3:11",
        "balance \"random\"",
    );
    one(
        &format!("[upstreams.b]\nservers = [{{ addr = \"127.0.0.1:1\" }}]\ntries = 0\n{BASE}"),
        "3:9",
        "tries must be at least 1",
    );
}

#[test]
fn log_and_admin() {
    one(
        &format!("[log]\nformat = \"xml\"\n{BASE}"),
        "2:10",
        "log format \"xml\"",
    );
    one(
        &format!("[admin]\nlisten = \"nowhere\"\n{BASE}"),
        "2:10",
        "admin listen address \"nowhere\"",
    );
    one(
        &format!("[admin]\nlisten = \"127.0.0.1:8080\"\n{BASE}"),
        "8:11",
        "collides with the admin listener",
    );
    let warnings = |admin: &str| {
        let src = format!("[admin]\nlisten = \"{admin}\"\n{BASE}");
        load_str(Path::new("t.toml"), &src, env).unwrap().1
    };
    assert!(warnings("127.0.0.1:9090").is_empty());
    let w = warnings("0.0.0.0:9090");
    assert!(
        w.iter()
            .any(|w| w.contains("served to anyone who can reach")),
        "{w:?}"
    );
}

#[test]
fn compiled_snapshot_resolves_everything() {
    let src = r#"
[global]
trusted_proxies = ["10.0.0.0/8", "127.0.0.1"]
[rate_limits.api]
rate = "5r/m"
[cors.web]
allow_origins = ["https://*.example.com"]
[upstreams.app]
servers = [{ addr = "127.0.0.1:8000", weight = 2 }, { addr = "127.0.0.1:8001", backup = true }]
read_timeout = "5s"
[[servers]]
listen = ["127.0.0.1:8080"]
cors = "web"
[[servers.routes]]
prefix = "/api/"
upstream = "app"
read_timeout = "1d"
rate_limit = [{ zone = "api", burst = 3 }, { zone = "api", nodelay = true }]
[[servers.routes]]
exact = "/x"
cors = false
redirect = { to = "https://{host}{uri}", status = 308 }
"#;
    let (cfg, _) = load_str(Path::new("t.toml"), src, env).unwrap();
    use super::snapshot::*;
    assert_eq!(cfg.global.trusted_proxies.len(), 2);
    assert_eq!(cfg.zones[0].rate.milli_per_sec(), 83);
    let s = &cfg.servers[0];
    assert_eq!(s.max_body_size, Some(1 << 20));
    let api = s.routes.get(crate::routing::RouteId(0));
    assert_eq!(api.name, "prefix:/api/");
    assert!(matches!(api.action, Action::Upstream(UpstreamId(0))));
    assert_eq!(api.cors, CorsChoice::Policy(CorsId(0)));
    assert_eq!(api.rate_limits.len(), 2);
    let t = api.timeouts.unwrap();
    assert_eq!(t.read, std::time::Duration::from_secs(86400));
    assert_eq!(t.connect, std::time::Duration::from_secs(60));
    let x = s.routes.get(crate::routing::RouteId(1));
    assert_eq!(x.cors, CorsChoice::None);
    assert!(
        matches!(&x.action, Action::Redirect { status: 308, to } if to == &vec![Piece::Lit("https://".into()), Piece::Host, Piece::Uri])
    );
    assert_eq!(cfg.upstreams[0].servers[0].weight, 2);
    assert!(cfg.upstreams[0].servers[1].backup);
}

#[test]
fn upstream_tls_ca() {
    let up = |extra: &str| {
        BASE.replace(
            "servers = [{ addr = \"127.0.0.1:8000\" }]",
            &format!("servers = [{{ addr = \"127.0.0.1:8000\" }}]\ntls = true\n{extra}"),
        )
    };
    assert_eq!(
        errors(&up(&format!("tls_ca = \"{}\"", fixture("ca.pem")))),
        Vec::<String>::new()
    );
    one(
        &up("tls_ca = \"/nonexistent/ca.pem\""),
        "5:10",
        "tls_ca: cannot read certificate file /nonexistent/ca.pem",
    );
    one(
        &up(&format!("tls_ca = \"{}\"", fixture("key.pem"))),
        "5:10",
        "contains no PEM certificate",
    );
    one(
        &BASE.replace(
            "servers = [{ addr = \"127.0.0.1:8000\" }]",
            "servers = [{ addr = \"127.0.0.1:8000\" }]\ntls_server_name = \"x\"",
        ),
        "2:12",
        "tls_server_name is set but tls is not true",
    );
}

#[test]
fn key_formats_and_expiry_warning() {
    let tls = |c: &str, k: &str| {
        format!("{BASE}\n[[servers]]\nlisten = [\"127.0.0.1:8443\"]\n[servers.tls]\ncert = \"{}\"\nkey = \"{}\"\n", fixture(c), fixture(k))
    };
    for (c, k) in [
        ("rsa.pem", "rsa-key.pem"),
        ("ed.pem", "ed-key.pem"),
        ("sec1.pem", "sec1-key.pem"),
        ("leaf-chain.pem", "leaf-key.pem"),
    ] {
        assert_eq!(errors(&tls(c, k)), Vec::<String>::new(), "{c} / {k}");
    }
    let (_, warnings) =
        load_str(Path::new("t.toml"), &tls("soon.pem", "soon-key.pem"), env).unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("soon.pem expires in") || w.contains("soon.pem has EXPIRED")),
        "{warnings:?}"
    );
    let (_, warnings) =
        load_str(Path::new("t.toml"), &tls("leaf.pem", "leaf-key.pem"), env).unwrap();
    assert!(
        warnings.iter().all(|w| !w.contains("expire")),
        "{warnings:?}"
    );
}

#[test]
fn tls_servers_on_one_address_share_protocols() {
    let two = |second_listen: &str| {
        format!(
            "{BASE}\n[[servers]]\nlisten = [\"127.0.0.1:8443\"]\nhosts = [\"a.test\"]\n[servers.tls]\ncert = \"{c}\"\nkey = \"{k}\"\n[[servers]]\nlisten = [\"{second_listen}\"]\nhosts = [\"b.test\"]\n[servers.tls]\ncert = \"{c}\"\nkey = \"{k}\"\nprotocols = [\"TLSv1.3\"]\n",
            c = fixture("leaf.pem"),
            k = fixture("leaf-key.pem")
        )
    };
    assert_eq!(
        errors(&two("127.0.0.1:8444")),
        Vec::<String>::new(),
        "different addresses may differ"
    );
    one(
        &two("127.0.0.1:8443"),
        "18:11",
        "servers sharing 127.0.0.1:8443 must agree on `tls.protocols`",
    );
}

#[test]
fn keys_that_would_do_nothing_are_errors() {
    one(
        &BASE.replace(
            "servers = [{ addr = \"127.0.0.1:8000\" }]",
            "servers = [{ addr = \"127.0.0.1:8000\" }]\ntls_verify = false",
        ),
        "2:12",
        "upstreams.app.tls_verify is set but tls is not true",
    );
    one(
        &BASE.replace("[[servers]]\n", "[[servers]]\nhttp2 = true\n"),
        "6:9",
        "http2 = true needs [servers.tls]",
    );
    assert_eq!(
        errors(&BASE.replace("[[servers]]\n", "[[servers]]\nhttp2 = false\n")),
        Vec::<String>::new(),
        "http2 = false on plain HTTP says what happens"
    );
    for b in ["true", "false"] {
        assert_eq!(
            errors(&format!("{BASE}buffering = {b}\n")),
            Vec::<String>::new()
        );
    }
    one(
        &BASE.replace("[[servers]]\n", "[[servers]]\nbuffer_size = \"0\"\n"),
        "6:15",
        "buffer_size must be between 1 and 1G",
    );
}

#[test]
fn https_redirect_forms() {
    let with = |v: &str| {
        BASE.replace(
            "[[servers]]\n",
            &format!("[[servers]]\nhttps_redirect = {v}\n"),
        )
    };
    for ok in ["true", "false", "{ port = 8443 }", "{ status = 308 }", "{}"] {
        assert_eq!(errors(&with(ok)), Vec::<String>::new(), "{ok}");
    }
    one(
        &with("{ status = 200 }"),
        "6:29",
        "redirect status 200: expected 301",
    );
    one(&with("{ port = 0 }"), "6:27", "port must be 1-65535");
    one(&with("{ port = 70000 }"), "6:27", "");
    one(&with("{ prot = 1 }"), "6:20", "unknown key `prot`");
    one(&with("\"yes\""), "6:18", "must be true, false or { port");
}

/// Compiling does no I/O of its own: what a name resolves to comes from the
/// resolve stage, here a made-up one.
#[test]
fn compile_takes_names_from_the_resolve_stage() {
    use super::{compile, file, reader::Reader, resolve::Resolved};
    let text = BASE.replace("127.0.0.1:8000", "db.invalid:5432");
    let compiled = |world: &Resolved| {
        let mut r = Reader::new(&text, env);
        let f = file::read(&text, &mut r).unwrap();
        let src = compile::Source {
            path: Path::new("t.toml"),
            text: &text,
        };
        compile::compile(&src, f, world, &mut r).unwrap()
    };
    let at: std::net::SocketAddr = "127.0.0.9:5432".parse().unwrap();
    let (cfg, warnings) = compiled(&Resolved::default().with_addr("db.invalid:5432", &[at]));
    assert_eq!(
        cfg.upstreams[0].servers[0].socket,
        Some(super::snapshot::PeerAddr::Tcp(at))
    );
    assert!(warnings.is_empty(), "{warnings:?}");
    let (cfg, warnings) = compiled(&Resolved::default());
    assert_eq!(cfg.upstreams[0].servers[0].socket, None);
    assert!(warnings[0].contains("does not resolve now"), "{warnings:?}");
}

#[test]
fn shared_zone_keys_are_checked_without_connecting() {
    let zone = |keys: &str| format!("[rate_limits.z]\nrate = \"1r/s\"\n{keys}\n{BASE}");
    // Nothing listens on port 1: the URL is only parsed.
    assert_eq!(
        errors(&zone(
            "store = \"redis://127.0.0.1:1/0\"\non_store_error = \"local\"\nstore_timeout = \"20ms\""
        )),
        Vec::<String>::new()
    );
    assert_eq!(errors(&zone("store = \"local\"")), Vec::<String>::new());
    one(
        &zone("store = \"memcached://127.0.0.1\""),
        "3:9",
        "rate_limits.z.store: \"memcached://127.0.0.1\": expected \"local\" or a redis:// or rediss:// URL",
    );
    one(
        &zone("store = \"redis://127.0.0.1:6379/x\""),
        "3:9",
        "invalid Redis URL",
    );
    one(
        &zone("store = \"rediss://cache#insecure\""),
        "3:9",
        "#insecure",
    );
    one(
        &zone("store = \"redis://h\"\non_store_error = \"retry\""),
        "4:18",
        "expected \"allow\", \"deny\" or \"local\"",
    );
    one(
        &zone("store = \"redis://h\"\nstore_timeout = \"0s\""),
        "4:17",
        "store_timeout must be more than 0",
    );
    one(
        &zone("store = \"redis://h\"\nstore_timeout = \"2s\""),
        "4:17",
        "at most 1s",
    );
    let e = errors(&zone("store = \"redis://:hunter2@h/x\""));
    assert!(!e.iter().any(|e| e.contains("hunter2")), "{e:?}");
}

#[test]
fn acme_is_checked_without_contacting_the_directory() {
    let server = |tls: &str, hosts: &str| {
        format!(
            "[[servers]]\nlisten = [\"127.0.0.1:8443\"]\n{hosts}\n[servers.tls]\n{tls}\n[[servers.routes]]\nprefix = \"/\"\nrespond = {{ body = \"x\" }}\n"
        )
    };
    let acme = |keys: &str| format!("[acme]\nstorage = \"/tmp/rampart-acme-test\"\n{keys}\n");
    let hosts = "hosts = [\"example.com\", \"www.example.com\"]";
    // Nothing answers at this directory: the file is still valid.
    let ok = format!(
        "{}{}",
        acme("directory = \"https://127.0.0.1:1/dir\"\nrenew_before = \"20d\"\nchallenge = \"tls-alpn-01\"\nemail = \"ops@example.com\""),
        server("acme = true", hosts)
    );
    assert_eq!(errors(&ok), Vec::<String>::new());
    one(
        &format!(
            "{}{}",
            acme("directory = \"http://ca.example/dir\""),
            server("acme = true", hosts)
        ),
        "3:13",
        "expected an https:// URL",
    );
    one(
        &format!(
            "{}{}",
            acme("challenge = \"dns-01\""),
            server("acme = true", hosts)
        ),
        "3:13",
        "expected \"http-01\" or \"tls-alpn-01\"",
    );
    one(
        &format!(
            "{}{}",
            acme("email = \"ops\""),
            server("acme = true", hosts)
        ),
        "3:9",
        "expected an e-mail address",
    );
    one(
        &format!(
            "{}{}",
            acme("ca = \"/nonexistent/ca.pem\""),
            server("acme = true", hosts)
        ),
        "3:6",
        "/nonexistent/ca.pem",
    );
    one(
        &format!(
            "[acme]\nemail = \"ops@example.com\"\n{}",
            server("acme = true", hosts)
        ),
        "1:1",
        "missing required key `storage` in `acme`",
    );
    one(
        &server("acme = true", hosts),
        "5:8",
        "needs an [acme] table",
    );
    one(
        &format!("{}{}", acme(""), server("acme = true", "")),
        "8:8",
        "needs `hosts`",
    );
    one(
        &format!(
            "{}{}",
            acme(""),
            server("acme = true", "hosts = [\"*.example.com\"]")
        ),
        "6:10",
        "plain DNS names",
    );
    one(
        &format!(
            "{}{}",
            acme(""),
            server("acme = true\ncert = \"c.pem\"", hosts)
        ),
        "9:8",
        "remove cert and key",
    );
    // Without acme, cert and key are required as before.
    let e = errors(&server("protocols = [\"TLSv1.3\"]", hosts));
    assert!(
        e.iter().any(|e| e.contains("missing required key `cert`")),
        "{e:?}"
    );
}

#[test]
fn a_routes_zones_share_one_store() {
    let src = |second: &str| {
        format!(
            "[rate_limits.a]\nrate = \"1r/s\"\nstore = \"redis://h1\"\n[rate_limits.b]\nrate = \"1r/s\"\n{second}\n\
             [[servers]]\nlisten = [\"127.0.0.1:8080\"]\n[[servers.routes]]\nprefix = \"/\"\nrespond = {{ body = \"x\" }}\n\
             rate_limit = [{{ zone = \"a\" }}, {{ zone = \"b\" }}]\n"
        )
    };
    assert_eq!(errors(&src("store = \"redis://h1\"")), Vec::<String>::new());
    for other in ["", "store = \"redis://h2\""] {
        let e = errors(&src(other));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].contains("all be local or all use the same `store`"),
            "{e:?}"
        );
    }
}
