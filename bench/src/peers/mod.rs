//! Peers: the core workloads written for the systems our users would pick instead, so that
//! `nexus bench --peers` measures them side by side with Nexus in one run.
//!
//! Compiled only with the `peers` feature (`.ci/run` builds it so it does not rot). Every peer
//! is written the way its authors recommend; where one needs an extra allocation or a lock per
//! message, its module says so. Each module exposes the same three functions:
//!
//! - `pingpong(&PingPongParams, PeerCpus) -> Result<PeerResult<PeerLatency>, BenchError>`
//! - `counting(&CountingParams, PeerCpus) -> Result<PeerResult<PeerRate>, BenchError>`
//! - `thread_ring(&ThreadRingParams, PeerCpus) -> Result<PeerResult<PeerRate>, BenchError>`
//!
//! and, in a `<peer>_savina` module beside it, the Savina workloads, each with the same
//! parameters as its Nexus version and a rate in the unit of the Nexus headline figure:
//!
//! - `chameneos(&ChameneosParams, PeerCpus) -> Result<PeerResult<PeerRate>, BenchError>`:
//!   mall messages per second (meeting requests plus the mall's answers, as `crate::chameneos`
//!   counts them);
//! - `big(&BigParams, ..)`: pings plus pongs per second;
//! - `fj_throughput(&ThroughputParams, ..)`: messages per second;
//! - `fj_create(&CreateParams, ..)`: spawn + message + stop operations per second;
//! - `fib(&FibParams, ..)`: calls (one actor or task each) per second;
//! - `fan_in(&FanInParams, ..)`: messages per second into the one collector;
//!
//! with the parameters' meaning of the Nexus workloads (`crate::pingpong`, `crate::counting`,
//! `crate::thread_ring` and the Savina modules), the same self-checks (counts, sums, sequence numbers) and the same
//! timing (one clock read per ping-pong round trip; rates from the first send to the checked
//! total). `placement` says where the ends run: `Local`, one thread (or one executor);
//! `Cross`, the two CPUs of [`PeerCpus`], pinned where the peer lets threads be pinned. A
//! combination a peer cannot express comes back as [`PeerResult::Skipped`] with the reason.
//!
//! Cross-core results also report `crossed`: the share of messages handled on another CPU
//! than the one that sent them (each message carries its sender's `sched_getcpu`). A scheduler
//! that quietly runs both ends on one thread shows up as a low share, not as a fast result.

use crate::stats::Percentiles;
use hdrhistogram::Histogram;

pub mod crossbeam_peer;
pub mod crossbeam_savina;
pub mod glommio_peer;
pub mod glommio_savina;
pub mod kameo_peer;
pub mod kameo_savina;
mod protocol;
pub mod ractor_peer;
pub mod ractor_savina;
pub mod rtrb_peer;
pub mod rtrb_savina;
mod tokio_pair;
pub mod tokio_peer;
pub mod tokio_savina;

/// A system measured next to Nexus.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Peer {
    /// tokio tasks as actors over `mpsc` channels (`current_thread` local, `multi_thread` cross).
    Tokio,
    /// glommio executors: local channels within one, `shared_channel` between pinned ones.
    Glommio,
    /// crossbeam-channel between two pinned OS threads: the plain-threads floor.
    Crossbeam,
    /// rtrb with two spinning pinned threads: the floor of a bare SPSC ring.
    Rtrb,
    /// ractor actors.
    Ractor,
    /// kameo actors.
    Kameo,
}

impl Peer {
    /// Every peer, in report order.
    pub const ALL: [Peer; 6] = [Peer::Tokio, Peer::Glommio, Peer::Crossbeam, Peer::Rtrb, Peer::Ractor, Peer::Kameo];

    /// The peer's name (the `system` field of its records).
    pub const fn name(self) -> &'static str {
        match self {
            Peer::Tokio => "tokio",
            Peer::Glommio => "glommio",
            Peer::Crossbeam => "crossbeam",
            Peer::Rtrb => "rtrb",
            Peer::Ractor => "ractor",
            Peer::Kameo => "kameo",
        }
    }
}

/// The CPUs a peer's two ends run on for `Cross` (those of engine shards 0 and 1); `Local`
/// runs on `first`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerCpus {
    /// Where the first end (pinger, producer, agent 0) runs.
    pub first: usize,
    /// Where the second end runs for `Cross`.
    pub second: usize,
    /// Whether to pin threads (tests turn it off).
    pub pin: bool,
}

