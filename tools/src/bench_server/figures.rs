//! `nexus bench server`'s figures: what redis-benchmark printed, reduced to a report.
//!
//! [`parse_csv`] reads one run's `--csv` output by column name; [`summarize`] turns one (test,
//! pipeline)'s rounds into medians and the median and spread of the per-round ratios of the
//! measured server over the one it is compared with (redis-server, or nexus without
//! persistence); [`render_table`] and [`records`] print them (the targets are `targets`'s).
//! Everything here is pure: no process, no socket, no clock.

use nexus_bench::median;
use nexus_bench::report::{format_value, Record};
use std::fmt::Write as _;

/// The pipeline depths every test runs at.
pub const PIPELINES: [u32; 2] = [1, 16];

/// A redis-benchmark test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Test {
    /// `SET key:__rand_int__ xxx`.
    Set,
    /// `GET key:__rand_int__` (after SET, so most keys exist).
    Get,
    /// `INCR counter:__rand_int__`.
    Incr,
}

impl Test {
    /// Every test, in run order.
    pub const ALL: [Test; 3] = [Test::Set, Test::Get, Test::Incr];

    /// The name for `-t` and for metric names.
    pub fn arg(self) -> &'static str {
        match self {
            Test::Set => "set",
            Test::Get => "get",
            Test::Incr => "incr",
        }
    }

    /// The name in redis-benchmark's CSV `test` column and in the tables.
    pub fn label(self) -> &'static str {
        match self {
            Test::Set => "SET",
            Test::Get => "GET",
            Test::Incr => "INCR",
        }
    }
}

/// The metric names of one (test, pipeline): requests/s, p50, p99, the two ratios over the
/// server compared with, and the target verdict (1 met, 0 not; only where a target is set).
macro_rules! metric_names {
    ($test:literal, $pipeline:literal) => {
        [
            concat!($test, "_p", $pipeline, "_rps"),
            concat!($test, "_p", $pipeline, "_p50_us"),
            concat!($test, "_p", $pipeline, "_p99_us"),
            concat!($test, "_p", $pipeline, "_rps_over_redis"),
            concat!($test, "_p", $pipeline, "_p99_over_redis"),
            concat!($test, "_p", $pipeline, "_target_met"),
        ]
    };
}

/// Records carry `&'static str` metric names: `METRICS[test][pipeline index][stat]`, in the
/// order of [`Test::ALL`], [`PIPELINES`] and [`metric_names!`] (a test checks it).
const METRICS: [[[&str; 6]; 2]; 3] = [
    [metric_names!("set", "1"), metric_names!("set", "16")],
    [metric_names!("get", "1"), metric_names!("get", "16")],
    [metric_names!("incr", "1"), metric_names!("incr", "16")],
];

/// What one redis-benchmark run printed for its test.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Figures {
    /// Requests per second.
    pub rps: f64,
    /// Median latency (milliseconds).
    pub p50_ms: f64,
    /// 99th percentile latency (milliseconds).
    pub p99_ms: f64,
}

/// One (test, pipeline) over all rounds: medians, and medians of the per-round ratios. `nexus`
/// is the configuration measured, `redis` the one it is compared with: redis-server, or (for
/// the persistence rows) the same nexus without persistence.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    /// The test.
    pub test: Test,
    /// The pipeline depth.
    pub pipeline: u32,
    /// The measured server's medians.
    pub nexus: Figures,
    /// The medians of the server it is compared with.
    pub redis: Figures,
    /// The median over rounds of nexus rps / redis rps in the same round.
    pub rps_ratio: f64,
    /// The smallest and largest of those per-round ratios.
    pub rps_ratio_range: (f64, f64),
    /// The median over rounds of nexus p99 / redis p99 in the same round.
    pub p99_ratio: f64,
    /// Rounds.
    pub rounds: usize,
}

/// `n` with grouped digits (`200,000`).
pub fn grouped(n: u64) -> String {
    if n >= 1000 {
        format_value(n as f64, "")
    } else {
        n.to_string()
    }
}

/// The fields of one CSV line (quoted fields may hold commas and doubled quotes).
fn csv_fields(line: &str) -> Vec<String> {
    let (mut fields, mut field, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = line.trim_end_matches(['\r', '\n']).chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut field)),
            _ => field.push(c),
        }
    }
    fields.push(field);
    fields
}

