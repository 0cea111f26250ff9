//! `nexus`: the engine binary. `nexus run` starts the engine from a TOML config; `nexus bench`
//! runs the yardstick; `nexus sim` runs the deterministic simulation's scenarios; `nexus trace`
//! collects message traces from a running engine; `nexus top` shows a running engine live,
//! from its metrics endpoint; `nexus topo`,
//! `nexus doctor`, `nexus c2c` and `nexus tune` describe, check, measure and tune the machine
//! the engine runs on.
//!
//! Errors print as one line (`nexus: ...` with a hint) and set the exit status: 2 for a bad
//! config or bad arguments, 1 for a runtime failure.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod bench;
mod bench_cluster;
mod bench_cluster_raw;
mod bench_compare;
mod bench_coord;
mod bench_idle;
mod bench_restart;
mod bench_server;
mod bench_tracing;
mod bench_tracing_round;
mod c2c;
mod child;
mod doctor;
mod log;
mod run;
mod run_cluster;
mod sim;
mod top;
mod topo;
mod trace;
mod tune;

// The binary picks the allocator; the library never does.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Nexus: a thread-per-core agent engine.
#[derive(Parser, Debug)]
#[command(name = "nexus", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start the engine and its RESP server from a TOML config; run until Ctrl-C or SIGTERM.
    Run(run::RunArgs),
    /// Run a core workload and print a table (or JSON lines).
    Bench(bench::BenchArgs),
    /// Measure the core-to-core latency matrix (the cache-line probe on every pair of CPUs).
    C2c(c2c::C2cArgs),
    /// Live view of a running engine: per-shard rates, queues, latency, dead letters, clients,
    /// busiest agents.
    Top(top::TopArgs),
    /// Show the machine's topology (or an hwloc XML's) and where the config would put the shards.
    Topo(topo::TopoArgs),
    /// Check this machine and a config (io_uring, memlock, CPUs, kernel, cgroup): PASS, WARN or
    /// FAIL per check, with a fix for each WARN and FAIL; exit 1 if any FAIL.
    Doctor(doctor::DoctorArgs),
    /// Deterministic simulation: run a scenario over seeds (`run`), replay one (`replay`),
    /// list them (`list`).
    Sim(sim::SimArgs),
    /// Collect message traces from a running `nexus run` for a while: write a Perfetto /
    /// chrome://tracing file and print the slowest paths with their hops.
    Trace(trace::TraceArgs),
    /// Search engine settings (ring capacity, batch, spin, shards, SMT, executor) for the best
    /// yardstick figures on this machine within a time budget; write the tuned config.
    Tune(tune::TuneArgs),
}

/// A failure of a command: its message (one line, with a hint) and exit status.
#[derive(Debug)]
pub struct Failure {
    /// What to print after `nexus: `.
    pub message: String,
    /// The exit status.
    pub status: u8,
}

impl Failure {
    /// A bad config or argument (exit status 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Self { message: message.into(), status: 2 }
    }

    /// A runtime failure (exit status 1).
    pub fn runtime(message: impl Into<String>) -> Self {
        Self { message: message.into(), status: 1 }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    log::init();
    // A bad NEXUS_HASH_SEED would panic at the first name hash: say so as one line instead.
    if let Err(e) = nexus_engine::registry::NameHasher::seed_from_env() {
        eprintln!("nexus: {e}");
        return ExitCode::from(Failure::usage(String::new()).status);
    }
    let result = match cli.command {
        Command::Run(args) => run::run(args),
        Command::Bench(args) => bench::bench(args),
        Command::C2c(args) => c2c::c2c(args),
        Command::Top(args) => top::top(args),
        Command::Topo(args) => topo::topo(args),
        Command::Doctor(args) => doctor::doctor(args),
        Command::Tune(args) => tune::tune(args),
        Command::Sim(args) => sim::sim(args),
        Command::Trace(args) => trace::trace(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("nexus: {}", f.message);
            ExitCode::from(f.status)
        }
    }
}
