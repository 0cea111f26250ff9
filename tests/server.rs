//! End-to-end tests of the RESP server of `nexus run`.
//!
//! Each test starts its own `nexus run` (two shards, no load) on free ports through the
//! fixture in `support/nexus.rs`, and drives it the way users will: with the `redis` crate (a
//! real client library), with raw bytes on a socket where the exact protocol matters
//! (`support/resp.rs`), over plain HTTP for `/metrics` and `/health`, and with `redis-cli`
//! when it is installed. Keys, channels and agent names are picked with the engine's own
//! `owner_of` under the seed the fixture starts them with, so every multi-key case spans both
//! shards.
//!
//! This file covers the commands, pipelining, pub/sub, agents, INFO, metrics, AUTH and the
//! command line; `support/server_agents.rs` covers the config's `[[agents]]` over RESP and the
//! `kv` kind; `support/server_limits.rs` covers the limits, hostile clients and SIGTERM;
//! `support/server_memory.rs` the memory an idle client costs.
//! Waits poll with a deadline (never a long sleep), so tests stay short when run side by side
//! on a two-core machine.

/// The executor every server of this suite runs on (`server_threads.rs` runs the same suite
/// on the threads executor).
#[allow(dead_code)]
pub const EXECUTOR: &str = "glommio";

#[path = "support/client.rs"]
mod client;
#[path = "support/nexus.rs"]
mod nexus;
#[path = "support/resp.rs"]
mod resp;
#[path = "support/server_agents.rs"]
mod server_agents;
#[path = "support/server_attack.rs"]
mod server_attack;
#[path = "support/server_limits.rs"]
mod server_limits;
#[path = "support/server_memory.rs"]
mod server_memory;

use client::{
    accounting_ok, field, http_get, info_field, info_u64, name_on_shard, names_on_both_shards, owner_of, q, q_err,
    wait_until, SETTLE,
};
use nexus::{Server, SHARDS};
use redis::{Connection, Value};
use resp::{bulk, encode_str, RawConn, Reply};
use std::collections::{HashMap, HashSet};
use std::net::TcpStream;
use std::process::Command;

// ----- connection commands ------------------------------------------------------------------

#[test]
fn connection_commands_answer_as_redis_does() {
    let server = Server::start();
    let mut con = server.connect();
    assert_eq!(q::<String>(&mut con, &["PING"]), "PONG");
    assert_eq!(q::<String>(&mut con, &["ping", "hi there"]), "hi there", "commands are case-insensitive");
    assert_eq!(q::<Vec<u8>>(&mut con, &["ECHO", "a\r\nb\0c"]), b"a\r\nb\0c");
    assert_eq!(q::<String>(&mut con, &["SELECT", "0"]), "OK");
    assert_eq!(q_err(&mut con, &["SELECT", "1"]), "ERR DB index is out of range");
    assert_eq!(q::<String>(&mut con, &["CLIENT", "SETNAME", "tester"]), "OK");
    assert_eq!(q::<Option<String>>(&mut con, &["CLIENT", "GETNAME"]).as_deref(), Some("tester"));
    assert_eq!(q::<String>(&mut con, &["CLIENT", "SETINFO", "LIB-NAME", "tests"]), "OK");
    let id1: i64 = q(&mut con, &["CLIENT", "ID"]);
    let id2: i64 = q(&mut server.connect(), &["CLIENT", "ID"]);
    assert!(id1 > 0 && id2 > 0 && id1 != id2, "client ids {id1} and {id2}");
    assert!(q::<i64>(&mut con, &["COMMAND", "COUNT"]) >= 0);
    assert!(matches!(q::<Value>(&mut con, &["COMMAND"]), Value::Array(_)));
    assert!(matches!(q::<Value>(&mut con, &["COMMAND", "DOCS"]), Value::Array(_) | Value::Map(_)));

    let mut raw = RawConn::connect(server.port);
    assert_eq!(raw.call(&["QUIT"]), Reply::Simple("OK".into()));
    assert!(raw.closed_within(SETTLE), "QUIT closes the connection");
    assert_eq!(q::<String>(&mut con, &["PING"]), "PONG", "other connections carry on");
}

#[test]
fn hello_switches_between_resp2_and_resp3() {
    let server = Server::start();
    let mut raw = RawConn::connect(server.port);
    let hello = raw.call(&["HELLO", "3"]);
    assert!(matches!(hello, Reply::Map(_)), "HELLO 3 answers a RESP3 map: {hello:?}");
    assert_eq!(field(&hello, "server"), Some(&bulk("nexus")));
    assert_eq!(field(&hello, "proto"), Some(&Reply::Int(3)));
    assert_eq!(field(&hello, "mode"), Some(&bulk("standalone")));
    assert_eq!(field(&hello, "role"), Some(&bulk("master")));
    assert_eq!(field(&hello, "modules"), Some(&Reply::Array(Vec::new())));
    assert!(field(&hello, "version").and_then(Reply::text).is_some_and(|v| !v.is_empty()), "{hello:?}");
    assert!(matches!(field(&hello, "id"), Some(Reply::Int(id)) if *id > 0), "{hello:?}");
    assert_eq!(raw.call(&["GET", "missing"]), Reply::Null, "RESP3 nil is `_`");
    assert_eq!(raw.call(&["MGET", "missing", "missing2"]), Reply::Array(vec![Reply::Null, Reply::Null]));
    assert!(matches!(raw.call(&["HELLO"]), Reply::Map(_)), "HELLO alone keeps RESP3");

    let hello = raw.call(&["HELLO", "2", "SETNAME", "resp2-again"]);
    assert!(matches!(&hello, Reply::Array(items) if items.len() % 2 == 0), "RESP2: a flat array: {hello:?}");
    assert_eq!(field(&hello, "proto"), Some(&Reply::Int(2)));
    assert_eq!(field(&hello, "server"), Some(&bulk("nexus")));
    assert_eq!(raw.call(&["GET", "missing"]), Reply::NilBulk, "RESP2 nil is `$-1`");
    assert_eq!(raw.call(&["CLIENT", "GETNAME"]), bulk("resp2-again"), "HELLO SETNAME names the client");
    assert!(raw.call(&["HELLO", "4"]).is_error(), "an unknown protocol version is an error");
    assert_eq!(raw.call(&["PING"]), Reply::Simple("PONG".into()));

    // The redis crate negotiates RESP3 itself when asked to.
    let client = redis::Client::open(format!("{}?protocol=resp3", server.url())).unwrap();
    let mut con = client.get_connection().unwrap_or_else(|e| panic!("RESP3 connect: {e}\n{}", server.output()));
    assert_eq!(q::<String>(&mut con, &["SET", "r3", "v"]), "OK");
    assert_eq!(q::<Vec<Option<String>>>(&mut con, &["MGET", "r3", "nope"]), vec![Some("v".to_owned()), None]);
}

