//! One route from a location: its action, the settings in effect there,
//! its response headers.

use std::borrow::Cow;

use super::*;

impl Translator<'_> {
    /// A route that answers `status` to everyone: nginx checked something
    /// here that rampart cannot (fail closed). `internal` is no change: nginx
    /// answers 404 to a client's request there too.
    fn refused_action(&mut self, d: &Directive, (status, why): &(u16, String), t: &mut Table) {
        let what = format!("location {}", d.args.join(" "));
        if !why.starts_with("internal") {
            self.changed(
                &d.pos,
                format!("{what}: {why}; rampart answers {status} to everyone"),
            );
        }
        t.set_c(
            k::RESPOND,
            inline(&[(k::STATUS, status.to_string())]),
            format!("nginx: {why}"),
        );
        self.warn(
            &d.pos,
            format!("{what}: {why} has no rampart equivalent; the route answers {status} to everyone (put the check in the application, or remove this route)"),
        );
    }

    /// The route of one location, or `None` (noted) when it cannot be one.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn route(
        &mut self,
        d: &Directive,
        (kind, pattern): (Key, String),
        lv: &Level,
        parent: &Level,
        loc: Loc<'_>,
        mut notes: Vec<String>,
        server_notes: &mut Vec<String>,
        cx: &LocCx,
    ) -> Option<Table> {
        let what = format!("location {}", d.args.join(" "));
        if !self.location_supported(d, (kind, &pattern), &loc, server_notes) {
            return None;
        }
        let mut t = Table::new("[[servers.routes]]");
        t.lead.push(format!("{what} ({})", self.at(&d.pos)));
        t.set(kind, q(&pattern));

        // The action. Access rules rampart cannot express fail closed.
        let auth = self.route_auth(d, lv, cx);
        let lv: Cow<'_, Level> = match &auth {
            Err(why) => Cow::Owned(lv.refusing(403, why)),
            Ok(_) => Cow::Borrowed(lv),
        };
        let lv = lv.as_ref();
        let action = self.route_action(
            d,
            (kind, &pattern),
            lv,
            (&loc, cx),
            &mut t,
            &mut notes,
            server_notes,
        )?;
        let (is_static, upstream_name, direct_host) =
            (action.is_static, action.upstream, action.direct_host);
        let proxied = upstream_name.is_some();
        let proxy_lv = action.app_level.as_ref().unwrap_or(lv);
        // A Cache-Control `try_files.expires` carries is for the files only.
        let headers_lv: Cow<'_, Level> = match action.files_cache_control {
            true => Cow::Owned(lv.without_header("cache-control")),
            false => Cow::Borrowed(lv),
        };
        // Route-level settings in effect here.
        if let Ok(Some((name, nginx))) = &auth {
            t.set_c(k::AUTH, q(name), nginx.clone());
        }
        self.route_policies(&mut t, lv, &mut notes);
        if proxied {
            proxied_settings(
                &mut t,
                proxy_lv,
                direct_host.as_deref(),
                upstream_name.as_deref(),
                &mut notes,
            );
        }
        if lv.access_log_off == Some(true) && cx.server.access_log_off != Some(true) {
            t.set_c(k::ACCESS_LOG, "false".into(), "access_log off");
        }

        self.route_response_headers(&mut t, &headers_lv, &loc, cx, is_static, &mut notes);
        self.per_server_settings_here(d, lv, (parent, cx), &mut notes);
        t.notes = notes;
        Some(t)
    }

    /// Settings rampart has per server that differ in this location: the
    /// body size limit (warned: it was a limit), compression (noted).
    fn per_server_settings_here(
        &mut self,
        d: &Directive,
        lv: &Level,
        (parent, cx): (&Level, &LocCx),
        notes: &mut Vec<String>,
    ) {
        let what = format!("location {}", d.args.join(" "));
        if lv.max_body != cx.server.max_body {
            let limit = lv.max_body.map(fmt_size).unwrap_or_else(|| "1M".into());
            self.warn(
                &d.pos,
                format!("{what}: client_max_body_size {limit} here is not imported: rampart sets the limit per server (the server's applies)"),
            );
            self.skipped
                .push(("client_max_body_size".into(), d.pos.clone()));
            notes.push(format!(
                "not imported: client_max_body_size {limit} — rampart sets it per server (the server's value applies)"
            ));
        }
        if lv.gzip != parent.gzip || lv.gzip_types != parent.gzip_types {
            notes.push(
                "gzip settings differ in this location: rampart sets compression per server".into(),
            );
        }
    }

    /// The route's concurrency limit, access lists and rate limits.
    fn route_policies(&mut self, t: &mut Table, lv: &Level, notes: &mut Vec<String>) {
        if let Some((zone, max)) = lv.limit_conn.first() {
            let name = self.conn_limit_name(zone, *max, lv.limit_conn_status);
            t.set_c(k::CONN_LIMIT, q(&name), format!("limit_conn {zone} {max}"));
            if lv.limit_conn.len() > 1 {
                notes.push("nginx checked several limit_conn lines here; rampart checks one (the first) per route".into());
            }
        }
        if let (Ok((allow, deny)), None) = (access_lists(&lv.access), lv.refused()) {
            if !deny.is_empty() {
                t.set_c(k::DENY, list(&deny), "deny");
            }
            if !allow.is_empty() {
                t.set_c(k::ALLOW, list(&allow), "allow ...; deny all;");
            }
        }
        rate_limit(t, lv, self);
    }

    /// The route's action: `respond` for a refused location, `return`,
    /// `proxy_pass`, or the files of `root`/`alias`. `None`: the location
    /// is not imported (noted).
    #[allow(clippy::too_many_arguments)]
    fn route_action(
        &mut self,
        d: &Directive,
        (kind, pattern): (Key, &str),
        lv: &Level,
        (loc, cx): (&Loc<'_>, &LocCx),
        t: &mut Table,
        notes: &mut Vec<String>,
        server_notes: &mut Vec<String>,
    ) -> Option<RouteAction> {
        let what = format!("location {}", d.args.join(" "));
        let mut out = RouteAction::default();
        if let Some(refused) = &lv.refused() {
            self.refused_action(d, refused, t);
        } else if let Some(r) = loc.ret {
            match self.return_action(r) {
                Ok((k, v, note)) => {
                    t.set(k, v);
                    notes.extend(note);
                }
                Err(why) => {
                    self.changed(
                        &r.pos,
                        format!("{what}: {}: {why}", r.text().trim_end_matches(';')),
                    );
                    self.skip(r, server_notes, Some(why));
                    return None;
                }
            }
            if loc.proxy.is_some() {
                notes.push(
                    "return answers before proxy_pass: the proxy_pass of this location is not used"
                        .into(),
                );
            }
        } else if let (Some((app, line)), None) = (&loc.app, loc.proxy) {
            return self.try_files_app(d, (app, line), lv, cx, t, notes);
        } else if let Some(p) = loc.proxy {
            let prefix = (kind == k::PREFIX).then_some(pattern);
            (out.upstream, out.direct_host) = self.proxy_action(d, p, prefix, t, server_notes)?;
        } else if let Some(root) = lv.root.clone() {
            let root = self.static_root(d, (kind, pattern), lv, loc, root, server_notes)?;
            let immutable =
                lv.expires.is_some() && lv.add_headers.iter().any(is_immutable_cache_control);
            let fallback = loc.fallback.as_deref();
            t.set(
                k::STATIC,
                self.static_value(&root, lv, Some(immutable), fallback),
            );
            out.is_static = true;
        } else {
            self.changed(
                &d.pos,
                format!("{what}: no proxy_pass, return, root or alias"),
            );
            server_notes.push(format!(
                "not imported: {what} ({}) — no proxy_pass, return, root or alias",
                self.at(&d.pos)
            ));
            self.skipped.push(("location".into(), d.pos.clone()));
            return None;
        }
        Some(out)
    }

    /// A location rampart cannot route (a regex its engine lacks, FastCGI
    /// and the like) is left out with a warning.
    fn location_supported(
        &mut self,
        d: &Directive,
        (kind, pattern): (Key, &str),
        loc: &Loc<'_>,
        server_notes: &mut Vec<String>,
    ) -> bool {
        let what = format!("location {}", d.args.join(" "));
        if kind == k::REGEX {
            if let Err(e) = regex::Regex::new(pattern) {
                let msg =
                    format!("{what}: the regex is not supported by rampart's regex engine: {e}");
                self.warn(&d.pos, msg.lines().next().unwrap_or_default().to_string());
                self.skip(
                    d,
                    server_notes,
                    Some(
                        "regex with features rampart's engine lacks (look-around, back-references)",
                    ),
                );
                return false;
            }
        }
        if let Some(u) = loc.unsupported {
            let why = "rampart proxies HTTP only: no FastCGI, uwsgi, SCGI, gRPC or memcached";
            self.warn(&u.pos, format!("{}: {why}; {what} not imported", u.name));
            self.skip(d, server_notes, Some(why));
            return false;
        }
        true
    }

    /// `proxy_pass URL`: the route's `upstream` (and `rewrite_prefix`);
    /// returns the upstream's name and the host of a direct URL.
    fn proxy_action(
        &mut self,
        d: &Directive,
        p: &Directive,
        prefix: Option<&str>,
        t: &mut Table,
        server_notes: &mut Vec<String>,
    ) -> Option<(Option<String>, Option<String>)> {
        let what = format!("location {}", d.args.join(" "));
        let url = p.args.first().cloned().unwrap_or_default();
        match self.proxy_target(&url, prefix) {
            Ok(target) => {
                t.set(k::UPSTREAM, q(&target.upstream));
                if let Some(to) = &target.rewrite_prefix {
                    t.set_c(
                        k::REWRITE_PREFIX,
                        q(to),
                        format!("proxy_pass {url}: the URI replaces the location prefix"),
                    );
                }
                Some((Some(target.upstream), target.host))
            }
            Err(why) => {
                self.warn(
                    &p.pos,
                    format!("proxy_pass {url}: {why}; {what} not imported"),
                );
                self.skip(d, server_notes, Some(why));
                None
            }
        }
    }

    /// The directory a `root`/`alias` location serves, `None` for the
    /// alias forms rampart cannot express (noted).
    fn static_root(
        &mut self,
        d: &Directive,
        (kind, pattern): (Key, &str),
        lv: &Level,
        loc: &Loc<'_>,
        root: String,
        server_notes: &mut Vec<String>,
    ) -> Option<String> {
        Some(if lv.alias {
            if !loc.own_alias {
                self.skip(
                    d,
                    server_notes,
                    Some("a nested location under an alias: not supported"),
                );
                return None;
            }
            match kind {
                k::PREFIX => root,
                // `location = /robots.txt { alias /srv/robots.txt; }`
                k::EXACT => match alias_dir_for_exact(&root, pattern) {
                    Some(dir) => dir,
                    None => {
                        self.skip(
                            d,
                            server_notes,
                            Some("alias to a file of another name: not supported"),
                        );
                        return None;
                    }
                },
                _ => {
                    self.skip(
                        d,
                        server_notes,
                        Some("alias in a regex location uses captures; not supported"),
                    );
                    return None;
                }
            }
        } else {
            join_root(&root, kind, pattern)
        })
    }

    /// The route's response headers: a location with its own add_header
    /// lines (or a parent location's) replaced the server's in nginx; the
    /// CORS policy they make; `expires` on a proxied route.
    fn route_response_headers(
        &mut self,
        t: &mut Table,
        lv: &Level,
        loc: &Loc<'_>,
        cx: &LocCx,
        is_static: bool,
        notes: &mut Vec<String>,
    ) {
        let mut route_headers: Vec<(String, String)> = Vec::new();
        let location_headers = lv.add_headers_depth == 2;
        if location_headers || loc.preflight.is_some() {
            let own: Vec<Header> = lv.add_headers.clone();
            let (_, extra, cors) = self.classify_headers(&own, true, notes);
            let server_has: Vec<(String, String)> = cx
                .server
                .add_headers
                .iter()
                .map(|h| (h.name.to_ascii_lowercase(), h.value.clone()))
                .collect();
            for (n, v) in extra {
                if server_has.contains(&(n.to_ascii_lowercase(), v.clone())) {
                    continue;
                }
                // `Cache-Control: public, immutable` next to `expires` is
                // what `immutable = true` sends.
                if is_static
                    && lv.expires.is_some()
                    && n.eq_ignore_ascii_case("cache-control")
                    && v.contains("immutable")
                {
                    continue;
                }
                route_headers.push((q(&n), q(&v)));
            }
            if location_headers && !cx.server.add_headers.is_empty() {
                let lost: Vec<&str> = cx
                    .server
                    .add_headers
                    .iter()
                    .filter(|p| !own.iter().any(|o| o.name.eq_ignore_ascii_case(&p.name)))
                    .map(|p| p.name.as_str())
                    .collect();
                if !lost.is_empty() {
                    notes.push(format!(
                        "nginx sent only this location's add_header lines here (its own add_header replaced the inherited {}); rampart keeps the server's headers on this route too",
                        lost.join(", ")
                    ));
                }
            }
            self.route_cors(t, cors, &own, location_headers, loc, cx, notes);
        }
        if let (Some(ms), false) = (lv.expires, is_static) {
            let cc = q("Cache-Control");
            if !route_headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(&cc))
            {
                route_headers.push((cc, q(&format!("max-age={}", ms / 1000))));
            }
        }
        if !route_headers.is_empty() {
            let refs: Vec<(&str, String)> = route_headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.clone()))
                .collect();
            t.set_c(
                k::RESPONSE_HEADERS,
                inline_map(&refs),
                "add_header / expires",
            );
        }
    }

    /// The route's `cors`: a policy from this location's Access-Control-*
    /// lines or its preflight `if` block, or `false` where the location's
    /// own `add_header` lines dropped the server's in nginx.
    #[allow(clippy::too_many_arguments)]
    fn route_cors(
        &mut self,
        t: &mut Table,
        cors: Option<Vec<Header>>,
        own: &[Header],
        location_headers: bool,
        loc: &Loc<'_>,
        cx: &LocCx,
        notes: &mut Vec<String>,
    ) {
        let server_cors = cx.cors.as_deref();
        match (cors, loc.preflight.as_deref()) {
            (Some(c), pf) => {
                let name = self.cors_policy(&c, pf, notes);
                if server_cors != Some(name.as_str()) {
                    t.set(k::CORS, q(&name));
                }
            }
            (None, Some(pf))
                if pf
                    .iter()
                    .any(|h| h.name.to_ascii_lowercase().starts_with("access-control-")) =>
            {
                let name = self.cors_policy(pf, Some(pf), notes);
                t.set(k::CORS, q(&name));
            }
            (None, _) if server_cors.is_some() && location_headers => {
                t.set_c(k::CORS, "false".into(), "this location's own add_header lines dropped the server's CORS headers in nginx");
            }
            _ => {}
        }
        if let Some(pf) = &loc.preflight {
            let in_if = pf
                .iter()
                .any(|h| h.name.eq_ignore_ascii_case("access-control-allow-origin"));
            let outside = own
                .iter()
                .any(|h| h.name.eq_ignore_ascii_case("access-control-allow-origin"));
            if location_headers && !in_if && outside {
                notes.push("nginx's `if ($request_method = OPTIONS)` block had its own add_header lines, so its 204 carried no Access-Control-Allow-Origin and browsers failed the preflight; rampart answers preflights with the full policy".into());
            }
        }
    }
}

