//! The suite: runs a set of workloads the way `nexus bench` does and returns their records.
//!
//! Order and isolation (the machine may have only two cores, and every party spins):
//! 1. `spawn`'s memory measurement runs first, in a process that has freed nothing yet, so the
//!    allocator cannot hand back memory that earlier workloads released (RSS would not grow);
//! 2. `pingpong` runs `repeat` rounds of: the probe (no engine running), then a fresh engine
//!    for the cross and the local pingpong, shut down before the next probe; the ratio
//!    `rtt_p50_ns / probe_rtt_p50_ns` is taken round by round and its median reported; then
//!    the wake from park on its own short-spin engine, and the bare-thread wake probe (no
//!    engine running) as its floor;
//! 3. `counting`, `thread-ring` and the Savina workloads run `repeat` rounds of: a fresh
//!    engine for local then cross, shut down, then every peer local then cross (with
//!    `--peers`), so the systems alternate round by round (A B C .. A B C ..);
//! 4. `spawn` times `repeat` cold-then-warm cycles, each on a fresh engine;
//! 5. `registry` grows one registrar through its sizes on one engine;
//! 6. `scaling` runs `repeat` rounds of counting on every shard at once on one engine.
//!
//! Every engine is shut down with the no-loss check of `setup::shutdown`. Each repeated run,
//! Nexus's and each peer's, lasts at least `Plan::min_round` of measured time (0.5 s at full
//! size; [`sizing`] scales the counts). Repeated figures are medians over the rounds with the
//! smallest and the largest round (`Record::over_rounds`); Nexus's advantage over a peer is
//! taken inside each round, from that round's pair, and reduced the same way. Records come
//! back grouped by workload in the order the workloads were asked for, whatever order they ran
//! in. The submodules hold the workloads by topic: `latency` (pingpong), `rates` (counting,
//! thread-ring), `savina`, `engine` (spawn, registry, scaling); `versus` gathers the peers'
//! figures and [`sizing`] the round lengths.

use crate::big::{self, BigParams};
use crate::chameneos::{self, ChameneosParams};
use crate::counting::{self, CountingParams};
use crate::fan_in::{self, FanInParams};
use crate::fib::{self, FibParams};
use crate::fork_join::{self, CreateParams, ThroughputParams};
use crate::pingpong::{self, PingPongParams};
use crate::probe::{self, ProbeParams, WakeProbeParams};
use crate::registry::{self, RegistryParams};
use crate::report::Record;
use crate::scaling::{self, ScalingParams};
use crate::setup::{self, EngineSettings, Placement, SYSTEM};
use crate::spawn::{self, MemoryParams, SpawnParams};
use crate::thread_ring::{self, ThreadRingParams};
use crate::wake::{self, WakeParams};
use crate::BenchError;
use hdrhistogram::Histogram;
use std::time::Duration;

/// A workload `nexus bench` can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Workload {
    /// Round trips, the probe, and the wake from park.
    PingPong,
    /// A million increments.
    Counting,
    /// A token around a ring.
    ThreadRing,
    /// Spawn and stop cost, memory per agent.
    Spawn,
    /// Name lookups.
    Registry,
    /// Counting on every shard at once.
    Scaling,
    /// Savina Chameneos: creatures meeting through one mall.
    Chameneos,
    /// Savina Big: pings to random neighbours.
    Big,
    /// Savina fork-join throughput.
    FjThroughput,
    /// Savina fork-join creation.
    FjCreate,
    /// Savina Fibonacci, one agent per call.
    Fib,
    /// Every shard sends to one agent.
    FanIn,
}

impl Workload {
    /// Every workload, in report order.
    pub const ALL: [Workload; 12] = [
        Workload::PingPong,
        Workload::Counting,
        Workload::ThreadRing,
        Workload::Chameneos,
        Workload::Big,
        Workload::FjThroughput,
        Workload::FjCreate,
        Workload::Fib,
        Workload::FanIn,
        Workload::Spawn,
        Workload::Registry,
        Workload::Scaling,
    ];

