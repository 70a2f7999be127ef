//! `auth_basic` + `auth_basic_user_file` → `[auth.*]` with `htpasswd`;
//! `auth_request` + `auth_request_set` → `[auth.*]` with `forward`, the URL
//! taken from the location the subrequest goes to.

use super::upstreams::{split_proxy_pass, ProxyPass};
use super::*;

/// A server's exact or prefix location, as an `auth_request` target.
#[derive(Debug, Clone)]
pub(super) struct ProxyLocation {
    exact: bool,
    path: String,
    /// `None`: the location does not proxy.
    proxy_pass: Option<String>,
}

impl ProxyLocation {
    #[cfg(test)]
    pub(super) fn new(exact: bool, path: &str, proxy_pass: &str) -> Self {
        ProxyLocation {
            exact,
            path: path.into(),
            proxy_pass: Some(proxy_pass.into()),
        }
    }
}

/// The server's exact and prefix locations (regex ones, which nginx
/// would try after a prefix match, are not followed).
pub(super) fn proxy_locations(children: &[Directive]) -> Vec<ProxyLocation> {
    children
        .iter()
        .filter(|c| c.name == "location")
        .filter_map(|c| {
            let (exact, path) = match c.args.as_slice() {
                [op, p] if op == "=" => (true, p.clone()),
                [op, p] if op == "^~" => (false, p.clone()),
                [p] if !p.starts_with('@') => (false, p.clone()),
                _ => return None,
            };
            let proxy_pass = c
                .block
                .as_ref()?
                .iter()
                .find(|d| d.name == "proxy_pass")
                .and_then(|d| d.args.first().cloned());
            Some(ProxyLocation {
                exact,
                path,
                proxy_pass,
            })
        })
        .collect()
}

/// The URL nginx's `auth_request uri` subrequest reaches: the location
/// taking `uri` (exact first, then the longest prefix), and its
/// `proxy_pass` with nginx's URI rules.
pub(super) fn forward_url(
    locations: &[ProxyLocation],
    uri: &str,
    is_upstream: &dyn Fn(&str) -> bool,
) -> Result<String, String> {
    let loc = locations
        .iter()
        .find(|l| l.exact && l.path == uri)
        .or_else(|| {
            locations
                .iter()
                .filter(|l| !l.exact && uri.starts_with(&l.path))
                .max_by_key(|l| l.path.len())
        })
        .ok_or("no location of this server takes it")?;
    let pass = loc
        .proxy_pass
        .as_ref()
        .ok_or(format!("location {} does not proxy it", loc.path))?;
    let ProxyPass {
        tls,
        hostport,
        uri: uri_part,
    } = split_proxy_pass(pass).map_err(|why| format!("its proxy_pass: {why}"))?;
    let host = hostport.rsplit_once(':').map_or(hostport, |(h, _)| h);
    if is_upstream(host) || hostport.starts_with("unix:") {
        return Err(format!(
            "its proxy_pass names upstream \"{host}\": write forward = \"http://<server>{uri}\" by hand"
        ));
    }
    let path = match uri_part {
        "" => uri.to_string(),
        p if loc.exact => p.to_string(),
        p => format!("{p}{}", &uri[loc.path.len()..]),
    };
    let scheme = if tls { "https" } else { "http" };
    Ok(format!("{scheme}://{hostport}{path}"))
}

/// A realm as a table name: "Restricted Area" → `restricted_area`.
fn slug(realm: &str) -> String {
    let s: String = realm
        .chars()
        .map(|c| match c.is_ascii_alphanumeric() {
            true => c.to_ascii_lowercase(),
            false => '_',
        })
        .collect();
    s.trim_matches('_').to_string()
}

/// `X-Auth-Request-User` for `$upstream_http_x_auth_request_user`.
pub(super) fn answer_header(variable: &str) -> Option<String> {
    let name = variable.strip_prefix("$upstream_http_")?;
    let words: Vec<String> = name
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect();
    Some(words.join("-"))
}

