//! Retries: when to try a failed call again, and when to give up.
//!
//! This module owns:
//! - [`RetryPolicy`]: how many attempts, the exponential backoff (`base_delay * multiplier^(n-1)`
//!   before retry `n`, capped at `max_delay`) and its [`Jitter`].
//! - [`Retry`]: one call's retry state. After each failed attempt,
//!   [`Retry::after_failure`] answers [`RetryDecision::RetryAfter`] (wait that long, then try
//!   again) or [`RetryDecision::GiveUp`] with a [`GiveUpReason`].
//! - [`RetryBudget`]: a limit on retries across many calls, so that retries cannot multiply the
//!   load on a callee during an outage. Over a sliding window, the retries allowed are
//!   `min_retries_per_sec * window_seconds + ratio * first_attempts`; each retry takes one.
//! - [`JitterRng`]: a small seedable generator (SplitMix64) for the jitter, so a seed reproduces
//!   every delay.
//!
//! Protocol for one call:
//! 1. Before the first attempt, call [`RetryBudget::record_call`] (this is what funds the budget:
//!    [`Retry::new`] does not touch it) and build a [`Retry`] with the call's deadline.
//! 2. After a failed attempt, call [`Retry::after_failure`]. Its checks run in this order, and
//!    the first that fails decides: attempts left (`AttemptsExhausted`); the next retry would
//!    start before the deadline, `now_ns + delay < deadline_ns` (`DeadlineExceeded`); the budget
//!    has a retry left (`BudgetExhausted`). Only a retry that is granted takes from the budget.
//! 3. Wait the returned delay (by scheduling, never by sleeping), then make the next attempt.
//!
//! Invariants: nothing here reads a clock or sleeps; every time is a `now_ns` argument on the
//! engine clock. All arithmetic saturates, so huge attempt counts or durations never panic. A
//! [`Retry`] that gave up keeps answering the same [`GiveUpReason`]. Nothing allocates after
//! [`RetryBudget`]'s construction.

use super::{duration_ns, fraction_ppb, SlidingCounts, MAX_WINDOW_BUCKETS};
use std::time::Duration;

/// Default number of attempts, counting the first try: 3 (so at most 2 retries).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// Default delay before the first retry: 100 ms.
pub const DEFAULT_BASE_DELAY: Duration = Duration::from_millis(100);
/// Default growth factor of the delay from one retry to the next: 2.
pub const DEFAULT_MULTIPLIER: u32 = 2;
/// Default cap on the delay before any retry (before jitter): 10 s.
pub const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(10);
/// Default jitter: [`Jitter::Full`].
pub const DEFAULT_JITTER: Jitter = Jitter::Full;
/// Default share of first attempts that the budget lets be retried: 0.1 (retries add at most
/// 10% on top of the calls, beyond the floor).
pub const DEFAULT_BUDGET_RATIO: f64 = 0.1;
/// Default floor of the budget: 10 retries per second are always allowed.
pub const DEFAULT_MIN_RETRIES_PER_SEC: u32 = 10;
/// Default length of the budget's sliding window: 10 s.
pub const DEFAULT_BUDGET_WINDOW: Duration = Duration::from_secs(10);
/// Default number of time buckets in the budget's window: 10 (1 s each).
pub const DEFAULT_BUDGET_BUCKETS: u32 = 10;

const NS_PER_SEC: u128 = 1_000_000_000;
/// Scale of `fraction_ppb`: one whole retry in parts per billion.
const ONE_PPB: u128 = 1_000_000_000;

/// How the delay before a retry is randomised, so that callers that failed together do not all
/// retry together. `d` is the backoff delay (`base_delay * multiplier^(n-1)`, capped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Jitter {
    /// Exactly `d`.
    None,
    /// Uniform in `[0, d]`.
    Full,
    /// Half fixed, half random: `d/2 + uniform[0, d/2]`, that is uniform in `[d - d/2, d]` in
    /// whole nanoseconds.
    Equal,
}

impl Default for Jitter {
    fn default() -> Self {
        DEFAULT_JITTER
    }
}

