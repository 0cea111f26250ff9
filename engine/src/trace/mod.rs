//! Message tracing: a trace context that rides on sampled messages, and the spans each hop
//! records.
//!
//! A message is **sampled** when it starts a trace (a root) or is sent while its sender handles
//! a traced message: like a sequential-trace token, the context follows the message and
//! everything its handler sends in turn (send, ask, reply, answers, forwards, supervision
//! signals, dead-letter notices), across shards, up to [`TraceConfig::max_depth`] hops.
//! Roots are chosen by sampling (a probability, per untraced message an agent or a host
//! sends), by an agent that opts in ([`Ctx::start_trace`](crate::agent::Ctx::start_trace) in
//! its handler: everything it sends from there on is traced), or by a caller that adopts an
//! outside context ([`Ctx::adopt_trace`](crate::agent::Ctx::adopt_trace), for example from a
//! W3C `traceparent`).
//!
//! How the context travels: the envelope has no room for it, so a sampled envelope carries a
//! `Traced` value (trace id, parent span id, enqueue time, depth, and the original payload:
//! one 64-byte pool block, no global allocator once warm) and the `FLAG_TRACED` flag. The
//! receiving shard unwraps it before the handler sees the message. An unsampled message pays
//! one flag test where it is sent (`ShardTracer::on`) and one where it is dispatched.
//!
//! Each hop records one [`Span`]: enqueue, dispatch and end times, shard, agent, message type.
//! Spans go into the shard's span buffer (a bounded lock-free queue): a full buffer
//! drops the span and counts it, and the agent never blocks. A collector away from the shards
//! drains the buffers ([`TraceHandle::drain`]) and exports them.
//!
//! Invariants: a span's `parent_id` is the span id of the hop that sent its message (0 for a
//! root); span ids are unique within an engine (the shard index is in their top bits); the
//! tracing state changes only the envelope's payload and flag, never its routing or
//! accounting.

mod buffer;
mod context;
pub(crate) mod shard;

pub use buffer::TraceHandle;
pub(crate) use buffer::TraceShared;
pub use context::{ParseTraceparentError, TraceContext};

/// Whether tracing's hooks are compiled in: `false` in a build with the `untraced` feature,
/// where nothing is ever traced whatever the sampling says (the API is there, and idle). Lets a
/// tool check which kind of build it runs, or which kind a baseline binary is.
pub const COMPILED_IN: bool = !cfg!(feature = "untraced");

/// What a hop was: how its message travelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Hop {
    /// A user message an agent or a host sent.
    Send,
    /// An agent's ask (a user message that carries a reply token).
    Ask,
    /// A reply reaching the asking shard.
    Reply,
    /// An ask's answer handed to the asking agent (its adapter ran).
    Answer,
    /// A supervision signal (`Down`, `Exit`).
    Signal,
    /// A dead letter handed back to its sender (`on_undelivered`).
    Undelivered,
    /// The message became a dead letter here: its span ends where it was dropped.
    DeadLetter,
    /// A hop outside the dispatcher, recorded by the code that made it (a RESP connection's
    /// read or write, for example): see [`Span::external`].
    External,
}

impl Hop {
    /// A short lower-case name (`send`, `ask`, ...), as exporters print it.
    pub fn name(self) -> &'static str {
        match self {
            Hop::Send => "send",
            Hop::Ask => "ask",
            Hop::Reply => "reply",
            Hop::Answer => "answer",
            Hop::Signal => "signal",
            Hop::Undelivered => "undelivered",
            Hop::DeadLetter => "dead-letter",
            Hop::External => "external",
        }
    }
}

/// `Span::agent` for a hop that no agent handled (a connection's, a reply slot's).
pub const NO_AGENT: u64 = u64::MAX;

