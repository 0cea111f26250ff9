//! Balancers: which worker of a pool gets the next message.
//!
//! A [`Balancer`] is pure logic. It sees the pool's workers as a slice of [`WorkerView`]s (what
//! the pool knows of each: outstanding asks, mailbox depth when the worker shares the pool's
//! shard, alive or not), picks one by index, and learns from the outcome of each ask through
//! [`Balancer::observe`]. It owns no engine state, so it is unit-tested without an engine and
//! can be reused by anything that spreads work (a [`crate::pool::Pool`] agent, a bench).
//!
//! Four policies, chosen by a [`BalancerKind`] (a plain config value):
//! - [`RoundRobin`]: the next live worker in turn;
//! - [`LeastLoaded`]: the live worker with the least `outstanding + mailbox depth`;
//! - [`PowerOfTwo`]: two distinct live workers drawn with a seeded SplitMix64 (the engine's
//!   `resilience::JitterRng`), the lighter
//!   of the two (Mitzenmacher's "power of two choices");
//! - [`ResponseTime`]: the live worker with the least expected wait, `ewma × (1 + load)`, where
//!   `ewma` is an exponentially weighted moving average of its observed latency.
//!
//! Invariants, for every policy: a pick is the index of a worker whose view says `alive`, and
//! `None` only when no worker is alive; a pick never allocates once the balancer has seen the
//! pool's size (per-worker state is a `Vec` indexed by position, grown on the first pick); the
//! same seed and the same sequence of views and observations give the same picks.

use nexus_engine::agent::AgentId;
use nexus_engine::resilience::JitterRng;

/// What a pool knows of one worker when it picks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkerView {
    /// The worker.
    pub id: AgentId,
    /// Asks sent to it and not yet answered (or failed).
    pub outstanding: u32,
    /// Messages queued in its mailbox, when it lives on the pool's shard (`Ctx::mailbox_len`);
    /// `None` for a worker on another shard.
    pub mailbox: Option<u32>,
    /// Whether it may be picked: false once it stopped (or was found gone).
    pub alive: bool,
}

impl WorkerView {
    /// A live, idle worker.
    pub const fn new(id: AgentId) -> Self {
        Self { id, outstanding: 0, mailbox: None, alive: true }
    }

    /// The load the load-aware policies compare: outstanding asks plus mailbox depth.
    #[inline]
    pub fn load(&self) -> u64 {
        u64::from(self.outstanding) + u64::from(self.mailbox.unwrap_or(0))
    }
}

/// The result of one ask, as a pool reports it to its balancer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// From the ask being sent to its answer (or failure), engine-clock nanoseconds. The
    /// engine clock is read once per dispatcher pass, so an answer within the pass the ask
    /// was sent in (a worker on the pool's shard, say) measures 0.
    pub latency_ns: u64,
    /// Whether the worker answered.
    pub success: bool,
}

/// Chooses a worker for each message; see the module docs.
pub trait Balancer {
    /// A short name for stats and logs (`"round_robin"`, ...).
    fn name(&self) -> &'static str;

    /// The index in `workers` of the worker to use next, or `None` when no worker is alive.
    /// Never the index of a worker whose view is not `alive`.
    fn pick(&mut self, workers: &[WorkerView]) -> Option<usize>;

    /// Learns the outcome of an ask that `worker` (an index into the pool's workers) handled.
    fn observe(&mut self, _worker: usize, _outcome: Outcome) {}

    /// Whether the policy reads load (`outstanding`, `mailbox`): a pool skips refreshing the
    /// mailbox depths when it does not.
    fn uses_load(&self) -> bool {
        true
    }

    /// The policy's latency estimate for `worker` in ns, when it keeps one.
    fn latency_estimate_ns(&self, _worker: usize) -> Option<f64> {
        None
    }
}

impl<B: Balancer + ?Sized> Balancer for Box<B> {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn pick(&mut self, workers: &[WorkerView]) -> Option<usize> {
        (**self).pick(workers)
    }
    fn observe(&mut self, worker: usize, outcome: Outcome) {
        (**self).observe(worker, outcome);
    }
    fn uses_load(&self) -> bool {
        (**self).uses_load()
    }
    fn latency_estimate_ns(&self, worker: usize) -> Option<f64> {
        (**self).latency_estimate_ns(worker)
    }
}

