//! Bench results: one [`Record`] per figure, printed as a table per workload or as JSON lines.
//!
//! A record is one measured value with what it measures: `workload`, `system` (`nexus` for the
//! engine, `limit` for the bare-thread probe, or a peer's name), `placement` (`local` or `cross`), `metric`
//! (the name says the statistic and the unit: `rtt_p50_ns`, `msgs_per_s`), `value` and `unit`,
//! plus optional fields: `min` and `max`, the spread of a value that is the median over rounds
//! (right after `value`), and the context (`shards`, `executor`, `names`, `agents`, `repeat`,
//! `cpus`, `date`). JSON lines carry exactly these fields in this order, optional ones only when
//! set:
//!
//! ```text
//! {"workload":"pingpong","system":"nexus","placement":"cross","metric":"rtt_p50_ns","value":183.0,"unit":"ns","shards":2}
//! {"workload":"counting","system":"tokio","placement":"local","metric":"msgs_per_s","value":9.1e6,"min":8.7e6,"max":9.4e6,"unit":"msg/s","repeat":5}
//! ```
//!
//! Tables show the median of several rounds as `12.3 M (11.0–13.1)`: the median, then the
//! smallest and the largest round, in the median's scale.

use serde::Serialize;
use std::fmt::Write as _;

/// One measured figure; see the module documentation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Record {
    /// The workload (`pingpong`, `counting`, `thread-ring`, `spawn`, `registry`).
    pub workload: &'static str,
    /// Who was measured: `nexus`, `limit` (the bare-thread probe), or a peer (`tokio`, ...).
    pub system: &'static str,
    /// `local` or `cross`.
    pub placement: &'static str,
    /// What the value is (statistic and unit in the name).
    pub metric: &'static str,
    /// The value (the median over `repeat` runs when `repeat` > 1).
    pub value: f64,
    /// The smallest of the rounds `value` is the median of.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// The largest of the rounds `value` is the median of.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// The value's unit.
    pub unit: &'static str,
    /// Shards of the engine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shards: Option<usize>,
    /// The executor of the engine (`glommio` or `thread`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executor: Option<&'static str>,
    /// Registered names (registry).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub names: Option<u64>,
    /// Agents involved (spawn, thread-ring).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agents: Option<u64>,
    /// Runs the value is the median of.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeat: Option<u32>,
    /// The CPUs the run used (`0,1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus: Option<String>,
    /// The day of the run (UTC, `YYYY-MM-DD`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
}

impl Record {
    /// A record with no optional field set.
    pub fn new(
        workload: &'static str,
        system: &'static str,
        placement: &'static str,
        metric: &'static str,
        value: f64,
        unit: &'static str,
    ) -> Self {
        Self {
            workload,
            system,
            placement,
            metric,
            value: if value.is_finite() { value } else { 0.0 },
            min: None,
            max: None,
            unit,
            shards: None,
            executor: None,
            names: None,
            agents: None,
            repeat: None,
            cpus: None,
            date: None,
        }
    }

    /// Sets `cpus` and `date`, the context of the whole run, and `shards` where the record
    /// has none (a peer's record: the run's engine size, for comparing like with like).
    #[must_use]
    pub fn context(mut self, cpus: &str, date: &str, shards: usize) -> Self {
        self.cpus = Some(cpus.to_string());
        self.date = Some(date.to_string());
        self.shards.get_or_insert(shards);
        self
    }

    /// Sets `names`.
    #[must_use]
    pub fn names(mut self, names: u64) -> Self {
        self.names = Some(names);
        self
    }

    /// Sets `agents`.
    #[must_use]
    pub fn agents(mut self, agents: u64) -> Self {
        self.agents = Some(agents);
        self
    }

    /// Sets `repeat`.
    #[must_use]
    pub fn repeat(mut self, repeat: u32) -> Self {
        self.repeat = Some(repeat);
        self
    }

    /// Makes the record the median of `rounds`: `value` their median, `min` and `max` their
    /// extremes, `repeat` their count. No rounds leave the record as it is.
    #[must_use]
    pub fn over_rounds(mut self, rounds: &[f64]) -> Self {
        let Some(spread) = crate::stats::Spread::of(rounds) else { return self };
        let finite = |v: f64| if v.is_finite() { v } else { 0.0 };
        self.value = finite(spread.median);
        self.min = Some(finite(spread.min));
        self.max = Some(finite(spread.max));
        self.repeat = Some(spread.rounds);
        self
    }

