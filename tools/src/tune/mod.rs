//! `nexus tune`: searches engine settings for the best figures on this machine and writes the
//! tuned config.
//!
//! `nexus tune --config FILE [--budget SECONDS] [--out FILE] [--workloads LIST]`
//!
//! 1. Check the arguments (`--budget` at least 1, known workloads) and read the config the way
//!    `nexus run` does (exit 2 with a hint otherwise).
//! 2. Build the space from the config and the machine ([`space`]): executor (where glommio can
//!    run), `idle.spin_before_park_us`, `mesh.batch`, `mesh.ring_capacity`, `placement.shards`,
//!    SMT (where the machine has it). Dimensions left out are noted in the output.
//! 3. Search it within the budget ([`search`]): coordinate descent from the config's values,
//!    interleaved pairs, a noise gate. Each measurement starts a fresh engine from the
//!    candidate's config and runs the workloads once ([`measure`]).
//! 4. Print the table on stdout ([`render`]) and write the tuned config (the input with the
//!    tuned keys set and the figures in comments) to `--out`, or print it after the table.
//!
//! Progress goes to stderr: one line rewritten in place on a terminal, plain lines otherwise.
//! The tuned config is parsed and validated before it is written; a failure there is a bug
//! (exit 1), never a bad file on disk.

mod measure;
mod render;
pub mod search;
mod space;

use crate::Failure;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

/// Arguments of `nexus tune`.
#[derive(clap::Args, Debug)]
pub struct TuneArgs {
    /// The config to start from (its values are the starting point, its other keys are kept).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Time for the whole search, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    budget: u64,
    /// Write the tuned config here (default: print it after the table).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Workloads measured, comma-separated: pingpong, counting, thread-ring, scaling,
    /// chameneos, big, fj-throughput, fan-in.
    #[arg(long, value_name = "LIST", default_value = "pingpong,counting")]
    workloads: String,
    /// Pairs of runs per comparison.
    #[arg(long, default_value_t = 5, hide = true)]
    pairs: usize,
    /// The yardstick's tiny test sizes (for debug builds and tests).
    #[arg(long, hide = true)]
    quick: bool,
}

/// The least noise the search assumes (a fraction): below it, differences are not trusted.
const NOISE_FLOOR: f64 = 0.01;
/// Passes over the dimensions at most.
const PASSES: usize = 2;
/// Share of the budget kept for the winner-versus-start check.
const CONFIRM_SHARE: f64 = 0.15;

