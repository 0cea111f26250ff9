//! Fault-tolerance tests: panics, monitors, links, the control lane, shedding, deadlines,
//! timers and the dead-letter subscriber, on shards driven pass by pass. This module holds the
//! shared helpers (cluster helpers, the probe agent and its journal); one submodule per topic
//! holds the tests.
//!
//! Most tests use one helper agent, [`Probe`], steered by [`Cmd`] messages the test injects
//! (watch that agent, link to this one, panic, ask, arm a timer, send a burst, ...). Every probe
//! writes what happens to it (notes handled, replies, `Down`s, `Exit`s, its `on_stop`) into a
//! shared [`Journal`], tagged with its id, so a test reads one agent's history with
//! `journal.of(id)`. The tests that make handlers panic print the panic messages on stderr:
//! that is expected.
//!
//! Tests marked `#[ignore]` show engine bugs; the reason names the behaviour that is wrong.

mod control_and_shedding;
mod dead_letters;
mod deadlines_and_timers;
mod links;
mod monitors;
mod panics;

use super::test_support::{assert_accounted, cluster, settle, totals};
use super::{Shard, ShardLimits};
use crate::agent::{
    Addr, Agent, AgentId, Ctx, Down, Exit, ExitReason, SendError, SendOptions, SpawnError, SpawnPlacement, Spawned,
    TimerId, Undelivered,
};
use crate::ask::{AskError, ReplyTo};
use crate::metrics::{DeadLetter, DeadLetterReason, DeadLetterSink};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Cluster helpers (as in the dispatcher tests).

fn cluster_with(n: usize, limits: ShardLimits) -> Vec<Shard> {
    Shard::cluster(n, limits, 64).unwrap()
}

/// Runs rounds (one pass on every shard, in shard order) until `done` holds; returns how many
/// rounds it took.
fn rounds_until(shards: &mut [Shard], max_rounds: usize, mut done: impl FnMut() -> bool) -> usize {
    for round in 1..=max_rounds {
        for shard in shards.iter_mut() {
            shard.pass();
        }
        if done() {
            return round;
        }
    }
    panic!("not done after {max_rounds} rounds");
}

fn links(shards: &[Shard]) -> u64 {
    shards.iter().map(|s| s.stats().links).sum()
}

fn spawn_on<A: Agent>(shards: &mut [Shard], shard: usize, agent: A) -> AgentId {
    shards[shard].spawn(agent).unwrap().id()
}

/// Injects `cmd` for the probe `to`, as a host thread would, on the probe's own shard.
fn tell(shards: &mut [Shard], to: AgentId, cmd: Cmd) {
    shards[to.shard()].inject(Addr::from_id(to), cmd).unwrap();
}

/// Spawns a probe on `shard` and stops it (normally): its id is stale from then on.
fn dead_probe(shards: &mut [Shard], journal: &Journal, shard: usize) -> AgentId {
    let id = spawn_on(shards, shard, journal.probe());
    tell(shards, id, Cmd::StopSelf);
    settle(shards);
    assert_eq!(journal.of(id), [Event::Stopped]);
    id
}

const PATIENT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// The probe agent and its journal.

/// What happened to a probe.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Event {
    /// Handled `Cmd::Note(n)`.
    Note(u32),
    /// Handled a `Cmd::Request`, which carried this deadline.
    Requested(Option<u64>),
    /// Made an ask, its number `n` (a probe numbers its asks from 0).
    Asked(u32),
    /// Got the answer to ask number `n` (through `handle`, as `Cmd::Answer`).
    Reply(u32, Result<u64, AskError>),
    /// Spawned a linked child (`Cmd::SpawnLinked`).
    Spawned(AgentId),
    /// Sent a burst of normal-lane notes: how many were taken and how many came back `Full`.
    Burst { queued: u32, full: u32 },
    /// Sent a control-lane note; whether it was taken.
    ControlSent(bool),
    /// Cancelled its last timer; whether it was still pending.
    Cancelled(bool),
    /// A tracked message it sent to this agent was not delivered (`on_undelivered`).
    Undelivered(AgentId, DeadLetterReason),
    /// `on_down`.
    Down(Down),
    /// `on_exit`.
    Exit(Exit),
    /// `on_stop` ran.
    Stopped,
    /// A dead-letter notice (the [`DeadLetterSubscriber`] only).
    DeadLetter(DeadLetter),
}

/// The events of every agent of a test, in order, each tagged with its agent.
#[derive(Clone, Default)]
struct Journal(Arc<Mutex<Vec<(AgentId, Event)>>>);

