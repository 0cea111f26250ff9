//! `ask`: the round trip of `Ctx::ask` from one agent to another, one ask in flight.
//!
//! An [`Asker`] on shard 0 asks an [`Echo`] agent, on shard 0
//! (`local`) or shard 1 (`cross`), to echo a sequence number, with a typed ask
//! (`ctx.ask(..).then(AskerMsg::Echoed)`). When the answer reaches `handle` as
//! [`AskerMsg::Echoed`], the asker checks the number and asks again. Every ask opens a pooled
//! reply slot with a deadline on the asking shard and stores its (zero-sized) adapter there, and
//! the answer settles it, so the figure covers the whole ask machinery, not just two messages. The asker reads the clock once per answer and
//! records the time since the previous one (the whole cycle) in an hdrhistogram.
//!
//! Checks: exactly `asks` answers, each carrying the number that was asked, and no failed ask.

use crate::setup::{self, Placement};
use crate::stats::{self, Percentiles};
use crate::BenchError;
use hdrhistogram::Histogram;
use nexus_engine::agent::{Addr, Agent, Ctx};
use nexus_engine::ask::{AskError, ReplyTo};
use nexus_engine::builtin::{Echo, EchoMsg};
use nexus_engine::engine::EngineHandle;
use std::time::{Duration, Instant};

const WORKLOAD: &str = "ask";

/// How long one ask may wait for its answer before it counts as failed.
const ASK_TIMEOUT: Duration = Duration::from_secs(5);

/// What the asker answers the host with: per-ask latencies and the time of the whole run, or
/// why it failed.
pub type AskReport = Result<(Histogram<u64>, Duration), String>;

/// Messages of the [`Asker`].
#[derive(Debug)]
pub enum AskerMsg {
    /// Ask the echo `asks` times, one at a time, then reply.
    Run {
        /// The echo to ask.
        echo: Addr<EchoMsg>,
        /// Answers to collect.
        asks: u64,
        /// Where the report goes.
        reply: ReplyTo<Box<AskReport>>,
    },
    /// The echo's answer to the ask in flight, or why it failed.
    Echoed(Result<u64, AskError>),
}

/// Asks one echo agent in a loop; see the module documentation.
#[derive(Default)]
pub struct Asker {
    echo: Option<Addr<EchoMsg>>,
    total: u64,
    answered: u64,
    last: Option<Instant>,
    started: Option<Instant>,
    histogram: Option<Histogram<u64>>,
    reply: Option<ReplyTo<Box<AskReport>>>,
}

impl Asker {
    fn start(&mut self, echo: Addr<EchoMsg>, asks: u64, reply: ReplyTo<Box<AskReport>>, ctx: &mut Ctx<'_>) {
        self.echo = Some(echo);
        self.total = asks;
        self.answered = 0;
        self.histogram = Some(stats::histogram());
        self.reply = Some(reply);
        let now = Instant::now();
        self.started = Some(now);
        self.last = Some(now);
        if asks == 0 {
            self.finish(ctx, Ok(()));
        } else {
            self.ask_next(ctx);
        }
    }

    fn on_answer(&mut self, answer: Result<u64, AskError>, ctx: &mut Ctx<'_>) {
        let now = Instant::now();
        let value = match answer {
            Ok(value) => value,
            Err(e) => return self.finish(ctx, Err(format!("ask {} failed: {e}", self.answered))),
        };
        if value != self.answered {
            return self.finish(ctx, Err(format!("answer {value} arrived for ask {}", self.answered)));
        }
        self.answered += 1;
        if let (Some(h), Some(last)) = (self.histogram.as_mut(), self.last) {
            stats::record(h, now.duration_since(last));
        }
        self.last = Some(now);
        if self.answered == self.total {
            self.finish(ctx, Ok(()));
        } else {
            self.ask_next(ctx);
        }
    }

