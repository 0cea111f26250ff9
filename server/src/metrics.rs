//! The operations endpoint: `GET /metrics` (Prometheus text format) and `GET /health`.
//!
//! It runs off the shards: an accept thread hands each connection to a thread of its own, at
//! most [`MAX_REQUESTS`] at once (one more is answered `503` at once), each with 2 s in all to
//! send its request and a 2 s write timeout, so a client that connects and says nothing holds up nobody else. Each scrape
//! asks every shard for its figures through the engine handle (the same request
//! `EngineHandle::stats` makes), so a scrape costs the shards one message each and nothing when
//! nobody scrapes. `/health` answers `200 ok` while every shard answers, `503` otherwise.
//! Anything else is `404`; a request that is not HTTP is closed.
//!
//! With a password (`[server] requirepass`), `/metrics` answers `401` unless the request
//! carries it: `Authorization: Bearer <password>`, or `Basic` with any user name and the
//! password (what Prometheus' `basic_auth` sends). `/health` stays open, and says only `ok` or
//! `unhealthy`.

use crate::server::ServerHandle;
use nexus_engine::engine::EngineHandle;
use nexus_engine::metrics::{DeadLetterReason, EngineStats, ShardStats};
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Requests served at once; one more is answered `503`.
pub const MAX_REQUESTS: usize = 16;

/// How long a request may take to arrive, and its answer to be taken.
const IO_TIMEOUT: Duration = Duration::from_secs(2);

/// How long the accept thread waits for the request it answers `503`.
const BUSY_READ: Duration = Duration::from_millis(50);

/// What every request thread shares.
struct Shared {
    engine: EngineHandle,
    server: ServerHandle,
    password: Option<String>,
    active: AtomicUsize,
}

/// A running metrics endpoint; dropping it stops it.
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Binds `addr` and serves until dropped; with `password`, `/metrics` requires it (see the
    /// module documentation).
    ///
    /// # Errors
    /// When `addr` cannot be bound or the accept thread cannot start.
    pub fn start(
        addr: &str,
        engine: EngineHandle,
        server: ServerHandle,
        password: Option<String>,
    ) -> std::io::Result<Self> {
        // A blocking accept: an idle endpoint costs nothing. `Drop` sets the flag, then
        // connects once to its own address so that the blocked accept returns and sees it.
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let shared = Arc::new(Shared { engine, server, password, active: AtomicUsize::new(0) });
        let thread = std::thread::Builder::new().name("nexus-metrics".into()).spawn(move || {
            while !flag.load(Ordering::Acquire) {
                match listener.accept() {
                    Ok(_) if flag.load(Ordering::Acquire) => break,
                    Ok((stream, _)) => dispatch(stream, &shared),
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
        // the accept has already returned with an error. Request threads end on their own
        // within the I/O timeout.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Serves `stream` on a thread of its own, or answers `503` when [`MAX_REQUESTS`] are served.
fn dispatch(mut stream: TcpStream, shared: &Arc<Shared>) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    if shared.active.fetch_add(1, Ordering::AcqRel) >= MAX_REQUESTS {
        shared.active.fetch_sub(1, Ordering::AcqRel);
        // Take the request if it is already on its way (briefly: this is the accept thread),
        // so that closing with it unread does not reset the connection under the answer.
        let _ = read_head(&mut stream, BUSY_READ);
        let _ = respond(&mut stream, "503 Service Unavailable", "text/plain", "busy; retry later\n", "");
        return;
    }
    let mine = shared.clone();
    let spawned = std::thread::Builder::new().name("nexus-metrics-req".into()).spawn(move || {
        if let Err(e) = serve(stream, &mine) {
            tracing::debug!("metrics request failed: {e}");
        }
        mine.active.fetch_sub(1, Ordering::AcqRel);
    });
    if let Err(e) = spawned {
        shared.active.fetch_sub(1, Ordering::AcqRel);
        tracing::warn!("metrics endpoint: cannot start a request thread: {e}");
    }
}

fn serve(mut stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let Some(request) = read_head(&mut stream, IO_TIMEOUT)? else { return Ok(()) };
    let line = request.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut parts = line.split(|&b| b == b' ');
    let (method, path) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let guarded = shared.password.is_some();
    let mut extra = "";
    let (status, content_type, body) = match (method, path) {
        (b"GET", b"/metrics") if !authorized(&request, shared.password.as_deref()) => {
            extra = "WWW-Authenticate: Basic realm=\"nexus\"\r\n";
            (
                "401 Unauthorized",
                "text/plain",
                "the server has requirepass set; send it as Authorization: Bearer <password> or Basic\n".to_owned(),
            )
        }
        (b"GET", b"/metrics") => match shared.engine.stats() {
            Ok(stats) => ("200 OK", "text/plain; version=0.0.4", render(&stats, &shared.server)),
            Err(e) => ("503 Service Unavailable", "text/plain", format!("engine unavailable: {e}\n")),
        },
        (b"GET", b"/health") => match shared.engine.stats() {
            Ok(_) => ("200 OK", "text/plain", "ok\n".to_owned()),
            Err(_) if guarded => ("503 Service Unavailable", "text/plain", "unhealthy\n".to_owned()),
            Err(e) => ("503 Service Unavailable", "text/plain", format!("unhealthy: {e}\n")),
        },
        (b"GET", _) => ("404 Not Found", "text/plain", "not found; try /metrics or /health\n".to_owned()),
        _ => ("405 Method Not Allowed", "text/plain", "only GET\n".to_owned()),
    };
    respond(&mut stream, status, content_type, &body, extra)
}

/// Reads a request up to the end of its head within `limit` in all (a client that sends a
/// byte at a time holds a thread no longer); `None` when the client closes first or sends
/// more than 16 KiB of head.
///
/// # Errors
/// As the reads; `TimedOut` or `WouldBlock` once `limit` has passed.
fn read_head(stream: &mut TcpStream, limit: Duration) -> std::io::Result<Option<Vec<u8>>> {
    let deadline = Instant::now() + limit;
    let mut request = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        stream.set_read_timeout(Some(left))?;
        let n = stream.read(&mut buf)?;
        if n == 0 || request.len() > 16 * 1024 {
            return Ok(None);
        }
        request.extend_from_slice(&buf[..n]);
    }
    Ok(Some(request))
}

fn respond(stream: &mut TcpStream, status: &str, content_type: &str, body: &str, extra: &str) -> std::io::Result<()> {
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

/// Whether `request` (its head) may read `/metrics`: always without a password, else when its
/// `Authorization` header is `Bearer <password>` or `Basic` of `<any user>:<password>`.
fn authorized(request: &[u8], password: Option<&str>) -> bool {
    let Some(password) = password else { return true };
    let head = String::from_utf8_lossy(request);
    let Some(value) = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim().eq_ignore_ascii_case("authorization").then(|| value.trim().to_owned())
    }) else {
        return false;
    };
    let (scheme, credentials) = value.split_once(' ').unwrap_or((value.as_str(), ""));
    let credentials = credentials.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        same(credentials.as_bytes(), password.as_bytes())
    } else if scheme.eq_ignore_ascii_case("basic") {
        base64_decode(credentials).is_some_and(|pair| match pair.iter().position(|&b| b == b':') {
            Some(colon) => same(&pair[colon + 1..], password.as_bytes()),
            None => false,
        })
    } else {
        false
    }
}

/// Compares in time that depends on the lengths only, not on where the bytes differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Standard base64 (padding optional); `None` for anything else.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(u32::from(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        }))
    };
    let digits = text.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= value(c)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        match chunk.len() {
            4 => out.extend_from_slice(&bytes[1..4]),
            3 => out.extend_from_slice(&bytes[1..3]),
            2 => out.push(bytes[1]),
            _ => return None,
        }
    }
    Some(out)
}

