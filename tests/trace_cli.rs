//! `nexus trace` against a running `nexus run`: the acceptance path of message tracing.
//!
//! With `nexus run` serving (two shards), `nexus trace --duration 2s --out t.json` runs while a
//! client sends `GET` for a key owned by the other shard than its connection's. The file must
//! be Chrome Trace Event JSON with a `traceEvents` array, and the GET's trace must show every
//! hop of its path with its parent and times: the connection (root), the ingress agent, the
//! owning partition on the other shard, the reply and the answer back on the connection's
//! shard, and the connection's reply. A second test checks `requirepass` guards it.

/// The executor the fixture's servers run on.
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

use client::{owner_of, q, wait_until};
use nexus::{Server, SHARDS};
use serde_json::Value;
use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The `nexus trace` command for `server`, writing to `out`.
fn trace_command(server: &Server, out: &std::path::Path, duration: &str, extra: &[&str]) -> Command {
    let mut cmd = nexus::nexus();
    cmd.args(["trace", "--connect", &format!("127.0.0.1:{}", server.port), "--duration", duration, "--out"])
        .arg(out)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// `NEXUS.TRACE STATUS`'s sample, as text.
fn sampling(con: &mut redis::Connection) -> String {
    let status: Vec<redis::Value> = q(con, &["NEXUS.TRACE", "STATUS"]);
    match status.get(1) {
        Some(redis::Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
        other => panic!("STATUS answered {other:?}"),
    }
}

/// The complete (`X`) events of the file, each with its args.
fn hop_events(json: &Value) -> Vec<&Value> {
    let events = json["traceEvents"].as_array().expect("a traceEvents array");
    events.iter().filter(|e| e["ph"] == "X").collect()
}

fn arg<'a>(event: &'a Value, key: &str) -> &'a str {
    event["args"][key].as_str().unwrap_or_else(|| panic!("no args.{key} in {event}"))
}

#[test]
fn a_get_across_shards_shows_every_hop_of_its_path() {
    let server = Server::start();
    let mut con = server.connect();
    let id: i64 = q(&mut con, &["CLIENT", "ID"]);
    let conn_shard = (id >> 40) as usize;
    let key = (0..).map(|i| format!("traced{i}")).find(|k| owner_of(k, SHARDS) != conn_shard).expect("a key");
    let _: String = q(&mut con, &["SET", &key, "value"]);

    let dir = nexus::scratch_dir();
    let out = dir.join("t.json");
    let child = trace_command(&server, &out, "2s", &["--sample", "1"]).spawn().expect("nexus trace starts");
    wait_until(Duration::from_secs(10), "sampling on", || sampling(&mut con) == "1");
    let value: String = q(&mut con, &["GET", &key]);
    assert_eq!(value, "value");
    let output = child.wait_with_output().expect("nexus trace ends");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "nexus trace failed: {stdout}\n{stderr}\n{}", server.output());
    assert!(stdout.contains("slowest paths"), "{stdout}");
    assert_eq!(sampling(&mut con), "0", "sampling is back to the config's");

    let json: Value = serde_json::from_slice(&std::fs::read(&out).expect("the file")).expect("JSON");
    let hops = hop_events(&json);
    let root = hops
        .iter()
        .find(|e| arg(e, "type") == "get" && arg(e, "parent_id") == "0000000000000000")
        .unwrap_or_else(|| panic!("the GET's root span in {json}"));
    let trace = arg(root, "trace_id");
    let in_trace: Vec<&Value> = hops.iter().copied().filter(|e| arg(e, "trace_id") == trace).collect();
    let by_span: HashMap<&str, &Value> = in_trace.iter().map(|e| (arg(e, "span_id"), *e)).collect();
    let child_of = |parent: &Value, what: &dyn Fn(&Value) -> bool| -> &Value {
        in_trace
            .iter()
            .copied()
            .find(|e| arg(e, "parent_id") == arg(parent, "span_id") && what(e))
            .unwrap_or_else(|| panic!("no child of {parent} in {in_trace:#?}"))
    };
    let tid = |e: &Value| e["tid"].as_u64().expect("a tid") as usize;
    let ts = |e: &Value| e["ts"].as_f64().expect("a ts");
    let ingress = child_of(root, &|e| arg(e, "type") == "resp.ingress");
    let partition = child_of(ingress, &|e| arg(e, "hop") == "ask");
    let reply = child_of(partition, &|e| arg(e, "hop") == "reply");
    let answer = child_of(reply, &|e| arg(e, "hop") == "answer");
    let written = child_of(answer, &|e| arg(e, "type") == "resp.reply");
    assert_eq!(tid(root), conn_shard, "the connection's hop is on its shard");
    assert_eq!(tid(ingress), conn_shard);
    assert_eq!(tid(partition), owner_of(&key, SHARDS), "the partition hop is on the key's shard");
    assert_ne!(tid(partition), conn_shard);
    assert!(arg(partition, "type").contains("PartMsg"), "{partition}");
    assert_eq!((tid(reply), tid(answer), tid(written)), (conn_shard, conn_shard, conn_shard));
    // Times: each hop starts no earlier than the one that sent it.
    let path = [root, ingress, partition, reply, answer, written];
    for pair in path.windows(2) {
        assert!(ts(pair[0]) <= ts(pair[1]), "{} after {}", pair[1], pair[0]);
    }
    let end = |e: &Value| ts(e) + e["dur"].as_f64().expect("a dur");
    assert!(end(root) >= ts(written), "the root covers the command: {root} {written}");
    assert!(by_span.len() >= path.len());
    let flows = json["traceEvents"].as_array().map_or(0, |a| a.iter().filter(|e| e["ph"] == "f").count());
    assert!(flows >= path.len() - 1, "arrows link the hops");
}

#[test]
fn requirepass_guards_nexus_trace() {
    let server = Server::builder().requirepass("s3cret").start();
    let dir = nexus::scratch_dir();
    let out = dir.join("t.json");
    let refused =
        trace_command(&server, &out, "200ms", &[]).env_remove("REDISCLI_AUTH").output().expect("nexus trace runs");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("needs a password") && stderr.contains("hint"), "{stderr}");
    let wrong = trace_command(&server, &out, "200ms", &["--password", "nope"]).output().expect("runs");
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("AUTH was refused"), "{wrong:?}");
    let ok = trace_command(&server, &out, "200ms", &[]).env("REDISCLI_AUTH", "s3cret").output().expect("runs");
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let json: Value = serde_json::from_slice(&std::fs::read(&out).expect("the file")).expect("JSON");
    assert!(json["traceEvents"].is_array());
}

#[test]
fn bad_arguments_and_no_server_are_one_line_errors() {
    let bad = nexus::nexus().args(["trace", "--sample", "2"]).output().expect("runs");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a probability"));
    let port = nexus::free_port();
    let gone = nexus::nexus()
        .args(["trace", "--connect", &format!("127.0.0.1:{port}"), "--duration", "100ms"])
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&gone.stderr);
    assert_eq!(gone.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot reach nexus") && stderr.contains("hint"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}
