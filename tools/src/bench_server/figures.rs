//! `nexus bench server`'s figures: what redis-benchmark printed, reduced to a report.
//!
//! [`parse_csv`] reads one run's `--csv` output by column name; a [`Run`] is that with the
//! run's request count and CPU use ([`Usage`], read by `cpu`). [`summarize`] turns one (test,
//! pipeline)'s rounds into medians and the median and spread of the per-round ratios of the
//! measured server over the one it is compared with (redis-server, or nexus without
//! persistence): requests/s, p99, and requests per second of the server's own CPU time
//! (`None` where a server's CPU is unknown). It also gives each side's median CPU as % of one
//! CPU: redis-benchmark's (a row where it ran at [`CLIENT_BOUND_PCT`] or more on either side
//! is client-bound: its requests/s measure the load generator) and the server's.
//! [`render_table`], [`render_cpu_table`] and [`records`] print them (the targets are
//! `targets`'s). Everything here is pure: no process, no socket, no clock.

use super::cpu::Usage;
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
/// server compared with, the target verdict (1 met, 0 not; only where a target is set), then
/// the CPU figures: redis-benchmark's and the server's CPU as % of one CPU while it measured
/// that server, the server's requests per CPU-second, and the ratio of those over the server
/// compared with (the server's figures only where its CPU is known).
macro_rules! metric_names {
    ($test:literal, $pipeline:literal) => {
        [
            concat!($test, "_p", $pipeline, "_rps"),
            concat!($test, "_p", $pipeline, "_p50_us"),
            concat!($test, "_p", $pipeline, "_p99_us"),
            concat!($test, "_p", $pipeline, "_rps_over_redis"),
            concat!($test, "_p", $pipeline, "_p99_over_redis"),
            concat!($test, "_p", $pipeline, "_target_met"),
            concat!($test, "_p", $pipeline, "_client_cpu_pct"),
            concat!($test, "_p", $pipeline, "_server_cpu_pct"),
            concat!($test, "_p", $pipeline, "_rps_per_cpu"),
            concat!($test, "_p", $pipeline, "_rps_per_cpu_over_redis"),
        ]
    };
}

/// Records carry `&'static str` metric names: `METRICS[test][pipeline index][stat]`, in the
/// order of [`Test::ALL`], [`PIPELINES`] and [`metric_names!`] (a test checks it).
const METRICS: [[[&str; 10]; 2]; 3] = [
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

/// The median redis-benchmark CPU (% of one CPU) at or above which a row is client-bound: the
/// load generator, not the server, set its requests/s.
pub const CLIENT_BOUND_PCT: f64 = 90.0;

/// One redis-benchmark run: what it printed, the requests it sent, and what it cost.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Run {
    /// Its figures.
    pub figures: Figures,
    /// Its `-n`.
    pub requests: u64,
    /// Its wall-clock time and the CPU time of redis-benchmark and of the server.
    pub usage: Usage,
}

/// One side's CPU over the rounds of a (test, pipeline): medians of the per-round figures,
/// each `None` when a round lacks it (a server not started here has no CPU figures).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Cpu {
    /// redis-benchmark's CPU, % of one CPU.
    pub client_pct: Option<f64>,
    /// redis-benchmark's CPU, % of one CPU per thread it ran (`--client-threads`).
    pub client_load_pct: Option<f64>,
    /// The server's CPU, % of one CPU (all its threads).
    pub server_pct: Option<f64>,
    /// Requests per second of the server's CPU time.
    pub rps_per_cpu: Option<f64>,
}

impl Cpu {
    /// redis-benchmark's median CPU (% of one CPU) when it ran at [`CLIENT_BOUND_PCT`] or more
    /// of the CPUs its threads could use.
    pub fn client_bound(&self) -> Option<f64> {
        self.client_pct.filter(|_| self.client_load_pct.is_some_and(|load| load >= CLIENT_BOUND_PCT))
    }
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
    /// The measured server's CPU figures.
    pub nexus_cpu: Cpu,
    /// Those of the server it is compared with.
    pub redis_cpu: Cpu,
    /// The median over rounds of nexus requests per CPU-second / redis's in the same round
    /// (`None` when a round lacks either).
    pub rps_per_cpu_ratio: Option<f64>,
    /// The smallest and largest of those per-round ratios.
    pub rps_per_cpu_ratio_range: Option<(f64, f64)>,
    /// Rounds.
    pub rounds: usize,
}

