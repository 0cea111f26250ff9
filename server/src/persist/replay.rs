//! Replay: rebuilding a shard's store from its log before the shard serves anyone.
//!
//! The log is read whole and applied record by record. A torn tail (the last frame cut short,
//! or the last frame's checksum wrong: a write a crash interrupted) is cut off the file and
//! reported; none of it is applied. A bad frame with more bytes after it is corruption in the
//! middle: replay refuses, naming the file and offset, and applies nothing further (the caller
//! does not start). A frame that looks torn (its length reaches past the end, or its checksum
//! fails and nothing follows it) but has a whole valid frame somewhere after it is damage too
//! (a damaged length field): a crash leaves only a prefix of its last write, not a valid frame.
//!
//! Zeros after the last record are the padding of the io_uring writer's last block (a shard
//! that stopped without closing its log): they are cut off without a report.
//!
//! Invariant: the store ends as the log's records, applied in order, leave it; keys whose
//! logged deadline passed are not loaded.

use super::record::{self, Frame, Record};
use super::PersistError;
use crate::kv::KvStore;
use std::path::Path;

/// What one log's replay did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Replayed {
    /// Records applied (the log's last LSN).
    pub records: u64,
    /// Bytes of the log after any truncation.
    pub bytes: u64,
    /// Bytes cut off a torn tail (0: none).
    pub truncated: u64,
    /// Zero bytes after the last record (a direct-I/O writer's padding, cut off silently).
    pub padding: u64,
}

/// Applies the log at `path` (a missing file is an empty log) to `kv`; `clocks` is the engine
/// clock and the wall clock now, in ms. Truncates a torn tail in the file.
pub fn replay_file(path: &Path, kv: &mut KvStore, clocks: (u64, u64)) -> Result<Replayed, PersistError> {
    let io = |source| PersistError::Io { path: path.display().to_string(), source };
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Replayed::default()),
        Err(e) => return Err(io(e)),
    };
    let data = bytes::Bytes::from(data);
    let replayed = replay_bytes(&data, kv, clocks).map_err(|offset| PersistError::Corrupt {
        path: path.display().to_string(),
        offset,
        size: data.len() as u64,
    })?;
    if replayed.truncated > 0 || replayed.padding > 0 {
        let f = std::fs::OpenOptions::new().write(true).open(path).map_err(io)?;
        f.set_len(replayed.bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    if replayed.truncated > 0 {
        tracing::warn!(
            "append-only log {}: torn tail of {} bytes at offset {} (an interrupted write) truncated; it was not applied",
            path.display(),
            replayed.truncated,
            replayed.bytes
        );
    }
    Ok(replayed)
}

/// Applies the records in `data` to `kv`; a bad frame in the middle is `Err(its offset)`.
pub fn replay_bytes(data: &bytes::Bytes, kv: &mut KvStore, clocks: (u64, u64)) -> Result<Replayed, u64> {
    // Room for a key per two records up front: a log is mostly overwrites or mostly new keys,
    // and a table sized for every record costs more (the kernel zeroes every page of it, and
    // it is shrunk again afterwards) than one doubling when all keys are distinct. A table
    // left more than three-quarters empty is given back afterwards.
    kv.reserve(count_frames(data) / 2);
    let replayed = apply_frames(data, kv, clocks);
    kv.shrink_if_sparse();
    replayed
}

/// How many frames `data` seems to hold (their length fields only, unchecked).
fn count_frames(data: &[u8]) -> usize {
    let (mut pos, mut n) = (0usize, 0);
    while let Some(h) = data.get(pos..pos.saturating_add(record::HEADER)) {
        pos = pos.saturating_add(record::HEADER + u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize);
        n += 1;
    }
    n
}

fn apply_frames(data: &bytes::Bytes, kv: &mut KvStore, clocks: (u64, u64)) -> Result<Replayed, u64> {
    let mut pos = 0;
    let mut records = 0;
    loop {
        match record::frame_at(data, pos) {
            Frame::Whole(_, next) => {
                let rec = record::decode_in(data, pos + record::HEADER..next).map_err(|_| pos as u64)?;
                apply(kv, rec, clocks);
                records += 1;
                pos = next;
            }
            Frame::End => return Ok(Replayed { records, bytes: pos as u64, ..Replayed::default() }),
            Frame::Padding => {
                return Ok(Replayed { records, bytes: pos as u64, padding: (data.len() - pos) as u64, truncated: 0 })
            }
            Frame::Short | Frame::Bad { last: true } if !whole_frame_after(data, pos + 1) => {
                return Ok(Replayed { records, bytes: pos as u64, truncated: (data.len() - pos) as u64, padding: 0 })
            }
            Frame::Short | Frame::Bad { .. } => return Err(pos as u64),
        }
    }
}

/// Whether a whole, valid frame starts anywhere from `from` on: then what looked like a torn
/// tail before it is damage in the middle (a crash leaves only a prefix of its last write).
fn whole_frame_after(data: &[u8], from: usize) -> bool {
    // A frame starts with its non-zero length: none starts in the zeros that end the log.
    let starts = data.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
    (from..starts).any(|p| matches!(record::frame_in(data, p), Frame::Whole(..)))
}

fn apply(kv: &mut KvStore, rec: Record, clocks: (u64, u64)) {
    match rec {
        Record::Put { key, value, expires_at } => kv.load(key, value, expires_at, clocks),
        Record::Del(key) => kv.unlogged_remove(&key),
        Record::Flush => kv.unlogged_clear(),
    }
}
