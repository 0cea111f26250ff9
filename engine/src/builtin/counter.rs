//! `counter`: adds what it is sent and reports the total.

use crate::agent::{Agent, Ctx};
use crate::ask::ReplyTo;

/// Messages the counter takes.
#[derive(Debug)]
pub enum CounterMsg {
    /// Add to the total.
    Add(u64),
    /// Reply with the total.
    Get(ReplyTo<u64>),
    /// Set the total to zero.
    Reset,
}

/// The counter agent.
#[derive(Debug, Default)]
pub struct Counter {
    /// The running total.
    pub total: u64,
}

impl Agent for Counter {
    type Msg = CounterMsg;

    #[inline]
    fn handle(&mut self, msg: CounterMsg, ctx: &mut Ctx<'_>) {
        match msg {
            CounterMsg::Add(n) => self.total = self.total.wrapping_add(n),
            CounterMsg::Get(reply) => ctx.reply(reply, self.total),
            CounterMsg::Reset => self.total = 0,
        }
    }
}
