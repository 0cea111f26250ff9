//! The timer wheel of the threads executor: sleeps and I/O timeouts of a shard's tasks.
//!
//! A hashed timing wheel: [`SLOTS`] slots of one [`TICK`] each; a timer due at tick `t` sits in
//! slot `t % SLOTS`, so inserting and cancelling cost O(1) whatever the number of timers, and a
//! timer further out than one turn simply stays in its slot until its tick comes round (each
//! entry keeps its own deadline). Deadlines are rounded *up* to the next tick, so a timer never
//! fires early; it fires at most one tick late plus however late the owner polls.
//!
//! Invariants: `entries[i]` is `Some` exactly while key `i` (with its generation) is live; a
//! live entry's index is in the slot of its tick; `live` counts the live entries; `cursor` is
//! the tick of the last expiry (ticks before it are fully expired), and every live entry is due
//! at `cursor` or later, so a deadline already passed fires at the next expiry.

use std::task::Waker;
use std::time::Duration;

/// The wheel's resolution.
pub const TICK: Duration = Duration::from_millis(1);
/// Slots in one turn of the wheel.
pub const SLOTS: usize = 1024;

/// A timer in a [`TimerWheel`], for [`TimerWheel::cancel`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerKey {
    index: u32,
    generation: u32,
}

struct Entry {
    tick: u64,
    generation: u32,
    waker: Waker,
}

/// A hashed timing wheel of wakers; see the module docs.
pub struct TimerWheel {
    slots: Vec<Vec<u32>>,
    entries: Vec<Option<Entry>>,
    generations: Vec<u32>,
    free: Vec<u32>,
    live: usize,
    cursor: u64,
}

impl Default for TimerWheel {
    fn default() -> Self {
        Self::new(0)
    }
}

impl TimerWheel {
    /// An empty wheel whose clock starts at `now_ns` (nanoseconds on the caller's clock).
    pub fn new(now_ns: u64) -> Self {
        Self {
            slots: (0..SLOTS).map(|_| Vec::new()).collect(),
            entries: Vec::new(),
            generations: Vec::new(),
            free: Vec::new(),
            live: 0,
            cursor: Self::tick_floor(now_ns),
        }
    }

    fn tick_floor(ns: u64) -> u64 {
        ns / TICK.as_nanos() as u64
    }

    fn tick_ceil(ns: u64) -> u64 {
        ns.div_ceil(TICK.as_nanos() as u64)
    }

