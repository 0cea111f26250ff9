//! Typed asks from inside an agent: [`Ctx::ask`], [`Ctx::ask_all`] and [`Ctx::myself`].
//!
//! An agent never blocks, so an ask cannot return its answer. Instead the asker says, when it
//! asks, how the answer becomes one of its own messages: `ctx.ask(to, make).then(adapt)`. The
//! answer arrives later through `Agent::handle` as whatever `adapt` built from the reply, which
//! comes as the type the target promised (`ReplyTo<R>` gives an `R`) or as the
//! [`AskError`] that ended the ask. Whatever the asker needs to finish the job (a client, a
//! position, a round) travels inside the closure, so the agent keeps no table of requests.
//!
//! `ctx.ask_all(requests).then(finish)` is scatter/gather: one ask per request, and one message
//! built by `finish` from every answer, in the order of the requests, once all of them settled.
//!
//! Invariants: `then` checks, when the ask is made, that the adapter builds the asker's own
//! message type (it panics otherwise: a programming error caught at the first ask, not a dead
//! letter found in production); every ask made gets exactly one answer (see `ask::then`).

use super::{Addr, SendError};
use crate::ask::then::{Finish, Then};
use crate::ask::{AskError, Continuation, ReplyTo};
use std::marker::PhantomData;
use std::time::Duration;

use super::ctx::Ctx;

/// How long an ask waits for its answer unless told otherwise (`Ask::timeout`).
pub const DEFAULT_ASK_TIMEOUT: Duration = Duration::from_secs(5);

/// A typed ask being made; see [`Ctx::ask`]. Nothing is sent until [`Ask::then`].
#[must_use = "an ask is sent by `.then(..)`"]
pub struct Ask<'c, 'a, M, R, F> {
    ctx: &'c mut Ctx<'a>,
    to: Addr<M>,
    make: F,
    timeout: Duration,
    _reply: PhantomData<fn(R)>,
}

impl<'c, 'a, M, R, F> Ask<'c, 'a, M, R, F>
where
    M: Send + 'static,
    R: Send + 'static,
    F: FnOnce(ReplyTo<R>) -> M,
{
    /// Waits at most `timeout` for the answer (default [`DEFAULT_ASK_TIMEOUT`]); after it the
    /// answer is `Err(AskError::Timeout)`. An ask made while handling a message that has a
    /// deadline never waits past that deadline.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sends the request. When the answer comes, `adapt` turns it into a message for this
    /// agent, which gets it through `Agent::handle`. `adapt` must build this agent's own
    /// message type (checked here; a mismatch panics, which stops the agent).
    ///
    /// Refused, with the request given back, with `SendError::TooManyAsks` when every reply
    /// slot of this shard is taken (2^20 asks outstanding) and `SendError::Full` when the
    /// request cannot be queued; `adapt` is then dropped and never runs.
    pub fn then<T, A>(self, adapt: A) -> Result<(), SendError<M>>
    where
        T: Send + 'static,
        A: FnOnce(Result<R, AskError>) -> T + Send + 'static,
    {
        let Self { ctx, to, make, timeout, .. } = self;
        ctx.expect_answer_type::<T>("Ask::then");
        let then = Continuation::Adapt(Then::new::<R, T, A>(adapt));
        ctx.open_ask(to, timeout, make, then).map(|_| ())
    }
}

/// A scatter/gather being made; see [`Ctx::ask_all`]. Nothing is sent until [`AskAll::then`].
#[must_use = "a scatter/gather is sent by `.then(..)`"]
pub struct AskAll<'c, 'a, I, R> {
    ctx: &'c mut Ctx<'a>,
    requests: I,
    timeout: Duration,
    _reply: PhantomData<fn(R)>,
}

impl<'c, 'a, I, M, R, F> AskAll<'c, 'a, I, R>
where
    I: IntoIterator<Item = (Addr<M>, F)>,
    M: Send + 'static,
    R: Send + 'static,
    F: FnOnce(ReplyTo<R>) -> M,
{
    /// Waits at most `timeout` for each answer (default [`DEFAULT_ASK_TIMEOUT`]); a part that
    /// times out is `Err(AskError::Timeout)` in the answers.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sends every request. Once each has its answer (a reply, or why it failed: a request
    /// that could not even be queued is `Err(AskError::Overloaded(shard))` at once), `finish` gets the answers in the order of
    /// the requests and builds one message for this agent, which gets it through
    /// `Agent::handle`. No requests: `finish` gets an empty list. `finish` must build this
    /// agent's own message type (checked here; a mismatch panics).
    pub fn then<T, G>(self, finish: G)
    where
        T: Send + 'static,
        G: FnOnce(Vec<Result<R, AskError>>) -> T + Send + 'static,
    {
        let Self { ctx, requests, timeout, .. } = self;
        ctx.expect_answer_type::<T>("AskAll::then");
        let requests: Vec<(Addr<M>, F)> = requests.into_iter().collect();
        let me = ctx.me.to_bits();
        let gather = ctx.shard.answers.open_gather(me, requests.len(), Finish::new::<R, T, G>(finish));
        for (part, (to, make)) in requests.into_iter().enumerate() {
            let part = part as u32;
            ctx.shard.answers.expect_part(gather);
            let then = Continuation::Part { gather, part };
            let target = to.id().shard();
            if let Err(e) = ctx.open_ask(to, timeout, make, then) {
                // Refused before it was queued: `Overloaded`, told apart from a request that
                // was queued and then dropped (`Undelivered`).
                let why = match e {
                    SendError::Full(_) => AskError::Overloaded(target),
                    SendError::ShuttingDown(_) => AskError::ShuttingDown,
                    SendError::TooManyAsks(_) => AskError::Overloaded(ctx.shard.index),
                };
                // Filing cannot finish the gather: the scatter still holds its guard.
                let _ = ctx.shard.answers.file_part(gather, part, Err(why));
            }
        }
        if let Some(done) = ctx.shard.answers.close_scatter(gather) {
            ctx.shard.deliver_gather(done.asker, done.index);
        }
    }
}

