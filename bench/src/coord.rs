//! `coord`: what the coordination layer (`nexus-coord`) costs: discovery, auctions and votes.
//!
//! Setup: [`CoordParams::agents_per_shard`] members on every shard, each declaring
//! [`CoordParams::caps_per_agent`] of [`CoordParams::tags`] capability tags (tags `k` and
//! `k + 1` for member `k`, so each tag is held by `agents_per_shard · 2 / tags` members of a
//! shard) and reporting a load from 0 to 7 drawn from a hash of `k` (independent of its tags),
//! so about one member in eight is idle and a discovery has to look past the busy ones. A `Prober` on shard 0 runs the measured operations one after
//! the other, timing each with `Instant` (a clock read is included in every sample):
//!
//! - `discover_local`: a synchronous `Coord::discover_local_into` over shard 0's members, one
//!   tag asked, best [`CoordParams::limit`] returned;
//! - `discover_global`: `Coord::discover` (an ask to the prober's own index agent, which ranks
//!   its shard, asks every other shard and merges), timed from the call to the `Discovered`
//!   reaching the prober's `handle`;
//! - `auction`: a whole contract-net auction run by a manager on shard 0, from the prober's
//!   request to the outcome reaching its `handle`: a global discovery of the
//!   [`BIDDERS`] bidders (spread over the shards), the call for bids, every bid, the award
//!   (zero-length bid window: the round closes when every bidder has answered), the winner's
//!   `done` report, and the outcome. Measured with the manager watching its bidders (the
//!   default) and without (`auction_unwatched`);
//! - `vote`: a majority ballot among [`VOTERS`] voters spread over the shards, from the
//!   prober's `Ballots::open` to the result reaching its `handle` (the ballot closes when all
//!   have voted).
//!
//! Every answer reaches the prober as `ProberMsg::Answer`, built by the adapter given with the
//! request, which carries the tag that was asked about.
//!
//! Checks: every discovery returns `limit` candidates holding the tag, in ranking order, and
//! every global one heard from every shard; every auction is completed in one round by the
//! cheapest bidder; every ballot is decided for the option the majority chose, with all voters
//! taking part.

use crate::setup::{self, EngineSettings};
use crate::stats::{self, Percentiles};
use crate::BenchError;
use hdrhistogram::Histogram;
use nexus_coord::auction::{
    self, AuctionError, AuctionMsg, AuctionSpec, BidDecision, Bidder, CallForBids, Contract, Contractor, Outcome,
    OutcomeKind, RunRequest, Task,
};
use nexus_coord::caps::CapSet;
use nexus_coord::index::{Candidate, LoadSource, MatchMode, Query};
use nexus_coord::vote::{BallotReply, BallotSpec, Ballots, Choice, Elector, Electorate, Rule};
use nexus_coord::{Coord, Discovered};
use nexus_engine::agent::{Addr, Agent, AgentId, Ctx, SpawnPlacement};
use nexus_engine::ask::{AskError, ReplyTo};
use nexus_engine::config::CoordConfig;
use nexus_engine::engine::EngineHandle;
use std::time::{Duration, Instant};

const WORKLOAD: &str = "coord";

/// Bidders in the measured auction.
pub const BIDDERS: usize = 10;
/// Voters in the measured ballot.
pub const VOTERS: usize = 9;
/// Voters (of [`VOTERS`]) that choose option 0; the rest choose option 1.
const VOTERS_FOR_FIRST: usize = 6;

/// The coordination scenario's size.
#[derive(Clone, Copy, Debug)]
pub struct CoordParams {
    /// Members declared on each shard.
    pub agents_per_shard: usize,
    /// Distinct capability tags.
    pub tags: usize,
    /// Tags each member declares.
    pub caps_per_agent: usize,
    /// Candidates a discovery returns.
    pub limit: usize,
    /// Samples per measured operation.
    pub samples: u64,
}

impl Default for CoordParams {
    fn default() -> Self {
        Self { agents_per_shard: 10_000, tags: 16, caps_per_agent: 2, limit: 5, samples: 20_000 }
    }
}

