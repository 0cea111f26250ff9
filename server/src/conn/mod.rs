//! One client connection: read, parse, hand over, write the answers in order.
//!
//! A connection is one task (glommio's, or the threads executor's) on the shard that accepted it. Its loop, in one `poll`:
//! move the answered slots (in request order) and any pub/sub pushes into the output buffer;
//! write what it can; read and parse what arrived. Connection-level commands (PING, ECHO,
//! HELLO, AUTH, SELECT, QUIT, COMMAND, CLIENT, CONFIG) are answered here; the others are
//! checked for arity and permission, then run inline on the shard's store (single-key commands
//! on this shard's keys), squashed into one job per other shard, or handed to the shard's
//! ingress agent as jobs (see `route`). The replies of one read go out in one write. The read
//! and output buffers are the shard's, lent while in use (see `buffers`).
//!
//! Replies after the reads: a connection that read and ran requests puts itself at the back of
//! its executor's run queue before it writes their replies, so every connection woken with it
//! reads and runs first and the shard's writes come out together, as redis-server writes its
//! replies before it sleeps. A write to a client asleep in `epoll_wait` wakes it, and on a VM
//! that wake-up (an inter-processor interrupt) was 18% of the shard's time under SET `-P 16`;
//! writes in a burst find the client awake after the first. Measured: SET `-P 16` 1.15x, GET
//! `-P 16` 1.09x (see PERF.md, "Replies after the reads").
//!
//! Limits:
//! - Output: answered slots move into the output buffer only while the bytes waiting there are
//!   within `client_output_limit`, so the buffer holds at most the limit plus one reply (a reply
//!   larger than the limit is still written whole to a reader that reads). Reading and
//!   dispatching pause while 4096 answers are outstanding or the buffer is over half the limit.
//! - Slow readers: a client whose waiting output stays over the limit with nothing written for
//!   [`SLOW_READER_GRACE`] is closed and counted (it does not read); a large reply that the
//!   client reads is not slow.
//! - Input: before AUTH, Redis's tight request limits (see [`crate::resp::UNAUTH_BULK_MAX`]);
//!   a client whose buffered request passes `client_query_buffer_limit` is closed and counted.
//! - A client silent for `idle_timeout` is closed and counted (subscribers, and clients still
//!   owed answers, excepted): the shard's sweeper finds it (see `idle`).
//! - Malformed input is answered with an error; a stream that cannot be resynchronised is
//!   closed after the replies owed to the requests before it, then the error, are written.
//!
//! Nothing a client sends can reach another connection, and no connection holds its shard for
//! longer than it takes to encode one batch of replies within its limit.

mod buffers;
pub mod idle;
mod local;
mod route;

use crate::directory::Directory;
use crate::front::{ConnId, Front, Job, Slot};
use crate::ingress::plan::Plan;
use crate::ingress::IngressMsg;
use crate::resp::{Limits, Protocol, RequestParser, Step, Value};
use crate::rt::{Rt, Stream};
use crate::stats::{count, ShardServerStats};
use bytes::Bytes;
use futures_lite::io::{AsyncRead, AsyncWrite};
use nexus_engine::agent::Addr;
use nexus_engine::engine::EngineHandle;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// Answers outstanding on one connection before it stops reading.
const MAX_OUTSTANDING: usize = 4096;
use buffers::READ_CHUNK;
/// How long a client's waiting output may stay over `client_output_limit` with nothing
/// written before the client is closed as a slow reader.
pub const SLOW_READER_GRACE: Duration = Duration::from_secs(5);

