//! `ml-pipeline`: the worked example `coord/examples/ml_pipeline` (data, model and eval
//! contractors on both shards, tasks assigned by auction, a flaky trainer punished by
//! reputation, a metrics store with an outage behind a per-shard circuit breaker, and a
//! majority ballot of reviewers on the model configuration), its agent code unchanged, on the
//! simulator's shards.
//!
//! What runs: the example's own modules, included as they are (`#[path]` to its `main.rs`,
//! which brings `contractors.rs`, `orchestrator.rs`, `metrics_store.rs`, `report.rs` and
//! `work.rs`). The scenario does what the example's `run_pipeline` does on a real engine,
//! through the `World`: it spawns the index agents and the ballot boxes at the ids of a `Coord`
//! and `Ballots` started once per process on a throwaway two-shard engine
//! ([`super::auction::coord_on_engine`]) and tells the index agents their peers (host asks);
//! then the metrics store, the contractors (data, one model agent per configuration, the
//! evaluators and their reviewers), the auction manager and the orchestrator, in the example's
//! placement. When the run is quiet the host asks the orchestrator to run `TASKS` tasks
//! (phase 0), then asks the manager for its counters and the model agents' reputations
//! (phase 1), as the example's host does after the pipeline.
//!
//! Checks: the orchestrator's report arrives; every task is either done or reported lost (and
//! no more are done than asked); every done task was trained and evaluated; and, without the
//! scheduling faults that may legitimately lose a task (stalls past a deadline, full
//! mailboxes), the example's own checks (`Report::check`: no task lost, the vote decided, the
//! accounting balances) and its test's asserts (three auctions per task, the manager agrees,
//! every timed discovery answered, the flaky agent's failures re-auctioned); and the runner's
//! accounting check.
//!
//! The example times its work and overheads with the wall clock (`Instant`): those figures go
//! only into its histograms, never into what an agent decides or sends, so a run stays a
//! function of its seed.

#[allow(dead_code)]
#[path = "../../../coord/examples/ml_pipeline/main.rs"]
mod example;

use crate::runner::Faults;
use crate::scenario::{Instance, Scenario, World};
use example::contractors::{DataPrep, Evaluator, Model, Scoreboard};
use example::metrics_store::{MetricsStore, Telemetry};
use example::orchestrator::{Orchestrator, OrchestratorMsg, Summary};
use example::report::Report;
use example::{Params, DISCOVERY_SAMPLES, EVALUATORS_PER_SHARD, MODELS, SHARDS};
use nexus_coord::auction::{AuctionManager, AuctionMsg, AuctionStats, Contractor};
use nexus_coord::caps::CapSet;
use nexus_coord::discovery::{IndexAgent, IndexMsg};
use nexus_coord::reputation::ReputationEntry;
use nexus_coord::vote::{BallotBox, BallotInfo, Ballots, Choice, Elector};
use nexus_coord::Coord;
use nexus_engine::agent::{Addr, AgentId};
use nexus_engine::ask::AskError;
use nexus_engine::config::CoordConfig;
use nexus_engine::shard::HostAsk;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Tasks a run asks for: as many as the example's test (its default is 300).
const TASKS: u64 = 40;

/// The scenario.
pub(crate) struct MlPipeline;

impl Scenario for MlPipeline {
    fn name(&self) -> &'static str {
        "ml-pipeline"
    }

    fn about(&self) -> &'static str {
        "the ml_pipeline example's agents unchanged: auctions, a flaky trainer, a breaker, a vote; every task done or reported"
    }

    fn shards(&self) -> usize {
        SHARDS
    }

    fn instance(&self, faults: &Faults) -> Box<dyn Instance> {
        // Stalls (a winner or an index agent unscheduled past a deadline) and full mailboxes
        // may lose a task or the vote, as on a real overloaded engine: the example then
        // reports it, which is what is checked.
        let strict = !faults.pressure && faults.stall == 0.0;
        Box::new(Run { strict, ..Run::default() })
    }
}

/// The `Coord` and `Ballots` every run shares, and the example's capabilities interned in
/// its order (so their bits are the same in every process).
#[derive(Clone)]
struct Shared {
    coord: Coord,
    ballots: Ballots,
    stage_caps: [CapSet; 3],
    reviewer: CapSet,
}

fn shared() -> Result<Shared, String> {
    static SHARED: OnceLock<Result<Shared, String>> = OnceLock::new();
    SHARED
        .get_or_init(|| {
            let ballots = |handle: &_, coord: &Coord| Ballots::start(handle, coord).map_err(|e| e.to_string());
            let (coord, ballots) = super::auction::coord_on_engine(SHARDS, &CoordConfig::default(), ballots)?;
            let cap = |name: &str| coord.cap_set(&[name]).map_err(|e| format!("capability {name}: {e}"));
            let stage_caps = [cap("data")?, cap("train")?, cap("eval")?];
            let reviewer = cap("reviewer")?;
            Ok(Shared { coord, ballots, stage_caps, reviewer })
        })
        .clone()
}