/// Reads `test`'s row of redis-benchmark's `--csv` output by column name: `rps`,
/// `p50_latency_ms`, `p99_latency_ms`. A missing header, row or column, or a value that is
/// not a number (or a non-positive rate), is an error, never a zero.
pub fn parse_csv(text: &str, test: Test) -> Result<Figures, String> {
    let mut rows = text.lines().filter(|l| !l.trim().is_empty()).map(csv_fields);
    let header = rows
        .find(|fields| fields.iter().any(|f| f == "test"))
        .ok_or("redis-benchmark printed no CSV header (a line with a `test` column)")?;
    let at = header.iter().position(|f| f == "test").expect("found above");
    let row = rows
        .find(|fields| fields.get(at).is_some_and(|f| f == test.label()))
        .ok_or_else(|| format!("redis-benchmark printed no CSV row for {}", test.label()))?;
    let column = |name: &str| -> Result<f64, String> {
        let i = header.iter().position(|h| h == name).ok_or_else(|| {
            format!(
                "redis-benchmark's CSV has no `{name}` column (it has {}); hint: redis-benchmark 7 or later prints it, \
                 run tools/setup.sh",
                header.join(",")
            )
        })?;
        let cell = row.get(i).ok_or_else(|| format!("the {} row has no `{name}` value", test.label()))?;
        cell.trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| format!("`{name}` of {} is {cell:?}, not a number", test.label()))
    };
    let figures = Figures { rps: column("rps")?, p50_ms: column("p50_latency_ms")?, p99_ms: column("p99_latency_ms")? };
    if figures.rps <= 0.0 {
        return Err(format!("redis-benchmark reports {} requests/s for {}", figures.rps, test.label()));
    }
    Ok(figures)
}

/// One (test, pipeline)'s summary from its per-round figures (`nexus[i]` and `redis[i]` ran in
/// the same round).
pub fn summarize(test: Test, pipeline: u32, nexus: &[Figures], redis: &[Figures]) -> Summary {
    assert_eq!(nexus.len(), redis.len(), "every round measures both servers");
    let med = |side: &[Figures], stat: fn(&Figures) -> f64| median(&side.iter().map(stat).collect::<Vec<_>>());
    let pairwise = |stat: fn(&Figures) -> f64| {
        let ratios: Vec<f64> = nexus.iter().zip(redis).map(|(n, r)| ratio(stat(n), stat(r))).collect();
        let range = ratios.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &r| (lo.min(r), hi.max(r)));
        (median(&ratios), range)
    };
    let side =
        |s: &[Figures]| Figures { rps: med(s, |f| f.rps), p50_ms: med(s, |f| f.p50_ms), p99_ms: med(s, |f| f.p99_ms) };
    Summary {
        test,
        pipeline,
        nexus: side(nexus),
        redis: side(redis),
        rps_ratio: pairwise(|f| f.rps).0,
        rps_ratio_range: pairwise(|f| f.rps).1,
        p99_ratio: pairwise(|f| f.p99_ms).0,
        rounds: nexus.len(),
    }
}

/// `a / b`; infinite when `b` is 0 and `a` is not (a p99 of 0 ms is printed as such).
fn ratio(a: f64, b: f64) -> f64 {
    if a == b {
        1.0
    } else {
        a / b
    }
}

