//! The ingress agent: one per shard, the bridge from that shard's connections to the agents.
//!
//! It drains the front's job queue (see [`crate::front`]), turns each request into operations
//! on the partition agents that own its keys, names or channels (typed asks, local or over the
//! mesh; the command families live in `command`), and, when an answer comes back as an
//! [`IngressMsg::Answered`] or [`IngressMsg::Gathered`], fills the connection's reply slot and
//! wakes its task. A multi-key command whose keys sit on several shards becomes one
//! scatter/gather (`ctx.ask_all`) whose parts `combine` assembles in the order of the keys. It
//! also receives the pub/sub deliveries for its shard's subscribers from the topic agents.
//!
//! The agent keeps no table of requests: what finishing a request needs (the connection, the
//! slot, how to combine the parts, how long it waited) travels inside the ask's closure, and
//! every failure is turned into its RESP error there (`ask_error`, `part_error`).
//!
//! Invariants: every request handed over gets exactly one answer in its slot (a value, or an
//! error such as `-TIMEOUT` when an ask fails); a gather answers once all of its asks did.

mod combine;
mod command;
mod keyspace;
mod options;
pub mod plan;

use crate::command_trace::CommandTrace;
use crate::directory::{Directory, Subscriber};
use crate::front::{ConnId, Front, Job, Slot};
use crate::kinds::Kinds;
use crate::partition::{PartMsg, PartOp};
use crate::resp::{Protocol, Value};
use crate::stats::ShardServerStats;
use bytes::Bytes;
use combine::Combine;
use nexus_engine::agent::{Agent, Ctx};
use nexus_engine::ask::AskError;
use nexus_engine::trace::{Span, TraceContext};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// How long a command waits for its owning shard before it is answered `-TIMEOUT`.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
/// Jobs handled per turn before the agent yields to the rest of the shard.
const JOBS_PER_TURN: usize = 512;

/// What the ingress agent receives as messages.
pub enum IngressMsg {
    /// The front has jobs.
    Poke,
    /// A topic's message for some of this shard's connections.
    Deliver {
        /// The channel.
        channel: Bytes,
        /// The message.
        message: Bytes,
        /// The subscribed connections.
        conns: Vec<ConnId>,
    },
    /// The whole answer of a request that one partition answered (or the RESP error for why
    /// its ask failed), for slot `seq` of connection `conn`.
    Answered {
        /// The connection that made the request.
        conn: ConnId,
        /// The request's slot on that connection.
        seq: u64,
        /// The answer.
        value: Value,
    },
    /// Every part of a gather settled; see [`Gathered`].
    Gathered(Gathered),
    /// The answer to a batch of single-key operations (an array, one answer per slot, or the
    /// RESP error for why the ask failed, for every slot).
    Batched {
        /// The connection that made the requests.
        conn: ConnId,
        /// The requests' slots, in order.
        seqs: Vec<u64>,
        /// The answer.
        value: Value,
    },
}

/// A gather whose parts all settled, ready to be combined into one answer. Built only by the
/// ingress agent's own scatter/gather.
pub struct Gathered {
    conn: ConnId,
    seq: u64,
    combine: Combine,
    /// One value per part, in the order of the parts; a failed part is its RESP error.
    parts: Vec<Value>,
}

/// Where a request's answer goes: slot `seq` of connection `conn`.
#[derive(Clone, Copy)]
struct Request {
    conn: ConnId,
    seq: u64,
}

/// See the module documentation.
pub struct Ingress {
    shard: usize,
    front: Rc<Front>,
    directory: Arc<Directory>,
    kinds: Arc<Kinds>,
    started: std::time::Instant,
    info: Rc<InfoContext>,
}

/// Static facts INFO reports.
pub struct InfoContext {
    /// `executor` name.
    pub executor: &'static str,
    /// The RESP port.
    pub port: u16,
}

/// The answer to a request whose owning shard has no partition yet.
fn loading() -> Value {
    Value::error("LOADING the server is still starting")
}

/// The answer to a request that could not even be queued towards its shard.
fn busy() -> Value {
    Value::error("BUSY the way to the key's shard is full; retry later")
}

