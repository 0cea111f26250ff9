//! `chaos`: thousands of supervised agents under steady ask traffic, with injected panics.
//!
//! The tree: a root supervisor on shard 0 (one_for_one) supervises `groups` group supervisors,
//! spread over the shards; each group supervisor (one_for_one) supervises `agents / groups`
//! [`ChaosWorker`]s on its own shard, each registered as `w<k>`. One [`Loader`] per shard
//! keeps `window` asks in flight to workers picked at random, addressed through their names
//! (resolved with `Ctx::lookup` and cached; a failed ask drops the cache entry, so the next
//! ask to that worker finds the restarted instance).
//!
//! While the panic rate is non-zero, a worker panics in that fraction of the asks it handles
//! (decided by its own seeded generator). The engine stops it, its group supervisor restarts
//! it under the same name, and the asks it held fail at once with a typed error.
//!
//! Checks, in [`run`]: every ask got a reply or a typed error (none outstanding when the
//! loaders stop); every worker runs at the end (each group supervisor reports all its
//! children running); the accounting invariant holds exactly on a quiescent snapshot.

use crate::setup;
use crate::BenchError;
use nexus_engine::agent::{Addr, Agent, AgentId, Ctx, Lookup, SpawnPlacement};
use nexus_engine::ask::{AskError, ReplyTo};
use nexus_engine::engine::EngineHandle;
use nexus_engine::supervision::{ChildSpec, Strategy, Supervisor, SupervisorMsg, SupervisorSpec, SupervisorStats};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const WORKLOAD: &str = "chaos";

/// How long one ask of a loader may wait.
const ASK_TIMEOUT: Duration = Duration::from_secs(2);

/// The panic message of injected panics (see [`quiet_injected_panics`]).
pub const INJECTED: &str = "injected panic";

/// The chaos scenario's size.
#[derive(Clone, Copy, Debug)]
pub struct ChaosParams {
    /// Supervised workers.
    pub agents: usize,
    /// Group supervisors (each supervises `agents / groups` workers).
    pub groups: usize,
    /// Asks each loader keeps in flight.
    pub window: usize,
    /// Panics per million handled asks (10,000 = 1%).
    pub panic_ppm: u32,
    /// How long traffic runs.
    pub duration: Duration,
}

impl Default for ChaosParams {
    fn default() -> Self {
        Self { agents: 10_000, groups: 100, window: 256, panic_ppm: 10_000, duration: Duration::from_secs(3) }
    }
}

/// What one run measured.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ChaosFigures {
    /// Asks answered with a reply.
    pub replies: u64,
    /// Asks that failed with a typed error (any kind but a timeout).
    pub failed: u64,
    /// Asks that timed out.
    pub timeouts: u64,
    /// Replies per second of traffic.
    pub replies_per_sec: f64,
    /// Worker restarts over every group supervisor.
    pub restarts: u64,
    /// Panics the engine caught.
    pub panics: u64,
}

/// Installs a panic hook that keeps quiet about injected panics (whose message starts with
/// [`INJECTED`]) and reports every other panic as the default hook does. For binaries and
/// tests that inject thousands of panics; a library never calls it.
pub fn quiet_injected_panics() {
    nexus_engine::supervision::quiet_panics_starting_with(INJECTED);
}

/// A worker's request.
pub struct Work {
    /// The value to echo.
    pub value: u64,
    /// Where the echo goes.
    pub reply: ReplyTo<u64>,
}

/// The supervised worker: echoes, and panics at the shared rate.
pub struct ChaosWorker {
    rate_ppm: Arc<AtomicU32>,
    rng: u64,
}

impl ChaosWorker {
    fn draw(&mut self) -> u32 {
        // xorshift64*: cheap, seeded per instance.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as u32 % 1_000_000
    }
}

impl Agent for ChaosWorker {
    type Msg = Work;

    fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        self.rng ^= ctx.id().to_bits() | 1;
    }

    fn handle(&mut self, msg: Work, ctx: &mut Ctx<'_>) {
        let rate = self.rate_ppm.load(Ordering::Relaxed);
        if rate != 0 && self.draw() < rate {
            // A literal: the payload is a `&'static str`, nothing is formatted or allocated.
            panic!("injected panic (chaos)");
        }
        ctx.reply(msg.reply, msg.value);
    }
}

/// Messages of the [`Loader`].
pub enum LoaderMsg {
    /// Start keeping `window` asks in flight to the `agents` workers.
    Start {
        /// Workers (`w0` .. `w<agents-1>`).
        agents: usize,
        /// Asks in flight.
        window: usize,
    },
    /// Stop asking; answer once every ask in flight is settled.
    Stop(ReplyTo<ChaosFigures>),
    /// Worker `k` answered an ask (or the ask failed).
    Answered(usize, Result<u64, AskError>),
    /// The lookup of worker `k`'s name answered.
    Found(usize, Result<Option<AgentId>, AskError>),
}

