//! The [`Pool`] agent: one address in front of N workers, spreading their work by a
//! [`Balancer`].
//!
//! Workers are agents of any shard that take messages of one type `M`. The pool takes
//! [`PoolMsg`]s:
//!
//! 1. `Tell(m)`: the balancer picks a live worker and the pool sends it `m` (tracked, so a
//!    message its worker never got comes back through `on_undelivered`);
//! 2. `Ask(q, reply)`: the balancer picks a live worker, the pool asks it with `wrap(q, token)`
//!    (the `fn(Q, ReplyTo<R>) -> M` given to [`Pool::with_asks`]) through a typed ask whose
//!    continuation carries the caller's `reply`, the worker, the send time and (with failover)
//!    a spare copy of the request; the answer comes back to the pool as `Answered`, where it
//!    observes the latency and outcome (feeding the balancer) and answers the caller's `reply`
//!    with `Ok(r)` or a [`PoolError`];
//! 3. `Stats(reply)`: a [`PoolStats`] snapshot.
//!
//! Why this shape: the pool's type names its protocol once (`wrap` is a plain function
//! pointer, and the ask's context travels in its continuation, in one small shared allocation
//! that a refused ask gives back: the pool keeps no table of requests), and the caller asks
//! the pool exactly as it would ask a worker, with `Q` in place of the worker's request and
//! `Result<R, PoolError>` as the answer.
//!
//! Dead workers: the pool watches every worker; a `Down`, an ask or tell that bounced because
//! the worker is gone (`NoSuchAgent`, `StaleGeneration`, `Stopped`), or a local worker whose
//! mailbox no longer exists marks it dead, and the balancers never pick a dead worker. In-flight
//! asks to a worker that stops fail with [`PoolError::Worker`] carrying the engine's
//! [`AskError`] (`Undelivered(Stopped)` for a request still queued or sent after it stopped,
//! `StaleGeneration` once its slot holds a newer agent, `Timeout` for one it took and never
//! answered). With
//! [`Pool::with_failover`] (which needs `Q: Clone`), a request that provably never reached a
//! worker's handler (gone, mailbox full, shed) is sent to another worker instead, up to a
//! bounded number of attempts; a request that may have run (timeout, panic) is never repeated.
//! A bounced tell is re-placed the same way (each bounce marks a worker dead, so at most N
//! times).
//!
//! What the balancer sees: each worker's asks in flight through this pool, and, for workers on
//! the pool's own shard, their mailbox depth. A tell has no answer, so a worker on another
//! shard that only gets tells looks idle to the load-aware policies (its depth is not visible
//! from here): spread cross-shard tells with round robin or power of two choices, or keep the
//! workers on the pool's shard.
//!
//! Nothing is dropped silently: an ask it cannot place is answered with an error; a tell it
//! cannot place or that bounced for good is counted in [`PoolStats`].
//!
//! Invariants (all on the pool's shard thread): `views[i]` and `counters[i]` describe worker
//! `i`; `views[i].outstanding` is the number of asks to worker `i` whose answer has not come
//! back; `in_flight` is their sum and `in_flight <= max_in_flight`; for each worker
//! `picks == tells + asks + refused` and `asks == ok + failed + outstanding`.

use crate::balance::{Balancer, Outcome, WorkerView};
use nexus_engine::agent::{Addr, Agent, AgentId, Ctx, Down, SendOptions, Undelivered};
use nexus_engine::ask::{AskError, ReplyTo};
use nexus_engine::metrics::DeadLetterReason;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Default time a worker has to answer a forwarded ask.
pub const DEFAULT_ASK_TIMEOUT: Duration = Duration::from_secs(5);
/// Default limit on asks in flight through one pool.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 65_536;
/// Weight of a new sample in the latency average the pool reports per worker
/// ([`WorkerStats::latency_ewma_ns`]), whatever its balancer.
pub const STATS_EWMA_ALPHA: f64 = 0.2;

