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
//!   candidates in one scatter/gather (`Ctx::ask_all`, over the mesh), merges the answers once
//!   they all settled (an [`IndexMsg::Gathered`] to itself), and replies with a
//!   [`Discovered`]: the best `limit` of all, and how many shards answered in time.
//!
//! The merge keeps the same order as one index would (score, then agent id), so the result is
//! deterministic for a given state of the indexes. A shard that does not answer before the
//! discovery timeout is counted in `shards_missing`; its agents are left out, not waited for.
//!
//! Invariants: an index agent keeps no state per discovery: everything a gather needs (the
//! query, the asker's reply token, the local ranking) travels in the gather's continuation and
//! comes back in its [`IndexMsg::Gathered`], which is answered exactly once; a shard has at most one working index agent (a second
//! `Coord::start` on the same engine gets an error, and its agents stop).

use crate::index::{insert_ranked, Candidate, CapIndex, Query, Weights};
use nexus_engine::agent::{Addr, Agent, AgentId, Ctx};
use nexus_engine::ask::{AskError, ReplyTo};
use std::cell::{Cell, RefCell};
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
    /// The agent's own: every other shard's answer to one `Discover` (built by the gather's
    /// continuation; it cannot be made elsewhere).
    Gathered(Gathered),
}

/// The other shards' answers to one global discovery, with what is needed to finish it; see
/// [`IndexMsg::Gathered`].
pub struct Gathered {
    query: Query,
    reply: ReplyTo<Discovered>,
    merged: Vec<Candidate>,
    answers: Vec<Result<Vec<Candidate>, AskError>>,
}

/// The per-shard agent that answers and runs global discoveries; see the module docs.
pub struct IndexAgent {
    weights: Weights,
    timeout: Duration,
    peers: Arc<[Addr<IndexMsg>]>,
    shard: Option<std::rc::Rc<ShardIndex>>,
    /// This agent is the shard's index agent (not a second one that failed to start).
    installed_here: bool,
}

impl IndexAgent {
    /// An index agent ranking with `weights` and waiting `timeout` for other shards.
    pub fn new(weights: Weights, timeout: Duration) -> Self {
        Self { weights, timeout, peers: Arc::from(Vec::new()), shard: None, installed_here: false }
    }

    fn index(&mut self, ctx: &mut Ctx<'_>) -> std::rc::Rc<ShardIndex> {
        self.shard.get_or_insert_with(|| ctx.shard_local::<ShardIndex>()).clone()
    }

    /// Ranks this shard for a global discovery and asks every other shard (one gather).
    fn discover(&mut self, query: Query, reply: ReplyTo<Discovered>, ctx: &mut Ctx<'_>) {
        let shard = self.index(ctx);
        let mut merged = Vec::with_capacity(query.limit.min(64));
        rank_local(&shard, &query, &self.weights, ctx, &mut merged);
        let me = ctx.shard();
        // Not started through `Coord::start`: the other shards cannot be asked.
        let missing = if self.peers.is_empty() { ctx.shards().saturating_sub(1) } else { 0 };
        let others = self.peers.iter().enumerate().filter(|&(s, _)| s != me).map(|(_, p)| *p);
        let requests: Vec<_> = others
            .map(|peer| {
                let q = query.clone();
                (peer, move |r| IndexMsg::Query(q, r))
            })
            .collect();
        if requests.is_empty() {
            let answer = Discovered { candidates: merged, shards_answered: 1, shards_missing: missing };
            ctx.reply(reply, answer);
            return;
        }
        ctx.ask_all(requests)
            .timeout(self.timeout)
            .then(move |answers| IndexMsg::Gathered(Gathered { query, reply, merged, answers }));
    }

    /// Merges the other shards' answers into the local ranking and replies.
    fn gathered(g: Gathered, ctx: &mut Ctx<'_>) {
        let Gathered { query, reply, mut merged, answers } = g;
        let (mut answered, mut missing) = (1, 0);
        for answer in answers {
            match answer {
                Ok(candidates) => {
                    answered += 1;
                    for c in candidates {
                        insert_ranked(&mut merged, c, query.limit);
                    }
                }
                Err(_) => missing += 1,
            }
        }
        ctx.reply(reply, Discovered { candidates: merged, shards_answered: answered, shards_missing: missing });
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
            IndexMsg::Discover(query, reply) => self.discover(query, reply, ctx),
            IndexMsg::Gathered(g) => Self::gathered(g, ctx),
        }
    }
}
