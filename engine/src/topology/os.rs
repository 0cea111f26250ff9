//! Checked wrappers over the Linux CPU affinity calls (`sched_getaffinity`,
//! `sched_setaffinity`, `sched_getcpu`).
//!
//! Owns every `unsafe` call the topology and placement modules make to libc. Masks are
//! heap buffers that grow until the kernel accepts them, so machines with more than 1024 CPUs
//! (the size of `cpu_set_t`) work. On other systems the calls report "unsupported".

/// Bits per mask word.
#[cfg(target_os = "linux")]
const WORD_BITS: usize = libc::c_ulong::BITS as usize;

/// Largest mask tried, in bits: far beyond any machine Linux supports today.
#[cfg(target_os = "linux")]
const MAX_MASK_BITS: usize = 1 << 22;

/// The CPUs the process may run on, as seen from its main thread, ascending; `None` if the
/// kernel would not say.
///
/// The main thread (pid == tid) is asked rather than the calling thread, so a shard that has
/// already pinned itself does not shrink the answer for the rest of the engine.
#[cfg(target_os = "linux")]
pub(crate) fn process_affinity() -> Option<Vec<usize>> {
    affinity_of(libc::pid_t::try_from(std::process::id()).ok()?)
}

/// The CPUs the calling thread may run on, ascending; `None` if the kernel would not say.
#[cfg(target_os = "linux")]
pub(crate) fn current_thread_affinity() -> Option<Vec<usize>> {
    affinity_of(0)
}

/// The affinity of thread `pid` (0: the calling thread).
#[cfg(target_os = "linux")]
fn affinity_of(pid: libc::pid_t) -> Option<Vec<usize>> {
    let mut words = 1024 / WORD_BITS;
    while words * WORD_BITS <= MAX_MASK_BITS {
        let mut mask: Vec<libc::c_ulong> = vec![0; words];
        let bytes = words * std::mem::size_of::<libc::c_ulong>();
        // SAFETY: `mask` is a live, writable, suitably aligned buffer of exactly `bytes` bytes;
        // the kernel writes at most `bytes` bytes into it and reads nothing else.
        let rc = unsafe { libc::sched_getaffinity(pid, bytes, mask.as_mut_ptr().cast::<libc::cpu_set_t>()) };
        if rc == 0 {
            let cpus = mask
                .iter()
                .enumerate()
                .flat_map(|(w, &word)| {
                    (0..WORD_BITS).filter(move |b| word & (1 << b) != 0).map(move |b| w * WORD_BITS + b)
                })
                .collect();
            return Some(cpus);
        }
        if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL) {
            return None;
        }
        words *= 2;
    }
    None
}

/// Non-Linux stand-in: the affinity mask is unknown.
#[cfg(not(target_os = "linux"))]
pub(crate) fn process_affinity() -> Option<Vec<usize>> {
    None
}

/// Non-Linux stand-in: the affinity mask is unknown.
#[cfg(not(target_os = "linux"))]
pub(crate) fn current_thread_affinity() -> Option<Vec<usize>> {
    None
}

/// Restricts the calling thread to exactly `cpus`.
///
/// # Errors
/// The OS error (`EINVAL` when none of the CPUs exists or is allowed), or `InvalidInput` when a
/// CPU number is beyond any mask we would build.
#[cfg(target_os = "linux")]
pub(crate) fn set_current_thread_affinity(cpus: &[usize]) -> std::io::Result<()> {
    let max = cpus.iter().copied().max().unwrap_or(0);
    if max >= MAX_MASK_BITS {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("cpu {max} is beyond the largest affinity mask"),
        ));
    }
    let words = (max / WORD_BITS + 1).max(1024 / WORD_BITS);
    let mut mask: Vec<libc::c_ulong> = vec![0; words];
    for &cpu in cpus {
        if let Some(word) = mask.get_mut(cpu / WORD_BITS) {
            *word |= 1 << (cpu % WORD_BITS);
        }
    }
    let bytes = words * std::mem::size_of::<libc::c_ulong>();
    // SAFETY: `mask` is a live, suitably aligned buffer of exactly `bytes` bytes that the
    // kernel only reads; pid 0 means the calling thread.
    let rc = unsafe { libc::sched_setaffinity(0, bytes, mask.as_ptr().cast::<libc::cpu_set_t>()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Non-Linux stand-in: uses `core_affinity` for a single CPU.
#[cfg(not(target_os = "linux"))]
pub(crate) fn set_current_thread_affinity(cpus: &[usize]) -> std::io::Result<()> {
    match cpus {
        [cpu] if core_affinity::set_for_current(core_affinity::CoreId { id: *cpu }) => Ok(()),
        _ => Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "thread affinity is not supported here")),
    }
}

/// The CPU the calling thread is running on right now, if the OS says.
#[cfg(target_os = "linux")]
pub(crate) fn current_cpu() -> Option<usize> {
    // SAFETY: sched_getcpu has no preconditions; it returns -1 on error.
    let cpu = unsafe { libc::sched_getcpu() };
    usize::try_from(cpu).ok()
}

/// Non-Linux stand-in: unknown.
#[cfg(not(target_os = "linux"))]
pub(crate) fn current_cpu() -> Option<usize> {
    None
}
