//! The Chrome JSON parsed back: every span's slice, queue slice and flows are where they
//! should be.

use super::*;
use crate::testing::span;
use serde_json::Value;

fn events(spans: &[SpanRecord]) -> (Value, Vec<Value>) {
    let text = chrome_json(spans, 1_700_000_000_000_000_000);
    let doc: Value = serde_json::from_str(&text).expect("valid JSON");
    let events = doc["traceEvents"].as_array().expect("traceEvents").clone();
    (doc, events)
}

fn with_ph<'a>(events: &'a [Value], ph: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["ph"] == ph).collect()
}

fn close(a: &Value, b: f64) -> bool {
    a.as_f64().is_some_and(|a| (a - b).abs() < 1e-6)
}

/// A root on shard 0 that sends to shard 1, which sends back to shard 0; plus an orphan.
fn tree() -> Vec<SpanRecord> {
    vec![
        span(5, 1, 0, 0, [1_000, 1_000, 9_500]),
        span(5, 2, 1, 1, [2_250, 4_000, 6_000]),
        span(5, 3, 2, 0, [5_000, 9_600, 12_345]),
        span(5, 4, 77, 1, [20_000, 20_000, 20_001]),
    ]
}

#[test]
fn every_span_is_a_complete_event_on_its_shard_with_its_args() {
    let spans = tree();
    let (doc, events) = events(&spans);
    assert_eq!(doc["displayTimeUnit"], "ns");
    assert_eq!(doc["otherData"]["epoch_unix_ns"], 1_700_000_000_000_000_000u64);
    assert_eq!(doc["otherData"]["spans"], 4);
    let slices = with_ph(&events, "X");
    assert_eq!(slices.len(), spans.len());
    for s in &spans {
        let e = slices
            .iter()
            .find(|e| e["args"]["span_id"] == format!("{:016x}", s.span_id))
            .unwrap_or_else(|| panic!("no slice for {s:?}"));
        assert_eq!(e["pid"], ENGINE_PID);
        assert_eq!(e["tid"], s.shard);
        assert!(close(&e["ts"], s.dispatched_ns as f64 / 1000.0), "{e}");
        assert!(close(&e["dur"], s.handler_ns() as f64 / 1000.0), "{e}");
        assert_eq!(e["name"], format!("{} M{}", s.hop.name(), s.span_id));
        let args = &e["args"];
        assert_eq!(args["trace_id"], format!("{:032x}", s.trace_id));
        assert_eq!(args["trace_id"].as_str().map(str::len), Some(32));
        assert_eq!(args["parent_id"], format!("{:016x}", s.parent_id));
        assert_eq!(args["hop"], s.hop.name());
        assert_eq!(args["agent"], s.agent_text());
        assert_eq!(args["queued_ns"], s.queued_ns());
        assert_eq!(args["handler_ns"], s.handler_ns());
        assert_eq!(args["type"], s.name);
    }
}

#[test]
fn shards_are_named_threads() {
    let (_, events) = events(&tree());
    let names: Vec<_> = with_ph(&events, "M")
        .into_iter()
        .filter(|e| e["name"] == "thread_name")
        .map(|e| e["args"]["name"].clone())
        .collect();
    assert_eq!(names, ["shard 0", "shard 1"]);
}

#[test]
fn queue_time_is_an_async_slice_from_enqueue_to_dispatch() {
    let spans = tree();
    let (_, events) = events(&spans);
    let begins = with_ph(&events, "b");
    let ends = with_ph(&events, "e");
    // The root and the orphan were dispatched as they were enqueued: no queue slice.
    assert_eq!((begins.len(), ends.len()), (2, 2));
    for s in spans.iter().filter(|s| s.queued_ns() > 0) {
        let id = format!("{:x}", s.span_id);
        let b = begins.iter().find(|e| e["id"] == id).expect("a begin");
        let e = ends.iter().find(|e| e["id"] == id).expect("an end");
        assert!(close(&b["ts"], s.enqueued_ns as f64 / 1000.0));
        assert!(close(&e["ts"], s.dispatched_ns as f64 / 1000.0));
        assert_eq!(
            (&b["tid"], &b["cat"], &e["cat"]),
            (&Value::from(s.shard), &Value::from("queue"), &Value::from("queue"))
        );
    }
}

#[test]
fn flows_link_each_parent_to_its_child_across_shards() {
    let spans = tree();
    let (_, events) = events(&spans);
    let starts = with_ph(&events, "s");
    let finishes = with_ph(&events, "f");
    // Two parent links; the orphan's parent is absent, so it has no flow.
    assert_eq!((starts.len(), finishes.len()), (2, 2));
    for child in &spans[1..3] {
        let parent = spans.iter().find(|p| p.span_id == child.parent_id).expect("parent");
        let id = format!("{:x}", child.span_id);
        let s = starts.iter().find(|e| e["id"] == id).expect("flow start");
        let f = finishes.iter().find(|e| e["id"] == id).expect("flow finish");
        assert_eq!((&s["tid"], &f["tid"]), (&Value::from(parent.shard), &Value::from(child.shard)));
        assert_eq!(f["bp"], "e");
        assert_eq!(s["cat"], f["cat"]);
        // The start lies inside the parent's slice, the finish at the child's dispatch.
        let ts = s["ts"].as_f64().expect("ts");
        assert!(ts >= parent.dispatched_ns as f64 / 1000.0 && ts <= parent.finished_ns as f64 / 1000.0);
        assert!(close(&f["ts"], child.dispatched_ns as f64 / 1000.0));
    }
    // Span 3 was sent at 5.0 µs, inside span 2's slice (4.0..6.0): the start is not clamped.
    let s3 = starts.iter().find(|e| e["id"] == "3").expect("flow 3");
    assert!(close(&s3["ts"], 5.0));
    // Span 2 was "sent" at 2.25 µs, inside the root (1.0..9.5).
    let s2 = starts.iter().find(|e| e["id"] == "2").expect("flow 2");
    assert!(close(&s2["ts"], 2.25));
}

#[test]
fn a_send_time_outside_the_parent_is_clamped_into_it() {
    let spans = vec![span(1, 10, 0, 0, [0, 100, 200]), span(1, 11, 10, 1, [500, 600, 700])];
    let (_, events) = events(&spans);
    let s = with_ph(&events, "s");
    assert!(close(&s[0]["ts"], 0.2), "{}", s[0]);
}

#[test]
fn no_spans_is_still_a_valid_trace() {
    let (doc, events) = events(&[]);
    assert_eq!(events.len(), 1, "only the process name");
    assert_eq!(doc["otherData"]["spans"], 0);
}

#[test]
fn names_with_quotes_and_big_ids_survive() {
    let mut s = span(u128::MAX, u64::MAX, 0, 0, [0, 1, 2]);
    s.name = "weird \"name\"\n::X".into();
    let (_, events) = events(&[s]);
    let x = with_ph(&events, "X")[0];
    assert_eq!(x["args"]["type"], "weird \"name\"\n::X");
    assert_eq!(x["args"]["trace_id"], "f".repeat(32));
    assert_eq!(x["args"]["span_id"], "f".repeat(16));
}
