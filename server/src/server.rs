//! Starting and stopping the server: the shard service, the acceptors, the handle.
//!
//! [`ServerBuilder::install`] adds a shard service to an `EngineBuilder`. On every shard, as it
//! starts, the service spawns the shard's partition and ingress agents, records them in the
//! [`Directory`], binds the listen address with SO_REUSEPORT (so the kernel spreads incoming
//! connections over the shards) and spawns the acceptor task. A bind failure fails the engine's
//! start with the reason. Acceptors wait until every shard has started before they accept, and,
//! for a server built with [`ServerBuilder::open_later`], until [`ServerHandle::open`]: `nexus
//! run` uses that to spawn its config's agents ([`ServerHandle::spawn_agent`]) before the first
//! client can ask for them.
//!
//! Installing claims the listen address ([`AddressLock`]): a second server on an address one
//! already serves fails to install, instead of sharing the port through SO_REUSEPORT.
//! The first shard to start fits `max_clients` to the open-file limit
//! ([`crate::nofile::fit_max_clients`]); an acceptor turns a client over it away with
//! `-ERR max number of clients reached`, and logs accept errors at most once a second, with a
//! count, pausing longer when out of file descriptors.
//!
//! With `[persistence] mode = "aof"` ([`ServerBuilder::persistence`]), each shard replays its
//! log into its store as it starts (before any acceptor opens: they wait for every shard), and
//! starts its log writer; the first shard checks the directory's shard count. A log that cannot
//! be replayed fails the start with the reason. [`ServerHandle::recovery`] sums the replays.
//!
//! Stopping ([`ServerHandle::stop`]): acceptors stop and close their listeners; connections stop
//! reading, finish the commands in flight, flush their replies and close.
//! [`ServerHandle::wait_closed`] waits for that, before the engine itself shuts down.

use crate::address_lock::AddressLock;
use crate::command_trace::ConnTracing;
use crate::conn::{self, ConnEnv};
use crate::directory::Directory;
use crate::front::Front;
use crate::ingress::{InfoContext, Ingress};
use crate::kinds::{AgentRequest, Kinds};
use crate::kv::{KvStore, MemoryLimit};
use crate::partition::{PartMsg, PartOp, Partition};
use crate::persist::Durability;
use crate::persist::{Recovery, RingInbox, WriterKind};
use crate::resp::{Limits, Protocol, Value};
use crate::rt::{Listener, Rt};
use crate::stats::{ServerCounters, ShardServerStats};
use bytes::Bytes;
use futures_lite::io::AsyncWriteExt;
use nexus_engine::agent::{Addr, SpawnPlacement};
use nexus_engine::config::{FsyncPolicy, PersistenceConfig, PersistenceMode, ServerConfig, TracingConfig};
use nexus_engine::engine::{EngineBuilder, EngineHandle, ShardService, ShardSetup};
use nexus_engine::registry::owner_of;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Mailbox capacity of the partition and ingress agents: every shard's connections feed them,
/// and a cross-shard message to a full mailbox would be lost (counted), so it is large.
const SERVER_MAILBOX: u32 = 1 << 20;

/// How long [`ServerHandle::spawn_agent`] waits for the name's partition to record an agent.
const HOST_ASK_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the server could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// `listen` is not an address.
    #[error("listen = \"{0}\" is not an IP address and port; hint: use e.g. \"127.0.0.1:7379\"")]
    BadAddress(String),
    /// Another server (or program) already listens on `listen`; the message names the address
    /// and has a hint.
    #[error("{0}")]
    InUse(String),
}

/// Configures a server; see the module documentation.
#[derive(Debug)]
#[must_use]
pub struct ServerBuilder {
    config: ServerConfig,
    kinds: Kinds,
    open_later: bool,
    tracing: TracingConfig,
    persistence: PersistenceConfig,
}

impl ServerBuilder {
    /// A server with `config` and the built-in agent kinds.
    pub fn new(config: ServerConfig) -> Self {
        Self {
            config,
            kinds: Kinds::builtin(),
            open_later: false,
            tracing: TracingConfig::default(),
            persistence: PersistenceConfig::default(),
        }
    }

