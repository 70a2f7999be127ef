//! `[[servers.routes]]`: matcher, action, rate limits, CORS reference.

use super::*;
use crate::config::reader::Field;

pub(super) fn read_route(r: &mut Reader<'_>, o: &mut Section<'_>) -> Route {
    let span = Spanned::new((), o.span.clone());
    let matcher = read_matcher(r, o);
    let action = read_action(r, o);
    let rate_limit = read_rate_limits(r, o);
    let cors = read_reference(r, o, k::CORS, "CORS policy");
    Route {
        span,
        name: o.get(k::NAME).and_then(|f| r.string(&f)),
        matcher,
        action,
        rate_limit,
        cors,
        connect_timeout: o.get(k::CONNECT_TIMEOUT).and_then(|f| r.duration(&f)),
        read_timeout: o.get(k::READ_TIMEOUT).and_then(|f| r.duration(&f)),
        write_timeout: o.get(k::WRITE_TIMEOUT).and_then(|f| r.duration(&f)),
        buffering: o.get(k::BUFFERING).and_then(|f| r.bool_at(&f)),
        access_log: o.get(k::ACCESS_LOG).and_then(|f| r.bool(&f)),
        rewrite_prefix: o.get(k::REWRITE_PREFIX).and_then(|f| r.string(&f)),
        rewrite: o.get(k::REWRITE).and_then(|f| r.string(&f)),
        access: read_access(r, o),
        conn_limit: read_reference(r, o, k::CONN_LIMIT, "conn_limits"),
        auth: read_reference(r, o, k::AUTH, "auth"),
        try_files: o.get(k::TRY_FILES).and_then(|f| read_static(r, &f)),
        request_headers: o
            .get(k::REQUEST_HEADERS)
            .map(|f| r.string_map(&f))
            .unwrap_or_default(),
        response_headers: o
            .get(k::RESPONSE_HEADERS)
            .map(|f| r.string_map(&f))
            .unwrap_or_default(),
    }
}

/// The route's matcher: exactly one of `exact`, `prefix`, `regex`.
fn read_matcher(r: &mut Reader<'_>, o: &mut Section<'_>) -> Option<Matcher> {
    let mut matchers = Vec::new();
    for key in [k::EXACT, k::PREFIX, k::REGEX] {
        if let Some(f) = o.get(key) {
            if let Some(s) = r.string(&f) {
                matchers.push(match key {
                    k::EXACT => Matcher::Exact(s),
                    k::PREFIX => Matcher::Prefix(s),
                    _ => Matcher::Regex(s),
                });
            }
        }
    }
    let present: Vec<&str> = [k::EXACT, k::PREFIX, k::REGEX]
        .into_iter()
        .map(Key::name)
        .filter(|n| o.has(n))
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
    let actions: Vec<&str> = [k::UPSTREAM, k::STATIC, k::RESPOND, k::REDIRECT]
        .into_iter()
        .map(Key::name)
        .filter(|n| o.has(n))
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
    if let Some(f) = o.get(k::UPSTREAM) {
        action = r.string(&f).map(Action::Upstream);
    }
    if let Some(f) = o.get(k::STATIC) {
        if let Some((st, span)) = read_static(r, &f) {
            action = Some(Action::Static(st, span));
        }
    }
    if let Some(f) = o.get(k::RESPOND) {
        if let Some(mut s) = r.table(&f) {
            let a = Action::Respond {
                status: s.get(k::STATUS).and_then(|f| r.uint_at(&f, 999)),
                body: s.get(k::BODY).and_then(|f| r.string(&f)),
                content_type: s.get(k::CONTENT_TYPE).and_then(|f| r.string(&f)),
            };
            s.finish(r);
            action = Some(a);
        }
    }
    if let Some(f) = o.get(k::REDIRECT) {
        if let Some(mut s) = r.table(&f) {
            let to = match s.get(k::TO) {
                Some(f) => r.string(&f),
                None => {
                    r.missing(&s, k::TO);
                    None
                }
            };
            let a = Action::Redirect {
                to,
                status: s.get(k::STATUS).and_then(|f| r.uint_at(&f, 999)),
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
        root: match s.get(k::ROOT) {
            Some(f) => r.string(&f),
            None => {
                r.missing(&s, k::ROOT);
                None
            }
        },
        expires: s.get(k::EXPIRES).and_then(|f| r.duration(&f)),
        immutable: s.get(k::IMMUTABLE).and_then(|f| r.bool(&f)),
        index: s.get(k::INDEX).and_then(|f| match f.item.as_bool() {
            // `index = false` (try_files): directories are never served.
            Some(false) => Some(Spanned::new(String::new(), f.span.clone())),
            _ => r.string(&f),
        }),
        dotfiles: s.get(k::DOTFILES).and_then(|f| r.bool(&f)),
        fallback: s.get(k::FALLBACK).and_then(|f| r.string(&f)),
    };
    s.finish(r);
    Some((st, Spanned::new((), f.span.clone())))
}

/// `rate_limit = { zone = ... }` or a list of them.
fn read_rate_limits(r: &mut Reader<'_>, o: &mut Section<'_>) -> Vec<RateLimitRef> {
    let mut rate_limit = Vec::new();
    if let Some(f) = o.get(k::RATE_LIMIT) {
        let tables = if f.item.is_array() {
            r.tables(&f)
        } else {
            r.table(&f).into_iter().collect()
        };
        for mut t in tables {
            rate_limit.push(RateLimitRef {
                span: Spanned::new((), t.span.clone()),
                zone: match t.get(k::ZONE) {
                    Some(f) => r.string(&f),
                    None => {
                        r.missing(&t, k::ZONE);
                        None
                    }
                },
                burst: t.get(k::BURST).and_then(|f| r.uint(&f, 1_000_000)),
                nodelay: t.get(k::NODELAY).and_then(|f| r.bool(&f)),
                delay: t.get(k::DELAY).and_then(|f| r.uint(&f, 1_000_000)),
                status: t.get(k::STATUS).and_then(|f| r.uint_at(&f, 999)),
            });
            t.finish(r);
        }
    }
    rate_limit
}
