//! The ingress agent: one per shard, the bridge from that shard's connections to the agents.
//!
//! It drains the front's job queue (see [`crate::front`]), turns each request into operations
//! on the partition agents that own its keys, names or channels (asks, local or over the mesh),
//! and, when the answers come back in `on_reply`, fills the connection's reply slot and wakes
//! its task. A multi-key command whose keys sit on several shards becomes one ask per shard and
//! a gather that assembles the answer in the order of the keys. It also receives the pub/sub
//! deliveries for its shard's subscribers from the topic agents.
//!
//! Invariants: every request handed over gets exactly one answer in its slot (a value, or an
//! error such as `-TIMEOUT` when an ask fails); a gather answers once all of its asks did.

use crate::commands::Spec;
use crate::directory::{Directory, Subscriber};
use crate::front::{ConnId, Front, Job, Slot};
use crate::kinds::{parse_i64, Kinds};
use crate::kv::{SetCondition, SetExpiry};
use crate::partition::{PartMsg, PartOp};
use crate::resp::{Protocol, Value};
use crate::stats::ShardServerStats;
use bytes::Bytes;
use hashbrown::HashMap;
use nexus_engine::agent::{Agent, Ctx, RequestId};
use nexus_engine::ask::{AskError, Reply};
use nexus_engine::registry::{key_hash, owner_of_hash};
use std::mem::take;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// How long a command waits for its owning shard before it is answered `-TIMEOUT`.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
/// Jobs handled per turn before the agent yields to the rest of the shard.
const JOBS_PER_TURN: usize = 512;

/// What the ingress agent receives as messages.
pub enum IngressMsg {
    /// The front has jobs.
    Poke,
    /// A topic's message for some of this shard's connections.
    Deliver {
        /// The channel.
        channel: Bytes,
        /// The message.
        message: Bytes,
        /// The subscribed connections.
        conns: Vec<ConnId>,
    },
}

/// An ask waiting for its answer.
enum Waiting {
    /// The whole answer of a request.
    One { conn: ConnId, seq: u64, timeout: Duration },
    /// One shard's part of a gather.
    Part { gather: u32, part: usize },
}

/// How a gather's parts make its answer.
enum Combine {
    /// Sum of integers (DEL, EXISTS, DBSIZE).
    Sum,
    /// `+OK` when every part is (MSET, FLUSHALL).
    AllOk,
    /// MGET: part `p` answered the keys at `positions[p]`, in order.
    MGet { positions: Vec<Vec<usize>>, keys: usize },
    /// The answer is known already; the parts only confirm (SUBSCRIBE, UNSUBSCRIBE).
    Prebuilt(Vec<Value>),
    /// AGENT.LIST: merge the sorted name lists.
    Names,
    /// INFO: the text is built from the parts' figures.
    Info { section: Option<String> },
}

struct Gather {
    conn: ConnId,
    seq: u64,
    remaining: usize,
    parts: Vec<Option<Value>>,
    combine: Combine,
}

/// See the module documentation.
pub struct Ingress {
    shard: usize,
    front: Rc<Front>,
    directory: Arc<Directory>,
    kinds: Arc<Kinds>,
    waiting: HashMap<u64, Waiting>,
    gathers: HashMap<u32, Gather>,
    next_gather: u32,
    started: std::time::Instant,
    info: Rc<InfoContext>,
}

/// Static facts INFO reports.
pub struct InfoContext {
    /// `executor` name.
    pub executor: &'static str,
    /// The RESP port.
    pub port: u16,
}

impl Ingress {
    /// The ingress agent of shard `shard`.
    pub fn new(
        shard: usize,
        front: Rc<Front>,
        directory: Arc<Directory>,
        kinds: Arc<Kinds>,
        info: Rc<InfoContext>,
    ) -> Self {
        Self {
            shard,
            front,
            directory,
            kinds,
            waiting: HashMap::new(),
            gathers: HashMap::new(),
            next_gather: 0,
            started: std::time::Instant::now(),
            info,
        }
    }

