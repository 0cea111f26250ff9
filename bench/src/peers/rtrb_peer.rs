//! The rtrb peer: the floor of a bare single-producer single-consumer ring, two pinned OS
//! threads spinning on `rtrb::RingBuffer`s (one ring per direction).
//!
//! It owns two threads: the first end (pinger, producer) on `cpus.first`, the second (ponger,
//! tally) on `cpus.second`, each pinned with [`super::pin`]. Both pin themselves and wait at a
//! start gate that the host opens once both are spawned, so no figure includes a thread start.
//! A waiting end never parks: it retries `pop` (or `push` on a full ring) in a loop with
//! `std::hint::spin_loop()`, checking `is_abandoned()` (a flag on a cache line nobody writes
//! during the run) so a dead peer ends the run instead of hanging it. Rings hold 1,024
//! messages, the size of a Nexus mailbox.
//!
//! Timing and checks are those of the Nexus workloads: pingpong reads the clock once per pong
//! and records the time since the previous pong; counting times from the first push to the
//! total arriving back at the producer and checks count and sum.
//!
//! Per message: no allocation (the ring is preallocated), no lock, no system call: a `push` is
//! a slot write and a release store of the tail, a `pop` a slot read and a release store of the
//! head (each side caches the other's index and reloads it only when the ring looks full or
//! empty). That is the least any cross-thread message can cost, hence "floor".
//!
//! Skipped: every `Local` run (a spinning ring between two ends on one thread is not a
//! workload: one end would spin forever waiting for the other), and thread-ring (a ring of
//! `agents` members needs one spinning thread per member, so with more members than CPUs
//! every hop waits for the OS scheduler to run the right spinner; hosting many members per
//! thread would need a scheduler on top of rtrb, which is no longer this peer).

use super::protocol::{Ball, Count};
use super::{current_cpu, CrossCount, PeerCpus, PeerLatency, PeerRate, PeerResult};
use crate::counting::CountingParams;
use crate::pingpong::PingPongParams;
use crate::setup::Placement;
use crate::stats::{self, Percentiles};
use crate::thread_ring::ThreadRingParams;
use crate::BenchError;
use rtrb::{Consumer, Producer, PushError, RingBuffer};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::thread::JoinHandle;
use std::time::Instant;

/// Messages each ring holds (a Nexus mailbox's default capacity).
pub(super) const CAPACITY: usize = 1024;

/// Why `Local` runs are skipped.
pub(super) const LOCAL: &str = "a spinning SPSC ring between two ends on one thread is not a workload";

/// Why thread-ring is skipped.
const RING: &str = "a ring of many members needs a spinning thread per member (more than the CPUs)";

pub(super) fn hung_up(workload: &'static str) -> BenchError {
    BenchError::check(workload, "the other end hung up mid-run")
}

/// Pushes `value`, spinning while the ring is full; fails if the consumer is gone.
#[inline]
fn push<T>(workload: &'static str, tx: &mut Producer<T>, mut value: T) -> Result<(), BenchError> {
    loop {
        match tx.push(value) {
            Ok(()) => return Ok(()),
            Err(PushError::Full(back)) => {
                if tx.is_abandoned() {
                    return Err(hung_up(workload));
                }
                value = back;
                std::hint::spin_loop();
            }
        }
    }
}

/// Pops the next value, spinning while the ring is empty; `None` once the producer is gone
/// and the ring drained.
#[inline]
fn pop<T>(rx: &mut Consumer<T>) -> Option<T> {
    loop {
        if let Ok(v) = rx.pop() {
            return Some(v);
        }
        if rx.is_abandoned() {
            // The producer may have pushed its last value just before it went away.
            return rx.pop().ok();
        }
        std::hint::spin_loop();
    }
}

/// The start gate: threads pin themselves and wait here until the host opens it.
pub(super) struct Gate {
    workload: &'static str,
    go: Vec<SyncSender<()>>,
}

impl Gate {
    pub(super) fn new(workload: &'static str) -> Self {
        Self { workload, go: Vec::new() }
    }

