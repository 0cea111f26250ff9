//! `restart`: how fast a supervised agent comes back after a panic.
//!
//! A [`Supervisor`] (one_for_one) keeps one [`Crasher`] child, on the supervisor's shard
//! (`local`) or on another (`cross`). A [`RestartDriver`] on the supervisor's shard loops:
//! 1. it sends the child `Crash`; the child records the engine-clock time in a shared cell
//!    and panics; the engine catches the panic, the supervisor gets the `Exit` (control lane)
//!    and spawns a new instance;
//! 2. the new instance's `on_start` tells the driver it is up (`Ready`), and the driver sends
//!    it `Ping`;
//! 3. the new instance handles the `Ping`: the time from the panic to that moment is one
//!    sample (it covers the catch, the exit signal, the supervisor's decision, the spawn, the
//!    start hook and the next message's delivery); it answers with the sample.
//!
//! Checks: every restart answered, each by an instance with a new `AgentId`, and the
//! supervisor reports exactly `restarts` restarts.

use crate::setup::{self, Placement};
use crate::stats::{self, Percentiles};
use crate::BenchError;
use hdrhistogram::Histogram;
use nexus_engine::agent::{Addr, Agent, AgentId, Ctx, SendOptions, SpawnPlacement};
use nexus_engine::ask::ReplyTo;
use nexus_engine::engine::EngineHandle;
use nexus_engine::supervision::{ChildSpec, Strategy, Supervisor, SupervisorMsg, SupervisorSpec, SupervisorStats};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const WORKLOAD: &str = "restart";

/// The restart-latency scenario's size.
#[derive(Clone, Copy, Debug)]
pub struct RestartParams {
    /// Restarts to measure.
    pub restarts: u64,
    /// Where the child runs relative to its supervisor.
    pub placement: Placement,
}

impl Default for RestartParams {
    fn default() -> Self {
        Self { restarts: 20_000, placement: Placement::Local }
    }
}

/// The measured figures.
#[derive(Clone, Copy, Debug)]
pub struct RestartFigures {
    /// Panic-to-next-message latency.
    pub latency: Percentiles,
    /// Restarts measured.
    pub restarts: u64,
}

/// Messages of the [`Crasher`].
pub enum CrasherMsg {
    /// Record the time and panic.
    Crash,
    /// Answer with the time since the last panic (ns).
    Ping(Addr<DriverMsg>),
}

/// The supervised child: panics on demand, and measures its own comeback.
pub struct Crasher {
    driver: Addr<DriverMsg>,
    panicked_at: Arc<AtomicU64>,
    epoch: Instant,
}

impl Agent for Crasher {
    type Msg = CrasherMsg;

    fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        let me = ctx.id();
        let _ = ctx.send_with(self.driver, DriverMsg::Ready(me), SendOptions::new().control());
    }

    fn handle(&mut self, msg: CrasherMsg, ctx: &mut Ctx<'_>) {
        match msg {
            CrasherMsg::Crash => {
                self.panicked_at.store(self.epoch.elapsed().as_nanos() as u64, Ordering::Relaxed);
                panic!("injected panic (restart bench)");
            }
            CrasherMsg::Ping(driver) => {
                let now = self.epoch.elapsed().as_nanos() as u64;
                let sample = now.saturating_sub(self.panicked_at.load(Ordering::Relaxed));
                let _ = ctx.send(driver, DriverMsg::Sample(sample));
            }
        }
    }
}

/// What the driver answers the host with: the latency samples, or why the run failed.
pub type RestartReport = Result<Histogram<u64>, String>;

/// Messages of the [`RestartDriver`].
pub enum DriverMsg {
    /// Measure `restarts` restarts of the child supervised by `supervisor`, then reply.
    Run {
        /// Restarts to measure.
        restarts: u64,
        /// Where the report goes.
        reply: ReplyTo<Box<RestartReport>>,
    },
    /// A child instance started.
    Ready(AgentId),
    /// A restarted instance measured its comeback (ns).
    Sample(u64),
}

/// Drives the crash-restart loop; see the module documentation.
#[derive(Default)]
pub struct RestartDriver {
    child: Option<AgentId>,
    seen: HashSet<AgentId>,
    target: u64,
    histogram: Option<Histogram<u64>>,
    reply: Option<ReplyTo<Box<RestartReport>>>,
    waiting_restart: bool,
    armed: bool,
}

