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

use crate::counting::{self, CountingParams};
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
use nexus_engine::shard::ExecutorKind;
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
}

impl Workload {
    /// Every workload, in report order.
    pub const ALL: [Workload; 6] = [
        Workload::PingPong,
        Workload::Counting,
        Workload::ThreadRing,
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
        }
    }

    /// Whether the workload has a cross-shard part (and so needs 2 shards).
    pub const fn needs_two_shards(self) -> bool {
        matches!(self, Workload::PingPong | Workload::Counting | Workload::ThreadRing)
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
    /// Spawn cycle size.
    pub spawn: SpawnParams,
    /// Memory measurement points.
    pub memory: MemoryParams,
    /// Registry sizes.
    pub registry: RegistryParams,
    /// Scaling sizes.
    pub scaling: ScalingParams,
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
            spawn: SpawnParams::default(),
            memory: MemoryParams::default(),
            registry: RegistryParams::default(),
            scaling: ScalingParams::default(),
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
            spawn: SpawnParams { agents: 1_000 },
            memory: MemoryParams { counts: vec![1_000], chunk: 500 },
            registry: RegistryParams { sizes: vec![1_000], lookups: 1_000, ..RegistryParams::default() },
            scaling: ScalingParams { messages: 1_000, producers_per_shard: 1, burst: 256 },
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
}

/// The executor's name for records.
pub fn executor_name(kind: ExecutorKind) -> &'static str {
    match kind {
        ExecutorKind::Glommio => "glommio",
        ExecutorKind::Thread => "thread",
    }
}

impl Suite {
    /// Checks that the engine can run every workload asked for.
    pub fn validate(&self) -> Result<(), BenchError> {
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
        self.workloads
            .iter()
            .map(|w| match w {
                Workload::PingPong => 3 * k + 2,
                Workload::Counting | Workload::ThreadRing => 2 * k,
                Workload::Scaling => k,
                Workload::Spawn => k + 1,
                Workload::Registry => self.plan.registry.sizes.len(),
            })
            .sum()
    }

    /// Runs the workloads; `progress(step, steps, label)` is called before each step. Returns
    /// the records grouped by workload, in the order of `workloads`.
    pub fn run(&mut self, progress: &mut dyn FnMut(usize, usize, &str)) -> Result<Vec<Record>, BenchError> {
        self.validate()?;
        self.settings.detect_topology()?;
        let mut run = Runner { suite: self.clone(), step: 0, steps: self.steps(), progress };
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
            });
        }
        Ok(records)
    }
}

