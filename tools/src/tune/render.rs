//! What `nexus tune` prints and writes: the results table (stdout) and the tuned config (TOML).
//!
//! The tuned config is the input file's text with the tuned keys' lines replaced (or added to
//! their table when the input left them out), each carrying a `#` comment with its figures,
//! under a header of `#` comments (date, machine, budget, figures, noise). Everything else in
//! the file, comments included, is kept byte for byte. Pure text in, text out: no engine here.

use super::search::{Better, Outcome, Space, Trial};
use nexus_bench::report::format_value;

/// One figure the tune measures: which workload, what, in which unit, and which way is better.
#[derive(Clone, Debug)]
pub struct Metric {
    /// The workload's name (`pingpong`).
    pub workload: &'static str,
    /// What the figure is (`cross round trip p50`).
    pub figure: &'static str,
    /// Its unit (`ns`, `msg/s`).
    pub unit: &'static str,
    /// Which way it improves.
    pub better: Better,
}

/// Everything the table and the TOML header need besides the search's outcome.
#[derive(Clone, Debug)]
pub struct Context {
    /// The config file tuned.
    pub config: String,
    /// The budget, in seconds.
    pub budget_s: f64,
    /// Today's date (UTC).
    pub date: String,
    /// The machine: CPU model and count.
    pub machine: String,
    /// The figures, in the bench's order.
    pub metrics: Vec<Metric>,
    /// Lines about dimensions left out and why, and other notes.
    pub notes: Vec<String>,
}

/// `x1.234` for a ratio.
fn ratio(r: f64) -> String {
    if r > 0.0 {
        format!("x{r:.3}")
    } else {
        "-".into()
    }
}

/// `±1.2%` for a noise fraction.
fn pm(noise: f64) -> String {
    format!("±{:.1}%", noise * 100.0)
}

/// A figure with its unit.
fn figure(value: f64, unit: &str) -> String {
    format!("{} {unit}", format_value(value, unit))
}

/// The results table: a title, the notes, one row per trial, then the winner.
pub fn table(space: &Space, outcome: &Outcome, cx: &Context) -> String {
    let start = space.start();
    let mut header: Vec<String> = vec!["#".into(), "config (vs start)".into()];
    for m in &cx.metrics {
        let way = if m.better == Better::Lower { "lower" } else { "higher" };
        header.push(format!("{} {} ({}, {way} better)", m.workload, m.figure, m.unit));
    }
    header.extend(["vs incumbent".into(), "vs start".into(), "noise".into(), "pairs".into(), "verdict".into()]);
    let mut rows: Vec<Vec<String>> = Vec::new();
    for (i, t) in outcome.trials.iter().enumerate() {
        let mut row = vec![format!("{i}"), space.diff(&start, &t.point)];
        for (m, metric) in cx.metrics.iter().enumerate() {
            row.push(t.figures.get(m).map_or_else(|| "-".into(), |&v| figure(v, metric.unit)));
        }
        let measured = t.pairs > 0;
        if i == 0 {
            row.extend(["-".into(), ratio(1.0), pm(t.noise), format!("{} runs", t.pairs)]);
        } else {
            let vs_inc = if measured { format!("{} (#{})", ratio(t.score), t.against) } else { "-".into() };
            let vs_start = if measured { ratio(t.vs_start) } else { "-".into() };
            let noise = if measured { pm(t.noise) } else { "-".into() };
            row.extend([vs_inc, vs_start, noise, t.pairs.to_string()]);
        }
        let mut verdict = t.verdict.word();
        if i == outcome.best {
            verdict.push_str(" <- best");
        }
        row.push(verdict);
        rows.push(row);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).chain([header[c].chars().count()]).max().unwrap_or(0))
        .collect();
    let line = |cells: &[String]| -> String {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        format!("| {} |", padded.join(" | ")).trim_end().to_string()
    };
    let mut out = format!(
        "nexus tune: {}, budget {:.0} s (used {:.1} s, {} measurements{}), {}\nmachine: {}\n",
        cx.config,
        cx.budget_s,
        outcome.elapsed.as_secs_f64(),
        outcome.measurements,
        if outcome.budget_ran_out { ", stopped by the budget" } else { ", converged" },
        cx.date,
        cx.machine,
    );
    for note in &cx.notes {
        out.push_str(&format!("note: {note}\n"));
    }
    out.push_str(
        "ratios: median over interleaved pairs (incumbent, candidate) of the geometric mean of the per-workload \
         ratios, latency inverted, above 1 = better; vs start is chained through the incumbents; noise = relative \
         MAD of the incumbent's repeated runs; a candidate wins only above 1 + noise\n\n",
    );
    out.push_str(&line(&header));
    out.push('\n');
    out.push_str(&line(&widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>()));
    out.push('\n');
    for row in &rows {
        out.push_str(&line(row));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&summary(space, outcome, cx));
    out
}

