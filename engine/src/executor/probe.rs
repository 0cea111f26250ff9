//! What the machine allows an io_uring executor: the ring probe and the locked-memory limit.
//!
//! Owns [`UringProbe`] (set up a small ring with the `io-uring` crate, ask the kernel which
//! opcodes it supports, and compare them with [`REQUIRED_OPCODES`]) and [`MemlockLimit`] (the
//! process's `RLIMIT_MEMLOCK`). Both are plain data once taken, so the executor choice made from
//! them ([`super::select`]) is a pure function that tests drive with made-up values. Taking a
//! probe costs one `io_uring_setup`, one `register(PROBE)` and a close: tens of microseconds.
//! A seccomp profile that blocks io_uring makes `io_uring_setup` fail with `EPERM` or `ENOSYS`,
//! which is exactly what the probe reports.

use std::fmt;

/// The io_uring opcodes the glommio executor uses for the engine's timers and its network I/O.
pub const REQUIRED_OPCODES: &[(&str, u8)] = &[
    ("NOP", io_uring::opcode::Nop::CODE),
    ("READ", io_uring::opcode::Read::CODE),
    ("WRITE", io_uring::opcode::Write::CODE),
    ("READV", io_uring::opcode::Readv::CODE),
    ("WRITEV", io_uring::opcode::Writev::CODE),
    ("POLL_ADD", io_uring::opcode::PollAdd::CODE),
    ("POLL_REMOVE", io_uring::opcode::PollRemove::CODE),
    ("TIMEOUT", io_uring::opcode::Timeout::CODE),
    ("TIMEOUT_REMOVE", io_uring::opcode::TimeoutRemove::CODE),
    ("ASYNC_CANCEL", io_uring::opcode::AsyncCancel::CODE),
    ("ACCEPT", io_uring::opcode::Accept::CODE),
    ("CONNECT", io_uring::opcode::Connect::CODE),
    ("SEND", io_uring::opcode::Send::CODE),
    ("RECV", io_uring::opcode::Recv::CODE),
    ("CLOSE", io_uring::opcode::Close::CODE),
    ("FSYNC", io_uring::opcode::Fsync::CODE),
];

/// What the io_uring probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UringProbe {
    /// `Err(reason)` when no ring could be set up (blocked by seccomp, disabled by
    /// `kernel.io_uring_disabled`, an old kernel) or its opcodes could not be probed.
    pub setup: Result<(), String>,
    /// Required opcodes the kernel does not support (empty when `setup` failed).
    pub missing: Vec<&'static str>,
}

impl UringProbe {
    /// Sets up an 8-entry ring and probes the opcodes in [`REQUIRED_OPCODES`].
    pub fn run() -> Self {
        let ring = match io_uring::IoUring::new(8) {
            Ok(ring) => ring,
            Err(e) => return Self::failed(format!("io_uring_setup failed: {e}")),
        };
        let mut probe = io_uring::Probe::new();
        if let Err(e) = ring.submitter().register_probe(&mut probe) {
            return Self::failed(format!("io_uring probe failed: {e}"));
        }
        let missing = REQUIRED_OPCODES.iter().filter(|(_, code)| !probe.is_supported(*code)).map(|(n, _)| *n).collect();
        Self { setup: Ok(()), missing }
    }

    /// A probe that failed for `reason` (for tests, and for callers that know io_uring is off).
    pub fn failed(reason: impl Into<String>) -> Self {
        Self { setup: Err(reason.into()), missing: Vec::new() }
    }

    /// A probe that found a working ring with every required opcode.
    pub fn supported() -> Self {
        Self { setup: Ok(()), missing: Vec::new() }
    }

    /// `Ok` when the glommio executor can run here, or why not.
    pub fn usable(&self) -> Result<(), String> {
        match &self.setup {
            Err(reason) => Err(reason.clone()),
            Ok(()) if !self.missing.is_empty() => {
                Err(format!("the kernel's io_uring lacks opcodes {}", self.missing.join(", ")))
            }
            Ok(()) => Ok(()),
        }
    }
}

