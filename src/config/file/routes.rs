//! `[[servers.routes]]`: matcher, action, rate limits, CORS reference.

use super::*;
use crate::config::reader::Field;

pub(super) fn read_route(r: &mut Reader<'_>, o: &mut Section<'_>) -> Route {
    let span = Spanned::new((), o.span.clone());
    let matcher = read_matcher(r, o);
    let action = read_action(r, o);
    let rate_limit = read_rate_limits(r, o);
    let cors = read_reference(r, o, "cors", "CORS policy");
    Route {
        span,
        name: o.get("name").and_then(|f| r.string(&f)),
        matcher,
        action,
        rate_limit,
        cors,
        connect_timeout: o.get("connect_timeout").and_then(|f| r.duration(&f)),
        read_timeout: o.get("read_timeout").and_then(|f| r.duration(&f)),
        write_timeout: o.get("write_timeout").and_then(|f| r.duration(&f)),
        buffering: o.get("buffering").and_then(|f| r.bool_at(&f)),
        access_log: o.get("access_log").and_then(|f| r.bool(&f)),
        rewrite_prefix: o.get("rewrite_prefix").and_then(|f| r.string(&f)),
        rewrite: o.get("rewrite").and_then(|f| r.string(&f)),
        access: read_access(r, o),
        conn_limit: read_reference(r, o, "conn_limit", "conn_limits"),
        auth: read_reference(r, o, "auth", "auth"),
        try_files: o.get("try_files").and_then(|f| read_static(r, &f)),
        request_headers: o
            .get("request_headers")
            .map(|f| r.string_map(&f))
            .unwrap_or_default(),
        response_headers: o
            .get("response_headers")
            .map(|f| r.string_map(&f))
            .unwrap_or_default(),
    }
}

/// The route's matcher: exactly one of `exact`, `prefix`, `regex`.
fn read_matcher(r: &mut Reader<'_>, o: &mut Section<'_>) -> Option<Matcher> {
    let mut matchers = Vec::new();
    for key in ["exact", "prefix", "regex"] {
        if let Some(f) = o.get(key) {
            if let Some(s) = r.string(&f) {
                matchers.push(match key {
                    "exact" => Matcher::Exact(s),
                    "prefix" => Matcher::Prefix(s),
                    _ => Matcher::Regex(s),
                });
            }
        }
    }
    let present: Vec<&str> = ["exact", "prefix", "regex"]
        .into_iter()
        .filter(|k| o.has(k))
        .collect();
    if present.len() > 1 {
        r.diag.error(
            &o.span,
            format!(
                "route in `{}` has {} matchers ({}): a route needs exactly one of exact, prefix, regex",
                o.path,
                present.len(),
                present.join(", ")
            ),
        );
    } else if present.is_empty() {
        r.diag.error(
            &o.span,
            format!(
                "route in `{}` has no matcher: it needs exactly one of exact, prefix, regex",
                o.path
            ),
        );
    }
    if matchers.len() == 1 {
        matchers.pop()
    } else {
        None
    }
}

/// The route's action: exactly one of `upstream`, `static`, `respond`,
/// `redirect`.
fn read_action(r: &mut Reader<'_>, o: &mut Section<'_>) -> Option<Action> {
    let actions: Vec<&str> = ["upstream", "static", "respond", "redirect"]
        .into_iter()
        .filter(|k| o.has(k))
        .collect();
    if actions.len() > 1 {
        r.diag.error(
            &o.span,
            format!(
                "route in `{}` has {} actions ({}): a route has exactly one of upstream, static, respond, redirect",
                o.path,
                actions.len(),
                actions.join(", ")
            ),
        );
    } else if actions.is_empty() {
        r.diag.error(
            &o.span,
            format!(
                "route in `{}` has no action: it needs one of upstream, static, respond, redirect",
                o.path
            ),
        );
    }
    let mut action = None;
    if let Some(f) = o.get("upstream") {
        action = r.string(&f).map(Action::Upstream);
    }
    if let Some(f) = o.get("static") {
        if let Some((st, span)) = read_static(r, &f) {
            action = Some(Action::Static(st, span));
        }
    }
    if let Some(f) = o.get("respond") {
        if let Some(mut s) = r.table(&f) {
            let a = Action::Respond {
                status: s.get("status").and_then(|f| r.uint_at(&f, 999)),
                body: s.get("body").and_then(|f| r.string(&f)),
                content_type: s.get("content_type").and_then(|f| r.string(&f)),
            };
            s.finish(r);
            action = Some(a);
        }
    }
    if let Some(f) = o.get("redirect") {
        if let Some(mut s) = r.table(&f) {
            let to = match s.get("to") {
                Some(f) => r.string(&f),
                None => {
                    r.missing(&s, "to");
                    None
                }
            };
            let a = Action::Redirect {
                to,
                status: s.get("status").and_then(|f| r.uint_at(&f, 999)),
            };
            s.finish(r);
            action = Some(a);
        }
    }
    if actions.len() != 1 {
        action = None;
    }
    action
}

/// A `static` or `try_files` table: a directory and how to serve it.
fn read_static(r: &mut Reader<'_>, f: &Field<'_>) -> Option<(Static, Spanned<()>)> {
    let mut s = r.table(f)?;
    let st = Static {
        root: match s.get("root") {
            Some(f) => r.string(&f),
            None => {
                r.missing(&s, "root");
                None
            }
        },
        expires: s.get("expires").and_then(|f| r.duration(&f)),
        immutable: s.get("immutable").and_then(|f| r.bool(&f)),
        index: s.get("index").and_then(|f| match f.item.as_bool() {
            // `index = false` (try_files): directories are never served.
            Some(false) => Some(Spanned::new(String::new(), f.span.clone())),
            _ => r.string(&f),
        }),
        dotfiles: s.get("dotfiles").and_then(|f| r.bool(&f)),
        fallback: s.get("fallback").and_then(|f| r.string(&f)),
    };
    s.finish(r);
    Some((st, Spanned::new((), f.span.clone())))
}

/// `rate_limit = { zone = ... }` or a list of them.
fn read_rate_limits(r: &mut Reader<'_>, o: &mut Section<'_>) -> Vec<RateLimitRef> {
    let mut rate_limit = Vec::new();
    if let Some(f) = o.get("rate_limit") {
        let tables = if f.item.is_array() {
            r.tables(&f)
        } else {
            r.table(&f).into_iter().collect()
        };
        for mut t in tables {
            rate_limit.push(RateLimitRef {
                span: Spanned::new((), t.span.clone()),
                zone: match t.get("zone") {
                    Some(f) => r.string(&f),
                    None => {
                        r.missing(&t, "zone");
                        None
                    }
                },
                burst: t.get("burst").and_then(|f| r.uint(&f, 1_000_000)),
                nodelay: t.get("nodelay").and_then(|f| r.bool(&f)),
                delay: t.get("delay").and_then(|f| r.uint(&f, 1_000_000)),
                status: t.get("status").and_then(|f| r.uint_at(&f, 999)),
            });
            t.finish(r);
        }
    }
    rate_limit
}
