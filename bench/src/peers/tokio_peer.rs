//! The tokio peer: the three core workloads as tokio tasks talking over bounded
//! `tokio::sync::mpsc` channels (capacity [`CAPACITY`], the Nexus mailbox default), with a
//! `oneshot` for the counting total. It also owns what the ractor and kameo peers share, since
//! both run on tokio: the two runtimes ([`run_on`]), the pinger's clock ([`PingClock`]) and the
//! result checks, so all three peers time and check exactly alike.
//!
//! Runtimes: the core workloads (pingpong, counting, thread-ring) run where
//! [`super::tokio_pair::run_placed`] puts them: `Local`, every task on one `current_thread`
//! runtime pinned to `cpus.first`; `Cross`, end `i` on one of two spinning `current_thread`
//! runtimes pinned to `cpus.first` and `cpus.second` (runtime `i % 2`), so every message
//! crosses. The Savina workloads use [`run_on`]: `Local` as above; `Cross` a `multi_thread`
//! runtime with 2 workers, pinned to `cpus.first` and `cpus.second` by `on_thread_start` (a
//! counter gives one worker per CPU), where tokio's scheduler places tasks as usual (a task
//! woken by a task on the same worker usually runs on that worker, so `crossed` shows how
//! often messages really crossed). Each run starts its runtimes from fresh threads (so the
//! caller's affinity is untouched); the driver is itself a spawned task, bounded by a timeout
//! scaled to the work; the runtimes are shut down at the end of every run.
//!
//! Per message (checked in tokio 1.54's source): a bounded channel stores the value inline in
//! a linked list of 32-slot blocks (one allocation per 32 messages at most; blocks are reused),
//! takes a semaphore permit with a compare-and-swap and wakes the receiver with atomics; each
//! `recv` gives the permit back through `batch_semaphore::release`, which **locks the
//! semaphore's waiter-list mutex** (uncontended unless a sender waits for space): one lock per
//! message, no allocation. Each message carries its sender's CPU (one `sched_getcpu`).

use super::tokio_pair::run_placed;
use super::{current_cpu, CrossCount, PeerCpus, PeerLatency, PeerRate, PeerResult};
use crate::counting::CountingParams;
use crate::pingpong::PingPongParams;
use crate::setup::{self, Placement};
use crate::stats::{self, Percentiles};
use crate::thread_ring::ThreadRingParams;
use crate::BenchError;
use hdrhistogram::Histogram;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Capacity of every bounded channel or mailbox (the Nexus mailbox default).
pub(super) const CAPACITY: usize = 1024;
/// How long a runtime's shutdown may wait for its threads.
const SHUTDOWN: Duration = Duration::from_secs(5);

/// Runs the future `work` builds as a task on the runtime `placement` calls for (see the module
/// doc), within `limit`, from a fresh thread that then shuts the runtime down. A panicking task
/// or thread, or a run past `limit`, is a failed check of `workload`.
pub(super) fn run_on<F, Fut, T>(
    workload: &'static str,
    placement: Placement,
    cpus: PeerCpus,
    limit: Duration,
    work: F,
) -> Result<T, BenchError>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, BenchError>> + Send + 'static,
    T: Send + 'static,
{
    let pin_failed = Arc::new(AtomicBool::new(false));
    let failed = Arc::clone(&pin_failed);
    let driver = move || {
        let rt = match placement {
            Placement::Local => {
                super::pin(cpus.first, cpus.pin)?;
                tokio::runtime::Builder::new_current_thread().enable_time().build()
            }
            Placement::Cross => {
                let workers = AtomicUsize::new(0);
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_time()
                    .on_thread_start(move || {
                        let cpu =
                            if workers.fetch_add(1, Ordering::Relaxed) % 2 == 0 { cpus.first } else { cpus.second };
                        if super::pin(cpu, cpus.pin).is_err() {
                            failed.store(true, Ordering::Relaxed);
                        }
                    })
                    .build()
            }
        }
        .map_err(|e| BenchError::params(workload, format!("cannot build a tokio runtime: {e}")))?;
        let task = rt.spawn(async move { tokio::time::timeout(limit, work()).await });
        let out = match rt.block_on(task) {
            Ok(Ok(out)) => out,
            Ok(Err(_)) => Err(BenchError::check(workload, format!("no result within {limit:?}"))),
            Err(e) => Err(panicked(workload, &e)),
        };
        rt.shutdown_timeout(SHUTDOWN);
        out
    };
    let thread = std::thread::Builder::new()
        .name("peer-driver".into())
        .spawn(driver)
        .map_err(|e| BenchError::params(workload, format!("cannot start the runtime thread: {e}")))?;
    let out = thread.join().map_err(|_| BenchError::check(workload, "the runtime thread panicked"))?;
    if pin_failed.load(Ordering::Relaxed) {
        let (first, second) = (cpus.first, cpus.second);
        return Err(BenchError::params(
            workload,
            format!("cannot pin the runtime's workers to CPUs {first} and {second}"),
        ));
    }
    out
}

