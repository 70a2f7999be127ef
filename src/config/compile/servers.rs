//! `[[servers]]`: names, addresses, TLS, and the server-wide settings
//! routes inherit.

use std::collections::HashMap;
use std::net::SocketAddr;

use http::HeaderValue;

use super::listeners::{self, AddrGroup};
use super::{parse_listen, routes, valid_host_pattern, Compiler, Definitions};
use crate::access_list::AccessList;
use crate::config::defaults;
use crate::config::diag::Span;
use crate::config::file;
use crate::config::reader::Spanned;
use crate::config::snapshot::{
    Certificate, Compression, HttpsRedirect, Server, ServerTls, TlsVersion,
};

/// The servers, and the addresses they listen on.
pub(super) fn compile_servers(
    cx: &mut Compiler<'_, '_>,
    defs: &[file::Server],
    refs: &Definitions<'_>,
) -> (Vec<Server>, Vec<AddrGroup>) {
    let mut servers = Vec::new();
    let mut server_names: HashMap<String, Span> = HashMap::new();
    let mut by_addr: Vec<AddrGroup> = Vec::new();
    for (si, s) in defs.iter().enumerate() {
        let Some(server) = compile_server(cx, s, si, refs) else {
            continue;
        };
        let mut server = server;
        match &s.name {
            Some(n) => {
                if server_names
                    .insert(server.name.clone(), n.span.clone())
                    .is_some()
                {
                    cx.err(
                        &n.span,
                        format!("duplicate server name \"{}\"", server.name),
                    );
                }
            }
            // A derived name must still be unique: it labels metrics.
            None => {
                if server_names.contains_key(&server.name) {
                    server.name = format!("{}#{si}", server.name);
                }
                server_names.insert(server.name.clone(), s.span.span.clone());
            }
        }
        let idx = servers.len();
        listeners::add_server(cx, &mut by_addr, s, &server, idx);
        servers.push(server);
    }
    if defs.is_empty() {
        cx.err(
            &(0..0),
            "no [[servers]] defined: rampart would not listen anywhere",
        );
    }
    (servers, by_addr)
}

fn compile_server(
    cx: &mut Compiler<'_, '_>,
    s: &file::Server,
    si: usize,
    refs: &Definitions<'_>,
) -> Option<Server> {
    let listen = addresses(cx, s);
    let name = s
        .name
        .as_ref()
        .map(|n| n.v.clone())
        .or_else(|| {
            s.hosts
                .as_ref()
                .and_then(|h| h.first())
                .map(|h| h.v.clone())
        })
        .or_else(|| s.listen.first().map(|l| l.v.clone()))
        .unwrap_or_else(|| format!("server{si}"));

    let tls = s
        .tls
        .as_ref()
        .and_then(|t| server_tls(cx, t, s.hosts.as_deref()));
    let http2 = http2(cx, s);
    let compression = s.compression.as_ref().map(compression);
    let response_headers = cx.headers(&s.response_headers);
    let inherited = inherited(cx, s, refs);
    let cors = inherited.cors;
    let routes = routes::compile_routes(cx, s, &name, &inherited, refs);
    Some(Server {
        name,
        listen,
        hosts: s
            .hosts
            .as_ref()
            .map(|h| h.iter().map(|x| x.v.to_ascii_lowercase()).collect()),
        host_for_hostless: s
            .hosts
            .iter()
            .flatten()
            .find(|h| !h.v.contains('*'))
            .and_then(|h| HeaderValue::from_str(&h.v.to_ascii_lowercase()).ok()),
        https_redirect: s.https_redirect.as_ref().map(|r| https_redirect(cx, r)),
        http2,
        max_body_size: match s.max_body_size {
            Some(0) => None,
            Some(n) => Some(n),
            None => Some(defaults::MAX_BODY_SIZE),
        },
        buffer_size: buffer_size(cx, s.buffer_size.as_ref()),
        client_header_timeout: s
            .client_header_timeout
            .unwrap_or(defaults::CLIENT_HEADER_TIMEOUT),
        client_body_timeout: s
            .client_body_timeout
            .unwrap_or(defaults::CLIENT_BODY_TIMEOUT),
        allow_encoded_slashes: s
            .allow_encoded_slashes
            .unwrap_or(defaults::ALLOW_ENCODED_SLASHES),
        underscores_in_headers: s
            .underscores_in_headers
            .unwrap_or(defaults::UNDERSCORES_IN_HEADERS),
        keepalive_timeout: s.keepalive_timeout.unwrap_or(defaults::KEEPALIVE_TIMEOUT),
        security_headers: s.security_headers.unwrap_or(defaults::SECURITY_HEADERS),
        access_log: s.access_log.unwrap_or(defaults::ACCESS_LOG_ON),
        error_pages: error_pages(cx, &s.error_pages),
        cors,
        tls,
        response_headers,
        compression,
        routes,
    })
}

