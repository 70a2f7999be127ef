//! `[[servers.routes]]`: matchers, actions, and each route's own
//! settings (rate limits, CORS, timeouts, headers).

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use http::HeaderValue;
use regex::Regex;

use super::{parse_template, Compiler, Definitions};
use crate::access_list::{parse_entry as parse_access_entry, AccessList};
use crate::config::defaults;
use crate::config::diag::Span;
use crate::config::file;
use crate::config::reader::Spanned;
use crate::config::snapshot::{
    Action, AuthId, ConnLimitId, CorsChoice, CorsId, RateLimit, Route, Timeouts,
};
use crate::rewrite::Rewrite;
use crate::routing::{Matcher, RouteTable};

/// What a server's routes inherit unless they set their own.
pub(super) struct Inherited {
    pub(super) cors: Option<CorsId>,
    pub(super) access: AccessList,
    pub(super) conn_limit: Option<ConnLimitId>,
    pub(super) auth: Option<AuthId>,
}

/// A server's routes, in file order (the first match wins).
pub(super) fn compile_routes(
    cx: &mut Compiler<'_, '_>,
    s: &file::Server,
    server_name: &str,
    inherited: &Inherited,
    refs: &Definitions<'_>,
) -> RouteTable {
    let (cors, access) = (inherited.cors, &inherited.access);
    let mut entries = Vec::new();
    let mut names: HashMap<String, Span> = HashMap::new();
    let mut plain_paths: HashSet<(bool, String)> = HashSet::new();
    for ro in &s.routes {
        let Some(matcher) = compile_matcher(cx, ro, &mut plain_paths) else {
            continue;
        };
        let rname = ro
            .name
            .as_ref()
            .map(|n| n.v.clone())
            .unwrap_or_else(|| matcher.default_name());
        let nspan = ro
            .name
            .as_ref()
            .map(|n| n.span.clone())
            .unwrap_or_else(|| ro.span.span.clone());
        // Default names repeat only when matchers do, which is reported above.
        if names.insert(rname.clone(), nspan.clone()).is_some() && ro.name.is_some() {
            cx.err(
                &nspan,
                format!("duplicate route name \"{rname}\" in server \"{server_name}\""),
            );
        }
        if let Some(mut route) = compile_route(cx, ro, &rname, (cors, s.access_log), refs) {
            route.access = match (&ro.access.allow, &ro.access.deny) {
                (None, None) => access.clone(),
                _ => access_list(cx, &ro.access, access),
            };
            route.rewrite = rewrite(cx, ro, &matcher, &route);
            route.conn_limit = super::reference(
                cx,
                ro.conn_limit.as_ref(),
                inherited.conn_limit,
                refs.conn_limits,
                "conn_limit",
                "conn_limits",
            );
            route.auth = super::reference(
                cx,
                ro.auth.as_ref(),
                inherited.auth,
                refs.auths,
                "auth",
                "auth",
            );
            entries.push((matcher, route));
        }
    }
    RouteTable::new(entries)
}

/// A refusal's status (`rate_limit`, `conn_limits`): 400-599, `default`
/// when unset.
pub(super) fn error_status(
    cx: &mut Compiler<'_, '_>,
    status: Option<&Spanned<u64>>,
    what: &str,
    default: u16,
) -> u16 {
    match status {
        Some(s) if !(400..=599).contains(&s.v) => {
            cx.err(&s.span, format!("{what} status {}: expected 400-599", s.v));
            default
        }
        Some(s) => s.v as u16,
        None => default,
    }
}

/// A redirect's status: one of the redirecting 3xx, `default` when unset.
pub(super) fn redirect_status(
    cx: &mut Compiler<'_, '_>,
    status: Option<&Spanned<u64>>,
    default: u16,
) -> u16 {
    match status {
        Some(s) if ![301, 302, 303, 307, 308].contains(&s.v) => {
            cx.err(
                &s.span,
                format!(
                    "redirect status {}: expected 301, 302, 303, 307 or 308",
                    s.v
                ),
            );
            default
        }
        Some(s) => s.v as u16,
        None => default,
    }
}

