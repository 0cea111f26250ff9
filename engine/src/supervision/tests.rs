//! Supervisor tests: strategies, restart types, intensity, backoff, order, names, nesting,
//! on shards driven pass by pass.

use super::{
    Backoff, ChildInfo, ChildSpec, Restart, SpecError, Strategy, Supervisor, SupervisorMsg, SupervisorSpec,
    SupervisorStats,
};
use crate::agent::{Addr, Agent, AgentId, Ctx, Down, ExitReason, SpawnPlacement, Spawned};
use crate::ask::{HostReply, ReplyTarget, ReplyTo};
use crate::registry::{owner_of, RegistryError};
use crate::shard::test_support::{assert_accounted, cluster, settle};
use crate::shard::Shard;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

/// Runs passes on one shard only until it does no work (the others stand still).
fn settle_one(shard: &mut Shard) {
    for _ in 0..100_000 {
        if shard.pass() == 0 {
            return;
        }
    }
    panic!("the shard did not settle");
}

/// Settles, sleeping 1 ms between rounds, until `done` holds or `limit` has passed. Returns
/// whether `done` held.
fn settle_until(shards: &mut [Shard], limit: Duration, mut done: impl FnMut(&mut [Shard]) -> bool) -> bool {
    let start = Instant::now();
    loop {
        settle(shards);
        if done(shards) {
            return true;
        }
        if start.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Sends a request built around a host-style reply cell, settles, and returns the answer
/// (`None` when nobody answered: the target is gone).
fn try_ask<M: Send + 'static, R: Send + 'static>(
    shards: &mut [Shard],
    to: Addr<M>,
    make: impl FnOnce(ReplyTo<R>) -> M,
) -> Option<R> {
    let cell = Arc::new(HostReply::default());
    let msg = make(ReplyTo::new(ReplyTarget::Host(cell.clone()), true));
    assert!(shards[to.shard()].inject(to, msg).is_ok(), "inject queue full");
    settle(shards);
    cell.wait(Instant::now()).ok().map(|p| p.take::<R>().unwrap_or_else(|_| panic!("wrong reply type")))
}

fn ask<M: Send + 'static, R: Send + 'static>(
    shards: &mut [Shard],
    to: Addr<M>,
    make: impl FnOnce(ReplyTo<R>) -> M,
) -> R {
    try_ask(shards, to, make).expect("the ask was not answered")
}

/// Asks an agent of shard `i` while only that shard runs passes.
fn ask_on_shard_only<M: Send + 'static, R: Send + 'static>(
    shards: &mut [Shard],
    i: usize,
    to: Addr<M>,
    make: impl FnOnce(ReplyTo<R>) -> M,
) -> R {
    let cell = Arc::new(HostReply::default());
    let msg = make(ReplyTo::new(ReplyTarget::Host(cell.clone()), true));
    assert!(shards[i].inject(to, msg).is_ok(), "inject queue full");
    settle_one(&mut shards[i]);
    cell.wait(Instant::now()).expect("no answer").take::<R>().unwrap_or_else(|_| panic!("wrong reply type"))
}

fn children(shards: &mut [Shard], sup: Addr<SupervisorMsg>) -> Vec<ChildInfo> {
    ask(shards, sup, SupervisorMsg::Children)
}

fn stats(shards: &mut [Shard], sup: Addr<SupervisorMsg>) -> SupervisorStats {
    ask(shards, sup, SupervisorMsg::Stats)
}

/// The running instance of every child, in spec order (panics when one is not running).
fn running_ids(shards: &mut [Shard], sup: Addr<SupervisorMsg>) -> Vec<AgentId> {
    children(shards, sup)
        .iter()
        .map(|c| c.agent.unwrap_or_else(|| panic!("child {} is not running", c.label)))
        .collect()
}

/// Asks a worker for its id; `None` when the id is stale.
fn ping(shards: &mut [Shard], id: AgentId) -> Option<AgentId> {
    try_ask(shards, Addr::<Job>::from_id(id), Job::Ping)
}

/// Injects `msg` for `to` through `shard`'s inject queue.
fn post<M: Send + 'static>(shard: &mut Shard, to: Addr<M>, msg: M) {
    assert!(shard.inject(to, msg).is_ok(), "inject queue full");
}

fn send(shards: &mut [Shard], id: AgentId, job: Job) {
    assert!(shards[id.shard()].inject(Addr::<Job>::from_id(id), job).is_ok(), "inject queue full");
}

/// A shared, ordered record of worker lifecycle events.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn push(&self, line: String) {
        self.0.lock().unwrap().push(line);
    }

    /// Everything logged since the last `take`.
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// What a test worker can be told.
enum Job {
    /// Panic in the handler.
    Crash,
    /// `ctx.fail(..)`.
    Fail,
    /// `ctx.stop_self()`: a normal exit.
    Quit,
    /// Answer with `ctx.id()`.
    Ping(ReplyTo<AgentId>),
}

/// The supervised worker: logs `start:<label>` and `stop:<label>` (the latter only after a
/// clean exit: `on_stop` is not run after a panic).
struct Worker {
    label: &'static str,
    log: Log,
}

impl Agent for Worker {
    type Msg = Job;

    fn on_start(&mut self, _ctx: &mut Ctx<'_>) {
        self.log.push(format!("start:{}", self.label));
    }

    fn handle(&mut self, job: Job, ctx: &mut Ctx<'_>) {
        match job {
            Job::Crash => panic!("worker {} was told to crash (expected in supervision tests)", self.label),
            Job::Fail => ctx.fail(format!("worker {} was told to fail", self.label)),
            Job::Quit => ctx.stop_self(),
            Job::Ping(reply) => {
                let me = ctx.id();
                ctx.reply(reply, me);
            }
        }
    }

    fn on_stop(&mut self, _ctx: &mut Ctx<'_>) {
        self.log.push(format!("stop:{}", self.label));
    }
}

fn worker(label: &'static str, log: &Log) -> ChildSpec {
    let log = log.clone();
    ChildSpec::new(label, move || Worker { label, log: log.clone() })
}

/// Watches one agent and records every `Down` it hears.
struct Watcher {
    target: AgentId,
    downs: Arc<Mutex<Vec<Down>>>,
}

impl Agent for Watcher {
    type Msg = ();

    fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        ctx.watch(self.target);
    }

    fn handle(&mut self, (): (), _ctx: &mut Ctx<'_>) {}

    fn on_down(&mut self, down: Down, _ctx: &mut Ctx<'_>) {
        self.downs.lock().unwrap().push(down);
    }
}

/// Spawns a watcher of `target` on shard 0 and returns what it will record.
fn watch(shards: &mut [Shard], target: AgentId) -> Arc<Mutex<Vec<Down>>> {
    let downs = Arc::new(Mutex::new(Vec::new()));
    shards[0].spawn(Watcher { target, downs: downs.clone() }).unwrap();
    downs
}

/// Stops the agent it is told about, as another agent (reason `Shutdown`).
struct Stopper;

impl Agent for Stopper {
    type Msg = AgentId;

    fn handle(&mut self, id: AgentId, ctx: &mut Ctx<'_>) {
        ctx.stop(id);
    }
}

fn three(strategy: Strategy, log: &Log) -> SupervisorSpec {
    SupervisorSpec::new(strategy).child(worker("a", log)).child(worker("b", log)).child(worker("c", log))
}

fn lines(expected: &[&str]) -> Vec<String> {
    expected.iter().map(|s| s.to_string()).collect()
}

