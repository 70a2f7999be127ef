//! `rampart import-nginx`: snapshots of every reference config, `rampart
//! check` on the output, the command's errors, and nginx itself against
//! rampart on the imported pam-backend config, with the same requests.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::{bin, client, fixture, free_port, AuthService, Origin};

const REFERENCES: [&str; 5] = [
    "atlas",
    "pam-backend",
    "pynomaly",
    "pynomaly-tuning",
    "tdah-ssl",
];

pub fn import(args: &[&str]) -> Output {
    Command::new(bin())
        .arg("import-nginx")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run rampart import-nginx")
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Compares `actual` with the stored snapshot; `RAMPART_UPDATE_SNAPSHOTS=1`
/// rewrites it instead (review the diff before committing).
fn snapshot(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots/import")
        .join(name);
    if std::env::var_os("RAMPART_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with RAMPART_UPDATE_SNAPSHOTS=1 to create it)",
            path.display()
        )
    });
    if expected != actual {
        let first = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(expected.lines().count().min(actual.lines().count()));
        panic!(
            "{name} differs from its snapshot from line {}:\n--- expected\n{}\n--- actual\n{}\n(RAMPART_UPDATE_SNAPSHOTS=1 rewrites snapshots)",
            first + 1,
            expected.lines().skip(first).take(5).collect::<Vec<_>>().join("\n"),
            actual.lines().skip(first).take(5).collect::<Vec<_>>().join("\n"),
        );
    }
}

#[test]
fn every_reference_config_imports_as_its_snapshot() {
    for name in REFERENCES {
        let file = format!("tests/fixtures/nginx/{name}.nginx.conf");
        let out = import(&[&file]);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", text(&out.stderr));
        let toml = text(&out.stdout);
        snapshot(&format!("{name}.toml"), &toml);
        snapshot(&format!("{name}.stderr"), &text(&out.stderr));
        // Deterministic: a second run gives the same bytes.
        assert_eq!(import(&[&file]).stdout, out.stdout, "{name}");
    }
}

/// The certificates the reference configs name, by file name, in one
/// directory: what `--cert-dir` points at.
fn cert_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, from) in [
        ("fullchain.pem", "leaf-chain.pem"),
        ("privkey.pem", "leaf-key.pem"),
        ("cert.pem", "leaf-chain.pem"),
        ("key.pem", "leaf-key.pem"),
    ] {
        std::fs::copy(fixture(from), dir.path().join(name)).unwrap();
    }
    dir
}

#[test]
fn every_import_passes_rampart_check() {
    let certs = cert_dir();
    let statics = tempfile::tempdir().unwrap();
    for name in REFERENCES {
        let file = format!("tests/fixtures/nginx/{name}.nginx.conf");
        let out = import(&[
            "--cert-dir",
            certs.path().to_str().unwrap(),
            "--static-root",
            statics.path().to_str().unwrap(),
            &file,
        ]);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", text(&out.stderr));
        let conf = certs.path().join(format!("{name}.toml"));
        std::fs::write(&conf, &out.stdout).unwrap();
        let check = Command::new(bin())
            .args(["check", "-c"])
            .arg(&conf)
            .output()
            .unwrap();
        assert_eq!(
            check.status.code(),
            Some(0),
            "{name}:\n{}\n{}",
            text(&check.stderr),
            text(&out.stdout)
        );
        assert!(
            text(&check.stdout).contains("configuration is valid"),
            "{name}"
        );
    }
    // Without the overrides, only the certificate paths of this machine
    // stand in the way.
    let out = import(&["tests/fixtures/nginx/atlas.nginx.conf"]);
    let conf = certs.path().join("as-is.toml");
    std::fs::write(&conf, &out.stdout).unwrap();
    let check = Command::new(bin())
        .args(["check", "-c"])
        .arg(&conf)
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(1));
    let errors: Vec<String> = text(&check.stderr)
        .lines()
        .filter(|l| l.contains(": error: "))
        .map(String::from)
        .collect();
    assert!(!errors.is_empty());
    for e in &errors {
        assert!(e.contains("/etc/nginx/ssl/"), "unexpected error: {e}");
    }
}

