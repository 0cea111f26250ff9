//! The glommio peer: the thread-per-core design closest to Nexus, written as glommio's docs
//! show it: async tasks on `LocalExecutor`s talking over glommio's bounded channels.
//!
//! It owns the executors of each run. `Local`: one executor (on `cpus.first`) runs both ends
//! (every ring member) as tasks joined by `local_channel`s. `Cross`: two executors, on
//! `cpus.first` and `cpus.second`, joined by `shared_channel`s (one per direction, one per ring
//! link); ring member `i` runs on executor `i % 2`, the ring rounded up to an even size as Nexus
//! rounds it to its shards. Each end connects its channels before it sends: `connect`
//! returns once the other side has connected its end; ring members connect concurrently, and
//! member 0 starts the clock only once every member has connected (Nexus links its ring before
//! it starts the clock too), waiting while the others still connect. An executor that fails drops
//! its ends, which disconnects them, so nothing waits forever. Channels hold 1,024 messages, a
//! Nexus mailbox. Timing and checks are the Nexus workloads' (one clock read per pong; rates
//! from the first send to the checked total or to the last hop).
//!
//! Settings: `Placement::Fixed(cpu)` when `cpus.pin` (else `Unbound`); `io_memory` and
//! `ring_depth` as Nexus's own glommio shards (256 KiB and 64, for an 8 MiB memlock limit);
//! `spin_before_park` = [`BENCH_SPIN_BEFORE_PARK`] (50 ms, as Nexus's bench shards), so an idle
//! executor polls its shared channels instead of sleeping in io_uring, as a user tuning for
//! latency would set it. glommio ignores that spin for `Unbound` executors: unpinned runs (the
//! tests) park on an eventfd.
//!
//! Per message (read in glommio 0.9's source): no allocation in steady state and no lock. A
//! `local_channel` send is a `RefCell` borrow, a push onto a preallocated `VecDeque` and the
//! wake of a waiting receiver (onto the run queue, a `VecDeque` that keeps its capacity). A
//! `shared_channel` send is a push onto a preallocated lock-free SPSC ring plus a `notify` that
//! writes the receiver's eventfd only if that executor is going to sleep; the receiver finds the
//! message by polling all its shared channels on each reactor pass. Every such wake-up takes the
//! executor back through its reactor, which re-arms the preemption timer through io_uring:
//! strace counted about 6 `io_uring_enter` calls per cross-executor round trip.

use super::protocol::{ring_rate, Count, Hop, Member};
use super::{current_cpu, CrossCount, PeerCpus, PeerLatency, PeerRate, PeerResult};
use crate::counting::CountingParams;
use crate::pingpong::PingPongParams;
use crate::setup::{Placement, BENCH_SPIN_BEFORE_PARK};
use crate::stats::{self, Percentiles};
use crate::thread_ring::ThreadRingParams;
use crate::BenchError;
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use glommio::channels::shared_channel::{self, ConnectedReceiver, ConnectedSender, SharedReceiver, SharedSender};
use glommio::{BuilderErrorKind, ExecutorJoinHandle, GlommioError, LocalExecutorBuilder};
use hdrhistogram::Histogram;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Messages each channel holds (a Nexus mailbox's default capacity).
pub(super) const CAPACITY: usize = 1024;
/// io_uring submission depth per executor (as Nexus's glommio shards).
const RING_DEPTH: usize = 64;

/// A pingpong message: the sequence number and the sender's CPU.
type Ball = (u64, usize);

/// The sending end of a channel, local or shared.
enum Tx<T: Send + 'static> {
    Local(LocalSender<T>),
    Shared(ConnectedSender<T>),
}

/// The receiving end of a channel, local or shared.
enum Rx<T: Send + 'static> {
    Local(LocalReceiver<T>),
    Shared(ConnectedReceiver<T>),
}

