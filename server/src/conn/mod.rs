//! One client connection: read, parse, hand over, write the answers in order.
//!
//! A connection is one task (glommio's, or the threads executor's) on the shard that accepted it. Its loop, in one `poll`:
//! move the answered slots (in request order) and any pub/sub pushes into the output buffer;
//! write what it can; read and parse what arrived. Connection-level commands (PING, ECHO,
//! HELLO, AUTH, SELECT, QUIT, COMMAND, CLIENT, CONFIG) are answered here; the others are
//! checked for arity and permission and handed to the shard's ingress agent as jobs.
//!
//! Limits: reading pauses while 4096 answers are outstanding or the output buffer is over half
//! its limit; a client whose output passes `client_output_limit` is a slow reader, closed and
//! counted; a client silent for `idle_timeout` is closed and counted (subscribers excepted);
//! malformed input is answered with an error, and a stream that cannot be resynchronised is
//! closed after the error is written. Nothing a client sends can reach another connection.

use crate::directory::Directory;
use crate::front::{ConnId, Front, Job, Slot};
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
/// Bytes read per read call.
const READ_CHUNK: usize = 16 * 1024;

/// What every connection of a shard needs.
pub struct ConnEnv {
    /// The shard.
    pub shard: usize,
    /// The shard's executor.
    pub rt: Rt,
    /// The shard's front.
    pub front: Rc<Front>,
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
    /// `idle_timeout` (`None`: never).
    pub idle_timeout: Option<Duration>,
    /// `requirepass` (`None`: no AUTH).
    pub password: Option<Bytes>,
    /// The last client id handed out on this shard (ids are `shard << 40 | n`, n from 1).
    pub last_client: std::cell::Cell<u64>,
    /// Which commands are traced, and where their connection spans go.
    pub tracing: crate::command_trace::ConnTracing,
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
    Idle,
    Protocol,
    Shutdown,
}

struct Conn {
    id: ConnId,
    env: Rc<ConnEnv>,
    stream: Stream,
    input: Vec<u8>,
    start: usize,
    parser: RequestParser,
    out: Vec<u8>,
    out_pos: usize,
    protocol: Protocol,
    authed: bool,
    name: Option<Bytes>,
    /// Close once the output is flushed (QUIT, a fatal protocol error, EOF).
    closing: Option<End>,
    subscribed: bool,
    idle_armed: bool,
    client_id: i64,
    /// Traced commands waiting for their answers, by slot sequence number (oldest first).
    traced: std::collections::VecDeque<(u64, crate::command_trace::CommandTrace)>,
}

/// Serves one accepted connection until it ends.
pub async fn serve(stream: Stream, env: Rc<ConnEnv>) {
    let _ = stream.set_nodelay(true);
    let id = env.front.open();
    let mut conn = Conn {
        id,
        stream,
        input: Vec::with_capacity(READ_CHUNK),
        start: 0,
        parser: RequestParser::new(env.limits),
        out: Vec::with_capacity(READ_CHUNK),
        out_pos: 0,
        protocol: Protocol::Resp2,
        authed: env.password.is_none(),
        name: None,
        closing: None,
        subscribed: false,
        idle_armed: false,
        client_id: {
            let n = env.last_client.get() + 1;
            env.last_client.set(n);
            ((env.shard as i64) << 40) | (n & ((1 << 40) - 1)) as i64
        },
        traced: std::collections::VecDeque::new(),
        env: env.clone(),
    };
    conn.arm_idle(true);
    let end = std::future::poll_fn(|cx| conn.poll(cx)).await;
    match end {
        End::SlowReader => count(&env.stats().slow_clients),
        End::Idle => count(&env.stats().idle_closed),
        End::Protocol => count(&env.stats().protocol_closes),
        _ => {}
    }
    tracing::debug!(shard = env.shard, ?end, "connection closed");
    let _ = conn.stream.close().await;
    env.front.jobs.borrow_mut().push_back(Job::Closed(id));
    env.poke();
    env.stats().connections.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    env.directory.connections.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
}