    /// The workload's name (its `workload` field and its command-line name).
    pub const fn name(self) -> &'static str {
        match self {
            Workload::PingPong => "pingpong",
            Workload::Counting => "counting",
            Workload::ThreadRing => "thread-ring",
            Workload::Spawn => "spawn",
            Workload::Registry => "registry",
            Workload::Scaling => "scaling",
            Workload::Chameneos => "chameneos",
            Workload::Big => "big",
            Workload::FjThroughput => "fj-throughput",
            Workload::FjCreate => "fj-create",
            Workload::Fib => "fib",
            Workload::FanIn => "fan-in",
        }
    }

    /// Whether the workload has a cross-shard part (and so needs 2 shards).
    pub const fn needs_two_shards(self) -> bool {
        !matches!(self, Workload::Spawn | Workload::Registry | Workload::Scaling)
    }
}

/// The sizes of every workload, plus how many rounds repeated figures take.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Pingpong sizes (the placement field is ignored: both run).
    pub pingpong: PingPongParams,
    /// The probe.
    pub probe: ProbeParams,
    /// The wake from park.
    pub wake: WakeParams,
    /// The bare-thread wake-up under it.
    pub wake_probe: WakeProbeParams,
    /// Counting sizes (placement ignored).
    pub counting: CountingParams,
    /// Thread-ring sizes (placement ignored).
    pub ring: ThreadRingParams,
    /// Ring sizes of the thread-ring sweep (how the hop rate changes with the ring's size),
    /// each run once per placement after the repeated rounds.
    pub ring_sizes: Vec<u32>,
    /// Spawn cycle size.
    pub spawn: SpawnParams,
    /// Memory measurement points.
    pub memory: MemoryParams,
    /// Registry sizes.
    pub registry: RegistryParams,
    /// Scaling sizes.
    pub scaling: ScalingParams,
    /// Chameneos sizes (placement ignored: both run).
    pub chameneos: ChameneosParams,
    /// Big sizes (placement ignored).
    pub big: BigParams,
    /// Fork-join throughput sizes (placement ignored).
    pub fj_throughput: ThroughputParams,
    /// Fork-join creation sizes (placement ignored).
    pub fj_create: CreateParams,
    /// Fibonacci size (placement ignored).
    pub fib: FibParams,
    /// Fan-in sizes (placement ignored).
    pub fan_in: FanInParams,
    /// Rounds of repeated figures (at least 1).
    pub repeat: u32,
    /// The shortest measured span of one repeated run ([`sizing::MIN_ROUND`] at full size).
    pub min_round: Duration,
}

impl Plan {
    /// The Savina-style sizes; `large` raises pingpong to 1,000,000 round trips and the ring to
    /// 1,000,000 hops.
    pub fn savina(large: bool, repeat: u32) -> Self {
        let mut plan = Self {
            pingpong: PingPongParams::default(),
            probe: ProbeParams::default(),
            wake: WakeParams::default(),
            wake_probe: WakeProbeParams::default(),
            counting: CountingParams::default(),
            ring: ThreadRingParams::default(),
            ring_sizes: vec![10, 1_000, 10_000],
            spawn: SpawnParams::default(),
            memory: MemoryParams::default(),
            registry: RegistryParams::default(),
            scaling: ScalingParams::default(),
            chameneos: ChameneosParams::default(),
            big: BigParams::default(),
            fj_throughput: ThroughputParams::default(),
            fj_create: CreateParams::default(),
            fib: FibParams::default(),
            fan_in: FanInParams::default(),
            repeat: repeat.max(1),
            min_round: sizing::MIN_ROUND,
        };
        if large {
            plan.pingpong.round_trips = 1_000_000;
            plan.ring.hops = 1_000_000;
        }
        plan
    }

