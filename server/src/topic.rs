//! Topic agents: one per pub/sub channel with subscribers, on the shard that owns the channel.
//!
//! A topic keeps its subscribers grouped by the shard whose ingress agent serves their
//! connections. `PUBLISH` sends one `Deliver` message per subscribing shard (not one per
//! subscriber) and answers how many subscribers it reached. The partition agent creates a topic
//! on the first subscription and forwards every subscribe, unsubscribe and publish for its
//! channel to it; when the last subscriber leaves, the topic tells the partition, which stops it
//! if nobody subscribed meanwhile.
//!
//! Invariant: a subscriber is listed at most once (the ingress agent only forwards a subscribe
//! for a channel its connection is not subscribed to, and an unsubscribe for one it is).

use crate::directory::{Directory, Subscriber};
use crate::front::ConnId;
use crate::ingress::IngressMsg;
use crate::partition::{PartMsg, PartOp};
use crate::resp::Value;
use bytes::Bytes;
use nexus_engine::agent::{Addr, Agent, Ctx};
use nexus_engine::ask::ReplyTo;
use std::sync::Arc;

/// What a topic receives.
pub enum TopicMsg {
    /// Add a subscriber; answers `+OK` once it is listed.
    Subscribe(Subscriber, ReplyTo<Value>),
    /// Remove a subscriber; answers `+OK` when asked.
    Unsubscribe(Subscriber, Option<ReplyTo<Value>>),
    /// Deliver a message; answers the number of subscribers reached.
    Publish(Bytes, ReplyTo<Value>),
}

/// See the module documentation.
pub struct Topic {
    channel: Bytes,
    /// Subscribers by shard.
    by_shard: Vec<Vec<ConnId>>,
    count: usize,
    directory: Arc<Directory>,
    partition: Addr<PartMsg>,
}

impl Topic {
    /// A topic for `channel` with no subscriber yet.
    pub fn new(channel: Bytes, directory: Arc<Directory>, partition: Addr<PartMsg>) -> Self {
        let shards = directory.shards();
        Self { channel, by_shard: vec![Vec::new(); shards], count: 0, directory, partition }
    }
}

impl Agent for Topic {
    type Msg = TopicMsg;

    fn handle(&mut self, msg: TopicMsg, ctx: &mut Ctx<'_>) {
        match msg {
            TopicMsg::Subscribe(sub, reply) => {
                if let Some(list) = self.by_shard.get_mut(sub.shard) {
                    if !list.contains(&sub.conn) {
                        list.push(sub.conn);
                        self.count += 1;
                    }
                }
                ctx.reply(reply, Value::Ok);
            }
            TopicMsg::Unsubscribe(sub, reply) => {
                if let Some(list) = self.by_shard.get_mut(sub.shard) {
                    if let Some(pos) = list.iter().position(|c| *c == sub.conn) {
                        list.swap_remove(pos);
                        self.count -= 1;
                    }
                }
                if let Some(reply) = reply {
                    ctx.reply(reply, Value::Ok);
                }
                if self.count == 0 {
                    let _ =
                        ctx.send(self.partition, PartMsg { op: PartOp::TopicIdle(self.channel.clone()), reply: None });
                }
            }
            TopicMsg::Publish(message, reply) => {
                let mut reached = 0usize;
                for (shard, conns) in self.by_shard.iter().enumerate() {
                    if conns.is_empty() {
                        continue;
                    }
                    let Some(ingress) = self.directory.ingress(shard) else { continue };
                    let deliver = IngressMsg::Deliver {
                        channel: self.channel.clone(),
                        message: message.clone(),
                        conns: conns.clone(),
                    };
                    // A full way to that shard loses this delivery: counted as a dead letter by
                    // the engine (rejected_full), and the count below leaves those out.
                    if ctx.send(ingress, deliver).is_ok() {
                        reached += conns.len();
                    }
                }
                ctx.reply(reply, Value::Int(reached as i64));
            }
        }
    }
}