/// One hop of a traced message. Times are engine-clock nanoseconds (add
/// [`TraceHandle::epoch_unix_ns`] for wall-clock time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// The trace this hop belongs to (W3C trace id).
    pub trace_id: u128,
    /// This hop's span id (never 0).
    pub span_id: u64,
    /// The span id of the hop that sent this hop's message; 0 for a root.
    pub parent_id: u64,
    /// How the message travelled.
    pub hop: Hop,
    /// The message type (`std::any::type_name`), or the label an external span was given.
    pub name: &'static str,
    /// The shard the hop ran on.
    pub shard: u16,
    /// The agent that handled it ([`crate::agent::AgentId`] bits), or [`NO_AGENT`].
    pub agent: u64,
    /// When the message was sent (enqueued).
    pub enqueued_ns: u64,
    /// When its handler started (or when an external hop began its work).
    pub dispatched_ns: u64,
    /// When its handler returned.
    pub finished_ns: u64,
}

impl Span {
    /// A span for a hop outside the dispatcher (a connection reading a command, writing its
    /// reply), as a child of `parent`; record it with
    /// [`Ctx::record_span`](crate::agent::Ctx::record_span) or a [`SpanSink`].
    pub fn external(
        parent: TraceContext,
        span_id: u64,
        name: &'static str,
        shard: u16,
        start_ns: u64,
        end_ns: u64,
    ) -> Self {
        Self {
            trace_id: parent.trace_id,
            span_id,
            parent_id: parent.span_id,
            hop: Hop::External,
            name,
            shard,
            agent: NO_AGENT,
            enqueued_ns: start_ns,
            dispatched_ns: start_ns,
            finished_ns: end_ns,
        }
    }

    /// Time in the queue: enqueue to dispatch.
    pub fn queued_ns(&self) -> u64 {
        self.dispatched_ns.saturating_sub(self.enqueued_ns)
    }

    /// Time in the handler: dispatch to end.
    pub fn handler_ns(&self) -> u64 {
        self.finished_ns.saturating_sub(self.dispatched_ns)
    }
}

pub use buffer::SpanSink;

/// Tracing settings: built with [`TraceConfig::new`] and its setters, given to
/// [`EngineBuilder::tracing`](crate::engine::EngineBuilder::tracing).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TraceConfig {
    pub(crate) sample: f64,
    pub(crate) buffer: usize,
    pub(crate) max_depth: u16,
}

impl TraceConfig {
    /// Sampling off, 65,536 spans per shard buffer, traces of up to 32 hops.
    pub fn new() -> Self {
        Self { sample: 0.0, buffer: 65_536, max_depth: 32 }
    }

    /// The probability that an untraced message starts a trace (0 to 1; clamped). It can be
    /// changed while the engine runs ([`TraceHandle::set_sample`]).
    pub fn sample(mut self, probability: f64) -> Self {
        self.sample = if probability.is_nan() { 0.0 } else { probability.clamp(0.0, 1.0) };
        self
    }

    /// Spans each shard's buffer holds before it drops new ones (at least 1).
    pub fn buffer(mut self, spans: usize) -> Self {
        self.buffer = spans.max(1);
        self
    }

    /// Hops a trace follows from its root; messages past that are sent untraced (at least 1).
    pub fn max_depth(mut self, hops: u16) -> Self {
        self.max_depth = hops.max(1);
        self
    }

    /// The sampling probability.
    pub fn sample_probability(&self) -> f64 {
        self.sample
    }

    /// The per-shard buffer capacity, in spans.
    pub fn buffer_capacity(&self) -> usize {
        self.buffer
    }
}

impl Default for TraceConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// A probability as a threshold for a uniform `u64` draw (0: never, `u64::MAX`: always).
pub(crate) fn threshold(probability: f64) -> u64 {
    if probability <= 0.0 {
        0
    } else if probability >= 1.0 {
        u64::MAX
    } else {
        (probability * u64::MAX as f64) as u64
    }
}

// The tests need tracing's hooks: a build with `untraced` has none.
#[cfg(all(test, not(feature = "untraced")))]
mod flow_tests;
#[cfg(all(test, not(feature = "untraced")))]
mod tests;
