use super::*;

mod later_features;

#[test]
fn listen_forms() {
    let l = |s: &str| parse_listen(&s.split(' ').map(String::from).collect::<Vec<_>>());
    assert_eq!(l("80").unwrap().addr, "0.0.0.0:80");
    assert_eq!(l("*:8080").unwrap().addr, "0.0.0.0:8080");
    assert_eq!(l("[::]:443 ssl").unwrap().addr, "[::]:443");
    assert!(l("[::]:443 ssl").unwrap().ssl);
    assert_eq!(l("127.0.0.1").unwrap().addr, "127.0.0.1:80");
    let x = l("443 ssl http2 default_server").unwrap();
    assert!(x.ssl && x.http2 && x.default);
    assert!(l("unix:/run/x.sock").is_err());
    assert!(l("443 quic").is_err());
}

#[test]
fn location_modifiers() {
    let m = |s: &str| location_matcher(&s.split(' ').map(String::from).collect::<Vec<_>>());
    assert_eq!(m("= /x").unwrap().0, k::EXACT);
    assert_eq!(m("=/x").unwrap().1, "/x");
    assert_eq!(m("~ ^/a").unwrap(), (k::REGEX, "^/a".into(), None));
    assert_eq!(m("~* \\.png$").unwrap().1, "(?i)\\.png$");
    assert!(m("^~ /img/").unwrap().2.is_some());
    assert_eq!(m("/api/").unwrap().0, k::PREFIX);
    assert!(m("@fallback").is_err());
}

#[test]
fn redirect_variables() {
    assert_eq!(
        translate_vars("https://$host$request_uri").as_deref(),
        Some("https://{host}{uri}")
    );
    assert_eq!(
        translate_vars("https://${host}/new$uri?$args").as_deref(),
        Some("https://{host}/new{path}?{query}")
    );
    assert_eq!(translate_vars("https://$cookie_x/"), None);
    assert_eq!(translate_vars("https://$hostname/"), None);
    assert_eq!(translate_vars("https://${host"), None);
    assert!(is_https_redirect(&[
        "301".into(),
        "https://$server_name$request_uri".into()
    ]));
    assert!(!is_https_redirect(&[
        "302".into(),
        "https://$host$request_uri".into()
    ]));
}

#[test]
fn options_idiom() {
    let args: Vec<String> = ["($request_method", "=", "OPTIONS", ")"]
        .map(String::from)
        .to_vec();
    assert!(is_options_check(&args));
    let args: Vec<String> = ["($request_method", "=", "POST)"]
        .map(String::from)
        .to_vec();
    assert!(!is_options_check(&args));
}

/// Imports `conf` (as `t.conf`) and parses the output as TOML.
fn imp(conf: &str) -> (String, toml_edit::DocumentMut, Vec<String>) {
    let tree = super::super::parse::parse_str(conf, std::sync::Arc::from("t.conf")).unwrap();
    let opts = Options::default();
    let t = Translator::new(&opts, Path::new("t.conf")).translate(&tree);
    let text = super::super::toml_out::render(&t.tables);
    let doc = text.parse().unwrap_or_else(|e| panic!("{e}\n{text}"));
    (text, doc, t.warnings)
}

/// Whether a warning was given at `line` of `t.conf` mentioning `what`.
fn warned(warnings: &[String], line: u32, what: &str) -> bool {
    let at = format!("t.conf:{line}:");
    warnings
        .iter()
        .any(|w| w.starts_with(&at) && w.contains(what))
}

fn routes(doc: &toml_edit::DocumentMut, server: usize) -> Vec<&toml_edit::Table> {
    doc["servers"][server]["routes"]
        .as_array_of_tables()
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

#[test]
fn default_server_comes_first_and_mixed_listens_split() {
    let (_, doc, _) = imp("server { listen 80; server_name a.test; return 200 a; }\n\
         server { listen 80 default_server; listen 443 ssl; server_name b.test; \
                  ssl_certificate /c/b.pem; ssl_certificate_key /c/b.key; \
                  location / { proxy_pass http://127.0.0.1:9000; } }\n");
    let names: Vec<&str> = doc["servers"]
        .as_array_of_tables()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["b.test-http", "a.test", "b.test"]);
    assert!(doc["servers"][0].get("tls").is_none());
    assert_eq!(doc["servers"][2]["tls"]["cert"].as_str(), Some("/c/b.pem"));
    assert_eq!(
        routes(&doc, 0)[0]["upstream"].as_str(),
        Some("127_0_0_1_9000")
    );
    assert_eq!(
        routes(&doc, 2)[0]["upstream"].as_str(),
        Some("127_0_0_1_9000")
    );
    assert_eq!(routes(&doc, 1)[0]["respond"]["body"].as_str(), Some("a"));
}

