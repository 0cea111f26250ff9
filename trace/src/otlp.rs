//! OTLP over HTTP/protobuf: [`SpanRecord`]s as an `ExportTraceServiceRequest`, POSTed to an
//! OpenTelemetry collector with a small blocking HTTP/1.1 client on a std `TcpStream`.
//!
//! Mapping of one span (see [`otlp_span`]):
//! - `trace_id`: the 16 bytes of the trace id, big-endian; `span_id` the 8 bytes of the span
//!   id; `parent_span_id` the parent's 8 bytes, empty for a root;
//! - `name`: `"<hop> <short type>"` (`ask FrontMsg`);
//! - `kind`: always `SPAN_KIND_INTERNAL`: a hop is one agent's handling of one message inside
//!   the engine, and its parent link already says who sent it;
//! - start: when the message was **enqueued** (sent), end: when its handler returned, both
//!   unix nanoseconds (engine clock + the engine's epoch). The span so covers queue and
//!   handler time, and a child starts inside its parent where the parent sent it; a span
//!   event `dispatched` marks when the handler began;
//! - attributes: `nexus.shard`, `nexus.agent` (`shard:slot.generation`, absent for a hop no
//!   agent handled), `nexus.hop`, `nexus.queued_ns`, `nexus.handler_ns`,
//!   `nexus.message_type` (the full type name);
//! - status: `ERROR` ("dead letter") for a dead-letter hop, unset otherwise.
//!
//! The request has one `ResourceSpans` (resource attribute `service.name`) with one
//! `ScopeSpans` (scope `nexus-engine`).
//!
//! HTTP: one connection per request (`Connection: close`), connect, read and write timeouts
//! (5 s by default), `Content-Type: application/x-protobuf`. Any 2xx status is success;
//! anything else is [`OtlpError::Status`] with the status line and the start of the body.
//! Only `http://` endpoints: TLS is out of scope (put a local collector in front).
//!
//! Invariants: a request never holds more than [`MAX_BATCH`] spans; [`OtlpExporter::export`]
//! sends batches in order and stops at the first that fails, so every batch before it was
//! accepted and none after it was sent.

use crate::record::SpanRecord;
use nexus_engine::trace::Hop;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, status, ResourceSpans, ScopeSpans, Span, Status};
use prost::Message as _;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// The most spans one request carries.
pub const MAX_BATCH: usize = 512;
/// The path used when the endpoint names none.
pub const DEFAULT_PATH: &str = "/v1/traces";
/// Connect, read and write timeout unless [`OtlpExporter::with_timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// The instrumentation scope's name.
pub const SCOPE_NAME: &str = "nexus-engine";

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    /// The endpoint is not an `http://host[:port][/path]` URL.
    #[error("bad OTLP endpoint {endpoint:?}: {reason}")]
    BadEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The endpoint's host did not resolve to any address.
    #[error("cannot resolve OTLP endpoint {authority}: {source}")]
    Resolve {
        /// `host:port`.
        authority: String,
        /// The resolver's error.
        source: io::Error,
    },
    /// No address of the endpoint accepted a connection.
    #[error("cannot connect to OTLP endpoint {authority}: {source}")]
    Connect {
        /// `host:port`.
        authority: String,
        /// The last connection error.
        source: io::Error,
    },
    /// Sending the request or reading the response failed (a timeout included).
    #[error("OTLP request to {authority} failed: {source}")]
    Io {
        /// `host:port`.
        authority: String,
        /// The error.
        source: io::Error,
    },
    /// The response did not start with an HTTP status line.
    #[error("OTLP endpoint {authority} sent a malformed response: {line:?}")]
    BadResponse {
        /// `host:port`.
        authority: String,
        /// The first line received (cut to 200 bytes).
        line: String,
    },
    /// The collector answered with a status other than 2xx.
    #[error("OTLP endpoint refused the export: {status_line} {body:?}")]
    Status {
        /// The numeric status.
        code: u16,
        /// The whole status line (`HTTP/1.1 500 Internal Server Error`).
        status_line: String,
        /// The start of the response body, as text (at most 1 KiB).
        body: String,
    },
}

/// Where requests go, parsed from the endpoint URL.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Endpoint {
    /// `host:port` to connect to (IPv6 hosts bracketed).
    authority: String,
    /// The `Host` header: the authority as the URL gave it.
    host_header: String,
    /// The request path, `/` first.
    path: String,
}

/// Exports spans to one OTLP/HTTP endpoint.
#[derive(Debug)]
pub struct OtlpExporter {
    url: String,
    endpoint: Endpoint,
    service_name: String,
    timeout: Duration,
    exported: u64,
}

