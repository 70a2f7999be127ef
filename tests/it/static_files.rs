//! Static files: content, validators, ranges, precompressed siblings,
//! directory index, and no way out of the root.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use crate::common::*;

struct Site {
    _dir: tempfile::TempDir,
    g: Gateway,
}

fn site() -> Site {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("public");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::create_dir_all(root.join("empty-dir")).unwrap();
    std::fs::write(root.join("index.html"), "<h1>home</h1>").unwrap();
    std::fs::write(root.join("app.js"), "console.log('plain')").unwrap();
    std::fs::write(root.join("app.js.gz"), "GZIP-BYTES").unwrap();
    std::fs::write(root.join("app.js.br"), "BROTLI-BYTES").unwrap();
    std::fs::write(root.join("style.css"), "body{}").unwrap();
    std::fs::write(root.join("sub/index.html"), "<h1>sub</h1>").unwrap();
    std::fs::write(root.join("digits.txt"), "0123456789").unwrap();
    let big: Vec<u8> = (0..32u32 << 20).map(|i| (i % 251) as u8).collect();
    std::fs::write(root.join("big.bin"), &big).unwrap();
    // A secret next to the root, and links that lead to it.
    std::fs::write(dir.path().join("secret.txt"), "TOP-SECRET-BYTES").unwrap();
    std::fs::write(dir.path().join("public-secret.txt"), "TOP-SECRET-BYTES").unwrap();
    std::os::unix::fs::symlink(dir.path().join("secret.txt"), root.join("link-out.txt")).unwrap();
    std::os::unix::fs::symlink(dir.path(), root.join("dir-out")).unwrap();
    std::os::unix::fs::symlink(root.join("style.css"), root.join("link-in.css")).unwrap();
    let toml = Config::new()
        .route(&format!(
            "prefix = \"/static/\"\nstatic = {{ root = \"{}\", expires = \"1y\", immutable = true }}",
            root.display()
        ))
        .build();
    let g = Gateway::start(&toml);
    Site { _dir: dir, g }
}