#[test]
fn the_insecure_cors_pattern_is_called_out_not_copied() {
    let out = import(&["tests/fixtures/nginx/pam-backend.nginx.conf"]);
    let err = text(&out.stderr);
    assert!(
        err.contains(
            "pam-backend.nginx.conf:126:9: warning: Access-Control-Allow-Origin $http_origin"
        ),
        "{err}"
    );
    let toml = text(&out.stdout);
    assert!(
        !toml.contains("$http_origin\""),
        "no reflected origin in the output"
    );
    let doc: toml_edit::DocumentMut = toml.parse().unwrap();
    let origins = doc["cors"]["app"]["allow_origins"].as_array().unwrap();
    assert_eq!(origins.len(), 1);
    assert_eq!(
        origins.get(0).unwrap().as_str(),
        Some("https://app.example.com")
    );
    assert_eq!(
        doc["cors"]["app"]["allow_credentials"].as_bool(),
        Some(true)
    );
}

#[test]
fn syntax_errors_name_file_line_and_column_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.conf");
    std::fs::write(&f, "http {\n  server {\n    listen 80\n  }\n}\n").unwrap();
    let out = import(&[f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr).trim(),
        format!(
            "{}:3:5: error: directive \"listen\" is not terminated by \";\"",
            f.display()
        )
    );
    assert!(out.stdout.is_empty());

    let out = import(&["/nonexistent/nginx.conf"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with("/nonexistent/nginx.conf:1:1: error: cannot read"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn includes_with_globs_are_followed_relative_to_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("sites-enabled")).unwrap();
    std::fs::write(
        d.join("nginx.conf"),
        "events {}\nhttp {\n  include mime.types;\n  include sites-enabled/*;\n}\n",
    )
    .unwrap();
    std::fs::write(
        d.join("sites-enabled/api"),
        "upstream api { server 127.0.0.1:8000; server 127.0.0.1:8001 backup; }\nserver {\n  listen 8080;\n  location /api/ { proxy_pass http://api; }\n  location = /ping { return 200 'pong'; }\n  location /x { ssi on; proxy_pass http://127.0.0.1:9000; }\n}\n",
    )
    .unwrap();
    let out = import(&[d.join("nginx.conf").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let toml = text(&out.stdout);
    let doc: toml_edit::DocumentMut = toml.parse().unwrap();
    let servers = doc["upstreams"]["api"]["servers"].as_array().unwrap();
    assert_eq!(servers.len(), 2);
    assert_eq!(
        doc["upstreams"]["api"]["balance"].as_str(),
        Some("round_robin")
    );
    let routes = doc["servers"][0]["routes"].as_array_of_tables().unwrap();
    assert_eq!(routes.len(), 3);
    assert_eq!(
        routes.get(1).unwrap()["respond"]["body"].as_str(),
        Some("pong")
    );
    assert_eq!(
        routes.get(2).unwrap()["upstream"].as_str(),
        Some("127_0_0_1_9000")
    );
    // `ssi on` is kept as a comment in its route, with its file and line.
    assert!(
        toml.contains("# not imported: ssi on (api:6) — no response rewriting"),
        "{toml}"
    );
    let err = text(&out.stderr);
    assert!(err.contains("  ssi (line 6)"), "{err}");
}

// ---- nginx against rampart --------------------------------------------------

pub fn nginx_binary() -> Option<PathBuf> {
    ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

pub struct Nginx(pub Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn wait_port(port: u16) {
    let until = Instant::now() + Duration::from_secs(15);
    while Instant::now() < until {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on {port}");
}

/// Imports `src` (which must lose nothing), and runs rampart on the result
/// in `dir` (stderr in `dir/stderr.log`, the admin listener on a free port).
pub fn import_and_run(src: &Path, dir: &Path) -> (String, Nginx) {
    let out = import(&[src.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let toml = text(&out.stdout).replace("127.0.0.1:9090", &format!("127.0.0.1:{}", free_port()));
    let conf = dir.join("rampart.toml");
    std::fs::write(&conf, &toml).unwrap();
    let rampart = Command::new(bin())
        .args(["run", "-c"])
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.join("stderr.log")).unwrap(),
        ))
        .spawn()
        .expect("start rampart");
    (toml, Nginx(rampart))
}

/// nginx in the foreground as a non-root user can run it, with `site`
/// (a file in `dir`) included into its `http` block after `http_extra`.
pub fn run_nginx(nginx: &Path, dir: &Path, http_extra: &str, site: &str) -> Nginx {
    let d = dir.display();
    std::fs::write(
        dir.join("nginx.conf"),
        format!(
            "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\nhttp {{\n  {http_extra}\n  client_body_temp_path {d}/tmp-body;\n  proxy_temp_path {d}/tmp-proxy;\n  fastcgi_temp_path {d}/tmp-fcgi;\n  uwsgi_temp_path {d}/tmp-uwsgi;\n  scgi_temp_path {d}/tmp-scgi;\n  access_log {d}/access.log;\n  include {d}/{site};\n}}\n"
        ),
    )
    .unwrap();
    let child = Command::new(nginx)
        .args(["-e", &format!("{d}/error.log"), "-p"])
        .arg(dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nginx");
    Nginx(child)
}

/// The pam-backend reference with this machine's ports, certificates and
/// paths. nginx runs it as is; rampart runs what `import-nginx` makes of it.
fn localized_pam(dir: &Path, http: u16, https: u16, origin: &str, certs: &Path) -> String {
    std::fs::read_to_string(fixture("nginx/pam-backend.nginx.conf"))
        .unwrap()
        .replace("listen 80;", &format!("listen 127.0.0.1:{http};"))
        .replace(
            "listen 443 ssl http2;",
            &format!("listen 127.0.0.1:{https} ssl http2;"),
        )
        .replace("127.0.0.1:8000", origin)
        .replace(
            "/etc/letsencrypt/live/your-domain.com/",
            &format!("{}/", certs.display()),
        )
        .replace("/var/log/nginx/", &format!("{}/", dir.display()))
        .replace(
            "/home/pam/app/static/",
            &format!("{}/static/", dir.display()),
        )
}

struct Side {
    name: &'static str,
    client: reqwest::Client,
    http: u16,
    https: u16,
}

impl Side {
    fn new(name: &'static str, http: u16, https: u16) -> Side {
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .add_root_certificate(
                reqwest::Certificate::from_pem(&std::fs::read(fixture("ca.pem")).unwrap()).unwrap(),
            )
            // The test certificate is for localhost: the names here are
            // the reference's, the TLS checks are tests/tls.rs's business.
            .danger_accept_invalid_hostnames(true)
            .resolve("your-domain.com", ([127, 0, 0, 1], https).into())
            .build()
            .unwrap();
        Side {
            name,
            client,
            http,
            https,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("https://your-domain.com:{}{path}", self.https)
    }

    async fn send(&self, rb: reqwest::RequestBuilder) -> (u16, reqwest::header::HeaderMap, String) {
        let r = rb
            .send()
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", self.name));
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        (status, headers, r.text().await.unwrap_or_default())
    }

    async fn get(&self, path: &str) -> (u16, reqwest::header::HeaderMap, String) {
        self.send(self.client.get(self.url(path))).await
    }
}

fn hv<'a>(h: &'a reqwest::header::HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn all(h: &reqwest::header::HeaderMap, name: &str) -> String {
    h.get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(", ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_and_rampart_answer_the_pam_backend_requests_alike() {
    let Some(nginx) = nginx_binary() else {
        if std::env::var_os("RAMPART_SKIP_NGINX").is_some() {
            eprintln!("SKIPPED: nginx is not installed (RAMPART_SKIP_NGINX set)");
            return;
        }
        panic!("nginx is not installed: apt-get install nginx (or set RAMPART_SKIP_NGINX=1)");
    };
    let origin = Origin::start("pam").await;
    let certs = cert_dir();
    let origin_addr = origin.addr.to_string();

    // nginx, as the deployment guide runs it (plus what a non-root nginx needs).
    let ndir = tempfile::tempdir().unwrap();
    let (n_http, n_https) = (free_port(), free_port());
    std::fs::create_dir(ndir.path().join("static")).unwrap();
    std::fs::write(ndir.path().join("static/app.css"), "body { color: red }\n").unwrap();
    let pam = localized_pam(ndir.path(), n_http, n_https, &origin_addr, certs.path());
    std::fs::write(ndir.path().join("pam.conf"), &pam).unwrap();
    // As in Debian's stock nginx.conf, which the guide's file is included into.
    let mime = if Path::new("/etc/nginx/mime.types").exists() {
        "include /etc/nginx/mime.types;"
    } else {
        "types { text/html html; text/css css; }"
    };
    let _nginx = run_nginx(&nginx, ndir.path(), mime, "pam.conf");
    wait_port(n_https);

    // rampart, on the import of the same file with its own ports.
    let rdir = tempfile::tempdir().unwrap();
    let (r_http, r_https) = (free_port(), free_port());
    std::fs::create_dir(rdir.path().join("static")).unwrap();
    std::fs::write(rdir.path().join("static/app.css"), "body { color: red }\n").unwrap();
    let pam = localized_pam(rdir.path(), r_http, r_https, &origin_addr, certs.path());
    let src = rdir.path().join("pam-backend.nginx.conf");
    std::fs::write(&src, &pam).unwrap();
    let (_, _rampart) = import_and_run(&src, rdir.path());
    wait_port(r_https);
    wait_port(r_http);

    let sides = [
        Side::new("nginx", n_http, n_https),
        Side::new("rampart", r_http, r_https),
    ];

    // HTTP -> HTTPS.
    for s in &sides {
        let r = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .resolve("your-domain.com", ([127, 0, 0, 1], s.http).into())
            .build()
            .unwrap()
            .get(format!("http://your-domain.com:{}/some/path?x=1", s.http))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 301, "{}", s.name);
        let loc = hv(r.headers(), "location").unwrap_or_default().to_string();
        // Both name no port (`return 301 https://$host$request_uri`; a
        // TLS port other than 443 is named with https_redirect's table form).
        assert_eq!(loc, "https://your-domain.com/some/path?x=1", "{}", s.name);
    }

    // Rate limits first, while the buckets are empty: /api/login is
    // auth_limit (5r/m, burst 10, nodelay), /api/chat chat_limit (30r/m, burst 20).
    for (path, n, ok) in [("/api/login", 15, 11), ("/api/chat/x", 25, 21)] {
        for s in &sides {
            let mut codes = Vec::new();
            for _ in 0..n {
                codes.push(s.get(path).await.0);
            }
            let served = codes.iter().filter(|c| **c == 200).count();
            let limited = codes.iter().filter(|c| **c == 429).count();
            assert_eq!(
                (served, limited),
                (ok, n - ok),
                "{} {path}: {codes:?}",
                s.name
            );
            assert!(
                codes[..ok].iter().all(|c| *c == 200),
                "{} {path}: {codes:?}",
                s.name
            );
        }
    }

    // Health: proxied, not limited, security headers on both.
    for s in &sides {
        let (status, h, body) = s.get("/api/health").await;
        assert_eq!((status, body.as_str()), (200, "origin pam"), "{}", s.name);
        for (name, want) in [
            ("x-frame-options", "DENY"),
            ("x-content-type-options", "nosniff"),
            ("referrer-policy", "strict-origin-when-cross-origin"),
            (
                "strict-transport-security",
                "max-age=31536000; includeSubDomains",
            ),
        ] {
            assert_eq!(hv(&h, name), Some(want), "{} {name}", s.name);
        }
        // The one deliberate difference of value (see the import's note).
        let xss = if s.name == "nginx" {
            "1; mode=block"
        } else {
            "0"
        };
        assert_eq!(hv(&h, "x-xss-protection"), Some(xss), "{}", s.name);
    }

    // /api/ with an allowed origin: CORS headers on both.
    let app = "https://app.example.com";
    for s in &sides {
        let (status, h, _) = s
            .send(s.client.get(s.url("/api/items")).header("origin", app))
            .await;
        assert_eq!(status, 200, "{}", s.name);
        for (name, want) in [
            ("access-control-allow-origin", app),
            ("access-control-allow-credentials", "true"),
        ] {
            assert_eq!(hv(&h, name), Some(want), "{} {name}", s.name);
        }
        // nginx's location-level add_header dropped the server's security
        // headers here; rampart keeps them.
        let xfo = if s.name == "nginx" {
            None
        } else {
            Some("DENY")
        };
        assert_eq!(hv(&h, "x-frame-options"), xfo, "{}", s.name);
    }

    // Preflight from the allowed origin: 204 from both, never the upstream.
    let before = origin.hits();
    for s in &sides {
        let (status, h, _) = s
            .send(
                s.client
                    .request(reqwest::Method::OPTIONS, s.url("/api/items"))
                    .header("origin", app)
                    .header("access-control-request-method", "POST")
                    .header("access-control-request-headers", "authorization"),
            )
            .await;
        assert_eq!(status, 204, "{}", s.name);
        assert_eq!(
            hv(&h, "access-control-max-age"),
            Some("1728000"),
            "{}",
            s.name
        );
        // nginx's `if` block had its own add_header lines, so its preflight
        // answer lacks Allow-Origin (browsers fail it); rampart's has it.
        let acao = if s.name == "nginx" { None } else { Some(app) };
        assert_eq!(hv(&h, "access-control-allow-origin"), acao, "{}", s.name);
        if s.name == "rampart" {
            assert!(all(&h, "access-control-allow-methods").contains("POST"));
        }
    }
    // A preflight from any other site: nginx says yes to everybody, rampart no.
    for s in &sides {
        let (status, _, _) = s
            .send(
                s.client
                    .request(reqwest::Method::OPTIONS, s.url("/api/items"))
                    .header("origin", "https://evil.example")
                    .header("access-control-request-method", "POST"),
            )
            .await;
        assert_eq!(
            status,
            if s.name == "nginx" { 204 } else { 403 },
            "{}",
            s.name
        );
    }
    assert_eq!(origin.hits(), before, "preflights never reach the upstream");

    // Static files: same body, cached for a year as immutable.
    for s in &sides {
        let (status, h, body) = s.get("/static/app.css").await;
        assert_eq!(
            (status, body.as_str()),
            (200, "body { color: red }\n"),
            "{}",
            s.name
        );
        let cc = all(&h, "cache-control");
        assert!(
            cc.contains("max-age=31536000") && cc.contains("immutable"),
            "{}: {cc}",
            s.name
        );
        assert!(
            hv(&h, "content-type").is_some_and(|t| t.starts_with("text/css")),
            "{}",
            s.name
        );
        let (status, _, _) = s.get("/static/missing.css").await;
        assert_eq!(status, 404, "{}", s.name);
    }

    // No location: 404 on both. WebSocket location: proxied.
    for s in &sides {
        assert_eq!(s.get("/nothing-here").await.0, 404, "{}", s.name);
        let (status, _, body) = s.get("/ws/").await;
        assert_eq!((status, body.as_str()), (200, "origin pam"), "{}", s.name);
    }

    // client_max_body_size 10M: 413 before the upstream sees it.
    let before = origin.hits();
    for s in &sides {
        let body = vec![b'x'; 11 << 20];
        let (status, _, _) = s.send(s.client.post(s.url("/api/health")).body(body)).await;
        assert_eq!(status, 413, "{}", s.name);
    }
    assert_eq!(origin.hits(), before);
}

/// `proxy_pass` with a URI under a prefix location, and allow/deny lists:
/// nginx and the imported rampart answer alike, and the upstream sees the
/// same paths from both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_and_rampart_rewrite_and_refuse_alike() {
    let Some(nginx) = nginx_binary() else {
        if std::env::var_os("RAMPART_SKIP_NGINX").is_some() {
            eprintln!("SKIPPED: nginx is not installed (RAMPART_SKIP_NGINX set)");
            return;
        }
        panic!("nginx is not installed: apt-get install nginx (or set RAMPART_SKIP_NGINX=1)");
    };
    let origin = Origin::start("app").await;
    let sso = AuthService::start().await;
    let users = tempfile::tempdir().unwrap();
    let htpasswd = users.path().join("htpasswd");
    std::fs::write(
        &htpasswd,
        "bob:$apr1$saltsalt$LrttParrLPdxvgutaSXWJ0\n\
         cat:$6$rounds=1000$abc$yxe0KSjmoHd8rpohJgwvF5lnIQ/9t.klcz24a1cca3nWm.PLUmhXgcGgKWCoRFHRHYxXj4SVEtjCnCAwaFY0V0\n",
    )
    .unwrap();
    let conf = |port: u16| {
        std::fs::read_to_string(fixture("nginx/rewrite-access.nginx.conf"))
            .unwrap()
            .replace("ORIGIN", &origin.addr.to_string())
            .replace("AUTH", &sso.addr.to_string())
            .replace("HTPASSWD", htpasswd.to_str().unwrap())
            .replace("PORT", &port.to_string())
    };
    let ndir = tempfile::tempdir().unwrap();
    let n_port = free_port();
    std::fs::write(ndir.path().join("site.conf"), conf(n_port)).unwrap();
    let _nginx = run_nginx(&nginx, ndir.path(), "", "site.conf");

    let rdir = tempfile::tempdir().unwrap();
    let r_port = free_port();
    let src = rdir.path().join("site.nginx.conf");
    std::fs::write(&src, conf(r_port)).unwrap();
    let (toml, _rampart) = import_and_run(&src, rdir.path());
    assert!(toml.contains("rewrite_prefix = \"/\""), "{toml}");
    assert!(toml.contains("conn_limit = \"addr\""), "{toml}");
    assert!(toml.contains("auth = \"admin\""), "{toml}");
    assert!(toml.contains("auth = \"sso\""), "{toml}");
    wait_port(n_port);
    wait_port(r_port);

    let c = client();
    let basic = |user_password: &str| {
        use base64::Engine;
        let token = base64::engine::general_purpose::STANDARD.encode(user_password);
        ("authorization", format!("Basic {token}"))
    };
    let cookie = |session: &str| ("cookie", format!("session={session}"));
    for (path, header) in [
        ("/api/users?x=1", None),
        ("/api/", None),
        ("/v/a/b", None),
        ("/private/x", None),
        ("/local/x", None),
        ("/blocked/x", None),
        ("/other", None),
        ("/admin/x", None),
        ("/admin/x", Some(basic("bob:secret"))),
        ("/admin/x", Some(basic("cat:pw"))),
        ("/admin/x", Some(basic("bob:wrong"))),
        ("/sso/x", None),
        ("/sso/x", Some(cookie("ann"))),
        ("/sso/x", Some(cookie("banned"))),
        ("/sso/x", Some(cookie("moved"))),
        ("/oauth2/auth", None),
    ] {
        let mut seen = Vec::new();
        for port in [n_port, r_port] {
            let before = origin.hits();
            let mut req = c.get(format!("http://127.0.0.1:{port}{path}"));
            if let Some((name, value)) = &header {
                req = req.header(*name, value);
            }
            let r = req.send().await.unwrap();
            let upstream = (origin.hits() > before).then(|| origin.last().uri);
            seen.push((r.status().as_u16(), upstream));
        }
        assert_eq!(seen[0], seen[1], "{path} {header:?}: nginx, then rampart");
    }
    // What they agreed on, spelled out.
    let get = |p: &'static str| c.get(format!("http://127.0.0.1:{r_port}{p}")).send();
    assert_eq!(get("/private/x").await.unwrap().status(), 403);
    assert_eq!(get("/local/x").await.unwrap().status(), 200);
    assert_eq!(get("/blocked/x").await.unwrap().status(), 403);
    assert_eq!(get("/admin/x").await.unwrap().status(), 401);
    assert_eq!(get("/sso/x").await.unwrap().status(), 401);
    let before = origin.hits();
    get("/v/a/b").await.unwrap();
    assert!(origin.hits() > before);
    assert_eq!(origin.last().uri, "/v1/a/b");
}

#[test]
fn a_location_rampart_cannot_keep_fails_the_import_unless_partial_is_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("site.conf");
    std::fs::write(
        &conf,
        "server {\n  listen 80;\n  location / { proxy_pass http://127.0.0.1:8000; }\n  \
         location ~ \\.php$ { fastcgi_pass 127.0.0.1:9000; }\n  \
         location /files/ { try_files $uri @missing; root /srv; }\n}\n",
    )
    .unwrap();
    let path = conf.to_str().unwrap();
    let out = import(&[path]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "a partial config was written");
    let err = text(&out.stderr);
    assert!(
        err.starts_with("2 location(s) answer differently in rampart:"),
        "{err}"
    );
    assert!(
        err.contains(&format!("{path}:4: location ~ \\.php$")),
        "{err}"
    );
    assert!(
        err.contains(&format!("{path}:5: location /files/")),
        "{err}"
    );
    assert!(err.contains("--allow-partial"), "{err}");

    let out = import(&[path, "--allow-partial"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.starts_with("2 location(s) answer differently in rampart:"),
        "{err}"
    );
    assert!(
        text(&out.stdout).contains("upstream = "),
        "the rest is written"
    );
}
