//! `limit_req_zone` and `upstream` blocks, and the upstreams `proxy_pass` names.

use super::*;

impl Translator<'_> {
    pub(super) fn zone(&mut self, d: &Directive) {
        let mut name = None;
        let mut mb = None;
        let mut rate = None;
        for a in d.args.iter().skip(1) {
            if let Some(z) = a.strip_prefix("zone=") {
                let (n, s) = z.split_once(':').unwrap_or((z, ""));
                name = Some(n.to_string());
                mb = size(s).map(|b| b.div_ceil(1 << 20));
            } else if let Some(r) = a.strip_prefix("rate=") {
                rate = Some(r.to_string());
            }
        }
        let key_var = d.args.first().map(String::as_str).unwrap_or("");
        let rampart_key = match key_var {
            "$binary_remote_addr" | "$remote_addr" => Some("client_ip".to_string()),
            "$host" | "$server_name" | "$http_host" => Some("host".to_string()),
            v => v
                .strip_prefix("$http_")
                .filter(|h| h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
                .map(|h| format!("header:{}", header_case(&h.replace('_', "-")))),
        };
        let valid_rate = rate.as_deref().is_some_and(|r| {
            r.strip_suffix("r/s")
                .or_else(|| r.strip_suffix("r/m"))
                .is_some_and(|n| n.parse::<u64>().is_ok_and(|n| n > 0))
        });
        if name.as_ref().is_some_and(|n| self.zone_names.contains(n)) {
            self.skip_top(
                d,
                "a zone of this name is already defined (nginx refuses this too)",
            );
            return;
        }
        let (Some(name), Some(rate_key), true) = (name, rampart_key, valid_rate) else {
            self.skip_top(d, "rampart keys zones by client_ip, host or header:<Name>, with an integer r/s or r/m rate");
            return;
        };
        let mut t = Table::new(format!("[rate_limits.{}]", key(&name)));
        t.lead.push(format!("limit_req_zone ({})", self.at(&d.pos)));
        t.set(k::RATE, q(rate.as_deref().unwrap_or_default()));
        t.set_c(k::KEY, q(&rate_key), format!("nginx: {key_var}"));
        if let Some(mb) = mb {
            t.set_c(
                k::MAX_KEYS,
                (mb.max(1) * KEYS_PER_MB).to_string(),
                format!("about what a {mb} MB nginx zone holds"),
            );
        }
        self.zone_names.insert(name);
        self.zones.push(t);
        self.counts.zones += 1;
    }

    /// `limit_conn_zone KEY zone=NAME:SIZE`: remembered by name; the
    /// `[conn_limits.*]` tables are made where `limit_conn` uses it (nginx
    /// gives the maximum there).
    pub(super) fn conn_zone(&mut self, d: &Directive) {
        let name = d
            .args
            .iter()
            .find_map(|a| a.strip_prefix("zone="))
            .map(|z| z.split_once(':').map_or(z, |(n, _)| n).to_string());
        let key_var = d.args.first().map(String::as_str).unwrap_or("");
        let key = match key_var {
            "$binary_remote_addr" | "$remote_addr" => Some("client_ip"),
            "$host" | "$server_name" | "$http_host" => Some("host"),
            _ => None,
        };
        match (name, key) {
            (Some(n), Some(k)) => {
                self.conn_zones.insert(n, k.to_string());
            }
            _ => self.skip_top(d, "rampart keys conn_limits by client_ip or host"),
        }
    }

    /// The `[conn_limits.*]` name for `limit_conn ZONE N` (with the
    /// status in effect), made on first use.
    pub(super) fn conn_limit_name(&mut self, zone: &str, max: u64, status: Option<u64>) -> String {
        let id = (zone.to_string(), max, status);
        if let Some(n) = self.conn_limits.get(&id) {
            return n.clone();
        }
        // The zone's name, unless another maximum took it.
        let base = key(zone).to_string();
        let name = [
            base.clone(),
            format!("{base}_{max}"),
            format!("{base}_{max}_{}", status.unwrap_or(503)),
        ]
        .into_iter()
        .find(|c| !self.conn_limits.values().any(|n| n == c))
        .unwrap_or(base);
        let mut t = Table::new(format!("[conn_limits.{name}]"));
        t.lead.push(format!(
            "limit_conn_zone {zone} with limit_conn {zone} {max}"
        ));
        let k = self
            .conn_zones
            .get(zone)
            .cloned()
            .unwrap_or_else(|| "client_ip".into());
        t.set(k::KEY, q(&k));
        t.set_c(
            k::MAX,
            max.to_string(),
            "requests (and WebSocket tunnels) in flight per key",
        );
        if let Some(s) = status.filter(|s| *s != 503) {
            t.set_c(k::STATUS, s.to_string(), "limit_conn_status");
        }
        self.conn_limits.insert(id, name.clone());
        self.conn_tables.push(t);
        name
    }

    /// The `server`, balancing and keepalive lines of an `upstream` block.
    fn upstream_members(&mut self, children: &[Directive], notes: &mut Vec<String>) -> Members {
        let mut m = Members::default();
        for c in children {
            match c.name.as_str() {
                "server" => {
                    if let Some(server) = self.upstream_server(c, notes) {
                        m.fails.push(server.fails);
                        m.servers.push((server.pairs, server.backup));
                    }
                }
                "least_conn" => m.balance = Some("least_conn"),
                "keepalive" => {
                    m.keepalive = c
                        .args
                        .first()
                        .and_then(|k| k.parse::<u64>().ok())
                        .map(|k| k.min(65536))
                }
                "ip_hash" | "hash" | "random" | "sticky" => self.skip(
                    c,
                    notes,
                    Some("no session affinity: rampart balances with least_conn"),
                ),
                "keepalive_timeout" | "keepalive_requests" | "keepalive_time" => self.skip(
                    c,
                    notes,
                    Some("idle upstream connections are reused until the upstream closes them"),
                ),
                _ => self.skip(c, notes, None),
            }
        }
        m
    }

    /// An upstream with no server rampart can use: left out, and so are
    /// the locations that proxy to it.
    fn dead_upstream(&mut self, d: &Directive, name: String, mut notes: Vec<String>) {
        self.warn(
            &d.pos,
            format!("upstream {name}: no server rampart can use; the locations that proxy to it are not imported"),
        );
        notes.insert(
            0,
            format!(
                "not imported: upstream {name} ({}) — no server rampart can use",
                self.at(&d.pos)
            ),
        );
        self.top_notes.append(&mut notes);
        self.dead_upstreams.insert(name);
    }

    pub(super) fn upstream(&mut self, d: &Directive, children: &[Directive]) {
        let Some(name) = d.args.first().cloned() else {
            return;
        };
        if self.upstreams.iter().any(|u| u.name == name) {
            self.skip_top(
                d,
                "an upstream of this name is already defined (nginx refuses this too)",
            );
            return;
        }
        let mut t = Table::new(format!("[upstreams.{}]", key(&name)));
        t.lead
            .push(format!("upstream {name} ({})", self.at(&d.pos)));
        let mut notes = Vec::new();
        let Members {
            servers,
            fails,
            balance,
            keepalive,
        } = self.upstream_members(children, &mut notes);
        if servers.is_empty() {
            self.dead_upstream(d, name, notes);
            return;
        }
        // rampart needs a server that is not a backup.
        let all_backup = servers.iter().all(|(_, b)| *b);
        if all_backup {
            notes.push("every server was a backup: rampart needs a primary, so they are all primaries here".into());
        }
        let count = servers.len();
        let has_names = children.iter().any(|c| {
            c.name == "server"
                && c.args
                    .first()
                    .is_some_and(|a| crate::config::resolve::is_name(&with_port(a, 80)))
        });
        let value = servers_value(servers, all_backup);
        t.set(k::SERVERS, value);
        match balance {
            Some(b) => t.set_c(k::BALANCE, q(b), "least_conn"),
            None if balance.is_none() && count > 1 => {
                t.set_c(k::BALANCE, q("round_robin"), "nginx's default")
            }
            None => {}
        }
        let (mf, ft) = fails.first().copied().unwrap_or((1, 10_000));
        if fails.iter().any(|f| *f != (mf, ft)) {
            notes.push(
                "the servers had different max_fails/fail_timeout; rampart has one pair per upstream: the first server's"
                    .into(),
            );
        }
        if mf != 1 {
            t.set(k::MAX_FAILS, mf.to_string());
        }
        if ft != 10_000 {
            t.set(k::FAIL_TIMEOUT, q(&fmt_duration(ft)));
        }
        match keepalive {
            Some(k) => t.set_c(k::KEEPALIVE, k.to_string(), "idle connections kept for reuse"),
            None => t.set_c(
                k::KEEPALIVE,
                "32".into(),
                "nginx had no keepalive here (a new connection per request); rampart reuses connections",
            ),
        }
        t.notes = notes;
        self.upstreams.push(Upstream {
            name,
            table: t,
            tls: false,
            has_names,
        });
        self.counts.upstreams += 1;
    }

    /// One `server` line of an upstream: its inline table's pairs, whether
    /// it is a backup, its max_fails / fail_timeout; `None` when rampart
    /// cannot use it (noted).
    fn upstream_server(
        &mut self,
        c: &Directive,
        notes: &mut Vec<String>,
    ) -> Option<UpstreamServer> {
        let addr = c.args.first()?;
        // `server unix:/run/app.sock;`: the same in rampart.
        let written = match addr.starts_with("unix:") {
            true => addr.clone(),
            false => with_port(addr, 80),
        };
        let mut pairs = vec![(k::ADDR, q(&written))];
        let (mut mf, mut ft) = (1, 10_000);
        let mut down = false;
        let mut backup = false;
        for p in &c.args[1..] {
            if let Some(w) = p.strip_prefix("weight=") {
                match w.parse::<u64>() {
                    Ok(1) => {}
                    Ok(w @ 2..=1000) => pairs.push((k::WEIGHT, w.to_string())),
                    _ => {
                        notes.push(format!("not imported: server {addr} weight={w} — rampart takes weights 1 to 1000"));
                        self.skipped.push(("server weight".into(), c.pos.clone()));
                    }
                }
            } else if let Some(v) = p.strip_prefix("max_fails=") {
                mf = v.parse::<u64>().unwrap_or(1).min(1000);
            } else if let Some(v) = p.strip_prefix("fail_timeout=") {
                ft = duration_ms(v).unwrap_or(10_000);
            } else if p == "backup" {
                backup = true;
            } else if p == "down" {
                down = true;
            } else if p == "resolve" {
                // nginx's "look the name up again": what rampart always does.
            } else {
                notes.push(format!(
                    "not imported: server {addr} {p} ({}) — no rampart equivalent",
                    self.at(&c.pos)
                ));
                self.skipped.push((format!("server {p}"), c.pos.clone()));
            }
        }
        if down {
            notes.push(format!(
                "not imported: server {addr} down ({}) — a server marked down is left out; add it back when it is in service",
                self.at(&c.pos)
            ));
            self.skipped.push(("server down".into(), c.pos.clone()));
            return None;
        }
        Some(UpstreamServer {
            pairs,
            backup,
            fails: (mf, ft),
        })
    }

    /// The upstream a `proxy_pass` URL names (made up when it is an
    /// address), and the host name nginx would have sent as `Host` for a
    /// direct one. `same_uri` is the location's prefix: a URI equal to it
    /// changes nothing.
    pub(super) fn proxy_target(
        &mut self,
        url: &str,
        prefix: Option<&str>,
    ) -> Result<ProxyTarget, &'static str> {
        const REWRITE: &str = "a proxy_pass URI in an exact or regex location replaces the whole path; rampart rewrites prefix routes (rewrite_prefix) and regex routes by their own regex (rewrite)";
        let ProxyPass { tls, hostport, uri } = split_proxy_pass(url)?;
        // Under `location /api/`, `proxy_pass http://b/v1/;` sends
        // `/api/x` as `/v1/x`: the URI replaces the matched prefix.
        let rewrite_prefix = match (uri, prefix) {
            ("", _) => None,
            (uri, Some(p)) if uri == p => None,
            (uri, Some(_)) => Some(uri.to_string()),
            (_, None) => return Err(REWRITE),
        };
        if self.dead_upstreams.contains(hostport) {
            return Err("its upstream has no server rampart can reach over TCP");
        }
        if let Some(i) = self.upstreams.iter().position(|u| u.name == hostport) {
            if tls {
                self.upstreams[i].tls = true;
            }
            return Ok(ProxyTarget {
                upstream: hostport.to_string(),
                host: None,
                rewrite_prefix,
            });
        }
        if hostport.starts_with("unix:") {
            // nginx's `$proxy_host` for a socket is "localhost".
            let name = self.direct_upstream(url, hostport, false, false);
            return Ok(ProxyTarget {
                upstream: name,
                host: Some("localhost".into()),
                rewrite_prefix,
            });
        }
        let addr = with_port(hostport, if tls { 443 } else { 80 });
        let host = hostport
            .rsplit_once(':')
            .filter(|(h, p)| !h.ends_with(']') || p.is_empty())
            .map_or(hostport, |(h, _)| h);
        let is_name = host.parse::<std::net::IpAddr>().is_err() && !host.starts_with('[');
        let default_port =
            !hostport.contains(':') || hostport.ends_with(if tls { ":443" } else { ":80" });
        let host_header = is_name.then(|| {
            if default_port {
                host.to_string()
            } else {
                hostport.to_string()
            }
        });
        let name = self.direct_upstream(url, &addr, tls, is_name);
        Ok(ProxyTarget {
            upstream: name,
            host: host_header,
            rewrite_prefix,
        })
    }

    /// The upstream of one server made up for a `proxy_pass` to an address
    /// (`127.0.0.1:8000`, `unix:/run/app.sock`), shared by every location
    /// that names it.
    fn direct_upstream(&mut self, url: &str, addr: &str, tls: bool, is_name: bool) -> String {
        let scheme_key = format!("{}{addr}", if tls { "https://" } else { "http://" });
        if let Some(&i) = self.direct.get(&scheme_key) {
            return self.upstreams[i].name.clone();
        }
        let mut name: String = addr
            .trim_start_matches("unix:")
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        name = name.trim_matches('_').to_string();
        while self.upstreams.iter().any(|u| u.name == name) {
            name.push('_');
        }
        let mut t = Table::new(format!("[upstreams.{}]", key(&name)));
        t.lead
            .push(format!("proxy_pass {url}: an upstream of one server"));
        t.set(k::SERVERS, format!("[{}]", inline(&[(k::ADDR, q(addr))])));
        self.direct.insert(scheme_key, self.upstreams.len());
        self.upstreams.push(Upstream {
            name: name.clone(),
            table: t,
            tls,
            has_names: is_name,
        });
        self.counts.upstreams += 1;
        name
    }
}