/// The closing lines: the winner and its direct check against the start.
fn summary(space: &Space, outcome: &Outcome, cx: &Context) -> String {
    let best = outcome.best_trial();
    let start = space.start();
    let reverted = outcome.confirmation.as_ref().is_some_and(|c| !c.kept);
    let mut out = if reverted {
        "best: the start config (the search's winner was not better than the start when measured directly)\n"
            .to_string()
    } else if outcome.best == 0 {
        "best: the start config (no candidate beat it by more than the noise)\n".to_string()
    } else {
        format!(
            "best: #{} {} ({} vs start, chained; noise {})\n",
            outcome.best,
            space.diff(&start, &best.point),
            ratio(best.vs_start),
            pm(best.noise)
        )
    };
    if let Some(c) = &outcome.confirmation {
        out.push_str(&format!(
            "check: winner vs start measured directly: {} over {} pairs (start's noise {}){}\n",
            ratio(c.score),
            c.pairs,
            pm(c.noise),
            if c.kept { "" } else { ": not better, so the start config is kept" }
        ));
    }
    let figures: Vec<String> = cx
        .metrics
        .iter()
        .enumerate()
        .filter_map(|(m, metric)| {
            best.figures.get(m).map(|&v| format!("{} {}", metric.workload, figure(v, metric.unit)))
        })
        .collect();
    if !figures.is_empty() {
        out.push_str(&format!("best figures: {}\n", figures.join(", ")));
    }
    out
}

/// The trial where `key` last took the best point's value (the trial that won it), if any.
fn won_by(outcome: &Outcome, d: usize) -> Option<(usize, &Trial)> {
    let mut at = outcome.best;
    // Walk back along the incumbents to the trial that changed dimension `d`.
    loop {
        let t = &outcome.trials[at];
        if at == 0 {
            return None;
        }
        let before = &outcome.trials[t.against];
        if before.point[d] != t.point[d] {
            return Some((at, t));
        }
        at = t.against;
    }
}

/// The tuned config: `text` (the input file) with a header of comments and every tuned key set
/// to the best point's value, with a comment per key.
pub fn tuned_toml(text: &str, space: &Space, outcome: &Outcome, cx: &Context) -> String {
    let best = outcome.best_trial();
    let start_trial = &outcome.trials[0];
    let figures = |t: &Trial| -> String {
        let parts: Vec<String> = cx
            .metrics
            .iter()
            .enumerate()
            .filter_map(|(m, metric)| {
                t.figures.get(m).map(|&v| format!("{} {}", metric.workload, figure(v, metric.unit)))
            })
            .collect();
        if parts.is_empty() {
            "not measured".into()
        } else {
            parts.join(", ")
        }
    };
    let what: Vec<String> = cx.metrics.iter().map(|m| format!("{} {} ({})", m.workload, m.figure, m.unit)).collect();
    let mut head = vec![
        format!("Tuned by `nexus tune` on {} from {}.", cx.date, cx.config),
        format!("Machine: {}.", cx.machine),
        format!(
            "Budget {:.0} s (used {:.1} s, {} measurements{}).",
            cx.budget_s,
            outcome.elapsed.as_secs_f64(),
            outcome.measurements,
            if outcome.budget_ran_out { ", stopped by the budget" } else { ", converged" }
        ),
        format!("Figures: {} (medians of interleaved runs).", what.join(", ")),
        format!("Start: {} (noise {}).", figures(start_trial), pm(start_trial.noise)),
    ];
    if outcome.confirmation.as_ref().is_some_and(|c| !c.kept) {
        head.push(
            "Tuned: the start config; the search's winner was not better when measured against it directly.".into(),
        );
    } else if outcome.best == 0 {
        head.push("Tuned: the start config; no candidate beat it by more than the noise.".into());
    } else {
        head.push(format!(
            "Tuned: {} ({} vs start, chained; noise {}).",
            figures(best),
            ratio(best.vs_start),
            pm(best.noise)
        ));
    }
    if let Some(c) = &outcome.confirmation {
        head.push(format!(
            "Check, winner vs start directly: {} over {} pairs (noise {}).",
            ratio(c.score),
            c.pairs,
            pm(c.noise)
        ));
    }
    head.push(format!("Trials: {} configs; `nexus tune` prints the whole table.", outcome.trials.len()));
    for note in &cx.notes {
        head.push(format!("Note: {note}"));
    }
    let mut sets: Vec<(String, String, String)> = Vec::new();
    for (d, dim) in space.dims.iter().enumerate() {
        let v = &dim.values[best.point[d]];
        // Trials that changed this dimension against their incumbent.
        let tried =
            outcome.trials.iter().filter(|t| t.pairs > 0 && t.point[d] != outcome.trials[t.against].point[d]).count();
        let comment = match won_by(outcome, d) {
            Some((i, t)) => format!(
                "tuned (was {}): trial #{i}: {}; {} vs incumbent, noise {}, {} pairs",
                dim.values[dim.start].label,
                figures(t),
                ratio(t.score),
                pm(t.noise),
                t.pairs
            ),
            None => format!(
                "tuned: kept; {tried} trial(s) changed it, none beat the incumbent by more than the noise (start {})",
                pm(start_trial.noise)
            ),
        };
        for (key, toml) in &v.sets {
            sets.retain(|(k, _, _)| k != key);
            sets.push((key.clone(), toml.clone(), comment.clone()));
        }
    }
    let mut out: String = head.iter().map(|l| format!("# {l}\n")).collect();
    out.push('\n');
    out.push_str(&set_keys(text, &sets));
    out
}

