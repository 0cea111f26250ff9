//! The pingpong workload of the suite: Nexus, the probe, the wake from park and the peers.

#[cfg(feature = "peers")]
use super::versus::ratio;
use super::*;

impl Runner<'_> {
    pub(super) fn pingpong(&mut self) -> Result<Vec<Record>, BenchError> {
        const W: &str = "pingpong";
        let k = self.repeat();
        let params = self.suite.plan.pingpong.clone();
        let mut probes = Vec::new();
        let mut runs: Vec<(Placement, pingpong::PingPongOutcome)> = Vec::new();
        let mut ratios = Vec::new();
        let mut versus = Versus::default();
        for round in 1..=k {
            self.step(&format!("pingpong probe round {round}/{k}"));
            let p = probe::run(&self.suite.plan.probe, &mut self.suite.settings)?;
            let engine = self.suite.settings.build()?;
            let handle = engine.handle();
            let mut cross_p50 = 0.0;
            let mut nexus_p50 = [(Placement::Cross, 0.0), (Placement::Local, 0.0)];
            for (placement, p50) in &mut nexus_p50 {
                let placement = *placement;
                self.step(&format!("pingpong {} round {round}/{k}", placement.as_str()));
                let out = pingpong::run(&handle, &PingPongParams { placement, ..params.clone() })?;
                if placement == Placement::Cross {
                    cross_p50 = out.rtt.p50_ns;
                }
                *p50 = out.rtt.p50_ns;
                if round == k {
                    self.curve(W, SYSTEM, placement, out.histogram.clone());
                }
                runs.push((placement, out));
            }
            setup::shutdown(engine, W)?;
            // The peers run while no engine runs, right after Nexus in the same round.
            self.pingpong_peers(round, &params, &nexus_p50, &mut versus)?;
            if p.rtt.p50_ns > 0.0 {
                ratios.push(cross_p50 / p.rtt.p50_ns);
            }
            probes.push(p);
        }
        self.step("pingpong wake from park");
        let woke = wake::run(&self.suite.settings, &self.suite.plan.wake)?;
        self.step("pingpong wake probe");
        let woke_bare = probe::wake(&self.suite.plan.wake_probe, &mut self.suite.settings)?;

        let mut records = Vec::new();
        for placement in Placement::BOTH {
            let of = |f: fn(&pingpong::PingPongOutcome) -> f64| {
                median(&runs.iter().filter(|(p, _)| *p == placement).map(|(_, o)| f(o)).collect::<Vec<_>>())
            };
            for (metric, value) in [
                ("rtt_p50_ns", of(|o| o.rtt.p50_ns)),
                ("rtt_p99_ns", of(|o| o.rtt.p99_ns)),
                ("rtt_p999_ns", of(|o| o.rtt.p999_ns)),
            ] {
                records.push(self.record(W, placement, metric, value, "ns").repeat(k));
            }
        }
        let of = |f: fn(&probe::ProbeOutcome) -> f64| median(&probes.iter().map(f).collect::<Vec<_>>());
        for (metric, value) in [
            ("probe_rtt_p50_ns", of(|p| p.rtt.p50_ns)),
            ("probe_rtt_p99_ns", of(|p| p.rtt.p99_ns)),
            ("probe_rtt_p999_ns", of(|p| p.rtt.p999_ns)),
            ("probe_rtt_batch_ns", of(|p| p.batch_rtt_ns)),
        ] {
            records.push(Record::new(W, LIMIT, "cross", metric, value, "ns").repeat(k));
        }
        records.push(self.record(W, Placement::Cross, "rtt_p50_over_probe", median(&ratios), "ratio").repeat(k));
        // Each timed round trip includes one clock read; this is what one costs here.
        records.push(Record::new(W, "clock", "local", "clock_read_ns", pingpong::timer_overhead_ns(), "ns"));
        records.push(self.record(W, Placement::Cross, "wake_from_park_p50_ns", woke.latency.p50_ns, "ns"));
        records.push(self.record(W, Placement::Cross, "wake_from_park_p99_ns", woke.latency.p99_ns, "ns"));
        records.push(Record::new(W, LIMIT, "cross", "probe_wake_p50_ns", woke_bare.p50_ns, "ns"));
        records.push(Record::new(W, LIMIT, "cross", "probe_wake_p99_ns", woke_bare.p99_ns, "ns"));
        records.extend(versus.records(W));
        Ok(records)
    }

    /// Every peer's pingpong, both placements, for one round.
    #[cfg(feature = "peers")]
    pub(super) fn pingpong_peers(
        &mut self,
        round: u32,
        params: &PingPongParams,
        nexus_p50: &[(Placement, f64)],
        versus: &mut Versus,
    ) -> Result<(), BenchError> {
        use crate::peers::{self, Peer, PeerResult};
        const W: &str = "pingpong";
        if !self.suite.peers {
            return Ok(());
        }
        let (k, cpus) = (self.repeat(), self.peer_cpus()?);
        for peer in Peer::ALL {
            for &(placement, nexus) in nexus_p50 {
                self.step(&format!("pingpong {} {} round {round}/{k}", peer.name(), placement.as_str()));
                match peers::pingpong(peer, &PingPongParams { placement, ..params.clone() }, cpus)? {
                    PeerResult::Ran(out) => {
                        let key = (W, peer.name(), placement);
                        versus.note(key, "rtt_p50_ns", "ns", out.rtt.p50_ns);
                        versus.note(key, "rtt_p99_ns", "ns", out.rtt.p99_ns);
                        versus.note(key, "rtt_p999_ns", "ns", out.rtt.p999_ns);
                        if placement == Placement::Cross {
                            versus.note(key, "crossed_share", "ratio", out.crossed);
                        }
                        versus.advantage(key, ratio(out.rtt.p50_ns, nexus));
                        if round == k {
                            self.curve(W, peer.name(), placement, out.histogram);
                        }
                    }
                    PeerResult::Skipped(why) => self.skip(W, peer.name(), placement, why),
                }
            }
        }
        Ok(())
    }

    /// Without the `peers` feature there is nothing to run (`validate` refuses `--peers`).
    #[cfg(not(feature = "peers"))]
    pub(super) fn pingpong_peers(
        &mut self,
        _: u32,
        _: &PingPongParams,
        _: &[(Placement, f64)],
        _: &mut Versus,
    ) -> Result<(), BenchError> {
        Ok(())
    }
}
