//! The reading end of the lap ring: [`Consumer`].

#[cfg(test)]
use super::PopError;
use super::{Consumer, LapMarked};
use crate::loom::Ordering;
use crate::ring::consumer::HeadGuard;

impl<T: LapMarked> Consumer<T> {
    /// Takes the oldest item, then releases its slot with one `Release` store of `head`.
    ///
    /// # Errors
    ///
    /// [`PopError::Empty`] when nothing is visible and the producer is alive;
    /// [`PopError::Closed`] when the producer was dropped and everything it pushed was popped.
    #[cfg(test)]
    pub(crate) fn pop(&mut self) -> Result<T, PopError> {
        let mark = match self.shared.ready(self.head, Ordering::Acquire) {
            Some(mark) => mark,
            None if !self.shared.producer_closed.load(Ordering::Acquire) => return Err(PopError::Empty),
            // The producer stored its last marks before the flag, and our `Acquire` on the flag
            // makes them visible: look once more.
            None => self.shared.ready(self.head, Ordering::Acquire).ok_or(PopError::Closed)?,
        };
        // SAFETY: the `Acquire` load showed this index's lap, and `head` moves past it below.
        let value = unsafe { self.shared.slot(self.head).read_body(mark) };
        self.head = self.head.wrapping_add(1);
        self.shared.head.store(self.head, Ordering::Release);
        Ok(value)
    }

    /// Hands up to `max` items to `f`, oldest first, then releases all their slots with one
    /// `Release` store of `head`. Returns how many items `f` received (0 when empty or closed).
    ///
    /// If `f` panics, the items already handed over (including the one it panicked on) count as
    /// consumed: `head` is advanced past them during unwinding, nothing is dropped twice, and the
    /// remaining items stay in the ring.
    #[inline]
    pub(crate) fn pop_batch(&mut self, max: usize, mut f: impl FnMut(T)) -> usize {
        let shared = &*self.shared;
        let start = self.head;
        let mut guard = HeadGuard { shared_head: &shared.head, head: &mut self.head, start, taken: 0 };
        while guard.taken < max {
            let index = guard.start.wrapping_add(guard.taken);
            let Some(mark) = shared.ready(index, Ordering::Acquire) else { break };
            // SAFETY: the `Acquire` load showed this index's lap; each index is taken once and
            // the guard moves `head` past it even if `f` panics.
            let value = unsafe { shared.slot(index).read_body(mark) };
            guard.taken += 1;
            f(value);
        }
        guard.taken
    }

    /// Whether nothing is visible now: one `Acquire` load of the next slot's mark.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.shared.ready(self.head, Ordering::Acquire).is_none()
    }

    /// Whether the producer was dropped. Items it pushed may still be waiting to be popped.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn is_closed(&self) -> bool {
        self.shared.producer_closed.load(Ordering::Acquire)
    }
}

impl<T: LapMarked> Drop for Consumer<T> {
    fn drop(&mut self) {
        // `head` is already stored; remaining items are dropped by `Shared` once the producer is
        // gone too.
        self.shared.consumer_closed.store(true, Ordering::Release);
    }
}
