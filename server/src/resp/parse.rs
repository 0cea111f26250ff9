//! The incremental request parser: RESP arrays of bulk strings and inline commands.
//!
//! Owns: turning the bytes a client sends into whole requests, one [`Step`] per call, and the
//! limits a request must respect ([`Limits`]).
//!
//! How a call goes:
//! 1. Between requests, a `*` starts a multibulk request (`*N\r\n` then N `$len\r\n<bytes>\r\n`);
//!    any other byte starts an inline command, one line split on blanks with Redis's quoting rules.
//!    Empty lines, `*0` and `*-1` are skipped silently.
//! 2. Inside a multibulk request the parser consumes each header as soon as it has read it and
//!    each argument as soon as its bytes and CRLF have all arrived; it keeps a partial argument
//!    unconsumed, so the caller's buffer never needs more than one argument plus a header.
//! 3. A request that breaks a limit is answered with [`Step::Rejected`] as soon as the offending
//!    header is read; the parser then skips the rest of that request by itself, over as many calls
//!    as it takes, knowing every length from the headers. The stream stays in sync.
//! 4. Anything it cannot resynchronise from is [`Step::Fatal`]; the parser then stays failed and
//!    repeats that error on every call.
//!
//! Two entry points share one state machine: [`RequestParser::next`] reads a borrowed slice and
//! copies each argument; [`RequestParser::next_from`] consumes the front of a connection's
//! `BytesMut` read buffer and hands out each argument of [`SLICE_MIN`] bytes or more as a `Bytes`
//! slice of it (a reference count, no copy), copying only the small ones.
//!
//! Invariants:
//! - `next` never panics and never consumes more than `buf.len()` bytes. Each call either returns
//!   a command, a rejection or a fatal error, or consumes what it can and asks for more bytes.
//! - Work is linear in the bytes received: the parser keeps its place (the arguments read so far,
//!   the length of the argument in progress, how far it has looked for an inline line's end), so a
//!   request arriving in many small reads costs no more than one arriving whole.
//! - Memory: the parser allocates only for bytes that have arrived and that the limits permit. A
//!   declared count or length never sizes an allocation beyond [`ARGS_PREALLOC_MAX`]; skipping a
//!   rejected request allocates nothing.
//! - After `Incomplete` the unconsumed tail is shorter than the largest thing the parser may
//!   wait for whole: an inline line (`max_inline`), an argument and its CRLF (`max_bulk + 2`), or a
//!   header line (66 bytes).
//! - The result does not depend on how the stream is cut into reads: any chunking yields the
//!   same sequence of commands, rejections and errors.
//!
//! Threads: a parser belongs to one connection and is used by that connection's task only.

use super::Value;
use bytes::{Buf, Bytes, BytesMut};

/// Limits on one request, in bytes and counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest argument of a multibulk request, and largest argument of an inline command, in
    /// bytes. Default 16 MiB.
    pub max_bulk: usize,
    /// Most arguments in one request. Default 1,048,576.
    pub max_args: usize,
    /// Longest inline command line, in bytes, without its line ending. Default 64 KiB.
    pub max_inline: usize,
}

impl Limits {
    /// Default `max_bulk`: 16 MiB.
    pub const DEFAULT_MAX_BULK: usize = 16 * 1024 * 1024;
    /// Default `max_args`: 1,048,576 (Redis's limit for an unauthenticated client is the same).
    pub const DEFAULT_MAX_ARGS: usize = 1024 * 1024;
    /// Default `max_inline`: 64 KiB (Redis's `PROTO_INLINE_MAX_SIZE`).
    pub const DEFAULT_MAX_INLINE: usize = 64 * 1024;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk: Self::DEFAULT_MAX_BULK,
            max_args: Self::DEFAULT_MAX_ARGS,
            max_inline: Self::DEFAULT_MAX_INLINE,
        }
    }
}

/// Longest `*N` or `$N` header line, type byte included and CRLF excluded, in bytes.
pub const HEADER_LINE_MAX: usize = 64;

/// Largest argument vector allocated up front from a declared count; beyond it the vector grows
/// as arguments arrive.
pub const ARGS_PREALLOC_MAX: usize = 16;