    fn stats(&self) -> &ShardServerStats {
        self.directory.shard_stats(self.shard)
    }

    fn answer(&self, conn: ConnId, seq: u64, slot: Slot) {
        self.front.with(conn, |c| {
            if c.answer(seq, slot) {
                c.wake();
            }
        });
    }

    fn protocol(&self, conn: ConnId) -> Protocol {
        self.front.with(conn, |c| c.protocol).unwrap_or_default()
    }

    /// Asks shard `shard`'s partition; a failure to send answers `waiting` at once.
    fn ask(&mut self, shard: usize, op: PartOp, waiting: Waiting, timeout: Duration, ctx: &mut Ctx<'_>) {
        let Some(part) = self.directory.partition(shard) else {
            self.settle(waiting, Err(Value::error("LOADING the server is still starting")));
            return;
        };
        match ctx.ask_untyped(part, timeout, |reply| PartMsg { op, reply: Some(reply) }) {
            Ok(request) => {
                self.waiting.insert(request.to_bits(), waiting);
            }
            Err(_) => self.settle(waiting, Err(Value::error("BUSY the way to the key's shard is full; retry later"))),
        }
    }

    /// Records an answer (or a failure) for what was waiting.
    fn settle(&mut self, waiting: Waiting, result: Result<Value, Value>) {
        let value = result.unwrap_or_else(|e| e);
        match waiting {
            Waiting::One { conn, seq, .. } => self.answer(conn, seq, Slot::One(value)),
            Waiting::Part { gather, part } => {
                let Some(g) = self.gathers.get_mut(&gather) else { return };
                g.parts[part] = Some(value);
                g.remaining -= 1;
                if g.remaining == 0 {
                    if let Some(g) = self.gathers.remove(&gather) {
                        let (conn, seq) = (g.conn, g.seq);
                        let slot = self.combine(g);
                        self.answer(conn, seq, slot);
                    }
                }
            }
        }
    }

    fn combine(&self, g: Gather) -> Slot {
        let parts: Vec<Value> = g.parts.into_iter().map(|p| p.unwrap_or(Value::Nil)).collect();
        if let Some(err) = parts.iter().find(|p| matches!(p, Value::Error(_))) {
            if !matches!(g.combine, Combine::Prebuilt(_)) {
                return Slot::One(err.clone());
            }
        }
        match g.combine {
            Combine::Sum => {
                Slot::One(Value::Int(parts.iter().map(|p| if let Value::Int(n) = p { *n } else { 0 }).sum()))
            }
            Combine::AllOk => Slot::One(Value::Ok),
            Combine::MGet { positions, keys } => {
                let mut out = vec![Value::Nil; keys];
                for (part, pos) in parts.into_iter().zip(positions) {
                    if let Value::Array(values) = part {
                        for (v, p) in values.into_iter().zip(pos) {
                            out[p] = v;
                        }
                    }
                }
                Slot::One(Value::Array(out))
            }
            Combine::Prebuilt(values) => {
                if let Some(err) = parts.iter().find(|p| matches!(p, Value::Error(_))) {
                    return Slot::One(err.clone());
                }
                Slot::Many(values)
            }
            Combine::Names => {
                let mut names: Vec<Value> = Vec::new();
                for p in parts {
                    if let Value::Array(v) = p {
                        names.extend(v);
                    }
                }
                names.sort_by(|a, b| match (a, b) {
                    (Value::Bulk(x), Value::Bulk(y)) => x.cmp(y),
                    _ => std::cmp::Ordering::Equal,
                });
                Slot::One(Value::Array(names))
            }
            Combine::Info { section } => {
                Slot::One(Value::Verbatim(Bytes::from(self.info_text(&parts, section.as_deref()))))
            }
        }
    }