// ----- keys ------------------------------------------------------------------------------------

#[test]
fn set_and_get_honour_nx_xx_get_and_binary_values() {
    let server = Server::start();
    let mut con = server.connect();
    assert_eq!(q::<Option<String>>(&mut con, &["GET", "k"]), None);
    assert_eq!(q::<String>(&mut con, &["SET", "k", "v1"]), "OK");
    assert_eq!(q::<String>(&mut con, &["GET", "k"]), "v1");
    assert_eq!(q::<Option<String>>(&mut con, &["SET", "k", "v2", "NX"]), None, "NX on an existing key");
    assert_eq!(q::<String>(&mut con, &["GET", "k"]), "v1");
    assert_eq!(q::<Option<String>>(&mut con, &["SET", "k", "v2", "XX"]).as_deref(), Some("OK"));
    assert_eq!(q::<String>(&mut con, &["GET", "k"]), "v2");
    assert_eq!(q::<Option<String>>(&mut con, &["SET", "fresh", "x", "XX"]), None, "XX on a missing key");
    assert_eq!(q::<Option<String>>(&mut con, &["GET", "fresh"]), None);
    assert_eq!(q::<Option<String>>(&mut con, &["SET", "fresh", "x", "NX"]).as_deref(), Some("OK"));
    assert_eq!(q::<Option<String>>(&mut con, &["SET", "k", "v3", "GET"]).as_deref(), Some("v2"));
    assert_eq!(q::<Option<String>>(&mut con, &["SET", "new", "n", "GET"]), None);
    assert_eq!(q::<String>(&mut con, &["GET", "k"]), "v3");
    assert!(q_err(&mut con, &["SET", "k", "v", "NX", "XX"]).starts_with("ERR"));
    assert!(q_err(&mut con, &["SET", "k", "v", "EX", "soon"]).starts_with("ERR"));
    assert!(q_err(&mut con, &["SET", "k", "v", "BOGUS"]).starts_with("ERR"));
    assert_eq!(q::<String>(&mut con, &["GET", "k"]), "v3", "a failed SET changes nothing");

    let binary: Vec<u8> = (0..=255u8).chain(*b"\r\n$3\r\n*1\r\n").collect();
    redis::cmd("SET").arg("bin").arg(&binary).query::<()>(&mut con).unwrap();
    assert_eq!(redis::cmd("GET").arg("bin").query::<Vec<u8>>(&mut con).unwrap(), binary);
    assert_eq!(q::<String>(&mut con, &["SET", "empty", ""]), "OK");
    assert_eq!(q::<Option<String>>(&mut con, &["GET", "empty"]).as_deref(), Some(""));
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    redis::cmd("SET").arg("big").arg(&big).query::<()>(&mut con).unwrap();
    assert_eq!(redis::cmd("GET").arg("big").query::<Vec<u8>>(&mut con).unwrap(), big, "a 1 MB value");
}

#[test]
fn keys_expire_with_ex_px_and_expire() {
    let server = Server::start();
    let mut con = server.connect();
    assert_eq!(q::<i64>(&mut con, &["TTL", "none"]), -2);
    assert_eq!(q::<i64>(&mut con, &["PTTL", "none"]), -2);
    assert_eq!(q::<String>(&mut con, &["SET", "plain", "v"]), "OK");
    assert_eq!(q::<i64>(&mut con, &["TTL", "plain"]), -1);
    assert_eq!(q::<String>(&mut con, &["SET", "ex", "v", "EX", "100"]), "OK");
    assert!((99..=100).contains(&q::<i64>(&mut con, &["TTL", "ex"])));
    assert_eq!(q::<String>(&mut con, &["SET", "px", "v", "PX", "100000"]), "OK");
    assert!((90_000..=100_000).contains(&q::<i64>(&mut con, &["PTTL", "px"])));
    assert_eq!(q::<String>(&mut con, &["SET", "px", "again"]), "OK");
    assert_eq!(q::<i64>(&mut con, &["TTL", "px"]), -1, "a plain SET drops the expiry");
    assert_eq!(q::<i64>(&mut con, &["EXPIRE", "plain", "100"]), 1);
    assert!((99..=100).contains(&q::<i64>(&mut con, &["TTL", "plain"])));
    assert_eq!(q::<i64>(&mut con, &["EXPIRE", "none", "100"]), 0);
    assert!(q_err(&mut con, &["SET", "k", "v", "EX", "0"]).starts_with("ERR"));
    assert!(q_err(&mut con, &["SET", "k", "v", "PX", "-5"]).starts_with("ERR"));

    // Short expiries, on keys of both shards: gone soon, and then gone everywhere.
    let keys = names_on_both_shards("short", 2);
    for key in &keys {
        assert_eq!(q::<String>(&mut con, &["SET", key, "v", "PX", "100"]), "OK");
    }
    assert_eq!(q::<String>(&mut con, &["SET", "soon", "v"]), "OK");
    assert_eq!(q::<i64>(&mut con, &["EXPIRE", "soon", "1"]), 1);
    wait_until(SETTLE, "PX 100 keys expire", || {
        keys.iter().all(|k| q::<Option<String>>(&mut con, &["GET", k]).is_none())
    });
    for key in &keys {
        assert_eq!(q::<i64>(&mut con, &["EXISTS", key]), 0);
        assert_eq!(q::<i64>(&mut con, &["TTL", key]), -2);
    }
    wait_until(SETTLE, "EXPIRE 1 expires", || q::<i64>(&mut con, &["EXISTS", "soon"]) == 0);
    assert_eq!(q::<Option<String>>(&mut con, &["GET", "soon"]), None);
}

