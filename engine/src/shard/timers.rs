//! Timers: messages a shard sends later (`Ctx::send_after`), kept in a deadline heap.
//!
//! A timer is an envelope parked in a pooled entry with a due time on the engine clock. Every
//! dispatcher pass sends the envelopes that are due; a parked shard sleeps no longer than its
//! next due time. A timer's message counts as sent when it fires (so a pending timer is not in
//! flight for the accounting); at halt, pending timers become `shutdown` dead letters.
//!
//! Invariants: an entry holds an envelope exactly while it is armed; its generation changes
//! when it is fired or cancelled, so a stale [`TimerId`](crate::agent::TimerId) cancels
//! nothing; heap entries of cancelled timers are skipped when popped and compacted once they
//! outnumber the armed ones. Only the owning shard's thread touches the timers.

use crate::envelope::Envelope;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

const NIL: u32 = u32::MAX;

struct Entry {
    generation: u32,
    env: Option<Envelope>,
    next_free: u32,
}

/// The shard's armed timers; see the module documentation.
#[derive(Default)]
pub(crate) struct Timers {
    entries: Vec<Entry>,
    free: Option<u32>,
    armed: usize,
    heap: BinaryHeap<Reverse<(u64, u32, u32)>>,
}

impl Timers {
    /// Timers armed and not yet fired or cancelled.
    pub(crate) fn armed(&self) -> usize {
        self.armed
    }

    /// Arms `env` to be sent at `due_ns`; returns the timer's id bits (slot | generation << 32).
    pub(crate) fn arm(&mut self, due_ns: u64, env: Envelope) -> u64 {
        let idx = match self.free.take() {
            Some(idx) => {
                let next = self.entries[idx as usize].next_free;
                self.free = (next != NIL).then_some(next);
                idx
            }
            None => {
                self.entries.push(Entry { generation: 0, env: None, next_free: NIL });
                (self.entries.len() - 1) as u32
            }
        };
        let entry = &mut self.entries[idx as usize];
        debug_assert!(entry.env.is_none());
        entry.env = Some(env);
        let generation = entry.generation;
        self.armed += 1;
        if self.heap.len() >= 2 * self.armed + 64 {
            let entries = &self.entries;
            self.heap.retain(|Reverse((_, i, g))| {
                let e = &entries[*i as usize];
                e.env.is_some() && e.generation == *g
            });
        }
        self.heap.push(Reverse((due_ns, idx, generation)));
        u64::from(idx) | (u64::from(generation) << 32)
    }

    /// Disarms the timer `id`; returns its envelope when it was still armed.
    pub(crate) fn cancel(&mut self, id: u64) -> Option<Envelope> {
        let (idx, generation) = (id as u32, (id >> 32) as u32);
        let entry = self.entries.get(idx as usize)?;
        if entry.generation != generation || entry.env.is_none() {
            return None;
        }
        self.take(idx)
    }

    fn take(&mut self, idx: u32) -> Option<Envelope> {
        let entry = &mut self.entries[idx as usize];
        let env = entry.env.take()?;
        entry.generation = entry.generation.wrapping_add(1);
        entry.next_free = self.free.unwrap_or(NIL);
        self.free = Some(idx);
        self.armed -= 1;
        Some(env)
    }

    /// The earliest due time in the heap (possibly of a cancelled timer: a wake-up hint).
    pub(crate) fn next_due(&self) -> Option<u64> {
        self.heap.peek().map(|Reverse((due, _, _))| *due)
    }

    /// Takes the next envelope due at or before `now_ns`.
    pub(crate) fn pop_due(&mut self, now_ns: u64) -> Option<Envelope> {
        while let Some(&Reverse((due, idx, generation))) = self.heap.peek() {
            if due > now_ns {
                return None;
            }
            self.heap.pop();
            if self.entries[idx as usize].generation == generation {
                if let Some(env) = self.take(idx) {
                    return Some(env);
                }
            }
        }
        None
    }

    /// Takes every armed envelope (at halt).
    pub(crate) fn drain(&mut self) -> Vec<Envelope> {
        let mut out = Vec::with_capacity(self.armed);
        for idx in 0..self.entries.len() as u32 {
            if let Some(env) = self.take(idx) {
                out.push(env);
            }
        }
        self.heap.clear();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::AgentId;
    use crate::envelope::NO_SENDER;
    use crate::payload::Payload;

    fn env(n: u64) -> Envelope {
        Envelope::user(AgentId::new(0, 1, 0), NO_SENDER, Payload::new(n))
    }

    #[test]
    fn timers_fire_in_due_order_and_cancel_by_generation() {
        let mut t = Timers::default();
        let a = t.arm(30, env(3));
        t.arm(10, env(1));
        let c = t.arm(20, env(2));
        assert_eq!(t.armed(), 3);
        assert!(t.cancel(c).is_some());
        assert!(t.cancel(c).is_none(), "cancelled twice");
        assert_eq!(t.next_due(), Some(10));
        assert!(t.pop_due(9).is_none());
        assert_eq!(t.pop_due(25).unwrap().payload.take::<u64>().unwrap(), 1);
        assert!(t.pop_due(25).is_none(), "the cancelled timer does not fire");
        let d = t.arm(5, env(4));
        assert_ne!(d, c, "a reused entry has a new generation");
        assert!(t.cancel(c).is_none(), "a stale id cancels nothing");
        assert_eq!(t.pop_due(100).unwrap().payload.take::<u64>().unwrap(), 4);
        assert_eq!(t.pop_due(100).unwrap().payload.take::<u64>().unwrap(), 3);
        assert!(t.cancel(a).is_none(), "fired timers cannot be cancelled");
        assert_eq!(t.armed(), 0);
        t.arm(1, env(5));
        assert_eq!(t.drain().len(), 1);
        assert_eq!(t.armed(), 0);
    }
}
