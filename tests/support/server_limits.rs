//! Server tests of limits and hostile clients: `max_bulk`, `max_args`, `max_clients`, the
//! client output limit, the idle timeout, malformed and random input, clients that vanish in
//! the middle of a pipeline, and SIGTERM under load. A child module of `tests/server.rs`; each
//! test starts its own server.

use super::client::{
    accounting_ok, info_field, info_u64, name_on_shard, q, reset_on_close, small_receive_buffer, wait_until, SETTLE,
};
use super::nexus::{self, Server, SHARDS};
use super::resp::{bulk, encode, encode_str, RawConn, Reply};
use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

// ----- limits --------------------------------------------------------------------------------

#[test]
fn max_bulk_and_max_args_are_enforced_without_harm() {
    let server = Server::builder().limit("max_bulk", 4096).limit("max_args", 8).start();
    let mut con = server.connect();
    let mut raw = RawConn::connect(server.port);
    let fits = "x".repeat(4096);
    assert_eq!(raw.call(&["SET", "k", &fits]), Reply::Simple("OK".into()), "a bulk of exactly max_bulk");
    assert_eq!(raw.call(&["GET", "k"]), bulk(&fits));
    let too_big = "y".repeat(4097);
    assert!(raw.call(&["SET", "k", &too_big]).is_error(), "a bulk over max_bulk is refused");
    assert_eq!(raw.call(&["PING"]), Reply::Simple("PONG".into()), "the stream resynchronises after the bulk");
    assert_eq!(raw.call(&["GET", "k"]), bulk(&fits), "the refused SET did nothing");
    let big = "z".repeat(100_000);
    assert!(raw.call(&["SET", "k", &big]).is_error(), "a bulk far over max_bulk is refused");
    assert_eq!(raw.call(&["PING"]), Reply::Simple("PONG".into()));

    let eight = ["MSET", "a", "1", "b", "2", "c", "3", "d"];
    assert!(raw.call(&eight).is_error(), "8 arguments are allowed: MSET's own arity error");
    assert_eq!(raw.call(&["PING"]), Reply::Simple("PONG".into()));
    let nine = ["MSET", "a", "1", "b", "2", "c", "3", "d", "4"];
    assert!(raw.call(&nine).is_error(), "an array over max_args is refused");
    assert_eq!(q::<i64>(&mut con, &["EXISTS", "a"]), 0, "the refused MSET did nothing");

    let mut raw = RawConn::connect(server.port);
    raw.send(b"*2000000000\r\n");
    assert!(raw.read().is_error(), "a huge array header is refused, not allocated");
    let mut raw = RawConn::connect(server.port);
    raw.send(b"*2\r\n$3\r\nGET\r\n$99999999999\r\n");
    assert!(raw.read().is_error(), "a huge bulk header is refused");
    assert_eq!(q::<String>(&mut con, &["PING"]), "PONG", "other connections are untouched");
    assert!(info_u64(&mut con, "protocol_errors") >= 2);
}

#[test]
fn max_clients_turns_away_the_extra_connection() {
    let server = Server::builder().limit("max_clients", 3).start();
    let mut clients: Vec<RawConn> = Vec::new();
    // The fixture's readiness probe may still hold a slot for a moment.
    wait_until(SETTLE, "three clients are admitted", || {
        let mut conn = RawConn::connect(server.port);
        if conn.call(&["PING"]) == Reply::Simple("PONG".into()) {
            clients.push(conn);
        }
        clients.len() == 3
    });
    let mut extra = RawConn::connect(server.port);
    assert_eq!(extra.read(), Reply::Error("ERR max number of clients reached".into()));
    assert!(extra.closed_within(SETTLE), "the extra connection is closed");
    assert_eq!(clients[0].call(&["PING"]), Reply::Simple("PONG".into()));
    let Reply::Bulk(info) = clients[0].call(&["INFO"]) else { panic!("INFO is a bulk string") };
    let info = String::from_utf8_lossy(&info).into_owned();
    assert_eq!(info_field(&info, "connected_clients"), Some("3"), "{info}");
    assert!(info_field(&info, "rejected_max_clients").is_some_and(|n| n.parse::<u64>().unwrap() >= 1), "{info}");

    drop(clients.pop());
    wait_until(SETTLE, "a freed slot admits a new client", || {
        let mut conn = RawConn::connect(server.port);
        conn.call(&["PING"]) == Reply::Simple("PONG".into())
    });
}

