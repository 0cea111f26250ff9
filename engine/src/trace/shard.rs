//! One shard's tracing state, and how a sampled envelope is wrapped and unwrapped.
//!
//! `ShardTracer::on` is the one flag the send and dispatch paths test: it is true while
//! sampling is on or a traced hop is being handled (`current`). Everything past that test is
//! out of line. A sampled envelope's payload is a [`Traced`] holding the original payload; the
//! envelope has `FLAG_TRACED`. Wrapping keeps the envelope's kind, target, flags and
//! accounting; unwrapping restores its payload exactly.
//!
//! Invariants: `current` is `Some` only while a traced hop's handler (or the code an adopted
//! context covers) runs on this shard, and is cleared at the end of every agent turn and pass;
//! a `Traced` value lives only inside an envelope that has `FLAG_TRACED`.

use super::buffer::{mix, xorshift, TraceShared};
use super::{Hop, Span, TraceContext, NO_AGENT};
use crate::envelope::{Envelope, Kind, FLAG_ASK, FLAG_TRACED};
use crate::payload::Payload;
use std::sync::Arc;

/// The hop being handled: its context (span id = this hop's span) and depth from the root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Current {
    pub(crate) ctx: TraceContext,
    pub(crate) depth: u16,
}

/// What a sampled envelope carries instead of its payload: 64 bytes, one pool block.
pub(crate) struct Traced {
    trace_hi: u64,
    trace_lo: u64,
    parent: u64,
    /// Enqueue time (engine-clock ns, low 48 bits) and depth (high 16 bits).
    packed: u64,
    inner: Payload,
}

const ENQ_MASK: u64 = (1 << 48) - 1;

/// A traced hop whose handler is running: what its span needs at the end.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OpenHop {
    span: Span,
    saved: Option<Current>,
}

/// See the module documentation.
pub(crate) struct ShardTracer {
    /// Sampling is on, or `current` is set: the slow paths run (read through `on`).
    active: bool,
    threshold: u64,
    rng: u64,
    pub(crate) current: Option<Current>,
    pub(crate) shared: Arc<TraceShared>,
    shard: usize,
    /// The next span id's counter for the dispatcher's own spans (no atomic: its id lane is
    /// the shard's, apart from the span sinks', see `TraceShared::span_id`).
    next_id: u64,
    /// Sends still to let by untraced before the next root (see `next_skip`).
    skip: u64,
}

impl ShardTracer {
    pub(crate) fn new(shared: Arc<TraceShared>, shard: usize) -> Self {
        let threshold = shared.threshold();
        let rng = mix(shared.span_id(shard)) | 1;
        let mut tracer =
            Self { active: threshold != 0, threshold, rng, current: None, shared, shard, next_id: 0, skip: 0 };
        tracer.skip = tracer.next_skip();
        tracer
    }

    /// A fresh span id of this shard's dispatcher lane.
    #[inline]
    fn span_id(&mut self) -> u64 {
        self.next_id = self.next_id.wrapping_add(1);
        self.shared.dispatcher_span_id(self.shard, self.next_id)
    }

    /// Whether tracing has work on this shard now (sampling is on, or a traced hop is being
    /// handled): the one test the send and dispatch paths make. Always false in a build with
    /// the `untraced` feature.
    #[inline(always)]
    pub(crate) fn on(&self) -> bool {
        !cfg!(feature = "untraced") && self.active
    }

    /// Takes up a changed sampling threshold; once per pass.
    #[inline]
    pub(crate) fn refresh(&mut self) {
        let threshold = self.shared.threshold();
        if threshold != self.threshold {
            self.threshold = threshold;
            self.active = threshold != 0 || self.current.is_some();
            self.skip = self.next_skip();
        }
    }

    /// Whether a traced hop is being handled here: what the dispatch path tests (sampling
    /// alone needs nothing there). Always false in a build with the `untraced` feature.
    #[inline(always)]
    pub(crate) fn holds_current(&self) -> bool {
        !cfg!(feature = "untraced") && self.current.is_some()
    }

    /// While sampling is on and nothing is current: counts one send down the geometric skip
    /// to the next root, and says whether this send can go out untraced without a look (the
    /// one inline step of sampling; at zero, `outgoing` decides).
    #[inline(always)]
    pub(crate) fn skips(&mut self) -> bool {
        if self.current.is_none() && self.skip > 0 {
            self.skip -= 1;
            return true;
        }
        false
    }

