//! `auction` and `planted-auction`: contract-net auctions of the coordination crate under
//! failing, dying and slow bidders on every shard.
//!
//! What runs: a coordination index agent on every shard (the ids of the `Coord` the scenario
//! shares, see [`shared_coord`]), one `AuctionManager` on a seeded shard, `BIDDERS_PER_SHARD`
//! `Contractor`s on each shard and one requester per shard. Each bidder is, by seed,
//! **reliable** (reports done before its deadline), **failing** (reports failure), **dying**
//! (panics with [`INJECTED`] on a seeded call for bids or award) or **slow** (reports done
//! after its deadline, once the contract was withdrawn). When the index agents know their
//! peers, each requester asks the manager to run its tasks, at seeded moments; each task has
//! a seeded spec: candidates by global discovery or an explicit list, a zero or a short bid
//! window, a scoring rule, a reserve price and 2 to 4 rounds.
//!
//! Checks: a task never has two live winners (as the bidders see their contracts: a new award
//! of a task while another contract of it is live is a violation); every task reached the
//! manager once and got exactly one final answer: an outcome (completed, or failed: no
//! bidders, no acceptable bid, gave up) or a failed discovery (stalled shards can time it
//! out), never another error or an ask timeout; a completed task's winner really reported it
//! done; and the accounting (checked by the runner). A request the manager's full mailbox
//! refuses (sent, or returned undelivered) is asked again; the requesters' timers use the
//! control lane, so that none is lost to a full mailbox.
//!
//! A contract is live from its award until its winner reports, dies or, for a correct
//! bidder, its deadline (`Contract::deadline_ns`) passes: the manager re-auctions only after
//! that, and a correct bidder does not take an award delivered after its deadline (a stalled
//! shard). In `planted-auction` the bidders keep a contract live until the manager's
//! `Cancel` reaches them instead (a deliberately broken piece of the scenario's own bidders,
//! not of the coordination crate): they assume the withdrawal reaches them before the task's
//! re-award reaches the next winner on another shard, an ordering the engine does not
//! promise, and the simulator must find the two live winners that follow.

use crate::rng::SimRng;
use crate::runner::Faults;
use crate::scenario::{Instance, Scenario, World};
use crate::INJECTED;
use nexus_coord::auction::{
    AuctionError, AuctionManager, AuctionMsg, AuctionSpec, BidDecision, Bidder, BidderMsg, CallForBids, Contract,
    Contractor, Outcome, OutcomeKind, RunRequest, ScoringRule, Task, Ticket,
};
use nexus_coord::caps::CapSet;
use nexus_coord::discovery::{IndexAgent, IndexMsg};
use nexus_coord::index::MatchMode;
use nexus_coord::Coord;
use nexus_engine::agent::{Addr, Agent, AgentId, Ctx};
use nexus_engine::ask::AskError;
use nexus_engine::config::CoordConfig;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

const BIDDERS_PER_SHARD: usize = 3;
const TASKS: usize = 12;
/// Every task's deadline, from its award.
const DEADLINE: Duration = Duration::from_millis(5);
/// How long a requester waits before asking again for an auction its ask could not deliver.
const RETRY: Duration = Duration::from_micros(200);
/// How much longer than the auction's own bounds a requester waits for its answer.
const ANSWER_SLACK: Duration = Duration::from_secs(10);
/// The capability every bidder declares and every task needs.
const CAP: &str = "sim-auction-work";

/// The correct and the planted variant.
pub(crate) struct Auction {
    planted: bool,
}

/// `auction`.
pub(crate) const CORRECT: Auction = Auction { planted: false };
/// `planted-auction`.
pub(crate) const PLANTED: Auction = Auction { planted: true };

impl Scenario for Auction {
    fn name(&self) -> &'static str {
        if self.planted {
            "planted-auction"
        } else {
            "auction"
        }
    }

    fn about(&self) -> &'static str {
        if self.planted {
            "PLANTED BUG: bidders hold a contract until the manager's Cancel arrives; a re-award can overtake it"
        } else {
            "contract-net auctions with failing, dying and slow bidders: never two live winners, one final answer per task"
        }
    }

    fn instance(&self, faults: &Faults) -> Box<dyn Instance> {
        let panic = if faults.panic > 0.0 { faults.panic } else { 0.3 };
        Box::new(Run { planted: self.planted, panic, ledger: Rc::default(), requesters: Vec::new() })
    }
}

