//! `supervision`: supervised workers on every shard panic at seeded points of their timers.
//!
//! A one-for-one supervisor on shard 0 supervises one worker per shard slot (placed on every
//! shard). Each worker ticks on a timer at seeded intervals and panics on a tick with the
//! panic rate (2% unless `--faults panic=P` says otherwise), until a shared budget of ticks is
//! spent. Workers offer themselves to the `kill` fault. The supervisor's parent, an observer that traps exits, spawned it linked; in half
//! the seeds the supervisor's intensity is tight (2 restarts in 100 ms), so it may give up and
//! escalate. When the run is quiet, the observer asks the supervisor for its counts and
//! children.
//!
//! Checks: escalation happens at most once, and only with the tight intensity; without it,
//! restarts equal panics plus kills (none unanswered, none restarted twice) and every child runs at
//! the end; no ask timed out; and the accounting (checked by the runner).

use crate::rng::SimRng;
use crate::runner::Faults;
use crate::scenario::{Instance, Killable, Scenario, World};
use crate::INJECTED;
use nexus_engine::agent::{Addr, Agent, Ctx, Exit, SpawnPlacement, Spawned};
use nexus_engine::ask::AskError;
use nexus_engine::supervision::{
    ChildInfo, ChildSpec, Strategy, Supervisor, SupervisorMsg, SupervisorSpec, SupervisorStats,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const WORKERS: usize = 6;
const TICKS: u64 = 600;

/// The scenario.
pub(crate) struct Supervision;

impl Scenario for Supervision {
    fn name(&self) -> &'static str {
        "supervision"
    }

    fn about(&self) -> &'static str {
        "one-for-one supervision of workers that panic on seeded ticks: restarts equal panics, every child alive at the end"
    }

    fn instance(&self, faults: &Faults) -> Box<dyn Instance> {
        let panic = if faults.panic > 0.0 { faults.panic } else { 0.02 };
        Box::new(Run { panic, shared: Arc::new(Shared::default()), observer: None, tight: false })
    }
}

/// What the workers and the observer share with the check.
#[derive(Default)]
struct Shared {
    panics: AtomicU64,
    ticks_left: AtomicU64,
    instances: AtomicU64,
    seen: Mutex<Option<(SupervisorStats, Vec<ChildInfo>)>>,
    failed_asks: AtomicU64,
    /// Exits of the supervisor its parent saw (escalations).
    escalations: AtomicU64,
}

struct Run {
    panic: f64,
    shared: Arc<Shared>,
    observer: Option<Addr<ObserverMsg>>,
    tight: bool,
}

impl Instance for Run {
    fn start(&mut self, world: &mut World) -> Result<(), String> {
        self.shared.ticks_left.store(TICKS, Ordering::Relaxed);
        let seed = world.rng.next_u64();
        self.tight = world.rng.chance(0.5);
        let (max, period) =
            if self.tight { (2, Duration::from_millis(100)) } else { (1_000_000, Duration::from_secs(1)) };
        let mut spec = SupervisorSpec::new(Strategy::OneForOne).intensity(max, period);
        for i in 0..WORKERS {
            let (shared, panic, killable) = (self.shared.clone(), self.panic, world.killable());
            let factory = move || {
                let k = shared.instances.fetch_add(1, Ordering::Relaxed);
                let rng = SimRng::new(seed ^ k.wrapping_mul(0x9E37_79B9));
                Worker { rng, panic, shared: shared.clone(), killable: killable.clone() }
            };
            let placement = SpawnPlacement::Shard(i % world.shards());
            spec = spec.child(ChildSpec::new(format!("w{i}"), factory).placement(placement));
        }
        spec.validate().map_err(|e| e.to_string())?;
        let observer = Observer { spec: Some(spec), supervisor: None, shared: self.shared.clone() };
        self.observer = Some(world.spawn(0, observer)?);
        Ok(())
    }

    fn on_quiet(&mut self, world: &mut World, phase: u32) -> bool {
        match (phase, self.observer) {
            (0, Some(observer)) => world.send(observer, ObserverMsg::Look).is_ok(),
            _ => false,
        }
    }

