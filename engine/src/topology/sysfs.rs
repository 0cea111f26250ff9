//! Reading the machine from a Linux sysfs tree (`/sys/devices/system/{cpu,node}`).
//!
//! Owns the no-hwloc path of [`Topology::detect`](super::Topology::detect) and
//! [`Topology::from_sysfs`](super::Topology::from_sysfs). Only the cpu directory listing is
//! required; every other file is optional and its absence degrades the model (one NUMA node,
//! unknown L3, one core per CPU, unknown core kinds) instead of failing. Nothing here panics on
//! what the files contain. Only online CPUs are modelled.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use super::{parse_cpu_list, CoreKind, NumaDistances, Topology, TopologyBuilder, TopologyError, TopologySource};

/// How the CPUs of one core were recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum CoreKey {
    /// By `thread_siblings_list` (its lowest online CPU): the reliable way.
    Siblings(usize),
    /// By `core_id` within the package, when the siblings list is missing.
    CoreId(usize),
    /// Nothing known: the CPU is a core of its own.
    Alone(usize),
}

/// What one CPU's sysfs directory says.
struct CpuInfo {
    cpu: usize,
    package: usize,
    core: CoreKey,
    l3: Option<(Vec<usize>, Option<u64>)>,
    l1d_bytes: Option<u64>,
    l2_bytes: Option<u64>,
    capacity: Option<u64>,
}

/// One core, ready for the builder.
struct CoreParts {
    package: usize,
    node: usize,
    l3: Option<usize>,
    pus: Vec<usize>,
    kind: CoreKind,
    l1d_bytes: Option<u64>,
    l2_bytes: Option<u64>,
}

fn read_trim(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_owned())
}

fn read_num(path: &Path) -> Option<u64> {
    read_trim(path)?.parse().ok()
}

fn read_list(path: &Path) -> Option<Vec<usize>> {
    parse_cpu_list(&read_trim(path)?).ok()
}

/// Parses a sysfs size such as `32768K`, `1M` or `512` into bytes.
pub(super) fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => text.split_at(i),
        None => (text, ""),
    };
    let n: u64 = digits.parse().ok()?;
    let mult = match unit.trim() {
        "" | "B" => 1,
        "K" | "KB" | "kB" => 1 << 10,
        "M" | "MB" => 1 << 20,
        "G" | "GB" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// Numbered entries `prefix<N>` of a directory, ascending; empty if it cannot be read.
fn numbered_entries(dir: &Path, prefix: &str) -> Vec<usize> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<usize> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.strip_prefix(prefix)?.parse().ok())
        .collect();
    out.sort_unstable();
    out
}

/// The first `cache/index*` directory of a CPU at `level` that is not an instruction cache
/// (a missing `type` file counts as data or unified).
fn cache_dir(cpu_path: &Path, level: u64) -> Option<std::path::PathBuf> {
    let cache = cpu_path.join("cache");
    numbered_entries(&cache, "index").into_iter().map(|i| cache.join(format!("index{i}"))).find(|dir| {
        read_num(&dir.join("level")) == Some(level) && read_trim(&dir.join("type")).as_deref() != Some("Instruction")
    })
}

/// The size in bytes of a CPU's data or unified cache at `level`, if listed.
fn read_cache_size(cpu_path: &Path, level: u64) -> Option<u64> {
    read_trim(&cache_dir(cpu_path, level)?.join("size")).and_then(|s| parse_size(&s))
}

/// The level-3 cache of a CPU: (CPUs sharing it, size).
fn read_l3(cpu_path: &Path, online: &[usize]) -> Option<(Vec<usize>, Option<u64>)> {
    let dir = cache_dir(cpu_path, 3)?;
    let mut shared = read_list(&dir.join("shared_cpu_list"))?;
    shared.retain(|c| online.binary_search(c).is_ok());
    let size = read_trim(&dir.join("size")).and_then(|s| parse_size(&s));
    Some((shared, size))
}

