//! Waiting for the log: the shard-local [`Durability`] handle (how far the writer synced, and a
//! future that waits for an LSN), and [`HeldReplies`], the answers a partition holds under
//! `fsync = "always"` until a sync covers their writes.
//!
//! Invariants: held replies are released in LSN order, each exactly once, as soon as the
//! durable LSN covers them (or with an error once the log has failed); a waiter is woken by
//! [`Durability::wake`], which the shard calls on each notice from its writer.

use super::writer::LogShared;
use crate::resp::Value;
use nexus_engine::agent::Ctx;
use nexus_engine::ask::ReplyTo;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

/// The log could not be written: a write waiting for it will never be durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("IOERR the append-only log could not be written; see the server log")]
pub struct LogFailed;

/// A shard's view of its log's durability; see the module documentation.
#[derive(Debug)]
pub struct Durability {
    shared: Arc<LogShared>,
    waiters: RefCell<Vec<(u64, Waker)>>,
}

impl Durability {
    /// The handle over what `shared`'s writer publishes.
    pub fn new(shared: Arc<LogShared>) -> Rc<Self> {
        Rc::new(Self { shared, waiters: RefCell::new(Vec::new()) })
    }

    /// Sets what the writer calls after each batch (once; later calls change nothing).
    pub fn set_notify(&self, notify: Box<dyn Fn() + Send + Sync>) {
        let _ = self.shared.notify.set(notify);
    }

    /// The last LSN a sync covers (under `fsync = "no"`: the last written).
    pub fn durable_lsn(&self) -> u64 {
        self.shared.durable.load(Ordering::Acquire)
    }

    /// Compactions completed since the shard started.
    pub fn rewrites(&self) -> u64 {
        self.shared.rewrites.load(Ordering::Relaxed)
    }

    /// Whether the log failed (writes since are not durable).
    pub fn failed(&self) -> bool {
        self.shared.failed.load(Ordering::Acquire)
    }

    /// Asks the writer to notify the shard after its next batch (the partition holds answers:
    /// the io_uring writer wakes this handle's waiters itself, but only notifies the partition
    /// when asked; the writer thread notifies after every batch under `always` anyway).
    pub fn want_notice(&self) {
        self.shared.wanted.store(true, Ordering::SeqCst);
    }

    /// Waits until `lsn` is durable.
    pub fn wait_durable(self: &Rc<Self>, lsn: u64) -> WaitDurable {
        WaitDurable { durability: self.clone(), lsn }
    }

    /// Wakes the waiters the durable LSN now covers (all of them once the log failed).
    pub fn wake(&self) {
        let durable = self.durable_lsn();
        let failed = self.failed();
        let mut waiters = self.waiters.borrow_mut();
        let mut i = 0;
        while i < waiters.len() {
            if failed || waiters[i].0 <= durable {
                waiters.swap_remove(i).1.wake();
            } else {
                i += 1;
            }
        }
    }
}

/// The future of [`Durability::wait_durable`].
#[derive(Debug)]
pub struct WaitDurable {
    durability: Rc<Durability>,
    lsn: u64,
}

impl Future for WaitDurable {
    type Output = Result<(), LogFailed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let d = &self.durability;
        if d.durable_lsn() >= self.lsn {
            return Poll::Ready(Ok(()));
        }
        if d.failed() {
            return Poll::Ready(Err(LogFailed));
        }
        let mut waiters = d.waiters.borrow_mut();
        if !waiters.iter().any(|(lsn, w)| *lsn == self.lsn && w.will_wake(cx.waker())) {
            waiters.push((self.lsn, cx.waker().clone()));
        }
        Poll::Pending
    }
}

/// Answers held until their writes are durable, in LSN order.
#[derive(Default)]
pub struct HeldReplies {
    queue: VecDeque<(u64, ReplyTo<Value>, Value)>,
}

impl HeldReplies {
    /// Holds `value` for `token` until `lsn` is durable.
    pub fn hold(&mut self, lsn: u64, token: ReplyTo<Value>, value: Value) {
        self.queue.push_back((lsn, token, value));
    }

    /// Answers held.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Sends the answers `durability` now covers (an error for all once the log failed).
    pub fn release(&mut self, durability: &Durability, ctx: &mut Ctx<'_>) {
        let durable = durability.durable_lsn();
        let failed = durability.failed();
        while self.queue.front().is_some_and(|(lsn, _, _)| failed || *lsn <= durable) {
            if let Some((lsn, token, value)) = self.queue.pop_front() {
                let value = if lsn <= durable { value } else { Value::error(LogFailed.to_string()) };
                ctx.reply(token, value);
            }
        }
    }
}
