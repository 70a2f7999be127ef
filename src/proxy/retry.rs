//! When a failed upstream attempt is tried again on another server: the
//! policy as pure functions over the request's attempts, so that every rule
//! is unit-tested apart from pingora's hooks, which only report what
//! happened and apply the answer.
//!
//! The rules (nginx's `proxy_next_upstream error timeout http_502 http_503
//! http_504`, non-idempotent requests excepted):
//! - a connection that failed sent nothing: any request goes to the next
//!   server, up to the upstream's `tries`;
//! - a failure after connecting, before the response head, is retried only
//!   for an idempotent request whose body (if any) was not sent;
//! - a 502/503/504 answer likewise, and only if an untried server is left
//!   (else the answer itself is the best there is);
//! - otherwise pingora's own rule stands: a stale pooled connection is
//!   retried once on a fresh one, for a request safe to resend.

use crate::config::snapshot::UpstreamId;
use crate::upstream::{InFlight, Tried};

/// A proxied request's attempts on its upstream.
#[derive(Debug, Default)]
pub struct Attempts {
    /// The route's upstream (index into `cfg.upstreams`); `None` for a
    /// request rampart answers itself.
    pub upstream: Option<UpstreamId>,
    pub tried: Tried,
    /// Attempts so far (the current one included).
    pub count: usize,
    /// The current attempt's server, by index in the pool.
    pub current: Option<usize>,
    /// The current attempt's slot in the balancer's in-flight count.
    pub in_flight: Option<InFlight>,
    /// Status of the response head the upstream sent.
    pub upstream_status: Option<u16>,
    /// Status for the final answer if every server fails (502 or 504).
    pub last_failure: Option<u16>,
    /// Set while a 5xx answer is being turned into a retry.
    pub retry_5xx: Option<u16>,
}

/// How an attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Connecting failed (nothing was sent).
    Connect { timeout: bool },
    /// The upstream failed after the connection was made, before its
    /// response head.
    BeforeHead { timeout: bool },
    /// Anything else: a failure after the head, or the client's side.
    Other,
}

impl Failure {
    /// The answer if no server does better: 504 for a timeout, else 502.
    pub fn status(self) -> Option<u16> {
        match self {
            Failure::Connect { timeout } | Failure::BeforeHead { timeout } => {
                Some(if timeout { 504 } else { 502 })
            }
            Failure::Other => None,
        }
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Try again (pingora asks `upstream_peer` for the next server).
    Next,
    /// pingora's rule: again only if a reused pooled connection failed.
    IfReused,
    /// Give up: the failure becomes the answer.
    GiveUp,
}

/// Whether resending the request is safe: an idempotent method and no
/// body byte sent (or a body pingora kept whole for a resend).
pub fn safe_to_resend(idempotent: bool, body_sent: u64, retry_buffer_truncated: bool) -> bool {
    idempotent && body_sent == 0 && !retry_buffer_truncated
}

/// After a failed attempt: `attempts` made so far, of at most `tries`.
pub fn after_failure(failure: Failure, safe: bool, attempts: usize, tries: usize) -> Decision {
    let left = attempts < tries;
    match failure {
        Failure::Connect { .. } if left => Decision::Next,
        Failure::Connect { .. } => Decision::GiveUp,
        Failure::BeforeHead { .. } if safe && left => Decision::Next,
        _ if safe => Decision::IfReused,
        _ => Decision::GiveUp,
    }
}

/// After a response head: a 502/503/504 goes to the next server when that
/// is safe, allowed and there is one left to ask.
pub fn retry_status(
    status: u16,
    safe: bool,
    attempts: usize,
    tries: usize,
    untried_left: bool,
) -> bool {
    matches!(status, 502..=504) && safe && attempts < tries && untried_left
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_connection_moves_on_for_any_method_while_tries_last() {
        let f = Failure::Connect { timeout: false };
        assert_eq!(after_failure(f, false, 1, 3), Decision::Next);
        assert_eq!(after_failure(f, true, 2, 3), Decision::Next);
        assert_eq!(after_failure(f, true, 3, 3), Decision::GiveUp);
    }

    #[test]
    fn a_failure_before_the_head_moves_on_only_when_safe() {
        let f = Failure::BeforeHead { timeout: true };
        assert_eq!(after_failure(f, true, 1, 2), Decision::Next);
        assert_eq!(after_failure(f, false, 1, 2), Decision::GiveUp);
        // Out of tries: a stale pooled connection may still be retried.
        assert_eq!(after_failure(f, true, 2, 2), Decision::IfReused);
        assert_eq!(
            after_failure(Failure::Other, true, 1, 5),
            Decision::IfReused
        );
        assert_eq!(after_failure(Failure::Other, false, 1, 5), Decision::GiveUp);
    }

    #[test]
    fn failures_map_to_502_or_504() {
        assert_eq!(Failure::Connect { timeout: true }.status(), Some(504));
        assert_eq!(Failure::BeforeHead { timeout: false }.status(), Some(502));
        assert_eq!(Failure::Other.status(), None);
    }

    #[test]
    fn only_gateway_errors_are_retried_and_only_if_someone_is_left() {
        for s in [502, 503, 504] {
            assert!(retry_status(s, true, 1, 2, true));
            assert!(!retry_status(s, true, 1, 2, false));
            assert!(!retry_status(s, false, 1, 2, true));
            assert!(!retry_status(s, true, 2, 2, true));
        }
        for s in [200, 404, 500, 501, 505] {
            assert!(!retry_status(s, true, 1, 2, true));
        }
    }

    #[test]
    fn resending_needs_an_idempotent_method_and_no_body_sent() {
        assert!(safe_to_resend(true, 0, false));
        assert!(!safe_to_resend(false, 0, false));
        assert!(!safe_to_resend(true, 1, false));
        assert!(!safe_to_resend(true, 0, true));
    }
}