/// A small deterministic generator for jitter: SplitMix64 (a 64-bit counter through a mixing
/// function), seedable, any seed valid.
///
/// Seed it from something that differs per agent, such as `ctx.id().to_bits()`, so that agents
/// do not draw the same jitter, yet any run can be reproduced from its seeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JitterRng {
    state: u64,
}

impl JitterRng {
    /// A generator starting from `seed`.
    pub const fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value uniform in `[0, max]` (both ends included), by multiply-and-shift (bias below
    /// `max / 2^64`, negligible for delays).
    pub fn uniform_inclusive(&mut self, max: u64) -> u64 {
        let x = self.next_u64();
        if max == u64::MAX {
            return x;
        }
        ((u128::from(x) * (u128::from(max) + 1)) >> 64) as u64
    }
}

/// How a failed call is retried. `RetryPolicy::default()` gives the `DEFAULT_*` constants of this
/// module; the setters change one field each; [`RetryPolicy::validate`] rejects nonsense.
///
/// A policy that was not validated still never panics: `max_attempts == 0` acts as 1 and a
/// `max_delay` below `base_delay` caps every delay at `max_delay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, counting the first try, at least 1 (default [`DEFAULT_MAX_ATTEMPTS`], 3).
    pub max_attempts: u32,
    /// Delay before the first retry (default [`DEFAULT_BASE_DELAY`], 100 ms). Zero retries at
    /// once.
    pub base_delay: Duration,
    /// Factor between consecutive delays, at least 1 (default [`DEFAULT_MULTIPLIER`], 2; 1 keeps
    /// the delay constant).
    pub multiplier: u32,
    /// Cap on the delay before jitter, at least `base_delay` (default [`DEFAULT_MAX_DELAY`],
    /// 10 s).
    pub max_delay: Duration,
    /// How the delay is randomised (default [`DEFAULT_JITTER`], `Full`).
    pub jitter: Jitter,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            base_delay: DEFAULT_BASE_DELAY,
            multiplier: DEFAULT_MULTIPLIER,
            max_delay: DEFAULT_MAX_DELAY,
            jitter: DEFAULT_JITTER,
        }
    }
}

impl RetryPolicy {
    /// Sets the number of attempts in all, counting the first try.
    #[must_use]
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// Sets the delay before the first retry.
    #[must_use]
    pub fn base_delay(mut self, delay: Duration) -> Self {
        self.base_delay = delay;
        self
    }

    /// Sets the factor between consecutive delays.
    #[must_use]
    pub fn multiplier(mut self, multiplier: u32) -> Self {
        self.multiplier = multiplier;
        self
    }

    /// Sets the cap on the delay before jitter.
    #[must_use]
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// Sets the jitter.
    #[must_use]
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// Checks every field; the first problem found is returned.
    pub fn validate(&self) -> Result<(), RetryConfigError> {
        if self.max_attempts == 0 {
            return Err(RetryConfigError::ZeroAttempts);
        }
        if self.multiplier == 0 {
            return Err(RetryConfigError::ZeroMultiplier);
        }
        if self.max_delay < self.base_delay {
            return Err(RetryConfigError::MaxDelayBelowBase { base_delay: self.base_delay, max_delay: self.max_delay });
        }
        Ok(())
    }

    /// The delay before retry `retry` (1 for the first retry, that is the second attempt), before
    /// jitter: `base_delay * multiplier^(retry - 1)`, capped at `max_delay`, saturating. Retry 0
    /// is treated as 1.
    pub fn backoff(&self, retry: u32) -> Duration {
        Duration::from_nanos(self.backoff_ns(retry))
    }

    fn backoff_ns(&self, retry: u32) -> u64 {
        let exp = retry.max(1) - 1;
        let factor = u64::from(self.multiplier).saturating_pow(exp);
        duration_ns(self.base_delay).saturating_mul(factor).min(duration_ns(self.max_delay))
    }

    /// `delay_ns` with this policy's jitter applied, drawing from `rng` (except for `None`).
    fn jittered_ns(&self, delay_ns: u64, rng: &mut JitterRng) -> u64 {
        match self.jitter {
            Jitter::None => delay_ns,
            Jitter::Full => rng.uniform_inclusive(delay_ns),
            Jitter::Equal => {
                let half = delay_ns / 2;
                (delay_ns - half) + rng.uniform_inclusive(half)
            }
        }
    }
}

