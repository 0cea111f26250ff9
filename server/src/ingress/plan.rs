//! Single-key commands turned into one partition operation: [`plan`].
//!
//! A request whose whole answer comes from the one shard that owns its key (GET, SET, the
//! INCR family, the EXPIRE family, TTL, TYPE, the hash commands...) becomes a [`PartOp`] that
//! [`crate::partition::run_key_op`] answers on that shard's store. The ingress agent sends it
//! as an ask; a connection runs it inline when its own shard owns the key, or squashes it with
//! the other requests of the same read for the same shard (see [`crate::conn`]). Both paths
//! call this one function, so a command's parsing lives here once.
//!
//! Invariants: the arity was checked by the connection (see [`crate::commands`]), so the
//! positional arguments read here exist; [`Plan::One`] carries only operations that
//! `run_key_op` answers (no reply token is forwarded, nothing outside the store is touched).

use super::options::{expire_after, not_an_integer, parse_expire, parse_getex, parse_set, Unit};
use crate::kinds::parse_i64;
use crate::kv::exec::KeyCmd;
use crate::kv::{SetCondition, SetExpiry};
use crate::partition::PartOp;
use crate::resp::Value;
use bytes::Bytes;
use nexus_engine::registry::{key_hash, owner_of_hash};
use std::mem::take;

/// What a request becomes.
pub enum Plan {
    /// Answered at once (its arguments are wrong).
    Answer(Value),
    /// One key operation on the shard that owns the key.
    One(usize, PartOp),
    /// Not a single-key command: the ingress agent's families run it (the arguments, given back).
    Other(Vec<Bytes>),
}

/// The shard that owns `key` among `shards`: the registry's keyed hash, the same on every
/// shard and for agent names, so a client cannot steer keys onto one shard.
pub fn owner(key: &[u8], shards: usize) -> usize {
    owner_of_hash(key_hash(key), shards)
}

/// Plans request `args` of command `name` (lower case, as [`crate::commands`] names it).
pub fn plan(name: &str, args: Vec<Bytes>, shards: usize) -> Plan {
    // Every single-key command has its key at position 1 (the arity check made sure it is there).
    let shard = || owner(&args[1], shards);
    let (shard, op) = match name {
        "get" | "set" | "incr" | "decr" | "incrby" | "decrby" => (shard(), string_op(name, args)),
        "setex" | "psetex" | "getex" | "getdel" | "append" | "strlen" | "incrbyfloat" => {
            (shard(), string_op_more(name, args))
        }
        "expire" | "pexpire" | "expireat" | "pexpireat" | "ttl" | "pttl" | "type" | "persist" => {
            (shard(), key_op(name, args))
        }
        "hset" | "hget" | "hmget" | "hgetall" | "hdel" | "hexists" | "hlen" | "hincrby" => {
            (shard(), hash_op(name, args))
        }
        _ => return Plan::Other(args),
    };
    match op {
        Ok(op) => Plan::One(shard, op),
        Err(value) => Plan::Answer(value),
    }
}

/// A planned operation, or the answer for bad arguments.
type Planned = Result<PartOp, Value>;

/// GET, SET, INCR, DECR, INCRBY, DECRBY.
fn string_op(name: &str, mut args: Vec<Bytes>) -> Planned {
    let key = take(&mut args[1]);
    let op = match name {
        "get" => PartOp::Get(key),
        "set" => {
            let (condition, expiry, get) = parse_set(&args)?;
            PartOp::Set { key, value: take(&mut args[2]), condition, expiry, get }
        }
        _ => {
            let by = match name {
                "incr" => Some(1),
                "decr" => Some(-1),
                "incrby" => parse_i64(&args[2]),
                _ => match parse_i64(&args[2]) {
                    Some(i64::MIN) => return Err(Value::error("ERR decrement would overflow")),
                    n => n.map(|n| -n),
                },
            };
            PartOp::IncrBy(key, by.ok_or_else(not_an_integer)?)
        }
    };
    Ok(op)
}

/// SETEX, PSETEX, GETDEL, GETEX, APPEND, STRLEN, INCRBYFLOAT.
fn string_op_more(name: &str, mut args: Vec<Bytes>) -> Planned {
    let key = take(&mut args[1]);
    let op = match name {
        "setex" | "psetex" => {
            let unit = if name == "setex" { Unit::Seconds } else { Unit::Millis };
            let ms = expire_after(&args[2], unit, name)?;
            PartOp::Set {
                key,
                value: take(&mut args[3]),
                condition: SetCondition::Always,
                expiry: SetExpiry::After(ms),
                get: false,
            }
        }
        "getex" => PartOp::Key(KeyCmd::GetEx(key, parse_getex(&args)?)),
        "getdel" => PartOp::Key(KeyCmd::GetDel(key)),
        "append" => PartOp::Key(KeyCmd::Append(key, take(&mut args[2]))),
        "strlen" => PartOp::Key(KeyCmd::StrLen(key)),
        _ => PartOp::Key(KeyCmd::IncrByFloat(key, take(&mut args[2]))),
    };
    Ok(op)
}

/// The EXPIRE family, TTL, PTTL, TYPE, PERSIST.
fn key_op(name: &str, mut args: Vec<Bytes>) -> Planned {
    Ok(match name {
        "expire" | "pexpire" | "expireat" | "pexpireat" => {
            let unit = match name {
                "expire" => Unit::Seconds,
                "pexpire" => Unit::Millis,
                "expireat" => Unit::UnixSeconds,
                _ => Unit::UnixMillis,
            };
            let (ms, condition) = parse_expire(&args, unit, name)?;
            PartOp::Expire(take(&mut args[1]), ms, condition)
        }
        "ttl" | "pttl" => PartOp::Ttl(take(&mut args[1]), name == "pttl"),
        "type" => PartOp::Key(KeyCmd::Type(take(&mut args[1]))),
        _ => PartOp::Key(KeyCmd::Persist(take(&mut args[1]))),
    })
}

/// HSET, HGET, HMGET, HGETALL, HDEL, HEXISTS, HLEN, HINCRBY.
fn hash_op(name: &str, mut args: Vec<Bytes>) -> Planned {
    let key = take(&mut args[1]);
    let cmd = match name {
        "hset" if args.len() % 2 == 1 => {
            return Err(Value::error("ERR wrong number of arguments for 'hset' command"));
        }
        "hset" => {
            let mut rest = args.drain(2..);
            let mut pairs = Vec::new();
            while let (Some(f), Some(v)) = (rest.next(), rest.next()) {
                pairs.push((f, v));
            }
            KeyCmd::HSet(key, pairs)
        }
        "hget" => KeyCmd::HGet(key, take(&mut args[2])),
        "hmget" => KeyCmd::HMGet(key, args.drain(2..).collect()),
        "hgetall" => KeyCmd::HGetAll(key),
        "hdel" => KeyCmd::HDel(key, args.drain(2..).collect()),
        "hexists" => KeyCmd::HExists(key, take(&mut args[2])),
        "hlen" => KeyCmd::HLen(key),
        _ => match parse_i64(&args[3]) {
            Some(by) => KeyCmd::HIncrBy(key, take(&mut args[2]), by),
            None => return Err(not_an_integer()),
        },
    };
    Ok(PartOp::Key(cmd))
}
