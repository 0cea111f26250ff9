//! Reading the live machine with hwloc (via `hwlocality`); compiled with the `hwloc` feature.
//!
//! Owns the conversion from hwloc's object tree to the plain [`Topology`] model. The hwloc
//! topology lives only for the duration of [`read`]: nothing here keeps an hwloc handle. hwloc
//! bitmaps are turned into sorted `Vec<usize>` straight away (through `iter_set`, which cannot
//! panic), so no lookup later can hit hwloc's index limits. The topology is loaded with
//! `INCLUDE_DISALLOWED`, so PUs outside the cgroup appear with `allowed == false`; a PU is
//! allowed when both hwloc's allowed cpuset and the process affinity mask contain it.

use std::collections::BTreeSet;

use hwlocality::cpu::cpuset::CpuSet;
use hwlocality::object::attributes::ObjectAttributes;
use hwlocality::object::types::ObjectType;
use hwlocality::object::TopologyObject;
use hwlocality::topology::builder::BuildFlags;

use super::{CoreKind, NumaDistances, Topology, TopologyBuilder, TopologyError, TopologySource};

/// Loads the live machine's hwloc topology, disallowed PUs included.
fn load() -> Result<hwlocality::Topology, TopologyError> {
    let hwloc = |e: &dyn std::fmt::Display| TopologyError::Hwloc(e.to_string());
    hwlocality::Topology::builder()
        .with_flags(BuildFlags::INCLUDE_DISALLOWED)
        .map_err(|e| hwloc(&e))?
        .build()
        .map_err(|e| hwloc(&e))
}

/// The indices set in an hwloc CPU set, ascending.
fn cpus_of(set: &CpuSet) -> Vec<usize> {
    set.iter_set().map(usize::from).collect()
}

/// The CPUs of an object (empty for objects without a cpuset).
fn object_cpus(obj: &TopologyObject) -> Vec<usize> {
    obj.cpuset().map(|s| cpus_of(&s)).unwrap_or_default()
}

/// Reads the live machine through hwloc.
pub(super) fn read() -> Result<Topology, TopologyError> {
    let hw = load()?;

    // Core kinds: hwloc lists kinds from most power-efficient to most performant. With two
    // or more kinds, the last is Performance and the others Efficiency; otherwise unknown.
    let mut kind_of: Vec<(Vec<usize>, CoreKind)> = Vec::new();
    if let Ok(kinds) = hw.cpu_kinds() {
        let count = kinds.len();
        if count >= 2 {
            for (i, kind) in kinds.enumerate() {
                let k = if i + 1 == count { CoreKind::Performance } else { CoreKind::Efficiency };
                kind_of.push((cpus_of(&kind.cpuset), k));
            }
        }
    }
    let kind = |cpu: usize| {
        kind_of.iter().find(|(cpus, _)| cpus.binary_search(&cpu).is_ok()).map_or(CoreKind::Unknown, |(_, k)| *k)
    };

    let mut b = TopologyBuilder::new();
    b.set_source(TopologySource::Hwloc);

    let packages: Vec<&TopologyObject> = hw.objects_with_type(ObjectType::Package).collect();
    for p in &packages {
        b.add_package(p.os_index());
    }
    if packages.is_empty() {
        b.add_package(None);
    }
    let package_of = |obj: &TopologyObject| {
        obj.first_ancestor_with_type(ObjectType::Package)
            .and_then(|p| packages.iter().position(|q| std::ptr::eq(*q, p)))
            .unwrap_or(0)
    };

    let mut nodes: Vec<(usize, Vec<usize>)> = Vec::new();
    for n in hw.objects_with_type(ObjectType::NUMANode) {
        let Some(os) = n.os_index() else { continue };
        let memory = match n.attributes() {
            Some(ObjectAttributes::NUMANode(attr)) => attr.local_memory().map(u64::from),
            _ => None,
        };
        b.add_numa_node(os, memory);
        nodes.push((os, object_cpus(n)));
    }
    if nodes.is_empty() {
        b.add_numa_node(0, None);
        nodes.push((0, Vec::new()));
    }
    let node_of = |cpu: usize| {
        nodes
            .iter()
            .find(|(_, cpus)| cpus.binary_search(&cpu).is_ok())
            .or_else(|| nodes.iter().find(|(_, cpus)| !cpus.is_empty()))
            .or(nodes.first())
            .map_or(0, |(os, _)| *os)
    };

    let mut l3s: Vec<Vec<usize>> = Vec::new();
    for c in hw.objects_with_type(ObjectType::L3Cache) {
        let size = match c.attributes() {
            Some(ObjectAttributes::Cache(attr)) => attr.size().map(u64::from),
            _ => None,
        };
        b.add_l3(size);
        l3s.push(object_cpus(c));
    }
    let l3_of = |cpu: usize| l3s.iter().position(|cpus| cpus.binary_search(&cpu).is_ok());

    let mut pus: Vec<usize> = hw.objects_with_type(ObjectType::PU).filter_map(TopologyObject::os_index).collect();
    pus.sort_unstable();
    if pus.is_empty() {
        return Err(TopologyError::NoCpus("hwloc reports no PU".into()));
    }
    let mut covered: BTreeSet<usize> = BTreeSet::new();
    let add_core = |b: &mut TopologyBuilder, package: usize, cpus: &[usize]| {
        if let Some(&first) = cpus.first() {
            b.add_core(package, node_of(first), l3_of(first), kind(first), cpus);
        }
    };
    for core in hw.objects_with_type(ObjectType::Core) {
        let mut cpus = object_cpus(core);
        cpus.retain(|c| pus.binary_search(c).is_ok() && !covered.contains(c));
        covered.extend(cpus.iter().copied());
        add_core(&mut b, package_of(core), &cpus);
    }
    // PUs hwloc placed under no Core object become single-PU cores.
    for pu in hw.objects_with_type(ObjectType::PU) {
        if let Some(os) = pu.os_index().filter(|os| !covered.contains(os)) {
            add_core(&mut b, package_of(pu), &[os]);
        }
    }

    if let Ok(matrices) = hw.distances_with_type(None, ObjectType::NUMANode) {
        if let Some(m) = matrices.first() {
            let ids: Option<Vec<usize>> = m.objects().map(|o| o?.os_index()).collect();
            if let Some(d) = ids.and_then(|ids| NumaDistances::new(ids, m.distances().to_vec()).ok()) {
                b.set_distances(d);
            }
        }
    }

    let allowed = cpus_of(&hw.allowed_cpuset());
    let affinity = super::os::process_affinity();
    let denied: Vec<usize> = pus
        .iter()
        .copied()
        .filter(|c| allowed.binary_search(c).is_err() || affinity.as_ref().is_some_and(|a| a.binary_search(c).is_err()))
        .collect();
    b.disallow(&denied);
    b.build()
}
