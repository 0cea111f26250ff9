//! The search of `nexus tune`: coordinate descent over a small space of config values, with
//! interleaved pairwise measurement and a noise gate. Knows nothing of engines: a [`Bench`]
//! measures a [`Point`] and tells the time, so tests drive it with a fake.
//!
//! Protocol:
//! 1. The **incumbent** starts as the config's own values ([`Space::start`]). One warm-up run
//!    of it is discarded.
//! 2. For each dimension in order, the candidates are the incumbent with that one dimension
//!    changed, nearest values first. A candidate the bench does not admit is skipped unmeasured.
//! 3. A comparison runs up to `pairs` pairs, incumbent then candidate (A B A B ...). Each pair
//!    gives one ratio per metric, oriented so that above 1 means the candidate is better
//!    (latency inverted), and their geometric mean. The candidate's score is the median of
//!    those pair ratios.
//! 4. The noise is the relative MAD of the incumbent's repeated runs (each run's geometric mean
//!    against the incumbent's medians), pooled over every comparison against this incumbent,
//!    and never below `noise_floor`. The candidate wins only when its score exceeds
//!    `1 + noise`; it then becomes the incumbent and its runs seed the new pool.
//! 5. Passes repeat (at most `passes`) while a pass changed the incumbent.
//! 6. When the incumbent is no longer the start, the last `confirm_share` of the budget is kept
//!    for a direct winner-versus-start comparison, which also takes whatever budget the search
//!    left (up to ten comparisons' worth of pairs); if the winner is measured worse than the
//!    start there, the start is the answer.
//!
//! Invariants: a measurement starts only when the time used plus two estimated measurements
//! still fits the budget (so the budget holds up to one measurement's misestimate); the answer
//! ([`Outcome::best`]) is always a point that was measured and beat everything it replaced, so
//! stopping at any moment leaves the best seen so far; a comparison cut short below `min_pairs`
//! never switches.

use std::collections::HashSet;
use std::time::Duration;

/// Which way a metric improves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Better {
    /// Throughput: more is better.
    Higher,
    /// Latency: less is better.
    Lower,
}

/// One value a dimension can take: a label for the table, and the config keys it sets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Value {
    /// What the table shows (`64`, `auto (2)`, `threads`).
    pub label: String,
    /// `(dotted key, TOML value)` pairs this value writes into the config; empty leaves the
    /// config as it is.
    pub sets: Vec<(String, String)>,
}

impl Value {
    /// A value that sets one key.
    pub fn one(label: impl Into<String>, key: &str, toml: impl Into<String>) -> Self {
        Self { label: label.into(), sets: vec![(key.to_owned(), toml.into())] }
    }
}

/// One tunable dimension: its name, the values it may take (in their natural order) and the
/// index of the config's own value.
#[derive(Clone, Debug)]
pub struct Dimension {
    /// The dotted config key it tunes (or a short name when it sets several).
    pub key: String,
    /// Candidate values, in order (nearness is by index).
    pub values: Vec<Value>,
    /// Index of the config's own value in `values`.
    pub start: usize,
}

/// The space searched: dimensions in the order they are tried.
#[derive(Clone, Debug, Default)]
pub struct Space {
    /// The dimensions; a dimension with one value is never varied.
    pub dims: Vec<Dimension>,
}

/// A point of the space: one value index per dimension.
pub type Point = Vec<usize>;

impl Space {
    /// The config's own point.
    pub fn start(&self) -> Point {
        self.dims.iter().map(|d| d.start).collect()
    }

    /// Every key a point sets, later dimensions overriding earlier ones on the same key.
    pub fn sets(&self, point: &Point) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for (dim, &i) in self.dims.iter().zip(point) {
            for (key, toml) in &dim.values[i].sets {
                match out.iter_mut().find(|(k, _)| k == key) {
                    Some(slot) => slot.1 = toml.clone(),
                    None => out.push((key.clone(), toml.clone())),
                }
            }
        }
        out
    }

    /// `key=label` for every dimension where `point` differs from `base`; `-` when none does.
    pub fn diff(&self, base: &Point, point: &Point) -> String {
        let parts: Vec<String> = self
            .dims
            .iter()
            .zip(base.iter().zip(point))
            .filter(|(_, (a, b))| a != b)
            .map(|(d, (_, &b))| format!("{}={}", d.key, d.values[b].label))
            .collect();
        if parts.is_empty() {
            "-".into()
        } else {
            parts.join(" ")
        }
    }
}

