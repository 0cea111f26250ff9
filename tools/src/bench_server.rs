//! `nexus bench server`: redis-benchmark on loopback against `nexus run` (one or more
//! configurations) and against a redis-server started for the run, interleaved, with medians,
//! pairwise ratios and the targets.
//!
//! 1. Check that `redis-benchmark` and `redis-server` run (else exit 1, hint: tools/setup.sh),
//!    and plan the shards as `nexus run` will for each `--shards` count (more shards than cores:
//!    oversubscribed, noted).
//! 2. The nexus configurations ([`targets::NexusSide`]): one per shard count, without
//!    persistence; with `--persistence`, the first shard count again with `[persistence] mode =
//!    "aof"` at `fsync = "everysec"` and at `"always"`. A persistence config this binary's
//!    config parser refuses (a build without `[persistence]`) is skipped with a note. Each gets
//!    a free loopback port and its own `nexus run --config FILE` ([`config_text`]: RESP alone:
//!    no agents, no built-in load, no metrics endpoint); redis-server runs without persistence,
//!    pinned to the CPU of the first configuration's first shard, as that shard is (floating,
//!    it sometimes shared a CPU with redis-benchmark: GET `-P 16` read 0.83x of pinned).
//!    Their output goes into log files in a scratch directory. A server that exits, or does not
//!    answer `PING` within [`crate::child::START_TIMEOUT`], fails the command with the last line
//!    of its log (a taken port says so).
//! 3. For a warm-up round and then each round r in 1..=K, for SET, GET, INCR (GET after SET, so
//!    keys exist), each at pipeline 1 and 16: run [`benchmark_args`] against every server back
//!    to back, the order rotated by one each round. A run must exit 0 within [`run_timeout`] and
//!    print its test's CSV row with the `rps`, `p50_latency_ms` and `p99_latency_ms` columns
//!    ([`figures::parse_csv`]); every server must be alive before and after each run. The
//!    warm-up round runs `--requests` and is not recorded: a (test, pipeline) whose run there
//!    was shorter than [`MIN_RUN`] gets enough requests for the measured rounds
//!    ([`sized_requests`]), and one that still runs short gets more from the next round on; the
//!    short measured runs are counted and noted. Around each run a
//!    [`cpu::Meter`] reads its wall-clock time (spawn to reap), redis-benchmark's CPU time
//!    (`getrusage(RUSAGE_CHILDREN)` before the spawn and after the reap: no other child is
//!    reaped in between) and the measured server's (`utime + stime` of `/proc/PID/stat`, all
//!    threads; unknown for `--target-port`, whose process is not ours).
//! 4. Check that every server holds keys (`DBSIZE` > 0): the SETs did land. Stop them all
//!    (SIGTERM, then SIGKILL after [`crate::child::STOP_TIMEOUT`]); the [`Process`] guards do it
//!    on every path out, errors and panics included; the scratch directory goes with
//!    [`Scratch`]'s drop.
//! 5. With `--recovery`: `recovery` loads keys into a fresh aof nexus, restarts it and reads
//!    the recovery time from its log.
//! 6. Report per configuration ([`figures::summarize`]): medians, the median and min-max of the
//!    per-round ratios over redis-server (the aof rows: over the same nexus without persistence,
//!    pair by pair), and the targets ([`targets::goals`]), "met" or "not met" each. A second
//!    table gives each side's median CPU as % of one CPU, redis-benchmark's and the server's,
//!    and the server's requests per CPU-second with the median and min-max of their per-round
//!    ratios; a row where redis-benchmark ran at 90% of a CPU or more on either side is marked
//!    client-bound (its requests/s measure the load generator), and a target not met on such a
//!    row says so (its verdict unchanged).
//!
//! Every figure is a number redis-benchmark printed (or the server logged) or the kernel
//! accounted in this run; nothing is estimated. Only the main thread runs here (so no other
//! thread reaps a child while a run is metered); the children are separate processes.

mod cpu;
mod figures;
mod recovery;
mod report;
mod targets;