impl Conn {
    fn arm_idle(&mut self, on: bool) {
        if self.idle_armed == on {
            return;
        }
        if let Some(t) = self.env.idle_timeout {
            let _ = self.stream.set_read_timeout(on.then_some(t));
            self.idle_armed = on;
        }
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<End> {
        let env = self.env.clone();
        env.front.with(self.id, |c| match &c.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => c.waker = Some(cx.waker().clone()),
        });
        loop {
            let mut progress = false;
            let outstanding = self.collect();
            if self.out.len() - self.out_pos > env.output_limit {
                return Poll::Ready(End::SlowReader);
            }
            // Write.
            while self.out_pos < self.out.len() {
                match Pin::new(&mut self.stream).poll_write(cx, &self.out[self.out_pos..]) {
                    Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Poll::Ready(End::Io),
                    Poll::Ready(Ok(n)) => {
                        self.out_pos += n;
                        progress = true;
                    }
                    Poll::Pending => break,
                }
            }
            if self.out_pos == self.out.len() {
                self.out.clear();
                self.out_pos = 0;
            }
            let flushed = self.out.is_empty();
            if let Some(end) = self.closing {
                if flushed && outstanding == 0 {
                    return Poll::Ready(end);
                }
                if end != End::Quit && end != End::Eof && flushed {
                    return Poll::Ready(end);
                }
            }
            if env.front.stopping.get() {
                if flushed && outstanding == 0 {
                    return Poll::Ready(End::Shutdown);
                }
            } else if self.closing.is_none()
                && outstanding < MAX_OUTSTANDING
                && self.out.len() - self.out_pos <= env.output_limit / 2
            {
                // Read.
                if self.start > 0 && self.start * 2 >= self.input.len() {
                    self.input.drain(..self.start);
                    self.start = 0;
                }
                let len = self.input.len();
                self.input.resize(len + READ_CHUNK, 0);
                let read = Pin::new(&mut self.stream).poll_read(cx, &mut self.input[len..]);
                match read {
                    Poll::Ready(Ok(n)) => {
                        self.input.truncate(len + n);
                        if n == 0 {
                            self.closing = Some(End::Eof);
                        } else {
                            self.parse();
                        }
                        progress = true;
                    }
                    Poll::Ready(Err(e)) => {
                        self.input.truncate(len);
                        return Poll::Ready(if e.kind() == std::io::ErrorKind::TimedOut { End::Idle } else { End::Io });
                    }
                    Poll::Pending => self.input.truncate(len),
                }
            }
            if !progress {
                return Poll::Pending;
            }
        }
    }

