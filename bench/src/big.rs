//! `big`: Savina's Big. Many agents ping random neighbours; each ping is answered by a pong.
//!
//! The [`Sink`] (agent 0, on shard 0) is the driver. The host asks it to run; it starts the
//! clock and sends `Start` (with every agent's address) to each [`BigAgent`]. An agent sends a
//! `Ping` to a neighbour drawn at random among the others (xorshift, seeded by its index), and
//! its next ping only when the pong of the previous one returns; every agent answers every ping
//! it receives with a `Pong`. After `pings` pongs an agent reports (pings sent, pongs received)
//! to the sink, which stops the clock when every agent has reported. The host then asks every
//! agent how many pings it answered (after the last report nothing is in flight).
//!
//! Placement: `local` puts everything on shard 0; `cross` puts agent `k` (the sink is agent 0,
//! agent `i` is agent `i + 1`) on shard `k % shards`.
//!
//! Timed: the `Start` broadcast to the last report. `msgs_per_s` = (pings + pongs) / that time.
//! Checks: every agent reported exactly once with `pings` pings sent and `pings` pongs received,
//! and the pings answered over all agents sum to `agents * pings`.

use crate::setup::{self, Placement};
use crate::stats;
use crate::BenchError;
use nexus_engine::agent::{Addr, Agent, Ctx};
use nexus_engine::ask::ReplyTo;
use nexus_engine::engine::EngineHandle;
use nexus_engine::shard::ShardLimits;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

const WORKLOAD: &str = "big";

/// What one big run does.
#[derive(Clone, Debug)]
pub struct BigParams {
    /// Agents (Savina: 120).
    pub agents: u32,
    /// Pings each agent sends (Savina: 20,000).
    pub pings: u64,
    /// Where the agents live.
    pub placement: Placement,
}

impl Default for BigParams {
    fn default() -> Self {
        Self { agents: 120, pings: 20_000, placement: Placement::Cross }
    }
}

/// What one big run measured.
#[derive(Clone, Debug)]
pub struct BigOutcome {
    /// Where the agents lived.
    pub placement: Placement,
    /// Agents.
    pub agents: u32,
    /// Pings sent over all agents (checked), each answered by one pong.
    pub pings: u64,
    /// From the `Start` broadcast to the last report.
    pub elapsed: Duration,
    /// Pings plus pongs per second.
    pub msgs_per_s: f64,
}

/// The sink's answer to the host: elapsed, reports, agents whose (sent, pongs) were not
/// (`pings`, `pings`), and the total pings sent; or why the run failed.
type SinkReport = Result<(Duration, u64, u64, u64), String>;

/// Messages of the [`Sink`].
#[derive(Debug)]
pub enum SinkMsg {
    /// Start every agent (each sends `pings` pings), then reply.
    Run {
        /// Every agent, in index order.
        agents: Arc<[Addr<BigMsg>]>,
        /// Pings per agent.
        pings: u64,
        /// Where the report goes.
        reply: ReplyTo<SinkReport>,
    },
    /// An agent is done: (pings sent, pongs received).
    Done(u64, u64),
    /// Resend what came back `Full` (sent to itself).
    Retry,
}

/// Messages of a [`BigAgent`].
#[derive(Debug)]
pub enum BigMsg {
    /// Send `pings` pings to random neighbours among `peers`, then report to the sink.
    Start {
        /// Every agent (this one included, never pinged).
        peers: Arc<[Addr<BigMsg>]>,
        /// Pings to send.
        pings: u64,
    },
    /// A ping: answer `from` with a pong.
    Ping {
        /// Who pinged.
        from: Addr<BigMsg>,
    },
    /// The answer to this agent's ping.
    Pong,
    /// Reply with the pings this agent answered.
    Answered(ReplyTo<u64>),
    /// Resend what came back `Full` (sent to itself).
    Retry,
}

/// Sends `retry` to the running agent (a yield until its next turn).
fn retry_later<M: Send + 'static>(ctx: &mut Ctx<'_>, retry: M) -> bool {
    ctx.send(ctx.myself::<M>(), retry).is_ok()
}

/// Counts the agents' reports; the driver of the run.
pub struct Sink {
    pings: u64,
    agents: u64,
    reports: u64,
    wrong: u64,
    sent: u64,
    pending: VecDeque<Addr<BigMsg>>,
    start: Option<(Arc<[Addr<BigMsg>]>, Instant)>,
    reply: Option<ReplyTo<SinkReport>>,
}

