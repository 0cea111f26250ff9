//! A compact one-line text encoding of a [`SpanRecord`], to ship spans from a running server
//! to the `nexus trace` CLI over RESP (one bulk string per span).
//!
//! The line is eleven fields separated by single spaces, the name last:
//!
//! ```text
//! 1 <trace_id> <span_id> <parent_id> <hop> <shard> <agent> <enqueued> <dispatched> <finished> <name>
//! ```
//!
//! `1` is the format version; ids and numbers are lower-case hex (trace ids 32 digits, span
//! ids 16, the rest unpadded); `<hop>` is [`Hop::name`](nexus_engine::trace::Hop::name);
//! `<agent>` is the agent's 16-digit bits or `-` for none; `<name>` is percent-escaped.
//!
//! Invariants: [`encode`] never emits a space, CR, LF, tab, `%` or other ASCII control
//! character inside the name, so a line has exactly ten spaces and no line break;
//! `decode(&encode(r)) == Ok(r)` for every record; [`decode`] never panics and rejects
//! anything [`encode`] could not have produced, except that it also reads upper-case hex
//! digits and raw spaces in the name (the last field, so unambiguous).

use crate::record::{hop_from_name, SpanRecord};
use nexus_engine::agent::AgentId;
use std::fmt::Write as _;

/// The format version [`encode`] writes and [`decode`] accepts.
pub const WIRE_VERSION: &str = "1";

/// Fields in a line, the name included.
const FIELDS: usize = 11;

/// Why a line is not an encoded span.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The line has fewer fields than the format needs.
    #[error("span line has {found} fields, expected {expected}")]
    FieldCount {
        /// Fields the format has.
        expected: usize,
        /// Fields the line had.
        found: usize,
    },
    /// The line's first field is not a version this decoder reads.
    #[error("span line version {0:?} is not {WIRE_VERSION:?}")]
    Version(String),
    /// A numeric field is not hex of the right width.
    #[error("span line field {field} is not a hex number: {value:?}")]
    Hex {
        /// Which field.
        field: &'static str,
        /// Its text.
        value: String,
    },
    /// The hop field names no hop.
    #[error("span line hop {0:?} is not a known hop")]
    Hop(String),
    /// A `%` in the name is not followed by two hex digits.
    #[error("span name has a bad percent escape at byte {0}")]
    Escape(usize),
    /// The unescaped name is not UTF-8.
    #[error("span name is not UTF-8 once unescaped")]
    Utf8,
}

/// The record as one line (no trailing newline); see the module documentation.
pub fn encode(record: &SpanRecord) -> String {
    let mut line = String::with_capacity(128 + record.name.len());
    // Writing to a String cannot fail.
    let _ = write!(
        line,
        "{WIRE_VERSION} {:032x} {:016x} {:016x} {} {:x} ",
        record.trace_id,
        record.span_id,
        record.parent_id,
        record.hop.name(),
        record.shard
    );
    match record.agent {
        Some(agent) => {
            let _ = write!(line, "{:016x}", agent.to_bits());
        }
        None => line.push('-'),
    }
    let _ = write!(line, " {:x} {:x} {:x} ", record.enqueued_ns, record.dispatched_ns, record.finished_ns);
    escape_into(&record.name, &mut line);
    line
}

/// The record a line encodes (a trailing `\n` or `\r\n` is ignored).
pub fn decode(line: &str) -> Result<SpanRecord, WireError> {
    let line = line.strip_suffix('\n').unwrap_or(line);
    let line = line.strip_suffix('\r').unwrap_or(line);
    let fields: Vec<&str> = line.splitn(FIELDS, ' ').collect();
    if fields.len() != FIELDS {
        return Err(WireError::FieldCount { expected: FIELDS, found: fields.len() });
    }
    if fields[0] != WIRE_VERSION {
        return Err(WireError::Version(fields[0].to_owned()));
    }
    let hop = hop_from_name(fields[4]).ok_or_else(|| WireError::Hop(fields[4].to_owned()))?;
    let agent = match fields[6] {
        "-" => None,
        text => Some(AgentId::from_bits(hex_u64("agent", text)?)),
    };
    let shard = hex_u64("shard", fields[5])?;
    let shard = u16::try_from(shard).map_err(|_| WireError::Hex { field: "shard", value: fields[5].to_owned() })?;
    Ok(SpanRecord {
        trace_id: hex_u128("trace_id", fields[1])?,
        span_id: hex_u64("span_id", fields[2])?,
        parent_id: hex_u64("parent_id", fields[3])?,
        hop,
        name: unescape(fields[10])?,
        shard,
        agent,
        enqueued_ns: hex_u64("enqueued_ns", fields[7])?,
        dispatched_ns: hex_u64("dispatched_ns", fields[8])?,
        finished_ns: hex_u64("finished_ns", fields[9])?,
    })
}

/// Whether `text` is 1 to `max` hex digits and nothing else (`from_str_radix` alone would
/// take a leading `+`).
fn is_hex(text: &str, max: usize) -> bool {
    !text.is_empty() && text.len() <= max && text.bytes().all(|b| b.is_ascii_hexdigit())
}

fn hex_u64(field: &'static str, text: &str) -> Result<u64, WireError> {
    let bad = || WireError::Hex { field, value: text.to_owned() };
    if !is_hex(text, 16) {
        return Err(bad());
    }
    u64::from_str_radix(text, 16).map_err(|_| bad())
}

