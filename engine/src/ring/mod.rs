//! A lock-free, bounded, single-producer single-consumer (SPSC) ring.
//!
//! The shard mesh is built from these rings. Each ring has exactly one writer thread and one
//! reader thread, so it needs no read-modify-write atomics at all: one `Release` store publishes,
//! one `Acquire` load observes.
//!
//! # Origin of the algorithm
//!
//! The core is Lamport's wait-free single-producer/single-consumer circular buffer (L. Lamport,
//! "Specifying Concurrent Program Modules", ACM TOPLAS 1983): the producer owns `tail`, the
//! consumer owns `head`, and each only reads the other's index. On top of it sit two well-known
//! refinements from the cache-efficient queue literature (`FastForward`, Giacomoni et al.,
//! `PPoPP` 2008; `MCRingBuffer`, Lee et al., `IPDPS` 2010):
//!
//! * **Cached remote index.** Each end keeps a private copy of the other end's index and reloads
//!   it only when the copy says "full" (producer) or "empty" (consumer), so in the steady state an
//!   end does not touch the other end's cache line at all.
//! * **Batched publication.** [`Producer::stage`] writes slots without publishing; one
//!   [`Producer::publish`] (or [`Producer::push_batch`]) then makes all of them visible with a
//!   single `Release` store. [`Consumer::pop_batch`] likewise retires many slots with one store of
//!   `head`. A batch therefore costs one cache-line transfer per index instead of one per item.
//!
//! # Encoding
//!
//! `head` and `tail` are *free-running* `usize` counters: they only ever increase (with wrapping
//! arithmetic) and are never reduced modulo the capacity. The slot of index `i` is `i & mask`,
//! where `mask = capacity - 1` and the capacity is a power of two. Because the capacity divides
//! `2^usize::BITS`, the mapping stays consistent when the counters wrap past `usize::MAX`.
//!
//! * `tail.wrapping_sub(head)` is the number of published, not yet consumed items; it is always
//!   in `0..=capacity` (checked with `debug_assert!`). `head == tail` means empty and
//!   `tail - head == capacity` means full, so all `capacity` slots are usable (no wasted slot).
//! * Slots `head .. tail` hold initialised values owned by the consumer; every other slot is
//!   uninitialised and owned by the producer. The producer may additionally have *staged*
//!   values in `tail .. tail + staged`: initialised, but still owned by the producer and
//!   invisible to the consumer until `tail` is advanced past them.
//! * Capacities above `1 << 30` are refused ([`RingError::TooLarge`]): a ring that big is a bug
//!   in a mesh, and the bound keeps `tail - head` far from any overflow on every platform.
//!
//! # Who writes what
//!
//! | field (in `Shared`)   | written by                    | read by                          |
//! |-----------------------|-------------------------------|----------------------------------|
//! | `head`                | consumer (`Release`)          | producer, only when it sees full (`Acquire`) |
//! | `tail`                | producer (`Release`)          | consumer, only when it sees empty (`Acquire`) |
//! | `producer_closed`     | producer, once, in `Drop`     | consumer, when it sees empty (`Acquire`) |
//! | `consumer_closed`     | consumer, once, in `Drop`     | producer, on every push/stage/batch (`Acquire`) |
//! | `buffer[i & mask]`    | producer, for `i` in `tail .. head + capacity` | consumer moves out, for `i` in `head .. tail` |
//! | `mask`, buffer pointer| nobody after construction     | both                             |
//!
//! The `Release` store of `tail` orders the producer's slot writes before it, and the consumer's
//! `Acquire` load of `tail` makes them visible; symmetrically, the `Release` store of `head`
//! orders the consumer's moves out of slots before the producer may overwrite them.
//!
//! The private state lives in the handles, on each thread's own memory: [`Producer`] holds its
//! `tail`, the staged count and `cached_head`; [`Consumer`] holds its `head` and `cached_tail`.
//!
//! # Cache lines
//!
//! `head` and `tail` each sit in their own [`CachePadded`] block (128 bytes on `x86_64` and
//! `aarch64`). 128 rather than 64 because Intel's L2 *adjacent-line* (spatial) prefetcher pulls in
//! the 128-byte-aligned pair of every 64-byte line it fetches, so two hot indices on neighbouring
//! 64-byte lines would still bounce between the cores as if they shared one.
//!
//! * The `head` line is written by the consumer on every pop and read by the producer only when
//!   its cached copy says the ring is full: with a consumer that keeps up, the producer pulls it
//!   over about once per lap of the ring instead of once per item.
//! * The `tail` line is written by the producer on every publish and read by the consumer only
//!   when its cached copy says the ring is empty.
//! * The line holding the closed flags, `mask` and the buffer pointer is read-mostly: both cores
//!   keep it in the shared (MESI `S`) state, and it is written only once per end, in `Drop`, so
//!   the producer's per-push check of `consumer_closed` costs a local cache hit.
//! * The slots themselves necessarily travel from the producer's core to the consumer's. When the
//!   ring runs almost empty, the two ends may touch neighbouring slots on one line; batching
//!   (`stage`/`publish`, `pop_batch`) amortises that.
//!
//! # Closing and dropping
//!
//! Dropping the [`Producer`] first publishes anything staged (nothing is lost), then sets
//! `producer_closed`; the consumer reports [`PopError::Closed`] only once the ring is also empty.
//! Dropping the [`Consumer`] sets `consumer_closed`; later pushes fail with [`PushError::Closed`]
//! and hand the value back. Items still in the ring when both ends are gone are dropped exactly
//! once, by the shared state's `Drop`, which runs when the last `Arc` goes away.
//!
//! All atomics, the `Arc` and the `UnsafeCell` come from `crate::loom`, so
//! `RUSTFLAGS="--cfg loom" cargo test ring::loom_tests` model-checks this exact code.

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use std::mem::MaybeUninit;

