//! How a gather's parts become one answer: [`Combine`], and the INFO text built from every
//! shard's figures.
//!
//! Invariants: the parts come in the order of the gather's operations, a failed part already
//! turned into its RESP error; the first error among the parts is the answer (for every
//! combination, a prebuilt one included); a combination never fails otherwise.

use super::Ingress;
use crate::front::Slot;
use crate::resp::Value;
use bytes::Bytes;

/// How a gather's parts make its answer. Travels inside the gather's closure, so it is `Send`.
pub(super) enum Combine {
    /// Sum of integers (DEL, EXISTS, DBSIZE).
    Sum,
    /// `+OK` when every part is (MSET, FLUSHALL).
    AllOk,
    /// MGET: part `p` answered the keys at `positions[p]`, in order.
    MGet { positions: Vec<Vec<usize>>, keys: usize },
    /// The answer is known already; the parts only confirm (SUBSCRIBE, UNSUBSCRIBE).
    Prebuilt(Vec<Value>),
    /// AGENT.LIST: merge the sorted name lists.
    Names,
    /// KEYS: every part's keys, one after the other.
    Concat,
    /// SCAN: shard `shard`'s step `[next position or -1, keys]` made a reply with a cursor.
    Scan { shard: usize, shards: usize },
    /// INFO: the text is built from the parts' figures.
    Info { sections: Vec<String> },
    /// BGREWRITEAOF: each shard answered 0 (no log), 1 (started) or 2 (one runs already).
    BgRewriteAof,
}

impl Ingress {
    /// The answer `combine` makes of `parts`.
    pub(super) fn combine(&self, combine: Combine, parts: Vec<Value>) -> Slot {
        if let Some(err) = parts.iter().find(|p| matches!(p, Value::Error(_))) {
            return Slot::One(err.clone());
        }
        match combine {
            Combine::Sum => {
                Slot::One(Value::Int(parts.iter().map(|p| if let Value::Int(n) = p { *n } else { 0 }).sum()))
            }
            Combine::AllOk => Slot::One(Value::Ok),
            Combine::MGet { positions, keys } => Slot::One(Value::Array(place_mget(parts, positions, keys))),
            Combine::Prebuilt(values) => Slot::Many(values),
            Combine::Names => Slot::One(Value::Array(merge_names(parts))),
            Combine::Concat => Slot::One(Value::Array(
                parts.into_iter().flat_map(|p| if let Value::Array(v) = p { v } else { Vec::new() }).collect(),
            )),
            Combine::Scan { shard, shards } => Slot::One(scan_reply(parts, shard, shards)),
            Combine::BgRewriteAof => Slot::One(bgrewriteaof_reply(&parts)),
            Combine::Info { sections } => Slot::One(Value::Verbatim(Bytes::from(self.info_text(&parts, &sections)))),
        }
    }

    /// INFO's text from every shard's `[keys, expires, sent, delivered, dead, agents,
    /// used_memory, evicted_keys, maxmemory, policy]`.
    /// `sections` empty: the default ones.
    fn info_text(&self, parts: &[Value], sections: &[String]) -> String {
        use std::fmt::Write;
        let figures: Vec<Vec<i64>> = parts
            .iter()
            .map(|p| match p {
                Value::Array(v) => v.iter().map(|x| if let Value::Int(n) = x { *n } else { 0 }).collect(),
                _ => vec![0; 10],
            })
            .collect();
        let totals = self.directory.totals();
        let want = |name: &str| {
            sections.is_empty()
                || sections.iter().any(|s| matches!(s.as_str(), "all" | "everything" | "default") || s == name)
        };
        let mut text = String::new();
        if want("server") {
            let _ = write!(
                text,
                "# Server\r\nnexus_version:{}\r\nredis_version:7.0.0\r\nredis_mode:standalone\r\nshards:{}\r\nexecutor:{}\r\ntcp_port:{}\r\nuptime_in_seconds:{}\r\n\r\n",
                env!("CARGO_PKG_VERSION"),
                self.directory.shards(),
                self.info.executor,
                self.info.port,
                self.started.elapsed().as_secs()
            );
        }
        if want("clients") {
            let _ = write!(
                text,
                "# Clients\r\nconnected_clients:{}\r\nrejected_max_clients:{}\r\nslow_clients_disconnected:{}\r\nclient_query_buffer_limit_disconnections:{}\r\nidle_clients_closed:{}\r\n\r\n",
                totals.connections,
                totals.rejected_max_clients,
                totals.slow_clients,
                totals.query_buffer_closes,
                totals.idle_closed
            );
        }
        if want("memory") {
            let used = figures.iter().map(|f| f.get(6).copied().unwrap_or(0)).sum::<i64>();
            let (max, policy) =
                figures.first().map_or((0, 0), |f| (f.get(8).copied().unwrap_or(0), f.get(9).copied().unwrap_or(0)));
            let policy = crate::kv::memory::policy_from_figure(policy);
            text.push_str(&crate::kv::memory::info_memory_section(used as u64, max as u64, policy));
        }
        if want("persistence") {
            let aof = figures.iter().map(|f| f.get(10..).unwrap_or(&[]));
            text.push_str(&crate::persist::info_section(aof));
        }
        if want("stats") {
            let dead: i64 = figures.iter().map(|f| f.get(4).copied().unwrap_or(0)).sum();
            let _ = write!(
                text,
                "# Stats\r\ntotal_commands_processed:{}\r\ntotal_connections_received:{}\r\nprotocol_errors:{}\r\nauth_failures:{}\r\npubsub_delivered:{}\r\npubsub_dropped:{}\r\ndead_letters:{}\r\n",
                totals.commands, totals.connections_total, totals.protocol_errors, totals.auth_failures, totals.pubsub_delivered, totals.pubsub_dropped, dead
            );
            for (shard, f) in figures.iter().enumerate() {
                let conns = self.directory.shard_stats(shard).snapshot().connections;
                let _ = write!(
                    text,
                    "shard{shard}:sent={},delivered={},dead_letters={},agents={},connections={conns}\r\n",
                    f.get(2).unwrap_or(&0),
                    f.get(3).unwrap_or(&0),
                    f.get(4).unwrap_or(&0),
                    f.get(5).unwrap_or(&0)
                );
            }
            let evicted: i64 = figures.iter().map(|f| f.get(7).copied().unwrap_or(0)).sum();
            let _ = write!(text, "evicted_keys:{evicted}\r\n\r\n");
        }
        if sections.iter().any(|s| matches!(s.as_str(), "cluster" | "all" | "everything")) {
            text.push_str(&crate::cluster_cmds::info_section(self.kinds.cluster()));
        }
        if want("keyspace") {
            let keys: i64 = figures.iter().map(|f| f.first().copied().unwrap_or(0)).sum();
            let expires: i64 = figures.iter().map(|f| f.get(1).copied().unwrap_or(0)).sum();
            text.push_str("# Keyspace\r\n");
            if keys > 0 {
                let _ = write!(text, "db0:keys={keys},expires={expires}\r\n");
            }
        }
        text
    }
}

