//! The ballot's owner: [`BallotBox`], one agent per shard, and [`Ballots`], the handle that
//! opens ballots through them (see the protocol in the module docs of `vote`).
//!
//! A box owns the ballots opened through it. State, all on the box's shard:
//!
//! * `open`: the open ballots by id (at most [`MAX_OPEN_BALLOTS`]): electorate, per-voter
//!   state (pending, voted, undelivered), weights, the [`Tally`], the deadline timer and the
//!   proposer's reply token;
//! * `closed` and `closed_order`: the last [`CLOSED_RETAINED`] closed ballots and their late
//!   votes, a map with a ring for eviction (oldest first);
//! * `seq`: the next ballot's sequence number. Ids below it that are not open are closed, so
//!   a late vote is recognised even after its ballot left `closed`.
//!
//! A query electorate's discovery is asked with the ballot's id in its continuation, and its
//! answer comes back as [`BallotMsg::Electorate`]: the box keeps no table of requests, and an
//! answer for a ballot that closed meanwhile (at its deadline) finds it gone and is ignored.
//!
//! Invariants: a ballot is in `open` from `Open` to its close, and replied to exactly once
//! (result or error); its deadline timer is cancelled when it closes early; a voter's vote is
//! tallied at most once; per ballot, `participants + undelivered <= eligible`, and reaching
//! equality closes it.

use super::tally::{Kind, Tally};
use super::voter::{BallotInfo, BallotRequest, VoterMsg};
use super::{
    BallotId, BallotReply, BallotResult, BallotSpec, Choice, ClosedBy, Electorate, Quorum, Rule, VoteError,
    CLOSED_RETAINED, MAX_OPEN_BALLOTS, REPLY_MARGIN,
};
use crate::discovery::Discovered;
use crate::{Coord, CoordError};
use nexus_engine::agent::{Addr, Agent, AgentId, Ctx, SendOptions, SpawnPlacement, TimerId, Undelivered};
use nexus_engine::ask::{AskError, ReplyTo};
use nexus_engine::engine::EngineHandle;
use nexus_engine::metrics::DeadLetterReason;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

/// One vote, as a voter sends it to the box.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vote {
    /// The ballot.
    pub ballot: BallotId,
    /// The voter's index in the electorate (from its [`BallotRequest`]).
    pub index: u32,
    /// The voter (checked against the electorate at `index`).
    pub voter: AgentId,
    /// The choice; `None` abstains.
    pub choice: Option<Choice>,
}

/// A request to open a ballot (boxed in [`BallotMsg::Open`] to keep the message small).
#[derive(Debug)]
pub struct Opening {
    /// What to ask.
    pub spec: BallotSpec,
    /// Where the [`BallotReply`] goes.
    pub reply: ReplyTo<BallotReply>,
}

/// The messages of a [`BallotBox`].
#[derive(Debug)]
pub enum BallotMsg {
    /// Open a ballot; the result (or error) is the reply.
    Open(Box<Opening>),
    /// A voter's vote.
    Vote(Vote),
    /// The box's own deadline timer for a ballot.
    Deadline(BallotId),
    /// The box's counters.
    Stats(ReplyTo<BoxStats>),
    /// What the box remembers of a closed ballot (`None`: not closed, or forgotten).
    Closed(BallotId, ReplyTo<Option<ClosedBallot>>),
    /// The box's own: the answer to the discovery of a ballot's query electorate.
    Electorate(BallotId, Result<Discovered, AskError>),
}

/// A box's counters (since it started).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BoxStats {
    /// Ballots opened.
    pub opened: u64,
    /// Ballots closed (with a result or an error).
    pub closed: u64,
    /// Ballots open now.
    pub open: u64,
    /// Opens refused (invalid spec, too many open).
    pub refused: u64,
    /// Votes tallied (including abstentions and spoiled ballots).
    pub votes: u64,
    /// Further votes from voters that had voted (ignored).
    pub duplicates: u64,
    /// Votes for a ballot that had closed (ignored).
    pub late_votes: u64,
    /// Votes not from the voter at the index they named (ignored).
    pub foreign_votes: u64,
    /// Votes for a ballot this box never opened (ignored).
    pub unknown_votes: u64,
    /// Ballots that could not reach their voter (send refused, or a dead letter).
    pub undelivered: u64,
}

