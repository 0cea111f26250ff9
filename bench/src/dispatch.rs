//! `dispatch`: the cost of one local send plus its dispatch, on a shard driven by hand.
//!
//! One shard from `Shard::cluster(1, ..)` runs on the calling thread with no executor, no
//! other thread and no clock in the loop: exactly the dispatcher's code. A [`Blaster`] sends
//! `burst` messages (at most the agent budget, 64) to a [`Sink`] per turn; when the sink has
//! handled the last message of a burst it sends the blaster a `Go` for the next one. The sink
//! paces the blaster, so its mailbox never holds more than one burst. The time per message
//! therefore covers the send (route, mailbox push, scheduling), the dispatch (run queue,
//! mailbox pop, type check, handler call) and a share of the pass and of the one `Go` per
//! burst. Target: at most 25 ns per message.
//!
//! Check: the sink received exactly `messages` messages (counted in a cell the test thread
//! reads, which is sound because everything runs on this one thread).

use crate::stats;
use crate::BenchError;
use nexus_engine::agent::{Addr, Agent, Ctx};
use nexus_engine::shard::{Shard, ShardLimits};
use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

const WORKLOAD: &str = "dispatch";

/// What one run does.
#[derive(Clone, Debug)]
pub struct DispatchParams {
    /// Messages sent to the sink.
    pub messages: u64,
    /// Messages per blaster turn (at most the shard's agent budget, so the sink keeps up).
    pub burst: u32,
}

impl Default for DispatchParams {
    fn default() -> Self {
        Self { messages: 1_000_000, burst: 64 }
    }
}

/// What one run measured.
#[derive(Clone, Copy, Debug)]
pub struct DispatchOutcome {
    /// Messages delivered to the sink (checked).
    pub messages: u64,
    /// Passes run.
    pub passes: u64,
    /// Time of all passes.
    pub elapsed: Duration,
    /// `elapsed / messages`, in nanoseconds.
    pub ns_per_message: f64,
}

/// Counts what it receives, and asks the blaster for the next burst after the last message of
/// each one.
pub struct Sink {
    received: Rc<Cell<u64>>,
    blaster: Rc<Cell<Option<Addr<Go>>>>,
    burst: u64,
    failed: Rc<Cell<u64>>,
}

impl Agent for Sink {
    type Msg = u64;

    #[inline]
    fn handle(&mut self, msg: u64, ctx: &mut Ctx<'_>) {
        self.received.set(self.received.get() + 1);
        if msg + 1 == self.burst {
            if let Some(blaster) = self.blaster.get() {
                if ctx.send(blaster, Go).is_err() {
                    self.failed.set(self.failed.get() + 1);
                }
            }
        }
    }
}

/// Sends a burst to the sink for each `Go`.
pub struct Blaster {
    sink: Addr<u64>,
    left: u64,
    burst: u32,
    failed: Rc<Cell<u64>>,
}

/// A blaster's only message: send the next burst.
#[derive(Debug)]
pub struct Go;

impl Agent for Blaster {
    type Msg = Go;

    #[inline]
    fn handle(&mut self, _go: Go, ctx: &mut Ctx<'_>) {
        let n = u64::from(self.burst).min(self.left);
        for i in 0..n {
            if ctx.send(self.sink, i).is_err() {
                self.failed.set(self.failed.get() + 1);
            }
        }
        self.left -= n;
    }
}

/// Sends `params.messages` messages through one hand-driven shard and checks they all arrived.
pub fn run(params: &DispatchParams) -> Result<DispatchOutcome, BenchError> {
    let limits = ShardLimits::default();
    if params.burst == 0 || params.burst > limits.agent_budget {
        return Err(BenchError::params(WORKLOAD, format!("burst must be 1..={}", limits.agent_budget)));
    }
    let mut shards = Shard::cluster(1, limits, 64).map_err(|e| BenchError::params(WORKLOAD, e.to_string()))?;
    let shard = &mut shards[0];
    let received = Rc::new(Cell::new(0));
    let failed = Rc::new(Cell::new(0));
    let blaster_cell = Rc::new(Cell::new(None));
    let sink = shard
        .spawn(Sink {
            received: received.clone(),
            blaster: blaster_cell.clone(),
            burst: u64::from(params.burst),
            failed: failed.clone(),
        })
        .map_err(|source| BenchError::Spawn { workload: WORKLOAD, source })?;
    let blaster = shard
        .spawn(Blaster { sink, left: params.messages, burst: params.burst, failed: failed.clone() })
        .map_err(|source| BenchError::Spawn { workload: WORKLOAD, source })?;
    blaster_cell.set(Some(blaster));
    if shard.inject(blaster, Go).is_err() {
        return Err(BenchError::params(WORKLOAD, "the inject queue is full"));
    }
    let mut passes = 0u64;
    // A pass that does nothing while messages are missing means they are lost: stop there.
    let started = Instant::now();
    while received.get() < params.messages {
        passes += 1;
        if shard.pass() == 0 {
            break;
        }
    }
    let elapsed = started.elapsed();
    if received.get() != params.messages || failed.get() != 0 {
        return Err(BenchError::check(
            WORKLOAD,
            format!(
                "{} messages received, {} sends failed; expected {}",
                received.get(),
                failed.get(),
                params.messages
            ),
        ));
    }
    Ok(DispatchOutcome {
        messages: params.messages,
        passes,
        elapsed,
        ns_per_message: stats::ns_per(elapsed, params.messages),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_reaches_the_sink() {
        let out = run(&DispatchParams { messages: 1_000, burst: 64 }).unwrap();
        assert_eq!(out.messages, 1_000);
        assert!(out.passes >= 1);
        // Far more than one mailbox holds: the sink's pacing must keep every send accepted.
        let out = run(&DispatchParams { messages: 100_000, burst: 64 }).unwrap();
        assert_eq!(out.messages, 100_000);
        assert!(run(&DispatchParams { messages: 10, burst: 0 }).is_err());
    }
}