/// What a `proxy_pass` URL names.
pub(super) struct ProxyTarget {
    pub(super) upstream: String,
    /// The `Host` nginx sent to a `proxy_pass http://host:port`.
    pub(super) host: Option<String>,
    /// The URI part that replaces the location's prefix.
    pub(super) rewrite_prefix: Option<String>,
}

/// One usable `server` of an upstream block.
struct UpstreamServer {
    pairs: Vec<(Key, String)>,
    backup: bool,
    /// max_fails, fail_timeout (ms).
    fails: (u64, u64),
}

/// The `servers` list: one line when short, else one server a line.
fn servers_value(servers: Vec<(Vec<(Key, String)>, bool)>, all_backup: bool) -> String {
    let servers: Vec<String> = servers
        .into_iter()
        .map(|(mut pairs, backup)| {
            if backup && !all_backup {
                pairs.push((k::BACKUP, "true".into()));
            }
            inline(&pairs)
        })
        .collect();
    let one_line = servers.iter().map(|s| s.len() + 2).sum::<usize>() < 60;
    let value = if one_line {
        format!("[{}]", servers.join(", "))
    } else {
        let mut v = String::from("[\n");
        for s in &servers {
            v.push_str("  ");
            v.push_str(s);
            v.push_str(",\n");
        }
        v.push(']');
        v
    };
    value
}

