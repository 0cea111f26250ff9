//! Tests for placement: a big symmetric synthetic machine, an asymmetric hand-built one, and
//! pinning on the live machine.

use super::*;
use crate::topology::{CoreKind, SyntheticTopology, Topology, TopologyBuilder};

/// 2 packages x 2 NUMA nodes x 1 L3 x 8 cores x 2 PUs = 64 PUs.
fn big() -> Topology {
    SyntheticTopology::new()
        .packages(2)
        .numa_per_package(2)
        .l3_per_numa(1)
        .cores_per_l3(8)
        .pus_per_core(2)
        .build()
        .unwrap()
}

fn cpus(p: &PlacementPlan) -> Vec<usize> {
    p.iter().map(|s| s.cpu).collect()
}

fn assert_indexed(p: &PlacementPlan) {
    for (i, s) in p.iter().enumerate() {
        assert_eq!(s.shard, i);
    }
}

#[test]
fn per_core_uses_every_core_once_in_numa_order() {
    let topo = big();
    let p = plan(&topo, &PlacementRequest::default()).unwrap();
    assert_eq!(p.len(), 32);
    assert_indexed(&p);
    assert_eq!(cpus(&p), (0..32).collect::<Vec<_>>(), "no SMT sibling");
    let mut cores: Vec<usize> = p.iter().map(|s| s.core).collect();
    cores.dedup();
    assert_eq!(cores.len(), 32);
    let numa: Vec<usize> = p.iter().map(|s| s.numa_node).collect();
    let expected: Vec<usize> = (0..4).flat_map(|n| [n; 8]).collect();
    assert_eq!(numa, expected);
    assert_eq!(p.shards[31].package, 1);
    assert_eq!(p.shards[9].l3, Some(1));
}

#[test]
fn reserving_a_cpu_drops_its_core() {
    let topo = big();
    let p = plan(&topo, &PlacementRequest::per_core().reserve(&[0])).unwrap();
    assert_eq!(p.len(), 31);
    assert!(!p.cpus().contains(&0) && !p.cpus().contains(&32));
    assert!(p.iter().all(|s| s.core != 0));
    assert_eq!(p.shards[0].cpu, 1);
    // Reserving a cpu the machine lacks changes nothing.
    let q = plan(&topo, &PlacementRequest::per_core().reserve(&[500])).unwrap();
    assert_eq!(q.len(), 32);
}

#[test]
fn shards_take_the_front_of_the_per_core_order() {
    let topo = big();
    let p = plan(&topo, &PlacementRequest::shards(4)).unwrap();
    assert_eq!(cpus(&p), vec![0, 1, 2, 3]);
    assert!(p.iter().all(|s| s.numa_node == 0));
}

#[test]
fn too_many_shards_needs_oversubscription() {
    let topo = big();
    let err = plan(&topo, &PlacementRequest::shards(40)).unwrap_err();
    assert_eq!(err, PlacementError::TooManyShards { requested: 40, usable: 32 });
    assert!(err.to_string().contains("oversubscribe = true"));

    let p = plan(&topo, &PlacementRequest::shards(40).oversubscribe(true)).unwrap();
    assert_eq!(p.len(), 40);
    assert_indexed(&p);
    assert_eq!(cpus(&p)[32..], [32, 33, 34, 35, 36, 37, 38, 39], "SMT siblings next");
    assert_eq!(p.shards[32].core, 0);

    let p = plan(&topo, &PlacementRequest::shards(100).oversubscribe(true)).unwrap();
    assert_eq!(p.len(), 100);
    assert_eq!(p.shards[64].cpu, p.shards[0].cpu, "wraps after every usable PU");
    assert_eq!(p.shards[99].cpu, p.shards[35].cpu);
}

