//! `location` blocks: each becomes one route with the settings in effect there.

use super::*;

impl Translator<'_> {
    // ---- locations ---------------------------------------------------------
    /// One `location` (and the ones nested in it): a route each.
    pub(super) fn location(
        &mut self,
        d: &Directive,
        parent: &Level,
        routes: &mut Vec<Table>,
        server_notes: &mut Vec<String>,
        cx: &LocCx,
    ) {
        let children = d.block.as_deref().unwrap_or_default();
        let (lv, loc, mut notes) = self.location_body(d, parent);
        let matcher = location_matcher(&d.args).map(|(kind, pattern, note)| {
            if let Some(n) = note {
                notes.push(n.into());
            }
            match (&cx.parent_prefix, kind) {
                (Some(p), k::REGEX) => {
                    let (flags, body) = match pattern.strip_prefix("(?i)") {
                        Some(rest) => ("(?i)", rest.to_string()),
                        None => ("", pattern.clone()),
                    };
                    if body.starts_with('^') {
                        notes.push(format!("nested in location {p}: nginx tried this regex only under {p}"));
                        (kind, pattern)
                    } else {
                        notes.push(format!("nested in location {p}: the regex is anchored to {p}, the only paths nginx tried it on"));
                        (kind, format!("{flags}^{}.*(?:{body})", regex::escape(p)))
                    }
                }
                _ => (kind, pattern),
            }
        });
        let this_prefix = match &matcher {
            Ok((k::PREFIX, p)) => Some(p.clone()),
            _ => cx.parent_prefix.clone(),
        };
        match matcher {
            Ok(m) => {
                if let Some(t) = self.route(d, m, &lv, parent, loc, notes, server_notes, cx) {
                    routes.push(t);
                    self.counts.routes += 1;
                }
            }
            Err(why) => self.skip(d, server_notes, Some(why)),
        }
        let nested = LocCx {
            server: cx.server.clone(),
            cors: cx.cors.clone(),
            parent_prefix: this_prefix,
            proxy_locations: cx.proxy_locations.clone(),
            named: cx.named.clone(),
        };
        for c in children
            .iter()
            .filter(|c| c.name == "location" && c.block.is_some())
        {
            self.location(c, &lv, routes, server_notes, &nested);
        }
    }

    /// A location's own directives: the settings in effect there, what it
    /// does, and notes on what has no rampart equivalent.
    fn location_body<'d>(
        &mut self,
        d: &'d Directive,
        parent: &Level,
    ) -> (Level, Loc<'d>, Vec<String>) {
        let children = d.block.as_deref().unwrap_or_default();
        let mut notes = Vec::new();
        let mut lv = parent.child();
        let mut loc = Loc::default();
        for c in children {
            match (c.name.as_str(), &c.block) {
                ("proxy_pass", None) => loc.proxy = Some(c),
                ("return", None) => loc.ret = Some(c),
                ("alias", None) => {
                    lv.root = c.args.first().cloned();
                    lv.alias = true;
                    loc.own_alias = true;
                }
                ("internal", None) => {
                    lv.denied = Some((404, "internal (reached only by nginx's own redirects)".into()));
                    self.skipped.push((c.name.clone(), c.pos.clone()));
                }
                (
                    "fastcgi_pass" | "uwsgi_pass" | "scgi_pass" | "grpc_pass" | "memcached_pass",
                    None,
                ) => loc.unsupported = Some(c),
                ("if", Some(body)) if is_options_check(&c.args) => match preflight_headers(body) {
                    Some(h) => loc.preflight = Some(h),
                    None => self.skip(c, &mut notes, Some("only the CORS preflight idiom (add_header + return 204) is recognised inside if")),
                },
                ("location", Some(_)) => {}
                ("try_files", None) => match try_files_plan(&c.args, &prefix_of(d)) {
                    Ok(TryFiles::NotFound) => {}
                    Ok(TryFiles::Fallback(f)) => loc.fallback = Some(f),
                    Ok(TryFiles::App(name)) => loc.app = Some((name, c)),
                    Err(why) => {
                        self.changed(&c.pos, format!("location {}: {why}", d.args.join(" ")));
                        self.skip(c, &mut notes, Some(why));
                    }
                },
                (_, None) => {
                    if !self.apply_common(c, &mut lv, &mut notes, 2) {
                        self.skip(c, &mut notes, None);
                    }
                }
                (_, Some(_)) => self.skip(c, &mut notes, None),
            }
        }
        (lv, loc, notes)
    }

    pub(super) fn static_value(
        &mut self,
        root: &str,
        lv: &Level,
        immutable: Option<bool>,
        fallback: Option<&str>,
    ) -> String {
        inline(&self.static_pairs(root, lv, immutable, fallback))
    }

    /// The keys of [`Self::static_value`], for a caller that adds one.
    pub(super) fn static_pairs(
        &mut self,
        root: &str,
        lv: &Level,
        immutable: Option<bool>,
        fallback: Option<&str>,
    ) -> Vec<(Key, String)> {
        let root_value = match &self.opts.static_root {
            Some(dir) => dir.display().to_string(),
            None => root.trim_end_matches('/').to_string(),
        };
        let mut p = vec![(
            k::ROOT,
            q(if root_value.is_empty() {
                "/"
            } else {
                &root_value
            }),
        )];
        if let Some(ms) = lv.expires {
            p.push((k::EXPIRES, q(&fmt_duration(ms))));
        }
        if immutable == Some(true) {
            p.push((k::IMMUTABLE, "true".into()));
        }
        if let Some(i) = &lv.index {
            if i != "index.html" {
                p.push((k::INDEX, q(i)));
            }
        }
        if let Some(f) = fallback {
            p.push((k::FALLBACK, q(f)));
        }
        p
    }

    /// `return CODE [TEXT|URL]` as a `respond` or `redirect` value, with a
    /// note when the translation differs.
    pub(super) fn return_action(
        &mut self,
        r: &Directive,
    ) -> Result<(Key, String, Option<String>), &'static str> {
        let (code, rest) = match r.args.as_slice() {
            [url]
                if url.starts_with("http://")
                    || url.starts_with("https://")
                    || url.starts_with('$') =>
            {
                ("302", Some(url.as_str()))
            }
            [code] => (code.as_str(), None),
            [code, rest] => (code.as_str(), Some(rest.as_str())),
            _ => return Err("return takes a code and an optional text or URL"),
        };
        let status: u16 = code.parse().map_err(|_| "return needs a numeric status")?;
        if matches!(status, 301 | 302 | 303 | 307 | 308) {
            let to = rest.ok_or("a redirect needs a URL")?;
            let to = translate_vars(to)
                .ok_or("the redirect uses nginx variables rampart cannot fill in")?;
            return Ok((
                k::REDIRECT,
                inline(&[(k::TO, q(&to)), (k::STATUS, status.to_string())]),
                None,
            ));
        }
        if status == 444 {
            return Ok((
                k::RESPOND,
                inline(&[(k::STATUS, "403".into())]),
                Some(
                    "return 444 (close without an answer) is not HTTP: rampart answers 403".into(),
                ),
            ));
        }
        if !(100..=999).contains(&status) {
            return Err("the status is outside 100-999");
        }
        let mut p = vec![(k::STATUS, status.to_string())];
        if let Some(body) = rest {
            if body.contains('$') {
                return Err("the response text uses nginx variables");
            }
            p.push((k::BODY, q(body)));
        }
        Ok((k::RESPOND, inline(&p), None))
    }
}

