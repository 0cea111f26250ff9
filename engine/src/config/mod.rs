//! The engine's TOML configuration: types, defaults, parsing and semantic validation.
//!
//! This module owns the shape of a Nexus config file ([`EngineConfig`] and the section types
//! below), the built-in defaults, and the two steps that turn text into a usable config:
//!
//! 1. [`EngineConfig::from_toml_str`] / [`EngineConfig::from_file`] parse TOML. Every section
//!    is optional and every key in it too; unknown keys are errors, so typos never pass
//!    silently.
//! 2. [`EngineConfig::validate`] checks what the types cannot express (powers of two, non-zero
//!    capacities, known agent kinds, `cpus` versus `shards`); it lives in `validate.rs`, one
//!    check per section.
//!
//! Invariants:
//! - There is one source of defaults: the `Default` impls here. Parsing an empty string yields
//!   `EngineConfig::default()`, and `configs/default.toml` spells out exactly those values (the
//!   tests check both).
//! - Every error is a [`ConfigError`] that names the file and, where it can be found, the
//!   1-based line and the dotted key (`mailbox.capacity`, `agents[1].kind`, with 0-based
//!   indices for `[[agents]]` entries), and always carries a hint on how to fix it. Its
//!   `Display` is a single line.
//! - A parsed config remembers its text ([`ConfigSource`]) only so that validation errors can
//!   point at a line; the source takes no part in equality.

mod coord;
mod error;
mod memory;
mod persistence;
#[cfg(test)]
mod tests;
mod tracing;
mod validate;

pub use coord::CoordConfig;
pub use error::ConfigError;
pub use memory::{parse_memory_size, EvictionPolicy, MemorySizeError};
pub use persistence::{FsyncPolicy, PersistenceConfig, PersistenceMode};
pub use tracing::TracingConfig;

/// `mailbox.overflow`: what a full mailbox does (`"reject"` or `"drop"`); the mailbox's own type.
pub use crate::mailbox::OverflowPolicy;
/// `executor`: what each shard runs inside (`"glommio"` or `"thread"`); the shard's own type.
pub use crate::shard::ExecutorKind;

use crate::placement::{Placement, PlacementRequest};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// A whole engine configuration, as read from one TOML file.
///
/// Each field is one top-level table (or key) of the file; a table left out takes its
/// `Default`. `Default::default()` equals `configs/default.toml`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// `[placement]`: how many shards run and on which CPUs.
    pub placement: PlacementConfig,
    /// `[idle]`: what a shard does when it has no work.
    pub idle: IdleConfig,
    /// `[mailbox]`: per-agent mailbox bounds.
    pub mailbox: MailboxConfig,
    /// `[mesh]`: the shard-to-shard SPSC rings.
    pub mesh: MeshConfig,
    /// `[metrics]`: latency sampling and status reporting.
    pub metrics: MetricsConfig,
    /// `[shutdown]`: graceful stop.
    pub shutdown: ShutdownConfig,
    /// `[shedding]`: when an overloaded shard sheds normal-lane messages.
    pub shedding: SheddingConfig,
    /// `[coord]`: the coordination layer's weights and windows (crate `nexus-coord`).
    pub coord: CoordConfig,
    /// `[[agents]]`: the agents started with the engine. A file that lists any `[[agents]]`
    /// replaces the whole default list.
    pub agents: Vec<AgentSpec>,
    /// `[load]`: the built-in load generator `nexus run` starts, or `None` for none. In TOML,
    /// `load = false` (a top-level key) turns it off; a `[load]` table turns it on.
    #[serde(deserialize_with = "deserialize_load")]
    pub load: Option<LoadConfig>,
    /// `executor`: what each shard runs inside: `"auto"` (the default: glommio when the machine
    /// allows it, threads otherwise), `"glommio"` (a glommio `LocalExecutor` per shard) or
    /// `"threads"` (a plain pinned thread per shard, epoll for I/O). See [`crate::executor`].
    pub executor: ExecutorKind,
    /// `[server]`: the RESP (Redis protocol) front end and the metrics endpoint of `nexus run`.
    pub server: ServerConfig,
    /// `[tracing]`: message tracing (sampling, span buffer, OTLP export, traced commands).
    pub tracing: TracingConfig,
    /// `[persistence]`: the RESP server's append-only logs (off by default).
    pub persistence: PersistenceConfig,
    /// `[cluster]`: the NATS cluster `nexus run` joins (crate `nexus-cluster` checks and uses
    /// it), or `None` (no table) for a node on its own.
    pub cluster: Option<ClusterSection>,
    /// Where this config was read from, kept so that [`EngineConfig::validate`] can name the
    /// line of a bad key; `ConfigSource::default()` (`<config>`, no text) for configs built in
    /// code. Never read from TOML, and ignored by `==`.
    #[serde(skip)]
    pub source: ConfigSource,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            placement: PlacementConfig::default(),
            idle: IdleConfig::default(),
            mailbox: MailboxConfig::default(),
            mesh: MeshConfig::default(),
            metrics: MetricsConfig::default(),
            shutdown: ShutdownConfig::default(),
            shedding: SheddingConfig::default(),
            coord: CoordConfig::default(),
            agents: vec![
                AgentSpec::named("echo", "echo"),
                AgentSpec::named("counter", "counter"),
                AgentSpec::named("kv", "kv"),
            ],
            load: None,
            executor: ExecutorKind::default(),
            server: ServerConfig::default(),
            tracing: TracingConfig::default(),
            persistence: PersistenceConfig::default(),
            cluster: None,
            source: ConfigSource::default(),
        }
    }
}