fn compile_matcher(
    cx: &mut Compiler<'_, '_>,
    ro: &file::Route,
    seen: &mut HashSet<(bool, String)>,
) -> Option<Matcher> {
    match ro.matcher.as_ref()? {
        file::Matcher::Exact(p) | file::Matcher::Prefix(p) => {
            let exact = matches!(ro.matcher, Some(file::Matcher::Exact(_)));
            if !p.v.starts_with('/') {
                cx.err(&p.span, format!("route path \"{}\" must start with /", p.v));
                return None;
            }
            if !seen.insert((exact, p.v.clone())) {
                let kind = if exact { "exact" } else { "prefix" };
                cx.err(&p.span, format!("duplicate {kind} route \"{}\" in this server: the second could never match", p.v));
            }
            Some(if exact {
                Matcher::Exact(p.v.clone())
            } else {
                Matcher::Prefix(p.v.clone())
            })
        }
        file::Matcher::Regex(p) => match Regex::new(&p.v) {
            Ok(re) => Some(Matcher::Regex(re)),
            Err(e) => {
                let msg = e
                    .to_string()
                    .lines()
                    .last()
                    .unwrap_or("")
                    .trim()
                    .to_string();
                cx.err(&p.span, format!("invalid regex \"{}\": {msg}", p.v));
                None
            }
        },
    }
}

fn compile_route(
    cx: &mut Compiler<'_, '_>,
    ro: &file::Route,
    rname: &str,
    (server_cors, server_access_log): (Option<CorsId>, Option<bool>),
    refs: &Definitions<'_>,
) -> Option<Route> {
    let action = route_action(cx, ro, refs)?;
    let is_upstream = matches!(action, Action::Upstream(_));
    let rate_limits = rate_limits(cx, ro, refs);
    let cors = super::reference(
        cx,
        ro.cors.as_ref(),
        server_cors,
        refs.cors,
        "CORS policy",
        "cors",
    )
    .map(CorsChoice::Policy)
    .unwrap_or(CorsChoice::None);
    let overrides = [ro.connect_timeout, ro.read_timeout, ro.write_timeout];
    let timeouts = match action {
        Action::Upstream(i) => refs.upstream_defs.get(i.0).map(|u| Timeouts {
            connect: ro.connect_timeout.unwrap_or(u.timeouts.connect),
            read: ro.read_timeout.unwrap_or(u.timeouts.read),
            write: ro.write_timeout.unwrap_or(u.timeouts.write),
        }),
        _ => None,
    };
    if !is_upstream && overrides.iter().any(Option::is_some) {
        cx.err(
            &ro.span.span,
            format!("route \"{rname}\": connect/read/write_timeout apply only to upstream routes"),
        );
    }
    if let (Some(b), false) = (&ro.buffering, is_upstream) {
        cx.err(
            &b.span,
            format!("route \"{rname}\": buffering applies only to upstream routes"),
        );
    }
    if !is_upstream && !ro.request_headers.is_empty() {
        cx.err(
            &ro.span.span,
            format!("route \"{rname}\": request_headers apply only to upstream routes"),
        );
    }
    Some(Route {
        name: rname.to_string(),
        action,
        rate_limits,
        cors,
        timeouts,
        access_log: ro
            .access_log
            .or(server_access_log)
            .unwrap_or(defaults::ACCESS_LOG_ON),
        access: AccessList::default(),
        rewrite: None,
        conn_limit: None,
        auth: None,
        try_files: super::files::try_files(cx, ro, rname, is_upstream),
        buffering: ro.buffering.as_ref().map_or(defaults::BUFFERING, |b| b.v),
        request_headers: cx.headers(&ro.request_headers),
        response_headers: cx.headers(&ro.response_headers),
    })
}

