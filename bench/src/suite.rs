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
//! 3. `counting` and `thread-ring` run `repeat` rounds of local then cross on one engine;
//! 4. `spawn` times `repeat` cold-then-warm cycles, each on a fresh engine;
//! 5. `registry` grows one registrar through its sizes on one engine;
//! 6. `scaling` runs `repeat` rounds of counting on every shard at once on one engine.
//!
//! Every engine is shut down with the no-loss check of `setup::shutdown`. Repeated figures are
//! medians over the rounds (`repeat` says how many). Records come back grouped by workload in
//! the order the workloads were asked for, whatever order they ran in.

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
use crate::{median, BenchError};
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

/// One peer figure, one value per round.
#[derive(Debug)]
struct Series {
    workload: &'static str,
    peer: &'static str,
    placement: Placement,
    metric: &'static str,
    unit: &'static str,
    values: Vec<f64>,
}

/// Peer figures gathered round by round, reduced to medians at the end: the peers' own values
/// and, pair by pair, how many times better Nexus was in the same round.
#[derive(Debug, Default)]
struct Versus {
    series: Vec<Series>,
}

/// (workload, peer, placement): whose figure a value is.
type PeerKey = (&'static str, &'static str, Placement);

// Without the `peers` feature nothing is ever noted (and `validate` refuses `--peers`).
#[cfg_attr(not(feature = "peers"), allow(dead_code))]
impl Versus {
    /// Notes one round's `value` of `metric` for `key`.
    fn note(&mut self, key: PeerKey, metric: &'static str, unit: &'static str, value: f64) {
        let (workload, peer, placement) = key;
        match self
            .series
            .iter_mut()
            .find(|s| s.workload == workload && s.peer == peer && s.placement == placement && s.metric == metric)
        {
            Some(series) => series.values.push(value),
            None => self.series.push(Series { workload, peer, placement, metric, unit, values: vec![value] }),
        }
    }

    /// Notes how many times better Nexus was than the peer this round (> 1: Nexus better).
    fn advantage(&mut self, key: PeerKey, nexus_better_by: f64) {
        self.note(key, "nexus_advantage", "x", nexus_better_by);
    }

    /// The medians of every series of `workload`, as records of the peers.
    fn records(&self, workload: &'static str) -> Vec<Record> {
        self.series
            .iter()
            .filter(|s| s.workload == workload)
            .map(|s| {
                Record::new(s.workload, s.peer, s.placement.as_str(), s.metric, median(&s.values), s.unit)
                    .repeat(s.values.len() as u32)
            })
            .collect()
    }
}

