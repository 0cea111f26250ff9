//! `nexus bench coord`: what the coordination layer costs, against its targets.
//!
//! 1. Start one engine (`--shards`, default 2; `--executor`), start `nexus-coord` on it and
//!    declare 10,000 members on every shard (`nexus_bench::coord`).
//! 2. Each round (`--repeat`, default 5): 20,000 local discoveries on shard 0, 20,000 global
//!    ones over every shard, 5,000 auctions among 10 bidders (bidders watched, then not) and
//!    5,000 majority ballots among 9 voters, each timed alone.
//! 3. Check the accounting, shut down, and print the table with each target's verdict (or,
//!    with `--json`, the records: `discover_local_ns`, `discover_global_ns`, `auction_ns` and
//!    `vote_ns` (p50), their p99 companions, and `auction_unwatched_ns`; system `nexus`,
//!    workload `coord`).

use crate::bench::{emit, shutdown_accounted, ScenarioArgs};
use crate::Failure;
use nexus_bench::coord::{self, CoordParams};
use nexus_bench::report::{render_tables, today_utc, Record};
use nexus_bench::stats::median;
use nexus_bench::BenchError;
use std::io::Write;

const WORKLOAD: &str = "coord";

/// The targets: (metric, at most this many ns, what the old system took).
const TARGETS: &[(&str, f64, &str)] = &[
    ("discover_local_ns", 2_000.0, "120 ms"),
    ("discover_global_ns", 20_000.0, "120 ms"),
    ("auction_ns", 50_000.0, "165 ms for a whole coordination"),
    ("vote_ns", 30_000.0, "none: no voting"),
];

fn progress(line: &str) {
    eprintln!("bench coord: {line}");
}

fn failed(e: BenchError) -> Failure {
    Failure::runtime(format!("bench coord: {e}"))
}

/// Runs it; see the module documentation.
pub(crate) fn bench_coord(args: ScenarioArgs) -> Result<(), Failure> {
    let mut settings = args.settings;
    let shards = settings.shards;
    let executor = settings.executor.name();
    let plan = settings.plan().map_err(failed)?;
    let cpus: Vec<String> = plan.cpus().iter().map(|c| c.to_string()).collect();
    let engine = settings.build().map_err(failed)?;
    let handle = engine.handle();
    let params = CoordParams::default();
    progress(&format!("declaring {} members on each of {shards} shards", params.agents_per_shard));
    let setup = coord::start(&handle, params).map_err(failed)?;
    let mut series: Vec<(&'static str, &'static str, Vec<f64>)> = Vec::new();
    let mut push = |metric: &'static str, placement: &'static str, value: f64| match series
        .iter_mut()
        .find(|(m, _, _)| *m == metric)
    {
        Some((_, _, v)) => v.push(value),
        None => series.push((metric, placement, vec![value])),
    };
    let mut local_members = 0;
    for round in 0..args.repeat {
        progress(&format!(
            "round {}/{}: {} local and global discoveries, {} auctions of each kind, {} ballots",
            round + 1,
            args.repeat,
            params.samples,
            params.samples / 4,
            params.samples / 4
        ));
        let f = coord::run(&handle, &setup, params).map_err(failed)?;
        local_members = f.local_members;
        push("discover_local_ns", "local", f.discover_local.p50_ns);
        push("discover_local_p99_ns", "local", f.discover_local.p99_ns);
        push("discover_global_ns", "cross", f.discover_global.p50_ns);
        push("discover_global_p99_ns", "cross", f.discover_global.p99_ns);
        push("auction_ns", "cross", f.auction.p50_ns);
        push("auction_p99_ns", "cross", f.auction.p99_ns);
        push("auction_unwatched_ns", "cross", f.auction_unwatched.p50_ns);
        push("auction_unwatched_p99_ns", "cross", f.auction_unwatched.p99_ns);
        push("vote_ns", "cross", f.vote.p50_ns);
        push("vote_p99_ns", "cross", f.vote.p99_ns);
    }
    shutdown_accounted(engine, "bench coord")?;

    let date = today_utc();
    let cpus = cpus.join(",");
    let records: Vec<Record> = series
        .iter()
        .map(|(metric, placement, values)| {
            Record::new(WORKLOAD, "nexus", placement, metric, median(values), "ns")
                .engine(shards, executor)
                .repeat(args.repeat)
                .agents((params.agents_per_shard * shards) as u64)
                .context(&cpus, &date, shards)
        })
        .collect();
    let verdicts: Vec<String> = TARGETS
        .iter()
        .filter_map(|(metric, limit, old)| {
            let value = records.iter().find(|r| r.metric == *metric)?.value;
            let verdict = if value <= *limit { "met" } else { "NOT met" };
            Some(format!("  {metric}: {value:.0} ns (target ≤ {limit:.0} ns: {verdict}; the old system: {old})"))
        })
        .collect();
    let write = |out: &mut dyn Write| -> std::io::Result<()> {
        writeln!(
            out,
            "nexus bench coord: {shards} shards ({executor}), cpus {cpus}, {date}, median of {} rounds\n\
             {} members per shard ({local_members} in shard 0's index), {} tags, {} per member, loads 0-7, best {} asked, {} samples per round\n\
             targets:\n{}\n\n{}",
            args.repeat,
            params.agents_per_shard,
            params.tags,
            params.caps_per_agent,
            params.limit,
            params.samples,
            verdicts.join("\n"),
            render_tables(&records).trim_end()
        )
    };
    emit(&args.json, &records, write)
        .map_err(|e| Failure::runtime(format!("bench coord: cannot write the results: {e}")))
}
