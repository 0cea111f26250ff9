//! `nexus bench server`: redis-benchmark against `nexus run` and against redis-server, in one run.
//!
//! 1. Start `nexus run` (this binary) on a free loopback port with no built-in load and no
//!    metrics endpoint, and `redis-server` (no persistence) on another; wait until both answer
//!    PING. Both are stopped when the command ends, however it ends (a drop guard).
//! 2. For each round, for SET, GET and INCR at pipeline 1 and 16, run
//!    `redis-benchmark -c CLIENTS -n REQUESTS -P P -t TEST --csv -r 100000` against both
//!    servers back to back, alternating which goes first by round.
//! 3. Report, per test: the median requests/s and p50/p99 of each server and the median of the
//!    per-round throughput ratios (nexus / redis), then whether the target holds: at pipeline
//!    16, at least 1.5x redis-server's throughput with a p99 no worse.
//!
//! Every figure is redis-benchmark's own output of this run; a missing column is an error.

use crate::Failure;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TESTS: [&str; 3] = ["set", "get", "incr"];
const PIPELINES: [u32; 2] = [1, 16];

/// One redis-benchmark result.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Figures {
    /// Requests per second.
    pub rps: f64,
    /// Median latency (ms).
    pub p50_ms: f64,
    /// 99th percentile latency (ms).
    pub p99_ms: f64,
}

/// Parses redis-benchmark's `--csv` output (a header line, then one line per test).
pub fn parse_csv(text: &str) -> Result<Figures, String> {
    let mut lines = text.lines().map(str::trim).filter(|l| l.starts_with('"'));
    let header = lines.next().ok_or("redis-benchmark printed no CSV header")?;
    let row = lines.next().ok_or("redis-benchmark printed no CSV row")?;
    let split = |l: &str| l.split(',').map(|f| f.trim_matches('"').to_owned()).collect::<Vec<_>>();
    let (names, values) = (split(header), split(row));
    let get = |name: &str| -> Result<f64, String> {
        let i = names
            .iter()
            .position(|n| n == name)
            .ok_or_else(|| format!("redis-benchmark's CSV has no `{name}` column"))?;
        values.get(i).and_then(|v| v.parse().ok()).ok_or_else(|| format!("redis-benchmark's `{name}` is not a number"))
    };
    Ok(Figures { rps: get("rps")?, p50_ms: get("p50_latency_ms")?, p99_ms: get("p99_latency_ms")? })
}

