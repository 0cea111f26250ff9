//! The mesh: one SPSC lap ring (`lap_ring`) for every ordered pair of shards.
//!
//! With `n` shards there are `n * (n - 1)` rings. Shard `i` holds the producer of ring `i -> j`
//! and the consumer of ring `j -> i` for every `j != i`; each endpoint is owned by exactly one
//! shard thread, so every ring has exactly one writer and one reader, and crossing shards needs
//! no lock and no shared mutable state.

use crate::envelope::Envelope;
use crate::lap_ring::{lap_ring, Consumer, Producer, RingError};

/// The ring endpoints one shard owns: `outbound[j]` sends to shard `j`, `inbound[j]` receives
/// from shard `j` (both `None` for `j == i`).
pub struct ShardLinks {
    /// Producers, indexed by destination shard.
    pub(crate) outbound: Vec<Option<Producer<Envelope>>>,
    /// Consumers, indexed by source shard.
    pub(crate) inbound: Vec<Option<Consumer<Envelope>>>,
}

/// Builds the full mesh for `shards` shards with rings of `capacity` envelopes.
pub fn build(shards: usize, capacity: usize) -> Result<Vec<ShardLinks>, RingError> {
    let mut links: Vec<ShardLinks> = (0..shards)
        .map(|_| ShardLinks {
            outbound: (0..shards).map(|_| None).collect(),
            inbound: (0..shards).map(|_| None).collect(),
        })
        .collect();
    for from in 0..shards {
        for to in 0..shards {
            if from != to {
                let (p, c) = lap_ring(capacity)?;
                links[from].outbound[to] = Some(p);
                links[to].inbound[from] = Some(c);
            }
        }
    }
    Ok(links)
}

#[cfg(all(test, loom))]
mod loom_tests {
    use crate::lap_ring::lap_ring;
    use crate::loom::{thread, Arc};
    use crate::shard::doorbell::Doorbell;

    /// The protocol between two shards, on the real lap ring and doorbell: the sender stages a
    /// batch, publishes it (its slots' marks) and rings; the receiver drains, announces sleep,
    /// re-checks its ring and parks. Loom explores every interleaving: a lost wake-up would
    /// leave the receiver parked forever (a deadlock loom reports), and a lost or reordered
    /// envelope fails the assertions.
    #[test]
    fn loom_publish_then_ring_never_strands_a_batch() {
        // Bounded preemptions (as tokio's loom suite does) keep the search to seconds; the
        // lost-wake-up window needs only one or two preemptions to show.
        let mut model = loom::model::Builder::new();
        model.preemption_bound = Some(3);
        model.check(|| {
            let (mut tx, mut rx) = lap_ring::<Box<u32>>(2).unwrap();
            let bell = Arc::new(Doorbell::new());
            bell.bind_current_thread();
            let peer_bell = bell.clone();
            let sender = thread::spawn(move || {
                for batch in [[1, 2], [3, 4]] {
                    for v in batch {
                        let mut item = Box::new(v);
                        while let Err(e) = tx.stage(item) {
                            item = e.into_inner();
                            tx.publish();
                            peer_bell.ring();
                            thread::yield_now();
                        }
                    }
                    tx.publish();
                    peer_bell.ring();
                }
            });
            let mut seen = Vec::new();
            while seen.len() < 4 {
                if rx.pop_batch(2, |v| seen.push(*v)) > 0 {
                    continue;
                }
                // The shard's own park protocol (`Shard::announce_sleep` and the runner call
                // these two), with the ring's emptiness as the inputs to re-check.
                if !bell.announce_and_recheck(|| !rx.is_empty()) {
                    continue;
                }
                bell.park_until_rung(None);
            }
            assert_eq!(seen, [1, 2, 3, 4]);
            sender.join().unwrap();
        });
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn every_ordered_pair_has_one_ring() {
        let links = build(3, 8).unwrap();
        for (i, l) in links.iter().enumerate() {
            assert_eq!(l.outbound.iter().filter(|p| p.is_some()).count(), 2);
            assert!(l.outbound[i].is_none() && l.inbound[i].is_none());
        }
        assert!(build(2, 3).is_err(), "capacity must be a power of two");
    }
}