#[test]
fn incr_family_counts_and_rejects_non_integers() {
    let server = Server::start();
    let mut con = server.connect();
    assert_eq!(q::<i64>(&mut con, &["INCR", "n"]), 1);
    assert_eq!(q::<i64>(&mut con, &["INCRBY", "n", "10"]), 11);
    assert_eq!(q::<i64>(&mut con, &["DECR", "n"]), 10);
    assert_eq!(q::<i64>(&mut con, &["DECRBY", "n", "3"]), 7);
    assert_eq!(q::<i64>(&mut con, &["INCRBY", "n", "-10"]), -3);
    assert_eq!(q::<String>(&mut con, &["GET", "n"]), "-3");
    assert_eq!(q::<i64>(&mut con, &["DECR", "fresh"]), -1);

    const NOT_AN_INTEGER: &str = "ERR value is not an integer or out of range";
    assert_eq!(q::<String>(&mut con, &["SET", "word", "abc"]), "OK");
    assert_eq!(q_err(&mut con, &["INCR", "word"]), NOT_AN_INTEGER);
    assert_eq!(q_err(&mut con, &["DECR", "word"]), NOT_AN_INTEGER);
    assert_eq!(q_err(&mut con, &["INCRBY", "n", "ten"]), NOT_AN_INTEGER);
    assert_eq!(q_err(&mut con, &["INCRBY", "n", "1.5"]), NOT_AN_INTEGER);
    assert_eq!(q::<String>(&mut con, &["SET", "max", "9223372036854775807"]), "OK");
    assert!(q_err(&mut con, &["INCR", "max"]).starts_with("ERR"), "INCR past i64::MAX");
    assert_eq!(q::<String>(&mut con, &["GET", "word"]), "abc", "failed INCRs change nothing");
    assert_eq!(q::<String>(&mut con, &["GET", "max"]), "9223372036854775807");
    assert_eq!(q::<i64>(&mut con, &["INCR", "n"]), -2);
}

#[test]
fn multi_key_commands_span_both_shards() {
    let server = Server::start();
    let mut con = server.connect();
    let keys = names_on_both_shards("mk", 8);
    let shards: HashSet<usize> = keys.iter().map(|k| owner_of(k, SHARDS)).collect();
    assert_eq!(shards.len(), SHARDS, "the test keys span every shard");

    let mut mset = vec!["MSET"];
    let values: Vec<String> = keys.iter().map(|k| format!("value-of-{k}")).collect();
    for (k, v) in keys.iter().zip(&values) {
        mset.extend([k.as_str(), v.as_str()]);
    }
    assert_eq!(q::<String>(&mut con, &mset), "OK");
    assert_eq!(q::<i64>(&mut con, &["DBSIZE"]), 8);
    let mut mget = vec!["MGET"];
    mget.extend(keys.iter().map(String::as_str));
    mget.insert(3, "no-such-key");
    let mut expected: Vec<Option<String>> = values.iter().cloned().map(Some).collect();
    expected.insert(2, None);
    assert_eq!(q::<Vec<Option<String>>>(&mut con, &mget), expected, "MGET keeps the order of its keys");

    let mut exists = vec!["EXISTS"];
    exists.extend(keys.iter().map(String::as_str));
    exists.push("no-such-key");
    assert_eq!(q::<i64>(&mut con, &exists), 8);
    assert_eq!(q::<i64>(&mut con, &["EXISTS", &keys[0], &keys[0], &keys[1]]), 3, "EXISTS counts repeats");
    assert_eq!(q::<i64>(&mut con, &["DEL", &keys[0], &keys[1], &keys[2], "no-such-key"]), 3);
    assert_eq!(q::<i64>(&mut con, &["DEL", &keys[0], &keys[1]]), 0);
    assert_eq!(q::<i64>(&mut con, &["DBSIZE"]), 5);
    assert_eq!(q::<Option<String>>(&mut con, &["GET", &keys[1]]), None);
    assert_eq!(q::<Option<String>>(&mut con, &["GET", &keys[3]]).as_deref(), Some(values[3].as_str()));

    assert_eq!(q::<String>(&mut con, &["FLUSHALL"]), "OK");
    assert_eq!(q::<i64>(&mut con, &["DBSIZE"]), 0);
    assert_eq!(q::<i64>(&mut con, &exists), 0, "FLUSHALL clears every shard");
    assert_eq!(q::<String>(&mut con, &mset), "OK");
    assert!(q_err(&mut con, &["FLUSHALL", "NOW"]).starts_with("ERR"), "FLUSHALL takes only ASYNC or SYNC");
    assert_eq!(q::<i64>(&mut con, &["DBSIZE"]), 8, "a FLUSHALL with a bad option flushes nothing");
    assert_eq!(q::<String>(&mut con, &["FLUSHALL", "ASYNC"]), "OK");
    wait_until(SETTLE, "FLUSHALL ASYNC empties the keyspace", || q::<i64>(&mut con, &["DBSIZE"]) == 0);
    assert_eq!(q::<String>(&mut con, &mset), "OK");
    assert_eq!(q::<String>(&mut con, &["FLUSHALL", "SYNC"]), "OK");
    assert_eq!(q::<i64>(&mut con, &["DBSIZE"]), 0);
    assert!(q_err(&mut con, &["MSET", "a", "1", "b"]).starts_with("ERR wrong number of arguments"));
}

