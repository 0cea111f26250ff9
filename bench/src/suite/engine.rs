//! The Nexus-only workloads of the suite: spawn, memory, scaling and the registry.
//!
//! `scaling`'s rounds are sized to last at least `min_round` like the peer workloads'. `spawn`'s
//! are not: a cycle's size (100,000 agents on a fresh engine) is what its cold figure measures,
//! so its rounds keep their size and report their spread.

use super::*;

impl Runner<'_> {
    /// `spawn`: `repeat` cold-then-warm cycles, each on a fresh engine.
    pub(super) fn spawn(&mut self) -> Result<Vec<Record>, BenchError> {
        const W: &str = "spawn";
        let k = self.repeat();
        let mut outcomes = Vec::new();
        for round in 1..=k {
            self.step(&format!("spawn cycles round {round}/{k}"));
            let engine = self.suite.settings.build()?;
            outcomes.push(spawn::run(&engine.handle(), &self.suite.plan.spawn)?);
            setup::shutdown(engine, W)?;
        }
        let agents = self.suite.plan.spawn.agents;
        let of = |f: fn(&spawn::SpawnOutcome) -> f64| outcomes.iter().map(f).collect::<Vec<_>>();
        Ok([
            ("ns_per_spawn", of(|o| o.ns_per_spawn)),
            ("ns_per_spawn_cold", of(|o| o.ns_per_spawn_cold)),
            ("ns_per_stop", of(|o| o.ns_per_stop)),
        ]
        .into_iter()
        .map(|(metric, values)| self.record(W, Placement::Local, metric, 0.0, "ns").agents(agents).over_rounds(&values))
        .collect())
    }

    /// `spawn`'s memory per idle agent at each of the plan's counts.
    pub(super) fn memory(&mut self) -> Result<Vec<Record>, BenchError> {
        self.step("spawn memory per idle agent");
        let points = spawn::memory(&self.suite.settings, &self.suite.plan.memory)?;
        Ok(points
            .iter()
            .map(|p| {
                self.record("spawn", Placement::Local, "bytes_per_agent", p.bytes_per_agent, "bytes").agents(p.agents)
            })
            .collect())
    }

    /// `scaling`: `repeat` rounds of counting on every shard at once, on one engine.
    pub(super) fn scaling(&mut self) -> Result<Vec<Record>, BenchError> {
        const W: &str = "scaling";
        let k = self.repeat();
        let engine = self.suite.settings.build()?;
        let handle = engine.handle();
        let shards = handle.shards();
        let placement = if shards > 1 { Placement::Cross } else { Placement::Local };
        let base = self.suite.plan.scaling.clone();
        let mut rates = Vec::new();
        for round in 1..=k {
            self.step(&format!("scaling {shards} shards round {round}/{k}"));
            let rate = self.sizer.sized((W, SYSTEM, placement), |factor| {
                let messages = base.messages.saturating_mul(factor);
                let out = scaling::run(&handle, &ScalingParams { messages, ..base.clone() })?;
                Ok((out.msgs_per_s, Some(out.elapsed)))
            })?;
            rates.push(rate);
        }
        setup::shutdown(engine, W)?;
        let per_shard: Vec<f64> = rates.iter().map(|r| r / shards as f64).collect();
        Ok(vec![
            self.record(W, placement, "msgs_per_s", 0.0, "msg/s").over_rounds(&rates),
            self.record(W, placement, "msgs_per_s_per_shard", 0.0, "msg/s").over_rounds(&per_shard),
        ])
    }

    /// `registry`: lookups at each of the plan's sizes, one registrar grown on one engine.
    pub(super) fn registry(&mut self) -> Result<Vec<Record>, BenchError> {
        const W: &str = "registry";
        let params: RegistryParams = self.suite.plan.registry.clone();
        let engine = self.suite.settings.build()?;
        let handle = engine.handle();
        let session = registry::RegistrySession::start(&handle, params.names_per_holder)?;
        let mut records = Vec::new();
        for (i, &size) in params.sizes.iter().enumerate() {
            self.step(&format!("registry {size} names"));
            let names = session.grow(&handle, size)?;
            let elapsed = session.lookups(&handle, params.lookups, params.seed.wrapping_add(i as u64))?;
            let ns = crate::stats::ns_per(elapsed, params.lookups);
            records.push(self.record(W, Placement::Local, "ns_per_op", ns, "ns").names(names));
        }
        setup::shutdown(engine, W)?;
        Ok(records)
    }
}