/// The `Coord` every run shares: built once per process on a small real engine (a `Coord`
/// can only be started through an `EngineHandle`), whose index agents sit at the ids the
/// first agent of each shard gets; each run spawns its own index agents there first (checked)
/// and tells them their peers. What it holds (those ids, the config, the interned
/// capability) is the same in every process, so runs stay a function of their seed.
fn shared_coord() -> Result<Coord, String> {
    static COORD: OnceLock<Result<Coord, String>> = OnceLock::new();
    COORD
        .get_or_init(|| {
            let config = CoordConfig { discovery_timeout_ms: 10, bid_window_ms: 2, ..CoordConfig::default() };
            let (coord, ()) = coord_on_engine(3, &config, |_, _| Ok(()))?;
            coord.cap_set(&[CAP]).map_err(|e| e.to_string())?;
            Ok(coord)
        })
        .clone()
}

/// Starts a `Coord` with `config` on a throwaway real engine of `shards` shards (threads, not
/// pinned), runs `then` on that engine (to spawn more per-shard agents whose ids a scenario
/// reproduces on its own shards), and shuts the engine down.
pub(super) fn coord_on_engine<T>(
    shards: usize,
    config: &CoordConfig,
    then: impl FnOnce(&nexus_engine::engine::EngineHandle, &Coord) -> Result<T, String>,
) -> Result<(Coord, T), String> {
    use nexus_engine::engine::Engine;
    use nexus_engine::shard::ExecutorKind;
    let engine = Engine::builder()
        .shards(shards)
        .oversubscribe(true)
        .executor(ExecutorKind::Threads)
        .pin_threads(false)
        .build()
        .map_err(|e| format!("the engine for the shared Coord: {e}"))?;
    let handle = engine.handle();
    let coord = Coord::start(&handle, config).map_err(|e| format!("Coord::start: {e}"));
    let more = coord.as_ref().map_err(Clone::clone).and_then(|coord| then(&handle, coord));
    let stopped = engine.shutdown().map_err(|e| format!("the engine for the shared Coord: {e}"));
    let (coord, more) = (coord?, more?);
    stopped?;
    Ok((coord, more))
}

/// How a bidder behaves once awarded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Reliable,
    Failing,
    Dying,
    Slow,
}

/// One contract as its winner sees it.
struct Held {
    task: usize,
    winner: AgentId,
    ticket: Ticket,
    deadline_ns: u64,
    /// Reported (done or failed), withdrawn, or its winner died.
    ended: bool,
    /// Reported done (the report was sent).
    done: bool,
}

/// What the agents of one run record for the check.
#[derive(Default)]
struct Ledger {
    contracts: Vec<Held>,
    violations: Vec<String>,
    /// Per task: the asks that reached the manager (sent, and not returned undelivered), and
    /// the answers.
    requested: Vec<u32>,
    answers: Vec<Vec<Final>>,
    peers_failed: u32,
}

type Shared = Rc<RefCell<Ledger>>;

/// A requester's final answer for one task.
#[derive(Clone, Debug)]
enum Final {
    /// The auction's outcome: completed, or failed (no bidders, no acceptable bid, gave up).
    Outcome(Outcome),
    /// The manager reported the auction failed: its discovery failed (stalled shards can
    /// make it time out).
    Failed,
    /// No answer from the manager, or an error it must not give: a violation.
    Broken(String),
}

impl Ledger {
    /// A new award of `task` to `winner`: a violation if another contract of it is live at
    /// `now` (`planted`: until withdrawn, else until its deadline too).
    fn award(&mut self, task: usize, winner: AgentId, contract: &Contract, now: u64, planted: bool) {
        let live = self.contracts.iter().find(|h| h.task == task && !h.ended && (planted || now < h.deadline_ns));
        if let Some(h) = live {
            self.violations.push(format!(
                "task {task} has two live winners at {now} ns: {:?} (round {}, due at {} ns) and {winner:?} (round {})",
                h.winner,
                h.ticket.round(),
                h.deadline_ns,
                contract.ticket.round()
            ));
        }
        let (ticket, deadline_ns) = (contract.ticket, contract.deadline_ns);
        self.contracts.push(Held { task, winner, ticket, deadline_ns, ended: false, done: false });
    }

    /// `winner`'s contract of `ticket` ended (reported, withdrawn); `done`: reported done.
    fn end(&mut self, winner: AgentId, ticket: Ticket, done: bool) {
        for h in self.contracts.iter_mut().filter(|h| h.winner == winner && h.ticket == ticket) {
            h.ended = true;
            h.done |= done;
        }
    }

    /// `winner` dies: every contract it holds ends.
    fn died(&mut self, winner: AgentId) {
        for h in self.contracts.iter_mut().filter(|h| h.winner == winner) {
            h.ended = true;
        }
    }
}

