//! `nexus bench tracing`: what message tracing costs, against the issue's targets.
//!
//! `nexus bench tracing [--shards N] [--executor E] [--repeat K] [--round-ms MS]
//! [--untraced-bin PATH] [--json [FILE]]`; the full measurement, with both builds:
//!
//! ```text
//! perf/tracing/run.sh
//! # which is:
//! cargo build --release -p nexus-tools --features nexus-engine/untraced --target-dir target/untraced
//! cargo build --release -p nexus-tools
//! target/release/nexus bench tracing --untraced-bin target/untraced/release/nexus \
//!     --json perf/tracing/results.jsonl | tee perf/tracing/results.txt
//! ```
//!
//! 1. Check the options (`--shards` at least 2: both workloads cross shards; `--repeat` default
//!    6, `--round-ms` default 600) and that this binary has tracing compiled in.
//! 2. Every figure comes from a child process running one round ([`crate::bench_tracing_round`]):
//!    this binary for the traced variants, `--untraced-bin` (checked to be a build with
//!    `--features nexus-engine/untraced`) for the baseline. Every variant thus pays the same
//!    process start and runs the same engine, collector thread and workload code.
//! 3. Size each workload (counting's increments, pingpong's round trips) so that a run at
//!    sampling 0 lasts at least `--round-ms`: from a small size, grow it and run again until one
//!    does. Every variant then runs that same size, so a slower variant runs longer.
//! 4. Rounds: each round runs, per workload, every [`Variant`] once (untraced build when given,
//!    sampling 0, 1% and 100%), in an order rotated by one each round, so drift and warm-up
//!    spread over all of them.
//! 5. Overheads, pair by pair: round r's `1 - variant / baseline` (throughputs), then their
//!    median and min–max. `tracing_overhead_0` = sampling 0 against the untraced build (only
//!    with `--untraced-bin`), `tracing_overhead_1pct` and `tracing_overhead_100pct` = sampling
//!    1% and 100% against sampling 0, each for counting and pingpong (the record's `workload`),
//!    against the targets of at most 2%, 5% and 30%.
//! 6. Print the throughputs (median, min–max, spans recorded and dropped per run) and the
//!    overheads with their targets and verdicts (met when the median is at most the target);
//!    `--json` gives the records (overheads as ratios, unit `ratio`; throughputs as
//!    `msgs_per_s_<variant>` and `round_trips_per_s_<variant>`).
//!
//! Invariants: overheads only ever pair rounds of the same index; a round that fails fails the
//! command (exit 1), so the series always line up.

use crate::bench::{columns, cpu_model, emit};
use crate::bench_tracing_round::{engine_settings, RoundArgs, RoundFigure, TracedWorkload, DRAIN_EVERY, SPAN_BUFFER};
use crate::Failure;
use nexus_bench::report::{today_utc, Record};
use nexus_bench::stats::{median, Spread};
use nexus_engine::shard::ExecutorKind;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Rounds when `--repeat` is not given.
pub const DEFAULT_REPEAT: u32 = 6;
/// The shortest measured run at sampling 0 when `--round-ms` is not given.
pub const DEFAULT_ROUND_MS: u64 = 600;
/// Rounds shorter than this are for trying the command out: the output says so.
const SHORTEST_MEANINGFUL_MS: u64 = 500;
/// Sizing aims at this multiple of `--round-ms`, so noise rarely makes a round short.
const AIM: f64 = 1.3;
/// The most a size grows in one sizing step.
const MAX_GROWTH: f64 = 1_000.0;
/// The largest size (counting's host timeout counts its messages in a u32).
const MAX_SIZE: u64 = 1 << 32;
/// Sizing runs before the last size is taken even if short.
const MAX_SIZING_RUNS: u32 = 8;
/// The hint for building the baseline.
const UNTRACED_BUILD: &str =
    "cargo build --release -p nexus-tools --features nexus-engine/untraced --target-dir target/untraced";

/// What `nexus bench` hands over: the options as given (unchecked).
#[derive(Clone, Debug, Default)]
pub struct TracingOptions {
    /// `--shards`.
    pub shards: Option<usize>,
    /// `--executor` (one executor; `nexus bench` refuses `both`).
    pub executor: Option<ExecutorKind>,
    /// `--repeat`.
    pub repeat: Option<u32>,
    /// `--round-ms`.
    pub round_ms: Option<u64>,
    /// `--untraced-bin`.
    pub untraced_bin: Option<PathBuf>,
    /// `--json [FILE]`.
    pub json: Option<Option<PathBuf>>,
    /// `--child-round` (hidden): run one round of this workload and print its line.
    pub child_round: Option<TracedWorkload>,
    /// `--child-sample` (hidden).
    pub child_sample: Option<f64>,
    /// `--child-size` (hidden).
    pub child_size: Option<u64>,
}

