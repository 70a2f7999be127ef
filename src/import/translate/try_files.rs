//! `location / { try_files $uri $uri/ @app; }` + `location @app {
//! proxy_pass ...; }` (gunicorn's, Django's and Mastodon's documented
//! setups): one upstream route whose `try_files` serves the files of the
//! location's root, with the named location's proxy settings.

use super::*;

impl Translator<'_> {
    /// The route's action for `try_files ... @app`; `None` (recorded as a
    /// changed location) when rampart cannot keep it.
    pub(super) fn try_files_app(
        &mut self,
        d: &Directive,
        (app, line): (&str, &Directive),
        lv: &Level,
        cx: &LocCx,
        t: &mut Table,
        notes: &mut Vec<String>,
    ) -> Option<RouteAction> {
        let what = format!("location {}", d.args.join(" "));
        let fail = |this: &mut Self, why: String| {
            this.changed(&line.pos, format!("{what}: {why}"));
            this.warn(&line.pos, format!("{what}: {why}; not imported"));
            this.skipped.push(("location".into(), d.pos.clone()));
            None
        };
        let Some(named) = cx.named.get(app) else {
            return fail(
                self,
                format!("try_files falls back to @{app}, which this server does not define"),
            );
        };
        let children = named.block.as_deref().unwrap_or_default();
        let Some(pass) = children.iter().find(|c| c.name == "proxy_pass") else {
            return fail(
                self,
                format!(
                    "@{app} does not proxy (only a named location with proxy_pass is supported)"
                ),
            );
        };
        let Some(root) = lv.root.clone().filter(|_| !lv.alias) else {
            return fail(
                self,
                "try_files needs a root (an alias is not supported with @app)".into(),
            );
        };
        let url = pass.args.first().cloned().unwrap_or_default();
        let target = match self.proxy_target(&url, None) {
            Ok(target) => target,
            Err(why) => return fail(self, format!("@{app}: proxy_pass {url}: {why}")),
        };
        t.set(k::UPSTREAM, q(&target.upstream));
        let cache = files_cache_control(lv);
        let level = match cache {
            Some((secs, _)) => Level {
                expires: Some(secs * 1000),
                ..lv.clone()
            },
            None => lv.clone(),
        };
        let immutable = cache.map(|(_, i)| i);
        // `$uri/` (or `$uri/index.html`) among the candidates: directories
        // are served by their index; else never (`index = false`).
        let dirs = line
            .args
            .iter()
            .any(|a| a == "$uri/" || a == "$uri/index.html");
        t.set_c(
            k::TRY_FILES,
            self.try_files_value(&root, &level, immutable, dirs),
            format!(
                "{}: files first, then @{app}",
                line.text().trim_end_matches(';')
            ),
        );
        if cache.is_some() {
            notes.push("add_header Cache-Control here applied to the files: carried by try_files.expires (the app's answers keep their own)".into());
        }
        let app_level = self.named_level(named, cx, notes);
        Some(RouteAction {
            is_static: false,
            upstream: Some(target.upstream),
            direct_host: target.host,
            app_level: Some(app_level),
            files_cache_control: cache.is_some(),
        })
    }

    /// `try_files = { root, expires, immutable, index }`; `index = false`
    /// when nginx did not try directories.
    fn try_files_value(
        &mut self,
        root: &str,
        lv: &Level,
        immutable: Option<bool>,
        dirs: bool,
    ) -> String {
        if dirs {
            return self.static_value(root, lv, immutable, None);
        }
        let no_index = Level {
            index: None,
            ..lv.clone()
        };
        let mut pairs = self.static_pairs(root, &no_index, immutable, None);
        pairs.push((k::INDEX, "false".into()));
        inline(&pairs)
    }

    /// The settings of a named location: the server's, with its own
    /// directives applied (nginx: a named location inherits from its
    /// server, not from the location that falls back to it).
    fn named_level(&mut self, named: &Directive, cx: &LocCx, notes: &mut Vec<String>) -> Level {
        let mut lv = cx.server.child();
        for c in named.block.as_deref().unwrap_or_default() {
            match (c.name.as_str(), &c.block) {
                ("proxy_pass" | "internal", None) => {}
                (_, None) => {
                    if !self.apply_common(c, &mut lv, notes, 2) {
                        self.skip(c, notes, None);
                    }
                }
                (_, Some(_)) => self.skip(c, notes, None),
            }
        }
        lv
    }
}

/// A `Cache-Control: max-age=N` the location itself adds: for its files,
/// which `try_files`'s `expires` sends it on (seconds, and `immutable`).
fn files_cache_control(lv: &Level) -> Option<(u64, bool)> {
    if lv.add_headers_depth != 2 {
        return None;
    }
    lv.add_headers.iter().find_map(|h| {
        let v = h.value.to_ascii_lowercase();
        let secs = v
            .split(',')
            .find_map(|p| p.trim().strip_prefix("max-age=")?.parse::<u64>().ok())?;
        h.name
            .eq_ignore_ascii_case("cache-control")
            .then_some((secs, v.contains("immutable")))
    })
}

/// `location @name { ... }`.
pub(super) fn is_named(d: &Directive) -> bool {
    d.args.len() == 1 && d.args[0].starts_with('@')
}

/// The server's named locations, by name (without the `@`).
pub(super) fn named_locations(children: &[Directive]) -> BTreeMap<String, Directive> {
    children
        .iter()
        .filter(|c| c.name == "location" && is_named(c))
        .map(|c| (c.args[0][1..].to_string(), c.clone()))
        .collect()
}

/// The named locations `try_files` lines of the server fall back to.
pub(super) fn try_files_targets(list: &[Directive]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for d in list {
        if d.name == "try_files" {
            if let Some(name) = d.args.last().and_then(|a| a.strip_prefix('@')) {
                out.insert(name.to_string());
            }
        }
        if let Some(children) = &d.block {
            out.extend(try_files_targets(children));
        }
    }
    out
}
