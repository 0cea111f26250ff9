//! `nexus bench server`'s CPU measurement: what one redis-benchmark run cost the load generator
//! and the server it measured ([`Usage`]), read around the run by a [`Meter`].
//!
//! - Wall-clock time: from just before redis-benchmark is spawned to just after it is reaped.
//! - The client's CPU: redis-benchmark's user + system time, the difference of
//!   `getrusage(RUSAGE_CHILDREN)` before the spawn and after the reap. That sum grows only when
//!   a child of this process is reaped, and between the two readings the only child reaped is
//!   this run (see [`Meter`]), so the difference is exactly its CPU time, all its threads, as the
//!   kernel accounted it at exit (microseconds, not ticks).
//! - The server's CPU: `utime + stime` of the server process (fields 14 and 15 of
//!   `/proc/PID/stat`, all its threads, in ticks of `sysconf(_SC_CLK_TCK)`) before and after.
//!   A server not started here (`--target-port`) has no process id here: `None`, never a guess.
//!
//! [`Usage`]'s own methods turn those into % of one CPU and requests per server CPU-second.

use std::time::{Duration, Instant};

/// What one redis-benchmark run cost: its wall-clock time and the CPU time of each side.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Usage {
    /// Seconds from just before the spawn to just after the reap.
    pub wall_s: f64,
    /// redis-benchmark's user + system time (seconds); `None` when `getrusage` failed.
    pub client_cpu_s: Option<f64>,
    /// The server's user + system time over the run (seconds, all its threads); `None` for a
    /// server not started here or whose `/proc/PID/stat` could not be read.
    pub server_cpu_s: Option<f64>,
    /// redis-benchmark's threads (`--threads`; 1 without it).
    pub client_threads: u32,
}

impl Usage {
    /// redis-benchmark's CPU as % of one CPU over the run.
    pub fn client_pct(&self) -> Option<f64> {
        percent(self.client_cpu_s?, self.wall_s)
    }

    /// redis-benchmark's CPU as % of the CPUs its threads can use at most (one per thread): at
    /// 90% or more it is the load generator that sets the requests/s.
    pub fn client_load_pct(&self) -> Option<f64> {
        Some(self.client_pct()? / f64::from(self.client_threads.max(1)))
    }

    /// The server's CPU as % of one CPU over the run (above 100 for a server on several CPUs).
    pub fn server_pct(&self) -> Option<f64> {
        percent(self.server_cpu_s?, self.wall_s)
    }

    /// `requests` per second of the server's own CPU time; `None` when unknown or when the
    /// server was charged no tick at all (nothing to divide by).
    pub fn requests_per_cpu_s(&self, requests: u64) -> Option<f64> {
        self.server_cpu_s.filter(|&s| s > 0.0).map(|s| requests as f64 / s)
    }
}

/// `cpu_s` as % of `wall_s`; `None` for a zero (or negative) wall time.
fn percent(cpu_s: f64, wall_s: f64) -> Option<f64> {
    (wall_s > 0.0).then(|| cpu_s / wall_s * 100.0)
}

/// The readings taken just before a redis-benchmark run is spawned; [`Meter::finish`] takes
/// the second ones just after it is reaped.
///
/// The caller must reap no other child between the two (`nexus bench server` checks the
/// servers, which may reap a dead one, only before the start and after the finish, and
/// [`crate::child::Process::wait_timeout`] polls the run's child alone), and this process must
/// run no other thread that reaps children: `RUSAGE_CHILDREN` is process-wide.
#[derive(Debug)]
pub(super) struct Meter {
    started: Instant,
    children: Option<Duration>,
    server_pid: Option<u32>,
    server_ticks: Option<u64>,
}

impl Meter {
    /// Takes the first readings: the clock, the reaped children's CPU, and the CPU of the
    /// server `server_pid` (`None`: a server not started here).
    pub(super) fn start(server_pid: Option<u32>) -> Self {
        let server_ticks = server_pid.and_then(process_ticks);
        let children = children_cpu();
        Self { started: Instant::now(), children, server_pid, server_ticks }
    }

    /// Takes the second readings (call it right after the run is reaped) and gives the usage of
    /// the run, whose redis-benchmark ran `client_threads` threads.
    pub(super) fn finish(self, client_threads: u32) -> Usage {
        let wall_s = self.started.elapsed().as_secs_f64();
        let children = children_cpu();
        let server_after = self.server_pid.and_then(process_ticks);
        let client_cpu_s = match (self.children, children) {
            (Some(before), Some(after)) => after.checked_sub(before).map(|d| d.as_secs_f64()),
            _ => None,
        };
        let server_cpu_s = match (self.server_ticks, server_after, clock_ticks()) {
            (Some(before), Some(after), Some(hz)) => after.checked_sub(before).map(|t| t as f64 / hz as f64),
            _ => None,
        };
        Usage { wall_s, client_cpu_s, server_cpu_s, client_threads }
    }
}

