//! The core-to-core matrix (`nexus c2c`): the [`probe`](mod@crate::probe) run on every ordered
//! pair of distinct CPUs in a list.
//!
//! For the pair (row `i`, column `j`) the probe's initiator runs on `cpus[i]` and its responder
//! on `cpus[j]`, one pair at a time (both threads spin, so pairs never overlap). Two figures
//! per pair, both in nanoseconds:
//! - `rtt_p50_ns[i][j]`: the median round trip, each trip timed on its own exactly as the
//!   probe times them (one clock read per trip, so it includes one `Instant::now`);
//! - `one_way_ns[i][j]`: an *estimate* of the one-way latency, half the probe's batched round
//!   trip (the median over batches of the mean trip, no clock read inside a batch). A round
//!   trip moves the line twice, `i -> j` then `j -> i`, and the two moves are assumed to cost
//!   the same; the matrix is nearly symmetric on most machines, and where it is not the
//!   difference shows which side initiates, not which direction is slower.
//!
//! The diagonal (a CPU with itself) is not measured and holds `NaN`; the table prints `-` and
//! the heatmap a grey cell there.

use crate::plot::{output_error, write_file, TickAxis};
use crate::probe::{self, ProbeParams};
use crate::BenchError;
use nexus_engine::topology::Topology;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::fmt::Write as _;
use std::path::Path;

const WORKLOAD: &str = "c2c";

/// Heatmap cell size in pixels.
const CELL_PX: u32 = 56;

/// The measured matrix; see the module documentation. Rows are initiators, columns responders,
/// both in the order of `cpus`; the diagonal is `NaN`.
#[derive(Clone, Debug, PartialEq)]
pub struct C2cMatrix {
    /// The CPUs (OS indices), in row and column order.
    pub cpus: Vec<usize>,
    /// Median individually timed round trip, in nanoseconds.
    pub rtt_p50_ns: Vec<Vec<f64>>,
    /// One-way latency estimated as half the batched round trip, in nanoseconds.
    pub one_way_ns: Vec<Vec<f64>>,
}