/// Limits of a [`Pool`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolConfig {
    /// How long a worker has to answer a forwarded ask (the caller's own deadline, when
    /// shorter, wins: asks inherit it).
    pub ask_timeout: Duration,
    /// At most this many asks in flight; more are answered with [`PoolError::Saturated`].
    pub max_in_flight: usize,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self { ask_timeout: DEFAULT_ASK_TIMEOUT, max_in_flight: DEFAULT_MAX_IN_FLIGHT }
    }
}

/// Why the pool could not answer an ask with a worker's reply.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// Every worker of the pool is dead.
    #[error("no live worker in the pool; hint: every worker stopped, start new ones and a new pool")]
    NoWorker,
    /// The pool has `limit` asks in flight already.
    #[error("the pool has {limit} asks in flight, its limit; hint: slow down or raise PoolConfig::max_in_flight")]
    Saturated {
        /// The limit (`PoolConfig::max_in_flight`).
        limit: usize,
    },
    /// The chosen worker's mailbox, or the way to its shard, was full (or the pool's shard had
    /// no free ask slot).
    #[error("worker {worker} could not take the request: its mailbox or the way to its shard is full; hint: retry later, or enable failover")]
    Full {
        /// The worker.
        worker: AgentId,
    },
    /// The chosen worker did not answer.
    #[error("worker {worker} did not answer: {error}")]
    Worker {
        /// The worker.
        worker: AgentId,
        /// What the engine said: `Undelivered(Stopped)`, `Timeout`, ...
        #[source]
        error: AskError,
    },
    /// The pool was built without a request wrapper.
    #[error("this pool forwards only tells; hint: build it with Pool::with_asks")]
    NoAsks,
}

/// What a [`Pool`] takes. `M`: its workers' message; `Q`: a request; `R`: a worker's answer.
pub enum PoolMsg<M, Q = (), R = ()> {
    /// A one-way message for one worker.
    Tell(M),
    /// A request for one worker; the answer, or why there is none, goes to the `ReplyTo`.
    Ask(Q, ReplyTo<Result<R, PoolError>>),
    /// A snapshot of the pool's figures.
    Stats(ReplyTo<PoolStats>),
    /// The pool's own: a worker's answer to a forwarded ask (built by the ask's continuation;
    /// it cannot be made elsewhere).
    Answered(Answered<Q, R>),
}

/// A worker's answer to an ask the pool forwarded, with the ask's context; see
/// [`PoolMsg::Answered`].
pub struct Answered<Q, R> {
    ask: Carried<Q, R>,
    result: Result<R, AskError>,
}

/// One worker's figures in [`PoolStats`].
#[derive(Clone, Debug, PartialEq)]
pub struct WorkerStats {
    /// The worker.
    pub id: AgentId,
    /// Whether the pool still picks it.
    pub alive: bool,
    /// Times the balancer chose it.
    pub picks: u64,
    /// Tells sent to it.
    pub tells: u64,
    /// Asks sent to it.
    pub asks: u64,
    /// Asks it answered.
    pub ok: u64,
    /// Asks to it that failed (see [`PoolError::Worker`]).
    pub failed: u64,
    /// Messages for it that could not be sent (its mailbox or the way to it was full).
    pub refused: u64,
    /// Asks sent to it and not settled yet.
    pub outstanding: u32,
    /// Average latency of its asks (ns, weight [`STATS_EWMA_ALPHA`]); `None` before the first.
    pub latency_ewma_ns: Option<f64>,
    /// The balancer's own latency estimate, when it keeps one.
    pub balancer_estimate_ns: Option<f64>,
}

/// A [`Pool`]'s figures.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolStats {
    /// The balancer's name.
    pub balancer: &'static str,
    /// Per worker, in the order the pool was given them.
    pub workers: Vec<WorkerStats>,
    /// Asks in flight.
    pub in_flight: usize,
    /// Asks answered by a worker.
    pub asks_ok: u64,
    /// Asks answered with an error (every [`PoolError`]).
    pub asks_failed: u64,
    /// Asks sent again to another worker after one never got them (failover).
    pub asks_retried: u64,
    /// Tells sent to a worker (a redirected tell counts once per send).
    pub tells_sent: u64,
    /// Tells with no live worker to go to.
    pub tells_unplaced: u64,
    /// Tells a worker's mailbox (or the way to it) refused.
    pub tells_refused: u64,
    /// Tells that bounced off a gone worker and were sent to another.
    pub tells_redirected: u64,
    /// Tells that bounced for another reason (expired, shed, panicked, wrong type).
    pub tells_lost: u64,
}

