//! Tests for the topology model: CPU lists, the builders, the sysfs reader against fake trees,
//! and detection on the live machine.

use std::fs;
use std::path::{Path, PathBuf};

use super::sysfs::parse_size;
use super::*;

fn assert_send_sync_clone<T: Send + Sync + Clone>() {}

#[test]
fn topology_is_send_sync_clone() {
    assert_send_sync_clone::<Topology>();
}

#[test]
fn cpu_list_parsing() {
    assert_eq!(parse_cpu_list("0-3,8,10-11").unwrap(), vec![0, 1, 2, 3, 8, 10, 11]);
    assert_eq!(parse_cpu_list("").unwrap(), Vec::<usize>::new());
    assert_eq!(parse_cpu_list("5\n").unwrap(), vec![5]);
    assert_eq!(parse_cpu_list(" 3, 1-2 ,1").unwrap(), vec![1, 2, 3]);
    assert!(matches!(parse_cpu_list("3-1"), Err(TopologyError::BadCpuList { .. })));
    assert!(parse_cpu_list("x").is_err());
    assert!(parse_cpu_list("0-").is_err());
    assert!(parse_cpu_list("0-99999999").is_err());
}

#[test]
fn cpu_list_formatting_round_trips() {
    assert_eq!(format_cpu_list(&[8, 0, 1, 2, 3, 10, 11, 3]), "0-3,8,10-11");
    assert_eq!(format_cpu_list(&[]), "");
    assert_eq!(format_cpu_list(&[7]), "7");
    let list = vec![0, 2, 3, 4, 9, 10];
    assert_eq!(parse_cpu_list(&format_cpu_list(&list)).unwrap(), list);
}

#[test]
fn sysfs_sizes() {
    assert_eq!(parse_size("32768K"), Some(32 << 20));
    assert_eq!(parse_size("1M"), Some(1 << 20));
    assert_eq!(parse_size("512"), Some(512));
    assert_eq!(parse_size("5073100 kB"), Some(5_073_100 << 10));
    assert_eq!(parse_size("12Q"), None);
    assert_eq!(parse_size(""), None);
}

#[test]
fn synthetic_numbers_cpus_like_linux() {
    let topo = SyntheticTopology::new()
        .packages(2)
        .numa_per_package(2)
        .l3_per_numa(1)
        .cores_per_l3(8)
        .pus_per_core(2)
        .memory_per_node(1 << 30)
        .l3_size(32 << 20)
        .build()
        .unwrap();
    assert_eq!(topo.source(), TopologySource::Synthetic);
    assert_eq!(topo.pus().len(), 64);
    assert_eq!(topo.cores().len(), 32);
    assert_eq!(topo.packages().len(), 2);
    assert_eq!(topo.numa_nodes().len(), 4);
    assert_eq!(topo.l3_domains().len(), 4);
    assert!(topo.has_smt());
    assert_eq!(topo.core_of(32).unwrap().pus, vec![0, 32]);
    assert_eq!(topo.core_of(63).unwrap().id, 31);
    let core9 = &topo.cores()[9];
    assert_eq!((core9.package, core9.numa_node, core9.l3), (0, 1, Some(1)));
    assert_eq!(topo.cores()[16].package, 1);
    assert_eq!(topo.numa_nodes()[1].cpus.len(), 16);
    assert_eq!(topo.numa_nodes()[1].memory_bytes, Some(1 << 30));
    assert_eq!(topo.l3_domains()[3].size_bytes, Some(32 << 20));
    assert_eq!(topo.packages()[1].cores, (16..32).collect::<Vec<_>>());
    let d = topo.distances().unwrap();
    assert_eq!((d.get(0, 0), d.get(0, 1), d.get(0, 2)), (Some(10), Some(12), Some(20)));
    assert_eq!(d.get(0, 9), None);
    assert!(topo.pus().iter().all(|p| p.allowed));
    assert_eq!(topo.pu(64), None);
    assert!(topo.to_string().contains("64 PUs"));
}

#[test]
fn synthetic_rejects_zero_counts() {
    let err = SyntheticTopology::new().cores_per_l3(0).build().unwrap_err();
    assert!(matches!(err, TopologyError::Invalid(_)));
    let huge = SyntheticTopology::new().packages(usize::MAX).pus_per_core(2).build();
    assert!(huge.is_err());
}

#[test]
fn synthetic_can_be_made_asymmetric() {
    let mut b = SyntheticTopology::new().cores_per_l3(2).to_builder().unwrap();
    b.add_core(0, 0, None, CoreKind::Efficiency, &[10]);
    b.disallow(&[1]);
    let topo = b.build().unwrap();
    assert_eq!(topo.cores().len(), 3);
    assert_eq!(topo.core_of(10).unwrap().kind, CoreKind::Efficiency);
    assert_eq!(topo.allowed_cpus(), vec![0, 10]);
}

