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
//!
//! Panic isolation: the run function wraps the whole turn in one `catch_unwind` (free on the
//! path that does not panic). A panic drops the agent's value without running `on_stop`, frees
//! its slot with `ExitReason::Panicked`, counts the message in hand as a `panicked` dead letter
//! and fails its ask at once when it was one.

use super::ctx::Ctx;
use super::{panic_message, Agent, AgentId, ExitReason, Signal, SlotState, Undelivered};
use crate::ask::AskError;
use crate::envelope::{
    Envelope, Kind, FLAG_ASK, FLAG_COUNTED, FLAG_DEADLINE, FLAG_DEAD_LETTER_NOTICE, FLAG_SAMPLED, FLAG_TRACED,
};
use crate::metrics::DeadLetterReason;
use crate::payload::Payload;
use crate::shard::Shard;
use std::any::{Any, TypeId};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// What [`run_agent`] is asked to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RunMode {
    /// Run `on_start`.
    Start,
    /// Handle up to this many queued messages.
    Messages(u32),
    /// Handle the control-lane envelope stashed in `Shard::control_current`.
    Control,
    /// Stop the agent with the reason in `Shard::stop_reason` (run `on_stop`, drop it, free
    /// its slot).
    Stop,
}

/// A dispatch function of one kind.
pub(crate) type RunFn = fn(&mut Shard, u32, RunMode) -> u32;

/// A failed ask, carried in a `Reply` or `Answer` envelope instead of a reply value.
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
        self.spawn_here_linked(agent, mailbox_capacity, None)
    }

    /// Like `spawn_here`, linking the new agent to `link` before its `on_start` runs, so an
    /// end during `on_start` reaches `link` with its real reason.
    pub(crate) fn spawn_here_linked<A: Agent>(
        &mut self,
        agent: A,
        mailbox_capacity: Option<u32>,
        link: Option<AgentId>,
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
        if let Some(other) = link {
            self.add_link(id, other);
        }
        run_agent::<A>(self, slot, RunMode::Start);
        Ok(id)
    }
}

/// Stops the agent `id` on this shard with `reason` if it is still alive (idempotent).
pub(crate) fn stop_agent(shard: &mut Shard, id: AgentId, reason: ExitReason) {
    let Some(slot) = shard.slots.get(id.slot()) else { return };
    if slot.state == SlotState::Free || slot.state == SlotState::Stopping || slot.generation != id.generation() {
        return;
    }
    let run = shard.kinds.run_fn(slot.kind);
    shard.stop_reason = Some(reason);
    run(shard, id.slot(), RunMode::Stop);
    shard.stop_reason = None;
}

/// What a handler was holding when it panicked: how to account for the message.
#[derive(Clone, Copy)]
pub(crate) struct InHand {
    /// The message counts in the accounting (it becomes a `panicked` dead letter).
    pub(crate) counted: bool,
    /// The message was an agent's ask with this reply token (the ask fails at once).
    pub(crate) ask_token: Option<u64>,
    /// Its addressee and sender (raw ids), for the dead-letter subscriber.
    pub(crate) to: u64,
    pub(crate) from: u64,
    /// Names its type, for the dead-letter subscriber (called only on a panic).
    pub(crate) type_name: fn() -> &'static str,
    /// It was itself a dead-letter notice (never reported again).
    pub(crate) notice: bool,
}

