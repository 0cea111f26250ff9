//! `nexus run --cluster URL --node NAME`: joins the node to a NATS cluster (`nexus-cluster`)
//! and hands the link to the RESP server, so `AGENT.SPAWN ... GLOBAL`, remote `AGENT.ASK` /
//! `AGENT.SEND` and `INFO cluster` work.
//!
//! Invariant: the link is in the server's cluster slot before clients connect (this runs
//! before the server opens), and the node leaves the cluster before the engine stops.

use crate::Failure;
use nexus_cluster::{ClusterConfig, Node};
use nexus_engine::engine::EngineHandle;
use nexus_server::ServerHandle;

/// Joins the cluster the flags name, if any.
pub fn join(
    url: &Option<String>,
    node: &Option<String>,
    cluster: &str,
    engine: &EngineHandle,
    server: Option<&ServerHandle>,
) -> Result<Option<Node>, Failure> {
    let (Some(url), Some(node)) = (url, node) else { return Ok(None) };
    let config = ClusterConfig::builder(url.clone(), node.clone())
        .cluster(cluster)
        .build()
        .map_err(|e| Failure::usage(format!("bad --cluster/--node: {e}")))?;
    let joined = Node::start(engine, config).map_err(|e| Failure::runtime(format!("cannot join the cluster: {e}")))?;
    if let Some(server) = server {
        server.kinds().cluster().set(joined.link());
    }
    tracing::info!("nexus: node '{node}' joined cluster '{cluster}' through {url}");
    Ok(Some(joined))
}
