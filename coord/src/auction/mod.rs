//! Contract-net auctions with reputation: a manager announces a task, bidders answer with a
//! cost and an estimated completion time (or decline), the manager awards a contract by a
//! scoring rule, and re-auctions the task when the winner fails, misses its deadline or dies.
//!
//! This module owns the vocabulary (tasks, specs, bids, contracts, outcomes, counters, the two
//! message types) and the host-thread helpers; the `manager` submodule owns the protocol and
//! the `contractor` submodule the bidder side. The protocol, per auction, in the manager
//! ([`AuctionManager`]), which runs on one shard and keeps all auction state there:
//!
//! 1. A requester sends `AuctionMsg::Run` (an ask: the answer is one
//!    `Result<Outcome, AuctionError>`); from a host thread, [`run_auction_blocking`].
//! 2. Each round the manager finds its candidates: the spec's explicit list, or a global
//!    discovery (`Coord::discover`, scatter/gather over every shard) for the task's
//!    capabilities. Agents that already failed this task are excluded. No candidate:
//!    [`OutcomeKind::NoBidders`].
//! 3. It sends each candidate a `BidderMsg::CallForBids` (tracked: a call that cannot be
//!    delivered comes back, and the candidate counts as unreachable) and, unless the spec says
//!    otherwise, watches it, so a candidate that dies before answering counts as unreachable
//!    too. It is not a bid.
//! 4. The bid window: with a window of `Duration::ZERO` it closes as soon as every candidate
//!    has answered (bid, declined or unreachable), with no timer cut; a guard timer
//!    (`answer_timeout`, by default the config's `discovery_timeout_ms`) still ends a round
//!    whose candidates stay silent, so nothing hangs. With a nonzero window it closes at the
//!    window's end or when every candidate answered, whichever is first. The default window
//!    is `[coord] bid_window_ms`.
//! 5. At close, bids above the reserve price (or not finite) are refused; the rest are scored
//!    by the spec's [`ScoringRule`]. **A tie goes to the lower `AgentId`** (its `u64` bits:
//!    shard first, so a shard-0 agent wins a tie against a shard-1 agent), under every rule,
//!    so an auction is deterministic for a given set of bids. No acceptable
//!    bid: [`OutcomeKind::NoAcceptableBid`].
//! 6. The winner gets a `BidderMsg::Award` holding a [`Contract`] with a deadline (the task's
//!    `deadline` from the award). The manager watches it and arms a deadline timer. Losers are
//!    not told: a bid binds nothing until an award.
//! 7. The winner reports done or failed (`Contract::done` / `Contract::failed`). Done:
//!    [`OutcomeKind::Completed`], and its reputation rises. Failed, deadline passed (the
//!    winner then gets `BidderMsg::Cancel`) or died: its reputation drops, it is excluded, and
//!    the task is auctioned again, up to `max_rounds` rounds; then
//!    [`OutcomeKind::GaveUp`].
//!
//! Ignored, and counted in [`AuctionStats`]: bids after the window closed (`late`), repeated
//! bids of one bidder in one round (`duplicates`: the first counts), bids from agents that
//! were not asked (`unasked`), reports that no longer match a contract (`stray_reports`).
//!
//! Bidders are known to the manager only by `AgentId`, so they all take ONE message type,
//! [`BidderMsg`]; [`Contractor`] wraps a small [`Bidder`] trait into such an agent. A candidate
//! whose message type is different receives the call for bids as a `type_mismatch` dead
//! letter (counted by the engine); the manager learns it from the tracked send and counts the
//! candidate as unreachable.
//!
//! Why the task's payload is an `Arc<dyn Any + Send + Sync>`: one call for bids goes to every
//! candidate, so the task is shared (one `Arc` clone per candidate, no copy, no allocation),
//! and a single [`BidderMsg`] type serves every kind of task, which is what lets discovery
//! hand the manager plain `AgentId`s. A bidder reads its payload with
//! [`Task::payload_as`]. A generic `Task<T>` would split bidders into one message type per
//! payload type and make the manager generic too.
//!
//! The hot path (the zero window the benchmark measures): every message is small enough to
//! travel inline in the engine's envelope (no heap per message; a test pins it), round buffers
//! are recycled between auctions, candidates are a sorted `Vec` searched by bisection, and
//! auctions in flight are a small `Vec`. Per auction the manager allocates the boxed request
//! and the shared task, and the discovery answer when it discovers.

