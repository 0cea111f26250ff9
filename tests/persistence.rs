//! `[persistence] mode = "aof"` end to end, through `nexus run`: a restart keeps keys, deadlines
//! and hashes (on both executors); a crash (`kill -9`) under `fsync = "always"` loses no
//! acknowledged write (on both executors) and under `everysec` only those of about the last
//! second (`kill -9` keeps the page cache: these check that an answer follows the write to the
//! log, not power-loss durability); a torn tail is
//! cut off and reported; corruption in the middle and a directory of another shard count are
//! refused with one clear line; a log past its compaction threshold is rewritten smaller and
//! still replays to the same keys.
//!
//! Each test runs its own server processes on free ports, with its own log directory.

/// The executor of the fixture's base config; each test names its own.
#[allow(dead_code)]
pub const EXECUTOR: &str = "glommio";

#[path = "support/client.rs"]
#[allow(dead_code)]
mod client;
#[path = "support/nexus.rs"]
#[allow(dead_code)]
mod nexus;
#[path = "support/resp.rs"]
#[allow(dead_code)]
mod resp;

use resp::{encode_str, RawConn, Reply};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The longest a server may take to answer its first PING.
const START: Duration = Duration::from_secs(30);

/// One `nexus run` process with a persistence config.
struct Proc {
    child: Child,
    port: u16,
    output: Arc<Mutex<String>>,
}

/// A config for a two-shard server on `executor` with `[persistence]` keys `persistence`.
fn config(executor: &str, port: u16, dir: &Path, persistence: &str) -> String {
    format!(
        "executor = \"{executor}\"\nload = false\n[placement]\nshards = 2\noversubscribe = true\n\
         [idle]\nspin_before_park_us = 0\n[server]\nlisten = \"127.0.0.1:{port}\"\nmetrics_listen = \"\"\n\
         [persistence]\nmode = \"aof\"\ndir = \"{}\"\n{persistence}\n",
        dir.join("data").display()
    )
}

