//! The pingpong workload of the suite: Nexus, the probe, the wake from park and the peers.

#[cfg(feature = "peers")]
use super::versus::ratio;
use super::*;

impl Runner<'_> {
    /// `pingpong`: `repeat` rounds of the probe, then Nexus cross and local on a fresh engine,
    /// then the peers; then the wake from park and its bare-thread probe, once each. Every
    /// repeated run lasts at least `min_round` (the round trips are scaled).
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
            let p = self.probe_round()?;
            let engine = self.suite.settings.build()?;
            let handle = engine.handle();
            let mut nexus_p50 = [(Placement::Cross, 0.0), (Placement::Local, 0.0)];
            for (placement, p50) in &mut nexus_p50 {
                let placement = *placement;
                self.step(&format!("pingpong {} round {round}/{k}", placement.as_str()));
                let out = self.sizer.sized((W, SYSTEM, placement), |factor| {
                    let round_trips = params.round_trips.saturating_mul(factor);
                    let out = pingpong::run(&handle, &PingPongParams { placement, round_trips, ..params.clone() })?;
                    let span = out.elapsed;
                    Ok((out, Some(span)))
                })?;
                *p50 = out.rtt.p50_ns;
                if placement == Placement::Cross && p.rtt.p50_ns > 0.0 {
                    ratios.push(out.rtt.p50_ns / p.rtt.p50_ns);
                }
                if round == k {
                    self.curve(W, SYSTEM, placement, out.histogram.clone());
                }
                runs.push((placement, out));
            }
            setup::shutdown(engine, W)?;
            // The peers run while no engine runs, right after Nexus in the same round.
            self.pingpong_peers(round, &params, &nexus_p50, &mut versus)?;
            probes.push(p);
        }
        self.step("pingpong wake from park");
        let woke = wake::run(&self.suite.settings, &self.suite.plan.wake)?;
        self.step("pingpong wake probe");
        let woke_bare = probe::wake(&self.suite.plan.wake_probe, &mut self.suite.settings)?;

        let mut records = Vec::new();
        for placement in Placement::BOTH {
            let of = |f: fn(&pingpong::PingPongOutcome) -> f64| {
                runs.iter().filter(|(p, _)| *p == placement).map(|(_, o)| f(o)).collect::<Vec<_>>()
            };
            for (metric, values) in [
                ("rtt_p50_ns", of(|o| o.rtt.p50_ns)),
                ("rtt_p99_ns", of(|o| o.rtt.p99_ns)),
                ("rtt_p999_ns", of(|o| o.rtt.p999_ns)),
            ] {
                records.push(self.record(W, placement, metric, 0.0, "ns").over_rounds(&values));
            }
        }
        let of = |f: fn(&probe::ProbeOutcome) -> f64| probes.iter().map(f).collect::<Vec<_>>();
        for (metric, values) in [
            ("probe_rtt_p50_ns", of(|p| p.rtt.p50_ns)),
            ("probe_rtt_p99_ns", of(|p| p.rtt.p99_ns)),
            ("probe_rtt_p999_ns", of(|p| p.rtt.p999_ns)),
            ("probe_rtt_batch_ns", of(|p| p.batch_rtt_ns)),
        ] {
            records.push(Record::new(W, LIMIT, "cross", metric, 0.0, "ns").over_rounds(&values));
        }
        records.push(self.record(W, Placement::Cross, "rtt_p50_over_probe", 0.0, "ratio").over_rounds(&ratios));
        // Each timed round trip includes one clock read; this is what one costs here.
        records.push(Record::new(W, "clock", "local", "clock_read_ns", pingpong::timer_overhead_ns(), "ns"));
        records.push(self.record(W, Placement::Cross, "wake_from_park_p50_ns", woke.latency.p50_ns, "ns"));
        records.push(self.record(W, Placement::Cross, "wake_from_park_p99_ns", woke.latency.p99_ns, "ns"));
        records.push(Record::new(W, LIMIT, "cross", "probe_wake_p50_ns", woke_bare.p50_ns, "ns"));
        records.push(Record::new(W, LIMIT, "cross", "probe_wake_p99_ns", woke_bare.p99_ns, "ns"));
        records.extend(versus.records(W));
        Ok(records)
    }

    /// One round of the probe, its round trips (timed one by one and in batches) scaled to
    /// last at least `min_round`.
    fn probe_round(&mut self) -> Result<probe::ProbeOutcome, BenchError> {
        let base = self.suite.plan.probe.clone();
        let mut settings = self.suite.settings.clone();
        let out = self.sizer.sized(("pingpong", LIMIT, Placement::Cross), |factor| {
            let params = ProbeParams {
                round_trips: base.round_trips.saturating_mul(factor),
                batch_round_trips: base.batch_round_trips.saturating_mul(factor),
                ..base.clone()
            };
            let out = probe::run(&params, &mut settings)?;
            let batches = Duration::from_secs_f64(out.batch_rtt_ns.max(0.0) * params.batch_round_trips as f64 / 1e9);
            let span = latency_span(&out.rtt) + batches;
            Ok((out, Some(span)))
        })?;
        self.suite.settings = settings;
        Ok(out)
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
                let result = self.sizer.sized((W, peer.name(), placement), |factor| {
                    let round_trips = params.round_trips.saturating_mul(factor);
                    let result =
                        peers::pingpong(peer, &PingPongParams { placement, round_trips, ..params.clone() }, cpus)?;
                    let span = match &result {
                        PeerResult::Ran(out) => Some(latency_span(&out.rtt)),
                        PeerResult::Skipped(_) => None,
                    };
                    Ok((result, span))
                })?;
                match result {
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

/// The time the recorded trips took together (their mean times their count).
fn latency_span(rtt: &crate::stats::Percentiles) -> Duration {
    Duration::from_secs_f64(rtt.mean_ns.max(0.0) * rtt.samples as f64 / 1e9)
}
