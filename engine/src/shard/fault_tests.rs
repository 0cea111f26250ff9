//! Fault-tolerance tests: panics, monitors, links, the control lane, shedding, deadlines,
//! timers and the dead-letter subscriber, on shards driven pass by pass.
//!
//! Most tests use one helper agent, [`Probe`], steered by [`Cmd`] messages the test injects
//! (watch that agent, link to this one, panic, ask, arm a timer, send a burst, ...). Every probe
//! writes what happens to it (notes handled, replies, `Down`s, `Exit`s, its `on_stop`) into a
//! shared [`Journal`], tagged with its id, so a test reads one agent's history with
//! `journal.of(id)`. The tests that make handlers panic print the panic messages on stderr:
//! that is expected.
//!
//! Tests marked `#[ignore]` show engine bugs; the reason names the behaviour that is wrong.

use super::test_support::{assert_accounted, cluster, settle, totals};
use super::{Shard, ShardLimits};
use crate::agent::{
    Addr, Agent, AgentId, Ctx, Down, Exit, ExitReason, RequestId, SendError, SpawnError, SpawnPlacement, Spawned,
    TimerId, Undelivered,
};
use crate::ask::{AskError, Reply, ReplyTo};
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
    /// Made an ask.
    Asked(RequestId),
    /// Got the answer to an ask (`on_reply`).
    Reply(RequestId, Result<u64, AskError>),
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
        Probe { journal: self.clone(), trap: false, on_start: OnStart::Run, timers: Vec::new() }
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
    /// Send `notes` normal-lane notes `Note(0..notes)` to `to` (tracked or not), then, when
    /// asked, one ask and one control-lane `Note(n)`.
    Burst { to: AgentId, notes: u32, tracked: bool, ask: bool, control: Option<u32> },
    /// `ctx.spawn_linked_on(placement, ..)` a probe that starts as `on_start` says.
    SpawnLinked { placement: SpawnPlacement, on_start: OnStart },
    /// Send `to` a `Note(note)` after `delay`, in the control lane when `control`.
    After { to: AgentId, note: u32, delay: Duration, control: bool },
    /// Cancel the last armed timer, twice.
    CancelLastTimer,
}