mod contractor;
mod manager;

pub use contractor::{Bidder, Contractor, Resume};
pub use manager::AuctionManager;

use crate::caps::CapSet;
use crate::index::MatchMode;
use crate::reputation::ReputationEntry;
use crate::Coord;
use nexus_engine::agent::{Addr, AgentId, Ctx, SpawnError, SpawnPlacement};
use nexus_engine::ask::{AskError, ReplyTo};
use nexus_engine::engine::EngineHandle;
use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

/// Rounds an auction runs by default before it gives up.
pub const DEFAULT_MAX_ROUNDS: u32 = 3;
/// The most rounds a spec may ask for.
pub const MAX_ROUNDS_LIMIT: u32 = 1024;
/// Candidates a discovery asks for by default.
pub const DEFAULT_DISCOVERY_LIMIT: usize = 32;
/// Extra time [`run_auction_blocking`] waits beyond the auction's own bounds.
pub const HOST_WAIT_SLACK: Duration = Duration::from_secs(2);

/// The opaque part of a task, shared by every bidder; see the module docs for why it is an
/// `Arc<dyn Any>`.
pub type TaskPayload = Arc<dyn Any + Send + Sync>;

/// What is auctioned.
#[derive(Clone)]
pub struct Task {
    /// The capabilities a contractor needs (discovery looks for them).
    pub caps: CapSet,
    /// How long the winner has, from the award, to report.
    pub deadline: Duration,
    /// The highest acceptable cost; bids above it are refused. `f64::INFINITY` for none.
    pub reserve: f64,
    /// Whatever the bidders need to know about the work.
    pub payload: TaskPayload,
}

impl Task {
    /// A task needing `caps`, due `deadline` after the award, with no reserve price and an
    /// empty payload.
    pub fn new(caps: CapSet, deadline: Duration) -> Self {
        Self { caps, deadline, reserve: f64::INFINITY, payload: Arc::new(()) }
    }

    /// The same task with a reserve price.
    #[must_use]
    pub fn reserve(mut self, reserve: f64) -> Self {
        self.reserve = reserve;
        self
    }

    /// The same task with a payload.
    #[must_use]
    pub fn payload(mut self, payload: impl Any + Send + Sync) -> Self {
        self.payload = Arc::new(payload);
        self
    }

    /// The payload, if it is a `T`.
    pub fn payload_as<T: 'static>(&self) -> Option<&T> {
        self.payload.downcast_ref::<T>()
    }
}

impl std::fmt::Debug for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Task")
            .field("caps", &self.caps)
            .field("deadline", &self.deadline)
            .field("reserve", &self.reserve)
            .finish_non_exhaustive()
    }
}

/// Who is asked to bid.
#[derive(Clone, Debug)]
pub enum Candidates {
    /// A global discovery for the task's capabilities, at most `limit` agents, ranked by
    /// capability match, load and reputation.
    Discover {
        /// At most this many candidates.
        limit: usize,
        /// All of the task's capabilities, or any.
        mode: MatchMode,
    },
    /// Exactly these agents (duplicates count once). An `Arc` so a caller running many
    /// auctions shares one list.
    Explicit(Arc<[AgentId]>),
}

/// How the manager picks the winner among the acceptable bids. Ties go to the lower
/// `AgentId` under every rule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ScoringRule {
    /// The lowest cost.
    LowestCost,
    /// The earliest estimated completion.
    EarliestCompletion,
    /// The highest `cost · (1 − c) + completion · (1 − t) + reputation · r`, where `c` and `t`
    /// are the bid's cost and completion scaled to 0..=1 between the round's lowest and
    /// highest (0 when all are equal) and `r` is the bidder's reputation on the manager's
    /// shard. The weights are normalised to sum to 1 (all zero: equal weights).
    Weighted {
        /// Weight of cheapness.
        cost: f64,
        /// Weight of earliness.
        completion: f64,
        /// Weight of reputation.
        reputation: f64,
    },
}

