//! One slot of a lap ring, and [`LapMarked`], the promise that lets a value carry its own
//! "full" mark.
//!
//! A slot holds one value. One pointer-sized word of that value (at [`LapMarked::MARK_OFFSET`])
//! is never written as plain memory: the producer moves every other byte in, then stores that
//! word through an atomic with the lap's parity in its low bit, and the consumer moves the other
//! bytes out only after an `Acquire` load of the word shows the parity of its own lap. The word
//! therefore doubles as the slot's sequence number, and a message costs one cache line.
//!
//! Invariants:
//! - the mark word is only ever accessed atomically, the rest of the slot only as plain memory;
//! - a fresh slot's mark is null, which no lap accepts (see `lap_ring`'s module docs);
//! - a slot's value is moved out at most once per lap; the slot keeps the stale bytes and the
//!   stale mark (whose parity is wrong for the next lap) until the producer overwrites them.
//!
//! Storage differs between builds, the protocol does not: the shipping build overlays the mark
//! on the value's own bytes (one 64-byte line for an envelope); under `--cfg loom` the mark is
//! a separate loom atomic beside a loom `UnsafeCell`, so loom can track both. The ring code calls
//! the same three methods either way.

use std::mem::{size_of, ManuallyDrop, MaybeUninit};
use std::ptr;

use crate::loom::{AtomicPtr, UnsafeCell};

/// A value whose bytes hold a pointer that is never null and never odd.
///
/// # Safety
///
/// In every valid value of `Self`, the `size_of::<*mut ()>()` bytes at `MARK_OFFSET` hold a
/// non-null pointer (or reference) whose address is even; `MARK_OFFSET` is a multiple of
/// `align_of::<*mut ()>()` and `MARK_OFFSET + size_of::<*mut ()>() <= size_of::<Self>()`.
pub(crate) unsafe trait LapMarked: Sized {
    /// Byte offset of the pointer the ring uses as the slot's mark.
    const MARK_OFFSET: usize;
}

/// Bytes in the mark word.
const WORD: usize = size_of::<*mut ()>();

/// One ring slot; see the module documentation.
#[cfg(not(loom))]
#[repr(transparent)]
pub(super) struct Slot<T>(UnsafeCell<MaybeUninit<T>>);

/// One ring slot; see the module documentation.
#[cfg(loom)]
pub(super) struct Slot<T> {
    body: UnsafeCell<MaybeUninit<T>>,
    mark: AtomicPtr<()>,
}

impl<T: LapMarked> Slot<T> {
    /// A slot whose mark is null.
    #[cfg(not(loom))]
    pub(super) fn new() -> Self {
        const { assert!(T::MARK_OFFSET % WORD == 0 && T::MARK_OFFSET + WORD <= size_of::<T>()) };
        // All-zero bytes: the mark word reads as a null pointer, the rest is never read before
        // the producer writes it.
        Self(UnsafeCell::new(MaybeUninit::zeroed()))
    }

    /// A slot whose mark is null.
    #[cfg(loom)]
    pub(super) fn new() -> Self {
        Self { body: UnsafeCell::new(MaybeUninit::uninit()), mark: AtomicPtr::new(ptr::null_mut()) }
    }

    /// The slot's mark word.
    #[cfg(not(loom))]
    #[inline(always)]
    pub(super) fn mark(&self) -> &AtomicPtr<()> {
        self.0.with(|p| {
            // SAFETY: `MARK_OFFSET + WORD <= size_of::<T>()` and the offset is word-aligned
            // (the trait's contract, checked in `new`), and the slot is aligned like `T`, so the
            // word is in bounds and aligned for an `AtomicPtr`. It was initialised (to null) in
            // `new`, lives inside an `UnsafeCell`, and is only ever accessed through this atomic.
            unsafe { &*p.cast::<u8>().add(T::MARK_OFFSET).cast::<AtomicPtr<()>>() }
        })
    }

    /// The slot's mark word.
    #[cfg(loom)]
    #[inline(always)]
    pub(super) fn mark(&self) -> &AtomicPtr<()> {
        &self.mark
    }

    /// Moves every byte of `value` except its mark into the slot and returns the mark.
    ///
    /// # Safety
    ///
    /// Only the producer may call this, on a slot the consumer has released (its value was moved
    /// out, or it was never written), and the consumer must not read the slot's body until it
    /// sees the mark stored afterwards.
    #[inline(always)]
    pub(super) unsafe fn write_body(&self, value: T) -> *mut () {
        let value = ManuallyDrop::new(value);
        let src = ptr::from_ref::<T>(&value).cast::<u8>();
        // SAFETY: `src` points to a whole `T`; the mark word is in bounds and aligned (contract).
        let mark = unsafe { src.add(T::MARK_OFFSET).cast::<*mut ()>().read() };
        self.body_mut(|dst| {
            // SAFETY: both ranges lie inside one `T` on each side and skip the mark word; the
            // caller guarantees nobody else touches the slot's body now. `value` is not dropped:
            // its bytes (and the mark) now belong to the slot.
            unsafe { copy_around_mark::<T>(src, dst) }
        });
        mark
    }

    /// Moves the value out of the slot, rebuilt from its body and `mark` (with the lap bit
    /// already cleared).
    ///
    /// # Safety
    ///
    /// Only the consumer may call this, after an `Acquire` load of this slot's mark showed the
    /// current lap, and at most once per lap.
    #[inline(always)]
    pub(super) unsafe fn read_body(&self, mark: *mut ()) -> T {
        let mut out = MaybeUninit::<T>::uninit();
        let dst = out.as_mut_ptr().cast::<u8>();
        self.body(|src| {
            // SAFETY: as in `write_body`; the `Acquire` on the mark makes the producer's writes
            // of these bytes visible, and the producer will not overwrite them before the
            // consumer releases the slot.
            unsafe { copy_around_mark::<T>(src, dst) }
        });
        // SAFETY: every byte but the mark word was copied above; writing the mark completes a
        // `T` whose bytes are exactly those the producer moved in.
        unsafe {
            dst.add(T::MARK_OFFSET).cast::<*mut ()>().write(mark);
            out.assume_init()
        }
    }

    #[cfg(not(loom))]
    #[inline(always)]
    fn body<R>(&self, f: impl FnOnce(*const u8) -> R) -> R {
        self.0.with(|p| f(p.cast()))
    }

    #[cfg(not(loom))]
    #[inline(always)]
    fn body_mut<R>(&self, f: impl FnOnce(*mut u8) -> R) -> R {
        self.0.with_mut(|p| f(p.cast()))
    }

    #[cfg(loom)]
    fn body<R>(&self, f: impl FnOnce(*const u8) -> R) -> R {
        self.body.with(|p| f(p.cast()))
    }

    #[cfg(loom)]
    fn body_mut<R>(&self, f: impl FnOnce(*mut u8) -> R) -> R {
        self.body.with_mut(|p| f(p.cast()))
    }
}

/// Copies the bytes of one `T` from `src` to `dst`, leaving out the mark word.
///
/// # Safety
///
/// `src` and `dst` each point to `size_of::<T>()` bytes that do not overlap, `src` readable,
/// `dst` writable.
#[inline(always)]
unsafe fn copy_around_mark<T: LapMarked>(src: *const u8, dst: *mut u8) {
    let after = T::MARK_OFFSET + WORD;
    // SAFETY: the caller's contract; both ranges are inside the `T`.
    unsafe {
        ptr::copy_nonoverlapping(src, dst, T::MARK_OFFSET);
        ptr::copy_nonoverlapping(src.add(after), dst.add(after), size_of::<T>() - after);
    }
}
