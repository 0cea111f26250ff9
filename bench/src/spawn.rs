//! `spawn`: what spawning and stopping an agent costs, in time and in memory.
//!
//! **Time** ([`run`]). A [`Spawner`] agent on shard 0 runs *cycles*: it spawns `agents`
//! [`Idle`] agents in one loop inside its handler (timed with `Instant`), asks for every one of
//! them to stop, and sends itself a `Stopped`. The dispatcher runs the stops right after the
//! spawner's turn, and a message an agent sends itself waits for its next turn, so the time
//! from the stop requests to the `Stopped` turn is the stop cost.
//! The first cycle runs on a fresh engine (cold: the slot table and the pool grow); the second
//! reuses the freed slots and pool entries (warm). `ns_per_spawn` is the warm cycle's spawn time
//! per agent, `ns_per_spawn_cold` the cold one's, `ns_per_stop` the warm cycle's stop time per
//! agent. Checks: every spawn succeeded, every warm spawn reused a freed slot (its generation
//! moved on), and the shard holds as many agents after the cycle as before it.
//!
//! **Memory** ([`memory`]). Resident memory (`/proc/self/statm`) is read before and after a
//! spawner grows the shard to 1e3, 1e4, 1e5 and 1e6 idle agents of the zero-sized type
//! [`Idle`]; `bytes_per_agent` = RSS growth / agents. The agents are spawned on a *running
//! engine* by an agent, in chunks of [`MemoryParams::chunk`] with a self-message between
//! chunks (so the shard keeps dispatching): this measures the engine's real per-shard data
//! structures (slot table, typed pool, message store untouched) as a deployment would grow
//! them, including the slack of their growth policy, and nothing else: the spawner keeps no
//! ids. RSS also sees allocator reuse: memory freed earlier in the process can be handed out
//! again without growing RSS, so measure in a fresh process (as `nexus bench` does, by running
//! it first).

use crate::setup::{self, EngineSettings};
use crate::stats;
use crate::BenchError;
use nexus_engine::agent::{Addr, Agent, AgentId, Ctx};
use nexus_engine::ask::ReplyTo;
use nexus_engine::engine::EngineHandle;
use std::time::{Duration, Instant};

const WORKLOAD: &str = "spawn";

/// An agent with no state and no behaviour: what the engine itself costs per agent.
#[derive(Debug, Default, Clone, Copy)]
pub struct Idle;

impl Agent for Idle {
    type Msg = ();

    fn handle(&mut self, (): (), _ctx: &mut Ctx<'_>) {}
}

/// What one spawn-and-stop cycle measured.
#[derive(Clone, Copy, Debug)]
pub struct CycleReport {
    /// Agents spawned (and stopped).
    pub agents: u64,
    /// Time spent spawning them all.
    pub spawn: Duration,
    /// From the stop requests to the spawner's next turn (the dispatcher runs the stops).
    pub stop: Duration,
    /// Spawns that reused a freed slot (generation above 0).
    pub reused: u64,
}

/// Messages of the [`Spawner`].
#[derive(Debug)]
pub enum SpawnerMsg {
    /// Spawn `agents` idle agents, stop them, reply with the timings.
    Cycle {
        /// Agents to spawn.
        agents: u64,
        /// Where the report goes.
        reply: ReplyTo<Result<CycleReport, String>>,
    },
    /// Self-sent after the stop requests: the stops have run.
    Stopped,
    /// Grow the shard to `to` idle agents spawned by this spawner (kept alive, ids not kept),
    /// `chunk` per turn, then reply with the count.
    Grow {
        /// Agents to reach.
        to: u64,
        /// Agents spawned per turn.
        chunk: u64,
        /// Where the count goes.
        reply: ReplyTo<Result<u64, String>>,
    },
    /// Self-sent between two chunks of a `Grow`.
    GrowMore,
}

type GrowReply = ReplyTo<Result<u64, String>>;
type CycleReply = ReplyTo<Result<CycleReport, String>>;

/// Spawns idle agents; see the module documentation.
#[derive(Default)]
pub struct Spawner {
    ids: Vec<AgentId>,
    /// The cycle waiting for its stops: where its report goes, the report, when stops began.
    pending: Option<(CycleReply, CycleReport, Instant)>,
    grown: u64,
    grow: Option<(u64, u64, GrowReply)>,
}

impl Spawner {
    fn cycle(&mut self, agents: u64, reply: CycleReply, ctx: &mut Ctx<'_>) {
        self.ids.clear();
        self.ids.reserve(usize::try_from(agents).unwrap_or(usize::MAX));
        let started = Instant::now();
        for _ in 0..agents {
            match ctx.spawn(Idle) {
                Ok(addr) => self.ids.push(addr.id()),
                Err(e) => {
                    let spawned = self.ids.len();
                    for id in self.ids.drain(..) {
                        ctx.stop(id);
                    }
                    ctx.reply(reply, Err(format!("spawn failed after {spawned} agents: {e}")));
                    return;
                }
            }
        }
        let spawn = started.elapsed();
        let reused = self.ids.iter().filter(|id| id.generation() != 0).count() as u64;
        for id in self.ids.drain(..) {
            ctx.stop(id);
        }
        let report = CycleReport { agents, spawn, stop: Duration::ZERO, reused };
        self.pending = Some((reply, report, Instant::now()));
        let me = ctx.myself::<SpawnerMsg>();
        if ctx.send(me, SpawnerMsg::Stopped).is_err() {
            if let Some((reply, _, _)) = self.pending.take() {
                ctx.reply(reply, Err("the spawner could not send itself a message".into()));
            }
        }
    }

