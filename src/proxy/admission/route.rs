//! The route: the path normalized (see [`crate::request_path`]), the
//! route chosen, the upstream given the path that was routed on (or the
//! route's rewrite of it, [`crate::rewrite`]), and the CORS policy (the
//! server's for a 404).

use std::borrow::Cow;

use http::header::{self, HeaderValue};
use pingora::proxy::Session;

use super::{Answer, Verdict};
use crate::config::snapshot::{Action, CorsChoice, CorsId};
use crate::proxy::ctx::RequestCtx;
use crate::request_path;
use crate::runtime::LiveConfig;

pub fn select(session: &mut Session, ctx: &mut RequestCtx, live: &LiveConfig) -> Verdict {
    let server = &live.cfg.servers[ctx.place.server];
    // A `Uri` clone shares its bytes: the path outlives the session borrow
    // without being copied.
    let uri = session.req_header().uri.clone();
    let Ok(path) = request_path::normalize(uri.path(), server.allow_encoded_slashes) else {
        return Verdict::Answer(Answer::status(400));
    };
    ctx.place.route = server.routes.select(&path.matched);
    let route = ctx.place.route.map(|r| server.routes.get(r));
    // The upstream gets the path routed on (`.`/`..` resolved, `//`
    // merged), rewritten if the route says so.
    let rewritten = route
        .and_then(|r| r.rewrite.as_ref())
        .and_then(|rw| rw.apply(&path.matched, &path.forward));
    // Normalizing borrows the path when it is already in normal form: the
    // common case sets no new target and compares nothing.
    let forward = match (rewritten, &path.forward) {
        (Some(p), _) => Some(p),
        (None, Cow::Owned(p)) => Some(p.clone()),
        (None, Cow::Borrowed(_)) => None,
    };
    if let Some(forward) = forward {
        let target = match uri.query() {
            Some(q) => format!("{forward}?{q}"),
            None => forward,
        };
        match http::Uri::try_from(target) {
            Ok(u) => session.req_header_mut().set_uri(u),
            Err(_) => return Verdict::Answer(Answer::status(400)),
        }
        ctx.client_target = Some(Box::new(uri.clone()));
    }
    ctx.cors.policy = match route.map(|r| r.cors) {
        Some(CorsChoice::Policy(i)) => Some(i),
        Some(CorsChoice::None) => None,
        None => server.cors,
    };
    if let Some(p) = ctx.cors.policy {
        let origin = session.req_header().headers.get(header::ORIGIN);
        ctx.cors.origin = origin.filter(|o| admitted(live, p, o)).cloned();
    }
    let Some(route) = route else {
        return Verdict::Answer(Answer::status(404));
    };
    // `try_files` serves GET and HEAD only: other methods go upstream
    // without the path copied.
    let files_first = route.try_files.is_some()
        && matches!(
            session.req_header().method,
            http::Method::GET | http::Method::HEAD
        );
    if matches!(route.action, Action::Static(_)) || files_first {
        ctx.static_path = Some(path.matched.into_owned());
    }
    Verdict::Continue
}

fn admitted(live: &LiveConfig, policy: CorsId, origin: &HeaderValue) -> bool {
    origin
        .to_str()
        .is_ok_and(|o| crate::cors::origin_allowed(&live.cfg.cors[policy], o))
}
