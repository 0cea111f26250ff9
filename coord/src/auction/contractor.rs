//! The bidder side: the [`Bidder`] trait users implement, and [`Contractor`], the agent that
//! wraps one so that it takes [`BidderMsg`], the one message type managers send.
//!
//! A `Contractor` declares its capabilities in its shard's index when it starts (so discovery
//! finds it) and withdraws them when it stops. It answers every call for bids at once, in the
//! handler that receives it (`Bidder::bid` has no `Ctx`: a bid is a pure decision), so a live
//! contractor never leaves a manager waiting. A bid the manager's mailbox refuses is counted
//! by the engine (`rejected_full`); the manager then counts the bidder as silent.
//!
//! A bidder that asks another agent (while performing a contract, say) gets the answer back as
//! a [`BidderMsg::Resume`]: its ask's continuation builds one with [`Resume::new`], a closure
//! over the bidder's own type holding the answer and whatever else it needs, and the
//! contractor runs it on its bidder. The contractor keeps no table of the bidder's requests.

use super::{BidDecision, BidderMsg, CallForBids, Contract, Ticket};
use crate::caps::CapSet;
use crate::index::LoadSource;
use crate::Coord;
use nexus_engine::agent::{Agent, Ctx};
use std::any::Any;
use std::fmt;

/// What a contractor does; wrap it in a [`Contractor`].
pub trait Bidder: 'static {
    /// Bids for the task of `call`, or declines.
    fn bid(&mut self, call: &CallForBids) -> BidDecision;

    /// Does the work of a contract won. Report with `contract.done(ctx)` or
    /// `contract.failed(ctx, why)`, now or later (keep the contract, and schedule a
    /// [`BidderMsg::Wake`] to the contractor's own address with `Ctx::send_after`, or ask
    /// another agent and finish in the [`Resume`] its answer builds). A contract dropped
    /// without a report runs into its deadline.
    fn perform(&mut self, contract: Contract, ctx: &mut Ctx<'_>);

    /// A wake-up the bidder scheduled for itself.
    fn wake(&mut self, _token: u64, _ctx: &mut Ctx<'_>) {}

    /// The contract of `ticket` was withdrawn (its deadline passed): stop working on it; a
    /// report of it would be ignored.
    fn cancelled(&mut self, _ticket: Ticket, _ctx: &mut Ctx<'_>) {}
}

/// Work for a contractor's bidder, built by the bidder itself (typically in the continuation
/// of an ask it made) and run by the contractor on its bidder when it arrives as
/// [`BidderMsg::Resume`]. Here a bidder asks an echo agent while performing, and reports once
/// the answer comes:
///
/// ```
/// use nexus_coord::auction::{BidDecision, Bidder, BidderMsg, CallForBids, Contract, Resume};
/// use nexus_engine::builtin::EchoMsg;
/// use nexus_engine::prelude::*;
///
/// struct Checker {
///     echo: Addr<EchoMsg>,
/// }
///
/// impl Checker {
///     fn checked(&mut self, contract: Contract, echoed: Result<u64, AskError>, ctx: &mut Ctx<'_>) {
///         let _ = match echoed {
///             Ok(7) => contract.done(ctx),
///             _ => contract.failed(ctx, "the echo did not answer 7"),
///         };
///     }
/// }
///
/// impl Bidder for Checker {
///     fn bid(&mut self, _call: &CallForBids) -> BidDecision {
///         BidDecision::Decline
///     }
///     fn perform(&mut self, contract: Contract, ctx: &mut Ctx<'_>) {
///         let asked = ctx.ask(self.echo, |reply| EchoMsg::Echo { value: 7, reply }).then(move |echoed| {
///             BidderMsg::Resume(Resume::new(move |me: &mut Checker, ctx| me.checked(contract, echoed, ctx)))
///         });
///         // Refused (the echo's mailbox is full): the contract went with the continuation and
///         // runs into its deadline, so the task is auctioned again.
///         let _ = asked;
///     }
/// }
/// ```
///
/// It must reach a contractor of the bidder type it was built for; anywhere else it panics
/// (a programming error, like an ask whose answer has the wrong message type).
pub struct Resume {
    run: Box<ResumeFn>,
    bidder: &'static str,
}

/// A [`Resume`]'s work, type-erased: it gets the contractor's bidder, that bidder's type name
/// (for the panic when it is not the type the work was built for) and the context.
type ResumeFn = dyn FnOnce(&mut dyn Any, &'static str, &mut Ctx<'_>) + Send;

impl Resume {
    /// Work `f` for a bidder of type `B`.
    pub fn new<B: Bidder>(f: impl FnOnce(&mut B, &mut Ctx<'_>) + Send + 'static) -> Self {
        let run = move |bidder: &mut dyn Any, here: &'static str, ctx: &mut Ctx<'_>| {
            match bidder.downcast_mut::<B>() {
            Some(bidder) => f(bidder, ctx),
            None => panic!(
                "a Resume built for bidder `{}` reached a contractor of `{here}`; hint: build it with the asking bidder's own type",
                std::any::type_name::<B>()
            ),
        }
        };
        Self { run: Box::new(run), bidder: std::any::type_name::<B>() }
    }

    /// Runs the work on `bidder`.
    ///
    /// # Panics
    /// When `bidder` is not of the type the work was built for.
    fn run<B: Bidder>(self, bidder: &mut B, ctx: &mut Ctx<'_>) {
        (self.run)(bidder, std::any::type_name::<B>(), ctx);
    }
}

impl fmt::Debug for Resume {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Resume({})", self.bidder)
    }
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
            BidderMsg::Resume(work) => work.run(&mut self.bidder, ctx),
        }
    }
}
