//! `fj-throughput` and `fj-create`: Savina's fork-join workloads.
//!
//! Every message is handled by computing `sin(37.2)^2` through `std::hint::black_box`, so the
//! work cannot be folded away; [`work`] is that computation.
//!
//! **fj-throughput** ([`run_throughput`]). A [`ThroughputDriver`] (agent 0, shard 0) sends
//! `messages` `Work` messages to each of `agents` [`Worker`]s, round-robin (up to
//! `burst / agents` to each per round), `burst` sends per turn, then yields with a self-message. Flow control keeps every mailbox bounded even across
//! shards (where a full mailbox turns an arriving message into a dead letter instead of refusing
//! the send): the driver keeps at most `window` messages unacknowledged per worker, and a worker
//! acknowledges with a cumulative `Progress` every `window / 2` messages and at its last one
//! (so `agents * (2 + messages / (window / 2))` extra messages, about 0.4 % at the defaults).
//! A refused send (`Full`) is retried on a later turn. Timed: from the driver's first send to
//! the last worker's final `Progress`; `msgs_per_s` = `agents * messages` / that time.
//! Checks: every worker reported, and answered the host's count query with, exactly `messages`.
//!
//! **fj-create** ([`run_create`]). A [`CreateDriver`] on shard 0 runs `agents` times: spawn a
//! [`OneShot`] agent, send it one `Work`; the agent computes, counts itself in a shared atomic
//! counter and stops itself. `local` spawns everything on shard 0 with `Ctx::spawn`; `cross`
//! spawns agent `k` on shard `k % shards` with `Ctx::spawn_on` (asynchronous for another shard:
//! the `Work` is sent when the new id arrives in `on_reply`, at most `window` remote spawns in
//! flight). The driver spawns up to `burst` agents per turn, then yields; once all are spawned it
//! reads the counter once per turn (a self-message each dispatcher pass) until it reaches
//! `agents`. Timed: the first spawn to the turn that sees the counter complete; `ns_per_op` =
//! that time / `agents` (one spawn + one message + one stop), `msgs_per_s` = `agents` / time.
//! Checks: the counter is exactly `agents`, every spawn succeeded, and every shard holds as many
//! live agents after the run as before it (nothing else may spawn on the engine meanwhile).

use crate::fib::live_agents;
use crate::setup::{self, Placement};
use crate::stats;
use crate::BenchError;
use nexus_engine::agent::{Addr, Agent, AgentId, Ctx, SpawnError, SpawnPlacement, Spawned};
use nexus_engine::ask::{AskError, ReplyTo};
use nexus_engine::engine::EngineHandle;
use nexus_engine::shard::ShardLimits;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const THROUGHPUT: &str = "fj-throughput";
const CREATE: &str = "fj-create";

/// The work of one message: `sin(37.2)^2`, opaque to the optimiser.
#[inline]
pub fn work() -> f64 {
    let s = black_box(37.2_f64).sin();
    black_box(s * s)
}

/// What one fj-throughput run does.
#[derive(Clone, Debug)]
pub struct ThroughputParams {
    /// Workers (Savina: 60).
    pub agents: u32,
    /// Messages per worker (Savina: 10,000).
    pub messages: u64,
    /// Messages unacknowledged per worker at most (below the mailbox capacity).
    pub window: u32,
    /// Sends per driver turn before it yields.
    pub burst: u32,
    /// Where the workers live.
    pub placement: Placement,
}

impl Default for ThroughputParams {
    fn default() -> Self {
        Self { agents: 60, messages: 10_000, window: 512, burst: 256, placement: Placement::Cross }
    }
}

/// What one fj-throughput run measured.
#[derive(Clone, Debug)]
pub struct ThroughputOutcome {
    /// Where the workers lived.
    pub placement: Placement,
    /// Messages handled over all workers (checked).
    pub messages: u64,
    /// From the first send to the last final `Progress`.
    pub elapsed: Duration,
    /// `Work` messages handled per second.
    pub msgs_per_s: f64,
}

/// The driver's answer to the host: elapsed, or why it failed.
type DriverReport = Result<Duration, String>;

/// Messages of a [`Worker`].
#[derive(Debug)]
pub enum WorkerMsg {
    /// Compute once.
    Work,
    /// Resend the acknowledgement that came back `Full` (sent to itself).
    Retry,
    /// Reply with the messages handled.
    Count(ReplyTo<u64>),
}

