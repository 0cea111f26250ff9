//! Running one seed: the scheduler, virtual time, faults and the outcome.
//!
//! The loop: the scheduler picks a shard and runs one pass of it; once a run of picks finds no
//! shard with work, virtual time jumps to the earliest deadline (or the end of a stall), and
//! when there is none the scenario is asked for its next phase or the run ends. A run that
//! passes `max_virtual_ns` of virtual time or `max_steps` passes fails: something hangs.
//!
//! Invariants: the scheduler draws only from its own stream of the seed; a stalled shard is not
//! passed before its stall ends; the fingerprint covers every dispatch in order.

use crate::rng::SimRng;
use crate::scenario::{Scenario, World};
use crate::trace::{Trace, TraceEvent};
use nexus_engine::shard::{Clock, ManualClock, Shard, ShardLimits};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

/// How the scheduler picks the next shard to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Uniformly at random.
    Random,
    /// PCT-style: shards in a seeded priority order, the highest with work runs; at `depth - 1`
    /// seeded change points the running shard drops to the lowest priority. Finds ordering
    /// bugs of depth `depth` with a known probability per run.
    Pct {
        /// The bug depth it aims at.
        depth: u32,
    },
}

/// Seeded faults, each with its rate.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Faults {
    /// Chance, per pass, that the picked shard stalls instead (is not scheduled) for a virtual
    /// interval of up to `stall_ms`.
    pub stall: f64,
    /// Longest stall, in virtual milliseconds.
    pub stall_ms: u64,
    /// Tiny mailboxes (4 messages), rings (8 envelopes) and backlogs: backpressure everywhere.
    pub pressure: bool,
    /// Chance that a handler of the scenario panics where the scenario allows it.
    pub panic: f64,
    /// Timers and deadlines fire late by up to this many virtual milliseconds (0: on time).
    pub jitter_ms: u64,
    /// Chance, per pass, that the host gives up on one of its pending asks (a host-side ask
    /// timeout): the answer, when it comes, is a counted late reply.
    pub host_timeout: f64,
    /// Chance, per pass, that what the pass sends to other shards stays invisible to them until
    /// the sender's next pass (delayed ring visibility).
    pub delay: f64,
    /// Chance, per pass, that one of the agents the scenario offers ([`World::killable`]) is
    /// stopped between passes, as a failure (`ExitReason::Failed`).
    pub kill: f64,
}

/// A fault specification that does not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "bad fault spec `{0}`; hint: use comma-separated panic=P, stall=P, stall_ms=N, jitter_ms=N, kill=P, delay=P, host_timeout=P, pressure (P in 0..=1)"
)]
pub struct FaultsError(pub String);

impl Faults {
    /// Parses `panic=0.01,stall=0.05,stall_ms=20,pressure`; an empty spec means no faults.
    pub fn parse(spec: &str) -> Result<Faults, FaultsError> {
        let mut f = Faults { stall_ms: 10, ..Faults::default() };
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let bad = || FaultsError(item.to_owned());
            let rate = |v: &str| v.parse::<f64>().ok().filter(|p| (0.0..=1.0).contains(p)).ok_or_else(bad);
            match item.split_once('=') {
                None if item == "pressure" => f.pressure = true,
                Some(("panic", v)) => f.panic = rate(v)?,
                Some(("stall", v)) => f.stall = rate(v)?,
                Some(("stall_ms", v)) => f.stall_ms = v.parse().map_err(|_| bad())?,
                Some(("jitter_ms", v)) => f.jitter_ms = v.parse().map_err(|_| bad())?,
                Some(("kill", v)) => f.kill = rate(v)?,
                Some(("delay", v)) => f.delay = rate(v)?,
                Some(("host_timeout", v)) => f.host_timeout = rate(v)?,
                _ => return Err(bad()),
            }
        }
        Ok(f)
    }

    /// The spec back as text (for reports and replay commands).
    pub fn spec(&self) -> String {
        let mut parts = Vec::new();
        if self.panic > 0.0 {
            parts.push(format!("panic={}", self.panic));
        }
        if self.stall > 0.0 {
            parts.push(format!("stall={},stall_ms={}", self.stall, self.stall_ms));
        }
        if self.host_timeout > 0.0 {
            parts.push(format!("host_timeout={}", self.host_timeout));
        }
        if self.delay > 0.0 {
            parts.push(format!("delay={}", self.delay));
        }
        if self.kill > 0.0 {
            parts.push(format!("kill={}", self.kill));
        }
        if self.jitter_ms > 0 {
            parts.push(format!("jitter_ms={}", self.jitter_ms));
        }
        if self.pressure {
            parts.push("pressure".to_owned());
        }
        parts.join(",")
    }
}

/// The settings of one run.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// The seed.
    pub seed: u64,
    /// How shards are scheduled.
    pub mode: Mode,
    /// Faults and their rates.
    pub faults: Faults,
    /// Keep every trace event (for `replay --trace`), not only the last 50.
    pub keep_trace: bool,
    /// Virtual time after which the run counts as hung.
    pub max_virtual_ns: u64,
    /// Passes after which the run counts as livelocked.
    pub max_steps: u64,
}