/// A name whose registry owner, among `shards` shards, is `owner`.
fn name_owned_by(prefix: &str, owner: usize, shards: usize) -> String {
    (0..).map(|i| format!("{prefix}-{i}")).find(|n| owner_of(n, shards) == owner).unwrap()
}

// ---------------------------------------------------------------------------------------------
// 1. Start order
// ---------------------------------------------------------------------------------------------

#[test]
fn children_start_in_spec_order_and_are_reported_running() {
    let log = Log::default();
    let mut shards = cluster(1);
    let sup = shards[0].spawn(Supervisor::new(three(Strategy::OneForOne, &log))).unwrap();
    settle(&mut shards);
    assert_eq!(log.take(), lines(&["start:a", "start:b", "start:c"]));

    let st = stats(&mut shards, sup);
    assert_eq!(st, SupervisorStats { children: 3, running: 3, restarts: 0, stop_timeouts: 0, start_failures: 0 });
    let infos = children(&mut shards, sup);
    let labels: Vec<&str> = infos.iter().map(|c| &*c.label).collect();
    assert_eq!(labels, ["a", "b", "c"]);
    assert!(infos.iter().all(|c| c.restarts == 0 && c.name.is_none()), "{infos:?}");
    let ids = running_ids(&mut shards, sup);
    // Three distinct live agents on the supervisor's shard, each answering with its own id.
    assert!(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2], "{ids:?}");
    for &id in &ids {
        assert_eq!(id.shard(), 0);
        assert_eq!(ping(&mut shards, id), Some(id));
    }
    assert_eq!(shards[0].agents(), 4, "the supervisor and its three children");
    assert_accounted(&shards);
}

// ---------------------------------------------------------------------------------------------
// 2-4. Strategies
// ---------------------------------------------------------------------------------------------

#[test]
fn one_for_one_restarts_only_the_crashed_child() {
    let log = Log::default();
    let mut shards = cluster(1);
    let sup = shards[0].spawn(Supervisor::new(three(Strategy::OneForOne, &log))).unwrap();
    settle(&mut shards);
    let before = running_ids(&mut shards, sup);
    log.take();

    send(&mut shards, before[1], Job::Crash);
    settle(&mut shards);

    // No "stop:b": a panicked agent's on_stop is not run.
    assert_eq!(log.take(), lines(&["start:b"]));
    let after = running_ids(&mut shards, sup);
    assert_eq!(after[0], before[0], "a keeps its id");
    assert_eq!(after[2], before[2], "c keeps its id");
    assert_ne!(after[1], before[1], "b is a new instance");
    if after[1].slot() == before[1].slot() {
        assert_ne!(after[1].generation(), before[1].generation(), "a reused slot has a new generation");
    }
    assert_eq!(ping(&mut shards, after[1]), Some(after[1]));
    assert_eq!(ping(&mut shards, before[1]), None, "the old id of b reaches nobody");
    let infos = children(&mut shards, sup);
    assert_eq!(infos.iter().map(|c| c.restarts).collect::<Vec<_>>(), [0, 1, 0]);
    let st = stats(&mut shards, sup);
    assert_eq!((st.children, st.running, st.restarts), (3, 3, 1));
    assert_eq!(shards[0].agents(), 4);
    assert_eq!(shards[0].stats().counters.panics, 1);
    assert_accounted(&shards);
}

#[test]
fn one_for_all_stops_the_others_in_reverse_then_starts_all_in_order() {
    let log = Log::default();
    let mut shards = cluster(1);
    let sup = shards[0].spawn(Supervisor::new(three(Strategy::OneForAll, &log))).unwrap();
    settle(&mut shards);
    let before = running_ids(&mut shards, sup);
    log.take();

    send(&mut shards, before[1], Job::Crash);
    settle(&mut shards);

    assert_eq!(log.take(), lines(&["stop:c", "stop:a", "start:a", "start:b", "start:c"]));
    let after = running_ids(&mut shards, sup);
    for (i, (&new, &old)) in after.iter().zip(&before).enumerate() {
        assert_ne!(new, old, "child {i} is a new instance");
        assert_eq!(ping(&mut shards, old), None, "old id of child {i} is stale");
        assert_eq!(ping(&mut shards, new), Some(new));
    }
    let st = stats(&mut shards, sup);
    // One failure, one restart (it is what the intensity counts).
    assert_eq!((st.children, st.running, st.restarts), (3, 3, 1));
    assert_eq!(children(&mut shards, sup)[1].restarts, 1);
    assert_eq!(shards[0].agents(), 4);
    assert_accounted(&shards);
}

#[test]
fn rest_for_one_restarts_the_crashed_child_and_those_after_it() {
    let log = Log::default();
    let mut shards = cluster(1);
    let sup = shards[0].spawn(Supervisor::new(three(Strategy::RestForOne, &log))).unwrap();
    settle(&mut shards);
    let before = running_ids(&mut shards, sup);
    log.take();

    send(&mut shards, before[1], Job::Crash);
    settle(&mut shards);

    assert_eq!(log.take(), lines(&["stop:c", "start:b", "start:c"]));
    let after = running_ids(&mut shards, sup);
    assert_eq!(after[0], before[0], "a is untouched");
    assert_ne!(after[1], before[1]);
    assert_ne!(after[2], before[2]);
    assert_eq!(ping(&mut shards, before[2]), None);
    let st = stats(&mut shards, sup);
    assert_eq!((st.children, st.running, st.restarts), (3, 3, 1));
    assert_accounted(&shards);
}

#[test]
fn rest_for_one_on_the_last_child_restarts_only_it() {
    let log = Log::default();
    let mut shards = cluster(1);
    let sup = shards[0].spawn(Supervisor::new(three(Strategy::RestForOne, &log))).unwrap();
    settle(&mut shards);
    let before = running_ids(&mut shards, sup);
    log.take();

    send(&mut shards, before[2], Job::Fail);
    settle(&mut shards);

    // A clean failure runs on_stop, then only c starts again.
    assert_eq!(log.take(), lines(&["stop:c", "start:c"]));
    let after = running_ids(&mut shards, sup);
    assert_eq!(&after[..2], &before[..2]);
    assert_ne!(after[2], before[2]);
    assert_accounted(&shards);
}

// ---------------------------------------------------------------------------------------------
// 5. Restart types
// ---------------------------------------------------------------------------------------------

#[test]
fn permanent_child_restarts_after_a_normal_exit_and_after_a_failure() {
    let log = Log::default();
    let mut shards = cluster(1);
    let spec = SupervisorSpec::new(Strategy::OneForOne).child(worker("p", &log).restart(Restart::Permanent));
    let sup = shards[0].spawn(Supervisor::new(spec)).unwrap();
    settle(&mut shards);
    let first = running_ids(&mut shards, sup)[0];
    log.take();

    send(&mut shards, first, Job::Quit);
    settle(&mut shards);
    assert_eq!(log.take(), lines(&["stop:p", "start:p"]));
    let second = running_ids(&mut shards, sup)[0];
    assert_ne!(second, first);

    send(&mut shards, second, Job::Fail);
    settle(&mut shards);
    assert_eq!(log.take(), lines(&["stop:p", "start:p"]));
    let third = running_ids(&mut shards, sup)[0];
    assert_ne!(third, second);

    let st = stats(&mut shards, sup);
    assert_eq!((st.children, st.running, st.restarts), (1, 1, 2));
    assert_accounted(&shards);
}