/// The text a config was parsed from and the name used for it in error messages.
///
/// Compares equal to every other `ConfigSource`: where a config came from is not part of its
/// value, so a parsed config equals the same settings built in code.
#[derive(Clone)]
pub struct ConfigSource {
    origin: String,
    text: Arc<str>,
}

impl ConfigSource {
    /// The file name (or other origin) used in error messages.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The TOML text the config was parsed from.
    pub fn text(&self) -> &str {
        &self.text
    }
}

impl Default for ConfigSource {
    /// The source of a config built in code: origin `<config>`, no text.
    fn default() -> Self {
        Self { origin: "<config>".to_owned(), text: Arc::from("") }
    }
}

impl PartialEq for ConfigSource {
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

impl Eq for ConfigSource {}

impl fmt::Debug for ConfigSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigSource").field("origin", &self.origin).field("bytes", &self.text.len()).finish()
    }
}

/// `[placement]`: how many shards run and on which CPUs.
#[derive(Clone, Debug, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlacementConfig {
    /// `shards`: how many shards to start (`"auto"` or a positive count). Default `"auto"`.
    pub shards: ShardCount,
    /// `cpus`: the exact CPU ids to run shards on, one shard each. `None` (the default) lets
    /// the engine choose among all available CPUs. Must not be empty, and must not be combined
    /// with a numeric `shards`.
    pub cpus: Option<Vec<usize>>,
    /// `reserve_cpus`: CPU ids never used for shards. Default empty.
    pub reserve_cpus: Vec<usize>,
    /// `oversubscribe`: allow more shards than usable CPUs (several shards per core).
    /// Default `false`.
    pub oversubscribe: bool,
}

impl PlacementConfig {
    /// The shard count this section fixes by itself: `Count(n)` gives `n`, a `cpus` list its
    /// length; `None` when it depends on the machine (`"auto"` without `cpus`).
    pub fn fixed_shard_count(&self) -> Option<usize> {
        match (&self.shards, &self.cpus) {
            (ShardCount::Count(n), _) => Some(*n),
            (ShardCount::Auto, Some(cpus)) => Some(cpus.len()),
            (ShardCount::Auto, None) => None,
        }
    }

    /// The placement request this section asks for: `cpus` gives [`Placement::Cpus`], a
    /// numeric `shards` [`Placement::Shards`], `"auto"` [`Placement::PerCore`]; `reserve_cpus`
    /// and `oversubscribe` carry over. The one conversion the engine builder and the tools
    /// (`nexus topo`, `nexus doctor`) share.
    pub fn to_request(&self) -> PlacementRequest {
        let placement = match (&self.cpus, self.shards) {
            (Some(cpus), _) => Placement::Cpus(cpus.clone()),
            (None, ShardCount::Count(n)) => Placement::Shards(n),
            (None, ShardCount::Auto) => Placement::PerCore,
        };
        PlacementRequest {
            placement,
            reserved_cpus: self.reserve_cpus.clone(),
            allow_oversubscribe: self.oversubscribe,
        }
    }
}

/// How many shards to start. TOML: `shards = "auto"` or `shards = 4`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ShardCount {
    /// One shard per physical core (SMT siblings skipped, after `reserve_cpus`), or one per entry of `cpus`.
    #[default]
    Auto,
    /// Exactly this many shards (at least 1).
    Count(usize),
}