fn hex_u128(field: &'static str, text: &str) -> Result<u128, WireError> {
    let bad = || WireError::Hex { field, value: text.to_owned() };
    if !is_hex(text, 32) {
        return Err(bad());
    }
    u128::from_str_radix(text, 16).map_err(|_| bad())
}

/// Appends `name` with `%`, space and every ASCII control character as `%XX`.
fn escape_into(name: &str, out: &mut String) {
    for c in name.chars() {
        if c == '%' || c == ' ' || c.is_ascii_control() {
            let _ = write!(out, "%{:02X}", c as u32);
        } else {
            out.push(c);
        }
    }
}

/// The inverse of [`escape_into`].
fn unescape(text: &str) -> Result<String, WireError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let digits = bytes.get(i + 1..i + 3).ok_or(WireError::Escape(i))?;
            let digits = std::str::from_utf8(digits).map_err(|_| WireError::Escape(i))?;
            if !is_hex(digits, 2) {
                return Err(WireError::Escape(i));
            }
            out.push(u8::from_str_radix(digits, 16).map_err(|_| WireError::Escape(i))?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| WireError::Utf8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nexus_engine::trace::Hop;

    fn record(name: &str) -> SpanRecord {
        SpanRecord {
            trace_id: 0x0123_4567_89ab_cdef_0011_2233_4455_6677,
            span_id: 0xfeed_beef_0000_0001,
            parent_id: 0xfeed_beef_0000_0000,
            hop: Hop::Ask,
            name: name.to_owned(),
            shard: 3,
            agent: Some(AgentId::from_bits(0x0001_0000_0002_0003)),
            enqueued_ns: 1_000,
            dispatched_ns: 1_500,
            finished_ns: 9_999,
        }
    }

    #[test]
    fn records_round_trip() {
        let names = [
            "app::FrontMsg",
            "",
            "resp.connection",
            "with space and\nnewline\r\tand %25 percent",
            "core::option::Option<alloc::string::String>",
            "ünïcödé ✓",
            "%",
            "\u{7f}\u{0}",
        ];
        for name in names {
            let r = record(name);
            let line = encode(&r);
            assert!(!line.contains('\n') && !line.contains('\r'), "{line:?}");
            assert_eq!(line.matches(' ').count(), FIELDS - 1, "{line:?}");
            assert_eq!(decode(&line), Ok(r.clone()), "{line:?}");
            assert_eq!(decode(&format!("{line}\r\n")), Ok(r), "a line ending is ignored");
        }
        let root = SpanRecord { parent_id: 0, agent: None, hop: Hop::External, ..record("x") };
        assert_eq!(decode(&encode(&root)), Ok(root));
        let extreme = SpanRecord {
            trace_id: u128::MAX,
            span_id: u64::MAX,
            shard: u16::MAX,
            agent: Some(AgentId::from_bits(u64::MAX - 1)),
            enqueued_ns: u64::MAX,
            dispatched_ns: 0,
            finished_ns: u64::MAX,
            ..record("x")
        };
        assert_eq!(decode(&encode(&extreme)), Ok(extreme));
    }

    #[test]
    fn the_encoding_is_the_documented_one() {
        let line = encode(&record("a b"));
        assert_eq!(
            line,
            "1 0123456789abcdef0011223344556677 feedbeef00000001 feedbeef00000000 ask 3 0001000000020003 \
             3e8 5dc 270f a%20b"
        );
    }

    #[test]
    fn bad_lines_are_typed_errors() {
        let good = encode(&record("m::Msg"));
        let with = |i: usize, value: &str| {
            let mut f: Vec<String> = good.splitn(FIELDS, ' ').map(str::to_owned).collect();
            f[i] = value.to_owned();
            f.join(" ")
        };
        assert_eq!(decode(""), Err(WireError::FieldCount { expected: FIELDS, found: 1 }));
        assert!(matches!(decode("1 2 3"), Err(WireError::FieldCount { found: 3, .. })));
        assert_eq!(decode(&with(0, "2")), Err(WireError::Version("2".into())));
        assert!(matches!(decode(&with(1, "xyz")), Err(WireError::Hex { field: "trace_id", .. })));
        assert!(matches!(decode(&with(1, &"f".repeat(33))), Err(WireError::Hex { field: "trace_id", .. })));
        assert!(matches!(decode(&with(2, "+1")), Err(WireError::Hex { field: "span_id", .. })));
        assert!(matches!(decode(&with(3, "")), Err(WireError::Hex { field: "parent_id", .. })));
        assert_eq!(decode(&with(4, "teleport")), Err(WireError::Hop("teleport".into())));
        assert!(matches!(decode(&with(5, "10000")), Err(WireError::Hex { field: "shard", .. })));
        assert!(matches!(decode(&with(6, "none")), Err(WireError::Hex { field: "agent", .. })));
        assert!(matches!(decode(&with(7, "-1")), Err(WireError::Hex { field: "enqueued_ns", .. })));
        assert!(matches!(decode(&with(9, "1.5")), Err(WireError::Hex { field: "finished_ns", .. })));
        assert_eq!(decode(&with(10, "ab%2")), Err(WireError::Escape(2)));
        assert_eq!(decode(&with(10, "%zz")), Err(WireError::Escape(0)));
        assert_eq!(decode(&with(10, "%FF")), Err(WireError::Utf8));
        // The name is the last field, so a raw space there is unambiguous: taken as written.
        assert_eq!(decode(&with(10, "a b")).map(|r| r.name), Ok("a b".to_owned()));
        assert_eq!(decode(&with(1, "ABCDEF")).map(|r| r.trace_id), Ok(0xabcdef), "upper case is read");
    }
}
