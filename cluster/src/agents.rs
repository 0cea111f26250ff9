//! The agents a node runs for the cluster: the bridge agents (one per shard) that run work
//! the NATS thread hands to the engine, and `Proxy`, the local stand-in for a remote agent.
//!
//! A bridge agent also delivers the batches of inbound messages (see `inbound`), keeping
//! what its target has no room for until the target drains.
//!
//! Invariant: the NATS thread reaches the shards only through `EngineHandle::send` to a bridge
//! agent, and the shards reach the NATS thread only through an unbounded channel: no shard
//! ever waits on the network, and no NATS task ever waits on a shard.

use crate::call::Call;
use crate::inbound::{Backlog, Batch};
use crate::link::Link;
use crate::wire::Wire;
use nexus_engine::agent::{Agent, Ctx};
use std::marker::PhantomData;
use std::sync::Arc;

/// Work to run on a shard, with that shard's context.
pub type Job = Box<dyn FnOnce(&mut Ctx<'_>) + Send>;

/// What a bridge agent receives.
pub enum BridgeMsg {
    /// Run this on the bridge agent's shard.
    Run(Job),
    /// Nothing to do (what an ask's adapter returns once it handed its answer on).
    Done,
    /// Messages that came in for a name this node holds, to deliver in order.
    Inbound(Batch),
    /// Deliver the one-way messages still waiting for room (sent by the agent to itself).
    Resume,
}

/// Runs the jobs the NATS thread sends; see the module documentation.
#[derive(Default)]
pub(crate) struct BridgeAgent {
    backlog: Backlog,
}

impl Agent for BridgeAgent {
    type Msg = BridgeMsg;

    fn handle(&mut self, msg: BridgeMsg, ctx: &mut Ctx<'_>) {
        match msg {
            BridgeMsg::Run(job) => job(ctx),
            BridgeMsg::Inbound(batch) => self.backlog.take(batch, ctx),
            BridgeMsg::Resume => self.backlog.resume(ctx),
            BridgeMsg::Done => {}
        }
    }
}

/// The local stand-in for the global name `name`: what it receives goes to the node that
/// holds the name, encoded with postcard. Asks keep the asker's deadline.
pub(crate) struct Proxy<Q, A> {
    name: Arc<str>,
    subject: async_nats::Subject,
    link: Link,
    _types: PhantomData<fn(Q, A)>,
}

impl<Q, A> Proxy<Q, A> {
    pub(crate) fn new(name: Arc<str>, link: Link) -> Self {
        Self { subject: link.name_subject(&name), name, link, _types: PhantomData }
    }
}

impl<Q: Wire, A: Wire> Agent for Proxy<Q, A> {
    type Msg = Call<Q, A>;

    fn handle(&mut self, msg: Call<Q, A>, ctx: &mut Ctx<'_>) {
        match msg {
            Call::Tell(q) => self.link.tell_to(&self.name, self.subject.clone(), &q),
            Call::Ask(q, reply) => {
                let timeout = match ctx.deadline_ns() {
                    Some(deadline) => std::time::Duration::from_nanos(deadline.saturating_sub(ctx.now_ns())),
                    None => nexus_engine::agent::DEFAULT_ASK_TIMEOUT,
                };
                self.link.ask::<Q, A>(&self.name, &q, timeout, Box::new(move |answer, ctx| ctx.reply(reply, answer)));
            }
        }
    }
}