    /// Spawns a thread pinned to `cpu` (when `pin`) that runs `f` once the gate opens. If the
    /// gate is dropped unopened (a later spawn failed), the thread ends without running `f`.
    pub(super) fn spawn<T: Send + 'static>(
        &mut self,
        name: &str,
        cpu: usize,
        pin: bool,
        f: impl FnOnce() -> Result<T, BenchError> + Send + 'static,
    ) -> Result<JoinHandle<Result<T, BenchError>>, BenchError> {
        let (go, wait) = sync_channel::<()>(1);
        let workload = self.workload;
        let handle = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let pinned = super::pin(cpu, pin);
                wait.recv().map_err(|_| BenchError::params(workload, "the run was cancelled before it started"))?;
                pinned?;
                f()
            })
            .map_err(|e| BenchError::params(workload, format!("cannot spawn a thread: {e}")))?;
        self.go.push(go);
        Ok(handle)
    }

    /// Lets every thread run.
    pub(super) fn open(self) {
        for go in &self.go {
            // A thread that already ended (it could not pin) needs no signal.
            let _ = go.send(());
        }
    }
}

/// Joins `handle`: a panic is a failed check.
pub(super) fn join<T>(workload: &'static str, handle: JoinHandle<Result<T, BenchError>>) -> Result<T, BenchError> {
    handle.join().map_err(|_| BenchError::check(workload, "a peer thread panicked"))?
}

/// Both results, or the most telling error: a usage error (such as a failed pin) first, since
/// the other thread then only saw its peer hang up.
pub(super) fn both<A, B>(a: Result<A, BenchError>, b: Result<B, BenchError>) -> Result<(A, B), BenchError> {
    match (a, b) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        (Err(a), Err(b)) if b.is_usage() && !a.is_usage() => Err(b),
        (Err(e), _) | (_, Err(e)) => Err(e),
    }
}

/// Runs `warmup + round_trips` round trips between two pinned spinning threads (see the
/// module doc).
pub fn pingpong(params: &PingPongParams, cpus: PeerCpus) -> Result<PeerResult<PeerLatency>, BenchError> {
    const W: &str = "pingpong";
    if params.placement == Placement::Local {
        return Ok(PeerResult::Skipped(LOCAL));
    }
    let (warmup, round_trips) = (params.warmup, params.round_trips);
    let total = warmup + round_trips;
    let (mut ping_tx, mut ping_rx) = RingBuffer::<Ball>::new(CAPACITY);
    let (mut pong_tx, mut pong_rx) = RingBuffer::<Ball>::new(CAPACITY);
    let mut gate = Gate::new(W);
    let ponger = gate.spawn("rtrb-ponger", cpus.second, cpus.pin, move || {
        let (mut answered, mut cross) = (0u64, CrossCount::default());
        while let Some(ping) = pop(&mut ping_rx) {
            cross.note(ping.cpu);
            push(W, &mut pong_tx, Ball { seq: ping.seq, cpu: current_cpu() })?;
            answered += 1;
        }
        Ok((answered, cross))
    })?;
    let pinger = gate.spawn("rtrb-pinger", cpus.first, cpus.pin, move || {
        let (mut h, mut cross, mut in_order) = (stats::histogram(), CrossCount::default(), true);
        let mut last = Instant::now();
        for seq in 0..total {
            push(W, &mut ping_tx, Ball { seq, cpu: current_cpu() })?;
            let pong = pop(&mut pong_rx).ok_or_else(|| hung_up(W))?;
            let now = Instant::now();
            cross.note(pong.cpu);
            in_order &= pong.seq == seq;
            if seq >= warmup {
                stats::record(&mut h, now.duration_since(last));
            }
            last = now;
        }
        Ok((cross, h, in_order))
    })?;
    gate.open();
    let ((mut cross, h, in_order), (answered, pong_cross)) = both(join(W, pinger), join(W, ponger))?;
    cross.add(pong_cross);
    if !in_order || answered != total || h.len() != round_trips {
        return Err(BenchError::check(
            W,
            format!(
                "{answered} pings answered, {} trips recorded, pongs in order: {in_order}; \
                 expected {total}, {round_trips}, true",
                h.len()
            ),
        ));
    }
    Ok(PeerResult::Ran(PeerLatency { rtt: Percentiles::of(&h), histogram: h, crossed: cross.share() }))
}

