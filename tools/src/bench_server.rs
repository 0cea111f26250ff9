//! `nexus bench server`: redis-benchmark on loopback against `nexus run` and against a
//! redis-server started for the run, interleaved, with medians and pairwise ratios.
//!
//! 1. Check that `redis-benchmark` and `redis-server` run (else exit 1, hint: tools/setup.sh),
//!    and plan the shards as `nexus run` will (more shards than cores: oversubscribed, noted).
//! 2. Pick two free loopback ports. Start `nexus run --config FILE` (this binary; the config,
//!    written by [`config_text`], serves RESP alone: no agents, no built-in load, no metrics
//!    endpoint) and `redis-server` without persistence, their output into log files in a
//!    scratch directory. A server that exits, or does not answer `PING` within
//!    [`crate::child::START_TIMEOUT`], fails the command with the last line of its log (a taken
//!    port says so).
//! 3. For each round r in 1..=K, for SET, GET, INCR (GET after SET, so keys exist), each at
//!    pipeline 1 and 16: run [`benchmark_args`] against both servers back to back, nexus first
//!    in odd rounds and redis first in even ones. A run must exit 0 within [`run_timeout`] and
//!    print its test's CSV row with the `rps`, `p50_latency_ms` and `p99_latency_ms` columns
//!    ([`figures::parse_csv`]); both servers must be alive before and after each run.
//! 4. Check that both servers hold keys (`DBSIZE` > 0): the SETs did land.
//! 5. Stop both servers (SIGTERM, then SIGKILL after [`crate::child::STOP_TIMEOUT`]). The
//!    [`Process`] guard does it on every path out, errors and panics included; the scratch
//!    directory goes with [`Scratch`]'s drop. The guard, the scratch directory, the ports and the
//!    shard plan come from [`crate::child`], shared with `nexus bench idle`.
//! 6. Report per test and pipeline ([`figures::summarize`]): each server's median requests/s,
//!    p50 and p99, and the median of the per-round ratios nexus/redis; then the target
//!    ([`figures::verdicts`]): at pipeline 16, at least 1.5x redis-server's throughput with a
//!    median p99 no worse, "met" or "not met" per test.
//!
//! Every figure is a number redis-benchmark printed in this run; nothing is estimated. Only the
//! main thread runs here; the children are separate processes.

mod figures;