struct Run {
    planted: bool,
    panic: f64,
    ledger: Shared,
    requesters: Vec<Addr<RequesterMsg>>,
}

impl Instance for Run {
    fn start(&mut self, world: &mut World) -> Result<(), String> {
        let coord = shared_coord()?;
        let shards = world.shards();
        self.ledger.borrow_mut().requested = vec![0; TASKS];
        self.ledger.borrow_mut().answers = vec![Vec::new(); TASKS];
        let mut indexes = Vec::with_capacity(shards);
        let timeout = Duration::from_millis(coord.config().discovery_timeout_ms);
        for shard in 0..shards {
            let index = world.spawn(shard, IndexAgent::new(coord.weights(), timeout))?;
            if Some(index) != coord.index_of(shard) {
                return Err(format!("shard {shard}'s index agent is {:?}, not the shared Coord's", index.id()));
            }
            indexes.push(index);
        }
        world.spawn(0, Boot { indexes: indexes.into(), ledger: self.ledger.clone() })?;
        let caps = coord.cap_set(&[CAP]).map_err(|e| e.to_string())?;
        let manager_shard = world.rng.below(shards as u64) as usize;
        let manager = world.spawn(manager_shard, AuctionManager::new(coord.clone()))?;
        let bidders = self.spawn_bidders(world, &coord, caps)?;
        let specs = plan_tasks(&mut world.rng, caps, &bidders);
        let mut per_requester: Vec<Vec<(usize, AuctionSpec, Duration)>> = (0..shards).map(|_| Vec::new()).collect();
        for (task, spec) in specs.into_iter().enumerate() {
            let at = Duration::from_micros(world.rng.below(8_000));
            per_requester[task % shards].push((task, spec, at));
        }
        for (shard, tasks) in per_requester.into_iter().enumerate() {
            let requester = Requester { manager, coord: coord.clone(), tasks, ledger: self.ledger.clone() };
            self.requesters.push(world.spawn(shard, requester)?);
        }
        Ok(())
    }

    fn on_quiet(&mut self, world: &mut World, phase: u32) -> bool {
        // Phase 0: the index agents know their peers; the requesters begin.
        phase == 0 && self.requesters.iter().all(|&r| world.send(r, RequesterMsg::Begin).is_ok())
    }

    fn check(&mut self, _world: &World) -> Result<(), String> {
        let ledger = self.ledger.borrow();
        if ledger.peers_failed > 0 {
            return Err(format!("{} index agents did not take their peers", ledger.peers_failed));
        }
        if let Some(v) = ledger.violations.first() {
            return Err(v.clone());
        }
        for task in 0..TASKS {
            check_task(&ledger, task)?;
        }
        Ok(())
    }
}

/// Task `task` was requested once and answered once, with an outcome; if completed, by a
/// winner that reported it done.
fn check_task(ledger: &Ledger, task: usize) -> Result<(), String> {
    let (requested, answers) = (ledger.requested[task], &ledger.answers[task]);
    if requested != 1 || answers.len() != 1 {
        return Err(format!("task {task}: requested {requested} times, {} final answers", answers.len()));
    }
    let outcome = match &answers[0] {
        Final::Outcome(outcome) => outcome,
        Final::Failed => return Ok(()),
        Final::Broken(e) => return Err(format!("task {task}: no outcome: {e}")),
    };
    if let OutcomeKind::Completed { winner, .. } = outcome.kind {
        let reported = ledger.contracts.iter().any(|h| h.task == task && h.winner == winner && h.done);
        if !reported {
            return Err(format!("task {task}: completed by {winner:?}, which never reported it done"));
        }
    }
    Ok(())
}

impl Run {
    /// `BIDDERS_PER_SHARD` contractors on each shard, of seeded kinds (every kind at least
    /// once); their ids, in spawn order.
    fn spawn_bidders(&self, world: &mut World, coord: &Coord, caps: CapSet) -> Result<Vec<AgentId>, String> {
        let shards = world.shards();
        let n = BIDDERS_PER_SHARD * shards;
        let mut kinds: Vec<Kind> = [Kind::Reliable, Kind::Failing, Kind::Dying, Kind::Slow]
            .into_iter()
            .chain((4..n).map(|_| match world.rng.below(5) {
                0 | 1 => Kind::Reliable,
                2 => Kind::Failing,
                3 => Kind::Dying,
                _ => Kind::Slow,
            }))
            .collect();
        for i in (1..kinds.len()).rev() {
            kinds.swap(i, world.rng.below(i as u64 + 1) as usize);
        }
        let mut ids = Vec::with_capacity(n);
        for (i, kind) in kinds.into_iter().enumerate() {
            let bidder = SimBidder {
                kind,
                planted: self.planted,
                panic: self.panic,
                cost: 1.0 + world.rng.below(100) as f64,
                rng: SimRng::new(world.rng.next_u64()),
                working: Vec::new(),
                next_token: 0,
                me: None,
                ledger: self.ledger.clone(),
            };
            ids.push(world.spawn(i % shards, Contractor::new(coord.clone(), caps, bidder))?.id());
        }
        Ok(ids)
    }
}