/// Largest multibulk count accepted from a client that has not authenticated (Redis's 10).
pub const UNAUTH_MULTIBULK_MAX: usize = 10;

/// Longest argument accepted from a client that has not authenticated (Redis's 16384 bytes).
pub const UNAUTH_BULK_MAX: u64 = 16 * 1024;

/// Smallest argument [`RequestParser::next_from`] hands out as a slice of the read buffer
/// rather than a copy. Sharing a buffer costs two atomic reference-count updates (taking the
/// slice, dropping it); copying a small argument costs an allocation from the thread's
/// allocator and a short `memcpy`. Profiled on GET -P 16, slicing every argument spent 9% of
/// the shard's time in `bytes`' sharing against 3% for allocating and copying, so only
/// arguments long enough for the copy to matter are shared.
pub const SLICE_MIN: usize = 1024;

/// Largest multibulk count accepted at all (Redis's `INT_MAX`); a larger one is fatal.
const MULTIBULK_COUNT_MAX: i64 = i32::MAX as i64;

/// What one call to [`RequestParser::next`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// More bytes are needed. The call may still have consumed some (headers, whole arguments,
    /// skipped bytes, empty lines).
    Incomplete,
    /// One whole request: the command name and its arguments. Never empty. From
    /// [`RequestParser::next`] each is a copy; from [`RequestParser::next_from`] one of
    /// [`SLICE_MIN`] bytes or more is a slice of the read buffer, which a store copies before
    /// keeping it (see `kv`).
    Command(Vec<Bytes>),
    /// The request broke a limit. Answer with [`ProtocolError::reply`]; the stream is still in
    /// sync, and the parser skips the rest of the request itself on later calls.
    Rejected(ProtocolError),
    /// The stream cannot be resynchronised: answer with [`ProtocolError::reply`] and close.
    Fatal(ProtocolError),
}

/// Why a request was rejected or the stream abandoned. `Display` is Redis's wording, without the
/// `ERR ` code that [`ProtocolError::reply`] adds.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// A `*N` count that is not a number, is negative (other than `-1`) or is above `i32::MAX`.
    #[error("Protocol error: invalid multibulk length")]
    InvalidMultibulkLength,
    /// A `$N` length that is not a number or is negative.
    #[error("Protocol error: invalid bulk length")]
    InvalidBulkLength,
    /// An argument of a multibulk request did not start with `$`. Printable ASCII is shown as
    /// itself, any other byte as `\xHH`.
    #[error("Protocol error: expected '$', got '{}'", show_byte(*got))]
    ExpectedBulk {
        /// The byte found instead.
        got: u8,
    },
    /// A `*N` header line longer than [`HEADER_LINE_MAX`] bytes.
    #[error("Protocol error: too big mbulk count string")]
    MultibulkCountTooLong,
    /// A `$N` header line longer than [`HEADER_LINE_MAX`] bytes.
    #[error("Protocol error: too big bulk count string")]
    BulkCountTooLong,
    /// An argument's bytes were not followed by CRLF.
    #[error("Protocol error: bulk string not terminated by CRLF")]
    MissingCrlf,
    /// An inline command line longer than `max_inline`.
    #[error("Protocol error: too big inline request")]
    InlineTooLong,
    /// An inline command with an unterminated quote, or a closing quote followed by something
    /// other than a blank.
    #[error("Protocol error: unbalanced quotes in request")]
    UnbalancedQuotes,
    /// An argument longer than `max_bulk` (rejected, not fatal).
    #[error("Protocol error: bulk string of {len} bytes exceeds max_bulk ({max})")]
    BulkTooLong {
        /// The declared length.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// A `*N` count above [`UNAUTH_MULTIBULK_MAX`] before the client authenticated (fatal, as
    /// in Redis).
    #[error("Protocol error: unauthenticated multibulk length")]
    UnauthenticatedMultibulkLength,
    /// A `$N` length above [`UNAUTH_BULK_MAX`] before the client authenticated (fatal, as in
    /// Redis).
    #[error("Protocol error: unauthenticated bulk length")]
    UnauthenticatedBulkLength,
    /// More arguments than `max_args` (rejected, not fatal).
    #[error("Protocol error: {count} arguments exceed max_args ({max})")]
    TooManyArgs {
        /// The declared or counted number of arguments.
        count: u64,
        /// The limit.
        max: usize,
    },
}

