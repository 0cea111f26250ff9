//! The bidders: data preparation, one model agent per configuration (one of them flaky), and
//! evaluators that write each score to the metrics store through their shard's breaker. Each is
//! wrapped in a `Contractor`, which declares its capability when it starts and answers every
//! call for bids at once with `Bidder::bid` (a pure decision).

use super::metrics_store::{wake_token, ShardBreaker, StoreMsg, Telemetry, WAKE_STORED, WAKE_TIMEOUT};
use super::work::{elapsed_ns, evaluate, prepare, timed, train, Job, Slot};
use super::{LOAD_STEP, MODELS, SERVICE_TIMEOUT};
use nexus_coord::auction::{BidDecision, Bidder, BidderMsg, CallForBids, Contract, Ticket};
use nexus_engine::agent::{Addr, Ctx, TimerId};
use nexus_engine::resilience::CallPermit;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Prepares data.
pub(crate) struct DataPrep {
    pub(crate) base_cost: f64,
    pub(crate) performed: u64,
}

impl Bidder for DataPrep {
    fn bid(&mut self, call: &CallForBids) -> BidDecision {
        if call.task.payload_as::<Job>().is_none() {
            return BidDecision::Decline;
        }
        BidDecision::Bid { cost: self.base_cost + LOAD_STEP * self.performed as f64, completion: Duration::ZERO }
    }

    fn perform(&mut self, contract: Contract, ctx: &mut Ctx<'_>) {
        self.performed += 1;
        let task = contract.task.clone();
        let Some(job) = task.payload_as::<Job>() else {
            let _ = contract.failed(ctx, "not a pipeline job");
            return;
        };
        let out = timed(&job.slot, || prepare(job.task ^ job.input));
        job.slot.output.store(out, Relaxed);
        // A report the manager's mailbox refuses runs into the deadline (and a re-auction).
        let _ = contract.done(ctx);
    }
}

/// Trains one configuration; the flaky one fails most contracts after its warm-up.
pub(crate) struct Model {
    pub(crate) config: usize,
    pub(crate) performed: u64,
    /// Contracts the flaky configuration does well before it turns bad.
    pub(crate) warmup: u64,
}

impl Bidder for Model {
    fn bid(&mut self, call: &CallForBids) -> BidDecision {
        if call.task.payload_as::<Job>().is_none() {
            return BidDecision::Decline;
        }
        let cost = MODELS[self.config].base_cost + LOAD_STEP * self.performed as f64;
        BidDecision::Bid { cost, completion: Duration::ZERO }
    }

    fn perform(&mut self, contract: Contract, ctx: &mut Ctx<'_>) {
        self.performed += 1;
        let task = contract.task.clone();
        let Some(job) = task.payload_as::<Job>() else {
            let _ = contract.failed(ctx, "not a pipeline job");
            return;
        };
        let out = timed(&job.slot, || train(job.input, MODELS[self.config].lr));
        let bad = MODELS[self.config].flaky && self.performed > self.warmup;
        let n = self.performed.saturating_sub(self.warmup);
        if bad && n % 6 == 0 {
            // Drop it without a report: the manager's deadline timer fires, it sends
            // `BidderMsg::Cancel` and re-auctions the task.
            drop(contract);
            return;
        }
        if bad && n % 2 == 1 {
            // The manager judges the failure, excludes this agent and re-auctions at once.
            let _ = contract.failed(ctx, "diverged: loss is NaN");
            return;
        }
        job.slot.output.store(out, Relaxed);
        job.slot.config.store(self.config as u64, Relaxed);
        let _ = contract.done(ctx);
    }
}

/// Per configuration, the scores one evaluator saw. Written by the evaluator and read by its
/// reviewer, two agents of the same shard (an agent has one message type, so one agent cannot
/// take both `BidderMsg` and `VoterMsg`); atomics, because a `Voter` must be `Send`.
pub(crate) struct Scoreboard {
    pub(crate) sum_micro: [AtomicU64; MODELS.len()],
    pub(crate) count: [AtomicU64; MODELS.len()],
}