/// The whole measurement's settings (checked).
#[derive(Clone, Debug, PartialEq)]
pub struct TracingArgs {
    /// Engine shards (at least 2).
    pub shards: usize,
    /// The executor asked for (`auto` is resolved before the rounds).
    pub executor: ExecutorKind,
    /// Rounds.
    pub repeat: u32,
    /// The shortest measured run at sampling 0.
    pub round: Duration,
    /// The untraced build, for `tracing_overhead_0`.
    pub untraced_bin: Option<PathBuf>,
    /// `--json [FILE]`.
    pub json: Option<Option<PathBuf>>,
}

/// What the options ask for: the measurement, or one round of it (a child).
#[derive(Clone, Debug, PartialEq)]
pub enum Mode {
    /// Every variant's rounds, then the tables.
    Measure(TracingArgs),
    /// One round (a child of the measurement).
    Round(RoundArgs),
}

fn usage(message: impl std::fmt::Display) -> Failure {
    Failure::usage(format!("bench tracing: {message}"))
}

/// Checks the options; see the module documentation.
pub fn check(o: TracingOptions) -> Result<Mode, Failure> {
    let shards = o.shards.unwrap_or(2);
    if shards < 2 {
        return Err(usage(format!(
            "--shards {shards}: counting and pingpong cross shards; hint: give at least 2 (the default is 2)"
        )));
    }
    let executor = o.executor.unwrap_or(ExecutorKind::Auto);
    let Some(workload) = o.child_round else {
        if o.child_sample.is_some() || o.child_size.is_some() {
            return Err(usage("--child-sample and --child-size go with --child-round; hint: they are internal"));
        }
        return measure_args(o, shards, executor).map(Mode::Measure);
    };
    let given = [
        (o.repeat.is_some(), "--repeat"),
        (o.round_ms.is_some(), "--round-ms"),
        (o.untraced_bin.is_some(), "--untraced-bin"),
        (o.json.is_some(), "--json"),
    ];
    if let Some((_, option)) = given.iter().find(|(g, _)| *g) {
        return Err(usage(format!("{option} does not apply to one --child-round; hint: it prints one JSON line")));
    }
    let sample = o.child_sample.unwrap_or(0.0);
    if !(0.0..=1.0).contains(&sample) {
        return Err(usage(format!("--child-sample {sample} is not a probability; hint: give 0 to 1")));
    }
    let size = o.child_size.unwrap_or(0);
    if size == 0 {
        return Err(usage("--child-round needs --child-size of at least 1; hint: the parent sizes the rounds"));
    }
    Ok(Mode::Round(RoundArgs { workload, sample, size, shards, executor }))
}

fn measure_args(o: TracingOptions, shards: usize, executor: ExecutorKind) -> Result<TracingArgs, Failure> {
    let repeat = o.repeat.unwrap_or(DEFAULT_REPEAT);
    if repeat == 0 {
        return Err(usage(format!("--repeat must be at least 1; hint: the default is {DEFAULT_REPEAT}")));
    }
    let round_ms = o.round_ms.unwrap_or(DEFAULT_ROUND_MS);
    if round_ms == 0 || round_ms > 600_000 {
        return Err(usage(format!(
            "--round-ms {round_ms} is out of range; hint: give 1 to 600000 (the default is {DEFAULT_ROUND_MS})"
        )));
    }
    if let Some(path) = &o.untraced_bin {
        if !path.is_file() {
            return Err(usage(format!("--untraced-bin {}: no such file; hint: {UNTRACED_BUILD}", path.display())));
        }
    }
    let round = Duration::from_millis(round_ms);
    Ok(TracingArgs { shards, executor, repeat, round, untraced_bin: o.untraced_bin, json: o.json })
}

/// Runs `nexus bench tracing`: the measurement or one round.
pub fn bench_tracing(options: TracingOptions) -> Result<(), Failure> {
    match check(options)? {
        Mode::Measure(args) => measure(&args),
        Mode::Round(round) => crate::bench_tracing_round::run_round(&round),
    }
}