    /// Starts a gather over `ops` (one per shard), answering slot `seq` of `conn` at the end.
    fn gather(&mut self, conn: ConnId, seq: u64, ops: Vec<(usize, PartOp)>, combine: Combine, ctx: &mut Ctx<'_>) {
        if ops.is_empty() {
            let g = Gather { conn, seq, remaining: 0, parts: Vec::new(), combine };
            let slot = self.combine(g);
            self.answer(conn, seq, slot);
            return;
        }
        let id = self.next_gather;
        self.next_gather = self.next_gather.wrapping_add(1);
        self.gathers.insert(
            id,
            Gather { conn, seq, remaining: ops.len(), parts: (0..ops.len()).map(|_| None).collect(), combine },
        );
        for (part, (shard, op)) in ops.into_iter().enumerate() {
            self.ask(shard, op, Waiting::Part { gather: id, part }, COMMAND_TIMEOUT, ctx);
        }
    }

    /// The shard that owns `key`: the registry's keyed hash under the process key, the same
    /// on every shard and for agent names, so a client cannot steer keys onto one shard.
    fn owner(&self, key: &[u8]) -> usize {
        owner_of_hash(key_hash(key), self.directory.shards())
    }

    /// One op per shard, over every shard.
    fn everywhere(&self, make: impl Fn() -> PartOp) -> Vec<(usize, PartOp)> {
        (0..self.directory.shards()).map(|s| (s, make())).collect()
    }

    fn run_job(&mut self, job: Job, ctx: &mut Ctx<'_>) {
        match job {
            Job::Closed(conn) => {
                let channels = self.front.with(conn, |c| std::mem::take(&mut c.channels)).unwrap_or_default();
                let sub = Subscriber { shard: self.shard, conn };
                for channel in channels {
                    let owner = self.owner(&channel);
                    if let Some(part) = self.directory.partition(owner) {
                        let _ = ctx.send(part, PartMsg { op: PartOp::Unsubscribe(channel, sub), reply: None });
                    }
                }
                self.front.close(conn);
            }
            Job::Command { conn, seq, spec, args } => self.command(conn, seq, spec, args, ctx),
        }
    }

    /// Asks shard `shard`'s partition for the whole answer of a request.
    fn one(&mut self, conn: ConnId, seq: u64, shard: usize, op: PartOp, ctx: &mut Ctx<'_>) {
        self.ask(shard, op, Waiting::One { conn, seq, timeout: COMMAND_TIMEOUT }, COMMAND_TIMEOUT, ctx);
    }

