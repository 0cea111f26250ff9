//! Round length: every repeated run of the suite, Nexus's and each peer's, lasts at least the
//! plan's `min_round` (0.5 s at full size) of measured time.
//!
//! A run's size is its workload's count (messages, hops, round trips, meetings, pings, spawns)
//! times a factor; fib, whose size does not scale linearly, repeats the computation `factor`
//! times instead. The first run of each (workload, system, placement) starts at factor 1; while
//! a run's measured span is shorter than `min_round`, the factor grows to aim at
//! `AIM` × `min_round` and the run is done again (the short one only warmed up). The factor
//! found is kept for the later rounds, so each system calibrates once; a later round that still
//! comes out short grows it again. Only the measured span counts (the systems' own timing, which
//! never includes setup), so rates stay total / elapsed of one long run.

use crate::setup::Placement;
use crate::BenchError;
use std::time::Duration;

/// The shortest measured span of a repeated run at full size.
pub const MIN_ROUND: Duration = Duration::from_millis(500);

/// A calibrated run aims at this multiple of `min_round`, so noise rarely makes it short.
const AIM: f64 = 1.3;
/// The largest factor (a run at factor 1 of at least ~1 µs then reaches 0.5 s).
const MAX_FACTOR: u64 = 1 << 20;
/// Runs tried per call before the last one is taken even if short (a run that slows down as
/// it grows).
const MAX_TRIES: u32 = 8;

/// Whose run a factor belongs to: (workload, system, placement).
pub(super) type SizeKey = (&'static str, &'static str, Placement);

/// The factors found so far, per [`SizeKey`].
#[derive(Debug)]
pub(super) struct Sizer {
    min: Duration,
    factors: Vec<(SizeKey, u64)>,
}

impl Sizer {
    /// A sizer for runs of at least `min` (`Duration::ZERO`: every run at factor 1).
    pub(super) fn new(min: Duration) -> Self {
        Self { min, factors: Vec::new() }
    }

    /// The factor `key` runs at now.
    pub(super) fn factor(&self, key: SizeKey) -> u64 {
        self.factors.iter().find(|(k, _)| *k == key).map_or(1, |(_, f)| *f)
    }

    /// Runs `run(factor)` until its measured span (the `Duration` it returns) lasts at least
    /// the minimum, growing the factor between tries (see the module doc), and returns that
    /// run's output. A run that measured nothing (`None`: a skipped peer; or a span of 0, a
    /// run with no work to time) is returned at once.
    pub(super) fn sized<T>(
        &mut self,
        key: SizeKey,
        mut run: impl FnMut(u64) -> Result<(T, Option<Duration>), BenchError>,
    ) -> Result<T, BenchError> {
        let mut factor = self.factor(key);
        let mut tries = 0;
        loop {
            let (out, span) = run(factor)?;
            tries += 1;
            let Some(span) = span else { return Ok(out) };
            let next = grow(factor, span, self.min);
            if span >= self.min || next == factor || tries >= MAX_TRIES {
                self.remember(key, factor);
                return Ok(out);
            }
            factor = next;
        }
    }

    fn remember(&mut self, key: SizeKey, factor: u64) {
        match self.factors.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = factor,
            None => self.factors.push((key, factor)),
        }
    }
}

/// The factor after a run at `factor` measured `span`: aimed at [`AIM`] × `min`, at least
/// doubled when short, at most [`MAX_FACTOR`]; unchanged when long enough or when nothing was
/// timed (a span of 0 says nothing about how long a larger run would take).
fn grow(factor: u64, span: Duration, min: Duration) -> u64 {
    if span >= min || span.is_zero() {
        return factor;
    }
    let wanted = (min.as_secs_f64() * AIM / span.as_secs_f64()).ceil();
    let times = wanted.clamp(2.0, 1024.0) as u64;
    factor.saturating_mul(times).min(MAX_FACTOR)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: SizeKey = ("counting", "nexus", Placement::Local);

    #[test]
    fn a_short_run_grows_until_it_lasts_the_minimum_and_the_factor_is_kept() {
        let mut sizer = Sizer::new(Duration::from_millis(500));
        let mut tried = Vec::new();
        // 1 ms per unit of factor: factor 1 is short; the aim is 1.3 × 500 ms.
        let out = sizer
            .sized(KEY, |f| {
                tried.push(f);
                Ok((f, Some(Duration::from_millis(f))))
            })
            .unwrap();
        assert_eq!(tried, [1, 650]);
        assert_eq!(out, 650);
        assert_eq!(sizer.factor(KEY), 650);
        // The next round starts where the last ended and runs once.
        tried.clear();
        sizer.sized(KEY, |f| Ok((tried.push(f), Some(Duration::from_millis(f))))).unwrap();
        assert_eq!(tried, [650]);
        assert_eq!(sizer.factor(("counting", "tokio", Placement::Local)), 1, "each system has its own");
    }

    #[test]
    fn skipped_runs_and_zero_minimums_run_once() {
        let mut sizer = Sizer::new(Duration::from_millis(500));
        let mut runs = 0;
        sizer.sized(KEY, |_| Ok((runs += 1, None))).unwrap();
        assert_eq!(runs, 1);
        let mut sizer = Sizer::new(Duration::ZERO);
        sizer.sized(KEY, |_| Ok((runs += 1, Some(Duration::ZERO)))).unwrap();
        assert_eq!(runs, 2);
    }

    #[test]
    fn growth_is_bounded() {
        let min = Duration::from_millis(500);
        assert_eq!(grow(3, Duration::from_millis(600), min), 3);
        assert_eq!(grow(1, Duration::from_millis(400), min), 2, "at least doubled");
        assert_eq!(grow(1, Duration::ZERO, min), 1, "nothing timed, nothing to scale by");
        assert_eq!(grow(1, Duration::from_nanos(1), min), 1024, "at most 1024 times per try");
        assert_eq!(grow(MAX_FACTOR / 2, Duration::from_nanos(1), min), MAX_FACTOR);
        let mut sizer = Sizer::new(min);
        let mut runs = 0;
        // A run that never gets longer: tried MAX_TRIES times (or until the factor caps), not forever.
        sizer.sized(KEY, |_| Ok((runs += 1, Some(Duration::from_millis(1))))).unwrap();
        assert_eq!(runs, 4, "factors 1, 650, 422,500, then MAX_FACTOR, where it stops");
    }
}