/// What the search measures with.
pub trait Bench {
    /// Whether `point` can be measured at all; `Err` says why not (it is skipped unmeasured).
    fn admit(&mut self, _point: &Point) -> Result<(), String> {
        Ok(())
    }

    /// Measures `point` once: one figure per metric, in metric order.
    fn measure(&mut self, point: &Point) -> Result<Vec<f64>, String>;

    /// Time since the search began.
    fn elapsed(&self) -> Duration;
}

/// The search's limits.
#[derive(Clone, Debug)]
pub struct Params {
    /// Total time allowed.
    pub budget: Duration,
    /// Which way each metric improves, in the bench's figure order.
    pub better: Vec<Better>,
    /// Pairs per comparison (at least 1).
    pub pairs: usize,
    /// Fewest pairs a comparison needs to decide (a shorter one, cut by the budget, never
    /// switches).
    pub min_pairs: usize,
    /// The least noise assumed (a fraction: 0.01 is 1%).
    pub noise_floor: f64,
    /// Passes over the dimensions at most.
    pub passes: usize,
    /// Share of the budget kept for the winner-versus-start check (0 turns it off).
    pub confirm_share: f64,
}

/// How a trial ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// The config's own values.
    Start,
    /// Beat the incumbent by more than the noise: the new incumbent.
    Won,
    /// Did not beat the incumbent by more than the noise.
    Lost,
    /// Not measured: the bench does not admit it (why).
    Skipped(String),
    /// A measurement failed (why).
    Failed(String),
    /// The budget ran out before `min_pairs` pairs.
    Cut,
}

impl Verdict {
    /// A short word for the table.
    pub fn word(&self) -> String {
        match self {
            Verdict::Start => "start".into(),
            Verdict::Won => "WON".into(),
            Verdict::Lost => "lost".into(),
            Verdict::Skipped(why) => format!("skipped: {why}"),
            Verdict::Failed(why) => format!("failed: {why}"),
            Verdict::Cut => "cut (budget)".into(),
        }
    }
}

/// One row of the search's log: a point and how it fared against the incumbent of its time.
#[derive(Clone, Debug)]
pub struct Trial {
    /// The point tried.
    pub point: Point,
    /// Index (in [`Outcome::trials`]) of the incumbent it was compared with.
    pub against: usize,
    /// Medians of its figures, per metric (empty when not measured).
    pub figures: Vec<f64>,
    /// Median pair ratio per metric against the incumbent (above 1: better).
    pub ratios: Vec<f64>,
    /// Median of the pairs' geometric-mean ratios against the incumbent (above 1: better).
    pub score: f64,
    /// Its ratio against the start: `score` times the incumbent's own, chained.
    pub vs_start: f64,
    /// The noise the decision used (a fraction).
    pub noise: f64,
    /// Pairs measured.
    pub pairs: usize,
    /// How it ended.
    pub verdict: Verdict,
}

/// The direct comparison of the winner with the start at the end of the search.
#[derive(Clone, Debug)]
pub struct Confirmation {
    /// Median pair ratio, winner over start (above 1: the winner is better).
    pub score: f64,
    /// The start's noise in this comparison.
    pub noise: f64,
    /// Pairs measured.
    pub pairs: usize,
    /// Whether the winner was kept (false: measured worse than the start, the start is the
    /// answer).
    pub kept: bool,
}

/// What the search found.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Every trial in order; trial 0 is the start.
    pub trials: Vec<Trial>,
    /// Index in `trials` of the answer.
    pub best: usize,
    /// The winner-versus-start check, when there was a winner and time for it.
    pub confirmation: Option<Confirmation>,
    /// Measurements made (the warm-up included).
    pub measurements: usize,
    /// Time used.
    pub elapsed: Duration,
    /// Whether the search stopped because the budget ran out (false: it converged).
    pub budget_ran_out: bool,
}

impl Outcome {
    /// The answer's trial.
    pub fn best_trial(&self) -> &Trial {
        &self.trials[self.best]
    }
}

