//! `auth`: the route's `[auth.*]` table admits the request, or rampart
//! answers 401 (htpasswd) or passes on the auth service's 401/403 (forward).
//! After `allow`/`deny`, before connection and rate limits. The one phase
//! that waits: verifying a password runs off the worker thread, and a
//! forward auth asks another service.

use http::header::{self, HeaderValue};
use pingora::proxy::Session;

use super::{Answer, Verdict, Waiting};
use crate::auth::forward::{Decision, Original, Refusal};
use crate::auth::{Auth, LiveAuth, Method};
use crate::metrics::DenyReason;
use crate::proxy::ctx::RequestCtx;
use crate::runtime::LiveConfig;

/// Nothing to wait for unless the route has an `auth`.
pub fn check<'a>(
    session: &'a mut Session,
    ctx: &'a mut RequestCtx,
    live: &'a LiveConfig,
) -> Option<Waiting<'a>> {
    let route = ctx.route(live)?;
    let id = route.auth?;
    Some(Box::pin(authenticate(
        session,
        ctx,
        &live.cfg.auths[id],
        &live.auths[id],
    )))
}

async fn authenticate(
    session: &mut Session,
    ctx: &mut RequestCtx,
    auth: &Auth,
    state: &LiveAuth,
) -> Verdict {
    // `AuthStates::get` made the state for this method.
    let verdict = match (&auth.method, state) {
        (
            Method::Htpasswd {
                users, challenge, ..
            },
            LiveAuth::Htpasswd { verifier, .. },
        ) => {
            let given = session.req_header().headers.get(header::AUTHORIZATION);
            let admitted = match given {
                Some(v) => verifier.check(users, v.as_bytes()).await,
                None => false,
            };
            if admitted {
                Verdict::Continue
            } else {
                denied(ctx, DenyReason::Credentials);
                Verdict::Answer(Answer::with_header(
                    401,
                    header::WWW_AUTHENTICATE,
                    challenge.clone(),
                ))
            }
        }
        (Method::Forward(service), LiveAuth::Forward(connector)) => {
            let decision = {
                let original = original(session, ctx);
                service.ask(connector, &original).await
            };
            match decision {
                Decision::Admit(copied) => {
                    let req = session.req_header_mut();
                    for (name, value) in copied {
                        req.remove_header(&name);
                        if let Some(v) = value {
                            let _ = req.insert_header(name, v);
                        }
                    }
                    Verdict::Continue
                }
                Decision::Refuse(refusal) => {
                    denied(ctx, DenyReason::Forward);
                    Verdict::Answer(passed_on(refusal))
                }
                Decision::Failed(why) => {
                    tracing::warn!(auth = %auth.name, "forward auth failed: {why}");
                    denied(ctx, DenyReason::ForwardError);
                    Verdict::Answer(Answer::status(500))
                }
            }
        }
        _ => Verdict::Answer(Answer::status(500)),
    };
    if matches!(verdict, Verdict::Continue) && !auth.forward_credentials {
        session
            .req_header_mut()
            .remove_header(&header::AUTHORIZATION);
    }
    verdict
}

/// The request as the auth service is told about it: the client's own
/// target (before normalizing or a rewrite), host, address and
/// credentials. An HTTP/2 client's several `Cookie` fields are one here.
fn original<'a>(session: &'a Session, ctx: &'a RequestCtx) -> Original<'a> {
    let req = session.req_header();
    let target = ctx.client_target.as_deref().unwrap_or(&req.uri);
    let mut cookies = req.headers.get_all(header::COOKIE).iter();
    let cookie = match (cookies.next(), cookies.next()) {
        (None, _) => None,
        (Some(one), None) => Some(one.clone()),
        (Some(_), Some(_)) => {
            let all: Vec<&[u8]> = req
                .headers
                .get_all(header::COOKIE)
                .iter()
                .map(HeaderValue::as_bytes)
                .collect();
            HeaderValue::from_bytes(&all.join(&b"; "[..])).ok()
        }
    };
    Original {
        method: req.method.as_str(),
        uri: target.path_and_query().map_or("/", |p| p.as_str()),
        host: ctx.head.host.as_ref(),
        client_ip: ctx.client.ip,
        tls: ctx.client.tls,
        cookie,
        authorization: req.headers.get(header::AUTHORIZATION),
    }
}

/// The auth service's 401/403, as it sent it.
fn passed_on(r: Refusal) -> Answer {
    let content_type = r
        .headers
        .iter()
        .find(|(n, _)| n == header::CONTENT_TYPE)
        .map(|(_, v)| v.clone())
        .unwrap_or(HeaderValue::from_static(crate::respond::TEXT));
    Answer::Body {
        status: r.status,
        content_type,
        body: r.body,
        headers: r
            .headers
            .into_iter()
            .filter(|(n, _)| n != header::CONTENT_TYPE)
            .collect(),
    }
}

fn denied(ctx: &RequestCtx, reason: DenyReason) {
    ctx.live
        .metrics(ctx.place.server, ctx.place.route)
        .auth_denied(reason);
}
