//! Server tests of the defects an independent attack found (issue 19): output that must stay
//! bounded while replies are produced, a large reply to a reader that reads, replies owed before
//! a fatal protocol error, unauthenticated requests, the unknown-command echo, RESET, SELECT and
//! CONFIG GET, and the query buffer limit. A child module of `tests/server.rs`; each test starts
//! its own server and talks raw RESP where the bytes matter.

use super::client::{http_get, info_u64, q, q_err, small_receive_buffer, wait_until, SETTLE};
use super::nexus::Server;
use super::resp::{bulk, encode, encode_str, RawConn, Reply};
use std::time::Duration;

/// The peak resident set (`VmHWM`, KiB) of process `pid`.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/<pid>/status");
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("a VmHWM line");
    line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("VmHWM in kB")
}

#[test]
fn the_output_limit_bounds_memory_while_replies_are_produced() {
    let limit = 1024 * 1024;
    let server = Server::builder().limit("client_output_limit", limit).start();
    let mut con = server.connect();
    let value = "v".repeat(4 * 1024 * 1024);
    assert_eq!(q::<String>(&mut con, &["SET", "big", &value]), "OK");
    let before = peak_rss_kib(server.pid());

    // 200 GETs of 4 MiB (800 MiB of replies) from a client that never reads.
    let mut hog = RawConn::connect(server.port);
    small_receive_buffer(hog.stream());
    let bytes: Vec<u8> = (0..200).flat_map(|_| encode_str(&["GET", "big"])).collect();
    hog.send(&bytes);
    let mut other = RawConn::connect(server.port);
    for _ in 0..20 {
        assert_eq!(other.call(&["PING"]), Reply::Simple("PONG".into()), "another client is served meanwhile");
    }
    wait_until(Duration::from_secs(30), "the reader that never reads is closed", || {
        info_u64(&mut con, "slow_clients_disconnected") >= 1
    });
    let grown_mib = peak_rss_kib(server.pid()).saturating_sub(before) / 1024;
    assert!(grown_mib < 200, "the peak RSS grew by {grown_mib} MiB for a 1 MiB output limit");
    assert_eq!(other.call(&["PING"]), Reply::Simple("PONG".into()));
}

#[test]
fn a_large_reply_to_a_reader_that_reads_is_written_whole() {
    let limit = 1024 * 1024;
    let server = Server::builder().limit("client_output_limit", limit).start();
    let mut con = server.connect();
    let value = "w".repeat(768 * 1024);
    for key in ["a", "b", "c"] {
        assert_eq!(q::<String>(&mut con, &["SET", key, &value]), "OK");
    }
    let mut raw = RawConn::connect(server.port);
    let reply = raw.call(&["MGET", "a", "b", "c"]);
    assert_eq!(reply, Reply::Array(vec![bulk(&value), bulk(&value), bulk(&value)]), "2.25 MiB in one reply");
    assert_eq!(raw.call(&["PING"]), Reply::Simple("PONG".into()), "the connection stays open");
    assert_eq!(info_u64(&mut con, "slow_clients_disconnected"), 0, "a reader that reads is not slow");
}

#[test]
fn a_fatal_protocol_error_flushes_the_replies_owed_first() {
    let server = Server::start();
    let mut con = server.connect();
    let mut raw = RawConn::connect(server.port);
    let mut bytes = encode_str(&["SET", "owed", "1"]);
    bytes.extend(encode_str(&["INCR", "owed"]));
    bytes.extend_from_slice(b"*1\r\n+garbage\r\n");
    raw.send(&bytes);
    assert_eq!(raw.read(), Reply::Simple("OK".into()), "the SET's reply");
    assert_eq!(raw.read(), Reply::Int(2), "the INCR's reply");
    assert_eq!(raw.read(), Reply::Error("ERR Protocol error: expected '$', got '+'".into()));
    assert!(raw.closed_within(SETTLE), "then the connection closes");
    assert_eq!(q::<i64>(&mut con, &["GET", "owed"]), 2);
}

#[test]
fn unauthenticated_clients_cannot_send_large_requests() {
    let server = Server::builder().requirepass("sesame").start();
    let mut raw = RawConn::connect(server.port);
    raw.send(b"*11\r\n");
    assert_eq!(raw.read(), Reply::Error("ERR Protocol error: unauthenticated multibulk length".into()));
    assert!(raw.closed_within(SETTLE), "the unauthenticated multibulk closes the connection");

    let mut raw = RawConn::connect(server.port);
    raw.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$16385\r\n");
    assert_eq!(raw.read(), Reply::Error("ERR Protocol error: unauthenticated bulk length".into()));
    assert!(raw.closed_within(SETTLE), "the unauthenticated bulk closes the connection");

    let mut raw = RawConn::connect(server.port);
    let fits = "f".repeat(16384);
    assert!(raw.call(&["GET", &fits]).is_error(), "16384 bytes are accepted (and refused by NOAUTH)");
    assert_eq!(raw.call(&["AUTH", "sesame"]), Reply::Simple("OK".into()));
    let large = "l".repeat(100_000);
    let many: Vec<&str> = ["MSET", "a", "1", "b", "2", "c", "3", "d", "4", "e", "5", "big", &large].to_vec();
    assert_eq!(raw.call(&many), Reply::Simple("OK".into()), "after AUTH the limits are the usual ones");
}