    /// Runs request `args` (its command already looked up by the connection as `spec`).
    fn command(&mut self, conn: ConnId, seq: u64, spec: &'static Spec, mut args: Vec<Bytes>, ctx: &mut Ctx<'_>) {
        let name = spec.name;
        let done = |this: &Self, v: Value| this.answer(conn, seq, Slot::One(v));
        match name {
            "get" => {
                let shard = self.owner(&args[1]);
                self.one(conn, seq, shard, PartOp::Get(take(&mut args[1])), ctx);
            }
            "set" => match parse_set(&args) {
                Ok((condition, expiry, get)) => {
                    let shard = self.owner(&args[1]);
                    let op = PartOp::Set { key: take(&mut args[1]), value: take(&mut args[2]), condition, expiry, get };
                    self.one(conn, seq, shard, op, ctx);
                }
                Err(e) => done(self, e),
            },
            "incr" | "decr" | "incrby" | "decrby" => {
                let by = match name {
                    "incr" => Some(1),
                    "decr" => Some(-1),
                    "incrby" => parse_i64(&args[2]),
                    _ => parse_i64(&args[2]).and_then(i64::checked_neg),
                };
                match by {
                    Some(by) => {
                        let shard = self.owner(&args[1]);
                        self.one(conn, seq, shard, PartOp::IncrBy(take(&mut args[1]), by), ctx);
                    }
                    None => done(self, Value::error("ERR value is not an integer or out of range")),
                }
            }
            "del" | "unlink" | "exists" => {
                let exists = name == "exists";
                let groups = self.group(args.drain(1..).collect());
                let ops = groups
                    .into_iter()
                    .map(|(s, keys, _)| (s, if exists { PartOp::Exists(keys) } else { PartOp::Del(keys) }))
                    .collect();
                self.gather(conn, seq, ops, Combine::Sum, ctx);
            }
            "mget" => {
                let keys: Vec<Bytes> = args.drain(1..).collect();
                let n = keys.len();
                let groups = self.group(keys);
                let mut positions = Vec::with_capacity(groups.len());
                let mut ops = Vec::with_capacity(groups.len());
                for (s, keys, pos) in groups {
                    positions.push(pos);
                    ops.push((s, PartOp::MGet(keys)));
                }
                self.gather(conn, seq, ops, Combine::MGet { positions, keys: n }, ctx);
            }
            "mset" => {
                if args.len() % 2 == 0 {
                    return done(self, Value::error("ERR wrong number of arguments for 'mset' command"));
                }
                let shards = self.directory.shards();
                let mut per: Vec<Vec<(Bytes, Bytes)>> = vec![Vec::new(); shards];
                let mut rest = args.drain(1..);
                while let (Some(k), Some(v)) = (rest.next(), rest.next()) {
                    per[self.owner(&k)].push((k, v));
                }
                drop(rest);
                let ops = per
                    .into_iter()
                    .enumerate()
                    .filter(|(_, p)| !p.is_empty())
                    .map(|(s, p)| (s, PartOp::MSet(p)))
                    .collect();
                self.gather(conn, seq, ops, Combine::AllOk, ctx);
            }
            "expire" | "pexpire" => match parse_i64(&args[2]) {
                Some(n) => {
                    let ms = if name == "expire" { n.saturating_mul(1000) } else { n };
                    let shard = self.owner(&args[1]);
                    self.one(conn, seq, shard, PartOp::Expire(take(&mut args[1]), ms.max(0) as u64), ctx);
                }
                None => done(self, Value::error("ERR value is not an integer or out of range")),
            },
            "ttl" | "pttl" => {
                let shard = self.owner(&args[1]);
                self.one(conn, seq, shard, PartOp::Ttl(take(&mut args[1]), name == "pttl"), ctx);
            }
            "dbsize" => {
                let ops = self.everywhere(|| PartOp::DbSize);
                self.gather(conn, seq, ops, Combine::Sum, ctx);
            }
            "flushall" | "flushdb"
                if args.get(1).is_some_and(|m| !matches!(m.to_ascii_uppercase().as_slice(), b"ASYNC" | b"SYNC")) =>
            {
                done(self, Value::error("ERR syntax error"))
            }
            "flushall" | "flushdb" => {
                let ops = self.everywhere(|| PartOp::FlushAll);
                self.gather(conn, seq, ops, Combine::AllOk, ctx);
            }
            "info" => {
                let section = args.get(1).map(|s| String::from_utf8_lossy(s).to_ascii_lowercase());
                let ops = self.everywhere(|| PartOp::Info);
                self.gather(conn, seq, ops, Combine::Info { section }, ctx);
            }
            "publish" => {
                let shard = self.owner(&args[1]);
                self.one(conn, seq, shard, PartOp::Publish(take(&mut args[1]), take(&mut args[2])), ctx);
            }
            "subscribe" => self.subscribe(conn, seq, args.drain(1..).collect(), ctx),
            "unsubscribe" => self.unsubscribe(conn, seq, args.drain(1..).collect(), ctx),
            "agent.spawn" => {
                let Some(name) = utf8_name(&args[2]) else { return done(self, bad_name()) };
                let kind = String::from_utf8_lossy(&args[1]).into_owned();
                if self.kinds.get(&kind).is_none() {
                    return done(self, Value::error(format!("ERR unknown agent kind '{kind}'")));
                }
                let shard = self.owner(&args[2]);
                let op = PartOp::Spawn { kind, name, args: args.drain(3..).collect() };
                self.one(conn, seq, shard, op, ctx);
            }
            "agent.send" | "agent.stop" | "agent.info" => {
                let Some(agent) = utf8_name(&args[1]) else { return done(self, bad_name()) };
                let op = match name {
                    "agent.send" => PartOp::AgentSend(agent, take(&mut args[2])),
                    "agent.stop" => PartOp::AgentStop(agent),
                    _ => PartOp::AgentInfo(agent),
                };
                let shard = self.owner(&args[1]);
                self.one(conn, seq, shard, op, ctx);
            }
            "agent.ask" => {
                let Some(agent) = utf8_name(&args[1]) else { return done(self, bad_name()) };
                let timeout = match args.get(3) {
                    None => COMMAND_TIMEOUT,
                    Some(t) => match parse_i64(t) {
                        Some(ms) if ms > 0 => Duration::from_millis(ms as u64),
                        _ => return done(self, Value::error("ERR timeout is not a positive integer (milliseconds)")),
                    },
                };
                let shard = self.owner(&args[1]);
                let op = PartOp::AgentAsk(agent, args[2].clone());
                self.ask(shard, op, Waiting::One { conn, seq, timeout }, timeout, ctx);
            }
            "agent.list" => {
                let kind = args.get(1).map(|k| String::from_utf8_lossy(k).into_owned());
                let ops = self.everywhere(|| PartOp::AgentList(kind.clone()));
                self.gather(conn, seq, ops, Combine::Names, ctx);
            }
            _ => {
                let shown = String::from_utf8_lossy(&args[0]).into_owned();
                done(self, Value::error(format!("ERR unknown command '{shown}'")))
            }
        }
    }

