//! The main and `http` levels, and the directives every level may carry (inherited per nginx's rules).

use super::*;

impl Translator<'_> {
    // ---- main and http ---------------------------------------------------
    pub(super) fn main_level(&mut self, directives: &[Directive], level: &mut Level) {
        let mut notes = Vec::new();
        let mut real_ip_from = Vec::new();
        let mut real_ip_header = None;
        for d in directives.iter().filter(|d| d.block.is_none()) {
            match d.name.as_str() {
                "limit_req_zone" | "limit_conn_zone" => {}
                "worker_processes" => match d.args.first().map(String::as_str) {
                    Some("auto") | None => {
                        self.global
                            .set_c(k::THREADS, "0".into(), "placeholder replaced below")
                    }
                    Some(n) => match n.parse::<u64>() {
                        Ok(n) => self.global.set_c(
                            k::THREADS,
                            n.to_string(),
                            format!("worker_processes {n}"),
                        ),
                        Err(_) => self.skip(d, &mut notes, None),
                    },
                },
                "server_tokens" => self.server_tokens(d),
                "set_real_ip_from" => real_ip_from.extend(d.args.iter().cloned()),
                "real_ip_header" => real_ip_header = d.args.first().cloned(),
                "real_ip_recursive" => {}
                "access_log" if d.args.first().is_some_and(|a| a != "off") => {
                    let path = d.args.first().cloned().unwrap_or_default();
                    self.log.set_c(
                        k::ACCESS_LOG,
                        q("stdout"),
                        format!("nginx: {path} (set a path here to keep a file; rampart writes one JSON line per request)"),
                    );
                }
                "access_log" => self.log.set_c(k::ACCESS_LOG, q("off"), "access_log off"),
                "error_log" => {
                    let level_word = d.args.get(1).cloned();
                    self.skip(
                        d,
                        &mut notes,
                        Some(match level_word.as_deref() {
                            Some("warn" | "error" | "crit" | "alert" | "emerg") =>
                                "diagnostics go to stderr; [log] level = \"warn\" would also hide the startup lines",
                            _ => "diagnostics go to stderr ([log] level and format)",
                        }),
                    );
                }
                _ => {
                    if !self.apply_common(d, level, &mut notes, 0) {
                        self.skip(d, &mut notes, None);
                    }
                }
            }
        }
        // `threads = 0` stood for "auto": rampart's default is one per core.
        if let Some(i) = self
            .global
            .entries
            .iter()
            .position(|e| e.key == k::THREADS && e.value == "0")
        {
            self.global.entries.remove(i);
            notes.push(
                "worker_processes auto: rampart's default is one worker thread per core".into(),
            );
        }
        if !real_ip_from.is_empty() {
            self.trusted_proxies(directives, real_ip_from, real_ip_header, &mut notes);
        }
        self.top_notes.append(&mut notes);
        self.main_blocks(directives, level);
    }

    /// The blocks of the main and `http` levels, after their directives
    /// (which the blocks inherit).
    fn main_blocks(&mut self, directives: &[Directive], level: &mut Level) {
        for d in directives.iter().filter(|d| d.block.is_some()) {
            let children = d.block.as_deref().unwrap_or_default();
            match d.name.as_str() {
                "http" => {
                    let mut http = level.child();
                    self.main_level(children, &mut http);
                    *level = http;
                }
                "upstream" => {}
                "server" => self.server(d, children, level),
                "events" => {
                    let inner: Vec<String> = children.iter().map(|c| c.text()).collect();
                    self.skip_top(
                        d,
                        &format!(
                            "{}: rampart has no per-worker connection cap; raise LimitNOFILE instead",
                            inner.join("; ")
                        ),
                    );
                }
                _ => self.skip_top(d, reason(&d.name).unwrap_or("no rampart equivalent")),
            }
        }
    }

    /// `set_real_ip_from` (with `real_ip_header X-Forwarded-For`, nginx's
    /// usual pairing) as `trusted_proxies`.
    fn trusted_proxies(
        &mut self,
        directives: &[Directive],
        real_ip_from: Vec<String>,
        real_ip_header: Option<String>,
        notes: &mut Vec<String>,
    ) {
        let header_ok = real_ip_header
            .as_deref()
            .is_none_or(|h| h.eq_ignore_ascii_case("X-Forwarded-For"));
        if header_ok {
            self.global.set_c(
                k::TRUSTED_PROXIES,
                list(&real_ip_from),
                "set_real_ip_from; the client IP is the right-most untrusted X-Forwarded-For entry",
            );
        } else {
            notes.push(format!(
                "not imported: real_ip_header {} — rampart takes the client IP from X-Forwarded-For only",
                real_ip_header.unwrap_or_default()
            ));
            if let Some(d) = directives.iter().find(|d| d.name == "real_ip_header") {
                self.skipped.push(("real_ip_header".into(), d.pos.clone()));
            }
        }
    }

    pub(super) fn server_tokens(&mut self, d: &Directive) {
        if d.args.first().is_some_and(|a| a == "off")
            && !self
                .global
                .entries
                .iter()
                .any(|e| e.key == k::SERVER_HEADER)
        {
            self.global.set_c(
                k::SERVER_HEADER,
                "false".into(),
                "server_tokens off: no Server header at all",
            );
        }
    }

    /// Directives valid at the http, server and location levels. Returns
    /// false for ones it does not know.
    pub(super) fn apply_common(
        &mut self,
        d: &Directive,
        lv: &mut Level,
        notes: &mut Vec<String>,
        depth: u8,
    ) -> bool {
        let a0 = d.args.first().map(String::as_str).unwrap_or("");
        match d.name.as_str() {
            "add_header" => add_header(d, lv, depth),
            "proxy_set_header" => return self.proxy_set_header(d, lv, notes),
            "proxy_http_version" | "gzip_vary" | "real_ip_recursive" => {}
            "proxy_cache_bypass" | "proxy_no_cache" if a0 == "$http_upgrade" => {}
            "proxy_redirect" if a0 == "off" || a0 == "default" => {}
            "limit_req" => self.limit_req(d, lv, notes),
            "limit_conn" => self.limit_conn(d, lv, notes),
            "keepalive_timeout" => self.keepalive_timeout(d, lv, notes),
            "access_log" => {
                lv.access_log_off = Some(a0 == "off");
                if a0 != "off" {
                    notes.push(format!(
                        "access_log {a0} ({}): rampart has one access log for the process ([log] access_log), one JSON line per request",
                        self.at(&d.pos)
                    ));
                }
            }
            "deny" | "allow" if d.args.len() == 1 => {
                if !lv.access_here {
                    lv.access.clear();
                    lv.access_here = true;
                }
                lv.access.push((d.name == "allow", a0.to_string()));
            }
            "auth_request_set" => match d.args.get(1).and_then(|v| answer_header(v)) {
                Some(h) => lv.auth_request_set.push(h),
                None => self.skip(d, notes, None),
            },
            "include" => self.include(d, notes),
            "expires" => match a0 {
                "max" => lv.expires = Some(3650 * 86_400_000),
                "off" | "epoch" => lv.expires = None,
                v => match duration_ms(v) {
                    Some(ms) => lv.expires = Some(ms),
                    None => self.skip(d, notes, Some("only a fixed time is supported")),
                },
            },
            "gzip_types" => {
                if d.args.iter().any(|a| a == "*") {
                    notes.push("gzip_types * (every type): not imported; rampart compresses the listed types only".into());
                }
                lv.gzip_types = Some(d.args.clone());
            }
            "server_tokens" => self.server_tokens(d),
            _ => return setting(d, lv),
        }
        true
    }

    /// Any `proxy_set_header` at a level replaces the inherited list.
    fn proxy_set_header(&mut self, d: &Directive, lv: &mut Level, notes: &mut Vec<String>) -> bool {
        let (Some(name), Some(value)) = (d.args.first(), d.args.get(1)) else {
            return false;
        };
        if !lv.set_headers_here {
            lv.set_headers.clear();
            lv.host_header = None;
            lv.set_headers_here = true;
        }
        if name.eq_ignore_ascii_case("host") {
            lv.host_header = Some(value.clone());
        }
        if !is_standard_proxy_header(name, value) {
            if value.contains('$') {
                self.skip(
                    d,
                    notes,
                    Some("header values with variables are not supported"),
                );
            } else {
                lv.set_headers.push((name.clone(), value.clone()));
            }
        }
        true
    }

    /// `limit_req zone=NAME [burst=N] [nodelay | delay=N]`; kept only when
    /// its zone was imported.
    fn limit_req(&mut self, d: &Directive, lv: &mut Level, notes: &mut Vec<String>) {
        if !lv.limit_req_here {
            lv.limit_req.clear();
            lv.limit_req_here = true;
        }
        let mut l = LimitReq {
            zone: String::new(),
            burst: 0,
            nodelay: false,
            delay: None,
        };
        for a in &d.args {
            if let Some(z) = a.strip_prefix("zone=") {
                l.zone = z.to_string();
            } else if let Some(b) = a.strip_prefix("burst=") {
                l.burst = b.parse().unwrap_or(0);
            } else if a == "nodelay" {
                l.nodelay = true;
            } else if let Some(v) = a.strip_prefix("delay=") {
                l.delay = v.parse().ok();
            }
        }
        if self.zone_names.contains(&l.zone) {
            lv.limit_req.push(l);
        } else {
            self.skip(d, notes, Some("its zone was not imported"));
        }
    }

    /// `limit_conn ZONE N`; kept only when its zone was imported.
    fn limit_conn(&mut self, d: &Directive, lv: &mut Level, notes: &mut Vec<String>) {
        let a0 = d.args.first().map(String::as_str).unwrap_or("");
        let n = d.args.get(1).and_then(|n| n.parse::<u64>().ok());
        match n.filter(|_| self.conn_zones.contains_key(a0)) {
            Some(n) => {
                if !lv.limit_conn_here {
                    lv.limit_conn.clear();
                    lv.limit_conn_here = true;
                }
                lv.limit_conn.push((a0.to_string(), n));
            }
            None => self.skip(d, notes, None),
        }
    }

    fn keepalive_timeout(&mut self, d: &Directive, lv: &mut Level, notes: &mut Vec<String>) {
        lv.keepalive_timeout = d.args.first().and_then(|a| duration_ms(a));
        if let Some(second) = d.args.get(1) {
            notes.push(format!(
                "not imported: keepalive_timeout's second value ({second}, for a Keep-Alive response header)"
            ));
            self.skipped
                .push(("keepalive_timeout".into(), d.pos.clone()));
        }
    }

    /// `include`: the parser has already inlined every file it found, so an
    /// include left here matched nothing (or is `mime.types`).
    fn include(&mut self, d: &Directive, notes: &mut Vec<String>) {
        let a0 = d.args.first().map(String::as_str).unwrap_or("");
        let missing = !a0.ends_with("mime.types");
        let why = if missing {
            "the file is not on this machine (or the pattern matched nothing): copy it next to the imported file and import again"
        } else {
            "rampart has a built-in MIME type table"
        };
        if missing {
            self.warn(
                &d.pos,
                format!("include {a0}: not found; its directives are not imported"),
            );
        }
        self.skip(d, notes, Some(why));
    }
}

