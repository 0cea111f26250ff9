//! `pool`: clients on every shard ask a failover [`Pool`] whose workers die and dawdle.
//!
//! One pool (coord's `Pool`, on shard 0) fronts `WORKERS` workers spread over every shard,
//! with a seeded balancer, a seeded in-flight limit (small enough, in some seeds, to answer
//! `Saturated`) and, in most seeds, failover. Each worker has a seeded fate: it runs for good,
//! or, at a seeded request, panics (with [`INJECTED`]) or stops itself (one seed in ten, every
//! worker dies: then `NoWorker`); some workers are slow and answer through a seeded timer,
//! sometimes past the pool's ask timeout. `CLIENTS` clients
//! on every shard make `ASKS` asks each, at most `WINDOW` at a time; a send the engine refuses
//! is retried later and counted as a refusal. When the run is quiet an observer asks the pool
//! for its [`PoolStats`].
//!
//! Checks: **no request is lost without a typed error**: every ask a client made got exactly
//! one answer (a value, a `PoolError` or an `AskError`), or was refused at once with a typed
//! send error; answers plus refusals equal asks; every value is the right one for its request
//! (so none is delivered twice or to the wrong ask); no request ran in two workers (failover
//! only repeats requests that never reached a handler), and every `Ok` ran in exactly one;
//! the pool's figures add up (nothing in flight at the end, per worker
//! `picks = tells + asks + refused` and `asks = ok + failed`) and agree with the clients:
//! exactly without `pressure`; with it (replies may be lost on full rings and end as client
//! timeouts) the clients saw no more than the pool answered; every worker that died is marked
//! dead; and the accounting (checked by the runner).
//!
//! A slow worker keeps its pending `ReplyTo`s in its own state and its timer carries only a
//! key. Carrying the token in the timer's message instead makes the pool run a request twice:
//! when the worker stops before the timer fires, the timer's message bounces, the engine fails
//! the carried token with `Undelivered(Stopped)`, and the pool reads that as "never reached a
//! handler" and fails over (a coord bug this scenario found; see the commit message).

use crate::rng::SimRng;
use crate::runner::Faults;
use crate::scenario::{Instance, Scenario, World};
use crate::INJECTED;
use nexus_coord::balance::BalancerKind;
use nexus_coord::pool::{Pool, PoolConfig, PoolError, PoolMsg, PoolStats};
use nexus_engine::agent::{Addr, Agent, Ctx};
use nexus_engine::ask::{AskError, ReplyTo};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

const WORKERS: usize = 6;
const CLIENTS: usize = 4;
const ASKS: u64 = 40;
const WINDOW: u32 = 2;
/// How long a worker has to answer a forwarded ask (virtual time).
const POOL_TIMEOUT: Duration = Duration::from_millis(30);
/// How long a client waits for the pool: far past anything the pool can take without
/// `pressure`.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest delay of a slow worker, in microseconds: some pass `POOL_TIMEOUT`.
const SLOW_MAX_US: u64 = 40_000;

/// The scenario.
pub(crate) struct PoolFailover;

impl Scenario for PoolFailover {
    fn name(&self) -> &'static str {
        "pool"
    }

    fn about(&self) -> &'static str {
        "clients ask a failover pool whose workers panic, stop or dawdle: every ask gets exactly one answer or typed error"
    }

    fn instance(&self, faults: &Faults) -> Box<dyn Instance> {
        Box::new(Run { exact: !faults.pressure, shared: Arc::new(Shared::default()), plan: None, observer: None })
    }
}

/// The value a worker answers for request `id`.
fn value_of(id: u64) -> u64 {
    id.wrapping_mul(3).wrapping_add(1)
}

/// How a client's ask ended.
#[derive(Clone, Debug, PartialEq)]
enum Answer {
    Value(u64),
    Pool(PoolError),
    Ask(AskError),
    /// The engine refused the send (`SendError`): typed, at once.
    Refused,
}

/// What the agents share with the check (one thread runs a simulation; the locks are for
/// `Send`).
struct Shared {
    /// Per request id, every answer its client got.
    answers: Mutex<Vec<Vec<Answer>>>,
    /// Per request id, the workers whose handler took it.
    handled: Mutex<Vec<Vec<usize>>>,
    /// Per worker, whether it died (panicked or stopped).
    died: Mutex<Vec<bool>>,
    /// The pool's figures, once the observer got them (or why not).
    stats: Mutex<Option<Result<PoolStats, AskError>>>,
}

