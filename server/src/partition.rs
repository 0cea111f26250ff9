//! The partition agent: one per shard, serving the keys, agent names and channels that shard
//! owns.
//!
//! Every key, agent name and channel has one owning shard (`owner_of`, a keyed hash of its bytes);
//! ingress agents on every shard send the operations on it here, over the mesh when the
//! connection is on another shard. The partition holds the shard's [`KvStore`], spawns and
//! stops the agents whose names it owns (recording their kind), and fronts the shard's topic
//! agents. Each operation is one message; its answer is a RESP [`Value`] sent back through the
//! ask's reply token. `AGENT.ASK` and `PUBLISH` forward the token, so the agent or the topic
//! answers the ingress directly.
//!
//! `Partition::run` routes each operation to its family: keys (`run_key_op`), whole-shard
//! administration (`run_server_op`), agents (`run_agent_op`) and pub/sub (`run_pubsub_op`).
//!
//! With persistence on, the store carries the shard's journal: at the end of every message the
//! partition queues itself a [`PartOp::LogFlush`] (so every message queued before it joins the
//! batch), which hands the buffered records to the log writer (once it is free: a flush that
//! found it busy waits for its notice rather than queue itself again), and under
//! `fsync = "always"` it holds each answer until the durable LSN covers the writes before it
//! ([`HeldReplies`]); the writer's notice ([`PartOp::LogSynced`]) releases them. A compaction,
//! once due, dumps the store [`DUMP_KEYS_PER_STEP`] keys per message it sends itself
//! ([`PartOp::RewriteStep`]), so the shard keeps serving meanwhile.
//!
//! Invariants: every operation that carries a reply token answers through it exactly once,
//! here or through the agent or topic it was forwarded to (a refused forward answers `BUSY`);
//! a held answer is sent once its write is durable, or with an error once the log failed.

use crate::directory::{Directory, Subscriber};
use crate::kinds::{AgentRequest, Kinds};
use crate::kv::exec::{self, KeyCmd};
use crate::kv::{Compact, ExpireCondition, KvStore, SetCondition, SetExpiry, Taken};
use crate::persist::{Durability, HeldReplies, DUMP_KEYS_PER_STEP};
use crate::resp::Value;
use crate::topic::{Topic, TopicMsg};
use bytes::Bytes;
use hashbrown::HashMap;
use nexus_engine::agent::{Addr, Agent, AgentId, Ctx};
use nexus_engine::ask::ReplyTo;
use nexus_engine::config::FsyncPolicy;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

/// An operation for a partition, with where its answer goes.
pub struct PartMsg {
    /// What to do.
    pub op: PartOp,
    /// Where the answer goes (`None`: nobody waits for one).
    pub reply: Option<ReplyTo<Value>>,
}

