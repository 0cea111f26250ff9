//! Nexus engine: a thread-per-core agent engine.
//!
//! One shard runs on each chosen CPU core and owns its agents, its registry partition, its memory
//! pools, its timers and its metrics. Shards share nothing mutable; they talk only over the SPSC
//! ring mesh. See `docs/ARCHITECTURE.md` for the map and the data flow.

#![warn(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub(crate) mod loom;

pub mod agent;
pub mod ask;
pub mod builtin;
pub mod config;
pub mod engine;
pub(crate) mod envelope;
pub mod executor;
pub(crate) mod lap_ring;
pub(crate) mod mailbox;
pub(crate) mod mesh;
pub mod metrics;
pub mod payload;
pub mod placement;
pub mod prelude;
pub mod registry;
pub mod resilience;
// The general SPSC ring: an internal, public only for the project's ring benchmark (no
// stability promise).
#[doc(hidden)]
pub mod ring;
pub mod shard;
pub mod supervision;
pub mod topology;
pub mod trace;

/// The README's code, compiled and run by `cargo test --doc` (the embedding example).
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