impl<'de> Deserialize<'de> for ShardCount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ShardCountVisitor;

        impl ShardCountVisitor {
            fn count<E: de::Error>(n: i128) -> Result<ShardCount, E> {
                if n < 1 {
                    return Err(E::custom(format!("shards must be \"auto\" or a positive integer, got {n}")));
                }
                usize::try_from(n).map(ShardCount::Count).map_err(|_| E::custom(format!("shards = {n} is too large")))
            }
        }

        impl Visitor<'_> for ShardCountVisitor {
            type Value = ShardCount;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"auto\" or a positive integer")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<ShardCount, E> {
                if v == "auto" {
                    Ok(ShardCount::Auto)
                } else {
                    Err(E::custom(format!("shards must be \"auto\" or a positive integer, got \"{v}\"")))
                }
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ShardCount, E> {
                Self::count(i128::from(v))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ShardCount, E> {
                Self::count(i128::from(v))
            }
        }

        deserializer.deserialize_any(ShardCountVisitor)
    }
}

/// `[idle]`: what a shard does when it finds no work.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdleConfig {
    /// `spin_before_park_us`: how long a shard keeps polling after its last work before it
    /// parks (microseconds; adaptive: spins that meet no work get shorter, down to an eighth).
    /// A shard woken without work parks again at once. Default 200; 0 parks at once.
    pub spin_before_park_us: u64,
    /// `passes_before_yield`: dispatcher passes between yields to the executor, so timers and
    /// I/O tasks get to run (at least 1). Default 256.
    pub passes_before_yield: u32,
    /// `park_timeout_us`: a cap on one park (microseconds). Default 0: no cap, a parked shard
    /// sleeps until it is rung or its next timer or ask deadline is due, so an idle engine
    /// costs nothing. A cap wakes every parked shard periodically; it is for diagnosis only.
    pub park_timeout_us: u64,
}

impl Default for IdleConfig {
    fn default() -> Self {
        Self { spin_before_park_us: 200, passes_before_yield: 256, park_timeout_us: 0 }
    }
}

/// `[mailbox]`: per-agent mailbox bounds.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailboxConfig {
    /// `capacity`: messages one agent's mailbox holds before it is full (at least 1).
    /// Default 1024.
    pub capacity: u32,
    /// `overflow`: what a full mailbox does with a new message (`"reject"` returns it to the
    /// sender, `"drop"` drops and counts it). Default `"reject"`.
    pub overflow: OverflowPolicy,
}

impl Default for MailboxConfig {
    fn default() -> Self {
        Self { capacity: 1024, overflow: OverflowPolicy::Reject }
    }
}

/// `[mesh]`: the shard-to-shard SPSC rings and their overflow paths.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MeshConfig {
    /// `ring_capacity`: slots in each shard-to-shard ring (a power of two). Default 1024.
    pub ring_capacity: usize,
    /// `batch`: most messages moved from or to one ring per pass (1 to `ring_capacity`).
    /// Default 64.
    pub batch: usize,
    /// `inject_capacity`: capacity of each shard's queue for messages from threads outside
    /// the engine (at least 1). Default 4096.
    pub inject_capacity: usize,
    /// `overflow_capacity`: per-peer outbound backlog kept on the sending shard while a ring
    /// is full (messages, at least 1). Default 65536.
    pub overflow_capacity: usize,
}

impl Default for MeshConfig {
    fn default() -> Self {
        Self { ring_capacity: 1024, batch: 64, inject_capacity: 4096, overflow_capacity: 65536 }
    }
}

/// `[metrics]`: latency sampling and status reporting.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// `latency_sample_every`: record the enqueue-to-dispatch latency of one message in this
    /// many (a power of two; 1 = every message). Default 64.
    pub latency_sample_every: u32,
    /// `status_interval_ms`: how often `nexus run` prints its status line (milliseconds, at
    /// least 1). Default 1000.
    pub status_interval_ms: u64,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self { latency_sample_every: 64, status_interval_ms: 1000 }
    }
}

/// `[shutdown]`: graceful stop.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShutdownConfig {
    /// `drain_timeout_ms`: how long shutdown waits for queued messages to drain
    /// (milliseconds; 0 = do not wait). Default 2000.
    pub drain_timeout_ms: u64,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self { drain_timeout_ms: 2000 }
    }
}

