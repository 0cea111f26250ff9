//! `nexus bench`: runs the core workloads of `nexus-bench` and prints their figures.
//!
//! `nexus bench WORKLOAD|all [--shards N] [--peers] [--large] [--json [FILE]] [--plot DIR]
//! [--repeat K] [--executor glommio|threads|auto] [--passes-before-yield N]`
//!
//! 1. Check the arguments: `--repeat` and `--shards` at least 1; cross-shard workloads
//!    (pingpong, counting, thread-ring) need 2 shards (exit 2 with a hint otherwise).
//! 2. Plan the shards on this machine. More shards than cores is allowed, with
//!    oversubscription switched on and a note in the output, since the figures then measure
//!    the OS scheduler as much as the engine.
//! 3. Run the suite (`nexus_bench::suite`), printing a progress line on stderr before each
//!    step (rewritten in place on a terminal).
//! 4. Print one table per workload on stdout (with the peers' figures, Nexus's advantage over
//!    each, pair by pair, and the peer runs skipped, with why), or with a bare `--json` one
//!    JSON object per figure and line, nothing else on stdout; `--json FILE` writes the JSON
//!    lines there and still prints the tables; `--plot DIR` writes the SVG charts.
//!
//! `nexus bench restart [--shards N] [--repeat K] [--json [FILE]]` measures supervision: the
//! panic-to-next-message time of a supervised agent and the chaos throughput ratio (see
//! `bench_restart`).
//!
//! `nexus bench server [--shards N[,N...]] [--persistence] [--recovery [KEYS]] [--requests N]
//! [--clients N] [--repeat K] [--json [FILE]]` is another kind of run: redis-benchmark against
//! `nexus run` (one server per shard count, and the aof configurations with `--persistence`)
//! and a redis-server it starts, and the recovery time after a restart with `--recovery` (see
//! `bench_server`); the options of the engine workloads that do not apply to it are refused.
//! Only `server` takes a list of shard counts.
//!
//! `nexus bench idle [--duration 10s] [--executor glommio|threads|both] [--shards N]
//! [--json [FILE]]` is another: the CPU share and wake-ups of an idle `nexus run`, per executor
//! (both by default), against the target of at most 1% of a core (see `bench_idle`).
//!
//! `nexus bench tracing [--shards N] [--executor E] [--repeat K] [--round-ms MS]
//! [--untraced-bin PATH] [--json [FILE]]` is another: message tracing's cost on counting and
//! cross-shard pingpong, untraced build against sampling 0, 1% and 100%, each round in a child
//! process (see `bench_tracing`; `perf/tracing/run.sh` builds both binaries and runs it).
//!
//! `nexus bench compare OLD.jsonl NEW.jsonl [--threshold P]` runs nothing: it matches the
//! figures of two `--json FILE` outputs and says which got better, worse or stayed within
//! +-P% (default 5; see `bench_compare` for which way each metric improves).
//!
//! `nexus bench cluster` (no options) runs two nodes through a nats-server it starts and
//! compares the cross-node ask and one-way traffic with raw async-nats (see `bench_cluster`).
//!
//! Neither `server`, `restart`, `coord`, `idle`, `tracing`, `cluster` nor `compare` is part of `all`; each refuses the
//! options that do not apply to it (exit 2, naming the ones it takes).
//!
//! A workload whose own check fails (a count or a sum is wrong) fails the command (exit 1): its
//! figures would describe something other than what it claims to measure.

use crate::bench_idle::Executors;
use crate::Failure;
use clap::ValueEnum;
use nexus_bench::plot::{write_charts, LatencyCurve};
use nexus_bench::report::{render_tables, today_utc, Record};
use nexus_bench::suite::{Plan, Skip, Suite, Workload};
use nexus_bench::{BenchError, EngineSettings};
use nexus_engine::placement::{PlacementError, PlacementPlan};
use nexus_engine::shard::ExecutorKind;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

