//! `[[servers]]` tables.

use super::*;

pub(super) fn read_server(r: &mut Reader<'_>, o: &mut Section<'_>) -> Server {
    let listen = match o.get(k::LISTEN) {
        Some(f) => {
            // Reported here, where an empty list is told apart from one
            // whose entries failed to read (reported each).
            if f.item.as_array().is_some_and(|a| a.is_empty()) {
                r.diag.error(&o.span, "server has an empty `listen` list");
            }
            r.strings(&f).unwrap_or_default()
        }
        None => {
            r.missing(o, k::LISTEN);
            Vec::new()
        }
    };
    let tls = o
        .get(k::TLS)
        .and_then(|f| r.table(&f))
        .map(|t| read_tls(r, t));
    let compression = o
        .get(k::COMPRESSION)
        .and_then(|f| r.table(&f))
        .map(|c| read_compression(r, c));
    let mut routes = Vec::new();
    if let Some(f) = o.get(k::ROUTES) {
        for mut ro in r.tables(&f) {
            routes.push(read_route(r, &mut ro));
            ro.finish(r);
        }
    }
    Server {
        span: Spanned::new((), o.span.clone()),
        name: o.get(k::NAME).and_then(|f| r.string(&f)),
        listen,
        hosts: o.get(k::HOSTS).and_then(|f| r.strings(&f)),
        https_redirect: o.get(k::HTTPS_REDIRECT).and_then(|f| https_redirect(r, &f)),
        http2: o.get(k::HTTP2).and_then(|f| r.bool_at(&f)),
        max_body_size: o.get(k::MAX_BODY_SIZE).and_then(|f| r.size(&f)),
        buffer_size: o.get(k::BUFFER_SIZE).and_then(|f| r.size_at(&f)),
        client_header_timeout: o.get(k::CLIENT_HEADER_TIMEOUT).and_then(|f| r.duration(&f)),
        allow_encoded_slashes: o.get(k::ALLOW_ENCODED_SLASHES).and_then(|f| r.bool(&f)),
        underscores_in_headers: o.get(k::UNDERSCORES_IN_HEADERS).and_then(|f| r.bool(&f)),
        client_body_timeout: o.get(k::CLIENT_BODY_TIMEOUT).and_then(|f| r.duration(&f)),
        keepalive_timeout: o.get(k::KEEPALIVE_TIMEOUT).and_then(|f| r.duration(&f)),
        security_headers: o.get(k::SECURITY_HEADERS).and_then(|f| r.bool(&f)),
        access_log: o.get(k::ACCESS_LOG).and_then(|f| r.bool(&f)),
        cors: o.get(k::CORS).and_then(|f| r.string(&f)),
        access: read_access(r, o),
        conn_limit: read_reference(r, o, k::CONN_LIMIT, "conn_limits"),
        auth: read_reference(r, o, k::AUTH, "auth"),
        error_pages: o
            .get(k::ERROR_PAGES)
            .map(|f| r.string_map(&f))
            .unwrap_or_default(),
        tls,
        response_headers: o
            .get(k::RESPONSE_HEADERS)
            .map(|f| r.string_map(&f))
            .unwrap_or_default(),
        compression,
        routes,
    }
}

/// `[servers.tls]`.
fn read_tls(r: &mut Reader<'_>, mut t: Section<'_>) -> Tls {
    let acme = t.get(k::ACME).and_then(|f| r.bool_at(&f));
    let from_files = !acme.as_ref().is_some_and(|a| a.v);
    // `cert` and `key` are required unless `acme = true` (the compiler
    // refuses them next to it).
    let mut file = |name: Key| match t.get(name) {
        Some(f) => r.string(&f),
        None => {
            if from_files {
                r.missing(&t, name);
            }
            None
        }
    };
    let (cert, key) = (file(k::CERT), file(k::KEY));
    let tls = Tls {
        span: Spanned::new((), t.span.clone()),
        cert,
        key,
        protocols: t.get(k::PROTOCOLS).and_then(|f| r.strings(&f)),
        acme,
    };
    t.finish(r);
    tls
}

/// `[servers.compression]`.
fn read_compression(r: &mut Reader<'_>, mut c: Section<'_>) -> Compression {
    let comp = Compression {
        min_length: c.get(k::MIN_LENGTH).and_then(|f| r.size(&f)),
        types: c.get(k::TYPES).and_then(|f| r.strings(&f)),
    };
    c.finish(r);
    comp
}