/// What every connection of a shard needs.
pub struct ConnEnv {
    /// The shard.
    pub shard: usize,
    /// The shard's executor.
    pub rt: Rt,
    /// The shard's front.
    pub front: Rc<Front>,
    /// The shard's store, shared with its partition agent: the connections run the
    /// single-key requests on their own shard's keys on it inline.
    pub kv: crate::partition::SharedKv,
    /// Under `fsync = "always"`, the shard log's durability: a connection writes the answers
    /// it produced inline only once the log is durable up to its last inline operation (the
    /// `durable_gate`), so no write is acknowledged before its sync and no read shows a write
    /// that could still be lost.
    pub always: Option<Rc<crate::persist::Durability>>,
    /// The batches of the read being parsed (one connection parses at a time on a shard).
    pub batches: std::cell::RefCell<route::Batches>,
    /// The spare read and output buffers the shard's connections borrow.
    pub spares: buffers::Spares,
    /// The directory.
    pub directory: Arc<Directory>,
    /// For pokes.
    pub handle: EngineHandle,
    /// The shard's ingress agent.
    pub ingress: Addr<IngressMsg>,
    /// Parser limits.
    pub limits: Limits,
    /// `client_output_limit`.
    pub output_limit: usize,
    /// `requirepass` (`None`: no AUTH).
    pub password: Option<Bytes>,
    /// The last client id handed out on this shard (ids are `shard << 40 | n`, n from 1).
    pub last_client: std::cell::Cell<u64>,
    /// Which commands are traced, and where their connection spans go.
    pub tracing: crate::command_trace::ConnTracing,
    /// The `[server]` settings (CONFIG GET, `client_query_buffer_limit`).
    pub config: nexus_engine::config::ServerConfig,
}

impl ConnEnv {
    fn stats(&self) -> &ShardServerStats {
        self.directory.shard_stats(self.shard)
    }

    /// Makes sure the ingress agent will look at the job queue.
    pub fn poke(self: &Rc<Self>) {
        if self.front.poke_pending.replace(true) {
            return;
        }
        if self.handle.send(self.ingress, IngressMsg::Poke).is_err() {
            // The shard's inject queue is full (or the engine stops): retry from a task.
            let env = self.clone();
            let rt = self.rt;
            rt.spawn(async move {
                loop {
                    rt.yield_now().await;
                    match env.handle.send(env.ingress, IngressMsg::Poke) {
                        Ok(()) => break,
                        Err(nexus_engine::agent::SendError::ShuttingDown(_)) => break,
                        Err(_) => {}
                    }
                }
            });
        }
    }
}

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Eof,
    Quit,
    Io,
    SlowReader,
    QueryBuffer,
    Idle,
    Protocol,
    Shutdown,
}

struct Conn {
    id: ConnId,
    /// The log position the answers produced inline so far wait for (0: none waits; see
    /// [`ConnEnv::always`]).
    durable_gate: u64,
    env: Rc<ConnEnv>,
    stream: Stream,
    input: buffers::Input,
    parser: RequestParser,
    out: Vec<u8>,
    out_pos: usize,
    protocol: Protocol,
    authed: bool,
    /// Slows repeated AUTH guessing on this connection (see `auth_guard`).
    auth_guard: crate::auth_guard::AuthGuard,
    name: Option<Bytes>,
    /// Close once the output is flushed (QUIT, a fatal protocol error, EOF).
    closing: Option<End>,
    subscribed: bool,
    client_id: i64,
    /// Traced commands waiting for their answers, by slot sequence number (oldest first).
    traced: std::collections::VecDeque<(u64, crate::command_trace::CommandTrace)>,
    /// `input[start..]` may hold whole requests not dispatched yet (dispatch paused at
    /// [`MAX_OUTSTANDING`]): parse them before reading more.
    parse_pending: bool,
    /// While the waiting output is over the limit: when something was last written, and the
    /// timer that checks it.
    slow: Option<SlowWatch>,
    /// A request that may touch this shard's store went to the ingress agent and is not
    /// answered yet: the shard's own keys go that way too (see `route`).
    fenced: bool,
    /// The engine clock in milliseconds, read once per parse by the first inline request.
    now_ms: Option<u64>,
    /// The command looked up last (a client tends to repeat one): found again without
    /// upper-casing the name or scanning the table.
    last_spec: Option<&'static crate::commands::Spec>,
}

/// Watches a client whose waiting output is over the limit.
struct SlowWatch {
    /// When the last write made progress (or the watch began).
    progress: std::time::Instant,
    /// Fires when the grace may have run out.
    timer: Pin<Box<dyn std::future::Future<Output = ()>>>,
}