/// Splits `mesh.batch` into its table (`mesh`) and key (`batch`); a key with no dot is
/// top-level (table `""`).
fn split_key(dotted: &str) -> (&str, &str) {
    dotted.rsplit_once('.').unwrap_or(("", dotted))
}

/// The table a header line opens (`[mesh]` -> `mesh`, `[[agents]]` -> `agents`), if it is one.
fn header_table(line: &str) -> Option<&str> {
    let t = line.trim();
    let t = t.split_once('#').map_or(t, |(a, _)| a).trim();
    let inner = t.strip_prefix("[[").and_then(|s| s.strip_suffix("]]"));
    let inner = inner.or_else(|| t.strip_prefix('[').and_then(|s| s.strip_suffix(']')))?;
    Some(inner.trim())
}

/// Whether `line` assigns `key` (`key = ...`, any indentation).
fn assigns(line: &str, key: &str) -> bool {
    let t = line.trim_start();
    t.strip_prefix(key).is_some_and(|rest| rest.trim_start().starts_with('='))
}

/// `text` with each `(dotted key, TOML value, comment)` set: an existing assignment is
/// replaced in place (keeping its indentation); a missing one is added after its table's
/// header, before the first table for a top-level key, or in a new table at the end.
pub fn set_keys(text: &str, sets: &[(String, String, String)]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    for (dotted, toml, comment) in sets {
        let (table, key) = split_key(dotted);
        let assignment =
            if comment.is_empty() { format!("{key} = {toml}") } else { format!("{key} = {toml}  # {comment}") };
        let mut current = "";
        let mut header_at: Option<usize> = None;
        let mut first_header: Option<usize> = None;
        let mut found = None;
        for (i, line) in lines.iter().enumerate() {
            if let Some(t) = header_table(line) {
                current = t;
                first_header.get_or_insert(i);
                if t == table && header_at.is_none() {
                    header_at = Some(i);
                }
                continue;
            }
            if current == table && assigns(line, key) {
                found = Some(i);
                break;
            }
        }
        match (found, header_at) {
            (Some(i), _) => {
                let indent: String = lines[i].chars().take_while(|c| c.is_whitespace()).collect();
                lines[i] = format!("{indent}{assignment}");
            }
            (None, Some(h)) => lines.insert(h + 1, assignment),
            (None, None) if table.is_empty() => {
                let at = first_header.unwrap_or(lines.len());
                lines.insert(at, assignment);
                lines.insert(at + 1, String::new());
            }
            (None, None) => {
                lines.push(String::new());
                lines.push(format!("[{table}]"));
                lines.push(assignment);
            }
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::super::search::Verdict;
    use super::*;

    fn sets(list: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
        list.iter().map(|(k, v, c)| (k.to_string(), v.to_string(), c.to_string())).collect()
    }

    #[test]
    fn keys_are_replaced_in_place_or_added_to_their_table() {
        let text = "# top\nexecutor = \"auto\"\n\n[mesh]\n# slots\nring_capacity = 1024\n  batch = 64 # x\n\n[[agents]]\nkind = \"echo\"\n";
        let out = set_keys(
            text,
            &sets(&[
                ("mesh.batch", "128", "tuned"),
                ("executor", "\"threads\"", ""),
                ("idle.spin_before_park_us", "50", "new"),
                ("mesh.inject_capacity", "8", ""),
            ]),
        );
        assert!(out.contains("\n  batch = 128  # tuned\n"), "{out}");
        assert!(out.contains("executor = \"threads\"\n"), "{out}");
        assert!(out.contains("[mesh]\ninject_capacity = 8\n# slots\nring_capacity = 1024\n"), "{out}");
        assert!(out.ends_with("[idle]\nspin_before_park_us = 50  # new\n"), "{out}");
        assert!(out.starts_with("# top\n"), "{out}");
        // A top-level key the file lacks goes before the first table.
        let out = set_keys("[mesh]\nbatch = 1\n", &sets(&[("executor", "\"threads\"", "")]));
        assert_eq!(out, "executor = \"threads\"\n\n[mesh]\nbatch = 1\n");
        // A key of the same name in another table is left alone.
        let out = set_keys("[a]\nbatch = 1\n[mesh]\nbatch = 2\n", &sets(&[("mesh.batch", "3", "")]));
        assert_eq!(out, "[a]\nbatch = 1\n[mesh]\nbatch = 3\n");
        assert!(!assigns("batched = 1", "batch"));
        assert_eq!(header_table(" [[agents]] # many"), Some("agents"));
    }

    #[test]
    fn verdict_words() {
        assert_eq!(Verdict::Skipped("x".into()).word(), "skipped: x");
    }
}