impl Summary {
    /// Whether redis-benchmark ran at [`CLIENT_BOUND_PCT`] or more (median) on either side.
    pub fn client_bound(&self) -> bool {
        self.nexus_cpu.client_bound().is_some() || self.redis_cpu.client_bound().is_some()
    }
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

/// One (test, pipeline)'s summary from its per-round runs (`nexus[i]` and `redis[i]` ran in
/// the same round).
pub fn summarize(test: Test, pipeline: u32, nexus: &[Run], redis: &[Run]) -> Summary {
    assert_eq!(nexus.len(), redis.len(), "every round measures both servers");
    let rounds = |side: &[Run]| side.iter().map(|r| r.figures).collect::<Vec<_>>();
    let (n, r) = (rounds(nexus), rounds(redis));
    let (rps_ratio, rps_ratio_range) = pairwise(n.iter().zip(&r).map(|(n, r)| ratio(n.rps, r.rps)).collect());
    let (p99_ratio, _) = pairwise(n.iter().zip(&r).map(|(n, r)| ratio(n.p99_ms, r.p99_ms)).collect());
    let per_cpu = nexus
        .iter()
        .zip(redis)
        .map(|(n, r)| Some(ratio(rps_per_cpu(n)?, rps_per_cpu(r)?)))
        .collect::<Option<Vec<f64>>>()
        .filter(|ratios| !ratios.is_empty())
        .map(pairwise);
    Summary {
        test,
        pipeline,
        nexus: medians(&n),
        redis: medians(&r),
        rps_ratio,
        rps_ratio_range,
        p99_ratio,
        nexus_cpu: cpu(nexus),
        redis_cpu: cpu(redis),
        rps_per_cpu_ratio: per_cpu.map(|(median, _)| median),
        rps_per_cpu_ratio_range: per_cpu.map(|(_, range)| range),
        rounds: nexus.len(),
    }
}

/// The median of per-round ratios and their smallest and largest.
fn pairwise(ratios: Vec<f64>) -> (f64, (f64, f64)) {
    let range = ratios.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &r| (lo.min(r), hi.max(r)));
    (median(&ratios), range)
}

/// The medians of each figure over the rounds.
fn medians(rounds: &[Figures]) -> Figures {
    let med = |stat: fn(&Figures) -> f64| median(&rounds.iter().map(stat).collect::<Vec<_>>());
    Figures { rps: med(|f| f.rps), p50_ms: med(|f| f.p50_ms), p99_ms: med(|f| f.p99_ms) }
}

/// A run's requests per second of the server's CPU time.
fn rps_per_cpu(run: &Run) -> Option<f64> {
    run.usage.requests_per_cpu_s(run.requests)
}

