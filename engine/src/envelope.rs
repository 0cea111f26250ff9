//! `Envelope`: the one fixed-size record that rings, inject queues and mailboxes carry.
//!
//! An envelope is one cache line: a 32-byte header and a 32-byte [`Payload`]. It is aligned to
//! 64 bytes, so a ring slot, an inject-queue slot or a mailbox node holds it inline, a message
//! moves between cores as exactly one line, and a message of up to
//! [`INLINE_BYTES`](crate::payload::INLINE_BYTES) bytes never touches the heap (bigger ones go
//! to the shard's block pool, see `payload`).
//!
//! A traced message (`FLAG_TRACED`) carries its trace context inside its payload (see
//! `trace`), so tracing costs the header nothing.
//!
//! Header fields:
//! - `to`: for `User`, `Answer`, `Undelivered` and `Signal`, the target [`AgentId`] bits;
//!   for `Reply`, the reply-slot token on the asking shard (see `ask`); for `System`, unused (0).
//! - `from`: the sending agent's id bits, or [`NO_SENDER`] for host traffic.
//! - `request`: for a user message that is an ask, the asker's reply token (`FLAG_ASK`);
//!   for a reply handed to an agent's mailbox, the request id it answers.
//! - `kind` and `flags`.
//! - one 48-bit **stamp** for what is rare, holding at most one of:
//!   - a deadline (`FLAG_DEADLINE`): engine-clock nanoseconds after which the message is
//!     dropped when dequeued (and counted as expired);
//!   - a send time (`FLAG_SAMPLED`): engine-clock nanoseconds when a sampled message was sent,
//!     for the latency histogram. A message with a deadline is never sampled (the next one is).
//!
//!   The stamp keeps the low 48 bits of the nanosecond figure (78 hours); the full value is
//!   rebuilt against the reader's clock, which is exact while the stamp is within 39 hours of
//!   it. A deadline further away than that is kept as 39 hours from the send: a message that
//!   waits that long in a queue is expired either way.

use crate::agent::AgentId;
use crate::lap_ring::LapMarked;
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
    /// An engine operation (spawn, stop, registry, stats) for the shard itself.
    System = 3,
    /// A dead letter handed back to its sender (`to` = the sender, `from` = the original
    /// target, `request` = the `DeadLetterReason`).
    Undelivered = 4,
    /// A `Down` or `Exit` signal for the agent `to` (control lane, not counted).
    Signal = 5,
    /// An ask's answer for the asking agent `to`: `request` names the parked adapter or
    /// gather (see `ask::then`), the payload is the reply or an `AskFailure`.
    Answer = 2,
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

/// Flag: the stamp holds a deadline.
pub const FLAG_DEADLINE: u8 = 32;
/// Flag: the stamp holds the send time of a sampled message.
pub const FLAG_SAMPLED: u8 = 64;
/// Flag: the message is traced: its payload is a `trace::shard::Traced` holding the trace
/// context and the original payload (see `trace`), unwrapped before any handler sees it.
pub const FLAG_TRACED: u8 = 128;

/// Bits the stamp keeps.
const STAMP_BITS: u32 = 48;
const STAMP_MASK: u64 = (1 << STAMP_BITS) - 1;
/// The furthest a stamp may be from the reader's clock and still be rebuilt exactly.
const STAMP_HORIZON: u64 = (1 << (STAMP_BITS - 1)) - 1;

/// A message in flight; see the module documentation.
#[derive(Debug)]
#[repr(C, align(64))]
pub struct Envelope {
    pub(crate) to: u64,
    pub(crate) from: u64,
    pub(crate) request: u64,
    pub(crate) kind: Kind,
    pub(crate) flags: u8,
    stamp_hi: u16,
    stamp_lo: u32,
    pub(crate) payload: Payload,
}

// SAFETY: the payload's `vtable` field is a `&'static VTable`: never null, and even because a
// `VTable` is pointer-aligned (both asserted in `payload`). `VTABLE_OFFSET` is pointer-aligned
// and the field lies inside the envelope, at a fixed offset from its start.
unsafe impl LapMarked for Envelope {
    const MARK_OFFSET: usize = std::mem::offset_of!(Envelope, payload) + crate::payload::VTABLE_OFFSET;
}

impl Envelope {
    /// An envelope with no stamp.
    #[inline]
    pub(crate) fn new(kind: Kind, to: u64, from: u64, request: u64, flags: u8, payload: Payload) -> Self {
        Self { to, from, request, kind, flags, stamp_hi: 0, stamp_lo: 0, payload }
    }

    /// A counted user message for `to`.
    #[inline]
    pub(crate) fn user(to: AgentId, from: u64, payload: Payload) -> Self {
        Self::new(Kind::User, to.to_bits(), from, 0, FLAG_COUNTED, payload)
    }

