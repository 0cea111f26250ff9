//! The probe: the physical limit of a cross-core round trip on this machine.
//!
//! Two OS threads, pinned to the CPUs of engine shards 0 and 1 (the same placement plan the
//! engine computes), bounce one cache line: a single `AtomicU64` in a 128-byte `CachePadded`
//! (so no neighbour shares its line or the adjacent line the prefetcher pairs with it).
//!
//! Protocol (the value only grows; it is written by one side at a time):
//! 1. the initiator stores an odd value `v` (`Release`);
//! 2. the responder sees `v` odd and stores `v + 1` (`Release`);
//! 3. the initiator sees `v + 1` and has completed one round trip; the responder counts it.
//!
//! [`STOP`] (odd, never reached by counting) tells the responder to return. The line bounces
//! twice per round trip, exactly like a request and its answer between two shards, with no
//! queue, no dispatcher and no message around it: whatever the engine adds is the engine's cost.
//!
//! Each of the first `warmup + round_trips` trips is timed on its own with `Instant`: one clock
//! read per trip, the time since the previous trip completed, exactly as the engine pingpong
//! times its trips, so the ratio compares like with like; then `batch_round_trips` trips are timed in batches of [`BATCH_CHUNK`], with no
//! clock read inside a batch, and the median batch mean is the batch figure (a single mean
//! over all of them would be dominated by the few batches the hypervisor or a neighbour
//! interrupted). Both threads spin: run the probe only while no engine runs, or the shards and
//! the probe fight over the same cores.

use crate::setup::EngineSettings;
use crate::stats::{self, Percentiles};
use crate::BenchError;
use crossbeam_utils::CachePadded;
use nexus_engine::placement::pin_current_thread;
use nexus_engine::topology::Topology;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// Tells the responder to return (odd, so it is never mistaken for an answer).
pub const STOP: u64 = u64::MAX;

/// Failed polls after which a waiting side yields its CPU: only reached when the peer is not
/// running (unpinned threads on a busy machine), never during a normal pinned trip.
const SPINS_BEFORE_YIELD: u32 = 1 << 16;

/// Round trips per timed batch.
pub const BATCH_CHUNK: u64 = 1_000;

const WORKLOAD: &str = "probe";

/// What the probe runs.
#[derive(Clone, Debug)]
pub struct ProbeParams {
    /// Round trips timed one by one (recorded in the histogram).
    pub round_trips: u64,
    /// Round trips before those, not recorded.
    pub warmup: u64,
    /// Round trips timed in batches of [`BATCH_CHUNK`] after the individual ones.
    pub batch_round_trips: u64,
    /// Pin the two threads to the CPUs of shards 0 and 1 (tests turn it off).
    pub pin: bool,
}

impl Default for ProbeParams {
    fn default() -> Self {
        Self { round_trips: 40_000, warmup: 4_000, batch_round_trips: 100_000, pin: true }
    }
}

/// What the probe measured.
#[derive(Clone, Debug)]
pub struct ProbeOutcome {
    /// The CPUs of the initiator and the responder.
    pub cpus: [usize; 2],
    /// Whether the threads were pinned.
    pub pinned: bool,
    /// Individually timed round trips.
    pub rtt: Percentiles,
    /// The median over batches of the batch's mean round trip, in nanoseconds (no clock read
    /// inside a batch).
    pub batch_rtt_ns: f64,
    /// Round trips the responder answered (checked: warmup + timed + batch).
    pub answered: u64,
}

/// Runs the probe on the CPUs `settings` would give shards 0 and 1.
pub fn run(params: &ProbeParams, settings: &mut EngineSettings) -> Result<ProbeOutcome, BenchError> {
    let (cpus, topology) = probe_cpus(settings, params.pin)?;
    run_on((cpus[0], cpus[1]), &topology, params)
}

