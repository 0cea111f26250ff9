//! Placement: turning a [`Topology`] and a [`PlacementRequest`] into a [`PlacementPlan`], and
//! binding each shard thread to its CPU and NUMA node ([`pin_current_thread`],
//! [`bind_current_thread_memory`]).
//!
//! # Rules
//!
//! * A CPU is **usable** when the process is allowed on it and the request does not reserve it.
//!   Reserving a CPU the machine does not have is a no-op, so one config can serve machines of
//!   different sizes.
//! * The **per-core order** has one slot per physical core that has at least one usable PU and
//!   no reserved PU, using that core's first usable PU. So SMT siblings are skipped; a core
//!   whose first PU is merely *disallowed* still counts through its sibling; but reserving a
//!   CPU takes its whole core out of the per-core order, because a shard on the sibling would
//!   share the core's execution units with whatever the CPU was reserved for. Cores are ordered
//!   by NUMA node (OS index), then performance before efficiency cores *within the node* (so
//!   the first shards of a node land on fast cores even when both kinds share an L3), then L3
//!   domain (unknown last), then core id.
//! * [`Placement::PerCore`] is the whole per-core order. [`Placement::Shards`]`(n)` is its
//!   first `n` slots. With `allow_oversubscribe`, shards beyond it go on the remaining usable
//!   PUs: the second PU of every core in per-core order (the usable PUs of cores taken out by a
//!   reservation come first, at rank one), then the third PUs, and so on; beyond those they
//!   wrap around onto the CPUs already used, in the same order (shard `i` gets the CPU of shard
//!   `i % usable_pus`). Without it, asking for more than the per-core slots is
//!   [`PlacementError::TooManyShards`].
//! * [`Placement::Cpus`] uses exactly the listed CPUs in the listed order; each must exist, be
//!   allowed and not be reserved. Listing a CPU twice needs `allow_oversubscribe`.
//! * A shard's index is its position in the plan.
//!
//! The plan is pure data computed from the model; only the binding helpers touch the OS.
//! [`order_by_latency`] reorders a plan's CPUs around the ring from a measured latency matrix.

mod bind;
mod order;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::fmt;

use crate::topology::{Core, CoreKind, Topology};

pub use bind::{
    bind_current_thread_memory, current_cpu, helper_cpus, pin_current_thread, run_current_thread_on, BindError,
    MemoryBinding,
};
pub use order::{cycle_cost, order_by_latency, EXACT_MAX, UNMEASURED_COST};

/// Which CPUs the shards run on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Placement {
    /// One shard per physical core with a usable PU (the default).
    #[default]
    PerCore,
    /// Exactly these CPUs (OS indices), shard `i` on `cpus[i]`.
    Cpus(Vec<usize>),
    /// This many shards, taken from the front of the per-core order.
    Shards(usize),
}

/// What the engine asks of the placer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PlacementRequest {
    /// Which CPUs to use.
    pub placement: Placement,
    /// CPUs kept free of shards (for the OS, an I/O thread, ...).
    pub reserved_cpus: Vec<usize>,
    /// Allow SMT siblings and shared CPUs when there are more shards than cores.
    pub allow_oversubscribe: bool,
}

impl PlacementRequest {
    /// One shard per core ([`Placement::PerCore`]), nothing reserved, no oversubscription.
    pub fn per_core() -> Self {
        Self::default()
    }

    /// `n` shards ([`Placement::Shards`]).
    pub fn shards(n: usize) -> Self {
        Self::with_placement(Placement::Shards(n))
    }

    /// Shards on exactly these CPUs ([`Placement::Cpus`]).
    pub fn cpus(cpus: &[usize]) -> Self {
        Self::with_placement(Placement::Cpus(cpus.to_vec()))
    }

    /// A request for `placement`, nothing reserved, no oversubscription.
    pub fn with_placement(placement: Placement) -> Self {
        Self { placement, ..Self::default() }
    }

    /// Adds `cpus` to the reserved set.
    #[must_use]
    pub fn reserve(mut self, cpus: &[usize]) -> Self {
        self.reserved_cpus.extend_from_slice(cpus);
        self
    }

    /// Sets whether oversubscription is allowed.
    #[must_use]
    pub fn oversubscribe(mut self, allow: bool) -> Self {
        self.allow_oversubscribe = allow;
        self
    }
}