impl ProtocolError {
    /// The error reply to send, in Redis's wording (`"ERR Protocol error: ..."`).
    pub fn reply(&self) -> Value {
        Value::error(format!("ERR {self}"))
    }

    /// Whether the stream is lost after this error (otherwise only the request was rejected).
    pub fn is_fatal(&self) -> bool {
        !matches!(self, ProtocolError::BulkTooLong { .. } | ProtocolError::TooManyArgs { .. })
    }
}

/// Shows one byte inside an error message: printable ASCII as itself, anything else as `\xHH`.
fn show_byte(byte: u8) -> String {
    if byte.is_ascii_graphic() || byte == b' ' {
        char::from(byte).to_string()
    } else {
        format!("\\x{byte:02x}")
    }
}

/// Where the parser is in the stream.
#[derive(Debug)]
enum State {
    /// Between requests.
    Idle,
    /// Inside an accepted multibulk request.
    Array {
        /// The arguments completed so far.
        args: Vec<Bytes>,
        /// Arguments whose header has not been read yet.
        left: usize,
        /// The length of the argument whose header has been read and whose bytes have not all
        /// arrived; at most `max_bulk`.
        bulk: Option<usize>,
    },
    /// Skipping the rest of a rejected multibulk request.
    Skip {
        /// Arguments whose header has not been read yet. Never zero while `bulk` is `None`.
        left: u64,
        /// Bytes of the current argument still to skip, its CRLF excluded.
        bulk: Option<u64>,
    },
    /// The stream is lost; every call repeats the error.
    Failed(ProtocolError),
}

/// What one state step did; the main loop goes on after `More` and returns after `Stop`.
enum Flow {
    /// Consumed this many bytes (possibly none, after a state change) and may go on.
    More(usize),
    /// Consumed this many bytes and has a result for the caller.
    Stop(usize, Step),
}

/// Where the parser reads: a borrowed slice ([`RequestParser::next`], arguments copied) or a
/// connection's read buffer ([`RequestParser::next_from`], arguments sliced off it).
trait Source {
    /// The bytes not consumed yet.
    fn rest(&self) -> &[u8];
    /// Consumes the next `n` bytes (at most `rest().len()`) as one argument.
    fn take(&mut self, n: usize) -> Bytes;
    /// Consumes the next `n` bytes (at most `rest().len()`).
    fn skip(&mut self, n: usize);
}

/// A borrowed slice and how much of it is consumed.
struct Borrowed<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Source for Borrowed<'_> {
    fn rest(&self) -> &[u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    fn take(&mut self, n: usize) -> Bytes {
        let arg = Bytes::copy_from_slice(&self.rest()[..n]);
        self.pos += n;
        arg
    }

    fn skip(&mut self, n: usize) {
        self.pos += n;
    }
}

/// The waiting bytes at the front of a connection's read buffer, `buf[pos..end]`; `removed`
/// bytes were split off the front already (for large arguments).
struct Window<'a> {
    buf: &'a mut BytesMut,
    pos: usize,
    end: usize,
    removed: usize,
    /// Arguments this long or longer are sliced, shorter ones copied.
    slice_min: usize,
}

impl Source for Window<'_> {
    fn rest(&self) -> &[u8] {
        &self.buf[self.pos..self.end]
    }

    fn take(&mut self, n: usize) -> Bytes {
        if n < self.slice_min {
            let arg = Bytes::copy_from_slice(&self.buf[self.pos..self.pos + n]);
            self.pos += n;
            return arg;
        }
        self.buf.advance(self.pos);
        let arg = self.buf.split_to(n).freeze();
        self.removed += self.pos + n;
        self.end -= self.pos + n;
        self.pos = 0;
        arg
    }

    fn skip(&mut self, n: usize) {
        self.pos += n;
    }
}

