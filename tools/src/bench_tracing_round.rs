//! One round of `nexus bench tracing`, run in a child process: one workload, once, at one
//! sampling probability, printed as one JSON line (a [`RoundFigure`]) on stdout.
//!
//! `nexus bench tracing --child-round counting|pingpong --child-sample P --child-size N
//! [--shards N] [--executor glommio|threads]` (hidden options). The parent,
//! [`crate::bench_tracing`], runs it with this binary for the traced variants and with
//! `--untraced-bin` for the baseline, so every variant pays the same process start and runs in
//! a fresh process.
//!
//! 1. Start an engine with the bench settings (`EngineSettings::bench`: pinned shards, the
//!    engine's default tracing config: sampling 0, [`SPAN_BUFFER`] spans per shard buffer), the
//!    same for every variant, then set the sampling with `TraceHandle::set_sample` (shards take
//!    it up at their next pass; the host's sends read it at once).
//! 2. Start a collector thread that drains every shard's span buffer each [`DRAIN_EVERY`] and
//!    throws the spans away, as an exporter would take them off the shards. It runs in every
//!    variant, sampling 0 and the untraced build included, so each pays the same; a buffer
//!    that fills between two drains drops new spans and counts them.
//! 3. Warm up with the workload at a tenth of the size (pools, caches, the first spans), then
//!    run it at `--child-size`: `counting` cross-shard (increments per second) or `pingpong`
//!    cross-shard (round trips per second), both from nexus-bench, with their own checks.
//! 4. Stop the collector, shut the engine down with the clean-shutdown check, and print the
//!    figure with the spans recorded and dropped during the measured run and whether this
//!    build has tracing's hooks (`nexus_engine::trace::COMPILED_IN`).
//!
//! Invariant: nothing but that one JSON line goes to stdout; errors go to stderr as one line.

use crate::Failure;
use nexus_bench::counting::{self, CountingParams};
use nexus_bench::pingpong::{self, PingPongParams};
use nexus_bench::{BenchError, EngineSettings, Placement};
use nexus_engine::engine::EngineHandle;
use nexus_engine::shard::ExecutorKind;
use nexus_engine::trace::TraceHandle;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the collector drains the span buffers.
pub const DRAIN_EVERY: Duration = Duration::from_millis(10);
/// Spans each shard's buffer holds (the engine's default `TraceConfig`).
pub const SPAN_BUFFER: usize = 65_536;
/// Sends per producer turn in counting (the suite's).
const COUNTING_BURST: u32 = 256;
/// Unrecorded round trips before pingpong's recorded ones (the suite's).
const PINGPONG_WARMUP: u64 = 1_000;

/// The workloads `nexus bench tracing` measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TracedWorkload {
    /// A producer on shard 0 sends increments to a counter on shard 1: throughput.
    Counting,
    /// One message in flight between shard 0 and shard 1: round trips per second.
    Pingpong,
}

impl TracedWorkload {
    /// Both, in the order they run each round.
    pub const BOTH: [TracedWorkload; 2] = [TracedWorkload::Counting, TracedWorkload::Pingpong];

    /// The name, as records and `--child-round` spell it.
    pub const fn name(self) -> &'static str {
        match self {
            TracedWorkload::Counting => "counting",
            TracedWorkload::Pingpong => "pingpong",
        }
    }

    /// The unit of its figure.
    pub const fn unit(self) -> &'static str {
        match self {
            TracedWorkload::Counting => "msg/s",
            TracedWorkload::Pingpong => "round trips/s",
        }
    }

    /// The messages of a measured run of `size`: counting's increments, pingpong's pings and
    /// pongs (its unrecorded warm-up trips included).
    pub const fn messages(self, size: u64) -> u64 {
        match self {
            TracedWorkload::Counting => size,
            TracedWorkload::Pingpong => 2 * (size + if size < PINGPONG_WARMUP { size } else { PINGPONG_WARMUP }),
        }
    }

    /// What its size counts.
    pub const fn counts(self) -> &'static str {
        match self {
            TracedWorkload::Counting => "increments",
            TracedWorkload::Pingpong => "round trips",
        }
    }
}

/// What one round reports: the child's one line of JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoundFigure {
    /// `counting` or `pingpong`.
    pub workload: String,
    /// The sampling probability the round ran at.
    pub sample: f64,
    /// Whether the build that ran it has tracing's hooks.
    pub compiled_in: bool,
    /// Increments or round trips measured.
    pub size: u64,
    /// The measured run's time.
    pub elapsed_ns: u64,
    /// Increments or round trips per second.
    pub per_s: f64,
    /// Spans recorded into the buffers during the measured run.
    pub recorded: u64,
    /// Spans dropped (a full buffer) during the measured run.
    pub dropped: u64,
}

/// What a round runs (checked by `bench_tracing::check`).
#[derive(Clone, Debug, PartialEq)]
pub struct RoundArgs {
    /// The workload.
    pub workload: TracedWorkload,
    /// The sampling probability, 0 to 1.
    pub sample: f64,
    /// Increments or round trips of the measured run.
    pub size: u64,
    /// Engine shards (at least 2).
    pub shards: usize,
    /// The executor, resolved by the parent.
    pub executor: ExecutorKind,
}

fn failed(e: BenchError) -> Failure {
    Failure::runtime(format!("bench tracing: {e}"))
}