#[test]
fn transient_child_restarts_after_a_failure_or_a_panic() {
    let log = Log::default();
    let mut shards = cluster(1);
    let spec = SupervisorSpec::new(Strategy::OneForOne).child(worker("t", &log).restart(Restart::Transient));
    let sup = shards[0].spawn(Supervisor::new(spec)).unwrap();
    settle(&mut shards);
    let first = running_ids(&mut shards, sup)[0];
    log.take();

    send(&mut shards, first, Job::Fail);
    settle(&mut shards);
    assert_eq!(log.take(), lines(&["stop:t", "start:t"]));
    let second = running_ids(&mut shards, sup)[0];
    assert_ne!(second, first);

    send(&mut shards, second, Job::Crash);
    settle(&mut shards);
    assert_eq!(log.take(), lines(&["start:t"]));
    let third = running_ids(&mut shards, sup)[0];
    assert_ne!(third, second);

    let st = stats(&mut shards, sup);
    assert_eq!((st.children, st.running, st.restarts), (1, 1, 2));
    assert_accounted(&shards);
}

#[test]
fn transient_child_is_not_restarted_after_a_normal_exit() {
    let log = Log::default();
    let mut shards = cluster(1);
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(worker("t", &log).restart(Restart::Transient))
        .child(worker("p", &log));
    let sup = shards[0].spawn(Supervisor::new(spec)).unwrap();
    settle(&mut shards);
    let ids = running_ids(&mut shards, sup);
    log.take();

    send(&mut shards, ids[0], Job::Quit);
    settle(&mut shards);

    assert_eq!(log.take(), lines(&["stop:t"]));
    let infos = children(&mut shards, sup);
    assert_eq!(infos[0].agent, None);
    assert_eq!(infos[1].agent, Some(ids[1]));
    let st = stats(&mut shards, sup);
    assert_eq!(st, SupervisorStats { children: 1, running: 1, restarts: 0, stop_timeouts: 0, start_failures: 0 });
    assert_eq!(shards[0].agents(), 2, "the supervisor and p");
    assert_accounted(&shards);
}

#[test]
fn transient_child_is_not_restarted_after_being_shut_down_by_another_agent() {
    let log = Log::default();
    let mut shards = cluster(1);
    let spec = SupervisorSpec::new(Strategy::OneForOne).child(worker("t", &log).restart(Restart::Transient));
    let sup = shards[0].spawn(Supervisor::new(spec)).unwrap();
    settle(&mut shards);
    let t = running_ids(&mut shards, sup)[0];
    log.take();

    let stopper = shards[0].spawn(Stopper).unwrap();
    post(&mut shards[0], stopper, t);
    settle(&mut shards);

    assert_eq!(log.take(), lines(&["stop:t"]));
    assert_eq!(children(&mut shards, sup)[0].agent, None);
    let st = stats(&mut shards, sup);
    assert_eq!((st.children, st.running, st.restarts), (0, 0, 0));
    assert_eq!(ping(&mut shards, t), None);
    assert_accounted(&shards);
}

#[test]
fn permanent_child_is_restarted_after_being_shut_down_by_another_agent() {
    let log = Log::default();
    let mut shards = cluster(1);
    let spec = SupervisorSpec::new(Strategy::OneForOne).child(worker("p", &log));
    let sup = shards[0].spawn(Supervisor::new(spec)).unwrap();
    settle(&mut shards);
    let p = running_ids(&mut shards, sup)[0];
    log.take();

    let stopper = shards[0].spawn(Stopper).unwrap();
    post(&mut shards[0], stopper, p);
    settle(&mut shards);

    assert_eq!(log.take(), lines(&["stop:p", "start:p"]));
    let again = running_ids(&mut shards, sup)[0];
    assert_ne!(again, p);
    assert_eq!(stats(&mut shards, sup).restarts, 1);
    assert_accounted(&shards);
}

#[test]
fn temporary_child_is_never_restarted_and_leaves_the_children() {
    let log = Log::default();
    let mut shards = cluster(1);
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(worker("t1", &log).restart(Restart::Temporary))
        .child(worker("t2", &log).restart(Restart::Temporary))
        .child(worker("p", &log));
    let sup = shards[0].spawn(Supervisor::new(spec)).unwrap();
    settle(&mut shards);
    let ids = running_ids(&mut shards, sup);
    assert_eq!(stats(&mut shards, sup).children, 3);
    log.take();

    // A panic does not restart it ...
    send(&mut shards, ids[0], Job::Crash);
    settle(&mut shards);
    assert_eq!(log.take(), Vec::<String>::new());
    let st = stats(&mut shards, sup);
    assert_eq!((st.children, st.running, st.restarts), (2, 2, 0));

    // ... nor does a normal exit.
    send(&mut shards, ids[1], Job::Quit);
    settle(&mut shards);
    assert_eq!(log.take(), lines(&["stop:t2"]));
    let st = stats(&mut shards, sup);
    assert_eq!((st.children, st.running, st.restarts), (1, 1, 0));

    let infos = children(&mut shards, sup);
    assert_eq!(infos.iter().map(|c| c.agent).collect::<Vec<_>>(), [None, None, Some(ids[2])]);
    assert_eq!(shards[0].agents(), 2, "the supervisor and p");
    assert_accounted(&shards);
}

/// `Restart::Temporary` is documented as "Never" restarted; a sibling's failure under
/// `one_for_all` stops it (as OTP does) but must not start it again.
#[test]

fn one_for_all_does_not_restart_a_temporary_sibling() {
    let log = Log::default();
    let mut shards = cluster(1);
    let spec = SupervisorSpec::new(Strategy::OneForAll)
        .child(worker("t", &log).restart(Restart::Temporary))
        .child(worker("p", &log));
    let sup = shards[0].spawn(Supervisor::new(spec)).unwrap();
    settle(&mut shards);
    let ids = running_ids(&mut shards, sup);
    log.take();

    send(&mut shards, ids[1], Job::Crash);
    settle(&mut shards);

    assert_eq!(log.take(), lines(&["stop:t", "start:p"]));
    let infos = children(&mut shards, sup);
    assert_eq!(infos[0].agent, None, "the temporary child stays down");
    let st = stats(&mut shards, sup);
    assert_eq!((st.children, st.running), (1, 1));
    assert_accounted(&shards);
}

/// A one-shot job: logs its start and ends normally right away, in `on_start`.
struct OneShot {
    log: Log,
}

impl Agent for OneShot {
    type Msg = ();

    fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        self.log.push("run:job".into());
        ctx.stop_self();
    }

    fn handle(&mut self, (): (), _ctx: &mut Ctx<'_>) {}
}

/// A transient child that finishes normally is never restarted, even when it finishes in
/// `on_start`.
#[test]
fn transient_child_that_ends_normally_in_on_start_is_not_restarted() {
    let log = Log::default();
    let mut shards = cluster(1);
    let job_log = log.clone();
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(ChildSpec::new("job", move || OneShot { log: job_log.clone() }).restart(Restart::Transient))
        .child(worker("p", &log));
    let sup = shards[0].spawn(Supervisor::new(spec)).unwrap();
    let downs = watch(&mut shards, sup.id());
    settle(&mut shards);

    assert_eq!(log.take(), lines(&["run:job", "start:p"]), "the job ran once");
    assert!(downs.lock().unwrap().is_empty(), "the supervisor is alive: {:?}", downs.lock().unwrap());
    let st = stats(&mut shards, sup);
    assert_eq!((st.children, st.running, st.restarts), (1, 1, 0));
    assert_accounted(&shards);
}

