//! `Ctx`: what a handler can do: send, ask, reply, spawn, stop, name, look up, scratch, clock.
//!
//! A `Ctx` borrows the running agent's shard for the length of one handler call. Everything it
//! does happens on that shard's thread: a local send goes straight into the target's mailbox,
//! a send to another shard is staged in that shard's ring and published at the end of the pass.
//! Operations that need another shard (a remote spawn, a name owned elsewhere) are requests over
//! the mesh whose answers come back through `Agent::handle`, as the messages the adapters given
//! to those calls build (as for asks: see `ctx_ask`).

use super::{Addr, Agent, AgentId, SpawnError};
use crate::ask::{deadline_after, AskError, ReplyTarget, ReplyTo};
use crate::envelope::{Envelope, FLAG_ASK, FLAG_CONTROL, FLAG_COUNTED, FLAG_NOTIFY_UNDELIVERED};
use crate::payload::Payload;
use crate::registry::{name_hash, owner_of, owner_of_hash, validate_name, RegistryError};
use crate::shard::{Shard, SystemOp};
use bumpalo::Bump;
use std::time::Duration;

/// Why a send failed; the message comes back.
#[derive(PartialEq, Eq)]
pub enum SendError<M> {
    /// The target's mailbox (or the way to its shard) is full.
    Full(M),
    /// The engine is shutting down.
    ShuttingDown(M),
    /// Only from `Ctx::ask`: every reply slot of this shard is taken (2^20 asks outstanding);
    /// nothing was sent.
    TooManyAsks(M),
}

impl<M> std::fmt::Debug for SendError<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Full(_) => f.write_str("Full(..)"),
            Self::ShuttingDown(_) => f.write_str("ShuttingDown(..)"),
            Self::TooManyAsks(_) => f.write_str("TooManyAsks(..)"),
        }
    }
}

impl<M> std::fmt::Display for SendError<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Full(_) => f.write_str(
                "the target's mailbox or the way to its shard is full; hint: slow down, retry later or raise the capacity",
            ),
            Self::ShuttingDown(_) => f.write_str("the engine is shutting down"),
            Self::TooManyAsks(_) => f.write_str(
                "this shard has too many outstanding asks (2^20); hint: wait for answers before asking more",
            ),
        }
    }
}

impl<M> std::error::Error for SendError<M> {}

impl<M> SendError<M> {
    /// The message that was not sent.
    pub fn into_inner(self) -> M {
        match self {
            Self::Full(m) | Self::ShuttingDown(m) | Self::TooManyAsks(m) => m,
        }
    }
}

/// The outcome of a name registration.
#[derive(Debug, PartialEq, Eq)]
pub enum Registration {
    /// The name is owned by this shard: done now.
    Done(Result<(), RegistryError>),
    /// The name is owned by another shard: the result, a `Result<(), RegistryError>`, comes
    /// later through the adapter given to the call.
    Pending,
}

/// The outcome of a name lookup.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    /// Found on this shard's partition.
    Found(AgentId),
    /// Owned by this shard and not registered.
    Missing,
    /// Owned by another shard: the answer, an `Option<AgentId>`, comes later through the
    /// adapter given to [`Ctx::lookup`].
    Pending,
    /// Owned by another shard that could not be asked: the shard has too many outstanding
    /// asks, or the way to the owner is full. Nothing was sent; try again later.
    Unreachable(RegistryError),
}

/// The outcome of a spawn with a placement.
#[derive(Debug, PartialEq, Eq)]
pub enum Spawned<M> {
    /// Spawned on this shard.
    Here(Addr<M>),
    /// Requested on another shard: the new id, a `Result<AgentId, SpawnError>`, comes later
    /// through the adapter given to the call.
    Pending,
}

/// How [`Ctx::send_with`] sends a message. The default is a plain send.
///
/// ```
/// # use nexus_engine::agent::SendOptions;
/// # use std::time::Duration;
/// let options = SendOptions::new().tracked().ttl(Duration::from_millis(50));
/// # let _ = options;
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SendOptions {
    tracked: bool,
    control: bool,
    ttl: Option<Duration>,
}

impl SendOptions {
    /// A plain send: normal lane, no deadline, a dead letter only counted.
    pub const fn new() -> Self {
        Self { tracked: false, control: false, ttl: None }
    }

