//! Discovery: declaring capabilities, and finding agents by them on one shard or on all.
//!
//! Each shard has one [`IndexAgent`] (started by [`crate::Coord::start`]) and one
//! [`ShardIndex`], a [`CapIndex`] kept in the shard's `Ctx::shard_local` storage:
//!
//! * an agent declares itself into its own shard's index synchronously
//!   ([`crate::Coord::declare`]), and a local discovery ([`crate::Coord::discover_local`]) reads
//!   that index synchronously: no message, no allocation beyond the result;
//! * a global discovery ([`crate::Coord::discover`]) is an ask to the caller's own index agent,
//!   which ranks its shard at once, asks every other shard's index agent for its top
//!   candidates (scatter, over the mesh), merges the answers as they come (gather), and replies
//!   with a [`Discovered`]: the best `limit` of all, and how many shards answered in time.
//!
//! The merge keeps the same order as one index would (score, then agent id), so the result is
//! deterministic for a given state of the indexes. A shard that does not answer before the
//! discovery timeout is counted in `shards_missing`; its agents are left out, not waited for.
//!
//! Invariants: an index agent has one pending gather per outstanding global discovery and
//! forgets it once it replied; a shard has at most one working index agent (a second
//! `Coord::start` on the same engine gets an error, and its agents stop).

use crate::index::{insert_ranked, Candidate, CapIndex, Query, Weights};
use nexus_engine::agent::{Addr, Agent, AgentId, Ctx, RequestId};
use nexus_engine::ask::{AskError, Reply, ReplyTo};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// The shard-local part of discovery: the shard's index (reached with `Ctx::shard_local`).
#[derive(Default)]
pub struct ShardIndex {
    /// The index of this shard's declared agents.
    pub index: RefCell<CapIndex>,
    installed: Cell<bool>,
}

/// The answer to a global discovery.
#[derive(Clone, Debug, PartialEq)]
pub struct Discovered {
    /// The best candidates of every shard that answered, best first.
    pub candidates: Vec<Candidate>,
    /// Shards whose candidates are included (the asking shard among them).
    pub shards_answered: usize,
    /// Shards that did not answer in time or could not be asked.
    pub shards_missing: usize,
}

/// Messages of an [`IndexAgent`].
pub enum IndexMsg {
    /// Start-up: the index agents of every shard, in shard order. Answered with an error (and
    /// the agent stops) when the shard already had an index agent.
    Peers(Arc<[Addr<IndexMsg>]>, ReplyTo<Result<(), String>>),
    /// Rank this shard's agents (the local part of someone's global discovery).
    Query(Query, ReplyTo<Vec<Candidate>>),
    /// Rank every shard's agents (scatter, gather, merge).
    Discover(Query, ReplyTo<Discovered>),
    /// Set the reputation discovery ranks a local agent by.
    Reputation(AgentId, f64),
}

struct Gather {
    query: Query,
    reply: ReplyTo<Discovered>,
    merged: Vec<Candidate>,
    waiting: usize,
    answered: usize,
    missing: usize,
}

/// The per-shard agent that answers and runs global discoveries; see the module docs.
pub struct IndexAgent {
    weights: Weights,
    timeout: Duration,
    peers: Arc<[Addr<IndexMsg>]>,
    shard: Option<std::rc::Rc<ShardIndex>>,
    /// This agent is the shard's index agent (not a second one that failed to start).
    installed_here: bool,
    gathers: HashMap<u64, Gather>,
    pending: HashMap<u64, u64>,
    next_gather: u64,
}

impl IndexAgent {
    /// An index agent ranking with `weights` and waiting `timeout` for other shards.
    pub fn new(weights: Weights, timeout: Duration) -> Self {
        Self {
            weights,
            timeout,
            peers: Arc::from(Vec::new()),
            shard: None,
            installed_here: false,
            gathers: HashMap::new(),
            pending: HashMap::new(),
            next_gather: 0,
        }
    }

