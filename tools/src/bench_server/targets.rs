//! `nexus bench server`'s nexus configurations ([`NexusSide`]), the targets each is judged by
//! ([`goals`], [`Verdict`]), and the recovery figure read from a restarted server's log
//! ([`parse_recovery`]).
//!
//! The targets: with 1 shard, at least 1.3x redis-server's requests/s at pipeline 16 and 1.1x
//! at pipeline 1, for SET and GET, with a median p99 no worse; with 2 or more shards, at least
//! 1.5x at pipeline 16 for SET and GET; with `[persistence] mode = "aof"`, at least 0.9x
//! (`fsync = "everysec"`) or 0.5x (`fsync = "always"`) of the same nexus without persistence,
//! every test and pipeline; recovery of the loaded keys within [`RECOVERY_TARGET_S`].
//!
//! Everything here is pure: no process, no socket, no clock.

use super::figures::{Summary, Test, PIPELINES};
use std::fmt::Write as _;
use std::path::Path;

/// The longest a restart may take to recover its keys (seconds).
pub const RECOVERY_TARGET_S: f64 = 1.0;

/// An append-only log's `fsync` setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fsync {
    /// `fsync = "everysec"`.
    EverySec,
    /// `fsync = "always"`.
    Always,
}

impl Fsync {
    /// The TOML value.
    pub fn name(self) -> &'static str {
        match self {
            Fsync::EverySec => "everysec",
            Fsync::Always => "always",
        }
    }
}

/// One `nexus run` configuration measured: its shards, and its append-only log (`None`: no
/// persistence).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NexusSide {
    /// Shards.
    pub shards: usize,
    /// `[persistence] mode = "aof"` with this fsync (`None`: no persistence).
    pub aof: Option<Fsync>,
}

impl NexusSide {
    /// The name in the tables and progress lines (`nexus 2 shards aof everysec`).
    pub fn label(&self) -> String {
        let plural = if self.shards == 1 { "" } else { "s" };
        let aof = self.aof.map_or(String::new(), |f| format!(" aof {}", f.name()));
        format!("nexus {} shard{plural}{aof}", self.shards)
    }

    /// The `system` of its JSON records.
    pub fn system(&self) -> &'static str {
        match self.aof {
            None => "nexus",
            Some(Fsync::EverySec) => "nexus-aof-everysec",
            Some(Fsync::Always) => "nexus-aof-always",
        }
    }

    /// The `[persistence]` table of its config (empty without persistence), logs under `dir`.
    pub fn persistence_toml(&self, dir: &Path) -> String {
        self.aof.map_or(String::new(), |fsync| {
            format!(
                "\n[persistence]\nmode = \"aof\"\nfsync = \"{}\"\ndir = {:?}\n",
                fsync.name(),
                dir.display().to_string()
            )
        })
    }
}

/// One target: at least `rps_ratio` times the other server's requests/s for `test` at
/// `pipeline`, and (when `p99`) a median p99 no worse.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Goal {
    /// The test.
    pub test: Test,
    /// The pipeline depth.
    pub pipeline: u32,
    /// The least ratio of requests/s.
    pub rps_ratio: f64,
    /// Whether the p99 is judged too.
    pub p99: bool,
}

/// The targets of `side` (see the module documentation).
pub fn goals(side: &NexusSide) -> Vec<Goal> {
    let goal = |test, pipeline, rps_ratio, p99| Goal { test, pipeline, rps_ratio, p99 };
    let every = |ratio| Test::ALL.iter().flat_map(move |&t| PIPELINES.map(|p| goal(t, p, ratio, false))).collect();
    match (side.aof, side.shards) {
        (Some(Fsync::EverySec), _) => every(0.9),
        (Some(Fsync::Always), _) => every(0.5),
        (None, 1) => {
            [Test::Set, Test::Get].into_iter().flat_map(|t| [goal(t, 16, 1.3, true), goal(t, 1, 1.1, true)]).collect()
        }
        (None, _) => [Test::Set, Test::Get].into_iter().map(|t| goal(t, 16, 1.5, false)).collect(),
    }
}

