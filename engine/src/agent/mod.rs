//! Agents: the `Agent` trait, identities, the slot table and the typed state pools.
//!
//! An agent is a value of a type that implements [`Agent`]. It lives on one shard, in that
//! shard's pool for its type, and is only ever touched by that shard's thread. It receives
//! messages of one type, `Agent::Msg`, through `handle(&mut self, msg, &mut Ctx)`; the answers to
//! its asks arrive there too, as the messages their adapters build (see [`Ctx::ask`]), and
//! messages it sent that could not be delivered (when it asked to know) through
//! `on_undelivered`. Agents it watches report their end through
//! `on_down`, and linked agents through `on_exit` when it traps exits (see [`ExitReason`]).
//!
//! A panic in any of these hooks is caught at the agent boundary: the agent is stopped with
//! [`ExitReason::Panicked`] (its `on_stop` is not run: its state may be broken), the message
//! that panicked is counted as a `panicked` dead letter, and the shard goes on.

mod ctx;
mod ctx_ask;
mod ctx_fault;
mod ctx_trace;
mod exit;
mod id;
mod pool;
mod slots;

pub use ctx::{Ctx, Lookup, Registration, SendError, SendOptions, Spawned, SYSTEM_REQUEST_TIMEOUT};
pub use ctx_ask::{Ask, AskAll, DEFAULT_ASK_TIMEOUT};
pub use ctx_fault::TimerId;
pub(crate) use exit::{panic_message, Signal};
pub use exit::{Down, Exit, ExitReason};
pub use id::{Addr, AgentId, GENERATION_BITS, GENERATION_MASK, MAX_SHARDS, SHARD_BITS};
pub(crate) use pool::{stop_agent as run_agent_stop, AskFailure, InHand, Kinds, RunMode};
pub(crate) use slots::{SlotState, Slots};

use crate::metrics::DeadLetterReason;
use crate::payload::Payload;

/// A message that could not be delivered, handed back to a sender that asked for delivery
/// status (`SendOptions::tracked`).
#[derive(Debug)]
pub struct Undelivered {
    /// The agent it was sent to.
    pub to: AgentId,
    /// Why it was not delivered.
    pub reason: DeadLetterReason,
    /// The message itself; `take::<M>()` recovers it.
    pub message: Payload,
}

/// An actor that lives on one shard. See the module documentation.
///
/// Handlers run to completion on the shard's thread and must not block: a handler that blocks
/// stalls every agent of its shard. Keep large state behind a `Box`: the dispatcher moves the
/// agent value out of its pool slot while it runs a batch of its messages.
///
/// A turn handles at most the messages queued when it began (and at most the shard's
/// `agent_budget`). A message the agent sends itself waits for the next dispatcher pass, so
/// "send myself a `Continue`" is how a long job yields: the shard drains its rings, runs the
/// other agents and publishes its output before the job resumes.
pub trait Agent: Sized + 'static {
    /// The message type this agent handles.
    type Msg: Send + 'static;

    /// Handles one message.
    fn handle(&mut self, msg: Self::Msg, ctx: &mut Ctx<'_>);

    /// Runs once, right after the agent is placed in its slot (before any message).
    fn on_start(&mut self, _ctx: &mut Ctx<'_>) {}

    /// Receives a message this agent sent tracked (`SendOptions::tracked`) that became a dead letter.
    fn on_undelivered(&mut self, _undelivered: Undelivered, _ctx: &mut Ctx<'_>) {}

    /// Receives the end of an agent this one watches (`Ctx::watch`).
    fn on_down(&mut self, _down: Down, _ctx: &mut Ctx<'_>) {}

    /// Receives the end of a linked agent, when this agent traps exits (`Ctx::trap_exits`).
    /// Without trapping, an abnormal exit of a linked agent stops this one with the same
    /// reason, and a normal one is ignored.
    fn on_exit(&mut self, _exit: Exit, _ctx: &mut Ctx<'_>) {}

    /// Runs once when the agent stops (not after a panic), before its state is dropped.
    fn on_stop(&mut self, _ctx: &mut Ctx<'_>) {}
}

/// Where to spawn an agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SpawnPlacement {
    /// On the current shard (for a host thread: shard 0).
    #[default]
    Local,
    /// On the given shard.
    Shard(usize),
    /// On the next shard in turn, from a cursor kept by the spawning shard (or handle).
    RoundRobin,
    /// On the shard with the fewest live agents, as last published by each shard.
    LeastLoaded,
}

/// How and where to spawn an agent: the one spawn spec both [`Ctx::spawn_on`] and
/// `EngineHandle::spawn` take. A [`SpawnPlacement`] converts into it, so
/// `spawn_on(SpawnPlacement::RoundRobin, ..)` is a spawn with the default mailbox capacity.
///
/// ```
/// # use nexus_engine::agent::{SpawnOptions, SpawnPlacement};
/// let options = SpawnOptions::on(SpawnPlacement::Shard(1)).mailbox_capacity(64);
/// # let _ = options;
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpawnOptions {
    pub(crate) placement: SpawnPlacement,
    pub(crate) mailbox_capacity: Option<u32>,
}

impl SpawnOptions {
    /// Spawn here (for a host thread: on shard 0), with the shard's default mailbox capacity.
    pub const fn new() -> Self {
        Self { placement: SpawnPlacement::Local, mailbox_capacity: None }
    }

    /// Spawn where `placement` says.
    pub const fn on(placement: SpawnPlacement) -> Self {
        Self { placement, mailbox_capacity: None }
    }

    /// Give the agent a mailbox of `capacity` messages instead of the shard's default
    /// (`[mailbox] capacity`).
    pub const fn mailbox_capacity(mut self, capacity: u32) -> Self {
        self.mailbox_capacity = Some(capacity);
        self
    }

    /// Where the agent goes.
    pub const fn placement(&self) -> SpawnPlacement {
        self.placement
    }
}

impl From<SpawnPlacement> for SpawnOptions {
    fn from(placement: SpawnPlacement) -> Self {
        Self::on(placement)
    }
}

/// Why a spawn failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpawnError {
    /// The placement named a shard that does not exist.
    #[error("no shard {shard} (the engine has {shards}); hint: use a shard index below {shards}")]
    NoSuchShard {
        /// The shard asked for.
        shard: usize,
        /// How many shards there are.
        shards: usize,
    },
    /// The shard's slot table is full (2^32 - 1 slots).
    #[error("shard {0} has no free agent slot")]
    SlotsExhausted(usize),
    /// The engine is shutting down.
    #[error("the engine is shutting down")]
    ShuttingDown,
    /// The request could not reach the shard (its inject queue or backlog was full).
    #[error("shard {0} is overloaded; hint: retry later or raise mesh.inject_capacity")]
    Overloaded(usize),
    /// The request was queued but the shard did not answer in time.
    #[error("shard {0} did not answer the spawn in time; hint: it may be busy in a long handler or stopped")]
    Timeout(usize),
    /// A host spawn was made on shard `.0`'s own thread (from inside a handler): waiting there
    /// would freeze the shard. Debug builds panic instead.
    #[error("a blocking host spawn was made on shard {0}'s own thread; hint: inside an agent use Ctx::spawn or Ctx::spawn_on")]
    BlockingOnShard(usize),
}
