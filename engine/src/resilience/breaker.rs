//! Circuit breaker: stops calling a callee that keeps failing, then probes it until it recovers.
//!
//! This module owns [`CircuitBreaker`], its config ([`BreakerConfig`]), the permits it hands out
//! ([`CallPermit`]) and its rejection ([`BreakerOpen`]).
//!
//! The breaker has three states ([`BreakerState`]):
//! 1. **Closed**: every call goes through. Outcomes are counted in a sliding window (a ring of
//!    time buckets). When the window holds at least `min_calls` outcomes and
//!    `failures / calls >= failure_rate_threshold`, the breaker opens.
//! 2. **Open**: every call is rejected with [`BreakerOpen`], whose `retry_after_ns` says when the
//!    open period (`open_for`) ends. The first permission request (or state query) after that
//!    moves it to half-open.
//! 3. **HalfOpen**: at most `half_open_probes` probe calls are in flight at once; callers beyond
//!    that are rejected. Any probe failure reopens the breaker for another full `open_for`. It
//!    closes once `healthy_to_close` has passed since it entered half-open with no failure and at
//!    least one probe success; closing clears the window.
//!
//! Invariants:
//! - Every transition bumps an epoch. A [`CallPermit`] records the epoch and state it was issued
//!   in; an outcome reported with a permit from an earlier epoch is *stale*: it is counted in
//!   [`BreakerStats::stale_outcomes`] and changes nothing (a late success from before the breaker
//!   opened does not close it; a late failure from before it closed does not reopen it).
//! - `probes_in_flight <= half_open_probes`, and it is zero outside the half-open state.
//! - The window only holds outcomes of calls issued in the current closed period.
//! - Rates are compared in integers (parts per billion), so "exactly at the threshold" is exact.
//!
//! Time comes in as `now_ns` (engine clock); the breaker never reads a clock, never sleeps and
//! does not allocate after construction. It is a plain value owned by one agent.

use super::{duration_ns, fraction_ppb, SlidingCounts, MAX_WINDOW_BUCKETS};
use std::fmt;
use std::time::Duration;

/// Default failure rate at which the breaker opens: 5% of the calls in the window.
pub const DEFAULT_FAILURE_RATE_THRESHOLD: f64 = 0.05;
/// Default length of the sliding window over which the failure rate is measured: 10 s.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(10);
/// Default number of time buckets in the window: 10 (1 s each with the default window).
pub const DEFAULT_WINDOW_BUCKETS: u32 = 10;
/// Default number of outcomes the window must hold before the rate is judged: 20.
pub const DEFAULT_MIN_CALLS: u32 = 20;
/// Default time the breaker stays open before it lets probes through: 30 s.
pub const DEFAULT_OPEN_FOR: Duration = Duration::from_secs(30);
/// Default number of probe calls in flight at once in the half-open state: 3.
pub const DEFAULT_HALF_OPEN_PROBES: u32 = 3;
/// Default time of good health in the half-open state before the breaker closes: 60 s.
pub const DEFAULT_HEALTHY_TO_CLOSE: Duration = Duration::from_secs(60);

/// The state of a [`CircuitBreaker`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BreakerState {
    /// Calls go through; outcomes are counted.
    Closed,
    /// Calls are rejected until the open period ends.
    Open,
    /// A limited number of probe calls go through to test the callee's recovery.
    HalfOpen,
}

impl fmt::Display for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half-open",
        })
    }
}

/// Settings of a [`CircuitBreaker`]. `BreakerConfig::default()` gives the `DEFAULT_*` constants
/// of this module; the setters change one field each; [`BreakerConfig::validate`] (also run by
/// [`CircuitBreaker::new`]) rejects nonsense.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerConfig {
    /// Failure rate in `(0, 1]` at which the breaker opens (default
    /// [`DEFAULT_FAILURE_RATE_THRESHOLD`], 5%).
    pub failure_rate_threshold: f64,
    /// Length of the sliding window (default [`DEFAULT_WINDOW`], 10 s).
    pub window: Duration,
    /// Number of time buckets in the window, `1..=MAX_WINDOW_BUCKETS` (default
    /// [`DEFAULT_WINDOW_BUCKETS`], 10). Each bucket is `window / window_buckets` wide, rounded
    /// down to whole nanoseconds.
    pub window_buckets: u32,
    /// Outcomes the window must hold before its rate is judged, at least 1 (default
    /// [`DEFAULT_MIN_CALLS`], 20).
    pub min_calls: u32,
    /// How long the breaker stays open, more than zero (default [`DEFAULT_OPEN_FOR`], 30 s).
    pub open_for: Duration,
    /// Probe calls in flight at once in the half-open state, at least 1 (default
    /// [`DEFAULT_HALF_OPEN_PROBES`], 3).
    pub half_open_probes: u32,
    /// Time in the half-open state with no failure (and at least one probe success) before the
    /// breaker closes (default [`DEFAULT_HEALTHY_TO_CLOSE`], 60 s). Zero closes it on the first
    /// probe success.
    pub healthy_to_close: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_rate_threshold: DEFAULT_FAILURE_RATE_THRESHOLD,
            window: DEFAULT_WINDOW,
            window_buckets: DEFAULT_WINDOW_BUCKETS,
            min_calls: DEFAULT_MIN_CALLS,
            open_for: DEFAULT_OPEN_FOR,
            half_open_probes: DEFAULT_HALF_OPEN_PROBES,
            healthy_to_close: DEFAULT_HEALTHY_TO_CLOSE,
        }
    }
}