/// The operations; see the module documentation.
pub enum PartOp {
    /// `GET key`.
    Get(Bytes),
    /// `SET key value ...`.
    Set {
        /// The key.
        key: Bytes,
        /// The value.
        value: Bytes,
        /// NX / XX.
        condition: SetCondition,
        /// EX / PX / KEEPTTL.
        expiry: SetExpiry,
        /// `GET` option: answer the previous value.
        get: bool,
    },
    /// `DEL` of these keys: answers how many existed.
    Del(Vec<Bytes>),
    /// `EXISTS` of these keys: answers how many exist.
    Exists(Vec<Bytes>),
    /// `INCRBY key n` (and INCR, DECR, DECRBY).
    IncrBy(Bytes, i64),
    /// `MGET` of these keys: answers an array in the same order.
    MGet(Vec<Bytes>),
    /// `MSET` of these pairs.
    MSet(Vec<(Bytes, Bytes)>),
    /// `PEXPIRE key ms` (and its kin, made relative): 0 or less deletes the key.
    Expire(Bytes, i64, ExpireCondition),
    /// The per-key commands run by [`exec::run`] (hashes, TYPE, GETEX...), and the
    /// per-shard steps of KEYS and SCAN.
    Key(KeyCmd),
    /// `RENAME from to`: `from` is this shard's; `to_shard` is the owner of `to` when it is
    /// another shard, which gets the value as a [`PartOp::Restore`] carrying the reply token.
    Rename {
        /// The source key.
        from: Bytes,
        /// The destination key.
        to: Bytes,
        /// The destination's shard, when not this one.
        to_shard: Option<usize>,
    },
    /// The second half of a RENAME across shards: store `Taken` under the key.
    Restore(Bytes, Taken),
    /// Several key operations of one connection, run in order (the requests of one read that
    /// this shard owns): answers an array with one answer per operation. Only operations
    /// [`run_key_op`] answers belong in a batch.
    Batch(Vec<PartOp>),
    /// `TTL key` (`false`: seconds) or `PTTL key` (`true`: milliseconds).
    Ttl(Bytes, bool),
    /// `DBSIZE`: answers the live keys.
    DbSize,
    /// `FLUSHALL`.
    FlushAll,
    /// `BGREWRITEAOF`: asks for a compaction of the shard's log; answers 0 without a log, 1
    /// when one will start, 2 when one runs already.
    BgRewriteAof,
    /// INFO's figures: `[keys, expires, sent, delivered, dead_letters, agents, used_memory,
    /// evicted_keys, maxmemory, policy]` (policy: `kv::memory::policy_figure`), then the log's
    /// (`persist::aof_figures`).
    Info,
    /// `AGENT.SPAWN kind name args`.
    Spawn {
        /// The kind.
        kind: String,
        /// The name.
        name: String,
        /// The arguments.
        args: Vec<Bytes>,
    },
    /// A host spawned agent `id` of `kind` (through the kind registry) and registered it as
    /// `name`: record it, so the AGENT commands reach it (`ServerHandle::spawn_agent`).
    Adopt {
        /// The kind.
        kind: String,
        /// The registered name.
        name: String,
        /// The agent (its messages are [`AgentRequest`]s).
        id: AgentId,
    },
    /// `AGENT.SEND name payload`.
    AgentSend(String, Bytes),
    /// `AGENT.ASK name payload` (the reply token goes to the agent).
    AgentAsk(String, Bytes),
    /// `AGENT.STOP name`.
    AgentStop(String),
    /// `AGENT.INFO name`.
    AgentInfo(String),
    /// `AGENT.LIST [kind]`: the names, sorted.
    AgentList(Option<String>),
    /// `SUBSCRIBE channel` for one subscriber.
    Subscribe(Bytes, Subscriber),
    /// `UNSUBSCRIBE channel` for one subscriber.
    Unsubscribe(Bytes, Subscriber),
    /// `PUBLISH channel message`.
    Publish(Bytes, Bytes),
    /// A topic lost its last subscriber (sent by the topic itself).
    TopicIdle(Bytes),
    /// The log writer finished a batch: held answers may go, buffered records may be handed
    /// over (sent by the writer thread).
    LogSynced,
    /// The next step of a compaction's dump (sent by the partition to itself).
    RewriteStep,
    /// Hand the buffered records to the log writer (sent by the partition to itself after a
    /// write, so that every message queued before it joins the same batch).
    LogFlush,
}

/// A channel's topic agent and how many subscriptions were forwarded to it, net.
struct TopicEntry {
    addr: Addr<TopicMsg>,
    subscribers: usize,
}

/// See the module documentation.
pub struct Partition {
    /// The shard's store, shared with the shard's connection tasks (same thread), which run
    /// the operations on the keys they own inline; no borrow is held across an await or a
    /// message.
    kv: SharedKv,
    kinds: Arc<Kinds>,
    directory: Arc<Directory>,
    /// Agents of a kind (spawned by `AGENT.SPAWN` or adopted from the host) whose names this
    /// shard owns: name -> (kind, id).
    agents: BTreeMap<String, (String, AgentId)>,
    topics: HashMap<Bytes, TopicEntry>,
    /// The shard's log, when persistence is on.
    log: Option<PartLog>,
}

