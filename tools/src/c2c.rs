//! `nexus c2c`: the core-to-core latency matrix of this machine.
//!
//! `nexus c2c [--cpus LIST] [--svg FILE] [--round-trips N]`
//!
//! 1. Take the CPUs: `--cpus` (a Linux CPU list such as `0-3,8`), or by default the CPUs of
//!    the engine's default placement (one per physical core, SMT siblings skipped). At least
//!    two are needed (exit 2 with a hint otherwise).
//! 2. Run the cache-line probe (`nexus_bench::probe`) pinned on every ordered pair of them,
//!    one pair at a time, with a progress line on stderr (rewritten in place on a terminal).
//! 3. Print the matrix on stdout as two tables: the round-trip p50 (each trip timed) and the
//!    one-way latency estimated as half the batched round trip. With `--svg`, also write both
//!    as heatmaps.
//!
//! Both probe threads spin: run it on an otherwise idle machine, never next to a running engine.

use crate::Failure;
use nexus_bench::c2c::C2cMatrix;
use nexus_bench::probe::ProbeParams;
use nexus_bench::BenchError;
use nexus_engine::placement::{self, PlacementRequest};
use nexus_engine::topology::{format_cpu_list, parse_cpu_list, Topology};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

/// Arguments of `nexus c2c`.
#[derive(clap::Args, Debug)]
pub struct C2cArgs {
    /// CPUs to measure, as a Linux CPU list (`0-3,8`); default: one CPU per physical core, as
    /// the engine places its shards.
    #[arg(long, value_name = "LIST")]
    cpus: Option<String>,
    /// Also write the matrix as an SVG heatmap to FILE.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
    /// Round trips timed one by one per pair (the batched estimate runs twice as many more,
    /// after a tenth as many unrecorded warm-up trips).
    #[arg(long, value_name = "N", default_value_t = 20_000)]
    round_trips: u64,
}

/// Runs `nexus c2c`.
pub fn c2c(args: C2cArgs) -> Result<(), Failure> {
    if args.round_trips == 0 {
        return Err(Failure::usage("c2c: --round-trips must be at least 1; hint: the default is 20000"));
    }
    let topology = Topology::detect().map_err(|e| Failure::runtime(format!("c2c: cannot read the topology: {e}")))?;
    let cpus = match &args.cpus {
        Some(list) => parse_cpu_list(list).map_err(|e| Failure::usage(format!("c2c: --cpus: {e}")))?,
        None => placement::plan(&topology, &PlacementRequest::per_core())
            .map_err(|e| Failure::runtime(format!("c2c: cannot plan the default CPUs: {e}")))?
            .cpus(),
    };
    if cpus.len() < 2 {
        let hint = if args.cpus.is_some() {
            "hint: list at least two CPUs, e.g. --cpus 0,1"
        } else {
            "hint: this machine has one usable core; --cpus 0,1 measures two SMT siblings if it has them"
        };
        return Err(Failure::usage(format!(
            "c2c: {} CPU(s) ({}) but the matrix needs at least 2; {hint}",
            cpus.len(),
            format_cpu_list(&cpus)
        )));
    }
    let params = probe_params(args.round_trips);
    let matrix = measure_matrix("c2c", &cpus, &topology, &params)?;

    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "nexus c2c: CPUs {} (pinned), {} round trips per pair timed one by one, {} batched\n\n{}",
        format_cpu_list(&cpus),
        params.round_trips,
        params.batch_round_trips,
        matrix.render_table().trim_end()
    )
    .and_then(|()| out.flush())
    .map_err(|e| Failure::runtime(format!("c2c: cannot write the matrix: {e}")))?;
    if let Some(path) = &args.svg {
        matrix.write_svg(path).map_err(|e| failure("c2c", e))?;
        eprintln!("nexus: c2c: wrote {}", path.display());
    }
    Ok(())
}

/// The probe parameters for `round_trips` timed trips per pair: a tenth as many (at least 100)
/// unrecorded warm-up trips, and twice as many batched ones for the one-way estimate.
pub fn probe_params(round_trips: u64) -> ProbeParams {
    ProbeParams {
        round_trips,
        warmup: (round_trips / 10).max(100),
        batch_round_trips: round_trips.saturating_mul(2),
        pin: true,
    }
}

/// Measures the matrix of `cpus` (at least two, distinct, on this machine) with a progress
/// line on stderr; errors are prefixed with `command` (`c2c`, `topo --c2c`). Shared by
/// `nexus c2c` and `nexus topo --c2c`.
pub fn measure_matrix(
    command: &str,
    cpus: &[usize],
    topology: &Topology,
    params: &ProbeParams,
) -> Result<C2cMatrix, Failure> {
    let mut progress = Progress::new();
    let n = cpus.len();
    let measured = nexus_bench::c2c::measure(cpus, topology, params, &mut |step, steps| {
        // The pairs run in row-major order, the diagonal skipped.
        let (i, k) = ((step - 1) / (n - 1), (step - 1) % (n - 1));
        let j = if k >= i { k + 1 } else { k };
        progress.show(&format!("[{step}/{steps}] CPU {} -> CPU {}", cpus[i], cpus[j]));
    });
    progress.finish();
    measured.map_err(|e| failure(command, e))
}

/// A bench error as a command failure: bad CPUs are usage errors (exit 2), the rest runtime
/// errors (exit 1).
fn failure(command: &str, e: BenchError) -> Failure {
    if e.is_usage() {
        Failure::usage(format!("{command}: {e}"))
    } else {
        Failure::runtime(format!("{command}: {e}"))
    }
}

/// The progress line on stderr: rewritten in place on a terminal, one line per pair otherwise.
struct Progress {
    terminal: bool,
    shown: bool,
}

impl Progress {
    fn new() -> Self {
        Self { terminal: std::io::stderr().is_terminal(), shown: false }
    }

    fn show(&mut self, line: &str) {
        let mut err = std::io::stderr().lock();
        let _ = if self.terminal { write!(err, "\r\x1b[K{line}") } else { writeln!(err, "{line}") };
        let _ = err.flush();
        self.shown = true;
    }

    fn finish(&mut self) {
        if self.terminal && self.shown {
            let _ = write!(std::io::stderr(), "\r\x1b[K");
        }
    }
}
