//! The engine commands, one function per family: strings, keys, server administration,
//! pub/sub and agents. Each turns a request into asks to the partitions that own its keys,
//! names or channels (`Ingress::one`, `Ingress::ask_one`, `Ingress::gather`), or answers at
//! once when the arguments are wrong.
//!
//! Invariants: the arity was checked by the connection (see [`crate::commands`]), so the
//! positional arguments a command reads exist; every path answers the request exactly once,
//! now or through an ask.

use super::combine::Combine;
use super::plan::{plan, Plan};
use super::{Ingress, Request, COMMAND_TIMEOUT};
use crate::commands::Spec;
use crate::directory::Subscriber;
use crate::kinds::parse_i64;
use crate::partition::PartOp;
use crate::resp::{Protocol, Value};
use bytes::Bytes;
use nexus_engine::agent::Ctx;
use std::mem::take;
use std::time::Duration;

/// The commands a family function handles.
enum Family {
    Strings,
    Keys,
    /// The single-key commands, all planned by `plan` before the families are asked.
    Single,
    Server,
    PubSub,
    Agents,
}

impl Family {
    fn of(name: &str) -> Option<Family> {
        Some(match name {
            "mget" | "mset" => Family::Strings,
            "get" | "set" | "incr" | "decr" | "incrby" | "decrby" | "setex" | "psetex" | "getdel" | "getex"
            | "append" | "strlen" | "incrbyfloat" | "expire" | "pexpire" | "expireat" | "pexpireat" | "ttl"
            | "pttl" | "type" | "persist" => Family::Single,
            "del" | "unlink" | "exists" | "keys" | "scan" | "rename" => Family::Keys,
            "hset" | "hget" | "hmget" | "hgetall" | "hdel" | "hexists" | "hlen" | "hincrby" => Family::Single,
            "dbsize" | "flushall" | "flushdb" | "info" | "bgrewriteaof" => Family::Server,
            "publish" | "subscribe" | "unsubscribe" => Family::PubSub,
            "agent.spawn" | "agent.send" | "agent.stop" | "agent.info" | "agent.ask" | "agent.list" => Family::Agents,
            _ => return None,
        })
    }
}

impl Ingress {
    /// Runs request `args` (its command already looked up by the connection as `spec`).
    pub(super) fn command(&mut self, req: Request, spec: &'static Spec, args: Vec<Bytes>, ctx: &mut Ctx<'_>) {
        let name = spec.name;
        let args = match plan(name, args, self.directory.shards()) {
            Plan::Answer(value) => return self.done(req, value),
            Plan::One(shard, op) => return self.one(req, shard, op, ctx),
            Plan::Other(args) => args,
        };
        match Family::of(name) {
            Some(Family::Strings) => self.string_command(req, name, args, ctx),
            Some(Family::Keys) => self.key_command(req, name, args, ctx),
            Some(Family::Server) => self.server_command(req, name, args, ctx),
            Some(Family::PubSub) => self.pubsub_command(req, name, args, ctx),
            Some(Family::Agents) => self.agent_command(req, name, args, ctx),
            Some(Family::Single) | None => self.unknown_command(req, &args),
        }
    }

    pub(super) fn unknown_command(&self, req: Request, args: &[Bytes]) {
        let shown = String::from_utf8_lossy(&args[0]).into_owned();
        self.done(req, Value::error(format!("ERR unknown command '{shown}'")))
    }

    /// MGET and MSET (the single-key string commands are planned in `plan`).
    fn string_command(&mut self, req: Request, name: &str, mut args: Vec<Bytes>, ctx: &mut Ctx<'_>) {
        match name {
            "mget" => self.mget(req, args.drain(1..).collect(), ctx),
            "mset" => self.mset(req, args, ctx),
            _ => self.unknown_command(req, &args),
        }
    }

    /// MGET: one MGET per owning shard, the values put back in the order of the keys.
    fn mget(&mut self, req: Request, keys: Vec<Bytes>, ctx: &mut Ctx<'_>) {
        let n = keys.len();
        let groups = self.group(keys);
        let mut positions = Vec::with_capacity(groups.len());
        let mut ops = Vec::with_capacity(groups.len());
        for (s, keys, pos) in groups {
            positions.push(pos);
            ops.push((s, PartOp::MGet(keys)));
        }
        self.gather(req, ops, Combine::MGet { positions, keys: n }, ctx);
    }

    /// MSET: one MSET per owning shard; `+OK` once every shard stored its pairs.
    fn mset(&mut self, req: Request, mut args: Vec<Bytes>, ctx: &mut Ctx<'_>) {
        if args.len() % 2 == 0 {
            return self.done(req, Value::error("ERR wrong number of arguments for 'mset' command"));
        }
        let shards = self.directory.shards();
        let mut per: Vec<Vec<(Bytes, Bytes)>> = vec![Vec::new(); shards];
        let mut rest = args.drain(1..);
        while let (Some(k), Some(v)) = (rest.next(), rest.next()) {
            per[self.owner(&k)].push((k, v));
        }
        drop(rest);
        let ops =
            per.into_iter().enumerate().filter(|(_, p)| !p.is_empty()).map(|(s, p)| (s, PartOp::MSet(p))).collect();
        self.gather(req, ops, Combine::AllOk, ctx);
    }

