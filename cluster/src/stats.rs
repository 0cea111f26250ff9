//! The bridge's accounting: what this node sent to other nodes and how each ended.
//!
//! Invariant (checked by [`ClusterStats::accounted`] once traffic stopped): every message this
//! node sent across (a one-way message or an ask) is either delivered (published to a live
//! route, or answered) or a dead letter with one [`Reason`]: `sent = delivered + dead`. Inbound
//! messages are counted the same way: `received = handed + dead_inbound`.

use std::sync::atomic::{AtomicU64, Ordering};

/// Why a cross-node message became a dead letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Its node is gone or NATS is disconnected.
    Unreachable,
    /// No answer before the deadline.
    Timeout,
    /// It could not be serialised.
    Encode,
    /// It (or its answer) could not be deserialised.
    Decode,
    /// No node holds the name.
    NoSuchName,
    /// The remote node could not deliver it locally.
    Remote,
}

/// Number of [`Reason`]s.
pub const REASONS: usize = 6;

impl Reason {
    /// Every reason, in counter order.
    pub const ALL: [Reason; REASONS] =
        [Reason::Unreachable, Reason::Timeout, Reason::Encode, Reason::Decode, Reason::NoSuchName, Reason::Remote];

    /// The reason's name, as `INFO cluster` and the tests print it.
    pub fn name(self) -> &'static str {
        match self {
            Reason::Unreachable => "unreachable",
            Reason::Timeout => "timeout",
            Reason::Encode => "encode",
            Reason::Decode => "decode",
            Reason::NoSuchName => "no_such_name",
            Reason::Remote => "remote",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Live counters, shared by the bridge thread and the agents.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    sent: AtomicU64,
    delivered: AtomicU64,
    dead: [AtomicU64; REASONS],
    received: AtomicU64,
    handed: AtomicU64,
    dead_inbound: AtomicU64,
    reconnects: AtomicU64,
    slow_consumer: AtomicU64,
}

impl Counters {
    pub(crate) fn sent(&self) {
        self.sent.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn delivered(&self) {
        self.delivered.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn dead(&self, why: Reason) {
        self.dead[why.index()].fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn received(&self) {
        self.received.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn handed(&self) {
        self.handed.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn dead_inbound(&self) {
        self.dead_inbound.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn reconnected(&self) {
        self.reconnects.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn slow_consumer(&self) {
        self.slow_consumer.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> ClusterStats {
        let load = |a: &AtomicU64| a.load(Ordering::SeqCst);
        let mut dead = [0; REASONS];
        for (d, a) in dead.iter_mut().zip(&self.dead) {
            *d = load(a);
        }
        ClusterStats {
            sent: load(&self.sent),
            delivered: load(&self.delivered),
            dead,
            received: load(&self.received),
            handed: load(&self.handed),
            dead_inbound: load(&self.dead_inbound),
            // The first `Connected` event is the initial connection.
            reconnects: load(&self.reconnects).saturating_sub(1),
            slow_consumer_events: load(&self.slow_consumer),
        }
    }
}

/// A snapshot of the bridge's counters; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClusterStats {
    /// Messages (one-way and asks) sent to other nodes.
    pub sent: u64,
    /// Of those, published to a live route (one-way) or answered (asks).
    pub delivered: u64,
    /// Of those, dead letters, by [`Reason`] (in [`Reason::ALL`] order).
    pub dead: [u64; REASONS],
    /// Messages that came in from other nodes.
    pub received: u64,
    /// Of those, handed to a local agent.
    pub handed: u64,
    /// Of those, dropped (undecodable, or the local engine refused them).
    pub dead_inbound: u64,
    /// Times the NATS connection came back after a loss.
    pub reconnects: u64,
    /// Times the client reported a slow consumer: a subscription of this node fell so far
    /// behind that the client dropped incoming messages (how many is not reported: those are
    /// the one loss this accounting cannot count one by one).
    pub slow_consumer_events: u64,
}

impl ClusterStats {
    /// Dead letters of one reason.
    pub fn dead_of(&self, why: Reason) -> u64 {
        self.dead[why.index()]
    }

    /// Every outbound dead letter.
    pub fn dead_total(&self) -> u64 {
        self.dead.iter().sum()
    }

    /// Whether the accounting rule holds: `sent = delivered + dead` and
    /// `received = handed + dead_inbound`. Only meaningful once traffic stopped.
    pub fn accounted(&self) -> bool {
        self.sent == self.delivered + self.dead_total() && self.received == self.handed + self.dead_inbound
    }

    /// One line: the counters and the dead letters by reason.
    pub fn line(&self) -> String {
        let mut s = format!(
            "sent={} delivered={} received={} handed={} dead_inbound={} reconnects={} slow_consumer_events={}",
            self.sent,
            self.delivered,
            self.received,
            self.handed,
            self.dead_inbound,
            self.reconnects,
            self.slow_consumer_events
        );
        for why in Reason::ALL {
            s.push_str(&format!(" dead_{}={}", why.name(), self.dead_of(why)));
        }
        s
    }
}
