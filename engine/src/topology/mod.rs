//! The machine model: packages, NUMA nodes, L3 domains, cores and PUs.
//!
//! This module owns reading the machine (hwloc when the `hwloc` feature is on, `/sys` otherwise
//! or as a fallback) and the plain-data [`Topology`] the rest of the engine plans against. The
//! model holds no OS handle: it is `Send + Sync + Clone` and can be handed to every shard.
//!
//! # Naming and invariants
//!
//! * **CPUs** (PUs) and **NUMA nodes** are named by their *OS index*: the number the kernel uses
//!   (`cpu5`, `node1`), because that is what the OS binding calls take.
//! * **Cores**, **packages** and **L3 domains** are named by their *position* in
//!   [`Topology::cores`], [`Topology::packages`] and [`Topology::l3_domains`] (a logical index),
//!   because the kernel's `core_id` is not unique across packages.
//! * `pus()` is sorted by OS index with no duplicates; `numa_nodes()` is sorted by OS index.
//! * Every PU belongs to exactly one core, every core lists at least one PU, and the
//!   cross-references (`Pu::core`, `Core::package`, `Core::numa_node`, `Core::l3`) always point at
//!   existing entries. Every constructor goes through [`TopologyBuilder::build`], which checks
//!   this, so a `Topology` value is always consistent.
//! * There is always at least one package, one NUMA node, one core and one PU.

mod builder;
mod cpulist;
#[cfg(all(test, feature = "hwloc"))]
pub(crate) mod fixture_tests;
#[cfg(feature = "hwloc")]
mod hwloc;
pub(crate) mod os;
mod sysfs;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::Path;

pub use builder::{SyntheticTopology, TopologyBuilder};
pub use cpulist::{format_cpu_list, parse_cpu_list};

/// Errors from reading or building a [`Topology`].
#[derive(thiserror::Error, Debug)]
pub enum TopologyError {
    /// hwloc could not load the machine's topology.
    #[error("hwloc failed: {0}")]
    Hwloc(String),
    /// A file or directory that is required to read the machine could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path that failed.
        path: std::path::PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The source described no usable processing unit at all.
    #[error("no CPU found: {0}")]
    NoCpus(String),
    /// A CPU list string (such as `0-3,8`) could not be parsed.
    #[error("invalid cpu list {input:?}: {reason}")]
    BadCpuList {
        /// The text that failed to parse.
        input: String,
        /// What was wrong with it.
        reason: String,
    },
    /// The parts handed to [`TopologyBuilder`] (or a synthetic shape) are inconsistent.
    #[error("invalid topology: {0}")]
    Invalid(String),
    /// An hwloc XML file could be read but is not a topology hwloc accepts.
    #[error("{path} is not a usable hwloc XML topology: {reason}")]
    Xml {
        /// The file.
        path: std::path::PathBuf,
        /// What was wrong with it.
        reason: String,
    },
}

/// Where a [`Topology`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TopologySource {
    /// Read from the live machine by hwloc.
    Hwloc,
    /// Read from a Linux `/sys` tree (the live one or a copy).
    Sysfs,
    /// Built by hand or by [`SyntheticTopology`]; describes no real machine.
    Synthetic,
    /// Imported from an hwloc XML export ([`Topology::from_hwloc_xml`]): another machine, or
    /// this one at another time. Nothing may be bound against it.
    Xml,
}

/// The kind of a core on a hybrid CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CoreKind {
    /// A performance ("P") core, or the fastest kind on a hybrid machine.
    Performance,
    /// An efficiency ("E") core: slower, more power efficient.
    Efficiency,
    /// The source could not tell (homogeneous machine, or no information).
    #[default]
    Unknown,
}

/// A processor package (socket).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// Position in [`Topology::packages`].
    pub id: usize,
    /// The OS's package number (`physical_package_id`), if known.
    pub os_index: Option<usize>,
    /// Cores of this package (indices into [`Topology::cores`]), in order.
    pub cores: Vec<usize>,
}

/// A NUMA memory node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumaNode {
    /// The kernel's node number (`nodeN`).
    pub os_index: usize,
    /// Local memory in bytes, if known.
    pub memory_bytes: Option<u64>,
    /// CPUs (OS indices) local to this node, ascending. Empty for memory-only nodes.
    pub cpus: Vec<usize>,
}

/// A set of cores sharing one L3 cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct L3Domain {
    /// Position in [`Topology::l3_domains`].
    pub id: usize,
    /// Cache size in bytes, if known.
    pub size_bytes: Option<u64>,
    /// CPUs (OS indices) sharing this cache, ascending.
    pub cpus: Vec<usize>,
}

