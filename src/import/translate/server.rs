//! `server` blocks: listen addresses, names, TLS, and the server table.

use super::*;

impl Translator<'_> {
    // ---- servers -----------------------------------------------------------
    pub(super) fn server(&mut self, d: &Directive, children: &[Directive], parent: &Level) {
        let mut lv = parent.child();
        let mut notes = Vec::new();
        let ServerDirectives {
            listens,
            had_listen,
            mut names,
            server_return,
            http2,
            ssl_on,
            error_pages,
        } = self.server_directives(children, &mut lv, &mut notes);
        let Some(listens) = self.server_listens(d, listens, had_listen, ssl_on, &mut notes) else {
            return;
        };
        let mut seen = BTreeSet::new();
        names.retain(|n| seen.insert(n.clone()));

        let mut parts = ServerParts::new();
        let what = match names.first() {
            Some(n) => format!("server {n}"),
            None => "server".into(),
        };
        parts
            .head
            .lead
            .push(format!("---- {what} ({}) ----", self.at(&d.pos)));

        let (https_redirect, certbot) =
            self.server_redirect(children, server_return, &mut parts, &mut notes);

        let server_cors = self.server_settings(&mut parts, &lv, &listens, &mut notes);
        self.error_pages(&error_pages, children, &lv, &mut parts, &mut notes);
        if https_redirect {
            parts.head.set_c(
                k::HTTPS_REDIRECT,
                "true".into(),
                "return 301 https://...$request_uri: 301 to https://<host><uri>",
            );
            if server_return.is_some_and(|r| r.args.iter().any(|a| a.contains("$server_name"))) {
                notes.push(
                    "$server_name in the redirect: nginx sent every client to the first server_name; https_redirect keeps the Host the client asked for"
                        .into(),
                );
            }
        }
        if let Some(name) = &server_cors {
            parts
                .head
                .set_c(k::CORS, q(name), "Access-Control-* add_header lines");
        }
        if server_return.is_none() && !https_redirect {
            self.server_locations(
                children,
                &lv,
                &certbot,
                server_cors.clone(),
                &mut parts,
                &mut notes,
            );
        } else if children.iter().any(|c| c.name == "location") {
            notes.push("the server-level return answers every request: its locations were never reached and are not imported".into());
        }
        if !http2 && listens.iter().any(|l| l.ssl) {
            notes.push("nginx did not offer HTTP/2 here; rampart offers it on TLS servers by default (http2 = false to match)".into());
        }
        parts.head.notes = notes;
        let protocols = lv.protocols.as_ref().map(|p| kept_protocols(p));
        self.emit_server(parts, listens, names, https_redirect, http2, protocols);
    }

    /// The server's listen addresses: nginx's default `*:80` when it has
    /// none; `None` (the server left out) when none of them can be served.
    fn server_listens(
        &mut self,
        d: &Directive,
        mut listens: Vec<Listen>,
        had_listen: bool,
        ssl_on: bool,
        notes: &mut Vec<String>,
    ) -> Option<Vec<Listen>> {
        if listens.is_empty() {
            if had_listen {
                const WHY: &str = "none of its listen addresses can be served by rampart";
                self.skip_top(d, WHY);
                self.warn(&d.pos, format!("server not imported: {WHY}"));
                // Every location of it is lost with it.
                self.changed(
                    &d.pos,
                    format!("server (and its locations): not imported ({WHY})"),
                );
                return None;
            }
            listens.push(Listen {
                addr: "0.0.0.0:80".into(),
                ssl: false,
                http2: false,
                default: false,
            });
            notes.push("no listen directive: nginx's default *:80".into());
        }
        // In nginx `ssl` belongs to the address: one server saying it makes
        // the address TLS for every server on it.
        for l in &mut listens {
            if ssl_on || self.ssl_addrs.contains(&l.addr) {
                l.ssl = true;
            }
        }
        Some(listens)
    }

    /// Whether the server redirects everything to https: a server-level
    /// `return 301 https://...`, or certbot's `if ($host = example.com) {
    /// return 301 https://$host$request_uri; }` (followed by `return 404;`).
    /// Also returns certbot's `if` blocks, which the locations skip.
    fn server_redirect<'d>(
        &mut self,
        children: &'d [Directive],
        server_return: Option<&Directive>,
        parts: &mut ServerParts,
        notes: &mut Vec<String>,
    ) -> (bool, Vec<&'d Directive>) {
        let certbot: Vec<&Directive> = children
            .iter()
            .filter(|c| c.name == "if" && is_certbot_redirect(c))
            .collect();
        let certbot_404 = !certbot.is_empty()
            && server_return.is_some_and(|r| r.args.first().is_some_and(|a| a == "404"));

        // A server-level `return` answers before any location is looked at.
        let mut https_redirect = false;
        if let Some(r) = server_return.filter(|_| !certbot_404) {
            https_redirect = self.server_return(r, parts, notes);
        }
        if !certbot.is_empty() && (server_return.is_none() || certbot_404) {
            https_redirect = true;
            notes.push(format!(
                "certbot's `if ($host = ...) {{ return 301 https://$host$request_uri; }}` ({}): https_redirect for this server's names",
                self.at(&certbot[0].pos)
            ));
        }

        (https_redirect, certbot)
    }

    /// The server block's own directives: those only a server has, and the
    /// common ones applied to `lv`.
    fn server_directives<'d>(
        &mut self,
        children: &'d [Directive],
        lv: &mut Level,
        notes: &mut Vec<String>,
    ) -> ServerDirectives<'d> {
        let mut out = ServerDirectives::default();
        for c in children.iter().filter(|c| c.block.is_none()) {
            match c.name.as_str() {
                "listen" => {
                    out.had_listen = true;
                    match parse_listen(&c.args) {
                        Ok(l) => {
                            out.http2 |= l.http2;
                            out.listens.push(l);
                        }
                        Err(why) => self.skip(c, notes, Some(why)),
                    }
                }
                "server_name" => self.server_names(c, &mut out.names, notes),
                "http2" => out.http2 = c.args.first().is_some_and(|a| a == "on"),
                "ssl" => out.ssl_on = c.args.first().is_some_and(|a| a == "on"),
                "return" => out.server_return = Some(c),
                "error_page" => out.error_pages.push(c),
                _ => {
                    if !self.apply_common(c, lv, notes, 1) {
                        self.skip(c, notes, None);
                    }
                }
            }
        }
        out
    }

    /// `error_page CODE... /uri` as `error_pages`: the file the URI names
    /// under the root of its exact location (`location = /50x.html { root
    /// ...; }`), else under the server's root. nginx applies them to its own
    /// errors, as rampart does (upstream errors pass through unless
    /// `proxy_intercept_errors`).
    fn error_pages(
        &mut self,
        lines: &[&Directive],
        children: &[Directive],
        lv: &Level,
        parts: &mut ServerParts,
        notes: &mut Vec<String>,
    ) {
        let mut pages: Vec<(String, String)> = Vec::new();
        for d in lines {
            let Some((uri, codes)) = d.args.split_last() else {
                continue;
            };
            let codes: Option<Vec<u16>> = codes.iter().map(|c| c.parse().ok()).collect();
            let root = children
                .iter()
                .find(|c| c.name == "location" && c.args == ["=", uri.as_str()])
                .and_then(|l| l.block.as_deref())
                .and_then(|b| b.iter().find(|x| x.name == "root"))
                .and_then(|r| r.args.first().cloned())
                .or_else(|| lv.root.clone());
            match (codes, root) {
                (Some(codes), Some(root)) if uri.starts_with('/') && !uri.contains('$') => {
                    let file = format!("{}{uri}", root.trim_end_matches('/'));
                    for code in codes.into_iter().filter(|c| (400..=599).contains(c)) {
                        pages.push((q(&code.to_string()), q(&file)));
                    }
                }
                _ => self.skip(
                    d,
                    notes,
                    Some("error_page to a named location, a changed status or a URI with no file under a root"),
                ),
            }
        }
        if !pages.is_empty() {
            let refs: Vec<(&str, String)> =
                pages.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
            parts.head.set_c(
                k::ERROR_PAGES,
                inline_map(&refs),
                "error_page: bodies of rampart's own errors",
            );
        }
    }

    /// A `server_name` line's names as `hosts` patterns (those rampart
    /// cannot express are noted).
    fn server_names(&mut self, c: &Directive, names: &mut Vec<String>, notes: &mut Vec<String>) {
        for n in &c.args {
            let n = n.to_ascii_lowercase();
            if n == "_" || n.is_empty() {
                continue;
            }
            let base = n.strip_prefix('.');
            let candidate = base.unwrap_or(&n);
            if !valid_host_pattern(candidate) {
                notes.push(format!(
                    "not imported: server_name {n} ({}) — regex, trailing-wildcard and other patterns are not supported",
                    self.at(&c.pos)
                ));
                self.skipped.push(("server_name".into(), c.pos.clone()));
            } else if let Some(base) = base {
                names.push(base.to_string());
                names.push(format!("*.{base}"));
                notes.push(format!(
                    "server_name {n}: \"*.{base}\" matches one label only, nginx's \".{base}\" any depth"
                ));
            } else {
                names.push(n.clone());
            }
        }
    }

    /// A server-level `return`: `true` for the HTTPS redirect idiom, else
    /// a catch-all route answering it.
    fn server_return(
        &mut self,
        r: &Directive,
        parts: &mut ServerParts,
        notes: &mut Vec<String>,
    ) -> bool {
        if is_https_redirect(&r.args) {
            return true;
        }
        match self.return_action(r) {
            Ok((key_name, value, note)) => {
                notes.extend(note);
                let mut t = Table::new("[[servers.routes]]");
                t.lead
                    .push(format!("return {} ({})", r.args.join(" "), self.at(&r.pos)));
                t.set(k::PREFIX, q("/"));
                t.set(key_name, value);
                parts.routes.push(t);
                self.counts.routes += 1;
            }
            Err(why) => self.skip(r, notes, Some(why)),
        }
        false
    }

    /// The server's locations as routes, and its `root` for the paths no
    /// location takes (as nginx serves it).
    fn server_locations(
        &mut self,
        children: &[Directive],
        lv: &Level,
        certbot: &[&Directive],
        server_cors: Option<String>,
        parts: &mut ServerParts,
        notes: &mut Vec<String>,
    ) {
        let cx = LocCx {
            server: lv.clone(),
            cors: server_cors.clone(),
            parent_prefix: None,
            proxy_locations: proxy_locations(children),
            named: named_locations(children),
        };
        let used = try_files_targets(children);
        for c in children.iter().filter(|c| c.block.is_some()) {
            match c.name.as_str() {
                // A named location reached by try_files is part of the
                // route of the location that falls back to it.
                "location" if is_named(c) && used.contains(&c.args[0][1..]) => {}
                "location" => self.location(c, lv, &mut parts.routes, notes, &cx),
                "if" if certbot.iter().any(|x| std::ptr::eq(*x, c)) => {}
                _ => self.skip(c, notes, None),
            }
        }
        // nginx serves the server's root for paths no location takes.
        let has_catch_all = parts.routes.iter().any(|t| {
            t.entries
                .iter()
                .any(|e| e.key == k::PREFIX && e.value == q("/"))
        });
        if let (Some(root), false) = (lv.root.clone(), has_catch_all) {
            let mut t = Table::new("[[servers.routes]]");
            t.lead
                .push("root of the server (paths no location takes)".into());
            t.set(k::PREFIX, q("/"));
            t.set(k::STATIC, self.static_value(&root, lv, None, None));
            parts.routes.push(t);
            self.counts.routes += 1;
        }
    }

    /// Server-level keys; returns the name of the server's CORS policy.
    pub(super) fn server_settings(
        &mut self,
        parts: &mut ServerParts,
        lv: &Level,
        listens: &[Listen],
        notes: &mut Vec<String>,
    ) -> Option<String> {
        let h = &mut parts.head;
        if let Some(b) = lv.max_body {
            h.set_c(k::MAX_BODY_SIZE, q(&fmt_size(b)), "client_max_body_size");
        }
        if let Some(t) = lv.client_header_timeout {
            h.set(k::CLIENT_HEADER_TIMEOUT, q(&fmt_duration(t)));
        }
        if let Some(t) = lv.client_body_timeout {
            h.set(k::CLIENT_BODY_TIMEOUT, q(&fmt_duration(t)));
        }
        if let Some(t) = lv.keepalive_timeout {
            h.set(k::KEEPALIVE_TIMEOUT, q(&fmt_duration(t)));
        }
        if lv.access_log_off == Some(true) {
            h.set_c(k::ACCESS_LOG, "false".into(), "access_log off");
        }
        let tls = listens.iter().any(|l| l.ssl);
        let (security, extra, cors) = self.classify_headers(&lv.add_headers, tls, notes);
        match security {
            Some(c) => h.set_c(k::SECURITY_HEADERS, "true".into(), c),
            None => h.set_c(
                k::SECURITY_HEADERS,
                "true".into(),
                "nginx sent none of these; rampart's safe defaults (false to match nginx)",
            ),
        }
        if !extra.is_empty() {
            let mut t = Table::new("[servers.response_headers]");
            for (n, v) in extra {
                t.set_map_c(q(&n), q(&v), "add_header ... always");
            }
            parts.response_headers = Some(t);
        }
        if lv.gzip == Some(true) {
            parts.compression = Some(compression_table(lv));
        }
        if tls {
            parts.tls = Some(self.tls_table(lv, notes));
        } else if lv.cert.is_some() || lv.protocols.is_some() {
            notes.push(
                "TLS settings inherited from http are not used: this server has no ssl listener"
                    .into(),
            );
        }
        let cors = cors.map(|c| self.cors_policy(&c, None, notes));
        if !lv.set_headers.is_empty() {
            notes.push(
                "proxy_set_header lines at server level are carried onto each proxied route".into(),
            );
        }
        cors
    }

    pub(super) fn tls_table(&mut self, lv: &Level, notes: &mut Vec<String>) -> Table {
        let mut t = Table::new("[servers.tls]");
        let (cert, key_path) = match (&lv.cert, &lv.key) {
            (Some(c), Some(k)) => (c.clone(), k.clone()),
            (c, k) => {
                notes.push(
                    "the nginx server has no certificate here: the paths below are placeholders"
                        .into(),
                );
                (
                    c.clone()
                        .unwrap_or_else(|| "/etc/rampart/tls/fullchain.pem".into()),
                    k.clone()
                        .unwrap_or_else(|| "/etc/rampart/tls/privkey.pem".into()),
                )
            }
        };
        let relocate = |p: &str| match &self.opts.cert_dir {
            Some(dir) => {
                let base = Path::new(p)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                (dir.join(base).display().to_string(), format!("nginx: {p}"))
            }
            None => (p.to_string(), String::new()),
        };
        let (c, cc) = relocate(&cert);
        let (k, kc) = relocate(&key_path);
        t.set_c(k::CERT, q(&c), cc);
        t.set_c(k::KEY, q(&k), kc);
        if let Some(p) = &lv.protocols {
            let dropped: Vec<&str> = p
                .iter()
                .filter(|p| *p != "TLSv1.2" && *p != "TLSv1.3")
                .map(String::as_str)
                .collect();
            if !dropped.is_empty() {
                notes.push(format!(
                    "ssl_protocols {}: not offered by rampart (insecure)",
                    dropped.join(" ")
                ));
            }
        }
        t
    }

    pub(super) fn emit_server(
        &mut self,
        parts: ServerParts,
        listens: Vec<Listen>,
        names: Vec<String>,
        https_redirect: bool,
        http2: bool,
        protocols: Option<Vec<String>>,
    ) {
        // One rampart server is either TLS or plain: nginx servers with both
        // kinds of listen become two.
        let plain: Vec<&Listen> = listens.iter().filter(|l| !l.ssl).collect();
        let tls: Vec<&Listen> = listens.iter().filter(|l| l.ssl).collect();
        let groups: Vec<(Vec<&Listen>, bool)> = [(plain, false), (tls, true)]
            .into_iter()
            .filter(|(l, _)| !l.is_empty())
            .collect();
        let split = groups.len() > 1;
        for (group, is_tls) in groups {
            let mut p = parts.clone();
            let base = names.first().cloned().unwrap_or_else(|| "default".into());
            let mut name = if https_redirect {
                format!("{base}-redirect")
            } else if split && !is_tls {
                format!("{base}-http")
            } else {
                base
            };
            let stem = name.clone();
            let mut n = 2;
            while self.server_names.contains(&name) {
                name = format!("{stem}-{n}");
                n += 1;
            }
            self.server_names.insert(name.clone());
            if split {
                p.head.notes.push(format!(
                    "the nginx server listened on both plain and TLS ports; this is its {} half",
                    if is_tls { "TLS" } else { "plain-HTTP" }
                ));
            }
            let mut rest = Vec::new();
            rest.extend(p.response_headers);
            rest.extend(p.compression);
            rest.extend(p.routes);
            self.servers.push(ServerOut {
                default: group.iter().any(|l| l.default),
                name,
                listens: group.iter().map(|l| l.addr.clone()).collect(),
                hosts: names.clone(),
                tls: is_tls,
                http2,
                protocols: if is_tls { protocols.clone() } else { None },
                head: p.head,
                tls_table: if is_tls { p.tls } else { None },
                rest,
            });
            self.counts.servers += 1;
        }
    }

    /// A file without `server` blocks (a snippet nginx includes into one)
    /// still needs a server in rampart: one on nginx's default `*:80`
    /// carries the http-level settings.
    pub(super) fn server_for_snippet(&mut self, lv: &Level) {
        let mut notes = vec!["the nginx file has no server block (it is a snippet included into one): this server carries its http-level settings; add routes".to_string()];
        if lv.cert.is_some() || lv.protocols.is_some() {
            notes.push("its TLS settings need a TLS server: add a [servers.tls] table with cert and key (listen on 443)".into());
            if let Some(p) = &lv.protocols {
                notes.push(format!(
                    "ssl_protocols {}: rampart offers TLSv1.2 and TLSv1.3 by default",
                    p.join(" ")
                ));
            }
        }
        let mut parts = ServerParts::new();
        parts
            .head
            .lead
            .push("---- server (not in the nginx file) ----".into());
        let listens = vec![Listen {
            addr: "0.0.0.0:80".into(),
            ssl: false,
            http2: false,
            default: true,
        }];
        let mut lv = lv.clone();
        lv.cert = None;
        lv.protocols = None;
        let _ = self.server_settings(&mut parts, &lv, &listens, &mut notes);
        parts.head.notes = notes;
        self.emit_server(parts, listens, Vec::new(), false, false, None);
    }
}

/// What a server block's own directives say.
#[derive(Default)]
struct ServerDirectives<'d> {
    listens: Vec<Listen>,
    /// Any `listen` line, usable or not.
    had_listen: bool,
    names: Vec<String>,
    server_return: Option<&'d Directive>,
    http2: bool,
    ssl_on: bool,
    error_pages: Vec<&'d Directive>,
}
