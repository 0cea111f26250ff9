//! `nexus topo`: the machine as the engine sees it, and where a config would put the shards.
//!
//! `nexus topo [--config FILE] [--xml FILE] [--json] [--c2c [--round-trips N]]`
//!
//! 1. Read the config exactly as `nexus run` does (`run::load_config`) and turn its
//!    `[placement]` into a request with the engine's own `PlacementConfig::to_request`.
//! 2. Read the topology: the live machine, or with `--xml` an hwloc XML export of any machine
//!    (`Topology::from_hwloc_xml`; nothing is ever bound against it).
//! 3. Plan with `placement::plan` (pure) and print, on stdout: the tree (package > NUMA node >
//!    L3 > core > PU, with cache sizes, core kinds and PUs the process may not use), the NUMA
//!    distance matrix when there is one, and the plan table. `--json` prints the same as one
//!    JSON document instead.
//! 4. With `--c2c`, measure the core-to-core latency of the planned CPUs (the probe `nexus c2c`
//!    uses, pinned, so this machine only: refused with `--xml`), reorder them with
//!    `placement::order_by_latency` so ring neighbours sit on the fastest pairs, and print the
//!    ring cost before and after and the `cpus = [...]` line to paste into `[placement]`.
//!
//! The tree groups cores by (package, NUMA node, L3): an L3 that spans two nodes appears under
//! both. Bad input (config, XML, a plan the machine cannot hold, `--c2c` with `--xml`) exits 2
//! with one `nexus: ...` line carrying a hint; only reading the live machine or measuring can
//! fail with 1.

use crate::c2c::{measure_matrix, probe_params};
use crate::run::load_config;
use crate::Failure;
use nexus_engine::config::EngineConfig;
use nexus_engine::placement::{self, cycle_cost, order_by_latency, Placement, PlacementPlan, PlacementRequest};
use nexus_engine::topology::{format_cpu_list, CoreKind, Topology, TopologySource};
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

/// Arguments of `nexus topo`.
#[derive(clap::Args, Debug)]
pub struct TopoArgs {
    /// TOML config whose [placement] is planned (default: as `nexus run`, configs/default.toml).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Read this hwloc XML export (`lstopo --of xml FILE`) instead of the live machine.
    #[arg(long, value_name = "FILE")]
    xml: Option<PathBuf>,
    /// Print one JSON document (topology, distances, plan) instead of text.
    #[arg(long)]
    json: bool,
    /// Measure the planned CPUs' core-to-core latency and order the shards around the ring by
    /// it (this machine only; both probe threads spin, so run it on an idle machine).
    #[arg(long)]
    c2c: bool,
    /// With --c2c: round trips timed per pair.
    #[arg(long, value_name = "N", default_value_t = 5_000, requires = "c2c")]
    round_trips: u64,
}

/// What `--c2c` found.
struct Ordering {
    /// The plan's CPUs, in plan order.
    before: Vec<usize>,
    /// The same CPUs, reordered.
    after: Vec<usize>,
    /// Ring cost (sum of one-way estimates between neighbours, ns) before and after; `None`
    /// when fewer than two CPUs left nothing to measure.
    cost_ns: Option<(f64, f64)>,
}