/// Where one shard runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardPlacement {
    /// The shard index (its position in the plan).
    pub shard: usize,
    /// The CPU (OS index) to pin the shard thread to.
    pub cpu: usize,
    /// The core of that CPU (index into [`Topology::cores`]).
    pub core: usize,
    /// The package of that core (index into [`Topology::packages`]).
    pub package: usize,
    /// The NUMA node (OS index) to bind the shard's memory to.
    pub numa_node: usize,
    /// The L3 domain of that core (index into [`Topology::l3_domains`]), if known.
    pub l3: Option<usize>,
}

/// The result of [`plan`]: one entry per shard, in shard order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PlacementPlan {
    /// The shards; `shards[i].shard == i`.
    pub shards: Vec<ShardPlacement>,
}

impl PlacementPlan {
    /// Number of shards.
    pub fn len(&self) -> usize {
        self.shards.len()
    }

    /// Whether the plan has no shard (never true for a plan returned by [`plan`]).
    pub fn is_empty(&self) -> bool {
        self.shards.is_empty()
    }

    /// The shards in order.
    pub fn iter(&self) -> std::slice::Iter<'_, ShardPlacement> {
        self.shards.iter()
    }

    /// The CPUs in shard order.
    pub fn cpus(&self) -> Vec<usize> {
        self.shards.iter().map(|s| s.cpu).collect()
    }
}

impl<'a> IntoIterator for &'a PlacementPlan {
    type Item = &'a ShardPlacement;
    type IntoIter = std::slice::Iter<'a, ShardPlacement>;

    fn into_iter(self) -> Self::IntoIter {
        self.shards.iter()
    }
}

impl fmt::Display for PlacementPlan {
    /// A table with one row per shard: `shard | cpu | core | numa | l3` (`-` for unknown L3).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:>5} | {:>5} | {:>5} | {:>4} | {:>3}", "shard", "cpu", "core", "numa", "l3")?;
        writeln!(f, "------+-------+-------+------+----")?;
        for s in &self.shards {
            let l3 = s.l3.map_or_else(|| "-".to_owned(), |l| l.to_string());
            writeln!(f, "{:>5} | {:>5} | {:>5} | {:>4} | {:>3}", s.shard, s.cpu, s.core, s.numa_node, l3)?;
        }
        Ok(())
    }
}

/// Why a request cannot be placed.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum PlacementError {
    /// More shards than usable cores, and oversubscription is off.
    #[error(
        "{requested} shards requested but only {usable} usable cores; \
         set oversubscribe = true or ask for fewer shards"
    )]
    TooManyShards {
        /// Shards asked for.
        requested: usize,
        /// Cores with a usable PU.
        usable: usize,
    },
    /// The CPU list names a CPU the machine does not have.
    #[error("cpu {0} does not exist on this machine")]
    UnknownCpu(usize),
    /// The CPU list names a CPU outside the process's affinity mask or cgroup.
    #[error("cpu {0} is not in the process's allowed cpuset")]
    CpuNotAllowed(usize),
    /// The CPU list names a CPU twice, and oversubscription is off.
    #[error("cpu {0} is listed twice; set oversubscribe = true to share a cpu")]
    DuplicateCpu(usize),
    /// The CPU list names a reserved CPU.
    #[error("cpu {0} is both listed for a shard and reserved")]
    ReservedCpu(usize),
    /// Nothing to place: zero shards, an empty CPU list, or no usable CPU left.
    #[error("no shard to place: zero shards requested, empty cpu list, or every cpu reserved or disallowed")]
    Empty,
}

/// One usable slot: a CPU and the core it belongs to.
#[derive(Debug, Clone, Copy)]
struct Slot<'t> {
    cpu: usize,
    core: &'t Core,
}

/// Cores in per-core order (see the module docs).
fn core_order(topo: &Topology) -> Vec<&Core> {
    let mut order: Vec<&Core> = topo.cores().iter().collect();
    order.sort_by_key(|c| {
        let efficiency = c.kind == CoreKind::Efficiency;
        (c.numa_node, efficiency, c.l3.unwrap_or(usize::MAX), c.id)
    });
    order
}

