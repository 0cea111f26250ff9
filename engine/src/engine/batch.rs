//! Host batches: many sends with one doorbell per shard, and many spawns with one round trip
//! per chunk instead of one per agent.
//!
//! A host that sends a million messages in a loop meets a full inject queue (`mesh.inject_capacity`
//! envelopes per shard, 4,096 by default) thousands of times, and a host that spawns a million
//! agents one by one waits for a million round trips. [`EngineHandle::send_batch`] waits for
//! room instead of failing (like `send_timeout`) and rings each shard's doorbell once per batch
//! (or before it waits); [`EngineHandle::spawn_batch`] sends each shard chunks of
//! [`SPAWN_CHUNK`] spawns, all chunks before waiting for any answer, so the shards build in
//! parallel.
//!
//! Invariants: nothing is lost silently: a batch that stops early says how far it got and hands
//! back the message it could not send, or the addresses of the agents it did spawn; every
//! shard a batch queued something for has its doorbell rung before the call returns or waits.

use super::handle::refuse_on_shard_thread;
use super::{EngineHandle, HOST_REQUEST_TIMEOUT};
use crate::agent::{Addr, Agent, AgentId, SendError, SpawnError, SpawnOptions, SpawnPlacement};
use crate::ask::{HostReply, ReplyTarget, ReplyTo};
use crate::envelope::{Envelope, NO_SENDER};
use crate::payload::Payload;
use crate::shard::{Shard, SystemOp};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Spawns per request of [`EngineHandle::spawn_batch`]: large enough that the round trip is
/// paid once per thousand agents, small enough that one request does not hold its shard for
/// long (about a millisecond of spawning).
pub const SPAWN_CHUNK: usize = 1024;

/// A [`EngineHandle::send_batch`] that stopped early.
pub struct SendBatchError<M> {
    /// Messages sent before the one refused.
    pub sent: usize,
    /// Why it was refused, with the message. The messages after it were not taken from the
    /// iterator (pass `iter.by_ref()` to keep them).
    pub error: SendError<M>,
}

impl<M> std::fmt::Display for SendBatchError<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the batch stopped after {} messages: {}", self.sent, self.error)
    }
}

impl<M> std::fmt::Debug for SendBatchError<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendBatchError").field("sent", &self.sent).field("error", &self.error).finish()
    }
}

impl<M> std::error::Error for SendBatchError<M> {}

/// A [`EngineHandle::spawn_batch`] that did not spawn every agent.
pub struct SpawnBatchError<M> {
    /// The agents that were spawned (they run; stop them if the batch is abandoned), in the
    /// order of their indices.
    pub spawned: Vec<Addr<M>>,
    /// Why the others were not (the first failure).
    pub error: SpawnError,
}

impl<M> std::fmt::Display for SpawnBatchError<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} agents were spawned before: {}", self.spawned.len(), self.error)
    }
}

impl<M> std::fmt::Debug for SpawnBatchError<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpawnBatchError").field("spawned", &self.spawned.len()).field("error", &self.error).finish()
    }
}

impl<M> std::error::Error for SpawnBatchError<M> {}

/// What one chunk spawned, and the failure that ended it early, if any.
pub(crate) type ChunkSpawned = (Vec<AgentId>, Option<SpawnError>);

impl EngineHandle {
    /// Sends every `(to, msg)` of `messages` in order from a host thread, waiting up to
    /// `timeout` for room each time a shard's inject queue is full, and ringing each shard's
    /// doorbell once (not once per message). Returns how many were sent.
    ///
    /// # Errors
    ///
    /// Stops at the first message still refused after `timeout` (or when the engine stops
    /// accepting), and hands it back in [`SendBatchError`] with the count sent before it.
    pub fn send_batch<M, I>(&self, messages: I, timeout: Duration) -> Result<usize, SendBatchError<M>>
    where
        M: Send + 'static,
        I: IntoIterator<Item = (Addr<M>, M)>,
    {
        let shards = self.shards();
        let mut to_ring = vec![false; shards];
        let mut sent = 0;
        let mut outcome = Ok(());
        for (to, msg) in messages {
            if to.shard() >= shards || super::unwind::running_shard().is_some() {
                // Counted as undeliverable, or (on a shard's own thread) never waited for.
                if let Err(error) = self.send(to, msg) {
                    outcome = Err(error);
                    break;
                }
            } else if let Err(error) = self.queue_waiting(to, msg, timeout, &mut to_ring) {
                outcome = Err(error);
                break;
            }
            sent += 1;
        }
        for shard in (0..shards).filter(|&s| to_ring[s]) {
            self.ring(shard);
        }
        outcome.map(|()| sent).map_err(|error| SendBatchError { sent, error })
    }

