//! A shard thread that dies before halting marks its shard halted, so shutdown cannot hang.
//!
//! Agents' hooks run inside `catch_unwind`, but a shard thread also runs code with no guard: its
//! service's executor tasks, the executor itself, and the engine's own code. A panic there ends
//! the thread. Its peers would then wait forever in `Shard::halt` for its `halted` flag, and
//! the host forever in `Engine::shutdown`.
//!
//! So a shard thread [`arm`]s a guard once its shard is built and [`disarm`]s it once the shard
//! halted. The guard is a thread-local: its destructor runs when the thread exits, however it
//! exits (a glommio executor whose task panicked unwinds without dropping its other tasks, so
//! a guard held by the shard's own future would never run). Still armed then, it sets the
//! shard's `halted` flag (the peers finish halting) and its `panicked` flag (shutdown stops
//! waiting for the engine to drain); the join then reports `EngineError::ShardPanicked`.
//!
//! While armed, the guard also tells which shard this thread runs ([`running_shard`]): a
//! blocking `EngineHandle` call made from inside a handler would freeze that shard, so the
//! handle refuses it.

use crate::shard::shared::Shared;
use std::cell::RefCell;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The armed guard of the shard this thread runs; marks it halted and panicked when dropped.
struct ShardExitGuard {
    /// `None` once disarmed.
    shared: Option<Arc<Shared>>,
    index: usize,
}

impl Drop for ShardExitGuard {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            let progress = &shared.progress[self.index];
            progress.panicked.store(true, Ordering::Release);
            progress.halted.store(true, Ordering::Release);
        }
    }
}

thread_local! {
    static GUARD: RefCell<Option<ShardExitGuard>> = const { RefCell::new(None) };
}

/// Arms the guard for shard `index` on this thread (see the module documentation).
pub(super) fn arm(shared: &Arc<Shared>, index: usize) {
    GUARD.with(|g| *g.borrow_mut() = Some(ShardExitGuard { shared: Some(shared.clone()), index }));
}

/// The shard this thread runs, while its guard is armed (from the shard's start to its halt);
/// `None` on every other thread. Blocking host calls use it to refuse to freeze a shard.
pub(crate) fn running_shard() -> Option<usize> {
    GUARD
        .try_with(|g| g.try_borrow().ok().and_then(|g| g.as_ref().filter(|g| g.shared.is_some()).map(|g| g.index)))
        .ok()
        .flatten()
}

/// Disarms this thread's guard: the shard halted normally.
pub(super) fn disarm() {
    let guard = GUARD.with(|g| g.borrow_mut().take());
    if let Some(mut guard) = guard {
        guard.shared = None;
    }
}
