//! The memory an idle client costs the server: RSS growth of `nexus run` per connection that
//! sent one request and then stays idle. A child module of `tests/server.rs` (so it runs on
//! both executors).
//!
//! The bound is generous (a connection costs about 1 to 3 KiB at the time of writing: its task,
//! its slot in the front and the executor's socket state; the read and output buffers are
//! borrowed from the shard only while in use): it catches a per-connection buffer coming back,
//! not a few hundred bytes.

use super::nexus::Server;
use super::resp::{RawConn, Reply};
use std::time::Duration;

/// Idle clients opened (each one file descriptor here and one in the server).
const CLIENTS: usize = 2000;
/// RSS growth allowed per idle client.
const BOUND_PER_CLIENT: usize = 8 * 1024;

/// The resident set of process `pid`, in bytes.
fn rss(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the server's /proc status");
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .expect("a VmRSS line");
    kib * 1024
}

/// This process's soft limit on open files.
fn open_file_limit() -> u64 {
    let mut rlim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `getrlimit` writes one `rlimit` that we own and that outlives the call.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rlim) };
    assert_eq!(rc, 0, "getrlimit: {}", std::io::Error::last_os_error());
    rlim.rlim_cur
}

fn ping(raw: &mut RawConn) {
    assert_eq!(raw.call(&["PING"]), Reply::Simple("PONG".into()));
}

#[test]
fn an_idle_client_costs_a_few_kib() {
    let limit = open_file_limit();
    if limit < (CLIENTS + 512) as u64 {
        eprintln!("note: the open-file limit ({limit}) is below {} here; skipping", CLIENTS + 512);
        return;
    }
    let server = Server::builder().limit("max_clients", (CLIENTS + 100) as u64).start();
    // Warm the shards up (first buffers, tables) before the baseline.
    let mut warm: Vec<RawConn> = (0..20).map(|_| RawConn::connect(server.port)).collect();
    warm.iter_mut().for_each(ping);
    std::thread::sleep(Duration::from_millis(200));
    let before = rss(server.pid());
    let mut idle = Vec::with_capacity(CLIENTS);
    for _ in 0..CLIENTS {
        let mut raw = RawConn::connect(server.port);
        ping(&mut raw);
        idle.push(raw);
    }
    std::thread::sleep(Duration::from_millis(300));
    let after = rss(server.pid());
    let per_client = after.saturating_sub(before) / CLIENTS;
    eprintln!("{CLIENTS} idle clients: RSS {before} -> {after} bytes, {per_client} bytes per client");
    assert!(
        per_client < BOUND_PER_CLIENT,
        "an idle client costs {per_client} bytes of RSS (bound {BOUND_PER_CLIENT}); {CLIENTS} cost {} bytes",
        after.saturating_sub(before)
    );
    ping(&mut idle[CLIENTS - 1]);
}
