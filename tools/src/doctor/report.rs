//! The doctor's verdicts and how they print.
//!
//! Owns [`Status`], [`Check`] (one verdict: a name, a status, one line of detail and, for a
//! WARN or FAIL, one line saying how to fix it) and [`Report`] (the verdicts in order, rendered
//! as an aligned table or as JSON lines, and the exit verdict).
//!
//! Invariants, checked by `debug_assert!` when a check is made: the detail and the fix are each
//! a single line; a PASS has no fix and a WARN or FAIL always has one.

use std::fmt::Write as _;

/// Width of the name column in the table (the longest check name fits with room to spare).
const NAME_WIDTH: usize = 16;

/// The verdict of one check, from best to worst.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Nothing to do.
    Pass,
    /// Works, but costs latency or throughput, or could not be checked; the fix says what to do.
    Warn,
    /// The engine cannot run as configured here (or will be throttled hard); the fix says what to do.
    Fail,
}

impl Status {
    /// `PASS`, `WARN` or `FAIL`.
    pub fn label(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        }
    }
}

/// One check's verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// The check's name (`io_uring`, `memlock`, ...), one word.
    pub name: &'static str,
    /// Its verdict.
    pub status: Status,
    /// What was found, one line.
    pub detail: String,
    /// How to fix it, one line; `None` exactly for a PASS.
    pub fix: Option<String>,
}

impl Check {
    /// A PASS.
    pub fn pass(name: &'static str, detail: impl Into<String>) -> Self {
        Self::new(name, Status::Pass, detail.into(), None)
    }

    /// A WARN with its fix.
    pub fn warn(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self::new(name, Status::Warn, detail.into(), Some(fix.into()))
    }

    /// A FAIL with its fix.
    pub fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self::new(name, Status::Fail, detail.into(), Some(fix.into()))
    }

    /// A verdict of `status`: a PASS drops the fix, a WARN or FAIL keeps it.
    pub fn with_status(name: &'static str, status: Status, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        match status {
            Status::Pass => Self::pass(name, detail),
            _ => Self::new(name, status, detail.into(), Some(fix.into())),
        }
    }

    fn new(name: &'static str, status: Status, detail: String, fix: Option<String>) -> Self {
        debug_assert!(!detail.contains('\n'), "{name}: the detail is one line: {detail:?}");
        debug_assert!(fix.as_deref().map_or(true, |f| !f.contains('\n')), "{name}: the fix is one line: {fix:?}");
        debug_assert_eq!(fix.is_some(), status != Status::Pass, "{name}: a fix exactly for WARN and FAIL");
        Self { name, status, detail, fix }
    }
}

/// Every verdict of one doctor run, in the order the checks ran.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// The verdicts.
    pub checks: Vec<Check>,
}

impl Report {
    /// How many checks passed, warned and failed.
    pub fn counts(&self) -> (usize, usize, usize) {
        let count = |s: Status| self.checks.iter().filter(|c| c.status == s).count();
        (count(Status::Pass), count(Status::Warn), count(Status::Fail))
    }

    /// Whether any check failed (the exit status is then 1).
    pub fn failed(&self) -> bool {
        self.checks.iter().any(|c| c.status == Status::Fail)
    }

    /// The table: one line per check (`PASS  io_uring        ring set up; ...`), an indented
    /// `fix:` line under each WARN and FAIL, and the summary line.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        for c in &self.checks {
            let _ = writeln!(out, "{}  {:<NAME_WIDTH$}{}", c.status.label(), c.name, c.detail);
            if let Some(fix) = &c.fix {
                let _ = writeln!(out, "      fix: {fix}");
            }
        }
        let (pass, warn, fail) = self.counts();
        let _ = writeln!(out, "doctor: {pass} PASS, {warn} WARN, {fail} FAIL");
        out
    }

    /// JSON lines: one object per check, `{"check", "status", "detail", "fix"}` (`fix` is null
    /// for a PASS).
    pub fn render_json(&self) -> String {
        let mut out = String::new();
        for c in &self.checks {
            let line = serde_json::json!({
                "check": c.name,
                "status": c.status.label(),
                "detail": c.detail,
                "fix": c.fix,
            });
            let _ = writeln!(out, "{line}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        Report {
            checks: vec![
                Check::pass("io_uring", "ring set up; 16/16 opcodes; auto picks glommio"),
                Check::warn("thp", "enabled always", "echo madvise > /sys/kernel/mm/transparent_hugepage/enabled"),
                Check::fail("cgroup", "0.50 CPUs for 2 shards", "docker run --cpus=2"),
            ],
        }
    }

    #[test]
    fn the_table_aligns_names_and_indents_fixes() {
        let text = report().render_text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "PASS  io_uring        ring set up; 16/16 opcodes; auto picks glommio");
        assert_eq!(lines[1], "WARN  thp             enabled always");
        assert_eq!(lines[2], "      fix: echo madvise > /sys/kernel/mm/transparent_hugepage/enabled");
        assert_eq!(lines[3], "FAIL  cgroup          0.50 CPUs for 2 shards");
        assert_eq!(lines[4], "      fix: docker run --cpus=2");
        assert_eq!(lines[5], "doctor: 1 PASS, 1 WARN, 1 FAIL");
        assert_eq!(lines.len(), 6);
    }

    #[test]
    fn json_has_one_object_per_check() {
        let text = report().render_json();
        let objects: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(objects.len(), 3);
        assert_eq!(objects[0]["check"], "io_uring");
        assert_eq!(objects[0]["status"], "PASS");
        assert!(objects[0]["fix"].is_null());
        assert_eq!(objects[2]["status"], "FAIL");
        assert_eq!(objects[2]["fix"], "docker run --cpus=2");
    }

    #[test]
    fn only_a_fail_fails_the_run() {
        let mut r = report();
        assert!(r.failed());
        r.checks.pop();
        assert!(!r.failed());
        assert_eq!(r.counts(), (1, 1, 0));
        assert_eq!(Check::with_status("x", Status::Pass, "fine", "unused").fix, None);
    }
}