    /// Keys grouped by owning shard: (shard, keys, their positions in the request).
    fn group(&self, keys: Vec<Bytes>) -> Vec<(usize, Vec<Bytes>, Vec<usize>)> {
        let shards = self.directory.shards();
        let mut per: Vec<(Vec<Bytes>, Vec<usize>)> = vec![(Vec::new(), Vec::new()); shards];
        for (i, k) in keys.into_iter().enumerate() {
            let s = self.owner(&k);
            per[s].0.push(k);
            per[s].1.push(i);
        }
        per.into_iter().enumerate().filter(|(_, (k, _))| !k.is_empty()).map(|(s, (k, p))| (s, k, p)).collect()
    }

    fn subscribe(&mut self, conn: ConnId, seq: u64, channels: Vec<Bytes>, ctx: &mut Ctx<'_>) {
        let protocol = self.protocol(conn);
        let mut replies = Vec::with_capacity(channels.len());
        let mut ops = Vec::new();
        let sub = Subscriber { shard: self.shard, conn };
        for channel in channels {
            let added = self.front.with(conn, |c| {
                let new = c.channels.insert(channel.clone());
                (new, c.channels.len())
            });
            let Some((new, count)) = added else { return };
            replies.push(pubsub_reply(protocol, "subscribe", Some(channel.clone()), count));
            if new {
                ops.push((self.owner(&channel), PartOp::Subscribe(channel, sub)));
            }
        }
        self.gather(conn, seq, ops, Combine::Prebuilt(replies), ctx);
    }

    fn unsubscribe(&mut self, conn: ConnId, seq: u64, channels: Vec<Bytes>, ctx: &mut Ctx<'_>) {
        let protocol = self.protocol(conn);
        let channels = if channels.is_empty() {
            let mut all: Vec<Bytes> =
                self.front.with(conn, |c| c.channels.iter().cloned().collect()).unwrap_or_default();
            all.sort();
            all
        } else {
            channels
        };
        let sub = Subscriber { shard: self.shard, conn };
        let mut replies = Vec::with_capacity(channels.len().max(1));
        let mut ops = Vec::new();
        for channel in channels {
            let removed = self.front.with(conn, |c| (c.channels.remove(&channel), c.channels.len()));
            let Some((was, count)) = removed else { return };
            replies.push(pubsub_reply(protocol, "unsubscribe", Some(channel.clone()), count));
            if was {
                ops.push((self.owner(&channel), PartOp::Unsubscribe(channel, sub)));
            }
        }
        if replies.is_empty() {
            replies.push(pubsub_reply(protocol, "unsubscribe", None, 0));
        }
        self.gather(conn, seq, ops, Combine::Prebuilt(replies), ctx);
    }