impl PoolStats {
    /// Picks per worker, in worker order.
    pub fn picks(&self) -> Vec<u64> {
        self.workers.iter().map(|w| w.picks).collect()
    }

    /// Workers still picked.
    pub fn live_workers(&self) -> usize {
        self.workers.iter().filter(|w| w.alive).count()
    }
}

/// Per-worker figures that no pick reads: kept apart from the views the balancer scans.
#[derive(Clone, Copy, Debug, Default)]
struct Counters {
    picks: u64,
    tells: u64,
    asks: u64,
    ok: u64,
    failed: u64,
    refused: u64,
    latency_ewma_ns: Option<f64>,
}

#[derive(Clone, Copy, Debug, Default)]
struct Totals {
    asks_ok: u64,
    asks_failed: u64,
    asks_retried: u64,
    tells_sent: u64,
    tells_unplaced: u64,
    tells_refused: u64,
    tells_redirected: u64,
    tells_lost: u64,
}

/// One forwarded ask's context, carried by its continuation until the answer.
struct Forwarded<Q, R> {
    worker: u32,
    sent_ns: u64,
    reply: ReplyTo<Result<R, PoolError>>,
    /// A copy of the request, kept only with failover.
    spare: Option<Q>,
    attempts: u32,
}

/// Fronts N workers with a balancer; see the module docs.
///
/// ```
/// use nexus_coord::balance::BalancerKind;
/// use nexus_coord::pool::{Pool, PoolMsg};
/// use nexus_engine::agent::{Agent, Ctx, SpawnPlacement};
/// use nexus_engine::ask::ReplyTo;
/// use nexus_engine::engine::Engine;
/// use nexus_engine::shard::ExecutorKind;
/// use std::time::Duration;
///
/// enum Work {
///     Double(u64, ReplyTo<u64>),
/// }
///
/// struct Doubler;
///
/// impl Agent for Doubler {
///     type Msg = Work;
///     fn handle(&mut self, msg: Work, ctx: &mut Ctx<'_>) {
///         let Work::Double(x, reply) = msg;
///         ctx.reply(reply, 2 * x);
///     }
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let engine = Engine::builder().shards(2).oversubscribe(true).executor(ExecutorKind::Threads).build()?;
/// let h = engine.handle();
/// let workers = (0..4)
///     .map(|i| h.spawn(SpawnPlacement::Shard(i % 2), || Doubler))
///     .collect::<Result<Vec<_>, _>>()?;
/// let pool = Pool::new(workers, BalancerKind::LeastLoaded.build())
///     .with_asks(Work::Double) // fn(Q, ReplyTo<R>) -> M, here Q = R = u64
///     .with_failover(2);
/// let pool = h.spawn(SpawnPlacement::Shard(0), move || pool)?;
/// let answer = h.ask(pool, Duration::from_secs(5), |r| PoolMsg::Ask(21, r))??;
/// assert_eq!(answer, 42);
/// let stats = h.ask(pool, Duration::from_secs(5), PoolMsg::Stats)?;
/// assert_eq!(stats.asks_ok, 1);
/// engine.shutdown()?;
/// # Ok(())
/// # }
/// ```
pub struct Pool<M, Q = (), R = ()> {
    /// Read by every pick (hot).
    views: Vec<WorkerView>,
    balancer: Box<dyn Balancer + Send>,
    wrap: Option<fn(Q, ReplyTo<R>) -> M>,
    clone_request: Option<fn(&Q) -> Q>,
    failover_attempts: u32,
    config: PoolConfig,
    /// Asks sent to a worker whose answer has not come back.
    in_flight: usize,
    /// Written on every message, read only for stats (cold).
    counters: Vec<Counters>,
    totals: Totals,
}

