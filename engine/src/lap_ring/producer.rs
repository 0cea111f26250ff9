//! The writing end of the lap ring: [`Producer`].

use super::{LapMarked, Producer, PushError, STAGE_MAX};
use crate::loom::Ordering;

impl<T: LapMarked> Producer<T> {
    /// Pushes `value` and publishes it at once, along with anything staged before.
    ///
    /// # Errors
    ///
    /// [`PushError::Full`] when every slot is taken (staged ones included), [`PushError::Closed`]
    /// when the consumer was dropped. Either way the value comes back and nothing is published.
    #[cfg(test)]
    pub(crate) fn push(&mut self, value: T) -> Result<(), PushError<T>> {
        self.stage(value)?;
        self.publish();
        Ok(())
    }

    /// Writes `value` into the next free slot without marking it full yet.
    ///
    /// Staged items become visible, in order, at the next [`publish`](Self::publish), when the
    /// producer is dropped, or when [`STAGE_MAX`] are waiting (the stage that finds the buffer of
    /// pending marks full publishes them first). Staged items occupy slots.
    ///
    /// # Errors
    ///
    /// As for [`push`](Self::push); on error the value comes back.
    #[inline]
    pub(crate) fn stage(&mut self, value: T) -> Result<(), PushError<T>> {
        if self.shared.consumer_closed.load(Ordering::Acquire) {
            return Err(PushError::Closed(value));
        }
        if !self.has_room() {
            return Err(PushError::Full(value));
        }
        // SAFETY: `has_room` showed the slot free (see `write`).
        unsafe { self.write(value) };
        Ok(())
    }

    /// Marks every staged item full, oldest first (one `Release` store per item, on the line
    /// the item is in), and returns how many items were staged since the last `publish`, those
    /// published early because [`STAGE_MAX`] were waiting included.
    ///
    /// The caller rings the consumer's doorbell when this is non-zero, after this call.
    #[inline]
    pub(crate) fn publish(&mut self) -> usize {
        self.mark_staged();
        std::mem::take(&mut self.unannounced)
    }

    /// How many items the next [`publish`](Self::publish) will report.
    #[inline]
    #[must_use]
    pub(crate) fn staged(&self) -> usize {
        self.unannounced
    }

    /// Stages items from `items` while there is room, then publishes. Returns how many it took.
    ///
    /// The iterator is advanced only once a free slot is in hand, so an item is never pulled out
    /// and then lost: whatever does not fit stays in the iterator. When the consumer is gone it
    /// takes nothing and returns 0 (check [`is_closed`](Self::is_closed) to tell that apart).
    /// Like [`publish`](Self::publish), it leaves the count of unannounced items to `publish`.
    pub(crate) fn push_batch<I: Iterator<Item = T>>(&mut self, items: &mut I) -> usize {
        if self.shared.consumer_closed.load(Ordering::Acquire) {
            return 0;
        }
        let mut pushed = 0;
        while self.has_room() {
            let Some(value) = items.next() else { break };
            // SAFETY: as in `stage`.
            unsafe { self.write(value) };
            pushed += 1;
        }
        self.mark_staged();
        pushed
    }

    /// Whether the consumer was dropped.
    #[inline]
    #[must_use]
    pub(crate) fn is_closed(&self) -> bool {
        self.shared.consumer_closed.load(Ordering::Acquire)
    }

    /// Keeps `value` in the producer's staging buffer until the next publish; its slot, the one
    /// of `tail + unmarked`, is already counted as taken.
    ///
    /// # Safety
    ///
    /// The slot must be free: `tail + unmarked < head + capacity` for a `head` loaded with
    /// `Acquire`.
    #[inline(always)]
    unsafe fn write(&mut self, value: T) {
        if self.unmarked == STAGE_MAX {
            self.mark_staged();
        }
        self.pending[self.unmarked].write(value);
        self.unmarked += 1;
        self.unannounced += 1;
    }

    /// Moves the staged items into their slots, oldest first: each slot's body, then its mark
    /// with the lap bit. Writing both together means the slot's line is taken from the
    /// consumer's cache once per message, however long the item waited in the buffer.
    #[inline(always)]
    fn mark_staged(&mut self) {
        let shared = &*self.shared;
        for staged in &mut self.pending[..self.unmarked] {
            // SAFETY: the first `unmarked` entries were written by `write` and are read once here,
            // as `unmarked` goes back to 0 below.
            let value = unsafe { staged.assume_init_read() };
            let slot = shared.slot(self.tail);
            // SAFETY: `write`'s caller showed this slot free (`tail + unmarked` was below
            // `head + capacity`); the consumer reads its body only after the mark below.
            let mark = unsafe { slot.write_body(value) };
            debug_assert!(!mark.is_null() && (mark as usize) & 1 == 0, "LapMarked contract broken");
            let lap_bit = shared.lap_bit(self.tail);
            // The address is even, so adding the bit sets it; the pointer keeps its provenance.
            slot.mark().store(mark.wrapping_byte_add(lap_bit), Ordering::Release);
            self.tail = self.tail.wrapping_add(1);
        }
        self.unmarked = 0;
    }

    /// Slots taken by published-and-unconsumed plus staged items, as of `cached_head`.
    #[inline(always)]
    fn used(&self) -> usize {
        let used = self.tail.wrapping_add(self.unmarked).wrapping_sub(self.cached_head);
        debug_assert!(used <= self.shared.capacity(), "tail + unmarked - head > capacity");
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
        // Publish what is staged (nothing is lost), record where the values end for `Shared`'s
        // `Drop`, then close; a consumer that sees the flag (with `Acquire`) sees every mark.
        self.mark_staged();
        self.shared.tail.store(self.tail, Ordering::Release);
        self.shared.producer_closed.store(true, Ordering::Release);
    }
}
