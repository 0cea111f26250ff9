//! RESP2/RESP3: the request parser and the reply encoder.
//!
//! RESP is Redis's wire protocol. Clients send each request as an array of bulk strings
//! (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`) or, from a terminal, as one inline line (`GET k\r\n`).
//! Replies are typed values: simple strings, errors, integers, bulk strings, arrays and a null.
//! RESP3, which a client asks for with `HELLO 3`, adds maps, sets, doubles, booleans, verbatim
//! strings, a single null and out-of-band push messages; requests look the same in both versions.
//!
//! This module owns only the bytes: [`RequestParser`] turns a connection's input into
//! [`Step`]s, and [`Value::encode`] turns replies into output for the connection's [`Protocol`].
//! It knows nothing about commands or connections.
//!
//! Invariants (each file states its own in detail):
//! - The parser never panics on any input, consumes no more than it is given, keeps its place
//!   between calls so work is linear in the input, and allocates only for bytes that have arrived
//!   within [`Limits`].
//! - A limit violation ([`Step::Rejected`]) leaves the stream in sync; only [`Step::Fatal`] ends
//!   it. Error replies use Redis's wording ([`ProtocolError::reply`]).
//! - The encoder never writes `\r` or `\n` inside a simple string or error line.
//!
//! Threads: everything here is plain data owned by one connection's task.

#![warn(missing_docs)]

mod parse;
mod value;

#[cfg(test)]
mod tests;

pub use parse::{
    Limits, ProtocolError, RequestParser, Step, ARGS_PREALLOC_MAX, HEADER_LINE_MAX, SLICE_MIN, UNAUTH_BULK_MAX,
    UNAUTH_MULTIBULK_MAX,
};
pub(crate) use value::u64_digits;
pub use value::{Protocol, Value};
