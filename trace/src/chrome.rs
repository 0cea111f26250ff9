//! Chrome Trace Event JSON (the format chrome://tracing and the Perfetto UI open) from
//! [`SpanRecord`]s.
//!
//! Layout of the output: pid 1 is the engine, one thread (tid) per shard, named `shard N` by
//! metadata events. Each span becomes:
//! - a complete event (`"ph":"X"`, category `hop`) on its shard's thread for the handler time,
//!   named `"<hop> <short type>"`, with the span's ids, hop, agent, queue and handler times
//!   and full message type in `args`;
//! - when it waited in a mailbox, an async slice (`"ph":"b"`/`"e"`, category `queue`, named
//!   `queued <short type>`, id = span id) from enqueue to dispatch: async, because queue
//!   times overlap other handlers on the same shard and complete events on one thread must
//!   nest;
//! - when its parent is in the same input, a flow (`"ph":"s"` on the parent's thread at the
//!   moment the message was sent, clamped into the parent's handler slice; `"ph":"f"`,
//!   `"bp":"e"` on the child's thread at its dispatch; category `flow`, id = the child's span
//!   id in hex), which Perfetto draws as an arrow across shards.
//!
//! Times: `ts`/`dur` are microseconds with a fractional part on the **engine clock** (its zero
//! is the engine's start), not unix time: unix microseconds as JSON doubles would lose the
//! sub-microsecond part. `otherData.epoch_unix_ns` is the unix time of the clock's zero.
//!
//! Invariants: the output is one JSON object; every span yields exactly one `X` event; a flow
//! is emitted only when both its ends are; 64- and 128-bit ids are written as hex strings
//! (JSON numbers lose precision past 2^53).

use crate::record::SpanRecord;
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::io::{self, Write};

/// The pid every event carries: the engine is one process.
pub const ENGINE_PID: u32 = 1;

/// Writes `spans` as Chrome Trace Event JSON to `out` (see the module documentation);
/// `epoch_unix_ns` is recorded in `otherData`.
pub fn write_chrome(spans: &[SpanRecord], epoch_unix_ns: u64, mut out: impl Write) -> io::Result<()> {
    out.write_all(b"{\"traceEvents\":[\n")?;
    let mut first = true;
    let mut emit = |out: &mut dyn Write, event: Value| -> io::Result<()> {
        if !first {
            out.write_all(b",\n")?;
        }
        first = false;
        serde_json::to_writer(&mut *out, &event).map_err(io::Error::from)
    };
    for event in metadata_events(spans) {
        emit(&mut out, event)?;
    }
    let by_id = index_by_id(spans);
    for span in spans {
        emit(&mut out, handler_event(span))?;
        if span.queued_ns() > 0 {
            let [begin, end] = queue_events(span);
            emit(&mut out, begin)?;
            emit(&mut out, end)?;
        }
        if let Some(parent) = parent_of(span, &by_id).map(|i| &spans[i]) {
            let [start, finish] = flow_events(parent, span);
            emit(&mut out, start)?;
            emit(&mut out, finish)?;
        }
    }
    let other = json!({
        "exporter": "nexus-trace",
        "clock": "engine (ts 0 = engine start)",
        "epoch_unix_ns": epoch_unix_ns,
        "spans": spans.len(),
    });
    out.write_all(b"\n],\"displayTimeUnit\":\"ns\",\"otherData\":")?;
    serde_json::to_writer(&mut out, &other).map_err(io::Error::from)?;
    out.write_all(b"}\n")?;
    out.flush()
}

