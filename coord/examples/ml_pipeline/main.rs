//! The old system's ML pipeline, on Nexus: tasks assigned by contract-net auctions, a flaky
//! contractor punished by reputation, an unreliable metrics store behind a circuit breaker,
//! and a quorum vote on which model configuration to keep.
//!
//! Run it (optionally with the number of tasks, default 300):
//!
//! ```text
//! cargo run --release -p nexus-coord --example ml_pipeline [TASKS]
//! ```
//!
//! What it builds, on a two-shard engine:
//!
//! 1. `Coord::start` (a capability index per shard), one auction manager
//!    (`auction::spawn_manager`) and a ballot box per shard (`Ballots::start`).
//! 2. Contractors on both shards, each a `Contractor` around its own `Bidder`, declaring one
//!    capability: "data" (prepare data), "train" (one agent per model configuration: learning
//!    rates 0.3, 0.1, 0.01, 0.001, with different costs; the cheapest, lr=0.3, turns flaky
//!    after a warm-up: it fails most contracts with `contract.failed` or lets the deadline
//!    pass), and "eval" (evaluators, which also write each score to a metrics store).
//! 3. An orchestrator agent runs the tasks one after the other. Each task is three auctions,
//!    prepare → train → evaluate; the manager finds the candidates by a global discovery
//!    (both shards), calls for bids, awards the best, and re-auctions when the winner fails or
//!    misses its deadline. Bids rise with a contractor's work done, so work spreads; the train
//!    auctions also weigh reputation, so the flaky agent loses work as its reputation drops.
//! 4. The metrics store has an outage for a stretch of tasks (it answers with an error, or
//!    too late). Each shard's evaluators share one engine `CircuitBreaker` (in the shard's
//!    `Ctx::shard_local` storage, so no lock and no cross-shard traffic): it opens, later
//!    writes fail fast to a fallback, it half-opens, and it closes once the store recovers.
//! 5. After the tasks, a majority ballot among the reviewers (`Elector`s declared with
//!    "reviewer", found by a discovery query): each votes for the configuration that scored
//!    best in its own evaluator's evaluations.
//!
//! The work inside `perform` is a few microseconds of deterministic arithmetic (no sleeps),
//! timed there and subtracted, as is the evaluators' wait on the metrics store, so the printed
//! "coordination overhead" is the auctions' own cost. The example checks itself: it exits
//! non-zero if a task was lost, the ballot decided nothing, or the engine's message
//! accounting does not balance. Its test (`cargo test -p nexus-coord --example ml_pipeline`,
//! also run by `cargo test --workspace`) runs a small pipeline through the same checks.
//!
//! Files: this one sets the engine up, spawns the agents and runs the pipeline; `work.rs` is
//! the deterministic work and the job each auction carries; `contractors.rs` the bidders;
//! `metrics_store.rs` the simulated service and the per-shard breaker; `orchestrator.rs` the
//! agent that runs the auctions and the ballot; `report.rs` the printed summary and the checks.

pub(crate) mod contractors;
pub(crate) mod metrics_store;
pub(crate) mod orchestrator;
pub(crate) mod report;
mod work;

use contractors::{DataPrep, Evaluator, Model, Scoreboard};
use metrics_store::{MetricsStore, Telemetry};
use nexus_coord::auction::{self, Contractor};
use nexus_coord::vote::{BallotInfo, Ballots, Choice, Elector};
use nexus_coord::Coord;
use nexus_engine::agent::SpawnPlacement;
use nexus_engine::config::CoordConfig;
use nexus_engine::engine::Engine;
use nexus_engine::resilience::BreakerConfig;
use orchestrator::{Orchestrator, OrchestratorMsg};
use report::Report;
use std::ops::Range;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Tasks a plain run does.
const DEFAULT_TASKS: u64 = 300;
/// Shards of the engine.
pub(crate) const SHARDS: usize = 2;
/// How long a winner has, from its award, to report.
const TASK_DEADLINE: Duration = Duration::from_millis(10);
/// Rounds an auction runs at most (the first, and re-auctions after failures).
const MAX_ROUNDS: u32 = 4;
/// Candidates a discovery returns at most.
const DISCOVERY_LIMIT: usize = 16;
/// Global discoveries timed on their own after the tasks.
pub(crate) const DISCOVERY_SAMPLES: u64 = 100;
/// A contractor's bid rises by this much per contract it performed (a busy agent asks more).
const LOAD_STEP: f64 = 0.5;
/// How long an evaluator waits for the metrics store before it counts the write as failed.
const SERVICE_TIMEOUT: Duration = Duration::from_millis(1);
/// How late the store answers when it is slow (past `SERVICE_TIMEOUT`).
const STORE_SLOW: Duration = Duration::from_millis(3);
/// Evaluators (and reviewers) per shard.
pub(crate) const EVALUATORS_PER_SHARD: usize = 2;