/// `[shedding]`: load shedding. While a shard is overloaded, normal-lane user messages that
/// reach it are dropped at enqueue, counted as `shed` dead letters, and reported to senders
/// that asked (`SendOptions::tracked`, asks). Control-lane messages and replies are never shed.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SheddingConfig {
    /// `max_queued`: a shard sheds while this many messages are queued in its mailboxes
    /// (0 = never on depth). Default 1048576.
    pub max_queued: usize,
    /// `max_latency_us`: a shard sheds while its latest sampled enqueue-to-dispatch latency is
    /// at least this and messages are still queued (microseconds; 0 = never on latency).
    /// Default 500000 (half a second).
    pub max_latency_us: u64,
}

impl Default for SheddingConfig {
    fn default() -> Self {
        Self { max_queued: 1 << 20, max_latency_us: 500_000 }
    }
}

/// One `[[agents]]` entry: agents of one kind started with the engine.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentSpec {
    /// `kind`: which agent to start, by the name of a kind in the caller's registry (`nexus
    /// run`'s is `nexus_server::kinds::Kinds`: `"echo"`, `"counter"`, `"kv"`, and whatever an
    /// embedder registers); checked by [`EngineConfig::validate`]. Required.
    pub kind: String,
    /// `name`: the name to register the agent under; `None` starts it unnamed. Names must be
    /// unique among the specs.
    pub name: Option<String>,
    /// `shard`: the shard index to start it on; `None` lets the engine choose.
    pub shard: Option<usize>,
    /// `count`: how many instances to start (at least 1). Default 1.
    pub count: u32,
}

/// No kind (which [`EngineConfig::validate`] rejects), no name, placed by the engine, one
/// instance: what an `[[agents]]` entry holds before its keys are read.
impl Default for AgentSpec {
    fn default() -> Self {
        Self { kind: String::new(), name: None, shard: None, count: 1 }
    }
}

impl AgentSpec {
    /// One unnamed instance of `kind`, placed by the engine.
    pub fn new(kind: impl Into<String>) -> Self {
        Self { kind: kind.into(), ..Self::default() }
    }

    /// One instance of `kind` registered as `name`, placed by the engine.
    pub fn named(kind: impl Into<String>, name: impl Into<String>) -> Self {
        Self { name: Some(name.into()), ..Self::new(kind) }
    }
}

/// `[server]`: the RESP front end `nexus run` serves and its HTTP metrics endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// `enabled`: serve RESP and metrics (needs `executor = "glommio"`). Default true.
    pub enabled: bool,
    /// `listen`: the address every shard accepts RESP connections on (SO_REUSEPORT). Default
    /// `"127.0.0.1:7379"` (loopback only).
    pub listen: String,
    /// `metrics_listen`: where `/metrics` (Prometheus text) and `/health` are served over
    /// HTTP; `""` turns the endpoint off. Default `"127.0.0.1:9379"`.
    pub metrics_listen: String,
    /// `max_clients`: connections served at once; one more is answered with an error and
    /// closed. Default 10000.
    pub max_clients: u32,
    /// `max_bulk`: longest bulk string a client may send (bytes). Default 16 MiB.
    pub max_bulk: u64,
    /// `max_args`: most elements in one request array. Default 1048576.
    pub max_args: u64,
    /// `client_output_limit`: reply bytes queued for one client; replies are queued only up to
    /// it (plus one reply, so a larger reply is still written whole to a client that reads),
    /// and a client whose queue stays over it with nothing read for 5 s (a slow reader) is
    /// disconnected and counted. Default 32 MiB.
    pub client_output_limit: u64,
    /// `client_query_buffer_limit`: request bytes one client may have buffered (its unparsed
    /// input and the arguments of its request in progress); a client past it is closed and
    /// counted, as Redis's `client-query-buffer-limit`. Default 1 GiB.
    pub client_query_buffer_limit: u64,
    /// `idle_timeout_s`: a client that sends nothing for this long is closed (seconds; 0 =
    /// never). Default 300.
    pub idle_timeout_s: u64,
    /// `requirepass`: a non-empty password turns on AUTH. Default `""` (no AUTH).
    pub requirepass: String,
    /// `maxmemory`: bytes the keyspace may use (its accounted key and value bytes), split
    /// evenly over the shards; bytes or a size such as `"100mb"`. Default 0 (no limit).
    #[serde(deserialize_with = "memory::deserialize_memory_size")]
    pub maxmemory: u64,
    /// `maxmemory_policy`: what a write does past `maxmemory`. Default `"noeviction"`.
    pub maxmemory_policy: EvictionPolicy,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: "127.0.0.1:7379".to_owned(),
            metrics_listen: "127.0.0.1:9379".to_owned(),
            max_clients: 10_000,
            max_bulk: 16 * 1024 * 1024,
            max_args: 1024 * 1024,
            client_output_limit: 32 * 1024 * 1024,
            client_query_buffer_limit: 1024 * 1024 * 1024,
            idle_timeout_s: 300,
            requirepass: String::new(),
            maxmemory: 0,
            maxmemory_policy: EvictionPolicy::NoEviction,
        }
    }
}

