//! Semantic validation of an [`EngineConfig`]: what parsing cannot check (non-zero sizes,
//! powers of two, `cpus` versus `shards`, known agent kinds, shard indices, socket addresses).
//!
//! [`EngineConfig::validate`] runs one check per section, in a fixed order (placement, coord,
//! idle, mailbox, mesh, metrics, agents, load, server), and reports the first [`Problem`] found
//! as a [`ConfigError`] located in the source text. Each section check is a plain function of
//! its section (plus what it needs from elsewhere), so it reads and tests on its own.

use super::{
    AgentSpec, ConfigError, EngineConfig, IdleConfig, LoadConfig, MailboxConfig, MeshConfig, MetricsConfig,
    PlacementConfig, ServerConfig, ShardCount,
};
use std::collections::HashSet;

/// The first problem a section check found: the dotted key, what is wrong, and how to fix it.
struct Problem {
    key: String,
    message: String,
    hint: String,
}

/// The result of one section check.
type Check = Result<(), Problem>;

/// Fails a check with a problem at `key`.
fn problem(key: impl Into<String>, message: String, hint: String) -> Check {
    Err(Problem { key: key.into(), message, hint })
}

impl EngineConfig {
    /// Checks what parsing cannot: non-zero sizes, powers of two, `cpus` versus `shards`,
    /// agent kinds (against `known_agent_kinds`), counts and shard indices. Returns the first
    /// problem found, located in the source text when the config was parsed from one.
    pub fn validate(&self, known_agent_kinds: &[&str]) -> Result<(), ConfigError> {
        self.check_sections(known_agent_kinds)
            .map_err(|p| ConfigError::invalid(&self.source, &p.key, p.message, p.hint))
    }

    /// Runs every section check in order and stops at the first problem.
    fn check_sections(&self, known_agent_kinds: &[&str]) -> Check {
        check_placement(&self.placement)?;
        if let Err((key, message, hint)) = self.coord.check() {
            return problem(key, message, hint);
        }
        check_idle(&self.idle)?;
        check_mailbox(&self.mailbox)?;
        check_mesh(&self.mesh)?;
        check_metrics(&self.metrics)?;
        check_agents(&self.agents, self.placement.fixed_shard_count(), known_agent_kinds)?;
        if let Some(load) = &self.load {
            check_load(load)?;
        }
        check_server(&self.server)?;
        if let Err((key, message, hint)) = self.tracing.check(&[]) {
            return problem(key, message, hint);
        }
        if let Err((key, message, hint)) = self.persistence.check() {
            return problem(key, message, hint);
        }
        Ok(())
    }
}

/// `[placement]`: a non-zero shard count, and a `cpus` list that is non-empty, not combined
/// with a numeric `shards`, free of duplicates and disjoint from `reserve_cpus`.
fn check_placement(placement: &PlacementConfig) -> Check {
    if placement.shards == ShardCount::Count(0) {
        return problem(
            "placement.shards",
            "shards = 0 starts no shard".into(),
            "use shards = \"auto\" (one per physical core) or a count of at least 1".into(),
        );
    }
    let Some(cpus) = &placement.cpus else {
        return Ok(());
    };
    if cpus.is_empty() {
        return problem(
            "placement.cpus",
            "cpus = [] lists no CPU to run shards on".into(),
            "list at least one CPU id, e.g. cpus = [0, 1], or remove `cpus` to use \
             every available CPU"
                .into(),
        );
    }
    if let ShardCount::Count(n) = placement.shards {
        return problem(
            "placement.shards",
            format!("shards = {n} and cpus are both set"),
            "remove `shards` (with `cpus`, there is one shard per listed CPU) or \
             remove `cpus`"
                .into(),
        );
    }
    let mut seen = HashSet::new();
    for &cpu in cpus {
        if !seen.insert(cpu) {
            return problem(
                "placement.cpus",
                format!("CPU {cpu} is listed twice"),
                "list each CPU id once; use oversubscribe = true with `shards` to put \
                 several shards on one core"
                    .into(),
            );
        }
        if placement.reserve_cpus.contains(&cpu) {
            return problem(
                "placement.cpus",
                format!("CPU {cpu} is in both cpus and reserve_cpus"),
                format!("remove {cpu} from one of the two lists"),
            );
        }
    }
    Ok(())
}

/// `[idle]`: at least one dispatcher pass before a shard yields.
fn check_idle(idle: &IdleConfig) -> Check {
    if idle.passes_before_yield == 0 {
        return problem(
            "idle.passes_before_yield",
            "passes_before_yield must be at least 1".into(),
            "use a positive number of dispatcher passes such as 256".into(),
        );
    }
    Ok(())
}

/// `[mailbox]`: a non-zero capacity.
fn check_mailbox(mailbox: &MailboxConfig) -> Check {
    if mailbox.capacity == 0 {
        return problem(
            "mailbox.capacity",
            "capacity = 0: every mailbox would always be full".into(),
            "use a capacity of at least 1, such as 1024".into(),
        );
    }
    Ok(())
}

/// `[mesh]`: a power-of-two ring, a batch from 1 to the ring's capacity, and non-zero inject
/// and overflow capacities.
fn check_mesh(mesh: &MeshConfig) -> Check {
    if !mesh.ring_capacity.is_power_of_two() {
        return problem(
            "mesh.ring_capacity",
            format!("ring_capacity = {} is not a power of two", mesh.ring_capacity),
            "use a power of two such as 1024".into(),
        );
    }
    if mesh.batch == 0 {
        return problem(
            "mesh.batch",
            "batch = 0 would never move a message".into(),
            "use a batch of at least 1, such as 64".into(),
        );
    }
    if mesh.batch > mesh.ring_capacity {
        return problem(
            "mesh.batch",
            format!("batch = {} is larger than ring_capacity = {}", mesh.batch, mesh.ring_capacity),
            "use a batch no larger than ring_capacity".into(),
        );
    }
    if mesh.inject_capacity == 0 {
        return problem(
            "mesh.inject_capacity",
            "inject_capacity = 0: no message could enter from outside the engine".into(),
            "use a capacity of at least 1, such as 4096".into(),
        );
    }
    if mesh.overflow_capacity == 0 {
        return problem(
            "mesh.overflow_capacity",
            "overflow_capacity = 0 leaves no backlog for a full ring".into(),
            "use a capacity of at least 1, such as 65536".into(),
        );
    }
    Ok(())
}