impl Default for Shared {
    fn default() -> Self {
        let requests = CLIENTS * ASKS as usize;
        Self {
            answers: Mutex::new(vec![Vec::new(); requests]),
            handled: Mutex::new(vec![Vec::new(); requests]),
            died: Mutex::new(vec![false; WORKERS]),
            stats: Mutex::new(None),
        }
    }
}

/// Locks `m` (never contended; a poisoned lock is still read).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The seeded shape of one run (kept for the failure messages).
#[derive(Debug)]
struct Plan {
    balancer: BalancerKind,
    failover: Option<u32>,
    max_in_flight: usize,
    fates: Vec<Fate>,
}

/// What becomes of a worker.
#[derive(Clone, Copy, Debug)]
enum Fate {
    Lives,
    /// Panics on its n-th request (1-based), before answering it.
    Panics(u64),
    /// Stops itself after answering its n-th request.
    Stops(u64),
}

type Msg = PoolMsg<WorkMsg, u64, u64>;

struct Run {
    /// Whether the pool's figures must equal what the clients saw (no `pressure`).
    exact: bool,
    shared: Arc<Shared>,
    plan: Option<Plan>,
    observer: Option<Addr<ObserverMsg>>,
}

impl Run {
    fn draw_plan(rng: &mut SimRng) -> Plan {
        let balancer = match rng.below(4) {
            0 => BalancerKind::RoundRobin,
            1 => BalancerKind::LeastLoaded,
            2 => BalancerKind::PowerOfTwo { seed: rng.next_u64() },
            _ => BalancerKind::ResponseTime { alpha: 0.3 },
        };
        let failover = match rng.below(4) {
            0 => None,
            n => Some(n as u32),
        };
        let max_in_flight = if rng.chance(0.25) { 1 + rng.below(4) as usize } else { 64 };
        // One seed in ten dooms every worker: the last asks then meet `NoWorker`.
        let deaths = if rng.chance(0.1) { 2 } else { 6 };
        let fates = (0..WORKERS)
            .map(|_| match rng.below(deaths) {
                0 => Fate::Panics(1 + rng.below(20)),
                1 => Fate::Stops(1 + rng.below(20)),
                _ => Fate::Lives,
            })
            .collect();
        Plan { balancer, failover, max_in_flight, fates }
    }
}

impl Instance for Run {
    fn start(&mut self, world: &mut World) -> Result<(), String> {
        let plan = Self::draw_plan(&mut world.rng);
        let mut workers = Vec::with_capacity(WORKERS);
        for (i, fate) in plan.fates.iter().enumerate() {
            let slow = world.rng.chance(0.3);
            let rng = SimRng::new(world.rng.next_u64());
            let worker =
                Worker { index: i, fate: *fate, slow, rng, taken: 0, pending: Vec::new(), shared: self.shared.clone() };
            workers.push(world.spawn(i % world.shards(), worker)?);
        }
        let config = PoolConfig { ask_timeout: POOL_TIMEOUT, max_in_flight: plan.max_in_flight };
        let pool = Pool::new(workers, plan.balancer.build()).with_asks(WorkMsg::Work).with_config(config);
        let pool = match plan.failover {
            Some(attempts) => pool.with_failover(attempts),
            None => pool,
        };
        let pool: Addr<Msg> = world.spawn(0, pool)?;
        for c in 0..CLIENTS {
            let first = c as u64 * ASKS;
            let client = Client {
                pool,
                next: first,
                end: first + ASKS,
                in_flight: 0,
                retry_armed: false,
                shared: self.shared.clone(),
            };
            let addr = world.spawn(c + 1, client)?;
            world.send(addr, ClientMsg::Fill)?;
        }
        self.observer = Some(world.spawn(1, Observer { pool, shared: self.shared.clone() })?);
        self.plan = Some(plan);
        Ok(())
    }

    fn on_quiet(&mut self, world: &mut World, phase: u32) -> bool {
        match (phase, self.observer) {
            (0, Some(observer)) => world.send(observer, ObserverMsg::Look).is_ok(),
            _ => false,
        }
    }

    fn check(&mut self, _world: &World) -> Result<(), String> {
        let plan = self.plan.as_ref().ok_or("the run never started")?;
        let seen = self.check_answers().map_err(|e| format!("{e} (plan {plan:?})"))?;
        self.check_handled().map_err(|e| format!("{e} (plan {plan:?})"))?;
        let stats = lock(&self.shared.stats).clone();
        let stats = match stats {
            Some(Ok(stats)) => stats,
            Some(Err(e)) => return Err(format!("the observer's stats ask failed: {e}")),
            None => return Err("the observer got no stats".into()),
        };
        self.check_stats(&stats, &seen).map_err(|e| format!("{e} (plan {plan:?}; seen {seen:?}; stats {stats:?})"))
    }
}