impl SimConfig {
    /// Defaults for `seed`: random scheduling, no faults, an hour of virtual time at most.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            mode: Mode::Random,
            faults: Faults::default(),
            keep_trace: false,
            max_virtual_ns: 3_600_000_000_000,
            max_steps: 20_000_000,
        }
    }
}

/// What one run found.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The scenario's name.
    pub scenario: &'static str,
    /// The seed.
    pub seed: u64,
    /// The running hash of the trace.
    pub fingerprint: u64,
    /// `Err` with the first invariant that failed.
    pub result: Result<(), String>,
    /// Virtual time at the end.
    pub virtual_ns: u64,
    /// Wall-clock time the run took.
    pub real_ns: u64,
    /// Dispatches traced.
    pub dispatches: u64,
    /// The last 50 trace events.
    pub last_events: Vec<TraceEvent>,
    /// Every trace event, when `keep_trace` was set.
    pub trace: Option<Vec<TraceEvent>>,
}

impl Outcome {
    /// The outcome as one JSON line: `{"scenario","seed","fingerprint","ok","virtual_ns","real_ns"}`.
    pub fn to_json(&self) -> String {
        format!(
            "{{\"scenario\":\"{}\",\"seed\":{},\"fingerprint\":\"{:016x}\",\"ok\":{},\"virtual_ns\":{},\"real_ns\":{}}}",
            self.scenario,
            self.seed,
            self.fingerprint,
            self.result.is_ok(),
            self.virtual_ns,
            self.real_ns
        )
    }
}

/// Picks shards: see [`Mode`].
struct Scheduler {
    rng: SimRng,
    mode: Mode,
    /// PCT: shard indices from highest to lowest priority, and the steps that change it.
    order: Vec<usize>,
    change_points: Vec<u64>,
}

impl Scheduler {
    fn new(mode: Mode, mut rng: SimRng, shards: usize) -> Self {
        let mut order: Vec<usize> = (0..shards).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let change_points = match mode {
            Mode::Pct { depth } => (1..depth.max(1)).map(|_| rng.below(100_000)).collect(),
            Mode::Random => Vec::new(),
        };
        Self { rng, mode, order, change_points }
    }

    /// The order in which to try shards at `step`: one random shard, or every shard by
    /// priority (the first with work runs).
    fn candidates(&mut self, step: u64, shards: usize) -> Vec<usize> {
        match self.mode {
            Mode::Random => vec![self.rng.below(shards as u64) as usize],
            Mode::Pct { .. } => {
                if self.change_points.contains(&step) {
                    let top = self.order.remove(0);
                    self.order.push(top);
                }
                self.order.clone()
            }
        }
    }
}

/// Runs one seed of `scenario`.
pub fn run(scenario: &dyn Scenario, config: &SimConfig) -> Outcome {
    let started = Instant::now();
    let mut seeds = SimRng::new(config.seed);
    let clock = ManualClock::new();
    let limits = if config.faults.pressure {
        ShardLimits { mailbox_capacity: 4, backlog_capacity: 8, ..ShardLimits::default() }
    } else {
        ShardLimits::default()
    };
    let ring = if config.faults.pressure { 8 } else { 256 };
    let trace = Rc::new(RefCell::new(Trace::new(config.keep_trace)));
    let result = Shard::cluster_with_clock(scenario.shards(), limits, ring, Clock::manual(&clock))
        .map_err(|e| format!("the shards could not be built: {e}"))
        .and_then(|mut shards| {
            for shard in shards.iter_mut() {
                let trace = trace.clone();
                shard.trace_dispatches(Some(Box::new(move |d| trace.borrow_mut().record(d))));
            }
            let mut world = World {
                shards,
                clock: clock.clone(),
                rng: SimRng::new(seeds.next_u64()),
                killable: Default::default(),
                killed: 0,
                host_asks: Vec::new(),
            };
            let scheduler = Scheduler::new(config.mode, SimRng::new(seeds.next_u64()), world.shards());
            let stalls = SimRng::new(seeds.next_u64());
            drive(scenario, config, &mut world, scheduler, stalls, &trace)
        });
    let mut trace = trace.borrow_mut();
    Outcome {
        scenario: scenario.name(),
        seed: config.seed,
        fingerprint: trace.fingerprint(),
        result,
        virtual_ns: clock.now_ns(),
        real_ns: started.elapsed().as_nanos() as u64,
        dispatches: trace.count(),
        last_events: trace.last(),
        trace: trace.take_all(),
    }
}