    fn index(&mut self, ctx: &mut Ctx<'_>) -> std::rc::Rc<ShardIndex> {
        self.shard.get_or_insert_with(|| ctx.shard_local::<ShardIndex>()).clone()
    }

    fn finish(&mut self, gather: u64, ctx: &mut Ctx<'_>) {
        let done = self.gathers.get(&gather).is_some_and(|g| g.waiting == 0);
        if done {
            if let Some(g) = self.gathers.remove(&gather) {
                let answer =
                    Discovered { candidates: g.merged, shards_answered: g.answered, shards_missing: g.missing };
                ctx.reply(g.reply, answer);
            }
        }
    }
}

/// Ranks the calling shard's index for `query` into `out`.
pub(crate) fn rank_local(
    shard: &ShardIndex,
    query: &Query,
    weights: &Weights,
    ctx: &mut Ctx<'_>,
    out: &mut Vec<Candidate>,
) {
    shard.index.borrow_mut().query(query, weights, |id| ctx.mailbox_len(id), out);
}

impl Agent for IndexAgent {
    type Msg = IndexMsg;

    fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        let shard = self.index(ctx);
        // A second index agent on this shard refuses its `Peers` and stops.
        self.installed_here = !shard.installed.replace(true);
    }

    fn on_stop(&mut self, ctx: &mut Ctx<'_>) {
        if self.installed_here {
            self.index(ctx).installed.set(false);
        }
    }

    fn handle(&mut self, msg: IndexMsg, ctx: &mut Ctx<'_>) {
        match msg {
            IndexMsg::Peers(peers, reply) => {
                if !self.installed_here {
                    let shard = ctx.shard();
                    ctx.reply(reply, Err(format!("shard {shard} already has a coordination index")));
                    ctx.stop_self();
                    return;
                }
                self.peers = peers;
                ctx.reply(reply, Ok(()));
            }
            IndexMsg::Query(query, reply) => {
                let shard = self.index(ctx);
                let mut out = Vec::with_capacity(query.limit.min(64));
                rank_local(&shard, &query, &self.weights, ctx, &mut out);
                ctx.reply(reply, out);
            }
            IndexMsg::Reputation(id, value) => self.index(ctx).index.borrow_mut().set_reputation(id, value),
            IndexMsg::Discover(query, reply) => {
                let shard = self.index(ctx);
                let mut merged = Vec::with_capacity(query.limit.min(64));
                rank_local(&shard, &query, &self.weights, ctx, &mut merged);
                let gather = self.next_gather;
                self.next_gather += 1;
                let mut g = Gather { query, reply, merged, waiting: 0, answered: 1, missing: 0 };
                let me = ctx.shard();
                for (shard, peer) in self.peers.iter().enumerate() {
                    if shard == me {
                        continue;
                    }
                    let q = g.query.clone();
                    match ctx.ask_untyped(*peer, self.timeout, |r| IndexMsg::Query(q, r)) {
                        Ok(request) => {
                            self.pending.insert(request.to_bits(), gather);
                            g.waiting += 1;
                        }
                        Err(_) => g.missing += 1,
                    }
                }
                if self.peers.is_empty() && ctx.shards() > 1 {
                    g.missing = ctx.shards() - 1; // not started through Coord::start
                }
                self.gathers.insert(gather, g);
                self.finish(gather, ctx);
            }
        }
    }

    fn on_reply(&mut self, request: RequestId, reply: Result<Reply, AskError>, ctx: &mut Ctx<'_>) {
        let Some(gather) = self.pending.remove(&request.to_bits()) else { return };
        let Some(g) = self.gathers.get_mut(&gather) else { return };
        g.waiting -= 1;
        match reply.and_then(|r| r.take::<Vec<Candidate>>()) {
            Ok(candidates) => {
                g.answered += 1;
                for c in candidates {
                    insert_ranked(&mut g.merged, c, g.query.limit);
                }
            }
            Err(_) => g.missing += 1,
        }
        self.finish(gather, ctx);
    }
}