/// The measured figures.
#[derive(Clone, Copy, Debug)]
pub struct CoordFigures {
    /// Local discovery among the prober shard's members.
    pub discover_local: Percentiles,
    /// Global discovery over every shard.
    pub discover_global: Percentiles,
    /// A whole auction, the manager watching its bidders.
    pub auction: Percentiles,
    /// A whole auction, the manager not watching its bidders.
    pub auction_unwatched: Percentiles,
    /// A 9-voter majority ballot.
    pub vote: Percentiles,
    /// Members on the prober's shard.
    pub local_members: usize,
}

/// A declared member: holds its tags, does nothing else.
struct Member {
    coord: Coord,
    caps: CapSet,
    load: f64,
}

impl Agent for Member {
    type Msg = ();
    fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        self.coord.declare(ctx, self.caps, LoadSource::Reported { initial: self.load });
    }
    fn handle(&mut self, _msg: (), _ctx: &mut Ctx<'_>) {}
}

/// Spawns members on its own shard (spawning locally avoids one host request per member).
struct Populator {
    coord: Coord,
    tags: Vec<CapSet>,
}

enum PopulatorMsg {
    /// Spawn members `first..first + count` (member `k` holds tags `k`, `k + 1`, ...).
    Populate { first: usize, count: usize, caps_per_agent: usize, reply: ReplyTo<usize> },
}

impl Agent for Populator {
    type Msg = PopulatorMsg;
    fn handle(&mut self, msg: PopulatorMsg, ctx: &mut Ctx<'_>) {
        let PopulatorMsg::Populate { first, count, caps_per_agent, reply } = msg;
        let mut spawned = 0;
        for k in first..first + count {
            let caps = (0..caps_per_agent).fold(CapSet::EMPTY, |s, j| s.union(self.tags[(k + j) % self.tags.len()]));
            let load = ((k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 61) as f64;
            if ctx.spawn(Member { coord: self.coord.clone(), caps, load }).is_ok() {
                spawned += 1;
            }
        }
        ctx.reply(reply, spawned);
    }
}

/// A bidder that bids its fixed cost and does the work at once.
struct FixedBidder {
    cost: f64,
}

impl Bidder for FixedBidder {
    fn bid(&mut self, _call: &CallForBids) -> BidDecision {
        BidDecision::Bid { cost: self.cost, completion: Duration::from_micros(10) }
    }
    fn perform(&mut self, contract: Contract, ctx: &mut Ctx<'_>) {
        // A refused report runs into the deadline, which the outcome check then reports.
        let _ = contract.done(ctx);
    }
}

/// What the prober measures one after the other (one request outstanding at a time).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Global,
    Auction { watched: bool },
    Vote,
}

/// Runs the measured operations on shard 0.
struct Prober {
    coord: Coord,
    tags: Vec<CapSet>,
    limit: usize,
    manager: Addr<AuctionMsg>,
    task_caps: CapSet,
    cheapest: AgentId,
    ballots: Ballots,
    voters: Vec<AgentId>,
    global: Option<GlobalRun>,
}

struct GlobalRun {
    kind: Kind,
    remaining: u64,
    started: Instant,
    next_tag: usize,
    hist: Histogram<u64>,
    shards: usize,
    reply: Option<ReplyTo<Result<Histogram<u64>, String>>>,
}

enum ProberMsg {
    Local {
        samples: u64,
        reply: ReplyTo<Result<Histogram<u64>, String>>,
    },
    Sequence {
        kind: Kind,
        samples: u64,
        reply: ReplyTo<Result<Histogram<u64>, String>>,
    },
    /// The answer to the running sequence's request about `tag`.
    Answer {
        tag: CapSet,
        answer: Answer,
    },
}

/// What a sequence's request is answered with, one variant per [`Kind`].
enum Answer {
    Discovered(Result<Discovered, AskError>),
    Auction(Result<Result<Outcome, AuctionError>, AskError>),
    Ballot(BallotReply),
}

/// Checks one discovery's answer: `limit` candidates with the tag, in ranking order.
fn check(found: &[Candidate], tag: CapSet, limit: usize) -> Result<(), String> {
    if found.len() != limit {
        return Err(format!("a discovery returned {} candidates, {limit} expected", found.len()));
    }
    if found.iter().any(|c| !c.caps.contains_all(tag)) {
        return Err("a candidate lacks the asked capability".into());
    }
    if found.windows(2).any(|w| !w[0].ranks_before(&w[1])) {
        return Err("candidates out of ranking order".into());
    }
    Ok(())
}