/// Which policy to use: a plain value for configs, turned into a balancer by
/// [`BalancerKind::build`].
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum BalancerKind {
    /// [`RoundRobin`].
    #[default]
    RoundRobin,
    /// [`LeastLoaded`].
    LeastLoaded,
    /// [`PowerOfTwo`] with this seed.
    PowerOfTwo {
        /// Seeds the PRNG: the same seed gives the same picks.
        seed: u64,
    },
    /// [`ResponseTime`] with this EWMA weight.
    ResponseTime {
        /// Weight of a new sample, in (0, 1]; out-of-range values are clamped.
        alpha: f64,
    },
}

impl BalancerKind {
    /// A new balancer of this kind.
    pub fn build(self) -> Box<dyn Balancer + Send> {
        match self {
            Self::RoundRobin => Box::new(RoundRobin::new()),
            Self::LeastLoaded => Box::new(LeastLoaded::new()),
            Self::PowerOfTwo { seed } => Box::new(PowerOfTwo::new(seed)),
            Self::ResponseTime { alpha } => Box::new(ResponseTime::new(alpha)),
        }
    }
}

/// The first live worker at or after `start` (cyclically), in index order.
#[inline]
fn next_live(workers: &[WorkerView], start: usize) -> Option<usize> {
    let n = workers.len();
    (0..n).map(|k| (start + k) % n).find(|&i| workers[i].alive)
}

/// The next live worker in turn, skipping dead ones: each live worker gets one pick per cycle.
#[derive(Clone, Debug, Default)]
pub struct RoundRobin {
    /// Where the next search starts (the index after the last pick).
    cursor: usize,
}

impl RoundRobin {
    /// A round robin starting at worker 0.
    pub const fn new() -> Self {
        Self { cursor: 0 }
    }
}

impl Balancer for RoundRobin {
    fn name(&self) -> &'static str {
        "round_robin"
    }

    fn pick(&mut self, workers: &[WorkerView]) -> Option<usize> {
        if workers.is_empty() {
            return None;
        }
        let i = next_live(workers, self.cursor % workers.len())?;
        self.cursor = i + 1;
        Some(i)
    }

    fn uses_load(&self) -> bool {
        false
    }
}

/// The live worker with the least [`WorkerView::load`].
///
/// Ties go to the first tied worker in index order starting after the previous pick, so equal
/// workers share the work instead of the lowest index taking it all (which matters for
/// one-way messages to workers on other shards, whose load the pool cannot see).
#[derive(Clone, Debug, Default)]
pub struct LeastLoaded {
    cursor: usize,
}

impl LeastLoaded {
    /// A least-loaded balancer.
    pub const fn new() -> Self {
        Self { cursor: 0 }
    }
}

/// The index of the least `cost` among live workers, ties broken cyclically from `start`.
#[inline]
fn argmin_from<T: PartialOrd + Copy>(
    workers: &[WorkerView],
    start: usize,
    mut cost: impl FnMut(usize, &WorkerView) -> T,
) -> Option<usize> {
    let n = workers.len();
    let mut best: Option<(usize, T)> = None;
    for k in 0..n {
        let i = (start + k) % n;
        let w = &workers[i];
        if !w.alive {
            continue;
        }
        let c = cost(i, w);
        if best.map_or(true, |(_, b)| c < b) {
            best = Some((i, c));
        }
    }
    best.map(|(i, _)| i)
}

impl Balancer for LeastLoaded {
    fn name(&self) -> &'static str {
        "least_loaded"
    }

    fn pick(&mut self, workers: &[WorkerView]) -> Option<usize> {
        if workers.is_empty() {
            return None;
        }
        let i = argmin_from(workers, self.cursor % workers.len(), |_, w| w.load())?;
        self.cursor = i + 1;
        Some(i)
    }
}

/// A number in `0..n` (`n > 0`) from the engine's seeded SplitMix64 (`JitterRng`).
fn below(rng: &mut JitterRng, n: usize) -> usize {
    debug_assert!(n > 0);
    rng.uniform_inclusive(n as u64 - 1) as usize
}