/// What the clients saw, by kind of answer.
#[derive(Debug, Default)]
struct Seen {
    values: u64,
    pool_errors: u64,
    ask_errors: u64,
    refused: u64,
}

impl Run {
    /// Every request: exactly one answer, and a value only the right one.
    fn check_answers(&self) -> Result<Seen, String> {
        let answers = lock(&self.shared.answers);
        let mut seen = Seen::default();
        for (id, got) in answers.iter().enumerate() {
            let id = id as u64;
            match got.as_slice() {
                [] => return Err(format!("request {id} was lost: no answer, no typed error")),
                [one] => match one {
                    Answer::Value(v) if *v == value_of(id) => seen.values += 1,
                    Answer::Value(v) => return Err(format!("request {id} got {v}, the value of another request")),
                    Answer::Pool(_) => seen.pool_errors += 1,
                    Answer::Ask(_) => seen.ask_errors += 1,
                    Answer::Refused => seen.refused += 1,
                },
                many => return Err(format!("request {id} got {} answers: {many:?}", many.len())),
            }
        }
        let total = seen.values + seen.pool_errors + seen.ask_errors + seen.refused;
        if total != CLIENTS as u64 * ASKS {
            return Err(format!("{total} answers for {} asks", CLIENTS as u64 * ASKS));
        }
        if self.exact && (seen.ask_errors != 0 || seen.refused != 0) {
            return Err(format!("without pressure a client got an engine error or a refusal: {seen:?}"));
        }
        Ok(seen)
    }

    /// No request ran twice; every value came from exactly one handler.
    fn check_handled(&self) -> Result<(), String> {
        let handled = lock(&self.shared.handled);
        let answers = lock(&self.shared.answers);
        for (id, (workers, got)) in handled.iter().zip(answers.iter()).enumerate() {
            if workers.len() > 1 {
                return Err(format!("request {id} ran in workers {workers:?}: failover repeated it"));
            }
            if matches!(got.as_slice(), [Answer::Value(_)]) && workers.len() != 1 {
                return Err(format!("request {id} got a value but ran in workers {workers:?}"));
            }
        }
        Ok(())
    }

    /// The pool's figures add up and agree with the clients.
    fn check_stats(&self, stats: &PoolStats, seen: &Seen) -> Result<(), String> {
        if stats.in_flight != 0 {
            return Err(format!("{} asks still in flight at the end", stats.in_flight));
        }
        let mut ok = 0;
        for (i, w) in stats.workers.iter().enumerate() {
            if w.outstanding != 0 || w.asks != w.ok + w.failed || w.picks != w.tells + w.asks + w.refused {
                return Err(format!("worker {i}'s figures do not add up"));
            }
            ok += w.ok;
        }
        if ok != stats.asks_ok {
            return Err(format!("workers answered {ok} asks, the pool counts {}", stats.asks_ok));
        }
        let died = lock(&self.shared.died);
        if let Some(i) = (0..WORKERS).find(|&i| died[i] && stats.workers[i].alive) {
            return Err(format!("worker {i} died and the pool still picks it"));
        }
        let asks = CLIENTS as u64 * ASKS;
        let settled = stats.asks_ok + stats.asks_failed;
        if self.exact {
            if stats.asks_ok != seen.values || stats.asks_failed != seen.pool_errors {
                return Err("the pool's answers differ from what the clients saw".into());
            }
        } else if stats.asks_ok < seen.values || stats.asks_failed < seen.pool_errors || settled > asks {
            return Err("the clients saw answers the pool never gave".into());
        }
        if settled + seen.refused > asks {
            return Err(format!("the pool settled {settled} asks and {} were refused, of {asks}", seen.refused));
        }
        Ok(())
    }
}

/// A worker's message: a request (id and reply) or a slow answer falling due (by its key in
/// the worker's `pending`).
enum WorkMsg {
    Work(u64, ReplyTo<u64>),
    Finish(u64),
}

/// Answers `Work(id)` with [`value_of`]`(id)`, at once or (slow) after a seeded delay; dies
/// per its fate.
struct Worker {
    index: usize,
    fate: Fate,
    slow: bool,
    rng: SimRng,
    /// Requests taken so far.
    taken: u64,
    /// A slow worker's answers not yet due: (key, request id, reply). Kept here, not in the
    /// timer's message: see the module documentation.
    pending: Vec<(u64, u64, ReplyTo<u64>)>,
    shared: Arc<Shared>,
}

