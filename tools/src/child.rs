//! The child processes `nexus bench server` and `nexus bench idle` start, and what they share
//! around them: free loopback ports, a scratch directory, the shard plan `nexus run` will make,
//! and a minimal RESP client.
//!
//! A [`Process`] owns a child (a server or a redis-benchmark run) whose stdout and stderr go to
//! a log file, and stops it when dropped: SIGTERM, then SIGKILL after [`STOP_TIMEOUT`], then
//! reaps it, on every path out of the command, errors and panics included. [`command`] is a
//! minimal RESP client for `PING`, `INFO` and `DBSIZE` (one command per connection, with a
//! timeout); benchmark traffic itself is redis-benchmark's. Errors are [`ChildError`]s, one line
//! each with a hint; the command that hit one puts its own name in front.

use nexus_engine::placement::{self, PlacementError, PlacementPlan, PlacementRequest};
use nexus_engine::topology::Topology;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The longest a server may take to answer its first `PING`.
pub(crate) const START_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest a process may take to exit after SIGTERM before it gets SIGKILL.
pub(crate) const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the command polls a child while it waits.
const POLL: Duration = Duration::from_millis(20);
/// How often [`Process::wait_timeout`] polls its child: fine enough that a run's wall-clock
/// time measured around it (`nexus bench server`'s CPU %) is late by at most this, 1% of a
/// 0.5 s run.
const EXIT_POLL: Duration = Duration::from_millis(5);
/// The longest a single `PING`, `INFO` or `DBSIZE` of this command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// What went wrong around a child process; one line with a hint where there is one.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ChildError {
    /// Something already listens on the port, or the child said so when it exited.
    #[error("port {port} is taken ({detail}); hint: run again, the ports are picked afresh")]
    PortTaken {
        /// The port.
        port: u16,
        /// Who says so.
        detail: String,
    },
    /// No loopback port could be bound.
    #[error("no free loopback port: {0}; hint: check that the loopback interface is up")]
    NoFreePort(#[source] std::io::Error),
    /// A log file or the scratch directory could not be created.
    #[error("cannot create {}: {source}", path.display())]
    Create {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The program did not start.
    #[error("cannot start {name}: {source}; hint: {hint}")]
    Spawn {
        /// The program.
        name: &'static str,
        /// Why.
        source: std::io::Error,
        /// What to do about it.
        hint: &'static str,
    },
    /// The child's state could not be read.
    #[error("cannot watch {name}: {source}")]
    Watch {
        /// The program.
        name: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// The child exited while it should have been serving.
    #[error(
        "{name} exited ({status}): {tail}; hint: see its last line; for nexus run, \
         `nexus run --listen 127.0.0.1:{port}` by hand shows the rest"
    )]
    Exited {
        /// The program.
        name: &'static str,
        /// Its exit status.
        status: ExitStatus,
        /// The last line of its log.
        tail: String,
        /// The port it served.
        port: u16,
    },
    /// The server never answered `PING`.
    #[error(
        "{name} did not answer PING on 127.0.0.1:{port} within {secs} s (last log line: {tail:?}); \
         hint: is the machine overloaded?"
    )]
    NotReady {
        /// The program.
        name: &'static str,
        /// The port it should serve.
        port: u16,
        /// How long it was given.
        secs: u64,
        /// The last line of its log.
        tail: String,
    },
    /// A reply that is not what the command expects.
    #[error("{command} on {name} answered {reply}, not an integer")]
    BadReply {
        /// The server.
        name: &'static str,
        /// The command sent.
        command: &'static str,
        /// What came back (or why nothing did).
        reply: String,
    },
    /// The machine's topology could not be read.
    #[error("cannot read the machine: {0}")]
    Topology(String),
    /// The shards asked for cannot be placed (a usage error).
    #[error(transparent)]
    Placement(PlacementError),
}

