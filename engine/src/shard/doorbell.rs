//! The doorbell: how a parked shard is woken, at no cost to peers while it is awake.
//!
//! It is the eventcount (Dekker) pattern on one flag that only a sleeping shard sets:
//!
//! 1. The owning shard, idle for its spin time, calls [`Doorbell::announce_sleep`]: it sets
//!    `sleeping = true` (a swap, so that it is ordered after any peer's earlier clear), then
//!    issues a `SeqCst` fence.
//! 2. It re-checks its rings and inject queue. If it finds work it calls
//!    [`Doorbell::wake_up`] and goes on; otherwise it parks (until a ring, or its next timer).
//! 3. A peer publishes its batch (a `Release` store of the ring's tail, or a push onto the
//!    inject queue), then calls [`Doorbell::ring`]: a `SeqCst` fence, then a plain load of the
//!    flag. Only when the flag is set does it write the flag (a swap back to `false`, so one
//!    peer pays the wake-up) and wake the owner (a futex wake, or the stored waker).
//! 4. After parking (woken, timed out or spuriously), the owner clears the flag with
//!    `wake_up`.
//!
//! Why no wake-up is lost: the two fences are ordered one way or the other in the single total
//! order of `SeqCst` fences. If the owner's fence comes first, the peer's load after its own fence
//! sees `sleeping = true` and wakes it; if the peer's fence comes first, the owner's re-check
//! after its fence sees the published batch and does not park. Without either fence both loads
//! may read stale values (store buffering) and the owner sleeps on a batch nobody will ring for:
//! the loom model below fails when either fence is left out (`ring_unfenced` and
//! `announce_sleep_unfenced` exist only under `--cfg loom`, to show exactly that).
//!
//! Cost: while the owner is awake the flag's cache line stays shared (read-only) in every
//! peer's cache, so a ring is a fence and a local load: no read-modify-write, no line moved.
//! The owner writes the flag twice per sleep, never per message.
//!
//! Who writes what: the owner sets and clears `sleeping`; a peer clears it only when it found
//! it set (the one that wins the swap wakes the owner); `thread` is set once by the owner at
//! start-up, before the shard announces that it runs.
//!
//! A shard that sleeps inside an async executor (glommio: its network tasks must stay live while
//! it waits) does not park its thread: it stores its task's `Waker` with
//! [`Doorbell::set_waker`] *before* `announce_sleep`, and a ring that finds the flag set wakes
//! that waker instead of unparking the thread (glommio turns a wake from another thread into an
//! eventfd write that ends its io_uring wait).

use crate::loom::{fence, AtomicBool, Mutex, Ordering};
use crossbeam_utils::CachePadded;
use std::sync::OnceLock;
use std::task::Waker;

#[cfg(loom)]
type ThreadHandle = loom::thread::Thread;
#[cfg(not(loom))]
type ThreadHandle = std::thread::Thread;

/// A shard's wake-up bell; see the module documentation.
#[derive(Debug, Default)]
pub struct Doorbell {
    sleeping: CachePadded<AtomicBool>,
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

    /// Step 1 (owner): announce that it is about to sleep. The caller must then re-check every
    /// input; with work found, [`wake_up`](Self::wake_up) and go on, otherwise park.
    #[inline]
    pub fn announce_sleep(&self) {
        self.announce::<true>();
    }

    /// Steps 1 and 2 (owner) as one call: announce, then re-check every input with
    /// `has_work`. Returns whether the caller may park; `false` means work arrived, the
    /// announcement is withdrawn, and the caller goes to take it. The shard's park paths and
    /// the loom models both call this.
    #[inline]
    pub(crate) fn announce_and_recheck(&self, has_work: impl FnOnce() -> bool) -> bool {
        self.announce_sleep();
        if has_work() {
            self.wake_up();
            return false;
        }
        true
    }

    /// Step 4 (owner, parking its thread): park until a peer's ring unparks it (or until
    /// `timeout`), then clear the flag. Call only after [`announce_and_recheck`] said yes.
    ///
    /// [`announce_and_recheck`]: Self::announce_and_recheck
    #[inline]
    pub(crate) fn park_until_rung(&self, timeout: Option<std::time::Duration>) {
        park_thread(timeout);
        self.wake_up();
    }

    /// Step 4 (owner): after parking, or on finding work after the announcement, clear the flag.
    #[inline]
    pub fn wake_up(&self) {
        // A peer that woke us already cleared the flag: skip the store then.
        if self.sleeping.load(Ordering::Relaxed) {
            self.sleeping.store(false, Ordering::Relaxed);
        }
    }