/// What a route's action left for its other settings.
#[derive(Default)]
pub(super) struct RouteAction {
    pub(super) is_static: bool,
    /// The upstream it proxies to.
    pub(super) upstream: Option<String>,
    /// The `Host` nginx sent to a `proxy_pass http://host:port`.
    pub(super) direct_host: Option<String>,
    /// `try_files ... @app`: the settings of the named location, which
    /// proxied (headers, timeouts, buffering).
    pub(super) app_level: Option<Level>,
    /// The location's `add_header Cache-Control`, carried by `try_files`'s
    /// `expires` (its files only) instead of the route's headers.
    pub(super) files_cache_control: bool,
}

/// `limit_req` lines in effect here as the route's `rate_limit`.
fn rate_limit(t: &mut Table, lv: &Level, tr: &mut Translator<'_>) {
    if !lv.limit_req.is_empty() {
        let status = lv.limit_req_status;
        let tables: Vec<String> = lv
            .limit_req
            .iter()
            .map(|l| {
                let mut p = vec![(k::ZONE, q(&l.zone))];
                if l.burst > 0 {
                    p.push((k::BURST, l.burst.to_string()));
                }
                if l.nodelay {
                    p.push((k::NODELAY, "true".into()));
                }
                if let Some(dl) = l.delay {
                    p.push((k::DELAY, dl.to_string()));
                }
                if let Some(s) = status.filter(|s| *s != 429) {
                    p.push((k::STATUS, s.to_string()));
                }
                inline(&p)
            })
            .collect();
        let value = if tables.len() == 1 {
            tables[0].clone()
        } else {
            format!("[{}]", tables.join(", "))
        };
        t.set_c(k::RATE_LIMIT, value, "limit_req");
        if status.is_none() && !tr.limit_503_noted {
            tr.limit_503_noted = true;
            tr.header.push("limit_req without limit_req_status: nginx refused with 503 (its default); rampart refuses with 429 and Retry-After. Add status = 503 to a rate_limit to keep 503.".into());
        }
    }
}