/// Runs the scenario to its end on `world`, then checks it.
fn drive(
    scenario: &dyn Scenario,
    config: &SimConfig,
    world: &mut World,
    mut scheduler: Scheduler,
    mut stalls: SimRng,
    trace: &RefCell<Trace>,
) -> Result<(), String> {
    let mut instance = scenario.instance(&config.faults);
    instance.start(world)?;
    let n = world.shards();
    let mut stalled_until = vec![0u64; n];
    let mut faults = config.faults.clone();
    let (mut step, mut phase) = (0u64, 0u32);
    loop {
        // Passes in the scheduler's order until a run of picks finds no work, then one sweep
        // over every running shard to be sure (a random run can miss a shard with input).
        loop {
            let mut idle = 0;
            while idle < 4 * n {
                step += 1;
                if step > config.max_steps {
                    return Err(format!("livelock: still busy after {} passes", config.max_steps));
                }
                let worked = scheduler
                    .candidates(step, n)
                    .into_iter()
                    .any(|s| try_pass(world, s, &mut stalled_until, &mut stalls, &faults, trace));
                idle = if worked { 0 } else { idle + 1 };
            }
            let now = world.clock.now_ns();
            // The sweep publishes whatever was held back (delayed visibility ends here).
            let swept = (0..n).filter(|&s| stalled_until[s] <= now).map(|s| {
                world.shards[s].hold_outbound(false);
                progressed(world, s, &stalled_until, trace)
            });
            if !swept.fold(false, |any, worked| any | worked) {
                break;
            }
        }
        // The next moment anything can happen: a running shard's deadline, or a stalled
        // shard's return (its own deadlines wait for it).
        let now = world.clock.now_ns();
        let next = (0..n)
            .filter_map(
                |s| if stalled_until[s] > now { Some(stalled_until[s]) } else { world.shards[s].next_deadline() },
            )
            .min();
        match next {
            Some(next) if next > config.max_virtual_ns => {
                return Err(format!("hang: work still due at {} ms of virtual time", next / 1_000_000));
            }
            Some(next) => {
                let jitter = config.faults.jitter_ms * 1_000_000;
                let late = if jitter > 0 { stalls.below(jitter) } else { 0 };
                world.clock.advance_to(next.max(now + 1) + late);
            }
            None if instance.on_quiet(world, phase) => {
                // The scenario's own checking phases run without kills: a kill then would
                // change what they are reading.
                faults.kill = 0.0;
                faults.host_timeout = 0.0;
                phase += 1;
            }
            None => break,
        }
    }
    world.accounted()?;
    instance.check(world)
}

/// Picks shard `s`: stalls it (a seeded fault), skips it while stalled, or runs one pass;
/// whether that pass made progress.
fn try_pass(
    world: &mut World,
    s: usize,
    stalled_until: &mut [u64],
    stalls: &mut SimRng,
    faults: &Faults,
    trace: &RefCell<Trace>,
) -> bool {
    let now = world.clock.now_ns();
    if stalled_until[s] > now {
        return false;
    }
    if stalls.chance(faults.kill) {
        world.kill_one(stalls);
    }
    if stalls.chance(faults.host_timeout) {
        world.abandon_one(stalls);
    }
    let hold = stalls.chance(faults.delay);
    world.shards[s].hold_outbound(hold);
    if stalls.chance(faults.stall) {
        stalled_until[s] = now + 1 + stalls.below(faults.stall_ms.max(1) * 1_000_000);
        return false;
    }
    progressed(world, s, stalled_until, trace)
}

/// Runs one pass of shard `s`; whether it made progress. A shard only retrying its backlog to
/// a stalled peer makes none until the stall ends, which must not hold virtual time back.
fn progressed(world: &mut World, s: usize, stalled_until: &[u64], trace: &RefCell<Trace>) -> bool {
    let before = trace.borrow().count();
    // How many envelopes this pass takes per ring: drawn from the scenario's world stream.
    let batch = 1 + world.rng.below(64) as usize;
    world.shards[s].set_batch(batch);
    if world.shards[s].pass() == 0 {
        return false;
    }
    let now = world.clock.now_ns();
    !stalled_until.iter().any(|&t| t > now) || trace.borrow().count() > before
}

/// Runs `config`'s seed twice and fails when the two fingerprints differ: the run depends on
/// something besides its seed. Returns the first outcome.
pub fn check_determinism(scenario: &dyn Scenario, config: &SimConfig) -> Result<Outcome, String> {
    let first = run(scenario, config);
    let second = run(scenario, config);
    if first.fingerprint != second.fingerprint || first.dispatches != second.dispatches {
        return Err(format!(
            "nondeterminism: seed {} gave fingerprints {:016x} ({} dispatches) and {:016x} ({} dispatches)",
            config.seed, first.fingerprint, first.dispatches, second.fingerprint, second.dispatches
        ));
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_specs_parse_and_print_back() {
        let f = Faults::parse("panic=0.01, stall=0.05,stall_ms=20,jitter_ms=3,pressure").unwrap();
        assert_eq!(
            f,
            Faults { stall: 0.05, stall_ms: 20, pressure: true, panic: 0.01, jitter_ms: 3, ..Faults::default() }
        );
        assert_eq!(Faults::parse("delay=0.3").unwrap().delay, 0.3);
        assert_eq!(Faults::parse("kill=0.5").unwrap().kill, 0.5);
        assert_eq!(Faults::parse(&f.spec()).unwrap(), f);
        assert_eq!(Faults::parse("").unwrap().spec(), "");
        assert!(Faults::parse("panic=2").is_err());
        assert!(Faults::parse("wobble").unwrap_err().to_string().contains("hint"));
    }
}