impl Translator<'_> {
    /// The route's `auth`, with its comment: `Ok(None)` without one,
    /// `Err(why)` when nginx authenticated here in a way rampart cannot
    /// express (the route then answers 403: fail closed).
    pub(super) fn route_auth(
        &mut self,
        d: &Directive,
        lv: &Level,
        cx: &LocCx,
    ) -> Result<Option<(String, String)>, String> {
        let what = format!("location {}", d.args.join(" "));
        let refuse = |this: &mut Self, why: String| {
            this.warn(&d.pos, format!("{what}: {why}; the route answers 403"));
            this.skipped.push(("auth".into(), d.pos.clone()));
            Err(why)
        };
        match (&lv.auth_basic, &lv.auth_request) {
            (None, None) => Ok(None),
            (Some(_), Some(_)) => refuse(
                self,
                "auth_basic and auth_request together (rampart checks one auth per route)".into(),
            ),
            (Some(realm), None) => match lv.auth_basic_user_file.clone() {
                Some(file) => {
                    let name = self.basic_auth(realm, &file);
                    Ok(Some((
                        name,
                        format!("auth_basic + auth_basic_user_file {file}"),
                    )))
                }
                None => refuse(self, "auth_basic without auth_basic_user_file".into()),
            },
            (None, Some(uri)) => {
                let is_upstream = |n: &str| self.upstreams.iter().any(|u| u.name == n);
                match forward_url(&cx.proxy_locations, uri, &is_upstream) {
                    Ok(url) => {
                        let name = self.forward_auth(&url, &lv.auth_request_set);
                        Ok(Some((name, format!("auth_request {uri}"))))
                    }
                    Err(why) => refuse(self, format!("auth_request {uri}: {why}")),
                }
            }
        }
    }

    /// The `[auth.*]` table for an htpasswd file and realm, made on first use.
    fn basic_auth(&mut self, realm: &str, file: &str) -> String {
        let id = format!("basic {realm} {file}");
        if let Some(n) = self.auths.get(&id) {
            return n.clone();
        }
        let name = self.auth_name(&slug(realm));
        let mut t = Table::new(format!("[auth.{name}]"));
        t.lead.push(format!(
            "auth_basic \"{realm}\" with auth_basic_user_file {file}"
        ));
        t.set_c(k::HTPASSWD, q(file), "bcrypt, SHA-crypt or apr1 lines");
        t.set(k::REALM, q(realm));
        t.notes.push("nginx also passed the client's Authorization header to the upstream; set forward_credentials = true if the app reads it".into());
        self.auths.insert(id, name.clone());
        self.auth_tables.push(t);
        name
    }

    /// The `[auth.*]` table for an auth service and the headers copied
    /// from its answers, made on first use.
    fn forward_auth(&mut self, url: &str, copy: &[String]) -> String {
        let id = format!("forward {url} {}", copy.join(","));
        if let Some(n) = self.auths.get(&id) {
            return n.clone();
        }
        let name = self.auth_name("sso");
        let mut t = Table::new(format!("[auth.{name}]"));
        t.lead.push(format!("auth_request to {url}"));
        t.set(k::FORWARD, q(url));
        if !copy.is_empty() {
            t.set_c(
                k::COPY_HEADERS,
                list(copy),
                "auth_request_set $... $upstream_http_...",
            );
        }
        // nginx passes the client's Authorization on (rampart's default does not).
        t.set(k::FORWARD_CREDENTIALS, "true".into());
        self.auths.insert(id, name.clone());
        self.auth_tables.push(t);
        name
    }

    fn auth_name(&self, base: &str) -> String {
        let base = if base.is_empty() { "basic" } else { base };
        (1..)
            .map(|i| match i {
                1 => base.to_string(),
                i => format!("{base}_{i}"),
            })
            .find(|c| !self.auths.values().any(|n| n == c))
            .unwrap_or_else(|| base.to_string())
    }
}