/// Which workload to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum WorkloadArg {
    /// Round-trip latency local and cross, the probe, the wake from park.
    Pingpong,
    /// One million increments from a producer to a counter.
    Counting,
    /// A token passed around a ring of 100 agents.
    ThreadRing,
    /// Spawn and stop cost, memory per idle agent.
    Spawn,
    /// Local name lookups at 1e3 to 1e6 names.
    Registry,
    /// Counting on every shard at once: the aggregate rate at --shards N.
    Scaling,
    /// Savina Chameneos: 100 creatures, 200,000 meetings through one mall.
    Chameneos,
    /// Savina Big: 120 agents, 20,000 pings each to random neighbours.
    Big,
    /// Savina fork-join throughput: 60 agents, 10,000 messages each.
    FjThroughput,
    /// Savina fork-join creation: 40,000 spawn, message, stop.
    FjCreate,
    /// Savina Fibonacci: N = 25, one agent per call.
    Fib,
    /// Every shard sends to one agent.
    FanIn,
    /// Every workload above.
    All,
    /// redis-benchmark against `nexus run` and a redis-server (not part of `all`).
    Server,
    /// Panic-to-next-message time of a supervised agent, and 10,000 supervised agents under
    /// ask traffic with and without 1% panics (not part of `all`).
    Restart,
    /// The coordination layer: local and global discovery among 10,000 agents, a 10-bidder
    /// auction and a 9-voter vote across shards (not part of `all`).
    Coord,
    /// CPU share and wake-ups of an idle `nexus run`, per executor (not part of `all`).
    Idle,
    /// Message tracing's cost: counting and cross-shard pingpong, untraced build (with
    /// --untraced-bin) against sampling 0, 1% and 100% (not part of `all`).
    Tracing,
    /// Two nodes through a nats-server it starts: cross-node ask round trip and one-way
    /// messages/s against raw async-nats request/reply and publish (not part of `all`).
    Cluster,
    /// Compare two `--json FILE` outputs: OLD.jsonl NEW.jsonl (runs nothing).
    Compare,
}

/// Arguments of `nexus bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// The workload to run (`all` runs every one).
    #[arg(value_enum)]
    workload: WorkloadArg,
    /// `compare` only: the old and the new JSON lines file.
    #[arg(value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Engine shards (default 2; pingpong, counting and thread-ring need at least 2). For
    /// `server`, a list (`1,2`: one nexus server each), and the default is `nexus run`'s: one
    /// per physical core.
    #[arg(long, value_delimiter = ',', num_args = 1)]
    shards: Vec<usize>,
    /// One JSON object per figure and line: into FILE when given (the tables still go to
    /// stdout), else on stdout instead of the tables.
    #[arg(long, value_name = "FILE", num_args = 0..=1)]
    json: Option<Option<PathBuf>>,
    /// Also run the peers (tokio, glommio, crossbeam, rtrb, ractor, kameo) side by side, where
    /// a workload has them. Needs a build with `--features peers`.
    #[arg(long)]
    peers: bool,
    /// Write SVG charts into DIR: latency percentile curves and throughput bars.
    #[arg(long, value_name = "DIR")]
    plot: Option<PathBuf>,
    /// Large sizes: 1,000,000 pingpong round trips and thread-ring hops.
    #[arg(long)]
    large: bool,
    /// Rounds of the repeated figures (the median is reported, with the min and max; default 5).
    #[arg(long)]
    repeat: Option<u32>,
    /// The executor running the shards: glommio, threads, or auto (the default: glommio when
    /// io_uring and the memlock limit allow it). `idle` also takes both, its default.
    #[arg(long)]
    executor: Option<Executors>,
    /// `idle` only: the measured window, as 10s, 500ms, 2m or seconds (default 10s).
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// `compare` only: changes within +-this % count as the same (default 5).
    #[arg(long, value_name = "PERCENT")]
    threshold: Option<f64>,
    /// Idle dispatcher passes before a glommio shard yields to its executor (default: the
    /// engine's, 256). 1 hands control back to glommio on every idle pass: the cost of the
    /// design the engine avoids.
    #[arg(long)]
    passes_before_yield: Option<u32>,
    /// `server` only: requests per redis-benchmark run (default 200,000).
    #[arg(long)]
    requests: Option<u64>,
    /// `server` only: redis-benchmark's parallel clients (default 50).
    #[arg(long)]
    clients: Option<u32>,
    /// `server` only: redis-benchmark's threads (`--threads`; default 1). One thread drives
    /// about one server core at -P 16: more are needed to load several shards (the scaling
    /// curve), and each takes a CPU the servers then cannot use.
    #[arg(long)]
    client_threads: Option<u32>,
    /// `server` only: also measure nexus with `[persistence] mode = "aof"`, fsync everysec and
    /// always (the first shard count), against the same nexus without persistence.
    #[arg(long)]
    persistence: bool,
    /// `server` only: load KEYS keys (default 1,000,000) into an aof nexus, restart it and
    /// report the recovery time its log states.
    #[arg(long, value_name = "KEYS", num_args = 0..=1, default_missing_value = "1000000")]
    recovery: Option<u64>,
    /// `server` only, for development: measure the RESP server already on this loopback port
    /// as the nexus side instead of starting `nexus run`.
    #[arg(long, hide = true)]
    target_port: Option<u16>,
    /// `tracing` only: the `nexus` binary built with `--features nexus-engine/untraced`, the
    /// baseline of tracing_overhead_0.
    #[arg(long, value_name = "PATH")]
    untraced_bin: Option<PathBuf>,
    /// `tracing` only: size each run to last at least this many ms at sampling 0 (default 600).
    #[arg(long, value_name = "MS")]
    round_ms: Option<u64>,
    /// `tracing` only, internal: run one round of this workload and print it as a JSON line.
    #[arg(long, hide = true, value_enum)]
    child_round: Option<crate::bench_tracing_round::TracedWorkload>,
    /// `tracing` only, internal: the round's sampling probability.
    #[arg(long, hide = true)]
    child_sample: Option<f64>,
    /// `tracing` only, internal: the round's increments or round trips.
    #[arg(long, hide = true)]
    child_size: Option<u64>,
}

