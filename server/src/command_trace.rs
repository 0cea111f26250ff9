//! Tracing RESP commands: which commands a connection traces, the spans of a traced
//! command's path, and the `NEXUS.TRACE` admin command.
//!
//! A traced command's path is one trace:
//! - its root span (named after the command, `get`, `set`, ...) is the connection's: from the
//!   read of the request to the reply handed to the socket;
//! - `resp.ingress`: the shard's ingress agent running the command (from the job queue, where
//!   it waited since the read); the asks it makes carry the trace on;
//! - the engine's hops: the owning partition's handling of the operation (`ask`), its reply
//!   on the ingress's shard (`reply`), and the ingress agent's handling of the answer
//!   (`answer`), each recorded by the engine;
//! - `resp.reply`: the connection encoding the answer for the client, after the hop that
//!   answered (so the path reads as one chain).
//!
//! A command is traced when its name is in `[tracing] commands`, or by the engine's sampling
//! probability (one draw per command). `NEXUS.TRACE` (guarded by `requirepass` like every
//! command) lets `nexus trace` turn sampling on, collect the spans and turn it off again.
//!
//! Invariant: everything here runs on its shard's thread; recording never blocks (a full span
//! buffer drops and counts).

use crate::commands::Spec;
use crate::resp::Value;
use bytes::Bytes;
use nexus_engine::engine::EngineHandle;
use nexus_engine::trace::{Span, SpanSink, TraceContext};

/// Spans one `NEXUS.TRACE FETCH` returns when it names no count.
const FETCH_DEFAULT: usize = 10_000;

/// Where a traced command's path stands when the connection hands it over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommandTrace {
    /// The trace, and the connection's root span.
    pub root: TraceContext,
    /// When the connection read the request (engine clock).
    pub read_ns: u64,
    /// The command's name.
    pub name: &'static str,
}

/// A shard's command tracing: its span sink and the commands always traced.
pub struct ConnTracing {
    sink: SpanSink,
    always: Vec<&'static str>,
    /// The sampling probability `NEXUS.TRACE STOP` goes back to (the config's).
    configured_sample: f64,
}

impl ConnTracing {
    /// Tracing for one shard's connections; `always` are command names (any case).
    pub fn new(sink: SpanSink, always: &[String], configured_sample: f64) -> Self {
        let always = crate::commands::COMMANDS
            .iter()
            .map(|(_, spec)| spec.name)
            .filter(|name| always.iter().any(|a| a.eq_ignore_ascii_case(name)))
            .collect();
        Self { sink, always, configured_sample }
    }

    /// Whether to trace this command (named in `commands`, or sampled); its root if so.
    pub fn start(&self, spec: &'static Spec) -> Option<CommandTrace> {
        let traced = self.always.contains(&spec.name) || self.sink.should_sample();
        traced.then(|| CommandTrace { root: self.sink.new_root(), read_ns: self.sink.now_ns(), name: spec.name })
    }

    /// Records the connection's spans once the command's answer was encoded for the client
    /// (`answered_ns`: when the connection found it; now: when it was encoded). The
    /// `resp.reply` span follows `answered_by` (the hop that answered, when it was traced),
    /// or the root.
    pub fn finish(&self, trace: &CommandTrace, answered_by: Option<TraceContext>, answered_ns: u64) {
        let now = self.sink.now_ns();
        let shard = self.sink.shard() as u16;
        let parent = answered_by.filter(|c| c.trace_id == trace.root.trace_id).unwrap_or(trace.root);
        let reply = Span::external(parent, self.sink.span_id(), "resp.reply", shard, answered_ns, now);
        self.sink.record(reply);
        let mut root = Span::external(trace.root, trace.root.span_id, trace.name, shard, trace.read_ns, now);
        root.parent_id = 0;
        self.sink.record(root);
    }

    /// The engine clock now.
    pub fn now_ns(&self) -> u64 {
        self.sink.now_ns()
    }

    /// `NEXUS.TRACE START <probability> | STOP | STATUS | FETCH [COUNT]`: sampling on, back to
    /// the config's, the figures (`sample`, `recorded`, `dropped`, `epoch_unix_ns`), and up to
    /// COUNT (default 10,000) buffered spans, each one bulk string (`nexus_trace::wire`).
    pub fn admin(&self, handle: &EngineHandle, args: &[Bytes]) -> Value {
        let tracing = handle.tracing();
        let sub = args.get(1).map(|a| a.to_ascii_uppercase()).unwrap_or_default();
        match sub.as_slice() {
            b"START" => {
                let Some(p) = args.get(2).and_then(|a| std::str::from_utf8(a).ok()).and_then(|s| s.parse::<f64>().ok())
                else {
                    return Value::error("ERR NEXUS.TRACE START needs a probability from 0 to 1, such as 0.01");
                };
                if !(0.0..=1.0).contains(&p) {
                    return Value::error("ERR NEXUS.TRACE START needs a probability from 0 to 1, such as 0.01");
                }
                tracing.set_sample(p);
                Value::Ok
            }
            b"STOP" => {
                tracing.set_sample(self.configured_sample);
                Value::Ok
            }
            b"STATUS" => Value::Array(vec![
                Value::bulk("sample"),
                Value::bulk(format!("{}", tracing.sample())),
                Value::bulk("recorded"),
                Value::Int(tracing.recorded() as i64),
                Value::bulk("dropped"),
                Value::Int(tracing.dropped() as i64),
                Value::bulk("epoch_unix_ns"),
                Value::Int(tracing.epoch_unix_ns() as i64),
            ]),
            b"FETCH" => {
                let max = match args.get(2).map(|a| std::str::from_utf8(a).ok().and_then(|s| s.parse::<usize>().ok())) {
                    None => FETCH_DEFAULT,
                    Some(Some(n)) if n > 0 => n,
                    Some(_) => return Value::error("ERR NEXUS.TRACE FETCH takes a positive span count"),
                };
                let mut spans = Vec::new();
                tracing.drain_max(&mut spans, max);
                Value::Array(
                    spans
                        .iter()
                        .map(|s| Value::Bulk(Bytes::from(nexus_trace::wire::encode(&nexus_trace::SpanRecord::from(s)))))
                        .collect(),
                )
            }
            _ => Value::error("ERR NEXUS.TRACE takes START <probability>, STOP, STATUS or FETCH"),
        }
    }
}
