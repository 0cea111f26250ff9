//! The run's trace: a running hash of every dispatch (the fingerprint) and the last events.
//!
//! Invariant: the fingerprint is FNV-1a over (shard, agent id, message type, virtual time) of
//! each dispatch in order: the same dispatches in the same order give the same fingerprint on
//! any machine.

use nexus_engine::shard::Dispatch;
use std::collections::VecDeque;

/// Events kept for the report of a failure.
pub(crate) const KEPT: usize = 50;

/// One dispatch of a simulated run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceEvent {
    /// The shard that ran it.
    pub shard: usize,
    /// The agent that got it (`shard:slot.generation`).
    pub agent: String,
    /// The message type, or `answer`, `signal`, `undelivered`.
    pub what: &'static str,
    /// Virtual time, in nanoseconds.
    pub virtual_ns: u64,
}

impl TraceEvent {
    /// The event as one JSON object.
    pub fn to_json(&self) -> String {
        format!(
            "{{\"shard\":{},\"agent\":\"{}\",\"what\":\"{}\",\"virtual_ns\":{}}}",
            self.shard,
            self.agent,
            self.what.replace('\\', "\\\\").replace('"', "\\\""),
            self.virtual_ns
        )
    }
}

/// The trace of one run.
pub(crate) struct Trace {
    hash: u64,
    count: u64,
    last: VecDeque<TraceEvent>,
    /// Every event, when the whole trace was asked for (`replay --trace`).
    all: Option<Vec<TraceEvent>>,
}

impl Trace {
    pub(crate) fn new(keep_all: bool) -> Self {
        Self {
            hash: 0xCBF2_9CE4_8422_2325,
            count: 0,
            last: VecDeque::with_capacity(KEPT),
            all: keep_all.then(Vec::new),
        }
    }

    pub(crate) fn record(&mut self, d: &Dispatch) {
        for word in [d.shard as u64, d.agent.to_bits(), d.now_ns] {
            self.mix(&word.to_le_bytes());
        }
        self.mix(d.what.as_bytes());
        self.count += 1;
        let event = TraceEvent { shard: d.shard, agent: d.agent.to_string(), what: d.what, virtual_ns: d.now_ns };
        if let Some(all) = self.all.as_mut() {
            all.push(event.clone());
        }
        if self.last.len() == KEPT {
            self.last.pop_front();
        }
        self.last.push_back(event);
    }

    fn mix(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.hash ^= u64::from(*b);
            self.hash = self.hash.wrapping_mul(0x0000_0100_0000_01B3);
        }
    }

    pub(crate) fn fingerprint(&self) -> u64 {
        self.hash
    }

    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    pub(crate) fn last(&self) -> Vec<TraceEvent> {
        self.last.iter().cloned().collect()
    }

    pub(crate) fn take_all(&mut self) -> Option<Vec<TraceEvent>> {
        self.all.take()
    }
}
