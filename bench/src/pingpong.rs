//! `pingpong`: the round-trip latency between two agents, one message in flight at a time.
//!
//! A [`Pinger`] on shard 0 sends a [`Ping`] to a [`Ponger`], on shard 0 (`local`) or shard 1
//! (`cross`); the ponger answers with a `Pong`; the pinger reads the clock once per pong,
//! records the time since the previous pong (one whole cycle: handle the pong, send the ping,
//! the ponger's dispatch and answer, the pong's dispatch) in an hdrhistogram (ns) and sends the
//! next ping. Every round trip is timed on its own, so p50/p99/p999 are real per-trip
//! percentiles, not averages, and each includes exactly one clock read (about 22 ns here, see
//! [`timer_overhead_ns`]). The first `warmup` trips are not recorded.
//!
//! The host asks the pinger to run ([`PingerMsg::Run`]); the pinger answers when the last
//! pong arrives. Checks: the pinger completed exactly `warmup + round_trips` trips, recorded
//! `round_trips` of them, and the ponger answered exactly as many pings.
//!
//! Both messages are at most 48 bytes, so they travel inline: no heap on the measured path.

use crate::setup::{self, Placement};
use crate::stats::{self, Percentiles};
use crate::BenchError;
use hdrhistogram::Histogram;
use nexus_engine::agent::{Addr, Agent, Ctx};
use nexus_engine::ask::ReplyTo;
use nexus_engine::engine::EngineHandle;
use std::time::{Duration, Instant};

const WORKLOAD: &str = "pingpong";

/// What one pingpong run does.
#[derive(Clone, Debug)]
pub struct PingPongParams {
    /// Round trips recorded (Savina: 40,000; `--large`: 1,000,000).
    pub round_trips: u64,
    /// Round trips before those, not recorded.
    pub warmup: u64,
    /// Where the ponger lives.
    pub placement: Placement,
}

impl Default for PingPongParams {
    fn default() -> Self {
        Self { round_trips: 40_000, warmup: 1_000, placement: Placement::Cross }
    }
}

/// What one pingpong run measured.
#[derive(Clone, Debug)]
pub struct PingPongOutcome {
    /// Where the ponger lived.
    pub placement: Placement,
    /// Recorded round trips (checked).
    pub round_trips: u64,
    /// Per-trip round-trip time.
    pub rtt: Percentiles,
    /// The recorded trips' histogram (ns).
    pub histogram: Histogram<u64>,
    /// From the first recorded ping to the last pong.
    pub elapsed: Duration,
}

/// A ping: the pinger's sequence number, echoed in the pong.
#[derive(Debug)]
pub struct Ping {
    /// Which round trip this is (checked when the pong comes back).
    pub seq: u64,
}

/// Messages of the [`Ponger`].
#[derive(Debug)]
pub enum PongerMsg {
    /// A ping to answer.
    Ping(Ping),
    /// Reply with the number of pings answered and of answers that could not be sent.
    Count(ReplyTo<(u64, u64)>),
}

/// Answers every ping to the pinger it was built with.
#[derive(Debug)]
pub struct Ponger {
    pinger: Addr<PingerMsg>,
    answered: u64,
    failed: u64,
}

impl Ponger {
    /// A ponger answering `pinger`.
    pub fn new(pinger: Addr<PingerMsg>) -> Self {
        Self { pinger, answered: 0, failed: 0 }
    }
}

impl Agent for Ponger {
    type Msg = PongerMsg;

    #[inline]
    fn handle(&mut self, msg: PongerMsg, ctx: &mut Ctx<'_>) {
        match msg {
            PongerMsg::Ping(Ping { seq }) => match ctx.send(self.pinger, PingerMsg::Pong(seq)) {
                Ok(()) => self.answered += 1,
                Err(_) => self.failed += 1,
            },
            PongerMsg::Count(reply) => ctx.reply(reply, (self.answered, self.failed)),
        }
    }
}