// ---------------------------------------------------------------------------------------------
// 6. Intensity
// ---------------------------------------------------------------------------------------------

#[test]
fn the_restart_past_the_intensity_stops_all_children_and_fails_the_supervisor() {
    let log = Log::default();
    let mut shards = cluster(1);
    let spec = three(Strategy::OneForOne, &log).intensity(3, Duration::from_secs(1));
    let sup = shards[0].spawn(Supervisor::new(spec)).unwrap();
    let downs = watch(&mut shards, sup.id());
    settle(&mut shards);
    let ids = running_ids(&mut shards, sup);
    log.take();

    for round in 1..=3u64 {
        let b = running_ids(&mut shards, sup)[1];
        send(&mut shards, b, Job::Crash);
        settle(&mut shards);
        assert_eq!(log.take(), lines(&["start:b"]), "crash {round} is restarted");
        assert_eq!(stats(&mut shards, sup).restarts, round);
    }
    assert!(downs.lock().unwrap().is_empty());
    let last = running_ids(&mut shards, sup);
    assert_eq!((last[0], last[2]), (ids[0], ids[2]));

    // The fourth crash within the period: c then a are stopped, and the supervisor fails.
    send(&mut shards, last[1], Job::Crash);
    settle(&mut shards);

    assert_eq!(log.take(), lines(&["stop:c", "stop:a"]));
    assert_eq!(
        *downs.lock().unwrap(),
        [Down { id: sup.id(), reason: ExitReason::failed("restart intensity reached") }]
    );
    assert_eq!(shards[0].agents(), 1, "only the watcher is left");
    for id in last {
        assert_eq!(ping(&mut shards, id), None, "child {id} is gone");
    }
    assert_eq!(try_ask(&mut shards, sup, SupervisorMsg::Stats), None, "the supervisor is gone");
    assert_accounted(&shards);
}

#[test]
fn restarts_spread_beyond_the_period_do_not_escalate() {
    let log = Log::default();
    let mut shards = cluster(1);
    let period = Duration::from_millis(10);
    let spec = SupervisorSpec::new(Strategy::OneForOne).intensity(1, period).child(worker("a", &log));
    let sup = shards[0].spawn(Supervisor::new(spec)).unwrap();
    let downs = watch(&mut shards, sup.id());
    settle(&mut shards);
    log.take();

    for round in 1..=3u64 {
        if round > 1 {
            // Past the period: the previous restart no longer counts.
            std::thread::sleep(period + Duration::from_millis(2));
        }
        let a = running_ids(&mut shards, sup)[0];
        send(&mut shards, a, Job::Crash);
        settle(&mut shards);
        assert_eq!(log.take(), lines(&["start:a"]), "crash {round} is restarted");
    }
    assert!(downs.lock().unwrap().is_empty(), "{:?}", downs.lock().unwrap());
    let st = stats(&mut shards, sup);
    assert_eq!((st.running, st.restarts), (1, 3));
    assert_accounted(&shards);
}

#[test]
fn an_intensity_of_zero_gives_up_at_the_first_failure() {
    let log = Log::default();
    let mut shards = cluster(1);
    let spec = three(Strategy::OneForOne, &log).intensity(0, Duration::from_secs(1));
    let sup = shards[0].spawn(Supervisor::new(spec)).unwrap();
    let downs = watch(&mut shards, sup.id());
    settle(&mut shards);
    let ids = running_ids(&mut shards, sup);
    log.take();

    send(&mut shards, ids[0], Job::Fail);
    settle(&mut shards);

    assert_eq!(log.take(), lines(&["stop:a", "stop:c", "stop:b"]));
    assert_eq!(
        *downs.lock().unwrap(),
        [Down { id: sup.id(), reason: ExitReason::failed("restart intensity reached") }]
    );
    assert_eq!(shards[0].agents(), 1);
    assert_accounted(&shards);
}

#[test]
fn a_child_that_cannot_be_started_counts_against_the_intensity() {
    let log = Log::default();
    let mut shards = cluster(1);
    // Shard 7 does not exist: every start of "bad" fails. The backoff makes the retries wait,
    // so the supervisor outlives its own start.
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(2, Duration::from_secs(1))
        .backoff(Backoff { min: Duration::from_millis(10), max: Duration::from_millis(10), jitter: 0.0 })
        .child(worker("a", &log))
        .child(worker("bad", &log).placement(SpawnPlacement::Shard(7)));
    let spawned_at = Instant::now();
    let sup = shards[0].spawn(Supervisor::new(spec)).unwrap();
    let downs = watch(&mut shards, sup.id());
    settle(&mut shards);
    let st = stats(&mut shards, sup);
    if spawned_at.elapsed() < Duration::from_millis(10) {
        // The first retry waits for the backoff.
        assert_eq!((st.running, st.restarts, st.start_failures), (1, 1, 1));
    }

    let gone = settle_until(&mut shards, Duration::from_millis(45), |_| !downs.lock().unwrap().is_empty());
    assert!(gone, "the supervisor never gave up");
    assert_eq!(log.take(), lines(&["start:a", "stop:a"]));
    assert_eq!(
        *downs.lock().unwrap(),
        [Down { id: sup.id(), reason: ExitReason::failed("restart intensity reached") }]
    );
    assert_eq!(shards[0].agents(), 1);
    assert_accounted(&shards);
}

// ---------------------------------------------------------------------------------------------
// 7. Nesting
// ---------------------------------------------------------------------------------------------

#[test]
fn a_nested_supervisor_that_escalates_is_restarted_with_its_children() {
    let log = Log::default();
    let mut shards = cluster(1);
    let sub_spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(1, Duration::from_secs(1))
        .child(worker("w1", &log))
        .child(worker("w2", &log));
    let root_spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(10, Duration::from_secs(1))
        .child(ChildSpec::new("sub", move || Supervisor::new(sub_spec.clone())))
        .child(worker("r", &log));
    let root = shards[0].spawn(Supervisor::new(root_spec)).unwrap();
    settle(&mut shards);
    assert_eq!(log.take(), lines(&["start:w1", "start:w2", "start:r"]));
    let root_ids = running_ids(&mut shards, root);
    let sub = Addr::<SupervisorMsg>::from_id(root_ids[0]);
    let workers = running_ids(&mut shards, sub);

    // The first crash is within the sub-supervisor's intensity.
    send(&mut shards, workers[0], Job::Crash);
    settle(&mut shards);
    assert_eq!(log.take(), lines(&["start:w1"]));
    let w1 = running_ids(&mut shards, sub)[0];
    assert_eq!(stats(&mut shards, root).restarts, 0);

    // The second is not: the sub-supervisor stops w2 and fails; the root restarts it, and it
    // starts both workers again.
    send(&mut shards, w1, Job::Crash);
    settle(&mut shards);
    assert_eq!(log.take(), lines(&["stop:w2", "start:w1", "start:w2"]));

    let root_infos = children(&mut shards, root);
    let new_sub = root_infos[0].agent.expect("the sub-supervisor runs again");
    assert_ne!(new_sub, sub.id());
    assert_eq!(root_infos[0].restarts, 1);
    assert_eq!(root_infos[1].agent, Some(root_ids[1]), "the root's other child is untouched");
    assert_eq!(try_ask(&mut shards, sub, SupervisorMsg::Stats), None, "the old sub-supervisor is gone");

    let new_sub = Addr::<SupervisorMsg>::from_id(new_sub);
    let new_workers = running_ids(&mut shards, new_sub);
    for (i, &id) in new_workers.iter().enumerate() {
        assert!(!workers.contains(&id) && id != w1, "worker {i} is a new instance");
        assert_eq!(ping(&mut shards, id), Some(id));
    }
    assert_eq!(stats(&mut shards, new_sub), SupervisorStats { children: 2, running: 2, ..Default::default() });
    assert_eq!(shards[0].agents(), 5, "root, sub, w1, w2, r");
    assert_accounted(&shards);
}

