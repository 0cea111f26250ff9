//! The crossbeam-channel peer: the core workloads on plain OS threads joined by bounded
//! `crossbeam_channel`s with blocking `send`/`recv`, the way the crate is meant to be used.
//!
//! It owns one thread per end (pinger and ponger, producer and tally, one per ring member),
//! each pinned with [`super::pin`] (`Cross`: the first end on `cpus.first`, the second on
//! `cpus.second`; ring member `i` on `first` for even `i`, `second` for odd `i`, the ring
//! rounded up to an even size as Nexus rounds it to a multiple of its shards). Every thread
//! pins itself and then waits at a start gate; the host opens the gate once all of them are
//! spawned, so no figure includes a thread start. Channels hold 1,024 messages, the size of a
//! Nexus mailbox.
//!
//! Timing and checks are those of the Nexus workloads: pingpong reads the clock once per pong
//! and records the time since the previous pong; counting times from the first send to the
//! total arriving at the producer and checks count and sum; thread-ring times from agent 0's
//! first send to the last hop's arrival (read on the receiving thread: `Instant` is one
//! monotonic clock for all threads) and checks the hops counted by all members.
//!
//! Per message: no allocation (the bounded channel is a preallocated array) and no lock on the
//! fast path. A `recv` that finds its channel empty first spins and yields for a few
//! microseconds (crossbeam's `Backoff`), then registers the thread in the channel's waker (a
//! `std::sync::Mutex` and a `Vec` push that reuses its capacity) and parks; the sender then
//! takes that mutex and unparks it (a futex wake). With the two pingpong ends on cores of their
//! own the answer usually arrives during the spin; in thread-ring (many threads per CPU) the
//! receiver of nearly every hop is parked, so each hop is a futex wake and a context switch.
//!
//! `Local` (both ends on one thread) cannot be expressed: a thread blocked in `recv` cannot
//! run the other end, so every `Local` run comes back [`PeerResult::Skipped`].

use super::protocol::{ring_rate, Ball, Count, Hop, Member};
use super::{current_cpu, CrossCount, PeerCpus, PeerLatency, PeerRate, PeerResult};
use crate::counting::CountingParams;
use crate::pingpong::PingPongParams;
use crate::setup::Placement;
use crate::stats::{self, Percentiles};
use crate::thread_ring::ThreadRingParams;
use crate::BenchError;
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, SendTimeoutError, Sender};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::thread::JoinHandle;
use std::time::Instant;

/// Messages each channel holds (a Nexus mailbox's default capacity).
pub(super) const CAPACITY: usize = 1024;

/// Why `Local` runs are skipped.
pub(super) const LOCAL: &str = "a blocking channel between two ends on one thread is not a workload";

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
        name: String,
        cpu: usize,
        pin: bool,
        f: impl FnOnce() -> Result<T, BenchError> + Send + 'static,
    ) -> Result<JoinHandle<Result<T, BenchError>>, BenchError> {
        let (go, wait) = sync_channel::<()>(1);
        let workload = self.workload;
        let handle = std::thread::Builder::new()
            .name(name)
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

/// The most telling of `errors`: a usage error (such as a failed pin) first, since the other
/// threads then only saw their peer hang up.
fn worst(workload: &'static str, mut errors: Vec<BenchError>) -> BenchError {
    let i = errors.iter().position(BenchError::is_usage).unwrap_or(0);
    if errors.is_empty() {
        hung_up(workload)
    } else {
        errors.swap_remove(i)
    }
}

/// Both results, or the most telling error.
pub(super) fn both<A, B>(
    workload: &'static str,
    a: Result<A, BenchError>,
    b: Result<B, BenchError>,
) -> Result<(A, B), BenchError> {
    match (a, b) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        (a, b) => Err(worst(workload, a.err().into_iter().chain(b.err()).collect())),
    }
}

