//! `BenchError`: why a workload could not run, or ran and failed its own check.
//!
//! A failed check is never a warning: a workload whose counts or sums are wrong measured
//! something other than what it claims, so its figures must not be printed.

use nexus_engine::agent::SpawnError;
use nexus_engine::ask::AskError;
use nexus_engine::engine::EngineError;
use nexus_engine::placement::{BindError, PlacementError};
use nexus_engine::topology::TopologyError;

/// Why a workload failed. Each message says which workload and, where it helps, a hint.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The engine could not be started or shut down.
    #[error("engine: {0}")]
    Engine(#[from] EngineError),
    /// The machine's topology could not be read (for the probe's CPUs).
    #[error("topology: {0}")]
    Topology(#[from] TopologyError),
    /// The requested shards do not fit the machine.
    #[error("placement: {0}")]
    Placement(#[from] PlacementError),
    /// A probe thread could not be pinned.
    #[error("probe: cannot pin a thread: {0}")]
    Pin(#[from] BindError),
    /// A workload agent could not be spawned.
    #[error("{workload}: cannot spawn an agent: {source}")]
    Spawn {
        /// The workload.
        workload: &'static str,
        /// Why.
        source: SpawnError,
    },
    /// The host's request to a driver agent got no answer.
    #[error("{workload}: {what}: {source}")]
    Ask {
        /// The workload.
        workload: &'static str,
        /// What was asked.
        what: &'static str,
        /// Why it failed.
        source: AskError,
    },
    /// A host send was refused.
    #[error("{workload}: cannot send {what}: {reason}")]
    Send {
        /// The workload.
        workload: &'static str,
        /// What was sent.
        what: &'static str,
        /// Why (the engine's message).
        reason: String,
    },
    /// The workload ran but its result is wrong.
    #[error("{workload}: check failed: {what}")]
    Check {
        /// The workload.
        workload: &'static str,
        /// What was expected and what was found.
        what: String,
    },
    /// The parameters cannot be run as asked (e.g. a cross-shard run on one shard).
    #[error("{workload}: {what}")]
    Params {
        /// The workload.
        workload: &'static str,
        /// What is wrong, with a hint.
        what: String,
    },
    /// An output file (a chart, an SVG) could not be drawn or written.
    #[error("{what}: {path}: {reason}")]
    Output {
        /// What was being written.
        what: &'static str,
        /// The file or directory.
        path: String,
        /// Why it failed.
        reason: String,
    },
    /// Resident memory could not be read.
    #[error("cannot read /proc/self/statm: {0}; hint: bytes_per_agent needs Linux procfs")]
    Memory(#[from] std::io::Error),
}

impl BenchError {
    /// A failed check of `workload`.
    pub fn check(workload: &'static str, what: impl Into<String>) -> Self {
        Self::Check { workload, what: what.into() }
    }

    /// Unusable parameters for `workload`.
    pub fn params(workload: &'static str, what: impl Into<String>) -> Self {
        Self::Params { workload, what: what.into() }
    }

    /// Whether this error is about the parameters (a usage error) rather than the run.
    pub fn is_usage(&self) -> bool {
        matches!(self, Self::Params { .. } | Self::Placement(_))
    }
}
