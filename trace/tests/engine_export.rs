//! A real two-shard engine's spans through the offline exporters: each span survives the
//! wire format, the Chrome JSON has a slice per span and a flow per parent link, and the
//! slowest path of an ask across shards is send -> ask -> reply -> answer.

#[path = "support/traced_ask.rs"]
mod traced_ask;

use nexus_engine::trace::{Hop, Span, TraceConfig};
use nexus_trace::{chrome_json, decode, encode, render_paths, slowest, SpanRecord};
use serde_json::Value;
use std::time::{Duration, Instant};
use traced_ask::{spawn_pair, traced_engine, FrontMsg};

/// The spans of one traced ask across shards, drained from a real engine, and its epoch.
fn ask_spans() -> (Vec<SpanRecord>, u64) {
    let engine = traced_engine(TraceConfig::new());
    let h = engine.handle();
    let (front, _back, _done) = spawn_pair(&h);
    let tracing = h.tracing();
    tracing.set_sample(1.0);
    h.send(front, FrontMsg::Go).map_err(|_| "refused").expect("send");
    let mut spans: Vec<Span> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !spans.iter().any(|s| s.hop == Hop::Answer) {
        assert!(Instant::now() < deadline, "no answer span: {spans:#?}");
        std::thread::sleep(Duration::from_millis(5));
        tracing.drain(&mut spans);
    }
    tracing.set_sample(0.0);
    let epoch = tracing.epoch_unix_ns();
    engine.shutdown().expect("shutdown");
    (spans.iter().map(SpanRecord::from).collect(), epoch)
}

#[test]
fn engine_spans_survive_the_wire_and_export_to_chrome_and_paths() {
    let (spans, epoch) = ask_spans();
    assert!(epoch > 1_500_000_000_000_000_000, "a unix epoch: {epoch}");

    // The wire format carries every real span unchanged.
    let shipped: Vec<SpanRecord> = spans.iter().map(|s| decode(&encode(s)).expect("decodes")).collect();
    assert_eq!(shipped, spans);

    // Chrome JSON: one slice per span, one flow (s + f) per span whose parent is present.
    let doc: Value = serde_json::from_str(&chrome_json(&shipped, epoch)).expect("valid JSON");
    let events = doc["traceEvents"].as_array().expect("events");
    let count = |ph: &str| events.iter().filter(|e| e["ph"] == ph).count();
    let linked = spans.iter().filter(|s| s.parent_id != 0 && spans.iter().any(|p| p.span_id == s.parent_id)).count();
    assert_eq!(count("X"), spans.len());
    assert_eq!((count("s"), count("f")), (linked, linked));
    assert!(linked >= 3, "ask, reply and answer have parents: {spans:#?}");

    // The slowest path is the whole ask: host send, ask on shard 1, reply and answer on 0.
    let paths = slowest(&shipped, 1);
    let hops: Vec<(Hop, u16)> = paths[0].spans.iter().map(|s| (s.hop, s.shard)).collect();
    assert_eq!(hops, [(Hop::Send, 0), (Hop::Ask, 1), (Hop::Reply, 0), (Hop::Answer, 0)]);
    let root = &paths[0].spans[0];
    let leaf = &paths[0].spans[3];
    assert_eq!(paths[0].duration_ns, leaf.finished_ns - root.enqueued_ns);
    let text = render_paths(&paths);
    assert_eq!(text.lines().count(), 5, "{text}");
    assert!(text.lines().nth(2).is_some_and(|l| l.contains("ask") && l.contains("BackMsg")), "{text}");
}