/// Two distinct live workers drawn at random, the one with the lesser load (ties to the first
/// drawn). With a single live worker, that one.
#[derive(Clone, Debug)]
pub struct PowerOfTwo {
    rng: JitterRng,
}

impl PowerOfTwo {
    /// A power-of-two-choices balancer whose draws come from `seed`.
    pub const fn new(seed: u64) -> Self {
        Self { rng: JitterRng::new(seed) }
    }
}

/// The index of the `k`-th live worker (0-based).
#[inline]
fn nth_live(workers: &[WorkerView], k: usize) -> Option<usize> {
    workers.iter().enumerate().filter(|(_, w)| w.alive).nth(k).map(|(i, _)| i)
}

impl Balancer for PowerOfTwo {
    fn name(&self) -> &'static str {
        "power_of_two"
    }

    fn pick(&mut self, workers: &[WorkerView]) -> Option<usize> {
        let live = workers.iter().filter(|w| w.alive).count();
        match live {
            0 => None,
            1 => nth_live(workers, 0),
            _ => {
                let a = below(&mut self.rng, live);
                let mut b = below(&mut self.rng, live - 1);
                if b >= a {
                    b += 1;
                }
                let (a, b) = (nth_live(workers, a)?, nth_live(workers, b)?);
                Some(if workers[b].load() < workers[a].load() { b } else { a })
            }
        }
    }
}

/// How much worse than its latency a failed ask counts in [`ResponseTime`]'s average: a
/// failing worker must look slow, or a worker that fails fast would attract the traffic.
pub const FAILURE_PENALTY: f64 = 4.0;

/// The live worker with the least expected wait, `ewma × (1 + load)`.
///
/// `ewma` is the exponentially weighted moving average of the worker's observed latency
/// (`ewma ← α·sample + (1 − α)·ewma`, the first sample taken as is; a failure counts as
/// [`FAILURE_PENALTY`] times its latency or the current average, whichever is larger). A worker
/// not yet observed is tried first when it is idle (load 0); while it has work in flight it is
/// assumed as slow as the slowest observed worker, so a burst does not pile onto it before its
/// first answer. Ties go cyclically from the previous pick, as in [`LeastLoaded`].
///
/// A worker that is never picked keeps its last average: one that was slow stays avoided until
/// the others are loaded enough that their expected wait passes its own.
#[derive(Clone, Debug)]
pub struct ResponseTime {
    alpha: f64,
    /// Per worker, by index: the average latency in ns, `None` until the first observation.
    ewma_ns: Vec<Option<f64>>,
    cursor: usize,
}

impl ResponseTime {
    /// A response-time balancer weighting each new sample by `alpha` (clamped to (0, 1]; a
    /// `NaN` becomes 0.2).
    pub fn new(alpha: f64) -> Self {
        let alpha = if alpha.is_nan() { 0.2 } else { alpha.clamp(f64::MIN_POSITIVE, 1.0) };
        Self { alpha, ewma_ns: Vec::new(), cursor: 0 }
    }

    /// The weight of a new sample.
    pub fn alpha(&self) -> f64 {
        self.alpha
    }
}

