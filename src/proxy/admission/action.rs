//! The route's action: to the upstream (the admission ends and pingora
//! proxies), or an answer rampart writes (`respond`, `redirect`, `static`).

use http::header::{self, HeaderValue};
use pingora::proxy::Session;

use super::{Answer, Verdict};
use crate::config::snapshot::{Action, Piece};
use crate::proxy::ctx::RequestCtx;
use crate::routing;
use crate::runtime::LiveConfig;

pub fn dispatch(session: &mut Session, ctx: &mut RequestCtx, live: &LiveConfig) -> Verdict {
    let Some(route) = ctx.route(live) else {
        return Verdict::Answer(Answer::status(404));
    };
    match &route.action {
        Action::Upstream(u) => {
            ctx.attempts.upstream = Some(*u);
            // Upgraded connections (WebSocket) idle out on the route's read timeout.
            if let Some(t) = &route.timeouts {
                if session.is_upgrade_req() {
                    session.set_read_timeout(Some(t.read));
                }
            }
            Verdict::Continue
        }
        Action::Respond {
            status,
            body,
            content_type,
        } => Verdict::Answer(Answer::Body {
            status: *status,
            content_type: content_type.clone(),
            body: body.clone(),
            headers: Vec::new(),
        }),
        Action::Redirect { to, status } => {
            let req = session.req_header();
            let host = ctx.head.host().map(routing::strip_port).unwrap_or("");
            let target = render_redirect(to, host, req.uri.path(), req.uri.query());
            let location = HeaderValue::from_str(&target).unwrap_or(HeaderValue::from_static("/"));
            Verdict::Answer(Answer::with_header(*status, header::LOCATION, location))
        }
        Action::Static(_) => Verdict::Answer(Answer::Static),
    }
}

/// A `redirect` route's target with `$host`, `$path`, `$query` and
/// `$request_uri` filled in.
fn render_redirect(to: &[Piece], host: &str, path: &str, query: Option<&str>) -> String {
    let mut out = String::with_capacity(64);
    for p in to {
        match p {
            Piece::Lit(s) => out.push_str(s),
            Piece::Host => out.push_str(host),
            Piece::Path => out.push_str(path),
            Piece::Query => out.push_str(query.unwrap_or("")),
            Piece::Uri => {
                out.push_str(path);
                if let Some(q) = query {
                    out.push('?');
                    out.push_str(q);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_pieces_are_filled_in() {
        let to = [Piece::Lit("https://".into()), Piece::Host, Piece::Uri];
        assert_eq!(
            render_redirect(&to, "a.example", "/x", Some("q=1")),
            "https://a.example/x?q=1"
        );
        assert_eq!(
            render_redirect(&to, "a.example", "/x", None),
            "https://a.example/x"
        );
        let to = [Piece::Path, Piece::Lit("#".into()), Piece::Query];
        assert_eq!(render_redirect(&to, "h", "/p", None), "/p#");
    }
}