/// One way of running the workloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// The build with `--features nexus-engine/untraced` (`--untraced-bin`).
    Untraced,
    /// This build, sampling 0.
    Sample0,
    /// This build, sampling 1%.
    Sample1pct,
    /// This build, sampling 100%.
    Sample100pct,
}

impl Variant {
    /// Every variant, in table order.
    pub const ALL: [Variant; 4] = [Variant::Untraced, Variant::Sample0, Variant::Sample1pct, Variant::Sample100pct];

    /// The sampling probability it runs at.
    pub const fn sample(self) -> f64 {
        match self {
            Variant::Untraced | Variant::Sample0 => 0.0,
            Variant::Sample1pct => 0.01,
            Variant::Sample100pct => 1.0,
        }
    }

    /// How the table names it.
    pub const fn label(self) -> &'static str {
        match self {
            Variant::Untraced => "untraced build",
            Variant::Sample0 => "traced, sample 0",
            Variant::Sample1pct => "traced, sample 1%",
            Variant::Sample100pct => "traced, sample 100%",
        }
    }

    /// The metric of its throughput records for `workload`.
    pub const fn metric(self, workload: TracedWorkload) -> &'static str {
        match (workload, self) {
            (TracedWorkload::Counting, Variant::Untraced) => "msgs_per_s_untraced",
            (TracedWorkload::Counting, Variant::Sample0) => "msgs_per_s_sample_0",
            (TracedWorkload::Counting, Variant::Sample1pct) => "msgs_per_s_sample_1pct",
            (TracedWorkload::Counting, Variant::Sample100pct) => "msgs_per_s_sample_100pct",
            (TracedWorkload::Pingpong, Variant::Untraced) => "round_trips_per_s_untraced",
            (TracedWorkload::Pingpong, Variant::Sample0) => "round_trips_per_s_sample_0",
            (TracedWorkload::Pingpong, Variant::Sample1pct) => "round_trips_per_s_sample_1pct",
            (TracedWorkload::Pingpong, Variant::Sample100pct) => "round_trips_per_s_sample_100pct",
        }
    }
}

/// An overhead the issue sets a target for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Overhead {
    /// The record's metric.
    pub metric: &'static str,
    /// What is measured.
    pub variant: Variant,
    /// Against what.
    pub baseline: Variant,
    /// At most this (a fraction: 0.02 is 2%).
    pub target: f64,
}

/// The three overheads and their targets.
pub const OVERHEADS: [Overhead; 3] = [
    Overhead { metric: "tracing_overhead_0", variant: Variant::Sample0, baseline: Variant::Untraced, target: 0.02 },
    Overhead {
        metric: "tracing_overhead_1pct",
        variant: Variant::Sample1pct,
        baseline: Variant::Sample0,
        target: 0.05,
    },
    Overhead {
        metric: "tracing_overhead_100pct",
        variant: Variant::Sample100pct,
        baseline: Variant::Sample0,
        target: 0.30,
    },
];

/// Round r's overhead for each r both series have: `1 - variant[r] / baseline[r]` (a round
/// whose baseline measured nothing is skipped).
pub fn pairwise_overheads(variant: &[f64], baseline: &[f64]) -> Vec<f64> {
    variant.iter().zip(baseline).filter(|(_, b)| **b > 0.0).map(|(v, b)| 1.0 - v / b).collect()
}

/// The variants of round `round` in the order they run: `variants` rotated left by `round`.
pub fn round_order(variants: &[Variant], round: u32) -> Vec<Variant> {
    let mut order = variants.to_vec();
    if !order.is_empty() {
        let by = round as usize % order.len();
        order.rotate_left(by);
    }
    order
}

/// The next size to try after a run of `size` took `elapsed_s` where `round_s` is wanted:
/// aims at [`AIM`] × `round_s`, grows by at most [`MAX_GROWTH`], always grows, never past
/// [`MAX_SIZE`].
pub fn next_size(size: u64, elapsed_s: f64, round_s: f64) -> u64 {
    let factor = if elapsed_s > 0.0 { (AIM * round_s / elapsed_s).min(MAX_GROWTH) } else { MAX_GROWTH };
    let grown = (size as f64 * factor).ceil() as u64;
    grown.max(size + 1).min(MAX_SIZE)
}

/// Each workload's rounds: per variant, one figure per round, in round order.
#[derive(Clone, Debug, Default)]
pub struct Series {
    /// Indexed like [`Variant::ALL`].
    pub rounds: [Vec<RoundFigure>; 4],
}