/// A failed check for a task that panicked or was cancelled.
pub(super) fn panicked(workload: &'static str, e: &dyn std::fmt::Display) -> BenchError {
    BenchError::check(workload, format!("a task failed: {e}"))
}

/// The pinger's bookkeeping, shared by the tokio, ractor and kameo pingers: one clock read per
/// pong, the time since the previous pong recorded after the warm-up, sequence numbers checked.
#[derive(Debug)]
pub(super) struct PingClock {
    total: u64,
    warmup: u64,
    completed: u64,
    histogram: Histogram<u64>,
    last: Instant,
    /// Pongs, by their sender's CPU.
    pub(super) cross: CrossCount,
    out_of_order: bool,
    /// Whether a ping could not be sent.
    pub(super) failed: bool,
}

impl PingClock {
    /// Starts the clock for `warmup + round_trips` trips; returns it and the first ping's
    /// sequence number (`None` when there is no trip to make).
    pub(super) fn start(round_trips: u64, warmup: u64) -> (Self, Option<u64>) {
        let total = warmup + round_trips;
        let clock = Self {
            total,
            warmup,
            completed: 0,
            histogram: stats::histogram(),
            last: Instant::now(),
            cross: CrossCount::default(),
            out_of_order: false,
            failed: false,
        };
        (clock, (total > 0).then_some(0))
    }

    /// Notes the pong `seq` sent from `cpu`; returns the next ping's sequence number, or `None`
    /// when the last trip is done.
    #[inline]
    pub(super) fn pong(&mut self, seq: u64, cpu: usize) -> Option<u64> {
        let now = Instant::now();
        self.cross.note(cpu);
        self.out_of_order |= seq != self.completed;
        self.completed += 1;
        if self.completed > self.warmup {
            stats::record(&mut self.histogram, now.duration_since(self.last));
        }
        self.last = now;
        (self.completed < self.total).then_some(self.completed)
    }

    /// Checks the run (every trip completed in order, every ping answered, `round_trips`
    /// recorded) and returns the figures; `ponger` counts the pings by their sender's CPU.
    pub(super) fn finish(
        self,
        workload: &'static str,
        answered: u64,
        ponger: CrossCount,
    ) -> Result<PeerResult<PeerLatency>, BenchError> {
        let total = self.total;
        let found = (self.completed, answered, self.histogram.len(), self.failed || self.out_of_order);
        if found != (total, total, total - self.warmup, false) {
            let what = format!(
                "(trips completed, pings answered, trips recorded, a send failed or a pong came out of order) \
                 = {found:?}; expected ({total}, {total}, {}, false)",
                total - self.warmup
            );
            return Err(BenchError::check(workload, what));
        }
        let mut cross = self.cross;
        cross.add(ponger);
        Ok(PeerResult::Ran(PeerLatency {
            rtt: Percentiles::of(&self.histogram),
            histogram: self.histogram,
            crossed: cross.share(),
        }))
    }
}