fn read_cpu(cpu_dir: &Path, cpu: usize, online: &[usize]) -> CpuInfo {
    let path = cpu_dir.join(format!("cpu{cpu}"));
    let topo = path.join("topology");
    // physical_package_id is -1 on some platforms: treat anything unparsable as package 0.
    let package = read_num(&topo.join("physical_package_id")).map_or(0, |p| p as usize);
    let core = match read_list(&topo.join("thread_siblings_list")) {
        Some(siblings) if siblings.contains(&cpu) => {
            CoreKey::Siblings(siblings.into_iter().find(|c| online.binary_search(c).is_ok()).unwrap_or(cpu))
        }
        _ => match read_num(&topo.join("core_id")) {
            Some(id) => CoreKey::CoreId(id as usize),
            None => CoreKey::Alone(cpu),
        },
    };
    CpuInfo {
        cpu,
        package,
        core,
        l3: read_l3(&path, online),
        l1d_bytes: read_cache_size(&path, 1),
        l2_bytes: read_cache_size(&path, 2),
        capacity: read_num(&path.join("cpu_capacity")),
    }
}

/// Core kinds: Intel hybrid PMU lists first, then ARM `cpu_capacity`, else unknown.
fn kinds(root: &Path, infos: &[CpuInfo]) -> BTreeMap<usize, CoreKind> {
    let devices = root.join("sys/devices");
    let atom = read_list(&devices.join("cpu_atom/cpus"));
    let big = read_list(&devices.join("cpu_core/cpus"));
    let max_capacity = infos.iter().filter_map(|i| i.capacity).max();
    let uniform = infos.iter().all(|i| i.capacity == max_capacity);
    infos
        .iter()
        .map(|i| {
            let kind = if let (Some(atom), Some(big)) = (&atom, &big) {
                if atom.contains(&i.cpu) {
                    CoreKind::Efficiency
                } else if big.contains(&i.cpu) {
                    CoreKind::Performance
                } else {
                    CoreKind::Unknown
                }
            } else if uniform {
                CoreKind::Unknown
            } else if i.capacity == max_capacity {
                CoreKind::Performance
            } else {
                CoreKind::Efficiency
            };
            (i.cpu, kind)
        })
        .collect()
}

/// NUMA nodes: (os index, cpus, memory) and the distance matrix, if readable.
type Nodes = (Vec<(usize, Vec<usize>, Option<u64>)>, Option<NumaDistances>);

fn read_nodes(root: &Path, online: &[usize]) -> Nodes {
    let node_dir = root.join("sys/devices/system/node");
    let mut nodes = Vec::new();
    let mut rows = Vec::new();
    for n in numbered_entries(&node_dir, "node") {
        let dir = node_dir.join(format!("node{n}"));
        let mut cpus = read_list(&dir.join("cpulist")).unwrap_or_default();
        cpus.retain(|c| online.binary_search(c).is_ok());
        let memory = read_trim(&dir.join("meminfo")).and_then(|text| {
            let line = text.lines().find(|l| l.contains("MemTotal:"))?;
            let value = line.split("MemTotal:").nth(1)?;
            parse_size(&value.replace(' ', ""))
        });
        let row: Option<Vec<u64>> =
            read_trim(&dir.join("distance")).and_then(|t| t.split_whitespace().map(|v| v.parse().ok()).collect());
        rows.push(row);
        nodes.push((n, cpus, memory));
    }
    let ids: Vec<usize> = nodes.iter().map(|n| n.0).collect();
    let values: Option<Vec<u64>> = rows
        .into_iter()
        .map(|r| r.filter(|r| r.len() == ids.len()))
        .collect::<Option<Vec<_>>>()
        .map(|rows| rows.concat());
    let distances = values.filter(|v| !v.is_empty()).and_then(|v| NumaDistances::new(ids, v).ok());
    (nodes, distances)
}