/// The state of one suite run: the step counter and the progress callback.
struct Runner<'p> {
    suite: Suite,
    step: usize,
    steps: usize,
    progress: &'p mut dyn FnMut(usize, usize, &str),
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
        Record::new(workload, SYSTEM, placement.as_str(), metric, value, unit)
            .engine(s.shards, executor_name(s.executor))
    }

    fn pingpong(&mut self) -> Result<Vec<Record>, BenchError> {
        const W: &str = "pingpong";
        let k = self.repeat();
        let params = self.suite.plan.pingpong.clone();
        let mut probes = Vec::new();
        let mut runs: Vec<(Placement, pingpong::PingPongOutcome)> = Vec::new();
        let mut ratios = Vec::new();
        for round in 1..=k {
            self.step(&format!("pingpong probe round {round}/{k}"));
            let p = probe::run(&self.suite.plan.probe, &mut self.suite.settings)?;
            let engine = self.suite.settings.build()?;
            let handle = engine.handle();
            let mut cross_p50 = 0.0;
            for placement in [Placement::Cross, Placement::Local] {
                self.step(&format!("pingpong {} round {round}/{k}", placement.as_str()));
                let out = pingpong::run(&handle, &PingPongParams { placement, ..params.clone() })?;
                if placement == Placement::Cross {
                    cross_p50 = out.rtt.p50_ns;
                }
                runs.push((placement, out));
            }
            setup::shutdown(engine, W)?;
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
            records.push(Record::new(W, "probe", "cross", metric, value, "ns").repeat(k));
        }
        records.push(self.record(W, Placement::Cross, "rtt_p50_over_probe", median(&ratios), "ratio").repeat(k));
        // Each timed round trip includes one clock read; this is what one costs here.
        records.push(Record::new(W, "clock", "local", "clock_read_ns", pingpong::timer_overhead_ns(), "ns"));
        records.push(self.record(W, Placement::Cross, "wake_from_park_p50_ns", woke.latency.p50_ns, "ns"));
        records.push(self.record(W, Placement::Cross, "wake_from_park_p99_ns", woke.latency.p99_ns, "ns"));
        records.push(Record::new(W, "probe", "cross", "probe_wake_p50_ns", woke_bare.p50_ns, "ns"));
        records.push(Record::new(W, "probe", "cross", "probe_wake_p99_ns", woke_bare.p99_ns, "ns"));
        Ok(records)
    }

    fn counting(&mut self) -> Result<Vec<Record>, BenchError> {
        const W: &str = "counting";
        let k = self.repeat();
        let engine = self.suite.settings.build()?;
        let handle = engine.handle();
        let mut rates: Vec<(Placement, f64)> = Vec::new();
        for round in 1..=k {
            for placement in Placement::BOTH {
                self.step(&format!("counting {} round {round}/{k}", placement.as_str()));
                let params = CountingParams { placement, ..self.suite.plan.counting.clone() };
                rates.push((placement, counting::run(&handle, &params)?.msgs_per_s));
            }
        }
        setup::shutdown(engine, W)?;
        Ok(Placement::BOTH
            .iter()
            .map(|&p| {
                let values: Vec<f64> = rates.iter().filter(|(q, _)| *q == p).map(|(_, v)| *v).collect();
                self.record(W, p, "msgs_per_s", median(&values), "msg/s").repeat(k)
            })
            .collect())
    }

    fn thread_ring(&mut self) -> Result<Vec<Record>, BenchError> {
        const W: &str = "thread-ring";
        let k = self.repeat();
        let engine = self.suite.settings.build()?;
        let handle = engine.handle();
        let mut rates: Vec<(Placement, u32, f64)> = Vec::new();
        for round in 1..=k {
            for placement in Placement::BOTH {
                self.step(&format!("thread-ring {} round {round}/{k}", placement.as_str()));
                let params = ThreadRingParams { placement, ..self.suite.plan.ring.clone() };
                let out = thread_ring::run(&handle, &params)?;
                rates.push((placement, out.agents, out.hops_per_s));
            }
        }
        setup::shutdown(engine, W)?;
        Ok(Placement::BOTH
            .iter()
            .map(|&p| {
                let values: Vec<f64> = rates.iter().filter(|(q, _, _)| *q == p).map(|(_, _, v)| *v).collect();
                let agents = rates.iter().find(|(q, _, _)| *q == p).map_or(0, |(_, a, _)| *a);
                self.record(W, p, "hops_per_s", median(&values), "hop/s").agents(u64::from(agents)).repeat(k)
            })
            .collect())
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
        let mut suite =
            Suite { settings: EngineSettings::test(2), plan: Plan::tiny(), workloads: Workload::ALL.to_vec() };
        let steps = suite.steps();
        let mut seen = Vec::new();
        let records = suite.run(&mut |step, total, label| seen.push((step, total, label.to_string()))).unwrap();
        assert_eq!(seen.len(), steps, "{seen:?}");
        assert!(seen.iter().all(|(_, total, _)| *total == steps));
        assert!(seen[0].2.starts_with("spawn memory"), "memory runs first: {seen:?}");
        let workloads: Vec<&str> = records.iter().map(|r| r.workload).fold(Vec::new(), |mut v, w| {
            if !v.contains(&w) {
                v.push(w);
            }
            v
        });
        assert_eq!(workloads, ["pingpong", "counting", "thread-ring", "spawn", "registry", "scaling"]);
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
        let suite =
            Suite { settings: EngineSettings::test(1), plan: Plan::tiny(), workloads: vec![Workload::Counting] };
        assert!(suite.validate().unwrap_err().is_usage());
        let suite = Suite { workloads: vec![Workload::Spawn, Workload::Registry], ..suite };
        assert!(suite.validate().is_ok());
    }
}
