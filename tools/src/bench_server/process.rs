//! The processes `nexus bench server` starts, and the few commands it sends them itself.
//!
//! A [`Process`] owns a child (a server or a redis-benchmark run) whose stdout and stderr go to
//! a log file, and stops it when dropped: SIGTERM, then SIGKILL after [`STOP_TIMEOUT`], then
//! reaps it, on every path out of the command, errors and panics included. [`command`] is a
//! minimal RESP client for `PING`, `INFO` and `DBSIZE` (one command per connection, with a
//! timeout); the benchmark traffic itself is redis-benchmark's.

use crate::Failure;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The longest a server may take to answer its first `PING`.
pub(super) const START_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest a process may take to exit after SIGTERM before it gets SIGKILL.
pub(super) const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the command polls a child while it waits.
const POLL: Duration = Duration::from_millis(20);
/// The longest a single `PING`, `INFO` or `DBSIZE` of this command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// A child process stopped when dropped (SIGTERM, then SIGKILL after [`STOP_TIMEOUT`]), or a
/// server this command did not start (`child` is `None`: never stopped).
pub(super) struct Process {
    /// What the errors call it (`nexus run`, `redis-server`, `redis-benchmark`).
    pub(super) name: &'static str,
    /// The loopback port it serves (a redis-benchmark run: the port it measures).
    pub(super) port: u16,
    child: Option<Child>,
    /// Its stderr (and a server's stdout), for the last line an error quotes.
    log: Option<PathBuf>,
}

impl Process {
    /// Starts a server: `cmd` with stdout and stderr into `log`. Refuses a port that already
    /// answers.
    pub(super) fn server(name: &'static str, cmd: Command, port: u16, log: PathBuf) -> Result<Self, Failure> {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Err(Failure::runtime(format!(
                "bench server: port {port} is taken (something already listens there); hint: run again, \
                 the ports are picked afresh"
            )));
        }
        let open = || -> std::io::Result<(File, File)> {
            let file = File::create(&log)?;
            Ok((file.try_clone()?, file))
        };
        let (stdout, stderr) =
            open().map_err(|e| Failure::runtime(format!("bench server: cannot create {}: {e}", log.display())))?;
        Self::start(name, cmd, port, stdout, stderr, log)
            .map_err(|e| Failure::runtime(format!("bench server: cannot start {name}: {e}; hint: run tools/setup.sh")))
    }

    /// Starts a tool run (redis-benchmark against `port`): stdout into `stdout`, stderr into
    /// `log`.
    pub(super) fn tool(
        name: &'static str,
        cmd: Command,
        port: u16,
        stdout: &Path,
        log: PathBuf,
    ) -> Result<Self, String> {
        let open = |p: &Path| File::create(p).map_err(|e| format!("cannot create {}: {e}", p.display()));
        let (out, err) = (open(stdout)?, open(&log)?);
        Self::start(name, cmd, port, out, err, log)
            .map_err(|e| format!("cannot run {name}: {e}; hint: run tools/setup.sh"))
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

    /// Waits for the child to exit, up to `timeout`: its status, or `None` if it still runs.
    pub(super) fn wait_timeout(&mut self, timeout: Duration) -> Result<Option<ExitStatus>, String> {
        let Some(child) = self.child.as_mut() else { return Ok(None) };
        let deadline = Instant::now() + timeout;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Ok(Some(status)),
                Ok(None) if Instant::now() >= deadline => return Ok(None),
                Ok(None) => std::thread::sleep(POLL),
                Err(e) => return Err(format!("cannot watch {}: {e}", self.name)),
            }
        }
    }

    /// A server already running on `port`, not started (nor stopped) here.
    pub(super) fn external(name: &'static str, port: u16) -> Self {
        Self { name, port, child: None, log: None }
    }

    /// The last non-empty line of the log (at most 300 characters), or "".
    pub(super) fn log_tail(&self) -> String {
        let text = self.log.as_ref().and_then(|p| std::fs::read_to_string(p).ok()).unwrap_or_default();
        text.lines().rev().map(str::trim).find(|l| !l.is_empty()).unwrap_or("").chars().take(300).collect()
    }

    /// An error when the child has exited, quoting the last line of its log.
    pub(super) fn check_alive(&mut self) -> Result<(), Failure> {
        let Some(child) = self.child.as_mut() else { return Ok(()) };
        match child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(self.exited(status)),
            Err(e) => Err(Failure::runtime(format!("bench server: cannot watch {}: {e}", self.name))),
        }
    }

    fn exited(&self, status: ExitStatus) -> Failure {
        let tail = self.log_tail();
        let port = self.port;
        if tail.to_ascii_lowercase().contains("in use") {
            return Failure::runtime(format!(
                "bench server: port {port} is taken ({}: {tail}); hint: run again, the ports are picked afresh",
                self.name
            ));
        }
        Failure::runtime(format!(
            "bench server: {} exited ({status}): {tail}; hint: see its last line; for nexus run, \
             `nexus run --listen 127.0.0.1:{port}` by hand shows the rest",
            self.name
        ))
    }

    /// Waits until the server answers `PING` with `+PONG`, up to [`START_TIMEOUT`].
    pub(super) fn wait_ready(&mut self) -> Result<(), Failure> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if matches!(command(self.port, &["PING"]), Ok(reply) if reply == "+PONG") {
                return Ok(());
            }
            self.check_alive()?;
            if Instant::now() >= deadline {
                return Err(Failure::runtime(format!(
                    "bench server: {} did not answer PING on 127.0.0.1:{} within {} s (last log line: {:?}); \
                     hint: is the machine overloaded?",
                    self.name,
                    self.port,
                    START_TIMEOUT.as_secs(),
                    self.log_tail()
                )));
            }
            std::thread::sleep(POLL);
        }
    }

    /// SIGTERM, then SIGKILL when the child outlives [`STOP_TIMEOUT`]; reaps it. Idempotent.
    pub(super) fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
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
        let _ = child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sends one command and reads one reply: a simple string, error or integer line as it came
/// (`+PONG`, `:42`), or a bulk string's content.
pub(super) fn command(port: u16, parts: &[&str]) -> Result<String, String> {
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
pub(super) fn info_field(port: u16, field: &str) -> Option<String> {
    let text = command(port, &["INFO"]).ok()?;
    text.lines().find_map(|l| l.strip_prefix(field)?.strip_prefix(':')).map(|v| v.trim().to_string())
}

/// The server's key count (`DBSIZE`).
pub(super) fn dbsize(server: &Process) -> Result<u64, Failure> {
    let reply = command(server.port, &["DBSIZE"]);
    reply.as_deref().ok().and_then(|r| r.strip_prefix(':')).and_then(|n| n.parse().ok()).ok_or_else(|| {
        Failure::runtime(format!("bench server: DBSIZE on {} answered {reply:?}, not an integer", server.name))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

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
}
