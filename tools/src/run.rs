//! `nexus run`: start the engine from a config, drive it, report every second, stop cleanly.
//!
//! 1. Read the config (`--config FILE`, else `configs/default.toml`, else the copy built into
//!    the binary) and validate it; a problem is one line naming file, line and key, exit 2.
//! 2. Start the engine and print the placement table.
//! 3. Spawn the config's agents (`[[agents]]`) through the one registry of agent kinds,
//!    `nexus_server::kinds::Kinds` (the kinds `AGENT.SPAWN` starts too), so a named config
//!    agent answers `AGENT.SEND`, `AGENT.ASK` and `AGENT.INFO`; then start the optional load
//!    (`[load]`).
//! 4. Print a status line every `metrics.status_interval_ms`: messages per second, routing
//!    latency (enqueue to dispatch, sampled) p50/p99 over the interval, agents, dead letters.
//! 5. Serve RESP on `[server] listen` (every shard accepts; see nexus-server) and `/metrics`
//!    and `/health` on `metrics_listen`, unless `[server] enabled = false`.
//! 6. On Ctrl-C, SIGTERM or the end of `--duration-s`: stop accepting, let the connections
//!    finish their commands and flush their replies, stop the load, shut the engine down
//!    gracefully and print the final counters, with the accounting check.
//!
//! Every line is logged through `tracing` (see `log`).

use crate::Failure;
use bytes::Bytes;
use hdrhistogram::Histogram;
use nexus_engine::agent::{Addr, SpawnPlacement};
use nexus_engine::builtin::{PingPong, PingPongMsg};
use nexus_engine::config::{EngineConfig, LoadConfig, LoadScenario};
use nexus_engine::engine::{Engine, EngineHandle};
use nexus_engine::metrics::{summarize, DeadLetterReason, EngineStats};
use nexus_server::kinds::{AgentRequest, Kinds};
use nexus_server::metrics::MetricsServer;
use nexus_server::{ServerBuilder, ServerHandle};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The default config, built into the binary so `nexus run` works from any directory.
const DEFAULT_CONFIG: &str = include_str!("../../configs/default.toml");
const DEFAULT_CONFIG_PATH: &str = "configs/default.toml";

/// Arguments of `nexus run`.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// TOML config file (default: configs/default.toml).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Stop after this many seconds (default: the config's load.duration_s, else run until
    /// Ctrl-C or SIGTERM).
    #[arg(long)]
    duration_s: Option<u64>,
    /// Serve RESP on this address instead of the config's `[server] listen`.
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Serve /metrics and /health on this address instead of the config's
    /// `[server] metrics_listen` ("" turns the endpoint off).
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<String>,
    /// Run the shards on this executor instead of the config's `executor`: glommio, threads,
    /// or auto (glommio when io_uring and the memlock limit allow it).
    #[arg(long)]
    executor: Option<nexus_engine::executor::ExecutorKind>,
    /// Join the cluster whose NATS server is at this URL (e.g. nats://127.0.0.1:4222), instead
    /// of the config's `[cluster] nats`; needs a node name (--node or `[cluster] node`).
    #[arg(long, value_name = "URL")]
    cluster: Option<String>,
    /// This node's name in the cluster (unique; one subject token), instead of the config's
    /// `[cluster] node`.
    #[arg(long, value_name = "NAME")]
    node: Option<String>,
    /// The cluster's name (its subjects start with `nexus.<name>.`); default: the config's
    /// `[cluster] cluster`, else "nexus".
    #[arg(long, value_name = "NAME")]
    cluster_name: Option<String>,
}

/// Reads and validates the config named by the arguments.
pub fn load_config(path: Option<&PathBuf>) -> Result<EngineConfig, Failure> {
    let config = match path {
        Some(p) => EngineConfig::from_file(p),
        None if std::path::Path::new(DEFAULT_CONFIG_PATH).exists() => {
            EngineConfig::from_file(std::path::Path::new(DEFAULT_CONFIG_PATH))
        }
        None => EngineConfig::from_toml_str(DEFAULT_CONFIG, "configs/default.toml (built in)"),
    }
    .map_err(|e| Failure::usage(format!("config error: {e}")))?;
    validate(&config).map_err(|e| Failure::usage(format!("config error: {e}")))?;
    Ok(config)
}

