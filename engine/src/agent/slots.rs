//! The slot table: one generational slot per agent on a shard.
//!
//! A slot records which kind (agent type) occupies it, where in that kind's pool the state lives,
//! the agent's mailbox queue and its capacity, and the slot's generation. Free slots form a
//! singly linked free list through `pool_index`, so stop-then-spawn reuses a slot (and its pool
//! entry) without allocating. A slot costs 32 bytes.
//!
//! Invariants: `state == Free` exactly when the slot is on the free list; the generation changes
//! every time a slot is freed, so `AgentId`s of earlier occupants no longer match; a slot is in
//! the shard's run queue exactly when `state == Scheduled`.

use crate::agent::AgentId;
use crate::mailbox::Queue;

/// End-of-list marker for the free list.
const NIL: u32 = u32::MAX;

/// What a slot holds now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SlotState {
    /// On the free list.
    Free,
    /// Holds a live agent with no queued work scheduled.
    Idle,
    /// Holds a live agent that is in the run queue.
    Scheduled,
    /// Its agent is being stopped (queued messages are being dead-lettered).
    Stopping,
}

/// One slot; see the module documentation.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Slot {
    pub(crate) generation: u32,
    pub(crate) kind: u16,
    pub(crate) state: SlotState,
    /// Index in the kind's pool while live; next free slot while free.
    pub(crate) pool_index: u32,
    pub(crate) queue: Queue,
    pub(crate) capacity: u32,
    /// The agent receives linked exits in `on_exit` instead of stopping.
    pub(crate) trap_exits: bool,
}

/// The shard's slot table.
pub(crate) struct Slots {
    slots: Vec<Slot>,
    free: u32,
    live: u64,
}

impl Slots {
    /// An empty table with room for `capacity` agents before it grows.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self { slots: Vec::with_capacity(capacity), free: NIL, live: 0 }
    }

    /// Live agents.
    pub(crate) fn live(&self) -> u64 {
        self.live
    }

    /// Takes a free slot (or a new one), marks it live for `kind` at `pool_index`, and returns
    /// its index and generation. `None` when 2^32 - 1 slots are live.
    pub(crate) fn allocate(&mut self, kind: u16, pool_index: u32, capacity: u32) -> Option<(u32, u32)> {
        let idx = if self.free != NIL {
            let idx = self.free;
            self.free = self.slots[idx as usize].pool_index;
            idx
        } else {
            let idx = u32::try_from(self.slots.len()).ok().filter(|&i| i != NIL)?;
            self.slots.push(Slot {
                generation: 0,
                kind: 0,
                state: SlotState::Free,
                pool_index: NIL,
                queue: Queue::EMPTY,
                capacity: 0,
                trap_exits: false,
            });
            idx
        };
        let slot = &mut self.slots[idx as usize];
        debug_assert_eq!(slot.state, SlotState::Free);
        debug_assert!(slot.queue.is_empty());
        slot.kind = kind;
        slot.state = SlotState::Idle;
        slot.pool_index = pool_index;
        slot.capacity = capacity;
        slot.trap_exits = false;
        self.live += 1;
        Some((idx, slot.generation))
    }

    /// Returns a stopped agent's slot to the free list and bumps its generation.
    pub(crate) fn release(&mut self, idx: u32) {
        let slot = &mut self.slots[idx as usize];
        debug_assert!(slot.state != SlotState::Free);
        debug_assert!(slot.queue.is_empty(), "mailbox drained before release");
        slot.generation = slot.generation.wrapping_add(1) & crate::agent::GENERATION_MASK;
        slot.state = SlotState::Free;
        slot.pool_index = self.free;
        self.free = idx;
        self.live -= 1;
    }

    /// The slot at `idx`, if it exists.
    #[inline]
    pub(crate) fn get(&self, idx: u32) -> Option<&Slot> {
        self.slots.get(idx as usize)
    }

    /// The slot at `idx`, mutably, if it exists.
    #[inline]
    pub(crate) fn get_mut(&mut self, idx: u32) -> Option<&mut Slot> {
        self.slots.get_mut(idx as usize)
    }

    /// Whether `id` names a live agent (not free, not stopping, same generation).
    #[inline]
    pub(crate) fn is_live(&self, slot: u32, generation: u32) -> bool {
        self.get(slot)
            .is_some_and(|s| s.generation == generation && matches!(s.state, SlotState::Idle | SlotState::Scheduled))
    }

    /// Up to `n` live agents with the deepest mailboxes (length > 0), deepest first, ties by
    /// slot index; for `ShardStats::busiest`. Scans the whole table (O(slots), with an `n`-entry
    /// insertion list), so it is for stats requests, never the dispatch path.
    pub(crate) fn busiest(&self, shard: usize, n: usize) -> Vec<(AgentId, u64)> {
        let mut top: Vec<(AgentId, u64)> = Vec::with_capacity(n + 1);
        for (idx, slot) in self.slots.iter().enumerate() {
            let depth = u64::from(slot.queue.len());
            let live = matches!(slot.state, SlotState::Idle | SlotState::Scheduled);
            if !live || depth == 0 || (top.len() == n && top.last().is_some_and(|&(_, d)| d >= depth)) {
                continue;
            }
            let at = top.iter().position(|&(_, d)| d < depth).unwrap_or(top.len());
            top.insert(at, (AgentId::new(shard, idx as u32, slot.generation), depth));
            top.truncate(n);
        }
        top
    }

    /// Indices of every live slot (for shutdown).
    pub(crate) fn live_indices(&self) -> Vec<u32> {
        (0..self.slots.len() as u32).filter(|&i| self.slots[i as usize].state != SlotState::Free).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_reused_with_a_new_generation() {
        let mut slots = Slots::with_capacity(4);
        let (a, ga) = slots.allocate(1, 0, 8).unwrap();
        let (b, _) = slots.allocate(1, 1, 8).unwrap();
        assert_ne!(a, b);
        slots.release(a);
        let (c, gc) = slots.allocate(2, 5, 8).unwrap();
        assert_eq!(c, a);
        assert_eq!(gc, ga + 1);
        assert_eq!(slots.live(), 2);
        const { assert!(std::mem::size_of::<Slot>() <= 32) };
    }

    #[test]
    fn busiest_lists_the_deepest_live_mailboxes_first() {
        use crate::envelope::{Envelope, NO_SENDER};
        use crate::mailbox::MessageStore;
        use crate::payload::Payload;
        let mut slots = Slots::with_capacity(8);
        let mut store = MessageStore::with_capacity(64);
        // Depths 0, 3, 1, 5, 3, 2, 4 on slots 0..7; slot 6 is stopping and left out.
        for (i, depth) in [0u64, 3, 1, 5, 3, 2, 4].into_iter().enumerate() {
            let (idx, _) = slots.allocate(1, i as u32, 64).unwrap();
            let slot = slots.get_mut(idx).unwrap();
            for n in 0..depth {
                store.push(&mut slot.queue, Envelope::user(AgentId::new(2, idx, 0), NO_SENDER, Payload::new(n)));
            }
        }
        slots.get_mut(6).unwrap().state = SlotState::Stopping;
        let top: Vec<(u32, u64)> = slots.busiest(2, 3).iter().map(|&(id, d)| (id.slot(), d)).collect();
        assert_eq!(top, [(3, 5), (1, 3), (4, 3)], "deepest first, ties by slot");
        assert!(slots.busiest(2, 3).iter().all(|(id, _)| id.shard() == 2));
        assert_eq!(slots.busiest(2, 10).len(), 5, "empty mailboxes are left out");
    }
}
