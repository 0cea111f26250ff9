//! Supervisor tests, on shards driven pass by pass: this module holds the shared harness
//! (settling, asks, a logging `Worker`, a `Watcher`, a `Stopper`, spec builders); one
//! submodule per topic holds the tests.

mod intensity;
mod names;
mod other_shard;
mod parent;
mod restart_backoff;
mod restart_types;
mod shutdown;
mod strategies;
mod validation;

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