use crossbeam_utils::CachePadded;

use crate::loom::{Arc, AtomicBool, AtomicUsize, Ordering, UnsafeCell};

pub(crate) mod consumer;
mod producer;

#[cfg(all(test, loom))]
mod loom_tests;
#[cfg(all(test, not(loom)))]
mod tests;

/// The largest capacity [`ring`] accepts: `1 << 30` slots.
pub const MAX_CAPACITY: usize = 1 << 30;

/// Creates a ring with room for `capacity` items and returns its two ends.
///
/// `capacity` must be a power of two, at least 2 and at most [`MAX_CAPACITY`]. All `capacity`
/// slots are usable. The buffer is allocated here, once; pushing and popping never allocate.
///
/// # Errors
///
/// [`RingError::TooSmall`] below 2, [`RingError::TooLarge`] above [`MAX_CAPACITY`],
/// [`RingError::NotPowerOfTwo`] otherwise when `capacity` is not a power of two.
pub fn ring<T>(capacity: usize) -> Result<(Producer<T>, Consumer<T>), RingError> {
    ring_starting_at(capacity, 0)
}

/// [`ring`] with both counters starting at `start`; tests use it to cross `usize::MAX`.
fn ring_starting_at<T>(capacity: usize, start: usize) -> Result<(Producer<T>, Consumer<T>), RingError> {
    check_capacity(capacity)?;
    let buffer = (0..capacity).map(|_| UnsafeCell::new(MaybeUninit::uninit())).collect();
    let shared = Arc::new(Shared {
        head: CachePadded::new(AtomicUsize::new(start)),
        tail: CachePadded::new(AtomicUsize::new(start)),
        producer_closed: AtomicBool::new(false),
        consumer_closed: AtomicBool::new(false),
        buffer,
        mask: capacity - 1,
    });
    let producer =
        Producer { shared: Arc::clone(&shared), tail: start, staged: 0, cached_head: start, _not_sync: PhantomData };
    let consumer = Consumer { shared, head: start, cached_tail: start, _not_sync: PhantomData };
    Ok((producer, consumer))
}