/// Runs one round; see the module documentation.
pub fn run_round(args: &RoundArgs) -> Result<(), Failure> {
    let (settings, _, _) = engine_settings(args.shards, args.executor)?;
    let engine = settings.build().map_err(failed)?;
    let handle = engine.handle();
    let tracing = handle.tracing();
    tracing.set_sample(args.sample);
    let collector = Collector::start(tracing.clone())?;
    let measured = warm_and_measure(&handle, &tracing, args);
    collector.stop();
    let (elapsed, recorded, dropped) = measured?;
    nexus_bench::setup::shutdown(engine, args.workload.name()).map_err(failed)?;
    let figure = RoundFigure {
        workload: args.workload.name().to_string(),
        sample: args.sample,
        compiled_in: nexus_engine::trace::COMPILED_IN,
        size: args.size,
        elapsed_ns: u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX),
        per_s: per_second(args.size, elapsed),
        recorded,
        dropped,
    };
    let line = serde_json::to_string(&figure).map_err(|e| Failure::runtime(format!("bench tracing: {e}")))?;
    println!("{line}");
    Ok(())
}

/// The warm-up run, then the measured one: its time and the spans recorded and dropped
/// during it.
fn warm_and_measure(
    handle: &EngineHandle,
    tracing: &TraceHandle,
    args: &RoundArgs,
) -> Result<(Duration, u64, u64), Failure> {
    run_workload(handle, args.workload, (args.size / 10).max(1)).map_err(failed)?;
    let (recorded, dropped) = (tracing.recorded(), tracing.dropped());
    let elapsed = run_workload(handle, args.workload, args.size).map_err(failed)?;
    Ok((elapsed, tracing.recorded() - recorded, tracing.dropped() - dropped))
}

/// Runs `workload` once at `size` on a running engine; its measured time.
fn run_workload(handle: &EngineHandle, workload: TracedWorkload, size: u64) -> Result<Duration, BenchError> {
    match workload {
        TracedWorkload::Counting => {
            let params = CountingParams { messages: size, burst: COUNTING_BURST, placement: Placement::Cross };
            Ok(counting::run(handle, &params)?.elapsed)
        }
        TracedWorkload::Pingpong => {
            let params =
                PingPongParams { round_trips: size, warmup: PINGPONG_WARMUP.min(size), placement: Placement::Cross };
            Ok(pingpong::run(handle, &params)?.elapsed)
        }
    }
}

/// `count` per second of `elapsed` (0 when nothing elapsed).
pub fn per_second(count: u64, elapsed: Duration) -> f64 {
    let s = elapsed.as_secs_f64();
    if s > 0.0 {
        count as f64 / s
    } else {
        0.0
    }
}

/// The bench engine settings for `shards` shards on `executor`, the placement plan they give
/// on this machine, and a note when there are more shards than usable cores (then
/// oversubscription is switched on: the figures include OS scheduling). The parent and every
/// round use this, so every variant runs the same engine.
pub fn engine_settings(
    shards: usize,
    executor: ExecutorKind,
) -> Result<(EngineSettings, nexus_engine::placement::PlacementPlan, Option<String>), Failure> {
    use nexus_engine::placement::PlacementError;
    let mut settings = EngineSettings::bench(shards);
    settings.executor = executor;
    match settings.plan() {
        Ok(plan) => Ok((settings, plan, None)),
        Err(BenchError::Placement(PlacementError::TooManyShards { requested, usable })) => {
            settings.oversubscribe = true;
            let plan = settings.plan().map_err(failed)?;
            let note = format!(
                "{requested} shards on {usable} cores: oversubscribed (shards share CPUs), so the figures include \
                 OS scheduling; use --shards {usable} or fewer"
            );
            Ok((settings, plan, Some(note)))
        }
        Err(e) => Err(failed(e)),
    }
}

/// The collector thread: drains the span buffers every [`DRAIN_EVERY`] until stopped.
struct Collector {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Collector {
    fn start(tracing: TraceHandle) -> Result<Self, Failure> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("nexus-span-drain".into())
            .spawn(move || {
                let mut spans = Vec::with_capacity(SPAN_BUFFER);
                loop {
                    let last = stopping.load(Ordering::Acquire);
                    tracing.drain(&mut spans);
                    spans.clear();
                    if last {
                        break;
                    }
                    std::thread::sleep(DRAIN_EVERY);
                }
            })
            .map_err(|e| Failure::runtime(format!("bench tracing: cannot start the span collector: {e}")))?;
        Ok(Self { stop, thread })
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Release);
        // The collector only drains and sleeps: it cannot panic short of the allocator failing.
        let _ = self.thread.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_figure_reads_back_from_its_line() {
        let figure = RoundFigure {
            workload: "counting".into(),
            sample: 0.01,
            compiled_in: true,
            size: 1_000,
            elapsed_ns: 2_000_000,
            per_s: per_second(1_000, Duration::from_millis(2)),
            recorded: 10,
            dropped: 0,
        };
        assert!((figure.per_s - 500_000.0).abs() < 1e-6);
        let line = serde_json::to_string(&figure).unwrap();
        assert!(!line.contains('\n'));
        assert_eq!(serde_json::from_str::<RoundFigure>(&line).unwrap(), figure);
        assert_eq!(per_second(5, Duration::ZERO), 0.0);
    }

    #[test]
    fn names_and_units() {
        assert_eq!(TracedWorkload::BOTH.map(TracedWorkload::name), ["counting", "pingpong"]);
        assert_eq!(TracedWorkload::Pingpong.unit(), "round trips/s");
        assert_eq!(TracedWorkload::Counting.messages(5_000), 5_000);
        assert_eq!(TracedWorkload::Pingpong.messages(5_000), 12_000, "pings and pongs, warm-up included");
        assert_eq!(TracedWorkload::Pingpong.messages(10), 40);
    }
}