use crate::child::{dbsize, info_field, plan_shards, ChildError, Process, Scratch};
use crate::Failure;
use figures::{grouped, parse_csv, summarize, Run, Summary, Test, PIPELINES};
use nexus_engine::config::EngineConfig;
use nexus_engine::executor::ExecutorKind;
use nexus_engine::placement::PlacementPlan;
use std::fmt::Write as _;
use std::io::ErrorKind;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;
use targets::{goals, verdicts, Fsync, NexusSide};

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
/// The least load a run should carry; shorter runs are noted.
const MIN_RUN: Duration = Duration::from_millis(500);

/// Options of `nexus bench server` (checked by `nexus bench`: every count at least 1).
#[derive(Debug)]
pub struct ServerBenchArgs {
    /// Rounds (K).
    pub repeat: u32,
    /// Nexus shard counts, one nexus server each (empty: the config's default, one per
    /// physical core).
    pub shards: Vec<usize>,
    /// redis-benchmark's `-c`.
    pub clients: u32,
    /// redis-benchmark's `--threads` (1: not passed, its single-threaded default).
    pub client_threads: u32,
    /// redis-benchmark's `-n`, per run.
    pub requests: u64,
    /// `[idle] passes_before_yield` for nexus (`None`: the engine's default).
    pub passes_before_yield: Option<u32>,
    /// The executor `nexus run` uses (`auto` is resolved here, for the planned shards).
    pub executor: ExecutorKind,
    /// Development: measure the server already listening on this port as the "nexus" side
    /// instead of starting `nexus run`.
    pub target_port: Option<u16>,
    /// `--persistence`: add the aof rows (first shard count, fsync everysec and always).
    pub persistence: bool,
    /// `--recovery`: measure the recovery of this many keys after a restart (`None`: not).
    pub recovery: Option<u64>,
    /// `--json`: `Some(None)` JSON lines on stdout instead of the table, `Some(Some(file))`
    /// JSON lines into the file as well as the table.
    pub json: Option<Option<PathBuf>>,
}

/// One server measured: nexus in one configuration (`side` and its plan), or redis-server.
struct Server {
    label: String,
    side: Option<NexusSide>,
    plan: Option<PlacementPlan>,
    oversubscribe: bool,
    /// The CPU redis-server is pinned to (nexus pins its shards itself: see `plan`).
    pinned: Option<usize>,
    process: Process,
}

/// What the report's header says about the run.
struct Setup {
    benchmark_version: String,
    executor: ExecutorKind,
    /// Lines about the servers (one each) and notes.
    lines: Vec<String>,
}

/// Runs `nexus bench server`.
pub fn bench_server(args: &ServerBenchArgs) -> Result<(), Failure> {
    let benchmark_version = tool_version("redis-benchmark", "redis-tools")?;
    let redis_version = tool_version("redis-server", "redis-server")?;
    let scratch = Scratch::create("bench-server").map_err(fail)?;
    let (mut servers, executor, mut notes) = start_servers(args, &scratch)?;
    let (samples, short_runs) = measure(args, &scratch, &mut servers)?;
    let mut lines = Vec::new();
    for server in &servers {
        let keys = dbsize(&server.process).map_err(fail)?;
        if keys == 0 {
            return Err(Failure::runtime(format!(
                "bench server: {} holds no keys after the SET runs, so its figures do not measure SET; \
                 hint: check it with redis-cli -p {} DBSIZE",
                server.label, server.process.port
            )));
        }
        lines.push(describe(server, args.target_port, executor, keys, &redis_version));
    }
    for server in &mut servers {
        server.process.stop();
    }
    if short_runs > 0 {
        notes.push(format!(
            "note: {short_runs} measured runs carried less than {} ms of load (the warm-up round sizes a test \
             to at most 20 times --requests, and a server can speed up after it; such a run's server CPU is a \
             few clock ticks, coarse); raise --requests",
            MIN_RUN.as_millis()
        ));
    }
    let recovered = match args.recovery {
        Some(keys) => recovery::measure(args, &scratch, keys, executor)?.map_err(|note| notes.push(note)).ok(),
        None => None,
    };
    lines.extend(notes);
    let setup = Setup { benchmark_version, executor, lines };
    let comparisons = compare(&servers, &samples);
    report::report(args, &setup, &servers, &comparisons, recovered.as_ref())
}

