//! How a bench starts an engine ([`EngineSettings`]), where its agents go ([`Placement`]), and
//! the small helpers every workload shares (host asks with a timeout scaled to the work, the
//! clean shutdown check).
//!
//! Bench engines spin long enough that a shard never parks during a busy exchange
//! ([`BENCH_SPIN_BEFORE_PARK`]); only the wake workload configures a short spin on purpose.
//! The topology is read once per `EngineSettings` and handed to every engine built from it, so
//! a run that starts many engines reads the machine once.

use crate::BenchError;
use nexus_engine::agent::{Addr, SpawnPlacement};
use nexus_engine::ask::{AskError, ReplyTo};
use nexus_engine::engine::{Engine, EngineHandle};
use nexus_engine::placement::{self, PlacementPlan, PlacementRequest};
use nexus_engine::shard::{ExecutorKind, IdlePolicy, ShardLimits};
use nexus_engine::topology::Topology;
use std::time::Duration;

/// Spin time of bench shards before they park: long enough that no shard parks during an
/// exchange (a park would add a futex wake to the figure being measured).
pub const BENCH_SPIN_BEFORE_PARK: Duration = Duration::from_millis(50);

/// The system name recorded for figures of this engine.
pub const SYSTEM: &str = "nexus";

/// Where a workload's agents live.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Placement {
    /// Every agent on shard 0: messages never leave the shard.
    Local,
    /// Agents spread over shards so that the measured messages cross shards.
    Cross,
}

impl Placement {
    /// Both placements, local first.
    pub const BOTH: [Placement; 2] = [Placement::Local, Placement::Cross];

    /// `"local"` or `"cross"` (the `placement` field of a record).
    pub const fn as_str(self) -> &'static str {
        match self {
            Placement::Local => "local",
            Placement::Cross => "cross",
        }
    }

    /// The shard of the `k`-th agent of a workload: shard 0 for `Local`, round robin over
    /// `shards` for `Cross`.
    pub fn shard_of(self, k: usize, shards: usize) -> usize {
        match self {
            Placement::Local => 0,
            Placement::Cross => k % shards.max(1),
        }
    }

    /// Checks that `shards` allows this placement (cross needs two shards).
    pub fn check(self, workload: &'static str, shards: usize) -> Result<(), BenchError> {
        if self == Placement::Cross && shards < 2 {
            return Err(BenchError::params(
                workload,
                format!("placement cross needs at least 2 shards, the engine has {shards}; hint: use --shards 2"),
            ));
        }
        Ok(())
    }
}

/// How a bench engine is built. `bench` gives the settings `nexus bench` uses, `test` the ones
/// unit tests use (plain threads, unpinned, short spin).
#[derive(Clone, Debug)]
pub struct EngineSettings {
    /// Number of shards.
    pub shards: usize,
    /// The executor running each shard.
    pub executor: ExecutorKind,
    /// Pin shard threads to their CPUs.
    pub pin_threads: bool,
    /// Allow more shards than cores.
    pub oversubscribe: bool,
    /// Idle policy (spin, yield, park).
    pub idle: IdlePolicy,
    /// Per-shard limits.
    pub limits: ShardLimits,
    /// Envelopes per ring.
    pub ring_capacity: usize,
    /// The machine model, read once; `None` reads it at each build.
    pub topology: Option<Topology>,
}

impl EngineSettings {
    /// Bench settings: glommio, pinned shards, a spin of [`BENCH_SPIN_BEFORE_PARK`].
    pub fn bench(shards: usize) -> Self {
        Self {
            shards,
            executor: ExecutorKind::Glommio,
            pin_threads: true,
            oversubscribe: false,
            idle: IdlePolicy { spin_before_park: BENCH_SPIN_BEFORE_PARK, ..IdlePolicy::default() },
            limits: ShardLimits::default(),
            ring_capacity: 1024,
            topology: None,
        }
    }

    /// Test settings: plain threads, unpinned, the default short spin, so tests running side by
    /// side on a small machine do not fight over cores.
    pub fn test(shards: usize) -> Self {
        Self {
            executor: ExecutorKind::Threads,
            pin_threads: false,
            idle: IdlePolicy { spin_before_park: Duration::from_micros(50), ..IdlePolicy::default() },
            ..Self::bench(shards)
        }
    }

    /// Reads the machine once and keeps the model for every later build.
    pub fn detect_topology(&mut self) -> Result<&Topology, BenchError> {
        let topology = match self.topology.take() {
            Some(t) => t,
            None => Topology::detect()?,
        };
        Ok(self.topology.insert(topology))
    }