impl RestartDriver {
    fn crash(&mut self, ctx: &mut Ctx<'_>) {
        if let Some(child) = self.child {
            self.waiting_restart = true;
            let _ = ctx.send(Addr::<CrasherMsg>::from_id(child), CrasherMsg::Crash);
        }
    }

    fn finish(&mut self, ctx: &mut Ctx<'_>, result: Result<(), String>) {
        if let Some(reply) = self.reply.take() {
            let histogram = self.histogram.take().unwrap_or_else(stats::histogram);
            ctx.reply(reply, Box::new(result.map(|()| histogram)));
        }
    }
}

impl Agent for RestartDriver {
    type Msg = DriverMsg;

    fn handle(&mut self, msg: DriverMsg, ctx: &mut Ctx<'_>) {
        match msg {
            DriverMsg::Run { restarts, reply } => {
                self.target = restarts;
                self.histogram = Some(stats::histogram());
                self.reply = Some(reply);
                self.armed = true;
                self.crash(ctx);
            }
            DriverMsg::Ready(id) => {
                if self.seen.contains(&id) {
                    self.finish(ctx, Err(format!("a restarted child reused the id {id}")));
                    return;
                }
                self.seen.insert(id);
                self.child = Some(id);
                if self.waiting_restart {
                    let me = ctx.myself();
                    let _ = ctx.send(Addr::<CrasherMsg>::from_id(id), CrasherMsg::Ping(me));
                } else if self.armed && self.seen.len() == 1 {
                    // The run was asked for before the first instance was up.
                    self.crash(ctx);
                }
            }
            DriverMsg::Sample(ns) => {
                self.waiting_restart = false;
                if let Some(h) = self.histogram.as_mut() {
                    h.saturating_record(ns.max(1));
                    if h.len() >= self.target {
                        self.finish(ctx, Ok(()));
                        return;
                    }
                }
                self.crash(ctx);
            }
        }
    }
}

/// Runs the restart-latency scenario on a started engine.
pub fn run(handle: &EngineHandle, params: RestartParams) -> Result<RestartFigures, BenchError> {
    params.placement.check(WORKLOAD, handle.shards())?;
    let driver = setup::spawn_on(handle, WORKLOAD, 0, RestartDriver::default)?;
    let child_shard = params.placement.shard_of(1, handle.shards());
    let panicked_at = Arc::new(AtomicU64::new(0));
    let epoch = Instant::now();
    let spec = SupervisorSpec::new(Strategy::OneForOne).intensity(u32::MAX, Duration::from_secs(1)).child(
        ChildSpec::new("crasher", move || Crasher { driver, panicked_at: panicked_at.clone(), epoch })
            .placement(SpawnPlacement::Shard(child_shard)),
    );
    let supervisor = setup::spawn_on(handle, WORKLOAD, 0, move || Supervisor::new(spec))?;
    let timeout = setup::timeout_for(params.restarts, Duration::from_millis(1));
    let histogram = setup::ask(handle, WORKLOAD, "run", driver, timeout, |reply| DriverMsg::Run {
        restarts: params.restarts,
        reply,
    })?
    .map_err(|e| BenchError::check(WORKLOAD, e))?;
    let stats: SupervisorStats =
        setup::ask(handle, WORKLOAD, "supervisor stats", supervisor, Duration::from_secs(10), SupervisorMsg::Stats)?;
    if stats.restarts != params.restarts || stats.running != 1 {
        return Err(BenchError::check(
            WORKLOAD,
            format!(
                "supervisor saw {} restarts ({} running), expected {}",
                stats.restarts, stats.running, params.restarts
            ),
        ));
    }
    if histogram.len() != params.restarts {
        return Err(BenchError::check(
            WORKLOAD,
            format!("{} samples for {} restarts", histogram.len(), params.restarts),
        ));
    }
    handle.stop(supervisor.id()).map_err(BenchError::Engine)?;
    handle.stop(driver.id()).map_err(BenchError::Engine)?;
    Ok(RestartFigures { latency: Percentiles::of(&histogram), restarts: params.restarts })
}