    /// If the message becomes a dead letter, it comes back to the sender through
    /// `Agent::on_undelivered` with the reason.
    pub const fn tracked(mut self) -> Self {
        self.tracked = true;
        self
    }

    /// The message travels in the control lane: never refused for a full mailbox or ring,
    /// never shed, and dispatched before any normal-lane message of the target's shard. Keep
    /// it for supervision and other messages that must get through under load.
    pub const fn control(mut self) -> Self {
        self.control = true;
        self
    }

    /// The message carries a deadline `ttl` from now: still queued when it passes, it is
    /// dropped when dequeued and counted as expired.
    pub const fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }
}

/// Default timeout of the engine's own requests (remote spawn, registry) made by agents.
pub const SYSTEM_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The handler's view of its shard; see the module documentation.
pub struct Ctx<'a> {
    pub(crate) shard: &'a mut Shard,
    pub(crate) me: AgentId,
    /// Set when the agent is to stop after this handler, with why.
    pub(crate) exit: Option<super::ExitReason>,
    /// The deadline of the message being handled (0: none); asks made meanwhile inherit it.
    pub(crate) deadline_ns: u64,
    /// The running agent's message type, and its name: what an ask's adapter must build.
    pub(crate) msg_type: (std::any::TypeId, &'static str),
}

