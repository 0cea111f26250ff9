//! `Supervisor`: an agent that starts children, watches them through links, and restarts them.
//!
//! The supervisor traps exits and links to every child from its first instant
//! (`Ctx::spawn_linked_on`), so it hears of every end of a child, and a child hears of the
//! supervisor's abnormal end (and stops with it). It talks to its children only through
//! messages, so children may live on any shard.
//!
//! Protocol (every step is a message; nothing waits):
//! 1. Start: children start one at a time, in order. A child on another shard is started by a
//!    spawn request whose answer comes back in the control lane; a named child is then bound
//!    to its name (taking it over from its previous instance).
//! 2. A child ends. Per its restart type it is kept down or restarted; per the strategy,
//!    other children are stopped (in reverse order, each with its shutdown timeout) and
//!    restarted (in order). The restart waits for the backoff when one is set.
//! 3. Intensity: more than `max_restarts` restarts within `period` and the supervisor stops
//!    every child (in reverse order) and fails with `Failed("restart intensity reached")`, so
//!    its own supervisor (linked to it) restarts it or escalates in turn.
//! 4. An abnormal exit of any other linked agent (its parent) stops the supervisor the same
//!    way, with that reason.
//!
//! Invariants: at most one child is being started or stopped at a time; `stop_queue` and
//! `start_queue` hold child indices, stopped highest first and started lowest first; a child
//! is `Running` only once its start (and name binding) answered.

use super::spec::{Restart, Started, Strategy, SupervisorSpec};
use crate::agent::{Addr, Agent, AgentId, Ctx, Exit, ExitReason, Registration, SpawnError, TimerId};
use crate::ask::{AskError, ReplyTo};
use crate::registry::RegistryError;
use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

/// Former child ids remembered, so that their late exits are not taken for a parent's.
const RETIRED_IDS_KEPT: usize = 1024;

/// Messages a supervisor takes.
pub enum SupervisorMsg {
    /// Answers with the state of every child.
    Children(ReplyTo<Vec<ChildInfo>>),
    /// Answers with the supervisor's counts.
    Stats(ReplyTo<SupervisorStats>),
    /// Stops every child in reverse order (each with its shutdown timeout), then the
    /// supervisor itself, with the reason `Normal`.
    Shutdown,
    /// Internal: a backoff delay ended.
    BackoffOver(u64),
    /// Internal: a child had not stopped by its shutdown timeout.
    StopTimedOut(usize, u64),
    /// Internal: the outcome of child `.0`'s remote spawn, start attempt `.1`.
    #[doc(hidden)]
    Spawned(usize, u64, Result<Result<AgentId, SpawnError>, AskError>),
    /// Internal: the outcome of child `.0`'s name binding, start attempt `.1`.
    #[doc(hidden)]
    Named(usize, u64, Result<Result<(), RegistryError>, AskError>),
}

/// One child, as reported by [`SupervisorMsg::Children`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildInfo {
    /// Its label.
    pub label: Arc<str>,
    /// The running instance, if any.
    pub agent: Option<AgentId>,
    /// Times it was restarted.
    pub restarts: u64,
    /// Its registered name.
    pub name: Option<Arc<str>>,
}

/// A supervisor's counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SupervisorStats {
    /// Children in the spec (temporary children that ended are gone from it).
    pub children: usize,
    /// Children running now.
    pub running: usize,
    /// Restarts so far.
    pub restarts: u64,
    /// Children that did not stop within their shutdown timeout.
    pub stop_timeouts: u64,
    /// Starts that failed (the spawn or the name binding).
    pub start_failures: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ChildState {
    /// Not running (not started yet, stopped, or waiting to be restarted).
    Down,
    /// Its spawn was requested on another shard, in start attempt `.0`.
    Spawning(u64),
    /// Spawned; its name binding was requested, in start attempt `.1`.
    Naming(AgentId, u64),
    /// Running.
    Running(AgentId),
    /// Asked to stop; `u64` is the stop's epoch (for its timeout).
    Stopping(AgentId, u64),
    /// A temporary child that ended, or a transient one that ended normally: never restarted.
    Removed,
}

