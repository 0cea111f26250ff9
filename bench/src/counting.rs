//! `counting`: one producer sends a million increments to one counter, then asks the total.
//!
//! The [`Producer`] (shard 0) sends `Add(i)` for i = 1..=n to the [`Tally`] (shard 0 for
//! `local`, shard 1 for `cross`) in bursts of `burst` sends per turn. When a send returns
//! `Full` (the tally's mailbox, or the ring and backlog to its shard), the producer keeps the
//! message's number, sends itself a `Continue` and resumes on its next turn, so the dispatcher
//! runs the tally in between: nothing is lost and nothing blocks. After the last increment the
//! producer asks the tally for its count and sum (`Ctx::ask`, FIFO behind the increments) and
//! stops the clock when the answer arrives (through `handle`, as `ProducerMsg::Total`).
//!
//! `msgs_per_s` = n / (first send .. total arriving). Checks: the tally saw exactly n messages
//! and their sum is n(n+1)/2 (so a lost message cannot be hidden by a duplicate).

use crate::setup::{self, Placement};
use crate::stats;
use crate::BenchError;
use nexus_engine::agent::{Addr, Agent, Ctx, SendError};
use nexus_engine::ask::{AskError, ReplyTo};
use nexus_engine::engine::EngineHandle;
use std::time::{Duration, Instant};

const WORKLOAD: &str = "counting";

/// What one counting run does.
#[derive(Clone, Debug)]
pub struct CountingParams {
    /// Increments sent (Savina: 1,000,000).
    pub messages: u64,
    /// Sends per producer turn before it yields with a `Continue`.
    pub burst: u32,
    /// Where the tally lives.
    pub placement: Placement,
}

impl Default for CountingParams {
    fn default() -> Self {
        Self { messages: 1_000_000, burst: 256, placement: Placement::Cross }
    }
}

/// What one counting run measured.
#[derive(Clone, Debug)]
pub struct CountingOutcome {
    /// Where the tally lived.
    pub placement: Placement,
    /// Increments counted (checked).
    pub messages: u64,
    /// From the first send to the total arriving.
    pub elapsed: Duration,
    /// Increments per second.
    pub msgs_per_s: f64,
    /// Sends that came back `Full` and were retried on a later turn.
    pub full_retries: u64,
}

/// Messages of the [`Tally`].
#[derive(Debug)]
pub enum TallyMsg {
    /// Count one message and add its value.
    Add(u64),
    /// Reply with (messages counted, sum).
    Get(ReplyTo<(u64, u64)>),
}

/// Counts increments and sums them.
#[derive(Debug, Default)]
pub struct Tally {
    count: u64,
    sum: u64,
}

impl Agent for Tally {
    type Msg = TallyMsg;

    #[inline]
    fn handle(&mut self, msg: TallyMsg, ctx: &mut Ctx<'_>) {
        match msg {
            TallyMsg::Add(n) => {
                self.count += 1;
                self.sum = self.sum.wrapping_add(n);
            }
            TallyMsg::Get(reply) => ctx.reply(reply, (self.count, self.sum)),
        }
    }
}

/// The producer's answer to the host: (count, sum) as the tally reported them, the time from
/// the first send to the total arriving, and the `Full` retries; or why it failed.
pub type ProducerReport = Result<((u64, u64), Duration, u64), String>;

/// Messages of the [`Producer`].
#[derive(Debug)]
pub enum ProducerMsg {
    /// Send `messages` increments, then reply.
    Run {
        /// Increments to send.
        messages: u64,
        /// Where the report goes.
        reply: ReplyTo<ProducerReport>,
    },
    /// Resume sending, or asking for the total (sent to itself after a burst or a `Full`).
    Continue,
    /// The tally's (count, sum), the answer to the producer's ask, or why it did not come.
    Total(Result<(u64, u64), AskError>),
}

/// Sends increments in bursts and retries `Full` on its next turn.
pub struct Producer {
    tally: Addr<TallyMsg>,
    burst: u32,
    next: u64,
    last: u64,
    started: Option<Instant>,
    retries: u64,
    reply: Option<ReplyTo<ProducerReport>>,
}

impl Producer {
    /// A producer sending to `tally`, `burst` sends per turn.
    pub fn new(tally: Addr<TallyMsg>, burst: u32) -> Self {
        Self { tally, burst: burst.max(1), next: 1, last: 0, started: None, retries: 0, reply: None }
    }