/// Rounds when `--repeat` is not given: five, so a median has two rounds on each side.
const DEFAULT_REPEAT: u32 = 5;
/// Shards of the engine workloads when `--shards` is not given.
const DEFAULT_SHARDS: usize = 2;
/// `nexus bench idle`'s window when `--duration` is not given.
const IDLE_DURATION_DEFAULT: Duration = Duration::from_secs(10);
/// `nexus bench server`'s requests per run when `--requests` is not given.
const SERVER_REQUESTS_DEFAULT: u64 = 200_000;
/// `nexus bench server`'s clients when `--clients` is not given.
const SERVER_CLIENTS_DEFAULT: u32 = 50;

/// Runs `nexus bench`: checks the arguments, then runs `idle`, `compare`, `server`, `coord` or
/// `restart` on their own, or the engine workloads as one suite.
pub fn bench(args: BenchArgs) -> Result<(), Failure> {
    match args.workload {
        WorkloadArg::Idle => return idle(&args),
        WorkloadArg::Cluster => {
            only_for(&args, "cluster", &[])?;
            return crate::bench_cluster::bench_cluster();
        }
        WorkloadArg::Compare => return compare(&args),
        WorkloadArg::Tracing => return tracing(args),
        _ => refuse_special_options(&args)?,
    }
    let (repeat, executor) = common_options(&args)?;
    if args.workload == WorkloadArg::Server {
        return server(args, repeat, executor);
    }
    refuse_server_options(&args)?;
    let mut settings = EngineSettings::bench(one_shard_count(&args)?.unwrap_or(DEFAULT_SHARDS));
    if let Some(passes) = args.passes_before_yield {
        settings.idle.passes_before_yield = passes;
    }
    settings.executor = resolve_executor(executor, settings.shards)?;
    match args.workload {
        WorkloadArg::Coord => {
            refuse_suite_options(&args, "coord")?;
            crate::bench_coord::bench_coord(ScenarioArgs { settings, repeat, json: args.json })
        }
        WorkloadArg::Restart => {
            refuse_suite_options(&args, "restart")?;
            crate::bench_restart::bench_restart(ScenarioArgs { settings, repeat, json: args.json })
        }
        _ => run_suite(&args, settings, repeat),
    }
}

/// The options every workload but `idle` and `compare` checks: `--executor` (one executor),
/// `--repeat`, `--shards` and `--passes-before-yield` (each at least 1). Returns the rounds
/// and the executor asked for.
fn common_options(args: &BenchArgs) -> Result<(u32, ExecutorKind), Failure> {
    let (repeat, executor) = (args.repeat.unwrap_or(DEFAULT_REPEAT), single_executor(args.executor)?);
    if repeat == 0 {
        return Err(Failure::usage(format!(
            "bench: --repeat must be at least 1; hint: the default is {DEFAULT_REPEAT}"
        )));
    }
    if args.shards.contains(&0) {
        return Err(Failure::usage("bench: --shards must be at least 1; hint: the default is 2"));
    }
    if args.passes_before_yield == Some(0) {
        return Err(Failure::usage("bench: --passes-before-yield must be at least 1; hint: the default is 256"));
    }
    Ok((repeat, executor))
}

