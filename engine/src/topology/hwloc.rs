//! Reading a machine with hwloc (via `hwlocality`); compiled with the `hwloc` feature.
//!
//! Owns the conversion from hwloc's object tree to the plain [`Topology`] model, and its two
//! inputs: the live machine ([`read_live`]) and an hwloc XML export ([`read_xml`]). Both go
//! through the one [`convert`]; they differ only in the source they report and in who decides
//! which PUs are allowed. The hwloc topology lives only for the duration of a read: nothing here
//! keeps an hwloc handle, so nothing here can bind (an XML topology is never "this system"; the
//! binding helpers in `placement::bind` load their own live topology and refuse XML models).
//! hwloc bitmaps are turned into sorted `Vec<usize>` straight away (through `iter_set`, which
//! cannot panic), so no lookup later can hit hwloc's index limits. Topologies are loaded with
//! `INCLUDE_DISALLOWED`, so disallowed PUs appear with `allowed == false`: on the live machine a
//! PU is allowed when both hwloc's allowed cpuset and the process affinity mask contain it; in
//! an XML import, when the file's allowed cpuset contains it.

use std::collections::BTreeSet;
use std::path::Path;

use hwlocality::cpu::cpuset::CpuSet;
use hwlocality::object::attributes::ObjectAttributes;
use hwlocality::object::types::ObjectType;
use hwlocality::object::TopologyObject;
use hwlocality::topology::builder::BuildFlags;

use super::{CoreKind, NumaDistances, Topology, TopologyBuilder, TopologyError, TopologySource};

/// Largest hwloc XML file imported, so a wrong path (a disk image, say) is refused before it
/// is read whole. Real exports are well under a megabyte per thousand PUs.
const MAX_XML_BYTES: u64 = 64 << 20;

/// Reads the live machine through hwloc, disallowed PUs included.
pub(super) fn read_live() -> Result<Topology, TopologyError> {
    let hwloc = |e: &dyn std::fmt::Display| TopologyError::Hwloc(e.to_string());
    let hw = hwlocality::Topology::builder()
        .with_flags(BuildFlags::INCLUDE_DISALLOWED)
        .map_err(|e| hwloc(&e))?
        .build()
        .map_err(|e| hwloc(&e))?;
    convert(&hw, TopologySource::Hwloc, super::os::process_affinity().as_deref())
}

/// Imports an hwloc XML export; see [`Topology::from_hwloc_xml`](super::Topology::from_hwloc_xml).
///
/// The file is read here rather than handed to hwloc by name, so a missing or unreadable file
/// is a typed I/O error, and hwloc only ever sees text that is plausibly a topology: hwlocality
/// treats some hwloc errno values on XML input as unreachable, so obviously wrong input is
/// refused before it gets there.
pub(super) fn read_xml(path: &Path) -> Result<Topology, TopologyError> {
    let io = |source: std::io::Error| TopologyError::Io { path: path.to_owned(), source };
    let bad = |reason: String| TopologyError::Xml { path: path.to_owned(), reason };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > MAX_XML_BYTES {
        return Err(bad(format!("{len} bytes is over the {MAX_XML_BYTES}-byte limit")));
    }
    let bytes = std::fs::read(path).map_err(io)?;
    let text = String::from_utf8(bytes).map_err(|_| bad("not UTF-8 text".into()))?;
    if text.contains('\0') {
        return Err(bad("contains a NUL byte".into()));
    }
    if !text.trim_start().starts_with('<') || !text.contains("<topology") {
        return Err(bad("no <topology> element (lstopo --of xml writes one)".into()));
    }
    let hw = hwlocality::Topology::builder()
        .with_flags(BuildFlags::INCLUDE_DISALLOWED)
        .map_err(|e| TopologyError::Hwloc(e.to_string()))?
        .from_xml(&text)
        .map_err(|e| bad(e.to_string()))?
        .build()
        .map_err(|e| bad(format!("hwloc rejected it ({e})")))?;
    convert(&hw, TopologySource::Xml, None)
}

/// The indices set in an hwloc CPU set, ascending.
fn cpus_of(set: &CpuSet) -> Vec<usize> {
    set.iter_set().map(usize::from).collect()
}

/// The CPUs of an object (empty for objects without a cpuset).
fn object_cpus(obj: &TopologyObject) -> Vec<usize> {
    obj.cpuset().map(|s| cpus_of(&s)).unwrap_or_default()
}

/// The size of the cache of type `ty` above `obj` (the core's own L1d or L2), if hwloc has one.
fn cache_above(obj: &TopologyObject, ty: ObjectType) -> Option<u64> {
    match obj.first_ancestor_with_type(ty)?.attributes() {
        Some(ObjectAttributes::Cache(attr)) => attr.size().map(u64::from),
        _ => None,
    }
}

/// Turns a loaded hwloc topology into the model. `affinity`, when given, further restricts the
/// allowed PUs (the live machine's process mask); hwloc's allowed cpuset always does.
fn convert(
    hw: &hwlocality::Topology,
    source: TopologySource,
    affinity: Option<&[usize]>,
) -> Result<Topology, TopologyError> {
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
    b.set_source(source);

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
    let add_core = |b: &mut TopologyBuilder, obj: &TopologyObject, cpus: &[usize]| {
        if let Some(&first) = cpus.first() {
            let core = b.add_core(package_of(obj), node_of(first), l3_of(first), kind(first), cpus);
            b.set_core_caches(core, cache_above(obj, ObjectType::L1Cache), cache_above(obj, ObjectType::L2Cache));
        }
    };
    for core in hw.objects_with_type(ObjectType::Core) {
        let mut cpus = object_cpus(core);
        cpus.retain(|c| pus.binary_search(c).is_ok() && !covered.contains(c));
        covered.extend(cpus.iter().copied());
        add_core(&mut b, core, &cpus);
    }
    // PUs hwloc placed under no Core object become single-PU cores.
    for pu in hw.objects_with_type(ObjectType::PU) {
        if let Some(os) = pu.os_index().filter(|os| !covered.contains(os)) {
            add_core(&mut b, pu, &[os]);
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
    let denied: Vec<usize> = pus
        .iter()
        .copied()
        .filter(|c| allowed.binary_search(c).is_err() || affinity.is_some_and(|a| a.binary_search(c).is_err()))
        .collect();
    b.disallow(&denied);
    b.build()
}
