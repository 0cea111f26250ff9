//! `nexus bench idle`: what `nexus run` costs while nothing happens: its CPU share and its
//! wake-ups with no client, no load and no message, per executor.
//!
//! For each executor asked for (`both`, the default, runs glommio then threads, and skips
//! glommio with a note where this machine cannot run it):
//!
//! 1. Pick two free loopback ports and start `nexus run --executor E --listen 127.0.0.1:P
//!    --metrics-listen 127.0.0.1:M` (this binary, the default config: its agents, no load; with
//!    `--shards N` a scratch config that sets only `[placement] shards`), its output into a log
//!    in a scratch directory ([`crate::child`], as `nexus bench server` does).
//! 2. Wait until it answers `PING` over RESP (up to [`crate::child::START_TIMEOUT`]), then let
//!    it settle for [`SETTLE`]. The shards it runs are the ones `INFO` reports.
//! 3. Take a [`Sample`]: `utime + stime` of the process from `/proc/PID/stat` (the kernel sums
//!    every thread there, live and exited, in clock ticks of `sysconf(_SC_CLK_TCK)`), the
//!    context switches of every thread (`voluntary_ctxt_switches` + `nonvoluntary_ctxt_switches`
//!    of `/proc/PID/task/*/status`; a thread that exits during the window takes its count
//!    with it) and the clock. Send nothing for the window (`--duration`, default 10 s), check
//!    that it still runs, and take the second sample.
//! 4. CPU share = CPU seconds / wall seconds * 100, in % of one core (the tick is 10 ms on
//!    most kernels: 0.1% resolution over 10 s); wake-ups = context switches per second.
//! 5. Stop it: SIGTERM, SIGKILL after [`crate::child::STOP_TIMEOUT`]; the guard does it on
//!    every path out.
//!
//! The table gives each executor's CPU share, wake-ups per second and threads against the
//! target: at most [`TARGET_PCT`]% of one core when idle. `--json` gives one record per figure
//! (`cpu_pct` in %, `ctx_switches_per_s`).

use crate::bench::{cpu_model, emit, Progress};
use crate::child::{free_ports, info_field, plan_shards, ChildError, Process, Scratch};
use crate::Failure;
use nexus_bench::report::{today_utc, Record};
use nexus_engine::executor::{self, ExecutorError, ExecutorKind, Machine};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// How long the server runs after its first `PONG` before the window opens.
pub const SETTLE: Duration = Duration::from_secs(1);
/// The idle target: at most this share of one core (%).
pub const TARGET_PCT: f64 = 1.0;

/// Which executors to measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Executors {
    /// One executor (`auto` resolved on this machine).
    One(ExecutorKind),
    /// Glommio then threads; glommio skipped, with a note, where it cannot run.
    Both,
}

impl std::str::FromStr for Executors {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "both" => Ok(Executors::Both),
            other => other.parse().map(Executors::One).map_err(|_| {
                format!("unknown executor {other:?}; use glommio, threads or auto (idle also takes both)")
            }),
        }
    }
}

/// Options of `nexus bench idle` (checked by `nexus bench`).
#[derive(Debug)]
pub struct IdleArgs {
    /// The measured window.
    pub duration: Duration,
    /// The executors.
    pub executors: Executors,
    /// Shards (`None`: the default config's).
    pub shards: Option<usize>,
    /// `--json`, as `nexus bench` takes it.
    pub json: Option<Option<PathBuf>>,
}