/// Checks a counting run (`count == n`, `sum == n(n+1)/2`) and returns its rate.
pub(super) fn counted(
    workload: &'static str,
    n: u64,
    (count, sum, cross): (u64, u64, CrossCount),
    elapsed: Duration,
) -> Result<PeerResult<PeerRate>, BenchError> {
    let expected_sum = (u128::from(n) * (u128::from(n) + 1) / 2) as u64;
    if count != n || sum != expected_sum {
        return Err(BenchError::check(
            workload,
            format!("the tally counted {count} messages summing to {sum}; expected {n} summing to {expected_sum}"),
        ));
    }
    Ok(PeerResult::Ran(PeerRate { elapsed, per_s: stats::per_second(n, elapsed), crossed: cross.share() }))
}

/// Checks a ring run (`hops` counted, no forward failed) and returns its rate.
pub(super) fn ringed(
    workload: &'static str,
    hops: u64,
    (counted, failed, cross): (u64, u64, CrossCount),
    elapsed: Duration,
) -> Result<PeerResult<PeerRate>, BenchError> {
    if failed > 0 || counted != hops {
        return Err(BenchError::check(
            workload,
            format!("{counted} hops counted, {failed} forwards failed; expected {hops} and 0"),
        ));
    }
    Ok(PeerResult::Ran(PeerRate { elapsed, per_s: stats::per_second(hops, elapsed), crossed: cross.share() }))
}

/// The ring's size: `agents`, rounded up to a multiple of 2 for `Cross` (as the Nexus ring).
pub(super) fn ring_size(workload: &'static str, params: &ThreadRingParams) -> Result<usize, BenchError> {
    if params.agents == 0 {
        return Err(BenchError::params(workload, "the ring needs at least one agent"));
    }
    Ok(match params.placement {
        Placement::Local => params.agents as usize,
        Placement::Cross => params.agents.div_ceil(2) as usize * 2,
    })
}

/// A ping or a pong: the sequence number and the sender's CPU.
struct Ball(u64, usize);

/// Answers every ping; returns the pings answered and their cross count.
async fn ponger(mut pings: mpsc::Receiver<Ball>, pongs: mpsc::Sender<Ball>) -> (u64, CrossCount) {
    let (mut answered, mut cross) = (0, CrossCount::default());
    while let Some(Ball(seq, cpu)) = pings.recv().await {
        cross.note(cpu);
        if pongs.send(Ball(seq, current_cpu())).await.is_err() {
            break;
        }
        answered += 1;
    }
    (answered, cross)
}

/// Sends pings one at a time until every trip is done; dropping `pings` then stops the ponger.
async fn pinger(
    pings: mpsc::Sender<Ball>,
    mut pongs: mpsc::Receiver<Ball>,
    round_trips: u64,
    warmup: u64,
) -> PingClock {
    let (mut clock, mut next) = PingClock::start(round_trips, warmup);
    while let Some(seq) = next {
        if pings.send(Ball(seq, current_cpu())).await.is_err() {
            clock.failed = true;
            break;
        }
        let Some(Ball(seq, cpu)) = pongs.recv().await else { break };
        next = clock.pong(seq, cpu);
    }
    clock
}

