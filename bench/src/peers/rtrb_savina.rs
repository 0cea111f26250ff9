//! The rtrb peer's Savina workloads: pinned OS threads joined by `rtrb::RingBuffer`s, bare
//! single-producer single-consumer rings, with a waiting end retrying instead of parking.
//!
//! Only fan-in runs. Its senders are `2 * senders_per_shard` threads (the two CPUs stand for the
//! engine's shards; sender `j` on `cpus.first` for even `j`, `cpus.second` for odd `j`, as the
//! Nexus sender `j` goes to shard `j % shards`), each with a ring of its own to the collector
//! thread on `cpus.first`, which polls every ring in turn (the only way to fan in over SPSC
//! rings). A ring holds `window` messages (the Nexus window rule: by default the 1,024 of a
//! collector's mailbox less 32, over the senders), so a full ring is the credit and `burst` has
//! no use. The collector starts each sender by pushing its range of values into a one-slot start
//! ring, like the Nexus `Start` broadcast, so that all values together are `1..=messages`.
//!
//! Timed: the collector's first `Start` to its counting the last message; rate = messages per
//! second. Checked: the collector counted exactly `messages` messages summing to n(n+1)/2, and
//! each sender reports having pushed exactly its share. Every message carries its sender's CPU
//! and the collector notes it (`crossed`).
//!
//! Per message: a `push` (slot write, release store of the tail) and a `pop` (slot read, release
//! store of the head), no lock, no allocation, no system call while data flows. Unlike the core
//! rtrb peer (one thread per CPU), fan-in runs one thread more than it has CPUs: sender 0 shares
//! `cpus.first` with the collector, as Nexus sender 0 shares shard 0 with it. A waiting end
//! therefore spins only [`SPINS`] times, then yields its CPU (`sched_yield`) on every retry, so
//! that two spinners on one CPU hand it over instead of each burning a whole time slice. A
//! waiting end checks its peer's ring for abandonment (a dead peer ends the run) and, every
//! 1,024 retries, the run's deadline (scaled to the work, as the Nexus host asks are), so a run
//! never hangs the bench.
//!
//! Skipped, with the reason in the report:
//! - every `Local` run: a spinning ring between ends on one thread is not a workload;
//! - chameneos: 100 creatures need 100 spinning threads on two CPUs (the OS scheduler would be
//!   the workload, as for the core peer's thread-ring) and creature-to-creature `Change`
//!   messages need a ring per ordered pair of creatures;
//! - big: any agent pings any other, so a ring per ordered pair: O(n²) rings (14,280 for 120
//!   agents), on top of 120 spinning threads;
//! - fj-throughput: the links are simple (a ring per worker), but 60 spinning workers on two
//!   CPUs would measure the OS scheduler, not the ring;
//! - fj-create and fib: an rtrb ring is a link, not a way to create actors; a thread per
//!   operation would time OS thread creation (the crossbeam peer reports that for fj-create),
//!   and fib would need 242,785 of them.

use super::rtrb_peer::{both, hung_up, join, Gate, CAPACITY, LOCAL};
use super::{current_cpu, CrossCount, PeerCpus, PeerRate, PeerResult};
use crate::big::BigParams;
use crate::chameneos::ChameneosParams;
use crate::fan_in::FanInParams;
use crate::fib::FibParams;
use crate::fork_join::{CreateParams, ThroughputParams};
use crate::setup::{self, Placement};
use crate::stats;
use crate::BenchError;
use rtrb::{Consumer, Producer, PushError, RingBuffer};
use std::time::{Duration, Instant};

/// Retries a waiting end spins before it starts yielding its CPU on every retry.
pub const SPINS: u64 = 64;

/// Retries between two looks at the deadline.
const CLOCK_EVERY: u64 = 1024;

/// Room the Nexus fan-in keeps free in the collector's mailbox (its window rule).
const FAN_IN_ROOM: u64 = 32;

/// The most threads a fan-in starts (senders plus the collector).
const MAX_THREADS: u64 = 128;

const CHAMENEOS: &str = "one spinning thread per creature (100 on two CPUs) and a ring per ordered pair of creatures";
const BIG: &str = "any agent pings any other: a ring per ordered pair, O(n^2) rings, and a spinning thread per agent";
const FJ_THROUGHPUT: &str = "one spinning thread per worker (60 on two CPUs) would measure the OS scheduler";
const FJ_CREATE: &str = "a ring is not a way to create actors: a thread per operation times OS thread creation";
const FIB: &str = "a ring is not a way to create actors: one thread per call is 242,785 threads for fib(25)";
const TOO_MANY: &str = "more than 128 spinning threads on two CPUs would measure the OS scheduler";