// ---------------------------------------------------------------------------------------------
// 8. Backoff
// ---------------------------------------------------------------------------------------------

#[test]
fn backoff_delays_the_restart() {
    let log = Log::default();
    let mut shards = cluster(1);
    let min = Duration::from_millis(20);
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .backoff(Backoff { min, max: Duration::from_millis(100), jitter: 0.0 })
        .child(worker("a", &log));
    let sup = shards[0].spawn(Supervisor::new(spec)).unwrap();
    settle(&mut shards);
    let a = running_ids(&mut shards, sup)[0];
    log.take();

    let crashed_at = Instant::now();
    send(&mut shards, a, Job::Crash);
    settle(&mut shards);
    for _ in 0..10 {
        shards[0].pass();
    }
    if crashed_at.elapsed() < min {
        assert_eq!(log.take(), Vec::<String>::new(), "restarted before the backoff");
        let st = stats(&mut shards, sup);
        assert_eq!((st.children, st.running, st.restarts), (1, 0, 1), "counted, not yet running");
        assert_eq!(children(&mut shards, sup)[0].agent, None);
    }

    let restarted = settle_until(&mut shards, Duration::from_millis(45), |_| !log.0.lock().unwrap().is_empty());
    assert!(restarted, "not restarted after the backoff");
    assert!(crashed_at.elapsed() >= min, "restarted after {:?}", crashed_at.elapsed());
    assert_eq!(log.take(), lines(&["start:a"]));
    let again = running_ids(&mut shards, sup)[0];
    assert_ne!(again, a);
    assert_accounted(&shards);
}

#[test]
fn backoff_doubles_for_each_restart_within_the_period() {
    let log = Log::default();
    let mut shards = cluster(1);
    let min = Duration::from_millis(4);
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(5, Duration::from_secs(1))
        .backoff(Backoff { min, max: Duration::from_millis(100), jitter: 0.0 })
        .child(worker("a", &log));
    let sup = shards[0].spawn(Supervisor::new(spec)).unwrap();
    settle(&mut shards);
    log.take();

    for (round, wait) in [(1u32, min), (2, min * 2), (3, min * 4)] {
        let a = running_ids(&mut shards, sup)[0];
        let crashed_at = Instant::now();
        send(&mut shards, a, Job::Crash);
        let restarted = settle_until(&mut shards, Duration::from_millis(40), |_| !log.0.lock().unwrap().is_empty());
        assert!(restarted, "restart {round} never came");
        assert!(crashed_at.elapsed() >= wait, "restart {round} after {:?}, expected >= {wait:?}", crashed_at.elapsed());
        assert_eq!(log.take(), lines(&["start:a"]));
    }
    assert_eq!(stats(&mut shards, sup).restarts, 3);
    assert_accounted(&shards);
}

// ---------------------------------------------------------------------------------------------
// 9. Shutdown
// ---------------------------------------------------------------------------------------------

#[test]
fn shutdown_stops_children_in_reverse_then_exits_normally() {
    let log = Log::default();
    let mut shards = cluster(1);
    let sup = shards[0].spawn(Supervisor::new(three(Strategy::OneForOne, &log))).unwrap();
    let downs = watch(&mut shards, sup.id());
    settle(&mut shards);
    let ids = running_ids(&mut shards, sup);
    log.take();

    post(&mut shards[0], sup, SupervisorMsg::Shutdown);
    settle(&mut shards);

    assert_eq!(log.take(), lines(&["stop:c", "stop:b", "stop:a"]));
    assert_eq!(*downs.lock().unwrap(), [Down { id: sup.id(), reason: ExitReason::Normal }]);
    assert_eq!(shards[0].agents(), 1, "only the watcher is left");
    for id in ids {
        assert_eq!(ping(&mut shards, id), None);
    }
    assert_accounted(&shards);
}

#[test]
fn shutdown_moves_on_when_a_child_does_not_stop_within_its_timeout() {
    let log = Log::default();
    let mut shards = cluster(2);
    // Children on shard 1, which stands still during the shutdown: their stops cannot arrive.
    let timeout = Duration::from_millis(5);
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(worker("a", &log).placement(SpawnPlacement::Shard(1)).shutdown_timeout(timeout))
        .child(worker("b", &log).placement(SpawnPlacement::Shard(1)).shutdown_timeout(timeout));
    let sup = shards[0].spawn(Supervisor::new(spec)).unwrap();
    let downs = watch(&mut shards, sup.id());
    settle(&mut shards);
    assert_eq!(log.take(), lines(&["start:a", "start:b"]));
    let ids = running_ids(&mut shards, sup);

    let asked_at = Instant::now();
    post(&mut shards[0], sup, SupervisorMsg::Shutdown);
    settle_one(&mut shards[0]);
    // b's stop is on its way and its timeout armed; nothing stopped yet.
    let st = ask_on_shard_only(&mut shards, 0, sup, SupervisorMsg::Stats);
    assert_eq!((st.running, st.stop_timeouts), (1, 0), "{st:?}");

    // Shard 0 alone: b times out, then a (each after its timeout), then the supervisor exits.
    let mut waited = Duration::ZERO;
    while downs.lock().unwrap().is_empty() && waited < Duration::from_millis(40) {
        std::thread::sleep(Duration::from_millis(1));
        waited += Duration::from_millis(1);
        settle_one(&mut shards[0]);
    }
    assert_eq!(*downs.lock().unwrap(), [Down { id: sup.id(), reason: ExitReason::Normal }]);
    assert!(asked_at.elapsed() >= timeout * 2, "both timeouts elapsed: {:?}", asked_at.elapsed());
    assert_eq!(log.take(), Vec::<String>::new(), "shard 1 has not run");
    assert_eq!(shards[1].agents(), 2);

    // When shard 1 runs, both late stops take effect. (Their order is not checked: the shard
    // runs stops it received in one pass last-in first-out, see
    // `a_supervisor_stopped_from_outside_stops_its_children_in_reverse_order`.)
    settle(&mut shards);
    let mut stopped = log.take();
    stopped.sort();
    assert_eq!(stopped, lines(&["stop:a", "stop:b"]));
    assert_eq!(shards[1].agents(), 0);
    for id in ids {
        assert_eq!(ping(&mut shards, id), None);
    }
    assert_accounted(&shards);
}

