//! `nexus bench compare OLD NEW [--threshold P]`: two runs' figures side by side, each judged
//! better, worse or the same.
//!
//! 1. Read both files: the JSON lines `nexus bench ... --json FILE` writes (one record per
//!    line, see `nexus_bench::report`; blank lines skipped). Each line is read into a
//!    [`Figure`], which ignores fields it does not know and takes missing optional ones as
//!    unset, so files from older and newer builds compare. A file that cannot be read, a line
//!    that is not a record (`FILE:LINE:COLUMN`) or a file with no record fails the command
//!    (exit 2).
//! 2. Match figures by [`Key`]: workload, system, placement, metric, shards, executor, names,
//!    agents. Within one file the last record of a key counts (a file appended to twice).
//! 3. Judge each matched pair ([`judge`]): the change (new - old) / |old| within
//!    +-threshold % (default 5) is "same"; outside it, the metric's [`direction`] says whether
//!    it is better. Lower is better for times and sizes (names ending in `_ns`, `_us`, `_ms`,
//!    `_bytes`, `bytes_per_agent`, or starting with `ns_per`, `us_per`, `ms_per`, `bytes_per`),
//!    for `cpu_pct` and `ctx_switches_per_s`, and for any name holding `latency`, `p50`, `p99`
//!    or `overhead` (`tracing_overhead_1pct`); higher is better for everything else (rates,
//!    ratios).
//! 4. Print one row per matched figure (old, new, new/old, verdict with the change), a
//!    record's spread `[min..max]` next to its value when it has both, the figures found in
//!    one file only, and a last line: `N better, N worse, N same`.

use crate::Failure;
use nexus_bench::report::format_value;
use serde::Deserialize;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The default `--threshold`: changes within +-5% are "same".
pub const DEFAULT_THRESHOLD_PCT: f64 = 5.0;

/// Options of `nexus bench compare` (checked by `nexus bench`).
#[derive(Debug)]
pub struct CompareArgs {
    /// The earlier run's JSON lines.
    pub old: PathBuf,
    /// The later run's JSON lines.
    pub new: PathBuf,
    /// Changes within +-this % are "same".
    pub threshold_pct: f64,
}

/// One figure of a JSON lines file: the fields compare uses; others are ignored.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Figure {
    /// The workload.
    pub workload: String,
    /// Who was measured.
    pub system: String,
    /// `local` or `cross`.
    #[serde(default)]
    pub placement: String,
    /// What the value is.
    pub metric: String,
    /// The value.
    pub value: f64,
    /// The value's unit.
    #[serde(default)]
    pub unit: String,
    /// Shards of the engine.
    #[serde(default)]
    pub shards: Option<u64>,
    /// The executor.
    #[serde(default)]
    pub executor: Option<String>,
    /// Registered names.
    #[serde(default)]
    pub names: Option<u64>,
    /// Agents involved.
    #[serde(default)]
    pub agents: Option<u64>,
    /// The lowest of the repeated values, where the record has it.
    #[serde(default)]
    pub min: Option<f64>,
    /// The highest of the repeated values, where the record has it.
    #[serde(default)]
    pub max: Option<f64>,
}

/// What makes two figures the same figure of two runs.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    workload: String,
    system: String,
    placement: String,
    metric: String,
    shards: Option<u64>,
    executor: Option<String>,
    names: Option<u64>,
    agents: Option<u64>,
}

impl Figure {
    /// The figure's key.
    pub fn key(&self) -> Key {
        Key {
            workload: self.workload.clone(),
            system: self.system.clone(),
            placement: self.placement.clone(),
            metric: self.metric.clone(),
            shards: self.shards,
            executor: self.executor.clone(),
            names: self.names,
            agents: self.agents,
        }
    }