/// `allow` / `deny` of a server or route: the entries given, the key
/// absent inheriting `inherited`'s list (`[]` switches an inherited list
/// off).
pub(super) fn access_list(
    cx: &mut Compiler<'_, '_>,
    lists: &file::AccessLists,
    inherited: &AccessList,
) -> AccessList {
    let mut nets =
        |list: &Option<Vec<Spanned<String>>>, inherited: &Vec<ipnet::IpNet>, key: &str| {
            let Some(list) = list else {
                return inherited.clone();
            };
            let mut out = Vec::new();
            for e in list {
                match parse_access_entry(&e.v) {
                    Ok(n) => out.push(n),
                    Err(msg) => cx.err(&e.span, format!("{key} {msg}")),
                }
            }
            out
        };
    AccessList {
        deny: nets(&lists.deny, &inherited.deny, "deny"),
        allow: nets(&lists.allow, &inherited.allow, "allow"),
    }
}

/// `rewrite_prefix` (prefix routes) / `rewrite` (regex routes) of an
/// upstream route.
fn rewrite(
    cx: &mut Compiler<'_, '_>,
    ro: &file::Route,
    matcher: &Matcher,
    route: &Route,
) -> Option<Rewrite> {
    let upstream = matches!(route.action, Action::Upstream(_));
    match (&ro.rewrite_prefix, &ro.rewrite, matcher) {
        (Some(a), Some(_), _) => {
            cx.err(
                &a.span,
                "a route has `rewrite_prefix` or `rewrite`, not both",
            );
            None
        }
        (Some(p), None, Matcher::Prefix(prefix)) if upstream => {
            if !p.v.starts_with('/') {
                cx.err(&p.span, "rewrite_prefix must start with /");
                return None;
            }
            Some(Rewrite::Prefix {
                prefix: prefix.clone(),
                to: p.v.clone(),
            })
        }
        (None, Some(t), Matcher::Regex(regex)) if upstream => {
            match crate::rewrite::parse_template(&t.v, regex) {
                Ok(template) => Some(Rewrite::Regex {
                    regex: regex.clone(),
                    template,
                }),
                Err(e) => {
                    cx.err(&t.span, format!("rewrite \"{}\": {e}", t.v));
                    None
                }
            }
        }
        (Some(p), None, _) => {
            cx.err(
                &p.span,
                "rewrite_prefix applies only to prefix routes that proxy to an upstream",
            );
            None
        }
        (None, Some(t), _) => {
            cx.err(
                &t.span,
                "rewrite applies only to regex routes that proxy to an upstream",
            );
            None
        }
        (None, None, _) => None,
    }
}

/// The route's action: where it sends a request.
fn route_action(
    cx: &mut Compiler<'_, '_>,
    ro: &file::Route,
    refs: &Definitions<'_>,
) -> Option<Action> {
    Some(match ro.action.as_ref()? {
        file::Action::Upstream(u) => match refs.upstreams.get(&u.v) {
            Some(i) => Action::Upstream(*i),
            None => {
                cx.err(
                    &u.span,
                    format!(
                        "undefined upstream \"{}\" (define it as [upstreams.{}])",
                        u.v, u.v
                    ),
                );
                return None;
            }
        },
        file::Action::Static(s, span) => {
            Action::Static(super::files::static_files(cx, ro, false, s, span)?)
        }
        file::Action::Respond {
            status,
            body,
            content_type,
        } => respond(cx, status.as_ref(), body.as_ref(), content_type.as_ref()),
        file::Action::Redirect { to, status } => {
            let to = to.as_ref()?;
            let code = redirect_status(cx, status.as_ref(), defaults::REDIRECT_STATUS);
            match parse_template(&to.v) {
                Ok(pieces) => Action::Redirect {
                    to: pieces,
                    status: code,
                },
                Err(e) => {
                    cx.err(&to.span, e);
                    return None;
                }
            }
        }
    })
}

