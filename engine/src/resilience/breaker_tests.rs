//! Circuit breaker tests: the defaults, the closed, open and half-open transitions (minimum
//! calls, threshold, retry-after, probe limit, reopening, closing), the rolling window's expiry,
//! late outcomes, stats, config validation and saturating times.

use super::*;

const MS: u64 = 1_000_000;
const SEC: u64 = 1_000_000_000;

/// Makes `n` calls at `now_ns`, all with the same outcome.
fn calls(b: &mut CircuitBreaker, now_ns: u64, n: u32, fail: bool) {
    for _ in 0..n {
        let p = b.try_call(now_ns).expect("breaker should admit the call");
        if fail {
            b.on_failure(p, now_ns);
        } else {
            b.on_success(p, now_ns);
        }
    }
}

/// A default breaker opened at `t0` by 20 failures.
fn opened_at(t0: u64) -> CircuitBreaker {
    let mut b = CircuitBreaker::with_defaults();
    calls(&mut b, t0, 20, true);
    assert_eq!(b.state(t0), BreakerState::Open);
    b
}

#[test]
fn defaults_are_the_documented_constants() {
    let c = BreakerConfig::default();
    assert_eq!(c.failure_rate_threshold, 0.05);
    assert_eq!(c.window, Duration::from_secs(10));
    assert_eq!(c.window_buckets, 10);
    assert_eq!(c.min_calls, 20);
    assert_eq!(c.open_for, Duration::from_secs(30));
    assert_eq!(c.half_open_probes, 3);
    assert_eq!(c.healthy_to_close, Duration::from_secs(60));
    assert_eq!(c.validate(), Ok(()));
    let b = CircuitBreaker::with_defaults();
    assert_eq!(b.config(), &c);
    assert_eq!(b.window.width_ns(), SEC);
    assert_eq!(b.threshold_ppb, 50_000_000);
}

#[test]
fn stays_closed_below_min_calls_even_at_full_failure() {
    let mut b = CircuitBreaker::with_defaults();
    calls(&mut b, 0, 19, true);
    assert_eq!(b.state(0), BreakerState::Closed);
    assert_eq!(b.window(0), WindowCounts { calls: 19, failures: 19 });
    // One failure out of two calls does not open it either.
    let mut b = CircuitBreaker::with_defaults();
    calls(&mut b, 0, 1, false);
    calls(&mut b, 0, 1, true);
    assert_eq!(b.state(0), BreakerState::Closed);
    // The 20th failure does.
    let mut b = CircuitBreaker::with_defaults();
    calls(&mut b, 0, 20, true);
    assert_eq!(b.state(0), BreakerState::Open);
}

#[test]
fn opens_at_exactly_the_threshold() {
    // 1 failure in 20 calls is exactly 5%: open.
    let mut b = CircuitBreaker::with_defaults();
    calls(&mut b, 0, 19, false);
    calls(&mut b, 0, 1, true);
    assert_eq!(b.state(0), BreakerState::Open);
    assert_eq!(b.stats().times_opened, 1);

    // 1 failure in 21 calls is below 5%: closed.
    let mut b = CircuitBreaker::with_defaults();
    calls(&mut b, 0, 20, false);
    calls(&mut b, 0, 1, true);
    assert_eq!(b.state(0), BreakerState::Closed);
    // A second failure makes 2 in 22 (9%): open.
    calls(&mut b, 0, 1, true);
    assert_eq!(b.state(0), BreakerState::Open);

    // The rate is judged on successes too: 1 early failure, then the 20th call (a success)
    // reaches min_calls with exactly 5%.
    let mut b = CircuitBreaker::with_defaults();
    calls(&mut b, 0, 1, true);
    calls(&mut b, 0, 18, false);
    assert_eq!(b.state(0), BreakerState::Closed);
    calls(&mut b, 0, 1, false);
    assert_eq!(b.state(0), BreakerState::Open);

    // A threshold of 1.0 needs every call to fail.
    let cfg = BreakerConfig::default().failure_rate_threshold(1.0).min_calls(4);
    let mut b = CircuitBreaker::new(cfg).unwrap();
    calls(&mut b, 0, 1, false);
    calls(&mut b, 0, 10, true);
    assert_eq!(b.state(0), BreakerState::Closed);
    let mut b = CircuitBreaker::new(cfg).unwrap();
    calls(&mut b, 0, 4, true);
    assert_eq!(b.state(0), BreakerState::Open);
}