impl Series {
    fn of(&self, variant: Variant) -> &[RoundFigure] {
        &self.rounds[variant as usize]
    }

    /// The throughputs of `variant`, round by round.
    pub fn per_s(&self, variant: Variant) -> Vec<f64> {
        self.of(variant).iter().map(|f| f.per_s).collect()
    }

    /// The overheads of `o`, round by round (empty when either side did not run).
    pub fn overheads(&self, o: &Overhead) -> Vec<f64> {
        pairwise_overheads(&self.per_s(o.variant), &self.per_s(o.baseline))
    }
}

/// What the measurement found, for the records and the table.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Per workload ([`TracedWorkload::BOTH`] order): its size and its series.
    pub workloads: Vec<(TracedWorkload, u64, Series)>,
}

/// The progress line on stderr.
fn progress(line: &str) {
    eprintln!("bench tracing: {line}");
}

/// Runs every child and reports; see the module documentation.
fn measure(args: &TracingArgs) -> Result<(), Failure> {
    if !nexus_engine::trace::COMPILED_IN {
        return Err(usage(
            "this nexus was built with the untraced feature, so nothing can be traced; hint: build it without: \
             cargo build --release -p nexus-tools",
        ));
    }
    let executor = crate::bench::resolve_executor(args.executor, args.shards)?;
    let (_, plan, note) = engine_settings(args.shards, executor)?;
    if let Some(note) = &note {
        eprintln!("nexus: note: {note}");
    }
    let this = std::env::current_exe()
        .map_err(|e| Failure::runtime(format!("bench tracing: cannot find this binary: {e}; hint: run it by path")))?;
    let runner = Runner { this, untraced: args.untraced_bin.clone(), shards: args.shards, executor };
    if let Some(bin) = &runner.untraced {
        progress(&format!("checking that {} is the untraced build", bin.display()));
        runner.round(TracedWorkload::Counting, Variant::Untraced, 1_000)?;
    }
    let mut workloads = Vec::new();
    for workload in TracedWorkload::BOTH {
        workloads.push((workload, runner.size(workload, args.round)?, Series::default()));
    }
    let variants: Vec<Variant> =
        Variant::ALL.into_iter().filter(|v| *v != Variant::Untraced || runner.untraced.is_some()).collect();
    for round in 0..args.repeat {
        for (workload, size, series) in &mut workloads {
            for variant in round_order(&variants, round) {
                progress(&format!(
                    "round {}/{}: {}, {}, {size} {}",
                    round + 1,
                    args.repeat,
                    workload.name(),
                    variant.label(),
                    workload.counts()
                ));
                series.rounds[variant as usize].push(runner.round(*workload, variant, *size)?);
            }
        }
    }
    let outcome = Outcome { workloads };
    let cpus: Vec<String> = plan.cpus().iter().map(usize::to_string).collect();
    let context = Context { shards: args.shards, executor: executor.name(), cpus: cpus.join(","), date: today_utc() };
    let records = records(&outcome, &context);
    let header = header(args, &context, &outcome, note.as_deref());
    emit(&args.json, &records, |out| writeln!(out, "{header}\n\n{}", render(&outcome).trim_end()))
        .map_err(|e| Failure::runtime(format!("bench tracing: cannot write the results: {e}")))?;
    if let Some(Some(path)) = &args.json {
        eprintln!("nexus: {} records written to {}", records.len(), path.display());
    }
    Ok(())
}

/// Starts the rounds' child processes.
struct Runner {
    this: PathBuf,
    untraced: Option<PathBuf>,
    shards: usize,
    executor: ExecutorKind,
}

