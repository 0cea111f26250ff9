//! OS binding for shard threads: pin the calling thread to one CPU, bind its memory to one
//! NUMA node; and where a pinned shard's helper threads go instead of inheriting its pin
//! ([`helper_cpus`], [`run_current_thread_on`]).
//!
//! Owns the only hwloc handle the engine keeps: one process-wide `hwlocality::Topology`,
//! loaded on first use and shared (it is `Send + Sync`), so shard threads do not each pay for a
//! topology load. Without the `hwloc` feature, or when hwloc cannot load, pinning uses
//! `sched_setaffinity` directly and memory binding reports [`MemoryBinding::Unsupported`].
//!
//! Invariant: memory binding never fails because the *environment* cannot bind (no NUMA
//! support, a seccomp profile that forbids `set_mempolicy`, a single-node machine): those come
//! back as `Ok(MemoryBinding::Unsupported { .. })`, so the engine starts anyway. On a
//! single-NUMA-node machine (such as the 2-core development VM) binding to node 0 is a no-op
//! in effect, since all memory is node 0's.

use crate::topology::{Topology, TopologySource};

/// Why a thread could not be bound.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum BindError {
    /// The CPU is not in the topology.
    #[error("cpu {0} does not exist on this machine")]
    UnknownCpu(usize),
    /// The CPU is outside the process's allowed cpuset.
    #[error("cpu {0} is not in the process's allowed cpuset")]
    CpuNotAllowed(usize),
    /// The topology was imported from hwloc XML: it may describe another machine, so its CPU
    /// numbers mean nothing to this one's scheduler.
    #[error("cannot pin to cpu {0}: the topology is an hwloc XML import, not this machine")]
    NotThisMachine(usize),
    /// The OS refused to pin the thread.
    #[error("cannot pin thread to cpu {cpu}: {reason}")]
    Pin {
        /// The CPU asked for.
        cpu: usize,
        /// What the OS or hwloc said.
        reason: String,
    },
    /// The NUMA node does not exist on this machine.
    #[error("NUMA node {0} does not exist on this machine")]
    UnknownNumaNode(usize),
    /// The OS refused to bind the thread's memory for a reason other than lack of support.
    #[error("cannot bind memory to NUMA node {node}: {reason}")]
    MemoryBind {
        /// The node asked for.
        node: usize,
        /// What hwloc said.
        reason: String,
    },
}

/// The outcome of [`bind_current_thread_memory`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemoryBinding {
    /// New allocations of this thread now come from `node`.
    Bound {
        /// The NUMA node (OS index).
        node: usize,
    },
    /// Binding is not available here; memory follows the kernel's default (first touch).
    Unsupported {
        /// Why, for the log.
        reason: String,
    },
}

/// The process-wide hwloc topology used for binding, loaded once.
#[cfg(feature = "hwloc")]
fn hwloc_topology() -> Result<&'static hwlocality::Topology, String> {
    static TOPOLOGY: std::sync::OnceLock<Result<hwlocality::Topology, String>> = std::sync::OnceLock::new();
    TOPOLOGY.get_or_init(|| hwlocality::Topology::new().map_err(|e| e.to_string())).as_ref().map_err(Clone::clone)
}

/// Pins the calling thread to `cpu` (an OS index from `topo`).
///
/// With the `hwloc` feature this is hwloc's `bind_cpu` with the `THREAD` flag; otherwise (or if
/// hwloc failed to load) `sched_setaffinity` on the calling thread.
///
/// # Errors
/// [`BindError::NotThisMachine`] for a topology imported from XML (never bound against, even
/// when it happens to match this machine), [`BindError::UnknownCpu`] /
/// [`BindError::CpuNotAllowed`] when `topo` says the CPU cannot be used, [`BindError::Pin`]
/// when the OS refuses.
pub fn pin_current_thread(topo: &Topology, cpu: usize) -> Result<(), BindError> {
    if topo.source() == TopologySource::Xml {
        return Err(BindError::NotThisMachine(cpu));
    }
    let pu = topo.pu(cpu).ok_or(BindError::UnknownCpu(cpu))?;
    if !pu.allowed {
        return Err(BindError::CpuNotAllowed(cpu));
    }
    #[cfg(feature = "hwloc")]
    if let Ok(hw) = hwloc_topology() {
        use hwlocality::bitmap::BitmapIndex;
        use hwlocality::cpu::binding::CpuBindingFlags;
        use hwlocality::cpu::cpuset::CpuSet;

        let pin_err = |reason: String| BindError::Pin { cpu, reason };
        let index = BitmapIndex::try_from(cpu).map_err(|e| pin_err(e.to_string()))?;
        let mut set = CpuSet::new();
        set.set(index);
        return hw.bind_cpu(&set, CpuBindingFlags::THREAD).map_err(|e| pin_err(e.to_string()));
    }
    crate::topology::os::set_current_thread_affinity(&[cpu]).map_err(|e| BindError::Pin { cpu, reason: e.to_string() })
}

