//! Driving shards by hand: a set of shards wired into a mesh with no threads and no executor.
//!
//! `Shard::cluster(n, ..)` builds `n` shards on the calling thread. The caller runs
//! [`Shard::pass`] on each in any order it likes, which is exactly what a deterministic
//! simulator does (and what the dispatcher tests do). Nothing here sleeps or spawns threads.

use super::core::{Shard, ShardLimits};
use super::shared::{Clock, Shared};
use crate::agent::{Addr, Agent, SpawnError};
use crate::envelope::{Envelope, NO_SENDER};
use crate::mesh;
use crate::payload::Payload;
use crate::ring::RingError;
use std::sync::Arc;

/// One dispatch, as reported to [`Shard::trace_dispatches`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dispatch {
    /// The shard that ran it.
    pub shard: usize,
    /// The agent that got it.
    pub agent: crate::agent::AgentId,
    /// What it was: the agent's message type for a message (`type_name`), or `"answer"`,
    /// `"signal"`, `"undelivered"`.
    pub what: &'static str,
    /// The engine clock when it was dispatched (virtual time on a manual clock).
    pub now_ns: u64,
}

/// A host's ask made on a hand-driven shard ([`Shard::host_ask`]): polled, never waited on,
/// since the host and the shards share the driver's thread.
pub struct HostAsk<R> {
    cell: Arc<crate::ask::HostReply>,
    _reply: std::marker::PhantomData<fn() -> R>,
}

impl<R: 'static> HostAsk<R> {
    /// The answer if it came; `None` while pending (and after it was taken).
    pub fn try_take(&self) -> Option<Result<R, crate::ask::AskError>> {
        self.cell.try_take().map(|r| r.and_then(|p| p.take::<R>().map_err(|_| crate::ask::AskError::WrongReplyType)))
    }

    /// Gives up, as a host ask that times out does: an answer that comes later is a counted
    /// `late_reply` dead letter.
    pub fn abandon(&self) {
        self.cell.abandon();
    }
}

/// Where [`Shard::trace_dispatches`] reports.
pub type DispatchSink = Box<dyn FnMut(&Dispatch)>;

impl Shard {
    /// Reports every dispatch of this shard to `sink`, in order (`None` stops it): the raw
    /// trace a simulator hashes into its run's fingerprint.
    pub fn trace_dispatches(&mut self, sink: Option<DispatchSink>) {
        self.dispatch_trace = sink;
    }

    /// Builds `n` shards joined by a mesh of rings holding `ring_capacity` envelopes, to be
    /// driven by hand with [`Shard::pass`].
    pub fn cluster(n: usize, limits: ShardLimits, ring_capacity: usize) -> Result<Vec<Shard>, RingError> {
        Self::cluster_with_clock(n, limits, ring_capacity, Clock::new())
    }

    /// [`Shard::cluster`] reading time from `clock`: with [`Clock::manual`], virtual time that
    /// moves only when the driver advances it (timers, ask deadlines and every other engine
    /// deadline follow it; nothing sleeps).
    pub fn cluster_with_clock(
        n: usize,
        limits: ShardLimits,
        ring_capacity: usize,
        clock: Clock,
    ) -> Result<Vec<Shard>, RingError> {
        Self::cluster_traced(n, limits, ring_capacity, clock, crate::trace::TraceConfig::new())
    }

    /// [`Shard::cluster_with_clock`] tracing as `tracing` says (sampling, buffer, depth).
    pub fn cluster_traced(
        n: usize,
        limits: ShardLimits,
        ring_capacity: usize,
        clock: Clock,
        tracing: crate::trace::TraceConfig,
    ) -> Result<Vec<Shard>, RingError> {
        let links = mesh::build(n, ring_capacity)?;
        let shared = Arc::new(Shared::with_tracing(n, 1024, clock, tracing));
        Ok(links
            .into_iter()
            .enumerate()
            .map(|(i, l)| Shard::new(i, limits.clone(), shared.clone(), l.outbound, l.inbound))
            .collect())
    }

    /// Spawns `agent` on this shard (as a handler's `ctx.spawn` would).
    pub fn spawn<A: Agent>(&mut self, agent: A) -> Result<Addr<A::Msg>, SpawnError> {
        self.spawn_here(agent, None).map(Addr::from_id)
    }

    /// Queues `msg` for `to` as a host thread would: into the inject queue of this shard, which
    /// routes it on its next pass (this shard must own `to`, or the message is routed onward
    /// as from a host). Counted as a host send. Returns the message when the queue is full.
    pub fn inject<M: Send + 'static>(&mut self, to: Addr<M>, msg: M) -> Result<(), M> {
        let env = Envelope::user(to.id(), NO_SENDER, Payload::new(msg));
        match self.shared.injects[self.index].push(env) {
            Ok(()) => {
                self.shared.host_sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Ok(())
            }
            Err(env) => Err(env.payload.take::<M>().unwrap_or_else(|_| unreachable!("payload built from M"))),
        }
    }

    /// Asks `to` as a host thread would (through this shard's inject queue, counted as a host
    /// send), without blocking: poll the returned [`HostAsk`]. Gives the request back when the
    /// inject queue is full.
    pub fn host_ask<M: Send + 'static, R: Send + 'static>(
        &mut self,
        to: Addr<M>,
        make: impl FnOnce(crate::ask::ReplyTo<R>) -> M,
    ) -> Result<HostAsk<R>, M> {
        let cell = Arc::new(crate::ask::HostReply::default());
        let msg = make(crate::ask::ReplyTo::new(crate::ask::ReplyTarget::Host(cell.clone()), true));
        self.inject(to, msg)?;
        Ok(HostAsk { cell, _reply: std::marker::PhantomData })
    }

    /// Counted messages host threads (or `inject`) handed to this engine.
    pub fn host_sent(&self) -> u64 {
        self.shared.host_sent.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The engine-clock time of this shard's earliest deadline (an open ask's or a timer's), if
    /// any: where a driver with a manual clock jumps to when no shard has anything else to do.
    pub fn next_deadline(&mut self) -> Option<u64> {
        match (self.asks.next_open_deadline(), self.timers.next_due()) {
            (Some(a), Some(t)) => Some(a.min(t)),
            (a, t) => a.or(t),
        }
    }

    /// Stops agent `id` of this shard with `reason`, between passes (as a failure would);
    /// returns whether it was alive. Its links and watchers hear of it as of any other end.
    pub fn stop_agent(&mut self, id: crate::agent::AgentId, reason: crate::agent::ExitReason) -> bool {
        if id.shard() != self.index || !self.slots.is_live(id.slot(), id.generation()) {
            return false;
        }
        crate::agent::run_agent_stop(self, id, reason);
        true
    }

    /// Holds (or releases) the end-of-pass publication of what this shard's passes send to
    /// other shards: held, batches stay staged, invisible to their receivers, until a pass runs
    /// released (a batch that fills is published anyway). For a simulator's delayed-visibility
    /// fault.
    pub fn hold_outbound(&mut self, hold: bool) {
        self.hold_outbound = hold;
    }

    /// Sets how many envelopes a pass takes from each ring and from the inject queue (at least
    /// one): a simulator varies it from pass to pass to vary the interleavings.
    pub fn set_batch(&mut self, batch: usize) {
        self.limits.batch = batch.max(1);
    }

    /// Queued messages over every mailbox of this shard.
    pub fn queued(&self) -> usize {
        self.store.in_use()
    }
}
