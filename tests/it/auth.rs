//! `[auth.*]`: htpasswd users and forward auth, as a client and the
//! upstream see them; `rampart_auth_denied_total`.

use std::time::{Duration, Instant};

use crate::common::*;

/// ann (bcrypt, as `htpasswd -B` writes it), bob (apr1), cat (SHA-512-crypt).
fn htpasswd_file(dir: &std::path::Path) -> std::path::PathBuf {
    let ann = bcrypt::hash_with_result("hunter2", 4)
        .unwrap()
        .format_for_version(bcrypt::Version::TwoY);
    let text = format!(
        "# written by htpasswd\nann:{ann}\nbob:$apr1$saltsalt$LrttParrLPdxvgutaSXWJ0\n\n\
         cat:$6$rounds=1000$abc$yxe0KSjmoHd8rpohJgwvF5lnIQ/9t.klcz24a1cca3nWm.PLUmhXgcGgKWCoRFHRHYxXj4SVEtjCnCAwaFY0V0\n"
    );
    let path = dir.join("htpasswd");
    std::fs::write(&path, text).unwrap();
    path
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {token}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn htpasswd_users_get_in_and_everyone_else_gets_401() {
    let dir = tempfile::tempdir().unwrap();
    let file = htpasswd_file(dir.path());
    let origin = Origin::start("app").await;
    let g = Gateway::start(
        &Config::new()
            .table(&format!(
                "[auth.admins]\nhtpasswd = \"{0}\"\nrealm = \"admin\"\n\n\
                 [auth.keep]\nhtpasswd = \"{0}\"\nforward_credentials = true",
                file.display()
            ))
            .upstream("app", origin.addr, "")
            .server("auth = \"admins\"")
            .route("prefix = \"/open/\"\nupstream = \"app\"\nauth = false")
            .route("prefix = \"/keep/\"\nupstream = \"app\"\nauth = \"keep\"")
            .proxy("/", "app")
            .build(),
    );
    let c = client();
    let get = |path: &'static str, auth: Option<String>| {
        let mut req = c.get(g.url(path));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        async move { req.send().await.unwrap() }
    };
    for auth in [
        None,
        Some(basic("ann", "wrong")),
        Some(basic("nobody", "hunter2")),
        Some("Basic !!!".to_string()),
        Some("Bearer hunter2".to_string()),
    ] {
        let r = get("/admin", auth.clone()).await;
        assert_eq!(r.status(), 401, "{auth:?}");
        assert_eq!(
            r.headers()["www-authenticate"],
            "Basic realm=\"admin\"",
            "{auth:?}"
        );
    }
    assert_eq!(origin.hits(), 0, "a refused request reached the upstream");

    for (user, password) in [("ann", "hunter2"), ("bob", "secret"), ("cat", "pw")] {
        // Twice: a remembered credential admits as a verified one does
        // (the cache itself is unit-tested in auth::verifier).
        for _ in 0..2 {
            let r = get("/admin", Some(basic(user, password))).await;
            assert_eq!(r.status(), 200, "{user}");
            assert_eq!(
                origin.last().header("authorization"),
                None,
                "the credentials reached the upstream"
            );
        }
    }
    let r = get("/keep/x", Some(basic("bob", "secret"))).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        origin.last().header("authorization"),
        Some(basic("bob", "secret").as_str()),
        "forward_credentials = true keeps them"
    );
    assert_eq!(get("/keep/x", None).await.status(), 401);
    assert_eq!(get("/open/x", None).await.status(), 200);

    let m = g.metrics().await;
    assert!(
        m.contains(
            "rampart_auth_denied_total{reason=\"credentials\",route=\"prefix:/\",server=\"main\"} 5"
        ),
        "{m}"
    );
    assert!(m.contains(
        "rampart_auth_denied_total{reason=\"credentials\",route=\"prefix:/keep/\",server=\"main\"} 1"
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_tables_are_checked_when_the_file_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("htpasswd");
    std::fs::write(
        &bad,
        "ann:$apr1$saltsalt$LrttParrLPdxvgutaSXWJ0\n# ok\nbob:secret\n",
    )
    .unwrap();
    let route = "[[servers.routes]]\nprefix = \"/\"\nrespond = { body = \"x\" }";
    for (tables, says) in [
        (
            format!("[auth.a]\nhtpasswd = \"{}\"", bad.display()),
            format!("{}:3: plain-text or DES-crypt password", bad.display()),
        ),
        (
            format!("[auth.a]\nhtpasswd = \"{}/none\"", dir.path().display()),
            "cannot read".to_string(),
        ),
        (
            "[auth.a]\nrealm = \"x\"".to_string(),
            "auth.a needs exactly one of htpasswd".to_string(),
        ),
        (
            "[auth.a]\nforward = \"ftp://x/\"".to_string(),
            "must start with http:// or https://".to_string(),
        ),
        (
            "[auth.a]\nforward = \"http://127.0.0.1:9/\"\nrealm = \"x\"".to_string(),
            "auth.a.realm applies to htpasswd auth only".to_string(),
        ),
        (
            "[auth.a]\nforward = \"http://127.0.0.1:9/\"\ncopy_headers = [\"bad header\"]"
                .to_string(),
            "invalid header name \"bad header\"".to_string(),
        ),
    ] {
        let err = check_refuses(&format!("{}\n{route}\nauth = \"a\"", base_with(&tables)));
        assert!(err.contains(&says), "{tables}: {err}");
    }
    let err = check_refuses(&format!("{}\n{route}\nauth = \"nope\"", base_with("")));
    assert!(
        err.contains("undefined auth \"nope\" (define it as [auth.nope])"),
        "{err}"
    );
}

/// A file with `tables` and one server, its routes to follow.
fn base_with(tables: &str) -> String {
    format!("{tables}\n[[servers]]\nname = \"main\"\nlisten = [\"127.0.0.1:{{PORT}}\"]\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_auth_admits_refuses_and_fails_closed() {
    let sso = AuthService::start().await;
    let origin = Origin::start("app").await;
    let closed = free_port();
    let g = Gateway::start(
        &Config::new()
            .table(&format!(
                "[auth.sso]\nforward = \"http://{}/oauth2/auth?rd=1\"\n\
                 copy_headers = [\"X-Auth-Request-User\", \"X-Auth-Request-Email\"]\ntimeout = \"1s\"\n\n\
                 [auth.down]\nforward = \"http://127.0.0.1:{closed}/auth\"",
                sso.addr
            ))
            .upstream("app", origin.addr, "")
            .route("prefix = \"/down/\"\nupstream = \"app\"\nauth = \"down\"")
            .route("prefix = \"/\"\nupstream = \"app\"\nauth = \"sso\"")
            .build(),
    );
    let c = client();
    let port = g.port;

    // Admitted: the answer's headers replace what the client sent.
    let r = c
        .post(g.url("/app/page?q=1"))
        .header("cookie", "session=ann; theme=dark")
        .header("authorization", "Bearer t0k")
        .header("x-auth-request-user", "mallory")
        .body("payload")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let asked = sso.last();
    assert_eq!(
        (asked.method.as_str(), asked.uri.as_str()),
        ("GET", "/oauth2/auth?rd=1")
    );
    assert_eq!(asked.header("x-forwarded-method"), Some("POST"));
    assert_eq!(asked.header("x-forwarded-uri"), Some("/app/page?q=1"));
    let host = format!("127.0.0.1:{port}");
    assert_eq!(asked.header("x-forwarded-host"), Some(host.as_str()));
    assert_eq!(asked.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(asked.header("cookie"), Some("session=ann; theme=dark"));
    assert_eq!(asked.header("authorization"), Some("Bearer t0k"));
    let got = origin.last();
    assert_eq!(got.header("x-auth-request-user"), Some("ann"));
    assert_eq!(got.header("x-auth-request-email"), Some("ann@example.com"));
    assert_eq!(got.header("authorization"), None);
    assert_eq!((got.method.as_str(), got.body_len), ("POST", 7));

    // A header the answer lacks is removed: no posing as a user.
    let r = c
        .get(g.url("/x"))
        .header("cookie", "session=bob")
        .header("x-auth-request-email", "boss@example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let got = origin.last();
    assert_eq!(got.header("x-auth-request-user"), Some("bob"));
    assert_eq!(got.header("x-auth-request-email"), None);
    let hits = origin.hits();

    // Refused: the service's 401 and 403 reach the client as they are.
    let r = c.get(g.url("/x")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"sso\"");
    assert_eq!(r.headers()["content-type"], "text/html");
    let cookies: Vec<_> = r.headers().get_all("set-cookie").iter().collect();
    assert_eq!(cookies, ["csrf=1; Path=/", "next=/app; Path=/"]);
    assert_eq!(
        r.text().await.unwrap(),
        "<a href=\"/login\">login first</a>"
    );
    let r = c
        .get(g.url("/x"))
        .header("cookie", "session=banned")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.text().await.unwrap(), "banned");

    // Anything else, no answer in time, no service: 500.
    let r = c
        .get(g.url("/x"))
        .header("cookie", "session=moved")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    // The service's own 500: rampart's 500, not the service's body.
    let r = c
        .get(g.url("/x"))
        .header("cookie", "session=broken")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    assert!(!r.text().await.unwrap().contains("auth service error"));
    let start = Instant::now();
    let r = c
        .get(g.url("/x"))
        .header("cookie", "session=slow")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    assert!(
        start.elapsed() < Duration::from_millis(2500),
        "{:?}",
        start.elapsed()
    );
    let r = c.get(g.url("/down/x")).send().await.unwrap();
    assert_eq!(r.status(), 500);
    assert_eq!(
        origin.hits(),
        hits,
        "a refused request reached the upstream"
    );
    assert_eq!(sso.asked(), 7, "one auth request per client request");

    let m = g.metrics().await;
    for (route, reason, n) in [
        ("prefix:/", "forward", 2),
        ("prefix:/", "forward_error", 3),
        ("prefix:/down/", "forward_error", 1),
    ] {
        let line =
            format!("rampart_auth_denied_total{{reason=\"{reason}\",route=\"{route}\",server=\"main\"}} {n}");
        assert!(m.contains(&line), "{line}\n{m}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_and_deny_refusals_are_counted() {
    let origin = Origin::start("app").await;
    let g = Gateway::start(
        &Config::new()
            .upstream("app", origin.addr, "")
            .route("prefix = \"/\"\nupstream = \"app\"\ndeny = [\"127.0.0.1\"]")
            .build(),
    );
    let r = client().get(g.url("/x")).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let m = g.metrics().await;
    assert!(
        m.contains("rampart_auth_denied_total{reason=\"ip\",route=\"prefix:/\",server=\"main\"} 1"),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_added_and_changed_by_a_reload() {
    let sso = AuthService::start().await;
    let origin = Origin::start("app").await;
    let dir = tempfile::tempdir().unwrap();
    let file = htpasswd_file(dir.path());
    let with = |table: &str| {
        Config::new()
            .table(table)
            .upstream("app", origin.addr, "")
            .route("prefix = \"/\"\nupstream = \"app\"\nauth = \"a\"")
            .build()
    };
    let g = Gateway::start(
        &Config::new()
            .upstream("app", origin.addr, "")
            .proxy("/", "app")
            .build(),
    );
    assert_eq!(g.text("/x").await, "origin app");
    // The auth service's login page: forward auth is in force.
    let forward = format!("[auth.a]\nforward = \"http://{}/check\"", sso.addr);
    g.reload_to(&with(&forward), "/x", "<a href=\"/login\">login first</a>")
        .await;
    // rampart's own 401: an htpasswd table of the same name replaced it.
    let users = format!("[auth.a]\nhtpasswd = \"{}\"", file.display());
    g.reload_to(&with(&users), "/x", "401 Unauthorized\n").await;
    let r = client()
        .get(g.url("/x"))
        .header("authorization", basic("bob", "secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
