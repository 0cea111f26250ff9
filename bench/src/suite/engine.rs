//! The Nexus-only workloads of the suite: spawn, memory, scaling and the registry.

use super::*;

impl Runner<'_> {
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
        let of = |f: fn(&spawn::SpawnOutcome) -> f64| median(&outcomes.iter().map(f).collect::<Vec<_>>());
        Ok([
            ("ns_per_spawn", of(|o| o.ns_per_spawn)),
            ("ns_per_spawn_cold", of(|o| o.ns_per_spawn_cold)),
            ("ns_per_stop", of(|o| o.ns_per_stop)),
        ]
        .into_iter()
        .map(|(metric, value)| self.record(W, Placement::Local, metric, value, "ns").agents(agents).repeat(k))
        .collect())
    }

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

    /// A Savina workload: per round, a fresh engine runs it local then cross and is shut down;

    pub(super) fn scaling(&mut self) -> Result<Vec<Record>, BenchError> {
        const W: &str = "scaling";
        let k = self.repeat();
        let engine = self.suite.settings.build()?;
        let handle = engine.handle();
        let shards = handle.shards();
        let placement = if shards > 1 { Placement::Cross } else { Placement::Local };
        let mut rates = Vec::new();
        for round in 1..=k {
            self.step(&format!("scaling {shards} shards round {round}/{k}"));
            rates.push(scaling::run(&handle, &self.suite.plan.scaling)?.msgs_per_s);
        }
        setup::shutdown(engine, W)?;
        let rate = median(&rates);
        Ok(vec![
            self.record(W, placement, "msgs_per_s", rate, "msg/s").repeat(k),
            self.record(W, placement, "msgs_per_s_per_shard", rate / shards as f64, "msg/s").repeat(k),
        ])
    }

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