/// For the workloads other than `server`: refuses the options that belong to it.
fn refuse_server_options(args: &BenchArgs) -> Result<(), Failure> {
    for (given, option) in [
        (args.requests.is_some(), "--requests"),
        (args.clients.is_some(), "--clients"),
        (args.target_port.is_some(), "--target-port"),
        (args.persistence, "--persistence"),
        (args.recovery.is_some(), "--recovery"),
    ] {
        if given {
            return Err(Failure::usage(format!("bench: {option} applies to `nexus bench server` only")));
        }
    }
    Ok(())
}

/// The one shard count of a workload other than `server` (`None`: not given); a list is refused.
fn one_shard_count(args: &BenchArgs) -> Result<Option<usize>, Failure> {
    match args.shards[..] {
        [] => Ok(None),
        [n] => Ok(Some(n)),
        _ => Err(Failure::usage(
            "bench: a list of shard counts applies to `nexus bench server` only; hint: give one --shards N",
        )),
    }
}

/// For `coord` and `restart` (`workload`): refuses the options only the suite takes
/// (`--peers`, `--plot`, `--large`).
fn refuse_suite_options(args: &BenchArgs, workload: &str) -> Result<(), Failure> {
    if let Some((_, option)) = [(args.peers, "--peers"), (args.plot.is_some(), "--plot"), (args.large, "--large")]
        .iter()
        .find(|(given, _)| *given)
    {
        return Err(Failure::usage(format!(
            "bench: {option} does not apply to `nexus bench {workload}`; hint: it takes --shards, --executor, \
             --repeat, --json and --passes-before-yield"
        )));
    }
    Ok(())
}

/// The suite's workloads for `workload` (every one for `all`); only for the workloads the
/// suite runs.
fn suite_workloads(workload: WorkloadArg) -> Vec<Workload> {
    match workload {
        WorkloadArg::Pingpong => vec![Workload::PingPong],
        WorkloadArg::Counting => vec![Workload::Counting],
        WorkloadArg::ThreadRing => vec![Workload::ThreadRing],
        WorkloadArg::Spawn => vec![Workload::Spawn],
        WorkloadArg::Registry => vec![Workload::Registry],
        WorkloadArg::Scaling => vec![Workload::Scaling],
        WorkloadArg::Chameneos => vec![Workload::Chameneos],
        WorkloadArg::Big => vec![Workload::Big],
        WorkloadArg::FjThroughput => vec![Workload::FjThroughput],
        WorkloadArg::FjCreate => vec![Workload::FjCreate],
        WorkloadArg::Fib => vec![Workload::Fib],
        WorkloadArg::FanIn => vec![Workload::FanIn],
        WorkloadArg::All => Workload::ALL.to_vec(),
        WorkloadArg::Server => unreachable!("`server` returned above"),
        WorkloadArg::Restart => unreachable!("`restart` returned above"),
        WorkloadArg::Coord => unreachable!("`coord` returned above"),
        WorkloadArg::Cluster => unreachable!("`cluster` returned above"),
        WorkloadArg::Idle | WorkloadArg::Compare | WorkloadArg::Tracing => {
            unreachable!("`idle`, `compare` and `tracing` returned above")
        }
    }
}

/// Runs the engine workloads as one suite: plans the shards, runs every round with a
/// progress line, then writes the charts and JSON file asked for and prints the results.
fn run_suite(args: &BenchArgs, settings: EngineSettings, repeat: u32) -> Result<(), Failure> {
    let workloads = suite_workloads(args.workload);
    let mut suite = Suite { settings, plan: Plan::savina(args.large, repeat), workloads, peers: args.peers };
    suite.validate().map_err(failure)?;
    let (plan, notes) = plan_shards(&mut suite)?;

    let mut progress = Progress::new();
    let output = suite.run(&mut |step, steps, label| progress.show(step, steps, label));
    progress.finish();
    let output = output.map_err(failure)?;
    let cpus_field: Vec<String> = plan.cpus().iter().map(usize::to_string).collect();
    let (cpus_field, date, shards) = (cpus_field.join(","), today_utc(), suite.settings.shards);
    let records: Vec<Record> = output.records.into_iter().map(|r| r.context(&cpus_field, &date, shards)).collect();

    write_files(args, &records, &output.curves)?;
    print_results(args, &suite, &plan, &notes, &records, &output.skipped, repeat)
}

