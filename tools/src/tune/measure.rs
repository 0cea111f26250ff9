//! The engine side of `nexus tune`: which yardstick workloads it can measure (and the one
//! figure it takes from each), their sizes, and [`EngineBench`], which turns a point of the
//! search into a config, starts an engine from it, runs the workloads and shuts it down.
//!
//! Invariants: a point is measured with exactly the config `nexus tune` would write for it
//! (the input text with the point's keys set, parsed and validated like `nexus run` does), so
//! the written file is what was measured; every engine is shut down with the yardstick's
//! no-loss check (`nexus_bench::setup::shutdown`) before the next one starts, so no two engines
//! ever spin at the same time. Everything runs on the calling thread (plus the engine's own
//! shard threads).

use super::render::{set_keys, Metric};
use super::search::{Bench, Better, Point, Space};
use nexus_bench::fork_join::{self, ThroughputParams};
use nexus_bench::suite::{Plan, Workload};
use nexus_bench::{big, chameneos, counting, fan_in, pingpong, scaling, setup, thread_ring, BenchError, Placement};
use nexus_engine::config::EngineConfig;
use nexus_engine::engine::{Engine, EngineHandle};
use nexus_engine::executor::Machine;
use nexus_engine::topology::Topology;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The workloads `nexus tune` can measure, in the order their names are listed in hints.
pub const TUNABLE: [Workload; 8] = [
    Workload::PingPong,
    Workload::Counting,
    Workload::ThreadRing,
    Workload::Scaling,
    Workload::Chameneos,
    Workload::Big,
    Workload::FjThroughput,
    Workload::FanIn,
];

/// The figure `nexus tune` takes from `w`, or `None` for a workload it does not measure.
pub fn metric(w: Workload) -> Option<Metric> {
    let (figure, unit, better) = match w {
        Workload::PingPong => ("cross round trip p50", "ns", Better::Lower),
        Workload::Counting => ("cross rate", "msg/s", Better::Higher),
        Workload::ThreadRing => ("cross rate", "hop/s", Better::Higher),
        Workload::Scaling => ("all-shards rate", "msg/s", Better::Higher),
        Workload::Chameneos | Workload::Big | Workload::FjThroughput | Workload::FanIn => {
            ("cross rate", "msg/s", Better::Higher)
        }
        _ => return None,
    };
    Some(Metric { workload: w.name(), figure, unit, better })
}

/// Parses `--workloads` (comma-separated names); `Err` names the unknown one and lists the
/// known ones.
pub fn parse_workloads(list: &str) -> Result<Vec<Workload>, String> {
    let names: Vec<&str> = TUNABLE.iter().map(|w| w.name()).collect();
    let mut out = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match TUNABLE.iter().find(|w| w.name() == name) {
            Some(w) if !out.contains(w) => out.push(*w),
            Some(_) => {}
            None => {
                return Err(format!(
                    "unknown workload {name:?}; hint: use a comma-separated list of {}",
                    names.join(", ")
                ))
            }
        }
    }
    if out.is_empty() {
        return Err(format!("--workloads names no workload; hint: use a comma-separated list of {}", names.join(", ")));
    }
    Ok(out)
}

/// Sizes of one measurement: small enough that an engine with every workload takes well under
/// a second in a release build. `quick` takes the yardstick's tiny test sizes (for debug
/// builds and tests; the figures are then mostly start-up noise).
pub fn plan(quick: bool) -> Plan {
    if quick {
        return Plan::tiny();
    }
    let mut p = Plan::savina(false, 1);
    p.pingpong.round_trips = 10_000;
    p.pingpong.warmup = 500;
    p.counting.messages = 200_000;
    p.ring.hops = 50_000;
    p.scaling.messages = 200_000;
    p.chameneos.meetings = 20_000;
    p.big.pings = 1_000;
    p.fj_throughput.messages = 1_000;
    p.fan_in.messages = 200_000;
    p
}

