//! `Envelope`: the one fixed-size record that rings, inject queues and mailboxes carry.
//!
//! An envelope is a small header plus a [`Payload`]. Its size is fixed (104 bytes on 64-bit
//! targets), so a ring slot or a mailbox node holds it inline and a message of up to
//! [`INLINE_BYTES`](crate::payload::INLINE_BYTES) bytes never touches the heap.
//!
//! Header fields:
//! - `to`: for `User`, `ReplyToAgent`, `Undelivered` and `Signal`, the target [`AgentId`] bits; for `Reply`, the reply-slot token on the
//!   asking shard (see `ask`); for `System`, unused (0).
//! - `from`: the sending agent's id bits, or [`NO_SENDER`] for host traffic.
//! - `request`: for a user message that is an ask, the asker's reply token (`FLAG_ASK`);
//!   for a reply handed to an agent's mailbox, the request id it answers.
//! - `deadline_ns`: engine-clock nanoseconds after which the message is dropped when dequeued
//!   (and counted as expired); 0 means none.
//! - `sent_ns`: engine-clock nanoseconds when the message was sent, set only on sampled
//!   messages (the metrics sample every Nth); 0 means not sampled.

use crate::agent::AgentId;
use crate::payload::Payload;

/// `from` value for messages that did not come from an agent (host threads, the engine).
pub const NO_SENDER: u64 = u64::MAX;

/// What an envelope carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// A user message for the agent `to`.
    User = 0,
    /// A reply travelling back to the asking shard's reply slot `to`.
    Reply = 1,
    /// A reply (or a failure) handed to the asking agent's mailbox.
    ReplyToAgent = 2,
    /// An engine operation (spawn, stop, registry, stats) for the shard itself.
    System = 3,
    /// A dead letter handed back to its sender (`to` = the sender, `from` = the original
    /// target, `request` = the `DeadLetterReason`).
    Undelivered = 4,
    /// A `Down` or `Exit` signal for the agent `to` (control lane, not counted).
    Signal = 5,
}

/// Flag: tell the sender (`on_undelivered`) when this message becomes a dead letter.
pub const FLAG_NOTIFY_UNDELIVERED: u8 = 1;
/// Flag: the message counts towards the user-message accounting (sent = delivered + dead).
pub const FLAG_COUNTED: u8 = 2;
/// Flag: the message travels in the control lane: never refused for a full mailbox or ring,
/// dispatched before any normal-lane message of the shard, never shed.
pub const FLAG_CONTROL: u8 = 4;
/// Flag: the message is an agent's ask; `request` holds its reply token, so a request that
/// becomes a dead letter fails the ask at once (`AskError::Undelivered`).
pub const FLAG_ASK: u8 = 8;
/// Flag: the message is a notice to the dead-letter subscriber (never itself reported).
pub const FLAG_DEAD_LETTER_NOTICE: u8 = 16;

/// A message in flight; see the module documentation for the fields.
#[derive(Debug)]
pub struct Envelope {
    pub(crate) to: u64,
    pub(crate) from: u64,
    pub(crate) request: u64,
    pub(crate) deadline_ns: u64,
    pub(crate) sent_ns: u64,
    pub(crate) kind: Kind,
    pub(crate) flags: u8,
    pub(crate) payload: Payload,
}

impl Envelope {
    /// A counted user message for `to`.
    #[inline]
    pub(crate) fn user(to: AgentId, from: u64, payload: Payload) -> Self {
        Self {
            to: to.to_bits(),
            from,
            request: 0,
            deadline_ns: 0,
            sent_ns: 0,
            kind: Kind::User,
            flags: FLAG_COUNTED,
            payload,
        }
    }

    /// An engine operation for the receiving shard.
    #[inline]
    pub(crate) fn system(payload: Payload) -> Self {
        Self { to: 0, from: NO_SENDER, request: 0, deadline_ns: 0, sent_ns: 0, kind: Kind::System, flags: 0, payload }
    }

    /// Whether the envelope travels in the control lane (signals, engine operations, control
    /// messages and the engine's answers).
    #[inline]
    pub(crate) fn is_control(&self) -> bool {
        self.flags & FLAG_CONTROL != 0 || matches!(self.kind, Kind::Signal | Kind::System)
    }

    /// Whether the accounting counts this envelope.
    #[inline]
    pub(crate) fn counted(&self) -> bool {
        self.flags & FLAG_COUNTED != 0
    }

    /// The target agent of a user message.
    #[inline]
    pub(crate) fn target(&self) -> AgentId {
        AgentId::from_bits(self.to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_has_the_documented_size() {
        assert_eq!(std::mem::size_of::<Envelope>(), 104);
        assert_eq!(std::mem::size_of::<Option<Envelope>>(), 104);
    }
}