/// A physical core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Core {
    /// Position in [`Topology::cores`].
    pub id: usize,
    /// The package this core is in (index into [`Topology::packages`]).
    pub package: usize,
    /// The NUMA node this core is local to (its OS index).
    pub numa_node: usize,
    /// The L3 domain this core shares (index into [`Topology::l3_domains`]), if known.
    pub l3: Option<usize>,
    /// The PUs of this core (OS indices), first hardware thread first. Never empty.
    pub pus: Vec<usize>,
    /// Performance or efficiency core.
    pub kind: CoreKind,
    /// Size in bytes of the L1 data cache this core uses, if known.
    pub l1d_bytes: Option<u64>,
    /// Size in bytes of the L2 cache this core uses (possibly shared with other cores, as on
    /// clusters of efficiency cores), if known.
    pub l2_bytes: Option<u64>,
}

/// A processing unit (hardware thread): what the kernel calls a CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pu {
    /// The CPU number the kernel uses.
    pub os_index: usize,
    /// The core this PU belongs to (index into [`Topology::cores`]).
    pub core: usize,
    /// Whether the process may run on it (its affinity mask and cgroup allow it).
    pub allowed: bool,
}

/// A NUMA distance matrix (relative latencies, 10 = local on Linux).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumaDistances {
    nodes: Vec<usize>,
    values: Vec<u64>,
}

impl NumaDistances {
    /// Builds a matrix over `nodes` (NUMA OS indices) from row-major `values`.
    ///
    /// # Errors
    /// [`TopologyError::Invalid`] when `values.len() != nodes.len()²` or a node is repeated.
    pub fn new(nodes: Vec<usize>, values: Vec<u64>) -> Result<Self, TopologyError> {
        if nodes.len().checked_mul(nodes.len()) != Some(values.len()) {
            return Err(TopologyError::Invalid(format!(
                "distance matrix for {} nodes has {} values",
                nodes.len(),
                values.len()
            )));
        }
        let mut sorted = nodes.clone();
        sorted.sort_unstable();
        if sorted.windows(2).any(|w| w[0] == w[1]) {
            return Err(TopologyError::Invalid("distance matrix repeats a node".into()));
        }
        Ok(Self { nodes, values })
    }

    /// The NUMA nodes (OS indices) in row/column order.
    pub fn nodes(&self) -> &[usize] {
        &self.nodes
    }

    /// Distance from node `from` to node `to` (OS indices), if both are in the matrix.
    pub fn get(&self, from: usize, to: usize) -> Option<u64> {
        let row = self.nodes.iter().position(|&n| n == from)?;
        let col = self.nodes.iter().position(|&n| n == to)?;
        self.values.get(row * self.nodes.len() + col).copied()
    }
}

/// The machine model. Plain data; see the module docs for naming and invariants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    pub(crate) source: TopologySource,
    pub(crate) packages: Vec<Package>,
    pub(crate) numa_nodes: Vec<NumaNode>,
    pub(crate) l3_domains: Vec<L3Domain>,
    pub(crate) cores: Vec<Core>,
    pub(crate) pus: Vec<Pu>,
    pub(crate) distances: Option<NumaDistances>,
    pub(crate) fallback_reason: Option<String>,
}

impl Topology {
    /// Reads the live machine.
    ///
    /// With the `hwloc` feature, hwloc is asked first; if it fails, `/sys` is read instead and
    /// [`fallback_reason`](Self::fallback_reason) says why. Without the feature, `/sys` is read.
    /// The allowed set is the process's affinity mask as seen from its main thread, so call this
    /// before pinning the main thread (or keep the first result).
    ///
    /// # Errors
    /// Only when neither source yields a usable model (no CPU found, `/sys` unreadable).
    pub fn detect() -> Result<Topology, TopologyError> {
        #[cfg(feature = "hwloc")]
        {
            match hwloc::read_live() {
                Ok(topo) => Ok(topo),
                Err(err) => {
                    let mut topo = Self::from_sysfs(Path::new("/"))?;
                    topo.fallback_reason = Some(format!("hwloc unavailable, used /sys: {err}"));
                    Ok(topo)
                }
            }
        }
        #[cfg(not(feature = "hwloc"))]
        {
            Self::from_sysfs(Path::new("/"))
        }
    }