/// Timeouts, buffering and request headers of a proxied route (nginx sends
/// `Host: $proxy_host` unless told otherwise).
fn proxied_settings(
    t: &mut Table,
    lv: &Level,
    direct_host: Option<&str>,
    upstream_name: Option<&str>,
    notes: &mut Vec<String>,
) {
    if let Some(v) = lv.connect_timeout {
        t.set_c(
            k::CONNECT_TIMEOUT,
            q(&fmt_duration(v)),
            "proxy_connect_timeout",
        );
    }
    if let Some(v) = lv.read_timeout {
        let c = if v >= 3_600_000 {
            "proxy_read_timeout; also the idle timeout of WebSockets"
        } else {
            "proxy_read_timeout"
        };
        t.set_c(k::READ_TIMEOUT, q(&fmt_duration(v)), c);
    }
    if let Some(v) = lv.send_timeout {
        t.set_c(k::WRITE_TIMEOUT, q(&fmt_duration(v)), "proxy_send_timeout");
    }
    // rampart has one switch for both directions: streaming wins, as it is
    // what an event stream or an app reading its upload as it comes needs.
    match (
        lv.buffering == Some(false),
        lv.request_buffering == Some(false),
    ) {
        (false, false) => {}
        (true, true) => t.set_c(
            k::BUFFERING,
            "false".into(),
            "proxy_buffering off + proxy_request_buffering off: both directions streamed",
        ),
        (response, _) => {
            let off = if response {
                "proxy_buffering"
            } else {
                "proxy_request_buffering"
            };
            t.set_c(
                k::BUFFERING,
                "false".into(),
                format!("{off} off: streamed as it arrives"),
            );
            notes.push(format!(
                "{off} off here: rampart's buffering switch covers both directions, so the other is streamed too"
            ));
        }
    }
    let mut set = lv.set_headers.clone();
    // nginx sends `Host: $proxy_host` unless told otherwise.
    let host_default = matches!(lv.host_header.as_deref(), None | Some("$proxy_host"));
    match (direct_host, host_default) {
        (Some(h), true) => set.insert(0, ("Host".into(), h.to_string())),
        (None, true) => notes.push(format!(
            "nginx sent `Host: {}` (no proxy_set_header Host); rampart sends the client's Host",
            upstream_name.unwrap_or_default()
        )),
        _ => {}
    }
    if !set.is_empty() {
        let pairs: Vec<(String, String)> = set.iter().map(|(n, v)| (q(n), q(v))).collect();
        let refs: Vec<(&str, String)> =
            pairs.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
        t.set_c(k::REQUEST_HEADERS, inline_map(&refs), "proxy_set_header");
    }
}
