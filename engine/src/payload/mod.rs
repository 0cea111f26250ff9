//! `Payload`: a type-erased message value that travels in a fixed-size slot.
//!
//! Every message crosses the engine as an `Envelope` of one cache
//! line, so rings and mailboxes hold plain slots and never allocate. The typed value inside is
//! a `Payload` (32 bytes: a vtable pointer and a 24-byte buffer), stored one of three ways:
//!
//! - **inline**: a value of at most [`INLINE_BYTES`] bytes whose alignment is at most 8 lives
//!   in the buffer itself: creating, moving and taking it touch no memory but the envelope's;
//! - **pooled**: a value of at most [`pool::BLOCK_BYTES`] bytes whose alignment is at most
//!   [`pool::BLOCK_ALIGN`] lives in a block from the shard's block pool ([`pool`]), and the
//!   buffer holds the block's pointer: no global allocator once the pool is warm;
//! - **boxed**: anything larger is boxed, and the buffer holds the `Box` pointer. That costs
//!   one allocation and one free per message; keep hot messages small.
//!
//! Invariants: `data` always holds a live, initialised value of the type described by `vtable`
//! (inline, or behind the pointer in the buffer for pooled and boxed values), until `take`
//! moves it out or `Drop` drops it, exactly once. A `Payload` is only built from `Send` values,
//! which is why it may be sent between shards; it is never shared, so it is not `Sync`.

use std::any::TypeId;
use std::fmt;
use std::marker::PhantomData;
use std::mem::{align_of, size_of, ManuallyDrop, MaybeUninit};
use std::ptr::NonNull;

pub mod pool;

/// Bytes a message may occupy and still travel inline, in the envelope's own cache line.
pub const INLINE_BYTES: usize = 24;

/// The inline buffer: 24 bytes aligned to 8.
#[repr(C, align(8))]
struct InlineBuf([MaybeUninit<u8>; INLINE_BYTES]);

/// Where a payload's value lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Storage {
    Inline,
    Pooled,
    Boxed,
}

/// How to recognise and drop the value a payload holds. One static per message type.
struct VTable {
    type_id: fn() -> TypeId,
    type_name: fn() -> &'static str,
    storage: Storage,
    /// Drops the value in place (inline), or drops it and gives back its block (pooled), or
    /// frees the box (boxed).
    drop: unsafe fn(*mut u8),
}

struct VTableOf<M>(PhantomData<M>);

impl<M: 'static> VTableOf<M> {
    const INLINE: VTable = VTable {
        type_id: TypeId::of::<M>,
        type_name: std::any::type_name::<M>,
        storage: Storage::Inline,
        drop: drop_inline::<M>,
    };
    const POOLED: VTable = VTable {
        type_id: TypeId::of::<M>,
        type_name: std::any::type_name::<M>,
        storage: Storage::Pooled,
        drop: drop_pooled::<M>,
    };
    const BOXED: VTable = VTable {
        type_id: TypeId::of::<M>,
        type_name: std::any::type_name::<M>,
        storage: Storage::Boxed,
        drop: drop_boxed::<M>,
    };
}

/// # Safety
/// `p` points to a live, initialised, suitably aligned `M` that is not used afterwards.
unsafe fn drop_inline<M>(p: *mut u8) {
    // SAFETY: guaranteed by the caller (see the function contract).
    unsafe { std::ptr::drop_in_place(p.cast::<M>()) }
}

/// # Safety
/// `p` points to a pointer to a pool block holding a live `M`; neither is used afterwards.
unsafe fn drop_pooled<M>(p: *mut u8) {
    // SAFETY: the buffer holds the block pointer (caller contract); the block holds a live `M`,
    // dropped here once, and the block goes back to the pool after.
    unsafe {
        let block = p.cast::<NonNull<u8>>().read();
        std::ptr::drop_in_place(block.as_ptr().cast::<M>());
        pool::release(block);
    }
}

/// # Safety
/// `p` points to a `*mut M` obtained from `Box::into_raw`, not used afterwards.
unsafe fn drop_boxed<M>(p: *mut u8) {
    // SAFETY: the buffer holds a pointer produced by `Box::into_raw` (caller contract).
    unsafe { drop(Box::from_raw(p.cast::<*mut M>().read())) }
}

/// Whether a message of type `M` travels inline, in the envelope's cache line.
pub const fn fits_inline<M>() -> bool {
    size_of::<M>() <= INLINE_BYTES && align_of::<M>() <= 8
}