/// The agent kinds `nexus run` knows: a config's `[[agents]]` and `AGENT.SPAWN` name the same.
pub fn agent_kinds() -> Kinds {
    Kinds::builtin()
}

/// Validates `config` as `nexus run` does: agent kinds against [`agent_kinds`].
pub fn validate(config: &EngineConfig) -> Result<(), nexus_engine::config::ConfigError> {
    let kinds = agent_kinds();
    let names: Vec<&str> = kinds.names().collect();
    config.validate(&names)?;
    nexus_server::server::check_tracing(&config.tracing)
        .map_err(|(key, message, hint)| nexus_engine::config::ConfigError::invalid(&config.source, key, message, hint))
}

/// Runs `nexus run`.
pub fn run(args: RunArgs) -> Result<(), Failure> {
    let mut config = load_config(args.config.as_ref())?;
    if let Some(listen) = &args.listen {
        config.server.listen = listen.clone();
    }
    if let Some(executor) = args.executor {
        config.executor = executor;
    }
    if let Some(metrics) = &args.metrics_listen {
        config.server.metrics_listen = metrics.clone();
    }
    if args.listen.is_some() || args.metrics_listen.is_some() {
        validate(&config).map_err(|e| Failure::usage(format!("bad --listen or --metrics-listen: {e}")))?;
    }
    let stop_signal = watch_signals()?;
    let mut builder = Engine::builder().config(&config);
    let mut server = None;
    if config.server.enabled {
        let (b, handle) = ServerBuilder::new(config.server.clone())
            .kinds(agent_kinds())
            .tracing(&config.tracing)
            .persistence(&config.persistence)
            .open_later()
            .install(builder)
            .map_err(|e| match e {
                nexus_server::ServerError::InUse(line) => Failure::runtime(line),
                e => Failure::usage(format!("config error: {e}")),
            })?;
        builder = b;
        server = Some(handle);
    }
    let engine = builder.build().map_err(|e| Failure::runtime(format!("cannot start the engine: {e}")))?;
    if let Some(warning) = engine.executor_warning() {
        tracing::warn!("nexus: {warning}");
    }
    tracing::info!("nexus: config {}, executor {}", config.source.origin(), engine.executor());
    tracing::info!("{}", engine.plan());
    if let Some(recovered) = server.as_ref().and_then(ServerHandle::recovery) {
        tracing::info!("nexus: {recovered}");
    }
    let handle = engine.handle();
    let collector = start_collector(&config, &handle)?;
    let agents = spawn_agents(&handle, &config, server.as_ref())?;
    let flags = crate::run_cluster::Flags {
        url: args.cluster.clone(),
        node: args.node.clone(),
        name: args.cluster_name.clone(),
    };
    let cluster = crate::run_cluster::join(&flags, config.cluster.as_ref(), &handle, server.as_ref())?;
    let mut metrics = None;
    if let Some(server) = &server {
        // Clients connect once the config's agents can answer them.
        server.open();
        tracing::info!("nexus: serving RESP on {} (try: redis-cli -p {} PING)", server.addr(), server.addr().port());
        metrics = start_metrics(&config, &handle, server)?;
    }
    let load = match &config.load {
        Some(load) => Some(Load::start(&handle, load, &agents)?),
        None => None,
    };
    let duration = args.duration_s.or(config.load.as_ref().and_then(|l| l.duration_s)).map(Duration::from_secs);
    tracing::info!(
        "nexus: running{}; Ctrl-C or SIGTERM stops it gracefully",
        duration.map_or(String::new(), |d| format!(" for {} s", d.as_secs()))
    );
    status_loop(&handle, &config, duration, &stop_signal, server.as_ref());
    if let Some(server) = &server {
        stop_server(server, &config);
    }
    drop(metrics);
    if let Some(node) = cluster {
        node.shutdown();
    }
    if let Some(load) = load {
        load.stop(&handle);
    }
    let report = engine.shutdown().map_err(|e| Failure::runtime(format!("shutdown failed: {e}")))?;
    if let Some(collector) = collector {
        let s = collector.stop();
        tracing::info!(
            "nexus: tracing exported {} spans to {} ({} exports failed, {} spans lost with them, {} dropped by full span buffers){}",
            s.exported,
            config.tracing.otlp_endpoint,
            s.failed_exports,
            s.lost,
            s.buffer_dropped,
            s.last_error.map_or(String::new(), |e| format!("; last error: {e}"))
        );
    }
    print_final(&report.stats, report.drained, report.elapsed);
    Ok(())
}

