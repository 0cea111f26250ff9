//! The orchestrator: runs the tasks one after the other (three auctions each), then times
//! global discoveries on their own, then opens the ballot, and answers the host with a
//! [`Summary`].
//!
//! It asks one thing at a time (an auction, a discovery, the ballot), each with a typed ask
//! whose answer comes back as one of its own messages, carrying what it needs to go on (the
//! stage and its slot, for an auction).

use super::work::{elapsed_ns, mix, Job, Slot};
use super::{DISCOVERY_LIMIT, DISCOVERY_SAMPLES, MAX_ROUNDS, MODELS, TASK_DEADLINE};
use hdrhistogram::Histogram;
use nexus_coord::auction::{
    AuctionError, AuctionMsg, AuctionSpec, FailReason, Outcome, OutcomeKind, RunRequest, ScoringRule, Task,
};
use nexus_coord::caps::CapSet;
use nexus_coord::index::{MatchMode, Query};
use nexus_coord::reputation;
use nexus_coord::vote::{BallotReply, BallotResult, BallotSpec, Ballots, Electorate, Rule, VoteError};
use nexus_coord::{Coord, Discovered};
use nexus_engine::agent::{Addr, Agent, AgentId, Ctx};
use nexus_engine::ask::{AskError, ReplyTo};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The three stages of a task, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    Prepare,
    Train,
    Evaluate,
}

impl Stage {
    const ALL: [Stage; 3] = [Stage::Prepare, Stage::Train, Stage::Evaluate];

    fn name(self) -> &'static str {
        match self {
            Stage::Prepare => "prepare",
            Stage::Train => "train",
            Stage::Evaluate => "evaluate",
        }
    }
}

/// What the orchestrator measured and saw.
pub(crate) struct Summary {
    pub(crate) tasks: u64,
    pub(crate) done: u64,
    pub(crate) lost: Vec<String>,
    /// Troubles outside the tasks (the timed discoveries).
    pub(crate) problems: Vec<String>,
    pub(crate) auctions: u64,
    pub(crate) rounds: u64,
    pub(crate) reauctions: u64,
    pub(crate) failures_by_reason: BTreeMap<String, u64>,
    /// Per task: its three auctions' wall time less the work and the store waits.
    pub(crate) task_overhead: Histogram<u64>,
    /// The same, for the tasks that needed no re-auction.
    pub(crate) clean_task_overhead: Histogram<u64>,
    /// Per auction: the same, for one auction.
    pub(crate) auction_overhead: Histogram<u64>,
    /// Per global discovery, timed on its own.
    pub(crate) discovery: Histogram<u64>,
    pub(crate) work_ns: u64,
    pub(crate) service_ns: u64,
    pub(crate) tasks_wall: Duration,
    pub(crate) trained: [u64; MODELS.len()],
    /// (task, the flaky agent's reputation in the manager's table before it).
    pub(crate) flaky_reputation: Vec<(u64, f64)>,
    pub(crate) ballot: Result<BallotResult, String>,
    /// Engine-clock time of the first task (for the breaker's transitions).
    pub(crate) start_ns: u64,
}

pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("static histogram bounds are valid")
}

pub(crate) struct Orchestrator {
    coord: Coord,
    manager: Addr<AuctionMsg>,
    ballots: Ballots,
    stage_caps: [CapSet; 3],
    reviewer: CapSet,
    flaky: AgentId,
    summary: Summary,
    reply: Option<ReplyTo<Summary>>,
    // The task in progress.
    task: u64,
    input: u64,
    config: usize,
    task_started: Instant,
    task_excluded_ns: u64,
    task_reauctioned: bool,
    /// Timed discoveries still to run.
    discoveries_left: u64,
    /// When the request in flight was sent.
    sent: Instant,
}

pub(crate) enum OrchestratorMsg {
    Run(u64, ReplyTo<Summary>),
    /// The manager's answer to the auction of `stage`, whose job reports through `slot`.
    Auctioned {
        stage: usize,
        slot: Arc<Slot>,
        outcome: Result<Result<Outcome, AuctionError>, AskError>,
    },
    /// The answer to a timed discovery.
    Discovered(Result<Discovered, AskError>),
    /// The ballot's result.
    Decided(BallotReply),
}

impl Orchestrator {
    /// An orchestrator auctioning through `manager` and voting through `ballots`; `flaky` is the
    /// agent whose reputation it follows.
    pub(crate) fn new(
        coord: Coord,
        manager: Addr<AuctionMsg>,
        ballots: Ballots,
        stage_caps: [CapSet; 3],
        reviewer: CapSet,
        flaky: AgentId,
    ) -> Self {
        Self {
            coord,
            manager,
            ballots,
            stage_caps,
            reviewer,
            flaky,
            summary: Summary::empty(0, 0),
            reply: None,
            task: 0,
            input: 0,
            config: 0,
            task_started: Instant::now(),
            task_excluded_ns: 0,
            task_reauctioned: false,
            discoveries_left: 0,
            sent: Instant::now(),
        }
    }