/// [`write_chrome`] into a `String`.
pub fn chrome_json(spans: &[SpanRecord], epoch_unix_ns: u64) -> String {
    let mut buf = Vec::new();
    // Writing into a Vec cannot fail, and serde_json writes UTF-8 only.
    let _ = write_chrome(spans, epoch_unix_ns, &mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// Nanoseconds as the microseconds Chrome JSON counts in.
pub fn micros(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

/// The first index of each `(trace_id, span_id)`.
fn index_by_id(spans: &[SpanRecord]) -> HashMap<(u128, u64), usize> {
    let mut by_id = HashMap::with_capacity(spans.len());
    for (i, s) in spans.iter().enumerate() {
        by_id.entry((s.trace_id, s.span_id)).or_insert(i);
    }
    by_id
}

/// The index of `span`'s parent in the input, if it has one there (never itself).
fn parent_of(span: &SpanRecord, by_id: &HashMap<(u128, u64), usize>) -> Option<usize> {
    if span.parent_id == 0 || span.parent_id == span.span_id {
        return None;
    }
    by_id.get(&(span.trace_id, span.parent_id)).copied()
}

/// Process and thread names, one thread per shard seen.
fn metadata_events(spans: &[SpanRecord]) -> Vec<Value> {
    let shards: BTreeSet<u16> = spans.iter().map(|s| s.shard).collect();
    let mut events = vec![json!({
        "ph": "M", "name": "process_name", "pid": ENGINE_PID, "tid": 0,
        "args": { "name": "nexus engine" },
    })];
    for shard in shards {
        events.push(json!({
            "ph": "M", "name": "thread_name", "pid": ENGINE_PID, "tid": shard,
            "args": { "name": format!("shard {shard}") },
        }));
        events.push(json!({
            "ph": "M", "name": "thread_sort_index", "pid": ENGINE_PID, "tid": shard,
            "args": { "sort_index": shard },
        }));
    }
    events
}

/// The complete event for the span's handler time.
fn handler_event(span: &SpanRecord) -> Value {
    json!({
        "ph": "X",
        "cat": "hop",
        "name": span.display_name(),
        "pid": ENGINE_PID,
        "tid": span.shard,
        "ts": micros(span.dispatched_ns),
        "dur": micros(span.handler_ns()),
        "args": {
            "trace_id": format!("{:032x}", span.trace_id),
            "span_id": format!("{:016x}", span.span_id),
            "parent_id": format!("{:016x}", span.parent_id),
            "hop": span.hop.name(),
            "agent": span.agent_text(),
            "queued_ns": span.queued_ns(),
            "handler_ns": span.handler_ns(),
            "type": span.name,
        },
    })
}

/// The async begin/end pair for the span's time in the queue.
fn queue_events(span: &SpanRecord) -> [Value; 2] {
    let name = format!("queued {}", span.short_name());
    let id = format!("{:x}", span.span_id);
    let begin = json!({
        "ph": "b", "cat": "queue", "name": name, "id": id, "pid": ENGINE_PID, "tid": span.shard,
        "ts": micros(span.enqueued_ns),
        "args": { "span_id": format!("{:016x}", span.span_id), "queued_ns": span.queued_ns() },
    });
    let end = json!({
        "ph": "e", "cat": "queue", "name": name, "id": id, "pid": ENGINE_PID, "tid": span.shard,
        "ts": micros(span.dispatched_ns),
    });
    [begin, end]
}

/// The flow start (in the parent's slice, when the child's message was sent) and end (at the
/// child's dispatch, bound to the child's slice).
fn flow_events(parent: &SpanRecord, child: &SpanRecord) -> [Value; 2] {
    let sent = child.enqueued_ns.clamp(parent.dispatched_ns, parent.finished_ns.max(parent.dispatched_ns));
    let id = format!("{:x}", child.span_id);
    let start = json!({
        "ph": "s", "cat": "flow", "name": "message", "id": id, "pid": ENGINE_PID, "tid": parent.shard,
        "ts": micros(sent),
    });
    let finish = json!({
        "ph": "f", "bp": "e", "cat": "flow", "name": "message", "id": id, "pid": ENGINE_PID,
        "tid": child.shard, "ts": micros(child.dispatched_ns),
    });
    [start, finish]
}

#[cfg(test)]
mod tests;
