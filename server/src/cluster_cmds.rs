//! The RESP server's side of the cluster: `AGENT.SPAWN kind name [args] GLOBAL` claims the
//! name cluster-wide, `AGENT.SEND` and `AGENT.ASK` reach a global name held by another node,
//! and `INFO cluster` lists the nodes and the global names.
//!
//! A RESP agent crosses nodes as `Call<Vec<u8>, WireValue>`: the payload's bytes, and the
//! answer as a [`WireValue`] (a RESP value that serde can encode). The cluster link reaches
//! the server through the [`ClusterSlot`] inside [`Kinds`](crate::kinds::Kinds), filled once
//! the node joined (the engine, and so the server, starts before the node can).
//!
//! Invariants: nothing here blocks a shard (every cluster call is the link's non-blocking
//! form, its answer comes back on a bridge agent, which answers the client's reply token); a
//! GLOBAL spawn whose claim fails stops the agent it spawned and answers the claim's error.

use crate::kinds::AgentRequest;
use crate::resp::Value;
use bytes::Bytes;
use nexus_cluster::{Answer, BridgeMsg, ClusterError, Link, Serve, Wire};
use nexus_engine::agent::{Addr, AgentId, Ctx, DEFAULT_ASK_TIMEOUT};
use nexus_engine::ask::ReplyTo;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Where the server finds the node's cluster link once it joined; empty without a cluster.
#[derive(Clone, Default, Debug)]
pub struct ClusterSlot(Arc<OnceLock<LinkCell>>);

/// The link, with a `Debug` that does not print its internals.
struct LinkCell(Link);

impl std::fmt::Debug for LinkCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Link({})", self.0.node())
    }
}

impl ClusterSlot {
    /// Fills the slot; `false` when it was filled already.
    pub fn set(&self, link: Link) -> bool {
        self.0.set(LinkCell(link)).is_ok()
    }

    /// The link, once the node joined.
    pub fn get(&self) -> Option<&Link> {
        self.0.get().map(|c| &c.0)
    }
}

/// A RESP value in a form serde encodes, for answers that cross nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WireValue {
    /// `+OK`.
    Ok,
    /// `+text`.
    Simple(String),
    /// `-text`.
    Error(String),
    /// `:n`.
    Int(i64),
    /// `$len`.
    Bulk(Vec<u8>),
    /// Nil.
    Nil,
    /// An array (maps, sets and pushes travel as arrays).
    Array(Vec<WireValue>),
}

impl Wire for WireValue {}

impl From<Value> for WireValue {
    fn from(v: Value) -> Self {
        match v {
            Value::Ok => WireValue::Ok,
            Value::Simple(s) => WireValue::Simple(s.into_owned()),
            Value::Error(s) => WireValue::Error(s.into_owned()),
            Value::Int(n) => WireValue::Int(n),
            Value::Bool(b) => WireValue::Int(i64::from(b)),
            Value::Bulk(b) | Value::Verbatim(b) => WireValue::Bulk(b.to_vec()),
            Value::Stored(b) => WireValue::Bulk(b.as_slice().to_vec()),
            Value::Double(x) => WireValue::Bulk(x.to_string().into_bytes()),
            Value::Nil | Value::NilArray => WireValue::Nil,
            Value::Array(v) | Value::Set(v) | Value::Push(v) => {
                WireValue::Array(v.into_iter().map(Into::into).collect())
            }
            Value::Map(kv) => WireValue::Array(kv.into_iter().flat_map(|(k, v)| [k.into(), v.into()]).collect()),
            #[allow(unreachable_patterns)]
            _ => WireValue::Error("ERR a value of this type cannot cross nodes".into()),
        }
    }
}

impl From<WireValue> for Value {
    fn from(w: WireValue) -> Self {
        match w {
            WireValue::Ok => Value::Ok,
            WireValue::Simple(s) => Value::Simple(s.into()),
            WireValue::Error(s) => Value::Error(s.into()),
            WireValue::Int(n) => Value::Int(n),
            WireValue::Bulk(b) => Value::Bulk(Bytes::from(b)),
            WireValue::Nil => Value::Nil,
            WireValue::Array(v) => Value::Array(v.into_iter().map(Into::into).collect()),
        }
    }
}

/// Serves a global name with a local RESP agent (one of a kind, `Msg = AgentRequest`).
struct RespServe {
    id: AgentId,
}

impl Serve for RespServe {
    fn tell(&self, body: &[u8], ctx: &mut Ctx<'_>) -> Result<(), ClusterError> {
        let payload: Vec<u8> = nexus_cluster::wire::decode(body)?;
        let to = Addr::<AgentRequest>::from_id(self.id);
        ctx.send(to, AgentRequest::Send(Bytes::from(payload)))
            .map_err(|_| ClusterError::Remote("the agent's mailbox is full or it is gone".into()))
    }

