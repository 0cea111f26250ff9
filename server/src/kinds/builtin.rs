//! The built-in kinds of [`Kinds::builtin`](super::Kinds::builtin): `echo`, `counter` and `kv`.
//!
//! Each is an agent whose messages are [`AgentRequest`]s; the payload protocols are in the
//! documentation of [`Kinds`](super::Kinds). A bad payload is answered with one `-ERR` line
//! that says what the kind expects.

use super::{parse_i64, AgentRequest};
use crate::resp::Value;
use bytes::Bytes;
use nexus_engine::agent::{Agent, Ctx};
use std::collections::HashMap;

/// `echo`: `AGENT.ASK` answers with the payload; `AGENT.SEND` is only counted.
pub struct EchoAgent;

impl EchoAgent {
    /// Builds an `echo` from its `AGENT.SPAWN` arguments (it takes none).
    pub fn from_args(args: &[Bytes]) -> Result<Self, String> {
        if args.is_empty() {
            Ok(EchoAgent)
        } else {
            Err("echo takes no arguments".to_owned())
        }
    }
}

impl Agent for EchoAgent {
    type Msg = AgentRequest;

    fn handle(&mut self, msg: AgentRequest, ctx: &mut Ctx<'_>) {
        if let AgentRequest::Ask(payload, reply) = msg {
            ctx.reply(reply, Value::Bulk(payload));
        }
    }
}

/// `counter [start]`: `AGENT.SEND` adds 1; `AGENT.ASK get` answers the count, and
/// `AGENT.ASK <n>` adds `n` and answers the new count.
pub struct CounterAgent {
    count: i64,
}

impl CounterAgent {
    /// Builds a `counter` from its `AGENT.SPAWN` arguments: none, or its start value.
    pub fn from_args(args: &[Bytes]) -> Result<Self, String> {
        match args {
            [] => Ok(CounterAgent { count: 0 }),
            [start] => parse_i64(start)
                .map(|count| CounterAgent { count })
                .ok_or_else(|| "counter's start value must be an integer".to_owned()),
            _ => Err("counter takes at most one argument (its start value)".to_owned()),
        }
    }
}

impl Agent for CounterAgent {
    type Msg = AgentRequest;

    fn handle(&mut self, msg: AgentRequest, ctx: &mut Ctx<'_>) {
        match msg {
            AgentRequest::Send(_) => self.count = self.count.wrapping_add(1),
            AgentRequest::Ask(payload, reply) => {
                let answer = if payload.eq_ignore_ascii_case(b"get") {
                    Value::Int(self.count)
                } else if let Some(n) = parse_i64(&payload) {
                    self.count = self.count.wrapping_add(n);
                    Value::Int(self.count)
                } else {
                    Value::error("ERR counter expects 'get' or an integer")
                };
                ctx.reply(reply, answer);
            }
            AgentRequest::Info { .. } => {}
        }
    }
}

/// The error for a `kv` payload that is no command.
const KV_USAGE: &str = "ERR kv expects 'GET key', 'SET key value', 'DEL key' or 'LEN'";

/// `kv`: a small in-memory key-value store of byte strings, driven by text payloads.
///
/// `AGENT.ASK` takes `GET key` (the value, or nil), `SET key value` (`OK`; the value is the
/// rest of the payload, spaces included), `DEL key` (1 if the key existed, else 0) and `LEN`
/// (the number of keys); command words are case-insensitive, keys end at the first space.
/// `AGENT.SEND` takes `SET` and `DEL` and applies them without an answer; anything else sent
/// is ignored (only counted), since there is nobody to tell.
#[derive(Default)]
pub struct KvAgent {
    map: HashMap<Bytes, Bytes>,
}

/// One parsed `kv` payload.
#[derive(Debug, PartialEq, Eq)]
enum KvCommand {
    Get(Bytes),
    Set(Bytes, Bytes),
    Del(Bytes),
    Len,
}

impl KvAgent {
    /// Builds a `kv` from its `AGENT.SPAWN` arguments (it takes none).
    pub fn from_args(args: &[Bytes]) -> Result<Self, String> {
        if args.is_empty() {
            Ok(KvAgent::default())
        } else {
            Err("kv takes no arguments".to_owned())
        }
    }

    /// Runs one command and returns its answer.
    fn run(&mut self, command: KvCommand) -> Value {
        match command {
            KvCommand::Get(key) => self.map.get(&key).map_or(Value::Nil, |v| Value::Bulk(v.clone())),
            KvCommand::Set(key, value) => {
                self.map.insert(key, value);
                Value::Ok
            }
            KvCommand::Del(key) => Value::Int(i64::from(self.map.remove(&key).is_some())),
            KvCommand::Len => Value::Int(self.map.len() as i64),
        }
    }
}