#[test]
fn inheritance_follows_nginx() {
    let (text, doc, _) = imp(
        "limit_req_zone $binary_remote_addr zone=z:1m rate=2r/s;\n\
         server { listen 80;\n\
           limit_req zone=z burst=3;\n\
           proxy_read_timeout 90s;\n\
           add_header X-Custom one always;\n\
           location /a/ { proxy_pass http://127.0.0.1:1; }\n\
           location /b/ { limit_req zone=z delay=2 burst=9; limit_req_status 503; add_header X-B two; proxy_pass http://127.0.0.1:1; }\n\
           location /health { access_log off; proxy_pass http://127.0.0.1:1; expires 1h; }\n\
         }\n",
    );
    let r = routes(&doc, 0);
    assert_eq!(r[0]["rate_limit"]["burst"].as_integer(), Some(3));
    assert!(r[0]["rate_limit"].get("nodelay").is_none());
    assert_eq!(r[0]["read_timeout"].as_str(), Some("90s"));
    assert_eq!(r[1]["rate_limit"]["delay"].as_integer(), Some(2));
    assert_eq!(r[1]["rate_limit"]["status"].as_integer(), Some(503));
    assert_eq!(r[1]["response_headers"]["X-B"].as_str(), Some("two"));
    assert_eq!(
        doc["servers"][0]["response_headers"]["X-Custom"].as_str(),
        Some("one")
    );
    assert!(text.contains("replaced the inherited X-Custom"), "{text}");
    assert_eq!(r[2]["access_log"].as_bool(), Some(false));
    assert_eq!(
        r[2]["response_headers"]["Cache-Control"].as_str(),
        Some("max-age=3600")
    );
    assert!(text.contains("nginx refused with 503"), "{text}");
    // Both upstream addresses are one made-up upstream.
    assert_eq!(doc["upstreams"].as_table().unwrap().len(), 1);
}

#[test]
fn what_rampart_cannot_do_is_noted_where_it_was() {
    let (text, doc, warnings) = imp("server { listen 80;\n\
           location ^~ /img/ { root /srv; }\n\
           location /app/ { proxy_pass http://127.0.0.1:1/v2/; }\n\
           location ~ (?<=x)y { return 204; }\n\
           location @named { return 404; }\n\
           if ($host = x) { return 404; }\n\
         }\n");
    let r = routes(&doc, 0);
    assert_eq!(r.len(), 2);
    assert_eq!(r[0]["static"]["root"].as_str(), Some("/srv/img"));
    assert!(text.contains("^~ (no regex check"), "{text}");
    // A proxy_pass URI under a prefix location is a prefix rewrite now.
    assert_eq!(r[1]["rewrite_prefix"].as_str(), Some("/v2/"), "{text}");
    assert!(warned(&warnings, 4, "regex"), "{warnings:?}");
    assert!(text.contains("named locations"), "{text}");
    assert!(
        text.contains("# not imported: if ($host = x) (line 6) — no scripting"),
        "{text}"
    );
}

