//! Ask: request/reply with a deadline, reply slots pooled on the asking shard.
//!
//! Protocol:
//! 1. An agent asks (`Ctx::ask(..).then(adapt)`): its shard takes a slot from `PendingAsks` (a
//!    pooled table with a free list), records who asked, the deadline and the continuation
//!    (the adapter, see `then`), and builds a [`ReplyTo<R>`] token naming (shard, slot, 32-bit
//!    generation). The token travels inside the request message.
//! 2. The target handles the request and calls `Ctx::reply(token, value)`. The reply travels
//!    back over the mesh to the asking shard as an envelope of kind `Reply`.
//! 3. The asking shard matches the token against the slot. If the generation still matches, the
//!    slot is freed and the answer is queued to the asker as a `Kind::Answer` envelope; its
//!    dispatch runs the adapter and hands the result to `Agent::handle`. If not
//!    (the ask timed out and the slot moved on), the reply is dropped and counted as a
//!    `late_reply` dead letter.
//! 4. Every dispatcher pass checks the earliest deadline; an expired ask frees its slot and the
//!    adapter gets `Err(AskError::Timeout)`.
//! 5. An ask fails before its deadline when its request becomes a dead letter or its handler
//!    panics (`Undelivered(reason)`), or when its `ReplyTo` is dropped unanswered (`Dropped`,
//!    see `dropped`).
//!
//! Host threads ask through a `HostReply` instead: a one-shot cell with a condition variable,
//! since a host thread may block where a shard never does. Its failures come the same ways.

mod dropped;
pub(crate) mod then;

pub(crate) use dropped::{drain_dropped_tokens, drop_error, with_drop_reason};
pub(crate) use then::Continuation;

use crate::agent::AgentId;
use crate::payload::Payload;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Why an ask got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AskError {
    /// No reply arrived before the deadline.
    #[error("the ask timed out; hint: raise the timeout or check that the target replies")]
    Timeout,
    /// The request could not be delivered (the target is gone, its mailbox was full, ...).
    #[error("the request was not delivered: {0}")]
    Undelivered(crate::metrics::DeadLetterReason),
    /// The request could not be queued: the way to shard `.0` is full (a host ask: its inject
    /// queue; a part of `Ctx::ask_all`: the target's mailbox or the way to its shard, or this
    /// shard's reply slots).
    #[error("shard {0} is overloaded (the way to it is full); hint: retry later or raise mesh.inject_capacity or the mailbox capacity")]
    Overloaded(usize),
    /// The target dropped its `ReplyTo` without answering.
    #[error("the ask was dropped unanswered; hint: the target must call `Ctx::reply` on every ReplyTo it gets")]
    Dropped,
    /// The reply had an unexpected type.
    #[error("the reply had an unexpected type")]
    WrongReplyType,
    /// The engine is shutting down.
    #[error("the engine is shutting down")]
    ShuttingDown,
    /// A host ask was made on shard `.0`'s own thread (from inside a handler): waiting there
    /// would freeze the shard until the timeout. Debug builds panic instead.
    #[error("a blocking host ask was made on shard {0}'s own thread; hint: inside an agent use Ctx::ask, which does not block")]
    BlockingOnShard(usize),
}

/// Where a reply goes.
pub(crate) enum ReplyTarget {
    /// A pending-ask slot on a shard: a reply token (shard, slot, 32-bit generation).
    Shard(u64),
    /// A host thread blocked in `EngineHandle::ask`.
    Host(Arc<HostReply>),
    /// Nowhere: the token was answered, or never named an ask.
    Spent,
}

/// The right to answer one ask with a value of type `R`. Put it in the request message; the
/// target calls `Ctx::reply(token, value)`. Dropping it without replying fails the ask at once
/// with [`AskError::Dropped`] (or `Undelivered(reason)` when the engine dropped the request as
/// a dead letter, or the handler holding it panicked).
pub struct ReplyTo<R> {
    pub(crate) target: ReplyTarget,
    pub(crate) counted: bool,
    _reply: PhantomData<fn(R)>,
}

