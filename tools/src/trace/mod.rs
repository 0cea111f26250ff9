//! `nexus trace`: collects message traces from a running `nexus run` and writes them as a
//! Perfetto / chrome://tracing file.
//!
//! `nexus trace [--connect ADDR] [--duration 2s] [--sample 0.01] [--out trace.json]
//! [--password P] [--top 10]`
//!
//! 1. Connect to the RESP server (AUTH first when a password is given, by `--password` or the
//!    `REDISCLI_AUTH` environment variable, as redis-cli takes it) and read `NEXUS.TRACE
//!    STATUS` (the engine clock's epoch, the span counters).
//! 2. Drop the spans buffered before the collection (they belong to no request of this run).
//! 3. `NEXUS.TRACE START <sample>`; every 100 ms for `--duration`, `NEXUS.TRACE FETCH` the
//!    spans (so the shards' buffers never fill), with a progress line on stderr.
//! 4. `NEXUS.TRACE STOP` (sampling goes back to the config's), a last fetch for the hops
//!    still in flight, then write the Chrome Trace Event JSON to `--out` and print the
//!    `--top` slowest paths with their hops, and the spans the buffers dropped meanwhile.
//!
//! Errors print as one line with a hint: an unreachable server, a missing or wrong
//! password, a server without `NEXUS.TRACE`, a bad argument.

mod client;