    /// Moves answered slots and pushes into the output; returns the answers still outstanding.
    fn collect(&mut self) -> usize {
        let protocol = self.protocol;
        // When this collection began: a traced answer's `resp.reply` span starts here.
        let started = if self.traced.is_empty() { 0 } else { self.env.tracing.now_ns() };
        let out = &mut self.out;
        let mut written_below = 0;
        // The traced hops that answered the slots written now (see `finish_traced`).
        let mut answered_by = Vec::new();
        let (outstanding, subscribed) = self
            .env
            .front
            .with(self.id, |c| {
                if !c.pushes.is_empty() {
                    out.extend_from_slice(&c.pushes);
                    c.pushes.clear();
                }
                while let Some(slot) = c.slots.front() {
                    match slot {
                        Slot::Pending => break,
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
                (c.slots.len(), !c.channels.is_empty())
            })
            .unwrap_or((0, false));
        if self.traced.front().is_some_and(|(seq, _)| *seq < written_below) {
            self.finish_traced(written_below, started, &answered_by);
        }
        if subscribed != self.subscribed {
            self.subscribed = subscribed;
            self.arm_idle(!subscribed);
        }
        outstanding
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

    fn parse(&mut self) {
        let mut handed_over = false;
        while self.closing.is_none() {
            let (used, step) = self.parser.next(&self.input[self.start..]);
            self.start += used;
            match step {
                Step::Incomplete => break,
                Step::Command(args) => {
                    count(&self.env.stats().commands);
                    let args: Vec<Bytes> = args.into_iter().map(Bytes::from).collect();
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
        if self.start == self.input.len() {
            self.input.clear();
            self.start = 0;
        }
        if handed_over {
            self.env.poke();
        }
    }

    fn push_answer(&mut self, value: Value) {
        self.env.front.with(self.id, |c| c.slots.push_back(Slot::One(value)));
    }

    /// Answers a connection command here or hands the request over; true when handed over.
    fn dispatch(&mut self, args: Vec<Bytes>) -> bool {
        let name = args[0].to_ascii_uppercase();
        let Some(spec) = crate::commands::lookup(&name) else {
            let mut text =
                format!("ERR unknown command '{}', with args beginning with: ", String::from_utf8_lossy(&args[0]));
            for a in args.iter().skip(1).take(8) {
                text.push_str(&format!("'{}' ", String::from_utf8_lossy(a)));
            }
            self.push_answer(Value::error(text));
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
            let id = self.id;
            let seq = self
                .env
                .front
                .with(id, |c| {
                    c.slots.push_back(Slot::Pending);
                    c.first_seq + c.slots.len() as u64 - 1
                })
                .unwrap_or(0);
            let trace = self.env.tracing.start(spec);
            if let Some(trace) = trace {
                self.traced.push_back((seq, trace));
            }
            self.env.front.jobs.borrow_mut().push_back(Job::Command { conn: id, seq, spec, args, trace });
            return true;
        }
        let answer = self.local(spec.name, &args);
        self.push_answer(answer);
        false
    }

    fn check_password(&mut self, user: Option<&[u8]>, pass: &[u8]) -> Result<(), Value> {
        let Some(expected) = &self.env.password else {
            return Err(Value::error(
                "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
            ));
        };
        let user_ok = user.map_or(true, |u| u == b"default");
        if user_ok && pass == expected.as_ref() {
            self.authed = true;
            Ok(())
        } else {
            count(&self.env.stats().auth_failures);
            Err(Value::error("WRONGPASS invalid username-password pair or user is disabled."))
        }
    }

    /// Connection-level commands.
    fn local(&mut self, name: &str, args: &[Bytes]) -> Value {
        match name {
            "ping" => {
                if self.subscribed && self.protocol == Protocol::Resp2 {
                    let msg = args.get(1).cloned().unwrap_or_default();
                    return Value::Array(vec![Value::bulk("pong"), Value::Bulk(msg)]);
                }
                match args.get(1) {
                    Some(m) => Value::Bulk(m.clone()),
                    None => Value::simple("PONG"),
                }
            }
            "echo" => Value::Bulk(args[1].clone()),
            "quit" => {
                self.closing = Some(End::Quit);
                Value::Ok
            }
            "select" => match crate::kinds::parse_i64(&args[1]) {
                Some(0) => Value::Ok,
                Some(_) => Value::error("ERR DB index is out of range"),
                None => Value::error("ERR value is not an integer or out of range"),
            },
            "auth" => {
                let (user, pass) =
                    if args.len() == 3 { (Some(&args[1][..]), &args[2][..]) } else { (None, &args[1][..]) };
                match self.check_password(user, pass) {
                    Ok(()) => Value::Ok,
                    Err(e) => e,
                }
            }
            "hello" => self.hello(args),
            "command" => crate::commands::command_reply(args),
            "client" => self.client(args),
            "config" => {
                let sub = args[1].to_ascii_uppercase();
                if sub.as_slice() == b"GET" {
                    match self.protocol {
                        Protocol::Resp3 => Value::Map(Vec::new()),
                        Protocol::Resp2 => Value::Array(Vec::new()),
                    }
                } else {
                    Value::error(
                        "ERR CONFIG SET, REWRITE and RESETSTAT are not supported; nexus is configured by its TOML file",
                    )
                }
            }
            "nexus.trace" => self.env.tracing.admin(&self.env.handle, args),
            "reset" => {
                self.protocol = Protocol::Resp2;
                self.env.front.with(self.id, |c| c.protocol = Protocol::Resp2);
                Value::simple("RESET")
            }
            other => Value::error(format!("ERR unknown command '{other}'")),
        }
    }

    fn hello(&mut self, args: &[Bytes]) -> Value {
        let mut protocol = self.protocol;
        if let Some(v) = args.get(1) {
            match crate::kinds::parse_i64(v) {
                Some(2) => protocol = Protocol::Resp2,
                Some(3) => protocol = Protocol::Resp3,
                Some(_) => return Value::error("NOPROTO unsupported protocol version"),
                None => return Value::error("ERR Protocol version is not an integer or out of range"),
            }
        }
        let mut i = 2;
        while i < args.len() {
            let opt = args[i].to_ascii_uppercase();
            match opt.as_slice() {
                b"AUTH" if i + 2 < args.len() => {
                    if let Err(e) = self.check_password(Some(&args[i + 1][..]), &args[i + 2][..]) {
                        return e;
                    }
                    i += 3;
                }
                b"SETNAME" if i + 1 < args.len() => {
                    self.name = Some(args[i + 1].clone());
                    i += 2;
                }
                _ => {
                    return Value::error(format!(
                        "ERR Syntax error in HELLO option '{}'",
                        String::from_utf8_lossy(&args[i])
                    ))
                }
            }
        }
        if !self.authed {
            count(&self.env.stats().auth_failures);
            return Value::error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
        }
        self.protocol = protocol;
        self.env.front.with(self.id, |c| c.protocol = protocol);
        let proto = if protocol == Protocol::Resp3 { 3 } else { 2 };
        Value::Map(vec![
            (Value::bulk("server"), Value::bulk("nexus")),
            (Value::bulk("version"), Value::bulk(env!("CARGO_PKG_VERSION"))),
            (Value::bulk("proto"), Value::Int(proto)),
            (Value::bulk("id"), Value::Int(self.client_id())),
            (Value::bulk("mode"), Value::bulk("standalone")),
            (Value::bulk("role"), Value::bulk("master")),
            (Value::bulk("modules"), Value::Array(Vec::new())),
        ])
    }

    fn client_id(&self) -> i64 {
        self.client_id
    }

    fn client(&mut self, args: &[Bytes]) -> Value {
        let sub = args[1].to_ascii_uppercase();
        match (sub.as_slice(), args.len()) {
            (b"SETNAME", 3) => {
                self.name = Some(args[2].clone());
                Value::Ok
            }
            (b"GETNAME", 2) => self.name.clone().map_or(Value::Nil, Value::Bulk),
            (b"ID", 2) => Value::Int(self.client_id()),
            (b"SETINFO", 4) => Value::Ok,
            (b"SETNAME" | b"GETNAME" | b"ID" | b"SETINFO", _) => Value::error(format!(
                "ERR wrong number of arguments for 'client|{}' command",
                String::from_utf8_lossy(&args[1]).to_ascii_lowercase()
            )),
            _ => Value::error(format!(
                "ERR unknown subcommand '{}'. Try CLIENT HELP.",
                String::from_utf8_lossy(&args[1])
            )),
        }
    }
}
