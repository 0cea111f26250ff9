//! Agent kinds: the one registry of the agents `nexus run` starts from its config
//! (`[[agents]] kind = ...`) and a client starts with `AGENT.SPAWN kind name [args]`.
//!
//! A kind is a named factory: from the spawn's arguments it builds an agent whose messages
//! are [`AgentRequest`]s, so `AGENT.SEND` and `AGENT.ASK` can reach it with a payload and get a
//! RESP [`Value`] back. Every spawned agent is wrapped in [`Hosted`], which counts the messages
//! it handled and answers `AGENT.INFO`. A kind spawns two ways ([`AgentKind`]): on a shard, for
//! `AGENT.SPAWN` (on the shard that owns the name), and from a host thread, for `nexus run`'s
//! config agents (on the shard the config asks for; [`Kinds::spawn_from_host`]). Either way the
//! arguments are checked before anything is spawned. A host-spawned agent becomes reachable
//! over RESP once [`ServerHandle::spawn_agent`](crate::ServerHandle::spawn_agent) has named
//! it and recorded it with the name's partition.
//!
//! The built-in kinds ([`Kinds::builtin`], agents in [`builtin`]) and their payloads:
//!
//! - `echo` (no arguments): `AGENT.ASK` answers the payload; `AGENT.SEND` is only counted.
//! - `counter [start]`: `AGENT.SEND` adds 1; `AGENT.ASK get` answers the count, `AGENT.ASK n`
//!   adds the integer `n` and answers the new count; anything else is
//!   `-ERR counter expects 'get' or an integer`.
//! - `kv` (no arguments): a small key-value store. `AGENT.ASK` takes `GET key` (the value or
//!   nil), `SET key value` (`OK`; the value is the rest of the payload, spaces included),
//!   `DEL key` (1 or 0) and `LEN` (the number of keys); command words are case-insensitive.
//!   `AGENT.SEND` applies `SET` and `DEL` without an answer. A bad payload is answered with
//!   one `-ERR kv: ...` line that shows the expected form.
//!
//! An embedder adds its own kinds with [`Kinds::register`] before starting the server (and
//! validates its config against the same [`Kinds::names`]).
//!
//! Invariant: kind names are unique; the registry is read-only once the server runs (it is
//! shared by every shard through an `Arc`).

pub mod builtin;

use crate::resp::Value;
use builtin::{CounterAgent, EchoAgent, KvAgent};
use bytes::Bytes;
use nexus_engine::agent::{Addr, Agent, AgentId, Ctx, SpawnPlacement};
use nexus_engine::ask::ReplyTo;
use nexus_engine::engine::EngineHandle;
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

    /// Builds one agent on the calling host thread from `args`, then spawns it where
    /// `placement` says. A bad argument is an `Err` before anything is spawned.
    fn spawn_from_host(
        &self,
        args: &[Bytes],
        engine: &EngineHandle,
        placement: SpawnPlacement,
    ) -> Result<AgentId, String>;
}

/// A kind made from a constructor function.
struct FnKind<F>(F);

impl<A, F> AgentKind for FnKind<F>
where
    A: Agent<Msg = AgentRequest> + Send,
    F: Fn(&[Bytes]) -> Result<A, String> + Send + Sync + 'static,
{
    fn spawn(&self, args: &[Bytes], ctx: &mut Ctx<'_>) -> Result<AgentId, String> {
        let agent = (self.0)(args)?;
        ctx.spawn(Hosted::new(agent)).map(|addr| addr.id()).map_err(|e| e.to_string())
    }

    fn spawn_from_host(
        &self,
        args: &[Bytes],
        engine: &EngineHandle,
        placement: SpawnPlacement,
    ) -> Result<AgentId, String> {
        let agent = (self.0)(args)?;
        engine.spawn(placement, move || Hosted::new(agent)).map(|addr| addr.id()).map_err(|e| e.to_string())
    }
}

/// The kinds a server knows; see the module documentation.
#[derive(Clone, Default)]
pub struct Kinds {
    kinds: BTreeMap<String, Arc<dyn AgentKind>>,
    /// The cluster link, once the node joined one (`cluster_cmds`).
    cluster: crate::cluster_cmds::ClusterSlot,
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

    /// Where the node's cluster link goes once it joined (empty without a cluster); shared by
    /// every clone of these kinds.
    pub fn cluster(&self) -> &crate::cluster_cmds::ClusterSlot {
        &self.cluster
    }

    /// The built-in kinds: `echo`, `counter` and `kv` (see the module documentation).
    pub fn builtin() -> Self {
        let mut kinds = Self::empty();
        kinds.register("echo", EchoAgent::from_args);
        kinds.register("counter", CounterAgent::from_args);
        kinds.register("kv", KvAgent::from_args);
        kinds
    }

    /// Adds (or replaces) kind `name`, built by `factory` from the spawn's arguments. The
    /// agent is `Send` because a host thread may build it and move it to its shard.
    pub fn register<A, F>(&mut self, name: &str, factory: F) -> &mut Self
    where
        A: Agent<Msg = AgentRequest> + Send,
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

    /// The one-line error for an unknown kind, with the known kinds as the hint.
    pub fn unknown_kind(&self, kind: &str) -> String {
        let known: Vec<&str> = self.names().collect();
        if known.is_empty() {
            format!("unknown agent kind '{kind}'; hint: no agent kinds are registered")
        } else {
            format!("unknown agent kind '{kind}'; hint: use one of the known kinds: {}", known.join(", "))
        }
    }

    /// Spawns an agent of `kind` from a host thread (not a shard's), built from `args`, where
    /// `placement` says. The agent is unnamed and not yet known to the RESP server: see
    /// [`ServerHandle::spawn_agent`](crate::ServerHandle::spawn_agent) for that. An unknown
    /// kind or a bad argument is an `Err` (one line) and nothing is spawned.
    pub fn spawn_from_host(
        &self,
        engine: &EngineHandle,
        kind: &str,
        args: &[Bytes],
        placement: SpawnPlacement,
    ) -> Result<Addr<AgentRequest>, String> {
        let factory = self.get(kind).ok_or_else(|| self.unknown_kind(kind))?;
        let id = factory
            .spawn_from_host(args, engine, placement)
            .map_err(|e| format!("cannot spawn a '{kind}' agent: {e}"))?;
        Ok(Addr::from_id(id))
    }
}

/// Wraps a kind's agent: counts its messages and answers `AGENT.INFO` for it.
pub struct Hosted<A> {
    inner: A,
    handled: u64,
}

impl<A> Hosted<A> {
    /// Wraps `inner`, with nothing handled yet.
    pub fn new(inner: A) -> Self {
        Self { inner, handled: 0 }
    }
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

/// Parses a whole byte string as a signed 64-bit integer by Redis's `string2ll` rules: the
/// canonical decimal form only (no spaces, no `+`, no leading zeros, no `-0`).
pub fn parse_i64(bytes: &[u8]) -> Option<i64> {
    let digits = bytes.strip_prefix(b"-").unwrap_or(bytes);
    let canonical = match digits {
        [b'0'] => bytes.len() == 1,
        [b'1'..=b'9', rest @ ..] => rest.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    if !canonical || bytes.len() > 20 {
        return None;
    }
    std::str::from_utf8(bytes).ok()?.parse().ok()
}