use crate::bench::{cpu_model, write_json, Progress};
use crate::child::{dbsize, free_ports, info_field, plan_shards, ChildError, Process, Scratch};
use crate::Failure;
use figures::PIPELINES;
use figures::{
    grouped, parse_csv, records, render_table, render_verdicts, summarize, verdicts, Figures, Summary, Test,
};
use nexus_bench::report::{today_utc, Record};
use nexus_engine::placement::PlacementPlan;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{ErrorKind, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

/// What to do when redis-server or redis-benchmark does not start.
const SETUP_HINT: &str = "run tools/setup.sh (it installs redis-server and redis-tools)";
/// What to do when `nexus run` (this binary) does not start.
const NEXUS_HINT: &str = "rebuild it with cargo build --release -p nexus-tools --bin nexus";

/// redis-benchmark's `-r`: random keys drawn from this many.
pub const KEYSPACE: u64 = 100_000;
/// The shortest time a redis-benchmark run is allowed ([`run_timeout`]).
const RUN_TIMEOUT_MIN: Duration = Duration::from_secs(60);
/// The slowest rate a redis-benchmark run is allowed before it counts as hung (requests/s).
const RUN_RATE_FLOOR_PER_S: u64 = 2_000;

/// Options of `nexus bench server` (checked by `nexus bench`: every count at least 1).
#[derive(Debug)]
pub struct ServerBenchArgs {
    /// Rounds (K).
    pub repeat: u32,
    /// Nexus shards (`None`: the config's default, one per physical core).
    pub shards: Option<usize>,
    /// redis-benchmark's `-c`.
    pub clients: u32,
    /// redis-benchmark's `-n`, per run.
    pub requests: u64,
    /// `[idle] passes_before_yield` for nexus (`None`: the engine's default).
    pub passes_before_yield: Option<u32>,
    /// The executor `nexus run` uses (`auto` is resolved here, for the planned shards).
    pub executor: nexus_engine::executor::ExecutorKind,
    /// Development: measure the server already listening on this port as the "nexus" side
    /// instead of starting `nexus run`.
    pub target_port: Option<u16>,
    /// `--json`: `Some(None)` JSON lines on stdout instead of the table, `Some(Some(file))`
    /// JSON lines into the file as well as the table.
    pub json: Option<Option<PathBuf>>,
}

/// What the report's header says about the run.
struct Setup {
    benchmark_version: String,
    redis_version: String,
    plan: PlacementPlan,
    executor: nexus_engine::executor::ExecutorKind,
    oversubscribe: bool,
    nexus_port: u16,
    redis_port: u16,
    /// `DBSIZE` of nexus and redis after the runs.
    keys: [u64; 2],
}

/// Runs `nexus bench server`.
pub fn bench_server(args: &ServerBenchArgs) -> Result<(), Failure> {
    let benchmark_version = tool_version("redis-benchmark", "redis-tools")?;
    let redis_version = tool_version("redis-server", "redis-server")?;
    let (plan, oversubscribe) = plan_shards(args.shards, "bench server").map_err(fail)?;
    let executor = crate::bench::resolve_executor(args.executor, plan.len())?;
    let scratch = Scratch::create("bench-server").map_err(fail)?;
    let (nexus_port, redis_port) = free_ports().map_err(fail)?;
    let nexus_port = args.target_port.unwrap_or(nexus_port);

    // Start both, then wait for both: their start-ups overlap.
    let mut nexus = match args.target_port {
        Some(port) => Process::external("the server on --target-port", port),
        None => {
            let config = scratch.path("nexus.toml");
            let text = config_text(nexus_port, args.shards, oversubscribe, args.passes_before_yield);
            std::fs::write(&config, text)
                .map_err(|e| Failure::runtime(format!("bench server: cannot write {}: {e}", config.display())))?;
            let exe = std::env::current_exe()
                .map_err(|e| Failure::runtime(format!("bench server: cannot find the nexus binary: {e}")))?;
            let mut cmd = Command::new(exe);
            cmd.arg("run").arg("--config").arg(&config).arg("--executor").arg(executor.name());
            Process::server("nexus run", cmd, nexus_port, scratch.path("nexus.log"), NEXUS_HINT).map_err(fail)?
        }
    };
    let mut cmd = Command::new("redis-server");
    cmd.args(["--port", &redis_port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
    cmd.args(["--daemonize", "no", "--logfile", ""]).arg("--dir").arg(&scratch.dir);
    let mut redis =
        Process::server("redis-server", cmd, redis_port, scratch.path("redis.log"), SETUP_HINT).map_err(fail)?;
    eprintln!("nexus: bench server: starting nexus run on port {nexus_port} and redis-server on port {redis_port}");
    nexus.wait_ready().map_err(fail)?;
    redis.wait_ready().map_err(fail)?;
    if let Some(running) = info_field(nexus_port, "shards").and_then(|v| v.parse::<usize>().ok()) {
        if running != plan.len() {
            eprintln!("nexus: bench server: note: nexus run reports {running} shards, {} were planned", plan.len());
        }
    }

    let summaries = measure(args, &scratch, &mut nexus, &mut redis)?;
    let keys = [dbsize(&nexus).map_err(fail)?, dbsize(&redis).map_err(fail)?];
    for (process, keys) in [(&nexus, keys[0]), (&redis, keys[1])] {
        if keys == 0 {
            return Err(Failure::runtime(format!(
                "bench server: {} holds no keys after the SET runs, so its figures do not measure SET; \
                 hint: check it with redis-cli -p {} DBSIZE",
                process.name, process.port
            )));
        }
    }
    nexus.stop();
    redis.stop();
    let setup = Setup { benchmark_version, redis_version, plan, executor, oversubscribe, nexus_port, redis_port, keys };
    report(args, &setup, &summaries)
}

/// The rounds: every (test, pipeline) against both servers, interleaved; one summary per
/// (test, pipeline), in run order.
fn measure(
    args: &ServerBenchArgs,
    scratch: &Scratch,
    nexus: &mut Process,
    redis: &mut Process,
) -> Result<Vec<Summary>, Failure> {
    let cases: Vec<(Test, u32)> = Test::ALL.iter().flat_map(|&t| PIPELINES.map(|p| (t, p))).collect();
    // samples[case][side], side 0 = nexus, 1 = redis; one entry per round.
    let mut samples: Vec<[Vec<Figures>; 2]> = vec![[Vec::new(), Vec::new()]; cases.len()];
    let rounds = args.repeat as usize;
    let steps = rounds * cases.len() * 2;
    let mut progress = Progress::new();
    let mut step = 0;
    let mut rounds_run = || -> Result<(), Failure> {
        for round in 1..=rounds {
            for (case, &(test, pipeline)) in cases.iter().enumerate() {
                // Nexus goes first in odd rounds, redis in even ones.
                let order = if round % 2 == 1 { [0, 1] } else { [1, 0] };
                for side in order {
                    step += 1;
                    let name = ["nexus", "redis"][side];
                    let label = format!("round {round}/{rounds}: {} -P {pipeline} on {name}", test.label());
                    progress.show(step, steps, &label);
                    nexus.check_alive().map_err(fail)?;
                    redis.check_alive().map_err(fail)?;
                    let port = [nexus.port, redis.port][side];
                    let run = run_benchmark(scratch, port, test, pipeline, args);
                    // A server that died explains a failed run better than the run does.
                    nexus.check_alive().map_err(fail)?;
                    redis.check_alive().map_err(fail)?;
                    samples[case][side].push(run.map_err(|e| Failure::runtime(format!("bench server: {name}: {e}")))?);
                }
            }
        }
        Ok(())
    };
    let result = rounds_run();
    progress.finish();
    result?;
    Ok(cases.iter().zip(&samples).map(|(&(t, p), [n, r])| summarize(t, p, n, r)).collect())
}

/// Prints the table and the target (or the JSON lines) and writes `--json FILE`.
fn report(args: &ServerBenchArgs, setup: &Setup, summaries: &[Summary]) -> Result<(), Failure> {
    let verdicts = verdicts(summaries);
    let shards = setup.plan.len();
    let cpus: Vec<String> = setup.plan.cpus().iter().map(usize::to_string).collect();
    let (cpus, date) = (cpus.join(","), today_utc());
    let records: Vec<Record> = records(summaries, &verdicts, args.repeat)
        .into_iter()
        .map(|r| if r.system == "nexus" { r.engine(shards, setup.executor.name()) } else { r })
        .map(|r| r.context(&cpus, &date, shards))
        .collect();
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
        let nexus_side = match args.target_port {
            Some(port) => format!("the server on --target-port {port} (not started here; {shards} shards planned)"),
            None => format!(
                "nexus run, {shards} shards on CPUs {cpus} ({}){}, port {}",
                setup.executor,
                if setup.oversubscribe { ", oversubscribed" } else { "" },
                setup.nexus_port
            ),
        };
        let mut header = format!(
            "nexus bench server: {} on loopback, {} clients, {} requests per run, -r {}, medians of {} \
             (ratio: median of the per-round nexus/redis)\nnexus: {nexus_side}\nredis: {}, port {}, no persistence",
            setup.benchmark_version,
            args.clients,
            grouped(args.requests),
            grouped(KEYSPACE),
            if args.repeat == 1 { "1 round".to_string() } else { format!("{} rounds", args.repeat) },
            setup.redis_version,
            setup.redis_port,
        );
        if let Some(model) = cpu_model() {
            let n = std::thread::available_parallelism().map_or(0, |n| n.get());
            let _ = write!(header, "\nmachine: {model}, {n} CPUs (redis-benchmark shares them), {date}");
        }
        let [nexus_keys, redis_keys] = setup.keys.map(grouped);
        let _ = write!(header, "\nkeys after the run: nexus {nexus_keys}, redis {redis_keys}");
        writeln!(out, "{header}\n\n{}\n{}", render_table(summaries), render_verdicts(&verdicts).trim_end())
    };
    written
        .and_then(|()| out.flush())
        .map_err(|e| Failure::runtime(format!("bench server: cannot write the results: {e}")))
}

/// The config `nexus run` gets: RESP on `127.0.0.1:port` alone, no agents, no built-in load,
/// no metrics endpoint; `[placement]` only when shards are asked for or oversubscribed, `[idle]`
/// only for `passes_before_yield`. Everything else keeps the engine's defaults.
pub fn config_text(port: u16, shards: Option<usize>, oversubscribe: bool, passes_before_yield: Option<u32>) -> String {
    let mut text = String::from(
        "# Written by `nexus bench server`: the RESP server alone (no agents, no load, no metrics).\n\
         load = false\nagents = []\n",
    );
    if shards.is_some() || oversubscribe {
        text.push_str("\n[placement]\n");
        if let Some(n) = shards {
            let _ = writeln!(text, "shards = {n}");
        }
        let _ = writeln!(text, "oversubscribe = {oversubscribe}");
    }
    if let Some(passes) = passes_before_yield {
        let _ = write!(text, "\n[idle]\npasses_before_yield = {passes}\n");
    }
    let _ = write!(text, "\n[server]\nlisten = \"127.0.0.1:{port}\"\nmetrics_listen = \"\"\n");
    text
}

/// redis-benchmark's arguments for one run against `127.0.0.1:port`.
pub fn benchmark_args(port: u16, test: Test, pipeline: u32, clients: u32, requests: u64) -> Vec<String> {
    let mut args: Vec<String> = ["-h", "127.0.0.1", "-p"].map(String::from).to_vec();
    args.push(port.to_string());
    args.extend(["-c".into(), clients.to_string(), "-n".into(), requests.to_string()]);
    args.extend(["-P".into(), pipeline.to_string(), "-t".into(), test.arg().into()]);
    args.extend(["--csv".into(), "-r".into(), KEYSPACE.to_string()]);
    args
}

/// The longest a run of `requests` may take: [`RUN_TIMEOUT_MIN`], or the time at
/// [`RUN_RATE_FLOOR_PER_S`] when that is longer.
pub fn run_timeout(requests: u64) -> Duration {
    RUN_TIMEOUT_MIN.max(Duration::from_secs(requests / RUN_RATE_FLOOR_PER_S))
}

/// The first line of `name --version`; a missing program is an error with the setup hint.
fn tool_version(name: &str, package: &str) -> Result<String, Failure> {
    match Command::new(name).arg("--version").stdin(Stdio::null()).output() {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            let line = text.lines().next().unwrap_or(name).trim();
            // redis-server prints "Redis server v=7.0.15 sha=..."; keep the version.
            Ok(match line.split_whitespace().find_map(|w| w.strip_prefix("v=")) {
                Some(v) => format!("{name} {v}"),
                None => line.to_string(),
            })
        }
        Ok(out) => Err(Failure::runtime(format!(
            "bench server: `{name} --version` failed ({}); hint: run tools/setup.sh (it installs {package})",
            out.status
        ))),
        Err(e) if e.kind() == ErrorKind::NotFound => Err(Failure::runtime(format!(
            "bench server: {name} not found on PATH; hint: run tools/setup.sh (it installs {package})"
        ))),
        Err(e) => Err(Failure::runtime(format!("bench server: cannot run {name}: {e}; hint: run tools/setup.sh"))),
    }
}

/// A child's error as a command failure, named after this command.
fn fail(e: ChildError) -> Failure {
    if e.is_usage() {
        Failure::usage(format!("bench server: {e}"))
    } else {
        Failure::runtime(format!("bench server: {e}"))
    }
}

/// One redis-benchmark run against `port`, with output into the scratch directory; must exit
/// 0 within [`run_timeout`] and print `test`'s CSV row.
fn run_benchmark(
    scratch: &Scratch,
    port: u16,
    test: Test,
    pipeline: u32,
    args: &ServerBenchArgs,
) -> Result<Figures, String> {
    let (out_path, err_path) = (scratch.path("benchmark.csv"), scratch.path("benchmark.err"));
    let mut cmd = Command::new("redis-benchmark");
    cmd.args(benchmark_args(port, test, pipeline, args.clients, args.requests));
    let mut run =
        Process::tool("redis-benchmark", cmd, port, &out_path, err_path, SETUP_HINT).map_err(|e| e.to_string())?;
    let timeout = run_timeout(args.requests);
    let Some(status) = run.wait_timeout(timeout).map_err(|e| e.to_string())? else {
        return Err(format!(
            "redis-benchmark {} -P {pipeline} did not finish within {} s; hint: the server stopped answering",
            test.label(),
            timeout.as_secs()
        ));
    };
    if !status.success() {
        return Err(format!("redis-benchmark {} -P {pipeline} failed ({status}): {}", test.label(), run.log_tail()));
    }
    let text = std::fs::read_to_string(&out_path).map_err(|e| format!("cannot read {}: {e}", out_path.display()))?;
    parse_csv(&text, test).map_err(|e| format!("{} -P {pipeline}: {e}", test.label()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use nexus_engine::config::{EngineConfig, ShardCount};

    #[test]
    fn the_config_serves_resp_alone() {
        let text = config_text(41_234, Some(3), true, Some(8));
        let config = EngineConfig::from_toml_str(&text, "bench").expect("the config parses");
        crate::run::validate(&config).expect("the config is valid");
        assert!(config.agents.is_empty() && config.load.is_none());
        assert_eq!(config.placement.shards, ShardCount::Count(3));
        assert!(config.placement.oversubscribe);
        assert_eq!(config.idle.passes_before_yield, 8);
        assert!(config.server.enabled);
        assert_eq!((config.server.listen.as_str(), config.server.metrics_listen.as_str()), ("127.0.0.1:41234", ""));

        let plain = EngineConfig::from_toml_str(&config_text(7, None, false, None), "bench").expect("parses");
        assert_eq!(plain.placement, EngineConfig::default().placement);
        assert_eq!(plain.idle, EngineConfig::default().idle);
    }

    #[test]
    fn benchmark_arguments() {
        let args = benchmark_args(6380, Test::Incr, 16, 50, 200_000).join(" ");
        assert_eq!(args, "-h 127.0.0.1 -p 6380 -c 50 -n 200000 -P 16 -t incr --csv -r 100000");
        assert_eq!(run_timeout(1_000), RUN_TIMEOUT_MIN);
        assert_eq!(run_timeout(1_000_000), Duration::from_secs(500));
    }
}
