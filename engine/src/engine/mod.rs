//! The engine: `Engine` owns the shard threads, `EngineHandle` lets host threads talk to them.
//!
//! Building an engine:
//! 1. read the topology (hwloc, or /sys) unless one is given;
//! 2. compute the placement plan (one shard per physical core by default);
//! 3. build the ring mesh and the control plane;
//! 4. start one thread per shard, pinned to its CPU with its memory bound to its NUMA node,
//!    running a glommio `LocalExecutor` (or a plain loop) around the dispatcher;
//! 5. wait until every shard reports that it runs.
//!
//! Shutdown is graceful: intake stops, shards keep dispatching until the engine is quiescent (no
//! shard has work, every envelope pushed into a ring was popped) or the drain timeout passes;
//! then every shard halts, counts what is still in flight as `shutdown` dead letters, stops its
//! agents and returns its counters. Nothing is lost without being counted. A shard thread that
//! panicked outside an agent is marked halted as it exits (`unwind`), so the others still halt
//! and shutdown returns `EngineError::ShardPanicked` at once.

mod batch;
mod error;
mod handle;
pub(crate) mod service;
pub(crate) mod unwind;

pub(crate) use batch::ChunkSpawned;
pub use batch::{SendBatchError, SpawnBatchError, SPAWN_CHUNK};
pub use error::EngineError;
pub use handle::{EngineHandle, HOST_REQUEST_TIMEOUT};
use service::ServiceHook;
pub use service::{ShardService, ShardSetup, STOP_HOOK_LIMIT};

use crate::config::EngineConfig;
use crate::executor::{self, local, Machine, Selection};
use crate::mesh::{self, ShardLinks};
use crate::metrics::{EngineStats, ShardStats};
use crate::placement::{self, Placement, PlacementPlan, PlacementRequest, ShardPlacement};
use crate::shard::shared::{Phase, Shared};
use crate::shard::{DriveOutcome, Driver, ExecutorKind, IdlePolicy, Shard, ShardLimits};
use crate::topology::Topology;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// I/O memory each glommio executor registers with io_uring. It counts against `RLIMIT_MEMLOCK`
/// (8 MiB on many machines), so it is kept small; shards do no bulk storage I/O.
pub const GLOMMIO_IO_MEMORY_BYTES: usize = 256 * 1024;

/// Configures and starts an [`Engine`].
#[derive(Clone, Debug)]
#[must_use]
pub struct EngineBuilder {
    placement: PlacementRequest,
    topology: Option<Topology>,
    limits: ShardLimits,
    idle: IdlePolicy,
    ring_capacity: usize,
    inject_capacity: usize,
    executor: ExecutorKind,
    machine: Option<Machine>,
    drain_timeout: Duration,
    pin: bool,
    service: Option<ServiceHook>,
    tracing: crate::trace::TraceConfig,
}

impl Default for EngineBuilder {
    fn default() -> Self {
        Self {
            placement: PlacementRequest::default(),
            topology: None,
            limits: ShardLimits::default(),
            idle: IdlePolicy::default(),
            ring_capacity: 1024,
            inject_capacity: 4096,
            executor: ExecutorKind::Auto,
            machine: None,
            drain_timeout: Duration::from_secs(2),
            pin: true,
            service: None,
            tracing: crate::trace::TraceConfig::new(),
        }
    }
}

impl EngineBuilder {
    /// Takes every setting from a parsed config (placement, idle policy, mailbox, mesh,
    /// metrics, shutdown and executor). Call `EngineConfig::validate` first.
    pub fn config(mut self, config: &EngineConfig) -> Self {
        self.placement = config.placement.to_request();
        self.idle = IdlePolicy {
            spin_before_park: Duration::from_micros(config.idle.spin_before_park_us),
            passes_before_yield: config.idle.passes_before_yield,
            park_timeout: (config.idle.park_timeout_us != 0)
                .then(|| Duration::from_micros(config.idle.park_timeout_us)),
        };
        self.limits = ShardLimits {
            mailbox_capacity: config.mailbox.capacity,
            overflow: config.mailbox.overflow,
            batch: config.mesh.batch,
            backlog_capacity: config.mesh.overflow_capacity,
            latency_sample_every: config.metrics.latency_sample_every,
            shed_queue_depth: config.shedding.max_queued,
            shed_latency_ns: config.shedding.max_latency_us.saturating_mul(1000),
            ..ShardLimits::default()
        };
        self.ring_capacity = config.mesh.ring_capacity;
        self.inject_capacity = config.mesh.inject_capacity;
        self.executor = config.executor;
        self.drain_timeout = Duration::from_millis(config.shutdown.drain_timeout_ms);
        self.tracing = config.tracing.to_trace_config();
        self
    }

