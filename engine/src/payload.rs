//! `Payload`: a type-erased message value that travels inline in a fixed-size slot.
//!
//! Every message crosses the engine as an [`Envelope`](crate::envelope::Envelope) of one fixed
//! size, so rings and mailboxes hold plain slots and never allocate. The typed value inside is a
//! `Payload`:
//!
//! - a value of at most [`INLINE_BYTES`] bytes whose alignment is at most 8 is stored **inline**
//!   in the payload's buffer: creating, moving and taking it touch no heap;
//! - a larger or more strictly aligned value is boxed, and the buffer holds the `Box` pointer.
//!   That costs one allocation and one free per message; keep hot messages small.
//!
//! Invariants: `data` always holds a live, initialised value of the type described by `vtable`
//! (inline, or as a `Box` raw pointer when `vtable.boxed`), until `take` moves it out or `Drop`
//! drops it, exactly once. A `Payload` is only built from `Send` values, which is why it may be
//! sent between shards.

use std::any::TypeId;
use std::fmt;
use std::mem::{align_of, size_of, ManuallyDrop, MaybeUninit};

/// Bytes a message may occupy and still travel inline (no heap).
pub const INLINE_BYTES: usize = 48;

/// The inline buffer: 48 bytes aligned to 8.
#[repr(C, align(8))]
struct InlineBuf([MaybeUninit<u8>; INLINE_BYTES]);

/// How to recognise and drop the value a payload holds. One static per message type.
struct VTable {
    type_id: fn() -> TypeId,
    type_name: fn() -> &'static str,
    boxed: bool,
    /// Drops the value in place (inline) or frees the box (boxed).
    drop: unsafe fn(*mut u8),
}

struct VTableOf<M>(std::marker::PhantomData<M>);

impl<M: 'static> VTableOf<M> {
    const INLINE: VTable =
        VTable { type_id: TypeId::of::<M>, type_name: std::any::type_name::<M>, boxed: false, drop: drop_inline::<M> };
    const BOXED: VTable =
        VTable { type_id: TypeId::of::<M>, type_name: std::any::type_name::<M>, boxed: true, drop: drop_boxed::<M> };
}

/// # Safety
/// `p` points to a live, initialised, suitably aligned `M` that is not used afterwards.
unsafe fn drop_inline<M>(p: *mut u8) {
    // SAFETY: guaranteed by the caller (see the function contract).
    unsafe { std::ptr::drop_in_place(p.cast::<M>()) }
}

/// # Safety
/// `p` points to a `*mut M` obtained from `Box::into_raw`, not used afterwards.
unsafe fn drop_boxed<M>(p: *mut u8) {
    // SAFETY: the buffer holds a pointer produced by `Box::into_raw` (caller contract).
    unsafe { drop(Box::from_raw(p.cast::<*mut M>().read())) }
}

/// Whether a message of type `M` travels inline, without touching the heap.
pub const fn fits_inline<M>() -> bool {
    size_of::<M>() <= INLINE_BYTES && align_of::<M>() <= 8
}

/// A type-erased message value; see the module documentation.
pub struct Payload {
    data: InlineBuf,
    vtable: &'static VTable,
}

// SAFETY: `Payload::new` only accepts `M: Send`, and the payload owns its value exclusively, so
// moving the payload to another thread moves a `Send` value.
unsafe impl Send for Payload {}

impl Payload {
    /// Wraps `value`, inline when [`fits_inline::<M>()`](fits_inline).
    #[inline]
    pub fn new<M: Send + 'static>(value: M) -> Self {
        let mut data = InlineBuf([MaybeUninit::uninit(); INLINE_BYTES]);
        if fits_inline::<M>() {
            // SAFETY: `M` fits in the buffer and its alignment (<= 8) is satisfied by the buffer's.
            unsafe { data.0.as_mut_ptr().cast::<M>().write(value) };
            Self { data, vtable: &VTableOf::<M>::INLINE }
        } else {
            let raw = Box::into_raw(Box::new(value));
            // SAFETY: a pointer is 8 bytes with alignment 8, which the buffer satisfies.
            unsafe { data.0.as_mut_ptr().cast::<*mut M>().write(raw) };
            Self { data, vtable: &VTableOf::<M>::BOXED }
        }
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
        let mut this = ManuallyDrop::new(self);
        let p = this.data.0.as_mut_ptr();
        if this.vtable.boxed {
            // SAFETY: the type matches and the buffer holds a `Box<M>` raw pointer; `this` is
            // never dropped, so the value is moved out exactly once.
            Ok(unsafe { *Box::from_raw(p.cast::<*mut M>().read()) })
        } else {
            // SAFETY: the type matches and the buffer holds an initialised inline `M`; `this`
            // is never dropped, so the value is moved out exactly once.
            Ok(unsafe { p.cast::<M>().read() })
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
        f.debug_struct("Payload").field("type", &self.type_name()).field("boxed", &self.vtable.boxed).finish()
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
        assert!(fits_inline::<[u64; 6]>());
        assert!(!fits_inline::<[u64; 7]>());
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
        let s = Payload::new(String::from("hello")).take::<String>().unwrap();
        assert_eq!(s, "hello");
    }
}
