//! `echo`: answers every request with what it was sent.

use crate::agent::{Agent, Ctx};
use crate::ask::ReplyTo;

/// Messages the echo agent takes.
#[derive(Debug)]
pub enum EchoMsg {
    /// Reply with `value`.
    Echo {
        /// The value to return.
        value: u64,
        /// Where the answer goes.
        reply: ReplyTo<u64>,
    },
    /// Reply with `data` (heap-allocated payloads are fine, just not free).
    Bytes {
        /// The bytes to return.
        data: Vec<u8>,
        /// Where the answer goes.
        reply: ReplyTo<Vec<u8>>,
    },
}

/// The echo agent; it keeps a count of what it answered.
#[derive(Debug, Default)]
pub struct Echo {
    /// Requests answered.
    pub answered: u64,
}

impl Agent for Echo {
    type Msg = EchoMsg;

    fn handle(&mut self, msg: EchoMsg, ctx: &mut Ctx<'_>) {
        self.answered += 1;
        match msg {
            EchoMsg::Echo { value, reply } => ctx.reply(reply, value),
            EchoMsg::Bytes { data, reply } => ctx.reply(reply, data),
        }
    }
}
