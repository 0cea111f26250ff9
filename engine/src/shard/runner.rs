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

use super::core::Shard;
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
}

/// The loop around [`Shard::pass`]: spinning, parking, yielding, and drain progress.
#[derive(Debug)]
pub struct Driver {
    policy: IdlePolicy,
    idle_passes: u32,
    idle_since: Option<Instant>,
}

impl Driver {
    /// A driver with `policy`.
    pub fn new(policy: IdlePolicy) -> Self {
        Self { policy, idle_passes: 0, idle_since: None }
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
                        self.park(shard, phase);
                        self.idle_passes = 0;
                        self.idle_since = None;
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

    fn park(&mut self, shard: &mut Shard, phase: Phase) {
        let index = shard.index;
        let ticket = shard.shared.doorbells[index].prepare_sleep();
        if shard.has_input() || shard.current_phase() != phase {
            return;
        }
        if !shard.shared.doorbells[index].try_sleep(ticket) {
            return; // a peer rang since the ticket: go and look
        }
        let mut timeout = self.policy.park_timeout;
        if let Some(deadline) = shard.asks.next_deadline() {
            let now = shard.shared.clock.now_ns();
            timeout = timeout.min(Duration::from_nanos(deadline.saturating_sub(now)));
        }
        shard.metrics.counters.parks += 1;
        std::thread::park_timeout(timeout);
        shard.shared.doorbells[index].wake_up();
    }
}

/// Which executor runs each shard thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutorKind {
    /// A glommio `LocalExecutor` per shard (io_uring for I/O and timers). Needs the `glommio`
    /// feature and a kernel that allows io_uring.
    #[default]
    Glommio,
    /// A plain pinned OS thread per shard running the same dispatcher (for containers whose
    /// seccomp profile blocks io_uring, and for embedding without glommio).
    Thread,
}