/// The RESP error for an ask that was sent but failed; `timeout` is how long it waited.
fn ask_error(error: AskError, timeout: Duration) -> Value {
    match error {
        AskError::Timeout => Value::error(format!("TIMEOUT no answer within {} ms", timeout.as_millis())),
        AskError::ShuttingDown => Value::error("ERR the server is shutting down"),
        AskError::WrongReplyType => Value::error("ERR internal: an answer of the wrong type"),
        e => Value::error(format!("ERR {e}")),
    }
}

/// The RESP error for a failed part of a gather. `ask_all` files a part it could not queue as
/// `Overloaded`: answered `BUSY`, as a single ask refused at sending is.
fn part_error(error: AskError) -> Value {
    match error {
        AskError::Overloaded(_) => busy(),
        e => ask_error(e, COMMAND_TIMEOUT),
    }
}

impl Ingress {
    /// The ingress agent of shard `shard`.
    pub fn new(
        shard: usize,
        front: Rc<Front>,
        directory: Arc<Directory>,
        kinds: Arc<Kinds>,
        info: Rc<InfoContext>,
    ) -> Self {
        Self { shard, front, directory, kinds, started: std::time::Instant::now(), info }
    }

    fn stats(&self) -> &ShardServerStats {
        self.directory.shard_stats(self.shard)
    }

    /// Fills the request's slot and wakes its connection.
    fn answer(&self, req: Request, slot: Slot) {
        self.front.with(req.conn, |c| {
            if c.answer(req.seq, slot) {
                c.wake();
            }
        });
    }

    /// Answers the request with one value.
    fn done(&self, req: Request, value: Value) {
        self.answer(req, Slot::One(value));
    }

    fn protocol(&self, conn: ConnId) -> Protocol {
        self.front.with(conn, |c| c.protocol).unwrap_or_default()
    }

    /// The shard that owns `key`: the registry's keyed hash under the process key, the same
    /// on every shard and for agent names, so a client cannot steer keys onto one shard.
    fn owner(&self, key: &[u8]) -> usize {
        plan::owner(key, self.directory.shards())
    }

    /// One op per shard, over every shard.
    fn everywhere(&self, make: impl Fn() -> PartOp) -> Vec<(usize, PartOp)> {
        (0..self.directory.shards()).map(|s| (s, make())).collect()
    }

    /// Asks shard `shard`'s partition for the whole answer of a request, waiting at most
    /// `timeout`; a failure to send answers the request at once.
    fn ask_one(&mut self, req: Request, shard: usize, op: PartOp, timeout: Duration, ctx: &mut Ctx<'_>) {
        let Some(part) = self.directory.partition(shard) else { return self.done(req, loading()) };
        let Request { conn, seq } = req;
        let sent = ctx.ask(part, |reply| PartMsg { op, reply: Some(reply) }).timeout(timeout).then(
            move |result: Result<Value, AskError>| {
                let value = result.unwrap_or_else(|e| ask_error(e, timeout));
                IngressMsg::Answered { conn, seq, value }
            },
        );
        if sent.is_err() {
            self.done(req, busy());
        }
    }

    /// [`Self::ask_one`] with the command timeout.
    fn one(&mut self, req: Request, shard: usize, op: PartOp, ctx: &mut Ctx<'_>) {
        self.ask_one(req, shard, op, COMMAND_TIMEOUT, ctx);
    }

    /// Scatters `ops` (one per shard) and gathers their answers into one, made by `combine`.
    /// A shard without a partition yet is a `LOADING` part; no parts answer at once.
    fn gather(&mut self, req: Request, ops: Vec<(usize, PartOp)>, combine: Combine, ctx: &mut Ctx<'_>) {
        if ops.is_empty() {
            let slot = self.combine(combine, Vec::new());
            return self.answer(req, slot);
        }
        // Per part: the answer it already has (no partition), or `None` when it is asked.
        let mut known: Vec<Option<Value>> = Vec::with_capacity(ops.len());
        let mut requests = Vec::with_capacity(ops.len());
        for (shard, op) in ops {
            match self.directory.partition(shard) {
                Some(part) => {
                    known.push(None);
                    requests.push((part, op));
                }
                None => known.push(Some(loading())),
            }
        }
        let Request { conn, seq } = req;
        ctx.ask_all(requests.into_iter().map(|(part, op)| (part, move |reply| PartMsg { op, reply: Some(reply) })))
            .timeout(COMMAND_TIMEOUT)
            .then(move |answers: Vec<Result<Value, AskError>>| {
                let mut answers = answers.into_iter();
                let parts = known
                    .into_iter()
                    .map(|known| {
                        known.unwrap_or_else(|| match answers.next() {
                            Some(answer) => answer.unwrap_or_else(part_error),
                            None => Value::Nil,
                        })
                    })
                    .collect();
                IngressMsg::Gathered(Gathered { conn, seq, combine, parts })
            });
    }