impl BreakerConfig {
    /// Sets the failure rate in `(0, 1]` at which the breaker opens.
    #[must_use]
    pub fn failure_rate_threshold(mut self, threshold: f64) -> Self {
        self.failure_rate_threshold = threshold;
        self
    }

    /// Sets the length of the sliding window.
    #[must_use]
    pub fn window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// Sets the number of time buckets in the window.
    #[must_use]
    pub fn window_buckets(mut self, buckets: u32) -> Self {
        self.window_buckets = buckets;
        self
    }

    /// Sets the number of outcomes the window must hold before its rate is judged.
    #[must_use]
    pub fn min_calls(mut self, calls: u32) -> Self {
        self.min_calls = calls;
        self
    }

    /// Sets how long the breaker stays open.
    #[must_use]
    pub fn open_for(mut self, open_for: Duration) -> Self {
        self.open_for = open_for;
        self
    }

    /// Sets the number of probe calls in flight at once in the half-open state.
    #[must_use]
    pub fn half_open_probes(mut self, probes: u32) -> Self {
        self.half_open_probes = probes;
        self
    }

    /// Sets the time of good health in the half-open state before the breaker closes.
    #[must_use]
    pub fn healthy_to_close(mut self, healthy_to_close: Duration) -> Self {
        self.healthy_to_close = healthy_to_close;
        self
    }

    /// Checks every field; the first problem found is returned.
    pub fn validate(&self) -> Result<(), BreakerConfigError> {
        let threshold = self.failure_rate_threshold;
        // Written so that NaN fails too.
        if !(threshold > 0.0 && threshold <= 1.0) {
            return Err(BreakerConfigError::ThresholdOutOfRange { threshold });
        }
        if self.window.is_zero() {
            return Err(BreakerConfigError::ZeroWindow);
        }
        if self.window_buckets == 0 {
            return Err(BreakerConfigError::ZeroBuckets);
        }
        if self.window_buckets > MAX_WINDOW_BUCKETS {
            return Err(BreakerConfigError::TooManyBuckets { buckets: self.window_buckets, max: MAX_WINDOW_BUCKETS });
        }
        let window_ns = duration_ns(self.window);
        if window_ns < u64::from(self.window_buckets) {
            return Err(BreakerConfigError::WindowTooShort { window_ns, buckets: self.window_buckets });
        }
        if self.min_calls == 0 {
            return Err(BreakerConfigError::ZeroMinCalls);
        }
        if self.open_for.is_zero() {
            return Err(BreakerConfigError::ZeroOpenFor);
        }
        if self.half_open_probes == 0 {
            return Err(BreakerConfigError::ZeroProbes);
        }
        Ok(())
    }
}

