//! The cluster's configuration (`[cluster]` in `nexus run`'s TOML) and its builder.
//!
//! Invariant: a built [`ClusterConfig`] is valid: a NATS URL, a node name and a cluster name
//! that are single subject tokens, and `heartbeat < lease`.

use crate::error::validate_global_name;
use serde::Deserialize;
use std::time::Duration;

/// Why a cluster configuration is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A name that must be one NATS subject token is not.
    #[error("cluster.{key} = '{value}' is not valid: 1..=200 bytes, no '.', '*', '>' or whitespace")]
    BadToken {
        /// The key.
        key: &'static str,
        /// Its value.
        value: String,
    },
    /// `nats` does not look like a NATS URL.
    #[error("cluster.nats = '{0}' is not a NATS URL (expected nats://host:port)")]
    BadUrl(String),
    /// The lease must outlast several heartbeats.
    #[error("cluster.lease_ms ({lease_ms}) must be at least twice cluster.heartbeat_ms ({heartbeat_ms})")]
    LeaseTooShort {
        /// The heartbeat period.
        heartbeat_ms: u64,
        /// The lease.
        lease_ms: u64,
    },
}

/// A node's cluster settings; build one with [`ClusterConfig::builder`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// The NATS server, e.g. `nats://127.0.0.1:4222`.
    pub nats: String,
    /// This node's name, unique in the cluster.
    pub node: String,
    /// The cluster's name: every subject starts with `nexus.<cluster>.`.
    pub cluster: String,
    /// How often this node announces itself and its global names.
    pub heartbeat: Duration,
    /// How long a node's names stay in the directory after its last heartbeat.
    pub lease: Duration,
    /// How long a claim listens for a competing claim of the same name before it is final.
    pub claim_window: Duration,
}

impl ClusterConfig {
    /// A builder with the defaults: cluster `nexus`, heartbeat 200 ms, lease 1 s, claim
    /// window 50 ms.
    pub fn builder(nats: impl Into<String>, node: impl Into<String>) -> ClusterConfigBuilder {
        ClusterConfigBuilder {
            raw: RawClusterConfig { nats: nats.into(), node: node.into(), ..RawClusterConfig::default() },
        }
    }
}

/// The `[cluster]` TOML section as written; [`RawClusterConfig::build`] checks it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct RawClusterConfig {
    /// See [`ClusterConfig::nats`].
    pub nats: String,
    /// See [`ClusterConfig::node`].
    pub node: String,
    /// See [`ClusterConfig::cluster`].
    pub cluster: String,
    /// See [`ClusterConfig::heartbeat`], in milliseconds.
    pub heartbeat_ms: u64,
    /// See [`ClusterConfig::lease`], in milliseconds.
    pub lease_ms: u64,
    /// See [`ClusterConfig::claim_window`], in milliseconds.
    pub claim_window_ms: u64,
}

impl Default for RawClusterConfig {
    fn default() -> Self {
        Self {
            nats: String::new(),
            node: String::new(),
            cluster: "nexus".into(),
            heartbeat_ms: 200,
            lease_ms: 1000,
            claim_window_ms: 50,
        }
    }
}

impl RawClusterConfig {
    /// Checks the values and builds the configuration.
    pub fn build(self) -> Result<ClusterConfig, ConfigError> {
        if !self.nats.starts_with("nats://") || self.nats.len() <= "nats://".len() {
            return Err(ConfigError::BadUrl(self.nats));
        }
        for (key, value) in [("node", &self.node), ("cluster", &self.cluster)] {
            if validate_global_name(value).is_err() {
                return Err(ConfigError::BadToken { key, value: value.clone() });
            }
        }
        if self.heartbeat_ms == 0 || self.lease_ms < 2 * self.heartbeat_ms {
            return Err(ConfigError::LeaseTooShort { heartbeat_ms: self.heartbeat_ms, lease_ms: self.lease_ms });
        }
        Ok(ClusterConfig {
            nats: self.nats,
            node: self.node,
            cluster: self.cluster,
            heartbeat: Duration::from_millis(self.heartbeat_ms),
            lease: Duration::from_millis(self.lease_ms),
            claim_window: Duration::from_millis(self.claim_window_ms),
        })
    }
}

/// Builds a [`ClusterConfig`]; see [`ClusterConfig::builder`].
#[derive(Debug, Clone)]
pub struct ClusterConfigBuilder {
    raw: RawClusterConfig,
}

impl ClusterConfigBuilder {
    /// The cluster's name.
    pub fn cluster(mut self, name: impl Into<String>) -> Self {
        self.raw.cluster = name.into();
        self
    }

    /// The heartbeat period.
    pub fn heartbeat(mut self, every: Duration) -> Self {
        self.raw.heartbeat_ms = every.as_millis() as u64;
        self
    }

    /// The directory lease.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.raw.lease_ms = lease.as_millis() as u64;
        self
    }

    /// The claim window.
    pub fn claim_window(mut self, window: Duration) -> Self {
        self.raw.claim_window_ms = window.as_millis() as u64;
        self
    }

    /// Checks and builds.
    pub fn build(self) -> Result<ClusterConfig, ConfigError> {
        self.raw.build()
    }
}