/// Whether a message of type `M` travels without the global allocator once the shard's block
/// pool is warm: inline, or in a pool block.
pub const fn travels_unboxed<M>() -> bool {
    fits_inline::<M>() || (size_of::<M>() <= pool::BLOCK_BYTES && align_of::<M>() <= pool::BLOCK_ALIGN)
}

/// A type-erased message value; see the module documentation.
pub struct Payload {
    data: InlineBuf,
    vtable: &'static VTable,
    /// Not `Sync`: a payload is moved between threads, never shared (`Send` is below).
    _not_sync: PhantomData<*mut ()>,
}

// SAFETY: `Payload::new` only accepts `M: Send`, and the payload owns its value exclusively (a
// pool block or a box is owned as the value is), so moving the payload to another thread moves
// a `Send` value.
unsafe impl Send for Payload {}

/// Byte offset of the vtable reference inside a [`Payload`]. The reference is never null and its
/// address is even (a `VTable` is pointer-aligned), so the envelope ring uses it as the slot's
/// full mark (see `lap_ring`).
pub(crate) const VTABLE_OFFSET: usize = std::mem::offset_of!(Payload, vtable);
const _: () = assert!(align_of::<VTable>() >= 2 && VTABLE_OFFSET % align_of::<*mut ()>() == 0);

impl Payload {
    /// Wraps `value`: inline when [`fits_inline::<M>()`](fits_inline), in a pool block when it
    /// [travels unboxed](travels_unboxed), boxed otherwise.
    #[inline]
    pub fn new<M: Send + 'static>(value: M) -> Self {
        let mut data = InlineBuf([MaybeUninit::uninit(); INLINE_BYTES]);
        let vtable = if fits_inline::<M>() {
            // SAFETY: `M` fits in the buffer and its alignment (<= 8) is satisfied by the buffer's.
            unsafe { data.0.as_mut_ptr().cast::<M>().write(value) };
            &VTableOf::<M>::INLINE
        } else if travels_unboxed::<M>() {
            let block = pool::acquire();
            // SAFETY: the block is ours, `BLOCK_BYTES` >= size_of::<M>() and `BLOCK_ALIGN` >=
            // align_of::<M>() (checked by `travels_unboxed`); a pointer is 8 bytes with
            // alignment 8, which the buffer satisfies.
            unsafe {
                block.as_ptr().cast::<M>().write(value);
                data.0.as_mut_ptr().cast::<NonNull<u8>>().write(block);
            }
            &VTableOf::<M>::POOLED
        } else {
            let raw = Box::into_raw(Box::new(value));
            // SAFETY: a pointer is 8 bytes with alignment 8, which the buffer satisfies.
            unsafe { data.0.as_mut_ptr().cast::<*mut M>().write(raw) };
            &VTableOf::<M>::BOXED
        };
        Self { data, vtable, _not_sync: PhantomData }
    }

    /// Whether the payload holds an `M`.
    #[inline]
    pub fn is<M: 'static>(&self) -> bool {
        (self.vtable.type_id)() == TypeId::of::<M>()
    }

    /// The type name of the value inside, for diagnostics.
    pub fn type_name(&self) -> &'static str {
        (self.vtable.type_name)()
    }

    /// The function that names the payload's type: a field read, for callers that may need
    /// the name later (after the payload is consumed) and usually do not.
    #[inline]
    pub(crate) fn type_name_fn(&self) -> fn() -> &'static str {
        self.vtable.type_name
    }

    /// Moves the value out when it is an `M`; otherwise gives the payload back.
    #[inline]
    pub fn take<M: 'static>(self) -> Result<M, Payload> {
        if !self.is::<M>() {
            return Err(self);
        }
        if self.vtable.storage != Storage::Inline {
            return Ok(self.take_indirect::<M>());
        }
        let mut this = ManuallyDrop::new(self);
        // SAFETY: the type matches and the buffer holds an initialised inline `M`; `this` is
        // never dropped, so the value is moved out exactly once.
        Ok(unsafe { this.data.0.as_mut_ptr().cast::<M>().read() })
    }

    /// `take` for a pooled or boxed value whose type was checked: out of line, so the inline
    /// case stays small enough to inline into every handler's dispatch.
    #[cold]
    #[inline(never)]
    fn take_indirect<M: 'static>(self) -> M {
        debug_assert!(self.is::<M>());
        let mut this = ManuallyDrop::new(self);
        let p = this.data.0.as_mut_ptr();
        if this.vtable.storage == Storage::Pooled {
            // SAFETY: the type matches (checked by the caller) and the buffer holds the pointer
            // of a block holding an `M`, moved out once here (`this` is never dropped); the
            // block then goes back to the pool.
            unsafe {
                let block = p.cast::<NonNull<u8>>().read();
                let value = block.as_ptr().cast::<M>().read();
                pool::release(block);
                value
            }
        } else {
            // SAFETY: the type matches and the buffer holds a `Box<M>` raw pointer; `this` is
            // never dropped, so the value is moved out exactly once.
            unsafe { *Box::from_raw(p.cast::<*mut M>().read()) }
        }
    }
}