/// Parses a `kv` payload; the error is the `-ERR` line to answer.
fn parse_kv(payload: &Bytes) -> Result<KvCommand, &'static str> {
    let (word, rest) = split_word(payload);
    let rest = rest.map(|at| payload.slice(at..));
    let key_only = |rest: Option<Bytes>, usage: &'static str| match rest {
        Some(key) if !key.is_empty() && !key.contains(&b' ') => Ok(key),
        _ => Err(usage),
    };
    match word.to_ascii_uppercase().as_slice() {
        b"GET" => key_only(rest, "ERR kv: GET takes one key (GET key)").map(KvCommand::Get),
        b"DEL" => key_only(rest, "ERR kv: DEL takes one key (DEL key)").map(KvCommand::Del),
        b"LEN" if rest.is_none() => Ok(KvCommand::Len),
        b"LEN" => Err("ERR kv: LEN takes no arguments"),
        b"SET" => {
            let usage = "ERR kv: SET takes a key and a value (SET key value)";
            let rest = rest.ok_or(usage)?;
            match split_word(&rest) {
                (key, Some(at)) if !key.is_empty() => Ok(KvCommand::Set(rest.slice(..key.len()), rest.slice(at..))),
                _ => Err(usage),
            }
        }
        _ => Err(KV_USAGE),
    }
}

/// The bytes up to the first space, and where the rest starts (after that one space).
fn split_word(bytes: &[u8]) -> (&[u8], Option<usize>) {
    match bytes.iter().position(|b| *b == b' ') {
        Some(at) => (&bytes[..at], Some(at + 1)),
        None => (bytes, None),
    }
}

impl Agent for KvAgent {
    type Msg = AgentRequest;

    fn handle(&mut self, msg: AgentRequest, ctx: &mut Ctx<'_>) {
        match msg {
            AgentRequest::Ask(payload, reply) => {
                let answer = match parse_kv(&payload) {
                    Ok(command) => self.run(command),
                    Err(usage) => Value::error(usage),
                };
                ctx.reply(reply, answer);
            }
            AgentRequest::Send(payload) => {
                if let Ok(command @ (KvCommand::Set(..) | KvCommand::Del(_))) = parse_kv(&payload) {
                    self.run(command);
                }
            }
            AgentRequest::Info { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<KvCommand, &'static str> {
        parse_kv(&Bytes::copy_from_slice(text.as_bytes()))
    }

    fn b(text: &str) -> Bytes {
        Bytes::copy_from_slice(text.as_bytes())
    }

    #[test]
    fn kv_payloads_parse_into_commands() {
        assert_eq!(parse("GET a"), Ok(KvCommand::Get(b("a"))));
        assert_eq!(parse("get a"), Ok(KvCommand::Get(b("a"))));
        assert_eq!(parse("SET a hello world"), Ok(KvCommand::Set(b("a"), b("hello world"))));
        assert_eq!(parse("SET a "), Ok(KvCommand::Set(b("a"), b(""))), "an empty value is a value");
        assert_eq!(parse("DEL a"), Ok(KvCommand::Del(b("a"))));
        assert_eq!(parse("LEN"), Ok(KvCommand::Len));
    }

    #[test]
    fn bad_kv_payloads_say_what_the_kind_expects() {
        assert_eq!(parse(""), Err(KV_USAGE));
        assert_eq!(parse("PUT a b"), Err(KV_USAGE));
        assert_eq!(parse("GET"), Err("ERR kv: GET takes one key (GET key)"));
        assert_eq!(parse("GET a b"), Err("ERR kv: GET takes one key (GET key)"));
        assert_eq!(parse("DEL "), Err("ERR kv: DEL takes one key (DEL key)"));
        assert_eq!(parse("SET a"), Err("ERR kv: SET takes a key and a value (SET key value)"));
        assert_eq!(parse("SET  b"), Err("ERR kv: SET takes a key and a value (SET key value)"));
        assert_eq!(parse("LEN x"), Err("ERR kv: LEN takes no arguments"));
    }

    #[test]
    fn kv_commands_store_and_answer() {
        let mut kv = KvAgent::from_args(&[]).expect("no arguments");
        assert_eq!(kv.run(KvCommand::Get(b("a"))), Value::Nil);
        assert_eq!(kv.run(KvCommand::Set(b("a"), b("1"))), Value::Ok);
        assert_eq!(kv.run(KvCommand::Get(b("a"))), Value::Bulk(b("1")));
        assert_eq!(kv.run(KvCommand::Len), Value::Int(1));
        assert_eq!(kv.run(KvCommand::Del(b("a"))), Value::Int(1));
        assert_eq!(kv.run(KvCommand::Del(b("a"))), Value::Int(0));
        assert!(KvAgent::from_args(&[b("x")]).is_err());
    }
}
