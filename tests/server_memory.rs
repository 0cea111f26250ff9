//! `maxmemory` end to end: a `nexus run` with a small limit, under each policy.
//!
//! - `noeviction`: past the limit SET answers Redis 7's `-OOM` error byte for byte, while GET,
//!   DEL and EXPIRE still work, and deleting makes room again;
//! - `allkeys-lru`: the accounted memory stays at the limit while far more is written, the
//!   keys read often survive, the cold ones go, and every eviction is counted in
//!   `evicted_keys`;
//! - INFO memory and CONFIG GET report the settings.
//!
//! Each test starts its own server through the fixture in `support/nexus.rs` (two shards: the
//! budget of each is half of `maxmemory`).

/// The executor every server of this suite runs on.
#[allow(dead_code)]
pub const EXECUTOR: &str = "glommio";

#[path = "support/nexus.rs"]
#[allow(dead_code)]
mod nexus;
#[path = "support/resp.rs"]
#[allow(dead_code)]
mod resp;

use nexus::Server;
use resp::{RawConn, Reply};

/// Redis 7's answer to a write past `maxmemory` under `noeviction`.
const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";

/// The value every test key holds.
fn value() -> String {
    "v".repeat(100)
}

/// One `field:value` line of `INFO section`, as an integer.
fn info_field(conn: &mut RawConn, section: &str, field: &str) -> String {
    let text = conn.call(&["INFO", section]).text().expect("INFO answers text");
    let prefix = format!("{field}:");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {field} in INFO {section}:\n{text}"))
        .trim()
        .to_owned()
}

fn info_int(conn: &mut RawConn, section: &str, field: &str) -> u64 {
    info_field(conn, section, field).parse().expect("an integer field")
}

#[test]
fn noeviction_refuses_writes_past_the_limit_and_serves_the_rest() {
    let server = Server::builder().limit("maxmemory", 200_000).start();
    let mut conn = RawConn::connect(server.port);
    let value = value();
    let mut written = 0;
    let refusal = loop {
        assert!(written < 10_000, "no refusal after {written} keys\n{}", server.output());
        match conn.call(&["SET", &format!("key:{written}"), &value]) {
            Reply::Simple(ok) if ok == "OK" => written += 1,
            other => break other,
        }
    };
    assert_eq!(refusal, Reply::Error(OOM.to_owned()), "after {written} keys");
    assert!(written > 100, "only {written} keys fit in 200 kB");
    assert_eq!(conn.call(&["GET", "key:0"]), Reply::Bulk(value.clone().into_bytes()), "reads still work");
    assert_eq!(conn.call(&["EXPIRE", "key:1", "100"]), Reply::Int(1), "EXPIRE still works");
    let refused_key = format!("key:{written}");
    assert_eq!(conn.call(&["HSET", &refused_key, "f", "v"]), Reply::Error(OOM.to_owned()), "the same shard");
    // Both shards are at their budget; deleting every key makes room on each.
    let keys: Vec<String> = (0..written).map(|i| format!("key:{i}")).collect();
    let mut del = vec!["DEL"];
    del.extend(keys.iter().map(String::as_str));
    assert_eq!(conn.call(&del), Reply::Int(written as i64), "DEL still works");
    assert_eq!(conn.call(&["SET", "again", &value]), Reply::Simple("OK".into()));
    assert_eq!(info_field(&mut conn, "memory", "maxmemory_policy"), "noeviction");
    assert_eq!(info_int(&mut conn, "stats", "evicted_keys"), 0);
}

#[test]
fn allkeys_lru_keeps_to_the_limit_and_keeps_the_hot_keys() {
    const LIMIT: u64 = 400_000;
    let server = Server::builder().limit("maxmemory", LIMIT).text_key("maxmemory_policy", "allkeys-lru").start();
    let mut conn = RawConn::connect(server.port);
    let value = value();
    for i in 0..600 {
        assert_eq!(conn.call(&["SET", &format!("old:{i}"), &value]), Reply::Simple("OK".into()));
    }
    // 6000 new keys (several times what fits), the first 100 old keys read after every 200.
    for batch in 0..30 {
        for i in 0..200 {
            assert_eq!(conn.call(&["SET", &format!("new:{batch}:{i}"), &value]), Reply::Simple("OK".into()));
        }
        for i in 0..100 {
            assert!(!conn.call(&["GET", &format!("old:{i}")]).is_error());
        }
        let used = info_int(&mut conn, "memory", "used_memory");
        assert!(used <= LIMIT + 2 * 1024, "used_memory {used} past maxmemory {LIMIT} by more than one write a shard");
    }
    let alive = |conn: &mut RawConn, range: std::ops::Range<usize>| {
        range.filter(|i| conn.call(&["EXISTS", &format!("old:{i}")]) == Reply::Int(1)).count()
    };
    let hot = alive(&mut conn, 0..100);
    let cold = alive(&mut conn, 100..600);
    assert!(hot >= 90, "{hot} of 100 hot keys kept");
    assert!(cold <= 50, "{cold} of 500 cold keys kept");
    let evicted = info_int(&mut conn, "stats", "evicted_keys");
    let keys = match conn.call(&["DBSIZE"]) {
        Reply::Int(n) => n as u64,
        other => panic!("DBSIZE answered {other:?}"),
    };
    assert_eq!(evicted + keys, 600 + 6000, "every key is either there or counted as evicted");
    assert_eq!(info_int(&mut conn, "memory", "maxmemory"), LIMIT);
    assert_eq!(info_field(&mut conn, "memory", "maxmemory_human"), "390.62K");
    assert_eq!(info_field(&mut conn, "memory", "maxmemory_policy"), "allkeys-lru");
}

#[test]
fn config_get_answers_the_memory_settings() {
    let server = Server::builder().text_key("maxmemory", "1mb").text_key("maxmemory_policy", "allkeys-lru").start();
    let mut conn = RawConn::connect(server.port);
    let answer = conn.call(&["CONFIG", "GET", "maxmemory*"]);
    let expected = ["maxmemory", "1048576", "maxmemory-policy", "allkeys-lru"];
    assert_eq!(answer, Reply::Array(expected.iter().map(|s| resp::bulk(s)).collect()));
    assert_eq!(info_int(&mut conn, "memory", "maxmemory"), 1 << 20);
}

#[test]
fn a_bad_size_is_one_line_with_a_hint() {
    let dir = nexus::scratch_dir();
    let path = dir.join("bad.toml");
    let config = format!(
        "{}[server]\nlisten = \"127.0.0.1:{}\"\nmaxmemory = \"lots\"\n",
        nexus::base_config(),
        nexus::free_port()
    );
    let out = nexus::run_with_config(&path, &config).output().expect("nexus runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a bad maxmemory must not start\n{err}");
    let line =
        err.lines().find(|l| l.contains("maxmemory")).unwrap_or_else(|| panic!("no line names maxmemory:\n{err}"));
    assert!(line.contains("\"100mb\""), "the line shows how to write a size: {line}");
    let _ = std::fs::remove_dir_all(&dir);
}
