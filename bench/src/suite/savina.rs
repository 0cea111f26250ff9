//! The Savina workloads of the suite (chameneos, big, fork-join, fib, fan-in) and their peers,
//! each run sized to last at least `min_round` (see [`sizing`](super::sizing)): the workload's
//! count times the factor (meetings, pings, messages, spawns), or for fib the whole
//! computation repeated `factor` times.

use super::*;

/// One figure of a run: (metric, unit, value).
type Figure = (&'static str, &'static str, f64);

/// The plan's parameters of a Savina workload at `placement`, sized by `factor`.
#[derive(Clone, Debug)]
enum Sized {
    Chameneos(ChameneosParams),
    Big(BigParams),
    FjThroughput(ThroughputParams),
    FjCreate(CreateParams),
    /// fib(n), and how many times to compute it.
    Fib(FibParams, u64),
    FanIn(FanInParams),
}

impl Sized {
    fn of(plan: &Plan, workload: Workload, placement: Placement, factor: u64) -> Result<Self, BenchError> {
        let times = |n: u64| n.saturating_mul(factor);
        Ok(match workload {
            Workload::Chameneos => Sized::Chameneos(ChameneosParams {
                placement,
                meetings: times(plan.chameneos.meetings),
                ..plan.chameneos
            }),
            Workload::Big => Sized::Big(BigParams { placement, pings: times(plan.big.pings), ..plan.big }),
            Workload::FjThroughput => Sized::FjThroughput(ThroughputParams {
                placement,
                messages: times(plan.fj_throughput.messages),
                ..plan.fj_throughput
            }),
            Workload::FjCreate => {
                Sized::FjCreate(CreateParams { placement, agents: times(plan.fj_create.agents), ..plan.fj_create })
            }
            Workload::Fib => Sized::Fib(FibParams { placement, ..plan.fib }, factor.max(1)),
            Workload::FanIn => {
                Sized::FanIn(FanInParams { placement, messages: times(plan.fan_in.messages), ..plan.fan_in })
            }
            other => return Err(BenchError::params(other.name(), "not a Savina workload")),
        })
    }

    /// Runs it on Nexus: its figures (the first `/s` one is the headline rate) and the measured
    /// span.
    fn run_nexus(&self, handle: &nexus_engine::engine::EngineHandle) -> Result<(Vec<Figure>, Duration), BenchError> {
        Ok(match self {
            Sized::Chameneos(p) => {
                let out = chameneos::run(handle, p)?;
                let figures =
                    vec![("msgs_per_s", "msg/s", out.msgs_per_s), ("meetings_per_s", "meeting/s", out.meetings_per_s)];
                (figures, out.elapsed)
            }
            Sized::Big(p) => {
                let out = big::run(handle, p)?;
                (vec![("msgs_per_s", "msg/s", out.msgs_per_s)], out.elapsed)
            }
            Sized::FjThroughput(p) => {
                let out = fork_join::run_throughput(handle, p)?;
                (vec![("msgs_per_s", "msg/s", out.msgs_per_s)], out.elapsed)
            }
            Sized::FjCreate(p) => {
                let out = fork_join::run_create(handle, p)?;
                (vec![("ns_per_op", "ns", out.ns_per_op), ("msgs_per_s", "msg/s", out.msgs_per_s)], out.elapsed)
            }
            Sized::Fib(p, times) => {
                let (mut agents, mut elapsed) = (0u64, Duration::ZERO);
                for _ in 0..*times {
                    let out = fib::run(handle, p)?;
                    agents += out.agents;
                    elapsed += out.elapsed;
                }
                let per_run_ms = elapsed.as_secs_f64() * 1e3 / *times as f64;
                let rate = crate::stats::per_second(agents, elapsed);
                (vec![("agents_per_s", "agent/s", rate), ("elapsed_ms", "ms", per_run_ms)], elapsed)
            }
            Sized::FanIn(p) => {
                let out = fan_in::run(handle, p)?;
                (vec![("msgs_per_s", "msg/s", out.msgs_per_s)], out.elapsed)
            }
        })
    }

    /// Runs `peer`'s version (fib: `times` computations, their rates combined).
    #[cfg(feature = "peers")]
    fn run_peer(
        &self,
        peer: crate::peers::Peer,
        cpus: crate::peers::PeerCpus,
    ) -> Result<crate::peers::PeerResult<crate::peers::PeerRate>, BenchError> {
        use crate::peers::{savina, PeerRate, PeerResult, Savina};
        Ok(match self {
            Sized::Chameneos(p) => savina(peer, Savina::Chameneos(p), cpus)?,
            Sized::Big(p) => savina(peer, Savina::Big(p), cpus)?,
            Sized::FjThroughput(p) => savina(peer, Savina::FjThroughput(p), cpus)?,
            Sized::FjCreate(p) => savina(peer, Savina::FjCreate(p), cpus)?,
            Sized::FanIn(p) => savina(peer, Savina::FanIn(p), cpus)?,
            Sized::Fib(p, times) => {
                let mut runs = Vec::new();
                for _ in 0..*times {
                    match savina(peer, Savina::Fib(p), cpus)? {
                        PeerResult::Ran(rate) => runs.push(rate),
                        skipped @ PeerResult::Skipped(_) => return Ok(skipped),
                    }
                }
                PeerRate::combined(&runs).map_or(PeerResult::Skipped("no fib run"), PeerResult::Ran)
            }
        })
    }
}

impl Runner<'_> {
    /// A Savina workload: per round, a fresh engine runs it local then cross and is shut down,
    /// then the peers run; each figure is the median over the rounds, with its spread.
    pub(super) fn savina(&mut self, workload: Workload) -> Result<Vec<Record>, BenchError> {
        let name = workload.name();
        let k = self.repeat();
        // (placement, metric, unit, value) per run.
        let mut figures: Vec<(Placement, &'static str, &'static str, f64)> = Vec::new();
        let mut versus = Versus::default();
        for round in 1..=k {
            let mut headline = [(Placement::Local, 0.0), (Placement::Cross, 0.0)];
            let engine = self.suite.settings.build()?;
            let handle = engine.handle();
            for (placement, rate) in &mut headline {
                let placement = *placement;
                self.step(&format!("{name} {} round {round}/{k}", placement.as_str()));
                let plan = self.suite.plan.clone();
                let got = self.sizer.sized((name, SYSTEM, placement), |factor| {
                    let (got, span) = Sized::of(&plan, workload, placement, factor)?.run_nexus(&handle)?;
                    Ok((got, Some(span)))
                })?;
                // The rate the peers are compared on: the first `/s` figure.
                *rate = got.iter().find(|f| f.1.ends_with("/s")).map_or(0.0, |f| f.2);
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
                records.push(self.record(name, placement, metric, 0.0, unit).over_rounds(&values));
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
        use crate::peers::Peer;
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
                let result = self.sizer.sized((name, peer.name(), placement), |factor| {
                    let result = Sized::of(&plan, workload, placement, factor)?.run_peer(peer, cpus)?;
                    let span = result.span();
                    Ok((result, span))
                })?;
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