/// What the pinger answers the host with.
#[derive(Debug)]
pub struct PingerReport {
    /// Round trips completed (warm-up included).
    pub completed: u64,
    /// Recorded round trips.
    pub histogram: Histogram<u64>,
    /// From the first recorded ping to the last pong.
    pub elapsed: Duration,
    /// Pings that could not be sent (a failure: the run stops at the first one).
    pub failed: bool,
}

/// Messages of the [`Pinger`].
#[derive(Debug)]
pub enum PingerMsg {
    /// Run `warmup + round_trips` round trips with `ponger`, then reply.
    /// (Boxed, so that the hot `Pong` keeps the message inline in its envelope.)
    Run(Box<PingRun>),
    /// A ping came back: its sequence number.
    Pong(u64),
}

/// What [`PingerMsg::Run`] asks for.
#[derive(Debug)]
pub struct PingRun {
    /// The ponger to bounce off.
    pub ponger: Addr<PongerMsg>,
    /// Recorded trips.
    pub round_trips: u64,
    /// Unrecorded trips first.
    pub warmup: u64,
    /// Where the report goes.
    pub reply: ReplyTo<Box<PingerReport>>,
}

/// Sends pings one at a time and times each round trip.
pub struct Pinger {
    ponger: Option<Addr<PongerMsg>>,
    reply: Option<ReplyTo<Box<PingerReport>>>,
    total: u64,
    warmup: u64,
    completed: u64,
    histogram: Histogram<u64>,
    recording_since: Option<Instant>,
    last: Option<Instant>,
    out_of_order: bool,
}

impl Default for Pinger {
    fn default() -> Self {
        Self {
            ponger: None,
            reply: None,
            total: 0,
            warmup: 0,
            completed: 0,
            histogram: stats::histogram(),
            recording_since: None,
            last: None,
            out_of_order: false,
        }
    }
}

impl Pinger {
    fn ping(&mut self, ctx: &mut Ctx<'_>) {
        let Some(ponger) = self.ponger else { return };
        if ctx.send(ponger, PongerMsg::Ping(Ping { seq: self.completed })).is_err() {
            self.finish(ctx, true);
        }
    }

    fn finish(&mut self, ctx: &mut Ctx<'_>, failed: bool) {
        let histogram = std::mem::replace(&mut self.histogram, stats::histogram());
        let elapsed = self.recording_since.map_or(Duration::ZERO, |t| t.elapsed());
        if let Some(reply) = self.reply.take() {
            let failed = failed || self.out_of_order;
            ctx.reply(reply, Box::new(PingerReport { completed: self.completed, histogram, elapsed, failed }));
        }
    }
}

impl Agent for Pinger {
    type Msg = PingerMsg;

    #[inline]
    fn handle(&mut self, msg: PingerMsg, ctx: &mut Ctx<'_>) {
        match msg {
            PingerMsg::Run(run) => {
                let PingRun { ponger, round_trips, warmup, reply } = *run;
                self.ponger = Some(ponger);
                self.reply = Some(reply);
                self.total = warmup + round_trips;
                self.warmup = warmup;
                self.completed = 0;
                self.histogram.reset();
                self.recording_since = None;
                self.out_of_order = false;
                if self.total == 0 {
                    self.finish(ctx, false);
                } else {
                    let now = Instant::now();
                    self.last = Some(now);
                    if self.warmup == 0 {
                        self.recording_since = Some(now);
                    }
                    self.ping(ctx);
                }
            }
            PingerMsg::Pong(seq) => {
                let now = Instant::now();
                if seq != self.completed {
                    self.out_of_order = true;
                }
                self.completed += 1;
                if self.completed > self.warmup {
                    if let Some(last) = self.last {
                        stats::record(&mut self.histogram, now.duration_since(last));
                    }
                } else if self.completed == self.warmup {
                    self.recording_since = Some(now);
                }
                self.last = Some(now);
                if self.completed == self.total {
                    self.finish(ctx, false);
                } else {
                    self.ping(ctx);
                }
            }
        }
    }
}

/// A pinger and its ponger, spawned once and run any number of times (criterion reuses them).
#[derive(Clone, Copy, Debug)]
pub struct PingPongPair {
    /// The pinger (shard 0).
    pub pinger: Addr<PingerMsg>,
    /// The ponger (shard 0 or 1).
    pub ponger: Addr<PongerMsg>,
    /// Where the ponger lives.
    pub placement: Placement,
}