/// Checks a ring capacity: a power of two, at least 2 and at most [`MAX_CAPACITY`]. Both
/// this ring and the mesh's lap ring accept exactly these capacities.
pub(crate) fn check_capacity(capacity: usize) -> Result<(), RingError> {
    if capacity < 2 {
        return Err(RingError::TooSmall(capacity));
    }
    if capacity > MAX_CAPACITY {
        return Err(RingError::TooLarge(capacity));
    }
    if !capacity.is_power_of_two() {
        return Err(RingError::NotPowerOfTwo(capacity));
    }
    Ok(())
}

/// The state both ends share; see the module documentation for the encoding.
///
/// `repr(C)` pins the documented layout: `head` in the first padded block, `tail` in the second,
/// and the read-mostly fields after both, so none of them shares a 128-byte block with an index.
#[repr(C)]
struct Shared<T> {
    /// Index of the next slot the consumer will read. Written by the consumer only.
    head: CachePadded<AtomicUsize>,
    /// One past the last published slot. Written by the producer only.
    tail: CachePadded<AtomicUsize>,
    /// Set once, by the producer's `Drop`, after its final publish.
    producer_closed: AtomicBool,
    /// Set once, by the consumer's `Drop`.
    consumer_closed: AtomicBool,
    /// `capacity` slots; the slot of index `i` is `buffer[i & mask]`.
    buffer: Box<[UnsafeCell<MaybeUninit<T>>]>,
    /// `capacity - 1`.
    mask: usize,
}

impl<T> Shared<T> {
    #[inline]
    fn capacity(&self) -> usize {
        self.mask + 1
    }

    #[inline]
    fn slot(&self, index: usize) -> &UnsafeCell<MaybeUninit<T>> {
        debug_assert_eq!(self.buffer.len(), self.mask + 1);
        // SAFETY: `index & mask <= mask == buffer.len() - 1`, so the index is in bounds.
        unsafe { self.buffer.get_unchecked(index & self.mask) }
    }

    /// Moves `value` into the slot of `index`.
    ///
    /// # Safety
    ///
    /// Only the producer may call this, for an index in `tail + staged .. head + capacity` (the
    /// slot is then uninitialised and no other thread touches it).
    #[inline]
    unsafe fn write(&self, index: usize, value: T) {
        self.slot(index).with_mut(|p| {
            // SAFETY: the caller guarantees exclusive access to this uninitialised slot.
            unsafe { p.cast::<T>().write(value) }
        });
    }

    /// Moves the value out of the slot of `index`, leaving it logically uninitialised.
    ///
    /// # Safety
    ///
    /// Only the consumer may call this, for an index in `head .. tail` that it observed with
    /// an `Acquire` load of `tail`, and at most once per index (before `head` moves past it).
    #[inline]
    unsafe fn take(&self, index: usize) -> T {
        self.slot(index).with(|p| {
            // SAFETY: the caller guarantees the slot is initialised, published to this thread,
            // and read only once; the producer will not touch it before `head` moves past it.
            unsafe { p.cast::<T>().read() }
        })
    }
}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        // Both ends are gone. `Arc`'s drop ordering makes every store either end made visible
        // here, so `Relaxed` loads see the final values. The producer published its staged items
        // in its own `Drop`, so `head .. tail` is exactly the set of initialised slots.
        let head = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Relaxed);
        debug_assert!(tail.wrapping_sub(head) <= self.capacity());
        let mut index = head;
        while index != tail {
            self.slot(index).with_mut(|p| {
                // SAFETY: slots in `head .. tail` are initialised and nobody else can reach them.
                unsafe { p.cast::<T>().drop_in_place() }
            });
            index = index.wrapping_add(1);
        }
    }
}