/// One auction to run: the task and how to run it. Build with [`AuctionSpec::new`] and the
/// setters.
#[derive(Clone, Debug)]
pub struct AuctionSpec {
    /// What is auctioned.
    pub task: Task,
    /// Who is asked.
    pub candidates: Candidates,
    /// The bid window; `None`: the config's `bid_window_ms`. `Duration::ZERO`: close when
    /// every candidate answered (see the module docs).
    pub window: Option<Duration>,
    /// With a zero window, how long a round waits at most for silent candidates; `None`: the
    /// config's `discovery_timeout_ms`.
    pub answer_timeout: Option<Duration>,
    /// How the winner is picked.
    pub rule: ScoringRule,
    /// Rounds at most (1 to [`MAX_ROUNDS_LIMIT`]).
    pub max_rounds: u32,
    /// Whether candidates are watched while they bid, so one that dies is not waited for
    /// (one watch and one unwatch per candidate and round). Without it, a candidate that dies
    /// after taking the call is waited for until the window (or the answer timeout) ends.
    /// A [`Contractor`] answers in the handler that takes the call, so only a panic in
    /// `Bidder::bid` needs the watch; a latency benchmark may turn it off to save the
    /// cross-shard watch and unwatch messages.
    pub watch_bidders: bool,
}

impl AuctionSpec {
    /// `task` to the agents discovery finds for its capabilities (at most
    /// [`DEFAULT_DISCOVERY_LIMIT`] having all of them), the config's window, lowest cost wins,
    /// [`DEFAULT_MAX_ROUNDS`] rounds, bidders watched.
    pub fn new(task: Task) -> Self {
        Self {
            task,
            candidates: Candidates::Discover { limit: DEFAULT_DISCOVERY_LIMIT, mode: MatchMode::All },
            window: None,
            answer_timeout: None,
            rule: ScoringRule::LowestCost,
            max_rounds: DEFAULT_MAX_ROUNDS,
            watch_bidders: true,
        }
    }

    /// Asks exactly `ids`.
    #[must_use]
    pub fn candidates(mut self, ids: impl Into<Arc<[AgentId]>>) -> Self {
        self.candidates = Candidates::Explicit(ids.into());
        self
    }

    /// Asks at most `limit` agents that discovery finds.
    #[must_use]
    pub fn discover(mut self, limit: usize, mode: MatchMode) -> Self {
        self.candidates = Candidates::Discover { limit, mode };
        self
    }

    /// Overrides the bid window (`Duration::ZERO`: close when everyone answered).
    #[must_use]
    pub fn window(mut self, window: Duration) -> Self {
        self.window = Some(window);
        self
    }

    /// Overrides the zero window's answer timeout.
    #[must_use]
    pub fn answer_timeout(mut self, timeout: Duration) -> Self {
        self.answer_timeout = Some(timeout);
        self
    }

    /// Picks the winner by `rule`.
    #[must_use]
    pub fn rule(mut self, rule: ScoringRule) -> Self {
        self.rule = rule;
        self
    }

    /// Runs at most `rounds` rounds.
    #[must_use]
    pub fn max_rounds(mut self, rounds: u32) -> Self {
        self.max_rounds = rounds;
        self
    }

    /// Whether to watch candidates while they bid.
    #[must_use]
    pub fn watch_bidders(mut self, watch: bool) -> Self {
        self.watch_bidders = watch;
        self
    }

    /// The window and the longest a round's bidding may last, under `coord`'s config.
    pub(crate) fn timing(&self, coord: &Coord) -> (Duration, Duration) {
        let window = self.window.unwrap_or(Duration::from_millis(coord.config().bid_window_ms));
        let guard = if window.is_zero() {
            self.answer_timeout.unwrap_or(Duration::from_millis(coord.config().discovery_timeout_ms.max(1)))
        } else {
            window
        };
        (window, guard)
    }

    /// The longest the whole auction can take under `coord`'s config: per round the discovery
    /// (twice its timeout), the bid window or answer timeout, and the task's deadline, times
    /// the rounds. An agent asking a manager to run it can use this (plus some slack) as its
    /// ask timeout; [`run_auction_blocking`] does.
    pub fn longest(&self, coord: &Coord) -> Duration {
        let (_, guard) = self.timing(coord);
        let discovery = Duration::from_millis(coord.config().discovery_timeout_ms.saturating_mul(2));
        guard.saturating_add(discovery).saturating_add(self.task.deadline).saturating_mul(self.max_rounds)
    }

