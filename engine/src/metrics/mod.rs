//! Per-shard metrics: plain counters and a sampled latency histogram.
//!
//! A shard's metrics are written only by its own thread, with ordinary (non-atomic) adds, so the
//! hot path pays a few `inc` instructions and nothing else. Other threads never read them
//! directly: they ask the shard for a [`ShardStats`] snapshot over the mesh.
//!
//! The enqueue-to-dispatch histogram records one message in every
//! `latency_sample_every` (a power of two): the sender stamps `sent_ns` on sampled messages,
//! and the receiver records `now - sent_ns` when it dispatches them.
//!
//! Accounting: every counted message that is sent ends as exactly one of *delivered* or a dead
//! letter with a [`DeadLetterReason`]. At quiescence the sums over all shards (plus the host's
//! sends) satisfy `sent == delivered + dead_letters`.

mod dead_letter;

pub use dead_letter::DeadLetter;
pub(crate) use dead_letter::DeadLetterSink;

use crate::agent::AgentId;
use hdrhistogram::Histogram;
use std::fmt;

/// Number of [`DeadLetterReason`]s.
pub const REASONS: usize = 10;

/// Why a message was not delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeadLetterReason {
    /// No agent has ever lived at the target slot, or it is free now.
    NoSuchAgent = 0,
    /// The target slot has held a newer agent since the one the id names stopped.
    StaleGeneration = 1,
    /// The target's mailbox was full (overflow policy `drop`, or a remote `reject`).
    MailboxFull = 2,
    /// The deadline passed before the message was dispatched.
    Expired = 3,
    /// The message's type is not the one the target agent takes.
    TypeMismatch = 4,
    /// The engine shut down before the message could be delivered.
    Shutdown = 5,
    /// A reply arrived after its ask had timed out (or its asker stopped).
    LateReply = 6,
    /// The target agent stopped: the message was still queued in its mailbox, or reached its
    /// id after the stop (its slot unused since). Nothing sent after a stop reaches the agent.
    Stopped = 7,
    /// The target's shard was overloaded (queue depth or enqueue-to-dispatch latency past the
    /// shedding thresholds) and shed the normal-lane message at enqueue.
    Shed = 8,
    /// The handler panicked while handling the message (the agent was stopped).
    Panicked = 9,
}

impl DeadLetterReason {
    /// Every reason, in counter order.
    pub const ALL: [DeadLetterReason; REASONS] = [
        Self::NoSuchAgent,
        Self::StaleGeneration,
        Self::MailboxFull,
        Self::Expired,
        Self::TypeMismatch,
        Self::Shutdown,
        Self::LateReply,
        Self::Stopped,
        Self::Shed,
        Self::Panicked,
    ];

    /// A short snake_case name for tables and JSON.
    pub const fn name(self) -> &'static str {
        match self {
            Self::NoSuchAgent => "no_such_agent",
            Self::StaleGeneration => "stale_generation",
            Self::MailboxFull => "mailbox_full",
            Self::Expired => "expired",
            Self::TypeMismatch => "type_mismatch",
            Self::Shutdown => "shutdown",
            Self::LateReply => "late_reply",
            Self::Stopped => "stopped",
            Self::Shed => "shed",
            Self::Panicked => "panicked",
        }
    }
}

impl fmt::Display for DeadLetterReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Plain counters of one shard. Only the owning shard's thread writes them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Counted messages sent by agents on this shard (user messages and replies).
    pub sent: u64,
    /// Counted messages handed to a handler on this shard (or a host reply slot it filled).
    pub delivered: u64,
    /// Dead letters by [`DeadLetterReason`] (index = reason as usize).
    pub dead_letters: [u64; REASONS],
    /// Sends refused at the sender (target mailbox full under the `reject` policy, or the
    /// outbound backlog to the target shard full); the sender got its message back, so these are
    /// not part of `sent`.
    pub rejected_full: u64,
    /// Asks from this shard that timed out.
    pub ask_timeouts: u64,
    /// Agents spawned on this shard.
    pub spawned: u64,
    /// Agents stopped on this shard.
    pub stopped: u64,
    /// Dispatcher passes.
    pub passes: u64,
    /// Times the shard parked its thread.
    pub parks: u64,
    /// Messages moved from the outbound backlog into a ring after the ring had been full.
    pub backlog_flushed: u64,
    /// Handlers (and start/stop hooks) that panicked; each stopped its agent.
    pub panics: u64,
    /// Control-lane envelopes dispatched (signals, control messages, engine replies).
    pub control_dispatched: u64,
    /// `Down` and `Exit` signals sent from this shard.
    pub signals_sent: u64,
    /// Timers that fired (their messages were sent then, and count in `sent`).
    pub timers_fired: u64,
    /// Dead-letter notices sent to the dead-letter subscriber (sampled; not counted in `sent`).
    pub dead_letter_notices: u64,
}