impl Scoreboard {
    pub(crate) fn new() -> Self {
        Self {
            sum_micro: std::array::from_fn(|_| AtomicU64::new(0)),
            count: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    pub(crate) fn record(&self, config: usize, score: f64) {
        self.sum_micro[config].fetch_add((score.clamp(0.0, 1.0) * 1e6) as u64, Relaxed);
        self.count[config].fetch_add(1, Relaxed);
    }

    pub(crate) fn count(&self, config: usize) -> u64 {
        self.count[config].load(Relaxed)
    }

    pub(crate) fn mean(&self, config: usize) -> Option<f64> {
        let n = self.count(config);
        (n > 0).then(|| self.sum_micro[config].load(Relaxed) as f64 / 1e6 / n as f64)
    }

    /// The configuration with the best mean score (the lower index on a tie), if any was seen.
    pub(crate) fn best(&self) -> Option<usize> {
        (0..MODELS.len())
            .filter_map(|c| self.mean(c).map(|m| (c, m)))
            .fold(None, |best: Option<(usize, f64)>, (c, m)| match best {
                Some((_, b)) if b >= m => best,
                _ => Some((c, m)),
            })
            .map(|(c, _)| c)
    }
}

/// A metrics write in flight: the evaluator holds its contract until the write is settled.
struct Write {
    seq: u64,
    task: u64,
    contract: Contract,
    permit: CallPermit,
    timer: TimerId,
    started: Instant,
    slot: Arc<Slot>,
}

/// Evaluates trained models and writes each score to the metrics store through its shard's
/// breaker.
pub(crate) struct Evaluator {
    base_cost: f64,
    performed: u64,
    board: Arc<Scoreboard>,
    store: Addr<StoreMsg>,
    telemetry: Arc<Telemetry>,
    next_seq: u64,
    writes: Vec<Write>,
    breaker: Option<Rc<ShardBreaker>>,
}

impl Evaluator {
    /// An evaluator bidding from `base_cost`, recording scores in `board`, writing them to
    /// `store`.
    pub(crate) fn new(
        base_cost: f64,
        board: Arc<Scoreboard>,
        store: Addr<StoreMsg>,
        telemetry: Arc<Telemetry>,
    ) -> Self {
        Self { base_cost, performed: 0, board, store, telemetry, next_seq: 0, writes: Vec::new(), breaker: None }
    }

    /// The shard's breaker, looked up once (`shard_local` is a hash lookup by type).
    fn breaker(&mut self, ctx: &mut Ctx<'_>) -> Rc<ShardBreaker> {
        self.breaker.get_or_insert_with(|| ctx.shard_local::<ShardBreaker>()).clone()
    }
}

impl Bidder for Evaluator {
    fn bid(&mut self, call: &CallForBids) -> BidDecision {
        let Some(job) = call.task.payload_as::<Job>() else { return BidDecision::Decline };
        // Cheaper for configurations it has seen less, so every evaluator sees every one.
        let cost = self.base_cost + 0.2 * self.performed as f64 + self.board.count(job.config) as f64;
        BidDecision::Bid { cost, completion: SERVICE_TIMEOUT }
    }

    fn perform(&mut self, contract: Contract, ctx: &mut Ctx<'_>) {
        self.performed += 1;
        let task = contract.task.clone();
        let Some(job) = task.payload_as::<Job>() else {
            let _ = contract.failed(ctx, "not a pipeline job");
            return;
        };
        let score = timed(&job.slot, || evaluate(job.input, job.config));
        self.board.record(job.config, score);
        job.slot.output.store(score.to_bits(), Relaxed);

        // The metrics write, through the shard's breaker (engine clock: `ctx.now_ns()`).
        let shard_breaker = self.breaker(ctx);
        let now = ctx.now_ns();
        let permit = shard_breaker.breaker.borrow_mut().try_call(now);
        shard_breaker.observe(ctx, job.task, &self.telemetry);
        let permit = match permit {
            Ok(permit) => permit,
            Err(_open) => {
                // Fail fast: the fallback keeps the score locally and the evaluation is done.
                self.telemetry.fast_fallbacks.fetch_add(1, Relaxed);
                let _ = contract.done(ctx);
                return;
            }
        };
        let seq = self.next_seq;
        self.next_seq += 1;
        let me = ctx.myself::<BidderMsg>();
        let put = StoreMsg::Put { task: job.task, score, from: me, seq };
        if ctx.send(self.store, put).is_err() {
            shard_breaker.breaker.borrow_mut().on_failure(permit, ctx.now_ns());
            shard_breaker.observe(ctx, job.task, &self.telemetry);
            self.telemetry.failed_fallbacks.fetch_add(1, Relaxed);
            let _ = contract.done(ctx);
            return;
        }
        // The store answers with a `Wake` to this contractor; this timer is the timeout.
        let timer = ctx.send_after(me, BidderMsg::Wake(wake_token(seq, WAKE_TIMEOUT)), SERVICE_TIMEOUT);
        let slot = job.slot.clone();
        self.writes.push(Write { seq, task: job.task, contract, permit, timer, started: Instant::now(), slot });
    }

    fn wake(&mut self, token: u64, ctx: &mut Ctx<'_>) {
        let (seq, kind) = (token >> 2, token & 3);
        let Some(pos) = self.writes.iter().position(|w| w.seq == seq) else {
            // An answer after the timeout settled the write.
            self.telemetry.late_answers.fetch_add(1, Relaxed);
            return;
        };
        let w = self.writes.swap_remove(pos);
        if kind != WAKE_TIMEOUT {
            ctx.cancel_timer(w.timer);
        }
        w.slot.service_ns.fetch_add(elapsed_ns(w.started), Relaxed);
        let shard_breaker = self.breaker(ctx);
        let now = ctx.now_ns();
        if kind == WAKE_STORED {
            shard_breaker.breaker.borrow_mut().on_success(w.permit, now);
        } else {
            shard_breaker.breaker.borrow_mut().on_failure(w.permit, now);
            let counter = if kind == WAKE_TIMEOUT { &self.telemetry.timeouts } else { &self.telemetry.store_errors };
            counter.fetch_add(1, Relaxed);
            self.telemetry.failed_fallbacks.fetch_add(1, Relaxed);
        }
        shard_breaker.observe(ctx, w.task, &self.telemetry);
        let _ = w.contract.done(ctx);
    }

    fn cancelled(&mut self, ticket: Ticket, ctx: &mut Ctx<'_>) {
        // The contract's deadline passed while the write was in flight: give the permit back.
        if let Some(pos) = self.writes.iter().position(|w| w.contract.ticket == ticket) {
            let w = self.writes.swap_remove(pos);
            ctx.cancel_timer(w.timer);
            self.breaker(ctx).breaker.borrow_mut().release(w.permit);
        }
    }
}
