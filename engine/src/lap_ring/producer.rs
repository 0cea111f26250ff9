//! The writing end of the lap ring: [`Producer`].

use super::{LapMarked, Producer, PushError};
use crate::loom::Ordering;

impl<T: LapMarked> Producer<T> {
    /// Pushes `value`; the consumer can see it at once.
    ///
    /// The push counts towards the next [`announce`](Self::announce).
    ///
    /// # Errors
    ///
    /// [`PushError::Full`] when every slot is taken, [`PushError::Closed`] when the consumer was
    /// dropped. Either way the value comes back and nothing is written.
    #[inline]
    pub(crate) fn push(&mut self, value: T) -> Result<(), PushError<T>> {
        if self.shared.consumer_closed.load(Ordering::Acquire) {
            return Err(PushError::Closed(value));
        }
        if !self.has_room() {
            return Err(PushError::Full(value));
        }
        // SAFETY: `has_room` showed `tail < head + capacity` against a `head` loaded with
        // `Acquire`, so the consumer has moved the slot's previous value out (or it never held
        // one) and will not read it before the mark below.
        unsafe { self.write(value) };
        Ok(())
    }

    /// Pushes items from `items` while there is room. Returns how many it took.
    ///
    /// The iterator is advanced only once a free slot is in hand, so an item is never pulled out
    /// and then lost: whatever does not fit stays in the iterator. When the consumer is gone it
    /// takes nothing and returns 0 (check [`is_closed`](Self::is_closed) to tell that apart).
    pub(crate) fn push_batch<I: Iterator<Item = T>>(&mut self, items: &mut I) -> usize {
        if self.shared.consumer_closed.load(Ordering::Acquire) {
            return 0;
        }
        let mut pushed = 0;
        while self.has_room() {
            let Some(value) = items.next() else { break };
            // SAFETY: as in `push`.
            unsafe { self.write(value) };
            pushed += 1;
        }
        pushed
    }

    /// Returns how many items were pushed since the last call, and starts counting again.
    ///
    /// The caller rings the consumer's doorbell when this is non-zero: every push it counts is
    /// already visible, so a ring after it cannot overtake them.
    #[inline]
    pub(crate) fn announce(&mut self) -> usize {
        std::mem::take(&mut self.unannounced)
    }

    /// How many pushes the next [`announce`](Self::announce) will report.
    #[inline]
    #[must_use]
    pub(crate) fn unannounced(&self) -> usize {
        self.unannounced
    }

    /// Whether the consumer was dropped.
    #[inline]
    #[must_use]
    pub(crate) fn is_closed(&self) -> bool {
        self.shared.consumer_closed.load(Ordering::Acquire)
    }

    /// Writes `value` into the slot of `tail` and marks it full for `tail`'s lap.
    ///
    /// # Safety
    ///
    /// The slot of `tail` must be free: `tail < head + capacity` for a `head` loaded with
    /// `Acquire`.
    #[inline(always)]
    unsafe fn write(&mut self, value: T) {
        let shared = &*self.shared;
        let slot = shared.slot(self.tail);
        // SAFETY: the caller guarantees the slot is free; the consumer reads its body only after
        // the `Release` store of the mark below.
        let mark = unsafe { slot.write_body(value) };
        debug_assert!(!mark.is_null() && (mark as usize) & 1 == 0, "LapMarked contract broken");
        let lap_bit = shared.lap_bit(self.tail);
        // The address is even, so adding the bit sets it; the pointer keeps its provenance.
        slot.mark().store(mark.wrapping_byte_add(lap_bit), Ordering::Release);
        self.tail = self.tail.wrapping_add(1);
        self.unannounced += 1;
    }

    /// Slots taken as of `cached_head`.
    #[inline(always)]
    fn used(&self) -> usize {
        let used = self.tail.wrapping_sub(self.cached_head);
        debug_assert!(used <= self.shared.capacity(), "tail - head > capacity");
        used
    }

    /// Refreshes `cached_head`; the `Acquire` pairs with the consumer's `Release` store of
    /// `head`, so its moves out of the freed slots happen before we overwrite them.
    #[inline]
    fn reload_head(&mut self) {
        let head = self.shared.head.load(Ordering::Acquire);
        debug_assert!(head.wrapping_sub(self.cached_head) <= self.shared.capacity(), "head moved backwards");
        self.cached_head = head;
    }

    /// Whether one more item fits, reloading `head` only when the cache says full.
    #[inline(always)]
    fn has_room(&mut self) -> bool {
        if self.used() < self.shared.capacity() {
            return true;
        }
        self.reload_head();
        self.used() < self.shared.capacity()
    }
}

impl<T: LapMarked> Drop for Producer<T> {
    fn drop(&mut self) {
        // Record where the values end, for `Shared`'s `Drop`, then close; a consumer that sees
        // the flag (with `Acquire`) sees every mark stored before it.
        self.shared.tail.store(self.tail, Ordering::Release);
        self.shared.producer_closed.store(true, Ordering::Release);
    }
}