/// The partition's side of the shard's log.
struct PartLog {
    durability: Rc<Durability>,
    /// Whether answers wait for their writes' sync (`fsync = "always"`).
    hold: bool,
    held: HeldReplies,
    /// A running compaction's keys not dumped yet, and whether its next step is queued.
    to_dump: Vec<Compact>,
    step_queued: bool,
    /// A [`PartOp::LogFlush`] is queued.
    flush_queued: bool,
    /// The last flush held the records back (the writer was busy): no other flush until the
    /// writer's notice, which would only find it busy again (a self-sent loop while it syncs).
    held_back: bool,
}

impl Partition {
    /// A partition serving `kv` (empty, or shared with the shard's connections).
    pub fn new(kinds: Arc<Kinds>, directory: Arc<Directory>, kv: SharedKv) -> Self {
        Self { kv, kinds, directory, agents: BTreeMap::new(), topics: HashMap::new(), log: None }
    }

    /// The partition with its store's log: the store was replayed from the shard's log and
    /// has its journal attached; `durability` reports the writer's syncs.
    pub fn with_log(mut self, durability: Rc<Durability>) -> Self {
        let hold = self.kv.borrow_mut().journal_mut().is_some_and(|j| j.fsync() == FsyncPolicy::Always);
        self.log = Some(PartLog {
            durability,
            hold,
            held: HeldReplies::default(),
            to_dump: Vec::new(),
            step_queued: false,
            flush_queued: false,
            held_back: false,
        });
        self
    }

    /// The live agent of a kind registered as `name` (forgetting a recorded one that is gone).
    /// A name registered by anyone else (an embedder's own agent) is not one: its messages
    /// are not RESP payloads.
    fn agent(&mut self, name: &str, ctx: &mut Ctx<'_>) -> Option<(String, AgentId)> {
        let live = ctx.lookup_local(name).flatten();
        match (live, self.agents.get(name)) {
            (Some(id), Some((kind, spawned))) if id == *spawned => Some((kind.clone(), id)),
            _ => {
                self.agents.remove(name);
                None
            }
        }
    }

    /// The error for a name that is not a RESP agent: unknown, or registered by another party.
    fn not_an_agent(name: &str, ctx: &mut Ctx<'_>) -> Value {
        if ctx.lookup_local(name).flatten().is_some() {
            Value::error(format!(
                "ERR agent '{name}' is not of an agent kind (the host registered it) and takes no RESP payloads"
            ))
        } else {
            no_such_agent(name)
        }
    }

    /// Runs `op`; answers `Some(value)` to be sent through `reply`, or `None` when the answer
    /// goes (or went) another way: the token was forwarded, answered already, or not wanted.
    fn run(&mut self, op: PartOp, reply: &mut Option<ReplyTo<Value>>, ctx: &mut Ctx<'_>) -> Option<Value> {
        let now = ctx.now_ns() / 1_000_000;
        self.kv.borrow_mut().expire_due(now);
        match op {
            PartOp::DbSize | PartOp::FlushAll | PartOp::Info | PartOp::BgRewriteAof => {
                Some(self.run_server_op(op, now, ctx))
            }
            PartOp::Spawn { .. }
            | PartOp::Adopt { .. }
            | PartOp::AgentSend(..)
            | PartOp::AgentAsk(..)
            | PartOp::AgentStop(_)
            | PartOp::AgentInfo(_)
            | PartOp::AgentList(_) => self.run_agent_op(op, reply, ctx),
            PartOp::Subscribe(..) | PartOp::Unsubscribe(..) | PartOp::Publish(..) | PartOp::TopicIdle(_) => {
                self.run_pubsub_op(op, reply, ctx)
            }
            PartOp::LogSynced => {
                if let Some(log) = &mut self.log {
                    log.held_back = false;
                    log.durability.wake();
                }
                None
            }
            PartOp::RewriteStep => {
                self.rewrite_step(now);
                None
            }
            PartOp::LogFlush => {
                let held_back = self.kv.borrow_mut().journal_mut().is_some_and(|j| j.flush());
                if let Some(log) = &mut self.log {
                    log.flush_queued = false;
                    log.held_back = held_back;
                }
                None
            }
            PartOp::Rename { from, to, to_shard } => self.rename(from, to, to_shard, reply, now, ctx),
            key_op => Some(run_key_op(&mut self.kv.borrow_mut(), key_op, now)),
        }
    }

