//! Retry tests: the defaults, the backoff (doubling, cap, constant with multiplier one), jitter
//! bounds and seeding, the deadline, the retry budget (floor, exhaustion, refill, ratio under
//! load), config validation and an unvalidated policy.

use super::*;

const MS: u64 = 1_000_000;
const SEC: u64 = 1_000_000_000;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn no_jitter() -> RetryPolicy {
    RetryPolicy::default().jitter(Jitter::None)
}

/// A budget that never runs out in these tests.
fn big_budget() -> RetryBudget {
    RetryBudget::new(RetryBudgetConfig::default().min_retries_per_sec(1_000_000)).unwrap()
}

#[test]
fn defaults_are_the_documented_constants() {
    let p = RetryPolicy::default();
    assert_eq!(p.max_attempts, 3);
    assert_eq!(p.base_delay, ms(100));
    assert_eq!(p.multiplier, 2);
    assert_eq!(p.max_delay, Duration::from_secs(10));
    assert_eq!(p.jitter, Jitter::Full);
    assert_eq!(p.validate(), Ok(()));
    let b = RetryBudgetConfig::default();
    assert_eq!(b.ratio, 0.1);
    assert_eq!(b.min_retries_per_sec, 10);
    assert_eq!(b.window, Duration::from_secs(10));
    assert_eq!(b.window_buckets, 10);
    assert_eq!(b.validate(), Ok(()));
    assert_eq!(RetryBudget::with_defaults().config(), &b);
}

#[test]
fn delays_double_then_attempts_run_out() {
    let mut budget = big_budget();
    let mut rng = JitterRng::new(1);
    let mut r = Retry::new(&no_jitter(), None);
    assert_eq!(r.attempt(), 1);
    assert_eq!(r.after_failure(0, &mut budget, &mut rng), RetryDecision::RetryAfter(ms(100)));
    assert_eq!(r.attempt(), 2);
    assert_eq!(r.after_failure(100 * MS, &mut budget, &mut rng), RetryDecision::RetryAfter(ms(200)));
    assert_eq!(r.attempt(), 3);
    assert_eq!(
        r.after_failure(300 * MS, &mut budget, &mut rng),
        RetryDecision::GiveUp(GiveUpReason::AttemptsExhausted)
    );
    assert_eq!(r.attempt(), 3);
    assert_eq!(r.gave_up(), Some(GiveUpReason::AttemptsExhausted));
    // Giving up is final and takes nothing more from the budget.
    let before = budget.available(300 * MS);
    assert_eq!(
        r.after_failure(400 * MS, &mut budget, &mut rng),
        RetryDecision::GiveUp(GiveUpReason::AttemptsExhausted)
    );
    assert_eq!(budget.available(400 * MS), before);
    // One attempt only: no retry at all.
    let mut r = Retry::new(&no_jitter().max_attempts(1), None);
    assert_eq!(r.after_failure(0, &mut budget, &mut rng), RetryDecision::GiveUp(GiveUpReason::AttemptsExhausted));
}

#[test]
fn backoff_is_capped_at_max_delay_and_saturates() {
    let p = no_jitter().max_attempts(10).max_delay(Duration::from_secs(1));
    let delays: Vec<Duration> = (1..=7).map(|n| p.backoff(n)).collect();
    assert_eq!(delays, [ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000), ms(1000)]);
    assert_eq!(p.backoff(0), ms(100));
    assert_eq!(p.backoff(u32::MAX), ms(1000));
    // Through Retry as well.
    let (mut budget, mut rng) = (big_budget(), JitterRng::new(0));
    let mut r = Retry::new(&p, None);
    let got: Vec<RetryDecision> = (0..9).map(|i| r.after_failure(i * SEC, &mut budget, &mut rng)).collect();
    assert_eq!(got[4], RetryDecision::RetryAfter(ms(1000)));
    assert_eq!(got[8], RetryDecision::RetryAfter(ms(1000)));
    assert_eq!(
        r.after_failure(10 * SEC, &mut budget, &mut rng),
        RetryDecision::GiveUp(GiveUpReason::AttemptsExhausted)
    );
    // Huge values saturate instead of overflowing.
    let huge = no_jitter().base_delay(Duration::MAX).max_delay(Duration::MAX).multiplier(u32::MAX);
    assert_eq!(huge.backoff(u32::MAX), Duration::from_nanos(u64::MAX));
    let mut r = Retry::new(&huge.max_attempts(u32::MAX), None);
    assert_eq!(
        r.after_failure(u64::MAX, &mut budget, &mut rng),
        RetryDecision::RetryAfter(Duration::from_nanos(u64::MAX))
    );
}

