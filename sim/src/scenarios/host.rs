//! `host`: a host thread's asks to agents on every shard, some of which it gives up on.
//!
//! Doublers on every shard answer `Double(n)` with `2n`, at once or after a seeded delay (the
//! answer rides in a timer). The host (the simulator's `World`) asks them `ASKS` times at the
//! start; the `host_timeout` fault gives up on pending asks at random points, as a host ask
//! that times out does.
//!
//! Checks: every answer that arrived is `2n`; an ask ends answered, failed with a typed error
//! (a full mailbox under pressure), or given up; every ask given up before its answer turns its
//! answer into a counted `late_reply` dead letter (one for one without pressure, never more
//! with it); and the accounting (checked by the runner).

use crate::runner::Faults;
use crate::scenario::{Instance, Scenario, World};
use nexus_engine::agent::{Addr, Agent, Ctx};
use nexus_engine::ask::ReplyTo;
use nexus_engine::metrics::DeadLetterReason;
use nexus_engine::shard::HostAsk;
use std::sync::Arc;
use std::time::Duration;

const ASKS: u64 = 60;

/// The scenario.
pub(crate) struct Host;

impl Scenario for Host {
    fn name(&self) -> &'static str {
        "host"
    }

    fn about(&self) -> &'static str {
        "a host's asks to every shard, some given up (host_timeout): each ends answered, failed or late, and counted"
    }

    fn instance(&self, faults: &Faults) -> Box<dyn Instance> {
        Box::new(Run { asks: Vec::new(), pressure: faults.pressure, refused: 0 })
    }
}

struct Run {
    asks: Vec<(u64, Arc<HostAsk<u64>>)>,
    pressure: bool,
    refused: u64,
}

impl Instance for Run {
    fn start(&mut self, world: &mut World) -> Result<(), String> {
        let doublers: Vec<Addr<DoublerMsg>> = (0..world.shards())
            .map(|s| {
                let delay_us = world.rng.below(5_000);
                world.spawn(s, Doubler { delay_us })
            })
            .collect::<Result<_, _>>()?;
        for n in 0..ASKS {
            let to = doublers[world.rng.below(doublers.len() as u64) as usize];
            match world.host_ask(to, move |reply| DoublerMsg::Double(n, reply)) {
                Ok(ask) => self.asks.push((n, ask)),
                Err(_) => self.refused += 1,
            }
        }
        Ok(())
    }

    fn check(&mut self, world: &World) -> Result<(), String> {
        let mut unanswered = 0;
        for (n, ask) in &self.asks {
            match ask.try_take() {
                Some(Ok(v)) if v == 2 * n => {}
                Some(Ok(v)) => return Err(format!("ask {n} was answered {v}, not {}", 2 * n)),
                // Under pressure a full mailbox refuses a request: a typed error, counted.
                Some(Err(_)) if self.pressure => {}
                Some(Err(e)) => return Err(format!("ask {n} failed without pressure: {e}")),
                None => unanswered += 1,
            }
        }
        let late = world.totals().dead(DeadLetterReason::LateReply);
        if late > unanswered || (!self.pressure && late != unanswered) {
            return Err(format!("{unanswered} asks given up before their answer, {late} late replies counted"));
        }
        if self.refused > 0 && !self.pressure {
            return Err(format!("{} host asks refused without pressure", self.refused));
        }
        Ok(())
    }
}

/// Answers `Double(n)` with `2n`, after its own delay (0: at once).
struct Doubler {
    delay_us: u64,
}

enum DoublerMsg {
    Double(u64, ReplyTo<u64>),
    Later(u64, ReplyTo<u64>),
}

impl Agent for Doubler {
    type Msg = DoublerMsg;

    fn handle(&mut self, msg: DoublerMsg, ctx: &mut Ctx<'_>) {
        match msg {
            DoublerMsg::Double(n, reply) if self.delay_us > 0 => {
                ctx.send_after(ctx.myself(), DoublerMsg::Later(n, reply), Duration::from_micros(self.delay_us));
            }
            DoublerMsg::Double(n, reply) | DoublerMsg::Later(n, reply) => ctx.reply(reply, 2 * n),
        }
    }
}