/// Measures every ordered pair of distinct CPUs of `cpus` with the probe; `progress(step,
/// steps)` is called before each pair (steps counted from 1, pairs in row-major order: for each
/// initiator in `cpus`, each responder in `cpus`).
///
/// # Errors
/// [`BenchError::Params`] for fewer than two CPUs, a CPU listed twice, or (when
/// `params.pin`) a CPU the machine does not have or the process may not use; otherwise the
/// probe's own errors (a thread that cannot be pinned, a failed count check).
pub fn measure(
    cpus: &[usize],
    topology: &Topology,
    params: &ProbeParams,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<C2cMatrix, BenchError> {
    check_cpus(cpus, topology, params.pin)?;
    let n = cpus.len();
    let mut matrix = C2cMatrix {
        cpus: cpus.to_vec(),
        rtt_p50_ns: vec![vec![f64::NAN; n]; n],
        one_way_ns: vec![vec![f64::NAN; n]; n],
    };
    let steps = n * (n - 1);
    let mut step = 0;
    for (i, &initiator) in cpus.iter().enumerate() {
        for (j, &responder) in cpus.iter().enumerate() {
            if i == j {
                continue;
            }
            step += 1;
            progress(step, steps);
            let out = probe::run_on((initiator, responder), topology, params)?;
            matrix.rtt_p50_ns[i][j] = out.rtt.p50_ns;
            matrix.one_way_ns[i][j] = out.batch_rtt_ns / 2.0;
        }
    }
    Ok(matrix)
}

/// Checks that `cpus` can be measured.
fn check_cpus(cpus: &[usize], topology: &Topology, pin: bool) -> Result<(), BenchError> {
    if cpus.len() < 2 {
        return Err(BenchError::params(
            WORKLOAD,
            format!("{} CPU(s) given, a matrix needs at least 2; hint: --cpus 0,1", cpus.len()),
        ));
    }
    for (k, cpu) in cpus.iter().enumerate() {
        if cpus[..k].contains(cpu) {
            return Err(BenchError::params(WORKLOAD, format!("CPU {cpu} is listed twice")));
        }
        if pin {
            match topology.pu(*cpu) {
                None => return Err(BenchError::params(WORKLOAD, format!("CPU {cpu} does not exist on this machine"))),
                Some(pu) if !pu.allowed => {
                    return Err(BenchError::params(
                        WORKLOAD,
                        format!("CPU {cpu} is outside this process's allowed CPUs; hint: see `taskset -p $$`"),
                    ))
                }
                Some(_) => {}
            }
        }
    }
    Ok(())
}

/// A cell value for the table and the heatmap: `-` on the diagonal, no decimals from 100 ns.
fn cell(v: f64) -> String {
    if v.is_nan() {
        "-".to_string()
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

impl C2cMatrix {
    /// The off-diagonal values of `values`.
    fn measured(values: &[Vec<f64>]) -> impl Iterator<Item = f64> + '_ {
        values.iter().flatten().copied().filter(|v| v.is_finite())
    }

    /// Both matrices as text tables (rows: initiator CPU, columns: responder CPU), each under a
    /// title line, followed by the smallest and largest off-diagonal values.
    pub fn render_table(&self) -> String {
        let mut out = String::new();
        let parts = [
            ("round trip p50, ns (each trip timed)", &self.rtt_p50_ns),
            ("one way, ns (estimate: batched round trip / 2)", &self.one_way_ns),
        ];
        for (k, (title, values)) in parts.into_iter().enumerate() {
            if k > 0 {
                out.push('\n');
            }
            let _ = writeln!(out, "{title}; rows: initiator CPU, columns: responder CPU");
            let cells: Vec<Vec<String>> = values.iter().map(|row| row.iter().map(|v| cell(*v)).collect()).collect();
            let width = cells
                .iter()
                .flatten()
                .map(String::len)
                .chain(self.cpus.iter().map(|c| c.to_string().len() + 3))
                .max()
                .unwrap_or(1);
            let _ = write!(out, "{:>width$}", "");
            for cpu in &self.cpus {
                let _ = write!(out, "  {:>width$}", format!("cpu{cpu}"));
            }
            out.push('\n');
            for (cpu, row) in self.cpus.iter().zip(&cells) {
                let _ = write!(out, "{:>width$}", format!("cpu{cpu}"));
                for c in row {
                    let _ = write!(out, "  {c:>width$}");
                }
                out.push('\n');
            }
            let min = Self::measured(values).reduce(f64::min).unwrap_or(f64::NAN);
            let max = Self::measured(values).reduce(f64::max).unwrap_or(f64::NAN);
            let _ = writeln!(out, "min {}  max {}", cell(min), cell(max));
        }
        out
    }

    /// The matrix as an SVG document: two heatmaps side by side (round trip p50, one-way
    /// estimate), axes labelled with CPU ids, every cell with its value.
    ///
    /// # Errors
    /// [`BenchError::Output`] when plotting fails (path `<svg>`).
    pub fn to_svg(&self) -> Result<String, BenchError> {
        self.draw().map_err(|e| output_error("cannot draw the c2c heatmap", Path::new("<svg>"), e))
    }

    /// Writes [`to_svg`](Self::to_svg) to `path`.
    ///
    /// # Errors
    /// [`BenchError::Output`] naming `path` when drawing or writing fails.
    pub fn write_svg(&self, path: &Path) -> Result<(), BenchError> {
        let svg = self.draw().map_err(|e| output_error("cannot draw the c2c heatmap", path, e))?;
        write_file("cannot write the c2c heatmap", path, &svg)
    }

    /// Draws both heatmaps.
    fn draw(&self) -> Result<String, String> {
        let n = self.cpus.len();
        let panel = (CELL_PX * n as u32 + 150).max(480);
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (2 * panel, panel + 20)).into_drawing_area();
            root.fill(&WHITE).map_err(|e| e.to_string())?;
            let (left, right) = root.split_horizontally(panel);
            self.heatmap(&left, "round trip p50, ns", &self.rtt_p50_ns)?;
            self.heatmap(&right, "one way = batched round trip / 2, ns", &self.one_way_ns)?;
            root.present().map_err(|e| e.to_string())?;
        }
        Ok(svg)
    }

    /// One heatmap of `values` on `area`: row `i` at the top, from light (fastest) to dark red
    /// (slowest).
    fn heatmap<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, plotters::coord::Shift>,
        title: &str,
        values: &[Vec<f64>],
    ) -> Result<(), String> {
        let n = self.cpus.len();
        let axis = || TickAxis { range: 0.0..n as f64, ticks: (0..n).map(|k| k as f64 + 0.5).collect(), nines: false };
        let label = |v: f64, flip: bool| {
            let k = v.floor() as usize;
            let k = if flip { n.saturating_sub(k + 1) } else { k };
            self.cpus.get(k).map_or(String::new(), |c| c.to_string())
        };
        let min = Self::measured(values).reduce(f64::min).unwrap_or(0.0);
        let max = Self::measured(values).reduce(f64::max).unwrap_or(0.0);
        let mut chart = ChartBuilder::on(area)
            .caption(format!("{title} ({} .. {})", cell(min), cell(max)), ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d(axis(), axis())
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(n)
            .y_labels(n)
            .label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 15))
            .x_label_formatter(&|v| label(*v, false))
            .y_label_formatter(&|v| label(*v, true))
            .x_desc("responder CPU")
            .y_desc("initiator CPU")
            .draw()
            .map_err(|e| e.to_string())?;
        let font = if n > 12 { 11 } else { 14 };
        for (i, row) in values.iter().enumerate() {
            let y = (n - 1 - i) as f64;
            for (j, &v) in row.iter().enumerate() {
                let x = j as f64;
                let t = if v.is_finite() && max > min { (v - min) / (max - min) } else { 0.0 };
                let fill = if v.is_finite() { heat(t) } else { RGBColor(220, 220, 220) };
                let ink = if t > 0.55 { WHITE } else { BLACK };
                let style = ("sans-serif", font).into_font().color(&ink).pos(Pos::new(HPos::Center, VPos::Center));
                chart
                    .draw_series([Rectangle::new([(x, y), (x + 1.0, y + 1.0)], fill.filled())])
                    .map_err(|e| e.to_string())?;
                chart
                    .draw_series([Rectangle::new([(x, y), (x + 1.0, y + 1.0)], WHITE.stroke_width(1))])
                    .map_err(|e| e.to_string())?;
                chart.draw_series([Text::new(cell(v), (x + 0.5, y + 0.5), style)]).map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }
}