/// A peer's result, or why it cannot run that combination.
#[derive(Debug)]
pub enum PeerResult<T> {
    /// It ran and passed its check.
    Ran(T),
    /// It cannot express this workload or placement: the reason, for the report.
    Skipped(&'static str),
}

impl PeerResult<PeerRate> {
    /// The measured span of a rate that ran (what the run-length sizing needs), `None` when
    /// skipped.
    pub fn span(&self) -> Option<std::time::Duration> {
        match self {
            PeerResult::Ran(rate) => Some(rate.elapsed),
            PeerResult::Skipped(_) => None,
        }
    }
}

/// A latency workload's figures.
#[derive(Debug)]
pub struct PeerLatency {
    /// Per-trip percentiles (one clock read per trip).
    pub rtt: Percentiles,
    /// The recorded trips (ns).
    pub histogram: Histogram<u64>,
    /// Share of messages handled on another CPU than their sender's (0..=1).
    pub crossed: f64,
}

/// A throughput workload's figures.
#[derive(Clone, Copy, Debug)]
pub struct PeerRate {
    /// The measured span the rate is over (the peer's own timing, setup excluded).
    pub elapsed: std::time::Duration,
    /// Messages (or hops) per second.
    pub per_s: f64,
    /// Share of messages handled on another CPU than their sender's (0..=1).
    pub crossed: f64,
}

impl PeerRate {
    /// Several runs as one: all their events over all their measured time, the crossed share
    /// weighted by events. `None` when there are no runs.
    pub fn combined(runs: &[PeerRate]) -> Option<PeerRate> {
        let elapsed: std::time::Duration = runs.iter().map(|r| r.elapsed).sum();
        let events: f64 = runs.iter().map(|r| r.per_s * r.elapsed.as_secs_f64()).sum();
        let crossed: f64 = runs.iter().map(|r| r.crossed * r.per_s * r.elapsed.as_secs_f64()).sum();
        let secs = elapsed.as_secs_f64();
        (!runs.is_empty()).then(|| PeerRate {
            elapsed,
            per_s: if secs > 0.0 { events / secs } else { 0.0 },
            crossed: if events > 0.0 { crossed / events } else { 0.0 },
        })
    }
}

/// Calls of [`current_cpu`] one `sched_getcpu` answer serves on a thread.
const CPU_REFRESH: u32 = 64;

thread_local! {
    /// This thread's last `sched_getcpu` answer and the calls it still serves.
    static CPU: std::cell::Cell<(u32, usize)> = const { std::cell::Cell::new((0, usize::MAX)) };
}

/// The CPU the calling thread runs on (`sched_getcpu`), or `usize::MAX` if unknown.
///
/// The answer is kept per thread and asked again every [`CPU_REFRESH`] calls: `sched_getcpu`
/// costs 12–14 ns here (the vDSO's `rdpid`), paid twice per message by every peer that stamps
/// its messages for `crossed`, which Nexus, stamping nothing, does not pay. A pinned thread
/// never moves, so for the bench runs (all pinned) the kept answer is exact; an unpinned one
/// (the tests) may be up to 63 calls late.
#[inline]
pub fn current_cpu() -> usize {
    CPU.with(|kept| {
        let (left, cpu) = kept.get();
        if left > 0 {
            kept.set((left - 1, cpu));
            return cpu;
        }
        // SAFETY: `sched_getcpu` takes no arguments and only reads the calling thread's state.
        let cpu = usize::try_from(unsafe { libc::sched_getcpu() }).unwrap_or(usize::MAX);
        kept.set((CPU_REFRESH - 1, cpu));
        cpu
    })
}

/// Counts messages and how many were handled on another CPU than their sender's.
#[derive(Clone, Copy, Debug, Default)]
pub struct CrossCount {
    /// Messages seen.
    pub messages: u64,
    /// Of which handled on another CPU.
    pub crossed: u64,
}

impl CrossCount {
    /// Notes one message sent from `sender_cpu` and handled here.
    #[inline]
    pub fn note(&mut self, sender_cpu: usize) {
        self.messages += 1;
        self.crossed += u64::from(sender_cpu != current_cpu());
    }

    /// Adds another count.
    pub fn add(&mut self, other: CrossCount) {
        self.messages += other.messages;
        self.crossed += other.crossed;
    }