    /// Asks shard `shard`'s partition for a batch of one connection's single-key operations.
    fn batch(&mut self, conn: ConnId, shard: usize, seqs: Vec<u64>, ops: Vec<PartOp>, ctx: &mut Ctx<'_>) {
        let Some(part) = self.directory.partition(shard) else {
            return self.batched(conn, seqs, loading());
        };
        let op = PartOp::Batch(ops);
        // The closure is dropped when the ask is refused: the slots to answer BUSY stay here.
        let refused_slots = seqs.clone();
        let sent = ctx.ask(part, |reply| PartMsg { op, reply: Some(reply) }).timeout(COMMAND_TIMEOUT).then(
            move |result: Result<Value, AskError>| {
                let value = result.unwrap_or_else(|e| ask_error(e, COMMAND_TIMEOUT));
                IngressMsg::Batched { conn, seqs, value }
            },
        );
        if sent.is_err() {
            self.batched(conn, refused_slots, busy());
        }
    }

    /// Spreads a batch's answer over its slots (an error answers every slot) and wakes the
    /// connection once.
    fn batched(&self, conn: ConnId, seqs: Vec<u64>, value: Value) {
        self.front.with(conn, |c| {
            let answers: Vec<Value> = match value {
                Value::Array(values) if values.len() == seqs.len() => values,
                other => vec![other; seqs.len()],
            };
            for (seq, answer) in seqs.into_iter().zip(answers) {
                c.answer(seq, Slot::One(answer));
            }
            c.wake();
        });
    }

    fn run_job(&mut self, job: Job, ctx: &mut Ctx<'_>) {
        match job {
            Job::Closed(conn) => self.close(conn, ctx),
            Job::Batch { conn, shard, seqs, ops } => self.batch(conn, shard, seqs, ops, ctx),
            Job::Command { conn, seq, spec, args, trace: None } => self.command(Request { conn, seq }, spec, args, ctx),
            Job::Command { conn, seq, spec, args, trace: Some(trace) } => {
                self.traced_command(Request { conn, seq }, spec, args, trace, ctx)
            }
        }
    }

    /// Runs a traced command: its asks carry the trace on, as children of this agent's
    /// `resp.ingress` span (recorded here once the command is under way).
    fn traced_command(
        &mut self,
        req: Request,
        spec: &'static crate::commands::Spec,
        args: Vec<Bytes>,
        trace: CommandTrace,
        ctx: &mut Ctx<'_>,
    ) {
        let sink = ctx.span_sink();
        let span_id = sink.span_id();
        let started = sink.now_ns();
        let before = ctx.trace_context();
        ctx.adopt_trace(TraceContext { trace_id: trace.root.trace_id, span_id });
        self.command(req, spec, args, ctx);
        let mut span = Span::external(trace.root, span_id, "resp.ingress", sink.shard() as u16, started, sink.now_ns());
        span.enqueued_ns = trace.read_ns;
        span.agent = ctx.id().to_bits();
        ctx.record_span(span);
        match before {
            Some(before) => ctx.adopt_trace(before),
            None => ctx.end_trace(),
        }
    }

    /// A closed connection: drops its subscriptions (nobody waits for that) and its state.
    fn close(&mut self, conn: ConnId, ctx: &mut Ctx<'_>) {
        let channels = self.front.with(conn, |c| std::mem::take(&mut c.channels)).unwrap_or_default();
        let sub = Subscriber { shard: self.shard, conn };
        for channel in channels {
            let owner = self.owner(&channel);
            if let Some(part) = self.directory.partition(owner) {
                let _ = ctx.send(part, PartMsg { op: PartOp::Unsubscribe(channel, sub), reply: None });
            }
        }
        self.front.close(conn);
    }

