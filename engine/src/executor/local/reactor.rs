//! The epoll reactor of the threads executor: which task waits for which socket.
//!
//! Owns one epoll instance and one eventfd per shard. Sockets are registered edge-triggered
//! for input and output at once ([`Reactor::register`]); each gets a [`Source`] holding the
//! waker of the task reading it and of the task writing it. The I/O types always try the
//! system call first and store their waker only on `EAGAIN`, so with edge triggering no
//! readiness is lost: any change after that `EAGAIN` produces a new event. The eventfd wakes
//! a blocked [`Reactor::wait`] from another thread (a peer shard's doorbell, a waker used
//! off-thread); its counter is drained whenever its event is seen.
//!
//! Invariants: a registered fd stays open until [`Reactor::deregister`] (the I/O types
//! deregister before they close); an event's token is the index of a live source or
//! `WAKE_TOKEN`; everything here runs on the shard's own thread except [`Notifier`].

use std::cell::RefCell;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Waker};
use std::time::Duration;

/// The epoll token of the eventfd.
const WAKE_TOKEN: u64 = u64::MAX;
/// Events taken per `epoll_wait`.
const EVENTS: usize = 64;

/// What a registered socket's tasks wait for.
#[derive(Default)]
pub struct Source {
    read: Option<Waker>,
    write: Option<Waker>,
}

impl Source {
    /// Stores the waker of the task waiting to read (call after `EAGAIN`).
    pub fn wait_read(&mut self, cx: &Context<'_>) {
        store(&mut self.read, cx.waker());
    }

    /// Stores the waker of the task waiting to write (call after `EAGAIN`).
    pub fn wait_write(&mut self, cx: &Context<'_>) {
        store(&mut self.write, cx.waker());
    }
}

fn store(slot: &mut Option<Waker>, waker: &Waker) {
    match slot {
        Some(w) if w.will_wake(waker) => {}
        _ => *slot = Some(waker.clone()),
    }
}

/// Wakes a reactor blocked in [`Reactor::wait`] from any thread.
#[derive(Debug)]
pub struct Notifier {
    eventfd: OwnedFd,
}