/// Ping-pong between two tasks over two bounded channels, one ball in flight.
pub fn pingpong(params: &PingPongParams, cpus: PeerCpus) -> Result<PeerResult<PeerLatency>, BenchError> {
    const WORKLOAD: &str = "tokio pingpong";
    let (round_trips, warmup) = (params.round_trips, params.warmup);
    let limit = setup::timeout_for(round_trips + warmup, Duration::from_micros(100));
    run_placed(WORKLOAD, params.placement, cpus, limit, move |sites| async move {
        let (ping_tx, ping_rx) = mpsc::channel(CAPACITY);
        let (pong_tx, pong_rx) = mpsc::channel(CAPACITY);
        let ponger = sites.spawn(1, ponger(ping_rx, pong_tx));
        let pinger = sites.spawn(0, pinger(ping_tx, pong_rx, round_trips, warmup));
        let clock = pinger.await.map_err(|e| panicked(WORKLOAD, &e))?;
        let (answered, cross) = ponger.await.map_err(|e| panicked(WORKLOAD, &e))?;
        clock.finish(WORKLOAD, answered, cross)
    })
}

/// Messages of the counting tally.
enum TallyMsg {
    /// Count one and add `n` (sent from `cpu`).
    Add { n: u64, cpu: usize },
    /// Reply with (count, sum, cross count).
    Get(oneshot::Sender<(u64, u64, CrossCount)>),
}

/// Counts and sums increments until every sender is gone.
async fn tally(mut rx: mpsc::Receiver<TallyMsg>) {
    let (mut count, mut sum, mut cross) = (0u64, 0u64, CrossCount::default());
    while let Some(msg) = rx.recv().await {
        match msg {
            TallyMsg::Add { n, cpu } => {
                count += 1;
                sum = sum.wrapping_add(n);
                cross.note(cpu);
            }
            TallyMsg::Get(reply) => {
                let _ = reply.send((count, sum, cross));
            }
        }
    }
}

/// Sends `Add(1..=n)`, then asks the total; returns it and the time from the first send.
async fn producer(tx: mpsc::Sender<TallyMsg>, n: u64) -> Result<((u64, u64, CrossCount), Duration), &'static str> {
    let started = Instant::now();
    for i in 1..=n {
        tx.send(TallyMsg::Add { n: i, cpu: current_cpu() }).await.map_err(|_| "the tally stopped")?;
    }
    let (reply, total) = oneshot::channel();
    tx.send(TallyMsg::Get(reply)).await.map_err(|_| "the tally stopped")?;
    let total = total.await.map_err(|_| "the total did not arrive")?;
    Ok((total, started.elapsed()))
}

/// Counting: a producer task sends `messages` increments to a tally task, then asks the total.
pub fn counting(params: &CountingParams, cpus: PeerCpus) -> Result<PeerResult<PeerRate>, BenchError> {
    const WORKLOAD: &str = "tokio counting";
    let n = params.messages;
    let limit = setup::timeout_for(n, Duration::from_micros(20));
    run_placed(WORKLOAD, params.placement, cpus, limit, move |sites| async move {
        let (tx, rx) = mpsc::channel(CAPACITY);
        let tally = sites.spawn(1, tally(rx));
        let producer = sites.spawn(0, producer(tx, n));
        let report = producer.await.map_err(|e| panicked(WORKLOAD, &e))?;
        tally.await.map_err(|e| panicked(WORKLOAD, &e))?;
        let (total, elapsed) = report.map_err(|why| BenchError::check(WORKLOAD, why))?;
        counted(WORKLOAD, n, total, elapsed)
    })
}

/// Messages of a ring task.
enum RingMsg {
    /// The token, sent from `cpu`, with the hops still to go after this one.
    Token { left: u64, cpu: usize },
    /// Stop and return the counts.
    Stop,
}

/// One agent of the ring: forwards the token to `next`, or signals `done` on its last hop.
/// Returns (hops counted, forwards failed, cross count).
async fn ring_agent(
    mut rx: mpsc::Receiver<RingMsg>,
    next: mpsc::Sender<RingMsg>,
    done: mpsc::Sender<bool>,
) -> (u64, u64, CrossCount) {
    let (mut hops, mut failed, mut cross) = (0u64, 0u64, CrossCount::default());
    while let Some(msg) = rx.recv().await {
        let RingMsg::Token { left, cpu } = msg else { break };
        hops += 1;
        cross.note(cpu);
        let sent = if left == 0 {
            done.send(true).await.is_ok()
        } else {
            next.send(RingMsg::Token { left: left - 1, cpu: current_cpu() }).await.is_ok()
        };
        if !sent {
            failed += 1;
            let _ = done.try_send(false);
        }
    }
    (hops, failed, cross)
}