    fn grow_step(&mut self, ctx: &mut Ctx<'_>) {
        let Some((to, chunk)) = self.grow.as_ref().map(|(t, c, _)| (*t, *c)) else { return };
        let n = chunk.max(1).min(to.saturating_sub(self.grown));
        for _ in 0..n {
            if let Err(e) = ctx.spawn(Idle) {
                if let Some((_, _, reply)) = self.grow.take() {
                    ctx.reply(reply, Err(format!("spawn failed after {} agents: {e}", self.grown)));
                }
                return;
            }
            self.grown += 1;
        }
        if self.grown < to {
            let me = ctx.myself::<SpawnerMsg>();
            if ctx.send(me, SpawnerMsg::GrowMore).is_ok() {
                return;
            }
        }
        if let Some((_, _, reply)) = self.grow.take() {
            let result = if self.grown >= to { Ok(self.grown) } else { Err("the spawner could not continue".into()) };
            ctx.reply(reply, result);
        }
    }
}

impl Agent for Spawner {
    type Msg = SpawnerMsg;

    fn handle(&mut self, msg: SpawnerMsg, ctx: &mut Ctx<'_>) {
        match msg {
            SpawnerMsg::Cycle { agents, reply } => self.cycle(agents, reply, ctx),
            SpawnerMsg::Stopped => {
                if let Some((reply, mut report, stops_requested)) = self.pending.take() {
                    report.stop = stops_requested.elapsed();
                    ctx.reply(reply, Ok(report));
                }
            }
            SpawnerMsg::Grow { to, chunk, reply } => {
                self.grow = Some((to, chunk, reply));
                self.grow_step(ctx);
            }
            SpawnerMsg::GrowMore => self.grow_step(ctx),
        }
    }
}

/// Runs one cycle with `spawner` and checks it. `warm` asks for the check that every spawn
/// reused a freed slot.
pub fn cycle(
    handle: &EngineHandle,
    spawner: Addr<SpawnerMsg>,
    agents: u64,
    warm: bool,
) -> Result<CycleReport, BenchError> {
    let shard = spawner.shard();
    let before = handle.stats()?.shards[shard].agents;
    let report = setup::ask(
        handle,
        WORKLOAD,
        "run a spawn cycle",
        spawner,
        setup::timeout_for(agents, Duration::from_micros(10)),
        |reply| SpawnerMsg::Cycle { agents, reply },
    )?
    .map_err(|why| BenchError::check(WORKLOAD, why))?;
    let after = handle.stats()?.shards[shard].agents;
    if report.agents != agents || after != before {
        return Err(BenchError::check(
            WORKLOAD,
            format!("{} agents spawned, shard {shard} went from {before} to {after} agents; expected {agents} and no change", report.agents),
        ));
    }
    if warm && report.reused != agents {
        return Err(BenchError::check(
            WORKLOAD,
            format!("only {} of {agents} warm spawns reused a freed slot", report.reused),
        ));
    }
    Ok(report)
}

/// What the spawn timing does.
#[derive(Clone, Debug)]
pub struct SpawnParams {
    /// Agents per cycle (100,000).
    pub agents: u64,
}

impl Default for SpawnParams {
    fn default() -> Self {
        Self { agents: 100_000 }
    }
}

/// What the spawn timing measured.
#[derive(Clone, Copy, Debug)]
pub struct SpawnOutcome {
    /// Agents per cycle.
    pub agents: u64,
    /// Warm spawn, ns per agent.
    pub ns_per_spawn: f64,
    /// Cold spawn (first cycle), ns per agent.
    pub ns_per_spawn_cold: f64,
    /// Warm stop, ns per agent.
    pub ns_per_stop: f64,
}

/// Runs a cold then a warm cycle on shard 0 of a running engine (fresh, for a cold figure that
/// means something) and checks both.
pub fn run(handle: &EngineHandle, params: &SpawnParams) -> Result<SpawnOutcome, BenchError> {
    let spawner = setup::spawn_on(handle, WORKLOAD, 0, Spawner::default)?;
    let cold = cycle(handle, spawner, params.agents, false)?;
    let warm = cycle(handle, spawner, params.agents, true)?;
    handle.stop(spawner.id())?;
    Ok(SpawnOutcome {
        agents: params.agents,
        ns_per_spawn: stats::ns_per(warm.spawn, warm.agents),
        ns_per_spawn_cold: stats::ns_per(cold.spawn, cold.agents),
        ns_per_stop: stats::ns_per(warm.stop, warm.agents),
    })
}

/// What the memory measurement does.
#[derive(Clone, Debug)]
pub struct MemoryParams {
    /// Agent counts to measure at, ascending (1e3, 1e4, 1e5, 1e6).
    pub counts: Vec<u64>,
    /// Agents spawned per spawner turn.
    pub chunk: u64,
}

impl Default for MemoryParams {
    fn default() -> Self {
        Self { counts: vec![1_000, 10_000, 100_000, 1_000_000], chunk: 10_000 }
    }
}

/// Resident memory growth at one agent count.
#[derive(Clone, Copy, Debug)]
pub struct MemoryPoint {
    /// Idle agents alive.
    pub agents: u64,
    /// RSS growth since before the first spawn, in bytes (may be negative: RSS is noisy).
    pub rss_growth_bytes: i64,
    /// `rss_growth_bytes / agents`.
    pub bytes_per_agent: f64,
}

/// The resident set size of this process, in bytes (`/proc/self/statm`, field 2, in pages).
pub fn resident_bytes() -> Result<u64, BenchError> {
    let statm = std::fs::read_to_string("/proc/self/statm")?;
    let pages =
        statm.split_whitespace().nth(1).and_then(|f| f.parse::<u64>().ok()).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, format!("unexpected statm: {statm:?}"))
        })?;
    Ok(pages * page_size())
}

