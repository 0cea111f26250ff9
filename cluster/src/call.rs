//! [`Call`]: the message type of an agent that other nodes can reach, and how its answer
//! comes back.
//!
//! An agent with `type Msg = Call<Q, A>` is sent and asked the same way whether the address
//! is its own or a remote proxy's: `ctx.send(addr, Call::Tell(q))` and
//! `ctx.ask(addr, |r| Call::Ask(q, r)).then(..)`. The answer is a [`Reply<A>`]: the agent
//! replies `Ok(a)`; a remote failure comes as the typed [`ClusterError`]. Locally nothing is
//! encoded.

use crate::error::ClusterError;
use nexus_engine::ask::{AskError, ReplyTo};

/// What an ask to a [`Call`] agent answers.
pub type Reply<A> = Result<A, ClusterError>;

/// The message of an agent reachable across nodes; see the module documentation.
pub enum Call<Q, A> {
    /// A one-way message.
    Tell(Q),
    /// A request; answer with `ctx.reply(reply, Ok(answer))`.
    Ask(Q, ReplyTo<Reply<A>>),
}

/// Flattens what an ask's adapter gets (the engine's outcome around the cluster's answer) into
/// one typed result: a local [`AskError`] becomes the matching [`ClusterError`].
pub fn settle<A>(answer: Result<Reply<A>, AskError>) -> Reply<A> {
    match answer {
        Ok(reply) => reply,
        Err(AskError::Timeout) => Err(ClusterError::Timeout),
        Err(e) => Err(ClusterError::Remote(e.to_string())),
    }
}
