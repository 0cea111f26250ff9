//! The voter's side: the one message type voters take ([`VoterMsg`]), the request it carries
//! ([`BallotRequest`], answered with [`BallotRequest::cast`]), and the generic [`Elector`]
//! agent that wraps a [`Voter`].
//!
//! Ballot boxes know voters only by `AgentId`, and send them a `VoterMsg`. An agent whose
//! message type is something else gets it as a dead letter counted by the engine as
//! `type_mismatch`; the box learns of it (its ballots are sent tracked) and counts that voter as
//! `undelivered`. So a voter is an [`Elector`], or an agent of its own with
//! `type Msg = VoterMsg`.
//!
//! Everything here runs on the voter's shard; the vote travels to the box as a message.

use super::ballot_box::{BallotMsg, Vote};
use super::{BallotId, Choice};
use crate::caps::CapSet;
use crate::index::LoadSource;
use crate::Coord;
use nexus_engine::agent::{Addr, Agent, AgentId, Ctx, SendError};
use std::sync::Arc;

/// What a ballot asks, shared by every voter of one ballot (one `Arc`).
#[derive(Debug, PartialEq, Eq)]
pub struct BallotInfo {
    /// The ballot.
    pub id: BallotId,
    /// What it is about.
    pub topic: Arc<str>,
    /// The options; a [`Choice`] names them by index.
    pub options: Arc<[Arc<str>]>,
    /// Whether rankings are counted beyond the first preference (instant runoff).
    pub ranked: bool,
}

/// One voter's copy of a ballot: which ballot, where to vote, and the voter's place in the
/// electorate. Cloning it (to vote twice, say) is allowed: the box counts the second vote as
/// a duplicate.
#[derive(Clone, Debug)]
pub struct BallotRequest {
    /// The box that owns the ballot (where votes go).
    pub ballot_box: Addr<BallotMsg>,
    /// The voter's index in the electorate.
    pub index: u32,
    /// The ballot.
    pub info: Arc<BallotInfo>,
}

impl BallotRequest {
    /// The vote message for `choice` (`None`: abstain) from `voter`, for a caller that sends it
    /// itself (later, with `Ctx::send_after`, say).
    pub fn vote_msg(&self, voter: AgentId, choice: Option<Choice>) -> BallotMsg {
        BallotMsg::Vote(Vote { ballot: self.info.id, index: self.index, voter, choice })
    }

    /// Sends the running agent's vote for `choice` (`None`: abstain) to the box.
    ///
    /// # Errors
    /// When the box's mailbox (or the way to its shard) is full: the vote comes back in the
    /// error; the ballot will count this voter as absent unless it votes again in time.
    pub fn cast(&self, ctx: &mut Ctx<'_>, choice: Option<Choice>) -> Result<(), SendError<BallotMsg>> {
        let msg = self.vote_msg(ctx.id(), choice);
        ctx.send(self.ballot_box, msg)
    }
}

/// The one message type voters take.
#[derive(Debug)]
pub enum VoterMsg {
    /// A ballot to vote on: answer with [`BallotRequest::cast`].
    Ballot(BallotRequest),
}

/// A voter's judgement; wrap it in an [`Elector`] to make it an agent.
pub trait Voter: Send + 'static {
    /// The choice on `ballot`, or `None` to abstain.
    fn vote(&mut self, ballot: &BallotInfo) -> Option<Choice>;
}

impl<F> Voter for F
where
    F: FnMut(&BallotInfo) -> Option<Choice> + Send + 'static,
{
    fn vote(&mut self, ballot: &BallotInfo) -> Option<Choice> {
        self(ballot)
    }
}

/// The agent that votes with a [`Voter`]: it answers every [`VoterMsg::Ballot`] with the
/// voter's choice, at once. Optionally it declares capabilities at start, so query electorates
/// find it.
pub struct Elector<V> {
    voter: V,
    declare: Option<(Coord, CapSet)>,
    votes_cast: u64,
    votes_unsent: u64,
}

impl<V: Voter> Elector<V> {
    /// An elector voting with `voter`.
    pub fn new(voter: V) -> Self {
        Self { voter, declare: None, votes_cast: 0, votes_unsent: 0 }
    }

    /// Declares `caps` in `coord`'s index when the agent starts (load: its mailbox depth).
    #[must_use]
    pub fn declared(mut self, coord: &Coord, caps: CapSet) -> Self {
        self.declare = Some((coord.clone(), caps));
        self
    }

    /// The voter.
    pub fn voter(&self) -> &V {
        &self.voter
    }

    /// Votes sent to a box.
    pub fn votes_cast(&self) -> u64 {
        self.votes_cast
    }

    /// Votes that could not be sent (the box's mailbox was full).
    pub fn votes_unsent(&self) -> u64 {
        self.votes_unsent
    }
}

impl<V: Voter> Agent for Elector<V> {
    type Msg = VoterMsg;

    fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        if let Some((coord, caps)) = &self.declare {
            coord.declare(ctx, *caps, LoadSource::Mailbox);
        }
    }

    fn handle(&mut self, msg: VoterMsg, ctx: &mut Ctx<'_>) {
        match msg {
            VoterMsg::Ballot(request) => {
                let choice = self.voter.vote(&request.info);
                match request.cast(ctx, choice) {
                    Ok(()) => self.votes_cast += 1,
                    Err(_) => self.votes_unsent += 1,
                }
            }
        }
    }
}