/// What can go wrong in `nexus bench idle`; one line each, with a hint where there is one.
#[derive(Debug, thiserror::Error)]
pub enum IdleError {
    /// Starting, watching or stopping `nexus run`.
    #[error(transparent)]
    Child(#[from] ChildError),
    /// `--executor glommio` where glommio cannot run.
    #[error("{0}")]
    Executor(ExecutorError),
    /// A file under /proc could not be read (the process may have exited).
    #[error("cannot read {}: {source}; hint: bench idle reads Linux's /proc; is nexus run still running?", path.display())]
    Proc {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file under /proc did not say what it should.
    #[error("cannot parse {}: {what}", path.display())]
    ProcFormat {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// `sysconf(_SC_CLK_TCK)` gave no tick length.
    #[error("sysconf(_SC_CLK_TCK) returned {0}; hint: bench idle needs Linux")]
    ClockTicks(libc::c_long),
    /// The scratch config could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl IdleError {
    fn failure(self) -> Failure {
        let usage = matches!(&self, IdleError::Child(e) if e.is_usage());
        let message = format!("bench idle: {self}");
        if usage {
            Failure::usage(message)
        } else {
            Failure::runtime(message)
        }
    }
}

/// One reading of a process: CPU ticks of all its threads, their context switches, and when.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// `utime + stime` of the process, in clock ticks.
    pub cpu_ticks: u64,
    /// Voluntary plus involuntary context switches, summed over its threads.
    pub ctx_switches: u64,
    /// Threads seen.
    pub threads: usize,
    /// When it was taken.
    pub at: Instant,
}

/// The figures of one executor.
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    /// The executor measured.
    pub executor: ExecutorKind,
    /// Shards `nexus run` ran.
    pub shards: usize,
    /// CPU time over wall time, in % of one core.
    pub cpu_pct: f64,
    /// Context switches per second.
    pub wakeups_per_s: f64,
    /// Threads of the process at the end of the window.
    pub threads: usize,
}

impl Figure {
    /// The figure between two samples, with `ticks_per_s` clock ticks per second.
    pub fn between(executor: ExecutorKind, shards: usize, start: &Sample, end: &Sample, ticks_per_s: u64) -> Self {
        let wall = end.at.saturating_duration_since(start.at).as_secs_f64().max(1e-9);
        let cpu = end.cpu_ticks.saturating_sub(start.cpu_ticks) as f64 / ticks_per_s.max(1) as f64;
        let switches = end.ctx_switches.saturating_sub(start.ctx_switches) as f64;
        Self { executor, shards, cpu_pct: cpu / wall * 100.0, wakeups_per_s: switches / wall, threads: end.threads }
    }

    /// Whether the CPU share is within [`TARGET_PCT`].
    pub fn met(&self) -> bool {
        self.cpu_pct <= TARGET_PCT
    }
}

/// Runs `nexus bench idle`.
pub fn bench_idle(args: &IdleArgs) -> Result<(), Failure> {
    let (plan, oversubscribe) = plan_shards(args.shards, "bench idle").map_err(|e| IdleError::from(e).failure())?;
    let mut kinds = Vec::new();
    let mut notes = Vec::new();
    match args.executors {
        Executors::One(ExecutorKind::Auto) => {
            kinds.push(crate::bench::resolve_executor(ExecutorKind::Auto, plan.len())?)
        }
        Executors::One(kind) => {
            executor::select(kind, plan.len(), &Machine::probe()).map_err(|e| IdleError::Executor(e).failure())?;
            kinds.push(kind);
        }
        Executors::Both => {
            match executor::select(ExecutorKind::Glommio, plan.len(), &Machine::probe()) {
                Ok(_) => kinds.push(ExecutorKind::Glommio),
                Err(e) => notes.push(format!("glommio skipped: {e}")),
            }
            kinds.push(ExecutorKind::Threads);
        }
    }
    for note in &notes {
        eprintln!("nexus: bench idle: {note}");
    }
    let ticks_per_s = clock_ticks().map_err(IdleError::failure)?;
    let scratch = Scratch::create("bench-idle").map_err(|e| IdleError::from(e).failure())?;
    let config = match args.shards {
        Some(n) => Some(write_config(&scratch, n, oversubscribe).map_err(IdleError::failure)?),
        None => None,
    };
    let mut progress = Progress::new();
    let mut figures = Vec::new();
    let steps = kinds.len() * 3;
    for (i, &kind) in kinds.iter().enumerate() {
        let step = |n: usize| i * 3 + n;
        let mut show = |n: usize, label: String| progress.show(step(n), steps, &label);
        let run =
            Run { kind, config: config.as_deref(), planned_shards: plan.len(), window: args.duration, ticks_per_s };
        match measure(&run, &scratch, &mut show) {
            Ok(f) => figures.push(f),
            Err(e) => {
                progress.finish();
                return Err(e.failure());
            }
        }
    }
    progress.finish();
    report(args, &plan.cpus(), &figures, &notes)
}

/// What one executor's measurement needs.
struct Run<'a> {
    kind: ExecutorKind,
    /// The scratch config of `--shards` (`None`: the default config).
    config: Option<&'a Path>,
    /// The shards planned, for when `INFO` does not say.
    planned_shards: usize,
    window: Duration,
    ticks_per_s: u64,
}

