//! nexus-coord: the coordination layer of Nexus, built only on the engine's public API.
//!
//! It is its own crate so that the compiler enforces that: nothing here reaches into the
//! engine's internals, so users can read it as an example of writing agents, and replace any
//! part of it with their own. What it provides:
//!
//! - [`caps`]: capability tags, interned engine-wide into 128-bit sets;
//! - [`index`], [`discovery`]: each shard indexes its own agents by capability; discovery ranks
//!   them by capability match, load and reputation, locally (synchronously) or on every shard
//!   (scatter/gather over the mesh);
//! - [`balance`]: balancers (round robin, least loaded, power of two choices, weighted response
//!   time), pure logic that picks a worker from what a pool knows of each;
//! - [`pool`]: a [`pool::Pool`] agent that fronts N workers with a balancer, forwarding tells
//!   and asks, observing each answer's latency, and failing what it cannot place loudly;
//! - [`auction`]: contract-net auctions: a manager calls for bids, awards a contract by a
//!   scoring rule, and re-auctions when the winner fails, misses its deadline or dies;
//! - [`reputation`]: per-agent moving averages of success and timeliness, kept by auction
//!   managers and pushed to discovery;
//! - [`vote`]: quorum votes: ballots with a rule (majority, supermajority, unanimity, weighted,
//!   instant runoff), a quorum and a deadline, owned by a ballot box per shard; voters are
//!   agents taking [`vote::VoterMsg`] (an [`vote::Elector`] around a [`vote::Voter`]);
//! - [`dedup`]: a bounded idempotency-key window for any agent, and a wrapper agent that drops
//!   duplicate deliveries;
//! - [`batch`]: coalesces small messages to one target into batches of up to N, flushed by size
//!   or by a timer tick;
//!
//! [`Coord`] is the handle to all of it: start it once per engine with [`Coord::start`], clone
//! it into the agents that declare, discover, auction or vote.

#![warn(missing_docs)]

pub mod auction;
pub mod balance;
pub mod batch;
pub mod caps;
pub mod dedup;
pub mod discovery;
pub mod index;
pub mod pool;
pub mod reputation;
pub mod vote;

use caps::{CapError, CapRegistry, CapSet};
use discovery::{IndexAgent, IndexMsg, ShardIndex};
use index::{Candidate, LoadSource, Query, Weights};
use nexus_engine::agent::{Addr, Ctx, SendError, SpawnError, SpawnPlacement};
use nexus_engine::ask::AskError;
use nexus_engine::config::CoordConfig;
use nexus_engine::engine::EngineHandle;
use std::sync::Arc;
use std::time::Duration;

pub use discovery::Discovered;

