//! Running a shard: the idle policy, and the two executors that drive the dispatcher.
//!
//! The dispatcher spins in its own loop. Handing control back to glommio on every pass would cost
//! a timer cancel and re-arm through io_uring each time (about 2 µs here), so the glommio task
//! returns to its executor only when glommio asks for it (`need_preempt`, checked every
//! [`PREEMPT_CHECK_PASSES`] passes) or after `passes_before_yield` idle passes, so that timers
//! and I/O stay live. Busy passes make no system call.
//!
//! Idle: after `spin_before_park` of passes with no work, the shard announces on its doorbell
//! that it sleeps, re-checks its inputs, and parks its thread for at most `park_timeout` (less
//! when an ask deadline is nearer). Peers and host threads unpark it only when it announced.
//! A driver made with [`Driver::in_executor`] does not park the thread: it hands the park back
//! to its caller ([`DriveOutcome::Park`]), which sleeps inside the executor so that the shard's
//! network tasks and timers stay live (see `Doorbell::set_waker`).
//!
//! A handler that woke a task of the shard's executor (a connection waiting for its reply) asks
//! for a yield with `Ctx::yield_to_executor`; the driver then returns after the pass, so the
//! task runs without waiting for the next idle yield.

use super::core::Shard;
use super::doorbell::SleepTicket;
use super::shared::Phase;
use std::time::{Duration, Instant};

/// Passes between two `need_preempt` checks of the glommio executor.
pub const PREEMPT_CHECK_PASSES: u32 = 16;
/// Idle passes between two clock reads while spinning.
const IDLE_CLOCK_EVERY: u32 = 64;

/// How a shard idles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdlePolicy {
    /// Spin this long with no work before parking.
    pub spin_before_park: Duration,
    /// Idle passes after which a glommio shard yields to its executor.
    pub passes_before_yield: u32,
    /// Longest single park.
    pub park_timeout: Duration,
}

impl Default for IdlePolicy {
    fn default() -> Self {
        Self {
            spin_before_park: Duration::from_micros(200),
            passes_before_yield: 256,
            park_timeout: Duration::from_millis(1),
        }
    }
}

/// Why [`Driver::run`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DriveOutcome {
    /// The executor should get control back; call `run` again after.
    Yield,
    /// The engine is halting: call `Shard::halt`.
    Halt,
    /// (Drivers made with [`Driver::in_executor`] only.) The shard found no work for its spin
    /// time and took a sleep ticket: sleep in the executor, then call `run` again. See
    /// [`ParkRequest`].
    Park(ParkRequest),
}

/// A park handed to the executor: store the sleeping task's waker on the shard's doorbell,
/// call `try_sleep(ticket)`, and if it succeeds wait until the waker is woken or `timeout`
/// passes; then `wake_up` and `clear_waker`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParkRequest {
    /// The doorbell ticket taken before the last check for input.
    pub ticket: SleepTicket,
    /// The longest sleep (the park timeout, or less when an ask deadline or a timer is nearer).
    pub timeout: Duration,
}

/// The loop around [`Shard::pass`]: spinning, parking, yielding, and drain progress.
#[derive(Debug)]
pub struct Driver {
    policy: IdlePolicy,
    idle_passes: u32,
    idle_since: Option<Instant>,
    parks_in_executor: bool,
}

impl Driver {
    /// A driver with `policy` that parks its thread when idle.
    pub fn new(policy: IdlePolicy) -> Self {
        Self { policy, idle_passes: 0, idle_since: None, parks_in_executor: false }
    }

    /// A driver with `policy` that hands its parks to the executor ([`DriveOutcome::Park`]).
    pub fn in_executor(policy: IdlePolicy) -> Self {
        Self { parks_in_executor: true, ..Self::new(policy) }
    }

    /// Runs passes until `should_yield()` says so (checked every few passes) or the engine
    /// halts. A plain thread passes `|| false` and never yields.
    pub fn run(
        &mut self,
        shard: &mut Shard,
        mut should_yield: impl FnMut() -> bool,
        yields_when_idle: bool,
    ) -> DriveOutcome {
        let mut passes: u32 = 0;
        loop {
            let phase = shard.current_phase();
            if phase == Phase::Halting {
                return DriveOutcome::Halt;
            }
            let work = shard.pass();
            if phase == Phase::Draining {
                shard.publish_progress(work == 0);
            }
            if std::mem::take(&mut shard.yield_requested) && yields_when_idle {
                self.idle_passes = 0;
                self.idle_since = None;
                return DriveOutcome::Yield;
            }
            if work > 0 || shard.has_pending_work() {
                self.idle_passes = 0;
                self.idle_since = None;
            } else {
                self.idle_passes += 1;
                // The park check comes first: a shard that yields after every idle pass must
                // still park once it has been idle for `spin_before_park`.
                if self.idle_passes % IDLE_CLOCK_EVERY == 1 {
                    let now = Instant::now();
                    let since = *self.idle_since.get_or_insert(now);
                    if now.duration_since(since) >= self.policy.spin_before_park {
                        self.idle_passes = 0;
                        self.idle_since = None;
                        if self.parks_in_executor {
                            if let Some(request) = self.prepare_park(shard, phase) {
                                return DriveOutcome::Park(request);
                            }
                        } else {
                            self.park(shard, phase);
                        }
                    }
                }
                if yields_when_idle && self.idle_passes % self.policy.passes_before_yield.max(1) == 0 {
                    return DriveOutcome::Yield;
                }
            }
            passes = passes.wrapping_add(1);
            if passes % PREEMPT_CHECK_PASSES == 0 && should_yield() {
                return DriveOutcome::Yield;
            }
        }
    }

    /// Takes a sleep ticket and re-checks for input; `None` when there is work after all.
    fn prepare_park(&mut self, shard: &mut Shard, phase: Phase) -> Option<ParkRequest> {
        let ticket = shard.shared.doorbells[shard.index].prepare_sleep();
        if shard.has_input() || shard.current_phase() != phase {
            return None;
        }
        let mut timeout = self.policy.park_timeout;
        let next = match (shard.asks.next_deadline(), shard.timers.next_due()) {
            (Some(a), Some(t)) => Some(a.min(t)),
            (a, t) => a.or(t),
        };
        if let Some(deadline) = next {
            let now = shard.shared.clock.now_ns();
            timeout = timeout.min(Duration::from_nanos(deadline.saturating_sub(now)));
        }
        Some(ParkRequest { ticket, timeout })
    }

    fn park(&mut self, shard: &mut Shard, phase: Phase) {
        let Some(request) = self.prepare_park(shard, phase) else { return };
        let bell = &shard.shared.doorbells[shard.index];
        if !bell.try_sleep(request.ticket) {
            return; // a peer rang since the ticket: go and look
        }
        shard.metrics.counters.parks += 1;
        std::thread::park_timeout(request.timeout);
        bell.wake_up();
    }
}