impl<M: Send + 'static> Pool<M> {
    /// A pool forwarding tells to `workers`, chosen by `balancer`. Add asks with
    /// [`with_asks`](Self::with_asks).
    #[must_use]
    pub fn new(workers: impl IntoIterator<Item = Addr<M>>, balancer: Box<dyn Balancer + Send>) -> Self {
        let views: Vec<WorkerView> = workers.into_iter().map(|a| WorkerView::new(a.id())).collect();
        let config = PoolConfig::default();
        Self {
            counters: vec![Counters::default(); views.len()],
            views,
            balancer,
            wrap: None,
            clone_request: None,
            failover_attempts: 0,
            in_flight: 0,
            config,
            totals: Totals::default(),
        }
    }

    /// The same pool forwarding asks too: a `PoolMsg::Ask(q, reply)` becomes the worker
    /// message `wrap(q, token)`, whose `R` answer goes back to `reply`.
    #[must_use]
    pub fn with_asks<Q: Send + 'static, R: Send + 'static>(self, wrap: fn(Q, ReplyTo<R>) -> M) -> Pool<M, Q, R> {
        Pool {
            views: self.views,
            balancer: self.balancer,
            wrap: Some(wrap),
            clone_request: None,
            failover_attempts: 0,
            config: self.config,
            in_flight: self.in_flight,
            counters: self.counters,
            totals: self.totals,
        }
    }
}