use crate::Failure;
use client::{Client, Reply};
use nexus_trace::SpanRecord;
use std::io::{IsTerminal, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How often the spans are fetched while collecting.
const FETCH_EVERY: Duration = Duration::from_millis(100);
/// How long the last fetch waits for hops still in flight after sampling stops.
const SETTLE: Duration = Duration::from_millis(200);

/// `nexus trace`'s arguments.
#[derive(clap::Args, Debug)]
pub struct TraceArgs {
    /// The RESP address of the running `nexus run`.
    #[arg(long, default_value = "127.0.0.1:7379")]
    connect: String,
    /// How long to collect (a number with ms, s or m).
    #[arg(long, default_value = "2s")]
    duration: String,
    /// The probability that a message or command starts a trace while collecting (0 to 1).
    #[arg(long, default_value_t = 0.01)]
    sample: f64,
    /// Where to write the Chrome Trace Event JSON (opens in ui.perfetto.dev and
    /// chrome://tracing).
    #[arg(long, default_value = "trace.json")]
    out: PathBuf,
    /// The server's `requirepass` (default: the REDISCLI_AUTH environment variable).
    #[arg(long)]
    password: Option<String>,
    /// How many of the slowest paths to print.
    #[arg(long, default_value_t = 10)]
    top: usize,
}

/// Runs `nexus trace`.
pub fn trace(args: TraceArgs) -> Result<(), Failure> {
    let duration =
        crate::bench::parse_duration(&args.duration).map_err(|e| Failure::usage(format!("trace: --duration {e}")))?;
    if !(args.sample > 0.0 && args.sample <= 1.0) {
        return Err(Failure::usage(format!(
            "trace: --sample {} is not a probability above 0; hint: use a number such as 0.01 (1%) or 1 (every message)",
            args.sample
        )));
    }
    let addr = resolve(&args.connect)?;
    let mut session = Session::open(&addr, args.password.or_else(|| std::env::var("REDISCLI_AUTH").ok()))?;
    let epoch = session.status("epoch_unix_ns")?;
    let dropped_before = session.status("dropped")?;
    let stale = session.fetch_all()?.len();
    session.expect_ok(&["NEXUS.TRACE", "START", &args.sample.to_string()])?;
    let collected = session.collect(duration);
    // Sampling goes back to the config's even when the collection failed.
    let stopped = session.expect_ok(&["NEXUS.TRACE", "STOP"]);
    let mut spans = collected?;
    stopped?;
    std::thread::sleep(SETTLE);
    spans.extend(session.fetch_all()?);
    let dropped = session.status("dropped")?.saturating_sub(dropped_before);
    write_file(&args.out, &spans, epoch)?;
    println!(
        "nexus trace: {} spans in {} traces from {} ({} s at sample {}), written to {}",
        spans.len(),
        count_traces(&spans),
        args.connect,
        duration.as_secs_f64(),
        args.sample,
        args.out.display()
    );
    if stale > 0 {
        println!("({stale} spans buffered before the collection were left out)");
    }
    if dropped > 0 {
        println!("warning: the shards' span buffers dropped {dropped} spans meanwhile; hint: raise [tracing] buffer or lower --sample");
    }
    let paths = nexus_trace::paths::slowest(&spans, args.top);
    if !paths.is_empty() {
        println!("\nthe {} slowest paths:\n{}", paths.len(), nexus_trace::paths::render_paths(&paths));
    }
    Ok(())
}

fn resolve(text: &str) -> Result<SocketAddr, Failure> {
    text.to_socket_addrs().ok().and_then(|mut a| a.next()).ok_or_else(|| {
        Failure::usage(format!(
            "trace: --connect {text:?} is not an address; hint: use host:port, such as 127.0.0.1:7379"
        ))
    })
}

fn count_traces(spans: &[SpanRecord]) -> usize {
    spans.iter().map(|s| s.trace_id).collect::<std::collections::HashSet<_>>().len()
}

fn write_file(path: &PathBuf, spans: &[SpanRecord], epoch: u64) -> Result<(), Failure> {
    let fail = |e: std::io::Error| {
        Failure::runtime(format!("trace: cannot write {}: {e}; hint: pick another --out", path.display()))
    };
    let file = std::fs::File::create(path).map_err(fail)?;
    let mut out = std::io::BufWriter::new(file);
    nexus_trace::chrome::write_chrome(spans, epoch, &mut out).map_err(fail)?;
    out.flush().map_err(fail)
}

/// A connection to the server being traced.
struct Session {
    client: Client,
    addr: SocketAddr,
}

impl Session {
    fn open(addr: &SocketAddr, password: Option<String>) -> Result<Self, Failure> {
        let client = Client::connect(addr).map_err(|e| {
            Failure::runtime(format!(
                "trace: cannot reach nexus at {addr} ({e}); hint: start `nexus run`, or pass --connect with its [server] listen address"
            ))
        })?;
        let mut session = Self { client, addr: *addr };
        if let Some(password) = password {
            if let Reply::Error(e) = session.call(&["AUTH", &password])? {
                return Err(Failure::runtime(format!(
                    "trace: AUTH was refused ({e}); hint: pass the server's requirepass with --password or REDISCLI_AUTH"
                )));
            }
        }
        Ok(session)
    }

    fn call(&mut self, words: &[&str]) -> Result<Reply, Failure> {
        let addr = self.addr;
        self.client.call(words).map_err(|e| Failure::runtime(format!("trace: the connection to {addr} failed: {e}")))
    }

    /// A reply that is not an error, or the error as one line with a hint.
    fn checked(&mut self, words: &[&str]) -> Result<Reply, Failure> {
        match self.call(words)? {
            Reply::Error(e) if e.starts_with("NOAUTH") => Err(Failure::runtime(format!(
                "trace: the server needs a password ({e}); hint: pass --password or set REDISCLI_AUTH"
            ))),
            Reply::Error(e) if e.contains("unknown command") => Err(Failure::runtime(format!(
                "trace: the server at {} has no NEXUS.TRACE ({e}); hint: is it a nexus run of this version?",
                self.addr
            ))),
            Reply::Error(e) => Err(Failure::runtime(format!("trace: {} failed: {e}", words.join(" ")))),
            reply => Ok(reply),
        }
    }

    fn expect_ok(&mut self, words: &[&str]) -> Result<(), Failure> {
        self.checked(words).map(drop)
    }

    /// One field of `NEXUS.TRACE STATUS`.
    fn status(&mut self, field: &str) -> Result<u64, Failure> {
        let reply = self.checked(&["NEXUS.TRACE", "STATUS"])?;
        let Reply::Array(Some(items)) = reply else {
            return Err(Failure::runtime("trace: NEXUS.TRACE STATUS did not answer an array"));
        };
        let value = items.chunks(2).find_map(|pair| match pair {
            [Reply::Bulk(Some(k)), Reply::Int(v)] if k == field.as_bytes() => u64::try_from(*v).ok(),
            _ => None,
        });
        value.ok_or_else(|| Failure::runtime(format!("trace: NEXUS.TRACE STATUS has no {field}")))
    }

    /// One `NEXUS.TRACE FETCH`: the spans it returned.
    fn fetch(&mut self) -> Result<Vec<SpanRecord>, Failure> {
        let Reply::Array(Some(items)) = self.checked(&["NEXUS.TRACE", "FETCH"])? else {
            return Err(Failure::runtime("trace: NEXUS.TRACE FETCH did not answer an array"));
        };
        let mut spans = Vec::with_capacity(items.len());
        for item in items {
            let Reply::Bulk(Some(line)) = item else { continue };
            let line = String::from_utf8_lossy(&line);
            let span = nexus_trace::wire::decode(&line)
                .map_err(|e| Failure::runtime(format!("trace: a span from the server is unreadable: {e}")))?;
            spans.push(span);
        }
        Ok(spans)
    }

    /// Fetches until the buffers are empty.
    fn fetch_all(&mut self) -> Result<Vec<SpanRecord>, Failure> {
        let mut all = Vec::new();
        loop {
            let batch = self.fetch()?;
            if batch.is_empty() {
                return Ok(all);
            }
            all.extend(batch);
        }
    }

    /// Fetches every 100 ms for `duration`, with a progress line on stderr.
    fn collect(&mut self, duration: Duration) -> Result<Vec<SpanRecord>, Failure> {
        let start = Instant::now();
        let terminal = std::io::stderr().is_terminal();
        let mut spans = Vec::new();
        let mut last_line = Instant::now();
        while start.elapsed() < duration {
            std::thread::sleep(FETCH_EVERY.min(duration.saturating_sub(start.elapsed())));
            spans.extend(self.fetch()?);
            if terminal || last_line.elapsed() >= Duration::from_secs(1) {
                let line = format!(
                    "collecting: {:.1} s of {:.1} s, {} spans",
                    start.elapsed().as_secs_f64(),
                    duration.as_secs_f64(),
                    spans.len()
                );
                if terminal {
                    eprint!("\r{line}   ");
                } else {
                    eprintln!("{line}");
                }
                last_line = Instant::now();
            }
        }
        if terminal {
            eprintln!();
        }
        Ok(spans)
    }
}
