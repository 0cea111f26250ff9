//! Tests of the hwloc XML import against the committed fixtures (`tests/fixtures/`, see its
//! README): counts, structure, cache sizes, core kinds, distances, allowed PUs, and the typed
//! errors for missing and malformed files. Compiled with the `hwloc` feature only.

use std::path::{Path, PathBuf};

use super::*;

/// The path of a fixture in the workspace's `tests/fixtures/`.
pub(crate) fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures").join(name)
}

/// Loads a fixture, which must import.
pub(crate) fn load(name: &str) -> Topology {
    Topology::from_hwloc_xml(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

#[test]
fn two_sockets_of_32_smt_cores() {
    let topo = load("2s32c-smt.xml");
    assert_eq!(topo.source(), TopologySource::Xml);
    assert_eq!((topo.packages().len(), topo.numa_nodes().len(), topo.l3_domains().len()), (2, 2, 2));
    assert_eq!((topo.cores().len(), topo.pus().len()), (64, 128));
    assert!(topo.has_smt());
    assert!(topo.pus().iter().all(|p| p.allowed), "the XML allows every PU");
    for core in topo.cores() {
        let first = core.pus[0];
        assert_eq!(core.pus, vec![first, first + 64], "Linux numbering: siblings 64 apart");
        assert_eq!(core.package, first / 32);
        assert_eq!(core.numa_node, first / 32);
        assert_eq!(core.l3, Some(first / 32));
        assert_eq!(core.kind, CoreKind::Unknown);
        assert_eq!((core.l1d_bytes, core.l2_bytes), (Some(48 * KIB), Some(2 * MIB)));
    }
    assert_eq!(topo.packages()[1].cores, (32..64).collect::<Vec<_>>());
    assert_eq!(topo.l3_domains()[0].size_bytes, Some(48 * MIB));
    assert_eq!(topo.l3_domains()[1].cpus.len(), 64);
    assert_eq!(topo.numa_nodes()[1].memory_bytes, Some(64 * GIB));
    assert_eq!(topo.numa_nodes()[0].cpus, (0..32).chain(64..96).collect::<Vec<_>>());
    let d = topo.distances().expect("the fixture has a NUMA latency matrix");
    assert_eq!(d.nodes(), [0, 1]);
    assert_eq!((d.get(0, 0), d.get(0, 1), d.get(1, 0), d.get(1, 1)), (Some(10), Some(21), Some(21), Some(10)));
}

#[test]
fn epyc_with_eight_l3_domains() {
    let topo = load("epyc-1s8l3.xml");
    assert_eq!((topo.packages().len(), topo.numa_nodes().len(), topo.l3_domains().len()), (1, 4, 8));
    assert_eq!((topo.cores().len(), topo.pus().len()), (64, 128));
    for (i, l3) in topo.l3_domains().iter().enumerate() {
        assert_eq!(l3.size_bytes, Some(32 * MIB));
        let cores: Vec<usize> = topo.cores().iter().filter(|c| c.l3 == Some(i)).map(|c| c.id).collect();
        assert_eq!(cores, (i * 8..i * 8 + 8).collect::<Vec<_>>(), "L3 {i} holds 8 consecutive cores");
    }
    for core in topo.cores() {
        assert_eq!(core.numa_node, core.id / 16, "two CCDs per NUMA node (NPS4)");
        assert_eq!((core.l1d_bytes, core.l2_bytes), (Some(32 * KIB), Some(512 * KIB)));
    }
    let d = topo.distances().unwrap();
    assert_eq!((d.get(2, 2), d.get(0, 3)), (Some(10), Some(12)));
    let denied: Vec<usize> = topo.pus().iter().filter(|p| !p.allowed).map(|p| p.os_index).collect();
    assert_eq!(denied, vec![63, 127], "core 63 is outside the XML's allowed cpuset");
    assert_eq!(topo.allowed_cpus().len(), 126);
}

#[test]
fn hybrid_laptop_kinds_and_caches() {
    let topo = load("laptop-4p4e.xml");
    assert_eq!((topo.packages().len(), topo.numa_nodes().len(), topo.l3_domains().len()), (1, 1, 1));
    assert_eq!((topo.cores().len(), topo.pus().len()), (8, 12));
    assert_eq!(topo.l3_domains()[0].size_bytes, Some(12 * MIB));
    let kinds: Vec<CoreKind> = topo.cores().iter().map(|c| c.kind).collect();
    use CoreKind::{Efficiency as E, Performance as P};
    assert_eq!(kinds, [P, P, P, P, E, E, E, E]);
    let pus: Vec<Vec<usize>> = topo.cores().iter().map(|c| c.pus.clone()).collect();
    assert_eq!(pus, [vec![0, 1], vec![2, 3], vec![4, 5], vec![6, 7], vec![8], vec![9], vec![10], vec![11]]);
    let caches: Vec<(Option<u64>, Option<u64>)> = topo.cores().iter().map(|c| (c.l1d_bytes, c.l2_bytes)).collect();
    assert_eq!(caches[0], (Some(48 * KIB), Some(1280 * KIB)));
    assert_eq!(caches[7], (Some(32 * KIB), Some(2 * MIB)), "E cores share a 2 MiB L2");
    assert!(topo.distances().map_or(true, |d| d.nodes().len() == 1), "one node: no matrix, or 1x1");
}

/// A file in the temp dir with `contents`, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, contents: &[u8]) -> Self {
        let path = std::env::temp_dir().join(format!("nexus-xml-{name}-{}", std::process::id()));
        std::fs::write(&path, contents).unwrap();
        Self(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn missing_and_malformed_files_are_typed_errors() {
    let err = Topology::from_hwloc_xml(&fixture("no-such-machine.xml")).unwrap_err();
    assert!(matches!(err, TopologyError::Io { .. }), "{err}");
    let dir = Topology::from_hwloc_xml(&fixture("")).unwrap_err();
    assert!(matches!(dir, TopologyError::Io { .. } | TopologyError::Xml { .. }), "{dir}");

    let cases: &[(&str, &[u8])] = &[
        ("empty", b""),
        ("text", b"this is not xml\n"),
        ("binary", &[0xff, 0xfe, 0x00, 0x01]),
        ("nul", b"<topology>\0</topology>"),
        ("other-xml", b"<?xml version=\"1.0\"?>\n<svg></svg>\n"),
        ("truncated", b"<?xml version=\"1.0\"?>\n<topology version=\"2.0\">\n  <object type=\"Machine\""),
        ("no-pu", b"<?xml version=\"1.0\"?>\n<topology version=\"2.0\">\n</topology>\n"),
    ];
    for (name, contents) in cases {
        let file = TempFile::new(name, contents);
        let err = Topology::from_hwloc_xml(&file.0).unwrap_err();
        eprintln!("{name}: {err}");
        assert!(matches!(err, TopologyError::Xml { .. } | TopologyError::NoCpus(_)), "{name}: {err}");
        assert!(err.to_string().contains(&*file.0.to_string_lossy()) || matches!(err, TopologyError::NoCpus(_)));
    }
}