    /// The value for the table: with its spread when it is the median of several rounds (see
    /// the module doc).
    fn shown(&self) -> String {
        match (self.min, self.max, self.repeat) {
            (Some(min), Some(max), Some(rounds)) if rounds > 1 => format_spread(self.value, min, max, self.unit),
            _ => format_value(self.value, self.unit),
        }
    }

    /// Sets `shards` and `executor`.
    #[must_use]
    pub fn engine(mut self, shards: usize, executor: &'static str) -> Self {
        self.shards = Some(shards);
        self.executor = Some(executor);
        self
    }

    /// The record as one line of JSON (no newline).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The optional fields as `key=value` words, for the table's notes column.
    fn notes(&self) -> String {
        let mut notes = Vec::new();
        if let Some(n) = self.names {
            notes.push(format!("names={}", group(n)));
        }
        if let Some(n) = self.agents {
            notes.push(format!("agents={}", group(n)));
        }
        if let Some(n) = self.repeat {
            notes.push(format!("median of {n}"));
        }
        notes.join(" ")
    }
}

/// Today's date in UTC as `YYYY-MM-DD` (from the system clock; `1970-01-01` if it is unset).
pub fn today_utc() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Formats a value for the table: two decimals for ratios, grouped digits from 1,000 up, one
/// decimal below.
pub fn format_value(value: f64, unit: &str) -> String {
    if unit == "ratio" || unit == "x" {
        format!("{value:.2}")
    } else if value.abs() >= 1000.0 {
        let rounded = value.round();
        let sign = if rounded < 0.0 { "-" } else { "" };
        format!("{sign}{}", group(rounded.abs() as u64))
    } else {
        format!("{value:.1}")
    }
}

/// A median with its spread, `12.3 M (11.0–13.1)`: all three in the median's scale (`k`, `M`,
/// `G` from 1,000 up; ratios as they are), with three significant digits for the median.
pub fn format_spread(median: f64, min: f64, max: f64, unit: &str) -> String {
    let (scale, suffix) = if unit == "ratio" || unit == "x" {
        (1.0, "")
    } else {
        [(1e9, " G"), (1e6, " M"), (1e3, " k")].into_iter().find(|(s, _)| median.abs() >= *s).unwrap_or((1.0, ""))
    };
    let scaled = median.abs() / scale;
    let decimals = if unit == "ratio" || unit == "x" {
        2
    } else if scale == 1.0 {
        1
    } else if scaled >= 100.0 {
        0
    } else if scaled >= 10.0 {
        1
    } else {
        2
    };
    let f = |v: f64| format!("{:.*}", decimals, v / scale);
    format!("{}{suffix} ({}–{})", f(median), f(min), f(max))
}