/// Plans the suite's shards on this machine. More shards than usable cores switch
/// oversubscription on, with a note (printed on stderr here, and returned for the header).
fn plan_shards(suite: &mut Suite) -> Result<(PlacementPlan, Vec<String>), Failure> {
    let mut notes = Vec::new();
    let plan = match suite.settings.plan() {
        Ok(plan) => plan,
        Err(BenchError::Placement(PlacementError::TooManyShards { requested, usable })) => {
            suite.settings.oversubscribe = true;
            notes.push(format!(
                "note: {requested} shards on {usable} cores: oversubscribed (shards share CPUs), so the figures \
                 include OS scheduling; use --shards {usable} or fewer for the engine's own figures"
            ));
            suite.settings.plan().map_err(failure)?
        }
        Err(e) => return Err(failure(e)),
    };
    for note in &notes {
        eprintln!("nexus: {note}");
    }
    Ok((plan, notes))
}

/// Writes what goes to files: the SVG charts (`--plot DIR`) and the JSON lines
/// (`--json FILE`), each with a line on stderr.
fn write_files(args: &BenchArgs, records: &[Record], curves: &[LatencyCurve]) -> Result<(), Failure> {
    if let Some(dir) = &args.plot {
        let written = write_charts(dir, records, curves).map_err(failure)?;
        eprintln!("nexus: {} charts written to {}", written.len(), dir.display());
    }
    if let Some(Some(path)) = &args.json {
        let file = std::fs::File::create(path)
            .map_err(|e| Failure::runtime(format!("bench: cannot create {}: {e}", path.display())))?;
        let mut file = std::io::BufWriter::new(file);
        write_json(&mut file, records)
            .and_then(|()| file.flush())
            .map_err(|e| Failure::runtime(format!("bench: cannot write {}: {e}", path.display())))?;
        eprintln!("nexus: {} records written to {}", records.len(), path.display());
    }
    Ok(())
}

/// Prints the results on stdout: the JSON lines for a bare `--json`, else the header, the
/// tables, the skipped peer runs and the message-path targets this run measured.
fn print_results(
    args: &BenchArgs,
    suite: &Suite,
    plan: &PlacementPlan,
    notes: &[String],
    records: &[Record],
    skipped: &[Skip],
    repeat: u32,
) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    let written = if matches!(args.json, Some(None)) {
        write_json(&mut out, records)
    } else {
        let header = header(args, suite, plan, notes, repeat);
        let mut skipped_lines = String::new();
        for s in skipped {
            skipped_lines.push_str(&format!("\nskipped: {} {} {}: {}", s.workload, s.system, s.placement, s.reason));
        }
        // The message-path targets, judged from this run's records (those it measured).
        let targets = nexus_bench::targets::evaluate(records);
        let targets = if targets.iter().any(|t| t.met.is_some()) {
            format!("\n\n{}", nexus_bench::targets::render(&targets).trim_end())
        } else {
            String::new()
        };
        writeln!(out, "{header}\n\n{}{skipped_lines}{targets}", render_tables(records).trim_end())
    };
    written.and_then(|()| out.flush()).map_err(|e| Failure::runtime(format!("bench: cannot write the results: {e}")))
}

/// The header of the tables: shards, CPUs, executor, sizes, rounds and minimum run time, the
/// machine's CPU model when known, and the planning notes; `repeat` is the rounds per figure.
fn header(args: &BenchArgs, suite: &Suite, plan: &PlacementPlan, notes: &[String], repeat: u32) -> String {
    let cpus: Vec<String> = plan.cpus().iter().map(usize::to_string).collect();
    let mut header = format!(
        "nexus bench: {} shards on CPUs {} ({} executor, pinned), {} sizes, medians of {} rounds (min–max) \
         where repeated, each run at least {} ms",
        suite.settings.shards,
        cpus.join(","),
        suite.settings.executor.name(),
        if args.large { "large" } else { "Savina" },
        repeat,
        suite.plan.min_round.as_millis(),
    );
    if let Some(model) = cpu_model() {
        header.push_str(&format!(
            "\nmachine: {model}, {} CPUs",
            std::thread::available_parallelism().map_or(0, |n| n.get())
        ));
    }
    for note in notes {
        header.push('\n');
        header.push_str(note);
    }
    header
}