/// What an `upstream` block's lines gave: each server's `{ addr, ... }`
/// pairs and backup flag, its (max_fails, fail_timeout ms), the balancing
/// method and the keepalive pool size.
#[derive(Default)]
struct Members {
    servers: Vec<(Vec<(Key, String)>, bool)>,
    fails: Vec<(u64, u64)>,
    balance: Option<&'static str>,
    keepalive: Option<u64>,
}

/// A `proxy_pass` URL taken apart.
pub(super) struct ProxyPass<'u> {
    pub tls: bool,
    /// `host:port`, an upstream's name, or `unix:/path`.
    pub hostport: &'u str,
    /// The URI part (`""` when none).
    pub uri: &'u str,
}

/// `proxy_pass http[s]://host[:port][/uri]` or `http://unix:/path[:/uri]`.
pub(super) fn split_proxy_pass(url: &str) -> Result<ProxyPass<'_>, &'static str> {
    if url.contains('$') {
        return Err(
            "a proxy_pass with variables is decided per request; rampart needs a fixed upstream",
        );
    }
    let (tls, rest) = if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else {
        return Err("only http:// and https:// upstreams can be proxied to");
    };
    // `http://unix:/run/app.sock` or `http://unix:/run/app.sock:/uri`.
    let unix = rest.strip_prefix("unix:");
    if unix.is_some() && tls {
        return Err("TLS over a Unix socket is not supported");
    }
    let (hostport, uri) = match (unix, rest.find('/')) {
        (Some(sock), _) => match sock.find(":/") {
            Some(i) => (&rest[..5 + i], &sock[i + 1..]),
            None => (rest.trim_end_matches(':'), ""),
        },
        (None, Some(i)) => (&rest[..i], &rest[i..]),
        (None, None) => (rest, ""),
    };
    Ok(ProxyPass { tls, hostport, uri })
}
