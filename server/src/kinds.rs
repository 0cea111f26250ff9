//! Agent kinds a client can spawn with `AGENT.SPAWN kind name [args]`.
//!
//! A kind is a named factory: from the command's arguments it builds an agent whose messages
//! are [`AgentRequest`]s, so `AGENT.SEND` and `AGENT.ASK` can reach it with a payload and get a
//! RESP [`Value`] back. The server wraps every spawned agent in [`Hosted`], which counts the
//! messages it handled and answers `AGENT.INFO`. The built-in kinds are `echo` and `counter`;
//! an embedder adds its own with [`Kinds::register`] before starting the server.
//!
//! Invariant: kind names are unique; the registry is read-only once the server runs (it is
//! shared by every shard through an `Arc`).

use crate::resp::Value;
use bytes::Bytes;
use nexus_engine::agent::{Agent, AgentId, Ctx};
use nexus_engine::ask::ReplyTo;
use std::collections::BTreeMap;
use std::sync::Arc;

/// What a hosted agent receives.
pub enum AgentRequest {
    /// `AGENT.SEND name payload`: no answer expected.
    Send(Bytes),
    /// `AGENT.ASK name payload`: answer with `ctx.reply(reply, value)`.
    Ask(Bytes, ReplyTo<Value>),
    /// `AGENT.INFO name`: answered by [`Hosted`], never seen by the kind's agent.
    Info {
        /// The registered name.
        name: String,
        /// The kind's name.
        kind: String,
        /// Where the answer goes.
        reply: ReplyTo<Value>,
    },
}

/// An agent kind: see the module documentation.
pub trait AgentKind: Send + Sync + 'static {
    /// Spawns one agent on the calling shard from `args`; an `Err` is sent to the client as
    /// `-ERR <text>`.
    fn spawn(&self, args: &[Bytes], ctx: &mut Ctx<'_>) -> Result<AgentId, String>;
}

/// A kind made from a constructor function.
struct FnKind<F>(F);

impl<A, F> AgentKind for FnKind<F>
where
    A: Agent<Msg = AgentRequest>,
    F: Fn(&[Bytes]) -> Result<A, String> + Send + Sync + 'static,
{
    fn spawn(&self, args: &[Bytes], ctx: &mut Ctx<'_>) -> Result<AgentId, String> {
        let agent = (self.0)(args)?;
        ctx.spawn(Hosted { inner: agent, handled: 0 }).map(|addr| addr.id()).map_err(|e| e.to_string())
    }
}

/// The kinds a server knows; see the module documentation.
#[derive(Clone, Default)]
pub struct Kinds {
    kinds: BTreeMap<String, Arc<dyn AgentKind>>,
}

impl std::fmt::Debug for Kinds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.kinds.keys()).finish()
    }
}

impl Kinds {
    /// No kinds at all.
    pub fn empty() -> Self {
        Self::default()
    }

    /// The built-in kinds: `echo` and `counter`.
    pub fn builtin() -> Self {
        let mut kinds = Self::empty();
        kinds.register(
            "echo",
            |args: &[Bytes]| {
                if args.is_empty() {
                    Ok(EchoAgent)
                } else {
                    Err("echo takes no arguments".to_owned())
                }
            },
        );
        kinds.register("counter", |args: &[Bytes]| match args {
            [] => Ok(CounterAgent { count: 0 }),
            [start] => parse_i64(start)
                .map(|count| CounterAgent { count })
                .ok_or_else(|| "counter's start value must be an integer".to_owned()),
            _ => Err("counter takes at most one argument (its start value)".to_owned()),
        });
        kinds
    }

    /// Adds (or replaces) kind `name`, built by `factory` from the `AGENT.SPAWN` arguments.
    pub fn register<A, F>(&mut self, name: &str, factory: F) -> &mut Self
    where
        A: Agent<Msg = AgentRequest>,
        F: Fn(&[Bytes]) -> Result<A, String> + Send + Sync + 'static,
    {
        self.kinds.insert(name.to_owned(), Arc::new(FnKind(factory)));
        self
    }

    /// The kind called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn AgentKind>> {
        self.kinds.get(name)
    }

    /// The kinds' names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.kinds.keys().map(String::as_str)
    }
}

/// Wraps a kind's agent: counts its messages and answers `AGENT.INFO` for it.
pub struct Hosted<A> {
    inner: A,
    handled: u64,
}

impl<A: Agent<Msg = AgentRequest>> Agent for Hosted<A> {
    type Msg = AgentRequest;

    fn handle(&mut self, msg: AgentRequest, ctx: &mut Ctx<'_>) {
        match msg {
            AgentRequest::Info { name, kind, reply } => {
                let id = ctx.id();
                let info = Value::Map(vec![
                    (Value::bulk("name"), Value::Bulk(Bytes::from(name))),
                    (Value::bulk("kind"), Value::Bulk(Bytes::from(kind))),
                    (Value::bulk("id"), Value::Bulk(Bytes::from(format!("{id}")))),
                    (Value::bulk("shard"), Value::Int(id.shard() as i64)),
                    (Value::bulk("handled"), Value::Int(self.handled as i64)),
                ]);
                ctx.reply(reply, info);
            }
            other => {
                self.handled += 1;
                self.inner.handle(other, ctx);
            }
        }
    }

    fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        self.inner.on_start(ctx);
    }

    fn on_stop(&mut self, ctx: &mut Ctx<'_>) {
        self.inner.on_stop(ctx);
    }
}

/// Built-in `echo`: `AGENT.ASK` answers with the payload; `AGENT.SEND` is only counted.
pub struct EchoAgent;

impl Agent for EchoAgent {
    type Msg = AgentRequest;

    fn handle(&mut self, msg: AgentRequest, ctx: &mut Ctx<'_>) {
        if let AgentRequest::Ask(payload, reply) = msg {
            ctx.reply(reply, Value::Bulk(payload));
        }
    }
}

/// Built-in `counter [start]`: `AGENT.SEND` adds 1; `AGENT.ASK get` answers the count, and
/// `AGENT.ASK <n>` adds `n` and answers the new count.
pub struct CounterAgent {
    count: i64,
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

/// Parses a whole byte string as a signed 64-bit integer (Redis rules: no spaces, no `+`).
pub fn parse_i64(bytes: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(bytes).ok()?;
    if text.is_empty() || text.starts_with('+') || text.len() > 20 {
        return None;
    }
    text.parse().ok()
}