/// Runs `nexus topo`.
pub fn topo(args: TopoArgs) -> Result<(), Failure> {
    if args.c2c && args.xml.is_some() {
        return Err(Failure::usage(
            "topo: --c2c measures the machine it runs on and cannot measure an --xml one; \
             hint: drop --xml, or run `nexus topo --c2c` on the machine the XML describes",
        ));
    }
    if args.round_trips == 0 {
        return Err(Failure::usage("topo: --round-trips must be at least 1; hint: the default is 5000"));
    }
    let config = load_config(args.config.as_ref())?;
    let topology = match &args.xml {
        Some(path) => Topology::from_hwloc_xml(path).map_err(|e| {
            Failure::usage(format!("topo: --xml: {e}; hint: give a file written by `lstopo --of xml FILE` (hwloc 2.x)"))
        })?,
        None => Topology::detect()
            .map_err(|e| Failure::runtime(format!("topo: cannot read this machine: {e}; hint: try --xml FILE")))?,
    };
    let request = config.placement.to_request();
    let plan = placement::plan(&topology, &request).map_err(|e| {
        Failure::usage(format!(
            "topo: the [placement] of {} does not fit this machine: {e}; hint: change shards, cpus or \
             reserve_cpus; `nexus topo` with the default config shows the machine's cores",
            config.source.origin()
        ))
    })?;
    let ordering = if args.c2c { Some(measure_and_order(&topology, &plan, args.round_trips)?) } else { None };

    let text = if args.json {
        let doc = document(&topology, args.xml.as_ref(), &config, &request, &plan, ordering.as_ref());
        serde_json::to_string_pretty(&doc).map_err(|e| Failure::runtime(format!("topo: cannot encode JSON: {e}")))?
            + "\n"
    } else {
        render(&topology, args.xml.as_ref(), &config, &request, &plan, ordering.as_ref())
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Failure::runtime(format!("topo: cannot write the output: {e}; hint: check stdout")))
}

/// Measures the plan's CPUs and orders them (see the module docs, step 4).
fn measure_and_order(topology: &Topology, plan: &PlacementPlan, round_trips: u64) -> Result<Ordering, Failure> {
    let before = plan.cpus();
    let mut distinct = before.clone();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() != before.len() {
        return Err(Failure::usage(
            "topo: --c2c orders one shard per CPU, but this plan puts several shards on one CPU; \
             hint: set oversubscribe = false or ask for fewer shards",
        ));
    }
    if before.len() < 2 {
        return Ok(Ordering { after: before.clone(), before, cost_ns: None });
    }
    let matrix = measure_matrix("topo --c2c", &before, topology, &probe_params(round_trips))?;
    let latency = |a: usize, b: usize| {
        let at = |cpu| matrix.cpus.iter().position(|&c| c == cpu);
        match (at(a), at(b)) {
            (Some(i), Some(j)) => matrix.one_way_ns[i][j],
            _ => f64::NAN,
        }
    };
    let after = order_by_latency(&before, latency);
    let cost_ns = Some((cycle_cost(&before, latency), cycle_cost(&after, latency)));
    Ok(Ordering { before, after, cost_ns })
}

/// `48 MiB`, `1.25 MiB`, `512 KiB`, `64 GiB`, `100 B`.
fn size(bytes: u64) -> String {
    const UNITS: [(&str, u64); 4] = [("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, scale) in UNITS {
        if bytes >= scale {
            let value = format!("{:.2}", bytes as f64 / scale as f64);
            let value = value.trim_end_matches('0').trim_end_matches('.');
            return format!("{value} {unit}");
        }
    }
    format!("{bytes} B")
}

/// Where the topology came from, for the header.
fn origin(topology: &Topology, xml: Option<&PathBuf>) -> String {
    match (topology.source(), xml) {
        (TopologySource::Xml, Some(path)) => format!("hwloc XML {}", path.display()),
        (TopologySource::Hwloc, _) => "this machine (hwloc)".to_owned(),
        (TopologySource::Sysfs, _) => "this machine (/sys)".to_owned(),
        (source, _) => format!("{source:?}"),
    }
}

/// The request in words, e.g. `per-core, reserve_cpus [0], oversubscribe off`.
fn describe(request: &PlacementRequest) -> String {
    let placement = match &request.placement {
        Placement::PerCore => "one shard per core".to_owned(),
        Placement::Shards(n) => format!("{n} shards"),
        Placement::Cpus(cpus) => format!("cpus {cpus:?}"),
    };
    let reserved = if request.reserved_cpus.is_empty() {
        String::new()
    } else {
        format!(", reserve_cpus {}", format_cpu_list(&request.reserved_cpus))
    };
    let over = if request.allow_oversubscribe { ", oversubscribe on" } else { "" };
    format!("{placement}{reserved}{over}")
}

fn kind_name(kind: CoreKind) -> &'static str {
    match kind {
        CoreKind::Performance => "performance",
        CoreKind::Efficiency => "efficiency",
        CoreKind::Unknown => "unknown",
    }
}