    /// Message tracing: sampling probability, per-shard span buffer, trace depth (see
    /// [`crate::trace`]). Off (sampling 0) unless set.
    pub fn tracing(mut self, config: crate::trace::TraceConfig) -> Self {
        self.tracing = config;
        self
    }

    /// Exactly `n` shards, placed on the first `n` cores of the default order.
    pub fn shards(mut self, n: usize) -> Self {
        self.placement.placement = Placement::Shards(n);
        self
    }

    /// The whole placement request (policy, reserved CPUs, oversubscription).
    pub fn placement(mut self, request: PlacementRequest) -> Self {
        self.placement = request;
        self
    }

    /// Allows more shards than usable cores (shards then share CPUs).
    pub fn oversubscribe(mut self, allow: bool) -> Self {
        self.placement.allow_oversubscribe = allow;
        self
    }

    /// Plans against this topology instead of reading the machine.
    pub fn topology(mut self, topology: Topology) -> Self {
        self.topology = Some(topology);
        self
    }

    /// Per-shard limits (mailbox capacity and policy, batch sizes, backlog, sampling).
    pub fn limits(mut self, limits: ShardLimits) -> Self {
        self.limits = limits;
        self
    }

    /// How shards idle (spin, yield, park).
    pub fn idle(mut self, idle: IdlePolicy) -> Self {
        self.idle = idle;
        self
    }

    /// Envelopes per ring (a power of two).
    pub fn ring_capacity(mut self, capacity: usize) -> Self {
        self.ring_capacity = capacity;
        self
    }

    /// Envelopes per host inject queue.
    pub fn inject_capacity(mut self, capacity: usize) -> Self {
        self.inject_capacity = capacity;
        self
    }

    /// Which executor runs the shards (default [`ExecutorKind::Auto`]; see [`crate::executor`]).
    pub fn executor(mut self, executor: ExecutorKind) -> Self {
        self.executor = executor;
        self
    }

    /// What the executor choice is made from, instead of probing this machine at `build`: for
    /// tests that need a machine where io_uring is blocked, and for hosts that probed already.
    pub fn machine(mut self, machine: Machine) -> Self {
        self.machine = Some(machine);
        self
    }

    /// How long shutdown waits for the engine to drain.
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// Whether shard threads are pinned to their CPUs (default true). Tests that run many
    /// engines at once on a small machine may turn it off.
    pub fn pin_threads(mut self, pin: bool) -> Self {
        self.pin = pin;
        self
    }

    /// Runs `service` on every shard's thread, beside its dispatcher (see [`ShardService`]).
    pub fn service(mut self, service: Arc<dyn ShardService>) -> Self {
        self.service = Some(ServiceHook(service));
        self
    }