#[test]
fn multiplier_one_keeps_the_delay_constant() {
    let p = no_jitter().multiplier(1);
    assert_eq!(p.backoff(1), ms(100));
    assert_eq!(p.backoff(50), ms(100));
}

#[test]
fn jitter_stays_within_bounds_for_many_seeds() {
    let d = 200 * MS;
    let full = RetryPolicy::default().jitter(Jitter::Full);
    let equal = RetryPolicy::default().jitter(Jitter::Equal);
    let (mut full_min, mut full_max) = (u64::MAX, 0);
    let (mut eq_min, mut eq_max) = (u64::MAX, 0);
    for seed in 0..2_000 {
        let mut rng = JitterRng::new(seed);
        let f = full.jittered_ns(d, &mut rng);
        assert!(f <= d, "seed {seed}: {f}");
        full_min = full_min.min(f);
        full_max = full_max.max(f);
        let e = equal.jittered_ns(d, &mut rng);
        assert!((d / 2..=d).contains(&e), "seed {seed}: {e}");
        eq_min = eq_min.min(e);
        eq_max = eq_max.max(e);
    }
    // The draws actually spread over the range.
    assert!(full_min < d / 20 && full_max > d - d / 20, "{full_min}..{full_max}");
    assert!(eq_min < d / 2 + d / 40 && eq_max > d - d / 40, "{eq_min}..{eq_max}");
    // Through Retry: the first delay with full jitter lies in [0, 100 ms].
    for seed in 0..200 {
        let (mut budget, mut rng) = (big_budget(), JitterRng::new(seed));
        let mut r = Retry::new(&full, None);
        match r.after_failure(0, &mut budget, &mut rng) {
            RetryDecision::RetryAfter(delay) => assert!(delay <= ms(100), "seed {seed}: {delay:?}"),
            other => panic!("seed {seed}: {other:?}"),
        }
    }
    // Edge cases: zero and odd delays, the whole u64 range.
    let mut rng = JitterRng::new(7);
    assert_eq!(full.jittered_ns(0, &mut rng), 0);
    assert_eq!(equal.jittered_ns(0, &mut rng), 0);
    assert_eq!(equal.jittered_ns(1, &mut rng), 1);
    for _ in 0..100 {
        assert!((2..=3).contains(&equal.jittered_ns(3, &mut rng)));
        assert!(rng.uniform_inclusive(1) <= 1);
        let _ = rng.uniform_inclusive(u64::MAX);
    }
}

#[test]
fn same_seed_gives_same_delays() {
    let policy = RetryPolicy::default().max_attempts(6);
    let run = |seed: u64| -> Vec<RetryDecision> {
        let (mut budget, mut rng) = (big_budget(), JitterRng::new(seed));
        let mut r = Retry::new(&policy, None);
        (0..6).map(|i| r.after_failure(i * SEC, &mut budget, &mut rng)).collect()
    };
    let a = run(42);
    assert_eq!(a, run(42));
    assert_ne!(a, run(43));
    assert_eq!(a[5], RetryDecision::GiveUp(GiveUpReason::AttemptsExhausted));
    // The generator itself is a fixed sequence (SplitMix64 from seed 0).
    let mut rng = JitterRng::new(0);
    assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF);
    assert_eq!(rng.next_u64(), 0x6E78_9E6A_A1B9_65F4);
}