/// `nexus bench server`: checks the options that apply to it and runs it.
fn server(args: BenchArgs, repeat: u32, executor: ExecutorKind) -> Result<(), Failure> {
    let refused = [(args.peers, "--peers"), (args.plot.is_some(), "--plot"), (args.large, "--large")];
    if let Some((_, option)) = refused.iter().find(|(given, _)| *given) {
        return Err(Failure::usage(format!(
            "bench: {option} does not apply to `nexus bench server`; hint: it takes --shards, --persistence, \
             --recovery, --requests, --clients, --repeat, --json, --executor and --passes-before-yield"
        )));
    }
    if args.target_port.is_some() && (args.shards.len() > 1 || args.persistence || args.recovery.is_some()) {
        return Err(Failure::usage(
            "bench: --target-port measures one server; hint: leave out --persistence, --recovery and the list of shards",
        ));
    }
    if args.recovery == Some(0) {
        return Err(Failure::usage("bench: --recovery needs at least 1 key; hint: the default is 1000000"));
    }
    if args.requests == Some(0) {
        return Err(Failure::usage("bench: --requests must be at least 1; hint: the default is 200000"));
    }
    if args.clients == Some(0) {
        return Err(Failure::usage("bench: --clients must be at least 1; hint: the default is 50"));
    }
    if args.client_threads == Some(0) {
        return Err(Failure::usage("bench: --client-threads must be at least 1; hint: the default is 1"));
    }
    crate::bench_server::bench_server(&crate::bench_server::ServerBenchArgs {
        repeat,
        shards: args.shards,
        clients: args.clients.unwrap_or(SERVER_CLIENTS_DEFAULT),
        client_threads: args.client_threads.unwrap_or(1),
        requests: args.requests.unwrap_or(SERVER_REQUESTS_DEFAULT),
        passes_before_yield: args.passes_before_yield,
        executor,
        target_port: args.target_port,
        persistence: args.persistence,
        recovery: args.recovery,
        json: args.json,
    })
}

/// `nexus bench idle`: checks the options that apply to it and runs it.
fn idle(args: &BenchArgs) -> Result<(), Failure> {
    only_for(args, "idle", &["--duration", "--executor", "--shards", "--json"])?;
    let shards = one_shard_count(args)?;
    if shards == Some(0) {
        return Err(Failure::usage("bench: --shards must be at least 1; hint: leave it out for one per core"));
    }
    crate::bench_idle::bench_idle(&crate::bench_idle::IdleArgs {
        duration: args.duration.unwrap_or(IDLE_DURATION_DEFAULT),
        executors: args.executor.unwrap_or(Executors::Both),
        shards,
        json: args.json.clone(),
    })
}

/// `nexus bench tracing`: refuses the options that do not apply and hands the rest over
/// (`bench_tracing` checks their values).
fn tracing(args: BenchArgs) -> Result<(), Failure> {
    let takes = ["--shards", "--executor", "--repeat", "--round-ms", "--untraced-bin", "--json"];
    let internal = ["--child-round", "--child-sample", "--child-size"];
    only_for(&args, "tracing", &[&takes[..], &internal[..]].concat())?;
    crate::bench_tracing::bench_tracing(crate::bench_tracing::TracingOptions {
        shards: one_shard_count(&args)?,
        executor: args.executor.map(|e| single_executor(Some(e))).transpose()?,
        repeat: args.repeat,
        round_ms: args.round_ms,
        untraced_bin: args.untraced_bin,
        json: args.json,
        child_round: args.child_round,
        child_sample: args.child_sample,
        child_size: args.child_size,
    })
}

/// `nexus bench compare`: checks its arguments and runs it.
fn compare(args: &BenchArgs) -> Result<(), Failure> {
    only_for(args, "compare", &["--threshold"])?;
    let [old, new] = args.files.as_slice() else {
        return Err(Failure::usage(format!(
            "bench: compare takes two files, OLD and NEW ({} given); hint: nexus bench compare old.jsonl new.jsonl",
            args.files.len()
        )));
    };
    let threshold_pct = args.threshold.unwrap_or(crate::bench_compare::DEFAULT_THRESHOLD_PCT);
    if !threshold_pct.is_finite() || threshold_pct < 0.0 {
        return Err(Failure::usage(format!(
            "bench: --threshold {threshold_pct} is not a percentage of at least 0; hint: the default is 5"
        )));
    }
    crate::bench_compare::bench_compare(&crate::bench_compare::CompareArgs {
        old: old.clone(),
        new: new.clone(),
        threshold_pct,
    })
}