    /// Whether the owner announced that it sleeps.
    #[inline]
    #[cfg(all(test, not(loom)))]
    pub fn is_sleeping(&self) -> bool {
        self.sleeping.load(Ordering::Acquire)
    }

    /// Step 3 (peer): called after publishing work. Returns whether it woke the owner (a
    /// syscall or a waker), which happens only when the owner announced that it sleeps.
    #[inline]
    pub fn ring(&self) -> bool {
        self.ring_with::<true>()
    }

    /// [`announce_sleep`](Self::announce_sleep) without its fence: for the loom model that
    /// shows the fence is needed. Never used outside that model.
    #[cfg(loom)]
    pub(crate) fn announce_sleep_unfenced(&self) {
        self.announce::<false>();
    }

    /// [`ring`](Self::ring) without its fence: for the loom model that shows the fence is
    /// needed. Never used outside that model.
    #[cfg(loom)]
    pub(crate) fn ring_unfenced(&self) -> bool {
        self.ring_with::<false>()
    }

    #[inline]
    fn announce<const FENCE: bool>(&self) {
        // A swap rather than a store: it reads the latest value, so the flag's modification
        // order has this announcement after any peer's earlier swap (loom's model needs the
        // read to see that; on x86 the fence below costs the same either way).
        self.sleeping.swap(true, Ordering::Relaxed);
        if FENCE {
            // Orders the flag's store before the re-check's loads (store-load: needs SeqCst).
            fence(Ordering::SeqCst);
        }
    }

    #[inline]
    fn ring_with<const FENCE: bool>(&self) -> bool {
        if FENCE {
            // Orders the caller's publication before the flag's load (store-load: needs SeqCst).
            fence(Ordering::SeqCst);
        }
        if !self.sleeping.load(Ordering::Relaxed) {
            return false;
        }
        // One peer wins the swap and pays for the wake-up; `Acquire` keeps the waker's mutex
        // and the unpark after the flag's read.
        if !self.sleeping.swap(false, Ordering::Acquire) {
            return false;
        }
        if let Some(waker) = self.take_waker() {
            waker.wake();
            return true;
        }
        if let Some(t) = self.thread.get() {
            t.unpark();
        }
        true
    }