impl ChildError {
    /// Whether the error is the user's arguments' (exit 2) rather than the run's (exit 1).
    pub(crate) fn is_usage(&self) -> bool {
        matches!(self, ChildError::Placement(_))
    }
}

/// A child process stopped when dropped (SIGTERM, then SIGKILL after [`STOP_TIMEOUT`]), or a
/// server this command did not start (`child` is `None`: never stopped).
pub(crate) struct Process {
    /// What the errors call it (`nexus run`, `redis-server`, `redis-benchmark`).
    pub(crate) name: &'static str,
    /// The loopback port it serves (a redis-benchmark run: the port it measures).
    pub(crate) port: u16,
    child: Option<Child>,
    /// Its stderr (and a server's stdout), for the last line an error quotes.
    log: Option<PathBuf>,
}

impl Process {
    /// Starts a server: `cmd` with stdout and stderr into `log`. Refuses a port that already
    /// answers. `hint` says what to do when the program does not start.
    pub(crate) fn server(
        name: &'static str,
        cmd: Command,
        port: u16,
        log: PathBuf,
        hint: &'static str,
    ) -> Result<Self, ChildError> {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Err(ChildError::PortTaken { port, detail: "something already listens there".into() });
        }
        let open = || -> std::io::Result<(File, File)> {
            let file = File::create(&log)?;
            Ok((file.try_clone()?, file))
        };
        let (stdout, stderr) = open().map_err(|source| ChildError::Create { path: log.clone(), source })?;
        Self::start(name, cmd, port, stdout, stderr, log).map_err(|source| ChildError::Spawn { name, source, hint })
    }

    /// Makes `cmd`'s process run on CPU `cpu` alone (`sched_setaffinity` in the child before it
    /// executes the program): a peer server pinned as the nexus shard it is compared with is.
    pub(crate) fn pin_to_cpu(cmd: &mut Command, cpu: usize) {
        use std::os::unix::process::CommandExt;
        // SAFETY: the closure runs in the forked child before exec and makes only
        // async-signal-safe calls: it fills a `cpu_set_t` on the stack and calls
        // sched_setaffinity, which allocate nothing and take no lock.
        unsafe {
            cmd.pre_exec(move || {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(cpu, &mut set);
                if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
    }

    /// Starts a tool run (redis-benchmark against `port`): stdout into `stdout`, stderr into
    /// `log`.
    pub(crate) fn tool(
        name: &'static str,
        cmd: Command,
        port: u16,
        stdout: &Path,
        log: PathBuf,
        hint: &'static str,
    ) -> Result<Self, ChildError> {
        let open = |p: &Path| File::create(p).map_err(|source| ChildError::Create { path: p.to_path_buf(), source });
        let (out, err) = (open(stdout)?, open(&log)?);
        Self::start(name, cmd, port, out, err, log).map_err(|source| ChildError::Spawn { name, source, hint })
    }

    fn start(
        name: &'static str,
        mut cmd: Command,
        port: u16,
        stdout: File,
        stderr: File,
        log: PathBuf,
    ) -> std::io::Result<Self> {
        let child = cmd.stdin(Stdio::null()).stdout(stdout).stderr(stderr).spawn()?;
        Ok(Self { name, port, child: Some(child), log: Some(log) })
    }

    /// The child's process id (`None` for a server not started here, or one already stopped).
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Waits for the child to exit, up to `timeout`, polling it (and no other process) every
    /// [`EXIT_POLL`]: its status, or `None` if it still runs. A child seen to exit is reaped
    /// here (its status stays with the `Process`).
    pub(crate) fn wait_timeout(&mut self, timeout: Duration) -> Result<Option<ExitStatus>, ChildError> {
        let name = self.name;
        let Some(child) = self.child.as_mut() else { return Ok(None) };
        let deadline = Instant::now() + timeout;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Ok(Some(status)),
                Ok(None) if Instant::now() >= deadline => return Ok(None),
                Ok(None) => std::thread::sleep(EXIT_POLL),
                Err(source) => return Err(ChildError::Watch { name, source }),
            }
        }
    }

    /// A server already running on `port`, not started (nor stopped) here.
    pub(crate) fn external(name: &'static str, port: u16) -> Self {
        Self { name, port, child: None, log: None }
    }

    /// The last non-empty line of the log (at most 300 characters), or "".
    pub(crate) fn log_tail(&self) -> String {
        let text = self.log.as_ref().and_then(|p| std::fs::read_to_string(p).ok()).unwrap_or_default();
        text.lines().rev().map(str::trim).find(|l| !l.is_empty()).unwrap_or("").chars().take(300).collect()
    }

    /// An error when the child has exited, quoting the last line of its log.
    pub(crate) fn check_alive(&mut self) -> Result<(), ChildError> {
        let name = self.name;
        let Some(child) = self.child.as_mut() else { return Ok(()) };
        match child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(self.exited(status)),
            Err(source) => Err(ChildError::Watch { name, source }),
        }
    }

    fn exited(&self, status: ExitStatus) -> ChildError {
        let (tail, port, name) = (self.log_tail(), self.port, self.name);
        if tail.to_ascii_lowercase().contains("in use") {
            return ChildError::PortTaken { port, detail: format!("{name}: {tail}") };
        }
        ChildError::Exited { name, status, tail, port }
    }

    /// Waits until the server answers `PING` with `+PONG`, up to [`START_TIMEOUT`].
    pub(crate) fn wait_ready(&mut self) -> Result<(), ChildError> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if matches!(command(self.port, &["PING"]), Ok(reply) if reply == "+PONG") {
                return Ok(());
            }
            self.check_alive()?;
            if Instant::now() >= deadline {
                let (name, port, secs, tail) = (self.name, self.port, START_TIMEOUT.as_secs(), self.log_tail());
                return Err(ChildError::NotReady { name, port, secs, tail });
            }
            std::thread::sleep(POLL);
        }
    }

    /// SIGTERM, then SIGKILL when the child outlives [`STOP_TIMEOUT`]; reaps it. Idempotent.
    /// The exit status, when the child was still here to reap (`None`: not started here,
    /// already stopped, or not reaped).
    pub(crate) fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        if let Ok(None) = child.try_wait() {
            if let Ok(pid) = libc::pid_t::try_from(child.id()) {
                // SAFETY: kill(2) takes plain integers and touches no memory of ours; `pid` is our
                // child, not yet reaped (try_wait saw it running), so the id is not reused.
                unsafe { libc::kill(pid, libc::SIGTERM) };
            }
            let deadline = Instant::now() + STOP_TIMEOUT;
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(POLL);
            }
        }
        let _ = child.kill();
        child.wait().ok()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sends one command and reads one reply: a simple string, error or integer line as it came
