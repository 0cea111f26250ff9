//! Unit tests of the log: records round-trip, replay rebuilds the store, torn tails and
//! corruption are told apart, and a compaction's log replays to the store it was taken from.

use super::record::{self, Frame, Record};
use super::*;
use crate::kv::{ExpireCondition, Hash, KvStore, SetCondition, SetExpiry, Stored};
use bytes::Bytes;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

#[test]
fn records_round_trip() {
    let mut h = Hash::new();
    h.insert(b("f"), b("1"));
    h.insert(b("g"), b("2"));
    let records = vec![
        Record::Put { key: b("k"), value: Stored::Str(b("v")), expires_at: None },
        Record::Put { key: b("h"), value: Stored::Hash(h), expires_at: Some(1_700_000_000_000) },
        Record::Del(b("k")),
        Record::Flush,
    ];
    let mut log = Vec::new();
    for r in &records {
        match r {
            Record::Put { key, value, expires_at } => record::encode_put(&mut log, key, value, *expires_at),
            Record::Del(key) => record::encode_del(&mut log, key),
            Record::Flush => record::encode_flush(&mut log),
        }
    }
    let (mut pos, mut decoded) = (0, Vec::new());
    while let Frame::Whole(payload, next) = record::frame_at(&log, pos) {
        decoded.push(record::decode(payload).unwrap());
        pos = next;
    }
    assert_eq!(decoded, records);
    assert_eq!(record::frame_at(&log, pos), Frame::End);
}