    /// Starts the engine.
    pub fn build(self) -> Result<Engine, EngineError> {
        let topology = match self.topology.clone() {
            Some(t) => t,
            None => Topology::detect()?,
        };
        if let Placement::Shards(n) = self.placement.placement {
            if n > crate::agent::MAX_SHARDS {
                return Err(EngineError::TooManyShards(n));
            }
        }
        // Checked even when one shard needs no ring, so a bad config fails the same everywhere.
        crate::ring::check_capacity(self.ring_capacity)?;
        let plan = placement::plan(&topology, &self.placement)?;
        let shards = plan.shards.len();
        if shards > crate::agent::MAX_SHARDS {
            return Err(EngineError::TooManyShards(shards));
        }
        let selection = match &self.machine {
            Some(machine) => executor::select(self.executor, shards, machine)?,
            None => executor::select(self.executor, shards, &Machine::probe())?,
        };
        let executor = selection.kind;
        let links = mesh::build(shards, self.ring_capacity)?;
        let shared =
            Arc::new(Shared::with_tracing(shards, self.inject_capacity, crate::shard::Clock::new(), self.tracing));
        let topology = Arc::new(topology);
        let (ready_tx, ready_rx) = mpsc::channel::<(usize, Result<(), String>)>();
        let mut joins = Vec::with_capacity(shards);
        for (links, placement) in links.into_iter().zip(plan.shards.iter().cloned()) {
            let start = ShardStart {
                placement,
                pin: self.pin,
                topology: topology.clone(),
                links,
                shared: shared.clone(),
                limits: self.limits.clone(),
                idle: self.idle,
                ready: ready_tx.clone(),
                service: self.service.clone(),
                executor,
            };
            let index = start.placement.shard;
            match spawn_shard(executor, start) {
                Ok(join) => joins.push(join),
                Err(reason) => {
                    abort_start(&shared, joins);
                    return Err(EngineError::ShardStart { shard: index, reason });
                }
            }
        }
        drop(ready_tx);
        let mut failure = None;
        for _ in 0..shards {
            match ready_rx.recv() {
                Ok((_, Ok(()))) => {}
                Ok((shard, Err(reason))) => {
                    failure.get_or_insert(EngineError::ShardStart { shard, reason });
                }
                Err(_) => {
                    failure.get_or_insert(EngineError::ShardStart {
                        shard: 0,
                        reason: "a shard thread exited during start-up".into(),
                    });
                    break;
                }
            }
        }
        if let Some(e) = failure {
            abort_start(&shared, joins);
            return Err(e);
        }
        Ok(Engine { handle: EngineHandle { shared }, joins, plan, drain_timeout: self.drain_timeout, selection })
    }
}

/// Stops the shards that did start when another one failed.
fn abort_start(shared: &Arc<Shared>, joins: Vec<ShardJoin>) {
    shared.accepting.store(false, Ordering::SeqCst);
    // Shards that never started count as halted so the others do not wait for them.
    for p in shared.progress.iter() {
        p.halted.store(true, Ordering::Release);
    }
    shared.set_phase(Phase::Halting);
    for j in joins {
        let _ = j.join();
    }
}

/// What a shard thread needs to start.
struct ShardStart {
    placement: ShardPlacement,
    pin: bool,
    topology: Arc<Topology>,
    links: ShardLinks,
    shared: Arc<Shared>,
    limits: ShardLimits,
    idle: IdlePolicy,
    ready: mpsc::Sender<(usize, Result<(), String>)>,
    service: Option<ServiceHook>,
    executor: ExecutorKind,
}

impl ShardStart {
    /// Pins the thread, binds its memory and builds the shard; reports readiness.
    fn init(self) -> Option<(Shard, IdlePolicy)> {
        let index = self.placement.shard;
        if self.pin {
            if let Err(e) = placement::pin_current_thread(&self.topology, self.placement.cpu) {
                let _ = self.ready.send((index, Err(format!("cannot pin to CPU {}: {e}", self.placement.cpu))));
                return None;
            }
            // Binding is best effort: on a one-node machine it changes nothing.
            let _ = placement::bind_current_thread_memory(self.placement.numa_node);
        }
        self.shared.doorbells[index].bind_current_thread();
        let handle = EngineHandle { shared: self.shared.clone() };
        let mut shard = Shard::new(index, self.limits, self.shared, self.links.outbound, self.links.inbound);
        if let Some(ServiceHook(service)) = &self.service {
            let mut setup = service::ShardSetup { shard: &mut shard, executor: self.executor, handle };
            if let Err(reason) = service.start(&mut setup) {
                let _ = self.ready.send((index, Err(format!("its service failed to start: {reason}"))));
                return None;
            }
        }
        let _ = self.ready.send((index, Ok(())));
        Some((shard, self.idle))
    }
}

