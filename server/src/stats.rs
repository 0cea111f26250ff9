//! The server's own counters, one set per shard.
//!
//! Each shard's connection tasks and agents are the only writers of that shard's set (relaxed
//! atomic adds on the shard's thread); `INFO`, `/metrics` and `nexus run`'s final report read
//! every set from any thread. Nothing here is on the message path of the engine.
//!
//! The counters are listed once, in the `counters!` invocation below, which makes the atomic
//! set ([`ShardServerStats`]), its plain copy ([`ServerCounters`]), the copy, the sum and the
//! named list, so the four can never disagree.

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! counters {
    ($($(#[doc = $doc:literal])* $field:ident => $name:literal,)*) => {
        /// One shard's server counters; see the module documentation.
        #[derive(Debug, Default)]
        pub struct ShardServerStats {
            $($(#[doc = $doc])* pub $field: AtomicU64,)*
        }

        /// A copy of [`ShardServerStats`] (or their sum over shards).
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct ServerCounters {
            $($(#[doc = $doc])* pub $field: u64,)*
        }

        impl ShardServerStats {
            /// A plain copy of every counter.
            pub fn snapshot(&self) -> ServerCounters {
                ServerCounters { $($field: self.$field.load(Ordering::Relaxed),)* }
            }
        }

        impl ServerCounters {
            /// Every field as `(name, value)`, in a fixed order (for INFO and /metrics).
            pub fn fields(&self) -> Vec<(&'static str, u64)> {
                vec![$(($name, self.$field),)*]
            }

            /// Adds `other` field by field.
            pub fn add(&mut self, other: &ServerCounters) {
                $(self.$field += other.$field;)*
            }
        }
    };
}

counters! {
    /// Connections open now.
    connections => "connections",
    /// Connections accepted since start.
    connections_total => "connections_total",
    /// Connections refused because `max_clients` were open.
    rejected_max_clients => "rejected_max_clients",
    /// Clients disconnected as slow readers: their queued replies stayed over
    /// `client_output_limit` with nothing read for a while (see `conn`).
    slow_clients => "slow_clients_disconnected",
    /// Clients closed because their buffered request passed `client_query_buffer_limit`.
    query_buffer_closes => "client_query_buffer_limit_disconnections",
    /// Clients closed after `idle_timeout_s` of silence.
    idle_closed => "idle_clients_closed",
    /// Requests answered with a protocol error (malformed RESP or a broken limit).
    protocol_errors => "protocol_errors",
    /// Connections closed because their stream could not be resynchronised.
    protocol_closes => "protocol_closes",
    /// Commands executed (answered), including errors.
    commands => "commands",
    /// Failed AUTH attempts and commands refused before AUTH.
    auth_failures => "auth_failures",
    /// Pub/sub messages written to subscribers.
    pubsub_delivered => "pubsub_delivered",
    /// Pub/sub messages for a subscriber whose connection had gone (dropped, counted).
    pubsub_dropped => "pubsub_dropped",
}

impl ShardServerStats {
    /// Adds `n` to `counter` (relaxed: one writer, readers want a recent value).
    #[inline]
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// Adds one to `counter`.
#[inline]
pub fn count(counter: &AtomicU64) {
    ShardServerStats::add(counter, 1);
}