#[test]
fn shutdown_counts_the_stop_timeouts_and_waits_for_the_next_child() {
    let log = Log::default();
    let mut shards = cluster(2);
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(worker("a", &log).placement(SpawnPlacement::Shard(1)))
        .child(worker("b", &log).placement(SpawnPlacement::Shard(1)).shutdown_timeout(Duration::from_millis(3)));
    let sup = shards[0].spawn(Supervisor::new(spec)).unwrap();
    let downs = watch(&mut shards, sup.id());
    settle(&mut shards);
    assert_eq!(log.take(), lines(&["start:a", "start:b"]));

    // Shard 1 stands still: b times out after 3 ms, then a's stop (default timeout) is pending.
    post(&mut shards[0], sup, SupervisorMsg::Shutdown);
    settle_one(&mut shards[0]);
    std::thread::sleep(Duration::from_millis(4));
    settle_one(&mut shards[0]);
    let st = ask_on_shard_only(&mut shards, 0, sup, SupervisorMsg::Stats);
    assert_eq!(st, SupervisorStats { children: 2, running: 0, restarts: 0, stop_timeouts: 1, start_failures: 0 });
    assert!(downs.lock().unwrap().is_empty(), "the supervisor waits for a");

    // Shard 1 runs: b's late exit is ignored, a's completes the shutdown (stops received in
    // one pass run last-in first-out: the order is not checked here).
    settle(&mut shards);
    let mut stopped = log.take();
    stopped.sort();
    assert_eq!(stopped, lines(&["stop:a", "stop:b"]));
    assert_eq!(*downs.lock().unwrap(), [Down { id: sup.id(), reason: ExitReason::Normal }]);
    assert_eq!((shards[0].agents(), shards[1].agents()), (1, 0));
    assert_accounted(&shards);
}

// ---------------------------------------------------------------------------------------------
// 10. Children on another shard
// ---------------------------------------------------------------------------------------------

#[test]
fn children_on_another_shard_start_in_order_and_restart_there() {
    let log = Log::default();
    let mut shards = cluster(2);
    let on1 = |label| worker(label, &log).placement(SpawnPlacement::Shard(1));
    let spec = SupervisorSpec::new(Strategy::OneForOne).child(on1("a")).child(on1("b")).child(on1("c"));
    let sup = shards[0].spawn(Supervisor::new(spec)).unwrap();
    settle(&mut shards);
    assert_eq!(log.take(), lines(&["start:a", "start:b", "start:c"]));
    let before = running_ids(&mut shards, sup);
    assert!(before.iter().all(|id| id.shard() == 1), "{before:?}");
    assert_eq!((shards[0].agents(), shards[1].agents()), (1, 3));

    send(&mut shards, before[1], Job::Crash);
    settle(&mut shards);

    assert_eq!(log.take(), lines(&["start:b"]));
    let after = running_ids(&mut shards, sup);
    assert_eq!((after[0], after[2]), (before[0], before[2]));
    assert_ne!(after[1], before[1]);
    assert_eq!(after[1].shard(), 1);
    assert_eq!(ping(&mut shards, after[1]), Some(after[1]));
    assert_eq!(ping(&mut shards, before[1]), None);
    assert_eq!(shards[1].stats().counters.panics, 1);
    assert_eq!(stats(&mut shards, sup).restarts, 1);
    assert_accounted(&shards);
}

#[test]
fn one_for_all_with_children_on_another_shard_keeps_the_order() {
    let log = Log::default();
    let mut shards = cluster(2);
    let on1 = |label| worker(label, &log).placement(SpawnPlacement::Shard(1));
    let spec = SupervisorSpec::new(Strategy::OneForAll).child(on1("a")).child(on1("b")).child(on1("c"));
    let sup = shards[0].spawn(Supervisor::new(spec)).unwrap();
    settle(&mut shards);
    let before = running_ids(&mut shards, sup);
    log.take();

    send(&mut shards, before[0], Job::Fail);
    settle(&mut shards);

    assert_eq!(log.take(), lines(&["stop:a", "stop:c", "stop:b", "start:a", "start:b", "start:c"]));
    let after = running_ids(&mut shards, sup);
    assert!(after.iter().all(|id| id.shard() == 1 && !before.contains(id)), "{after:?}");
    assert_eq!(shards[1].agents(), 3);
    assert_accounted(&shards);
}

// ---------------------------------------------------------------------------------------------
// 11. Named children
// ---------------------------------------------------------------------------------------------

/// A named child on `child_shard`, its name owned by `name_owner`, in a 2-shard cluster with the
/// supervisor on shard 0: the name follows the child across a restart.
fn named_child_follows_its_restarts(child_shard: usize, name_owner: usize) {
    let log = Log::default();
    let mut shards = cluster(2);
    let name = name_owned_by("worker-x", name_owner, 2);
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(worker("x", &log).name(name.as_str()).placement(SpawnPlacement::Shard(child_shard)));
    spec.validate().unwrap();
    let sup = shards[0].spawn(Supervisor::new(spec)).unwrap();
    settle(&mut shards);

    let infos = children(&mut shards, sup);
    assert_eq!(infos[0].name.as_deref(), Some(name.as_str()));
    let first = infos[0].agent.expect("running");
    assert_eq!(first.shard(), child_shard);
    assert_eq!(shards[name_owner].registry.lookup(&name), Some(first));
    assert_eq!(shards[1 - name_owner].registry.lookup(&name), None);

    send(&mut shards, first, Job::Crash);
    settle(&mut shards);
    let second = running_ids(&mut shards, sup)[0];
    assert_ne!(second, first);
    assert_eq!(second.shard(), child_shard);
    assert_eq!(shards[name_owner].registry.lookup(&name), Some(second), "the name maps to the new instance");

    // A clean failure too (the old instance's name removal races the new registration).
    send(&mut shards, second, Job::Fail);
    settle(&mut shards);
    let third = running_ids(&mut shards, sup)[0];
    assert_ne!(third, second);
    assert_eq!(shards[name_owner].registry.lookup(&name), Some(third));
    assert_eq!(shards[0].registry.len() + shards[1].registry.len(), 1);
    let st = stats(&mut shards, sup);
    assert_eq!((st.running, st.restarts, st.start_failures), (1, 2, 0));
    assert_eq!(log.take(), lines(&["start:x", "start:x", "stop:x", "start:x"]));

    // Shutting down removes the name.
    post(&mut shards[0], sup, SupervisorMsg::Shutdown);
    settle(&mut shards);
    assert_eq!(shards[name_owner].registry.lookup(&name), None);
    assert_eq!(shards[0].agents() + shards[1].agents(), 0);
    assert_accounted(&shards);
}

#[test]
fn named_child_here_with_its_name_owned_here() {
    named_child_follows_its_restarts(0, 0);
}

#[test]
fn named_child_here_with_its_name_owned_by_another_shard() {
    named_child_follows_its_restarts(0, 1);
}

#[test]
fn named_child_on_another_shard_that_owns_its_name() {
    named_child_follows_its_restarts(1, 1);
}

#[test]
fn named_child_on_another_shard_with_its_name_owned_by_the_supervisors_shard() {
    named_child_follows_its_restarts(1, 0);
}

#[test]
fn named_children_under_one_for_all_are_renamed_after_the_restart() {
    let log = Log::default();
    let mut shards = cluster(2);
    let n0 = name_owned_by("nx", 0, 2);
    let n1 = name_owned_by("ny", 1, 2);
    let spec = SupervisorSpec::new(Strategy::OneForAll)
        .child(worker("a", &log).name(n0.as_str()))
        .child(worker("b", &log).name(n1.as_str()).placement(SpawnPlacement::Shard(1)));
    let sup = shards[0].spawn(Supervisor::new(spec)).unwrap();
    settle(&mut shards);
    let before = running_ids(&mut shards, sup);
    assert_eq!(shards[0].registry.lookup(&n0), Some(before[0]));
    assert_eq!(shards[1].registry.lookup(&n1), Some(before[1]));

    send(&mut shards, before[0], Job::Crash);
    settle(&mut shards);

    let after = running_ids(&mut shards, sup);
    assert!(after[0] != before[0] && after[1] != before[1]);
    assert_eq!(shards[0].registry.lookup(&n0), Some(after[0]));
    assert_eq!(shards[1].registry.lookup(&n1), Some(after[1]));
    assert_eq!(log.take(), lines(&["start:a", "start:b", "stop:b", "start:a", "start:b"]));
    assert_eq!(stats(&mut shards, sup).start_failures, 0);
    assert_accounted(&shards);
}

