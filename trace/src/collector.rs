//! [`Collector`]: a named background thread that drains an engine's span buffers every
//! interval and exports the spans over OTLP.
//!
//! Each round drains every buffered span ([`TraceHandle::drain`]), converts them to
//! [`SpanRecord`]s and sends them in batches of at most [`MAX_BATCH`]. A failed batch ends
//! the round: it and the batches after it are **lost** (dropped, not retried: the buffers
//! keep filling meanwhile, and a collector that is down would otherwise hold them all).
//! Failures are logged with `tracing::warn!`, at most once per [`WARN_EVERY`] (the warnings
//! held back in between are counted in the next one).
//!
//! Invariants: nothing is silent: every drained span is counted once, as exported or as
//! lost (`drained == exported + lost` whenever no round is in progress), and
//! [`CollectorStats::buffer_dropped`] reports the spans the engine dropped before the
//! collector could drain them; [`Collector::stop`] (and drop) runs one last round before the
//! thread ends, so spans recorded before the stop are exported or counted lost.

use crate::otlp::{OtlpError, OtlpExporter, MAX_BATCH};
use crate::record::SpanRecord;
use nexus_engine::trace::{Span, TraceHandle};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The least time between two export-failure warnings.
pub const WARN_EVERY: Duration = Duration::from_secs(10);

/// The collector thread's name.
pub const THREAD_NAME: &str = "nexus-trace-collector";

/// What a collector has done so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CollectorStats {
    /// Spans taken from the engine's buffers.
    pub drained: u64,
    /// Spans the OTLP endpoint accepted.
    pub exported: u64,
    /// Requests that failed (one per failed round).
    pub failed_exports: u64,
    /// Spans drained but never accepted: the failed batch and those after it in its round.
    pub lost: u64,
    /// Spans the engine dropped because a shard's buffer was full (read from the engine).
    pub buffer_dropped: u64,
    /// The last export error, as text.
    pub last_error: Option<String>,
}

/// The counters the thread updates and [`Collector::stats`] reads.
#[derive(Default)]
struct Counters {
    drained: AtomicU64,
    exported: AtomicU64,
    failed_exports: AtomicU64,
    lost: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// Drains an engine's spans every interval and exports them; see the module documentation.
#[derive(Debug)]
pub struct Collector {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
    handle: TraceHandle,
}

impl std::fmt::Debug for Counters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counters").field("exported", &self.exported.load(Ordering::Relaxed)).finish_non_exhaustive()
    }
}

impl Collector {
    /// Starts the collector thread: every `interval` (at least 1 ms) it drains `handle` and
    /// exports through `exporter`.
    ///
    /// # Panics
    /// If the OS cannot start a thread (as [`std::thread::spawn`] does); [`Self::try_start`]
    /// returns that error instead.
    pub fn start(handle: TraceHandle, exporter: OtlpExporter, interval: Duration) -> Collector {
        match Self::try_start(handle, exporter, interval) {
            Ok(collector) => collector,
            Err(e) => panic!("cannot start the {THREAD_NAME} thread: {e}"),
        }
    }

    /// [`Self::start`], with the thread-spawn error returned.
    pub fn try_start(handle: TraceHandle, exporter: OtlpExporter, interval: Duration) -> std::io::Result<Collector> {
        let (stop, stopped) = mpsc::channel();
        let counters = Arc::new(Counters::default());
        let round = Round { handle: handle.clone(), exporter, counters: counters.clone(), warn: WarnLimiter::new() };
        let interval = interval.max(Duration::from_millis(1));
        let thread =
            std::thread::Builder::new().name(THREAD_NAME.to_owned()).spawn(move || run(round, interval, stopped))?;
        Ok(Collector { stop: Some(stop), thread: Some(thread), counters, handle })
    }

    /// The counts so far.
    pub fn stats(&self) -> CollectorStats {
        let c = &self.counters;
        CollectorStats {
            drained: c.drained.load(Ordering::Relaxed),
            exported: c.exported.load(Ordering::Relaxed),
            failed_exports: c.failed_exports.load(Ordering::Relaxed),
            lost: c.lost.load(Ordering::Relaxed),
            buffer_dropped: self.handle.dropped(),
            last_error: c.last_error.lock().map(|e| e.clone()).unwrap_or_else(|p| p.into_inner().clone()),
        }
    }