/// Why a [`BreakerConfig`] was rejected. `Display` is one line with a hint.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum BreakerConfigError {
    /// `failure_rate_threshold` is not in `(0, 1]` (or is NaN).
    #[error("failure_rate_threshold must be in (0, 1], got {threshold}; hint: 0.05 opens the breaker at 5% failures")]
    ThresholdOutOfRange {
        /// The rejected value.
        threshold: f64,
    },
    /// `window` is zero.
    #[error("window must be longer than zero; hint: the default is 10 s")]
    ZeroWindow,
    /// `window_buckets` is zero.
    #[error("window_buckets must be at least 1; hint: the default is 10")]
    ZeroBuckets,
    /// `window_buckets` is above the limit.
    #[error("window_buckets is {buckets}, above the limit of {max}; hint: a few tens of buckets are plenty")]
    TooManyBuckets {
        /// The rejected value.
        buckets: u32,
        /// The limit ([`MAX_WINDOW_BUCKETS`]).
        max: u32,
    },
    /// `window` is shorter than one nanosecond per bucket.
    #[error("window of {window_ns} ns cannot hold {buckets} buckets; hint: use a longer window or fewer buckets")]
    WindowTooShort {
        /// The window in nanoseconds.
        window_ns: u64,
        /// The bucket count.
        buckets: u32,
    },
    /// `min_calls` is zero.
    #[error("min_calls must be at least 1; hint: the default of 20 keeps one early failure from opening the breaker")]
    ZeroMinCalls,
    /// `open_for` is zero.
    #[error("open_for must be longer than zero; hint: the default is 30 s")]
    ZeroOpenFor,
    /// `half_open_probes` is zero.
    #[error("half_open_probes must be at least 1; hint: with no probes the breaker could never close again")]
    ZeroProbes,
}

/// The right to make one call, from [`CircuitBreaker::try_call`]. Make the call, then hand the
/// permit back with its outcome: [`CircuitBreaker::on_success`], [`CircuitBreaker::on_failure`],
/// or [`CircuitBreaker::release`] when the call was not made after all.
///
/// A permit belongs to the breaker that issued it. It is neither `Copy` nor `Clone`, so each
/// outcome is reported once. It records the state and epoch it was issued in, so an outcome that
/// arrives after the breaker changed state is recognised as stale.
#[must_use = "report the call's outcome with on_success/on_failure, or hand the permit back with release"]
#[derive(Debug, PartialEq, Eq)]
pub struct CallPermit {
    epoch: u64,
    issued_in: BreakerState,
}

impl CallPermit {
    /// The state the breaker was in when it issued this permit: `Closed` for an ordinary call,
    /// `HalfOpen` for a probe.
    pub fn issued_in(&self) -> BreakerState {
        self.issued_in
    }

    /// Whether this permit is for a probe call (issued in the half-open state).
    pub fn is_probe(&self) -> bool {
        self.issued_in == BreakerState::HalfOpen
    }
}

/// A call rejected by a [`CircuitBreaker`]: it is open, or half-open with every probe slot taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{}", Describe(self))]
pub struct BreakerOpen {
    /// The breaker's state when it rejected the call: `Open` or `HalfOpen`.
    pub state: BreakerState,
    /// The engine-clock time (ns) from which asking again may succeed: the end of the open period
    /// when `Open`; the rejection time itself when `HalfOpen` (a probe slot frees whenever a probe
    /// reports, which no clock can say).
    pub retry_after_ns: u64,
}

/// [`BreakerOpen`]'s one-line message with its hint.
struct Describe<'a>(&'a BreakerOpen);

impl fmt::Display for Describe<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.state {
            BreakerState::HalfOpen => f.write_str(
                "circuit breaker is half-open and every probe slot is in use; \
                 hint: only a few probe calls go through while the callee's recovery is tested, \
                 so fail fast or use a fallback",
            ),
            _ => write!(
                f,
                "circuit breaker is open after too many failures, calls are rejected until {} ns; \
                 hint: fail fast or use a fallback, and ask again after retry_after_ns",
                self.0.retry_after_ns
            ),
        }
    }
}

/// Counters of a [`CircuitBreaker`] since it was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BreakerStats {
    /// Permits issued (ordinary calls and probes).
    pub calls: u64,
    /// Probe permits issued (a subset of `calls`).
    pub probes: u64,
    /// Successes reported, stale ones included.
    pub successes: u64,
    /// Failures reported, stale ones included.
    pub failures: u64,
    /// Calls rejected (open, or half-open with every probe slot taken).
    pub rejected: u64,
    /// Outcomes reported with a permit issued before the breaker's last transition; they changed
    /// nothing.
    pub stale_outcomes: u64,
    /// Permits handed back with [`CircuitBreaker::release`].
    pub released: u64,
    /// Times the breaker opened (from closed or from half-open).
    pub times_opened: u64,
    /// Times the breaker closed again (from half-open).
    pub times_closed: u64,
}

/// Outcomes counted in a breaker's sliding window (see [`CircuitBreaker::window`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowCounts {
    /// Outcomes (successes and failures) in the window.
    pub calls: u64,
    /// Failures in the window.
    pub failures: u64,
}

