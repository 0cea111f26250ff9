//! The command table: every command the server knows, its arity, and where it runs.
//!
//! Arity follows Redis: a positive number is the exact argument count (the name included), a
//! negative one the minimum; `max` bounds commands with optional arguments. Connection commands
//! are answered by the connection task; engine commands go to the shard's ingress agent.
//! Arity, key positions and flags are redis-server 7's, so `COMMAND INFO` answers as Redis's
//! first six fields do (the differential test `tests/redis_diff.rs` compares them).

use crate::resp::Value;

/// One command.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// Lower-case name, as error messages show it.
    pub name: &'static str,
    /// Redis arity.
    pub arity: i32,
    /// Most arguments accepted (0 = no bound beyond arity).
    pub max: usize,
    /// Executed by the agents (true) or by the connection (false).
    pub engine: bool,
    /// Positions of the first and last key, and the step (0, 0, 0: no key).
    pub keys: (i32, i32, i32),
    /// Redis's command flags, as `COMMAND INFO` shows them (`readonly`, `write`, `fast`...).
    pub flags: &'static [&'static str],
}

impl Spec {
    /// Whether `n` arguments (the name included) fit.
    pub fn arity_ok(&self, n: usize) -> bool {
        let ok = if self.arity >= 0 { n == self.arity as usize } else { n >= self.arity.unsigned_abs() as usize };
        ok && (self.max == 0 || n <= self.max)
    }
}

const fn c(
    name: &'static str,
    arity: i32,
    max: usize,
    engine: bool,
    keys: (i32, i32, i32),
    flags: &'static [&'static str],
) -> Spec {
    Spec { name, arity, max, engine, keys, flags }
}

// Redis 7's flag sets, as its `COMMAND INFO` reports them.
const RO: &[&str] = &["readonly"];
const RO_FAST: &[&str] = &["readonly", "fast"];
const W: &[&str] = &["write"];
const W_FAST: &[&str] = &["write", "fast"];
const W_OOM: &[&str] = &["write", "denyoom"];
const W_OOM_FAST: &[&str] = &["write", "denyoom", "fast"];
const FAST: &[&str] = &["fast"];
const CONN: &[&str] = &["loading", "stale", "fast"];
const NO_AUTH: &[&str] = &["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"];
const ADMIN: &[&str] = &["loading", "stale"];
const BACKGROUND: &[&str] = &["admin", "noscript", "no_async_loading"];
const NONE: &[&str] = &[];
const PUBLISH: &[&str] = &["pubsub", "loading", "stale", "fast"];
const SUBSCRIBE: &[&str] = &["pubsub", "noscript", "loading", "stale"];