impl<T: Send + 'static> Tx<T> {
    /// Sends `v`, waiting for room; fails if the receiver is gone.
    async fn send(&self, workload: &'static str, v: T) -> Result<(), BenchError> {
        match self {
            Tx::Local(s) => s.send(v).await.map_err(|_| hung_up(workload)),
            Tx::Shared(s) => s.send(v).await.map_err(|_| hung_up(workload)),
        }
    }
}

impl<T: Send + 'static> Rx<T> {
    /// The next message, or `None` once the sender is gone.
    async fn recv(&self) -> Option<T> {
        match self {
            Rx::Local(r) => r.recv().await,
            Rx::Shared(r) => r.recv().await,
        }
    }
}

/// A bounded local channel.
fn local<T: Send + 'static>() -> (Tx<T>, Rx<T>) {
    let (tx, rx) = local_channel::new_bounded(CAPACITY);
    (Tx::Local(tx), Rx::Local(rx))
}

pub(super) fn hung_up(workload: &'static str) -> BenchError {
    BenchError::check(workload, "the other end hung up mid-run")
}

fn cannot_start(workload: &'static str, e: GlommioError<()>) -> BenchError {
    let hint = "hint: glommio needs io_uring and locked memory (`ulimit -l`)";
    BenchError::params(workload, format!("cannot start a glommio executor: {e}; {hint}"))
}

/// An executor's handle.
type Handle<T> = ExecutorJoinHandle<Result<T, BenchError>>;

/// Starts an executor on `cpu` (pinned when `pin`) running `body`.
pub(super) fn executor<T: Send + 'static, F: Future<Output = Result<T, BenchError>> + 'static>(
    workload: &'static str,
    cpu: usize,
    pin: bool,
    body: impl FnOnce() -> F + Send + 'static,
) -> Result<Handle<T>, BenchError> {
    let placement = if pin { glommio::Placement::Fixed(cpu) } else { glommio::Placement::Unbound };
    LocalExecutorBuilder::new(placement)
        .name("glommio-peer")
        .io_memory(nexus_engine::engine::GLOMMIO_IO_MEMORY_BYTES)
        .ring_depth(RING_DEPTH)
        .spin_before_park(BENCH_SPIN_BEFORE_PARK)
        .spawn(body)
        .map_err(|e| cannot_start(workload, e))
}

/// Joins an executor: a panic is a failed check, a start failure a usage error.
pub(super) fn join<T: Send + 'static>(workload: &'static str, handle: Handle<T>) -> Result<T, BenchError> {
    match handle.join() {
        Ok(result) => result,
        Err(GlommioError::BuilderError(BuilderErrorKind::ThreadPanic(_))) => {
            Err(BenchError::check(workload, "a glommio executor panicked"))
        }
        Err(e) => Err(cannot_start(workload, e)),
    }
}

/// Both results, or the most telling error: a usage error (an executor that could not start)
/// first, since the other end then only saw its peer hang up.
fn both<A, B>(a: Result<A, BenchError>, b: Result<B, BenchError>) -> Result<(A, B), BenchError> {
    match (a, b) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        (Err(a), Err(b)) if b.is_usage() && !a.is_usage() => Err(b),
        (Err(e), _) | (_, Err(e)) => Err(e),
    }
}

/// Runs `first` on an executor on `cpus.first` and `second` on one on `cpus.second`. If the
/// first cannot start, waits for the second to see its channels disconnect, returns the error.
pub(super) fn pair<A: Send + 'static, B: Send + 'static, FA, FB>(
    workload: &'static str,
    cpus: PeerCpus,
    first: impl FnOnce() -> FA + Send + 'static,
    second: impl FnOnce() -> FB + Send + 'static,
) -> Result<(A, B), BenchError>
where
    FA: Future<Output = Result<A, BenchError>> + 'static,
    FB: Future<Output = Result<B, BenchError>> + 'static,
{
    let second = executor(workload, cpus.second, cpus.pin, second)?;
    match executor(workload, cpus.first, cpus.pin, first) {
        Ok(first) => both(join(workload, first), join(workload, second)),
        Err(e) => {
            let _ = join(workload, second);
            Err(e)
        }
    }
}