/// Stops the RESP server: no more accepts, the open connections finish and close (up to the
/// drain timeout); logs what it served.
fn stop_server(server: &ServerHandle, config: &EngineConfig) {
    server.stop();
    let open = server.connections();
    let closed = server.wait_closed(Duration::from_millis(config.shutdown.drain_timeout_ms.max(1000)));
    let t = server.totals();
    tracing::info!(
        "nexus: server stopped ({} connection(s) were open, {}); {} commands, {} connections served, {} protocol errors, {} slow readers and {} idle clients disconnected, {} refused over max_clients",
        open,
        if closed { "all closed cleanly" } else { "some still open at the drain timeout" },
        t.commands,
        t.connections_total,
        t.protocol_errors,
        t.slow_clients,
        t.idle_closed,
        t.rejected_max_clients
    );
}

/// The `/metrics` and `/health` endpoint on `[server] metrics_listen` (none for ""), guarded
/// by `requirepass` when one is set.
fn start_metrics(
    config: &EngineConfig,
    handle: &EngineHandle,
    server: &ServerHandle,
) -> Result<Option<MetricsServer>, Failure> {
    if config.server.metrics_listen.is_empty() {
        return Ok(None);
    }
    let password = (!config.server.requirepass.is_empty()).then(|| config.server.requirepass.clone());
    let m =
        MetricsServer::start(&config.server.metrics_listen, handle.clone(), server.clone(), password).map_err(|e| {
            Failure::runtime(format!(
                "cannot serve metrics on {}: {e}; hint: pick another [server] metrics_listen or \"\" for none",
                config.server.metrics_listen
            ))
        })?;
    tracing::info!("nexus: metrics on http://{}/metrics and /health", m.addr());
    Ok(Some(m))
}

/// With `[tracing] otlp_endpoint` set, a collector that exports the engine's spans there
/// every second (OTLP over HTTP/protobuf).
fn start_collector(config: &EngineConfig, handle: &EngineHandle) -> Result<Option<nexus_trace::Collector>, Failure> {
    if config.tracing.otlp_endpoint.is_empty() {
        return Ok(None);
    }
    let exporter = nexus_trace::OtlpExporter::new(&config.tracing.otlp_endpoint, "nexus")
        .map_err(|e| Failure::usage(format!("config error: [tracing] otlp_endpoint: {e}")))?;
    let collector = nexus_trace::Collector::try_start(handle.tracing(), exporter, Duration::from_secs(1))
        .map_err(|e| Failure::runtime(format!("cannot start the trace exporter thread: {e}")))?;
    tracing::info!("nexus: exporting traces to {} (OTLP/HTTP)", config.tracing.otlp_endpoint);
    Ok(Some(collector))
}

/// The config's `echo` and `counter` agents, which the `counting` and `ask` loads drive.
#[derive(Default)]
struct Spawned {
    echo: Vec<Addr<AgentRequest>>,
    counter: Vec<Addr<AgentRequest>>,
}