#[test]
fn unknown_command_errors_cut_the_echo_as_redis_does() {
    let server = Server::start();
    let mut raw = RawConn::connect(server.port);
    let long = "a".repeat(1024 * 1024);
    let reply = raw.call(&["NOSUCH", &long, &long, &long]);
    let expected = format!("ERR unknown command 'NOSUCH', with args beginning with: '{}' ", "a".repeat(128));
    assert_eq!(reply, Reply::Error(expected), "each argument and the whole echo stop at 128 bytes");
    let reply = raw.call(&["NOSUCH", &"x".repeat(100), "yy", &"z".repeat(50), "never"]);
    let expected = format!(
        "ERR unknown command 'NOSUCH', with args beginning with: '{}' 'yy' '{}' ",
        "x".repeat(100),
        "z".repeat(128 - 103 - 5)
    );
    assert_eq!(reply, Reply::Error(expected), "later arguments get what is left of the 128 bytes");
    let name = "N".repeat(300);
    let expected = format!("ERR unknown command '{}', with args beginning with: ", "N".repeat(128));
    assert_eq!(raw.call(&[&name]), Reply::Error(expected), "the name stops at 128 bytes");
}

#[test]
fn reset_unsubscribes_and_logs_out() {
    let server = Server::builder().requirepass("sesame").start();
    let mut publisher = RawConn::connect(server.port);
    assert_eq!(publisher.call(&["AUTH", "sesame"]), Reply::Simple("OK".into()));
    let mut raw = RawConn::connect(server.port);
    assert_eq!(raw.call(&["AUTH", "sesame"]), Reply::Simple("OK".into()));
    assert!(matches!(raw.call(&["SUBSCRIBE", "news"]), Reply::Array(_)));
    assert_eq!(publisher.call(&["PUBLISH", "news", "one"]), Reply::Int(1));
    assert!(matches!(raw.read(), Reply::Array(_)), "the message");
    assert_eq!(raw.call(&["RESET"]), Reply::Simple("RESET".into()));
    assert_eq!(publisher.call(&["PUBLISH", "news", "two"]), Reply::Int(0), "RESET dropped the subscription");
    assert_eq!(raw.call(&["GET", "k"]), Reply::Error("NOAUTH Authentication required.".into()), "and logged out");
    assert_eq!(raw.call(&["AUTH", "sesame"]), Reply::Simple("OK".into()));
    assert_eq!(raw.call(&["PING"]), Reply::Simple("PONG".into()), "out of the pub/sub context");
}

#[test]
fn select_and_config_get_answer_as_redis_does() {
    let server = Server::builder().requirepass("sesame").limit("max_clients", 77).start();
    let mut raw = RawConn::connect(server.port);
    assert_eq!(raw.call(&["AUTH", "sesame"]), Reply::Simple("OK".into()));
    assert_eq!(raw.call(&["SELECT", "0"]), Reply::Simple("OK".into()));
    for n in ["1", "-1", "16"] {
        assert_eq!(raw.call(&["SELECT", n]), Reply::Error("ERR DB index is out of range".into()), "SELECT {n}");
    }
    let not_int = Reply::Error("ERR value is not an integer or out of range".into());
    assert_eq!(raw.call(&["SELECT", "x"]), not_int);
    let pairs = |items: &[&str]| Reply::Array(items.iter().map(|s| bulk(s)).collect());
    assert_eq!(raw.call(&["CONFIG", "GET", "maxclients"]), pairs(&["maxclients", "77"]));
    assert_eq!(raw.call(&["CONFIG", "GET", "PORT"]), pairs(&["port", &server.port.to_string()]));
    assert_eq!(raw.call(&["CONFIG", "GET", "bind"]), pairs(&["bind", "127.0.0.1"]));
    assert_eq!(raw.call(&["CONFIG", "GET", "requirepass"]), pairs(&["requirepass", "sesame"]));
    assert_eq!(raw.call(&["CONFIG", "GET", "databases"]), pairs(&["databases", "1"]));
    assert_eq!(raw.call(&["CONFIG", "GET", "nosuch*"]), pairs(&[]));
    let Reply::Array(items) = raw.call(&["CONFIG", "GET", "*"]) else { panic!("CONFIG GET * is an array") };
    assert!(items.len() >= 12 && items.len() % 2 == 0, "{items:?}");
    assert!(items.contains(&bulk("timeout")) && items.contains(&bulk("client-query-buffer-limit")), "{items:?}");
    let Reply::Array(items) = raw.call(&["CONFIG", "GET", "max*", "port"]) else { panic!("an array") };
    assert!(items.contains(&bulk("maxclients")) && items.contains(&bulk("port")), "{items:?}");
    assert!(raw.call(&["CONFIG", "SET", "maxclients", "5"]).is_error(), "CONFIG SET stays refused");
    assert!(matches!(raw.call(&["HELLO", "3"]), Reply::Map(_)));
    assert!(matches!(raw.call(&["CONFIG", "GET", "port"]), Reply::Map(_)), "RESP3: a map");
}