/// `[servers.tls]`: versions, and the certificate and key, loaded now (an
/// error names the file at fault; a certificate near its end is warned of).
fn server_tls(
    cx: &mut Compiler<'_, '_>,
    t: &file::Tls,
    hosts: Option<&[Spanned<String>]>,
) -> Option<ServerTls> {
    let mut protocols = Vec::new();
    match &t.protocols {
        None => protocols = vec![TlsVersion::V1_2, TlsVersion::V1_3],
        Some(list) => {
            for p in list {
                match p.v.as_str() {
                    "TLSv1.2" => protocols.push(TlsVersion::V1_2),
                    "TLSv1.3" => protocols.push(TlsVersion::V1_3),
                    "TLSv1" | "TLSv1.0" | "TLSv1.1" | "SSLv3" => cx.err(
                        &p.span,
                        format!("protocol {} is insecure and not supported: use \"TLSv1.2\" and/or \"TLSv1.3\"", p.v),
                    ),
                    other => cx.err(&p.span, format!("protocol \"{other}\": expected \"TLSv1.2\" or \"TLSv1.3\"")),
                }
            }
            if list.is_empty() {
                cx.err(&t.span.span, "tls.protocols is empty");
            }
        }
    }
    if let Some(acme) = t.acme.as_ref().filter(|a| a.v) {
        return acme_tls(cx, t, acme, hosts, protocols);
    }
    let (cert, key) = (t.cert.as_ref()?, t.key.as_ref()?);
    let (cert_path, key_path) = (cx.path(&cert.v), cx.path(&key.v));
    match cx.world.cert(&cert_path, &key_path) {
        Ok((k, left)) => {
            if let Some(left) = left {
                let days = left / 86_400;
                if left < 0 {
                    cx.warnings.push(format!(
                        "certificate {} has EXPIRED ({} days ago)",
                        cert_path.display(),
                        -days
                    ));
                } else if days < 14 {
                    cx.warnings.push(format!(
                        "certificate {} expires in {days} day(s): renew it",
                        cert_path.display()
                    ));
                }
            }
            Some(ServerTls {
                protocols,
                certificate: Certificate::Files {
                    cert_path,
                    key_path,
                    key: k,
                },
            })
        }
        Err(fault) => {
            let span = if fault.in_key { &key.span } else { &cert.span };
            cx.err(span, fault.message);
            None
        }
    }
}

/// `tls.acme = true`: instead of `cert` / `key`, and for plain names
/// only (an ACME certificate names every host; wildcards need DNS-01,
/// which rampart does not do).
fn acme_tls(
    cx: &mut Compiler<'_, '_>,
    t: &file::Tls,
    acme: &Spanned<bool>,
    hosts: Option<&[Spanned<String>]>,
    protocols: Vec<TlsVersion>,
) -> Option<ServerTls> {
    for given in [&t.cert, &t.key].into_iter().flatten() {
        cx.err(
            &given.span,
            "tls.acme = true obtains the certificate: remove cert and key (or acme)",
        );
    }
    if !cx.acme_configured {
        cx.err(
            &acme.span,
            "tls.acme = true needs an [acme] table (at least `storage`)",
        );
    }
    let Some(hosts) = hosts.filter(|h| !h.is_empty()) else {
        cx.err(
            &acme.span,
            "tls.acme = true needs `hosts`: the names the certificate is for",
        );
        return None;
    };
    let mut names = Vec::new();
    for h in hosts {
        let plain = !h.v.contains('*')
            && h.v.parse::<std::net::IpAddr>().is_err()
            && h.v.contains('.')
            && valid_host_pattern(&h.v);
        if plain {
            names.push(h.v.to_ascii_lowercase());
        } else {
            cx.err(
                &h.span,
                format!(
                    "host \"{}\": tls.acme = true needs plain DNS names (no wildcard, no address)",
                    h.v
                ),
            );
        }
    }
    Some(ServerTls {
        protocols,
        certificate: Certificate::Acme { hosts: names },
    })
}

/// `[servers.compression]`.
fn compression(c: &file::Compression) -> Compression {
    Compression {
        min_length: c.min_length.unwrap_or(defaults::COMPRESSION_MIN_LENGTH),
        types: c
            .types
            .as_ref()
            .map(|t| t.iter().map(|s| s.v.to_ascii_lowercase()).collect())
            .unwrap_or_else(|| {
                defaults::COMPRESSION_TYPES
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            }),
    }
}