    /// RENAME: takes `from` out; stores it under `to` here, or hands it (with the reply token)
    /// to `to`'s shard. Across shards the two halves are two messages: a client may see
    /// neither key in between, and a refused hand-over puts `from` back and answers BUSY.
    fn rename(
        &mut self,
        from: Bytes,
        to: Bytes,
        to_shard: Option<usize>,
        reply: &mut Option<ReplyTo<Value>>,
        now: u64,
        ctx: &mut Ctx<'_>,
    ) -> Option<Value> {
        let Some(taken) = self.kv.borrow_mut().take(&from, now) else { return Some(Value::error("ERR no such key")) };
        let Some(shard) = to_shard else {
            self.kv.borrow_mut().restore(to, taken, now);
            return Some(Value::Ok);
        };
        let Some(part) = self.directory.partition(shard) else {
            self.kv.borrow_mut().restore(from, taken, now);
            return Some(Value::error("LOADING the server is still starting"));
        };
        let token = reply.take();
        if let Err(e) = ctx.send(part, PartMsg { op: PartOp::Restore(to, taken), reply: token }) {
            let PartMsg { op, reply } = e.into_inner();
            if let PartOp::Restore(_, taken) = op {
                self.kv.borrow_mut().restore(from, taken, now);
            }
            if let Some(token) = reply {
                ctx.reply(token, Value::error("BUSY the way to the key's shard is full; retry later"));
            }
        }
        None
    }

    /// The whole-shard operations: DBSIZE, FLUSHALL, BGREWRITEAOF and INFO's figures.
    fn run_server_op(&mut self, op: PartOp, now: u64, ctx: &mut Ctx<'_>) -> Value {
        match op {
            PartOp::DbSize => Value::Int(self.kv.borrow_mut().len(now) as i64),
            PartOp::FlushAll => {
                self.kv.borrow_mut().clear();
                Value::Ok
            }
            PartOp::BgRewriteAof => Value::Int(match self.kv.borrow_mut().journal_mut() {
                None => 0,
                Some(j) if j.rewriting() => 2,
                Some(j) => {
                    j.request_rewrite();
                    1
                }
            }),
            PartOp::Info => {
                let mut kv = self.kv.borrow_mut();
                let keys = kv.len(now) as i64;
                let stats = ctx.shard_stats();
                let c = &stats.counters;
                Value::Array(
                    [
                        keys,
                        kv.expiring() as i64,
                        c.sent as i64,
                        c.delivered as i64,
                        c.dead_letters_total() as i64,
                        stats.agents as i64,
                        kv.used_memory() as i64,
                        kv.evicted_keys() as i64,
                        kv.memory_limit().maxmemory as i64,
                        crate::kv::memory::policy_figure(kv.memory_limit().policy),
                    ]
                    .into_iter()
                    .chain(crate::persist::aof_figures(kv.journal()))
                    .map(Value::Int)
                    .collect(),
                )
            }
            _ => misrouted(),
        }
    }