/// The table: a row per (test, pipeline), right-aligned figures; `names` are the measured
/// server's and the other's column names (`nexus`, `redis`).
pub fn render_table(summaries: &[Summary], names: [&str; 2]) -> String {
    let [a, b] = names;
    let header = ["test".to_string(), "pipeline".to_string(), format!("{a} req/s"), format!("{b} req/s")];
    let more = ["ratio".to_string(), "min-max".to_string(), format!("{a} p50 ms"), format!("{a} p99 ms")];
    let header: Vec<String> =
        header.into_iter().chain(more).chain([format!("{b} p50 ms"), format!("{b} p99 ms")]).collect();
    let rows: Vec<Vec<String>> = summaries
        .iter()
        .map(|s| {
            vec![
                s.test.label().to_string(),
                s.pipeline.to_string(),
                format_value(s.nexus.rps, "req/s"),
                format_value(s.redis.rps, "req/s"),
                format!("{:.2}x", s.rps_ratio),
                format!("{:.2}-{:.2}", s.rps_ratio_range.0, s.rps_ratio_range.1),
                format!("{:.3}", s.nexus.p50_ms),
                format!("{:.3}", s.nexus.p99_ms),
                format!("{:.3}", s.redis.p50_ms),
                format!("{:.3}", s.redis.p99_ms),
            ]
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(String::len).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = format!("  {:<w$}", row[0], w = widths[0]);
        for (cell, w) in row.iter().zip(&widths).skip(1) {
            let _ = write!(line, "  {cell:>w$}");
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

/// Milliseconds as whole microseconds (redis-benchmark prints 3 decimals of a millisecond).
fn micros(ms: f64) -> f64 {
    (ms * 1e3).round()
}

/// The JSON records of one comparison: the measured server's medians (as `system`), the other's
/// (as `baseline`, when given: redis-server's are written once, not with every comparison), the
/// ratios (with the per-round spread of the throughput ratio), and the verdict of each (test,
/// pipeline) in `met`.
pub fn records(
    summaries: &[Summary],
    (system, baseline): (&'static str, Option<&'static str>),
    met: &[(Test, u32, bool)],
    repeat: u32,
) -> Vec<Record> {
    let names = |test: Test, pipeline: u32| {
        let t = Test::ALL.iter().position(|&x| x == test).expect("a known test");
        let p = PIPELINES.iter().position(|&x| x == pipeline).expect("a known pipeline");
        METRICS[t][p]
    };
    let mut out = Vec::new();
    for s in summaries {
        let m = names(s.test, s.pipeline);
        let sides = [(Some(system), s.nexus), (baseline, s.redis)];
        for (system, f) in sides.into_iter().filter_map(|(name, f)| Some((name?, f))) {
            let stats = [(m[0], f.rps, "req/s"), (m[1], micros(f.p50_ms), "us"), (m[2], micros(f.p99_ms), "us")];
            out.extend(stats.map(|(metric, value, unit)| Record::new("server", system, "local", metric, value, unit)));
        }
        let mut rps = Record::new("server", system, "local", m[3], s.rps_ratio, "ratio");
        (rps.min, rps.max) = (Some(s.rps_ratio_range.0), Some(s.rps_ratio_range.1));
        out.push(rps);
        out.push(Record::new("server", system, "local", m[4], s.p99_ratio, "ratio"));
    }
    for &(test, pipeline, ok) in met {
        let metric = names(test, pipeline)[5];
        out.push(Record::new("server", system, "local", metric, if ok { 1.0 } else { 0.0 }, "bool"));
    }
    out.into_iter().map(|r| r.repeat(repeat)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV_7: &str = "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\"p95_latency_ms\",\"p99_latency_ms\",\"max_latency_ms\"\n\"SET\",\"571428.56\",\"1.179\",\"0.320\",\"1.047\",\"2.351\",\"2.991\",\"3.095\"\n";

    fn figures(rps: f64, p50_ms: f64, p99_ms: f64) -> Figures {
        Figures { rps, p50_ms, p99_ms }
    }

    #[test]
    fn csv_is_read_by_column_name() {
        assert_eq!(parse_csv(CSV_7, Test::Set), Ok(figures(571_428.56, 1.047, 2.991)));
        // Columns in another order, a warning line first, CRLF endings.
        let text = "WARNING: Could not fetch server CONFIG\r\n\"p99_latency_ms\",\"test\",\"p50_latency_ms\",\"rps\"\r\n\"INCR\",\"x\"\r\n\"0.991\",\"INCR\",\"0.335\",\"73260.07\"\r\n";
        assert_eq!(parse_csv(text, Test::Incr), Ok(figures(73_260.07, 0.335, 0.991)));
    }

    #[test]
    fn csv_problems_are_errors_not_zeros() {
        // Redis 6's CSV: no header, no latency columns.
        assert!(parse_csv("\"SET\",\"12345.67\"\n", Test::Set).unwrap_err().contains("no CSV header"));
        let old = "\"test\",\"rps\"\n\"SET\",\"12345.67\"\n";
        let err = parse_csv(old, Test::Set).unwrap_err();
        assert!(err.contains("`p50_latency_ms`") && err.contains("tools/setup.sh"), "{err}");
        assert!(parse_csv(CSV_7, Test::Get).unwrap_err().contains("no CSV row for GET"));
        assert!(parse_csv("", Test::Set).is_err());
        let bad = CSV_7.replace("\"2.991\"", "\"n/a\"");
        assert!(parse_csv(&bad, Test::Set).unwrap_err().contains("p99_latency_ms"));
        let short = CSV_7.replace(",\"2.991\",\"3.095\"", "");
        assert!(parse_csv(&short, Test::Set).unwrap_err().contains("no `p99_latency_ms` value"));
        let zero = CSV_7.replace("571428.56", "0");
        assert!(parse_csv(&zero, Test::Set).is_err());
    }

    #[test]
    fn csv_fields_unquote() {
        assert_eq!(csv_fields("\"a,b\",c,\"say \"\"hi\"\"\""), ["a,b", "c", "say \"hi\""]);
        assert_eq!(csv_fields(""), [""]);
    }

    #[test]
    fn medians_and_ratios_go_pair_by_pair() {
        let nexus = [figures(300.0, 1.0, 3.0), figures(100.0, 2.0, 1.0), figures(200.0, 3.0, 2.0)];
        let redis = [figures(100.0, 1.0, 1.0), figures(100.0, 1.0, 2.0), figures(400.0, 1.0, 4.0)];
        let s = summarize(Test::Get, 16, &nexus, &redis);
        assert_eq!((s.nexus, s.redis), (figures(200.0, 2.0, 2.0), figures(100.0, 1.0, 2.0)));
        // Ratios 3.0, 1.0, 0.5: median 1.0, not the ratio of the medians (2.0).
        assert_eq!(s.rps_ratio, 1.0);
        assert_eq!(s.rps_ratio_range, (0.5, 3.0), "the spread of the per-round ratios");
        assert_eq!(s.p99_ratio, 0.5);
        assert_eq!(s.rounds, 3);
        let even = summarize(Test::Set, 1, &nexus[..2], &redis[..2]);
        assert_eq!(even.rps_ratio, 2.0);
    }

    #[test]
    fn the_table_has_a_row_per_case() {
        let s = summarize(Test::Incr, 16, &[figures(803_213.4, 0.935, 1.511)], &[figures(427_350.0, 1.367, 2.575)]);
        let table = render_table(&[s], ["nexus", "redis"]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 2, "{table}");
        assert!(lines[0].starts_with("  test  pipeline  nexus req/s"), "{table}");
        for cell in ["INCR", "803,213", "427,350", "1.88x", "1.88-1.88", "0.935", "1.511", "1.367", "2.575"] {
            assert!(lines[1].contains(cell), "{cell} in {table}");
        }
    }

    #[test]
    fn metric_names_follow_tests_and_pipelines() {
        for (t, test) in Test::ALL.iter().enumerate() {
            for (p, pipeline) in PIPELINES.iter().enumerate() {
                let stats = ["rps", "p50_us", "p99_us", "rps_over_redis", "p99_over_redis", "target_met"];
                for (i, stat) in stats.iter().enumerate() {
                    assert_eq!(METRICS[t][p][i], format!("{}_p{pipeline}_{stat}", test.arg()));
                }
            }
        }
    }

    #[test]
    fn records_carry_medians_ratios_and_verdicts() {
        let s = summarize(Test::Set, 16, &[figures(900.0, 0.307, 2.0)], &[figures(600.0, 0.5, 2.5)]);
        let records = records(&[s], ("nexus", Some("redis")), &[(Test::Set, 16, true)], 3);
        let json: Vec<String> = records.iter().map(Record::to_json).collect();
        assert_eq!(json.len(), 9, "{json:#?}");
        assert_eq!(
            json[0],
            r#"{"workload":"server","system":"nexus","placement":"local","metric":"set_p16_rps","value":900.0,"unit":"req/s","repeat":3}"#
        );
        let find = |system: &str, metric: &str| {
            records.iter().find(|r| r.system == system && r.metric == metric).map(|r| r.value)
        };
        // 0.307 ms is 307 us exactly, not 307.00000000000006.
        assert_eq!(find("nexus", "set_p16_p50_us"), Some(307.0));
        assert_eq!(find("redis", "set_p16_p99_us"), Some(2500.0));
        assert_eq!(find("nexus", "set_p16_rps_over_redis"), Some(1.5));
        assert_eq!(find("nexus", "set_p16_p99_over_redis"), Some(0.8));
        assert_eq!(find("nexus", "set_p16_target_met"), Some(1.0));
        let ratio = records.iter().find(|r| r.metric == "set_p16_rps_over_redis").expect("the ratio");
        assert_eq!((ratio.min, ratio.max), (Some(1.5), Some(1.5)), "the per-round spread");
        let aof = super::records(&[s], ("nexus-aof-always", None), &[], 3);
        assert_eq!(aof.len(), 5, "no baseline figures, no verdict");
        assert!(aof.iter().all(|r| r.system == "nexus-aof-always"));
    }
}