/// Serves one accepted connection until it ends.
pub async fn serve(stream: Stream, env: Rc<ConnEnv>) {
    let _ = stream.set_nodelay(true);
    let id = env.front.open();
    let mut conn = Conn {
        id,
        durable_gate: 0,
        stream,
        input: buffers::Input::default(),
        parser: {
            let mut parser = RequestParser::new(env.limits);
            parser.set_unauthenticated(env.password.is_some());
            parser
        },
        out: Vec::new(),
        out_pos: 0,
        protocol: Protocol::Resp2,
        authed: env.password.is_none(),
        auth_guard: crate::auth_guard::AuthGuard::default(),
        name: None,
        closing: None,
        subscribed: false,
        client_id: {
            let n = env.last_client.get() + 1;
            env.last_client.set(n);
            ((env.shard as i64) << 40) | (n & ((1 << 40) - 1)) as i64
        },
        traced: std::collections::VecDeque::new(),
        parse_pending: false,
        slow: None,
        fenced: false,
        now_ms: None,
        last_spec: None,
        env: env.clone(),
    };
    let end = std::future::poll_fn(|cx| conn.poll(cx)).await;
    match end {
        End::SlowReader => count(&env.stats().slow_clients),
        End::QueryBuffer => count(&env.stats().query_buffer_closes),
        End::Idle => count(&env.stats().idle_closed),
        End::Protocol => count(&env.stats().protocol_closes),
        _ => {}
    }
    tracing::debug!(shard = env.shard, ?end, "connection closed");
    if matches!(end, End::SlowReader | End::QueryBuffer) {
        // What it has not read is of no use to it: free the kernel's buffers at once.
        let _ = conn.stream.reset_on_close();
    }
    let _ = conn.stream.close().await;
    env.front.jobs.borrow_mut().push_back(Job::Closed(id));
    env.poke();
    env.stats().connections.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    env.directory.connections.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
}

