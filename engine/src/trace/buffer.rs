//! The engine's tracing state shared by shards and collectors: per-shard span buffers, the
//! live sampling threshold, and span-id allocation.
//!
//! Each shard has one bounded [`ArrayQueue`] of spans: the shard (and the shard-thread code
//! holding its [`SpanSink`]) pushes, a collector ([`TraceHandle::drain`]) pops. A push into a
//! full buffer drops the span and counts it in that shard's `dropped`; nothing ever waits.
//! The sampling threshold is one atomic the shards read once per pass, never per message.
//!
//! Invariants: span ids are `salt ^ ((shard + 1) << 48 | lane << 47 | n)` with `n` a counter
//! of the shard's lane (the dispatcher's own, without atomics, or the span sinks'), so ids
//! from different shards or lanes never collide and never repeat within 2^47 spans of one
//! lane; `recorded + dropped` is every span a shard produced.

use super::{threshold, Span, TraceConfig, TraceContext};
use crossbeam_queue::ArrayQueue;
use crossbeam_utils::CachePadded;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// One shard's span buffer and its counters.
struct ShardSpans {
    queue: ArrayQueue<Span>,
    /// Spans taken out by collectors (written off the shard).
    drained: AtomicU64,
    dropped: AtomicU64,
    next_id: AtomicU64,
}

/// See the module documentation.
pub(crate) struct TraceShared {
    shards: Box<[CachePadded<ShardSpans>]>,
    threshold: AtomicU64,
    pub(crate) max_depth: u16,
    salt: u64,
    epoch_unix_ns: u64,
    clock: crate::shard::Clock,
}

/// The bit of a span id's low 48 that marks the dispatcher's lane (the sinks' ids lack it).
const DISPATCHER_LANE: u64 = 1 << 47;
/// The counter bits of either lane.
const SINK_LANE_MASK: u64 = DISPATCHER_LANE - 1;

/// xorshift64*: the next uniform 64-bit draw from `state` (never 0): one multiply, uniform
/// enough for sampling.
#[inline]
pub(crate) fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