    /// `workload system placement metric` and the context that is set (`shards=2 threads`).
    pub fn label(&self) -> String {
        let mut label = format!("{} {} {} {}", self.workload, self.system, self.placement, self.metric);
        if let Some(n) = self.shards {
            let _ = write!(label, " shards={n}");
        }
        if let Some(e) = &self.executor {
            let _ = write!(label, " {e}");
        }
        if let Some(n) = self.names {
            let _ = write!(label, " names={n}");
        }
        if let Some(n) = self.agents {
            let _ = write!(label, " agents={n}");
        }
        label.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    /// The value as the tables print it, with `[min..max]` when the record has both.
    pub fn shown(&self) -> String {
        let value = format_value(self.value, &self.unit);
        match (self.min, self.max) {
            (Some(lo), Some(hi)) => {
                format!("{value} [{}..{}]", format_value(lo, &self.unit), format_value(hi, &self.unit))
            }
            _ => value,
        }
    }
}

/// Why a file cannot be compared; one line with a hint.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// The file cannot be read.
    #[error("cannot read {}: {source}; hint: give the file `nexus bench WORKLOAD --json FILE` wrote", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line is not a bench record.
    #[error(
        "{}:{line}:{column}: not a bench record: {reason}; hint: compare reads the JSON lines of \
         `nexus bench WORKLOAD --json FILE`, one record per line",
        path.display()
    )]
    Json {
        /// The file.
        path: PathBuf,
        /// The line (from 1).
        line: usize,
        /// The column (from 1) where the JSON went wrong.
        column: usize,
        /// What is wrong.
        reason: String,
    },
    /// The file holds no record.
    #[error("{}: no records; hint: give the file `nexus bench WORKLOAD --json FILE` wrote", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

/// Which way a metric improves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Times, sizes, CPU share, wake-ups: less is better.
    LowerIsBetter,
    /// Rates, ratios and the rest: more is better.
    HigherIsBetter,
}

/// The direction of `metric`; see the module documentation for the rule.
pub fn direction(metric: &str) -> Direction {
    const LOWER_SUFFIXES: [&str; 7] =
        ["_ns", "_us", "_ms", "_bytes", "bytes_per_agent", "cpu_pct", "ctx_switches_per_s"];
    const LOWER_PREFIXES: [&str; 4] = ["ns_per", "us_per", "ms_per", "bytes_per"];
    const LOWER_WORDS: [&str; 4] = ["latency", "p50", "p99", "overhead"];
    if LOWER_SUFFIXES.iter().any(|s| metric.ends_with(s))
        || LOWER_PREFIXES.iter().any(|p| metric.starts_with(p))
        || LOWER_WORDS.iter().any(|w| metric.contains(w))
    {
        Direction::LowerIsBetter
    } else {
        Direction::HigherIsBetter
    }
}

/// How a figure moved from one run to the next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Moved the metric's good way by more than the threshold.
    Better,
    /// Moved the bad way by more than the threshold.
    Worse,
    /// Within +-threshold %.
    Same,
}

impl Verdict {
    fn word(self) -> &'static str {
        match self {
            Verdict::Better => "better",
            Verdict::Worse => "worse",
            Verdict::Same => "same",
        }
    }
}

/// The change from `old` to `new` in % of |old| (infinite when only `old` is 0).
pub fn change_pct(old: f64, new: f64) -> f64 {
    if old == new {
        0.0
    } else if old == 0.0 {
        f64::INFINITY.copysign(new)
    } else {
        (new - old) / old.abs() * 100.0
    }
}

/// `metric` going from `old` to `new`: same within +-`threshold_pct` %, else better or worse by
/// the metric's [`direction`].
pub fn judge(metric: &str, old: f64, new: f64, threshold_pct: f64) -> Verdict {
    let change = change_pct(old, new);
    if change.abs() <= threshold_pct {
        return Verdict::Same;
    }
    let up_is_good = direction(metric) == Direction::HigherIsBetter;
    if (change > 0.0) == up_is_good {
        Verdict::Better
    } else {
        Verdict::Worse
    }
}

