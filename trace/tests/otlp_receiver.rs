//! OTLP export end to end: a real two-shard engine traces an ask across shards, and the
//! [`Collector`] ships its spans to an OTLP/HTTP receiver built here from opentelemetry-proto
//! (a `TcpListener` that decodes each POST body as an `ExportTraceServiceRequest`). Also:
//! a receiver that answers 500 makes exports fail with a typed error and the collector count
//! the spans lost, an unreachable endpoint is a connect error, and big exports are batched.

#[path = "support/traced_ask.rs"]
mod traced_ask;

use nexus_engine::agent::SpawnPlacement;
use nexus_engine::builtin::{Counter, CounterMsg};
use nexus_engine::engine::Engine;
use nexus_engine::trace::{Hop, TraceConfig};
use nexus_trace::otlp::MAX_BATCH;
use nexus_trace::{Collector, OtlpError, OtlpExporter, SpanRecord};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use traced_ask::{spawn_pair, traced_engine, FrontMsg};

/// One POST the receiver took: its request line, content type and decoded body.
#[derive(Clone, Debug)]
struct Received {
    request_line: String,
    content_type: String,
    request: ExportTraceServiceRequest,
}

/// An OTLP/HTTP receiver on 127.0.0.1 that answers every request with `status`.
struct Receiver {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Receiver {
    fn start(status: &'static str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (received.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    return;
                }
                if let Ok(conn) = conn {
                    serve(conn, status, &r);
                }
            }
        });
        Self { addr, received, stop, thread: Some(thread) }
    }

    fn url(&self) -> String {
        format!("http://{}/v1/traces", self.addr)
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }

    fn spans(&self) -> Vec<Span> {
        self.received()
            .into_iter()
            .flat_map(|r| r.request.resource_spans)
            .flat_map(|rs| rs.scope_spans)
            .flat_map(|ss| ss.spans)
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one HTTP request (Content-Length body), decodes and keeps the body, then answers
/// `status` (kept first, so a client that saw the answer finds its request kept).
fn serve(conn: TcpStream, status: &str, received: &Mutex<Vec<Received>>) -> Option<()> {
    conn.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut reader = BufReader::new(conn.try_clone().ok()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    let (mut length, mut content_type) = (0usize, String::new());
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().ok()?,
            "content-type" => content_type = value.trim().to_owned(),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let request = ExportTraceServiceRequest::decode(body.as_slice()).ok()?;
    let request_line = request_line.trim_end().to_owned();
    received.lock().expect("lock").push(Received { request_line, content_type, request });
    let answer = format!("HTTP/1.1 {status}\r\nContent-Length: 7\r\nConnection: close\r\n\r\nanswer!");
    (&conn).write_all(answer.as_bytes()).ok()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn attr(span: &Span, key: &str) -> Option<Value> {
    span.attributes.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.clone()?.value)
}

fn text(span: &Span, key: &str) -> String {
    match attr(span, key) {
        Some(Value::StringValue(s)) => s,
        other => panic!("{key} of {} is {other:?}", span.name),
    }
}

fn int(span: &Span, key: &str) -> i64 {
    match attr(span, key) {
        Some(Value::IntValue(i)) => i,
        other => panic!("{key} of {} is {other:?}", span.name),
    }
}

#[test]
fn an_ask_across_shards_reaches_the_receiver_as_one_linked_trace() {
    let receiver = Receiver::start("200 OK");
    let engine = traced_engine(TraceConfig::new().sample(1.0));
    let h = engine.handle();
    let (front, back, done) = spawn_pair(&h);
    let exporter = OtlpExporter::new(&receiver.url(), "nexus-test").expect("exporter");
    let collector = Collector::start(h.tracing(), exporter, Duration::from_millis(20));

    h.send(front, FrontMsg::Go).map_err(|_| "refused").expect("send");
    wait_until("the answer", || done.load(Ordering::SeqCst));
    wait_until("the answer's span at the receiver", || {
        receiver.spans().iter().any(|s| attr(s, "nexus.hop") == Some(Value::StringValue("answer".into())))
    });
    let stats = collector.stop();
    assert_eq!((stats.failed_exports, stats.lost), (0, 0), "{stats:?}");
    assert_eq!(stats.exported, stats.drained, "{stats:?}");
    assert_eq!(stats.buffer_dropped, 0);
    engine.shutdown().expect("shutdown");

    for r in receiver.received() {
        assert_eq!(r.request_line, "POST /v1/traces HTTP/1.1");
        assert_eq!(r.content_type, "application/x-protobuf");
        let rs = &r.request.resource_spans;
        assert_eq!(rs.len(), 1);
        let service = rs[0].resource.as_ref().and_then(|res| {
            res.attributes.iter().find(|kv| kv.key == "service.name").and_then(|kv| kv.value.clone()?.value)
        });
        assert_eq!(service, Some(Value::StringValue("nexus-test".into())));
        assert_eq!(rs[0].scope_spans.len(), 1);
        assert_eq!(rs[0].scope_spans[0].scope.as_ref().map(|s| s.name.as_str()), Some("nexus-engine"));
    }
    let spans = receiver.spans();
    assert_eq!(spans.len() as u64, stats.exported, "every exported span arrived once");
    let root = spans
        .iter()
        .find(|s| s.parent_span_id.is_empty() && text(s, "nexus.message_type").ends_with("FrontMsg"))
        .expect("the host's send of Go is a root");
    assert_eq!(root.name, "send FrontMsg");
    assert_eq!((root.trace_id.len(), root.span_id.len()), (16, 8));
    assert_eq!(text(root, "nexus.agent"), front.id().to_string());
    let trace: Vec<&Span> = spans.iter().filter(|s| s.trace_id == root.trace_id).collect();
    let ids: HashSet<&[u8]> = trace.iter().map(|s| s.span_id.as_slice()).collect();
    assert_eq!(ids.len(), trace.len(), "span ids are unique");
    for s in &trace {
        if !s.parent_span_id.is_empty() {
            assert!(ids.contains(s.parent_span_id.as_slice()), "the parent of {} was received", s.name);
        }
        assert!(s.start_time_unix_nano <= s.end_time_unix_nano, "{}", s.name);
        assert!(s.start_time_unix_nano > 1_500_000_000_000_000_000, "wall-clock times: {}", s.name);
        assert!(int(s, "nexus.queued_ns") >= 0 && int(s, "nexus.handler_ns") >= 0, "{}", s.name);
        assert!(["send", "ask", "reply", "answer"].contains(&text(s, "nexus.hop").as_str()), "{}", s.name);
    }
    let hop = |name: &str| *trace.iter().find(|s| text(s, "nexus.hop") == name).unwrap_or_else(|| panic!("no {name}"));
    let ask = hop("ask");
    assert_eq!(ask.parent_span_id, root.span_id, "the ask was sent by the Go handler");
    assert_eq!((int(ask, "nexus.shard"), text(ask, "nexus.agent")), (1, back.id().to_string()));
    assert!(text(ask, "nexus.message_type").ends_with("BackMsg"));
    let reply = hop("reply");
    assert_eq!(reply.parent_span_id, ask.span_id);
    assert_eq!(int(reply, "nexus.shard"), 0, "the reply lands on the asking shard");
    let answer = hop("answer");
    assert_eq!(answer.parent_span_id, reply.span_id);
    assert_eq!((int(answer, "nexus.shard"), text(answer, "nexus.agent")), (0, front.id().to_string()));
}

/// An engine with `n` traced root spans buffered (host sends to a counter).
fn engine_with_spans(n: u64) -> Engine {
    let engine = traced_engine(TraceConfig::new().sample(1.0));
    let h = engine.handle();
    let counter = h.spawn(SpawnPlacement::Shard(1), Counter::default).expect("spawn");
    for _ in 0..n {
        h.send(counter, CounterMsg::Add(1)).expect("send");
    }
    let tracing = h.tracing();
    wait_until("the spans", || tracing.recorded() >= n);
    engine
}

/// One root span with no agent: what the failing exports try to send.
fn one_span() -> [SpanRecord; 1] {
    [SpanRecord {
        trace_id: 1,
        span_id: 2,
        parent_id: 0,
        hop: Hop::Send,
        name: "x".into(),
        shard: 0,
        agent: None,
        enqueued_ns: 0,
        dispatched_ns: 1,
        finished_ns: 2,
    }]
}

#[test]
fn a_receiver_answering_500_fails_the_export_and_the_collector_counts_the_loss() {
    let receiver = Receiver::start("500 Internal Server Error");
    let mut exporter = OtlpExporter::new(&receiver.url(), "nexus").expect("exporter");
    let spans = one_span();
    match exporter.export(&spans, 0) {
        Err(OtlpError::Status { code: 500, status_line, body }) => {
            assert_eq!(status_line, "HTTP/1.1 500 Internal Server Error");
            assert_eq!(body, "answer!");
        }
        other => panic!("expected a 500 status error, got {other:?}"),
    }
    assert_eq!(exporter.exported(), 0);

    let engine = engine_with_spans(10);
    let collector = Collector::start(engine.handle().tracing(), exporter, Duration::from_millis(10));
    let stats = collector.stop();
    assert!(stats.drained >= 10, "{stats:?}");
    assert_eq!((stats.exported, stats.lost), (0, stats.drained), "{stats:?}");
    assert!(stats.failed_exports >= 1, "{stats:?}");
    assert!(stats.last_error.as_deref().is_some_and(|e| e.contains("500")), "{stats:?}");
    engine.shutdown().expect("shutdown");
}

#[test]
fn an_unreachable_endpoint_is_a_connect_error_and_spans_are_counted_lost() {
    let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
    let url = format!("http://127.0.0.1:{port}");
    let mut exporter = OtlpExporter::new(&url, "nexus").expect("exporter").with_timeout(Duration::from_secs(2));
    let spans = one_span();
    let err = exporter.export(&spans, 0).expect_err("nothing listens");
    assert!(matches!(err, OtlpError::Connect { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("cannot connect") && message.contains(&format!("127.0.0.1:{port}")), "{message}");

    let engine = engine_with_spans(3);
    let stats = Collector::start(engine.handle().tracing(), exporter, Duration::from_secs(60)).stop();
    assert!(stats.drained >= 3, "{stats:?}");
    assert_eq!((stats.exported, stats.lost, stats.failed_exports), (0, stats.drained, 1), "{stats:?}");
    engine.shutdown().expect("shutdown");
}

#[test]
fn a_big_export_goes_out_in_batches_of_at_most_512() {
    let receiver = Receiver::start("202 Accepted");
    let mut exporter = OtlpExporter::new(&receiver.url(), "nexus").expect("exporter");
    let spans: Vec<SpanRecord> = (1..=1200u64)
        .map(|i| SpanRecord {
            trace_id: 7,
            span_id: i,
            parent_id: i - 1,
            hop: Hop::Send,
            name: format!("m::M{i}"),
            shard: (i % 2) as u16,
            agent: None,
            enqueued_ns: i,
            dispatched_ns: i + 1,
            finished_ns: i + 2,
        })
        .collect();
    exporter.export(&spans, 1_000).expect("accepted");
    assert_eq!(exporter.exported(), 1200);
    let sizes: Vec<usize> =
        receiver.received().iter().map(|r| r.request.resource_spans[0].scope_spans[0].spans.len()).collect();
    assert_eq!(sizes, [MAX_BATCH, MAX_BATCH, 1200 - 2 * MAX_BATCH]);
    let got: Vec<u64> = receiver
        .spans()
        .iter()
        .map(|s| u64::from_be_bytes(s.span_id.as_slice().try_into().expect("8 bytes")))
        .collect();
    assert_eq!(got, (1..=1200).collect::<Vec<_>>(), "in order, none lost");
}