/// `a / b`, or 0 when `b` is not positive.
#[cfg_attr(not(feature = "peers"), allow(dead_code))]
fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

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

    fn pingpong(&mut self) -> Result<Vec<Record>, BenchError> {
        const W: &str = "pingpong";
        let k = self.repeat();
        let params = self.suite.plan.pingpong.clone();
        let mut probes = Vec::new();
        let mut runs: Vec<(Placement, pingpong::PingPongOutcome)> = Vec::new();
        let mut ratios = Vec::new();
        let mut versus = Versus::default();
        for round in 1..=k {
            self.step(&format!("pingpong probe round {round}/{k}"));
            let p = probe::run(&self.suite.plan.probe, &mut self.suite.settings)?;
            let engine = self.suite.settings.build()?;
            let handle = engine.handle();
            let mut cross_p50 = 0.0;
            let mut nexus_p50 = [(Placement::Cross, 0.0), (Placement::Local, 0.0)];
            for (placement, p50) in &mut nexus_p50 {
                let placement = *placement;
                self.step(&format!("pingpong {} round {round}/{k}", placement.as_str()));
                let out = pingpong::run(&handle, &PingPongParams { placement, ..params.clone() })?;
                if placement == Placement::Cross {
                    cross_p50 = out.rtt.p50_ns;
                }
                *p50 = out.rtt.p50_ns;
                if round == k {
                    self.curve(W, SYSTEM, placement, out.histogram.clone());
                }
                runs.push((placement, out));
            }
            setup::shutdown(engine, W)?;
            // The peers run while no engine runs, right after Nexus in the same round.
            self.pingpong_peers(round, &params, &nexus_p50, &mut versus)?;
            if p.rtt.p50_ns > 0.0 {
                ratios.push(cross_p50 / p.rtt.p50_ns);
            }
            probes.push(p);
        }
        self.step("pingpong wake from park");
        let woke = wake::run(&self.suite.settings, &self.suite.plan.wake)?;
        self.step("pingpong wake probe");
        let woke_bare = probe::wake(&self.suite.plan.wake_probe, &mut self.suite.settings)?;

        let mut records = Vec::new();
        for placement in Placement::BOTH {
            let of = |f: fn(&pingpong::PingPongOutcome) -> f64| {
                median(&runs.iter().filter(|(p, _)| *p == placement).map(|(_, o)| f(o)).collect::<Vec<_>>())
            };
            for (metric, value) in [
                ("rtt_p50_ns", of(|o| o.rtt.p50_ns)),
                ("rtt_p99_ns", of(|o| o.rtt.p99_ns)),
                ("rtt_p999_ns", of(|o| o.rtt.p999_ns)),
            ] {
                records.push(self.record(W, placement, metric, value, "ns").repeat(k));
            }
        }
        let of = |f: fn(&probe::ProbeOutcome) -> f64| median(&probes.iter().map(f).collect::<Vec<_>>());
        for (metric, value) in [
            ("probe_rtt_p50_ns", of(|p| p.rtt.p50_ns)),
            ("probe_rtt_p99_ns", of(|p| p.rtt.p99_ns)),
            ("probe_rtt_p999_ns", of(|p| p.rtt.p999_ns)),
            ("probe_rtt_batch_ns", of(|p| p.batch_rtt_ns)),
        ] {
            records.push(Record::new(W, LIMIT, "cross", metric, value, "ns").repeat(k));
        }
        records.push(self.record(W, Placement::Cross, "rtt_p50_over_probe", median(&ratios), "ratio").repeat(k));
        // Each timed round trip includes one clock read; this is what one costs here.
        records.push(Record::new(W, "clock", "local", "clock_read_ns", pingpong::timer_overhead_ns(), "ns"));
        records.push(self.record(W, Placement::Cross, "wake_from_park_p50_ns", woke.latency.p50_ns, "ns"));
        records.push(self.record(W, Placement::Cross, "wake_from_park_p99_ns", woke.latency.p99_ns, "ns"));
        records.push(Record::new(W, LIMIT, "cross", "probe_wake_p50_ns", woke_bare.p50_ns, "ns"));
        records.push(Record::new(W, LIMIT, "cross", "probe_wake_p99_ns", woke_bare.p99_ns, "ns"));
        records.extend(versus.records(W));
        Ok(records)
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

    /// Every peer's pingpong, both placements, for one round.
    #[cfg(feature = "peers")]
    fn pingpong_peers(
        &mut self,
        round: u32,
        params: &PingPongParams,
        nexus_p50: &[(Placement, f64)],
        versus: &mut Versus,
    ) -> Result<(), BenchError> {
        use crate::peers::{self, Peer, PeerResult};
        const W: &str = "pingpong";
        if !self.suite.peers {
            return Ok(());
        }
        let (k, cpus) = (self.repeat(), self.peer_cpus()?);
        for peer in Peer::ALL {
            for &(placement, nexus) in nexus_p50 {
                self.step(&format!("pingpong {} {} round {round}/{k}", peer.name(), placement.as_str()));
                match peers::pingpong(peer, &PingPongParams { placement, ..params.clone() }, cpus)? {
                    PeerResult::Ran(out) => {
                        let key = (W, peer.name(), placement);
                        versus.note(key, "rtt_p50_ns", "ns", out.rtt.p50_ns);
                        versus.note(key, "rtt_p99_ns", "ns", out.rtt.p99_ns);
                        versus.note(key, "rtt_p999_ns", "ns", out.rtt.p999_ns);
                        if placement == Placement::Cross {
                            versus.note(key, "crossed_share", "ratio", out.crossed);
                        }
                        versus.advantage(key, ratio(out.rtt.p50_ns, nexus));
                        if round == k {
                            self.curve(W, peer.name(), placement, out.histogram);
                        }
                    }
                    PeerResult::Skipped(why) => self.skip(W, peer.name(), placement, why),
                }
            }
        }
        Ok(())
    }

    /// Without the `peers` feature there is nothing to run (`validate` refuses `--peers`).
    #[cfg(not(feature = "peers"))]
    fn pingpong_peers(
        &mut self,
        _: u32,
        _: &PingPongParams,
        _: &[(Placement, f64)],
        _: &mut Versus,
    ) -> Result<(), BenchError> {
        Ok(())
    }

    /// Notes a peer's rate run: its rate, its crossed share (cross only) and Nexus's advantage
    /// this round; or the reason it was skipped.
    #[cfg(feature = "peers")]
    fn note_rate(
        &mut self,
        versus: &mut Versus,
        key: PeerKey,
        (metric, unit): (&'static str, &'static str),
        result: crate::peers::PeerResult<crate::peers::PeerRate>,
        nexus_rate: f64,
    ) {
        match result {
            crate::peers::PeerResult::Ran(out) => {
                versus.note(key, metric, unit, out.per_s);
                if key.2 == Placement::Cross {
                    versus.note(key, "crossed_share", "ratio", out.crossed);
                }
                versus.advantage(key, ratio(nexus_rate, out.per_s));
            }
            crate::peers::PeerResult::Skipped(why) => self.skip(key.0, key.1, key.2, why),
        }
    }

    /// Every peer's rate workload (`counting` or `thread-ring`), both placements, for one round.
    #[cfg(feature = "peers")]
    fn rate_peers(
        &mut self,
        workload: &'static str,
        round: u32,
        nexus: &[(Placement, f64)],
        versus: &mut Versus,
    ) -> Result<(), BenchError> {
        use crate::peers::{self, Peer};
        if !self.suite.peers {
            return Ok(());
        }
        let (k, cpus) = (self.repeat(), self.peer_cpus()?);
        let (metric, unit) = if workload == "thread-ring" { ("hops_per_s", "hop/s") } else { ("msgs_per_s", "msg/s") };
        for peer in Peer::ALL {
            for &(placement, nexus_rate) in nexus {
                self.step(&format!("{workload} {} {} round {round}/{k}", peer.name(), placement.as_str()));
                let result = if workload == "thread-ring" {
                    let params = ThreadRingParams { placement, ..self.suite.plan.ring.clone() };
                    peers::thread_ring(peer, &params, cpus)?
                } else {
                    let params = CountingParams { placement, ..self.suite.plan.counting.clone() };
                    peers::counting(peer, &params, cpus)?
                };
                self.note_rate(versus, (workload, peer.name(), placement), (metric, unit), result, nexus_rate);
            }
        }
        Ok(())
    }

    /// Without the `peers` feature there is nothing to run (`validate` refuses `--peers`).
    #[cfg(not(feature = "peers"))]
    fn rate_peers(
        &mut self,
        _: &'static str,
        _: u32,
        _: &[(Placement, f64)],
        _: &mut Versus,
    ) -> Result<(), BenchError> {
        Ok(())
    }

    fn counting(&mut self) -> Result<Vec<Record>, BenchError> {
        self.rate_workload("counting")
    }

    fn thread_ring(&mut self) -> Result<Vec<Record>, BenchError> {
        self.rate_workload("thread-ring")
    }

    /// `counting` or `thread-ring`: per round, a fresh engine runs both placements and is shut
    /// down, then the peers run (with `--peers`), so no two systems ever spin at once.
    fn rate_workload(&mut self, workload: &'static str) -> Result<Vec<Record>, BenchError> {
        let k = self.repeat();
        let ring = workload == "thread-ring";
        let mut rates: Vec<(Placement, u32, f64)> = Vec::new();
        let mut versus = Versus::default();
        for round in 1..=k {
            let engine = self.suite.settings.build()?;
            let handle = engine.handle();
            let mut nexus = [(Placement::Local, 0.0), (Placement::Cross, 0.0)];
            for (placement, rate) in &mut nexus {
                let placement = *placement;
                self.step(&format!("{workload} {} round {round}/{k}", placement.as_str()));
                let (agents, value) = if ring {
                    let out =
                        thread_ring::run(&handle, &ThreadRingParams { placement, ..self.suite.plan.ring.clone() })?;
                    (out.agents, out.hops_per_s)
                } else {
                    let params = CountingParams { placement, ..self.suite.plan.counting.clone() };
                    (0, counting::run(&handle, &params)?.msgs_per_s)
                };
                *rate = value;
                rates.push((placement, agents, value));
            }
            setup::shutdown(engine, workload)?;
            self.rate_peers(workload, round, &nexus, &mut versus)?;
        }
        let (metric, unit) = if ring { ("hops_per_s", "hop/s") } else { ("msgs_per_s", "msg/s") };
        let mut records: Vec<Record> = Placement::BOTH
            .iter()
            .map(|&p| {
                let values: Vec<f64> = rates.iter().filter(|(q, _, _)| *q == p).map(|(_, _, v)| *v).collect();
                let record = self.record(workload, p, metric, median(&values), unit).repeat(k);
                match rates.iter().find(|(q, _, _)| *q == p) {
                    Some(&(_, agents, _)) if ring => record.agents(u64::from(agents)),
                    _ => record,
                }
            })
            .collect();
        records.extend(versus.records(workload));
        if ring {
            records.extend(self.ring_sweep()?);
        }
        Ok(records)
    }

    /// The thread-ring at each of `plan.ring_sizes`, both placements, once each on one engine:
    /// `hops_per_s_by_size` records with the ring size in `agents`.
    fn ring_sweep(&mut self) -> Result<Vec<Record>, BenchError> {
        const W: &str = "thread-ring";
        let sizes = self.suite.plan.ring_sizes.clone();
        if sizes.is_empty() {
            return Ok(Vec::new());
        }
        let engine = self.suite.settings.build()?;
        let handle = engine.handle();
        let mut records = Vec::new();
        for agents in sizes {
            for placement in Placement::BOTH {
                self.step(&format!("thread-ring {agents} agents {}", placement.as_str()));
                let params = ThreadRingParams { agents, placement, ..self.suite.plan.ring.clone() };
                let out = thread_ring::run(&handle, &params)?;
                records.push(
                    self.record(W, placement, "hops_per_s_by_size", out.hops_per_s, "hop/s")
                        .agents(u64::from(out.agents)),
                );
            }
        }
        setup::shutdown(engine, W)?;
        Ok(records)
    }

    fn spawn(&mut self) -> Result<Vec<Record>, BenchError> {
        const W: &str = "spawn";
        let k = self.repeat();
        let mut outcomes = Vec::new();
        for round in 1..=k {
            self.step(&format!("spawn cycles round {round}/{k}"));
            let engine = self.suite.settings.build()?;
            outcomes.push(spawn::run(&engine.handle(), &self.suite.plan.spawn)?);
            setup::shutdown(engine, W)?;
        }
        let agents = self.suite.plan.spawn.agents;
        let of = |f: fn(&spawn::SpawnOutcome) -> f64| median(&outcomes.iter().map(f).collect::<Vec<_>>());
        Ok([
            ("ns_per_spawn", of(|o| o.ns_per_spawn)),
            ("ns_per_spawn_cold", of(|o| o.ns_per_spawn_cold)),
            ("ns_per_stop", of(|o| o.ns_per_stop)),
        ]
        .into_iter()
        .map(|(metric, value)| self.record(W, Placement::Local, metric, value, "ns").agents(agents).repeat(k))
        .collect())
    }

    fn memory(&mut self) -> Result<Vec<Record>, BenchError> {
        self.step("spawn memory per idle agent");
        let points = spawn::memory(&self.suite.settings, &self.suite.plan.memory)?;
        Ok(points
            .iter()
            .map(|p| {
                self.record("spawn", Placement::Local, "bytes_per_agent", p.bytes_per_agent, "bytes").agents(p.agents)
            })
            .collect())
    }

    /// A Savina workload: per round, a fresh engine runs it local then cross and is shut down;
    /// each figure is the median over the rounds.
    fn savina(&mut self, workload: Workload) -> Result<Vec<Record>, BenchError> {
        let name = workload.name();
        let k = self.repeat();
        let plan = self.suite.plan.clone();
        // (placement, metric, unit, value) per run.
        let mut figures: Vec<(Placement, &'static str, &'static str, f64)> = Vec::new();
        let mut versus = Versus::default();
        for round in 1..=k {
            let mut headline = [(Placement::Local, 0.0), (Placement::Cross, 0.0)];
            let engine = self.suite.settings.build()?;
            let handle = engine.handle();
            for placement in Placement::BOTH {
                self.step(&format!("{name} {} round {round}/{k}", placement.as_str()));
                let got: Vec<(&'static str, &'static str, f64)> = match workload {
                    Workload::Chameneos => {
                        let out = chameneos::run(&handle, &ChameneosParams { placement, ..plan.chameneos.clone() })?;
                        vec![
                            ("msgs_per_s", "msg/s", out.msgs_per_s),
                            ("meetings_per_s", "meeting/s", out.meetings_per_s),
                        ]
                    }
                    Workload::Big => {
                        let out = big::run(&handle, &BigParams { placement, ..plan.big.clone() })?;
                        vec![("msgs_per_s", "msg/s", out.msgs_per_s)]
                    }
                    Workload::FjThroughput => {
                        let params = ThroughputParams { placement, ..plan.fj_throughput.clone() };
                        vec![("msgs_per_s", "msg/s", fork_join::run_throughput(&handle, &params)?.msgs_per_s)]
                    }
                    Workload::FjCreate => {
                        let out =
                            fork_join::run_create(&handle, &CreateParams { placement, ..plan.fj_create.clone() })?;
                        vec![("ns_per_op", "ns", out.ns_per_op), ("msgs_per_s", "msg/s", out.msgs_per_s)]
                    }
                    Workload::Fib => {
                        let out = fib::run(&handle, &FibParams { placement, ..plan.fib.clone() })?;
                        vec![
                            ("agents_per_s", "agent/s", out.agents_per_s),
                            ("elapsed_ms", "ms", out.elapsed.as_secs_f64() * 1e3),
                        ]
                    }
                    Workload::FanIn => {
                        let out = fan_in::run(&handle, &FanInParams { placement, ..plan.fan_in.clone() })?;
                        vec![("msgs_per_s", "msg/s", out.msgs_per_s)]
                    }
                    other => return Err(BenchError::params(other.name(), "not a Savina workload")),
                };
                // The rate the peers are compared on: the first `/s` figure.
                if let Some(&(_, _, value)) = got.iter().find(|(_, unit, _)| unit.ends_with("/s")) {
                    if let Some(h) = headline.iter_mut().find(|(p, _)| *p == placement) {
                        h.1 = value;
                    }
                }
                figures.extend(got.into_iter().map(|(metric, unit, value)| (placement, metric, unit, value)));
            }
            setup::shutdown(engine, name)?;
            self.savina_peers(workload, round, &headline, &mut versus)?;
        }
        let mut records = Vec::new();
        for placement in Placement::BOTH {
            let mut metrics: Vec<(&'static str, &'static str)> = Vec::new();
            for &(p, metric, unit, _) in &figures {
                if p == placement && !metrics.contains(&(metric, unit)) {
                    metrics.push((metric, unit));
                }
            }
            for (metric, unit) in metrics {
                let values: Vec<f64> =
                    figures.iter().filter(|f| f.0 == placement && f.1 == metric).map(|f| f.3).collect();
                records.push(self.record(name, placement, metric, median(&values), unit).repeat(k));
            }
        }
        records.extend(versus.records(name));
        Ok(records)
    }

    /// Every peer's version of a Savina workload, both placements, for one round.
    #[cfg(feature = "peers")]
    fn savina_peers(
        &mut self,
        workload: Workload,
        round: u32,
        nexus: &[(Placement, f64)],
        versus: &mut Versus,
    ) -> Result<(), BenchError> {
        use crate::peers::{self, Peer, Savina};
        if !self.suite.peers {
            return Ok(());
        }
        let name = workload.name();
        let (k, cpus, plan) = (self.repeat(), self.peer_cpus()?, self.suite.plan.clone());
        // The Nexus headline rate's metric (see `savina`).
        let (metric, unit) =
            if workload == Workload::Fib { ("agents_per_s", "agent/s") } else { ("msgs_per_s", "msg/s") };
        for peer in Peer::ALL {
            for &(placement, nexus_rate) in nexus {
                self.step(&format!("{name} {} {} round {round}/{k}", peer.name(), placement.as_str()));
                let (cham, big, fjt, fjc, fib, fan);
                let which = match workload {
                    Workload::Chameneos => {
                        cham = ChameneosParams { placement, ..plan.chameneos.clone() };
                        Savina::Chameneos(&cham)
                    }
                    Workload::Big => {
                        big = BigParams { placement, ..plan.big.clone() };
                        Savina::Big(&big)
                    }
                    Workload::FjThroughput => {
                        fjt = ThroughputParams { placement, ..plan.fj_throughput.clone() };
                        Savina::FjThroughput(&fjt)
                    }
                    Workload::FjCreate => {
                        fjc = CreateParams { placement, ..plan.fj_create.clone() };
                        Savina::FjCreate(&fjc)
                    }
                    Workload::Fib => {
                        fib = FibParams { placement, ..plan.fib.clone() };
                        Savina::Fib(&fib)
                    }
                    Workload::FanIn => {
                        fan = FanInParams { placement, ..plan.fan_in.clone() };
                        Savina::FanIn(&fan)
                    }
                    other => return Err(BenchError::params(other.name(), "not a Savina workload")),
                };
                let result = peers::savina(peer, which, cpus)?;
                self.note_rate(versus, (name, peer.name(), placement), (metric, unit), result, nexus_rate);
            }
        }
        Ok(())
    }

    /// Without the `peers` feature there is nothing to run (`validate` refuses `--peers`).
    #[cfg(not(feature = "peers"))]
    fn savina_peers(&mut self, _: Workload, _: u32, _: &[(Placement, f64)], _: &mut Versus) -> Result<(), BenchError> {
        Ok(())
    }

    fn scaling(&mut self) -> Result<Vec<Record>, BenchError> {
        const W: &str = "scaling";
        let k = self.repeat();
        let engine = self.suite.settings.build()?;
        let handle = engine.handle();
        let shards = handle.shards();
        let placement = if shards > 1 { Placement::Cross } else { Placement::Local };
        let mut rates = Vec::new();
        for round in 1..=k {
            self.step(&format!("scaling {shards} shards round {round}/{k}"));
            rates.push(scaling::run(&handle, &self.suite.plan.scaling)?.msgs_per_s);
        }
        setup::shutdown(engine, W)?;
        let rate = median(&rates);
        Ok(vec![
            self.record(W, placement, "msgs_per_s", rate, "msg/s").repeat(k),
            self.record(W, placement, "msgs_per_s_per_shard", rate / shards as f64, "msg/s").repeat(k),
        ])
    }

    fn registry(&mut self) -> Result<Vec<Record>, BenchError> {
        const W: &str = "registry";
        let params: RegistryParams = self.suite.plan.registry.clone();
        let engine = self.suite.settings.build()?;
        let handle = engine.handle();
        let session = registry::RegistrySession::start(&handle, params.names_per_holder)?;
        let mut records = Vec::new();
        for (i, &size) in params.sizes.iter().enumerate() {
            self.step(&format!("registry {size} names"));
            let names = session.grow(&handle, size)?;
            let elapsed = session.lookups(&handle, params.lookups, params.seed.wrapping_add(i as u64))?;
            let ns = crate::stats::ns_per(elapsed, params.lookups);
            records.push(self.record(W, Placement::Local, "ns_per_op", ns, "ns").names(names));
        }
        setup::shutdown(engine, W)?;
        Ok(records)
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
