//! `nexus run --cluster URL --node NAME` (or the config's `[cluster]` table): joins the node to a NATS cluster (`nexus-cluster`)
//! and hands the link to the RESP server, so `AGENT.SPAWN ... GLOBAL`, remote `AGENT.ASK` /
//! `AGENT.SEND` and `INFO cluster` work.
//!
//! Invariant: the link is in the server's cluster slot before clients connect (this runs
//! before the server opens), and the node leaves the cluster before the engine stops.

use crate::Failure;
use nexus_cluster::{Node, RawClusterConfig};
use nexus_engine::config::ClusterSection;
use nexus_engine::engine::EngineHandle;
use nexus_server::ServerHandle;

/// `nexus run`'s cluster flags; each overrides the config's `[cluster]` key.
pub struct Flags {
    /// `--cluster URL`.
    pub url: Option<String>,
    /// `--node NAME`.
    pub node: Option<String>,
    /// `--cluster-name NAME`.
    pub name: Option<String>,
}

/// Joins the cluster the flags and the config's `[cluster]` table name, if any.
pub fn join(
    flags: &Flags,
    section: Option<&ClusterSection>,
    engine: &EngineHandle,
    server: Option<&ServerHandle>,
) -> Result<Option<Node>, Failure> {
    let mut raw = match section {
        Some(s) => RawClusterConfig {
            nats: s.nats.clone(),
            node: s.node.clone(),
            cluster: s.cluster.clone(),
            heartbeat_ms: s.heartbeat_ms,
            lease_ms: s.lease_ms,
            claim_window_ms: s.claim_window_ms,
        },
        None if flags.url.is_none() => return Ok(None),
        None => RawClusterConfig::default(),
    };
    raw.nats = flags.url.clone().unwrap_or(raw.nats);
    raw.node = flags.node.clone().unwrap_or(raw.node);
    raw.cluster = flags.name.clone().unwrap_or(raw.cluster);
    let config = raw.build().map_err(|e| Failure::usage(format!("config error: {e}")))?;
    let (node, cluster, url) = (config.node.clone(), config.cluster.clone(), config.nats.clone());
    let joined = Node::start(engine, config).map_err(|e| Failure::runtime(format!("cannot join the cluster: {e}")))?;
    if let Some(server) = server {
        server.kinds().cluster().set(joined.link());
    }
    tracing::info!("nexus: node '{node}' joined cluster '{cluster}' through {url}");
    Ok(Some(joined))
}