#[test]
fn explicit_cpu_lists_are_validated() {
    let topo = big();
    let p = plan(&topo, &PlacementRequest::cpus(&[5, 37])).unwrap();
    assert_eq!(cpus(&p), vec![5, 37]);
    assert_eq!((p.shards[0].core, p.shards[1].core), (5, 5));
    assert_indexed(&p);

    let err = |req: PlacementRequest| plan(&topo, &req).unwrap_err();
    assert_eq!(err(PlacementRequest::cpus(&[999])), PlacementError::UnknownCpu(999));
    assert_eq!(err(PlacementRequest::cpus(&[])), PlacementError::Empty);
    assert_eq!(err(PlacementRequest::shards(0)), PlacementError::Empty);
    assert_eq!(err(PlacementRequest::cpus(&[1, 2, 1])), PlacementError::DuplicateCpu(1));
    assert_eq!(err(PlacementRequest::cpus(&[3, 0]).reserve(&[0])), PlacementError::ReservedCpu(0));
    let p = plan(&topo, &PlacementRequest::cpus(&[1, 1]).oversubscribe(true)).unwrap();
    assert_eq!(cpus(&p), vec![1, 1]);
}

#[test]
fn everything_reserved_is_empty() {
    let topo = SyntheticTopology::new().cores_per_l3(2).build().unwrap();
    let req = PlacementRequest::per_core().reserve(&[0, 1]);
    assert_eq!(plan(&topo, &req), Err(PlacementError::Empty));
    let req = PlacementRequest::shards(3).reserve(&[0, 1]).oversubscribe(true);
    assert_eq!(plan(&topo, &req), Err(PlacementError::Empty));
}

#[test]
fn plan_prints_a_table() {
    let p = plan(&big(), &PlacementRequest::shards(3)).unwrap();
    let text = p.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert!(lines[0].contains("shard") && lines[0].contains("numa") && lines[0].contains("l3"));
    assert!(lines[4].starts_with("    2 |"), "{text}");
}

/// Node 0: six SMT cores (cpu c and c+8), cpu 2 disallowed (core 2 runs on its sibling 10),
/// core 5 wholly disallowed. Node 1: two efficiency cores (cpus 14, 15) added *before* two
/// performance cores without SMT (cpus 6, 7), all sharing one L3.
fn asymmetric() -> Topology {
    let mut b = TopologyBuilder::new();
    let pkg = b.add_package(Some(0));
    b.add_numa_node(0, None).add_numa_node(1, None);
    let l3a = b.add_l3(Some(8 << 20));
    let l3b = b.add_l3(None);
    for c in 0..6 {
        b.add_core(pkg, 0, Some(l3a), CoreKind::Performance, &[c, c + 8]);
    }
    b.add_core(pkg, 1, Some(l3b), CoreKind::Efficiency, &[14]);
    b.add_core(pkg, 1, Some(l3b), CoreKind::Efficiency, &[15]);
    b.add_core(pkg, 1, Some(l3b), CoreKind::Performance, &[6]);
    b.add_core(pkg, 1, Some(l3b), CoreKind::Performance, &[7]);
    b.disallow(&[2, 5, 13]);
    b.build().unwrap()
}

#[test]
fn asymmetric_machine_ordering() {
    let topo = asymmetric();
    let p = plan(&topo, &PlacementRequest::per_core()).unwrap();
    assert_eq!(cpus(&p), vec![0, 1, 10, 3, 4, 6, 7, 14, 15]);
    let numa: Vec<usize> = p.iter().map(|s| s.numa_node).collect();
    assert_eq!(numa, vec![0, 0, 0, 0, 0, 1, 1, 1, 1]);
    let kinds: Vec<CoreKind> = p.iter().map(|s| topo.cores()[s.core].kind).collect();
    assert_eq!(kinds[5..], [CoreKind::Performance, CoreKind::Performance, CoreKind::Efficiency, CoreKind::Efficiency]);
    assert_eq!(p.shards[2].core, 2, "core 2 runs on its sibling");
    assert!(p.iter().all(|s| s.core != 5), "wholly disallowed core skipped");

    let p = plan(&topo, &PlacementRequest::shards(12).oversubscribe(true)).unwrap();
    assert_eq!(cpus(&p)[9..], [8, 9, 11]);
    let p = plan(&topo, &PlacementRequest::shards(14).oversubscribe(true)).unwrap();
    assert_eq!(p.shards[13].cpu, 0, "13 usable PUs, then wrap");

    let err = |req: PlacementRequest| plan(&topo, &req).unwrap_err();
    assert_eq!(err(PlacementRequest::cpus(&[2])), PlacementError::CpuNotAllowed(2));
    assert_eq!(err(PlacementRequest::cpus(&[13])), PlacementError::CpuNotAllowed(13));
    assert_eq!(err(PlacementRequest::shards(10)), PlacementError::TooManyShards { requested: 10, usable: 9 });
    assert_eq!(pin_current_thread(&topo, 5), Err(BindError::CpuNotAllowed(5)));
    assert_eq!(pin_current_thread(&topo, 99), Err(BindError::UnknownCpu(99)));
}