    /// Drains and exports once more, ends the thread and returns the final counts.
    pub fn stop(mut self) -> CollectorStats {
        self.shutdown();
        self.stats()
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            // The thread may have ended already (a panic): then there is no one to tell.
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the {THREAD_NAME} thread panicked; its last spans may not be counted");
            }
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The thread's body: a round every `interval`, and a last one when told to stop.
fn run(mut round: Round, interval: Duration, stopped: mpsc::Receiver<()>) {
    let mut drained = Vec::new();
    loop {
        let stopping = !matches!(stopped.recv_timeout(interval), Err(RecvTimeoutError::Timeout));
        round.run(&mut drained);
        if stopping {
            return;
        }
    }
}

/// What one round needs: the engine, the exporter, the counters and the warning limiter.
struct Round {
    handle: TraceHandle,
    exporter: OtlpExporter,
    counters: Arc<Counters>,
    warn: WarnLimiter,
}

impl Round {
    /// Drains every buffered span and exports them (see the module documentation).
    fn run(&mut self, drained: &mut Vec<Span>) {
        drained.clear();
        self.handle.drain(drained);
        if drained.is_empty() {
            return;
        }
        let records: Vec<SpanRecord> = drained.iter().map(SpanRecord::from).collect();
        self.counters.drained.fetch_add(records.len() as u64, Ordering::Relaxed);
        let epoch = self.handle.epoch_unix_ns();
        for (i, batch) in records.chunks(MAX_BATCH).enumerate() {
            match self.exporter.export_batch(batch, epoch) {
                Ok(()) => {
                    self.counters.exported.fetch_add(batch.len() as u64, Ordering::Relaxed);
                }
                Err(e) => {
                    let lost = (records.len() - i * MAX_BATCH) as u64;
                    self.failed(&e, lost);
                    return;
                }
            }
        }
    }

    fn failed(&mut self, error: &OtlpError, lost: u64) {
        self.counters.failed_exports.fetch_add(1, Ordering::Relaxed);
        self.counters.lost.fetch_add(lost, Ordering::Relaxed);
        let text = error.to_string();
        if let Some(held_back) = self.warn.allow(Instant::now()) {
            tracing::warn!(
                error = %text,
                lost_spans = lost,
                warnings_held_back = held_back,
                endpoint = self.exporter.endpoint(),
                "OTLP span export failed; the spans are dropped"
            );
        }
        match self.counters.last_error.lock() {
            Ok(mut last) => *last = Some(text),
            Err(poisoned) => *poisoned.into_inner() = Some(text),
        }
    }
}

/// Lets a warning through at most once per [`WARN_EVERY`], counting those held back.
#[derive(Debug)]
struct WarnLimiter {
    last: Option<Instant>,
    held_back: u64,
}

impl WarnLimiter {
    fn new() -> Self {
        Self { last: None, held_back: 0 }
    }

    /// `Some(warnings held back since the last one)` if a warning may be logged at `now`.
    fn allow(&mut self, now: Instant) -> Option<u64> {
        if self.last.is_some_and(|last| now.saturating_duration_since(last) < WARN_EVERY) {
            self.held_back += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.held_back))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_are_let_through_once_per_period_and_count_the_rest() {
        let mut limiter = WarnLimiter::new();
        let t0 = Instant::now();
        assert_eq!(limiter.allow(t0), Some(0));
        assert_eq!(limiter.allow(t0 + Duration::from_secs(1)), None);
        assert_eq!(limiter.allow(t0 + Duration::from_secs(9)), None);
        assert_eq!(limiter.allow(t0 + WARN_EVERY), Some(2));
        assert_eq!(limiter.allow(t0 + WARN_EVERY + Duration::from_millis(1)), None);
        assert_eq!(limiter.allow(t0 + WARN_EVERY * 3), Some(1));
    }
}
