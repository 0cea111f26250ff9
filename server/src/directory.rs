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
use std::sync::OnceLock;

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
    pub stopping: AtomicBool,
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

    /// Whether the server is stopping.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }
}

impl Default for Directory {
    fn default() -> Self {
        Self::new()
    }
}