/// A waiting end's retries: spin first, then yield the CPU, and look at the deadline now and
/// then.
struct Wait {
    retries: u64,
    at: Instant,
}

impl Wait {
    fn new(at: Instant) -> Self {
        Self { retries: 0, at }
    }

    /// Waits one retry; fails once the deadline has passed.
    #[inline]
    fn step(&mut self, workload: &'static str) -> Result<(), BenchError> {
        self.retries += 1;
        if self.retries <= SPINS {
            std::hint::spin_loop();
            return Ok(());
        }
        if self.retries % CLOCK_EVERY == 0 && Instant::now() >= self.at {
            return Err(BenchError::check(workload, "timed out waiting for a message"));
        }
        std::thread::yield_now();
        Ok(())
    }

    /// Whether it is past the spinning phase (a good moment for slower checks).
    fn yielding(&self) -> bool {
        self.retries > SPINS
    }

    fn reset(&mut self) {
        self.retries = 0;
    }
}

/// Pushes `value`, waiting while the ring is full; fails if the consumer is gone or the
/// deadline passes.
#[inline]
fn push<T>(workload: &'static str, tx: &mut Producer<T>, mut value: T, wait: &mut Wait) -> Result<(), BenchError> {
    wait.reset();
    loop {
        match tx.push(value) {
            Ok(()) => return Ok(()),
            Err(PushError::Full(back)) => {
                if tx.is_abandoned() {
                    return Err(hung_up(workload));
                }
                value = back;
                wait.step(workload)?;
            }
        }
    }
}

/// Pops the next value, waiting while the ring is empty; fails once the producer is gone and
/// the ring drained, or the deadline passes.
fn pop<T>(workload: &'static str, rx: &mut Consumer<T>, wait: &mut Wait) -> Result<T, BenchError> {
    wait.reset();
    loop {
        if let Ok(v) = rx.pop() {
            return Ok(v);
        }
        if rx.is_abandoned() {
            // The producer may have pushed its last value just before it went away.
            return rx.pop().map_err(|_| hung_up(workload));
        }
        wait.step(workload)?;
    }
}

/// Chameneos: skipped (see the module doc).
pub fn chameneos(p: &ChameneosParams, _cpus: PeerCpus) -> Result<PeerResult<PeerRate>, BenchError> {
    Ok(PeerResult::Skipped(if p.placement == Placement::Local { LOCAL } else { CHAMENEOS }))
}

/// Big: skipped (see the module doc).
pub fn big(p: &BigParams, _cpus: PeerCpus) -> Result<PeerResult<PeerRate>, BenchError> {
    Ok(PeerResult::Skipped(if p.placement == Placement::Local { LOCAL } else { BIG }))
}

/// Fork-join throughput: skipped (see the module doc).
pub fn fj_throughput(p: &ThroughputParams, _cpus: PeerCpus) -> Result<PeerResult<PeerRate>, BenchError> {
    Ok(PeerResult::Skipped(if p.placement == Placement::Local { LOCAL } else { FJ_THROUGHPUT }))
}

/// Fork-join creation: skipped (see the module doc).
pub fn fj_create(p: &CreateParams, _cpus: PeerCpus) -> Result<PeerResult<PeerRate>, BenchError> {
    Ok(PeerResult::Skipped(if p.placement == Placement::Local { LOCAL } else { FJ_CREATE }))
}

/// Fibonacci: skipped (see the module doc).
pub fn fib(p: &FibParams, _cpus: PeerCpus) -> Result<PeerResult<PeerRate>, BenchError> {
    Ok(PeerResult::Skipped(if p.placement == Placement::Local { LOCAL } else { FIB }))
}

/// A fan-in message: the value and its sender's CPU.
struct Add(u64, usize);

