//! Peer figures gathered round by round and reduced at the end, and Nexus's advantage over
//! each peer taken pair by pair (inside each round).

use super::*;

/// One peer figure, one value per round.
#[derive(Debug)]
struct Series {
    workload: &'static str,
    peer: &'static str,
    placement: Placement,
    metric: &'static str,
    unit: &'static str,
    values: Vec<f64>,
}

/// Peer figures gathered round by round, reduced to medians at the end: the peers' own values
/// and, pair by pair, how many times better Nexus was in the same round.
#[derive(Debug, Default)]
pub(super) struct Versus {
    series: Vec<Series>,
}

/// (workload, peer, placement): whose figure a value is.
pub(super) type PeerKey = (&'static str, &'static str, Placement);

// Without the `peers` feature nothing is ever noted (and `validate` refuses `--peers`).
#[cfg_attr(not(feature = "peers"), allow(dead_code))]
impl Versus {
    /// Notes one round's `value` of `metric` for `key`.
    pub(super) fn note(&mut self, key: PeerKey, metric: &'static str, unit: &'static str, value: f64) {
        let (workload, peer, placement) = key;
        match self
            .series
            .iter_mut()
            .find(|s| s.workload == workload && s.peer == peer && s.placement == placement && s.metric == metric)
        {
            Some(series) => series.values.push(value),
            None => self.series.push(Series { workload, peer, placement, metric, unit, values: vec![value] }),
        }
    }

    /// Notes how many times better Nexus was than the peer this round (> 1: Nexus better).
    pub(super) fn advantage(&mut self, key: PeerKey, nexus_better_by: f64) {
        self.note(key, "nexus_advantage", "x", nexus_better_by);
    }

    /// The medians of every series of `workload`, as records of the peers.
    pub(super) fn records(&self, workload: &'static str) -> Vec<Record> {
        self.series
            .iter()
            .filter(|s| s.workload == workload)
            .map(|s| {
                Record::new(s.workload, s.peer, s.placement.as_str(), s.metric, median(&s.values), s.unit)
                    .repeat(s.values.len() as u32)
            })
            .collect()
    }
}

/// `a / b`, or 0 when `b` is not positive.
#[cfg_attr(not(feature = "peers"), allow(dead_code))]
pub(super) fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}
