//! Building [`Topology`] values: the checked hand builder and the symmetric synthetic shape.
//!
//! Owns the one place where a `Topology` is assembled. Every reader (hwloc, sysfs) and every
//! synthetic shape goes through [`TopologyBuilder::build`], which validates cross-references and
//! derives the redundant parts (PU table, per-node and per-L3 CPU lists, package core lists), so
//! the invariants listed in the module docs of `topology` hold for every value.

use super::{CoreKind, L3Domain, NumaDistances, NumaNode, Package, Pu, Topology, TopologyError, TopologySource};

/// Upper bound on PUs in a synthetic shape, so a typo cannot allocate without bound.
const MAX_SYNTHETIC_PUS: usize = 1 << 20;

#[derive(Debug, Clone)]
struct CoreSpec {
    package: usize,
    numa_node: usize,
    l3: Option<usize>,
    kind: CoreKind,
    pus: Vec<usize>,
    l1d_bytes: Option<u64>,
    l2_bytes: Option<u64>,
}

/// Builds any topology, symmetric or not, by adding parts one at a time.
///
/// Packages and L3 domains get consecutive ids (returned by the `add_*` calls); NUMA nodes and
/// CPUs are named by the OS index you choose. Nothing is checked until [`build`](Self::build).
#[derive(Debug, Clone)]
pub struct TopologyBuilder {
    source: TopologySource,
    packages: Vec<Option<usize>>,
    numa_nodes: Vec<(usize, Option<u64>)>,
    l3_domains: Vec<Option<u64>>,
    cores: Vec<CoreSpec>,
    disallowed: Vec<usize>,
    distances: Option<NumaDistances>,
    /// A core named by `set_core_caches` that does not exist (reported by `build`).
    missing_cache_core: Option<usize>,
}

impl Default for TopologyBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl TopologyBuilder {
    /// An empty builder whose result reports [`TopologySource::Synthetic`].
    pub fn new() -> Self {
        Self {
            source: TopologySource::Synthetic,
            packages: Vec::new(),
            numa_nodes: Vec::new(),
            l3_domains: Vec::new(),
            cores: Vec::new(),
            disallowed: Vec::new(),
            distances: None,
            missing_cache_core: None,
        }
    }

    /// Sets the source the built topology reports.
    pub fn set_source(&mut self, source: TopologySource) -> &mut Self {
        self.source = source;
        self
    }

    /// Adds a package (with its OS number, if any) and returns its id.
    pub fn add_package(&mut self, os_index: Option<usize>) -> usize {
        self.packages.push(os_index);
        self.packages.len() - 1
    }

    /// Adds NUMA node `os_index` with `memory_bytes` of local memory (if known).
    pub fn add_numa_node(&mut self, os_index: usize, memory_bytes: Option<u64>) -> &mut Self {
        self.numa_nodes.push((os_index, memory_bytes));
        self
    }

    /// Adds an L3 domain of `size_bytes` (if known) and returns its id. Its CPU list is the
    /// union of the cores later added to it.
    pub fn add_l3(&mut self, size_bytes: Option<u64>) -> usize {
        self.l3_domains.push(size_bytes);
        self.l3_domains.len() - 1
    }

    /// Adds a core in `package`, local to NUMA node `numa_node` (OS index), sharing L3 `l3`,
    /// with hardware threads `pus` (CPU numbers, first thread first). Returns the core id.
    pub fn add_core(
        &mut self,
        package: usize,
        numa_node: usize,
        l3: Option<usize>,
        kind: CoreKind,
        pus: &[usize],
    ) -> usize {
        self.cores.push(CoreSpec { package, numa_node, l3, kind, pus: pus.to_vec(), l1d_bytes: None, l2_bytes: None });
        self.cores.len() - 1
    }

    /// Sets the L1 data and L2 cache sizes (bytes, if known) of core `core` (an id returned by
    /// [`add_core`](Self::add_core)); both are unknown unless set.
    pub fn set_core_caches(&mut self, core: usize, l1d_bytes: Option<u64>, l2_bytes: Option<u64>) -> &mut Self {
        match self.cores.get_mut(core) {
            Some(spec) => {
                spec.l1d_bytes = l1d_bytes;
                spec.l2_bytes = l2_bytes;
            }
            None => self.missing_cache_core = Some(core),
        }
        self
    }

    /// Marks `cpus` as not allowed for this process (every CPU is allowed otherwise).
    pub fn disallow(&mut self, cpus: &[usize]) -> &mut Self {
        self.disallowed.extend_from_slice(cpus);
        self
    }