/// A circuit breaker for calls to one callee. See the module documentation for the states.
#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    config: BreakerConfig,
    /// `config.failure_rate_threshold` in parts per billion.
    threshold_ppb: u64,
    open_for_ns: u64,
    healthy_to_close_ns: u64,
    /// Outcomes of the current closed period (`calls`, `marked` = failures).
    window: SlidingCounts,
    state: BreakerState,
    /// Bumped on every transition; permits carry it.
    epoch: u64,
    /// End of the open period (meaningful when `Open`).
    open_until_ns: u64,
    /// When the breaker entered half-open (meaningful when `HalfOpen`).
    half_open_since_ns: u64,
    /// Probe permits issued in the current half-open epoch and not yet reported.
    probes_in_flight: u32,
    /// Probe successes in the current half-open epoch.
    probe_successes: u64,
    stats: BreakerStats,
}

impl CircuitBreaker {
    /// A closed breaker with `config`, or the first problem [`BreakerConfig::validate`] finds.
    /// Allocates the window's bucket ring; nothing else allocates afterwards.
    pub fn new(config: BreakerConfig) -> Result<Self, BreakerConfigError> {
        config.validate()?;
        Ok(Self::build(config))
    }

    /// A closed breaker with the default config (5% over 10 s in 10 buckets, at least 20 calls,
    /// open 30 s, 3 probes, 60 s of health to close).
    pub fn with_defaults() -> Self {
        Self::build(BreakerConfig::default())
    }

    /// A closed breaker with `config`, which the caller has validated.
    fn build(config: BreakerConfig) -> Self {
        Self {
            threshold_ppb: fraction_ppb(config.failure_rate_threshold),
            open_for_ns: duration_ns(config.open_for),
            healthy_to_close_ns: duration_ns(config.healthy_to_close),
            window: SlidingCounts::new(duration_ns(config.window), config.window_buckets),
            config,
            state: BreakerState::Closed,
            epoch: 0,
            open_until_ns: 0,
            half_open_since_ns: 0,
            probes_in_flight: 0,
            probe_successes: 0,
            stats: BreakerStats::default(),
        }
    }

    /// Asks to make one call at `now_ns`. `Ok(permit)`: make the call, then report its outcome
    /// with the permit. `Err`: the breaker is open (or half-open with every probe slot taken);
    /// don't make the call.
    ///
    /// Applies the time-driven transitions first: an open breaker whose open period has ended
    /// becomes half-open, and a half-open one that has been healthy for `healthy_to_close` closes.
    pub fn try_call(&mut self, now_ns: u64) -> Result<CallPermit, BreakerOpen> {
        self.advance(now_ns);
        match self.state {
            BreakerState::Closed => {
                self.stats.calls = self.stats.calls.saturating_add(1);
                Ok(CallPermit { epoch: self.epoch, issued_in: BreakerState::Closed })
            }
            BreakerState::HalfOpen if self.probes_in_flight < self.config.half_open_probes => {
                self.probes_in_flight += 1;
                self.stats.calls = self.stats.calls.saturating_add(1);
                self.stats.probes = self.stats.probes.saturating_add(1);
                Ok(CallPermit { epoch: self.epoch, issued_in: BreakerState::HalfOpen })
            }
            BreakerState::HalfOpen => {
                self.stats.rejected = self.stats.rejected.saturating_add(1);
                Err(BreakerOpen { state: BreakerState::HalfOpen, retry_after_ns: now_ns })
            }
            BreakerState::Open => {
                self.stats.rejected = self.stats.rejected.saturating_add(1);
                Err(BreakerOpen { state: BreakerState::Open, retry_after_ns: self.open_until_ns })
            }
        }
    }

    /// Reports that the call made with `permit` succeeded at `now_ns`.
    ///
    /// Closed: counts a success in the window (which can still open the breaker, when this call
    /// brings the window up to `min_calls` with the rate at or above the threshold). Half-open:
    /// frees the probe slot, counts a probe success, and closes the breaker if it has been
    /// healthy for `healthy_to_close`. Stale permit: counted, nothing else.
    pub fn on_success(&mut self, permit: CallPermit, now_ns: u64) {
        self.stats.successes = self.stats.successes.saturating_add(1);
        self.advance(now_ns);
        if permit.epoch != self.epoch {
            self.stats.stale_outcomes = self.stats.stale_outcomes.saturating_add(1);
            return;
        }
        match permit.issued_in {
            BreakerState::HalfOpen => {
                self.release_probe_slot();
                self.probe_successes = self.probe_successes.saturating_add(1);
                self.advance(now_ns);
            }
            _ => {
                self.window.add(now_ns, 1, 0);
                self.judge(now_ns);
            }
        }
    }

