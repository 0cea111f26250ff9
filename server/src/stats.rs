//! The server's own counters, one set per shard.
//!
//! Each shard's connection tasks are the only writers of that shard's set (relaxed atomic adds
//! on the shard's thread); `INFO`, `/metrics` and `nexus run`'s final report read every set
//! from any thread. Nothing here is on the message path of the engine.

use std::sync::atomic::{AtomicU64, Ordering};

/// One shard's server counters; see the module documentation.
#[derive(Debug, Default)]
pub struct ShardServerStats {
    /// Connections open now.
    pub connections: AtomicU64,
    /// Connections accepted since start.
    pub connections_total: AtomicU64,
    /// Connections refused because `max_clients` were open.
    pub rejected_max_clients: AtomicU64,
    /// Clients disconnected because their queued replies passed `client_output_limit`.
    pub slow_clients: AtomicU64,
    /// Clients closed after `idle_timeout_s` of silence.
    pub idle_closed: AtomicU64,
    /// Requests answered with a protocol error (malformed RESP or a broken limit).
    pub protocol_errors: AtomicU64,
    /// Connections closed because their stream could not be resynchronised.
    pub protocol_closes: AtomicU64,
    /// Commands executed (answered), including errors.
    pub commands: AtomicU64,
    /// Failed AUTH attempts and commands refused before AUTH.
    pub auth_failures: AtomicU64,
    /// Pub/sub messages written to subscribers.
    pub pubsub_delivered: AtomicU64,
    /// Pub/sub messages for a subscriber whose connection had gone (dropped, counted).
    pub pubsub_dropped: AtomicU64,
}

impl ShardServerStats {
    /// Adds `n` to `counter` (relaxed: one writer, readers want a recent value).
    #[inline]
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// A plain copy of every counter.
    pub fn snapshot(&self) -> ServerCounters {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ServerCounters {
            connections: get(&self.connections),
            connections_total: get(&self.connections_total),
            rejected_max_clients: get(&self.rejected_max_clients),
            slow_clients: get(&self.slow_clients),
            idle_closed: get(&self.idle_closed),
            protocol_errors: get(&self.protocol_errors),
            protocol_closes: get(&self.protocol_closes),
            commands: get(&self.commands),
            auth_failures: get(&self.auth_failures),
            pubsub_delivered: get(&self.pubsub_delivered),
            pubsub_dropped: get(&self.pubsub_dropped),
        }
    }
}

/// A copy of [`ShardServerStats`] (or their sum over shards).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)] // the fields mirror ShardServerStats one to one
pub struct ServerCounters {
    pub connections: u64,
    pub connections_total: u64,
    pub rejected_max_clients: u64,
    pub slow_clients: u64,
    pub idle_closed: u64,
    pub protocol_errors: u64,
    pub protocol_closes: u64,
    pub commands: u64,
    pub auth_failures: u64,
    pub pubsub_delivered: u64,
    pub pubsub_dropped: u64,
}

impl ServerCounters {
    /// Every field as `(name, value)`, in a fixed order (for INFO and /metrics).
    pub fn fields(&self) -> [(&'static str, u64); 11] {
        [
            ("connections", self.connections),
            ("connections_total", self.connections_total),
            ("rejected_max_clients", self.rejected_max_clients),
            ("slow_clients_disconnected", self.slow_clients),
            ("idle_clients_closed", self.idle_closed),
            ("protocol_errors", self.protocol_errors),
            ("protocol_closes", self.protocol_closes),
            ("commands", self.commands),
            ("auth_failures", self.auth_failures),
            ("pubsub_delivered", self.pubsub_delivered),
            ("pubsub_dropped", self.pubsub_dropped),
        ]
    }

    /// Adds `other` field by field.
    pub fn add(&mut self, other: &ServerCounters) {
        self.connections += other.connections;
        self.connections_total += other.connections_total;
        self.rejected_max_clients += other.rejected_max_clients;
        self.slow_clients += other.slow_clients;
        self.idle_closed += other.idle_closed;
        self.protocol_errors += other.protocol_errors;
        self.protocol_closes += other.protocol_closes;
        self.commands += other.commands;
        self.auth_failures += other.auth_failures;
        self.pubsub_delivered += other.pubsub_delivered;
        self.pubsub_dropped += other.pubsub_dropped;
    }
}
