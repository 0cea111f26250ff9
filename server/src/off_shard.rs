//! Helper threads that work for a shard but must not run on its CPU.
//!
//! A thread inherits the CPU affinity of the thread that starts it. A shard is pinned to its
//! CPU, so a thread a shard starts (the log writer of a threads shard, the thread that closes a
//! replaced log) was pinned to that same CPU: every time it ran, it took the CPU from the shard
//! it exists to relieve. Measured on the 2-vCPU VM with `fsync = "everysec"`, SET `-P 16`: the
//! writer ran on the shard's CPU for about 4% of the time, and the shard preempted that often
//! was the bottleneck.
//!
//! [`spawn`] starts such a thread on the CPUs the engine's `placement::helper_cpus` names:
//! those the process may use (its main thread's affinity, which the shards' pinning leaves
//! alone) less the starting thread's own; on another core when there is one, and anywhere the
//! process may run when the shards cover every CPU.
//!
//! A helper's own helpers (the writer closes a replaced log on a thread of its own) stay where
//! the helper runs: the helper is already off its shard, and "off the caller's CPUs" would put
//! them back on it.
//!
//! A glommio shard has helpers the kernel starts: io_uring's io-wq workers, which run the
//! operations a ring cannot complete inline (the log's `fdatasync`, a write that extends the
//! file). They too inherit the shard's pin; [`io_workers_off_shard`] moves them to the same CPUs
//! (`IORING_REGISTER_IOWQ_AFF`, through the vendored glommio's `set_io_worker_cpus`). The server
//! does so only when the log syncs in the background (`everysec`, `no`): under `always` each
//! answer waits on its sync, the shard's CPU idles meanwhile, and a worker elsewhere made the
//! wait longer (its completion is posted to the parked shard from another CPU).
//!
//! Invariant: a helper runs on the process's CPUs less those of the shard that started it,
//! unless that leaves none (then on all of the process's).

use nexus_engine::placement::{helper_cpus, run_current_thread_on};
use std::cell::Cell;
use std::io;
use std::thread::JoinHandle;

thread_local! {
    /// Whether this thread was started by [`spawn`].
    static HELPER: Cell<bool> = const { Cell::new(false) };
}

/// Starts `work` on a thread named `name`, off the calling thread's CPUs (see the module docs).
/// When the affinity cannot be read or set, the thread runs where it would have anyway.
pub(crate) fn spawn<F>(name: String, work: F) -> io::Result<JoinHandle<()>>
where
    F: FnOnce() + Send + 'static,
{
    let cpus = if HELPER.get() { None } else { helper_cpus() };
    std::thread::Builder::new().name(name).spawn(move || {
        HELPER.set(true);
        if let Some(cpus) = cpus {
            if let Err(e) = run_current_thread_on(&cpus) {
                tracing::debug!(error = %e, "a shard's helper thread keeps its inherited CPUs");
            }
        }
        work()
    })
}