/// User + system time of every child of this process reaped so far (and of their own reaped
/// descendants); `None` when `getrusage` fails.
fn children_cpu() -> Option<Duration> {
    // SAFETY: an all-zero `rusage` is a valid value of this plain C struct (integers and
    // `timeval`s only).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a live, writable `rusage` that getrusage fills and does not keep;
    // RUSAGE_CHILDREN is a valid `who`.
    if unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) } != 0 {
        return None;
    }
    let time = |t: libc::timeval| {
        let secs = u64::try_from(t.tv_sec).ok()?;
        let micros = u32::try_from(t.tv_usec).ok()?;
        Some(Duration::from_secs(secs) + Duration::from_micros(u64::from(micros)))
    };
    Some(time(usage.ru_utime)? + time(usage.ru_stime)?)
}

/// `utime + stime` of process `pid` now, in clock ticks; `None` when its stat cannot be read
/// or parsed (the process is gone, or this is not Linux).
fn process_ticks(pid: u32) -> Option<u64> {
    let line = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat_cpu_ticks(&line)
}

/// `utime + stime` (fields 14 and 15, clock ticks) of a `/proc/PID/stat` line, counted from
/// the last `)` (the process name, field 2, may hold spaces and parentheses); `None` for a
/// line that does not have them as counts.
pub fn stat_cpu_ticks(line: &str) -> Option<u64> {
    crate::bench_idle::parse_stat_cpu(line).ok()
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`), the unit of `/proc/PID/stat`'s times.
pub fn clock_ticks() -> Option<u64> {
    // SAFETY: sysconf takes an integer and reads no memory of ours.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|&t| t > 0)
}

/// The report header's line on how CPU is measured.
pub fn method_line() -> String {
    let tick = clock_ticks().map_or("clock ticks".to_string(), |hz| format!("1/{hz} s ticks"));
    format!(
        "CPU: % of one CPU over each run's wall time (spawn to exit); client: redis-benchmark's user+system time \
         (getrusage of the reaped child), server: its process's utime+stime, all threads (/proc/PID/stat, {tick})"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_give_ticks_or_nothing() {
        // The parsing itself is `bench_idle::parse_stat_cpu`'s (tested there): here, its
        // figure passes through and its refusal becomes `None`.
        assert_eq!(stat_cpu_ticks("7 (a) b) c) R 0 1 1 0 -1 0 0 0 0 0 40 2 0 0"), Some(42));
        assert_eq!(stat_cpu_ticks("1 (short) R 0 1"), None, "no utime");
        assert_eq!(stat_cpu_ticks(""), None);
    }

    #[test]
    fn usage_as_percentages_and_requests_per_cpu_second() {
        let u = Usage { wall_s: 2.0, client_cpu_s: Some(1.9), server_cpu_s: Some(0.5), client_threads: 1 };
        assert_eq!(u.client_pct(), Some(95.0));
        assert_eq!(u.server_pct(), Some(25.0));
        assert_eq!(u.requests_per_cpu_s(200_000), Some(400_000.0));
        assert_eq!(u.client_load_pct(), Some(95.0), "one thread: its load is its CPU");
        let threaded = Usage { client_cpu_s: Some(3.0), client_threads: 4, ..u };
        assert_eq!((threaded.client_pct(), threaded.client_load_pct()), (Some(150.0), Some(37.5)));
        let unknown = Usage { wall_s: 2.0, client_cpu_s: None, server_cpu_s: None, client_threads: 1 };
        assert_eq!((unknown.client_pct(), unknown.server_pct()), (None, None));
        assert_eq!(unknown.requests_per_cpu_s(200_000), None);
        let idle = Usage { wall_s: 0.0, client_cpu_s: Some(0.0), server_cpu_s: Some(0.0), client_threads: 1 };
        assert_eq!((idle.client_pct(), idle.requests_per_cpu_s(5)), (None, None), "nothing to divide by");
    }

    #[test]
    fn a_meter_reads_the_reaped_child_and_a_live_process() {
        assert!(clock_ticks().is_some_and(|hz| hz >= 1));
        let meter = Meter::start(Some(std::process::id()));
        // A child that burns some CPU, waited for (reaped) here.
        let status = std::process::Command::new("sh")
            .args(["-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done"])
            .status()
            .expect("sh runs");
        assert!(status.success());
        let usage = meter.finish(1);
        assert!(usage.wall_s > 0.0);
        // Other tests may reap children meanwhile (RUSAGE_CHILDREN is process-wide), which
        // only adds: the child's own time is a lower bound.
        assert!(usage.client_cpu_s.is_some_and(|s| s >= 0.01), "{usage:?}");
        assert!(usage.server_cpu_s.is_some_and(|s| s >= 0.0), "{usage:?}");
        let external = Meter::start(None).finish(1);
        assert_eq!(external.server_cpu_s, None, "a server not started here: unknown");
        let gone = Meter::start(Some(u32::MAX)).finish(1);
        assert_eq!(gone.server_cpu_s, None, "no such process");
    }
}