/// The test agent: does what its `Cmd`s say and journals everything that happens to it.
struct Probe {
    journal: Journal,
    /// Trap exits from `on_start` on.
    trap: bool,
    on_start: OnStart,
    timers: Vec<TimerId>,
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
        let id = ctx.ask(Addr::from_id(to), timeout, |reply| Cmd::Request { reply, then }).unwrap();
        self.journal.record(ctx.id(), Event::Asked(id));
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
            Cmd::Burst { to, notes, tracked, ask, control } => {
                let to = Addr::<Cmd>::from_id(to);
                let (mut queued, mut full) = (0, 0);
                for n in 0..notes {
                    let sent = if tracked { ctx.send_tracked(to, Cmd::Note(n)) } else { ctx.send(to, Cmd::Note(n)) };
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
                    let taken = ctx.send_control(to, Cmd::Note(n)).is_ok();
                    self.journal.record(me, Event::ControlSent(taken));
                }
            }
            Cmd::SpawnLinked { placement, on_start } => {
                let mut child = self.journal.probe();
                child.on_start = on_start;
                match ctx.spawn_linked_on(placement, move || child).unwrap() {
                    Spawned::Here(addr) => self.journal.record(me, Event::Spawned(addr.id())),
                    // The id arrives in `on_reply`.
                    Spawned::Pending(_) => {}
                }
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

    fn on_reply(&mut self, request: RequestId, reply: Result<Reply, AskError>, ctx: &mut Ctx<'_>) {
        let event = match reply {
            Err(e) => Event::Reply(request, Err(e)),
            // A remote `spawn_linked_on` answers with the child's id.
            Ok(Reply(payload)) => match payload.take::<Result<AgentId, SpawnError>>() {
                Ok(spawned) => Event::Spawned(spawned.expect("the remote spawn succeeded")),
                Err(payload) => Event::Reply(request, Reply(payload).take::<u64>()),
            },
        };
        self.journal.record(ctx.id(), event);
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

// ---------------------------------------------------------------------------------------------
// 1. Panic isolation.

#[test]
fn a_panicking_handler_stops_its_agent_and_its_message_is_a_panicked_dead_letter() {
    let mut shards = cluster(1);
    let j = Journal::default();
    let victim = spawn_on(&mut shards, 0, j.probe());
    tell(&mut shards, victim, Cmd::Note(1));
    tell(&mut shards, victim, Cmd::Panic("boom"));
    tell(&mut shards, victim, Cmd::Note(2));
    settle(&mut shards);

    assert_eq!(shards[0].agents(), 0);
    let k = shards[0].stats().counters;
    assert_eq!((k.panics, k.stopped), (1, 1), "{k:?}");
    // Only the note before the panic was delivered; the panicking message is not.
    assert_eq!(k.delivered, 1, "{k:?}");
    assert_eq!(k.dead(DeadLetterReason::Panicked), 1, "{k:?}");
    // The note queued behind the panic went down with the agent.
    assert_eq!(k.dead(DeadLetterReason::Stopped), 1, "{k:?}");
    assert_eq!(k.dead_letters_total(), 2, "{k:?}");
    // No `Stopped` event: `on_stop` is not run after a panic.
    assert_eq!(j.of(victim), [Event::Note(1)]);
    assert_accounted(&shards);
}

#[test]
fn a_panicked_agent_is_gone_and_its_neighbours_keep_working() {
    let mut shards = cluster(1);
    let j = Journal::default();
    let victim = spawn_on(&mut shards, 0, j.probe());
    let neighbour = spawn_on(&mut shards, 0, j.probe());
    tell(&mut shards, victim, Cmd::Panic("boom"));
    tell(&mut shards, neighbour, Cmd::Note(1));
    settle(&mut shards);
    assert_eq!(shards[0].agents(), 1);

    tell(&mut shards, victim, Cmd::Note(2));
    tell(&mut shards, neighbour, Cmd::Note(3));
    settle(&mut shards);
    // The freed slot is reused with a new generation: the old id still reaches nobody.
    let newcomer = spawn_on(&mut shards, 0, j.probe());
    assert_eq!(newcomer.slot(), victim.slot());
    assert_ne!(newcomer.generation(), victim.generation());
    tell(&mut shards, victim, Cmd::Note(4));
    settle(&mut shards);

    let k = shards[0].stats().counters;
    assert_eq!((k.dead(DeadLetterReason::Stopped), k.dead(DeadLetterReason::StaleGeneration)), (1, 1), "{k:?}");
    assert_eq!(k.panics, 1);
    assert_eq!(j.of(neighbour), [Event::Note(1), Event::Note(3)]);
    assert_eq!(j.of(newcomer), []);
    assert_eq!(j.of(victim), []);
    assert_eq!(shards[0].agents(), 2);
    assert_accounted(&shards);
}

#[test]
fn on_stop_runs_after_a_stop_but_not_after_a_panic() {
    let mut shards = cluster(1);
    let j = Journal::default();
    let quitter = spawn_on(&mut shards, 0, j.probe());
    let stopped = spawn_on(&mut shards, 0, j.probe());
    let stopper = spawn_on(&mut shards, 0, j.probe());
    let failing = spawn_on(&mut shards, 0, j.probe());
    let panicking = spawn_on(&mut shards, 0, j.probe());
    tell(&mut shards, quitter, Cmd::StopSelf);
    tell(&mut shards, stopper, Cmd::Stop(stopped));
    tell(&mut shards, failing, Cmd::Fail("bad"));
    tell(&mut shards, panicking, Cmd::Panic("boom"));
    settle(&mut shards);

    assert_eq!(j.of(quitter), [Event::Stopped]);
    assert_eq!(j.of(stopped), [Event::Stopped]);
    assert_eq!(j.of(failing), [Event::Stopped]);
    assert_eq!(j.of(panicking), []);
    assert_eq!(j.of(stopper), []);
    assert_eq!(shards[0].agents(), 1);
    let k = shards[0].stats().counters;
    assert_eq!((k.stopped, k.panics), (4, 1), "{k:?}");
    assert_accounted(&shards);
}

#[test]
fn a_panic_in_on_start_stops_the_agent() {
    let mut shards = cluster(1);
    let j = Journal::default();
    let bystander = spawn_on(&mut shards, 0, j.probe());
    // The spawn itself succeeds: the agent dies in its first instant.
    let broken = spawn_on(&mut shards, 0, j.probe().panicking_on_start("bad start"));
    assert_eq!(shards[0].agents(), 1);
    let k = shards[0].stats().counters;
    assert_eq!((k.spawned, k.stopped, k.panics), (2, 1, 1), "{k:?}");

    tell(&mut shards, broken, Cmd::Note(1));
    tell(&mut shards, bystander, Cmd::Note(2));
    settle(&mut shards);
    assert_eq!(shards[0].stats().counters.dead(DeadLetterReason::Stopped), 1);
    // Its `on_stop` did not run.
    assert_eq!(j.of(broken), []);
    assert_eq!(j.of(bystander), [Event::Note(2)]);
    assert_accounted(&shards);
}

#[test]
fn watchers_see_the_panic_message_as_the_exit_reason() {
    let mut shards = cluster(2);
    let j = Journal::default();
    let victim = spawn_on(&mut shards, 0, j.probe());
    let near = spawn_on(&mut shards, 0, j.probe());
    let far = spawn_on(&mut shards, 1, j.probe());
    tell(&mut shards, near, Cmd::Watch(victim));
    tell(&mut shards, far, Cmd::Watch(victim));
    settle(&mut shards);
    assert_eq!(shards[0].stats().watches, 2);

    tell(&mut shards, victim, Cmd::Panic("boom: the disk is on fire"));
    settle(&mut shards);
    let expected = [down(victim, panicked("boom: the disk is on fire"))];
    assert_eq!(j.of(near), expected);
    assert_eq!(j.of(far), expected);
    assert_eq!(shards[0].stats().watches, 0);
    assert_eq!(shards[0].stats().counters.signals_sent, 2);
    assert_accounted(&shards);
}

// ---------------------------------------------------------------------------------------------
// 2. Asks that cannot be answered fail at once.

#[test]
fn an_ask_whose_handler_panics_fails_at_once_with_panicked() {
    for (target_shard, max_rounds) in [(0, 1), (1, 2)] {
        let mut shards = cluster(2);
        let j = Journal::default();
        let asker = spawn_on(&mut shards, 0, j.probe());
        let target = spawn_on(&mut shards, target_shard, j.probe());
        tell(&mut shards, asker, Cmd::Ask { to: target, timeout: PATIENT, then: Then::Panic });
        // One round to ask and fail here, two when the failure crosses the mesh back.
        let rounds = rounds_until(&mut shards, 10, || j.of(asker).len() == 2);
        assert!(rounds <= max_rounds, "took {rounds} rounds (target on shard {target_shard})");

        let log = j.of(asker);
        let Event::Asked(id) = log[0] else { panic!("{log:?}") };
        assert_eq!(log[1], Event::Reply(id, Err(AskError::Undelivered(DeadLetterReason::Panicked))));
        assert_eq!(j.of(target).len(), 1, "the target got the request, then panicked");
        let k0 = shards[0].stats();
        assert_eq!((k0.pending_asks, k0.counters.ask_timeouts), (0, 0));
        let k = shards[target_shard].stats().counters;
        assert_eq!((k.panics, k.dead(DeadLetterReason::Panicked)), (1, 1), "{k:?}");
        settle(&mut shards);
        assert_accounted(&shards);
    }
}

#[test]
fn an_ask_queued_behind_a_panic_fails_at_once_with_stopped() {
    let mut shards = cluster(1);
    let j = Journal::default();
    let asker = spawn_on(&mut shards, 0, j.probe());
    let target = spawn_on(&mut shards, 0, j.probe());
    // The asker runs first and queues its request behind the panic.
    tell(&mut shards, asker, Cmd::Ask { to: target, timeout: PATIENT, then: Then::Answer });
    tell(&mut shards, target, Cmd::Panic("boom"));
    rounds_until(&mut shards, 1, || j.of(asker).len() == 2);

    let log = j.of(asker);
    let Event::Asked(id) = log[0] else { panic!("{log:?}") };
    assert_eq!(log[1], Event::Reply(id, Err(AskError::Undelivered(DeadLetterReason::Stopped))));
    let k = shards[0].stats().counters;
    assert_eq!((k.dead(DeadLetterReason::Panicked), k.dead(DeadLetterReason::Stopped)), (1, 1), "{k:?}");
    assert_eq!(k.ask_timeouts, 0);
    assert_accounted(&shards);
}

#[test]
fn an_ask_to_a_stopped_agent_fails_at_once_with_stopped() {
    for (target_shard, max_rounds) in [(0, 1), (1, 2)] {
        let mut shards = cluster(2);
        let j = Journal::default();
        let asker = spawn_on(&mut shards, 0, j.probe());
        let gone = dead_probe(&mut shards, &j, target_shard);
        tell(&mut shards, asker, Cmd::Ask { to: gone, timeout: PATIENT, then: Then::Answer });
        let rounds = rounds_until(&mut shards, 10, || j.of(asker).len() == 2);
        assert!(rounds <= max_rounds, "took {rounds} rounds (target on shard {target_shard})");

        let log = j.of(asker);
        let Event::Asked(id) = log[0] else { panic!("{log:?}") };
        assert_eq!(log[1], Event::Reply(id, Err(AskError::Undelivered(DeadLetterReason::Stopped))));
        let k0 = shards[0].stats();
        assert_eq!((k0.pending_asks, k0.counters.ask_timeouts), (0, 0));
        assert_eq!(totals(&shards).dead(DeadLetterReason::Stopped), 1);
        assert_accounted(&shards);
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Monitors.

#[test]
fn watchers_get_a_down_with_the_reason_of_the_end() {
    for target_shard in [0, 1] {
        let mut shards = cluster(2);
        let j = Journal::default();
        let watcher = spawn_on(&mut shards, 0, j.probe());
        let quits = spawn_on(&mut shards, target_shard, j.probe());
        let is_stopped = spawn_on(&mut shards, target_shard, j.probe());
        let fails = spawn_on(&mut shards, target_shard, j.probe());
        // Watching twice still gives one `Down`.
        for target in [quits, quits, is_stopped, fails] {
            tell(&mut shards, watcher, Cmd::Watch(target));
        }
        settle(&mut shards);
        assert_eq!(shards[target_shard].stats().watches, 3);

        tell(&mut shards, quits, Cmd::StopSelf);
        settle(&mut shards);
        tell(&mut shards, watcher, Cmd::Stop(is_stopped));
        settle(&mut shards);
        tell(&mut shards, fails, Cmd::Fail("bad input"));
        settle(&mut shards);

        assert_eq!(
            j.of(watcher),
            [
                down(quits, ExitReason::Normal),
                down(is_stopped, ExitReason::Shutdown),
                down(fails, ExitReason::failed("bad input")),
            ],
            "target on shard {target_shard}"
        );
        assert_eq!(shards[target_shard].stats().watches, 0);
        assert_eq!(shards[target_shard].stats().counters.signals_sent, 3);
        assert_eq!(shards[0].agents() + shards[1].agents(), 1);
        assert_accounted(&shards);
    }
}

#[test]
fn watching_a_dead_agent_gives_a_down_noproc() {
    for target_shard in [0, 1] {
        let mut shards = cluster(2);
        let j = Journal::default();
        let watcher = spawn_on(&mut shards, 0, j.probe());
        let gone = dead_probe(&mut shards, &j, target_shard);
        tell(&mut shards, watcher, Cmd::Watch(gone));
        settle(&mut shards);
        assert_eq!(j.of(watcher), [down(gone, ExitReason::NoProc)], "target on shard {target_shard}");
        assert_eq!(shards[target_shard].stats().watches, 0);
        assert_accounted(&shards);
    }
}

#[test]
fn unwatch_prevents_the_down() {
    for target_shard in [0, 1] {
        let mut shards = cluster(2);
        let j = Journal::default();
        let watcher = spawn_on(&mut shards, 0, j.probe());
        let target = spawn_on(&mut shards, target_shard, j.probe());
        tell(&mut shards, watcher, Cmd::Watch(target));
        settle(&mut shards);
        assert_eq!(shards[target_shard].stats().watches, 1);
        tell(&mut shards, watcher, Cmd::Unwatch(target));
        settle(&mut shards);
        assert_eq!(shards[target_shard].stats().watches, 0);

        tell(&mut shards, target, Cmd::Fail("bad"));
        settle(&mut shards);
        assert_eq!(j.of(target), [Event::Stopped]);
        assert_eq!(j.of(watcher), [], "target on shard {target_shard}");
        assert_eq!(shards[target_shard].stats().counters.signals_sent, 0);
        assert_accounted(&shards);
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Links.

/// `a` (shard 0) links to `b` (shard `b_shard`); `watcher` (shard 0) watches both.
fn linked_pair(shards: &mut [Shard], j: &Journal, b_shard: usize) -> (AgentId, AgentId, AgentId) {
    let a = spawn_on(shards, 0, j.probe());
    let b = spawn_on(shards, b_shard, j.probe());
    let watcher = spawn_on(shards, 0, j.probe());
    tell(shards, a, Cmd::Link(b));
    tell(shards, watcher, Cmd::Watch(a));
    tell(shards, watcher, Cmd::Watch(b));
    settle(shards);
    assert_eq!(links(shards), 2, "one entry on each side");
    (a, b, watcher)
}

#[test]
fn an_abnormal_exit_stops_the_linked_agent_with_the_same_reason() {
    for b_shard in [0, 1] {
        // b panics: a, which linked to it, stops with b's reason (and runs its own `on_stop`).
        let mut shards = cluster(2);
        let j = Journal::default();
        let (a, b, watcher) = linked_pair(&mut shards, &j, b_shard);
        tell(&mut shards, b, Cmd::Panic("boom"));
        settle(&mut shards);
        assert_eq!(j.of(watcher), [down(b, panicked("boom")), down(a, panicked("boom"))], "b on shard {b_shard}");
        assert_eq!(j.of(a), [Event::Stopped]);
        assert_eq!(j.of(b), []);
        assert_eq!(links(&shards), 0);
        assert_eq!(shards[0].agents() + shards[1].agents(), 1);
        assert_accounted(&shards);

        // a fails: b, the agent it linked to, stops with a's reason.
        let mut shards = cluster(2);
        let j = Journal::default();
        let (a, b, watcher) = linked_pair(&mut shards, &j, b_shard);
        tell(&mut shards, a, Cmd::Fail("bad"));
        settle(&mut shards);
        let bad = ExitReason::failed("bad");
        assert_eq!(j.of(watcher), [down(a, bad.clone()), down(b, bad)], "b on shard {b_shard}");
        assert_eq!(j.of(b), [Event::Stopped]);
        assert_eq!(links(&shards), 0);
        assert_eq!(shards[0].agents() + shards[1].agents(), 1);
        assert_accounted(&shards);
    }
}

#[test]
fn a_normal_exit_does_not_stop_a_linked_agent() {
    for b_shard in [0, 1] {
        for a_quits in [false, true] {
            let mut shards = cluster(2);
            let j = Journal::default();
            let (a, b, watcher) = linked_pair(&mut shards, &j, b_shard);
            let (quitter, survivor) = if a_quits { (a, b) } else { (b, a) };
            tell(&mut shards, quitter, Cmd::StopSelf);
            settle(&mut shards);
            tell(&mut shards, survivor, Cmd::Note(1));
            settle(&mut shards);
            assert_eq!(j.of(watcher), [down(quitter, ExitReason::Normal)]);
            assert_eq!(j.of(survivor), [Event::Note(1)], "b on shard {b_shard}, a quits: {a_quits}");
            assert_eq!(links(&shards), 0, "the survivor's side of the link is gone too");
            assert_accounted(&shards);
        }
    }
}

#[test]
fn a_trapping_agent_gets_exits_and_survives() {
    for b_shard in [0, 1] {
        let mut shards = cluster(2);
        let j = Journal::default();
        let trapper = spawn_on(&mut shards, 0, j.probe().trapping());
        let panics = spawn_on(&mut shards, b_shard, j.probe());
        let fails = spawn_on(&mut shards, b_shard, j.probe());
        let quits = spawn_on(&mut shards, b_shard, j.probe());
        for other in [panics, fails, quits] {
            tell(&mut shards, trapper, Cmd::Link(other));
        }
        settle(&mut shards);
        assert_eq!(links(&shards), 6);

        tell(&mut shards, panics, Cmd::Panic("boom"));
        settle(&mut shards);
        tell(&mut shards, fails, Cmd::Fail("bad"));
        settle(&mut shards);
        tell(&mut shards, quits, Cmd::StopSelf);
        settle(&mut shards);
        tell(&mut shards, trapper, Cmd::Note(1));
        settle(&mut shards);

        assert_eq!(
            j.of(trapper),
            [
                exit(panics, panicked("boom")),
                exit(fails, ExitReason::failed("bad")),
                exit(quits, ExitReason::Normal),
                Event::Note(1),
            ],
            "others on shard {b_shard}"
        );
        assert_eq!(links(&shards), 0);
        assert_eq!(shards[0].agents() + shards[1].agents(), 1);
        assert_accounted(&shards);
    }
}

#[test]
fn linking_a_dead_agent_gives_an_exit_noproc() {
    for target_shard in [0, 1] {
        let mut shards = cluster(2);
        let j = Journal::default();
        let gone = dead_probe(&mut shards, &j, target_shard);
        let plain = spawn_on(&mut shards, 0, j.probe());
        let trapper = spawn_on(&mut shards, 0, j.probe().trapping());
        let watcher = spawn_on(&mut shards, 0, j.probe());
        tell(&mut shards, watcher, Cmd::Watch(plain));
        settle(&mut shards);
        tell(&mut shards, plain, Cmd::Link(gone));
        tell(&mut shards, trapper, Cmd::Link(gone));
        settle(&mut shards);

        // Without trapping, `NoProc` is abnormal: the agent stops with it.
        assert_eq!(j.of(plain), [Event::Stopped], "target on shard {target_shard}");
        assert_eq!(j.of(watcher), [down(plain, ExitReason::NoProc)]);
        // A trapping agent gets it and lives on.
        assert_eq!(j.of(trapper), [exit(gone, ExitReason::NoProc)]);
        assert_eq!(links(&shards), 0, "no half-link is left behind");
        assert_eq!(shards[0].agents(), 2);
        assert_accounted(&shards);
    }
}

#[test]
fn spawn_linked_children_reach_a_trapping_parent_and_die_with_their_parent() {
    for child_shard in [0, 1] {
        let placement = if child_shard == 0 { SpawnPlacement::Local } else { SpawnPlacement::Shard(1) };
        let mut shards = cluster(2);
        let j = Journal::default();

        // The child panics: its trapping parent gets the `Exit`.
        let parent = spawn_on(&mut shards, 0, j.probe().trapping());
        tell(&mut shards, parent, Cmd::SpawnLinked { placement, on_start: OnStart::Run });
        settle(&mut shards);
        let child = j.child_of(parent);
        assert_eq!(child.shard(), child_shard);
        assert_eq!(links(&shards), 2);
        tell(&mut shards, child, Cmd::Panic("child broke"));
        settle(&mut shards);
        assert_eq!(j.of(parent), [Event::Spawned(child), exit(child, panicked("child broke"))]);
        assert_eq!(links(&shards), 0);

        // The parent fails: its child stops with the parent's reason.
        let parent = spawn_on(&mut shards, 0, j.probe());
        let watcher = spawn_on(&mut shards, 0, j.probe());
        tell(&mut shards, parent, Cmd::SpawnLinked { placement, on_start: OnStart::Run });
        settle(&mut shards);
        let child = j.child_of(parent);
        tell(&mut shards, watcher, Cmd::Watch(child));
        settle(&mut shards);
        let agents_before = shards[child_shard].agents();
        tell(&mut shards, parent, Cmd::Fail("parent gave up"));
        settle(&mut shards);
        assert_eq!(j.of(child), [Event::Stopped], "child on shard {child_shard}");
        assert_eq!(j.of(watcher), [down(child, ExitReason::failed("parent gave up"))]);
        assert_eq!(shards[child_shard].agents(), agents_before - 1 - u64::from(child_shard == 0));
        assert_eq!(links(&shards), 0);
        assert_accounted(&shards);
    }
}

#[test]
fn a_child_that_panics_in_on_start_reports_the_panic_to_its_linked_parent() {
    for child_shard in [0, 1] {
        let placement = if child_shard == 0 { SpawnPlacement::Local } else { SpawnPlacement::Shard(1) };
        let mut shards = cluster(2);
        let j = Journal::default();
        let parent = spawn_on(&mut shards, 0, j.probe().trapping());
        tell(&mut shards, parent, Cmd::SpawnLinked { placement, on_start: OnStart::Panic("bad start") });
        settle(&mut shards);
        let child = j.child_of(parent);
        // "Linked to this agent from its first instant": the parent hears why the child died.
        // (From another shard the `Exit` may come before the spawn's answer.)
        let log = j.of(parent);
        assert_eq!(log.len(), 2, "{log:?}");
        assert!(log.contains(&exit(child, panicked("bad start"))), "child on shard {child_shard}: {log:?}");
        assert_eq!(links(&shards), 0);
    }
}

#[test]
fn a_child_that_stops_normally_in_on_start_leaves_its_linked_parent_running() {
    for child_shard in [0, 1] {
        let placement = if child_shard == 0 { SpawnPlacement::Local } else { SpawnPlacement::Shard(1) };
        let mut shards = cluster(2);
        let j = Journal::default();
        let parent = spawn_on(&mut shards, 0, j.probe());
        tell(&mut shards, parent, Cmd::SpawnLinked { placement, on_start: OnStart::StopSelf });
        settle(&mut shards);
        let child = j.child_of(parent);
        assert_eq!(j.of(child), [Event::Stopped]);
        // A normal exit does not travel along a link.
        assert_eq!(j.of(parent), [Event::Spawned(child)], "child on shard {child_shard}");
        assert_eq!(shards[0].agents(), 1, "child on shard {child_shard}");
        assert_eq!(links(&shards), 0);
    }
}

#[test]
fn a_remote_linked_child_that_dies_in_on_start_is_reported_even_when_its_exit_comes_first() {
    // A batch of 1: shard 0 takes the child's `Exit` and the spawn's answer in separate passes
    // (as a busy shard does when they straddle a batch), so the `Exit` is dispatched first.
    let mut shards = cluster_with(2, ShardLimits { batch: 1, ..ShardLimits::default() });
    let j = Journal::default();
    let parent = spawn_on(&mut shards, 0, j.probe().trapping());
    let placement = SpawnPlacement::Shard(1);
    tell(&mut shards, parent, Cmd::SpawnLinked { placement, on_start: OnStart::Panic("bad start") });
    settle(&mut shards);
    let child = j.child_of(parent);
    assert_eq!(shards[1].agents(), 0);
    assert_eq!(j.of(parent), [exit(child, panicked("bad start")), Event::Spawned(child)]);
    assert_eq!(links(&shards), 0, "the parent holds a link to its dead child");
}

#[test]
fn a_held_early_exit_from_another_agent_is_dropped_when_the_linked_spawn_answers() {
    // a is linked to b (shard 1), unlinks it and spawns a linked child on shard 1; b dies while
    // the spawn's answer is pending, so b's `Exit` reaches a unlinked and is held as a possible
    // early exit of the child. The answer names another agent: the held exit is dropped, a goes
    // on, linked to its live child.
    // A batch of 1 and a note ahead of them keep the `Unlink` and the spawn in shard 1's ring
    // while b dies (as in the test below).
    let mut shards = cluster_with(2, ShardLimits { batch: 1, ..ShardLimits::default() });
    let j = Journal::default();
    let a = spawn_on(&mut shards, 0, j.probe());
    let b = spawn_on(&mut shards, 1, j.probe());
    let other = spawn_on(&mut shards, 1, j.probe());
    tell(&mut shards, a, Cmd::Link(b));
    settle(&mut shards);
    tell(&mut shards, a, Cmd::Burst { to: other, notes: 1, tracked: false, ask: false, control: None });
    shards[0].pass();
    tell(&mut shards, a, Cmd::Unlink(b));
    tell(&mut shards, a, Cmd::SpawnLinked { placement: SpawnPlacement::Shard(1), on_start: OnStart::Run });
    shards[0].pass();
    shards[0].pass();
    assert_eq!(shards[0].link_on_reply.len(), 1, "the spawn is pending");
    tell(&mut shards, b, Cmd::Panic("boom"));
    shards[1].pass();
    assert_eq!(shards[1].agents(), 1, "b is gone and the child not spawned yet: only `other` lives");
    shards[0].pass();
    assert_eq!(
        shards[0].link_on_reply.values().map(|p| p.early_exits.len()).sum::<usize>(),
        1,
        "b's exit is held for the pending spawn"
    );
    settle(&mut shards);
    let child = j.child_of(a);
    assert_ne!(child, b);
    assert_eq!(shards[0].agents(), 1, "a was not stopped by b's exit");
    assert_eq!(j.of(a), [Event::Burst { queued: 1, full: 0 }, Event::Spawned(child)]);
    assert_eq!(links(&shards), 2, "a and its child are linked both ways");
    assert!(shards[0].link_on_reply.is_empty());
}

#[test]
fn an_exit_in_flight_after_unlink_does_not_stop_the_unlinking_agent() {
    // A batch of 1 makes shard 1 take one envelope per pass from each ring, so the `Unlink`
    // operation can wait behind a note while b dies: the race of two threads, made determinate.
    let mut shards = cluster_with(2, ShardLimits { batch: 1, ..ShardLimits::default() });
    let j = Journal::default();
    let a = spawn_on(&mut shards, 0, j.probe());
    let b = spawn_on(&mut shards, 1, j.probe());
    let other = spawn_on(&mut shards, 1, j.probe());
    tell(&mut shards, a, Cmd::Link(b));
    settle(&mut shards);
    assert_eq!(links(&shards), 2);

    tell(&mut shards, a, Cmd::Burst { to: other, notes: 1, tracked: false, ask: false, control: None });
    shards[0].pass();
    tell(&mut shards, a, Cmd::Unlink(b));
    shards[0].pass();
    assert_eq!(shards[0].stats().links, 0, "a's side of the link is gone");
    // b dies before its shard reads the `Unlink` (still in the ring behind the note).
    tell(&mut shards, b, Cmd::Panic("boom"));
    shards[1].pass();
    assert_eq!(shards[1].agents(), 1);
    settle(&mut shards);

    // a had unlinked before b died: b's end must not take a down.
    assert_eq!(j.of(a), [Event::Burst { queued: 1, full: 0 }], "a was stopped by a link it had removed");
    assert_eq!(shards[0].agents(), 1);
    assert_eq!(links(&shards), 0);
}

// ---------------------------------------------------------------------------------------------
// 5. The control lane.

#[test]
fn a_control_message_passes_a_full_mailbox_and_runs_first() {
    let mut shards = cluster_with(1, ShardLimits { mailbox_capacity: 4, ..ShardLimits::default() });
    let j = Journal::default();
    let sender = spawn_on(&mut shards, 0, j.probe());
    let target = spawn_on(&mut shards, 0, j.probe());
    tell(&mut shards, sender, Cmd::Burst { to: target, notes: 6, tracked: false, ask: false, control: Some(100) });
    settle(&mut shards);

    // 4 fit, 2 come back `Full`; the control note is taken anyway.
    assert_eq!(j.of(sender), [Event::Burst { queued: 4, full: 2 }, Event::ControlSent(true)]);
    assert_eq!(
        j.of(target),
        [Event::Note(100), Event::Note(0), Event::Note(1), Event::Note(2), Event::Note(3)],
        "the control note runs before the queued ones"
    );
    let k = shards[0].stats().counters;
    assert_eq!((k.rejected_full, k.control_dispatched, k.delivered), (2, 1, 6), "{k:?}");
    assert_accounted(&shards);
}

#[test]
fn a_control_message_from_another_shard_runs_before_queued_normal_ones() {
    let mut shards = cluster_with(2, ShardLimits { mailbox_capacity: 4, ..ShardLimits::default() });
    let j = Journal::default();
    let sender = spawn_on(&mut shards, 0, j.probe());
    let target = spawn_on(&mut shards, 1, j.probe());
    tell(&mut shards, sender, Cmd::Burst { to: target, notes: 6, tracked: false, ask: false, control: Some(100) });
    settle(&mut shards);

    // Remote sends are all taken; the receiving shard keeps 4 and counts 2 as mailbox_full.
    assert_eq!(j.of(sender), [Event::Burst { queued: 6, full: 0 }, Event::ControlSent(true)]);
    assert_eq!(
        j.of(target),
        [Event::Note(100), Event::Note(0), Event::Note(1), Event::Note(2), Event::Note(3)],
        "the control note came last through the ring and ran first"
    );
    let k1 = shards[1].stats().counters;
    assert_eq!((k1.dead(DeadLetterReason::MailboxFull), k1.control_dispatched), (2, 1), "{k1:?}");
    assert_accounted(&shards);
}

// ---------------------------------------------------------------------------------------------
// 6. Load shedding.

/// One sender bursts 6 tracked notes, one ask and one control note at a target on
/// `target_shard`, whose shard sheds at a depth of 4, and checks what was shed.
fn shedding_case(target_shard: usize) {
    let mut shards = cluster_with(2, ShardLimits { shed_queue_depth: 4, ..ShardLimits::default() });
    let j = Journal::default();
    let sender = spawn_on(&mut shards, 0, j.probe());
    let target = spawn_on(&mut shards, target_shard, j.probe());
    tell(&mut shards, sender, Cmd::Burst { to: target, notes: 6, tracked: true, ask: true, control: Some(100) });
    settle(&mut shards);

    // Notes 0..4 fill the shard to its depth; notes 4 and 5 and the ask are shed; the control
    // note gets through (and runs first).
    let log = j.of(sender);
    let Event::Asked(ask) = log[1] else { panic!("{log:?}") };
    let shed = DeadLetterReason::Shed;
    assert_eq!(
        log,
        [
            Event::Burst { queued: 6, full: 0 },
            Event::Asked(ask),
            Event::ControlSent(true),
            Event::Reply(ask, Err(AskError::Undelivered(shed))),
            Event::Undelivered(target, shed),
            Event::Undelivered(target, shed),
        ],
        "target on shard {target_shard}"
    );
    assert_eq!(
        j.of(target),
        [Event::Note(100), Event::Note(0), Event::Note(1), Event::Note(2), Event::Note(3)],
        "target on shard {target_shard}"
    );
    let k = shards[target_shard].stats().counters;
    assert_eq!(k.dead(shed), 3, "{k:?}");
    assert_eq!(k.dead_letters_total(), 3, "{k:?}");
    assert_eq!(shards[0].stats().counters.ask_timeouts, 0);
    // Once drained, the shard stops shedding.
    assert!(!shards[target_shard].stats().shedding);
    assert_accounted(&shards);
}

#[test]
fn an_overloaded_shard_sheds_normal_messages_but_not_control_ones() {
    shedding_case(0);
}

#[test]
fn a_shard_sheds_messages_from_other_shards_and_tells_their_senders() {
    shedding_case(1);
}

#[test]
fn host_messages_are_shed_past_the_queue_depth() {
    let mut shards = cluster_with(1, ShardLimits { shed_queue_depth: 3, ..ShardLimits::default() });
    let j = Journal::default();
    let target = spawn_on(&mut shards, 0, j.probe());
    for n in 0..5 {
        tell(&mut shards, target, Cmd::Note(n));
    }
    settle(&mut shards);
    assert_eq!(j.of(target), [Event::Note(0), Event::Note(1), Event::Note(2)]);
    assert_eq!(shards[0].stats().counters.dead(DeadLetterReason::Shed), 2);
    assert_accounted(&shards);
}

// ---------------------------------------------------------------------------------------------
// 7. Deadline propagation.

#[test]
fn a_nested_ask_inherits_the_deadline_of_the_request_being_handled() {
    let mut shards = cluster(2);
    let j = Journal::default();
    let a = spawn_on(&mut shards, 0, j.probe());
    let b = spawn_on(&mut shards, 1, j.probe());
    let c = spawn_on(&mut shards, 0, j.probe());
    let timeout = Duration::from_millis(50);
    let ns = |d: Duration| d.as_nanos() as u64;
    let before = shards[0].shared.clock.now_ns();
    // a asks b (50 ms); b, handling it, asks c with a 10 s timeout.
    tell(&mut shards, a, Cmd::Ask { to: b, timeout, then: Then::Relay(c) });
    settle(&mut shards);
    let after = shards[0].shared.clock.now_ns();

    let b_log = j.of(b);
    let [Event::Requested(Some(b_deadline)), Event::Asked(b_ask), Event::Reply(answered, Ok(7))] = b_log[..] else {
        panic!("{b_log:?}")
    };
    assert_eq!(answered, b_ask);
    // b's request carries a's deadline: now + 50 ms, as a's shard saw now.
    assert!((before + ns(timeout)..=after + ns(timeout)).contains(&b_deadline), "{before} {b_deadline} {after}");
    // c's request carries the same deadline, not b's own now + 10 s.
    assert_eq!(j.of(c), [Event::Requested(Some(b_deadline))]);
    assert!(b_deadline < before + ns(PATIENT));
    let a_log = j.of(a);
    let [Event::Asked(a_ask), Event::Reply(answered, Ok(7))] = a_log[..] else { panic!("{a_log:?}") };
    assert_eq!(answered, a_ask);
    assert_accounted(&shards);
}

// ---------------------------------------------------------------------------------------------
// 8. Timers.

#[test]
fn a_timer_fires_after_its_delay_and_counts_as_sent_only_then() {
    let mut shards = cluster(1);
    let j = Journal::default();
    let arming = spawn_on(&mut shards, 0, j.probe());
    let target = spawn_on(&mut shards, 0, j.probe());
    let delay = Duration::from_millis(20);
    let start = Instant::now();
    tell(&mut shards, arming, Cmd::After { to: target, note: 1, delay, control: false });
    settle(&mut shards);

    let s = shards[0].stats();
    assert_eq!(j.of(target), [], "not before its delay");
    assert_eq!((s.timers, s.counters.timers_fired, s.counters.sent), (1, 0, 0), "{s:?}");
    assert_accounted(&shards);

    while j.of(target).is_empty() {
        assert!(start.elapsed() < Duration::from_secs(5), "the timer never fired");
        std::thread::sleep(Duration::from_millis(1));
        settle(&mut shards);
    }
    assert!(start.elapsed() >= delay);
    let s = shards[0].stats();
    assert_eq!(j.of(target), [Event::Note(1)]);
    assert_eq!((s.timers, s.counters.timers_fired, s.counters.sent), (0, 1, 1), "{s:?}");
    assert_accounted(&shards);
}

#[test]
fn a_cancelled_timer_never_fires() {
    let mut shards = cluster(1);
    let j = Journal::default();
    let arming = spawn_on(&mut shards, 0, j.probe());
    let target = spawn_on(&mut shards, 0, j.probe());
    let delay = Duration::from_millis(2);
    tell(&mut shards, arming, Cmd::After { to: target, note: 1, delay, control: false });
    tell(&mut shards, arming, Cmd::CancelLastTimer);
    settle(&mut shards);
    // Pending once, then gone.
    assert_eq!(j.of(arming), [Event::Cancelled(true), Event::Cancelled(false)]);
    assert_eq!(shards[0].stats().timers, 0);

    std::thread::sleep(delay * 2);
    settle(&mut shards);
    assert_eq!(j.of(target), []);
    let k = shards[0].stats().counters;
    assert_eq!((k.timers_fired, k.sent, k.dead_letters_total()), (0, 0, 0), "{k:?}");
    assert_accounted(&shards);
}

#[test]
fn a_timer_pending_at_halt_is_a_shutdown_dead_letter() {
    let mut shards = cluster(1);
    let j = Journal::default();
    let arming = spawn_on(&mut shards, 0, j.probe());
    let target = spawn_on(&mut shards, 0, j.probe());
    tell(&mut shards, arming, Cmd::After { to: target, note: 1, delay: Duration::from_secs(60), control: false });
    settle(&mut shards);
    assert_eq!(shards[0].stats().timers, 1);

    let last = shards[0].halt();
    assert_eq!(last.timers, 0);
    let k = last.counters;
    assert_eq!((k.timers_fired, k.sent, k.dead(DeadLetterReason::Shutdown)), (0, 1, 1), "{k:?}");
    assert_eq!(j.of(target), [Event::Stopped], "the note never arrived");
    assert_accounted(&shards);
}

#[test]
fn a_control_timer_overtakes_queued_normal_messages() {
    let mut shards = cluster(2);
    let j = Journal::default();
    let arming = spawn_on(&mut shards, 0, j.probe());
    let target = spawn_on(&mut shards, 1, j.probe());
    // The timer is due at once: it fires at the end of the pass, after the burst was staged,
    // and reaches the target's shard behind the burst's notes.
    tell(&mut shards, arming, Cmd::After { to: target, note: 100, delay: Duration::ZERO, control: true });
    tell(&mut shards, arming, Cmd::Burst { to: target, notes: 3, tracked: false, ask: false, control: None });
    settle(&mut shards);
    assert_eq!(j.of(target), [Event::Note(100), Event::Note(0), Event::Note(1), Event::Note(2)]);
    assert_eq!(shards[0].stats().counters.timers_fired, 1);
    assert_accounted(&shards);
}

// ---------------------------------------------------------------------------------------------
// 9. The dead-letter subscriber.

#[test]
fn the_dead_letter_subscriber_gets_one_notice_in_every_n() {
    let mut shards = cluster(1);
    let j = Journal::default();
    let subscriber = spawn_on(&mut shards, 0, DeadLetterSubscriber { journal: j.clone() });
    let sender = spawn_on(&mut shards, 0, j.probe());
    let gone = dead_probe(&mut shards, &j, 0);
    shards[0].dead_letter_sink = Some(DeadLetterSink::new(subscriber, 2));
    tell(&mut shards, sender, Cmd::Burst { to: gone, notes: 10, tracked: false, ask: false, control: None });
    settle(&mut shards);

    let notice = Event::DeadLetter(DeadLetter {
        to: gone,
        from: Some(sender),
        reason: DeadLetterReason::Stopped,
        message_type: std::any::type_name::<Cmd>(),
        shard: 0,
    });
    assert_eq!(j.of(subscriber), vec![notice; 5]);
    let k = shards[0].stats().counters;
    assert_eq!(k.dead_letter_notices, 5, "{k:?}");
    assert_eq!(k.dead(DeadLetterReason::Stopped), 10, "{k:?}");
    // Notices are not messages of the accounting: only `StopSelf` and the burst were delivered.
    assert_eq!((k.sent, k.delivered), (10, 2), "{k:?}");
    assert_accounted(&shards);
}

#[test]
fn a_panicked_message_is_reported_to_the_dead_letter_subscriber() {
    let mut shards = cluster(1);
    let j = Journal::default();
    let subscriber = spawn_on(&mut shards, 0, DeadLetterSubscriber { journal: j.clone() });
    let victim = spawn_on(&mut shards, 0, j.probe());
    shards[0].dead_letter_sink = Some(DeadLetterSink::new(subscriber, 1));
    tell(&mut shards, victim, Cmd::Panic("boom"));
    settle(&mut shards);

    let k = shards[0].stats().counters;
    assert_eq!(k.dead(DeadLetterReason::Panicked), 1, "{k:?}");
    assert_eq!(k.dead_letter_notices, 1, "every counted dead letter is sampled: {k:?}");
    assert_eq!(
        j.of(subscriber),
        [Event::DeadLetter(DeadLetter {
            to: victim,
            from: None,
            reason: DeadLetterReason::Panicked,
            message_type: std::any::type_name::<Cmd>(),
            shard: 0,
        })]
    );
}
