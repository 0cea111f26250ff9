//! Executors: what each shard thread runs inside, and how the choice is made.
//!
//! Owns [`ExecutorKind`] (the config's `executor = "glommio" | "threads" | "auto"`), the probe
//! of what the machine allows ([`probe`]), and [`select`], which turns a requested kind into the
//! one the engine runs:
//!
//! * `glommio`: a glommio `LocalExecutor` per shard (io_uring for timers and I/O). Chosen
//!   explicitly, it is an error ([`ExecutorError`]) when io_uring is blocked or the
//!   locked-memory limit is too small for the shards, rather than a cryptic failure inside
//!   glommio.
//! * `threads`: the same dispatcher on a plain pinned thread per shard. A shard parks on a
//!   futex (`std::thread::park`) when it has no I/O, or in `epoll_wait` on an eventfd when it
//!   has sockets; timers of its I/O come from a timer wheel ([`local`]).
//! * `auto` (the default): glommio when the probe and the memlock limit allow it, otherwise
//!   threads, with one warning line that says why ([`Selection::warning`]).
//!
//! Invariant: the kind an engine runs with ([`Selection::kind`]) is never `Auto`.

pub mod local;
pub mod probe;

pub use probe::{glommio_memlock_need, MemlockLimit, UringProbe, GLOMMIO_MEMLOCK_PER_SHARD, REQUIRED_OPCODES};

/// Which executor runs each shard thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutorKind {
    /// A glommio `LocalExecutor` per shard (io_uring for I/O and timers). Needs the `glommio`
    /// feature, a kernel that allows io_uring, and enough locked memory.
    Glommio,
    /// A plain pinned OS thread per shard running the same dispatcher, with epoll for I/O (for
    /// containers whose seccomp profile blocks io_uring, and for embedding without glommio).
    #[serde(alias = "thread")]
    Threads,
    /// Glommio when the machine allows it, threads otherwise (the default).
    #[default]
    Auto,
}

impl ExecutorKind {
    /// The name used in configs and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ExecutorKind::Glommio => "glommio",
            ExecutorKind::Threads => "threads",
            ExecutorKind::Auto => "auto",
        }
    }
}

impl std::fmt::Display for ExecutorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for ExecutorKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "glommio" => Ok(ExecutorKind::Glommio),
            "threads" | "thread" => Ok(ExecutorKind::Threads),
            "auto" => Ok(ExecutorKind::Auto),
            other => Err(format!("unknown executor {other:?}; use glommio, threads or auto")),
        }
    }
}

/// Why the requested executor cannot run here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecutorError {
    /// `glommio` was asked for, but io_uring cannot be used.
    #[error("executor = \"glommio\" but io_uring is unavailable: {0}; hint: set executor = \"threads\" (or \"auto\"), or allow io_uring in the container's seccomp profile")]
    UringUnavailable(String),
    /// `glommio` was asked for, but the locked-memory limit is below what the shards need.
    #[error("executor = \"glommio\" needs {need_kib} KiB of locked memory for {shards} shards but RLIMIT_MEMLOCK is {limit}; hint: raise `ulimit -l`, use fewer shards, or set executor = \"threads\"")]
    Memlock {
        /// Shards planned.
        shards: usize,
        /// KiB they need.
        need_kib: u64,
        /// The limit found.
        limit: MemlockLimit,
    },
    /// `glommio` was asked for, but this build has no glommio support.
    #[error("executor = \"glommio\" but this build has no glommio support; hint: set executor = \"threads\" or build with the `glommio` feature")]
    NotBuilt,
}

/// The executor an engine runs with, and what `auto` had to say about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// `Glommio` or `Threads`, never `Auto`.
    pub kind: ExecutorKind,
    /// One line for the operator when `auto` fell back to threads.
    pub warning: Option<String>,
}

/// What [`select`] decides from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    /// The io_uring probe.
    pub uring: UringProbe,
    /// The locked-memory limit.
    pub memlock: MemlockLimit,
    /// Whether this build includes the glommio executor.
    pub glommio_built: bool,
}

impl Machine {
    /// Probes this machine and process.
    pub fn probe() -> Self {
        Self { uring: UringProbe::run(), memlock: MemlockLimit::current(), glommio_built: cfg!(feature = "glommio") }
    }
}

