//! `kv`: a key-value partition agent (string keys, byte values).

use crate::agent::{Agent, Ctx};
use crate::ask::ReplyTo;
use std::collections::HashMap;

/// Messages the kv agent takes.
#[derive(Debug)]
pub enum KvMsg {
    /// Store `value` under `key`; the reply (if asked) is the previous value.
    Set {
        /// The key.
        key: String,
        /// The value.
        value: Vec<u8>,
        /// Optional acknowledgement with the previous value.
        reply: Option<ReplyTo<Option<Vec<u8>>>>,
    },
    /// Reply with the value under `key`.
    Get {
        /// The key.
        key: String,
        /// Where the answer goes.
        reply: ReplyTo<Option<Vec<u8>>>,
    },
    /// Remove `key`; the reply says whether it existed.
    Del {
        /// The key.
        key: String,
        /// Optional acknowledgement.
        reply: Option<ReplyTo<bool>>,
    },
    /// Reply with the number of keys.
    Len(ReplyTo<usize>),
}

/// The kv agent.
#[derive(Debug, Default)]
pub struct Kv {
    map: HashMap<String, Vec<u8>>,
}

impl Agent for Kv {
    type Msg = KvMsg;

    fn handle(&mut self, msg: KvMsg, ctx: &mut Ctx<'_>) {
        match msg {
            KvMsg::Set { key, value, reply } => {
                let old = self.map.insert(key, value);
                if let Some(r) = reply {
                    ctx.reply(r, old);
                }
            }
            KvMsg::Get { key, reply } => ctx.reply(reply, self.map.get(&key).cloned()),
            KvMsg::Del { key, reply } => {
                let existed = self.map.remove(&key).is_some();
                if let Some(r) = reply {
                    ctx.reply(r, existed);
                }
            }
            KvMsg::Len(reply) => ctx.reply(reply, self.map.len()),
        }
    }
}
