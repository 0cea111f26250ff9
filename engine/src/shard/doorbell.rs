//! The doorbell: how a parked shard is woken, without peers paying a syscall otherwise.
//!
//! It is an eventcount: one atomic word whose bit 0 says "the owner sleeps" and whose other bits
//! count rings. Both sides act on that one word with read-modify-write operations, so the
//! protocol needs nothing beyond the total order of operations on a single atomic (no
//! store-load fence pairing between different locations), and loom checks it as written.
//!
//! 1. The owning shard, idle for its spin time, takes a ticket: [`Doorbell::prepare_sleep`]
//!    loads the word (`Acquire`).
//! 2. It re-checks its rings and inject queue. If it finds work it goes on.
//! 3. Otherwise [`Doorbell::try_sleep`] swaps the word from the ticket to ticket + sleeping
//!    bit. If a peer rang since step 1 the swap fails, and the `Acquire` on the failed swap
//!    makes that peer's published batch visible: the shard goes back to step 2. If it succeeds
//!    the shard parks (with a timeout, so its timers stay live), then clears the bit.
//! 4. A peer publishes its batch (a `Release` store of the ring's tail), then [`Doorbell::ring`]
//!    adds 2 to the word (`AcqRel`). Only if the old value had the sleeping bit does it unpark
//!    the thread (a futex wake). An awake shard costs its peers one uncontended atomic add on a
//!    line the owner reads only when it is about to sleep.
//!
//! Who writes what: the owner sets and clears the sleeping bit; peers and host threads add rings;
//! `thread` is set once by the owner at start-up, before the shard announces that it runs.
//!
//! A shard that sleeps inside an async executor (glommio: its network tasks must stay live while
//! it waits) does not park its thread: it stores its task's `Waker` with
//! [`Doorbell::set_waker`] *before* `try_sleep`, and a ring that finds the sleeping bit wakes
//! that waker instead of unparking the thread (glommio turns a wake from another thread into an
//! eventfd write that ends its io_uring wait).

use crate::loom::{AtomicU64, Ordering};
use crossbeam_utils::CachePadded;
use std::sync::Mutex;
use std::sync::OnceLock;
use std::task::Waker;

#[cfg(loom)]
type ThreadHandle = loom::thread::Thread;
#[cfg(not(loom))]
type ThreadHandle = std::thread::Thread;

/// Bit 0 of the word: the owner is (about to be) parked.
const SLEEPING: u64 = 1;
/// What one ring adds to the word.
const RING: u64 = 2;

/// A ticket from [`Doorbell::prepare_sleep`], to be handed to [`Doorbell::try_sleep`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub struct SleepTicket(u64);

/// A shard's wake-up bell; see the module documentation.
#[derive(Debug, Default)]
pub struct Doorbell {
    word: CachePadded<AtomicU64>,
    thread: OnceLock<ThreadHandle>,
    /// The sleeping task's waker, for a shard that sleeps inside an executor (taken by a ring).
    waker: Mutex<Option<Waker>>,
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

    /// Step 1: take a ticket. The caller must then re-check for work before `try_sleep`.
    #[inline]
    pub fn prepare_sleep(&self) -> SleepTicket {
        SleepTicket(self.word.load(Ordering::Acquire) & !SLEEPING)
    }

    /// Step 3: announce sleep if nobody rang since the ticket was taken. `false` means a peer
    /// rang: re-check for work instead of parking.
    #[inline]
    pub fn try_sleep(&self, ticket: SleepTicket) -> bool {
        self.word.compare_exchange(ticket.0, ticket.0 | SLEEPING, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// After parking (woken or timed out): clear the sleeping bit.
    #[inline]
    pub fn wake_up(&self) {
        self.word.fetch_and(!SLEEPING, Ordering::AcqRel);
    }

    /// Whether the owner announced that it sleeps.
    #[inline]
    pub fn is_sleeping(&self) -> bool {
        self.word.load(Ordering::Acquire) & SLEEPING != 0
    }

    /// Step 4: called by a peer after publishing work. Returns whether it had to wake the shard
    /// (a syscall), which happens only when the shard announced that it sleeps.
    #[inline]
    pub fn ring(&self) -> bool {
        let previous = self.word.fetch_add(RING, Ordering::AcqRel);
        if previous & SLEEPING != 0 {
            if let Some(waker) = self.take_waker() {
                waker.wake();
                return true;
            }
            if let Some(t) = self.thread.get() {
                t.unpark();
            }
            return true;
        }
        false
    }

    /// For a shard that sleeps inside an executor: the waker a ring should wake instead of
    /// unparking the thread. Set it before `try_sleep`; [`Doorbell::clear_waker`] after waking.
    pub fn set_waker(&self, waker: &Waker) {
        let mut slot = self.waker.lock().unwrap_or_else(|e| e.into_inner());
        match slot.as_ref() {
            Some(w) if w.will_wake(waker) => {}
            _ => *slot = Some(waker.clone()),
        }
    }

    /// Forgets the waker set by [`Doorbell::set_waker`] (the shard is awake again).
    pub fn clear_waker(&self) {
        drop(self.take_waker());
    }

    fn take_waker(&self) -> Option<Waker> {
        self.waker.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use crate::loom::{thread, Arc, AtomicUsize};

    /// A peer publishes one item and rings; the shard takes a ticket, re-checks and parks.
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
                let ticket = bell.prepare_sleep();
                if work.load(Ordering::Acquire) == 1 {
                    break;
                }
                if bell.try_sleep(ticket) {
                    thread::park();
                    bell.wake_up();
                }
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
        let stale = bell.prepare_sleep();
        bell.ring();
        assert!(!bell.try_sleep(stale), "a ring after the ticket cancels the sleep");
        let b = bell.clone();
        let t = std::thread::spawn(move || {
            b.bind_current_thread();
            loop {
                let ticket = b.prepare_sleep();
                if b.try_sleep(ticket) {
                    break;
                }
            }
            std::thread::park_timeout(Duration::from_secs(10));
            b.wake_up();
        });
        while !bell.is_sleeping() {
            std::thread::yield_now();
        }
        assert!(bell.ring(), "a sleeper is woken");
        t.join().unwrap();
        assert!(!bell.is_sleeping());
    }

    /// A sleeper that left a waker is woken through it, not through its thread.
    #[test]
    fn ring_wakes_a_stored_waker() {
        use std::sync::atomic::{AtomicUsize, Ordering as O};
        use std::task::Wake;
        struct Count(AtomicUsize);
        impl Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, O::SeqCst);
            }
        }
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let bell = Doorbell::new();
        bell.set_waker(&waker);
        let ticket = bell.prepare_sleep();
        assert!(bell.try_sleep(ticket));
        assert!(bell.ring());
        assert_eq!(count.0.load(O::SeqCst), 1, "the waker was woken");
        bell.wake_up();
        bell.clear_waker();
        let ticket = bell.prepare_sleep();
        assert!(bell.try_sleep(ticket));
        bell.ring();
        assert_eq!(count.0.load(O::SeqCst), 1, "a cleared waker is not woken again");
        bell.wake_up();
    }
}