#[test]
fn a_client_over_the_query_buffer_limit_is_closed_and_counted() {
    let server = Server::builder().limit("client_query_buffer_limit", 1024 * 1024).start();
    let mut con = server.connect();
    let mut raw = RawConn::connect(server.port);
    let piece = vec![b'q'; 64 * 1024];
    let mut request = b"*100\r\n$4\r\nMSET\r\n".to_vec();
    for _ in 0..24 {
        let one = encode(&[&piece]);
        // `encode` makes `*1\r\n$65536\r\n...\r\n`; keep the bulk, drop the array header.
        request.extend_from_slice(&one[4..]);
    }
    let _ = raw.stream().set_write_timeout(Some(SETTLE));
    use std::io::Write;
    let _ = raw.stream().write_all(&request);
    assert!(raw.closed_within(SETTLE), "a client past client_query_buffer_limit is closed");
    let (_, _, metrics) = http_get(server.metrics_port, "/metrics");
    let closed: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("nexus_server_client_query_buffer_limit_disconnections_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(closed, 1.0, "counted once:\n{metrics}");
    let info: String = q(&mut con, &["INFO", "clients"]);
    assert!(info.contains("client_query_buffer_limit_disconnections:1\r\n"), "INFO counts it:\n{info}");
    let fits = "s".repeat(512 * 1024);
    assert_eq!(q::<String>(&mut con, &["SET", "k", &fits]), "OK", "a request under the limit is served");
    assert!(q_err(&mut con, &["CONFIG", "SET", "client-query-buffer-limit", "1"]).starts_with("ERR"));
}

#[test]
fn a_pipeline_deeper_than_the_outstanding_cap_is_answered_in_order() {
    let server = Server::start();
    let mut raw = RawConn::connect(server.port);
    // 20,000 inline INCRs: a read of them holds more than the 4,096 answers a connection
    // keeps outstanding, so dispatch pauses with whole requests still in the input.
    let requests = 20_000;
    let bytes = b"INCR deep\r\n".repeat(requests);
    let writer = raw.stream().try_clone().expect("clone the socket");
    let sender = std::thread::spawn(move || {
        use std::io::Write;
        let mut writer = writer;
        writer.write_all(&bytes).expect("send the pipeline");
    });
    for n in 1..=requests as i64 {
        assert_eq!(raw.read(), Reply::Int(n), "reply {n}, in order");
    }
    sender.join().expect("the sender");
    assert_eq!(raw.call(&["PING"]), Reply::Simple("PONG".into()));
}

#[test]
fn the_output_buffer_of_a_reader_that_keeps_up_stays_bounded() {
    let limit = 1024 * 1024;
    let server = Server::builder().limit("client_output_limit", limit).start();
    let mut con = server.connect();
    let value = "r".repeat(1024 * 1024);
    assert_eq!(q::<String>(&mut con, &["SET", "big", &value]), "OK");
    let before = peak_rss_kib(server.pid());
    // 100 MiB of replies to a reader that reads them all: never slow, and the output buffer
    // holds what waits, not what was read (it may never empty while replies keep coming).
    let mut reader = RawConn::connect(server.port);
    let requests = 100;
    let bytes: Vec<u8> = (0..requests).flat_map(|_| encode_str(&["GET", "big"])).collect();
    reader.send(&bytes);
    for i in 0..requests {
        assert_eq!(reader.read(), bulk(&value), "reply {i}");
    }
    let grown_mib = peak_rss_kib(server.pid()).saturating_sub(before) / 1024;
    assert!(grown_mib < 100, "the peak RSS grew by {grown_mib} MiB for a 1 MiB output limit");
    assert_eq!(info_u64(&mut con, "slow_clients_disconnected"), 0, "a reader that reads is not slow");
}
