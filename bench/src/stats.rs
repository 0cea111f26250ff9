//! Small statistics shared by the workloads: latency histograms in nanoseconds, their
//! percentiles, and the median of repeated runs.
//!
//! Histograms cover 1 ns to 60 s with 3 significant digits, so a 150 ns round trip is
//! recorded to within 0.1 ns and nothing a bench can produce is clamped.

use hdrhistogram::Histogram;
use std::time::Duration;

/// Largest latency a histogram tracks, in nanoseconds (60 s); larger samples saturate.
pub(crate) const HISTOGRAM_MAX_NS: u64 = 60_000_000_000;

/// A latency histogram in nanoseconds (1 ns .. 60 s, 3 significant digits).
pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HISTOGRAM_MAX_NS, 3).expect("static histogram bounds are valid")
}

/// Records `d` in `h`, in nanoseconds, saturating at the histogram's range.
#[inline]
pub(crate) fn record(h: &mut Histogram<u64>, d: Duration) {
    let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).clamp(1, HISTOGRAM_MAX_NS);
    h.saturating_record(ns);
}

/// Latency percentiles in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Percentiles {
    /// Number of samples.
    pub samples: u64,
    /// Median.
    pub p50_ns: f64,
    /// 99th percentile.
    pub p99_ns: f64,
    /// 99.9th percentile.
    pub p999_ns: f64,
    /// Largest sample.
    pub max_ns: f64,
    /// Mean.
    pub mean_ns: f64,
}

impl Percentiles {
    /// The percentiles of `h` (all zero when it is empty).
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        Self {
            samples: h.len(),
            p50_ns: h.value_at_quantile(0.50) as f64,
            p99_ns: h.value_at_quantile(0.99) as f64,
            p999_ns: h.value_at_quantile(0.999) as f64,
            max_ns: h.max() as f64,
            mean_ns: h.mean(),
        }
    }
}

/// The median of `values` (the mean of the two middle ones for an even count); 0 when empty.
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

/// The median of repeated rounds with the smallest and the largest of them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    /// The median ([`median`]).
    pub median: f64,
    /// The smallest round.
    pub min: f64,
    /// The largest round.
    pub max: f64,
    /// How many rounds.
    pub rounds: u32,
}

impl Spread {
    /// The spread of `rounds`, or `None` when there are none.
    pub fn of(rounds: &[f64]) -> Option<Self> {
        let first = *rounds.first()?;
        let (min, max) = rounds.iter().fold((first, first), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        let count = u32::try_from(rounds.len()).unwrap_or(u32::MAX);
        Some(Self { median: median(rounds), min, max, rounds: count })
    }
}

/// `count` events over `elapsed`, per second (0 when nothing elapsed).
pub(crate) fn per_second(count: u64, elapsed: Duration) -> f64 {
    let s = elapsed.as_secs_f64();
    if s > 0.0 {
        count as f64 / s
    } else {
        0.0
    }
}

/// `elapsed` divided by `count`, in nanoseconds (0 when `count` is 0).
pub(crate) fn ns_per(elapsed: Duration, count: u64) -> f64 {
    if count == 0 {
        0.0
    } else {
        elapsed.as_nanos() as f64 / count as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_percentiles() {
        assert_eq!(median(&[]), 0.0);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(Spread::of(&[]), None);
        assert_eq!(Spread::of(&[4.0, 1.0, 2.0, 3.0]), Some(Spread { median: 2.5, min: 1.0, max: 4.0, rounds: 4 }));
        let mut h = histogram();
        for ns in 1..=1000 {
            record(&mut h, Duration::from_nanos(ns));
        }
        let p = Percentiles::of(&h);
        assert_eq!(p.samples, 1000);
        assert!((499.0..=501.0).contains(&p.p50_ns), "{p:?}");
        assert_eq!(per_second(10, Duration::from_millis(100)), 100.0);
        assert_eq!(ns_per(Duration::from_micros(1), 10), 100.0);
    }
}
