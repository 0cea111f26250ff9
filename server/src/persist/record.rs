//! The log's records: what one write did to one key (or to the whole shard), framed with its
//! length and checksum.
//!
//! A frame is `len: u32 LE | crc32c(payload): u32 LE | payload` (`len` counts the payload). A
//! payload is a tag byte and its fields:
//! - `PUT_STR`: `expires_at: u64` (milliseconds since the UNIX epoch, 0 = never), key, value;
//! - `PUT_HASH`: `expires_at`, key, field count `u32`, then each field and value;
//! - `DEL`: key; `FLUSH`: nothing.
//!
//! Byte strings are `u32 LE` length then the bytes. Records describe the effect (the key's whole
//! state after the write, or its removal), never the command, so applying one twice, or applying
//! a later state over an earlier one, gives the same store: replay and compaction rely on it.

use crate::kv::{Hash, Stored};
use bytes::Bytes;

const PUT_STR: u8 = 1;
const PUT_HASH: u8 = 2;
const DEL: u8 = 3;
const FLUSH: u8 = 4;

/// Bytes of a frame's header (length and checksum).
pub const HEADER: usize = 8;

/// Longest payload a frame may declare (a larger length is corruption, not a record).
pub const MAX_PAYLOAD: usize = 1 << 30;

/// One decoded record.
#[derive(Clone, Debug, PartialEq)]
pub enum Record {
    /// The key now holds `value`, expiring at `expires_at` (wall-clock ms since the UNIX epoch).
    Put {
        /// The key.
        key: Bytes,
        /// Its value.
        value: Stored,
        /// Its deadline, if any.
        expires_at: Option<u64>,
    },
    /// The key is gone.
    Del(Bytes),
    /// Every key of the shard is gone (FLUSHALL).
    Flush,
}

/// A payload that does not decode (its checksum matched, so the writer wrote it so: a bug or a
/// log from another format).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed record payload")]
pub struct Malformed;

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

/// Appends one frame whose payload `body` writes.
fn frame(out: &mut Vec<u8>, body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0u8; HEADER]);
    body(out);
    let len = (out.len() - start - HEADER) as u32;
    let crc = super::crc::crc32c(&out[start + HEADER..]);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Appends a `PUT_STR` frame. The header and the fixed fields go out as one array and the
/// checksum is taken from the fields where they are (`crc::crc32c_record`): this runs
/// once per write of a string under persistence.
pub fn encode_put_str(out: &mut Vec<u8>, key: &[u8], value: &[u8], expires_at: Option<u64>) {
    let expires = expires_at.unwrap_or(0);
    let crc = super::crc::crc32c_record(PUT_STR, Some(expires), &[key, value]);
    let len = 1 + 8 + 4 + key.len() + 4 + value.len();
    let mut head = [0u8; HEADER + 13];
    head[..4].copy_from_slice(&(len as u32).to_le_bytes());
    head[4..8].copy_from_slice(&crc.to_le_bytes());
    head[8] = PUT_STR;
    head[9..17].copy_from_slice(&expires.to_le_bytes());
    head[17..].copy_from_slice(&(key.len() as u32).to_le_bytes());
    out.reserve(HEADER + len);
    out.extend_from_slice(&head);
    out.extend_from_slice(key);
    out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    out.extend_from_slice(value);
}

/// Appends a `PUT_HASH` frame.
pub fn encode_put_hash(out: &mut Vec<u8>, key: &[u8], hash: &Hash, expires_at: Option<u64>) {
    frame(out, |o| {
        o.push(PUT_HASH);
        o.extend_from_slice(&expires_at.unwrap_or(0).to_le_bytes());
        put_bytes(o, key);
        o.extend_from_slice(&(hash.len() as u32).to_le_bytes());
        for (f, v) in hash {
            put_bytes(o, f);
            put_bytes(o, v);
        }
    });
}

/// Appends the frame of a key's whole state.
pub fn encode_put(out: &mut Vec<u8>, key: &[u8], value: &Stored, expires_at: Option<u64>) {
    match value {
        Stored::Str(v) => encode_put_str(out, key, v, expires_at),
        Stored::Hash(h) => encode_put_hash(out, key, h, expires_at),
    }
}

/// Appends a `DEL` frame.
pub fn encode_del(out: &mut Vec<u8>, key: &[u8]) {
    let crc = super::crc::crc32c_record(DEL, None, &[key]);
    let len = 1 + 4 + key.len();
    out.reserve(HEADER + len);
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.extend_from_slice(&crc.to_le_bytes());
    out.push(DEL);
    out.extend_from_slice(&(key.len() as u32).to_le_bytes());
    out.extend_from_slice(key);
}

/// Appends a `FLUSH` frame.
pub fn encode_flush(out: &mut Vec<u8>) {
    let crc = super::crc::crc32c_record(FLUSH, None, &[]);
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&crc.to_le_bytes());
    out.push(FLUSH);
}

/// Reads a payload's fields in order: `.0` is the buffer holding the payload, `.1` the offset
/// read up to, `.2` where the payload ends.
struct Reader<'a>(&'a Bytes, usize, usize);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], Malformed> {
        if self.2 - self.1 < n {
            return Err(Malformed);
        }
        self.1 += n;
        Ok(&self.0[self.1 - n..self.1])
    }

    fn u32(&mut self) -> Result<u32, Malformed> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, Malformed> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// A byte string: a copy when shorter than `SLICE_MIN` (cheaper than sharing, and what the
    /// store keeps as it is), else a slice of the payload's buffer (which the store copies).
    fn bytes(&mut self) -> Result<Bytes, Malformed> {
        let n = self.u32()? as usize;
        let b = self.take(n)?;
        if n < crate::resp::SLICE_MIN {
            return Ok(Bytes::copy_from_slice(b));
        }
        Ok(self.0.slice(self.1 - n..self.1))
    }

    fn left(&self) -> usize {
        self.2 - self.1
    }
}