#[test]
fn a_slow_reader_is_disconnected_and_counted() {
    let limit = 256 * 1024;
    let server = Server::builder().limit("client_output_limit", limit).start();
    let mut con = server.connect();
    let value = "v".repeat(64 * 1024);
    assert_eq!(q::<String>(&mut con, &["SET", "big", &value]), "OK");

    let mut slow = RawConn::connect(server.port);
    small_receive_buffer(slow.stream());
    let requests = 2000;
    let bytes: Vec<u8> = (0..requests).flat_map(|_| encode_str(&["GET", "big"])).collect();
    slow.send(&bytes);
    wait_until(Duration::from_secs(15), "the slow reader is disconnected", || {
        info_u64(&mut con, "slow_clients_disconnected") >= 1
    });
    // The slow client finds its stream cut short: less than all the replies, then the end.
    let mut received = 0usize;
    let mut buf = vec![0u8; 256 * 1024];
    let deadline = Instant::now() + SETTLE;
    loop {
        match slow.stream().read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => received += n,
        }
        assert!(Instant::now() < deadline, "the slow reader's connection is still open");
    }
    assert!(received < requests * value.len(), "received {received} bytes: the replies were cut off");
    assert_eq!(info_u64(&mut con, "slow_clients_disconnected"), 1);
    assert_eq!(q::<String>(&mut con, &["GET", "big"]).len(), value.len(), "other clients carry on");
}

#[test]
fn idle_clients_are_closed_and_busy_ones_kept() {
    let server = Server::builder().limit("idle_timeout_s", 1).start();
    let mut idle = RawConn::connect(server.port);
    assert_eq!(idle.call(&["PING"]), Reply::Simple("PONG".into()));
    let mut subscriber = RawConn::connect(server.port);
    assert!(matches!(subscriber.call(&["SUBSCRIBE", "news"]), Reply::Array(_)));
    assert!(!idle.closed_within(Duration::from_millis(400)), "closed well before the idle timeout");
    let mut busy = server.connect();
    for _ in 0..10 {
        assert_eq!(q::<String>(&mut busy, &["PING"]), "PONG", "a busy client stays");
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(idle.closed_within(SETTLE), "an idle client is closed");
    assert_eq!(info_u64(&mut busy, "idle_clients_closed"), 1);
    // A subscriber sends nothing while it listens: it is not idle.
    assert_eq!(q::<i64>(&mut busy, &["PUBLISH", "news", "still here"]), 1, "the subscriber is still connected");
    match subscriber.read() {
        Reply::Array(parts) => assert_eq!(parts.last(), Some(&bulk("still here"))),
        other => panic!("expected the message, got {other:?}"),
    }
}

// ----- robustness ------------------------------------------------------------------------------

#[test]
fn malformed_resp_gets_an_error_and_a_close() {
    let server = Server::start();
    let mut bystander = server.connect();
    let cases: &[&[u8]] =
        &[b"*abc\r\n", b"*1\r\n$abc\r\n", b"*1\r\n+PING\r\n", b"*1\r\n$-7\r\n", b"*2\r\n:1\r\n:2\r\n", b"*-5\r\n"];
    for (i, case) in cases.iter().enumerate() {
        let mut raw = RawConn::connect(server.port);
        raw.send(case);
        match raw.try_read() {
            Ok(Reply::Error(e)) => assert!(e.starts_with("ERR"), "case {i} {case:?}: {e}"),
            other => panic!("case {i} {:?}: expected an error reply, got {other:?}", String::from_utf8_lossy(case)),
        }
        assert!(raw.closed_within(SETTLE), "case {i}: the unsynchronisable stream is closed");
        assert_eq!(q::<String>(&mut bystander, &["PING"]), "PONG", "case {i}: the bystander carries on");
    }
    assert!(info_u64(&mut bystander, "protocol_errors") >= cases.len() as u64);
}

#[test]
fn random_bytes_never_crash_the_server() {
    let server = Server::start();
    let mut bystander = server.connect();
    assert_eq!(q::<String>(&mut bystander, &["SET", "k", "v"]), "OK");
    let pieces: &[&[u8]] = &[
        b"*",
        b"$",
        b"+",
        b"-",
        b":",
        b"%",
        b"~",
        b">",
        b"_",
        b"#",
        b"\r\n",
        b"\r",
        b"\n",
        b"0",
        b"1",
        b"3",
        b"-1",
        b"99999999999999999999",
        b"GET",
        b"SET",
        b"AGENT.ASK",
        b"PING",
        b"k",
        b"\0",
        b"\xff\xfe",
        b" ",
        b"\"",
    ];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) as usize
    };
    for round in 0..60 {
        let mut bytes = Vec::new();
        for _ in 0..(1 + next() % 40) {
            bytes.extend_from_slice(pieces[next() % pieces.len()]);
        }
        let mut raw = RawConn::connect(server.port);
        raw.send(&bytes);
        raw.stream().shutdown(std::net::Shutdown::Write).unwrap();
        assert!(
            raw.closed_within(SETTLE),
            "round {round}: {:?} then EOF: the server closes",
            String::from_utf8_lossy(&bytes)
        );
    }
    assert_eq!(q::<String>(&mut bystander, &["GET", "k"]), "v", "the bystander and the data survive");
    assert_eq!(RawConn::connect(server.port).call(&["PING"]), Reply::Simple("PONG".into()));
}