/// The incremental parser for one connection's requests. See the module docs.
#[derive(Debug)]
pub struct RequestParser {
    limits: Limits,
    state: State,
    /// In `Idle`, how many bytes at the start of the buffer are known to hold no `\n` (the part of
    /// an inline line already searched), so each byte is searched once.
    inline_searched: usize,
    /// The client has not authenticated: Redis's tight limits apply (see
    /// [`RequestParser::set_unauthenticated`]).
    unauthenticated: bool,
    /// Bytes of the arguments of the request in progress held so far.
    held: usize,
    /// [`RequestParser::next_from`] slices arguments this long or longer ([`SLICE_MIN`]).
    slice_min: usize,
}

impl RequestParser {
    /// A parser between requests, enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        RequestParser {
            limits,
            state: State::Idle,
            inline_searched: 0,
            unauthenticated: false,
            held: 0,
            slice_min: SLICE_MIN,
        }
    }

    /// Makes [`Self::next_from`] slice arguments of `len` bytes or more instead of
    /// [`SLICE_MIN`] (`usize::MAX`: copy all, 0: slice all), so tests and the fuzz target reach
    /// both paths with short inputs.
    pub fn with_slice_min(mut self, len: usize) -> Self {
        self.slice_min = len;
        self
    }

    /// Applies (or lifts) the limits Redis puts on a client that has not authenticated: a
    /// multibulk count above [`UNAUTH_MULTIBULK_MAX`] or an argument longer than
    /// [`UNAUTH_BULK_MAX`] is fatal, before any of it is buffered.
    pub fn set_unauthenticated(&mut self, on: bool) {
        self.unauthenticated = on;
    }

    /// Bytes this parser holds for the request in progress (its completed arguments); with the
    /// caller's unconsumed input, what Redis calls the client's query buffer.
    pub fn held(&self) -> usize {
        self.held
    }

    /// The limits this parser enforces.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Whether the parser is between requests: nothing of a request has been consumed without
    /// being returned (a partial inline line is kept unconsumed, so it does not count).
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Idle)
    }

    /// Parses from the start of `buf` (bytes not yet consumed by earlier calls); returns how many
    /// bytes it consumed and what it found. The caller drops the consumed bytes and calls again
    /// with the rest plus new data; after [`Step::Incomplete`] it should wait for new data. The
    /// arguments of a command are copies (see [`Self::next_from`] for slices of the buffer).
    pub fn next(&mut self, buf: &[u8]) -> (usize, Step) {
        let mut source = Borrowed { buf, pos: 0 };
        let step = self.run(&mut source);
        (source.pos, step)
    }

    /// [`Self::next`] on a connection's read buffer: parses the first `waiting` bytes of `buf`
    /// (the rest is the caller's room, untouched), removes what it consumed from the front of
    /// `buf`, and returns how many bytes that was. An argument of at least [`SLICE_MIN`] bytes
    /// is a slice of `buf`'s storage, not a copy (whoever keeps one for longer than the request,
    /// a store, copies it); a smaller one is copied, which costs less than sharing.
    pub fn next_from(&mut self, buf: &mut BytesMut, waiting: usize) -> (usize, Step) {
        let end = waiting.min(buf.len());
        let mut window = Window { buf, pos: 0, end, removed: 0, slice_min: self.slice_min };
        let step = self.run(&mut window);
        window.buf.advance(window.pos);
        (window.removed + window.pos, step)
    }

    /// The state machine, over either source.
    fn run(&mut self, source: &mut impl Source) -> Step {
        loop {
            let flow = match self.state {
                State::Idle => self.idle(source.rest()),
                State::Array { .. } => self.array(source),
                State::Skip { .. } => self.skip(source.rest()),
                State::Failed(ref error) => Flow::Stop(0, Step::Fatal(error.clone())),
            };
            match flow {
                Flow::More(n) => source.skip(n),
                Flow::Stop(n, step) => {
                    if let Step::Fatal(ref error) = step {
                        self.state = State::Failed(error.clone());
                    }
                    debug_assert!(n <= source.rest().len());
                    source.skip(n);
                    return step;
                }
            }
        }
    }

    /// Between requests: a multibulk header, an inline line, or a wait for more bytes.
    fn idle(&mut self, rest: &[u8]) -> Flow {
        let Some(&first) = rest.first() else {
            return Flow::Stop(0, Step::Incomplete);
        };
        if first != b'*' {
            return self.inline(rest);
        }
        let (count, used) = match read_header(rest) {
            Header::Incomplete => return Flow::Stop(0, Step::Incomplete),
            Header::TooLong => return fatal(ProtocolError::MultibulkCountTooLong),
            Header::Invalid => return fatal(ProtocolError::InvalidMultibulkLength),
            Header::Value { value, used } => (value, used),
        };
        if count == 0 || count == -1 {
            return Flow::More(used);
        }
        if !(1..=MULTIBULK_COUNT_MAX).contains(&count) {
            return fatal(ProtocolError::InvalidMultibulkLength);
        }
        // In 1..=i32::MAX, so it fits both types.
        let count = count as usize;
        if self.unauthenticated && count > UNAUTH_MULTIBULK_MAX {
            return fatal(ProtocolError::UnauthenticatedMultibulkLength);
        }
        if count > self.limits.max_args {
            self.state = State::Skip { left: count as u64, bulk: None };
            let error = ProtocolError::TooManyArgs { count: count as u64, max: self.limits.max_args };
            return Flow::Stop(used, Step::Rejected(error));
        }
        let args = Vec::with_capacity(count.min(ARGS_PREALLOC_MAX));
        self.state = State::Array { args, left: count, bulk: None };
        Flow::More(used)
    }

    /// Between requests, at a byte other than `*`: one inline line, kept unconsumed until whole.
    fn inline(&mut self, rest: &[u8]) -> Flow {
        // A line of `max_inline` bytes plus its `\n` is the most that can be accepted.
        let window = &rest[..rest.len().min(self.limits.max_inline.saturating_add(1))];
        let from = self.inline_searched.min(window.len());
        let Some(end) = window[from..].iter().position(|&b| b == b'\n').map(|i| from + i) else {
            if rest.len() > self.limits.max_inline {
                return fatal(ProtocolError::InlineTooLong);
            }
            self.inline_searched = window.len();
            return Flow::Stop(0, Step::Incomplete);
        };
        self.inline_searched = 0;
        let used = end + 1;
        let line = &rest[..end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let args = match split_inline(line) {
            Some(args) => args,
            None => return fatal(ProtocolError::UnbalancedQuotes),
        };
        if args.is_empty() {
            return Flow::More(used);
        }
        if args.len() > self.limits.max_args {
            let error = ProtocolError::TooManyArgs { count: args.len() as u64, max: self.limits.max_args };
            return Flow::Stop(used, Step::Rejected(error));
        }
        if let Some(arg) = args.iter().find(|arg| arg.len() > self.limits.max_bulk) {
            let error = ProtocolError::BulkTooLong { len: arg.len() as u64, max: self.limits.max_bulk };
            return Flow::Stop(used, Step::Rejected(error));
        }
        Flow::Stop(used, Step::Command(args.into_iter().map(Bytes::from).collect()))
    }

    /// Inside an accepted multibulk request: the next argument's header or bytes (taken from
    /// `source` as a whole argument once its bytes and CRLF are all there).
    fn array(&mut self, source: &mut impl Source) -> Flow {
        let max_bulk = self.limits.max_bulk;
        let unauthenticated = self.unauthenticated;
        let State::Array { args, left, bulk } = &mut self.state else {
            return Flow::Stop(0, Step::Incomplete);
        };
        let rest = source.rest();
        let Some(len) = *bulk else {
            let (len, used) = match read_bulk_header(rest) {
                Ok(Some(header)) => header,
                Ok(None) => return Flow::Stop(0, Step::Incomplete),
                Err(error) => return fatal(error),
            };
            if unauthenticated && len > UNAUTH_BULK_MAX {
                return fatal(ProtocolError::UnauthenticatedBulkLength);
            }
            // A header read means one argument fewer to come; `left` was at least 1.
            *left = left.saturating_sub(1);
            if len > max_bulk as u64 {
                self.state = State::Skip { left: *left as u64, bulk: Some(len) };
                self.held = 0;
                return Flow::Stop(used, Step::Rejected(ProtocolError::BulkTooLong { len, max: max_bulk }));
            }
            // At most max_bulk, so it fits.
            *bulk = Some(len as usize);
            return Flow::More(used);
        };
        if rest.len() < len {
            return Flow::Stop(0, Step::Incomplete);
        }
        match rest.get(len..len.saturating_add(2)) {
            Some(b"\r\n") => {}
            Some(_) => return fatal(ProtocolError::MissingCrlf),
            None => return Flow::Stop(0, Step::Incomplete),
        }
        args.push(source.take(len));
        *bulk = None;
        // The argument is taken; its CRLF is what is left to consume.
        if *left > 0 {
            self.held += len;
            return Flow::More(2);
        }
        let args = std::mem::take(args);
        self.state = State::Idle;
        self.held = 0;
        Flow::Stop(2, Step::Command(args))
    }

    /// Skipping a rejected request: headers are read and checked, bytes dropped as they arrive.
    fn skip(&mut self, rest: &[u8]) -> Flow {
        let State::Skip { left, bulk } = &mut self.state else {
            return Flow::Stop(0, Step::Incomplete);
        };
        match *bulk {
            None if *left == 0 => {
                // Not reached: a skip ends when its last argument's CRLF is read.
                self.state = State::Idle;
                Flow::More(0)
            }
            None => {
                let (len, used) = match read_bulk_header(rest) {
                    Ok(Some(header)) => header,
                    Ok(None) => return Flow::Stop(0, Step::Incomplete),
                    Err(error) => return fatal(error),
                };
                *left -= 1;
                *bulk = Some(len);
                Flow::More(used)
            }
            Some(0) => match rest.get(..2) {
                None => Flow::Stop(0, Step::Incomplete),
                Some(b"\r\n") => {
                    if *left == 0 {
                        self.state = State::Idle;
                    } else {
                        *bulk = None;
                    }
                    Flow::More(2)
                }
                Some(_) => fatal(ProtocolError::MissingCrlf),
            },
            Some(remaining) => {
                if rest.is_empty() {
                    return Flow::Stop(0, Step::Incomplete);
                }
                // At most `rest.len()`, so it fits a usize.
                let take = remaining.min(rest.len() as u64);
                *bulk = Some(remaining - take);
                Flow::More(take as usize)
            }
        }
    }
}