impl Drop for Payload {
    fn drop(&mut self) {
        // SAFETY: the invariant says `data` holds a live value described by `vtable`, and this is
        // the only place (besides `take`, which skips drop) that ends its life.
        unsafe { (self.vtable.drop)(self.data.0.as_mut_ptr().cast()) }
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Payload")
            .field("type", &self.type_name())
            .field("pooled", &(self.vtable.storage == Storage::Pooled))
            .field("boxed", &(self.vtable.storage == Storage::Boxed))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn small_values_round_trip_inline() {
        let p = Payload::new(42u64);
        assert!(p.is::<u64>());
        assert!(!p.is::<u32>());
        let p = p.take::<u32>().unwrap_err();
        assert_eq!(p.take::<u64>().unwrap(), 42);
        assert!(fits_inline::<[u64; 3]>());
        assert!(!fits_inline::<[u64; 4]>());
    }

    #[test]
    fn middle_values_are_pooled_and_round_trip() {
        let mid = [9u64; 8];
        assert!(!fits_inline::<[u64; 8]>() && travels_unboxed::<[u64; 8]>());
        let p = Payload::new(mid);
        assert!(format!("{p:?}").contains("pooled: true"));
        assert_eq!(p.take::<[u64; 8]>().unwrap(), mid);
        assert!(!travels_unboxed::<[u64; 9]>());
    }

    /// A payload is `Send` and never `Sync`, and the envelope is one cache line.
    #[test]
    fn payload_is_send_not_sync() {
        fn send<T: Send>() {}
        send::<Payload>();
        // `Payload: !Sync`: the assertion below fails to compile if `Sync` were implemented,
        // through the ambiguity of two blanket impls (the usual compile-time pin).
        trait AmbiguousIfSync<A> {
            fn some_item() {}
        }
        impl<T: ?Sized> AmbiguousIfSync<()> for T {}
        impl<T: ?Sized + Sync> AmbiguousIfSync<u8> for T {}
        <Payload as AmbiguousIfSync<_>>::some_item();
        assert_eq!(std::mem::size_of::<Payload>(), 32);
    }

    #[test]
    fn large_values_are_boxed_and_round_trip() {
        let big = [7u64; 32];
        let p = Payload::new(big);
        assert!(format!("{p:?}").contains("boxed: true"));
        assert_eq!(p.take::<[u64; 32]>().unwrap(), big);
    }

    #[test]
    fn every_value_is_dropped_exactly_once() {
        struct Counted(Arc<AtomicUsize>, #[allow(dead_code)] [u8; 8]);
        impl Drop for Counted {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        struct BigCounted(Arc<AtomicUsize>, #[allow(dead_code)] [u8; 128]);
        struct MidCounted(Arc<AtomicUsize>, #[allow(dead_code)] [u8; 40]);
        impl Drop for MidCounted {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        impl Drop for BigCounted {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let drops = Arc::new(AtomicUsize::new(0));
        drop(Payload::new(Counted(drops.clone(), [0; 8])));
        drop(Payload::new(BigCounted(drops.clone(), [0; 128])));
        let taken = Payload::new(Counted(drops.clone(), [0; 8])).take::<Counted>().ok();
        assert_eq!(drops.load(Ordering::SeqCst), 2);
        drop(taken);
        let back = Payload::new(BigCounted(drops.clone(), [0; 128])).take::<u8>().unwrap_err();
        drop(back);
        assert_eq!(drops.load(Ordering::SeqCst), 4);
        drop(Payload::new(MidCounted(drops.clone(), [0; 40])));
        let mid = Payload::new(MidCounted(drops.clone(), [0; 40])).take::<MidCounted>().ok();
        assert_eq!(drops.load(Ordering::SeqCst), 5);
        drop(mid);
        assert_eq!(drops.load(Ordering::SeqCst), 6);
        let s = Payload::new(String::from("hello")).take::<String>().unwrap();
        assert_eq!(s, "hello");
    }
}