/// Keeps asks in flight to random workers; see the module documentation.
pub struct Loader {
    ids: Vec<Option<AgentId>>,
    looking_up: Vec<bool>,
    asks_in_flight: usize,
    lookups_in_flight: usize,
    window: usize,
    rng: u64,
    stopping: Option<ReplyTo<ChaosFigures>>,
    figures: ChaosFigures,
    started: Option<Instant>,
    elapsed: Duration,
}

impl Loader {
    /// A loader with its own random seed.
    pub fn new(seed: u64) -> Self {
        Self {
            ids: Vec::new(),
            looking_up: Vec::new(),
            asks_in_flight: 0,
            lookups_in_flight: 0,
            window: 0,
            rng: seed | 1,
            stopping: None,
            figures: ChaosFigures::default(),
            started: None,
            elapsed: Duration::ZERO,
        }
    }

    fn pick(&mut self) -> usize {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng % self.ids.len() as u64) as usize
    }

    /// Issues asks until the window is full (a few tries per slot: a worker being looked up
    /// is skipped).
    fn fill(&mut self, ctx: &mut Ctx<'_>) {
        if self.stopping.is_some() || self.ids.is_empty() {
            return;
        }
        let mut tries = 0;
        while self.asks_in_flight < self.window && tries < 4 * self.window {
            tries += 1;
            let k = self.pick();
            match self.ids[k] {
                Some(id) => {
                    let value = self.rng;
                    let asked = ctx
                        .ask(Addr::<Work>::from_id(id), |reply| Work { value, reply })
                        .timeout(ASK_TIMEOUT)
                        .then(move |answer| LoaderMsg::Answered(k, answer));
                    match asked {
                        Ok(()) => self.asks_in_flight += 1,
                        Err(_) => self.figures.failed += 1,
                    }
                }
                None if !self.looking_up[k] => match ctx.lookup(&format!("w{k}"), move |r| LoaderMsg::Found(k, r)) {
                    Lookup::Found(id) => self.ids[k] = Some(id),
                    Lookup::Pending => {
                        self.looking_up[k] = true;
                        self.lookups_in_flight += 1;
                    }
                    Lookup::Missing | Lookup::Unreachable(_) => {}
                },
                None => {}
            }
        }
    }

    fn maybe_finish(&mut self, ctx: &mut Ctx<'_>) {
        if self.stopping.is_some() && self.asks_in_flight == 0 && self.lookups_in_flight == 0 {
            if let Some(reply) = self.stopping.take() {
                let mut figures = self.figures;
                let secs = self.elapsed.as_secs_f64();
                figures.replies_per_sec = if secs > 0.0 { figures.replies as f64 / secs } else { 0.0 };
                ctx.reply(reply, figures);
            }
        }
    }
}

impl Agent for Loader {
    type Msg = LoaderMsg;

    fn handle(&mut self, msg: LoaderMsg, ctx: &mut Ctx<'_>) {
        match msg {
            LoaderMsg::Start { agents, window } => {
                self.ids = vec![None; agents];
                self.looking_up = vec![false; agents];
                self.window = window;
                self.figures = ChaosFigures::default();
                self.elapsed = Duration::ZERO;
                self.started = Some(Instant::now());
                self.fill(ctx);
            }
            LoaderMsg::Stop(reply) => {
                self.elapsed = self.started.map_or(Duration::ZERO, |t| t.elapsed());
                self.stopping = Some(reply);
                self.maybe_finish(ctx);
            }
            LoaderMsg::Answered(k, answer) => {
                self.asks_in_flight -= 1;
                match answer {
                    Ok(_) => self.figures.replies += 1,
                    Err(AskError::Timeout) => {
                        self.figures.timeouts += 1;
                        self.ids[k] = None;
                    }
                    Err(_) => {
                        self.figures.failed += 1;
                        self.ids[k] = None;
                    }
                }
                self.fill(ctx);
                self.maybe_finish(ctx);
            }
            LoaderMsg::Found(k, answer) => {
                self.lookups_in_flight -= 1;
                self.looking_up[k] = false;
                if let Ok(Some(id)) = answer {
                    self.ids[k] = Some(id);
                }
                self.fill(ctx);
                self.maybe_finish(ctx);
            }
        }
    }
}

/// The started tree and loaders of one chaos run.
pub struct ChaosSetup {
    root: Addr<SupervisorMsg>,
    loaders: Vec<Addr<LoaderMsg>>,
    rate_ppm: Arc<AtomicU32>,
    params: ChaosParams,
}

