//! Operational defects of `nexus run`'s server (issue 19, items 4 and 5), end to end.
//!
//! - a second `nexus run` on an address one already serves must fail to start, with one line
//!   naming the address and a hint, while the first keeps serving; a server that stopped with
//!   clients connected leaves their ends in `TIME_WAIT`, and a new one still starts there;
//! - with a low open-file limit the server lowers `max_clients` to fit (one warning line),
//!   turns the excess away with an error, keeps serving, and does not flood its log;
//! - a silent client of the metrics endpoint does not hold up `/health`, and `/metrics` asks
//!   for the password when `requirepass` is set.
//!
//! Each test starts its own server through the fixture in `support/nexus.rs`.

/// The executor every server of this suite runs on.
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

use client::http_get;
use nexus::Server;
use resp::{RawConn, Reply};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

/// How long a second server may take to give up.
const GIVE_UP: Duration = Duration::from_secs(20);

/// Runs `nexus run` with `config` (TOML text) until it exits or [`GIVE_UP`] passes (then kills
/// it); returns its exit status (`None`: it was still running) and its stdout and stderr.
fn run_briefly(config: &str) -> (Option<ExitStatus>, String, String) {
    let dir = nexus::scratch_dir();
    let mut child = nexus::run_with_config(&dir.join("second.toml"), config).spawn().expect("the nexus binary starts");
    let deadline = Instant::now() + GIVE_UP;
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut out = String::new();
    let mut err = String::new();
    let _ = child.stdout.take().expect("piped stdout").read_to_string(&mut out);
    let _ = child.stderr.take().expect("piped stderr").read_to_string(&mut err);
    let _ = std::fs::remove_dir_all(&dir);
    (status, out, err)
}

#[test]
fn a_second_server_on_the_same_address_fails_to_start() {
    let first = Server::start();
    let addr = format!("127.0.0.1:{}", first.port);
    let config = format!("{}[server]\nlisten = \"{addr}\"\nmetrics_listen = \"\"\n", nexus::base_config());
    let (status, out, err) = run_briefly(&config);
    let Some(status) = status else {
        panic!("the second server on {addr} was still running after {GIVE_UP:?}\n{out}\n{err}\n{}", first.output())
    };
    assert_eq!(status.code(), Some(1), "exit status as other start failures\n{out}\n{err}");
    let line = err.lines().find(|l| l.contains(&addr)).unwrap_or_else(|| panic!("no line names {addr}:\n{err}"));
    assert!(line.contains("hint:"), "one line with a hint: {line}");
    let mut raw = RawConn::connect(first.port);
    assert_eq!(raw.call(&["PING"]), Reply::Simple("PONG".into()), "the first server still serves");
}