impl<R> ReplyTo<R> {
    pub(crate) fn new(target: ReplyTarget, counted: bool) -> Self {
        Self { target, counted, _reply: PhantomData }
    }

    /// Takes where the answer goes, leaving the token spent (its drop then does nothing).
    #[inline]
    pub(crate) fn take(mut self) -> (ReplyTarget, bool) {
        (std::mem::replace(&mut self.target, ReplyTarget::Spent), self.counted)
    }
}

impl<R> Drop for ReplyTo<R> {
    /// Fails the ask when the token goes unanswered; see `dropped`. Never allocates.
    fn drop(&mut self) {
        match &self.target {
            ReplyTarget::Spent => {}
            ReplyTarget::Host(cell) => cell.fail(dropped::host_drop_error()),
            ReplyTarget::Shard(token) => dropped::note_dropped_token(*token),
        }
    }
}

impl<R> fmt::Debug for ReplyTo<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            ReplyTarget::Shard(bits) => {
                let (slot, generation) = token_parts(*bits);
                write!(f, "ReplyTo({}:{slot}.{generation})", AgentId::from_bits(*bits).shard())
            }
            ReplyTarget::Host(_) => f.write_str("ReplyTo(host)"),
            ReplyTarget::Spent => f.write_str("ReplyTo(spent)"),
        }
    }
}

/// A one-shot reply cell for a host thread.
#[derive(Default)]
pub(crate) struct HostReply {
    state: Mutex<HostReplyState>,
    ready: Condvar,
}

#[derive(Default)]
struct HostReplyState {
    value: Option<Payload>,
    failed: Option<AskError>,
    abandoned: bool,
}

impl HostReply {
    /// Stores the reply and wakes the waiter. Returns `false` (and drops the value) when the
    /// waiter already gave up: a late reply.
    pub(crate) fn fulfil(&self, value: Payload) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.abandoned || state.value.is_some() || state.failed.is_some() {
            return false;
        }
        state.value = Some(value);
        drop(state);
        self.ready.notify_one();
        true
    }

    /// Fails the ask with `error` and wakes the waiter, unless it was answered or given up.
    pub(crate) fn fail(&self, error: AskError) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.abandoned || state.value.is_some() || state.failed.is_some() {
            return;
        }
        state.failed = Some(error);
        drop(state);
        self.ready.notify_one();
    }

    /// The answer if it came (a reply or a failure), without waiting; `None` while pending.
    pub(crate) fn try_take(&self) -> Option<Result<Payload, AskError>> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = state.value.take() {
            return Some(Ok(v));
        }
        state.failed.map(Err)
    }

    /// Gives up waiting: a later `fulfil` counts as a late reply.
    pub(crate) fn abandon(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).abandoned = true;
    }

    /// Waits until `deadline` for the reply. On timeout the cell is marked abandoned, so a
    /// later `fulfil` counts as late.
    pub(crate) fn wait(&self, deadline: Instant) -> Result<Payload, AskError> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(v) = state.value.take() {
                return Ok(v);
            }
            if let Some(e) = state.failed {
                return Err(e);
            }
            let now = Instant::now();
            if now >= deadline {
                state.abandoned = true;
                return Err(AskError::Timeout);
            }
            state = self.ready.wait_timeout(state, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
        }
    }
}

/// End-of-list marker.
const NIL: u32 = u32::MAX;

/// Bits of a reply token that hold the slot index. A token is `[shard: 12 | slot: 20 |
/// generation: 32]`: the shard sits where an `AgentId` keeps it, so a reply routes like any
/// message, and the 32-bit generation means a reply must arrive 2^32 asks of one slot late
/// (minutes at full rate, far past any deadline) before it could be taken for a newer ask's.
const TOKEN_SLOT_BITS: u32 = 20;
/// Reply slots one shard may have outstanding at once.
const MAX_ASK_SLOTS: u32 = 1 << TOKEN_SLOT_BITS;

