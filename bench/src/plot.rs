//! Charts of bench results as SVG files (`nexus bench --plot DIR`), drawn with `plotters`'
//! SVG backend (text is written as SVG `<text>`, so no font file is needed).
//!
//! [`write_charts`] writes two kinds of chart:
//! - **latency curves**, one chart per (workload, placement) that has [`LatencyCurve`]s, file
//!   `<workload>-<placement>-latency.svg`: latency (ns, log scale) against the percentile on a
//!   "nines" axis (50, 90, 99, 99.9, 99.99 equally spaced: `x = -log10(1 - p/100)`), one line
//!   per system;
//! - **throughput bars**, one chart per workload with records whose unit ends in `/s`, file
//!   `<workload>-throughput.svg`: one group of bars per placement (and per metric and shard
//!   count when the workload has several), one bar per system, each labelled with its value.
//!
//! Systems keep the same colour in every chart (by order of first appearance). Characters of a
//! workload or placement name other than letters, digits, `-`, `_` and `.` become `_` in file
//! names.

use crate::report::Record;
use crate::BenchError;
use hdrhistogram::Histogram;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::fmt::Display;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// The latency distribution of one (workload, system, placement), drawn as a percentile curve.
#[derive(Clone, Debug)]
pub struct LatencyCurve {
    /// The workload (`pingpong`, ...).
    pub workload: &'static str,
    /// Who was measured (`nexus`, `probe`, a peer).
    pub system: &'static str,
    /// `local` or `cross`.
    pub placement: &'static str,
    /// The latencies, in nanoseconds.
    pub histogram: Histogram<u64>,
}

/// Percentiles marked on the nines axis.
const NINES_TICKS: [f64; 5] = [50.0, 90.0, 99.0, 99.9, 99.99];

/// Points per unit of the nines axis on a latency curve.
const POINTS_PER_NINE: f64 = 20.0;

/// Chart size in pixels.
const CHART_SIZE: (u32, u32) = (900, 560);

/// Writes the charts of `records` and `curves` into `dir` (created if missing); returns the
/// files written, latency charts first. Nothing to draw writes nothing.
///
/// # Errors
/// [`BenchError::Output`] naming the directory or file that could not be created, drawn or
/// written.
pub fn write_charts(dir: &Path, records: &[Record], curves: &[LatencyCurve]) -> Result<Vec<PathBuf>, BenchError> {
    std::fs::create_dir_all(dir).map_err(|e| output_error("cannot create the chart directory", dir, e))?;
    let mut systems: Vec<&'static str> = Vec::new();
    for system in curves.iter().map(|c| c.system).chain(records.iter().map(|r| r.system)) {
        if !systems.contains(&system) {
            systems.push(system);
        }
    }
    let mut written = Vec::new();
    for (workload, placement) in first_seen(curves.iter().map(|c| (c.workload, c.placement))) {
        let group: Vec<&LatencyCurve> =
            curves.iter().filter(|c| c.workload == workload && c.placement == placement).collect();
        let path = dir.join(format!("{}-{}-latency.svg", file_part(workload), file_part(placement)));
        if let Some(svg) = latency_chart(workload, placement, &group, &systems)
            .map_err(|e| output_error("cannot draw the latency chart", &path, e))?
        {
            write_file("cannot write the latency chart", &path, &svg)?;
            written.push(path);
        }
    }
    // Size sweeps (`*_by_size`, one value per size) are tables, not bars.
    let throughput: Vec<&Record> =
        records.iter().filter(|r| r.unit.ends_with("/s") && !r.metric.ends_with("_by_size")).collect();
    for workload in first_seen(throughput.iter().map(|r| r.workload)) {
        let group: Vec<&Record> = throughput.iter().copied().filter(|r| r.workload == workload).collect();
        let path = dir.join(format!("{}-throughput.svg", file_part(workload)));
        let svg = throughput_chart(workload, &group, &systems)
            .map_err(|e| output_error("cannot draw the throughput chart", &path, e))?;
        write_file("cannot write the throughput chart", &path, &svg)?;
        written.push(path);
    }
    Ok(written)
}

/// A [`BenchError::Output`] for `path`.
pub(crate) fn output_error(what: &'static str, path: &Path, reason: impl Display) -> BenchError {
    BenchError::Output { what, path: path.display().to_string(), reason: reason.to_string() }
}

/// Writes `text` to `path`, the error naming the file.
pub(crate) fn write_file(what: &'static str, path: &Path, text: &str) -> Result<(), BenchError> {
    std::fs::write(path, text).map_err(|e| output_error(what, path, e))
}

/// The distinct items of `items`, in the order they first appear.
fn first_seen<T: PartialEq>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut seen = Vec::new();
    for item in items {
        if !seen.contains(&item) {
            seen.push(item);
        }
    }
    seen
}

/// `name` safe as part of a file name.
fn file_part(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' }).collect()
}

