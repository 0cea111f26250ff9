//! The threads executor's local runtime: tasks, epoll I/O and a timer wheel on one shard thread.
//!
//! A shard on `executor = "threads"` runs its dispatcher on a plain pinned thread. Services
//! beside it (the RESP server's connections) need tasks, sockets and timers; this runtime
//! gives them those without io_uring:
//!
//! * **Tasks** ([`spawn`]): `!Send` futures kept in a slab on the shard thread. A task's waker
//!   is `Send` (it may be woken from anywhere): it queues the task's key on a mutex-protected
//!   ready list and, if the runtime is blocked in `epoll_wait`, writes its eventfd.
//! * **I/O** ([`net`]): non-blocking sockets registered edge-triggered with the shard's epoll
//!   ([`reactor`]).
//! * **Timers** ([`sleep`], read timeouts): a hashed timer wheel ([`wheel`]) of 1 ms ticks.
//!
//! The shard thread drives it between dispatcher passes ([`Runtime::turn`]): run the ready
//! tasks, look at epoll (without blocking unless the shard parks), fire due timers. A shard
//! with no task, socket or timer never calls into epoll and parks on a futex; one with sockets
//! parks in `epoll_wait`, woken by its doorbell through the eventfd ([`Runtime::park_waker`]).
//!
//! The runtime is reachable from its thread through a thread-local set by [`Runtime::enter`]
//! (as glommio's executor is), so `spawn`, `sleep` and the I/O types need no handle. Nothing is
//! shared between shards. Invariants: a task is polled only on its runtime's thread; a task's
//! key (index, generation) names it until it completes, after which wakes for it are ignored;
//! a task is queued at most once until it is polled (its `queued` flag).

pub mod net;
pub mod reactor;
#[cfg(test)]
mod tests;
pub mod wheel;

use reactor::{Notifier, Reactor};
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};
use wheel::{TimerKey, TimerWheel};

type BoxedTask = Pin<Box<dyn Future<Output = ()>>>;

/// Tasks whose wakers fired, waiting to be polled. Shared with the wakers (any thread).
struct ReadyList {
    keys: Mutex<Vec<(u32, u32)>>,
    /// The runtime is (about to be) blocked in `epoll_wait`: wakers must write the eventfd.
    blocked: AtomicBool,
    notifier: Arc<Notifier>,
}

impl ReadyList {
    fn push(&self, key: (u32, u32)) {
        self.keys.lock().unwrap_or_else(|e| e.into_inner()).push(key);
        if self.blocked.load(Ordering::SeqCst) {
            self.notifier.notify();
        }
    }

    fn is_empty(&self) -> bool {
        self.keys.lock().unwrap_or_else(|e| e.into_inner()).is_empty()
    }
}

/// A task's waker.
struct TaskWaker {
    key: (u32, u32),
    queued: AtomicBool,
    ready: Arc<ReadyList>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            self.ready.push(self.key);
        }
    }
}

struct Task {
    future: RefCell<Option<BoxedTask>>,
    waker: Arc<TaskWaker>,
}

struct Inner {
    tasks: RefCell<Vec<Option<Rc<Task>>>>,
    generations: RefCell<Vec<u32>>,
    free: RefCell<Vec<u32>>,
    live: Cell<usize>,
    ready: Arc<ReadyList>,
    /// The keys being run, swapped with the ready list's so neither allocates once warm.
    running: RefCell<Vec<(u32, u32)>>,
    reactor: Reactor,
    wheel: RefCell<TimerWheel>,
    epoch: Instant,
}

/// One shard's local runtime; see the module docs. Not `Send`: it lives on its shard thread.
#[derive(Clone)]
pub struct Runtime {
    inner: Rc<Inner>,
}

thread_local! {
    static CURRENT: RefCell<Option<Runtime>> = const { RefCell::new(None) };
}

/// Undoes [`Runtime::enter`] when dropped.
pub struct EnterGuard {
    previous: Option<Runtime>,
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}