/// The median of `values` (the mean of the middle two for an even count).
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// A child process stopped on drop (SIGTERM, then SIGKILL after 5 s).
struct Guard(Child, &'static str);

impl Drop for Guard {
    fn drop(&mut self) {
        // SAFETY: `kill` with a child's pid and a valid signal number has no memory effects.
        unsafe { libc::kill(self.0.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> Result<u16, Failure> {
    let l =
        TcpListener::bind("127.0.0.1:0").map_err(|e| Failure::runtime(format!("bench server: no free port: {e}")))?;
    l.local_addr().map(|a| a.port()).map_err(|e| Failure::runtime(format!("bench server: {e}")))
}

fn answers_ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let mut buf = [0u8; 7];
    s.write_all(b"*1\r\n$4\r\nPING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

fn wait_up(guard: &mut Guard, port: u16) -> Result<(), Failure> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !answers_ping(port) {
        if let Ok(Some(status)) = guard.0.try_wait() {
            return Err(Failure::runtime(format!(
                "bench server: {} exited during start-up ({status}); hint: run it by hand to see why",
                guard.1
            )));
        }
        if Instant::now() > deadline {
            return Err(Failure::runtime(format!(
                "bench server: {} did not answer PING on port {port} within 30 s",
                guard.1
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

fn tool_present(name: &str) -> Result<(), Failure> {
    match Command::new(name).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status() {
        Ok(_) => Ok(()),
        Err(_) => Err(Failure::usage(format!(
            "bench server: `{name}` not found; hint: run tools/setup.sh (it installs redis-tools and redis-server)"
        ))),
    }
}

fn benchmark(port: u16, test: &str, pipeline: u32, clients: u32, requests: u64) -> Result<Figures, Failure> {
    let out = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-c", &clients.to_string(), "-n", &requests.to_string()])
        .args(["-P", &pipeline.to_string(), "-t", test, "--csv", "-r", "100000"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Failure::runtime(format!("bench server: cannot run redis-benchmark: {e}")))?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_csv(&text)
        .map_err(|e| Failure::runtime(format!("bench server: {e} (port {port}, {test}, pipeline {pipeline}): {text}")))
}

/// Options of `nexus bench server`.
pub struct ServerBenchArgs {
    /// Rounds.
    pub repeat: u32,
    /// Nexus shards (`None`: the config's default).
    pub shards: Option<usize>,
    /// redis-benchmark clients.
    pub clients: u32,
    /// Requests per redis-benchmark run.
    pub requests: u64,
}

/// Runs `nexus bench server`; returns the JSON records' lines.
pub fn run(args: &ServerBenchArgs) -> Result<Vec<String>, Failure> {
    tool_present("redis-benchmark")?;
    tool_present("redis-server")?;
    let exe = std::env::current_exe().map_err(|e| Failure::runtime(format!("bench server: {e}")))?;
    let (nexus_port, redis_port) = (free_port()?, free_port()?);
    let config = std::env::temp_dir().join(format!("nexus-bench-server-{}.toml", std::process::id()));
    let shards = args.shards.map_or(String::new(), |n| format!("[placement]\nshards = {n}\noversubscribe = true\n"));
    std::fs::write(
        &config,
        format!("load = false\n{shards}[server]\nlisten = \"127.0.0.1:{nexus_port}\"\nmetrics_listen = \"\"\n"),
    )
    .map_err(|e| Failure::runtime(format!("bench server: cannot write {}: {e}", config.display())))?;
    eprintln!("bench server: starting nexus on {nexus_port} and redis-server on {redis_port}");
    let nexus = Command::new(exe)
        .args(["run", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| Failure::runtime(format!("bench server: cannot start nexus run: {e}")))?;
    let mut nexus = Guard(nexus, "nexus run");
    let redis = Command::new("redis-server")
        .args(["--port", &redis_port.to_string(), "--save", "", "--appendonly", "no", "--daemonize", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| Failure::runtime(format!("bench server: cannot start redis-server: {e}")))?;
    let mut redis = Guard(redis, "redis-server");
    wait_up(&mut nexus, nexus_port)?;
    wait_up(&mut redis, redis_port)?;
    let total = args.repeat as usize * TESTS.len() * PIPELINES.len() * 2;
    let mut step = 0;
    // results[test][pipeline] = (nexus figures, redis figures) per round.
    let mut results: Vec<Vec<(Vec<Figures>, Vec<Figures>)>> =
        vec![vec![(Vec::new(), Vec::new()); PIPELINES.len()]; TESTS.len()];
    for round in 0..args.repeat {
        for (t, test) in TESTS.iter().enumerate() {
            for (p, &pipeline) in PIPELINES.iter().enumerate() {
                let order: [(bool, u16); 2] = if round % 2 == 0 {
                    [(true, nexus_port), (false, redis_port)]
                } else {
                    [(false, redis_port), (true, nexus_port)]
                };
                for (is_nexus, port) in order {
                    step += 1;
                    eprintln!(
                        "bench server: [{step}/{total}] round {} {test} pipeline {pipeline} on {}",
                        round + 1,
                        if is_nexus { "nexus" } else { "redis" }
                    );
                    let f = benchmark(port, test, pipeline, args.clients, args.requests)?;
                    let slot = &mut results[t][p];
                    if is_nexus {
                        slot.0.push(f)
                    } else {
                        slot.1.push(f)
                    }
                }
            }
        }
    }
    let _ = std::fs::remove_file(&config);
    println!("redis-benchmark, {} clients, {} requests per run, {} rounds (medians; ratio = median of per-round nexus/redis)", args.clients, args.requests, args.repeat);
    println!("test  | pipeline | nexus req/s | redis req/s | ratio | nexus p50/p99 ms | redis p50/p99 ms");
    let mut records = Vec::new();
    let mut verdicts = Vec::new();
    for (t, test) in TESTS.iter().enumerate() {
        for (p, &pipeline) in PIPELINES.iter().enumerate() {
            let (n, r) = &results[t][p];
            let med = |v: &[Figures], f: fn(&Figures) -> f64| median(&mut v.iter().map(f).collect::<Vec<_>>());
            let mut ratios: Vec<f64> = n.iter().zip(r).map(|(a, b)| a.rps / b.rps).collect();
            let ratio = median(&mut ratios);
            let (nr, rr) = (med(n, |f| f.rps), med(r, |f| f.rps));
            let (n50, n99, r50, r99) =
                (med(n, |f| f.p50_ms), med(n, |f| f.p99_ms), med(r, |f| f.p50_ms), med(r, |f| f.p99_ms));
            println!("{test:<5} | {pipeline:>8} | {nr:>11.0} | {rr:>11.0} | {ratio:>5.2} | {n50:>7.3}/{n99:<8.3} | {r50:>7.3}/{r99:<8.3}");
            for (system, rps, p50, p99) in [("nexus", nr, n50, n99), ("redis", rr, r50, r99)] {
                for (metric, value, unit) in
                    [("rps", rps, "req/s"), ("p50_us", p50 * 1e3, "us"), ("p99_us", p99 * 1e3, "us")]
                {
                    records.push(serde_json::json!({"workload": "server", "system": system, "metric": format!("{test}_p{pipeline}_{metric}"), "value": value, "unit": unit, "clients": args.clients}).to_string());
                }
            }
            records.push(serde_json::json!({"workload": "server", "system": "nexus", "metric": format!("{test}_p{pipeline}_ratio_vs_redis"), "value": ratio, "unit": "x"}).to_string());
            if pipeline == 16 {
                let met = ratio >= 1.5 && n99 <= r99;
                verdicts.push(format!(
                    "target {test} pipeline 16 (>= 1.5x redis throughput, p99 no worse): {} ({ratio:.2}x, p99 {n99:.3} ms against {r99:.3} ms)",
                    if met { "met" } else { "not met" }
                ));
            }
        }
    }
    for v in verdicts {
        println!("{v}");
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_is_read_by_column_name() {
        let text = "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\"p95_latency_ms\",\"p99_latency_ms\",\"max_latency_ms\"\n\"SET\",\"292397.66\",\"2.5\",\"0.1\",\"1.839\",\"3.0\",\"4.2\",\"9.0\"\n";
        assert_eq!(parse_csv(text), Ok(Figures { rps: 292397.66, p50_ms: 1.839, p99_ms: 4.2 }));
        assert!(parse_csv("\"test\",\"rps\"\n\"SET\",\"1\"\n").unwrap_err().contains("p50_latency_ms"));
        assert!(parse_csv("").is_err());
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
