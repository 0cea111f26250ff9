//! `wake`: the latency of a message that reaches a parked shard.
//!
//! The engine runs with a short spin ([`WakeParams::spin_before_park`], 20 µs) and a long park
//! timeout (1 s), so an idle shard parks quickly and stays parked until a peer rings its
//! doorbell. Every `gap` (2 ms, a hundred times the spin) the host sends a `Fire` to a
//! [`Waker`] on shard 1; the waker stamps `Instant::now()` into a message and sends it to a
//! [`Sleeper`] on shard 0, which by then has parked. Shard 1 publishes the message at the end
//! of its pass and rings shard 0's doorbell (one futex wake); shard 0 wakes, runs a pass and
//! dispatches the message; the sleeper records `now - stamp`. So a sample is the whole
//! cross-shard wake path: publish, doorbell, the OS waking the thread, one dispatcher pass.
//! The host's own wake-up is not in it.
//!
//! Checks: the sleeper received exactly `samples` stamps, and (when `require_parks`) shard 0
//! parked at least once per two samples, so the figure really is a wake from park.

use crate::setup::{self, EngineSettings};
use crate::stats::{self, Percentiles};
use crate::BenchError;
use hdrhistogram::Histogram;
use nexus_engine::agent::{Addr, Agent, Ctx};
use nexus_engine::ask::ReplyTo;
use nexus_engine::shard::IdlePolicy;
use std::time::{Duration, Instant};

const WORKLOAD: &str = "wake";

/// What the wake measurement does.
#[derive(Clone, Debug)]
pub struct WakeParams {
    /// Messages sent to the parked shard.
    pub samples: u64,
    /// Pause between two messages (the target parks during it).
    pub gap: Duration,
    /// The engine's spin before parking (short, so the target parks during each gap).
    pub spin_before_park: Duration,
    /// A cap on one park (`None`, the default: only the doorbell wakes the target).
    pub park_timeout: Option<Duration>,
    /// Fail unless shard 0 parked at least `samples / 2` times (tests, whose shards may be
    /// descheduled for a whole gap, turn it off).
    pub require_parks: bool,
}

impl Default for WakeParams {
    fn default() -> Self {
        Self {
            samples: 200,
            gap: Duration::from_millis(2),
            spin_before_park: Duration::from_micros(20),
            park_timeout: None,
            require_parks: true,
        }
    }
}

/// What the wake measurement found.
#[derive(Clone, Debug)]
pub struct WakeOutcome {
    /// Send-to-dispatch latency of messages that reached a parked shard.
    pub latency: Percentiles,
    /// Times shard 0 parked during the run.
    pub parks: u64,
}

/// Messages of the [`Sleeper`].
#[derive(Debug)]
pub enum SleeperMsg {
    /// A message stamped by the waker just before it was sent.
    Stamp(Instant),
    /// Reply with the histogram of the stamps' latencies once it holds `expect` samples.
    Report {
        /// Samples to wait for.
        expect: u64,
        /// Where the histogram goes.
        reply: ReplyTo<Box<Histogram<u64>>>,
    },
}

/// Records the latency of every stamp it receives.
pub struct Sleeper {
    histogram: Histogram<u64>,
    report: Option<(u64, ReplyTo<Box<Histogram<u64>>>)>,
}

impl Sleeper {
    fn maybe_report(&mut self, ctx: &mut Ctx<'_>) {
        if self.report.as_ref().is_some_and(|(expect, _)| self.histogram.len() >= *expect) {
            if let Some((_, reply)) = self.report.take() {
                let h = std::mem::replace(&mut self.histogram, stats::histogram());
                ctx.reply(reply, Box::new(h));
            }
        }
    }
}

impl Agent for Sleeper {
    type Msg = SleeperMsg;

    fn handle(&mut self, msg: SleeperMsg, ctx: &mut Ctx<'_>) {
        match msg {
            SleeperMsg::Stamp(sent) => stats::record(&mut self.histogram, sent.elapsed()),
            SleeperMsg::Report { expect, reply } => self.report = Some((expect, reply)),
        }
        self.maybe_report(ctx);
    }
}

/// Messages of the [`Waker`].
#[derive(Debug)]
pub enum WakerMsg {
    /// Stamp the time and send it to the sleeper.
    Fire,
    /// Reply with the number of stamps that could not be sent.
    Failures(ReplyTo<u64>),
}

/// Sends a stamped message to the sleeper on every `Fire`.
pub struct Waker {
    sleeper: Addr<SleeperMsg>,
    failed: u64,
}

impl Agent for Waker {
    type Msg = WakerMsg;

    fn handle(&mut self, msg: WakerMsg, ctx: &mut Ctx<'_>) {
        match msg {
            WakerMsg::Fire => {
                if ctx.send(self.sleeper, SleeperMsg::Stamp(Instant::now())).is_err() {
                    self.failed += 1;
                }
            }
            WakerMsg::Failures(reply) => ctx.reply(reply, self.failed),
        }
    }
}

/// Builds an engine from `settings` with the short-spin idle policy, measures, shuts it down.
pub fn run(settings: &EngineSettings, params: &WakeParams) -> Result<WakeOutcome, BenchError> {
    if settings.shards < 2 {
        return Err(BenchError::params(WORKLOAD, "the wake measurement needs 2 shards; hint: use --shards 2"));
    }
    let idle =
        IdlePolicy { spin_before_park: params.spin_before_park, park_timeout: params.park_timeout, ..settings.idle };
    let engine = settings.with_idle(idle).build()?;
    let handle = engine.handle();
    let sleeper = setup::spawn_on(&handle, WORKLOAD, 0, || Sleeper { histogram: stats::histogram(), report: None })?;
    let waker = setup::spawn_on(&handle, WORKLOAD, 1, move || Waker { sleeper, failed: 0 })?;
    let parks_before = handle.stats()?.shards[0].counters.parks;
    for _ in 0..params.samples {
        std::thread::sleep(params.gap);
        setup::send(&handle, WORKLOAD, "a fire", waker, WakerMsg::Fire)?;
    }
    let failed = setup::ask(&handle, WORKLOAD, "count failures", waker, Duration::from_secs(10), WakerMsg::Failures)?;
    if failed != 0 {
        return Err(BenchError::check(WORKLOAD, format!("{failed} stamps could not be sent")));
    }
    // The sleeper answers once every stamp arrived (a lost stamp makes this ask time out).
    let expect = params.samples;
    let h = setup::ask(&handle, WORKLOAD, "wait for every stamp", sleeper, Duration::from_secs(10), |reply| {
        SleeperMsg::Report { expect, reply }
    })?;
    let parks = handle.stats()?.shards[0].counters.parks - parks_before;
    setup::shutdown(engine, WORKLOAD)?;
    if h.len() != params.samples {
        return Err(BenchError::check(WORKLOAD, format!("{} stamps received; expected {}", h.len(), params.samples)));
    }
    if params.require_parks && parks < params.samples / 2 {
        return Err(BenchError::check(
            WORKLOAD,
            format!(
                "shard 0 parked {parks} times for {} samples: the figure would not be a wake from park",
                params.samples
            ),
        ));
    }
    Ok(WakeOutcome { latency: Percentiles::of(&h), parks })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stamp_arrives() {
        let params =
            WakeParams { samples: 5, gap: Duration::from_millis(1), require_parks: false, ..WakeParams::default() };
        let out = run(&EngineSettings::test(2), &params).unwrap();
        assert_eq!(out.latency.samples, 5);
    }
}