impl Counters {
    /// Total dead letters over every reason.
    pub fn dead_letters_total(&self) -> u64 {
        self.dead_letters.iter().sum()
    }

    /// Dead letters of one reason.
    pub fn dead(&self, reason: DeadLetterReason) -> u64 {
        self.dead_letters[reason as usize]
    }

    /// Adds `other` into `self` (for engine-wide totals).
    pub fn add(&mut self, other: &Counters) {
        self.sent += other.sent;
        self.delivered += other.delivered;
        for (a, b) in self.dead_letters.iter_mut().zip(other.dead_letters.iter()) {
            *a += b;
        }
        self.rejected_full += other.rejected_full;
        self.ask_timeouts += other.ask_timeouts;
        self.spawned += other.spawned;
        self.stopped += other.stopped;
        self.passes += other.passes;
        self.parks += other.parks;
        self.backlog_flushed += other.backlog_flushed;
        self.panics += other.panics;
        self.control_dispatched += other.control_dispatched;
        self.signals_sent += other.signals_sent;
        self.timers_fired += other.timers_fired;
        self.dead_letter_notices += other.dead_letter_notices;
    }
}

/// Latency percentiles in nanoseconds, taken from a histogram.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LatencySummary {
    /// Number of samples.
    pub samples: u64,
    /// Median.
    pub p50_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p999_ns: u64,
    /// Largest sample.
    pub max_ns: u64,
}

/// The shard's metrics: counters plus the sampled enqueue-to-dispatch histogram.
pub struct ShardMetrics {
    /// The counters.
    pub counters: Counters,
    latency: Histogram<u64>,
    sample_mask: u64,
    sample_tick: u64,
    /// The latest sampled enqueue-to-dispatch latency (the load-shedding signal).
    pub(crate) last_latency_ns: u64,
}

/// Largest latency the histogram tracks (60 s); larger values are clamped.
const LATENCY_MAX_NS: u64 = 60_000_000_000;

impl ShardMetrics {
    /// New metrics sampling one message in `sample_every` (a power of two, >= 1).
    pub fn new(sample_every: u32) -> Self {
        debug_assert!(sample_every.is_power_of_two());
        let latency = Histogram::new_with_bounds(1, LATENCY_MAX_NS, 2).expect("static histogram bounds are valid");
        Self {
            counters: Counters::default(),
            latency,
            sample_mask: u64::from(sample_every.max(1)) - 1,
            sample_tick: 0,
            last_latency_ns: 0,
        }
    }

    /// Whether the next sent message should carry a timestamp.
    #[inline]
    pub fn should_sample(&mut self) -> bool {
        self.sample_tick = self.sample_tick.wrapping_add(1);
        self.sample_tick & self.sample_mask == 0
    }

    /// Records one enqueue-to-dispatch latency.
    #[inline]
    pub fn record_latency(&mut self, ns: u64) {
        self.last_latency_ns = ns;
        self.latency.saturating_record(ns.clamp(1, LATENCY_MAX_NS));
    }

    /// Counts one dead letter.
    #[inline]
    pub fn dead_letter(&mut self, reason: DeadLetterReason) {
        self.counters.dead_letters[reason as usize] += 1;
    }

    /// Percentiles of the latency histogram since the last reset.
    pub fn latency_summary(&self) -> LatencySummary {
        summarize(&self.latency)
    }

    /// A copy of the histogram (for merging across shards).
    pub fn latency_histogram(&self) -> Histogram<u64> {
        self.latency.clone()
    }
}

/// Percentiles of any histogram.
pub fn summarize(h: &Histogram<u64>) -> LatencySummary {
    if h.is_empty() {
        return LatencySummary::default();
    }
    LatencySummary {
        samples: h.len(),
        p50_ns: h.value_at_quantile(0.50),
        p99_ns: h.value_at_quantile(0.99),
        p999_ns: h.value_at_quantile(0.999),
        max_ns: h.max(),
    }
}

/// How many agents [`ShardStats::busiest`] lists at most.
pub const BUSIEST_AGENTS: usize = 5;

