//! `fib`: Savina's Fibonacci. One agent per call of the naive recursion.
//!
//! The host asks a driver [`FibAgent`] (shard 0) to run; it starts the clock, spawns the root
//! call agent and sends it `Request(n)`. An agent receiving `Request(n)` answers its parent at
//! once with `Response { value: n, agents: 1 }` when `n <= 1`; otherwise it spawns two children,
//! sends them `Request(n - 1)` and `Request(n - 2)`, and when both have answered it answers its
//! parent with the sum of their values and of their agent counts plus one. Every call agent
//! stops itself right after answering. The driver stops the clock when the root answers.
//!
//! Placement: `local` spawns every call agent on shard 0 (`Ctx::spawn`, synchronous); `cross`
//! spawns each child with `SpawnPlacement::RoundRobin` from its parent's shard, which for another
//! shard is asynchronous: the child's id arrives in the parent's `on_reply` and the `Request` is
//! sent then. A spawn refused because the way to a shard is full is retried on a later turn.
//!
//! Timed: the driver's first spawn to the root's answer (every spawn, request, answer and stop).
//! `agents_per_s` = call agents / that time. Checks: the value is fib(n) (fib(25) = 75,025); the
//! agents counted up the tree equal the calls of the naive recursion, 2 fib(n + 1) - 1
//! (242,785 for n = 25); the engine's spawn counters grew by exactly that many between two
//! stats snapshots around the run (a stats request sees every stop asked for before it); and
//! every shard holds as many live agents after the run as before it (nothing else may spawn on
//! the engine meanwhile).

use crate::setup::{self, Placement};
use crate::stats;
use crate::BenchError;
use nexus_engine::agent::{Addr, Agent, AgentId, Ctx, SpawnError, SpawnPlacement, Spawned};
use nexus_engine::ask::{AskError, ReplyTo};
use nexus_engine::engine::EngineHandle;
use std::time::{Duration, Instant};

const WORKLOAD: &str = "fib";

/// What one fib run does.
#[derive(Clone, Debug)]
pub struct FibParams {
    /// The argument (Savina: 25).
    pub n: u32,
    /// Where the call agents are spawned.
    pub placement: Placement,
}

impl Default for FibParams {
    fn default() -> Self {
        Self { n: 25, placement: Placement::Cross }
    }
}

/// What one fib run measured.
#[derive(Clone, Debug)]
pub struct FibOutcome {
    /// Where the agents were spawned.
    pub placement: Placement,
    /// fib(n) (checked).
    pub value: u64,
    /// Call agents spawned (checked).
    pub agents: u64,
    /// From the first spawn to the root's answer.
    pub elapsed: Duration,
    /// Call agents per second.
    pub agents_per_s: f64,
}

/// The driver's answer to the host: (value, agents, elapsed), or why the run failed.
type FibReport = Result<(u64, u64, Duration), String>;

/// Messages of a [`FibAgent`].
#[derive(Debug)]
pub enum FibMsg {
    /// (Driver only) compute fib(n) with one agent per call, then reply.
    Run {
        /// The argument.
        n: u32,
        /// Spawn children round-robin over every shard.
        cross: bool,
        /// Where the report goes.
        reply: ReplyTo<FibReport>,
    },
    /// Compute fib(n) and answer the parent.
    Request(u32),
    /// A child's answer.
    Response {
        /// fib of the child's argument.
        value: u64,
        /// Agents in the child's subtree, the child included.
        agents: u64,
        /// Whether every spawn of the subtree succeeded.
        ok: bool,
    },
    /// Retry refused spawns and sends (sent to itself).
    Retry,
    /// A remote spawn of the child computing fib(`n`) answered.
    Spawned {
        /// The child's argument.
        n: u32,
        /// How the spawn went.
        outcome: SpawnOutcome,
    },
}

/// How a remote spawn went, as a [`FibAgent`] needs to know it (kept small: it travels inline).
#[derive(Debug, Clone, Copy)]
pub enum SpawnOutcome {
    /// The child runs with this id.
    Child(AgentId),
    /// The shard was overloaded: spawn again later.
    Retry,
    /// The spawn failed for good.
    Failed,
}

impl SpawnOutcome {
    fn of(answer: Result<Result<AgentId, SpawnError>, AskError>) -> Self {
        match answer {
            Ok(Ok(child)) => Self::Child(child),
            Ok(Err(SpawnError::Overloaded(_))) => Self::Retry,
            _ => Self::Failed,
        }
    }
}