impl Prober {
    /// Sends the next request of the running sequence; its answer comes back as
    /// `ProberMsg::Answer` with the tag asked about.
    fn ask_global(&mut self, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let Some(run) = self.global.as_mut() else { return Ok(()) };
        let tag = self.tags[run.next_tag % self.tags.len()];
        run.next_tag += 1;
        run.started = Instant::now();
        match run.kind {
            Kind::Global => self
                .coord
                .discover(ctx, Query::all(tag, self.limit), move |d| ProberMsg::Answer {
                    tag,
                    answer: Answer::Discovered(d),
                })
                .map_err(|e| e.to_string()),
            Kind::Auction { watched } => {
                let spec = AuctionSpec::new(Task::new(self.task_caps, Duration::from_secs(5)))
                    .discover(BIDDERS, MatchMode::All)
                    .window(Duration::ZERO)
                    .watch_bidders(watched);
                ctx.ask(self.manager, |reply| AuctionMsg::Run(Box::new(RunRequest { spec, reply })))
                    .timeout(Duration::from_secs(30))
                    .then(move |o| ProberMsg::Answer { tag, answer: Answer::Auction(o) })
                    .map_err(|_| "the auction manager refused the request".to_string())
            }
            Kind::Vote => {
                let spec = BallotSpec::new("bench", &["first", "second"], Electorate::Agents(self.voters.clone()))
                    .rule(Rule::Majority)
                    .deadline(Duration::from_secs(5));
                self.ballots
                    .open(ctx, spec, move |b| ProberMsg::Answer { tag, answer: Answer::Ballot(b) })
                    .map_err(|e| e.to_string())
            }
        }
    }

    /// Checks one answer of the running sequence, to a request about `tag`.
    fn check_answer(&self, tag: CapSet, shards: usize, answer: Answer) -> Result<(), String> {
        match answer {
            Answer::Discovered(d) => {
                let d = d.map_err(|e| e.to_string())?;
                if d.shards_answered != shards {
                    return Err(format!("{} of {shards} shards answered a discovery", d.shards_answered));
                }
                check(&d.candidates, tag, self.limit)
            }
            Answer::Auction(outcome) => {
                let outcome = outcome.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
                match outcome.kind {
                    OutcomeKind::Completed { winner, .. } if winner == self.cheapest && outcome.rounds == 1 => Ok(()),
                    other => Err(format!("an auction ended {other:?} after {} rounds", outcome.rounds)),
                }
            }
            Answer::Ballot(result) => {
                let result = result.map_err(|e| e.to_string())?;
                if result.winner() != Some(0) || result.participation.participants as usize != VOTERS {
                    return Err(format!(
                        "a ballot ended {:?} with {} of {VOTERS} voters",
                        result.outcome, result.participation.participants
                    ));
                }
                Ok(())
            }
        }
    }

    /// Records and checks one answer of the running sequence, then asks again or ends it.
    fn on_answer(&mut self, ctx: &mut Ctx<'_>, tag: CapSet, answer: Answer) {
        let Some(run) = self.global.as_ref() else { return };
        let elapsed = run.started.elapsed();
        let outcome = self.check_answer(tag, run.shards, answer);
        if outcome.is_err() {
            return self.end_global(ctx, outcome);
        }
        let Some(run) = self.global.as_mut() else { return };
        stats::record(&mut run.hist, elapsed);
        run.remaining -= 1;
        if run.remaining == 0 {
            return self.end_global(ctx, Ok(()));
        }
        let sent = self.ask_global(ctx);
        if sent.is_err() {
            self.end_global(ctx, sent);
        }
    }

    fn end_global(&mut self, ctx: &mut Ctx<'_>, result: Result<(), String>) {
        if let Some(mut run) = self.global.take() {
            if let Some(reply) = run.reply.take() {
                ctx.reply(reply, result.map(|()| std::mem::replace(&mut run.hist, stats::histogram())));
            }
        }
    }
}

impl Agent for Prober {
    type Msg = ProberMsg;