#[test]
fn no_retry_is_scheduled_past_the_deadline() {
    let mut budget = RetryBudget::with_defaults();
    let mut rng = JitterRng::new(3);
    let deadline = SEC;
    let mut r = Retry::new(&no_jitter(), Some(deadline));
    assert_eq!(r.deadline_ns(), Some(deadline));
    // 800 ms + 100 ms < 1 s: retry.
    assert_eq!(r.after_failure(800 * MS, &mut budget, &mut rng), RetryDecision::RetryAfter(ms(100)));
    // 950 ms + 200 ms >= 1 s: give up, and the budget is not charged.
    let before = budget.available(950 * MS);
    assert_eq!(r.after_failure(950 * MS, &mut budget, &mut rng), RetryDecision::GiveUp(GiveUpReason::DeadlineExceeded));
    assert_eq!(budget.available(950 * MS), before);
    assert_eq!(r.attempt(), 2);
    // Landing exactly on the deadline is too late as well.
    let mut r = Retry::new(&no_jitter(), Some(SEC));
    assert_eq!(r.after_failure(900 * MS, &mut budget, &mut rng), RetryDecision::GiveUp(GiveUpReason::DeadlineExceeded));
    let mut r = Retry::new(&no_jitter(), Some(SEC));
    assert_eq!(r.after_failure(900 * MS - 1, &mut budget, &mut rng), RetryDecision::RetryAfter(ms(100)));
    // A deadline already passed.
    let mut r = Retry::new(&no_jitter(), Some(SEC));
    assert_eq!(r.after_failure(2 * SEC, &mut budget, &mut rng), RetryDecision::GiveUp(GiveUpReason::DeadlineExceeded));
    // Attempts are checked first.
    let mut r = Retry::new(&no_jitter().max_attempts(1), Some(0));
    assert_eq!(r.after_failure(0, &mut budget, &mut rng), RetryDecision::GiveUp(GiveUpReason::AttemptsExhausted));
}

#[test]
fn budget_floor_then_exhaustion_then_refill() {
    let mut budget = RetryBudget::with_defaults();
    // No calls: the floor alone, 10/s over 10 s.
    assert_eq!(budget.available(0), 100);
    for i in 0..100 {
        assert!(budget.try_withdraw(i * MS), "retry {i}");
    }
    assert!(!budget.try_withdraw(100 * MS));
    assert_eq!(budget.available(100 * MS), 0);
    // 50 first attempts deposit 5 retries.
    for _ in 0..50 {
        budget.record_call(SEC);
    }
    assert_eq!(budget.available(SEC), 5);
    for _ in 0..5 {
        assert!(budget.try_withdraw(SEC));
    }
    assert!(!budget.try_withdraw(SEC));
    // 9 calls more are not yet a whole retry (0.9); the 10th is.
    for _ in 0..9 {
        budget.record_call(SEC);
    }
    assert_eq!(budget.available(SEC), 0);
    budget.record_call(SEC);
    assert_eq!(budget.available(SEC), 1);
    assert!(budget.try_withdraw(SEC));
    // At 10 s the first bucket (100 retries at t < 1 s) leaves the window.
    assert_eq!(budget.available(10 * SEC - 1), 0);
    assert_eq!(budget.available(10 * SEC), 100);
    // At 11 s everything from t = 1 s is gone too: calls and retries alike.
    assert_eq!(budget.available(11 * SEC), 100);
    // And a Retry sees it: exhausted, then refilled.
    let mut rng = JitterRng::new(9);
    for _ in 0..100 {
        assert!(budget.try_withdraw(11 * SEC));
    }
    let mut r = Retry::new(&no_jitter(), None);
    assert_eq!(r.after_failure(11 * SEC, &mut budget, &mut rng), RetryDecision::GiveUp(GiveUpReason::BudgetExhausted));
    assert_eq!(r.attempt(), 1);
    let mut r = Retry::new(&no_jitter(), None);
    assert_eq!(r.after_failure(21 * SEC, &mut budget, &mut rng), RetryDecision::RetryAfter(ms(100)));
}

