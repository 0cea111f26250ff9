//! `thread-ring`: a token passed `hops` times around a ring of agents.
//!
//! Agent `i` forwards the token to agent `i + 1` (the last one to agent 0). `local` puts every
//! agent on shard 0; `cross` puts agent `i` on shard `i % shards`, so every hop crosses shards
//! (the ring size is rounded up to a multiple of the shard count so the wrap-around hop
//! crosses too). One token is in flight, so the figure is the latency of one hop, as a rate.
//!
//! The host links the ring with one ask per agent (so each agent knows its successor before
//! the token can reach it), then asks agent 0 to start: it sends `Token(hops - 1)`; an agent
//! receiving `Token(k)` counts the hop and forwards `Token(k - 1)`, or, at `k == 0`, tells
//! agent 0 that the ring is done (a `Done`, not a hop). Agent 0 stops the clock and answers.
//!
//! `hops_per_s` = hops / (start .. done). Checks: the hops counted by all agents sum to exactly
//! `hops`, and no forward failed.

use crate::setup::{self, Placement};
use crate::stats;
use crate::BenchError;
use nexus_engine::agent::{Addr, Agent, Ctx};
use nexus_engine::ask::ReplyTo;
use nexus_engine::engine::EngineHandle;
use std::time::{Duration, Instant};

const WORKLOAD: &str = "thread-ring";

/// What one ring run does.
#[derive(Clone, Debug)]
pub struct ThreadRingParams {
    /// Agents in the ring (rounded up to a multiple of the shards for `cross`).
    pub agents: u32,
    /// Hops the token makes (100,000; `--large`: 1,000,000).
    pub hops: u64,
    /// Where the agents live.
    pub placement: Placement,
}

impl Default for ThreadRingParams {
    fn default() -> Self {
        Self { agents: 100, hops: 100_000, placement: Placement::Cross }
    }
}

/// What one ring run measured.
#[derive(Clone, Debug)]
pub struct ThreadRingOutcome {
    /// Where the agents lived.
    pub placement: Placement,
    /// Agents in the ring (after rounding).
    pub agents: u32,
    /// Hops made (checked).
    pub hops: u64,
    /// From the first send to the `Done` arriving at agent 0.
    pub elapsed: Duration,
    /// Hops per second.
    pub hops_per_s: f64,
}

/// Messages of a [`RingAgent`].
#[derive(Debug)]
pub enum RingMsg {
    /// Set the successor and agent 0 (the leader); acknowledge.
    Link {
        /// The successor.
        next: Addr<RingMsg>,
        /// Agent 0.
        leader: Addr<RingMsg>,
        /// Acknowledgement.
        reply: ReplyTo<()>,
    },
    /// (Agent 0 only) send the token around for `hops` hops and reply with the elapsed time.
    Start {
        /// Hops to make.
        hops: u64,
        /// Where the time goes.
        reply: ReplyTo<Duration>,
    },
    /// The token, with the hops still to go after this one.
    Token(u64),
    /// (To agent 0) the last hop arrived.
    Done,
    /// Reply with (hops counted, forwards that failed).
    Counts(ReplyTo<(u64, u64)>),
}

/// One agent of the ring.
#[derive(Debug, Default)]
pub struct RingAgent {
    next: Option<Addr<RingMsg>>,
    leader: Option<Addr<RingMsg>>,
    hops: u64,
    failed: u64,
    started: Option<Instant>,
    reply: Option<ReplyTo<Duration>>,
}

impl RingAgent {
    fn forward(&mut self, msg: RingMsg, to: Option<Addr<RingMsg>>, ctx: &mut Ctx<'_>) {
        match to {
            Some(to) if ctx.send(to, msg).is_ok() => {}
            _ => self.failed += 1,
        }
    }
}

impl Agent for RingAgent {
    type Msg = RingMsg;

