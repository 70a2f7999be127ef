//! The real-world corpus (`tests/fixtures/nginx/corpus/`): configurations
//! in the style of widely published deployment guides. Each is imported
//! (exit 0: nothing lost), run by nginx as written and by rampart as
//! imported, and asked the requests a user would make; both must answer
//! alike: status, body (but for each server's own built-in error text), and
//! what the app received.

use std::path::Path;

use crate::common::*;
use crate::import_nginx::{import_and_run, nginx_binary, run_nginx, wait_port};

/// The files the sites serve: `public/` (an app's static directory, no
/// index page) and `site/` (a static site or export, with one).
fn files(dir: &Path) {
    for (path, body) in [
        ("public/robots.txt", "User-agent: *\n"),
        (
            "public/sw.js",
            "self.addEventListener('fetch', () => {});\n",
        ),
        ("public/packs/app.js", "console.log('pack');\n"),
        ("public/static/style.css", "body { color: red }\n"),
        ("public/500.html", "<h1>Something went wrong</h1>\n"),
        ("public/docs/index.html", "<h1>Docs</h1>\n"),
        ("site/index.html", "<h1>Home</h1>\n"),
        ("site/404.html", "<h1>Not found</h1>\n"),
        ("site/robots.txt", "User-agent: *\n"),
        ("site/style.css", "h1 { color: blue }\n"),
        ("site/blog/index.html", "<h1>Blog</h1>\n"),
        ("site/_next/static/chunks/main.js", "main();\n"),
    ] {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
    // bob / secret (apr1, `htpasswd -m`)
    std::fs::write(
        dir.join("htpasswd"),
        "bob:$apr1$saltsalt$LrttParrLPdxvgutaSXWJ0\n",
    )
    .unwrap();
}

type Request = (
    &'static str,
    &'static str,
    Option<(&'static str, &'static str)>,
);

/// Runs `name` under nginx and, imported, under rampart; compares the
/// answers to `requests`.
async fn alike(name: &str, requests: &[Request]) {
    let Some(nginx) = nginx_binary() else {
        if std::env::var_os("RAMPART_SKIP_NGINX").is_some() {
            eprintln!("SKIPPED: nginx is not installed (RAMPART_SKIP_NGINX set)");
            return;
        }
        panic!("nginx is not installed: apt-get install nginx (or set RAMPART_SKIP_NGINX=1)");
    };
    let dir = tempfile::tempdir().unwrap();
    files(dir.path());
    let origin = Origin::start("app").await;
    let app = UnixOrigin::start(dir.path().join("app.sock")).await;
    let conf = |port: u16| {
        std::fs::read_to_string(fixture(&format!("nginx/corpus/{name}.nginx.conf")))
            .unwrap()
            .replace("ORIGIN", &origin.addr.to_string())
            .replace("SOCK", &app.path.display().to_string())
            .replace("ROOT", &dir.path().join("public").display().to_string())
            .replace("SITE", &dir.path().join("site").display().to_string())
            .replace(
                "HTPASSWD",
                &dir.path().join("htpasswd").display().to_string(),
            )
            .replace("PORT", &port.to_string())
    };
    let ndir = tempfile::tempdir().unwrap();
    let n_port = free_port();
    std::fs::write(ndir.path().join("site.conf"), conf(n_port)).unwrap();
    let _nginx = run_nginx(&nginx, ndir.path(), "", "site.conf");

    let r_port = free_port();
    let src = dir.path().join(format!("{name}.nginx.conf"));
    std::fs::write(&src, conf(r_port)).unwrap();
    let (toml, _rampart) = import_and_run(&src, dir.path());
    wait_port(n_port);
    wait_port(r_port);

    let c = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (method, path, header) in requests {
        let mut seen = Vec::new();
        for port in [n_port, r_port] {
            let before = origin.hits();
            let mut req = c.request(
                method.parse().unwrap(),
                format!("http://127.0.0.1:{port}{path}"),
            );
            if let Some((n, v)) = header {
                req = req.header(*n, *v);
            }
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            let body = r.text().await.unwrap();
            // rampart's own error bodies are its own (short text, or JSON);
            // nginx's built-in error page is not what a site serves.
            let body = match status >= 400
                && (body.starts_with("<html>\r\n<head><title>")
                    || port == r_port && body.starts_with(&status.to_string()))
            {
                true => String::new(),
                false => body,
            };
            let upstream = (origin.hits() > before).then(|| origin.last().uri);
            seen.push((status, body, upstream));
        }
        assert_eq!(
            seen[0], seen[1],
            "{name}: {method} {path} {header:?}: nginx, then rampart\n{toml}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gunicorn_files_first_then_the_app_on_its_socket() {
    alike(
        "gunicorn",
        &[
            ("GET", "/", None),
            ("GET", "/robots.txt", None),
            ("GET", "/static/style.css", None),
            ("GET", "/accounts/login/?next=/", None),
            ("GET", "/docs/", None),
            ("GET", "/static/missing.css", None),
            ("HEAD", "/sw.js", None),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn django_static_from_disk_the_rest_from_gunicorn() {
    alike(
        "django",
        &[
            ("GET", "/", None),
            ("GET", "/static/style.css", None),
            ("GET", "/static/missing.css", None),
            ("GET", "/admin/login/?next=/admin/", None),
            ("POST", "/api/items", None),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mastodon_files_first_streaming_apart() {
    alike(
        "mastodon",
        &[
            ("GET", "/", None),
            ("GET", "/sw.js", None),
            ("GET", "/packs/app.js", None),
            ("GET", "/packs/missing.js", None),
            ("GET", "/@alice", None),
            ("GET", "/docs/", None),
            ("GET", "/api/v1/timelines/home?limit=2", None),
            ("GET", "/api/v1/streaming/health", None),
            ("GET", "/robots.txt", None),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fastapi_and_a_nextjs_export() {
    alike(
        "fastapi-nextjs",
        &[
            ("GET", "/", None),
            ("GET", "/about", None),
            ("GET", "/blog/", None),
            ("GET", "/_next/static/chunks/main.js", None),
            ("GET", "/_next/static/missing.js", None),
            ("GET", "/api/items?limit=2", None),
            ("POST", "/api/items", None),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_site_with_its_404_page() {
    alike(
        "static-site",
        &[
            ("GET", "/", None),
            ("GET", "/blog/", None),
            ("GET", "/style.css", None),
            ("GET", "/robots.txt", None),
            ("GET", "/missing.html", None),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_area_behind_auth_basic_and_limit_conn() {
    alike(
        "auth-limits",
        &[
            ("GET", "/", None),
            ("GET", "/admin/", None),
            (
                "GET",
                "/admin/",
                Some(("authorization", "Basic Ym9iOnNlY3JldA==")),
            ),
            (
                "GET",
                "/admin/users",
                Some(("authorization", "Basic Ym9iOndyb25n")),
            ),
        ],
    )
    .await;
}
