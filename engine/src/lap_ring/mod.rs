//! The lap ring: the bounded single-producer single-consumer ring between two shards, whose
//! consumer learns of a message from the slot it is about to read.
//!
//! # Why a second ring
//!
//! [`crate::ring`] is Lamport's ring: the consumer learns of new items by loading the producer's
//! `tail`, a cache line of its own. When the ring runs nearly empty (one request and one reply,
//! a shard waiting for the next message) that costs a second line transfer per message on top
//! of the slot. Here, as in `FastForward` (Giacomoni et al., `PPoPP` 2008) and Vyukov's bounded
//! queue, the slot itself says whether it is full, so a message moves as one line: the 64-byte
//! envelope, with its mark inside it.
//!
//! # Encoding
//!
//! The value type promises ([`LapMarked`]) one pointer-sized word that is never null and never
//! odd (an envelope's payload vtable reference). The producer writes every other byte of the
//! value into the slot, then stores that word with `Release`, with the **lap bit** `(index >>
//! log2(capacity)) & 1` in its lowest bit. The consumer at index `head` loads the slot's word
//! with `Acquire` and takes the value only when the word is non-null and its low bit is `head`'s
//! lap bit. The consumer never writes a slot; it releases slots by storing its `head` (one
//! `Release` store per batch), which the producer reads only when its cached copy says full.
//!
//! Why one bit is enough: when the consumer looks at index `h`, the slot holds the value of
//! index `h - capacity` (consumed already, so the producer has moved on past it), of index `h`
//! (ready), or nothing ever (null). The producer cannot have written `h + capacity` because that
//! needs `head > h`. Those laps differ by one, so their bits differ; a fresh slot is null, which
//! no lap accepts. `head` and the producer's tail are free-running counters with wrapping
//! arithmetic, and the capacity is a power of two dividing `2^usize::BITS`, so the lap bit keeps
//! alternating across the wrap.
//!
//! # Who writes what
//!
//! | memory                 | written by                        | read by                        |
//! |------------------------|-----------------------------------|--------------------------------|
//! | slot body and mark     | producer                          | consumer                       |
//! | `head` (own 128 B)     | consumer, `Release`, once a batch | producer, when it looks full   |
//! | `tail` (cold)          | producer, once, in `Drop`         | `Shared`'s `Drop`              |
//! | closed flags           | each end once, in `Drop`          | the other end                  |
//!
//! In the steady state the producer never writes a line the consumer writes.
//!
//! # Staging
//!
//! As with [`crate::ring`], a producer may *stage* items and make them visible together with
//! [`Producer::publish`]. Staged items wait in a small buffer in the producer ([`STAGE_MAX`] of
//! them; a stage that finds it full publishes first); `publish` then moves each into its slot
//! and stores its mark at once, so the slot's line leaves the consumer's cache once per message
//! even while the consumer polls it, and a consumer finds a whole batch ready instead of
//! chasing the producer slot by slot. `publish` returns how many items were staged since the
//! previous `publish`, so the caller knows when to ring the consumer's doorbell.
//!
//! # Closing and dropping
//!
//! As for [`crate::ring`]: the consumer reports [`PopError::Closed`] once the producer is gone
//! and the ring is drained; pushes after the consumer is gone fail with [`PushError::Closed`];
//! items left when both ends are gone are dropped exactly once, by `Shared`'s `Drop`.
//!
//! All atomics, the `Arc` and the `UnsafeCell` come from `crate::loom`, so
//! `RUSTFLAGS="--cfg loom" cargo test lap_ring::loom_tests` model-checks this exact code.

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use std::mem::MaybeUninit;

use crossbeam_utils::CachePadded;

pub(crate) use self::slot::LapMarked;
use self::slot::Slot;
use crate::loom::{Arc, AtomicBool, AtomicUsize, Ordering};
#[cfg(test)]
pub(crate) use crate::ring::PopError;
#[cfg(all(test, not(loom)))]
pub(crate) use crate::ring::MAX_CAPACITY;
pub(crate) use crate::ring::{PushError, RingError};

mod consumer;
mod producer;
mod slot;

#[cfg(all(test, loom))]
mod loom_tests;
#[cfg(test)]
// SAFETY: (test-only) a `Box<u32>` is one non-null pointer to a 4-aligned `u32`, so its address
// is even, and it is the whole value.
unsafe impl LapMarked for Box<u32> {
    const MARK_OFFSET: usize = 0;
}
#[cfg(all(test, not(loom)))]
mod tests;

/// The most items a producer keeps staged: the next stage publishes them first.
pub(crate) const STAGE_MAX: usize = 64;

/// Creates a lap ring with room for `capacity` items and returns its two ends.
///
/// `capacity` must be a power of two, at least 2 and at most [`MAX_CAPACITY`]. All slots are
/// usable. The slots are allocated here, once; pushing and popping never allocate.
///
/// # Errors
///
/// As for [`crate::ring::ring`].
pub(crate) fn lap_ring<T: LapMarked>(capacity: usize) -> Result<(Producer<T>, Consumer<T>), RingError> {
    lap_ring_starting_at(capacity, 0)
}

/// [`lap_ring`] with both counters starting at `start`; tests use it to cross `usize::MAX`.
fn lap_ring_starting_at<T: LapMarked>(capacity: usize, start: usize) -> Result<(Producer<T>, Consumer<T>), RingError> {
    crate::ring::check_capacity(capacity)?;
    let shared = Arc::new(Shared {
        head: CachePadded::new(AtomicUsize::new(start)),
        tail: AtomicUsize::new(start),
        producer_closed: AtomicBool::new(false),
        consumer_closed: AtomicBool::new(false),
        slots: (0..capacity).map(|_| Slot::new()).collect(),
        mask: capacity - 1,
        lap_shift: capacity.trailing_zeros(),
    });
    let producer = Producer {
        shared: Arc::clone(&shared),
        tail: start,
        unmarked: 0,
        pending: (0..STAGE_MAX).map(|_| MaybeUninit::uninit()).collect(),
        cached_head: start,
        unannounced: 0,
        _not_sync: PhantomData,
    };
    let consumer = Consumer { shared, head: start, _not_sync: PhantomData };
    Ok((producer, consumer))
}

