//! `nexus top`'s input: one `GET /metrics` over plain HTTP, and the Prometheus text parser.
//!
//! [`fetch`] opens a fresh connection per scrape (the endpoint answers one request per
//! connection and closes it), bounded by a timeout on connect, write and read, and hands back
//! the body of a `200` answer; anything else is a [`ScrapeError`] whose text is short enough
//! to sit inside a one-line message. [`parse`] reads the text exposition format leniently:
//! comments, blank lines and lines it cannot read are skipped, so a metric it does not know
//! (or a future format detail) never stops the view. It keeps samples in text order.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// The most bytes of an answer that are read (a scrape of thousands of shards fits).
const MAX_ANSWER: u64 = 16 << 20;

/// Why a scrape failed, in a few words (for "cannot reach ... (WHY)" and the view's status).
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    /// The address did not resolve to any socket address.
    #[error("cannot resolve the address: {0}")]
    Resolve(String),
    /// No connection could be made.
    #[error("{}", io_reason(.0))]
    Connect(std::io::Error),
    /// The connection broke or stalled while sending or reading.
    #[error("read failed: {}", io_reason(.0))]
    Io(std::io::Error),
    /// The answer was not HTTP.
    #[error("not an HTTP answer; is this the metrics address and not the RESP one?")]
    NotHttp,
    /// HTTP, but not `200`.
    #[error("HTTP {0}")]
    Status(String),
}

/// An I/O error as a short lower-case phrase: "connection refused", "timed out", ...
fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        ErrorKind::ConnectionRefused => "connection refused".into(),
        ErrorKind::TimedOut | ErrorKind::WouldBlock => "timed out".into(),
        ErrorKind::ConnectionReset => "connection reset".into(),
        ErrorKind::UnexpectedEof => "connection closed early".into(),
        _ => e.to_string(),
    }
}

/// `GET /metrics` from `addr` (`host:port`), each step bounded by `timeout`: the answer's body.
pub fn fetch(addr: &str, timeout: Duration) -> Result<String, ScrapeError> {
    let addrs: Vec<_> = addr.to_socket_addrs().map_err(|e| ScrapeError::Resolve(e.to_string()))?.collect();
    let mut last = None;
    let mut stream = None;
    for a in &addrs {
        match TcpStream::connect_timeout(a, timeout) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let Some(mut stream) = stream else {
        return Err(match last {
            Some(e) => ScrapeError::Connect(e),
            None => ScrapeError::Resolve(format!("{addr} names no address")),
        });
    };
    stream.set_read_timeout(Some(timeout)).map_err(ScrapeError::Io)?;
    stream.set_write_timeout(Some(timeout)).map_err(ScrapeError::Io)?;
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nAccept: text/plain\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).map_err(ScrapeError::Io)?;
    let mut answer = Vec::new();
    match stream.take(MAX_ANSWER).read_to_end(&mut answer) {
        Ok(_) => {}
        // Something answered but kept the connection open (a RESP port answers `-ERR` and
        // waits): judge what came.
        Err(e) if !answer.is_empty() && matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        Err(e) => return Err(ScrapeError::Io(e)),
    }
    body_of(&answer)
}

/// The body of a raw HTTP answer, or why it is not a `200` one.
fn body_of(answer: &[u8]) -> Result<String, ScrapeError> {
    let text = String::from_utf8_lossy(answer);
    let (head, body) = text.split_once("\r\n\r\n").ok_or(ScrapeError::NotHttp)?;
    let status = head.lines().next().unwrap_or_default();
    let mut parts = status.splitn(3, ' ');
    let (version, code) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    if !version.starts_with("HTTP/") {
        return Err(ScrapeError::NotHttp);
    }
    if code != "200" {
        let reason = parts.next().unwrap_or_default();
        let detail = body.lines().next().unwrap_or_default();
        return Err(ScrapeError::Status(format!("{code} {reason}: {detail}").trim_end_matches([' ', ':']).to_owned()));
    }
    Ok(body.to_owned())
}

/// One sample line: `name{label="value",...} value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The metric name.
    pub name: String,
    /// The labels, in text order.
    pub labels: Vec<(String, String)>,
    /// The value (`+Inf`, `-Inf` and `NaN` included).
    pub value: f64,
}

impl Sample {
    /// The value of the label `key`, if the sample has it.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// Every sample of a Prometheus text exposition, in order; see the module documentation.
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines().filter_map(parse_line).collect()
}

/// One line as a sample, or `None` for a comment, a blank line or a line it cannot read.
fn parse_line(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let end = line.find(|c: char| c == '{' || c.is_whitespace()).unwrap_or(line.len());
    let (name, mut rest) = line.split_at(end);
    let valid = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) || !name.chars().all(valid) {
        return None;
    }
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        rest = parse_labels(after, &mut labels)?;
    }
    // The value, then an optional timestamp.
    let value = rest.split_whitespace().next()?;
    Some(Sample { name: name.to_owned(), labels, value: parse_value(value)? })
}