/// All results, or the most telling error.
pub(super) fn all<T>(workload: &'static str, results: Vec<Result<T, BenchError>>) -> Result<Vec<T>, BenchError> {
    let (mut oks, mut errors) = (Vec::with_capacity(results.len()), Vec::new());
    for r in results {
        match r {
            Ok(v) => oks.push(v),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(oks)
    } else {
        Err(worst(workload, errors))
    }
}

pub(super) fn hung_up(workload: &'static str) -> BenchError {
    BenchError::check(workload, "the other end hung up mid-run")
}

/// Joins every thread: all their results, or the most telling error.
pub(super) fn join_all<T>(
    workload: &'static str,
    handles: Vec<JoinHandle<Result<T, BenchError>>>,
) -> Result<Vec<T>, BenchError> {
    all(workload, handles.into_iter().map(|h| join(workload, h)).collect())
}

/// A run that waited past its deadline.
pub(super) fn timed_out(workload: &'static str) -> BenchError {
    BenchError::check(workload, "timed out waiting for a message")
}

/// Receives the next message before `at`: a timeout or a closed channel is an error.
#[inline]
pub(super) fn recv_by<T>(workload: &'static str, rx: &Receiver<T>, at: Instant) -> Result<T, BenchError> {
    rx.recv_deadline(at).map_err(|e| match e {
        RecvTimeoutError::Timeout => timed_out(workload),
        RecvTimeoutError::Disconnected => hung_up(workload),
    })
}

/// Sends `msg`, blocking while the channel is full but not past `at`.
#[inline]
pub(super) fn send_by<T>(workload: &'static str, tx: &Sender<T>, msg: T, at: Instant) -> Result<(), BenchError> {
    tx.send_deadline(msg, at).map_err(|e| match e {
        SendTimeoutError::Timeout(_) => timed_out(workload),
        SendTimeoutError::Disconnected(_) => hung_up(workload),
    })
}

/// Runs `warmup + round_trips` round trips between two pinned threads (see the module doc).
pub fn pingpong(params: &PingPongParams, cpus: PeerCpus) -> Result<PeerResult<PeerLatency>, BenchError> {
    const W: &str = "pingpong";
    if params.placement == Placement::Local {
        return Ok(PeerResult::Skipped(LOCAL));
    }
    let (warmup, round_trips) = (params.warmup, params.round_trips);
    let total = warmup + round_trips;
    let (ping_tx, ping_rx) = bounded::<Ball>(CAPACITY);
    let (pong_tx, pong_rx) = bounded::<Ball>(CAPACITY);
    let mut gate = Gate::new(W);
    let ponger = gate.spawn("crossbeam-ponger".into(), cpus.second, cpus.pin, move || {
        let (mut answered, mut cross) = (0u64, CrossCount::default());
        while let Ok(ping) = ping_rx.recv() {
            cross.note(ping.cpu);
            pong_tx.send(Ball { seq: ping.seq, cpu: current_cpu() }).map_err(|_| hung_up(W))?;
            answered += 1;
        }
        Ok((answered, cross))
    })?;
    let pinger = gate.spawn("crossbeam-pinger".into(), cpus.first, cpus.pin, move || {
        let (mut h, mut cross, mut in_order) = (stats::histogram(), CrossCount::default(), true);
        let mut last = Instant::now();
        for seq in 0..total {
            ping_tx.send(Ball { seq, cpu: current_cpu() }).map_err(|_| hung_up(W))?;
            let pong = pong_rx.recv().map_err(|_| hung_up(W))?;
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
    let ((mut cross, h, in_order), (answered, pong_cross)) = both(W, join(W, pinger), join(W, ponger))?;
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

/// Sends `messages` increments from one pinned thread to a tally on another, then asks the
/// total (see the module doc).
pub fn counting(params: &CountingParams, cpus: PeerCpus) -> Result<PeerResult<PeerRate>, BenchError> {
    const W: &str = "counting";
    if params.placement == Placement::Local {
        return Ok(PeerResult::Skipped(LOCAL));
    }
    let n = params.messages;
    let (tx, rx) = bounded::<Count>(CAPACITY);
    let (total_tx, total_rx) = bounded::<(u64, u64)>(1);
    let mut gate = Gate::new(W);
    let tally = gate.spawn("crossbeam-tally".into(), cpus.second, cpus.pin, move || {
        let (mut count, mut sum, mut cross) = (0u64, 0u64, CrossCount::default());
        // Ends at `Total`.
        while let Count::Add(v, cpu) = rx.recv().map_err(|_| hung_up(W))? {
            cross.note(cpu);
            count += 1;
            sum = sum.wrapping_add(v);
        }
        total_tx.send((count, sum)).map_err(|_| hung_up(W))?;
        Ok(cross)
    })?;
    let producer = gate.spawn("crossbeam-producer".into(), cpus.first, cpus.pin, move || {
        let started = Instant::now();
        for i in 1..=n {
            tx.send(Count::Add(i, current_cpu())).map_err(|_| hung_up(W))?;
        }
        tx.send(Count::Total).map_err(|_| hung_up(W))?;
        let total = total_rx.recv().map_err(|_| BenchError::check(W, "the total did not arrive"))?;
        Ok((total, started.elapsed()))
    })?;
    gate.open();
    let (((count, sum), elapsed), cross) = both(W, join(W, producer), join(W, tally))?;
    let expected_sum = (u128::from(n) * (u128::from(n) + 1) / 2) as u64;
    if count != n || sum != expected_sum {
        return Err(BenchError::check(
            W,
            format!("the tally counted {count} messages summing to {sum}; expected {n} summing to {expected_sum}"),
        ));
    }
    Ok(PeerResult::Ran(PeerRate { elapsed, per_s: stats::per_second(n, elapsed), crossed: cross.share() }))
}

/// What follows a token with `left` hops to go: the token with one hop fewer, or `Stop`.
fn after(left: u64) -> Hop {
    left.checked_sub(1).map_or(Hop::Stop, |left| Hop::Token(left, current_cpu()))
}

/// Ring member `i`: forwards the token until `Stop`; member 0 first starts it for `hops` hops.
fn member(i: usize, rx: Receiver<Hop>, next: Sender<Hop>, hops: u64) -> Result<Member, BenchError> {
    const W: &str = "thread-ring";
    let mut me = Member::default();
    if i == 0 {
        me.started = Some(Instant::now());
        me.ended = me.started.filter(|_| hops == 0); // no hop to make: the ring ends at once
        next.send(after(hops)).map_err(|_| hung_up(W))?;
    }
    while let Hop::Token(left, cpu) = rx.recv().map_err(|_| hung_up(W))? {
        me.hops += 1;
        me.cross.note(cpu);
        if left == 0 {
            me.ended = Some(Instant::now());
        }
        next.send(after(left)).map_err(|_| hung_up(W))?;
    }
    // `Stop`: forward it once (the last member forwards to one that has already stopped).
    let _ = next.send(Hop::Stop);
    Ok(me)
}

/// Passes one token `hops` times around a ring of pinned threads (see the module doc).
pub fn thread_ring(params: &ThreadRingParams, cpus: PeerCpus) -> Result<PeerResult<PeerRate>, BenchError> {
    const W: &str = "thread-ring";
    if params.placement == Placement::Local {
        return Ok(PeerResult::Skipped(LOCAL));
    }
    if params.agents == 0 {
        return Err(BenchError::params(W, "the ring needs at least one agent"));
    }
    let agents = params.agents.div_ceil(2) as usize * 2;
    let (mut txs, rxs): (Vec<_>, Vec<_>) = (0..agents).map(|_| bounded::<Hop>(CAPACITY)).unzip();
    txs.rotate_left(1); // member i receives on channel i and sends on channel i + 1
    let mut gate = Gate::new(W);
    let mut handles = Vec::with_capacity(agents);
    for (i, (rx, next)) in rxs.into_iter().zip(txs).enumerate() {
        let cpu = if i % 2 == 0 { cpus.first } else { cpus.second };
        let hops = params.hops;
        handles.push(gate.spawn(format!("crossbeam-ring-{i}"), cpu, cpus.pin, move || member(i, rx, next, hops))?);
    }
    gate.open();
    let members = all(W, handles.into_iter().map(|h| join(W, h)).collect())?;
    ring_rate(W, params.hops, &members)
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
    fn thread_ring_checks_every_hop_and_skips_local() {
        for agents in [1, 9, 10] {
            let params = ThreadRingParams { agents, hops: 100, placement: Placement::Cross };
            let PeerResult::Ran(out) = thread_ring(&params, CPUS).unwrap() else { panic!("cross must run") };
            assert!(out.per_s > 0.0 && (0.0..=1.0).contains(&out.crossed));
        }
        let params = ThreadRingParams { agents: 10, hops: 0, placement: Placement::Cross };
        assert!(matches!(thread_ring(&params, CPUS).unwrap(), PeerResult::Ran(_)));
        let local = ThreadRingParams { agents: 10, hops: 100, placement: Placement::Local };
        assert!(matches!(thread_ring(&local, CPUS).unwrap(), PeerResult::Skipped(_)));
    }
}