impl Sink {
    fn new() -> Self {
        Self { pings: 0, agents: 0, reports: 0, wrong: 0, sent: 0, pending: VecDeque::new(), start: None, reply: None }
    }

    /// Sends `Start` to the agents not started yet; retries the rest on the next turn.
    fn start_agents(&mut self, ctx: &mut Ctx<'_>) {
        let Some((peers, _)) = &self.start else { return };
        while let Some(to) = self.pending.pop_front() {
            if ctx.send(to, BigMsg::Start { peers: peers.clone(), pings: self.pings }).is_err() {
                self.pending.push_front(to);
                if !retry_later(ctx, SinkMsg::Retry) {
                    if let Some(reply) = self.reply.take() {
                        ctx.reply(reply, Err("the sink could not send itself a retry".into()));
                    }
                }
                return;
            }
        }
    }
}

impl Agent for Sink {
    type Msg = SinkMsg;

    fn handle(&mut self, msg: SinkMsg, ctx: &mut Ctx<'_>) {
        match msg {
            SinkMsg::Done(sent, pongs) => {
                self.reports += 1;
                self.sent += sent;
                if sent != self.pings || pongs != self.pings {
                    self.wrong += 1;
                }
                if self.reports == self.agents {
                    let elapsed = self.start.as_ref().map_or(Duration::ZERO, |(_, t)| t.elapsed());
                    if let Some(reply) = self.reply.take() {
                        ctx.reply(reply, Ok((elapsed, self.reports, self.wrong, self.sent)));
                    }
                }
            }
            SinkMsg::Run { agents, pings, reply } => {
                self.pings = pings;
                self.agents = agents.len() as u64;
                self.reply = Some(reply);
                self.pending = agents.iter().copied().collect();
                self.start = Some((agents, Instant::now()));
                self.start_agents(ctx);
            }
            SinkMsg::Retry => self.start_agents(ctx),
        }
    }
}

/// One agent of the run.
pub struct BigAgent {
    sink: Addr<SinkMsg>,
    seed: u64,
    peers: Arc<[Addr<BigMsg>]>,
    target: u64,
    sent: u64,
    pongs: u64,
    answered: u64,
    /// Sends not made yet (refused ones are resent in order on a later turn).
    out: VecDeque<(Addr<BigMsg>, BigMsg)>,
    report: bool,
    retrying: bool,
}

impl BigAgent {
    fn new(sink: Addr<SinkMsg>, index: u32) -> Self {
        Self {
            sink,
            seed: 0x9E37_79B9_7F4A_7C15 ^ (u64::from(index) + 1).wrapping_mul(0xD1B5_4A32_D192_ED03),
            peers: Arc::from(Vec::new()),
            target: 0,
            sent: 0,
            pongs: 0,
            answered: 0,
            out: VecDeque::new(),
            report: false,
            retrying: false,
        }
    }

    /// xorshift64*: the next random number.
    fn next_random(&mut self) -> u64 {
        self.seed ^= self.seed >> 12;
        self.seed ^= self.seed << 25;
        self.seed ^= self.seed >> 27;
        self.seed.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn ping(&mut self, ctx: &mut Ctx<'_>) {
        let me = ctx.myself();
        let n = self.peers.len() as u64;
        let pick = (self.next_random() % n.max(1)) as usize;
        let Some(mut to) = self.peers.get(pick).copied() else { return };
        if to == me {
            // Never ourselves: take the next agent in the ring (there are at least two).
            let i = self.peers.iter().position(|&p| p == me).unwrap_or(0);
            to = self.peers[(i + 1) % self.peers.len()];
        }
        self.sent += 1;
        self.out.push_back((to, BigMsg::Ping { from: me }));
    }

    /// Sends the queued messages in order; stops at the first refusal (kept for a retry).
    fn flush(&mut self, ctx: &mut Ctx<'_>) {
        while let Some((to, msg)) = self.out.pop_front() {
            if let Err(e) = ctx.send(to, msg) {
                self.out.push_front((to, e.into_inner()));
                break;
            }
        }
        if self.report && self.out.is_empty() {
            match ctx.send(self.sink, SinkMsg::Done(self.sent, self.pongs)) {
                Ok(()) => self.report = false,
                Err(_) if !self.retrying => self.retrying = retry_later(ctx, BigMsg::Retry),
                Err(_) => {}
            }
        }
        if !self.out.is_empty() && !self.retrying {
            // If even the self-message is refused the run stalls and the host's ask times out.
            self.retrying = retry_later(ctx, BigMsg::Retry);
        }
    }
}

impl Agent for BigAgent {
    type Msg = BigMsg;

