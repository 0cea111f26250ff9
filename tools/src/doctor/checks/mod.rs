//! The checks of `nexus doctor`, each a pure function from a [`Subject`] to one [`Check`].
//!
//! * `engine.rs`: `placement`, `io_uring`, `memlock`, `hwloc`: can the engine start as
//!   configured, and on which executor.
//! * `cpu.rs`: `governor`, `isolation`, `smt`: how the planned CPUs behave.
//! * `kernel.rs`: `numa_balancing`, `thp`: kernel memory policies that cost latency.
//! * `cgroup.rs`: `cgroup`, `cpus_allowed`: what a container or affinity mask allows.
//!
//! Invariants: every check reads its files through [`Subject::host`] (so a fake root fakes all
//! of them), never panics on what a file holds (a malformed file is a WARN that names it), and
//! costs at most a few file reads: the whole run stays far below 100 ms. Each problem has one
//! owning check, so one cause does not count twice in the summary.

mod cgroup;
mod cpu;
mod engine;
mod kernel;

use super::host::Subject;
use super::report::{Check, Report};
use nexus_engine::topology::{format_cpu_list, parse_cpu_list};

/// The check names, in the order they run and print.
pub const NAMES: &[&str] = &[
    "placement",
    "io_uring",
    "memlock",
    "hwloc",
    "governor",
    "isolation",
    "smt",
    "numa_balancing",
    "thp",
    "cgroup",
    "cpus_allowed",
];

/// Runs every check on `subject`, in [`NAMES`] order.
pub fn run_all(subject: &Subject) -> Report {
    let checks: [fn(&Subject) -> Check; 11] = [
        engine::placement,
        engine::io_uring,
        engine::memlock,
        engine::hwloc,
        cpu::governor,
        cpu::isolation,
        cpu::smt,
        kernel::numa_balancing,
        kernel::thp,
        cgroup::cgroup,
        cgroup::cpus_allowed,
    ];
    let report = Report { checks: checks.iter().map(|check| check(subject)).collect() };
    debug_assert!(report.checks.iter().map(|c| c.name).eq(NAMES.iter().copied()));
    report
}

/// A CPU list for a line: `0-3,8`, or `none`.
fn cpus(list: &[usize]) -> String {
    if list.is_empty() {
        "none".to_owned()
    } else {
        format_cpu_list(list)
    }
}

/// `CPU 3` or `CPUs 0-1,4` (or `no CPU`), for a line.
fn cpus_named(list: &[usize]) -> String {
    match list {
        [] => "no CPU".to_owned(),
        [one] => format!("CPU {one}"),
        _ => format!("CPUs {}", format_cpu_list(list)),
    }
}

/// Reads `rel` under the subject's root as a CPU list: `Ok(None)` when missing, an empty list
/// for an empty file (or the kernel's `(null)`), an error naming the file when it is malformed.
fn read_cpu_list(subject: &Subject, rel: &str) -> Result<Option<Vec<usize>>, String> {
    let Some(text) = subject.host.read(rel)? else {
        return Ok(None);
    };
    parse_cpu_text(&text).map(Some).map_err(|e| format!("{} holds {text:?}: {e}", subject.host.path(rel).display()))
}

/// Parses a kernel CPU list, where an empty text or `(null)` is the empty list.
fn parse_cpu_text(text: &str) -> Result<Vec<usize>, String> {
    let text = text.trim();
    if text.is_empty() || text == "(null)" {
        return Ok(Vec::new());
    }
    let mut list = parse_cpu_list(text).map_err(|e| e.to_string())?;
    list.sort_unstable();
    list.dedup();
    Ok(list)
}

/// The planned CPUs missing from `allowed`, in plan order without repeats.
fn outside(planned: &[usize], allowed: &[usize]) -> Vec<usize> {
    let mut out: Vec<usize> = planned.iter().copied().filter(|c| !allowed.contains(c)).collect();
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(test)]
pub(crate) mod testing {
    //! Building subjects on fake trees for the checks' tests.

    pub use crate::doctor::fake::FakeRoot;
    use crate::doctor::host::{Host, Subject};
    pub use crate::doctor::report::{Check, Status};
    pub use nexus_engine::executor::ExecutorKind;
    use nexus_engine::executor::UringProbe;
    pub use nexus_engine::placement::PlacementRequest;

    /// `request` running `executor` on the tree under `root`, with a working io_uring.
    pub fn subject(root: &FakeRoot, executor: ExecutorKind, request: PlacementRequest) -> Subject {
        subject_with(root, executor, request, UringProbe::supported())
    }

    /// As [`subject`], with the given io_uring probe.
    pub fn subject_with(
        root: &FakeRoot,
        executor: ExecutorKind,
        request: PlacementRequest,
        uring: UringProbe,
    ) -> Subject {
        Subject::new(Host::at(root.path(), uring), executor, request, "test.toml")
    }

    /// The default config (`auto`, one shard per core) on the tree under `root`.
    pub fn default_subject(root: &FakeRoot) -> Subject {
        subject(root, ExecutorKind::Auto, PlacementRequest::per_core())
    }

    /// Asserts `check` has `status`, with every `needle` in its detail or fix.
    #[track_caller]
    pub fn expect(check: &Check, status: Status, needles: &[&str]) {
        assert_eq!(check.status, status, "{check:?}");
        let text = format!("{} {}", check.detail, check.fix.as_deref().unwrap_or(""));
        for needle in needles {
            assert!(text.contains(needle), "{needle:?} not in {check:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn a_healthy_tree_passes_every_check_in_order() {
        let root = FakeRoot::healthy("all-pass", 2);
        let report = run_all(&default_subject(&root));
        let names: Vec<&str> = report.checks.iter().map(|c| c.name).collect();
        assert_eq!(names, NAMES);
        for check in &report.checks {
            assert_eq!(check.status, Status::Pass, "{check:?}");
        }
    }

    #[test]
    fn cpu_lists_parse_with_null_and_empty() {
        assert_eq!(parse_cpu_text(""), Ok(vec![]));
        assert_eq!(parse_cpu_text("(null)"), Ok(vec![]));
        assert_eq!(parse_cpu_text("3,0-1"), Ok(vec![0, 1, 3]));
        assert!(parse_cpu_text("zero").is_err());
        assert_eq!(outside(&[3, 0, 3, 5], &[0, 1]), vec![3, 5]);
        assert_eq!(cpus(&[]), "none");
        assert_eq!(cpus_named(&[3]), "CPU 3");
        assert_eq!(cpus_named(&[0, 1]), "CPUs 0-1");
    }

    #[test]
    fn an_empty_tree_gives_verdicts_without_panicking() {
        // No /proc, no /sys: every check still answers (the topology fails, so placement FAILs).
        let root = FakeRoot::empty("bare");
        let report = run_all(&default_subject(&root));
        assert_eq!(report.checks.len(), NAMES.len());
        assert_eq!(report.checks[0].status, Status::Fail, "{:?}", report.checks[0]);
    }
}