/// Every command, by upper-case name.
pub const COMMANDS: &[(&[u8], Spec)] = &[
    (b"PING", c("ping", -1, 2, false, (0, 0, 0), FAST)),
    (b"ECHO", c("echo", 2, 0, false, (0, 0, 0), CONN)),
    (b"HELLO", c("hello", -1, 0, false, (0, 0, 0), NO_AUTH)),
    (b"QUIT", c("quit", -1, 0, false, (0, 0, 0), NO_AUTH)),
    (b"RESET", c("reset", 1, 0, false, (0, 0, 0), NO_AUTH)),
    (b"SELECT", c("select", 2, 0, false, (0, 0, 0), CONN)),
    (b"AUTH", c("auth", -2, 3, false, (0, 0, 0), NO_AUTH)),
    (b"COMMAND", c("command", -1, 0, false, (0, 0, 0), ADMIN)),
    (b"CLIENT", c("client", -2, 0, false, (0, 0, 0), NONE)),
    (b"CONFIG", c("config", -2, 0, false, (0, 0, 0), NONE)),
    (b"NEXUS.TRACE", c("nexus.trace", -2, 3, false, (0, 0, 0), ADMIN)),
    (b"INFO", c("info", -1, 0, true, (0, 0, 0), ADMIN)),
    (b"DBSIZE", c("dbsize", 1, 0, true, (0, 0, 0), RO_FAST)),
    (b"FLUSHALL", c("flushall", -1, 0, true, (0, 0, 0), W)),
    (b"FLUSHDB", c("flushdb", -1, 0, true, (0, 0, 0), W)),
    (b"BGREWRITEAOF", c("bgrewriteaof", 1, 0, true, (0, 0, 0), BACKGROUND)),
    (b"GET", c("get", 2, 0, true, (1, 1, 1), RO_FAST)),
    (b"SET", c("set", -3, 0, true, (1, 1, 1), W_OOM)),
    (b"DEL", c("del", -2, 0, true, (1, -1, 1), W)),
    (b"UNLINK", c("unlink", -2, 0, true, (1, -1, 1), W_FAST)),
    (b"EXISTS", c("exists", -2, 0, true, (1, -1, 1), RO_FAST)),
    (b"INCR", c("incr", 2, 0, true, (1, 1, 1), W_OOM_FAST)),
    (b"DECR", c("decr", 2, 0, true, (1, 1, 1), W_OOM_FAST)),
    (b"INCRBY", c("incrby", 3, 0, true, (1, 1, 1), W_OOM_FAST)),
    (b"DECRBY", c("decrby", 3, 0, true, (1, 1, 1), W_OOM_FAST)),
    (b"MGET", c("mget", -2, 0, true, (1, -1, 1), RO_FAST)),
    (b"MSET", c("mset", -3, 0, true, (1, -1, 2), W_OOM)),
    (b"EXPIRE", c("expire", -3, 0, true, (1, 1, 1), W_FAST)),
    (b"PEXPIRE", c("pexpire", -3, 0, true, (1, 1, 1), W_FAST)),
    (b"TTL", c("ttl", 2, 0, true, (1, 1, 1), RO_FAST)),
    (b"PTTL", c("pttl", 2, 0, true, (1, 1, 1), RO_FAST)),
    (b"HSET", c("hset", -4, 0, true, (1, 1, 1), W_OOM_FAST)),
    (b"HGET", c("hget", 3, 0, true, (1, 1, 1), RO_FAST)),
    (b"HMGET", c("hmget", -3, 0, true, (1, 1, 1), RO_FAST)),
    (b"HGETALL", c("hgetall", 2, 0, true, (1, 1, 1), RO)),
    (b"HDEL", c("hdel", -3, 0, true, (1, 1, 1), W_FAST)),
    (b"HEXISTS", c("hexists", 3, 0, true, (1, 1, 1), RO_FAST)),
    (b"HLEN", c("hlen", 2, 0, true, (1, 1, 1), RO_FAST)),
    (b"HINCRBY", c("hincrby", 4, 0, true, (1, 1, 1), W_OOM_FAST)),
    (b"KEYS", c("keys", 2, 0, true, (0, 0, 0), RO)),
    (b"SCAN", c("scan", -2, 0, true, (0, 0, 0), RO)),
    (b"TYPE", c("type", 2, 0, true, (1, 1, 1), RO_FAST)),
    (b"PERSIST", c("persist", 2, 0, true, (1, 1, 1), W_FAST)),
    (b"EXPIREAT", c("expireat", -3, 0, true, (1, 1, 1), W_FAST)),
    (b"PEXPIREAT", c("pexpireat", -3, 0, true, (1, 1, 1), W_FAST)),
    (b"RENAME", c("rename", 3, 0, true, (1, 2, 1), W)),
    (b"SETEX", c("setex", 4, 0, true, (1, 1, 1), W_OOM)),
    (b"PSETEX", c("psetex", 4, 0, true, (1, 1, 1), W_OOM)),
    (b"GETDEL", c("getdel", 2, 0, true, (1, 1, 1), W_FAST)),
    (b"GETEX", c("getex", -2, 0, true, (1, 1, 1), W_FAST)),
    (b"APPEND", c("append", 3, 0, true, (1, 1, 1), W_OOM_FAST)),
    (b"STRLEN", c("strlen", 2, 0, true, (1, 1, 1), RO_FAST)),
    (b"INCRBYFLOAT", c("incrbyfloat", 3, 0, true, (1, 1, 1), W_OOM_FAST)),
    (b"PUBLISH", c("publish", 3, 0, true, (0, 0, 0), PUBLISH)),
    (b"SUBSCRIBE", c("subscribe", -2, 0, true, (0, 0, 0), SUBSCRIBE)),
    (b"UNSUBSCRIBE", c("unsubscribe", -1, 0, true, (0, 0, 0), SUBSCRIBE)),
    (b"AGENT.SPAWN", c("agent.spawn", -3, 0, true, (0, 0, 0), W)),
    (b"AGENT.SEND", c("agent.send", 3, 0, true, (0, 0, 0), W)),
    (b"AGENT.ASK", c("agent.ask", -3, 4, true, (0, 0, 0), W)),
    (b"AGENT.STOP", c("agent.stop", 2, 0, true, (0, 0, 0), W)),
    (b"AGENT.INFO", c("agent.info", 2, 0, true, (0, 0, 0), RO)),
    (b"AGENT.LIST", c("agent.list", -1, 2, true, (0, 0, 0), RO)),
];

/// The command named `upper` (upper case).
pub fn lookup(upper: &[u8]) -> Option<&'static Spec> {
    COMMANDS.iter().find(|(n, _)| *n == upper).map(|(_, s)| s)
}

/// `COMMAND`, `COMMAND COUNT`, `COMMAND DOCS`, `COMMAND INFO name...`.
pub fn command_reply(args: &[bytes::Bytes]) -> Value {
    let info = |s: &Spec| {
        Value::Array(vec![
            Value::bulk(s.name),
            Value::Int(i64::from(s.arity)),
            Value::Set(s.flags.iter().map(|f| Value::simple(*f)).collect()),
            Value::Int(i64::from(s.keys.0)),
            Value::Int(i64::from(s.keys.1)),
            Value::Int(i64::from(s.keys.2)),
        ])
    };
    match args.get(1).map(|a| a.to_ascii_uppercase()) {
        None => Value::Array(COMMANDS.iter().map(|(_, s)| info(s)).collect()),
        Some(sub) if sub.as_slice() == b"COUNT" => Value::Int(COMMANDS.len() as i64),
        Some(sub) if sub.as_slice() == b"DOCS" => Value::Map(Vec::new()),
        Some(sub) if sub.as_slice() == b"INFO" && args.len() == 2 => {
            Value::Array(COMMANDS.iter().map(|(_, s)| info(s)).collect())
        }
        Some(sub) if sub.as_slice() == b"INFO" => {
            Value::Array(args[2..].iter().map(|n| lookup(&n.to_ascii_uppercase()).map_or(Value::Nil, info)).collect())
        }
        Some(_) => {
            Value::error(format!("ERR unknown subcommand '{}'. Try COMMAND HELP.", String::from_utf8_lossy(&args[1])))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arity_follows_redis_rules() {
        let get = lookup(b"GET").unwrap();
        assert!(get.arity_ok(2) && !get.arity_ok(3) && !get.arity_ok(1));
        let set = lookup(b"SET").unwrap();
        assert!(set.arity_ok(3) && set.arity_ok(7) && !set.arity_ok(2));
        let ask = lookup(b"AGENT.ASK").unwrap();
        assert!(ask.arity_ok(3) && ask.arity_ok(4) && !ask.arity_ok(5));
        assert!(lookup(b"NOPE").is_none());
    }
}