/// Builds the reply token of slot `idx`, generation `generation`, on `shard`.
#[inline]
fn token(shard: usize, idx: u32, generation: u32) -> u64 {
    debug_assert!(idx < MAX_ASK_SLOTS && shard < crate::agent::MAX_SHARDS);
    ((shard as u64) << (64 - crate::agent::SHARD_BITS)) | (u64::from(idx) << 32) | u64::from(generation)
}

/// The slot index and generation a reply token names.
#[inline]
fn token_parts(token: u64) -> (u32, u32) {
    (((token >> 32) as u32) & (MAX_ASK_SLOTS - 1), token as u32)
}

struct PendingAsk {
    generation: u32,
    live: bool,
    asker: u64,
    /// Next free entry while not live.
    next_free: u32,
    /// What to do with the answer (`None` while the slot is free). A single ask's adapter
    /// stays here after the answer settled the slot, until the asker's dispatch takes it
    /// (`take_parked`): the slot is then neither live nor free.
    then: Option<Continuation>,
}

/// A completed or expired ask, ready to be handed to its asker.
pub(crate) struct Settled {
    pub(crate) asker: AgentId,
    pub(crate) request: u64,
    /// What the asker wanted done with the answer.
    pub(crate) then: SettledThen,
}

/// Where a settled ask's continuation is.
pub(crate) enum SettledThen {
    /// A single ask's adapter, parked in reply slot `.0` until the asker's dispatch takes it.
    Parked(u32),
    /// Part `part` of gather `gather`.
    Part { gather: u32, part: u32 },
}

/// The asking shard's pool of reply slots plus a deadline heap.
pub(crate) struct PendingAsks {
    shard: usize,
    slots: Vec<PendingAsk>,
    free: u32,
    live: usize,
    deadlines: BinaryHeap<Reverse<(u64, u32, u32)>>,
    /// Slots this pool may grow to ([`MAX_ASK_SLOTS`]; lower in tests).
    pub(crate) limit: u32,
}

impl PendingAsks {
    /// A pool for shard `shard` with room for `capacity` outstanding asks before it grows.
    pub(crate) fn new(shard: usize, capacity: usize) -> Self {
        Self {
            shard,
            slots: Vec::with_capacity(capacity),
            free: NIL,
            live: 0,
            deadlines: BinaryHeap::with_capacity(capacity),
            limit: MAX_ASK_SLOTS,
        }
    }

    /// Outstanding asks.
    pub(crate) fn live(&self) -> usize {
        self.live
    }

    /// Opens an ask for `asker` expiring at `deadline_ns`; returns the token bits.
    #[cfg(test)]
    pub(crate) fn open(&mut self, asker: AgentId, deadline_ns: u64) -> Option<u64> {
        self.open_then(asker, deadline_ns, Continuation::Part { gather: u32::MAX, part: 0 })
    }

    /// Opens an ask whose answer goes through `then`; returns the token bits, or `None` (and
    /// drops `then`) when every slot is taken.
    pub(crate) fn open_then(&mut self, asker: AgentId, deadline_ns: u64, then: Continuation) -> Option<u64> {
        let idx = if self.free != NIL {
            let idx = self.free;
            self.free = self.slots[idx as usize].next_free;
            idx
        } else {
            let idx = u32::try_from(self.slots.len()).ok().filter(|&i| i < self.limit)?;
            self.slots.push(PendingAsk { generation: 0, live: false, asker: 0, next_free: NIL, then: None });
            idx
        };
        let generation = {
            let slot = &mut self.slots[idx as usize];
            slot.live = true;
            slot.asker = asker.to_bits();
            slot.then = Some(then);
            slot.generation
        };
        self.live += 1;
        // Settled asks leave their heap entry behind (removal from a binary heap is O(n)).
        // Compact in place once stale entries outnumber live ones, so the heap stays within
        // twice the outstanding asks and never grows in steady state.
        if self.deadlines.len() >= 2 * self.live + 64 {
            let slots = &self.slots;
            self.deadlines.retain(|Reverse((_, i, g))| {
                let s = &slots[*i as usize];
                s.live && s.generation == *g
            });
        }
        self.deadlines.push(Reverse((deadline_ns, idx, generation)));
        Some(token(self.shard, idx, generation))
    }

