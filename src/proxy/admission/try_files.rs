//! `try_files` (nginx `try_files $uri $uri/ @app`): on an upstream route, a
//! GET or HEAD naming a file under the route's root (or a directory
//! holding its index) is answered from disk, as a static route would;
//! everything else goes to the upstream. Whether to try the disk at all is
//! decided by [`crate::file_index`] without a system call on the request's
//! thread for almost every request; the file is then opened as a static
//! route opens it (off the thread, never out of the root), and one that is
//! not there after all (removed, or a symlink out of the root) is proxied.

use http::Method;
use pingora::proxy::Session;

use super::{Answer, Verdict, Waiting};
use crate::file_index::Found;
use crate::proxy::ctx::RequestCtx;
use crate::proxy::static_answer;
use crate::runtime::LiveConfig;
use crate::static_files::{hidden, Target};

pub fn check<'a>(
    session: &'a mut Session,
    ctx: &'a mut RequestCtx,
    live: &'a LiveConfig,
) -> Option<Waiting<'a>> {
    let route = ctx.route(live)?;
    let files = route.try_files.as_ref()?;
    let method = &session.req_header().method;
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    let path = ctx.static_path.as_deref()?;
    let rel = path.trim_start_matches('/');
    if hidden(rel) {
        return None;
    }
    let index = live.file_indexes.get(&files.root)?;
    Some(Box::pin(async move {
        match index.find(rel, &files.index).await {
            Found::Absent => Verdict::Continue,
            Found::Candidate => match static_answer::find(session, files, path).await {
                Target::NotFound => Verdict::Continue,
                found => Verdict::Answer(Answer::Found(Box::new(found))),
            },
        }
    }))
}