/// A snapshot of one shard, gathered over the mesh by `EngineHandle::stats()`.
#[derive(Clone, Debug)]
pub struct ShardStats {
    /// The shard index.
    pub shard: usize,
    /// Its counters.
    pub counters: Counters,
    /// Live agents on the shard.
    pub agents: u64,
    /// Names registered in the shard's registry partition.
    pub names: u64,
    /// Asks made from this shard still waiting for an answer.
    pub pending_asks: u64,
    /// Messages queued on the shard: mailboxes, the control lane and the outbound backlogs.
    pub queued: u64,
    /// Timers armed and not yet fired.
    pub timers: u64,
    /// Envelopes this shard pushed into rings to its peers (cumulative).
    pub ring_pushed: u64,
    /// Envelopes this shard took from its peers' rings (cumulative).
    pub ring_popped: u64,
    /// Whether the shard is shedding normal-lane messages (as of its last pass).
    pub shedding: bool,
    /// Watches held on this shard's agents.
    pub watches: u64,
    /// Links held by this shard's agents (each link counts once on each side).
    pub links: u64,
    /// Up to [`BUSIEST_AGENTS`] live agents with the deepest mailboxes (more than zero
    /// messages), deepest first: `(agent, mailbox length)`. Found by a scan of the shard's
    /// slot table when the stats are asked for, so it costs nothing between requests.
    pub busiest: Vec<(AgentId, u64)>,
    /// Enqueue-to-dispatch latency (sampled).
    pub latency: LatencySummary,
    /// The histogram itself, for engine-wide percentiles.
    pub latency_histogram: Histogram<u64>,
}

/// Every shard's snapshot plus the host's own send counters.
#[derive(Clone, Debug)]
pub struct EngineStats {
    /// One entry per shard, in shard order.
    pub shards: Vec<ShardStats>,
    /// Counted messages host threads handed to the engine.
    pub host_sent: u64,
    /// Host sends refused because an inject queue was full (returned to the caller).
    pub host_rejected_full: u64,
}

impl EngineStats {
    /// Counters summed over every shard, with the host's sends added to `sent`.
    pub fn totals(&self) -> Counters {
        let mut total = Counters::default();
        for s in &self.shards {
            total.add(&s.counters);
        }
        total.sent += self.host_sent;
        total
    }

    /// Engine-wide latency percentiles.
    pub fn latency(&self) -> LatencySummary {
        let mut merged = Histogram::new_with_bounds(1, LATENCY_MAX_NS, 2).expect("static histogram bounds are valid");
        for s in &self.shards {
            // Same bounds on both sides, so `add` cannot fail.
            let _ = merged.add(&s.latency_histogram);
        }
        summarize(&merged)
    }

    /// Live agents over every shard.
    pub fn agents(&self) -> u64 {
        self.shards.iter().map(|s| s.agents).sum()
    }

    /// The accounting invariant: every counted message sent was delivered or is a dead letter.
    /// Meaningful at quiescence (nothing in flight, see [`EngineStats::quiescent`]), e.g. from
    /// `EngineHandle::quiescent_stats` or after shutdown.
    pub fn accounted(&self) -> bool {
        let t = self.totals();
        t.sent == t.delivered + t.dead_letters_total()
    }

    /// Whether the snapshot saw nothing in flight: no queued message, no armed timer, no
    /// pending ask, and every envelope pushed into a ring taken out. (Shards answer one after
    /// the other, so an engine that still receives traffic can look quiescent for a moment;
    /// `EngineHandle::quiescent_stats` asks twice.)
    pub fn quiescent(&self) -> bool {
        let pushed: u64 = self.shards.iter().map(|s| s.ring_pushed).sum();
        let popped: u64 = self.shards.iter().map(|s| s.ring_popped).sum();
        pushed == popped && self.shards.iter().all(|s| s.queued == 0 && s.timers == 0 && s.pending_asks == 0)
    }

    /// One line: sent, delivered, and the dead letters by reason (only the non-zero ones).
    pub fn accounting_line(&self) -> String {
        let t = self.totals();
        let mut line = format!("sent={} delivered={} dead_letters={}", t.sent, t.delivered, t.dead_letters_total());
        for reason in DeadLetterReason::ALL {
            let n = t.dead(reason);
            if n > 0 {
                line.push_str(&format!(" {}={}", reason.name(), n));
            }
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_takes_one_in_n() {
        let mut m = ShardMetrics::new(4);
        let hits = (0..64).filter(|_| m.should_sample()).count();
        assert_eq!(hits, 16);
        m.record_latency(100);
        m.record_latency(200);
        let s = m.latency_summary();
        assert_eq!(s.samples, 2);
        assert!(s.p50_ns >= 99 && s.p50_ns <= 101, "{s:?}");
    }
}