/// A seeded spec for each task.
fn plan_tasks(rng: &mut SimRng, caps: CapSet, bidders: &[AgentId]) -> Vec<AuctionSpec> {
    (0..TASKS)
        .map(|task| {
            let reserve = if rng.chance(0.2) { 30.0 + rng.below(60) as f64 } else { f64::INFINITY };
            let mut spec = AuctionSpec::new(Task::new(caps, DEADLINE).reserve(reserve).payload(task))
                .max_rounds(2 + rng.below(3) as u32)
                .rule(match rng.below(3) {
                    0 => ScoringRule::LowestCost,
                    1 => ScoringRule::EarliestCompletion,
                    _ => ScoringRule::Weighted { cost: 1.0, completion: 1.0, reputation: 1.0 },
                })
                .answer_timeout(Duration::from_millis(4));
            spec = if rng.chance(0.5) {
                spec.window(Duration::ZERO)
            } else {
                spec.window(Duration::from_micros(500 + rng.below(2_500)))
            };
            if rng.chance(0.5) {
                spec.discover(32, MatchMode::All)
            } else {
                let ids: Vec<AgentId> = bidders.iter().copied().filter(|_| rng.chance(0.5)).collect();
                spec.candidates(ids)
            }
        })
        .collect()
}

/// Tells every index agent its peers (what `Coord::start` does on a real engine).
struct Boot {
    indexes: Arc<[Addr<IndexMsg>]>,
    ledger: Shared,
}

enum BootMsg {
    Peers(Result<Result<(), String>, AskError>),
}

impl Agent for Boot {
    type Msg = BootMsg;

    fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        for &index in self.indexes.iter() {
            let peers = self.indexes.clone();
            if ctx.ask(index, |r| IndexMsg::Peers(peers, r)).then(BootMsg::Peers).is_err() {
                self.ledger.borrow_mut().peers_failed += 1;
            }
        }
    }

    fn handle(&mut self, msg: BootMsg, _ctx: &mut Ctx<'_>) {
        let BootMsg::Peers(answer) = msg;
        if !matches!(answer, Ok(Ok(()))) {
            self.ledger.borrow_mut().peers_failed += 1;
        }
    }
}

/// Asks the manager to run its tasks, each at its seeded moment, and records the answers.
struct Requester {
    manager: Addr<AuctionMsg>,
    coord: Coord,
    tasks: Vec<(usize, AuctionSpec, Duration)>,
    ledger: Shared,
}

enum RequesterMsg {
    Begin,
    /// Ask for the task at this index of `tasks` (again, when the last ask was refused).
    Request(usize),
    Answer(usize, Result<Result<Outcome, AuctionError>, AskError>),
}

impl Requester {
    /// The answer for the task at index `i` of `tasks`: final, or (the request never reached
    /// the manager, e.g. its mailbox was full) asked again.
    fn answered(&mut self, i: usize, answer: Result<Result<Outcome, AuctionError>, AskError>, ctx: &mut Ctx<'_>) {
        let task = self.tasks[i].0;
        let answer = match answer {
            Ok(Ok(outcome)) => Final::Outcome(outcome),
            Ok(Err(AuctionError::Discovery(_))) => Final::Failed,
            Ok(Err(e)) => Final::Broken(e.to_string()),
            Err(AskError::Undelivered(_)) => {
                self.ledger.borrow_mut().requested[task] -= 1;
                ctx.send_control_after(ctx.myself(), RequesterMsg::Request(i), RETRY);
                return;
            }
            Err(e) => Final::Broken(format!("the ask failed: {e}")),
        };
        self.ledger.borrow_mut().answers[task].push(answer);
    }
}

impl Agent for Requester {
    type Msg = RequesterMsg;

