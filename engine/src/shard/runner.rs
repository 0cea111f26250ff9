//! Running a shard: the idle policy, and the two executors that drive the dispatcher.
//!
//! The dispatcher spins in its own loop. Handing control back to glommio on every pass would cost
//! a timer cancel and re-arm through io_uring each time (about 2 µs here), so the glommio task
//! returns to its executor only when glommio asks for it (`need_preempt`, checked every
//! [`PREEMPT_CHECK_PASSES`] passes) or after `passes_before_yield` idle passes, so that timers
//! and I/O stay live. Busy passes make no system call.
//!
//! Idle, at no cost: a shard spins only right after real work. Once a pass that did work is
//! followed by `spin_before_park` of passes with none, the shard announces on its doorbell
//! that it sleeps, re-checks its inputs, and parks until a peer or a host thread rings, or until
//! its next deadline (an ask's or a timer's): there is no periodic wake-up. A shard woken
//! without work (a timer that fired nothing it had to run, or a spurious wake) parks again at
//! once instead of spinning. The spin is adaptive: a spin that ended in a park halves the next
//! one (down to an eighth of `spin_before_park`), and a spin that met work restores it.
//!
//! On a contended CPU the spin is short. When the shard's thread was switched out against its
//! will since its last park (the kernel's involuntary context switches, read at each park), it
//! spins at most [`CONTENDED_SPIN`] before it parks, so that another runnable thread there (a
//! client on the same machine, another shard on a shared core) gets the CPU instead of waiting
//! for the spin to end; the park's wake-up then brings the shard back ahead of it. An
//! uncontended shard spins as before, so a cross-shard round trip is unaffected. Measured with
//! two shards and redis-benchmark on 2 vCPUs: SET `-P 16` 1.05-1.09x with p99 no worse.
//! Yielding the CPU during the spin instead (`sched_yield`) gained more throughput but let the
//! client keep the CPU for whole scheduler slices: p99 3.5-6.9 ms against 1.0-1.9 ms (PERF.md).
//! `park_timeout`, when set, caps a single park (`None`, the default, means no cap).
//! A driver made with [`Driver::in_executor`] does not park the thread: it hands the park back
//! to its caller ([`DriveOutcome::Park`]), which sleeps inside the executor so that the shard's
//! network tasks and timers stay live (see `Doorbell::set_waker`).
//!
//! A handler that woke a task of the shard's executor (a connection waiting for its reply) asks
//! for a yield with `Ctx::yield_to_executor`; the driver then returns after the pass, so the
//! task runs without waiting for the next idle yield.

use super::core::Shard;
use super::shared::Phase;
use std::time::{Duration, Instant};

/// Passes between two `need_preempt` checks of the glommio executor.
pub const PREEMPT_CHECK_PASSES: u32 = 16;
/// Idle passes between two clock reads while spinning.
const IDLE_CLOCK_EVERY: u32 = 64;
/// The longest spin on a contended CPU (see the module documentation).
pub(crate) const CONTENDED_SPIN: Duration = Duration::from_micros(20);

/// How a shard idles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdlePolicy {
    /// Spin this long with no work before parking.
    pub spin_before_park: Duration,
    /// Idle passes after which a glommio shard yields to its executor.
    pub passes_before_yield: u32,
    /// Longest single park; `None` (the default): until a ring or the next deadline.
    pub park_timeout: Option<Duration>,
}

impl Default for IdlePolicy {
    fn default() -> Self {
        Self { spin_before_park: Duration::from_micros(200), passes_before_yield: 256, park_timeout: None }
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
    /// time: sleep in the executor, then call `run` again. See [`ParkRequest`].
    Park(ParkRequest),
}

/// A park handed to the executor: store the sleeping task's waker on the shard's doorbell,
/// call `Shard::announce_sleep(&request)`, and if it says the shard may sleep, wait until the
/// waker is woken or `timeout` passes; then `wake_up` and `clear_waker` on the doorbell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParkRequest {
    /// The longest sleep: until the nearest ask deadline or timer, capped by the policy's
    /// `park_timeout`; `None` when there is neither (sleep until rung).
    pub timeout: Option<Duration>,
    /// The phase the shard saw before parking: a change cancels the park.
    pub(crate) phase: Phase,
}

/// The loop around [`Shard::pass`]: spinning, parking, yielding, and drain progress.
#[derive(Debug)]
pub struct Driver {
    policy: IdlePolicy,
    idle_passes: u32,
    idle_since: Option<Instant>,
    parks_in_executor: bool,
    /// A pass did work since the last park: the shard may spin before parking again.
    spin_armed: bool,
    /// How long the next spin lasts (adaptive, see the module documentation).
    spin: Duration,
    /// The thread's involuntary context switches, as read at the last park.
    switched_out: u64,
    /// The thread was switched out against its will before the last park: spins are short.
    contended: bool,
}

