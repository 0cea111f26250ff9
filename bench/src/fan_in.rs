//! `fan-in`: senders on every shard send to one collector on shard 0.
//!
//! The engine runs `senders_per_shard` [`Sender`]s per shard (`S` in all) and one [`Collector`]
//! on shard 0, which is the driver. The host asks the collector to run; it starts the clock and
//! sends every sender its `Start`: `messages` in total are split evenly (the first
//! `messages % S` senders take one more), sender `j` sending `Add(v)` for its own consecutive
//! range of values, so that all values together are exactly `1..=messages`.
//!
//! Placement: fan-in is cross-shard by nature, so `cross` (the default) puts sender `j` on shard
//! `j % shards`. `local` keeps the same `S` senders but puts them all on shard 0 with the
//! collector, as a same-size baseline without the rings.
//!
//! Flow control: a message arriving from another shard at a full mailbox becomes a dead letter
//! (the send itself succeeded), so senders run on credit. Each sender may have `window`
//! messages unacknowledged (by default the collector's mailbox capacity less some room, divided
//! by `S`); the collector returns `Credit(k)` to a sender every `window / 2` of its messages.
//! A sender sends up to `burst` messages per turn and yields with a self-message while it has
//! credit; a refused send (`Full`) keeps its value for the next turn.
//!
//! Timed: the collector's `Start` broadcast to its counting the last message. `msgs_per_s` =
//! `messages` / that time (credits are not counted; there are about `2 * messages / window`).
//! Checks: the collector counted exactly `messages` messages summing to n(n+1)/2, and every
//! sender reports having sent exactly its share.

use crate::setup::{self, Placement};
use crate::stats;
use crate::BenchError;
use nexus_engine::agent::{Addr, Agent, Ctx};
use nexus_engine::ask::ReplyTo;
use nexus_engine::engine::EngineHandle;
use nexus_engine::shard::ShardLimits;
use std::time::{Duration, Instant};

const WORKLOAD: &str = "fan-in";

/// Room kept free in the collector's mailbox for its own messages (the run request, retries).
const ROOM: u64 = 32;

/// What one fan-in run does.
#[derive(Clone, Debug)]
pub struct FanInParams {
    /// Messages sent in total, split evenly over the senders (1,000,000).
    pub messages: u64,
    /// Senders per shard of the engine (1).
    pub senders_per_shard: u32,
    /// Unacknowledged messages per sender at most; 0 = the collector's mailbox capacity less
    /// some room, divided by the senders.
    pub window: u32,
    /// Sends per sender turn before it yields.
    pub burst: u32,
    /// `Cross`: sender `j` on shard `j % shards`; `Local`: every sender on shard 0.
    pub placement: Placement,
}

impl Default for FanInParams {
    fn default() -> Self {
        Self { messages: 1_000_000, senders_per_shard: 1, window: 0, burst: 256, placement: Placement::Cross }
    }
}

/// What one fan-in run measured.
#[derive(Clone, Debug)]
pub struct FanInOutcome {
    /// Where the senders lived.
    pub placement: Placement,
    /// Senders.
    pub senders: u32,
    /// The window each sender ran with.
    pub window: u32,
    /// Messages counted by the collector (checked).
    pub messages: u64,
    /// Credits the collector sent back.
    pub credits: u64,
    /// From the `Start` broadcast to the last message counted.
    pub elapsed: Duration,
    /// Messages collected per second.
    pub msgs_per_s: f64,
}

/// The collector's answer: (count, sum, credits sent, elapsed), or why the run failed.
type CollectorReport = Result<(u64, u64, u64, Duration), String>;

/// Messages of the [`Collector`].
#[derive(Debug)]
pub enum CollectorMsg {
    /// Start every sender and collect `messages` messages, then reply.
    Run {
        /// Every sender, by index.
        senders: Vec<Addr<SenderMsg>>,
        /// Messages in total.
        messages: u64,
        /// Window of each sender.
        window: u32,
        /// Where the report goes.
        reply: ReplyTo<CollectorReport>,
    },
    /// One message of sender `from`, carrying `value`.
    Add {
        /// The sender's index.
        from: u32,
        /// The value.
        value: u64,
    },
    /// Retry refused `Start`s and credits (sent to itself).
    Retry,
}

/// Messages of a [`Sender`].
#[derive(Debug)]
pub enum SenderMsg {
    /// Send `Add(v)` for `v` in `first..=last` with `window` credits.
    Start {
        /// The first value.
        first: u64,
        /// The last value (`first - 1` for none).
        last: u64,
        /// Initial credit.
        window: u32,
    },
    /// More credit.
    Credit(u32),
    /// Keep sending (sent to itself).
    Continue,
    /// Reply with the messages sent.
    Sent(ReplyTo<u64>),
}