fn page_size() -> u64 {
    // SAFETY: `sysconf` has no preconditions; it only reads a system constant.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).ok().filter(|&s| s > 0).unwrap_or(4096)
}

/// Builds an engine from `settings`, grows shard 0 through `params.counts` idle agents,
/// reading RSS at each, and shuts the engine down. Checks that the shard holds exactly the
/// agents spawned (plus the spawner) at each point.
pub fn memory(settings: &EngineSettings, params: &MemoryParams) -> Result<Vec<MemoryPoint>, BenchError> {
    if params.counts.windows(2).any(|w| w[0] >= w[1]) || params.counts.first() == Some(&0) {
        return Err(BenchError::params(
            WORKLOAD,
            format!("agent counts must be positive and ascending: {:?}", params.counts),
        ));
    }
    let engine = settings.build()?;
    let handle = engine.handle();
    let spawner = setup::spawn_on(&handle, WORKLOAD, 0, Spawner::default)?;
    let base_agents = handle.stats()?.shards[0].agents;
    let base_rss = resident_bytes()?;
    let mut points = Vec::with_capacity(params.counts.len());
    for &to in &params.counts {
        let chunk = params.chunk;
        let grown = setup::ask(
            &handle,
            WORKLOAD,
            "grow the shard",
            spawner,
            setup::timeout_for(to, Duration::from_micros(10)),
            |reply| SpawnerMsg::Grow { to, chunk, reply },
        )?
        .map_err(|why| BenchError::check(WORKLOAD, why))?;
        let rss = resident_bytes()?;
        let agents = handle.stats()?.shards[0].agents - base_agents;
        if grown != to || agents != to {
            return Err(BenchError::check(
                WORKLOAD,
                format!("the spawner grew {grown} agents and the shard holds {agents} more; expected {to}"),
            ));
        }
        let growth = rss as i64 - base_rss as i64;
        points.push(MemoryPoint {
            agents,
            rss_growth_bytes: growth,
            bytes_per_agent: growth as f64 / agents.max(1) as f64,
        });
    }
    setup::shutdown(engine, WORKLOAD)?;
    Ok(points)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycles_spawn_and_stop_every_agent() {
        let engine = EngineSettings::test(2).build().unwrap();
        let handle = engine.handle();
        let out = run(&handle, &SpawnParams { agents: 1_000 }).unwrap();
        assert_eq!(out.agents, 1_000);
        assert!(out.ns_per_spawn > 0.0);
        setup::shutdown(engine, WORKLOAD).unwrap();
    }

    #[test]
    fn memory_grows_to_each_count() {
        let params = MemoryParams { counts: vec![100, 1_000], chunk: 300 };
        let points = memory(&EngineSettings::test(2), &params).unwrap();
        let agents: Vec<u64> = points.iter().map(|p| p.agents).collect();
        assert_eq!(agents, [100, 1_000]);
        assert!(resident_bytes().unwrap() > 0);
    }

    #[test]
    fn idle_agents_are_zero_sized() {
        assert_eq!(std::mem::size_of::<Idle>(), 0);
    }
}