    /// Sets the NUMA distance matrix.
    pub fn set_distances(&mut self, distances: NumaDistances) -> &mut Self {
        self.distances = Some(distances);
        self
    }

    /// Checks the parts and assembles the [`Topology`].
    ///
    /// # Errors
    /// [`TopologyError::NoCpus`] without any core; [`TopologyError::Invalid`] for a core without
    /// PUs, a PU in two cores, a reference to a missing package/node/L3, a repeated NUMA node, a
    /// disallowed CPU or distance-matrix node that does not exist, cache sizes for a missing core.
    pub fn build(self) -> Result<Topology, TopologyError> {
        let invalid = |msg: String| Err(TopologyError::Invalid(msg));
        if self.cores.is_empty() {
            return Err(TopologyError::NoCpus("the topology has no core".into()));
        }
        if let Some(core) = self.missing_cache_core {
            return invalid(format!("cache sizes set for missing core {core}"));
        }
        let mut numa_nodes: Vec<NumaNode> = self
            .numa_nodes
            .iter()
            .map(|&(os_index, memory_bytes)| NumaNode { os_index, memory_bytes, cpus: Vec::new() })
            .collect();
        numa_nodes.sort_by_key(|n| n.os_index);
        if numa_nodes.windows(2).any(|w| w[0].os_index == w[1].os_index) {
            return invalid("a NUMA node is added twice".into());
        }
        let mut packages: Vec<Package> = self
            .packages
            .iter()
            .enumerate()
            .map(|(id, &os_index)| Package { id, os_index, cores: Vec::new() })
            .collect();
        let mut l3_domains: Vec<L3Domain> = self
            .l3_domains
            .iter()
            .enumerate()
            .map(|(id, &size_bytes)| L3Domain { id, size_bytes, cpus: Vec::new() })
            .collect();

        let mut cores = Vec::with_capacity(self.cores.len());
        let mut pus = Vec::new();
        for (id, spec) in self.cores.into_iter().enumerate() {
            if spec.pus.is_empty() {
                return invalid(format!("core {id} has no PU"));
            }
            let Some(package) = packages.get_mut(spec.package) else {
                return invalid(format!("core {id} names missing package {}", spec.package));
            };
            package.cores.push(id);
            let Ok(node) = numa_nodes.binary_search_by_key(&spec.numa_node, |n| n.os_index) else {
                return invalid(format!("core {id} names missing NUMA node {}", spec.numa_node));
            };
            numa_nodes[node].cpus.extend_from_slice(&spec.pus);
            if let Some(l3) = spec.l3 {
                let Some(domain) = l3_domains.get_mut(l3) else {
                    return invalid(format!("core {id} names missing L3 domain {l3}"));
                };
                domain.cpus.extend_from_slice(&spec.pus);
            }
            pus.extend(spec.pus.iter().map(|&os_index| Pu { os_index, core: id, allowed: true }));
            cores.push(super::Core {
                id,
                package: spec.package,
                numa_node: spec.numa_node,
                l3: spec.l3,
                pus: spec.pus,
                kind: spec.kind,
                l1d_bytes: spec.l1d_bytes,
                l2_bytes: spec.l2_bytes,
            });
        }
        pus.sort_by_key(|p| p.os_index);
        if let Some(w) = pus.windows(2).find(|w| w[0].os_index == w[1].os_index) {
            return invalid(format!("cpu {} is in two cores", w[0].os_index));
        }
        for &cpu in &self.disallowed {
            match pus.binary_search_by_key(&cpu, |p| p.os_index) {
                Ok(i) => pus[i].allowed = false,
                Err(_) => return invalid(format!("disallowed cpu {cpu} does not exist")),
            }
        }
        for list in numa_nodes.iter_mut().map(|n| &mut n.cpus).chain(l3_domains.iter_mut().map(|d| &mut d.cpus)) {
            list.sort_unstable();
        }
        if let Some(d) = &self.distances {
            if let Some(n) = d.nodes().iter().find(|n| numa_nodes.binary_search_by_key(n, |x| &x.os_index).is_err()) {
                return invalid(format!("distance matrix names missing NUMA node {n}"));
            }
        }
        Ok(Topology {
            source: self.source,
            packages,
            numa_nodes,
            l3_domains,
            cores,
            pus,
            distances: self.distances,
            fallback_reason: None,
        })
    }
}

