//! `nexus sim`: run the deterministic simulation's scenarios over ranges of seeds, and replay
//! one seed exactly.
//!
//! - `nexus sim list`: the scenarios;
//! - `nexus sim run SCENARIO --seeds A..B [--faults SPEC] [--mode random|pct] [--json]`: every
//!   seed, each run twice to check that it is deterministic; a progress line on stderr; the last
//!   line `ok: N seeds, 0 failures, virtual/real time xR`. At the first failure it prints the
//!   seed, the fault settings and the last 50 trace events, and exits 1;
//! - `nexus sim replay SCENARIO --seed N [--trace FILE]`: one seed, run twice; prints
//!   `fingerprint: <hex>` and writes the whole trace as JSON lines.
//!
//! Invariant: a failure report names everything needed to replay it (scenario, seed, mode,
//! faults), as a `nexus sim replay` command line.

use crate::Failure;
use clap::{Args, Subcommand, ValueEnum};
use nexus_sim::{check_determinism, quiet_injected_panics, scenarios, Faults, Mode, Outcome, Scenario, SimConfig};
use std::io::Write;
use std::time::Instant;

/// `nexus sim`'s arguments.
#[derive(Args, Debug)]
pub struct SimArgs {
    #[command(subcommand)]
    command: SimCommand,
}

#[derive(Subcommand, Debug)]
enum SimCommand {
    /// List the scenarios.
    List,
    /// Run a scenario over a range of seeds (each twice, to check determinism).
    Run(RunArgs),
    /// Rerun one seed exactly: print its fingerprint and write its whole trace.
    Replay(ReplayArgs),
}

/// What a run's schedule is made of: its faults and scheduling mode (a replay takes the
/// failing run's).
#[derive(Args, Debug)]
struct ScheduleArgs {
    /// Faults: comma-separated `panic=P`, `stall=P`, `stall_ms=N`, `pressure` (for a replay,
    /// as the failing run had them).
    #[arg(long, default_value = "")]
    faults: String,
    /// How shards are scheduled.
    #[arg(long, value_enum, default_value_t = ModeArg::Random)]
    mode: ModeArg,
    /// Bug depth for `--mode pct`.
    #[arg(long, default_value_t = 3)]
    depth: u32,
}

#[derive(Args, Debug)]
struct RunArgs {
    /// The scenario (`nexus sim list`).
    scenario: String,
    /// Seeds, as `A..B` (both included) or one number.
    #[arg(long, default_value = "1..100")]
    seeds: String,
    #[command(flatten)]
    schedule: ScheduleArgs,
    /// One JSON line per seed on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct ReplayArgs {
    /// The scenario.
    scenario: String,
    /// The seed.
    #[arg(long)]
    seed: u64,
    #[command(flatten)]
    schedule: ScheduleArgs,
    /// Where the whole trace goes, as JSON lines (default: `sim-SCENARIO-SEED.jsonl`).
    #[arg(long)]
    trace: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ModeArg {
    Random,
    Pct,
}

/// Runs `nexus sim`.
pub fn sim(args: SimArgs) -> Result<(), Failure> {
    quiet_injected_panics();
    match args.command {
        SimCommand::List => {
            for s in scenarios::all() {
                println!("{:<18} {}", s.name(), s.about());
            }
            Ok(())
        }
        SimCommand::Run(args) => run(args),
        SimCommand::Replay(args) => replay(args),
    }
}

fn scenario(name: &str) -> Result<&'static dyn Scenario, Failure> {
    scenarios::find(name).ok_or_else(|| {
        let known: Vec<&str> = scenarios::all().iter().map(|s| s.name()).collect();
        Failure::usage(format!("no scenario `{name}`; hint: use one of {}", known.join(", ")))
    })
}

fn mode(mode: ModeArg, depth: u32) -> Mode {
    match mode {
        ModeArg::Random => Mode::Random,
        ModeArg::Pct => Mode::Pct { depth },
    }
}

/// Parses `A..B` (inclusive) or `N`.
fn seed_range(text: &str) -> Result<(u64, u64), Failure> {
    let bad = || Failure::usage(format!("bad --seeds `{text}`; hint: use A..B (both included) or one number"));
    let (a, b) = match text.split_once("..") {
        Some((a, b)) => (a.trim().parse().map_err(|_| bad())?, b.trim().parse().map_err(|_| bad())?),
        None => {
            let n = text.trim().parse().map_err(|_| bad())?;
            (n, n)
        }
    };
    if a > b {
        return Err(bad());
    }
    Ok((a, b))
}