    /// Checks the spec.
    ///
    /// # Errors
    /// [`AuctionError::InvalidSpec`] naming what is wrong.
    pub fn validate(&self) -> Result<(), AuctionError> {
        if self.max_rounds == 0 || self.max_rounds > MAX_ROUNDS_LIMIT {
            return Err(AuctionError::InvalidSpec("max_rounds must be 1 to MAX_ROUNDS_LIMIT (1024)"));
        }
        if self.task.reserve.is_nan() {
            return Err(AuctionError::InvalidSpec("the reserve price is NaN; use f64::INFINITY for none"));
        }
        if let ScoringRule::Weighted { cost, completion, reputation } = self.rule {
            if [cost, completion, reputation].iter().any(|w| !w.is_finite() || *w < 0.0) {
                return Err(AuctionError::InvalidSpec("scoring weights must be finite and not negative"));
            }
        }
        Ok(())
    }
}

/// Names one auction of one manager (its sequence number there).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AuctionId(pub u64);

/// Names one round of one auction: the auction in the high 48 bits, the round (from 1) in
/// the low 16. Calls, bids, contracts and reports carry it, so anything from an earlier round
/// is recognised as stale.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ticket(u64);

impl Ticket {
    pub(crate) fn new(auction: AuctionId, round: u32) -> Self {
        debug_assert!(round <= MAX_ROUNDS_LIMIT);
        Self((auction.0 << 16) | u64::from(round & 0xffff))
    }

    /// The auction.
    pub fn auction(self) -> AuctionId {
        AuctionId(self.0 >> 16)
    }

    /// The round (from 1).
    pub fn round(self) -> u32 {
        (self.0 & 0xffff) as u32
    }
}

/// A call for bids, as a bidder receives it.
#[derive(Clone, Debug)]
pub struct CallForBids {
    /// The auction and round; a bid must carry it back.
    pub ticket: Ticket,
    /// Where bids go.
    pub manager: Addr<AuctionMsg>,
    /// The task.
    pub task: Arc<Task>,
}

impl CallForBids {
    /// The answer `decision` from `from`, ready to send to [`CallForBids::manager`].
    pub fn answer(&self, from: AgentId, decision: BidDecision) -> AuctionMsg {
        AuctionMsg::Bid(Bid { ticket: self.ticket, from, decision })
    }
}

/// A bidder's answer to a call for bids.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BidDecision {
    /// An offer.
    Bid {
        /// The price; refused above the reserve or when not finite.
        cost: f64,
        /// How long the work would take from the award.
        completion: Duration,
    },
    /// No offer.
    Decline,
}

/// A bid (or a decline) on its way to the manager.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bid {
    /// The call it answers.
    pub ticket: Ticket,
    /// The bidder (a bid from an agent that was not asked is ignored and counted).
    pub from: AgentId,
    /// The answer.
    pub decision: BidDecision,
}

/// The winner's contract: the task, its deadline, and the right to report.
#[derive(Debug)]
pub struct Contract {
    /// The auction and round.
    pub ticket: Ticket,
    /// The manager to report to.
    pub manager: Addr<AuctionMsg>,
    /// The task.
    pub task: Arc<Task>,
    /// The deadline on the engine clock (`Ctx::now_ns`).
    pub deadline_ns: u64,
    /// The winning bid's cost.
    pub cost: f64,
}

impl Contract {
    /// Reports the work done. A report the manager's mailbox refuses is counted by the engine
    /// (`rejected_full`) and returned; the contract then runs into its deadline.
    ///
    /// # Errors
    /// When the report cannot be sent.
    pub fn done(self, ctx: &mut Ctx<'_>) -> Result<(), nexus_engine::agent::SendError<AuctionMsg>> {
        let report = Report { ticket: self.ticket, from: ctx.id(), result: Ok(()) };
        ctx.send(self.manager, AuctionMsg::Report(report))
    }

    /// Reports the work failed, with why.
    ///
    /// # Errors
    /// When the report cannot be sent (see [`Contract::done`]).
    pub fn failed(
        self,
        ctx: &mut Ctx<'_>,
        why: impl Into<Arc<str>>,
    ) -> Result<(), nexus_engine::agent::SendError<AuctionMsg>> {
        let report = Report { ticket: self.ticket, from: ctx.id(), result: Err(why.into()) };
        ctx.send(self.manager, AuctionMsg::Report(report))
    }
}

