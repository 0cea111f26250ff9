//! Nexus deterministic simulation: the same agent code, every shard of an engine on one
//! thread, time and ordering owned by the simulator, so that a failure found once replays
//! forever from its seed.
//!
//! Built on the engine's hand-driven shards (`Shard::cluster_with_clock`, `Shard::pass`):
//! - **virtual time**: the shards read a `ManualClock`; when no shard has work, time jumps to
//!   the earliest deadline (a timer, an ask's deadline, a supervisor's backoff), and nothing
//!   sleeps;
//! - **seeded scheduling**: a seeded generator picks which shard runs its next pass
//!   ([`Mode::Random`]), or a PCT-style priority order with seeded change points
//!   ([`Mode::Pct`]); per-ring FIFO order is the engine's own;
//! - **faults**, seeded (see [`Faults`]): shards left unscheduled for a while (stalls), timers
//!   and deadlines that fire late (jitter), sends that stay invisible to their receiver until
//!   the sender's next pass (delay), agents stopped at random points (kill), and tiny mailbox
//!   and ring capacities (pressure);
//!   scenarios add their own (handler panics); the number of envelopes a pass takes from each
//!   ring is drawn for every pass;
//! - **a trace** of every dispatch (shard, agent, message type, virtual time) whose running
//!   hash is the run's fingerprint; the last events are kept for the report of a failure.
//!
//! [`run`] runs one seed of a [`Scenario`]; [`check_determinism`] runs it twice and fails on
//! any divergence of the fingerprint.
//!
//! Invariant: a run is a function of (scenario, seed, mode, faults): no wall clock, no thread,
//! no hash seed reaches what the agents see. (Names are the exception: a name's owning shard
//! follows the process's registry key, so scenarios that register names must be run with
//! `NEXUS_HASH_SEED` set; the built-in scenarios use none.)

#![warn(missing_docs)]

mod rng;
mod runner;
mod scenario;
pub mod scenarios;
mod trace;

pub use rng::SimRng;
pub use runner::{check_determinism, run, Faults, FaultsError, Mode, Outcome, SimConfig};
pub use scenario::{Instance, Killable, Scenario, World};
pub use trace::TraceEvent;

/// Panics injected by scenarios start with this text; [`quiet_injected_panics`] keeps them off
/// stderr.
pub const INJECTED: &str = "sim: injected";

/// The exit reason's text of an agent the `kill` fault stopped.
pub const KILLED: &str = "sim: killed";

/// Installs a panic hook that stays silent for panics whose message starts with [`INJECTED`]
/// and reports every other panic as before. For a program (the `nexus sim` command, a test
/// binary) that runs thousands of seeds, each with its planned panics.
pub fn quiet_injected_panics() {
    nexus_engine::supervision::quiet_panics_starting_with(INJECTED);
}