    /// The agent operations: AGENT.SPAWN, .SEND, .ASK, .STOP, .INFO, .LIST. ASK and INFO hand
    /// the reply token to the agent, which answers the ingress directly.
    fn run_agent_op(&mut self, op: PartOp, reply: &mut Option<ReplyTo<Value>>, ctx: &mut Ctx<'_>) -> Option<Value> {
        let value = match op {
            PartOp::Spawn { kind, name, args } if crate::cluster_cmds::is_global(&args) => {
                let local_args = &args[..args.len() - 1];
                let (spawned, id) =
                    (self.spawn(kind, name.clone(), local_args, ctx), self.agent(&name, ctx).map(|a| a.1));
                return crate::cluster_cmds::claim_spawned(self.kinds.cluster(), name, spawned, id, reply, ctx);
            }
            PartOp::Spawn { kind, name, args } => self.spawn(kind, name, &args, ctx),
            PartOp::Adopt { kind, name, id } => self.adopt(kind, name, id, ctx),
            PartOp::AgentSend(name, payload) => match self.agent(&name, ctx) {
                None => crate::cluster_cmds::send_remote(
                    self.kinds.cluster(),
                    &name,
                    payload,
                    Self::not_an_agent(&name, ctx),
                ),
                Some((_, id)) => match ctx.send(Addr::<AgentRequest>::from_id(id), AgentRequest::Send(payload)) {
                    Ok(()) => Value::Int(1),
                    Err(_) => agent_busy(&name),
                },
            },
            PartOp::AgentAsk(name, payload) => return self.agent_ask(name, payload, reply, ctx),
            PartOp::AgentStop(name) => match self.agent(&name, ctx) {
                None => Value::Int(0),
                Some((_, id)) => {
                    ctx.stop(id);
                    self.agents.remove(&name);
                    Value::Int(1)
                }
            },
            PartOp::AgentInfo(name) => return self.agent_info(name, reply, ctx),
            PartOp::AgentList(kind) => Value::Array(self.agent_list(kind.as_deref(), ctx)),
            _ => misrouted(),
        };
        Some(value)
    }

    /// AGENT.ASK: the payload and the reply token go to the agent, which answers the ingress.
    fn agent_ask(
        &mut self,
        name: String,
        payload: Bytes,
        reply: &mut Option<ReplyTo<Value>>,
        ctx: &mut Ctx<'_>,
    ) -> Option<Value> {
        let Some((_, id)) = self.agent(&name, ctx) else {
            let local = Self::not_an_agent(&name, ctx);
            return crate::cluster_cmds::ask_remote(self.kinds.cluster(), &name, payload, reply, local, ctx);
        };
        let token = reply.take()?;
        if let Err(e) = ctx.send(Addr::<AgentRequest>::from_id(id), AgentRequest::Ask(payload, token)) {
            // The token came back inside the message: answer through it.
            if let AgentRequest::Ask(_, token) = e.into_inner() {
                ctx.reply(token, agent_busy(&name));
            }
        }
        None
    }

    /// AGENT.INFO: the agent describes itself through the reply token; nil for no agent.
    fn agent_info(&mut self, name: String, reply: &mut Option<ReplyTo<Value>>, ctx: &mut Ctx<'_>) -> Option<Value> {
        let Some((kind, id)) = self.agent(&name, ctx) else {
            if ctx.lookup_local(&name).flatten().is_some() {
                return Some(Self::not_an_agent(&name, ctx));
            }
            return Some(Value::Nil);
        };
        let token = reply.take()?;
        let request = AgentRequest::Info { name: name.clone(), kind, reply: token };
        if let Err(e) = ctx.send(Addr::<AgentRequest>::from_id(id), request) {
            if let AgentRequest::Info { reply, .. } = e.into_inner() {
                ctx.reply(reply, agent_busy(&name));
            }
        }
        None
    }

    /// AGENT.LIST: the live agents this shard spawned (of `kind`, when given), sorted.
    fn agent_list(&mut self, kind: Option<&str>, ctx: &mut Ctx<'_>) -> Vec<Value> {
        let names: Vec<String> = self
            .agents
            .iter()
            .filter(|(_, (k, _))| kind.map_or(true, |want| want == k))
            .map(|(n, _)| n.clone())
            .collect();
        names.into_iter().filter(|n| self.agent(n, ctx).is_some()).map(|n| Value::Bulk(Bytes::from(n))).collect()
    }

