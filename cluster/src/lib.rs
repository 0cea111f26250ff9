//! Nexus across several machines, through NATS.
//!
//! Each node (one engine) runs a bridge: a NATS client (async-nats, the maintained Rust
//! client, on a current-thread tokio runtime on its own host thread, outside the shards) that
//! talks to the shards only through the engine's inject queues, by sending jobs to one
//! bridge agent per shard. No shard ever blocks on the network.
//!
//! - [`Node::start`] joins a cluster ([`ClusterConfig`], built with [`ClusterConfig::builder`]
//!   or from the `[cluster]` TOML section, [`RawClusterConfig`]).
//! - Global names: [`Node::register_global`] claims a name cluster-wide (first claim wins,
//!   the loser gets [`ClusterError::Conflict`]); [`Node::resolve`] finds it from any node
//!   (local registry first, then the directory: heartbeats on `nexus.<cluster>.dir`, with a
//!   lease after which a silent node's names are dropped).
//! - The same API: an agent reachable across nodes takes [`Call<Q, A>`]; `ctx.send` and
//!   `ctx.ask` work on a resolved address as on a local one (it is a [`Proxy`](agents) that
//!   forwards over NATS), and the answer is a [`Reply<A>`] with typed errors
//!   ([`ClusterError::Unreachable`] at once when NATS says "no responders", `Timeout`,
//!   `Encode`, `Decode`). Messages that cross nodes are encoded with postcard; a type opts
//!   in with the [`Wire`] marker; local messages are never encoded.
//! - Accounting: [`ClusterStats`]: every message sent across is delivered or counted dead by
//!   [`Reason`].
//!
//! Subjects: `nexus.<cluster>.name.<name>` (messages to a global name), `.whois.<name>`
//! (who holds it), `.dir` (heartbeats, claims, releases, leaves).

pub mod agents;
mod bridge;
pub mod call;
pub mod config;
mod directory;
pub mod error;
mod inbound;
pub mod link;
pub mod node;
pub mod serve;
pub mod stats;
pub mod wire;

pub use agents::{BridgeMsg, Job};
pub use call::{settle, Call, Reply};
pub use config::{ClusterConfig, ClusterConfigBuilder, ConfigError, RawClusterConfig};
pub use error::ClusterError;
pub use inbound::Batch;
pub use link::{Done, Link};
pub use node::Node;
pub use serve::{Answer, Offer, Serve};
pub use stats::{ClusterStats, Reason};
pub use wire::Wire;