    #[inline]
    fn handle(&mut self, msg: RingMsg, ctx: &mut Ctx<'_>) {
        match msg {
            RingMsg::Token(left) => {
                self.hops += 1;
                if left == 0 {
                    self.forward(RingMsg::Done, self.leader, ctx);
                } else {
                    self.forward(RingMsg::Token(left - 1), self.next, ctx);
                }
            }
            RingMsg::Link { next, leader, reply } => {
                self.next = Some(next);
                self.leader = Some(leader);
                ctx.reply(reply, ());
            }
            RingMsg::Start { hops, reply } => {
                self.reply = Some(reply);
                self.started = Some(Instant::now());
                if hops == 0 {
                    self.forward(RingMsg::Done, Some(ctx.myself()), ctx);
                } else {
                    self.forward(RingMsg::Token(hops - 1), self.next, ctx);
                }
            }
            RingMsg::Done => {
                let elapsed = self.started.map_or(Duration::ZERO, |t| t.elapsed());
                if let Some(reply) = self.reply.take() {
                    ctx.reply(reply, elapsed);
                }
            }
            RingMsg::Counts(reply) => ctx.reply(reply, (self.hops, self.failed)),
        }
    }
}

/// Spawns and links a ring on a running engine, runs `params` once, checks, stops the ring.
pub fn run(handle: &EngineHandle, params: &ThreadRingParams) -> Result<ThreadRingOutcome, BenchError> {
    let shards = handle.shards();
    params.placement.check(WORKLOAD, shards)?;
    if params.agents == 0 {
        return Err(BenchError::params(WORKLOAD, "the ring needs at least one agent"));
    }
    let agents = match params.placement {
        Placement::Local => params.agents,
        Placement::Cross => params.agents.div_ceil(shards as u32) * shards as u32,
    };
    let mut ring = Vec::with_capacity(agents as usize);
    for i in 0..agents as usize {
        let shard = params.placement.shard_of(i, shards);
        ring.push(setup::spawn_on(handle, WORKLOAD, shard, RingAgent::default)?);
    }
    let leader = ring[0];
    let link_timeout = Duration::from_secs(10);
    for (i, &agent) in ring.iter().enumerate() {
        let next = ring[(i + 1) % ring.len()];
        setup::ask(handle, WORKLOAD, "link the ring", agent, link_timeout, |reply| RingMsg::Link {
            next,
            leader,
            reply,
        })?;
    }
    let hops = params.hops;
    let elapsed = setup::ask(
        handle,
        WORKLOAD,
        "run the ring",
        leader,
        setup::timeout_for(hops, Duration::from_micros(100)),
        |reply| RingMsg::Start { hops, reply },
    );
    let (mut counted, mut failed) = (0u64, 0u64);
    for &agent in &ring {
        let (h, f) = setup::ask(handle, WORKLOAD, "count hops", agent, link_timeout, RingMsg::Counts)?;
        counted += h;
        failed += f;
    }
    for &agent in &ring {
        handle.stop(agent.id())?;
    }
    if failed > 0 || counted != hops {
        return Err(BenchError::check(
            WORKLOAD,
            format!("{counted} hops counted, {failed} forwards failed; expected {hops} and 0"),
        ));
    }
    let elapsed = elapsed?;
    Ok(ThreadRingOutcome {
        placement: params.placement,
        agents,
        hops,
        elapsed,
        hops_per_s: stats::per_second(hops, elapsed),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::setup::EngineSettings;

    #[test]
    fn the_token_makes_every_hop_both_ways() {
        let engine = EngineSettings::test(2).build().unwrap();
        let handle = engine.handle();
        for placement in Placement::BOTH {
            let out = run(&handle, &ThreadRingParams { agents: 9, hops: 100, placement }).unwrap();
            assert_eq!(out.hops, 100);
            let expected_agents = if placement == Placement::Cross { 10 } else { 9 };
            assert_eq!(out.agents, expected_agents, "cross rounds the ring up to a multiple of the shards");
        }
        setup::shutdown(engine, WORKLOAD).unwrap();
    }
}
