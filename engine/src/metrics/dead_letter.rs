//! The dead-letter subscriber: a sampled stream of dead letters, for debugging.
//!
//! Counting every dead letter is the job of the per-reason counters. On top of that, an agent
//! that takes [`DeadLetter`] messages can subscribe (`EngineHandle::subscribe_dead_letters`):
//! each shard then sends it one notice for every `sample_every`-th counted dead letter it sees.
//! Notices travel in the control lane, are not counted in the message accounting
//! (`dead_letter_notices` counts them), and a notice that cannot be delivered is never
//! reported again.

use super::DeadLetterReason;
use crate::agent::AgentId;

/// A sampled report of one dead letter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    /// The agent the message was for (for a late reply: the reply token, read as an id only
    /// its shard, the asking one, means anything).
    pub to: AgentId,
    /// The sending agent, or `None` for host threads and the engine.
    pub from: Option<AgentId>,
    /// Why it was not delivered.
    pub reason: DeadLetterReason,
    /// The type of the message (`std::any::type_name`).
    pub message_type: &'static str,
    /// The shard that counted it.
    pub shard: u16,
}

/// A shard's subscription: where notices go and how often.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DeadLetterSink {
    to: AgentId,
    every: u64,
    seen: u64,
}

impl DeadLetterSink {
    /// Reports one dead letter in every `every` (at least 1) to `to`.
    pub(crate) fn new(to: AgentId, every: u32) -> Self {
        Self { to, every: u64::from(every.max(1)), seen: 0 }
    }

    /// Counts one dead letter; returns where to report it when it is sampled.
    #[inline]
    pub(crate) fn sample(&mut self) -> Option<AgentId> {
        self.seen += 1;
        (self.seen % self.every == 0).then_some(self.to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_one_in_n_and_travels_unboxed() {
        let mut sink = DeadLetterSink::new(AgentId::new(0, 1, 0), 4);
        let hits = (0..20).filter(|_| sink.sample().is_some()).count();
        assert_eq!(hits, 5);
        assert!(crate::payload::travels_unboxed::<DeadLetter>());
    }
}
