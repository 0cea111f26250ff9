//! Endpoint parsing, the span mapping and response handling, without a network.

use super::*;
use crate::testing::span;
use std::io::Cursor;

fn endpoint(url: &str) -> Endpoint {
    parse_endpoint(url).unwrap_or_else(|e| panic!("{url}: {e}"))
}

#[test]
fn endpoints_parse_with_default_port_and_path() {
    let e = endpoint("http://collector:4318");
    assert_eq!(
        (e.authority.as_str(), e.host_header.as_str(), e.path.as_str()),
        ("collector:4318", "collector:4318", "/v1/traces")
    );
    let e = endpoint("http://collector/");
    assert_eq!((e.authority.as_str(), e.path.as_str()), ("collector:80", "/v1/traces"));
    let e = endpoint("HTTP://127.0.0.1:9/custom/path?x=1");
    assert_eq!((e.authority.as_str(), e.path.as_str()), ("127.0.0.1:9", "/custom/path?x=1"));
    let e = endpoint("http://[::1]:4318/v1/traces");
    assert_eq!((e.authority.as_str(), e.host_header.as_str()), ("[::1]:4318", "[::1]:4318"));
    assert_eq!(endpoint("http://[::1]").authority, "[::1]:80");
}

#[test]
fn bad_endpoints_are_typed_errors() {
    for url in [
        "collector:4318",
        "https://collector:4318",
        "grpc://x",
        "http://",
        "http:///v1/traces",
        "http://host:port",
        "http://host:",
        "http://host:99999",
        "http://user@host",
        "http://ho st",
        "http://[::1",
        "http://[::1]x",
        "http://[]:80",
        "http://host/a b",
        "http://host?x",
    ] {
        let err = OtlpExporter::new(url, "nexus").expect_err(url);
        assert!(matches!(err, OtlpError::BadEndpoint { .. }), "{url}: {err}");
        assert!(err.to_string().contains(url), "{err}");
    }
}

#[test]
fn a_span_maps_to_otlp_with_ids_times_name_and_attributes() {
    let mut child = span(0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10, 0xaabb, 0x11, 1, [100, 150, 400]);
    child.name = "app::msgs::Question".into();
    let s = otlp_span(&child, 1_000_000);
    assert_eq!(s.trace_id, (1u8..=16).collect::<Vec<_>>());
    assert_eq!(s.span_id, [0, 0, 0, 0, 0, 0, 0xaa, 0xbb]);
    assert_eq!(s.parent_span_id, [0, 0, 0, 0, 0, 0, 0, 0x11]);
    assert_eq!(s.name, "ask Question");
    assert_eq!(s.kind, span::SpanKind::Internal as i32);
    assert_eq!((s.start_time_unix_nano, s.end_time_unix_nano), (1_000_100, 1_000_400));
    assert_eq!(s.events.len(), 1);
    assert_eq!((s.events[0].name.as_str(), s.events[0].time_unix_nano), ("dispatched", 1_000_150));
    assert_eq!(s.status, None);
    let attr = |k: &str| s.attributes.iter().find(|kv| kv.key == k).and_then(|kv| kv.value.clone()?.value);
    use any_value::Value::{IntValue, StringValue};
    assert_eq!(attr("nexus.shard"), Some(IntValue(1)));
    assert_eq!(attr("nexus.agent"), child.agent.map(|a| StringValue(a.to_string())));
    assert_eq!(attr("nexus.hop"), Some(StringValue("ask".into())));
    assert_eq!(attr("nexus.queued_ns"), Some(IntValue(50)));
    assert_eq!(attr("nexus.handler_ns"), Some(IntValue(250)));
    assert_eq!(attr("nexus.message_type"), Some(StringValue("app::msgs::Question".into())));

    let mut root = span(7, 1, 0, 0, [0, 0, 1]);
    root.agent = None;
    root.hop = Hop::DeadLetter;
    let s = otlp_span(&root, 0);
    assert!(s.parent_span_id.is_empty(), "a root has no parent");
    assert!(!s.attributes.iter().any(|kv| kv.key == "nexus.agent"));
    assert_eq!(s.status.map(|st| st.code), Some(status::StatusCode::Error as i32));
}

#[test]
fn a_request_has_the_service_name_and_one_scope() {
    let exporter = OtlpExporter::new("http://localhost:4318", "checkout").expect("exporter");
    let spans = vec![span(1, 1, 0, 0, [0, 1, 2]), span(1, 2, 1, 1, [1, 2, 3])];
    let req = exporter.request(&spans, 0);
    let decoded = ExportTraceServiceRequest::decode(req.encode_to_vec().as_slice()).expect("round trip");
    assert_eq!(decoded, req);
    assert_eq!(req.resource_spans.len(), 1);
    let rs = &req.resource_spans[0];
    let service = rs.resource.as_ref().map(|r| r.attributes[0].clone());
    assert_eq!(service.as_ref().map(|kv| kv.key.as_str()), Some("service.name"));
    assert_eq!(service.and_then(|kv| kv.value?.value), Some(any_value::Value::StringValue("checkout".into())));
    assert_eq!(rs.scope_spans.len(), 1);
    assert_eq!(rs.scope_spans[0].scope.as_ref().map(|s| s.name.as_str()), Some(SCOPE_NAME));
    assert_eq!(rs.scope_spans[0].spans.len(), 2);
    assert_eq!(exporter.service_name(), "checkout");
    assert_eq!(exporter.endpoint(), "http://localhost:4318");
}

#[test]
fn responses_are_judged_by_status() {
    let ok = |text: &str| read_response(Cursor::new(text.as_bytes().to_vec()), "h:1");
    assert!(ok("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").is_ok());
    assert!(ok("HTTP/1.0 204 No Content\r\n\r\n").is_ok());
    match ok("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusyMORE") {
        Err(OtlpError::Status { code, status_line, body }) => {
            assert_eq!((code, status_line.as_str(), body.as_str()), (503, "HTTP/1.1 503 Service Unavailable", "busy"));
        }
        other => panic!("{other:?}"),
    }
    match ok("HTTP/1.1 400 Bad Request\n\nno length here") {
        Err(OtlpError::Status { code: 400, body, .. }) => assert_eq!(body, "no length here"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(ok(""), Err(OtlpError::BadResponse { .. })));
    assert!(matches!(ok("SSH-2.0-OpenSSH\r\n"), Err(OtlpError::BadResponse { .. })));
    assert!(matches!(ok("HTTP/1.1 2000 OK\r\n"), Err(OtlpError::BadResponse { .. })));
}

#[test]
fn empty_exports_send_nothing() {
    // Port 9 on a bad host would fail: nothing is sent for no spans.
    let mut exporter = OtlpExporter::new("http://invalid.invalid:9", "nexus").expect("exporter");
    assert!(exporter.export(&[], 0).is_ok());
    assert_eq!(exporter.exported(), 0);
}