    /// Closes the ask named by `token` if it is still open, returning who asked.
    pub(crate) fn settle(&mut self, token: u64) -> Option<Settled> {
        let (idx, generation) = token_parts(token);
        let slot = self.slots.get_mut(idx as usize)?;
        if !slot.live || slot.generation != generation {
            return None;
        }
        let asker = AgentId::from_bits(slot.asker);
        slot.live = false;
        slot.generation = slot.generation.wrapping_add(1);
        self.live -= 1;
        let then = match slot.then {
            // The adapter stays in place, the slot reserved, until `take_parked`.
            Some(Continuation::Adapt(_)) => {
                return Some(Settled { asker, request: token, then: SettledThen::Parked(idx) })
            }
            Some(Continuation::Part { gather, part }) => SettledThen::Part { gather, part },
            None => unreachable!("a live reply slot holds its continuation"),
        };
        slot.then = None;
        slot.next_free = self.free;
        self.free = idx;
        Some(Settled { asker, request: token, then })
    }

    /// Adapters parked in settled slots, waiting for their asker's dispatch (for tests).
    #[cfg(test)]
    pub(crate) fn parked(&self) -> usize {
        self.slots.iter().filter(|s| !s.live && s.then.is_some()).count()
    }

    /// Closes the ask named by `token` whose request was never sent, dropping its continuation
    /// unrun (the caller reports the refusal itself) and freeing its slot.
    pub(crate) fn cancel(&mut self, token: u64) {
        if let Some(Settled { then: SettledThen::Parked(idx), .. }) = self.settle(token) {
            drop(self.take_parked(idx));
        }
    }

    /// Takes the adapter parked in slot `idx` by `settle` and frees the slot. `None` when the
    /// slot holds no parked adapter (never, while each answer is taken or discarded once).
    #[inline(always)]
    pub(crate) fn take_parked(&mut self, idx: u32) -> Option<then::Then> {
        let slot = self.slots.get_mut(idx as usize)?;
        if slot.live {
            return None;
        }
        let Some(Continuation::Adapt(then)) = slot.then.take() else { return None };
        slot.next_free = self.free;
        self.free = idx;
        Some(then)
    }

    /// The earliest deadline of an ask still open: settled asks' entries at the top of the
    /// heap are dropped on the way (a parked shard, or a simulator, must not wake for them).
    pub(crate) fn next_open_deadline(&mut self) -> Option<u64> {
        while let Some(&Reverse((deadline, idx, generation))) = self.deadlines.peek() {
            let slot = &self.slots[idx as usize];
            if slot.live && slot.generation == generation {
                return Some(deadline);
            }
            self.deadlines.pop();
        }
        None
    }

    /// The earliest deadline among entries in the heap (some may already be settled).
    #[inline]
    pub(crate) fn next_deadline(&self) -> Option<u64> {
        self.deadlines.peek().map(|Reverse((d, _, _))| *d)
    }

    /// Closes and returns the next ask whose deadline is at or before `now_ns`.
    pub(crate) fn pop_expired(&mut self, now_ns: u64) -> Option<Settled> {
        while let Some(&Reverse((deadline, idx, generation))) = self.deadlines.peek() {
            if deadline > now_ns {
                return None;
            }
            self.deadlines.pop();
            if let Some(settled) = self.settle(token(self.shard, idx, generation)) {
                return Some(settled);
            }
        }
        None
    }
}