/// Ends the call with a fatal error (the caller's loop then marks the parser failed).
fn fatal(error: ProtocolError) -> Flow {
    Flow::Stop(0, Step::Fatal(error))
}

/// What reading a `*N` or `$N` line found.
enum Header {
    /// No line end yet, and the line is not too long yet.
    Incomplete,
    /// No line end within [`HEADER_LINE_MAX`] bytes.
    TooLong,
    /// The line is not `<type byte><number>\r\n`.
    Invalid,
    /// The number, and the line's length with its CRLF.
    Value { value: i64, used: usize },
}

/// Reads the header line at the start of `rest`, whose first byte is the type byte.
fn read_header(rest: &[u8]) -> Header {
    let window = &rest[..rest.len().min(HEADER_LINE_MAX + 2)];
    let Some(end) = window.iter().position(|&b| b == b'\n') else {
        return if rest.len() >= HEADER_LINE_MAX + 2 { Header::TooLong } else { Header::Incomplete };
    };
    let number = match rest.get(1..end).and_then(|line| line.strip_suffix(b"\r")) {
        Some(digits) => parse_length(digits),
        None => None,
    };
    match number {
        Some(value) => Header::Value { value, used: end + 1 },
        None => Header::Invalid,
    }
}

/// Reads a `$len\r\n` header: `Ok(None)` until the line is whole, then the (non-negative) length
/// and the line's length with its CRLF.
fn read_bulk_header(rest: &[u8]) -> Result<Option<(u64, usize)>, ProtocolError> {
    match rest.first() {
        None => return Ok(None),
        Some(b'$') => {}
        Some(&got) => return Err(ProtocolError::ExpectedBulk { got }),
    }
    match read_header(rest) {
        Header::Incomplete => Ok(None),
        Header::TooLong => Err(ProtocolError::BulkCountTooLong),
        Header::Invalid => Err(ProtocolError::InvalidBulkLength),
        Header::Value { value, used } => match u64::try_from(value) {
            Ok(len) => Ok(Some((len, used))),
            Err(_) => Err(ProtocolError::InvalidBulkLength),
        },
    }
}

