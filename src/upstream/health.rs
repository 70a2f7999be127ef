//! Health of one upstream server: passive (nginx `max_fails` /
//! `fail_timeout`) and active (probe thresholds), combined as "down if
//! either says down". Time is a parameter, so the state machine is tested
//! without sleeping.
//!
//! Passive follows nginx's `ngx_http_upstream_round_robin.c`: a failure
//! increments `fails` and stamps `checked`; a server with
//! `fails >= max_fails` is skipped until `fail_timeout` has passed since
//! `checked`; then it is selected again and selection re-stamps `checked`, so
//! only one request probes it per `fail_timeout`. A response resets `fails`.

use std::time::{Duration, Instant};

/// A change worth one log line and a gauge update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    None,
    Down,
    Up,
}

#[derive(Debug, Clone)]
pub struct Health {
    fails: u32,
    checked: Option<Instant>,
    /// Whether the last passive verdict was "down" (for logging once).
    passive_down: bool,
    active_up: bool,
    consecutive_ok: u32,
    consecutive_fail: u32,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            fails: 0,
            checked: None,
            passive_down: false,
            active_up: true,
            consecutive_ok: 0,
            consecutive_fail: 0,
        }
    }
}

impl Health {
    fn passive_ok(&self, now: Instant, max_fails: u32, fail_timeout: Duration) -> bool {
        if max_fails == 0 || self.fails < max_fails {
            return true;
        }
        match self.checked {
            Some(c) => now.saturating_duration_since(c) > fail_timeout,
            None => true,
        }
    }

    /// May this server get a request now?
    pub fn available(&self, now: Instant, max_fails: u32, fail_timeout: Duration) -> bool {
        self.active_up && self.passive_ok(now, max_fails, fail_timeout)
    }

    /// No failure on record and active checks passing: available whatever
    /// the time, and selection changes nothing.
    pub fn is_pristine(&self) -> bool {
        self.fails == 0 && self.active_up
    }

    /// Whether the server counts as up for `rampart_upstream_server_up`.
    pub fn is_up(&self) -> bool {
        self.active_up && !self.passive_down
    }

    /// The server was chosen for a request.
    pub fn on_select(&mut self, now: Instant, fail_timeout: Duration) {
        if let Some(c) = self.checked {
            if now.saturating_duration_since(c) > fail_timeout {
                self.checked = Some(now);
            }
        }
    }

    /// A connect error, timeout or broken response from this server.
    pub fn on_failure(&mut self, now: Instant, max_fails: u32) -> Transition {
        if max_fails == 0 {
            return Transition::None;
        }
        self.fails = self.fails.saturating_add(1);
        self.checked = Some(now);
        if self.fails >= max_fails && !self.passive_down {
            self.passive_down = true;
            if self.active_up {
                return Transition::Down;
            }
        }
        Transition::None
    }

    /// A response head arrived from this server.
    pub fn on_success(&mut self) -> Transition {
        self.fails = 0;
        if self.passive_down {
            self.passive_down = false;
            if self.active_up {
                return Transition::Up;
            }
        }
        Transition::None
    }

    /// Result of an active probe.
    pub fn on_probe(
        &mut self,
        ok: bool,
        healthy_threshold: u32,
        unhealthy_threshold: u32,
    ) -> Transition {
        let was_up = self.is_up();
        if ok {
            self.consecutive_ok += 1;
            self.consecutive_fail = 0;
            if !self.active_up && self.consecutive_ok >= healthy_threshold {
                self.active_up = true;
                // A server that answers probes is given requests again.
                self.fails = 0;
                self.passive_down = false;
            }
        } else {
            self.consecutive_fail += 1;
            self.consecutive_ok = 0;
            if self.active_up && self.consecutive_fail >= unhealthy_threshold {
                self.active_up = false;
            }
        }
        match (was_up, self.is_up()) {
            (true, false) => Transition::Down,
            (false, true) => Transition::Up,
            _ => Transition::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FT: Duration = Duration::from_secs(10);

    #[test]
    fn max_fails_within_fail_timeout_takes_a_server_out_for_fail_timeout() {
        let t0 = Instant::now();
        let mut h = Health::default();
        assert!(h.available(t0, 3, FT));
        assert_eq!(h.on_failure(t0, 3), Transition::None);
        assert_eq!(
            h.on_failure(t0 + Duration::from_secs(1), 3),
            Transition::None
        );
        assert!(h.available(t0 + Duration::from_secs(1), 3, FT));
        assert_eq!(
            h.on_failure(t0 + Duration::from_secs(2), 3),
            Transition::Down
        );
        assert!(!h.available(t0 + Duration::from_secs(3), 3, FT));
        assert!(
            !h.available(t0 + Duration::from_secs(12), 3, FT),
            "fail_timeout counts from the last failure"
        );
        // After fail_timeout: one request probes it...
        let later = t0 + Duration::from_secs(13);
        assert!(h.available(later, 3, FT));
        h.on_select(later, FT);
        assert!(
            !h.available(later + Duration::from_millis(1), 3, FT),
            "...and only one"
        );
        // ...and a failure keeps it out, without a second log line.
        assert_eq!(
            h.on_failure(later + Duration::from_millis(2), 3),
            Transition::None
        );
        assert!(!h.available(later + Duration::from_secs(5), 3, FT));
        // A success brings it back.
        assert_eq!(h.on_success(), Transition::Up);
        assert!(h.available(later + Duration::from_secs(5), 3, FT));
        assert_eq!(h.on_success(), Transition::None);
    }

    #[test]
    fn max_fails_zero_disables_passive_health() {
        let t0 = Instant::now();
        let mut h = Health::default();
        for i in 0..10 {
            assert_eq!(
                h.on_failure(t0 + Duration::from_millis(i), 0),
                Transition::None
            );
        }
        assert!(h.available(t0, 0, FT));
        assert!(h.is_up());
    }

    #[test]
    fn active_thresholds_flip_state() {
        let mut h = Health::default();
        assert_eq!(h.on_probe(false, 2, 3), Transition::None);
        assert_eq!(h.on_probe(false, 2, 3), Transition::None);
        assert_eq!(
            h.on_probe(true, 2, 3),
            Transition::None,
            "a success resets the failure streak"
        );
        assert_eq!(h.on_probe(false, 2, 3), Transition::None);
        assert_eq!(h.on_probe(false, 2, 3), Transition::None);
        assert_eq!(h.on_probe(false, 2, 3), Transition::Down);
        let now = Instant::now();
        assert!(!h.available(now, 1, FT), "active down wins over passive up");
        assert_eq!(h.on_probe(true, 2, 3), Transition::None);
        assert_eq!(h.on_probe(true, 2, 3), Transition::Up);
        assert!(h.available(now, 1, FT));
    }

    #[test]
    fn down_if_either_says_down() {
        let t0 = Instant::now();
        let mut h = Health::default();
        assert_eq!(h.on_failure(t0, 1), Transition::Down);
        // A passing probe does not override the passive verdict.
        assert_eq!(
            h.on_probe(true, 1, 1),
            Transition::None,
            "active was already up"
        );
        assert!(!h.available(t0 + Duration::from_secs(1), 1, FT));
    }
}