/// BGREWRITEAOF's answer from every shard's 0 (no log), 1 (started) or 2 (one runs already).
fn bgrewriteaof_reply(parts: &[Value]) -> Value {
    let codes: Vec<i64> = parts.iter().map(|p| if let Value::Int(n) = p { *n } else { 0 }).collect();
    if codes.iter().all(|&c| c == 0) {
        Value::error("ERR Background append only file rewriting is not enabled")
    } else if codes.contains(&1) {
        Value::Simple("Background append only file rewriting started".into())
    } else {
        Value::error("ERR Background append only file rewriting already in progress")
    }
}

/// MGET's answer: each part's values put back at the positions of their keys.
fn place_mget(parts: Vec<Value>, positions: Vec<Vec<usize>>, keys: usize) -> Vec<Value> {
    let mut out = vec![Value::Nil; keys];
    for (part, pos) in parts.into_iter().zip(positions) {
        if let Value::Array(values) = part {
            for (v, p) in values.into_iter().zip(pos) {
                out[p] = v;
            }
        }
    }
    out
}

/// SCAN's answer: `[cursor, keys]` from the one part `[next position or -1, keys]`.
fn scan_reply(parts: Vec<Value>, shard: usize, shards: usize) -> Value {
    let (next, keys) = match parts.into_iter().next() {
        Some(Value::Array(mut v)) if v.len() == 2 => {
            let keys = v.pop().unwrap_or(Value::Array(Vec::new()));
            let next = if let Some(Value::Int(n)) = v.pop() { u64::try_from(n).ok() } else { None };
            (next, keys)
        }
        _ => (None, Value::Array(Vec::new())),
    };
    let cursor = super::keyspace::next_cursor(shard, next, shards);
    Value::Array(vec![Value::bulk(cursor.to_string()), keys])
}

/// AGENT.LIST's answer: every part's names, sorted.
fn merge_names(parts: Vec<Value>) -> Vec<Value> {
    let mut names: Vec<Value> = Vec::new();
    for p in parts {
        if let Value::Array(v) = p {
            names.extend(v);
        }
    }
    names.sort_by(|a, b| match (a, b) {
        (Value::Bulk(x), Value::Bulk(y)) => x.cmp(y),
        _ => std::cmp::Ordering::Equal,
    });
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>() {}

    #[test]
    fn combine_travels_between_threads() {
        assert_send::<Combine>();
    }

    #[test]
    fn mget_puts_each_value_back_at_its_key() {
        let parts = vec![Value::Array(vec![Value::bulk("a"), Value::Nil]), Value::Array(vec![Value::bulk("b")])];
        let out = place_mget(parts, vec![vec![0, 2], vec![1]], 3);
        assert_eq!(out, vec![Value::bulk("a"), Value::bulk("b"), Value::Nil]);
    }

    #[test]
    fn agent_names_are_merged_in_order() {
        let parts = vec![
            Value::Array(vec![Value::bulk("b"), Value::bulk("d")]),
            Value::Array(vec![Value::bulk("a"), Value::bulk("c")]),
        ];
        let names = merge_names(parts);
        assert_eq!(names, ["a", "b", "c", "d"].map(Value::bulk).to_vec());
    }
}