/// The server's `listen` addresses (each once) and `hosts` patterns,
/// checked.
fn addresses(cx: &mut Compiler<'_, '_>, s: &file::Server) -> Vec<SocketAddr> {
    let mut listen = Vec::new();
    for l in &s.listen {
        match parse_listen(&l.v) {
            Some(a) if !listen.contains(&a) => listen.push(a),
            Some(a) => cx.err(&l.span, format!("listen address {a} is listed twice")),
            None => cx.err(
                &l.span,
                format!(
                    "listen address \"{}\": expected IP:PORT, [IPv6]:PORT or PORT",
                    l.v
                ),
            ),
        }
    }
    // A missing or empty `listen` was reported while reading the file.
    if let Some(hosts) = &s.hosts {
        for h in hosts {
            if !valid_host_pattern(&h.v) {
                cx.err(
                    &h.span,
                    format!(
                        "host \"{}\": expected a host name or \"*.\" followed by a domain",
                        h.v
                    ),
                );
            }
        }
    }
    listen
}

/// `http2`: on by default for TLS servers; an error on a plain one.
fn http2(cx: &mut Compiler<'_, '_>, s: &file::Server) -> bool {
    match (&s.http2, &s.tls) {
        (Some(h), None) if h.v => {
            cx.err(
                &h.span,
                "http2 = true needs [servers.tls]: h2 is offered by TLS ALPN, plain-HTTP servers speak HTTP/1.x",
            );
            false
        }
        (Some(h), _) => h.v,
        (None, t) => t.is_some(),
    }
}

/// `https_redirect`: the port (none for 443) and status of the redirect.
fn https_redirect(cx: &mut Compiler<'_, '_>, r: &file::HttpsRedirect) -> HttpsRedirect {
    HttpsRedirect {
        port: r.port.as_ref().and_then(|p| match p.v {
            0 => {
                cx.err(&p.span, "https_redirect port must be 1-65535");
                None
            }
            443 => None,
            n => Some(n as u16),
        }),
        status: routes::redirect_status(cx, r.status.as_ref(), defaults::HTTPS_REDIRECT_STATUS),
    }
}

/// `error_pages`: each key checked, each file read (by the resolve stage).
fn error_pages(
    cx: &mut Compiler<'_, '_>,
    pages: &[(Spanned<String>, Spanned<String>)],
) -> crate::error_pages::ErrorPages {
    use crate::error_pages::{ErrorPages, PageKey};
    let mut out = HashMap::new();
    for (key, file) in pages {
        let key = match PageKey::parse(&key.v) {
            Ok(k) => k,
            Err(e) => {
                cx.err(&key.span, e);
                continue;
            }
        };
        match cx.world.file(&cx.path(&file.v)) {
            Ok(body) => {
                out.insert(key, body);
            }
            Err(e) => cx.err(&file.span, format!("error_pages: {e}")),
        }
    }
    ErrorPages::new(out)
}

/// `buffer_size`: 1 byte to 1 GiB.
fn buffer_size(cx: &mut Compiler<'_, '_>, size: Option<&Spanned<u64>>) -> usize {
    match size {
        Some(s) if s.v == 0 || s.v > 1 << 30 => {
            cx.err(&s.span, "buffer_size must be between 1 and 1G");
            defaults::BUFFER_SIZE as usize
        }
        Some(s) => s.v as usize,
        None => defaults::BUFFER_SIZE as usize,
    }
}

/// What a server's routes inherit from it: its CORS policy, access lists,
/// concurrency limit and authentication.
fn inherited(
    cx: &mut Compiler<'_, '_>,
    s: &file::Server,
    refs: &Definitions<'_>,
) -> routes::Inherited {
    let cors = s.cors.as_ref().and_then(|c| match refs.cors.get(&c.v) {
        Some(i) => Some(*i),
        None => {
            cx.err(
                &c.span,
                format!(
                    "undefined CORS policy \"{}\" (define it as [cors.{}])",
                    c.v, c.v
                ),
            );
            None
        }
    });
    routes::Inherited {
        cors,
        access: routes::access_list(cx, &s.access, &AccessList::default()),
        conn_limit: super::reference(
            cx,
            s.conn_limit.as_ref(),
            None,
            refs.conn_limits,
            "conn_limit",
            "conn_limits",
        ),
        auth: super::reference(cx, s.auth.as_ref(), None, refs.auths, "auth", "auth"),
    }
}
