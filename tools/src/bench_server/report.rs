//! `nexus bench server`'s output: the text report (a header with how CPU is measured, then per
//! comparison its table, its CPU table and target lines, the recovery line, and the overall
//! verdict) or the JSON lines, and `--json FILE`.
//!
//! Invariants: redis-server's figures appear once in the JSON lines, with the first comparison
//! against it; every nexus record carries its shard count and executor.

use super::cpu::method_line;
use super::figures::{grouped, records, render_cpu_table, render_table, Test};
use super::recovery::Measured;
use super::targets::render_verdicts;
use super::{Comparison, Server, ServerBenchArgs, Setup, KEYSPACE};
use crate::bench::{cpu_model, write_json};
use crate::Failure;
use nexus_bench::report::{today_utc, Record};
use std::fmt::Write as _;
use std::fs::File;
use std::io::Write;

/// Prints the report (or the JSON lines) and writes `--json FILE`.
pub(super) fn report(
    args: &ServerBenchArgs,
    setup: &Setup,
    servers: &[Server],
    comparisons: &[Comparison],
    recovered: Option<&Measured>,
) -> Result<(), Failure> {
    let records = json_records(args, setup, servers, comparisons, recovered);
    if let Some(Some(path)) = &args.json {
        let write = || -> std::io::Result<()> {
            let mut file = std::io::BufWriter::new(File::create(path)?);
            write_json(&mut file, &records)?;
            file.flush()
        };
        write().map_err(|e| Failure::runtime(format!("bench server: cannot write {}: {e}", path.display())))?;
        eprintln!("nexus: {} records written to {}", records.len(), path.display());
    }
    let mut out = std::io::stdout().lock();
    let written = if matches!(args.json, Some(None)) {
        write_json(&mut out, &records)
    } else {
        writeln!(out, "{}", render_report(args, setup, servers, comparisons, recovered).trim_end())
    };
    written
        .and_then(|()| out.flush())
        .map_err(|e| Failure::runtime(format!("bench server: cannot write the results: {e}")))
}

/// The text report: header, a table, a CPU table and the targets per comparison, recovery, the
/// overall line.
fn render_report(
    args: &ServerBenchArgs,
    setup: &Setup,
    servers: &[Server],
    comparisons: &[Comparison],
    recovered: Option<&Measured>,
) -> String {
    let rounds = if args.repeat == 1 { "1 round".to_string() } else { format!("{} rounds", args.repeat) };
    let mut text = format!(
        "nexus bench server: {} on loopback, {}, at least {} requests per run (more where the warm-up \
         round's run lasted under 0.5 s), -r {}, medians of {rounds} after it (ratio: median and min-max of \
         the per-round ratios)\n{}\n{}",
        setup.benchmark_version,
        match args.client_threads {
            1 => format!("{} clients", args.clients),
            threads => format!("{} clients on {threads} threads", args.clients),
        },
        grouped(args.requests),
        grouped(KEYSPACE),
        method_line(),
        setup.lines.join("\n"),
    );
    if let Some(model) = cpu_model() {
        let n = std::thread::available_parallelism().map_or(0, |n| n.get());
        let _ = write!(text, "\nmachine: {model}, {n} CPUs (redis-benchmark shares them), {}", today_utc());
    }
    let (mut met, mut total) = (0, 0);
    for c in comparisons {
        let subject = &servers[c.subject].label;
        let baseline = match servers[c.baseline].side {
            None => "redis-server",
            Some(_) => servers[c.baseline].label.as_str(),
        };
        let names = if servers[c.baseline].side.is_none() { ["nexus", "redis"] } else { ["aof", "no-aof"] };
        let gap = if text.ends_with('\n') { "\n" } else { "\n\n" };
        let _ = write!(text, "{gap}{subject} against {baseline}:\n{}", render_table(&c.summaries, names));
        let _ = write!(
            text,
            "CPU of redis-benchmark (client) and of each server:\n{}",
            render_cpu_table(&c.summaries, names)
        );
        text.push_str(&render_verdicts(subject, baseline, &c.verdicts));
        met += c.verdicts.iter().filter(|v| v.met()).count();
        total += c.verdicts.len();
    }
    if let Some(r) = recovered {
        let _ = write!(text, "\n{}\n", r.render());
        met += usize::from(r.met());
        total += 1;
    }
    let overall = if met == total { "met" } else { "not met" };
    let _ = write!(text, "\ntargets: {overall} ({met} of {total})\n");
    text
}

/// The JSON records of every comparison (redis-server's figures once) and of the recovery.
fn json_records(
    args: &ServerBenchArgs,
    setup: &Setup,
    servers: &[Server],
    comparisons: &[Comparison],
    recovered: Option<&Measured>,
) -> Vec<Record> {
    let date = today_utc();
    let mut out = Vec::new();
    let mut redis_written = false;
    for c in comparisons {
        let server = &servers[c.subject];
        let (Some(side), Some(plan)) = (server.side, &server.plan) else { continue };
        let with_redis = servers[c.baseline].side.is_none() && !std::mem::replace(&mut redis_written, true);
        let met: Vec<(Test, u32, bool)> = c.verdicts.iter().map(|v| (v.goal.test, v.goal.pipeline, v.met())).collect();
        let cpus: Vec<String> = plan.cpus().iter().map(usize::to_string).collect();
        let cpus = cpus.join(",");
        let recs = records(&c.summaries, (side.system(), with_redis.then_some("redis")), &met, args.repeat);
        out.extend(
            recs.into_iter()
                .map(|r| if r.system == "redis" { r } else { r.engine(side.shards, setup.executor.name()) })
                .map(|r| r.context(&cpus, &date, side.shards)),
        );
    }
    if let Some(r) = recovered {
        out.extend(r.records(setup.executor.name()).into_iter().map(|rec| rec.context("", &date, r.shards)));
    }
    out
}
