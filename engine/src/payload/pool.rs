//! The block pool: where a payload too big to travel inline lives, without the global allocator.
//!
//! Each thread (in an engine: each shard) keeps a free list of fixed-size blocks
//! ([`BLOCK_BYTES`] bytes, aligned to a cache line so a block never shares a line with another
//! message). `acquire` pops one, or allocates a fresh one while the list is empty (warm-up);
//! `release` pushes one back onto the *releasing* thread's list, or frees it once that list
//! holds [`KEEP`] blocks. A block acquired on one shard and released on another (the message
//! crossed shards) simply changes lists: in a steady exchange each shard's list settles, and
//! sending and taking pooled payloads touches no allocator.
//!
//! Invariants: every pointer on a free list came from `acquire` (the global allocator with
//! `block_layout`) and is owned by that list alone; the list never holds more than [`KEEP`]
//! blocks, and frees them all when its thread exits. A release during thread teardown (the list
//! already gone) frees the block at once.

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::cell::RefCell;
use std::ptr::NonNull;

/// Bytes in one block: the largest value that travels pooled.
pub const BLOCK_BYTES: usize = 64;
/// Alignment of a block (a cache line); also the strictest alignment a pooled value may have.
pub const BLOCK_ALIGN: usize = 64;
/// Blocks one thread keeps for reuse (256 KiB); beyond that, releases free.
pub const KEEP: usize = 4096;

/// The layout of every block.
#[inline]
pub(crate) const fn block_layout() -> Layout {
    // SAFETY: BLOCK_ALIGN is a non-zero power of two and BLOCK_BYTES is a multiple of it, so
    // the size rounded up to the alignment cannot overflow `isize`.
    unsafe { Layout::from_size_align_unchecked(BLOCK_BYTES, BLOCK_ALIGN) }
}

/// One thread's free blocks; frees them when the thread exits.
struct FreeList(Vec<NonNull<u8>>);

impl Drop for FreeList {
    fn drop(&mut self) {
        for block in self.0.drain(..) {
            // SAFETY: every block on the list came from `alloc(block_layout())` and is owned
            // by the list alone (module invariant).
            unsafe { dealloc(block.as_ptr(), block_layout()) };
        }
    }
}

thread_local! {
    static FREE: RefCell<FreeList> = RefCell::new(FreeList(Vec::with_capacity(KEEP)));
}

/// A block of [`BLOCK_BYTES`] bytes aligned to [`BLOCK_ALIGN`], uninitialised, owned by the
/// caller until it hands it to [`release`].
#[inline]
pub(crate) fn acquire() -> NonNull<u8> {
    let reused = FREE.try_with(|list| list.borrow_mut().0.pop()).ok().flatten();
    reused.unwrap_or_else(|| {
        // SAFETY: the layout has a non-zero size.
        let raw = unsafe { alloc(block_layout()) };
        NonNull::new(raw).unwrap_or_else(|| handle_alloc_error(block_layout()))
    })
}

/// Gives a block back to this thread's list, or frees it when the list is full or gone.
///
/// # Safety
///
/// `block` came from [`acquire`] (on any thread), holds no live value any more, and is not used
/// by the caller afterwards.
#[inline]
pub(crate) unsafe fn release(block: NonNull<u8>) {
    let kept = FREE
        .try_with(|list| {
            let mut list = list.borrow_mut();
            if list.0.len() < KEEP {
                list.0.push(block);
                true
            } else {
                false
            }
        })
        .unwrap_or(false);
    if !kept {
        // SAFETY: the block came from `alloc(block_layout())` (caller contract) and nobody
        // else holds it.
        unsafe { dealloc(block.as_ptr(), block_layout()) };
    }
}

/// Blocks on this thread's free list (for tests and diagnostics).
pub fn free_blocks() -> usize {
    FREE.try_with(|list| list.borrow().0.len()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_reused_and_aligned() {
        let a = acquire();
        assert_eq!(a.as_ptr() as usize % BLOCK_ALIGN, 0);
        let before = free_blocks();
        // SAFETY: `a` came from `acquire` and holds nothing.
        unsafe { release(a) };
        assert_eq!(free_blocks(), before + 1);
        let b = acquire();
        assert_eq!(a, b, "the block just released is the next one handed out");
        // SAFETY: as above.
        unsafe { release(b) };
    }

    #[test]
    fn a_block_released_on_another_thread_joins_that_threads_list() {
        let block = acquire();
        let addr = block.as_ptr() as usize;
        let moved = std::thread::spawn(move || {
            let block = NonNull::new(addr as *mut u8).unwrap();
            // SAFETY: the block came from `acquire` on the spawning thread and holds nothing.
            unsafe { release(block) };
            let again = acquire();
            let same = again.as_ptr() as usize == addr;
            // SAFETY: as above; the thread's list frees it when the thread exits.
            unsafe { release(again) };
            same
        })
        .join()
        .unwrap();
        assert!(moved);
    }

    #[test]
    fn the_list_is_bounded() {
        let blocks: Vec<_> = (0..KEEP + 8).map(|_| acquire()).collect();
        let base = free_blocks();
        for b in blocks {
            // SAFETY: each block came from `acquire` and holds nothing.
            unsafe { release(b) };
        }
        assert!(free_blocks() <= KEEP);
        assert!(free_blocks() >= base.min(KEEP));
    }
}
