//! The simulated external service (the metrics store), the circuit breaker in front of it
//! (one per shard), and what the host reads about both after the run.

use super::{breaker_config, SHARDS, STORE_SLOW};
use nexus_coord::auction::BidderMsg;
use nexus_engine::agent::{Addr, Agent, Ctx};
use nexus_engine::resilience::{BreakerState, BreakerStats, CircuitBreaker};
use std::cell::{Cell, RefCell};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

/// What the host reads after the run about the metrics store and its breakers: counters, and
/// behind a lock the breakers' transitions and counters, updated by the evaluators of both
/// shards after each metrics write (a push or a copy, held for nanoseconds) and read by the host
/// after the engine stopped. An agent would publish such figures by message; the lock keeps the
/// example short.
#[derive(Default)]
pub(crate) struct Telemetry {
    pub(crate) transitions: Mutex<Vec<Transition>>,
    pub(crate) breaker_stats: Mutex<[BreakerStats; SHARDS]>,
    pub(crate) store_written: AtomicU64,
    pub(crate) store_errors: AtomicU64,
    pub(crate) timeouts: AtomicU64,
    pub(crate) late_answers: AtomicU64,
    pub(crate) fast_fallbacks: AtomicU64,
    pub(crate) failed_fallbacks: AtomicU64,
}

/// One change of a breaker's state.
pub(crate) struct Transition {
    pub(crate) shard: usize,
    pub(crate) task: u64,
    pub(crate) at_ns: u64,
    pub(crate) from: BreakerState,
    pub(crate) to: BreakerState,
}

/// The breaker in front of the metrics store, one per shard, shared by the shard's evaluators
/// through `Ctx::shard_local` (touched only by that shard's thread).
pub(crate) struct ShardBreaker {
    pub(crate) breaker: RefCell<CircuitBreaker>,
    pub(crate) seen: Cell<BreakerState>,
}

impl Default for ShardBreaker {
    fn default() -> Self {
        let breaker = CircuitBreaker::new(breaker_config()).expect("breaker_config() is validated at start");
        Self { breaker: RefCell::new(breaker), seen: Cell::new(BreakerState::Closed) }
    }
}

impl ShardBreaker {
    /// Logs a state change since the last look, and publishes the counters.
    pub(crate) fn observe(&self, ctx: &mut Ctx<'_>, task: u64, telemetry: &Telemetry) {
        let now = ctx.now_ns();
        let mut breaker = self.breaker.borrow_mut();
        let to = breaker.state(now);
        let from = self.seen.replace(to);
        if from != to {
            let t = Transition { shard: ctx.shard(), task, at_ns: now, from, to };
            telemetry.transitions.lock().expect("telemetry lock").push(t);
        }
        telemetry.breaker_stats.lock().expect("telemetry lock")[ctx.shard()] = breaker.stats();
    }
}

/// How the store's answers (and the evaluator's own timeout) reach an evaluator: as a
/// `BidderMsg::Wake(token)`, a message of its own that a `Contractor` passes to its `Bidder`.
/// (A `ctx.ask` from inside `perform` would bring its answer back too, as a
/// `BidderMsg::Resume`, but an ask's answer after its timeout is dropped by the engine, and the
/// pipeline counts those late answers.) The token holds the write's sequence number and one of
/// these kinds.
pub(crate) const WAKE_STORED: u64 = 0;
/// The store refused the write.
pub(crate) const WAKE_STORE_ERROR: u64 = 1;
/// The evaluator's timeout for the write passed.
pub(crate) const WAKE_TIMEOUT: u64 = 2;

/// The token of write `seq` with `kind`.
pub(crate) fn wake_token(seq: u64, kind: u64) -> u64 {
    seq << 2 | kind
}

/// The store's one message: write a score, answer `from` with a `Wake` naming `seq`.
pub(crate) enum StoreMsg {
    Put { task: u64, score: f64, from: Addr<BidderMsg>, seq: u64 },
}

/// The metrics store. During its outage (a stretch of task numbers) it answers odd tasks with
/// an error at once, and even ones too late: after `STORE_SLOW`, past the evaluator's
/// `SERVICE_TIMEOUT`. Why this way: a shard thread must never block, so "slow" is an answer
/// scheduled with `send_after` (a timer on the engine clock), never a sleep; and keying the
/// outage to task numbers makes every run meet the same outage, whatever the machine's speed.
pub(crate) struct MetricsStore {
    pub(crate) outage: Range<u64>,
    pub(crate) telemetry: Arc<Telemetry>,
}

impl Agent for MetricsStore {
    type Msg = StoreMsg;

    fn handle(&mut self, msg: StoreMsg, ctx: &mut Ctx<'_>) {
        let StoreMsg::Put { task, score, from, seq } = msg;
        debug_assert!(score.is_finite());
        if !self.outage.contains(&task) {
            self.telemetry.store_written.fetch_add(1, Relaxed);
            let _ = ctx.send(from, BidderMsg::Wake(wake_token(seq, WAKE_STORED)));
        } else if task % 2 == 1 {
            let _ = ctx.send(from, BidderMsg::Wake(wake_token(seq, WAKE_STORE_ERROR)));
        } else {
            ctx.send_after(from, BidderMsg::Wake(wake_token(seq, WAKE_STORED)), STORE_SLOW);
        }
    }
}
