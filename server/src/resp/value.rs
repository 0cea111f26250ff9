//! The reply type, [`Value`], and its encoder for RESP2 and RESP3.
//!
//! Owns: how every reply shape is written on the wire in each protocol version. RESP3-only shapes
//! (map, set, double, boolean, push, verbatim, null) fall back to the closest RESP2 shape, the way
//! Redis does when a client has not sent `HELLO 3`.
//!
//! Invariants:
//! - Encoding is infallible and only appends to the output buffer; it never reads past the value.
//! - Simple-string and error text never puts `\r` or `\n` on the wire: each is written as a space,
//!   so a reply can never break the framing of the stream.
//! - Aggregates are written depth first by recursion. Values are built by the server, never decoded
//!   from a client, so their depth is the server's choice.
//!
//! Threads: a `Value` is plain data; the connection task that owns it encodes it.

use std::borrow::Cow;
use std::io::Write as _;

use bytes::Bytes;

/// The RESP version a connection speaks: RESP2 until the client switches with `HELLO 3`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// RESP2, the protocol of every Redis client (the default).
    #[default]
    Resp2,
    /// RESP3, with maps, sets, doubles, booleans, nulls and push messages.
    Resp3,
}

/// One reply, as a tree of RESP values.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `+OK`.
    Ok,
    /// A simple string, `+text`. `\r` and `\n` in the text are sent as spaces.
    Simple(Cow<'static, str>),
    /// An error, `-text`: the whole line, code included (`"ERR unknown command 'x'"`). `\r` and `\n`
    /// in the text are sent as spaces.
    Error(Cow<'static, str>),
    /// An integer, `:n`.
    Int(i64),
    /// A bulk (binary-safe) string, `$len`.
    Bulk(Bytes),
    /// A bulk string as the store holds it (inline, or sharing a long value's bytes), sent as
    /// [`Value::Bulk`] is: a GET of a short value is answered without an allocation.
    Stored(crate::kv::Compact),
    /// The null bulk string: RESP2 `$-1`, RESP3 `_`.
    Nil,
    /// The null array: RESP2 `*-1`, RESP3 `_`.
    NilArray,
    /// An array, `*n`.
    Array(Vec<Value>),
    /// A map: RESP3 `%n` followed by n key/value pairs; RESP2 a flat array of 2n values.
    Map(Vec<(Value, Value)>),
    /// A set: RESP3 `~n`; RESP2 an array.
    Set(Vec<Value>),
    /// A double: RESP3 `,x`; RESP2 a bulk string holding the number's text. Infinities are written
    /// `inf` and `-inf`, NaN `nan`.
    Double(f64),
    /// A boolean: RESP3 `#t`/`#f`; RESP2 `:1`/`:0`.
    Bool(bool),
    /// An out-of-band push message: RESP3 `>n`; RESP2 an array.
    Push(Vec<Value>),
    /// Verbatim text (the bytes after the format prefix): RESP3 `=len\r\ntxt:...`; RESP2 a bulk
    /// string of the text.
    Verbatim(Bytes),
}

impl Value {
    /// An error reply; `text` is the whole line, its error code included (`"ERR syntax error"`).
    pub fn error(text: impl Into<Cow<'static, str>>) -> Value {
        Value::Error(text.into())
    }

    /// A simple-string reply, `+text`.
    pub fn simple(text: impl Into<Cow<'static, str>>) -> Value {
        Value::Simple(text.into())
    }

    /// A bulk-string reply.
    pub fn bulk(data: impl Into<Bytes>) -> Value {
        Value::Bulk(data.into())
    }

    /// Appends this value's encoding in `proto` to `out`.
    pub fn encode(&self, proto: Protocol, out: &mut Vec<u8>) {
        let resp3 = proto == Protocol::Resp3;
        match self {
            Value::Ok => out.extend_from_slice(b"+OK\r\n"),
            Value::Simple(text) => put_line(out, b'+', text),
            Value::Error(text) => put_line(out, b'-', text),
            Value::Int(n) => {
                out.push(b':');
                put_i64(out, *n);
                out.extend_from_slice(CRLF);
            }
            Value::Bulk(data) => put_bulk(out, data),
            Value::Stored(data) => put_bulk(out, data.as_slice()),
            Value::Nil if resp3 => out.extend_from_slice(b"_\r\n"),
            Value::Nil => out.extend_from_slice(b"$-1\r\n"),
            Value::NilArray if resp3 => out.extend_from_slice(b"_\r\n"),
            Value::NilArray => out.extend_from_slice(b"*-1\r\n"),
            Value::Array(items) => put_aggregate(out, b'*', items, proto),
            Value::Map(pairs) => {
                if resp3 {
                    put_header(out, b'%', pairs.len());
                } else {
                    put_header(out, b'*', pairs.len().saturating_mul(2));
                }
                for (key, value) in pairs {
                    key.encode(proto, out);
                    value.encode(proto, out);
                }
            }
            Value::Set(items) => put_aggregate(out, if resp3 { b'~' } else { b'*' }, items, proto),
            Value::Double(x) if resp3 => {
                out.push(b',');
                put_double(out, *x);
                out.extend_from_slice(CRLF);
            }
            Value::Double(x) => {
                let mut text = Vec::with_capacity(32);
                put_double(&mut text, *x);
                put_bulk(out, &text);
            }
            Value::Bool(b) if resp3 => out.extend_from_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
            Value::Bool(b) => out.extend_from_slice(if *b { b":1\r\n" } else { b":0\r\n" }),
            Value::Push(items) => put_aggregate(out, if resp3 { b'>' } else { b'*' }, items, proto),
            Value::Verbatim(text) if resp3 => {
                put_header(out, b'=', text.len().saturating_add(VERBATIM_FORMAT.len()));
                out.extend_from_slice(VERBATIM_FORMAT);
                out.extend_from_slice(text);
                out.extend_from_slice(CRLF);
            }
            Value::Verbatim(text) => put_bulk(out, text),
        }
    }
}

const CRLF: &[u8] = b"\r\n";

/// The format prefix of every verbatim string this encoder writes (plain text).
const VERBATIM_FORMAT: &[u8] = b"txt:";

/// Writes `tag`, then `text` with `\r` and `\n` replaced by spaces, then CRLF.
fn put_line(out: &mut Vec<u8>, tag: u8, text: &str) {
    out.push(tag);
    let bytes = text.as_bytes();
    if bytes.iter().any(|&b| b == b'\r' || b == b'\n') {
        out.extend(bytes.iter().map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }));
    } else {
        out.extend_from_slice(bytes);
    }
    out.extend_from_slice(CRLF);
}