/// The writing end of a ring. Created by [`ring`].
///
/// `Send` when `T: Send`; never `Sync` and never `Clone` — there is exactly one producer.
pub struct Producer<T> {
    shared: Arc<Shared<T>>,
    /// The published tail; always equal to `shared.tail`, which only this handle writes.
    tail: usize,
    /// Items written into `tail .. tail + staged` but not yet published.
    staged: usize,
    /// The last `head` this handle loaded; `head` never moves backwards, so this is a lower bound.
    cached_head: usize,
    /// Opts out of `Sync` (`Cell` is `Send + !Sync`); `Send` is implemented by hand below.
    _not_sync: PhantomData<Cell<()>>,
}

/// The reading end of a ring. Created by [`ring`].
///
/// `Send` when `T: Send`; never `Sync` and never `Clone` — there is exactly one consumer.
pub struct Consumer<T> {
    shared: Arc<Shared<T>>,
    /// The consumer's head; always equal to `shared.head`, which only this handle writes.
    head: usize,
    /// The last `tail` this handle loaded; `tail` never moves backwards, so this is a lower bound.
    cached_tail: usize,
    /// Opts out of `Sync` (`Cell` is `Send + !Sync`); `Send` is implemented by hand below.
    _not_sync: PhantomData<Cell<()>>,
}

// SAFETY: the producer only moves `T` values into slots the consumer later moves out on another
// thread, so moving the handle (and thus the values) across threads requires only `T: Send`.
unsafe impl<T: Send> Send for Producer<T> {}

// SAFETY: the consumer only moves `T` values out of slots the producer filled on another thread,
// so moving the handle (and thus the values) across threads requires only `T: Send`.
unsafe impl<T: Send> Send for Consumer<T> {}

impl<T> fmt::Debug for Producer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("capacity", &self.capacity())
            .field("tail", &self.tail)
            .field("staged", &self.staged)
            .field("cached_head", &self.cached_head)
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("capacity", &self.capacity())
            .field("head", &self.head)
            .field("cached_tail", &self.cached_tail)
            .finish_non_exhaustive()
    }
}

/// Why [`ring`] refused a capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingError {
    /// The capacity is not a power of two.
    NotPowerOfTwo(usize),
    /// The capacity is below 2.
    TooSmall(usize),
    /// The capacity is above [`MAX_CAPACITY`] (`1 << 30`).
    TooLarge(usize),
}

impl fmt::Display for RingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotPowerOfTwo(c) => write!(f, "ring capacity {c} is not a power of two"),
            Self::TooSmall(c) => write!(f, "ring capacity {c} is below the minimum of 2"),
            Self::TooLarge(c) => {
                write!(f, "ring capacity {c} is above the maximum of {MAX_CAPACITY}")
            }
        }
    }
}

impl std::error::Error for RingError {}

/// Why [`Producer::push`] or [`Producer::stage`] failed; the value comes back either way.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PushError<T> {
    /// Every slot is taken; retry after the consumer makes room.
    Full(T),
    /// The consumer was dropped; nothing pushed now will ever be read.
    Closed(T),
}

impl<T> PushError<T> {
    /// Returns the value that could not be pushed.
    #[must_use]
    pub fn into_inner(self) -> T {
        match self {
            Self::Full(v) | Self::Closed(v) => v,
        }
    }
}

impl<T> fmt::Debug for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(_) => f.write_str("Full(..)"),
            Self::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<T> fmt::Display for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(_) => f.write_str("ring is full"),
            Self::Closed(_) => f.write_str("ring consumer was dropped"),
        }
    }
}

impl<T> std::error::Error for PushError<T> {}

/// Why [`Consumer::pop`] returned nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PopError {
    /// No item is visible now; the producer is still alive.
    Empty,
    /// The producer was dropped and every item it published has been popped.
    Closed,
}

impl fmt::Display for PopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("ring is empty"),
            Self::Closed => f.write_str("ring producer was dropped and the ring is drained"),
        }
    }
}

impl std::error::Error for PopError {}