    /// The pub/sub operations: SUBSCRIBE and UNSUBSCRIBE of one subscriber, PUBLISH, and a
    /// topic's notice that it is idle. The topic agent answers through the forwarded token.
    fn run_pubsub_op(&mut self, op: PartOp, reply: &mut Option<ReplyTo<Value>>, ctx: &mut Ctx<'_>) -> Option<Value> {
        match op {
            PartOp::Subscribe(channel, sub) => self.subscribe(channel, sub, reply, ctx),
            PartOp::Unsubscribe(channel, sub) => match self.topics.get_mut(&channel) {
                None => Some(Value::Ok),
                Some(entry) => {
                    entry.subscribers = entry.subscribers.saturating_sub(1);
                    let addr = entry.addr;
                    let token = reply.take();
                    let _ = ctx.send(addr, TopicMsg::Unsubscribe(sub, token));
                    None
                }
            },
            PartOp::Publish(channel, message) => match self.topics.get(&channel) {
                Some(entry) if entry.subscribers > 0 => {
                    let addr = entry.addr;
                    self.forward(addr, reply.take(), |r| TopicMsg::Publish(message, r), ctx)
                }
                _ => Some(Value::Int(0)),
            },
            PartOp::TopicIdle(channel) => {
                if self.topics.get(&channel).is_some_and(|e| e.subscribers == 0) {
                    if let Some(entry) = self.topics.remove(&channel) {
                        ctx.stop(entry.addr.id());
                    }
                }
                None
            }
            _ => Some(misrouted()),
        }
    }

    /// SUBSCRIBE of one subscriber: starts the channel's topic agent when it has none.
    fn subscribe(
        &mut self,
        channel: Bytes,
        sub: Subscriber,
        reply: &mut Option<ReplyTo<Value>>,
        ctx: &mut Ctx<'_>,
    ) -> Option<Value> {
        let entry = match self.topics.get_mut(&channel) {
            Some(e) => e,
            None => {
                let topic = Topic::new(channel.clone(), self.directory.clone(), ctx.myself());
                match ctx.spawn(topic) {
                    Ok(addr) => self.topics.entry(channel.clone()).or_insert(TopicEntry { addr, subscribers: 0 }),
                    Err(e) => return Some(Value::error(format!("ERR cannot start the channel's topic agent: {e}"))),
                }
            }
        };
        entry.subscribers += 1;
        let addr = entry.addr;
        self.forward(addr, reply.take(), |r| TopicMsg::Subscribe(sub, r), ctx)
    }

    /// Sends a message carrying the reply token to a topic; a failed send answers with BUSY.
    fn forward(
        &mut self,
        to: Addr<TopicMsg>,
        reply: Option<ReplyTo<Value>>,
        make: impl FnOnce(ReplyTo<Value>) -> TopicMsg,
        ctx: &mut Ctx<'_>,
    ) -> Option<Value> {
        let token = reply?;
        if let Err(e) = ctx.send(to, make(token)) {
            match e.into_inner() {
                TopicMsg::Subscribe(_, r) | TopicMsg::Publish(_, r) => {
                    ctx.reply(r, Value::error("BUSY the channel's topic agent is overloaded; retry later"))
                }
                TopicMsg::Unsubscribe(..) => {}
            }
        }
        None
    }

    fn spawn(&mut self, kind: String, name: String, args: &[Bytes], ctx: &mut Ctx<'_>) -> Value {
        let Some(factory) = self.kinds.get(&kind).cloned() else {
            return Value::error(format!("ERR {}", self.kinds.unknown_kind(&kind)));
        };
        if ctx.lookup_local(&name).flatten().is_some() {
            return Value::error(format!("ERR agent name '{name}' is taken"));
        }
        let id = match factory.spawn(args, ctx) {
            Ok(id) => id,
            Err(e) => return Value::error(format!("ERR cannot spawn a '{kind}' agent: {e}")),
        };
        if let Err(e) = ctx.register_agent(&name, id) {
            ctx.stop(id);
            return Value::error(format!("ERR cannot register agent name '{name}': {e}"));
        }
        self.agents.insert(name, (kind, id));
        Value::Ok
    }