    fn start_task(&mut self, ctx: &mut Ctx<'_>) {
        let checkpoint = self.task % (self.summary.tasks / 6).max(1) == 0 || self.task == self.summary.tasks;
        if checkpoint {
            // The manager runs on this shard, so its reputation table is readable synchronously.
            let value = reputation::local(ctx).table.borrow().value(self.flaky);
            self.summary.flaky_reputation.push((self.task, value));
        }
        if self.task == self.summary.tasks {
            self.summary.tasks_wall = Duration::from_nanos(ctx.now_ns().saturating_sub(self.summary.start_ns));
            self.discoveries_left = DISCOVERY_SAMPLES;
            return self.next_discovery(ctx);
        }
        self.input = mix(self.task);
        self.task_started = Instant::now();
        self.task_excluded_ns = 0;
        self.task_reauctioned = false;
        self.run_stage(0, ctx);
    }

    /// One auction: a task for `stage`'s capability, candidates by global discovery.
    fn run_stage(&mut self, stage: usize, ctx: &mut Ctx<'_>) {
        let slot = Arc::new(Slot::default());
        let job = Job { task: self.task, input: self.input, config: self.config, slot: slot.clone() };
        let rule = match Stage::ALL[stage] {
            // Cheap and reputable: reputation keeps a failing trainer away from work.
            Stage::Train => ScoringRule::Weighted { cost: 0.5, completion: 0.0, reputation: 0.5 },
            Stage::Prepare | Stage::Evaluate => ScoringRule::LowestCost,
        };
        let spec = AuctionSpec::new(Task::new(self.stage_caps[stage], TASK_DEADLINE).payload(job))
            .discover(DISCOVERY_LIMIT, MatchMode::All)
            // Close the bid window as soon as every candidate answered (no timer cut).
            .window(Duration::ZERO)
            .rule(rule)
            .max_rounds(MAX_ROUNDS);
        // The outcome comes back as `Auctioned`, with the stage and the slot.
        let timeout = (TASK_DEADLINE + Duration::from_secs(1)) * MAX_ROUNDS;
        self.sent = Instant::now();
        let asked = ctx
            .ask(self.manager, |reply| AuctionMsg::Run(Box::new(RunRequest { spec, reply })))
            .timeout(timeout)
            .then(move |outcome| OrchestratorMsg::Auctioned { stage, slot, outcome });
        if asked.is_err() {
            self.lose(format!("the manager's mailbox refused the {} auction", Stage::ALL[stage].name()), ctx);
        }
    }

    fn lose(&mut self, why: String, ctx: &mut Ctx<'_>) {
        self.summary.lost.push(format!("task {}: {why}", self.task));
        self.task += 1;
        self.start_task(ctx);
    }

