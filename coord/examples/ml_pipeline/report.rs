//! What a run produced, how it is printed, and the example's own checks.

use super::contractors::Scoreboard;
use super::metrics_store::Telemetry;
use super::orchestrator::Summary;
use super::{Params, MODELS, SHARDS};
use hdrhistogram::Histogram;
use nexus_coord::auction::AuctionStats;
use nexus_coord::reputation::ReputationEntry;
use nexus_engine::agent::AgentId;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// Everything a run produced.
pub(crate) struct Report {
    pub(crate) params: Params,
    pub(crate) summary: Summary,
    pub(crate) executor: String,
    pub(crate) manager: AuctionStats,
    /// Per configuration: its agent and its entry in the manager's reputation table.
    pub(crate) models: Vec<(AgentId, Option<ReputationEntry>)>,
    pub(crate) evaluators: Vec<(AgentId, Arc<Scoreboard>)>,
    pub(crate) telemetry: Arc<Telemetry>,
    pub(crate) accounting: String,
    pub(crate) accounted: bool,
    pub(crate) drained: bool,
}

pub(crate) fn us(ns: u64) -> String {
    format!("{:.1} µs", ns as f64 / 1e3)
}

pub(crate) fn percentiles(h: &Histogram<u64>) -> String {
    if h.is_empty() {
        return "no samples".into();
    }
    let q = |q: f64| us(h.value_at_quantile(q));
    format!("p50 {}  p99 {}  max {}  ({} samples)", q(0.5), q(0.99), us(h.max()), h.len())
}