    /// An engine operation for the receiving shard.
    #[inline]
    pub(crate) fn system(payload: Payload) -> Self {
        Self::new(Kind::System, 0, NO_SENDER, 0, 0, payload)
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

    #[inline]
    fn stamp(&self) -> u64 {
        (u64::from(self.stamp_hi) << 32) | u64::from(self.stamp_lo)
    }

    #[inline]
    fn set_stamp(&mut self, ns: u64) {
        let low = ns & STAMP_MASK;
        self.stamp_hi = (low >> 32) as u16;
        self.stamp_lo = low as u32;
    }

    /// The full nanosecond value of the stamp, rebuilt against `now_ns` (see the module docs).
    #[inline]
    fn stamp_near(&self, now_ns: u64) -> u64 {
        let offset = self.stamp().wrapping_sub(now_ns) & STAMP_MASK;
        if offset <= STAMP_HORIZON {
            now_ns.wrapping_add(offset)
        } else {
            now_ns.wrapping_sub((STAMP_MASK + 1) - offset)
        }
    }

    /// Gives the message a deadline (engine-clock nanoseconds; 0 clears it). A deadline replaces
    /// a send-time sample: the message is then not sampled.
    #[inline]
    pub(crate) fn set_deadline_ns(&mut self, deadline_ns: u64, now_ns: u64) {
        if deadline_ns == 0 {
            self.flags &= !FLAG_DEADLINE;
            return;
        }
        let deadline = deadline_ns.min(now_ns.saturating_add(STAMP_HORIZON));
        self.flags = (self.flags | FLAG_DEADLINE) & !FLAG_SAMPLED;
        self.set_stamp(deadline);
    }

    /// Whether the message has a deadline.
    #[inline]
    pub(crate) fn has_deadline(&self) -> bool {
        self.flags & FLAG_DEADLINE != 0
    }

    /// The message's deadline (engine-clock nanoseconds), if it has one.
    #[inline]
    pub(crate) fn deadline_ns(&self, now_ns: u64) -> Option<u64> {
        self.has_deadline().then(|| self.stamp_near(now_ns))
    }

    /// Records the send time of a sampled message; a message with a deadline keeps it instead.
    #[inline]
    pub(crate) fn set_sent_ns(&mut self, now_ns: u64) {
        if !self.has_deadline() {
            self.flags |= FLAG_SAMPLED;
            self.set_stamp(now_ns);
        }
    }

    /// Whether the message carries a send-time sample.
    #[inline]
    pub(crate) fn is_sampled(&self) -> bool {
        self.flags & FLAG_SAMPLED != 0
    }

    /// Nanoseconds since a sampled message was sent, if it was sampled.
    #[inline]
    pub(crate) fn latency_ns(&self, now_ns: u64) -> Option<u64> {
        self.is_sampled().then(|| now_ns.wrapping_sub(self.stamp()) & STAMP_MASK)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<Envelope>(), 64);
        assert_eq!(std::mem::align_of::<Envelope>(), 64);
        assert_eq!(std::mem::size_of::<Option<Envelope>>(), 64);
    }

    fn env() -> Envelope {
        Envelope::user(AgentId::new(0, 1, 0), NO_SENDER, Payload::new(7u64))
    }

    #[test]
    fn deadlines_round_trip_exactly_and_far_ones_are_capped() {
        let now = 5_000_000_000_000u64;
        let mut e = env();
        assert_eq!(e.deadline_ns(now), None);
        e.set_deadline_ns(now + 1_234_567, now);
        assert_eq!(e.deadline_ns(now + 999), Some(now + 1_234_567), "read later, still exact");
        assert_eq!(e.deadline_ns(now + 10_000_000), Some(now + 1_234_567), "read after it passed");
        e.set_deadline_ns(u64::MAX, now);
        assert_eq!(e.deadline_ns(now), Some(now + STAMP_HORIZON));
        e.set_deadline_ns(0, now);
        assert_eq!(e.deadline_ns(now), None);
        // Past the 48-bit wrap of the clock.
        let late = (1u64 << 48) * 3 - 10;
        e.set_deadline_ns(late + 100, late);
        assert_eq!(e.deadline_ns(late + 50), Some(late + 100));
    }

    #[test]
    fn samples_measure_latency_and_yield_to_deadlines() {
        let now = (1u64 << 48) - 5;
        let mut e = env();
        assert_eq!(e.latency_ns(now), None);
        e.set_sent_ns(now);
        assert_eq!(e.latency_ns(now + 1_000), Some(1_000), "across the stamp's wrap");
        e.set_deadline_ns(now + 10, now);
        assert!(!e.is_sampled(), "a deadline replaces the sample");
        e.set_sent_ns(now);
        assert_eq!(e.deadline_ns(now), Some(now + 10), "a sample never replaces a deadline");
    }
}
