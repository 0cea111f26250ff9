//! Typed agent pools and the per-kind dispatch functions.
//!
//! Agent state lives in one pool per agent type per shard: a `Vec<Option<A>>` with a free list.
//! A stopped agent's entry is reused by the next spawn of the same type, so stop-then-spawn
//! does not allocate once the pool has grown to its high-water mark, and an agent costs its own
//! size plus the `Option` tag, not a heap block.
//!
//! Each kind registers one monomorphised function, [`run_agent::<A>`], in [`Kinds`]. The
//! dispatcher calls it through a plain function pointer: no trait object per agent, and no
//! `TypeId` lookup per message (only a `TypeId` compare when a payload is unpacked).
//!
//! While an agent runs, its value is moved out of its pool entry (which stays reserved), so the
//! handler can hold `&mut self` while `Ctx` holds `&mut Shard`; it is moved back after the batch.

use super::ctx::Ctx;
use super::{Agent, AgentId, RequestId, SlotState, Undelivered};
use crate::ask::{AskError, Reply};
use crate::envelope::Kind;
use crate::metrics::DeadLetterReason;
use crate::shard::Shard;
use std::any::{Any, TypeId};

/// What [`run_agent`] is asked to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RunMode {
    /// Run `on_start`.
    Start,
    /// Handle up to this many queued messages.
    Messages(u32),
    /// Stop the agent (run `on_stop`, drop it, free its slot).
    Stop,
}

/// A dispatch function of one kind.
pub(crate) type RunFn = fn(&mut Shard, u32, RunMode) -> u32;

/// A failed ask, carried in a `ReplyToAgent` envelope instead of a reply value.
pub(crate) struct AskFailure(pub(crate) AskError);

/// The pool of one agent type.
pub(crate) struct TypedPool<A> {
    items: Vec<Option<A>>,
    free: Vec<u32>,
}

impl<A> TypedPool<A> {
    fn insert(&mut self, agent: A) -> u32 {
        match self.free.pop() {
            Some(i) => {
                debug_assert!(self.items[i as usize].is_none());
                self.items[i as usize] = Some(agent);
                i
            }
            None => {
                self.items.push(Some(agent));
                (self.items.len() - 1) as u32
            }
        }
    }

    fn release(&mut self, index: u32) {
        debug_assert!(self.items[index as usize].is_none());
        self.free.push(index);
    }
}

struct KindEntry {
    type_id: TypeId,
    run: RunFn,
    pool: Box<dyn Any>,
}

/// The kinds (agent types) known to a shard, each with its pool and dispatch function.
#[derive(Default)]
pub(crate) struct Kinds {
    entries: Vec<KindEntry>,
}

impl Kinds {
    /// The index of `A`'s kind, registering it on first use.
    #[inline]
    pub(crate) fn kind_of<A: Agent>(&mut self) -> u16 {
        let tid = TypeId::of::<A>();
        if let Some(i) = self.entries.iter().position(|e| e.type_id == tid) {
            return i as u16;
        }
        assert!(self.entries.len() < u16::MAX as usize, "too many agent kinds on one shard");
        self.entries.push(KindEntry {
            type_id: tid,
            run: run_agent::<A>,
            pool: Box::new(TypedPool::<A> { items: Vec::new(), free: Vec::new() }),
        });
        (self.entries.len() - 1) as u16
    }

    /// `A`'s pool. `kind` must be `A`'s kind index.
    #[inline]
    pub(crate) fn pool<A: Agent>(&mut self, kind: u16) -> &mut TypedPool<A> {
        self.entries[kind as usize].pool.downcast_mut::<TypedPool<A>>().expect("kind index matches its pool type")
    }

    /// The dispatch function of `kind`.
    #[inline]
    pub(crate) fn run_fn(&self, kind: u16) -> RunFn {
        self.entries[kind as usize].run
    }
}

impl Shard {
    /// Places `agent` in this shard's pool and slot table and runs its `on_start`.
    pub(crate) fn spawn_here<A: Agent>(
        &mut self,
        agent: A,
        mailbox_capacity: Option<u32>,
    ) -> Result<AgentId, super::SpawnError> {
        let kind = self.kinds.kind_of::<A>();
        let pool_index = self.kinds.pool::<A>(kind).insert(agent);
        let capacity = mailbox_capacity.unwrap_or(self.limits.mailbox_capacity).max(1);
        let Some((slot, generation)) = self.slots.allocate(kind, pool_index, capacity) else {
            let pool = self.kinds.pool::<A>(kind);
            pool.items[pool_index as usize] = None;
            pool.release(pool_index);
            return Err(super::SpawnError::SlotsExhausted(self.index));
        };
        self.metrics.counters.spawned += 1;
        let id = AgentId::new(self.index, slot, generation);
        run_agent::<A>(self, slot, RunMode::Start);
        Ok(id)
    }
}

