//! The concurrency shim: `std` primitives normally, loom's under `--cfg loom`.
//!
//! Every module that shares memory between threads (the rings, the doorbell) imports its atomics,
//! `Arc`, `Mutex` and `UnsafeCell` from here, so that `RUSTFLAGS="--cfg loom" cargo test` model-checks the
//! same code that ships. `UnsafeCell` follows loom's closure API (`with`, `with_mut`) in both
//! builds; the `std` flavour is a zero-cost wrapper.

#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicUsize, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::{Arc, Mutex};
#[cfg(loom)]
#[allow(unused_imports)]
pub(crate) use loom::thread;

#[cfg(not(loom))]
#[allow(unused_imports)]
pub(crate) use std::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicUsize, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::{Arc, Mutex};
#[cfg(not(loom))]
#[allow(unused_imports)]
pub(crate) use std::thread;

/// `std` stand-in for `loom::cell::UnsafeCell`: the same closure API, no bookkeeping.
#[cfg(not(loom))]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(value: T) -> Self {
        Self(std::cell::UnsafeCell::new(value))
    }

    /// Runs `f` with a shared raw pointer to the contents.
    #[inline(always)]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Runs `f` with a mutable raw pointer to the contents.
    #[inline(always)]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}
