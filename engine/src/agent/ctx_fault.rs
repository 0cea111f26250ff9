//! The fault-tolerance half of `Ctx`: monitors, links, trapped exits, timers, linked spawns
//! and name binding for other agents.
//!
//! Everything here is a message: watching or linking an agent of another shard is a system
//! operation over the mesh (control lane), and its answer (`Down`, `Exit`) comes back as a
//! signal. A timer is a message parked on this shard until it is due.

use super::ctx::Ctx;
use super::Spawned;
use super::{Addr, Agent, AgentId, Down, Exit, ExitReason, Registration, Signal, SpawnError};
use crate::ask::AskError;
use crate::ask::{deadline_after, ReplyTarget, ReplyTo};
use crate::envelope::{Envelope, FLAG_CONTROL, FLAG_COUNTED};
use crate::payload::Payload;
use crate::registry::{owner_of, validate_name, RegistryError};
use crate::shard::{Shard, SystemOp};
use std::time::Duration;

/// Names one armed timer (`Ctx::send_after`), for `Ctx::cancel_timer`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimerId(u64);

impl Ctx<'_> {
    /// Watches `id`: when it stops, for any reason, this agent gets one `Down { id, reason }`
    /// in `Agent::on_down`. If `id` is already gone, the `Down` (reason `NoProc`) comes at
    /// once. Watching the same agent twice still gives one `Down`.
    pub fn watch(&mut self, id: AgentId) {
        let me = self.me;
        if !self.on_owner(id, SystemOp::Watch { target: id, watcher: me }, |shard| shard.add_watch(id, me)) {
            self.shard.send_signal(me, Signal::Down(Down { id, reason: ExitReason::NoProc }));
        }
    }

    /// Stops watching `id` (a `Down` already on its way may still arrive).
    pub fn unwatch(&mut self, id: AgentId) {
        let me = self.me;
        self.on_owner(id, SystemOp::Unwatch { target: id, watcher: me }, |shard| shard.remove_watch(id, me));
    }

    /// Links this agent and `id`, in both directions: when either stops with a reason other
    /// than `Normal`, the other stops with the same reason, unless it traps exits
    /// ([`Ctx::trap_exits`]), in which case it gets an `Exit` in `Agent::on_exit`. Linking an
    /// agent that is already gone sends this agent an `Exit` with `NoProc`.
    pub fn link(&mut self, id: AgentId) {
        let me = self.me;
        if id == me {
            return;
        }
        if !self.on_owner(id, SystemOp::Link { target: id, other: me }, |shard| shard.add_link(id, me)) {
            self.shard.send_signal(me, Signal::Exit(Exit { from: id, reason: ExitReason::NoProc }));
            return;
        }
        self.shard.add_link(me, id);
    }

    /// Removes the link between this agent and `id`.
    pub fn unlink(&mut self, id: AgentId) {
        let me = self.me;
        self.shard.remove_link(me, id);
        self.on_owner(id, SystemOp::Unlink { target: id, other: me }, |shard| shard.remove_link(id, me));
    }

    /// Whether this agent receives linked exits in `Agent::on_exit` (true) or stops with them
    /// (false, the default).
    pub fn trap_exits(&mut self, trap: bool) {
        if let Some(slot) = self.shard.slots.get_mut(self.me.slot()) {
            slot.trap_exits = trap;
        }
    }

    /// Runs `local` when `id` lives on this shard, or sends `op` to its shard. `false` when
    /// `id` names a shard that does not exist (so the agent cannot exist either).
    fn on_owner(&mut self, id: AgentId, op: SystemOp, local: impl FnOnce(&mut Shard)) -> bool {
        if id.shard() == self.shard.index {
            local(self.shard);
        } else if id.shard() < self.shard.shared.shards {
            // System envelopes travel in the control lane and are never refused.
            let _ = self.shard.send_system(id.shard(), Envelope::system(Payload::new(op)));
        } else {
            return false;
        }
        true
    }

    /// Sends `msg` to `to` after `delay` (on the engine clock, checked every dispatcher pass).
    /// The message counts as sent when the timer fires; a timer still pending at shutdown is
    /// counted as a `shutdown` dead letter. Timers never fail to arm.
    pub fn send_after<M: Send + 'static>(&mut self, to: Addr<M>, msg: M, delay: Duration) -> TimerId {
        let env = Envelope::user(to.id(), self.me.to_bits(), Payload::new(msg));
        let env = self.shard.trace_armed(env);
        let due = deadline_after(self.shard.now_ns(), delay);
        TimerId(self.shard.timers.arm(due, env))
    }

    /// Like [`Ctx::send_after`], in the control lane (see `Ctx::send_control`).
    pub fn send_control_after<M: Send + 'static>(&mut self, to: Addr<M>, msg: M, delay: Duration) -> TimerId {
        let mut env = Envelope::user(to.id(), self.me.to_bits(), Payload::new(msg));
        env.flags = FLAG_COUNTED | FLAG_CONTROL;
        let env = self.shard.trace_armed(env);
        let due = deadline_after(self.shard.now_ns(), delay);
        TimerId(self.shard.timers.arm(due, env))
    }

    /// Cancels a timer of this shard; returns whether it was still pending (its message is
    /// dropped, never sent and never counted).
    pub fn cancel_timer(&mut self, timer: TimerId) -> bool {
        self.shard.timers.cancel(timer.0).is_some()
    }

    /// Spawns the agent `factory` builds where `placement` says, linked to this agent from its
    /// first instant (the link is recorded on the new agent's shard when it is spawned, and on
    /// this side when the answer arrives). Here, it happens now (`then` is dropped); on
    /// another shard, `then` later turns the outcome, a `Result<AgentId, SpawnError>`, into a
    /// message for this agent, in the control lane.
    pub fn spawn_linked_on<A, F, T, G>(
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
        let me = self.me;
        let options = options.into();
        let capacity = options.mailbox_capacity;
        let target = self.shard.resolve_placement(options.placement)?;
        if target == self.shard.index {
            let id = self.shard.spawn_here_linked(factory(), capacity, Some(me))?;
            self.shard.add_link(me, id);
            return Ok(Spawned::Here(Addr::from_id(id)));
        }
        let token = self.open_system_request(then).ok_or(SpawnError::Overloaded(target))?;
        let build: crate::shard::SpawnFn =
            Box::new(move |shard: &mut Shard| shard.spawn_here_linked(factory(), capacity, Some(me)));
        let op = SystemOp::Spawn(build, ReplyTo::new(ReplyTarget::Shard(token), false));
        match self.shard.send_system(target, Envelope::system(Payload::new(op))) {
            Ok(()) => {
                let pending = crate::shard::PendingLink { asker: me, shard: target, early_exits: Vec::new() };
                self.shard.link_on_reply.insert(token, pending);
                Ok(Spawned::Pending)
            }
            Err(_) => {
                self.shard.asks.cancel(token);
                Err(SpawnError::Overloaded(target))
            }
        }
    }

    /// Binds `name` to agent `id` (of any shard), taking the name over when it still names
    /// `replace` (an agent `id` replaces, whose removal may not have arrived yet). `id`'s shard
    /// remembers the name, so it is removed when `id` stops. Done now when `id` and the name's
    /// owner are both this shard (`then` is dropped); otherwise `then` later turns the result,
    /// a `Result<(), RegistryError>`, into a message for this agent (control lane).
    pub fn register_for<T, G>(&mut self, name: &str, id: AgentId, replace: Option<AgentId>, then: G) -> Registration
    where
        T: Send + 'static,
        G: FnOnce(Result<Result<(), RegistryError>, AskError>) -> T + Send + 'static,
    {
        if let Err(e) = validate_name(name) {
            return Registration::Done(Err(e));
        }
        if id.shard() >= self.shards() {
            return Registration::Done(Err(RegistryError::NoSuchAgent(id)));
        }
        let local = id.shard() == self.shard.index;
        if local && owner_of(name, self.shards()) == self.shard.index {
            return Registration::Done(self.shard.register_here(name, id, replace));
        }
        let Some(token) = self.open_system_request(then) else {
            return Registration::Done(Err(RegistryError::Unreachable("too many outstanding asks".into())));
        };
        let reply = ReplyTo::new(ReplyTarget::Shard(token), false);
        if local {
            self.shard.bind_name(name.into(), id, replace, reply);
            return Registration::Pending;
        }
        let op = SystemOp::BindName { name: name.into(), id, replace, reply };
        match self.shard.send_system(id.shard(), Envelope::system(Payload::new(op))) {
            Ok(()) => Registration::Pending,
            Err(_) => {
                self.shard.asks.cancel(token);
                Registration::Done(Err(RegistryError::Unreachable(format!("the way to shard {} is full", id.shard()))))
            }
        }
    }
}