/// The text report (see the module docs, step 3).
fn render(
    topology: &Topology,
    xml: Option<&PathBuf>,
    config: &EngineConfig,
    request: &PlacementRequest,
    plan: &PlacementPlan,
    ordering: Option<&Ordering>,
) -> String {
    let mut out = String::new();
    let allowed = topology.allowed_cpus().len();
    let _ = writeln!(
        out,
        "nexus topo: {}: {} package(s), {} NUMA node(s), {} L3, {} cores, {} PUs ({allowed} allowed)",
        origin(topology, xml),
        topology.packages().len(),
        topology.numa_nodes().len(),
        topology.l3_domains().len(),
        topology.cores().len(),
        topology.pus().len(),
    );
    if let Some(reason) = topology.fallback_reason() {
        let _ = writeln!(out, "note: {reason}");
    }
    out.push('\n');
    tree(&mut out, topology);
    if let Some(d) = topology.distances().filter(|d| d.nodes().len() > 1) {
        let _ = writeln!(out, "\nNUMA distances (relative, 10 = local)");
        let _ = write!(out, "{:>6}", "node");
        for n in d.nodes() {
            let _ = write!(out, " {n:>5}");
        }
        out.push('\n');
        for &from in d.nodes() {
            let _ = write!(out, "{from:>6}");
            for &to in d.nodes() {
                let v = d.get(from, to).map_or_else(|| "-".to_owned(), |v| v.to_string());
                let _ = write!(out, " {v:>5}");
            }
            out.push('\n');
        }
    }
    let _ = writeln!(
        out,
        "\nplacement plan: {} shard(s), {} (config {})",
        plan.len(),
        describe(request),
        config.source.origin()
    );
    out.push_str(&plan.to_string());
    if let Some(o) = ordering {
        out.push('\n');
        match o.cost_ns {
            None => {
                let _ = writeln!(out, "c2c: {} CPU: nothing to measure or reorder", o.before.len());
            }
            Some((before, after)) => {
                let _ = writeln!(
                    out,
                    "c2c: ring cost (sum of one-way latency between neighbouring shards): {before:.1} ns in plan order, {after:.1} ns reordered"
                );
                if o.before.len() <= 3 {
                    let _ = writeln!(
                        out,
                        "c2c: {} CPUs form the same ring in any order: nothing to reorder",
                        o.before.len()
                    );
                } else if o.before == o.after {
                    let _ = writeln!(out, "c2c: the plan order is already the best found");
                }
            }
        }
        let list: Vec<String> = o.after.iter().map(usize::to_string).collect();
        let _ = writeln!(out, "paste into [placement] (replaces shards):\ncpus = [{}]", list.join(", "));
    }
    out
}

/// The tree: package > NUMA node > L3 > core > PUs.
fn tree(out: &mut String, topology: &Topology) {
    let cores = topology.cores();
    for package in topology.packages() {
        let os = package.os_index.map_or_else(String::new, |i| format!(" (P#{i})"));
        let _ = writeln!(out, "package {}{os}", package.id);
        let mut nodes: Vec<usize> = package.cores.iter().filter_map(|&c| cores.get(c)).map(|c| c.numa_node).collect();
        nodes.sort_unstable();
        nodes.dedup();
        for node in nodes {
            let memory = topology
                .numa_node(node)
                .and_then(|n| n.memory_bytes)
                .map_or_else(String::new, |b| format!(" ({})", size(b)));
            let _ = writeln!(out, "  NUMA node {node}{memory}");
            let in_node: Vec<&nexus_engine::topology::Core> =
                package.cores.iter().filter_map(|&c| cores.get(c)).filter(|c| c.numa_node == node).collect();
            let mut l3s: Vec<Option<usize>> = in_node.iter().map(|c| c.l3).collect();
            l3s.sort_unstable_by_key(|l| l.unwrap_or(usize::MAX));
            l3s.dedup();
            for l3 in l3s {
                let label = match l3 {
                    Some(id) => {
                        let s = topology
                            .l3_domains()
                            .get(id)
                            .and_then(|d| d.size_bytes)
                            .map_or_else(String::new, |b| format!(" ({})", size(b)));
                        format!("L3 {id}{s}")
                    }
                    None => "L3 unknown".to_owned(),
                };
                let _ = writeln!(out, "    {label}");
                for core in in_node.iter().filter(|c| c.l3 == l3) {
                    let kind = match core.kind {
                        CoreKind::Performance => " P",
                        CoreKind::Efficiency => " E",
                        CoreKind::Unknown => "",
                    };
                    let mut caches = Vec::new();
                    if let Some(b) = core.l2_bytes {
                        caches.push(format!("L2 {}", size(b)));
                    }
                    if let Some(b) = core.l1d_bytes {
                        caches.push(format!("L1d {}", size(b)));
                    }
                    let caches = if caches.is_empty() { String::new() } else { format!(" ({})", caches.join(", ")) };
                    let pus: Vec<String> = core
                        .pus
                        .iter()
                        .map(|&cpu| match topology.pu(cpu) {
                            Some(pu) if !pu.allowed => format!("{cpu} (not allowed)"),
                            _ => cpu.to_string(),
                        })
                        .collect();
                    let _ = writeln!(out, "      core {}{kind}{caches}: PU {}", core.id, pus.join(", "));
                }
            }
        }
    }
}