enum ShardJoin {
    Thread(std::thread::JoinHandle<Option<ShardStats>>),
    #[cfg(feature = "glommio")]
    Glommio(glommio::ExecutorJoinHandle<Option<ShardStats>>),
}

impl ShardJoin {
    fn join(self) -> Option<ShardStats> {
        match self {
            ShardJoin::Thread(h) => h.join().ok().flatten(),
            #[cfg(feature = "glommio")]
            ShardJoin::Glommio(h) => h.join().ok().flatten(),
        }
    }
}

fn spawn_shard(executor: ExecutorKind, start: ShardStart) -> Result<ShardJoin, String> {
    let name = format!("nexus-shard-{}", start.placement.shard);
    match executor {
        // `select` never yields Auto; were it to, threads run everywhere.
        ExecutorKind::Threads | ExecutorKind::Auto => std::thread::Builder::new()
            .name(name)
            .spawn(move || run_threads_shard(start))
            .map(ShardJoin::Thread)
            .map_err(|e| format!("cannot start a thread: {e}")),
        #[cfg(feature = "glommio")]
        ExecutorKind::Glommio => glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .name(&name)
            .io_memory(GLOMMIO_IO_MEMORY_BYTES)
            .ring_depth(64)
            .spawn(move || async move {
                let (mut shard, idle) = start.init()?;
                unwind::arm(&shard.shared, shard.index);
                let mut driver = Driver::in_executor(idle);
                loop {
                    match driver.run(&mut shard, || glommio::executor().need_preempt(), true) {
                        DriveOutcome::Halt => break,
                        DriveOutcome::Yield => glommio::executor().yield_now().await,
                        DriveOutcome::Park(request) => park_in_glommio(&mut shard, request).await,
                    }
                }
                let stats = shard.halt();
                run_stop_hooks_glommio(&mut shard).await;
                unwind::disarm();
                Some(stats)
            })
            .map(ShardJoin::Glommio)
            .map_err(|e| {
                format!("cannot start a glommio executor: {e}; hint: check `ulimit -l` (io_uring needs locked memory) or set executor = \"thread\"")
            }),
        #[cfg(not(feature = "glommio"))]
        ExecutorKind::Glommio => Err("this build has no glommio support; hint: set executor = \"threads\" or build with the `glommio` feature".into()),
    }
}

/// Runs a shard on a plain thread with the threads executor's runtime beside its dispatcher
/// (see [`crate::executor::local`]): busy, it looks at epoll every [`THREADS_IO_POLL_EVERY`]
/// checks; idle, it runs its tasks every `passes_before_yield` passes and parks on a futex
/// (nothing to drive) or in `epoll_wait` (sockets or timers), woken by its doorbell.
fn run_threads_shard(start: ShardStart) -> Option<ShardStats> {
    let runtime = match local::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            let _ = start.ready.send((start.placement.shard, Err(format!("cannot create its epoll runtime: {e}"))));
            return None;
        }
    };
    let _entered = runtime.enter();
    let (mut shard, idle) = start.init()?;
    unwind::arm(&shard.shared, shard.index);
    let mut driver = Driver::in_executor(idle);
    let mut checks: u32 = 0;
    loop {
        let outcome = driver.run(
            &mut shard,
            || {
                checks = checks.wrapping_add(1);
                runtime.has_ready() || (checks % THREADS_IO_POLL_EVERY == 0 && !runtime.is_idle())
            },
            true,
        );
        match outcome {
            DriveOutcome::Halt => break,
            DriveOutcome::Yield => {
                if !runtime.is_idle() {
                    runtime.turn(Duration::ZERO);
                }
            }
            DriveOutcome::Park(request) => park_in_threads(&mut shard, &runtime, request),
        }
    }
    let stats = shard.halt();
    run_stop_hooks_threads(&mut shard, &runtime);
    unwind::disarm();
    runtime.shutdown();
    Some(stats)
}