#[test]
fn a_named_child_whose_name_is_taken_fails_to_start_until_the_supervisor_gives_up() {
    let log = Log::default();
    let mut shards = cluster(1);
    // Someone else holds the name.
    let squatter = shards[0].spawn(Stopper).unwrap();
    shards[0].registry.register("taken", squatter.id()).unwrap();
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(2, Duration::from_secs(1))
        .child(worker("a", &log))
        .child(worker("n", &log).name("taken"));
    let sup = shards[0].spawn(Supervisor::new(spec)).unwrap();
    let downs = watch(&mut shards, sup.id());
    settle(&mut shards);

    // Each instance of n is stopped for want of its name; the third failure escalates.
    assert_eq!(
        log.take(),
        lines(&["start:a", "start:n", "stop:n", "start:n", "stop:n", "start:n", "stop:n", "stop:a"])
    );
    assert_eq!(
        *downs.lock().unwrap(),
        [Down { id: sup.id(), reason: ExitReason::failed("restart intensity reached") }]
    );
    assert_eq!(shards[0].registry.lookup("taken"), Some(squatter.id()), "the holder keeps its name");
    assert_eq!(shards[0].agents(), 2, "the squatter and the watcher");
    assert_accounted(&shards);
}

// ---------------------------------------------------------------------------------------------
// 12. The parent's exit
// ---------------------------------------------------------------------------------------------

/// Spawns a supervisor linked to itself on start, then fails or quits when told.
struct Parent {
    spec: Option<SupervisorSpec>,
    sup: Arc<Mutex<Option<AgentId>>>,
}

enum ParentMsg {
    Fail,
    Crash,
    Quit,
}

impl Agent for Parent {
    type Msg = ParentMsg;

    fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        let spec = self.spec.take().unwrap();
        match ctx.spawn_linked_on(SpawnPlacement::Local, move || Supervisor::new(spec)) {
            Ok(Spawned::Here(addr)) => *self.sup.lock().unwrap() = Some(addr.id()),
            Ok(Spawned::Pending(_)) => panic!("a local spawn is never pending"),
            Err(e) => panic!("the supervisor could not be spawned: {e}"),
        }
    }

    fn handle(&mut self, msg: ParentMsg, ctx: &mut Ctx<'_>) {
        match msg {
            ParentMsg::Fail => ctx.fail("the parent failed"),
            ParentMsg::Crash => panic!("the parent crashed (expected in supervision tests)"),
            ParentMsg::Quit => ctx.stop_self(),
        }
    }
}

/// Spawns a parent that starts a supervisor of [a, b, c]; returns the parent, the supervisor
/// and the supervisor's watcher record.
fn parent_with_supervisor(
    shards: &mut [Shard],
    log: &Log,
) -> (Addr<ParentMsg>, Addr<SupervisorMsg>, Arc<Mutex<Vec<Down>>>) {
    let slot = Arc::new(Mutex::new(None));
    let parent = shards[0].spawn(Parent { spec: Some(three(Strategy::OneForOne, log)), sup: slot.clone() }).unwrap();
    let sup = Addr::<SupervisorMsg>::from_id(slot.lock().unwrap().expect("the parent spawned a supervisor"));
    let downs = watch(shards, sup.id());
    settle(shards);
    assert_eq!(log.take(), lines(&["start:a", "start:b", "start:c"]));
    (parent, sup, downs)
}

#[test]
fn a_parent_failure_shuts_the_supervisor_down_with_the_same_reason() {
    let log = Log::default();
    let mut shards = cluster(1);
    let (parent, sup, downs) = parent_with_supervisor(&mut shards, &log);
    let ids = running_ids(&mut shards, sup);

    post(&mut shards[0], parent, ParentMsg::Fail);
    settle(&mut shards);

    assert_eq!(log.take(), lines(&["stop:c", "stop:b", "stop:a"]));
    assert_eq!(*downs.lock().unwrap(), [Down { id: sup.id(), reason: ExitReason::failed("the parent failed") }]);
    assert_eq!(shards[0].agents(), 1, "only the watcher is left");
    for id in ids {
        assert_eq!(ping(&mut shards, id), None);
    }
    assert_accounted(&shards);
}

#[test]
fn a_parent_panic_shuts_the_supervisor_down_with_the_panic() {
    let log = Log::default();
    let mut shards = cluster(1);
    let (parent, sup, downs) = parent_with_supervisor(&mut shards, &log);

    post(&mut shards[0], parent, ParentMsg::Crash);
    settle(&mut shards);

    assert_eq!(log.take(), lines(&["stop:c", "stop:b", "stop:a"]));
    let downs = downs.lock().unwrap();
    assert_eq!(downs.len(), 1);
    assert_eq!(downs[0].id, sup.id());
    assert!(
        matches!(&downs[0].reason, ExitReason::Panicked(m) if m.contains("the parent crashed")),
        "{:?}",
        downs[0].reason
    );
    assert_eq!(shards[0].agents(), 1);
    assert_accounted(&shards);
}

#[test]
fn a_parent_normal_exit_leaves_the_supervisor_running() {
    let log = Log::default();
    let mut shards = cluster(1);
    let (parent, sup, downs) = parent_with_supervisor(&mut shards, &log);
    let ids = running_ids(&mut shards, sup);

    post(&mut shards[0], parent, ParentMsg::Quit);
    settle(&mut shards);

    assert_eq!(log.take(), Vec::<String>::new());
    assert!(downs.lock().unwrap().is_empty());
    assert_eq!(running_ids(&mut shards, sup), ids);
    assert_eq!(stats(&mut shards, sup).running, 3);
    assert_accounted(&shards);
}

#[test]
fn a_supervisor_stopped_from_outside_stops_all_its_children() {
    let log = Log::default();
    let mut shards = cluster(1);
    let sup = shards[0].spawn(Supervisor::new(three(Strategy::OneForOne, &log))).unwrap();
    let downs = watch(&mut shards, sup.id());
    settle(&mut shards);
    log.take();

    let stopper = shards[0].spawn(Stopper).unwrap();
    post(&mut shards[0], stopper, sup.id());
    settle(&mut shards);

    assert_eq!(*downs.lock().unwrap(), [Down { id: sup.id(), reason: ExitReason::Shutdown }]);
    let mut stopped = log.take();
    stopped.sort();
    assert_eq!(stopped, lines(&["stop:a", "stop:b", "stop:c"]));
    assert_eq!(shards[0].agents(), 2, "the watcher and the stopper");
    assert_accounted(&shards);
}

// ---------------------------------------------------------------------------------------------
// 13. Spec validation
// ---------------------------------------------------------------------------------------------

#[test]
fn validate_rejects_a_zero_period() {
    let spec = SupervisorSpec::new(Strategy::OneForOne).intensity(3, Duration::ZERO);
    assert_eq!(spec.validate(), Err(SpecError::ZeroPeriod));
    assert!(SupervisorSpec::new(Strategy::OneForOne).intensity(0, Duration::from_nanos(1)).validate().is_ok());
}

