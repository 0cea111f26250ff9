//! Export Nexus message-tracing spans.
//!
//! The engine records one [`Span`](nexus_engine::trace::Span) per hop of a sampled message
//! and buffers them per shard; [`TraceHandle::drain`](nexus_engine::trace::TraceHandle::drain)
//! takes them. This crate turns them into something to look at:
//!
//! - [`SpanRecord`] ([`record`]): an owned span; every exporter takes `&[SpanRecord]`, so spans
//!   drained in-process and spans shipped from a server ([`wire`], one text line per span)
//!   are handled alike;
//! - [`write_chrome`] ([`chrome`]): Chrome Trace Event JSON for the Perfetto UI and
//!   chrome://tracing, one thread per shard, flow arrows from each hop to the next;
//! - [`slowest`] and [`render_paths`] ([`paths`]): the slowest root-to-leaf paths as text;
//! - [`OtlpExporter`] ([`otlp`]): OTLP over HTTP/protobuf to an OpenTelemetry collector
//!   (Jaeger, Tempo, the OpenTelemetry Collector), with a small std-only HTTP/1.1 client;
//! - [`Collector`] ([`collector`]): a background thread that drains an engine's spans every
//!   interval and exports them over OTLP, counting what it sent and what it lost.

#![deny(missing_docs)]

pub mod chrome;
pub mod collector;
pub mod otlp;
pub mod paths;
pub mod record;
pub mod wire;

#[cfg(test)]
mod testing;

pub use chrome::{chrome_json, write_chrome};
pub use collector::{Collector, CollectorStats};
pub use otlp::{OtlpError, OtlpExporter};
pub use paths::{render_paths, slowest, TracePath};
pub use record::SpanRecord;
pub use wire::{decode, encode, WireError};