fn run(args: RunArgs) -> Result<(), Failure> {
    let scenario = scenario(&args.scenario)?;
    let faults = Faults::parse(&args.schedule.faults).map_err(|e| Failure::usage(e.to_string()))?;
    let (first, last) = seed_range(&args.seeds)?;
    let mode = mode(args.schedule.mode, args.schedule.depth);
    let started = Instant::now();
    let (mut virtual_ns, mut real_ns) = (0u128, 0u128);
    let total = last - first + 1;
    for (i, seed) in (first..=last).enumerate() {
        let config = SimConfig { mode, faults: faults.clone(), ..SimConfig::new(seed) };
        let outcome = check_determinism(scenario, &config).map_err(Failure::runtime)?;
        virtual_ns += u128::from(outcome.virtual_ns);
        real_ns += u128::from(outcome.real_ns);
        if args.json {
            println!("{}", outcome.to_json());
        }
        if let Err(violation) = &outcome.result {
            eprintln!();
            report_failure(&outcome, violation, &args.scenario, &faults, args.schedule.mode, args.schedule.depth);
            return Err(Failure::runtime(format!("{} failed at seed {seed}", scenario.name())));
        }
        progress(i as u64 + 1, total, started);
    }
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        eprintln!();
    }
    let ratio = virtual_ns as f64 / real_ns.max(1) as f64;
    if virtual_ns < 1_000_000 * u128::from(total) {
        println!("ok: {total} seeds, 0 failures, virtual/real time x{ratio:.1} (the scenario barely waits: it has few timers)");
    } else {
        println!("ok: {total} seeds, 0 failures, virtual/real time x{ratio:.1}");
    }
    Ok(())
}

/// One line on stderr, rewritten in place on a terminal; elsewhere (a CI log) a line at every
/// tenth of the seeds.
fn progress(done: u64, total: u64, started: Instant) {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        if done * 10 / total.max(1) != (done - 1) * 10 / total.max(1) {
            eprintln!("{done}/{total} seeds, {:.1} s", started.elapsed().as_secs_f64());
        }
        return;
    }
    let width = 30;
    let filled = (done * width / total.max(1)) as usize;
    eprint!(
        "\r[{}{}] {done}/{total} seeds, {:.1} s",
        "#".repeat(filled),
        " ".repeat(width as usize - filled),
        started.elapsed().as_secs_f64()
    );
    let _ = std::io::stderr().flush();
}

fn report_failure(outcome: &Outcome, violation: &str, name: &str, faults: &Faults, mode: ModeArg, depth: u32) {
    eprintln!("FAILED: {name} seed {}: {violation}", outcome.seed);
    eprintln!("faults: `{}`, mode: {mode:?}", faults.spec());
    eprintln!("last {} trace events:", outcome.last_events.len());
    for e in &outcome.last_events {
        eprintln!("  {}", e.to_json());
    }
    let mode = match mode {
        ModeArg::Random => String::new(),
        ModeArg::Pct => format!(" --mode pct --depth {depth}"),
    };
    let faults = if faults.spec().is_empty() { String::new() } else { format!(" --faults {}", faults.spec()) };
    eprintln!("replay: nexus sim replay {name} --seed {}{faults}{mode}", outcome.seed);
}

fn replay(args: ReplayArgs) -> Result<(), Failure> {
    let scenario = scenario(&args.scenario)?;
    let faults = Faults::parse(&args.schedule.faults).map_err(|e| Failure::usage(e.to_string()))?;
    let config = SimConfig {
        mode: mode(args.schedule.mode, args.schedule.depth),
        faults,
        keep_trace: true,
        ..SimConfig::new(args.seed)
    };
    let outcome = check_determinism(scenario, &config).map_err(Failure::runtime)?;
    println!("fingerprint: {:016x}", outcome.fingerprint);
    let path = args.trace.unwrap_or_else(|| format!("sim-{}-{}.jsonl", scenario.name(), args.seed));
    let mut text = String::new();
    for e in outcome.trace.as_deref().unwrap_or_default() {
        text.push_str(&e.to_json());
        text.push('\n');
    }
    std::fs::write(&path, text).map_err(|e| Failure::runtime(format!("cannot write {path}: {e}")))?;
    println!("trace: {} events in {path}", outcome.dispatches);
    match &outcome.result {
        Ok(()) => Ok(()),
        Err(violation) => {
            report_failure(
                &outcome,
                violation,
                scenario.name(),
                &config.faults,
                args.schedule.mode,
                args.schedule.depth,
            );
            Err(Failure::runtime(format!("{} failed at seed {}", scenario.name(), args.seed)))
        }
    }
}