/// The header line of one server.
fn describe(server: &Server, target_port: Option<u16>, executor: ExecutorKind, keys: u64, redis: &str) -> String {
    let port = server.process.port;
    let keys = grouped(keys);
    match (&server.plan, target_port) {
        (None, _) => {
            let cpu = server.pinned.map_or(String::new(), |cpu| format!("on CPU {cpu}, "));
            format!("redis: {redis}, {cpu}port {port}, no persistence; {keys} keys after the run")
        }
        (Some(plan), Some(_)) => format!(
            "nexus: the server on --target-port {port} (not started here; {} shards planned); {keys} keys",
            plan.len()
        ),
        (Some(plan), None) => {
            let cpus: Vec<String> = plan.cpus().iter().map(usize::to_string).collect();
            let mut line = format!("{}: nexus run on CPUs {} ({executor})", server.label, cpus.join(","));
            if server.oversubscribe {
                line.push_str(", oversubscribed");
            }
            let _ = write!(line, ", port {port}; {keys} keys after the run");
            line
        }
    }
}

/// `n` loopback ports nothing listens on right now (all bound at once, then released).
fn free_ports(n: usize) -> Result<Vec<u16>, Failure> {
    let bind = || -> std::io::Result<(TcpListener, u16)> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        Ok((listener, port))
    };
    let bound: Vec<(TcpListener, u16)> = (0..n)
        .map(|_| bind())
        .collect::<std::io::Result<_>>()
        .map_err(|e| Failure::runtime(format!("bench server: no free loopback port: {e}")))?;
    Ok(bound.into_iter().map(|(_, port)| port).collect())
}

/// The nexus configurations to measure, each with its plan and whether it oversubscribes.
fn plan_sides(args: &ServerBenchArgs) -> Result<Vec<(NexusSide, PlacementPlan, bool)>, Failure> {
    let counts: Vec<Option<usize>> =
        if args.shards.is_empty() { vec![None] } else { args.shards.iter().copied().map(Some).collect() };
    let mut sides = Vec::new();
    for count in counts {
        let (plan, oversubscribe) = plan_shards(count, "bench server").map_err(fail)?;
        sides.push((NexusSide { shards: plan.len(), aof: None }, plan, oversubscribe));
    }
    if args.persistence {
        let (first, plan, oversubscribe) = sides[0].clone();
        for fsync in [Fsync::EverySec, Fsync::Always] {
            sides.push((NexusSide { aof: Some(fsync), ..first }, plan.clone(), oversubscribe));
        }
    }
    Ok(sides)
}

/// Whether this binary's config parser takes the config `text` (`Err`: its one-line refusal).
fn accepted(text: &str) -> Result<(), String> {
    let config = EngineConfig::from_toml_str(text, "bench").map_err(|e| e.to_string())?;
    crate::run::validate(&config).map_err(|e| e.to_string())
}

/// The config of nexus configuration `side` on `port` (aof logs under `dir`).
fn side_config(
    args: &ServerBenchArgs,
    side: &NexusSide,
    oversubscribe: bool,
    port: u16,
    dir: &std::path::Path,
) -> String {
    let mut text = config_text(port, Some(side.shards), oversubscribe, args.passes_before_yield);
    text.push_str(&side.persistence_toml(dir));
    text
}