impl Report {
    pub(crate) fn render(&self) -> String {
        use std::fmt::Write as _;
        let (s, m, t) = (&self.summary, &self.manager, &self.telemetry);
        let mut o = String::new();
        let _ = writeln!(o, "Nexus ML pipeline: {} tasks of 3 auctions (prepare → train → evaluate)", s.tasks);
        let _ = writeln!(
            o,
            "  engine: {SHARDS} shards, executor {}; agents: {} data, {} model, {} eval + {} reviewers, \
             1 auction manager, 1 ballot box per shard, 1 metrics store",
            self.executor,
            SHARDS,
            MODELS.len(),
            self.evaluators.len(),
            self.evaluators.len()
        );
        let _ = writeln!(
            o,
            "tasks:     {} done, {} lost, in {:.1} ms",
            s.done,
            s.lost.len(),
            s.tasks_wall.as_secs_f64() * 1e3
        );
        for lost in s.lost.iter().take(5) {
            let _ = writeln!(o, "  lost: {lost}");
        }
        let _ = writeln!(
            o,
            "auctions:  {} ({} rounds, {} re-auctions); manager: {} calls for bids, {} bids, {} awards, \
             {} completions, {} failed, {} deadline misses, {} gave up",
            s.auctions,
            s.rounds,
            s.reauctions,
            m.calls,
            m.bids,
            m.awards,
            m.completions,
            m.failures,
            m.deadline_misses,
            m.gave_up
        );
        for (reason, n) in &s.failures_by_reason {
            let _ = writeln!(o, "  failure:  {n:>3} × {reason}");
        }
        let _ = writeln!(
            o,
            "coordination overhead = an auction's wall time from the orchestrator's request to its outcome \
             (global discovery over both shards, calls for bids, bids, award, the winner's report, and any \
             re-auction, including the wait for a missed deadline), less the work inside perform \
             ({} in all) and the evaluators' waits on the metrics store ({} in all):",
            us(s.work_ns),
            us(s.service_ns)
        );
        let _ = writeln!(o, "  per task (3 auctions):  {}", percentiles(&s.task_overhead));
        let _ = writeln!(o, "    without re-auction:   {}", percentiles(&s.clean_task_overhead));
        let _ = writeln!(o, "  per auction:            {}", percentiles(&s.auction_overhead));
        let _ = writeln!(o, "  global discovery alone: {}", percentiles(&s.discovery));
        if !s.discovery.is_empty() && !s.auction_overhead.is_empty() {
            let (d, a) = (s.discovery.value_at_quantile(0.5) as f64, s.auction_overhead.value_at_quantile(0.5) as f64);
            let _ = writeln!(
                o,
                "vs the old system (design notes: 120 ms discovery, 165 ms per coordination), medians measured \
                 here: discovery {} ({:.0}× less), one coordination = an auction {} ({:.0}× less)",
                us(d as u64),
                120e6 / d,
                us(a as u64),
                165e6 / a
            );
        }
        let _ = writeln!(o, "reputation (the manager's table; value = 0.75·success + 0.25·timeliness):");
        let _ = writeln!(o, "  {:<16} {:<9} trained  success  timely  value  judged", "config", "agent");
        for (i, (id, entry)) in self.models.iter().enumerate() {
            let e = entry.unwrap_or_default();
            let name = format!("{}{}", MODELS[i].name, if MODELS[i].flaky { " (flaky)" } else { "" });
            let _ = writeln!(
                o,
                "  {name:<16} {:<9} {:>4}    {:.2}     {:.2}    {:.2}   {}",
                id.to_string(),
                s.trained[i],
                e.success,
                e.timeliness,
                e.value(),
                e.samples
            );
        }
        let trail: Vec<String> = s.flaky_reputation.iter().map(|(task, v)| format!("{v:.2} (task {task})")).collect();
        let _ = writeln!(o, "  the flaky agent's reputation over the run: {}", trail.join(" → "));
        match &s.ballot {
            Ok(b) => {
                let votes: Vec<String> =
                    b.info.options.iter().zip(&b.votes).map(|(name, n)| format!("{name}: {n}")).collect();
                let p = b.participation;
                let _ = writeln!(
                    o,
                    "vote \"{}\" (majority, electorate: discovery of \"reviewer\"): winner {}; votes {}; \
                     {} of {} eligible took part ({} abstained, {} unreachable), closed {:?} after {}",
                    b.info.topic,
                    b.winner_name().unwrap_or("none"),
                    votes.join(", "),
                    p.participants,
                    p.eligible,
                    p.abstained,
                    p.undelivered,
                    b.closed_by,
                    us(b.elapsed_ns)
                );
            }
            Err(e) => {
                let _ = writeln!(o, "vote: {e}");
            }
        }
        for (id, board) in &self.evaluators {
            let seen: Vec<String> = (0..MODELS.len())
                .filter_map(|c| board.mean(c).map(|mean| format!("{} {mean:.3}×{}", MODELS[c].name, board.count(c))))
                .collect();
            let best = board.best().map_or("none", |c| MODELS[c].name);
            let _ = writeln!(o, "  evaluator {id}: best {best}; mean score × evaluations: {}", seen.join(", "));
        }
        let _ = writeln!(
            o,
            "metrics store (down for tasks {}..{}): {} written, {} errors, {} timeouts, {} late answers; \
             fallbacks: {} failed fast (breaker open), {} after a failed write",
            self.params.outage.start,
            self.params.outage.end,
            t.store_written.load(Relaxed),
            t.store_errors.load(Relaxed),
            t.timeouts.load(Relaxed),
            t.late_answers.load(Relaxed),
            t.fast_fallbacks.load(Relaxed),
            t.failed_fallbacks.load(Relaxed)
        );
        let stats = *t.breaker_stats.lock().expect("telemetry lock");
        let transitions = t.transitions.lock().expect("telemetry lock");
        for (shard, b) in stats.iter().enumerate() {
            let _ = writeln!(
                o,
                "  breaker, shard {shard}: {} calls ({} probes), {} ok, {} failed, {} rejected, opened {}×, closed {}×",
                b.calls, b.probes, b.successes, b.failures, b.rejected, b.times_opened, b.times_closed
            );
            let steps: Vec<String> = transitions
                .iter()
                .filter(|tr| tr.shard == shard)
                .map(|tr| {
                    let at = tr.at_ns.saturating_sub(s.start_ns) as f64 / 1e6;
                    format!("{}→{} @task {} ({at:.1} ms)", tr.from, tr.to, tr.task)
                })
                .collect();
            let _ = writeln!(o, "    {}", if steps.is_empty() { "no transitions".into() } else { steps.join(", ") });
        }
        for p in &s.problems {
            let _ = writeln!(o, "problem: {p}");
        }
        let _ = writeln!(
            o,
            "engine at shutdown: {}; accounted: {}; drained: {}",
            self.accounting,
            if self.accounted { "yes" } else { "NO" },
            if self.drained { "yes" } else { "NO" }
        );
        o
    }

    /// The example's own checks: no task lost, a decision, balanced accounting.
    pub(crate) fn check(&self) -> Result<(), String> {
        let s = &self.summary;
        let mut errors = Vec::new();
        if s.done != s.tasks || !s.lost.is_empty() {
            let first = s.lost.first().map_or(String::new(), |l| format!(" (first: {l})"));
            errors.push(format!("{} of {} tasks were lost{first}", s.tasks - s.done, s.tasks));
        }
        match &s.ballot {
            Ok(b) if b.winner().is_none() => errors.push(format!("the vote decided nothing: {:?}", b.outcome)),
            Ok(_) => {}
            Err(e) => errors.push(e.clone()),
        }
        if !self.accounted {
            errors.push(format!("the engine's accounting does not balance: {}", self.accounting));
        }
        if !self.drained {
            errors.push("the engine did not drain at shutdown".into());
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }
}
