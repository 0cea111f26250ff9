//! A minimal blocking RESP2 client: what `nexus trace` needs to talk to a running `nexus run`
//! (`AUTH`, `NEXUS.TRACE ...`).
//!
//! Invariant: one request is in flight at a time; a reply is read whole before the next
//! request is written, so the stream never holds a partial reply between calls.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A reply, as RESP2 has them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+text`.
    Simple(String),
    /// `-text`.
    Error(String),
    /// `:n`.
    Int(i64),
    /// `$n` bytes (`None`: the null bulk string).
    Bulk(Option<Vec<u8>>),
    /// `*n` elements (`None`: the null array).
    Array(Option<Vec<Reply>>),
}

/// Why a request failed at the connection level.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Reading or writing failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The server sent something that is not RESP.
    #[error("the server's reply is not RESP: {0}")]
    Protocol(String),
}

/// One connection.
pub struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    /// Connects to `addr` with a 5 s connect timeout and a 10 s read timeout.
    pub fn connect(addr: &std::net::SocketAddr) -> Result<Self, ClientError> {
        let stream = TcpStream::connect_timeout(addr, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.set_nodelay(true)?;
        let writer = stream.try_clone()?;
        Ok(Self { reader: BufReader::new(stream), writer })
    }

    /// Sends one command (its words as bulk strings) and reads its reply.
    pub fn call(&mut self, words: &[&str]) -> Result<Reply, ClientError> {
        let mut request = format!("*{}\r\n", words.len()).into_bytes();
        for w in words {
            request.extend_from_slice(format!("${}\r\n", w.len()).as_bytes());
            request.extend_from_slice(w.as_bytes());
            request.extend_from_slice(b"\r\n");
        }
        self.writer.write_all(&request)?;
        self.read_reply()
    }

    fn line(&mut self) -> Result<String, ClientError> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(ClientError::Protocol("the connection closed".into()));
        }
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }

    fn read_reply(&mut self) -> Result<Reply, ClientError> {
        let line = self.line()?;
        let (tag, rest) = line.split_at(line.len().min(1));
        let number = || rest.parse::<i64>().map_err(|_| ClientError::Protocol(format!("bad length in '{line}'")));
        match tag {
            "+" => Ok(Reply::Simple(rest.to_owned())),
            "-" => Ok(Reply::Error(rest.to_owned())),
            ":" => Ok(Reply::Int(number()?)),
            "$" => {
                let n = number()?;
                if n < 0 {
                    return Ok(Reply::Bulk(None));
                }
                let mut body = vec![0; n as usize + 2];
                self.reader.read_exact(&mut body)?;
                body.truncate(n as usize);
                Ok(Reply::Bulk(Some(body)))
            }
            "*" => {
                let n = number()?;
                if n < 0 {
                    return Ok(Reply::Array(None));
                }
                let items = (0..n).map(|_| self.read_reply()).collect::<Result<Vec<_>, _>>()?;
                Ok(Reply::Array(Some(items)))
            }
            _ => Err(ClientError::Protocol(format!("unexpected '{}'", line.chars().take(40).collect::<String>()))),
        }
    }
}