/// One executor: start `nexus run`, wait for `PONG`, settle, sample, wait, sample, stop.
/// `show(step, label)` reports progress (steps 1 to 3).
fn measure(run: &Run<'_>, scratch: &Scratch, show: &mut dyn FnMut(usize, String)) -> Result<Figure, IdleError> {
    let kind = run.kind;
    let (port, metrics_port) = free_ports()?;
    let exe = std::env::current_exe().map_err(|source| ChildError::Spawn {
        name: "nexus run",
        source,
        hint: "run this binary from a path that still exists",
    })?;
    let mut cmd = Command::new(exe);
    cmd.arg("run");
    if let Some(config) = run.config {
        cmd.arg("--config").arg(config);
    }
    cmd.args(["--executor", kind.name(), "--listen", &format!("127.0.0.1:{port}")]);
    cmd.args(["--metrics-listen", &format!("127.0.0.1:{metrics_port}")]);
    show(1, format!("{kind}: starting nexus run on 127.0.0.1:{port} (metrics on {metrics_port})"));
    let log = scratch.path(&format!("nexus-{kind}.log"));
    let mut server = Process::server("nexus run", cmd, port, log, NEXUS_HINT)?;
    server.wait_ready()?;
    let pid = server.pid().ok_or_else(|| ChildError::Watch {
        name: "nexus run",
        source: std::io::Error::other("no process id after start"),
    })?;
    let shards = info_field(port, "shards").and_then(|v| v.parse::<usize>().ok()).unwrap_or(run.planned_shards);
    show(2, format!("{kind}: answered PING; settling for {} s", SETTLE.as_secs()));
    std::thread::sleep(SETTLE);
    server.check_alive()?;
    show(3, format!("{kind}: measuring for {:.1} s, sending nothing", run.window.as_secs_f64()));
    let start = sample(pid)?;
    std::thread::sleep(run.window);
    server.check_alive()?;
    let end = sample(pid)?;
    server.check_alive()?;
    match server.stop() {
        Some(status) if !status.success() => {
            let tail = server.log_tail();
            eprintln!("nexus: bench idle: note: {kind}: nexus run exited with {status} after SIGTERM: {tail}");
        }
        _ => {}
    }
    Ok(Figure::between(kind, shards, &start, &end, run.ticks_per_s))
}

/// What to do when `nexus run` (this binary) does not start.
const NEXUS_HINT: &str = "rebuild it with cargo build --release -p nexus-tools --bin nexus";

