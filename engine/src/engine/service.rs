//! Shard services: code an embedder runs on every shard's thread beside the dispatcher.
//!
//! A network front end needs to live on the shard it feeds: its connection tasks run on the
//! shard's executor, and its bridge agents live in the shard's pools. A [`ShardService`] given
//! to `EngineBuilder::service` is started once per shard, on that shard's thread, inside its
//! executor, after the shard is built and before its first dispatcher pass. It spawns the
//! shard's own agents through [`ShardSetup::spawn`] (synchronously, with no `Send` bound, so
//! an agent may share `Rc` state with the executor's tasks) and its executor tasks (with
//! glommio, `glommio::spawn_local`). An error fails the engine's start, naming the shard.
//!
//! A service whose tasks hold work that must finish inside the executor (a write in flight on
//! io_uring) registers it with [`ShardSetup::on_stop`]: the shard awaits it after its
//! dispatcher halted and before its executor drops the remaining tasks.
//!
//! Invariant: a service never blocks in `start` (the dispatcher has not run yet, so nothing
//! the shard would answer can be waited for there).

use super::EngineHandle;
use crate::agent::{Addr, Agent, SpawnError};
use crate::shard::{ExecutorKind, Shard};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// Work a service leaves for its shard's stop (see [`ShardSetup::on_stop`]).
pub(crate) type StopHook = Pin<Box<dyn Future<Output = ()>>>;

/// The longest a shard waits for its services' stop work before it drops it (a hook that never
/// completes must not hang the engine's shutdown).
pub const STOP_HOOK_LIMIT: Duration = Duration::from_secs(10);

/// Work started on every shard's thread; see the module documentation.
pub trait ShardService: Send + Sync + 'static {
    /// Starts the service on one shard. Called on that shard's thread, inside its executor.
    fn start(&self, setup: &mut ShardSetup<'_>) -> Result<(), String>;
}

/// What a [`ShardService`] can do while its shard starts.
pub struct ShardSetup<'a> {
    pub(crate) shard: &'a mut Shard,
    pub(crate) executor: ExecutorKind,
    pub(crate) handle: EngineHandle,
}

impl ShardSetup<'_> {
    /// The shard's index.
    pub fn index(&self) -> usize {
        self.shard.index
    }

    /// How many shards the engine has.
    pub fn shards(&self) -> usize {
        self.shard.shared.shards
    }

    /// The executor the shard runs in (a glommio service may only spawn glommio tasks when it
    /// is [`ExecutorKind::Glommio`]).
    pub fn executor(&self) -> ExecutorKind {
        self.executor
    }

    /// Nanoseconds on the engine clock now (the clock `Ctx::now_ns` reads, shared by every
    /// shard).
    pub fn now_ns(&self) -> u64 {
        self.shard.shared.clock.now_ns()
    }

    /// A handle on the engine, for the service's tasks (sends from a task are host sends).
    pub fn handle(&self) -> EngineHandle {
        self.handle.clone()
    }

    /// Runs `work` when the shard stops: after its dispatcher halted (no agent runs again),
    /// inside its executor (its tasks and I/O still run), before the executor drops its tasks.
    /// The shard waits for every such future, up to [`STOP_HOOK_LIMIT`] in all, then drops
    /// what is left silently: a service that must report unfinished work bounds its own work
    /// below that limit.
    pub fn on_stop(&mut self, work: impl Future<Output = ()> + 'static) {
        self.shard.stop_hooks.push(Box::pin(work));
    }

    /// Spawns `agent` on this shard now.
    pub fn spawn<A: Agent>(&mut self, agent: A) -> Result<Addr<A::Msg>, SpawnError> {
        self.shard.spawn_here(agent, None).map(Addr::from_id)
    }

    /// Spawns `agent` on this shard now, with its own mailbox capacity.
    pub fn spawn_with_capacity<A: Agent>(&mut self, agent: A, capacity: u32) -> Result<Addr<A::Msg>, SpawnError> {
        self.shard.spawn_here(agent, Some(capacity)).map(Addr::from_id)
    }
}

/// The service an `EngineBuilder` carries (cloneable, printable).
#[derive(Clone)]
pub(crate) struct ServiceHook(pub(crate) Arc<dyn ShardService>);

impl fmt::Debug for ServiceHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ShardService")
    }
}