    fn deliver(&mut self, channel: Bytes, message: Bytes, conns: Vec<ConnId>) {
        let (mut delivered, mut dropped) = (0, 0);
        for conn in conns {
            let written = self.front.with(conn, |c| {
                if !c.channels.contains(&channel) {
                    return false;
                }
                let parts = vec![Value::bulk("message"), Value::Bulk(channel.clone()), Value::Bulk(message.clone())];
                let push = match c.protocol {
                    Protocol::Resp3 => Value::Push(parts),
                    Protocol::Resp2 => Value::Array(parts),
                };
                push.encode(c.protocol, &mut c.pushes);
                c.wake();
                true
            });
            if written == Some(true) {
                delivered += 1;
            } else {
                dropped += 1;
            }
        }
        ShardServerStats::add(&self.stats().pubsub_delivered, delivered);
        ShardServerStats::add(&self.stats().pubsub_dropped, dropped);
    }

    /// INFO's text from every shard's `[keys, expires, sent, delivered, dead, agents]`.
    fn info_text(&self, parts: &[Value], section: Option<&str>) -> String {
        use std::fmt::Write;
        let figures: Vec<Vec<i64>> = parts
            .iter()
            .map(|p| match p {
                Value::Array(v) => v.iter().map(|x| if let Value::Int(n) = x { *n } else { 0 }).collect(),
                _ => vec![0; 6],
            })
            .collect();
        let totals = self.directory.totals();
        let want =
            |name: &str| section.map_or(true, |s| s == "all" || s == "everything" || s == "default" || s == name);
        let mut text = String::new();
        if want("server") {
            let _ = write!(
                text,
                "# Server\r\nnexus_version:{}\r\nredis_version:7.0.0\r\nredis_mode:standalone\r\nshards:{}\r\nexecutor:{}\r\ntcp_port:{}\r\nuptime_in_seconds:{}\r\n\r\n",
                env!("CARGO_PKG_VERSION"),
                self.directory.shards(),
                self.info.executor,
                self.info.port,
                self.started.elapsed().as_secs()
            );
        }
        if want("clients") {
            let _ = write!(
                text,
                "# Clients\r\nconnected_clients:{}\r\nrejected_max_clients:{}\r\nslow_clients_disconnected:{}\r\nidle_clients_closed:{}\r\n\r\n",
                totals.connections, totals.rejected_max_clients, totals.slow_clients, totals.idle_closed
            );
        }
        if want("stats") {
            let dead: i64 = figures.iter().map(|f| f.get(4).copied().unwrap_or(0)).sum();
            let _ = write!(
                text,
                "# Stats\r\ntotal_commands_processed:{}\r\ntotal_connections_received:{}\r\nprotocol_errors:{}\r\nauth_failures:{}\r\npubsub_delivered:{}\r\npubsub_dropped:{}\r\ndead_letters:{}\r\n",
                totals.commands, totals.connections_total, totals.protocol_errors, totals.auth_failures, totals.pubsub_delivered, totals.pubsub_dropped, dead
            );
            for (shard, f) in figures.iter().enumerate() {
                let conns = self.directory.shard_stats(shard).snapshot().connections;
                let _ = write!(
                    text,
                    "shard{shard}:sent={},delivered={},dead_letters={},agents={},connections={conns}\r\n",
                    f.get(2).unwrap_or(&0),
                    f.get(3).unwrap_or(&0),
                    f.get(4).unwrap_or(&0),
                    f.get(5).unwrap_or(&0)
                );
            }
            text.push_str("\r\n");
        }
        if want("keyspace") {
            let keys: i64 = figures.iter().map(|f| f.first().copied().unwrap_or(0)).sum();
            let expires: i64 = figures.iter().map(|f| f.get(1).copied().unwrap_or(0)).sum();
            text.push_str("# Keyspace\r\n");
            if keys > 0 {
                let _ = write!(text, "db0:keys={keys},expires={expires}\r\n");
            }
        }
        text
    }
}

fn utf8_name(bytes: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(bytes).ok()?;
    (!s.is_empty() && s.len() <= nexus_engine::registry::MAX_NAME_BYTES).then(|| s.to_owned())
}