    /// The placement plan these settings give (without starting anything).
    pub fn plan(&mut self) -> Result<PlacementPlan, BenchError> {
        let request = PlacementRequest::shards(self.shards).oversubscribe(self.oversubscribe);
        let topology = self.detect_topology()?;
        Ok(placement::plan(topology, &request)?)
    }

    /// Starts an engine with these settings.
    pub fn build(&self) -> Result<Engine, BenchError> {
        let mut builder = Engine::builder()
            .shards(self.shards)
            .executor(self.executor)
            .idle(self.idle)
            .limits(self.limits.clone())
            .ring_capacity(self.ring_capacity)
            .oversubscribe(self.oversubscribe)
            .pin_threads(self.pin_threads);
        if let Some(t) = &self.topology {
            builder = builder.topology(t.clone());
        }
        Ok(builder.build()?)
    }

    /// The same settings with another idle policy.
    pub fn with_idle(&self, idle: IdlePolicy) -> Self {
        Self { idle, ..self.clone() }
    }
}

/// Shuts `engine` down and checks that nothing was lost: the engine drained, every counted
/// message was delivered or counted as a dead letter, and there were no dead letters at all
/// (a bench whose messages die measures less work than it claims).
pub fn shutdown(engine: Engine, workload: &'static str) -> Result<(), BenchError> {
    let report = engine.shutdown()?;
    let totals = report.stats.totals();
    if !report.drained {
        return Err(BenchError::check(workload, "the engine did not drain at shutdown"));
    }
    if !report.stats.accounted() {
        return Err(BenchError::check(
            workload,
            format!(
                "accounting: sent {} != delivered {} + dead letters {}",
                totals.sent,
                totals.delivered,
                totals.dead_letters_total()
            ),
        ));
    }
    if totals.dead_letters_total() != 0 {
        let reasons: Vec<String> = nexus_engine::metrics::DeadLetterReason::ALL
            .iter()
            .filter(|r| totals.dead(**r) > 0)
            .map(|r| format!("{r}: {}", totals.dead(*r)))
            .collect();
        return Err(BenchError::check(workload, format!("dead letters: {}", reasons.join(", "))));
    }
    Ok(())
}

/// A timeout for a host ask covering `units` of work at `per_unit` each, plus 10 s of slack:
/// a stuck workload fails in bounded time without cutting a slow machine short.
pub fn timeout_for(units: u64, per_unit: Duration) -> Duration {
    Duration::from_secs(10) + per_unit.saturating_mul(u32::try_from(units).unwrap_or(u32::MAX))
}

/// Spawns one workload agent where `placement` says, naming the workload in the error.
pub fn spawn_on<A, F>(
    handle: &EngineHandle,
    workload: &'static str,
    shard: usize,
    factory: F,
) -> Result<Addr<A::Msg>, BenchError>
where
    A: nexus_engine::agent::Agent,
    F: FnOnce() -> A + Send + 'static,
{
    handle.spawn(SpawnPlacement::Shard(shard), factory).map_err(|source| BenchError::Spawn { workload, source })
}

/// Asks `to` from the host and waits up to `timeout`, naming the workload in the error.
pub fn ask<M, R>(
    handle: &EngineHandle,
    workload: &'static str,
    what: &'static str,
    to: Addr<M>,
    timeout: Duration,
    make: impl FnOnce(ReplyTo<R>) -> M,
) -> Result<R, BenchError>
where
    M: Send + 'static,
    R: Send + 'static,
{
    handle.ask(to, timeout, make).map_err(|source: AskError| BenchError::Ask { workload, what, source })
}

/// Sends `msg` to `to` from the host, naming the workload in the error.
pub fn send<M: Send + 'static>(
    handle: &EngineHandle,
    workload: &'static str,
    what: &'static str,
    to: Addr<M>,
    msg: M,
) -> Result<(), BenchError> {
    handle.send(to, msg).map_err(|e| BenchError::Send { workload, what, reason: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placements_check_shards() {
        assert_eq!(Placement::Cross.as_str(), "cross");
        assert!(Placement::Local.check("x", 1).is_ok());
        let err = Placement::Cross.check("x", 1).unwrap_err();
        assert!(err.is_usage() && err.to_string().contains("--shards 2"), "{err}");
        assert!(timeout_for(u64::MAX, Duration::from_secs(1)) > Duration::from_secs(10));
    }
}