    fn handle(&mut self, msg: ProberMsg, ctx: &mut Ctx<'_>) {
        match msg {
            ProberMsg::Local { samples, reply } => {
                let mut hist = stats::histogram();
                let mut out = Vec::with_capacity(self.limit);
                let mut result = Ok(());
                for i in 0..samples {
                    let tag = self.tags[i as usize % self.tags.len()];
                    let query = Query::all(tag, self.limit);
                    let start = Instant::now();
                    self.coord.discover_local_into(ctx, &query, &mut out);
                    stats::record(&mut hist, start.elapsed());
                    if let Err(e) = check(&out, tag, self.limit) {
                        result = Err(e);
                        break;
                    }
                }
                ctx.reply(reply, result.map(|()| hist));
            }
            ProberMsg::Sequence { kind, samples, reply } => {
                self.global = Some(GlobalRun {
                    kind,
                    remaining: samples,
                    started: Instant::now(),
                    next_tag: 0,
                    hist: stats::histogram(),
                    shards: ctx.shards(),
                    reply: Some(reply),
                });
                let sent = self.ask_global(ctx);
                if sent.is_err() {
                    self.end_global(ctx, sent);
                }
            }
            ProberMsg::Answer { tag, answer } => self.on_answer(ctx, tag, answer),
        }
    }
}

/// Everything the coordination measurements need, started once per engine.
pub struct CoordSetup {
    coord: Coord,
    tags: Vec<CapSet>,
    local_members: usize,
    manager: Addr<AuctionMsg>,
    task_caps: CapSet,
    cheapest: AgentId,
    ballots: Ballots,
    voters: Vec<AgentId>,
}

/// Starts the coordination layer on `handle`'s engine and declares the members.
///
/// # Errors
/// When an agent cannot be spawned or a populator does not answer.
pub fn start(handle: &EngineHandle, params: CoordParams) -> Result<CoordSetup, BenchError> {
    if params.limit == 0 || params.tags == 0 || params.caps_per_agent == 0 || params.caps_per_agent > params.tags {
        return Err(BenchError::check(WORKLOAD, "limit, tags and caps per agent must be positive, caps ≤ tags"));
    }
    // A generous discovery timeout: on a loaded machine a shard thread can be descheduled for
    // longer than the default 100 ms, and the bench reports that as a slow sample, not a miss.
    let config = CoordConfig { discovery_timeout_ms: 5_000, ..CoordConfig::default() };
    let coord = Coord::start(handle, &config).map_err(|e| BenchError::check(WORKLOAD, e.to_string()))?;
    let names: Vec<String> = (0..params.tags).map(|t| format!("tag{t}")).collect();
    let tags = names
        .iter()
        .map(|n| coord.cap_set(&[n.as_str()]))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| BenchError::check(WORKLOAD, e.to_string()))?;
    let shards = handle.shards();
    let mut local_members = 0;
    for shard in 0..shards {
        let (first, count) = (params.agents_per_shard * shard, params.agents_per_shard);
        let (c, t) = (coord.clone(), tags.clone());
        let populator = setup::spawn_on(handle, WORKLOAD, shard, move || Populator { coord: c, tags: t })?;
        let timeout = setup::timeout_for(count as u64, Duration::from_micros(50));
        let caps_per_agent = params.caps_per_agent;
        let spawned = setup::ask(handle, WORKLOAD, "populate", populator, timeout, |reply| PopulatorMsg::Populate {
            first,
            count,
            caps_per_agent,
            reply,
        })?;
        if spawned != count {
            return Err(BenchError::check(WORKLOAD, format!("shard {shard} spawned {spawned} of {count} members")));
        }
        if shard == 0 {
            local_members = count;
        }
    }
    // The auction: BIDDERS contractors over the shards, costs 10, 11, ... (shard order), and a
    // manager on shard 0.
    let task_caps = coord.cap_set(&["bench-task"]).map_err(|e| BenchError::check(WORKLOAD, e.to_string()))?;
    let mut cheapest = None;
    for b in 0..BIDDERS {
        let c = coord.clone();
        let cost = 10.0 + b as f64;
        let addr =
            setup::spawn_on(handle, WORKLOAD, b % shards, move || Contractor::new(c, task_caps, FixedBidder { cost }))?;
        cheapest.get_or_insert(addr.id());
    }
    let cheapest = cheapest.ok_or_else(|| BenchError::check(WORKLOAD, "no bidder"))?;
    let manager =
        auction::spawn_manager(handle, &coord, 0).map_err(|source| BenchError::Spawn { workload: WORKLOAD, source })?;
    // The ballot: VOTERS electors over the shards, VOTERS_FOR_FIRST of them for option 0.
    let ballots = Ballots::start(handle, &coord).map_err(|e| BenchError::check(WORKLOAD, e.to_string()))?;
    let mut voters = Vec::with_capacity(VOTERS);
    for v in 0..VOTERS {
        let choice = if v < VOTERS_FOR_FIRST { 0 } else { 1 };
        let elector = setup::spawn_on(handle, WORKLOAD, (v + 1) % shards, move || {
            Elector::new(move |_: &nexus_coord::vote::BallotInfo| Some(Choice::One(choice)))
        })?;
        voters.push(elector.id());
    }
    Ok(CoordSetup { coord, tags, local_members, manager, task_caps, cheapest, ballots, voters })
}

