//! `EngineHandle`: how host threads talk to the engine.
//!
//! A handle is `Clone + Send + Sync`. Every request goes into the target shard's bounded inject
//! queue (crossbeam's `ArrayQueue`) and rings the shard's doorbell if it sleeps. A full queue
//! hands the message back (`SendError::Full`). Host threads may block (`ask`, `spawn`, `stats`
//! wait on a one-shot reply cell); shards never do.

use super::error::EngineError;
use crate::agent::{Addr, Agent, AgentId, SendError, SpawnError, SpawnPlacement};
use crate::ask::{deadline_after, AskError, HostReply, ReplyTarget, ReplyTo};
use crate::envelope::{Envelope, NO_SENDER};
use crate::metrics::{DeadLetter, EngineStats, ShardStats};
use crate::payload::Payload;
use crate::registry::{owner_of, validate_name, RegistryError};
use crate::shard::shared::Shared;
use crate::shard::SystemOp;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long host requests to the engine itself (spawn, registry, stats) wait for an answer.
pub const HOST_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A host thread's handle on a running engine; see the module documentation.
#[derive(Clone)]
pub struct EngineHandle {
    pub(crate) shared: Arc<Shared>,
}

/// One host send in this many (per host thread) is sampled for the routing-latency histogram.
const HOST_SAMPLE_EVERY: u32 = 64;

pub(super) enum InjectError {
    Full,
    ShuttingDown,
}

impl EngineHandle {
    /// Number of shards.
    pub fn shards(&self) -> usize {
        self.shared.shards
    }

    /// Nanoseconds on the engine clock: the clock agents read with `Ctx::now_ns`, so work
    /// done outside an agent (a connection task on a shard) can share the agents' deadlines.
    pub fn now_ns(&self) -> u64 {
        self.shared.clock.now_ns()
    }

    // The refused envelope comes back by value (one cache line plus the reason): boxing it
    // would allocate on the very path that reports a full queue.
    #[allow(clippy::result_large_err)]
    fn inject(&self, shard: usize, env: Envelope) -> Result<(), (Envelope, InjectError)> {
        let result = self.inject_quiet(shard, env);
        if result.is_ok() {
            self.shared.doorbells[shard].ring();
        }
        result
    }

    /// `inject` without ringing the shard's doorbell: the caller rings it (once for a batch)
    /// before it waits and when it is done.
    #[allow(clippy::result_large_err)]
    pub(super) fn inject_quiet(&self, shard: usize, env: Envelope) -> Result<(), (Envelope, InjectError)> {
        // Sampling off costs a host send one relaxed load and one test.
        if !cfg!(feature = "untraced") && self.shared.trace.threshold() != 0 {
            return self.inject_sampled(shard, env);
        }
        self.inject_plain(shard, env)
    }

    /// `inject_quiet` while sampling is on: a user message may start a trace (its root span is
    /// its dispatch); a refused one is unwrapped before it goes back.
    #[cold]
    #[allow(clippy::result_large_err)]
    fn inject_sampled(&self, shard: usize, env: Envelope) -> Result<(), (Envelope, InjectError)> {
        let env = crate::trace::shard::host_outgoing(&self.shared, env);
        self.inject_plain(shard, env).map_err(|(env, why)| (crate::trace::shard::discard(env), why))
    }

    #[allow(clippy::result_large_err)]
    fn inject_plain(&self, shard: usize, mut env: Envelope) -> Result<(), (Envelope, InjectError)> {
        // One host send in HOST_SAMPLE_EVERY (per thread) carries its send time, so the
        // routing-latency histogram also covers what hosts send (a server's connections).
        thread_local! {
            static TICK: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
        }
        if env.kind == crate::envelope::Kind::User {
            let tick = TICK.with(|t| {
                let n = t.get().wrapping_add(1);
                t.set(n);
                n
            });
            if tick % HOST_SAMPLE_EVERY == 0 {
                env.set_sent_ns(self.shared.clock.now_ns());
            }
        }
        self.shared.host_in_flight.fetch_add(1, Ordering::SeqCst);
        let result = if !self.shared.accepting.load(Ordering::SeqCst) {
            Err((env, InjectError::ShuttingDown))
        } else {
            match self.shared.injects[shard].push(env) {
                Ok(()) => Ok(()),
                Err(env) => Err((env, InjectError::Full)),
            }
        };
        self.shared.host_in_flight.fetch_sub(1, Ordering::SeqCst);
        result
    }

