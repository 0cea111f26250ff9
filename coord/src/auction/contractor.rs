//! The bidder side: the [`Bidder`] trait users implement, and [`Contractor`], the agent that
//! wraps one so that it takes [`BidderMsg`], the one message type managers send.
//!
//! A `Contractor` declares its capabilities in its shard's index when it starts (so discovery
//! finds it) and withdraws them when it stops. It answers every call for bids at once, in the
//! handler that receives it (`Bidder::bid` has no `Ctx`: a bid is a pure decision), so a live
//! contractor never leaves a manager waiting. A bid the manager's mailbox refuses is counted
//! by the engine (`rejected_full`); the manager then counts the bidder as silent.

use super::{BidDecision, BidderMsg, CallForBids, Contract, Ticket};
use crate::caps::CapSet;
use crate::index::LoadSource;
use crate::Coord;
use nexus_engine::agent::{Agent, Ctx, RequestId};
use nexus_engine::ask::{AskError, Reply};

/// What a contractor does; wrap it in a [`Contractor`].
pub trait Bidder: 'static {
    /// Bids for the task of `call`, or declines.
    fn bid(&mut self, call: &CallForBids) -> BidDecision;

    /// Does the work of a contract won. Report with `contract.done(ctx)` or
    /// `contract.failed(ctx, why)`, now or later (keep the contract, and schedule a
    /// [`BidderMsg::Wake`] to the contractor's own address with `Ctx::send_after`). A contract
    /// dropped without a report runs into its deadline.
    fn perform(&mut self, contract: Contract, ctx: &mut Ctx<'_>);

    /// A wake-up the bidder scheduled for itself.
    fn wake(&mut self, _token: u64, _ctx: &mut Ctx<'_>) {}

    /// The contract of `ticket` was withdrawn (its deadline passed): stop working on it; a
    /// report of it would be ignored.
    fn cancelled(&mut self, _ticket: Ticket, _ctx: &mut Ctx<'_>) {}

    /// The answer to an ask the bidder made with `ctx.ask` (while performing a contract, say):
    /// the contractor hands every reply to its bidder.
    fn on_reply(&mut self, _request: RequestId, _reply: Result<Reply, AskError>, _ctx: &mut Ctx<'_>) {}
}

/// The agent that wraps a [`Bidder`]; see the module docs.
pub struct Contractor<B: Bidder> {
    coord: Coord,
    caps: CapSet,
    load: LoadSource,
    bidder: B,
}

impl<B: Bidder> Contractor<B> {
    /// A contractor declaring `caps` (with its mailbox depth as its load).
    pub fn new(coord: Coord, caps: CapSet, bidder: B) -> Self {
        Self { coord, caps, load: LoadSource::Mailbox, bidder }
    }

    /// The same contractor with another load source.
    #[must_use]
    pub fn load(mut self, load: LoadSource) -> Self {
        self.load = load;
        self
    }

    /// The wrapped bidder.
    pub fn bidder(&self) -> &B {
        &self.bidder
    }
}

impl<B: Bidder> Agent for Contractor<B> {
    type Msg = BidderMsg;

    fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        self.coord.declare(ctx, self.caps, self.load);
    }

    fn on_stop(&mut self, ctx: &mut Ctx<'_>) {
        self.coord.withdraw(ctx);
    }

    fn handle(&mut self, msg: BidderMsg, ctx: &mut Ctx<'_>) {
        match msg {
            BidderMsg::CallForBids(call) => {
                let decision = self.bidder.bid(&call);
                let answer = call.answer(ctx.id(), decision);
                // Refused only by a full mailbox: counted by the engine, and the manager
                // counts this bidder as silent when the window closes.
                let _ = ctx.send(call.manager, answer);
            }
            BidderMsg::Award(contract) => self.bidder.perform(contract, ctx),
            BidderMsg::Cancel(ticket) => self.bidder.cancelled(ticket, ctx),
            BidderMsg::Wake(token) => self.bidder.wake(token, ctx),
        }
    }

    fn on_reply(&mut self, request: RequestId, reply: Result<Reply, AskError>, ctx: &mut Ctx<'_>) {
        self.bidder.on_reply(request, reply, ctx);
    }
}
