//! `try_files` on an upstream route: files under its root answer GET and
//! HEAD from disk, everything else reaches the upstream.

use std::time::{Duration, Instant};

use crate::common::*;

fn site() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    std::fs::create_dir_all(p.join("docs")).unwrap();
    std::fs::create_dir_all(p.join("sub")).unwrap();
    std::fs::write(p.join("index.html"), "<h1>home</h1>").unwrap();
    std::fs::write(p.join("app.js"), "console.log('app');").unwrap();
    std::fs::write(p.join("docs/index.html"), "<h1>docs</h1>").unwrap();
    std::fs::write(p.join(".env"), "SECRET=1").unwrap();
    std::os::unix::fs::symlink("/etc/hostname", p.join("outside")).unwrap();
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn existing_files_come_from_disk_and_the_rest_from_the_app() {
    let root = site();
    let origin = Origin::start("app").await;
    let g = Gateway::start(
        &Config::new()
            .upstream("app", origin.addr, "")
            .route(&format!(
                "prefix = \"/\"\nupstream = \"app\"\n\
                 try_files = {{ root = \"{}\", expires = \"1h\" }}\n\
                 response_headers = {{ \"X-Route\" = \"main\" }}",
                root.path().display()
            ))
            .build(),
    );
    let c = client();
    let get = |path: &str| c.get(g.url(path)).send();

    for (path, body) in [
        ("/app.js", "console.log('app');"),
        ("/", "<h1>home</h1>"),
        ("/docs/", "<h1>docs</h1>"),
    ] {
        let r = get(path).await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["x-route"], "main", "{path}");
        assert_eq!(
            r.headers()["cache-control"],
            "public, max-age=3600",
            "{path}"
        );
        assert!(r.headers().contains_key("etag"), "{path}");
        assert_eq!(r.text().await.unwrap(), body, "{path}");
    }
    let r = c.head(g.url("/app.js")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .get(g.url("/app.js"))
        .header("range", "bytes=0-6")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.text().await.unwrap(), "console");
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(g.url("/docs?x=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 301);
    assert_eq!(r.headers()["location"], "/docs/?x=1");
    assert_eq!(origin.hits(), 0, "the upstream saw a request for a file");

    // Everything else is the app's: other methods, missing files, a
    // directory without an index, dotfiles, a symlink out of the root.
    for (method, path) in [
        ("POST", "/app.js"),
        ("GET", "/api/users/1?full=1"),
        ("GET", "/sub/"),
        ("GET", "/.env"),
        ("GET", "/outside"),
        ("GET", "/app.js/more"),
    ] {
        let before = origin.hits();
        let r = c
            .request(method.parse().unwrap(), g.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{method} {path}");
        assert_eq!(r.headers()["x-route"], "main", "{method} {path}");
        assert_eq!(r.text().await.unwrap(), "origin app", "{method} {path}");
        assert_eq!(origin.hits(), before + 1, "{method} {path}");
        let seen = origin.last();
        assert_eq!((seen.method.as_str(), seen.uri.as_str()), (method, path));
    }

    // A file deployed later is served once the directory is read again.
    std::fs::write(root.path().join("new.css"), "body{}").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let before = origin.hits();
        let r = get("/new.css").await.unwrap();
        if origin.hits() == before {
            assert_eq!(r.text().await.unwrap(), "body{}");
            break;
        }
        assert!(Instant::now() < deadline, "new.css never served from disk");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn try_files_is_checked_when_the_file_is_read() {
    let root = site();
    let r = root.path().display();
    for (route, says) in [
        (
            format!("respond = {{ body = \"x\" }}\ntry_files = {{ root = \"{r}\" }}"),
            "try_files applies only to upstream routes",
        ),
        (
            format!(
                "upstream = \"app\"\ntry_files = {{ root = \"{r}\", fallback = \"index.html\" }}"
            ),
            "try_files takes root, index, expires and immutable",
        ),
        (
            "upstream = \"app\"\ntry_files = { index = \"index.html\" }".to_string(),
            "root",
        ),
        (
            format!("static = {{ root = \"{r}\", index = false }}"),
            "index = false applies to try_files only",
        ),
    ] {
        let err = check_refuses(&format!(
            "[upstreams.app]\nservers = [{{ addr = \"127.0.0.1:1\" }}]\n\
             [[servers]]\nlisten = [\"127.0.0.1:{{PORT}}\"]\n[[servers.routes]]\nprefix = \"/\"\n{route}\n"
        ));
        assert!(err.contains(says), "{route}: {err}");
    }
}