fn bad_name() -> Value {
    Value::error(format!("ERR agent names are UTF-8 text of 1 to {} bytes", nexus_engine::registry::MAX_NAME_BYTES))
}

/// `[kind, channel, count]`, a push in RESP3.
fn pubsub_reply(protocol: Protocol, kind: &'static str, channel: Option<Bytes>, count: usize) -> Value {
    let parts = vec![Value::bulk(kind), channel.map_or(Value::Nil, Value::Bulk), Value::Int(count as i64)];
    match protocol {
        Protocol::Resp3 => Value::Push(parts),
        Protocol::Resp2 => Value::Array(parts),
    }
}

/// SET's options: condition, expiry, GET.
fn parse_set(args: &[Bytes]) -> Result<(SetCondition, SetExpiry, bool), Value> {
    let syntax = || Value::error("ERR syntax error");
    let mut condition = SetCondition::Always;
    let mut expiry = SetExpiry::Clear;
    let mut get = false;
    let mut i = 3;
    while i < args.len() {
        let opt = args[i].to_ascii_uppercase();
        match opt.as_slice() {
            b"NX" if condition == SetCondition::Always => condition = SetCondition::IfMissing,
            b"XX" if condition == SetCondition::Always => condition = SetCondition::IfExists,
            b"GET" => get = true,
            b"KEEPTTL" if expiry == SetExpiry::Clear => expiry = SetExpiry::Keep,
            b"EX" | b"PX" if expiry == SetExpiry::Clear => {
                let n = args.get(i + 1).ok_or_else(syntax)?;
                let n = parse_i64(n).ok_or_else(|| Value::error("ERR value is not an integer or out of range"))?;
                if n <= 0 {
                    return Err(Value::error("ERR invalid expire time in 'set' command"));
                }
                let ms = if opt.as_slice() == b"EX" { n.saturating_mul(1000) } else { n };
                expiry = SetExpiry::After(ms as u64);
                i += 1;
            }
            _ => return Err(syntax()),
        }
        i += 1;
    }
    Ok((condition, expiry, get))
}

impl Agent for Ingress {
    type Msg = IngressMsg;

    fn handle(&mut self, msg: IngressMsg, ctx: &mut Ctx<'_>) {
        match msg {
            IngressMsg::Poke => {
                for _ in 0..JOBS_PER_TURN {
                    let job = self.front.jobs.borrow_mut().pop_front();
                    match job {
                        Some(job) => self.run_job(job, ctx),
                        None => break,
                    }
                }
                if self.front.jobs.borrow().is_empty() {
                    self.front.poke_pending.set(false);
                } else {
                    // More than one turn's worth: continue in the next pass.
                    let me = nexus_engine::agent::Addr::<IngressMsg>::from_id(ctx.id());
                    if ctx.send(me, IngressMsg::Poke).is_err() {
                        self.front.poke_pending.set(false);
                    }
                }
            }
            IngressMsg::Deliver { channel, message, conns } => self.deliver(channel, message, conns),
        }
        ctx.yield_to_executor();
    }

    fn on_reply(&mut self, request: RequestId, reply: Result<Reply, AskError>, ctx: &mut Ctx<'_>) {
        let Some(waiting) = self.waiting.remove(&request.to_bits()) else { return };
        let result = match reply {
            Ok(r) => r.take::<Value>().map_err(|_| Value::error("ERR internal: an answer of the wrong type")),
            Err(AskError::Timeout) => {
                let ms = match &waiting {
                    Waiting::One { timeout, .. } => timeout.as_millis(),
                    Waiting::Part { .. } => COMMAND_TIMEOUT.as_millis(),
                };
                Err(Value::error(format!("TIMEOUT no answer within {ms} ms")))
            }
            Err(AskError::ShuttingDown) => Err(Value::error("ERR the server is shutting down")),
            Err(e) => Err(Value::error(format!("ERR {e}"))),
        };
        self.settle(waiting, result);
        ctx.yield_to_executor();
    }
}
