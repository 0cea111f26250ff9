//! The operations endpoint: `GET /metrics` (Prometheus text format) and `GET /health`.
//!
//! It runs on its own plain thread, off the shards: each scrape asks every shard for its
//! figures through the engine handle (the same request `EngineHandle::stats` makes), so a
//! scrape costs the shards one message each and nothing when nobody scrapes. `/health` answers
//! `200 ok` while every shard answers, `503` otherwise. Anything else is `404`; a request that
//! is not HTTP is closed. Requests are served one at a time, each with a 2 s read timeout.

use crate::server::ServerHandle;
use nexus_engine::engine::EngineHandle;
use nexus_engine::metrics::{DeadLetterReason, EngineStats};
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// A running metrics endpoint; dropping it stops it.
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Binds `addr` and serves until dropped.
    pub fn start(addr: &str, engine: EngineHandle, server: ServerHandle) -> std::io::Result<Self> {
        // A blocking accept: an idle endpoint costs nothing. `Drop` sets the flag, then
        // connects once to its own address so that the blocked accept returns and sees it.
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new().name("nexus-metrics".into()).spawn(move || {
            while !flag.load(Ordering::Acquire) {
                match listener.accept() {
                    Ok(_) if flag.load(Ordering::Acquire) => break,
                    Ok((stream, _)) => {
                        if let Err(e) = serve(stream, &engine, &server) {
                            tracing::debug!("metrics request failed: {e}");
                        }
                    }
                    Err(e) => {
                        tracing::warn!("metrics endpoint: accept failed: {e}");
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            }
        })?;
        Ok(Self { addr, stop, thread: Some(thread) })
    }

    /// The address it serves on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Ends the blocked accept; if the connect fails the listener is gone or broken, and
        // the accept has already returned with an error.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(mut stream: TcpStream, engine: &EngineHandle, server: &ServerHandle) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut request = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf)?;
        if n == 0 || request.len() > 16 * 1024 {
            return Ok(());
        }
        request.extend_from_slice(&buf[..n]);
    }
    let line = request.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut parts = line.split(|&b| b == b' ');
    let (method, path) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let (status, content_type, body) = match (method, path) {
        (b"GET", b"/metrics") => match engine.stats() {
            Ok(stats) => ("200 OK", "text/plain; version=0.0.4", render(&stats, server)),
            Err(e) => ("503 Service Unavailable", "text/plain", format!("engine unavailable: {e}\n")),
        },
        (b"GET", b"/health") => match engine.stats() {
            Ok(_) => ("200 OK", "text/plain", "ok\n".to_owned()),
            Err(e) => ("503 Service Unavailable", "text/plain", format!("unhealthy: {e}\n")),
        },
        (b"GET", _) => ("404 Not Found", "text/plain", "not found; try /metrics or /health\n".to_owned()),
        _ => ("405 Method Not Allowed", "text/plain", "only GET\n".to_owned()),
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

/// The Prometheus text for `stats` and the server's counters.
pub fn render(stats: &EngineStats, server: &ServerHandle) -> String {
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, samples: &mut dyn Iterator<Item = (String, f64)>| {
        let _ = writeln!(out, "# HELP nexus_{name} {help}\n# TYPE nexus_{name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "nexus_{name}{labels} {value}");
        }
    };
    let per_shard = |f: &dyn Fn(&nexus_engine::metrics::ShardStats) -> u64| {
        stats.shards.iter().map(move |s| (format!("{{shard=\"{}\"}}", s.shard), f(s) as f64)).collect::<Vec<_>>()
    };
    family(
        "messages_sent_total",
        "counter",
        "Messages sent by agents of the shard.",
        &mut per_shard(&|s| s.counters.sent).into_iter(),
    );
    family(
        "messages_delivered_total",
        "counter",
        "Messages handled by agents of the shard.",
        &mut per_shard(&|s| s.counters.delivered).into_iter(),
    );
    family("agents", "gauge", "Live agents on the shard.", &mut per_shard(&|s| s.agents).into_iter());
    family(
        "ask_timeouts_total",
        "counter",
        "Asks from the shard that timed out.",
        &mut per_shard(&|s| s.counters.ask_timeouts).into_iter(),
    );
    let mut dead = Vec::new();
    for s in &stats.shards {
        for reason in DeadLetterReason::ALL {
            dead.push((
                format!("{{shard=\"{}\",reason=\"{}\"}}", s.shard, reason.name()),
                s.counters.dead(reason) as f64,
            ));
        }
    }
    family("dead_letters_total", "counter", "Messages that could not be delivered, by reason.", &mut dead.into_iter());
    let mut latency = Vec::new();
    for s in &stats.shards {
        for (q, v) in [("0.5", s.latency.p50_ns), ("0.99", s.latency.p99_ns), ("0.999", s.latency.p999_ns)] {
            latency.push((format!("{{shard=\"{}\",quantile=\"{q}\"}}", s.shard), v as f64 / 1e9));
        }
    }
    family(
        "routing_latency_seconds",
        "summary",
        "Enqueue-to-dispatch latency of sampled messages.",
        &mut latency.into_iter(),
    );
    let snapshots: Vec<_> = (0..server.shards()).filter_map(|i| server.shard(i).map(|s| (i, s.snapshot()))).collect();
    if let Some((_, first)) = snapshots.first() {
        for (index, (field, _)) in first.fields().iter().enumerate() {
            let kind = if *field == "connections" { "gauge" } else { "counter" };
            let base = field.trim_end_matches("_total");
            let name = if kind == "counter" { format!("server_{base}_total") } else { format!("server_{base}") };
            let mut samples = snapshots.iter().map(|(i, s)| (format!("{{shard=\"{i}\"}}"), s.fields()[index].1 as f64));
            family(&name, kind, &format!("RESP server: {}.", base.replace('_', " ")), &mut samples);
        }
    }
    out
}