impl Notifier {
    /// Makes the reactor's next or current wait return.
    pub fn notify(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to an eventfd this struct owns; a full counter
        // (EAGAIN) already means a pending wake-up, so the result can be ignored.
        let _ = unsafe { libc::write(self.eventfd.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    fn drain(&self) {
        let mut value: u64 = 0;
        // SAFETY: reads at most 8 bytes into a live u64 from a non-blocking eventfd we own.
        let _ = unsafe { libc::read(self.eventfd.as_raw_fd(), (&mut value as *mut u64).cast(), 8) };
    }
}

impl std::task::Wake for Notifier {
    fn wake(self: Arc<Self>) {
        self.notify();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.notify();
    }
}

/// One shard's epoll instance and its sources; see the module docs.
pub struct Reactor {
    epoll: OwnedFd,
    notifier: Arc<Notifier>,
    sources: RefCell<Vec<Option<Rc<RefCell<Source>>>>>,
    free: RefCell<Vec<usize>>,
}

impl Reactor {
    /// Creates the epoll instance and the eventfd.
    ///
    /// # Errors
    /// When the kernel refuses either (out of file descriptors).
    pub fn new() -> io::Result<Self> {
        // SAFETY: plain syscall; the result is checked and owned below.
        let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if epoll < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `epoll` is a new descriptor nobody else owns.
        let epoll = unsafe { OwnedFd::from_raw_fd(epoll) };
        // SAFETY: plain syscall; the result is checked and owned below.
        let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if efd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `efd` is a new descriptor nobody else owns.
        let eventfd = unsafe { OwnedFd::from_raw_fd(efd) };
        let reactor = Self {
            epoll,
            notifier: Arc::new(Notifier { eventfd }),
            sources: RefCell::new(Vec::new()),
            free: RefCell::new(Vec::new()),
        };
        reactor.ctl(libc::EPOLL_CTL_ADD, reactor.notifier.eventfd.as_raw_fd(), libc::EPOLLIN as u32, WAKE_TOKEN)?;
        Ok(reactor)
    }

    /// The handle that wakes this reactor from other threads.
    pub fn notifier(&self) -> Arc<Notifier> {
        self.notifier.clone()
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        let mut event = libc::epoll_event { events, u64: token };
        // SAFETY: `event` lives across the call; epoll and fd are open descriptors.
        let rc = unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), op, fd, &mut event) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Registers `fd` (non-blocking) for edge-triggered input and output.
    ///
    /// # Errors
    /// When epoll refuses the descriptor.
    pub fn register(&self, fd: RawFd) -> io::Result<(usize, Rc<RefCell<Source>>)> {
        let source = Rc::new(RefCell::new(Source::default()));
        let index = {
            let mut sources = self.sources.borrow_mut();
            match self.free.borrow_mut().pop() {
                Some(i) => {
                    sources[i] = Some(source.clone());
                    i
                }
                None => {
                    sources.push(Some(source.clone()));
                    sources.len() - 1
                }
            }
        };
        let events = (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32;
        if let Err(e) = self.ctl(libc::EPOLL_CTL_ADD, fd, events, index as u64) {
            self.sources.borrow_mut()[index] = None;
            self.free.borrow_mut().push(index);
            return Err(e);
        }
        Ok((index, source))
    }

    /// Removes `fd` (registered as `index`); call before closing it.
    pub fn deregister(&self, fd: RawFd, index: usize) {
        let _ = self.ctl(libc::EPOLL_CTL_DEL, fd, 0, 0);
        let mut sources = self.sources.borrow_mut();
        if let Some(slot) = sources.get_mut(index) {
            if slot.take().is_some() {
                self.free.borrow_mut().push(index);
            }
        }
    }

    /// Registered sockets.
    pub fn sources(&self) -> usize {
        self.sources.borrow().len() - self.free.borrow().len()
    }

    /// Waits up to `timeout` (zero: just looks) for events and wakes the tasks they concern.
    /// Returns the number of tasks woken.
    pub fn wait(&self, timeout: Duration) -> usize {
        self.wait_then(timeout, || {})
    }

    /// [`Self::wait`], calling `awake` once `epoll_wait` returned and before any task is woken:
    /// the runtime clears its "blocked" mark there, so the wakes the events make on this very
    /// thread do not write the eventfd (one `write` and one spurious wake-up per event).
    pub fn wait_then(&self, timeout: Duration, awake: impl FnOnce()) -> usize {
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; EVENTS];
        // Round up so a sub-millisecond timeout still sleeps instead of spinning.
        let ms = if timeout.is_zero() { 0 } else { timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32 };
        // SAFETY: `events` is a live buffer of EVENTS entries; epoll is open.
        let n = unsafe { libc::epoll_wait(self.epoll.as_raw_fd(), events.as_mut_ptr(), EVENTS as i32, ms) };
        awake();
        if n <= 0 {
            return 0; // timeout, or EINTR: the caller loops anyway
        }
        let mut woken = 0;
        for event in &events[..n as usize] {
            let token = event.u64;
            if token == WAKE_TOKEN {
                self.notifier.drain();
                continue;
            }
            let source = self.sources.borrow().get(token as usize).cloned().flatten();
            let Some(source) = source else { continue };
            let flags = event.events as libc::c_int;
            let (read, write) = {
                let mut s = source.borrow_mut();
                let hup = flags & (libc::EPOLLHUP | libc::EPOLLERR) != 0;
                let read = (flags & (libc::EPOLLIN | libc::EPOLLRDHUP) != 0 || hup).then(|| s.read.take()).flatten();
                let write = (flags & libc::EPOLLOUT != 0 || hup).then(|| s.write.take()).flatten();
                (read, write)
            };
            for w in [read, write].into_iter().flatten() {
                w.wake();
                woken += 1;
            }
        }
        woken
    }
}