/// Spawns the config's `[[agents]]` through the server's kind registry (or, with the server
/// off, the same registry without RESP): on the spec's shard or round robin, registered as the
/// spec's name, or `name-i` for each of `count > 1`.
fn spawn_agents(
    handle: &EngineHandle,
    config: &EngineConfig,
    server: Option<&ServerHandle>,
) -> Result<Spawned, Failure> {
    let kinds = agent_kinds();
    let kinds = server.map_or(&kinds, ServerHandle::kinds);
    let mut spawned = Spawned::default();
    for spec in &config.agents {
        let placement = spec.shard.map_or(SpawnPlacement::RoundRobin, SpawnPlacement::Shard);
        for i in 0..spec.count {
            let name = spec.name.as_ref().map(|n| if spec.count > 1 { format!("{n}-{i}") } else { n.clone() });
            let addr = match (&name, server) {
                (Some(name), Some(server)) => server.spawn_agent(handle, &spec.kind, name, &[], placement),
                (Some(name), None) => kinds.spawn_from_host(handle, &spec.kind, &[], placement).and_then(|addr| {
                    handle.register(name, addr.id()).map(|()| addr).map_err(|e| {
                        let _ = handle.stop(addr.id());
                        format!("cannot register agent name '{name}': {e}")
                    })
                }),
                (None, _) => kinds.spawn_from_host(handle, &spec.kind, &[], placement),
            }
            .map_err(|e| Failure::runtime(format!("cannot start the config's agents: {e}")))?;
            match spec.kind.as_str() {
                "echo" => spawned.echo.push(addr),
                "counter" => spawned.counter.push(addr),
                _ => {}
            }
        }
    }
    Ok(spawned)
}

/// The self-driving load of `[load]`.
enum Load {
    PingPong(Vec<Addr<PingPongMsg>>),
    Host { stop: Arc<AtomicBool>, thread: JoinHandle<()> },
}

impl Load {
    fn start(handle: &EngineHandle, load: &LoadConfig, agents: &Spawned) -> Result<Load, Failure> {
        let shards = handle.shards();
        let fail = |e: nexus_engine::agent::SpawnError| Failure::runtime(format!("cannot start the load: {e}"));
        match load.scenario {
            LoadScenario::PingPong => {
                let pairs = (load.agents as usize / 2).max(1);
                let mut players = Vec::with_capacity(pairs * 2);
                for p in 0..pairs {
                    let a = handle.spawn(SpawnPlacement::Shard((2 * p) % shards), PingPong::default).map_err(fail)?;
                    let b =
                        handle.spawn(SpawnPlacement::Shard((2 * p + 1) % shards), PingPong::default).map_err(fail)?;
                    let sent = handle.send(a, PingPongMsg::Partner(b)).is_ok()
                        && handle.send(b, PingPongMsg::Partner(a)).is_ok()
                        && handle.send(a, PingPongMsg::Serve(1)).is_ok();
                    if !sent {
                        return Err(Failure::runtime("cannot start the load: the engine refused the set-up messages"));
                    }
                    players.extend([a, b]);
                }
                Ok(Load::PingPong(players))
            }
            LoadScenario::Counting | LoadScenario::Ask => {
                let stop = Arc::new(AtomicBool::new(false));
                let h = handle.clone();
                let flag = stop.clone();
                let scenario = load.scenario;
                let rate = load.rate_per_s;
                let counters = if agents.counter.is_empty() {
                    let placements = (0..load.agents.max(1) as usize).map(|i| SpawnPlacement::Shard(i % shards));
                    load_agents(handle, "counter", placements)?
                } else {
                    agents.counter.clone()
                };
                let echoes = if agents.echo.is_empty() {
                    load_agents(handle, "echo", [SpawnPlacement::RoundRobin])?
                } else {
                    agents.echo.clone()
                };
                let thread = std::thread::Builder::new()
                    .name("nexus-load".into())
                    .spawn(move || drive_host_load(&h, scenario, rate, &counters, &echoes, &flag))
                    .map_err(|e| Failure::runtime(format!("cannot start the load thread: {e}")))?;
                Ok(Load::Host { stop, thread })
            }
        }
    }

    fn stop(self, handle: &EngineHandle) {
        match self {
            Load::PingPong(players) => {
                for p in players {
                    let _ = handle.send(p, PingPongMsg::Halt);
                }
            }
            Load::Host { stop, thread } => {
                stop.store(true, Ordering::Relaxed);
                let _ = thread.join();
            }
        }
    }
}