impl PingPongPair {
    /// Spawns a pinger on shard 0 and a ponger where `placement` says.
    pub fn spawn(handle: &EngineHandle, placement: Placement) -> Result<Self, BenchError> {
        placement.check(WORKLOAD, handle.shards())?;
        let pinger = setup::spawn_on(handle, WORKLOAD, 0, Pinger::default)?;
        let shard = match placement {
            Placement::Local => 0,
            Placement::Cross => 1,
        };
        let ponger = setup::spawn_on(handle, WORKLOAD, shard, move || Ponger::new(pinger))?;
        Ok(Self { pinger, ponger, placement })
    }

    /// Runs `warmup + round_trips` round trips and checks the counts.
    pub fn run(&self, handle: &EngineHandle, round_trips: u64, warmup: u64) -> Result<PingPongOutcome, BenchError> {
        let before =
            setup::ask(handle, WORKLOAD, "count pings", self.ponger, Duration::from_secs(10), PongerMsg::Count)?;
        let total = warmup + round_trips;
        let report = setup::ask(
            handle,
            WORKLOAD,
            "run the pinger",
            self.pinger,
            setup::timeout_for(total, Duration::from_micros(100)),
            |reply| PingerMsg::Run(Box::new(PingRun { ponger: self.ponger, round_trips, warmup, reply })),
        )?;
        let after =
            setup::ask(handle, WORKLOAD, "count pings", self.ponger, Duration::from_secs(10), PongerMsg::Count)?;
        let answered = after.0 - before.0;
        let failed = (after.1 - before.1) as usize + usize::from(report.failed);
        if failed > 0 || report.completed != total || answered != total || report.histogram.len() != round_trips {
            return Err(BenchError::check(
                WORKLOAD,
                format!(
                    "{} round trips completed, {answered} pings answered, {} recorded, {failed} sends failed; \
                     expected {total}, {total}, {round_trips}, 0",
                    report.completed,
                    report.histogram.len()
                ),
            ));
        }
        Ok(PingPongOutcome {
            placement: self.placement,
            round_trips,
            rtt: Percentiles::of(&report.histogram),
            histogram: report.histogram,
            elapsed: report.elapsed,
        })
    }
}

/// The cost of one `Instant::now()` on this machine, in nanoseconds (the median of 5 runs of
/// 100,000 reads): every pingpong round trip includes exactly one.
pub fn timer_overhead_ns() -> f64 {
    const READS: u32 = 100_000;
    let runs: Vec<f64> = (0..5)
        .map(|_| {
            let started = Instant::now();
            let mut last = started;
            for _ in 0..READS {
                last = std::hint::black_box(Instant::now());
            }
            last.duration_since(started).as_nanos() as f64 / f64::from(READS)
        })
        .collect();
    stats::median(&runs)
}

/// Spawns a pair on a running engine and runs `params` once.
pub fn run(handle: &EngineHandle, params: &PingPongParams) -> Result<PingPongOutcome, BenchError> {
    PingPongPair::spawn(handle, params.placement)?.run(handle, params.round_trips, params.warmup)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::setup::EngineSettings;

    #[test]
    fn pingpong_completes_every_round_trip_both_ways() {
        let engine = EngineSettings::test(2).build().unwrap();
        let handle = engine.handle();
        for placement in Placement::BOTH {
            let out = run(&handle, &PingPongParams { round_trips: 200, warmup: 10, placement }).unwrap();
            assert_eq!((out.round_trips, out.rtt.samples), (200, 200));
            assert!(out.rtt.p50_ns > 0.0 && out.rtt.p50_ns <= out.rtt.p99_ns);
        }
        setup::shutdown(engine, WORKLOAD).unwrap();
    }

    #[test]
    fn messages_travel_inline() {
        assert!(nexus_engine::payload::fits_inline::<PingerMsg>());
        assert!(nexus_engine::payload::fits_inline::<PongerMsg>());
    }
}