/// What a box remembers of a closed ballot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClosedBallot {
    /// The ballot.
    pub id: BallotId,
    /// Votes that arrived after it closed.
    pub late_votes: u32,
}

const PENDING: u8 = 0;
const VOTED: u8 = 1;
const UNDELIVERED: u8 = 2;

struct OpenBallot {
    info: Arc<BallotInfo>,
    quorum: Quorum,
    voters: Vec<AgentId>,
    /// Per voter (empty: everyone weighs 1).
    weights: Vec<u32>,
    /// The weighted rule's table (sorted by agent) and default, until the electorate is known.
    weighting: Option<(Vec<(AgentId, u32)>, u32)>,
    state: Vec<u8>,
    tally: Tally,
    timer: Option<TimerId>,
    reply: ReplyTo<BallotReply>,
    opened_ns: u64,
}

impl OpenBallot {
    fn complete(&self) -> bool {
        let p = &self.tally.participation;
        !self.voters.is_empty() && p.participants + p.undelivered >= p.eligible
    }
}

/// The agent that owns ballots; one per shard, started by [`Ballots::start`]. See the module
/// docs.
pub struct BallotBox {
    coord: Coord,
    me: Option<Addr<BallotMsg>>,
    seq: u64,
    open: HashMap<u64, OpenBallot>,
    closed: HashMap<u64, u32>,
    closed_order: VecDeque<u64>,
    stats: BoxStats,
}

impl BallotBox {
    /// A box that finds query electorates through `coord`.
    pub fn new(coord: Coord) -> Self {
        Self {
            coord,
            me: None,
            seq: 0,
            open: HashMap::new(),
            closed: HashMap::new(),
            closed_order: VecDeque::with_capacity(CLOSED_RETAINED),
            stats: BoxStats::default(),
        }
    }

    fn me(&mut self, ctx: &Ctx<'_>) -> Addr<BallotMsg> {
        *self.me.get_or_insert_with(|| ctx.myself())
    }

    fn open_ballot(&mut self, opening: Opening, ctx: &mut Ctx<'_>) {
        let Opening { spec, reply } = opening;
        if let Err(e) = spec.validate() {
            self.stats.refused += 1;
            ctx.reply(reply, Err(e));
            return;
        }
        if self.open.len() >= MAX_OPEN_BALLOTS {
            self.stats.refused += 1;
            ctx.reply(reply, Err(VoteError::TooManyOpen));
            return;
        }
        let id = BallotId::new(ctx.shard(), self.seq);
        self.seq += 1;
        self.stats.opened += 1;
        let kind = Kind::of(&spec.rule);
        let weighting = match spec.rule {
            Rule::Weighted { mut weights, default_weight } => {
                weights.sort_unstable_by_key(|w| w.0);
                Some((weights, default_weight))
            }
            _ => None,
        };
        let options = spec.options.len();
        let info = Arc::new(BallotInfo { id, topic: spec.topic, options: spec.options, ranked: kind == Kind::Runoff });
        let me = self.me(ctx);
        let timer = ctx.send_control_after(me, BallotMsg::Deadline(id), spec.deadline);
        let opened_ns = ctx.now_ns();
        let ballot = OpenBallot {
            info,
            quorum: spec.quorum,
            voters: Vec::new(),
            weights: Vec::new(),
            weighting,
            state: Vec::new(),
            tally: Tally::new(kind, options),
            timer: Some(timer),
            reply,
            opened_ns,
        };
        self.open.insert(id.to_bits(), ballot);
        match spec.electorate {
            Electorate::Agents(voters) => self.send_ballots(id, voters, ctx),
            Electorate::Query(query) => {
                match self.coord.discover(ctx, query, move |found| BallotMsg::Electorate(id, found)) {
                    Ok(()) => {}
                    Err(e) => {
                        let e = match e {
                            CoordError::Ask(e) => e,
                            _ => AskError::Undelivered(DeadLetterReason::MailboxFull),
                        };
                        self.fail(id, VoteError::Discovery(e), ctx);
                    }
                }
            }
        }
    }