/// Parses a decimal `i64` the way Redis's `string2ll` does: an optional `-`, then digits with no
/// leading zero (`0` alone is fine, `-0` is not), no blanks, no `+`, no overflow.
fn parse_length(digits: &[u8]) -> Option<i64> {
    let (negative, body) = match digits {
        [b'-', body @ ..] => (true, body),
        _ => (false, digits),
    };
    match body {
        [] => return None,
        [b'0'] if !negative => return Some(0),
        [b'0', ..] => return None,
        _ => {}
    }
    let mut value: i64 = 0;
    for &b in body {
        if !b.is_ascii_digit() {
            return None;
        }
        let digit = i64::from(b - b'0');
        value = value.checked_mul(10)?;
        // Accumulate on the negative side, which reaches i64::MIN.
        value = value.checked_sub(digit)?;
    }
    if negative {
        Some(value)
    } else {
        value.checked_neg()
    }
}

/// Blanks skipped between inline arguments (C's `isspace`).
fn is_blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// Splits an inline line into arguments with Redis's `sdssplitargs` rules, or `None` when quotes
/// are unbalanced:
/// - blanks separate arguments; an argument ends at a space, tab, `\r` or `\n`;
/// - `"..."` may contain `\n`, `\r`, `\t`, `\b`, `\a`, `\xHH`, and `\<c>` for any other `c` (`\"`,
///   `\\`);
/// - `'...'` is literal except `\'`;
/// - a quote may start inside an argument (`a"b c"` is `ab c`), but a closing quote must be
///   followed by a blank or the end of the line.
///
/// Unlike Redis (which works on C strings), a NUL byte is an ordinary byte, not the end of the line.
fn split_inline(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while line.get(i).is_some_and(|&b| is_blank(b)) {
            i += 1;
        }
        if i >= line.len() {
            return Some(args);
        }
        let mut arg = Vec::new();
        let mut quote: Option<u8> = None;
        loop {
            let byte = line.get(i).copied();
            match (quote, byte) {
                (Some(_), None) => return None,
                (Some(b'"'), Some(b'\\')) => {
                    let escaped = line.get(i + 1).copied();
                    let hex =
                        (line.get(i + 2).copied().and_then(hex_value), line.get(i + 3).copied().and_then(hex_value));
                    match (escaped, hex) {
                        (Some(b'x'), (Some(high), Some(low))) => {
                            arg.push((high << 4) | low);
                            i += 4;
                        }
                        (Some(c), _) => {
                            arg.push(match c {
                                b'n' => b'\n',
                                b'r' => b'\r',
                                b't' => b'\t',
                                b'b' => 0x08,
                                b'a' => 0x07,
                                other => other,
                            });
                            i += 2;
                        }
                        // A backslash ending the line leaves the quote open.
                        (None, _) => return None,
                    }
                }
                (Some(b'\''), Some(b'\\')) if line.get(i + 1) == Some(&b'\'') => {
                    arg.push(b'\'');
                    i += 2;
                }
                (Some(open), Some(b)) if b == open => {
                    if line.get(i + 1).is_some_and(|&next| !is_blank(next)) {
                        return None;
                    }
                    i += 1;
                    break;
                }
                (Some(_), Some(b)) => {
                    arg.push(b);
                    i += 1;
                }
                (None, None | Some(b' ' | b'\t' | b'\r' | b'\n')) => break,
                (None, Some(open @ (b'"' | b'\''))) => {
                    quote = Some(open);
                    i += 1;
                }
                (None, Some(b)) => {
                    arg.push(b);
                    i += 1;
                }
            }
        }
        args.push(arg);
    }
}

/// The value of one hex digit.
fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}