impl Conn {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<End> {
        let env = self.env.clone();
        let idle = env.front.with(self.id, |c| {
            match &c.waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => c.waker = Some(cx.waker().clone()),
            }
            c.idle
        });
        if idle == Some(true) {
            return Poll::Ready(End::Idle);
        }
        loop {
            if self.out.capacity() == 0 {
                self.out = env.spares.take_output();
            }
            let (outstanding, pushes_waiting, next_ready) = match self.gated(cx) {
                Ok(false) => self.collect(),
                // Answers wait for the log: none is moved to the output yet.
                Ok(true) => (env.front.with(self.id, |c| c.slots.len()).unwrap_or(0), 0, false),
                Err(end) => return Poll::Ready(end),
            };
            if outstanding == 0 {
                self.fenced = false;
            }
            if pushes_waiting > env.output_limit {
                // Pub/sub messages pile up behind an output already over the limit, past the
                // limit again: a hard limit, with no grace (as Redis's pubsub class has one).
                return Poll::Ready(End::SlowReader);
            }
            let wrote = match self.write_out(cx) {
                Ok(wrote) => wrote,
                Err(end) => return Poll::Ready(end),
            };
            let mut progress = wrote;
            // The read found nothing (its waker is registered).
            let mut read_blocked = false;
            let waiting = self.out.len() - self.out_pos;
            if waiting > env.output_limit {
                if self.slow_reader(cx, wrote) {
                    return Poll::Ready(End::SlowReader);
                }
            } else {
                self.slow = None;
            }
            let flushed = self.out.is_empty();
            if flushed {
                env.spares.give_output(std::mem::take(&mut self.out));
            }
            if let Some(end) = self.closing {
                // Every reply owed (in order), then close: QUIT, EOF and a fatal protocol error.
                if flushed && outstanding == 0 {
                    return Poll::Ready(end);
                }
            }
            if env.front.stopping.get() {
                if flushed && outstanding == 0 {
                    return Poll::Ready(End::Shutdown);
                }
            } else if self.closing.is_none() && outstanding < MAX_OUTSTANDING && waiting <= env.output_limit / 2 {
                let budget = MAX_OUTSTANDING - outstanding;
                if self.parse_pending {
                    self.parse(budget);
                    self.input.settle(&env.spares);
                    progress = true;
                } else {
                    match self.read_in(cx, budget) {
                        Ok(read) => {
                            progress |= read;
                            read_blocked = !read;
                            if read {
                                // Write after every connection woken with this one has read
                                // (see "Replies after the reads" in the module docs).
                                cx.waker().wake_by_ref();
                                return Poll::Pending;
                            }
                        }
                        Err(end) => return Poll::Ready(end),
                    }
                }
                let buffered = self.input.len() + self.parser.held();
                if buffered as u64 > env.config.client_query_buffer_limit {
                    tracing::warn!(shard = env.shard, buffered, "closing a client past client_query_buffer_limit");
                    return Poll::Ready(End::QueryBuffer);
                }
            }
            // After a read that found nothing, with all output written and no answer left behind
            // for want of room, another pass would only read again (one more `EAGAIN`): every
            // waker is registered, so wait.
            if !progress || (read_blocked && self.out.is_empty() && !next_ready && pushes_waiting == 0) {
                return Poll::Pending;
            }
        }
    }

    /// Whether the answers produced inline must still wait for the log (`fsync = "always"`):
    /// the waker is then registered with the shard's durability. A failed log ends the
    /// connection (its writes will never be durable, so they are never acknowledged).
    fn gated(&mut self, cx: &mut Context<'_>) -> Result<bool, End> {
        let Some(durability) = self.env.always.as_ref().filter(|_| self.durable_gate > 0) else {
            return Ok(false);
        };
        if durability.durable_lsn() < self.durable_gate {
            // A shard that syncs its log itself does it now, for every connection's records.
            if let Some(journal) = self.env.kv.borrow_mut().journal_mut() {
                journal.commit_for_answers();
            }
        }
        let mut wait = durability.wait_durable(self.durable_gate);
        match std::future::Future::poll(Pin::new(&mut wait), cx) {
            Poll::Ready(Ok(())) => {
                self.durable_gate = 0;
                Ok(false)
            }
            Poll::Ready(Err(e)) => {
                tracing::warn!(shard = self.env.shard, "closing a client whose writes cannot be made durable: {e}");
                Err(End::Io)
            }
            Poll::Pending => Ok(true),
        }
    }

    /// Writes what the socket takes; true if anything was written.
    fn write_out(&mut self, cx: &mut Context<'_>) -> Result<bool, End> {
        let mut wrote = false;
        while self.out_pos < self.out.len() {
            match Pin::new(&mut self.stream).poll_write(cx, &self.out[self.out_pos..]) {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Err(End::Io),
                Poll::Ready(Ok(n)) => {
                    self.out_pos += n;
                    wrote = true;
                }
                Poll::Pending => break,
            }
        }
        if wrote {
            self.env.front.heard(self.id);
        }
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        } else if self.out_pos >= READ_CHUNK && self.out_pos * 2 >= self.out.len() {
            // A reader that keeps up but never empties the buffer: drop what it has read, so
            // the buffer holds only what is waiting (moving at most as much as was written).
            self.out.drain(..self.out_pos);
            self.out_pos = 0;
        }
        Ok(wrote)
    }

    /// Reads once and dispatches up to `budget` requests; true if the read made progress.
    fn read_in(&mut self, cx: &mut Context<'_>, budget: usize) -> Result<bool, End> {
        let env = self.env.clone();
        let room = self.input.room(&env.spares);
        let read = Pin::new(&mut self.stream).poll_read(cx, room);
        let result = match read {
            Poll::Ready(Ok(0)) => {
                self.closing = Some(End::Eof);
                Ok(true)
            }
            Poll::Ready(Ok(n)) => {
                env.front.heard(self.id);
                self.input.filled(n);
                self.parse(budget);
                Ok(true)
            }
            Poll::Ready(Err(_)) => Err(End::Io),
            Poll::Pending => Ok(false),
        };
        self.input.settle(&env.spares);
        result
    }

    /// The waiting output is over the limit: true once nothing has been written for
    /// [`SLOW_READER_GRACE`] (`wrote`: this pass wrote something). Arms a timer meanwhile.
    fn slow_reader(&mut self, cx: &mut Context<'_>, wrote: bool) -> bool {
        let now = std::time::Instant::now();
        let rt = self.env.rt;
        let watch =
            self.slow.get_or_insert_with(|| SlowWatch { progress: now, timer: Box::pin(rt.sleep(SLOW_READER_GRACE)) });
        if wrote {
            watch.progress = now;
        }
        while watch.timer.as_mut().poll(cx).is_ready() {
            let quiet = now.saturating_duration_since(watch.progress);
            if quiet >= SLOW_READER_GRACE {
                return true;
            }
            watch.timer = Box::pin(rt.sleep(SLOW_READER_GRACE - quiet));
        }
        false
    }

    /// Moves pushes and answered slots (in order) into the output while the bytes waiting there
    /// are within `client_output_limit`; returns the answers still outstanding (answered or not),
    /// the bytes of pub/sub messages still waiting, and whether the next answer is there
    /// (left for want of room).
    fn collect(&mut self) -> (usize, usize, bool) {
        let room = self.env.output_limit.saturating_add(self.out_pos);
        let protocol = self.protocol;
        // When this collection began: a traced answer's `resp.reply` span starts here.
        let started = if self.traced.is_empty() { 0 } else { self.env.tracing.now_ns() };
        let out = &mut self.out;
        let mut written_below = 0;
        // The traced hops that answered the slots written now (see `finish_traced`).
        let mut answered_by = Vec::new();
        let (outstanding, subscribed, pushes_waiting, next_ready) = self
            .env
            .front
            .with(self.id, |c| {
                if !c.pushes.is_empty() && out.len() <= room {
                    out.extend_from_slice(&c.pushes);
                    c.pushes.clear();
                }
                while let Some(slot) = c.slots.front() {
                    if out.len() > room {
                        break;
                    }
                    match slot {
                        Slot::Pending | Slot::Silent => break,
                        Slot::One(v) => v.encode(protocol, out),
                        Slot::Many(vs) => vs.iter().for_each(|v| v.encode(protocol, out)),
                    }
                    if !c.answer_traces.is_empty() {
                        if let Some(context) = c.take_answer_trace(c.first_seq) {
                            answered_by.push((c.first_seq, context));
                        }
                    }
                    c.slots.pop_front();
                    c.first_seq += 1;
                }
                written_below = c.first_seq;
                let next_ready = c.slots.front().is_some_and(|s| !matches!(s, Slot::Pending | Slot::Silent));
                (c.slots.len(), !c.channels.is_empty(), c.pushes.len(), next_ready)
            })
            .unwrap_or((0, false, 0, false));
        if self.traced.front().is_some_and(|(seq, _)| *seq < written_below) {
            self.finish_traced(written_below, started, &answered_by);
        }
        self.subscribed = subscribed;
        (outstanding, pushes_waiting, next_ready)
    }

    /// Records the connection spans of the traced commands whose answers were just encoded
    /// (slots below `written_below`; the collection began at `answered`; `answered_by` names
    /// the traced hops that answered them). Out of line: untraced connections never come here.
    #[cold]
    fn finish_traced(
        &mut self,
        written_below: u64,
        answered: u64,
        answered_by: &[(u64, nexus_engine::trace::TraceContext)],
    ) {
        while let Some((seq, trace)) = self.traced.front() {
            if *seq >= written_below {
                break;
            }
            let parent = answered_by.iter().find(|(s, _)| s == seq).map(|(_, context)| *context);
            self.env.tracing.finish(trace, parent, answered);
            self.traced.pop_front();
        }
    }

    /// Parses and dispatches up to `budget` requests (rejections and errors included) from
    /// the input; leaves the rest for later (`parse_pending`).
    fn parse(&mut self, mut budget: usize) {
        let mut handed_over = false;
        self.parse_pending = false;
        self.now_ms = None;
        while self.closing.is_none() {
            if budget == 0 {
                self.parse_pending = true;
                break;
            }
            budget -= 1;
            match self.input.parse_next(&mut self.parser) {
                Step::Incomplete => break,
                Step::Command(args) => {
                    count(&self.env.stats().commands);
                    handed_over |= self.dispatch(args);
                }
                Step::Rejected(e) => {
                    count(&self.env.stats().protocol_errors);
                    self.push_answer(e.reply());
                }
                Step::Fatal(e) => {
                    count(&self.env.stats().protocol_errors);
                    self.push_answer(e.reply());
                    self.closing = Some(End::Protocol);
                }
            }
        }
        self.flush_batches();
        self.flush_journal();
        if handed_over {
            self.env.poke();
        }
    }

    /// The command named `name` (any case): the last one when it is that again, else from the
    /// table. A spec's `name` is its table name in lower case (checked by a test).
    fn lookup(&mut self, name: &[u8]) -> Option<&'static crate::commands::Spec> {
        if let Some(spec) = self.last_spec.filter(|s| name.eq_ignore_ascii_case(s.name.as_bytes())) {
            return Some(spec);
        }
        let spec = crate::commands::lookup(&name.to_ascii_uppercase())?;
        self.last_spec = Some(spec);
        Some(spec)
    }

    fn push_answer(&mut self, value: Value) {
        self.env.front.with(self.id, |c| c.slots.push_back(Slot::One(value)));
    }

    /// Answers a connection command here or hands the request over; true when handed over.
    fn dispatch(&mut self, mut args: Vec<Bytes>) -> bool {
        let Some(spec) = self.lookup(&args[0]) else {
            self.push_answer(local::unknown_command(&args));
            return false;
        };
        if !spec.arity_ok(args.len()) {
            self.push_answer(Value::error(format!("ERR wrong number of arguments for '{}' command", spec.name)));
            return false;
        }
        if !self.authed && !matches!(spec.name, "auth" | "hello" | "quit") {
            count(&self.env.stats().auth_failures);
            self.push_answer(Value::error("NOAUTH Authentication required."));
            return false;
        }
        if self.subscribed
            && self.protocol == Protocol::Resp2
            && !matches!(spec.name, "subscribe" | "unsubscribe" | "ping" | "quit" | "reset")
        {
            self.push_answer(Value::error(format!(
                "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
                spec.name
            )));
            return false;
        }
        if spec.engine {
            let trace = self.env.tracing.start(spec);
            if trace.is_none() {
                match crate::ingress::plan::plan(spec.name, args, self.env.directory.shards()) {
                    Plan::Answer(value) => {
                        self.push_answer(value);
                        return false;
                    }
                    Plan::One(shard, op) => return self.run_one(shard, op),
                    Plan::Other(given_back) => args = given_back,
                }
            }
            self.flush_batches();
            self.fenced = true;
            let id = self.id;
            let seq = self
                .env
                .front
                .with(id, |c| {
                    c.slots.push_back(Slot::Pending);
                    c.first_seq + c.slots.len() as u64 - 1
                })
                .unwrap_or(0);
            if let Some(trace) = trace {
                self.traced.push_back((seq, trace));
            }
            // Off the key path the handlers may keep an argument (a channel, an agent's name) for
            // longer than the request: each gets a buffer of its own, not a slice of the read's.
            for arg in &mut args {
                *arg = Bytes::copy_from_slice(arg);
            }
            self.env.front.jobs.borrow_mut().push_back(Job::Command { conn: id, seq, spec, args, trace });
            return true;
        }
        if spec.name == "reset" {
            self.flush_batches();
            self.reset();
            return true;
        }
        let answer = self.local(spec.name, &args);
        self.push_answer(answer);
        false
    }
}

#[cfg(test)]
mod tests {
    /// `Conn::lookup` finds a repeated command by comparing the request's name with the spec's.
    #[test]
    fn every_spec_is_named_as_its_table_entry() {
        for (upper, spec) in crate::commands::COMMANDS {
            assert!(upper.eq_ignore_ascii_case(spec.name.as_bytes()), "{} is filed as {upper:?}", spec.name);
        }
    }
}