/// A goal judged on a summary.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Verdict {
    /// The target.
    pub goal: Goal,
    /// The (test, pipeline)'s summary: measured side as `nexus`, the other as `redis`.
    pub summary: Summary,
}

impl Verdict {
    /// Throughput at least the goal's ratio (the median of the per-round ratios).
    pub fn rps_met(&self) -> bool {
        self.summary.rps_ratio >= self.goal.rps_ratio
    }

    /// The median p99 no worse, where judged.
    pub fn p99_met(&self) -> bool {
        !self.goal.p99 || self.summary.nexus.p99_ms <= self.summary.redis.p99_ms
    }

    /// Both.
    pub fn met(&self) -> bool {
        self.rps_met() && self.p99_met()
    }
}

/// The verdict of each goal whose (test, pipeline) was measured.
pub fn verdicts(goals: &[Goal], summaries: &[Summary]) -> Vec<Verdict> {
    goals
        .iter()
        .filter_map(|&goal| {
            let summary = summaries.iter().find(|s| s.test == goal.test && s.pipeline == goal.pipeline)?;
            Some(Verdict { goal, summary: *summary })
        })
        .collect()
}

/// The target lines of one comparison (`subject` against `baseline`): one per goal. A goal
/// not met on a client-bound row says so, with redis-benchmark's median CPU on each bound side
/// (the verdict itself stays the figures' alone).
pub fn render_verdicts(subject: &str, baseline: &str, verdicts: &[Verdict]) -> String {
    let mut out = format!("targets of {subject} against {baseline}:\n");
    for v in verdicts {
        let mut short = Vec::new();
        if !v.rps_met() {
            short.push("throughput short".to_string());
        }
        if !v.p99_met() {
            short.push("p99 worse".to_string());
        }
        if !v.met() {
            short.extend(client_bound(v, subject, baseline));
        }
        let why = if short.is_empty() { String::new() } else { format!(" ({})", short.join(", ")) };
        let (lo, hi) = v.summary.rps_ratio_range;
        let p99 = if v.goal.p99 { ", p99 no worse" } else { "" };
        let _ = writeln!(
            out,
            "  {:<4} -P {:<2}  {}: {:.2}x req/s (rounds {lo:.2}-{hi:.2}; target {:.1}x{p99}), p99 {:.3} ms against {:.3} ms{why}",
            v.goal.test.label(),
            v.goal.pipeline,
            if v.met() { "met" } else { "not met" },
            v.summary.rps_ratio,
            v.goal.rps_ratio,
            v.summary.nexus.p99_ms,
            v.summary.redis.p99_ms,
        );
    }
    out
}

/// `client-bound: redis-benchmark at 97% of a CPU against nexus 1 shard` for a client-bound
/// row (each bound side named), else `None`.
fn client_bound(v: &Verdict, subject: &str, baseline: &str) -> Option<String> {
    let sides = [(v.summary.nexus_cpu, subject), (v.summary.redis_cpu, baseline)];
    let bound: Vec<String> = sides
        .iter()
        .filter_map(|(cpu, name)| Some(format!("{:.0}% of a CPU against {name}", cpu.client_bound()?)))
        .collect();
    (!bound.is_empty()).then(|| format!("client-bound: redis-benchmark at {}", bound.join(" and ")))
}

/// What a restarted server's log says it recovered.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Recovery {
    /// Keys recovered.
    pub keys: u64,
    /// Seconds the recovery took.
    pub seconds: f64,
}

