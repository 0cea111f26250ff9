//! The NATS thread: a current-thread tokio runtime on a host thread, outside the shards, that
//! owns the async-nats client. It publishes and requests what the [`Link`] hands it, serves
//! the global names this node holds, keeps the directory (heartbeats, claims, leases) and
//! hands everything inbound to the engine through bridge agents (in batches: see `inbound`).
//! Each wake-up handles every command already queued (up to [`DRAIN`]) before it yields, so a
//! burst of publishes reaches the client's write queue together.
//!
//! Invariants: nothing here waits on a shard (inbound work goes through `Link::try_send`,
//! which never blocks for long); while the client is disconnected a publish or request fails at once
//! as `Unreachable` instead of being buffered, so every message is delivered or counted dead;
//! the client reconnects on its own (async-nats re-subscribes) with a backoff capped at 250 ms.

use crate::agents::Job;
use crate::directory::DirMsg;
use crate::error::ClusterError;
use crate::link::{Done, Link};
use crate::serve::Serve;
use crate::wire;
use async_nats::{Client, ConnectOptions, Event};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;

/// The most commands handled per wake-up of the NATS thread before it lets the client's
/// connection task (and the timers) run.
const DRAIN: usize = 1024;

/// What the NATS thread is asked to do.
pub(crate) enum Cmd {
    /// Publish a one-way frame.
    Publish { subject: async_nats::Subject, frame: Vec<u8> },
    /// Request, and hand the outcome to `finish`.
    Request {
        subject: async_nats::Subject,
        name: String,
        frame: Vec<u8>,
        timeout: Duration,
        finish: Box<dyn FnOnce(Result<bytes::Bytes, ClusterError>) -> Job + Send>,
    },
    /// Answer an incoming ask.
    Respond { subject: async_nats::Subject, frame: Vec<u8> },
    /// Claim a global name.
    Claim { name: String, serve: Arc<dyn Serve>, done: Done<Result<(), ClusterError>> },
    /// Give a global name up.
    Release { name: String },
    /// Ask whether some node serves `name` (for a host's resolution).
    Whois { name: String, done: std::sync::mpsc::Sender<Result<bool, ClusterError>> },
    /// Stop: leave the cluster (`graceful`) or just drop the connection (a crash).
    Stop { graceful: bool },
}

impl Cmd {
    /// Fails what this command carried with `why` (the bridge could not take it).
    pub(crate) fn fail(self, link: &Link, why: ClusterError) {
        match self {
            Cmd::Publish { .. } => link.counters.dead(why.reason()),
            Cmd::Request { finish, .. } => link.run(finish(Err(why))),
            Cmd::Claim { done, .. } => link.run(Box::new(move |ctx| done(Err(why), ctx))),
            Cmd::Whois { done, .. } => {
                let _ = done.send(Err(why));
            }
            Cmd::Respond { .. } | Cmd::Release { .. } | Cmd::Stop { .. } => {}
        }
    }
}

/// Connects to NATS with the reconnect policy of the module documentation.
pub(crate) async fn connect(link: &Link) -> Result<Client, ClusterError> {
    let counters = link.counters.clone();
    let url = link.config.nats.clone();
    ConnectOptions::new()
        .name(format!("nexus-{}", link.config.node))
        .max_reconnects(None)
        .reconnect_delay_callback(|attempts| Duration::from_millis((attempts as u64 * 50).min(250)))
        .connection_timeout(Duration::from_secs(2))
        .event_callback(move |event| {
            let counters = counters.clone();
            async move {
                match event {
                    Event::Connected => counters.reconnected(),
                    Event::SlowConsumer(_) => counters.slow_consumer(),
                    _ => {}
                }
            }
        })
        .connect(url.as_str())
        .await
        .map_err(|e| ClusterError::Connect { url, why: e.to_string() })
}

/// A name this node serves: its subscriptions' task.
struct Held {
    task: JoinHandle<()>,
}

/// The NATS thread's state.
struct Bridge {
    link: Link,
    client: Client,
    held: HashMap<String, Held>,
}

/// Runs the NATS thread until the node tells it to stop (shutdown, kill or drop). Requests still
/// in flight then are cancelled with the runtime: their askers see their own timeout.
pub(crate) async fn run(link: Link, client: Client, mut rx: UnboundedReceiver<Cmd>) {
    let listener = match client.subscribe(dir_subject_of(&link)).await {
        Ok(sub) => tokio::spawn(listen_directory(link.clone(), sub)),
        Err(e) => {
            tracing::error!("cluster: cannot subscribe to the directory: {e}");
            return;
        }
    };
    let mut bridge = Bridge { link: link.clone(), client: client.clone(), held: HashMap::new() };
    let mut beat = tokio::time::interval(link.config.heartbeat);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let graceful = loop {
        tokio::select! {
            cmd = rx.recv() => match cmd {
                Some(cmd) => if let Some(graceful) = bridge.drain(cmd, &mut rx).await {
                    break graceful;
                },
                None => break true,
            },
            _ = beat.tick() => bridge.heartbeat().await,
        }
    };
    for (_, held) in bridge.held.drain() {
        held.task.abort();
    }
    listener.abort();
    if graceful {
        let leave = DirMsg::Leave { node: link.config.node.clone() };
        if let Ok(body) = wire::encode(&leave) {
            let _ = client.publish(dir_subject_of(&link), body.into()).await;
        }
        let _ = client.flush().await;
    }
}

/// The directory subject of `link`'s cluster.
fn dir_subject_of(link: &Link) -> String {
    format!("nexus.{}.dir", link.config.cluster)
}

/// The subject that answers who holds `name`.
fn whois_subject(link: &Link, name: &str) -> String {
    format!("nexus.{}.whois.{name}", link.config.cluster)
}