/// Handles `Work` and acknowledges to its driver.
pub struct Worker {
    driver: Addr<DriverMsg>,
    index: u32,
    target: u64,
    ack_every: u64,
    handled: u64,
    acked: u64,
    acc: f64,
    retrying: bool,
}

impl Agent for Worker {
    type Msg = WorkerMsg;

    #[inline]
    fn handle(&mut self, msg: WorkerMsg, ctx: &mut Ctx<'_>) {
        match msg {
            WorkerMsg::Work => {
                self.acc += work();
                self.handled += 1;
            }
            WorkerMsg::Retry => self.retrying = false,
            WorkerMsg::Count(reply) => return ctx.reply(reply, self.handled),
        }
        let due =
            self.handled - self.acked >= self.ack_every || (self.handled == self.target && self.acked < self.target);
        if due && !self.retrying {
            let progress = DriverMsg::Progress { worker: self.index, handled: self.handled };
            if ctx.send(self.driver, progress).is_ok() {
                self.acked = self.handled;
            } else {
                // If even the self-message is refused the run stalls and the host's ask times out.
                self.retrying = ctx.send(ctx.myself(), WorkerMsg::Retry).is_ok();
            }
        }
        black_box(self.acc);
    }
}

/// Messages of the [`ThroughputDriver`].
#[derive(Debug)]
pub enum DriverMsg {
    /// Send every worker its messages, then reply with the elapsed time.
    Run {
        /// The workers, by index.
        workers: Vec<Addr<WorkerMsg>>,
        /// Where the report goes.
        reply: ReplyTo<DriverReport>,
    },
    /// A worker has handled `handled` messages in all.
    Progress {
        /// The worker's index.
        worker: u32,
        /// Messages it handled so far.
        handled: u64,
    },
    /// Keep sending (sent to itself).
    Continue,
}

/// Sends `Work` round-robin under a per-worker window.
#[derive(Default)]
pub struct ThroughputDriver {
    workers: Vec<Addr<WorkerMsg>>,
    sent: Vec<u64>,
    acked: Vec<u64>,
    messages: u64,
    window: u64,
    burst: u32,
    done: usize,
    next: usize,
    continuing: bool,
    started: Option<Instant>,
    reply: Option<ReplyTo<DriverReport>>,
}

impl ThroughputDriver {
    fn pump(&mut self, ctx: &mut Ctx<'_>) {
        let n = self.workers.len();
        // Up to `burst / n` messages per worker per round: strict one-by-one rounds would cost a
        // scan of every worker per message once most windows are full.
        let per_round = (u64::from(self.burst) / n as u64).max(1);
        let mut budget = u64::from(self.burst);
        let mut idle = 0;
        // A whole round without a send means every window is full, done, or refused.
        while budget > 0 && idle < n {
            let i = self.next;
            self.next = (self.next + 1) % n;
            let room = self.window - (self.sent[i] - self.acked[i]);
            let want = (self.messages - self.sent[i]).min(room).min(per_round).min(budget);
            let mut k = 0;
            while k < want && ctx.send(self.workers[i], WorkerMsg::Work).is_ok() {
                k += 1;
            }
            (self.sent[i], budget) = (self.sent[i] + k, budget - k);
            idle = if k == 0 { idle + 1 } else { 0 };
        }
        // Out of burst, or a refusal left a worker short of its window: resume next turn.
        let more = (0..n).any(|i| self.sent[i] < self.messages && self.sent[i] - self.acked[i] < self.window);
        if more && !self.continuing {
            self.continuing = ctx.send(ctx.myself(), DriverMsg::Continue).is_ok();
            if !self.continuing {
                self.finish(ctx, Err("the driver could not send itself a continue".into()));
            }
        }
    }

    fn finish(&mut self, ctx: &mut Ctx<'_>, result: DriverReport) {
        if let Some(reply) = self.reply.take() {
            ctx.reply(reply, result);
        }
    }
}

impl Agent for ThroughputDriver {
    type Msg = DriverMsg;

