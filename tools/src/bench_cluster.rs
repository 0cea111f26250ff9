//! `nexus bench cluster`: two nodes (two engines, one shard each, in this process) joined
//! through a `nats-server` the bench starts on a free loopback port (killed at the end). It
//! measures, in interleaved rounds of 0.5 s (Nexus, then raw, five times):
//!
//! - the cross-node ask round trip: a host `ask` on node b through the proxy of a global
//!   name held on node a (encode, NATS request, bridge agent, local ask, answer back), against
//!   a raw async-nats request/reply echo with the same 16-byte payload; p50 per round, the
//!   ratio pair by pair, then the median and min–max over the rounds;
//! - one-way messages/s: host sends to the proxy for the round, until node a counted every
//!   message that arrived, against raw publish to a counting subscriber, same payload.
//!
//! Invariant: both sides run in the same process, on the same server, in alternating rounds,
//! so drift on a shared machine hits both; the bridge's accounting is checked at the end.

use crate::bench_cluster_raw::Raw;
use crate::Failure;
use nexus_cluster::{Call, ClusterConfig, Node};
use nexus_engine::agent::{Agent, Ctx, SpawnPlacement};
use nexus_engine::engine::Engine;
use nexus_engine::shard::ExecutorKind;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ROUNDS: usize = 5;
const WINDOW: Duration = Duration::from_millis(500);
const PAYLOAD: [u8; 16] = *b"nexus-cluster-16";
/// One-way flow control, both sides: at most this many messages sent and not yet counted (a
/// NATS subscriber that falls further behind is a slow consumer and loses messages).
pub const MAX_AHEAD: u64 = 16_384;

/// Echoes asks; counts one-way messages.
struct Sink(Arc<AtomicU64>);

impl Agent for Sink {
    type Msg = Call<Vec<u8>, Vec<u8>>;
    fn handle(&mut self, msg: Self::Msg, ctx: &mut Ctx<'_>) {
        match msg {
            Call::Tell(_) => {
                self.0.fetch_add(1, Ordering::Relaxed);
            }
            Call::Ask(q, reply) => ctx.reply(reply, Ok(q)),
        }
    }
}

/// A `nats-server` on a free port, killed on drop.
struct NatsServer(std::process::Child, u16);

impl NatsServer {
    fn start() -> Result<NatsServer, Failure> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| Failure::runtime(format!("bench cluster: no free port: {e}")))?
            .port();
        let child = std::process::Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| {
                Failure::runtime(format!("bench cluster: cannot start nats-server ({e}); run tools/setup.sh"))
            })?;
        let server = NatsServer(child, port);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err(Failure::runtime("bench cluster: nats-server did not listen"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(server)
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn engine() -> Result<Engine, Failure> {
    Engine::builder()
        .shards(1)
        .oversubscribe(true)
        .executor(ExecutorKind::Threads)
        .pin_threads(false)
        .build()
        .map_err(|e| Failure::runtime(format!("bench cluster: engine: {e}")))
}

fn node(engine: &Engine, url: &str, name: &str) -> Result<Node, Failure> {
    let config =
        ClusterConfig::builder(url, name).cluster("bench").build().map_err(|e| Failure::runtime(e.to_string()))?;
    Node::start(&engine.handle(), config).map_err(|e| Failure::runtime(format!("bench cluster: {e}")))
}

fn p50(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

/// Runs the bench; see the module documentation.
pub fn bench_cluster() -> Result<(), Failure> {
    let nats = NatsServer::start()?;
    let url = format!("nats://127.0.0.1:{}", nats.1);
    let (ea, eb) = (engine()?, engine()?);
    let (na, nb) = (node(&ea, &url, "a")?, node(&eb, &url, "b")?);
    let told = Arc::new(AtomicU64::new(0));
    let counter = told.clone();
    let sink =
        ea.handle().spawn(SpawnPlacement::Local, move || Sink(counter)).map_err(|e| Failure::runtime(e.to_string()))?;
    na.register_global("sink", sink).map_err(|e| Failure::runtime(e.to_string()))?;
    let remote = nb.resolve::<Vec<u8>, Vec<u8>>("sink").map_err(|e| Failure::runtime(e.to_string()))?;
    let raw = Raw::start(&url).map_err(Failure::runtime)?;
    let hb = eb.handle();
    let ask_nexus = || {
        let mut lat = Vec::new();
        let end = Instant::now() + WINDOW;
        while Instant::now() < end {
            let t = Instant::now();
            if let Ok(Ok(_)) = hb.ask(remote, Duration::from_secs(5), |r| Call::Ask(PAYLOAD.to_vec(), r)) {
                lat.push(t.elapsed().as_nanos() as u64);
            }
        }
        lat
    };
    let one_way_nexus = || {
        let before = told.load(Ordering::Relaxed);
        let started = Instant::now();
        let mut sent = 0u64;
        while started.elapsed() < WINDOW {
            if hb.send_timeout(remote, Call::Tell(PAYLOAD.to_vec()), Duration::from_secs(1)).is_ok() {
                sent += 1;
            }
            while sent > told.load(Ordering::Relaxed) - before + MAX_AHEAD {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while told.load(Ordering::Relaxed) - before < sent && Instant::now() < deadline {
            std::thread::sleep(Duration::from_micros(200));
        }
        (told.load(Ordering::Relaxed) - before) as f64 / started.elapsed().as_secs_f64()
    };
    println!("nexus bench cluster: 2 nodes (1 shard each, threads) via nats-server on 127.0.0.1:{}; {ROUNDS} interleaved rounds of {} ms; payload {} bytes", nats.1, WINDOW.as_millis(), PAYLOAD.len());
    let (mut ask_ratios, mut way_ratios) = (Vec::new(), Vec::new());
    for round in 1..=ROUNDS {
        let (n, r) = (p50(ask_nexus()), p50(raw.asks(&PAYLOAD, WINDOW)));
        let (nw, rw) = (one_way_nexus(), raw.one_way(&PAYLOAD, WINDOW));
        let (ar, wr) = (n as f64 / r.max(1) as f64, nw / rw.max(1.0));
        println!("round {round}: ask p50 nexus {:.1} us, raw {:.1} us, ratio {ar:.2}x | one-way nexus {:.0}/s, raw {:.0}/s, ratio {wr:.2}x", n as f64 / 1e3, r as f64 / 1e3, nw, rw);
        ask_ratios.push(ar);
        way_ratios.push(wr);
    }
    report("ask RTT p50 ratio (nexus/raw, target <= 1.20)", &mut ask_ratios, |m| m <= 1.2);
    report("one-way msgs/s ratio (nexus/raw, target >= 0.80)", &mut way_ratios, |m| m >= 0.8);
    for (name, node) in [("a", &na), ("b", &nb)] {
        let stats = node.stats();
        let verdict = if stats.accounted() { "accounted" } else { "NOT accounted" };
        println!("node {name} accounting: {} ({verdict})", stats.line());
    }
    nb.shutdown();
    na.shutdown();
    let _ = eb.shutdown();
    let _ = ea.shutdown();
    Ok(())
}

fn report(what: &str, ratios: &mut [f64], met: impl Fn(f64) -> bool) {
    ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    let verdict = if met(median) { "met" } else { "not met" };
    println!("{what}: median {median:.2}x, min {:.2}x, max {:.2}x: {verdict}", ratios[0], ratios[ratios.len() - 1]);
}
