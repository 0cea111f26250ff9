//! The reading end: [`Consumer`].

use super::{Consumer, PopError};
use crate::loom::{AtomicUsize, Ordering};

impl<T> Consumer<T> {
    /// Takes the oldest published item, then releases its slot with one `Release` store.
    ///
    /// # Errors
    ///
    /// [`PopError::Empty`] when nothing is visible and the producer is alive;
    /// [`PopError::Closed`] when the producer was dropped and everything it published (including
    /// what it had staged) has been popped.
    #[inline]
    pub fn pop(&mut self) -> Result<T, PopError> {
        if self.head == self.cached_tail && self.reload_tail() == 0 {
            if !self.shared.producer_closed.load(Ordering::Acquire) {
                return Err(PopError::Empty);
            }
            // The producer published its last items before setting the flag, and our `Acquire`
            // on the flag makes that final `tail` visible: look once more.
            if self.reload_tail() == 0 {
                return Err(PopError::Closed);
            }
        }
        // SAFETY: `head < cached_tail`, a `tail` loaded with `Acquire`, so the slot is
        // initialised and published to us; `head` moves past it right below.
        let value = unsafe { self.shared.take(self.head) };
        self.head = self.head.wrapping_add(1);
        self.shared.head.store(self.head, Ordering::Release);
        Ok(value)
    }

    /// Hands up to `max` items to `f`, oldest first, then releases all their slots with one
    /// `Release` store of `head`. Returns how many items `f` received.
    ///
    /// Reloads the producer's `tail` (one `Acquire` load) only when the cached copy shows fewer
    /// than `max` items. Returns 0 both when empty and when closed; use [`pop`](Self::pop) or
    /// [`is_closed`](Self::is_closed) to tell them apart.
    ///
    /// If `f` panics, the items already handed over (including the one it panicked on) count as
    /// consumed: `head` is advanced past them during unwinding, nothing is dropped twice, and the
    /// remaining items stay in the ring.
    pub fn pop_batch(&mut self, max: usize, mut f: impl FnMut(T)) -> usize {
        let mut available = self.cached_tail.wrapping_sub(self.head);
        if available < max {
            available = self.reload_tail();
        }
        let count = available.min(max);
        if count == 0 {
            return 0;
        }
        let shared = &*self.shared;
        let start = self.head;
        let mut guard = HeadGuard { shared_head: &shared.head, head: &mut self.head, start, taken: 0 };
        while guard.taken < count {
            let index = guard.start.wrapping_add(guard.taken);
            // SAFETY: `index` is in `head .. head + count`, inside `head .. cached_tail`
            // (observed with `Acquire`), and each index is taken once; the guard moves `head`
            // past it even if `f` panics.
            let value = unsafe { shared.take(index) };
            guard.taken += 1;
            f(value);
        }
        count
    }

    /// How many items are visible now. Always reloads `tail` (one `Acquire` load).
    ///
    /// The producer may publish more at any moment, so this is a lower bound by the time it
    /// returns; the items counted stay until this consumer pops them.
    #[inline]
    pub fn peek_len(&mut self) -> usize {
        self.reload_tail()
    }

    /// Whether nothing is visible now. Reloads `tail` only when the cached copy says empty.
    #[inline]
    pub fn is_empty(&mut self) -> bool {
        self.head == self.cached_tail && self.reload_tail() == 0
    }

    /// The number of slots in the ring.
    #[inline]
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.shared.capacity()
    }

    /// Whether the producer was dropped. Items it published may still be waiting to be popped.
    #[inline]
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.shared.producer_closed.load(Ordering::Acquire)
    }

    /// Refreshes `cached_tail` and returns the number of visible items. The `Acquire` pairs
    /// with the producer's `Release` store of `tail`, so the slot writes before it are visible.
    #[inline]
    fn reload_tail(&mut self) -> usize {
        self.cached_tail = self.shared.tail.load(Ordering::Acquire);
        let len = self.cached_tail.wrapping_sub(self.head);
        debug_assert!(len <= self.shared.capacity(), "tail - head > capacity");
        len
    }
}

impl<T> Drop for Consumer<T> {
    fn drop(&mut self) {
        // `head` is already stored; remaining items are dropped by `Shared` once the producer is
        // gone too.
        self.shared.consumer_closed.store(true, Ordering::Release);
    }
}

/// Advances and stores `head` by the number of items taken, on return and on unwind alike.
/// Both rings' `pop_batch` use it.
pub(crate) struct HeadGuard<'a> {
    pub(crate) shared_head: &'a AtomicUsize,
    pub(crate) head: &'a mut usize,
    pub(crate) start: usize,
    pub(crate) taken: usize,
}

impl Drop for HeadGuard<'_> {
    fn drop(&mut self) {
        if self.taken != 0 {
            *self.head = self.start.wrapping_add(self.taken);
            self.shared_head.store(*self.head, Ordering::Release);
        }
    }
}