/// `1234567` as `1,234,567`.
fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Renders one table per workload, in the order workloads first appear in `records`. Each
/// table's title names the workload and the engine it ran on.
pub fn render_tables(records: &[Record]) -> String {
    let mut workloads: Vec<&'static str> = Vec::new();
    for r in records {
        if !workloads.contains(&r.workload) {
            workloads.push(r.workload);
        }
    }
    let mut out = String::new();
    for (i, workload) in workloads.iter().enumerate() {
        let rows: Vec<&Record> = records.iter().filter(|r| r.workload == *workload).collect();
        if i > 0 {
            out.push('\n');
        }
        let engine = rows
            .iter()
            .find_map(|r| r.shards.map(|s| (s, r.executor.unwrap_or("?"))))
            .map_or(String::new(), |(s, e)| format!(" (nexus: {s} shards, {e} executor)"));
        let _ = writeln!(out, "{workload}{engine}");
        let cells: Vec<[String; 6]> = rows
            .iter()
            .map(|r| {
                [
                    r.system.to_string(),
                    r.placement.to_string(),
                    r.metric.to_string(),
                    r.shown(),
                    r.unit.to_string(),
                    r.notes(),
                ]
            })
            .collect();
        let header = ["system", "placement", "metric", "value", "unit", "notes"].map(String::from);
        let mut widths = header.clone().map(|h| h.len());
        for row in &cells {
            for (w, c) in widths.iter_mut().zip(row.iter()) {
                *w = (*w).max(c.len());
            }
        }
        for row in std::iter::once(&header).chain(cells.iter()) {
            let line = format!(
                "  {:<w0$}  {:<w1$}  {:<w2$}  {:>w3$}  {:<w4$}  {}",
                row[0],
                row[1],
                row[2],
                row[3],
                row[4],
                row[5],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2],
                w3 = widths[3],
                w4 = widths[4],
            );
            let _ = writeln!(out, "{}", line.trim_end());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_have_the_documented_shape() {
        let r = Record::new("pingpong", "nexus", "cross", "rtt_p50_ns", 183.0, "ns");
        assert_eq!(
            r.to_json(),
            r#"{"workload":"pingpong","system":"nexus","placement":"cross","metric":"rtt_p50_ns","value":183.0,"unit":"ns"}"#
        );
        let r = r.engine(2, "glommio").repeat(3);
        assert!(r.to_json().ends_with(r#""unit":"ns","shards":2,"executor":"glommio","repeat":3}"#), "{}", r.to_json());
        assert_eq!(Record::new("x", "nexus", "local", "m", f64::NAN, "ns").value, 0.0);
    }

    #[test]
    fn a_median_over_rounds_carries_its_spread_right_after_the_value() {
        let r = Record::new("counting", "tokio", "local", "msgs_per_s", 0.0, "msg/s").over_rounds(&[3.0, 1.0, 2.0]);
        assert_eq!((r.value, r.min, r.max, r.repeat), (2.0, Some(1.0), Some(3.0), Some(3)));
        assert!(r.to_json().contains(r#""value":2.0,"min":1.0,"max":3.0,"unit":"msg/s""#), "{}", r.to_json());
        let plain = Record::new("x", "nexus", "local", "m", 5.0, "ns").over_rounds(&[]);
        assert_eq!((plain.value, plain.min, plain.max, plain.repeat), (5.0, None, None, None));
        assert!(!plain.to_json().contains("min"), "unset spreads are not serialized");
    }

    #[test]
    fn tables_show_the_spread_in_the_medians_scale() {
        assert_eq!(format_spread(12_300_000.0, 11_000_000.0, 13_100_000.0, "msg/s"), "12.3 M (11.0–13.1)");
        assert_eq!(format_spread(1.234, 1.1, 1.4, "x"), "1.23 (1.10–1.40)");
        assert_eq!(format_spread(183.0, 170.5, 190.0, "ns"), "183.0 (170.5–190.0)");
        assert_eq!(format_spread(2_500.0, 2_400.0, 2_600.0, "ns"), "2.50 k (2.40–2.60)");
        let r = Record::new("counting", "nexus", "local", "msgs_per_s", 0.0, "msg/s").over_rounds(&[
            12_300_000.0,
            11_000_000.0,
            13_100_000.0,
        ]);
        let table = render_tables(&[r]);
        assert!(table.contains("12.3 M (11.0–13.1)") && table.contains("median of 3"), "{table}");
        let once = Record::new("counting", "nexus", "local", "msgs_per_s", 0.0, "msg/s").over_rounds(&[12_300_000.0]);
        assert!(render_tables(&[once]).contains("12,300,000  msg/s"), "one round has no spread to show");
    }

    #[test]
    fn tables_group_by_workload_and_format_values() {
        let records = vec![
            Record::new("counting", "nexus", "local", "msgs_per_s", 12_345_678.4, "msg/s").engine(2, "threads"),
            Record::new("registry", "nexus", "local", "ns_per_op", 21.25, "ns").names(1_000_000),
            Record::new("counting", "nexus", "cross", "msgs_per_s", 999.94, "msg/s"),
        ];
        let table = render_tables(&records);
        assert!(table.starts_with("counting (nexus: 2 shards, threads executor)\n"), "{table}");
        assert!(
            table.contains("12,345,678") && table.contains("999.9") && table.contains("names=1,000,000"),
            "{table}"
        );
        assert!(table.find("cross").unwrap() < table.find("registry").unwrap(), "{table}");
        assert_eq!(format_value(1.234, "ratio"), "1.23");
    }

    #[test]
    fn dates_follow_the_calendar() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_415), (2025, 11, 23));
        assert_eq!(today_utc().len(), 10);
    }
}