/// Awaits the services' stop work (`ShardSetup::on_stop`), up to `STOP_HOOK_LIMIT` in all.
#[cfg(feature = "glommio")]
async fn run_stop_hooks_glommio(shard: &mut Shard) {
    let hooks = std::mem::take(&mut shard.stop_hooks);
    if hooks.is_empty() {
        return;
    }
    let all = async {
        for hook in hooks {
            hook.await;
        }
        true
    };
    let limit = async {
        glommio::timer::sleep(service::STOP_HOOK_LIMIT).await;
        false
    };
    // Past the limit what is left is dropped (a service that must report it bounds its own
    // work below the limit).
    let _finished = futures_lite::future::or(all, limit).await;
}

/// Runs the services' stop work (`ShardSetup::on_stop`) on the threads runtime until it is
/// done, up to `STOP_HOOK_LIMIT` in all.
fn run_stop_hooks_threads(shard: &mut Shard, runtime: &local::Runtime) {
    let hooks = std::mem::take(&mut shard.stop_hooks);
    if hooks.is_empty() {
        return;
    }
    let left = std::rc::Rc::new(std::cell::Cell::new(hooks.len()));
    for hook in hooks {
        let left = left.clone();
        runtime.spawn(async move {
            hook.await;
            left.set(left.get() - 1);
        });
    }
    let deadline = std::time::Instant::now() + service::STOP_HOOK_LIMIT;
    while left.get() > 0 {
        let now = std::time::Instant::now();
        if now >= deadline {
            return; // what is left is dropped with the runtime's tasks
        }
        runtime.turn((deadline - now).min(Duration::from_millis(10)));
    }
}

/// Driver checks (one every 16 busy passes, `PREEMPT_CHECK_PASSES`) between two
/// looks at epoll on a busy threads shard that has sockets or timers.
const THREADS_IO_POLL_EVERY: u32 = 4;

/// Parks a threads shard until its doorbell rings or the request's timeout passes: on a futex
/// when its runtime has nothing to drive, else in `epoll_wait` on the runtime's eventfd.
fn park_in_threads(shard: &mut Shard, runtime: &local::Runtime, request: crate::shard::ParkRequest) {
    let shared = shard.shared.clone();
    let bell = &shared.doorbells[shard.index];
    if runtime.is_idle() {
        if shard.announce_sleep(&request) {
            shard.metrics.counters.parks += 1;
            bell.park_until_rung(request.timeout);
        }
        return;
    }
    bell.set_waker(&runtime.park_waker());
    if shard.announce_sleep(&request) {
        shard.metrics.counters.parks += 1;
        // `Duration::MAX` is as good as forever: epoll waits at most `i32::MAX` ms, and the
        // runtime's own timers shorten the wait.
        runtime.turn(request.timeout.unwrap_or(Duration::MAX));
        bell.wake_up();
    } else {
        runtime.turn(Duration::ZERO);
    }
    bell.clear_waker();
}

/// Sleeps a glommio shard inside its executor (so its network tasks and timers stay live) until
/// a peer rings its doorbell or the request's timeout passes.
#[cfg(feature = "glommio")]
async fn park_in_glommio(shard: &mut Shard, request: crate::shard::ParkRequest) {
    use std::future::Future;
    use std::task::Poll;
    let shared = shard.shared.clone();
    let bell = &shared.doorbells[shard.index];
    let mut slept = false;
    let mut timer = request.timeout.map(|t| Box::pin(glommio::timer::Timer::new(t)));
    std::future::poll_fn(|cx| {
        if !slept {
            bell.set_waker(cx.waker());
            if !shard.announce_sleep(&request) {
                return Poll::Ready(()); // work came since the last look: go and take it
            }
            slept = true;
            // Arm the timeout, if any; an already expired one ends the sleep now.
            return match timer.as_mut() {
                Some(timer) => timer.as_mut().poll(cx).map(|_| ()),
                None => Poll::Pending,
            };
        }
        // Woken: by the doorbell, by the timer, or by a task of this executor.
        Poll::Ready(())
    })
    .await;
    if slept {
        shard.metrics.counters.parks += 1;
        bell.wake_up();
    }
    bell.clear_waker();
}