/// `[metrics]`: a power-of-two sampling period and a non-zero status interval.
fn check_metrics(metrics: &MetricsConfig) -> Check {
    let every = metrics.latency_sample_every;
    if !every.is_power_of_two() {
        return problem(
            "metrics.latency_sample_every",
            format!("latency_sample_every = {every} is not a power of two"),
            "use a power of two such as 64 (1 samples every message)".into(),
        );
    }
    if metrics.status_interval_ms == 0 {
        return problem(
            "metrics.status_interval_ms",
            "status_interval_ms must be at least 1".into(),
            "use a positive interval in milliseconds such as 1000".into(),
        );
    }
    Ok(())
}

/// `[[agents]]`: each entry has a known kind, a non-zero count, a non-empty name used once,
/// and a shard index below `shard_count` (when the placement fixes the count).
fn check_agents(agents: &[AgentSpec], shard_count: Option<usize>, known_agent_kinds: &[&str]) -> Check {
    let mut names = HashSet::new();
    for (i, agent) in agents.iter().enumerate() {
        let at = |key: &str| format!("agents[{i}].{key}");
        if !known_agent_kinds.contains(&agent.kind.as_str()) {
            let message = if agent.kind.is_empty() {
                "agent kind is missing".to_owned()
            } else {
                format!("unknown agent kind \"{}\"", agent.kind)
            };
            return problem(at("kind"), message, known_kinds_hint(known_agent_kinds));
        }
        if agent.count == 0 {
            return problem(
                at("count"),
                "count = 0 starts no agent".into(),
                "use a count of at least 1, or remove this [[agents]] entry".into(),
            );
        }
        if let Some(name) = &agent.name {
            if name.is_empty() {
                return problem(
                    at("name"),
                    "agent name is empty".into(),
                    "give a non-empty name or remove `name`".into(),
                );
            }
            if !names.insert(name.as_str()) {
                return problem(
                    at("name"),
                    format!("agent name \"{name}\" is used twice"),
                    "give each [[agents]] entry a different name".into(),
                );
            }
        }
        if let (Some(shard), Some(count)) = (agent.shard, shard_count) {
            if shard >= count {
                return problem(
                    at("shard"),
                    format!("shard = {shard}, but only {count} shards run"),
                    format!("use a shard index from 0 to {}, or remove `shard`", count.saturating_sub(1)),
                );
            }
        }
    }
    Ok(())
}

/// The hint for an unknown agent kind: the list of kinds the caller knows.
fn known_kinds_hint(known: &[&str]) -> String {
    if known.is_empty() {
        return "no agent kinds are registered; remove the [[agents]] entries".to_owned();
    }
    let list: Vec<String> = known.iter().map(|k| format!("\"{k}\"")).collect();
    format!("use one of the known kinds: {}", list.join(", "))
}

/// `[load]` (when on): at least one agent, and no zero rate or duration.
fn check_load(load: &LoadConfig) -> Check {
    if load.agents == 0 {
        return problem(
            "load.agents",
            "agents = 0 drives no load".into(),
            "use at least 1 agent, or load = false for no built-in load".into(),
        );
    }
    if load.rate_per_s == Some(0) {
        return problem(
            "load.rate_per_s",
            "rate_per_s = 0 sends nothing".into(),
            "use a positive rate, or remove `rate_per_s` to run as fast as possible".into(),
        );
    }
    if load.duration_s == Some(0) {
        return problem(
            "load.duration_s",
            "duration_s = 0 stops the load at once".into(),
            "use a positive number of seconds, or remove `duration_s` to run until \
             stopped"
                .into(),
        );
    }
    Ok(())
}

/// `[server]` (when enabled): socket addresses that parse, and non-zero client and request
/// limits.
fn check_server(server: &ServerConfig) -> Check {
    if !server.enabled {
        return Ok(());
    }
    if server.listen.parse::<std::net::SocketAddr>().is_err() {
        return problem(
            "server.listen",
            format!("listen = \"{}\" is not an IP address and port", server.listen),
            "use e.g. listen = \"127.0.0.1:7379\" (or \"0.0.0.0:7379\" for every interface)".into(),
        );
    }
    if !server.metrics_listen.is_empty() && server.metrics_listen.parse::<std::net::SocketAddr>().is_err() {
        return problem(
            "server.metrics_listen",
            format!("metrics_listen = \"{}\" is not an IP address and port", server.metrics_listen),
            "use e.g. metrics_listen = \"127.0.0.1:9379\", or \"\" for no metrics endpoint".into(),
        );
    }
    for (key, value) in [
        ("server.max_clients", u64::from(server.max_clients)),
        ("server.max_bulk", server.max_bulk),
        ("server.max_args", server.max_args),
        ("server.client_output_limit", server.client_output_limit),
        ("server.client_query_buffer_limit", server.client_query_buffer_limit),
    ] {
        if value == 0 {
            let name = key.trim_start_matches("server.");
            return problem(key, format!("{name} = 0 refuses everything"), format!("use a positive {name}"));
        }
    }
    Ok(())
}