/// Reads the tree under `root`; see [`Topology::from_sysfs`](super::Topology::from_sysfs).
pub(super) fn read(root: &Path) -> Result<Topology, TopologyError> {
    let cpu_dir = root.join("sys/devices/system/cpu");
    fs::read_dir(&cpu_dir).map_err(|source| TopologyError::Io { path: cpu_dir.clone(), source })?;
    let mut online = numbered_entries(&cpu_dir, "cpu");
    if let Some(listed) = read_list(&cpu_dir.join("online")) {
        online.retain(|c| listed.binary_search(c).is_ok());
    }
    if online.is_empty() {
        return Err(TopologyError::NoCpus(format!("no online cpuN directory under {}", cpu_dir.display())));
    }
    let infos: Vec<CpuInfo> = online.iter().map(|&cpu| read_cpu(&cpu_dir, cpu, &online)).collect();
    let kinds = kinds(root, &infos);

    let (mut nodes, mut distances) = read_nodes(root, &online);
    if nodes.iter().all(|n| n.1.is_empty()) {
        // No usable node directory: one node holding every CPU, no distances.
        nodes = vec![(0, online.clone(), nodes.first().and_then(|n| n.2))];
        distances = None;
    }
    let node_of = |cpu: usize| {
        nodes.iter().find(|n| n.1.contains(&cpu)).or_else(|| nodes.iter().find(|n| !n.1.is_empty())).map_or(0, |n| n.0)
    };

    // L3 domains, keyed by their CPU list, ordered by lowest CPU.
    let mut l3_keys: Vec<(Vec<usize>, Option<u64>)> = Vec::new();
    for info in &infos {
        if let Some((shared, size)) = &info.l3 {
            if !l3_keys.iter().any(|(k, _)| k == shared) {
                l3_keys.push((shared.clone(), *size));
            }
        }
    }
    l3_keys.sort_by(|a, b| a.0.cmp(&b.0));
    let l3_of = |info: &CpuInfo| {
        let shared = &info.l3.as_ref()?.0;
        l3_keys.iter().position(|(k, _)| k == shared)
    };

    // Group CPUs into cores, remembering each core's first CPU's info.
    let mut groups: BTreeMap<(usize, CoreKey), Vec<&CpuInfo>> = BTreeMap::new();
    for info in &infos {
        groups.entry((info.package, info.core)).or_default().push(info);
    }
    let mut package_ids: Vec<usize> = infos.iter().map(|i| i.package).collect();
    package_ids.sort_unstable();
    package_ids.dedup();
    let mut cores: Vec<CoreParts> = groups
        .into_values()
        .filter_map(|members| {
            let first = members.first()?;
            Some(CoreParts {
                package: package_ids.binary_search(&first.package).ok()?,
                node: node_of(first.cpu),
                l3: l3_of(first),
                pus: members.iter().map(|m| m.cpu).collect(),
                kind: kinds.get(&first.cpu).copied().unwrap_or_default(),
                l1d_bytes: first.l1d_bytes,
                l2_bytes: first.l2_bytes,
            })
        })
        .collect();
    cores.sort_by_key(|c| {
        let l3 = c.l3.unwrap_or(usize::MAX);
        (c.package, c.node, l3, c.pus.first().copied())
    });

    let mut b = TopologyBuilder::new();
    b.set_source(TopologySource::Sysfs);
    for &p in &package_ids {
        b.add_package(Some(p));
    }
    for (os, _, memory) in &nodes {
        b.add_numa_node(*os, *memory);
    }
    for (_, size) in &l3_keys {
        b.add_l3(*size);
    }
    for c in &cores {
        let core = b.add_core(c.package, c.node, c.l3, c.kind, &c.pus);
        b.set_core_caches(core, c.l1d_bytes, c.l2_bytes);
    }
    if let Some(d) = distances {
        b.set_distances(d);
    }
    if root == Path::new("/") {
        if let Some(allowed) = super::os::process_affinity() {
            let denied: Vec<usize> = online.iter().copied().filter(|c| allowed.binary_search(c).is_err()).collect();
            b.disallow(&denied);
        }
    }
    b.build()
}