/// The state both ends share; see the module documentation.
#[repr(C)]
struct Shared<T: LapMarked> {
    /// Index of the next slot the consumer will read, as of its last release. Consumer-written.
    head: CachePadded<AtomicUsize>,
    /// The producer's final tail, stored by its `Drop`; only `Shared`'s `Drop` reads it.
    tail: AtomicUsize,
    /// Set once, by the producer's `Drop`.
    producer_closed: AtomicBool,
    /// Set once, by the consumer's `Drop`.
    consumer_closed: AtomicBool,
    /// `capacity` slots; index `i` lives in `slots[i & mask]`.
    slots: Box<[Slot<T>]>,
    /// `capacity - 1`.
    mask: usize,
    /// `log2(capacity)`: the lap of index `i` is `i >> lap_shift`.
    lap_shift: u32,
}

impl<T: LapMarked> Shared<T> {
    #[inline]
    fn capacity(&self) -> usize {
        self.mask + 1
    }

    #[inline(always)]
    fn slot(&self, index: usize) -> &Slot<T> {
        debug_assert_eq!(self.slots.len(), self.mask + 1);
        // SAFETY: `index & mask <= mask == slots.len() - 1`, so the index is in bounds.
        unsafe { self.slots.get_unchecked(index & self.mask) }
    }

    /// The lap bit of `index`: what its slot's mark carries in its lowest bit once it is full.
    #[inline(always)]
    fn lap_bit(&self, index: usize) -> usize {
        (index >> self.lap_shift) & 1
    }

    /// The mark (lap bit cleared) when the slot of `index` holds that index's value.
    #[inline(always)]
    fn ready(&self, index: usize, order: Ordering) -> Option<*mut ()> {
        let mark = self.slot(index).mark().load(order);
        let bit = (mark as usize) & 1;
        if mark.is_null() || bit != self.lap_bit(index) {
            return None;
        }
        // Clearing the bit by pointer arithmetic keeps the pointer's provenance.
        Some(mark.wrapping_byte_sub(bit))
    }
}

impl<T: LapMarked> Drop for Shared<T> {
    fn drop(&mut self) {
        // Both ends are gone, and `Arc`'s drop ordering makes their stores visible here. The
        // values in `head .. tail` are the ones pushed and never popped.
        let head = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Relaxed);
        debug_assert!(tail.wrapping_sub(head) <= self.capacity());
        let mut index = head;
        while index != tail {
            let mark = self.ready(index, Ordering::Relaxed);
            debug_assert!(mark.is_some(), "a pushed slot lost its mark");
            if let Some(mark) = mark {
                // SAFETY: the slot holds the value of `index`, never moved out; nobody else can
                // reach it now.
                drop(unsafe { self.slot(index).read_body(mark) });
            }
            index = index.wrapping_add(1);
        }
    }
}

/// The writing end of a lap ring. Created by [`lap_ring`].
///
/// `Send` when `T: Send`; never `Sync` and never `Clone`: there is exactly one producer.
pub(crate) struct Producer<T: LapMarked> {
    shared: Arc<Shared<T>>,
    /// The next index to publish; the slots of `tail .. tail + unmarked` are reserved for the
    /// staged items.
    tail: usize,
    /// Items staged and not yet moved into their slots.
    unmarked: usize,
    /// The staged items, oldest first (`STAGE_MAX` entries, the first `unmarked` initialised).
    pending: Box<[MaybeUninit<T>]>,
    /// The last `head` this end loaded; `head` never moves backwards, so this is a lower bound.
    cached_head: usize,
    /// Items staged since the last [`publish`](Producer::publish), published early or not.
    unannounced: usize,
    /// Opts out of `Sync`; `Send` is implemented by hand below.
    _not_sync: PhantomData<Cell<()>>,
}

/// The reading end of a lap ring. Created by [`lap_ring`].
///
/// `Send` when `T: Send`; never `Sync` and never `Clone`: there is exactly one consumer.
pub(crate) struct Consumer<T: LapMarked> {
    shared: Arc<Shared<T>>,
    /// The next index to read; `shared.head` holds it as of the last release.
    head: usize,
    /// Opts out of `Sync`; `Send` is implemented by hand below.
    _not_sync: PhantomData<Cell<()>>,
}

// SAFETY: the producer only moves `T` values into slots the consumer later moves out on another
// thread, so moving the handle (and thus the values) across threads requires only `T: Send`.
unsafe impl<T: LapMarked + Send> Send for Producer<T> {}

// SAFETY: the consumer only moves `T` values out of slots the producer filled on another thread,
// so moving the handle (and thus the values) across threads requires only `T: Send`.
unsafe impl<T: LapMarked + Send> Send for Consumer<T> {}

impl<T: LapMarked> fmt::Debug for Producer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("capacity", &self.shared.capacity())
            .field("tail", &self.tail)
            .field("unmarked", &self.unmarked)
            .field("cached_head", &self.cached_head)
            .field("unannounced", &self.unannounced)
            .finish_non_exhaustive()
    }
}

impl<T: LapMarked> fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("capacity", &self.shared.capacity())
            .field("head", &self.head)
            .finish_non_exhaustive()
    }
}