    /// Fixes the electorate of ballot `id` and sends each voter its ballot.
    fn send_ballots(&mut self, id: BallotId, voters: Vec<AgentId>, ctx: &mut Ctx<'_>) {
        let me = self.me(ctx);
        let Some(b) = self.open.get_mut(&id.to_bits()) else { return };
        let n = voters.len();
        b.state = vec![PENDING; n];
        if let Some((table, default)) = b.weighting.take() {
            b.weights =
                voters.iter().map(|v| table.binary_search_by_key(v, |w| w.0).map_or(default, |i| table[i].1)).collect();
        }
        let p = &mut b.tally.participation;
        p.eligible = n as u32;
        p.weight_eligible = if b.weights.is_empty() { n as u64 } else { b.weights.iter().map(|&w| w as u64).sum() };
        for (i, voter) in voters.iter().enumerate() {
            let request = BallotRequest { ballot_box: me, index: i as u32, info: b.info.clone() };
            if ctx
                .send_with(Addr::<VoterMsg>::from_id(*voter), VoterMsg::Ballot(request), SendOptions::new().tracked())
                .is_err()
            {
                b.state[i] = UNDELIVERED;
                b.tally.participation.undelivered += 1;
                self.stats.undelivered += 1;
            }
        }
        b.voters = voters;
        if n == 0 || b.complete() {
            self.close(id, ClosedBy::Complete, ctx);
        }
    }

    fn on_vote(&mut self, vote: Vote, ctx: &mut Ctx<'_>) {
        let Some(b) = self.open.get_mut(&vote.ballot.to_bits()) else {
            self.late_or_unknown(vote.ballot, ctx);
            return;
        };
        let i = vote.index as usize;
        if b.voters.get(i) != Some(&vote.voter) {
            b.tally.participation.foreign += 1;
            self.stats.foreign_votes += 1;
            return;
        }
        match b.state[i] {
            VOTED => {
                b.tally.participation.duplicates += 1;
                self.stats.duplicates += 1;
                return;
            }
            UNDELIVERED => b.tally.participation.undelivered -= 1,
            _ => {}
        }
        b.state[i] = VOTED;
        let weight = b.weights.get(i).map_or(1, |&w| w as u64);
        b.tally.record(vote.choice, weight);
        self.stats.votes += 1;
        if b.complete() {
            self.close(vote.ballot, ClosedBy::Complete, ctx);
        }
    }

    fn late_or_unknown(&mut self, id: BallotId, ctx: &Ctx<'_>) {
        if id.shard() == ctx.shard() && id.seq() < self.seq {
            self.stats.late_votes += 1;
            if let Some(late) = self.closed.get_mut(&id.to_bits()) {
                *late = late.saturating_add(1);
            }
        } else {
            self.stats.unknown_votes += 1;
        }
    }

    fn close(&mut self, id: BallotId, by: ClosedBy, ctx: &mut Ctx<'_>) {
        let Some(mut b) = self.open.remove(&id.to_bits()) else { return };
        if let Some(timer) = b.timer.take() {
            if by != ClosedBy::Deadline {
                ctx.cancel_timer(timer);
            }
        }
        let decision = b.tally.decide(b.quorum);
        let result = BallotResult {
            ballot: id,
            outcome: decision.outcome,
            votes: std::mem::take(&mut b.tally.votes),
            weights: decision.weights,
            participation: b.tally.participation,
            closed_by: by,
            rounds: decision.rounds,
            electorate: b.voters,
            info: b.info,
            elapsed_ns: ctx.now_ns().saturating_sub(b.opened_ns),
        };
        ctx.reply(b.reply, Ok(result));
        self.remember(id);
    }