    fn handle(&mut self, msg: RequesterMsg, ctx: &mut Ctx<'_>) {
        match msg {
            RequesterMsg::Begin => {
                for (i, (_, _, at)) in self.tasks.iter().enumerate() {
                    ctx.send_control_after(ctx.myself(), RequesterMsg::Request(i), *at);
                }
            }
            RequesterMsg::Request(i) => {
                let (task, spec, _) = &self.tasks[i];
                let (task, spec) = (*task, spec.clone());
                // The auction's own bounds and then plenty (stalled shards delay every step):
                // virtual time, it costs nothing unless the manager never answers.
                let timeout = spec.longest(&self.coord) + ANSWER_SLACK;
                let asked = ctx
                    .ask(self.manager, |reply| AuctionMsg::Run(Box::new(RunRequest { spec, reply })))
                    .timeout(timeout)
                    .then(move |answer| RequesterMsg::Answer(i, answer));
                match asked {
                    Ok(()) => self.ledger.borrow_mut().requested[task] += 1,
                    Err(_) => {
                        ctx.send_control_after(ctx.myself(), RequesterMsg::Request(i), RETRY);
                    }
                }
            }
            RequesterMsg::Answer(i, answer) => self.answered(i, answer, ctx),
        }
    }
}

/// A bidder of one [`Kind`]; bids its cost with a seeded completion estimate, works on a
/// contract for a seeded time (a `Wake`), then reports as its kind says.
struct SimBidder {
    kind: Kind,
    planted: bool,
    panic: f64,
    cost: f64,
    rng: SimRng,
    /// Contracts being worked on, by wake token.
    working: Vec<(u64, Contract)>,
    next_token: u64,
    /// Its id, once it won a contract.
    me: Option<AgentId>,
    ledger: Shared,
}

impl SimBidder {
    /// A dying bidder dies here with the panic rate: its contracts end, then it panics.
    fn maybe_die(&mut self, me: AgentId, at: &str) {
        if self.kind == Kind::Dying && self.rng.chance(self.panic) {
            self.ledger.borrow_mut().died(me);
            panic!("{INJECTED}: bidder dies on {at}");
        }
    }

    /// How long the work takes: within the deadline, except for a slow bidder.
    fn work_time(&mut self) -> Duration {
        let deadline = DEADLINE.as_micros() as u64;
        match self.kind {
            Kind::Slow => Duration::from_micros(deadline + 100 + self.rng.below(3_000)),
            _ => Duration::from_micros(50 + self.rng.below(deadline / 2)),
        }
    }
}

impl Bidder for SimBidder {
    fn bid(&mut self, _call: &CallForBids) -> BidDecision {
        if self.kind == Kind::Dying && self.rng.chance(self.panic / 4.0) {
            // It holds contracts only if it won one, and then `perform` learnt its id.
            if let Some(me) = self.me {
                self.ledger.borrow_mut().died(me);
            }
            panic!("{INJECTED}: bidder dies on a call for bids");
        }
        if self.rng.chance(0.1) {
            return BidDecision::Decline;
        }
        let completion = Duration::from_micros(200 + self.rng.below(DEADLINE.as_micros() as u64));
        BidDecision::Bid { cost: self.cost, completion }
    }

    fn perform(&mut self, contract: Contract, ctx: &mut Ctx<'_>) {
        let me = ctx.id();
        self.me = Some(me);
        let Some(&task) = contract.task.payload_as::<usize>() else {
            self.ledger.borrow_mut().violations.push("a contract without its task number".into());
            return;
        };
        let now = ctx.now_ns();
        if !self.planted && now >= contract.deadline_ns {
            // Delivered after its deadline (a stalled shard): already withdrawn, not taken.
            return;
        }
        self.ledger.borrow_mut().award(task, me, &contract, now, self.planted);
        self.maybe_die(me, "an award");
        let token = self.next_token;
        self.next_token += 1;
        let after = self.work_time();
        ctx.send_after(ctx.myself(), BidderMsg::Wake(token), after);
        self.working.push((token, contract));
    }

    fn wake(&mut self, token: u64, ctx: &mut Ctx<'_>) {
        let Some(pos) = self.working.iter().position(|(t, _)| *t == token) else { return };
        let (_, contract) = self.working.swap_remove(pos);
        let (me, ticket) = (ctx.id(), contract.ticket);
        let fail = self.kind == Kind::Failing && self.rng.chance(0.7);
        let sent = if fail { contract.failed(ctx, "the work failed").is_ok() } else { contract.done(ctx).is_ok() };
        self.ledger.borrow_mut().end(me, ticket, sent && !fail);
    }

    fn cancelled(&mut self, ticket: Ticket, ctx: &mut Ctx<'_>) {
        // Withdrawn: a slow bidder keeps working and reports late anyway (a stray report);
        // the others stop.
        if self.kind != Kind::Slow {
            self.working.retain(|(_, c)| c.ticket != ticket);
        }
        self.ledger.borrow_mut().end(ctx.id(), ticket, false);
    }
}
