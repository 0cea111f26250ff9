//! Server tests of the config's agents: `nexus run` spawns `[[agents]]` through the same kind
//! registry as `AGENT.SPAWN`, so a named config agent answers `AGENT.SEND`, `AGENT.ASK`,
//! `AGENT.INFO`, `AGENT.LIST` and `AGENT.STOP` like a spawned one; and the `kv` kind's payload
//! protocol. A child module of `tests/server.rs`; each test starts its own server.
//!
//! `nexus run` spawns the config's agents before its server accepts the first connection, so
//! the tests ask them at once, without waiting.

use super::client::{q, q_err, wait_until, SETTLE};
use super::nexus::Server;
use super::resp::{bulk, RawConn, Reply};
use redis::Connection;
use std::collections::HashMap;

fn info(con: &mut Connection, name: &str) -> HashMap<String, String> {
    q::<Option<HashMap<String, String>>>(con, &["AGENT.INFO", name]).unwrap_or_else(|| panic!("no agent '{name}'"))
}

#[test]
fn a_config_agent_answers_agent_commands_like_a_spawned_one() {
    let server = Server::builder()
        .agents("[[agents]]\nkind = \"echo\"\nname = \"e1\"\nshard = 1\n")
        .agents("[[agents]]\nkind = \"counter\"\nname = \"c\"\ncount = 2\n")
        .start();
    let mut con = server.connect();
    assert_eq!(q::<String>(&mut con, &["AGENT.ASK", "e1", "hi"]), "hi", "the first command of the first client");
    assert_eq!(q::<i64>(&mut con, &["AGENT.SEND", "e1", "fire"]), 1);
    let e1 = info(&mut con, "e1");
    assert_eq!(e1.get("kind").map(String::as_str), Some("echo"), "{e1:?}");
    assert_eq!(e1.get("shard").map(String::as_str), Some("1"), "the spec's shard: {e1:?}");

    // count = 2 registers `c-0` and `c-1`, round robin over the two shards.
    let shards: Vec<String> = ["c-0", "c-1"].iter().map(|n| info(&mut con, n)["shard"].clone()).collect();
    assert_ne!(shards[0], shards[1], "round robin: {shards:?}");
    assert_eq!(q::<i64>(&mut con, &["AGENT.SEND", "c-0", "tick"]), 1);
    wait_until(SETTLE, "the SEND is counted", || q::<i64>(&mut con, &["AGENT.ASK", "c-0", "get"]) == 1);
    assert_eq!(q::<i64>(&mut con, &["AGENT.ASK", "c-1", "41"]), 41);

    let counters: Vec<String> = q(&mut con, &["AGENT.LIST", "counter"]);
    assert_eq!(counters, ["c-0", "c-1"]);
    assert_eq!(q_err(&mut con, &["AGENT.SPAWN", "echo", "e1"]), "ERR agent name 'e1' is taken");
    assert_eq!(q::<i64>(&mut con, &["AGENT.STOP", "e1"]), 1);
    wait_until(SETTLE, "a stopped config agent's name can be used again", || {
        redis::cmd("AGENT.SPAWN").arg("counter").arg("e1").query::<String>(&mut con).is_ok()
    });
    assert_eq!(q::<i64>(&mut con, &["AGENT.ASK", "e1", "get"]), 0);
}

/// The fixture's config lists no `[[agents]]` of its own, so `nexus run` starts the default
/// ones (`echo`, `counter` and `kv`, named after their kinds): they answer over RESP too.
#[test]
fn the_default_config_agents_answer_over_resp() {
    let server = Server::start();
    let mut con = server.connect();
    assert_eq!(q::<String>(&mut con, &["AGENT.ASK", "echo", "hello"]), "hello");
    assert_eq!(q::<i64>(&mut con, &["AGENT.ASK", "counter", "get"]), 0);
    let list: Vec<String> = q(&mut con, &["AGENT.LIST"]);
    for name in ["counter", "echo", "kv"] {
        assert!(list.iter().any(|n| n == name), "{name} missing from {list:?}");
        assert_eq!(info(&mut con, name).get("kind").map(String::as_str), Some(name));
    }
}

#[test]
fn the_kv_kind_gets_sets_deletes_and_counts() {
    let server = Server::start();
    let mut raw = RawConn::connect(server.port);
    assert_eq!(raw.call(&["AGENT.SPAWN", "kv", "store"]), Reply::Simple("OK".into()));
    for kv in ["kv", "store"] {
        assert_eq!(raw.call(&["AGENT.ASK", kv, "GET a"]), Reply::NilBulk);
        assert_eq!(raw.call(&["AGENT.ASK", kv, "SET a hello world"]), Reply::Simple("OK".into()));
        assert_eq!(raw.call(&["AGENT.ASK", kv, "get a"]), bulk("hello world"));
        assert_eq!(raw.call(&["AGENT.SEND", kv, "SET b 2"]), Reply::Int(1));
        assert_eq!(raw.call(&["AGENT.ASK", kv, "GET b"]), bulk("2"), "a SEND is applied before a later ASK");
        assert_eq!(raw.call(&["AGENT.ASK", kv, "LEN"]), Reply::Int(2));
        assert_eq!(raw.call(&["AGENT.ASK", kv, "DEL a"]), Reply::Int(1));
        assert_eq!(raw.call(&["AGENT.ASK", kv, "DEL a"]), Reply::Int(0));
        assert_eq!(raw.call(&["AGENT.ASK", kv, "LEN"]), Reply::Int(1));
    }
    let usage = "ERR kv expects 'GET key', 'SET key value', 'DEL key' or 'LEN'";
    assert_eq!(raw.call(&["AGENT.ASK", "kv", "PUT a b"]), Reply::Error(usage.into()));
    assert_eq!(
        raw.call(&["AGENT.ASK", "kv", "SET a"]),
        Reply::Error("ERR kv: SET takes a key and a value (SET key value)".into())
    );
    let refused = raw.call(&["AGENT.SPAWN", "kv", "other", "extra"]);
    assert!(matches!(&refused, Reply::Error(e) if e.contains("kv takes no arguments")), "{refused:?}");
}