/// One figure found in both runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// The earlier run's record.
    pub old: Figure,
    /// The later run's record.
    pub new: Figure,
    /// How it moved.
    pub verdict: Verdict,
}

/// Two runs matched figure by figure.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Comparison {
    /// The figures of both, in the old file's order.
    pub rows: Vec<Row>,
    /// Figures of the old run only.
    pub only_old: Vec<Figure>,
    /// Figures of the new run only.
    pub only_new: Vec<Figure>,
}

impl Comparison {
    /// How many rows have `verdict`.
    pub fn count(&self, verdict: Verdict) -> usize {
        self.rows.iter().filter(|r| r.verdict == verdict).count()
    }
}

/// The figures of a file, the last of each key kept, in first-seen order.
fn distinct(figures: &[Figure]) -> Vec<Figure> {
    let mut out: Vec<Figure> = Vec::new();
    let mut index: HashMap<Key, usize> = HashMap::new();
    for f in figures {
        match index.get(&f.key()) {
            Some(&i) => out[i] = f.clone(),
            None => {
                index.insert(f.key(), out.len());
                out.push(f.clone());
            }
        }
    }
    out
}

/// Matches `old` and `new` by key and judges each pair with `threshold_pct`.
pub fn compare(old: &[Figure], new: &[Figure], threshold_pct: f64) -> Comparison {
    let (old, new) = (distinct(old), distinct(new));
    let new_index: HashMap<Key, usize> = new.iter().enumerate().map(|(i, f)| (f.key(), i)).collect();
    let mut matched = vec![false; new.len()];
    let mut comparison = Comparison::default();
    for o in old {
        match new_index.get(&o.key()) {
            Some(&i) => {
                matched[i] = true;
                let verdict = judge(&o.metric, o.value, new[i].value, threshold_pct);
                comparison.rows.push(Row { old: o, new: new[i].clone(), verdict });
            }
            None => comparison.only_old.push(o),
        }
    }
    comparison.only_new = new.into_iter().zip(matched).filter(|(_, m)| !m).map(|(f, _)| f).collect();
    comparison
}

/// The records of a JSON lines text; `path` names it in errors.
pub fn parse(text: &str, path: &Path) -> Result<Vec<Figure>, CompareError> {
    let mut figures = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let figure = serde_json::from_str::<Figure>(line).map_err(|e| {
            let message = e.to_string();
            // serde_json ends its message with the position in this one line; the file's line
            // number replaces it.
            let reason = message.rsplit_once(" at line ").map_or(message.as_str(), |(r, _)| r).to_string();
            CompareError::Json { path: path.to_path_buf(), line: i + 1, column: e.column(), reason }
        })?;
        figures.push(figure);
    }
    if figures.is_empty() {
        return Err(CompareError::Empty { path: path.to_path_buf() });
    }
    Ok(figures)
}

/// Reads the records of the JSON lines file at `path`.
pub fn read(path: &Path) -> Result<Vec<Figure>, CompareError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| CompareError::Read { path: path.to_path_buf(), source })?;
    parse(&text, path)
}

/// Runs `nexus bench compare`.
pub fn bench_compare(args: &CompareArgs) -> Result<(), Failure> {
    let fail = |e: CompareError| Failure::usage(format!("bench compare: {e}"));
    let old = read(&args.old).map_err(fail)?;
    let new = read(&args.new).map_err(fail)?;
    let comparison = compare(&old, &new, args.threshold_pct);
    let names = [args.old.display().to_string(), args.new.display().to_string()];
    let header = format!(
        "nexus bench compare: {} ({} records) -> {} ({} records); same within +-{}%\n\
         lower is better for *_ns, *_us, *_ms, *_bytes, bytes_per_agent, cpu_pct, ctx_switches_per_s and names \
         with latency, p50, p99 or overhead; higher for the rest",
        names[0],
        old.len(),
        names[1],
        new.len(),
        args.threshold_pct
    );
    let text = format!("{header}\n\n{}", render(&comparison, &names));
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Failure::runtime(format!("bench compare: cannot write the results: {e}")))
}