/// The process's locked-memory limit (`RLIMIT_MEMLOCK`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemlockLimit {
    /// The soft limit in bytes; `None` when unlimited.
    pub soft: Option<u64>,
    /// The hard limit in bytes; `None` when unlimited.
    pub hard: Option<u64>,
}

impl MemlockLimit {
    /// Reads the limit of this process. An unreadable limit is reported as unlimited, since
    /// the executor's own start-up would then say what is wrong.
    pub fn current() -> Self {
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: `lim` is a valid, writable `rlimit` for the duration of the call.
        let rc = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) };
        if rc != 0 {
            return Self { soft: None, hard: None };
        }
        let bytes = |v: libc::rlim_t| (v != libc::RLIM_INFINITY).then_some(v);
        Self { soft: bytes(lim.rlim_cur), hard: bytes(lim.rlim_max) }
    }

    /// An unlimited limit.
    pub fn unlimited() -> Self {
        Self { soft: None, hard: None }
    }

    /// A soft and hard limit of `bytes`.
    pub fn bytes(bytes: u64) -> Self {
        Self { soft: Some(bytes), hard: Some(bytes) }
    }

    /// Whether `need` bytes can be locked under the soft limit.
    pub fn allows(&self, need: u64) -> bool {
        self.soft.map_or(true, |soft| need <= soft)
    }
}

impl fmt::Display for MemlockLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.soft {
            None => f.write_str("unlimited"),
            Some(b) => write!(f, "{} KiB", b / 1024),
        }
    }
}

/// Locked memory one glommio shard needs: its registered I/O buffer
/// ([`crate::engine::GLOMMIO_IO_MEMORY_BYTES`]) plus 64 KiB for its rings, which kernels
/// before 5.12 charge to the same limit.
pub const GLOMMIO_MEMLOCK_PER_SHARD: u64 = crate::engine::GLOMMIO_IO_MEMORY_BYTES as u64 + 64 * 1024;

/// Locked memory `shards` glommio shards need.
pub fn glommio_memlock_need(shards: usize) -> u64 {
    GLOMMIO_MEMLOCK_PER_SHARD.saturating_mul(shards as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_setup_is_unusable_with_its_reason() {
        let p = UringProbe::failed("io_uring_setup failed: Operation not permitted (os error 1)");
        assert_eq!(p.usable().unwrap_err(), "io_uring_setup failed: Operation not permitted (os error 1)");
        assert!(UringProbe::supported().usable().is_ok());
    }

    #[test]
    fn missing_opcodes_make_the_ring_unusable() {
        let p = UringProbe { setup: Ok(()), missing: vec!["ACCEPT", "SEND"] };
        assert_eq!(p.usable().unwrap_err(), "the kernel's io_uring lacks opcodes ACCEPT, SEND");
    }

    #[test]
    fn the_live_probe_gives_a_verdict() {
        // Whatever this kernel allows, the probe answers without panicking, and a working ring
        // on a 5.x+ kernel has at least NOP.
        let p = UringProbe::run();
        if p.setup.is_ok() {
            assert!(!p.missing.contains(&"NOP"));
        }
    }

    #[test]
    fn memlock_need_scales_with_shards() {
        assert_eq!(glommio_memlock_need(0), 0);
        assert_eq!(glommio_memlock_need(2), 2 * GLOMMIO_MEMLOCK_PER_SHARD);
        assert!(MemlockLimit::bytes(8 << 20).allows(glommio_memlock_need(2)));
        assert!(!MemlockLimit::bytes(64 << 10).allows(glommio_memlock_need(1)));
        assert!(MemlockLimit::unlimited().allows(u64::MAX));
        assert_eq!(MemlockLimit::bytes(8 << 20).to_string(), "8192 KiB");
    }
}