#[test]
fn live_machine_plans_and_pins() {
    let topo = Topology::detect().unwrap();
    let p = plan(&topo, &PlacementRequest::default()).unwrap();
    assert!(!p.is_empty());
    for shard in p.shards.iter().copied() {
        let topo = topo.clone();
        let (cpu, memory) = std::thread::spawn(move || {
            pin_current_thread(&topo, shard.cpu).unwrap();
            // Yield so the scheduler migrates us if it has not yet.
            std::thread::yield_now();
            let memory = bind_current_thread_memory(shard.numa_node);
            (current_cpu(), memory)
        })
        .join()
        .unwrap();
        assert_eq!(cpu, Some(shard.cpu), "shard {} pinned", shard.shard);
        match memory {
            Ok(MemoryBinding::Bound { node }) => assert_eq!(node, shard.numa_node),
            Ok(MemoryBinding::Unsupported { reason }) => assert!(!reason.is_empty()),
            Err(e) => panic!("memory binding failed on the live machine: {e}"),
        }
    }
    let bogus = bind_current_thread_memory(100_000);
    if cfg!(not(feature = "hwloc")) {
        let reason = "built without the `hwloc` feature".to_owned();
        assert_eq!(bogus, Ok(MemoryBinding::Unsupported { reason }));
    } else if topo.source() == crate::topology::TopologySource::Hwloc {
        assert_eq!(bogus, Err(BindError::UnknownNumaNode(100_000)));
    }
}

/// Plans on the hwloc XML fixtures (`tests/fixtures/`): real machine shapes we do not have.
#[cfg(feature = "hwloc")]
mod fixtures {
    use super::*;
    use crate::topology::fixture_tests::load;

    /// No two shards on one core.
    fn one_per_core(p: &PlacementPlan) -> bool {
        let mut cores: Vec<usize> = p.iter().map(|s| s.core).collect();
        cores.sort_unstable();
        cores.windows(2).all(|w| w[0] != w[1])
    }

    #[test]
    fn two_sockets_per_core_fills_node_0_then_node_1() {
        let topo = load("2s32c-smt.xml");
        let p = plan(&topo, &PlacementRequest::per_core()).unwrap();
        assert_eq!(p.len(), 64);
        assert_indexed(&p);
        assert!(one_per_core(&p), "no shard on an SMT sibling of another");
        assert_eq!(cpus(&p), (0..64).collect::<Vec<_>>(), "first PUs only; siblings are 64..128");
        let numa: Vec<usize> = p.iter().map(|s| s.numa_node).collect();
        assert_eq!(numa, [[0; 32], [1; 32]].concat());
        assert!(p.iter().all(|s| s.package == s.numa_node && s.l3 == Some(s.numa_node)));
    }

