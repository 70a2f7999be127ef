//! A request whose `Content-Length` is over the server's `max_body_size`
//! is refused before its body is read (413). A chunked body is counted as
//! it is forwarded (`request_body_filter`).

use pingora::proxy::Session;

use super::{Answer, Verdict};
use crate::proxy::ctx::RequestCtx;
use crate::runtime::LiveConfig;

pub fn check(session: &mut Session, ctx: &mut RequestCtx, _live: &LiveConfig) -> Verdict {
    match (ctx.body.limit, ctx.head.content_length) {
        (Some(limit), Some(len)) if len > limit => {
            // The body stays unread: close rather than drain it.
            session.set_keepalive(None);
            Verdict::Answer(Answer::status(413))
        }
        _ => Verdict::Continue,
    }
}
