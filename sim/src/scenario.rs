//! What a simulated scenario is: agents started on a [`World`] of hand-driven shards, and the
//! invariants checked when the run is over.
//!
//! Invariant: everything a scenario does goes through the `World` (its shards, its clock and
//! its seeded generator), so a run depends on nothing but its seed and settings.

use crate::rng::SimRng;
use crate::runner::Faults;
use nexus_engine::agent::{Addr, Agent, AgentId, ExitReason};
use nexus_engine::ask::ReplyTo;
use nexus_engine::metrics::Counters;
use nexus_engine::shard::HostAsk;
use nexus_engine::shard::{ManualClock, Shard};
use std::sync::{Arc, Mutex};

/// A scenario: see the module documentation. One value describes it; [`Scenario::instance`]
/// makes the state of one run.
pub trait Scenario: Sync {
    /// Its name on the command line.
    fn name(&self) -> &'static str;
    /// One line on what it runs and checks.
    fn about(&self) -> &'static str;
    /// Shards it runs on.
    fn shards(&self) -> usize {
        3
    }
    /// The state of one run with these faults.
    fn instance(&self, faults: &Faults) -> Box<dyn Instance>;
}

/// One run of a scenario.
pub trait Instance {
    /// Spawns the agents and queues the first messages.
    fn start(&mut self, world: &mut World) -> Result<(), String>;
    /// Called each time the run is quiet (no work, no deadline left); may queue more work and
    /// return `true` to go on (the next phase), or `false` when the run is over.
    fn on_quiet(&mut self, _world: &mut World, _phase: u32) -> bool {
        false
    }
    /// Checks the scenario's invariants at the end (the accounting is checked for it).
    fn check(&mut self, world: &World) -> Result<(), String>;
}

/// The shards of one run, its clock and the scenario's own seeded generator.
pub struct World {
    pub(crate) shards: Vec<Shard>,
    pub(crate) clock: ManualClock,
    /// The scenario's generator (a stream of its own, apart from the scheduler's).
    pub rng: SimRng,
    pub(crate) killable: Killable,
    pub(crate) killed: u64,
    /// Host asks still pending, which the `host_timeout` fault may abandon.
    pub(crate) host_asks: Vec<Box<dyn Abandon>>,
}

/// A pending host ask the `host_timeout` fault can give up on.
pub(crate) trait Abandon {
    fn abandon(&self);
}

impl<R: 'static> Abandon for Arc<HostAsk<R>> {
    fn abandon(&self) {
        HostAsk::abandon(self);
    }
}

/// The agents a scenario offers to the `kill` fault: its agents add themselves (from
/// `on_start`, say) through a clone of [`World::killable`].
#[derive(Clone, Default)]
pub struct Killable(Arc<Mutex<Vec<AgentId>>>);

impl Killable {
    /// Offers agent `id` to the `kill` fault.
    pub fn add(&self, id: AgentId) {
        if let Ok(mut ids) = self.0.lock() {
            ids.push(id);
        }
    }
}

impl World {
    /// Shards in the run.
    pub fn shards(&self) -> usize {
        self.shards.len()
    }

    /// Spawns `agent` on shard `shard`.
    pub fn spawn<A: Agent>(&mut self, shard: usize, agent: A) -> Result<Addr<A::Msg>, String> {
        let n = self.shards.len();
        self.shards[shard % n].spawn(agent).map_err(|e| e.to_string())
    }

    /// Queues `msg` for `to` as a host would (through the inject queue of `to`'s shard).
    pub fn send<M: Send + 'static>(&mut self, to: Addr<M>, msg: M) -> Result<(), String> {
        let shard = to.shard();
        self.shards[shard].inject(to, msg).map_err(|_| format!("shard {shard}'s inject queue is full"))
    }

    /// Asks `to` as a host thread would, without blocking: poll the answer with
    /// `HostAsk::try_take`. The `host_timeout` fault may give up on it first (its answer is
    /// then a counted late reply).
    pub fn host_ask<M: Send + 'static, R: Send + 'static>(
        &mut self,
        to: Addr<M>,
        make: impl FnOnce(ReplyTo<R>) -> M,
    ) -> Result<Arc<HostAsk<R>>, String> {
        let shard = to.shard();
        let ask = self.shards[shard].host_ask(to, make).map_err(|_| format!("shard {shard}'s inject queue is full"))?;
        let ask = Arc::new(ask);
        self.host_asks.push(Box::new(ask.clone()));
        Ok(ask)
    }

    /// Gives up on one pending host ask, drawn with `rng` (the `host_timeout` fault).
    pub(crate) fn abandon_one(&mut self, rng: &mut SimRng) {
        if !self.host_asks.is_empty() {
            let i = rng.below(self.host_asks.len() as u64) as usize;
            self.host_asks.swap_remove(i).abandon();
        }
    }

    /// The list the scenario's agents add themselves to, to be killed by the `kill` fault.
    pub fn killable(&self) -> Killable {
        self.killable.clone()
    }

    /// Agents the `kill` fault stopped so far.
    pub fn killed(&self) -> u64 {
        self.killed
    }

    /// Stops one of the offered agents, drawn with `rng`, if it is still alive.
    pub(crate) fn kill_one(&mut self, rng: &mut SimRng) {
        let id = {
            let Ok(mut ids) = self.killable.0.lock() else { return };
            if ids.is_empty() {
                return;
            }
            let i = rng.below(ids.len() as u64) as usize;
            ids.swap_remove(i)
        };
        let Some(shard) = self.shards.get_mut(id.shard()) else { return };
        if shard.stop_agent(id, ExitReason::failed(crate::KILLED)) {
            self.killed += 1;
        }
    }

    /// Virtual time, in nanoseconds.
    pub fn now_ns(&self) -> u64 {
        self.clock.now_ns()
    }

    /// The counters summed over every shard, host sends included.
    pub fn totals(&self) -> Counters {
        let mut t = Counters::default();
        for s in &self.shards {
            t.add(&s.stats().counters);
        }
        t.sent += self.shards.first().map_or(0, Shard::host_sent);
        t
    }

    /// The accounting invariant: every counted message sent was delivered or is a dead letter.
    pub fn accounted(&self) -> Result<(), String> {
        let t = self.totals();
        if t.sent == t.delivered + t.dead_letters_total() {
            Ok(())
        } else {
            Err(format!(
                "accounting: sent {} != delivered {} + dead letters {}",
                t.sent,
                t.delivered,
                t.dead_letters_total()
            ))
        }
    }
}