/// The JSON document (see the module docs, step 3).
fn document(
    topology: &Topology,
    xml: Option<&PathBuf>,
    config: &EngineConfig,
    request: &PlacementRequest,
    plan: &PlacementPlan,
    ordering: Option<&Ordering>,
) -> Value {
    let source = match topology.source() {
        TopologySource::Hwloc => "hwloc",
        TopologySource::Sysfs => "sysfs",
        TopologySource::Synthetic => "synthetic",
        TopologySource::Xml => "xml",
    };
    let distances = topology.distances().map(|d| {
        let matrix: Vec<Vec<Option<u64>>> =
            d.nodes().iter().map(|&from| d.nodes().iter().map(|&to| d.get(from, to)).collect()).collect();
        json!({ "nodes": d.nodes(), "matrix": matrix })
    });
    let placement = match &request.placement {
        Placement::PerCore => json!("per_core"),
        Placement::Shards(n) => json!({ "shards": n }),
        Placement::Cpus(cpus) => json!({ "cpus": cpus }),
    };
    json!({
        "source": source,
        "xml": xml.map(|p| p.display().to_string()),
        "fallback_reason": topology.fallback_reason(),
        "packages": topology.packages().iter().map(|p| json!({
            "id": p.id, "os_index": p.os_index, "cores": p.cores,
        })).collect::<Vec<_>>(),
        "numa_nodes": topology.numa_nodes().iter().map(|n| json!({
            "os_index": n.os_index, "memory_bytes": n.memory_bytes, "cpus": n.cpus,
        })).collect::<Vec<_>>(),
        "l3_domains": topology.l3_domains().iter().map(|d| json!({
            "id": d.id, "size_bytes": d.size_bytes, "cpus": d.cpus,
        })).collect::<Vec<_>>(),
        "cores": topology.cores().iter().map(|c| json!({
            "id": c.id, "package": c.package, "numa_node": c.numa_node, "l3": c.l3,
            "kind": kind_name(c.kind), "l1d_bytes": c.l1d_bytes, "l2_bytes": c.l2_bytes, "pus": c.pus,
        })).collect::<Vec<_>>(),
        "pus": topology.pus().iter().map(|p| json!({
            "os_index": p.os_index, "core": p.core, "allowed": p.allowed,
        })).collect::<Vec<_>>(),
        "distances": distances,
        "config": config.source.origin(),
        "request": {
            "placement": placement,
            "reserved_cpus": request.reserved_cpus,
            "oversubscribe": request.allow_oversubscribe,
        },
        "plan": plan.iter().map(|s| json!({
            "shard": s.shard, "cpu": s.cpu, "core": s.core, "package": s.package,
            "numa_node": s.numa_node, "l3": s.l3,
        })).collect::<Vec<_>>(),
        "c2c": ordering.map(|o| json!({
            "cpus_before": o.before,
            "cpus_after": o.after,
            "ring_cost_ns_before": o.cost_ns.map(|c| c.0),
            "ring_cost_ns_after": o.cost_ns.map(|c| c.1),
        })),
    })
}