    /// Queues one message of a batch, waiting for room until `timeout`; marks its shard to be
    /// rung, and rings it before waiting so that it drains.
    // The refused envelope comes back by value, as in `inject`.
    #[allow(clippy::result_large_err)]
    fn queue_waiting<M: Send + 'static>(
        &self,
        to: Addr<M>,
        msg: M,
        timeout: Duration,
        to_ring: &mut [bool],
    ) -> Result<(), SendError<M>> {
        let shard = to.shard();
        let env = Envelope::user(to.id(), NO_SENDER, Payload::new(msg));
        let mut rung = false;
        // Queue quietly; before waiting for room, ring the shard once so that it drains.
        let result = self.inject_waiting(shard, env, timeout, |h, shard, env| {
            let result = h.inject_quiet(shard, env);
            if result.is_err() && !rung {
                h.ring(shard);
                rung = true;
            }
            result
        });
        if result.is_ok() {
            to_ring[shard] = true;
        }
        self.settle_send(result)
    }

    /// Spawns `count` agents, the `i`-th built by `factory(i)` on its shard, where `options`
    /// say (`RoundRobin` deals them out one by one over the shards; `LeastLoaded` puts the batch
    /// on the least loaded shard). Each shard gets chunks of [`SPAWN_CHUNK`] spawns, every
    /// chunk is sent before any answer is awaited, and each answer is awaited for at most
    /// [`HOST_REQUEST_TIMEOUT`]. Returns the addresses in the order of `i`.
    ///
    /// # Errors
    ///
    /// [`SpawnBatchError`] with the first failure and the addresses of the agents that were
    /// spawned anyway (they run).
    pub fn spawn_batch<A, F>(
        &self,
        options: impl Into<SpawnOptions>,
        count: usize,
        factory: F,
    ) -> Result<Vec<Addr<A::Msg>>, SpawnBatchError<A::Msg>>
    where
        A: Agent,
        F: Fn(usize) -> A + Send + Sync + 'static,
    {
        let fail = |error| SpawnBatchError { spawned: Vec::new(), error };
        if let Err(shard) = refuse_on_shard_thread("spawn") {
            return Err(fail(SpawnError::BlockingOnShard(shard)));
        }
        let options = options.into();
        let per_shard = self.deal(options.placement, count).map_err(fail)?;
        let factory = Arc::new(factory);
        let mut waiting = Vec::new();
        let mut error = None;
        'send: for (shard, indices) in per_shard.into_iter().enumerate() {
            for chunk in indices.chunks(SPAWN_CHUNK) {
                match self.send_chunk::<A, F>(shard, chunk.to_vec(), options.mailbox_capacity, factory.clone()) {
                    Ok(cell) => waiting.push((shard, chunk.to_vec(), cell)),
                    Err(e) => {
                        error = Some(e);
                        break 'send;
                    }
                }
            }
        }
        let mut ids: Vec<Option<AgentId>> = vec![None; count];
        for (shard, indices, cell) in waiting {
            let answer = cell.wait(Instant::now() + HOST_REQUEST_TIMEOUT);
            let (spawned, failed) = match answer.map(|p| p.take::<ChunkSpawned>()) {
                Ok(Ok(chunk)) => chunk,
                Ok(Err(_)) => (Vec::new(), Some(SpawnError::ShuttingDown)),
                Err(_) => (Vec::new(), Some(SpawnError::Timeout(shard))),
            };
            for (i, id) in indices.iter().zip(spawned) {
                ids[*i] = Some(id);
            }
            error = error.or(failed);
        }
        let spawned: Vec<Addr<A::Msg>> = ids.iter().flatten().map(|id| Addr::from_id(*id)).collect();
        match error {
            None => Ok(spawned),
            Some(error) => Err(SpawnBatchError { spawned, error }),
        }
    }

    /// Which indices go to which shard.
    fn deal(&self, placement: SpawnPlacement, count: usize) -> Result<Vec<Vec<usize>>, SpawnError> {
        let shards = self.shards();
        let mut per_shard = vec![Vec::new(); shards];
        match placement {
            SpawnPlacement::Local => per_shard[0] = (0..count).collect(),
            SpawnPlacement::Shard(s) if s < shards => per_shard[s] = (0..count).collect(),
            SpawnPlacement::Shard(shard) => return Err(SpawnError::NoSuchShard { shard, shards }),
            SpawnPlacement::LeastLoaded => per_shard[self.shared.least_loaded()] = (0..count).collect(),
            SpawnPlacement::RoundRobin => {
                let start = self.shared.host_rr.fetch_add(count, Ordering::Relaxed);
                for i in 0..count {
                    per_shard[(start + i) % shards].push(i);
                }
            }
        }
        Ok(per_shard)
    }

    /// Queues one chunk of spawns for `shard`; returns the cell its answer comes to.
    fn send_chunk<A, F>(
        &self,
        shard: usize,
        indices: Vec<usize>,
        capacity: Option<u32>,
        factory: Arc<F>,
    ) -> Result<Arc<HostReply>, SpawnError>
    where
        A: Agent,
        F: Fn(usize) -> A + Send + Sync + 'static,
    {
        let build = Box::new(move |s: &mut Shard| spawn_chunk(s, &indices, capacity, &*factory));
        let cell = Arc::new(HostReply::default());
        let op = SystemOp::SpawnMany(build, ReplyTo::new(ReplyTarget::Host(cell.clone()), false));
        match self.inject_system(shard, op, Instant::now() + HOST_REQUEST_TIMEOUT) {
            Ok(()) => Ok(cell),
            Err(super::EngineError::ShuttingDown) => Err(SpawnError::ShuttingDown),
            Err(_) => Err(SpawnError::Overloaded(shard)),
        }
    }
}

/// Runs on the shard: spawns the chunk's agents in order, stopping at the first failure.
fn spawn_chunk<A: Agent>(
    shard: &mut Shard,
    indices: &[usize],
    capacity: Option<u32>,
    factory: &(dyn Fn(usize) -> A + Send + Sync),
) -> ChunkSpawned {
    let mut ids = Vec::with_capacity(indices.len());
    for &i in indices {
        match shard.spawn_here(factory(i), capacity) {
            Ok(id) => ids.push(id),
            Err(e) => return (ids, Some(e)),
        }
    }
    (ids, None)
}

#[cfg(test)]
#[path = "batch_tests.rs"]
mod tests;