#[test]
fn rejects_while_open_with_retry_after() {
    let t0 = 5 * SEC;
    let mut b = opened_at(t0);
    let open_until = t0 + 30 * SEC;
    for now in [t0, t0 + 1, t0 + 10 * SEC, open_until - 1] {
        let err = b.try_call(now).unwrap_err();
        assert_eq!(err, BreakerOpen { state: BreakerState::Open, retry_after_ns: open_until });
    }
    assert_eq!(b.stats().rejected, 4);
    let msg = b.try_call(t0).unwrap_err().to_string();
    assert!(msg.contains("open") && msg.contains(&open_until.to_string()) && msg.contains("hint:"), "{msg}");
}

#[test]
fn moves_to_half_open_after_open_for() {
    let mut b = opened_at(0);
    assert_eq!(b.state(30 * SEC - 1), BreakerState::Open);
    assert_eq!(b.state(30 * SEC), BreakerState::HalfOpen);
    let p = b.try_call(30 * SEC).unwrap();
    assert!(p.is_probe());
    assert_eq!(p.issued_in(), BreakerState::HalfOpen);
    b.release(p);

    // try_call itself makes the move too.
    let mut b = opened_at(0);
    let p = b.try_call(31 * SEC).unwrap();
    assert!(p.is_probe());
    assert_eq!(b.state(31 * SEC), BreakerState::HalfOpen);
    b.on_success(p, 31 * SEC);
}

#[test]
fn limits_probes_in_flight() {
    let mut b = opened_at(0);
    let now = 30 * SEC;
    let p1 = b.try_call(now).unwrap();
    let p2 = b.try_call(now).unwrap();
    let p3 = b.try_call(now).unwrap();
    assert_eq!(b.probes_in_flight(), 3);
    let err = b.try_call(now).unwrap_err();
    assert_eq!(err, BreakerOpen { state: BreakerState::HalfOpen, retry_after_ns: now });
    assert!(err.to_string().contains("half-open"));
    // A reported probe frees its slot.
    b.on_success(p1, now + MS);
    assert_eq!(b.probes_in_flight(), 2);
    let p4 = b.try_call(now + MS).unwrap();
    assert!(b.try_call(now + MS).is_err());
    // So does a released one.
    b.release(p2);
    let p5 = b.try_call(now + 2 * MS).unwrap();
    assert_eq!(b.probes_in_flight(), 3);
    for p in [p3, p4, p5] {
        b.on_success(p, now + 3 * MS);
    }
    assert_eq!(b.probes_in_flight(), 0);
    assert_eq!(b.state(now + 3 * MS), BreakerState::HalfOpen);
    assert_eq!(b.stats().probes, 5);
    assert_eq!(b.stats().rejected, 2);
}

#[test]
fn probe_failure_reopens_for_a_full_period() {
    let mut b = opened_at(0);
    let p1 = b.try_call(30 * SEC).unwrap();
    let p2 = b.try_call(30 * SEC).unwrap();
    b.on_success(p1, 31 * SEC);
    b.on_failure(p2, 40 * SEC);
    assert_eq!(b.state(40 * SEC), BreakerState::Open);
    assert_eq!(b.probes_in_flight(), 0);
    assert_eq!(b.stats().times_opened, 2);
    let err = b.try_call(69 * SEC).unwrap_err();
    assert_eq!(err.retry_after_ns, 70 * SEC);
    assert_eq!(b.state(70 * SEC - 1), BreakerState::Open);
    assert_eq!(b.state(70 * SEC), BreakerState::HalfOpen);
}

