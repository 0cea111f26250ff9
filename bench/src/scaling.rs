//! `scaling`: counting on every shard at once, and the aggregate rate it reaches.
//!
//! With N shards, shard `s` runs `producers_per_shard` counting [`Producer`]s, each sending
//! `messages` increments to its own [`Tally`] on shard `(s + 1) % N` (cross-shard whenever
//! N > 1), so every shard both sends over one ring and receives over another, and every ring
//! of the ring-shaped pattern carries traffic at the same time. The host asks every producer to
//! run from its own thread, all released together, and waits for every answer.
//!
//! `msgs_per_s` = all increments / wall time from the release to the last answer (host
//! wake-ups included, a few tens of µs against runs of tens of ms, so the figure errs low).
//! `msgs_per_s_per_shard` divides it by N: flat means linear scaling.
//!
//! Checks: every tally counted exactly `messages` increments summing to n(n+1)/2.

use crate::counting::{self, Producer, Tally};
use crate::setup;
use crate::stats;
use crate::BenchError;
use nexus_engine::engine::EngineHandle;
use std::sync::Barrier;
use std::time::{Duration, Instant};

const WORKLOAD: &str = "scaling";

/// What one scaling run does.
#[derive(Clone, Debug)]
pub struct ScalingParams {
    /// Increments each producer sends.
    pub messages: u64,
    /// Producers (and tallies) per shard.
    pub producers_per_shard: usize,
    /// Sends per producer turn.
    pub burst: u32,
}

impl Default for ScalingParams {
    fn default() -> Self {
        Self { messages: 1_000_000, producers_per_shard: 1, burst: 256 }
    }
}

/// What one scaling run measured.
#[derive(Clone, Copy, Debug)]
pub struct ScalingOutcome {
    /// Shards of the engine.
    pub shards: usize,
    /// Increments counted over all tallies (checked).
    pub messages: u64,
    /// From the release to the last answer.
    pub elapsed: Duration,
    /// Aggregate increments per second.
    pub msgs_per_s: f64,
}

/// Runs every producer of every shard at once on a running engine and checks every total.
pub fn run(handle: &EngineHandle, params: &ScalingParams) -> Result<ScalingOutcome, BenchError> {
    if params.messages == 0 || params.producers_per_shard == 0 {
        return Err(BenchError::params(WORKLOAD, "messages and producers per shard must be at least 1"));
    }
    let shards = handle.shards();
    let mut producers = Vec::with_capacity(shards * params.producers_per_shard);
    for shard in 0..shards {
        for _ in 0..params.producers_per_shard {
            let tally = setup::spawn_on(handle, WORKLOAD, (shard + 1) % shards, Tally::default)?;
            let burst = params.burst;
            let producer = setup::spawn_on(handle, WORKLOAD, shard, move || Producer::new(tally, burst))?;
            producers.push((producer, tally));
        }
    }
    let n = params.messages;
    let release = Barrier::new(producers.len() + 1);
    let (started, results) = std::thread::scope(|scope| {
        let waiters: Vec<_> = producers
            .iter()
            .map(|&(producer, _)| {
                let release = &release;
                scope.spawn(move || {
                    release.wait();
                    counting::run_producer(handle, WORKLOAD, producer, n)
                })
            })
            .collect();
        release.wait();
        let started = Instant::now();
        let results: Vec<_> = waiters
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|_| Err(BenchError::check(WORKLOAD, "a host thread panicked"))))
            .collect();
        (started, results)
    });
    let elapsed = started.elapsed();
    for result in results {
        result?;
    }
    for (producer, tally) in producers {
        handle.stop(producer.id())?;
        handle.stop(tally.id())?;
    }
    let total = n * (shards * params.producers_per_shard) as u64;
    Ok(ScalingOutcome { shards, messages: total, elapsed, msgs_per_s: stats::per_second(total, elapsed) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::setup::EngineSettings;

    #[test]
    fn every_shard_counts_every_increment() {
        for shards in [1, 3] {
            let engine = EngineSettings { oversubscribe: true, ..EngineSettings::test(shards) }.build().unwrap();
            let handle = engine.handle();
            let params = ScalingParams { messages: 2_000, producers_per_shard: 2, burst: 300 };
            let out = run(&handle, &params).unwrap();
            assert_eq!((out.shards, out.messages), (shards, 2_000 * 2 * shards as u64));
            assert!(out.msgs_per_s > 0.0);
            setup::shutdown(engine, WORKLOAD).unwrap();
        }
    }
}