#[test]
fn builder_checks_references() {
    let bad = |f: &dyn Fn(&mut TopologyBuilder)| {
        let mut b = Topology::builder();
        b.add_package(None);
        b.add_numa_node(0, None);
        f(&mut b);
        b.build()
    };
    assert!(matches!(bad(&|_| ()), Err(TopologyError::NoCpus(_))));
    assert!(bad(&|b| {
        b.add_core(0, 0, None, CoreKind::Unknown, &[]);
    })
    .is_err());
    assert!(bad(&|b| {
        b.add_core(1, 0, None, CoreKind::Unknown, &[0]);
    })
    .is_err());
    assert!(bad(&|b| {
        b.add_core(0, 3, None, CoreKind::Unknown, &[0]);
    })
    .is_err());
    assert!(bad(&|b| {
        b.add_core(0, 0, Some(0), CoreKind::Unknown, &[0]);
    })
    .is_err());
    assert!(bad(&|b| {
        b.add_core(0, 0, None, CoreKind::Unknown, &[0, 1]);
        b.add_core(0, 0, None, CoreKind::Unknown, &[1]);
    })
    .is_err());
    assert!(bad(&|b| {
        b.add_core(0, 0, None, CoreKind::Unknown, &[0]);
        b.disallow(&[5]);
    })
    .is_err());
    assert!(bad(&|b| {
        b.add_core(0, 0, None, CoreKind::Unknown, &[0]);
        b.add_numa_node(0, None);
    })
    .is_err());
    assert!(bad(&|b| {
        b.add_core(0, 0, None, CoreKind::Unknown, &[0]);
        b.set_core_caches(1, Some(1), None);
    })
    .is_err());
    let mut b = Topology::builder();
    b.add_package(None);
    b.add_numa_node(0, None);
    let core = b.add_core(0, 0, None, CoreKind::Unknown, &[0]);
    b.set_core_caches(core, Some(32 << 10), Some(1 << 20));
    let topo = b.build().unwrap();
    assert_eq!((topo.cores()[0].l1d_bytes, topo.cores()[0].l2_bytes), (Some(32 << 10), Some(1 << 20)));
    assert!(NumaDistances::new(vec![0, 1], vec![10, 20, 20]).is_err());
    assert!(NumaDistances::new(vec![0, 0], vec![10; 4]).is_err());
}

/// A fake sysfs tree in the temp dir, removed on drop.
struct FakeRoot(PathBuf);