#[test]
fn closes_only_after_healthy_to_close_with_a_success() {
    // Half-open at 30 s; 60 s later without any success it is still half-open.
    let mut b = opened_at(0);
    assert_eq!(b.state(30 * SEC), BreakerState::HalfOpen);
    assert_eq!(b.state(100 * SEC), BreakerState::HalfOpen);

    // A success, then the clock passes 30 s + 60 s: closed, not before.
    let mut b = opened_at(0);
    let p = b.try_call(30 * SEC).unwrap();
    b.on_success(p, 31 * SEC);
    assert_eq!(b.state(90 * SEC - 1), BreakerState::HalfOpen);
    let p = b.try_call(90 * SEC - 1).unwrap();
    assert!(p.is_probe());
    b.release(p);
    assert_eq!(b.state(90 * SEC), BreakerState::Closed);
    assert_eq!(b.stats().times_closed, 1);
    let p = b.try_call(90 * SEC).unwrap();
    assert!(!p.is_probe());
    b.on_success(p, 90 * SEC);

    // The first success arriving after 60 s of health closes it at once.
    let mut b = opened_at(0);
    let p = b.try_call(30 * SEC).unwrap();
    b.on_success(p, 95 * SEC);
    assert_eq!(b.state(95 * SEC), BreakerState::Closed);

    // Closing clears the window: the failures that opened it are gone.
    assert_eq!(b.window(95 * SEC), WindowCounts::default());
    calls(&mut b, 95 * SEC, 19, true);
    assert_eq!(b.state(95 * SEC), BreakerState::Closed);
}

#[test]
fn window_buckets_expire_old_failures() {
    let mut b = CircuitBreaker::with_defaults();
    // 10 failures in the first second.
    calls(&mut b, 0, 10, true);
    assert_eq!(b.window(9 * SEC), WindowCounts { calls: 10, failures: 10 });
    // At 10 s the first bucket has left the 10-bucket window.
    assert_eq!(b.window(10 * SEC), WindowCounts::default());
    // 10 more failures now do not reach min_calls together with the expired ones.
    calls(&mut b, 10 * SEC, 10, true);
    assert_eq!(b.state(10 * SEC), BreakerState::Closed);
    assert_eq!(b.window(10 * SEC), WindowCounts { calls: 10, failures: 10 });
    // Within the window they still add up: 10 more at 15 s opens it.
    calls(&mut b, 15 * SEC, 9, true);
    assert_eq!(b.state(15 * SEC), BreakerState::Closed);
    calls(&mut b, 15 * SEC, 1, true);
    assert_eq!(b.state(15 * SEC), BreakerState::Open);
}

#[test]
fn old_failures_stop_counting_against_new_successes() {
    let mut b = CircuitBreaker::with_defaults();
    // 1 failure in 19 calls at t = 0 (not judged yet: below min_calls).
    calls(&mut b, 0, 1, true);
    calls(&mut b, 0, 18, false);
    // 11 s later the failure has expired: 40 successes and 1 failure are 2.4%.
    calls(&mut b, 11 * SEC, 40, false);
    calls(&mut b, 11 * SEC, 1, true);
    assert_eq!(b.window(11 * SEC), WindowCounts { calls: 41, failures: 1 });
    assert_eq!(b.state(11 * SEC), BreakerState::Closed);
}

#[test]
fn late_outcomes_from_before_a_transition_change_nothing() {
    let mut b = CircuitBreaker::with_defaults();
    // Two calls start while closed, then the breaker opens.
    let slow_ok = b.try_call(0).unwrap();
    let slow_err = b.try_call(0).unwrap();
    calls(&mut b, 0, 20, true);
    assert_eq!(b.state(0), BreakerState::Open);
    // A late success from before opening does not close it or free anything.
    b.on_success(slow_ok, SEC);
    assert_eq!(b.state(SEC), BreakerState::Open);
    assert_eq!(b.try_call(SEC).unwrap_err().retry_after_ns, 30 * SEC);

    // Half-open: a late closed-era failure does not reopen it, nor take a probe slot.
    let p1 = b.try_call(30 * SEC).unwrap();
    b.on_failure(slow_err, 30 * SEC);
    assert_eq!(b.state(30 * SEC), BreakerState::HalfOpen);
    assert_eq!(b.probes_in_flight(), 1);

    // A probe from an earlier half-open period, reported in a later one, frees nothing.
    let p2 = b.try_call(30 * SEC).unwrap();
    b.on_failure(p1, 31 * SEC); // reopens until 61 s
    assert_eq!(b.state(61 * SEC), BreakerState::HalfOpen);
    let p3 = b.try_call(61 * SEC).unwrap();
    b.on_success(p2, 62 * SEC); // stale: from the first half-open period
    assert_eq!(b.probes_in_flight(), 1);
    assert_eq!(b.state(200 * SEC), BreakerState::HalfOpen, "a stale success does not count toward closing");
    b.on_success(p3, 200 * SEC);
    assert_eq!(b.state(200 * SEC), BreakerState::Closed);

    // Three stale outcomes were counted, and the window of the new closed period is empty.
    assert_eq!(b.stats().stale_outcomes, 3);
    assert_eq!(b.window(200 * SEC), WindowCounts::default());
}