/// A `respond` route's fixed answer.
fn respond(
    cx: &mut Compiler<'_, '_>,
    status: Option<&Spanned<u64>>,
    body: Option<&Spanned<String>>,
    content_type: Option<&Spanned<String>>,
) -> Action {
    let st = status.map(|s| (s.v, s.span.clone()));
    let code = match st {
        Some((v, span)) if !(100..=599).contains(&v) => {
            cx.err(&span, format!("respond status {v}: expected 100-599"));
            defaults::RESPOND_STATUS
        }
        Some((v, _)) => v as u16,
        None => defaults::RESPOND_STATUS,
    };
    let ct = match content_type {
        Some(c) => match HeaderValue::from_str(&c.v) {
            Ok(v) => v,
            Err(_) => {
                cx.err(&c.span, "invalid content_type");
                HeaderValue::from_static("text/plain")
            }
        },
        None => HeaderValue::from_static(defaults::RESPOND_CONTENT_TYPE),
    };
    Action::Respond {
        status: code,
        body: Bytes::from(body.map(|b| b.v.clone()).unwrap_or_default()),
        content_type: ct,
    }
}

/// The route's `rate_limit` entries, each naming a zone.
fn rate_limits(
    cx: &mut Compiler<'_, '_>,
    ro: &file::Route,
    refs: &Definitions<'_>,
) -> Vec<RateLimit> {
    let mut rate_limits = Vec::new();
    for rl in &ro.rate_limit {
        let Some(zone) = rl.zone.as_ref() else {
            continue;
        };
        let Some(zi) = refs.zones.get(&zone.v) else {
            cx.err(
                &zone.span,
                format!(
                    "undefined rate-limit zone \"{}\" (define it as [rate_limits.{}])",
                    zone.v, zone.v
                ),
            );
            continue;
        };
        let burst = rl.burst.unwrap_or(defaults::RATE_LIMIT_BURST) as u32;
        let delay = rl.delay.unwrap_or(0) as u32;
        if rl.delay.is_some() && rl.nodelay == Some(true) {
            cx.err(
                &rl.span.span,
                "rate_limit: `delay` and `nodelay = true` contradict each other; use one",
            );
        }
        let status = error_status(
            cx,
            rl.status.as_ref(),
            "rate_limit",
            defaults::RATE_LIMIT_STATUS,
        );
        let nodelay = rl.nodelay.unwrap_or(defaults::RATE_LIMIT_NODELAY);
        rate_limits.push(RateLimit {
            zone: *zi,
            limit: crate::ratelimit::Limit {
                rate: refs.zone_defs[*zi].rate.milli_per_sec(),
                burst: u64::from(burst) * 1000,
                delay: if nodelay {
                    u64::MAX
                } else {
                    u64::from(delay) * 1000
                },
            },
            status,
        });
    }
    one_store(cx, ro, refs, &rate_limits);
    rate_limits
}

/// A route's zones are all in this process or all in one Redis: a request
/// refused by one zone must leave the others untouched, and a decision is
/// atomic only within one store.
fn one_store(
    cx: &mut Compiler<'_, '_>,
    ro: &file::Route,
    refs: &Definitions<'_>,
    rate_limits: &[RateLimit],
) {
    let store = |rl: &RateLimit| refs.zone_defs[rl.zone].shared.as_ref().map(|s| &s.url);
    let Some(first) = rate_limits.first() else {
        return;
    };
    if rate_limits.iter().all(|rl| store(rl) == store(first)) {
        return;
    }
    let span = ro
        .rate_limit
        .first()
        .map_or(&ro.span.span, |r| &r.span.span);
    cx.err(
        span,
        "the route's rate_limit zones must all be local or all use the same `store`: a refusal by one zone leaves the others untouched only within one store",
    );
}