/// A call of the recursion, or (without a parent) the driver. Small, and without a heap
/// allocation unless a send or a spawn is refused: there is one per call.
pub struct FibAgent {
    parent: Option<Addr<FibMsg>>,
    value: u64,
    agents: u64,
    /// Refused sends (a child's request, or the answer to the parent), retried later.
    unsent: Vec<(Addr<FibMsg>, FibMsg)>,
    /// Children whose spawn was refused (their argument), retried later.
    unspawned: Vec<u32>,
    /// (Driver only) when the run started and where the report goes.
    driver: Option<Box<(Instant, ReplyTo<FibReport>)>>,
    waiting: u8,
    ok: bool,
    cross: bool,
    answered: bool,
    retrying: bool,
}

impl FibAgent {
    fn new(parent: Option<Addr<FibMsg>>, cross: bool) -> Self {
        Self {
            parent,
            value: 0,
            agents: 0,
            unsent: Vec::new(),
            unspawned: Vec::new(),
            driver: None,
            waiting: 0,
            ok: true,
            cross,
            answered: false,
            retrying: false,
        }
    }

    fn send(&mut self, to: Addr<FibMsg>, msg: FibMsg, ctx: &mut Ctx<'_>) {
        if let Err(e) = ctx.send(to, msg) {
            self.unsent.push((to, e.into_inner()));
        }
    }

    /// Spawns the child computing fib(n) and sends it its request, now or when its id arrives.
    fn spawn_child(&mut self, n: u32, ctx: &mut Ctx<'_>) {
        let (me, cross) = (Some(ctx.myself()), self.cross);
        let spawned = if cross {
            let answered = move |answer| FibMsg::Spawned { n, outcome: SpawnOutcome::of(answer) };
            ctx.spawn_on(SpawnPlacement::RoundRobin, move || FibAgent::new(me, true), answered)
        } else {
            ctx.spawn(FibAgent::new(me, false)).map(Spawned::Here)
        };
        match spawned {
            Ok(Spawned::Here(child)) => self.send(child, FibMsg::Request(n), ctx),
            Ok(Spawned::Pending) => {}
            Err(SpawnError::Overloaded(_)) => self.unspawned.push(n),
            Err(_) => self.child_failed(),
        }
    }

    fn child_failed(&mut self) {
        self.ok = false;
        self.waiting = self.waiting.saturating_sub(1);
    }

    /// A child (or a failed spawn) is accounted for: answer the parent when none is left.
    fn maybe_answer(&mut self, ctx: &mut Ctx<'_>) {
        if self.waiting > 0 || self.answered {
            return;
        }
        self.answered = true;
        let (value, agents, ok) = (self.value, self.agents + 1, self.ok);
        if let Some(parent) = self.parent {
            self.send(parent, FibMsg::Response { value, agents, ok }, ctx);
        } else if let Some(driver) = self.driver.take() {
            let (started, reply) = *driver;
            let result = if ok { Ok((value, self.agents, started.elapsed())) } else { Err("a spawn failed".into()) };
            ctx.reply(reply, result);
        }
    }

    /// Retries refused sends and spawns, yielding with a `Retry` while some are refused; stops
    /// the agent once it has answered and nothing is left to do.
    fn settle(&mut self, ctx: &mut Ctx<'_>) {
        for n in std::mem::take(&mut self.unspawned) {
            self.spawn_child(n, ctx);
        }
        for (to, msg) in std::mem::take(&mut self.unsent) {
            self.send(to, msg, ctx);
        }
        let left = !self.unsent.is_empty() || !self.unspawned.is_empty();
        if left && !self.retrying {
            // If even the self-message is refused this subtree stalls and the host's ask times out.
            self.retrying = ctx.send(ctx.myself(), FibMsg::Retry).is_ok();
        }
        if self.answered && !left && self.parent.is_some() {
            ctx.stop_self();
        }
    }
}

impl Agent for FibAgent {
    type Msg = FibMsg;