#[test]
fn upstream_options() {
    let (text, doc, _) = imp(
        "upstream u { ip_hash; server a.internal weight=3 max_fails=2 fail_timeout=5s; server b.internal:81 down; server c.internal:82 backup max_fails=2 fail_timeout=5s; }\n\
         server { listen 80; location / { proxy_pass https://u; } real_ip_header X-Forwarded-For; set_real_ip_from 10.0.0.0/8; }\n",
    );
    let u = &doc["upstreams"]["u"];
    let servers = u["servers"].as_array().unwrap();
    assert_eq!(servers.len(), 2);
    let first = servers.get(0).unwrap().as_inline_table().unwrap();
    assert_eq!(first.get("addr").unwrap().as_str(), Some("a.internal:80"));
    assert_eq!(first.get("weight").unwrap().as_integer(), Some(3));
    assert_eq!(u["max_fails"].as_integer(), Some(2));
    assert_eq!(u["fail_timeout"].as_str(), Some("5s"));
    assert_eq!(u["tls"].as_bool(), Some(true));
    assert!(text.contains("not imported: ip_hash"), "{text}");
    assert!(text.contains("server b.internal:81 down"), "{text}");
    // set_real_ip_from inside a server block is not the http level.
    assert!(doc.get("global").is_none() || doc["global"].get("trusted_proxies").is_none());
}

#[test]
fn repeated_directives_never_repeat_a_toml_key() {
    let (text, doc, _) = imp(
        "worker_processes 2; worker_processes 4;\n\
         http { access_log /a.log; access_log /b.log;\n\
         limit_req_zone $binary_remote_addr zone=z:1m rate=1r/s;\n\
         limit_req_zone $binary_remote_addr zone=z:2m rate=2r/s;\n\
         upstream u { server 127.0.0.1:1; }\n\
         upstream u { server 127.0.0.1:2; }\n\
         server { listen 80; add_header Link a; add_header Link b;\n\
           location / { add_header X-A 1; add_header X-A 2; expires 1m; proxy_pass http://u; } } }\n",
    );
    assert_eq!(doc["global"]["threads"].as_integer(), Some(4));
    assert_eq!(doc["rate_limits"]["z"]["rate"].as_str(), Some("1r/s"));
    assert!(
        text.contains("a zone of this name is already defined"),
        "{text}"
    );
    assert!(
        text.contains("an upstream of this name is already defined"),
        "{text}"
    );
    assert_eq!(
        doc["servers"][0]["response_headers"]["Link"].as_str(),
        Some("a, b")
    );
    let r = routes(&doc, 0);
    assert_eq!(r[0]["response_headers"]["X-A"].as_str(), Some("1, 2"));
    assert_eq!(
        r[0]["response_headers"]["Cache-Control"].as_str(),
        Some("max-age=60")
    );
}