/// Converts a timeout into an absolute engine-clock deadline, saturating.
pub(crate) fn deadline_after(now_ns: u64, timeout: Duration) -> u64 {
    now_ns.saturating_add(u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settle_once_then_late() {
        let mut p = PendingAsks::new(1, 4);
        let asker = AgentId::new(1, 9, 0);
        let t = p.open(asker, 100).unwrap();
        assert_eq!(p.settle(t).unwrap().asker, asker);
        assert!(p.settle(t).is_none(), "second reply is late");
        let t2 = p.open(asker, 50).unwrap();
        assert_ne!(t, t2, "reused slot gets a new generation");
        assert!(p.pop_expired(49).is_none());
        assert_eq!(p.pop_expired(50).unwrap().request, t2);
        assert!(p.settle(t2).is_none());
        assert_eq!(p.live(), 0);
        assert!(p.pop_expired(1000).is_none(), "stale heap entry for the settled ask is skipped");
    }

    #[test]
    fn a_reply_2_pow_20_asks_late_is_not_taken_for_a_newer_ask_in_the_slot() {
        let mut p = PendingAsks::new(2, 4);
        let asker = AgentId::new(2, 5, 0);
        let stale = p.open(asker, u64::MAX).unwrap();
        p.settle(stale).unwrap();
        // Cycle the one slot 2^20 - 1 more times: with 20 generation bits the next ask would
        // get `stale`'s generation back.
        for _ in 0..(1u32 << 20) - 1 {
            let t = p.open(asker, u64::MAX).unwrap();
            p.settle(t).unwrap();
        }
        let newer = p.open(asker, u64::MAX).unwrap();
        assert!(p.settle(stale).is_none(), "the stale reply is late, not an answer to the newer ask");
        assert_eq!(p.settle(newer).unwrap().request, newer);
    }

    #[test]
    fn a_forced_generation_wrap_keeps_the_token_exact() {
        let mut p = PendingAsks::new(7, 4);
        let asker = AgentId::new(7, 1, 0);
        let first = p.open(asker, u64::MAX).unwrap();
        p.settle(first).unwrap();
        p.slots[0].generation = u32::MAX;
        let last = p.open(asker, 10).unwrap();
        assert_eq!(AgentId::from_bits(last).shard(), 7, "the reply routes to the asking shard");
        assert_eq!(p.settle(last).unwrap().request, last, "the last generation before the wrap");
        let wrapped = p.open(asker, 10).unwrap();
        assert_ne!(wrapped, last);
        assert!(p.settle(last).is_none());
        assert_eq!(p.settle(wrapped).unwrap().asker, asker);
    }

    #[test]
    fn a_settled_adapter_stays_parked_in_its_slot_until_taken() {
        let mut p = PendingAsks::new(0, 4);
        let asker = AgentId::new(0, 1, 0);
        let adapt = Continuation::Adapt(then::Then::new(|r: Result<u8, AskError>| r));
        let t = p.open_then(asker, u64::MAX, adapt).unwrap();
        let settled = p.settle(t).unwrap();
        let SettledThen::Parked(idx) = settled.then else { panic!("a single ask's adapter is parked") };
        assert!(p.settle(t).is_none(), "a second reply is late");
        let other = p.open(asker, u64::MAX).unwrap();
        assert_ne!(token_parts(other).0, idx, "a parked slot is not reused");
        let adapter = p.take_parked(idx).expect("parked");
        assert_eq!(adapter.run_as::<Result<u8, AskError>>(Ok(Payload::new(3u8))).ok(), Some(Ok(3)));
        assert!(p.take_parked(idx).is_none(), "taken once");
        assert_eq!(token_parts(p.open(asker, u64::MAX).unwrap()).0, idx, "freed once taken");
    }

    #[test]
    fn settled_asks_do_not_grow_the_heap() {
        let mut p = PendingAsks::new(0, 4);
        let asker = AgentId::new(0, 1, 0);
        for _ in 0..10_000 {
            let t = p.open(asker, u64::MAX).unwrap();
            p.settle(t).unwrap();
        }
        assert!(p.deadlines.len() <= 2 * p.live() + 64, "{}", p.deadlines.len());
    }

    #[test]
    fn host_reply_times_out_then_counts_late() {
        let cell = HostReply::default();
        let r = cell.wait(Instant::now() + Duration::from_millis(1));
        assert_eq!(r.unwrap_err(), AskError::Timeout);
        assert!(!cell.fulfil(Payload::new(1u8)));
        let cell = HostReply::default();
        assert!(cell.fulfil(Payload::new(7u8)));
        assert_eq!(cell.wait(Instant::now()).unwrap().take::<u8>().unwrap(), 7);
    }
}