/// Whether the client is connected now.
fn connected(client: &Client) -> bool {
    client.connection_state() == async_nats::connection::State::Connected
}

impl Bridge {
    /// Handles `first` and every command already queued behind it (up to [`DRAIN`]) in one
    /// wake-up: publishes go into the client's write buffer back to back, and its connection
    /// task writes them out together once this returns (no flush per message). `Some` when a
    /// stop was among them (`graceful` or not), or the channel closed.
    async fn drain(&mut self, first: Cmd, rx: &mut UnboundedReceiver<Cmd>) -> Option<bool> {
        let mut next = Some(first);
        let mut handled = 0;
        while let Some(cmd) = next.take() {
            if let Cmd::Stop { graceful } = cmd {
                return Some(graceful);
            }
            self.handle(cmd).await;
            handled += 1;
            if handled < DRAIN {
                next = match rx.try_recv() {
                    Ok(cmd) => Some(cmd),
                    Err(tokio::sync::mpsc::error::TryRecvError::Empty) => None,
                    Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => return Some(true),
                };
            }
        }
        None
    }

    async fn handle(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Publish { subject, frame } => {
                if !connected(&self.client) {
                    return self.link.counters.dead(crate::stats::Reason::Unreachable);
                }
                match self.client.publish(subject, frame.into()).await {
                    Ok(()) => self.link.counters.delivered(),
                    Err(_) => self.link.counters.dead(crate::stats::Reason::Unreachable),
                }
            }
            Cmd::Request { subject, name, frame, timeout, finish } => {
                if !connected(&self.client) {
                    return self.link.run(finish(Err(ClusterError::Unreachable(name))));
                }
                tokio::spawn(request(self.link.clone(), self.client.clone(), subject, name, frame, timeout, finish));
            }
            Cmd::Respond { subject, frame } => {
                let _ = self.client.publish(subject, frame.into()).await;
            }
            Cmd::Claim { name, serve, done } => self.claim(name, serve, done).await,
            Cmd::Release { name } => self.release(&name).await,
            Cmd::Whois { name, done } => {
                let (client, subject) = (self.client.clone(), whois_subject(&self.link, &name));
                tokio::spawn(async move {
                    let found = match client.request(subject, bytes::Bytes::new()).await {
                        Ok(_) => Ok(true),
                        Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => Ok(false),
                        Err(_) => Err(ClusterError::Unreachable(name)),
                    };
                    let _ = done.send(found);
                });
            }
            Cmd::Stop { .. } => {}
        }
    }

    /// Publishes this node's heartbeat and expires the nodes whose lease ran out.
    async fn heartbeat(&mut self) {
        let node = self.link.config.node.clone();
        let mut names: Vec<String> = self.held.keys().cloned().collect();
        names.sort();
        if let Ok(mut dir) = self.link.dir.lock() {
            let now = Instant::now();
            dir.apply(DirMsg::Heartbeat { node: node.clone(), names: names.clone() }, now);
            for gone in dir.expire(now, self.link.config.lease) {
                tracing::info!("cluster: node '{gone}' left the directory (lease ran out)");
            }
        }
        if let Ok(body) = wire::encode(&DirMsg::Heartbeat { node, names }) {
            let _ = self.client.publish(dir_subject_of(&self.link), body.into()).await;
        }
    }

    /// Gives `name` up: unsubscribes and tells the others.
    async fn release(&mut self, name: &str) {
        if let Some(held) = self.held.remove(name) {
            held.task.abort();
            let msg = DirMsg::Release { node: self.link.config.node.clone(), name: name.to_owned() };
            if let Ok(mut dir) = self.link.dir.lock() {
                dir.apply(msg.clone(), Instant::now());
            }
            if let Ok(body) = wire::encode(&msg) {
                let _ = self.client.publish(dir_subject_of(&self.link), body.into()).await;
            }
        }
    }
}

/// One request: waits for the answer (or no responders, or the timeout) off the command loop.
async fn request(
    link: Link,
    client: Client,
    subject: async_nats::Subject,
    name: String,
    frame: Vec<u8>,
    timeout: Duration,
    finish: Box<dyn FnOnce(Result<bytes::Bytes, ClusterError>) -> Job + Send>,
) {
    let req = async_nats::Request::new().payload(frame.into()).timeout(Some(timeout));
    let outcome = match client.send_request(subject, req).await {
        Ok(msg) => Ok(msg.payload),
        Err(e) => Err(match e.kind() {
            async_nats::RequestErrorKind::TimedOut => ClusterError::Timeout,
            async_nats::RequestErrorKind::NoResponders => {
                forget_holder(&link, &name);
                ClusterError::Unreachable(name)
            }
            async_nats::RequestErrorKind::Other => ClusterError::Unreachable(name),
        }),
    };
    link.run(finish(outcome));
}

/// Nobody serves `name` any more: its node is gone (or gave it up); drop it from this view.
fn forget_holder(link: &Link, name: &str) {
    if let Ok(mut dir) = link.dir.lock() {
        if let Some(node) = dir.owner(name).map(str::to_owned) {
            if node != link.config.node {
                dir.forget(&node);
            }
        }
    }
}

/// Applies every directory message to this node's view.
async fn listen_directory(link: Link, mut sub: async_nats::Subscriber) {
    while let Some(msg) = sub.next().await {
        match wire::decode::<DirMsg>(&msg.payload) {
            Ok(m) => {
                if let Ok(mut dir) = link.dir.lock() {
                    dir.apply(m, Instant::now());
                }
            }
            Err(e) => tracing::debug!("cluster: bad directory message: {e}"),
        }
    }
}

/// Wall-clock nanoseconds, for ordering claims.
pub(crate) fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

#[path = "claim.rs"]
mod claim;