/// Builds the supervision tree and the loaders on a started engine, and waits until every
/// worker runs.
pub fn start(handle: &EngineHandle, params: ChaosParams) -> Result<ChaosSetup, BenchError> {
    if params.groups == 0 || params.agents < params.groups {
        return Err(BenchError::check(WORKLOAD, "need at least one group and one worker per group"));
    }
    let shards = handle.shards();
    let rate_ppm = Arc::new(AtomicU32::new(0));
    let per_group = params.agents / params.groups;
    let mut root_spec = SupervisorSpec::new(Strategy::OneForOne).intensity(100, Duration::from_secs(1));
    for g in 0..params.groups {
        let first = g * per_group;
        let last = if g + 1 == params.groups { params.agents } else { first + per_group };
        let mut group = SupervisorSpec::new(Strategy::OneForOne).intensity(100_000, Duration::from_secs(1));
        for k in first..last {
            let rate = rate_ppm.clone();
            group = group.child(
                ChildSpec::new(format!("w{k}"), move || ChaosWorker { rate_ppm: rate.clone(), rng: 0x9E37_79B9 })
                    .name(format!("w{k}")),
            );
        }
        root_spec = root_spec.child(
            ChildSpec::new(format!("group{g}"), move || Supervisor::new(group.clone()))
                .placement(SpawnPlacement::Shard(g % shards)),
        );
    }
    let root = setup::spawn_on(handle, WORKLOAD, 0, move || Supervisor::new(root_spec))?;
    wait_all_running(handle, root, params, Duration::from_secs(30))?;
    let mut loaders = Vec::with_capacity(shards);
    for s in 0..shards {
        loaders.push(setup::spawn_on(handle, WORKLOAD, s, move || Loader::new(0x1234_5678 + s as u64 * 7919))?);
    }
    Ok(ChaosSetup { root, loaders, rate_ppm, params })
}

/// Restarts counted by every group supervisor, and whether all workers run.
fn census(handle: &EngineHandle, root: Addr<SupervisorMsg>) -> Result<(u64, usize), BenchError> {
    let groups = setup::ask(handle, WORKLOAD, "root children", root, Duration::from_secs(10), SupervisorMsg::Children)?;
    let (mut restarts, mut running) = (0, 0);
    for group in groups {
        let Some(id) = group.agent else { continue };
        let stats: SupervisorStats = setup::ask(
            handle,
            WORKLOAD,
            "group stats",
            Addr::from_id(id),
            Duration::from_secs(10),
            SupervisorMsg::Stats,
        )?;
        restarts += stats.restarts;
        running += stats.running;
    }
    Ok((restarts, running))
}

fn wait_all_running(
    handle: &EngineHandle,
    root: Addr<SupervisorMsg>,
    params: ChaosParams,
    timeout: Duration,
) -> Result<u64, BenchError> {
    let deadline = Instant::now() + timeout;
    loop {
        let (restarts, running) = census(handle, root)?;
        if running == params.agents {
            return Ok(restarts);
        }
        if Instant::now() >= deadline {
            return Err(BenchError::check(WORKLOAD, format!("{running} of {} workers running", params.agents)));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs traffic for `params.duration` at `panic_ppm` (0 for a clean run) and checks the
/// outcome: no ask outstanding or timed out, and every worker running again afterwards.
pub fn run(handle: &EngineHandle, setup: &ChaosSetup, panic_ppm: u32) -> Result<ChaosFigures, BenchError> {
    let params = setup.params;
    let (restarts_before, _) = census(handle, setup.root)?;
    let stats_before = handle.stats()?.totals();
    setup.rate_ppm.store(panic_ppm, Ordering::Relaxed);
    for &loader in &setup.loaders {
        setup::send(
            handle,
            WORKLOAD,
            "start",
            loader,
            LoaderMsg::Start { agents: params.agents, window: params.window },
        )?;
    }
    std::thread::sleep(params.duration);
    let mut figures = ChaosFigures::default();
    for &loader in &setup.loaders {
        let f = setup::ask(handle, WORKLOAD, "stop", loader, ASK_TIMEOUT * 4, LoaderMsg::Stop)?;
        figures.replies += f.replies;
        figures.failed += f.failed;
        figures.timeouts += f.timeouts;
        figures.replies_per_sec += f.replies_per_sec;
    }
    setup.rate_ppm.store(0, Ordering::Relaxed);
    let restarts_after = wait_all_running(handle, setup.root, params, Duration::from_secs(30))?;
    figures.restarts = restarts_after - restarts_before;
    figures.panics = handle.stats()?.totals().panics - stats_before.panics;
    if figures.timeouts != 0 {
        return Err(BenchError::check(
            WORKLOAD,
            format!("{} asks timed out instead of failing fast", figures.timeouts),
        ));
    }
    if panic_ppm == 0 && (figures.failed != 0 || figures.restarts != 0) {
        return Err(BenchError::check(
            WORKLOAD,
            format!("a clean run had {} failed asks and {} restarts", figures.failed, figures.restarts),
        ));
    }
    if figures.restarts != figures.panics {
        return Err(BenchError::check(
            WORKLOAD,
            format!("{} panics but {} restarts", figures.panics, figures.restarts),
        ));
    }
    Ok(figures)
}

/// Checks the accounting on a quiescent snapshot: sent = delivered + dead letters.
pub fn check_accounting(handle: &EngineHandle) -> Result<String, BenchError> {
    let stats = handle.quiescent_stats(Duration::from_secs(30))?;
    let line = stats.accounting_line();
    if !stats.accounted() {
        return Err(BenchError::check(WORKLOAD, format!("accounting does not balance: {line}")));
    }
    Ok(line)
}