    fn auction_answered(
        &mut self,
        stage: usize,
        slot: &Slot,
        answer: Result<Result<Outcome, AuctionError>, AskError>,
        ctx: &mut Ctx<'_>,
    ) {
        let wall = elapsed_ns(self.sent);
        let excluded = slot.work_ns.load(Relaxed) + slot.service_ns.load(Relaxed);
        self.summary.work_ns += slot.work_ns.load(Relaxed);
        self.summary.service_ns += slot.service_ns.load(Relaxed);
        self.task_excluded_ns += excluded;
        self.summary.auction_overhead.saturating_record(wall.saturating_sub(excluded).max(1));
        let name = Stage::ALL[stage].name();
        let outcome: Outcome = match answer {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(e)) => return self.lose(format!("the {name} auction failed: {e}"), ctx),
            Err(e) => return self.lose(format!("the {name} auction got no answer: {e}"), ctx),
        };
        self.summary.auctions += 1;
        self.summary.rounds += u64::from(outcome.rounds);
        self.summary.reauctions += u64::from(outcome.rounds.saturating_sub(1));
        self.task_reauctioned |= outcome.rounds > 1;
        for f in &outcome.failures {
            let reason = match &f.reason {
                FailReason::Failed(why) => format!("{name}: contract.failed \"{why}\""),
                FailReason::MissedDeadline => format!("{name}: missed deadline"),
                FailReason::Died => format!("{name}: contractor died"),
            };
            *self.summary.failures_by_reason.entry(reason).or_default() += 1;
        }
        if !matches!(outcome.kind, OutcomeKind::Completed { .. }) {
            let why = format!("the {name} auction ended {:?} after {} rounds", outcome.kind, outcome.rounds);
            return self.lose(why, ctx);
        }
        self.input = slot.output.load(Relaxed);
        match Stage::ALL[stage] {
            Stage::Prepare => self.run_stage(1, ctx),
            Stage::Train => {
                self.config = slot.config.load(Relaxed) as usize;
                self.summary.trained[self.config] += 1;
                self.run_stage(2, ctx);
            }
            Stage::Evaluate => {
                let overhead = elapsed_ns(self.task_started).saturating_sub(self.task_excluded_ns).max(1);
                self.summary.task_overhead.saturating_record(overhead);
                if !self.task_reauctioned {
                    self.summary.clean_task_overhead.saturating_record(overhead);
                }
                self.summary.done += 1;
                self.task += 1;
                self.start_task(ctx);
            }
        }
    }

    fn next_discovery(&mut self, ctx: &mut Ctx<'_>) {
        if self.discoveries_left == 0 {
            return self.open_ballot(ctx);
        }
        self.sent = Instant::now();
        // A global discovery: this shard's index ranks its agents, asks the other shard's,
        // merges; the `Discovered` comes back as `OrchestratorMsg::Discovered`.
        let query = Query::all(self.stage_caps[1], DISCOVERY_LIMIT);
        match self.coord.discover(ctx, query, OrchestratorMsg::Discovered) {
            Ok(()) => {}
            Err(e) => {
                self.summary.problems.push(format!("a timed discovery could not be sent: {e}"));
                self.open_ballot(ctx);
            }
        }
    }

    fn discovered(&mut self, found: Result<Discovered, AskError>, ctx: &mut Ctx<'_>) {
        let wall = elapsed_ns(self.sent);
        match found {
            Ok(d) if d.shards_missing == 0 => self.summary.discovery.saturating_record(wall.max(1)),
            Ok(d) => self.summary.problems.push(format!("a discovery missed {} shards", d.shards_missing)),
            Err(e) => self.summary.problems.push(format!("a discovery got no answer: {e}")),
        }
        self.discoveries_left -= 1;
        self.next_discovery(ctx);
    }

    fn open_ballot(&mut self, ctx: &mut Ctx<'_>) {
        let options: Vec<&str> = MODELS.iter().map(|m| m.name).collect();
        // The electorate is whoever a discovery finds with "reviewer" when the ballot opens.
        let electorate = Electorate::Query(Query::all(self.reviewer, DISCOVERY_LIMIT));
        let spec = BallotSpec::new("which model configuration to keep", &options, electorate)
            .rule(Rule::Majority)
            .deadline(Duration::from_millis(500));
        if let Err(e) = self.ballots.open(ctx, spec, OrchestratorMsg::Decided) {
            self.finish(Err(format!("the ballot could not be opened: {e}")), ctx);
        }
    }

    fn finish(&mut self, ballot: Result<BallotResult, String>, ctx: &mut Ctx<'_>) {
        self.summary.ballot = ballot;
        if let Some(reply) = self.reply.take() {
            let summary = std::mem::replace(&mut self.summary, Summary::empty(0, 0));
            ctx.reply(reply, summary);
        }
    }
}

impl Summary {
    pub(crate) fn empty(tasks: u64, start_ns: u64) -> Self {
        Self {
            tasks,
            done: 0,
            lost: Vec::new(),
            problems: Vec::new(),
            auctions: 0,
            rounds: 0,
            reauctions: 0,
            failures_by_reason: BTreeMap::new(),
            task_overhead: histogram(),
            clean_task_overhead: histogram(),
            auction_overhead: histogram(),
            discovery: histogram(),
            work_ns: 0,
            service_ns: 0,
            tasks_wall: Duration::ZERO,
            trained: [0; MODELS.len()],
            flaky_reputation: Vec::new(),
            ballot: Err("not held".into()),
            start_ns,
        }
    }
}

impl Agent for Orchestrator {
    type Msg = OrchestratorMsg;

    fn handle(&mut self, msg: OrchestratorMsg, ctx: &mut Ctx<'_>) {
        match msg {
            OrchestratorMsg::Run(tasks, reply) => {
                self.summary = Summary::empty(tasks, ctx.now_ns());
                self.reply = Some(reply);
                self.task = 0;
                self.start_task(ctx);
            }
            OrchestratorMsg::Auctioned { stage, slot, outcome } => self.auction_answered(stage, &slot, outcome, ctx),
            OrchestratorMsg::Discovered(found) => self.discovered(found, ctx),
            OrchestratorMsg::Decided(reply) => {
                let result = match reply {
                    Ok(result) => Ok(result),
                    Err(VoteError::Ask(e)) => Err(format!("the ballot box did not answer: {e}")),
                    Err(e) => Err(format!("the ballot failed: {e}")),
                };
                self.finish(result, ctx);
            }
        }
    }
}