    fn handle(&mut self, msg: DriverMsg, ctx: &mut Ctx<'_>) {
        match msg {
            DriverMsg::Progress { worker, handled } => {
                let i = worker as usize;
                if handled > self.sent[i] || handled < self.acked[i] {
                    let why = format!("worker {i} reported {handled} handled after {} sent", self.sent[i]);
                    return self.finish(ctx, Err(why));
                }
                self.acked[i] = handled;
                if handled == self.messages {
                    self.done += 1;
                    if self.done == self.workers.len() {
                        let elapsed = self.started.map_or(Duration::ZERO, |t| t.elapsed());
                        return self.finish(ctx, Ok(elapsed));
                    }
                }
                self.pump(ctx);
            }
            DriverMsg::Continue => {
                self.continuing = false;
                self.pump(ctx);
            }
            DriverMsg::Run { workers, reply } => {
                self.sent = vec![0; workers.len()];
                self.acked = vec![0; workers.len()];
                self.workers = workers;
                self.reply = Some(reply);
                self.started = Some(Instant::now());
                self.pump(ctx);
            }
        }
    }
}

/// Spawns a driver and `params.agents` workers on a running engine, runs fj-throughput once,
/// checks it (see the module documentation) and stops every agent.
pub fn run_throughput(handle: &EngineHandle, params: &ThroughputParams) -> Result<ThroughputOutcome, BenchError> {
    let shards = handle.shards();
    params.placement.check(THROUGHPUT, shards)?;
    let capacity = u64::from(ShardLimits::default().mailbox_capacity);
    let window = u64::from(params.window);
    let ack_every = (window / 2).max(1);
    // Progress messages in flight to the driver: at most window / ack_every + 1 per worker.
    let progress = u64::from(params.agents) * (window.div_ceil(ack_every.max(1)) + 1);
    if params.agents == 0 || params.messages == 0 || window == 0 || window + 16 > capacity || progress + 16 > capacity {
        return Err(BenchError::params(
            THROUGHPUT,
            format!(
                "agents, messages and window must be positive, the window at most {}, and agents at most {}",
                capacity - 16,
                (capacity - 16) / 3
            ),
        ));
    }
    let shard_of = |k: usize| params.placement.shard_of(k, shards);
    let (messages, burst, agents) = (params.messages, params.burst.max(1), params.agents);
    let driver = setup::spawn_on(handle, THROUGHPUT, 0, move || ThroughputDriver {
        messages,
        window,
        burst,
        ..ThroughputDriver::default()
    })?;
    let mut workers = Vec::with_capacity(agents as usize);
    for index in 0..agents {
        let worker = move || Worker {
            driver,
            index,
            target: messages,
            ack_every,
            handled: 0,
            acked: 0,
            acc: 0.0,
            retrying: false,
        };
        workers.push(setup::spawn_on(handle, THROUGHPUT, shard_of(index as usize + 1), worker)?);
    }
    let total = u64::from(agents) * messages;
    let given = workers.clone();
    let timeout = setup::timeout_for(total, Duration::from_micros(5));
    let elapsed = setup::ask(handle, THROUGHPUT, "run fj-throughput", driver, timeout, move |reply| DriverMsg::Run {
        workers: given,
        reply,
    });
    let mut counts = Vec::with_capacity(workers.len());
    for &w in &workers {
        counts.push(setup::ask(handle, THROUGHPUT, "count handled", w, Duration::from_secs(10), WorkerMsg::Count));
    }
    for &w in &workers {
        handle.stop(w.id())?;
    }
    handle.stop(driver.id())?;
    let elapsed = elapsed?.map_err(|why| BenchError::check(THROUGHPUT, why))?;
    for (i, count) in counts.into_iter().enumerate() {
        let count = count?;
        if count != messages {
            return Err(BenchError::check(
                THROUGHPUT,
                format!("worker {i} handled {count} messages; expected {messages}"),
            ));
        }
    }
    Ok(ThroughputOutcome {
        placement: params.placement,
        messages: total,
        elapsed,
        msgs_per_s: stats::per_second(total, elapsed),
    })
}

/// What one fj-create run does.
#[derive(Clone, Debug)]
pub struct CreateParams {
    /// Agents created, one message each (Savina: 40,000).
    pub agents: u64,
    /// Spawns per driver turn before it yields.
    pub burst: u32,
    /// Remote spawns (`cross`) waiting for their id at most.
    pub window: u32,
    /// Where the agents are spawned.
    pub placement: Placement,
}

