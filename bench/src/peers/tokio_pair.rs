//! Where the tokio-based peers (tokio, ractor, kameo) put each end of a core workload: [`Sites`],
//! one tokio runtime handle per end, and [`run_placed`], which builds the runtimes.
//!
//! `Local`: one `current_thread` runtime on a thread pinned to `cpus.first` (both sites are
//! it), as tokio's docs advise for work that stays on one core ([`super::tokio_peer::run_on`]).
//!
//! `Cross`: two `current_thread` runtimes, one per thread, pinned to `cpus.first` and
//! `cpus.second`: the runtime-per-core pattern tokio's docs describe for thread-per-core work
//! (a `multi_thread` runtime moves tasks where it likes: its LIFO slot kept a whole ring or a
//! ping-pong pair on one worker, `crossed_share` 0.00, so it did not measure a crossing at
//! all). End `i` runs on runtime `i % 2`, as Nexus puts agent `i` on shard `i % 2`, so every
//! message crosses. Each runtime also runs a spinner task that yields until the run is over:
//! Nexus's bench shards spin for 50 ms before they park, and tokio has no spin-before-park
//! setting, so without it each crossing message would also pay a futex wake of a parked
//! runtime that Nexus does not pay. The driver (`work`) runs on runtime 0; the run is bounded by
//! a timeout scaled to the work; both runtimes are shut down at the end of every run.

use super::tokio_peer::{panicked, run_on};
use super::PeerCpus;
use crate::setup::Placement;
use crate::BenchError;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

/// How long a runtime's shutdown may wait for its threads.
const SHUTDOWN: Duration = Duration::from_secs(5);

/// The runtimes a run's ends go on: site `i % 2` for end `i`.
#[derive(Clone, Debug)]
pub(super) struct Sites([Handle; 2]);

impl Sites {
    /// The runtime of end `i`.
    pub(super) fn of(&self, i: usize) -> &Handle {
        &self.0[i % 2]
    }

    /// Spawns `task` as end `i`.
    pub(super) fn spawn<F>(&self, i: usize, task: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.of(i).spawn(task)
    }
}

/// Runs the future `work` builds on runtime 0 of the sites `placement` calls for (see the
/// module doc), within `limit`. A panicking task or thread, or a run past `limit`, is a failed
/// check of `workload`.
pub(super) fn run_placed<F, Fut, T>(
    workload: &'static str,
    placement: Placement,
    cpus: PeerCpus,
    limit: Duration,
    work: F,
) -> Result<T, BenchError>
where
    F: FnOnce(Sites) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, BenchError>> + Send + 'static,
    T: Send + 'static,
{
    match placement {
        Placement::Local => run_on(workload, placement, cpus, limit, move || async move {
            let here = Handle::current();
            work(Sites([here.clone(), here])).await
        }),
        Placement::Cross => run_cross(workload, cpus, limit, work),
    }
}

/// A pinned thread running a `current_thread` runtime that spins until `done`; returns the
/// runtime's handle and the thread.
fn spinning_runtime(
    workload: &'static str,
    cpu: usize,
    pin: bool,
    done: Arc<AtomicBool>,
) -> Result<(Handle, std::thread::JoinHandle<()>), BenchError> {
    let (handle_tx, handle_rx) = std::sync::mpsc::sync_channel(1);
    let thread = std::thread::Builder::new()
        .name("peer-runtime".into())
        .spawn(move || {
            let rt = super::pin(cpu, pin).and_then(|()| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build()
                    .map_err(|e| BenchError::params(workload, format!("cannot build a tokio runtime: {e}")))
            });
            let rt = match rt {
                Ok(rt) => rt,
                Err(e) => return drop(handle_tx.send(Err(e))),
            };
            let _ = handle_tx.send(Ok(rt.handle().clone()));
            rt.block_on(spin(done));
            rt.shutdown_timeout(SHUTDOWN);
        })
        .map_err(|e| BenchError::params(workload, format!("cannot start a runtime thread: {e}")))?;
    match handle_rx.recv() {
        Ok(Ok(handle)) => Ok((handle, thread)),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => Err(BenchError::check(workload, "a runtime thread ended before it started")),
    }
}

/// Yields until `done`: keeps a `current_thread` runtime polling instead of parking.
async fn spin(done: Arc<AtomicBool>) {
    while !done.load(Ordering::Relaxed) {
        tokio::task::yield_now().await;
    }
}

/// `Cross`: two spinning pinned runtimes; `work` runs on the first.
fn run_cross<F, Fut, T>(workload: &'static str, cpus: PeerCpus, limit: Duration, work: F) -> Result<T, BenchError>
where
    F: FnOnce(Sites) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, BenchError>> + Send + 'static,
    T: Send + 'static,
{
    let done = Arc::new(AtomicBool::new(false));
    let (second, second_thread) = spinning_runtime(workload, cpus.second, cpus.pin, Arc::clone(&done))?;
    let (first, first_thread) = match spinning_runtime(workload, cpus.first, cpus.pin, Arc::clone(&done)) {
        Ok(started) => started,
        Err(e) => {
            done.store(true, Ordering::Relaxed);
            let _ = second_thread.join();
            return Err(e);
        }
    };
    let sites = Sites([first.clone(), second]);
    let task = first.spawn(async move { tokio::time::timeout(limit, work(sites)).await });
    // This thread is neither runtime's: it waits for the task and then stops both.
    let out = match block_on(task) {
        Ok(Ok(out)) => out,
        Ok(Err(_)) => Err(BenchError::check(workload, format!("no result within {limit:?}"))),
        Err(e) => Err(panicked(workload, &e)),
    };
    done.store(true, Ordering::Relaxed);
    let (a, b) = (first_thread.join(), second_thread.join());
    if a.is_err() || b.is_err() {
        return Err(BenchError::check(workload, "a runtime thread panicked"));
    }
    out
}

/// Blocks the calling (non-runtime) thread until `future` completes, parking between polls.
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unparker(std::thread::Thread);
    impl std::task::Wake for Unparker {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(Arc::new(Unparker(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let std::task::Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}
