//! Workloads shared by the criterion benches, the tests and `nexus bench`.
//!
//! Every workload is library code: a function that takes a small params struct (whose
//! `Default` is the Savina-style size), runs the workload, **checks its own result** (counts,
//! sums, ids) and returns measured figures, or a [`BenchError`] when the check fails. Tests run
//! them tiny; benches and `nexus bench` run them full size; nothing measures a loop that
//! ignores its parameters.
//!
//! - [`setup`]: how an engine is started for a bench ([`EngineSettings`]) and [`Placement`];
//! - [`probe`]: the physical limit, two pinned threads bouncing one cache line;
//! - [`pingpong`]: round-trip latency between two agents; [`wake`]: waking a parked shard;
//! - [`counting`]: one producer, one counter, a million increments;
//! - [`thread_ring`]: a token passed around a ring of agents;
//! - [`spawn`]: spawn and stop cost, and memory per idle agent;
//! - [`registry`]: local name lookups at growing sizes;
//! - [`scaling`]: counting on every shard at once, the aggregate rate;
//! - [`dispatch`]: local send plus dispatch on a shard driven by hand (criterion only);
//! - [`restart`]: panic-to-next-message time of a supervised agent;
//! - [`chaos`]: thousands of supervised agents under ask traffic with injected panics;
//! - [`suite`]: runs a set of workloads the way `nexus bench` does and returns [`Record`]s;
//! - [`report`]: the records, as a table or as JSON lines;
//! - [`targets`]: the message-path targets, judged met or not from a run's records.
//!
//! Host threads drive workloads through `EngineHandle::ask`: the host asks a driver agent to
//! run, the agent times the work itself with `std::time::Instant` (never the engine's cached
//! clock) and answers when done. The host only waits, so its wake-up latency is never part of a
//! figure.

pub mod ask;
pub mod big;
pub mod c2c;
pub mod chameneos;
pub mod chaos;
pub mod coord;
pub mod counting;
pub mod dispatch;
mod error;
pub mod fan_in;
pub mod fib;
pub mod fork_join;
#[cfg(feature = "peers")]
pub mod peers;
pub mod pingpong;
pub mod plot;
pub mod probe;
pub mod registry;
pub mod report;
pub mod restart;
pub mod scaling;
pub mod setup;
pub mod spawn;
pub mod stats;
pub mod suite;
pub mod targets;
pub mod thread_ring;
pub mod wake;

pub use error::BenchError;
pub use report::Record;
pub use setup::{EngineSettings, Placement};
pub use stats::{median, Percentiles, Spread};