/// One model configuration, trained by its own agent.
pub(crate) struct ModelConfig {
    name: &'static str,
    lr: f64,
    base_cost: f64,
    pub(crate) flaky: bool,
    pub(crate) shard: usize,
}

/// The configurations; the ballot's options are their names, in this order.
pub(crate) const MODELS: [ModelConfig; 4] = [
    ModelConfig { name: "lr=0.3", lr: 0.3, base_cost: 1.0, flaky: true, shard: 0 },
    ModelConfig { name: "lr=0.1", lr: 0.1, base_cost: 2.0, flaky: false, shard: 1 },
    ModelConfig { name: "lr=0.01", lr: 0.01, base_cost: 2.5, flaky: false, shard: 0 },
    ModelConfig { name: "lr=0.001", lr: 0.001, base_cost: 1.5, flaky: false, shard: 1 },
];

/// The small circuit-breaker windows that let the whole open → half-open → closed cycle happen
/// within a run: open at 50 % failures once 3 writes are in a 20 ms window, stay open 2 ms,
/// probe one write at a time, close after 1 ms of healthy probing.
fn breaker_config() -> BreakerConfig {
    BreakerConfig::default()
        .failure_rate_threshold(0.5)
        .window(Duration::from_millis(20))
        .window_buckets(10)
        .min_calls(3)
        .open_for(Duration::from_millis(2))
        .half_open_probes(1)
        .healthy_to_close(Duration::from_millis(1))
}

/// The size of a run.
#[derive(Clone, Debug)]
pub(crate) struct Params {
    tasks: u64,
    /// The tasks for which the metrics store is down.
    pub(crate) outage: Range<u64>,
    /// Contracts the flaky model agent does well before it turns bad.
    pub(crate) flaky_warmup: u64,
    pin_threads: bool,
}

impl Params {
    /// `tasks` tasks; the store down from a third of them on, for a quarter of them; the flaky
    /// agent good for its first `tasks / 15` contracts.
    pub(crate) fn new(tasks: u64, pin_threads: bool) -> Self {
        let start = tasks / 3;
        Self { tasks, outage: start..start + tasks / 4, flaky_warmup: tasks / 15, pin_threads }
    }
}