impl<M: Send + 'static, Q: Send + 'static, R: Send + 'static> Pool<M, Q, R> {
    /// The same pool with `config`'s limits.
    #[must_use]
    pub fn with_config(mut self, config: PoolConfig) -> Self {
        self.config = config;
        self
    }

    /// The same pool, sending a request that never reached its worker (gone, mailbox full,
    /// shed) to another, at most `attempts` more times. It keeps a clone of each request in
    /// flight. Requests that may have run (timeout, panic) are never repeated.
    #[must_use]
    pub fn with_failover(mut self, attempts: u32) -> Self
    where
        Q: Clone,
    {
        self.clone_request = Some(Q::clone);
        self.failover_attempts = attempts;
        self
    }

    /// The workers, in order.
    pub fn workers(&self) -> impl Iterator<Item = AgentId> + '_ {
        self.views.iter().map(|v| v.id)
    }

    /// A snapshot of the figures (what `PoolMsg::Stats` answers).
    pub fn stats(&self) -> PoolStats {
        let t = self.totals;
        PoolStats {
            balancer: self.balancer.name(),
            workers: self
                .views
                .iter()
                .zip(&self.counters)
                .enumerate()
                .map(|(i, (v, c))| WorkerStats {
                    id: v.id,
                    alive: v.alive,
                    picks: c.picks,
                    tells: c.tells,
                    asks: c.asks,
                    ok: c.ok,
                    failed: c.failed,
                    refused: c.refused,
                    outstanding: v.outstanding,
                    latency_ewma_ns: c.latency_ewma_ns,
                    balancer_estimate_ns: self.balancer.latency_estimate_ns(i),
                })
                .collect(),
            in_flight: self.in_flight,
            asks_ok: t.asks_ok,
            asks_failed: t.asks_failed,
            asks_retried: t.asks_retried,
            tells_sent: t.tells_sent,
            tells_unplaced: t.tells_unplaced,
            tells_refused: t.tells_refused,
            tells_redirected: t.tells_redirected,
            tells_lost: t.tells_lost,
        }
    }

    /// Reads the mailbox depth of the workers on this shard; one whose mailbox is gone is dead.
    fn refresh(&mut self, ctx: &Ctx<'_>) {
        let here = ctx.shard();
        for v in self.views.iter_mut().filter(|v| v.alive && v.id.shard() == here) {
            match ctx.mailbox_len(v.id) {
                Some(depth) => v.mailbox = Some(u32::try_from(depth).unwrap_or(u32::MAX)),
                None => {
                    v.alive = false;
                    v.mailbox = None;
                }
            }
        }
    }

    /// The worker for the next message, counted as picked; `None` when none is alive (or the
    /// balancer broke its contract by naming a dead or unknown worker).
    fn pick(&mut self, ctx: &Ctx<'_>) -> Option<usize> {
        if self.balancer.uses_load() {
            self.refresh(ctx);
        }
        let i = self.balancer.pick(&self.views)?;
        debug_assert!(self.views.get(i).is_some_and(|v| v.alive), "balancer picked dead worker {i}");
        self.views.get(i).filter(|v| v.alive)?;
        self.counters[i].picks += 1;
        Some(i)
    }

    fn mark_dead(&mut self, id: AgentId) {
        if let Some(v) = self.views.iter_mut().find(|v| v.id == id) {
            v.alive = false;
            v.mailbox = None;
        }
    }

    fn tell(&mut self, msg: M, ctx: &mut Ctx<'_>) {
        let Some(i) = self.pick(ctx) else {
            self.totals.tells_unplaced += 1;
            return;
        };
        match ctx.send_with(Addr::from_id(self.views[i].id), msg, SendOptions::new().tracked()) {
            Ok(()) => {
                self.counters[i].tells += 1;
                self.totals.tells_sent += 1;
            }
            Err(_) => {
                self.counters[i].refused += 1;
                self.totals.tells_refused += 1;
            }
        }
    }

    fn fail(&mut self, reply: ReplyTo<Result<R, PoolError>>, error: PoolError, ctx: &mut Ctx<'_>) {
        self.totals.asks_failed += 1;
        ctx.reply(reply, Err(error));
    }

    fn ask(&mut self, q: Q, reply: ReplyTo<Result<R, PoolError>>, attempts: u32, ctx: &mut Ctx<'_>) {
        let Some(wrap) = self.wrap else { return self.fail(reply, PoolError::NoAsks, ctx) };
        if self.in_flight >= self.config.max_in_flight {
            let limit = self.config.max_in_flight;
            return self.fail(reply, PoolError::Saturated { limit }, ctx);
        }
        let Some(i) = self.pick(ctx) else { return self.fail(reply, PoolError::NoWorker, ctx) };
        let worker = self.views[i].id;
        let spare = self.clone_request.map(|clone| clone(&q));
        let sent_ns = ctx.now_ns();
        let ask: Carried<Q, R> = Arc::new(Mutex::new(Forwarded { worker: i as u32, sent_ns, reply, spare, attempts }));
        let kept = ask.clone();
        let sent = ctx
            .ask(Addr::<M>::from_id(worker), |token| wrap(q, token))
            .timeout(self.config.ask_timeout)
            .then(move |result| PoolMsg::<M, Q, R>::Answered(Answered { ask, result }));
        if sent.is_ok() {
            self.views[i].outstanding += 1;
            self.counters[i].asks += 1;
            self.in_flight += 1;
            return;
        }
        // Refused: the continuation was dropped, so `kept` is the context's last holder.
        let Forwarded { reply, spare, .. } = take_carried(kept);
        self.counters[i].refused += 1;
        match spare {
            Some(q) if attempts < self.failover_attempts => {
                self.totals.asks_retried += 1;
                self.ask(q, reply, attempts + 1, ctx);
            }
            _ => self.fail(reply, PoolError::Full { worker }, ctx),
        }
    }

    /// A worker answered a forwarded ask (or the ask failed): observe, then answer the caller,
    /// fail over, or fail.
    fn answered(&mut self, answered: Answered<Q, R>, ctx: &mut Ctx<'_>) {
        let Answered { ask, result } = answered;
        let p = take_carried(ask);
        self.in_flight = self.in_flight.saturating_sub(1);
        let i = p.worker as usize;
        let view = &mut self.views[i];
        view.outstanding = view.outstanding.saturating_sub(1);
        let worker = view.id;
        let latency_ns = ctx.now_ns().saturating_sub(p.sent_ns);
        let success = result.is_ok();
        self.balancer.observe(i, Outcome { latency_ns, success });
        let c = &mut self.counters[i];
        c.latency_ewma_ns = Some(match c.latency_ewma_ns {
            Some(e) => STATS_EWMA_ALPHA * latency_ns as f64 + (1.0 - STATS_EWMA_ALPHA) * e,
            None => latency_ns as f64,
        });
        match result {
            Ok(value) => {
                c.ok += 1;
                self.totals.asks_ok += 1;
                ctx.reply(p.reply, Ok(value));
            }
            Err(error) => {
                c.failed += 1;
                if matches!(error, AskError::Undelivered(reason) if worker_gone(reason)) {
                    self.mark_dead(worker);
                }
                match p.spare {
                    Some(q) if never_handled(error) && p.attempts < self.failover_attempts => {
                        self.totals.asks_retried += 1;
                        self.ask(q, p.reply, p.attempts + 1, ctx);
                    }
                    _ => self.fail(p.reply, PoolError::Worker { worker, error }, ctx),
                }
            }
        }
    }
}

