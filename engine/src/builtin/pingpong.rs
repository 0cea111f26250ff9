//! `pingpong`: two agents that bounce a ball, for the self-driving load of `nexus run`.

use crate::agent::{Addr, Agent, Ctx};
use crate::ask::ReplyTo;

/// Messages a ping-pong player takes.
#[derive(Debug)]
pub enum PingPongMsg {
    /// Meet your partner.
    Partner(Addr<PingPongMsg>),
    /// Serve `balls` balls to the partner.
    Serve(u32),
    /// A ball; `hits` counts the exchanges so far.
    Ball(u64),
    /// Stop returning balls.
    Halt,
    /// Reply with the number of balls this player hit.
    Hits(ReplyTo<u64>),
}

/// A player: returns every ball to its partner until halted.
///
/// A ball can arrive before the player has met its partner: `Partner` comes from whoever set
/// the game up (a host, through the inject queue) and the first ball from the partner's shard
/// (over a ring), and the two ways are not ordered with each other. Such a ball is held and
/// returned as soon as the partner is known, never dropped.
#[derive(Debug, Default)]
pub struct PingPong {
    partner: Option<Addr<PingPongMsg>>,
    hits: u64,
    halted: bool,
    /// Balls that arrived before `Partner` (their hit counts).
    held: Vec<u64>,
}

impl Agent for PingPong {
    type Msg = PingPongMsg;

    #[inline]
    fn handle(&mut self, msg: PingPongMsg, ctx: &mut Ctx<'_>) {
        match msg {
            PingPongMsg::Partner(p) => {
                self.partner = Some(p);
                for n in std::mem::take(&mut self.held) {
                    if !self.halted {
                        let _ = ctx.send(p, PingPongMsg::Ball(n + 1));
                    }
                }
            }
            PingPongMsg::Serve(n) => {
                if let Some(p) = self.partner {
                    for _ in 0..n {
                        // A full mailbox hands the ball back: serve fewer, lose none silently.
                        if ctx.send(p, PingPongMsg::Ball(0)).is_err() {
                            break;
                        }
                    }
                }
            }
            PingPongMsg::Ball(n) => {
                self.hits += 1;
                match (self.partner, self.halted) {
                    (Some(p), false) => {
                        let _ = ctx.send(p, PingPongMsg::Ball(n + 1));
                    }
                    (None, false) => self.held.push(n),
                    (_, true) => {}
                }
            }
            PingPongMsg::Halt => self.halted = true,
            PingPongMsg::Hits(reply) => ctx.reply(reply, self.hits),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shard::test_support::{cluster, settle};

    /// The race the threads-executor test met under load: the first ball reaches the second
    /// player before its `Partner`. The ball is held, and the volley goes on once it arrives.
    #[test]
    fn a_ball_that_arrives_before_the_partner_is_held_and_returned() {
        let mut shards = cluster(2);
        let a = shards[0].spawn(PingPong::default()).unwrap();
        let b = shards[1].spawn(PingPong::default()).unwrap();
        shards[0].inject(a, PingPongMsg::Partner(b)).unwrap();
        shards[0].inject(a, PingPongMsg::Serve(3)).unwrap();
        // Shard 0 serves; shard 1 takes the balls before it knows its partner.
        settle(&mut shards);
        shards[1].inject(b, PingPongMsg::Partner(a)).unwrap();
        for _ in 0..20 {
            shards[0].pass();
            shards[1].pass();
        }
        shards[0].inject(a, PingPongMsg::Halt).unwrap();
        shards[1].inject(b, PingPongMsg::Halt).unwrap();
        settle(&mut shards);
        let hits = shards[1].stats().counters.delivered;
        assert!(hits > 10, "the volley went on after the partner arrived: {hits} deliveries");
    }
}