/// A server stopped with clients connected closes their connections first, so their ends on
/// its port linger (`FIN_WAIT_2`, then `TIME_WAIT`, for a minute). A restart on the same port
/// must not be refused meanwhile, as redis-server is not: the listeners and the address check
/// bind with `SO_REUSEADDR`.
#[test]
fn a_server_restarts_on_its_address_while_its_closed_connections_linger() {
    let first = Server::start();
    let port = first.port;
    let mut clients: Vec<RawConn> = (0..4).map(|_| RawConn::connect(port)).collect();
    for client in &mut clients {
        assert_eq!(client.call(&["PING"]), Reply::Simple("PONG".into()));
    }
    let (status, output) = first.stop();
    assert!(status.success(), "the first server stops cleanly:\n{output}");
    drop(clients);
    let addr = format!("127.0.0.1:{port}");
    let dir = nexus::scratch_dir();
    let config = format!("{}[server]\nlisten = \"{addr}\"\nmetrics_listen = \"\"\n", nexus::base_config());
    let mut second = nexus::run_with_config(&dir.join("again.toml"), &config).spawn().expect("the nexus binary starts");
    let deadline = Instant::now() + GIVE_UP;
    let served = loop {
        if let Ok(mut conn) = RawConn::try_connect(port) {
            if conn.call(&["PING"]) == Reply::Simple("PONG".into()) {
                break true;
            }
        }
        if second.try_wait().ok().flatten().is_some() || Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = second.kill();
    let _ = second.wait();
    let mut err = String::new();
    let _ = second.stderr.take().expect("piped stderr").read_to_string(&mut err);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(served, "a new server on {addr} did not serve after the first stopped with clients:\n{err}");
}

/// The `max_clients` the server says it lowered to, from its warning line.
fn lowered_max_clients(output: &str) -> Option<u64> {
    let line = output.lines().find(|l| l.contains("max_clients") && l.contains("lowered"))?;
    let after = line.split("lowered to ").nth(1)?;
    after.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

#[test]
fn a_low_open_file_limit_lowers_max_clients_and_keeps_the_log_quiet() {
    let server = Server::builder().nofile(128, 128).start();
    let output = server.output();
    let effective = lowered_max_clients(&output).unwrap_or_else(|| panic!("no max_clients warning:\n{output}"));
    assert!(effective > 0 && effective < 128, "lowered to {effective}:\n{output}");
    assert!(output.contains("10000"), "the warning names the configured max_clients:\n{output}");
    let mut first = RawConn::connect(server.port);
    assert_eq!(first.call(&["PING"]), Reply::Simple("PONG".into()));
    let mut admitted = vec![first];
    let mut refused = 0;
    let mut others = Vec::new();
    for _ in 0..effective + 40 {
        let Ok(mut conn) = RawConn::try_connect(server.port) else {
            refused += 1;
            continue;
        };
        conn.send(b"*1\r\n$4\r\nPING\r\n");
        match conn.try_read() {
            Ok(Reply::Simple(s)) if s == "PONG" => admitted.push(conn),
            Ok(Reply::Error(e)) if e == "ERR max number of clients reached" => refused += 1,
            Ok(other) => others.push(format!("{other:?}")),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => refused += 1,
            Err(e) => others.push(e.to_string()),
        }
    }
    assert!(others.is_empty(), "every connection is answered or turned away cleanly: {others:?}\n{}", server.output());
    assert!(refused >= 40, "{refused} refused, {} admitted of max {effective}", admitted.len());
    assert_eq!(admitted[0].call(&["PING"]), Reply::Simple("PONG".into()), "an open connection is still served");
    let output = server.output();
    let accept_lines = output.lines().filter(|l| l.contains("accept failed")).count();
    assert!(accept_lines <= 10, "{accept_lines} accept-error lines:\n{output}");
}

#[test]
fn a_low_soft_open_file_limit_is_raised_toward_max_clients() {
    let server = Server::builder().limit("max_clients", 500).nofile(128, 1024).start();
    let output = server.output();
    let line = "raised the open-file limit from 128 to 548 for max_clients 500";
    assert!(output.contains(line), "no `{line}`:\n{output}");
    assert!(lowered_max_clients(&output).is_none(), "max_clients fits after the raise:\n{output}");
    let conns: Vec<RawConn> = (0..150).map(|_| RawConn::connect(server.port)).collect();
    for mut conn in conns {
        assert_eq!(conn.call(&["PING"]), Reply::Simple("PONG".into()), "more clients than the old soft limit");
    }
}

#[test]
fn a_silent_metrics_client_does_not_hold_up_health() {
    let server = Server::start();
    let mut silent = TcpStream::connect(("127.0.0.1", server.metrics_port)).expect("connect to the metrics port");
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    let (status, _, _) = http_get(server.metrics_port, "/health");
    assert_eq!(status, 200);
    assert!(started.elapsed() < Duration::from_millis(1000), "GET /health took {:?}", started.elapsed());
    let _ = silent.write_all(b"");
}

#[test]
fn silent_metrics_clients_past_the_cap_get_busy_and_time_out() {
    let server = Server::start();
    let silent: Vec<TcpStream> = (0..16)
        .map(|_| TcpStream::connect(("127.0.0.1", server.metrics_port)).expect("connect to the metrics port"))
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let (status, _, body) = http_get(server.metrics_port, "/health");
    assert_eq!((status, body.as_str()), (503, "busy; retry later\n"), "16 requests are served already");
    assert!(started.elapsed() < Duration::from_millis(1000), "answered at once: {:?}", started.elapsed());
    client::wait_until(Duration::from_secs(10), "the silent requests time out", || {
        http_get(server.metrics_port, "/health").0 == 200
    });
    drop(silent);
}

#[test]
fn a_metrics_client_that_drips_its_request_is_cut_off() {
    let server = Server::start();
    let mut drip = TcpStream::connect(("127.0.0.1", server.metrics_port)).expect("connect to the metrics port");
    drip.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let started = Instant::now();
    let mut cut_off = false;
    for byte in b"GET /health HTTP/1.1\r\nX-Slow: 0123456789abcdefghijklmnopqrstuvwxyz" {
        std::thread::sleep(Duration::from_millis(200));
        if drip.write_all(&[*byte]).is_err() {
            cut_off = true;
            break;
        }
        if started.elapsed() > Duration::from_secs(4) {
            break;
        }
    }
    if !cut_off {
        let mut buf = [0u8; 256];
        cut_off = match drip.read(&mut buf) {
            Ok(n) => n == 0,
            Err(e) => !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
        };
    }
    assert!(cut_off, "a byte every 200 ms still holds a request thread after {:?}", started.elapsed());
}

/// `GET path` with an `Authorization` header; returns the status.
fn get_with_auth(port: u16, path: &str, authorization: &str) -> u16 {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {authorization}\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

#[test]
fn metrics_asks_for_the_password_when_requirepass_is_set() {
    let server = Server::builder().requirepass("s3cret").start();
    let (status, head, _) = http_get(server.metrics_port, "/metrics");
    assert_eq!(status, 401, "no credentials: {head}");
    assert!(head.to_ascii_lowercase().contains("www-authenticate: basic"), "{head}");
    assert_eq!(get_with_auth(server.metrics_port, "/metrics", "Bearer nope"), 401);
    assert_eq!(get_with_auth(server.metrics_port, "/metrics", "Bearer s3cret"), 200);
    // "prometheus:s3cret" in base64: Basic with any user name.
    assert_eq!(get_with_auth(server.metrics_port, "/metrics", "Basic cHJvbWV0aGV1czpzM2NyZXQ="), 200);
    let (status, _, body) = http_get(server.metrics_port, "/health");
    assert_eq!((status, body.as_str()), (200, "ok\n"), "/health stays open and minimal");
    let open = Server::start();
    assert_eq!(http_get(open.metrics_port, "/metrics").0, 200, "no requirepass: no credentials needed");
}

#[test]
fn repeated_auth_failures_on_a_connection_are_slowed_down() {
    let server = Server::builder().requirepass("s3cret").start();
    let mut raw = RawConn::connect(server.port);
    let wrongpass = Reply::Error("WRONGPASS invalid username-password pair or user is disabled.".into());
    assert_eq!(raw.call(&["AUTH", "guess"]), wrongpass, "the first guess is checked");
    let Reply::Error(refused) = raw.call(&["AUTH", "s3cret"]) else { panic!("an attempt right after a failure") };
    assert!(refused.starts_with("ERR too many failed AUTH attempts"), "refused unchecked: {refused}");
    std::thread::sleep(Duration::from_millis(60));
    assert_eq!(raw.call(&["AUTH", "s3cret"]), Reply::Simple("OK".into()), "checked again after the delay");
    let mut other = RawConn::connect(server.port);
    assert_eq!(other.call(&["AUTH", "s3cret"]), Reply::Simple("OK".into()), "other connections are not held up");
}