/// The fan-in's senders (`senders_per_shard` on each of the two CPUs) and each one's window by
/// the Nexus rule (0: the 1,024 of a collector's mailbox less 32, over the senders). Shared with
/// the crossbeam peer, like [`share`] and [`check_fan_in`].
pub(super) fn fan_in_shape(p: &FanInParams) -> Result<(u64, u64), BenchError> {
    let senders = u64::from(p.senders_per_shard) * 2;
    let budget = CAPACITY as u64 - FAN_IN_ROOM;
    let window = if p.window == 0 { budget / senders.max(1) } else { u64::from(p.window) };
    if senders == 0 || window == 0 || senders * window > budget {
        let what =
            format!("{senders} senders with a window of {window} need at least 1 each and at most {budget} in all");
        return Err(BenchError::params("fan-in", what));
    }
    Ok((senders, window))
}

/// Sender `j`'s share of `messages` over `senders` (the first `messages % senders` take one more).
pub(super) fn share(messages: u64, senders: u64, j: usize) -> u64 {
    messages / senders + u64::from((j as u64) < messages % senders)
}

/// Checks a fan-in: the collector's count and sum (`n(n+1)/2`), and what each sender sent.
pub(super) fn check_fan_in(messages: u64, count: u64, sum: u64, sent: &[u64]) -> Result<(), BenchError> {
    const W: &str = "fan-in";
    let expected_sum = (u128::from(messages) * (u128::from(messages) + 1) / 2) as u64;
    if count != messages || sum != expected_sum {
        let what =
            format!("collected {count} messages summing to {sum}; expected {messages} summing to {expected_sum}");
        return Err(BenchError::check(W, what));
    }
    for (j, &s) in sent.iter().enumerate() {
        let share = share(messages, sent.len() as u64, j);
        if s != share {
            return Err(BenchError::check(W, format!("sender {j} sent {s} messages; expected {share}")));
        }
    }
    Ok(())
}

/// The collector: starts every sender, then polls their rings until `messages` have arrived.
/// Returns (count, sum, elapsed, crossing).
fn collect(
    mut starts: Vec<Producer<(u64, u64)>>,
    mut rings: Vec<Consumer<Add>>,
    messages: u64,
    at: Instant,
) -> Result<(u64, u64, Duration, CrossCount), BenchError> {
    const W: &str = "fan-in";
    let senders = rings.len() as u64;
    let shares: Vec<u64> = (0..rings.len()).map(|j| share(messages, senders, j)).collect();
    let (mut count, mut sum, mut cross, mut first) = (0u64, 0u64, CrossCount::default(), 1);
    let mut got = vec![0u64; rings.len()];
    let mut wait = Wait::new(at);
    let started = Instant::now();
    for (start, &share) in starts.iter_mut().zip(&shares) {
        push(W, start, (first, first + share - 1), &mut wait)?;
        first += share;
    }
    wait.reset();
    while count < messages {
        let mut idle = true;
        for (rx, got) in rings.iter_mut().zip(got.iter_mut()) {
            // What is there now, at most a ring's worth: a busy sender cannot starve the others.
            for _ in 0..rx.buffer().capacity() {
                let Ok(Add(v, cpu)) = rx.pop() else { break };
                cross.note(cpu);
                (count, sum, *got, idle) = (count + 1, sum.wrapping_add(v), *got + 1, false);
            }
        }
        if !idle {
            wait.reset();
            continue;
        }
        if wait.yielding() {
            // Every ring is empty: a sender gone before its share would leave us waiting.
            for ((rx, &got), &share) in rings.iter().zip(&got).zip(&shares) {
                if got < share && rx.is_abandoned() && rx.is_empty() {
                    return Err(hung_up(W));
                }
            }
        }
        wait.step(W)?;
    }
    Ok((count, sum, started.elapsed(), cross))
}