#[test]
fn budget_limits_retries_to_the_ratio_under_load() {
    // No floor: retries are at most 10% of the calls.
    let cfg = RetryBudgetConfig::default().min_retries_per_sec(0);
    let mut budget = RetryBudget::new(cfg).unwrap();
    assert_eq!(budget.available(0), 0);
    let mut granted = 0;
    for i in 0..1_000u64 {
        let now = i * MS;
        budget.record_call(now);
        // Every call fails and wants a retry.
        if budget.try_withdraw(now) {
            granted += 1;
        }
    }
    assert_eq!(granted, 100);
    // A ratio of 0 and no floor disables retries.
    let mut none = RetryBudget::new(cfg.ratio(0.0)).unwrap();
    none.record_call(0);
    assert!(!none.try_withdraw(0));
}

#[test]
fn config_validation_rejects_nonsense() {
    let p = RetryPolicy::default();
    assert_eq!(p.max_attempts(0).validate(), Err(RetryConfigError::ZeroAttempts));
    assert_eq!(p.multiplier(0).validate(), Err(RetryConfigError::ZeroMultiplier));
    assert_eq!(
        p.base_delay(ms(500)).max_delay(ms(100)).validate(),
        Err(RetryConfigError::MaxDelayBelowBase { base_delay: ms(500), max_delay: ms(100) })
    );
    assert_eq!(p.base_delay(Duration::ZERO).validate(), Ok(()));
    let b = RetryBudgetConfig::default();
    for ratio in [-0.1, f64::NAN, f64::INFINITY] {
        assert!(matches!(RetryBudget::new(b.ratio(ratio)), Err(RetryConfigError::BudgetRatioInvalid { .. })));
    }
    assert_eq!(b.window(Duration::ZERO).validate(), Err(RetryConfigError::ZeroBudgetWindow));
    assert_eq!(
        b.window_buckets(0).validate(),
        Err(RetryConfigError::BudgetBucketsOutOfRange { buckets: 0, max: MAX_WINDOW_BUCKETS })
    );
    assert_eq!(
        b.window_buckets(MAX_WINDOW_BUCKETS + 1).validate(),
        Err(RetryConfigError::BudgetBucketsOutOfRange { buckets: MAX_WINDOW_BUCKETS + 1, max: MAX_WINDOW_BUCKETS })
    );
    assert_eq!(
        b.window(Duration::from_nanos(3)).validate(),
        Err(RetryConfigError::BudgetWindowTooShort { window_ns: 3, buckets: 10 })
    );
    let msg = RetryConfigError::ZeroAttempts.to_string();
    assert!(msg.contains("max_attempts") && msg.contains("hint:"), "{msg}");
    let msg = GiveUpReason::BudgetExhausted.to_string();
    assert!(msg.contains("budget") && msg.contains("hint:"), "{msg}");
}

#[test]
fn an_unvalidated_policy_does_not_panic() {
    let (mut budget, mut rng) = (big_budget(), JitterRng::new(5));
    let p = RetryPolicy { max_attempts: 0, multiplier: 0, ..no_jitter() };
    let mut r = Retry::new(&p, None);
    assert_eq!(r.after_failure(0, &mut budget, &mut rng), RetryDecision::GiveUp(GiveUpReason::AttemptsExhausted));
    let p = RetryPolicy { max_attempts: 4, multiplier: 0, base_delay: ms(300), max_delay: ms(100), ..no_jitter() };
    assert_eq!(p.backoff(1), ms(100));
    assert_eq!(p.backoff(2), Duration::ZERO);
}