impl Default for CreateParams {
    fn default() -> Self {
        Self { agents: 40_000, burst: 256, window: 1024, placement: Placement::Cross }
    }
}

/// What one fj-create run measured.
#[derive(Clone, Debug)]
pub struct CreateOutcome {
    /// Where the agents were spawned.
    pub placement: Placement,
    /// Agents created, each handling one message (checked).
    pub agents: u64,
    /// From the first spawn to the driver seeing every message handled.
    pub elapsed: Duration,
    /// Nanoseconds per spawn + message + stop.
    pub ns_per_op: f64,
    /// Messages handled (one per agent) per second.
    pub msgs_per_s: f64,
}

/// Handles one `Work` message, counts it and stops itself.
pub struct OneShot {
    handled: Arc<AtomicU64>,
}

impl Agent for OneShot {
    type Msg = ();

    fn handle(&mut self, (): (), ctx: &mut Ctx<'_>) {
        black_box(work());
        self.handled.fetch_add(1, Ordering::Release);
        ctx.stop_self();
    }
}

/// Messages of the [`CreateDriver`].
#[derive(Debug)]
pub enum CreateMsg {
    /// Create `agents` one-shot agents (on every shard round-robin when `cross`), then reply.
    Run {
        /// Agents to create.
        agents: u64,
        /// Spread them over every shard.
        cross: bool,
        /// Where the elapsed time goes.
        reply: ReplyTo<DriverReport>,
    },
    /// Keep spawning, or look at the counter again (sent to itself).
    Continue,
    /// A remote spawn answered.
    Spawned(Result<Result<AgentId, SpawnError>, AskError>),
}

/// Spawns one-shot agents and sends each its message.
#[derive(Default)]
pub struct CreateDriver {
    handled: Arc<AtomicU64>,
    total: u64,
    next: u64,
    in_flight: u64,
    unsent: Vec<Addr<()>>,
    cross: bool,
    burst: u32,
    window: u64,
    started: Option<Instant>,
    reply: Option<ReplyTo<DriverReport>>,
}

impl CreateDriver {
    fn work(&mut self, ctx: &mut Ctx<'_>, to: Addr<()>) {
        if ctx.send(to, ()).is_err() {
            self.unsent.push(to);
        }
    }

    /// A remote spawn answered: put the new agent to work, or end the run with why not.
    fn spawned(&mut self, answer: Result<Result<AgentId, SpawnError>, AskError>, ctx: &mut Ctx<'_>) {
        self.in_flight = self.in_flight.saturating_sub(1);
        match answer {
            Ok(Ok(id)) => self.work(ctx, Addr::from_id(id)),
            Ok(Err(e)) => self.finish(ctx, Err(format!("a remote spawn failed: {e}"))),
            Err(e) => self.finish(ctx, Err(format!("a remote spawn got no answer: {e}"))),
        }
    }

    fn pump(&mut self, ctx: &mut Ctx<'_>) {
        for to in std::mem::take(&mut self.unsent) {
            self.work(ctx, to);
        }
        let (here, shards) = (ctx.shard(), ctx.shards());
        let mut budget = self.burst;
        while budget > 0 && self.next < self.total && self.in_flight < self.window {
            let shard = if self.cross { (self.next % shards as u64) as usize } else { here };
            let handled = self.handled.clone();
            let spawned = if shard == here {
                ctx.spawn(OneShot { handled }).map(Spawned::Here)
            } else {
                ctx.spawn_on(SpawnPlacement::Shard(shard), move || OneShot { handled }, CreateMsg::Spawned)
            };
            match spawned {
                Ok(Spawned::Here(to)) => self.work(ctx, to),
                Ok(Spawned::Pending) => self.in_flight += 1,
                // The way to that shard is full: try again next turn.
                Err(SpawnError::Overloaded(_)) => break,
                Err(e) => return self.finish(ctx, Err(format!("spawn {} failed: {e}", self.next))),
            }
            self.next += 1;
            budget -= 1;
        }
        let all_sent = self.next == self.total && self.in_flight == 0 && self.unsent.is_empty();
        if all_sent && self.handled.load(Ordering::Acquire) == self.total {
            let elapsed = self.started.map_or(Duration::ZERO, |t| t.elapsed());
            self.finish(ctx, Ok(elapsed));
        } else if ctx.send(ctx.myself(), CreateMsg::Continue).is_err() {
            self.finish(ctx, Err("the driver could not send itself a continue".into()));
        }
    }

