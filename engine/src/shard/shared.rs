//! What the shards of one engine share: the control plane, never message state.
//!
//! Messages cross shards only through the rings. What lives here is the small control plane
//! every thread-per-core engine needs around them, each item with a single writer:
//! - the engine clock's epoch (read-only);
//! - one [`Doorbell`] per shard (set by the shard, rung by peers);
//! - one bounded inject queue per shard (host threads push, the shard pops);
//! - one load gauge per shard (live agents, written by the shard after each pass that changed
//!   it, read by `SpawnPlacement::LeastLoaded` as a hint);
//! - the lifecycle phase and per-shard drain progress (written by the owner / each shard,
//!   read by the owner to detect quiescence during shutdown);
//! - the host's send counters and the intake gate;
//! - tracing's span buffers and sampling threshold (`trace`).

use super::doorbell::Doorbell;
use crate::envelope::Envelope;
use crossbeam_queue::ArrayQueue;
use crossbeam_utils::CachePadded;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::time::Instant;

/// The engine clock: nanoseconds since the engine started, the same on every shard
/// (`CLOCK_MONOTONIC` through `Instant`, a vDSO read, no syscall), or, for shards driven by a
/// simulator, a [`ManualClock`] that only moves when it is told to.
#[derive(Clone, Debug)]
pub struct Clock {
    epoch: Instant,
    manual: Option<ManualClock>,
}

impl Clock {
    /// A clock whose zero is now.
    pub fn new() -> Self {
        Self { epoch: Instant::now(), manual: None }
    }

    /// A clock that reads `manual`: virtual time, for shards driven by hand.
    pub fn manual(manual: &ManualClock) -> Self {
        Self { epoch: Instant::now(), manual: Some(manual.clone()) }
    }

    /// Nanoseconds since the epoch (never 0, so 0 can mean "unset").
    #[inline]
    pub fn now_ns(&self) -> u64 {
        match &self.manual {
            None => (self.epoch.elapsed().as_nanos() as u64).max(1),
            Some(manual) => manual.now_ns(),
        }
    }
}

/// Virtual time for shards driven by hand (a simulator): a count of nanoseconds that moves
/// only forward and only when its owner sets it. Cloning it shares the same time.
#[derive(Clone, Debug)]
pub struct ManualClock(std::sync::Arc<AtomicU64>);

impl ManualClock {
    /// Virtual time starting at 1 ns (0 means "unset" to the engine).
    pub fn new() -> Self {
        Self(std::sync::Arc::new(AtomicU64::new(1)))
    }

    /// The virtual time, in nanoseconds.
    #[inline]
    pub fn now_ns(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Moves the time forward to `ns`; an earlier `ns` changes nothing (time never runs back).
    pub fn advance_to(&self, ns: u64) {
        self.0.fetch_max(ns, Ordering::Relaxed);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// Lifecycle phases, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub(crate) enum Phase {
    /// Normal operation.
    Running = 0,
    /// Intake stopped; shards keep dispatching and publish drain progress.
    Draining = 1,
    /// Shards stop dispatching, wait for each other, then count what is left.
    Halting = 2,
}

/// One shard's drain progress, published while draining.
#[derive(Default)]
pub(crate) struct Progress {
    /// The last pass found nothing to do and left nothing staged.
    pub(crate) idle: AtomicBool,
    /// Envelopes this shard pushed into rings (cumulative).
    pub(crate) pushed: AtomicU64,
    /// Envelopes this shard popped from rings (cumulative).
    pub(crate) popped: AtomicU64,
    /// The shard stopped dispatching (halting), or its thread died (see `panicked`).
    pub(crate) halted: AtomicBool,
    /// The shard's thread panicked outside an agent: it will never drain or halt by itself.
    pub(crate) panicked: AtomicBool,
}

/// See the module documentation.
pub(crate) struct Shared {
    pub(crate) clock: Clock,
    pub(crate) shards: usize,
    pub(crate) doorbells: Box<[Doorbell]>,
    pub(crate) injects: Box<[ArrayQueue<Envelope>]>,
    pub(crate) loads: Box<[CachePadded<AtomicU64>]>,
    pub(crate) progress: Box<[CachePadded<Progress>]>,
    phase: AtomicU8,
    /// Shards that finished counting what was left at halt.
    pub(crate) halted_count: AtomicUsize,
    /// Host sends are accepted.
    pub(crate) accepting: AtomicBool,
    /// Host sends in progress (between the intake check and the push).
    pub(crate) host_in_flight: AtomicUsize,
    pub(crate) host_sent: AtomicU64,
    pub(crate) host_rejected_full: AtomicU64,
    pub(crate) host_rr: AtomicUsize,
    /// Tracing: span buffers and the sampling threshold (see `trace`).
    pub(crate) trace: std::sync::Arc<crate::trace::TraceShared>,
}

impl Shared {
    /// The control plane of `shards` shards, reading time from `clock`.
    /// The control plane of `shards` shards, reading time from `clock`, tracing as `trace` says.
    pub(crate) fn with_tracing(
        shards: usize,
        inject_capacity: usize,
        clock: Clock,
        trace: crate::trace::TraceConfig,
    ) -> Self {
        Self {
            trace: std::sync::Arc::new(crate::trace::TraceShared::new(shards, trace, clock.clone())),
            clock,
            shards,
            doorbells: (0..shards).map(|_| Doorbell::new()).collect(),
            injects: (0..shards).map(|_| ArrayQueue::new(inject_capacity.max(1))).collect(),
            loads: (0..shards).map(|_| CachePadded::new(AtomicU64::new(0))).collect(),
            progress: (0..shards).map(|_| CachePadded::new(Progress::default())).collect(),
            phase: AtomicU8::new(Phase::Running as u8),
            halted_count: AtomicUsize::new(0),
            accepting: AtomicBool::new(true),
            host_in_flight: AtomicUsize::new(0),
            host_sent: AtomicU64::new(0),
            host_rejected_full: AtomicU64::new(0),
            host_rr: AtomicUsize::new(0),
        }
    }

    #[inline]
    pub(crate) fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Acquire) {
            0 => Phase::Running,
            1 => Phase::Draining,
            _ => Phase::Halting,
        }
    }

    pub(crate) fn set_phase(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::Release);
        for bell in self.doorbells.iter() {
            bell.ring();
        }
    }

    /// The shard with the fewest live agents, by the published gauges.
    pub(crate) fn least_loaded(&self) -> usize {
        (0..self.shards).min_by_key(|&s| self.loads[s].load(Ordering::Relaxed)).unwrap_or(0)
    }
}