/// The colour of `system` (stable across charts: its index in `systems`).
fn colour(system: &str, systems: &[&str]) -> RGBColor {
    let index = systems.iter().position(|s| *s == system).unwrap_or(systems.len());
    let (r, g, b) = Palette99::pick(index).rgb();
    RGBColor(r, g, b)
}

/// A linear axis (or a "nines" axis: percentiles spaced by `-log10(1 - p/100)`) whose grid
/// lines and labels sit exactly at `ticks`. Also used by the c2c heatmap.
pub(crate) struct TickAxis {
    /// The range of values shown.
    pub(crate) range: Range<f64>,
    /// Where the labels go.
    pub(crate) ticks: Vec<f64>,
    /// Map values as percentiles on a nines scale instead of linearly.
    pub(crate) nines: bool,
}

impl TickAxis {
    /// `v` on the axis' linear scale.
    fn scale(&self, v: f64) -> f64 {
        if self.nines {
            -(1.0 - v.clamp(0.0, 99.9999) / 100.0).log10()
        } else {
            v
        }
    }
}

impl Ranged for TickAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let (lo, hi) = (self.scale(self.range.start), self.scale(self.range.end));
        let t = if hi > lo { (self.scale(*value) - lo) / (hi - lo) } else { 0.0 };
        limit.0 + (f64::from(limit.1 - limit.0) * t).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        self.ticks.clone()
    }

    fn range(&self) -> Range<f64> {
        self.range.clone()
    }
}