fn raw(port: u16, path: &str) -> Vec<u8> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_types_index_and_cache_headers() {
    let s = site();
    let c = client();
    let get = |p: &str| c.get(s.g.url(p)).send();
    let r = get("/static/app.js").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(
        r.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert!(r.headers().contains_key("expires"));
    assert!(r.headers().contains_key("etag"));
    assert!(r.headers().contains_key("last-modified"));
    assert_eq!(r.headers()["accept-ranges"], "bytes");
    assert_security_headers(&header_map(&r));
    assert_eq!(r.text().await.unwrap(), "console.log('plain')");
    assert_eq!(
        get("/static/style.css").await.unwrap().headers()["content-type"],
        "text/css; charset=utf-8"
    );
    assert_eq!(
        get("/static/").await.unwrap().text().await.unwrap(),
        "<h1>home</h1>"
    );
    assert_eq!(
        get("/static/sub/").await.unwrap().text().await.unwrap(),
        "<h1>sub</h1>"
    );
    let r = get("/static/sub?x=1").await.unwrap();
    assert_eq!(r.status(), 301);
    assert_eq!(r.headers()["location"], "/static/sub/?x=1");
    assert_eq!(get("/static/empty-dir/").await.unwrap().status(), 404);
    assert_eq!(get("/static/missing.txt").await.unwrap().status(), 404);
    assert_eq!(
        get("/static/link-in.css").await.unwrap().status(),
        200,
        "links inside the root are fine"
    );
    let r = c.head(s.g.url("/static/app.js")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], "20");
    assert_eq!(r.bytes().await.unwrap().len(), 0);
    assert_eq!(
        c.post(s.g.url("/static/app.js"))
            .send()
            .await
            .unwrap()
            .status(),
        405
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validators_and_ranges() {
    let s = site();
    let c = client();
    let r = c.get(s.g.url("/static/digits.txt")).send().await.unwrap();
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let lm = r.headers()["last-modified"].to_str().unwrap().to_string();
    let r = c
        .get(s.g.url("/static/digits.txt"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    assert_eq!(r.headers()["etag"], etag.as_str());
    assert_security_headers(&header_map(&r));
    let r = c
        .get(s.g.url("/static/digits.txt"))
        .header("if-modified-since", &lm)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    let r = c
        .get(s.g.url("/static/digits.txt"))
        .header("if-none-match", "\"other\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .get(s.g.url("/static/digits.txt"))
        .header("range", "bytes=2-5")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-range"], "bytes 2-5/10");
    assert_eq!(r.text().await.unwrap(), "2345");
    let r = c
        .get(s.g.url("/static/digits.txt"))
        .header("range", "bytes=-3")
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "789");
    let r = c
        .get(s.g.url("/static/digits.txt"))
        .header("range", "bytes=50-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416);
    assert_eq!(r.headers()["content-range"], "bytes */10");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn precompressed_siblings_when_accepted() {
    let s = site();
    let c = client();
    let get = |ae: &'static str| {
        c.get(s.g.url("/static/app.js"))
            .header("accept-encoding", ae)
            .send()
    };
    let r = get("gzip, br").await.unwrap();
    assert_eq!(r.headers()["content-encoding"], "br");
    assert_eq!(r.headers()["vary"], "Accept-Encoding");
    assert_eq!(
        r.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"BROTLI-BYTES");
    let r = get("gzip").await.unwrap();
    assert_eq!(r.headers()["content-encoding"], "gzip");
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"GZIP-BYTES");
    let r = get("br;q=0, gzip;q=0").await.unwrap();
    assert!(r.headers().get("content-encoding").is_none());
    assert_eq!(r.text().await.unwrap(), "console.log('plain')");
    // A range is served from the file itself.
    let r = c
        .get(s.g.url("/static/app.js"))
        .header("accept-encoding", "br")
        .header("range", "bytes=0-6")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.text().await.unwrap(), "console");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_path_leaves_the_root() {
    let s = site();
    let hostile = [
        "/static/../secret.txt",
        "/static/..%2fsecret.txt",
        "/static/%2e%2e/secret.txt",
        "/static/%2e%2e%2fsecret.txt",
        "/static/%2E%2E/secret.txt",
        "/static/..%2Fsecret.txt",
        "/static/sub/../../secret.txt",
        "/static/./../secret.txt",
        "/static//../secret.txt",
        "/static/%252e%252e/secret.txt",
        "/static/..\\secret.txt",
        "/static/link-out.txt",
        "/static/dir-out/secret.txt",
        "/static/dir-out/public-secret.txt",
        "/static/%00/../secret.txt",
        "/static/secret.txt%00.html",
        "/static/../public-secret.txt",
        "/static/.%2e/secret.txt",
        "/static/%c0%ae%c0%ae/secret.txt",
        "/static/sub/%2e%2e/%2e%2e/secret.txt",
        "/static/....//secret.txt",
        "/../static/../secret.txt",
        "/static/dir-out/../secret.txt",
    ];
    let port = s.g.port;
    let mut statuses = Vec::new();
    for p in hostile {
        let out = tokio::task::spawn_blocking(move || raw(port, p))
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&out).into_owned();
        assert!(!text.contains("TOP-SECRET"), "{p} leaked:\n{text}");
        statuses.push((p, text.lines().next().unwrap_or("").to_string()));
    }
    for (p, line) in &statuses {
        assert!(
            line.starts_with("HTTP/1.1 400") || line.starts_with("HTTP/1.1 404"),
            "{p}: {line}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_files_stream_in_constant_memory() {
    let s = site();
    let rss = |pid: u32| -> u64 {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap()
            .lines()
            .find_map(|l| {
                l.strip_prefix("VmRSS:").map(|v| {
                    v.trim()
                        .trim_end_matches(" kB")
                        .trim()
                        .parse::<u64>()
                        .unwrap()
                })
            })
            .unwrap()
    };
    let before = rss(s.g.pid());
    let mut r = client()
        .get(s.g.url("/static/big.bin"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["content-length"],
        (32u64 << 20).to_string().as_str()
    );
    let mut got = 0usize;
    let mut peak = before;
    let t = Instant::now();
    while let Some(chunk) = r.chunk().await.unwrap() {
        for (i, b) in chunk.iter().enumerate() {
            assert_eq!(*b as usize, (got + i) % 251);
        }
        got += chunk.len();
        if got % (4 << 20) < chunk.len() {
            peak = peak.max(rss(s.g.pid()));
            // A slow reader: rampart must not buffer the file ahead.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert_eq!(got, 32 << 20);
    assert!(
        peak - before < 12 * 1024,
        "RSS grew by {} KiB for a 32 MiB file",
        peak - before
    );
    assert!(t.elapsed() < Duration::from_secs(20));
}

/// RFC 9112 §9.3: an HTTP/1.0 request without `Connection: keep-alive`
/// gets its file and the connection closes at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http10_file_answers_close_the_connection() {
    let site = site();
    let port = site.g.port;
    let (got, took) = tokio::task::spawn_blocking(move || {
        exchange_until_close(port, b"GET /static/digits.txt HTTP/1.0\r\nHost: x\r\n\r\n")
    })
    .await
    .unwrap();
    assert!(took < Duration::from_secs(3), "left open: {got}");
    assert!(got.ends_with("\r\n\r\n0123456789"), "{got}");
    assert!(!got.to_ascii_lowercase().contains("keep-alive"), "{got}");
}

fn dot_site(extra: &str) -> (tempfile::TempDir, Gateway) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("public");
    std::fs::create_dir_all(root.join(".git")).unwrap();
    std::fs::create_dir_all(root.join(".well-known/acme-challenge")).unwrap();
    std::fs::write(root.join(".env"), "SECRET=1").unwrap();
    std::fs::write(root.join(".git/config"), "[core]").unwrap();
    std::fs::write(root.join(".well-known/acme-challenge/tok"), "tok.thumb").unwrap();
    std::fs::write(root.join("a.txt"), "a").unwrap();
    let toml = format!(
        "[log]\nlevel = \"warn\"\naccess_log = \"off\"\n[[servers]]\nlisten = [\"127.0.0.1:{{PORT}}\"]\n[[servers.routes]]\nprefix = \"/\"\nstatic = {{ root = \"{}\"{extra} }}\n",
        root.display()
    );
    let g = Gateway::start(&toml);
    (dir, g)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dotfiles_are_hidden_unless_asked_for() {
    let (_d, g) = dot_site("");
    let c = client();
    let status = |p: &'static str| {
        let c = c.clone();
        let url = g.url(p);
        async move { c.get(url).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status("/.env").await, 404);
    assert_eq!(status("/.git/config").await, 404);
    assert_eq!(status("/%2egit/config").await, 404);
    assert_eq!(status("/a.txt").await, 200);
    assert_eq!(
        status("/.well-known/acme-challenge/tok").await,
        200,
        "RFC 8615"
    );
    drop(g);
    let (_d, g) = dot_site(", dotfiles = true");
    assert_eq!(c.get(g.url("/.env")).send().await.unwrap().status(), 200);
}

/// A directory of the path exchanged (atomically, `RENAME_EXCHANGE`) with a
/// symlink leading out of the root, over and over while requests come in:
/// whatever was checked before the open, never is a byte from outside
/// served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlink_swapped_in_during_requests_never_leads_out() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("public");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(root.join("d")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("f.txt"), "OUTSIDE").unwrap();
    std::fs::write(root.join("d/f.txt"), "inside").unwrap();
    std::os::unix::fs::symlink("../outside", root.join("rel")).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("abs")).unwrap();
    let toml = format!(
        "[log]\nlevel = \"warn\"\naccess_log = \"off\"\n[[servers]]\nlisten = [\"127.0.0.1:{{PORT}}\"]\n[[servers.routes]]\nprefix = \"/\"\nstatic = {{ root = \"{}\" }}\n",
        root.display()
    );
    let g = Gateway::start(&toml);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let (stop, root) = (stop.clone(), root.clone());
        std::thread::spawn(move || {
            use rustix::fs::{renameat_with, RenameFlags, CWD};
            let mut n = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 1_000_000 {
                // d is the directory, then the relative link out, then
                // the directory again, then the absolute link out...
                let other = if n % 4 < 2 { "rel" } else { "abs" };
                let _ = renameat_with(
                    CWD,
                    root.join("d"),
                    CWD,
                    root.join(other),
                    RenameFlags::EXCHANGE,
                );
                n += 1;
            }
        })
    };
    let c = client();
    let (mut inside, mut leaked) = (0, 0);
    for _ in 0..600 {
        let r = c.get(g.url("/d/f.txt")).send().await.unwrap();
        match r.text().await.unwrap().as_str() {
            "inside" => inside += 1,
            "OUTSIDE" => leaked += 1,
            _ => {}
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    swapper.join().unwrap();
    assert_eq!(leaked, 0, "served from outside the root ({inside} inside)");
    assert!(inside > 0, "the directory was served at times");
}

/// A single-page app: paths with no file get the fallback (the app's
/// router decides); files, dotfiles and ways out of the root do not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_with_no_file_gets_the_fallback() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("spa");
    std::fs::create_dir_all(root.join("assets")).unwrap();
    std::fs::create_dir_all(root.join("empty")).unwrap();
    std::fs::write(root.join("index.html"), "<app/>").unwrap();
    std::fs::write(root.join("assets/app.js"), "js").unwrap();
    std::fs::write(root.join(".env"), "SECRET=1").unwrap();
    std::fs::write(dir.path().join("outside.txt"), "outside").unwrap();
    std::os::unix::fs::symlink(dir.path().join("outside.txt"), root.join("out.txt")).unwrap();
    let g = Gateway::start(
        &Config::new()
            .route(&format!(
                "prefix = \"/\"\nstatic = {{ root = \"{}\", fallback = \"index.html\" }}",
                root.display()
            ))
            .build(),
    );
    let c = client();
    let get = |p: &'static str| {
        let req = c.get(g.url(p));
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    assert_eq!(get("/assets/app.js").await, (200, "js".into()));
    assert_eq!(get("/users/42").await, (200, "<app/>".into()));
    assert_eq!(get("/assets/missing.js").await, (200, "<app/>".into()));
    assert_eq!(
        get("/empty/").await,
        (200, "<app/>".into()),
        "a directory without index"
    );
    assert_eq!(get("/.env").await.0, 404, "dotfiles stay hidden");
    assert_eq!(
        get("/out.txt").await.0,
        404,
        "a link out of root is refused, not a miss"
    );
    let r = c.post(g.url("/users/42")).send().await.unwrap();
    assert_eq!(r.status(), 405);
}
