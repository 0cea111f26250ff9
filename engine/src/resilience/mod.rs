//! Resilience: a circuit breaker and retries with backoff, for agents that call other agents or
//! outside services.
//!
//! This module owns two tools and the sliding-window counter they share:
//! - [`CircuitBreaker`] (in `breaker.rs`) stops calling a callee that keeps failing, so a broken
//!   dependency costs a fast rejection instead of a timeout, and lets a few probe calls through
//!   to find out when it has recovered.
//! - [`RetryPolicy`], [`Retry`] and [`RetryBudget`] (in `retry.rs`) decide whether and when a
//!   failed call is tried again: exponential backoff with jitter, a cap on attempts, a call's
//!   deadline that no retry is scheduled past, and a budget shared by many calls so that retries
//!   cannot multiply the load on a callee during an outage.
//!
//! Invariants, for every type here:
//! - **No clock, no sleep.** Agents run on a shard thread and must never block, so nothing here
//!   reads a clock or waits. Every method that needs the time takes `now_ns: u64`, nanoseconds
//!   on the engine clock as `Ctx::now_ns()` gives it. A retry is not performed here either: the
//!   caller is told how long to wait and schedules the next attempt itself.
//! - **Deterministic.** The same sequence of calls with the same `now_ns` values and the same
//!   jitter seed gives the same decisions, so tests drive a controlled clock (plain `u64`s) and a
//!   seed reproduces any run.
//! - **No allocation per call.** Bucket rings are sized once, at construction; afterwards every
//!   method works in place.
//! - **No overflow panics.** Time and count arithmetic saturates.
//! - **One thread.** The types are plain values owned by one agent (`&mut self` methods); there
//!   is no interior mutability and no atomics.
//!
//! The clock is assumed monotonic (the engine clock is). A `now_ns` earlier than one already
//! seen is treated as that latest time: it never moves a window backwards.
//!
//! # Using them around an ask
//!
//! An agent keeps one breaker per callee, one budget per callee (or per group of callees), one
//! jitter generator seeded from its own id, and one [`Retry`] per call in flight:
//!
//! ```text
//! // In the agent's state:
//! breaker: CircuitBreaker::with_defaults(),
//! budget:  RetryBudget::with_defaults(),
//! policy:  RetryPolicy::default(),
//! rng:     JitterRng::new(my_id.to_bits()),
//!
//! // Starting a call (the first attempt):
//! let now = ctx.now_ns();
//! budget.record_call(now);                      // first attempts fund the retry budget
//! let retry = Retry::new(&policy, Some(now + timeout_ns));
//! attempt(call, retry):
//!     match breaker.try_call(now) {
//!         Err(open) => fail fast or use a fallback; `open.retry_after_ns` says when to look again
//!         Ok(permit) => {
//!             // The answer names its call; the permit stays here, so a refused ask can hand it back.
//!             let asked = ctx.ask(callee, make).timeout(per_try_timeout)
//!                 .then(move |result| Msg::Answered { call, result });
//!             match asked {
//!                 Ok(()) => remember (call, permit, retry) until its answer
//!                 Err(_) => { breaker.release(permit); fail the call, or retry it later }
//!             }
//!         }
//!     }
//!
//! // In handle(Msg::Answered { call, result }), with the (permit, retry) remembered for `call`:
//! let now = ctx.now_ns();
//! match result {
//!     Ok(answer) => { breaker.on_success(permit, now); finish the call with `answer` }
//!     Err(_)     => {
//!         breaker.on_failure(permit, now);
//!         match retry.after_failure(now, &mut budget, &mut rng) {
//!             RetryDecision::RetryAfter(delay) => keep `retry`; make the next attempt at now + delay
//!             RetryDecision::GiveUp(reason)    => fail the call with `reason`
//!         }
//!     }
//! }
//! ```
//!
//! Report every permit's outcome (or hand it back with [`CircuitBreaker::release`] when the call
//! was never made): a probe permit dropped in the half-open state keeps its probe slot taken until
//! the breaker next opens or closes.

mod breaker;
mod retry;

pub use breaker::{
    BreakerConfig, BreakerConfigError, BreakerOpen, BreakerState, BreakerStats, CallPermit, CircuitBreaker,
    WindowCounts, DEFAULT_FAILURE_RATE_THRESHOLD, DEFAULT_HALF_OPEN_PROBES, DEFAULT_HEALTHY_TO_CLOSE,
    DEFAULT_MIN_CALLS, DEFAULT_OPEN_FOR, DEFAULT_WINDOW, DEFAULT_WINDOW_BUCKETS,
};
pub use retry::{
    GiveUpReason, Jitter, JitterRng, Retry, RetryBudget, RetryBudgetConfig, RetryConfigError, RetryDecision,
    RetryPolicy, DEFAULT_BASE_DELAY, DEFAULT_BUDGET_BUCKETS, DEFAULT_BUDGET_RATIO, DEFAULT_BUDGET_WINDOW,
    DEFAULT_JITTER, DEFAULT_MAX_ATTEMPTS, DEFAULT_MAX_DELAY, DEFAULT_MIN_RETRIES_PER_SEC, DEFAULT_MULTIPLIER,
};

/// The most buckets a sliding window may have (limits the ring allocated at construction and the
/// work of one window step).
pub const MAX_WINDOW_BUCKETS: u32 = 1024;

/// Converts a duration to nanoseconds, saturating at `u64::MAX` (about 584 years).
pub(crate) fn duration_ns(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// One bucket of a [`SlidingCounts`]: the events counted during one bucket width.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Bucket {
    calls: u64,
    marked: u64,
}