    fn check(&mut self, world: &World) -> Result<(), String> {
        let timeouts = world.totals().ask_timeouts;
        if timeouts != 0 {
            return Err(format!("{timeouts} asks timed out"));
        }
        match self.shared.escalations.load(Ordering::Relaxed) {
            0 => {}
            1 if self.tight => return Ok(()),
            1 => return Err("the supervisor escalated with an intensity it cannot exceed".into()),
            n => return Err(format!("the supervisor escalated {n} times")),
        }
        // A worker the `kill` fault stopped is restarted like one that panicked.
        let panics = self.shared.panics.load(Ordering::Relaxed) + world.killed();
        let seen = self.shared.seen.lock().map_err(|_| "the observer panicked")?.clone();
        let Some((stats, children)) = seen else { return Err("the observer got no answer".into()) };
        if stats.restarts != panics {
            return Err(format!("restarts {} != panics and kills {panics}", stats.restarts));
        }
        let running = children.iter().filter(|c| c.agent.is_some()).count();
        if running != WORKERS || stats.running != WORKERS {
            return Err(format!("{running} of {WORKERS} children run at the end ({stats:?})"));
        }
        if self.shared.failed_asks.load(Ordering::Relaxed) != 0 {
            return Err("an ask to the running supervisor failed".into());
        }
        Ok(())
    }
}

/// A supervised worker: ticks at seeded intervals while the shared budget lasts, and panics
/// on a tick with the panic rate.
struct Worker {
    rng: SimRng,
    panic: f64,
    shared: Arc<Shared>,
    killable: Killable,
}

struct Tick;

impl Worker {
    fn arm(&mut self, ctx: &mut Ctx<'_>) {
        let delay = Duration::from_micros(100 + self.rng.below(10_000));
        ctx.send_after(ctx.myself(), Tick, delay);
    }
}

impl Agent for Worker {
    type Msg = Tick;

    fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        self.killable.add(ctx.id());
        self.arm(ctx);
    }

    fn handle(&mut self, _tick: Tick, ctx: &mut Ctx<'_>) {
        let left = self.shared.ticks_left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| t.checked_sub(1));
        if left.is_err() {
            return;
        }
        if self.rng.chance(self.panic) {
            self.shared.panics.fetch_add(1, Ordering::Relaxed);
            panic!("{INJECTED}: worker panics on its tick");
        }
        self.arm(ctx);
    }
}

/// The supervisor's parent: spawns it linked, traps its exit (an escalation), and asks it for
/// its counts and children when told to look.
struct Observer {
    spec: Option<SupervisorSpec>,
    supervisor: Option<Addr<SupervisorMsg>>,
    shared: Arc<Shared>,
}

enum ObserverMsg {
    Look,
    Stats(Result<SupervisorStats, AskError>),
    Children(SupervisorStats, Result<Vec<ChildInfo>, AskError>),
}

impl Agent for Observer {
    type Msg = ObserverMsg;

    fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        ctx.trap_exits(true);
        let Some(spec) = self.spec.take() else { return };
        let local = |_| -> ObserverMsg { unreachable!("a local spawn answers at once") };
        let spawned = ctx.spawn_linked_on(SpawnPlacement::Local, move || Supervisor::new(spec), local);
        if let Ok(Spawned::Here(supervisor)) = spawned {
            self.supervisor = Some(supervisor);
        }
    }

    fn on_exit(&mut self, exit: Exit, _ctx: &mut Ctx<'_>) {
        if Some(exit.from) == self.supervisor.map(|s| s.id()) {
            self.shared.escalations.fetch_add(1, Ordering::Relaxed);
            self.supervisor = None;
        }
    }

    fn handle(&mut self, msg: ObserverMsg, ctx: &mut Ctx<'_>) {
        let failed = |shared: &Shared| shared.failed_asks.fetch_add(1, Ordering::Relaxed);
        match msg {
            ObserverMsg::Look => {
                let Some(supervisor) = self.supervisor else { return };
                if ctx.ask(supervisor, SupervisorMsg::Stats).then(ObserverMsg::Stats).is_err() {
                    failed(&self.shared);
                }
            }
            ObserverMsg::Stats(Ok(stats)) => {
                let Some(supervisor) = self.supervisor else { return };
                let asked = ctx.ask(supervisor, SupervisorMsg::Children).then(move |c| ObserverMsg::Children(stats, c));
                if asked.is_err() {
                    failed(&self.shared);
                }
            }
            ObserverMsg::Children(stats, Ok(children)) => {
                if let Ok(mut seen) = self.shared.seen.lock() {
                    *seen = Some((stats, children));
                }
            }
            ObserverMsg::Stats(Err(_)) | ObserverMsg::Children(_, Err(_)) => {
                failed(&self.shared);
            }
        }
    }
}