/// Starts every server and waits until each answers: the nexus configurations (a refused
/// persistence config skipped, with a note), then redis-server.
fn start_servers(
    args: &ServerBenchArgs,
    scratch: &Scratch,
) -> Result<(Vec<Server>, ExecutorKind, Vec<String>), Failure> {
    let sides = plan_sides(args)?;
    // redis-server runs on the CPU of the first configuration's first shard, pinned as that
    // shard is: both servers then get one CPU of their own, and redis-benchmark the other.
    let redis_cpu = sides.first().and_then(|(_, plan, _)| plan.cpus().first().copied()).unwrap_or(0);
    let widest = sides.iter().map(|(s, _, _)| s.shards).max().unwrap_or(1);
    let executor = crate::bench::resolve_executor(args.executor, widest)?;
    let ports = free_ports(sides.len() + 1)?;
    let (mut servers, mut notes) = (Vec::new(), Vec::new());
    for (i, (side, plan, oversubscribe)) in sides.into_iter().enumerate() {
        let label = side.label();
        let process = match args.target_port {
            Some(port) => Process::external("the server on --target-port", port),
            None => {
                let text = side_config(args, &side, oversubscribe, ports[i], &scratch.path(&format!("aof-{i}")));
                if let Err(why) = accepted(&text) {
                    let note = format!("note: {label} skipped: this nexus refuses its config: {why}");
                    eprintln!("nexus: bench server: {note}");
                    notes.push(note);
                    continue;
                }
                start_nexus(scratch, &format!("nexus-{i}"), &text, ports[i], executor)?
            }
        };
        servers.push(Server { label, side: Some(side), plan: Some(plan), oversubscribe, pinned: None, process });
    }
    let redis_port = ports[ports.len() - 1];
    let mut cmd = Command::new("redis-server");
    cmd.args(["--port", &redis_port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
    cmd.args(["--daemonize", "no", "--logfile", ""]).arg("--dir").arg(&scratch.dir);
    Process::pin_to_cpu(&mut cmd, redis_cpu);
    let process =
        Process::server("redis-server", cmd, redis_port, scratch.path("redis.log"), SETUP_HINT).map_err(fail)?;
    servers.push(Server {
        label: "redis".into(),
        side: None,
        plan: None,
        oversubscribe: false,
        pinned: Some(redis_cpu),
        process,
    });
    let ports: Vec<String> = servers.iter().map(|s| format!("{} on port {}", s.label, s.process.port)).collect();
    eprintln!("nexus: bench server: starting {}", ports.join(", "));
    for server in &mut servers {
        server.process.wait_ready().map_err(fail)?;
        let running = info_field(server.process.port, "shards").and_then(|v| v.parse::<usize>().ok());
        if let (Some(side), Some(running)) = (server.side, running) {
            if running != side.shards {
                eprintln!("nexus: bench server: note: {} reports {running} shards", server.label);
            }
        }
    }
    Ok((servers, executor, notes))
}

/// Writes `text` as `name.toml` and starts `nexus run` (this binary) with it on `port`, its
/// output into `name.log`. Does not wait for it.
fn start_nexus(
    scratch: &Scratch,
    name: &str,
    text: &str,
    port: u16,
    executor: ExecutorKind,
) -> Result<Process, Failure> {
    let config = scratch.path(&format!("{name}.toml"));
    std::fs::write(&config, text)
        .map_err(|e| Failure::runtime(format!("bench server: cannot write {}: {e}", config.display())))?;
    let exe = std::env::current_exe()
        .map_err(|e| Failure::runtime(format!("bench server: cannot find the nexus binary: {e}")))?;
    let mut cmd = Command::new(exe);
    cmd.arg("run").arg("--config").arg(&config).arg("--executor").arg(executor.name());
    Process::server("nexus run", cmd, port, scratch.path(&format!("{name}.log")), NEXUS_HINT).map_err(fail)
}

/// Per-round runs: `samples[case][server]`, one entry per round.
type Samples = Vec<Vec<Vec<Run>>>;

/// Every (test, pipeline), in run order.
fn cases() -> Vec<(Test, u32)> {
    Test::ALL.iter().flat_map(|&t| PIPELINES.map(|p| (t, p))).collect()
}

/// The rounds: every (test, pipeline) against every server, the order rotated each round, all
/// servers of a round at the same request count; the samples, and how many measured runs were
/// shorter than [`MIN_RUN`]. A warm-up round at `--requests` comes first and is not recorded:
/// it sizes each (test, pipeline) so that the measured rounds last at least [`MIN_RUN`]
/// ([`sized_requests`]), and it fills the keyspace before any measured GET. A (test, pipeline)
/// that still ran short gets more requests from the next round on.
fn measure(args: &ServerBenchArgs, scratch: &Scratch, servers: &mut [Server]) -> Result<(Samples, usize), Failure> {
    let cases = cases();
    let n = servers.len();
    let mut samples: Samples = vec![vec![Vec::new(); n]; cases.len()];
    let rounds = args.repeat as usize;
    let steps = (rounds + 1) * cases.len() * n;
    let (mut progress, mut step, mut short) = (crate::bench::Progress::new(), 0, 0);
    let mut requests = vec![args.requests; cases.len()];
    let mut rounds_run = || -> Result<(), Failure> {
        for round in 0..=rounds {
            for (case, &(test, pipeline)) in cases.iter().enumerate() {
                let mut fastest: f64 = 0.0;
                for k in 0..n {
                    let side = (k + round) % n;
                    step += 1;
                    let name = servers[side].label.clone();
                    let label = match round {
                        0 => format!("warm-up: {} -P {pipeline} on {name}", test.label()),
                        _ => format!("round {round}/{rounds}: {} -P {pipeline} on {name}", test.label()),
                    };
                    progress.show(step, steps, &label);
                    check_all(servers)?;
                    let server = &servers[side].process;
                    let run = run_benchmark(scratch, server, (test, pipeline), requests[case], args);
                    // A server that died explains a failed run better than the run does.
                    check_all(servers)?;
                    let run = run.map_err(|e| Failure::runtime(format!("bench server: {name}: {e}")))?;
                    fastest = fastest.max(run.figures.rps);
                    if round > 0 {
                        short += usize::from((requests[case] as f64 / run.figures.rps) < MIN_RUN.as_secs_f64());
                        samples[case][side].push(run);
                    }
                }
                requests[case] = sized_requests(requests[case], fastest);
            }
        }
        Ok(())
    };
    let result = rounds_run();
    progress.finish();
    result?;
    Ok((samples, short))
}

/// An error when any server has exited.
fn check_all(servers: &mut [Server]) -> Result<(), Failure> {
    servers.iter_mut().try_for_each(|s| s.process.check_alive().map_err(fail))
}

/// One comparison: server `subject` against server `baseline` (redis-server, or the same
/// nexus without persistence), its summaries and its target verdicts.
struct Comparison {
    subject: usize,
    baseline: usize,
    summaries: Vec<Summary>,
    verdicts: Vec<targets::Verdict>,
}

/// The comparisons: every nexus configuration against redis-server (the last server), and
/// each aof one against the nexus without persistence it was started from, pair by pair.
fn compare(servers: &[Server], samples: &Samples) -> Vec<Comparison> {
    let redis = servers.len() - 1;
    let cases = cases();
    servers[..redis]
        .iter()
        .enumerate()
        .filter_map(|(i, server)| {
            let side = server.side?;
            let baseline = match side.aof {
                None => redis,
                Some(_) => servers.iter().position(|s| s.side == Some(NexusSide { aof: None, ..side }))?,
            };
            let summaries: Vec<Summary> = cases
                .iter()
                .enumerate()
                .map(|(c, &(t, p))| summarize(t, p, &samples[c][i], &samples[c][baseline]))
                .collect();
            let verdicts = verdicts(&goals(&side), &summaries);
            Some(Comparison { subject: i, baseline, summaries, verdicts })
        })
        .collect()
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
pub fn benchmark_args(
    port: u16,
    test: Test,
    pipeline: u32,
    (clients, threads): (u32, u32),
    requests: u64,
) -> Vec<String> {
    let mut args: Vec<String> = ["-h", "127.0.0.1", "-p"].map(String::from).to_vec();
    args.push(port.to_string());
    args.extend(["-c".into(), clients.to_string(), "-n".into(), requests.to_string()]);
    if threads > 1 {
        args.extend(["--threads".into(), threads.to_string()]);
    }
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

/// The request count of a (test, pipeline)'s next round: `current` when the fastest server
/// (`rps`) took at least [`MIN_RUN`] for it, else enough for 1.25 [`MIN_RUN`] at that rate
/// (whole thousands, at most 20 times `current`).
pub fn sized_requests(current: u64, rps: f64) -> u64 {
    if rps <= 0.0 || current as f64 / rps >= MIN_RUN.as_secs_f64() {
        return current;
    }
    let wanted = (rps * MIN_RUN.as_secs_f64() * 1.25 / 1000.0).ceil() as u64 * 1000;
    wanted.clamp(current, current.saturating_mul(20))
}

/// One redis-benchmark run against `server`, with output into the scratch directory; must exit
/// 0 within [`run_timeout`] and print `test`'s CSV row. Metered ([`cpu::Meter`]) from just
/// before the spawn to just after the reap.
fn run_benchmark(
    scratch: &Scratch,
    server: &Process,
    (test, pipeline): (Test, u32),
    requests: u64,
    args: &ServerBenchArgs,
) -> Result<Run, String> {
    let (out_path, err_path) = (scratch.path("benchmark.csv"), scratch.path("benchmark.err"));
    let mut cmd = Command::new("redis-benchmark");
    cmd.args(benchmark_args(server.port, test, pipeline, (args.clients, args.client_threads), requests));
    // The client's CPU is getrusage(RUSAGE_CHILDREN)'s growth from here to the reap: exact for
    // this one child (its whole lifetime, every thread, as accounted at its exit), where
    // /proc/PID/stat read before the reap would be tick-grained and miss its last moments.
    // Nothing else is reaped in between: `wait_timeout` polls this child alone, the servers
    // are checked (and a dead one reaped) only before and after, and no other thread waits.
    let meter = cpu::Meter::start(server.pid());
    let mut run = Process::tool("redis-benchmark", cmd, server.port, &out_path, err_path, SETUP_HINT)
        .map_err(|e| e.to_string())?;
    let timeout = run_timeout(requests);
    // `wait_timeout` reaps the child when it sees it exit (`Child::try_wait`).
    let Some(status) = run.wait_timeout(timeout).map_err(|e| e.to_string())? else {
        return Err(format!(
            "redis-benchmark {} -P {pipeline} did not finish within {} s; hint: the server stopped answering",
            test.label(),
            timeout.as_secs()
        ));
    };
    let usage = meter.finish(args.client_threads);
    if !status.success() {
        return Err(format!("redis-benchmark {} -P {pipeline} failed ({status}): {}", test.label(), run.log_tail()));
    }
    let text = std::fs::read_to_string(&out_path).map_err(|e| format!("cannot read {}: {e}", out_path.display()))?;
    let figures = parse_csv(&text, test).map_err(|e| format!("{} -P {pipeline}: {e}", test.label()))?;
    Ok(Run { figures, requests, usage })
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
    fn side_configs_are_checked_by_this_build() {
        let off = NexusSide { shards: 2, aof: None };
        let args = ServerBenchArgs {
            repeat: 1,
            shards: vec![2],
            clients: 1,
            client_threads: 1,
            requests: 1,
            passes_before_yield: None,
            executor: ExecutorKind::Threads,
            target_port: None,
            persistence: true,
            recovery: None,
            json: None,
        };
        let text = side_config(&args, &off, false, 7000, std::path::Path::new("/tmp/aof"));
        assert_eq!(accepted(&text), Ok(()));
        assert!(!text.contains("[persistence]"));
        let refused = accepted("[no_such_table]\nkey = 1\n").expect_err("an unknown table is refused");
        assert!(refused.contains("no_such_table"), "{refused}");
        let aof = NexusSide { aof: Some(Fsync::Always), ..off };
        assert!(side_config(&args, &aof, false, 7000, std::path::Path::new("/tmp/aof")).contains("fsync = \"always\""));
        assert_eq!(free_ports(3).map(|p| p.len()).ok(), Some(3));
    }

    #[test]
    fn benchmark_arguments() {
        let args = benchmark_args(6380, Test::Incr, 16, (50, 1), 200_000).join(" ");
        assert_eq!(args, "-h 127.0.0.1 -p 6380 -c 50 -n 200000 -P 16 -t incr --csv -r 100000");
        let threaded = benchmark_args(6380, Test::Get, 1, (50, 4), 200_000).join(" ");
        assert_eq!(threaded, "-h 127.0.0.1 -p 6380 -c 50 -n 200000 --threads 4 -P 1 -t get --csv -r 100000");
        assert_eq!(run_timeout(1_000), RUN_TIMEOUT_MIN);
        assert_eq!(run_timeout(1_000_000), Duration::from_secs(500));
    }

    #[test]
    fn short_runs_get_more_requests() {
        assert_eq!(sized_requests(200_000, 100_000.0), 200_000, "2 s is long enough");
        assert_eq!(sized_requests(200_000, 800_000.0), 500_000, "0.25 s: 1.25 x 0.5 s at 800k/s");
        assert_eq!(sized_requests(1_000, 10_000_000.0), 20_000, "at most 20 times more");
        assert_eq!(sized_requests(5_000, 0.0), 5_000);
    }
}
