//! Hand-built spans for the unit tests.

use crate::record::SpanRecord;
use nexus_engine::agent::AgentId;
use nexus_engine::trace::Hop;

/// A send hop of trace `trace` with the given ids, shard and engine-clock times; its agent is
/// `shard:id.0` and its type `app::msgs::M<id>`.
pub(crate) fn span(trace: u128, id: u64, parent: u64, shard: u16, times: [u64; 3]) -> SpanRecord {
    SpanRecord {
        trace_id: trace,
        span_id: id,
        parent_id: parent,
        hop: if parent == 0 { Hop::Send } else { Hop::Ask },
        name: format!("app::msgs::M{id}"),
        shard,
        agent: Some(AgentId::new(usize::from(shard), id as u32, 0)),
        enqueued_ns: times[0],
        dispatched_ns: times[1],
        finished_ns: times[2],
    }
}
