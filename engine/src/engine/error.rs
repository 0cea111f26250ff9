//! `EngineError`: why an engine could not be built, or a host request failed.

use crate::placement::PlacementError;
use crate::ring::RingError;
use crate::topology::TopologyError;

/// Why building or driving an engine failed. Each message ends with a hint.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The machine's topology could not be read.
    #[error("cannot read the CPU topology: {0}")]
    Topology(#[from] TopologyError),
    /// The placement request does not fit the machine.
    #[error("{0}")]
    Placement(#[from] PlacementError),
    /// The ring capacity is invalid.
    #[error("invalid ring capacity: {0}; hint: use a power of two such as 1024")]
    Ring(#[from] RingError),
    /// More shards than an `AgentId` can address.
    #[error("{0} shards requested, at most {max} are supported", max = crate::agent::MAX_SHARDS)]
    TooManyShards(usize),
    /// The requested executor cannot run on this machine.
    #[error("{0}")]
    Executor(#[from] crate::executor::ExecutorError),
    /// A shard thread or executor could not start.
    #[error("shard {shard} failed to start: {reason}")]
    ShardStart {
        /// The shard.
        shard: usize,
        /// What went wrong, with a hint.
        reason: String,
    },
    /// A shard thread panicked.
    #[error("shard {0} panicked; its counters are lost")]
    ShardPanicked(usize),
    /// A host request got no answer in time.
    #[error("shard {0} did not answer in time; hint: it may be overloaded or stopped")]
    Timeout(usize),
    /// A host request could not be queued (the shard's inject queue stayed full).
    #[error("shard {0} is overloaded (its inject queue is full); hint: retry or raise mesh.inject_capacity")]
    Overloaded(usize),
    /// The engine is shutting down.
    #[error("the engine is shutting down")]
    ShuttingDown,
    /// A blocking `EngineHandle` call was made on shard `.0`'s own thread (from inside a
    /// handler): waiting there would freeze the shard until the call's timeout. Debug builds
    /// panic instead.
    #[error("a blocking EngineHandle call was made on shard {0}'s own thread; hint: inside an agent use Ctx::ask, Ctx::spawn and the other Ctx calls, which do not block")]
    BlockingOnShard(usize),
    /// The engine did not become quiescent in time (the last snapshot's accounting attached).
    #[error("the engine did not become quiescent in time ({0}); hint: stop sending first, or wait longer")]
    NotQuiescent(String),
}
