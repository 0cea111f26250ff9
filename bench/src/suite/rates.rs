//! The rate workloads of the suite (`counting`, `thread-ring`) and their peers.

#[cfg(feature = "peers")]
use super::versus::{ratio, PeerKey};
use super::*;

impl Runner<'_> {
    /// Notes a peer's rate run: its rate, its crossed share (cross only) and Nexus's advantage
    /// this round; or the reason it was skipped.
    #[cfg(feature = "peers")]
    pub(super) fn note_rate(
        &mut self,
        versus: &mut Versus,
        key: PeerKey,
        (metric, unit): (&'static str, &'static str),
        result: crate::peers::PeerResult<crate::peers::PeerRate>,
        nexus_rate: f64,
    ) {
        match result {
            crate::peers::PeerResult::Ran(out) => {
                versus.note(key, metric, unit, out.per_s);
                if key.2 == Placement::Cross {
                    versus.note(key, "crossed_share", "ratio", out.crossed);
                }
                versus.advantage(key, ratio(nexus_rate, out.per_s));
            }
            crate::peers::PeerResult::Skipped(why) => self.skip(key.0, key.1, key.2, why),
        }
    }

    /// Every peer's rate workload (`counting` or `thread-ring`), both placements, for one round.
    #[cfg(feature = "peers")]
    pub(super) fn rate_peers(
        &mut self,
        workload: &'static str,
        round: u32,
        nexus: &[(Placement, f64)],
        versus: &mut Versus,
    ) -> Result<(), BenchError> {
        use crate::peers::{self, Peer};
        if !self.suite.peers {
            return Ok(());
        }
        let (k, cpus) = (self.repeat(), self.peer_cpus()?);
        let (metric, unit) = if workload == "thread-ring" { ("hops_per_s", "hop/s") } else { ("msgs_per_s", "msg/s") };
        for peer in Peer::ALL {
            for &(placement, nexus_rate) in nexus {
                self.step(&format!("{workload} {} {} round {round}/{k}", peer.name(), placement.as_str()));
                let (ring, counting) = (self.suite.plan.ring.clone(), self.suite.plan.counting.clone());
                let result = self.sizer.sized((workload, peer.name(), placement), |factor| {
                    let result = if workload == "thread-ring" {
                        let hops = ring.hops.saturating_mul(factor);
                        peers::thread_ring(peer, &ThreadRingParams { placement, hops, ..ring.clone() }, cpus)?
                    } else {
                        let messages = counting.messages.saturating_mul(factor);
                        peers::counting(peer, &CountingParams { placement, messages, ..counting.clone() }, cpus)?
                    };
                    let span = result.span();
                    Ok((result, span))
                })?;
                self.note_rate(versus, (workload, peer.name(), placement), (metric, unit), result, nexus_rate);
            }
        }
        Ok(())
    }

    /// Without the `peers` feature there is nothing to run (`validate` refuses `--peers`).
    #[cfg(not(feature = "peers"))]
    pub(super) fn rate_peers(
        &mut self,
        _: &'static str,
        _: u32,
        _: &[(Placement, f64)],
        _: &mut Versus,
    ) -> Result<(), BenchError> {
        Ok(())
    }

    pub(super) fn counting(&mut self) -> Result<Vec<Record>, BenchError> {
        self.rate_workload("counting")
    }

    pub(super) fn thread_ring(&mut self) -> Result<Vec<Record>, BenchError> {
        self.rate_workload("thread-ring")
    }

    /// `counting` or `thread-ring`: per round, a fresh engine runs both placements and is shut
    /// down, then the peers run (with `--peers`), so no two systems ever spin at once. Each run
    /// lasts at least `min_round` (see [`sizing`](super::sizing)).
    pub(super) fn rate_workload(&mut self, workload: &'static str) -> Result<Vec<Record>, BenchError> {
        let k = self.repeat();
        let ring = workload == "thread-ring";
        let mut rates: Vec<(Placement, u32, f64)> = Vec::new();
        let mut versus = Versus::default();
        for round in 1..=k {
            let engine = self.suite.settings.build()?;
            let handle = engine.handle();
            let mut nexus = [(Placement::Local, 0.0), (Placement::Cross, 0.0)];
            for (placement, rate) in &mut nexus {
                let placement = *placement;
                self.step(&format!("{workload} {} round {round}/{k}", placement.as_str()));
                let (agents, value) = self.nexus_rate(&handle, workload, placement)?;
                *rate = value;
                rates.push((placement, agents, value));
            }
            setup::shutdown(engine, workload)?;
            self.rate_peers(workload, round, &nexus, &mut versus)?;
        }
        let (metric, unit) = if ring { ("hops_per_s", "hop/s") } else { ("msgs_per_s", "msg/s") };
        let mut records: Vec<Record> = Placement::BOTH
            .iter()
            .map(|&p| {
                let values: Vec<f64> = rates.iter().filter(|(q, _, _)| *q == p).map(|(_, _, v)| *v).collect();
                let record = self.record(workload, p, metric, 0.0, unit).over_rounds(&values);
                match rates.iter().find(|(q, _, _)| *q == p) {
                    Some(&(_, agents, _)) if ring => record.agents(u64::from(agents)),
                    _ => record,
                }
            })
            .collect();
        records.extend(versus.records(workload));
        if ring {
            records.extend(self.ring_sweep()?);
        }
        Ok(records)
    }

    /// One Nexus run of `counting` or `thread-ring` at `placement`, sized to last at least
    /// `min_round`: (ring agents or 0, the rate).
    fn nexus_rate(
        &mut self,
        handle: &nexus_engine::engine::EngineHandle,
        workload: &'static str,
        placement: Placement,
    ) -> Result<(u32, f64), BenchError> {
        let (ring, counting) = (self.suite.plan.ring.clone(), self.suite.plan.counting.clone());
        self.sizer.sized((workload, SYSTEM, placement), |factor| {
            if workload == "thread-ring" {
                let params = ThreadRingParams { placement, hops: ring.hops.saturating_mul(factor), ..ring.clone() };
                let out = thread_ring::run(handle, &params)?;
                Ok(((out.agents, out.hops_per_s), Some(out.elapsed)))
            } else {
                let messages = counting.messages.saturating_mul(factor);
                let out = counting::run(handle, &CountingParams { placement, messages, ..counting.clone() })?;
                Ok(((0, out.msgs_per_s), Some(out.elapsed)))
            }
        })
    }

    /// The thread-ring at each of `plan.ring_sizes`, both placements, once each on one engine:
    /// `hops_per_s_by_size` records with the ring size in `agents`.
    pub(super) fn ring_sweep(&mut self) -> Result<Vec<Record>, BenchError> {
        const W: &str = "thread-ring";
        let sizes = self.suite.plan.ring_sizes.clone();
        if sizes.is_empty() {
            return Ok(Vec::new());
        }
        let engine = self.suite.settings.build()?;
        let handle = engine.handle();
        let mut records = Vec::new();
        for agents in sizes {
            for placement in Placement::BOTH {
                self.step(&format!("thread-ring {agents} agents {}", placement.as_str()));
                let params = ThreadRingParams { agents, placement, ..self.suite.plan.ring.clone() };
                let out = thread_ring::run(&handle, &params)?;
                records.push(
                    self.record(W, placement, "hops_per_s_by_size", out.hops_per_s, "hop/s")
                        .agents(u64::from(out.agents)),
                );
            }
        }
        setup::shutdown(engine, W)?;
        Ok(records)
    }
}
