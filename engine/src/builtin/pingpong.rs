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
#[derive(Debug, Default)]
pub struct PingPong {
    partner: Option<Addr<PingPongMsg>>,
    hits: u64,
    halted: bool,
}

impl Agent for PingPong {
    type Msg = PingPongMsg;

    #[inline]
    fn handle(&mut self, msg: PingPongMsg, ctx: &mut Ctx<'_>) {
        match msg {
            PingPongMsg::Partner(p) => self.partner = Some(p),
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
                if let (Some(p), false) = (self.partner, self.halted) {
                    let _ = ctx.send(p, PingPongMsg::Ball(n + 1));
                }
            }
            PingPongMsg::Halt => self.halted = true,
            PingPongMsg::Hits(reply) => ctx.reply(reply, self.hits),
        }
    }
}