    fn handle(&mut self, msg: FibMsg, ctx: &mut Ctx<'_>) {
        match msg {
            FibMsg::Request(n) if n <= 1 => {
                self.value = u64::from(n);
                self.maybe_answer(ctx);
            }
            FibMsg::Request(n) => {
                self.waiting = 2;
                self.spawn_child(n - 1, ctx);
                self.spawn_child(n - 2, ctx);
                // Spawns that failed for good were already counted down.
                self.maybe_answer(ctx);
            }
            FibMsg::Response { value, agents, ok } => {
                self.value += value;
                self.agents += agents;
                self.ok &= ok;
                self.waiting = self.waiting.saturating_sub(1);
                self.maybe_answer(ctx);
            }
            FibMsg::Run { n, cross, reply } => {
                (self.cross, self.answered, self.driver) = (cross, false, Some(Box::new((Instant::now(), reply))));
                (self.value, self.agents, self.ok, self.waiting) = (0, 0, true, 1);
                self.spawn_child(n, ctx);
                self.maybe_answer(ctx);
            }
            FibMsg::Retry => self.retrying = false,
            FibMsg::Spawned { n, outcome } => match outcome {
                SpawnOutcome::Child(child) => self.send(Addr::from_id(child), FibMsg::Request(n), ctx),
                SpawnOutcome::Retry => self.unspawned.push(n),
                SpawnOutcome::Failed => {
                    self.child_failed();
                    self.maybe_answer(ctx);
                }
            },
        }
        self.settle(ctx);
    }
}

/// fib(n) and the calls of the naive recursion for it, 2 fib(n + 1) - 1.
pub fn expected(n: u32) -> (u64, u64) {
    let (mut a, mut b) = (0u64, 1u64);
    for _ in 0..n {
        (a, b) = (b, a.saturating_add(b));
    }
    (a, b.saturating_mul(2).saturating_sub(1))
}

/// Spawns a driver on shard 0 of a running engine, computes fib(`params.n`) once with one
/// agent per call, checks it (see the module documentation) and stops the driver.
pub fn run(handle: &EngineHandle, params: &FibParams) -> Result<FibOutcome, BenchError> {
    params.placement.check(WORKLOAD, handle.shards())?;
    if params.n > 40 {
        return Err(BenchError::params(WORKLOAD, "n above 40 would spawn hundreds of millions of agents"));
    }
    let (value, calls) = expected(params.n);
    let driver = setup::spawn_on(handle, WORKLOAD, 0, || FibAgent::new(None, false))?;
    let before = handle.stats()?;
    let (n, cross) = (params.n, params.placement == Placement::Cross);
    let timeout = setup::timeout_for(calls, Duration::from_micros(20));
    let report = setup::ask(handle, WORKLOAD, "compute fib", driver, timeout, |reply| FibMsg::Run { n, cross, reply });
    let after = handle.stats()?;
    handle.stop(driver.id())?;
    let (got, agents, elapsed) = report?.map_err(|why| BenchError::check(WORKLOAD, why))?;
    let spawned = after.totals().spawned.saturating_sub(before.totals().spawned);
    let (before, after) = (live_agents(&before), live_agents(&after));
    if got != value || agents != calls || spawned != calls || before != after {
        return Err(BenchError::check(
            WORKLOAD,
            format!(
                "fib({n}) = {got} from {agents} agents counted, {spawned} spawned, live agents per shard {before:?} \
                 before and {after:?} after; expected {value} from {calls} agents and no change"
            ),
        ));
    }
    Ok(FibOutcome {
        placement: params.placement,
        value,
        agents,
        elapsed,
        agents_per_s: stats::per_second(agents, elapsed),
    })
}

/// Live agents per shard in `stats`.
pub(crate) fn live_agents(stats: &nexus_engine::metrics::EngineStats) -> Vec<u64> {
    stats.shards.iter().map(|s| s.agents).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::setup::EngineSettings;

    #[test]
    fn expected_values() {
        assert_eq!(expected(0), (0, 1));
        assert_eq!(expected(1), (1, 1));
        assert_eq!(expected(2), (1, 3));
        assert_eq!(expected(25), (75_025, 242_785));
    }

    #[test]
    fn one_agent_per_call_both_ways() {
        let engine = EngineSettings::test(2).build().unwrap();
        let handle = engine.handle();
        for placement in Placement::BOTH {
            for n in [0, 1, 12] {
                let out = run(&handle, &FibParams { n, placement }).unwrap();
                assert_eq!((out.value, out.agents), expected(n));
            }
        }
        setup::shutdown(engine, WORKLOAD).unwrap();
    }

    /// Full Savina size, for figures: `cargo test --release -p nexus-bench --lib fib -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn full_size() {
        let engine = EngineSettings::bench(2).build().unwrap();
        let handle = engine.handle();
        for placement in Placement::BOTH {
            let out = run(&handle, &FibParams { placement, ..FibParams::default() }).unwrap();
            println!("{WORKLOAD} {}: {out:?}", placement.as_str());
        }
        setup::shutdown(engine, WORKLOAD).unwrap();
    }
}