/// The table of matched figures, the unmatched ones, and the summary line; `names` are the two
/// files' names.
pub fn render(comparison: &Comparison, names: &[String; 2]) -> String {
    let mut rows = vec![["figure", "old", "new", "new/old", "verdict"].map(String::from).to_vec()];
    for r in &comparison.rows {
        let ratio = if r.old.value == 0.0 { "n/a".to_string() } else { format!("{:.3}", r.new.value / r.old.value) };
        let change = change_pct(r.old.value, r.new.value);
        let verdict = if change.is_finite() {
            format!("{} ({change:+.1}%)", r.verdict.word())
        } else {
            r.verdict.word().to_string()
        };
        rows.push(vec![r.old.label(), r.old.shown(), r.new.shown(), ratio, verdict]);
    }
    let mut out = if comparison.rows.is_empty() {
        "no figure is in both files\n".to_string()
    } else {
        crate::bench::columns(&rows, &[0, 4])
    };
    for (only, name) in [(&comparison.only_old, &names[0]), (&comparison.only_new, &names[1])] {
        if !only.is_empty() {
            let _ = writeln!(out, "\nonly in {name} ({}):", only.len());
            for f in only {
                let _ = writeln!(out, "  {}  {}", f.label(), f.shown());
            }
        }
    }
    let _ = writeln!(
        out,
        "\n{} better, {} worse, {} same ({} only in {}, {} only in {})",
        comparison.count(Verdict::Better),
        comparison.count(Verdict::Worse),
        comparison.count(Verdict::Same),
        comparison.only_old.len(),
        names[0],
        comparison.only_new.len(),
        names[1]
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figure(line: &str) -> Figure {
        serde_json::from_str(line).expect("a record")
    }

    #[test]
    fn directions_follow_the_metric_name() {
        for lower in ["rtt_p50_ns", "elapsed_ms", "p99_us", "memory_bytes", "bytes_per_agent", "cpu_pct"] {
            assert_eq!(direction(lower), Direction::LowerIsBetter, "{lower}");
        }
        for lower in ["ctx_switches_per_s", "set_p1_latency", "rtt_p999_ns", "p50", "ns_per_op", "ns_per_spawn_cold"] {
            assert_eq!(direction(lower), Direction::LowerIsBetter, "{lower}");
        }
        for lower in ["tracing_overhead_0", "tracing_overhead_1pct", "tracing_overhead_100pct"] {
            assert_eq!(direction(lower), Direction::LowerIsBetter, "{lower}");
        }
        for higher in ["msgs_per_s", "hops_per_s", "chaos_throughput_ratio", "thread_ring_x", "rps"] {
            assert_eq!(direction(higher), Direction::HigherIsBetter, "{higher}");
        }
    }

    #[test]
    fn the_threshold_decides_same() {
        assert_eq!(judge("msgs_per_s", 100.0, 105.0, 5.0), Verdict::Same);
        assert_eq!(judge("msgs_per_s", 100.0, 94.9, 5.0), Verdict::Worse);
        assert_eq!(judge("msgs_per_s", 100.0, 106.0, 5.0), Verdict::Better);
        assert_eq!(judge("rtt_p50_ns", 100.0, 106.0, 5.0), Verdict::Worse);
        assert_eq!(judge("rtt_p50_ns", 100.0, 80.0, 5.0), Verdict::Better);
        assert_eq!(judge("rtt_p50_ns", 100.0, 80.0, 25.0), Verdict::Same);
        assert_eq!(judge("cpu_pct", 0.0, 0.0, 5.0), Verdict::Same);
        assert_eq!(judge("cpu_pct", 0.0, 3.0, 5.0), Verdict::Worse);
        assert_eq!(judge("msgs_per_s", -10.0, -5.0, 5.0), Verdict::Better);
    }

    #[test]
    fn figures_match_by_key_and_the_rest_is_listed() {
        let old = [
            figure(
                r#"{"workload":"pingpong","system":"nexus","placement":"cross","metric":"rtt_p50_ns","value":200.0,"unit":"ns","shards":2}"#,
            ),
            figure(
                r#"{"workload":"pingpong","system":"nexus","placement":"cross","metric":"rtt_p50_ns","value":300.0,"unit":"ns","shards":4}"#,
            ),
            figure(
                r#"{"workload":"spawn","system":"nexus","placement":"local","metric":"agents_per_s","value":1000.0,"unit":"agents/s"}"#,
            ),
        ];
        let new = [
            figure(
                r#"{"workload":"pingpong","system":"nexus","placement":"cross","metric":"rtt_p50_ns","value":150.0,"unit":"ns","shards":2,"min":140.0,"max":170.0,"spread":0.2}"#,
            ),
            figure(
                r#"{"workload":"spawn","system":"nexus","placement":"local","metric":"agents_per_s","value":1020.0,"unit":"agents/s"}"#,
            ),
            figure(
                r#"{"workload":"idle","system":"nexus","placement":"local","metric":"cpu_pct","value":3.0,"unit":"%","executor":"threads"}"#,
            ),
        ];
        let c = compare(&old, &new, 5.0);
        assert_eq!(c.rows.len(), 2);
        assert_eq!((c.rows[0].old.value, c.rows[0].new.value, c.rows[0].verdict), (200.0, 150.0, Verdict::Better));
        assert_eq!(c.rows[1].verdict, Verdict::Same);
        assert_eq!(c.only_old.len(), 1);
        assert_eq!(c.only_old[0].shards, Some(4));
        assert_eq!(c.only_new[0].metric, "cpu_pct");
        let text = render(&c, &["a.jsonl".into(), "b.jsonl".into()]);
        assert!(text.contains("150.0 [140.0..170.0]") && text.contains("0.750") && text.contains("better (-25.0%)"));
        assert!(text.contains("only in a.jsonl (1):") && text.contains("idle nexus local cpu_pct threads"));
        assert!(
            text.trim_end().ends_with("1 better, 0 worse, 1 same (1 only in a.jsonl, 1 only in b.jsonl)"),
            "{text}"
        );
    }

    #[test]
    fn the_last_record_of_a_key_counts() {
        let a = figure(r#"{"workload":"w","system":"s","placement":"local","metric":"msgs_per_s","value":1.0}"#);
        let b = Figure { value: 2.0, ..a.clone() };
        let c = compare(&[a.clone(), b], &[a], 5.0);
        assert_eq!((c.rows.len(), c.rows[0].old.value, c.rows[0].verdict), (1, 2.0, Verdict::Worse));
    }

    #[test]
    fn bad_lines_name_file_and_line() {
        let path = Path::new("runs/new.jsonl");
        let good = r#"{"workload":"w","system":"s","placement":"local","metric":"m","value":1.0}"#;
        let err = parse(&format!("{good}\n\n{{\"workload\":\"w\"}}\n"), path).unwrap_err().to_string();
        assert!(
            err.starts_with("runs/new.jsonl:3:") && err.contains("missing field") && err.contains("hint:"),
            "{err}"
        );
        assert!(!err.contains("at line 1"), "{err}");
        let err = parse("not json\n", path).unwrap_err().to_string();
        assert!(err.starts_with("runs/new.jsonl:1:") && err.contains("not a bench record"), "{err}");
        assert!(matches!(parse("\n\n", path), Err(CompareError::Empty { .. })));
        assert!(matches!(read(Path::new("/nonexistent/old.jsonl")), Err(CompareError::Read { .. })));
        assert_eq!(parse(good, path).expect("one record")[0].shards, None);
    }
}