    /// Reports that the call made with `permit` failed at `now_ns` (an error, a timeout, or any
    /// answer that says the callee is unhealthy).
    ///
    /// Closed: counts a failure in the window and opens the breaker if the window holds at least
    /// `min_calls` outcomes with the rate at or above the threshold. Half-open: reopens the
    /// breaker for a full `open_for` from `now_ns`. Stale permit: counted, nothing else.
    pub fn on_failure(&mut self, permit: CallPermit, now_ns: u64) {
        self.stats.failures = self.stats.failures.saturating_add(1);
        self.advance(now_ns);
        if permit.epoch != self.epoch {
            self.stats.stale_outcomes = self.stats.stale_outcomes.saturating_add(1);
            return;
        }
        match permit.issued_in {
            BreakerState::HalfOpen => {
                self.release_probe_slot();
                self.open(now_ns);
            }
            _ => {
                self.window.add(now_ns, 1, 1);
                self.judge(now_ns);
            }
        }
    }

    /// Hands back a permit whose call was not made (or whose outcome says nothing about the
    /// callee's health, such as a call the caller itself cancelled): a probe permit frees its
    /// slot; nothing is counted in the window.
    pub fn release(&mut self, permit: CallPermit) {
        self.stats.released = self.stats.released.saturating_add(1);
        if permit.epoch == self.epoch && permit.issued_in == BreakerState::HalfOpen {
            self.release_probe_slot();
        }
    }

    /// The state at `now_ns`, after the same time-driven transitions as [`Self::try_call`]
    /// (open → half-open once the open period has ended, half-open → closed once healthy for
    /// `healthy_to_close`), so what it reports is what the next `try_call` at `now_ns` sees.
    pub fn state(&mut self, now_ns: u64) -> BreakerState {
        self.advance(now_ns);
        self.state
    }

    /// The outcomes counted in the window ending at `now_ns` (only the closed state counts
    /// outcomes; the window is cleared when the breaker closes again).
    pub fn window(&mut self, now_ns: u64) -> WindowCounts {
        let (calls, failures) = self.window.totals(now_ns);
        WindowCounts { calls, failures }
    }

    /// Probe permits in flight (issued in the current half-open period and not yet reported).
    pub fn probes_in_flight(&self) -> u32 {
        self.probes_in_flight
    }

    /// The counters since the breaker was built.
    pub fn stats(&self) -> BreakerStats {
        self.stats
    }

    /// The config the breaker runs with.
    pub fn config(&self) -> &BreakerConfig {
        &self.config
    }

    /// Applies the transitions that time alone causes.
    fn advance(&mut self, now_ns: u64) {
        match self.state {
            BreakerState::Open if now_ns >= self.open_until_ns => self.enter_half_open(now_ns),
            BreakerState::HalfOpen
                if self.probe_successes > 0
                    && now_ns.saturating_sub(self.half_open_since_ns) >= self.healthy_to_close_ns =>
            {
                self.close()
            }
            _ => {}
        }
    }

    /// Opens the breaker when the closed window's failure rate has reached the threshold.
    fn judge(&mut self, now_ns: u64) {
        debug_assert_eq!(self.state, BreakerState::Closed);
        let (calls, failures) = self.window.totals(now_ns);
        if calls < u64::from(self.config.min_calls) {
            return;
        }
        // failures / calls >= threshold, in integers.
        if u128::from(failures) * 1_000_000_000 >= u128::from(self.threshold_ppb) * u128::from(calls) {
            self.open(now_ns);
        }
    }

    fn release_probe_slot(&mut self) {
        debug_assert!(self.probes_in_flight > 0, "a current probe permit holds a slot");
        self.probes_in_flight = self.probes_in_flight.saturating_sub(1);
    }

    fn transition(&mut self, to: BreakerState) {
        self.state = to;
        self.epoch = self.epoch.wrapping_add(1);
        self.probes_in_flight = 0;
        self.probe_successes = 0;
    }

    fn open(&mut self, now_ns: u64) {
        self.transition(BreakerState::Open);
        self.open_until_ns = now_ns.saturating_add(self.open_for_ns);
        self.stats.times_opened = self.stats.times_opened.saturating_add(1);
    }

    fn enter_half_open(&mut self, now_ns: u64) {
        self.transition(BreakerState::HalfOpen);
        self.half_open_since_ns = now_ns;
    }

    fn close(&mut self) {
        self.transition(BreakerState::Closed);
        self.window.clear();
        self.stats.times_closed = self.stats.times_closed.saturating_add(1);
    }
}

#[cfg(test)]
#[path = "breaker_tests.rs"]
mod tests;
