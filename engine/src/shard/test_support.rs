//! The harness the dispatcher, fault and supervision tests share: a hand-driven cluster, running
//! it until idle, and the message accounting over its shards.

use super::{Shard, ShardLimits};
use crate::metrics::Counters;

pub(crate) fn cluster(n: usize) -> Vec<Shard> {
    Shard::cluster(n, ShardLimits::default(), 64).unwrap()
}

/// Runs passes on every shard until none does any work.
pub(crate) fn settle(shards: &mut [Shard]) {
    for _ in 0..100_000 {
        let work: usize = shards.iter_mut().map(|s| s.pass()).sum();
        if work == 0 {
            return;
        }
    }
    panic!("the cluster did not settle");
}

pub(crate) fn totals(shards: &[Shard]) -> Counters {
    let mut t = Counters::default();
    for s in shards {
        t.add(&s.stats().counters);
    }
    t.sent += shards[0].host_sent();
    t
}

pub(crate) fn assert_accounted(shards: &[Shard]) {
    let t = totals(shards);
    assert_eq!(t.sent, t.delivered + t.dead_letters_total(), "{t:?}");
}