    /// Tiny sizes for tests: every check runs, nothing takes long.
    pub fn tiny() -> Self {
        Self {
            pingpong: PingPongParams { round_trips: 200, warmup: 10, placement: Placement::Cross },
            probe: ProbeParams { round_trips: 200, warmup: 10, batch_round_trips: 200, pin: false },
            wake: WakeParams {
                samples: 3,
                gap: Duration::from_millis(1),
                require_parks: false,
                ..WakeParams::default()
            },
            wake_probe: WakeProbeParams { samples: 3, gap: Duration::from_millis(1), pin: false },
            counting: CountingParams { messages: 1_000, burst: 256, placement: Placement::Cross },
            ring: ThreadRingParams { agents: 10, hops: 100, placement: Placement::Cross },
            ring_sizes: vec![4],
            spawn: SpawnParams { agents: 1_000 },
            memory: MemoryParams { counts: vec![1_000], chunk: 500 },
            registry: RegistryParams { sizes: vec![1_000], lookups: 1_000, ..RegistryParams::default() },
            scaling: ScalingParams { messages: 1_000, producers_per_shard: 1, burst: 256 },
            chameneos: ChameneosParams { creatures: 10, meetings: 1_000, ..ChameneosParams::default() },
            big: BigParams { agents: 8, pings: 100, ..BigParams::default() },
            fj_throughput: ThroughputParams { agents: 4, messages: 200, ..ThroughputParams::default() },
            fj_create: CreateParams { agents: 500, ..CreateParams::default() },
            fib: FibParams { n: 10, ..FibParams::default() },
            fan_in: FanInParams { messages: 2_000, ..FanInParams::default() },
            repeat: 1,
            min_round: Duration::ZERO,
        }
    }
}

/// What to run and on which engine.
#[derive(Clone, Debug)]
pub struct Suite {
    /// The engine every workload builds.
    pub settings: EngineSettings,
    /// The sizes.
    pub plan: Plan,
    /// The workloads, in report order.
    pub workloads: Vec<Workload>,
    /// Also run the peers (`--peers`; needs the `peers` feature) where a workload has them.
    pub peers: bool,
}

/// A peer run that could not happen, and why (for the report).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skip {
    /// The workload.
    pub workload: &'static str,
    /// The peer.
    pub system: &'static str,
    /// `local` or `cross`.
    pub placement: &'static str,
    /// Why.
    pub reason: &'static str,
}

/// Everything a suite run produced.
#[derive(Debug, Default)]
pub struct SuiteOutput {
    /// The figures, grouped by workload.
    pub records: Vec<Record>,
    /// Peer runs that could not happen.
    pub skipped: Vec<Skip>,
    /// Per-trip latency histograms of the latency workloads, per system and placement (the
    /// last round's), for the percentile charts.
    pub curves: Vec<crate::plot::LatencyCurve>,
}

mod engine;
mod latency;
mod rates;
mod savina;
pub mod sizing;
mod versus;

use sizing::Sizer;
use versus::Versus;

/// The `system` of the probe's records: the physical limit of a cross-core round trip.
pub const LIMIT: &str = "limit";

/// How many peers a `--peers` run measures (`peers::Peer::ALL`; 0 without the feature).
#[cfg(feature = "peers")]
const PEERS: usize = crate::peers::Peer::ALL.len();
#[cfg(not(feature = "peers"))]
const PEERS: usize = 0;