/// Stops the agent `id` on this shard if it is still alive (idempotent).
pub(crate) fn stop_agent(shard: &mut Shard, id: AgentId) {
    let Some(slot) = shard.slots.get(id.slot()) else { return };
    if slot.state == SlotState::Free || slot.state == SlotState::Stopping || slot.generation != id.generation() {
        return;
    }
    let run = shard.kinds.run_fn(slot.kind);
    run(shard, id.slot(), RunMode::Stop);
}

/// Runs one agent of type `A`: its start hook, a batch of its messages, or its stop.
/// Returns how many messages it handled.
pub(crate) fn run_agent<A: Agent>(shard: &mut Shard, slot_index: u32, mode: RunMode) -> u32 {
    let Some(slot) = shard.slots.get(slot_index).copied() else { return 0 };
    if slot.state == SlotState::Free || slot.state == SlotState::Stopping {
        return 0;
    }
    let me = AgentId::new(shard.index, slot_index, slot.generation);
    let Some(mut agent) = shard.kinds.pool::<A>(slot.kind).items[slot.pool_index as usize].take() else {
        // Already running further up the stack: only the running agent is ever taken out.
        return 0;
    };
    let mut ctx = Ctx::new(shard, me);
    let mut handled = 0;
    match mode {
        RunMode::Start => agent.on_start(&mut ctx),
        RunMode::Stop => ctx.stopping = true,
        RunMode::Messages(budget) => {
            // A turn handles only what was queued when it began: what the agent sends itself
            // meanwhile waits for its next turn, so a self-message is a yield that lets the
            // rest of the shard (a full mailbox's owner, say) run first.
            let budget = budget.min(slot.queue.len());
            while handled < budget && !ctx.stopping {
                let Some(queue) = ctx.shard.slots.get_mut(slot_index).map(|s| &mut s.queue) else { break };
                let Some(env) = ctx.shard.store.pop(queue) else { break };
                handled += 1;
                if env.sent_ns != 0 {
                    let now = ctx.shard.shared.clock.now_ns();
                    ctx.shard.metrics.record_latency(now.saturating_sub(env.sent_ns));
                }
                if env.deadline_ns != 0 && ctx.shard.now_ns() > env.deadline_ns {
                    ctx.shard.dead_letter(env, DeadLetterReason::Expired);
                    continue;
                }
                match env.kind {
                    Kind::User => match env.payload.take::<A::Msg>() {
                        Ok(msg) => {
                            ctx.shard.metrics.counters.delivered += 1;
                            agent.handle(msg, &mut ctx);
                        }
                        Err(payload) => {
                            let env = crate::envelope::Envelope { payload, ..env };
                            ctx.shard.dead_letter(env, DeadLetterReason::TypeMismatch);
                        }
                    },
                    Kind::ReplyToAgent => {
                        if env.counted() {
                            ctx.shard.metrics.counters.delivered += 1;
                        }
                        let request = RequestId(env.request);
                        let reply = match env.payload.take::<AskFailure>() {
                            Ok(AskFailure(e)) => Err(e),
                            Err(payload) => Ok(Reply(payload)),
                        };
                        agent.on_reply(request, reply, &mut ctx);
                    }
                    Kind::Undelivered => {
                        let reason = DeadLetterReason::ALL
                            .get(env.request as usize)
                            .copied()
                            .unwrap_or(DeadLetterReason::NoSuchAgent);
                        let notice = Undelivered { to: AgentId::from_bits(env.from), reason, message: env.payload };
                        agent.on_undelivered(notice, &mut ctx);
                    }
                    Kind::Reply | Kind::System => {
                        debug_assert!(false, "routing never queues {:?} in a mailbox", env.kind);
                    }
                }
            }
        }
    }
    let stopping = ctx.stopping;
    if stopping {
        agent.on_stop(&mut ctx);
    }
    let shard = ctx.shard;
    if stopping {
        drop(agent);
        shard.kinds.pool::<A>(slot.kind).release(slot.pool_index);
        shard.finish_stop(slot_index);
    } else {
        shard.kinds.pool::<A>(slot.kind).items[slot.pool_index as usize] = Some(agent);
    }
    handled
}