/// Thread-ring: `agents` tasks pass one token `hops` times around.
pub fn thread_ring(params: &ThreadRingParams, cpus: PeerCpus) -> Result<PeerResult<PeerRate>, BenchError> {
    const WORKLOAD: &str = "tokio thread-ring";
    let agents = ring_size(WORKLOAD, params)?;
    let hops = params.hops;
    let limit = setup::timeout_for(hops, Duration::from_micros(100));
    run_placed(WORKLOAD, params.placement, cpus, limit, move |sites| async move {
        let (done_tx, mut done_rx) = mpsc::channel(agents);
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..agents).map(|_| mpsc::channel(CAPACITY)).unzip();
        let ring: Vec<_> = rxs
            .into_iter()
            .enumerate()
            .map(|(i, rx)| sites.spawn(i, ring_agent(rx, txs[(i + 1) % agents].clone(), done_tx.clone())))
            .collect();
        // Let the members start waiting first (Nexus links its ring before the clock starts).
        tokio::task::yield_now().await;
        // Agent 0's start: the first hop goes to agent 1; the last one signals `done`.
        let started = Instant::now();
        let finished = if hops == 0 {
            true
        } else {
            let first = RingMsg::Token { left: hops - 1, cpu: current_cpu() };
            txs[1 % agents].send(first).await.is_ok() && done_rx.recv().await == Some(true)
        };
        let elapsed = started.elapsed();
        let mut totals = (0u64, u64::from(!finished), CrossCount::default());
        for tx in &txs {
            let _ = tx.send(RingMsg::Stop).await;
        }
        for agent in ring {
            let (h, f, c) = agent.await.map_err(|e| panicked(WORKLOAD, &e))?;
            totals.0 += h;
            totals.1 += f;
            totals.2.add(c);
        }
        ringed(WORKLOAD, hops, totals, elapsed)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CPUS: PeerCpus = PeerCpus { first: 0, second: 1, pin: false };

    #[test]
    fn pingpong_checks_every_trip_both_ways() {
        for placement in Placement::BOTH {
            let out = pingpong(&PingPongParams { round_trips: 200, warmup: 10, placement }, CPUS).unwrap();
            let PeerResult::Ran(lat) = out else { panic!("tokio pingpong skipped {placement:?}") };
            assert_eq!(lat.rtt.samples, 200);
            assert!(lat.rtt.p50_ns > 0.0 && lat.rtt.p50_ns <= lat.rtt.p99_ns);
            assert!((0.0..=1.0).contains(&lat.crossed));
        }
    }

    #[test]
    fn counting_counts_every_increment_both_ways() {
        for placement in Placement::BOTH {
            let out = counting(&CountingParams { messages: 1_000, burst: 256, placement }, CPUS).unwrap();
            let PeerResult::Ran(rate) = out else { panic!("tokio counting skipped {placement:?}") };
            assert!(rate.per_s > 0.0 && (0.0..=1.0).contains(&rate.crossed));
        }
    }

    #[test]
    fn the_token_makes_every_hop_both_ways() {
        for placement in Placement::BOTH {
            let out = thread_ring(&ThreadRingParams { agents: 10, hops: 100, placement }, CPUS).unwrap();
            let PeerResult::Ran(rate) = out else { panic!("tokio thread-ring skipped {placement:?}") };
            assert!(rate.per_s > 0.0 && (0.0..=1.0).contains(&rate.crossed));
        }
        let none = ThreadRingParams { agents: 0, hops: 100, placement: Placement::Local };
        assert!(thread_ring(&none, CPUS).is_err());
    }
}