    /// For a shard that sleeps inside an executor: the waker a ring should wake instead of
    /// unparking the thread. Set it before `announce_sleep`; [`Doorbell::clear_waker`] after
    /// waking.
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

/// Parks the calling thread until unparked, or until `timeout` when there is one (under
/// `--cfg loom`, loom's park, which has no timeout: the models never use one).
pub(crate) fn park_thread(timeout: Option<std::time::Duration>) {
    #[cfg(not(loom))]
    match timeout {
        Some(timeout) => std::thread::park_timeout(timeout),
        None => std::thread::park(),
    }
    #[cfg(loom)]
    {
        debug_assert!(timeout.is_none(), "loom models park without a timeout");
        crate::loom::thread::park();
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use crate::loom::{thread, Arc, AtomicUsize};

    /// The owner's side of the protocol, as the runner does it: re-check, announce, re-check,
    /// park. `fenced` runs the production `announce_and_recheck` and `park_until_rung`; unfenced,
    /// the same steps with `announce_sleep_unfenced`.
    fn owner_waits_for(bell: &Doorbell, work: &AtomicUsize, fenced: bool) {
        loop {
            if work.load(Ordering::Acquire) == 1 {
                return;
            }
            if fenced {
                // The production protocol, as `Shard::announce_sleep` and the runner call it.
                if !bell.announce_and_recheck(|| work.load(Ordering::Acquire) == 1) {
                    return;
                }
                bell.park_until_rung(None);
                continue;
            }
            bell.announce_sleep_unfenced();
            if work.load(Ordering::Acquire) == 1 {
                bell.wake_up();
                return;
            }
            thread::park();
            bell.wake_up();
        }
    }

    /// A peer publishes one item (a `Release` store, as the ring's tail is) and rings; the owner
    /// announces, re-checks and parks. Loom explores every interleaving and every value a load
    /// may read: a lost wake-up would leave the owner parked forever, which loom reports as a
    /// deadlock (a panic).
    fn model(owner_fenced: bool, peer_fenced: bool) {
        loom::model(move || {
            let bell = Arc::new(Doorbell::new());
            let work = Arc::new(AtomicUsize::new(0));
            bell.bind_current_thread();
            let (b2, w2) = (bell.clone(), work.clone());
            let peer = thread::spawn(move || {
                w2.store(1, Ordering::Release);
                if peer_fenced {
                    b2.ring();
                } else {
                    b2.ring_unfenced();
                }
            });
            owner_waits_for(&bell, &work, owner_fenced);
            peer.join().unwrap();
        });
    }

    #[test]
    fn loom_doorbell_never_loses_a_wakeup() {
        model(true, true);
    }

    /// The peer's fence is needed: without it the peer may read the flag before its own
    /// publication is visible to the owner (store buffering), and the owner sleeps forever.
    #[test]
    #[should_panic(expected = "deadlock")]
    fn loom_doorbell_loses_a_wakeup_without_the_ring_fence() {
        model(true, false);
    }

    /// The owner's fence is needed too, for the same reason on its side.
    #[test]
    #[should_panic(expected = "deadlock")]
    fn loom_doorbell_loses_a_wakeup_without_the_announce_fence() {
        model(false, true);
    }

    /// Wakes a loom thread: the waker a shard inside an executor leaves on its doorbell (the
    /// executor's wait for it is the thread's park here).
    struct UnparkOnWake(thread::Thread);

    impl std::task::Wake for UnparkOnWake {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }

    /// The executor path: the owner leaves a waker (and binds no thread), announces, re-checks
    /// and waits; the peer publishes and rings, which takes the waker under the doorbell's
    /// mutex and wakes it. Loom reports a lost wake-up as a deadlock.
    #[test]
    fn loom_doorbell_wakes_a_sleeper_through_its_waker() {
        loom::model(|| {
            let bell = Arc::new(Doorbell::new());
            let work = Arc::new(AtomicUsize::new(0));
            let waker = Waker::from(std::sync::Arc::new(UnparkOnWake(thread::current())));
            let (b2, w2) = (bell.clone(), work.clone());
            let peer = thread::spawn(move || {
                w2.store(1, Ordering::Release);
                b2.ring();
            });
            while work.load(Ordering::Acquire) != 1 {
                bell.set_waker(&waker);
                if !bell.announce_and_recheck(|| work.load(Ordering::Acquire) == 1) {
                    bell.clear_waker();
                    break;
                }
                thread::park();
                bell.wake_up();
                bell.clear_waker();
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
        assert!(!bell.is_sleeping(), "a ring never sets the flag");
        let b = bell.clone();
        let (woken_tx, woken_rx) = std::sync::mpsc::channel();
        // The sleeper parks with no timeout: only the ring's unpark gets it out, so a lost
        // wake-up leaves it parked and the `recv_timeout` below fails the test (a timed park
        // would hide the loss behind its timeout).
        std::thread::spawn(move || {
            b.bind_current_thread();
            b.announce_sleep();
            while b.is_sleeping() {
                std::thread::park();
            }
            b.wake_up();
            let _ = woken_tx.send(());
        });
        while !bell.is_sleeping() {
            std::thread::yield_now();
        }
        // Let the sleeper reach `park` (a ring before it would only pre-set the park token).
        std::thread::sleep(Duration::from_millis(20));
        assert!(bell.ring(), "a sleeper is woken");
        woken_rx.recv_timeout(Duration::from_secs(5)).expect("the ring's wake-up reached the sleeper");
        assert!(!bell.is_sleeping());
        assert!(!bell.ring(), "a woken sleeper is not woken twice");
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
        bell.announce_sleep();
        assert!(bell.ring());
        assert_eq!(count.0.load(O::SeqCst), 1, "the waker was woken");
        assert!(!bell.ring(), "only the first ring wakes");
        bell.wake_up();
        bell.clear_waker();
        bell.announce_sleep();
        bell.ring();
        assert_eq!(count.0.load(O::SeqCst), 1, "a cleared waker is not woken again");
        bell.wake_up();
    }

    /// Many peers ringing one sleeper: exactly one of them pays for the wake-up.
    #[test]
    fn one_of_many_rings_wakes() {
        let bell = Arc::new(Doorbell::new());
        bell.announce_sleep();
        let woke: usize = (0..4)
            .map(|_| {
                let b = bell.clone();
                std::thread::spawn(move || b.ring() as usize)
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .sum();
        assert_eq!(woke, 1);
    }
}