    /// DEL, UNLINK, EXISTS (the others: `keyspace_command`).
    fn key_command(&mut self, req: Request, name: &str, mut args: Vec<Bytes>, ctx: &mut Ctx<'_>) {
        match name {
            "del" | "unlink" | "exists" => {
                let exists = name == "exists";
                let groups = self.group(args.drain(1..).collect());
                let ops = groups
                    .into_iter()
                    .map(|(s, keys, _)| (s, if exists { PartOp::Exists(keys) } else { PartOp::Del(keys) }))
                    .collect();
                self.gather(req, ops, Combine::Sum, ctx);
            }
            _ => self.keyspace_command(req, name, args, ctx),
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

    /// DBSIZE, FLUSHALL, FLUSHDB, BGREWRITEAOF, INFO: gathered from every shard.
    fn server_command(&mut self, req: Request, name: &str, args: Vec<Bytes>, ctx: &mut Ctx<'_>) {
        match name {
            "dbsize" => {
                let ops = self.everywhere(|| PartOp::DbSize);
                self.gather(req, ops, Combine::Sum, ctx);
            }
            "flushall" | "flushdb" => {
                let mode = args.get(1).map(|m| m.to_ascii_uppercase());
                if args.len() > 2 || mode.is_some_and(|m| !matches!(m.as_slice(), b"ASYNC" | b"SYNC")) {
                    return self.done(req, Value::error("ERR syntax error"));
                }
                let ops = self.everywhere(|| PartOp::FlushAll);
                self.gather(req, ops, Combine::AllOk, ctx);
            }
            "bgrewriteaof" => {
                let ops = self.everywhere(|| PartOp::BgRewriteAof);
                self.gather(req, ops, Combine::BgRewriteAof, ctx);
            }
            "info" => {
                let sections = args[1..].iter().map(|s| String::from_utf8_lossy(s).to_ascii_lowercase()).collect();
                let ops = self.everywhere(|| PartOp::Info);
                self.gather(req, ops, Combine::Info { sections }, ctx);
            }
            _ => self.unknown_command(req, &args),
        }
    }

    /// PUBLISH, SUBSCRIBE, UNSUBSCRIBE.
    fn pubsub_command(&mut self, req: Request, name: &str, mut args: Vec<Bytes>, ctx: &mut Ctx<'_>) {
        match name {
            "publish" => {
                let shard = self.owner(&args[1]);
                self.one(req, shard, PartOp::Publish(take(&mut args[1]), take(&mut args[2])), ctx);
            }
            "subscribe" => self.subscribe(req, args.drain(1..).collect(), ctx),
            "unsubscribe" => self.unsubscribe(req, args.drain(1..).collect(), ctx),
            _ => self.unknown_command(req, &args),
        }
    }

    /// SUBSCRIBE: the replies are known at once; the owning shards of the channels new to this
    /// connection confirm the subscriptions before they are sent.
    fn subscribe(&mut self, req: Request, channels: Vec<Bytes>, ctx: &mut Ctx<'_>) {
        let conn = req.conn;
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
        self.gather(req, ops, Combine::Prebuilt(replies), ctx);
    }

    /// UNSUBSCRIBE (no channels: all of this connection's, in order).
    fn unsubscribe(&mut self, req: Request, channels: Vec<Bytes>, ctx: &mut Ctx<'_>) {
        let conn = req.conn;
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
        self.gather(req, ops, Combine::Prebuilt(replies), ctx);
    }

    /// AGENT.SPAWN, AGENT.SEND, AGENT.STOP, AGENT.INFO, AGENT.ASK, AGENT.LIST.
    fn agent_command(&mut self, req: Request, name: &str, mut args: Vec<Bytes>, ctx: &mut Ctx<'_>) {
        match name {
            "agent.spawn" => {
                let Some(agent) = utf8_name(&args[2]) else { return self.done(req, bad_name()) };
                let kind = String::from_utf8_lossy(&args[1]).into_owned();
                if self.kinds.get(&kind).is_none() {
                    return self.done(req, Value::error(format!("ERR {}", self.kinds.unknown_kind(&kind))));
                }
                let shard = self.owner(&args[2]);
                let op = PartOp::Spawn { kind, name: agent, args: args.drain(3..).collect() };
                self.one(req, shard, op, ctx);
            }
            "agent.send" | "agent.stop" | "agent.info" => {
                let Some(agent) = utf8_name(&args[1]) else { return self.done(req, bad_name()) };
                let op = match name {
                    "agent.send" => PartOp::AgentSend(agent, take(&mut args[2])),
                    "agent.stop" => PartOp::AgentStop(agent),
                    _ => PartOp::AgentInfo(agent),
                };
                let shard = self.owner(&args[1]);
                self.one(req, shard, op, ctx);
            }
            "agent.ask" => self.agent_ask(req, &args, ctx),
            "agent.list" => {
                let kind = args.get(1).map(|k| String::from_utf8_lossy(k).into_owned());
                let ops = self.everywhere(|| PartOp::AgentList(kind.clone()));
                self.gather(req, ops, Combine::Names, ctx);
            }
            _ => self.unknown_command(req, &args),
        }
    }

    /// AGENT.ASK name payload [timeout-ms]: the agent answers through the partition's token.
    fn agent_ask(&mut self, req: Request, args: &[Bytes], ctx: &mut Ctx<'_>) {
        let Some(agent) = utf8_name(&args[1]) else { return self.done(req, bad_name()) };
        let timeout = match args.get(3) {
            None => COMMAND_TIMEOUT,
            Some(t) => match parse_i64(t) {
                Some(ms) if ms > 0 => Duration::from_millis(ms as u64),
                _ => return self.done(req, Value::error("ERR timeout is not a positive integer (milliseconds)")),
            },
        };
        let shard = self.owner(&args[1]);
        let op = PartOp::AgentAsk(agent, args[2].clone());
        self.ask_one(req, shard, op, timeout, ctx);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_engine_command_has_a_family() {
        for (_, spec) in crate::commands::COMMANDS.iter().filter(|(_, s)| s.engine) {
            assert!(Family::of(spec.name).is_some(), "{} has no family", spec.name);
        }
    }
}
