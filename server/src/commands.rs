//! The command table: every command the server knows, its arity, and where it runs.
//!
//! Arity follows Redis: a positive number is the exact argument count (the name included), a
//! negative one the minimum; `max` bounds commands with optional arguments. Connection commands
//! are answered by the connection task; engine commands go to the shard's ingress agent.

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
}

impl Spec {
    /// Whether `n` arguments (the name included) fit.
    pub fn arity_ok(&self, n: usize) -> bool {
        let ok = if self.arity >= 0 { n == self.arity as usize } else { n >= self.arity.unsigned_abs() as usize };
        ok && (self.max == 0 || n <= self.max)
    }
}

const fn c(name: &'static str, arity: i32, max: usize, engine: bool, keys: (i32, i32, i32)) -> Spec {
    Spec { name, arity, max, engine, keys }
}

/// Every command, by upper-case name.
pub const COMMANDS: &[(&[u8], Spec)] = &[
    (b"PING", c("ping", -1, 2, false, (0, 0, 0))),
    (b"ECHO", c("echo", 2, 0, false, (0, 0, 0))),
    (b"HELLO", c("hello", -1, 0, false, (0, 0, 0))),
    (b"QUIT", c("quit", -1, 0, false, (0, 0, 0))),
    (b"RESET", c("reset", 1, 0, false, (0, 0, 0))),
    (b"SELECT", c("select", 2, 0, false, (0, 0, 0))),
    (b"AUTH", c("auth", -2, 3, false, (0, 0, 0))),
    (b"COMMAND", c("command", -1, 0, false, (0, 0, 0))),
    (b"CLIENT", c("client", -2, 0, false, (0, 0, 0))),
    (b"CONFIG", c("config", -2, 0, false, (0, 0, 0))),
    (b"NEXUS.TRACE", c("nexus.trace", -2, 3, false, (0, 0, 0))),
    (b"INFO", c("info", -1, 2, true, (0, 0, 0))),
    (b"DBSIZE", c("dbsize", 1, 0, true, (0, 0, 0))),
    (b"FLUSHALL", c("flushall", -1, 2, true, (0, 0, 0))),
    (b"FLUSHDB", c("flushdb", -1, 2, true, (0, 0, 0))),
    (b"GET", c("get", 2, 0, true, (1, 1, 1))),
    (b"SET", c("set", -3, 0, true, (1, 1, 1))),
    (b"DEL", c("del", -2, 0, true, (1, -1, 1))),
    (b"UNLINK", c("unlink", -2, 0, true, (1, -1, 1))),
    (b"EXISTS", c("exists", -2, 0, true, (1, -1, 1))),
    (b"INCR", c("incr", 2, 0, true, (1, 1, 1))),
    (b"DECR", c("decr", 2, 0, true, (1, 1, 1))),
    (b"INCRBY", c("incrby", 3, 0, true, (1, 1, 1))),
    (b"DECRBY", c("decrby", 3, 0, true, (1, 1, 1))),
    (b"MGET", c("mget", -2, 0, true, (1, -1, 1))),
    (b"MSET", c("mset", -3, 0, true, (1, -1, 2))),
    (b"EXPIRE", c("expire", 3, 0, true, (1, 1, 1))),
    (b"PEXPIRE", c("pexpire", 3, 0, true, (1, 1, 1))),
    (b"TTL", c("ttl", 2, 0, true, (1, 1, 1))),
    (b"PTTL", c("pttl", 2, 0, true, (1, 1, 1))),
    (b"PUBLISH", c("publish", 3, 0, true, (0, 0, 0))),
    (b"SUBSCRIBE", c("subscribe", -2, 0, true, (0, 0, 0))),
    (b"UNSUBSCRIBE", c("unsubscribe", -1, 0, true, (0, 0, 0))),
    (b"AGENT.SPAWN", c("agent.spawn", -3, 0, true, (0, 0, 0))),
    (b"AGENT.SEND", c("agent.send", 3, 0, true, (0, 0, 0))),
    (b"AGENT.ASK", c("agent.ask", -3, 4, true, (0, 0, 0))),
    (b"AGENT.STOP", c("agent.stop", 2, 0, true, (0, 0, 0))),
    (b"AGENT.INFO", c("agent.info", 2, 0, true, (0, 0, 0))),
    (b"AGENT.LIST", c("agent.list", -1, 2, true, (0, 0, 0))),
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
            Value::Array(vec![Value::simple(if s.engine { "write" } else { "fast" })]),
            Value::Int(i64::from(s.keys.0)),
            Value::Int(i64::from(s.keys.1)),
            Value::Int(i64::from(s.keys.2)),
        ])
    };
    match args.get(1).map(|a| a.to_ascii_uppercase()) {
        None => Value::Array(COMMANDS.iter().map(|(_, s)| info(s)).collect()),
        Some(sub) if sub.as_slice() == b"COUNT" => Value::Int(COMMANDS.len() as i64),
        Some(sub) if sub.as_slice() == b"DOCS" => Value::Map(Vec::new()),
        Some(sub) if sub.as_slice() == b"INFO" => Value::Array(
            args[2..].iter().map(|n| lookup(&n.to_ascii_uppercase()).map_or(Value::NilArray, info)).collect(),
        ),
        Some(_) => {
            Value::error("ERR unknown COMMAND subcommand; try COMMAND, COMMAND COUNT, COMMAND DOCS or COMMAND INFO")
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