/// Resolves `requested` for `shards` shards on `machine`; see the module docs.
///
/// # Errors
/// Only for an explicit `Glommio` that cannot run ([`ExecutorError`]).
pub fn select(requested: ExecutorKind, shards: usize, machine: &Machine) -> Result<Selection, ExecutorError> {
    let blocker = || -> Option<ExecutorError> {
        if !machine.glommio_built {
            return Some(ExecutorError::NotBuilt);
        }
        if let Err(reason) = machine.uring.usable() {
            return Some(ExecutorError::UringUnavailable(reason));
        }
        let need = glommio_memlock_need(shards);
        if !machine.memlock.allows(need) {
            return Some(ExecutorError::Memlock { shards, need_kib: need / 1024, limit: machine.memlock });
        }
        None
    };
    match requested {
        ExecutorKind::Threads => Ok(Selection { kind: ExecutorKind::Threads, warning: None }),
        ExecutorKind::Glommio => match blocker() {
            Some(e) => Err(e),
            None => Ok(Selection { kind: ExecutorKind::Glommio, warning: None }),
        },
        ExecutorKind::Auto => match blocker() {
            None => Ok(Selection { kind: ExecutorKind::Glommio, warning: None }),
            Some(ExecutorError::NotBuilt) => Ok(Selection { kind: ExecutorKind::Threads, warning: None }),
            Some(e) => Ok(Selection { kind: ExecutorKind::Threads, warning: Some(fallback_line(&e)) }),
        },
    }
}

/// The warning line for an `auto` that fell back.
fn fallback_line(e: &ExecutorError) -> String {
    let why = match e {
        ExecutorError::UringUnavailable(reason) => format!("io_uring is unavailable ({reason})"),
        ExecutorError::Memlock { shards, need_kib, limit } => {
            format!("RLIMIT_MEMLOCK is {limit}, below the {need_kib} KiB {shards} glommio shards need")
        }
        ExecutorError::NotBuilt => "this build has no glommio".into(),
    };
    format!("executor auto: {why}; running on threads (epoll); hint: `nexus doctor` explains, executor = \"threads\" silences this")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(uring: UringProbe, memlock: MemlockLimit) -> Machine {
        Machine { uring, memlock, glommio_built: true }
    }

    #[test]
    fn auto_takes_glommio_when_the_machine_allows_it() {
        let m = machine(UringProbe::supported(), MemlockLimit::bytes(8 << 20));
        let s = select(ExecutorKind::Auto, 2, &m).unwrap();
        assert_eq!(s, Selection { kind: ExecutorKind::Glommio, warning: None });
    }

    #[test]
    fn auto_falls_back_to_threads_with_one_line_when_io_uring_is_blocked() {
        let m =
            machine(UringProbe::failed("io_uring_setup failed: Operation not permitted"), MemlockLimit::unlimited());
        let s = select(ExecutorKind::Auto, 2, &m).unwrap();
        assert_eq!(s.kind, ExecutorKind::Threads);
        let w = s.warning.unwrap();
        assert!(!w.contains('\n'));
        assert!(w.contains("Operation not permitted") && w.contains("threads"), "{w}");
    }

    #[test]
    fn auto_falls_back_when_memlock_is_too_small_for_the_shards() {
        let m = machine(UringProbe::supported(), MemlockLimit::bytes(GLOMMIO_MEMLOCK_PER_SHARD * 4));
        assert_eq!(select(ExecutorKind::Auto, 4, &m).unwrap().kind, ExecutorKind::Glommio);
        let s = select(ExecutorKind::Auto, 5, &m).unwrap();
        assert_eq!(s.kind, ExecutorKind::Threads);
        assert!(s.warning.unwrap().contains("RLIMIT_MEMLOCK"));
    }

    #[test]
    fn explicit_glommio_fails_with_a_clear_error() {
        let m =
            machine(UringProbe::failed("io_uring_setup failed: Function not implemented"), MemlockLimit::unlimited());
        let e = select(ExecutorKind::Glommio, 2, &m).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("io_uring is unavailable") && text.contains("hint: set executor = \"threads\""),
            "{text}"
        );
        let m = machine(UringProbe::supported(), MemlockLimit::bytes(1024));
        assert!(matches!(select(ExecutorKind::Glommio, 1, &m), Err(ExecutorError::Memlock { shards: 1, .. })));
        let m = Machine { glommio_built: false, ..machine(UringProbe::supported(), MemlockLimit::unlimited()) };
        assert_eq!(select(ExecutorKind::Glommio, 1, &m), Err(ExecutorError::NotBuilt));
        assert_eq!(
            select(ExecutorKind::Auto, 1, &m).unwrap(),
            Selection { kind: ExecutorKind::Threads, warning: None }
        );
    }

    #[test]
    fn threads_is_always_available() {
        let m = machine(UringProbe::failed("blocked"), MemlockLimit::bytes(0));
        assert_eq!(select(ExecutorKind::Threads, 16, &m).unwrap().kind, ExecutorKind::Threads);
    }

    #[test]
    fn names_parse_back() {
        for k in [ExecutorKind::Glommio, ExecutorKind::Threads, ExecutorKind::Auto] {
            assert_eq!(k.name().parse::<ExecutorKind>().unwrap(), k);
        }
        assert_eq!("thread".parse::<ExecutorKind>().unwrap(), ExecutorKind::Threads);
        assert!("tokio".parse::<ExecutorKind>().unwrap_err().contains("glommio, threads or auto"));
    }
}