/// Pushes `messages` increments from one pinned thread to a tally on another, then asks the
/// total (see the module doc).
pub fn counting(params: &CountingParams, cpus: PeerCpus) -> Result<PeerResult<PeerRate>, BenchError> {
    const W: &str = "counting";
    if params.placement == Placement::Local {
        return Ok(PeerResult::Skipped(LOCAL));
    }
    let n = params.messages;
    let (mut tx, mut rx) = RingBuffer::<Count>::new(CAPACITY);
    let (mut total_tx, mut total_rx) = RingBuffer::<(u64, u64)>::new(1);
    let mut gate = Gate::new(W);
    let tally = gate.spawn("rtrb-tally", cpus.second, cpus.pin, move || {
        let (mut count, mut sum, mut cross) = (0u64, 0u64, CrossCount::default());
        // Ends at `Total`.
        while let Count::Add(v, cpu) = pop(&mut rx).ok_or_else(|| hung_up(W))? {
            cross.note(cpu);
            count += 1;
            sum = sum.wrapping_add(v);
        }
        push(W, &mut total_tx, (count, sum))?;
        Ok(cross)
    })?;
    let producer = gate.spawn("rtrb-producer", cpus.first, cpus.pin, move || {
        let started = Instant::now();
        for i in 1..=n {
            push(W, &mut tx, Count::Add(i, current_cpu()))?;
        }
        push(W, &mut tx, Count::Total)?;
        let total = pop(&mut total_rx).ok_or_else(|| BenchError::check(W, "the total did not arrive"))?;
        Ok((total, started.elapsed()))
    })?;
    gate.open();
    let (((count, sum), elapsed), cross) = both(join(W, producer), join(W, tally))?;
    let expected_sum = (u128::from(n) * (u128::from(n) + 1) / 2) as u64;
    if count != n || sum != expected_sum {
        return Err(BenchError::check(
            W,
            format!("the tally counted {count} messages summing to {sum}; expected {n} summing to {expected_sum}"),
        ));
    }
    Ok(PeerResult::Ran(PeerRate { elapsed, per_s: stats::per_second(n, elapsed), crossed: cross.share() }))
}

/// Thread-ring: skipped for every placement (see the module doc).
pub fn thread_ring(params: &ThreadRingParams, _cpus: PeerCpus) -> Result<PeerResult<PeerRate>, BenchError> {
    Ok(PeerResult::Skipped(if params.placement == Placement::Local { LOCAL } else { RING }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CPUS: PeerCpus = PeerCpus { first: 0, second: 1, pin: false };

    #[test]
    fn pingpong_checks_every_trip_and_skips_local() {
        let params = PingPongParams { round_trips: 200, warmup: 10, placement: Placement::Cross };
        let PeerResult::Ran(out) = pingpong(&params, CPUS).unwrap() else { panic!("cross must run") };
        assert_eq!(out.rtt.samples, 200);
        assert!(out.rtt.p50_ns > 0.0 && out.rtt.p50_ns <= out.rtt.p99_ns);
        assert!((0.0..=1.0).contains(&out.crossed));
        let local = PingPongParams { placement: Placement::Local, ..params };
        assert!(matches!(pingpong(&local, CPUS).unwrap(), PeerResult::Skipped(_)));
    }

    #[test]
    fn counting_checks_the_total_and_skips_local() {
        let params = CountingParams { messages: 3_000, burst: 256, placement: Placement::Cross };
        let PeerResult::Ran(out) = counting(&params, CPUS).unwrap() else { panic!("cross must run") };
        assert!(out.per_s > 0.0 && (0.0..=1.0).contains(&out.crossed));
        let local = CountingParams { placement: Placement::Local, ..params };
        assert!(matches!(counting(&local, CPUS).unwrap(), PeerResult::Skipped(_)));
    }

    #[test]
    fn thread_ring_is_skipped_both_ways() {
        for placement in Placement::BOTH {
            let params = ThreadRingParams { agents: 10, hops: 100, placement };
            assert!(matches!(thread_ring(&params, CPUS).unwrap(), PeerResult::Skipped(_)));
        }
    }

    #[test]
    fn a_dead_peer_ends_the_spin() {
        let (tx, mut rx) = RingBuffer::<u64>::new(1);
        drop(tx);
        assert!(pop(&mut rx).is_none());
        let (mut tx, rx) = RingBuffer::<u64>::new(1);
        drop(rx);
        assert!(push("test", &mut tx, 1).is_ok(), "room left: the push lands");
        assert!(push("test", &mut tx, 2).is_err(), "full and abandoned: no spin forever");
    }
}
