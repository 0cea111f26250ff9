//! The cluster directory as this node sees it: the live nodes and the global names each
//! holds, learnt from the `nexus.<cluster>.dir` subject, and the claims in flight.
//!
//! Invariants: a node is live while its last heartbeat is younger than the lease; a name
//! belongs to at most one live node in this view (a later heartbeat that lists a name another
//! live node holds does not take it over); among competing claims of one name the smallest
//! `(time, node)` wins, and every node decides the same way from the same messages.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

/// A message on the directory subject.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum DirMsg {
    /// A node is alive and holds these names.
    Heartbeat {
        /// The node.
        node: String,
        /// Every global name it holds.
        names: Vec<String>,
    },
    /// A node claims a name (wall-clock nanoseconds of the claim, then node name, break ties).
    Claim {
        /// The node.
        node: String,
        /// The name.
        name: String,
        /// When it claimed.
        at_ns: u64,
    },
    /// A node gave a name up.
    Release {
        /// The node.
        node: String,
        /// The name.
        name: String,
    },
    /// A node leaves the cluster.
    Leave {
        /// The node.
        node: String,
    },
}

struct NodeEntry {
    last_seen: Instant,
    names: BTreeSet<String>,
}

/// See the module documentation.
#[derive(Default)]
pub(crate) struct Directory {
    nodes: HashMap<String, NodeEntry>,
    claims: HashMap<String, (u64, String)>,
}

impl Directory {
    /// Applies one directory message received at `now`.
    pub(crate) fn apply(&mut self, msg: DirMsg, now: Instant) {
        match msg {
            DirMsg::Heartbeat { node, names } => {
                let entry =
                    self.nodes.entry(node).or_insert_with(|| NodeEntry { last_seen: now, names: BTreeSet::new() });
                entry.last_seen = now;
                entry.names = names.into_iter().collect();
            }
            DirMsg::Claim { node, name, at_ns } => {
                let candidate = (at_ns, node);
                let best = self.claims.entry(name).or_insert_with(|| candidate.clone());
                if candidate < *best {
                    *best = candidate;
                }
            }
            DirMsg::Release { node, name } => {
                if let Some(entry) = self.nodes.get_mut(&node) {
                    entry.names.remove(&name);
                }
                self.claims.remove(&name);
            }
            DirMsg::Leave { node } => {
                self.forget(&node);
            }
        }
    }

    /// Drops `node` and its names (it left, or its lease ran out, or it stopped answering).
    pub(crate) fn forget(&mut self, node: &str) {
        if let Some(entry) = self.nodes.remove(node) {
            for name in entry.names {
                self.claims.remove(&name);
            }
        }
    }

    /// Drops the nodes not heard from within `lease`; returns them.
    pub(crate) fn expire(&mut self, now: Instant, lease: Duration) -> Vec<String> {
        let dead: Vec<String> = self
            .nodes
            .iter()
            .filter(|(_, e)| now.saturating_duration_since(e.last_seen) > lease)
            .map(|(n, _)| n.clone())
            .collect();
        for node in &dead {
            self.forget(node);
        }
        dead
    }

    /// The live node that holds `name`, if this view knows one.
    pub(crate) fn owner(&self, name: &str) -> Option<&str> {
        self.nodes.iter().find(|(_, e)| e.names.contains(name)).map(|(n, _)| n.as_str())
    }

    /// The winning claim of `name` seen so far: `(time, node)`.
    pub(crate) fn best_claim(&self, name: &str) -> Option<&(u64, String)> {
        self.claims.get(name)
    }

    /// Forgets the claims of `name` once a claim of it was decided.
    pub(crate) fn settle_claim(&mut self, name: &str) {
        self.claims.remove(name);
    }

    /// Adds `name` to `node`'s names right away (a claim this node won).
    pub(crate) fn hold(&mut self, node: &str, name: &str, now: Instant) {
        let entry =
            self.nodes.entry(node.to_owned()).or_insert_with(|| NodeEntry { last_seen: now, names: BTreeSet::new() });
        entry.names.insert(name.to_owned());
    }

    /// The live nodes, sorted.
    pub(crate) fn nodes(&self) -> Vec<String> {
        let mut nodes: Vec<String> = self.nodes.keys().cloned().collect();
        nodes.sort();
        nodes
    }

    /// Every global name and its node, sorted by name.
    pub(crate) fn names(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (node, entry) in &self.nodes {
            for name in &entry.names {
                out.entry(name.clone()).or_insert_with(|| node.clone());
            }
        }
        out
    }
}

#[cfg(test)]
#[path = "directory_tests.rs"]
mod tests;