fn run_pipeline(params: &Params) -> Result<Report, String> {
    breaker_config().validate().map_err(|e| format!("bad breaker config: {e}"))?;
    // Two shards, the executor chosen by the machine (`auto`); `oversubscribe` lets them run
    // on a machine with fewer cores.
    let engine = Engine::builder()
        .shards(SHARDS)
        .oversubscribe(true)
        .pin_threads(params.pin_threads)
        .build()
        .map_err(|e| format!("the engine did not start: {e}"))?;
    let handle = engine.handle();
    let spawn_failed = |what: &'static str| move |e| format!("cannot spawn {what}: {e}");
    // The coordination layer: an index agent per shard. Agents declare capabilities into it.
    let coord = Coord::start(&handle, &CoordConfig::default()).map_err(|e| format!("coord: {e}"))?;
    let cap = |name: &str| coord.cap_set(&[name]).map_err(|e| format!("capability {name}: {e}"));
    let stage_caps = [cap("data")?, cap("train")?, cap("eval")?];
    let reviewer = cap("reviewer")?;
    let telemetry = Arc::new(Telemetry::default());

    let (t, outage) = (telemetry.clone(), params.outage.clone());
    let store = handle
        .spawn(SpawnPlacement::Shard(SHARDS - 1), move || MetricsStore { outage, telemetry: t })
        .map_err(spawn_failed("the metrics store"))?;
    // Contractors: a `Contractor` declares its capability when it starts, so the manager's
    // discovery finds it on whichever shard it lives.
    for shard in 0..SHARDS {
        let (c, caps) = (coord.clone(), stage_caps[0]);
        let bidder = DataPrep { base_cost: 1.0 + 0.25 * shard as f64, performed: 0 };
        handle
            .spawn(SpawnPlacement::Shard(shard), move || Contractor::new(c, caps, bidder))
            .map_err(spawn_failed("a data agent"))?;
    }
    let mut models = Vec::with_capacity(MODELS.len());
    for (config, m) in MODELS.iter().enumerate() {
        let (c, caps) = (coord.clone(), stage_caps[1]);
        let bidder = Model { config, performed: 0, warmup: params.flaky_warmup };
        let addr = handle
            .spawn(SpawnPlacement::Shard(m.shard), move || Contractor::new(c, caps, bidder))
            .map_err(spawn_failed("a model agent"))?;
        models.push(addr.id());
    }
    let mut evaluators = Vec::new();
    for k in 0..SHARDS * EVALUATORS_PER_SHARD {
        let shard = k % SHARDS;
        let board = Arc::new(Scoreboard::new());
        let (c, caps, b, t) = (coord.clone(), stage_caps[2], board.clone(), telemetry.clone());
        let evaluator = handle
            .spawn(SpawnPlacement::Shard(shard), move || {
                Contractor::new(c, caps, Evaluator::new(1.0 + 0.1 * k as f64, b, store, t))
            })
            .map_err(spawn_failed("an evaluator"))?;
        // Its reviewer: an `Elector` declared with "reviewer", voting for the configuration
        // its evaluator scored best (abstaining if it evaluated nothing).
        let (c, b) = (coord.clone(), board.clone());
        let voter = move |_: &BallotInfo| b.best().map(|config| Choice::One(config as u16));
        handle
            .spawn(SpawnPlacement::Shard(shard), move || Elector::new(voter).declared(&c, reviewer))
            .map_err(spawn_failed("a reviewer"))?;
        evaluators.push((evaluator.id(), board));
    }

    // One auction manager (on shard 0) runs every auction; a ballot box per shard.
    let manager = auction::spawn_manager(&handle, &coord, 0).map_err(spawn_failed("the auction manager"))?;
    let ballots = Ballots::start(&handle, &coord).map_err(|e| format!("ballot boxes: {e}"))?;
    let flaky = MODELS.iter().position(|m| m.flaky).map(|i| models[i]).expect("one configuration is flaky");
    let orchestrator = Orchestrator::new(coord.clone(), manager, ballots, stage_caps, reviewer, flaky);
    let orchestrator =
        handle.spawn(SpawnPlacement::Shard(0), move || orchestrator).map_err(spawn_failed("the orchestrator"))?;
    // A bound for a stuck run only: every auction's rounds at their deadline, and slack.
    let bound = TASK_DEADLINE * MAX_ROUNDS * 3 * u32::try_from(params.tasks).unwrap_or(u32::MAX);
    let summary = handle
        .ask(orchestrator, bound + Duration::from_secs(30), |reply| OrchestratorMsg::Run(params.tasks, reply))
        .map_err(|e| format!("the orchestrator did not finish: {e}"))?;

    let manager_stats = auction::stats_blocking(&handle, manager).map_err(|e| format!("manager stats: {e}"))?;
    let mut table = Vec::with_capacity(models.len());
    for id in models {
        // The manager's shard table is the authoritative copy of each agent's reputation.
        let entry = auction::reputation_blocking(&handle, manager, id).map_err(|e| format!("reputation: {e}"))?;
        table.push((id, entry));
    }
    let executor = match engine.executor_warning() {
        Some(warning) => format!("{} ({warning})", engine.executor().name()),
        None => engine.executor().name().to_string(),
    };
    let shutdown = engine.shutdown().map_err(|e| format!("shutdown: {e}"))?;
    Ok(Report {
        params: params.clone(),
        summary,
        executor,
        manager: manager_stats,
        models: table,
        evaluators,
        telemetry,
        accounting: shutdown.stats.accounting_line(),
        accounted: shutdown.stats.accounted(),
        drained: shutdown.drained,
    })
}

#[cfg_attr(test, allow(dead_code))]
fn main() -> ExitCode {
    let tasks = match std::env::args().nth(1).map(|a| a.parse::<u64>()) {
        None => DEFAULT_TASKS,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("usage: ml_pipeline [TASKS]   (a positive number of tasks, default {DEFAULT_TASKS})");
            return ExitCode::from(2);
        }
    };
    let report = match run_pipeline(&Params::new(tasks, true)) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("ml_pipeline: {e}");
            return ExitCode::FAILURE;
        }
    };
    print!("{}", report.render());
    match report.check() {
        Ok(()) => {
            println!("checks passed: every task done, the vote decided, the accounting balances");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ml_pipeline: check failed: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_pipeline_checks_itself() {
        let report = run_pipeline(&Params::new(40, false)).expect("the pipeline runs");
        if let Err(e) = report.check() {
            panic!("{e}\n{}", report.render());
        }
        let s = &report.summary;
        assert_eq!((s.done, s.auctions), (40, 120));
        assert_eq!(s.task_overhead.len(), 40);
        assert_eq!(s.discovery.len(), DISCOVERY_SAMPLES);
        assert_eq!(report.manager.auctions, 120);
        assert_eq!(report.manager.rounds, s.rounds);
        assert!(s.reauctions > 0, "the flaky agent fails contracts, so some auctions run again");
    }
}