    fn pump(&mut self, ctx: &mut Ctx<'_>) {
        for _ in 0..self.burst {
            if self.next > self.last {
                break;
            }
            match ctx.send(self.tally, TallyMsg::Add(self.next)) {
                Ok(()) => self.next += 1,
                Err(_) => {
                    self.retries += 1;
                    break;
                }
            }
        }
        let mut again = self.next <= self.last;
        if !again {
            match ctx.ask(self.tally, TallyMsg::Get).timeout(Duration::from_secs(60)).then(ProducerMsg::Total) {
                Ok(_) => {}
                // The tally's mailbox still holds the last increments: ask on the next turn.
                Err(SendError::Full(_)) => {
                    self.retries += 1;
                    again = true;
                }
                Err(e) => self.fail(ctx, format!("cannot ask the total: {e}")),
            }
        }
        if again && ctx.send(ctx.myself(), ProducerMsg::Continue).is_err() {
            self.fail(ctx, "the producer could not send itself a continue".into());
        }
    }

    fn fail(&mut self, ctx: &mut Ctx<'_>, why: String) {
        if let Some(reply) = self.reply.take() {
            ctx.reply(reply, Err(why));
        }
    }
}

impl Agent for Producer {
    type Msg = ProducerMsg;

    fn handle(&mut self, msg: ProducerMsg, ctx: &mut Ctx<'_>) {
        match msg {
            ProducerMsg::Run { messages, reply } => {
                self.reply = Some(reply);
                self.next = 1;
                self.last = messages;
                self.retries = 0;
                self.started = Some(Instant::now());
                self.pump(ctx);
            }
            ProducerMsg::Continue => self.pump(ctx),
            ProducerMsg::Total(total) => {
                let elapsed = self.started.map_or(Duration::ZERO, |t| t.elapsed());
                let result = total.map_err(|e| format!("the total did not arrive: {e}"));
                if let Some(to) = self.reply.take() {
                    ctx.reply(to, result.map(|total| (total, elapsed, self.retries)));
                }
            }
        }
    }
}

/// Asks `producer` to send `n` increments and checks its tally's answer: exactly `n` messages
/// summing to n(n+1)/2. Returns the producer's time and its `Full` retries. Blocks the calling
/// host thread until the answer arrives.
pub fn run_producer(
    handle: &EngineHandle,
    workload: &'static str,
    producer: Addr<ProducerMsg>,
    n: u64,
) -> Result<(Duration, u64), BenchError> {
    let report = setup::ask(
        handle,
        workload,
        "run a producer",
        producer,
        setup::timeout_for(n, Duration::from_micros(20)),
        |reply| ProducerMsg::Run { messages: n, reply },
    )?;
    let ((count, sum), elapsed, full_retries) = report.map_err(|why| BenchError::check(workload, why))?;
    let expected_sum = (u128::from(n) * (u128::from(n) + 1) / 2) as u64;
    if count != n || sum != expected_sum {
        return Err(BenchError::check(
            workload,
            format!("the tally counted {count} messages summing to {sum}; expected {n} summing to {expected_sum}"),
        ));
    }
    Ok((elapsed, full_retries))
}

/// Spawns a tally and a producer on a running engine, runs `params` once and checks the total.
pub fn run(handle: &EngineHandle, params: &CountingParams) -> Result<CountingOutcome, BenchError> {
    params.placement.check(WORKLOAD, handle.shards())?;
    let shard = match params.placement {
        Placement::Local => 0,
        Placement::Cross => 1,
    };
    let tally = setup::spawn_on(handle, WORKLOAD, shard, Tally::default)?;
    let burst = params.burst;
    let producer = setup::spawn_on(handle, WORKLOAD, 0, move || Producer::new(tally, burst))?;
    let n = params.messages;
    let (elapsed, full_retries) = run_producer(handle, WORKLOAD, producer, n)?;
    handle.stop(producer.id())?;
    handle.stop(tally.id())?;
    Ok(CountingOutcome {
        placement: params.placement,
        messages: n,
        elapsed,
        msgs_per_s: stats::per_second(n, elapsed),
        full_retries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::setup::EngineSettings;

    #[test]
    fn every_increment_is_counted_both_ways() {
        let engine = EngineSettings::test(2).build().unwrap();
        let handle = engine.handle();
        for placement in Placement::BOTH {
            // A burst larger than the mailbox forces the `Full` and `Continue` path locally.
            let params = CountingParams { messages: 3_000, burst: 2_000, placement };
            let out = run(&handle, &params).unwrap();
            assert_eq!(out.messages, 3_000);
            if placement == Placement::Local {
                assert!(out.full_retries > 0, "the local run exercised the retry path");
            }
        }
        setup::shutdown(engine, WORKLOAD).unwrap();
    }
}