impl Runner {
    /// Runs one round of `workload` in `variant`'s binary at `size` and checks its line.
    fn round(&self, workload: TracedWorkload, variant: Variant, size: u64) -> Result<RoundFigure, Failure> {
        let bin: &Path = match (variant, &self.untraced) {
            (Variant::Untraced, Some(bin)) => bin,
            (Variant::Untraced, None) => unreachable!("the untraced variant runs only with --untraced-bin"),
            _ => &self.this,
        };
        let (sample, size_arg, shards) = (variant.sample().to_string(), size.to_string(), self.shards.to_string());
        let args = ["bench", "tracing", "--child-round", workload.name(), "--child-sample", &sample];
        let args = [&args[..], &["--child-size", &size_arg, "--shards", &shards, "--executor", self.executor.name()]];
        let what = format!("{} {}", bin.display(), args.concat().join(" "));
        let output = Command::new(bin)
            .args(args.concat())
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Failure::runtime(format!("bench tracing: cannot start {}: {e}", bin.display())))?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            let why = stderr.trim_end().lines().last().unwrap_or("no message");
            return Err(Failure::runtime(format!(
                "bench tracing: a round failed ({}): {why}; hint: run it alone: {what}",
                output.status
            )));
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        let line = stdout.trim_end().lines().last().unwrap_or_default();
        let figure: RoundFigure = serde_json::from_str(line).map_err(|e| {
            Failure::runtime(format!(
                "bench tracing: a round printed {line:?}, not a figure ({e}); hint: run it alone: {what}"
            ))
        })?;
        check_build(&figure, variant, bin)?;
        Ok(figure)
    }

    /// The size at which `workload` at sampling 0 lasts at least `round` (see the module doc).
    fn size(&self, workload: TracedWorkload, round: Duration) -> Result<u64, Failure> {
        let mut size = match workload {
            TracedWorkload::Counting => 20_000,
            TracedWorkload::Pingpong => 2_000,
        };
        for run in 1..=MAX_SIZING_RUNS {
            progress(&format!("sizing {}: {size} {} (run {run})", workload.name(), workload.counts()));
            let elapsed = self.round(workload, Variant::Sample0, size)?.elapsed_ns as f64 / 1e9;
            let next = next_size(size, elapsed, round.as_secs_f64());
            if elapsed >= round.as_secs_f64() || next == size || run == MAX_SIZING_RUNS {
                break;
            }
            size = next;
        }
        Ok(size)
    }
}

/// Checks that a round ran in the build its variant needs: `--untraced-bin` without
/// tracing's hooks, this binary with them.
fn check_build(figure: &RoundFigure, variant: Variant, bin: &Path) -> Result<(), Failure> {
    match (variant, figure.compiled_in) {
        (Variant::Untraced, true) => Err(usage(format!(
            "--untraced-bin {} has tracing compiled in; hint: build it with {UNTRACED_BUILD}",
            bin.display()
        ))),
        (Variant::Untraced, false) | (_, true) => Ok(()),
        (_, false) => Err(Failure::runtime(format!(
            "bench tracing: {} ran a round without tracing's hooks; hint: rebuild it without the untraced feature",
            bin.display()
        ))),
    }
}

/// What every record carries.
pub struct Context {
    /// Engine shards.
    pub shards: usize,
    /// The executor's name.
    pub executor: &'static str,
    /// The shards' CPUs, as `0,1`.
    pub cpus: String,
    /// The day, `YYYY-MM-DD`.
    pub date: String,
}

/// The records: per workload, each variant's throughput and each overhead measured.
pub fn records(outcome: &Outcome, context: &Context) -> Vec<Record> {
    let mut records = Vec::new();
    let record = |workload: TracedWorkload, metric: &'static str, rounds: &[f64], unit: &'static str| {
        Record::new(workload.name(), "nexus", "cross", metric, 0.0, unit)
            .engine(context.shards, context.executor)
            .over_rounds(rounds)
            .context(&context.cpus, &context.date, context.shards)
    };
    for (workload, _, series) in &outcome.workloads {
        for variant in Variant::ALL {
            let rounds = series.per_s(variant);
            if !rounds.is_empty() {
                records.push(record(*workload, variant.metric(*workload), &rounds, workload.unit()));
            }
        }
        for o in &OVERHEADS {
            let overheads = series.overheads(o);
            if !overheads.is_empty() {
                records.push(record(*workload, o.metric, &overheads, "ratio"));
            }
        }
    }
    records
}