/// Runs `nexus tune`.
pub fn tune(args: TuneArgs) -> Result<(), Failure> {
    if args.budget == 0 {
        return Err(Failure::usage("tune: --budget must be at least 1 second; hint: the default is 60"));
    }
    if args.pairs == 0 {
        return Err(Failure::usage("tune: --pairs must be at least 1; hint: the default is 5"));
    }
    let workloads = measure::parse_workloads(&args.workloads).map_err(|e| Failure::usage(format!("tune: {e}")))?;
    let origin = args.config.display().to_string();
    let text = std::fs::read_to_string(&args.config).map_err(|e| {
        Failure::usage(format!(
            "tune: cannot read the config {origin}: {e}; hint: check the path (the bundled configs are in configs/)"
        ))
    })?;
    let config =
        measure::parse_config(&text, &origin).map_err(|e| Failure::usage(format!("tune: config error: {e}")))?;

    let topology = nexus_engine::topology::Topology::detect()
        .map_err(|e| Failure::runtime(format!("tune: cannot read the machine's topology: {e}")))?;
    let machine = nexus_engine::executor::Machine::probe();
    let min_shards = if workloads.iter().any(|w| w.needs_two_shards()) { 2 } else { 1 };
    let built = space::build(&config, &topology, &machine, min_shards);
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = crate::bench::cpu_model().unwrap_or_else(|| "unknown CPU".into());
    let metrics: Vec<render::Metric> = workloads.iter().filter_map(|&w| measure::metric(w)).collect();
    let mut notes = built.notes.clone();
    if args.quick {
        notes.push("--quick: the yardstick's tiny test sizes; the figures are mostly start-up noise".into());
    }
    let cx = render::Context {
        config: origin.clone(),
        budget_s: args.budget as f64,
        date: nexus_bench::report::today_utc(),
        machine: format!("{model}, {cpus} CPUs ({topology})"),
        metrics: metrics.clone(),
        notes,
    };
    let params = search::Params {
        budget: Duration::from_secs(args.budget),
        better: metrics.iter().map(|m| m.better).collect(),
        pairs: args.pairs,
        min_pairs: args.pairs.min(3),
        noise_floor: NOISE_FLOOR,
        passes: PASSES,
        confirm_share: CONFIRM_SHARE,
    };
    for note in &built.notes {
        eprintln!("nexus: tune: {note}");
    }
    let space = built.space;
    let mut bench = measure::EngineBench::new(
        text.clone(),
        origin,
        space.clone(),
        workloads,
        measure::plan(args.quick),
        topology,
        machine,
    );
    let mut progress = Progress::new(params.budget);
    let outcome = search::search(&space, &params, &mut bench, &mut |elapsed, what| progress.show(elapsed, what));
    progress.finish(outcome.elapsed);
    if let search::Verdict::Failed(why) = &outcome.trials[0].verdict {
        return Err(Failure::runtime(format!(
            "tune: the start config does not run: {why}; hint: check it with `nexus bench` or `nexus run --config`"
        )));
    }

    let tuned = render::tuned_toml(&text, &space, &outcome, &cx);
    measure::parse_config(&tuned, "the tuned config")
        .map_err(|e| Failure::runtime(format!("tune: the tuned config does not validate (a bug): {e}")))?;
    let mut out = std::io::stdout().lock();
    let table = render::table(&space, &outcome, &cx);
    let written = match &args.out {
        Some(path) => {
            std::fs::write(path, &tuned)
                .map_err(|e| Failure::runtime(format!("tune: cannot write {}: {e}", path.display())))?;
            writeln!(out, "{table}tuned config written to {}", path.display())
        }
        None => writeln!(out, "{table}\n# ---- tuned config ----\n{tuned}"),
    };
    written.and_then(|()| out.flush()).map_err(|e| Failure::runtime(format!("tune: cannot write the results: {e}")))
}

/// The progress line on stderr: elapsed against the budget, rewritten in place on a terminal;
/// on anything else one plain line per new comparison (not per pair), so logs stay short.
struct Progress {
    budget: Duration,
    terminal: bool,
    last: String,
}

impl Progress {
    fn new(budget: Duration) -> Self {
        Self { budget, terminal: std::io::stderr().is_terminal(), last: String::new() }
    }

    /// `[#####---------------] 12.3/60 s`: a 20-cell bar of the budget used.
    fn bar(&self, elapsed: Duration) -> String {
        const CELLS: usize = 20;
        let share = (elapsed.as_secs_f64() / self.budget.as_secs_f64().max(1e-9)).clamp(0.0, 1.0);
        let filled = (share * CELLS as f64).round() as usize;
        format!(
            "[{}{}] {:.1}/{} s",
            "#".repeat(filled),
            "-".repeat(CELLS - filled),
            elapsed.as_secs_f64(),
            self.budget.as_secs()
        )
    }

    fn show(&mut self, elapsed: Duration, what: &str) {
        let mut err = std::io::stderr().lock();
        if self.terminal {
            let _ = write!(err, "\r\x1b[K{} {what}", self.bar(elapsed));
        } else {
            // One line per comparison: the label without its pair counter.
            let head = what.split(" pair ").next().unwrap_or(what).to_owned();
            if head != self.last {
                let _ = writeln!(err, "{} {head}", self.bar(elapsed));
                self.last = head;
            }
        }
        let _ = err.flush();
    }

    fn finish(&mut self, elapsed: Duration) {
        let mut err = std::io::stderr().lock();
        if self.terminal {
            let _ = write!(err, "\r\x1b[K");
        }
        let _ = writeln!(err, "{} done", self.bar(elapsed));
    }
}