/// The heat colour at `t` in 0..=1: pale yellow to dark red.
fn heat(t: f64) -> RGBColor {
    let (a, b) = ((255.0, 247.0, 188.0), (165.0, 0.0, 38.0));
    let mix = |x: f64, y: f64| (x + (y - x) * t.clamp(0.0, 1.0)).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_two_cpu_matrix_has_positive_off_diagonal_values() {
        let topology = Topology::detect().unwrap();
        let allowed = topology.allowed_cpus();
        let tiny = ProbeParams { round_trips: 200, warmup: 20, batch_round_trips: 1_000, pin: allowed.len() >= 2 };
        let cpus: Vec<usize> = if tiny.pin { allowed[..2].to_vec() } else { vec![0, 1] };
        let run = |params: &ProbeParams| {
            let mut steps = Vec::new();
            measure(&cpus, &topology, params, &mut |s, n| steps.push((s, n))).map(|m| (m, steps))
        };
        let (matrix, steps) = match run(&tiny) {
            // Pinning is impossible here (a restricted container): measure unpinned.
            Err(BenchError::Pin(_)) => run(&ProbeParams { pin: false, ..tiny }).unwrap(),
            other => other.unwrap(),
        };
        assert_eq!(steps, vec![(1, 2), (2, 2)]);
        assert_eq!(matrix.cpus, cpus);
        for values in [&matrix.rtt_p50_ns, &matrix.one_way_ns] {
            assert_eq!(values.len(), 2);
            assert!(values.iter().all(|row| row.len() == 2));
            assert!(values[0][0].is_nan() && values[1][1].is_nan());
            assert!(values[0][1] > 0.0 && values[1][0] > 0.0, "{matrix:?}");
        }
        let table = matrix.render_table();
        assert!(table.contains(&format!("cpu{}", cpus[1])) && table.contains(" -"), "{table}");
        let svg = matrix.to_svg().unwrap();
        assert!(svg.contains("<svg") && svg.contains("<text") && svg.contains("initiator CPU"), "{svg}");
    }

    #[test]
    fn bad_cpu_lists_are_usage_errors() {
        let topology = Topology::detect().unwrap();
        let params = ProbeParams::default();
        for cpus in [vec![0], vec![0, 0], vec![0, usize::MAX]] {
            let err = measure(&cpus, &topology, &params, &mut |_, _| {}).unwrap_err();
            assert!(err.is_usage(), "{cpus:?}: {err}");
        }
        let m = C2cMatrix {
            cpus: vec![3, 5],
            rtt_p50_ns: vec![vec![f64::NAN, 150.2], vec![99.94, f64::NAN]],
            one_way_ns: vec![vec![f64::NAN, 60.0], vec![61.0, f64::NAN]],
        };
        let table = m.render_table();
        assert!(
            table.contains("cpu5")
                && table.contains("150")
                && table.contains("99.9")
                && table.contains("min 99.9  max 150"),
            "{table}"
        );
    }
}