/// Confines the io-wq workers of the calling glommio executor's thread to the CPUs [`spawn`]
/// would give a helper. Must run on a glommio executor. When the kernel refuses (before Linux
/// 5.14, or a cpuset that excludes those CPUs), the workers run where they would have anyway.
pub(crate) fn io_workers_off_shard() {
    let Some(cpus) = helper_cpus() else { return };
    if let Err(e) = glommio::executor().set_io_worker_cpus(&cpus) {
        tracing::debug!(error = %e, "the shard's io_uring workers keep its CPU");
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use nexus_engine::topology::parse_cpu_list;

    /// The CPUs a thread may run on, from its `/proc` status (`self`: the main thread's).
    fn cpus_of(status: &str) -> Vec<usize> {
        let text = std::fs::read_to_string(status).expect("the status file");
        let line = text.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")).expect("Cpus_allowed_list");
        parse_cpu_list(line.trim()).expect("a CPU list")
    }

    /// Runs `body` on a thread pinned to the process's first CPU, the shard's stand-in; `None`
    /// when the process may use a single CPU (nothing to be off).
    fn on_a_pinned_thread<T: Send + 'static>(body: impl FnOnce() -> T + Send + 'static) -> Option<(usize, T)> {
        let process = cpus_of("/proc/self/status");
        if process.len() < 2 {
            eprintln!("skipped: the process may use {} CPU(s)", process.len());
            return None;
        }
        let shard_cpu = process[0];
        let out = std::thread::spawn(move || {
            run_current_thread_on(&[shard_cpu]).expect("pin the shard's stand-in");
            body()
        });
        Some((shard_cpu, out.join().expect("join")))
    }

    /// A pinned thread's helper runs off its CPU. Before `spawn`, the writer thread inherited
    /// its shard's pin (`Cpus_allowed_list: 0` for both).
    #[test]
    fn a_pinned_threads_helper_does_not_inherit_its_pin() {
        let Some((shard_cpu, cpus)) = on_a_pinned_thread(|| {
            let (tx, rx) = std::sync::mpsc::channel();
            let helper = spawn("helper".into(), move || tx.send(cpus_of("/proc/thread-self/status")).expect("send"));
            helper.expect("spawn").join().expect("join");
            rx.recv().expect("the helper's CPUs")
        }) else {
            return;
        };
        assert!(!cpus.contains(&shard_cpu), "the helper runs on its shard's CPU: {cpus:?}");
    }

    /// A helper's helper stays on the helper's CPUs, not back on the shard's.
    #[test]
    fn a_helpers_helper_stays_off_the_shard() {
        let Some((shard_cpu, cpus)) = on_a_pinned_thread(|| {
            let (tx, rx) = std::sync::mpsc::channel();
            let outer = spawn("helper".into(), move || {
                let inner = spawn("helper's helper".into(), move || {
                    tx.send(cpus_of("/proc/thread-self/status")).expect("send")
                });
                inner.expect("spawn").join().expect("join");
            });
            outer.expect("spawn").join().expect("join");
            rx.recv().expect("the inner helper's CPUs")
        }) else {
            return;
        };
        assert!(!cpus.contains(&shard_cpu), "the helper's helper runs on the shard's CPU: {cpus:?}");
    }

    /// The CPUs of each io-wq worker of thread `tid` (named `iou-wrk-{tid}` by the kernel).
    fn io_workers_of(tid: i32) -> Vec<Vec<usize>> {
        let name = format!("iou-wrk-{tid}");
        let tasks = std::fs::read_dir("/proc/self/task").expect("the task list");
        let workers = tasks.filter_map(|t| {
            let dir = t.ok()?.path();
            let comm = std::fs::read_to_string(dir.join("comm")).ok()?;
            (comm.trim() == name).then(|| cpus_of(&dir.join("status").to_string_lossy()))
        });
        workers.collect()
    }

    /// A pinned glommio shard's io-wq workers run off its CPU. Before `io_workers_off_shard`, the
    /// worker that ran the log's `fdatasync` read `Cpus_allowed_list: 0`, its shard's CPU.
    #[test]
    fn a_pinned_glommio_shards_io_workers_run_off_its_cpu() {
        let process = cpus_of("/proc/self/status");
        if process.len() < 2 {
            eprintln!("skipped: the process may use {} CPU(s)", process.len());
            return;
        }
        let shard_cpu = process[0];
        let path = std::env::temp_dir().join(format!("nexus-io-workers-{}", std::process::id()));
        let file_path = path.clone();
        let workers = glommio::LocalExecutorBuilder::new(glommio::Placement::Fixed(shard_cpu))
            .io_memory(nexus_engine::engine::GLOMMIO_IO_MEMORY_BYTES)
            .ring_depth(64)
            .spawn(move || async move {
                io_workers_off_shard();
                let file = glommio::io::DmaFile::create(&file_path).await.expect("create");
                let mut buf = file.alloc_dma_buffer(4096);
                buf.as_bytes_mut().fill(b'x');
                file.write_at(buf, 0).await.expect("write");
                // io_uring always hands a sync to an io-wq worker; it lingers idle for seconds.
                file.fdatasync().await.expect("fdatasync");
                // SAFETY: gettid has no preconditions.
                let workers = io_workers_of(unsafe { libc::gettid() });
                file.close().await.expect("close");
                workers
            })
            .expect("spawn the executor")
            .join()
            .expect("join");
        let _ = std::fs::remove_file(&path);
        assert!(!workers.is_empty(), "the sync ran on no io-wq worker of the shard's thread");
        for cpus in workers {
            assert!(!cpus.contains(&shard_cpu), "an io-wq worker runs on its shard's CPU: {cpus:?}");
        }
    }
}