    /// Timers waiting.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether no timer waits.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Wakes `waker` once `deadline_ns` has passed (a deadline already passed fires at the next
    /// [`expire`](Self::expire)).
    pub fn insert(&mut self, deadline_ns: u64, waker: Waker) -> TimerKey {
        let tick = Self::tick_ceil(deadline_ns).max(self.cursor);
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.entries.push(None);
                self.generations.push(0);
                (self.entries.len() - 1) as u32
            }
        };
        let generation = self.generations[index as usize];
        self.entries[index as usize] = Some(Entry { tick, generation, waker });
        self.slots[(tick % SLOTS as u64) as usize].push(index);
        self.live += 1;
        TimerKey { index, generation }
    }

    /// Replaces the waker of a live timer (a task polled again with a new waker).
    pub fn update_waker(&mut self, key: TimerKey, waker: &Waker) {
        if let Some(Some(e)) = self.entries.get_mut(key.index as usize) {
            if e.generation == key.generation && !e.waker.will_wake(waker) {
                e.waker = waker.clone();
            }
        }
    }

    /// Cancels a timer; returns whether it was still waiting.
    pub fn cancel(&mut self, key: TimerKey) -> bool {
        let Some(slot) = self.entries.get_mut(key.index as usize) else { return false };
        match slot {
            Some(e) if e.generation == key.generation => {
                let tick = e.tick;
                *slot = None;
                let list = &mut self.slots[(tick % SLOTS as u64) as usize];
                if let Some(pos) = list.iter().position(|&i| i == key.index) {
                    list.swap_remove(pos);
                }
                self.release(key.index);
                true
            }
            _ => false,
        }
    }

    fn release(&mut self, index: u32) {
        self.generations[index as usize] = self.generations[index as usize].wrapping_add(1);
        self.free.push(index);
        self.live -= 1;
    }

    /// The earliest deadline (nanoseconds, a tick boundary), if any timer waits. Scans at most
    /// one turn of the wheel, then the overflow of later turns.
    pub fn next_deadline_ns(&self) -> Option<u64> {
        if self.live == 0 {
            return None;
        }
        let tick_ns = TICK.as_nanos() as u64;
        for offset in 0..SLOTS as u64 {
            let tick = self.cursor + offset;
            let slot = &self.slots[(tick % SLOTS as u64) as usize];
            if slot.iter().any(|&i| self.entries[i as usize].as_ref().is_some_and(|e| e.tick == tick)) {
                return Some(tick * tick_ns);
            }
        }
        // Everything waits more than one turn ahead: find the nearest.
        self.entries.iter().flatten().map(|e| e.tick * tick_ns).min()
    }

    /// Wakes every timer due at or before `now_ns`; returns how many fired.
    pub fn expire(&mut self, now_ns: u64) -> usize {
        let now_tick = Self::tick_floor(now_ns);
        if self.live == 0 {
            self.cursor = self.cursor.max(now_tick);
            return 0;
        }
        let mut fired = 0;
        // Walk at most one turn: beyond that every slot has been visited once.
        let last = now_tick.min(self.cursor + SLOTS as u64 - 1);
        let mut tick = self.cursor;
        while tick <= last {
            let s = (tick % SLOTS as u64) as usize;
            let mut i = 0;
            while i < self.slots[s].len() {
                let index = self.slots[s][i];
                let due = self.entries[index as usize].as_ref().is_some_and(|e| e.tick <= now_tick);
                if due {
                    self.slots[s].swap_remove(i);
                    if let Some(e) = self.entries[index as usize].take() {
                        e.waker.wake();
                    }
                    self.release(index);
                    fired += 1;
                } else {
                    i += 1;
                }
            }
            tick += 1;
        }
        self.cursor = self.cursor.max(now_tick);
        fired
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counter() -> (Arc<Count>, Waker) {
        let c = Arc::new(Count(AtomicUsize::new(0)));
        let w = Waker::from(c.clone());
        (c, w)
    }

    const MS: u64 = 1_000_000;

    #[test]
    fn fires_at_its_tick_never_early() {
        let mut wheel = TimerWheel::new(0);
        let (c, w) = counter();
        wheel.insert(5 * MS + 1, w);
        assert_eq!(wheel.next_deadline_ns(), Some(6 * MS), "rounded up to the next tick");
        assert_eq!(wheel.expire(5 * MS + 999_999), 0);
        assert_eq!(c.0.load(Ordering::SeqCst), 0);
        assert_eq!(wheel.expire(6 * MS), 1);
        assert_eq!(c.0.load(Ordering::SeqCst), 1);
        assert!(wheel.is_empty());
        assert_eq!(wheel.next_deadline_ns(), None);
    }

    #[test]
    fn cancelled_timers_never_fire_and_keys_are_not_reused_stale() {
        let mut wheel = TimerWheel::new(0);
        let (c, w) = counter();
        let k = wheel.insert(3 * MS, w.clone());
        assert!(wheel.cancel(k));
        assert!(!wheel.cancel(k), "a second cancel finds nothing");
        let k2 = wheel.insert(3 * MS, w);
        assert_ne!(k, k2, "the slot's generation moved on");
        assert!(!wheel.cancel(k), "the stale key does not cancel the new timer");
        assert_eq!(wheel.expire(10 * MS), 1);
        assert_eq!(c.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn timers_beyond_one_turn_wait_for_their_own_deadline() {
        let mut wheel = TimerWheel::new(0);
        let (c, w) = counter();
        let far = (SLOTS as u64 + 7) * MS;
        wheel.insert(far, w);
        let (c2, w2) = counter();
        wheel.insert(7 * MS, w2);
        assert_eq!(wheel.next_deadline_ns(), Some(7 * MS));
        assert_eq!(wheel.expire(7 * MS), 1, "same slot, only the near one fires");
        assert_eq!((c.0.load(Ordering::SeqCst), c2.0.load(Ordering::SeqCst)), (0, 1));
        assert_eq!(wheel.next_deadline_ns(), Some(far));
        assert_eq!(wheel.expire(far), 1);
        assert_eq!(c.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_late_expire_fires_everything_due_even_after_several_turns() {
        let mut wheel = TimerWheel::new(0);
        let (c, w) = counter();
        for i in 0..3000u64 {
            wheel.insert(i * MS / 2, w.clone());
        }
        assert_eq!(wheel.len(), 3000);
        assert_eq!(wheel.expire(10 * SLOTS as u64 * MS), 3000);
        assert_eq!(c.0.load(Ordering::SeqCst), 3000);
        assert!(wheel.is_empty());
        // A deadline in the past fires at the next expire.
        wheel.insert(0, w);
        assert_eq!(wheel.expire(10 * SLOTS as u64 * MS), 1);
    }
}