impl FakeRoot {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "nexus-topo-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn write(&self, rel: &str, text: &str) {
        let path = self.0.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for FakeRoot {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

const CPU: &str = "sys/devices/system/cpu";
const NODE: &str = "sys/devices/system/node";

/// One package, two NUMA nodes, four SMT cores (cpu i and i+4), one L3 per node, cpu8 offline.
fn two_node_tree() -> FakeRoot {
    let root = FakeRoot::new("two-node");
    root.write(&format!("{CPU}/online"), "0-7\n");
    for cpu in 0..8 {
        let core = cpu % 4;
        let dir = format!("{CPU}/cpu{cpu}");
        root.write(&format!("{dir}/topology/core_id"), &format!("{core}\n"));
        root.write(&format!("{dir}/topology/physical_package_id"), "0\n");
        let siblings = format!("{core},{}\n", core + 4);
        root.write(&format!("{dir}/topology/thread_siblings_list"), &siblings);
        root.write(&format!("{dir}/cache/index0/level"), "1\n");
        root.write(&format!("{dir}/cache/index0/shared_cpu_list"), &siblings);
        root.write(&format!("{dir}/cache/index0/size"), "48K\n");
        let l3 = if core < 2 { "0-1,4-5\n" } else { "2-3,6-7\n" };
        root.write(&format!("{dir}/cache/index3/level"), "3\n");
        root.write(&format!("{dir}/cache/index3/shared_cpu_list"), l3);
        root.write(&format!("{dir}/cache/index3/size"), "16384K\n");
    }
    root.write(&format!("{CPU}/cpu8/topology/core_id"), "8\n");
    root.write(&format!("{NODE}/node0/cpulist"), "0-1,4-5\n");
    root.write(&format!("{NODE}/node1/cpulist"), "2-3,6-7\n");
    root.write(&format!("{NODE}/node0/distance"), "10 21\n");
    root.write(&format!("{NODE}/node1/distance"), "21 10\n");
    root.write(&format!("{NODE}/node0/meminfo"), "Node 0 MemTotal:        1024 kB\nNode 0 MemFree:  12 kB\n");
    root
}

#[test]
fn sysfs_reads_a_fake_tree() {
    let root = two_node_tree();
    let topo = Topology::from_sysfs(root.path()).unwrap();
    assert_eq!(topo.source(), TopologySource::Sysfs);
    assert_eq!(topo.pus().len(), 8, "offline cpu8 is left out");
    assert_eq!(topo.cores().len(), 4);
    let pus: Vec<Vec<usize>> = topo.cores().iter().map(|c| c.pus.clone()).collect();
    assert_eq!(pus, vec![vec![0, 4], vec![1, 5], vec![2, 6], vec![3, 7]]);
    let nodes: Vec<usize> = topo.cores().iter().map(|c| c.numa_node).collect();
    assert_eq!(nodes, vec![0, 0, 1, 1]);
    let l3: Vec<Option<usize>> = topo.cores().iter().map(|c| c.l3).collect();
    assert_eq!(l3, vec![Some(0), Some(0), Some(1), Some(1)]);
    assert_eq!(topo.l3_domains()[0].size_bytes, Some(16 << 20));
    assert_eq!(topo.l3_domains()[1].cpus, vec![2, 3, 6, 7]);
    assert_eq!(topo.numa_nodes()[0].memory_bytes, Some(1 << 20));
    assert_eq!(topo.numa_nodes()[1].memory_bytes, None);
    assert_eq!(topo.distances().unwrap().get(1, 0), Some(21));
    assert_eq!(topo.packages().len(), 1);
    assert!(topo.pus().iter().all(|p| p.allowed), "fake roots allow every cpu");
    assert!(topo.cores().iter().all(|c| c.kind == CoreKind::Unknown));
    assert!(
        topo.cores().iter().all(|c| c.l1d_bytes == Some(48 << 10) && c.l2_bytes.is_none()),
        "L1d read, no L2 listed"
    );
}

#[test]
fn sysfs_degrades_on_a_bare_tree() {
    let root = FakeRoot::new("bare");
    fs::create_dir_all(root.path().join(format!("{CPU}/cpu0"))).unwrap();
    fs::create_dir_all(root.path().join(format!("{CPU}/cpu1"))).unwrap();
    fs::create_dir_all(root.path().join(format!("{CPU}/cpufreq"))).unwrap();
    root.write(&format!("{CPU}/online"), "garbage");
    let topo = Topology::from_sysfs(root.path()).unwrap();
    assert_eq!(topo.pus().len(), 2);
    assert_eq!(topo.cores().len(), 2);
    assert_eq!(topo.numa_nodes().len(), 1);
    assert_eq!(topo.numa_nodes()[0].cpus, vec![0, 1]);
    assert!(topo.l3_domains().is_empty());
    assert!(topo.distances().is_none());
    assert_eq!(topo.cores()[1].l3, None);
}

#[test]
fn sysfs_reads_hybrid_kinds_and_bad_values() {
    let root = FakeRoot::new("hybrid");
    for cpu in 0..4 {
        let dir = format!("{CPU}/cpu{cpu}/topology");
        root.write(&format!("{dir}/core_id"), &format!("{cpu}\n"));
        root.write(&format!("{dir}/physical_package_id"), "-1\n");
        root.write(&format!("{dir}/thread_siblings_list"), "not a list");
    }
    root.write("sys/devices/cpu_core/cpus", "0-1\n");
    root.write("sys/devices/cpu_atom/cpus", "2-3\n");
    root.write(&format!("{NODE}/node0/cpulist"), "0-3\n");
    root.write(&format!("{NODE}/node0/distance"), "10 20\n");
    let topo = Topology::from_sysfs(root.path()).unwrap();
    let kinds: Vec<CoreKind> = topo.cores().iter().map(|c| c.kind).collect();
    use CoreKind::{Efficiency as E, Performance as P};
    assert_eq!(kinds, vec![P, P, E, E]);
    assert!(topo.distances().is_none(), "a row of the wrong length is dropped");
    assert_eq!(topo.packages().len(), 1);
}

#[test]
fn sysfs_reads_arm_capacities() {
    let root = FakeRoot::new("arm");
    for (cpu, cap) in [(0, "512"), (1, "512"), (2, "1024"), (3, "1024")] {
        root.write(&format!("{CPU}/cpu{cpu}/cpu_capacity"), cap);
    }
    let topo = Topology::from_sysfs(root.path()).unwrap();
    assert_eq!(topo.core_of(0).unwrap().kind, CoreKind::Efficiency);
    assert_eq!(topo.core_of(3).unwrap().kind, CoreKind::Performance);
}

#[test]
fn sysfs_without_cpu_dir_is_an_error() {
    let root = FakeRoot::new("empty");
    let err = Topology::from_sysfs(root.path()).unwrap_err();
    assert!(matches!(err, TopologyError::Io { .. }), "{err}");
    fs::create_dir_all(root.path().join(CPU)).unwrap();
    let err = Topology::from_sysfs(root.path()).unwrap_err();
    assert!(matches!(err, TopologyError::NoCpus(_)), "{err}");
}

#[test]
fn live_machine_detects() {
    let topo = Topology::detect().unwrap();
    assert!(!topo.pus().is_empty());
    assert!(!topo.allowed_cpus().is_empty());
    assert!(!topo.cores().is_empty() && !topo.numa_nodes().is_empty());
    #[cfg(feature = "hwloc")]
    assert!(topo.source() == TopologySource::Hwloc || topo.fallback_reason().is_some(), "{topo}");
    let sysfs = Topology::from_sysfs(Path::new("/")).unwrap();
    assert_eq!(sysfs.pus().len(), topo.pus().len(), "{sysfs} vs {topo}");
    assert_eq!(sysfs.allowed_cpus(), topo.allowed_cpus());
    for pu in topo.pus() {
        assert!(topo.core_of(pu.os_index).unwrap().pus.contains(&pu.os_index));
    }
}