#[test]
fn access_rules_fail_closed_and_other_protocols_are_left_out() {
    let (text, doc, warnings) = imp("server { listen 80; root /var/www;\n\
           location ~ \\.php$ { fastcgi_pass unix:/run/php.sock; }\n\
           location ~ /\\.git { deny all; }\n\
           location /admin/ { auth_basic \"x\"; proxy_pass http://127.0.0.1:1; }\n\
           location /private/ { internal; }\n\
           location /metrics { allow 10.0.0.0/8; deny all; proxy_pass http://127.0.0.1:1; }\n\
           location /api/ { proxy_pass http://127.0.0.1:1; }\n\
         }\n");
    let r = routes(&doc, 0);
    let kinds: Vec<(String, Option<i64>)> = r
        .iter()
        .map(|t| {
            let m = ["exact", "prefix", "regex"]
                .iter()
                .find_map(|k| t.get(k).and_then(|v| v.as_str()))
                .unwrap_or_default()
                .to_string();
            (m, t.get("respond").and_then(|v| v["status"].as_integer()))
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("/\\.git".to_string(), None),
            ("/admin/".to_string(), Some(403)),
            ("/private/".to_string(), Some(404)),
            ("/metrics".to_string(), None),
            ("/api/".to_string(), None),
            ("/".to_string(), None),
        ],
        "{text}"
    );
    // The server root still serves what no location takes, but never
    // the PHP sources.
    assert_eq!(r[5]["static"]["root"].as_str(), Some("/var/www"));
    assert!(
        text.contains("# not imported: location ~ \\.php$ (line 2)"),
        "{text}"
    );
    assert!(
        warnings.iter().any(|w| w.contains("fastcgi_pass")),
        "{warnings:?}"
    );
    assert!(warned(&warnings, 4, "auth_basic"), "{warnings:?}");
    // Access lists are rampart's own now: `deny all` refuses everyone,
    // `allow ...; deny all;` admits the list.
    let list = |t: &toml_edit::Table, k: &str| -> Vec<String> {
        t.get(k)
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(list(r[0], "deny"), ["0.0.0.0/0", "::/0"], "{text}");
    assert_eq!(list(r[3], "allow"), ["10.0.0.0/8"], "{text}");
    assert!(r[3].get("deny").is_none(), "{text}");
}

#[test]
fn nginx_access_rules_become_lists_when_their_order_allows() {
    let rules = |text: &str| -> Vec<(bool, String)> {
        text.split(';')
            .filter(|r| !r.trim().is_empty())
            .map(|r| {
                let (d, a) = r.trim().split_once(' ').unwrap();
                (d == "allow", a.to_string())
            })
            .collect()
    };
    let ok = |text: &str| super::access_lists(&rules(text)).unwrap();
    let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        ok("allow 10.0.0.0/8; allow 1.2.3.4; deny all"),
        (s(&["10.0.0.0/8", "1.2.3.4"]), s(&[]))
    );
    assert_eq!(
        ok("deny 10.0.13.0/24; allow 10.0.0.0/8; deny all"),
        (s(&["10.0.0.0/8"]), s(&["10.0.13.0/24"]))
    );
    assert_eq!(ok("deny 1.2.3.4"), (s(&[]), s(&["1.2.3.4"])));
    // Unmatched clients are admitted: a lone allow list restricts nothing.
    assert_eq!(ok("allow 10.0.0.0/8"), (s(&[]), s(&[])));
    assert_eq!(ok("deny 1.2.3.4; allow all"), (s(&[]), s(&["1.2.3.4"])));
    assert_eq!(
        ok("deny 1.2.3.4; deny all"),
        (s(&[]), s(&["0.0.0.0/0", "::/0"]))
    );
    // A deny after an allow depends on nginx's order: refused.
    assert!(super::access_lists(&rules("allow 10.0.0.0/8; deny 10.0.13.0/24; deny all")).is_err());
    assert!(super::access_lists(&rules("deny unix:; allow all")).is_err());
}

#[test]
fn nested_locations_inherit_from_their_parent() {
    let (text, doc, _) = imp("server { listen 80; add_header X-S s;\n\
           location /a/ { add_header X-A a; proxy_set_header X-Up up;\n\
             location ~ \\.json$ { proxy_pass http://127.0.0.1:1; }\n\
           }\n\
           location /b/ { location /b/c/ { proxy_pass http://127.0.0.1:1; } }\n\
         }\n");
    let r = routes(&doc, 0);
    assert_eq!(r.len(), 2, "{text}");
    assert_eq!(r[0]["regex"].as_str(), Some("^/a/.*(?:\\.json$)"));
    assert_eq!(r[0]["response_headers"]["X-A"].as_str(), Some("a"));
    assert_eq!(r[0]["request_headers"]["X-Up"].as_str(), Some("up"));
    assert_eq!(r[1]["prefix"].as_str(), Some("/b/c/"));
    assert!(text.contains("not imported: location /b/ "), "{text}");
}

#[test]
fn proxy_headers_follow_nginx() {
    let (text, doc, _) = imp("upstream u { server 127.0.0.1:1; }\n\
         server { listen 80; proxy_set_header X-Env prod;\n\
           location /a/ { proxy_set_header Host $host; proxy_pass http://u; }\n\
           location /b/ { proxy_pass http://u; }\n\
           location /ext/ { proxy_pass https://api.example.net; }\n\
           location / { proxy_pass http://u/; }\n\
         }\n");
    let r = routes(&doc, 0);
    // Any proxy_set_header in /a/ replaced the server's list.
    assert!(r[0].get("request_headers").is_none(), "{text}");
    assert_eq!(r[1]["request_headers"]["X-Env"].as_str(), Some("prod"));
    assert!(text.contains("nginx sent `Host: u`"), "{text}");
    assert_eq!(
        r[2]["request_headers"]["Host"].as_str(),
        Some("api.example.net")
    );
    assert_eq!(
        r[3]["upstream"].as_str(),
        Some("u"),
        "a URI equal to the prefix is no rewrite"
    );
}