/// Writes `$len\r\n`, the bytes, and CRLF.
fn put_bulk(out: &mut Vec<u8>, data: &[u8]) {
    put_header(out, b'$', data.len());
    out.extend_from_slice(data);
    out.extend_from_slice(CRLF);
}

/// Writes an aggregate header and its elements.
fn put_aggregate(out: &mut Vec<u8>, tag: u8, items: &[Value], proto: Protocol) {
    put_header(out, tag, items.len());
    for item in items {
        item.encode(proto, out);
    }
}

/// Writes `<tag><n>\r\n`.
fn put_header(out: &mut Vec<u8>, tag: u8, n: usize) {
    out.push(tag);
    put_u64(out, n as u64);
    out.extend_from_slice(CRLF);
}

/// Writes `n` in decimal.
fn put_i64(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    put_u64(out, n.unsigned_abs());
}

/// Writes `n` in decimal, without going through `fmt`.
fn put_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(u64_digits(n, &mut [0; 20]));
}

/// `n`'s decimal digits, written at the end of `buf` (u64::MAX has 20) without going through
/// `fmt`.
pub(crate) fn u64_digits(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut start = buf.len();
    loop {
        start -= 1;
        buf[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[start..]
}

/// Writes a double in a form both RESP3 clients and `strtod` read back exactly: the shortest
/// digits that round-trip, plain for everyday magnitudes and in exponent form (`1.5e300`) for very
/// large or small ones; `inf`, `-inf` and `nan` for the special values.
fn put_double(out: &mut Vec<u8>, x: f64) {
    if x.is_nan() {
        out.extend_from_slice(b"nan");
    } else if x.is_infinite() {
        out.extend_from_slice(if x > 0.0 { b"inf" } else { b"-inf" });
    } else {
        let magnitude = x.abs();
        // Writing into a Vec cannot fail.
        let _ = if magnitude == 0.0 || (1e-4..1e16).contains(&magnitude) {
            write!(out, "{x}")
        } else {
            write!(out, "{x:e}")
        };
    }
}