/// Counts and sums the messages, returns credit; the driver of the run.
pub struct Collector {
    senders: Vec<Addr<SenderMsg>>,
    /// Per sender: messages counted since its last credit.
    owed: Vec<u32>,
    /// Per sender: its `Start` is still to be sent (refused once).
    unstarted: Vec<(usize, SenderMsg)>,
    ack_every: u32,
    expected: u64,
    count: u64,
    sum: u64,
    credits: u64,
    retrying: bool,
    started: Option<Instant>,
    reply: Option<ReplyTo<CollectorReport>>,
}

impl Collector {
    fn new() -> Self {
        Self {
            senders: Vec::new(),
            owed: Vec::new(),
            unstarted: Vec::new(),
            ack_every: 1,
            expected: 0,
            count: 0,
            sum: 0,
            credits: 0,
            retrying: false,
            started: None,
            reply: None,
        }
    }

    /// Sends `Credit` to sender `i` if it is owed; false when the send was refused.
    fn credit(&mut self, i: usize, ctx: &mut Ctx<'_>) -> bool {
        let owed = self.owed[i];
        if owed < self.ack_every {
            return true;
        }
        if ctx.send(self.senders[i], SenderMsg::Credit(owed)).is_err() {
            return false;
        }
        self.owed[i] = 0;
        self.credits += 1;
        true
    }

    fn retry_later(&mut self, ctx: &mut Ctx<'_>) {
        if !self.retrying {
            self.retrying = ctx.send(ctx.myself(), CollectorMsg::Retry).is_ok();
            if !self.retrying {
                self.finish(ctx, Err("the collector could not send itself a retry".into()));
            }
        }
    }

    fn start_senders(&mut self, ctx: &mut Ctx<'_>) -> bool {
        for (i, msg) in std::mem::take(&mut self.unstarted) {
            if let Err(e) = ctx.send(self.senders[i], msg) {
                self.unstarted.push((i, e.into_inner()));
            }
        }
        self.unstarted.is_empty()
    }

    fn finish(&mut self, ctx: &mut Ctx<'_>, result: CollectorReport) {
        if let Some(reply) = self.reply.take() {
            ctx.reply(reply, result);
        }
    }
}

impl Agent for Collector {
    type Msg = CollectorMsg;

    #[inline]
    fn handle(&mut self, msg: CollectorMsg, ctx: &mut Ctx<'_>) {
        match msg {
            CollectorMsg::Add { from, value } => {
                self.count += 1;
                self.sum = self.sum.wrapping_add(value);
                if self.count == self.expected {
                    let elapsed = self.started.map_or(Duration::ZERO, |t| t.elapsed());
                    return self.finish(ctx, Ok((self.count, self.sum, self.credits, elapsed)));
                }
                let i = from as usize;
                self.owed[i] += 1;
                if !self.credit(i, ctx) {
                    self.retry_later(ctx);
                }
            }
            CollectorMsg::Retry => {
                self.retrying = false;
                let started = self.start_senders(ctx);
                let mut credited = true;
                for i in 0..self.senders.len() {
                    credited &= self.credit(i, ctx);
                }
                if !started || !credited {
                    self.retry_later(ctx);
                }
            }
            CollectorMsg::Run { senders, messages, window, reply } => {
                let n = senders.len() as u64;
                self.owed = vec![0; senders.len()];
                self.ack_every = (window / 2).max(1);
                (self.expected, self.count, self.sum, self.credits) = (messages, 0, 0, 0);
                self.reply = Some(reply);
                self.started = Some(Instant::now());
                let mut first = 1;
                for j in 0..n {
                    let share = messages / n + u64::from(j < messages % n);
                    self.unstarted.push((j as usize, SenderMsg::Start { first, last: first + share - 1, window }));
                    first += share;
                }
                self.senders = senders;
                if messages == 0 {
                    return self.finish(ctx, Ok((0, 0, 0, Duration::ZERO)));
                }
                if !self.start_senders(ctx) {
                    self.retry_later(ctx);
                }
            }
        }
    }
}

/// Sends its range of values to the collector on credit.
pub struct Sender {
    collector: Addr<CollectorMsg>,
    index: u32,
    burst: u32,
    next: u64,
    last: u64,
    credit: u32,
    sent: u64,
    continuing: bool,
}

impl Sender {
    fn pump(&mut self, ctx: &mut Ctx<'_>) {
        let mut budget = self.burst;
        while budget > 0 && self.credit > 0 && self.next <= self.last {
            let add = CollectorMsg::Add { from: self.index, value: self.next };
            if ctx.send(self.collector, add).is_err() {
                break;
            }
            (self.next, self.credit, self.sent, budget) = (self.next + 1, self.credit - 1, self.sent + 1, budget - 1);
        }
        // Out of burst or refused with credit left: resume next turn (no credit: wait for it).
        if self.credit > 0 && self.next <= self.last && !self.continuing {
            // If even the self-message is refused this sender stalls and the host's ask times out.
            self.continuing = ctx.send(ctx.myself(), SenderMsg::Continue).is_ok();
        }
    }
}