/// Runs one agent of type `A`: its start hook, a batch of its messages, one control-lane
/// envelope (stashed in `Shard::control_current`), or its stop. Returns how many messages it
/// handled. Every hook runs inside `catch_unwind`: a panic stops the agent with
/// `ExitReason::Panicked` and is never seen by the shard.
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
    let mut ctx = Ctx::new::<A::Msg>(shard, me);
    let mut handled = 0;
    let mut in_hand: Option<InHand> = None;
    let outcome = catch_unwind(AssertUnwindSafe(|| match mode {
        RunMode::Start => agent.on_start(&mut ctx),
        RunMode::Stop => {
            let reason = ctx.shard.stop_reason.take().unwrap_or(ExitReason::Shutdown);
            ctx.exit = Some(reason);
        }
        RunMode::Control => {
            if let Some(env) = ctx.shard.control_current.take() {
                handled = 1;
                dispatch_one(&mut agent, env, &mut ctx, &mut in_hand);
            }
        }
        RunMode::Messages(budget) => {
            // A turn handles only what was queued when it began: what the agent sends itself
            // meanwhile waits for its next turn, so a self-message is a yield that lets the
            // rest of the shard (a full mailbox's owner, say) run first.
            let budget = budget.min(slot.queue.len());
            while handled < budget && ctx.exit.is_none() {
                let Some(queue) = ctx.shard.slots.get_mut(slot_index).map(|s| &mut s.queue) else { break };
                let Some(env) = ctx.shard.store.pop(queue) else { break };
                handled += 1;
                // One test for the common case: no latency sample, deadline or trace on the
                // message, and no tracing or dispatch hook on the shard.
                if env.flags & (FLAG_SAMPLED | FLAG_DEADLINE | FLAG_TRACED) == 0 && !ctx.shard.hooked() {
                    dispatch_body(&mut agent, env, &mut ctx, &mut in_hand);
                    continue;
                }
                if env.is_sampled() {
                    let now = ctx.shard.shared.clock.now_ns();
                    if let Some(latency) = env.latency_ns(now) {
                        ctx.shard.metrics.record_latency(latency);
                    }
                }
                // The clock is read (once a pass) only for a message that has a deadline.
                if env.has_deadline() {
                    let now = ctx.shard.now_ns();
                    if env.deadline_ns(now).is_some_and(|deadline| now > deadline) {
                        ctx.shard.dead_letter(env, DeadLetterReason::Expired);
                        continue;
                    }
                }
                dispatch_one(&mut agent, env, &mut ctx, &mut in_hand);
            }
        }
    }));
    let (exit, clean) = match outcome {
        Ok(()) => (ctx.exit.take(), true),
        Err(payload) => {
            let message = panic_message(&*payload);
            ctx.shard.metrics.counters.panics += 1;
            if let Some(held) = in_hand.take() {
                ctx.shard.account_in_hand(held, DeadLetterReason::Panicked);
            }
            (Some(ExitReason::Panicked(message)), false)
        }
    };
    let Some(reason) = exit else {
        if ctx.shard.tracer.holds_current() {
            // A panicking traced handler never closed its hop: nothing stays current past a turn.
            ctx.shard.tracer.clear();
        }
        ctx.shard.kinds.pool::<A>(slot.kind).items[slot.pool_index as usize] = Some(agent);
        return handled;
    };
    if clean {
        // A panic in `on_stop` changes nothing: the agent is stopping anyway.
        ctx.deadline_ns = 0;
        if catch_unwind(AssertUnwindSafe(|| agent.on_stop(&mut ctx))).is_err() {
            ctx.shard.metrics.counters.panics += 1;
        }
    }
    let shard = ctx.shard;
    // After a panic the state may be broken: it is dropped, never run again. A panicking
    // `Drop` leaks the rest of the value rather than taking the shard down.
    if catch_unwind(AssertUnwindSafe(move || drop(agent))).is_err() {
        shard.metrics.counters.panics += 1;
    }
    shard.kinds.pool::<A>(slot.kind).release(slot.pool_index);
    // A hop that stopped its agent is still current: the `Down` and `Exit` signals of the stop
    // carry its trace. Then nothing stays current past the turn.
    shard.finish_stop(slot_index, reason);
    if shard.tracer.holds_current() {
        shard.tracer.clear();
    }
    handled
}

/// Hands one envelope to the agent's matching hook.
///
/// Inlined into the turn so the popped envelope is handed over in place: a call copied its
/// 64 bytes through the stack, and the copy's loads stalled on the stores just made (a 12%
/// slower local send+dispatch, measured with `bench/examples/instructions.rs`).
///
/// Tracing costs an unsampled message one test here: of its flag and whether a trace is
/// current, at once (`dispatch_traced` takes both cases out of line); sampling alone costs
/// the dispatch nothing.
#[inline(always)]
fn dispatch_one<A: Agent>(agent: &mut A, env: Envelope, ctx: &mut Ctx<'_>, in_hand: &mut Option<InHand>) {
    if !cfg!(feature = "untraced") && ((env.flags & FLAG_TRACED != 0) | ctx.shard.tracer.holds_current()) {
        return dispatch_traced(agent, env, ctx, in_hand);
    }
    dispatch_plain(agent, env, ctx, in_hand);
}

/// `dispatch_one` for a traced message, or any message while a trace is current: a traced
/// message's hop opens before its handler runs and closes after, with its span recorded; an
/// untraced one runs with no current trace (an earlier handler's adopted one is forgotten).
#[cold]
#[inline(never)]
fn dispatch_traced<A: Agent>(agent: &mut A, env: Envelope, ctx: &mut Ctx<'_>, in_hand: &mut Option<InHand>) {
    if env.flags & FLAG_TRACED == 0 {
        ctx.shard.tracer.set_current(None);
        dispatch_plain(agent, env, ctx, in_hand);
        ctx.shard.tracer.set_current(None);
        return;
    }
    let now = ctx.shard.shared.clock.now_ns();
    let (env, open) = ctx.shard.tracer.begin(env, ctx.me.to_bits(), now);
    dispatch_plain(agent, env, ctx, in_hand);
    let now = ctx.shard.shared.clock.now_ns();
    let current = ctx.shard.tracer.current;
    ctx.shard.tracer.end(open, now);
    if ctx.exit.is_some() {
        // The agent stops after this turn: its stop's signals carry this hop's trace (the
        // turn clears it after the stop).
        ctx.shard.tracer.set_current(current);
    } else {
        // The hop is over: whatever its handler adopted ends with it.
        ctx.shard.tracer.set_current(None);
    }
}

