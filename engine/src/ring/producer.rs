//! The writing end: [`Producer`].

use super::{Producer, PushError};
use crate::loom::Ordering;

impl<T> Producer<T> {
    /// Pushes `value` and publishes it at once (one `Release` store).
    ///
    /// Anything staged before is published along with it, in order.
    ///
    /// # Errors
    ///
    /// [`PushError::Full`] when every slot is taken (staged ones included), [`PushError::Closed`]
    /// when the consumer was dropped. Either way the value comes back and nothing is published.
    #[inline]
    pub fn push(&mut self, value: T) -> Result<(), PushError<T>> {
        self.stage(value)?;
        self.publish();
        Ok(())
    }

    /// Writes `value` into the next free slot without making it visible to the consumer.
    ///
    /// Staged items become visible, in order, at the next [`publish`](Self::publish),
    /// [`push`](Self::push) or [`push_batch`](Self::push_batch), or when the producer is dropped.
    /// Staged items occupy slots, so they count against the capacity.
    ///
    /// # Errors
    ///
    /// As for [`push`](Self::push); on error the value comes back.
    #[inline]
    pub fn stage(&mut self, value: T) -> Result<(), PushError<T>> {
        if self.shared.consumer_closed.load(Ordering::Acquire) {
            return Err(PushError::Closed(value));
        }
        if !self.has_room() {
            return Err(PushError::Full(value));
        }
        let index = self.tail.wrapping_add(self.staged);
        // SAFETY: `has_room` showed `index < head + capacity` against a `head` loaded with
        // `Acquire`, and `index >= tail + staged`, so the slot is free and ours alone.
        unsafe { self.shared.write(index, value) };
        self.staged += 1;
        Ok(())
    }

    /// Makes every staged item visible to the consumer with one `Release` store of `tail`.
    ///
    /// Returns how many items it published (zero, and no store, when nothing was staged).
    #[inline]
    pub fn publish(&mut self) -> usize {
        let published = self.staged;
        if published != 0 {
            self.tail = self.tail.wrapping_add(published);
            self.staged = 0;
            self.shared.tail.store(self.tail, Ordering::Release);
        }
        published
    }

    /// How many items are staged and not yet published.
    #[inline]
    #[must_use]
    pub fn staged(&self) -> usize {
        self.staged
    }

    /// Pushes items from `items` while there is room, then publishes them (and anything staged
    /// before) with one `Release` store. Returns how many items it took from the iterator.
    ///
    /// The iterator is advanced only once a free slot is in hand, so an item is never pulled out
    /// and then lost: whatever does not fit stays in the iterator. It stops at the first `None`.
    /// When the consumer is gone it takes nothing and returns 0 (check
    /// [`is_closed`](Self::is_closed) to tell that apart from a full ring).
    pub fn push_batch<I: Iterator<Item = T>>(&mut self, items: &mut I) -> usize {
        if self.shared.consumer_closed.load(Ordering::Acquire) {
            return 0;
        }
        let capacity = self.shared.capacity();
        let mut free = capacity - self.used();
        let mut reloaded = false;
        let mut pushed = 0;
        loop {
            if free == 0 {
                if reloaded {
                    break;
                }
                reloaded = true;
                self.reload_head();
                free = capacity - self.used();
                if free == 0 {
                    break;
                }
            }
            let Some(value) = items.next() else { break };
            let index = self.tail.wrapping_add(self.staged);
            // SAFETY: `free > 0` was computed from a `head` loaded with `Acquire`, so
            // `index < head + capacity`; the slot is free and ours alone.
            unsafe { self.shared.write(index, value) };
            self.staged += 1;
            free -= 1;
            pushed += 1;
        }
        self.publish();
        pushed
    }

    /// How many more items fit, counting staged items as taken.
    ///
    /// Reloads the consumer's `head` only when the cached copy says the ring is full, so a
    /// non-zero answer may be an underestimate (the consumer may have popped since), but it is
    /// always safe: that many pushes will succeed unless the consumer is dropped. Zero is exact
    /// at the moment of the reload.
    #[inline]
    pub fn free_slots(&mut self) -> usize {
        let capacity = self.shared.capacity();
        let free = capacity - self.used();
        if free != 0 {
            return free;
        }
        self.reload_head();
        capacity - self.used()
    }

    /// The number of slots in the ring.
    #[inline]
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.shared.capacity()
    }

    /// Whether the consumer was dropped.
    #[inline]
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.shared.consumer_closed.load(Ordering::Acquire)
    }

    /// Slots taken by published-and-unconsumed plus staged items, as of `cached_head`.
    #[inline]
    fn used(&self) -> usize {
        let used = self.tail.wrapping_add(self.staged).wrapping_sub(self.cached_head);
        debug_assert!(used <= self.shared.capacity(), "tail + staged - head > capacity");
        used
    }

    /// Refreshes `cached_head`; the `Acquire` pairs with the consumer's `Release` store of `head`,
    /// so its moves out of the freed slots happen before we overwrite them.
    #[inline]
    fn reload_head(&mut self) {
        let head = self.shared.head.load(Ordering::Acquire);
        debug_assert!(
            head.wrapping_sub(self.cached_head) <= self.shared.capacity(),
            "head moved backwards or past tail"
        );
        self.cached_head = head;
    }

    /// Whether one more item fits, reloading `head` only when the cache says full.
    #[inline]
    fn has_room(&mut self) -> bool {
        if self.used() < self.shared.capacity() {
            return true;
        }
        self.reload_head();
        self.used() < self.shared.capacity()
    }
}

impl<T> Drop for Producer<T> {
    fn drop(&mut self) {
        // Publish staged items so nothing is lost, then close; the consumer that sees the flag
        // (with `Acquire`) is guaranteed to see this final `tail` too.
        self.publish();
        self.shared.producer_closed.store(true, Ordering::Release);
    }
}