/// `[load]`: the built-in load generator `nexus run` starts.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoadConfig {
    /// `scenario`: which workload to drive. Default `"pingpong"`.
    pub scenario: LoadScenario,
    /// `rate_per_s`: messages per second over all load agents; `None` (the default) = as fast
    /// as possible.
    pub rate_per_s: Option<u64>,
    /// `agents`: how many load-driving agents to start (at least 1). Default 2.
    pub agents: u32,
    /// `duration_s`: how long to run (seconds); `None` (the default) = until stopped.
    pub duration_s: Option<u64>,
}

impl Default for LoadConfig {
    fn default() -> Self {
        Self { scenario: LoadScenario::PingPong, rate_per_s: None, agents: 2, duration_s: None }
    }
}

/// The built-in load workloads. TOML: `"pingpong"`, `"counting"` or `"ask"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoadScenario {
    /// Agents bounce messages back and forth.
    #[default]
    PingPong,
    /// Fire-and-forget sends to counting agents.
    Counting,
    /// Request/reply round trips (`ask`).
    Ask,
}

/// Deserializes `load`: a table gives `Some(LoadConfig)`, `false` gives `None`, `true` gives
/// `Some(LoadConfig::default())`.
fn deserialize_load<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<LoadConfig>, D::Error> {
    struct LoadVisitor;

    impl<'de> Visitor<'de> for LoadVisitor {
        type Value = Option<LoadConfig>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a [load] table, or `false` for no built-in load")
        }

        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Ok(v.then(LoadConfig::default))
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            LoadConfig::deserialize(de::value::MapAccessDeserializer::new(map)).map(Some)
        }
    }

    deserializer.deserialize_any(LoadVisitor)
}

impl EngineConfig {
    /// Parses a config from TOML text. `origin` names the text in error messages (usually
    /// the file name). Keys left out take their defaults; unknown keys, wrong types and
    /// malformed TOML are errors with the line and key. Does not run [`Self::validate`].
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self, ConfigError> {
        // Parse the syntax first, so that malformed TOML and wrong data get different hints.
        if let Err(err) = toml::from_str::<toml::Table>(text) {
            return Err(ConfigError::syntax(origin, text, &err));
        }
        let mut config: EngineConfig = toml::from_str(text).map_err(|err| ConfigError::data(origin, text, &err))?;
        config.source = ConfigSource { origin: origin.to_owned(), text: Arc::from(text) };
        Ok(config)
    }

    /// Reads and parses a config file; the path's display form names it in error messages.
    /// A file that cannot be read is a [`ConfigError`] too. Does not run [`Self::validate`].
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|err| ConfigError::io(&origin, &err))?;
        Self::from_toml_str(&text, &origin)
    }
}

/// `[cluster]`: joining a NATS cluster, as written in the file. The engine only carries it;
/// `nexus-cluster` (`RawClusterConfig`) checks the values and says which key is wrong.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSection {
    /// The NATS server, `nats://host:port`.
    pub nats: String,
    /// This node's name, unique in the cluster.
    pub node: String,
    /// The cluster's name (subjects start with `nexus.<cluster>.`); default `nexus`.
    #[serde(default = "default_cluster_name")]
    pub cluster: String,
    /// Heartbeat period in milliseconds; default 200.
    #[serde(default = "default_heartbeat_ms")]
    pub heartbeat_ms: u64,
    /// How long a silent node's names stay in the directory, in milliseconds; default 1000.
    #[serde(default = "default_lease_ms")]
    pub lease_ms: u64,
    /// How long a claim listens for a competing one, in milliseconds; default 50.
    #[serde(default = "default_claim_window_ms")]
    pub claim_window_ms: u64,
}

fn default_cluster_name() -> String {
    "nexus".into()
}
fn default_heartbeat_ms() -> u64 {
    200
}
fn default_lease_ms() -> u64 {
    1000
}
fn default_claim_window_ms() -> u64 {
    50
}