impl Runtime {
    /// A runtime with its own epoll instance and eventfd.
    ///
    /// # Errors
    /// When the kernel refuses epoll or the eventfd (out of descriptors).
    pub fn new() -> io::Result<Self> {
        let reactor = Reactor::new()?;
        let ready = Arc::new(ReadyList {
            keys: Mutex::new(Vec::new()),
            blocked: AtomicBool::new(false),
            notifier: reactor.notifier(),
        });
        Ok(Self {
            inner: Rc::new(Inner {
                tasks: RefCell::new(Vec::new()),
                generations: RefCell::new(Vec::new()),
                free: RefCell::new(Vec::new()),
                live: Cell::new(0),
                ready,
                running: RefCell::new(Vec::new()),
                reactor,
                wheel: RefCell::new(TimerWheel::new(0)),
                epoch: Instant::now(),
            }),
        })
    }

    /// Makes this the runtime of the calling thread until the guard drops.
    pub fn enter(&self) -> EnterGuard {
        let previous = CURRENT.with(|c| c.borrow_mut().replace(self.clone()));
        EnterGuard { previous }
    }

    /// The runtime entered on this thread, if any.
    pub fn current() -> Option<Runtime> {
        CURRENT.with(|c| c.borrow().clone())
    }

    fn with_current<R>(f: impl FnOnce(&Runtime) -> R) -> R {
        CURRENT.with(|c| {
            let rt = c.borrow();
            let rt = rt.as_ref().expect("no threads runtime on this thread: call from a shard's service or task");
            f(rt)
        })
    }

    pub(crate) fn reactor(&self) -> &Reactor {
        &self.inner.reactor
    }

    /// Nanoseconds since the runtime started (the wheel's clock).
    pub(crate) fn now_ns(&self) -> u64 {
        self.inner.epoch.elapsed().as_nanos() as u64
    }

    pub(crate) fn add_timer(&self, deadline_ns: u64, waker: Waker) -> TimerKey {
        self.inner.wheel.borrow_mut().insert(deadline_ns, waker)
    }

    pub(crate) fn update_timer(&self, key: TimerKey, waker: &Waker) {
        self.inner.wheel.borrow_mut().update_waker(key, waker);
    }

    pub(crate) fn cancel_timer(&self, key: TimerKey) {
        self.inner.wheel.borrow_mut().cancel(key);
    }

    /// Starts `future` as a task of this runtime; it runs at the next [`turn`](Self::turn).
    pub fn spawn(&self, future: impl Future<Output = ()> + 'static) {
        let inner = &self.inner;
        let index = match inner.free.borrow_mut().pop() {
            Some(i) => i,
            None => {
                inner.tasks.borrow_mut().push(None);
                inner.generations.borrow_mut().push(0);
                (inner.tasks.borrow().len() - 1) as u32
            }
        };
        let generation = inner.generations.borrow()[index as usize];
        let waker = Arc::new(TaskWaker {
            key: (index, generation),
            queued: AtomicBool::new(false),
            ready: inner.ready.clone(),
        });
        let task = Rc::new(Task { future: RefCell::new(Some(Box::pin(future))), waker: waker.clone() });
        inner.tasks.borrow_mut()[index as usize] = Some(task);
        inner.live.set(inner.live.get() + 1);
        waker.wake_by_ref();
    }

    /// Tasks not yet finished.
    pub fn tasks(&self) -> usize {
        self.inner.live.get()
    }

    /// Whether there is nothing to drive: no task, no socket, no timer. The shard then parks on
    /// a futex instead of in `epoll_wait`.
    pub fn is_idle(&self) -> bool {
        self.inner.live.get() == 0 && self.inner.reactor.sources() == 0 && self.inner.wheel.borrow().is_empty()
    }

    /// Whether a task is queued to run.
    pub fn has_ready(&self) -> bool {
        !self.inner.ready.is_empty()
    }

    /// Runs the tasks ready now (not those they wake), then collects I/O events, waiting up to
    /// `timeout` when no task is ready (zero: never blocks), then fires due timers and runs the
    /// tasks those woke. Returns the number of task polls.
    pub fn turn(&self, timeout: Duration) -> usize {
        let mut polls = self.run_ready();
        if self.inner.reactor.sources() > 0 || !timeout.is_zero() {
            let mut wait = timeout;
            if let Some(deadline) = self.inner.wheel.borrow().next_deadline_ns() {
                wait = wait.min(Duration::from_nanos(deadline.saturating_sub(self.now_ns())));
            }
            if wait.is_zero() {
                self.inner.reactor.wait(Duration::ZERO);
            } else {
                // Announce the block before the last look at the ready list: a waker on another
                // thread either sees `blocked` and writes the eventfd, or queued before the look.
                self.inner.ready.blocked.store(true, Ordering::SeqCst);
                let wait = if self.inner.ready.is_empty() { wait } else { Duration::ZERO };
                // Unblocked as soon as epoll returns: the tasks its events wake are queued by
                // this thread, which runs them next, so they need no eventfd write.
                let ready = &self.inner.ready;
                self.inner.reactor.wait_then(wait, || ready.blocked.store(false, Ordering::SeqCst));
            }
        }
        let now = self.now_ns();
        self.inner.wheel.borrow_mut().expire(now);
        polls += self.run_ready();
        polls
    }