/// Settings of a [`RetryBudget`]. `RetryBudgetConfig::default()` gives the `DEFAULT_*` constants
/// of this module; [`RetryBudgetConfig::validate`] (also run by [`RetryBudget::new`]) rejects
/// nonsense.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryBudgetConfig {
    /// Retries allowed per first attempt in the window, finite and at least 0 (default
    /// [`DEFAULT_BUDGET_RATIO`], 0.1).
    pub ratio: f64,
    /// Retries per second always allowed, whatever the calls (default
    /// [`DEFAULT_MIN_RETRIES_PER_SEC`], 10). Over the window that makes
    /// `min_retries_per_sec * window_seconds` retries.
    pub min_retries_per_sec: u32,
    /// Length of the sliding window (default [`DEFAULT_BUDGET_WINDOW`], 10 s).
    pub window: Duration,
    /// Time buckets in the window, `1..=MAX_WINDOW_BUCKETS` (default
    /// [`DEFAULT_BUDGET_BUCKETS`], 10).
    pub window_buckets: u32,
}

impl Default for RetryBudgetConfig {
    fn default() -> Self {
        Self {
            ratio: DEFAULT_BUDGET_RATIO,
            min_retries_per_sec: DEFAULT_MIN_RETRIES_PER_SEC,
            window: DEFAULT_BUDGET_WINDOW,
            window_buckets: DEFAULT_BUDGET_BUCKETS,
        }
    }
}

impl RetryBudgetConfig {
    /// Sets the retries allowed per first attempt.
    #[must_use]
    pub fn ratio(mut self, ratio: f64) -> Self {
        self.ratio = ratio;
        self
    }

    /// Sets the retries per second always allowed.
    #[must_use]
    pub fn min_retries_per_sec(mut self, retries: u32) -> Self {
        self.min_retries_per_sec = retries;
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

    /// Checks every field; the first problem found is returned.
    pub fn validate(&self) -> Result<(), RetryConfigError> {
        if !(self.ratio.is_finite() && self.ratio >= 0.0) {
            return Err(RetryConfigError::BudgetRatioInvalid { ratio: self.ratio });
        }
        if self.window.is_zero() {
            return Err(RetryConfigError::ZeroBudgetWindow);
        }
        if self.window_buckets == 0 || self.window_buckets > MAX_WINDOW_BUCKETS {
            return Err(RetryConfigError::BudgetBucketsOutOfRange {
                buckets: self.window_buckets,
                max: MAX_WINDOW_BUCKETS,
            });
        }
        let window_ns = duration_ns(self.window);
        if window_ns < u64::from(self.window_buckets) {
            return Err(RetryConfigError::BudgetWindowTooShort { window_ns, buckets: self.window_buckets });
        }
        Ok(())
    }
}

/// Why a [`RetryPolicy`] or [`RetryBudgetConfig`] was rejected. `Display` is one line with a
/// hint.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum RetryConfigError {
    /// `max_attempts` is zero.
    #[error("max_attempts must be at least 1 (it counts the first try); hint: 1 means no retries")]
    ZeroAttempts,
    /// `multiplier` is zero.
    #[error("multiplier must be at least 1; hint: 1 keeps the delay constant, 2 doubles it")]
    ZeroMultiplier,
    /// `max_delay` is below `base_delay`.
    #[error(
        "max_delay ({max_delay:?}) is below base_delay ({base_delay:?}); hint: raise max_delay or lower base_delay"
    )]
    MaxDelayBelowBase {
        /// The base delay.
        base_delay: Duration,
        /// The cap.
        max_delay: Duration,
    },
    /// The budget's `ratio` is negative, infinite or NaN.
    #[error(
        "budget ratio must be a finite number at least 0, got {ratio}; hint: 0.1 lets retries add 10% to the calls"
    )]
    BudgetRatioInvalid {
        /// The rejected value.
        ratio: f64,
    },
    /// The budget's `window` is zero.
    #[error("budget window must be longer than zero; hint: the default is 10 s")]
    ZeroBudgetWindow,
    /// The budget's `window_buckets` is zero or above the limit.
    #[error("budget window_buckets must be in 1..={max}, got {buckets}; hint: the default is 10")]
    BudgetBucketsOutOfRange {
        /// The rejected value.
        buckets: u32,
        /// The limit ([`MAX_WINDOW_BUCKETS`]).
        max: u32,
    },
    /// The budget's `window` is shorter than one nanosecond per bucket.
    #[error(
        "budget window of {window_ns} ns cannot hold {buckets} buckets; hint: use a longer window or fewer buckets"
    )]
    BudgetWindowTooShort {
        /// The window in nanoseconds.
        window_ns: u64,
        /// The bucket count.
        buckets: u32,
    },
}