impl Proc {
    /// Starts `nexus run` with `text` as its config (written into `dir`), without waiting.
    fn spawn(dir: &Path, text: &str, port: u16) -> Proc {
        let mut child = nexus::run_with_config(&dir.join("nexus.toml"), text).spawn().expect("the nexus binary starts");
        let output = Arc::new(Mutex::new(String::new()));
        for pipe in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let into = output.clone();
            std::thread::spawn(move || {
                let mut pipe = pipe;
                let mut buf = [0u8; 8192];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    into.lock().expect("output lock").push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
        Proc { child, port, output }
    }

    /// Starts a server with `persistence` keys on `executor` and waits until it answers PING.
    fn start(dir: &Path, executor: &str, persistence: &str) -> Proc {
        let port = nexus::free_port();
        let p = Proc::spawn(dir, &config(executor, port, dir, persistence), port);
        let deadline = Instant::now() + START;
        while !p.answers_ping() {
            assert!(Instant::now() < deadline, "no PONG within {START:?}\n{}", p.output());
            std::thread::sleep(Duration::from_millis(50));
        }
        p
    }

    fn answers_ping(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else { return false };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let mut reply = [0u8; 16];
        s.write_all(b"*1\r\n$4\r\nPING\r\n").is_ok()
            && s.read(&mut reply).is_ok_and(|n| reply[..n].starts_with(b"+PONG"))
    }

    fn output(&self) -> String {
        self.output.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn conn(&self) -> RawConn {
        RawConn::connect(self.port)
    }

    /// SIGTERM, then waits for the exit.
    fn stop(mut self) -> String {
        // SAFETY: `kill` takes a pid and a signal number by value and touches no memory of ours.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.wait();
        self.output()
    }

    /// SIGKILL: no chance to flush anything.
    fn crash(mut self) {
        self.child.kill().expect("SIGKILL the server");
        self.child.wait().expect("reap the server");
    }

    /// Waits for the process to exit by itself; its exit code and output.
    fn wait_exit(mut self) -> (Option<i32>, String) {
        let deadline = Instant::now() + START;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(100));
                return (status.code(), self.output());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return (None, self.output());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn text(r: &Reply) -> String {
    r.text().unwrap_or_else(|| format!("{r:?}"))
}

fn restart_keeps_keys_deadlines_and_hashes(executor: &str) {
    let dir = nexus::scratch_dir();
    let server = Proc::start(&dir, executor, "fsync = \"everysec\"");
    let mut c = server.conn();
    for i in 0..200 {
        assert_eq!(text(&c.call(&["SET", &format!("k{i}"), &format!("v{i}")])), "OK");
    }
    c.call(&["SET", "ttl", "t", "EX", "300"]);
    c.call(&["SET", "short", "s", "PX", "1"]);
    c.call(&["HSET", "h", "f", "1", "g", "2"]);
    c.call(&["HDEL", "h", "f"]);
    c.call(&["INCRBY", "n", "40"]);
    c.call(&["INCR", "n"]);
    c.call(&["APPEND", "k0", "-x"]);
    c.call(&["DEL", "k1", "k2"]);
    c.call(&["RENAME", "k3", "renamed"]);
    c.call(&["EXPIRE", "k4", "1000"]);
    c.call(&["PERSIST", "k4"]);
    drop(c);
    let out = server.stop();
    assert!(out.contains("recovered 0 keys from 0 logs"), "{out}");

    let server = Proc::start(&dir, executor, "fsync = \"everysec\"");
    let out = server.output();
    assert!(out.contains("recovered 201 keys from 2 logs in"), "the recovery line:\n{out}");
    let mut c = server.conn();
    assert_eq!(text(&c.call(&["GET", "k0"])), "v0-x");
    assert_eq!(c.call(&["EXISTS", "k1", "k2", "k3", "short"]), Reply::Int(0));
    assert_eq!(text(&c.call(&["GET", "renamed"])), "v3");
    assert_eq!(text(&c.call(&["GET", "k199"])), "v199");
    assert_eq!(text(&c.call(&["GET", "n"])), "41");
    assert_eq!(c.call(&["TTL", "k4"]), Reply::Int(-1));
    match c.call(&["TTL", "ttl"]) {
        Reply::Int(s) => assert!((290..=300).contains(&s), "{s} s left"),
        other => panic!("TTL: {other:?}"),
    }
    assert_eq!(c.call(&["HGETALL", "h"]), Reply::Array(vec![resp::bulk("g"), resp::bulk("2")]));
    assert_eq!(c.call(&["DBSIZE"]), Reply::Int(201));
    server.stop();
}

#[test]
fn restart_keeps_keys_deadlines_and_hashes_on_glommio() {
    restart_keeps_keys_deadlines_and_hashes("glommio");
}

#[test]
fn restart_keeps_keys_deadlines_and_hashes_on_threads() {
    restart_keeps_keys_deadlines_and_hashes("threads");
}

/// Keys (by index) with the instant their OK came back.
type Acked = Vec<(u64, Instant)>;

/// Drives 16-command SET pipelines until the connection breaks; every acknowledged key with the
/// time its OK came back.
fn load_until_killed(port: u16) -> Acked {
    let mut c = RawConn::connect(port);
    let mut acked = Vec::new();
    let mut next = 0u64;
    loop {
        let mut batch = Vec::new();
        for i in next..next + 16 {
            batch.extend_from_slice(&encode_str(&["SET", &format!("k{i}"), &format!("v{i}")]));
        }
        if c.stream().write_all(&batch).is_err() {
            return acked;
        }
        for i in next..next + 16 {
            match c.try_read() {
                Ok(Reply::Simple(s)) if s == "OK" => acked.push((i, Instant::now())),
                Ok(other) => panic!("SET k{i}: {other:?}"),
                Err(_) => return acked,
            }
        }
        next += 16;
    }
}

/// Runs the load, kills the server with SIGKILL after `run`, restarts it; the acknowledged
/// keys, the kill's instant and the keys (of those) missing after the restart.
fn crash_under_load(executor: &str, fsync: &str, run: Duration) -> (Acked, Instant, Acked) {
    let dir = nexus::scratch_dir();
    let persistence = format!("fsync = \"{fsync}\"");
    let server = Proc::start(&dir, executor, &persistence);
    let port = server.port;
    let load = std::thread::spawn(move || load_until_killed(port));
    std::thread::sleep(run);
    let killed = Instant::now();
    server.crash();
    let acked = load.join().expect("the load thread");
    assert!(acked.len() > 1000, "the load ran: {} keys acknowledged", acked.len());
    let server = Proc::start(&dir, executor, &persistence);
    let mut c = server.conn();
    let mut missing = Vec::new();
    for chunk in acked.chunks(500) {
        let mut args = vec!["MGET".to_owned()];
        args.extend(chunk.iter().map(|(i, _)| format!("k{i}")));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let Reply::Array(values) = c.call(&args) else { panic!("MGET answered no array") };
        for ((i, at), v) in chunk.iter().zip(values) {
            match v {
                Reply::Bulk(b) => assert_eq!(b, format!("v{i}").into_bytes()),
                _ => missing.push((*i, *at)),
            }
        }
    }
    server.stop();
    eprintln!(
        "{executor}, fsync = {fsync}: {} keys acknowledged before the kill, {} of them lost",
        acked.len(),
        missing.len()
    );
    (acked, killed, missing)
}

#[test]
fn a_crash_loses_no_acknowledged_write_under_fsync_always() {
    no_acknowledged_write_lost_under_fsync_always("glommio");
}

#[test]
fn a_crash_loses_no_acknowledged_write_under_fsync_always_on_threads() {
    no_acknowledged_write_lost_under_fsync_always("threads");
}

fn no_acknowledged_write_lost_under_fsync_always(executor: &str) {
    let (acked, _, missing) = crash_under_load(executor, "always", Duration::from_millis(2500));
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged keys lost, first {:?}",
        missing.len(),
        acked.len(),
        missing[0].0
    );
}

#[test]
fn a_crash_loses_only_the_last_second_under_fsync_everysec() {
    let (acked, killed, missing) = crash_under_load("glommio", "everysec", Duration::from_millis(3500));
    // The writer syncs once a second: what it had not synced was acknowledged in the last
    // second or so (slack for a loaded machine).
    let window = Duration::from_millis(2500);
    let old: Vec<_> = missing.iter().filter(|(_, at)| killed.duration_since(*at) > window).collect();
    assert!(
        old.is_empty(),
        "{} keys acknowledged more than {window:?} before the kill were lost (of {} missing, {} acknowledged)",
        old.len(),
        missing.len(),
        acked.len()
    );
}

/// The log files of a stopped server's directory.
fn logs(dir: &Path) -> Vec<PathBuf> {
    (0..2).map(|i| dir.join("data").join(format!("shard-{i}.aof"))).collect()
}

/// The bytes of the log at `path` up to its last record (without the zeros written ahead).
fn records_len(path: &Path) -> u64 {
    let data = std::fs::read(path).unwrap_or_default();
    data.iter().rposition(|&b| b != 0).map_or(0, |last| last as u64 + 1)
}

#[test]
fn a_torn_tail_is_truncated_and_reported_and_corruption_refused() {
    let dir = nexus::scratch_dir();
    let server = Proc::start(&dir, "glommio", "fsync = \"always\"");
    let mut c = server.conn();
    for i in 0..100 {
        c.call(&["SET", &format!("k{i}"), "v"]);
    }
    drop(c);
    server.stop();
    let log = logs(&dir).into_iter().max_by_key(|p| std::fs::metadata(p).map_or(0, |m| m.len())).unwrap();
    let good = std::fs::read(&log).unwrap();
    // Half of a record after the last whole one: what a crash mid-write leaves.
    let mut torn = good.clone();
    torn.extend_from_slice(&[40, 0, 0, 0, 1, 2, 3, 4, 1, 0, 0]);
    std::fs::write(&log, &torn).unwrap();
    let server = Proc::start(&dir, "glommio", "fsync = \"always\"");
    let out = server.output();
    assert!(out.contains("torn tail of 11 bytes"), "{out}");
    assert_eq!(server.conn().call(&["DBSIZE"]), Reply::Int(100));
    server.stop();
    assert_eq!(std::fs::read(&log).unwrap(), good, "the torn tail was cut off the file");

    let mut corrupt = good.clone();
    let mid = corrupt.len() / 2;
    corrupt[mid] ^= 0x55;
    std::fs::write(&log, &corrupt).unwrap();
    let port = nexus::free_port();
    let (code, out) = Proc::spawn(&dir, &config("glommio", port, &dir, ""), port).wait_exit();
    assert!(code.is_some_and(|c| c != 0), "a corrupt log must stop the start: {code:?}\n{out}");
    assert!(out.contains("is corrupt at offset") && out.contains("refusing to start") && out.contains("hint"), "{out}");
}

#[test]
fn bad_settings_and_another_shard_count_are_refused_with_one_line() {
    let dir = nexus::scratch_dir();
    let port = nexus::free_port();
    let bad = config("glommio", port, &dir, "").replace("mode = \"aof\"", "mode = \"sometimes\"");
    let (code, out) = Proc::spawn(&dir, &bad, port).wait_exit();
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("persistence.mode") && out.contains("\"aof\""), "{out}");
    let bad = config("glommio", port, &dir, "fsync = \"sometimes\"");
    let (_, out) = Proc::spawn(&dir, &bad, port).wait_exit();
    assert!(out.contains("persistence.fsync") && out.contains("\"everysec\""), "{out}");

    let server = Proc::start(&dir, "glommio", "");
    server.stop();
    let port = nexus::free_port();
    let three = config("glommio", port, &dir, "").replace("shards = 2", "shards = 3");
    let (code, out) = Proc::spawn(&dir, &three, port).wait_exit();
    assert!(code.is_some_and(|c| c != 0), "{out}");
    assert!(out.contains("holds the logs of 2 shards but this server runs 3"), "{out}");
}

#[test]
fn a_log_past_its_threshold_is_compacted_and_replays_the_same() {
    compacted_and_replays_the_same("glommio", "no");
}

/// A threads shard under `always` writes, syncs and compacts its log on its own thread.
#[test]
fn a_log_past_its_threshold_is_compacted_and_replays_the_same_on_threads_under_always() {
    compacted_and_replays_the_same("threads", "always");
}

/// A threads shard under `everysec` hands its log to a writer thread, which compacts it.
#[test]
fn a_log_past_its_threshold_is_compacted_and_replays_the_same_on_threads_under_everysec() {
    compacted_and_replays_the_same("threads", "everysec");
}

fn compacted_and_replays_the_same(executor: &str, fsync: &str) {
    let dir = nexus::scratch_dir();
    let persistence = format!("fsync = \"{fsync}\"\nrewrite_min_size = 1048576");
    let server = Proc::start(&dir, executor, &persistence);
    let mut c = server.conn();
    let value = "x".repeat(100);
    let mut written = 0u64;
    for round in 0..8 {
        let mut batch = Vec::new();
        for i in 0..4000 {
            batch.extend_from_slice(&encode_str(&["SET", &format!("k{i}"), &format!("{round}{value}")]));
        }
        written += batch.len() as u64;
        c.send(&batch);
        for _ in 0..4000 {
            assert_eq!(text(&c.read()), "OK");
        }
    }
    // Let the shards finish their dumps and the writers their renames.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !server.output().contains("rewritten") {
        assert!(Instant::now() < deadline, "no log was compacted:\n{}", server.output());
        std::thread::sleep(Duration::from_millis(50));
    }
    c.call(&["SET", "after", "compaction"]);
    drop(c);
    let server_out = server.stop();
    // Up to each log's last record: a threads writer leaves the zeros it wrote ahead (whole
    // 1 MiB chunks), which would make the sum depend on where the last compaction fell.
    let records: Vec<u64> = logs(&dir).iter().map(|p| records_len(p)).collect();
    let on_disk: u64 = records.iter().sum();
    assert!(
        on_disk < written / 2,
        "compacted logs: {on_disk} bytes of records for {written} bytes of SETs: {records:?}\n{server_out}"
    );
    let server = Proc::start(&dir, executor, &persistence);
    let mut c = server.conn();
    assert_eq!(c.call(&["DBSIZE"]), Reply::Int(4001));
    assert_eq!(text(&c.call(&["GET", "k3999"])), format!("7{value}"));
    assert_eq!(text(&c.call(&["GET", "after"])), "compaction");
    server.stop();
}

/// The value of `field` in an INFO text; panics when it is missing.
fn info_field(info: &str, field: &str) -> String {
    client::info_field(info, field).unwrap_or_else(|| panic!("no {field} in INFO:\n{info}")).to_owned()
}

#[test]
fn info_reports_the_logs_and_bgrewriteaof_compacts_them() {
    let dir = nexus::scratch_dir();
    let server = Proc::start(&dir, "glommio", "fsync = \"no\"");
    let mut c = server.conn();
    for round in 0..2 {
        for i in 0..300 {
            assert_eq!(text(&c.call(&["SET", &format!("k{i}"), &format!("v{round}-{i}")])), "OK");
        }
    }
    let info = text(&c.call(&["INFO", "persistence"]));
    assert_eq!(info_field(&info, "loading"), "0");
    assert_eq!(info_field(&info, "aof_enabled"), "1");
    assert_eq!(info_field(&info, "aof_rewrites"), "0");
    assert_eq!(info_field(&info, "aof_last_write_status"), "ok");
    assert_eq!(info_field(&info, "aof_fsync"), "no");
    let before: u64 = info_field(&info, "aof_current_size").parse().expect("a size");
    assert!(before > 600 * 10, "{info}");

    assert_eq!(c.call(&["BGREWRITEAOF"]), Reply::Simple("Background append only file rewriting started".into()));
    // Both shards compact: the rewrites count reaches 2 and none is in progress.
    let deadline = Instant::now() + Duration::from_secs(20);
    let info = loop {
        let info = text(&c.call(&["INFO", "persistence"]));
        if info_field(&info, "aof_rewrites") == "2" && info_field(&info, "aof_rewrite_in_progress") == "0" {
            break info;
        }
        assert!(Instant::now() < deadline, "no compaction finished:\n{info}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let after: u64 = info_field(&info, "aof_current_size").parse().expect("a size");
    assert!(after < before * 2 / 3, "{before} bytes before, {after} after:\n{info}");
    assert_eq!(info_field(&info, "aof_base_size"), after.to_string());
    drop(c);
    server.stop();
    let on_disk: u64 = logs(&dir).iter().map(|p| std::fs::metadata(p).map_or(0, |m| m.len())).sum();
    assert_eq!(on_disk, after, "the logs on disk against INFO's aof_current_size");

    let server = Proc::start(&dir, "glommio", "fsync = \"no\"");
    let mut c = server.conn();
    assert_eq!(c.call(&["DBSIZE"]), Reply::Int(300));
    assert_eq!(text(&c.call(&["GET", "k299"])), "v1-299");
    server.stop();
}

#[test]
fn without_a_log_info_says_so_and_bgrewriteaof_is_refused() {
    let dir = nexus::scratch_dir();
    let port = nexus::free_port();
    let off = config("threads", port, &dir, "").replace("mode = \"aof\"", "mode = \"off\"");
    let server = Proc::spawn(&dir, &off, port);
    let deadline = Instant::now() + START;
    while !server.answers_ping() {
        assert!(Instant::now() < deadline, "no PONG within {START:?}\n{}", server.output());
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut c = server.conn();
    let info = text(&c.call(&["INFO", "persistence"]));
    assert_eq!(info_field(&info, "aof_enabled"), "0");
    assert_eq!(info_field(&info, "aof_rewrite_in_progress"), "0");
    assert!(!info.contains("aof_current_size"), "{info}");
    assert_eq!(
        c.call(&["BGREWRITEAOF"]),
        Reply::Error("ERR Background append only file rewriting is not enabled".into())
    );
    server.stop();
}