/// Runs the probe with the initiator on `cpus.0` and the responder on `cpus.1` (pinned with
/// `topology` when `params.pin`; the ids are only reported when not). The same protocol and
/// checks as [`run`], which calls it; `nexus c2c` calls it for every pair of CPUs.
pub fn run_on(cpus: (usize, usize), topology: &Topology, params: &ProbeParams) -> Result<ProbeOutcome, BenchError> {
    let cpus = [cpus.0, cpus.1];
    if params.pin && cpus[0] == cpus[1] {
        return Err(BenchError::params(
            WORKLOAD,
            format!("both probe threads on CPU {}; the probe needs two CPUs", cpus[0]),
        ));
    }
    let line = CachePadded::new(AtomicU64::new(0));
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), BenchError>>();
    let spawn_err = |e: std::io::Error| BenchError::params(WORKLOAD, format!("cannot start a thread: {e}"));
    let (initiated, answered) = std::thread::scope(|scope| {
        let line = &*line;
        let responder = std::thread::Builder::new()
            .name("nexus-probe-1".into())
            .spawn_scoped(scope, move || respond(line, topology, params.pin.then_some(cpus[1]), ready_tx))
            .map_err(spawn_err)?;
        let initiator = std::thread::Builder::new().name("nexus-probe-0".into()).spawn_scoped(scope, move || {
            // Whatever happens here, release the responder.
            let _stop = StopOnDrop(line);
            if params.pin {
                pin_current_thread(topology, cpus[0])?;
            }
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(BenchError::params(WORKLOAD, "the responder thread exited early")),
            }
            Ok(initiate(line, params))
        });
        let initiator = match initiator {
            Ok(thread) => thread,
            Err(e) => {
                // Release the responder, which is already waiting for trips.
                line.store(STOP, Ordering::Release);
                return Err(spawn_err(e));
            }
        };
        let initiated = initiator.join().unwrap_or_else(|_| Err(BenchError::check(WORKLOAD, "the initiator panicked")));
        let answered = responder.join().unwrap_or_else(|_| Err(BenchError::check(WORKLOAD, "the responder panicked")));
        Ok((initiated, answered))
    })?;
    let (rtt, batch) = initiated?;
    let answered = answered?;
    let expected = params.warmup + params.round_trips + params.batch_round_trips;
    if answered != expected || rtt.samples != params.round_trips {
        return Err(BenchError::check(
            WORKLOAD,
            format!(
                "{answered} trips answered and {} timed; expected {expected} and {}",
                rtt.samples, params.round_trips
            ),
        ));
    }
    Ok(ProbeOutcome { cpus, pinned: params.pin, rtt, batch_rtt_ns: batch, answered })
}

/// The CPUs of shards 0 and 1 under `settings`, and the machine model to pin with.
fn probe_cpus(settings: &mut EngineSettings, pin: bool) -> Result<([usize; 2], Arc<Topology>), BenchError> {
    if settings.shards < 2 {
        return Err(BenchError::params(WORKLOAD, "the probe needs 2 shards' CPUs; hint: use --shards 2"));
    }
    let plan = settings.plan()?;
    let cpus = [plan.shards[0].cpu, plan.shards[1].cpu];
    if pin && cpus[0] == cpus[1] {
        return Err(BenchError::params(
            WORKLOAD,
            format!("shards 0 and 1 share CPU {} (oversubscribed); the probe needs two CPUs", cpus[0]),
        ));
    }
    Ok((cpus, Arc::new(settings.detect_topology()?.clone())))
}

/// Stores [`STOP`] when dropped.
struct StopOnDrop<'a>(&'a AtomicU64);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(STOP, Ordering::Release);
    }
}

/// Waits until `line` holds `want`, yielding now and then if the peer does not run.
#[inline]
fn wait_for(line: &AtomicU64, want: u64) {
    let mut spins = 0u32;
    while line.load(Ordering::Acquire) != want {
        spins += 1;
        if spins == SPINS_BEFORE_YIELD {
            spins = 0;
            std::thread::yield_now();
        }
    }
}

/// The initiator's side: timed trips, then the batches. Returns the trips' percentiles and the
/// median batch mean in nanoseconds.
fn initiate(line: &AtomicU64, params: &ProbeParams) -> (Percentiles, f64) {
    let mut h = stats::histogram();
    let mut v = 0u64;
    let mut last = Instant::now();
    for i in 0..params.warmup + params.round_trips {
        line.store(v + 1, Ordering::Release);
        v += 2;
        wait_for(line, v);
        let now = Instant::now();
        if i >= params.warmup {
            stats::record(&mut h, now.duration_since(last));
        }
        last = now;
    }
    let mut left = params.batch_round_trips;
    let mut means = Vec::with_capacity(left.div_ceil(BATCH_CHUNK) as usize);
    while left > 0 {
        let n = left.min(BATCH_CHUNK);
        let started = Instant::now();
        for _ in 0..n {
            line.store(v + 1, Ordering::Release);
            v += 2;
            wait_for(line, v);
        }
        means.push(stats::ns_per(started.elapsed(), n));
        left -= n;
    }
    (Percentiles::of(&h), stats::median(&means))
}

/// The responder's side: answers every odd value until [`STOP`]; returns how many it answered.
fn respond(
    line: &AtomicU64,
    topology: &Topology,
    cpu: Option<usize>,
    ready: mpsc::Sender<Result<(), BenchError>>,
) -> Result<u64, BenchError> {
    if let Some(cpu) = cpu {
        if let Err(e) = pin_current_thread(topology, cpu) {
            let _ = ready.send(Err(BenchError::Pin(e)));
            return Ok(0);
        }
    }
    let _ = ready.send(Ok(()));
    let mut answered = 0u64;
    let mut spins = 0u32;
    loop {
        let v = line.load(Ordering::Acquire);
        if v == STOP {
            return Ok(answered);
        }
        if v & 1 == 1 {
            line.store(v + 1, Ordering::Release);
            answered += 1;
            spins = 0;
        } else {
            spins += 1;
            if spins == SPINS_BEFORE_YIELD {
                spins = 0;
                std::thread::yield_now();
            }
        }
    }
}