/// Two event counts (`calls`, and `marked` ones such as failures or retries) over a sliding time
/// window, kept as a ring of fixed-width time buckets.
///
/// The window holds the bucket containing the newest time seen plus the `buckets - 1` before it,
/// so it covers between `(buckets - 1) * width_ns` and `buckets * width_ns` of history. Buckets
/// that fall out of the window are cleared lazily, when a later `now_ns` arrives.
///
/// Invariants: `calls == sum(bucket.calls)` and `marked == sum(bucket.marked)` over the ring
/// (saturating); `head_id` is the bucket number (`now_ns / width_ns`) of the newest time seen and
/// never decreases; the ring slot of bucket number `n` is `n % buckets.len()`.
#[derive(Clone, Debug)]
pub(crate) struct SlidingCounts {
    buckets: Box<[Bucket]>,
    width_ns: u64,
    head_id: u64,
    calls: u64,
    marked: u64,
}

impl SlidingCounts {
    /// A window of `buckets` buckets covering `window_ns`. The caller has validated
    /// `1 <= buckets <= MAX_WINDOW_BUCKETS` and `window_ns >= buckets` (so each bucket is at least
    /// 1 ns wide); the bucket width is `window_ns / buckets`, rounded down.
    pub(crate) fn new(window_ns: u64, buckets: u32) -> Self {
        debug_assert!((1..=MAX_WINDOW_BUCKETS).contains(&buckets));
        debug_assert!(window_ns >= u64::from(buckets));
        let n = buckets.max(1);
        let width_ns = (window_ns / u64::from(n)).max(1);
        Self {
            buckets: vec![Bucket::default(); n as usize].into_boxed_slice(),
            width_ns,
            head_id: 0,
            calls: 0,
            marked: 0,
        }
    }

    /// Moves the window forward to `now_ns`, clearing the buckets that fall out of it.
    pub(crate) fn advance(&mut self, now_ns: u64) {
        let id = now_ns / self.width_ns;
        if id <= self.head_id {
            return;
        }
        let len = self.buckets.len() as u64;
        let gap = id - self.head_id;
        if gap >= len {
            self.clear();
        } else {
            for step in 1..=gap {
                let slot = ((self.head_id + step) % len) as usize;
                let old = std::mem::take(&mut self.buckets[slot]);
                self.calls = self.calls.saturating_sub(old.calls);
                self.marked = self.marked.saturating_sub(old.marked);
            }
        }
        self.head_id = id;
    }

    /// Counts `calls` and `marked` events at `now_ns` (in the newest bucket when `now_ns` is
    /// earlier than a time already seen).
    pub(crate) fn add(&mut self, now_ns: u64, calls: u64, marked: u64) {
        self.advance(now_ns);
        let slot = (self.head_id % self.buckets.len() as u64) as usize;
        let b = &mut self.buckets[slot];
        b.calls = b.calls.saturating_add(calls);
        b.marked = b.marked.saturating_add(marked);
        self.calls = self.calls.saturating_add(calls);
        self.marked = self.marked.saturating_add(marked);
    }

    /// The totals `(calls, marked)` in the window ending at `now_ns`.
    pub(crate) fn totals(&mut self, now_ns: u64) -> (u64, u64) {
        self.advance(now_ns);
        (self.calls, self.marked)
    }

    /// Forgets every count (the window position is kept).
    pub(crate) fn clear(&mut self) {
        self.buckets.fill(Bucket::default());
        self.calls = 0;
        self.marked = 0;
    }

    /// Width of one bucket in nanoseconds.
    #[cfg(test)]
    pub(crate) fn width_ns(&self) -> u64 {
        self.width_ns
    }
}

/// Parts per billion of a fraction in `[0, +inf)`, for exact integer comparisons of rates
/// (`as` saturates: a huge value becomes `u64::MAX`).
pub(crate) fn fraction_ppb(fraction: f64) -> u64 {
    (fraction * 1e9).round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sliding_counts_expire_old_buckets() {
        // 4 buckets of 10 ns.
        let mut w = SlidingCounts::new(40, 4);
        assert_eq!(w.width_ns(), 10);
        w.add(0, 1, 1);
        w.add(15, 2, 0);
        w.add(39, 3, 1);
        assert_eq!(w.totals(39), (6, 2));
        // Bucket 4 (40..50) replaces bucket 0: the first event leaves the window.
        assert_eq!(w.totals(40), (5, 1));
        // Bucket 5 replaces bucket 1.
        assert_eq!(w.totals(55), (3, 1));
        // A gap of a whole window clears everything.
        assert_eq!(w.totals(1_000), (0, 0));
    }

    #[test]
    fn sliding_counts_treat_earlier_times_as_the_newest() {
        let mut w = SlidingCounts::new(40, 4);
        w.add(100, 1, 0);
        w.add(5, 1, 1); // earlier than seen: goes into the newest bucket
        assert_eq!(w.totals(100), (2, 1));
        assert_eq!(w.totals(139), (2, 1));
        assert_eq!(w.totals(140), (0, 0));
    }

    #[test]
    fn sliding_counts_clear_keeps_position() {
        let mut w = SlidingCounts::new(40, 4);
        w.add(25, 4, 2);
        w.clear();
        assert_eq!(w.totals(25), (0, 0));
        w.add(26, 1, 0);
        assert_eq!(w.totals(30), (1, 0));
    }

    #[test]
    fn saturating_conversions() {
        assert_eq!(duration_ns(std::time::Duration::MAX), u64::MAX);
        assert_eq!(duration_ns(std::time::Duration::from_millis(3)), 3_000_000);
        assert_eq!(fraction_ppb(0.05), 50_000_000);
        assert_eq!(fraction_ppb(1.0), 1_000_000_000);
        assert_eq!(fraction_ppb(1e300), u64::MAX);
    }
}