/// A contractor's report.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// The contract's auction and round.
    pub ticket: Ticket,
    /// The contractor.
    pub from: AgentId,
    /// Done, or failed with why.
    pub result: Result<(), Arc<str>>,
}

/// The one message type every bidder takes; see the module docs.
#[derive(Debug)]
pub enum BidderMsg {
    /// Bid (or decline) for a task.
    CallForBids(CallForBids),
    /// You won: do the work and report.
    Award(Contract),
    /// The contract of this ticket was withdrawn (its deadline passed); later reports of it
    /// are ignored.
    Cancel(Ticket),
    /// A wake-up the bidder scheduled for itself (`Ctx::send_after` to its own address), for
    /// work that reports later; the value is the bidder's own.
    Wake(u64),
    /// Work for the bidder it was built for, typically the answer to an ask the bidder made
    /// (see [`Resume`]).
    Resume(Resume),
}

/// What a requester asks a manager to do.
pub struct RunRequest {
    /// The auction.
    pub spec: AuctionSpec,
    /// Where the outcome goes.
    pub reply: ReplyTo<Result<Outcome, AuctionError>>,
}

/// The messages of an [`AuctionManager`].
pub enum AuctionMsg {
    /// Run an auction; answered once with its outcome (boxed: it is large and comes once
    /// per auction, while the other messages stay small enough to travel inline).
    Run(Box<RunRequest>),
    /// A bid or a decline.
    Bid(Bid),
    /// A contractor's report.
    Report(Report),
    /// The counters.
    Stats(ReplyTo<AuctionStats>),
    /// The reputation of an agent in the manager's shard table (`None`: never judged).
    Reputation(AgentId, ReplyTo<Option<ReputationEntry>>),
    /// Timer: the bid window (or answer timeout) of this round ends.
    CloseWindow(Ticket),
    /// Timer: the contract of this round is due.
    ContractDue(Ticket),
    /// The manager's own: the answer to the discovery of this round's candidates.
    Discovered(Ticket, Result<crate::Discovered, AskError>),
}

/// Why a winner lost its contract.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FailReason {
    /// It reported a failure, with why.
    Failed(Arc<str>),
    /// Its deadline passed without a report.
    MissedDeadline,
    /// It stopped (or its award could not be delivered).
    Died,
}

/// One contract that did not complete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The round it was awarded in.
    pub round: u32,
    /// The winner that did not complete.
    pub agent: AgentId,
    /// Why.
    pub reason: FailReason,
}

/// How an auction ended.
#[derive(Clone, Debug, PartialEq)]
pub enum OutcomeKind {
    /// The task was done.
    Completed {
        /// By whom.
        winner: AgentId,
        /// At what cost.
        cost: f64,
    },
    /// The last round had no candidate (none found, or every one was excluded).
    NoBidders,
    /// The last round had candidates but no acceptable bid.
    NoAcceptableBid {
        /// Candidates that declined.
        declined: u32,
        /// Bids above the reserve (or not finite).
        over_reserve: u32,
        /// Candidates that did not answer, could not be reached or died.
        silent: u32,
    },
    /// Every one of `max_rounds` winners failed.
    GaveUp,
}

/// The answer to one auction.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// Which auction.
    pub auction: AuctionId,
    /// How it ended.
    pub kind: OutcomeKind,
    /// Rounds run (from 1).
    pub rounds: u32,
    /// The contracts that did not complete, in order (no allocation when none).
    pub failures: Vec<Failure>,
}

impl Outcome {
    /// The agent that completed the task, if one did.
    pub fn winner(&self) -> Option<AgentId> {
        match self.kind {
            OutcomeKind::Completed { winner, .. } => Some(winner),
            _ => None,
        }
    }
}