/// Per-core slots, then the remaining slots (by rank within their core, in core order).
fn slots<'t>(topo: &'t Topology, reserved: &[usize]) -> (Vec<Slot<'t>>, Vec<Slot<'t>>) {
    let usable = |cpu: &usize| topo.pu(*cpu).is_some_and(|p| p.allowed) && !reserved.contains(cpu);
    // (core, its usable PUs, whether it gets a per-core slot)
    let cores: Vec<(&Core, Vec<usize>, bool)> = core_order(topo)
        .into_iter()
        .map(|core| {
            let cpus: Vec<usize> = core.pus.iter().copied().filter(usable).collect();
            let whole = !core.pus.iter().any(|c| reserved.contains(c));
            (core, cpus, whole)
        })
        .filter(|(_, cpus, _)| !cpus.is_empty())
        .collect();
    let first = cores
        .iter()
        .filter(|(_, _, whole)| *whole)
        .filter_map(|(core, cpus, _)| Some(Slot { cpu: *cpus.first()?, core }))
        .collect();
    let depth = cores.iter().map(|(_, c, _)| c.len()).max().unwrap_or(0);
    let rest = (0..depth)
        .flat_map(|rank| {
            cores.iter().filter_map(move |(core, cpus, whole)| {
                let skip = *whole && rank == 0;
                let cpu = *cpus.get(rank).filter(|_| !skip)?;
                Some(Slot { cpu, core })
            })
        })
        .collect();
    (first, rest)
}

/// Computes where each shard runs; see the module docs for the rules.
///
/// # Errors
/// [`PlacementError::Empty`] when there is nothing to place, [`PlacementError::TooManyShards`]
/// when `Shards(n)` exceeds the usable cores without oversubscription, and for `Cpus`:
/// [`UnknownCpu`](PlacementError::UnknownCpu), [`CpuNotAllowed`](PlacementError::CpuNotAllowed),
/// [`ReservedCpu`](PlacementError::ReservedCpu), [`DuplicateCpu`](PlacementError::DuplicateCpu),
/// reporting the first offending CPU in list order.
pub fn plan(topo: &Topology, req: &PlacementRequest) -> Result<PlacementPlan, PlacementError> {
    let reserved = &req.reserved_cpus;
    let chosen: Vec<Slot<'_>> = match &req.placement {
        Placement::PerCore => slots(topo, reserved).0,
        Placement::Shards(0) => return Err(PlacementError::Empty),
        Placement::Shards(n) => {
            let (first, rest) = slots(topo, reserved);
            if *n <= first.len() {
                first[..*n].to_vec()
            } else if first.is_empty() && rest.is_empty() {
                return Err(PlacementError::Empty);
            } else if !req.allow_oversubscribe {
                return Err(PlacementError::TooManyShards { requested: *n, usable: first.len() });
            } else {
                let all: Vec<Slot<'_>> = first.into_iter().chain(rest).collect();
                all.iter().copied().cycle().take(*n).collect()
            }
        }
        Placement::Cpus(cpus) => {
            let mut out: Vec<Slot<'_>> = Vec::with_capacity(cpus.len());
            let mut seen = HashSet::with_capacity(cpus.len());
            for &cpu in cpus {
                let pu = topo.pu(cpu).ok_or(PlacementError::UnknownCpu(cpu))?;
                if !pu.allowed {
                    return Err(PlacementError::CpuNotAllowed(cpu));
                }
                if reserved.contains(&cpu) {
                    return Err(PlacementError::ReservedCpu(cpu));
                }
                if !seen.insert(cpu) && !req.allow_oversubscribe {
                    return Err(PlacementError::DuplicateCpu(cpu));
                }
                let core = topo.cores().get(pu.core).ok_or(PlacementError::UnknownCpu(cpu))?;
                out.push(Slot { cpu, core });
            }
            out
        }
    };
    if chosen.is_empty() {
        return Err(PlacementError::Empty);
    }
    let shards = chosen
        .into_iter()
        .enumerate()
        .map(|(shard, Slot { cpu, core })| ShardPlacement {
            shard,
            cpu,
            core: core.id,
            package: core.package,
            numa_node: core.numa_node,
            l3: core.l3,
        })
        .collect();
    Ok(PlacementPlan { shards })
}