/// Reads `key="value",...}` into `labels`; returns what follows the `}`.
fn parse_labels<'a>(mut rest: &'a str, labels: &mut Vec<(String, String)>) -> Option<&'a str> {
    loop {
        rest = rest.trim_start_matches([' ', ',']);
        if let Some(after) = rest.strip_prefix('}') {
            return Some(after);
        }
        let (key, after) = rest.split_once('=')?;
        let mut chars = after.trim_start().strip_prefix('"')?.char_indices();
        let mut value = String::new();
        let close = loop {
            match chars.next()? {
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                (i, '"') => break i,
                (_, c) => value.push(c),
            }
        };
        labels.push((key.trim().to_owned(), value));
        let quoted = after.trim_start().strip_prefix('"')?;
        rest = &quoted[close + 1..];
    }
}

/// A sample value: a float, or `+Inf`, `-Inf`, `NaN` in any case.
fn parse_value(text: &str) -> Option<f64> {
    match text.to_ascii_lowercase().as_str() {
        "+inf" | "inf" => Some(f64::INFINITY),
        "-inf" => Some(f64::NEG_INFINITY),
        "nan" => Some(f64::NAN),
        _ => text.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn parses_the_endpoint_text() {
        let text = "# HELP nexus_messages_delivered_total Messages handled.\n\
                    # TYPE nexus_messages_delivered_total counter\n\
                    nexus_messages_delivered_total{shard=\"0\"} 1234\n\
                    \n\
                    nexus_routing_latency_seconds{shard=\"1\",quantile=\"0.99\"} 0.000015\n\
                    nexus_mailbox_depth{shard=\"1\",agent=\"1:7.2\"} 12\n\
                    process_up 1 1700000000000\n";
        let samples = parse(text);
        assert_eq!(samples.len(), 4, "{samples:?}");
        assert_eq!(samples[0].name, "nexus_messages_delivered_total");
        assert_eq!(samples[0].labels, labels(&[("shard", "0")]));
        assert_eq!(samples[0].value, 1234.0);
        assert_eq!(samples[1].label("quantile"), Some("0.99"));
        assert_eq!(samples[1].value, 0.000015);
        assert_eq!(samples[2].label("agent"), Some("1:7.2"));
        assert_eq!((samples[3].name.as_str(), samples[3].value), ("process_up", 1.0), "timestamp ignored");
        assert!(samples[3].labels.is_empty());
    }

    #[test]
    fn reads_escapes_special_values_and_spacing() {
        let s = parse_line(r#"m{a="x\"y",b="back\\slash", c = "line\nbreak",} +Inf"#).unwrap();
        assert_eq!(s.labels, labels(&[("a", "x\"y"), ("b", "back\\slash"), ("c", "line\nbreak")]));
        assert_eq!(s.value, f64::INFINITY);
        assert_eq!(parse_line("m -Inf").unwrap().value, f64::NEG_INFINITY);
        assert!(parse_line("m NaN").unwrap().value.is_nan());
        assert_eq!(parse_line("m{} 2e3").unwrap().value, 2000.0);
        assert_eq!(parse_line(r#"m{a="}{,"} 1"#).unwrap().label("a"), Some("}{,"));
    }

    #[test]
    fn skips_what_it_cannot_read() {
        for line in [
            "",
            "# a comment",
            "m",
            "m{a=\"1\"}",
            "m{a=1} 3",
            "m{a=\"unterminated} 3",
            "m 12abc",
            "9lives 1",
            "bad-name 1",
            "{a=\"1\"} 3",
        ] {
            assert_eq!(parse_line(line), None, "{line:?}");
        }
        assert_eq!(parse("garbage\nm 1\n").len(), 1, "one bad line does not stop the rest");
    }

    #[test]
    fn answers_other_than_200_are_errors() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nm 1\n";
        assert_eq!(body_of(ok).unwrap(), "m 1\n");
        let unavailable = b"HTTP/1.1 503 Service Unavailable\r\n\r\nengine unavailable: stopped\n";
        let e = body_of(unavailable).unwrap_err().to_string();
        assert_eq!(e, "HTTP 503 Service Unavailable: engine unavailable: stopped");
        assert!(matches!(body_of(b"-ERR unknown command\r\n"), Err(ScrapeError::NotHttp)));
        assert!(matches!(body_of(b"+OK\r\n\r\n"), Err(ScrapeError::NotHttp)));
    }

    #[test]
    fn a_closed_port_is_connection_refused() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let e = fetch(&format!("127.0.0.1:{port}"), Duration::from_secs(1)).unwrap_err();
        assert_eq!(e.to_string(), "connection refused");
        assert!(matches!(fetch("no-port-here", Duration::from_secs(1)), Err(ScrapeError::Resolve(_))));
    }

    #[test]
    fn a_resp_port_that_answers_and_waits_is_not_http() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            conn.write_all(b"-ERR unknown command 'GET'\r\n").unwrap();
            std::thread::sleep(Duration::from_millis(800)); // Keeps the connection open.
        });
        let e = fetch(&addr, Duration::from_millis(300)).unwrap_err();
        assert!(matches!(e, ScrapeError::NotHttp), "{e}");
        server.join().unwrap();
    }
}