#[test]
fn validate_rejects_a_bad_backoff() {
    let ms = Duration::from_millis;
    let bad = [
        Backoff { min: ms(10), max: ms(5), jitter: 0.0 },
        Backoff { min: ms(1), max: ms(5), jitter: 1.5 },
        Backoff { min: ms(1), max: ms(5), jitter: -0.1 },
        Backoff { min: ms(1), max: ms(5), jitter: f64::NAN },
    ];
    for b in bad {
        match SupervisorSpec::new(Strategy::OneForOne).backoff(b).validate() {
            Err(SpecError::Backoff(got)) => assert!(got.min == b.min && got.max == b.max, "{got:?}"),
            other => panic!("{b:?} gave {other:?}"),
        }
    }
    for good in
        [Backoff { min: ms(5), max: ms(5), jitter: 0.0 }, Backoff { min: Duration::ZERO, max: ms(5), jitter: 1.0 }]
    {
        assert_eq!(SupervisorSpec::new(Strategy::OneForOne).backoff(good).validate(), Ok(()));
    }
}

#[test]
fn validate_rejects_invalid_child_names() {
    let log = Log::default();
    let spec = SupervisorSpec::new(Strategy::OneForOne).child(worker("a", &log)).child(worker("b", &log).name(""));
    assert_eq!(spec.validate(), Err(SpecError::Name { label: "b".into(), error: RegistryError::InvalidName }));
    let long = "x".repeat(crate::registry::MAX_NAME_BYTES + 1);
    let spec = SupervisorSpec::new(Strategy::OneForOne).child(worker("c", &log).name(long));
    assert_eq!(spec.validate(), Err(SpecError::Name { label: "c".into(), error: RegistryError::InvalidName }));
}

#[test]
fn validate_rejects_duplicate_child_names() {
    let log = Log::default();
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(worker("a", &log).name("same"))
        .child(worker("b", &log).name("other"))
        .child(worker("c", &log))
        .child(worker("d", &log).name("same"));
    assert_eq!(
        spec.validate(),
        Err(SpecError::DuplicateName { name: "same".into(), first: "a".into(), second: "d".into() })
    );
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(worker("a", &log).name("one"))
        .child(worker("b", &log).name("two"))
        .child(worker("c", &log));
    assert_eq!(spec.validate(), Ok(()));
    assert_eq!(spec.children().iter().map(ChildSpec::label).collect::<Vec<_>>(), ["a", "b", "c"]);
}

#[test]
fn an_invalid_spec_makes_the_supervisor_fail_at_start_without_children() {
    let log = Log::default();
    let mut shards = cluster(1);
    let spec = three(Strategy::OneForOne, &log).intensity(3, Duration::ZERO);
    let sup = shards[0].spawn(Supervisor::new(spec)).unwrap();
    settle(&mut shards);
    assert_eq!(log.take(), Vec::<String>::new(), "no child started");
    assert_eq!(shards[0].agents(), 0, "the supervisor stopped in its on_start");
    assert_eq!(try_ask(&mut shards, sup, SupervisorMsg::Stats), None);
    assert_accounted(&shards);
}

/// `Supervisor::on_stop` documents that the children still running are stopped "in reverse
/// order"; stopped from outside, the supervisor should stop c, then b, then a.
#[test]
fn a_supervisor_stopped_from_outside_stops_its_children_in_reverse_order() {
    let log = Log::default();
    let mut shards = cluster(1);
    let sup = shards[0].spawn(Supervisor::new(three(Strategy::OneForOne, &log))).unwrap();
    settle(&mut shards);
    log.take();

    let stopper = shards[0].spawn(Stopper).unwrap();
    post(&mut shards[0], stopper, sup.id());
    settle(&mut shards);

    assert_eq!(log.take(), lines(&["stop:c", "stop:b", "stop:a"]));
    assert_accounted(&shards);
}

/// `Supervisor::started` says "a child that cannot hold its name is stopped; its exit restarts
/// it": a start that fails for want of the name is a failed start, whatever the restart type.
#[test]
fn a_transient_named_child_whose_name_is_taken_is_restarted_like_a_failed_start() {
    let log = Log::default();
    let mut shards = cluster(1);
    let squatter = shards[0].spawn(Stopper).unwrap();
    shards[0].registry.register("taken", squatter.id()).unwrap();
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(2, Duration::from_secs(1))
        .child(worker("a", &log))
        .child(worker("n", &log).name("taken").restart(Restart::Transient));
    let sup = shards[0].spawn(Supervisor::new(spec)).unwrap();
    let downs = watch(&mut shards, sup.id());
    settle(&mut shards);

    assert_eq!(
        log.take(),
        lines(&["start:a", "start:n", "stop:n", "start:n", "stop:n", "start:n", "stop:n", "stop:a"])
    );
    assert_eq!(
        *downs.lock().unwrap(),
        [Down { id: sup.id(), reason: ExitReason::failed("restart intensity reached") }]
    );
    assert_accounted(&shards);
}

/// A shutdown asked for while a child's spawn on another shard is still pending: once the
/// child runs, it is stopped first (reverse order), before the children started before it.
#[test]
fn shutdown_during_a_pending_remote_start_still_stops_in_reverse_order() {
    let log = Log::default();
    let mut shards = cluster(2);
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(worker("a", &log))
        .child(worker("b", &log).placement(SpawnPlacement::Shard(1)));
    let sup = shards[0].spawn(Supervisor::new(spec)).unwrap();
    let downs = watch(&mut shards, sup.id());
    // b's spawn request is on its way to shard 1 when the shutdown arrives.
    post(&mut shards[0], sup, SupervisorMsg::Shutdown);
    settle_one(&mut shards[0]);
    assert_eq!(log.take(), lines(&["start:a"]));

    settle(&mut shards);

    assert_eq!(log.take(), lines(&["start:b", "stop:b", "stop:a"]));
    assert_eq!(*downs.lock().unwrap(), [Down { id: sup.id(), reason: ExitReason::Normal }]);
    assert_eq!(shards[0].agents() + shards[1].agents(), 1, "only the watcher is left");
    assert_accounted(&shards);
}

#[test]
fn backoff_under_one_for_all_stops_at_once_and_starts_after_the_delay() {
    let log = Log::default();
    let mut shards = cluster(1);
    let min = Duration::from_millis(15);
    let spec = three(Strategy::OneForAll, &log).backoff(Backoff { min, max: min, jitter: 0.0 });
    let sup = shards[0].spawn(Supervisor::new(spec)).unwrap();
    settle(&mut shards);
    let before = running_ids(&mut shards, sup);
    log.take();

    let crashed_at = Instant::now();
    send(&mut shards, before[1], Job::Crash);
    settle(&mut shards);
    if crashed_at.elapsed() < min {
        assert_eq!(log.take(), lines(&["stop:c", "stop:a"]), "the stops do not wait for the backoff");
        assert_eq!(stats(&mut shards, sup).running, 0);
    }

    let restarted = settle_until(&mut shards, Duration::from_millis(40), |_| log.0.lock().unwrap().len() >= 3);
    assert!(restarted, "not restarted after the backoff");
    assert!(crashed_at.elapsed() >= min, "restarted after {:?}", crashed_at.elapsed());
    assert_eq!(log.take(), lines(&["start:a", "start:b", "start:c"]));
    let after = running_ids(&mut shards, sup);
    assert!(after.iter().all(|id| !before.contains(id)), "{after:?}");
    assert_accounted(&shards);
}
