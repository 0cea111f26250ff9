//! The receiving side of a global name: [`Serve`], what a node does with a message that came
//! in for a name it holds, and [`Answer`], the one-shot way back to the asker.
//!
//! Invariants: `Serve` methods run on a bridge agent's shard (never on the NATS thread), so a
//! serve may `ctx.send` and `ctx.ask` but never blocks; every incoming ask is answered exactly
//! once: an [`Answer`] dropped unanswered answers `Remote("dropped unanswered")`.

use crate::agents::BridgeMsg;
use crate::call::{settle, Call};
use crate::error::ClusterError;
use crate::wire::{answer_frame, decode, encode, Wire};
use nexus_engine::agent::{Addr, Ctx, SendError};
use std::marker::PhantomData;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

/// What a node does with a message for one of its global names; see the module documentation.
pub trait Serve: Send + Sync + 'static {
    /// A one-way message's encoded body.
    fn tell(&self, body: &[u8], ctx: &mut Ctx<'_>) -> Result<(), ClusterError>;

    /// An ask's encoded body, to answer through `answer` within `timeout`.
    fn ask(&self, body: &[u8], timeout: Duration, answer: Answer, ctx: &mut Ctx<'_>);

    /// A one-way message's encoded body, telling a full mailbox ([`Offer::Full`]: keep the
    /// body and offer it again later) apart from a failure. The default is
    /// [`tell`](Self::tell), which never says full.
    fn offer(&self, body: &[u8], ctx: &mut Ctx<'_>) -> Offer {
        match self.tell(body, ctx) {
            Ok(()) => Offer::Handed,
            Err(e) => Offer::Failed(e),
        }
    }
}

/// What became of a one-way message handed to [`Serve::offer`].
#[derive(Debug)]
pub enum Offer {
    /// The local agent took it.
    Handed,
    /// The way to the local agent is full now: nothing was sent; offer it again later.
    Full,
    /// It cannot be delivered (undecodable, the agent is gone, ...).
    Failed(ClusterError),
}

/// The way back to a remote asker; see the module documentation.
pub struct Answer {
    to: Option<(UnboundedSender<crate::bridge::Cmd>, async_nats::Subject)>,
}

impl Answer {
    pub(crate) fn new(tx: UnboundedSender<crate::bridge::Cmd>, subject: async_nats::Subject) -> Self {
        Self { to: Some((tx, subject)) }
    }

    /// Sends the encoded answer (or why there is none) back to the asker.
    pub fn send(mut self, answer: Result<Vec<u8>, ClusterError>) {
        if let Some((tx, subject)) = self.to.take() {
            // The bridge thread gone means the node is stopping: the asker sees no responders.
            let _ = tx.send(crate::bridge::Cmd::Respond { subject, frame: answer_frame(answer) });
        }
    }
}

impl Drop for Answer {
    fn drop(&mut self) {
        if self.to.is_some() {
            let unanswered = Answer { to: self.to.take() };
            unanswered.send(Err(ClusterError::Remote("dropped unanswered".into())));
        }
    }
}

/// Serves a global name with a local agent whose message type is [`Call<Q, A>`].
pub(crate) struct CallServer<Q, A> {
    pub(crate) addr: Addr<Call<Q, A>>,
    pub(crate) _types: PhantomData<fn(Q, A)>,
}

impl<Q: Wire, A: Wire> Serve for CallServer<Q, A> {
    fn tell(&self, body: &[u8], ctx: &mut Ctx<'_>) -> Result<(), ClusterError> {
        let q: Q = decode(body)?;
        ctx.send(self.addr, Call::Tell(q)).map_err(|e| ClusterError::Remote(send_error_text(&e)))
    }

    fn offer(&self, body: &[u8], ctx: &mut Ctx<'_>) -> Offer {
        let q: Q = match decode(body) {
            Ok(q) => q,
            Err(e) => return Offer::Failed(e),
        };
        match ctx.send(self.addr, Call::Tell(q)) {
            Ok(()) => Offer::Handed,
            Err(SendError::Full(_)) => Offer::Full,
            Err(e) => Offer::Failed(ClusterError::Remote(send_error_text(&e))),
        }
    }

    fn ask(&self, body: &[u8], timeout: Duration, answer: Answer, ctx: &mut Ctx<'_>) {
        let q: Q = match decode(body) {
            Ok(q) => q,
            Err(e) => return answer.send(Err(e)),
        };
        let sent = ctx.ask(self.addr, |reply| Call::Ask(q, reply)).timeout(timeout).then(move |res| {
            answer.send(settle::<A>(res).and_then(|a| encode(&a)));
            BridgeMsg::Done
        });
        // Refused before it was queued: the adapter (and the `Answer` in it) is dropped, which
        // answers `Remote`.
        drop(sent);
    }
}

/// The engine's refusal of a send, as text.
pub(crate) fn send_error_text<M>(e: &SendError<M>) -> String {
    match e {
        SendError::Full(_) => "the agent's mailbox or the way to it is full".into(),
        SendError::ShuttingDown(_) => "the engine is shutting down".into(),
        SendError::TooManyAsks(_) => "too many asks outstanding".into(),
    }
}