/// Runs `w` once (cross-shard where it has placements) and returns its figure.
fn run_one(handle: &EngineHandle, w: Workload, plan: &Plan) -> Result<f64, BenchError> {
    let cross = Placement::Cross;
    Ok(match w {
        Workload::PingPong => {
            pingpong::run(handle, &pingpong::PingPongParams { placement: cross, ..plan.pingpong.clone() })?.rtt.p50_ns
        }
        Workload::Counting => {
            counting::run(handle, &counting::CountingParams { placement: cross, ..plan.counting.clone() })?.msgs_per_s
        }
        Workload::ThreadRing => {
            thread_ring::run(handle, &thread_ring::ThreadRingParams { placement: cross, ..plan.ring.clone() })?
                .hops_per_s
        }
        Workload::Scaling => scaling::run(handle, &plan.scaling)?.msgs_per_s,
        Workload::Chameneos => {
            chameneos::run(handle, &chameneos::ChameneosParams { placement: cross, ..plan.chameneos.clone() })?
                .msgs_per_s
        }
        Workload::Big => big::run(handle, &big::BigParams { placement: cross, ..plan.big.clone() })?.msgs_per_s,
        Workload::FjThroughput => {
            fork_join::run_throughput(handle, &ThroughputParams { placement: cross, ..plan.fj_throughput.clone() })?
                .msgs_per_s
        }
        Workload::FanIn => {
            fan_in::run(handle, &fan_in::FanInParams { placement: cross, ..plan.fan_in.clone() })?.msgs_per_s
        }
        other => return Err(BenchError::params(other.name(), "nexus tune does not measure this workload")),
    })
}

/// Parses and validates `text` as `nexus run` would.
pub fn parse_config(text: &str, origin: &str) -> Result<EngineConfig, String> {
    let config = EngineConfig::from_toml_str(text, origin).map_err(|e| e.to_string())?;
    crate::run::validate(&config).map_err(|e| e.to_string())?;
    Ok(config)
}

/// Measures points of a [`Space`] on real engines built from the input config.
pub struct EngineBench {
    text: String,
    origin: String,
    space: Space,
    workloads: Vec<Workload>,
    plan: Plan,
    topology: Topology,
    machine: Machine,
    started: Instant,
    configs: HashMap<Point, Result<EngineConfig, String>>,
}

impl EngineBench {
    /// A bench for `space` over the config `text` (named `origin`), measuring `workloads` at
    /// `plan`'s sizes on `topology` and `machine` (read once by the caller). The clock starts
    /// now.
    pub fn new(
        text: String,
        origin: String,
        space: Space,
        workloads: Vec<Workload>,
        plan: Plan,
        topology: Topology,
        machine: Machine,
    ) -> Self {
        Self {
            text,
            origin,
            space,
            workloads,
            plan,
            topology,
            machine,
            started: Instant::now(),
            configs: HashMap::new(),
        }
    }

    /// The config of `point` (cached): the input text with its keys set, parsed and validated.
    fn config(&mut self, point: &Point) -> Result<EngineConfig, String> {
        if let Some(c) = self.configs.get(point) {
            return c.clone();
        }
        let sets: Vec<(String, String, String)> =
            self.space.sets(point).into_iter().map(|(k, v)| (k, v, String::new())).collect();
        let text = set_keys(&self.text, &sets);
        let config = parse_config(&text, &self.origin);
        self.configs.insert(point.clone(), config.clone());
        config
    }

    /// One engine from `config`, every workload once, then the checked shutdown.
    fn run(&self, config: &EngineConfig) -> Result<Vec<f64>, BenchError> {
        let engine =
            Engine::builder().config(config).topology(self.topology.clone()).machine(self.machine.clone()).build()?;
        let handle = engine.handle();
        let mut figures = Vec::with_capacity(self.workloads.len());
        for &w in &self.workloads {
            match run_one(&handle, w, &self.plan) {
                Ok(f) => figures.push(f),
                Err(e) => {
                    let _ = engine.shutdown();
                    return Err(e);
                }
            }
        }
        setup::shutdown(engine, "tune")?;
        Ok(figures)
    }
}

impl Bench for EngineBench {
    fn admit(&mut self, point: &Point) -> Result<(), String> {
        self.config(point).map(|_| ()).map_err(|e| {
            // The config error's own text is long; the key and message are enough in a table.
            let e = e.split(" (").next().unwrap_or(&e);
            e.rsplit(": key ").next().unwrap_or(e).to_owned()
        })
    }

    fn measure(&mut self, point: &Point) -> Result<Vec<f64>, String> {
        let config = self.config(point)?;
        self.run(&config).map_err(|e| e.to_string())
    }

    fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}