#[test]
fn servers_names_and_addresses() {
    let (text, doc, warnings) = imp(
        "server { listen 443 ssl; server_name a.test; ssl_certificate /c/a.pem; ssl_certificate_key /c/a.key; ssl_protocols TLSv1.3 TLSv1.2; location / { return 204; } }\n\
         server { listen 443; server_name b.test; ssl_certificate /c/b.pem; ssl_certificate_key /c/b.key; location / { return 444; } }\n\
         server { listen 9090; server_name localhost; location = /robots.txt { alias /srv/www/robots.txt; } }\n\
         server { listen 9090; location / { return 200; } }\n\
         server { listen 80; server_name c.test;\n\
           if ($host = c.test) { return 301 https://$host$request_uri; }\n\
           return 404; }\n\
         server { listen 8080 proxy_protocol; location / { return 200; } }\n",
    );
    let servers = doc["servers"].as_array_of_tables().unwrap();
    let names: Vec<&str> = servers
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "a.test",
            "b.test",
            "localhost",
            "default",
            "c.test-redirect"
        ],
        "{text}"
    );
    // `ssl` belongs to the address in nginx.
    assert_eq!(doc["servers"][1]["tls"]["cert"].as_str(), Some("/c/b.pem"));
    assert!(
        doc["servers"][0]["tls"].get("protocols").is_none(),
        "servers of :443 disagreed"
    );
    assert_eq!(
        routes(&doc, 1)[0]["respond"]["status"].as_integer(),
        Some(403)
    );
    assert_eq!(doc["servers"][2]["hosts"].as_array().unwrap().len(), 1);
    assert_eq!(
        routes(&doc, 2)[0]["static"]["root"].as_str(),
        Some("/srv/www")
    );
    assert_eq!(
        doc["servers"][3]["hosts"].as_array().map(|a| a.len()),
        Some(0)
    );
    assert_eq!(doc["servers"][4]["https_redirect"].as_bool(), Some(true));
    assert_eq!(doc["admin"]["listen"].as_str(), Some("127.0.0.1:9091"));
    assert!(warned(&warnings, 8, ""), "{warnings:?}");
}

#[test]
fn static_cache_control_is_kept_unless_immutable_covers_it() {
    let (_, doc, _) = imp(
        "server { listen 80;\n\
           location /a/ { root /srv; add_header Cache-Control no-store; }\n\
           location /b/ { root /srv; expires 1d; add_header Cache-Control \"public, immutable\"; }\n\
         }\n",
    );
    let r = routes(&doc, 0);
    assert_eq!(
        r[0]["response_headers"]["Cache-Control"].as_str(),
        Some("no-store")
    );
    assert_eq!(r[0]["static"]["root"].as_str(), Some("/srv/a"));
    assert!(r[1].get("response_headers").is_none());
    assert_eq!(r[1]["static"]["immutable"].as_bool(), Some(true));
}

#[test]
fn standard_proxy_headers_are_recognised() {
    assert!(is_standard_proxy_header("Host", "$host"));
    assert!(is_standard_proxy_header(
        "X-Forwarded-For",
        "$proxy_add_x_forwarded_for"
    ));
    assert!(is_standard_proxy_header("Connection", "upgrade"));
    assert!(!is_standard_proxy_header("Host", "backend.internal"));
    assert!(!is_standard_proxy_header("X-Env", "prod"));
}

#[test]
fn a_proxy_pass_uri_under_a_prefix_location_is_a_prefix_rewrite() {
    let (text, doc, warnings) = imp("upstream backend { server 127.0.0.1:1; }\n\
         server { listen 80;\n\
           location /api/ { proxy_pass http://backend/; }\n\
           location /v/ { proxy_pass http://backend/v1/; }\n\
           location /same/ { proxy_pass http://backend/same/; }\n\
           location = /x { proxy_pass http://backend/y; }\n\
         }\n");
    let r = routes(&doc, 0);
    assert_eq!(r[0]["rewrite_prefix"].as_str(), Some("/"), "{text}");
    assert_eq!(r[1]["rewrite_prefix"].as_str(), Some("/v1/"), "{text}");
    assert!(r[2].get("rewrite_prefix").is_none(), "{text}");
    // An exact location's URI replaces the whole path: not expressible.
    assert_eq!(r.len(), 3, "{text}");
    assert!(
        warned(&warnings, 6, "replaces the whole path"),
        "{warnings:?}"
    );
}

