//! The doorbell: how a parked shard is woken, without peers paying a syscall otherwise.
//!
//! Protocol (a Dekker-style handshake; both sides use a `SeqCst` fence between their store and
//! their load, so at least one of them sees the other):
//! 1. A shard that has been idle for its spin time calls [`Doorbell::prepare_sleep`]: it stores
//!    `sleeping = true`, fences, and then re-checks its inbound rings and inject queue.
//! 2. If it finds work it calls [`Doorbell::cancel_sleep`] and goes on; otherwise it parks its
//!    thread (with a timeout, so timers stay live).
//! 3. A producer publishes its ring batch (a `Release` store of the ring's tail), then calls
//!    [`Doorbell::ring`]: it fences, loads `sleeping`, and only if it is set swaps it to false
//!    and unparks the thread. A shard that is awake costs its peers one fence and one load of a
//!    cache line that stays shared (it is written only around parks).
//!
//! Who writes what: `sleeping` is set by the owning shard and cleared by either side; `thread`
//! is set once, by the owning shard at start-up, before the shard announces that it runs.

use crate::loom::{fence, AtomicBool, Ordering};
use crossbeam_utils::CachePadded;
use std::sync::OnceLock;

#[cfg(loom)]
type ThreadHandle = loom::thread::Thread;
#[cfg(not(loom))]
type ThreadHandle = std::thread::Thread;

/// A shard's wake-up bell; see the module documentation.
#[derive(Debug, Default)]
pub struct Doorbell {
    sleeping: CachePadded<AtomicBool>,
    thread: OnceLock<ThreadHandle>,
}

impl Doorbell {
    /// A doorbell not yet bound to a thread.
    pub fn new() -> Self {
        Self::default()
    }

    /// Binds the doorbell to the calling thread (the shard's). Later calls are ignored.
    pub fn bind_current_thread(&self) {
        #[cfg(loom)]
        let _ = self.thread.set(loom::thread::current());
        #[cfg(not(loom))]
        let _ = self.thread.set(std::thread::current());
    }

    /// Step 1: announce the intent to sleep. The caller must re-check for work afterwards.
    #[inline]
    pub fn prepare_sleep(&self) {
        self.sleeping.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    /// Step 2 (work found, or woken): clear the announcement.
    #[inline]
    pub fn cancel_sleep(&self) {
        self.sleeping.store(false, Ordering::Relaxed);
    }

    /// Whether the shard announced that it sleeps.
    #[inline]
    pub fn is_sleeping(&self) -> bool {
        self.sleeping.load(Ordering::Relaxed)
    }

    /// Step 3: called by a peer after publishing work. Returns whether it had to wake the
    /// shard (a syscall), which happens only when the shard announced that it sleeps.
    #[inline]
    pub fn ring(&self) -> bool {
        fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::Relaxed) && self.sleeping.swap(false, Ordering::AcqRel) {
            if let Some(t) = self.thread.get() {
                t.unpark();
            }
            return true;
        }
        false
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use crate::loom::{thread, Arc, AtomicUsize};

    /// A peer publishes one item and rings; the shard prepares to sleep, re-checks and parks.
    /// Loom explores every interleaving: a lost wake-up would leave the shard parked forever,
    /// which loom reports as a deadlock.
    #[test]
    fn loom_doorbell_never_loses_a_wakeup() {
        loom::model(|| {
            let bell = Arc::new(Doorbell::new());
            let work = Arc::new(AtomicUsize::new(0));
            bell.bind_current_thread();
            let (b2, w2) = (bell.clone(), work.clone());
            let peer = thread::spawn(move || {
                w2.store(1, Ordering::Release);
                b2.ring();
            });
            loop {
                if work.load(Ordering::Acquire) == 1 {
                    break;
                }
                bell.prepare_sleep();
                if work.load(Ordering::Acquire) == 1 {
                    bell.cancel_sleep();
                    break;
                }
                thread::park();
                bell.cancel_sleep();
            }
            peer.join().unwrap();
        });
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn ring_wakes_only_a_sleeper() {
        let bell = Arc::new(Doorbell::new());
        assert!(!bell.ring(), "an awake shard is not woken");
        let b = bell.clone();
        let t = std::thread::spawn(move || {
            b.bind_current_thread();
            b.prepare_sleep();
            std::thread::park_timeout(Duration::from_secs(10));
            b.cancel_sleep();
        });
        while !bell.is_sleeping() {
            std::thread::yield_now();
        }
        while !bell.ring() {
            std::thread::yield_now();
        }
        t.join().unwrap();
    }
}