/// Writes the config of `--shards N`: the defaults, with `[placement] shards` set.
fn write_config(scratch: &Scratch, shards: usize, oversubscribe: bool) -> Result<PathBuf, IdleError> {
    let path = scratch.path("nexus.toml");
    let text = format!(
        "# Written by `nexus bench idle`: the default config with {shards} shards.\n\
         [placement]\nshards = {shards}\noversubscribe = {oversubscribe}\n"
    );
    std::fs::write(&path, text).map_err(|source| IdleError::Config { path: path.clone(), source })?;
    Ok(path)
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`), the unit of `/proc/PID/stat`'s times.
fn clock_ticks() -> Result<u64, IdleError> {
    // SAFETY: sysconf takes an integer and reads no memory of ours.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|&t| t > 0).ok_or(IdleError::ClockTicks(ticks))
}

/// Reads the CPU time and the context switches of process `pid` and all its threads now.
pub fn sample(pid: u32) -> Result<Sample, IdleError> {
    let read = |path: PathBuf| std::fs::read_to_string(&path).map_err(|source| IdleError::Proc { path, source });
    let stat_path = PathBuf::from(format!("/proc/{pid}/stat"));
    let stat = read(stat_path.clone())?;
    let cpu_ticks = parse_stat_cpu(&stat).map_err(|what| IdleError::ProcFormat { path: stat_path, what })?;
    let task_dir = PathBuf::from(format!("/proc/{pid}/task"));
    let tasks = std::fs::read_dir(&task_dir).map_err(|source| IdleError::Proc { path: task_dir.clone(), source })?;
    let (mut ctx_switches, mut threads) = (0, 0);
    for task in tasks {
        let task = task.map_err(|source| IdleError::Proc { path: task_dir.clone(), source })?;
        let path = task.path().join("status");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            // The thread exited between the listing and the read.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ESRCH) => continue,
            Err(source) => return Err(IdleError::Proc { path, source }),
        };
        ctx_switches += parse_status_switches(&text).map_err(|what| IdleError::ProcFormat { path, what })?;
        threads += 1;
    }
    Ok(Sample { cpu_ticks, ctx_switches, threads, at: Instant::now() })
}

/// `utime + stime` (fields 14 and 15, clock ticks) of a `/proc/PID/stat` line. The process
/// name (field 2) is in parentheses and may hold spaces and parentheses itself, so the fields
/// are counted from the last `)`.
pub fn parse_stat_cpu(line: &str) -> Result<u64, String> {
    let (_, rest) = line.rsplit_once(')').ok_or("no `)` after the process name")?;
    // rest starts at field 3 (state): utime is field 14, stime field 15.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |index: usize, name: &str| -> Result<u64, String> {
        let text = fields.get(index).ok_or_else(|| format!("no {name} field (only {} fields)", fields.len() + 2))?;
        text.parse().map_err(|_| format!("{name} is {text:?}, not a count of ticks"))
    };
    Ok(field(11, "utime")? + field(12, "stime")?)
}

/// `voluntary_ctxt_switches` + `nonvoluntary_ctxt_switches` of a `/proc/PID/status` text.
pub fn parse_status_switches(text: &str) -> Result<u64, String> {
    let field = |name: &str| -> Result<u64, String> {
        let value = text
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .ok_or_else(|| format!("no {name} line"))?
            .trim();
        value.parse().map_err(|_| format!("{name} is {value:?}, not a count"))
    };
    Ok(field("voluntary_ctxt_switches")? + field("nonvoluntary_ctxt_switches")?)
}

/// Prints the table (or the JSON lines) and writes `--json FILE`.
fn report(args: &IdleArgs, cpus: &[usize], figures: &[Figure], notes: &[String]) -> Result<(), Failure> {
    let cpus: Vec<String> = cpus.iter().map(usize::to_string).collect();
    let (cpus, date) = (cpus.join(","), today_utc());
    let records = records(figures, &cpus, &date);
    emit(&args.json, &records, |out| {
        let mut header = format!(
            "nexus bench idle: nexus run with the default config{}, RESP and metrics on loopback, nothing sent; \
             {:.1} s window after {} s settling",
            args.shards.map_or(String::new(), |n| format!(" (shards = {n})")),
            args.duration.as_secs_f64(),
            SETTLE.as_secs()
        );
        if let Some(model) = cpu_model() {
            let n = std::thread::available_parallelism().map_or(0, |n| n.get());
            let _ = write!(header, "\nmachine: {model}, {n} CPUs, {date}");
        }
        for note in notes {
            let _ = write!(header, "\nnote: {note}");
        }
        writeln!(out, "{header}\n\n{}", render_table(figures).trim_end())
    })
    .map_err(|e| Failure::runtime(format!("bench idle: cannot write the results: {e}")))
}

/// One `cpu_pct` and one `ctx_switches_per_s` record per figure.
pub fn records(figures: &[Figure], cpus: &str, date: &str) -> Vec<Record> {
    let mut records = Vec::new();
    for f in figures {
        for (metric, value, unit) in
            [("cpu_pct", f.cpu_pct, "%"), ("ctx_switches_per_s", f.wakeups_per_s, "switches/s")]
        {
            let record = Record::new("idle", "nexus", "local", metric, value, unit);
            records.push(record.engine(f.shards, f.executor.name()).context(cpus, date, f.shards));
        }
    }
    records
}

/// The table: executor, shards, threads, CPU share, wake-ups per second, the target's verdict.
pub fn render_table(figures: &[Figure]) -> String {
    let head = ["executor", "shards", "threads", "CPU % of a core", "wake-ups/s", "target <= 1% of a core"];
    let mut rows = vec![head.map(String::from).to_vec()];
    for f in figures {
        rows.push(vec![
            f.executor.name().to_string(),
            f.shards.to_string(),
            f.threads.to_string(),
            format!("{:.2}", f.cpu_pct),
            format!("{:.0}", f.wakeups_per_s),
            (if f.met() { "met" } else { "not met" }).to_string(),
        ]);
    }
    crate::bench::columns(&rows, &[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real stat line of a process whose name holds spaces and parentheses.
    const STAT: &str = "4242 (nexus (run) x) S 1 4242 4242 0 -1 4194560 1234 0 0 0 \
                        250 75 0 0 20 0 5 0 123456 987654321 2048 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0";

    #[test]
    fn stat_times_are_counted_from_the_last_parenthesis() {
        assert_eq!(parse_stat_cpu(STAT), Ok(325));
        assert_eq!(parse_stat_cpu("1 (plain) R 0 1 1 0 -1 0 0 0 0 0 7 3 0 0"), Ok(10));
        assert!(parse_stat_cpu("1 plain R 0").is_err());
        assert!(parse_stat_cpu("1 (short) R 0 1").unwrap_err().contains("utime"));
        assert!(parse_stat_cpu("1 (x) R 0 1 1 0 -1 0 0 0 0 0 ten 3").unwrap_err().contains("utime"));
    }

    #[test]
    fn context_switches_add_both_kinds() {
        let status = "Name:\tnexus\nState:\tS (sleeping)\nvoluntary_ctxt_switches:\t1500\n\
                      nonvoluntary_ctxt_switches:\t25\n";
        assert_eq!(parse_status_switches(status), Ok(1525));
        assert!(parse_status_switches("Name:\tx\nvoluntary_ctxt_switches:\t1\n").is_err());
    }

    #[test]
    fn this_process_can_be_sampled() {
        let s = sample(std::process::id()).expect("our own /proc entry");
        assert!(s.threads >= 1);
        assert!(clock_ticks().expect("a tick length") > 0);
    }

    #[test]
    fn figures_are_shares_of_one_core() {
        let t0 = Instant::now();
        let start = Sample { cpu_ticks: 100, ctx_switches: 1_000, threads: 4, at: t0 };
        let end = Sample { cpu_ticks: 150, ctx_switches: 3_000, threads: 4, at: t0 + Duration::from_secs(2) };
        let f = Figure::between(ExecutorKind::Threads, 2, &start, &end, 100);
        // 50 ticks = 0.5 s of CPU over 2 s = 25% of a core; 2,000 switches over 2 s.
        assert!((f.cpu_pct - 25.0).abs() < 1e-9 && (f.wakeups_per_s - 1_000.0).abs() < 1e-9);
        assert!(!f.met());
        let table = render_table(std::slice::from_ref(&f));
        assert!(table.contains("threads") && table.contains("25.00") && table.contains("not met"), "{table}");
        let records = records(&[f], "0,1", "2024-01-01");
        assert_eq!(records.len(), 2);
        assert_eq!((records[0].metric, records[0].unit, records[0].executor), ("cpu_pct", "%", Some("threads")));
        assert_eq!((records[1].metric, records[1].shards), ("ctx_switches_per_s", Some(2)));
    }
}