/// `--executor` for the workloads that run one executor: `auto` when not given; `both` refused.
fn single_executor(executor: Option<Executors>) -> Result<ExecutorKind, Failure> {
    match executor {
        None => Ok(ExecutorKind::Auto),
        Some(Executors::One(kind)) => Ok(kind),
        Some(Executors::Both) => Err(Failure::usage(
            "bench: --executor both applies to `nexus bench idle` only; hint: use glommio, threads or auto",
        )),
    }
}

/// For the workloads other than `idle`, `compare` and `tracing`: refuses the file arguments
/// and the options that belong to those three.
fn refuse_special_options(args: &BenchArgs) -> Result<(), Failure> {
    if !args.files.is_empty() {
        return Err(Failure::usage(
            "bench: only `nexus bench compare OLD NEW` takes file arguments; hint: --json FILE names an output file",
        ));
    }
    for (given, option, owner) in [
        (args.duration.is_some(), "--duration", "idle"),
        (args.threshold.is_some(), "--threshold", "compare"),
        (args.untraced_bin.is_some(), "--untraced-bin", "tracing"),
        (args.round_ms.is_some(), "--round-ms", "tracing"),
        (
            args.child_round.is_some() || args.child_sample.is_some() || args.child_size.is_some(),
            "--child-round",
            "tracing",
        ),
    ] {
        if given {
            return Err(Failure::usage(format!(
                "bench: {option} applies to `nexus bench {owner}` only; hint: see nexus bench --help"
            )));
        }
    }
    Ok(())
}

/// For `idle`, `compare` and `tracing` (`workload`): refuses every option given that is not in
/// `takes`, and file arguments except for `compare`.
fn only_for(args: &BenchArgs, workload: &str, takes: &[&str]) -> Result<(), Failure> {
    let given = [
        (!args.shards.is_empty(), "--shards"),
        (args.json.is_some(), "--json"),
        (args.peers, "--peers"),
        (args.plot.is_some(), "--plot"),
        (args.large, "--large"),
        (args.repeat.is_some(), "--repeat"),
        (args.executor.is_some(), "--executor"),
        (args.passes_before_yield.is_some(), "--passes-before-yield"),
        (args.requests.is_some(), "--requests"),
        (args.clients.is_some(), "--clients"),
        (args.target_port.is_some(), "--target-port"),
        (args.persistence, "--persistence"),
        (args.recovery.is_some(), "--recovery"),
        (args.duration.is_some(), "--duration"),
        (args.threshold.is_some(), "--threshold"),
        (args.untraced_bin.is_some(), "--untraced-bin"),
        (args.round_ms.is_some(), "--round-ms"),
        (args.child_round.is_some(), "--child-round"),
        (args.child_sample.is_some(), "--child-sample"),
        (args.child_size.is_some(), "--child-size"),
    ];
    if let Some((_, option)) = given.iter().find(|(g, option)| *g && !takes.contains(option)) {
        // The internal options (`--child-*`) are left out of the hint.
        let public: Vec<&str> = takes.iter().copied().filter(|t| !t.starts_with("--child-")).collect();
        let takes = if public.is_empty() { "no option".to_string() } else { public.join(", ") };
        return Err(Failure::usage(format!(
            "bench: {option} does not apply to `nexus bench {workload}`; hint: it takes {takes}"
        )));
    }
    if workload != "compare" && !args.files.is_empty() {
        return Err(Failure::usage(format!(
            "bench: {workload} takes no file argument; hint: files are for `nexus bench compare OLD NEW`"
        )));
    }
    Ok(())
}