    fn fail(&mut self, id: BallotId, error: VoteError, ctx: &mut Ctx<'_>) {
        let Some(mut b) = self.open.remove(&id.to_bits()) else { return };
        if let Some(timer) = b.timer.take() {
            ctx.cancel_timer(timer);
        }
        ctx.reply(b.reply, Err(error));
        self.remember(id);
    }

    /// The discovery of ballot `id`'s query electorate answered.
    fn electorate(&mut self, id: BallotId, found: Result<Discovered, AskError>, ctx: &mut Ctx<'_>) {
        if !self.open.contains_key(&id.to_bits()) {
            return; // closed at its deadline before discovery answered
        }
        match found {
            Ok(found) => {
                let voters = found.candidates.iter().map(|c| c.id).collect();
                self.send_ballots(id, voters, ctx);
            }
            Err(e) => self.fail(id, VoteError::Discovery(e), ctx),
        }
    }

    fn remember(&mut self, id: BallotId) {
        self.stats.closed += 1;
        if self.closed_order.len() == CLOSED_RETAINED {
            if let Some(oldest) = self.closed_order.pop_front() {
                self.closed.remove(&oldest);
            }
        }
        self.closed_order.push_back(id.to_bits());
        self.closed.insert(id.to_bits(), 0);
        debug_assert!(self.closed.len() <= CLOSED_RETAINED && self.closed_order.len() <= CLOSED_RETAINED);
    }
}

impl Agent for BallotBox {
    type Msg = BallotMsg;

    fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        self.me(ctx);
    }

    fn handle(&mut self, msg: BallotMsg, ctx: &mut Ctx<'_>) {
        match msg {
            BallotMsg::Vote(vote) => self.on_vote(vote, ctx),
            BallotMsg::Open(opening) => self.open_ballot(*opening, ctx),
            BallotMsg::Deadline(id) => self.close(id, ClosedBy::Deadline, ctx),
            BallotMsg::Stats(reply) => {
                let stats = BoxStats { open: self.open.len() as u64, ..self.stats };
                ctx.reply(reply, stats);
            }
            BallotMsg::Closed(id, reply) => {
                let found = self.closed.get(&id.to_bits()).map(|&late_votes| ClosedBallot { id, late_votes });
                ctx.reply(reply, found);
            }
            BallotMsg::Electorate(id, found) => self.electorate(id, found, ctx),
        }
    }

    fn on_undelivered(&mut self, undelivered: Undelivered, ctx: &mut Ctx<'_>) {
        self.stats.undelivered += 1;
        let Ok(VoterMsg::Ballot(request)) = undelivered.message.take::<VoterMsg>() else { return };
        let id = request.info.id;
        let Some(b) = self.open.get_mut(&id.to_bits()) else { return };
        let i = request.index as usize;
        if b.state.get(i) == Some(&PENDING) {
            b.state[i] = UNDELIVERED;
            b.tally.participation.undelivered += 1;
            if b.complete() {
                self.close(id, ClosedBy::Complete, ctx);
            }
        }
    }
}

/// The ballot boxes of one engine, one per shard; cheap to clone, `Send + Sync`.
#[derive(Clone, Debug)]
pub struct Ballots {
    boxes: Arc<[Addr<BallotMsg>]>,
    discovery_timeout: Duration,
}

impl Ballots {
    /// Starts one [`BallotBox`] on every shard of the engine behind `handle`; query
    /// electorates are found through `coord`.
    ///
    /// # Errors
    /// When a box cannot be spawned.
    pub fn start(handle: &EngineHandle, coord: &Coord) -> Result<Ballots, VoteError> {
        let mut boxes = Vec::with_capacity(handle.shards());
        for shard in 0..handle.shards() {
            let coord = coord.clone();
            boxes.push(handle.spawn(SpawnPlacement::Shard(shard), move || BallotBox::new(coord))?);
        }
        let discovery_timeout = Duration::from_millis(coord.config().discovery_timeout_ms.saturating_mul(2));
        Ok(Ballots { boxes: Arc::from(boxes), discovery_timeout })
    }