impl OtlpExporter {
    /// An exporter to `endpoint` (`http://host[:port][/path]`; port 80 and path
    /// [`DEFAULT_PATH`] when left out) that names the service `service_name`. Nothing is
    /// connected until the first export; a URL that is not of that form is
    /// [`OtlpError::BadEndpoint`].
    pub fn new(endpoint: &str, service_name: impl Into<String>) -> Result<Self, OtlpError> {
        Ok(Self {
            url: endpoint.to_owned(),
            endpoint: parse_endpoint(endpoint)?,
            service_name: service_name.into(),
            timeout: DEFAULT_TIMEOUT,
            exported: 0,
        })
    }

    /// The same exporter with `timeout` for connecting, writing and each read (at least 1 ms).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// The endpoint URL as given.
    pub fn endpoint(&self) -> &str {
        &self.url
    }

    /// The `service.name` resource attribute.
    pub fn service_name(&self) -> &str {
        &self.service_name
    }

    /// Spans this exporter has had accepted so far.
    pub fn exported(&self) -> u64 {
        self.exported
    }

    /// Sends `spans` in requests of at most [`MAX_BATCH`], in order, stopping at the first
    /// that fails (the batches before it were accepted). `epoch_unix_ns` is the engine's
    /// [`TraceHandle::epoch_unix_ns`](nexus_engine::trace::TraceHandle::epoch_unix_ns).
    pub fn export(&mut self, spans: &[SpanRecord], epoch_unix_ns: u64) -> Result<(), OtlpError> {
        for batch in spans.chunks(MAX_BATCH) {
            self.export_batch(batch, epoch_unix_ns)?;
        }
        Ok(())
    }

    /// Sends `batch` as one request (the caller keeps it within [`MAX_BATCH`]; a larger one
    /// goes out whole).
    pub fn export_batch(&mut self, batch: &[SpanRecord], epoch_unix_ns: u64) -> Result<(), OtlpError> {
        if batch.is_empty() {
            return Ok(());
        }
        let body = self.request(batch, epoch_unix_ns).encode_to_vec();
        post(&self.endpoint, &body, self.timeout)?;
        self.exported += batch.len() as u64;
        Ok(())
    }

    /// The request [`export_batch`](Self::export_batch) would send for `spans`.
    pub fn request(&self, spans: &[SpanRecord], epoch_unix_ns: u64) -> ExportTraceServiceRequest {
        let resource =
            Resource { attributes: vec![string_attr("service.name", &self.service_name)], ..Default::default() };
        let scope = InstrumentationScope {
            name: SCOPE_NAME.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            ..Default::default()
        };
        let scope_spans = ScopeSpans {
            scope: Some(scope),
            spans: spans.iter().map(|s| otlp_span(s, epoch_unix_ns)).collect(),
            schema_url: String::new(),
        };
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(resource),
                scope_spans: vec![scope_spans],
                schema_url: String::new(),
            }],
        }
    }
}

/// One span as OTLP (see the module documentation for the mapping).
pub fn otlp_span(record: &SpanRecord, epoch_unix_ns: u64) -> Span {
    let mut attributes = vec![int_attr("nexus.shard", u64::from(record.shard))];
    if let Some(agent) = record.agent {
        attributes.push(string_attr("nexus.agent", &agent.to_string()));
    }
    attributes.extend([
        string_attr("nexus.hop", record.hop.name()),
        int_attr("nexus.queued_ns", record.queued_ns()),
        int_attr("nexus.handler_ns", record.handler_ns()),
        string_attr("nexus.message_type", &record.name),
    ]);
    let status = (record.hop == Hop::DeadLetter)
        .then(|| Status { message: "dead letter".to_owned(), code: status::StatusCode::Error as i32 });
    let dispatched = span::Event {
        time_unix_nano: record.wall_start_ns(epoch_unix_ns),
        name: "dispatched".to_owned(),
        ..Default::default()
    };
    Span {
        trace_id: record.trace_id.to_be_bytes().to_vec(),
        span_id: record.span_id.to_be_bytes().to_vec(),
        parent_span_id: if record.parent_id == 0 { Vec::new() } else { record.parent_id.to_be_bytes().to_vec() },
        name: record.display_name(),
        kind: span::SpanKind::Internal as i32,
        start_time_unix_nano: record.wall_enqueued_ns(epoch_unix_ns),
        end_time_unix_nano: record.wall_end_ns(epoch_unix_ns),
        attributes,
        events: vec![dispatched],
        status,
        ..Default::default()
    }
}

fn string_attr(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.to_owned())) }),
        ..Default::default()
    }
}

/// An integer attribute (OTLP integers are signed: values past `i64::MAX` saturate).
fn int_attr(key: &str, value: u64) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(any_value::Value::IntValue(i64::try_from(value).unwrap_or(i64::MAX))) }),
        ..Default::default()
    }
}