    /// Sends to let by before the next root: geometric with the sampling probability, so that
    /// one draw and one logarithm are paid per root, not per send.
    fn next_skip(&mut self) -> u64 {
        let p = self.threshold as f64 / u64::MAX as f64;
        if self.threshold == u64::MAX || p >= 1.0 {
            return 0;
        }
        if self.threshold == 0 {
            return u64::MAX;
        }
        // u in (0, 1]: the top 53 bits of a draw.
        let u = ((self.draw() >> 11) + 1) as f64 / (1u64 << 53) as f64;
        let skip = (u.ln() / (-p).ln_1p()).floor();
        if skip.is_finite() && skip >= 0.0 {
            skip.min(u64::MAX as f64) as u64
        } else {
            u64::MAX
        }
    }

    /// Forgets the current hop (end of a turn or pass).
    #[inline]
    pub(crate) fn clear(&mut self) {
        self.current = None;
        self.active = self.threshold != 0;
    }

    /// Makes `current` the hop being handled (or none).
    pub(crate) fn set_current(&mut self, current: Option<Current>) {
        self.current = current;
        self.active = self.threshold != 0 || current.is_some();
    }

    fn draw(&mut self) -> u64 {
        xorshift(&mut self.rng)
    }

    /// The context an envelope sent now gets: the current hop's (one level deeper), or a new
    /// root when the envelope is a user message and the draw samples it. `None`: untraced.
    /// A message an agent sends straight to itself is a step of its own loop (a yield), not
    /// a hop: it neither carries a trace on nor starts one, unless it is a timer's (`armed`),
    /// which is how protocols close windows and keep deadlines.
    fn outgoing_context(&mut self, env: &Envelope, armed: bool) -> Option<(TraceContext, u16)> {
        if !armed && env.kind == Kind::User && env.to == env.from {
            return None;
        }
        if let Some(current) = self.current {
            return (current.depth < self.shared.max_depth).then_some((current.ctx, current.depth + 1));
        }
        // The skip ran out: this user message is a root (another kind waits for the next one).
        if env.kind != Kind::User || self.threshold == 0 || self.skip > 0 {
            return None;
        }
        self.skip = self.next_skip();
        // A root: the new trace's id is mixed from a fresh id; the message's span is its root.
        let seed = self.span_id();
        Some((TraceContext { trace_id: self.shared.trace_id(seed), span_id: 0 }, 0))
    }

    /// Wraps `env` when it is to be traced (see `outgoing_context`); returns it either way.
    /// The clock (`now_ns`) is read only for a message that is traced.
    pub(crate) fn outgoing(&mut self, env: Envelope, now_ns: impl FnOnce() -> u64) -> Envelope {
        self.outgoing_as(env, false, now_ns)
    }

    /// [`Self::outgoing`] for a timer's message, armed now: it carries the arming hop's trace
    /// even when the agent armed it for itself.
    pub(crate) fn outgoing_armed(&mut self, env: Envelope, now_ns: impl FnOnce() -> u64) -> Envelope {
        self.outgoing_as(env, true, now_ns)
    }

    fn outgoing_as(&mut self, env: Envelope, armed: bool, now_ns: impl FnOnce() -> u64) -> Envelope {
        if env.flags & FLAG_TRACED != 0 || env.kind == Kind::System {
            return env;
        }
        match self.outgoing_context(&env, armed) {
            Some((ctx, depth)) => wrap(env, ctx, depth, now_ns()),
            None => env,
        }
    }

    /// Unwraps a traced envelope about to be handled by `agent` at `now_ns`, makes its hop the
    /// current one, and returns the plain envelope and the open hop for [`Self::end`].
    pub(crate) fn begin(&mut self, env: Envelope, agent: u64, now_ns: u64) -> (Envelope, OpenHop) {
        let hop = hop_of(&env);
        let (env, parent, depth, enqueued_ns) = unwrap(env, now_ns);
        let span_id = self.span_id();
        let span = Span {
            trace_id: parent.trace_id,
            span_id,
            parent_id: parent.span_id,
            hop,
            name: env.payload.type_name(),
            shard: self.shard as u16,
            agent,
            enqueued_ns,
            dispatched_ns: now_ns,
            finished_ns: now_ns,
        };
        let saved = self.current;
        self.set_current(Some(Current { ctx: TraceContext { trace_id: parent.trace_id, span_id }, depth }));
        (env, OpenHop { span, saved })
    }