    fn handle(&mut self, msg: BigMsg, ctx: &mut Ctx<'_>) {
        match msg {
            BigMsg::Ping { from } => {
                self.answered += 1;
                self.out.push_back((from, BigMsg::Pong));
            }
            BigMsg::Pong => {
                self.pongs += 1;
                if self.sent < self.target {
                    self.ping(ctx);
                } else {
                    self.report = true;
                }
            }
            BigMsg::Start { peers, pings } => {
                self.peers = peers;
                self.target = pings;
                if pings == 0 {
                    self.report = true;
                } else {
                    self.ping(ctx);
                }
            }
            BigMsg::Answered(reply) => ctx.reply(reply, self.answered),
            BigMsg::Retry => self.retrying = false,
        }
        self.flush(ctx);
    }
}

/// Spawns a sink and `params.agents` agents on a running engine, runs the pings once, checks
/// them (see the module documentation) and stops every agent.
pub fn run(handle: &EngineHandle, params: &BigParams) -> Result<BigOutcome, BenchError> {
    let shards = handle.shards();
    params.placement.check(WORKLOAD, shards)?;
    // An agent's mailbox holds at most one ping from every other agent, its pong and a report.
    let room = u64::from(ShardLimits::default().mailbox_capacity).saturating_sub(16);
    if params.agents < 2 || u64::from(params.agents) > room {
        return Err(BenchError::params(WORKLOAD, format!("agents must be within 2..={room}")));
    }
    let shard_of = |k: usize| params.placement.shard_of(k, shards);
    let sink = setup::spawn_on(handle, WORKLOAD, shard_of(0), Sink::new)?;
    let mut agents = Vec::with_capacity(params.agents as usize);
    for i in 0..params.agents {
        agents.push(setup::spawn_on(handle, WORKLOAD, shard_of(i as usize + 1), move || BigAgent::new(sink, i))?);
    }
    let agents: Arc<[Addr<BigMsg>]> = agents.into();
    let pings = params.pings;
    let n = u64::from(params.agents);
    let all = agents.clone();
    let report = setup::ask(
        handle,
        WORKLOAD,
        "run the pings",
        sink,
        setup::timeout_for(n * pings, Duration::from_micros(5)),
        move |reply| SinkMsg::Run { agents: all, pings, reply },
    );
    let mut answered = 0;
    let mut asked = Ok(());
    for &agent in agents.iter() {
        match setup::ask(handle, WORKLOAD, "count answered pings", agent, Duration::from_secs(10), BigMsg::Answered) {
            Ok(a) => answered += a,
            Err(e) => asked = Err(e),
        }
    }
    for &agent in agents.iter() {
        handle.stop(agent.id())?;
    }
    handle.stop(sink.id())?;
    let (elapsed, reports, wrong, sent) = report?.map_err(|why| BenchError::check(WORKLOAD, why))?;
    asked?;
    if reports != n || wrong != 0 || sent != n * pings || answered != n * pings {
        return Err(BenchError::check(
            WORKLOAD,
            format!(
                "{reports} agents reported, {wrong} of them without {pings} pings and pongs; {sent} pings sent, \
                 {answered} answered; expected {n} reports and {} pings",
                n * pings
            ),
        ));
    }
    Ok(BigOutcome {
        placement: params.placement,
        agents: params.agents,
        pings: sent,
        elapsed,
        msgs_per_s: stats::per_second(2 * sent, elapsed),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::setup::EngineSettings;

    #[test]
    fn every_ping_is_answered_both_ways() {
        let engine = EngineSettings::test(2).build().unwrap();
        let handle = engine.handle();
        for placement in Placement::BOTH {
            let out = run(&handle, &BigParams { agents: 9, pings: 300, placement }).unwrap();
            assert_eq!(out.pings, 2_700);
        }
        setup::shutdown(engine, WORKLOAD).unwrap();
    }

    /// Full Savina size, for figures: `cargo test --release -p nexus-bench --lib big -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn full_size() {
        let engine = EngineSettings::bench(2).build().unwrap();
        let handle = engine.handle();
        for placement in Placement::BOTH {
            let out = run(&handle, &BigParams { placement, ..BigParams::default() }).unwrap();
            println!("{WORKLOAD} {}: {out:?}", placement.as_str());
        }
        setup::shutdown(engine, WORKLOAD).unwrap();
    }
}