/// Latency with a unit that keeps it short: `850 ns`, `12.5 us`, `3.2 ms`.
fn format_ns(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.1} ms", ns / 1e6)
    } else if ns >= 1e4 {
        format!("{:.0} us", ns / 1e3)
    } else if ns >= 1e3 {
        format!("{:.1} us", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

/// A rate in SI units: `950`, `12.3k`, `4.56M`, `1.2G`.
fn format_rate(v: f64) -> String {
    match v.abs() {
        a if a >= 1e9 => format!("{:.2}G", v / 1e9),
        a if a >= 1e6 => format!("{:.2}M", v / 1e6),
        a if a >= 1e3 => format!("{:.1}k", v / 1e3),
        _ => format!("{v:.0}"),
    }
}

/// The percentile axis label: `50`, `99.9`.
fn format_percentile(p: f64) -> String {
    let text = format!("{p:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The latency chart of one (workload, placement); `None` when every histogram is empty.
fn latency_chart(
    workload: &str,
    placement: &str,
    curves: &[&LatencyCurve],
    systems: &[&str],
) -> Result<Option<String>, String> {
    let (first, last) = (NINES_TICKS[0], NINES_TICKS[NINES_TICKS.len() - 1]);
    let axis = TickAxis { range: first..last, ticks: NINES_TICKS.to_vec(), nines: true };
    let (lo, hi) = (axis.scale(first), axis.scale(last));
    let steps = ((hi - lo) * POINTS_PER_NINE).ceil() as usize;
    let lines: Vec<(&str, Vec<(f64, f64)>)> = curves
        .iter()
        .filter(|c| !c.histogram.is_empty())
        .map(|c| {
            let points = (0..=steps)
                .map(|i| {
                    let nines = lo + (hi - lo) * i as f64 / steps as f64;
                    let p = (100.0 * (1.0 - 10f64.powf(-nines))).clamp(first, last);
                    (p, (c.histogram.value_at_percentile(p) as f64).max(1.0))
                })
                .collect();
            (c.system, points)
        })
        .collect();
    let values = || lines.iter().flat_map(|(_, pts)| pts.iter().map(|(_, v)| *v));
    let (Some(min), Some(max)) = (values().reduce(f64::min), values().reduce(f64::max)) else {
        return Ok(None);
    };
    let (bottom, top) = ((min / 1.25).max(1.0), (max * 1.25).max(min * 2.0));
    // Grid lines at 1, 2 and 5 times each power of ten in view.
    let ticks = (0..12)
        .flat_map(|e| [1.0, 2.0, 5.0].map(|m| m * 10f64.powi(e)))
        .filter(|t| (bottom..=top).contains(t))
        .collect();
    let y = (bottom..top).log_scale().with_key_points(ticks);

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, CHART_SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption(format!("{workload} {placement}: latency by percentile"), ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(80)
            .build_cartesian_2d(axis, y)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 15))
            .x_label_formatter(&|p| format_percentile(*p))
            .y_label_formatter(&|ns| format_ns(*ns))
            .x_desc("percentile")
            .y_desc("latency (log scale)")
            .draw()
            .map_err(|e| e.to_string())?;
        for (system, points) in lines {
            let c = colour(system, systems);
            chart
                .draw_series(LineSeries::new(points, c.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(system)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font(("sans-serif", 14))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(Some(svg))
}

/// The throughput chart of one workload's `/s` records.
fn throughput_chart(workload: &str, records: &[&Record], systems: &[&str]) -> Result<String, String> {
    let several_metrics = first_seen(records.iter().map(|r| r.metric)).len() > 1;
    // Peers carry no shard count: only differing engine shard counts split the groups.
    let several_shards = first_seen(records.iter().filter_map(|r| r.shards)).len() > 1;
    let group_of = |r: &Record| {
        let mut label = r.placement.to_string();
        if several_metrics {
            label = format!("{label} {}", r.metric);
        }
        if let (true, Some(shards)) = (several_shards, r.shards) {
            label = format!("{label} ({shards} shards)");
        }
        label
    };
    let groups = first_seen(records.iter().map(|r| group_of(r)));
    let chart_systems = first_seen(records.iter().map(|r| r.system));
    let max = records.iter().map(|r| r.value).fold(0.0, f64::max);
    let unit = records.first().map_or("/s", |r| r.unit);
    let x = TickAxis {
        range: 0.0..groups.len() as f64,
        ticks: (0..groups.len()).map(|g| g as f64 + 0.5).collect(),
        nines: false,
    };
    let bar_width = 0.8 / chart_systems.len().max(1) as f64;

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, CHART_SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption(format!("{workload}: throughput"), ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(80)
            .build_cartesian_2d(x, 0.0..(max * 1.2).max(1.0))
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(TRANSPARENT)
            .label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 15))
            .x_label_formatter(&|v| groups.get(v.floor() as usize).cloned().unwrap_or_default())
            .y_label_formatter(&|v| format_rate(*v))
            .y_desc(unit)
            .draw()
            .map_err(|e| e.to_string())?;
        for (s, system) in chart_systems.iter().enumerate() {
            let c = colour(system, systems);
            let bars: Vec<(f64, f64)> = records
                .iter()
                .filter(|r| r.system == *system)
                .filter_map(|r| groups.iter().position(|g| *g == group_of(r)).map(|g| (g as f64, r.value)))
                .collect();
            let left = |g: f64| g + 0.1 + bar_width * s as f64;
            chart
                .draw_series(
                    bars.iter().map(|&(g, v)| Rectangle::new([(left(g), 0.0), (left(g) + bar_width, v)], c.filled())),
                )
                .map_err(|e| e.to_string())?
                .label(*system)
                .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], c.filled()));
            let label_style = ("sans-serif", 13).into_font().color(&BLACK).pos(Pos::new(HPos::Center, VPos::Bottom));
            chart
                .draw_series(
                    bars.iter()
                        .map(|&(g, v)| Text::new(format_rate(v), (left(g) + bar_width / 2.0, v), label_style.clone())),
                )
                .map_err(|e| e.to_string())?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font(("sans-serif", 14))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histogram(base: u64) -> Histogram<u64> {
        let mut h = crate::stats::histogram();
        for i in 0..10_000u64 {
            h.saturating_record(base + i % 100 + if i % 1000 == 0 { 50 * base } else { 0 });
        }
        h
    }

    #[test]
    fn charts_are_written_for_curves_and_rates() {
        let dir = std::env::temp_dir().join(format!(
            "nexus-plot-test-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let records = vec![
            Record::new("counting", "nexus", "local", "msgs_per_s", 25_000_000.0, "msg/s"),
            Record::new("counting", "nexus", "cross", "msgs_per_s", 9_000_000.0, "msg/s"),
            Record::new("counting", "tokio", "cross", "msgs_per_s", 4_000_000.0, "msg/s"),
            Record::new("pingpong", "nexus", "cross", "rtt_p50_ns", 180.0, "ns"),
        ];
        let curve = |system, base| LatencyCurve {
            workload: "pingpong",
            system,
            placement: "cross",
            histogram: histogram(base),
        };
        let curves = vec![curve("nexus", 150), curve("tokio", 900)];
        let written = write_charts(&dir, &records, &curves).unwrap();
        assert_eq!(written, vec![dir.join("pingpong-cross-latency.svg"), dir.join("counting-throughput.svg")]);
        for path in &written {
            let svg = std::fs::read_to_string(path).unwrap();
            assert!(svg.contains("<svg") && svg.contains("<text"), "{}", path.display());
            let texts: Vec<&str> = svg.lines().map(str::trim).collect();
            assert!(texts.contains(&"nexus") && texts.contains(&"tokio"), "system names in {}", path.display());
        }
        let latency = std::fs::read_to_string(&written[0]).unwrap();
        assert!(latency.lines().any(|l| l.trim() == "99.99"), "nines axis labels");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn axes_and_names() {
        let axis = TickAxis { range: 50.0..99.99, ticks: NINES_TICKS.to_vec(), nines: true };
        let at = |p| axis.map(&p, (0, 1000));
        // 90 -> 99 -> 99.9 are equally spaced.
        assert!((at(99.0) - at(90.0) - (at(99.9) - at(99.0))).abs() <= 1);
        assert_eq!((at(50.0), at(99.99)), (0, 1000));
        assert_eq!(file_part("thread ring/x"), "thread_ring_x");
        assert_eq!((format_percentile(99.9), format_percentile(50.0)), ("99.9".to_string(), "50".to_string()));
        assert_eq!(format_rate(12_345_678.0), "12.35M");
        assert_eq!(format_ns(1_500.0), "1.5 us");
    }
}
