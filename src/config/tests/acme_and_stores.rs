//! `[acme]`, `tls.acme` and Redis-backed rate-limit zones: checked without
//! contacting anything.

use super::*;

/// A TLS server with these `[servers.tls]` keys and `hosts` line.
fn server(tls: &str, hosts: &str) -> String {
    format!(
        "[[servers]]\nlisten = [\"127.0.0.1:8443\"]\n{hosts}\n[servers.tls]\n{tls}\n[[servers.routes]]\nprefix = \"/\"\nrespond = {{ body = \"x\" }}\n"
    )
}

/// `[acme]` with a storage and these keys.
fn acme(keys: &str) -> String {
    format!("[acme]\nstorage = \"/tmp/rampart-acme-test\"\n{keys}\n")
}

const HOSTS: &str = "hosts = [\"example.com\", \"www.example.com\"]";

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
    let hosts = HOSTS;
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
}

#[test]
fn tls_acme_needs_acme_and_plain_names() {
    let hosts = HOSTS;
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