/// Why a coordination call failed.
#[derive(Debug, thiserror::Error)]
pub enum CoordError {
    /// A capability name was refused.
    #[error("{0}")]
    Cap(#[from] CapError),
    /// An index agent could not be started.
    #[error("cannot start the coordination index: {0}")]
    Spawn(#[from] SpawnError),
    /// A request got no answer (timeout, shutdown, ...).
    #[error("coordination request failed: {0}")]
    Ask(#[from] AskError),
    /// The engine already runs a coordination layer (one per engine).
    #[error("{0}; hint: start one Coord per engine and clone it")]
    AlreadyStarted(String),
    /// The engine has no coordination index on that shard (the `Coord` belongs to another
    /// engine, or the shard index is out of range).
    #[error("no coordination index on shard {0}; hint: use the Coord started on this engine")]
    NotStarted(usize),
    /// A request could not be sent (the target's mailbox or the shard's queues are full).
    #[error("coordination request could not be sent: the index agent is overloaded; hint: retry later")]
    Full,
}

impl<M> From<SendError<M>> for CoordError {
    fn from(_: SendError<M>) -> Self {
        CoordError::Full
    }
}

struct Inner {
    caps: CapRegistry,
    reputation_updates_dropped: std::sync::atomic::AtomicU64,
    indexes: Arc<[Addr<IndexMsg>]>,
    weights: Weights,
    config: CoordConfig,
}

/// The coordination layer of one engine; cheap to clone, `Send + Sync`. See the crate docs.
#[derive(Clone)]
pub struct Coord {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Coord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coord").field("shards", &self.inner.indexes.len()).field("config", &self.inner.config).finish()
    }
}

impl Coord {
    /// Starts one index agent on every shard of the engine behind `handle`, and waits until
    /// each knows the others.
    ///
    /// # Errors
    /// When an index agent cannot be spawned or does not answer.
    pub fn start(handle: &EngineHandle, config: &CoordConfig) -> Result<Coord, CoordError> {
        let weights = Weights::from_config(config);
        let timeout = Duration::from_millis(config.discovery_timeout_ms.max(1));
        let mut indexes = Vec::with_capacity(handle.shards());
        for shard in 0..handle.shards() {
            let addr = handle.spawn(SpawnPlacement::Shard(shard), move || IndexAgent::new(weights, timeout))?;
            indexes.push(addr);
        }
        let indexes: Arc<[Addr<IndexMsg>]> = Arc::from(indexes);
        let mut refused = None;
        for addr in indexes.iter() {
            let peers = indexes.clone();
            if let Err(why) = handle.ask(*addr, Duration::from_secs(5), |r| IndexMsg::Peers(peers, r))? {
                refused.get_or_insert(why);
            }
        }
        if let Some(why) = refused {
            for addr in indexes.iter() {
                let _ = handle.stop(addr.id());
            }
            return Err(CoordError::AlreadyStarted(why));
        }
        Ok(Coord {
            inner: Arc::new(Inner {
                caps: CapRegistry::new(),
                reputation_updates_dropped: Default::default(),
                indexes,
                weights,
                config: config.clone(),
            }),
        })
    }

    /// The engine-wide capability names.
    pub fn caps(&self) -> &CapRegistry {
        &self.inner.caps
    }

    /// The set of the named capabilities (interning each).
    ///
    /// # Errors
    /// A name that is invalid or would overflow the registry.
    pub fn cap_set(&self, names: &[&str]) -> Result<CapSet, CoordError> {
        Ok(self.inner.caps.set(names)?)
    }

    /// The config it was started with.
    pub fn config(&self) -> &CoordConfig {
        &self.inner.config
    }

    /// The normalised ranking weights.
    pub fn weights(&self) -> Weights {
        self.inner.weights
    }

    /// The index agent of `shard`.
    pub fn index_of(&self, shard: usize) -> Option<Addr<IndexMsg>> {
        self.inner.indexes.get(shard).copied()
    }

    /// Declares the calling agent with `caps` in its shard's index (replacing an earlier
    /// declaration). Agents that stop are dropped from the index when a query next meets them;
    /// [`withdraw`](Self::withdraw) does it at once.
    pub fn declare(&self, ctx: &mut Ctx<'_>, caps: CapSet, load: LoadSource) {
        let me = ctx.id();
        ctx.shard_local::<ShardIndex>().index.borrow_mut().declare(me, caps, load);
    }

    /// Removes the calling agent from its shard's index.
    pub fn withdraw(&self, ctx: &mut Ctx<'_>) {
        let me = ctx.id();
        ctx.shard_local::<ShardIndex>().index.borrow_mut().withdraw(me);
    }

    /// Reports the calling agent's load (for agents declared with [`LoadSource::Reported`]).
    pub fn report_load(&self, ctx: &mut Ctx<'_>, load: f64) {
        let me = ctx.id();
        ctx.shard_local::<ShardIndex>().index.borrow_mut().report_load(me, load);
    }

    /// Sets the reputation discovery ranks `id` by (0 to 1): at once if `id` lives on the
    /// caller's shard, else by a message to its shard's index agent. An update that cannot be
    /// sent (full queues) is counted ([`reputation_updates_dropped`](Self::reputation_updates_dropped));
    /// it loses only a ranking hint, since the auction manager keeps the authoritative value.
    pub fn set_reputation(&self, ctx: &mut Ctx<'_>, id: nexus_engine::agent::AgentId, reputation: f64) {
        if id.shard() == ctx.shard() {
            ctx.shard_local::<ShardIndex>().index.borrow_mut().set_reputation(id, reputation);
            return;
        }
        let sent = match self.index_of(id.shard()) {
            Some(index) => ctx.send(index, IndexMsg::Reputation(id, reputation)).is_ok(),
            None => false,
        };
        if !sent {
            self.inner.reputation_updates_dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Reputation updates for other shards that could not be sent.
    pub fn reputation_updates_dropped(&self) -> u64 {
        self.inner.reputation_updates_dropped.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Ranks the agents of the caller's shard for `query`, synchronously; results go to `out`
    /// (cleared first, best first).
    pub fn discover_local_into(&self, ctx: &mut Ctx<'_>, query: &Query, out: &mut Vec<Candidate>) {
        let shard = ctx.shard_local::<ShardIndex>();
        discovery::rank_local(&shard, query, &self.inner.weights, ctx, out);
    }

    /// Ranks the agents of the caller's shard for `query`, synchronously, best first.
    pub fn discover_local(&self, ctx: &mut Ctx<'_>, query: &Query) -> Vec<Candidate> {
        let mut out = Vec::with_capacity(query.limit.min(64));
        self.discover_local_into(ctx, query, &mut out);
        out
    }

    /// Ranks the agents of every shard for `query`: an ask to the caller's shard's index
    /// agent. `adapt` turns the answer (the [`Discovered`], or the [`AskError`] that ended the
    /// ask) into a message of the calling agent, which gets it through `Agent::handle`; put in
    /// the closure whatever the caller needs to use the answer. `adapt` must build the caller's
    /// own message type (see `Ctx::ask`). Waits at most twice the config's
    /// `discovery_timeout_ms` for the answer (each other shard gets `discovery_timeout_ms`).
    /// For example `coord.discover(ctx, query, move |found| Msg::Found { job, found })`.
    ///
    /// # Errors
    /// When the request cannot be sent (`adapt` is then dropped, never run).
    pub fn discover<T, A>(&self, ctx: &mut Ctx<'_>, query: Query, adapt: A) -> Result<(), CoordError>
    where
        T: Send + 'static,
        A: FnOnce(Result<Discovered, AskError>) -> T + Send + 'static,
    {
        let index = self.index_of(ctx.shard()).ok_or(CoordError::NotStarted(ctx.shard()))?;
        let timeout = Duration::from_millis(self.inner.config.discovery_timeout_ms.saturating_mul(2).max(1));
        Ok(ctx.ask(index, |r| IndexMsg::Discover(query, r)).timeout(timeout).then(adapt)?)
    }

    /// [`discover`](Self::discover) from a host thread: blocks until the answer.
    ///
    /// # Errors
    /// When the index agent does not answer.
    pub fn discover_blocking(&self, handle: &EngineHandle, query: Query) -> Result<Discovered, CoordError> {
        let index = self.index_of(0).ok_or(CoordError::NotStarted(0))?;
        let timeout = Duration::from_millis(self.inner.config.discovery_timeout_ms.saturating_mul(2).max(1));
        Ok(handle.ask(index, timeout, |r| IndexMsg::Discover(query, r))?)
    }
}

#[cfg(test)]
mod tests;