#[test]
fn wrong_arity_and_unknown_commands_use_redis_wording() {
    let server = Server::start();
    let mut con = server.connect();
    assert_eq!(q_err(&mut con, &["GET"]), "ERR wrong number of arguments for 'get' command");
    assert_eq!(q_err(&mut con, &["get", "a", "b"]), "ERR wrong number of arguments for 'get' command");
    assert_eq!(q_err(&mut con, &["SET", "k"]), "ERR wrong number of arguments for 'set' command");
    assert_eq!(q_err(&mut con, &["INCR"]), "ERR wrong number of arguments for 'incr' command");
    assert_eq!(q_err(&mut con, &["EXPIRE", "k"]), "ERR wrong number of arguments for 'expire' command");
    assert_eq!(q_err(&mut con, &["PUBLISH", "ch"]), "ERR wrong number of arguments for 'publish' command");
    let arity = q_err(&mut con, &["AGENT.SPAWN", "echo"]);
    assert!(arity.starts_with("ERR wrong number of arguments") && arity.contains("agent.spawn"), "{arity}");
    assert_eq!(q_err(&mut con, &["foo", "a", "b"]), "ERR unknown command 'foo', with args beginning with: 'a' 'b' ");
    assert_eq!(q_err(&mut con, &["nosuch"]), "ERR unknown command 'nosuch', with args beginning with: ");
    assert_eq!(q::<String>(&mut con, &["PING"]), "PONG", "errors leave the connection usable");
}

// ----- pipelining --------------------------------------------------------------------------

/// One write mixing single-key commands on both shards with multi-key ones: whichever shard
/// accepted the connection (its own keys run inline, the other shard's go in one batch per
/// read), every command sees the effect of the ones before it. (RENAME across shards is left
/// out: its second half is a message of its own, so a read of the destination sent right
/// behind it may overtake it, as documented in `ingress/keyspace.rs`.)
#[test]
fn single_and_multi_key_commands_in_one_write_keep_their_order() {
    let server = Server::start();
    let (a, b) = (name_on_shard("order-a", 0), name_on_shard("order-b", 1));
    let script: Vec<(Vec<&str>, Reply)> = vec![
        (vec!["SET", &a, "1"], Reply::Simple("OK".into())),
        (vec!["SET", &b, "1"], Reply::Simple("OK".into())),
        (vec!["DEL", &a, &b], Reply::Int(2)),
        (vec!["GET", &a], Reply::NilBulk),
        (vec!["GET", &b], Reply::NilBulk),
        (vec!["SET", &a, "2"], Reply::Simple("OK".into())),
        (vec!["MGET", &a, &b], Reply::Array(vec![bulk("2"), Reply::NilBulk])),
        (vec!["DEL", &a], Reply::Int(1)),
        (vec!["GET", &a], Reply::NilBulk),
        (vec!["INCR", &a], Reply::Int(1)),
        (vec!["MSET", &a, "5", &b, "6"], Reply::Simple("OK".into())),
        (vec!["GET", &a], bulk("5")),
        (vec!["INCR", &b], Reply::Int(7)),
        (vec!["EXISTS", &a, &b], Reply::Int(2)),
    ];
    // Enough connections that both shards accept some.
    for round in 0..8 {
        let mut raw = RawConn::connect(server.port);
        let bytes: Vec<u8> = script.iter().flat_map(|(args, _)| encode_str(args)).collect();
        raw.send(&bytes);
        for (args, expected) in &script {
            assert_eq!(&raw.read(), expected, "round {round}: {args:?}");
        }
    }
}

#[test]
fn a_thousand_pipelined_commands_answer_in_order() {
    let server = Server::start();
    let mut con = server.connect();
    let keys = names_on_both_shards("pipe", 250);
    let mut pipe = redis::pipe();
    for (i, key) in keys.iter().enumerate() {
        pipe.cmd("SET").arg(key).arg(i).cmd("INCR").arg(key).cmd("GET").arg(key).cmd("ECHO").arg(format!("e{i}"));
    }
    let replies: Vec<Value> = pipe.query(&mut con).unwrap_or_else(|e| panic!("pipeline: {e}\n{}", server.output()));
    assert_eq!(replies.len(), 1000);
    for (i, chunk) in replies.chunks(4).enumerate() {
        let expected = [
            Value::Okay,
            Value::Int(i as i64 + 1),
            Value::BulkString((i + 1).to_string().into_bytes()),
            Value::BulkString(format!("e{i}").into_bytes()),
        ];
        assert_eq!(chunk, expected, "replies of command group {i}");
    }

    // One write of 1000 INCRs alternating between keys on the two shards: a reply from one
    // shard must never overtake an earlier one from the other.
    let (a, b) = (name_on_shard("raw-a", 0), name_on_shard("raw-b", 1));
    let mut raw = RawConn::connect(server.port);
    let bytes: Vec<u8> = (0..1000).flat_map(|i| encode_str(&["INCR", if i % 2 == 0 { &a } else { &b }])).collect();
    raw.send(&bytes);
    for i in 0..1000 {
        assert_eq!(raw.read(), Reply::Int(i / 2 + 1), "reply {i}");
    }
    assert_eq!(raw.call(&["MGET", &a, &b]), Reply::Array(vec![bulk("500"), bulk("500")]));

    // Errors, agent round trips and multi-key gathers mixed into one write keep their places.
    let (echo_a, echo_b) = (name_on_shard("pipe-echo", 0), name_on_shard("pipe-echo", 1));
    assert_eq!(raw.call(&["AGENT.SPAWN", "echo", &echo_a]), Reply::Simple("OK".into()));
    assert_eq!(raw.call(&["AGENT.SPAWN", "echo", &echo_b]), Reply::Simple("OK".into()));
    assert_eq!(raw.call(&["SET", "word", "abc"]), Reply::Simple("OK".into()));
    let mut bytes = Vec::new();
    let mut expected = Vec::new();
    for i in 0..100 {
        let n = (i + 1).to_string();
        let echo = if i % 2 == 0 { &echo_a } else { &echo_b };
        bytes.extend(encode_str(&["AGENT.ASK", echo, &n]));
        expected.push(bulk(&n));
        bytes.extend(encode_str(&["INCR", "word"]));
        expected.push(Reply::Error("ERR value is not an integer or out of range".into()));
        bytes.extend(encode_str(&["INCR", &b]));
        expected.push(Reply::Int(501 + i));
        bytes.extend(encode_str(&["AGENT.ASK", "no-such-agent", "x"]));
        expected.push(Reply::Error("ERR no such agent 'no-such-agent'".into()));
        bytes.extend(encode_str(&["MGET", &a, &b, "missing"]));
        expected.push(Reply::Array(vec![bulk("500"), bulk(&(501 + i).to_string()), Reply::NilBulk]));
    }
    raw.send(&bytes);
    for (i, want) in expected.iter().enumerate() {
        assert_eq!(&raw.read(), want, "reply {i} of the mixed pipeline");
    }
}

