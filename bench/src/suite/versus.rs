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
                Record::new(s.workload, s.peer, s.placement.as_str(), s.metric, 0.0, s.unit).over_rounds(&s.values)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advantages_are_taken_pair_by_pair_and_reported_with_their_spread() {
        let key = ("counting", "tokio", Placement::Local);
        let mut versus = Versus::default();
        // Nexus and the peer both slow down in round 2: the pair's ratio stays 2.
        for (nexus, peer) in [(10.0, 5.0), (4.0, 2.0), (12.0, 4.0)] {
            versus.note(key, "msgs_per_s", "msg/s", peer);
            versus.advantage(key, ratio(nexus, peer));
        }
        let records = versus.records("counting");
        let advantage = records.iter().find(|r| r.metric == "nexus_advantage").unwrap();
        assert_eq!((advantage.value, advantage.min, advantage.max), (2.0, Some(2.0), Some(3.0)));
        assert_eq!(advantage.repeat, Some(3));
        let rate = records.iter().find(|r| r.metric == "msgs_per_s").unwrap();
        assert_eq!((rate.value, rate.min, rate.max), (4.0, Some(2.0), Some(5.0)));
        assert!(versus.records("thread-ring").is_empty());
        assert_eq!(ratio(1.0, 0.0), 0.0);
    }
}