impl Agent for Worker {
    type Msg = WorkMsg;

    fn handle(&mut self, msg: WorkMsg, ctx: &mut Ctx<'_>) {
        match msg {
            WorkMsg::Work(id, reply) => {
                self.taken += 1;
                if let Some(h) = lock(&self.shared.handled).get_mut(id as usize) {
                    h.push(self.index);
                }
                if matches!(self.fate, Fate::Panics(n) if n == self.taken) {
                    lock(&self.shared.died)[self.index] = true;
                    panic!("{INJECTED}: pool worker panics on request {id}");
                }
                if self.slow {
                    let delay = Duration::from_micros(1 + self.rng.below(SLOW_MAX_US));
                    self.pending.push((self.taken, id, reply));
                    ctx.send_after(ctx.myself(), WorkMsg::Finish(self.taken), delay);
                } else {
                    ctx.reply(reply, value_of(id));
                }
                if matches!(self.fate, Fate::Stops(n) if n == self.taken) {
                    lock(&self.shared.died)[self.index] = true;
                    ctx.stop_self();
                }
            }
            WorkMsg::Finish(key) => {
                if let Some(at) = self.pending.iter().position(|p| p.0 == key) {
                    let (_, id, reply) = self.pending.swap_remove(at);
                    ctx.reply(reply, value_of(id));
                }
            }
        }
    }
}

/// Asks the pool for requests `next..end`, at most [`WINDOW`] at a time.
struct Client {
    pool: Addr<Msg>,
    next: u64,
    end: u64,
    in_flight: u32,
    /// A `Fill` timer is pending (after a refusal with nothing in flight).
    retry_armed: bool,
    shared: Arc<Shared>,
}

enum ClientMsg {
    /// Ask while the window has room.
    Fill,
    /// The answer to request `.0`.
    Answer(u64, Result<Result<u64, PoolError>, AskError>),
}

impl Client {
    fn record(&self, id: u64, answer: Answer) {
        if let Some(got) = lock(&self.shared.answers).get_mut(id as usize) {
            got.push(answer);
        }
    }

    /// Asks until the window is full; a refused ask is answered here (typed, at once) and
    /// ends the round: the next answer, or a timer when none is due, asks again.
    fn fill(&mut self, ctx: &mut Ctx<'_>) {
        while self.in_flight < WINDOW && self.next < self.end {
            let id = self.next;
            self.next += 1;
            let asked = ctx
                .ask(self.pool, move |r| PoolMsg::Ask(id, r))
                .timeout(CLIENT_TIMEOUT)
                .then(move |a| ClientMsg::Answer(id, a));
            if asked.is_ok() {
                self.in_flight += 1;
                continue;
            }
            self.record(id, Answer::Refused);
            if self.in_flight == 0 && !self.retry_armed && self.next < self.end {
                self.retry_armed = true;
                ctx.send_after(ctx.myself(), ClientMsg::Fill, Duration::from_micros(500));
            }
            return;
        }
    }
}

impl Agent for Client {
    type Msg = ClientMsg;

    fn handle(&mut self, msg: ClientMsg, ctx: &mut Ctx<'_>) {
        match msg {
            ClientMsg::Fill => {
                self.retry_armed = false;
                self.fill(ctx);
            }
            ClientMsg::Answer(id, answer) => {
                self.in_flight = self.in_flight.saturating_sub(1);
                let answer = match answer {
                    Ok(Ok(v)) => Answer::Value(v),
                    Ok(Err(e)) => Answer::Pool(e),
                    Err(e) => Answer::Ask(e),
                };
                self.record(id, answer);
                self.fill(ctx);
            }
        }
    }
}

/// Asks the pool for its figures when told to look.
struct Observer {
    pool: Addr<Msg>,
    shared: Arc<Shared>,
}

enum ObserverMsg {
    Look,
    Stats(Result<PoolStats, AskError>),
}

impl Agent for Observer {
    type Msg = ObserverMsg;

    fn handle(&mut self, msg: ObserverMsg, ctx: &mut Ctx<'_>) {
        let got = match msg {
            ObserverMsg::Look => match ctx.ask(self.pool, PoolMsg::Stats).then(ObserverMsg::Stats) {
                Ok(()) => return,
                Err(_) => Err(AskError::Overloaded(self.pool.shard())),
            },
            ObserverMsg::Stats(got) => got,
        };
        *lock(&self.shared.stats) = Some(got);
    }
}
