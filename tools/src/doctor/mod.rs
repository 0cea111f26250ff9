//! `nexus doctor`: checks this machine and a config, and prints PASS, WARN or FAIL per check,
//! each WARN and FAIL with a one-line fix.
//!
//! `nexus doctor [--config FILE] [--json]`
//!
//! 1. Read and validate the config as `nexus run` does (a bad one is exit 2).
//! 2. Take the [`host::Host`]: the io_uring probe, the memlock limit and the topology, and
//!    place the config's `[placement]` on it ([`host::Subject`]).
//! 3. Run the checks ([`checks::NAMES`]), each a pure function of the subject that reads its
//!    files under the host's root, and print the table (or JSON lines) and the summary.
//! 4. Exit 0 when no check FAILed, 1 otherwise.
//!
//! Two hidden flags let the tests drive it on a fake tree: `--root DIR` reads `proc/` and
//! `sys/` under DIR (the topology then comes from DIR's sysfs, hwloc is not asked), and
//! `--fake-io-uring ok|blocked` stands in for the io_uring probe, which no tree can fake
//! (without it, a fake root still gets this machine's probe).
//!
//! Invariant: the whole run reads a few dozen small files and sets up one io_uring ring; it
//! takes milliseconds, and no check waits on anything.

mod checks;
#[cfg(test)]
mod fake;
mod host;
mod report;

use crate::Failure;
use host::{Host, Subject};
use nexus_engine::executor::UringProbe;
use std::io::Write;
use std::path::PathBuf;

/// Arguments of `nexus doctor`.
#[derive(clap::Args, Debug)]
pub struct DoctorArgs {
    /// TOML config whose executor and placement to check (default: configs/default.toml, else
    /// the copy built into the binary).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Print one JSON object per check (check, status, detail, fix) instead of the table.
    #[arg(long)]
    json: bool,
    /// Read proc/ and sys/ under DIR instead of / (for tests).
    #[arg(long, value_name = "DIR", hide = true)]
    root: Option<PathBuf>,
    /// Use this io_uring probe result instead of probing (for tests).
    #[arg(long, value_name = "STATE", hide = true)]
    fake_io_uring: Option<FakeUring>,
}

/// A stand-in for the io_uring probe.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum FakeUring {
    /// A working ring with every required opcode.
    Ok,
    /// `io_uring_setup` refused, as under a seccomp profile that blocks it.
    Blocked,
}

impl FakeUring {
    fn probe(self) -> UringProbe {
        match self {
            FakeUring::Ok => UringProbe::supported(),
            FakeUring::Blocked => UringProbe::failed("io_uring_setup failed: Operation not permitted (os error 1)"),
        }
    }
}

/// Runs `nexus doctor`.
pub fn doctor(args: DoctorArgs) -> Result<(), Failure> {
    let config = crate::run::load_config(args.config.as_ref())?;
    let uring = args.fake_io_uring.map(FakeUring::probe);
    let host = match &args.root {
        Some(root) if root.as_os_str() != "/" => {
            if !root.is_dir() {
                return Err(Failure::usage(format!(
                    "doctor: --root {} is not a directory; hint: point it at a tree holding proc/ and sys/",
                    root.display()
                )));
            }
            Host::at(root, uring.unwrap_or_else(UringProbe::run))
        }
        _ => Host::live(uring),
    };
    let subject = Subject::new(host, config.executor, config.placement.to_request(), config.source.origin());
    let report = checks::run_all(&subject);
    let text = if args.json { report.render_json() } else { report.render_text() };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Failure::runtime(format!("doctor: cannot write the report: {e}")))?;
    if report.failed() {
        let (_, _, fail) = report.counts();
        return Err(Failure::runtime(format!("doctor: {fail} check(s) failed; hint: each FAIL line has its fix")));
    }
    Ok(())
}
