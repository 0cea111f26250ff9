//! [`Node`]: one engine's membership in a cluster. It starts the bridge agents and the NATS
//! thread, and offers the blocking host calls (claim a global name, resolve one) on top of the
//! non-blocking [`Link`].
//!
//! Invariants: the NATS thread is joined when the node is dropped or shut down; resolution
//! looks in the local registry first, then at the names this node holds, then at the
//! directory (asking the name's whois subject when the directory does not know it yet); a
//! resolved remote name is one proxy agent per name and message type, reused.

use crate::agents::{BridgeAgent, Proxy};
use crate::bridge::{self, Cmd};
use crate::call::Call;
use crate::config::ClusterConfig;
use crate::directory::Directory;
use crate::error::{validate_global_name, ClusterError};
use crate::link::Link;
use crate::serve::{CallServer, Serve};
use crate::stats::ClusterStats;
use crate::wire::Wire;
use nexus_engine::agent::{Addr, AgentId, SpawnPlacement};
use nexus_engine::engine::EngineHandle;
use std::any::TypeId;
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::atomic::AtomicUsize;
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long a host call waits for the NATS thread's answer.
const HOST_WAIT: Duration = Duration::from_secs(10);

/// A running cluster member; see the module documentation.
pub struct Node {
    link: Link,
    thread: Option<JoinHandle<()>>,
    proxies: Mutex<HashMap<(String, TypeId), AgentId>>,
    local: Mutex<HashMap<String, AgentId>>,
}

impl Node {
    /// Joins the cluster `config` names with `engine`: spawns one bridge agent per shard,
    /// connects to NATS (failing with `Connect` if it cannot) and starts the NATS thread.
    pub fn start(engine: &EngineHandle, config: ClusterConfig) -> Result<Node, ClusterError> {
        let mut bridges = Vec::with_capacity(engine.shards());
        for shard in 0..engine.shards() {
            let addr = engine
                .spawn(SpawnPlacement::Shard(shard), BridgeAgent::default)
                .map_err(|e| ClusterError::Remote(format!("cannot spawn a bridge agent: {e}")))?;
            bridges.push(addr);
        }
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let link = Link {
            tx,
            counters: Arc::default(),
            dir: Arc::new(Mutex::new(Directory::default())),
            config: Arc::new(config),
            engine: engine.clone(),
            bridges: bridges.into(),
            next_bridge: Arc::new(AtomicUsize::new(0)),
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ClusterError::Remote(format!("cannot build the NATS thread's runtime: {e}")))?;
        let client = runtime.block_on(bridge::connect(&link))?;
        let thread_link = link.clone();
        let thread = std::thread::Builder::new()
            .name(format!("nexus-cluster-{}", link.config.node))
            .spawn(move || runtime.block_on(bridge::run(thread_link, client, rx)))
            .map_err(|e| ClusterError::Remote(format!("cannot start the NATS thread: {e}")))?;
        Ok(Node { link, thread: Some(thread), proxies: Mutex::default(), local: Mutex::default() })
    }

    /// The non-blocking calls, for agents and servers.
    pub fn link(&self) -> Link {
        self.link.clone()
    }

    /// This node's name.
    pub fn name(&self) -> &str {
        self.link.node()
    }

    /// Registers `addr` under the global name `name`, found from every node. Blocks until the
    /// claim is decided: [`ClusterError::Conflict`] when another node holds or won the name.
    pub fn register_global<Q: Wire, A: Wire>(&self, name: &str, addr: Addr<Call<Q, A>>) -> Result<(), ClusterError> {
        self.register_serve(name, Arc::new(CallServer { addr, _types: PhantomData }))?;
        if let Ok(mut local) = self.local.lock() {
            local.insert(name.to_owned(), addr.id());
        }
        Ok(())
    }

    /// Registers any [`Serve`] under the global name `name` (see [`register_global`](Self::register_global)).
    pub fn register_serve(&self, name: &str, serve: Arc<dyn Serve>) -> Result<(), ClusterError> {
        let (tx, rx) = mpsc::channel();
        self.link.claim(
            name,
            serve,
            Box::new(move |outcome, _ctx| {
                let _ = tx.send(outcome);
            }),
        );
        rx.recv_timeout(HOST_WAIT).map_err(|_| ClusterError::Timeout)?
    }

    /// Gives the global name `name` up.
    pub fn unregister_global(&self, name: &str) {
        if let Ok(mut local) = self.local.lock() {
            local.remove(name);
        }
        self.link.release(name);
    }

    /// Resolves `name` to an address that `send` and `ask` work on, wherever the agent runs:
    /// the local registry first, then this node's global names, then the cluster (a proxy).
    pub fn resolve<Q: Wire, A: Wire>(&self, name: &str) -> Result<Addr<Call<Q, A>>, ClusterError> {
        if let Ok(Some(id)) = self.link.engine.lookup(name) {
            return Ok(Addr::from_id(id));
        }
        if let Some(id) = self.local.lock().ok().and_then(|l| l.get(name).copied()) {
            return Ok(Addr::from_id(id));
        }
        validate_global_name(name)?;
        if self.link.owner(name).is_none() && !self.whois(name)? {
            return Err(ClusterError::NotFound(name.to_owned()));
        }
        self.proxy::<Q, A>(name)
    }

    /// Asks the name's whois subject whether some node serves it.
    fn whois(&self, name: &str) -> Result<bool, ClusterError> {
        let (tx, rx) = mpsc::channel();
        let _ = self.link.tx.send(Cmd::Whois { name: name.to_owned(), done: tx });
        rx.recv_timeout(HOST_WAIT).map_err(|_| ClusterError::Timeout)?
    }

    /// The proxy for `name` with these message types, spawned the first time.
    fn proxy<Q: Wire, A: Wire>(&self, name: &str) -> Result<Addr<Call<Q, A>>, ClusterError> {
        let key = (name.to_owned(), TypeId::of::<Call<Q, A>>());
        let mut proxies = self.proxies.lock().map_err(|_| ClusterError::Stopped)?;
        if let Some(id) = proxies.get(&key) {
            return Ok(Addr::from_id(*id));
        }
        let link = self.link.clone();
        let shared_name: Arc<str> = name.into();
        let addr = self
            .link
            .engine
            .spawn(SpawnPlacement::RoundRobin, move || Proxy::<Q, A>::new(shared_name, link))
            .map_err(|e| ClusterError::Remote(format!("cannot spawn a proxy: {e}")))?;
        proxies.insert(key, addr.id());
        Ok(addr)
    }

    /// The live nodes, sorted (this one included).
    pub fn nodes(&self) -> Vec<String> {
        self.link.nodes()
    }

    /// Every global name and its node, sorted by name.
    pub fn names(&self) -> Vec<(String, String)> {
        self.link.names()
    }

    /// The bridge's counters.
    pub fn stats(&self) -> ClusterStats {
        self.link.stats()
    }

    /// Leaves the cluster (the others drop this node's names at once) and stops the NATS thread.
    pub fn shutdown(mut self) {
        self.stop(true);
    }

    /// Drops the NATS connection without leaving, as a crash would: the others learn of it
    /// by "no responders" and when its lease runs out. For fault tests.
    pub fn kill(mut self) {
        self.stop(false);
    }

    fn stop(&mut self, graceful: bool) {
        let _ = self.link.tx.send(Cmd::Stop { graceful });
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop(true);
    }
}