/// The Prometheus text for `stats` and the server's counters.
pub fn render(stats: &EngineStats, server: &ServerHandle) -> String {
    let mut out = render_engine(stats);
    let snapshots: Vec<_> = (0..server.shards()).filter_map(|i| server.shard(i).map(|s| (i, s.snapshot()))).collect();
    if let Some((_, first)) = snapshots.first() {
        for (index, (field, _)) in first.fields().iter().enumerate() {
            let kind = if *field == "connections" { "gauge" } else { "counter" };
            let base = field.trim_end_matches("_total");
            let name = if kind == "counter" { format!("server_{base}_total") } else { format!("server_{base}") };
            let mut samples = snapshots.iter().map(|(i, s)| (format!("{{shard=\"{i}\"}}"), s.fields()[index].1 as f64));
            family(&mut out, &name, kind, &format!("RESP server: {}.", base.replace('_', " ")), &mut samples);
        }
    }
    out
}

/// Writes one metric family: its HELP and TYPE lines, then one line per `(labels, value)`.
fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: &mut dyn Iterator<Item = (String, f64)>) {
    let _ = writeln!(out, "# HELP nexus_{name} {help}\n# TYPE nexus_{name} {kind}");
    for (labels, value) in samples {
        let _ = writeln!(out, "nexus_{name}{labels} {value}");
    }
}