/// Decodes one payload (its checksum already checked). Keys and values of `SLICE_MIN` bytes or
/// more are slices of `payload`'s buffer (the store copies them as it keeps them), shorter ones
/// copies.
pub fn decode(payload: &Bytes) -> Result<Record, Malformed> {
    decode_in(payload, 0..payload.len())
}

/// Decodes the payload at `range` of `buf` (its checksum already checked) as [`decode`] does:
/// replay decodes in place, without a handle on each payload.
pub fn decode_in(buf: &Bytes, range: std::ops::Range<usize>) -> Result<Record, Malformed> {
    let &tag = buf.get(range.start).filter(|_| range.start < range.end).ok_or(Malformed)?;
    if range.end > buf.len() {
        return Err(Malformed);
    }
    let mut r = Reader(buf, range.start + 1, range.end);
    let record = match tag {
        PUT_STR | PUT_HASH => {
            let at = r.u64()?;
            let key = r.bytes()?;
            let value = if tag == PUT_STR {
                Stored::Str(r.bytes()?.into())
            } else {
                let n = r.u32()? as usize;
                let mut h = Hash::with_capacity(n.min(r.left() / 8));
                for _ in 0..n {
                    let f = r.bytes()?;
                    h.insert(f, r.bytes()?);
                }
                Stored::Hash(Box::new(h))
            };
            Record::Put { key, value, expires_at: (at != 0).then_some(at) }
        }
        DEL => Record::Del(r.bytes()?),
        FLUSH => Record::Flush,
        _ => return Err(Malformed),
    };
    if r.left() != 0 {
        return Err(Malformed);
    }
    Ok(record)
}

/// What is at one offset of a log.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A whole frame whose checksum matches: its payload and the offset after it.
    Whole(&'a [u8], usize),
    /// The log ends here.
    End,
    /// Only zero bytes follow: the padding of a direct-I/O write's last block (no frame has a
    /// zero length, so zeros never start a record).
    Padding,
    /// A frame cut short by the end of the log (a write a crash interrupted).
    Short,
    /// A frame whose length is impossible or whose checksum does not match; `last` says whether
    /// it reaches the end of the log, or only zeros follow it (a torn last write), or other bytes
    /// follow it (corruption).
    Bad {
        /// Whether nothing follows the frame.
        last: bool,
    },
}

/// The frame at `pos` of `log`.
pub fn frame_at(log: &[u8], pos: usize) -> Frame<'_> {
    let rest = &log[pos.min(log.len())..];
    if !rest.is_empty() && rest.iter().all(|&b| b == 0) {
        return Frame::Padding;
    }
    frame_in(log, pos)
}

/// [`frame_at`] without the padding check (zeros at `pos` are a bad frame).
pub fn frame_in(log: &[u8], pos: usize) -> Frame<'_> {
    let rest = &log[pos.min(log.len())..];
    if rest.is_empty() {
        return Frame::End;
    }
    if rest.len() < HEADER {
        return Frame::Short;
    }
    let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
    let crc = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
    if len == 0 || len > MAX_PAYLOAD {
        return Frame::Bad { last: false };
    }
    if rest.len() < HEADER + len {
        return Frame::Short;
    }
    let payload = &rest[HEADER..HEADER + len];
    if super::crc::crc32c(payload) != crc {
        // Zeros after it are a direct-I/O writer's padding: it is still the last frame.
        return Frame::Bad { last: rest[HEADER + len..].iter().all(|&b| b == 0) };
    }
    Frame::Whole(payload, pos + HEADER + len)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The frames checksummed from their fields are byte for byte the frames written whole and
    /// checksummed after (the format logs on disk already have), and they decode back.
    #[test]
    fn frames_of_parts_match_frames_written_whole() {
        let cases: [(&[u8], &[u8], Option<u64>); 4] = [
            (b"k", b"v", None),
            (b"", b"", Some(1)),
            (b"key:000000012345", b"xxx", Some(u64::MAX)),
            (&[7; 300], &[0; 41], None),
        ];
        for (key, value, expires_at) in cases {
            let mut parts = Vec::new();
            encode_put_str(&mut parts, key, value, expires_at);
            let mut whole = Vec::new();
            frame(&mut whole, |o| {
                o.push(PUT_STR);
                o.extend_from_slice(&expires_at.unwrap_or(0).to_le_bytes());
                put_bytes(o, key);
                put_bytes(o, value);
            });
            assert_eq!(parts, whole, "PUT_STR of {} key bytes", key.len());
            let payload = Bytes::copy_from_slice(&parts[HEADER..]);
            let expected = Record::Put {
                key: Bytes::copy_from_slice(key),
                value: Stored::Str(crate::kv::Compact::copy_from_slice(value)),
                expires_at,
            };
            assert_eq!(decode(&payload), Ok(expected));
            let (mut del, mut del_whole) = (Vec::new(), Vec::new());
            encode_del(&mut del, key);
            frame(&mut del_whole, |o| {
                o.push(DEL);
                put_bytes(o, key);
            });
            assert_eq!(del, del_whole);
        }
        let (mut flush, mut flush_whole) = (Vec::new(), Vec::new());
        encode_flush(&mut flush);
        frame(&mut flush_whole, |o| o.push(FLUSH));
        assert_eq!(flush, flush_whole);
    }
}