impl<'a> Ctx<'a> {
    /// This agent's own address, typed by its message type (inferred where it is used, and
    /// checked in debug builds).
    pub fn myself<M: Send + 'static>(&self) -> Addr<M> {
        debug_assert!(
            self.answer_type_matches::<M>(),
            "Ctx::myself: `{}` is not this agent's message type",
            std::any::type_name::<M>()
        );
        Addr::from_id(self.me)
    }

    /// Asks `to`: `make` builds the request around a [`ReplyTo<R>`] token, which the target
    /// answers with `Ctx::reply(token, value)`. The ask is sent by [`Ask::then`], which says how
    /// the answer becomes a message for this agent:
    ///
    /// ```
    /// # use nexus_engine::prelude::*;
    /// # struct Double(u64, ReplyTo<u64>);
    /// enum Msg { Start(Addr<Double>), Doubled(Result<u64, AskError>) }
    /// # struct Asker;
    /// impl Agent for Asker {
    ///     type Msg = Msg;
    ///     fn handle(&mut self, msg: Msg, ctx: &mut Ctx<'_>) {
    ///         match msg {
    ///             Msg::Start(doubler) => {
    ///                 let _ = ctx.ask(doubler, |reply| Double(21, reply)).then(Msg::Doubled);
    ///             }
    ///             Msg::Doubled(answer) => assert_eq!(answer, Ok(42)),
    ///         }
    ///     }
    /// }
    /// ```
    ///
    /// The request carries the ask's deadline: still queued when it passes, it is dropped and
    /// counted as expired. Deadlines propagate: an ask made while handling a message that has
    /// a deadline never gets a later one. A request that becomes a dead letter (its target is
    /// gone, shed, panicked, ...) ends the ask at once with `AskError::Undelivered(reason)`; a
    /// target that drops its `ReplyTo` unanswered ends it with `AskError::Dropped`.
    pub fn ask<'c, M, R, F>(&'c mut self, to: Addr<M>, make: F) -> Ask<'c, 'a, M, R, F>
    where
        M: Send + 'static,
        R: Send + 'static,
        F: FnOnce(ReplyTo<R>) -> M,
    {
        Ask { ctx: self, to, make, timeout: DEFAULT_ASK_TIMEOUT, _reply: PhantomData }
    }

    /// Scatter/gather: asks every `(target, make)` of `requests`, and, through
    /// [`AskAll::then`], turns all the answers into one message for this agent.
    pub fn ask_all<'c, I, M, R, F>(&'c mut self, requests: I) -> AskAll<'c, 'a, I, R>
    where
        I: IntoIterator<Item = (Addr<M>, F)>,
        M: Send + 'static,
        R: Send + 'static,
        F: FnOnce(ReplyTo<R>) -> M,
    {
        AskAll { ctx: self, requests, timeout: DEFAULT_ASK_TIMEOUT, _reply: PhantomData }
    }

    /// Whether `T` is the message type of the running agent.
    #[inline]
    fn answer_type_matches<T: 'static>(&self) -> bool {
        self.msg_type.0 == std::any::TypeId::of::<T>()
    }

    /// Panics, naming both types, when an answer of type `T` could not reach this agent.
    #[inline]
    pub(crate) fn expect_answer_type<T: 'static>(&self, what: &str) {
        if !self.answer_type_matches::<T>() {
            answer_type_mismatch(what, std::any::type_name::<T>(), self.id(), self.msg_type.1);
        }
    }
}

/// The panic of `expect_answer_type`, out of line.
#[cold]
#[inline(never)]
fn answer_type_mismatch(what: &str, answer: &str, agent: crate::agent::AgentId, handles: &str) -> ! {
    panic!(
        "{what}: the answer is a `{answer}` but agent {agent} handles `{handles}`; hint: map the answer into the agent's own message type"
    );
}

/// The typed asks of one agent, end to end on a hand-driven shard.
#[cfg(test)]
#[path = "ctx_ask_tests.rs"]
mod tests;