/// The lines above the tables.
fn header(args: &TracingArgs, context: &Context, outcome: &Outcome, note: Option<&str>) -> String {
    let mut out = format!(
        "nexus bench tracing: {} shards on CPUs {} ({}, pinned), {}, {} round{}, each variant once per round in \
         an order rotated every round, each run in its own process",
        context.shards,
        context.cpus,
        context.executor,
        context.date,
        args.repeat,
        if args.repeat == 1 { "" } else { "s" }
    );
    let sizes: Vec<String> = outcome
        .workloads
        .iter()
        .map(|(w, size, _)| format!("{} {size} {} cross-shard", w.name(), w.counts()))
        .collect();
    let _ = write!(
        out,
        "\nsizes: {} (sized to last at least {} ms at sampling 0; a slower variant runs longer)\n\
         spans: a collector thread drains the {SPAN_BUFFER}-span buffer of each shard every {} ms in every variant \
         and discards them; a buffer full between two drains drops spans and counts them (columns below: per \
         measured run, median); spans/msg: spans made per workload message (counting's increments, pingpong's \
         pings and pongs), how much traffic a sampling rate really traces, as a trace follows all its handlers send",
        sizes.join(", "),
        args.round.as_millis(),
        DRAIN_EVERY.as_millis()
    );
    if let Some(model) = cpu_model() {
        let n = std::thread::available_parallelism().map_or(0, |n| n.get());
        let _ = write!(out, "\nmachine: {model}, {n} CPUs");
    }
    if let Some(note) = note {
        let _ = write!(out, "\nnote: {note}");
    }
    if args.round.as_millis() < u128::from(SHORTEST_MEANINGFUL_MS) {
        let _ = write!(
            out,
            "\nnote: rounds under {SHORTEST_MEANINGFUL_MS} ms are for trying the command out: these figures are noise"
        );
    }
    out
}

/// `0.0123` as `1.2%`.
fn pct(v: f64) -> String {
    format!("{:.1}%", v * 100.0)
}

/// The throughput table and the overhead table, with the per-round overheads below.
pub fn render(outcome: &Outcome) -> String {
    let head = ["workload", "variant", "median (min–max)", "unit", "spans recorded", "spans dropped", "spans/msg"];
    let mut rows = vec![head.map(String::from).to_vec()];
    for (workload, _, series) in &outcome.workloads {
        for variant in Variant::ALL {
            let Some(spread) = Spread::of(&series.per_s(variant)) else { continue };
            let spans = |f: &dyn Fn(&RoundFigure) -> f64, decimals: usize| -> String {
                if variant == Variant::Untraced {
                    return "n/a".into();
                }
                let counts: Vec<f64> = series.of(variant).iter().map(f).collect();
                format!("{:.*}", decimals, median(&counts))
            };
            let share = |r: &RoundFigure| (r.recorded + r.dropped) as f64 / workload.messages(r.size).max(1) as f64;
            rows.push(vec![
                workload.name().into(),
                variant.label().into(),
                nexus_bench::report::format_spread(spread.median, spread.min, spread.max, workload.unit()),
                workload.unit().into(),
                spans(&|r| r.recorded as f64, 0),
                spans(&|r| r.dropped as f64, 0),
                spans(&share, 3),
            ]);
        }
    }
    let mut out = columns(&rows, &[0, 1, 3]);
    out.push('\n');
    out.push_str(&render_overheads(outcome));
    out
}

/// The overhead table (median, min–max, target, verdict) and each overhead round by round.
fn render_overheads(outcome: &Outcome) -> String {
    let mut rows = vec![["overhead", "workload", "median", "min–max", "target", "verdict"].map(String::from).to_vec()];
    let mut by_round = String::new();
    let mut missing = false;
    for o in &OVERHEADS {
        for (workload, _, series) in &outcome.workloads {
            let target = format!("≤ {:.0}%", o.target * 100.0);
            let overheads = series.overheads(o);
            let Some(spread) = Spread::of(&overheads) else {
                missing = true;
                let row = [o.metric, workload.name(), "needs --untraced-bin", "", &target, "not measured"];
                rows.push(row.map(String::from).to_vec());
                continue;
            };
            let verdict = if spread.median <= o.target { "met" } else { "not met" };
            let spread_text = format!("{} – {}", pct(spread.min), pct(spread.max));
            rows.push(vec![
                o.metric.into(),
                workload.name().into(),
                pct(spread.median),
                spread_text,
                target,
                verdict.into(),
            ]);
            let rounds: Vec<String> = overheads.iter().map(|v| pct(*v)).collect();
            let _ = writeln!(by_round, "{} {} by round: {}", workload.name(), o.metric, rounds.join(", "));
        }
    }
    let mut out = columns(&rows, &[0, 1, 5]);
    if missing {
        let _ = writeln!(
            out,
            "tracing_overhead_0 needs --untraced-bin PATH, a build without tracing's hooks: {UNTRACED_BUILD} \
             (perf/tracing/run.sh builds both and runs this)"
        );
    }
    out.push('\n');
    out.push_str(&by_round);
    out
}

#[cfg(test)]
mod tests;