/// A manager's counters (since it started).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuctionStats {
    /// Auctions started.
    pub auctions: u64,
    /// Rounds run.
    pub rounds: u64,
    /// Calls for bids sent.
    pub calls: u64,
    /// Bids received in time (over-reserve ones included).
    pub bids: u64,
    /// Declines received in time.
    pub declines: u64,
    /// Bids refused: above the reserve or not finite.
    pub over_reserve: u64,
    /// Bids and declines after their window closed (ignored).
    pub late: u64,
    /// Repeated answers of one bidder in one round (ignored).
    pub duplicates: u64,
    /// Answers from agents that were not asked (ignored).
    pub unasked: u64,
    /// Candidates that could not be reached or died while bidding.
    pub unreachable: u64,
    /// Candidates that had not answered when a window closed.
    pub silent: u64,
    /// Contracts awarded.
    pub awards: u64,
    /// Contracts completed.
    pub completions: u64,
    /// Contracts reported failed.
    pub failures: u64,
    /// Contracts whose deadline passed.
    pub deadline_misses: u64,
    /// Contracts whose winner died.
    pub deaths: u64,
    /// Reports that matched no contract held (after a deadline, from another agent, ...).
    pub stray_reports: u64,
    /// Auctions that ended with no bidders.
    pub no_bidders: u64,
    /// Auctions that ended with no acceptable bid.
    pub no_acceptable: u64,
    /// Auctions that gave up after their last round.
    pub gave_up: u64,
}

/// Why an auction could not be run or answered.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AuctionError {
    /// The spec is not valid.
    #[error("invalid auction spec: {0}; hint: see AuctionSpec::validate")]
    InvalidSpec(&'static str),
    /// The discovery of candidates failed.
    #[error("the discovery of candidates failed: {0}; hint: check that Coord::start ran on this engine")]
    Discovery(AskError),
    /// The manager stopped before the auction ended.
    #[error("the auction manager stopped before the auction ended; hint: keep it running until outcomes arrive")]
    ManagerStopped,
    /// The request to the manager got no answer.
    #[error("the auction manager did not answer: {0}")]
    Ask(AskError),
}

/// Runs one auction end to end from a host thread: sends `spec` to `manager` and blocks until
/// its outcome, at most the auction's own bounds (per round: discovery, the bid window or
/// answer timeout, and the task's deadline) plus [`HOST_WAIT_SLACK`].
///
/// To time "announce to the winner holding its contract", stamp the time in the bidder's
/// [`Bidder::perform`]; this call also includes the winner's report and the reply.
///
/// # Errors
/// The auction's own error (an invalid spec, a failed discovery, a manager that stopped), or
/// [`AuctionError::Ask`] when the manager cannot be reached or does not answer in time.
pub fn run_auction_blocking(
    handle: &EngineHandle,
    coord: &Coord,
    manager: Addr<AuctionMsg>,
    spec: AuctionSpec,
) -> Result<Outcome, AuctionError> {
    spec.validate()?;
    let timeout = spec.longest(coord).saturating_add(HOST_WAIT_SLACK);
    handle
        .ask(manager, timeout, |reply| AuctionMsg::Run(Box::new(RunRequest { spec, reply })))
        .map_err(AuctionError::Ask)?
}

/// Time the host helpers wait for a manager's counters or reputation.
const HOST_QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// A manager's counters, from a host thread.
///
/// # Errors
/// When the manager does not answer.
pub fn stats_blocking(handle: &EngineHandle, manager: Addr<AuctionMsg>) -> Result<AuctionStats, AuctionError> {
    handle.ask(manager, HOST_QUERY_TIMEOUT, AuctionMsg::Stats).map_err(AuctionError::Ask)
}

/// The reputation of `id` in the table of `manager`'s shard, from a host thread (`None`:
/// never judged there, i.e. neutral).
///
/// # Errors
/// When the manager does not answer.
pub fn reputation_blocking(
    handle: &EngineHandle,
    manager: Addr<AuctionMsg>,
    id: AgentId,
) -> Result<Option<ReputationEntry>, AuctionError> {
    handle.ask(manager, HOST_QUERY_TIMEOUT, |r| AuctionMsg::Reputation(id, r)).map_err(AuctionError::Ask)
}

/// Spawns an [`AuctionManager`] on `shard`.
///
/// # Errors
/// When the shard does not exist or cannot take it.
pub fn spawn_manager(handle: &EngineHandle, coord: &Coord, shard: usize) -> Result<Addr<AuctionMsg>, SpawnError> {
    let coord = coord.clone();
    handle.spawn(SpawnPlacement::Shard(shard), move || AuctionManager::new(coord))
}

#[cfg(test)]
mod tests;