/// (`exact` | `prefix` | `regex`, pattern, note)
pub(super) fn location_matcher(
    args: &[String],
) -> Result<(Key, String, Option<&'static str>), &'static str> {
    let (modifier, path) = match args {
        [m, p] => (m.as_str(), p.clone()),
        [one] => {
            if let Some(p) = one.strip_prefix("^~") {
                ("^~", p.to_string())
            } else if let Some(p) = one.strip_prefix("~*") {
                ("~*", p.to_string())
            } else if let Some(p) = one.strip_prefix('~') {
                ("~", p.to_string())
            } else if let Some(p) = one.strip_prefix('=') {
                ("=", p.to_string())
            } else {
                ("", one.clone())
            }
        }
        _ => return Err("location needs a path"),
    };
    match modifier {
        "=" => Ok((k::EXACT, path, None)),
        "~" => Ok((k::REGEX, path, None)),
        "~*" => Ok((k::REGEX, format!("(?i){path}"), None)),
        "^~" => Ok((k::PREFIX, path, Some("^~ (no regex check after this prefix) has no rampart equivalent: regex routes are still tried first; check that none of them matches paths under this prefix"))),
        "" if path.starts_with('@') => Err("named locations are reached only from error_page/try_files; not supported"),
        "" => Ok((k::PREFIX, path, None)),
        _ => Err("unknown location modifier"),
    }
}

/// The directory to serve an exact location's `alias` file from, when the
/// file has the requested name (rampart serves the path under the root).
pub(super) fn alias_dir_for_exact(alias: &str, path: &str) -> Option<String> {
    let (dir, file) = alias.rsplit_once('/')?;
    let wanted = path.rsplit('/').next()?;
    if file != wanted || file.is_empty() {
        return None;
    }
    let prefix = &path[..path.len() - wanted.len()];
    let dir = dir.strip_suffix(prefix.trim_end_matches('/'))?;
    Some(if dir.is_empty() {
        "/".to_string()
    } else {
        dir.to_string()
    })
}

/// `root` in a location serves `root + path`; rampart strips a prefix route's
/// prefix (nginx `alias`), so the prefix moves into the root.
pub(super) fn join_root(root: &str, kind: Key, pattern: &str) -> String {
    if kind == k::PREFIX {
        format!(
            "{}/{}",
            root.trim_end_matches('/'),
            pattern.trim_start_matches('/')
        )
    } else {
        root.to_string()
    }
}

pub(super) fn is_immutable_cache_control(h: &Header) -> bool {
    h.name.eq_ignore_ascii_case("cache-control")
        && h.value.to_ascii_lowercase().contains("immutable")
}

/// nginx variables in a redirect target → rampart placeholders; `None`
/// when one has no placeholder.
pub(super) fn translate_vars(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, len) = match after.strip_prefix('{') {
            Some(braced) => {
                let end = braced.find('}')?;
                (&braced[..end], end + 2)
            }
            None => {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                (&after[..end], end)
            }
        };
        out.push_str(match name {
            "request_uri" => "{uri}",
            "uri" | "document_uri" => "{path}",
            "args" | "query_string" => "{query}",
            "host" | "http_host" | "server_name" => "{host}",
            _ => return None,
        });
        rest = &after[len..];
    }
    out.push_str(rest);
    Some(out)
}