/// A limit on retries across many calls (to one callee, or a group of them), so that retries
/// cannot multiply the load during an outage.
///
/// Token-bucket accounting over a sliding window of time buckets: each first attempt, reported
/// with [`RetryBudget::record_call`], deposits `ratio` of a retry; each granted retry
/// ([`RetryBudget::try_withdraw`], which [`Retry::after_failure`] calls) withdraws one; and
/// `min_retries_per_sec * window_seconds` retries are always there on top. Deposits and
/// withdrawals older than the window expire, so the budget refills as time passes. With the
/// defaults (ratio 0.1, floor 10/s, 10 s window): 100 retries per window, plus one per 10 calls.
#[derive(Debug, Clone)]
pub struct RetryBudget {
    config: RetryBudgetConfig,
    /// `config.ratio` in parts per billion of a retry per call.
    ratio_ppb: u64,
    /// The floor over the window, in parts per billion of a retry.
    floor_ppb: u128,
    /// First attempts (`calls`) and granted retries (`marked`) in the window.
    window: SlidingCounts,
}

impl RetryBudget {
    /// A full budget with `config`, or the first problem [`RetryBudgetConfig::validate`] finds.
    /// Allocates the window's bucket ring; nothing else allocates afterwards.
    pub fn new(config: RetryBudgetConfig) -> Result<Self, RetryConfigError> {
        config.validate()?;
        Ok(Self::build(config))
    }

    /// A budget with the default config (ratio 0.1, 10 retries/s floor, 10 s window in 10
    /// buckets).
    pub fn with_defaults() -> Self {
        Self::build(RetryBudgetConfig::default())
    }

    fn build(config: RetryBudgetConfig) -> Self {
        let window_ns = duration_ns(config.window);
        // min_retries_per_sec * (window_ns / 1e9) retries, times 1e9 ppb.
        let floor_ppb = u128::from(config.min_retries_per_sec) * u128::from(window_ns) * ONE_PPB / NS_PER_SEC;
        Self {
            ratio_ppb: fraction_ppb(config.ratio),
            floor_ppb,
            window: SlidingCounts::new(window_ns, config.window_buckets),
            config,
        }
    }

    /// Records a first attempt at `now_ns`, which deposits `ratio` of a retry. Call it once per
    /// call, before its first attempt; retries are not calls.
    pub fn record_call(&mut self, now_ns: u64) {
        self.window.add(now_ns, 1, 0);
    }

    /// Takes one retry from the budget at `now_ns` if one is left; `false` (and nothing taken)
    /// when it is spent.
    pub fn try_withdraw(&mut self, now_ns: u64) -> bool {
        if self.available(now_ns) == 0 {
            return false;
        }
        self.window.add(now_ns, 0, 1);
        true
    }

    /// Whole retries left at `now_ns`: `floor + ratio * calls - retries` over the window, rounded
    /// down, at least 0.
    pub fn available(&mut self, now_ns: u64) -> u64 {
        let (calls, retries) = self.window.totals(now_ns);
        let allowed_ppb = self.floor_ppb.saturating_add(u128::from(self.ratio_ppb).saturating_mul(u128::from(calls)));
        let spent_ppb = u128::from(retries).saturating_mul(ONE_PPB);
        let left = allowed_ppb.saturating_sub(spent_ppb) / ONE_PPB;
        u64::try_from(left).unwrap_or(u64::MAX)
    }

