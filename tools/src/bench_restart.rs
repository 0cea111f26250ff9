//! `nexus bench restart`: how fast supervised agents come back, and what panics cost.
//!
//! 1. Start one engine (`--shards`, default 2; `--executor`) and keep injected panics quiet.
//! 2. Restart latency (`nexus_bench::restart`): 20,000 panic-restart cycles of one supervised
//!    child on the supervisor's shard (`local`), then on another shard (`cross`), each round;
//!    a sample is the time from the panic to the restarted child handling its next message.
//! 3. Chaos throughput (`nexus_bench::chaos`): 10,000 supervised agents under ask traffic, a
//!    clean run and a run with 1% of handlers panicking, interleaved (their order alternates
//!    by round); the ratio is taken pair by pair and its median reported.
//! 4. Check the accounting on a quiescent snapshot, shut down, and print the table (or, with
//!    `--json`, the records, whose metrics are `restart_p50_ns`, `restart_p99_ns` and
//!    `chaos_throughput_ratio`, among others).

use crate::bench::{emit, shutdown_accounted, ScenarioArgs};
use crate::Failure;
use nexus_bench::chaos::{self, ChaosParams};
use nexus_bench::report::{render_tables, today_utc, Record};
use nexus_bench::restart::{self, RestartParams};
use nexus_bench::setup::Placement;
use nexus_bench::stats::median;
use nexus_bench::BenchError;
use std::io::Write;

const WORKLOAD: &str = "restart";

fn progress(line: &str) {
    eprintln!("bench restart: {line}");
}

fn failed(e: BenchError) -> Failure {
    Failure::runtime(format!("bench restart: {e}"))
}

/// Runs it; see the module documentation.
pub(crate) fn bench_restart(args: ScenarioArgs) -> Result<(), Failure> {
    chaos::quiet_injected_panics();
    let mut settings = args.settings;
    let shards = settings.shards;
    let executor = settings.executor.name();
    let plan = settings.plan().map_err(failed)?;
    let cpus: Vec<String> = plan.cpus().iter().map(|c| c.to_string()).collect();
    let engine = settings.build().map_err(failed)?;
    let handle = engine.handle();
    let placements: &[Placement] =
        if shards >= 2 { &[Placement::Local, Placement::Cross] } else { &[Placement::Local] };

    let mut p50 = vec![Vec::new(); placements.len()];
    let mut p99 = vec![Vec::new(); placements.len()];
    let mut clean = Vec::new();
    let mut panicking = Vec::new();
    let mut ratios = Vec::new();
    let mut panics_per_s = Vec::new();
    let chaos_params = ChaosParams::default();
    progress(&format!("starting {} supervised agents", chaos_params.agents));
    let tree = chaos::start(&handle, chaos_params).map_err(failed)?;
    for round in 0..args.repeat {
        for (i, &placement) in placements.iter().enumerate() {
            progress(&format!("round {}/{}: restart latency, {}", round + 1, args.repeat, placement.as_str()));
            let figures =
                restart::run(&handle, RestartParams { placement, ..RestartParams::default() }).map_err(failed)?;
            p50[i].push(figures.latency.p50_ns);
            p99[i].push(figures.latency.p99_ns);
        }
        let order: [u32; 2] = if round % 2 == 0 { [0, chaos_params.panic_ppm] } else { [chaos_params.panic_ppm, 0] };
        let mut pair = [0.0; 2];
        for ppm in order {
            progress(&format!(
                "round {}/{}: chaos {}, {} s",
                round + 1,
                args.repeat,
                if ppm == 0 { "clean" } else { "with 1% panics" },
                chaos_params.duration.as_secs()
            ));
            let figures = chaos::run(&handle, &tree, ppm).map_err(failed)?;
            if ppm == 0 {
                pair[0] = figures.replies_per_sec;
            } else {
                pair[1] = figures.replies_per_sec;
                panics_per_s.push(figures.panics as f64 / chaos_params.duration.as_secs_f64());
            }
        }
        clean.push(pair[0]);
        panicking.push(pair[1]);
        ratios.push(if pair[0] > 0.0 { pair[1] / pair[0] } else { 0.0 });
    }
    progress("checking the accounting");
    let accounting = chaos::check_accounting(&handle).map_err(failed)?;
    shutdown_accounted(engine, "bench restart")?;

    let date = today_utc();
    let cpus = cpus.join(",");
    let record = |placement: &'static str, metric: &'static str, value: f64, unit: &'static str| {
        Record::new(WORKLOAD, "nexus", placement, metric, value, unit)
            .engine(shards, executor)
            .repeat(args.repeat)
            .context(&cpus, &date, shards)
    };
    let mut records = Vec::new();
    for (i, placement) in placements.iter().enumerate() {
        records.push(record(placement.as_str(), "restart_p50_ns", median(&p50[i]), "ns"));
        records.push(record(placement.as_str(), "restart_p99_ns", median(&p99[i]), "ns"));
    }
    let agents = chaos_params.agents as u64;
    records.push(record("chaos", "chaos_clean_replies_per_s", median(&clean), "msg/s").agents(agents));
    records.push(record("chaos", "chaos_panicking_replies_per_s", median(&panicking), "msg/s").agents(agents));
    records.push(record("chaos", "chaos_panics_per_s", median(&panics_per_s), "msg/s").agents(agents));
    records.push(record("chaos", "chaos_throughput_ratio", median(&ratios), "x").agents(agents));

    let write = |out: &mut dyn Write| -> std::io::Result<()> {
        let header = format!(
            "nexus bench restart: {shards} shards ({executor}), cpus {cpus}, {date}, median of {}\n\
             accounting at quiescence: {accounting}\n\
             chaos ratios by round (panicking / clean): {}",
            args.repeat,
            ratios.iter().map(|r| format!("{r:.3}")).collect::<Vec<_>>().join(", ")
        );
        writeln!(out, "{header}\n\n{}", render_tables(&records).trim_end())
    };
    emit(&args.json, &records, write)
        .map_err(|e| Failure::runtime(format!("bench restart: cannot write the results: {e}")))
}