/// Hands one untraced envelope to the agent's matching hook, reporting it to the dispatch
/// trace when a driver asked.
#[inline(always)]
fn dispatch_plain<A: Agent>(agent: &mut A, env: Envelope, ctx: &mut Ctx<'_>, in_hand: &mut Option<InHand>) {
    if ctx.shard.dispatch_trace.is_some() {
        trace_dispatch::<A>(env.kind, ctx);
    }
    dispatch_body(agent, env, ctx, in_hand);
}

/// Hands one untraced envelope to the agent's matching hook.
#[inline(always)]
fn dispatch_body<A: Agent>(agent: &mut A, mut env: Envelope, ctx: &mut Ctx<'_>, in_hand: &mut Option<InHand>) {
    let counted = env.counted();
    ctx.deadline_ns = if env.has_deadline() { env.deadline_ns(ctx.shard.now_ns()).unwrap_or(0) } else { 0 };
    match env.kind {
        Kind::User => {
            let ask_token = (env.flags & FLAG_ASK != 0).then_some(env.request);
            match env.payload.take::<A::Msg>() {
                Ok(msg) => {
                    *in_hand = Some(InHand {
                        counted,
                        ask_token,
                        to: env.to,
                        from: env.from,
                        type_name: std::any::type_name::<A::Msg>,
                        notice: env.flags & FLAG_DEAD_LETTER_NOTICE != 0,
                    });
                    agent.handle(msg, ctx);
                    *in_hand = None;
                    if counted {
                        ctx.shard.metrics.counters.delivered += 1;
                    }
                }
                Err(payload) => {
                    env.payload = payload;
                    ctx.shard.dead_letter(env, DeadLetterReason::TypeMismatch);
                }
            }
        }
        Kind::Answer => dispatch_answer(agent, env, ctx, in_hand),
        Kind::Undelivered => {
            let reason =
                DeadLetterReason::ALL.get(env.request as usize).copied().unwrap_or(DeadLetterReason::NoSuchAgent);
            let notice = Undelivered { to: AgentId::from_bits(env.from), reason, message: env.payload };
            agent.on_undelivered(notice, ctx);
        }
        Kind::Signal => match env.payload.take::<Signal>() {
            Ok(Signal::Down(down)) => agent.on_down(down, ctx),
            Ok(Signal::Exit(exit)) => agent.on_exit(exit, ctx),
            Err(p) => debug_assert!(false, "signal envelope with a {} payload", p.type_name()),
        },
        Kind::Reply | Kind::System => {
            debug_assert!(false, "routing never hands {:?} to an agent", env.kind);
        }
    }
    ctx.deadline_ns = 0;
}

/// Hands a typed ask's answer to the agent: runs the parked adapter (or the gather's finisher)
/// on the reply, under the turn's panic isolation, and gives its value to `Agent::handle`.
/// Out of line: it keeps the user-message path of `dispatch_one` small.
#[inline(never)]
fn dispatch_answer<A: Agent>(agent: &mut A, env: Envelope, ctx: &mut Ctx<'_>, in_hand: &mut Option<InHand>) {
    let counted = env.counted();
    let type_name = env.payload.type_name_fn();
    let reply = match env.payload.take::<AskFailure>() {
        Ok(AskFailure(e)) => Err(e),
        Err(payload) => Ok(payload),
    };
    *in_hand = Some(InHand { counted, ask_token: None, to: env.to, from: env.from, type_name, notice: false });
    match ctx.shard.run_answer_as::<A::Msg>(env.request, reply) {
        Some(Some(msg)) => {
            agent.handle(msg, ctx);
            *in_hand = None;
            if counted {
                ctx.shard.metrics.counters.delivered += 1;
            }
        }
        // The entry is gone, or builds another type (`Ask::then` checks it): neither happens.
        // Counted, never silent.
        _ => {
            *in_hand = None;
            let flags = if counted { FLAG_COUNTED } else { 0 };
            let env = Envelope::new(Kind::User, env.to, env.from, 0, flags, Payload::new(()));
            ctx.shard.dead_letter(env, DeadLetterReason::TypeMismatch);
        }
    }
}

/// Reports one dispatch to the shard's trace sink (a simulator's); out of line.
#[cold]
#[inline(never)]
fn trace_dispatch<A: Agent>(kind: Kind, ctx: &mut Ctx<'_>) {
    let what = match kind {
        Kind::User => std::any::type_name::<A::Msg>(),
        Kind::Answer => "answer",
        Kind::Signal => "signal",
        Kind::Undelivered => "undelivered",
        Kind::Reply | Kind::System => "engine",
    };
    let event = crate::shard::Dispatch { shard: ctx.shard.index, agent: ctx.me, what, now_ns: ctx.shard.now_ns() };
    if let Some(sink) = ctx.shard.dispatch_trace.as_mut() {
        sink(&event);
    }
}
