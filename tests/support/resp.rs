//! A raw RESP client for the server tests: exact bytes out, parsed replies in.
//!
//! The `redis` crate hides what these tests must see: the difference between `$-1` and `_`,
//! RESP3 maps and pushes, a reply that arrives on a stream the test has half-broken, and the
//! moment the server closes the connection. [`RawConn`] writes whatever bytes a test gives it
//! and parses one reply at a time into a [`Reply`] that keeps every RESP2 and RESP3 type apart.
//!
//! Invariants: every read has a timeout ([`READ_TIMEOUT`]), so a server that never answers
//! fails the test instead of hanging it; a test thread owns its `RawConn` (no sharing).

use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// The longest a test waits for one reply before it fails.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// One parsed reply. RESP2 and RESP3 types stay distinct, nulls included.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// `+text`
    Simple(String),
    /// `-CODE text` (the whole line after `-`)
    Error(String),
    /// `:n`
    Int(i64),
    /// `$n` followed by n bytes
    Bulk(Vec<u8>),
    /// `$-1` (the RESP2 nil)
    NilBulk,
    /// `*-1` (the RESP2 nil array)
    NilArray,
    /// `_` (the RESP3 null)
    Null,
    /// `*n`
    Array(Vec<Reply>),
    /// `%n` (RESP3)
    Map(Vec<(Reply, Reply)>),
    /// `~n` (RESP3)
    Set(Vec<Reply>),
    /// `>n` (RESP3 out-of-band push)
    Push(Vec<Reply>),
    /// `#t` / `#f` (RESP3)
    Bool(bool),
    /// `,` (RESP3 double), kept as its text
    Double(String),
    /// `(` (RESP3 big number), kept as its text
    BigNumber(String),
    /// `=n` (RESP3 verbatim string), with its `txt:` prefix
    Verbatim(String),
}

impl Reply {
    /// The text of a simple, bulk or verbatim string; `None` for any other type.
    pub fn text(&self) -> Option<String> {
        match self {
            Reply::Simple(s) | Reply::Verbatim(s) => Some(s.clone()),
            Reply::Bulk(b) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        }
    }

    /// Whether this reply is an error.
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }
}

/// A bulk string reply holding `s`.
pub fn bulk(s: &str) -> Reply {
    Reply::Bulk(s.as_bytes().to_vec())
}

/// Encodes one command as a RESP array of bulk strings.
pub fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Encodes one command whose arguments are all text.
pub fn encode_str(args: &[&str]) -> Vec<u8> {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    encode(&args)
}

/// A client connection that speaks raw RESP.
pub struct RawConn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl RawConn {
    /// Connects to the server on `127.0.0.1:port`; panics if it cannot.
    pub fn connect(port: u16) -> Self {
        Self::try_connect(port).unwrap_or_else(|e| panic!("connect to 127.0.0.1:{port}: {e}"))
    }

    /// Connects to the server on `127.0.0.1:port`, with [`READ_TIMEOUT`] on reads.
    pub fn try_connect(port: u16) -> io::Result<Self> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(READ_TIMEOUT))?;
        stream.set_write_timeout(Some(READ_TIMEOUT))?;
        stream.set_nodelay(true)?;
        let writer = stream.try_clone()?;
        Ok(Self { reader: BufReader::new(stream), writer })
    }

    /// The underlying socket (for socket options and shutdown).
    pub fn stream(&self) -> &TcpStream {
        &self.writer
    }

    /// Writes `bytes` as they are; panics on a write error.
    pub fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap_or_else(|e| panic!("write {} bytes: {e}", bytes.len()));
    }

    /// Sends one command made of text arguments and reads its reply.
    pub fn call(&mut self, args: &[&str]) -> Reply {
        self.send(&encode_str(args));
        self.read()
    }

    /// Reads one reply; panics on a timeout, an I/O error or a malformed reply.
    pub fn read(&mut self) -> Reply {
        self.try_read().unwrap_or_else(|e| panic!("reading a reply: {e}"))
    }

    /// Reads one reply.
    pub fn try_read(&mut self) -> io::Result<Reply> {
        read_reply(&mut self.reader)
    }

    /// Reads and discards whatever comes until the server closes the connection (end of
    /// stream or reset): true if that happens within `limit`, false if the connection is
    /// still open then.
    pub fn closed_within(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let mut sink = [0u8; 64 * 1024];
        let closed = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break false;
            }
            self.reader.get_ref().set_read_timeout(Some(left)).expect("set a read timeout");
            match self.reader.read(&mut sink) {
                Ok(0) => break true,
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break false,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => break true, // reset: closed by the server
            }
        };
        self.reader.get_ref().set_read_timeout(Some(READ_TIMEOUT)).expect("set a read timeout");
        closed
    }
}