    fn finish(&mut self, ctx: &mut Ctx<'_>, result: DriverReport) {
        if let Some(reply) = self.reply.take() {
            ctx.reply(reply, result);
        }
    }
}

impl Agent for CreateDriver {
    type Msg = CreateMsg;

    fn handle(&mut self, msg: CreateMsg, ctx: &mut Ctx<'_>) {
        match msg {
            CreateMsg::Continue if self.reply.is_some() => self.pump(ctx),
            CreateMsg::Continue => {}
            CreateMsg::Spawned(answer) => self.spawned(answer, ctx),
            CreateMsg::Run { agents, cross, reply } => {
                (self.total, self.next, self.cross) = (agents, 0, cross);
                self.reply = Some(reply);
                self.started = Some(Instant::now());
                self.pump(ctx);
            }
        }
    }
}

/// Spawns a driver on shard 0 of a running engine, runs fj-create once, checks it (see the
/// module documentation) and stops the driver.
pub fn run_create(handle: &EngineHandle, params: &CreateParams) -> Result<CreateOutcome, BenchError> {
    params.placement.check(CREATE, handle.shards())?;
    let handled = Arc::new(AtomicU64::new(0));
    let counter = handled.clone();
    let (burst, window) = (params.burst.max(1), u64::from(params.window.max(1)));
    let driver = setup::spawn_on(handle, CREATE, 0, move || CreateDriver {
        handled: counter,
        burst,
        window,
        ..CreateDriver::default()
    })?;
    let before = live_agents(&handle.stats()?);
    let (agents, cross) = (params.agents, params.placement == Placement::Cross);
    let timeout = setup::timeout_for(agents, Duration::from_micros(20));
    let elapsed =
        setup::ask(handle, CREATE, "run fj-create", driver, timeout, |reply| CreateMsg::Run { agents, cross, reply });
    let after = live_agents(&handle.stats()?);
    handle.stop(driver.id())?;
    let elapsed = elapsed?.map_err(|why| BenchError::check(CREATE, why))?;
    let counted = handled.load(Ordering::Acquire);
    if counted != agents || before != after {
        return Err(BenchError::check(
            CREATE,
            format!("{counted} messages handled, live agents per shard {before:?} before, {after:?} after; expected {agents} and no change"),
        ));
    }
    Ok(CreateOutcome {
        placement: params.placement,
        agents,
        elapsed,
        ns_per_op: stats::ns_per(elapsed, agents),
        msgs_per_s: stats::per_second(agents, elapsed),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::setup::EngineSettings;

    #[test]
    fn fork_join_workloads_check_both_ways() {
        let engine = EngineSettings::test(2).build().unwrap();
        let handle = engine.handle();
        for placement in Placement::BOTH {
            // A window and a burst smaller than the work exercise the flow control and yields.
            let params = ThroughputParams { agents: 5, messages: 1_000, window: 64, burst: 100, placement };
            assert_eq!(run_throughput(&handle, &params).unwrap().messages, 5_000);
            let params = CreateParams { agents: 3_000, burst: 100, window: 50, placement };
            assert_eq!(run_create(&handle, &params).unwrap().agents, 3_000);
        }
        setup::shutdown(engine, CREATE).unwrap();
    }

    /// Full Savina sizes, for figures:
    /// `cargo test --release -p nexus-bench --lib fork_join -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn full_size() {
        let engine = EngineSettings::bench(2).build().unwrap();
        let handle = engine.handle();
        for placement in Placement::BOTH {
            let out = run_throughput(&handle, &ThroughputParams { placement, ..ThroughputParams::default() }).unwrap();
            println!("{THROUGHPUT} {}: {out:?}", placement.as_str());
            let out = run_create(&handle, &CreateParams { placement, ..CreateParams::default() }).unwrap();
            println!("{CREATE} {}: {out:?}", placement.as_str());
        }
        setup::shutdown(engine, CREATE).unwrap();
    }
}