    /// The config the budget runs with.
    pub fn config(&self) -> &RetryBudgetConfig {
        &self.config
    }
}

/// Why a [`Retry`] gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum GiveUpReason {
    /// The last allowed attempt failed.
    #[error(
        "gave up: the last of the allowed attempts failed; hint: raise max_attempts only if the failures are transient"
    )]
    AttemptsExhausted,
    /// The next retry would start at or after the call's deadline.
    #[error("gave up: the next retry would start at or after the call's deadline; hint: give the call a later deadline or a shorter backoff")]
    DeadlineExceeded,
    /// The retry budget is spent.
    #[error("gave up: the retry budget is spent, so retries do not multiply the load on a failing callee; hint: this is expected during an outage, raise the budget's ratio only if retries usually succeed")]
    BudgetExhausted,
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetryDecision {
    /// Try again once this delay has passed (schedule it; never sleep on a shard).
    RetryAfter(Duration),
    /// Don't try again; fail the call.
    GiveUp(GiveUpReason),
}

/// One call's retry state: which attempt is running, the deadline, and whether it gave up.
///
/// It copies the policy, so it can live in an agent's state next to the call it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retry {
    policy: RetryPolicy,
    deadline_ns: Option<u64>,
    /// 1-based number of the attempt in flight.
    attempt: u32,
    gave_up: Option<GiveUpReason>,
}

impl Retry {
    /// The retry state of a call whose first attempt is about to be made. `deadline_ns` (engine
    /// clock) is the time after which the call's result no longer matters; `None` for no deadline.
    ///
    /// This does not touch any budget: call [`RetryBudget::record_call`] for the first attempt.
    pub fn new(policy: &RetryPolicy, deadline_ns: Option<u64>) -> Self {
        Self { policy: *policy, deadline_ns, attempt: 1, gave_up: None }
    }

    /// The 1-based number of the current attempt: 1 for the first try, 2 after the first
    /// `RetryAfter`, and so on.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The call's deadline (engine clock, ns), if it has one.
    pub fn deadline_ns(&self) -> Option<u64> {
        self.deadline_ns
    }

    /// Why this call gave up, once it has.
    pub fn gave_up(&self) -> Option<GiveUpReason> {
        self.gave_up
    }

    /// Decides, at `now_ns`, what follows the failure of the current attempt.
    ///
    /// Gives up with `AttemptsExhausted` when this was attempt `max_attempts`; otherwise draws
    /// the jittered delay `d` for retry `attempt` from `rng`, gives up with `DeadlineExceeded`
    /// when `now_ns + d >= deadline_ns`, and with `BudgetExhausted` when `budget` has no retry
    /// left. Otherwise takes one retry from `budget`, moves to the next attempt and returns
    /// `RetryAfter(d)`. After giving up, every later call returns the same reason and takes
    /// nothing from the budget or the generator.
    pub fn after_failure(&mut self, now_ns: u64, budget: &mut RetryBudget, rng: &mut JitterRng) -> RetryDecision {
        if let Some(reason) = self.gave_up {
            return RetryDecision::GiveUp(reason);
        }
        if self.attempt >= self.policy.max_attempts.max(1) {
            return self.give_up(GiveUpReason::AttemptsExhausted);
        }
        let delay_ns = self.policy.jittered_ns(self.policy.backoff_ns(self.attempt), rng);
        if let Some(deadline_ns) = self.deadline_ns {
            if now_ns.saturating_add(delay_ns) >= deadline_ns {
                return self.give_up(GiveUpReason::DeadlineExceeded);
            }
        }
        if !budget.try_withdraw(now_ns) {
            return self.give_up(GiveUpReason::BudgetExhausted);
        }
        self.attempt = self.attempt.saturating_add(1);
        RetryDecision::RetryAfter(Duration::from_nanos(delay_ns))
    }

    fn give_up(&mut self, reason: GiveUpReason) -> RetryDecision {
        self.gave_up = Some(reason);
        RetryDecision::GiveUp(reason)
    }
}

#[cfg(test)]
#[path = "retry_tests.rs"]
mod tests;