/// (`+PONG`, `:42`), or a bulk string's content.
pub(crate) fn command(port: u16, parts: &[&str]) -> Result<String, String> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let stream = TcpStream::connect_timeout(&addr, COMMAND_TIMEOUT).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(COMMAND_TIMEOUT)).map_err(|e| e.to_string())?;
    let mut request = format!("*{}\r\n", parts.len());
    for part in parts {
        let _ = write!(request, "${}\r\n{part}\r\n", part.len());
    }
    (&stream).write_all(request.as_bytes()).map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(&stream);
    let mut line = String::new();
    reader.read_line(&mut line).map_err(|e| e.to_string())?;
    let line = line.trim_end().to_string();
    let Some(len) = line.strip_prefix('$') else { return Ok(line) };
    let len: usize = len.parse().map_err(|_| format!("bad bulk length {line:?}"))?;
    let mut body = vec![0; len + 2];
    std::io::Read::read_exact(&mut reader, &mut body).map_err(|e| e.to_string())?;
    body.truncate(len);
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// A `field:value` line of `INFO`, if the server has it.
pub(crate) fn info_field(port: u16, field: &str) -> Option<String> {
    let text = command(port, &["INFO"]).ok()?;
    text.lines().find_map(|l| l.strip_prefix(field)?.strip_prefix(':')).map(|v| v.trim().to_string())
}