    fn ask_next(&mut self, ctx: &mut Ctx<'_>) {
        let Some(echo) = self.echo else { return };
        let value = self.answered;
        let asked = ctx.ask(echo, |reply| EchoMsg::Echo { value, reply }).timeout(ASK_TIMEOUT).then(AskerMsg::Echoed);
        if asked.is_err() {
            self.finish(ctx, Err(format!("ask {value} could not be sent")));
        }
    }

    fn finish(&mut self, ctx: &mut Ctx<'_>, result: Result<(), String>) {
        let elapsed = self.started.map_or(Duration::ZERO, |t| t.elapsed());
        let histogram = self.histogram.take().unwrap_or_else(stats::histogram);
        if let Some(reply) = self.reply.take() {
            ctx.reply(reply, Box::new(result.map(|()| (histogram, elapsed))));
        }
    }
}

impl Agent for Asker {
    type Msg = AskerMsg;

    fn handle(&mut self, msg: AskerMsg, ctx: &mut Ctx<'_>) {
        match msg {
            AskerMsg::Run { echo, asks, reply } => self.start(echo, asks, reply, ctx),
            AskerMsg::Echoed(answer) => self.on_answer(answer, ctx),
        }
    }
}

/// What one run measured.
#[derive(Debug)]
pub struct AskOutcome {
    /// Where the echo lived.
    pub placement: Placement,
    /// Answers collected (checked).
    pub asks: u64,
    /// Per-ask round trip.
    pub rtt: Percentiles,
    /// All asks, first to last answer.
    pub elapsed: Duration,
}

/// An asker and its echo, spawned once and run any number of times (criterion reuses them).
#[derive(Clone, Copy, Debug)]
pub struct AskPair {
    asker: Addr<AskerMsg>,
    echo: Addr<EchoMsg>,
    placement: Placement,
}

impl AskPair {
    /// Spawns an asker on shard 0 and an echo where `placement` says.
    pub fn spawn(handle: &EngineHandle, placement: Placement) -> Result<Self, BenchError> {
        placement.check(WORKLOAD, handle.shards())?;
        let asker = setup::spawn_on(handle, WORKLOAD, 0, Asker::default)?;
        let shard = match placement {
            Placement::Local => 0,
            Placement::Cross => 1,
        };
        let echo = setup::spawn_on(handle, WORKLOAD, shard, Echo::default)?;
        Ok(Self { asker, echo, placement })
    }

    /// Runs `asks` asks and checks them.
    pub fn run(&self, handle: &EngineHandle, asks: u64) -> Result<AskOutcome, BenchError> {
        let echo = self.echo;
        let report = setup::ask(
            handle,
            WORKLOAD,
            "run the asker",
            self.asker,
            setup::timeout_for(asks, Duration::from_micros(100)),
            |reply| AskerMsg::Run { echo, asks, reply },
        )?;
        let (histogram, elapsed) = (*report).map_err(|why| BenchError::check(WORKLOAD, why))?;
        if histogram.len() != asks {
            return Err(BenchError::check(WORKLOAD, format!("{} asks timed, expected {asks}", histogram.len())));
        }
        Ok(AskOutcome { placement: self.placement, asks, rtt: Percentiles::of(&histogram), elapsed })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::setup::EngineSettings;

    #[test]
    fn every_ask_is_answered_with_its_number_both_ways() {
        let engine = EngineSettings::test(2).build().unwrap();
        let handle = engine.handle();
        for placement in Placement::BOTH {
            let pair = AskPair::spawn(&handle, placement).unwrap();
            let out = pair.run(&handle, 300).unwrap();
            assert_eq!((out.asks, out.rtt.samples), (300, 300));
            assert_eq!(pair.run(&handle, 0).unwrap().asks, 0);
        }
        setup::shutdown(engine, WORKLOAD).unwrap();
    }

    #[test]
    fn messages_travel_unboxed() {
        assert!(nexus_engine::payload::travels_unboxed::<nexus_engine::builtin::EchoMsg>());
        assert!(nexus_engine::payload::travels_unboxed::<AskerMsg>());
    }
}