/// Binds the calling thread's future memory allocations to NUMA node `numa_node` (OS index),
/// with hwloc's `Bind` policy.
///
/// Returns [`MemoryBinding::Unsupported`] rather than an error when the environment cannot
/// bind: built without the `hwloc` feature, hwloc failed to load or reports no per-thread
/// binding, the kernel or a seccomp profile refuses (`ENOSYS`, `EPERM`), or the machine has a
/// single NUMA node (where binding changes nothing). On the 2-core, one-node development VM
/// this returns `Bound { node: 0 }` (or `Unsupported` inside a restrictive container) and is a
/// no-op in effect: all memory is node 0's anyway.
///
/// # Errors
/// [`BindError::UnknownNumaNode`] when hwloc does not know the node, [`BindError::MemoryBind`]
/// when a multi-node machine refuses for another reason.
pub fn bind_current_thread_memory(numa_node: usize) -> Result<MemoryBinding, BindError> {
    #[cfg(feature = "hwloc")]
    {
        bind_memory_hwloc(numa_node)
    }
    #[cfg(not(feature = "hwloc"))]
    {
        let _ = numa_node;
        Ok(MemoryBinding::Unsupported { reason: "built without the `hwloc` feature".into() })
    }
}

#[cfg(feature = "hwloc")]
fn bind_memory_hwloc(node: usize) -> Result<MemoryBinding, BindError> {
    use hwlocality::bitmap::BitmapIndex;
    use hwlocality::errors::HybridError;
    use hwlocality::memory::binding::{MemoryBindingError, MemoryBindingFlags, MemoryBindingPolicy};
    use hwlocality::memory::nodeset::NodeSet;

    let unsupported = |reason: String| Ok(MemoryBinding::Unsupported { reason });
    let hw = match hwloc_topology() {
        Ok(hw) => hw,
        Err(e) => return unsupported(format!("hwloc failed to load: {e}")),
    };
    let nodes: Vec<usize> = hw.nodeset().iter_set().map(usize::from).collect();
    if !nodes.contains(&node) {
        return Err(BindError::UnknownNumaNode(node));
    }
    let supported = hw.feature_support().memory_binding().is_some_and(|s| s.set_current_thread() && s.bind_policy());
    if !supported {
        return unsupported("hwloc reports no per-thread memory binding here".into());
    }
    let index = BitmapIndex::try_from(node).map_err(|_| BindError::UnknownNumaNode(node))?;
    let mut set = NodeSet::new();
    set.set(index);
    match hw.bind_memory(&set, MemoryBindingPolicy::Bind, MemoryBindingFlags::THREAD) {
        Ok(()) => Ok(MemoryBinding::Bound { node }),
        Err(HybridError::Rust(MemoryBindingError::Unsupported)) => {
            unsupported("hwloc: memory binding policy not supported".into())
        }
        Err(HybridError::Hwloc(e)) if e.errno.is_some_and(|n| n.0 == libc::ENOSYS || n.0 == libc::EPERM) => {
            unsupported(format!("the kernel refused memory binding: {e}"))
        }
        Err(e) if nodes.len() == 1 => unsupported(format!("single NUMA node, binding not needed (hwloc said: {e})")),
        Err(e) => Err(BindError::MemoryBind { node, reason: e.to_string() }),
    }
}

/// The CPU the calling thread is running on right now (`sched_getcpu`), if the OS says.
pub fn current_cpu() -> Option<usize> {
    crate::topology::os::current_cpu()
}

/// Where a helper thread of the calling (pinned) thread should run: the CPUs the process may
/// use (its main thread's affinity, which pinning the shards leaves alone) less the caller's,
/// or all of the process's when that leaves none. `None` when an affinity is unknown, or when
/// the caller may already run everywhere that answer names (nothing to change).
///
/// A thread inherits the affinity of the thread that starts it, so without this a pinned
/// shard's helper (a log writer, say) runs on the very CPU it is meant to relieve.
pub fn helper_cpus() -> Option<Vec<usize>> {
    let own = crate::topology::os::current_thread_affinity()?;
    let cpus = off(&crate::topology::os::process_affinity()?, &own);
    (cpus != own).then_some(cpus)
}

/// `process` less `own`, or all of `process` when that leaves nothing.
fn off(process: &[usize], own: &[usize]) -> Vec<usize> {
    let rest: Vec<usize> = process.iter().copied().filter(|c| !own.contains(c)).collect();
    if rest.is_empty() {
        process.to_vec()
    } else {
        rest
    }
}

/// Restricts the calling thread to `cpus` (`sched_setaffinity`; unlike [`pin_current_thread`],
/// any set, and no topology check).
///
/// # Errors
/// The OS error, or `Unsupported` off Linux (where only a single CPU can be set).
pub fn run_current_thread_on(cpus: &[usize]) -> std::io::Result<()> {
    crate::topology::os::set_current_thread_affinity(cpus)
}

#[cfg(test)]
mod helper_tests {
    use super::off;

    #[test]
    fn a_helper_gets_the_process_cpus_less_its_shards() {
        assert_eq!(off(&[0, 1], &[0]), vec![1]);
        assert_eq!(off(&[0, 1, 2, 3], &[2]), vec![0, 1, 3]);
        // The shards cover every CPU: anywhere the process may run.
        assert_eq!(off(&[0, 1], &[0, 1]), vec![0, 1]);
        assert_eq!(off(&[0], &[0]), vec![0]);
    }
}