    /// Imports an hwloc XML export (`lstopo machine.xml`, or `lstopo --of xml`) of any machine.
    ///
    /// The model is built by the same conversion as the live hwloc read, with
    /// [`TopologySource::Xml`]. A PU is allowed when the XML's allowed cpuset contains it: this
    /// process's affinity mask says nothing about that machine. The result is for planning and
    /// display only; [`pin_current_thread`](crate::placement::pin_current_thread) refuses it.
    ///
    /// # Errors
    /// [`TopologyError::Io`] when the file cannot be read, [`TopologyError::Xml`] when hwloc
    /// rejects its contents, [`TopologyError::NoCpus`] when it describes no PU, and
    /// [`TopologyError::Hwloc`] when built without the `hwloc` feature.
    pub fn from_hwloc_xml(path: &Path) -> Result<Topology, TopologyError> {
        #[cfg(feature = "hwloc")]
        {
            hwloc::read_xml(path)
        }
        #[cfg(not(feature = "hwloc"))]
        {
            Err(TopologyError::Hwloc(format!("cannot import {}: built without the `hwloc` feature", path.display())))
        }
    }

    /// Reads a Linux sysfs tree rooted at `root` (`/` for the live machine).
    ///
    /// Reads `sys/devices/system/cpu/cpu*/topology/*`, `cpu*/cache/index*/` (L1 data, L2, L3),
    /// `sys/devices/system/node/node*/{cpulist,distance,meminfo}` and the online list. Missing
    /// files degrade: no node directory gives one NUMA node 0 holding every CPU, no cache
    /// directory leaves L3 unknown, no topology files make each CPU its own core in package 0.
    /// For `root == "/"` the allowed flag comes from `sched_getaffinity` of the main thread; for
    /// any other root (a copied or fake tree) every CPU is allowed, since this process's mask
    /// says nothing about that machine.
    ///
    /// # Errors
    /// [`TopologyError::Io`] if the cpu directory cannot be listed, [`TopologyError::NoCpus`]
    /// if it lists no CPU.
    pub fn from_sysfs(root: &Path) -> Result<Topology, TopologyError> {
        sysfs::read(root)
    }

    /// Starts a hand-built topology; see [`TopologyBuilder`].
    pub fn builder() -> TopologyBuilder {
        TopologyBuilder::new()
    }

    /// Where this model came from.
    pub fn source(&self) -> TopologySource {
        self.source
    }

    /// Why the preferred source (hwloc) was not used, when [`detect`](Self::detect) fell back.
    pub fn fallback_reason(&self) -> Option<&str> {
        self.fallback_reason.as_deref()
    }

    /// All PUs, sorted by OS index.
    pub fn pus(&self) -> &[Pu] {
        &self.pus
    }

    /// All cores; a core's `id` is its position here.
    pub fn cores(&self) -> &[Core] {
        &self.cores
    }

    /// All NUMA nodes, sorted by OS index.
    pub fn numa_nodes(&self) -> &[NumaNode] {
        &self.numa_nodes
    }

    /// All L3 domains; a domain's `id` is its position here. Empty when unknown.
    pub fn l3_domains(&self) -> &[L3Domain] {
        &self.l3_domains
    }

    /// All packages; a package's `id` is its position here.
    pub fn packages(&self) -> &[Package] {
        &self.packages
    }

    /// The NUMA distance matrix, when the source provides one.
    pub fn distances(&self) -> Option<&NumaDistances> {
        self.distances.as_ref()
    }

    /// The PU the kernel calls `cpu`, if the machine has it.
    pub fn pu(&self, cpu: usize) -> Option<&Pu> {
        self.pus.binary_search_by_key(&cpu, |p| p.os_index).ok().and_then(|i| self.pus.get(i))
    }

    /// The core that `cpu` belongs to.
    pub fn core_of(&self, cpu: usize) -> Option<&Core> {
        self.pu(cpu).and_then(|p| self.cores.get(p.core))
    }

    /// The NUMA node with OS index `os_index`.
    pub fn numa_node(&self, os_index: usize) -> Option<&NumaNode> {
        self.numa_nodes.iter().find(|n| n.os_index == os_index)
    }

    /// The CPUs (OS indices) the process may run on, ascending.
    pub fn allowed_cpus(&self) -> Vec<usize> {
        self.pus.iter().filter(|p| p.allowed).map(|p| p.os_index).collect()
    }

    /// Whether any core has more than one PU.
    pub fn has_smt(&self) -> bool {
        self.cores.iter().any(|c| c.pus.len() > 1)
    }
}

impl fmt::Display for Topology {
    /// One summary line, e.g. `hwloc: 1 package, 1 NUMA node, 1 L3, 2 cores, 2 PUs (2 allowed)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let allowed = self.pus.iter().filter(|p| p.allowed).count();
        write!(
            f,
            "{:?}: {} package(s), {} NUMA node(s), {} L3, {} cores, {} PUs ({} allowed)",
            self.source,
            self.packages.len(),
            self.numa_nodes.len(),
            self.l3_domains.len(),
            self.cores.len(),
            self.pus.len(),
            allowed
        )?;
        if let Some(reason) = &self.fallback_reason {
            write!(f, " [{reason}]")?;
        }
        Ok(())
    }
}