impl Agent for Sender {
    type Msg = SenderMsg;

    #[inline]
    fn handle(&mut self, msg: SenderMsg, ctx: &mut Ctx<'_>) {
        match msg {
            SenderMsg::Credit(k) => self.credit += k,
            SenderMsg::Continue => self.continuing = false,
            SenderMsg::Start { first, last, window } => (self.next, self.last, self.credit) = (first, last, window),
            SenderMsg::Sent(reply) => return ctx.reply(reply, self.sent),
        }
        self.pump(ctx);
    }
}

/// Spawns a collector on shard 0 and the senders on a running engine, runs the fan-in once,
/// checks it (see the module documentation) and stops every agent.
pub fn run(handle: &EngineHandle, params: &FanInParams) -> Result<FanInOutcome, BenchError> {
    let shards = handle.shards();
    params.placement.check(WORKLOAD, shards)?;
    let senders = u64::from(params.senders_per_shard) * shards as u64;
    let budget = u64::from(ShardLimits::default().mailbox_capacity).saturating_sub(ROOM);
    let window = if params.window == 0 { budget / senders.max(1) } else { u64::from(params.window) };
    if senders == 0 || window == 0 || senders * window > budget {
        return Err(BenchError::params(
            WORKLOAD,
            format!("{senders} senders with a window of {window} need at least 1 each and at most {budget} in all"),
        ));
    }
    let (window, burst) = (window as u32, params.burst.max(1));
    let collector = setup::spawn_on(handle, WORKLOAD, 0, Collector::new)?;
    let mut addrs = Vec::with_capacity(senders as usize);
    for j in 0..senders as u32 {
        let shard = params.placement.shard_of(j as usize, shards);
        let sender =
            move || Sender { collector, index: j, burst, next: 1, last: 0, credit: 0, sent: 0, continuing: false };
        addrs.push(setup::spawn_on(handle, WORKLOAD, shard, sender)?);
    }
    let messages = params.messages;
    let given = addrs.clone();
    let timeout = setup::timeout_for(messages, Duration::from_micros(5));
    let report = setup::ask(handle, WORKLOAD, "run the fan-in", collector, timeout, move |reply| CollectorMsg::Run {
        senders: given,
        messages,
        window,
        reply,
    });
    let mut sent = Vec::with_capacity(addrs.len());
    for &a in &addrs {
        sent.push(setup::ask(handle, WORKLOAD, "count sent", a, Duration::from_secs(10), SenderMsg::Sent));
    }
    for &a in &addrs {
        handle.stop(a.id())?;
    }
    handle.stop(collector.id())?;
    let (count, sum, credits, elapsed) = report?.map_err(|why| BenchError::check(WORKLOAD, why))?;
    let expected_sum = (u128::from(messages) * (u128::from(messages) + 1) / 2) as u64;
    if count != messages || sum != expected_sum {
        return Err(BenchError::check(
            WORKLOAD,
            format!("collected {count} messages summing to {sum}; expected {messages} summing to {expected_sum}"),
        ));
    }
    for (j, s) in sent.into_iter().enumerate() {
        let (s, share) = (s?, messages / senders + u64::from((j as u64) < messages % senders));
        if s != share {
            return Err(BenchError::check(WORKLOAD, format!("sender {j} sent {s} messages; expected {share}")));
        }
    }
    Ok(FanInOutcome {
        placement: params.placement,
        senders: senders as u32,
        window,
        messages,
        credits,
        elapsed,
        msgs_per_s: stats::per_second(messages, elapsed),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::setup::EngineSettings;

    #[test]
    fn every_message_is_collected_both_ways() {
        let engine = EngineSettings::test(2).build().unwrap();
        let handle = engine.handle();
        for placement in Placement::BOTH {
            // 3 senders per shard, an uneven split, a window far below the messages.
            let params = FanInParams { messages: 10_001, senders_per_shard: 3, window: 40, burst: 16, placement };
            let out = run(&handle, &params).unwrap();
            assert_eq!((out.messages, out.senders), (10_001, 6));
            assert!(out.credits > 0, "the senders ran on credit");
        }
        let err = run(&handle, &FanInParams { window: 1_000, ..FanInParams::default() }).unwrap_err();
        assert!(err.is_usage(), "{err}");
        setup::shutdown(engine, WORKLOAD).unwrap();
    }

    /// Full size, for figures: `cargo test --release -p nexus-bench --lib fan_in -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn full_size() {
        let engine = EngineSettings::bench(2).build().unwrap();
        let handle = engine.handle();
        for placement in Placement::BOTH {
            let out = run(&handle, &FanInParams { placement, ..FanInParams::default() }).unwrap();
            println!("{WORKLOAD} {}: {out:?}", placement.as_str());
        }
        setup::shutdown(engine, WORKLOAD).unwrap();
    }
}
