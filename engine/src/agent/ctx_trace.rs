//! The tracing half of `Ctx`: the current trace, starting or adopting one, and recording
//! spans made outside the dispatcher.
//!
//! While a traced message is handled, its hop is current: everything the handler sends
//! carries the trace on (see [`crate::trace`]). A handler can also start a trace
//! ([`Ctx::start_trace`], an agent's opt-in) or continue one from outside
//! ([`Ctx::adopt_trace`], a RESP connection's command or a W3C `traceparent`); either lasts
//! until the handler returns.

use super::ctx::Ctx;
use crate::trace::shard::Current;
use crate::trace::{Hop, Span, SpanSink, TraceContext, TraceHandle};

impl Ctx<'_> {
    /// The trace of the message being handled (its context names this hop's span), if it is
    /// traced.
    pub fn trace_context(&self) -> Option<TraceContext> {
        self.shard.tracer.current.map(|c| c.ctx)
    }

    /// Starts a trace here, unless the message being handled is traced already: everything
    /// this handler sends from now on is traced, as children of a span that marks this point
    /// (named `start_trace`, on this agent). Returns the context the sends carry.
    pub fn start_trace(&mut self) -> TraceContext {
        if let Some(current) = self.shard.tracer.current {
            return current.ctx;
        }
        let ctx = self.shard.tracer.new_root();
        let now = self.shard.shared.clock.now_ns();
        self.shard.tracer.record(Span {
            trace_id: ctx.trace_id,
            span_id: ctx.span_id,
            parent_id: 0,
            hop: Hop::External,
            name: "start_trace",
            shard: self.shard.index as u16,
            agent: self.me.to_bits(),
            enqueued_ns: now,
            dispatched_ns: now,
            finished_ns: now,
        });
        self.shard.tracer.set_current(Some(Current { ctx, depth: 0 }));
        ctx
    }

    /// Continues `parent`'s trace for the rest of this handler: what it sends from now on
    /// is traced as children of `parent.span_id` (a span recorded elsewhere, such as a
    /// connection's read of a command). Replaces any current trace.
    pub fn adopt_trace(&mut self, parent: TraceContext) {
        self.shard.tracer.set_current(Some(Current { ctx: parent, depth: 0 }));
    }

    /// Ends the current trace for the rest of this handler: what it sends from now on is
    /// untraced (or sampled as new roots, when sampling is on).
    pub fn end_trace(&mut self) {
        self.shard.tracer.set_current(None);
    }

    /// Records a span made by this agent's own code (see [`Span::external`]). Never blocks: a
    /// full buffer counts the span as dropped.
    pub fn record_span(&mut self, span: Span) {
        self.shard.tracer.record(span);
    }

    /// A sink for this shard's span buffer, for code on this shard's thread that is not an
    /// agent (a connection task): it records spans and makes span ids and root contexts.
    pub fn span_sink(&self) -> SpanSink {
        TraceHandle { shared: self.shard.shared.trace.clone() }
            .sink(self.shard.index)
            .unwrap_or_else(|| unreachable!("a shard's own index names one of its engine's shards"))
    }
}