/// A `--duration`: a number with `ms`, `s` or `m`, or bare seconds; more than zero.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60.0)
    } else {
        (text, 1.0)
    };
    let bad = || format!("{text:?} is not a duration; use 10s, 500ms, 2m or a number of seconds");
    let value: f64 = number.trim().parse().map_err(|_| bad())?;
    let seconds = value * scale;
    if !seconds.is_finite() || seconds <= 0.0 || seconds > 86_400.0 {
        return Err(format!("{text:?} is out of range; give more than 0 and at most a day"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Rows of cells as aligned columns, two spaces apart: the columns in `left` aligned left,
/// the rest (numbers) right. The first row is the header.
pub(crate) fn columns(rows: &[Vec<String>], left: &[usize]) -> String {
    let count = rows.iter().map(Vec::len).max().unwrap_or(0);
    let width = |c: usize| rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..count).map(width).collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(c, (cell, &w))| if left.contains(&c) { format!("{cell:<w$}") } else { format!("{cell:>w$}") })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// One JSON object per record and line.
pub(crate) fn write_json(out: &mut impl Write, records: &[Record]) -> std::io::Result<()> {
    for r in records {
        writeln!(out, "{}", r.to_json())?;
    }
    Ok(())
}

/// A bench error as a command failure: parameters are usage errors (exit 2), the rest runtime
/// errors (exit 1).
fn failure(e: BenchError) -> Failure {
    if e.is_usage() {
        Failure::usage(format!("bench: {e}"))
    } else {
        Failure::runtime(format!("bench: {e}"))
    }
}

/// The CPU model from /proc/cpuinfo, for the table header.
pub(crate) fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_string())
}

/// `[#####-----] 5/10`: a 20-cell bar of the steps started so far.
fn bar(step: usize, steps: usize) -> String {
    const CELLS: usize = 20;
    let filled = (step.min(steps) * CELLS).checked_div(steps).unwrap_or(CELLS);
    format!("[{}{}] {step}/{steps}", "#".repeat(filled), "-".repeat(CELLS - filled))
}

/// The progress line on stderr: a bar rewritten in place on a terminal, one line per step
/// otherwise (logs stay readable).
pub(crate) struct Progress {
    terminal: bool,
    shown: bool,
}

impl Progress {
    pub(crate) fn new() -> Self {
        Self { terminal: std::io::stderr().is_terminal(), shown: false }
    }

    pub(crate) fn show(&mut self, step: usize, steps: usize, label: &str) {
        let mut err = std::io::stderr().lock();
        let _ = if self.terminal {
            write!(err, "\r\x1b[K{} {label}...", bar(step, steps))
        } else {
            writeln!(err, "[{step}/{steps}] {label}...")
        };
        let _ = err.flush();
        self.shown = true;
    }

    pub(crate) fn finish(&mut self) {
        if self.terminal && self.shown {
            let _ = write!(std::io::stderr(), "\r\x1b[K");
        }
    }
}

/// Resolves `--executor` for `shards` shards on this machine, printing `auto`'s fallback line.
pub(crate) fn resolve_executor(requested: ExecutorKind, shards: usize) -> Result<ExecutorKind, Failure> {
    let selection = nexus_engine::executor::select(requested, shards, &nexus_engine::executor::Machine::probe())
        .map_err(|e| Failure::runtime(format!("bench: {e}")))?;
    if let Some(warning) = &selection.warning {
        eprintln!("nexus: {warning}");
    }
    Ok(selection.kind)
}

/// What the engine-level scenarios (`restart`, `coord`) are run with.
pub(crate) struct ScenarioArgs {
    pub(crate) settings: EngineSettings,
    pub(crate) repeat: u32,
    pub(crate) json: Option<Option<PathBuf>>,
}

/// Writes a scenario's results: with `--json`, the records on stdout; with `--json FILE`, the
/// records into FILE and the table (written by `table`) on stdout; otherwise the table.
pub(crate) fn emit(
    json: &Option<Option<PathBuf>>,
    records: &[Record],
    table: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match json {
        Some(None) => write_json(&mut out, records),
        Some(Some(path)) => std::fs::File::create(path)
            .and_then(|mut f| write_json(&mut f, records))
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))
            .and_then(|()| table(&mut out)),
        None => table(&mut out),
    }
    .and_then(|()| out.flush())
}

/// Shuts `engine` down and checks that its accounting balances (dead letters allowed: the
/// restart scenario panics on purpose), naming `what` in the error.
pub(crate) fn shutdown_accounted(engine: nexus_engine::engine::Engine, what: &str) -> Result<(), Failure> {
    let report = engine.shutdown().map_err(|e| Failure::runtime(format!("{what}: {e}")))?;
    if !report.stats.accounted() {
        return Err(Failure::runtime(format!(
            "{what}: the accounting does not balance at shutdown: {}",
            report.stats.accounting_line()
        )));
    }
    Ok(())
}
