//! Which server a request is for, and the requests no server gets: one on
//! an address a reload removed, a malformed one, one whose `Host` the TLS
//! handshake did not vouch for.

use pingora::protocols::http::ServerSession as HttpSession;
use pingora::proxy::Session;

use super::{Answer, Verdict};
use crate::compression;
use crate::headers::RequestId;
use crate::proxy::ctx::RequestCtx;
use crate::proxy::head::HeadFacts;
use crate::routing;
use crate::runtime::LiveConfig;
use crate::sanitize;

/// Before pingora's downstream modules run (the server's compression
/// settings steer the compression module): the facts of the head, the
/// request id, the listener and the server.
pub fn classify(session: &mut Session, ctx: &mut RequestCtx) {
    // HTTP/1.1 pipelining, as nginx serves it: requests that arrive before
    // the previous response was written are answered in order. pingora's
    // default drops them and closes the connection. The setting is carried
    // to the connection's later requests.
    if let HttpSession::H1(h1) = session.downstream_session.as_mut() {
        h1.set_pipelining_enabled(true);
    }
    let (head, request_id) = HeadFacts::scan(session.req_header());
    ctx.head = head;
    ctx.client.request_id = RequestId::from_request(request_id.as_ref());
    ctx.client.tls = session.digest().is_some_and(|d| d.ssl_digest.is_some());
    if matches!(
        session.req_header().version,
        http::Version::HTTP_10 | http::Version::HTTP_11
    ) && sanitize::absolute_form_to_host(session.req_header_mut())
    {
        ctx.head.host_changed(session.req_header());
    }
    let live = &ctx.live;
    let local = session.server_addr().and_then(|a| a.as_inet()).copied();
    ctx.place.listener = live.cfg.listener_index(local);
    if let Some(l) = ctx.place.listener.map(|i| &live.cfg.listeners[i]) {
        let host = ctx.head.host().map(routing::strip_port).unwrap_or("");
        ctx.place.server = l.hosts.select(host);
    }
    let compression = live.cfg.servers[ctx.place.server].compression.is_some();
    compression::negotiate(session, compression, &mut ctx.accept_encoding);
}

/// A connection to an address a reload removed: the address no longer
/// serves anything; a client retries a 421 on a new connection (RFC 9110
/// §15.5.20). This one is drained.
pub fn listener(session: &mut Session, ctx: &mut RequestCtx, _live: &LiveConfig) -> Verdict {
    if ctx.place.listener.is_some() {
        return Verdict::Continue;
    }
    session.set_keepalive(None);
    Verdict::Answer(Answer::status(421))
}

/// A malformed `Host` (HTTP/1.1 with none or two, not visible ASCII) or
/// target form: 400; a transfer coding rampart does not decode: 501.
/// Nothing more is read from such a connection.
pub fn refused(session: &mut Session, ctx: &mut RequestCtx, _live: &LiveConfig) -> Verdict {
    let req = session.req_header();
    let status = if !ctx.head.host_is_well_formed(req.version)
        || !sanitize::target_form_supported(req.raw_path())
    {
        400
    } else if !ctx.head.transfer_coding_supported() {
        501
    } else {
        return Verdict::Continue;
    };
    session.set_keepalive(None);
    Verdict::Answer(Answer::status(status))
}

/// Over TLS, a `Host` naming a server whose certificate the SNI did not
/// select: the client would be talking to a server it never verified
/// (421, RFC 9110 §15.5.20). Servers sharing one certificate file may be
/// reached through each other's names, as with a multi-name certificate.
pub fn misdirected(session: &mut Session, ctx: &mut RequestCtx, live: &LiveConfig) -> Verdict {
    if !ctx.client.tls {
        return Verdict::Continue;
    }
    let Some(Some(sni)) = session
        .digest()
        .and_then(|d| d.ssl_digest.as_ref())
        .and_then(|t| t.extension.get::<crate::tls::Sni>())
        .map(|s| s.0.as_deref())
    else {
        // No SNI (e.g. an IP address): nothing was promised; Host decides.
        return Verdict::Continue;
    };
    let Some(listener) = ctx.place.listener.map(|i| &live.cfg.listeners[i]) else {
        return Verdict::Continue;
    };
    let (by_sni, by_host) = (listener.hosts.select(sni), ctx.place.server);
    let cert = |i: crate::config::snapshot::ServerId| {
        live.cfg.servers[i]
            .tls
            .as_ref()
            .map(|t| t.certificate.identity(i))
    };
    if by_sni == by_host || cert(by_sni) == cert(by_host) {
        return Verdict::Continue;
    }
    Verdict::Answer(Answer::status(421))
}
