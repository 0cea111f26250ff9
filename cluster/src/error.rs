//! The cluster's typed errors: why a remote send, ask, claim or resolution failed.
//!
//! Invariant: every failure of a message that crosses nodes is one of these variants, never a
//! silent drop; [`ClusterError::reason`] names the dead-letter reason it is counted under.

use serde::{Deserialize, Serialize};

/// Why a cluster operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ClusterError {
    /// Nobody serves the name (its node is gone, or NATS is unreachable): NATS answered
    /// "no responders", or the bridge is disconnected.
    #[error("'{0}' is unreachable (its node is gone or NATS is disconnected)")]
    Unreachable(String),
    /// No answer came before the deadline.
    #[error("the remote ask timed out")]
    Timeout,
    /// The message could not be serialised.
    #[error("could not encode the message: {0}")]
    Encode(String),
    /// The bytes that came back (or in) could not be deserialised.
    #[error("could not decode the message: {0}")]
    Decode(String),
    /// No node holds this global name.
    #[error("no node holds the global name '{0}'")]
    NotFound(String),
    /// Another node claimed the global name first.
    #[error("the global name '{name}' is already held by node '{node}'")]
    Conflict {
        /// The contested name.
        name: String,
        /// The node that holds it.
        node: String,
    },
    /// The name is not a valid global name (empty, too long, or with '.', '*', '>' or spaces).
    #[error("'{0}' is not a valid global name (1..=200 bytes, no '.', '*', '>' or whitespace)")]
    BadName(String),
    /// The target node got the message but its local delivery failed (the agent is gone, its
    /// mailbox is full, the local ask failed): the engine's reason, as text.
    #[error("the remote node could not deliver it: {0}")]
    Remote(String),
    /// The bridge thread is gone (the node was shut down).
    #[error("the cluster bridge is stopped")]
    Stopped,
    /// Connecting to NATS failed.
    #[error("could not connect to NATS at {url}: {why}")]
    Connect {
        /// The URL tried.
        url: String,
        /// The client's error.
        why: String,
    },
}

impl ClusterError {
    /// The dead-letter reason this failure is counted under.
    pub fn reason(&self) -> crate::stats::Reason {
        use crate::stats::Reason;
        match self {
            ClusterError::Unreachable(_) | ClusterError::Stopped | ClusterError::Connect { .. } => Reason::Unreachable,
            ClusterError::Timeout => Reason::Timeout,
            ClusterError::Encode(_) => Reason::Encode,
            ClusterError::Decode(_) => Reason::Decode,
            ClusterError::NotFound(_) | ClusterError::Conflict { .. } | ClusterError::BadName(_) => Reason::NoSuchName,
            ClusterError::Remote(_) => Reason::Remote,
        }
    }
}

/// Checks that `name` can be a global name (it becomes one NATS subject token).
pub fn validate_global_name(name: &str) -> Result<(), ClusterError> {
    let bad = |c: char| c == '.' || c == '*' || c == '>' || c.is_whitespace();
    if name.is_empty() || name.len() > 200 || name.chars().any(bad) {
        return Err(ClusterError::BadName(name.to_owned()));
    }
    Ok(())
}