// ----- pub/sub -----------------------------------------------------------------------------

fn next_message(pubsub: &mut redis::PubSub<'_>) -> (String, String) {
    let msg = pubsub.get_message().unwrap_or_else(|e| panic!("no message: {e}"));
    (msg.get_channel_name().to_owned(), msg.get_payload().unwrap())
}

#[test]
fn publish_reaches_subscribers_on_every_connection_and_shard() {
    let server = Server::start();
    let (ch_a, ch_b) = (name_on_shard("chan-a", 0), name_on_shard("chan-b", 1));
    let mut publisher = server.connect();
    let mut con1 = server.connect();
    let mut con2 = server.connect();
    let mut sub1 = con1.as_pubsub();
    sub1.set_read_timeout(Some(SETTLE)).unwrap();
    sub1.subscribe(&ch_a).unwrap();
    sub1.subscribe(&ch_b).unwrap();
    let mut sub2 = con2.as_pubsub();
    sub2.set_read_timeout(Some(SETTLE)).unwrap();
    sub2.subscribe(&ch_b).unwrap();
    let mut raw = RawConn::connect(server.port);
    raw.send(&encode_str(&["SUBSCRIBE", &ch_a, "chan-raw"]));
    assert_eq!(raw.read(), Reply::Array(vec![bulk("subscribe"), bulk(&ch_a), Reply::Int(1)]));
    assert_eq!(raw.read(), Reply::Array(vec![bulk("subscribe"), bulk("chan-raw"), Reply::Int(2)]));

    assert_eq!(q::<i64>(&mut publisher, &["PUBLISH", &ch_a, "m1"]), 2);
    assert_eq!(q::<i64>(&mut publisher, &["PUBLISH", &ch_b, "m2"]), 2);
    assert_eq!(q::<i64>(&mut publisher, &["PUBLISH", "nobody-listens", "m3"]), 0);
    assert_eq!(next_message(&mut sub1), (ch_a.clone(), "m1".to_owned()));
    assert_eq!(next_message(&mut sub1), (ch_b.clone(), "m2".to_owned()));
    assert_eq!(next_message(&mut sub2), (ch_b.clone(), "m2".to_owned()));
    assert_eq!(raw.read(), Reply::Array(vec![bulk("message"), bulk(&ch_a), bulk("m1")]));

    // RESP2 subscribe mode: PING works, other commands are refused, the connection lives on.
    assert!(!raw.call(&["PING"]).is_error());
    match raw.call(&["GET", "k"]) {
        Reply::Error(e) => assert!(e.starts_with("ERR") && e.to_lowercase().contains("get"), "{e}"),
        other => panic!("GET in subscribe mode should fail: {other:?}"),
    }
    assert_eq!(
        raw.call(&["UNSUBSCRIBE", "chan-raw"]),
        Reply::Array(vec![bulk("unsubscribe"), bulk("chan-raw"), Reply::Int(1)])
    );

    sub2.unsubscribe(&ch_b).unwrap();
    assert_eq!(q::<i64>(&mut publisher, &["PUBLISH", &ch_b, "m4"]), 1, "after UNSUBSCRIBE");
    assert_eq!(next_message(&mut sub1), (ch_b.clone(), "m4".to_owned()));

    // A subscriber that goes away stops counting.
    drop(raw);
    wait_until(SETTLE, "the closed subscriber is forgotten", || {
        q::<i64>(&mut publisher, &["PUBLISH", &ch_a, "probe"]) == 1
    });
    assert_eq!(next_message(&mut sub1).0, ch_a);

    let mut quitter = RawConn::connect(server.port);
    assert!(matches!(quitter.call(&["SUBSCRIBE", &ch_b]), Reply::Array(_)));
    assert_eq!(quitter.call(&["QUIT"]), Reply::Simple("OK".into()), "QUIT works in subscribe mode");
    assert!(quitter.closed_within(SETTLE));
}

#[test]
fn resp3_subscribers_get_pushes_and_keep_normal_commands() {
    let server = Server::start();
    let channel = name_on_shard("push", 1);
    let mut publisher = server.connect();
    let mut raw = RawConn::connect(server.port);
    assert!(matches!(raw.call(&["HELLO", "3"]), Reply::Map(_)));
    let confirm = raw.call(&["SUBSCRIBE", &channel]);
    assert_eq!(confirm, Reply::Push(vec![bulk("subscribe"), bulk(&channel), Reply::Int(1)]));
    assert_eq!(q::<i64>(&mut publisher, &["PUBLISH", &channel, "hello"]), 1);
    assert_eq!(raw.read(), Reply::Push(vec![bulk("message"), bulk(&channel), bulk("hello")]));
    assert_eq!(raw.call(&["SET", "k", "v"]), Reply::Simple("OK".into()), "RESP3 allows commands while subscribed");
    assert_eq!(raw.call(&["GET", "k"]), bulk("v"));
    let confirm = raw.call(&["UNSUBSCRIBE"]);
    assert_eq!(confirm, Reply::Push(vec![bulk("unsubscribe"), bulk(&channel), Reply::Int(0)]));
    assert_eq!(q::<i64>(&mut publisher, &["PUBLISH", &channel, "late"]), 0);
}

// ----- agents ------------------------------------------------------------------------------

fn agent_info(con: &mut Connection, name: &str) -> Option<HashMap<String, String>> {
    q(con, &["AGENT.INFO", name])
}