    /// Records agent `id` of `kind`, which the host spawned and registered as `name`.
    fn adopt(&mut self, kind: String, name: String, id: AgentId, ctx: &mut Ctx<'_>) -> Value {
        if ctx.lookup_local(&name).flatten() != Some(id) {
            return Value::error(format!("ERR agent name '{name}' is not registered to the agent to record"));
        }
        self.agents.insert(name, (kind, id));
        Value::Ok
    }
}

/// Whether `op` may add memory to the store: refused over budget under `noeviction`, and
/// preceded by eviction under `allkeys-lru`. DEL, reads and EXPIRE are not.
fn may_add_memory(op: &PartOp) -> bool {
    match op {
        PartOp::Set { .. } | PartOp::IncrBy(..) | PartOp::MSet(_) => true,
        PartOp::Key(cmd) => cmd.may_add_memory(),
        _ => false,
    }
}

/// A shard's [`KvStore`], shared by its partition agent and its connection tasks (one thread).
pub type SharedKv = Rc<RefCell<KvStore>>;

/// Runs a keyspace operation on `kv` at `now` (engine-clock milliseconds): GET, SET, DEL,
/// EXISTS, INCRBY, MGET, MSET, PEXPIRE, TTL, RESTORE, the [`KeyCmd`]s and batches of them.
/// The partition agent and the connections that run their own shard's keys inline both call
/// this one function, so both keep the memory limit: a write that may add memory first makes
/// room (evicting under `allkeys-lru`) or is answered `-OOM` (`noeviction`).
///
/// A write's record goes to the store's journal (when persistence is on); under
/// `fsync = "always"` its answer must wait for the record to be durable, which only the
/// partition does (`Partition::answer`), so connections do not run their keys inline then.
pub fn run_key_op(kv: &mut KvStore, op: PartOp, now: u64) -> Value {
    if may_add_memory(&op) {
        if let Err(oom) = kv.make_room(now) {
            return Value::error(oom.to_string());
        }
    }
    match op {
        PartOp::Get(key) => match kv.get_stored(&key, now) {
            Ok(v) => v.map_or(Value::Nil, Value::Stored),
            Err(e) => Value::error(e.to_string()),
        },
        PartOp::Set { key, value, condition, expiry, get } => match kv.set(key, value, (condition, expiry), get, now) {
            Err(e) => Value::error(e.to_string()),
            Ok((_, previous)) if get => previous.map_or(Value::Nil, Value::Bulk),
            Ok((true, _)) => Value::Ok,
            Ok((false, _)) => Value::Nil,
        },
        PartOp::Del(keys) => Value::Int(keys.iter().filter(|k| kv.del(k, now)).count() as i64),
        PartOp::Exists(keys) => Value::Int(keys.iter().filter(|k| kv.exists(k, now)).count() as i64),
        PartOp::IncrBy(key, by) => match kv.incr_by(key, by, now) {
            Ok(n) => Value::Int(n),
            Err(e) => Value::error(e.to_string()),
        },
        PartOp::MGet(keys) => {
            Value::Array(keys.iter().map(|k| kv.get(k, now).ok().flatten().map_or(Value::Nil, Value::Bulk)).collect())
        }
        PartOp::MSet(pairs) => {
            for (k, v) in pairs {
                let _ = kv.set(k, v, (SetCondition::Always, SetExpiry::Clear), false, now);
            }
            Value::Ok
        }
        PartOp::Expire(key, ms, condition) => Value::Int(i64::from(kv.expire(&key, ms, condition, now))),
        PartOp::Ttl(key, millis) => Value::Int(kv.ttl(&key, now).reply(millis)),
        PartOp::Restore(key, taken) => {
            kv.restore(key, taken, now);
            Value::Ok
        }
        PartOp::Key(cmd) => exec::run(kv, cmd, now),
        PartOp::Batch(ops) => Value::Array(ops.into_iter().map(|op| run_key_op(kv, op, now)).collect()),
        _ => misrouted(),
    }
}