impl Suite {
    /// Checks that the engine can run every workload asked for.
    pub fn validate(&self) -> Result<(), BenchError> {
        if self.peers && PEERS == 0 {
            return Err(BenchError::params(
                "bench",
                "this build has no peers; hint: build with `--features peers` \
                 (cargo run --release -p nexus-tools --features peers --bin nexus -- bench ...)",
            ));
        }
        if self.settings.shards == 0 {
            return Err(BenchError::params("bench", "--shards must be at least 1"));
        }
        if let Some(w) = self.workloads.iter().find(|w| w.needs_two_shards()) {
            if self.settings.shards < 2 {
                return Err(BenchError::params(
                    w.name(),
                    format!(
                        "its cross-shard runs need at least 2 shards, got {}; hint: use --shards 2 (spawn and registry run on 1)",
                        self.settings.shards
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The number of progress steps [`run`](Self::run) reports.
    pub fn steps(&self) -> usize {
        let k = self.plan.repeat.max(1) as usize;
        // Each peer runs both placements once per round of the workloads that have peers.
        let peer_steps = if self.peers { PEERS * 2 * k } else { 0 };
        self.workloads
            .iter()
            .map(|w| match w {
                Workload::PingPong => 3 * k + 2 + peer_steps,
                Workload::Counting => 2 * k + peer_steps,
                Workload::ThreadRing => 2 * k + peer_steps + 2 * self.plan.ring_sizes.len(),
                Workload::Scaling => k,
                Workload::Chameneos
                | Workload::Big
                | Workload::FjThroughput
                | Workload::FjCreate
                | Workload::Fib
                | Workload::FanIn => 2 * k + peer_steps,
                Workload::Spawn => k + 1,
                Workload::Registry => self.plan.registry.sizes.len(),
            })
            .sum()
    }

    /// Runs the workloads; `progress(step, steps, label)` is called before each step. Returns
    /// the records grouped by workload, in the order of `workloads`, the skipped peer runs and
    /// the latency curves.
    pub fn run(&mut self, progress: &mut dyn FnMut(usize, usize, &str)) -> Result<SuiteOutput, BenchError> {
        self.validate()?;
        self.settings.detect_topology()?;
        let mut run = Runner {
            suite: self.clone(),
            step: 0,
            steps: self.steps(),
            progress,
            skipped: Vec::new(),
            curves: Vec::new(),
            sizer: Sizer::new(self.plan.min_round),
        };
        let mut memory = Vec::new();
        if self.workloads.contains(&Workload::Spawn) {
            memory = run.memory()?;
        }
        let mut records = Vec::new();
        for &w in &self.workloads {
            records.extend(match w {
                Workload::PingPong => run.pingpong()?,
                Workload::Counting => run.counting()?,
                Workload::ThreadRing => run.thread_ring()?,
                Workload::Spawn => {
                    let mut r = run.spawn()?;
                    r.append(&mut memory);
                    r
                }
                Workload::Registry => run.registry()?,
                Workload::Scaling => run.scaling()?,
                savina => run.savina(savina)?,
            });
        }
        Ok(SuiteOutput { records, skipped: run.skipped, curves: run.curves })
    }
}

/// The state of one suite run: the step counter and the progress callback.
struct Runner<'p> {
    suite: Suite,
    step: usize,
    steps: usize,
    progress: &'p mut dyn FnMut(usize, usize, &str),
    skipped: Vec<Skip>,
    curves: Vec<crate::plot::LatencyCurve>,
    /// The size factor of each system's runs (see [`sizing`]).
    sizer: Sizer,
}

impl Runner<'_> {
    fn step(&mut self, label: &str) {
        self.step += 1;
        (self.progress)(self.step, self.steps, label);
    }

    fn repeat(&self) -> u32 {
        self.suite.plan.repeat.max(1)
    }

    /// A record of the engine under test, with its shards and executor.
    fn record(
        &self,
        workload: &'static str,
        placement: Placement,
        metric: &'static str,
        value: f64,
        unit: &'static str,
    ) -> Record {
        let s = &self.suite.settings;
        Record::new(workload, SYSTEM, placement.as_str(), metric, value, unit).engine(s.shards, s.executor.name())
    }

    /// The CPUs the peers run on: those of engine shards 0 and 1.
    #[cfg(feature = "peers")]
    fn peer_cpus(&mut self) -> Result<crate::peers::PeerCpus, BenchError> {
        let cpus = self.suite.settings.plan()?.cpus();
        let first = cpus.first().copied().unwrap_or(0);
        let second = cpus.get(1).copied().unwrap_or(first);
        Ok(crate::peers::PeerCpus { first, second, pin: self.suite.settings.pin_threads })
    }

    /// Keeps the latest histogram of (workload, system, placement) for the charts.
    fn curve(&mut self, workload: &'static str, system: &'static str, placement: Placement, h: Histogram<u64>) {
        let placement = placement.as_str();
        self.curves.retain(|c| !(c.workload == workload && c.system == system && c.placement == placement));
        self.curves.push(crate::plot::LatencyCurve { workload, system, placement, histogram: h });
    }

    /// Notes a skipped peer run once.
    #[cfg(feature = "peers")]
    fn skip(&mut self, workload: &'static str, system: &'static str, placement: Placement, reason: &'static str) {
        let skip = Skip { workload, system, placement: placement.as_str(), reason };
        if !self.skipped.contains(&skip) {
            self.skipped.push(skip);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_whole_suite_runs_tiny() {
        let mut suite = Suite {
            settings: EngineSettings::test(2),
            plan: Plan::tiny(),
            workloads: Workload::ALL.to_vec(),
            peers: false,
        };
        let steps = suite.steps();
        let mut seen = Vec::new();
        let records = suite.run(&mut |step, total, label| seen.push((step, total, label.to_string()))).unwrap().records;
        assert_eq!(seen.len(), steps, "{seen:?}");
        assert!(seen.iter().all(|(_, total, _)| *total == steps));
        assert!(seen[0].2.starts_with("spawn memory"), "memory runs first: {seen:?}");
        let workloads: Vec<&str> = records.iter().map(|r| r.workload).fold(Vec::new(), |mut v, w| {
            if !v.contains(&w) {
                v.push(w);
            }
            v
        });
        assert_eq!(
            workloads,
            [
                "pingpong",
                "counting",
                "thread-ring",
                "chameneos",
                "big",
                "fj-throughput",
                "fj-create",
                "fib",
                "fan-in",
                "spawn",
                "registry",
                "scaling"
            ]
        );
        for metric in
            ["rtt_p50_ns", "probe_rtt_p50_ns", "rtt_p50_over_probe", "wake_from_park_p50_ns", "probe_wake_p50_ns"]
        {
            assert!(records.iter().any(|r| r.metric == metric), "{metric} missing");
        }
        for metric in ["msgs_per_s", "hops_per_s", "ns_per_spawn", "bytes_per_agent", "ns_per_op"] {
            assert!(records.iter().any(|r| r.metric == metric), "{metric} missing");
        }
    }

    #[test]
    fn repeated_figures_carry_their_spread_and_advantages_their_pairs() {
        let mut suite = Suite {
            settings: EngineSettings::test(2),
            plan: Plan { repeat: 2, ring_sizes: Vec::new(), ..Plan::tiny() },
            workloads: vec![Workload::Counting, Workload::ThreadRing],
            peers: cfg!(feature = "peers"),
        };
        let records = suite.run(&mut |_, _, _| {}).unwrap().records;
        for r in &records {
            assert_eq!(r.repeat, Some(2), "{r:?}");
            let (Some(min), Some(max)) = (r.min, r.max) else { panic!("no spread: {r:?}") };
            assert!(min <= r.value && r.value <= max, "{r:?}");
        }
        if cfg!(feature = "peers") {
            assert!(records.iter().any(|r| r.system == "tokio" && r.metric == "nexus_advantage"), "{records:?}");
        }
    }

    #[test]
    fn cross_workloads_need_two_shards() {
        let suite = Suite {
            settings: EngineSettings::test(1),
            plan: Plan::tiny(),
            workloads: vec![Workload::Counting],
            peers: false,
        };
        assert!(suite.validate().unwrap_err().is_usage());
        let suite = Suite { workloads: vec![Workload::Spawn, Workload::Registry], ..suite };
        assert!(suite.validate().is_ok());
    }
}