fn read_line(reader: &mut impl BufRead) -> io::Result<String> {
    let mut line = Vec::new();
    let n = reader.read_until(b'\n', &mut line)?;
    if n == 0 {
        return Err(io::Error::new(ErrorKind::UnexpectedEof, "the server closed the connection"));
    }
    if !line.ends_with(b"\r\n") {
        return Err(io::Error::new(ErrorKind::InvalidData, format!("line without CRLF: {line:?}")));
    }
    line.truncate(line.len() - 2);
    String::from_utf8(line).map_err(|e| io::Error::new(ErrorKind::InvalidData, e))
}

fn parse_int(text: &str) -> io::Result<i64> {
    text.parse().map_err(|_| io::Error::new(ErrorKind::InvalidData, format!("not an integer: {text:?}")))
}

fn read_n(reader: &mut impl BufRead, n: usize) -> io::Result<Vec<Reply>> {
    (0..n).map(|_| read_reply(reader)).collect()
}

fn read_blob(reader: &mut impl BufRead, len: usize) -> io::Result<Vec<u8>> {
    let mut data = vec![0u8; len + 2];
    reader.read_exact(&mut data)?;
    if !data.ends_with(b"\r\n") {
        return Err(io::Error::new(ErrorKind::InvalidData, "bulk string without CRLF"));
    }
    data.truncate(len);
    Ok(data)
}

/// Reads one complete reply from `reader`.
pub fn read_reply(reader: &mut impl BufRead) -> io::Result<Reply> {
    let line = read_line(reader)?;
    let (kind, rest) = line.split_at(line.char_indices().nth(1).map_or(line.len(), |(i, _)| i));
    let count = |rest: &str| -> io::Result<usize> {
        usize::try_from(parse_int(rest)?).map_err(|_| io::Error::new(ErrorKind::InvalidData, "negative count"))
    };
    Ok(match kind {
        "+" => Reply::Simple(rest.to_owned()),
        "-" => Reply::Error(rest.to_owned()),
        ":" => Reply::Int(parse_int(rest)?),
        "$" if rest == "-1" => Reply::NilBulk,
        "$" => Reply::Bulk(read_blob(reader, count(rest)?)?),
        "*" if rest == "-1" => Reply::NilArray,
        "*" => Reply::Array(read_n(reader, count(rest)?)?),
        "_" => Reply::Null,
        "%" => {
            let items = read_n(reader, 2 * count(rest)?)?;
            let mut pairs = Vec::with_capacity(items.len() / 2);
            let mut items = items.into_iter();
            while let (Some(k), Some(v)) = (items.next(), items.next()) {
                pairs.push((k, v));
            }
            Reply::Map(pairs)
        }
        "~" => Reply::Set(read_n(reader, count(rest)?)?),
        ">" => Reply::Push(read_n(reader, count(rest)?)?),
        "#" => Reply::Bool(rest == "t"),
        "," => Reply::Double(rest.to_owned()),
        "(" => Reply::BigNumber(rest.to_owned()),
        "=" => Reply::Verbatim(String::from_utf8_lossy(&read_blob(reader, count(rest)?)?).into_owned()),
        _ => return Err(io::Error::new(ErrorKind::InvalidData, format!("unknown reply type in {line:?}"))),
    })
}