#[test]
fn clients_that_vanish_mid_pipeline_disturb_nobody() {
    let server = Server::start();
    let mut observer = server.connect();
    let keys = [name_on_shard("mid-", 0), name_on_shard("mid-", 1)];
    let agent = name_on_shard("mid-echo-", 1);
    assert_eq!(q::<String>(&mut observer, &["AGENT.SPAWN", "echo", &agent]), "OK");
    let rounds = 6;
    for round in 0..rounds {
        let mut raw = RawConn::connect(server.port);
        let mut bytes = Vec::new();
        for i in 0..300 {
            bytes.extend(encode_str(&["INCR", &keys[i % 2]]));
            if i % 10 == 0 {
                bytes.extend(encode_str(&["AGENT.ASK", &agent, "in flight"]));
                bytes.extend(encode_str(&["MGET", &keys[0], &keys[1]]));
            }
        }
        let half = encode(&[b"SET", b"half", &[b'h'; 1000]]);
        bytes.extend_from_slice(&half[..half.len() / 2]);
        raw.send(&bytes);
        if round % 2 == 1 {
            assert!(matches!(raw.read(), Reply::Int(_)), "round {round}: the first INCR");
            reset_on_close(raw.stream());
        }
        drop(raw);
    }
    assert_eq!(q::<String>(&mut observer, &["PING"]), "PONG");
    wait_until(SETTLE, "the vanished clients are gone", || info_u64(&mut observer, "connected_clients") == 1);
    for key in &keys {
        let n: i64 = q(&mut observer, &["INCR", key]);
        assert!((1..=rounds as i64 * 150 + 1).contains(&n), "{key} = {n}");
    }
    assert_eq!(q::<Option<String>>(&mut observer, &["GET", "half"]), None, "the half-sent SET never ran");
    assert_eq!(q::<String>(&mut observer, &["AGENT.ASK", &agent, "after"]), "after");
    assert_eq!(RawConn::connect(server.port).call(&["PING"]), Reply::Simple("PONG".into()));
    let (status, stdout) = server.stop();
    assert_eq!(status.code(), Some(0), "{stdout}");
    assert!(accounting_ok(&stdout), "final counters balance:\n{stdout}");
}

// ----- shutdown ------------------------------------------------------------------------------

#[test]
fn sigterm_under_load_finishes_in_flight_commands_and_exits_cleanly() {
    let mut server = Server::start();
    let port = server.port;
    // Pipelines completed, per loader: SIGTERM waits until every loader has run, so a loader
    // thread that the OS schedules late cannot make "loader N ran" fail.
    let pipelines_done: std::sync::Arc<[std::sync::atomic::AtomicUsize; 3]> = std::sync::Arc::default();
    let loaders: Vec<_> = (0..3)
        .map(|t| {
            let key = name_on_shard(&format!("load{t}-"), t % SHARDS);
            let mut con = server.connect();
            let done = pipelines_done.clone();
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(60);
                let mut last = 0i64;
                let mut pipe = redis::pipe();
                for _ in 0..50 {
                    pipe.cmd("INCR").arg(&key);
                }
                while Instant::now() < deadline {
                    let Ok(values) = pipe.query::<Vec<i64>>(&mut con) else { break };
                    let expected: Vec<i64> = (last + 1..=last + 50).collect();
                    assert_eq!(values, expected, "loader {t}: every reply of a pipeline, in order");
                    last += 50;
                    done[t].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                last
            })
        })
        .collect();
    wait_until(Duration::from_secs(30), "every loader has run five pipelines", || {
        pipelines_done.iter().all(|n| n.load(std::sync::atomic::Ordering::Relaxed) >= 5)
    });

    // One write of 100 INCRs (one TCP segment); once the first reply is back, the server holds
    // them all, so SIGTERM must still answer every one before it closes.
    let key = name_on_shard("inflight", 1);
    let mut raw = RawConn::connect(port);
    let bytes: Vec<u8> = (0..100).flat_map(|_| encode_str(&["INCR", &key])).collect();
    raw.send(&bytes);
    assert_eq!(raw.read(), Reply::Int(1));
    server.sigterm();
    for n in 2..=100 {
        match raw.try_read() {
            Ok(reply) => assert_eq!(reply, Reply::Int(n), "in-flight reply {n}"),
            Err(e) => panic!("in-flight reply {n} lost after SIGTERM: {e}\n{}", server.output()),
        }
    }
    assert!(raw.closed_within(nexus::STOP_TIMEOUT), "the connection closes after the flush");

    let (status, stdout) = server.wait_stopped();
    assert_eq!(status.code(), Some(0), "exit status after SIGTERM\n{}", server.output());
    assert!(accounting_ok(&stdout), "final counters balance:\n{stdout}");
    for (t, loader) in loaders.into_iter().enumerate() {
        let last = loader.join().unwrap_or_else(|_| panic!("loader {t} saw a wrong reply"));
        assert!(last >= 50, "loader {t} ran");
    }
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "nothing listens after the exit");
}