/// Fan-in from one pinned thread per sender, each over its own ring, into a polling collector:
/// messages per second (see the module doc).
pub fn fan_in(p: &FanInParams, cpus: PeerCpus) -> Result<PeerResult<PeerRate>, BenchError> {
    const W: &str = "fan-in";
    if p.placement == Placement::Local {
        return Ok(PeerResult::Skipped(LOCAL));
    }
    let (senders, window) = fan_in_shape(p)?;
    if senders + 1 > MAX_THREADS {
        return Ok(PeerResult::Skipped(TOO_MANY));
    }
    let messages = p.messages;
    let at = Instant::now() + setup::timeout_for(messages, Duration::from_micros(5));
    let mut gate = Gate::new(W);
    let (mut starts, mut rings, mut handles) = (Vec::new(), Vec::new(), Vec::new());
    for j in 0..senders as usize {
        let (start_tx, mut start_rx) = RingBuffer::<(u64, u64)>::new(1);
        let (mut tx, rx) = RingBuffer::<Add>::new(window as usize);
        let cpu = if j % 2 == 0 { cpus.first } else { cpus.second };
        handles.push(gate.spawn(&format!("rtrb-fan-in-{j}"), cpu, cpus.pin, move || {
            let mut wait = Wait::new(at);
            let (first, last) = pop(W, &mut start_rx, &mut wait)?;
            for v in first..=last {
                push(W, &mut tx, Add(v, current_cpu()), &mut wait)?;
            }
            Ok(last + 1 - first)
        })?);
        starts.push(start_tx);
        rings.push(rx);
    }
    let collector = gate.spawn("rtrb-collector", cpus.first, cpus.pin, move || collect(starts, rings, messages, at))?;
    gate.open();
    let mut sent = Vec::with_capacity(handles.len());
    let mut failed = None;
    for h in handles {
        match join(W, h) {
            Ok(s) => sent.push(s),
            Err(e) => failed = failed.or(Some(e)),
        }
    }
    let ((count, sum, elapsed, cross), ()) = both(join(W, collector), failed.map_or(Ok(()), Err))?;
    check_fan_in(messages, count, sum, &sent)?;
    Ok(PeerResult::Ran(PeerRate { elapsed, per_s: stats::per_second(messages, elapsed), crossed: cross.share() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CPUS: PeerCpus = PeerCpus { first: 0, second: 1, pin: false };

    fn skipped(out: PeerResult<PeerRate>) {
        assert!(matches!(out, PeerResult::Skipped(_)), "{out:?}");
    }

    #[test]
    fn fan_in_checks_count_and_sum_and_skips_local() {
        let params = FanInParams { messages: 2_000, ..FanInParams::default() };
        let PeerResult::Ran(out) = fan_in(&params, CPUS).unwrap() else { panic!("cross must run") };
        assert!(out.per_s > 0.0 && out.per_s.is_finite() && (0.0..=1.0).contains(&out.crossed), "{out:?}");
        // An uneven split over six senders with a window far below the messages.
        let params = FanInParams { messages: 2_001, senders_per_shard: 3, window: 5, ..FanInParams::default() };
        assert!(matches!(fan_in(&params, CPUS).unwrap(), PeerResult::Ran(_)));
        let params = FanInParams { messages: 0, ..FanInParams::default() };
        assert!(matches!(fan_in(&params, CPUS).unwrap(), PeerResult::Ran(_)));
        skipped(
            fan_in(&FanInParams { messages: 2_000, placement: Placement::Local, ..Default::default() }, CPUS).unwrap(),
        );
        assert!(fan_in(&FanInParams { window: 1_000, ..FanInParams::default() }, CPUS).unwrap_err().is_usage());
    }

    #[test]
    fn the_other_workloads_are_skipped_both_ways() {
        for placement in Placement::BOTH {
            skipped(chameneos(&ChameneosParams { creatures: 10, meetings: 1_000, placement }, CPUS).unwrap());
            skipped(big(&BigParams { agents: 8, pings: 100, placement }, CPUS).unwrap());
            let params = ThroughputParams { agents: 4, messages: 200, placement, ..ThroughputParams::default() };
            skipped(fj_throughput(&params, CPUS).unwrap());
            skipped(fj_create(&CreateParams { agents: 500, placement, ..CreateParams::default() }, CPUS).unwrap());
            skipped(fib(&FibParams { n: 10, placement }, CPUS).unwrap());
        }
    }

    #[test]
    fn a_dead_or_silent_peer_ends_the_wait() {
        let far = Instant::now() + Duration::from_secs(10);
        let (tx, mut rx) = RingBuffer::<u64>::new(1);
        drop(tx);
        assert!(pop("test", &mut rx, &mut Wait::new(far)).is_err(), "abandoned and empty");
        let (mut tx, rx) = RingBuffer::<u64>::new(1);
        drop(rx);
        assert!(push("test", &mut tx, 1, &mut Wait::new(far)).is_ok(), "room left: the push lands");
        assert!(push("test", &mut tx, 2, &mut Wait::new(far)).is_err(), "full and abandoned");
        let (_tx, mut rx) = RingBuffer::<u64>::new(1);
        let err = pop("test", &mut rx, &mut Wait::new(Instant::now())).unwrap_err();
        assert!(err.to_string().contains("timed out"), "{err}");
    }
}