#[test]
fn echo_and_counter_agents_live_on_the_shard_of_their_name() {
    let server = Server::start();
    let mut con = server.connect();
    let echoes = [name_on_shard("echo-", 0), name_on_shard("echo-", 1)];
    for (shard, name) in echoes.iter().enumerate() {
        assert_eq!(q::<String>(&mut con, &["AGENT.SPAWN", "echo", name]), "OK");
        assert_eq!(q::<String>(&mut con, &["AGENT.ASK", name, "hello"]), "hello");
        assert_eq!(q::<String>(&mut con, &["AGENT.ASK", name, "with timeout", "2000"]), "with timeout");
        let payload = "bin\0\r\nary";
        assert_eq!(q::<String>(&mut con, &["AGENT.ASK", name, payload]), payload);
        assert_eq!(q::<i64>(&mut con, &["AGENT.SEND", name, "fire"]), 1);
        let info = agent_info(&mut con, name).expect("AGENT.INFO of a live agent");
        assert_eq!(info.get("name"), Some(name), "{info:?}");
        assert_eq!(info.get("kind").map(String::as_str), Some("echo"), "{info:?}");
        assert_eq!(info.get("shard"), Some(&shard.to_string()), "an agent lives on owner_of(name): {info:?}");
        assert!(info.get("id").is_some_and(|id| !id.is_empty()), "{info:?}");
        wait_until(SETTLE, "the echo agent handled 3 asks and a send", || {
            agent_info(&mut con, name).and_then(|i| i.get("handled").cloned()).as_deref() == Some("4")
        });
    }

    let counters = [name_on_shard("count-", 0), name_on_shard("count-", 1)];
    assert_eq!(q::<String>(&mut con, &["AGENT.SPAWN", "counter", &counters[0]]), "OK");
    assert_eq!(q::<String>(&mut con, &["AGENT.SPAWN", "counter", &counters[1], "5"]), "OK");
    assert_eq!(q::<i64>(&mut con, &["AGENT.ASK", &counters[0], "get"]), 0);
    assert_eq!(q::<i64>(&mut con, &["AGENT.ASK", &counters[1], "get"]), 5);
    for counter in &counters {
        assert_eq!(q::<i64>(&mut con, &["AGENT.SEND", counter, "tick"]), 1);
        assert_eq!(q::<i64>(&mut con, &["AGENT.SEND", counter, "tick"]), 1);
    }
    wait_until(SETTLE, "the SENDs are counted", || q::<i64>(&mut con, &["AGENT.ASK", &counters[1], "get"]) == 7);
    assert_eq!(q::<i64>(&mut con, &["AGENT.ASK", &counters[0], "get"]), 2);
    assert_eq!(q::<i64>(&mut con, &["AGENT.ASK", &counters[1], "10"]), 17);
    assert_eq!(q::<i64>(&mut con, &["AGENT.ASK", &counters[1], "-20"]), -3);
    assert_eq!(q_err(&mut con, &["AGENT.ASK", &counters[0], "bogus"]), "ERR counter expects 'get' or an integer");
    let info = agent_info(&mut con, &counters[1]).unwrap();
    assert_eq!(info.get("kind").map(String::as_str), Some("counter"));
    assert_eq!(info.get("shard").map(String::as_str), Some("1"));

    let list: Vec<String> = q(&mut con, &["AGENT.LIST"]);
    let mut sorted = list.clone();
    sorted.sort();
    assert_eq!(list, sorted, "AGENT.LIST is sorted");
    for name in echoes.iter().chain(&counters) {
        assert!(list.contains(name), "{name} missing from {list:?}");
    }
    let only_counters: Vec<String> = q(&mut con, &["AGENT.LIST", "counter"]);
    assert!(counters.iter().all(|c| only_counters.contains(c)), "{only_counters:?}");
    assert!(echoes.iter().all(|e| !only_counters.contains(e)), "{only_counters:?}");

    assert_eq!(q::<i64>(&mut con, &["AGENT.STOP", &echoes[1]]), 1);
    assert_eq!(q::<i64>(&mut con, &["AGENT.STOP", &echoes[1]]), 0);
    assert_eq!(agent_info(&mut con, &echoes[1]), None);
    assert!(!q::<Vec<String>>(&mut con, &["AGENT.LIST"]).contains(&echoes[1]));
    assert_eq!(q_err(&mut con, &["AGENT.ASK", &echoes[1], "x"]), format!("ERR no such agent '{}'", echoes[1]));
    wait_until(SETTLE, "a stopped agent's name can be used again", || {
        redis::cmd("AGENT.SPAWN").arg("counter").arg(&echoes[1]).query::<String>(&mut con).is_ok()
    });
    assert_eq!(q::<i64>(&mut con, &["AGENT.ASK", &echoes[1], "get"]), 0);
}

#[test]
fn agent_commands_report_their_errors() {
    let server = Server::start();
    let mut con = server.connect();
    assert_eq!(
        q_err(&mut con, &["AGENT.SPAWN", "wizard", "w1"]),
        "ERR unknown agent kind 'wizard'; hint: use one of the known kinds: counter, echo, kv"
    );
    assert_eq!(q::<String>(&mut con, &["AGENT.SPAWN", "echo", "taken"]), "OK");
    assert_eq!(q_err(&mut con, &["AGENT.SPAWN", "echo", "taken"]), "ERR agent name 'taken' is taken");
    assert_eq!(q_err(&mut con, &["AGENT.SPAWN", "counter", "taken"]), "ERR agent name 'taken' is taken");
    assert_eq!(q_err(&mut con, &["AGENT.SEND", "ghost", "x"]), "ERR no such agent 'ghost'");
    assert_eq!(q_err(&mut con, &["AGENT.ASK", "ghost", "x"]), "ERR no such agent 'ghost'");
    assert_eq!(q::<i64>(&mut con, &["AGENT.STOP", "ghost"]), 0);
    assert_eq!(agent_info(&mut con, "ghost"), None);
    assert!(q_err(&mut con, &["AGENT.ASK", "taken", "x", "soon"]).starts_with("ERR"), "a bad timeout");
    assert!(q_err(&mut con, &["AGENT.SPAWN", "counter", "c", "not-a-number"]).starts_with("ERR"));
    assert!(!q::<Vec<String>>(&mut con, &["AGENT.LIST"]).contains(&"c".to_owned()));
    assert_eq!(q::<String>(&mut con, &["AGENT.ASK", "taken", "still here"]), "still here");
}