    /// The box of `shard`.
    pub fn box_of(&self, shard: usize) -> Option<Addr<BallotMsg>> {
        self.boxes.get(shard).copied()
    }

    /// How long a proposer waits for the result of `spec`: its deadline, the discovery of a
    /// query electorate, and [`REPLY_MARGIN`].
    pub fn reply_timeout(&self, spec: &BallotSpec) -> Duration {
        let discovery = match spec.electorate {
            Electorate::Query(_) => self.discovery_timeout,
            Electorate::Agents(_) => Duration::ZERO,
        };
        spec.deadline.saturating_add(discovery).saturating_add(REPLY_MARGIN)
    }

    /// Opens `spec` in the calling agent's shard's box. `adapt` turns the [`BallotReply`]
    /// into a message of the calling agent, which gets it through `Agent::handle` (put in the
    /// closure whatever the caller needs to use the result); a box that did not answer within
    /// [`reply_timeout`](Self::reply_timeout) gives `Err(VoteError::Ask(_))`. `adapt` must build
    /// the caller's own message type (see `Ctx::ask`), for example
    /// `ballots.open(ctx, spec, move |result| Msg::Decided { topic, result })`.
    ///
    /// # Errors
    /// An invalid spec, no box on this shard, or the box's mailbox is full (`adapt` is then
    /// dropped, never run).
    pub fn open<T, A>(&self, ctx: &mut Ctx<'_>, spec: BallotSpec, adapt: A) -> Result<(), VoteError>
    where
        T: Send + 'static,
        A: FnOnce(BallotReply) -> T + Send + 'static,
    {
        spec.validate()?;
        let ballot_box = self.box_of(ctx.shard()).ok_or(VoteError::NoBox(ctx.shard()))?;
        let timeout = self.reply_timeout(&spec);
        ctx.ask(ballot_box, |reply| BallotMsg::Open(Box::new(Opening { spec, reply })))
            .timeout(timeout)
            .then(move |answer: Result<BallotReply, AskError>| adapt(answer.unwrap_or_else(|e| Err(VoteError::Ask(e)))))
            .map_err(|_| VoteError::Full)
    }

    /// Every box's counters, in shard order (from a host thread).
    ///
    /// # Errors
    /// When a box does not answer.
    pub fn stats_blocking(&self, handle: &EngineHandle) -> Result<Vec<BoxStats>, VoteError> {
        let mut out = Vec::with_capacity(self.boxes.len());
        for b in self.boxes.iter() {
            out.push(handle.ask(*b, Duration::from_secs(5), BallotMsg::Stats)?);
        }
        Ok(out)
    }

    /// What `id`'s box remembers of it once closed: its late votes (from a host thread).
    /// `None` while it is open, or once the box forgot it (after [`CLOSED_RETAINED`] later
    /// closes).
    ///
    /// # Errors
    /// No box for the ballot's shard, or it does not answer.
    pub fn closed_blocking(&self, handle: &EngineHandle, id: BallotId) -> Result<Option<ClosedBallot>, VoteError> {
        let b = self.box_of(id.shard()).ok_or(VoteError::NoBox(id.shard()))?;
        Ok(handle.ask(b, Duration::from_secs(5), |r| BallotMsg::Closed(id, r))?)
    }
}

/// Runs one ballot end to end from a host thread: opens `spec` in shard 0's box and blocks
/// until its result (at most [`Ballots::reply_timeout`]).
///
/// # Errors
/// An invalid spec, a box that does not answer, or a failed discovery.
pub fn vote_blocking(handle: &EngineHandle, ballots: &Ballots, spec: BallotSpec) -> Result<BallotResult, VoteError> {
    spec.validate()?;
    let ballot_box = ballots.box_of(0).ok_or(VoteError::NoBox(0))?;
    let timeout = ballots.reply_timeout(&spec);
    handle.ask(ballot_box, timeout, |reply| BallotMsg::Open(Box::new(Opening { spec, reply })))?
}