    /// Rings shard `shard`'s doorbell (wakes it if it sleeps).
    pub(super) fn ring(&self, shard: usize) {
        self.shared.doorbells[shard].ring();
    }

    /// Sends `msg` to `to` from a host thread.
    pub fn send<M: Send + 'static>(&self, to: Addr<M>, msg: M) -> Result<(), SendError<M>> {
        let shard = to.shard();
        let mut env = Envelope::user(to.id(), NO_SENDER, Payload::new(msg));
        if shard >= self.shared.shards {
            // Routed to a shard that does not exist: counted like any undeliverable message.
            env.to = AgentId::new(0, u32::MAX, 0).to_bits();
            return self.send_envelope(0, env);
        }
        self.send_envelope(shard, env)
    }

    /// Sends `msg` to `to` from a host thread, waiting up to `timeout` for room when the target
    /// shard's inject queue is full (`mesh.inject_capacity` envelopes per shard, 4,096 by
    /// default): the backpressure a host that sends in a loop needs, where [`send`](Self::send)
    /// hands the message back at once. It retries without allocating (spinning briefly, then
    /// yielding the thread) and counts one refusal only if the time runs out.
    ///
    /// On a shard's own thread (inside a handler) it does not wait: waiting there could wait
    /// for the very shard that is blocked; it behaves as `send`.
    ///
    /// # Errors
    ///
    /// [`SendError::Full`] with the message when there was still no room after `timeout`,
    /// [`SendError::ShuttingDown`] when the engine stops accepting.
    // The refused envelope comes back by value, as in `inject`.
    #[allow(clippy::result_large_err)]
    pub fn send_timeout<M: Send + 'static>(&self, to: Addr<M>, msg: M, timeout: Duration) -> Result<(), SendError<M>> {
        let shard = to.shard();
        if shard >= self.shared.shards || super::unwind::running_shard().is_some() {
            return self.send(to, msg);
        }
        let env = Envelope::user(to.id(), NO_SENDER, Payload::new(msg));
        let result = self.inject_waiting(shard, env, timeout, |h, shard, env| h.inject(shard, env));
        self.settle_send(result)
    }

    /// Pushes `env` into `shard`'s inject queue with `push`, retrying while the queue is full
    /// until `timeout` has passed: spinning briefly, then yielding the thread. Never allocates.
    #[allow(clippy::result_large_err)]
    pub(super) fn inject_waiting(
        &self,
        shard: usize,
        mut env: Envelope,
        timeout: Duration,
        mut push: impl FnMut(&Self, usize, Envelope) -> Result<(), (Envelope, InjectError)>,
    ) -> Result<(), (Envelope, InjectError)> {
        let mut deadline = None;
        let mut attempts = 0u32;
        loop {
            match push(self, shard, env) {
                Err((back, InjectError::Full))
                    if Instant::now() < *deadline.get_or_insert_with(|| Instant::now() + timeout) =>
                {
                    env = back;
                    attempts = attempts.saturating_add(1);
                    if attempts < 64 {
                        std::hint::spin_loop();
                    } else {
                        std::thread::yield_now();
                    }
                }
                result => return result,
            }
        }
    }

    fn send_envelope<M: 'static>(&self, shard: usize, env: Envelope) -> Result<(), SendError<M>> {
        let result = self.inject(shard, env);
        self.settle_send(result)
    }

    /// Counts a host send's outcome and hands a refused message back as its own type.
    #[allow(clippy::result_large_err)]
    pub(super) fn settle_send<M: 'static>(
        &self,
        result: Result<(), (Envelope, InjectError)>,
    ) -> Result<(), SendError<M>> {
        match result {
            Ok(()) => {
                self.shared.host_sent.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err((env, why)) => {
                let msg = env.payload.take::<M>().unwrap_or_else(|_| unreachable!("payload built from M"));
                match why {
                    InjectError::Full => {
                        self.shared.host_rejected_full.fetch_add(1, Ordering::Relaxed);
                        Err(SendError::Full(msg))
                    }
                    InjectError::ShuttingDown => Err(SendError::ShuttingDown(msg)),
                }
            }
        }
    }

    /// Asks `to` and blocks for the answer, at most `timeout`. The request carries the
    /// deadline: still queued when it passes, it is dropped and counted as expired.
    pub fn ask<M: Send + 'static, R: Send + 'static>(
        &self,
        to: Addr<M>,
        timeout: Duration,
        make: impl FnOnce(ReplyTo<R>) -> M,
    ) -> Result<R, AskError> {
        refuse_on_shard_thread("ask").map_err(AskError::BlockingOnShard)?;
        let cell = Arc::new(HostReply::default());
        let msg = make(ReplyTo::new(ReplyTarget::Host(cell.clone()), true));
        let started = Instant::now();
        let mut env = Envelope::user(to.id(), NO_SENDER, Payload::new(msg));
        let now = self.shared.clock.now_ns();
        env.set_deadline_ns(deadline_after(now, timeout), now);
        let shard = to.shard().min(self.shared.shards - 1);
        match self.send_envelope::<M>(shard, env) {
            Ok(()) => {}
            Err(SendError::Full(_)) => return Err(AskError::Overloaded(shard)),
            // A host ask holds no reply slot: only the first two can happen.
            Err(SendError::ShuttingDown(_) | SendError::TooManyAsks(_)) => return Err(AskError::ShuttingDown),
        }
        let payload = cell.wait(started + timeout)?;
        payload.take::<R>().map_err(|_| AskError::WrongReplyType)
    }

    /// Queues an engine operation for `shard`, waiting for room in its inject queue until
    /// `deadline` (engine operations are not dropped for backpressure).
    pub(super) fn inject_system(&self, shard: usize, op: SystemOp, deadline: Instant) -> Result<(), EngineError> {
        let mut env = Envelope::system(Payload::new(op));
        loop {
            match self.inject(shard, env) {
                Ok(()) => return Ok(()),
                Err((_, InjectError::ShuttingDown)) => return Err(EngineError::ShuttingDown),
                Err((back, InjectError::Full)) => {
                    if Instant::now() >= deadline {
                        return Err(EngineError::Overloaded(shard));
                    }
                    env = back;
                    std::thread::yield_now();
                }
            }
        }
    }

    /// Sends an engine operation to `shard` and waits for its answer.
    fn request<R: Send + 'static>(
        &self,
        shard: usize,
        make: impl FnOnce(ReplyTo<R>) -> SystemOp,
    ) -> Result<R, EngineError> {
        self.request_within(shard, HOST_REQUEST_TIMEOUT, make)
    }

    /// [`request`](Self::request), waiting at most `timeout`.
    fn request_within<R: Send + 'static>(
        &self,
        shard: usize,
        timeout: Duration,
        make: impl FnOnce(ReplyTo<R>) -> SystemOp,
    ) -> Result<R, EngineError> {
        refuse_on_shard_thread("request").map_err(EngineError::BlockingOnShard)?;
        let cell = Arc::new(HostReply::default());
        let op = make(ReplyTo::new(ReplyTarget::Host(cell.clone()), false));
        let deadline = Instant::now() + timeout;
        self.inject_system(shard, op, deadline)?;
        let payload = cell.wait(deadline).map_err(|_| EngineError::Timeout(shard))?;
        payload.take::<R>().map_err(|_| EngineError::Timeout(shard))
    }

    /// Spawns the agent `factory` builds where and how `options` say (a [`SpawnPlacement`] or
    /// a [`SpawnOptions`](crate::agent::SpawnOptions); `Local` means shard 0) and returns its
    /// address. One round trip to the shard; for many agents use
    /// [`spawn_batch`](Self::spawn_batch).
    pub fn spawn<A, F>(
        &self,
        options: impl Into<crate::agent::SpawnOptions>,
        factory: F,
    ) -> Result<Addr<A::Msg>, SpawnError>
    where
        A: Agent,
        F: FnOnce() -> A + Send + 'static,
    {
        let options = options.into();
        self.spawn_within(options.placement, options.mailbox_capacity, HOST_REQUEST_TIMEOUT, factory)
    }

    /// [`spawn`](Self::spawn), waiting at most `timeout` for the shard's answer.
    pub(crate) fn spawn_within<A, F>(
        &self,
        placement: SpawnPlacement,
        mailbox_capacity: Option<u32>,
        timeout: Duration,
        factory: F,
    ) -> Result<Addr<A::Msg>, SpawnError>
    where
        A: Agent,
        F: FnOnce() -> A + Send + 'static,
    {
        let shards = self.shared.shards;
        let shard = match placement {
            SpawnPlacement::Local => 0,
            SpawnPlacement::Shard(s) if s < shards => s,
            SpawnPlacement::Shard(shard) => return Err(SpawnError::NoSuchShard { shard, shards }),
            SpawnPlacement::RoundRobin => self.shared.host_rr.fetch_add(1, Ordering::Relaxed) % shards,
            SpawnPlacement::LeastLoaded => self.shared.least_loaded(),
        };
        let build: crate::shard::SpawnFn =
            Box::new(move |s: &mut crate::shard::Shard| s.spawn_here(factory(), mailbox_capacity));
        let result = self.request_within(shard, timeout, |reply| SystemOp::Spawn(build, reply));
        match result {
            Ok(r) => r.map(Addr::from_id),
            Err(EngineError::ShuttingDown) => Err(SpawnError::ShuttingDown),
            Err(EngineError::Timeout(shard)) => Err(SpawnError::Timeout(shard)),
            Err(EngineError::BlockingOnShard(shard)) => Err(SpawnError::BlockingOnShard(shard)),
            Err(_) => Err(SpawnError::Overloaded(shard)),
        }
    }

    /// Stops agent `id` (asynchronously; stopping an agent that is gone does nothing). Waits for
    /// room in the shard's inject queue if it is full, up to [`HOST_REQUEST_TIMEOUT`].
    ///
    /// The stop takes effect in order: once it returned `Ok`, nothing this thread sends to `id`
    /// reaches the stopped instance: such a message, like what was still queued for it, is a
    /// `stopped` dead letter (`stale_generation` once the slot holds a newer agent).
    pub fn stop(&self, id: AgentId) -> Result<(), EngineError> {
        let shard = id.shard();
        if shard >= self.shared.shards {
            return Ok(());
        }
        self.inject_system(
            shard,
            SystemOp::Stop(id, crate::agent::ExitReason::Shutdown),
            Instant::now() + HOST_REQUEST_TIMEOUT,
        )
    }

    /// Registers `name` for agent `id`. The agent's shard remembers the name, so it is removed
    /// when the agent stops.
    pub fn register(&self, name: &str, id: AgentId) -> Result<(), RegistryError> {
        validate_name(name)?;
        if id.shard() >= self.shared.shards {
            return Err(RegistryError::NoSuchAgent(id));
        }
        let name: Box<str> = name.into();
        self.request(id.shard(), |reply| SystemOp::BindName { name, id, replace: None, reply })
            .map_err(|e| RegistryError::Unreachable(e.to_string()))?
    }

    /// Resolves `name` on its owning shard.
    pub fn lookup(&self, name: &str) -> Result<Option<AgentId>, EngineError> {
        let owner = owner_of(name, self.shared.shards);
        let name: Box<str> = name.into();
        self.request(owner, |reply| SystemOp::Lookup { name, reply })
    }

    /// Removes `name`; returns whether it was registered.
    pub fn unregister(&self, name: &str) -> Result<bool, EngineError> {
        let owner = owner_of(name, self.shared.shards);
        let name: Box<str> = name.into();
        self.request(owner, |reply| SystemOp::Unregister { name, expected: None, reply: Some(reply) })
    }

    /// Sends a sampled stream of dead letters to `subscriber`: every shard reports one in
    /// every `sample_every` (at least 1) counted dead letters it sees, as a [`DeadLetter`]
    /// (control lane, not counted). Replaces an earlier subscription.
    pub fn subscribe_dead_letters(&self, subscriber: Addr<DeadLetter>, sample_every: u32) -> Result<(), EngineError> {
        for shard in 0..self.shared.shards {
            self.request(shard, |reply| SystemOp::DeadLetterSink(Some((subscriber.id(), sample_every)), reply))?;
        }
        Ok(())
    }

    /// Ends the dead-letter subscription.
    pub fn unsubscribe_dead_letters(&self) -> Result<(), EngineError> {
        for shard in 0..self.shared.shards {
            self.request(shard, |reply| SystemOp::DeadLetterSink(None, reply))?;
        }
        Ok(())
    }

    /// Waits, at most `timeout`, until the engine is quiescent (nothing queued, in a ring, on
    /// a timer or waiting for an answer, and two snapshots in a row agree), and returns that
    /// snapshot: the one on which the accounting invariant, [`EngineStats::accounted`], must
    /// hold. Only meaningful once the host stopped sending.
    pub fn quiescent_stats(&self, timeout: Duration) -> Result<EngineStats, EngineError> {
        let deadline = Instant::now() + timeout;
        // Only the message counts must agree: passes and parks go on while idle.
        type Moved = (u64, u64, [u64; crate::metrics::REASONS]);
        let mut previous: Option<Moved> = None;
        loop {
            let stats = self.stats()?;
            let injects_empty = self.shared.injects.iter().all(|q| q.is_empty());
            let t = stats.totals();
            let totals = (t.sent, t.delivered, t.dead_letters);
            if stats.quiescent() && injects_empty && previous == Some(totals) {
                return Ok(stats);
            }
            if Instant::now() >= deadline {
                let mut what = stats.accounting_line();
                for s in &stats.shards {
                    what.push_str(&format!(
                        "; shard {}: queued={} timers={} pending_asks={} pushed={} popped={}",
                        s.shard, s.queued, s.timers, s.pending_asks, s.ring_pushed, s.ring_popped
                    ));
                }
                return Err(EngineError::NotQuiescent(what));
            }
            previous = Some(totals);
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// The engine's tracing: change sampling, drain recorded spans (see [`crate::trace`]).
    pub fn tracing(&self) -> crate::trace::TraceHandle {
        crate::trace::TraceHandle { shared: self.shared.trace.clone() }
    }

    /// Gathers every shard's figures (each shard answers over its inject queue).
    pub fn stats(&self) -> Result<EngineStats, EngineError> {
        let mut shards: Vec<ShardStats> = Vec::with_capacity(self.shared.shards);
        for shard in 0..self.shared.shards {
            shards.push(self.request(shard, SystemOp::Stats)?);
        }
        Ok(EngineStats {
            shards,
            host_sent: self.shared.host_sent.load(Ordering::Relaxed),
            host_rejected_full: self.shared.host_rejected_full.load(Ordering::Relaxed),
        })
    }
}

/// Refuses a blocking call made on a shard's own thread (from inside a handler), which would
/// freeze that shard until the call's timeout: returns the shard, or panics in debug builds, as
/// tokio's `block_on` does inside a runtime.
pub(super) fn refuse_on_shard_thread(call: &str) -> Result<(), usize> {
    let Some(shard) = super::unwind::running_shard() else { return Ok(()) };
    debug_assert!(
        false,
        "EngineHandle::{call} called on shard {shard}'s own thread: it would block the shard until its \
         timeout; inside an agent use the Ctx calls (Ctx::ask, Ctx::spawn, ...), which do not block"
    );
    Err(shard)
}

#[cfg(test)]
#[path = "handle_tests.rs"]
mod tests;