#[test]
fn agent_replies_use_resp3_types_after_hello_3() {
    let server = Server::start();
    let mut raw = RawConn::connect(server.port);
    assert!(matches!(raw.call(&["HELLO", "3"]), Reply::Map(_)));
    let name = name_on_shard("r3-counter", 1);
    assert_eq!(raw.call(&["AGENT.SPAWN", "counter", &name, "41"]), Reply::Simple("OK".into()));
    assert_eq!(raw.call(&["AGENT.ASK", &name, "1"]), Reply::Int(42));
    let info = raw.call(&["AGENT.INFO", &name]);
    assert!(matches!(info, Reply::Map(_)), "AGENT.INFO is a map in RESP3: {info:?}");
    assert_eq!(field(&info, "name"), Some(&bulk(&name)));
    assert_eq!(field(&info, "kind"), Some(&bulk("counter")));
    assert!(matches!(field(&info, "shard"), Some(Reply::Int(1))), "{info:?}");
    assert_eq!(raw.call(&["AGENT.INFO", "nobody"]), Reply::Null, "no such agent: the RESP3 null");
    let list = raw.call(&["AGENT.LIST", "counter"]);
    assert!(matches!(&list, Reply::Array(names) if names.contains(&bulk(&name))), "{list:?}");
}

// ----- INFO, metrics, health -----------------------------------------------------------------

#[test]
fn info_reports_server_clients_stats_and_keyspace() {
    let server = Server::start();
    let mut con = server.connect();
    let _other = server.connect();
    wait_until(SETTLE, "two clients are connected", || info_u64(&mut con, "connected_clients") == 2);
    let info: String = q(&mut con, &["INFO"]);
    for section in ["# Server", "# Clients", "# Stats", "# Keyspace"] {
        assert!(info.contains(section), "{section} missing from INFO:\n{info}");
    }
    assert!(info_field(&info, "nexus_version").is_some_and(|v| !v.is_empty()), "{info}");
    assert_eq!(info_field(&info, "shards"), Some("2"), "{info}");
    assert_eq!(info_field(&info, "executor"), Some(crate::EXECUTOR), "{info}");
    assert_eq!(info_field(&info, "tcp_port"), Some(server.port.to_string().as_str()), "{info}");
    assert!(info_field(&info, "uptime_in_seconds").is_some_and(|v| v.parse::<u64>().is_ok()), "{info}");
    for field in [
        "rejected_max_clients",
        "slow_clients_disconnected",
        "client_query_buffer_limit_disconnections",
        "idle_clients_closed",
        "protocol_errors",
    ] {
        assert_eq!(info_field(&info, field), Some("0"), "{field} in:\n{info}");
    }
    assert!(info_field(&info, "dead_letters").is_some_and(|v| v.parse::<u64>().is_ok()), "{info}");
    assert!(info_u64(&mut con, "total_connections_received") >= 2);
    let mut connections = 0;
    for shard in 0..SHARDS {
        let line = info_field(&info, &format!("shard{shard}")).unwrap_or_else(|| panic!("no shard{shard}:\n{info}"));
        let fields: HashMap<&str, u64> = line
            .split(',')
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or_else(|| panic!("`{kv}` in `{line}`"));
                (k, v.parse().unwrap_or_else(|_| panic!("`{kv}` in `{line}`")))
            })
            .collect();
        for key in ["sent", "delivered", "dead_letters", "agents", "connections"] {
            assert!(fields.contains_key(key), "`{key}` missing from shard{shard}:{line}");
        }
        connections += fields["connections"];
    }
    assert_eq!(connections, 2, "the shards' connections add up to connected_clients:\n{info}");
    assert!(info_field(&info, "db0").is_none(), "no db0 line while empty:\n{info}");

    let before = info_u64(&mut con, "total_commands_processed");
    for key in names_on_both_shards("info", 3) {
        assert_eq!(q::<String>(&mut con, &["SET", &key, "v"]), "OK");
    }
    assert_eq!(q::<i64>(&mut con, &["EXPIRE", &names_on_both_shards("info", 1)[0], "100"]), 1);
    let after = info_u64(&mut con, "total_commands_processed");
    assert!(after >= before + 4, "commands counted: {before} -> {after}");
    let keyspace: String = q(&mut con, &["INFO", "keyspace"]);
    assert!(keyspace.contains("# Keyspace") && !keyspace.contains("# Server"), "{keyspace}");
    assert_eq!(info_field(&keyspace, "db0"), Some("keys=3,expires=1"), "{keyspace}");
    let clients: String = q(&mut con, &["INFO", "clients"]);
    assert!(clients.contains("# Clients") && !clients.contains("# Stats"), "{clients}");
}

