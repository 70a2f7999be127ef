//! Pure helpers of the server level: `listen` lines, `ssl_protocols`, and recognising HTTPS redirects.

use super::*;

/// The versions of an `ssl_protocols` line rampart offers, in its order;
/// both when nginx listed only retired ones.
pub(super) fn kept_protocols(p: &[String]) -> Vec<String> {
    let kept: Vec<String> = ["TLSv1.2", "TLSv1.3"]
        .into_iter()
        .filter(|v| p.iter().any(|x| x == v))
        .map(String::from)
        .collect();
    if kept.is_empty() {
        vec!["TLSv1.2".into(), "TLSv1.3".into()]
    } else {
        kept
    }
}

/// `if ($host = example.com) { return 301 https://$host$request_uri; }`
pub(super) fn is_certbot_redirect(d: &Directive) -> bool {
    let cond =
        matches!(if_condition(&d.args).as_slice(), [var, eq, _] if var == "$host" && eq == "=");
    let body = d.block.as_deref().unwrap_or_default();
    cond && matches!(body, [r] if r.name == "return" && is_https_redirect(&r.args))
}

pub(super) fn parse_listen(args: &[String]) -> Result<Listen, &'static str> {
    let Some(addr) = args.first() else {
        return Err("listen without an address");
    };
    if addr.starts_with("unix:") {
        return Err("rampart listens on TCP only");
    }
    let mut l = Listen {
        addr: String::new(),
        ssl: false,
        http2: false,
        default: false,
    };
    for p in &args[1..] {
        match p.as_str() {
            "ssl" => l.ssl = true,
            "http2" => l.http2 = true,
            "default_server" | "default" => l.default = true,
            "quic" | "http3" => return Err("no HTTP/3 in rampart"),
            "proxy_protocol" => return Err("no PROXY protocol in rampart"),
            _ => {}
        }
    }
    l.addr = if addr.bytes().all(|b| b.is_ascii_digit()) {
        format!("0.0.0.0:{addr}")
    } else if let Some(port) = addr.strip_prefix("*:") {
        format!("0.0.0.0:{port}")
    } else if let Some(port) = addr.strip_prefix("localhost:") {
        format!("127.0.0.1:{port}")
    } else if addr.starts_with('[') {
        if addr.contains("]:") {
            addr.clone()
        } else {
            format!("{addr}:80")
        }
    } else if addr.contains(':') {
        addr.clone()
    } else {
        format!("{addr}:80")
    };
    Ok(l)
}

pub(super) fn with_port(hostport: &str, default: u16) -> String {
    let has_port = if hostport.starts_with('[') {
        hostport.contains("]:")
    } else {
        hostport.contains(':')
    };
    if has_port {
        hostport.to_string()
    } else {
        format!("{hostport}:{default}")
    }
}

pub(super) fn is_https_redirect(args: &[String]) -> bool {
    matches!(args, [code, url] if code == "301"
        && (url == "https://$host$request_uri" || url == "https://$server_name$request_uri" || url == "https://$http_host$request_uri"))
}