    /// `[persistence]`: the shards' append-only logs (off by default). Check it first with
    /// `PersistenceConfig::check` (`EngineConfig::validate` does).
    pub fn persistence(mut self, persistence: &PersistenceConfig) -> Self {
        self.persistence = persistence.clone();
        self
    }

    /// Which commands are always traced, and the sampling `NEXUS.TRACE STOP` goes back to
    /// (`[tracing]`; the engine's own sampling is set on its builder). Check it first with
    /// [`check_tracing`].
    pub fn tracing(mut self, tracing: &TracingConfig) -> Self {
        self.tracing = tracing.clone();
        self
    }

    /// The agent kinds the server spawns, through `AGENT.SPAWN` and
    /// [`ServerHandle::spawn_agent`] (replaces the built-in set).
    pub fn kinds(mut self, kinds: Kinds) -> Self {
        self.kinds = kinds;
        self
    }

    /// Accept no connection until [`ServerHandle::open`] is called (the listeners are bound at
    /// the engine's start either way, so a port in use still fails it).
    pub fn open_later(mut self) -> Self {
        self.open_later = true;
        self
    }

    /// Adds the server to `engine` (on either executor); the handle stops it.
    pub fn install(self, engine: EngineBuilder) -> Result<(EngineBuilder, ServerHandle), ServerError> {
        let addr: SocketAddr =
            self.config.listen.parse().map_err(|_| ServerError::BadAddress(self.config.listen.clone()))?;
        let lock = Arc::new(AddressLock::claim(addr).map_err(ServerError::InUse)?);
        let directory = Arc::new(Directory::new());
        directory.set_open(!self.open_later);
        let service = Arc::new(RespService {
            addr,
            config: self.config,
            tracing: self.tracing,
            kinds: Arc::new(self.kinds),
            directory: directory.clone(),
            max_clients: std::sync::OnceLock::new(),
            persistence: self.persistence,
            dir_checked: std::sync::OnceLock::new(),
            recovery: Arc::new(Recovery::default()),
        });
        let kinds = service.kinds.clone();
        let recovery = (service.persistence.mode == PersistenceMode::Aof).then(|| service.recovery.clone());
        Ok((engine.service(service), ServerHandle { directory, addr, kinds, recovery, _lock: lock }))
    }
}

/// Controls a running server (cheap to clone).
#[derive(Clone, Debug)]
pub struct ServerHandle {
    directory: Arc<Directory>,
    addr: SocketAddr,
    kinds: Arc<Kinds>,
    /// The shards' replays, when persistence is on.
    recovery: Option<Arc<Recovery>>,
    /// The claim on `addr`, released when the last handle is dropped.
    _lock: Arc<AddressLock>,
}

impl ServerHandle {
    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Starts accepting connections, for a server built with [`ServerBuilder::open_later`]
    /// (does nothing otherwise).
    pub fn open(&self) {
        self.directory.set_open(true);
    }

    /// Stops accepting; open connections finish what they started and close.
    pub fn stop(&self) {
        self.directory.stop();
    }

    /// Connections open now.
    pub fn connections(&self) -> u64 {
        self.directory.connections.load(Ordering::Relaxed)
    }