/// The server's key count (`DBSIZE`).
pub(crate) fn dbsize(server: &Process) -> Result<u64, ChildError> {
    let reply = command(server.port, &["DBSIZE"]);
    reply
        .as_deref()
        .ok()
        .and_then(|r| r.strip_prefix(':'))
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| ChildError::BadReply { name: server.name, command: "DBSIZE", reply: format!("{reply:?}") })
}

/// Two distinct loopback ports nothing listens on right now (both bound at once, released).
pub(crate) fn free_ports() -> Result<(u16, u16), ChildError> {
    let bind = || -> std::io::Result<(TcpListener, u16)> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        Ok((listener, port))
    };
    let (_a, a) = bind().map_err(ChildError::NoFreePort)?;
    let (_b, b) = bind().map_err(ChildError::NoFreePort)?;
    Ok((a, b))
}

/// The shards `nexus run` will start for `shards` (`None`: one per physical core), and whether
/// the config must allow oversubscription (more shards than cores; noted on stderr, after
/// `what`, the command's name).
pub(crate) fn plan_shards(shards: Option<usize>, what: &str) -> Result<(PlacementPlan, bool), ChildError> {
    let topology = Topology::detect().map_err(|e| ChildError::Topology(e.to_string()))?;
    let request = shards.map_or_else(PlacementRequest::per_core, PlacementRequest::shards);
    match placement::plan(&topology, &request) {
        Ok(plan) => Ok((plan, false)),
        Err(PlacementError::TooManyShards { requested, usable }) => {
            eprintln!(
                "nexus: {what}: note: {requested} shards on {usable} cores: oversubscribed (shards share CPUs); \
                 use --shards {usable} or fewer for the engine's own figures"
            );
            Ok((placement::plan(&topology, &request.oversubscribe(true)).map_err(ChildError::Placement)?, true))
        }
        Err(e) => Err(ChildError::Placement(e)),
    }
}

/// A scratch directory for configs, the children's logs and their output; removed on drop.
pub(crate) struct Scratch {
    /// The directory.
    pub(crate) dir: PathBuf,
}

impl Scratch {
    /// Creates `nexus-TAG-PID` in the temporary directory.
    pub(crate) fn create(tag: &str) -> Result<Self, ChildError> {
        let dir = std::env::temp_dir().join(format!("nexus-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|source| ChildError::Create { path: dir.clone(), source })?;
        Ok(Self { dir })
    }

    /// `name` inside the directory.
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pinned_child_runs_on_its_cpu_alone() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "grep Cpus_allowed_list /proc/self/status"]);
        Process::pin_to_cpu(&mut cmd, 0);
        let out = cmd.output().expect("sh runs");
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(text.split_whitespace().last(), Some("0"), "{text}");
    }

    #[test]
    fn replies_are_read_from_a_socket() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = std::thread::spawn(move || {
            for reply in [&b"+PONG\r\n"[..], b"$20\r\n# Server\r\nshards:4\r\n\r\n", b":17\r\n"] {
                let (mut conn, _) = listener.accept().expect("accept");
                let mut request = [0u8; 64];
                let _ = std::io::Read::read(&mut conn, &mut request);
                conn.write_all(reply).expect("reply");
            }
        });
        assert_eq!(command(port, &["PING"]).as_deref(), Ok("+PONG"));
        assert_eq!(info_field(port, "shards").as_deref(), Some("4"));
        let process = Process::external("test", port);
        assert_eq!(dbsize(&process).ok(), Some(17));
        server.join().expect("the fake server");
    }

    #[test]
    fn free_ports_are_distinct() {
        let (a, b) = free_ports().expect("two ports");
        assert_ne!(a, b);
    }
}
