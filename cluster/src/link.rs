//! [`Link`]: a node's cluster calls that never block, usable from agents and host threads
//! alike. Each call hands a command to the NATS thread over an unbounded channel; whatever
//! comes back runs later as a job on a bridge agent.
//!
//! Invariant: every message handed to `tell` or `ask` is counted sent once, and ends counted
//! delivered or dead with one reason (see `stats`).

use crate::agents::{BridgeMsg, Job};
use crate::bridge::Cmd;
use crate::call::Reply;
use crate::config::ClusterConfig;
use crate::directory::Directory;
use crate::error::ClusterError;
use crate::serve::Serve;
use crate::stats::Counters;
use crate::wire::{decode, parse_answer, request_frame, Wire, ASK, TELL};
use nexus_engine::agent::{Addr, Ctx};
use nexus_engine::engine::EngineHandle;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

/// What runs, on a bridge agent's shard, once a result came back from the network.
pub type Done<T> = Box<dyn FnOnce(T, &mut Ctx<'_>) + Send>;

/// A node's non-blocking cluster calls; cheap to clone; see the module documentation.
#[derive(Clone)]
pub struct Link {
    pub(crate) tx: UnboundedSender<Cmd>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) dir: Arc<Mutex<Directory>>,
    pub(crate) config: Arc<ClusterConfig>,
    pub(crate) engine: EngineHandle,
    pub(crate) bridges: Arc<[Addr<BridgeMsg>]>,
    pub(crate) next_bridge: Arc<AtomicUsize>,
}

impl Link {
    /// This node's name.
    pub fn node(&self) -> &str {
        &self.config.node
    }

    /// The subject a global name is served on.
    pub(crate) fn name_subject(&self, name: &str) -> async_nats::Subject {
        format!("nexus.{}.name.{name}", self.config.cluster).into()
    }

    /// Sends `q` one way to the holder of the global name `name`. A name no live node holds
    /// in this node's directory (its node left, or its lease ran out, or an ask to it met "no
    /// responders") is not published: the message is counted dead as `unreachable`.
    pub fn tell<Q: Wire>(&self, name: &str, q: &Q) {
        self.tell_to(name, self.name_subject(name), q);
    }

    /// [`tell`](Self::tell) to a name's subject built once (a proxy keeps its own).
    pub(crate) fn tell_to<Q: Wire>(&self, name: &str, subject: async_nats::Subject, q: &Q) {
        self.counters.sent();
        if self.owner_is_unknown(name) {
            return self.counters.dead(crate::stats::Reason::Unreachable);
        }
        match request_frame(TELL, 0, q) {
            Ok(frame) => self.command(Cmd::Publish { subject, frame }),
            Err(e) => self.counters.dead(e.reason()),
        }
    }

    /// Asks the holder of the global name `name` with `q`; `done` gets the typed answer (or
    /// why there is none) on a bridge agent's shard, within `timeout`.
    pub fn ask<Q: Wire, A: Wire>(&self, name: &str, q: &Q, timeout: Duration, done: Done<Reply<A>>) {
        self.counters.sent();
        let timeout_ms = timeout.as_millis().min(u32::MAX as u128) as u32;
        let frame = match request_frame(ASK, timeout_ms, q) {
            Ok(frame) => frame,
            Err(e) => {
                self.counters.dead(e.reason());
                return self.run(Box::new(move |ctx| done(Err(e), ctx)));
            }
        };
        let counters = self.counters.clone();
        let finish: Box<dyn FnOnce(Result<bytes::Bytes, ClusterError>) -> Job + Send> = Box::new(move |raw| {
            let answer = raw.and_then(|frame| parse_answer(&frame).and_then(decode::<A>));
            match &answer {
                Ok(_) => counters.delivered(),
                Err(e) => counters.dead(e.reason()),
            }
            Box::new(move |ctx| done(answer, ctx))
        });
        self.command(Cmd::Request { subject: self.name_subject(name), name: name.into(), frame, timeout, finish });
    }

    /// Claims the global name `name` for `serve`; `done` gets the outcome on a bridge
    /// agent's shard. First claim wins; the loser gets [`ClusterError::Conflict`].
    pub fn claim(&self, name: &str, serve: Arc<dyn Serve>, done: Done<Result<(), ClusterError>>) {
        if let Err(e) = crate::error::validate_global_name(name) {
            return self.run(Box::new(move |ctx| done(Err(e), ctx)));
        }
        self.command(Cmd::Claim { name: name.into(), serve, done });
    }

    /// Gives the global name `name` up (if this node holds it).
    pub fn release(&self, name: &str) {
        let _ = self.tx.send(Cmd::Release { name: name.into() });
    }

    /// The live nodes this node knows of, sorted (itself included).
    pub fn nodes(&self) -> Vec<String> {
        self.dir.lock().map(|d| d.nodes()).unwrap_or_default()
    }

    /// Every global name and the node that holds it, sorted by name.
    pub fn names(&self) -> Vec<(String, String)> {
        self.dir.lock().map(|d| d.names().into_iter().collect()).unwrap_or_default()
    }

    /// The node that holds `name` in this node's view of the directory.
    pub fn owner(&self, name: &str) -> Option<String> {
        self.dir.lock().ok().and_then(|d| d.owner(name).map(str::to_owned))
    }

    /// Whether this node's directory knows no live holder of `name` (a poisoned lock counts as
    /// known: the message is sent and NATS decides).
    fn owner_is_unknown(&self, name: &str) -> bool {
        self.dir.lock().map(|d| d.owner(name).is_none()).unwrap_or(false)
    }

    /// The bridge's counters now.
    pub fn stats(&self) -> crate::stats::ClusterStats {
        self.counters.snapshot()
    }

    /// Hands `cmd` to the NATS thread; with that thread gone, what it carried fails as
    /// `Stopped` (counted `unreachable`).
    fn command(&self, cmd: Cmd) {
        if let Err(back) = self.tx.send(cmd) {
            back.0.fail(self, ClusterError::Stopped);
        }
    }

    /// Runs `job` on a bridge agent (round robin over the shards). A job the engine refuses
    /// for more than a second (it is stopping) is dropped.
    pub(crate) fn run(&self, job: Job) {
        self.try_run(job);
    }

    /// [`run`](Self::run), saying whether the engine took the job.
    pub(crate) fn try_run(&self, job: Job) -> bool {
        self.try_send(BridgeMsg::Run(job))
    }

    /// Sends `msg` to a bridge agent (round robin), saying whether the engine took it.
    pub(crate) fn try_send(&self, msg: BridgeMsg) -> bool {
        let i = self.next_bridge.fetch_add(1, Ordering::Relaxed) % self.bridges.len();
        let sent = self.engine.send_timeout(self.bridges[i], msg, Duration::from_secs(1));
        if sent.is_err() {
            tracing::debug!("cluster: the engine refused a bridge job (stopping?)");
        }
        sent.is_ok()
    }
}