#[derive(Default)]
struct Run {
    strict: bool,
    params: Option<Params>,
    peers: Vec<Arc<HostAsk<Result<(), String>>>>,
    orchestrator: Option<Addr<OrchestratorMsg>>,
    manager: Option<Addr<AuctionMsg>>,
    models: Vec<AgentId>,
    evaluators: Vec<(AgentId, Arc<Scoreboard>)>,
    telemetry: Arc<Telemetry>,
    summary_ask: Option<Arc<HostAsk<Summary>>>,
    summary: Option<Result<Summary, AskError>>,
    stats_ask: Option<Arc<HostAsk<AuctionStats>>>,
    reputation_asks: Vec<Arc<HostAsk<Option<ReputationEntry>>>>,
}

impl Instance for Run {
    fn start(&mut self, world: &mut World) -> Result<(), String> {
        let shared = shared()?;
        self.start_coordination(world, &shared)?;
        let params = Params::new(TASKS, false);
        self.spawn_pipeline(world, &shared, &params)?;
        self.params = Some(params);
        Ok(())
    }

    fn on_quiet(&mut self, world: &mut World, phase: u32) -> bool {
        match (phase, self.orchestrator, self.manager) {
            // Phase 0: the index agents know their peers; the host asks for the pipeline.
            (0, Some(orchestrator), _) => {
                let ask = world.host_ask(orchestrator, |reply| OrchestratorMsg::Run(TASKS, reply));
                self.summary_ask = ask.ok();
                self.summary_ask.is_some()
            }
            // Phase 1: the report is in (or never will be); the host reads the manager.
            (1, _, Some(manager)) => {
                self.summary = self.summary_ask.as_ref().and_then(|a| a.try_take());
                self.stats_ask = world.host_ask(manager, AuctionMsg::Stats).ok();
                for &id in &self.models {
                    if let Ok(ask) = world.host_ask(manager, |r| AuctionMsg::Reputation(id, r)) {
                        self.reputation_asks.push(ask);
                    }
                }
                true
            }
            _ => false,
        }
    }

    fn check(&mut self, world: &World) -> Result<(), String> {
        for (shard, peers) in self.peers.iter().enumerate() {
            if let Some(Ok(Err(why))) = peers.try_take() {
                return Err(format!("shard {shard}'s index agent refused its peers: {why}"));
            }
        }
        let summary = match self.summary.take() {
            Some(Ok(summary)) => summary,
            Some(Err(e)) => return Err(format!("the orchestrator's report did not arrive: {e}")),
            None => return Err("the orchestrator's report never arrived".into()),
        };
        check_tasks(&summary)?;
        if !self.strict {
            return Ok(());
        }
        let report = self.report(summary, world)?;
        report.check()?;
        check_as_the_example_test(&report)
    }
}

impl Run {
    /// The index agents and the ballot boxes, at the shared `Coord`'s and `Ballots`' ids, and
    /// each index agent told its peers (what `Coord::start` does).
    fn start_coordination(&mut self, world: &mut World, shared: &Shared) -> Result<(), String> {
        let coord = &shared.coord;
        let timeout = Duration::from_millis(coord.config().discovery_timeout_ms.max(1));
        let mut indexes = Vec::with_capacity(SHARDS);
        for shard in 0..SHARDS {
            let index = world.spawn(shard, IndexAgent::new(coord.weights(), timeout))?;
            if Some(index) != coord.index_of(shard) {
                return Err(format!("shard {shard}'s index agent is {:?}, not the shared Coord's", index.id()));
            }
            indexes.push(index);
        }
        for shard in 0..SHARDS {
            let ballot_box = world.spawn(shard, BallotBox::new(coord.clone()))?;
            if Some(ballot_box) != shared.ballots.box_of(shard) {
                return Err(format!("shard {shard}'s ballot box is {:?}, not the shared one", ballot_box.id()));
            }
        }
        let indexes: Arc<[Addr<IndexMsg>]> = indexes.into();
        for &index in indexes.iter() {
            let peers = indexes.clone();
            self.peers.push(world.host_ask(index, |r| IndexMsg::Peers(peers, r))?);
        }
        Ok(())
    }