/// Connects a sender and a receiver. The sender connects in a task of its own, so executors
/// that connect crosswise never wait on each other.
async fn connect<T: Send + 'static, U: Send + 'static>(tx: SharedSender<T>, rx: SharedReceiver<U>) -> (Tx<T>, Rx<U>) {
    let tx = glommio::spawn_local(tx.connect());
    let rx = rx.connect().await;
    (Tx::Shared(tx.await), Rx::Shared(rx))
}

/// Runs two ends joined by a channel each way (`first` sends `T` and receives `U`, `second`
/// the reverse): as tasks of one executor for `Local`, on two executors for `Cross`.
fn two_ends<T: Send + 'static, U: Send + 'static, A: Send + 'static, B: Send + 'static, FA, FB>(
    workload: &'static str,
    placement: Placement,
    cpus: PeerCpus,
    first: impl FnOnce(Tx<T>, Rx<U>) -> FA + Send + 'static,
    second: impl FnOnce(Tx<U>, Rx<T>) -> FB + Send + 'static,
) -> Result<(A, B), BenchError>
where
    FA: Future<Output = Result<A, BenchError>> + 'static,
    FB: Future<Output = Result<B, BenchError>> + 'static,
{
    if placement == Placement::Local {
        let body = move || async move {
            let ((t_tx, t_rx), (u_tx, u_rx)) = (local(), local());
            let second = glommio::spawn_local(second(u_tx, t_rx));
            let first = first(t_tx, u_rx).await; // drops `t_tx`: `second` then sees the end
            both(first, second.await)
        };
        return join(workload, executor(workload, cpus.first, cpus.pin, body)?);
    }
    let ((t_s, t_r), (u_s, u_r)) = (shared_channel::new_bounded(CAPACITY), shared_channel::new_bounded(CAPACITY));
    let first = move || async move {
        let (tx, rx) = connect(t_s, u_r).await;
        first(tx, rx).await
    };
    let second = move || async move {
        let (tx, rx) = connect(u_s, t_r).await;
        second(tx, rx).await
    };
    pair(workload, cpus, first, second)
}

async fn pinger(
    tx: Tx<Ball>,
    rx: Rx<Ball>,
    warmup: u64,
    total: u64,
) -> Result<(Histogram<u64>, CrossCount, bool), BenchError> {
    const W: &str = "pingpong";
    let (mut h, mut cross, mut in_order) = (stats::histogram(), CrossCount::default(), true);
    let mut last = Instant::now();
    for seq in 0..total {
        tx.send(W, (seq, current_cpu())).await?;
        let (back, cpu) = rx.recv().await.ok_or_else(|| hung_up(W))?;
        let now = Instant::now();
        cross.note(cpu);
        in_order &= back == seq;
        if seq >= warmup {
            stats::record(&mut h, now.duration_since(last));
        }
        last = now;
    }
    Ok((h, cross, in_order))
}

async fn ponger(tx: Tx<Ball>, rx: Rx<Ball>) -> Result<(u64, CrossCount), BenchError> {
    let (mut answered, mut cross) = (0u64, CrossCount::default());
    while let Some((seq, cpu)) = rx.recv().await {
        cross.note(cpu);
        tx.send("pingpong", (seq, current_cpu())).await?;
        answered += 1;
    }
    Ok((answered, cross))
}

/// Runs `warmup + round_trips` round trips between two tasks (see the module doc).
pub fn pingpong(params: &PingPongParams, cpus: PeerCpus) -> Result<PeerResult<PeerLatency>, BenchError> {
    const W: &str = "pingpong";
    let (warmup, round_trips) = (params.warmup, params.round_trips);
    let total = warmup + round_trips;
    let pinger = move |tx, rx| pinger(tx, rx, warmup, total);
    let ((h, mut cross, in_order), (answered, pong_cross)) = two_ends(W, params.placement, cpus, pinger, ponger)?;
    cross.add(pong_cross);
    if !in_order || answered != total || h.len() != round_trips {
        let recorded = h.len();
        return Err(BenchError::check(
            W,
            format!(
                "{answered} pings answered, {recorded} recorded, in order: {in_order}; expected {total}, {round_trips}"
            ),
        ));
    }
    Ok(PeerResult::Ran(PeerLatency { rtt: Percentiles::of(&h), histogram: h, crossed: cross.share() }))
}