/// A forwarded ask's context, shared by its continuation and the pool while the ask is being
/// sent: a refused ask drops its continuation, and the pool takes the context back to fail
/// over or answer the caller. Never locked (the `Mutex` only makes it `Sync` for any `Q`): the
/// last holder unwraps it.
type Carried<Q, R> = Arc<Mutex<Forwarded<Q, R>>>;

/// The context, from its last holder.
fn take_carried<Q, R>(carried: Carried<Q, R>) -> Forwarded<Q, R> {
    match Arc::try_unwrap(carried) {
        Ok(cell) => cell.into_inner().unwrap_or_else(PoisonError::into_inner),
        Err(_) => unreachable!("a forwarded ask's context has one holder once the ask is sent or refused"),
    }
}

/// The worker is gone: a message that bounced for this reason never reached it.
fn worker_gone(reason: DeadLetterReason) -> bool {
    matches!(reason, DeadLetterReason::NoSuchAgent | DeadLetterReason::StaleGeneration | DeadLetterReason::Stopped)
}

/// The request never reached the worker's handler, so sending it elsewhere cannot run it twice.
fn never_handled(error: AskError) -> bool {
    match error {
        AskError::Undelivered(reason) => {
            worker_gone(reason) || matches!(reason, DeadLetterReason::MailboxFull | DeadLetterReason::Shed)
        }
        AskError::Overloaded(_) => true,
        _ => false,
    }
}

impl<M: Send + 'static, Q: Send + 'static, R: Send + 'static> Agent for Pool<M, Q, R> {
    type Msg = PoolMsg<M, Q, R>;

    fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        for i in 0..self.views.len() {
            ctx.watch(self.views[i].id);
        }
    }

    fn handle(&mut self, msg: PoolMsg<M, Q, R>, ctx: &mut Ctx<'_>) {
        match msg {
            PoolMsg::Tell(m) => self.tell(m, ctx),
            PoolMsg::Ask(q, reply) => self.ask(q, reply, 0, ctx),
            PoolMsg::Stats(reply) => {
                let stats = self.stats();
                ctx.reply(reply, stats);
            }
            PoolMsg::Answered(answered) => self.answered(answered, ctx),
        }
    }

    fn on_undelivered(&mut self, undelivered: Undelivered, ctx: &mut Ctx<'_>) {
        let Ok(msg) = undelivered.message.take::<M>() else {
            self.totals.tells_lost += 1;
            return;
        };
        if worker_gone(undelivered.reason) {
            // Each bounce marks a worker dead, so a tell is re-placed at most N times.
            self.mark_dead(undelivered.to);
            self.totals.tells_redirected += 1;
            self.tell(msg, ctx);
        } else {
            self.totals.tells_lost += 1;
        }
    }

    fn on_down(&mut self, down: Down, _ctx: &mut Ctx<'_>) {
        self.mark_dead(down.id);
    }
}

#[cfg(test)]
#[path = "pool_tests.rs"]
mod tests;