    /// The example's agents, placed as its `run_pipeline` places them.
    fn spawn_pipeline(&mut self, world: &mut World, shared: &Shared, params: &Params) -> Result<(), String> {
        let (coord, caps) = (&shared.coord, shared.stage_caps);
        let telemetry = self.telemetry.clone();
        let store = world.spawn(SHARDS - 1, MetricsStore { outage: params.outage.clone(), telemetry })?;
        for shard in 0..SHARDS {
            let bidder = DataPrep { base_cost: 1.0 + 0.25 * shard as f64, performed: 0 };
            world.spawn(shard, Contractor::new(coord.clone(), caps[0], bidder))?;
        }
        for (config, m) in MODELS.iter().enumerate() {
            let bidder = Model { config, performed: 0, warmup: params.flaky_warmup };
            self.models.push(world.spawn(m.shard, Contractor::new(coord.clone(), caps[1], bidder))?.id());
        }
        for k in 0..SHARDS * EVALUATORS_PER_SHARD {
            let shard = k % SHARDS;
            let board = Arc::new(Scoreboard::new());
            let evaluator = Evaluator::new(1.0 + 0.1 * k as f64, board.clone(), store, self.telemetry.clone());
            let evaluator = world.spawn(shard, Contractor::new(coord.clone(), caps[2], evaluator))?;
            let b = board.clone();
            let voter = move |_: &BallotInfo| b.best().map(|config| Choice::One(config as u16));
            world.spawn(shard, Elector::new(voter).declared(coord, shared.reviewer))?;
            self.evaluators.push((evaluator.id(), board));
        }
        let manager = world.spawn(0, AuctionManager::new(coord.clone()))?;
        let flaky = MODELS.iter().position(|m| m.flaky).map(|i| self.models[i]).ok_or("no flaky configuration")?;
        let orchestrator =
            Orchestrator::new(coord.clone(), manager, shared.ballots.clone(), caps, shared.reviewer, flaky);
        self.orchestrator = Some(world.spawn(0, orchestrator)?);
        self.manager = Some(manager);
        Ok(())
    }

    /// The example's `Report`, from what the host read.
    fn report(&mut self, summary: Summary, world: &World) -> Result<Report, String> {
        let manager = match self.stats_ask.as_ref().and_then(|a| a.try_take()) {
            Some(Ok(stats)) => stats,
            other => return Err(format!("the manager's counters: {:?}", other.map(|r| r.map(|_| ())))),
        };
        let mut models = Vec::with_capacity(self.models.len());
        for (&id, ask) in self.models.iter().zip(&self.reputation_asks) {
            match ask.try_take() {
                Some(Ok(entry)) => models.push((id, entry)),
                other => return Err(format!("{id:?}'s reputation: {:?}", other.map(|r| r.map(|_| ())))),
            }
        }
        let totals = world.totals();
        Ok(Report {
            params: self.params.clone().ok_or("no params")?,
            summary,
            executor: "simulated".into(),
            manager,
            models,
            evaluators: self.evaluators.clone(),
            telemetry: self.telemetry.clone(),
            accounting: format!(
                "sent {} = delivered {} + dead letters {}",
                totals.sent,
                totals.delivered,
                totals.dead_letters_total()
            ),
            accounted: world.accounted().is_ok(),
            drained: true,
        })
    }
}

/// Every task done or reported lost, once; every done task trained (and evaluated).
fn check_tasks(s: &Summary) -> Result<(), String> {
    if s.tasks != TASKS || s.done + s.lost.len() as u64 != TASKS {
        let lost = s.lost.len();
        return Err(format!("{TASKS} tasks asked, the report has {} tasks: {} done, {lost} lost", s.tasks, s.done));
    }
    let trained: u64 = s.trained.iter().sum();
    if trained < s.done || s.auctions < 3 * s.done || s.task_overhead.len() != s.done {
        return Err(format!(
            "{} tasks done, but {trained} trained, {} auctions, {} task timings",
            s.done,
            s.auctions,
            s.task_overhead.len()
        ));
    }
    Ok(())
}

/// The asserts of the example's own test, for `TASKS` tasks.
fn check_as_the_example_test(report: &Report) -> Result<(), String> {
    let s = &report.summary;
    let auctions = 3 * TASKS;
    let checks = [
        ((s.done, s.auctions) == (TASKS, auctions), "every task done in three auctions"),
        (s.task_overhead.len() == TASKS, "one timing per task"),
        (s.discovery.len() == DISCOVERY_SAMPLES, "every timed discovery answered"),
        (report.manager.auctions == auctions, "the manager ran three auctions per task"),
        (report.manager.rounds == s.rounds, "the manager's rounds are the orchestrator's"),
        (s.reauctions > 0, "the flaky agent's failures were re-auctioned"),
    ];
    match checks.iter().find(|(ok, _)| !ok) {
        None => Ok(()),
        Some((_, what)) => Err(format!("not so: {what}\n{}", report.render())),
    }
}
