//! The message-path targets: each one judged from a run's records, met or not, with its spread.
//!
//! [`evaluate`] reads the records of one `nexus bench` run (its own rounds, interleaved with the
//! peers' rounds) and returns one [`TargetRow`] per target. A target whose records the run did
//! not produce (a workload left out, or `--peers` not given) is reported as not measured, never
//! as met. Ratios against peers are the median of the per-round ratios (`nexus_advantage`),
//! with the min–max over the rounds; see `suite`.
//!
//! Targets measured elsewhere are listed with the command that measures them: the idle CPU
//! share (`nexus bench idle`) and local send+dispatch (the criterion bench).

use crate::report::Record;
use std::fmt::Write as _;

/// One target and what the run measured for it.
#[derive(Clone, Debug, PartialEq)]
pub struct TargetRow {
    /// The target, as the issue states it.
    pub target: &'static str,
    /// The measured figure, with its spread when it has one.
    pub measured: String,
    /// `Some(true)` met, `Some(false)` not met, `None` not measured in this run.
    pub met: Option<bool>,
}

/// Finds the record of `(workload, system, placement, metric)`, the first one when several
/// (sizes) exist and `sized` is `None`, otherwise the one with that many names or agents.
fn find<'a>(records: &'a [Record], key: (&str, &str, &str, &str), sized: Option<u64>) -> Option<&'a Record> {
    records.iter().find(|r| {
        (r.workload, r.system, r.placement, r.metric) == key
            && match sized {
                None => true,
                Some(n) => r.names == Some(n) || r.agents == Some(n),
            }
    })
}

/// `12.3 (11.0–13.1)`: a value with its spread over rounds when the record has one.
fn with_spread(r: &Record, scale: f64, decimals: usize) -> String {
    let v = format!("{:.*}", decimals, r.value * scale);
    match (r.min, r.max) {
        (Some(lo), Some(hi)) => format!("{v} ({:.*}–{:.*})", decimals, lo * scale, decimals, hi * scale),
        _ => v,
    }
}

/// A target judged from one record: `value <= bound` (`at_most`) or `value >= bound`.
struct Spec {
    target: &'static str,
    key: (&'static str, &'static str, &'static str, &'static str),
    /// Names or agents of the sized record wanted (registry), if any.
    sized: Option<u64>,
    /// Factor and unit for the measured text.
    scale: f64,
    unit: &'static str,
    at_most: bool,
    bound: f64,
}

const fn spec(
    target: &'static str,
    key: (&'static str, &'static str, &'static str, &'static str),
    unit: &'static str,
    at_most: bool,
    bound: f64,
) -> Spec {
    Spec { target, key, sized: None, scale: 1.0, unit, at_most, bound }
}

/// The targets judged from a single record each, in report order (the others have their own
/// functions below).
const SPECS: [Spec; 9] = [
    spec(
        "cross ping-pong p50 <= 1.5x the in-run cache-line probe",
        ("pingpong", "nexus", "cross", "rtt_p50_over_probe"),
        "x the probe",
        true,
        1.5,
    ),
    spec(
        "cross ping-pong p50 <= 0.5x crossbeam-channel's",
        ("pingpong", "crossbeam", "cross", "nexus_advantage"),
        "x ahead",
        false,
        2.0,
    ),
    Spec {
        scale: 1e-6,
        ..spec(
            "counting across shards >= 100 M msgs/s",
            ("counting", "nexus", "cross", "msgs_per_s"),
            " M msgs/s",
            false,
            100e6,
        )
    },
    spec(
        "counting across shards >= 3x crossbeam-channel",
        ("counting", "crossbeam", "cross", "nexus_advantage"),
        "x",
        false,
        3.0,
    ),
    spec(
        "counting on one shard >= 2x tokio current_thread",
        ("counting", "tokio", "local", "nexus_advantage"),
        "x",
        false,
        2.0,
    ),
    spec(
        "thread-ring on one shard >= 2x tokio current_thread",
        ("thread-ring", "tokio", "local", "nexus_advantage"),
        "x",
        false,
        2.0,
    ),
    spec(
        "thread-ring on one shard >= 2x glommio local tasks",
        ("thread-ring", "glommio", "local", "nexus_advantage"),
        "x",
        false,
        2.0,
    ),
    Spec {
        sized: Some(10_000),
        ..spec("registry lookup <= 30 ns at 10k names", ("registry", "nexus", "local", "ns_per_op"), " ns", true, 30.0)
    },
    Spec {
        sized: Some(1_000_000),
        ..spec("registry lookup <= 150 ns at 1M names", ("registry", "nexus", "local", "ns_per_op"), " ns", true, 150.0)
    },
];

/// The row of one [`Spec`], or not measured when its record is missing.
fn judged(records: &[Record], spec: &Spec) -> TargetRow {
    match find(records, spec.key, spec.sized) {
        Some(r) => TargetRow {
            target: spec.target,
            measured: format!("{}{}", with_spread(r, spec.scale, if spec.scale == 1.0 { 2 } else { 1 }), spec.unit),
            met: Some(if spec.at_most { r.value <= spec.bound } else { r.value >= spec.bound }),
        },
        None => TargetRow { target: spec.target, measured: "not measured in this run".into(), met: None },
    }
}