    /// Closes a hop opened by [`Self::begin`]: records its span and restores what was current.
    pub(crate) fn end(&mut self, open: OpenHop, now_ns: u64) {
        let mut span = open.span;
        span.finished_ns = now_ns;
        self.shared.record(self.shard, span);
        self.set_current(open.saved);
    }

    /// Unwraps a traced envelope that ends here without a handler (a dead letter), recording
    /// a span of `hop` for it. Plain envelopes pass through.
    pub(crate) fn finish_here(&mut self, env: Envelope, hop: Hop, now_ns: u64) -> Envelope {
        if env.flags & FLAG_TRACED == 0 {
            return env;
        }
        let (env, open) = self.begin(env, NO_AGENT, now_ns);
        let mut open = open;
        open.span.hop = hop;
        self.end(open, now_ns);
        env
    }

    /// A new trace rooted at a fresh span of this shard.
    pub(crate) fn new_root(&mut self) -> TraceContext {
        let span_id = self.span_id();
        TraceContext { trace_id: self.shared.trace_id(span_id), span_id }
    }

    /// Records a span made elsewhere on this shard.
    pub(crate) fn record(&self, span: Span) {
        self.shared.record(self.shard, span);
    }
}

/// A host's send while sampling is on: a user message becomes a trace's root with the
/// sampling probability (a per-thread generator draws).
pub(crate) fn host_outgoing(shared: &crate::shard::shared::Shared, env: Envelope) -> Envelope {
    if env.kind != Kind::User || env.flags & FLAG_TRACED != 0 || !shared.trace.sample_here() {
        return env;
    }
    let seed = shared.trace.span_id(0);
    let ctx = TraceContext { trace_id: shared.trace.trace_id(seed), span_id: 0 };
    wrap(env, ctx, 0, shared.clock.now_ns())
}

/// The hop an envelope makes, by its kind.
fn hop_of(env: &Envelope) -> Hop {
    match env.kind {
        Kind::User if env.flags & FLAG_ASK != 0 => Hop::Ask,
        Kind::User | Kind::System => Hop::Send,
        Kind::Reply => Hop::Reply,
        Kind::Answer => Hop::Answer,
        Kind::Signal => Hop::Signal,
        Kind::Undelivered => Hop::Undelivered,
    }
}

/// Puts `env`'s payload in a [`Traced`] with `ctx` (its span id is the parent) and sets the
/// flag.
pub(crate) fn wrap(mut env: Envelope, ctx: TraceContext, depth: u16, now_ns: u64) -> Envelope {
    let inner = std::mem::replace(&mut env.payload, Payload::new(()));
    let traced = Traced {
        trace_hi: (ctx.trace_id >> 64) as u64,
        trace_lo: ctx.trace_id as u64,
        parent: ctx.span_id,
        packed: (now_ns & ENQ_MASK) | (u64::from(depth) << 48),
        inner,
    };
    env.payload = Payload::new(traced);
    env.flags |= FLAG_TRACED;
    env
}

/// Undoes [`wrap`]: the plain envelope, the sender's context, the depth, and the enqueue time
/// rebuilt against `now_ns`. A flagged envelope whose payload is not a `Traced` (never made)
/// comes back as it is, as a root.
pub(crate) fn unwrap(mut env: Envelope, now_ns: u64) -> (Envelope, TraceContext, u16, u64) {
    env.flags &= !FLAG_TRACED;
    let payload = std::mem::replace(&mut env.payload, Payload::new(()));
    match payload.take::<Traced>() {
        Ok(t) => {
            env.payload = t.inner;
            let low = t.packed & ENQ_MASK;
            // The enqueue time is at most 78 hours before now: rebuild its high bits.
            let mut enqueued = (now_ns & !ENQ_MASK) | low;
            if enqueued > now_ns {
                enqueued = enqueued.saturating_sub(1 << 48);
            }
            let ctx =
                TraceContext { trace_id: u128::from(t.trace_hi) << 64 | u128::from(t.trace_lo), span_id: t.parent };
            (env, ctx, (t.packed >> 48) as u16, enqueued)
        }
        Err(payload) => {
            env.payload = payload;
            (env, TraceContext { trace_id: 1, span_id: 0 }, 0, now_ns)
        }
    }
}

/// Strips the trace from an envelope handed back to its sender (a refused send): no span.
pub(crate) fn discard(env: Envelope) -> Envelope {
    if env.flags & FLAG_TRACED == 0 {
        return env;
    }
    unwrap(env, 0).0
}

const _: () = assert!(crate::payload::travels_unboxed::<Traced>(), "a Traced must fit one pool block");