struct Child {
    state: ChildState,
    /// The previous instance, whose name a new instance takes over.
    previous: Option<AgentId>,
    restarts: u64,
    stop_timer: Option<TimerId>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Phase {
    Running,
    /// Stopping every child, then exiting with the reason.
    ShuttingDown(ExitReason),
}

/// The supervisor agent; see the module documentation. Spawn it with
/// `Supervisor::new(spec)`; its address takes [`SupervisorMsg`].
pub struct Supervisor {
    spec: SupervisorSpec,
    children: Vec<Child>,
    phase: Phase,
    stop_queue: BTreeSet<usize>,
    start_queue: BTreeSet<usize>,
    /// The child being started or stopped, if any (the protocol does one at a time).
    in_flight: Option<usize>,
    /// Restart times (engine-clock ns) within the period.
    recent: VecDeque<u64>,
    backoff_epoch: u64,
    backoff_pending: bool,
    epoch: u64,
    /// Start attempts so far: names each spawn and name binding, so a late answer for an
    /// earlier attempt is told apart.
    attempts: u64,
    rng: u64,
    retired: VecDeque<AgentId>,
    stats: SupervisorStats,
}

impl Supervisor {
    /// A supervisor for `spec`. Check the spec first with [`SupervisorSpec::validate`]: an
    /// invalid one makes the supervisor fail at start.
    pub fn new(spec: SupervisorSpec) -> Self {
        let children = spec
            .children
            .iter()
            .map(|_| Child { state: ChildState::Down, previous: None, restarts: 0, stop_timer: None })
            .collect();
        Self {
            spec,
            children,
            phase: Phase::Running,
            stop_queue: BTreeSet::new(),
            start_queue: BTreeSet::new(),
            in_flight: None,
            recent: VecDeque::new(),
            backoff_epoch: 0,
            backoff_pending: false,
            epoch: 0,
            attempts: 0,
            rng: 0x9E37_79B9_7F4A_7C15,
            retired: VecDeque::new(),
            stats: SupervisorStats::default(),
        }
    }

    fn me(ctx: &Ctx<'_>) -> Addr<SupervisorMsg> {
        ctx.myself()
    }