/// What the search reports while it runs: the time used so far and what it is doing.
pub type Progress<'a> = &'a mut dyn FnMut(Duration, &str);

/// The median of `values` (0 when empty).
pub fn median(values: &[f64]) -> f64 {
    nexus_bench::median(values)
}

/// The relative median absolute deviation: `median(|x - m|) / m` with `m` the median (0 when
/// fewer than two values or `m` is not positive).
pub fn relative_mad(values: &[f64]) -> f64 {
    if values.len() < 2 {
        return 0.0;
    }
    let m = median(values);
    if m <= 0.0 || !m.is_finite() {
        return 0.0;
    }
    let deviations: Vec<f64> = values.iter().map(|v| (v - m).abs()).collect();
    median(&deviations) / m
}

/// The geometric mean (1 when empty; non-positive values count as 1).
pub fn geomean(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 1.0;
    }
    let logs: f64 = values.iter().map(|&v| if v > 0.0 && v.is_finite() { v.ln() } else { 0.0 }).sum();
    (logs / values.len() as f64).exp()
}

/// How many times better `candidate` is than `base` on one metric (above 1: better).
pub fn oriented(better: Better, base: f64, candidate: f64) -> f64 {
    let (num, den) = match better {
        Better::Higher => (candidate, base),
        Better::Lower => (base, candidate),
    };
    if num > 0.0 && den > 0.0 {
        num / den
    } else {
        1.0
    }
}

/// The noise of repeated runs of one point: each run's geometric mean of oriented ratios to
/// the per-metric medians, then their relative MAD.
pub fn noise_of(runs: &[Vec<f64>], better: &[Better]) -> f64 {
    if runs.len() < 2 {
        return 0.0;
    }
    let medians: Vec<f64> = (0..better.len()).map(|m| median(&runs.iter().map(|r| r[m]).collect::<Vec<_>>())).collect();
    let scores: Vec<f64> = runs
        .iter()
        .map(|r| geomean(&better.iter().enumerate().map(|(m, &b)| oriented(b, medians[m], r[m])).collect::<Vec<_>>()))
        .collect();
    relative_mad(&scores)
}

/// The state of one search.
struct Search<'a, B: Bench> {
    space: &'a Space,
    params: &'a Params,
    bench: &'a mut B,
    progress: Progress<'a>,
    /// Durations of the latest measurements, for the estimate of the next one.
    recent: Vec<Duration>,
    measurements: usize,
    trials: Vec<Trial>,
    /// Index of the incumbent's trial.
    incumbent: usize,
    /// The incumbent's runs (figures per metric), pooled over its comparisons.
    pool: Vec<Vec<f64>>,
    /// (incumbent, candidate) pairs already compared.
    tried: HashSet<(Point, Point)>,
    /// Every run of the start point after the warm-up, for its own row.
    start_runs: Vec<Vec<f64>>,
    out_of_budget: bool,
}