#[test]
fn metrics_and_health_answer_over_http() {
    let server = Server::start();
    let mut con = server.connect();
    for key in names_on_both_shards("m", 4) {
        assert_eq!(q::<i64>(&mut con, &["INCR", &key]), 1);
    }
    let (status, _, _) = http_get(server.metrics_port, "/health");
    assert_eq!(status, 200, "GET /health");
    let (status, _, _) = http_get(server.metrics_port, "/no-such-page");
    assert_eq!(status, 404, "GET of an unknown path");

    let (status, head, body) = http_get(server.metrics_port, "/metrics");
    assert_eq!(status, 200, "GET /metrics: {head}\n{body}");
    assert!(head.to_lowercase().contains("content-type: text/plain"), "{head}");
    let mut names = HashSet::new();
    let mut samples = Vec::new();
    for line in body.lines().filter(|l| !l.trim().is_empty()) {
        if line.starts_with('#') {
            assert!(line.starts_with("# HELP ") || line.starts_with("# TYPE "), "comment line: {line}");
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("sample without value: {line}"));
        assert!(value.parse::<f64>().is_ok(), "value of `{line}`");
        let name = series.split('{').next().unwrap();
        assert!(!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'), "{line}");
        names.insert(name.to_owned());
        samples.push(series.to_owned());
    }
    assert!(body.contains("# TYPE "), "{body}");
    for shard in 0..SHARDS {
        assert!(samples.iter().any(|s| s.contains(&format!("shard=\"{shard}\""))), "per-shard series {shard}:\n{body}");
    }
    assert!(samples.iter().any(|s| s.contains("quantile=\"")), "latency quantiles:\n{body}");
    assert!(names.iter().any(|n| n.contains("connection")), "connections:\n{body}");
    assert!(names.iter().any(|n| n.contains("dead_letter")), "dead letters:\n{body}");
    assert!(names.contains("nexus_queued_messages"), "queue depth gauges:\n{body}");
    assert!(body.contains("# TYPE nexus_mailbox_depth gauge"), "the busiest mailboxes' family:\n{body}");
    assert!(names.contains("nexus_server_commands_total"), "commands counter (`nexus top` reads it):\n{body}");
}

// ----- AUTH ----------------------------------------------------------------------------------

#[test]
fn requirepass_demands_auth_before_anything_else() {
    let server = Server::builder().requirepass("s3cret").start();
    let mut raw = RawConn::connect(server.port);
    let noauth = Reply::Error("NOAUTH Authentication required.".into());
    assert_eq!(raw.call(&["GET", "k"]), noauth);
    assert_eq!(raw.call(&["PING"]), noauth);
    assert_eq!(raw.call(&["AGENT.LIST"]), noauth);
    let wrongpass = Reply::Error("WRONGPASS invalid username-password pair or user is disabled.".into());
    assert_eq!(raw.call(&["AUTH", "guess"]), wrongpass);
    std::thread::sleep(std::time::Duration::from_millis(60)); // the AUTH backoff after a failure
    assert_eq!(raw.call(&["AUTH", "default", "guess"]), wrongpass);
    assert_eq!(raw.call(&["SET", "k", "v"]), noauth, "a failed AUTH authenticates nothing");
    std::thread::sleep(std::time::Duration::from_millis(110)); // twice as long after a second one
    assert_eq!(raw.call(&["AUTH", "s3cret"]), Reply::Simple("OK".into()));
    assert_eq!(raw.call(&["SET", "k", "v"]), Reply::Simple("OK".into()));

    let mut raw = RawConn::connect(server.port);
    assert_eq!(raw.call(&["AUTH", "default", "s3cret"]), Reply::Simple("OK".into()));
    assert_eq!(raw.call(&["GET", "k"]), bulk("v"));

    let mut raw = RawConn::connect(server.port);
    assert!(
        matches!(raw.call(&["HELLO", "3", "AUTH", "default", "guess"]), Reply::Error(e) if e.starts_with("WRONGPASS"))
    );
    std::thread::sleep(std::time::Duration::from_millis(60)); // the AUTH backoff after a failure
    let hello = raw.call(&["HELLO", "3", "AUTH", "default", "s3cret"]);
    assert_eq!(field(&hello, "server"), Some(&bulk("nexus")), "{hello:?}");
    assert_eq!(raw.call(&["GET", "k"]), bulk("v"));

    let mut raw = RawConn::connect(server.port);
    assert_eq!(raw.call(&["QUIT"]), Reply::Simple("OK".into()), "QUIT needs no AUTH");
    assert!(raw.closed_within(SETTLE));

    let url = format!("redis://:s3cret@127.0.0.1:{}/", server.port);
    let mut con = redis::Client::open(url).unwrap().get_connection().expect("the redis crate authenticates");
    assert_eq!(q::<String>(&mut con, &["GET", "k"]), "v");
    let mut con = redis::Client::open(server.url()).unwrap().get_connection().expect("connects without a password");
    assert_eq!(q_err(&mut con, &["GET", "k"]), "NOAUTH Authentication required.");
    let bad = format!("redis://:nope@127.0.0.1:{}/", server.port);
    assert!(redis::Client::open(bad).unwrap().get_connection().is_err(), "a wrong password fails to connect");
}

// ----- the command line ------------------------------------------------------------------------

#[test]
fn redis_cli_talks_to_the_server() {
    if Command::new("redis-cli").arg("--version").output().is_err() {
        eprintln!("note: redis-cli is not on PATH (tools/setup.sh installs it); skipping");
        return;
    }
    let server = Server::start();
    let cli = |args: &[&str]| -> String {
        let out = Command::new("redis-cli").args(["-p", &server.port.to_string()]).args(args).output().unwrap();
        assert!(out.status.success(), "redis-cli {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim_end().to_owned()
    };
    assert_eq!(cli(&["PING"]), "PONG");
    assert_eq!(cli(&["SET", "cli-key", "cli value"]), "OK");
    assert_eq!(cli(&["GET", "cli-key"]), "cli value");
    assert_eq!(cli(&["AGENT.SPAWN", "echo", "e1"]), "OK");
    assert_eq!(cli(&["AGENT.ASK", "e1", "hello"]), "hello");
    assert!(cli(&["AGENT.ASK", "nobody", "hello"]).contains("no such agent 'nobody'"));
}

#[test]
fn listen_flags_override_the_config() {
    let server = Server::builder().listen_on_cli().metrics_off_on_cli().start();
    let mut con = server.connect();
    assert_eq!(q::<String>(&mut con, &["PING"]), "PONG");
    let output = server.output();
    assert!(output.contains(&format!("nexus: serving RESP on 127.0.0.1:{}", server.port)), "{output}");
    assert!(!output.contains("nexus: metrics on"), "metrics are off:\n{output}");
    assert!(TcpStream::connect(("127.0.0.1", server.config_port)).is_err(), "the config's listen is unused");
    assert!(TcpStream::connect(("127.0.0.1", server.metrics_port)).is_err(), "no metrics endpoint");
}

#[test]
fn a_disabled_server_leaves_the_engine_running_alone() {
    let dir = nexus::scratch_dir();
    let port = nexus::free_port();
    let path = dir.join("alone.toml");
    let config = format!("{}[server]\nlisten = \"127.0.0.1:{port}\"\n", nexus::base_config());
    std::fs::write(&path, format!("{config}enabled = false\n")).unwrap();
    let out = nexus::nexus().args(["run", "--config", path.to_str().unwrap(), "--duration-s", "1"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(!stdout.contains("serving RESP"), "{stdout}");
    assert!(accounting_ok(&stdout), "{stdout}");
    let _ = std::fs::remove_dir_all(dir);
}