impl Driver {
    /// A driver with `policy` that parks its thread when idle.
    pub fn new(policy: IdlePolicy) -> Self {
        Self {
            spin: policy.spin_before_park,
            policy,
            idle_passes: 0,
            idle_since: None,
            parks_in_executor: false,
            spin_armed: true,
            switched_out: involuntary_switches(),
            contended: false,
        }
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
                self.busy();
                return DriveOutcome::Yield;
            }
            if work > 0 || shard.has_pending_work() {
                self.busy();
            } else {
                self.idle_passes += 1;
                // The park check comes first: a shard that yields after every idle pass must
                // still park once it has been idle for its spin.
                if self.spin_is_over() {
                    if self.parks_in_executor {
                        if let Some(request) = self.prepare_park(shard, phase) {
                            return DriveOutcome::Park(request);
                        }
                    } else {
                        self.park(shard, phase);
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

    /// A pass did work: arm the spin, at its full length when a spin was under way (it met
    /// work, so spinning pays here).
    #[inline]
    fn busy(&mut self) {
        if self.idle_since.is_some() {
            self.spin = self.policy.spin_before_park;
        }
        self.idle_passes = 0;
        self.idle_since = None;
        self.spin_armed = true;
    }

    /// Whether the shard should stop spinning and park: at once when no work came since the
    /// last park, otherwise once the spin's time has passed (the clock is read every
    /// [`IDLE_CLOCK_EVERY`] idle passes).
    fn spin_is_over(&mut self) -> bool {
        if !self.spin_armed {
            return true;
        }
        if self.idle_passes % IDLE_CLOCK_EVERY != 1 && !self.spin.is_zero() {
            return false;
        }
        let now = Instant::now();
        let since = *self.idle_since.get_or_insert(now);
        let spun = now.duration_since(since);
        let limit = if self.contended { self.spin.min(CONTENDED_SPIN) } else { self.spin };
        if spun < limit {
            return false;
        }
        // The spin ran out without work: the next one is shorter.
        self.spin = (self.spin / 2).max(self.policy.spin_before_park / 8);
        true
    }

    /// The park's deadline, or `None` when the shard has work after all. Resets the spin: the
    /// next one needs work first.
    fn prepare_park(&mut self, shard: &mut Shard, phase: Phase) -> Option<ParkRequest> {
        let switched_out = involuntary_switches();
        self.contended = switched_out > self.switched_out;
        self.switched_out = switched_out;
        self.idle_passes = 0;
        self.idle_since = None;
        self.spin_armed = false;
        if shard.has_input() || shard.current_phase() != phase {
            self.spin_armed = true;
            return None;
        }
        let mut timeout = shard.next_deadline().map(|deadline| {
            let now = shard.shared.clock.now_ns();
            Duration::from_nanos(deadline.saturating_sub(now))
        });
        if let Some(cap) = self.policy.park_timeout {
            timeout = Some(timeout.map_or(cap, |t| t.min(cap)));
        }
        Some(ParkRequest { timeout, phase })
    }

    fn park(&mut self, shard: &mut Shard, phase: Phase) {
        let Some(request) = self.prepare_park(shard, phase) else { return };
        if !shard.announce_sleep(&request) {
            self.spin_armed = true;
            return; // work arrived since the last look: go and take it
        }
        shard.metrics.counters.parks += 1;
        shard.shared.doorbells[shard.index].park_until_rung(request.timeout);
    }
}

/// The calling thread's involuntary context switches so far (`getrusage(RUSAGE_THREAD)`'s
/// `ru_nivcsw`): how often the kernel switched it out to run another thread. 0 where it cannot
/// be read (and under Miri, which has no `getrusage`).
pub(crate) fn involuntary_switches() -> u64 {
    #[cfg(miri)]
    return 0;
    #[cfg(not(miri))]
    {
        // SAFETY: `rusage` is plain integers, so all zeros is a valid value.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `usage` is a valid, writable `rusage` that outlives the call, which fills it
        // in for the calling thread (RUSAGE_THREAD, Linux).
        let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
        if rc == 0 {
            u64::try_from(usage.ru_nivcsw).unwrap_or(0)
        } else {
            0
        }
    }
}

#[cfg(all(test, not(miri)))]
mod tests {
    use super::involuntary_switches;
    use crate::topology::os::{current_cpu, set_current_thread_affinity};
    use std::time::{Duration, Instant};

    /// Two threads spinning on one CPU: the kernel switches them out against their will, and
    /// `involuntary_switches` sees it (the contention that shortens a shard's spin).
    #[test]
    fn threads_spinning_on_one_cpu_count_involuntary_switches() {
        let cpu = current_cpu().unwrap_or(0);
        let spin = move || {
            set_current_thread_affinity(&[cpu]).unwrap();
            let before = involuntary_switches();
            let end = Instant::now() + Duration::from_millis(200);
            while Instant::now() < end {
                std::hint::spin_loop();
            }
            involuntary_switches() - before
        };
        let other = std::thread::spawn(spin);
        let mine = std::thread::spawn(spin).join().unwrap();
        let theirs = other.join().unwrap();
        assert!(mine + theirs > 0, "two spinners shared cpu {cpu} for 200 ms without a switch");
    }
}