/// `add_header`: the first at a level replaces the inherited list.
fn add_header(d: &Directive, lv: &mut Level, depth: u8) {
    if !lv.add_headers_here {
        lv.add_headers.clear();
        lv.add_headers_here = true;
        lv.add_headers_depth = depth;
    }
    if let (Some(name), Some(value)) = (d.args.first(), d.args.get(1)) {
        lv.add_headers.push(Header {
            name: name.clone(),
            value: value.clone(),
            pos: d.pos.clone(),
        });
    }
}

/// The one-value settings every level may carry, stored on the level for
/// inheritance. Returns false for a directive that is not one of them.
fn setting(d: &Directive, lv: &mut Level) -> bool {
    let a0 = d.args.first().map(String::as_str).unwrap_or("");
    let dur = |s: &str| duration_ms(s);
    match d.name.as_str() {
        "limit_req_status" => lv.limit_req_status = a0.parse().ok(),
        "limit_conn_status" => lv.limit_conn_status = a0.parse().ok(),
        "gzip" => lv.gzip = Some(a0 == "on"),
        "gzip_min_length" => lv.gzip_min_length = size(a0),
        "client_max_body_size" => lv.max_body = size(a0),
        "client_header_timeout" => lv.client_header_timeout = dur(a0),
        "client_body_timeout" => lv.client_body_timeout = dur(a0),
        "ssl_certificate" => lv.cert = Some(a0.to_string()),
        "ssl_certificate_key" => lv.key = Some(a0.to_string()),
        "ssl_protocols" => lv.protocols = Some(d.args.clone()),
        "proxy_connect_timeout" => lv.connect_timeout = dur(a0),
        "proxy_read_timeout" => lv.read_timeout = dur(a0),
        "proxy_send_timeout" => lv.send_timeout = dur(a0),
        "proxy_buffering" => lv.buffering = Some(a0 != "off"),
        "proxy_request_buffering" => lv.request_buffering = Some(a0 != "off"),
        "root" => {
            lv.root = Some(a0.to_string());
            lv.alias = false;
        }
        "auth_basic" => lv.auth_basic = (a0 != "off").then(|| a0.to_string()),
        "auth_basic_user_file" => lv.auth_basic_user_file = Some(a0.to_string()),
        "auth_request" => lv.auth_request = (a0 != "off").then(|| a0.to_string()),
        "satisfy" if a0 == "all" => {}
        "index" => lv.index = Some(a0.to_string()),
        _ => return false,
    }
    true
}

pub(super) fn compression_table(lv: &Level) -> Table {
    let mut t = Table::new("[servers.compression]");
    t.lead
        .push("gzip on (rampart also offers brotli and zstd to clients that prefer them)".into());
    t.set_c(
        k::MIN_LENGTH,
        lv.gzip_min_length.unwrap_or(20).to_string(),
        "gzip_min_length",
    );
    let mut types = vec!["text/html".to_string()];
    for ty in lv.gzip_types.iter().flatten() {
        if ty != "*" && !types.contains(ty) {
            types.push(ty.clone());
        }
    }
    t.set_c(
        k::TYPES,
        list(&types),
        "gzip_types (nginx always adds text/html)",
    );
    t
}
