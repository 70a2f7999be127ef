//! Certificates, CA bundles and other files the configuration names, the
//! compiled snapshot, and keys that would do nothing.

use super::*;

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
    use crate::config::snapshot::*;
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
    use crate::config::{compile, file, reader::Reader, resolve::Resolved};
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
        Some(crate::config::snapshot::PeerAddr::Tcp(at))
    );
    assert!(warnings.is_empty(), "{warnings:?}");
    let (cfg, warnings) = compiled(&Resolved::default());
    assert_eq!(cfg.upstreams[0].servers[0].socket, None);
    assert!(warnings[0].contains("does not resolve now"), "{warnings:?}");
}