impl<B: Bench> Search<'_, B> {
    /// Budget the search proper may use (the rest is kept for the confirmation once there is a
    /// winner).
    fn limit(&self) -> Duration {
        if self.incumbent != 0 && self.params.confirm_share > 0.0 {
            self.params.budget.mul_f64((1.0 - self.params.confirm_share).clamp(0.0, 1.0))
        } else {
            self.params.budget
        }
    }

    /// Whether `n` more measurements fit in `limit`.
    fn room(&self, n: u32, limit: Duration) -> bool {
        let estimate = self.recent.iter().max().copied().unwrap_or_default();
        self.bench.elapsed() + estimate * n <= limit
    }

    fn measure(&mut self, point: &Point) -> Result<Vec<f64>, String> {
        let before = self.bench.elapsed();
        let result = self.bench.measure(point);
        self.measurements += 1;
        let took = self.bench.elapsed().saturating_sub(before);
        if self.recent.len() == 8 {
            self.recent.remove(0);
        }
        self.recent.push(took);
        match result {
            Ok(f) if f.len() == self.params.better.len() => {
                if self.measurements > 1 && *point == self.space.start() {
                    self.start_runs.push(f.clone());
                }
                Ok(f)
            }
            Ok(f) => Err(format!("{} figures for {} metrics", f.len(), self.params.better.len())),
            Err(e) => Err(e),
        }
    }

    /// Interleaved pairs of `base` and `candidate` within `limit`: (base runs, candidate runs,
    /// per-pair figures ratios), or the candidate's failure. A failure of `base` stops the
    /// search (its runs so far are kept).
    #[allow(clippy::type_complexity)]
    fn pairs(
        &mut self,
        base: &Point,
        candidate: &Point,
        label: &str,
        limit: Duration,
        count: usize,
    ) -> (Vec<Vec<f64>>, Vec<Vec<f64>>, Option<String>) {
        let (mut a_runs, mut b_runs) = (Vec::new(), Vec::new());
        for j in 0..count {
            if !self.room(2, limit) {
                self.out_of_budget = true;
                break;
            }
            (self.progress)(self.bench.elapsed(), &format!("{label} pair {}/{count}", j + 1));
            let a = match self.measure(base) {
                Ok(a) => a,
                Err(e) => {
                    self.out_of_budget = true;
                    return (a_runs, b_runs, Some(format!("the incumbent failed: {e}")));
                }
            };
            a_runs.push(a);
            match self.measure(candidate) {
                Ok(b) => b_runs.push(b),
                Err(e) => return (a_runs, b_runs, Some(e)),
            }
        }
        (a_runs, b_runs, None)
    }

    /// Per-metric median ratios and the median of the pairs' geometric means.
    fn score(&self, a_runs: &[Vec<f64>], b_runs: &[Vec<f64>]) -> (Vec<f64>, f64) {
        let better = &self.params.better;
        let per_pair: Vec<Vec<f64>> = a_runs
            .iter()
            .zip(b_runs)
            .map(|(a, b)| better.iter().enumerate().map(|(m, &d)| oriented(d, a[m], b[m])).collect())
            .collect();
        let ratios = (0..better.len()).map(|m| median(&per_pair.iter().map(|r| r[m]).collect::<Vec<_>>())).collect();
        let score = median(&per_pair.iter().map(|r| geomean(r)).collect::<Vec<_>>());
        (ratios, score)
    }

    fn medians(&self, runs: &[Vec<f64>]) -> Vec<f64> {
        (0..self.params.better.len()).map(|m| median(&runs.iter().map(|r| r[m]).collect::<Vec<_>>())).collect()
    }

    fn noise(&self) -> f64 {
        noise_of(&self.pool, &self.params.better).max(self.params.noise_floor)
    }

    /// Compares `candidate` with the incumbent and records the trial.
    fn compare(&mut self, candidate: Point) {
        let base = self.trials[self.incumbent].point.clone();
        self.tried.insert((base.clone(), candidate.clone()));
        let label = format!("#{} {}", self.trials.len(), self.space.diff(&self.space.start(), &candidate));
        let mut trial = Trial {
            point: candidate.clone(),
            against: self.incumbent,
            figures: Vec::new(),
            ratios: Vec::new(),
            score: 0.0,
            vs_start: 0.0,
            noise: self.noise(),
            pairs: 0,
            verdict: Verdict::Cut,
        };
        if let Err(why) = self.bench.admit(&candidate) {
            trial.verdict = Verdict::Skipped(why);
            self.trials.push(trial);
            return;
        }
        let limit = self.limit();
        let (a_runs, b_runs, failure) = self.pairs(&base, &candidate, &label, limit, self.params.pairs);
        self.pool.extend(a_runs.iter().take(b_runs.len()).cloned());
        let n = b_runs.len();
        trial.pairs = n;
        trial.noise = self.noise();
        if n > 0 {
            let (ratios, score) = self.score(&a_runs[..n], &b_runs);
            trial.figures = self.medians(&b_runs);
            trial.ratios = ratios;
            trial.score = score;
            trial.vs_start = score * self.trials[self.incumbent].vs_start;
        }
        trial.verdict = match failure {
            Some(e) => Verdict::Failed(e),
            None if n < self.params.min_pairs.max(1) => Verdict::Cut,
            None if trial.score > 1.0 + trial.noise => Verdict::Won,
            None => Verdict::Lost,
        };
        let won = trial.verdict == Verdict::Won;
        self.trials.push(trial);
        if won {
            self.incumbent = self.trials.len() - 1;
            self.pool = b_runs;
        }
    }

    /// Candidate value indices of dimension `d` around `current`, nearest first (the higher
    /// index first on a tie).
    fn order(&self, d: usize, current: usize) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..self.space.dims[d].values.len()).filter(|&i| i != current).collect();
        idx.sort_by_key(|&i| (i.abs_diff(current), std::cmp::Reverse(i)));
        idx
    }

    fn run(&mut self) {
        let start = self.space.start();
        (self.progress)(self.bench.elapsed(), "warm-up");
        let warm = self.measure(&start);
        let mut start_trial = Trial {
            point: start.clone(),
            against: 0,
            figures: Vec::new(),
            ratios: vec![1.0; self.params.better.len()],
            score: 1.0,
            vs_start: 1.0,
            noise: self.params.noise_floor,
            pairs: 0,
            verdict: Verdict::Start,
        };
        if let Err(e) = warm {
            start_trial.verdict = Verdict::Failed(e);
            self.trials.push(start_trial);
            return;
        }
        self.trials.push(start_trial);
        'passes: for _pass in 0..self.params.passes.max(1) {
            let mut changed = false;
            for d in 0..self.space.dims.len() {
                let current = self.trials[self.incumbent].point[d];
                for v in self.order(d, current) {
                    // Earlier wins in this dimension move the incumbent.
                    let mut candidate = self.trials[self.incumbent].point.clone();
                    if candidate[d] == v {
                        continue;
                    }
                    candidate[d] = v;
                    let key = (self.trials[self.incumbent].point.clone(), candidate.clone());
                    if self.tried.contains(&key) {
                        continue;
                    }
                    let before = self.incumbent;
                    self.compare(candidate);
                    changed |= self.incumbent != before;
                    if self.out_of_budget {
                        break 'passes;
                    }
                }
            }
            if !changed {
                break;
            }
        }
    }
}