    /// The waker a parked shard leaves on its doorbell: it ends `epoll_wait` through the eventfd.
    pub fn park_waker(&self) -> Waker {
        Waker::from(self.inner.reactor.notifier())
    }

    /// Polls every task queued now once.
    fn run_ready(&self) -> usize {
        let mut keys = std::mem::take(&mut *self.inner.running.borrow_mut());
        std::mem::swap(&mut keys, &mut *self.inner.ready.keys.lock().unwrap_or_else(|e| e.into_inner()));
        let mut polls = 0;
        for &(index, generation) in &keys {
            let task = {
                let tasks = self.inner.tasks.borrow();
                match tasks.get(index as usize) {
                    Some(Some(t)) if t.waker.key.1 == generation => t.clone(),
                    _ => continue, // finished since it was woken
                }
            };
            task.waker.queued.store(false, Ordering::Release);
            let waker = Waker::from(task.waker.clone());
            let mut cx = Context::from_waker(&waker);
            let Some(mut future) = task.future.borrow_mut().take() else { continue };
            polls += 1;
            match future.as_mut().poll(&mut cx) {
                Poll::Pending => *task.future.borrow_mut() = Some(future),
                Poll::Ready(()) => {
                    drop(future);
                    self.finish(index);
                }
            }
        }
        keys.clear();
        *self.inner.running.borrow_mut() = keys;
        polls
    }

    fn finish(&self, index: u32) {
        let inner = &self.inner;
        inner.tasks.borrow_mut()[index as usize] = None;
        let mut generations = inner.generations.borrow_mut();
        generations[index as usize] = generations[index as usize].wrapping_add(1);
        inner.free.borrow_mut().push(index);
        inner.live.set(inner.live.get() - 1);
    }

    /// Drops every task (closing their sockets); called when the shard stops.
    pub fn shutdown(&self) {
        let tasks: Vec<Rc<Task>> = self.inner.tasks.borrow_mut().drain(..).flatten().collect();
        for t in &tasks {
            drop(t.future.borrow_mut().take());
        }
        self.inner.generations.borrow_mut().clear();
        self.inner.free.borrow_mut().clear();
        self.inner.live.set(0);
    }
}

/// Spawns `future` on the calling thread's runtime.
///
/// # Panics
/// When the thread has no runtime (it is not a threads shard, or outside its service).
pub fn spawn(future: impl Future<Output = ()> + 'static) {
    Runtime::with_current(|rt| rt.spawn(future));
}

/// Completes after `duration` (rounded up to the wheel's 1 ms tick).
pub fn sleep(duration: Duration) -> Sleep {
    Sleep { duration, state: None }
}

/// The future of [`sleep`].
pub struct Sleep {
    duration: Duration,
    state: Option<(u64, TimerKey)>,
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Runtime::with_current(|rt| {
            let now = rt.now_ns();
            match self.state {
                None => {
                    let deadline = now.saturating_add(self.duration.as_nanos() as u64);
                    let key = rt.add_timer(deadline, cx.waker().clone());
                    self.state = Some((deadline, key));
                    Poll::Pending
                }
                Some((deadline, key)) if now < deadline => {
                    rt.update_timer(key, cx.waker());
                    Poll::Pending
                }
                Some((_, key)) => {
                    rt.cancel_timer(key);
                    Poll::Ready(())
                }
            }
        })
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some((_, key)) = self.state.take() {
            if let Some(rt) = Runtime::current() {
                rt.cancel_timer(key);
            }
        }
    }
}

/// Lets the other ready tasks (and the dispatcher) run once before continuing.
pub async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            return Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await;
}
