//! Tracing's unit tests: the context's W3C form, the wrap/unwrap round trip, sampling roots,
//! and a full buffer that loses spans only (counted).

use super::shard::{unwrap, wrap};
use super::*;
use crate::envelope::{Envelope, Kind, FLAG_COUNTED, FLAG_TRACED};
use crate::payload::Payload;

#[test]
fn traceparent_round_trips_and_refuses_bad_values() {
    let ctx = TraceContext { trace_id: 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736, span_id: 0x00f0_67aa_0ba9_02b7 };
    let text = ctx.to_traceparent();
    assert_eq!(text, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    assert_eq!(TraceContext::parse_traceparent(&text), Ok(ctx));
    for bad in [
        "",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
    ] {
        assert!(TraceContext::parse_traceparent(bad).is_err(), "{bad:?} was accepted");
    }
}

#[test]
fn wrap_then_unwrap_restores_the_envelope_and_carries_the_context() {
    let to = crate::agent::AgentId::new(1, 7, 3);
    let env = Envelope::user(to, 42, Payload::new(String::from("hello")));
    let ctx = TraceContext { trace_id: 99, span_id: 5 };
    let wrapped = wrap(env, ctx, 3, 1_000);
    assert_eq!(wrapped.flags, FLAG_COUNTED | FLAG_TRACED);
    let (env, back, depth, enqueued) = unwrap(wrapped, 5_000);
    assert_eq!((back, depth, enqueued), (ctx, 3, 1_000));
    assert_eq!(env.flags, FLAG_COUNTED);
    assert_eq!(env.kind, Kind::User);
    assert_eq!((env.to, env.from), (to.to_bits(), 42));
    assert_eq!(env.payload.take::<String>().ok().as_deref(), Some("hello"));
}

#[test]
fn enqueue_time_is_rebuilt_across_the_48_bit_boundary() {
    let before = (1u64 << 48) - 10;
    let env = Envelope::user(crate::agent::AgentId::new(0, 1, 0), 0, Payload::new(1u32));
    let (_, _, _, enqueued) = unwrap(wrap(env, TraceContext { trace_id: 1, span_id: 1 }, 0, before), before + 100);
    assert_eq!(enqueued, before);
}

fn shared(buffer: usize, sample: f64) -> std::sync::Arc<TraceShared> {
    std::sync::Arc::new(TraceShared::new(
        2,
        TraceConfig::new().buffer(buffer).sample(sample),
        crate::shard::Clock::new(),
    ))
}

#[test]
fn a_full_buffer_drops_spans_only_and_counts_them() {
    let handle = TraceHandle { shared: shared(4, 0.0) };
    let sink = handle.sink(1).expect("shard 1 exists");
    assert!(handle.sink(2).is_none());
    let root = sink.new_root();
    for i in 0..10 {
        sink.record(Span::external(root, sink.span_id(), "test", 1, i, i + 1));
    }
    assert_eq!((handle.recorded(), handle.dropped()), (4, 6));
    let mut out = Vec::new();
    assert_eq!(handle.drain(&mut out), 4);
    assert!(out.iter().all(|s| s.trace_id == root.trace_id && s.parent_id == root.span_id));
    // Drained: room again.
    sink.record(Span::external(root, sink.span_id(), "test", 1, 0, 1));
    assert_eq!((handle.recorded(), handle.dropped()), (5, 6));
}

#[test]
fn span_ids_are_unique_across_shards() {
    let shared = shared(1, 0.0);
    let mut seen = std::collections::HashSet::new();
    for _ in 0..1000 {
        assert!(seen.insert(shared.span_id(0)));
        assert!(seen.insert(shared.span_id(1)));
    }
    assert!(!seen.contains(&0));
}

#[test]
fn sampling_starts_roots_at_about_the_probability() {
    let mut tracer = shard::ShardTracer::new(shared(1, 0.25), 0);
    assert!(tracer.on());
    let to = crate::agent::AgentId::new(0, 1, 0);
    // As `Shard::route` does: the inline skip first, `outgoing` when it runs out.
    let traced = (0..20_000)
        .filter(|_| {
            !tracer.skips() && tracer.outgoing(Envelope::user(to, 0, Payload::new(0u8)), || 1).flags & FLAG_TRACED != 0
        })
        .count();
    assert!((4_000..6_000).contains(&traced), "{traced} of 20000 sampled at 0.25");
    let mut off = shard::ShardTracer::new(shared(1, 0.0), 0);
    assert!(!off.on());
    assert_eq!(off.outgoing(Envelope::user(to, 0, Payload::new(0u8)), || 1).flags & FLAG_TRACED, 0);
}

#[test]
fn a_trace_stops_at_its_depth_limit() {
    let shared = std::sync::Arc::new(TraceShared::new(1, TraceConfig::new().max_depth(2), crate::shard::Clock::new()));
    let mut tracer = shard::ShardTracer::new(shared, 0);
    let to = crate::agent::AgentId::new(0, 1, 0);
    let ctx = TraceContext { trace_id: 7, span_id: 9 };
    tracer.set_current(Some(shard::Current { ctx, depth: 1 }));
    assert_ne!(tracer.outgoing(Envelope::user(to, 0, Payload::new(0u8)), || 1).flags & FLAG_TRACED, 0);
    tracer.set_current(Some(shard::Current { ctx, depth: 2 }));
    assert_eq!(tracer.outgoing(Envelope::user(to, 0, Payload::new(0u8)), || 1).flags & FLAG_TRACED, 0);
}