#[test]
fn stats_count_calls_outcomes_rejections_and_openings() {
    let mut b = CircuitBreaker::with_defaults();
    calls(&mut b, 0, 19, false);
    calls(&mut b, 0, 1, true); // opens
    assert!(b.try_call(SEC).is_err());
    assert!(b.try_call(2 * SEC).is_err());
    let p = b.try_call(30 * SEC).unwrap();
    b.on_failure(p, 30 * SEC); // reopens
    let p = b.try_call(60 * SEC).unwrap();
    b.release(p);
    let p = b.try_call(60 * SEC).unwrap();
    b.on_success(p, 60 * SEC);
    assert_eq!(b.state(120 * SEC), BreakerState::Closed);
    assert_eq!(
        b.stats(),
        BreakerStats {
            calls: 23,
            probes: 3,
            successes: 20,
            failures: 2,
            rejected: 2,
            stale_outcomes: 0,
            released: 1,
            times_opened: 2,
            times_closed: 1,
        }
    );
}

#[test]
fn config_validation_rejects_nonsense() {
    let d = BreakerConfig::default();
    for t in [0.0, -0.1, 1.01, f64::NAN, f64::INFINITY] {
        let err = CircuitBreaker::new(d.failure_rate_threshold(t)).unwrap_err();
        assert!(matches!(err, BreakerConfigError::ThresholdOutOfRange { .. }), "{t}: {err}");
    }
    assert!(CircuitBreaker::new(d.failure_rate_threshold(1.0)).is_ok());
    assert_eq!(d.window(Duration::ZERO).validate(), Err(BreakerConfigError::ZeroWindow));
    assert_eq!(d.window_buckets(0).validate(), Err(BreakerConfigError::ZeroBuckets));
    assert_eq!(
        d.window_buckets(MAX_WINDOW_BUCKETS + 1).validate(),
        Err(BreakerConfigError::TooManyBuckets { buckets: MAX_WINDOW_BUCKETS + 1, max: MAX_WINDOW_BUCKETS })
    );
    assert_eq!(
        d.window(Duration::from_nanos(5)).validate(),
        Err(BreakerConfigError::WindowTooShort { window_ns: 5, buckets: 10 })
    );
    assert_eq!(d.min_calls(0).validate(), Err(BreakerConfigError::ZeroMinCalls));
    assert_eq!(d.open_for(Duration::ZERO).validate(), Err(BreakerConfigError::ZeroOpenFor));
    assert_eq!(d.half_open_probes(0).validate(), Err(BreakerConfigError::ZeroProbes));
    assert_eq!(d.healthy_to_close(Duration::ZERO).validate(), Ok(()));
    let msg = BreakerConfigError::ZeroProbes.to_string();
    assert!(msg.contains("half_open_probes") && msg.contains("hint:"), "{msg}");
}

#[test]
fn huge_times_saturate() {
    let cfg = BreakerConfig::default().open_for(Duration::MAX).min_calls(1);
    let mut b = CircuitBreaker::new(cfg).unwrap();
    calls(&mut b, u64::MAX - 1, 1, true);
    assert_eq!(b.try_call(u64::MAX - 1).unwrap_err().retry_after_ns, u64::MAX);
    assert_eq!(b.state(u64::MAX), BreakerState::HalfOpen);
}
