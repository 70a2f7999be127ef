//! Auth, resolver, buffering, try_files and Unix-socket translations, and
//! the report of what changed.

use super::*;

#[test]
fn unix_socket_servers_are_kept() {
    let (text, doc, _) = imp("upstream app { server unix:/run/gunicorn.sock; }\n\
         server { listen 80; location / { proxy_pass http://app; } }\n");
    let servers = doc["upstreams"]["app"]["servers"].as_array().unwrap();
    let addr = servers
        .get(0)
        .and_then(|s| s.as_inline_table())
        .and_then(|t| t.get("addr"));
    assert_eq!(
        addr.and_then(|a| a.as_str()),
        Some("unix:/run/gunicorn.sock"),
        "{text}"
    );
}

#[test]
fn auth_basic_with_a_user_file_becomes_an_htpasswd_auth() {
    let (text, doc, warnings) = imp("server { listen 80;\n\
           auth_basic_user_file /etc/nginx/.htpasswd;\n\
           location /admin/ { auth_basic \"Restricted Area\"; proxy_pass http://127.0.0.1:1; }\n\
           location /ops/ { auth_basic \"Restricted Area\"; proxy_pass http://127.0.0.1:1; }\n\
           location /open/ { proxy_pass http://127.0.0.1:1; }\n\
           location /half/ { auth_basic \"x\"; auth_basic_user_file off_file; auth_basic off; proxy_pass http://127.0.0.1:1; }\n\
         }\n");
    let r = routes(&doc, 0);
    assert_eq!(r[0]["auth"].as_str(), Some("restricted_area"), "{text}");
    assert_eq!(r[1]["auth"].as_str(), Some("restricted_area"), "{text}");
    assert!(r[2].get("auth").is_none(), "{text}");
    assert!(r[3].get("auth").is_none(), "{text}");
    let a = &doc["auth"]["restricted_area"];
    assert_eq!(
        a["htpasswd"].as_str(),
        Some("/etc/nginx/.htpasswd"),
        "{text}"
    );
    assert_eq!(a["realm"].as_str(), Some("Restricted Area"), "{text}");
    assert!(warnings.is_empty(), "{warnings:?}");
}