impl Journal {
    fn record(&self, who: AgentId, event: Event) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push((who, event));
    }

    /// The events of agent `who`, in order.
    fn of(&self, who: AgentId) -> Vec<Event> {
        let events = self.0.lock().unwrap_or_else(|e| e.into_inner());
        events.iter().filter(|(id, _)| *id == who).map(|(_, e)| e.clone()).collect()
    }

    /// The child `parent` spawned with `Cmd::SpawnLinked` (the first one).
    fn child_of(&self, parent: AgentId) -> AgentId {
        self.of(parent)
            .into_iter()
            .find_map(|e| match e {
                Event::Spawned(child) => Some(child),
                _ => None,
            })
            .expect("the parent recorded its child")
    }

    /// A probe writing to this journal.
    fn probe(&self) -> Probe {
        Probe { journal: self.clone(), trap: false, on_start: OnStart::Run, timers: Vec::new(), asks: 0 }
    }
}

/// What the target of an ask does with the request.
#[derive(Clone, Copy, Debug)]
enum Then {
    /// Answers 7.
    Answer,
    /// Panics without answering.
    Panic,
    /// Asks this probe in turn (with a 10 s timeout), then answers 7.
    Relay(AgentId),
}

/// What a probe does in `on_start` (after setting its exit trapping).
#[derive(Clone, Copy, Debug)]
enum OnStart {
    /// Nothing more: it runs.
    Run,
    /// Panics with this message.
    Panic(&'static str),
    /// Stops itself, normally.
    StopSelf,
}

/// The commands a probe takes.
#[derive(Debug)]
enum Cmd {
    /// Record `Event::Note(n)`.
    Note(u32),
    /// Panic with this message.
    Panic(&'static str),
    /// `ctx.stop_self()`.
    StopSelf,
    /// `ctx.fail(message)`.
    Fail(&'static str),
    /// `ctx.stop(id)`.
    Stop(AgentId),
    /// `ctx.watch(id)`.
    Watch(AgentId),
    /// `ctx.unwatch(id)`.
    Unwatch(AgentId),
    /// `ctx.link(id)`.
    Link(AgentId),
    /// `ctx.unlink(id)`.
    Unlink(AgentId),
    /// Ask `to` a `Request` that it handles as `then` says.
    Ask { to: AgentId, timeout: Duration, then: Then },
    /// A request (see [`Then`]); records its deadline first.
    Request { reply: ReplyTo<u64>, then: Then },
    /// The answer to this probe's ask number `ask`, built by the ask's adapter.
    Answer { ask: u32, answer: Result<u64, AskError> },
    /// Send `notes` normal-lane notes `Note(0..notes)` to `to` (tracked or not), then, when
    /// asked, one ask and one control-lane `Note(n)`.
    Burst { to: AgentId, notes: u32, tracked: bool, ask: bool, control: Option<u32> },
    /// `ctx.spawn_linked_on(placement, ..)` a probe that starts as `on_start` says.
    SpawnLinked { placement: SpawnPlacement, on_start: OnStart },
    /// Send `to` a `Note(note)` after `delay`, in the control lane when `control`.
    After { to: AgentId, note: u32, delay: Duration, control: bool },
    /// Cancel the last armed timer, twice.
    CancelLastTimer,
    /// The answer to a remote `SpawnLinked`.
    SpawnAnswered(Result<Result<AgentId, SpawnError>, AskError>),
}

/// The test agent: does what its `Cmd`s say and journals everything that happens to it.
struct Probe {
    journal: Journal,
    /// Trap exits from `on_start` on.
    trap: bool,
    on_start: OnStart,
    timers: Vec<TimerId>,
    /// Asks made so far.
    asks: u32,
}

impl Probe {
    fn trapping(mut self) -> Self {
        self.trap = true;
        self
    }

    fn panicking_on_start(mut self, message: &'static str) -> Self {
        self.on_start = OnStart::Panic(message);
        self
    }

    fn ask(&mut self, ctx: &mut Ctx<'_>, to: AgentId, timeout: Duration, then: Then) {
        let ask = self.asks;
        self.asks += 1;
        ctx.ask(Addr::from_id(to), |reply| Cmd::Request { reply, then })
            .timeout(timeout)
            .then(move |answer| Cmd::Answer { ask, answer })
            .unwrap();
        self.journal.record(ctx.id(), Event::Asked(ask));
    }
}

impl Agent for Probe {
    type Msg = Cmd;

    fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        ctx.trap_exits(self.trap);
        match self.on_start {
            OnStart::Run => {}
            OnStart::Panic(message) => panic!("{message}"),
            OnStart::StopSelf => ctx.stop_self(),
        }
    }

    fn handle(&mut self, cmd: Cmd, ctx: &mut Ctx<'_>) {
        let me = ctx.id();
        match cmd {
            Cmd::Note(n) => self.journal.record(me, Event::Note(n)),
            Cmd::Panic(message) => panic!("{message}"),
            Cmd::StopSelf => ctx.stop_self(),
            Cmd::Fail(message) => ctx.fail(message),
            Cmd::Stop(id) => ctx.stop(id),
            Cmd::Watch(id) => ctx.watch(id),
            Cmd::Unwatch(id) => ctx.unwatch(id),
            Cmd::Link(id) => ctx.link(id),
            Cmd::Unlink(id) => ctx.unlink(id),
            Cmd::Ask { to, timeout, then } => self.ask(ctx, to, timeout, then),
            Cmd::Request { reply, then } => {
                self.journal.record(me, Event::Requested(ctx.deadline_ns()));
                match then {
                    Then::Answer => {}
                    Then::Panic => panic!("the request broke its handler"),
                    Then::Relay(next) => self.ask(ctx, next, PATIENT, Then::Answer),
                }
                ctx.reply(reply, 7);
            }
            Cmd::Answer { ask, answer } => self.journal.record(me, Event::Reply(ask, answer)),
            Cmd::Burst { to, notes, tracked, ask, control } => {
                let to = Addr::<Cmd>::from_id(to);
                let (mut queued, mut full) = (0, 0);
                for n in 0..notes {
                    let sent = if tracked {
                        ctx.send_with(to, Cmd::Note(n), SendOptions::new().tracked())
                    } else {
                        ctx.send(to, Cmd::Note(n))
                    };
                    match sent {
                        Ok(()) => queued += 1,
                        Err(SendError::Full(_)) => full += 1,
                        Err(e) => panic!("unexpected send error {e:?}"),
                    }
                }
                self.journal.record(me, Event::Burst { queued, full });
                if ask {
                    self.ask(ctx, to.id(), PATIENT, Then::Answer);
                }
                if let Some(n) = control {
                    let taken = ctx.send_with(to, Cmd::Note(n), SendOptions::new().control()).is_ok();
                    self.journal.record(me, Event::ControlSent(taken));
                }
            }
            Cmd::SpawnLinked { placement, on_start } => {
                let mut child = self.journal.probe();
                child.on_start = on_start;
                match ctx.spawn_linked_on(placement, move || child, Cmd::SpawnAnswered).unwrap() {
                    Spawned::Here(addr) => self.journal.record(me, Event::Spawned(addr.id())),
                    // The id arrives as `Cmd::SpawnAnswered`.
                    Spawned::Pending => {}
                }
            }
            Cmd::SpawnAnswered(answer) => {
                let spawned = answer.expect("the remote spawn answered").expect("the remote spawn succeeded");
                self.journal.record(me, Event::Spawned(spawned));
            }
            Cmd::After { to, note, delay, control } => {
                let to = Addr::from_id(to);
                let timer = if control {
                    ctx.send_control_after(to, Cmd::Note(note), delay)
                } else {
                    ctx.send_after(to, Cmd::Note(note), delay)
                };
                self.timers.push(timer);
            }
            Cmd::CancelLastTimer => {
                let timer = *self.timers.last().expect("a timer was armed");
                for _ in 0..2 {
                    let pending = ctx.cancel_timer(timer);
                    self.journal.record(me, Event::Cancelled(pending));
                }
            }
        }
    }

    fn on_undelivered(&mut self, undelivered: Undelivered, ctx: &mut Ctx<'_>) {
        assert!(undelivered.message.is::<Cmd>());
        self.journal.record(ctx.id(), Event::Undelivered(undelivered.to, undelivered.reason));
    }

    fn on_down(&mut self, down: Down, ctx: &mut Ctx<'_>) {
        self.journal.record(ctx.id(), Event::Down(down));
    }

    fn on_exit(&mut self, exit: Exit, ctx: &mut Ctx<'_>) {
        self.journal.record(ctx.id(), Event::Exit(exit));
    }

    fn on_stop(&mut self, ctx: &mut Ctx<'_>) {
        self.journal.record(ctx.id(), Event::Stopped);
    }
}

/// Journals the dead-letter notices it is sent.
struct DeadLetterSubscriber {
    journal: Journal,
}

impl Agent for DeadLetterSubscriber {
    type Msg = DeadLetter;
    fn handle(&mut self, notice: DeadLetter, ctx: &mut Ctx<'_>) {
        self.journal.record(ctx.id(), Event::DeadLetter(notice));
    }
}

fn down(id: AgentId, reason: ExitReason) -> Event {
    Event::Down(Down { id, reason })
}

fn exit(from: AgentId, reason: ExitReason) -> Event {
    Event::Exit(Exit { from, reason })
}

fn panicked(message: &str) -> ExitReason {
    ExitReason::Panicked(message.into())
}
