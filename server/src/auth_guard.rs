//! Slowing down password guessing on one connection: the AUTH backoff policy.
//!
//! After a failed `AUTH` (or `HELLO ... AUTH`), the connection's next attempt may be answered
//! only after a delay that doubles with each failure in a row: [`FIRST_DELAY`] after the first,
//! up to [`MAX_DELAY`]. An attempt that comes sooner is refused without looking at the
//! password ([`AuthGuard::admit`] says how long is left; [`refusal`] is the error text), so a
//! client that pipelines guesses gets at most about one checked guess a second once the delay
//! has grown. A success resets it. The policy is plain state and arithmetic on the times it is
//! given (no clock, no I/O), so the connection task owns one per connection and the tests
//! drive it with made-up instants.
//!
//! It limits one connection; many connections guessing at once show in the per-shard
//! `auth_failures` counter (INFO and `/metrics`), which is what to alert on.

use std::time::{Duration, Instant};

/// The delay after the first failure.
pub const FIRST_DELAY: Duration = Duration::from_millis(50);
/// The longest delay, however many failures in a row.
pub const MAX_DELAY: Duration = Duration::from_secs(1);

/// One connection's AUTH backoff state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuthGuard {
    /// Failed attempts in a row.
    failures: u32,
    /// No attempt is checked before this instant.
    not_before: Option<Instant>,
}

impl AuthGuard {
    /// Whether an attempt at `now` may be checked; `Err(left)` when it comes `left` too early.
    ///
    /// # Errors
    /// The time left until an attempt may be checked.
    pub fn admit(&self, now: Instant) -> Result<(), Duration> {
        match self.not_before {
            Some(at) if now < at => Err(at - now),
            _ => Ok(()),
        }
    }

    /// Records a checked attempt at `now`: a failure arms the next delay, a success resets.
    pub fn record(&mut self, ok: bool, now: Instant) {
        if ok {
            *self = Self::default();
        } else {
            self.failures = self.failures.saturating_add(1);
            self.not_before = Some(now + delay_after(self.failures));
        }
    }

    /// Failed attempts in a row.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

/// The delay after `failures` failed attempts in a row (zero for none).
pub fn delay_after(failures: u32) -> Duration {
    match failures {
        0 => Duration::ZERO,
        n => FIRST_DELAY.saturating_mul(1u32 << (n - 1).min(16)).min(MAX_DELAY),
    }
}

/// The error text for an attempt refused `left` too early (without the `-`).
pub fn refusal(left: Duration) -> String {
    format!("ERR too many failed AUTH attempts on this connection; retry in {} ms", left.as_millis().max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_doubles_from_the_first_delay_up_to_the_cap() {
        let delays: Vec<u128> = (0..8).map(|n| delay_after(n).as_millis()).collect();
        assert_eq!(delays, [0, 50, 100, 200, 400, 800, 1000, 1000]);
        assert_eq!(delay_after(u32::MAX), MAX_DELAY, "no overflow");
    }

    #[test]
    fn a_failure_delays_the_next_attempt_and_a_success_resets() {
        let t0 = Instant::now();
        let mut guard = AuthGuard::default();
        assert_eq!(guard.admit(t0), Ok(()), "the first attempt is checked at once");
        guard.record(false, t0);
        assert_eq!(guard.admit(t0 + Duration::from_millis(20)), Err(Duration::from_millis(30)));
        assert_eq!(guard.admit(t0 + FIRST_DELAY), Ok(()));
        let t1 = t0 + FIRST_DELAY;
        guard.record(false, t1);
        assert_eq!(guard.failures(), 2);
        assert_eq!(guard.admit(t1 + Duration::from_millis(99)), Err(Duration::from_millis(1)));
        assert_eq!(guard.admit(t1 + Duration::from_millis(100)), Ok(()));
        guard.record(true, t1 + Duration::from_millis(100));
        assert_eq!(guard, AuthGuard::default(), "a success forgets the failures");
    }

    #[test]
    fn guessing_in_a_tight_loop_gets_about_one_check_a_second() {
        let t0 = Instant::now();
        let mut guard = AuthGuard::default();
        let mut checked = 0;
        for ms in 0..10_000u64 {
            let now = t0 + Duration::from_millis(ms);
            if guard.admit(now).is_ok() {
                checked += 1;
                guard.record(false, now);
            }
        }
        assert!((10..=16).contains(&checked), "{checked} guesses checked in 10 s");
    }

    #[test]
    fn the_refusal_is_one_line_with_the_time_left() {
        let text = refusal(Duration::from_micros(1500));
        assert_eq!(text, "ERR too many failed AUTH attempts on this connection; retry in 1 ms");
        assert_eq!(refusal(Duration::ZERO), "ERR too many failed AUTH attempts on this connection; retry in 1 ms");
    }
}