    /// The crossed share (0 when nothing was counted).
    pub fn share(&self) -> f64 {
        if self.messages == 0 {
            0.0
        } else {
            self.crossed as f64 / self.messages as f64
        }
    }
}

/// Pins the calling thread to `cpu` when `pin` is set.
pub fn pin(cpu: usize, pin: bool) -> Result<(), crate::BenchError> {
    if pin && !core_affinity::set_for_current(core_affinity::CoreId { id: cpu }) {
        return Err(crate::BenchError::params("peers", format!("cannot pin a thread to CPU {cpu}")));
    }
    Ok(())
}

/// Runs `peer`'s pingpong.
pub fn pingpong(
    peer: Peer,
    params: &crate::pingpong::PingPongParams,
    cpus: PeerCpus,
) -> Result<PeerResult<PeerLatency>, crate::BenchError> {
    match peer {
        Peer::Tokio => tokio_peer::pingpong(params, cpus),
        Peer::Glommio => glommio_peer::pingpong(params, cpus),
        Peer::Crossbeam => crossbeam_peer::pingpong(params, cpus),
        Peer::Rtrb => rtrb_peer::pingpong(params, cpus),
        Peer::Ractor => ractor_peer::pingpong(params, cpus),
        Peer::Kameo => kameo_peer::pingpong(params, cpus),
    }
}

/// Runs `peer`'s counting.
pub fn counting(
    peer: Peer,
    params: &crate::counting::CountingParams,
    cpus: PeerCpus,
) -> Result<PeerResult<PeerRate>, crate::BenchError> {
    match peer {
        Peer::Tokio => tokio_peer::counting(params, cpus),
        Peer::Glommio => glommio_peer::counting(params, cpus),
        Peer::Crossbeam => crossbeam_peer::counting(params, cpus),
        Peer::Rtrb => rtrb_peer::counting(params, cpus),
        Peer::Ractor => ractor_peer::counting(params, cpus),
        Peer::Kameo => kameo_peer::counting(params, cpus),
    }
}

/// Which Savina workload a peer runs (see the module documentation for each one's rate).
#[derive(Clone, Copy, Debug)]
pub enum Savina<'a> {
    /// Chameneos.
    Chameneos(&'a crate::chameneos::ChameneosParams),
    /// Big.
    Big(&'a crate::big::BigParams),
    /// Fork-join throughput.
    FjThroughput(&'a crate::fork_join::ThroughputParams),
    /// Fork-join creation.
    FjCreate(&'a crate::fork_join::CreateParams),
    /// Fibonacci.
    Fib(&'a crate::fib::FibParams),
    /// Fan-in.
    FanIn(&'a crate::fan_in::FanInParams),
}

/// Runs `peer`'s version of a Savina workload.
pub fn savina(peer: Peer, workload: Savina<'_>, cpus: PeerCpus) -> Result<PeerResult<PeerRate>, crate::BenchError> {
    macro_rules! dispatch {
        ($module:ident) => {
            match workload {
                Savina::Chameneos(p) => $module::chameneos(p, cpus),
                Savina::Big(p) => $module::big(p, cpus),
                Savina::FjThroughput(p) => $module::fj_throughput(p, cpus),
                Savina::FjCreate(p) => $module::fj_create(p, cpus),
                Savina::Fib(p) => $module::fib(p, cpus),
                Savina::FanIn(p) => $module::fan_in(p, cpus),
            }
        };
    }
    match peer {
        Peer::Tokio => dispatch!(tokio_savina),
        Peer::Glommio => dispatch!(glommio_savina),
        Peer::Crossbeam => dispatch!(crossbeam_savina),
        Peer::Rtrb => dispatch!(rtrb_savina),
        Peer::Ractor => dispatch!(ractor_savina),
        Peer::Kameo => dispatch!(kameo_savina),
    }
}

/// Runs `peer`'s thread-ring.
pub fn thread_ring(
    peer: Peer,
    params: &crate::thread_ring::ThreadRingParams,
    cpus: PeerCpus,
) -> Result<PeerResult<PeerRate>, crate::BenchError> {
    match peer {
        Peer::Tokio => tokio_peer::thread_ring(params, cpus),
        Peer::Glommio => glommio_peer::thread_ring(params, cpus),
        Peer::Crossbeam => crossbeam_peer::thread_ring(params, cpus),
        Peer::Rtrb => rtrb_peer::thread_ring(params, cpus),
        Peer::Ractor => ractor_peer::thread_ring(params, cpus),
        Peer::Kameo => kameo_peer::thread_ring(params, cpus),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn combined_runs_are_all_events_over_all_time() {
        let runs = [
            PeerRate { elapsed: Duration::from_secs(1), per_s: 100.0, crossed: 0.0 },
            PeerRate { elapsed: Duration::from_secs(3), per_s: 300.0, crossed: 1.0 },
        ];
        let all = PeerRate::combined(&runs).unwrap();
        assert_eq!(all.elapsed, Duration::from_secs(4));
        assert_eq!(all.per_s, 1_000.0 / 4.0, "100 + 900 events over 4 s");
        assert_eq!(all.crossed, 0.9, "weighted by events");
        assert!(PeerRate::combined(&[]).is_none());
    }

    #[test]
    fn the_kept_cpu_is_the_threads_own() {
        std::thread::spawn(|| {
            // SAFETY: `sched_getcpu` takes no arguments and only reads the calling thread's state.
            let here = usize::try_from(unsafe { libc::sched_getcpu() }).unwrap();
            pin(here, true).unwrap();
            let cpus: Vec<usize> = (0..200).map(|_| current_cpu()).collect();
            assert!(cpus.iter().all(|&c| c == here), "{here}: {cpus:?}");
        })
        .join()
        .unwrap();
    }
}