    /// Waits until every connection closed or `timeout` passed; returns whether they all closed.
    pub fn wait_closed(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.connections() > 0 {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }

    /// Every shard's server counters summed.
    pub fn totals(&self) -> ServerCounters {
        self.directory.totals()
    }

    /// Shard `shard`'s server counters.
    pub fn shard(&self, shard: usize) -> Option<&ShardServerStats> {
        self.directory.stats().get(shard)
    }

    /// Number of shards.
    pub fn shards(&self) -> usize {
        self.directory.shards()
    }

    /// With persistence on, once the engine started: "recovered N keys from M logs in S s".
    pub fn recovery(&self) -> Option<String> {
        self.recovery.as_ref().map(|r| r.summary())
    }

    /// The agent kinds this server spawns.
    pub fn kinds(&self) -> &Kinds {
        &self.kinds
    }

    /// Spawns an agent of `kind` from a host thread where `placement` says, registers it as
    /// `name` and records it with the partition that owns the name, so that `AGENT.SEND`,
    /// `.ASK`, `.INFO`, `.STOP` and `.LIST` treat it as one started by `AGENT.SPAWN`. `nexus
    /// run` starts its config's `[[agents]]` this way. Errors are one line; an unknown kind or a
    /// bad argument spawns nothing, and an agent whose name cannot be taken is stopped again.
    pub fn spawn_agent(
        &self,
        engine: &EngineHandle,
        kind: &str,
        name: &str,
        args: &[Bytes],
        placement: SpawnPlacement,
    ) -> Result<Addr<AgentRequest>, String> {
        let addr = self.kinds.spawn_from_host(engine, kind, args, placement)?;
        let id = addr.id();
        let undo = |message: String| {
            let _ = engine.stop(id);
            message
        };
        engine.register(name, id).map_err(|e| undo(format!("cannot register agent name '{name}': {e}")))?;
        let owner = owner_of(name, engine.shards());
        let partition = self
            .directory
            .partition(owner)
            .ok_or_else(|| undo(format!("the server's shard {owner} has not started")))?;
        let op = PartOp::Adopt { kind: kind.to_owned(), name: name.to_owned(), id };
        let answer = engine
            .ask(partition, HOST_ASK_TIMEOUT, |reply| PartMsg { op, reply: Some(reply) })
            .map_err(|e| undo(format!("cannot record agent '{name}' with the server: {e}")))?;
        match answer {
            Value::Error(e) => Err(undo(format!("cannot record agent '{name}' with the server: {e}"))),
            _ => Ok(addr),
        }
    }
}

struct RespService {
    addr: SocketAddr,
    config: ServerConfig,
    tracing: TracingConfig,
    kinds: Arc<Kinds>,
    directory: Arc<Directory>,
    /// `max_clients` fitted to the open-file limit, by the first shard to start.
    max_clients: std::sync::OnceLock<u64>,
    persistence: PersistenceConfig,
    /// The log directory's check, by the first shard to start.
    dir_checked: std::sync::OnceLock<Result<(), String>>,
    recovery: Arc<Recovery>,
}

impl RespService {
    /// Shard `shard`'s store: empty, or replayed from its log with the journal attached (then
    /// with the log's durability handle and, on glommio, its io_uring writer's inbox).
    fn store(&self, setup: &ShardSetup<'_>) -> Result<(KvStore, Option<OpenedLog>), String> {
        if self.persistence.mode == PersistenceMode::Off {
            return Ok((KvStore::new(), None));
        }
        let dir = std::path::Path::new(&self.persistence.dir);
        self.dir_checked
            .get_or_init(|| crate::persist::check_dir(dir, setup.shards()).map_err(|e| e.to_string()))
            .clone()?;
        let started = Instant::now();
        let clocks = (setup.now_ns() / 1_000_000, crate::kv::wall_now_ms());
        // A glommio shard writes its log through io_uring from a task of its own; a threads
        // shard through a writer thread, or under `always` on its own thread.
        let writer = match Rt::of(setup.executor()) {
            Rt::Glommio => WriterKind::Ring,
            Rt::Threads if self.persistence.fsync == FsyncPolicy::Always => WriterKind::Shard,
            Rt::Threads => WriterKind::Thread,
        };
        let mut log =
            crate::persist::open_shard(&self.persistence, setup.index(), clocks, writer).map_err(|e| e.to_string())?;
        let keys = log.kv.len(clocks.0) as u64;
        self.recovery.add(keys, log.replayed.bytes > 0, started.elapsed());
        Ok((log.kv, Some(OpenedLog { durability: log.durability, ring: log.ring })))
    }
}

/// A shard's log once its store is replayed: the durability handle, and the io_uring
/// writer's inbox on glommio.
struct OpenedLog {
    durability: Rc<Durability>,
    ring: Option<Rc<RingInbox>>,
}

impl ShardService for RespService {
    fn start(&self, setup: &mut ShardSetup<'_>) -> Result<(), String> {
        let rt = Rt::of(setup.executor());
        // The kernel threads that write and sync a log in the background must not preempt the
        // shard. Under `always` each answer waits on its sync and the shard's CPU idles
        // meanwhile, so they stay there (moved, SET -P 16 read 0.90x; PERF.md).
        let background_syncs =
            self.persistence.mode != PersistenceMode::Off && self.persistence.fsync != FsyncPolicy::Always;
        if rt == Rt::Glommio && background_syncs {
            crate::off_shard::io_workers_off_shard();
        }
        self.directory.set_shards(setup.shards())?;
        let shard = setup.index();
        let front = Rc::new(Front::default());
        let (kv, log) = self.store(setup)?;
        let (durability, ring) = log.map_or((None, None), |l| (Some(l.durability), l.ring));
        let limit = MemoryLimit::new(self.config.maxmemory, self.config.maxmemory_policy, setup.shards());
        let kv = Rc::new(std::cell::RefCell::new(kv.with_memory_limit(limit)));
        if let Some(ring) = ring {
            // The io_uring writer must write, sync and close the log while the executor runs.
            let kv = kv.clone();
            // The store (and its journal) stays alive until the task has closed the log.
            setup.on_stop(async move {
                let flush = || {
                    if let Some(journal) = kv.borrow_mut().journal_mut() {
                        journal.flush_now();
                    }
                };
                crate::persist::close_ring(ring, flush).await;
                drop(kv);
            });
        }
        let mut partition = Partition::new(self.kinds.clone(), self.directory.clone(), kv.clone());
        if let Some(durability) = &durability {
            partition = partition.with_log(durability.clone());
        }
        let partition = setup.spawn_with_capacity(partition, SERVER_MAILBOX).map_err(|e| e.to_string())?;
        // Under fsync = always an answer waits until the log is durable past it: the
        // partition holds its own, a connection gates what it ran inline.
        let always = durability.clone().filter(|_| self.persistence.fsync == FsyncPolicy::Always);
        if let Some(durability) = &durability {
            let handle = setup.handle();
            durability.set_notify(Box::new(move || {
                let msg = PartMsg { op: PartOp::LogSynced, reply: None };
                if handle.send_timeout(partition, msg, Duration::from_secs(1)).is_err() {
                    tracing::warn!(shard, "the log writer's notice to the partition was refused");
                }
            }));
        }
        let info = Rc::new(InfoContext { executor: rt.name(), port: self.addr.port() });
        let ingress = Ingress::new(shard, front.clone(), self.directory.clone(), self.kinds.clone(), info);
        let ingress = setup.spawn_with_capacity(ingress, SERVER_MAILBOX).map_err(|e| e.to_string())?;
        self.directory.set(shard, partition.id(), ingress.id());
        let listener = rt.bind(self.addr).map_err(|e| {
            format!("cannot listen on {}: {e}; hint: is another server on that port? set [server] listen", self.addr)
        })?;
        let idle = (self.config.idle_timeout_s > 0).then(|| Duration::from_secs(self.config.idle_timeout_s));
        let password = (!self.config.requirepass.is_empty()).then(|| Bytes::from(self.config.requirepass.clone()));
        let env = Rc::new(ConnEnv {
            shard,
            rt,
            front,
            kv,
            always,
            batches: Default::default(),
            spares: Default::default(),
            directory: self.directory.clone(),
            handle: setup.handle(),
            tracing: ConnTracing::new(
                setup.handle().tracing().sink(shard).ok_or_else(|| format!("no span buffer for shard {shard}"))?,
                &self.tracing.commands,
                self.tracing.sample,
            ),
            ingress,
            limits: Limits {
                max_bulk: usize::try_from(self.config.max_bulk).unwrap_or(usize::MAX),
                max_args: usize::try_from(self.config.max_args).unwrap_or(usize::MAX),
                ..Limits::default()
            },
            output_limit: usize::try_from(self.config.client_output_limit).unwrap_or(usize::MAX),
            password,
            last_client: std::cell::Cell::new(0),
            config: self.config.clone(),
        });
        let max_clients = *self
            .max_clients
            .get_or_init(|| crate::nofile::fit_max_clients(u64::from(self.config.max_clients), setup.shards()));
        if let Some(timeout) = idle {
            rt.spawn(crate::conn::idle::sweep(env.clone(), timeout));
        }
        rt.spawn(accept_loop(listener, env, max_clients));
        Ok(())
    }
}

/// Accepts connections on one shard until the server stops.
async fn accept_loop(listener: Listener, env: Rc<ConnEnv>, max_clients: u64) {
    let rt = env.rt;
    let directory = env.directory.clone();
    let ready = |d: &Directory| d.complete() && d.is_open();
    while !ready(&directory) && !directory.is_stopping() {
        rt.sleep(Duration::from_millis(1)).await;
    }
    let stats = directory.shard_stats(env.shard);
    let mut accept_errors = AcceptErrors::default();
    loop {
        let accepted = futures_lite::future::or(async { Some(listener.accept().await) }, async {
            directory.stopped().await;
            None
        })
        .await;
        let stream = match accepted {
            None => break,
            Some(Ok(s)) => s,
            Some(Err(e)) => {
                let pause = accept_errors.failed(env.shard, &e, Instant::now());
                rt.sleep(pause).await;
                continue;
            }
        };
        ShardServerStats::add(&stats.connections_total, 1);
        if directory.connections.fetch_add(1, Ordering::Relaxed) >= max_clients {
            directory.connections.fetch_sub(1, Ordering::Relaxed);
            ShardServerStats::add(&stats.rejected_max_clients, 1);
            let mut out = Vec::new();
            Value::error("ERR max number of clients reached").encode(Protocol::Resp2, &mut out);
            let mut stream = stream;
            let _ = stream.write_all(&out).await;
            let _ = stream.close().await;
            continue;
        }
        ShardServerStats::add(&stats.connections, 1);
        rt.spawn(conn::serve(stream, env.clone()));
    }
    drop(listener);
    env.front.stopping.set(true);
    env.front.wake_all();
    tracing::debug!(shard = env.shard, "acceptor stopped");
}

/// Reports a shard's accept errors without flooding the log: at most one line per
/// [`AcceptErrors::EVERY`], counting the ones in between, and says how long to pause before the
/// next accept (longer when out of file descriptors, which only a closing client cures).
#[derive(Debug, Default)]
struct AcceptErrors {
    /// When the last line was logged.
    last_line: Option<Instant>,
    /// Errors since then, not logged.
    unreported: u64,
}

impl AcceptErrors {
    /// At most one log line this often.
    const EVERY: Duration = Duration::from_secs(1);

