//! The Savina workloads of the suite and their peers.

use super::*;

impl Runner<'_> {
    /// each figure is the median over the rounds.
    pub(super) fn savina(&mut self, workload: Workload) -> Result<Vec<Record>, BenchError> {
        let name = workload.name();
        let k = self.repeat();
        let plan = self.suite.plan.clone();
        // (placement, metric, unit, value) per run.
        let mut figures: Vec<(Placement, &'static str, &'static str, f64)> = Vec::new();
        let mut versus = Versus::default();
        for round in 1..=k {
            let mut headline = [(Placement::Local, 0.0), (Placement::Cross, 0.0)];
            let engine = self.suite.settings.build()?;
            let handle = engine.handle();
            for placement in Placement::BOTH {
                self.step(&format!("{name} {} round {round}/{k}", placement.as_str()));
                let got: Vec<(&'static str, &'static str, f64)> = match workload {
                    Workload::Chameneos => {
                        let out = chameneos::run(&handle, &ChameneosParams { placement, ..plan.chameneos.clone() })?;
                        vec![
                            ("msgs_per_s", "msg/s", out.msgs_per_s),
                            ("meetings_per_s", "meeting/s", out.meetings_per_s),
                        ]
                    }
                    Workload::Big => {
                        let out = big::run(&handle, &BigParams { placement, ..plan.big.clone() })?;
                        vec![("msgs_per_s", "msg/s", out.msgs_per_s)]
                    }
                    Workload::FjThroughput => {
                        let params = ThroughputParams { placement, ..plan.fj_throughput.clone() };
                        vec![("msgs_per_s", "msg/s", fork_join::run_throughput(&handle, &params)?.msgs_per_s)]
                    }
                    Workload::FjCreate => {
                        let out =
                            fork_join::run_create(&handle, &CreateParams { placement, ..plan.fj_create.clone() })?;
                        vec![("ns_per_op", "ns", out.ns_per_op), ("msgs_per_s", "msg/s", out.msgs_per_s)]
                    }
                    Workload::Fib => {
                        let out = fib::run(&handle, &FibParams { placement, ..plan.fib.clone() })?;
                        vec![
                            ("agents_per_s", "agent/s", out.agents_per_s),
                            ("elapsed_ms", "ms", out.elapsed.as_secs_f64() * 1e3),
                        ]
                    }
                    Workload::FanIn => {
                        let out = fan_in::run(&handle, &FanInParams { placement, ..plan.fan_in.clone() })?;
                        vec![("msgs_per_s", "msg/s", out.msgs_per_s)]
                    }
                    other => return Err(BenchError::params(other.name(), "not a Savina workload")),
                };
                // The rate the peers are compared on: the first `/s` figure.
                if let Some(&(_, _, value)) = got.iter().find(|(_, unit, _)| unit.ends_with("/s")) {
                    if let Some(h) = headline.iter_mut().find(|(p, _)| *p == placement) {
                        h.1 = value;
                    }
                }
                figures.extend(got.into_iter().map(|(metric, unit, value)| (placement, metric, unit, value)));
            }
            setup::shutdown(engine, name)?;
            self.savina_peers(workload, round, &headline, &mut versus)?;
        }
        let mut records = Vec::new();
        for placement in Placement::BOTH {
            let mut metrics: Vec<(&'static str, &'static str)> = Vec::new();
            for &(p, metric, unit, _) in &figures {
                if p == placement && !metrics.contains(&(metric, unit)) {
                    metrics.push((metric, unit));
                }
            }
            for (metric, unit) in metrics {
                let values: Vec<f64> =
                    figures.iter().filter(|f| f.0 == placement && f.1 == metric).map(|f| f.3).collect();
                records.push(self.record(name, placement, metric, median(&values), unit).repeat(k));
            }
        }
        records.extend(versus.records(name));
        Ok(records)
    }

    /// Every peer's version of a Savina workload, both placements, for one round.
    #[cfg(feature = "peers")]
    pub(super) fn savina_peers(
        &mut self,
        workload: Workload,
        round: u32,
        nexus: &[(Placement, f64)],
        versus: &mut Versus,
    ) -> Result<(), BenchError> {
        use crate::peers::{self, Peer, Savina};
        if !self.suite.peers {
            return Ok(());
        }
        let name = workload.name();
        let (k, cpus, plan) = (self.repeat(), self.peer_cpus()?, self.suite.plan.clone());
        // The Nexus headline rate's metric (see `savina`).
        let (metric, unit) =
            if workload == Workload::Fib { ("agents_per_s", "agent/s") } else { ("msgs_per_s", "msg/s") };
        for peer in Peer::ALL {
            for &(placement, nexus_rate) in nexus {
                self.step(&format!("{name} {} {} round {round}/{k}", peer.name(), placement.as_str()));
                let (cham, big, fjt, fjc, fib, fan);
                let which = match workload {
                    Workload::Chameneos => {
                        cham = ChameneosParams { placement, ..plan.chameneos.clone() };
                        Savina::Chameneos(&cham)
                    }
                    Workload::Big => {
                        big = BigParams { placement, ..plan.big.clone() };
                        Savina::Big(&big)
                    }
                    Workload::FjThroughput => {
                        fjt = ThroughputParams { placement, ..plan.fj_throughput.clone() };
                        Savina::FjThroughput(&fjt)
                    }
                    Workload::FjCreate => {
                        fjc = CreateParams { placement, ..plan.fj_create.clone() };
                        Savina::FjCreate(&fjc)
                    }
                    Workload::Fib => {
                        fib = FibParams { placement, ..plan.fib.clone() };
                        Savina::Fib(&fib)
                    }
                    Workload::FanIn => {
                        fan = FanInParams { placement, ..plan.fan_in.clone() };
                        Savina::FanIn(&fan)
                    }
                    other => return Err(BenchError::params(other.name(), "not a Savina workload")),
                };
                let result = peers::savina(peer, which, cpus)?;
                self.note_rate(versus, (name, peer.name(), placement), (metric, unit), result, nexus_rate);
            }
        }
        Ok(())
    }

    /// Without the `peers` feature there is nothing to run (`validate` refuses `--peers`).
    #[cfg(not(feature = "peers"))]
    pub(super) fn savina_peers(
        &mut self,
        _: Workload,
        _: u32,
        _: &[(Placement, f64)],
        _: &mut Versus,
    ) -> Result<(), BenchError> {
        Ok(())
    }
}