/// SplitMix64: a well-mixed 64-bit value from a counter (ids and trace ids, not security).
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl TraceShared {
    /// Buffers for `shards` shards; `clock_now_ns` is the engine clock now, to date its epoch.
    pub(crate) fn new(shards: usize, config: TraceConfig, clock: crate::shard::Clock) -> Self {
        let clock_now_ns = clock.now_ns();
        let wall =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        let salt = mix(wall ^ u64::from(std::process::id()).rotate_left(32));
        Self {
            shards: (0..shards)
                .map(|_| {
                    CachePadded::new(ShardSpans {
                        queue: ArrayQueue::new(config.buffer.max(1)),
                        drained: AtomicU64::new(0),
                        dropped: AtomicU64::new(0),
                        next_id: AtomicU64::new(1),
                    })
                })
                .collect(),
            threshold: AtomicU64::new(threshold(config.sample)),
            max_depth: config.max_depth,
            salt,
            epoch_unix_ns: wall.saturating_sub(clock_now_ns),
            clock,
        }
    }

    /// The sampling threshold now (a uniform draw below it samples).
    #[inline]
    pub(crate) fn threshold(&self) -> u64 {
        self.threshold.load(Ordering::Relaxed)
    }

    /// Whether a caller off the dispatcher (a host thread's send, a connection's command)
    /// starts a trace now: one draw of this thread's generator against the threshold.
    pub(crate) fn sample_here(&self) -> bool {
        thread_local! {
            static RNG: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
        }
        let threshold = self.threshold();
        if threshold == 0 {
            return false;
        }
        let draw = RNG.with(|cell| {
            let mut state = cell.get();
            if state == 0 {
                state = mix(self.span_id(0)) | 1;
            }
            let draw = xorshift(&mut state);
            cell.set(state);
            draw
        });
        draw <= threshold
    }

    /// A fresh span id of `shard`'s sink lane (span sinks, host roots): an atomic counter.
    pub(crate) fn span_id(&self, shard: usize) -> u64 {
        let n = self.shards[shard].next_id.fetch_add(1, Ordering::Relaxed);
        self.id_of(shard, n & SINK_LANE_MASK)
    }

    /// The span id `n` of `shard`'s dispatcher lane (the shard counts `n` itself).
    #[inline]
    pub(crate) fn dispatcher_span_id(&self, shard: usize, n: u64) -> u64 {
        self.id_of(shard, DISPATCHER_LANE | (n & SINK_LANE_MASK))
    }

    #[inline]
    fn id_of(&self, shard: usize, n: u64) -> u64 {
        let id = self.salt ^ (((shard as u64 + 1) << 48) | n);
        if id == 0 {
            1
        } else {
            id
        }
    }

    /// A fresh trace id, mixed from a span id (unique) and the engine's salt.
    pub(crate) fn trace_id(&self, span_id: u64) -> u128 {
        let hi = mix(span_id ^ self.salt.rotate_left(17));
        let lo = mix(span_id.wrapping_add(self.salt));
        (u128::from(hi) << 64 | u128::from(lo)).max(1)
    }

    /// Records `span` in `shard`'s buffer, or counts it dropped when the buffer is full.
    /// (Recorded spans are counted where they are drained, off the shard.)
    #[inline]
    pub(crate) fn record(&self, shard: usize, span: Span) {
        let spans = &self.shards[shard];
        if spans.queue.push(span).is_err() {
            spans.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The host's view of an engine's tracing: sampling, draining spans, counters. Cheap to clone;
/// from [`EngineHandle::tracing`](crate::engine::EngineHandle::tracing).
#[derive(Clone)]
pub struct TraceHandle {
    pub(crate) shared: Arc<TraceShared>,
}

impl std::fmt::Debug for TraceHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceHandle").field("sample", &self.sample()).field("dropped", &self.dropped()).finish()
    }
}

impl TraceHandle {
    /// Changes the sampling probability (0 to 1, clamped; NaN is 0). Shards take it up at
    /// their next pass.
    pub fn set_sample(&self, probability: f64) {
        let p = if probability.is_nan() { 0.0 } else { probability };
        self.shared.threshold.store(threshold(p), Ordering::Relaxed);
    }

    /// The sampling probability now.
    pub fn sample(&self) -> f64 {
        self.shared.threshold() as f64 / u64::MAX as f64
    }

    /// Moves every buffered span into `out`; returns how many.
    pub fn drain(&self, out: &mut Vec<Span>) -> usize {
        self.drain_max(out, usize::MAX)
    }

    /// Moves up to `max` buffered spans into `out` (taking from every shard in turn); returns
    /// how many.
    pub fn drain_max(&self, out: &mut Vec<Span>, max: usize) -> usize {
        let mut taken = 0;
        let mut progress = true;
        while taken < max && progress {
            progress = false;
            for spans in self.shared.shards.iter() {
                if taken == max {
                    break;
                }
                if let Some(span) = spans.queue.pop() {
                    spans.drained.fetch_add(1, Ordering::Relaxed);
                    out.push(span);
                    taken += 1;
                    progress = true;
                }
            }
        }
        taken
    }

    /// Spans recorded into the buffers since the engine started (drained or not).
    pub fn recorded(&self) -> u64 {
        self.shared.shards.iter().map(|s| s.drained.load(Ordering::Relaxed) + s.queue.len() as u64).sum()
    }

    /// Spans dropped because a shard's buffer was full.
    pub fn dropped(&self) -> u64 {
        self.shared.shards.iter().map(|s| s.dropped.load(Ordering::Relaxed)).sum()
    }

    /// Unix time, in nanoseconds, of the engine clock's zero: add it to a span's times.
    pub fn epoch_unix_ns(&self) -> u64 {
        self.shared.epoch_unix_ns
    }

    /// A sink that records spans into `shard`'s buffer, for code on that shard's thread that
    /// is not an agent (a RESP connection task). `None` when there is no such shard.
    pub fn sink(&self, shard: usize) -> Option<SpanSink> {
        (shard < self.shared.shards.len()).then(|| SpanSink { shared: self.shared.clone(), shard })
    }
}

/// Records spans into one shard's buffer and hands out span ids and root contexts: for code
/// outside the dispatcher. Recording never blocks: a full buffer counts the span as dropped.
#[derive(Clone)]
pub struct SpanSink {
    shared: Arc<TraceShared>,
    shard: usize,
}

impl std::fmt::Debug for SpanSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpanSink").field("shard", &self.shard).finish()
    }
}

impl SpanSink {
    /// The shard whose buffer this sink fills.
    pub fn shard(&self) -> usize {
        self.shard
    }

    /// Whether a caller that samples on its own (a connection, per command) should start a
    /// trace now, by the engine's sampling probability (one draw of this thread's generator).
    pub fn should_sample(&self) -> bool {
        self.shared.sample_here()
    }

    /// The engine clock now, in nanoseconds: the time base of every span.
    pub fn now_ns(&self) -> u64 {
        self.shared.clock.now_ns()
    }

    /// A fresh span id.
    pub fn span_id(&self) -> u64 {
        self.shared.span_id(self.shard)
    }

    /// A fresh trace: a new trace id, with `span_id` as its root span.
    pub fn new_root(&self) -> TraceContext {
        let span_id = self.span_id();
        TraceContext { trace_id: self.shared.trace_id(span_id), span_id }
    }

    /// Records `span` (dropped and counted when the buffer is full).
    pub fn record(&self, span: Span) {
        self.shared.record(self.shard, span);
    }
}
