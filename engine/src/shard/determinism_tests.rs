//! Hand-driven shards are deterministic: on a manual clock, with the order of passes drawn
//! from a seed, the same seed gives the same trace of dispatches (shard, agent, message type,
//! virtual time) and the same counts, and other seeds give other interleavings. This is the
//! property a simulator's replay rests on.

use super::test_support::assert_accounted;
use super::{Clock, Dispatch, ManualClock, Shard, ShardLimits};
use crate::agent::{Addr, Agent, Ctx};
use crate::metrics::Counters;
use std::cell::RefCell;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::rc::Rc;
use std::time::Duration;

const SHARDS: usize = 3;
const RELAYS: usize = 12;

/// Passes a hop on to a relay picked from the hop's number, delays every fifth hop with a
/// timer, and dies on one hop number in 331.
struct Relay {
    peers: Vec<Addr<RelayMsg>>,
}

enum RelayMsg {
    Peers(Vec<Addr<RelayMsg>>),
    Hop { n: u64, ttl: u32 },
}

impl Agent for Relay {
    type Msg = RelayMsg;
    fn handle(&mut self, msg: RelayMsg, ctx: &mut Ctx<'_>) {
        let (n, ttl) = match msg {
            RelayMsg::Peers(peers) => return self.peers = peers,
            RelayMsg::Hop { n, ttl } => (n, ttl),
        };
        if n % 331 == 330 {
            panic!("relay fault (expected in the determinism test)");
        }
        if ttl == 0 || self.peers.is_empty() {
            return;
        }
        let next = self.peers[(n.wrapping_mul(0x9E37_79B9) >> 7) as usize % self.peers.len()];
        let onward = RelayMsg::Hop { n: n.wrapping_mul(31).wrapping_add(7), ttl: ttl - 1 };
        if n % 5 == 0 {
            ctx.send_after(next, onward, Duration::from_micros(n % 1000));
        } else {
            let _ = ctx.send(next, onward);
        }
    }
}

/// xorshift64*: the seeded choice of which shard runs its next pass.
struct Schedule(u64);

impl Schedule {
    fn next(&mut self) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % SHARDS
    }
}

/// Runs the relay scenario with passes scheduled from `seed`; returns the trace's hash, the
/// dispatches it saw, and the summed counters.
fn run(seed: u64) -> (u64, usize, Counters) {
    let clock = ManualClock::new();
    let mut shards = Shard::cluster_with_clock(SHARDS, ShardLimits::default(), 16, Clock::manual(&clock)).unwrap();
    let trace = Rc::new(RefCell::new((DefaultHasher::new(), 0usize)));
    for shard in shards.iter_mut() {
        let trace = trace.clone();
        shard.trace_dispatches(Some(Box::new(move |d: &Dispatch| {
            let mut t = trace.borrow_mut();
            (d.shard, d.agent, d.what, d.now_ns).hash(&mut t.0);
            t.1 += 1;
        })));
    }
    let relays: Vec<Addr<RelayMsg>> =
        (0..RELAYS).map(|i| shards[i % SHARDS].spawn(Relay { peers: Vec::new() }).unwrap()).collect();
    for (i, relay) in relays.iter().enumerate() {
        assert!(shards[i % SHARDS].inject(*relay, RelayMsg::Peers(relays.clone())).is_ok());
        assert!(shards[i % SHARDS].inject(*relay, RelayMsg::Hop { n: i as u64 + 1, ttl: 100 }).is_ok());
    }
    let mut schedule = Schedule(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    for _ in 0..100_000 {
        // Passes in the seeded order until a long enough run of them finds nothing to do...
        let mut idle = 0;
        while idle < 4 * SHARDS {
            idle = if shards[schedule.next()].pass() == 0 { idle + 1 } else { 0 };
        }
        // ... then virtual time jumps to the next deadline, or the run is over.
        match shards.iter_mut().filter_map(Shard::next_deadline).min() {
            Some(next) => clock.advance_to(next),
            None => break,
        }
    }
    assert_accounted(&shards);
    let mut totals = Counters::default();
    for s in &shards {
        totals.add(&s.stats().counters);
    }
    let (hasher, dispatches) = &*trace.borrow();
    (hasher.finish(), *dispatches, totals)
}

#[test]
fn the_same_seed_gives_the_same_trace_and_counts() {
    for seed in [1, 7, 42] {
        let (a, n, ka) = run(seed);
        let (b, m, kb) = run(seed);
        assert_eq!((a, n), (b, m), "seed {seed}: the trace differs between two runs");
        assert_eq!(format!("{ka:?}"), format!("{kb:?}"), "seed {seed}: the counts differ");
        assert!(n > 100, "seed {seed}: only {n} dispatches");
        assert!(ka.panics > 0, "seed {seed}: the scenario panics some relays");
    }
}

#[test]
fn other_seeds_give_other_interleavings() {
    let fingerprints: std::collections::BTreeSet<u64> = (1..=10).map(|seed| run(seed).0).collect();
    assert!(fingerprints.len() > 1, "ten seeds, one interleaving: the schedule does not matter");
}