    /// Runs up to a turn's worth of the front's jobs; asks itself to go on when more wait.
    fn drain_jobs(&mut self, ctx: &mut Ctx<'_>) {
        for _ in 0..JOBS_PER_TURN {
            let job = self.front.jobs.borrow_mut().pop_front();
            match job {
                Some(job) => self.run_job(job, ctx),
                None => break,
            }
        }
        if self.front.jobs.borrow().is_empty() {
            self.front.poke_pending.set(false);
        } else {
            // More than one turn's worth: continue in the next pass.
            if ctx.send(ctx.myself::<IngressMsg>(), IngressMsg::Poke).is_err() {
                self.front.poke_pending.set(false);
            }
        }
    }

    fn deliver(&mut self, channel: Bytes, message: Bytes, conns: Vec<ConnId>) {
        let (mut delivered, mut dropped) = (0, 0);
        for conn in conns {
            let written = self.front.with(conn, |c| {
                if !c.channels.contains(&channel) {
                    return false;
                }
                let parts = vec![Value::bulk("message"), Value::Bulk(channel.clone()), Value::Bulk(message.clone())];
                let push = match c.protocol {
                    Protocol::Resp3 => Value::Push(parts),
                    Protocol::Resp2 => Value::Array(parts),
                };
                push.encode(c.protocol, &mut c.pushes);
                c.wake();
                true
            });
            if written == Some(true) {
                delivered += 1;
            } else {
                dropped += 1;
            }
        }
        ShardServerStats::add(&self.stats().pubsub_delivered, delivered);
        ShardServerStats::add(&self.stats().pubsub_dropped, dropped);
    }
}

impl Agent for Ingress {
    type Msg = IngressMsg;

    fn handle(&mut self, msg: IngressMsg, ctx: &mut Ctx<'_>) {
        if let Some(context) = ctx.trace_context() {
            // A traced answer: the connection's `resp.reply` span follows this hop.
            if let IngressMsg::Answered { conn, seq, .. } | IngressMsg::Gathered(Gathered { conn, seq, .. }) = &msg {
                self.front.with(*conn, |c| c.answered_in_trace(*seq, context));
            }
        }
        match msg {
            IngressMsg::Poke => self.drain_jobs(ctx),
            IngressMsg::Deliver { channel, message, conns } => self.deliver(channel, message, conns),
            IngressMsg::Answered { conn, seq, value } => self.done(Request { conn, seq }, value),
            IngressMsg::Batched { conn, seqs, value } => self.batched(conn, seqs, value),
            IngressMsg::Gathered(Gathered { conn, seq, combine, parts }) => {
                let slot = self.combine(combine, parts);
                self.answer(Request { conn, seq }, slot);
            }
        }
        ctx.yield_to_executor();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nexus_engine::metrics::DeadLetterReason;

    fn text(v: Value) -> String {
        match v {
            Value::Error(e) => e.into_owned(),
            other => panic!("not an error: {other:?}"),
        }
    }

    #[test]
    fn a_failed_ask_keeps_its_resp_error() {
        assert_eq!(text(ask_error(AskError::Timeout, Duration::from_millis(250))), "TIMEOUT no answer within 250 ms");
        assert_eq!(text(ask_error(AskError::ShuttingDown, COMMAND_TIMEOUT)), "ERR the server is shutting down");
        assert_eq!(
            text(ask_error(AskError::WrongReplyType, COMMAND_TIMEOUT)),
            "ERR internal: an answer of the wrong type"
        );
        assert_eq!(text(ask_error(AskError::Dropped, COMMAND_TIMEOUT)), format!("ERR {}", AskError::Dropped));
        assert_eq!(
            text(ask_error(AskError::Undelivered(DeadLetterReason::MailboxFull), COMMAND_TIMEOUT)),
            "ERR the request was not delivered: mailbox_full"
        );
    }

    #[test]
    fn a_gather_part_that_could_not_be_sent_is_busy() {
        let busy = "BUSY the way to the key's shard is full; retry later";
        assert_eq!(text(part_error(AskError::Overloaded(3))), busy);
        assert_eq!(
            text(part_error(AskError::Undelivered(DeadLetterReason::MailboxFull))),
            "ERR the request was not delivered: mailbox_full",
            "a part that was queued and then dropped is told apart from one never queued"
        );
        assert_eq!(text(part_error(AskError::Timeout)), "TIMEOUT no answer within 5000 ms");
        assert_eq!(text(part_error(AskError::ShuttingDown)), "ERR the server is shutting down");
    }
}