/// Runs one round of every measurement.
///
/// # Errors
/// When a check fails or the prober does not answer.
pub fn run(handle: &EngineHandle, setup: &CoordSetup, params: CoordParams) -> Result<CoordFigures, BenchError> {
    let prober = Prober {
        coord: setup.coord.clone(),
        tags: setup.tags.clone(),
        limit: params.limit,
        manager: setup.manager,
        task_caps: setup.task_caps,
        cheapest: setup.cheapest,
        ballots: setup.ballots.clone(),
        voters: setup.voters.clone(),
        global: None,
    };
    let prober = handle
        .spawn(SpawnPlacement::Shard(0), move || prober)
        .map_err(|source| BenchError::Spawn { workload: WORKLOAD, source })?;
    let timeout = setup::timeout_for(params.samples, Duration::from_millis(1));
    let local = setup::ask(handle, WORKLOAD, "local discoveries", prober, timeout, |reply| ProberMsg::Local {
        samples: params.samples,
        reply,
    })?
    .map_err(|e| BenchError::check(WORKLOAD, e))?;
    let sequence = |kind: Kind, what: &'static str, samples: u64| {
        setup::ask(handle, WORKLOAD, what, prober, timeout, |reply| ProberMsg::Sequence { kind, samples, reply })?
            .map_err(|e| BenchError::check(WORKLOAD, e))
    };
    let global = sequence(Kind::Global, "global discoveries", params.samples)?;
    let rounds = params.samples / 4;
    let auction = sequence(Kind::Auction { watched: true }, "auctions", rounds)?;
    let auction_unwatched = sequence(Kind::Auction { watched: false }, "unwatched auctions", rounds)?;
    let vote = sequence(Kind::Vote, "ballots", rounds)?;
    handle.stop(prober.id()).map_err(|e| BenchError::check(WORKLOAD, e.to_string()))?;
    Ok(CoordFigures {
        discover_local: Percentiles::of(&local),
        discover_global: Percentiles::of(&global),
        auction: Percentiles::of(&auction),
        auction_unwatched: Percentiles::of(&auction_unwatched),
        vote: Percentiles::of(&vote),
        local_members: setup.local_members,
    })
}

/// Runs the scenario on a fresh engine with `settings` (for tests and the criterion-free
/// harness): start, one round, no-loss shutdown.
///
/// # Errors
/// As [`start`] and [`run`], and when the shutdown finds a lost message.
pub fn run_once(settings: &EngineSettings, params: CoordParams) -> Result<CoordFigures, BenchError> {
    let engine = settings.build()?;
    let handle = engine.handle();
    let setup = start(&handle, params)?;
    let figures = run(&handle, &setup, params)?;
    setup::shutdown(engine, WORKLOAD)?;
    Ok(figures)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_coord_round_checks_itself() {
        let params = CoordParams { agents_per_shard: 200, tags: 8, caps_per_agent: 2, limit: 5, samples: 200 };
        let figures = run_once(&EngineSettings::test(2), params).unwrap();
        assert_eq!(figures.discover_local.samples, 200);
        assert_eq!(figures.discover_global.samples, 200);
        assert_eq!((figures.auction.samples, figures.auction_unwatched.samples, figures.vote.samples), (50, 50, 50));
        assert_eq!(figures.local_members, 200);
        assert!(figures.discover_local.p50_ns > 0.0 && figures.discover_global.p50_ns > 0.0);
    }
}