#[test]
fn auth_request_becomes_a_forward_auth_to_the_location_it_names() {
    let (text, doc, warnings) = imp("server { listen 80;\n\
           location = /oauth2/auth { internal; proxy_pass http://127.0.0.1:4180; }\n\
           location /oauth2/ { proxy_pass http://127.0.0.1:4180; }\n\
           location / {\n\
             auth_request /oauth2/auth;\n\
             auth_request_set $user $upstream_http_x_auth_request_user;\n\
             auth_request_set $email $upstream_http_x_auth_request_email;\n\
             proxy_pass http://127.0.0.1:8000;\n\
           }\n\
           location /v/ { auth_request /validate/me; proxy_pass http://127.0.0.1:8000; }\n\
           location /validate/ { proxy_pass http://127.0.0.1:9000/check/; }\n\
           location /x/ { auth_request /files/check; proxy_pass http://127.0.0.1:8000; }\n\
           location /files/ { root /srv; }\n\
         }\n");
    let r = routes(&doc, 0);
    let auth = |i: usize| r[i].get("auth").and_then(|v| v.as_str());
    assert_eq!(auth(2), Some("sso"), "{text}");
    assert_eq!(auth(3), Some("sso_2"), "{text}");
    assert_eq!(auth(5), None, "{text}");
    assert_eq!(
        r[5]["respond"]["status"].as_integer(),
        Some(403),
        "fails closed: {text}"
    );
    let sso = &doc["auth"]["sso"];
    assert_eq!(
        sso["forward"].as_str(),
        Some("http://127.0.0.1:4180/oauth2/auth")
    );
    let copied: Vec<&str> = sso["copy_headers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(copied, ["X-Auth-Request-User", "X-Auth-Request-Email"]);
    assert_eq!(
        doc["auth"]["sso_2"]["forward"].as_str(),
        Some("http://127.0.0.1:9000/check/me")
    );
    assert!(
        warned(
            &warnings,
            12,
            "auth_request /files/check: location /files/ does not proxy it"
        ),
        "{warnings:?}"
    );
}

#[test]
fn auth_request_urls_follow_nginx_proxy_pass_rules() {
    let loc = |exact: bool, path: &str, pass: &str| ProxyLocation::new(exact, path, pass);
    let ups = |n: &str| n == "oauth";
    let l = [
        loc(true, "/auth", "http://a:1/verify?x=1"),
        loc(false, "/p/", "https://b/q/"),
        loc(false, "/u/", "http://oauth"),
        loc(false, "/v/", "http://$host"),
    ];
    assert_eq!(
        forward_url(&l, "/auth", &ups).unwrap(),
        "http://a:1/verify?x=1"
    );
    assert_eq!(forward_url(&l, "/p/x", &ups).unwrap(), "https://b/q/x");
    assert!(forward_url(&l, "/u/x", &ups)
        .unwrap_err()
        .contains("upstream \"oauth\""));
    assert!(forward_url(&l, "/v/x", &ups)
        .unwrap_err()
        .contains("variables"));
    assert!(forward_url(&l, "/none", &ups).is_err());
    assert_eq!(
        answer_header("$upstream_http_x_auth_request_user").as_deref(),
        Some("X-Auth-Request-User")
    );
    assert_eq!(answer_header("$cookie_x"), None);
}

#[test]
fn resolver_valid_becomes_the_resolve_interval_of_upstreams_with_names() {
    let (text, doc, _) = imp("resolver 127.0.0.11 valid=10s;\n\
         upstream app { server app:8000 resolve; server 10.0.0.5:8000; }\n\
         upstream ips { server 10.0.0.6:8000; }\n\
         server { listen 80;\n\
           location / { proxy_pass http://app; }\n\
           location /ips/ { proxy_pass http://ips; }\n\
           location /direct/ { proxy_pass http://api.internal:9000; }\n\
         }\n");
    let ups = &doc["upstreams"];
    assert_eq!(
        ups["app"]["resolve_interval"].as_str(),
        Some("10s"),
        "{text}"
    );
    assert!(ups["ips"].get("resolve_interval").is_none(), "{text}");
    assert_eq!(
        ups["api_internal_9000"]["resolve_interval"].as_str(),
        Some("10s"),
        "{text}"
    );
    assert!(
        !text.contains("not imported: server app:8000 resolve"),
        "{text}"
    );
    assert!(text.contains("not imported: resolver"), "{text}");
}

#[test]
fn proxy_buffering_off_in_either_direction_streams_the_route() {
    let (text, doc, _) = imp("server { listen 80;\n\
           location /sse/ { proxy_buffering off; proxy_pass http://127.0.0.1:1; }\n\
           location /upload/ { proxy_request_buffering off; proxy_pass http://127.0.0.1:1; }\n\
           location /both/ { proxy_buffering off; proxy_request_buffering off; proxy_pass http://127.0.0.1:1; }\n\
           location / { proxy_buffering on; proxy_pass http://127.0.0.1:1; }\n\
         }\n");
    let r = routes(&doc, 0);
    for route in &r[..3] {
        assert_eq!(route["buffering"].as_bool(), Some(false), "{text}");
    }
    assert!(r[3].get("buffering").is_none(), "{text}");
    assert!(text.contains("proxy_request_buffering off here"), "{text}");
}

/// The locations an import reports as answering differently.
fn changed(conf: &str) -> Vec<String> {
    let tree = crate::import::parse::parse_str(conf, std::sync::Arc::from("t.conf")).unwrap();
    let opts = Options::default();
    Translator::new(&opts, Path::new("t.conf"))
        .translate(&tree)
        .changed
}

const GUNICORN: &str = "upstream app_server { server unix:/run/gunicorn.sock fail_timeout=0; }\n\
     server {\n\
       listen 80;\n\
       client_max_body_size 4G;\n\
       keepalive_timeout 5;\n\
       root /srv/app/public;\n\
       location / { try_files $uri @proxy_to_app; }\n\
       location @proxy_to_app {\n\
         proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
         proxy_set_header X-Forwarded-Proto $scheme;\n\
         proxy_set_header Host $http_host;\n\
         proxy_redirect off;\n\
         proxy_read_timeout 120s;\n\
         proxy_pass http://app_server;\n\
       }\n\
     }\n";