    fn ask(&self, body: &[u8], timeout: Duration, answer: Answer, ctx: &mut Ctx<'_>) {
        let payload: Vec<u8> = match nexus_cluster::wire::decode(body) {
            Ok(p) => p,
            Err(e) => return answer.send(Err(e)),
        };
        let to = Addr::<AgentRequest>::from_id(self.id);
        let asked = ctx.ask(to, |r| AgentRequest::Ask(Bytes::from(payload), r)).timeout(timeout).then(move |res| {
            let reply = match res {
                Ok(value) => nexus_cluster::wire::encode(&WireValue::from(value)),
                Err(e) => Err(ClusterError::Remote(e.to_string())),
            };
            answer.send(reply);
            BridgeMsg::Done
        });
        // Refused: the adapter, and the `Answer` in it, dropped, which answers `Remote`.
        drop(asked);
    }
}

/// Whether `AGENT.SPAWN`'s arguments end with `GLOBAL` (the kind gets the others).
pub fn is_global(args: &[Bytes]) -> bool {
    args.last().is_some_and(|a| a.eq_ignore_ascii_case(b"GLOBAL"))
}

/// After `AGENT.SPAWN ... GLOBAL` spawned `id` locally (`spawned` is the local answer):
/// claims `name` cluster-wide and answers `reply` once the claim is decided (`None`), or
/// answers at once (`Some`) when the spawn failed or the node is in no cluster.
pub fn claim_spawned(
    cluster: &ClusterSlot,
    name: String,
    spawned: Value,
    id: Option<AgentId>,
    reply: &mut Option<ReplyTo<Value>>,
    ctx: &mut Ctx<'_>,
) -> Option<Value> {
    let (Value::Ok, Some(id)) = (&spawned, id) else { return Some(spawned) };
    let Some(link) = cluster.get() else {
        ctx.stop(id);
        return Some(Value::error("ERR GLOBAL needs a cluster: start with --cluster nats://... --node NAME"));
    };
    let token = reply.take()?;
    link.claim(
        &name,
        Arc::new(RespServe { id }),
        Box::new(move |outcome, ctx| match outcome {
            Ok(()) => ctx.reply(token, Value::Ok),
            Err(e) => {
                ctx.stop(id);
                ctx.reply(token, Value::error(format!("ERR {e}")));
            }
        }),
    );
    None
}

/// `AGENT.ASK name payload` for a name this node does not hold: asks the node that holds it
/// (answering through `reply` later, `None`), or answers `local` at once when no node does.
pub fn ask_remote(
    cluster: &ClusterSlot,
    name: &str,
    payload: Bytes,
    reply: &mut Option<ReplyTo<Value>>,
    local: Value,
    ctx: &mut Ctx<'_>,
) -> Option<Value> {
    let Some(link) = cluster.get().filter(|l| l.owner(name).is_some()) else { return Some(local) };
    let token = reply.take()?;
    let timeout = match ctx.deadline_ns() {
        Some(deadline) => Duration::from_nanos(deadline.saturating_sub(ctx.now_ns())),
        None => DEFAULT_ASK_TIMEOUT,
    };
    link.ask::<Vec<u8>, WireValue>(
        name,
        &payload.to_vec(),
        timeout,
        Box::new(move |answer, ctx| {
            let value = match answer {
                Ok(w) => Value::from(w),
                Err(e) => Value::error(format!("ERR {e}")),
            };
            ctx.reply(token, value);
        }),
    );
    None
}

/// `AGENT.SEND name payload` for a name this node does not hold: sends it one way to the
/// node that holds it (`:1`), or answers `local` when no node does.
pub fn send_remote(cluster: &ClusterSlot, name: &str, payload: Bytes, local: Value) -> Value {
    match cluster.get().filter(|l| l.owner(name).is_some()) {
        Some(link) => {
            link.tell(name, &payload.to_vec());
            Value::Int(1)
        }
        None => local,
    }
}

/// `INFO`'s `# Cluster` section: whether the node is in a cluster, the live nodes, the global
/// names and the bridge's counters.
pub fn info_section(cluster: &ClusterSlot) -> String {
    let Some(link) = cluster.get() else { return "# Cluster\r\ncluster_enabled:0\r\n\r\n".into() };
    let mut text =
        format!("# Cluster\r\ncluster_enabled:1\r\nnode:{}\r\nnodes:{}\r\n", link.node(), link.nodes().join(","));
    for (name, node) in link.names() {
        text.push_str(&format!("global:{name}={node}\r\n"));
    }
    let stats = link.stats();
    text.push_str(&format!("{}\r\n\r\n", stats.line().replace(' ', "\r\n").replace('=', ":")));
    text
}