    /// Counts `e`, logs it if a line is due, and returns the pause before the next accept.
    fn failed(&mut self, shard: usize, e: &std::io::Error, now: Instant) -> Duration {
        let out_of_fds = matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE));
        if self.last_line.map_or(true, |at| now.duration_since(at) >= Self::EVERY) {
            let hint = if out_of_fds {
                "; hint: out of file descriptors: raise the open-file limit (ulimit -n) or lower [server] max_clients"
            } else {
                ""
            };
            tracing::warn!(shard, "accept failed: {e} ({} more since the last report){hint}", self.unreported);
            self.last_line = Some(now);
            self.unreported = 0;
        } else {
            self.unreported += 1;
        }
        Duration::from_millis(if out_of_fds { 100 } else { 10 })
    }
}

/// Checks `[tracing]` against the server's command table: the engine's checks, and that every
/// name in `commands` is a command. `(key, message, hint)` names the first problem.
pub fn check_tracing(tracing: &TracingConfig) -> Result<(), (&'static str, String, String)> {
    let names: Vec<&str> = crate::commands::COMMANDS.iter().map(|(_, spec)| spec.name).collect();
    tracing.check(&names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_errors_log_once_a_second_and_back_off_longer_without_descriptors() {
        let mut errors = AcceptErrors::default();
        let emfile = std::io::Error::from_raw_os_error(libc::EMFILE);
        let start = Instant::now();
        assert_eq!(errors.failed(0, &emfile, start), Duration::from_millis(100));
        assert_eq!(errors.last_line, Some(start));
        for i in 1..=50 {
            errors.failed(0, &emfile, start + Duration::from_millis(i * 10));
        }
        assert_eq!((errors.last_line, errors.unreported), (Some(start), 50), "no line within the second");
        let later = start + Duration::from_secs(1);
        let other = std::io::Error::from_raw_os_error(libc::ECONNABORTED);
        assert_eq!(errors.failed(0, &other, later), Duration::from_millis(10));
        assert_eq!((errors.last_line, errors.unreported), (Some(later), 0), "a line a second, with the count");
    }
}