/// The words of an `if` condition without its parentheses and quotes:
/// `($request_method = 'OPTIONS')` → `$request_method`, `=`, `OPTIONS`.
pub(super) fn if_condition(args: &[String]) -> Vec<String> {
    args.join(" ")
        .replace(['(', ')', '\'', '"'], " ")
        .split_whitespace()
        .map(String::from)
        .collect()
}

pub(super) fn is_options_check(args: &[String]) -> bool {
    if_condition(args) == ["$request_method", "=", "OPTIONS"]
}

/// The headers of an `if ($request_method = OPTIONS) { add_header ...; return 204; }`.
pub(super) fn preflight_headers(body: &[Directive]) -> Option<Vec<Header>> {
    let mut out = Vec::new();
    let mut returned = false;
    for d in body {
        match d.name.as_str() {
            "add_header" => {
                if let (Some(n), Some(v)) = (d.args.first(), d.args.get(1)) {
                    let lower = n.to_ascii_lowercase();
                    if lower != "content-type" && lower != "content-length" {
                        out.push(Header {
                            name: n.clone(),
                            value: v.clone(),
                            pos: d.pos.clone(),
                        });
                    }
                }
            }
            "return" if d.args.first().is_some_and(|c| c == "204" || c == "200") => returned = true,
            _ => return None,
        }
    }
    returned.then_some(out)
}

/// The prefix of a prefix location (`location /app/`, `location ^~ /app/`),
/// "" for any other.
fn prefix_of(d: &Directive) -> String {
    match d.args.as_slice() {
        [p] if p.starts_with('/') => p.clone(),
        [m, p] if m == "^~" => p.clone(),
        _ => String::new(),
    }
}

/// `try_files $uri [$uri/] LAST` as a static route's fallback: `LAST` a
/// file under the location's prefix (the single-page-app idiom), or `=404`
/// (what a static route does anyway).
/// What `try_files` does when none of the files is there.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum TryFiles {
    /// `=404`: a plain static route.
    NotFound,
    /// `/index.html`: a file of the location's directory (`static.fallback`).
    Fallback(String),
    /// `@app`: the named location, which proxies (an upstream route with
    /// `try_files`).
    App(String),
}

fn try_files_plan(args: &[String], prefix: &str) -> Result<TryFiles, &'static str> {
    let Some((last, first)) = args.split_last() else {
        return Ok(TryFiles::NotFound);
    };
    if !first
        .iter()
        .all(|a| a == "$uri" || a == "$uri/" || a == "$uri/index.html")
    {
        return Err("try_files with other candidates than $uri, $uri/ and $uri/index.html");
    }
    if last == "=404" {
        return Ok(TryFiles::NotFound);
    }
    if let Some(name) = last.strip_prefix('@') {
        return Ok(TryFiles::App(name.to_string()));
    }
    match last
        .strip_prefix(prefix)
        .filter(|f| !prefix.is_empty() && !f.is_empty())
    {
        Some(f) if !f.contains('$') && !f.split('/').any(|s| s.is_empty() || s == "..") => {
            Ok(TryFiles::Fallback(f.to_string()))
        }
        _ => Err("try_files falling back to a file outside the location's directory"),
    }
}
