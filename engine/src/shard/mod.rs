//! Shards: one per chosen core, each owning its agents, registry partition, pools and metrics.
//!
//! - `core`: the `Shard` struct and message routing;
//! - `dispatch`: one dispatcher pass (plain code, no executor) and the halt;
//! - `system`: engine operations a shard performs for others;
//! - `monitors`: watchers, links, signals and the control lane's dispatch;
//! - `timers`: messages sent later;
//! - `runner`: the idle policy and the loop that drives passes;
//! - `doorbell`: waking a parked shard;
//! - `shared`: the per-engine control plane (clock, doorbells, inject queues, gauges).
//!
//! Deadlock rule: a shard never waits for another shard. Every cross-shard interaction is a
//! message; a full ring spills into the sender's bounded backlog; a full backlog hands the message
//! back to the sender. The only waiting is at halt, after every shard stopped sending.

#[cfg(test)]
mod clock_tests;
mod cluster;
pub(crate) mod core;
#[cfg(test)]
mod determinism_tests;
mod dispatch;
pub(crate) mod doorbell;
#[cfg(test)]
mod fault_tests;
mod monitors;
pub(crate) mod runner;
pub(crate) mod shared;
mod system;
#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
mod tests;
mod timers;

pub use self::cluster::{Dispatch, DispatchSink, HostAsk};
pub(crate) use self::core::PendingLink;
/// A shard driven by hand, one pass at a time: an internal, public only for the project's own
/// benchmarks and tests of the dispatcher (no stability promise). Embedders use `Engine`.
#[doc(hidden)]
pub use self::core::Shard;
pub use self::core::ShardLimits;
pub use self::runner::IdlePolicy;
pub(crate) use self::runner::{DriveOutcome, Driver, ParkRequest};
pub use self::shared::{Clock, ManualClock};
pub(crate) use self::system::{SpawnFn, SystemOp};
pub use crate::executor::ExecutorKind;