/// Every target of the message path, judged from `records`; see the module documentation.
pub fn evaluate(records: &[Record]) -> Vec<TargetRow> {
    let single = |i: usize| judged(records, &SPECS[i]);
    let mut rows = vec![single(0), p99_over_p50(records)];
    rows.extend((1..7).map(single));
    rows.push(best_crossing_peer(records));
    rows.extend((7..9).map(single));
    rows.push(wake_vs_floor(records));
    rows.push(TargetRow {
        target: "an idle `nexus run` uses <= 1% of a core (glommio and threads)",
        measured: "measured by `nexus bench idle`".into(),
        met: None,
    });
    rows.push(TargetRow {
        target: "local send+dispatch <= 10 ns",
        measured: "measured by `cargo bench -p nexus-bench --bench core`".into(),
        met: None,
    });
    rows
}

/// Cross ping-pong p99 against its own p50 (medians of the rounds).
fn p99_over_p50(records: &[Record]) -> TargetRow {
    let target = "cross ping-pong p99 <= 3x its own p50";
    let p50 = find(records, ("pingpong", "nexus", "cross", "rtt_p50_ns"), None);
    let p99 = find(records, ("pingpong", "nexus", "cross", "rtt_p99_ns"), None);
    match (p50, p99) {
        (Some(p50), Some(p99)) if p50.value > 0.0 => {
            let ratio = p99.value / p50.value;
            TargetRow {
                target,
                measured: format!("{ratio:.2}x (p99 {:.0} ns, p50 {:.0} ns)", p99.value, p50.value),
                met: Some(ratio <= 3.0),
            }
        }
        _ => TargetRow { target, measured: "not measured in this run".into(), met: None },
    }
}

/// Thread-ring across shards against the best peer whose hops really cross (at least half of
/// its hops handled on another CPU): the smallest advantage over those peers.
fn best_crossing_peer(records: &[Record]) -> TargetRow {
    let target = "thread-ring across two shards >= 2x the best peer whose hops really cross";
    let crossing = records
        .iter()
        .filter(|r| (r.workload, r.placement, r.metric) == ("thread-ring", "cross", "crossed_share") && r.value >= 0.5);
    let worst = crossing
        .filter_map(|share| find(records, ("thread-ring", share.system, "cross", "nexus_advantage"), None))
        .min_by(|a, b| a.value.total_cmp(&b.value));
    match worst {
        Some(r) => TargetRow {
            target,
            measured: format!("{}x ahead of {}", with_spread(r, 1.0, 2), r.system),
            met: Some(r.value >= 2.0),
        },
        None => TargetRow { target, measured: "not measured in this run".into(), met: None },
    }
}

/// The wake from park against the bare-thread wake-up (`probe_wake`).
fn wake_vs_floor(records: &[Record]) -> TargetRow {
    let target = "wake from park no worse than the bare-thread floor";
    let wake = find(records, ("pingpong", "nexus", "cross", "wake_from_park_p50_ns"), None);
    let floor = find(records, ("pingpong", "limit", "cross", "probe_wake_p50_ns"), None);
    match (wake, floor) {
        (Some(w), Some(f)) => TargetRow {
            target,
            measured: format!("p50 {:.1} µs against {:.1} µs", w.value / 1e3, f.value / 1e3),
            met: Some(w.value <= f.value),
        },
        _ => TargetRow { target, measured: "not measured in this run".into(), met: None },
    }
}

/// The rows as a plain-text table.
pub fn render(rows: &[TargetRow]) -> String {
    let mut out = String::from("targets (medians of per-round figures; spread is min–max over the rounds)\n");
    let width = rows.iter().map(|r| r.target.len()).max().unwrap_or(0);
    for r in rows {
        let verdict = match r.met {
            Some(true) => "met",
            Some(false) => "NOT MET",
            None => "-",
        };
        let _ = writeln!(out, "  {:<width$}  {:<8} {}", r.target, verdict, r.measured);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(
        workload: &'static str,
        system: &'static str,
        placement: &'static str,
        metric: &'static str,
        v: f64,
    ) -> Record {
        Record::new(workload, system, placement, metric, v, "")
    }

    #[test]
    fn missing_records_are_not_measured_never_met() {
        let rows = evaluate(&[]);
        assert!(rows.iter().all(|r| r.met.is_none()), "{rows:?}");
    }

    #[test]
    fn targets_are_judged_from_the_records() {
        let mut over = rec("pingpong", "nexus", "cross", "rtt_p50_over_probe", 1.4);
        over.min = Some(1.2);
        over.max = Some(1.9);
        let mut registry = rec("registry", "nexus", "local", "ns_per_op", 40.0);
        registry.names = Some(10_000);
        let records = vec![
            over,
            rec("pingpong", "nexus", "cross", "rtt_p50_ns", 100.0),
            rec("pingpong", "nexus", "cross", "rtt_p99_ns", 400.0),
            rec("thread-ring", "glommio", "cross", "crossed_share", 1.0),
            rec("thread-ring", "glommio", "cross", "nexus_advantage", 5.0),
            rec("thread-ring", "tokio", "cross", "crossed_share", 0.01),
            rec("thread-ring", "tokio", "cross", "nexus_advantage", 1.1),
            registry,
        ];
        let rows = evaluate(&records);
        let row = |prefix: &str| rows.iter().find(|r| r.target.starts_with(prefix)).unwrap();
        assert_eq!(row("cross ping-pong p50 <= 1.5x").met, Some(true));
        assert!(row("cross ping-pong p50 <= 1.5x").measured.contains("(1.20–1.90)"));
        assert_eq!(row("cross ping-pong p99").met, Some(false), "400 / 100 = 4x");
        let ring = row("thread-ring across");
        assert_eq!(ring.met, Some(true), "tokio's hops do not cross, so glommio is the peer");
        assert!(ring.measured.contains("glommio"));
        assert_eq!(row("registry lookup <= 30").met, Some(false));
        assert_eq!(row("registry lookup <= 150").met, None);
        assert!(render(&rows).contains("NOT MET"));
    }
}