/// Unnamed agents of `kind` for the load, one per placement, spawned through the registry
/// (the config named none of that kind to drive).
fn load_agents(
    handle: &EngineHandle,
    kind: &str,
    placements: impl IntoIterator<Item = SpawnPlacement>,
) -> Result<Vec<Addr<AgentRequest>>, Failure> {
    let kinds = agent_kinds();
    placements
        .into_iter()
        .map(|placement| kinds.spawn_from_host(handle, kind, &[], placement))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Failure::runtime(format!("cannot start the load: {e}")))
}

/// Host-driven load: counting sends (`AGENT.SEND` to a `counter`) or echo asks (`AGENT.ASK`
/// of an `echo`), at `rate` per second or as fast as the engine takes them (a full inject
/// queue makes the driver back off, never drop). The payloads are static: no allocation.
fn drive_host_load(
    handle: &EngineHandle,
    scenario: LoadScenario,
    rate: Option<u64>,
    counters: &[Addr<AgentRequest>],
    echoes: &[Addr<AgentRequest>],
    stop: &AtomicBool,
) {
    let started = Instant::now();
    let mut sent: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        if let Some(rate) = rate {
            let due = (started.elapsed().as_secs_f64() * rate as f64) as u64;
            if sent >= due {
                std::thread::sleep(Duration::from_micros(200));
                continue;
            }
        }
        let ok = match scenario {
            LoadScenario::Counting => {
                let to = counters[(sent as usize) % counters.len()];
                handle.send(to, AgentRequest::Send(Bytes::from_static(b"tick"))).is_ok()
            }
            _ => {
                let to = echoes[(sent as usize) % echoes.len()];
                let payload = Bytes::from_static(b"ping");
                handle.ask(to, Duration::from_secs(1), |reply| AgentRequest::Ask(payload, reply)).is_ok()
            }
        };
        if ok {
            sent += 1;
        } else {
            std::thread::yield_now();
        }
    }
}

/// Reports SIGINT or SIGTERM on the returned channel, from a thread that blocks on the
/// signals (nothing polls while the engine idles).
fn watch_signals() -> Result<mpsc::Receiver<()>, Failure> {
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM])
        .map_err(|e| Failure::runtime(format!("cannot install the signal handler: {e}")))?;
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("nexus-signals".into())
        .spawn(move || {
            if signals.forever().next().is_some() {
                let _ = tx.send(());
            }
        })
        .map_err(|e| Failure::runtime(format!("cannot start the signal thread: {e}")))?;
    Ok(rx)
}

fn status_loop(
    handle: &EngineHandle,
    config: &EngineConfig,
    duration: Option<Duration>,
    stop: &mpsc::Receiver<()>,
    server: Option<&ServerHandle>,
) {
    let interval = Duration::from_millis(config.metrics.status_interval_ms.max(10));
    let started = Instant::now();
    let mut last_delivered = 0u64;
    let mut last_at = started;
    let mut last_hist: Option<Histogram<u64>> = None;
    loop {
        // Sleep until the next status line, the end of the run, or a signal: no polling.
        let mut wake = last_at + interval;
        if let Some(d) = duration {
            wake = wake.min(started + d);
        }
        match stop.recv_timeout(wake.saturating_duration_since(Instant::now())) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => return,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if duration.is_some_and(|d| started.elapsed() >= d) {
            return;
        }
        let now = Instant::now();
        let Ok(stats) = handle.stats() else {
            tracing::warn!("nexus: a shard did not answer the status request");
            last_at = now;
            continue;
        };
        let totals = stats.totals();
        let rate = (totals.delivered - last_delivered) as f64 / now.duration_since(last_at).as_secs_f64();
        let merged = merged_histogram(&stats);
        let window = match &last_hist {
            Some(prev) => {
                let mut w = merged.clone();
                let _ = w.subtract(prev);
                w
            }
            None => merged.clone(),
        };
        let lat = summarize(&window);
        let clients = server.map_or(String::new(), |s| {
            let t = s.totals();
            format!(" | clients {} | commands {}", t.connections, t.commands)
        });
        tracing::info!(
            "[{:>7.1}s] {:>9} msgs/s | routing p50 {} p99 {} | agents {} | dead letters {}{}",
            started.elapsed().as_secs_f64(),
            human(rate),
            ns(lat.p50_ns),
            ns(lat.p99_ns),
            stats.agents(),
            totals.dead_letters_total(),
            clients,
        );
        last_delivered = totals.delivered;
        last_at = now;
        last_hist = Some(merged);
    }
}

