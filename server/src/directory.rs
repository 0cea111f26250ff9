//! The directory: where each shard's server agents live, and each shard's server counters.
//!
//! Every shard fills its own entries while it starts (its partition agent and its ingress
//! agent), before the engine reports that it runs; after `Engine::build` returns, every entry
//! is set and never changes. Agents read it to address their peers on other shards. It is made
//! before the engine knows its shard count, so it has room for `MAX_SHARDS` and learns the
//! count from the first shard that starts.

use crate::front::ConnId;
use crate::ingress::IngressMsg;
use crate::partition::PartMsg;
use crate::stats::{ServerCounters, ShardServerStats};
use nexus_engine::agent::{Addr, AgentId};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::task::{Poll, Waker};

/// A subscriber to a channel: a connection on some shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Subscriber {
    /// The shard whose ingress agent serves the connection.
    pub shard: usize,
    /// The connection on that shard.
    pub conn: ConnId,
}

/// See the module documentation.
#[derive(Debug)]
pub struct Directory {
    shards: AtomicUsize,
    partitions: Vec<OnceLock<AgentId>>,
    ingress: Vec<OnceLock<AgentId>>,
    stats: Vec<ShardServerStats>,
    /// Connections open over every shard (checked against `max_clients`).
    pub connections: AtomicU64,
    /// Set when the server stops: acceptors stop, connections finish and close.
    stopping: AtomicBool,
    /// Whether the acceptors may accept (once every shard started); see
    /// `ServerBuilder::open_later`.
    open: AtomicBool,
    /// The acceptors waiting for the stop ([`Directory::stopped`]), woken by
    /// [`Directory::stop`]: an idle server polls nothing.
    stop_wakers: Mutex<Vec<Waker>>,
}

impl Directory {
    /// An empty directory (room for `MAX_SHARDS`).
    pub fn new() -> Self {
        let shards = nexus_engine::agent::MAX_SHARDS;
        Self {
            shards: AtomicUsize::new(0),
            partitions: (0..shards).map(|_| OnceLock::new()).collect(),
            ingress: (0..shards).map(|_| OnceLock::new()).collect(),
            stats: (0..shards).map(|_| ShardServerStats::default()).collect(),
            connections: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            open: AtomicBool::new(true),
            stop_wakers: Mutex::new(Vec::new()),
        }
    }

    /// Number of shards (0 until a shard started).
    pub fn shards(&self) -> usize {
        self.shards.load(Ordering::Acquire)
    }

    /// Each started shard's server counters.
    pub fn stats(&self) -> &[ShardServerStats] {
        &self.stats[..self.shards()]
    }

    /// Shard `shard`'s server counters.
    pub fn shard_stats(&self, shard: usize) -> &ShardServerStats {
        &self.stats[shard]
    }

    /// Records the engine's shard count (every shard reports the same).
    pub(crate) fn set_shards(&self, shards: usize) -> Result<(), String> {
        match self.shards.compare_exchange(0, shards, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => Ok(()),
            Err(n) if n == shards => Ok(()),
            Err(n) => Err(format!("this server already serves an engine of {n} shards")),
        }
    }

    pub(crate) fn set(&self, shard: usize, partition: AgentId, ingress: AgentId) {
        let _ = self.partitions[shard].set(partition);
        let _ = self.ingress[shard].set(ingress);
    }

    /// Shard `shard`'s partition agent, once that shard started.
    pub(crate) fn partition(&self, shard: usize) -> Option<Addr<PartMsg>> {
        self.partitions.get(shard)?.get().map(|id| Addr::from_id(*id))
    }

    /// Shard `shard`'s ingress agent, once that shard started.
    pub(crate) fn ingress(&self, shard: usize) -> Option<Addr<IngressMsg>> {
        self.ingress.get(shard)?.get().map(|id| Addr::from_id(*id))
    }

    /// Whether every shard has started.
    pub fn complete(&self) -> bool {
        let n = self.shards();
        n > 0
            && self.partitions[..n].iter().all(|p| p.get().is_some())
            && self.ingress[..n].iter().all(|p| p.get().is_some())
    }

    /// Every shard's counters summed.
    pub fn totals(&self) -> ServerCounters {
        let mut total = ServerCounters::default();
        for s in self.stats() {
            total.add(&s.snapshot());
        }
        total
    }

    /// Whether the acceptors may accept connections.
    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    /// Lets (`true`) or keeps (`false`) the acceptors from accepting connections.
    pub(crate) fn set_open(&self, open: bool) {
        self.open.store(open, Ordering::Release);
    }

    /// Whether the server is stopping.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Stops the server: sets the flag, then wakes every task waiting in [`Directory::stopped`]
    /// (from any thread; the executors forward the wake to the task's shard).
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        let wakers = std::mem::take(&mut *self.stop_wakers.lock().unwrap_or_else(|e| e.into_inner()));
        for waker in wakers {
            waker.wake();
        }
    }

    /// Resolves once the server stops, without polling: the task's waker waits in the
    /// directory until [`Directory::stop`] wakes it.
    pub async fn stopped(&self) {
        std::future::poll_fn(|cx| {
            if self.is_stopping() {
                return Poll::Ready(());
            }
            {
                let mut wakers = self.stop_wakers.lock().unwrap_or_else(|e| e.into_inner());
                if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
                    wakers.push(cx.waker().clone());
                }
            }
            // Checked again after registering: a stop in between has either seen the waker or
            // set the flag before this load.
            if self.is_stopping() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await
    }
}

impl Default for Directory {
    fn default() -> Self {
        Self::new()
    }
}