/// What a graceful shutdown found.
#[derive(Debug, Clone)]
pub struct ShutdownReport {
    /// Every shard's final figures, plus the host's sends.
    pub stats: EngineStats,
    /// Whether the engine drained completely before the timeout (otherwise what was left is
    /// counted as `shutdown` dead letters).
    pub drained: bool,
    /// How long the shutdown took.
    pub elapsed: Duration,
}

/// A running engine. Dropping it shuts it down.
pub struct Engine {
    handle: EngineHandle,
    joins: Vec<ShardJoin>,
    plan: PlacementPlan,
    drain_timeout: Duration,
    selection: Selection,
}

impl Engine {
    /// A builder with the defaults: one shard per physical core, the `auto` executor.
    pub fn builder() -> EngineBuilder {
        EngineBuilder::default()
    }

    /// A handle for host threads (cheap to clone, `Send + Sync`).
    pub fn handle(&self) -> EngineHandle {
        self.handle.clone()
    }

    /// Where each shard runs.
    pub fn plan(&self) -> &PlacementPlan {
        &self.plan
    }

    /// The executor the shards run in (`Glommio` or `Threads`, never `Auto`).
    pub fn executor(&self) -> ExecutorKind {
        self.selection.kind
    }

    /// The one line `auto` has for the operator when it fell back to threads.
    pub fn executor_warning(&self) -> Option<&str> {
        self.selection.warning.as_deref()
    }

    /// Shuts down gracefully (see the module documentation) and returns the final figures.
    pub fn shutdown(mut self) -> Result<ShutdownReport, EngineError> {
        self.shutdown_inner()
    }

    fn shutdown_inner(&mut self) -> Result<ShutdownReport, EngineError> {
        let started = Instant::now();
        let shared = &self.handle.shared;
        shared.accepting.store(false, Ordering::SeqCst);
        while shared.host_in_flight.load(Ordering::SeqCst) != 0 {
            std::thread::yield_now();
        }
        shared.set_phase(Phase::Draining);
        let drained = wait_quiescent(shared, started + self.drain_timeout);
        shared.set_phase(Phase::Halting);
        let mut shards = Vec::with_capacity(self.joins.len());
        let mut panicked = None;
        for (i, j) in std::mem::take(&mut self.joins).into_iter().enumerate() {
            match j.join() {
                Some(s) => shards.push(s),
                None => {
                    panicked.get_or_insert(i);
                }
            }
        }
        if let Some(i) = panicked {
            return Err(EngineError::ShardPanicked(i));
        }
        let stats = EngineStats {
            shards,
            host_sent: shared.host_sent.load(Ordering::Relaxed),
            host_rejected_full: shared.host_rejected_full.load(Ordering::Relaxed),
        };
        Ok(ShutdownReport { stats, drained, elapsed: started.elapsed() })
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if !self.joins.is_empty() {
            let _ = self.shutdown_inner();
        }
    }
}

/// Waits until no shard has work and every envelope pushed into a ring was popped, seen the same
/// way twice in a row; or until `deadline`, or until a shard's thread panicked (it will never
/// drain). Returns whether it got there.
fn wait_quiescent(shared: &Shared, deadline: Instant) -> bool {
    let mut last: Option<(u64, u64)> = None;
    loop {
        if shared.progress.iter().any(|p| p.panicked.load(Ordering::Acquire)) {
            return false;
        }
        let idle = shared.progress.iter().all(|p| p.idle.load(Ordering::Acquire));
        let pushed: u64 = shared.progress.iter().map(|p| p.pushed.load(Ordering::Relaxed)).sum();
        let popped: u64 = shared.progress.iter().map(|p| p.popped.load(Ordering::Relaxed)).sum();
        let injects_empty = shared.injects.iter().all(|q| q.is_empty());
        if idle && injects_empty && pushed == popped {
            if last == Some((pushed, popped)) {
                return true;
            }
            last = Some((pushed, popped));
        } else {
            last = None;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
}