/// The Prometheus text for the engine's own figures (everything but the server's counters).
fn render_engine(stats: &EngineStats) -> String {
    let mut out = String::new();
    let per_shard = |f: &dyn Fn(&ShardStats) -> u64| {
        stats.shards.iter().map(move |s| (format!("{{shard=\"{}\"}}", s.shard), f(s) as f64)).collect::<Vec<_>>()
    };
    let mut shard_family = |name: &str, kind: &str, help: &str, f: &dyn Fn(&ShardStats) -> u64| {
        family(&mut out, name, kind, help, &mut per_shard(f).into_iter());
    };
    shard_family("messages_sent_total", "counter", "Messages sent by agents of the shard.", &|s| s.counters.sent);
    shard_family("messages_delivered_total", "counter", "Messages handled by agents of the shard.", &|s| {
        s.counters.delivered
    });
    shard_family("agents", "gauge", "Live agents on the shard.", &|s| s.agents);
    shard_family("ask_timeouts_total", "counter", "Asks from the shard that timed out.", &|s| s.counters.ask_timeouts);
    shard_family(
        "queued_messages",
        "gauge",
        "Messages queued on the shard: mailboxes, the control lane and the outbound backlogs.",
        &|s| s.queued,
    );
    let mut depth = Vec::new();
    for s in &stats.shards {
        for (agent, len) in &s.busiest {
            depth.push((format!("{{shard=\"{}\",agent=\"{agent}\"}}", s.shard), *len as f64));
        }
    }
    family(
        &mut out,
        "mailbox_depth",
        "gauge",
        "Mailbox length of the shard's busiest agents (up to 5 per shard, non-empty mailboxes only).",
        &mut depth.into_iter(),
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
    let help = "Messages that could not be delivered, by reason.";
    family(&mut out, "dead_letters_total", "counter", help, &mut dead.into_iter());
    let mut latency = Vec::new();
    for s in &stats.shards {
        for (q, v) in [("0.5", s.latency.p50_ns), ("0.99", s.latency.p99_ns), ("0.999", s.latency.p999_ns)] {
            latency.push((format!("{{shard=\"{}\",quantile=\"{q}\"}}", s.shard), v as f64 / 1e9));
        }
    }
    let help = "Enqueue-to-dispatch latency of sampled messages.";
    family(&mut out, "routing_latency_seconds", "summary", help, &mut latency.into_iter());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use nexus_engine::agent::AgentId;
    use nexus_engine::metrics::{Counters, LatencySummary};

    fn shard(index: usize, queued: u64, busiest: Vec<(AgentId, u64)>) -> ShardStats {
        ShardStats {
            shard: index,
            counters: Counters { delivered: 40 + index as u64, ..Counters::default() },
            agents: 3,
            names: 0,
            pending_asks: 0,
            queued,
            timers: 0,
            ring_pushed: 0,
            ring_popped: 0,
            shedding: false,
            watches: 0,
            links: 0,
            busiest,
            latency: LatencySummary { p50_ns: 1_500, p99_ns: 20_000, ..LatencySummary::default() },
            latency_histogram: hdrhistogram::Histogram::new(3).expect("a histogram"),
        }
    }

    #[test]
    fn metrics_credentials_are_bearer_or_basic_with_the_password() {
        let head = |auth: &str| format!("GET /metrics HTTP/1.1\r\nauthorization: {auth}\r\n\r\n").into_bytes();
        assert!(authorized(b"GET /metrics HTTP/1.1\r\n\r\n", None), "no password: open");
        assert!(!authorized(b"GET /metrics HTTP/1.1\r\n\r\n", Some("pw")));
        assert!(authorized(&head("Bearer pw"), Some("pw")));
        assert!(!authorized(&head("Bearer pwx"), Some("pw")));
        assert!(authorized(&head("Basic dTpwdw=="), Some("pw")), "u:pw");
        assert!(authorized(&head("basic OnB3"), Some("pw")), ":pw, any case of the scheme");
        assert!(!authorized(&head("Basic dTpwdg=="), Some("pw")), "u:pv");
        assert!(!authorized(&head("Basic !!!"), Some("pw")));
        assert_eq!(base64_decode("cHJvbWV0aGV1czpzM2NyZXQ="), Some(b"prometheus:s3cret".to_vec()));
    }

    #[test]
    fn engine_text_has_queues_and_the_busiest_mailboxes() {
        let busy = vec![(AgentId::new(1, 7, 2), 12), (AgentId::new(1, 3, 0), 4)];
        let stats =
            EngineStats { shards: vec![shard(0, 0, vec![]), shard(1, 16, busy)], host_sent: 0, host_rejected_full: 0 };
        let text = render_engine(&stats);
        for line in [
            "# TYPE nexus_queued_messages gauge",
            "nexus_queued_messages{shard=\"0\"} 0",
            "nexus_queued_messages{shard=\"1\"} 16",
            "# TYPE nexus_mailbox_depth gauge",
            "nexus_mailbox_depth{shard=\"1\",agent=\"1:7.2\"} 12",
            "nexus_mailbox_depth{shard=\"1\",agent=\"1:3.0\"} 4",
            "nexus_messages_delivered_total{shard=\"1\"} 41",
            "nexus_routing_latency_seconds{shard=\"0\",quantile=\"0.99\"} 0.00002",
            "nexus_dead_letters_total{shard=\"0\",reason=\"mailbox_full\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "missing `{line}` in:\n{text}");
        }
        assert!(!text.contains("agent=\"0:"), "shard 0 has no busy mailbox:\n{text}");
        for name in text.lines().filter_map(|l| l.strip_prefix("# HELP ")) {
            let name = name.split(' ').next().unwrap_or_default();
            assert!(text.contains(&format!("# TYPE {name} ")), "HELP without TYPE: {name}");
        }
    }
}