#[test]
fn try_files_to_a_named_location_is_an_upstream_route_with_try_files() {
    let (text, doc, warnings) = imp(GUNICORN);
    let r = routes(&doc, 0);
    assert_eq!(r.len(), 1, "{text}");
    assert_eq!(r[0]["prefix"].as_str(), Some("/"), "{text}");
    assert_eq!(r[0]["upstream"].as_str(), Some("app_server"), "{text}");
    let tf = r[0]["try_files"].as_inline_table().expect("try_files");
    assert_eq!(
        tf.get("root").and_then(|v| v.as_str()),
        Some("/srv/app/public")
    );
    assert_eq!(
        tf.get("index").and_then(|v| v.as_bool()),
        Some(false),
        "nginx tried $uri only, not directories: {text}"
    );
    assert_eq!(
        r[0]["read_timeout"].as_str(),
        Some("120s"),
        "the named location's settings: {text}"
    );
    assert_eq!(
        doc["upstreams"]["app_server"]["servers"][0]["addr"].as_str(),
        Some("unix:/run/gunicorn.sock")
    );
    assert!(
        !text.contains("not imported: location @proxy_to_app"),
        "{text}"
    );
    assert!(changed(GUNICORN).is_empty(), "{:?}", changed(GUNICORN));
    assert!(warnings.is_empty(), "{warnings:?}");
}

#[test]
fn a_cache_control_for_the_files_goes_to_try_files_expires() {
    let conf = "upstream backend { server 127.0.0.1:3000; }\n\
         server { listen 80; root /srv/mastodon/public;\n\
           location / { try_files $uri @proxy; }\n\
           location ~ ^/(assets|avatars|packs)/ {\n\
             add_header Cache-Control \"public, max-age=2419200, must-revalidate\";\n\
             add_header X-Content-Type-Options nosniff;\n\
             try_files $uri @proxy;\n\
           }\n\
           location @proxy { proxy_set_header Host $host; proxy_pass http://backend; proxy_buffering on; }\n\
         }\n";
    let (text, doc, _) = imp(conf);
    let r = routes(&doc, 0);
    let assets = r
        .iter()
        .find(|t| t.contains_key("regex"))
        .expect("the assets route");
    let tf = assets["try_files"].as_inline_table().expect("try_files");
    assert_eq!(
        tf.get("expires").and_then(|v| v.as_str()),
        Some("28d"),
        "{text}"
    );
    let headers = assets
        .get("response_headers")
        .map(|h| h.to_string())
        .unwrap_or_default();
    assert!(
        !headers.to_ascii_lowercase().contains("cache-control"),
        "{text}"
    );
    assert!(changed(conf).is_empty(), "{:?}", changed(conf));
}

#[test]
fn proxy_pass_to_a_unix_socket_is_a_unix_socket_upstream() {
    let conf = "server { listen 80;\n\
           location /static/ { root /home/django; }\n\
           location / { proxy_pass http://unix:/home/django/gunicorn.socket; }\n\
           location /v2/ { proxy_pass http://unix:/run/v2.sock:/api/; }\n\
         }\n";
    let (text, doc, _) = imp(conf);
    let r = routes(&doc, 0);
    let up = |i: usize| r[i]["upstream"].as_str().unwrap().to_string();
    assert_eq!(
        doc["upstreams"][up(1).as_str()]["servers"][0]["addr"].as_str(),
        Some("unix:/home/django/gunicorn.socket"),
        "{text}"
    );
    assert_eq!(
        doc["upstreams"][up(2).as_str()]["servers"][0]["addr"].as_str(),
        Some("unix:/run/v2.sock"),
        "{text}"
    );
    assert_eq!(r[2]["rewrite_prefix"].as_str(), Some("/api/"), "{text}");
    assert!(changed(conf).is_empty(), "{:?}", changed(conf));
}

#[test]
fn every_location_whose_action_is_lost_is_reported_with_its_line() {
    let conf = "server { listen 80;\n\
           location /php/ { fastcgi_pass 127.0.0.1:9000; }\n\
           location /x/ { proxy_pass http://$backend; }\n\
           location /y/ { try_files $uri @nowhere; root /srv; }\n\
           location /z/ { allow 10.0.0.0/8; deny 10.0.0.5; deny all; proxy_pass http://127.0.0.1:1; }\n\
           location /ok/ { proxy_pass http://127.0.0.1:1; }\n\
           location = /gone { internal; }\n\
         }\n";
    let c = changed(conf);
    assert_eq!(c.len(), 4, "{c:#?}");
    for (i, line) in [2, 3, 4, 5].into_iter().enumerate() {
        assert!(
            c[i].starts_with(&format!("t.conf:{line}: location")),
            "{c:#?}"
        );
    }
}

#[test]
fn a_server_rampart_cannot_listen_for_is_reported_too() {
    let c = changed(
        "server { listen unix:/run/nginx.sock; location / { proxy_pass http://127.0.0.1:1; } }\n",
    );
    assert_eq!(c.len(), 1, "{c:?}");
    assert!(c[0].starts_with("t.conf:1: server"), "{c:?}");
}