    /// A uniform draw in [0, 1) (SplitMix64, seeded from the supervisor's id).
    fn unit(&mut self) -> f64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) as f64 / (u64::MAX as f64 + 1.0)
    }

    fn busy(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Moves child `i` to `state`, keeping `in_flight` (the one child being started or
    /// stopped) in step.
    fn set_state(&mut self, i: usize, state: ChildState) {
        self.children[i].state = state;
        if matches!(state, ChildState::Spawning(_) | ChildState::Naming(..) | ChildState::Stopping(..)) {
            debug_assert!(self.in_flight.map_or(true, |j| j == i), "one child in flight at a time");
            self.in_flight = Some(i);
        } else if self.in_flight == Some(i) {
            self.in_flight = None;
        }
    }

    /// Runs the next step of the stop and start queues, as far as it can without waiting.
    fn proceed(&mut self, ctx: &mut Ctx<'_>) {
        loop {
            if self.busy() {
                return;
            }
            if let Some(&i) = self.stop_queue.last() {
                self.stop_queue.remove(&i);
                self.stop_child(i, ctx);
                continue;
            }
            if let Phase::ShuttingDown(reason) = &self.phase {
                let reason = reason.clone();
                ctx.stop_with(ctx.id(), reason);
                return;
            }
            if self.backoff_pending {
                return;
            }
            let Some(&i) = self.start_queue.first() else { return };
            self.start_queue.remove(&i);
            self.start_child(i, ctx);
        }
    }

    fn stop_child(&mut self, i: usize, ctx: &mut Ctx<'_>) {
        let id = match self.children[i].state {
            ChildState::Running(id) | ChildState::Naming(id, _) => id,
            _ => return,
        };
        self.epoch += 1;
        self.set_state(i, ChildState::Stopping(id, self.epoch));
        ctx.stop(id);
        let timeout = self.spec.children[i].shutdown_timeout;
        let me = Self::me(ctx);
        self.children[i].stop_timer =
            Some(ctx.send_control_after(me, SupervisorMsg::StopTimedOut(i, self.epoch), timeout));
    }

    fn start_child(&mut self, i: usize, ctx: &mut Ctx<'_>) {
        if self.children[i].state != ChildState::Down {
            return;
        }
        self.attempts += 1;
        let attempt = self.attempts;
        let spec = &self.spec.children[i];
        let answer: super::spec::SpawnAnswer = Box::new(move |r| SupervisorMsg::Spawned(i, attempt, r));
        match (spec.start)(ctx, spec.placement, answer) {
            Ok(Started::Here(id)) => self.started(i, id, ctx),
            Ok(Started::Pending) => self.set_state(i, ChildState::Spawning(attempt)),
            Err(_) => self.start_failed(i, ctx),
        }
    }

    /// Child `i` runs as `id`: bind its name, if it has one.
    fn started(&mut self, i: usize, id: AgentId, ctx: &mut Ctx<'_>) {
        let name = self.spec.children[i].name.clone();
        self.attempts += 1;
        let attempt = self.attempts;
        let previous = self.children[i].previous;
        let named = move |r| SupervisorMsg::Named(i, attempt, r);
        match name.map(|name| ctx.register_for(&name, id, previous, named)) {
            None => self.set_state(i, ChildState::Running(id)),
            Some(Registration::Done(Ok(()))) => self.set_state(i, ChildState::Running(id)),
            Some(Registration::Done(Err(_))) => {
                self.set_state(i, ChildState::Running(id));
                self.stats.start_failures += 1;
                // A child that cannot hold its name fails; its exit restarts it.
                ctx.stop_with(id, ExitReason::failed("could not bind its name"));
            }
            Some(Registration::Pending) => self.set_state(i, ChildState::Naming(id, attempt)),
        }
        if matches!(self.phase, Phase::ShuttingDown(_)) {
            // It was being started when the shutdown began: it stops in its turn.
            self.stop_queue.insert(i);
        }
    }

    /// Child `i`'s remote spawn answered; an answer for an older attempt is ignored.
    fn spawn_answered(
        &mut self,
        i: usize,
        attempt: u64,
        result: Result<Result<AgentId, SpawnError>, AskError>,
        ctx: &mut Ctx<'_>,
    ) {
        if self.children.get(i).map(|c| c.state) != Some(ChildState::Spawning(attempt)) {
            return;
        }
        match result {
            Ok(Ok(id)) => self.started(i, id, ctx),
            _ => self.start_failed(i, ctx),
        }
        self.proceed(ctx);
    }

    /// Child `i`'s name binding answered; an answer for an older attempt is ignored.
    fn name_answered(
        &mut self,
        i: usize,
        attempt: u64,
        result: Result<Result<(), RegistryError>, AskError>,
        ctx: &mut Ctx<'_>,
    ) {
        let Some(ChildState::Naming(id, a)) = self.children.get(i).map(|c| c.state) else { return };
        if a != attempt {
            return;
        }
        self.set_state(i, ChildState::Running(id));
        if !matches!(result, Ok(Ok(()))) {
            self.stats.start_failures += 1;
            ctx.stop_with(id, ExitReason::failed("could not bind its name"));
        }
        self.proceed(ctx);
    }

    /// A start failed: count it as a failure of the child (restart intensity applies).
    fn start_failed(&mut self, i: usize, ctx: &mut Ctx<'_>) {
        self.stats.start_failures += 1;
        self.set_state(i, ChildState::Down);
        self.child_failed(i, &ExitReason::failed("the child could not be started"), ctx);
    }

    fn find(&self, id: AgentId) -> Option<usize> {
        self.children.iter().position(|c| match c.state {
            ChildState::Running(a) | ChildState::Naming(a, _) | ChildState::Stopping(a, _) => a == id,
            _ => false,
        })
    }

    fn retire(&mut self, id: AgentId) {
        if self.retired.len() == RETIRED_IDS_KEPT {
            self.retired.pop_front();
        }
        self.retired.push_back(id);
    }

    /// Child `i` ended unexpectedly with `reason`: restart what the strategy says.
    fn child_failed(&mut self, i: usize, reason: &ExitReason, ctx: &mut Ctx<'_>) {
        let restart = match self.spec.children[i].restart {
            Restart::Permanent => true,
            Restart::Transient => reason.is_failure(),
            Restart::Temporary => false,
        };
        if !restart {
            self.set_state(i, ChildState::Removed);
            return;
        }
        if matches!(self.phase, Phase::ShuttingDown(_)) {
            return;
        }
        let now = ctx.now_ns();
        let period = u64::try_from(self.spec.period.as_nanos()).unwrap_or(u64::MAX);
        while self.recent.front().is_some_and(|&t| now.saturating_sub(t) >= period) {
            self.recent.pop_front();
        }
        if self.recent.len() as u64 >= u64::from(self.spec.max_restarts) {
            self.shut_down(ExitReason::failed("restart intensity reached"));
            return;
        }
        self.recent.push_back(now);
        self.stats.restarts += 1;
        self.children[i].restarts += 1;
        let n = self.children.len();
        let affected: Vec<usize> = match self.spec.strategy {
            Strategy::OneForOne => vec![i],
            Strategy::OneForAll => (0..n).collect(),
            Strategy::RestForOne => (i..n).collect(),
        };
        for j in affected {
            match self.children[j].state {
                ChildState::Removed => continue,
                ChildState::Running(_) | ChildState::Naming(..) if j != i => {
                    self.stop_queue.insert(j);
                }
                _ => {}
            }
            self.start_queue.insert(j);
        }
        if let Some(backoff) = self.spec.backoff {
            let unit = self.unit();
            let delay = backoff.delay(self.recent.len() as u32, unit);
            if !delay.is_zero() {
                self.backoff_epoch += 1;
                self.backoff_pending = true;
                let me = Self::me(ctx);
                ctx.send_control_after(me, SupervisorMsg::BackoffOver(self.backoff_epoch), delay);
            }
        }
    }

    fn shut_down(&mut self, reason: ExitReason) {
        if matches!(self.phase, Phase::ShuttingDown(_)) {
            return;
        }
        self.phase = Phase::ShuttingDown(reason);
        self.start_queue.clear();
        self.backoff_pending = false;
        for (i, child) in self.children.iter().enumerate() {
            if matches!(child.state, ChildState::Running(_) | ChildState::Naming(..)) {
                self.stop_queue.insert(i);
            }
        }
    }

    fn counts(&self) -> SupervisorStats {
        SupervisorStats {
            children: self.children.iter().filter(|c| c.state != ChildState::Removed).count(),
            running: self.children.iter().filter(|c| matches!(c.state, ChildState::Running(_))).count(),
            ..self.stats
        }
    }
}

impl Agent for Supervisor {
    type Msg = SupervisorMsg;

    fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        ctx.trap_exits(true);
        self.rng ^= ctx.id().to_bits();
        if let Err(e) = self.spec.validate() {
            ctx.fail(e.to_string());
            return;
        }
        self.start_queue.extend(0..self.children.len());
        self.proceed(ctx);
    }

    fn handle(&mut self, msg: SupervisorMsg, ctx: &mut Ctx<'_>) {
        match msg {
            SupervisorMsg::Children(reply) => {
                let infos = self
                    .children
                    .iter()
                    .zip(&self.spec.children)
                    .map(|(c, spec)| ChildInfo {
                        label: spec.label.clone(),
                        agent: match c.state {
                            ChildState::Running(id) => Some(id),
                            _ => None,
                        },
                        restarts: c.restarts,
                        name: spec.name.clone(),
                    })
                    .collect();
                ctx.reply(reply, infos);
            }
            SupervisorMsg::Stats(reply) => ctx.reply(reply, self.counts()),
            SupervisorMsg::Shutdown => {
                self.shut_down(ExitReason::Normal);
                self.proceed(ctx);
            }
            SupervisorMsg::BackoffOver(epoch) => {
                if epoch == self.backoff_epoch && self.backoff_pending {
                    self.backoff_pending = false;
                    self.proceed(ctx);
                }
            }
            SupervisorMsg::Spawned(i, attempt, result) => self.spawn_answered(i, attempt, result, ctx),
            SupervisorMsg::Named(i, attempt, result) => self.name_answered(i, attempt, result, ctx),
            SupervisorMsg::StopTimedOut(i, epoch) => {
                if let Some(ChildState::Stopping(id, e)) = self.children.get(i).map(|c| c.state) {
                    if e == epoch {
                        // It may still stop later; its exit is then a former child's.
                        self.stats.stop_timeouts += 1;
                        self.retire(id);
                        self.set_state(i, ChildState::Down);
                        self.children[i].previous = Some(id);
                        self.proceed(ctx);
                    }
                }
            }
        }
    }

    fn on_exit(&mut self, exit: Exit, ctx: &mut Ctx<'_>) {
        match self.find(exit.from) {
            Some(i) => {
                let was_stopping = matches!(self.children[i].state, ChildState::Stopping(..));
                if let Some(timer) = self.children[i].stop_timer.take() {
                    ctx.cancel_timer(timer);
                }
                // A temporary child stopped by its supervisor (for a sibling's restart) is
                // not started again either.
                let next = if was_stopping && self.spec.children[i].restart == Restart::Temporary {
                    ChildState::Removed
                } else {
                    ChildState::Down
                };
                self.set_state(i, next);
                self.children[i].previous = Some(exit.from);
                self.retire(exit.from);
                if !was_stopping {
                    self.child_failed(i, &exit.reason, ctx);
                }
            }
            None if self.retired.contains(&exit.from) => {}
            // A linked agent that is not a child (the parent) ended abnormally: stop too.
            None if !exit.reason.is_normal() => self.shut_down(exit.reason),
            None => {}
        }
        self.proceed(ctx);
    }

    fn on_stop(&mut self, ctx: &mut Ctx<'_>) {
        // Stopped from outside (or after shutting down): whatever still runs is stopped now,
        // in reverse order.
        for child in self.children.iter().rev() {
            if let ChildState::Running(id) | ChildState::Naming(id, _) | ChildState::Stopping(id, _) = child.state {
                ctx.stop(id);
            }
        }
    }
}
