//! The ingress side of the keyspace commands that span shards or move keys: KEYS, SCAN,
//! RENAME (the single-key ones are planned in `plan`).
//!
//! SCAN's cursor walks the shards in turn: its high bits (from bit
//! [`SCAN_POSITION_BITS`]) are the shard, its low 48 bits the position inside that shard's
//! store (see [`crate::kv::KvStore::scan`]); one call scans one shard, and the cursor moves to
//! the next shard once a shard is done, `0` after the last. A key present for the whole scan is
//! returned at least once, as Redis promises; the cursor values themselves differ from Redis's.
//!
//! RENAME asks the source key's owner, which takes the key out and, when the destination is
//! another shard's, hands it over in a second message (see `Partition::rename`): across shards
//! it is not atomic.
//!
//! Invariants: as in `command`, every path answers the request exactly once.

use super::combine::Combine;
use super::options::not_an_integer;
use super::{Ingress, Request};
use crate::kinds::parse_i64;
use crate::kv::exec::KeyCmd;
use crate::kv::SCAN_POSITION_BITS;
use crate::partition::PartOp;
use crate::resp::Value;
use bytes::Bytes;
use nexus_engine::agent::Ctx;
use std::mem::take;

/// SCAN's COUNT when none is given (Redis's).
const SCAN_COUNT: usize = 10;

/// A SCAN cursor: the shard, and the position inside it.
pub(super) fn split_cursor(cursor: u64) -> (usize, u64) {
    ((cursor >> SCAN_POSITION_BITS) as usize, cursor & ((1 << SCAN_POSITION_BITS) - 1))
}

/// The cursor after shard `shard` answered `next` (`None`: the shard is done), `0` at the end.
pub(super) fn next_cursor(shard: usize, next: Option<u64>, shards: usize) -> u64 {
    match next {
        Some(position) => ((shard as u64) << SCAN_POSITION_BITS) | position,
        None if shard + 1 < shards => ((shard + 1) as u64) << SCAN_POSITION_BITS,
        None => 0,
    }
}

/// A cursor as Redis's `strtoul` reads one: an optional sign (`-1` wraps to `u64::MAX`),
/// decimal digits, nothing else.
pub(super) fn parse_cursor(text: &[u8]) -> Option<u64> {
    let (negative, digits) = match text {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(if negative { n.wrapping_neg() } else { n })
}

impl Ingress {
    /// KEYS, SCAN, RENAME.
    pub(super) fn keyspace_command(&mut self, req: Request, name: &str, mut args: Vec<Bytes>, ctx: &mut Ctx<'_>) {
        match name {
            "keys" => {
                let ops = self.everywhere(|| PartOp::Key(KeyCmd::Keys(args[1].clone())));
                self.gather(req, ops, Combine::Concat, ctx);
            }
            "scan" => self.scan(req, &args, ctx),
            "rename" => {
                let (from, to) = (take(&mut args[1]), take(&mut args[2]));
                let (shard, to_owner) = (self.owner(&from), self.owner(&to));
                let to_shard = (to_owner != shard).then_some(to_owner);
                self.one(req, shard, PartOp::Rename { from, to, to_shard }, ctx);
            }
            _ => self.unknown_command(req, &args),
        }
    }

    /// SCAN cursor [MATCH pattern] [COUNT n] [TYPE type]: one step on the cursor's shard.
    fn scan(&mut self, req: Request, args: &[Bytes], ctx: &mut Ctx<'_>) {
        let Some(cursor) = parse_cursor(&args[1]) else {
            return self.done(req, Value::error("ERR invalid cursor"));
        };
        let (mut count, mut pattern, mut kind) = (SCAN_COUNT, None, None);
        let mut i = 2;
        while i < args.len() {
            let Some(arg) = args.get(i + 1) else { return self.done(req, Value::error("ERR syntax error")) };
            match args[i].to_ascii_uppercase().as_slice() {
                b"COUNT" => match parse_i64(arg) {
                    Some(n) if n >= 1 => count = n as usize,
                    Some(_) => return self.done(req, Value::error("ERR syntax error")),
                    None => return self.done(req, not_an_integer()),
                },
                b"MATCH" => pattern = Some(arg.clone()),
                b"TYPE" => kind = Some(Bytes::from(arg.to_ascii_lowercase())),
                _ => return self.done(req, Value::error("ERR syntax error")),
            }
            i += 2;
        }
        let shards = self.directory.shards();
        let (shard, from) = split_cursor(cursor);
        if shard >= shards {
            return self.done(req, Value::Array(vec![Value::bulk("0"), Value::Array(Vec::new())]));
        }
        let op = PartOp::Key(KeyCmd::Scan { from, count, pattern, kind });
        self.gather(req, vec![(shard, op)], Combine::Scan { shard, shards }, ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scan_cursor_walks_the_shards_in_turn() {
        assert_eq!(split_cursor(0), (0, 0));
        assert_eq!(next_cursor(0, Some(42), 2), 42);
        assert_eq!(split_cursor(42), (0, 42));
        let second = next_cursor(0, None, 2);
        assert_eq!(split_cursor(second), (1, 0));
        assert_eq!(split_cursor(next_cursor(1, Some(7), 2)), (1, 7));
        assert_eq!(next_cursor(1, None, 2), 0, "done after the last shard");
        assert_eq!((parse_cursor(b"-1"), parse_cursor(b"+5"), parse_cursor(b"x")), (Some(u64::MAX), Some(5), None));
    }
}