/// The answer when an agent's mailbox refuses a request.
fn agent_busy(name: &str) -> Value {
    Value::error(format!("BUSY the mailbox of agent '{name}' is full; retry later"))
}

/// The answer to an operation handed to the wrong family function (a bug in `run`).
fn misrouted() -> Value {
    Value::error("ERR internal: an operation routed to the wrong handler")
}

fn no_such_agent(name: &str) -> Value {
    Value::error(format!("ERR no such agent '{name}'"))
}

impl Partition {
    /// Sends `value` through `token`, or holds it until the writes so far are durable.
    fn answer(&mut self, token: ReplyTo<Value>, value: Value, ctx: &mut Ctx<'_>) {
        let lsn = self.kv.borrow().lsn();
        match &mut self.log {
            Some(log) if log.hold && (lsn > log.durability.durable_lsn() || !log.held.is_empty()) => {
                log.held.hold(lsn, token, value);
                log.durability.want_notice();
            }
            _ => ctx.reply(token, value),
        }
    }

    /// After each message: releases the answers now durable, hands the buffered records to the
    /// writer, and starts or continues a compaction.
    fn end_turn(&mut self, ctx: &mut Ctx<'_>) {
        let Some(log) = &mut self.log else { return };
        log.held.release(&log.durability, ctx);
        let mut kv = self.kv.borrow_mut();
        let Some(journal) = kv.journal_mut() else { return };
        // A lost notice (a full mailbox) must not hold records back for good.
        log.held_back &= !journal.writer_idle();
        if journal.pending() && !log.flush_queued && !log.held_back {
            // Handed over once the messages queued now ran: one batch for the writer.
            let me = ctx.myself::<PartMsg>();
            log.flush_queued = ctx.send(me, PartMsg { op: PartOp::LogFlush, reply: None }).is_ok();
            if !log.flush_queued {
                log.held_back = journal.flush();
                // A shard that syncs its log itself just did: no notice will come to release
                // them (for the other writers this finds nothing new durable).
                log.held.release(&log.durability, ctx);
            }
        }
        if journal.rewrite_due() {
            journal.start_rewrite();
            let started = std::time::Instant::now();
            kv.rewrite_keys(&mut log.to_dump);
            let listed_us = started.elapsed().as_micros() as u64;
            tracing::info!(shard = ctx.shard(), keys = log.to_dump.len(), listed_us, "compacting the append-only log");
        }
        if kv.journal_mut().is_some_and(|j| j.rewriting()) && !log.step_queued {
            let me = ctx.myself::<PartMsg>();
            log.step_queued = ctx.send(me, PartMsg { op: PartOp::RewriteStep, reply: None }).is_ok();
        }
    }

    /// One step of a compaction: dumps the next keys, or finishes when none is left.
    fn rewrite_step(&mut self, now: u64) {
        let Some(log) = &mut self.log else { return };
        log.step_queued = false;
        let from = log.to_dump.len().saturating_sub(DUMP_KEYS_PER_STEP);
        let mut kv = self.kv.borrow_mut();
        kv.dump_keys(&log.to_dump[from..], now);
        log.to_dump.truncate(from);
        let done = log.to_dump.is_empty();
        if done {
            if let Some(j) = kv.journal_mut() {
                j.finish_rewrite();
            }
        }
    }
}

impl Agent for Partition {
    type Msg = PartMsg;

    fn handle(&mut self, msg: PartMsg, ctx: &mut Ctx<'_>) {
        let PartMsg { op, mut reply } = msg;
        if let Some(value) = self.run(op, &mut reply, ctx) {
            if let Some(token) = reply {
                self.answer(token, value, ctx);
            }
        }
        self.end_turn(ctx);
    }
}
