//! The space `nexus tune` searches, built from the input config and this machine: which
//! dimensions exist, their candidate values, and a note for every dimension left out.
//!
//! Invariants: each dimension's values are unique and sorted in their natural order, the
//! config's own value among them (`start`); a dimension that cannot vary here (one value, a
//! feature the machine lacks, a key the config pins) is left out of the space and explained in
//! a note instead. Values are what a config file says (`"auto"` stays `"auto"`), so the written
//! config keeps the user's spelling where the tune kept the value.

use super::search::{Dimension, Space, Value};
use nexus_engine::config::{EngineConfig, ExecutorKind, ShardCount};
use nexus_engine::executor::{self, Machine};
use nexus_engine::placement::{self, Placement, PlacementRequest};
use nexus_engine::topology::Topology;

/// Ring capacities tried (envelopes; powers of two).
const RING_CAPACITIES: [u64; 7] = [128, 256, 512, 1024, 2048, 4096, 8192];
/// Dispatch batches tried (envelopes).
const BATCHES: [u64; 7] = [8, 16, 32, 64, 128, 256, 512];
/// Spin times before park tried (microseconds).
const SPINS_US: [u64; 7] = [0, 10, 50, 200, 1_000, 5_000, 20_000];

/// The space and the notes on what was left out.
#[derive(Debug)]
pub struct Built {
    /// The dimensions to search.
    pub space: Space,
    /// One line per dimension left out (or narrowed), saying why.
    pub notes: Vec<String>,
}

/// A numeric dimension: `candidates` plus the config's `start`, sorted and unique.
fn numeric(key: &str, candidates: &[u64], start: u64) -> Dimension {
    let mut values: Vec<u64> = candidates.to_vec();
    values.push(start);
    values.sort_unstable();
    values.dedup();
    let at = values.iter().position(|&v| v == start).unwrap_or(0);
    Dimension {
        key: key.into(),
        values: values.iter().map(|v| Value::one(v.to_string(), key, v.to_string())).collect(),
        start: at,
    }
}

/// Shard counts worth trying between `min` and `max`: both ends, the powers of two between.
fn shard_counts(min: usize, max: usize) -> Vec<usize> {
    let mut out = vec![min, max];
    let mut p = 1;
    while p < max {
        if p > min {
            out.push(p);
        }
        p *= 2;
    }
    out.retain(|&n| n >= min && n <= max);
    out.sort_unstable();
    out.dedup();
    out
}

/// Builds the space for `config` on this machine; `min_shards` is what the workloads need.
pub fn build(config: &EngineConfig, topology: &Topology, machine: &Machine, min_shards: usize) -> Built {
    let mut dims = Vec::new();
    let mut notes = Vec::new();
    let p = &config.placement;
    let per_core = placement::plan(
        topology,
        &PlacementRequest {
            placement: Placement::PerCore,
            reserved_cpus: p.reserve_cpus.clone(),
            allow_oversubscribe: false,
        },
    )
    .map(|plan| plan.cpus().len())
    .unwrap_or(0);
    let start_shards = p.fixed_shard_count().unwrap_or(per_core);

    // executor: only where glommio can run.
    match executor::select(ExecutorKind::Glommio, start_shards.max(1), machine) {
        Ok(_) => {
            let (first, start) = match config.executor {
                ExecutorKind::Auto => (Value::one("auto (glommio)", "executor", "\"auto\""), 0),
                ExecutorKind::Glommio => (Value::one("glommio", "executor", "\"glommio\""), 0),
                ExecutorKind::Threads => (Value::one("glommio", "executor", "\"glommio\""), 1),
            };
            dims.push(Dimension {
                key: "executor".into(),
                values: vec![first, Value::one("threads", "executor", "\"threads\"")],
                start,
            });
        }
        Err(e) => notes.push(format!(
            "executor: glommio cannot run here, so only threads is measured ({})",
            e.to_string().split("; hint:").next().unwrap_or_default()
        )),
    }

    dims.push(numeric("idle.spin_before_park_us", &SPINS_US, config.idle.spin_before_park_us));
    dims.push(numeric("mesh.batch", &BATCHES, config.mesh.batch as u64));
    dims.push(numeric("mesh.ring_capacity", &RING_CAPACITIES, config.mesh.ring_capacity as u64));

    // placement.shards: counts the cores allow, at least what the workloads need.
    if p.cpus.is_some() {
        notes.push("placement.shards: the config lists placement.cpus, which fixes the shards; not tuned".into());
    } else {
        let mut counts = shard_counts(min_shards.max(1), per_core.max(min_shards));
        let (auto_n, start_n) = match p.shards {
            ShardCount::Auto => (Some(per_core), per_core),
            ShardCount::Count(n) => (None, n),
        };
        counts.push(start_n);
        counts.sort_unstable();
        counts.dedup();
        if counts.len() < 2 {
            notes.push(format!(
                "placement.shards: {per_core} usable core(s) and the workloads need {min_shards} shard(s): one \
                 possible value, not tuned"
            ));
        } else {
            let values = counts
                .iter()
                .map(|&n| match auto_n {
                    Some(a) if a == n => Value::one(format!("auto ({n})"), "placement.shards", "\"auto\""),
                    _ => Value::one(n.to_string(), "placement.shards", n.to_string()),
                })
                .collect();
            let start = counts.iter().position(|&n| n == start_n).unwrap_or(0);
            dims.push(Dimension { key: "placement.shards".into(), values, start });
        }
    }

    // SMT: shards on every usable hardware thread (siblings included) or not.
    if !topology.has_smt() {
        notes.push("smt: this machine has no SMT siblings (one hardware thread per core); not tuned".into());
    } else if p.cpus.is_some() {
        notes.push("smt: the config lists placement.cpus; not tuned".into());
    } else {
        let pus = topology.allowed_cpus().iter().filter(|c| !p.reserve_cpus.contains(c)).count();
        dims.push(Dimension {
            key: "smt".into(),
            values: vec![
                Value { label: "off".into(), sets: Vec::new() },
                Value {
                    label: format!("on ({pus} shards)"),
                    sets: vec![
                        ("placement.shards".into(), pus.to_string()),
                        ("placement.oversubscribe".into(), "true".into()),
                    ],
                },
            ],
            start: 0,
        });
    }
    Built { space: Space { dims }, notes }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_dimensions_hold_the_start_once_in_order() {
        let d = numeric("mesh.batch", &BATCHES, 100);
        let labels: Vec<&str> = d.values.iter().map(|v| v.label.as_str()).collect();
        assert_eq!(labels, ["8", "16", "32", "64", "100", "128", "256", "512"]);
        assert_eq!(d.start, 4);
        assert_eq!(numeric("mesh.batch", &BATCHES, 64).values.len(), 7);
        assert_eq!(shard_counts(2, 2), [2]);
        assert_eq!(shard_counts(2, 12), [2, 4, 8, 12]);
        assert_eq!(shard_counts(1, 4), [1, 2, 4]);
    }
}