/// Reads the recovery line of `nexus run`'s log, leniently: the first line with `recovered`,
/// its first integer between that word and the last ` in ` (commas and underscores allowed) as
/// the keys, and the number before a `s`/`ms`/`us` unit after that ` in ` as the time (`recovered 1000000 keys from
/// 2 logs in 0.84 s`). No such line, or no time in it, is an error saying so.
pub fn parse_recovery(log: &str) -> Result<Recovery, String> {
    let line = log.lines().find(|l| l.contains("recovered")).ok_or(
        "the restarted server's log has no line with `recovered` (expected e.g. \"recovered N keys from K logs in \
         X s\"); hint: this nexus build may not recover from its append-only logs",
    )?;
    let after = &line[line.find("recovered").map_or(0, |i| i + "recovered".len())..];
    let (counted, timed) = after.rsplit_once(" in ").ok_or_else(|| format!("no ` in TIME` in {line:?}"))?;
    let keys = counted
        .split_whitespace()
        .map(|w| w.replace([',', '_'], ""))
        .find_map(|w| w.parse::<u64>().ok())
        .ok_or_else(|| format!("no key count after `recovered` in {line:?}"))?;
    let number: String = timed.trim().chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
    let value: f64 = number.parse().map_err(|_| format!("no time after ` in ` in {line:?}"))?;
    let unit = timed.trim()[number.len()..].trim_start();
    let seconds = if unit.starts_with("ms") {
        value / 1e3
    } else if unit.starts_with("us") || unit.starts_with("µs") {
        value / 1e6
    } else if unit.starts_with('s') {
        value
    } else {
        return Err(format!("the time in {line:?} has no unit (s, ms or us)"));
    };
    Ok(Recovery { keys, seconds })
}

#[cfg(test)]
mod tests {
    use super::super::cpu::Usage;
    use super::super::figures::{summarize, Figures, Run};
    use super::*;

    /// A run of 1,000 requests in 1 s, its CPU unknown.
    fn figures(rps: f64, p99_ms: f64) -> Run {
        let usage = Usage { wall_s: 1.0, client_cpu_s: None, server_cpu_s: None, client_threads: 1 };
        Run { figures: Figures { rps, p50_ms: 0.5, p99_ms }, requests: 1_000, usage }
    }

    /// Such a run with redis-benchmark at `client_pct`% of a CPU and the server at half of one.
    fn bound(rps: f64, p99_ms: f64, client_pct: f64) -> Run {
        let usage =
            Usage { wall_s: 1.0, client_cpu_s: Some(client_pct / 100.0), server_cpu_s: Some(0.5), client_threads: 1 };
        Run { usage, ..figures(rps, p99_ms) }
    }

    #[test]
    fn each_configuration_has_its_targets() {
        let one = goals(&NexusSide { shards: 1, aof: None });
        assert_eq!(one.len(), 4);
        assert!(one.iter().all(|g| g.p99 && matches!(g.test, Test::Set | Test::Get)));
        assert!(one.iter().any(|g| g.pipeline == 16 && g.rps_ratio == 1.3));
        assert!(one.iter().any(|g| g.pipeline == 1 && g.rps_ratio == 1.1));
        let two = goals(&NexusSide { shards: 2, aof: None });
        assert!(two.len() == 2 && two.iter().all(|g| g.pipeline == 16 && g.rps_ratio == 1.5 && !g.p99));
        let aof = goals(&NexusSide { shards: 1, aof: Some(Fsync::EverySec) });
        assert_eq!(aof.len(), Test::ALL.len() * PIPELINES.len());
        assert!(aof.iter().all(|g| g.rps_ratio == 0.9));
        assert!(goals(&NexusSide { shards: 2, aof: Some(Fsync::Always) }).iter().all(|g| g.rps_ratio == 0.5));
    }

    #[test]
    fn verdicts_need_the_ratio_and_where_judged_the_p99() {
        let side = NexusSide { shards: 1, aof: None };
        let summaries = [
            summarize(Test::Set, 16, &[figures(130.0, 2.0), figures(140.0, 2.0)], &[figures(100.0, 2.0); 2]),
            summarize(Test::Get, 16, &[figures(200.0, 3.0)], &[figures(100.0, 2.0)]),
            summarize(Test::Set, 1, &[figures(109.0, 1.0)], &[figures(100.0, 2.0)]),
        ];
        let v = verdicts(&goals(&side), &summaries);
        assert_eq!(v.len(), 3, "GET -P 1 was not measured");
        assert_eq!(v.iter().map(Verdict::met).collect::<Vec<_>>(), [true, false, false]);
        let text = render_verdicts(&side.label(), "redis-server", &v);
        assert!(text.starts_with("targets of nexus 1 shard against redis-server:\n"), "{text}");
        assert!(text.contains("SET  -P 16  met: 1.35x req/s (rounds 1.30-1.40; target 1.3x, p99 no worse)"), "{text}");
        assert!(text.contains("GET  -P 16  not met: 2.00x") && text.contains("(p99 worse)"), "{text}");
        assert!(text.contains("SET  -P 1   not met: 1.09x") && text.contains("(throughput short)"), "{text}");
        let aof = NexusSide { shards: 1, aof: Some(Fsync::Always) };
        let slow = summarize(Test::Get, 1, &[figures(50.0, 9.0)], &[figures(100.0, 1.0)]);
        assert!(verdicts(&goals(&aof), &[slow])[0].met(), "0.5x is enough, p99 not judged");
    }