/// One side's CPU medians: each figure's median where every round has it.
fn cpu(side: &[Run]) -> Cpu {
    let med = |stat: &dyn Fn(&Run) -> Option<f64>| {
        side.iter().map(stat).collect::<Option<Vec<f64>>>().filter(|v| !v.is_empty()).map(|v| median(&v))
    };
    Cpu {
        client_pct: med(&|r| r.usage.client_pct()),
        client_load_pct: med(&|r| r.usage.client_load_pct()),
        server_pct: med(&|r| r.usage.server_pct()),
        rps_per_cpu: med(&rps_per_cpu),
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

/// The mark of a client-bound row, at the end of its table lines.
pub const CLIENT_BOUND_MARK: &str = "client-bound";

/// The table: a row per (test, pipeline), right-aligned figures, client-bound rows marked at
/// the end; `names` are the measured server's and the other's column names (`nexus`, `redis`).
pub fn render_table(summaries: &[Summary], names: [&str; 2]) -> String {
    let [a, b] = names;
    let columns = [format!("{a} req/s"), format!("{b} req/s"), "ratio".to_string(), "min-max".to_string()];
    let latency = [format!("{a} p50 ms"), format!("{a} p99 ms"), format!("{b} p50 ms"), format!("{b} p99 ms")];
    rows_of(summaries, columns.into_iter().chain(latency), |s| {
        vec![
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
}

/// The CPU table: per (test, pipeline), the medians of redis-benchmark's CPU ("client") and of
/// the server's, as % of one CPU, on each side; each server's requests per CPU-second; the
/// median and min-max of the per-round ratios of those; client-bound rows marked at the end;
/// "n/a" where a figure is unknown. Then the legend of the mark, when a row has it.
pub fn render_cpu_table(summaries: &[Summary], names: [&str; 2]) -> String {
    let [a, b] = names;
    let cpu = [format!("{a} client %"), format!("{b} client %"), format!("{a} server %"), format!("{b} server %")];
    let per_cpu = [format!("{a} req/CPU-s"), format!("{b} req/CPU-s"), "ratio".to_string(), "min-max".to_string()];
    let pct = |v: Option<f64>| v.map_or("n/a".to_string(), |p| format!("{p:.0}%"));
    let mut out = rows_of(summaries, cpu.into_iter().chain(per_cpu), |s| {
        vec![
            pct(s.nexus_cpu.client_pct),
            pct(s.redis_cpu.client_pct),
            pct(s.nexus_cpu.server_pct),
            pct(s.redis_cpu.server_pct),
            s.nexus_cpu.rps_per_cpu.map_or("n/a".to_string(), |v| format_value(v, "req/s")),
            s.redis_cpu.rps_per_cpu.map_or("n/a".to_string(), |v| format_value(v, "req/s")),
            s.rps_per_cpu_ratio.map_or("n/a".to_string(), |r| format!("{r:.2}x")),
            s.rps_per_cpu_ratio_range.map_or("n/a".to_string(), |(lo, hi)| format!("{lo:.2}-{hi:.2}")),
        ]
    });
    if summaries.iter().any(Summary::client_bound) {
        let _ = writeln!(
            out,
            "  {CLIENT_BOUND_MARK}: redis-benchmark at {CLIENT_BOUND_PCT:.0}% of a CPU per thread or more (median) on either \
             side, so its req/s measure the load generator, not the server"
        );
    }
    out
}

/// A table of one row per summary: the test and pipeline, then `cells` under the `columns`
/// headers, then the client-bound mark.
fn rows_of(
    summaries: &[Summary],
    columns: impl IntoIterator<Item = String>,
    cells: impl Fn(&Summary) -> Vec<String>,
) -> String {
    let header: Vec<String> = ["test", "pipeline"].map(String::from).into_iter().chain(columns).collect();
    let rows: Vec<Vec<String>> = summaries
        .iter()
        .map(|s| {
            let mut row = vec![s.test.label().to_string(), s.pipeline.to_string()];
            row.extend(cells(s));
            row.push(bound_mark(s));
            row
        })
        .collect();
    layout(&header, &rows)
}

/// [`CLIENT_BOUND_MARK`] for a client-bound row, else nothing.
fn bound_mark(s: &Summary) -> String {
    if s.client_bound() {
        CLIENT_BOUND_MARK.to_string()
    } else {
        String::new()
    }
}

/// The header and rows as lines: indented by two, the first column left-aligned, the others
/// right-aligned, two spaces apart, trailing blanks trimmed (a row may have a cell more than
/// the header: the client-bound mark).
fn layout(header: &[String], rows: &[Vec<String>]) -> String {
    let lines = || std::iter::once(header).chain(rows.iter().map(Vec::as_slice));
    let mut widths = vec![0; lines().map(<[String]>::len).max().unwrap_or(0)];
    for row in lines() {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    for row in lines() {
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
/// ratios (with the per-round spread of the throughput and requests-per-CPU-second ratios), and
/// the verdict of each (test, pipeline) in `met`. A CPU figure that is unknown (a server not
/// started here) has no record.
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
        let sides = [(Some(system), s.nexus, s.nexus_cpu), (baseline, s.redis, s.redis_cpu)];
        for (system, f, cpu) in sides.into_iter().filter_map(|(name, f, cpu)| Some((name?, f, cpu))) {
            let stats = [(m[0], f.rps, "req/s"), (m[1], micros(f.p50_ms), "us"), (m[2], micros(f.p99_ms), "us")];
            out.extend(stats.map(|(metric, value, unit)| Record::new("server", system, "local", metric, value, unit)));
            let cpu = [(m[6], cpu.client_pct, "%"), (m[7], cpu.server_pct, "%"), (m[8], cpu.rps_per_cpu, "req/cpu-s")];
            out.extend(cpu.into_iter().filter_map(|(metric, value, unit)| {
                Some(Record::new("server", system, "local", metric, value?, unit))
            }));
        }
        let mut rps = Record::new("server", system, "local", m[3], s.rps_ratio, "ratio");
        (rps.min, rps.max) = (Some(s.rps_ratio_range.0), Some(s.rps_ratio_range.1));
        out.push(rps);
        out.push(Record::new("server", system, "local", m[4], s.p99_ratio, "ratio"));
        if let (Some(ratio), Some((lo, hi))) = (s.rps_per_cpu_ratio, s.rps_per_cpu_ratio_range) {
            let mut per_cpu = Record::new("server", system, "local", m[9], ratio, "ratio");
            (per_cpu.min, per_cpu.max) = (Some(lo), Some(hi));
            out.push(per_cpu);
        }
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

    /// A run of 1,000 requests in 1 s, its CPU unknown on both sides.
    fn run(rps: f64, p50_ms: f64, p99_ms: f64) -> Run {
        let usage = Usage { wall_s: 1.0, client_cpu_s: None, server_cpu_s: None, client_threads: 1 };
        Run { figures: figures(rps, p50_ms, p99_ms), requests: 1_000, usage }
    }

    /// A run of `requests` in `wall_s`, redis-benchmark and the server at those CPU seconds.
    fn cpu_run(requests: u64, wall_s: f64, client_cpu_s: f64, server_cpu_s: f64) -> Run {
        let usage =
            Usage { wall_s, client_cpu_s: Some(client_cpu_s), server_cpu_s: Some(server_cpu_s), client_threads: 1 };
        Run { figures: figures(requests as f64 / wall_s, 0.5, 1.0), requests, usage }
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
        let nexus = [run(300.0, 1.0, 3.0), run(100.0, 2.0, 1.0), run(200.0, 3.0, 2.0)];
        let redis = [run(100.0, 1.0, 1.0), run(100.0, 1.0, 2.0), run(400.0, 1.0, 4.0)];
        let s = summarize(Test::Get, 16, &nexus, &redis);
        assert_eq!((s.nexus, s.redis), (figures(200.0, 2.0, 2.0), figures(100.0, 1.0, 2.0)));
        // Ratios 3.0, 1.0, 0.5: median 1.0, not the ratio of the medians (2.0).
        assert_eq!(s.rps_ratio, 1.0);
        assert_eq!(s.rps_ratio_range, (0.5, 3.0), "the spread of the per-round ratios");
        assert_eq!(s.p99_ratio, 0.5);
        assert_eq!(s.rounds, 3);
        let even = summarize(Test::Set, 1, &nexus[..2], &redis[..2]);
        assert_eq!(even.rps_ratio, 2.0);
        // No CPU figures: none made up.
        assert_eq!((s.nexus_cpu, s.redis_cpu), (Cpu::default(), Cpu::default()));
        assert_eq!((s.rps_per_cpu_ratio, s.rps_per_cpu_ratio_range), (None, None));
        assert!(!s.client_bound());
    }

    #[test]
    fn cpu_figures_are_medians_and_their_ratio_goes_pair_by_pair() {
        // Requests per server CPU-second, nexus: 400k, 100k, 200k; redis: 100k, 100k, 400k.
        let nexus = [cpu_run(200_000, 2.0, 1.0, 0.5), cpu_run(100_000, 1.0, 0.8, 1.0), cpu_run(200_000, 2.0, 1.8, 1.0)];
        let redis =
            [cpu_run(100_000, 1.0, 0.9, 1.0), cpu_run(100_000, 1.0, 0.7, 1.0), cpu_run(200_000, 1.0, 0.95, 0.5)];
        let s = summarize(Test::Set, 1, &nexus, &redis);
        // Client: 50%, 80%, 90% and 90%, 70%, 95%; server: 25%, 100%, 50% and 100%, 100%, 50%.
        assert_eq!(
            s.nexus_cpu,
            Cpu {
                client_pct: Some(80.0),
                client_load_pct: Some(80.0),
                server_pct: Some(50.0),
                rps_per_cpu: Some(200_000.0)
            }
        );
        assert_eq!(
            s.redis_cpu,
            Cpu {
                client_pct: Some(90.0),
                client_load_pct: Some(90.0),
                server_pct: Some(100.0),
                rps_per_cpu: Some(100_000.0)
            }
        );
        // Ratios 4.0, 1.0, 0.5: median 1.0, not the ratio of the medians (2.0).
        assert_eq!(s.rps_per_cpu_ratio, Some(1.0));
        assert_eq!(s.rps_per_cpu_ratio_range, Some((0.5, 4.0)));
        assert_eq!(s.redis_cpu.client_bound(), Some(90.0), "90% is bound");
        assert_eq!(s.nexus_cpu.client_bound(), None);
        assert!(s.client_bound(), "either side is enough");
        // Four client threads at 180% of a CPU in all: 45% of what they could use, not bound.
        let spread = Cpu { client_pct: Some(180.0), client_load_pct: Some(45.0), ..s.redis_cpu };
        assert_eq!(spread.client_bound(), None);
        assert_eq!(Cpu { client_load_pct: Some(92.0), ..spread }.client_bound(), Some(180.0));
        // A side whose server CPU is unknown (a server not started here) in any round: n/a.
        let mut external = nexus;
        external[1].usage.server_cpu_s = None;
        let s = summarize(Test::Set, 1, &external, &redis);
        assert_eq!((s.nexus_cpu.server_pct, s.nexus_cpu.rps_per_cpu), (None, None));
        assert_eq!(s.nexus_cpu.client_pct, Some(80.0), "the client's CPU is still known");
        assert_eq!((s.rps_per_cpu_ratio, s.rps_per_cpu_ratio_range), (None, None));
        assert_eq!(s.redis_cpu.rps_per_cpu, Some(100_000.0));
    }

    #[test]
    fn the_table_has_a_row_per_case() {
        let s = summarize(Test::Incr, 16, &[run(803_213.4, 0.935, 1.511)], &[run(427_350.0, 1.367, 2.575)]);
        let table = render_table(&[s], ["nexus", "redis"]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 2, "{table}");
        assert!(lines[0].starts_with("  test  pipeline  nexus req/s"), "{table}");
        for cell in ["INCR", "803,213", "427,350", "1.88x", "1.88-1.88", "0.935", "1.511", "1.367", "2.575"] {
            assert!(lines[1].contains(cell), "{cell} in {table}");
        }
        assert!(lines[1].ends_with("2.575"), "not client-bound, no mark: {table}");
        let cpu = render_cpu_table(&[s], ["nexus", "redis"]);
        assert_eq!(cpu.lines().count(), 2, "no legend without a bound row: {cpu}");
        let row: Vec<&str> = cpu.lines().nth(1).expect("a row").split_whitespace().collect();
        assert_eq!(row, ["INCR", "16", "n/a", "n/a", "n/a", "n/a", "n/a", "n/a", "n/a", "n/a"], "{cpu}");
    }

    #[test]
    fn client_bound_rows_are_marked_with_a_legend() {
        let free = summarize(Test::Get, 1, &[cpu_run(100_000, 1.0, 0.5, 0.8)], &[cpu_run(80_000, 1.0, 0.6, 1.0)]);
        let bound = summarize(Test::Get, 16, &[cpu_run(900_000, 1.0, 0.97, 1.2)], &[cpu_run(600_000, 1.0, 0.8, 1.0)]);
        let table = render_table(&[free, bound], ["nexus", "redis"]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        assert!(!lines[1].contains(CLIENT_BOUND_MARK) && lines[2].ends_with("  client-bound"), "{table}");
        assert_eq!(lines[0].trim_end(), lines[0], "the header has no trailing blanks");
        let cpu = render_cpu_table(&[free, bound], ["nexus", "redis"]);
        let lines: Vec<&str> = cpu.lines().collect();
        assert_eq!(lines.len(), 4, "{cpu}");
        assert!(lines[0].starts_with("  test  pipeline  nexus client %  redis client %  nexus server %"), "{cpu}");
        let cells = |i: usize| lines[i].split_whitespace().collect::<Vec<_>>();
        // 100k req / 0.8 s = 125,000 per CPU-second against 80,000: 1.56x.
        assert_eq!(cells(1), ["GET", "1", "50%", "60%", "80%", "100%", "125,000", "80,000", "1.56x", "1.56-1.56"]);
        assert_eq!(
            cells(2),
            ["GET", "16", "97%", "80%", "120%", "100%", "750,000", "600,000", "1.25x", "1.25-1.25", "client-bound"]
        );
        assert!(lines[3].starts_with("  client-bound: redis-benchmark at 90% of a CPU per thread or more"), "{cpu}");
    }

    #[test]
    fn metric_names_follow_tests_and_pipelines() {
        for (t, test) in Test::ALL.iter().enumerate() {
            for (p, pipeline) in PIPELINES.iter().enumerate() {
                let stats = [
                    "rps",
                    "p50_us",
                    "p99_us",
                    "rps_over_redis",
                    "p99_over_redis",
                    "target_met",
                    "client_cpu_pct",
                    "server_cpu_pct",
                    "rps_per_cpu",
                    "rps_per_cpu_over_redis",
                ];
                assert_eq!(stats.len(), METRICS[t][p].len());
                for (i, stat) in stats.iter().enumerate() {
                    assert_eq!(METRICS[t][p][i], format!("{}_p{pipeline}_{stat}", test.arg()));
                }
            }
        }
    }

    #[test]
    fn records_carry_medians_ratios_and_verdicts() {
        let s = summarize(Test::Set, 16, &[run(900.0, 0.307, 2.0)], &[run(600.0, 0.5, 2.5)]);
        let records = records(&[s], ("nexus", Some("redis")), &[(Test::Set, 16, true)], 3);
        let json: Vec<String> = records.iter().map(Record::to_json).collect();
        assert_eq!(json.len(), 9, "no CPU figures, no CPU records: {json:#?}");
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

    #[test]
    fn records_carry_the_cpu_figures_where_known() {
        let nexus = [cpu_run(200_000, 2.0, 1.9, 0.5), cpu_run(200_000, 2.0, 1.5, 1.0)];
        let redis = [cpu_run(100_000, 1.0, 0.9, 1.0), cpu_run(100_000, 1.0, 0.9, 1.0)];
        let s = summarize(Test::Get, 1, &nexus, &redis);
        let recs = records(&[s], ("nexus", Some("redis")), &[], 2);
        let find = |system: &str, metric: &str| {
            recs.iter().find(|r| r.system == system && r.metric == metric).map(|r| (r.value, r.unit))
        };
        assert_eq!(recs.len(), 15, "3 + 3 CPU figures a side, 3 ratios");
        // Client 95% and 75% (median 85%), server 25% and 50%.
        assert_eq!(find("nexus", "get_p1_client_cpu_pct"), Some((85.0, "%")));
        assert_eq!(find("nexus", "get_p1_server_cpu_pct"), Some((37.5, "%")));
        assert_eq!(find("redis", "get_p1_client_cpu_pct"), Some((90.0, "%")));
        assert_eq!(find("redis", "get_p1_server_cpu_pct"), Some((100.0, "%")));
        // 400k and 200k requests per CPU-second against 100k: ratios 4.0 and 2.0.
        assert_eq!(find("nexus", "get_p1_rps_per_cpu"), Some((300_000.0, "req/cpu-s")));
        assert_eq!(find("redis", "get_p1_rps_per_cpu"), Some((100_000.0, "req/cpu-s")));
        let ratio = recs.iter().find(|r| r.metric == "get_p1_rps_per_cpu_over_redis").expect("the ratio");
        assert_eq!((ratio.system, ratio.value, ratio.min, ratio.max), ("nexus", 3.0, Some(2.0), Some(4.0)));
        // The server on --target-port: its CPU unknown, so no server CPU record and no ratio.
        let mut external = nexus;
        for r in &mut external {
            r.usage.server_cpu_s = None;
        }
        let s = summarize(Test::Get, 1, &external, &redis);
        let recs = records(&[s], ("nexus", None), &[], 2);
        let metrics: Vec<&str> = recs.iter().map(|r| r.metric).collect();
        assert_eq!(
            metrics,
            ["get_p1_rps", "get_p1_p50_us", "get_p1_p99_us", "get_p1_client_cpu_pct"]
                .into_iter()
                .chain(["get_p1_rps_over_redis", "get_p1_p99_over_redis"])
                .collect::<Vec<_>>()
        );
    }
}