/// Parses `http://host[:port][/path]`.
fn parse_endpoint(url: &str) -> Result<Endpoint, OtlpError> {
    let bad = |reason| OtlpError::BadEndpoint { endpoint: url.to_owned(), reason };
    let rest = match url.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
        Some(_) => return Err(bad("only http:// endpoints are supported")),
        None => return Err(bad("expected http://host[:port][/path]")),
    };
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if authority.is_empty() {
        return Err(bad("no host"));
    }
    if authority.contains('@') {
        return Err(bad("user info is not supported"));
    }
    if authority.chars().any(|c| c.is_whitespace() || c.is_control())
        || path.chars().any(|c| c.is_control() || c == ' ')
    {
        return Err(bad("whitespace or control characters"));
    }
    let (host, port) = split_host_port(authority).ok_or_else(|| bad("bad host or port"))?;
    let path = match path {
        "" | "/" => DEFAULT_PATH.to_owned(),
        p if p.starts_with('/') => p.to_owned(),
        _ => return Err(bad("the path must start with /")),
    };
    Ok(Endpoint { authority: format!("{host}:{port}"), host_header: authority.to_owned(), path })
}

/// `host` (IPv6 kept in brackets) and port (80 when absent) of an authority.
fn split_host_port(authority: &str) -> Option<(&str, u16)> {
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']')?;
        let (host, after) = authority.split_at(end + 1);
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':')?)),
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => 80,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p.parse().ok()?,
        Some(_) => return None,
    };
    (!host.is_empty() && host != "[]").then_some((host, port))
}

/// POSTs `body` to `endpoint`; `Ok` on a 2xx answer.
fn post(endpoint: &Endpoint, body: &[u8], timeout: Duration) -> Result<(), OtlpError> {
    let authority = &endpoint.authority;
    let io_err = |source| OtlpError::Io { authority: authority.clone(), source };
    let mut stream = connect(authority, timeout)?;
    stream.set_read_timeout(Some(timeout)).map_err(io_err)?;
    stream.set_write_timeout(Some(timeout)).map_err(io_err)?;
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\n\
         User-Agent: nexus-trace/{}\r\nConnection: close\r\n\r\n",
        endpoint.path,
        endpoint.host_header,
        body.len(),
        env!("CARGO_PKG_VERSION"),
    );
    stream.write_all(head.as_bytes()).map_err(io_err)?;
    stream.write_all(body).map_err(io_err)?;
    stream.flush().map_err(io_err)?;
    read_response(BufReader::new(stream), authority)
}

/// A connection to the first address of `authority` that accepts one.
fn connect(authority: &str, timeout: Duration) -> Result<TcpStream, OtlpError> {
    let addrs =
        authority.to_socket_addrs().map_err(|source| OtlpError::Resolve { authority: authority.to_owned(), source })?;
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the host resolved to no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = e,
        }
    }
    Err(OtlpError::Connect { authority: authority.to_owned(), source: last })
}

/// Reads the status line and headers; on a non-2xx status, up to 1 KiB of the body too.
fn read_response(mut reader: impl BufRead, authority: &str) -> Result<(), OtlpError> {
    let io_err = |source| OtlpError::Io { authority: authority.to_owned(), source };
    let status_line = read_line(&mut reader).map_err(io_err)?;
    let code = parse_status(&status_line).ok_or_else(|| OtlpError::BadResponse {
        authority: authority.to_owned(),
        line: status_line.chars().take(200).collect(),
    })?;
    if (200..300).contains(&code) {
        return Ok(());
    }
    let mut content_length = None;
    loop {
        let line = read_line(&mut reader).map_err(io_err)?;
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.trim().eq_ignore_ascii_case("content-length") {
                content_length = value.trim().parse::<u64>().ok();
            }
        }
    }
    let mut body = Vec::new();
    let limit = content_length.unwrap_or(1024).min(1024);
    // The body is only for the error message: a failure to read it loses nothing else.
    let _ = reader.take(limit).read_to_end(&mut body);
    Err(OtlpError::Status { code, status_line, body: String::from_utf8_lossy(&body).into_owned() })
}

/// One CRLF- or LF-ended line (at most 8 KiB), without its ending; empty at end of stream.
fn read_line(reader: &mut impl BufRead) -> io::Result<String> {
    let mut line = Vec::new();
    reader.take(8192).read_until(b'\n', &mut line)?;
    while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        line.pop();
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

/// The code of an `HTTP/1.x NNN reason` status line.
fn parse_status(line: &str) -> Option<u16> {
    let mut parts = line.splitn(3, ' ');
    let version = parts.next()?;
    let code = parts.next()?;
    (version.starts_with("HTTP/") && code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit()))
        .then(|| code.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests;
