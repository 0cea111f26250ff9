//! Helper threads that work for a shard but must not run on its CPU.
//!
//! A thread inherits the CPU affinity of the thread that starts it. A shard is pinned to its
//! CPU, so a thread a shard starts (the log writer of a threads shard, the thread that closes a
//! replaced log) was pinned to that same CPU: every time it ran, it took the CPU from the shard
//! it exists to relieve. Measured on the 2-vCPU VM with `fsync = "everysec"`, SET `-P 16`: the
//! writer ran on the shard's CPU for about 4% of the time, and the shard preempted that often
//! was the bottleneck.
//!
//! [`spawn`] starts such a thread on the CPUs the process may use (its main thread's affinity,
//! which the shards' pinning leaves alone) minus the starting thread's own: on another core
//! when there is one, and anywhere the process may run when the shards cover every CPU.
//!
//! A helper's own helpers (the writer closes a replaced log on a thread of its own) stay where
//! the helper runs: the helper is already off its shard, and "off the caller's CPUs" would put
//! them back on it.
//!
//! Invariant: a helper runs on the process's CPUs less those of the shard that started it,
//! unless that leaves none (then on all of the process's).

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
            if let Err(e) = sys::set_current(&cpus) {
                tracing::debug!(error = %e, "a shard's helper thread keeps its inherited CPUs");
            }
        }
        work()
    })
}

/// The CPUs for a helper of the calling thread: `None` when there is nothing to change (the
/// affinities are unknown, or the caller may already run everywhere the process may).
fn helper_cpus() -> Option<Vec<usize>> {
    let process = sys::of_process_main()?;
    let own = sys::of_current()?;
    let cpus = off(&process, &own);
    (cpus != own).then_some(cpus)
}

/// `process` less `own`, or all of `process` when that leaves nothing.
fn off(process: &[usize], own: &[usize]) -> Vec<usize> {
    let rest: Vec<usize> = process.iter().copied().filter(|c| !own.contains(c)).collect();
    if rest.is_empty() {
        process.to_vec()
    } else {
        rest
    }
}

#[cfg(target_os = "linux")]
mod sys {
    use std::io;

    /// The affinity of thread `tid` (0: the calling thread).
    fn affinity(tid: libc::pid_t) -> Option<Vec<usize>> {
        // SAFETY: an all-zero cpu_set_t is the empty set, a valid value of the plain-data type.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is a live cpu_set_t of the size passed, which the kernel writes.
        let rc = unsafe { libc::sched_getaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
        if rc != 0 {
            return None;
        }
        // SAFETY: CPU_ISSET reads the set, and every index below CPU_SETSIZE is inside it.
        Some((0..libc::CPU_SETSIZE as usize).filter(|&c| unsafe { libc::CPU_ISSET(c, &set) }).collect())
    }

    /// The process's main thread's affinity (its thread id is the process id).
    pub(super) fn of_process_main() -> Option<Vec<usize>> {
        // SAFETY: getpid has no preconditions.
        affinity(unsafe { libc::getpid() })
    }

    /// The calling thread's affinity.
    pub(super) fn of_current() -> Option<Vec<usize>> {
        affinity(0)
    }

    /// Restricts the calling thread to `cpus`.
    pub(super) fn set_current(cpus: &[usize]) -> io::Result<()> {
        // SAFETY: an all-zero cpu_set_t is the empty set.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        for &cpu in cpus.iter().filter(|&&c| c < libc::CPU_SETSIZE as usize) {
            // SAFETY: `cpu` is below CPU_SETSIZE, so CPU_SET writes inside `set`.
            unsafe { libc::CPU_SET(cpu, &mut set) };
        }
        // SAFETY: `set` is a live cpu_set_t of the size passed, which the kernel only reads;
        // pid 0 means the calling thread.
        let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod sys {
    use std::io;

    pub(super) fn of_process_main() -> Option<Vec<usize>> {
        None
    }

    pub(super) fn of_current() -> Option<Vec<usize>> {
        None
    }

    pub(super) fn set_current(_: &[usize]) -> io::Result<()> {
        Err(io::Error::new(io::ErrorKind::Unsupported, "thread affinity is not supported here"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_helper_gets_the_process_cpus_less_its_shards() {
        assert_eq!(off(&[0, 1], &[0]), vec![1]);
        assert_eq!(off(&[0, 1, 2, 3], &[2]), vec![0, 1, 3]);
        // The shards cover every CPU: anywhere the process may run.
        assert_eq!(off(&[0, 1], &[0, 1]), vec![0, 1]);
        assert_eq!(off(&[0], &[0]), vec![0]);
    }

    /// A pinned thread's helper runs off its CPU. Before `spawn`, the writer thread inherited
    /// its shard's pin (`Cpus_allowed_list: 0` for both).
    #[cfg(target_os = "linux")]
    #[test]
    fn a_pinned_threads_helper_does_not_inherit_its_pin() {
        let process = sys::of_process_main().expect("the process's affinity");
        if process.len() < 2 {
            eprintln!("skipped: the process may use {} CPU(s)", process.len());
            return;
        }
        let shard_cpu = process[0];
        let helper = std::thread::spawn(move || {
            sys::set_current(&[shard_cpu]).expect("pin the shard's stand-in");
            let (tx, rx) = std::sync::mpsc::channel();
            spawn("helper".into(), move || tx.send(sys::of_current()).expect("send"))
                .expect("spawn")
                .join()
                .expect("join");
            rx.recv().expect("the helper's affinity")
        });
        let cpus = helper.join().expect("join").expect("the helper's affinity");
        assert!(!cpus.contains(&shard_cpu), "the helper runs on its shard's CPU: {cpus:?}");
        assert_eq!(cpus, off(&process, &[shard_cpu]));
    }

    /// A helper's helper stays on the helper's CPUs, not back on the shard's.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_helpers_helper_stays_off_the_shard() {
        let process = sys::of_process_main().expect("the process's affinity");
        if process.len() < 2 {
            eprintln!("skipped: the process may use {} CPU(s)", process.len());
            return;
        }
        let shard_cpu = process[0];
        let nested = std::thread::spawn(move || {
            sys::set_current(&[shard_cpu]).expect("pin the shard's stand-in");
            let (tx, rx) = std::sync::mpsc::channel();
            let outer = spawn("helper".into(), move || {
                let inner = spawn("helper's helper".into(), move || tx.send(sys::of_current()).expect("send"));
                inner.expect("spawn").join().expect("join");
            });
            outer.expect("spawn").join().expect("join");
            rx.recv().expect("the inner helper's affinity")
        });
        let cpus = nested.join().expect("join").expect("the inner helper's affinity");
        assert!(!cpus.contains(&shard_cpu), "the helper's helper runs on the shard's CPU: {cpus:?}");
    }
}