    #[test]
    fn two_sockets_shards_reserve_and_oversubscribe() {
        let topo = load("2s32c-smt.xml");
        let p = plan(&topo, &PlacementRequest::shards(8)).unwrap();
        assert_eq!(cpus(&p), (0..8).collect::<Vec<_>>());
        assert!(p.iter().all(|s| s.numa_node == 0));
        let p = plan(&topo, &PlacementRequest::shards(40)).unwrap();
        assert_eq!(p.iter().filter(|s| s.numa_node == 1).count(), 8);

        // Reserving cpu 0 and the sibling of core 5 (cpu 69) takes both cores out.
        let p = plan(&topo, &PlacementRequest::per_core().reserve(&[0, 69])).unwrap();
        assert_eq!(p.len(), 62);
        assert_eq!(p.shards[0].cpu, 1);
        assert!(p.iter().all(|s| s.core != 0 && s.core != 5));

        let err = plan(&topo, &PlacementRequest::shards(70)).unwrap_err();
        assert_eq!(err, PlacementError::TooManyShards { requested: 70, usable: 64 });
        let p = plan(&topo, &PlacementRequest::shards(70).oversubscribe(true)).unwrap();
        assert_eq!(cpus(&p)[64..], [64, 65, 66, 67, 68, 69], "then the siblings, in core order");
        assert_eq!(p.shards[64].core, p.shards[0].core);
    }

    #[test]
    fn epyc_fills_l3_domains_in_order() {
        let topo = load("epyc-1s8l3.xml");
        let p = plan(&topo, &PlacementRequest::per_core()).unwrap();
        assert_eq!(p.len(), 63, "core 63 is not allowed");
        assert!(one_per_core(&p));
        let l3: Vec<usize> = p.iter().filter_map(|s| s.l3).collect();
        assert_eq!(l3.len(), 63);
        assert!(l3.windows(2).all(|w| w[0] <= w[1]), "L3 domains filled one after another: {l3:?}");
        for d in 0..7 {
            assert_eq!(l3.iter().filter(|&&x| x == d).count(), 8, "domain {d} full");
        }
        assert!(p.iter().all(|s| s.numa_node == s.l3.unwrap_or(0) / 2));

        let p = plan(&topo, &PlacementRequest::shards(12)).unwrap();
        let l3: Vec<Option<usize>> = p.iter().map(|s| s.l3).collect();
        assert_eq!(l3, [vec![Some(0); 8], vec![Some(1); 4]].concat());

        // 126 usable PUs: 63 first PUs, then 63 siblings, then wrap around.
        let p = plan(&topo, &PlacementRequest::shards(127).oversubscribe(true)).unwrap();
        assert_eq!(p.shards[63].cpu, 64);
        assert_eq!(p.shards[125].cpu, 126);
        assert_eq!(p.shards[126].cpu, p.shards[0].cpu);
        assert!(!p.cpus().contains(&63) && !p.cpus().contains(&127));
        assert_eq!(plan(&topo, &PlacementRequest::cpus(&[127])), Err(PlacementError::CpuNotAllowed(127)));
    }

    #[test]
    fn laptop_puts_performance_cores_first() {
        let topo = load("laptop-4p4e.xml");
        let p = plan(&topo, &PlacementRequest::per_core()).unwrap();
        assert_eq!(cpus(&p), vec![0, 2, 4, 6, 8, 9, 10, 11]);
        let kinds: Vec<CoreKind> = p.iter().map(|s| topo.cores()[s.core].kind).collect();
        use CoreKind::{Efficiency as E, Performance as P};
        assert_eq!(kinds, [P, P, P, P, E, E, E, E]);
        let p = plan(&topo, &PlacementRequest::shards(4)).unwrap();
        assert!(p.iter().all(|s| topo.cores()[s.core].kind == P));

        // Oversubscribed: the P cores' siblings after every core.
        let p = plan(&topo, &PlacementRequest::shards(12).oversubscribe(true)).unwrap();
        assert_eq!(cpus(&p)[8..], [1, 3, 5, 7]);
        // Reserving cpu 0 takes core 0 out; its sibling comes first among the rest.
        let p = plan(&topo, &PlacementRequest::shards(8).reserve(&[0]).oversubscribe(true)).unwrap();
        assert_eq!(cpus(&p), vec![2, 4, 6, 8, 9, 10, 11, 1]);
    }

    #[test]
    fn xml_topologies_are_never_bound() {
        let topo = load("laptop-4p4e.xml");
        assert_eq!(pin_current_thread(&topo, 0), Err(BindError::NotThisMachine(0)));
    }
}