#[test]
fn limit_conn_becomes_a_conn_limit_per_zone_and_maximum() {
    let (text, doc, _) = imp("limit_conn_zone $binary_remote_addr zone=addr:10m;\n\
         server { listen 80; limit_conn addr 10;\n\
           location /a/ { proxy_pass http://127.0.0.1:1; }\n\
           location /b/ { limit_conn addr 2; limit_conn_status 429; proxy_pass http://127.0.0.1:1; }\n\
         }\n");
    let r = routes(&doc, 0);
    assert_eq!(r[0]["conn_limit"].as_str(), Some("addr"), "{text}");
    assert_eq!(r[1]["conn_limit"].as_str(), Some("addr_2"), "{text}");
    let limits = &doc["conn_limits"];
    assert_eq!(limits["addr"]["max"].as_integer(), Some(10), "{text}");
    assert_eq!(limits["addr"]["key"].as_str(), Some("client_ip"), "{text}");
    assert_eq!(limits["addr_2"]["max"].as_integer(), Some(2), "{text}");
    assert_eq!(limits["addr_2"]["status"].as_integer(), Some(429), "{text}");
}

#[test]
fn try_files_with_a_final_file_is_a_static_fallback() {
    let (text, doc, warnings) = imp("server { listen 80;\n\
           location / { root /srv/spa; try_files $uri $uri/ /index.html; }\n\
           location /app/ { root /srv; try_files $uri /app/shell.html; }\n\
           location /docs/ { root /srv; try_files $uri $uri/ =404; }\n\
           location /api/ { root /srv; try_files $uri @backend; }\n\
         }\n");
    let r = routes(&doc, 0);
    let st = |i: usize, k: &str| {
        r[i]["static"]
            .as_inline_table()
            .and_then(|t| t.get(k))
            .and_then(|v| v.as_str())
            .map(String::from)
    };
    assert_eq!(st(0, "root").as_deref(), Some("/srv/spa"), "{text}");
    assert_eq!(st(0, "fallback").as_deref(), Some("index.html"), "{text}");
    assert_eq!(st(1, "root").as_deref(), Some("/srv/app"), "{text}");
    assert_eq!(st(1, "fallback").as_deref(), Some("shell.html"), "{text}");
    assert_eq!(
        st(2, "fallback"),
        None,
        "=404 is what a static route does: {text}"
    );
    assert!(
        !text.contains("not imported: try_files $uri $uri/ =404"),
        "{text}"
    );
    // A fallback to a named location the server does not have: left out,
    // and said so.
    assert_eq!(r.len(), 3, "{text}");
    assert!(
        warned(&warnings, 5, "@backend, which this server does not define"),
        "{warnings:?}"
    );
}

#[test]
fn error_page_becomes_error_pages_under_the_root_that_serves_them() {
    let (text, doc, _) = imp("server { listen 80; root /srv;\n\
           error_page 404 /404.html;\n\
           error_page 500 502 503 504 /50x.html;\n\
           error_page 403 @denied;\n\
           location = /50x.html { root /usr/share/nginx/html; }\n\
           location / { proxy_pass http://127.0.0.1:1; }\n\
         }\n");
    let pages = doc["servers"][0]["error_pages"].as_inline_table().unwrap();
    let page = |k: &str| pages.get(k).and_then(|v| v.as_str());
    assert_eq!(page("404"), Some("/srv/404.html"), "{text}");
    assert_eq!(
        page("502"),
        Some("/usr/share/nginx/html/50x.html"),
        "{text}"
    );
    assert_eq!(
        page("504"),
        Some("/usr/share/nginx/html/50x.html"),
        "{text}"
    );
    assert_eq!(page("403"), None, "{text}");
    assert!(
        text.contains("not imported: error_page 403 @denied"),
        "{text}"
    );
}
