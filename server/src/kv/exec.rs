//! The per-key commands a partition runs on its [`KvStore`] once the ingress parsed them:
//! [`KeyCmd`], and [`run`], which turns one into its RESP answer.
//!
//! Invariants: the arguments are already valid (the ingress answered the malformed ones), save
//! the few whose error Redis reports only once the key is found (GETEX's expire time,
//! INCRBYFLOAT's increment); a type mismatch answers Redis's WRONGTYPE error and changes
//! nothing.

use super::strings::GetExpiry;
use super::{glob, KvStore, Stored};
use crate::resp::Value;
use bytes::Bytes;

/// One parsed per-key command (or per-shard step of KEYS and SCAN).
#[derive(Debug)]
pub enum KeyCmd {
    /// `HSET key field value [field value ...]`.
    HSet(Bytes, Vec<(Bytes, Bytes)>),
    /// `HGET key field`.
    HGet(Bytes, Bytes),
    /// `HMGET key field...`.
    HMGet(Bytes, Vec<Bytes>),
    /// `HGETALL key`.
    HGetAll(Bytes),
    /// `HDEL key field...`.
    HDel(Bytes, Vec<Bytes>),
    /// `HEXISTS key field`.
    HExists(Bytes, Bytes),
    /// `HLEN key`.
    HLen(Bytes),
    /// `HINCRBY key field n`.
    HIncrBy(Bytes, Bytes, i64),
    /// `TYPE key`.
    Type(Bytes),
    /// `PERSIST key`.
    Persist(Bytes),
    /// `GETDEL key`.
    GetDel(Bytes),
    /// `GETEX key [option]`: the option, or the error of a bad expire time (answered only
    /// when the key holds a string, as Redis does).
    GetEx(Bytes, Result<GetExpiry, Value>),
    /// `APPEND key value`.
    Append(Bytes, Bytes),
    /// `STRLEN key`.
    StrLen(Bytes),
    /// `INCRBYFLOAT key increment` (the increment unparsed: Redis checks the key first).
    IncrByFloat(Bytes, Bytes),
    /// KEYS' part on one shard: the matching keys.
    Keys(Bytes),
    /// SCAN's step on one shard: answers `[next position or -1, [keys]]`.
    Scan {
        /// The position to start from.
        from: u64,
        /// COUNT.
        count: usize,
        /// MATCH.
        pattern: Option<Bytes>,
        /// TYPE (lower case).
        kind: Option<Bytes>,
    },
}

fn wrong_type() -> Value {
    Value::error(super::WrongType.to_string())
}

fn bulk_or_nil(v: Option<Bytes>) -> Value {
    v.map_or(Value::Nil, Value::Bulk)
}

fn int(n: usize) -> Value {
    Value::Int(n as i64)
}

fn keys(keys: Vec<Bytes>) -> Value {
    Value::Array(keys.into_iter().map(Value::Bulk).collect())
}

/// Runs `cmd` on `kv` at `now_ms`; the answer.
pub fn run(kv: &mut KvStore, cmd: KeyCmd, now_ms: u64) -> Value {
    let r: Result<Value, Value> = match cmd {
        KeyCmd::HSet(key, pairs) => kv.hset(key, pairs, now_ms).map(int).map_err(|_| wrong_type()),
        KeyCmd::HGet(key, field) => kv.hget(&key, &field, now_ms).map(bulk_or_nil).map_err(|_| wrong_type()),
        KeyCmd::HMGet(key, fields) => kv
            .hmget(&key, &fields, now_ms)
            .map(|vs| Value::Array(vs.into_iter().map(bulk_or_nil).collect()))
            .map_err(|_| wrong_type()),
        KeyCmd::HGetAll(key) => kv
            .hgetall(&key, now_ms)
            .map(|pairs| Value::Map(pairs.into_iter().map(|(f, v)| (Value::Bulk(f), Value::Bulk(v))).collect()))
            .map_err(|_| wrong_type()),
        KeyCmd::HDel(key, fields) => kv.hdel(&key, &fields, now_ms).map(int).map_err(|_| wrong_type()),
        KeyCmd::HExists(key, field) => {
            kv.hexists(&key, &field, now_ms).map(|b| Value::Int(i64::from(b))).map_err(|_| wrong_type())
        }
        KeyCmd::HLen(key) => kv.hlen(&key, now_ms).map(int).map_err(|_| wrong_type()),
        KeyCmd::HIncrBy(key, field, by) => {
            kv.hincrby(key, field, by, now_ms).map(Value::Int).map_err(|e| Value::error(e.to_string()))
        }
        KeyCmd::Type(key) => Ok(Value::simple(kv.type_of(&key, now_ms))),
        KeyCmd::Persist(key) => Ok(Value::Int(i64::from(kv.persist(&key, now_ms)))),
        KeyCmd::GetDel(key) => kv.getdel(&key, now_ms).map(bulk_or_nil).map_err(|_| wrong_type()),
        KeyCmd::GetEx(key, expiry) => getex(kv, key, expiry, now_ms),
        KeyCmd::Append(key, tail) => kv.append(key, &tail, now_ms).map(int).map_err(|_| wrong_type()),
        KeyCmd::StrLen(key) => kv.strlen(&key, now_ms).map(int).map_err(|_| wrong_type()),
        KeyCmd::IncrByFloat(key, by) => {
            kv.incr_by_float(key, &by, now_ms).map(Value::Bulk).map_err(|e| Value::error(e.to_string()))
        }
        KeyCmd::Keys(pattern) => Ok(keys(kv.keys(&pattern, now_ms))),
        KeyCmd::Scan { from, count, pattern, kind } => {
            let keep = |k: &[u8], v: &Stored| {
                pattern.as_ref().map_or(true, |p| glob::matches(p, k))
                    && kind.as_ref().map_or(true, |t| t.as_ref() == v.type_name().as_bytes())
            };
            let step = kv.scan(from, count, now_ms, keep);
            let next = step.next.map_or(-1, |n| n as i64);
            Ok(Value::Array(vec![Value::Int(next), keys(step.keys)]))
        }
    };
    r.unwrap_or_else(|e| e)
}

/// GETEX: nil for a missing key, then the type's error, then the expire time's (Redis 7's
/// order).
fn getex(kv: &mut KvStore, key: Bytes, expiry: Result<GetExpiry, Value>, now_ms: u64) -> Result<Value, Value> {
    match kv.type_of(&key, now_ms) {
        "none" => return Ok(Value::Nil),
        "string" => {}
        _ => return Err(wrong_type()),
    }
    let expiry = expiry?;
    kv.getex(&key, expiry, now_ms).map(bulk_or_nil).map_err(|_| wrong_type())
}