async fn producer(tx: Tx<Count>, total: Rx<(u64, u64)>, n: u64) -> Result<((u64, u64), Duration), BenchError> {
    const W: &str = "counting";
    let started = Instant::now();
    for i in 1..=n {
        tx.send(W, Count::Add(i, current_cpu())).await?;
    }
    tx.send(W, Count::Total).await?;
    let total = total.recv().await.ok_or_else(|| BenchError::check(W, "the total did not arrive"))?;
    Ok((total, started.elapsed()))
}

async fn tally(total: Tx<(u64, u64)>, rx: Rx<Count>) -> Result<CrossCount, BenchError> {
    const W: &str = "counting";
    let (mut count, mut sum, mut cross) = (0u64, 0u64, CrossCount::default());
    // Ends at `Total`.
    while let Count::Add(v, cpu) = rx.recv().await.ok_or_else(|| hung_up(W))? {
        cross.note(cpu);
        count += 1;
        sum = sum.wrapping_add(v);
    }
    total.send(W, (count, sum)).await?;
    Ok(cross)
}

/// Sends `messages` increments from a producer task to a tally task, then asks the total
/// (see the module doc).
pub fn counting(params: &CountingParams, cpus: PeerCpus) -> Result<PeerResult<PeerRate>, BenchError> {
    const W: &str = "counting";
    let n = params.messages;
    let producer = move |tx, rx| producer(tx, rx, n);
    let (((count, sum), elapsed), cross) = two_ends(W, params.placement, cpus, producer, tally)?;
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

/// Ring member `i`: forwards the token until `Stop`; member 0 first waits until `ready` says
/// every member is linked, then starts it for `hops` hops.
async fn member(i: usize, rx: Rx<Hop>, next: Tx<Hop>, hops: u64, ready: Ready) -> Result<Member, BenchError> {
    const W: &str = "thread-ring";
    let mut me = Member::default();
    ready.0.fetch_add(1, Ordering::AcqRel);
    if i == 0 {
        while ready.0.load(Ordering::Acquire) < ready.1 {
            YieldNow(false).await;
        }
        me.started = Some(Instant::now());
        me.ended = me.started.filter(|_| hops == 0); // no hop to make: the ring ends at once
        next.send(W, after(hops)).await?;
    }
    while let Hop::Token(left, cpu) = rx.recv().await.ok_or_else(|| hung_up(W))? {
        me.hops += 1;
        me.cross.note(cpu);
        if left == 0 {
            me.ended = Some(Instant::now());
        }
        next.send(W, after(left)).await?;
    }
    // `Stop`: forward it once (the last member forwards to one that has already stopped).
    let _ = next.send(W, Hop::Stop).await;
    Ok(me)
}

/// Members linked so far, and how many there are.
type Ready = (Arc<AtomicUsize>, usize);

/// Gives the other tasks of this executor a turn (pending once, waking itself).
struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        if self.0 {
            return std::task::Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}

/// Runs each member as a task of this executor and collects what they saw.
async fn run_members<F>(members: Vec<F>) -> Result<Vec<Member>, BenchError>
where
    F: Future<Output = Result<Member, BenchError>> + 'static,
{
    let tasks: Vec<_> = members.into_iter().map(glommio::spawn_local).collect();
    let mut out = Vec::with_capacity(tasks.len());
    for task in tasks {
        out.push(task.await?);
    }
    Ok(out)
}

/// Passes one token `hops` times around a ring of tasks (see the module doc).
pub fn thread_ring(params: &ThreadRingParams, cpus: PeerCpus) -> Result<PeerResult<PeerRate>, BenchError> {
    const W: &str = "thread-ring";
    if params.agents == 0 {
        return Err(BenchError::params(W, "the ring needs at least one agent"));
    }
    let hops = params.hops;
    let members = if params.placement == Placement::Local {
        let agents = params.agents as usize;
        let body = move || async move {
            let (mut txs, rxs): (Vec<_>, Vec<_>) = (0..agents).map(|_| local::<Hop>()).unzip();
            txs.rotate_left(1); // member i receives on channel i and sends on channel i + 1
            let ready: Ready = (Arc::new(AtomicUsize::new(0)), agents);
            let member = |(i, (tx, rx))| member(i, rx, tx, hops, ready.clone());
            run_members(txs.into_iter().zip(rxs).enumerate().map(member).collect()).await
        };
        join(W, executor(W, cpus.first, cpus.pin, body)?)?
    } else {
        let agents = params.agents.div_ceil(2) as usize * 2;
        let (mut txs, rxs): (Vec<_>, Vec<_>) = (0..agents).map(|_| shared_channel::new_bounded(CAPACITY)).unzip();
        txs.rotate_left(1);
        let (mut even, mut odd) = (Vec::new(), Vec::new());
        for (i, (tx, rx)) in txs.into_iter().zip(rxs).enumerate() {
            if i % 2 == 0 { &mut even } else { &mut odd }.push((i, tx, rx));
        }
        // Each member connects its own ends, then runs (see `connect`).
        let ready: Ready = (Arc::new(AtomicUsize::new(0)), agents);
        let members_of = move |mine: Vec<(usize, SharedSender<Hop>, SharedReceiver<Hop>)>| {
            let ready = ready.clone();
            let run = move |(i, tx, rx)| {
                let ready = ready.clone();
                async move {
                    let (tx, rx) = connect(tx, rx).await;
                    member(i, rx, tx, hops, ready).await
                }
            };
            move || run_members(mine.into_iter().map(run).collect())
        };
        let (mut members, odd) = pair(W, cpus, members_of(even), members_of(odd))?;
        members.extend(odd);
        members
    };
    ring_rate(W, hops, &members)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CPUS: PeerCpus = PeerCpus { first: 0, second: 1, pin: false };

    #[test]
    fn every_workload_runs_and_checks_both_ways() {
        for placement in Placement::BOTH {
            let params = PingPongParams { round_trips: 200, warmup: 10, placement };
            let PeerResult::Ran(out) = pingpong(&params, CPUS).unwrap() else { panic!("{placement:?} pingpong") };
            assert_eq!(out.rtt.samples, 200);
            assert!(out.rtt.p50_ns > 0.0 && out.rtt.p50_ns <= out.rtt.p99_ns && out.crossed <= 1.0);
            let params = CountingParams { messages: 3_000, burst: 256, placement };
            let PeerResult::Ran(out) = counting(&params, CPUS).unwrap() else { panic!("{placement:?} counting") };
            assert!(out.per_s > 0.0 && out.crossed <= 1.0);
            for (agents, hops) in [(10, 100), (9, 100), (1, 10), (10, 0)] {
                let params = ThreadRingParams { agents, hops, placement };
                let PeerResult::Ran(out) = thread_ring(&params, CPUS).unwrap() else { panic!("{placement:?} ring") };
                assert!(out.per_s > 0.0 || hops == 0, "{agents} agents, {hops} hops");
            }
        }
    }

    #[test]
    fn an_executor_that_cannot_start_is_an_error_not_a_hang() {
        let cpus = PeerCpus { first: usize::MAX / 2, second: 0, pin: true };
        let params = PingPongParams { round_trips: 10, warmup: 0, placement: Placement::Cross };
        let err = pingpong(&params, cpus).unwrap_err();
        assert!(err.is_usage(), "{err}");
    }
}