fn merged_histogram(stats: &EngineStats) -> Histogram<u64> {
    let mut merged = stats.shards[0].latency_histogram.clone();
    for s in &stats.shards[1..] {
        let _ = merged.add(&s.latency_histogram);
    }
    merged
}

fn print_final(stats: &EngineStats, drained: bool, elapsed: Duration) {
    tracing::info!(
        "nexus: stopped in {:.1} ms ({})",
        elapsed.as_secs_f64() * 1e3,
        if drained { "drained" } else { "drain timed out; what was left is counted as shutdown dead letters" }
    );
    tracing::info!(
        "shard |        sent |   delivered | dead letters | rejected full | asks timed out | agents spawned"
    );
    for s in &stats.shards {
        let c = &s.counters;
        tracing::info!(
            "{:>5} | {:>11} | {:>11} | {:>12} | {:>13} | {:>14} | {:>14}",
            s.shard,
            c.sent,
            c.delivered,
            c.dead_letters_total(),
            c.rejected_full,
            c.ask_timeouts,
            c.spawned
        );
    }
    let t = stats.totals();
    tracing::info!("host sent {}, host sends refused (queue full) {}", stats.host_sent, stats.host_rejected_full);
    let reasons: Vec<String> = DeadLetterReason::ALL
        .iter()
        .filter(|r| t.dead(**r) > 0)
        .map(|r| format!("{} {}", r.name(), t.dead(*r)))
        .collect();
    tracing::info!("dead letters by reason: {}", if reasons.is_empty() { "none".into() } else { reasons.join(", ") });
    tracing::info!(
        "accounting: sent {} = delivered {} + dead letters {}: {}",
        t.sent,
        t.delivered,
        t.dead_letters_total(),
        if stats.accounted() { "ok" } else { "MISMATCH" }
    );
}

/// A rate with an SI suffix.
fn human(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

/// Nanoseconds in a readable unit.
fn ns(v: u64) -> String {
    if v >= 1_000_000 {
        format!("{:.1} ms", v as f64 / 1e6)
    } else if v >= 1_000 {
        format!("{:.1} µs", v as f64 / 1e3)
    } else {
        format!("{v} ns")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_kinds_are_checked_against_the_registry_of_agent_spawn() {
        let text = "[[agents]]\nkind = \"echo\"\n[[agents]]\nkind = \"wizard\"\nname = \"w\"\n";
        let config = EngineConfig::from_toml_str(text, "test.toml").expect("the config parses");
        let err = validate(&config).expect_err("an unknown kind");
        let line = err.to_string();
        assert!(!line.contains('\n'), "one line: {line}");
        assert!(line.contains("agents[1].kind") && line.contains("wizard"), "{line}");
        assert!(line.contains("\"counter\", \"echo\", \"kv\""), "the hint lists the registry's kinds: {line}");
    }

    #[test]
    fn every_kind_of_the_registry_can_be_named_in_a_config() {
        let kinds = agent_kinds();
        for kind in kinds.names() {
            let text = format!("[[agents]]\nkind = \"{kind}\"\nname = \"a\"\n");
            let config = EngineConfig::from_toml_str(&text, "test.toml").expect("the config parses");
            validate(&config).unwrap_or_else(|e| panic!("{kind}: {e}"));
        }
        let config = EngineConfig::from_toml_str(DEFAULT_CONFIG, "default.toml").expect("the default parses");
        validate(&config).expect("the default config's kinds are all registered");
    }
}