/// What the wake probe does: the OS's own thread wake-up, the floor under the engine's
/// wake-from-park figure.
#[derive(Clone, Debug)]
pub struct WakeProbeParams {
    /// Wake-ups measured.
    pub samples: u64,
    /// Pause between two wake-ups (the sleeper is parked during it).
    pub gap: Duration,
    /// Pin the two threads to the CPUs of shards 0 and 1.
    pub pin: bool,
}

impl Default for WakeProbeParams {
    fn default() -> Self {
        Self { samples: 200, gap: Duration::from_millis(2), pin: true }
    }
}

/// Measures a bare thread wake-up: a *sleeper* thread (shard 0's CPU) parks with a 1 s
/// timeout; every `gap` a *waker* thread (shard 1's CPU) stores `now` and unparks it; the
/// sleeper records `now - stamp` when it runs again. That is one futex wake and the OS
/// scheduling a parked thread, which the engine's wake from park cannot beat. Check: exactly
/// `samples` stamps were recorded.
pub fn wake(params: &WakeProbeParams, settings: &mut EngineSettings) -> Result<Percentiles, BenchError> {
    let (cpus, topology) = probe_cpus(settings, params.pin)?;
    let epoch = Instant::now();
    let stamp = Arc::new(CachePadded::new(AtomicU64::new(0)));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), BenchError>>();
    let sleeper = {
        let (stamp, done, topology, pin) = (stamp.clone(), done.clone(), topology.clone(), params.pin);
        std::thread::Builder::new()
            .name("nexus-probe-sleeper".into())
            .spawn(move || -> Result<Percentiles, BenchError> {
                if pin {
                    if let Err(e) = pin_current_thread(&topology, cpus[0]) {
                        let _ = ready_tx.send(Err(BenchError::Pin(e)));
                        return Ok(Percentiles::default());
                    }
                }
                let _ = ready_tx.send(Ok(()));
                let mut h = stats::histogram();
                loop {
                    std::thread::park_timeout(Duration::from_secs(1));
                    let sent = stamp.swap(0, Ordering::AcqRel);
                    if sent != 0 {
                        stats::record(&mut h, epoch.elapsed().saturating_sub(Duration::from_nanos(sent)));
                    } else if done.load(Ordering::Acquire) {
                        return Ok(Percentiles::of(&h));
                    }
                }
            })
            .map_err(|e| BenchError::params(WORKLOAD, format!("cannot start a thread: {e}")))?
    };
    let waker = {
        let (params, sleeper_thread) = (params.clone(), sleeper.thread().clone());
        std::thread::Builder::new()
            .name("nexus-probe-waker".into())
            .spawn(move || -> Result<(), BenchError> {
                let release = |result| {
                    done.store(true, Ordering::Release);
                    sleeper_thread.unpark();
                    result
                };
                if params.pin {
                    if let Err(e) = pin_current_thread(&topology, cpus[1]) {
                        return release(Err(BenchError::Pin(e)));
                    }
                }
                match ready_rx.recv() {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return release(Err(e)),
                    Err(_) => return release(Err(BenchError::params(WORKLOAD, "the sleeper exited early"))),
                }
                for _ in 0..params.samples {
                    std::thread::sleep(params.gap);
                    // On a loaded machine the sleeper may not have run since the last wake-up:
                    // wait until it took the previous stamp, so no sample is overwritten.
                    while stamp.load(Ordering::Acquire) != 0 {
                        std::thread::sleep(params.gap);
                    }
                    // A stamp is never 0: at least the first sleep has passed since the epoch.
                    let now = u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX).max(1);
                    stamp.store(now, Ordering::Release);
                    sleeper_thread.unpark();
                }
                std::thread::sleep(params.gap);
                release(Ok(()))
            })
            .map_err(|e| BenchError::params(WORKLOAD, format!("cannot start a thread: {e}")))?
    };
    let waked = waker.join().unwrap_or_else(|_| Err(BenchError::check(WORKLOAD, "the waker panicked")));
    let slept = sleeper.join().unwrap_or_else(|_| Err(BenchError::check(WORKLOAD, "the sleeper panicked")));
    waked?;
    let latency = slept?;
    if latency.samples != params.samples {
        return Err(BenchError::check(
            WORKLOAD,
            format!("{} wake-ups recorded; expected {}", latency.samples, params.samples),
        ));
    }
    Ok(latency)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_answers_every_trip() {
        let mut settings = EngineSettings::test(2);
        let params = ProbeParams { round_trips: 200, warmup: 10, batch_round_trips: 200, pin: false };
        let out = run(&params, &mut settings).unwrap();
        assert_eq!(out.answered, 410);
        assert_eq!(out.rtt.samples, 200);
        assert!(out.rtt.p50_ns > 0.0 && out.batch_rtt_ns > 0.0);
    }

    #[test]
    fn wake_probe_records_every_wake_up() {
        let mut settings = EngineSettings::test(2);
        let params = WakeProbeParams { samples: 5, gap: Duration::from_millis(1), pin: false };
        assert_eq!(wake(&params, &mut settings).unwrap().samples, 5);
    }
}