/// A symmetric machine shape, for tests and for planning machines you do not have.
///
/// CPUs are numbered the way Linux numbers them on Intel: the first PU of every core first,
/// then the second PUs, and so on (`cpu = core_index + sibling * total_cores`). Cores are
/// numbered package by package, node by node, L3 by L3. NUMA node `k` of package `p` has OS
/// index `p * numa_per_package + k`. Distances are 10 (local), 12 (same package), 20 (other
/// package). Core kinds are [`CoreKind::Unknown`], as on a homogeneous machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyntheticTopology {
    packages: usize,
    numa_per_package: usize,
    l3_per_numa: usize,
    cores_per_l3: usize,
    pus_per_core: usize,
    memory_per_node: Option<u64>,
    l3_size: Option<u64>,
}

impl Default for SyntheticTopology {
    fn default() -> Self {
        Self::new()
    }
}

impl SyntheticTopology {
    /// One package, one node, one L3, one core, one PU; change with the setters.
    pub fn new() -> Self {
        Self {
            packages: 1,
            numa_per_package: 1,
            l3_per_numa: 1,
            cores_per_l3: 1,
            pus_per_core: 1,
            memory_per_node: None,
            l3_size: None,
        }
    }

    /// Number of packages.
    #[must_use]
    pub fn packages(mut self, n: usize) -> Self {
        self.packages = n;
        self
    }

    /// NUMA nodes in each package.
    #[must_use]
    pub fn numa_per_package(mut self, n: usize) -> Self {
        self.numa_per_package = n;
        self
    }

    /// L3 domains in each NUMA node.
    #[must_use]
    pub fn l3_per_numa(mut self, n: usize) -> Self {
        self.l3_per_numa = n;
        self
    }

    /// Cores sharing each L3.
    #[must_use]
    pub fn cores_per_l3(mut self, n: usize) -> Self {
        self.cores_per_l3 = n;
        self
    }

    /// Hardware threads per core (2 for SMT).
    #[must_use]
    pub fn pus_per_core(mut self, n: usize) -> Self {
        self.pus_per_core = n;
        self
    }

    /// Local memory of each NUMA node, in bytes (unknown by default).
    #[must_use]
    pub fn memory_per_node(mut self, bytes: u64) -> Self {
        self.memory_per_node = Some(bytes);
        self
    }

    /// Size of each L3, in bytes (unknown by default).
    #[must_use]
    pub fn l3_size(mut self, bytes: u64) -> Self {
        self.l3_size = Some(bytes);
        self
    }

    /// The shape as a [`TopologyBuilder`], to make it asymmetric before building (add cores,
    /// disallow CPUs, and so on).
    ///
    /// # Errors
    /// [`TopologyError::Invalid`] when a count is zero or the machine would exceed 2^20 PUs.
    pub fn to_builder(&self) -> Result<TopologyBuilder, TopologyError> {
        let counts = [self.packages, self.numa_per_package, self.l3_per_numa, self.cores_per_l3, self.pus_per_core];
        if counts.contains(&0) {
            return Err(TopologyError::Invalid(format!("synthetic shape has a zero count: {self:?}")));
        }
        let total_pus = counts
            .iter()
            .try_fold(1usize, |acc, &n| acc.checked_mul(n))
            .filter(|&n| n <= MAX_SYNTHETIC_PUS)
            .ok_or_else(|| TopologyError::Invalid("synthetic shape is too large".into()))?;
        let total_cores = total_pus / self.pus_per_core;

        let mut b = TopologyBuilder::new();
        let mut core_index = 0;
        let mut pus = Vec::with_capacity(self.pus_per_core);
        for p in 0..self.packages {
            let package = b.add_package(Some(p));
            for n in 0..self.numa_per_package {
                let node = p * self.numa_per_package + n;
                b.add_numa_node(node, self.memory_per_node);
                for _ in 0..self.l3_per_numa {
                    let l3 = b.add_l3(self.l3_size);
                    for _ in 0..self.cores_per_l3 {
                        pus.clear();
                        pus.extend((0..self.pus_per_core).map(|s| core_index + s * total_cores));
                        b.add_core(package, node, Some(l3), CoreKind::Unknown, &pus);
                        core_index += 1;
                    }
                }
            }
        }
        let nodes = self.packages * self.numa_per_package;
        let values = (0..nodes * nodes)
            .map(|i| {
                let (from, to) = (i / nodes, i % nodes);
                if from == to {
                    10
                } else if from / self.numa_per_package == to / self.numa_per_package {
                    12
                } else {
                    20
                }
            })
            .collect();
        b.set_distances(NumaDistances::new((0..nodes).collect(), values)?);
        Ok(b)
    }

    /// Builds the topology.
    ///
    /// # Errors
    /// As [`to_builder`](Self::to_builder).
    pub fn build(&self) -> Result<Topology, TopologyError> {
        self.to_builder()?.build()
    }
}