/// The winner-versus-start check runs up to this many times a comparison's pairs, as long as
/// the budget lasts.
const CONFIRM_PAIRS_FACTOR: usize = 10;

/// Runs the search of `space` with `bench` within `params.budget`; see the module docs.
pub fn search<B: Bench>(space: &Space, params: &Params, bench: &mut B, progress: Progress<'_>) -> Outcome {
    let mut s = Search {
        space,
        params,
        bench,
        progress,
        recent: Vec::new(),
        measurements: 0,
        trials: Vec::new(),
        incumbent: 0,
        pool: Vec::new(),
        tried: HashSet::new(),
        start_runs: Vec::new(),
        out_of_budget: false,
    };
    s.run();
    let mut confirmation = None;
    if s.incumbent != 0 && s.trials[0].verdict == Verdict::Start {
        let (winner, start) = (s.trials[s.incumbent].point.clone(), s.trials[0].point.clone());
        // The check takes whatever budget the search left, up to CONFIRM_PAIRS_FACTOR times a
        // comparison's pairs: a search that converged early spends the rest tightening it.
        let count = params.pairs * CONFIRM_PAIRS_FACTOR;
        let (a_runs, b_runs, failure) = s.pairs(&start, &winner, "winner vs start", params.budget, count);
        let n = b_runs.len();
        if failure.is_none() && n >= params.min_pairs.max(1) {
            let (_, score) = s.score(&a_runs[..n], &b_runs);
            let noise = noise_of(&a_runs, &params.better).max(params.noise_floor);
            let kept = score >= 1.0;
            confirmation = Some(Confirmation { score, noise, pairs: n, kept });
            if !kept {
                s.incumbent = 0;
            }
        }
    }
    // The start's own row: every run of it after the warm-up.
    let start_runs = std::mem::take(&mut s.start_runs);
    if !start_runs.is_empty() {
        s.trials[0].figures = s.medians(&start_runs);
        s.trials[0].noise = noise_of(&start_runs, &params.better).max(params.noise_floor);
        s.trials[0].pairs = start_runs.len();
    }
    Outcome {
        best: s.incumbent,
        confirmation,
        measurements: s.measurements,
        elapsed: s.bench.elapsed(),
        budget_ran_out: s.out_of_budget,
        trials: s.trials,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake bench: the figures of a point are a deterministic function of it (a rate, then
    /// a latency), with a repeating noise pattern (a slow run: the rate times `w`, the latency
    /// over `w`, the same for both runs of a pair); every measurement takes `step` of fake
    /// time.
    struct Fake {
        now: Duration,
        step: Duration,
        figure: fn(&Point) -> Vec<f64>,
        /// Multipliers applied in turn, one per measurement.
        wobble: Vec<f64>,
        n: usize,
    }

    impl Fake {
        fn new(figure: fn(&Point) -> Vec<f64>, wobble: Vec<f64>) -> Self {
            Self { now: Duration::ZERO, step: Duration::from_millis(100), figure, wobble, n: 0 }
        }
    }

    impl Bench for Fake {
        fn admit(&mut self, point: &Point) -> Result<(), String> {
            if point.get(1) == Some(&3) {
                return Err("not allowed".into());
            }
            Ok(())
        }

        fn measure(&mut self, point: &Point) -> Result<Vec<f64>, String> {
            self.now += self.step;
            // One multiplier per pair (after the warm-up): both sides of a pair see the same.
            let w = self.wobble[(self.n.saturating_sub(1) / 2) % self.wobble.len()];
            self.n += 1;
            let f = (self.figure)(point);
            Ok(vec![f[0] * w, f[1] / w])
        }

        fn elapsed(&self) -> Duration {
            self.now
        }
    }

    fn dim(key: &str, n: usize, start: usize) -> Dimension {
        Dimension {
            key: key.into(),
            values: (0..n).map(|i| Value::one(i.to_string(), key, i.to_string())).collect(),
            start,
        }
    }

    fn params(budget_s: u64) -> Params {
        Params {
            budget: Duration::from_secs(budget_s),
            better: vec![Better::Higher, Better::Lower],
            pairs: 5,
            min_pairs: 3,
            noise_floor: 0.005,
            passes: 2,
            confirm_share: 0.0,
        }
    }

    fn quiet() -> impl FnMut(Duration, &str) {
        |_, _| {}
    }

    #[test]
    fn statistics() {
        assert_eq!(relative_mad(&[1.0]), 0.0);
        assert!((relative_mad(&[1.0, 1.1, 0.9, 1.0, 1.0]) - 0.0).abs() < 1e-12);
        assert!((relative_mad(&[1.0, 1.2, 0.8]) - 0.2).abs() < 1e-12);
        assert!((geomean(&[2.0, 0.5]) - 1.0).abs() < 1e-12);
        assert_eq!(oriented(Better::Higher, 10.0, 20.0), 2.0);
        assert_eq!(oriented(Better::Lower, 10.0, 20.0), 0.5);
        assert_eq!(oriented(Better::Lower, 0.0, 20.0), 1.0);
        // Throughput up 10%, latency up 10%: a wash.
        let runs = vec![vec![100.0, 10.0], vec![110.0, 11.0], vec![90.0, 9.0]];
        assert!(noise_of(&runs, &[Better::Higher, Better::Lower]) < 0.011);
        let runs = vec![vec![100.0, 10.0], vec![120.0, 10.0], vec![80.0, 10.0]];
        assert!((noise_of(&runs, &[Better::Higher, Better::Lower]) - (1.2f64.sqrt() - 1.0)).abs() < 0.02);
    }

    #[test]
    fn a_candidate_better_by_less_than_the_noise_does_not_win() {
        // Value 1 of dimension 0 is 2% better on both metrics; the runs wobble by +-10%.
        let space = Space { dims: vec![dim("a", 2, 0)] };
        let mut bench =
            Fake::new(|p| if p[0] == 1 { vec![102.0, 100.0 / 1.02] } else { vec![100.0, 100.0] }, vec![1.0, 1.1, 0.9]);
        let out = search(&space, &params(60), &mut bench, &mut quiet());
        assert_eq!(out.best, 0, "{:?}", out.trials);
        let t = &out.trials[1];
        assert_eq!(t.verdict, Verdict::Lost);
        assert!(t.noise >= 0.09 && (t.score - 1.02).abs() < 1e-9, "{t:?}");
        assert!(!out.budget_ran_out);
    }

    #[test]
    fn a_candidate_better_by_a_lot_wins_and_the_answer_is_the_best() {
        // Dimension 0 is best at 3, dimension 1 at 0 (and 3 is not admitted); +-5% wobble.
        let space = Space { dims: vec![dim("a", 5, 1), dim("b", 5, 2)] };
        let figure: fn(&Point) -> Vec<f64> = |p| {
            let q = 1.0 + 0.3 * (3.0 - (p[0] as f64 - 3.0).abs()) + 0.2 * (4.0 - p[1] as f64);
            vec![100.0 * q, 50.0 / q]
        };
        let mut bench = Fake::new(figure, vec![1.0, 1.05, 0.95, 1.0, 0.95, 1.05, 1.0]);
        let p = Params { confirm_share: 0.2, ..params(60) };
        let mut seen = Vec::new();
        let out = search(&space, &p, &mut bench, &mut |t, what: &str| seen.push((t, what.to_owned())));
        assert_eq!(out.best_trial().point, vec![3, 0], "{:#?}", out.trials);
        assert!(out.trials.iter().any(|t| matches!(&t.verdict, Verdict::Skipped(w) if w == "not allowed")));
        // The answer is the best point measured: no measured trial has a better true figure.
        let best = figure(&out.best_trial().point)[0];
        assert!(out.trials.iter().filter(|t| t.pairs > 0).all(|t| figure(&t.point)[0] <= best));
        // Chained ratios: the winner is about 1.59x the start (q 2.7 / 1.7).
        let vs = out.best_trial().vs_start;
        assert!((vs / (2.7 / 1.7) - 1.0).abs() < 0.1, "{vs}");
        let c = out.confirmation.as_ref().expect("a winner is confirmed");
        assert!(c.kept && c.score > 1.4, "{c:?}");
        assert!(!out.trials[0].figures.is_empty());
        assert!(seen.first().is_some_and(|(_, w)| w == "warm-up"));
        assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0));
    }

    #[test]
    fn the_budget_is_respected_and_the_answer_is_the_best_so_far() {
        // Every step up dimension 0 is 20% better; there is time for only part of the way.
        let space = Space { dims: vec![dim("a", 20, 0)] };
        let mut bench = Fake::new(|p| vec![100.0 * 1.2f64.powi(p[0] as i32), 1.0], vec![1.0]);
        let p = Params { budget: Duration::from_millis(2_550), ..params(0) };
        let out = search(&space, &p, &mut bench, &mut quiet());
        assert!(out.elapsed <= p.budget, "{:?}", out.elapsed);
        assert!(out.budget_ran_out);
        // A warm-up (0.1 s) and two comparisons of 5 pairs (1 s each) leave 0.45 s: two pairs
        // of the third, fewer than the 3 it needs to decide.
        assert_eq!(out.best_trial().point, vec![2]);
        assert_eq!(out.trials.iter().filter(|t| t.verdict == Verdict::Won).count(), 2);
        assert_eq!(out.trials.last().map(|t| t.verdict.clone()), Some(Verdict::Cut));
    }

    #[test]
    fn a_failing_candidate_is_recorded_and_skipped() {
        let space = Space { dims: vec![dim("a", 2, 0)] };
        struct Failing(Duration);
        impl Bench for Failing {
            fn measure(&mut self, p: &Point) -> Result<Vec<f64>, String> {
                self.0 += Duration::from_millis(10);
                if p[0] == 1 {
                    Err("boom".into())
                } else {
                    Ok(vec![1.0, 1.0])
                }
            }
            fn elapsed(&self) -> Duration {
                self.0
            }
        }
        let out = search(&space, &params(10), &mut Failing(Duration::ZERO), &mut quiet());
        assert_eq!(out.best, 0);
        assert_eq!(out.trials[1].verdict, Verdict::Failed("boom".into()));
    }

    #[test]
    fn sets_and_diff() {
        let mut space = Space { dims: vec![dim("x.a", 3, 0), dim("x.b", 2, 0)] };
        space.dims[1].values[1].sets.push(("x.a".into(), "9".into()));
        assert_eq!(space.sets(&vec![2, 0]), vec![("x.a".to_owned(), "2".to_owned()), ("x.b".into(), "0".into())]);
        assert_eq!(space.sets(&vec![2, 1]), vec![("x.a".to_owned(), "9".to_owned()), ("x.b".into(), "1".into())]);
        assert_eq!(space.diff(&vec![0, 0], &vec![0, 0]), "-");
        assert_eq!(space.diff(&vec![0, 0], &vec![2, 1]), "x.a=2 x.b=1");
    }
}