    #[test]
    fn a_client_bound_row_not_met_says_so_and_keeps_its_verdict() {
        let side = NexusSide { shards: 1, aof: None };
        let summaries = [
            // Not met, redis-benchmark at 97% against nexus: bound.
            summarize(Test::Set, 16, &[bound(120.0, 1.0, 97.0)], &[bound(100.0, 2.0, 60.0)]),
            // Met although bound: the verdict line stays as it was.
            summarize(Test::Get, 16, &[bound(140.0, 1.0, 95.0)], &[bound(100.0, 2.0, 60.0)]),
            // Not met, both sides bound.
            summarize(Test::Set, 1, &[bound(100.0, 1.0, 92.0)], &[bound(100.0, 2.0, 99.0)]),
            // Not met, not bound (89%).
            summarize(Test::Get, 1, &[bound(100.0, 1.0, 89.0)], &[bound(100.0, 2.0, 50.0)]),
        ];
        let v = verdicts(&goals(&side), &summaries);
        // In the goals' order: SET -P 16, SET -P 1, GET -P 16, GET -P 1.
        assert_eq!(v.iter().map(Verdict::met).collect::<Vec<_>>(), [false, false, true, false], "the figures alone");
        let text = render_verdicts(&side.label(), "redis-server", &v);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[1].ends_with(
                "not met: 1.20x req/s (rounds 1.20-1.20; target 1.3x, p99 no worse), p99 1.000 ms against 2.000 ms \
                 (throughput short, client-bound: redis-benchmark at 97% of a CPU against nexus 1 shard)"
            ),
            "{text}"
        );
        assert!(lines[3].contains("  met: 1.40x") && !lines[3].contains("client-bound"), "{text}");
        assert!(
            lines[2].ends_with(
                "(throughput short, client-bound: redis-benchmark at 92% of a CPU against nexus 1 shard and 99% of \
                 a CPU against redis-server)"
            ),
            "{text}"
        );
        assert!(lines[4].ends_with("(throughput short)"), "{text}");
    }

    #[test]
    fn labels_systems_and_config() {
        let side = NexusSide { shards: 2, aof: Some(Fsync::EverySec) };
        assert_eq!(side.label(), "nexus 2 shards aof everysec");
        assert_eq!(side.system(), "nexus-aof-everysec");
        let toml = side.persistence_toml(Path::new("/tmp/x"));
        assert_eq!(toml, "\n[persistence]\nmode = \"aof\"\nfsync = \"everysec\"\ndir = \"/tmp/x\"\n");
        assert_eq!(NexusSide { shards: 1, aof: None }.persistence_toml(Path::new("/")), "");
    }

    #[test]
    fn the_recovery_line_is_read_leniently() {
        let log = "INFO starting\nINFO nexus: recovered 1,000,000 keys from 2 logs in 0.84 s\nready\n";
        assert_eq!(parse_recovery(log), Ok(Recovery { keys: 1_000_000, seconds: 0.84 }));
        let ms = parse_recovery("recovered 42 keys in 350ms").expect("ms");
        assert_eq!(ms.keys, 42);
        assert!((ms.seconds - 0.35).abs() < 1e-12);
        assert!(parse_recovery("listening on 7379\n").unwrap_err().contains("no line with `recovered`"));
        assert!(parse_recovery("recovered some keys in 1 s").unwrap_err().contains("no key count"));
        assert!(parse_recovery("recovered 5 keys").unwrap_err().contains("` in TIME`"));
        assert!(parse_recovery("recovered 5 keys in soon").unwrap_err().contains("no time"));
    }
}