impl Balancer for ResponseTime {
    fn name(&self) -> &'static str {
        "response_time"
    }

    fn pick(&mut self, workers: &[WorkerView]) -> Option<usize> {
        if workers.is_empty() {
            return None;
        }
        if self.ewma_ns.len() < workers.len() {
            self.ewma_ns.resize(workers.len(), None);
        }
        let ewma = &self.ewma_ns;
        let prior = workers
            .iter()
            .enumerate()
            .filter_map(|(i, w)| if w.alive { ewma[i] } else { None })
            .fold(1.0_f64, f64::max);
        let i = argmin_from(workers, self.cursor % workers.len(), |i, w| {
            let load = w.load() as f64;
            match ewma[i] {
                Some(e) => e * (1.0 + load),
                None if load == 0.0 => 0.0,
                None => prior * (1.0 + load),
            }
        })?;
        self.cursor = i + 1;
        Some(i)
    }

    fn observe(&mut self, worker: usize, outcome: Outcome) {
        if self.ewma_ns.len() <= worker {
            self.ewma_ns.resize(worker + 1, None);
        }
        let slot = &mut self.ewma_ns[worker];
        let latency = outcome.latency_ns.max(1) as f64;
        let sample = if outcome.success { latency } else { latency.max(slot.unwrap_or(0.0)) * FAILURE_PENALTY };
        *slot = Some(match *slot {
            Some(e) => self.alpha * sample + (1.0 - self.alpha) * e,
            None => sample,
        });
    }

    fn latency_estimate_ns(&self, worker: usize) -> Option<f64> {
        self.ewma_ns.get(worker).copied().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn views(n: usize) -> Vec<WorkerView> {
        (0..n).map(|i| WorkerView::new(AgentId::new(i % 2, i as u32, 0))).collect()
    }

    fn all_kinds() -> [BalancerKind; 4] {
        [
            BalancerKind::RoundRobin,
            BalancerKind::LeastLoaded,
            BalancerKind::PowerOfTwo { seed: 7 },
            BalancerKind::ResponseTime { alpha: 0.3 },
        ]
    }

    #[test]
    fn round_robin_cycles_evenly_and_skips_dead_workers() {
        let mut w = views(4);
        let mut rr = RoundRobin::new();
        let picks: Vec<_> = (0..8).map(|_| rr.pick(&w).unwrap()).collect();
        assert_eq!(picks, [0, 1, 2, 3, 0, 1, 2, 3]);
        w[1].alive = false;
        w[3].alive = false;
        let picks: Vec<_> = (0..6).map(|_| rr.pick(&w).unwrap()).collect();
        assert_eq!(picks, [0, 2, 0, 2, 0, 2]);
        // Load does not matter to it.
        w[0].outstanding = 100;
        assert_eq!((rr.pick(&w), rr.pick(&w)), (Some(0), Some(2)));
    }

    #[test]
    fn least_loaded_picks_the_minimum_and_shares_ties() {
        let mut w = views(4);
        for (i, load) in [5, 2, 3, 2].into_iter().enumerate() {
            w[i].outstanding = load;
        }
        w[2].mailbox = Some(0);
        let mut ll = LeastLoaded::new();
        assert_eq!(ll.pick(&w), Some(1));
        assert_eq!(ll.pick(&w), Some(3), "the tie goes on from the previous pick");
        assert_eq!(ll.pick(&w), Some(1));
        w[1].mailbox = Some(4); // now 6
        w[3].alive = false;
        assert_eq!(ll.pick(&w), Some(2), "mailbox depth counts; dead workers do not");
        // Every worker equally loaded: it cycles.
        let w = views(3);
        let picks: Vec<_> = (0..6).map(|_| ll.pick(&w).unwrap()).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn every_policy_returns_none_when_every_worker_is_dead_and_never_picks_a_dead_one() {
        for kind in all_kinds() {
            let mut b = kind.build();
            assert_eq!(b.pick(&[]), None, "{}", b.name());
            let mut w = views(5);
            for v in &mut w {
                v.alive = false;
            }
            assert_eq!(b.pick(&w), None, "{}", b.name());
            w[3].alive = true;
            for _ in 0..20 {
                assert_eq!(b.pick(&w), Some(3), "{}", b.name());
                b.observe(3, Outcome { latency_ns: 1_000, success: true });
            }
            w[1].alive = true;
            for _ in 0..50 {
                let i = b.pick(&w).unwrap();
                assert!(w[i].alive, "{} picked dead worker {i}", b.name());
            }
        }
    }

    /// Picks `picks` times from `n` equal workers whose queues drain one item per pick in
    /// turn (the system as a whole keeps up); returns the picks per worker.
    fn simulate(b: &mut dyn Balancer, n: usize, picks: usize) -> Vec<u64> {
        let mut w = views(n);
        let mut count = vec![0u64; n];
        for step in 0..picks {
            let i = b.pick(&w).expect("a live worker");
            count[i] += 1;
            w[i].outstanding += 1;
            let done = step % n;
            if w[done].outstanding > 0 {
                w[done].outstanding -= 1;
                b.observe(done, Outcome { latency_ns: 1_000, success: true });
            }
        }
        count
    }

    #[test]
    fn power_of_two_is_reproducible_for_a_seed_and_spreads_load() {
        let seq = |seed| {
            let mut b = PowerOfTwo::new(seed);
            let w = views(8);
            (0..200).map(|_| b.pick(&w).unwrap()).collect::<Vec<_>>()
        };
        assert_eq!(seq(42), seq(42), "the same seed gives the same picks");
        assert_ne!(seq(42), seq(43), "another seed gives other picks");

        for seed in [1, 2, 3, 0xDEAD_BEEF] {
            let count = simulate(&mut PowerOfTwo::new(seed), 8, 40_000);
            let (max, min) = (*count.iter().max().unwrap(), *count.iter().min().unwrap());
            assert!(min > 0 && max * 100 <= min * 115, "seed {seed}: picks {count:?}");
        }
        // Two draws are always distinct: with two live workers, idle-vs-busy always goes idle.
        let mut w = views(2);
        w[0].outstanding = 3;
        let mut b = PowerOfTwo::new(9);
        assert!((0..100).all(|_| b.pick(&w) == Some(1)));
    }

    #[test]
    fn response_time_sends_fewer_picks_to_a_slower_worker() {
        // Worker 2 is ten times slower. Each tick, one pick; a worker answers once its
        // latency (in ticks) has passed since the pick, and the balancer observes it.
        let latency_ticks = [1u64, 1, 10, 1];
        let mut b = ResponseTime::new(0.3);
        let mut w = views(4);
        let mut in_flight: Vec<(u64, usize, u64)> = Vec::new(); // (due, worker, sent)
        let mut count = [0u64; 4];
        for tick in 0..4_000u64 {
            in_flight.retain(|&(due, i, sent)| {
                if due > tick {
                    return true;
                }
                w[i].outstanding -= 1;
                b.observe(i, Outcome { latency_ns: (tick - sent) * 1_000, success: true });
                false
            });
            let i = b.pick(&w).unwrap();
            count[i] += 1;
            w[i].outstanding += 1;
            in_flight.push((tick + latency_ticks[i], i, tick));
        }
        assert!(count[2] * 4 < count[0].min(count[1]).min(count[3]), "picks {count:?}");
        assert!(b.latency_estimate_ns(2).unwrap() > 5.0 * b.latency_estimate_ns(0).unwrap());
    }

    #[test]
    fn response_time_tries_unobserved_workers_and_weighs_expected_wait() {
        let mut b = ResponseTime::new(0.5);
        let mut w = views(3);
        b.observe(0, Outcome { latency_ns: 100, success: true });
        assert_eq!(b.pick(&w), Some(1), "an idle unobserved worker is tried");
        w[1].outstanding = 1;
        b.observe(2, Outcome { latency_ns: 1_000, success: true });
        assert_eq!(b.pick(&w), Some(0), "the fastest when all are idle or observed");
        // Worker 0 (100 ns) with 20 in flight waits longer than worker 2 (1000 ns) idle.
        w[0].outstanding = 20;
        assert_eq!(b.pick(&w), Some(2));
        // A failure makes a worker look slower.
        b.observe(2, Outcome { latency_ns: 1_000, success: false });
        assert!(b.latency_estimate_ns(2).unwrap() > 1_000.0);
        // Out-of-range alphas are clamped.
        assert_eq!(ResponseTime::new(7.0).alpha(), 1.0);
        assert!(ResponseTime::new(-1.0).alpha() > 0.0);
        assert_eq!(ResponseTime::new(f64::NAN).alpha(), 0.2);
    }

    #[test]
    fn least_loaded_and_power_of_two_keep_a_simulated_queue_even() {
        for kind in [BalancerKind::LeastLoaded, BalancerKind::PowerOfTwo { seed: 11 }] {
            let mut b = kind.build();
            let count = simulate(&mut *b, 5, 10_000);
            let (max, min) = (*count.iter().max().unwrap(), *count.iter().min().unwrap());
            assert!(max - min <= 200, "{}: {count:?}", b.name());
        }
    }
}