impl<'a> Ctx<'a> {
    pub(crate) fn new<M: 'static>(shard: &'a mut Shard, me: AgentId) -> Self {
        let msg_type = (std::any::TypeId::of::<M>(), std::any::type_name::<M>());
        Self { shard, me, exit: None, deadline_ns: 0, msg_type }
    }

    /// The running agent's id.
    #[inline]
    pub fn id(&self) -> AgentId {
        self.me
    }

    /// The running agent's shard.
    #[inline]
    pub fn shard(&self) -> usize {
        self.shard.index
    }

    /// Number of shards in the engine.
    #[inline]
    pub fn shards(&self) -> usize {
        self.shard.shared.shards
    }

    /// Nanoseconds on the engine clock (shared by every shard), read once per dispatcher pass.
    #[inline]
    pub fn now_ns(&mut self) -> u64 {
        self.shard.now_ns()
    }

    /// The value of type `T` this shard keeps for all its agents, made with `T::default()` on
    /// first use. It lives as long as the shard, on the shard's thread only, so it can hold
    /// `Rc`/`RefCell` state that agents of the shard share without messages (an index they
    /// all read, say); other shards have their own. Keep a clone of the `Rc` rather than
    /// looking it up on every message (a hash lookup by type).
    pub fn shard_local<T: Default + 'static>(&mut self) -> std::rc::Rc<T> {
        let any = self
            .shard
            .locals
            .entry(std::any::TypeId::of::<T>())
            .or_insert_with(|| std::rc::Rc::new(T::default()))
            .clone();
        // The map is keyed by the value's TypeId, so the downcast cannot fail.
        any.downcast::<T>().unwrap_or_else(|_| unreachable!("shard_local is keyed by TypeId"))
    }

    /// Messages queued for `id`, when it is a live agent of this shard; `None` for an agent of
    /// another shard or one that is gone. A load figure for balancing and discovery.
    pub fn mailbox_len(&self, id: AgentId) -> Option<usize> {
        if id.shard() != self.shard.index || !self.shard.slots.is_live(id.slot(), id.generation()) {
            return None;
        }
        self.shard.slots.get(id.slot()).map(|s| s.queue.len() as usize)
    }

    /// The shard's scratch arena, reset at the end of every pass: allocate freely within one
    /// handler call, keep nothing across calls.
    #[inline]
    pub fn scratch(&self) -> &Bump {
        &self.shard.scratch
    }

    /// Sends `msg` to `to`.
    #[inline]
    pub fn send<M: Send + 'static>(&mut self, to: Addr<M>, msg: M) -> Result<(), SendError<M>> {
        self.send_flags(to.id(), msg, FLAG_COUNTED, 0, 0)
    }

    /// Sends `msg` to `to` as `options` say: tracked (a dead letter comes back through
    /// `Agent::on_undelivered`), with a time to live, or in the control lane.
    /// `ctx.send_with(to, msg, SendOptions::new())` is `ctx.send(to, msg)`.
    pub fn send_with<M: Send + 'static>(
        &mut self,
        to: Addr<M>,
        msg: M,
        options: SendOptions,
    ) -> Result<(), SendError<M>> {
        let mut flags = FLAG_COUNTED;
        if options.tracked {
            flags |= FLAG_NOTIFY_UNDELIVERED;
        }
        if options.control {
            flags |= FLAG_CONTROL;
        }
        let deadline = options.ttl.map_or(0, |ttl| deadline_after(self.shard.now_ns(), ttl));
        self.send_flags(to.id(), msg, flags, deadline, 0)
    }

    #[inline]
    pub(crate) fn send_flags<M: Send + 'static>(
        &mut self,
        to: AgentId,
        msg: M,
        flags: u8,
        deadline_ns: u64,
        request: u64,
    ) -> Result<(), SendError<M>> {
        let mut env = Envelope::user(to, self.me.to_bits(), Payload::new(msg));
        env.flags = flags;
        if deadline_ns != 0 {
            let now = self.shard.now_ns();
            env.set_deadline_ns(deadline_ns, now);
        }
        env.request = request;
        self.shard.stamp(&mut env);
        match self.shard.route(env) {
            Ok(()) => {
                self.shard.metrics.counters.sent += 1;
                Ok(())
            }
            Err(env) => {
                self.shard.metrics.counters.rejected_full += 1;
                let msg = env.payload.take::<M>().unwrap_or_else(|_| unreachable!("payload built from M"));
                Err(SendError::Full(msg))
            }
        }
    }

    /// Opens a reply slot with `then`, its continuation, builds the request around its token
    /// and sends it; returns the token. See [`Ctx::ask`] for the
    /// deadline and failure rules.
    pub(crate) fn open_ask<M: Send + 'static, R: Send + 'static>(
        &mut self,
        to: Addr<M>,
        timeout: Duration,
        make: impl FnOnce(ReplyTo<R>) -> M,
        then: crate::ask::Continuation,
    ) -> Result<u64, SendError<M>> {
        let mut deadline = deadline_after(self.shard.now_ns(), timeout);
        if self.deadline_ns != 0 {
            deadline = deadline.min(self.deadline_ns);
        }
        let Some(token) = self.shard.asks.open_then(self.me, deadline, then) else {
            let msg = make(ReplyTo::new(ReplyTarget::Spent, false));
            return Err(SendError::TooManyAsks(msg));
        };
        let msg = make(ReplyTo::new(ReplyTarget::Shard(token), true));
        match self.send_flags(to.id(), msg, FLAG_COUNTED | FLAG_ASK, deadline, token) {
            Ok(()) => Ok(token),
            Err(e) => {
                self.shard.asks.cancel(token);
                Err(e)
            }
        }
    }

    /// Answers an ask. A reply whose ask already timed out is dropped and counted as late.
    pub fn reply<R: Send + 'static>(&mut self, to: ReplyTo<R>, value: R) {
        let (target, counted) = to.take();
        self.shard.reply_payload(target, counted, Payload::new(value));
    }

    /// Spawns `agent` on this shard.
    pub fn spawn<A: Agent>(&mut self, agent: A) -> Result<Addr<A::Msg>, SpawnError> {
        self.shard.spawn_here(agent, None).map(Addr::from_id)
    }

    /// Spawns the agent `factory` builds, where and how `options` say (a [`SpawnPlacement`](super::SpawnPlacement)
    /// or a [`SpawnOptions`](super::SpawnOptions)). On this shard it happens now
    /// (`Spawned::Here`, and `then` is dropped); on another, `factory` travels there over the
    /// mesh (`Spawned::Pending`) and `then` later turns the outcome into a message for this
    /// agent, as for [`Ctx::ask`].
    pub fn spawn_on<A, F, T, G>(
        &mut self,
        options: impl Into<super::SpawnOptions>,
        factory: F,
        then: G,
    ) -> Result<Spawned<A::Msg>, SpawnError>
    where
        A: Agent,
        F: FnOnce() -> A + Send + 'static,
        T: Send + 'static,
        G: FnOnce(Result<Result<AgentId, SpawnError>, AskError>) -> T + Send + 'static,
    {
        let options = options.into();
        let target = self.shard.resolve_placement(options.placement)?;
        if target == self.shard.index {
            return self
                .shard
                .spawn_here(factory(), options.mailbox_capacity)
                .map(|id| Spawned::Here(Addr::from_id(id)));
        }
        let token = self.open_system_request(then).ok_or(SpawnError::Overloaded(target))?;
        let op = SystemOp::spawn(factory, options.mailbox_capacity, ReplyTo::new(ReplyTarget::Shard(token), false));
        match self.shard.send_system(target, Envelope::system(Payload::new(op))) {
            Ok(()) => Ok(Spawned::Pending),
            Err(_) => {
                self.shard.asks.cancel(token);
                Err(SpawnError::Overloaded(target))
            }
        }
    }

    /// Tells the shard's driver that this handler woke a task of the shard's executor (for
    /// example a network connection waiting for its reply): the driver hands control to the
    /// executor after this pass instead of at its next idle yield. Does nothing on a shard that
    /// runs on a plain thread.
    #[inline]
    pub fn yield_to_executor(&mut self) {
        self.shard.yield_requested = true;
    }

    /// Registers agent `id`, which lives on this shard, under `name`, which this shard owns
    /// (`owner_of(name) == self.shard()`): a synchronous registration for agents a handler
    /// spawned here, for example on behalf of a remote request. The name is removed when the
    /// agent stops.
    pub fn register_agent(&mut self, name: &str, id: AgentId) -> Result<(), RegistryError> {
        validate_name(name)?;
        let owner = owner_of(name, self.shards());
        if owner != self.shard.index || id.shard() != self.shard.index {
            return Err(RegistryError::Unreachable(format!(
                "register_agent needs the name's owner (shard {owner}) and the agent (shard {}) to be this shard ({})",
                id.shard(),
                self.shard.index
            )));
        }
        self.shard.register_here(name, id, None)
    }

    /// Resolves `name` when this shard owns it: `Some(Some(id))` found, `Some(None)` not
    /// registered, `None` owned by another shard (use [`Ctx::lookup`]).
    pub fn lookup_local(&mut self, name: &str) -> Option<Option<AgentId>> {
        let hash = name_hash(name);
        if owner_of_hash(hash, self.shards()) != self.shard.index {
            return None;
        }
        Some(self.shard.registry.lookup_hashed(name, hash))
    }

    /// A snapshot of this shard's figures (counters, agents, names, latency histogram).
    pub fn shard_stats(&self) -> crate::metrics::ShardStats {
        self.shard.stats()
    }

    /// The deadline (engine-clock ns) of the message being handled, if it has one. Asks made
    /// now inherit it; a retry should not be scheduled past it.
    pub fn deadline_ns(&self) -> Option<u64> {
        (self.deadline_ns != 0).then_some(self.deadline_ns)
    }

    /// Stops the running agent after this handler returns, with the reason `normal`.
    pub fn stop_self(&mut self) {
        self.exit.get_or_insert(super::ExitReason::Normal);
    }

    /// Stops the running agent after this handler returns, with the reason `Failed(message)`:
    /// linked agents stop too (unless they trap exits), and a supervisor restarts it even when
    /// it is `transient`.
    pub fn fail(&mut self, message: impl Into<std::sync::Arc<str>>) {
        self.exit.get_or_insert(super::ExitReason::Failed(message.into()));
    }

    /// Stops agent `id` with the reason `shutdown`: now-ish for an agent of this shard (after
    /// this handler), over the mesh (control lane) for another shard. Stopping an agent that is
    /// already gone does nothing. Stopping the running agent itself is [`Ctx::stop_self`].
    pub fn stop(&mut self, id: AgentId) {
        self.stop_with(id, super::ExitReason::Shutdown);
    }

    /// Stops agent `id` with `reason` (see [`Ctx::stop`]).
    pub fn stop_with(&mut self, id: AgentId, reason: super::ExitReason) {
        if id == self.me {
            self.exit.get_or_insert(if reason == super::ExitReason::Shutdown {
                super::ExitReason::Normal
            } else {
                reason
            });
        } else if id.shard() == self.shard.index {
            self.shard.pending_stops.push((id, reason));
        } else if id.shard() < self.shards() {
            let op = SystemOp::Stop(id, reason);
            let _ = self.shard.send_system(id.shard(), Envelope::system(Payload::new(op)));
        }
    }

    /// Registers the running agent under `name` (owned by shard `owner_of(name)`). When this
    /// shard owns the name it is done now (`Registration::Done`, and `then` is dropped);
    /// otherwise it is a request (`Registration::Pending`) and `then` later turns its outcome
    /// into a message for this agent, as for [`Ctx::ask`].
    pub fn register<T, G>(&mut self, name: &str, then: G) -> Registration
    where
        T: Send + 'static,
        G: FnOnce(Result<Result<(), RegistryError>, AskError>) -> T + Send + 'static,
    {
        if let Err(e) = validate_name(name) {
            return Registration::Done(Err(e));
        }
        let me = self.me;
        self.shard.remember_name(me.slot(), name);
        let owner = owner_of(name, self.shards());
        if owner == self.shard.index {
            let result = self.shard.registry.register(name, me);
            if result.is_err() {
                self.shard.forget_name(me.slot(), name);
            }
            return Registration::Done(result);
        }
        let Some(token) = self.open_system_request(then) else {
            return Registration::Done(Err(RegistryError::Unreachable("too many outstanding asks".into())));
        };
        let op = SystemOp::Register {
            name: name.into(),
            id: me,
            replace: None,
            reply: Some(ReplyTo::new(ReplyTarget::Shard(token), false)),
        };
        match self.shard.send_system(owner, Envelope::system(Payload::new(op))) {
            Ok(()) => Registration::Pending,
            Err(_) => {
                self.shard.asks.cancel(token);
                Registration::Done(Err(RegistryError::Unreachable(format!("shard {owner} is overloaded"))))
            }
        }
    }

    /// Removes `name` if the running agent holds it (fire and forget when owned elsewhere).
    pub fn unregister(&mut self, name: &str) {
        let me = self.me;
        self.shard.forget_name(me.slot(), name);
        self.shard.unregister_name(name, Some(me));
    }

    /// Resolves `name`: a plain probe when this shard owns it (`Found` or `Missing`, and `then`
    /// is dropped), a request over the mesh when not (`Pending`: `then` later turns the answer
    /// into a message for this agent, as for [`Ctx::ask`]).
    pub fn lookup<T, G>(&mut self, name: &str, then: G) -> Lookup
    where
        T: Send + 'static,
        G: FnOnce(Result<Option<AgentId>, AskError>) -> T + Send + 'static,
    {
        if let Some(found) = self.lookup_local(name) {
            return found.map_or(Lookup::Missing, Lookup::Found);
        }
        let owner = owner_of(name, self.shards());
        let Some(token) = self.open_system_request(then) else {
            return Lookup::Unreachable(RegistryError::Unreachable("too many outstanding asks on this shard".into()));
        };
        let op = SystemOp::Lookup { name: name.into(), reply: ReplyTo::new(ReplyTarget::Shard(token), false) };
        match self.shard.send_system(owner, Envelope::system(Payload::new(op))) {
            Ok(()) => Lookup::Pending,
            Err(_) => {
                self.shard.asks.cancel(token);
                Lookup::Unreachable(RegistryError::Unreachable(format!("the way to shard {owner} is full")))
            }
        }
    }

    /// Opens a reply slot for one of the engine's own requests made for this agent (remote
    /// spawn, registry), with [`SYSTEM_REQUEST_TIMEOUT`] and `then` as its typed continuation.
    /// `None` when every slot is taken. Checks `then`'s type like [`Ask::then`](super::Ask::then).
    pub(crate) fn open_system_request<R, T, G>(&mut self, then: G) -> Option<u64>
    where
        R: Send + 'static,
        T: Send + 'static,
        G: FnOnce(Result<R, AskError>) -> T + Send + 'static,
    {
        self.expect_answer_type::<T>("a registry or remote-spawn request");
        let deadline = deadline_after(self.shard.now_ns(), SYSTEM_REQUEST_TIMEOUT);
        let then = crate::ask::Continuation::Adapt(crate::ask::then::Then::new::<R, T, G>(then));
        self.shard.asks.open_then(self.me, deadline, then)
    }
}

/// `Ctx::send_with` and its options, end to end.
#[cfg(test)]
#[path = "send_tests.rs"]
mod send_tests;
